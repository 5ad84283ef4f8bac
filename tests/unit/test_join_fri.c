/* The FlatResponseInsertion pivot (spec/flat-output.md §12.2) through a graph, gap 1000 ms:
 * fields and presence, the source choice, session-window merging (touching, bridging), firing
 * time and ts, late elements to their side output, keys, cleanup and snapshot/restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobs/join/flat_response_insertion.h"
#include "runtime/buf.h"
#include "test_join_post_util.h"

#define GAP 1000

typedef struct je_rec {
    Event__JoinedEvent j;
    Event__JoinedIdentifiers ids;
    Common__Timing rt, et;
    Delivery__Request req;
    Delivery__Insertion resp;
    Event__Impression imp;
    Event__Action act;
    Event__View view;
    Event__HiddenApiRequest hidden;
} je_rec;

/* A joined impression (act == NULL) or joined action for insertion ins of user (1, luid). */
static void je_init(je_rec *r, const char *luid, const char *ins, const char *imp, const char *act,
                    uint64_t req_lt, const char *content)
{
    memset(r, 0, sizeof *r);
    Event__JoinedEvent j = EVENT__JOINED_EVENT__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    Delivery__Request req = DELIVERY__REQUEST__INIT;
    Delivery__Insertion resp = DELIVERY__INSERTION__INIT;
    Event__Impression im = EVENT__IMPRESSION__INIT;
    Event__Action ac = EVENT__ACTION__INIT;
    Event__View v = EVENT__VIEW__INIT;
    Event__HiddenApiRequest h = EVENT__HIDDEN_API_REQUEST__INIT;
    r->j = j;
    r->ids = ids;
    r->rt = r->et = t;
    r->req = req;
    r->resp = resp;
    r->imp = im;
    r->act = ac;
    r->view = v;
    r->hidden = h;
    r->ids.has_platform_id = 1;
    r->ids.platform_id = 1;
    r->ids.log_user_id = (char *)luid;
    r->ids.request_id = S("req1");
    r->ids.insertion_id = (char *)ins;
    r->ids.impression_id = (char *)imp;
    r->rt.has_log_timestamp = 1;
    r->rt.log_timestamp = req_lt;
    r->req.timing = &r->rt;
    r->req.search_query = S("shoes");
    r->resp.content_id = (char *)content;
    r->j.ids = &r->ids;
    r->j.request = &r->req;
    r->j.response_insertion = &r->resp;
    r->et.has_log_timestamp = 1;
    r->et.log_timestamp = req_lt + 10;
    if (act) {
        r->act.action_id = (char *)act;
        r->act.timing = &r->et;
        r->j.action = &r->act;
        r->j.impression = &r->imp;
    } else {
        r->imp.timing = &r->et;
        r->j.impression = &r->imp;
    }
    r->j.timing = &r->et;
}

typedef struct fixture {
    rt_graph *g;
    rt_op *op;
    capture out, late;
} fixture;

static void fx_build(fixture *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(rt_graph_new(NULL, &f->g), 0);
    flat_response_insertion_config c = {.gap_ms = GAP};
    assert_int_equal(
        flat_response_insertion_op_add(f->g, "join-flat-response-insertion", &c, &f->op), 0);
    capture_port(f->g, "capture-out", &f->out, f->op, 0);
    capture_port(f->g, "capture-late", &f->late, f->op, 1);
    graph_open_ok(f->g);
}

static void fx_free(fixture *f)
{
    rt_graph_free(f->g);
    capture_free(&f->out);
    capture_free(&f->late);
}

static void imp_at(fixture *f, const char *luid, const char *ins, const char *imp, int64_t ts)
{
    je_rec r;
    je_init(&r, luid, ins, imp, NULL, 5, "c1");
    push_ok(f->g, f->op, 0, REC_JOINED_EVENT, &r.j, ts);
}

static void act_at(fixture *f, const char *luid, const char *ins, const char *imp, const char *act,
                   int64_t ts)
{
    je_rec r;
    je_init(&r, luid, ins, imp, act, 7, "c1");
    push_ok(f->g, f->op, 1, REC_JOINED_EVENT, &r.j, ts);
}

