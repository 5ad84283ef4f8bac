/* The post-join stages wired together as flat-output wires them (tiny events from the joins ->
 * redundant impressions -> merges -> filters -> pivot / latest impressions -> user_id strip),
 * driven with the full records and the joins' tiny outputs of the spec/flat-output.md §20
 * acceptance behaviours that touch these stages: 1 (happy path), 12 (cart split), 13 (redundant
 * impressions), 14 (ignore_usage and non-buyer filters). Default flag values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "formats/pb_private.h"
#include "jobs/join/flat_response_insertion.h"
#include "jobs/join/joined_filters.h"
#include "jobs/join/latest_impressions.h"
#include "jobs/join/merge_details.h"
#include "jobs/join/redundant_impressions.h"
#include "jobs/join/strip_user_id.h"
#include "jobs/map_op.h"
#include "test_join_post_util.h"

#define T0 1601596151000LL

/* ---------------------------------------------------------------- the chain */

typedef struct chain {
    rt_graph *g;
    rt_op *redundant, *merge_imp, *merge_act;
    capture joined_impression, joined_action, fri, dropped_redundant, dropped_imp_details,
        dropped_act_details, ignore_imp, ignore_act, ignore_fri, non_buyer_imp, non_buyer_act,
        non_buyer_fri, mismatch, fri_late;
} chain;

/* The split the job does after redundant impressions: impressions to port 0, actions to 1. */
static int split_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    const Event__TinyEvent *t = rec->data;
    return rt_emit(op, t->action_id && *t->action_id ? 1 : 0, rec);
}

