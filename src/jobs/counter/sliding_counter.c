#include "jobs/counter/sliding_counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs/counter/counter_records.h"
#include "runtime/state.h"

#define KEY_CAP 65535

typedef struct win {
    int64_t end;
    int64_t count;
} win;

typedef struct sliding {
    sliding_counter_config cfg;
    rt_kv *windows;
    rt_counter *skipped;
    uint8_t key[KEY_CAP];
} sliding;

int sliding_counter_check_emit_window(const char *flag, int64_t emit_ms, char *err, size_t errlen)
{
    if (emit_ms <= 0 || emit_ms % 60000 || emit_ms > 3600000 || 3600000 % emit_ms) {
        snprintf(err, errlen,
                 "flag --%s=%lldms: the emit window must be whole minutes from 1 to 60 that "
                 "divide an hour (PT1M, PT2M, PT3M, PT10M, PT12M, PT15M, PT20M, PT30M, PT60M, ...)",
                 flag, (long long)emit_ms);
        return -1;
    }
    return 0;
}

void sliding_counter_hourly(sliding_counter_config *c, int64_t emit_ms)
{
    memset(c, 0, sizeof *c);
    c->unit_ms = 3600000;
    c->emit_ms = emit_ms;
    c->nbuckets = 1;
    c->buckets[0] = 1;
}

void sliding_counter_daily(sliding_counter_config *c)
{
    memset(c, 0, sizeof *c);
    c->unit_ms = 86400000;
    c->emit_ms = 4 * 3600000;
    c->nbuckets = 3;
    c->buckets[0] = 30;
    c->buckets[1] = 7;
    c->buckets[2] = 1;
    c->expiry[0] = 5184000; /* 60 days */
    c->emit_order[0] = 2;   /* 1, 30, 7: the reference's order */
    c->emit_order[1] = 0;
    c->emit_order[2] = 1;
}

void sliding_counter_window_key(int64_t event_time, int64_t emit_ms, int daily, char out[64])
{
    int64_t end = event_time - event_time % emit_ms + emit_ms;
    time_t s = (time_t)(end / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    if (daily)
        snprintf(out, 64, "%04d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour);
    else
        snprintf(out, 64, "%04d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min);
}

static int sc_open(rt_op *op)
{
    sliding *s = rt_op_self(op);
    if (rt_kv_new(op, "windows", &s->windows)) return -1;
    return rt_op_counter(op, "numSkipped", &s->skipped);
}

/* Adds c to the window ending at end, keeping the array sorted. */
static int add_to_window(rt_op *op, sliding *s, size_t klen, int64_t end, int64_t c)
{
    size_t vlen = 0;
    win *w = rt_kv_get(s->windows, s->key, klen, &vlen);
    size_t n = vlen / sizeof(win);
    size_t i = n;
    while (i > 0 && w[i - 1].end > end)
        i--;
    if (i > 0 && w[i - 1].end == end) {
        w[i - 1].count += c;
        return 0;
    }
    void *v;
    if (rt_kv_upsert(s->windows, s->key, klen, (n + 1) * sizeof(win), &v, NULL)) return -1;
    w = v;
    memmove(&w[i + 1], &w[i], (n - i) * sizeof(win));
    w[i].end = end;
    w[i].count = c;
    return 0;
}

static int sc_process(rt_op *op, int input, const rt_record *rec)
{
    sliding *s = rt_op_self(op);
    const sliding_counter_config *c = &s->cfg;
    int64_t t, count;
    int klen = c->key_fn(c->ctx, rec, s->key, sizeof s->key, &t, &count);
    if (klen < 0) {
        rt_counter_add(s->skipped, 1);
        return 0;
    }
    int64_t base = t - t % c->emit_ms;
    if (add_to_window(op, s, (size_t)klen, base + c->emit_ms, count)) return -1;
    int64_t floor_ts = rec->ts - rec->ts % c->emit_ms + c->emit_ms;
    for (int k = -1; k < c->nbuckets; k++) {
        int64_t at = base + (k < 0 ? 0 : c->buckets[k]) * c->unit_ms + c->emit_ms;
        if (at < rec->ts) at = floor_ts;
        if (rt_timer_register(op, at, s->key, (size_t)klen)) return -1;
    }
    return 0;
}

static int sc_timer(rt_op *op, int64_t T, const uint8_t *key, size_t klen)
{
    sliding *s = rt_op_self(op);
    const sliding_counter_config *c = &s->cfg;
    int64_t sums[SLIDING_MAX_BUCKETS] = {0};
    size_t vlen = 0;
    win *w = rt_kv_get(s->windows, key, klen, &vlen);
    size_t n = vlen / sizeof(win), drop = 0;
    int maxb = c->buckets[0];
    for (size_t i = 0; i < n; i++) {
        int64_t d =
            (T - w[i].end) / c->unit_ms; /* truncates toward zero, as Java's long division */
        if (d >= maxb) {
            drop = i + 1;
            continue;
        }
        if (d < 0) break;
        for (int b = 0; b < c->nbuckets; b++)
            if (d < c->buckets[b]) sums[b] += w[i].count;
    }
    if (drop == n && n) {
        rt_kv_delete(s->windows, key, klen);
    } else if (drop) {
        memmove(w, w + drop, (n - drop) * sizeof(win));
        void *v;
        if (rt_kv_upsert(s->windows, key, klen, (n - drop) * sizeof(win), &v, NULL)) return -1;
    }
    for (int j = 0; j < c->nbuckets; j++) {
        int b = c->emit_order[j];
        counter_window_result r = {
            .table = c->tag,
            .key = key,
            .key_len = klen,
            .bucket = c->buckets[b],
            .unit_ms = c->unit_ms,
            .count = sums[b],
            .ttl = c->expiry[b],
        };
        rt_record out = {.ts = T, .type = REC_COUNTER_WINDOW, .data = &r};
        if (rt_emit(op, 0, &out)) return -1;
    }
    return 0;
}

static void sc_close(rt_op *op)
{
    free(rt_op_self(op));
}

static const rt_op_vtbl sc_vtbl = {
    .open = sc_open,
    .process = sc_process,
    .on_timer = sc_timer,
    .close = sc_close,
};

int sliding_counter_op_add(rt_graph *g, const char *uid, const sliding_counter_config *cfg,
                           rt_op **out)
{
    sliding *s = malloc(sizeof *s);
    if (!s) return -1;
    s->cfg = *cfg;
    s->windows = NULL;
    s->skipped = NULL;
    if (rt_graph_add_op(g, uid, NULL, &sc_vtbl, s, 1, 1, out)) {
        free(s);
        return -1;
    }
    return 0;
}
