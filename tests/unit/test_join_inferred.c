/* The inferred-reference joins J1, J2, J3 (spec/flat-output.md §7, §7.11 scenarios, §20
 * acceptance behaviours 9-12 and 15 at the join) driven through a real graph. `x@t` = a record
 * with lt = ts = t; maxTime 100, maxOOO 50 unless a test says otherwise. */
#include "test_join_inferred_harness.h"

#define OUT INFERRED_JOIN_PORT_OUT
#define LATE INFERRED_JOIN_PORT_LATE
#define DROPPED INFERRED_JOIN_PORT_DROPPED
#define MISMATCH INFERRED_JOIN_PORT_MISMATCH

static const int64_t T0 = 1601596151000;

/* ---------------------------------------------------------------- §7.11 J1 ---------- */

/* view1@10; DL(req1,view1,[ins1,ins2])@20; DL(req2,view2,[ins3,ins4])@40; WM 50; view2@80,
 * view3@90; WM 100 -> ins1,ins2 (lt 20, ts 20), ins3,ins4 (lt 40, ts 80); empty by WM 240
 * (the reference: by WM 200; see docs/JOIN.md "Join maxima above zero"). */
static void test_j1_explicit_view_id_joins_now_or_when_the_view_arrives(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J1, &p);
    lhs(h, 10, "view=view1");
    dl(h, 20, "req=req1 view=view1 ins=ins1:c1,ins2:c2");
    assert_int_equal(on_port(h, OUT), 2); /* explicit: emitted with the child, no waiting */
    dl(h, 40, "req=req2 view=view2 ins=ins3:c3,ins4:c4");
    wm(h, 50);
    assert_int_equal(on_port(h, OUT), 2);
    lhs(h, 80, "view=view2");
    lhs(h, 90, "view=view3");
    wm(h, 100);
    assert_int_equal(on_port(h, OUT), 4);
    const char *ins[] = {"ins1", "ins2", "ins3", "ins4"};
    const int64_t lt[] = {20, 20, 40, 40}, ts[] = {20, 20, 80, 80};
    const char *req[] = {"req1", "req1", "req2", "req2"},
               *view[] = {"view1", "view1", "view2", "view2"};
    for (int i = 0; i < 4; i++) {
        const got *g = nth(h, OUT, (size_t)i);
        assert_string_equal(g->insertion, ins[i]);
        assert_int_equal(g->lt, lt[i]);
        assert_int_equal(g->ts, ts[i]);
        assert_string_equal(g->request, req[i]);
        assert_string_equal(g->view, view[i]);
    }
    for (int p2 = 1; p2 < INFERRED_JOIN_NPORTS; p2++)
        assert_int_equal(on_port(h, p2), 0);
    assert_int_equal(stats(h).lhs_buffered, 3);
    /* a parent stays until lt + maxTime + maxOOO (the reference: lt + maxTime, "empty by WM
     * 200"), so that a child waiting maxOOO can still choose it: view1 leaves at 160, view2 at
     * 230, view3 at 240 */
    wm(h, 200);
    assert_int_equal(stats(h).lhs_buffered, 2);
    wm(h, 239);
    assert_int_equal(stats(h).lhs_buffered, 1);
    wm(h, 240);
    assert_empty(h);
    assert_int_equal(rt_timer_count(h->join), 0);
    stop(h);
}

/* view1@10; DL3(no view)@20; DL4(no view)@50; view2@80; view3@90; WM 100 -> DL3->view1 at ts 70
 * (earlier is 10 away, later 60 > maxOOO); DL4->view2 at ts 100 (40 vs 30: the later wins). */
static void test_j1_inferred_view_is_nearest_in_time_with_later_preferred(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J1, &p);
    lhs(h, 10, "view=view1");
    dl(h, 20, "req=req3 ins=ins5");
    dl(h, 50, "req=req4 ins=ins6");
    lhs(h, 80, "view=view2");
    lhs(h, 90, "view=view3");
    wm(h, 100);
    assert_int_equal(on_port(h, OUT), 2);
    const got *a = nth(h, OUT, 0), *b = nth(h, OUT, 1);
    assert_string_equal(a->insertion, "ins5");
    assert_string_equal(a->view, "view1");
    assert_int_equal(a->ts, 70);
    assert_int_equal(a->lt, 20);
    assert_string_equal(b->insertion, "ins6");
    assert_string_equal(b->view, "view2");
    assert_int_equal(b->ts, 100);
    assert_int_equal(b->lt, 50);
    stop(h);
}

/* Right outer on (J1): DL3@20 (no view) and DL4@50 (names a view that never comes) come out
 * unjoined at their timers, ts 70 and 100, keeping their own ids. */
static void test_j1_right_outer_emits_unjoined_delivery_logs_at_their_timers(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J1, &p);
    dl(h, 20, "req=req3 ins=ins5");
    dl(h, 50, "req=req4 view=viewX ins=ins6");
    wm(h, 100);
    assert_int_equal(on_port(h, OUT), 2);
    assert_int_equal(on_port(h, DROPPED), 0);
    const got *a = nth(h, OUT, 0), *b = nth(h, OUT, 1);
    assert_string_equal(a->insertion, "ins5");
    assert_string_equal(a->view, "");
    assert_int_equal(a->ts, 70);
    assert_string_equal(b->insertion, "ins6");
    assert_string_equal(b->view, "viewX"); /* the DeliveryLog's own view id stays */
    assert_int_equal(b->ts, 100);
    assert_empty(h);
    stop(h);
}

/* The same children through the generic operator with rightOuter off: nothing on the main
 * output, both on the dropped port (raw children) at ts 70 and 100, state empty at WM 100. */
