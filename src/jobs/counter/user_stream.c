#include "jobs/counter/user_stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/text.h"
#include "jobs/common_ops.h"
#include "jobs/counter/counter_fields.h"
#include "jobs/counter/counter_records.h"
#include "runtime/state.h"
#include "runtime/task.h"

/* ---- LogUserUser datums ---- */

static int read_long(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    uint64_t u = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return 0;
        }
    }
    return -1;
}

static int read_string(const uint8_t **p, const uint8_t *end, const char **s, size_t *n)
{
    int64_t len;
    if (read_long(p, end, &len) || len < 0 || len > end - *p) return -1;
    *s = (const char *)*p;
    *n = (size_t)len;
    *p += len;
    return 0;
}

int user_stream_decode_luu(const uint8_t *p, size_t n, user_stream_luu *out)
{
    const uint8_t *end = p + n;
    if (read_long(&p, end, &out->platform_id) || read_long(&p, end, &out->event_api_timestamp) ||
        read_string(&p, end, &out->log_user_id, &out->log_user_id_len) ||
        read_string(&p, end, &out->user_id, &out->user_id_len))
        return -1;
    return p == end ? 0 : -1;
}

typedef struct luu_decode {
    size_t max_record_bytes;
    rt_counter *invalid;
} luu_decode;

static int ld_open(rt_op *op)
{
    luu_decode *d = rt_op_self(op);
    return rt_op_counter(op, "numInvalidRecords", &d->invalid);
}

static int ld_process(rt_op *op, int input, const rt_record *rec)
{
    luu_decode *d = rt_op_self(op);
    const rt_source_record *src = rec->data;
    user_stream_luu luu;
    const char *error = src->error;
    if (!error && src->value_len > d->max_record_bytes) error = "value over --maxRecordBytes";
    if (!error && user_stream_decode_luu(src->value, src->value_len, &luu))
        error = "value is not a LogUserUser Avro datum";
    if (!error) {
        rt_record out = {
            .ts = luu.event_api_timestamp, .type = REC_COUNTER_LOG_USER_USER, .data = &luu};
        return rt_emit(op, 0, &out);
    }
    job_invalid_record inv = {
        .source = src->source,
        .partition = src->partition,
        .offset = src->offset,
        .timestamp = src->ts,
        .error = error,
        .raw = src->value,
        .raw_len = src->value_len > d->max_record_bytes ? d->max_record_bytes : src->value_len,
        .raw_length = (int64_t)(src->error ? src->raw_length : src->value_len),
    };
    rt_counter_add(d->invalid, 1);
    rt_record out = {.ts = src->ts >= 0 ? src->ts : 0, .type = REC_INVALID, .data = &inv};
    return rt_emit(op, 1, &out);
}

static void ld_close(rt_op *op)
{
    free(rt_op_self(op));
}

static const rt_op_vtbl luu_decode_vtbl = {
    .open = ld_open, .process = ld_process, .close = ld_close};

int user_stream_decode_op_add(rt_graph *g, const char *uid, size_t max_record_bytes, rt_op **out)
{
    luu_decode *d = calloc(1, sizeof *d);
    if (!d) return -1;
    d->max_record_bytes = max_record_bytes;
    if (rt_graph_add_op(g, uid, NULL, &luu_decode_vtbl, d, 1, 2, out)) {
        free(d);
        return -1;
    }
    return rt_op_set_port_name(*out, 1, "invalid_record");
}

/* ---- the reduced copy ---- */