static void chain_build(chain *c, const int64_t *hashes, size_t nh)
{
    memset(c, 0, sizeof *c);
    rt_graph *g;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    c->g = g;
    merge_details_flags fl = {
        .view_insertion_join_min = -600000,
        .insertion_impression_join_min = -1800000,
        .impression_action_join_min = -86400000,
        .combine_delivery_log_window = 2000,
        .merge_details_cleanup_buffer = 30000,
        .merge_details_cleanup_period = 30000,
    };
    merge_impression_details_config mic;
    merge_action_details_config mac;
    merge_details_configs_from_flags(&fl, &mic, &mac);
    redundant_impressions_config rc = {.ttl_ms = 86400000};
    flat_response_insertion_config fc = {.gap_ms = 86400000};
    latest_impressions_config lc = latest_impressions_defaults();
    rt_op *split, *fimp, *fact, *ffri, *fri, *latest, *simp, *sact, *sfri;
    assert_int_equal(
        redundant_impressions_op_add(g, "reduce-redundant-tiny-impression", &rc, &c->redundant), 0);
    assert_int_equal(map_op_add(g, "split-tiny-impression-action", 2, split_fn, NULL, &split), 0);
    assert_int_equal(
        merge_impression_details_op_add(g, "merge-impression-details", &mic, &c->merge_imp), 0);
    assert_int_equal(merge_action_details_op_add(g, "merge-action-details", &mac, &c->merge_act),
                     0);
    joined_filter_config jc = {.non_buyer_hashes = hashes, .n_non_buyer_hashes = nh};
    jc.kind = JOINED_FILTER_IMPRESSION;
    assert_int_equal(joined_filter_op_add(g, "filter-joined-impression", &jc, &fimp), 0);
    jc.kind = JOINED_FILTER_ACTION;
    assert_int_equal(joined_filter_op_add(g, "filter-joined-action", &jc, &fact), 0);
    jc.kind = JOINED_FILTER_FLAT_RESPONSE_INSERTION;
    assert_int_equal(joined_filter_op_add(g, "filter-flat-response-insertion", &jc, &ffri), 0);
    assert_int_equal(flat_response_insertion_op_add(g, "join-flat-response-insertion", &fc, &fri),
                     0);
    assert_int_equal(latest_impressions_op_add(g, "join-latest-impressions", &lc, &latest), 0);
    assert_int_equal(strip_user_id_op_add(g, "clear-user-id-joined-impressions", &simp), 0);
    assert_int_equal(strip_user_id_op_add(g, "clear-user-id-joined-actions", &sact), 0);
    assert_int_equal(strip_user_id_op_add(g, "clear-user-id-flat-response-insertions", &sfri), 0);

    assert_int_equal(rt_graph_connect(g, c->redundant, 0, split, 0), 0);
    assert_int_equal(rt_graph_connect(g, split, 0, c->merge_imp, 1), 0);
    assert_int_equal(rt_graph_connect(g, split, 1, c->merge_act, 1), 0);
    /* merge-action-details stores the joined impressions before the filters, as the job does */
    assert_int_equal(rt_graph_connect(g, c->merge_imp, 0, c->merge_act, 0), 0);
    assert_int_equal(rt_graph_connect(g, c->merge_imp, 0, fimp, 0), 0);
    assert_int_equal(rt_graph_connect(g, c->merge_act, 0, fact, 0), 0);
    assert_int_equal(rt_graph_connect(g, fimp, 0, fri, 0), 0);
    assert_int_equal(rt_graph_connect(g, fact, 0, fri, 1), 0);
    assert_int_equal(rt_graph_connect(g, fimp, 0, latest, 1), 0);
    assert_int_equal(rt_graph_connect(g, fact, 0, latest, 0), 0);
    assert_int_equal(rt_graph_connect(g, fimp, 0, simp, 0), 0);
    assert_int_equal(rt_graph_connect(g, latest, 0, sact, 0), 0);
    assert_int_equal(rt_graph_connect(g, fri, 0, ffri, 0), 0);
    assert_int_equal(rt_graph_connect(g, ffri, 0, sfri, 0), 0);

    capture_port(g, "capture-joined-impression", &c->joined_impression, simp, 0);
    capture_port(g, "capture-joined-action", &c->joined_action, sact, 0);
    capture_port(g, "capture-fri", &c->fri, sfri, 0);
    capture_port(g, "capture-dropped-redundant", &c->dropped_redundant, c->redundant, 1);
    capture_port(g, "capture-dropped-imp-details", &c->dropped_imp_details, c->merge_imp, 2);
    capture_port(g, "capture-dropped-act-details", &c->dropped_act_details, c->merge_act, 2);
    capture_port(g, "capture-mismatch-imp", &c->mismatch, c->merge_imp, 1);
    capture_port(g, "capture-mismatch-act", &c->mismatch, c->merge_act, 1);
    capture_port(g, "capture-ignore-imp", &c->ignore_imp, fimp, 1);
    capture_port(g, "capture-ignore-act", &c->ignore_act, fact, 1);
    capture_port(g, "capture-ignore-fri", &c->ignore_fri, ffri, 1);
    capture_port(g, "capture-non-buyer-imp", &c->non_buyer_imp, fimp, 2);
    capture_port(g, "capture-non-buyer-act", &c->non_buyer_act, fact, 2);
    capture_port(g, "capture-non-buyer-fri", &c->non_buyer_fri, ffri, 2);
    capture_port(g, "capture-fri-late", &c->fri_late, fri, 1);
    graph_open_ok(g);
}

static void chain_free(chain *c)
{
    rt_graph_free(c->g);
    capture *all[] = {&c->joined_impression,
                      &c->joined_action,
                      &c->fri,
                      &c->dropped_redundant,
                      &c->dropped_imp_details,
                      &c->dropped_act_details,
                      &c->ignore_imp,
                      &c->ignore_act,
                      &c->ignore_fri,
                      &c->non_buyer_imp,
                      &c->non_buyer_act,
                      &c->non_buyer_fri,
                      &c->mismatch,
                      &c->fri_late};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        capture_free(all[i]);
}

static void drain(chain *c)
{
    if (rt_graph_finish(c->g)) fail_msg("finish: %s", rt_graph_error(c->g));
}

/* No side output but the ones a test expects. */
static void assert_quiet(const chain *c)
{
    assert_int_equal(c->dropped_imp_details.n, 0);
    assert_int_equal(c->dropped_act_details.n, 0);
    assert_int_equal(c->mismatch.n, 0);
    assert_int_equal(c->fri_late.n, 0);
    assert_int_equal(c->ignore_fri.n, 0);
    assert_int_equal(c->non_buyer_fri.n, 0);
}

