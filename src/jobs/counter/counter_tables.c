#include "jobs/counter/counter_tables.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "formats/java_text.h"
#include "formats/text.h"

const int ctable_metrics[CMETRIC_COUNT] = {
    32,  64,  96,  128, 160, 192, 224, 256, 288, 320,
    352, 384, 416, 448, 480, 512, 544, 576, 608, CMETRIC_SUM_PURCHASE_GMV,
};

static const char *const metric_names[20] = {
    "COUNT_IMPRESSION",
    "COUNT_NAVIGATE",
    "COUNT_PURCHASE",
    "COUNT_ADD_TO_CART",
    "COUNT_SHARE",
    "COUNT_LIKE",
    "COUNT_COMMENT",
    "COUNT_CHECKOUT",
    "COUNT_UNLIKE",
    "COUNT_REMOVE_FROM_CART",
    "COUNT_MAKE_OFFER",
    "COUNT_ASK_QUESTION",
    "COUNT_ANSWER_QUESTION",
    "COUNT_COMPLETE_SIGN_IN",
    "COUNT_COMPLETE_SIGN_UP",
    "COUNT_BOOKMARK",
    "COUNT_REMOVE_BOOKMARK",
    "COUNT_ADD_TO_LIST",
    "COUNT_REMOVE_FROM_LIST",
};

const char *ctable_metric_name(int metric)
{
    if (metric == CMETRIC_UNKNOWN) return "UNKNOWN_AGGREGATE";
    if (metric == CMETRIC_SUM_PURCHASE_GMV) return "SUM_PURCHASE_GMV";
    if (metric % 32 || metric < 32 || metric > 608) return NULL;
    return metric_names[metric / 32 - 1];
}

/* The last-time log-user query table is keyed by log_user_id (spec/README.md Resolutions; the
 * reference keys it by user_id by mistake). */
static const ctable_info tables[CTABLE_COUNT] = {
    [CTABLE_PLATFORM_DEVICE] = {"platform-device", "os,user_agent,fid:value", false, false, false,
                                true, CTYPE_ITEM_DEVICE_COUNT, 0, 2},
    [CTABLE_CONTENT_DEVICE] = {"content-device", "os,user_agent,fid:value", false, false, false,
                               true, CTYPE_ITEM_DEVICE_COUNT, 0, 3},
    [CTABLE_LOG_USER] = {"log-user", "fid:value", false, false, false, false, CTYPE_LOG_USER_COUNT,
                         0, 1},
    [CTABLE_USER] = {"user", "fid:value", false, false, true, false, CTYPE_USER_COUNT, 0, 1},
    [CTABLE_LAST_TIME_LOG_USER_EVENT] = {"last-time-log-user-event", "fid:value", true, false,
                                         false, false, CTYPE_LOG_USER_ITEM_COUNT,
                                         CTYPE_LOG_USER_ITEM_HOURS_AGO, 2},
    [CTABLE_LAST_TIME_USER_EVENT] = {"last-time-user-event", "fid:value", true, false, true, false,
                                     CTYPE_USER_ITEM_COUNT, CTYPE_USER_ITEM_HOURS_AGO, 2},
    [CTABLE_QUERY] = {"query", "fid:value", false, true, false, false, CTYPE_QUERY_COUNT, 0, 0},
    [CTABLE_CONTENT_QUERY] = {"content-query", "fid:value", false, true, false, false,
                              CTYPE_ITEM_QUERY_COUNT, 0, 1},
    [CTABLE_LAST_TIME_LOG_USER_QUERY] = {"last-time-log-user-query", "fid:value", true, true, false,
                                         false, CTYPE_LOG_USER_QUERY_COUNT,
                                         CTYPE_LOG_USER_QUERY_HOURS_AGO, 1},
    [CTABLE_LAST_TIME_USER_QUERY] = {"last-time-user-query", "fid:value", true, true, true, false,
                                     CTYPE_USER_QUERY_COUNT, CTYPE_USER_QUERY_HOURS_AGO, 1},
};

