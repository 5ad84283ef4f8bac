/* The content join of flat-output (spec/flat-output.md §9; docs/JOIN.md "Content join"): an
 * operator that looks each TinyEvent's content_id up in the Content API (connectors/
 * content_api.h) and adds the fields of --contentIdFieldKeys it finds as other_content_ids,
 * for the keys the TinyEvent does not already have (logged property values win). The job puts
 * one on the tiny actions before J3 and one on J1's output (tiny insertions) before J2, never
 * on impressions.
 *
 * Lookups are synchronous: a miss blocks the task for the HTTP call (and its retries), with the
 * per-operator cache in front, so a catalogue of N contents costs about N calls per task and
 * cache lifetime. A TinyEvent with an empty content_id passes unchanged.
 *
 * A lookup that fails (status, transport error, timeout, unparsable body, a non-string field)
 * never fails the job: after the retries the record goes on without the foreign keys and a
 * ContentApiError row (schemas/content_api_error.avsc) goes to port 1; the failure is cached for
 * the short failure TTL, and each record served by a cached failure gets a row too (attempts 0,
 * cached true), so nothing loses its keys without a trace.
 *
 * Metrics (labels operator=<uid>,task=<task>): contentCacheHits, contentCacheMisses,
 * contentApiRequests, contentApiRetries, contentApiFailures (counters), contentCacheEntries
 * (gauge). The cache is not checkpointed: a restored task starts with an empty cache. */
#ifndef LOGPROC_JOIN_CONTENT_LOOKUP_H
#define LOGPROC_JOIN_CONTENT_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "jobs/join/join_records.h"
#include "runtime/buf.h"
#include "runtime/graph.h"
#include "runtime/record.h"

/* Side rows have rt_record.type REC_CONTENT_API_ERROR (join_records.h); data: const
 * content_api_error_row *. */

/* Name of the embedded schema (schemas/content_api_error.avsc). */
#define CONTENT_LOOKUP_ERROR_SCHEMA "content_api_error"

/* One failed lookup of one record. Strings borrowed for the push; NULL = "". */
typedef struct content_api_error_row {
    const char *lookup; /* "insertion" or "action": which operator */
    int64_t platform_id;
    const char *log_user_id, *content_id, *insertion_id, *action_id;
    int64_t log_timestamp;
    int32_t status; /* last HTTP status; 0 for a transport error or timeout */
    const char *error;
    int32_t attempts; /* HTTP requests made for this record (0: a cached failure) */
    int cached;
    int64_t processing_timestamp; /* wall clock ms when the lookup ended */
} content_api_error_row;

typedef struct content_lookup_config {
    int dummy;          /* 1: pass every record through unchanged (--enableDummyContentApiLoader) */
    const char *lookup; /* "insertion" or "action" (rows and log lines); copied */
    const char *root_url, *api_key; /* copied; the key is never logged */
    int64_t timeout_ms;
    int64_t max_attempts;
    char *const *attempts_per_status; /* "code=attempts" items */
    size_t n_attempts_per_status;
    const char *const *keys; /* --contentIdFieldKeys */
    size_t n_keys;
    int64_t cache_max_entries, cache_ttl_ms, failure_ttl_ms;
} content_lookup_config;

/* Checks what content_lookup_op_add would refuse (root URL without a trailing "/", attempts
 * out of range, too many keys) so the job can reject its flags before building. Returns 0, or
 * -1 with err naming the flag. */
int content_lookup_check(const content_lookup_config *cfg, char *err, size_t errlen);

/* Adds the operator: input 0 REC_TINY_EVENT; port 0 the TinyEvent (enriched, or as it came),
 * port 1 REC_CONTENT_API_ERROR rows. The HTTP client (one curl handle) and the cache are made
 * here and live until the graph is freed. Returns 0 with *out, or -1 with err. */
int content_lookup_op_add(rt_graph *g, const char *uid, const content_lookup_config *cfg,
                          rt_op **out, char *err, size_t errlen);

/* Appends the Avro datum of a content_api_error_row to out (the schema's field order). Returns
 * 0 or -1 (out's limit; out->len is then as before). */
int content_lookup_error_datum(const content_api_error_row *r, rt_buf *out);

/* Table-sink adapter (common_ops.h sink_op_config.encode; ctx unused): a REC_CONTENT_API_ERROR,
 * partition time = log_timestamp. Returns 0, or -1 on another record type or out's limit. */
int content_lookup_encode_error(void *ctx, const rt_record *rec, rt_buf *out,
                                int64_t *partition_ts);

#endif
