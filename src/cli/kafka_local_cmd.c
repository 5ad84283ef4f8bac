/* logproc kafka-local: hosts the embedded Kafka-protocol cluster (librdkafka's mock cluster)
 * for demos and tests, until SIGTERM or SIGINT.
 *
 *   logproc kafka-local --port 9092 [--brokers 1] [--topic NAME:PARTS]...
 *
 * Prints `BOOTSTRAP=<addr>` on stdout as soon as clients can connect, then a log line on
 * stderr. Exit status 0 after a signal, 1 when the cluster cannot start, 2 for a usage error.
 * The cluster keeps about 5 MiB per partition and does not enforce read_committed
 * (docs/KAFKA.md). */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "connectors/kafka.h"
#include "runtime/flags.h"
#include "runtime/log.h"

#define USAGE "logproc kafka-local [--port=P] [--brokers=N] [--topic=NAME:PARTS]..."

typedef struct kafka_local_opts {
    int64_t port;
    int64_t brokers;
    flag_list topics;
} kafka_local_opts;

static const flag_def kafka_local_flags[] = {
    {"port", "p", FLAG_INT, "0", offsetof(kafka_local_opts, port),
     "loopback port clients bootstrap from (a forwarder to the first broker); 0: the first "
     "broker's own ephemeral address",
     0},
    {"brokers", NULL, FLAG_INT, "1", offsetof(kafka_local_opts, brokers),
     "brokers in the cluster (1..64)", 0},
    {"topic", "t", FLAG_LIST, NULL, offsetof(kafka_local_opts, topics),
     "topic to create at start, NAME:PARTITIONS (repeatable; other topics are auto-created "
     "with 4 partitions)",
     0},
};

int cli_kafka_local(int argc, char **argv)
{
    kafka_local_opts o = {0};
    flag_table tables[] = {FLAG_TABLE("kafka-local", kafka_local_flags, &o)};
    char err[1024];
    char *pos[1];
    size_t npos = 0;
    bool help = false;
    int status = 2;
    kafka_local *k = NULL;
    if (flags_parse(tables, 1, argc - 1, argv + 1, pos, 0, &npos, &help, err, sizeof err) < 0) {
        fprintf(stderr, "logproc kafka-local: %s\n", err);
        goto out;
    }
    if (help) {
        flags_help(stdout, USAGE, tables, 1);
        status = 0;
        goto out;
    }
    if (o.port < 0 || o.port > 65535 || o.brokers < 1 || o.brokers > 64) {
        fprintf(stderr,
                "logproc kafka-local: --port=%lld must be 0..65535 and --brokers=%lld "
                "1..64\n",
                (long long)o.port, (long long)o.brokers);
        goto out;
    }
    /* Block the signals before the cluster's threads start, so they inherit the mask and only
     * sigwait below sees SIGTERM/SIGINT. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (kafka_local_new((int)o.brokers, (int)o.port, (const char *const *)o.topics.items,
                        o.topics.n, &k, err, sizeof err)) {
        fprintf(stderr, "logproc kafka-local: %s\n", err);
        status = 1;
        goto out;
    }
    printf("BOOTSTRAP=%s\n", kafka_local_bootstrap(k));
    fflush(stdout);
    log_info("kafka-local", "started bootstrap=%s brokers=%lld topics=%zu",
             kafka_local_bootstrap(k), (long long)o.brokers, o.topics.n);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    log_info("kafka-local", "stopping signal=%d", sig);
    status = 0;
out:
    kafka_local_free(k);
    flags_free(tables, 1);
    return status;
}
