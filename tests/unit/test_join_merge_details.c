/* MergeImpressionDetails and MergeActionDetails (spec/flat-output.md §11) through a graph: the
 * §11.4 scenarios (windows view 400, delivery log 300, impression 200, period 500, missing delay
 * 50), mismatch rows, cleanup, the lt <= 0 side output, batch cleanup before a timestamp,
 * snapshot/restore, and the flag-derived windows. x@t = record with lt = ts = t. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "formats/pb_private.h"
#include "jobs/join/merge_details.h"
#include "runtime/buf.h"
#include "test_join_post_util.h"

/* ---------------------------------------------------------------- records */

typedef struct view_rec {
    Event__View v;
    Common__UserInfo ui;
    Common__Timing t;
} view_rec;

static void view_init(view_rec *r, const char *id, uint64_t lt, const char *session)
{
    Event__View v = EVENT__VIEW__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    r->v = v;
    r->ui = ui;
    r->t = t;
    r->ui.log_user_id = S("u1");
    r->ui.user_id = S("secret-user");
    r->t.has_log_timestamp = lt != 0;
    r->t.log_timestamp = lt;
    r->v.has_platform_id = 1;
    r->v.platform_id = 1;
    r->v.user_info = &r->ui;
    r->v.timing = &r->t;
    r->v.view_id = (char *)id;
    r->v.session_id = (char *)session;
}

typedef struct dl_rec {
    Event__CombinedDeliveryLog c;
    Delivery__DeliveryLog sdk, api;
    Delivery__Request sreq, areq;
    Delivery__Response sresp;
    Delivery__DeliveryExecution sexec, aexec;
    Common__UserInfo ui;
    Common__Timing st, at;
    Common__ClientInfo aci;
    Delivery__Insertion resp_ins[2], req_ins[2], *resp_ptr[2], *req_ptr[2];
} dl_rec;

/* SDK log sreq (insertions ins:content pairs) + optional API log areq (empty request but id and
 * timing), both with request lt. */
static void dl_init(dl_rec *r, const char *sreq, const char *areq, uint64_t lt, const char *view,
                    const char *ins1, const char *content1)
{
    memset(r, 0, sizeof *r);
    Event__CombinedDeliveryLog c = EVENT__COMBINED_DELIVERY_LOG__INIT;
    Delivery__DeliveryLog d = DELIVERY__DELIVERY_LOG__INIT;
    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    Delivery__Response rs = DELIVERY__RESPONSE__INIT;
    Delivery__DeliveryExecution ex = DELIVERY__DELIVERY_EXECUTION__INIT;
    Delivery__Insertion in = DELIVERY__INSERTION__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    Common__ClientInfo ci = COMMON__CLIENT_INFO__INIT;
    r->c = c;
    r->sdk = r->api = d;
    r->sreq = r->areq = rq;
    r->sresp = rs;
    r->sexec = r->aexec = ex;
    r->ui = ui;
    r->st = r->at = t;
    r->aci = ci;
    r->ui.log_user_id = S("u1");
    r->st.has_log_timestamp = r->at.has_log_timestamp = 1;
    r->st.log_timestamp = r->at.log_timestamp = lt;
    r->sreq.has_platform_id = 1;
    r->sreq.platform_id = 1;
    r->sreq.user_info = &r->ui;
    r->sreq.timing = &r->st;
    r->sreq.request_id = (char *)sreq;
    r->sreq.view_id = (char *)view;
    r->sdk.has_platform_id = 1;
    r->sdk.platform_id = 1;
    r->sdk.request = &r->sreq;
    r->sdk.response = &r->sresp;
    r->sexec.has_execution_server = 1;
    r->sexec.execution_server = DELIVERY__EXECUTION_SERVER__SDK;
    r->sdk.execution = &r->sexec;
    for (int i = 0; i < 2; i++) {
        r->resp_ins[i] = in;
        r->req_ins[i] = in;
        r->resp_ptr[i] = &r->resp_ins[i];
        r->req_ptr[i] = &r->req_ins[i];
    }
    r->resp_ins[0].insertion_id = (char *)ins1;
    r->resp_ins[0].content_id = (char *)content1;
    r->resp_ins[0].has_position = 1;
    r->resp_ins[0].position = 0;
    r->sresp.n_insertion = 1;
    r->sresp.insertion = r->resp_ptr;
    r->req_ins[0].content_id = (char *)content1;
    r->req_ins[0].has_retrieval_rank = 1;
    r->req_ins[0].retrieval_rank = 7;
    r->sreq.n_insertion = 1;
    r->sreq.insertion = r->req_ptr;
    r->c.sdk = &r->sdk;
    if (areq) {
        r->areq.has_platform_id = 1;
        r->areq.platform_id = 1;
        r->areq.user_info = &r->ui;
        r->areq.timing = &r->at;
        r->areq.request_id = (char *)areq;
        r->api.has_platform_id = 1;
        r->api.platform_id = 1;
        r->api.request = &r->areq;
        r->aexec.has_execution_server = 1;
        r->aexec.execution_server = DELIVERY__EXECUTION_SERVER__API;
        r->api.execution = &r->aexec;
        r->c.api = &r->api;
    }
}