static void test_impression_and_action_pivot_into_one_flat_response_insertion(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    int64_t empty = rt_op_mem_used(f.op);
    imp_at(&f, "u1", "ins1", "imp1", 100);
    act_at(&f, "u1", "ins1", "imp1", "act1", 300);
    wm_ok(f.g, 300 + GAP - 2);
    assert_int_equal(f.out.n, 0);
    wm_ok(f.g, 300 + GAP - 1);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 300 + GAP - 1);
    Event__FlatResponseInsertion *r = cap_fri(&f.out, 0);
    assert_non_null(r->ids);
    assert_int_equal(r->ids->platform_id, 1);
    assert_string_equal(nz(r->ids->insertion_id), "ins1");
    assert_null(r->ids->impression_id);
    /* timing is the request's */
    assert_non_null(r->timing);
    assert_int_equal(r->timing->log_timestamp, 5);
    assert_string_equal(nz(r->request->search_query), "shoes");
    assert_string_equal(nz(r->response_insertion->content_id), "c1");
    /* set unconditionally: present even where the source has nothing */
    assert_non_null(r->session_profile);
    assert_non_null(r->session);
    assert_non_null(r->view);
    assert_non_null(r->request_insertion);
    assert_non_null(r->response);
    assert_non_null(r->api_execution);
    assert_non_null(r->api_execution_insertion);
    assert_non_null(r->sdk_execution);
    assert_null(r->hidden_api_request);
    assert_null(r->user);
    assert_null(r->auto_view);
    assert_int_equal(r->n_impression, 1);
    assert_string_equal(nz(r->impression[0]->impression_id), "imp1");
    assert_int_equal(r->impression[0]->timing->log_timestamp, 15);
    assert_int_equal(r->n_action, 1);
    assert_string_equal(nz(r->action[0]->action_id), "act1");
    event__flat_response_insertion__free_unpacked(r, NULL);
    assert_int_equal(rt_timer_count(f.op), 0);
    assert_true(rt_op_mem_used(f.op) <= empty + 512);
    fx_free(&f);
}

static void test_first_impression_is_the_source_even_after_actions(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    je_rec a, i1, i2;
    je_init(&a, "u1", "ins1", "imp1", "act1", 7, "c1");
    a.req.search_query = S("from-action");
    je_init(&i1, "u1", "ins1", "imp1", NULL, 5, "c1");
    i1.req.search_query = S("from-first-impression");
    i1.j.hidden_api_request = &i1.hidden;
    i1.hidden.request_id = S("api-req");
    je_init(&i2, "u1", "ins1", "imp2", NULL, 6, "c1");
    i2.req.search_query = S("from-second-impression");
    push_ok(f.g, f.op, 1, REC_JOINED_EVENT, &a.j, 100);
    push_ok(f.g, f.op, 0, REC_JOINED_EVENT, &i1.j, 200);
    push_ok(f.g, f.op, 0, REC_JOINED_EVENT, &i2.j, 300);
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 1);
    Event__FlatResponseInsertion *r = cap_fri(&f.out, 0);
    assert_string_equal(nz(r->request->search_query), "from-first-impression");
    assert_non_null(r->hidden_api_request);
    assert_string_equal(nz(r->hidden_api_request->request_id), "api-req");
    assert_int_equal(r->n_impression, 2);
    assert_string_equal(nz(r->impression[0]->impression_id), "imp1");
    assert_string_equal(nz(r->impression[1]->impression_id), "imp2");
    assert_int_equal(r->n_action, 1);
    event__flat_response_insertion__free_unpacked(r, NULL);
    fx_free(&f);
}

static void test_actions_alone_use_the_first_action_as_source(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    je_rec a1, a2;
    je_init(&a1, "u1", "ins1", "imp1", "act1", 7, "c1");
    a1.req.search_query = S("first");
    je_init(&a2, "u1", "ins1", "imp1", "act2", 8, "c1");
    a2.req.search_query = S("second");
    push_ok(f.g, f.op, 1, REC_JOINED_EVENT, &a1.j, 100);
    push_ok(f.g, f.op, 1, REC_JOINED_EVENT, &a2.j, 200);
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 1);
    Event__FlatResponseInsertion *r = cap_fri(&f.out, 0);
    assert_string_equal(nz(r->request->search_query), "first");
    assert_int_equal(r->n_impression, 0);
    assert_int_equal(r->n_action, 2);
    assert_string_equal(nz(r->action[0]->action_id), "act1");
    assert_string_equal(nz(r->action[1]->action_id), "act2");
    event__flat_response_insertion__free_unpacked(r, NULL);
    fx_free(&f);
}

static void test_touching_windows_merge_and_distant_ones_do_not(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    imp_at(&f, "u1", "ins1", "imp1", 0);
    act_at(&f, "u1", "ins1", "imp1", "act1", GAP); /* [GAP, 2GAP) touches [0, GAP) */
    act_at(&f, "u1", "ins1", "imp1", "act2", 3 * GAP + 1);
    wm_ok(f.g, 2 * GAP - 1);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 2 * GAP - 1);
    Event__FlatResponseInsertion *r = cap_fri(&f.out, 0);
    assert_int_equal(r->n_impression, 1);
    assert_int_equal(r->n_action, 1);
    event__flat_response_insertion__free_unpacked(r, NULL);
    wm_ok(f.g, 4 * GAP);
    assert_int_equal(f.out.n, 2);
    assert_int_equal(f.out.recs[1].ts, 4 * GAP);
    r = cap_fri(&f.out, 1);
    assert_int_equal(r->n_impression, 0);
    assert_int_equal(r->n_action, 1);
    assert_string_equal(nz(r->action[0]->action_id), "act2");
    event__flat_response_insertion__free_unpacked(r, NULL);
    fx_free(&f);
}