void user_stream_reduce(const Event__JoinedEvent *e, user_stream_scratch *s,
                        Event__JoinedEvent *copy)
{
    event__joined_event__init(copy);
    if (e->ids)
        s->ids = *e->ids;
    else
        event__joined_identifiers__init(&s->ids);
    copy->ids = &s->ids;
    copy->timing = e->timing;
    delivery__request__init(&s->request);
    if (e->request) {
        s->request.search_query = e->request->search_query;
        const Common__Device *d = e->request->device;
        if (d && d->browser && d->browser->user_agent && d->browser->user_agent[0]) {
            common__browser__init(&s->browser);
            s->browser.user_agent = d->browser->user_agent;
            common__device__init(&s->device);
            s->device.browser = &s->browser;
            s->request.device = &s->device;
        }
    }
    copy->request = &s->request;
    copy->response_insertion = e->response_insertion;
    copy->user = e->user;
    if (e->impression && e->impression->content_id && e->impression->content_id[0]) {
        event__impression__init(&s->impression);
        s->impression.content_id = e->impression->content_id;
        copy->impression = &s->impression;
    }
    if (e->action) {
        event__action__init(&s->action);
        s->action.timing = e->timing; /* the joined event's top-level timing */
        s->action.has_action_type = e->action->has_action_type;
        s->action.action_type = e->action->action_type;
        s->action.custom_action_type = e->action->custom_action_type;
        if (e->action->content_id && e->action->content_id[0])
            s->action.content_id = e->action->content_id;
        copy->action = &s->action;
    }
}

/* ---- the temporal join ---- */

typedef struct join {
    rt_kv *facts;    /* key -> (ts i64, len u32, packed reduced event) ... in arrival order */
    rt_kv *versions; /* key -> (ts i64, len u32, user_id) ... sorted by ts */
    rt_counter *dropped;
    ua_family *ua;
    char *qbuf;
    size_t qcap;
    rt_buf scratch;
} join;

static int key_of(rt_buf *b, uint64_t platform, const char *luid, size_t n)
{
    uint8_t p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(platform >> (8 * i));
    rt_buf_reset(b);
    return rt_buf_append(b, p, 8) || rt_buf_append(b, luid, n) ? -1 : 0;
}

static int jn_open(rt_op *op)
{
    join *j = rt_op_self(op);
    char err[256];
    if (rt_kv_new(op, "facts", &j->facts) || rt_kv_new(op, "versions", &j->versions) ||
        rt_op_counter(op, "numDroppedWithoutUser", &j->dropped))
        return -1;
    if (ua_family_new(&j->ua, err, sizeof err)) return rt_op_fail(op, "%s", err);
    return 0;
}

/* The facts and versions tables hold per key a list of entries (i64 ts, u32 len, bytes) behind a
 * u32 count of the bytes used; the rest of the value is slack, so appending doubles the value
 * now and then instead of growing it (and copying it) by one entry each time. */
#define LIST_HDR 4

static uint8_t *list_get(rt_kv *kv, const uint8_t *key, size_t klen, size_t *used)
{
    size_t cap = 0;
    uint8_t *v = rt_kv_get(kv, key, klen, &cap);
    *used = 0;
    if (!v || cap < LIST_HDR) return NULL;
    uint32_t u;
    memcpy(&u, v, 4);
    *used = u <= cap - LIST_HDR ? u : cap - LIST_HDR;
    return v + LIST_HDR;
}

static void list_set_used(uint8_t *entries, size_t used)
{
    uint32_t u = (uint32_t)used;
    memcpy(entries - LIST_HDR, &u, 4);
}

/* Replaces key's list with bytes[0..n) (n == 0 deletes it). Returns 0 or -1. */
static int list_put(rt_kv *kv, const uint8_t *key, size_t klen, const uint8_t *bytes, size_t n)
{
    if (!n) {
        rt_kv_delete(kv, key, klen);
        return 0;
    }
    void *nv;
    if (rt_kv_upsert(kv, key, klen, LIST_HDR + n, &nv, NULL)) return -1;
    memcpy((uint8_t *)nv + LIST_HDR, bytes, n);
    list_set_used((uint8_t *)nv + LIST_HDR, n);
    return 0;
}

