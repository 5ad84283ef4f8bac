#include "jobs/content/content_window.h"

#include <stdlib.h>
#include <string.h>

#include "jobs/common_ops.h"
#include "runtime/operator.h"
#include "runtime/state.h"

/* State keys: 8 bytes big-endian window end (tumble, cumulate slices) or day start (cumulate
 * totals), 8 bytes little-endian platform_id, then the content id. */
#define KEY_HEAD 16
#define KEY_MAX (KEY_HEAD + 4096)

typedef struct window_op {
    cm_window_config cfg;
    rt_kv *sums;   /* tumble: window sums; cumulate: per-step slices not yet added to totals */
    rt_kv *totals; /* cumulate: running sums from the day start */
    rt_counter *late;
    uint8_t key[KEY_MAX];
} window_op;

int64_t cm_window_start(int64_t ts, int64_t size)
{
    int64_t r = ts % size;
    return r < 0 ? ts - r - size : ts - r;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int64_t wrap_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

/* Builds the state key for (head, platform, content id) in w->key. Returns its length or -1. */
static int make_key(window_op *w, int64_t head, uint64_t platform, const char *cid, size_t n)
{
    if (KEY_HEAD + n > sizeof w->key) return -1;
    put_be64(w->key, (uint64_t)head);
    job_put_le64(w->key + 8, platform);
    memcpy(w->key + KEY_HEAD, cid, n);
    return (int)(KEY_HEAD + n);
}

/* Adds src (CM_NCOLS counts) into key's value, creating it. Returns 0 or -1. */
static int add_into(rt_kv *kv, const uint8_t *key, size_t klen, const int64_t *src)
{
    void *val;
    if (rt_kv_upsert(kv, key, klen, CM_NCOLS * sizeof(int64_t), &val, NULL)) return -1;
    int64_t sums[CM_NCOLS];
    memcpy(sums, val, sizeof sums); /* values are plain bytes: no alignment promise */
    for (int i = 0; i < CM_NCOLS; i++) sums[i] = wrap_add(sums[i], src[i]);
    memcpy(val, sums, sizeof sums);
    return 0;
}

static int window_open(rt_op *op)
{
    window_op *w = rt_op_self(op);
    if (rt_kv_new(op, "sums", &w->sums)) return -1;
    if (w->cfg.kind == CM_WINDOW_CUMULATE && rt_kv_new(op, "totals", &w->totals)) return -1;
    if (rt_op_counter(op, "numLateRecordsDropped", &w->late)) return rt_op_fail(op, "out of memory");
    return 0;
}

static int window_process(rt_op *op, int input, const rt_record *rec)
{
    window_op *w = rt_op_self(op);
    if (rec->type != CM_REC_EVENT) return rt_op_fail(op, "unexpected record type %d", rec->type);
    const cm_event *e = rec->data;
    int64_t len = w->cfg.kind == CM_WINDOW_TUMBLE ? w->cfg.size_ms : w->cfg.step_ms;
    int64_t end = cm_window_start(rec->ts, len) + len;
    if (end - 1 <= rt_op_watermark(op)) {
        rt_counter_add(w->late, 1);
        return 0;
    }
    size_t n = strlen(e->content_id);
    int k = make_key(w, end, e->platform_id, e->content_id, n);
    if (k < 0)
        return rt_op_fail(op, "content id of %zu bytes is over the limit of %d", n,
                          KEY_MAX - KEY_HEAD);
    if (add_into(w->sums, w->key, (size_t)k, e->v)) return -1;
    return rt_timer_register(op, end - 1, NULL, 0);
}

/* ---- emitting a window ---- */

typedef struct entry {
    const uint8_t *key;
    size_t klen;
    const void *val;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    uint64_t px = get_le64(x->key + 8), py = get_le64(y->key + 8);
    if (px != py) return px < py ? -1 : 1;
    size_t nx = x->klen - KEY_HEAD, ny = y->klen - KEY_HEAD;
    int c = memcmp(x->key + KEY_HEAD, y->key + KEY_HEAD, nx < ny ? nx : ny);
    if (c) return c;
    return nx < ny ? -1 : nx > ny;
}

/* The entries of kv whose head is `head`, sorted by platform and content id, in a malloc'd
 * array (*out; NULL when none). Returns the count, or -1 out of memory. */
static long collect(rt_op *op, rt_kv *kv, int64_t head, entry **out)
{
    *out = NULL;
    size_t n = 0, cap = 0;
    rt_kv_iter it;
    const uint8_t *key;
    size_t klen;
    void *val;
    rt_kv_iter_begin(kv, &it);
    while (rt_kv_iter_next(&it, &key, &klen, &val, NULL)) {
        if (klen < KEY_HEAD || get_be64(key) != (uint64_t)head) continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            entry *ne = realloc(*out, nc * sizeof *ne);
            if (!ne) {
                rt_kv_iter_end(&it);
                free(*out);
                *out = NULL;
                rt_op_fail(op, "out of memory collecting a window of %zu rows", n);
                return -1;
            }
            *out = ne;
            cap = nc;
        }
        (*out)[n++] = (entry){key, klen, val};
    }
    rt_kv_iter_end(&it);
    if (n > 1) qsort(*out, n, sizeof **out, cmp_entry);
    return (long)n;
}