const ctable_info *ctable_get(ctable_id t)
{
    return (unsigned)t < CTABLE_COUNT ? &tables[t] : NULL;
}

int ctable_window(int size, int64_t unit_ms)
{
    if (unit_ms == 3600000) return size == 1 ? CWINDOW_HOUR : -1;
    if (unit_ms != 86400000) return -1;
    switch (size) {
    case 1:
        return CWINDOW_DAY;
    case 7:
        return CWINDOW_DAY_7;
    case 30:
        return CWINDOW_DAY_30;
    case 90:
        return CWINDOW_DAY_90;
    }
    return -1;
}

static int put_dec(rt_buf *out, int64_t v)
{
    char s[24];
    return rt_buf_append(out, s, text_i64_dec(s, v));
}

int ctable_feature_ids(ctable_id t, rt_buf *out)
{
    const ctable_info *ti = ctable_get(t);
    static const int windows[] = {CWINDOW_HOUR, CWINDOW_DAY, CWINDOW_DAY_7, CWINDOW_DAY_30};
    int first = 1;
#define PUT(fid)                                                                                   \
    do {                                                                                           \
        if (!first && rt_buf_put_u8(out, ',')) return -1;                                          \
        first = 0;                                                                                 \
        if (put_dec(out, (fid))) return -1;                                                        \
    } while (0)
    if (ti->last_time) {
        for (int m = 0; m < CMETRIC_COUNT; m++)
            PUT(ctable_fid(ti->count_type, ctable_metrics[m], CWINDOW_DAY_90));
        for (int m = 0; m < CMETRIC_COUNT; m++)
            PUT(ctable_fid(ti->hours_ago_type, ctable_metrics[m], CWINDOW_NONE));
    } else {
        for (int m = 0; m < CMETRIC_COUNT; m++)
            for (int w = 0; w < 4; w++)
                PUT(ctable_fid(ti->count_type, ctable_metrics[m], windows[w]));
    }
#undef PUT
    return 0;
}

/* ---- grouping keys ---- */

static void le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int ctable_key_encode(ctable_id t, const ctable_key *k, uint8_t *buf, size_t cap)
{
    const ctable_info *ti = ctable_get(t);
    size_t need = 10 + (ti->query ? 8 : 0);
    for (int i = 0; i < ti->nstrings; i++) {
        if (k->n[i] > UINT32_MAX) return -1;
        need += 4 + k->n[i];
    }
    if (need > cap || need > INT32_MAX) return -1;
    uint8_t *p = buf;
    le(p, (uint64_t)k->platform_id, 8);
    le(p + 8, (uint64_t)(uint16_t)k->metric, 2);
    p += 10;
    if (ti->query) {
        le(p, k->query_hash, 8);
        p += 8;
    }
    for (int i = 0; i < ti->nstrings; i++) {
        le(p, k->n[i], 4);
        if (k->n[i]) memcpy(p + 4, k->s[i], k->n[i]);
        p += 4 + k->n[i];
    }
    return (int)need;
}

int ctable_key_decode(ctable_id t, const uint8_t *bytes, size_t len, ctable_key *k)
{
    const ctable_info *ti = ctable_get(t);
    memset(k, 0, sizeof *k);
    size_t fixed = 10 + (ti->query ? 8 : 0);
    if (len < fixed) return -1;
    k->platform_id = (int64_t)rd_le(bytes, 8);
    k->metric = (int)rd_le(bytes + 8, 2);
    if (ti->query) k->query_hash = rd_le(bytes + 10, 8);
    size_t off = fixed;
    for (int i = 0; i < ti->nstrings; i++) {
        if (len - off < 4) return -1;
        size_t n = (size_t)rd_le(bytes + off, 4);
        off += 4;
        if (len - off < n) return -1;
        k->s[i] = (const char *)bytes + off;
        k->n[i] = n;
        off += n;
    }
    return off == len ? 0 : -1;
}

size_t ctable_hash_hex(uint64_t h, char out[17])
{
    return text_u64_hex(out, h);
}