typedef struct imp_rec {
    Event__Impression i;
    Common__UserInfo ui;
    Common__Timing t;
} imp_rec;

static void imp_init(imp_rec *r, const char *id, uint64_t lt, const char *session)
{
    Event__Impression i = EVENT__IMPRESSION__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    r->i = i;
    r->ui = ui;
    r->t = t;
    r->ui.log_user_id = S("u1");
    r->t.has_log_timestamp = lt != 0;
    r->t.log_timestamp = lt;
    r->i.has_platform_id = 1;
    r->i.platform_id = 1;
    r->i.user_info = &r->ui;
    r->i.timing = &r->t;
    r->i.impression_id = (char *)id;
    r->i.insertion_id = S("ins1");
    r->i.session_id = (char *)session;
}

typedef struct act_rec {
    Event__Action a;
    Common__UserInfo ui;
    Common__Timing t;
    Event__Cart cart;
    Event__CartContent cc[3], *ccp[3];
} act_rec;

static void act_init(act_rec *r, const char *id, uint64_t lt)
{
    memset(r, 0, sizeof *r);
    Event__Action a = EVENT__ACTION__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    Event__Cart cart = EVENT__CART__INIT;
    Event__CartContent cc = EVENT__CART_CONTENT__INIT;
    r->a = a;
    r->ui = ui;
    r->t = t;
    r->cart = cart;
    for (int i = 0; i < 3; i++) {
        r->cc[i] = cc;
        r->ccp[i] = &r->cc[i];
    }
    r->ui.log_user_id = S("u1");
    r->t.has_log_timestamp = 1;
    r->t.log_timestamp = lt;
    r->a.has_platform_id = 1;
    r->a.platform_id = 1;
    r->a.user_info = &r->ui;
    r->a.timing = &r->t;
    r->a.action_id = (char *)id;
    r->a.impression_id = S("imp1");
    r->a.content_id = S("content1");
}

static void act_cart(act_rec *r, int n, const char *const ids[], const int64_t qty[])
{
    for (int i = 0; i < n; i++) {
        r->cc[i].content_id = (char *)ids[i];
        r->cc[i].has_quantity = qty[i] != 0;
        r->cc[i].quantity = qty[i];
    }
    r->cart.n_contents = (size_t)n;
    r->cart.contents = r->ccp;
    r->a.cart = &r->cart;
}

/* A joined impression as merge-impression-details would emit it. */
typedef struct ji_rec {
    Event__JoinedEvent j;
    Event__JoinedIdentifiers ids;
    Common__Timing t;
    Event__Impression imp;
    Delivery__Insertion resp;
} ji_rec;

static void ji_init(ji_rec *r, const char *imp_id, uint64_t lt)
{
    Event__JoinedEvent j = EVENT__JOINED_EVENT__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    Event__Impression imp = EVENT__IMPRESSION__INIT;
    Delivery__Insertion resp = DELIVERY__INSERTION__INIT;
    r->j = j;
    r->ids = ids;
    r->t = t;
    r->imp = imp;
    r->resp = resp;
    r->ids.has_platform_id = 1;
    r->ids.platform_id = 1;
    r->ids.log_user_id = S("u1");
    r->ids.request_id = S("req1");
    r->ids.insertion_id = S("ins1");
    r->ids.impression_id = (char *)imp_id;
    r->t.has_log_timestamp = 1;
    r->t.log_timestamp = lt;
    r->imp.timing = &r->t;
    r->resp.content_id = S("content1");
    r->j.ids = &r->ids;
    r->j.timing = &r->t;
    r->j.impression = &r->imp;
    r->j.response_insertion = &r->resp;
}

/* ---------------------------------------------------------------- fixtures */

typedef struct fixture {
    rt_graph *g;
    rt_op *op;
    capture out, mismatch, dropped, no_lt;
} fixture;

static merge_impression_details_config imp_cfg(void)
{
    merge_impression_details_config c = {
        .view_window_ms = 400,
        .delivery_log_window_ms = 300,
        .impression_window_ms = 200,
        .cleanup_period_ms = 500,
        .missing_output_delay_ms = 50,
    };
    return c;
}

static merge_action_details_config act_cfg(void)
{
    merge_action_details_config c = {
        .joined_impression_window_ms = 400,
        .action_window_ms = 200,
        .cleanup_period_ms = 500,
        .missing_output_delay_ms = 50,
    };
    return c;
}