/* ---------------------------------------------------------------- full records */

typedef struct timing_ui {
    Common__Timing t;
    Common__UserInfo ui;
} timing_ui;

static void tu_init(timing_ui *x, int64_t ts)
{
    Common__Timing t = COMMON__TIMING__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    x->t = t;
    x->ui = ui;
    x->t.has_log_timestamp = x->t.has_event_api_timestamp = 1;
    x->t.log_timestamp = x->t.event_api_timestamp = (uint64_t)ts;
    x->ui.log_user_id = S("u1");
}

static void push_view(chain *c, const char *id, int64_t ts)
{
    timing_ui x;
    tu_init(&x, ts);
    Event__View v = EVENT__VIEW__INIT;
    v.has_platform_id = 1;
    v.platform_id = 1;
    v.user_info = &x.ui;
    v.timing = &x.t;
    v.view_id = (char *)id;
    push_ok(c->g, c->merge_imp, 0, REC_VIEW, &v, ts);
}

typedef struct dl_opts {
    bool ignore_usage;
    const uint64_t *sparse_keys; /* API execution insertion features (adds an API log) */
    size_t n_sparse;
} dl_opts;

/* DL r1 for view v1 with response insertions ins[i]:content[i]. */
static void push_dl(chain *c, int n, const char *const ins[], const char *const content[],
                    int64_t ts, const dl_opts *o)
{
    timing_ui x;
    tu_init(&x, ts);
    x.ui.has_ignore_usage = x.ui.ignore_usage = o && o->ignore_usage;
    Delivery__Insertion ri[4], *rp[4];
    for (int i = 0; i < n; i++) {
        Delivery__Insertion in = DELIVERY__INSERTION__INIT;
        ri[i] = in;
        ri[i].insertion_id = (char *)ins[i];
        ri[i].content_id = (char *)content[i];
        ri[i].has_position = 1;
        ri[i].position = (uint64_t)i;
        rp[i] = &ri[i];
    }
    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    rq.has_platform_id = 1;
    rq.platform_id = 1;
    rq.user_info = &x.ui;
    rq.timing = &x.t;
    rq.request_id = S("r1");
    rq.view_id = S("v1");
    Delivery__Response rs = DELIVERY__RESPONSE__INIT;
    rs.n_insertion = (size_t)n;
    rs.insertion = rp;
    Delivery__DeliveryExecution ex = DELIVERY__DELIVERY_EXECUTION__INIT;
    ex.has_execution_server = 1;
    ex.execution_server = DELIVERY__EXECUTION_SERVER__API;
    Delivery__DeliveryLog dl = DELIVERY__DELIVERY_LOG__INIT;
    dl.has_platform_id = 1;
    dl.platform_id = 1;
    dl.request = &rq;
    dl.response = &rs;
    dl.execution = &ex;
    Delivery__Insertion exec_ins = DELIVERY__INSERTION__INIT;
    if (o && o->n_sparse) {
        Logproc__Priv__Features__SparseIdEntry e[2], *ep[2];
        for (size_t i = 0; i < o->n_sparse; i++) {
            Logproc__Priv__Features__SparseIdEntry z =
                LOGPROC__PRIV__FEATURES__SPARSE_ID_ENTRY__INIT;
            e[i] = z;
            e[i].has_key = e[i].has_value = 1;
            e[i].key = o->sparse_keys[i];
            e[i].value = 1;
            ep[i] = &e[i];
        }
        Logproc__Priv__Features feats = LOGPROC__PRIV__FEATURES__INIT;
        feats.n_sparse_id = o->n_sparse;
        feats.sparse_id = ep;
        Logproc__Priv__FeatureStage fs = LOGPROC__PRIV__FEATURE_STAGE__INIT;
        fs.features = &feats;
        exec_ins.insertion_id = (char *)ins[0];
        exec_ins.content_id = (char *)content[0];
        assert_int_equal(pb_private_set_feature_stage(&exec_ins, &fs, NULL), 0);
        assert_int_equal(pb_private_add_execution_insertion(&ex, &exec_ins, NULL), 0);
    }
    Event__CombinedDeliveryLog cdl = EVENT__COMBINED_DELIVERY_LOG__INIT;
    cdl.api = &dl;
    push_ok(c->g, c->merge_imp, 0, REC_COMBINED_DELIVERY_LOG, &cdl, ts);
    pb_private_clear(&ex.base, NULL);
    pb_private_clear(&exec_ins.base, NULL);
}