static const char *g_view(void *c, const void *m)
{
    return ((const Event__TinyEvent *)m)->view_id;
}
static const char *g_req(void *c, const void *m, ProtobufCAllocator *a)
{
    return ((const Event__TinyEvent *)m)->request_id;
}
static void g_none(void *c, const void *m, inferred_join_scopes *sc) {}
static void g_view_scope(void *c, const void *m, inferred_join_scopes *sc)
{
    inferred_join_scopes_add(sc, ((const Event__TinyEvent *)m)->view_id);
}
static int g_key(void *c, int input, const void *m, uint8_t *buf, size_t cap)
{
    const Event__TinyEvent *t = m;
    return job_key_platform_id(t->platform_id, t->log_user_id, buf, cap);
}
static int64_t g_lt(void *c, int input, const void *m)
{
    return (int64_t)((const Event__TinyEvent *)m)->log_timestamp;
}
static int g_merge(void *c, inferred_join_merge *m, const void *l, const void *r)
{
    Event__TinyEvent out = *(const Event__TinyEvent *)r;
    if (l) out.view_id = ((const Event__TinyEvent *)l)->view_id;
    return inferred_join_merge_emit(m, &out);
}
static int add_generic_inner(rt_graph *g, rt_op **out)
{
    inferred_join_config c = {
        .lhs_type = REC_TINY_EVENT,
        .rhs_type = REC_TINY_EVENT,
        .out_type = REC_TINY_EVENT,
        .lhs_desc = &event__tiny_event__descriptor,
        .rhs_desc = &event__tiny_event__descriptor,
        .max_time_ms = 100,
        .max_ooo_ms = 50,
        .mult = 1,
        .right_outer = false,
        .include_key_as_scope = true,
        .check_lateness = true,
        .key = g_key,
        .lt = g_lt,
        .lhs_pk = g_view,
        .rhs_fk = g_view,
        .rhs_pk = g_req,
        .lhs_scopes = g_none,
        .rhs_scopes = g_view_scope,
        .merge = g_merge,
    };
    c.port_names[INFERRED_JOIN_PORT_DROPPED] = "dropped_test";
    return inferred_join_op_add(g, "join-test-inner", &c, out);
}

static void test_right_outer_off_drops_unjoined_children_and_empties_state(void **s)
{
    harness *h = start_with(add_generic_inner);
    rhs(h, 20, "req=req3");
    rhs(h, 50, "req=req4 view=viewX");
    wm(h, 100);
    assert_int_equal(on_port(h, OUT), 0);
    assert_int_equal(on_port(h, DROPPED), 2);
    assert_string_equal(nth(h, DROPPED, 0)->request, "req3");
    assert_int_equal(nth(h, DROPPED, 0)->ts, 70);
    assert_string_equal(nth(h, DROPPED, 1)->request, "req4");
    assert_int_equal(nth(h, DROPPED, 1)->ts, 100);
    assert_int_equal(metric(h, "numRecordsOutSide", "output=dropped_test"), 2);
    assert_empty(h);
    stop(h);
}

/* --skipViewJoin: views are ignored, every DeliveryLog comes out at once with its own ts, and no
 * timer is set. */
static void test_j1_skip_view_join_passes_delivery_logs_through_without_timers(void **s)
{
    join_instances_params p = params_711();
    p.skip_view_join = true;
    harness *h = start(J1, &p);
    lhs(h, 10, "view=view1");
    dl(h, 20, "req=req3 view=view1 ins=ins5");
    assert_int_equal(on_port(h, OUT), 1);
    dl(h, 50, "req=req4 ins=ins6");
    assert_int_equal(on_port(h, OUT), 2);
    assert_int_equal(nth(h, OUT, 0)->ts, 20);
    assert_int_equal(nth(h, OUT, 1)->ts, 50);
    assert_string_equal(nth(h, OUT, 0)->insertion, "ins5");
    assert_int_equal(rt_timer_count(h->join), 0);
    assert_empty(h);
    stop(h);
}

/* ---------------------------------------------------------------- §7.11 J3 ---------- */

/* imp1(content1)@10; act(content2)@20; act(content1)@50; act(content3)@60; imp2(content2)@80;
 * imp3(content3)@90 -> act(content1)->imp1 at ts 100 (lt 50); act(content3)->imp3 at ts 110
 * (lt 60); act(content2) dropped (imp2 is 60 later > 50). */
static void test_j3_content_scope_joins_nearest_impression_of_that_content(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J3, &p);
    lhs(h, 10, "imp=imp1 content=content1");
    rhs(h, 20, "act=a2 content=content2");
    rhs(h, 50, "act=a1 content=content1");
    rhs(h, 60, "act=a3 content=content3");
    lhs(h, 80, "imp=imp2 content=content2");
    lhs(h, 90, "imp=imp3 content=content3");
    wm(h, 200);
    assert_int_equal(on_port(h, OUT), 2);
    const got *a = nth(h, OUT, 0), *b = nth(h, OUT, 1);
    assert_string_equal(a->action, "a1");
    assert_string_equal(a->impression, "imp1");
    assert_int_equal(a->ts, 100);
    assert_int_equal(a->lt, 50);
    assert_string_equal(b->action, "a3");
    assert_string_equal(b->impression, "imp3");
    assert_int_equal(b->ts, 110);
    assert_int_equal(b->lt, 60);
    assert_int_equal(on_port(h, DROPPED), 1);
    assert_string_equal(nth(h, DROPPED, 0)->action, "a2");
    assert_int_equal(nth(h, DROPPED, 0)->ts, 70);
    assert_string_equal(nth(h, DROPPED, 0)->impression, ""); /* the raw child */
    stop(h);
}

/* §7.7: a child exactly between two parents (10 before, 10 after, both in range) takes the later
 * one; one nearer on either side wins. */
static void test_nearest_tie_goes_to_the_later_parent(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J3, &p);
    lhs(h, 10, "imp=early content=c");
    lhs(h, 30, "imp=late content=c");
    rhs(h, 20, "act=tie content=c");
    rhs(h, 21, "act=later content=c lt=21");
    rhs(h, 22, "act=earlier content=c lt=19");
    wm(h, 200);
    assert_int_equal(on_port(h, OUT), 3);
    assert_string_equal(nth(h, OUT, 0)->action, "tie");
    assert_string_equal(nth(h, OUT, 0)->impression, "late");
    assert_string_equal(nth(h, OUT, 1)->impression, "late");
    assert_string_equal(nth(h, OUT, 2)->action, "earlier");
    assert_string_equal(nth(h, OUT, 2)->impression, "early");
    stop(h);
}

/* Actions with no ids and no content have no scope to look in: both dropped. */
static void test_j3_actions_without_ids_or_content_are_dropped(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J3, &p);
    lhs(h, 10, "imp=imp1 content=content1");
    rhs(h, 20, "act=a1");
    rhs(h, 30, "act=a2");
    wm(h, 200);
    assert_int_equal(on_port(h, OUT), 0);
    assert_int_equal(on_port(h, DROPPED), 2);
    assert_int_equal(metric(h, "numRecordsOutSide", "output=dropped_impression_actions"), 2);
    stop(h);
}

/* Store -> item: impression content1, action content2 with storeId=content1. Without storeId in
 * --contentIdFieldKeys the action has no scope holding the impression: dropped. With it, the
 * storeId value is a scope and joins (ts 70), the action's content id winning. */