static void fx_wire(fixture *f)
{
    capture_port(f->g, "capture-out", &f->out, f->op, 0);
    capture_port(f->g, "capture-mismatch", &f->mismatch, f->op, 1);
    capture_port(f->g, "capture-dropped", &f->dropped, f->op, 2);
    capture_port(f->g, "capture-no-lt", &f->no_lt, f->op, 3);
    graph_open_ok(f->g);
}

static void fx_imp(fixture *f, const merge_impression_details_config *c)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(rt_graph_new(NULL, &f->g), 0);
    assert_int_equal(merge_impression_details_op_add(f->g, "merge-impression-details", c, &f->op),
                     0);
    fx_wire(f);
}

static void fx_act(fixture *f, const merge_action_details_config *c)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(rt_graph_new(NULL, &f->g), 0);
    assert_int_equal(merge_action_details_op_add(f->g, "merge-action-details", c, &f->op), 0);
    fx_wire(f);
}

static void fx_free(fixture *f)
{
    rt_graph_free(f->g);
    capture_free(&f->out);
    capture_free(&f->mismatch);
    capture_free(&f->dropped);
    capture_free(&f->no_lt);
}

static void full(fixture *f, int type, const void *data, int64_t ts)
{
    push_ok(f->g, f->op, 0, type, data, ts);
}

static void tiny_imp(fixture *f, const char *view, const char *req, const char *ins,
                     const char *imp, int64_t t)
{
    Event__TinyEvent e = tiny_ev(1, "u1", (uint64_t)t, view, req, ins, "content1", imp, NULL);
    push_ok(f->g, f->op, 1, REC_TINY_EVENT, &e, t);
}

static int64_t lt_of(const Common__Timing *t)
{
    assert_non_null(t);
    return (int64_t)t->log_timestamp;
}

/* ---------------------------------------------------------------- impression details */

static void test_complete_tiny_impression_is_merged_with_view_request_and_impression(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    int64_t empty = rt_op_mem_used(f.op);
    view_rec v;
    dl_rec d;
    imp_rec i;
    view_init(&v, "view1", 100, NULL);
    dl_init(&d, "req1", "req3", 150, "view1", "ins1", "content1");
    imp_init(&i, "imp1", 200, NULL);
    full(&f, REC_VIEW, &v.v, 100);
    full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 150);
    full(&f, REC_IMPRESSION, &i.i, 200);
    wm_ok(f.g, 300);
    tiny_imp(&f, "view1", "req1", "ins1", "imp1", 300);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 300);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_non_null(j->ids);
    assert_int_equal(j->ids->platform_id, 1);
    assert_string_equal(nz(j->ids->log_user_id), "u1");
    assert_string_equal(nz(j->ids->view_id), "view1");
    assert_string_equal(nz(j->ids->request_id), "req1");
    assert_string_equal(nz(j->ids->insertion_id), "ins1");
    assert_string_equal(nz(j->ids->impression_id), "imp1");
    assert_int_equal(lt_of(j->timing), 200);
    assert_non_null(j->view);
    assert_int_equal(lt_of(j->view->timing), 100);
    assert_null(j->view->view_id);
    assert_false(j->view->has_platform_id);
    /* user_info had only ids: it goes away */
    assert_null(j->view->user_info);
    assert_non_null(j->request);
    assert_int_equal(lt_of(j->request->timing), 150);
    assert_null(j->request->request_id);
    assert_null(j->request->view_id);
    assert_int_equal(j->request->n_insertion, 0);
    assert_non_null(j->hidden_api_request);
    assert_string_equal(nz(j->hidden_api_request->request_id), "req3");
    assert_int_equal(lt_of(j->hidden_api_request->timing), 150);
    assert_non_null(j->hidden_api_request->client_info); /* present, empty */
    assert_non_null(j->response);
    assert_int_equal(j->response->n_insertion, 0);
    assert_non_null(j->response_insertion);
    assert_string_equal(nz(j->response_insertion->content_id), "content1");
    assert_null(j->response_insertion->insertion_id);
    assert_true(j->response_insertion->has_position);
    /* the request insertion of the same content, without its content id */
    assert_non_null(j->request_insertion);
    assert_null(j->request_insertion->content_id);
    assert_int_equal(j->request_insertion->retrieval_rank, 7);
    assert_non_null(j->api_execution);
    assert_int_equal(j->api_execution->execution_server, DELIVERY__EXECUTION_SERVER__API);
    assert_non_null(j->sdk_execution);
    assert_int_equal(j->sdk_execution->execution_server, DELIVERY__EXECUTION_SERVER__SDK);
    assert_non_null(j->impression);
    assert_int_equal(lt_of(j->impression->timing), 200);
    assert_null(j->impression->impression_id);
    assert_null(j->impression->insertion_id);
    assert_null(j->api_execution_insertion);
    event__joined_event__free_unpacked(j, NULL);
    assert_int_equal(f.mismatch.n, 0);
    assert_int_equal(f.dropped.n, 0);
    /* every stored record is gone once the batch cleanups have passed */
    wm_ok(f.g, 1500);
    assert_int_equal(rt_timer_count(f.op), 0);
    assert_true(rt_op_mem_used(f.op) <= empty + 512);
    fx_free(&f);
}