static int emit_rows(rt_op *op, const entry *es, long n, int64_t start, int64_t end)
{
    for (long i = 0; i < n; i++) {
        cm_metrics_row row = {
            .window_start = start,
            .window_end = end,
            .platform_id = get_le64(es[i].key + 8),
            .content_id = (const char *)es[i].key + KEY_HEAD,
            .content_id_len = es[i].klen - KEY_HEAD,
        };
        memcpy(row.v, es[i].val, sizeof row.v);
        rt_record r = {.ts = end - 1, .type = CM_REC_METRICS, .data = &row};
        if (rt_emit(op, 0, &r)) return -1;
    }
    return 0;
}

/* Deletes the collected entries (after emitting: the keys were borrowed until now). The keys
 * are copied first, since deleting frees an entry's key bytes. */
static void delete_all(window_op *w, rt_kv *kv, const entry *es, long n)
{
    for (long i = 0; i < n; i++) {
        memcpy(w->key, es[i].key, es[i].klen);
        rt_kv_delete(kv, w->key, es[i].klen);
    }
}

static int fire_tumble(rt_op *op, window_op *w, int64_t end)
{
    entry *es;
    long n = collect(op, w->sums, end, &es);
    if (n < 0) return -1;
    int rc = emit_rows(op, es, n, end - w->cfg.size_ms, end);
    if (rc == 0) delete_all(w, w->sums, es, n);
    free(es);
    return rc;
}

static int fire_cumulate(rt_op *op, window_op *w, int64_t end)
{
    int64_t day = cm_window_start(end - 1, w->cfg.size_ms);
    /* the step's slice joins the day's running sums */
    entry *es;
    long n = collect(op, w->sums, end, &es);
    if (n < 0) return -1;
    for (long i = 0; i < n; i++) {
        memcpy(w->key, es[i].key, es[i].klen);
        put_be64(w->key, (uint64_t)day);
        if (add_into(w->totals, w->key, es[i].klen, es[i].val)) {
            free(es);
            return -1;
        }
    }
    delete_all(w, w->sums, es, n);
    free(es);
    n = collect(op, w->totals, day, &es);
    if (n < 0) return -1;
    int rc = emit_rows(op, es, n, day, end);
    if (rc == 0 && n > 0) {
        if (end < day + w->cfg.size_ms) rc = rt_timer_register(op, end + w->cfg.step_ms - 1, NULL, 0);
        else delete_all(w, w->totals, es, n);
    }
    free(es);
    return rc;
}

static int window_timer(rt_op *op, int64_t time, const uint8_t *key, size_t key_len)
{
    window_op *w = rt_op_self(op);
    int64_t end = time + 1;
    return w->cfg.kind == CM_WINDOW_TUMBLE ? fire_tumble(op, w, end) : fire_cumulate(op, w, end);
}

static void window_close(rt_op *op)
{
    free(rt_op_self(op));
}

static const rt_op_vtbl window_vtbl = {
    .open = window_open, .process = window_process, .on_timer = window_timer,
    .close = window_close,
};

int cm_window_op_add(rt_graph *g, const char *uid, const cm_window_config *cfg, rt_op **out)
{
    if (cfg->size_ms <= 0) return -1;
    if (cfg->kind == CM_WINDOW_CUMULATE &&
        (cfg->step_ms <= 0 || cfg->step_ms > cfg->size_ms || cfg->size_ms % cfg->step_ms))
        return -1;
    window_op *w = calloc(1, sizeof *w);
    if (!w) return -1;
    w->cfg = *cfg;
    if (rt_graph_add_op(g, uid, "content-window", &window_vtbl, w, 1, 1, out)) {
        free(w);
        return -1;
    }
    return 0;
}