static void run_store_to_item(bool configured)
{
    join_instances_params p = params_711();
    const char *keys[] = {"storeId"};
    if (configured) {
        p.content_id_field_keys = keys;
        p.n_content_id_field_keys = 1;
    }
    harness *h = start(J3, &p);
    lhs(h, 10, "imp=imp1 content=content1");
    rhs(h, 20, "act=a1 content=content2 other=storeId:content1");
    wm(h, 200);
    if (!configured) {
        assert_int_equal(on_port(h, OUT), 0);
        assert_int_equal(on_port(h, DROPPED), 1);
    } else {
        assert_int_equal(on_port(h, OUT), 1);
        const got *g = nth(h, OUT, 0);
        assert_string_equal(g->impression, "imp1");
        assert_string_equal(g->content, "content2");
        assert_int_equal(g->ts, 70);
        char want[IDN];
        snprintf(want, sizeof want, "%d:content1", java_string_hash("storeId", 7));
        assert_string_equal(g->other, want);
        assert_int_equal(on_port(h, DROPPED), 0);
    }
    stop(h);
}

static void test_j3_store_to_item_joins_only_with_the_configured_key(void **s)
{
    run_store_to_item(false);
    run_store_to_item(true);
}

/* Item -> store: the impression carries storeId=store1, the action's content is store1. */
static void test_j3_item_to_store_joins_through_the_impression_other_id(void **s)
{
    for (int configured = 0; configured < 2; configured++) {
        join_instances_params p = params_711();
        const char *keys[] = {"storeId"};
        if (configured) {
            p.content_id_field_keys = keys;
            p.n_content_id_field_keys = 1;
        }
        harness *h = start(J3, &p);
        lhs(h, 10, "imp=imp1 content=content1 other=storeId:store1");
        rhs(h, 20, "act=a1 content=store1");
        wm(h, 200);
        assert_int_equal(on_port(h, OUT), configured ? 1 : 0);
        assert_int_equal(on_port(h, DROPPED), configured ? 0 : 1);
        if (configured) {
            assert_string_equal(nth(h, OUT, 0)->impression, "imp1");
            assert_int_equal(nth(h, OUT, 0)->ts, 70);
        }
        stop(h);
    }
}

/* imp1@10, WM 100, imp1@110 (still stored: duplicate), imp2@120; WM 200 removes imp1
 * (10 <= 110-100); imp1@210 accepted again; imp2@220 duplicate; imp3@230 + action(content3)@230
 * -> joined at ts 280; 2 duplicates in all. */
static void test_j3_cleanup_forgets_parents_and_counts_duplicates(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J3, &p);
    lhs(h, 10, "imp=imp1 content=content1");
    wm(h, 100);
    lhs(h, 110, "imp=imp1 content=content1");
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_DUPLICATE_LHS), 1);
    lhs(h, 120, "imp=imp2 content=content2");
    wm(h, 200);
    assert_int_equal(stats(h).lhs_buffered, 1); /* imp1 is gone, imp2 stays */
    lhs(h, 210, "imp=imp1 content=content1");
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_DUPLICATE_LHS), 1);
    lhs(h, 220, "imp=imp2 content=content2");
    lhs(h, 230, "imp=imp3 content=content3");
    rhs(h, 230, "act=a1 content=content3");
    wm(h, 300);
    assert_int_equal(on_port(h, OUT), 1);
    assert_string_equal(nth(h, OUT, 0)->impression, "imp3");
    assert_int_equal(nth(h, OUT, 0)->ts, 280);
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_DUPLICATE_LHS), 2);
    assert_int_equal(stats(h).lhs_duplicates, 2);
    assert_int_equal(metric(h, "numDuplicateLhs", "join-impression-action"), 2);
    assert_int_equal(metric(h, "numRecordsOutSide", "output=duplicate_impression"), 2);
    assert_string_equal(nth(h, INFERRED_JOIN_PORT_DUPLICATE_LHS, 1)->impression, "imp2");
    wm(h, 1000);
    assert_empty(h);
    stop(h);
}

/* Scopes share raw id strings (§7.2): impression B whose request_id is "c1" sits in the same
 * scope as impression A whose content is c1. An action of content c1 keeps only parents sharing
 * a content id (§7.6), so it takes A (18 ms earlier) and not B (2 ms later). */
static void test_content_filter_applies_inside_a_scope_shared_by_raw_id_string(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J3, &p);
    lhs(h, 10, "imp=A content=c1");
    lhs(h, 30, "imp=B req=c1 content=c9");
    rhs(h, 28, "act=a1 content=c1");
    wm(h, 200);
    assert_int_equal(on_port(h, OUT), 1);
    assert_string_equal(nth(h, OUT, 0)->impression, "A");
    stop(h);

    /* after A's cleanup (at lt + maxTime + maxOOO = 160) only B is left in that scope, and B
     * is not a content match: the action finds nothing there */
    h = start(J3, &p);
    lhs(h, 10, "imp=A content=c1");
    lhs(h, 100, "imp=B req=c1 content=c9");
    wm(h, 159);
    assert_int_equal(stats(h).lhs_buffered, 2);
    wm(h, 160);
    assert_int_equal(stats(h).lhs_buffered, 1);
    rhs(h, 160, "act=a2 content=c1");
    wm(h, 220);
    assert_int_equal(on_port(h, OUT), 0);
    assert_int_equal(on_port(h, DROPPED), 1);
    stop(h);

    /* the same the other way round: B arrives first (alone in the scope), then A */
    h = start(J3, &p);
    lhs(h, 10, "imp=B req=c1 content=c9");
    lhs(h, 30, "imp=A content=c1");
    rhs(h, 12, "act=a3 content=c1");
    wm(h, 200);
    assert_int_equal(on_port(h, OUT), 1);
    assert_string_equal(nth(h, OUT, 0)->impression, "A");
    stop(h);
}

/* --idJoinDurationMultiplier 2 keeps a parent for explicit ids until lt + 2 * maxTime (an action
 * naming it at 150, past ts + maxTime, still joins), and a child waiting for a named parent until
 * lt + 2 * maxOOO; both then leave at their own horizon, so nothing outlives it. */
static void test_id_join_multiplier_keeps_parents_longer_and_still_cleans_them(void **s)
{
    join_instances_params p = params_711();
    p.id_join_duration_multiplier = 2;
    harness *h = start(J3, &p);
    lhs(h, 10, "imp=imp1 content=c1");
    rhs(h, 20, "act=a0 imp=zz");
    wm(h, 110); /* past the child's timer (70) and the parent's (110): both still held */
    assert_int_equal(stats(h).lhs_buffered, 1);
    assert_int_equal(stats(h).rhs_buffered, 1); /* the child's horizon is 20 + 2 * 50 = 120 ... */
    wm(h, 150);
    assert_int_equal(on_port(h, DROPPED), 1); /* ... left at its horizon, ts 120 */
    assert_int_equal(nth(h, DROPPED, 0)->ts, 120);
    rhs(h, 150, "act=a1 imp=imp1");
    assert_int_equal(on_port(h, OUT), 1);
    assert_string_equal(nth(h, OUT, 0)->impression, "imp1");
    wm(h, 1000);
    assert_empty(h);
    stop(h);
}