static void push_impression(chain *c, const char *id, const char *ins, int64_t ts)
{
    timing_ui x;
    tu_init(&x, ts);
    Event__Impression i = EVENT__IMPRESSION__INIT;
    i.has_platform_id = 1;
    i.platform_id = 1;
    i.user_info = &x.ui;
    i.timing = &x.t;
    i.impression_id = (char *)id;
    i.insertion_id = (char *)ins;
    push_ok(c->g, c->merge_imp, 0, REC_IMPRESSION, &i, ts);
}

static void push_action(chain *c, const char *id, const char *imp, const char *content,
                        const Event__Cart *cart, int64_t ts)
{
    timing_ui x;
    tu_init(&x, ts);
    Event__Action a = EVENT__ACTION__INIT;
    a.has_platform_id = 1;
    a.platform_id = 1;
    a.user_info = &x.ui;
    a.timing = &x.t;
    a.action_id = (char *)id;
    a.impression_id = (char *)imp;
    a.content_id = (char *)content;
    a.has_action_type = 1;
    a.action_type = cart ? EVENT__ACTION_TYPE__PURCHASE : EVENT__ACTION_TYPE__NAVIGATE;
    a.cart = (Event__Cart *)cart;
    push_ok(c->g, c->merge_act, 0, REC_ACTION, &a, ts);
}

/* The joins' tiny outputs, into redundant impressions. */
static void push_tiny(chain *c, const char *ins, const char *content, const char *imp,
                      const char *act, int64_t ts)
{
    Event__TinyEvent t = tiny_ev(1, "u1", (uint64_t)ts, "v1", "r1", ins, content, imp, act);
    push_ok(c->g, c->redundant, 0, REC_TINY_EVENT, &t, ts);
}

static void happy_path(chain *c, const dl_opts *o)
{
    static const char *const ins[1] = {"i1"}, *const content[1] = {"c1"};
    push_view(c, "v1", T0);
    push_dl(c, 1, ins, content, T0 + 100, o);
    push_impression(c, "m1", "i1", T0 + 200);
    push_tiny(c, "i1", "c1", "m1", NULL, T0 + 200);
    push_action(c, "a1", "m1", NULL, NULL, T0 + 300);
    push_tiny(c, "i1", "c1", "m1", "a1", T0 + 300);
    drain(c);
}

/* ---------------------------------------------------------------- the behaviours */

