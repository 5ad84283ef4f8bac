/* Object store: named objects under a root, in a local directory or an S3 bucket (libcurl with
 * AWS SigV4). Table sinks publish parts through it and checkpoints are stored in it.
 *
 *   objstore *s;
 *   objstore_open("s3://bucket/prefix", &cfg, &s, err, sizeof err);   // or "./out", "/data/x"
 *   objstore_put(s, "chk/0/chk-000007", bytes, n, err, sizeof err);    // atomic
 *   objstore_stage_file(s, "raw/log-request/dt=.../part-....avro", "/tmp/x", &h, ...); // 2PC
 *   objstore_publish(s, key, h, ...);                                   // after the checkpoint
 *
 * Keys are '/'-separated paths relative to the root, never starting with '/', no "." or ".."
 * segment. Every object appears whole or not at all: a local put writes a hidden temporary file,
 * fsyncs and renames; an S3 put is one PUT, or a multipart upload completed at the end.
 *
 * Two-phase publishing (exactly-once tables): stage_file makes a local file's bytes durable in
 * the store without making them visible (local: a hidden file beside the key; S3: a multipart
 * upload whose parts are all uploaded but not completed) and returns a handle, which the caller
 * keeps in its checkpoint; publish makes it visible under the key (local: rename; S3: complete
 * the upload). Publishing a handle twice, or after a crash when it was already published, is
 * not an error (a restore replays the publishes of its checkpoint).
 *
 * S3: endpoint, region and credentials from the config, else the environment
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL);
 * secrets never appear in errors or logs. Requests are retried with exponential backoff (5xx,
 * 429, connection errors) up to max_attempts; 4xx other than 429 fail at once with the status
 * and S3's error code. Not thread-safe: one objstore per thread (they are cheap). */
#ifndef LOGPROC_OBJSTORE_H
#define LOGPROC_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

typedef struct objstore_config {
    const char *endpoint;   /* "http://127.0.0.1:4569"; NULL: env, else https://s3.<region>.amazonaws.com */
    const char *region;     /* NULL: env AWS_REGION, else "us-east-1" */
    const char *access_key; /* NULL: env */
    const char *secret_key; /* NULL: env */
    int max_attempts;       /* per request; 0: 5 */
    int64_t backoff_ms;     /* first retry delay, doubled each time; 0: 100 */
    int64_t part_bytes;     /* multipart part size (>= 5 MiB); 0: 8 MiB */
    int64_t timeout_ms;     /* per request; 0: 60000 */
} objstore_config;

typedef struct objstore objstore;

/* Opens a store at url: "s3://bucket[/prefix]" or a local directory path (created on first
 * write). cfg may be NULL for a local path. Returns 0 or -1 with err. */
int objstore_open(const char *url, const objstore_config *cfg, objstore **out, char *err,
                  size_t errlen);
/* 1 for S3, 0 for a local directory. */
int objstore_is_s3(const objstore *s);
/* The url it was opened with. */
const char *objstore_url(const objstore *s);

/* Writes the object atomically (replacing an existing one). Returns 0 or -1 with err. */
int objstore_put(objstore *s, const char *key, const void *data, size_t len, char *err,
                 size_t errlen);
/* Uploads a local file as the object (multipart above part_bytes). Returns 0 or -1. */
int objstore_put_file(objstore *s, const char *key, const char *path, char *err, size_t errlen);

/* Reads the object into out (cleared first; out's limit bounds the size). Returns 0, 1 when
 * there is no such object, or -1 with err (including over out's limit). */
int objstore_get(objstore *s, const char *key, rt_buf *out, char *err, size_t errlen);

/* Lists keys starting with prefix, in lexicographic order, calling fn(arg, key, size) for each
 * (hidden staging objects excluded). fn returns 0 to go on, non-zero to stop. Returns 0 or -1. */
int objstore_list(objstore *s, const char *prefix,
                  int (*fn)(void *arg, const char *key, int64_t size), void *arg, char *err,
                  size_t errlen);

/* Deletes the object (no error when it does not exist). Returns 0 or -1 with err. */
int objstore_delete(objstore *s, const char *key, char *err, size_t errlen);

/* Two-phase publishing (above). stage_file: *handle is a malloc'd string (free it) that
 * publish and abort take. The local file is not removed. Returns 0 or -1 with err. */
int objstore_stage_file(objstore *s, const char *key, const char *path, char **handle, char *err,
                        size_t errlen);
int objstore_publish(objstore *s, const char *key, const char *handle, char *err, size_t errlen);
int objstore_abort(objstore *s, const char *key, const char *handle, char *err, size_t errlen);

typedef struct objstore_stats {
    uint64_t requests, retries, failures;
    uint64_t bytes_up, bytes_down;
} objstore_stats;
objstore_stats objstore_get_stats(const objstore *s);

void objstore_free(objstore *s);

#endif
