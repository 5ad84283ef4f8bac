/* logproc store: the object store from the command line, for operators and tests.
 *
 *   logproc store put     URL KEY FILE     upload FILE as KEY (multipart above --s3PartBytes)
 *   logproc store get     URL KEY [FILE]   write the object to FILE, or to stdout
 *   logproc store ls      URL [PREFIX]     one "size key" line per object, in key order
 *   logproc store rm      URL KEY          delete (absent is not an error)
 *   logproc store stage   URL KEY FILE     make FILE durable but invisible; prints the handle
 *   logproc store publish URL KEY HANDLE   make a staged file visible (again: no error)
 *   logproc store abort   URL KEY HANDLE   discard a staged file
 *
 * URL is s3://bucket[/prefix] or a local directory. S3 credentials come from the environment
 * only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), never from flags, so they
 * stay out of process listings. Exit status: 0 ok, 1 failure (get: also no such object),
 * 2 usage error. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "connectors/objstore.h"
#include "runtime/flags.h"

#define USAGE "logproc store put|get|ls|rm|stage|publish|abort URL KEY [FILE|HANDLE] [flags]"

typedef struct store_opts {
    char *s3Endpoint;
    char *s3Region;
    int64_t s3PartBytes;
    int64_t s3MaxAttempts;
    int64_t s3RetryBackoff;
    int64_t s3RequestTimeout;
    int64_t maxObjectBytes;
} store_opts;

static store_opts opts;

static const flag_def store_flags[] = {
    {"s3Endpoint", NULL, FLAG_STRING, NULL, offsetof(store_opts, s3Endpoint),
     "S3 endpoint URL, path-style (http://127.0.0.1:4569); empty: env AWS_ENDPOINT_URL, else "
     "AWS for the region",
     0},
    {"s3Region", NULL, FLAG_STRING, NULL, offsetof(store_opts, s3Region),
     "S3 signing region; empty: env AWS_REGION, else us-east-1", 0},
    {"s3PartBytes", NULL, FLAG_INT, "8388608", offsetof(store_opts, s3PartBytes),
     "multipart part size in bytes (S3 allows 5 MiB to 5 GiB); larger files upload in parts", 0},
    {"s3MaxAttempts", NULL, FLAG_INT, "5", offsetof(store_opts, s3MaxAttempts),
     "attempts per S3 request (5xx, 429 and connection errors are retried)", 0},
    {"s3RetryBackoff", NULL, FLAG_DURATION, "PT0.1S", offsetof(store_opts, s3RetryBackoff),
     "delay before the first S3 retry, doubled for each further one", 0},
    {"s3RequestTimeout", NULL, FLAG_DURATION, "PT60S", offsetof(store_opts, s3RequestTimeout),
     "time limit of one S3 request", 0},
    {"maxObjectBytes", NULL, FLAG_INT, "1073741824", offsetof(store_opts, maxObjectBytes),
     "largest object get reads", 0},
};

static int print_entry(void *arg, const char *key, int64_t size)
{
    (void)arg;
    printf("%" PRId64 " %s\n", size, key);
    return 0;
}

static int write_out(const char *path, const rt_buf *b, char *err, size_t errlen)
{
    FILE *f = path ? fopen(path, "wb") : stdout;
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    int bad = b->len && fwrite(b->data, 1, b->len, f) != b->len;
    bad |= path ? fclose(f) != 0 : fflush(f) != 0;
    if (bad)
        snprintf(err, errlen, "writing %s failed: %s", path ? path : "stdout", strerror(errno));
    return bad ? -1 : 0;
}

int cli_store(int argc, char **argv)
{
    flag_table tables[] = {FLAG_TABLE("store", store_flags, &opts)};
    char err[1024];
    char *pos[4];
    size_t npos = 0;
    bool help = false;
    int status = 2;
    objstore *s = NULL;
    if (flags_parse(tables, 1, argc - 1, argv + 1, pos, 4, &npos, &help, err, sizeof err) < 0) {
        fprintf(stderr, "logproc store: %s\n", err);
        goto out;
    }
    if (help) {
        flags_help(stdout, USAGE, tables, 1);
        status = 0;
        goto out;
    }
    static const struct {
        const char *verb;
        size_t min, max; /* positionals after the verb */
    } verbs[] = {{"put", 3, 3},   {"get", 2, 3},     {"ls", 1, 2},   {"rm", 2, 2},
                 {"stage", 3, 3}, {"publish", 3, 3}, {"abort", 3, 3}};
    size_t v = sizeof verbs / sizeof verbs[0];
    if (npos >= 1)
        for (v = 0; v < sizeof verbs / sizeof verbs[0]; v++)
            if (!strcmp(pos[0], verbs[v].verb)) break;
    if (v == sizeof verbs / sizeof verbs[0] || npos - 1 < verbs[v].min || npos - 1 > verbs[v].max) {
        fprintf(stderr, "usage: %s\n", USAGE);
        goto out;
    }
    if (opts.maxObjectBytes <= 0 || opts.s3MaxAttempts <= 0 || opts.s3MaxAttempts > 100) {
        fprintf(stderr, "logproc store: --maxObjectBytes must be > 0 and --s3MaxAttempts in "
                        "1..100\n");
        goto out;
    }
    const char *verb = pos[0], *url = pos[1];
    const char *key = npos > 2 ? pos[2] : NULL, *arg = npos > 3 ? pos[3] : NULL;
    objstore_config cfg = {
        .endpoint = opts.s3Endpoint && *opts.s3Endpoint ? opts.s3Endpoint : NULL,
        .region = opts.s3Region && *opts.s3Region ? opts.s3Region : NULL,
        .max_attempts = (int)opts.s3MaxAttempts,
        .backoff_ms = opts.s3RetryBackoff,
        .part_bytes = opts.s3PartBytes,
        .timeout_ms = opts.s3RequestTimeout,
    };
    status = 1;
    if (objstore_open(url, &cfg, &s, err, sizeof err)) {
        fprintf(stderr, "logproc store: %s\n", err);
        goto out;
    }
    int rc = 0;
    if (!strcmp(verb, "put")) {
        rc = objstore_put_file(s, key, arg, err, sizeof err);
    } else if (!strcmp(verb, "get")) {
        rt_buf b;
        rt_buf_init(&b, (size_t)opts.maxObjectBytes);
        rc = objstore_get(s, key, &b, err, sizeof err);
        if (rc == 1) {
            snprintf(err, sizeof err, "%s: no such object '%s'", url, key);
            rc = -1;
        } else if (rc == 0) {
            rc = write_out(arg, &b, err, sizeof err);
        }
        rt_buf_free(&b);
    } else if (!strcmp(verb, "ls")) {
        rc = objstore_list(s, key ? key : "", print_entry, NULL, err, sizeof err);
    } else if (!strcmp(verb, "rm")) {
        rc = objstore_delete(s, key, err, sizeof err);
    } else if (!strcmp(verb, "stage")) {
        char *h = NULL;
        rc = objstore_stage_file(s, key, arg, &h, err, sizeof err);
        if (!rc) printf("%s\n", h);
        free(h);
    } else if (!strcmp(verb, "publish")) {
        rc = objstore_publish(s, key, arg, err, sizeof err);
    } else {
        rc = objstore_abort(s, key, arg, err, sizeof err);
    }
    if (rc) {
        fprintf(stderr, "logproc store %s: %s\n", verb, err);
    } else {
        status = 0;
    }
    if (objstore_is_s3(s)) {
        objstore_stats st = objstore_get_stats(s);
        if (st.retries)
            fprintf(stderr, "logproc store %s: %" PRIu64 " requests, %" PRIu64 " retries\n", verb,
                    st.requests, st.retries);
    }
out:
    objstore_free(s);
    flags_free(tables, 1);
    return status;
}