/* ---------------------------------------------------------------- §7.3 order -------- */

static void test_java_binary_search_returns_the_first_equal_on_its_path(void **s)
{
    assert_int_equal(inferred_join_java_search(0, 0, 0), -1);
    assert_int_equal(inferred_join_java_search(1, 0, 1), 0);
    assert_int_equal(inferred_join_java_search(2, 0, 2), 0);
    assert_int_equal(inferred_join_java_search(3, 0, 3), 1);
    assert_int_equal(inferred_join_java_search(10, 7, 9), 7); /* mids 4 (below), then 7 */
    assert_int_equal(inferred_join_java_search(10, 0, 1), 0); /* 4, 1, 0 */
    assert_int_equal(inferred_join_java_search(5, 3, 3), -4); /* a miss: insertion point 3 */
    assert_int_equal(inferred_join_java_search(5, 5, 5), -6);
}

typedef struct order {
    char ids[16][IDN];
    int n;
} order;

static void collect(void *arg, const char *pk, size_t n, int64_t lt)
{
    order *o = arg;
    snprintf(o->ids[o->n++], IDN, "%.*s", (int)n, pk);
}

/* Insertions a, b, c, d of one request with equal lt end up as [c, d, b, a] in the request scope;
 * an impression of that request at exactly that time (no content: unfiltered) takes the
 * element the search hits first, index 1: d. */
static void test_equal_times_insert_before_the_hit_and_exact_hit_takes_it(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J2, &p);
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "ins=%s req=r1 content=c%s", names[i], names[i]);
        lhs(h, 10, spec);
    }
    uint8_t key[16];
    int kl = job_key_platform_id(1, "u1", key, sizeof key);
    order o = {.n = 0};
    assert_int_equal(inferred_join_scope_walk(h->join, key, (size_t)kl, "r1", collect, &o), 4);
    assert_string_equal(o.ids[0], "c");
    assert_string_equal(o.ids[1], "d");
    assert_string_equal(o.ids[2], "b");
    assert_string_equal(o.ids[3], "a");
    rhs(h, 10, "imp=m1 req=r1");
    wm(h, 100);
    assert_int_equal(on_port(h, OUT), 1);
    assert_string_equal(nth(h, OUT, 0)->insertion, "d");
    stop(h);
}

/* ---------------------------------------------------------------- lateness, release -- */

/* A late parent goes to the late port as it is; a late child as merge(none, child). With
 * --no-checkLateness both are processed normally. */
static void test_late_parent_and_child_go_to_the_late_port(void **s)
{
    for (int check = 1; check >= 0; check--) {
        join_instances_params p = params_711();
        p.check_lateness = check;
        harness *h = start(J2, &p);
        wm(h, 100);
        lhs(h, 50, "ins=i1 req=r1 content=c1");
        rhs(h, 60, "imp=m1 ins=i1 view=v9");
        if (check) {
            assert_int_equal(on_port(h, LATE), 2);
            const got *a = nth(h, LATE, 0), *b = nth(h, LATE, 1);
            assert_string_equal(a->insertion, "i1");
            assert_int_equal(a->ts, 50);
            assert_string_equal(b->impression, "m1");
            assert_int_equal(b->ts, 60);
            assert_int_equal(b->lt, 60);
            assert_string_equal(b->content, ""); /* mergeImpression never takes its content */
            assert_int_equal(on_port(h, OUT), 0);
            assert_int_equal(metric(h, "numRecordsOutSide", "output=late_insertion_impressions"),
                             2);
            assert_empty(h);
        } else {
            assert_int_equal(on_port(h, LATE), 0);
            assert_int_equal(on_port(h, OUT), 1); /* the explicit join */
            assert_string_equal(nth(h, OUT, 0)->impression, "m1");
        }
        stop(h);
    }
}

/* A child naming a parent that has not arrived waits (ooIdJoin); the parent's arrival releases
 * it with the parent's ts (not the child's, not a timer's). */
static void test_child_waiting_for_its_named_parent_is_released_with_the_parent_ts(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J2, &p);
    rhs(h, 100, "imp=m1 ins=i1");
    rhs(h, 101, "imp=m2 ins=i1");
    assert_int_equal(stats(h).rhs_buffered, 2);
    lhs(h, 130, "ins=i1 req=r1 content=c1 lt=120");
    assert_int_equal(on_port(h, OUT), 2);
    const got *a = nth(h, OUT, 0), *b = nth(h, OUT, 1);
    assert_string_equal(a->impression, "m1"); /* arrival order */
    assert_string_equal(b->impression, "m2");
    assert_int_equal(a->ts, 130);
    assert_int_equal(a->lt, 100);
    assert_string_equal(a->content, "c1");
    assert_string_equal(a->request, "r1");
    assert_int_equal(stats(h).rhs_buffered, 0);
    wm(h, 1000);
    assert_int_equal(on_port(h, OUT), 2);
    assert_int_equal(on_port(h, DROPPED), 0);
    assert_empty(h);
    stop(h);
}

/* §7.8: the output watermark trails the input by maxOOO, so an inferred output carrying its
 * timer's time (up to maxOOO behind) is never late downstream. */
static void test_output_watermark_is_held_back_by_max_ooo(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J2, &p);
    wm(h, 1000);
    assert_int_equal(rt_op_watermark(h->join), 1000);
    assert_int_equal(rt_op_output_watermark(h->join), 950);
    rhs(h, 1000, "imp=m1 req=r1");
    wm(h, 1050);
    assert_int_equal(on_port(h, DROPPED), 1);
    assert_true(nth(h, DROPPED, 0)->ts >= rt_op_output_watermark(h->join));
    stop(h);
}

/* ---------------------------------------------------------------- mismatch ---------- */

/* §7.9: a different non-empty id on the child keeps the parent's and writes a MismatchError
 * with the parent's ids before the merge, the child's record id and lt. */