uint64_t ctable_query_hash(const char *q, size_t len)
{
    return (uint64_t)XXH64(q, len, 0);
}

static int put_sep(rt_buf *out)
{
    return rt_buf_put_u8(out, CTABLE_JOIN);
}

static int put_type(rt_buf *out, char c)
{
    uint8_t b[2] = {CTABLE_TYPE, (uint8_t)c};
    return rt_buf_append(out, b, 2);
}

static int put_str(rt_buf *out, const ctable_key *k, int i)
{
    return rt_buf_append(out, k->s[i], k->n[i]);
}

static int put_hash(rt_buf *out, uint64_t h)
{
    char hex[17];
    return rt_buf_append(out, hex, ctable_hash_hex(h, hex));
}

int ctable_redis_key(ctable_id t, const ctable_key *k, rt_buf *out)
{
    if (put_dec(out, k->platform_id)) return -1;
    switch (t) {
    case CTABLE_PLATFORM_DEVICE:
        return 0;
    case CTABLE_CONTENT_DEVICE:
        return put_sep(out) || put_str(out, k, 0) ? -1 : 0;
    case CTABLE_LOG_USER:
    case CTABLE_USER:
        return put_sep(out) || put_type(out, 'u') || put_sep(out) || put_str(out, k, 0) ? -1 : 0;
    case CTABLE_QUERY:
        return put_sep(out) || put_type(out, 'q') || put_sep(out) || put_hash(out, k->query_hash)
                   ? -1
                   : 0;
    case CTABLE_CONTENT_QUERY:
        return put_sep(out) || put_str(out, k, 0) || put_sep(out) || put_type(out, 'q') ||
                       put_sep(out) || put_hash(out, k->query_hash)
                   ? -1
                   : 0;
    case CTABLE_LAST_TIME_LOG_USER_EVENT:
    case CTABLE_LAST_TIME_USER_EVENT:
        return put_sep(out) || put_type(out, 'u') || put_sep(out) || put_str(out, k, 0) ||
                       put_sep(out) || put_str(out, k, 1)
                   ? -1
                   : 0;
    case CTABLE_LAST_TIME_LOG_USER_QUERY:
    case CTABLE_LAST_TIME_USER_QUERY:
        return put_sep(out) || put_type(out, 'u') || put_sep(out) || put_str(out, k, 0) ||
                       put_sep(out) || put_type(out, 'q') || put_sep(out) ||
                       put_hash(out, k->query_hash)
                   ? -1
                   : 0;
    default:
        return -1;
    }
}

int ctable_redis_field(ctable_id t, const ctable_key *k, int64_t fid, rt_buf *out)
{
    if (t == CTABLE_PLATFORM_DEVICE) {
        if (put_str(out, k, 0) || put_sep(out) || put_str(out, k, 1) || put_sep(out)) return -1;
    } else if (t == CTABLE_CONTENT_DEVICE) {
        if (put_str(out, k, 1) || put_sep(out) || put_str(out, k, 2) || put_sep(out)) return -1;
    }
    return put_dec(out, fid);
}

static int32_t long_hash(int64_t v)
{
    uint64_t u = (uint64_t)v;
    return (int32_t)(uint32_t)(u ^ (u >> 32));
}

int32_t ctable_java_key_hash(ctable_id t, const ctable_key *k)
{
    const ctable_info *ti = ctable_get(t);
    const char *name = ctable_metric_name(k->metric);
    int32_t parts[4];
    int n = 0;
    parts[n++] = long_hash(k->platform_id);
    parts[n++] = java_string_hash(k->s[0], k->n[0]);
    if (ti->query)
        parts[n++] = long_hash((int64_t)k->query_hash);
    else
        parts[n++] = java_string_hash(k->s[1], k->n[1]);
    parts[n++] = name ? java_string_hash(name, strlen(name)) : 0;
    uint32_t r = (uint32_t)parts[0];
    for (int i = 1; i < n; i++)
        r = 31u * r + (uint32_t)parts[i];
    return (int32_t)r;
}
