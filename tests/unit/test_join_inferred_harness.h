/* Shared harness of the inferred-join tests: a graph with one join operator whose every port
 * feeds a capture operator, builders for TinyEvents and TinyDeliveryLogs from short specs, and
 * lookups over what was captured. Header-only (static functions) so each test file is one
 * executable. */
#ifndef TEST_JOIN_INFERRED_HARNESS_H
#define TEST_JOIN_INFERRED_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/pb_util.h"
#include "jobs/common_ops.h"
#include "formats/java_text.h"
#include "jobs/join/inferred_join.h"
#include "jobs/join/join_instances.h"
#include "jobs/join/join_records.h"
#include "jobs/join/tiny.h"
#include "runtime/graph.h"
#include "runtime/metrics.h"
#include "runtime/state.h"

#define IDN 48
#define KEEP_MAX 4096 /* captured records kept in detail; the rest are only counted */

typedef struct got {
    int port;
    int64_t ts;
    int type;
    int64_t lt;
    uint64_t platform;
    char view[IDN], request[IDN], insertion[IDN], content[IDN], impression[IDN], action[IDN];
    char other[IDN]; /* "k:v,k:v" of other_content_ids (hash keys) */
    /* mismatch rows */
    int mm_rt, mm_field, mm_fn;
    char mm_l[IDN], mm_r[IDN], mm_rid[IDN], mm_lhs_ins[IDN], mm_lhs_req[IDN];
    int64_t mm_ll, mm_rl;
} got;

typedef struct harness {
    rt_graph *g;
    rt_op *join, *sink;
    pb_arena *arena;
    got *v;
    size_t n;
    size_t per_port[INFERRED_JOIN_NPORTS];
} harness;

static inline void cpy(char *dst, const char *s)
{
    snprintf(dst, IDN, "%s", s ? s : "");
}

static inline int cap_process(rt_op *op, int input, const rt_record *rec)
{
    harness *h = rt_op_self(op);
    h->per_port[input]++;
    if (h->n >= KEEP_MAX) return 0;
    got *x = &h->v[h->n++];
    memset(x, 0, sizeof *x);
    x->port = input;
    x->ts = rec->ts;
    x->type = rec->type;
    if (rec->type == REC_TINY_EVENT) {
        const Event__TinyEvent *t = rec->data;
        x->lt = (int64_t)t->log_timestamp;
        x->platform = t->platform_id;
        cpy(x->view, t->view_id);
        cpy(x->request, t->request_id);
        cpy(x->insertion, t->insertion_id);
        cpy(x->content, t->content_id);
        cpy(x->impression, t->impression_id);
        cpy(x->action, t->action_id);
        size_t at = 0;
        for (size_t i = 0; i < t->n_other_content_ids && at < IDN; i++) {
            int w = snprintf(x->other + at, IDN - at, "%s%d:%s", i ? "," : "",
                             t->other_content_ids[i]->key,
                             t->other_content_ids[i]->value ? t->other_content_ids[i]->value : "");
            at += w > 0 ? (size_t)w : 0;
        }
    } else if (rec->type == REC_TINY_DELIVERY_LOG) {
        const Event__TinyDeliveryLog *d = rec->data;
        x->lt = (int64_t)d->log_timestamp;
        x->platform = d->platform_id;
        cpy(x->view, d->view_id);
        cpy(x->request, d->request_id);
    } else if (rec->type == REC_MISMATCH_ERROR) {
        const join_mismatch_error *e = rec->data;
        x->mm_rt = e->record_type;
        x->mm_field = e->field;
        x->mm_fn = e->log_function_name;
        x->lt = e->log_timestamp;
        cpy(x->mm_l, e->lhs_string);
        cpy(x->mm_r, e->rhs_string);
        cpy(x->mm_rid, e->rhs_record_id);
        cpy(x->mm_lhs_ins, e->lhs_insertion_id);
        cpy(x->mm_lhs_req, e->lhs_request_id);
        x->mm_ll = e->lhs_long;
        x->mm_rl = e->rhs_long;
    }
    return 0;
}

static inline void cap_close(rt_op *op) {}

static const rt_op_vtbl cap_vt = {.process = cap_process, .close = cap_close};

enum { J1 = 1, J2, J3 };

/* Params of spec §7.11: maxTime 100, maxOOO 50 for every join. */
static inline join_instances_params params_711(void)
{
    join_instances_params p;
    join_instances_params_default(&p);
    p.view_insertion_join_min_ms = p.insertion_impression_join_min_ms =
        p.impression_action_join_min_ms = -100;
    p.view_insertion_join_max_ms = p.insertion_impression_join_max_ms =
        p.impression_action_join_max_ms = 50;
    return p;
}