/* Appends (ts, len, bytes) to the value of key in kv, keeping entries sorted by ts when sorted. */
static int append_entry(rt_op *op, rt_kv *kv, const uint8_t *key, size_t klen, int64_t ts,
                        const void *bytes, size_t n, int sorted)
{
    size_t old = 0, cap = 0;
    uint8_t *v = list_get(kv, key, klen, &old);
    if (v) rt_kv_get(kv, key, klen, &cap);
    size_t add = 12 + n;
    if (old + add > USER_STREAM_MAX_PENDING_BYTES)
        return rt_op_fail(op,
                          "%zu bytes wait under one (platform_id, log_user_id), over the limit of "
                          "%zu",
                          old + add, USER_STREAM_MAX_PENDING_BYTES);
    size_t at = old;
    if (sorted) { /* the insertion point: after every entry with ts <= this one */
        at = 0;
        while (at < old) {
            int64_t t;
            uint32_t len;
            memcpy(&t, v + at, 8);
            memcpy(&len, v + at + 8, 4);
            if (t > ts) break;
            at += 12 + len;
        }
    }
    uint8_t *p = v;
    if (!v || LIST_HDR + old + add > cap) {
        size_t grow = cap ? 2 * cap : 256;
        if (grow < LIST_HDR + old + add) grow = LIST_HDR + old + add;
        if (grow > LIST_HDR + USER_STREAM_MAX_PENDING_BYTES) grow = LIST_HDR + USER_STREAM_MAX_PENDING_BYTES;
        void *nv;
        if (rt_kv_upsert(kv, key, klen, grow, &nv, NULL)) return -1;
        p = (uint8_t *)nv + LIST_HDR;
    }
    memmove(p + at + add, p + at, old - at);
    uint32_t len32 = (uint32_t)n;
    memcpy(p + at, &ts, 8);
    memcpy(p + at + 8, &len32, 4);
    if (n) memcpy(p + at + 12, bytes, n);
    list_set_used(p, old + add);
    return 0;
}

static int jn_process(rt_op *op, int input, const rt_record *rec)
{
    join *j = rt_op_self(op);
    if (input == 1) {
        const user_stream_luu *l = rec->data;
        if (key_of(&j->scratch, (uint64_t)l->platform_id, l->log_user_id, l->log_user_id_len))
            return rt_op_fail(op, "a log_user_id over the key limit");
        if (append_entry(op, j->versions, j->scratch.data, j->scratch.len, rec->ts, l->user_id,
                         l->user_id_len, 1))
            return -1;
        /* a timer lets older versions go once this one is at or below the watermark */
        return rt_timer_register(op, rec->ts, j->scratch.data, j->scratch.len);
    }
    const counter_fields *f = rec->data;
    user_stream_scratch sc;
    Event__JoinedEvent copy;
    user_stream_reduce(f->event, &sc, &copy);
    const char *luid = cfield_log_user_id(&copy);
    if (key_of(&j->scratch, cfield_platform_id(&copy), luid, strlen(luid)))
        return rt_op_fail(op, "a log_user_id over the key limit");
    size_t n = event__joined_event__get_packed_size(&copy);
    uint8_t *packed = malloc(n ? n : 1);
    if (!packed) return rt_op_fail(op, "out of memory packing a reduced joined event");
    event__joined_event__pack(&copy, packed);
    int rc = append_entry(op, j->facts, j->scratch.data, j->scratch.len, rec->ts, packed, n, 0);
    free(packed);
    if (rc) return -1;
    return rt_timer_register(op, rec->ts, j->scratch.data, j->scratch.len);
}

/* The user_id of the newest version at or before ts, or NULL. */
static const uint8_t *version_at(const uint8_t *v, size_t vlen, int64_t ts, uint32_t *len)
{
    const uint8_t *best = NULL;
    for (size_t at = 0; at < vlen;) {
        int64_t t;
        uint32_t n;
        memcpy(&t, v + at, 8);
        memcpy(&n, v + at + 8, 4);
        if (t > ts) break;
        best = v + at + 12;
        *len = n;
        at += 12 + n;
    }
    return best;
}

