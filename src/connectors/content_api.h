/* The Content API client (spec/flat-output.md §9, spec/fake-data.md §9; docs/JOIN.md "Content
 * join"): the per-content lookup the join uses and the batch upload the content generator uses,
 * over one reused libcurl easy handle, plus the pure pieces they are made of (request body,
 * response parsing, the retry rule, the per-content cache), which the unit tests drive without
 * a network.
 *
 *   POST <root>v1/content/query   {"content_ids":["<id>"],"include_deleted":true}
 *                                  -> {"<id>":{"<field>":"<value>",...},...}
 *   PUT  <root>v1/content/batch   {"<id>":{"type":...,"storeId":...},...}
 *
 * Both send `Content-Type: application/json` and `x-api-key: <key>`. The key is sent in that
 * header and nowhere else: no log line and no error message of this module contains it.
 *
 * Failures never end the caller's job: content_api_query reports them in its result (status,
 * error text, attempts) and the caller decides (the join writes a side-output row and goes on).
 * Transport errors (timeout, connection refused) count as status 0 for the retry rule; an error
 * whose text names an HTTP/2 GOAWAY counts as 410, as in the reference. A 200 whose body does not
 * parse, or whose configured field is not a string, is a failure without retry (the same body
 * would come back). */
#ifndef LOGPROC_CONTENT_API_H
#define LOGPROC_CONTENT_API_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

/* Limits. */
#define CONTENT_API_MAX_KEYS 64            /* --contentIdFieldKeys (tiny.h TINY_MAX_KEYS) */
#define CONTENT_API_MAX_BODY (1u << 20)    /* response bytes read; more is an error */
#define CONTENT_API_MAX_ID 4096            /* content id bytes */
#define CONTENT_API_MAX_VALUE 4096         /* bytes of one kept field value */
#define CONTENT_API_MAX_STATUS_CODES 16    /* distinct status codes one lookup tracks */
#define CONTENT_API_MAX_ATTEMPTS_LIMIT 100 /* largest attempts value a flag may give */

/* ---- the configured field keys ---- */

/* --contentIdFieldKeys as Java String.hashCode values (matching is by hash, as in the reference:
 * a field whose name collides with a key's hash is kept too). */
typedef struct content_keys {
    size_t n;
    int32_t hash[CONTENT_API_MAX_KEYS];
} content_keys;

/* Fills k from names[0..n). Returns 0, or -1 with err when n is over CONTENT_API_MAX_KEYS. */
int content_keys_init(content_keys *k, const char *const *names, size_t n, char *err,
                      size_t errlen);

/* ---- the fields one content carries ---- */

/* The kept fields of one content: (hash of the field name, string value) pairs in the order of
 * the response, a later field with the same hash replacing the earlier value in place. Values
 * are owned (content_fields_clear frees them). */
typedef struct content_fields {
    size_t n;
    int32_t hash[CONTENT_API_MAX_KEYS];
    char *value[CONTENT_API_MAX_KEYS];
} content_fields;

void content_fields_clear(content_fields *f);

/* ---- request and response (pure) ---- */

/* Appends the query body for one id to out, the id escaped as Jackson writes a JSON string
 * (`"` and `\` backslashed, control characters as \n, \t, \r, \b, \f or \u00XX, everything else
 * as it is): {"content_ids":["<id>"],"include_deleted":true}. Returns 0 or -1 (out's limit). */
int content_api_query_body(const char *id, size_t id_len, rt_buf *out);

/* Parses a query response (len bytes, need not be NUL-terminated) and keeps, from the entry of
 * id, the fields whose name hash is in keys. `null` and a missing entry give no fields (0). A
 * body that is not JSON or not an object, an entry that is not an object (or null), a kept
 * field whose value is not a string (null included), a value over CONTENT_API_MAX_VALUE: -1
 * with err naming the content id and the field. out must be empty; it is left empty on error.
 * Cost: one jansson parse of the body. */
int content_api_parse_response(const char *body, size_t len, const char *id,
                               const content_keys *keys, content_fields *out, char *err,
                               size_t errlen);

/* ---- the retry rule (pure) ---- */

/* --contentApiMaxAttempts and --contentApiMaxAttemptsPerStatusCode. */
typedef struct content_api_retry_policy {
    int max_attempts; /* default for every status code, >= 1 */
    size_t n_codes;
    int code[CONTENT_API_MAX_STATUS_CODES];
    int attempts[CONTENT_API_MAX_STATUS_CODES];
} content_api_retry_policy;

/* Parses "code=attempts" items (the map flag) into p, with max_attempts as the default. Returns
 * 0, or -1 with err naming the item (not a number, attempts outside 1..100, too many codes). */