static void test_conflicting_ids_keep_the_parent_value_and_write_mismatch_errors(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J2, &p);
    lhs(h, 10, "ins=i1 req=r1 view=v1 content=c1");
    rhs(h, 20, "imp=m1 ins=i1 req=r1 view=v2");
    assert_int_equal(on_port(h, OUT), 1);
    assert_string_equal(nth(h, OUT, 0)->view, "v1");
    assert_int_equal(on_port(h, MISMATCH), 1);
    const got *m = nth(h, MISMATCH, 0);
    assert_int_equal(m->type, REC_MISMATCH_ERROR);
    assert_int_equal(m->mm_rt, JOIN_RT_IMPRESSION);
    assert_int_equal(m->mm_field, JOIN_F_VIEW_ID);
    assert_int_equal(m->mm_fn, JOIN_FN_TINY_FLAT_UTIL_MERGE_IMPRESSION);
    assert_string_equal(m->mm_l, "v1");
    assert_string_equal(m->mm_r, "v2");
    assert_string_equal(m->mm_rid, "m1");
    assert_string_equal(m->mm_lhs_ins, "i1");
    assert_string_equal(m->mm_lhs_req, "r1");
    assert_int_equal(m->lt, 20);
    assert_int_equal(m->ts, 20);
    assert_int_equal(metric(h, "numRecordsOutSide", "output=mismatch_error"), 1);
    stop(h);

    h = start(J3, &p);
    lhs(h, 10, "imp=m1 ins=i1 content=c1");
    rhs(h, 20, "act=a1 imp=m1 ins=i9 content=c1");
    assert_int_equal(on_port(h, MISMATCH), 1);
    m = nth(h, MISMATCH, 0);
    assert_int_equal(m->mm_rt, JOIN_RT_ACTION);
    assert_int_equal(m->mm_field, JOIN_F_INSERTION_ID);
    assert_int_equal(m->mm_fn, JOIN_FN_TINY_FLAT_UTIL_MERGE_ACTION);
    assert_string_equal(m->mm_l, "i1");
    assert_string_equal(m->mm_r, "i9");
    assert_string_equal(m->mm_rid, "a1");
    assert_string_equal(nth(h, OUT, 0)->insertion, "i1");
    stop(h);

    /* a different platform on the child is a long mismatch (J2, child of another platform is
     * another key, so it cannot join: none written) */
    h = start(J2, &p);
    lhs(h, 10, "ins=i1 req=r1");
    rhs(h, 20, "imp=m1 ins=i1 plat=2");
    assert_int_equal(on_port(h, MISMATCH), 0);
    assert_int_equal(on_port(h, OUT), 0);
    stop(h);
}

/* ---------------------------------------------------------------- side outputs ------ */

/* What the reference drops silently or throws on has a named port: a child with neither key, a
 * second pending child with one key, a duplicate parent, a zero log_timestamp on either side. */
static void test_silent_drops_and_zero_times_go_to_named_side_outputs(void **s)
{
    join_instances_params p = params_711();
    harness *h = start(J2, &p);
    rhs(h, 10, "req=r1 content=c1");        /* no insertion_id, no impression_id */
    rhs(h, 11, "imp=m5 req=r1");            /* pending for inference */
    rhs(h, 12, "imp=m5 req=r1 content=c2"); /* same key while the first waits */
    lhs(h, 13, "ins=i1 req=r1 content=c1");
    lhs(h, 14, "ins=i1 req=r1 content=c1"); /* duplicate parent */
    lhs(h, 15, "ins=i2 req=r1 lt=0");       /* zero log time */
    rhs(h, 16, "imp=m6 ins=i1 lt=0");
    struct {
        int port;
        const char *name;
    } want[] = {
        {INFERRED_JOIN_PORT_RHS_WITHOUT_KEY, "dropped_impression_without_key"},
        {INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING, "dropped_impression_duplicate_pending"},
        {INFERRED_JOIN_PORT_DUPLICATE_LHS, "duplicate_insertion"},
        {INFERRED_JOIN_PORT_LHS_ZERO_LT, "dropped_insertion_zero_log_timestamp"},
        {INFERRED_JOIN_PORT_RHS_ZERO_LT, "dropped_impression_zero_log_timestamp"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(on_port(h, want[i].port), 1);
        char label[128];
        snprintf(label, sizeof label, "output=%s", want[i].name);
        assert_int_equal(metric(h, "numRecordsOutSide", label), 1);
    }
    assert_string_equal(nth(h, INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING, 0)->content, "c2");
    assert_int_equal(nth(h, INFERRED_JOIN_PORT_RHS_ZERO_LT, 0)->ts, 16);
    assert_int_equal(stats(h).rhs_duplicate_pending, 1);
    wm(h, 100);
    /* m5 was inferred onto i1 (same request, nearest) */
    assert_int_equal(on_port(h, OUT), 1);
    assert_string_equal(nth(h, OUT, 0)->impression, "m5");
    assert_string_equal(nth(h, OUT, 0)->insertion, "i1");
    stop(h);
}

/* ---------------------------------------------------------------- §20 --------------- */

/* §20.9: a DeliveryLog without view_id takes the user's nearest view within 10 minutes; a view
 * 11 minutes older is out of range and the DeliveryLog comes out view-less (right outer). */
static void test_acceptance_9_inferred_view_within_ten_minutes(void **s)
{
    join_instances_params p;
    join_instances_params_default(&p);
    for (int far = 0; far < 2; far++) {
        harness *h = start(J1, &p);
        lhs(h, far ? T0 - 11 * 60000 : T0, "view=v1");
        dl(h, T0 + 100, "req=r1 ins=i1:c1");
        wm(h, T0 + 1000);
        assert_int_equal(on_port(h, OUT), 1);
        assert_string_equal(nth(h, OUT, 0)->view, far ? "" : "v1");
        assert_string_equal(nth(h, OUT, 0)->insertion, "i1");
        assert_string_equal(nth(h, OUT, 0)->content, "c1");
        stop(h);
    }
}

/* §20.10: DL r1 [i1:c1, i2:c2]; impression m1{request r1, content c2} 5 s later joins i2 (the
 * content filter inside the request scope); m2{content c9} matches nothing: dropped. */
static void test_acceptance_10_inferred_insertion_by_content(void **s)
{
    join_instances_params p;
    join_instances_params_default(&p);
    harness *h = start(J2, &p);
    lhs(h, T0, "ins=i1 req=r1 view=v1 content=c1");
    lhs(h, T0, "ins=i2 req=r1 view=v1 content=c2");
    rhs(h, T0 + 5000, "imp=m1 req=r1 content=c2");
    rhs(h, T0 + 6000, "imp=m2 content=c9");
    /* alone in its request, an insertion of another content does not match either */
    lhs(h, T0, "ins=i3 req=r3 view=v3 content=c3");
    rhs(h, T0 + 7000, "imp=m3 req=r3 content=c4");
    wm(h, T0 + 10000);
    assert_int_equal(on_port(h, OUT), 1);
    const got *g = nth(h, OUT, 0);
    assert_string_equal(g->impression, "m1");
    assert_string_equal(g->insertion, "i2");
    assert_string_equal(g->content, "c2");
    assert_int_equal(g->ts, T0 + 5000);
    assert_int_equal(on_port(h, DROPPED), 2);
    assert_string_equal(nth(h, DROPPED, 0)->impression, "m2");
    assert_string_equal(nth(h, DROPPED, 1)->impression, "m3");
    stop(h);
}

/* §20.11: an action with content c1 and no ids joins the impression of c1 an hour later; a day
 * and 2 s later it is dropped; an action naming an unknown impression "zz" is dropped even
 * though its content matches (children with a foreign key are never inferred). */
static void test_acceptance_11_inferred_action_by_content_within_a_day(void **s)
{
    join_instances_params p;
    join_instances_params_default(&p);
    const int64_t after[] = {3600000, 86400000 + 2000};
    for (int i = 0; i < 2; i++) {
        harness *h = start(J3, &p);
        lhs(h, T0 + 1000, "imp=m1 ins=i1 req=r1 content=c1");
        rhs(h, T0 + after[i], "act=a1 content=c1");
        wm(h, T0 + after[i] + 10);
        assert_int_equal(on_port(h, OUT), i == 0 ? 1 : 0);
        assert_int_equal(on_port(h, DROPPED), i == 0 ? 0 : 1);
        if (i == 0) {
            assert_string_equal(nth(h, OUT, 0)->impression, "m1");
            assert_string_equal(nth(h, OUT, 0)->insertion, "i1");
        }
        stop(h);
    }
    harness *h = start(J3, &p);
    lhs(h, T0 + 1000, "imp=m1 ins=i1 content=c1");
    rhs(h, T0 + 2000, "act=a1 imp=zz content=c1");
    wm(h, T0 + 3000);
    assert_int_equal(on_port(h, OUT), 0);
    assert_int_equal(on_port(h, DROPPED), 1);
    assert_string_equal(nth(h, DROPPED, 0)->impression, "zz");
    stop(h);
}

/* §20.12: a purchase split by cart content into two tiny actions with one action_id joins each
 * to the impression of its content (their keys differ by content id). */
static void test_acceptance_12_cart_split_actions_join_their_own_impressions(void **s)
{
    join_instances_params p;
    join_instances_params_default(&p);
    harness *h = start(J3, &p);
    lhs(h, T0 + 1000, "imp=m1 ins=i1 req=r1 content=c1");
    lhs(h, T0 + 1100, "imp=m2 ins=i2 req=r1 content=c2");
    rhs(h, T0 + 2000, "act=p1 content=c1");
    rhs(h, T0 + 2000, "act=p1 content=c2");
    wm(h, T0 + 3000);
    assert_int_equal(on_port(h, OUT), 2);
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING), 0);
    const got *a = nth(h, OUT, 0), *b = nth(h, OUT, 1);
    assert_string_equal(a->action, "p1");
    assert_string_equal(b->action, "p1");
    assert_string_equal(a->content, "c1");
    assert_string_equal(a->impression, "m1");
    assert_string_equal(b->content, "c2");
    assert_string_equal(b->impression, "m2");
    stop(h);
}

