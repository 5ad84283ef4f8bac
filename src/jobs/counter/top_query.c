#include "jobs/counter/top_query.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/counter/counter_fields.h"
#include "jobs/counter/counter_records.h"
#include "jobs/counter/counter_tables.h"
#include "runtime/state.h"

/* ---- helpers ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int top_query_check(const top_query_config *c, char *err, size_t errlen)
{
    if (c->window_ms <= 0 || c->slide_ms <= 0) {
        snprintf(err, errlen,
                 "flags --searchQueryWindowSize and --searchQueryWindowSlide must be "
                 "positive durations");
        return -1;
    }
    if (c->window_ms / gcd64(c->window_ms, c->slide_ms) > 100000) {
        snprintf(err, errlen,
                 "flags --searchQueryWindowSize=%" PRId64 "ms and "
                 "--searchQueryWindowSlide=%" PRId64 "ms: a window of over 100000 panes of their "
                 "greatest common divisor",
                 c->window_ms, c->slide_ms);
        return -1;
    }
    return 0;
}

/* ---- count-top-query ---- */

typedef struct pane {
    int64_t start;
    int64_t count;
} pane;

/* State per hash: next < 0 marks a hash that passed (no panes follow). */
typedef struct tq_state {
    int64_t next; /* end - 1 of the next window to evaluate */
    pane panes[];
} tq_state;

typedef struct top_count {
    top_query_config cfg;
    int64_t pane_ms;
    rt_kv *state;
    rt_counter *skipped, *late;
} top_count;

static int tc_open(rt_op *op)
{
    top_count *c = rt_op_self(op);
    if (rt_kv_new(op, "panes", &c->state) || rt_op_counter(op, "numSkipped", &c->skipped) ||
        rt_op_counter(op, "numLateDropped", &c->late))
        return -1;
    return 0;
}

static int tc_process(rt_op *op, int input, const rt_record *rec)
{
    top_count *c = rt_op_self(op);
    const counter_fields *f = rec->data;
    if (cfield_is_blank(f->query, f->query_len) ||
        (int64_t)cfield_utf16_length(f->query, f->query_len) > c->cfg.max_length) {
        rt_counter_add(c->skipped, 1);
        return 0;
    }
    uint8_t key[8];
    memcpy(key, &f->query_hash, 8);
    size_t vlen = 0;
    tq_state *s = rt_kv_get(c->state, key, 8, &vlen);
    if (s && s->next < 0) return 0; /* passed already */
    int64_t t = rec->ts, W = c->cfg.window_ms, S = c->cfg.slide_ms;
    /* windows containing t: s in (t - W, t], multiples of S; those whose end - 1 is at or below the
     * watermark have fired already (Flink skips late windows) */
    int64_t first = floor_div(t - W, S) * S + S;
    int64_t wm = rt_op_watermark(op);
    if (wm != INT64_MIN && first + W - 1 <= wm) {
        int64_t live = floor_div(wm - W + 1, S) * S + S; /* smallest s with s + W - 1 > wm */
        if (live > first) first = live;
    }
    if (first > floor_div(t, S) * S) {
        rt_counter_add(c->late, 1);
        return 0;
    }
    int64_t p = floor_div(t, c->pane_ms) * c->pane_ms;
    size_t n = s ? (vlen - sizeof *s) / sizeof(pane) : 0;
    size_t i = n;
    while (i > 0 && s->panes[i - 1].start > p)
        i--;
    if (i > 0 && s->panes[i - 1].start == p) {
        s->panes[i - 1].count++;
    } else {
        void *v;
        int created;
        if (rt_kv_upsert(c->state, key, 8, sizeof *s + (n + 1) * sizeof(pane), &v, &created))
            return -1;
        s = v;
        if (created) s->next = INT64_MAX;
        memmove(&s->panes[i + 1], &s->panes[i], (n - i) * sizeof(pane));
        s->panes[i].start = p;
        s->panes[i].count = 1;
    }
    int64_t fire = first + W - 1;
    if (fire < s->next) {
        s->next = fire;
        if (rt_timer_register(op, fire, key, 8)) return -1;
    }
    return 0;
}

