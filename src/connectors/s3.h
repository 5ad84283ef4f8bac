/* S3 client for the object store (private to objstore.c; the unit tests use its pure helpers).
 *
 * One libcurl easy handle per client, reused so connections stay alive; requests are signed
 * by curl's CURLOPT_AWS_SIGV4 with path-style URLs <endpoint>/<bucket>/<key>. curl 7.88 signs
 * correctly only when the caller (1) sends x-amz-content-sha256 itself, (2) never passes
 * header-removal entries, (3) passes the query already sorted and percent-encoded with '=' on
 * valueless keys, and (4) percent-encodes the key path: every request here is built that way.
 *
 * Keys given to these functions are full object keys inside the bucket (the store's prefix
 * already applied). Errors name the operation, bucket/key and HTTP status with S3's <Code> and
 * <Message>; the secret key never appears in them. Not thread-safe. */
#ifndef LOGPROC_S3_H
#define LOGPROC_S3_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

#define S3_XML_LIMIT ((size_t)16 << 20) /* largest XML answer read (listings, errors) */
#define S3_MAX_PARTS 10000              /* S3's limit on parts per multipart upload */

typedef struct s3_config {
    const char *endpoint;                /* "http://127.0.0.1:4569" (no trailing '/'); required */
    const char *region;                  /* required */
    const char *bucket;                  /* required */
    const char *access_key, *secret_key; /* required */
    const char *session_token;           /* NULL: none */
    int max_attempts;                    /* >= 1 */
    int64_t backoff_ms;                  /* first retry delay, doubled per retry */
    int64_t part_bytes;                  /* multipart part size */
    int64_t timeout_ms;                  /* per request */
} s3_config;

typedef struct s3_client s3_client;

typedef struct s3_counters {
    uint64_t requests, retries, failures, bytes_up, bytes_down;
} s3_counters;

/* Copies cfg's strings. Returns 0 or -1 with err (curl could not start). */
int s3_client_new(const s3_config *cfg, s3_client **out, char *err, size_t errlen);
void s3_client_free(s3_client *c);
s3_counters s3_client_counters(const s3_client *c);

/* ---- objects (each one request, retried) ---- */

/* PutObject from memory. Returns 0 or -1. */
int s3_put(s3_client *c, const char *key, const void *data, size_t len, char *err, size_t errlen);
/* Uploads a file: one PutObject up to part_bytes, else a multipart upload streamed from the
 * file part by part (never the whole file in memory); a failed multipart upload is aborted. */
int s3_put_file(s3_client *c, const char *key, const char *path, char *err, size_t errlen);
/* GetObject into out (reset first; out->limit bounds it). Returns 0, 1 when absent, or -1. */
int s3_get(s3_client *c, const char *key, rt_buf *out, char *err, size_t errlen);
/* HeadObject. Returns 0 (size in *size when not NULL), 1 when absent, or -1. */
int s3_head(s3_client *c, const char *key, int64_t *size, char *err, size_t errlen);
/* DeleteObject (absent is not an error). Returns 0 or -1. */
int s3_delete(s3_client *c, const char *key, char *err, size_t errlen);
/* ListObjectsV2 over every page (continuation tokens), calling fn(arg, key, size) in S3's
 * order (lexicographic by UTF-8 bytes); fn returns non-zero to stop. Returns 0 or -1. */
int s3_list(s3_client *c, const char *prefix, int (*fn)(void *arg, const char *key, int64_t size),
            void *arg, char *err, size_t errlen);

/* ---- two-phase upload ---- */

/* Creates a multipart upload for key and uploads every part of the file (one empty part for an
 * empty file), without completing it: the bytes are durable but invisible. *handle (malloc'd)
 * is s3_handle_format's string. A failure aborts the upload. Returns 0 or -1. */
int s3_stage_file(s3_client *c, const char *key, const char *path, char **handle, char *err,
                  size_t errlen);
/* CompleteMultipartUpload. When the upload is gone (NoSuchUpload; some fake servers answer a
 * 5xx instead) and the key holds an object of the staged size, an earlier publish already
 * completed it: 0. Returns 0 or -1. */
int s3_publish(s3_client *c, const char *key, const char *handle, char *err, size_t errlen);
/* AbortMultipartUpload (an upload already gone is not an error; a server that does not
 * implement it, 405/501, gets a warning: the parts stay until a lifecycle rule removes them).
 * Returns 0 or -1. */
int s3_abort(s3_client *c, const char *key, const char *handle, char *err, size_t errlen);

/* ---- pure helpers (no I/O) ---- */

/* Appends key percent-encoded for a URL path: every byte except A-Za-z0-9-._~/ as %XX
 * (uppercase hex). Returns 0 or -1 (out's limit). */
int s3_encode_key(const char *key, rt_buf *out);
/* Appends a query string for n (name, value) pairs, kv[2i] and kv[2i+1] (value NULL means
 * valueless): sorted by encoded name then value, each encoded like a key but with '/' encoded
 * too, "name=value" joined by '&' ("uploads=" for a valueless name). No leading '?'.
 * Returns 0 or -1. */
int s3_encode_query(const char *const *kv, size_t n, rt_buf *out);

/* One page of a ListObjectsV2 answer. */
typedef struct s3_list_page {
    int truncated;    /* <IsTruncated>true */
    char *next_token; /* <NextContinuationToken>, unescaped, malloc'd; NULL when absent */
} s3_list_page;
/* Parses a ListObjectsV2 XML answer, calling fn(arg, key, size) per <Contents> with the key
 * XML-unescaped. Fills page (free page->next_token). Returns 0, the non-zero value fn returned
 * to stop, or -1 with err on malformed XML (a <Contents> without Key or Size, a bad number or
 * escape, a truncated page without a token). */
int s3_parse_list(const char *xml, size_t len, int (*fn)(void *arg, const char *key, int64_t size),
                  void *arg, s3_list_page *page, char *err, size_t errlen);
/* Replaces XML entities (&amp; &lt; &gt; &quot; &apos; &#N; &#xH;) in s[0..n) into a malloc'd
 * NUL-terminated string. Returns NULL on a bad entity or out of memory. */
char *s3_xml_unescape(const char *s, size_t n);

/* Stage handle: "s3mpu1:<uploadId>:<size>:<etag>,<etag>,..." with the upload id and ETags
 * percent-encoded (bytes outside A-Za-z0-9-._~ as %XX), size the file's byte count, part
 * numbers implicit from 1. Returns a malloc'd string, or NULL out of memory. */
char *s3_handle_format(const char *upload_id, int64_t size, char *const *etags, size_t nparts);
/* Parses a handle: *upload_id and *etags (an array of nparts strings) are malloc'd; free them
 * with s3_handle_release. Returns 0 or -1 with err (not a handle of this format, or > 10000
 * parts). */
int s3_handle_parse(const char *handle, char **upload_id, int64_t *size, char ***etags,
                    size_t *nparts, char *err, size_t errlen);
void s3_handle_release(char *upload_id, char **etags, size_t nparts);

#endif