/* §20.15 at J1: with the watermark already past T0 (an impression 10 s later was read first),
 * DL r1 [i1] @T0 is late: its tiny insertion goes to late_view_responseinsertions. */
static void test_acceptance_15_late_delivery_log_goes_to_late_view_responseinsertions(void **s)
{
    join_instances_params p;
    join_instances_params_default(&p);
    harness *h = start(J1, &p);
    wm(h, T0 + 10000 - 1001);
    dl(h, T0, "req=r1 view=v1 ins=i1:c1");
    assert_int_equal(on_port(h, LATE), 1);
    const got *g = nth(h, LATE, 0);
    assert_string_equal(g->request, "r1");
    assert_string_equal(g->insertion, "i1");
    assert_int_equal(g->lt, T0);
    assert_int_equal(metric(h, "numRecordsOutSide", "output=late_view_responseinsertions"), 1);
    assert_int_equal(on_port(h, OUT), 0);
    stop(h);
}

/* ---------------------------------------------------------------- join maxima ------- */

/* Params with maxTime 100 for every join and the given maxOOO (a *JoinMax of that size). */
static join_instances_params params_ooo(int64_t max_ooo)
{
    join_instances_params p = params_711();
    p.view_insertion_join_max_ms = p.insertion_impression_join_max_ms =
        p.impression_action_join_max_ms = max_ooo;
    return p;
}

/* maxOOO 200 > maxTime 100: ins1@10, imp m1@20 of its request and content. The child waits until
 * 220; the parent's own timer (110) comes first and must not take the parent away from a child
 * that may still choose it, so m1 joins i1 at 220. The parent leaves at lt + maxTime + maxOOO. */
static void test_child_waiting_longer_than_max_time_still_joins_its_earlier_parent(void **s)
{
    join_instances_params p = params_ooo(200);
    harness *h = start(J2, &p);
    lhs(h, 10, "ins=i1 req=r1 content=c1");
    rhs(h, 20, "imp=m1 req=r1 content=c1");
    wm(h, 300);
    assert_int_equal(on_port(h, DROPPED), 0);
    assert_int_equal(on_port(h, OUT), 1);
    assert_string_equal(nth(h, OUT, 0)->impression, "m1");
    assert_string_equal(nth(h, OUT, 0)->insertion, "i1");
    assert_int_equal(nth(h, OUT, 0)->ts, 220);
    assert_int_equal(stats(h).lhs_buffered, 1); /* horizon 10 + 100 + 200 = 310 */
    wm(h, 310);
    assert_empty(h);
    assert_int_equal(rt_timer_count(h->join), 0);
    stop(h);
}

/* The hot user of flat-output with P1D maxima, in small: an upstream join held back by maxOOO
 * releases its inferred parents with ts = lt + maxOOO (here 1000), while the children keep
 * ts = lt. At the end of input every timer fires in time order: the first child's timer (1020)
 * must not clean up the parents the later children need (their lt is far below 1020 - 100). */