static int tc_timer(rt_op *op, int64_t F, const uint8_t *key, size_t klen)
{
    top_count *c = rt_op_self(op);
    size_t vlen = 0;
    tq_state *s = rt_kv_get(c->state, key, klen, &vlen);
    if (!s || s->next != F) return 0; /* stale: an earlier window took over */
    int64_t W = c->cfg.window_ms, S = c->cfg.slide_ms, start = F - W + 1;
    size_t n = (vlen - sizeof *s) / sizeof(pane);
    int64_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (s->panes[i].start >= start && s->panes[i].start < start + W) count += s->panes[i].count;
    if (count >= c->cfg.threshold) {
        uint64_t h;
        memcpy(&h, key, 8);
        void *v;
        if (rt_kv_upsert(c->state, key, klen, sizeof *s, &v, NULL)) return -1;
        ((tq_state *)v)->next = -1;
        rt_record out = {.ts = F, .type = REC_COUNTER_TOP_QUERY, .data = &h};
        return rt_emit(op, 0, &out);
    }
    /* panes before the next window's start are in no later window */
    int64_t next_start = start + S;
    size_t drop = 0;
    while (drop < n && s->panes[drop].start < next_start)
        drop++;
    if (drop == n) {
        rt_kv_delete(c->state, key, klen);
        return 0;
    }
    int64_t pmin = s->panes[drop].start;
    int64_t cover = floor_div(pmin - W, S) * S + S; /* first window containing pmin */
    if (cover > next_start) next_start = cover;
    memmove(s->panes, s->panes + drop, (n - drop) * sizeof(pane));
    void *v;
    if (rt_kv_upsert(c->state, key, klen, sizeof *s + (n - drop) * sizeof(pane), &v, NULL))
        return -1;
    s = v;
    s->next = next_start + W - 1;
    return rt_timer_register(op, s->next, key, klen);
}

static void tc_close(rt_op *op)
{
    free(rt_op_self(op));
}

static const rt_op_vtbl tc_vtbl = {
    .open = tc_open,
    .process = tc_process,
    .on_timer = tc_timer,
    .close = tc_close,
};

int top_query_count_op_add(rt_graph *g, const char *uid, const top_query_config *cfg, rt_op **out)
{
    top_count *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->cfg = *cfg;
    c->pane_ms = gcd64(cfg->window_ms, cfg->slide_ms);
    if (rt_graph_add_op(g, uid, NULL, &tc_vtbl, c, 1, 1, out)) {
        free(c);
        return -1;
    }
    return 0;
}

/* ---- gate-top-query ---- */

typedef struct gate {
    rt_kv *seen, *buffer;
    rt_counter *passed, *dropped;
    rt_buf scratch;
} gate;

static int gate_open(rt_op *op)
{
    gate *g = rt_op_self(op);
    if (rt_kv_new(op, "seen", &g->seen) || rt_kv_new(op, "buffer", &g->buffer) ||
        rt_op_counter(op, "numPassed", &g->passed) || rt_op_counter(op, "numDropped", &g->dropped))
        return -1;
    return 0;
}

static int result_hash(const rt_record *rec, uint64_t *h)
{
    int table;
    const uint8_t *key;
    size_t klen;
    if (rec->type == REC_COUNTER_WINDOW) {
        const counter_window_result *r = rec->data;
        table = r->table, key = r->key, klen = r->key_len;
    } else if (rec->type == REC_COUNTER_LAST_TIME) {
        const counter_last_time_result *r = rec->data;
        table = r->table, key = r->key, klen = r->key_len;
    } else {
        return -1;
    }
    ctable_key k;
    if (!ctable_get((ctable_id)table) || !ctable_get((ctable_id)table)->query ||
        ctable_key_decode((ctable_id)table, key, klen, &k))
        return -1;
    *h = k.query_hash;
    return 0;
}

/* A buffered result: type (1), table (4), key (varint length + bytes), then the window fields
 * (bucket 4, unit 8, count 8, ttl 8) or the last-time fields (last_ts 8, count 8, ttl 8). */
static int put_result(rt_buf *b, const rt_record *rec)
{
    if (rec->type == REC_COUNTER_WINDOW) {
        const counter_window_result *r = rec->data;
        return rt_buf_put_u8(b, 0) || rt_buf_put_u32(b, (uint32_t)r->table) ||
                       rt_buf_put_bytes(b, r->key, r->key_len) ||
                       rt_buf_put_u32(b, (uint32_t)r->bucket) || rt_buf_put_i64(b, r->unit_ms) ||
                       rt_buf_put_i64(b, r->count) || rt_buf_put_i64(b, r->ttl)
                   ? -1
                   : 0;
    }
    const counter_last_time_result *r = rec->data;
    return rt_buf_put_u8(b, 1) || rt_buf_put_u32(b, (uint32_t)r->table) ||
                   rt_buf_put_bytes(b, r->key, r->key_len) || rt_buf_put_i64(b, r->last_ts) ||
                   rt_buf_put_i64(b, r->count) || rt_buf_put_i64(b, r->ttl)
               ? -1
               : 0;
}