static int emit_fact(rt_op *op, join *j, const uint8_t *bytes, size_t n, int64_t ts,
                     const char *user_id, size_t ulen)
{
    Event__JoinedEvent *e = event__joined_event__unpack(NULL, n, bytes);
    if (!e) return rt_op_fail(op, "a reduced joined event did not unpack");
    char *uid = malloc(ulen + 1);
    int rc = -1;
    if (!uid) {
        rt_op_fail(op, "out of memory");
        goto out;
    }
    memcpy(uid, user_id, ulen);
    uid[ulen] = 0;
    char *saved = e->ids->user_id;
    e->ids->user_id = uid;
    const char *q = e->request && e->request->search_query ? e->request->search_query : "";
    size_t need = text_lower_cap(strlen(q));
    if (need > j->qcap) {
        char *nb = realloc(j->qbuf, need);
        if (!nb) {
            e->ids->user_id = saved;
            rt_op_fail(op, "out of memory lower-casing a query");
            goto out;
        }
        j->qbuf = nb;
        j->qcap = need;
    }
    counter_fields f;
    cfield_extract(e, j->ua, j->qbuf, j->qcap, &f);
    rt_record out = {.ts = ts, .type = REC_COUNTER_EVENT, .data = &f};
    rc = rt_emit(op, 0, &out);
    e->ids->user_id = saved;
out:
    free(uid);
    event__joined_event__free_unpacked(e, NULL);
    return rc;
}

static int jn_timer(rt_op *op, int64_t T, const uint8_t *key, size_t klen)
{
    join *j = rt_op_self(op);
    size_t flen = 0, vlen = 0;
    uint8_t *facts = list_get(j->facts, key, klen, &flen);
    if (facts) {
        /* take the facts out first: emitting runs downstream code, and the table may change */
        uint8_t *copy = malloc(flen);
        if (!copy) return rt_op_fail(op, "out of memory");
        memcpy(copy, facts, flen);
        rt_kv_delete(j->facts, key, klen);
        rt_buf keep;
        rt_buf_init(&keep, USER_STREAM_MAX_PENDING_BYTES);
        int rc = 0;
        for (size_t at = 0; at < flen && rc == 0;) {
            int64_t ts;
            uint32_t n;
            memcpy(&ts, copy + at, 8);
            memcpy(&n, copy + at + 8, 4);
            const uint8_t *bytes = copy + at + 12;
            if (ts > T) {
                rc = rt_buf_append(&keep, copy + at, 12 + n);
            } else {
                const uint8_t *v = list_get(j->versions, key, klen, &vlen);
                uint32_t ulen = 0;
                const uint8_t *user = v ? version_at(v, vlen, ts, &ulen) : NULL;
                if (!user)
                    rt_counter_add(j->dropped, 1);
                else
                    rc = emit_fact(op, j, bytes, n, ts, (const char *)user, ulen);
            }
            at += 12 + n;
        }
        if (rc == 0 && keep.len && list_put(j->facts, key, klen, keep.data, keep.len)) rc = -1;
        rt_buf_free(&keep);
        free(copy);
        if (rc) return -1;
    }
    /* drop the versions older than the newest one at or below T: no waiting or later fact can
     * need them (a late fact is joined at the next watermark, before this runs again) */
    uint8_t *v = list_get(j->versions, key, klen, &vlen);
    if (!v) return 0;
    size_t newest = SIZE_MAX;
    for (size_t at = 0; at < vlen;) {
        int64_t t;
        uint32_t n;
        memcpy(&t, v + at, 8);
        memcpy(&n, v + at + 8, 4);
        if (t > T) break;
        newest = at;
        at += 12 + n;
    }
    if (newest != SIZE_MAX && newest > 0) {
        /* in place: the slack stays (the list may grow again) */
        memmove(v, v + newest, vlen - newest);
        list_set_used(v, vlen - newest);
    }
    return 0;
}

static void jn_close(rt_op *op)
{
    join *j = rt_op_self(op);
    ua_family_free(j->ua);
    free(j->qbuf);
    rt_buf_free(&j->scratch);
    free(j);
}

static const rt_op_vtbl join_vtbl = {
    .open = jn_open,
    .process = jn_process,
    .on_timer = jn_timer,
    .close = jn_close,
};

int user_stream_join_op_add(rt_graph *g, const char *uid, rt_op **out)
{
    join *j = calloc(1, sizeof *j);
    if (!j) return -1;
    rt_buf_init(&j->scratch, 1 << 20);
    if (rt_graph_add_op(g, uid, NULL, &join_vtbl, j, 2, 1, out)) {
        rt_buf_free(&j->scratch);
        free(j);
        return -1;
    }
    return 0;
}