static inline void wire(harness *h)
{
    assert_int_equal(
        rt_graph_add_op(h->g, "capture", NULL, &cap_vt, h, INFERRED_JOIN_NPORTS, 0, &h->sink), 0);
    for (int p = 0; p < INFERRED_JOIN_NPORTS; p++)
        assert_int_equal(rt_graph_connect(h->g, h->join, p, h->sink, p), 0);
    char err[256] = "";
    assert_int_equal(rt_graph_open(h->g, err, sizeof err), 0);
}

static inline harness *start(int which, const join_instances_params *p)
{
    harness *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->v = calloc(KEEP_MAX, sizeof *h->v);
    h->arena = pb_arena_new(4096, 64 << 20);
    assert_int_equal(rt_graph_new(NULL, &h->g), 0);
    int rc = which == J1 ? join_view_insertion_op_add(h->g, "join-view-insertion", p, &h->join)
             : which == J2
                 ? join_insertion_impression_op_add(h->g, "join-insertion-impression", p, &h->join)
                 : join_impression_action_op_add(h->g, "join-impression-action", p, &h->join);
    assert_int_equal(rc, 0);
    wire(h);
    return h;
}

/* A harness around an operator the test adds itself (through add). */
static inline harness *start_with(int (*add)(rt_graph *g, rt_op **out))
{
    harness *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->v = calloc(KEEP_MAX, sizeof *h->v);
    h->arena = pb_arena_new(4096, 64 << 20);
    assert_int_equal(rt_graph_new(NULL, &h->g), 0);
    assert_int_equal(add(h->g, &h->join), 0);
    wire(h);
    return h;
}

static inline void stop(harness *h)
{
    rt_graph_free(h->g);
    pb_arena_free(h->arena);
    free(h->v);
    free(h);
}

static inline char *dup_in(harness *h, const char *s, size_t n)
{
    ProtobufCAllocator *a = pb_arena_allocator(h->arena);
    char *d = a->alloc(a->allocator_data, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* "view=v1 req=r1 ins=i1 content=c1 imp=m1 act=a1 lt=5 plat=2 luid=u2 other=storeId:s1"; the
 * defaults are platform 1, log_user_id u1, lt = ts. Built in the harness arena. */
static inline Event__TinyEvent *ev(harness *h, int64_t ts, const char *spec)
{
    ProtobufCAllocator *a = pb_arena_allocator(h->arena);
    Event__TinyEvent *t = a->alloc(a->allocator_data, sizeof *t);
    *t = (Event__TinyEvent)EVENT__TINY_EVENT__INIT;
    t->has_platform_id = 1;
    t->platform_id = 1;
    t->log_user_id = "u1";
    t->has_log_timestamp = ts != 0;
    t->log_timestamp = (uint64_t)ts;
    Event__TinyEvent__OtherContentIdsEntry **oth = a->alloc(a->allocator_data, 8 * sizeof *oth);
    const char *p = spec;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '='), *end = strchr(p, ' ');
        if (!end) end = p + strlen(p);
        if (!eq || eq > end) break;
        char *val = dup_in(h, eq + 1, (size_t)(end - eq - 1));
        size_t kn = (size_t)(eq - p);
#define K(name) (kn == strlen(name) && !strncmp(p, name, kn))
        if (K("view"))
            t->view_id = val;
        else if (K("req"))
            t->request_id = val;
        else if (K("ins"))
            t->insertion_id = val;
        else if (K("content"))
            t->content_id = val;
        else if (K("imp"))
            t->impression_id = val;
        else if (K("act"))
            t->action_id = val;
        else if (K("luid"))
            t->log_user_id = val;
        else if (K("plat"))
            t->platform_id = strtoull(val, NULL, 10);
        else if (K("lt")) {
            t->log_timestamp = strtoull(val, NULL, 10);
            t->has_log_timestamp = t->log_timestamp != 0;
        } else if (K("other")) {
            char *colon = strchr(val, ':');
            assert_non_null(colon);
            *colon = 0;
            Event__TinyEvent__OtherContentIdsEntry *e = a->alloc(a->allocator_data, sizeof *e);
            *e = (Event__TinyEvent__OtherContentIdsEntry)
                EVENT__TINY_EVENT__OTHER_CONTENT_IDS_ENTRY__INIT;
            e->has_key = 1;
            e->key = java_string_hash(val, strlen(val));
            e->value = colon + 1;
            oth[t->n_other_content_ids++] = e;
        } else {
            fail_msg("bad spec key in %s", spec);
        }
#undef K
        p = end;
    }
    t->other_content_ids = oth;
    return t;
}

