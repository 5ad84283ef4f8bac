/* Operator graph: uid rules, topology checks, chaining, watermark propagation (min over inputs,
 * hold-back, timer output ahead of the watermark), timer order and dedupe, drain, snapshot. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/graph.h"
#include "runtime/state.h"
#include "runtime/timers.h"

/* ---- test operators ---- */

/* An event log shared by the operators of one test: "r<op>:<ts>" for a record, "w<op>:<wm>" for a
 * watermark, "t<op>:<time>:<key>" for a timer, "f<op>" for finish. */
static char evlog[4096];
static void ev(const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    strncat(evlog, line, sizeof evlog - strlen(evlog) - 1);
    strncat(evlog, " ", sizeof evlog - strlen(evlog) - 1);
}

typedef struct tself {
    const char *tag;
    int64_t delay;        /* delay op: timer at ts + delay; also the hold-back */
    int64_t finish_timer; /* if set, finish registers a timer here */
    int64_t late_seen;    /* records with ts < the input watermark */
    int closed;
} tself;

static int pass_process(rt_op *op, int input, const rt_record *rec)
{
    tself *s = rt_op_self(op);
    ev("r%s:%lld", s->tag, (long long)rec->ts);
    if (rec->ts < rt_op_watermark(op)) s->late_seen++;
    return rt_emit(op, 0, rec);
}

static int log_watermark(rt_op *op, int64_t wm)
{
    tself *s = rt_op_self(op);
    if (wm == RT_TIME_MAX)
        ev("w%s:max", s->tag);
    else
        ev("w%s:%lld", s->tag, (long long)wm);
    return 0;
}

static int log_finish(rt_op *op)
{
    tself *s = rt_op_self(op);
    ev("f%s", s->tag);
    if (s->finish_timer) return rt_timer_register(op, s->finish_timer, "fin", 3);
    return 0;
}

static void count_close(rt_op *op)
{
    tself *s = rt_op_self(op);
    s->closed++;
}

static int delay_open(rt_op *op)
{
    tself *s = rt_op_self(op);
    rt_op_set_watermark_holdback(op, s->delay);
    return 0;
}

static int delay_process(rt_op *op, int input, const rt_record *rec)
{
    tself *s = rt_op_self(op);
    ev("r%s:%lld", s->tag, (long long)rec->ts);
    return rt_timer_register(op, rec->ts + s->delay, rec->key, rec->key_len);
}

static int delay_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    tself *s = rt_op_self(op);
    ev("t%s:%lld:%.*s", s->tag, (long long)time, (int)klen, (const char *)key);
    rt_record out = {.ts = time, .key = key, .key_len = klen};
    return rt_emit(op, 0, &out);
}

static const rt_op_vtbl pass_vt = {.process = pass_process,
                                   .on_watermark = log_watermark,
                                   .finish = log_finish,
                                   .close = count_close};
static const rt_op_vtbl delay_vt = {.open = delay_open,
                                    .process = delay_process,
                                    .on_timer = delay_timer,
                                    .on_watermark = log_watermark,
                                    .finish = log_finish,
                                    .close = count_close};

static rt_op *add(rt_graph *g, const char *uid, const rt_op_vtbl *vt, tself *s, int nin, int nout)
{
    rt_op *op = NULL;
    assert_int_equal(rt_graph_add_op(g, uid, NULL, vt, s, nin, nout, &op), 0);
    return op;
}

static rt_record rec_at(int64_t ts, const char *key)
{
    rt_record r = {.ts = ts, .key = (const uint8_t *)key, .key_len = key ? strlen(key) : 0};
    return r;
}

static void open_ok(rt_graph *g)
{
    char err[256] = "";
    int rc = rt_graph_open(g, err, sizeof err);
    if (rc) fail_msg("open: %s", err);
}

/* ---- uids ---- */