static void test_tiny_impression_waits_for_the_last_required_parent(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    view_rec v;
    dl_rec d;
    imp_rec i;
    view_init(&v, "view1", 110, NULL);
    dl_init(&d, "req1", NULL, 150, "view1", "ins1", "content1");
    imp_init(&i, "imp1", 200, NULL);
    tiny_imp(&f, "view1", "req1", "ins1", "imp1", 100);
    full(&f, REC_VIEW, &v.v, 110);
    full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 150);
    assert_int_equal(f.out.n, 0);
    full(&f, REC_IMPRESSION, &i.i, 200);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 200);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_non_null(j->view);
    assert_null(j->hidden_api_request); /* SDK log alone */
    assert_null(j->api_execution);
    event__joined_event__free_unpacked(j, NULL);
    /* its timer later finds nothing left to do */
    wm_ok(f.g, 2000);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.dropped.n, 0);
    fx_free(&f);
}

static void test_delivery_log_arriving_last_releases_with_its_ts(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    view_rec v;
    dl_rec d;
    imp_rec i;
    view_init(&v, "view1", 110, NULL);
    dl_init(&d, "req1", NULL, 300, "view1", "ins1", "content1");
    imp_init(&i, "imp1", 200, NULL);
    tiny_imp(&f, "view1", "req1", "ins1", "imp1", 100);
    full(&f, REC_VIEW, &v.v, 110);
    full(&f, REC_IMPRESSION, &i.i, 200);
    assert_int_equal(f.out.n, 0);
    full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 300);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 300);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_int_equal(lt_of(j->request->timing), 300);
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_missing_view_is_not_waited_for(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    dl_rec d;
    imp_rec i;
    dl_init(&d, "req1", NULL, 150, "view1", "ins1", "content1");
    imp_init(&i, "imp1", 200, NULL);
    full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 150);
    full(&f, REC_IMPRESSION, &i.i, 200);
    tiny_imp(&f, "view1", "req1", "ins1", "imp1", 300);
    assert_int_equal(f.out.n, 1);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_null(j->view);
    /* the request names the view, so ids.view_id comes from it */
    assert_string_equal(nz(j->ids->view_id), "view1");
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_skip_view_join_ignores_views(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    c.skip_view_join = true;
    fx_imp(&f, &c);
    view_rec v;
    dl_rec d;
    imp_rec i;
    view_init(&v, "view1", 100, "sess1");
    dl_init(&d, "req1", NULL, 150, NULL, "ins1", "content1");
    imp_init(&i, "imp1", 200, NULL);
    full(&f, REC_VIEW, &v.v, 100);
    full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 150);
    full(&f, REC_IMPRESSION, &i.i, 200);
    tiny_imp(&f, "view1", "req1", "ins1", "imp1", 300);
    assert_int_equal(f.out.n, 1);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_null(j->view);
    assert_null(j->ids->view_id);
    assert_null(j->ids->session_id);
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_incomplete_tiny_impression_is_dropped_with_partial_join_at_its_timer(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    imp_rec i;
    imp_init(&i, "imp1", 200, NULL);
    i.i.platform_id = 0; /* only what the tiny event names, as in the spec's scenario */
    i.i.has_platform_id = 0;
    i.i.user_info = NULL;
    full(&f, REC_IMPRESSION, &i.i, 200);
    /* both belong to the user (0, "") */
    Event__TinyEvent t = tiny_ev(0, NULL, 300, NULL, NULL, "insertion1", "content1", "imp1", NULL);
    push_ok(f.g, f.op, 1, REC_TINY_EVENT, &t, 300);
    wm_ok(f.g, 349);
    assert_int_equal(f.dropped.n, 0);
    wm_ok(f.g, 350);
    assert_int_equal(f.out.n, 0);
    assert_int_equal(f.dropped.n, 1);
    assert_int_equal(f.dropped.recs[0].ts, 350);
    Event__DroppedMergeDetailsEvent *d = event__dropped_merge_details_event__unpack(
        NULL, f.dropped.recs[0].len, f.dropped.recs[0].bytes);
    assert_non_null(d);
    assert_non_null(d->tiny_event);
    assert_string_equal(nz(d->tiny_event->impression_id), "imp1");
    assert_non_null(d->joined_event);
    assert_int_equal(lt_of(d->joined_event->timing), 200);
    assert_string_equal(nz(d->joined_event->ids->insertion_id), "insertion1");
    assert_string_equal(nz(d->joined_event->ids->impression_id), "imp1");
    assert_non_null(d->joined_event->impression);
    assert_int_equal(lt_of(d->joined_event->impression->timing), 200);
    assert_null(d->joined_event->request);
    event__dropped_merge_details_event__free_unpacked(d, NULL);
    fx_free(&f);
}

