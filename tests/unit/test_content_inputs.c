/* One task reading several sources (runtime/task.h rt_task_add_source), as content-metrics reads
 * the LogRequest files and the joined-event files. Pins:
 * - records are pushed in timestamp order across sources (a bad span first, ties to the source
 *   added first), each into its own root;
 * - each source's watermark follows only its own records, a root fed by several sources gets
 *   their minimum, and an operator fed by both roots sees the minimum of its inputs;
 * - a record in order within its own source is never late downstream, and the merge order (so
 *   the whole outcome) is the same whichever source is added first;
 * - a finite source that ends stops holding the others back when the task drains, and keeps its
 *   last watermark when it does not; the task drains once every source has ended;
 * - an idle source does not stop the others within a step;
 * - the source limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/graph.h"
#include "runtime/operator.h"
#include "runtime/task.h"

/* ---- in-memory sources ---- */

typedef struct item {
    int64_t ts;     /* -1 with name NULL: IDLE once; -2: a bad span */
    const char *name;
} item;

typedef struct msrc {
    rt_source src;
    const item *items;
    size_t n, pos;
} msrc;

static int msrc_next(rt_source *s, rt_source_record *out, char *err, size_t errlen)
{
    msrc *m = s->self;
    if (m->pos >= m->n) return RT_SOURCE_END;
    const item *it = &m->items[m->pos];
    out->offset = (int64_t)m->pos++;
    if (it->ts == -1) return RT_SOURCE_IDLE;
    if (it->ts == -2) {
        out->error = "bad frame";
        out->value = (const uint8_t *)"?";
        out->value_len = out->raw_length = 1;
        return RT_SOURCE_BAD;
    }
    out->ts = it->ts;
    out->value = (const uint8_t *)it->name;
    out->value_len = strlen(it->name);
    return RT_SOURCE_RECORD;
}

static void msrc_init(msrc *m, const char *name, const item *items, size_t n)
{
    memset(m, 0, sizeof *m);
    m->items = items;
    m->n = n;
    m->src = (rt_source){.name = name, .partition = -1, .finite = 1, .self = m, .next = msrc_next};
}

/* ---- graph: root-a, root-b -> union (logs what it sees) ---- */

typedef struct seen {
    char log[2048];
    int late;
    int64_t union_wm_at[32]; /* the union's input watermark when each record arrived */
    size_t n;
} seen;

static int root_process(rt_op *op, int input, const rt_record *rec)
{
    const rt_source_record *sr = rec->data;
    rt_record out = {.ts = rec->ts, .type = rec->type == RT_TYPE_SOURCE_BAD ? 2 : 1,
                     .data = (void *)sr->value, .len = sr->value_len};
    return rt_emit(op, 0, &out);
}

static int union_process(rt_op *op, int input, const rt_record *rec)
{
    seen *s = rt_op_self(op);
    size_t k = strlen(s->log);
    if (rec->type == 2) {
        snprintf(s->log + k, sizeof s->log - k, "bad ");
        return 0;
    }
    int late = rec->ts < rt_op_watermark(op);
    s->late += late;
    snprintf(s->log + k, sizeof s->log - k, "%.*s@%lld%s ", (int)rec->len,
             (const char *)rec->data, (long long)rec->ts, late ? "(late)" : "");
    if (s->n < 32) s->union_wm_at[s->n++] = rt_op_watermark(op);
    return 0;
}

static const rt_op_vtbl root_vt = {.process = root_process};
static const rt_op_vtbl union_vt = {.process = union_process};

typedef struct rig {
    rt_task *t;
    rt_op *a, *b, *u;
    seen s;
} rig;

/* Sources are added in the order given (each with ooo 0); srcs[i] feeds root roots[i] ('a' or
 * 'b'). */
static void rig_build(rig *r, msrc **srcs, const char *roots, int no_drain)
{
    memset(&r->s, 0, sizeof r->s);
    rt_task_config cfg = {.label = "0", .watermark_every = 1, .no_drain = no_drain};
    char err[256];
    assert_int_equal(rt_task_new(&cfg, &r->t, err, sizeof err), 0);
    rt_graph *g = rt_task_graph(r->t);
    assert_int_equal(rt_graph_add_op(g, "source-test-a", NULL, &root_vt, NULL, 1, 1, &r->a), 0);
    assert_int_equal(rt_graph_add_op(g, "source-test-b", NULL, &root_vt, NULL, 1, 1, &r->b), 0);
    assert_int_equal(rt_graph_add_op(g, "union-test-inputs", NULL, &union_vt, &r->s, 1, 0, &r->u), 0);
    assert_int_equal(rt_graph_connect(g, r->a, 0, r->u, 0), 0);
    assert_int_equal(rt_graph_connect(g, r->b, 0, r->u, 0), 0);
    rt_wmgen_config wm = {.max_out_of_orderness = 0};
    for (size_t i = 0; roots[i]; i++)
        assert_int_equal(rt_task_add_source(r->t, &srcs[i]->src, &wm, roots[i] == 'a' ? r->a : r->b,
                                            0, err, sizeof err),
                         0);
    if (rt_task_open(r->t, err, sizeof err)) fail_msg("open: %s", err);
}