/* "req=r1 view=v1 ins=i1:c1,i2:c2 lt=5". */
static inline Event__TinyDeliveryLog *dlog(harness *h, int64_t ts, const char *spec)
{
    ProtobufCAllocator *a = pb_arena_allocator(h->arena);
    Event__TinyDeliveryLog *d = a->alloc(a->allocator_data, sizeof *d);
    *d = (Event__TinyDeliveryLog)EVENT__TINY_DELIVERY_LOG__INIT;
    d->has_platform_id = 1;
    d->platform_id = 1;
    d->log_user_id = "u1";
    d->has_log_timestamp = ts != 0;
    d->log_timestamp = (uint64_t)ts;
    Event__TinyInsertion **ins = a->alloc(a->allocator_data, 16 * sizeof *ins);
    d->response_insertion = ins;
    const char *p = spec;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '='), *end = strchr(p, ' ');
        if (!end) end = p + strlen(p);
        if (!eq || eq > end) break;
        char *val = dup_in(h, eq + 1, (size_t)(end - eq - 1));
        size_t kn = (size_t)(eq - p);
        if (kn == 3 && !strncmp(p, "req", 3)) {
            d->request_id = val;
        } else if (kn == 4 && !strncmp(p, "view", 4)) {
            d->view_id = val;
        } else if (kn == 2 && !strncmp(p, "lt", 2)) {
            d->log_timestamp = strtoull(val, NULL, 10);
            d->has_log_timestamp = d->log_timestamp != 0;
        } else if (kn == 3 && !strncmp(p, "ins", 3)) {
            for (char *tok = strtok(val, ","); tok; tok = strtok(NULL, ",")) {
                Event__TinyInsertion *x = a->alloc(a->allocator_data, sizeof *x);
                *x = (Event__TinyInsertion)EVENT__TINY_INSERTION__INIT;
                char *colon = strchr(tok, ':');
                if (colon) {
                    *colon = 0;
                    x->content_id = colon + 1;
                }
                x->insertion_id = tok;
                ins[d->n_response_insertion++] = x;
            }
        } else {
            fail_msg("bad spec key in %s", spec);
        }
        p = end;
    }
    return d;
}

static inline int push_msg(harness *h, int input, int type, int64_t ts, void *msg)
{
    uint8_t key[64];
    int kl = job_key_platform_id(1, "u1", key, sizeof key);
    rt_record r = {.ts = ts, .type = type, .data = msg, .key = key, .key_len = (size_t)kl};
    int rc = rt_graph_push(h->g, h->join, input, &r);
    pb_arena_reset(h->arena, 1 << 20);
    return rc;
}

/* Parent / child TinyEvent at ts (lt = ts unless the spec says lt=). */
static inline void lhs(harness *h, int64_t ts, const char *spec)
{
    assert_int_equal(push_msg(h, INFERRED_JOIN_IN_LHS, REC_TINY_EVENT, ts, ev(h, ts, spec)), 0);
}
static inline void rhs(harness *h, int64_t ts, const char *spec)
{
    assert_int_equal(push_msg(h, INFERRED_JOIN_IN_RHS, REC_TINY_EVENT, ts, ev(h, ts, spec)), 0);
}
static inline void dl(harness *h, int64_t ts, const char *spec)
{
    assert_int_equal(
        push_msg(h, INFERRED_JOIN_IN_RHS, REC_TINY_DELIVERY_LOG, ts, dlog(h, ts, spec)), 0);
}

static inline void wm(harness *h, int64_t w)
{
    assert_int_equal(rt_graph_advance_watermark(h->g, w), 0);
}

static inline size_t on_port(const harness *h, int port)
{
    return h->per_port[port];
}

/* The i-th kept record of a port. */
static inline const got *nth(const harness *h, int port, size_t i)
{
    for (size_t k = 0; k < h->n; k++)
        if (h->v[k].port == port && i-- == 0) return &h->v[k];
    fail_msg("no record %zu on port %d", i, port);
    return NULL;
}

static inline inferred_join_stats stats(harness *h)
{
    inferred_join_stats st;
    inferred_join_stats_get(h->join, &st);
    return st;
}

/* The join holds nothing: no entries, no bytes of its own. */
static inline void assert_empty(harness *h)
{
    inferred_join_stats st = stats(h);
    assert_int_equal(st.users, 0);
    assert_int_equal(st.lhs_buffered, 0);
    assert_int_equal(st.rhs_buffered, 0);
    assert_int_equal(st.scopes, 0);
    assert_int_equal(st.index_bytes, 0);
    assert_int_equal(st.lhs_payload_bytes, 0);
    assert_int_equal(st.rhs_payload_bytes, 0);
}

/* The value of a metric of the graph whose labels contain `label`, or -1. */
static inline int64_t metric(harness *h, const char *name, const char *label)
{
    rt_metrics_snap snap;
    assert_int_equal(rt_metrics_snapshot(rt_graph_metrics(h->g), &snap), 0);
    int64_t v = -1;
    for (size_t i = 0; i < snap.n; i++)
        if (!strcmp(snap.samples[i].name, name) && strstr(snap.samples[i].labels, label))
            v = snap.samples[i].value;
    rt_metrics_snap_free(&snap);
    return v;
}

#endif