static void test_conflicting_ids_give_mismatch_rows_on_every_evaluation(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    view_rec v;
    dl_rec d;
    imp_rec i;
    view_init(&v, "view1", 100, "sess1");
    dl_init(&d, "req1", NULL, 150, "view1", "ins1", "content1");
    d.sreq.session_id = S("sess2");
    imp_init(&i, "imp1", 200, "sess1");
    full(&f, REC_VIEW, &v.v, 100);
    full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 150);
    tiny_imp(&f, "view1", "req1", "ins1", "imp1", 160); /* waits for the impression */
    assert_int_equal(f.mismatch.n, 1);
    full(&f, REC_IMPRESSION, &i.i, 200); /* re-evaluated: the same row again, then output */
    assert_int_equal(f.mismatch.n, 2);
    assert_int_equal(f.out.n, 1);
    for (size_t k = 0; k < 2; k++) {
        const join_mismatch_error *m = &f.mismatch.recs[k].mm;
        assert_int_equal(m->record_type, JOIN_RT_DELIVERY_LOG);
        assert_int_equal(m->field, JOIN_F_SESSION_ID);
        assert_string_equal(m->lhs_string, "sess1");
        assert_string_equal(m->rhs_string, "sess2");
        assert_string_equal(m->rhs_record_id, "req1");
        assert_int_equal(m->log_timestamp, 150);
        assert_int_equal(m->log_function_name, JOIN_FN_FLAT_UTIL_SET_FLAT_REQUEST);
        /* the LHS ids as they were before the request was merged */
        assert_int_equal(m->lhs_platform_id, 1);
        assert_string_equal(m->lhs_view_id, "view1");
        assert_string_equal(m->lhs_request_id, "");
    }
    assert_int_equal(f.mismatch.recs[0].ts, 160);
    assert_int_equal(f.mismatch.recs[1].ts, 200);
    /* the first value wins */
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_string_equal(nz(j->ids->session_id), "sess1");
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_api_execution_insertion_is_matched_by_insertion_then_content(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    dl_rec d;
    imp_rec i;
    dl_init(&d, "req1", "req2", 150, NULL, "ins1", "content1");
    d.aci.has_traffic_type = 1;
    d.aci.traffic_type = COMMON__CLIENT_INFO__TRAFFIC_TYPE__SHADOW;
    d.areq.client_info = &d.aci;
    /* an execution insertion with another id but the same content, carrying features */
    Delivery__Insertion ex = DELIVERY__INSERTION__INIT;
    ex.insertion_id = S("ins1-api");
    ex.content_id = S("content1");
    ex.has_retrieval_rank = 1;
    ex.retrieval_rank = 3;
    Logproc__Priv__Features__NumericEntry ne = LOGPROC__PRIV__FEATURES__NUMERIC_ENTRY__INIT;
    Logproc__Priv__Features__NumericEntry *nep = &ne;
    ne.has_key = ne.has_value = 1;
    ne.key = 100;
    ne.value = 0.5f;
    Logproc__Priv__Features feats = LOGPROC__PRIV__FEATURES__INIT;
    feats.n_numeric = 1;
    feats.numeric = &nep;
    Logproc__Priv__FeatureStage fs = LOGPROC__PRIV__FEATURE_STAGE__INIT;
    fs.features = &feats;
    assert_int_equal(pb_private_set_feature_stage(&ex, &fs, NULL), 0);
    assert_int_equal(pb_private_add_execution_insertion(&d.aexec, &ex, NULL), 0);
    imp_init(&i, "imp1", 200, NULL);
    full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 150);
    full(&f, REC_IMPRESSION, &i.i, 200);
    tiny_imp(&f, NULL, "req1", "ins1", "imp1", 300);
    pb_private_clear(&d.aexec.base, NULL);
    pb_private_clear(&ex.base, NULL);
    assert_int_equal(f.out.n, 1);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    /* the SDK request is the request; the API one is kept as the hidden request (§20 #6) */
    assert_string_equal(nz(j->ids->request_id), "req1");
    assert_string_equal(nz(j->hidden_api_request->request_id), "req2");
    assert_int_equal(j->hidden_api_request->client_info->traffic_type,
                     COMMON__CLIENT_INFO__TRAFFIC_TYPE__SHADOW);
    assert_non_null(j->api_execution_insertion);
    assert_null(j->api_execution_insertion->insertion_id);
    assert_null(j->api_execution_insertion->content_id);
    assert_int_equal(j->api_execution_insertion->retrieval_rank, 3);
    Logproc__Priv__FeatureStage *got = NULL;
    assert_int_equal(pb_private_get_feature_stage(j->api_execution_insertion, NULL, &got), 0);
    assert_non_null(got);
    assert_int_equal(got->features->n_numeric, 1);
    assert_int_equal(got->features->numeric[0]->key, 100);
    logproc__priv__feature_stage__free_unpacked(got, NULL);
    /* the executions lose their execution insertions */
    Delivery__Insertion **left = NULL;
    size_t nleft = 0;
    assert_int_equal(pb_private_get_execution_insertions(j->api_execution, NULL, &left, &nleft), 0);
    assert_int_equal(nleft, 0);
    pb_private_free_list((ProtobufCMessage **)left, nleft, NULL);
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_stored_record_without_log_timestamp_goes_to_side_output(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    imp_rec i;
    imp_init(&i, "imp0", 0, NULL);
    full(&f, REC_IMPRESSION, &i.i, 100);
    wm_ok(f.g, 1000); /* batch cleanups at 500 */
    assert_int_equal(f.no_lt.n, 1);
    Event__TinyEvent *t = cap_tiny(&f.no_lt, 0);
    assert_string_equal(nz(t->impression_id), "imp0");
    assert_string_equal(nz(t->log_user_id), "u1");
    assert_int_equal(t->platform_id, 1);
    event__tiny_event__free_unpacked(t, NULL);
    assert_int_equal(f.no_lt.recs[0].ts, 500);
    fx_free(&f);
}