static const item A[] = {{10, "a1"}, {30, "a2"}, {20, "a3"}, {50, "a4"}};
static const item B[] = {{15, "b1"}, {25, "b2"}, {12, "b3"}, {60, "b4"}, {55, "b5"}};

static void test_records_are_merged_by_timestamp_with_a_watermark_per_source(void **st)
{
    msrc a, b;
    msrc_init(&a, "a.rec", A, 4);
    msrc_init(&b, "b.rec", B, 5);
    msrc *srcs[] = {&a, &b};
    rig r;
    rig_build(&r, srcs, "ab", 0);
    char err[256];
    assert_int_equal(rt_task_run(r.t, err, sizeof err), 0);
    /* the pending record with the smallest ts goes first. b3@12 is behind its own source's
     * watermark (24) but not behind a's (9), so the union takes it in time; a3@20 is behind
     * both (a 29, b 24); b5@55 comes after a ended (a no longer holds back) and b reached 59 */
    assert_string_equal(r.s.log, "a1@10 b1@15 b2@25 b3@12 a2@30 a3@20(late) a4@50 b4@60 b5@55(late) ");
    assert_int_equal(r.s.late, 2);
    /* b3@12 arrived when a's watermark was 10 - 1 = 9 and b's 25 - 1 = 24: the union saw 9 */
    assert_int_equal(r.s.union_wm_at[3], 9);
    /* a4@50 arrived with a at 29, b at 24: the union saw 24 */
    assert_int_equal(r.s.union_wm_at[6], 24);
    rt_task_info info;
    rt_task_info_get(r.t, &info);
    assert_int_equal(info.sources, 2);
    assert_int_equal(info.records, 9);
    assert_int_equal(info.drained, 1);
    rt_task_free(r.t);
}

static void test_lateness_does_not_depend_on_which_source_is_added_first(void **st)
{
    msrc a, b;
    rig r1, r2;
    char err[256];
    msrc_init(&a, "a.rec", A, 4);
    msrc_init(&b, "b.rec", B, 5);
    msrc *ab[] = {&a, &b};
    rig_build(&r1, ab, "ab", 0);
    assert_int_equal(rt_task_run(r1.t, err, sizeof err), 0);
    msrc_init(&a, "a.rec", A, 4);
    msrc_init(&b, "b.rec", B, 5);
    msrc *ba[] = {&b, &a};
    rig_build(&r2, ba, "ba", 0);
    assert_int_equal(rt_task_run(r2.t, err, sizeof err), 0);
    assert_string_equal(r1.s.log, r2.s.log);
    assert_int_equal(r1.s.late, r2.s.late);
    rt_task_free(r1.t);
    rt_task_free(r2.t);
}

static const item A_SHORT[] = {{10, "a1"}, {20, "a2"}};
static const item B_LONG[] = {{5, "b1"}, {100, "b2"}, {200, "b3"}, {300, "b4"}};

static void test_an_ended_source_stops_holding_back_when_draining(void **st)
{
    msrc a, b;
    msrc_init(&a, "a.rec", A_SHORT, 2);
    msrc_init(&b, "b.rec", B_LONG, 4);
    msrc *srcs[] = {&a, &b};
    rig r;
    rig_build(&r, srcs, "ab", 0);
    char err[256];
    assert_int_equal(rt_task_run(r.t, err, sizeof err), 0);
    assert_string_equal(r.s.log, "b1@5 a1@10 a2@20 b2@100 b3@200 b4@300 ");
    /* a ended after a2 (at 19): from then on only b holds the union back */
    assert_int_equal(r.s.union_wm_at[3], 4); /* b2 arrives: a already ended, b at 4 */
    assert_int_equal(r.s.union_wm_at[4], 99);
    assert_int_equal(r.s.union_wm_at[5], 199);
    assert_int_equal(rt_op_watermark(r.u), RT_TIME_MAX); /* drained */
    rt_task_free(r.t);
}

