/* libFuzzer target: flag parsing (runtime/flags.h) and ISO-8601 durations.
 *
 * The input is split into arguments at NUL and newline bytes and parsed against two tables that
 * hold every flag type (bool, int, double, string, duration, list, map), aliases of one letter
 * and long ones, an ignored and a pending flag; a control byte in front picks whether the second
 * table has a required flag. After a successful parse every list item of the map flag holds '=',
 * and flags_free releases everything (leak detection is on). Each argument is also given to
 * flags_parse_duration, and a duration that parses must format (flags_format_duration) to text
 * that parses back to the same milliseconds.
 *
 *   fuzz_flags -max_len=4096 CORPUS_DIR */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/flags.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

#define MAX_ARGS 256

typedef struct common_opts {
    bool drain;
    int64_t parallelism;
    char *output;
    int64_t checkpoint_interval;
    flag_list disable;
    double rate;
    bool legacy;
} common_opts;

typedef struct job_opts {
    flag_list props;
    int64_t window;
    char *name;
    int64_t max_bytes;
    bool pending;
} job_opts;

static const flag_def common_defs[] = {
    {"drain", NULL, FLAG_BOOL, "true", offsetof(common_opts, drain), "drain at the end", 0},
    {"parallelism", "p", FLAG_INT, "1", offsetof(common_opts, parallelism), "tasks", 0},
    {"s3OutputDirectory", "outputDirectory,o", FLAG_STRING, "out",
     offsetof(common_opts, output), "output root", 0},
    {"checkpointInterval", NULL, FLAG_DURATION, "PT1M",
     offsetof(common_opts, checkpoint_interval), "interval", 0},
    {"disableS3Sink", "d", FLAG_LIST, NULL, offsetof(common_opts, disable), "sinks off", 0},
    {"sampleRate", NULL, FLAG_DOUBLE, "0.5", offsetof(common_opts, rate), "rate", 0},
    {"legacyMode", NULL, FLAG_BOOL, NULL, offsetof(common_opts, legacy), "unused", FLAG_IGNORED},
};

static const flag_def job_defs[] = {
    {"kafkaProperty", "X", FLAG_MAP, NULL, offsetof(job_opts, props), "k=v", 0},
    {"window", "w", FLAG_DURATION, "P1D", offsetof(job_opts, window), "window", 0},
    {"jobName", NULL, FLAG_STRING, NULL, offsetof(job_opts, name), "name", 0},
    {"maxRecordBytes", NULL, FLAG_INT, "1048576", offsetof(job_opts, max_bytes), "limit", 0},
    {"futureFeature", NULL, FLAG_BOOL, NULL, offsetof(job_opts, pending), "later", FLAG_PENDING},
};

static const flag_def job_defs_required[] = {
    {"kafkaProperty", "X", FLAG_MAP, NULL, offsetof(job_opts, props), "k=v", 0},
    {"window", "w", FLAG_DURATION, NULL, offsetof(job_opts, window), "window", FLAG_REQUIRED},
    {"jobName", NULL, FLAG_STRING, NULL, offsetof(job_opts, name), "name", FLAG_REQUIRED},
};

static void check_duration(const char *s)
{
    int64_t ms;
    if (flags_parse_duration(s, &ms)) return;
    /* ISO text is summed in doubles: exact below 2^53 ms (285 000 years), so the round trip is
     * only asked of durations well inside that */
    if (ms > ((int64_t)1 << 50) || ms < -((int64_t)1 << 50)) return;
    char buf[64];
    flags_format_duration(ms, buf, sizeof buf);
    int64_t back;
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "duration '%s' = %lld ms -> '%s'\n", s, (long long)ms, buf);
    CHECK(flags_parse_duration(buf, &back) == 0);
    CHECK(back == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    bool required = data[0] & 1;
    data++;
    size--;
    /* NUL-terminated copy, cut into arguments in place */
    char *buf = malloc(size + 1);
    CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[MAX_ARGS];
    int argc = 0;
    char *p = buf;
    for (size_t i = 0; i <= size && argc < MAX_ARGS; i++) {
        if (buf[i] == '\n' || buf[i] == 0 || i == size) {
            buf[i] = 0;
            argv[argc++] = p;
            p = buf + i + 1;
        }
    }
    for (int i = 0; i < argc; i++) check_duration(argv[i]);

    common_opts c;
    job_opts j;
    memset(&c, 0, sizeof c);
    memset(&j, 0, sizeof j);
    flag_table t[2] = {FLAG_TABLE("common", common_defs, &c),
                       required ? (flag_table)FLAG_TABLE("job", job_defs_required, &j)
                                : (flag_table)FLAG_TABLE("job", job_defs, &j)};
    char *pos[4];
    size_t npos = 0;
    bool help = false;
    char err[512];
    err[0] = 0;
    /* libFuzzer's stderr stays quiet: pending-flag warnings go through the log module */
    int rc = flags_parse(t, 2, argc, argv, pos, 4, &npos, &help, err, sizeof err);
    if (rc == 0) {
        CHECK(npos <= 4);
        for (size_t i = 0; i < npos; i++) CHECK(pos[i] >= buf && pos[i] <= buf + size);
        for (size_t i = 0; !help && i < j.props.n; i++) CHECK(strchr(j.props.items[i], '='));
    } else {
        CHECK(rc == -1 && err[0] != '\0');
    }
    flags_free(t, 2);
    free(buf);
    return 0;
}
