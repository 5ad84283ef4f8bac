/* logproc generate logs [flags]: the deterministic fake LogRequest generator
 * (spec/fake-data.md; docs/GENERATOR.md).
 *
 * Writes a record file (--output PATH): one frame per LogRequest, its timestamp the record's
 * simulated send time and its key the Event API's Kafka key (platform id, log_user_id).
 * --text prints the LogRequests in protobuf text format to stdout instead (blocks separated by
 * a blank line, the shape of the reference's golden dumps). --bootstrapServers ADDR also (or
 * only) produces each record, with the same key and timestamp, to the LogRequest topic
 * (--topic; by default the jobs' name for it) with an idempotent producer, and flushes at the
 * end. --realTime paces the records by the wall clock as the reference's sender does; without
 * it the run goes as fast as it can.
 *
 * The defaults are those of --profile (cli by default); --preset NAME selects one of the three
 * deterministic test presets. Explicit flags override the profile's values.
 *
 * logproc generate content (the Content API catalogue and its local server) is in content_cmd.c. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "connectors/kafka.h"
#include "formats/pb_text.h"
#include "formats/record_file.h"
#include "generator/gen_options.h"
#include "generator/log_generator.h"
#include "runtime/flags.h"
#include "runtime/log.h"

#define USAGE                                                                                      \
    "logproc generate logs [--profile=cli|local|...] [--preset=NAME] --output PATH "               \
    "[--bootstrapServers ADDR] [flags]"
#define MAX_PROFILE_NAME 128

typedef struct cli_opts {
    char *profile;
    char *preset;
    char *output;
    bool text;
    bool real_time;
    char *bootstrap_servers;
    char *dataset;
    char *topic;
    char *compression;
    char *kafka_topic;
} cli_opts;

static const flag_def cli_flags[] = {
    {"profile", NULL, FLAG_STRING, "cli", offsetof(cli_opts, profile),
     "defaults to start from: cli (the LogGenerator command), local (the local deployment: "
     "700 impressions), library (LogRequestIteratorOptions.builder(); sizes must be given), "
     "factory (the test factory with n = 1)",
     0},
    {"preset", NULL, FLAG_STRING, "", offsetof(cli_opts, preset),
     "a deterministic test preset: createStoreToItemBuilder, createItemShoppingCartBuilder or "
     "createStoreInsertionItemShoppingCartBuilder (incrementing ids, fixed clock)",
     0},
    {"output", "o", FLAG_STRING, "", offsetof(cli_opts, output),
     "record file to write (created or truncated)", 0},
    {"text", NULL, FLAG_BOOL, "false", offsetof(cli_opts, text),
     "print the LogRequests in protobuf text format to stdout instead of writing a file", 0},
    {"realTime", NULL, FLAG_BOOL, "false", offsetof(cli_opts, real_time),
     "pace the records by the wall clock: each is written when its simulated send time, "
     "counted from the start, has passed",
     0},
    {"bootstrapServers", "bootstrap.servers,b", FLAG_STRING, "",
     offsetof(cli_opts, bootstrap_servers),
     "Kafka bootstrap servers: also (or, without --output, only) produce every record to the "
     "LogRequest topic; empty: no Kafka output",
     0},
    {"metricsApiKafkaDataset", NULL, FLAG_STRING, "event", offsetof(cli_opts, dataset),
     "middle part of the topic tracking.<dataset>.log-request", 0},
    {"logRequestTopic", NULL, FLAG_STRING, "", offsetof(cli_opts, topic),
     "overrides the LogRequest topic", 0},
    {"topic", NULL, FLAG_STRING, "", offsetof(cli_opts, kafka_topic),
     "Kafka topic to produce to (overrides --logRequestTopic and --metricsApiKafkaDataset)", 0},
    {"kafkaCompressionType", NULL, FLAG_STRING, "gzip", offsetof(cli_opts, compression),
     "Kafka producer compression.type", 0},
};

/* Finds --name=value or --name value in argv (the profile must be known before the tables
 * are built, since it supplies their defaults). Returns the value or NULL. */