static void test_end_of_input_joins_every_child_of_parents_released_late_upstream(void **s)
{
    join_instances_params p = params_ooo(1000);
    harness *h = start(J2, &p);
    lhs(h, 1010, "ins=i1 req=r1 content=c1 lt=10");
    rhs(h, 20, "imp=m1 req=r1 content=c1");
    lhs(h, 1300, "ins=i2 req=r2 content=c2 lt=300");
    rhs(h, 310, "imp=m2 req=r2 content=c2");
    lhs(h, 1600, "ins=i3 req=r3 content=c3 lt=600");
    rhs(h, 650, "imp=m3 content=c3");
    assert_int_equal(rt_graph_finish(h->g), 0);
    assert_int_equal(on_port(h, DROPPED), 0);
    assert_int_equal(on_port(h, OUT), 3);
    const char *imp[] = {"m1", "m2", "m3"}, *ins[] = {"i1", "i2", "i3"};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(nth(h, OUT, i)->impression, imp[i]);
        assert_string_equal(nth(h, OUT, i)->insertion, ins[i]);
    }
    assert_empty(h);
    stop(h);
}

typedef struct join_pairs {
    char imp[256][IDN], ins[256][IDN];
    size_t n;
} join_pairs;

/* One user's run of insertions (10 contents, one request per 5) and impressions without ids,
 * some before and some after their insertion, all in ts order, drained at the end; the joined
 * impression -> insertion pairs into *out. Deterministic (a fixed LCG). */
static void run_maxima(int64_t max_ooo, join_pairs *out)
{
    join_instances_params p = params_ooo(max_ooo);
    harness *h = start(J2, &p);
    uint32_t x = 12345;
    int64_t t = 1000;
    char spec[96];
    for (int i = 0; i < 120; i++) {
        x = x * 1103515245u + 12345u;
        t += (x >> 16) % 40;
        if ((x >> 8) % 3) {
            snprintf(spec, sizeof spec, "ins=i%d req=r%d content=c%u", i, i / 5, (x >> 4) % 10);
            lhs(h, t, spec);
        } else {
            snprintf(spec, sizeof spec, "imp=m%d content=c%u", i, (x >> 12) % 10);
            rhs(h, t, spec);
        }
    }
    assert_int_equal(rt_graph_finish(h->g), 0);
    out->n = 0;
    for (size_t i = 0; i < on_port(h, OUT) && out->n < 256; i++, out->n++) {
        snprintf(out->imp[out->n], IDN, "%s", nth(h, OUT, i)->impression);
        snprintf(out->ins[out->n], IDN, "%s", nth(h, OUT, i)->insertion);
    }
    assert_empty(h);
    stop(h);
}

/* A larger join maximum only widens the window a child may choose from, so every child joined
 * with a smaller one is joined with a larger one too (possibly to a nearer parent later on);
 * with maxOOO far above maxTime as with P1D. */
static void test_larger_join_max_never_loses_a_join_a_smaller_one_finds(void **s)
{
    static join_pairs small, large;
    const int64_t larger[] = {50, 100, 250, 100000};
    run_maxima(0, &small);
    assert_true(small.n >= 10); /* the input does join */
    for (size_t k = 0; k < sizeof larger / sizeof larger[0]; k++) {
        run_maxima(larger[k], &large);
        for (size_t i = 0; i < small.n; i++) {
            size_t j = 0;
            while (j < large.n && strcmp(large.imp[j], small.imp[i]))
                j++;
            if (j == large.n)
                fail_msg("maxOOO %lld loses %s (joined %s with maxOOO 0)", (long long)larger[k],
                         small.imp[i], small.ins[i]);
        }
    }
}

/* ---------------------------------------------------------------- snapshot ---------- */

typedef struct step {
    char side; /* 'l', 'r', 'w' */
    int64_t ts;
    const char *spec;
} step;

static const step script[] = {
    {'l', 10, "imp=m1 ins=i1 req=r1 content=c1"},
    {'l', 10, "imp=m2 ins=i2 req=r1 content=c2"},
    {'l', 10, "imp=m3 ins=i3 req=r1 content=c1"},
    {'l', 12, "imp=m4 ins=i4 req=r2 content=c3"},
    {'r', 15, "act=a1 req=r1"},
    {'r', 16, "act=a2 imp=m9 content=c1"},
    {'r', 17, "act=a3 content=c1"},
    {'w', 12, NULL},
    /* snapshot here (index 8) */
    {'l', 18, "imp=m9 ins=i9 req=r9 content=c9"},
    {'l', 19, "imp=m5 ins=i5 req=r1 content=c1"},
    {'r', 40, "act=a4 req=r1 content=c1"},
    {'w', 70, NULL},
    {'r', 80, "act=a5 imp=m4"},
    {'w', 1000, NULL},
};
#define SNAP_AT 8

static void play(harness *h, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (script[i].side == 'l')
            lhs(h, script[i].ts, script[i].spec);
        else if (script[i].side == 'r')
            rhs(h, script[i].ts, script[i].spec);
        else
            wm(h, script[i].ts);
    }
}

/* A snapshot taken mid-stream and restored into a fresh graph continues exactly as the
 * uninterrupted run: same outputs, same scope order, and the restored state costs the same. */
static void test_snapshot_restore_continues_exactly(void **s)
{
    join_instances_params p = params_711();
    size_t nscript = sizeof script / sizeof script[0];
    harness *a = start(J3, &p);
    play(a, 0, SNAP_AT);
    rt_buf snap;
    rt_buf_init(&snap, 0);
    assert_int_equal(rt_graph_snapshot(a->g, &snap), 0);
    inferred_join_stats before = stats(a);
    size_t a_mark = a->n;

    harness *b = start(J3, &p);
    char err[256] = "";
    assert_int_equal(rt_graph_restore(b->g, snap.data, snap.len, err, sizeof err), 0);
    inferred_join_stats after = stats(b);
    assert_int_equal(after.lhs_buffered, before.lhs_buffered);
    assert_int_equal(after.rhs_buffered, before.rhs_buffered);
    assert_int_equal(after.scopes, before.scopes);
    assert_int_equal(after.lhs_payload_bytes, before.lhs_payload_bytes);
    uint8_t key[16];
    int kl = job_key_platform_id(1, "u1", key, sizeof key);
    order oa = {.n = 0}, ob = {.n = 0};
    inferred_join_scope_walk(a->join, key, (size_t)kl, "r1", collect, &oa);
    inferred_join_scope_walk(b->join, key, (size_t)kl, "r1", collect, &ob);
    assert_int_equal(oa.n, 3);
    assert_int_equal(ob.n, oa.n);
    for (int i = 0; i < oa.n; i++)
        assert_string_equal(ob.ids[i], oa.ids[i]);

    play(a, SNAP_AT, nscript);
    play(b, SNAP_AT, nscript);
    size_t na = a->n - a_mark;
    assert_true(na >= 4); /* a1, a3, a4 inferred, a2 released by m9, a5 by id */
    assert_int_equal(b->n, na);
    for (size_t i = 0; i < na; i++) {
        const got *x = &a->v[a_mark + i], *y = &b->v[i];
        assert_int_equal(y->port, x->port);
        assert_int_equal(y->ts, x->ts);
        assert_int_equal(y->lt, x->lt);
        assert_string_equal(y->action, x->action);
        assert_string_equal(y->impression, x->impression);
    }
    assert_empty(a);
    assert_empty(b);
    rt_buf_free(&snap);
    stop(a);
    stop(b);
}

