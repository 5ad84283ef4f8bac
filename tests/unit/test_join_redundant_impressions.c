/* ReduceRedundantTinyImpressions (spec/flat-output.md §10), ttl 1 h, driven through a graph: the
 * four scenarios of the spec, the key fallback, the cleanup, and a snapshot taken mid-stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobs/join/redundant_impressions.h"
#include "runtime/buf.h"
#include "test_join_post_util.h"

#define HOUR 3600000

typedef struct fixture {
    rt_graph *g;
    rt_op *op;
    capture out, dropped;
} fixture;

static void fx_build(fixture *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(rt_graph_new(NULL, &f->g), 0);
    redundant_impressions_config cfg = {.ttl_ms = HOUR};
    assert_int_equal(
        redundant_impressions_op_add(f->g, "reduce-redundant-tiny-impression", &cfg, &f->op), 0);
    capture_port(f->g, "capture-out", &f->out, f->op, 0);
    capture_port(f->g, "capture-dropped", &f->dropped, f->op, 1);
    graph_open_ok(f->g);
}

static void fx_free(fixture *f)
{
    rt_graph_free(f->g);
    capture_free(&f->out);
    capture_free(&f->dropped);
}

static void imp(fixture *f, const char *id, int64_t t)
{
    Event__TinyEvent e = tiny_ev(1, "u1", (uint64_t)t, "v1", "r1", "ins1", "c1", id, NULL);
    push_ok(f->g, f->op, 0, REC_TINY_EVENT, &e, t);
}

static void act(fixture *f, const char *id, const char *imp_id, int64_t t)
{
    Event__TinyEvent e = tiny_ev(1, "u1", (uint64_t)t, "v1", "r1", "ins1", "c-act", imp_id, id);
    push_ok(f->g, f->op, 0, REC_TINY_EVENT, &e, t);
}

/* Checks out[i]: impression imp_id, action act_id (NULL: none), lt and ts. */
static void expect(const capture *c, size_t i, const char *imp_id, const char *act_id, int64_t lt,
                   int64_t ts)
{
    Event__TinyEvent *t = cap_tiny(c, i);
    assert_string_equal(nz(t->impression_id), imp_id);
    assert_string_equal(nz(t->action_id), act_id ? act_id : "");
    assert_int_equal((int64_t)t->log_timestamp, lt);
    assert_int_equal(c->recs[i].ts, ts);
    event__tiny_event__free_unpacked(t, NULL);
}

static void test_later_impressions_of_one_insertion_are_redundant(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    imp(&f, "imp1", 0);
    imp(&f, "imp2", 1000);
    imp(&f, "imp3", 6000);
    imp(&f, "imp4", 60000);
    assert_int_equal(f.out.n, 1);
    expect(&f.out, 0, "imp1", NULL, 0, 0);
    assert_int_equal(f.dropped.n, 3);
    expect(&f.dropped, 0, "imp2", NULL, 1000, 1000);
    expect(&f.dropped, 2, "imp4", NULL, 60000, 60000);
    fx_free(&f);
}

static void test_first_arrival_not_earliest_time_becomes_root(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    imp(&f, "imp2", 1000);
    imp(&f, "imp1", 0);
    assert_int_equal(f.out.n, 1);
    expect(&f.out, 0, "imp2", NULL, 1000, 1000);
    assert_int_equal(f.dropped.n, 1);
    expect(&f.dropped, 0, "imp1", NULL, 0, 0);
    fx_free(&f);
}

static void test_actions_are_repointed_to_the_root_impression(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    act(&f, "act1", "imp2", 0); /* before any impression: buffered */
    assert_int_equal(f.out.n, 0);
    imp(&f, "imp1", 500);
    imp(&f, "imp2", 1000);
    imp(&f, "imp3", 6000);
    act(&f, "act2", "imp1", 12000);
    imp(&f, "imp4", 60000);
    act(&f, "act3", "imp4", 70000);
    assert_int_equal(f.out.n, 4);
    expect(&f.out, 0, "imp1", NULL, 500, 500);
    /* flushed with the root: a copy of the root with the action's lt and id, at the root's ts */
    expect(&f.out, 1, "imp1", "act1", 0, 500);
    expect(&f.out, 2, "imp1", "act2", 12000, 12000);
    expect(&f.out, 3, "imp1", "act3", 70000, 70000);
    /* the re-pointed copy carries the root's content id, not the action's (QUIRK §18 item 9) */
    Event__TinyEvent *t = cap_tiny(&f.out, 3);
    assert_string_equal(nz(t->content_id), "c1");
    event__tiny_event__free_unpacked(t, NULL);
    /* an action already on the root passes unchanged, with its own content id */
    t = cap_tiny(&f.out, 2);
    assert_string_equal(nz(t->content_id), "c-act");
    event__tiny_event__free_unpacked(t, NULL);
    assert_int_equal(f.dropped.n, 3);
    fx_free(&f);
}

static void test_root_is_replaced_only_strictly_after_ttl(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    imp(&f, "imp1", 0);
    imp(&f, "imp2", HOUR);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.dropped.n, 1);
    imp(&f, "imp3", HOUR + 1);
    assert_int_equal(f.out.n, 2);
    expect(&f.out, 1, "imp3", NULL, HOUR + 1, HOUR + 1);
    /* and actions now follow the new root */
    act(&f, "act1", "imp1", HOUR + 2);
    expect(&f.out, 2, "imp3", "act1", HOUR + 2, HOUR + 2);
    fx_free(&f);
}

