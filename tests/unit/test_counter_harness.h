/* Shared by the counter's unit tests: a graph with the operator under test as its root and a
 * collector behind it that renders every output record as a line of text, so tests compare what
 * came out, in order, against the spec's scenario tables. */
#ifndef TEST_COUNTER_HARNESS_H
#define TEST_COUNTER_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/counter/counter_records.h"
#include "runtime/graph.h"

#define H_MAX_LINES 4096

typedef struct harness {
    rt_graph *g;
    rt_op *op;
    rt_op *collector;
    char *lines[H_MAX_LINES];
    int n;
    int taken; /* lines already returned by h_take */
} harness;

/* A test input: key (text), event time, count, record ts. */
typedef struct h_input {
    const char *key;
    int64_t t;
    int64_t count;
} h_input;

static inline void h_add_line(harness *h, const char *s)
{
    if (h->n < H_MAX_LINES) h->lines[h->n++] = strdup(s);
}

/* key bytes as text, other bytes as \xNN */
static inline const char *h_key_text(const uint8_t *k, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        if (k[i] >= 0x20 && k[i] < 0x7f)
            buf[o++] = (char)k[i];
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", k[i]);
    }
    buf[o] = 0;
    return buf;
}

static inline int h_collect(rt_op *op, int input, const rt_record *rec)
{
    harness *h = rt_op_self(op);
    char line[1024], kt[512];
    if (rec->type == REC_COUNTER_WINDOW) {
        const counter_window_result *r = rec->data;
        snprintf(line, sizeof line, "%s %d%s %" PRId64 " ttl=%" PRId64 " @%" PRId64,
                 h_key_text(r->key, r->key_len, kt, sizeof kt), r->bucket,
                 r->unit_ms == 3600000 ? "h" : "d", r->count, r->ttl, rec->ts);
    } else if (rec->type == REC_COUNTER_LAST_TIME) {
        const counter_last_time_result *r = rec->data;
        snprintf(
            line, sizeof line, "%s last=%" PRId64 " count=%" PRId64 " ttl=%" PRId64 " @%" PRId64,
            h_key_text(r->key, r->key_len, kt, sizeof kt), r->last_ts, r->count, r->ttl, rec->ts);
    } else if (rec->type == REC_COUNTER_TOP_QUERY) {
        snprintf(line, sizeof line, "top %016" PRIx64 " @%" PRId64, *(const uint64_t *)rec->data,
                 rec->ts);
    } else {
        snprintf(line, sizeof line, "type %d @%" PRId64, rec->type, rec->ts);
    }
    h_add_line(h, line);
    return 0;
}

static const rt_op_vtbl h_collector_vtbl = {.process = h_collect};

/* Call after adding the operator under test as h->op (the root). */
static inline void h_open(harness *h)
{
    if (rt_graph_add_op(h->g, "collect-test-output", NULL, &h_collector_vtbl, h, 1, 0,
                        &h->collector))
        abort();
    if (rt_graph_connect(h->g, h->op, 0, h->collector, 0)) abort();
    char err[256];
    if (rt_graph_open(h->g, err, sizeof err)) {
        fprintf(stderr, "open: %s\n", err);
        abort();
    }
}

static inline void h_free(harness *h)
{
    rt_graph_free(h->g);
    for (int i = 0; i < h->n; i++)
        free(h->lines[i]);
}

/* key_fn of the counting operators for h_input records */
static inline int h_key_count(void *ctx, const rt_record *rec, uint8_t *buf, size_t cap, int64_t *t,
                              int64_t *count)
{
    const h_input *in = rec->data;
    size_t n = strlen(in->key);
    if (n > cap) return -1;
    memcpy(buf, in->key, n);
    *t = in->t;
    *count = in->count;
    return (int)n;
}

static inline int h_key_time(void *ctx, const rt_record *rec, uint8_t *buf, size_t cap, int64_t *t)
{
    int64_t c;
    return h_key_count(ctx, rec, buf, cap, t, &c);
}

static inline int h_push(harness *h, const char *key, int64_t t, int64_t count, int64_t ts)
{
    h_input in = {key, t, count};
    rt_record rec = {.ts = ts, .type = 0, .data = &in};
    return rt_graph_push(h->g, h->op, 0, &rec);
}

static inline int h_wm(harness *h, int64_t wm)
{
    return rt_graph_advance_watermark(h->g, wm);
}

/* The lines output since the last call, joined with '\n' (static buffer). */
static inline const char *h_take(harness *h)
{
    static char buf[1 << 16];
    size_t len = 0;
    buf[0] = 0;
    for (; h->taken < h->n; h->taken++) {
        int w = snprintf(buf + len, sizeof buf - len, "%s%s", len ? "\n" : "", h->lines[h->taken]);
        if (w < 0 || (size_t)w >= sizeof buf - len) break;
        len += (size_t)w;
    }
    return buf;
}

#define MIN_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)

#endif