static void test_happy_path_chain_gives_one_of_each_output(void **st)
{
    (void)st;
    chain c;
    chain_build(&c, NULL, 0);
    happy_path(&c, NULL);
    assert_quiet(&c);
    assert_int_equal(c.dropped_redundant.n, 0);
    assert_int_equal(c.ignore_imp.n + c.ignore_act.n + c.non_buyer_imp.n + c.non_buyer_act.n, 0);

    assert_int_equal(c.joined_impression.n, 1);
    Event__JoinedEvent *j = cap_joined(&c.joined_impression, 0);
    assert_int_equal(j->ids->platform_id, 1);
    assert_string_equal(nz(j->ids->log_user_id), "u1");
    assert_string_equal(nz(j->ids->view_id), "v1");
    assert_string_equal(nz(j->ids->request_id), "r1");
    assert_string_equal(nz(j->ids->insertion_id), "i1");
    assert_string_equal(nz(j->ids->impression_id), "m1");
    assert_int_equal(j->timing->log_timestamp, T0 + 200);
    assert_string_equal(nz(j->response_insertion->content_id), "c1");
    assert_non_null(j->view);
    assert_null(j->latest_impressions);
    event__joined_event__free_unpacked(j, NULL);

    assert_int_equal(c.joined_action.n, 1);
    j = cap_joined(&c.joined_action, 0);
    assert_string_equal(nz(j->ids->impression_id), "m1");
    assert_string_equal(nz(j->action->action_id), "a1");
    assert_int_equal(j->timing->log_timestamp, T0 + 300);
    assert_non_null(j->latest_impressions);
    assert_int_equal(j->latest_impressions->n_impression, 0);
    event__joined_event__free_unpacked(j, NULL);

    assert_int_equal(c.fri.n, 1);
    Event__FlatResponseInsertion *f = cap_fri(&c.fri, 0);
    assert_string_equal(nz(f->ids->insertion_id), "i1");
    assert_null(f->ids->impression_id);
    assert_int_equal(f->n_impression, 1);
    assert_string_equal(nz(f->impression[0]->impression_id), "m1");
    assert_int_equal(f->n_action, 1);
    assert_string_equal(nz(f->action[0]->action_id), "a1");
    event__flat_response_insertion__free_unpacked(f, NULL);
    chain_free(&c);
}

static void test_cart_split_gives_one_joined_action_per_cart_row(void **st)
{
    (void)st;
    chain c;
    chain_build(&c, NULL, 0);
    static const char *const ins[2] = {"i1", "i2"}, *const content[2] = {"c1", "c2"};
    push_dl(&c, 2, ins, content, T0, NULL);
    push_impression(&c, "m1", "i1", T0 + 100);
    push_impression(&c, "m2", "i2", T0 + 150);
    push_tiny(&c, "i1", "c1", "m1", NULL, T0 + 100);
    push_tiny(&c, "i2", "c2", "m2", NULL, T0 + 150);
    Event__CartContent cc[2] = {EVENT__CART_CONTENT__INIT, EVENT__CART_CONTENT__INIT};
    Event__CartContent *ccp[2] = {&cc[0], &cc[1]};
    cc[0].content_id = S("c1");
    cc[0].has_quantity = 1;
    cc[0].quantity = 2;
    cc[1].content_id = S("c2");
    cc[1].has_quantity = 1;
    cc[1].quantity = 1;
    Event__Cart cart = EVENT__CART__INIT;
    cart.n_contents = 2;
    cart.contents = ccp;
    push_action(&c, "p1", NULL, "c1", &cart, T0 + 1000);
    /* J3 joined each split of the purchase to the impression of its cart row */
    push_tiny(&c, "i1", "c1", "m1", "p1", T0 + 1000);
    push_tiny(&c, "i2", "c2", "m2", "p1", T0 + 1000);
    drain(&c);
    assert_quiet(&c);
    assert_int_equal(c.joined_impression.n, 2);
    assert_int_equal(c.joined_action.n, 2);
    int seen = 0;
    for (size_t i = 0; i < 2; i++) {
        Event__JoinedEvent *j = cap_joined(&c.joined_action, i);
        assert_string_equal(nz(j->action->action_id), "p1");
        assert_string_equal(nz(j->action->content_id), "c1");
        assert_int_equal(j->action->cart->n_contents, 2);
        const char *imp = nz(j->ids->impression_id);
        const Event__CartContent *one = j->action->single_cart_content;
        assert_non_null(one);
        if (!strcmp(imp, "m1")) {
            assert_string_equal(nz(one->content_id), "c1");
            assert_int_equal(one->quantity, 2);
            seen |= 1;
        } else {
            assert_string_equal(imp, "m2");
            assert_string_equal(nz(one->content_id), "c2");
            assert_int_equal(one->quantity, 1);
            seen |= 2;
        }
        event__joined_event__free_unpacked(j, NULL);
    }
    assert_int_equal(seen, 3);
    chain_free(&c);
}