static void test_batch_cleanup_before_timestamp_purges_at_any_timer(void **st)
{
    (void)st;
    for (int forced = 0; forced < 2; forced++) {
        fixture f;
        merge_impression_details_config c = imp_cfg();
        if (forced) c.batch_cleanup_all_before = 10000;
        fx_imp(&f, &c);
        imp_rec i;
        dl_rec d;
        imp_init(&i, "imp1", 100, NULL);
        dl_init(&d, "req1", NULL, 360, NULL, "ins1", "content1");
        full(&f, REC_IMPRESSION, &i.i, 100);
        /* a tiny event missing its log arms a timer at 350, not a multiple of the period */
        tiny_imp(&f, NULL, "reqX", "insX", "imp1", 300);
        wm_ok(f.g, 360);
        full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 360);
        tiny_imp(&f, NULL, "req1", "ins1", "imp1", 361);
        /* imp1 (lt 100 < 350 - 200) was purged at 350 only when forced */
        assert_int_equal(f.out.n, forced ? 0 : 1);
        fx_free(&f);
    }
}

static void test_waiting_tiny_event_survives_snapshot_and_restore(void **st)
{
    (void)st;
    fixture f;
    merge_impression_details_config c = imp_cfg();
    fx_imp(&f, &c);
    dl_rec d;
    imp_rec i;
    dl_init(&d, "req1", NULL, 150, NULL, "ins1", "content1");
    imp_init(&i, "imp1", 200, NULL);
    full(&f, REC_COMBINED_DELIVERY_LOG, &d.c, 150);
    tiny_imp(&f, NULL, "req1", "ins1", "imp1", 160);
    rt_buf snap;
    rt_buf_init(&snap, 0);
    assert_int_equal(rt_graph_snapshot(f.g, &snap), 0);
    fx_free(&f);

    fx_imp(&f, &c);
    char err[256] = "";
    if (rt_graph_restore(f.g, snap.data, snap.len, err, sizeof err)) fail_msg("%s", err);
    rt_buf_free(&snap);
    full(&f, REC_IMPRESSION, &i.i, 200);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 200);
    fx_free(&f);
}

/* ---------------------------------------------------------------- action details */

static void tiny_act(fixture *f, const char *imp, const char *act, const char *content, int64_t t)
{
    Event__TinyEvent e = tiny_ev(1, "u1", (uint64_t)t, NULL, "req1", "ins1", content, imp, act);
    push_ok(f->g, f->op, 1, REC_TINY_EVENT, &e, t);
}