static void test_element_bridging_two_windows_merges_all_three(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    act_at(&f, "u1", "ins1", "imp1", "act-late", 1800); /* [1800, 2800) */
    imp_at(&f, "u1", "ins1", "imp1", 0);                /* [0, 1000): apart */
    imp_at(&f, "u1", "ins1", "imp2", 900);              /* [900, 1900): meets both */
    act_at(&f, "u1", "ins1", "imp1", "act-mid", 1000);  /* inside */
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 2800 - 1);
    Event__FlatResponseInsertion *r = cap_fri(&f.out, 0);
    assert_int_equal(r->n_impression, 2);
    assert_string_equal(nz(r->impression[0]->impression_id), "imp1");
    assert_string_equal(nz(r->impression[1]->impression_id), "imp2");
    assert_int_equal(r->n_action, 2);
    /* the earlier window's elements come first */
    assert_string_equal(nz(r->action[0]->action_id), "act-late");
    assert_string_equal(nz(r->action[1]->action_id), "act-mid");
    event__flat_response_insertion__free_unpacked(r, NULL);
    fx_free(&f);
}

static void test_late_element_goes_to_its_side_output(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    imp_at(&f, "u1", "ins1", "imp1", 5000);
    wm_ok(f.g, 3000);
    /* its window [1000, 2000) is already complete and meets no open window */
    act_at(&f, "u1", "ins2", "imp9", "act9", 1000);
    assert_int_equal(f.late.n, 1);
    assert_int_equal(f.late.recs[0].ts, 1000);
    Event__JoinedEvent *j = cap_joined(&f.late, 0);
    assert_string_equal(nz(j->action->action_id), "act9");
    event__joined_event__free_unpacked(j, NULL);
    /* late by ts but its window [2500, 3500) still open: accepted */
    act_at(&f, "u1", "ins3", "imp8", "act8", 2500);
    /* late by ts, merging into the open window of ins1: accepted too */
    act_at(&f, "u1", "ins1", "imp1", "act1", 4500);
    assert_int_equal(f.late.n, 1);
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 2);
    fx_free(&f);
}

static void test_insertions_and_users_are_separate_keys(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    imp_at(&f, "u1", "ins1", "imp1", 100);
    imp_at(&f, "u1", "ins2", "imp2", 100);
    imp_at(&f, "u2", "ins1", "imp3", 100);
    /* the insertion id comes from the response insertion when ids lack it */
    je_rec r;
    je_init(&r, "u1", NULL, "imp4", NULL, 5, "c1");
    r.resp.insertion_id = S("ins1");
    push_ok(f.g, f.op, 0, REC_JOINED_EVENT, &r.j, 150);
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 3);
    size_t with_two = 0;
    for (size_t i = 0; i < 3; i++) {
        Event__FlatResponseInsertion *x = cap_fri(&f.out, i);
        if (x->n_impression == 2) with_two++;
        event__flat_response_insertion__free_unpacked(x, NULL);
    }
    assert_int_equal(with_two, 1);
    fx_free(&f);
}

static void test_open_window_survives_snapshot_and_restore(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    imp_at(&f, "u1", "ins1", "imp1", 100);
    rt_buf snap;
    rt_buf_init(&snap, 0);
    assert_int_equal(rt_graph_snapshot(f.g, &snap), 0);
    fx_free(&f);
    fx_build(&f);
    char err[256] = "";
    if (rt_graph_restore(f.g, snap.data, snap.len, err, sizeof err)) fail_msg("%s", err);
    rt_buf_free(&snap);
    act_at(&f, "u1", "ins1", "imp1", "act1", 200);
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 200 + GAP - 1);
    Event__FlatResponseInsertion *r = cap_fri(&f.out, 0);
    assert_int_equal(r->n_impression, 1);
    assert_int_equal(r->n_action, 1);
    event__flat_response_insertion__free_unpacked(r, NULL);
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impression_and_action_pivot_into_one_flat_response_insertion),
        cmocka_unit_test(test_first_impression_is_the_source_even_after_actions),
        cmocka_unit_test(test_actions_alone_use_the_first_action_as_source),
        cmocka_unit_test(test_touching_windows_merge_and_distant_ones_do_not),
        cmocka_unit_test(test_element_bridging_two_windows_merges_all_three),
        cmocka_unit_test(test_late_element_goes_to_its_side_output),
        cmocka_unit_test(test_insertions_and_users_are_separate_keys),
        cmocka_unit_test(test_open_window_survives_snapshot_and_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