static void test_redundant_impression_is_dropped_and_its_action_moves_to_the_root(void **st)
{
    (void)st;
    chain c;
    chain_build(&c, NULL, 0);
    static const char *const ins[1] = {"i1"}, *const content[1] = {"c1"};
    push_view(&c, "v1", T0);
    push_dl(&c, 1, ins, content, T0 + 100, NULL);
    push_impression(&c, "m1", "i1", T0 + 200);
    push_impression(&c, "m2", "i1", T0 + 300);
    push_tiny(&c, "i1", "c1", "m1", NULL, T0 + 200);
    push_tiny(&c, "i1", "c1", "m2", NULL, T0 + 300);
    push_action(&c, "a1", "m2", NULL, NULL, T0 + 400);
    push_tiny(&c, "i1", "c1", "m2", "a1", T0 + 400);
    drain(&c);
    assert_quiet(&c);
    assert_int_equal(c.joined_impression.n, 1);
    Event__JoinedEvent *j = cap_joined(&c.joined_impression, 0);
    assert_string_equal(nz(j->ids->impression_id), "m1");
    event__joined_event__free_unpacked(j, NULL);
    assert_int_equal(c.dropped_redundant.n, 1);
    Event__TinyEvent *t = cap_tiny(&c.dropped_redundant, 0);
    assert_string_equal(nz(t->impression_id), "m2");
    event__tiny_event__free_unpacked(t, NULL);
    assert_int_equal(c.joined_action.n, 1);
    j = cap_joined(&c.joined_action, 0);
    assert_string_equal(nz(j->ids->impression_id), "m1");
    assert_string_equal(nz(j->action->action_id), "a1");
    event__joined_event__free_unpacked(j, NULL);
    assert_int_equal(c.fri.n, 1);
    Event__FlatResponseInsertion *f = cap_fri(&c.fri, 0);
    assert_int_equal(f->n_impression, 1);
    assert_string_equal(nz(f->impression[0]->impression_id), "m1");
    event__flat_response_insertion__free_unpacked(f, NULL);
    chain_free(&c);
}

static void test_ignore_usage_request_drops_joined_outputs_and_their_pivot(void **st)
{
    (void)st;
    chain c;
    chain_build(&c, NULL, 0);
    dl_opts o = {.ignore_usage = true};
    happy_path(&c, &o);
    assert_quiet(&c);
    assert_int_equal(c.joined_impression.n, 0);
    assert_int_equal(c.joined_action.n, 0);
    assert_int_equal(c.fri.n, 0);
    assert_int_equal(c.ignore_imp.n, 1);
    assert_int_equal(c.ignore_act.n, 1);
    assert_int_equal(c.non_buyer_imp.n + c.non_buyer_act.n, 0);
    chain_free(&c);
}

static void test_non_buyer_sparse_hash_drops_joined_outputs(void **st)
{
    (void)st;
    static const int64_t hashes[1] = {42};
    static const uint64_t keys[1] = {42};
    chain c;
    chain_build(&c, hashes, 1);
    dl_opts o = {.sparse_keys = keys, .n_sparse = 1};
    happy_path(&c, &o);
    assert_quiet(&c);
    assert_int_equal(c.joined_impression.n, 0);
    assert_int_equal(c.joined_action.n, 0);
    assert_int_equal(c.fri.n, 0);
    assert_int_equal(c.non_buyer_imp.n, 1);
    assert_int_equal(c.non_buyer_act.n, 1);
    assert_int_equal(c.ignore_imp.n + c.ignore_act.n, 0);
    chain_free(&c);

    /* another hash configured: the same input goes through */
    static const int64_t other[1] = {7};
    chain_build(&c, other, 1);
    happy_path(&c, &o);
    assert_int_equal(c.joined_impression.n, 1);
    assert_int_equal(c.joined_action.n, 1);
    assert_int_equal(c.fri.n, 1);
    chain_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path_chain_gives_one_of_each_output),
        cmocka_unit_test(test_cart_split_gives_one_joined_action_per_cart_row),
        cmocka_unit_test(test_redundant_impression_is_dropped_and_its_action_moves_to_the_root),
        cmocka_unit_test(test_ignore_usage_request_drops_joined_outputs_and_their_pivot),
        cmocka_unit_test(test_non_buyer_sparse_hash_drops_joined_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