static void test_uid_rules(void **state)
{
    (void)state;
    char err[256];
    const char *good[] = {"join-impression-action",
                          "sink-s3-etl_side-validation_error",
                          "source-kafka-tracking.event.log-request",
                          "timestamp-and-watermark-source-kafka-log-request",
                          "a",
                          "x9"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(rt_uid_check(good[i], err, sizeof err), 0);
    const char *bad[] = {"Join", "a--b", "-a", "a-", "", "a b", "join/x", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        assert_int_equal(rt_uid_check(bad[i], err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
    rt_uid_check("a--b", err, sizeof err);
    assert_non_null(strstr(err, "empty segment"));
    rt_uid_check("Join", err, sizeof err);
    assert_non_null(strstr(err, "\"Join\""));
    char longuid[RT_UID_MAX + 2];
    memset(longuid, 'a', sizeof longuid - 1);
    longuid[sizeof longuid - 1] = 0;
    assert_int_equal(rt_uid_check(longuid, err, sizeof err), -1);
}

static void test_duplicate_uid_rejected_by_open(void **state)
{
    (void)state;
    rt_graph *g;
    tself a = {.tag = "a"}, b = {.tag = "b"};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    add(g, "map-x", &pass_vt, &a, 1, 1);
    add(g, "map-x", &pass_vt, &b, 1, 1);
    char err[256];
    assert_int_equal(rt_graph_check_uids(g, err, sizeof err), -1);
    assert_non_null(strstr(err, "map-x"));
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(rt_graph_open(g, err, sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
    rt_graph_free(g);
    assert_int_equal(a.closed, 1); /* close runs for operators never opened */
    assert_int_equal(b.closed, 1);
}

static void test_cycle_rejected(void **state)
{
    (void)state;
    rt_graph *g;
    tself a = {.tag = "a"}, b = {.tag = "b"}, c = {.tag = "c"};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *src = add(g, "source", &pass_vt, &c, 1, 1);
    rt_op *x = add(g, "map-a", &pass_vt, &a, 2, 1);
    rt_op *y = add(g, "map-b", &pass_vt, &b, 1, 1);
    assert_int_equal(rt_graph_connect(g, src, 0, x, 0), 0);
    assert_int_equal(rt_graph_connect(g, x, 0, y, 0), 0);
    assert_int_equal(rt_graph_connect(g, y, 0, x, 1), 0);
    char err[256];
    assert_int_equal(rt_graph_open(g, err, sizeof err), -1);
    assert_non_null(strstr(err, "cycle"));
    rt_graph_free(g);
}

static void test_connect_checks_ports(void **state)
{
    (void)state;
    rt_graph *g;
    tself a = {.tag = "a"}, b = {.tag = "b"};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *x = add(g, "x", &pass_vt, &a, 1, 2);
    rt_op *y = add(g, "y", &pass_vt, &b, 1, 1);
    assert_int_equal(rt_graph_connect(g, x, 2, y, 0), -1);
    assert_non_null(strstr(rt_graph_error(g), "port 2"));
    rt_graph_free(g);
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    x = add(g, "x", &pass_vt, &a, 1, 2);
    y = add(g, "y", &pass_vt, &b, 1, 1);
    assert_int_equal(rt_graph_connect(g, x, 1, y, 1), -1);
    assert_non_null(strstr(rt_graph_error(g), "input 1"));
    rt_graph_free(g);
}

/* ---- chaining and topological order ---- */

static void test_chaining_broadcast_and_order(void **state)
{
    (void)state;
    evlog[0] = 0;
    rt_graph *g;
    tself s = {.tag = "S"}, a = {.tag = "A"}, b = {.tag = "B"}, k = {.tag = "K"};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    /* added out of order on purpose: open must sort them */
    rt_op *sink = add(g, "sink", &pass_vt, &k, 1, 1);
    rt_op *ma = add(g, "map-a", &pass_vt, &a, 1, 1);
    rt_op *src = add(g, "source", &pass_vt, &s, 1, 1);
    rt_op *mb = add(g, "map-b", &pass_vt, &b, 1, 1);
    assert_int_equal(rt_graph_connect(g, src, 0, ma, 0), 0);
    assert_int_equal(rt_graph_connect(g, src, 0, mb, 0), 0);
    assert_int_equal(rt_graph_connect(g, ma, 0, sink, 0), 0);
    assert_int_equal(rt_graph_connect(g, mb, 0, sink, 0), 0);
    open_ok(g);
    assert_ptr_equal(rt_graph_op_at(g, 0), src);
    assert_ptr_equal(rt_graph_op_at(g, 3), sink);
    rt_record r = rec_at(5, NULL);
    assert_int_equal(rt_graph_push(g, src, 0, &r), 0);
    /* depth first, in connection order: the record reaches the sink through a, then through b */
    assert_string_equal(evlog, "rS:5 rA:5 rK:5 rB:5 rK:5 ");
    rt_graph_free(g);
}

/* ---- time ---- */

static void test_holdback_and_timer_output_before_watermark(void **state)
{
    (void)state;
    evlog[0] = 0;
    rt_graph *g;
    tself s = {.tag = "S"}, d = {.tag = "D", .delay = 10}, k = {.tag = "K"};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *src = add(g, "source", &pass_vt, &s, 1, 1);
    rt_op *dl = add(g, "delay", &delay_vt, &d, 1, 1);
    rt_op *sink = add(g, "sink", &pass_vt, &k, 1, 1);
    rt_graph_connect(g, src, 0, dl, 0);
    rt_graph_connect(g, dl, 0, sink, 0);
    open_ok(g);
    rt_record r = rec_at(100, "k");
    assert_int_equal(rt_graph_push(g, src, 0, &r), 0);
    assert_int_equal(rt_graph_advance_watermark(g, 105), 0);
    assert_int_equal(rt_op_watermark(dl), 105);
    assert_int_equal(rt_op_output_watermark(dl), 95);
    assert_int_equal(rt_op_watermark(sink), 95); /* the hold-back lowers everything downstream */
    assert_int_equal(rt_graph_watermark(g), 95);
    assert_int_equal(rt_graph_advance_watermark(g, 110), 0);
    /* the timer's record reaches the sink before the watermark that released it */
    assert_string_equal(evlog,
                        "rS:100 rD:100 wS:105 wD:105 wK:95 wS:110 tD:110:k rK:110 wD:110 wK:100 ");
    assert_int_equal(k.late_seen, 0);
    /* a lower or equal watermark changes nothing */
    evlog[0] = 0;
    assert_int_equal(rt_graph_advance_watermark(g, 50), 0);
    assert_int_equal(rt_graph_advance_watermark(g, 110), 0);
    assert_string_equal(evlog, "");
    rt_graph_free(g);
}

static void test_two_inputs_take_the_minimum(void **state)
{
    (void)state;
    evlog[0] = 0;
    rt_graph *g;
    tself a = {.tag = "A"}, b = {.tag = "B"}, u = {.tag = "U"}, j = {.tag = "J"};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *sa = add(g, "source-a", &pass_vt, &a, 1, 1);
    rt_op *sb = add(g, "source-b", &pass_vt, &b, 1, 1);
    rt_op *un = add(g, "union", &pass_vt, &u, 1, 1);
    rt_op *jn = add(g, "join", &pass_vt, &j, 2, 1);
    rt_graph_connect(g, sa, 0, jn, 0);
    rt_graph_connect(g, sb, 0, jn, 1);
    rt_graph_connect(g, sa, 0, un, 0); /* a union: two connections into one input */
    rt_graph_connect(g, sb, 0, un, 0);
    open_ok(g);
    assert_int_equal(rt_graph_advance_watermark_at(g, sa, 100), 0);
    assert_true(rt_op_watermark(jn) == RT_TIME_MIN);
    assert_true(rt_op_watermark(un) == RT_TIME_MIN);
    assert_int_equal(rt_graph_advance_watermark_at(g, sb, 50), 0);
    assert_int_equal(rt_op_watermark(jn), 50);
    assert_int_equal(rt_op_watermark(un), 50);
    assert_int_equal(rt_graph_advance_watermark_at(g, sb, 200), 0);
    assert_int_equal(rt_op_watermark(jn), 100);
    assert_int_equal(rt_op_watermark(un), 100);
    /* not a root: ignored */
    assert_int_equal(rt_graph_advance_watermark_at(g, jn, 500), 0);
    assert_int_equal(rt_op_watermark(jn), 100);
    rt_graph_free(g);
}

/* ---- timers ---- */

static void test_timer_order_dedupe_delete(void **state)
{
    (void)state;
    evlog[0] = 0;
    rt_graph *g;
    tself s = {.tag = "S"}, d = {.tag = "D"};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *src = add(g, "source", &pass_vt, &s, 1, 1);
    rt_op *dl = add(g, "delay", &delay_vt, &d, 1, 1);
    rt_graph_connect(g, src, 0, dl, 0);
    open_ok(g);
    assert_int_equal(rt_timer_register(dl, 30, "a", 1), 0);
    assert_int_equal(rt_timer_register(dl, 10, "b", 1), 0);
    assert_int_equal(rt_timer_register(dl, 30, "c", 1), 0);
    assert_int_equal(rt_timer_register(dl, 20, "a", 1), 0);
    assert_int_equal(rt_timer_register(dl, 30, "a", 1), 0); /* duplicate (a, 30) */
    assert_int_equal(rt_timer_register(dl, 40, "d", 1), 0);
    assert_int_equal(rt_timer_register(dl, 50, "", 0), 0);
    assert_int_equal(rt_timer_count(dl), 6);
    assert_int_equal(rt_timer_delete(dl, 40, "d", 1), 1);
    assert_int_equal(rt_timer_delete(dl, 40, "d", 1), 0);
    assert_int_equal(rt_timer_delete(dl, 31, "a", 1), 0);
    assert_int_equal(rt_timer_count(dl), 5);
    assert_int_equal(rt_graph_advance_watermark(g, 29), 0);
    assert_string_equal(evlog, "wS:29 tD:10:b tD:20:a wD:29 ");
    evlog[0] = 0;
    /* a timer fires when the watermark reaches its time exactly; equal times in registration order
     */
    assert_int_equal(rt_graph_advance_watermark(g, 30), 0);
    assert_string_equal(evlog, "wS:30 tD:30:a tD:30:c wD:30 ");
    assert_int_equal(rt_timer_count(dl), 1);
    rt_graph_free(g);
}

static int late_register_process(rt_op *op, int input, const rt_record *rec)
{
    /* registers a timer at or before the current watermark */
    return rt_timer_register(op, rec->ts, "late", 4);
}

static int rearm_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    ev("t:%lld:%.*s", (long long)time, (int)klen, (const char *)key);
    if (klen == 4 && !memcmp(key, "late", 4)) return rt_timer_register(op, time + 1, "again", 5);
    return 0;
}

static const rt_op_vtbl late_vt = {.process = late_register_process, .on_timer = rearm_timer};

static void test_timer_at_or_before_watermark_waits_for_next_advance(void **state)
{
    (void)state;
    evlog[0] = 0;
    rt_graph *g;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *op = add(g, "late", &late_vt, NULL, 1, 1);
    open_ok(g);
    assert_int_equal(rt_graph_advance_watermark(g, 100), 0);
    rt_record r = rec_at(90, NULL);
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
    assert_string_equal(evlog, ""); /* not fired from inside the push */
    assert_int_equal(rt_timer_count(op), 1);
    /* next advance: fires, and the timer it registers (91 <= 101) fires in the same round */
    assert_int_equal(rt_graph_advance_watermark(g, 101), 0);
    assert_string_equal(evlog, "t:90:late t:91:again ");
    assert_int_equal(rt_timer_count(op), 0);
    rt_graph_free(g);
}

/* ---- drain ---- */

static void test_finish_drains_in_topological_order(void **state)
{
    (void)state;
    evlog[0] = 0;
    rt_graph *g;
    tself s = {.tag = "S"}, d = {.tag = "D", .delay = 1000, .finish_timer = 7}, k = {.tag = "K"};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *src = add(g, "source", &pass_vt, &s, 1, 1);
    rt_op *dl = add(g, "delay", &delay_vt, &d, 1, 1);
    rt_op *sink = add(g, "sink", &pass_vt, &k, 1, 1);
    rt_graph_connect(g, src, 0, dl, 0);
    rt_graph_connect(g, dl, 0, sink, 0);
    open_ok(g);
    rt_record r = rec_at(100, "x");
    assert_int_equal(rt_graph_push(g, src, 0, &r), 0);
    assert_int_equal(rt_graph_finish(g), 0);
    assert_string_equal(evlog, "rS:100 rD:100 wS:max fS tD:1100:x rK:1100 wD:max fD tD:7:fin "
                               "rK:7 wK:max fK ");
    assert_int_equal(rt_timer_count(dl), 0);
    assert_true(rt_graph_watermark(g) == RT_TIME_MAX);
    /* finished: no more records */
    assert_int_equal(rt_graph_push(g, src, 0, &r), -1);
    assert_non_null(strstr(rt_graph_error(g), "finished"));
    rt_graph_free(g);
}

/* A dedupe-like operator: remembers each key for 1000 ms (state + timer), forgets it at the
 * timer; with drain_discards, the drain drops both instead of firing. */
static int forget_open(rt_op *op)
{
    tself *s = rt_op_self(op);
    rt_kv *kv;
    if (rt_kv_new(op, "seen", &kv)) return -1;
    if (s->finish_timer) rt_op_set_drain_discards_timers(op);
    return 0;
}

static int forget_process(rt_op *op, int input, const rt_record *rec)
{
    (void)input;
    ev("r:%lld", (long long)rec->ts);
    return rt_timer_register_new(op, rec->ts + 1000, rec->key, rec->key_len);
}

static int forget_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    ev("t:%lld", (long long)time);
    return 0;
}

static const rt_op_vtbl forget_vt = {
    .open = forget_open, .process = forget_process, .on_timer = forget_timer};

static void test_drain_discards_cleanup_only_timers(void **state)
{
    (void)state;
    for (int discard = 0; discard < 2; discard++) {
        evlog[0] = 0;
        rt_graph *g;
        tself s = {.tag = "F", .finish_timer = discard};
        assert_int_equal(rt_graph_new(NULL, &g), 0);
        rt_op *op = add(g, "keep-first-view", &forget_vt, &s, 1, 1);
        open_ok(g);
        char key[16];
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "k%d", i);
            rt_record r = rec_at(100 + i, key);
            assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
        }
        assert_int_equal(rt_timer_count(op), 3);
        assert_true(rt_op_mem_used(op) > 0);
        assert_int_equal(rt_graph_finish(g), 0);
        /* fired one by one, or dropped unfired: either way nothing is left */
        assert_string_equal(evlog, discard ? "r:100 r:101 r:102 "
                                           : "r:100 r:101 r:102 t:1100 t:1101 t:1102 ");
        assert_int_equal(rt_timer_count(op), 0);
        assert_int_equal(rt_op_mem_used(op), 0);
        rt_graph_free(g);
    }
}

/* ---- failures ---- */

static int failing_process(rt_op *op, int input, const rt_record *rec)
{
    return rt_op_fail(op, "field view_id: %d bytes over the limit", 7);
}

static const rt_op_vtbl failing_vt = {.process = failing_process};

static void test_failure_unwinds_with_message(void **state)
{
    (void)state;
    evlog[0] = 0;
    rt_graph *g;
    tself s = {.tag = "S"}, k = {.tag = "K"};
    rt_graph_config cfg = {.task = "p7"};
    assert_int_equal(rt_graph_new(&cfg, &g), 0);
    rt_op *src = add(g, "source", &pass_vt, &s, 1, 1);
    rt_op *bad = add(g, "validate-view", &failing_vt, NULL, 1, 1);
    rt_op *sink = add(g, "sink", &pass_vt, &k, 1, 1);
    rt_graph_connect(g, src, 0, bad, 0);
    rt_graph_connect(g, src, 0, sink, 0);
    open_ok(g);
    rt_record r = rec_at(1, NULL);
    assert_int_equal(rt_graph_push(g, src, 0, &r), -1);
    assert_string_equal(rt_graph_error(g),
                        "operator validate-view (task p7): field view_id: 7 bytes over the limit");
    assert_string_equal(evlog, "rS:1 "); /* the sink after the failing callee was skipped */
    rt_graph_free(g);
}

/* ---- metrics of operators ---- */

static rt_counter *custom;

static int side_open(rt_op *op)
{
    /* named from open, after the graph registered its own metrics */
    if (rt_op_set_port_name(op, 1, "late") < 0) return -1;
    return rt_op_counter(op, "numLateRecords", &custom);
}

static int side_process(rt_op *op, int input, const rt_record *rec)
{
    rt_counter_add_1w(custom, 1);
    return rt_emit(op, rec->ts < 0 ? 1 : 0, rec);
}

static const rt_op_vtbl side_vt = {.open = side_open, .process = side_process};

static int64_t sample(rt_metrics *m, const char *name, const char *labels)
{
    rt_metrics_snap s;
    assert_int_equal(rt_metrics_snapshot(m, &s), 0);
    int64_t v = -1;
    for (size_t i = 0; i < s.n; i++)
        if (!strcmp(s.samples[i].name, name) && !strcmp(s.samples[i].labels, labels))
            v = s.samples[i].value;
    rt_metrics_snap_free(&s);
    return v;
}

static void test_side_output_and_operator_metrics(void **state)
{
    (void)state;
    rt_graph *g;
    rt_graph_config cfg = {.task = "4"};
    assert_int_equal(rt_graph_new(&cfg, &g), 0);
    rt_op *op;
    assert_int_equal(rt_graph_add_op(g, "split-late", NULL, &side_vt, NULL, 1, 2, &op), 0);
    open_ok(g);
    rt_record early = rec_at(-1, NULL), ok = rec_at(5, NULL);
    assert_int_equal(rt_graph_push(g, op, 0, &early), 0);
    assert_int_equal(rt_graph_push(g, op, 0, &ok), 0);
    assert_int_equal(rt_graph_push(g, op, 0, &ok), 0);
    rt_metrics *m = rt_graph_metrics(g);
    assert_int_equal(sample(m, "numRecordsIn", "operator=split-late,task=4"), 3);
    assert_int_equal(sample(m, "numRecordsOut", "operator=split-late,task=4"), 3);
    assert_int_equal(sample(m, "numRecordsOutSide", "operator=split-late,output=late,task=4"), 1);
    assert_int_equal(sample(m, "numLateRecords", "operator=split-late,task=4"), 3);
    rt_graph_free(g);
}

/* ---- snapshot ---- */

typedef struct snapself {
    rt_kv *kv;
    uint32_t own;
} snapself;

static int snap_open(rt_op *op)
{
    snapself *s = rt_op_self(op);
    return rt_kv_new(op, "seen", &s->kv);
}

static int snap_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    ev("t:%lld:%.*s", (long long)time, (int)klen, (const char *)key);
    return 0;
}

static int snap_own(rt_op *op, rt_buf *out)
{
    snapself *s = rt_op_self(op);
    return rt_buf_put_u32(out, s->own);
}

static int restore_own(rt_op *op, const uint8_t *b, size_t n)
{
    snapself *s = rt_op_self(op);
    rt_buf_reader r;
    rt_buf_reader_init(&r, b, n);
    return rt_buf_read_u32(&r, &s->own);
}

static const rt_op_vtbl snap_vt = {.open = snap_open,
                                   .process = pass_process,
                                   .on_timer = snap_timer,
                                   .snapshot = snap_own,
                                   .restore = restore_own};

static rt_graph *snap_graph(snapself *s, const char *uid)
{
    rt_graph *g;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *op;
    assert_int_equal(rt_graph_add_op(g, uid, NULL, &snap_vt, s, 1, 1, &op), 0);
    open_ok(g);
    return g;
}

static void test_snapshot_restore_round_trip(void **state)
{
    (void)state;
    snapself a = {0}, b = {0};
    rt_graph *g1 = snap_graph(&a, "dedupe-view");
    rt_op *op1 = rt_graph_find(g1, "dedupe-view");
    assert_int_equal(rt_graph_advance_watermark(g1, 5), 0);
    char key[16];
    for (int i = 0; i < 300; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(rt_kv_put(a.kv, key, (size_t)n, &i, sizeof i), 0);
    }
    assert_int_equal(rt_timer_register(op1, 40, "z", 1), 0);
    assert_int_equal(rt_timer_register(op1, 20, "y", 1), 0);
    assert_int_equal(rt_timer_register(op1, 40, "a", 1), 0);
    a.own = 0xC0FFEE;
    rt_buf buf;
    rt_buf_init(&buf, 0);
    assert_int_equal(rt_graph_snapshot(g1, &buf), 0);

    rt_graph *g2 = snap_graph(&b, "dedupe-view");
    rt_op *op2 = rt_graph_find(g2, "dedupe-view");
    char err[256] = "";
    assert_int_equal(rt_graph_restore(g2, buf.data, buf.len, err, sizeof err), 0);
    assert_int_equal(b.own, 0xC0FFEE);
    assert_int_equal(rt_kv_count(b.kv), 300);
    for (int i = 0; i < 300; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        size_t vlen;
        int *v = rt_kv_get(b.kv, key, (size_t)n, &vlen);
        assert_non_null(v);
        assert_int_equal(vlen, sizeof(int));
        assert_int_equal(*v, i);
    }
    assert_int_equal(rt_op_watermark(op2), 5);
    assert_int_equal(rt_timer_count(op2), 3);
    assert_true(rt_kv_bytes(b.kv) > 300 * 24);
    assert_true(rt_op_mem_used(op2) > rt_kv_bytes(b.kv)); /* the timers are charged too */
    evlog[0] = 0;
    assert_int_equal(rt_graph_advance_watermark(g2, 100), 0);
    assert_string_equal(evlog, "t:20:y t:40:z t:40:a "); /* the firing order survives */

    /* a snapshot of a uid the graph lacks is refused, by name */
    snapself c = {0};
    rt_graph *g3 = snap_graph(&c, "dedupe-view-renamed");
    assert_int_equal(rt_graph_restore(g3, buf.data, buf.len, err, sizeof err), -1);
    assert_non_null(strstr(err, "dedupe-view"));
    /* truncation is an error, never a crash */
    for (size_t cut = 0; cut < buf.len; cut += 97) {
        snapself d = {0};
        rt_graph *g4 = snap_graph(&d, "dedupe-view");
        assert_int_equal(rt_graph_restore(g4, buf.data, cut, err, sizeof err), -1);
        rt_graph_free(g4);
    }
    rt_buf_free(&buf);
    rt_graph_free(g1);
    rt_graph_free(g2);
    rt_graph_free(g3);
}

/* ---- the timer service alone ---- */

static int charge_count(void *ctx, int64_t delta)
{
    *(int64_t *)ctx += delta;
    return 0;
}

static void test_timer_service_heap_against_sorted_order(void **state)
{
    (void)state;
    rt_timers *t;
    assert_int_equal(rt_timers_new(NULL, NULL, &t), 0);
    /* pseudo-random times with many ties, some deletes: pops must come out sorted by
     * (time, registration) */
    uint32_t x = 12345;
    int64_t times[2000];
    for (int i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;
        times[i] = (x >> 8) % 500;
        char k[8];
        int n = snprintf(k, sizeof k, "%d", i);
        assert_int_equal(rt_timers_register(t, times[i], k, (size_t)n), 1);
    }
    for (int i = 0; i < 2000; i += 3) {
        char k[8];
        int n = snprintf(k, sizeof k, "%d", i);
        assert_int_equal(rt_timers_delete(t, times[i], k, (size_t)n), 1);
    }
    int64_t peek;
    assert_int_equal(rt_timers_peek(t, &peek), 1);
    rt_buf buf;
    rt_buf_init(&buf, 0);
    assert_int_equal(rt_timers_snapshot(t, &buf), 0);
    int64_t last_t = -1;
    int last_i = -1, popped = 0;
    rt_timer_fired f;
    while (rt_timers_pop_due(t, 1000, &f) == 1) {
        char k[8] = {0};
        assert_true(f.key_len < sizeof k);
        memcpy(k, f.key, f.key_len);
        int i = atoi(k);
        assert_int_equal(i % 3 == 0, 0);
        assert_int_equal(f.time, times[i]);
        if (popped == 0) assert_int_equal(f.time, peek);
        assert_true(f.time > last_t || (f.time == last_t && i > last_i));
        last_t = f.time;
        last_i = i;
        popped++;
        rt_timers_done(t, &f);
    }
    assert_int_equal(popped, 2000 - 667);
    assert_int_equal(rt_timers_peek(t, &peek), 0);
    char err[128];
    assert_int_equal(rt_timers_restore(t, buf.data, buf.len, err, sizeof err), 0);
    assert_int_equal(rt_timers_count(t), 2000 - 667);
    buf.data[0] = 9; /* version */
    assert_int_equal(rt_timers_restore(t, buf.data, buf.len, err, sizeof err), -1);
    assert_non_null(strstr(err, "version 9"));
    rt_buf_free(&buf);
    rt_timers_free(t);
}

static void test_timer_service_mass_delete(void **state)
{
    (void)state;
    int64_t bytes = 0;
    rt_timers *t;
    assert_int_equal(rt_timers_new(charge_count, &bytes, &t), 0);
    /* a session window moving its end: register, delete, register later, many times */
    for (int i = 0; i < 5000; i++) {
        char k[8];
        int n = snprintf(k, sizeof k, "%d", i % 50);
        if (i >= 50) assert_int_equal(rt_timers_delete(t, 100000 + i - 50, k, (size_t)n), 1);
        assert_int_equal(rt_timers_register(t, 100000 + i, k, (size_t)n), 1);
    }
    assert_int_equal(rt_timers_count(t), 50);
    int64_t peek;
    assert_int_equal(rt_timers_peek(t, &peek), 1);
    assert_int_equal(peek, 100000 + 4950);
    /* the dead do not pile up: memory stays near 50 live timers */
    assert_true(bytes < 64 * 1024);
    /* a deleted (key, time) can be registered again and fires once */
    assert_int_equal(rt_timers_delete(t, 100000 + 4999, "49", 2), 1);
    assert_int_equal(rt_timers_register(t, 100000 + 4999, "49", 2), 1);
    assert_int_equal(rt_timers_count(t), 50);
    rt_timer_fired f;
    int64_t last = 0;
    int popped = 0;
    while (rt_timers_pop_due(t, RT_TIME_MAX, &f) == 1) {
        assert_true(f.time > last);
        last = f.time;
        popped++;
        rt_timers_done(t, &f);
    }
    assert_int_equal(popped, 50);
    rt_timers_free(t);
    assert_int_equal(bytes, 0);
}

static void test_timer_service_interleaved_ascending_sequences_pop_in_order(void **state)
{
    (void)state;
    int64_t bytes = 0;
    rt_timers *t;
    assert_int_equal(rt_timers_new(charge_count, &bytes, &t), 0);
    /* what operators register: several ascending sequences interleaved (ts + 30 s, ts + 30 min,
     * ts + 1 day per record, ...), each (key, time) twice in a row, some records out of order;
     * ties on time with different keys (records 7 ms apart meet across the offsets) */
    static const int64_t offs[] = {30000, 1800000, 86400000, 1000, 120000, 7};
    enum { R = 1000, K = 6 };
    static int64_t times[R * K];
    int n = 0;
    for (int r = 0; r < R; r++) {
        int64_t ts = 1000000 + r * 7;
        if (r % 97 == 13) ts -= 5000; /* a late record */
        for (int k = 0; k < K; k++) {
            char key[16];
            int kl = snprintf(key, sizeof key, "%d", n);
            times[n] = ts + offs[k];
            assert_int_equal(rt_timers_register(t, times[n], key, (size_t)kl), 1);
            assert_int_equal(rt_timers_register(t, times[n], key, (size_t)kl), 0);
            n++;
        }
    }
    assert_int_equal(rt_timers_count(t), (size_t)n);
    int64_t last_t = INT64_MIN;
    int last_i = -1, popped = 0;
    rt_timer_fired f;
    while (rt_timers_pop_due(t, RT_TIME_MAX, &f) == 1) {
        char key[16] = {0};
        assert_true(f.key_len < sizeof key);
        memcpy(key, f.key, f.key_len);
        int i = atoi(key);
        assert_int_equal(f.time, times[i]);
        /* (time, registration) order */
        assert_true(f.time > last_t || (f.time == last_t && i > last_i));
        last_t = f.time;
        last_i = i;
        popped++;
        rt_timers_done(t, &f);
        /* a fired (key, time) is no longer pending: registering it again adds a new timer */
        if (popped == 10) {
            assert_int_equal(rt_timers_register(t, times[i], key, strlen(key)), 1);
            assert_int_equal(rt_timers_delete(t, times[i], key, strlen(key)), 1);
        }
    }
    assert_int_equal(popped, n);
    assert_int_equal(rt_timers_count(t), 0);
    rt_timers_free(t);
    assert_int_equal(bytes, 0);
}

static void test_timer_service_new_timers_fire_in_order_without_an_index(void **state)
{
    (void)state;
    int64_t bytes = 0;
    rt_timers *t;
    assert_int_equal(rt_timers_new(charge_count, &bytes, &t), 0);
    /* keep-first's pattern: one new timer per new key; mixed with listed ones */
    for (int i = 0; i < 300; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "%d", i);
        if (i % 3)
            assert_int_equal(rt_timers_register_new(t, 1000 + i / 2, key, (size_t)kl), 1);
        else
            assert_int_equal(rt_timers_register(t, 1000 + i / 2, key, (size_t)kl), 1);
    }
    assert_int_equal(rt_timers_count(t), 300);
    /* a new timer has no hash entry: delete cannot see it; a listed one it can */
    assert_int_equal(rt_timers_delete(t, 1000, "1", 1), 0);
    assert_int_equal(rt_timers_delete(t, 1000, "0", 1), 1);
    rt_buf buf;
    rt_buf_init(&buf, 0);
    assert_int_equal(rt_timers_snapshot(t, &buf), 0);
    int popped = 0, last_i = -1;
    int64_t last_t = 0;
    rt_timer_fired f;
    while (rt_timers_pop_due(t, 1100, &f) == 1) {
        char key[16] = {0};
        memcpy(key, f.key, f.key_len);
        int i = atoi(key);
        assert_int_equal(f.time, 1000 + i / 2);
        assert_true(f.time > last_t || (f.time == last_t && i > last_i));
        last_t = f.time;
        last_i = i;
        popped++;
        rt_timers_done(t, &f);
    }
    assert_int_equal(popped, 201); /* times 1000..1100 (i <= 201), less the deleted one */
    /* the rest, new and listed, are freed with the service */
    rt_timers_free(t);
    assert_int_equal(bytes, 0);
    /* the snapshot holds them all; restored, they are ordinary timers */
    assert_int_equal(rt_timers_new(charge_count, &bytes, &t), 0);
    char err[128];
    assert_int_equal(rt_timers_restore(t, buf.data, buf.len, err, sizeof err), 0);
    assert_int_equal(rt_timers_count(t), 299);
    assert_int_equal(rt_timers_delete(t, 1000, "1", 1), 1);
    rt_timers_free(t);
    assert_int_equal(bytes, 0);
    rt_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uid_rules),
        cmocka_unit_test(test_duplicate_uid_rejected_by_open),
        cmocka_unit_test(test_cycle_rejected),
        cmocka_unit_test(test_connect_checks_ports),
        cmocka_unit_test(test_chaining_broadcast_and_order),
        cmocka_unit_test(test_holdback_and_timer_output_before_watermark),
        cmocka_unit_test(test_two_inputs_take_the_minimum),
        cmocka_unit_test(test_timer_order_dedupe_delete),
        cmocka_unit_test(test_timer_at_or_before_watermark_waits_for_next_advance),
        cmocka_unit_test(test_finish_drains_in_topological_order),
        cmocka_unit_test(test_drain_discards_cleanup_only_timers),
        cmocka_unit_test(test_failure_unwinds_with_message),
        cmocka_unit_test(test_side_output_and_operator_metrics),
        cmocka_unit_test(test_snapshot_restore_round_trip),
        cmocka_unit_test(test_timer_service_heap_against_sorted_order),
        cmocka_unit_test(test_timer_service_mass_delete),
        cmocka_unit_test(test_timer_service_interleaved_ascending_sequences_pop_in_order),
        cmocka_unit_test(test_timer_service_new_timers_fire_in_order_without_an_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
