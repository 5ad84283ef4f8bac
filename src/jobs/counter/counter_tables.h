/* The counter's ten tables (spec/other-jobs.md §B.4–§B.6): their names and row formats, the feature
 * ids (fid) they write, their grouping keys, and the Redis key and field bytes built from them.
 *
 * A grouping key travels through the counting operators as opaque bytes (the operators' state and
 * timer key) made by ctable_key_encode and read back by ctable_key_decode:
 *   platform_id (8 bytes LE), metric (2 bytes LE), [query hash (8 bytes LE), query tables only],
 *   then the table's strings, each a 4-byte LE length and the bytes,
 * so every part survives whatever bytes the ids contain. The Redis key and field are rendered
 * from the decoded parts only when a result is written. */
#ifndef LOGPROC_COUNTER_TABLES_H
#define LOGPROC_COUNTER_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

/* In the order the start-up metadata lists them (§B.6). */
typedef enum {
    CTABLE_PLATFORM_DEVICE = 0,
    CTABLE_CONTENT_DEVICE,
    CTABLE_LOG_USER,
    CTABLE_USER,
    CTABLE_LAST_TIME_LOG_USER_EVENT,
    CTABLE_LAST_TIME_USER_EVENT,
    CTABLE_QUERY,
    CTABLE_CONTENT_QUERY,
    CTABLE_LAST_TIME_LOG_USER_QUERY,
    CTABLE_LAST_TIME_USER_QUERY,
    CTABLE_COUNT
} ctable_id;

/* Key and field separators (§B.4, §F). */
#define CTABLE_JOIN 0x1F
#define CTABLE_TYPE 0x1D

/* CountWindow (§B.5). */
enum {
    CWINDOW_NONE = 0,
    CWINDOW_HOUR = 2,
    CWINDOW_DAY = 4,
    CWINDOW_DAY_7 = 6,
    CWINDOW_DAY_30 = 8,
    CWINDOW_DAY_90 = 10,
};

/* CountType values (n << 13, §B.5). QUERY and ITEM_QUERY are inferred by the spec. */
enum {
    CTYPE_ITEM_DEVICE_COUNT = 129 << 13,
    CTYPE_USER_COUNT = 140 << 13,
    CTYPE_LOG_USER_COUNT = 151 << 13,
    CTYPE_USER_ITEM_COUNT = 162 << 13,
    CTYPE_USER_ITEM_HOURS_AGO = 163 << 13,
    CTYPE_LOG_USER_ITEM_COUNT = 164 << 13,
    CTYPE_LOG_USER_ITEM_HOURS_AGO = 165 << 13,
    CTYPE_QUERY_COUNT = 166 << 13,
    CTYPE_ITEM_QUERY_COUNT = 177 << 13,
    CTYPE_USER_QUERY_COUNT = 188 << 13,
    CTYPE_USER_QUERY_HOURS_AGO = 189 << 13,
    CTYPE_LOG_USER_QUERY_COUNT = 190 << 13,
    CTYPE_LOG_USER_QUERY_HOURS_AGO = 191 << 13,
};

/* AggMetric values (action_type << 5) of the 20 counted metrics, in enum order, and
 * UNKNOWN_AGGREGATE (0). */
#define CMETRIC_UNKNOWN 0
#define CMETRIC_IMPRESSION 32
#define CMETRIC_SUM_PURCHASE_GMV 8160
#define CMETRIC_COUNT 20
extern const int ctable_metrics[CMETRIC_COUNT];

/* The AggMetric enum name of a metric value ("COUNT_NAVIGATE"), or NULL for a value that is not
 * one of the 21. */
const char *ctable_metric_name(int metric);