static const char *prescan(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    const char *found = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || strncmp(a + 2, name, n)) continue;
        if (a[2 + n] == '=')
            found = a + 3 + n;
        else if (!a[2 + n] && i + 1 < argc)
            found = argv[i + 1];
    }
    return found;
}

static void sleep_until_ms(int64_t wall_target_ms)
{
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t cur = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        if (cur >= wall_target_ms) return;
        int64_t d = wall_target_ms - cur;
        struct timespec ts = {(time_t)(d / 1000), (long)(d % 1000) * 1000000L};
        if (nanosleep(&ts, NULL) && errno != EINTR) return;
    }
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int generate_logs(int argc, char **argv)
{
    char err[1024];
    const char *profile = prescan(argc, argv, "profile");
    const char *preset = prescan(argc, argv, "preset");
    if (preset && *preset && profile && strcmp(profile, "cli")) {
        fprintf(stderr, "logproc generate logs: give --profile or --preset, not both\n");
        return 2;
    }
    char chosen[MAX_PROFILE_NAME];
    snprintf(chosen, sizeof chosen, "%s", preset && *preset ? preset : profile ? profile : "cli");

    gen_options gopts;
    cli_opts copts;
    memset(&gopts, 0, sizeof gopts);
    memset(&copts, 0, sizeof copts);
    gen_options_table gt;
    if (gen_options_table_for(chosen, &gopts, &gt, err, sizeof err)) {
        fprintf(stderr, "logproc generate logs: %s\n", err);
        return 2;
    }
    flag_table tables[2] = {gt.table, FLAG_TABLE("output", cli_flags, &copts)};
    char *pos[1];
    size_t npos = 0;
    bool help = false;
    int rc = 2;
    gen_logs *g = NULL;
    recfile_writer *w = NULL;
    kafka_producer *kp = NULL;
    char ktopic[512] = "";
    if (flags_parse(tables, 2, argc, argv, pos, 0, &npos, &help, err, sizeof err)) {
        fprintf(stderr, "logproc generate logs: %s\n", err);
        goto out;
    }
    if (help) {
        flags_help(stdout, USAGE, tables, 2);
        rc = 0;
        goto out;
    }
    bool to_kafka = *copts.bootstrap_servers != 0;
    if (!copts.text && !*copts.output && !to_kafka) {
        fprintf(stderr, "logproc generate logs: --output PATH or --bootstrapServers ADDR is "
                        "required, or --text for stdout\n");
        goto out;
    }
    if (copts.text && to_kafka) {
        fprintf(stderr, "logproc generate logs: --text and --bootstrapServers exclude each "
                        "other\n");
        goto out;
    }
    rc = 1;
    if (gen_logs_new(&gopts, &g, err, sizeof err)) {
        fprintf(stderr, "logproc generate logs: %s\n", err);
        rc = 2; /* every failure here is an option out of range */
        goto out;
    }
    if (!copts.text && *copts.output && recfile_writer_open(copts.output, &w, err, sizeof err)) {
        fprintf(stderr, "logproc generate logs: %s\n", err);
        goto out;
    }
    if (to_kafka) {
        if (*copts.kafka_topic)
            snprintf(ktopic, sizeof ktopic, "%s", copts.kafka_topic);
        else if (*copts.topic)
            snprintf(ktopic, sizeof ktopic, "%s", copts.topic);
        else
            snprintf(ktopic, sizeof ktopic, "tracking.%s.log-request", copts.dataset);
        kafka_producer_config kc = {.client = {.bootstrap = copts.bootstrap_servers},
                                    .compression = copts.compression};
        if (kafka_producer_new(&kc, &kp, err, sizeof err)) {
            fprintf(stderr, "logproc generate logs: %s\n", err);
            goto out;
        }
    }
    log_info("generate", "start profile=%s output=%s seed=%lld startTime=%lld realTime=%s", chosen,
             copts.text      ? "stdout"
             : *copts.output ? copts.output
                             : "-",
             (long long)gopts.seed, (long long)gopts.start_time,
             copts.real_time ? "true" : "false");

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t wall0 = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
    int64_t ts;
    int more;
    uint64_t n = 0;
    for (;;) {
        if (copts.text) {
            Event__LogRequest *lr;
            more = gen_logs_next(g, &ts, &lr, err, sizeof err);
            if (more != 1) break;
            if (copts.real_time) sleep_until_ms(wall0 + (ts - gopts.start_time));
            if ((n && fputc('\n', stdout) == EOF) || pbtext_print(stdout, &lr->base)) {
                fprintf(stderr, "logproc generate logs: writing stdout failed\n");
                goto out;
            }
        } else {
            const uint8_t *key, *value;
            size_t key_len, value_len;
            more =
                gen_logs_next_packed(g, &ts, &key, &key_len, &value, &value_len, err, sizeof err);
            if (more != 1) break;
            if (copts.real_time) sleep_until_ms(wall0 + (ts - gopts.start_time));
            if (w && recfile_write(w, ts, key, key_len, value, value_len)) {
                fprintf(stderr, "logproc generate logs: writing %s failed\n", copts.output);
                goto out;
            }
            if (kp && kafka_producer_send(kp, ktopic, -1, ts, key, key_len, value, value_len, NULL,
                                          err, sizeof err)) {
                fprintf(stderr, "logproc generate logs: %s\n", err);
                goto out;
            }
        }
        n++;
    }
    if (more < 0) {
        fprintf(stderr, "logproc generate logs: %s\n", err);
        goto out;
    }
    if (w) {
        int crc = recfile_writer_close(w, err, sizeof err);
        w = NULL;
        if (crc) {
            fprintf(stderr, "logproc generate logs: %s\n", err);
            goto out;
        }
    } else if (copts.text && fflush(stdout)) {
        goto out;
    }
    if (kp) {
        if (kafka_producer_flush(kp, 60000, err, sizeof err)) {
            fprintf(stderr, "logproc generate logs: %s\n", err);
            goto out;
        }
        kafka_producer_stats ks = kafka_producer_get_stats(kp);
        log_info("generate", "kafka bootstrap=%s topic=%s records=%llu delivered=%llu",
                 copts.bootstrap_servers, ktopic, (unsigned long long)ks.records,
                 (unsigned long long)ks.delivered);
    }
    double secs = seconds_since(&t0);
    gen_counts c;
    gen_logs_counts(g, &c);
    log_info("generate",
             "done logRequests=%llu bytes=%llu seconds=%.3f users=%llu cohortMemberships=%llu "
             "sessions=%llu views=%llu autoViews=%llu diagnostics=%llu deliveryLogs=%llu "
             "sdkDeliveryLogs=%llu shadowDeliveryLogs=%llu responseInsertions=%llu "
             "impressions=%llu navigates=%llu addToCarts=%llu checkouts=%llu purchases=%llu",
             (unsigned long long)c.log_requests, (unsigned long long)c.bytes, secs,
             (unsigned long long)c.users, (unsigned long long)c.cohort_memberships,
             (unsigned long long)c.sessions, (unsigned long long)c.views,
             (unsigned long long)c.auto_views, (unsigned long long)c.diagnostics,
             (unsigned long long)c.delivery_logs, (unsigned long long)c.sdk_delivery_logs,
             (unsigned long long)c.shadow_delivery_logs, (unsigned long long)c.response_insertions,
             (unsigned long long)c.impressions, (unsigned long long)c.navigates,
             (unsigned long long)c.add_to_carts, (unsigned long long)c.checkouts,
             (unsigned long long)c.purchases);
    rc = 0;
out:
    if (w) recfile_writer_close(w, err, sizeof err);
    kafka_producer_free(kp);
    gen_logs_free(g);
    flags_free(tables, 2);
    return rc;
}

int cli_generate(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *o = argc < 2 ? stderr : stdout;
        fprintf(o, "usage: logproc generate logs [flags]     fake LogRequests (deterministic)\n"
                   "       logproc generate content [flags]  fake content catalogue to a Content "
                   "API (--serve: serve one)\n\n'logproc generate logs --help' and 'logproc "
                   "generate content --help' list the flags and their defaults.\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "logs")) return generate_logs(argc - 2, argv + 2);
    if (!strcmp(argv[1], "content")) return cli_generate_content(argc - 2, argv + 2);
    fprintf(stderr, "logproc generate: unknown kind '%s' (logs or content)\n", argv[1]);
    return 2;
}