static void test_tiny_action_is_merged_with_joined_impression_and_action(void **st)
{
    (void)st;
    fixture f;
    merge_action_details_config c = act_cfg();
    fx_act(&f, &c);
    int64_t empty = rt_op_mem_used(f.op);
    ji_rec ji;
    act_rec a;
    ji_init(&ji, "imp1", 200);
    act_init(&a, "action1", 250);
    a.ui.user_id = S("secret");
    full(&f, REC_JOINED_EVENT, &ji.j, 200);
    full(&f, REC_ACTION, &a.a, 250);
    tiny_act(&f, "imp1", "action1", "content1", 300);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 300);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_string_equal(nz(j->ids->impression_id), "imp1");
    assert_string_equal(nz(j->ids->insertion_id), "ins1");
    assert_non_null(j->impression);
    assert_int_equal(lt_of(j->impression->timing), 200);
    assert_string_equal(nz(j->response_insertion->content_id), "content1");
    assert_non_null(j->action);
    assert_string_equal(nz(j->action->action_id), "action1");
    assert_string_equal(nz(j->action->content_id), "content1");
    assert_int_equal(lt_of(j->action->timing), 250);
    assert_null(j->action->impression_id);
    assert_false(j->action->has_platform_id);
    assert_null(j->action->user_info); /* luid and user_id gone: nothing left */
    assert_null(j->action->single_cart_content);
    assert_int_equal(lt_of(j->timing), 250);
    event__joined_event__free_unpacked(j, NULL);
    wm_ok(f.g, 1500);
    assert_int_equal(rt_timer_count(f.op), 0);
    assert_true(rt_op_mem_used(f.op) <= empty + 512);
    fx_free(&f);
}

static void test_tiny_action_missing_a_parent_is_dropped_and_state_cleaned(void **st)
{
    (void)st;
    for (int which = 0; which < 2; which++) {
        fixture f;
        merge_action_details_config c = act_cfg();
        fx_act(&f, &c);
        int64_t empty = rt_op_mem_used(f.op);
        ji_rec ji;
        act_rec a;
        ji_init(&ji, "imp1", 200);
        act_init(&a, "action1", 250);
        if (which == 0)
            full(&f, REC_JOINED_EVENT, &ji.j, 200);
        else
            full(&f, REC_ACTION, &a.a, 250);
        tiny_act(&f, "imp1", "action1", "content1", 300);
        wm_ok(f.g, 1500);
        assert_int_equal(f.out.n, 0);
        assert_int_equal(f.dropped.n, 1);
        assert_int_equal(f.dropped.recs[0].ts, 350);
        assert_int_equal(rt_timer_count(f.op), 0);
        assert_true(rt_op_mem_used(f.op) <= empty + 512);
        fx_free(&f);
    }
}