static void test_lone_action_is_emitted_at_twice_ttl(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    int64_t empty = rt_op_mem_used(f.op);
    act(&f, "act1", "imp9", 0);
    int64_t held = rt_op_mem_used(f.op);
    wm_ok(f.g, 2 * HOUR - 1);
    assert_int_equal(f.out.n, 0);
    wm_ok(f.g, 2 * HOUR);
    assert_int_equal(f.out.n, 1);
    /* as it came: nothing to re-point it to; ts = the timer */
    expect(&f.out, 0, "imp9", "act1", 0, 2 * HOUR);
    assert_int_equal(rt_timer_count(f.op), 0);
    /* only the timer heap's array stays allocated */
    assert_true(rt_op_mem_used(f.op) < held);
    assert_true(rt_op_mem_used(f.op) <= empty + 512);
    fx_free(&f);
}

static void test_state_is_cleared_at_latest_cleanup_then_key_starts_over(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    int64_t empty = rt_op_mem_used(f.op);
    imp(&f, "imp1", 1000);
    imp(&f, "imp2", 2000);
    int64_t held = rt_op_mem_used(f.op);
    /* cleanup of lt 1000 is floor((1000 + 2h) / 1h) * 1h = 2h */
    wm_ok(f.g, 2 * HOUR);
    assert_int_equal(rt_timer_count(f.op), 0);
    assert_true(rt_op_mem_used(f.op) < held);
    assert_true(rt_op_mem_used(f.op) <= empty + 512);
    /* within what would have been the root's ttl window, a fresh impression is a root again */
    imp(&f, "imp5", 2 * HOUR + 1);
    assert_int_equal(f.out.n, 2);
    expect(&f.out, 1, "imp5", NULL, 2 * HOUR + 1, 2 * HOUR + 1);
    fx_free(&f);
}

static void test_key_falls_back_to_view_and_content_without_insertion(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    Event__TinyEvent a = tiny_ev(1, "u1", 10, "v1", NULL, NULL, "c1", "m1", NULL);
    Event__TinyEvent b = tiny_ev(1, "u1", 20, "v1", NULL, NULL, "c1", "m2", NULL);
    Event__TinyEvent c = tiny_ev(1, "u1", 30, "v1", NULL, NULL, "c2", "m3", NULL);
    Event__TinyEvent d = tiny_ev(1, "u2", 40, "v1", NULL, NULL, "c1", "m4", NULL);
    Event__TinyEvent e = tiny_ev(2, "u1", 50, "v1", NULL, NULL, "c1", "m5", NULL);
    push_ok(f.g, f.op, 0, REC_TINY_EVENT, &a, 10);
    push_ok(f.g, f.op, 0, REC_TINY_EVENT, &b, 20); /* same (view, content): redundant */
    push_ok(f.g, f.op, 0, REC_TINY_EVENT, &c, 30); /* other content */
    push_ok(f.g, f.op, 0, REC_TINY_EVENT, &d, 40); /* other user */
    push_ok(f.g, f.op, 0, REC_TINY_EVENT, &e, 50); /* other platform */
    assert_int_equal(f.out.n, 4);
    assert_int_equal(f.dropped.n, 1);
    expect(&f.dropped, 0, "m2", NULL, 20, 20);
    fx_free(&f);
}

static void test_buffered_actions_are_bounded_per_key(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    for (int i = 0; i < REDUNDANT_MAX_PENDING_ACTIONS; i++)
        act(&f, "a", "imp9", i);
    assert_int_equal(f.out.n, 0);
    /* one more goes out unchanged at once instead of growing the buffer */
    act(&f, "a-over", "imp9", 5000);
    assert_int_equal(f.out.n, 1);
    expect(&f.out, 0, "imp9", "a-over", 5000, 5000);
    /* the buffered ones are all still re-pointed when the root comes */
    imp(&f, "imp1", 6000);
    assert_int_equal(f.out.n, 2 + REDUNDANT_MAX_PENDING_ACTIONS);
    expect(&f.out, 2 + REDUNDANT_MAX_PENDING_ACTIONS - 1, "imp1", "a", 4095, 6000);
    fx_free(&f);
}

static void test_state_survives_snapshot_and_restore(void **state)
{
    (void)state;
    fixture f;
    fx_build(&f);
    act(&f, "act1", "imp2", 0);
    rt_buf snap;
    rt_buf_init(&snap, 0);
    assert_int_equal(rt_graph_snapshot(f.g, &snap), 0);
    fx_free(&f);

    fixture g;
    fx_build(&g);
    char err[256] = "";
    if (rt_graph_restore(g.g, snap.data, snap.len, err, sizeof err)) fail_msg("restore: %s", err);
    rt_buf_free(&snap);
    imp(&g, "imp1", 500);
    assert_int_equal(g.out.n, 2);
    expect(&g.out, 1, "imp1", "act1", 0, 500);
    imp(&g, "imp2", 1000);
    assert_int_equal(g.dropped.n, 1);
    fx_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_later_impressions_of_one_insertion_are_redundant),
        cmocka_unit_test(test_first_arrival_not_earliest_time_becomes_root),
        cmocka_unit_test(test_actions_are_repointed_to_the_root_impression),
        cmocka_unit_test(test_root_is_replaced_only_strictly_after_ttl),
        cmocka_unit_test(test_lone_action_is_emitted_at_twice_ttl),
        cmocka_unit_test(test_state_is_cleared_at_latest_cleanup_then_key_starts_over),
        cmocka_unit_test(test_key_falls_back_to_view_and_content_without_insertion),
        cmocka_unit_test(test_buffered_actions_are_bounded_per_key),
        cmocka_unit_test(test_state_survives_snapshot_and_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