static int emit_buffered(rt_op *op, const uint8_t *p, size_t len, int64_t ts)
{
    rt_buf_reader rd;
    rt_buf_reader_init(&rd, p, len);
    while (rt_buf_reader_left(&rd)) {
        uint8_t kind;
        uint32_t table, u32;
        const uint8_t *key;
        size_t klen;
        if (rt_buf_read_u8(&rd, &kind) || rt_buf_read_u32(&rd, &table) ||
            rt_buf_read_bytes(&rd, &key, &klen))
            return rt_op_fail(op, "corrupt result buffer");
        rt_record out = {.ts = ts};
        counter_window_result w;
        counter_last_time_result l;
        if (kind == 0) {
            w = (counter_window_result){.table = (int)table, .key = key, .key_len = klen};
            if (rt_buf_read_u32(&rd, &u32) || rt_buf_read_i64(&rd, &w.unit_ms) ||
                rt_buf_read_i64(&rd, &w.count) || rt_buf_read_i64(&rd, &w.ttl))
                return rt_op_fail(op, "corrupt result buffer");
            w.bucket = (int)u32;
            out.type = REC_COUNTER_WINDOW;
            out.data = &w;
        } else {
            l = (counter_last_time_result){.table = (int)table, .key = key, .key_len = klen};
            if (rt_buf_read_i64(&rd, &l.last_ts) || rt_buf_read_i64(&rd, &l.count) ||
                rt_buf_read_i64(&rd, &l.ttl))
                return rt_op_fail(op, "corrupt result buffer");
            out.type = REC_COUNTER_LAST_TIME;
            out.data = &l;
        }
        if (rt_emit(op, 0, &out)) return -1;
    }
    return 0;
}

static int gate_process(rt_op *op, int input, const rt_record *rec)
{
    gate *g = rt_op_self(op);
    if (input == 1) {
        const uint64_t *h = rec->data;
        return rt_kv_put(g->seen, h, 8, NULL, 0);
    }
    uint64_t h;
    if (result_hash(rec, &h))
        return rt_op_fail(op, "a result of type %d is not of a query table", rec->type);
    if (h == CTABLE_EMPTY_QUERY_HASH) {
        rt_counter_add(g->passed, 1);
        return rt_emit(op, 0, rec);
    }
    rt_buf_reset(&g->scratch);
    if (put_result(&g->scratch, rec)) return rt_op_fail(op, "out of memory buffering a result");
    /* the value is u32 used, then the results, then slack: it grows by doubling, so a query
     * hash with n buffered results costs O(n) copying, not O(n^2) */
    size_t cap = 0;
    uint8_t *v = rt_kv_get(g->buffer, &h, 8, &cap);
    uint32_t used = 0;
    if (v) memcpy(&used, v, 4);
    if (used + g->scratch.len > TOP_QUERY_GATE_MAX_BYTES)
        return rt_op_fail(op, "results buffered for query hash %016" PRIx64 " exceed %zu bytes", h,
                          (size_t)TOP_QUERY_GATE_MAX_BYTES);
    size_t need = 4 + used + g->scratch.len;
    if (!v || need > cap) {
        size_t grow = cap ? 2 * cap : 256;
        if (grow < need) grow = need;
        if (grow > 4 + (size_t)TOP_QUERY_GATE_MAX_BYTES) grow = 4 + (size_t)TOP_QUERY_GATE_MAX_BYTES;
        void *nv;
        if (rt_kv_upsert(g->buffer, &h, 8, grow, &nv, NULL)) return -1;
        v = nv;
    }
    memcpy(v + 4 + used, g->scratch.data, g->scratch.len);
    used += (uint32_t)g->scratch.len;
    memcpy(v, &used, 4);
    return rt_timer_register(op, rec->ts, &h, 8);
}

static int gate_timer(rt_op *op, int64_t T, const uint8_t *key, size_t klen)
{
    gate *g = rt_op_self(op);
    size_t cap = 0;
    uint8_t *v = rt_kv_get(g->buffer, key, klen, &cap);
    if (!v) return 0; /* an earlier timer of this hash emptied the buffer */
    uint32_t used;
    memcpy(&used, v, 4);
    const uint8_t *p = v + 4;
    size_t len = used;
    /* emitting may not touch this table, but copy anyway: the value is ours until deleted */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return rt_op_fail(op, "out of memory releasing buffered results");
    memcpy(copy, p, len);
    rt_kv_delete(g->buffer, key, klen);
    int rc = 0;
    if (rt_kv_get(g->seen, key, klen, NULL)) {
        rc = emit_buffered(op, copy, len, T);
        rt_counter_add(g->passed, 1);
    } else {
        rt_counter_add(g->dropped, 1);
    }
    free(copy);
    return rc;
}

static void gate_close(rt_op *op)
{
    gate *g = rt_op_self(op);
    rt_buf_free(&g->scratch);
    free(g);
}

static const rt_op_vtbl gate_vtbl = {
    .open = gate_open,
    .process = gate_process,
    .on_timer = gate_timer,
    .close = gate_close,
};

int top_query_gate_op_add(rt_graph *g, const char *uid, rt_op **out)
{
    gate *gt = calloc(1, sizeof *gt);
    if (!gt) return -1;
    rt_buf_init(&gt->scratch, TOP_QUERY_GATE_MAX_BYTES);
    if (rt_graph_add_op(g, uid, NULL, &gate_vtbl, gt, 2, 1, out)) {
        free(gt);
        return -1;
    }
    return 0;
}