/* Finds the operator's own-state section in a graph snapshot (graph.c's layout: per operator
 * uid, watermarks, tables, timers, then its own bytes, each section length-prefixed). Returns the
 * section's length and sets *at to the offset of its u32 length. */
static uint32_t own_section(const uint8_t *b, size_t n, const char *uid, size_t *at)
{
    rt_buf_reader r;
    rt_buf_reader_init(&r, b, n);
    uint32_t ver, cnt, nkv, len;
    const uint8_t *p;
    size_t pn;
    int64_t w;
    assert_int_equal(rt_buf_read_u32(&r, &ver), 0);
    assert_int_equal(rt_buf_read_u32(&r, &cnt), 0);
    for (uint32_t i = 0; i < cnt; i++) {
        assert_int_equal(rt_buf_read_bytes(&r, &p, &pn), 0);
        bool mine = pn == strlen(uid) && !memcmp(p, uid, pn);
        assert_int_equal(rt_buf_read_i64(&r, &w), 0);
        assert_int_equal(rt_buf_read_i64(&r, &w), 0);
        assert_int_equal(rt_buf_read_u32(&r, &nkv), 0);
        for (uint32_t k = 0; k < nkv; k++) {
            assert_int_equal(rt_buf_read_bytes(&r, &p, &pn), 0);
            assert_int_equal(rt_buf_read_u32(&r, &len), 0);
            assert_int_equal(rt_buf_read_raw(&r, len, &p), 0);
        }
        assert_int_equal(rt_buf_read_u32(&r, &len), 0); /* timers */
        assert_int_equal(rt_buf_read_raw(&r, len, &p), 0);
        size_t here = n - rt_buf_reader_left(&r);
        assert_int_equal(rt_buf_read_u32(&r, &len), 0);
        assert_int_equal(rt_buf_read_raw(&r, len, &p), 0);
        if (mine) {
            *at = here;
            return len;
        }
    }
    fail_msg("no operator %s in the snapshot", uid);
    return 0;
}

/* The operator's own state cut at every length is refused with a message naming it (never read
 * past its end, never half-restored: the operator is empty afterwards). */
static void test_restore_rejects_every_truncation_of_its_state(void **s)
{
    join_instances_params p = params_711();
    harness *a = start(J3, &p);
    play(a, 0, SNAP_AT);
    rt_buf snap;
    rt_buf_init(&snap, 0);
    assert_int_equal(rt_graph_snapshot(a->g, &snap), 0);
    size_t at;
    uint32_t full = own_section(snap.data, snap.len, "join-impression-action", &at);
    assert_true(full > 100);
    uint8_t *cut = malloc(snap.len);
    for (uint32_t keep = 1; keep < full; keep++) {
        /* prefix, the shortened section, then everything after the original section */
        size_t rest = at + 4 + full;
        memcpy(cut, snap.data, at);
        memcpy(cut + at, &keep, 4); /* little-endian, as rt_buf writes */
        memcpy(cut + at + 4, snap.data + at + 4, keep);
        memcpy(cut + at + 4 + keep, snap.data + rest, snap.len - rest);
        harness *b = start(J3, &p);
        char err[256] = "";
        int rc = rt_graph_restore(b->g, cut, at + 4 + keep + (snap.len - rest), err, sizeof err);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, "join-impression-action"));
        assert_empty(b);
        stop(b);
    }
    free(cut);
    rt_buf_free(&snap);
    stop(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_j1_explicit_view_id_joins_now_or_when_the_view_arrives),
        cmocka_unit_test(test_j1_inferred_view_is_nearest_in_time_with_later_preferred),
        cmocka_unit_test(test_j1_right_outer_emits_unjoined_delivery_logs_at_their_timers),
        cmocka_unit_test(test_right_outer_off_drops_unjoined_children_and_empties_state),
        cmocka_unit_test(test_j1_skip_view_join_passes_delivery_logs_through_without_timers),
        cmocka_unit_test(test_j3_content_scope_joins_nearest_impression_of_that_content),
        cmocka_unit_test(test_nearest_tie_goes_to_the_later_parent),
        cmocka_unit_test(test_j3_actions_without_ids_or_content_are_dropped),
        cmocka_unit_test(test_j3_store_to_item_joins_only_with_the_configured_key),
        cmocka_unit_test(test_j3_item_to_store_joins_through_the_impression_other_id),
        cmocka_unit_test(test_j3_cleanup_forgets_parents_and_counts_duplicates),
        cmocka_unit_test(test_content_filter_applies_inside_a_scope_shared_by_raw_id_string),
        cmocka_unit_test(test_id_join_multiplier_keeps_parents_longer_and_still_cleans_them),
        cmocka_unit_test(test_java_binary_search_returns_the_first_equal_on_its_path),
        cmocka_unit_test(test_equal_times_insert_before_the_hit_and_exact_hit_takes_it),
        cmocka_unit_test(test_late_parent_and_child_go_to_the_late_port),
        cmocka_unit_test(test_child_waiting_for_its_named_parent_is_released_with_the_parent_ts),
        cmocka_unit_test(test_output_watermark_is_held_back_by_max_ooo),
        cmocka_unit_test(test_conflicting_ids_keep_the_parent_value_and_write_mismatch_errors),
        cmocka_unit_test(test_silent_drops_and_zero_times_go_to_named_side_outputs),
        cmocka_unit_test(test_acceptance_9_inferred_view_within_ten_minutes),
        cmocka_unit_test(test_acceptance_10_inferred_insertion_by_content),
        cmocka_unit_test(test_acceptance_11_inferred_action_by_content_within_a_day),
        cmocka_unit_test(test_acceptance_12_cart_split_actions_join_their_own_impressions),
        cmocka_unit_test(test_acceptance_15_late_delivery_log_goes_to_late_view_responseinsertions),
        cmocka_unit_test(test_child_waiting_longer_than_max_time_still_joins_its_earlier_parent),
        cmocka_unit_test(test_end_of_input_joins_every_child_of_parents_released_late_upstream),
        cmocka_unit_test(test_larger_join_max_never_loses_a_join_a_smaller_one_finds),
        cmocka_unit_test(test_snapshot_restore_continues_exactly),
        cmocka_unit_test(test_restore_rejects_every_truncation_of_its_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