static void test_single_cart_content_is_the_cart_row_of_the_tiny_action(void **st)
{
    (void)st;
    static const struct {
        const char *tiny_content;
        int n;
        const char *ids[3];
        int64_t qty[3];
        const char *want;
        int64_t want_qty;
    } cases[] = {
        {"content1", 2, {"ignoredContent1", "content1"}, {1, 1}, "content1", 1},
        {"content1", 2, {"ignoredContent1", "content1"}, {1, 0}, "content1", 1}, /* q0 -> q1 */
        {"promotion1", 3, {"content1", "promotion1", "x"}, {1, 2, 3}, "promotion1", 2},
        {"nothing", 1, {"content1"}, {4}, NULL, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fixture f;
        merge_action_details_config c = act_cfg();
        fx_act(&f, &c);
        ji_rec ji;
        act_rec a;
        ji_init(&ji, "imp1", 200);
        act_init(&a, "action1", 250);
        act_cart(&a, cases[k].n, cases[k].ids, cases[k].qty);
        full(&f, REC_JOINED_EVENT, &ji.j, 200);
        full(&f, REC_ACTION, &a.a, 250);
        tiny_act(&f, "imp1", "action1", cases[k].tiny_content, 300);
        assert_int_equal(f.out.n, 1);
        Event__JoinedEvent *j = cap_joined(&f.out, 0);
        if (!cases[k].want) {
            assert_null(j->action->single_cart_content);
        } else {
            assert_non_null(j->action->single_cart_content);
            assert_string_equal(nz(j->action->single_cart_content->content_id), cases[k].want);
            assert_int_equal(j->action->single_cart_content->quantity, cases[k].want_qty);
        }
        /* the full cart and the raw content id stay */
        assert_int_equal(j->action->cart->n_contents, (size_t)cases[k].n);
        assert_string_equal(nz(j->action->content_id), "content1");
        event__joined_event__free_unpacked(j, NULL);
        fx_free(&f);
    }
}

static void test_cart_row_found_through_other_content_ids(void **st)
{
    (void)st;
    fixture f;
    merge_action_details_config c = act_cfg();
    fx_act(&f, &c);
    ji_rec ji;
    act_rec a;
    ji_init(&ji, "imp1", 200);
    act_init(&a, "action1", 250);
    const char *ids[2] = {"item-1", "store-1"};
    const int64_t qty[2] = {5, 6};
    act_cart(&a, 2, ids, qty);
    full(&f, REC_JOINED_EVENT, &ji.j, 200);
    full(&f, REC_ACTION, &a.a, 250);
    Event__TinyEvent e = tiny_ev(1, "u1", 300, NULL, NULL, NULL, "store-x", "imp1", "action1");
    Event__TinyEvent__OtherContentIdsEntry oe = EVENT__TINY_EVENT__OTHER_CONTENT_IDS_ENTRY__INIT;
    Event__TinyEvent__OtherContentIdsEntry *oep = &oe;
    oe.has_key = 1;
    oe.key = 109770977;
    oe.value = S("store-1");
    e.n_other_content_ids = 1;
    e.other_content_ids = &oep;
    push_ok(f.g, f.op, 1, REC_TINY_EVENT, &e, 300);
    assert_int_equal(f.out.n, 1);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_string_equal(nz(j->action->single_cart_content->content_id), "store-1");
    assert_int_equal(j->action->single_cart_content->quantity, 6);
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_action_conflicting_with_joined_impression_gives_mismatch(void **st)
{
    (void)st;
    fixture f;
    merge_action_details_config c = act_cfg();
    fx_act(&f, &c);
    ji_rec ji;
    act_rec a;
    ji_init(&ji, "imp1", 200);
    ji.ids.session_id = S("s1");
    act_init(&a, "action1", 250);
    a.a.session_id = S("s2");
    full(&f, REC_JOINED_EVENT, &ji.j, 200);
    full(&f, REC_ACTION, &a.a, 250);
    tiny_act(&f, "imp1", "action1", "content1", 300);
    assert_int_equal(f.mismatch.n, 1);
    const join_mismatch_error *m = &f.mismatch.recs[0].mm;
    assert_int_equal(m->record_type, JOIN_RT_ACTION);
    assert_int_equal(m->field, JOIN_F_SESSION_ID);
    assert_string_equal(m->rhs_record_id, "action1");
    assert_string_equal(m->lhs_impression_id, "imp1");
    assert_int_equal(m->log_timestamp, 250);
    assert_int_equal(m->log_function_name, JOIN_FN_FLAT_UTIL_SET_FLAT_ACTION);
    fx_free(&f);
}

static void test_windows_follow_the_flags(void **st)
{
    (void)st;
    merge_details_flags fl = {
        .view_insertion_join_min = -600000,
        .view_insertion_join_max = 0,
        .insertion_impression_join_min = -1800000,
        .insertion_impression_join_max = 0,
        .impression_action_join_min = -86400000,
        .impression_action_join_max = 0,
        .combine_delivery_log_window = 2000,
        .merge_details_missing_output_delay = 0,
        .merge_details_cleanup_buffer = 30000,
        .merge_details_cleanup_period = 30000,
    };
    merge_impression_details_config imp;
    merge_action_details_config act;
    merge_details_configs_from_flags(&fl, &imp, &act);
    assert_int_equal(imp.impression_window_ms, 32000);
    assert_int_equal(imp.delivery_log_window_ms, 30 * 60000 + 32000);
    assert_int_equal(imp.view_window_ms, 40 * 60000 + 32000);
    assert_int_equal(act.action_window_ms, 32000);
    assert_int_equal(act.joined_impression_window_ms, 86400000 + 32000);
    assert_int_equal(imp.cleanup_period_ms, 30000);
    /* maxes count too, by absolute value */
    fl.impression_action_join_max = -20000;
    merge_details_configs_from_flags(&fl, NULL, &act);
    assert_int_equal(act.action_window_ms, 52000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_tiny_impression_is_merged_with_view_request_and_impression),
        cmocka_unit_test(test_tiny_impression_waits_for_the_last_required_parent),
        cmocka_unit_test(test_delivery_log_arriving_last_releases_with_its_ts),
        cmocka_unit_test(test_missing_view_is_not_waited_for),
        cmocka_unit_test(test_skip_view_join_ignores_views),
        cmocka_unit_test(test_incomplete_tiny_impression_is_dropped_with_partial_join_at_its_timer),
        cmocka_unit_test(test_conflicting_ids_give_mismatch_rows_on_every_evaluation),
        cmocka_unit_test(test_api_execution_insertion_is_matched_by_insertion_then_content),
        cmocka_unit_test(test_stored_record_without_log_timestamp_goes_to_side_output),
        cmocka_unit_test(test_batch_cleanup_before_timestamp_purges_at_any_timer),
        cmocka_unit_test(test_waiting_tiny_event_survives_snapshot_and_restore),
        cmocka_unit_test(test_tiny_action_is_merged_with_joined_impression_and_action),
        cmocka_unit_test(test_tiny_action_missing_a_parent_is_dropped_and_state_cleaned),
        cmocka_unit_test(test_single_cart_content_is_the_cart_row_of_the_tiny_action),
        cmocka_unit_test(test_cart_row_found_through_other_content_ids),
        cmocka_unit_test(test_action_conflicting_with_joined_impression_gives_mismatch),
        cmocka_unit_test(test_windows_follow_the_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