int content_api_retry_policy_init(content_api_retry_policy *p, int64_t max_attempts,
                                  char *const *items, size_t n, char *err, size_t errlen);

/* Failures of one lookup, counted per status code. Zero it per lookup. */
typedef struct content_api_failures {
    size_t n_codes;
    int code[CONTENT_API_MAX_STATUS_CODES];
    int count[CONTENT_API_MAX_STATUS_CODES];
} content_api_failures;

/* Records a failure with status (0 = transport error) and decides: after the n-th failure with
 * that code, retry iff n < the code's attempts, sleeping 50*(n+1) ms first (*sleep_ms).
 * Returns 1 (retry) or 0 (give up; also when more than CONTENT_API_MAX_STATUS_CODES distinct
 * codes were seen). */
int content_api_retry_decide(const content_api_retry_policy *p, content_api_failures *f,
                             int status, int *sleep_ms);

/* ---- the per-content cache ---- */

/* A cache of lookups by content id: at most max_entries (the least recently used goes first);
 * a success expires ttl_ms after its last access (Guava's expireAfterAccess, as the reference),
 * a failure failure_ttl_ms after it was stored (access does not extend it: a failing service is
 * asked again soon). Times are the caller's clock in ms (processing time). One owner, no lock.
 * Memory: about 100 bytes plus the id and the values per entry. */
typedef struct content_cache content_cache;

typedef struct content_cache_hit {
    int failed;          /* 1: a cached failure */
    size_t n_fields;     /* a success's kept fields: hash[i], value[i] */
    const int32_t *hash; /* borrowed until the next call that changes the cache */
    char *const *value;
    const char *error;   /* a cached failure's text ("" otherwise); borrowed the same */
    int status;          /* a cached failure's status */
} content_cache_hit;

/* Returns 0 with *out, or -1 (out of memory, max_entries < 1). */
int content_cache_new(int64_t max_entries, int64_t ttl_ms, int64_t failure_ttl_ms,
                      content_cache **out);
void content_cache_free(content_cache *c);

/* Looks id up at time now. Returns 1 with *hit (the entry becomes the most recently used; a
 * success's expiry moves to now + ttl), 0 when absent or expired (an expired entry is removed).
 * O(1) expected. */
int content_cache_get(content_cache *c, const char *id, size_t id_len, int64_t now,
                      content_cache_hit *hit);

/* Stores a success (fields moved into the cache: *fields is left empty) or, with fields NULL, a
 * failure (status, error copied) for id at time now, replacing any entry of id and evicting the
 * least recently used entries over max_entries. Returns 0 or -1 (out of memory: nothing is
 * stored, fields untouched). O(1) expected. */
int content_cache_put(content_cache *c, const char *id, size_t id_len, int64_t now,
                      content_fields *fields, int status, const char *error);

/* Entries held now (expired ones not yet met included). */
size_t content_cache_size(const content_cache *c);

/* ---- the client ---- */

typedef struct content_api_config {
    const char *root_url; /* ends with "/" (content_api_client_new checks) */
    const char *api_key;  /* sent as x-api-key; never logged */
    int64_t timeout_ms;   /* per attempt (--contentApiTimeout) */
    content_api_retry_policy retry;
    int no_sleep; /* tests: retry without the 50*(n+1) ms pauses */
} content_api_config;

typedef struct content_api_client content_api_client;

/* Copies cfg and opens a curl easy handle, reused by every call. Returns 0 with *out, or -1
 * with err (root without a trailing "/", out of memory). The caller must have called
 * curl_global_init once (main does). */
int content_api_client_new(const content_api_config *cfg, content_api_client **out, char *err,
                           size_t errlen);
void content_api_client_free(content_api_client *c);

/* What one lookup did. */
typedef struct content_api_result {
    int ok;          /* 1: fields are valid */
    int status;      /* the last HTTP status (0: transport error) */
    int attempts;    /* HTTP requests made */
    int retries;     /* of which retries */
    char error[512]; /* on failure: what went wrong, naming the URL (never the key) */
} content_api_result;

/* Looks up one content id with POST <root>v1/content/query, retrying per the policy (sleeping
 * between attempts: this blocks the caller for up to attempts * (timeout + pause)). On success
 * res->ok = 1 and *out holds the kept fields (must be empty on entry). Always returns 0; the
 * outcome is in *res. */
int content_api_query(content_api_client *c, const char *id, size_t id_len,
                      const content_keys *keys, content_fields *out, content_api_result *res);

/* Sends PUT <root>v1/content/batch with body (JSON), once, no retry. Returns 0 on status 200;
 * -1 with err naming the URL and the status (or the transport error) otherwise. */
int content_api_put_batch(content_api_client *c, const char *body, size_t len, char *err,
                          size_t errlen);

#endif