static void test_without_drain_an_ended_source_keeps_its_watermark(void **st)
{
    msrc a, b;
    msrc_init(&a, "a.rec", A_SHORT, 2);
    msrc_init(&b, "b.rec", B_LONG, 4);
    msrc *srcs[] = {&a, &b};
    rig r;
    rig_build(&r, srcs, "ab", 1);
    char err[256];
    assert_int_equal(rt_task_run(r.t, err, sizeof err), 0);
    assert_int_equal(r.s.union_wm_at[5], 19); /* a's last watermark holds */
    assert_int_equal(rt_op_watermark(r.u), 19);
    rt_task_info info;
    rt_task_info_get(r.t, &info);
    assert_int_equal(info.drained, 0);
    assert_int_equal(info.watermark, 19);
    rt_task_free(r.t);
}

static void test_two_sources_into_one_root_take_the_minimum(void **st)
{
    static const item X[] = {{100, "x1"}, {200, "x2"}};
    static const item Y[] = {{10, "y1"}, {20, "y2"}, {-1, NULL}, {150, "y3"}};
    msrc x, y;
    msrc_init(&x, "x.rec", X, 2);
    msrc_init(&y, "y.rec", Y, 4);
    msrc *srcs[] = {&x, &y};
    rig r;
    rig_build(&r, srcs, "aa", 0);
    char err[256];
    /* step 1: y goes idle after y2; x's records still flow within the step, then x ends */
    int rc = rt_task_step(r.t, err, sizeof err);
    assert_int_equal(rc, RT_TASK_IDLE);
    assert_string_equal(r.s.log, "y1@10 y2@20 x1@100 x2@200 ");
    /* root a's watermark is the minimum of x (ended: no longer holds) and y (19) */
    assert_int_equal(rt_op_watermark(r.a), 19);
    /* root b has no source here: it never advances, so it holds the union at the start of time
     * (why content-metrics builds the joined-event source only when it has files) */
    assert_true(r.s.union_wm_at[3] == RT_TIME_MIN);
    assert_int_equal(rt_task_run(r.t, err, sizeof err), 0);
    assert_string_equal(r.s.log, "y1@10 y2@20 x1@100 x2@200 y3@150 ");
    assert_int_equal(r.s.late, 0);
    rt_task_free(r.t);
}

static void test_a_bad_span_goes_first(void **st)
{
    static const item X[] = {{100, "x1"}};
    static const item Y[] = {{-2, NULL}, {5, "y1"}};
    msrc x, y;
    msrc_init(&x, "x.rec", X, 1);
    msrc_init(&y, "y.rec", Y, 2);
    msrc *srcs[] = {&x, &y};
    rig r;
    rig_build(&r, srcs, "ab", 0);
    char err[256];
    assert_int_equal(rt_task_run(r.t, err, sizeof err), 0);
    assert_string_equal(r.s.log, "bad y1@5 x1@100 ");
    rt_task_info info;
    rt_task_info_get(r.t, &info);
    assert_int_equal(info.bad, 1);
    assert_int_equal(info.records, 2);
    rt_task_free(r.t);
}

static void test_source_limit(void **st)
{
    rt_task_config cfg = {.label = "0"};
    char err[256];
    rt_task *t;
    assert_int_equal(rt_task_new(&cfg, &t, err, sizeof err), 0);
    rt_op *root;
    static const rt_op_vtbl sink_vt = {.process = NULL};
    assert_int_equal(rt_graph_add_op(rt_task_graph(t), "source-test-many", NULL, &sink_vt, NULL, 1,
                                     0, &root),
                     0);
    msrc m;
    msrc_init(&m, "m.rec", NULL, 0);
    for (int i = 0; i < RT_TASK_MAX_SOURCES; i++)
        assert_int_equal(rt_task_add_source(t, &m.src, NULL, root, 0, err, sizeof err), 0);
    assert_int_equal(rt_task_add_source(t, &m.src, NULL, root, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "m.rec"));
    assert_non_null(strstr(err, "1024"));
    rt_task_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_are_merged_by_timestamp_with_a_watermark_per_source),
        cmocka_unit_test(test_lateness_does_not_depend_on_which_source_is_added_first),
        cmocka_unit_test(test_an_ended_source_stops_holding_back_when_draining),
        cmocka_unit_test(test_without_drain_an_ended_source_keeps_its_watermark),
        cmocka_unit_test(test_two_sources_into_one_root_take_the_minimum),
        cmocka_unit_test(test_a_bad_span_goes_first),
        cmocka_unit_test(test_source_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
