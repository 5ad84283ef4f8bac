/* logproc: one binary, subcommands dispatched by their first word. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", cli_run, "run JOB [flags]       run a job (raw-output, flat-output, counter, content-metrics)"},
    {"generate", cli_generate, "generate logs|content  fake LogRequests (deterministic), or the content catalogue (--serve: a local Content API)"},
    {"inspect", cli_inspect, "inspect PATH           print an Avro file or a record file as JSON lines"},
    {"store", cli_store, "store VERB URL KEY     put|get|ls|rm|stage|publish|abort objects (local dir or s3://)"},
    {"kafka-local", cli_kafka_local, "kafka-local [flags]    host the embedded Kafka-protocol cluster until SIGTERM"},
    {"list", cli_list, "list                   the jobs running on this machine"},
    {"savepoint", cli_savepoint, "savepoint JOB          write a savepoint of a running job; prints its path"},
    {"stop", cli_stop, "stop JOB [--savepoint] stop a running job (state kept in a final checkpoint)"},
    {"cancel", cli_cancel, "cancel JOB             end a running job at once (resumes from its last checkpoint)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: logproc COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %s\n", commands[i].help);
    fprintf(out, "\n'logproc COMMAND --help' lists a command's flags with their defaults.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    /* once, before any thread: the first objstore_open would otherwise initialise curl itself,
     * which is not thread-safe */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "logproc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