typedef struct ctable_info {
    const char *name;       /* metadata field and debug name: "platform-device" */
    const char *row_format; /* "os,user_agent,fid:value" or "fid:value" */
    bool last_time;         /* a LastTimeAndCount table (else hourly and daily sliding counts) */
    bool query;             /* keyed by the query hash: gated by the top-query filter */
    bool user_stream;       /* fed by stream U (needs LogUserUser) */
    bool device;            /* the field starts with os and user agent */
    int count_type;         /* CTYPE_* of the counts */
    int hours_ago_type;     /* CTYPE_*_HOURS_AGO of the last-time timestamp (last-time tables) */
    int nstrings;           /* string parts of the grouping key */
} ctable_info;

const ctable_info *ctable_get(ctable_id t);

/* fid = type | metric | window (§B.5). */
static inline int64_t ctable_fid(int type, int metric, int window)
{
    return (int64_t)type | metric | window;
}

/* The CountWindow of a sliding bucket: (1, hour) HOUR; (1, day) DAY; 7 DAY_7; 30 DAY_30;
 * 90 DAY_90. Returns -1 for any other size (an error in the reference). */
int ctable_window(int size, int64_t unit_ms);

/* Appends the table's feature id CSV (§B.6): 80 ids for a count table (metric-major, windows HOUR,
 * DAY, DAY_7, DAY_30), 40 for a last-time table (the 20 DAY_90 counts, then the 20 hours-ago).
 * Returns 0 or -1 (out's limit). */
int ctable_feature_ids(ctable_id t, rt_buf *out);

/* ---- grouping keys ---- */

/* The parts of a grouping key. Strings are in the table's order: platform-device (os, ua);
 * content-device (content_id, os, ua); log-user (log_user_id); user (user_id); query (none);
 * content-query (content_id); last-time-log-user-event (log_user_id, content_id);
 * last-time-user-event (user_id, content_id); last-time-log-user-query (log_user_id);
 * last-time-user-query (user_id). Strings need not be NUL-terminated. */
typedef struct ctable_key {
    int64_t platform_id;
    int metric;
    uint64_t query_hash; /* query tables */
    const char *s[3];
    size_t n[3];
} ctable_key;

/* Writes the key bytes of k for table t into buf. Returns the length, or -1 if it does not fit cap
 * (callers count and skip such an event). */
int ctable_key_encode(ctable_id t, const ctable_key *k, uint8_t *buf, size_t cap);
/* Reads key bytes back; strings point into bytes. Returns 0, or -1 if they are malformed. */
int ctable_key_decode(ctable_id t, const uint8_t *bytes, size_t len, ctable_key *k);

/* Appends the Redis key of k (§B.4: parts joined by 0x1F, platform as a signed decimal,
 * U = 0x1D 'u', Q = 0x1D 'q', the hash as lower-case hex without leading zeros). 0 or -1. */
int ctable_redis_key(ctable_id t, const ctable_key *k, rt_buf *out);
/* Appends the Redis field: "<os>␟<ua>␟<fid>" for the device tables, "<fid>" otherwise. 0 or -1. */
int ctable_redis_field(ctable_id t, const ctable_key *k, int64_t fid, rt_buf *out);

/* Java's hashCode of the key tuple of a last-time table (§B.8: r = h(f0), r = 31r + h(fi);
 * Long.hashCode for the platform and query hash, String.hashCode for ids and the metric's enum
 * name), in the tuple order of §B.4: (platform, id, content_id, metric) or
 * (platform, id, hash, metric). */
int32_t ctable_java_key_hash(ctable_id t, const ctable_key *k);

/* xxHash64 (seed 0) of the lowered query's UTF-8 bytes (§B.3). */
uint64_t ctable_query_hash(const char *q, size_t len);
/* Lower-case hex of h without leading zeros into out (17 bytes); returns the length. */
size_t ctable_hash_hex(uint64_t h, char out[17]);
/* The hash of the empty query (EMPTY_STRING_HASH, -1205034819632174695 as a Java long). */
#define CTABLE_EMPTY_QUERY_HASH UINT64_C(0xef46db3751d8e999)

#endif
