#include "jobs/counter/last_time_count.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/counter/counter_records.h"
#include "runtime/state.h"

#define DAY_MS INT64_C(86400000)
#define KEY_CAP 65535

typedef struct day_count {
    int64_t day;
    int64_t count;
} day_count;

/* The state value: the last event time, then the days in ascending order. */
typedef struct lt_state {
    int64_t last_ts;
    day_count days[];
} lt_state;

typedef struct last_time {
    last_time_config cfg;
    int64_t keep_ttl;
    rt_kv *state;
    rt_counter *skipped;
    uint8_t key[KEY_CAP];
} last_time;

int64_t last_time_jitter(int32_t h)
{
    int32_t x = (int32_t)((uint32_t)513431879 * (uint32_t)h);
    if (x == INT32_MIN) x = 0;
    /* float arithmetic step by step, each product rounded to float as Java does */
    float r = fabsf((float)x / -2147483648.0f);
    r = r * 1000.0f;
    r = r * 60.0f;
    r = r * 60.0f;
    r = r * 24.0f;
    return (int64_t)r;
}

int64_t last_time_keep_ttl(int ttl_days)
{
    return ((int64_t)ttl_days + 3) * 86400;
}

static int64_t day_of(int64_t t)
{
    int64_t m = t % DAY_MS;
    if (m < 0) m += DAY_MS;
    return t - m;
}

static int lt_open(rt_op *op)
{
    last_time *l = rt_op_self(op);
    if (rt_kv_new(op, "days", &l->state)) return -1;
    return rt_op_counter(op, "numSkipped", &l->skipped);
}

/* Output-and-cleanup at time X (§B.8), emitted with ts out_ts. The state of key may be rewritten
 * or deleted. */
static int output(rt_op *op, last_time *l, const uint8_t *key, size_t klen, int64_t X,
                  int64_t out_ts)
{
    size_t vlen = 0;
    lt_state *s = rt_kv_get(l->state, key, klen, &vlen);
    if (!s) return 0; /* a stale timer: last time unset, nothing to say */
    size_t n = (vlen - sizeof *s) / sizeof(day_count), drop = 0;
    int64_t count = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t d = (X - s->days[i].day) / DAY_MS;
        if (d >= l->cfg.ttl_days) {
            drop = i + 1;
            continue;
        }
        if (d < 0) break;
        count += s->days[i].count;
    }
    counter_last_time_result r = {
        .table = l->cfg.tag,
        .key = key,
        .key_len = klen,
        .last_ts = s->last_ts,
        .count = count,
        .ttl = count == 0 ? LAST_TIME_ZERO_TTL_SECONDS : l->keep_ttl,
    };
    /* key is the operator's buffer or the timer's copy, never the state's bytes, so it stays
     * valid across the delete below */
    rt_record rec = {.ts = out_ts, .type = REC_COUNTER_LAST_TIME, .data = &r};
    if (rt_emit(op, 0, &rec)) return -1;
    if (drop == n) {
        rt_kv_delete(l->state, key, klen);
    } else if (drop) {
        s = rt_kv_get(l->state, key, klen, &vlen);
        memmove(s->days, s->days + drop, (n - drop) * sizeof(day_count));
        void *v;
        if (rt_kv_upsert(l->state, key, klen, sizeof *s + (n - drop) * sizeof(day_count), &v, NULL))
            return -1;
    }
    return 0;
}

static int lt_process(rt_op *op, int input, const rt_record *rec)
{
    last_time *l = rt_op_self(op);
    int64_t t;
    int klen = l->cfg.key_fn(l->cfg.ctx, rec, l->key, sizeof l->key, &t);
    if (klen < 0) {
        rt_counter_add(l->skipped, 1);
        return 0;
    }
    int64_t day = day_of(t);
    size_t vlen = 0;
    lt_state *s = rt_kv_get(l->state, l->key, (size_t)klen, &vlen);
    size_t n = s ? (vlen - sizeof *s) / sizeof(day_count) : 0;
    size_t i = n;
    while (i > 0 && s->days[i - 1].day > day)
        i--;
    if (i > 0 && s->days[i - 1].day == day) {
        s->days[i - 1].count++;
    } else {
        void *v;
        if (rt_kv_upsert(l->state, l->key, (size_t)klen, sizeof *s + (n + 1) * sizeof(day_count),
                         &v, NULL))
            return -1;
        s = v;
        memmove(&s->days[i + 1], &s->days[i], (n - i) * sizeof(day_count));
        s->days[i].day = day;
        s->days[i].count = 1;
    }
    s->last_ts = t;
    if (output(op, l, l->key, (size_t)klen, t, rec->ts)) return -1;
    int64_t at = day + ((int64_t)l->cfg.ttl_days + 2) * DAY_MS;
    if (l->cfg.hash_fn) {
        int32_t kh = l->cfg.hash_fn(l->cfg.ctx, l->key, (size_t)klen);
        at += last_time_jitter((int32_t)((uint32_t)kh + (uint32_t)(int32_t)(day / 1000)));
    }
    if (at < rec->ts) at = rec->ts;
    return rt_timer_register(op, at, l->key, (size_t)klen);
}

static int lt_timer(rt_op *op, int64_t T, const uint8_t *key, size_t klen)
{
    return output(op, rt_op_self(op), key, klen, T, T);
}

static void lt_close(rt_op *op)
{
    free(rt_op_self(op));
}

static const rt_op_vtbl lt_vtbl = {
    .open = lt_open,
    .process = lt_process,
    .on_timer = lt_timer,
    .close = lt_close,
};

int last_time_op_add(rt_graph *g, const char *uid, const last_time_config *cfg, rt_op **out)
{
    last_time *l = malloc(sizeof *l);
    if (!l) return -1;
    l->cfg = *cfg;
    l->keep_ttl = last_time_keep_ttl(cfg->ttl_days);
    l->state = NULL;
    l->skipped = NULL;
    if (rt_graph_add_op(g, uid, NULL, &lt_vtbl, l, 1, 1, out)) {
        free(l);
        return -1;
    }
    return 0;
}
