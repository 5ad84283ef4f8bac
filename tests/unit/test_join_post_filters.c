/* Post-merge filters (spec/flat-output.md §12.1), the JoinedEvent accessors, and user_id
 * stripping (§12.4), through graphs where an operator is involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "formats/pb_private.h"
#include "formats/pb_util.h"
#include "jobs/join/joined_filters.h"
#include "jobs/join/strip_user_id.h"
#include "test_join_post_util.h"

/* A joined event with every user-bearing part present. */
typedef struct full_rec {
    Event__JoinedEvent j;
    Event__JoinedIdentifiers ids;
    Event__User user;
    Logproc__Priv__SessionProfile sp;
    Logproc__Priv__Session session;
    Event__View view;
    Event__AutoView auto_view;
    Delivery__Request req;
    Event__Impression imp;
    Event__Action act;
    Delivery__Insertion exec;
    Common__UserInfo ui[8];
} full_rec;

enum { UI_USER, UI_SP, UI_SESSION, UI_VIEW, UI_AUTO_VIEW, UI_REQ, UI_IMP, UI_ACT };

static void full_init(full_rec *r)
{
    memset(r, 0, sizeof *r);
    Event__JoinedEvent j = EVENT__JOINED_EVENT__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    Event__User u = EVENT__USER__INIT;
    Logproc__Priv__SessionProfile sp = LOGPROC__PRIV__SESSION_PROFILE__INIT;
    Logproc__Priv__Session s = LOGPROC__PRIV__SESSION__INIT;
    Event__View v = EVENT__VIEW__INIT;
    Event__AutoView av = EVENT__AUTO_VIEW__INIT;
    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    Event__Impression im = EVENT__IMPRESSION__INIT;
    Event__Action ac = EVENT__ACTION__INIT;
    Delivery__Insertion ex = DELIVERY__INSERTION__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    r->j = j;
    r->ids = ids;
    r->user = u;
    r->sp = sp;
    r->session = s;
    r->view = v;
    r->auto_view = av;
    r->req = rq;
    r->imp = im;
    r->act = ac;
    r->exec = ex;
    for (int i = 0; i < 8; i++) {
        r->ui[i] = ui;
        r->ui[i].user_id = S("uid");
        r->ui[i].anon_user_id = S("anon");
    }
    r->ids.user_id = S("uid");
    r->ids.log_user_id = S("u1");
    r->user.user_info = &r->ui[UI_USER];
    r->sp.user_info = &r->ui[UI_SP];
    r->session.user_info = &r->ui[UI_SESSION];
    r->view.user_info = &r->ui[UI_VIEW];
    r->auto_view.user_info = &r->ui[UI_AUTO_VIEW];
    r->req.user_info = &r->ui[UI_REQ];
    r->imp.user_info = &r->ui[UI_IMP];
    r->act.user_info = &r->ui[UI_ACT];
    r->j.ids = &r->ids;
    r->j.user = &r->user;
    r->j.session_profile = &r->sp;
    r->j.session = &r->session;
    r->j.view = &r->view;
    r->j.auto_view = &r->auto_view;
    r->j.request = &r->req;
    r->j.impression = &r->imp;
    r->j.action = &r->act;
}

/* ---------------------------------------------------------------- filter operator */

typedef struct fixture {
    rt_graph *g;
    rt_op *op;
    capture kept, ignored, non_buyer;
} fixture;

static void fx_build(fixture *f, joined_filter_kind kind, const int64_t *hashes, size_t n)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(rt_graph_new(NULL, &f->g), 0);
    joined_filter_config c = {.kind = kind, .non_buyer_hashes = hashes, .n_non_buyer_hashes = n};
    assert_int_equal(joined_filter_op_add(f->g, "filter-joined-impression", &c, &f->op), 0);
    capture_port(f->g, "capture-kept", &f->kept, f->op, 0);
    capture_port(f->g, "capture-ignored", &f->ignored, f->op, 1);
    capture_port(f->g, "capture-non-buyer", &f->non_buyer, f->op, 2);
    graph_open_ok(f->g);
}

static void fx_free(fixture *f)
{
    rt_graph_free(f->g);
    capture_free(&f->kept);
    capture_free(&f->ignored);
    capture_free(&f->non_buyer);
}

/* Where one joined event goes: 0 kept, 1 ignore_usage, 2 non-buyer. */
static int route(fixture *f, const Event__JoinedEvent *j)
{
    size_t k = f->kept.n, i = f->ignored.n, n = f->non_buyer.n;
    push_ok(f->g, f->op, 0, REC_JOINED_EVENT, j, 1234);
    int port = f->kept.n > k ? 0 : f->ignored.n > i ? 1 : 2;
    assert_int_equal((f->kept.n - k) + (f->ignored.n - i) + (f->non_buyer.n - n), 1);
    return port;
}

static void test_ignore_usage_anywhere_drops_the_joined_event(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f, JOINED_FILTER_IMPRESSION, NULL, 0);
    full_rec r;
    full_init(&r);
    assert_int_equal(route(&f, &r.j), 0);
    /* the six places the reference looks at; auto_view and session_profile are not among them */
    static const int places[6] = {UI_ACT, UI_IMP, UI_REQ, UI_VIEW, UI_SESSION, UI_USER};
    for (int p = 0; p < 6; p++) {
        full_init(&r);
        r.ui[places[p]].has_ignore_usage = 1;
        r.ui[places[p]].ignore_usage = 1;
        assert_int_equal(route(&f, &r.j), 1);
    }
    full_init(&r);
    r.ui[UI_AUTO_VIEW].has_ignore_usage = r.ui[UI_AUTO_VIEW].ignore_usage = 1;
    r.ui[UI_SP].has_ignore_usage = r.ui[UI_SP].ignore_usage = 1;
    assert_int_equal(route(&f, &r.j), 0);
    /* present but false keeps it */
    full_init(&r);
    r.ui[UI_REQ].has_ignore_usage = 1;
    assert_int_equal(route(&f, &r.j), 0);
    /* the record passes as it came, with its ts */
    assert_int_equal(f.ignored.recs[0].ts, 1234);
    fx_free(&f);
}

/* Sets exec's feature_stage.features.sparse_id to the pairs (malloc'd unknown field). */
static void set_sparse(Delivery__Insertion *exec, const uint64_t *keys, const int64_t *vals,
                       size_t n)
{
    Logproc__Priv__Features__SparseIdEntry e[4], *ep[4];
    for (size_t i = 0; i < n; i++) {
        Logproc__Priv__Features__SparseIdEntry x = LOGPROC__PRIV__FEATURES__SPARSE_ID_ENTRY__INIT;
        e[i] = x;
        e[i].has_key = e[i].has_value = 1;
        e[i].key = keys[i];
        e[i].value = vals[i];
        ep[i] = &e[i];
    }
    Logproc__Priv__Features feats = LOGPROC__PRIV__FEATURES__INIT;
    feats.n_sparse_id = n;
    feats.sparse_id = ep;
    Logproc__Priv__FeatureStage fs = LOGPROC__PRIV__FEATURE_STAGE__INIT;
    fs.features = &feats;
    assert_int_equal(pb_private_set_feature_stage(exec, &fs, NULL), 0);
}

static void test_non_buyer_sparse_hash_drops_the_joined_event(void **st)
{
    (void)st;
    static const int64_t hashes[2] = {42, (int64_t)4078401918190321518LL};
    fixture f;
    fx_build(&f, JOINED_FILTER_ACTION, hashes, 2);
    struct {
        size_t n;
        uint64_t keys[3];
        int64_t vals[3];
        int want;
    } cases[] = {
        {1, {42}, {1}, 2},        {1, {4078401918190321518ULL}, {1}, 2},
        {1, {42}, {2}, 0},        {1, {7}, {1}, 0},
        {2, {42, 42}, {1, 0}, 0}, /* a map keeps the last value */
        {2, {42, 42}, {0, 1}, 2}, {0, {0}, {0}, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        full_rec r;
        full_init(&r);
        r.j.api_execution_insertion = &r.exec;
        if (cases[k].n) set_sparse(&r.exec, cases[k].keys, cases[k].vals, cases[k].n);
        assert_int_equal(route(&f, &r.j), cases[k].want);
        pb_private_clear(&r.exec.base, NULL);
    }
    /* no API execution insertion: never a non-buyer */
    full_rec r;
    full_init(&r);
    assert_int_equal(route(&f, &r.j), 0);
    /* ignore_usage is tested first */
    full_init(&r);
    r.j.api_execution_insertion = &r.exec;
    uint64_t key = 42;
    int64_t one = 1;
    set_sparse(&r.exec, &key, &one, 1);
    r.ui[UI_IMP].ignore_usage = r.ui[UI_IMP].has_ignore_usage = 1;
    assert_int_equal(route(&f, &r.j), 1);
    pb_private_clear(&r.exec.base, NULL);
    fx_free(&f);
}

static void test_without_hashes_the_non_buyer_filter_is_off(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f, JOINED_FILTER_IMPRESSION, NULL, 0);
    full_rec r;
    full_init(&r);
    r.j.api_execution_insertion = &r.exec;
    uint64_t key = 42;
    int64_t one = 1;
    set_sparse(&r.exec, &key, &one, 1);
    assert_int_equal(route(&f, &r.j), 0);
    pb_private_clear(&r.exec.base, NULL);
    fx_free(&f);
}

static void test_flat_response_insertion_filters_look_into_its_lists(void **st)
{
    (void)st;
    static const int64_t hashes[1] = {42};
    fixture f;
    fx_build(&f, JOINED_FILTER_FLAT_RESPONSE_INSERTION, hashes, 1);
    Event__FlatResponseInsertion fri = EVENT__FLAT_RESPONSE_INSERTION__INIT;
    Event__Impression imp = EVENT__IMPRESSION__INIT;
    Event__Action act = EVENT__ACTION__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    Event__Impression *ip[1] = {&imp};
    Event__Action *ap[1] = {&act};
    fri.n_impression = 1;
    fri.impression = ip;
    fri.n_action = 1;
    fri.action = ap;
    int before = (int)f.kept.n;
    push_ok(f.g, f.op, 0, REC_FLAT_RESPONSE_INSERTION, &fri, 1);
    assert_int_equal((int)f.kept.n, before + 1);
    ui.has_ignore_usage = ui.ignore_usage = 1;
    act.user_info = &ui;
    push_ok(f.g, f.op, 0, REC_FLAT_RESPONSE_INSERTION, &fri, 2);
    assert_int_equal(f.ignored.n, 1);
    act.user_info = NULL;
    imp.user_info = &ui;
    push_ok(f.g, f.op, 0, REC_FLAT_RESPONSE_INSERTION, &fri, 3);
    assert_int_equal(f.ignored.n, 2);
    imp.user_info = NULL;
    Delivery__Insertion exec = DELIVERY__INSERTION__INIT;
    uint64_t key = 42;
    int64_t one = 1;
    set_sparse(&exec, &key, &one, 1);
    fri.api_execution_insertion = &exec;
    push_ok(f.g, f.op, 0, REC_FLAT_RESPONSE_INSERTION, &fri, 4);
    assert_int_equal(f.non_buyer.n, 1);
    pb_private_clear(&exec.base, NULL);
    /* a joined event on the FRI filter is a wiring error: the task fails with a message */
    Event__JoinedEvent j = EVENT__JOINED_EVENT__INIT;
    rt_record rec = {.ts = 5, .type = REC_JOINED_EVENT, .data = &j};
    assert_int_not_equal(rt_graph_push(f.g, f.op, 0, &rec), 0);
    assert_non_null(strstr(rt_graph_error(f.g), "unexpected record type"));
    fx_free(&f);
}

/* ---------------------------------------------------------------- accessors */

static void test_blank_follows_java_is_blank(void **st)
{
    (void)st;
    assert_true(joined_is_blank(NULL));
    assert_true(joined_is_blank(""));
    assert_true(joined_is_blank(" \t\n\x0b\f\r\x1c\x1f"));
    assert_true(joined_is_blank("\xe2\x80\x83"));  /* U+2003 em space */
    assert_true(joined_is_blank("\xe3\x80\x80"));  /* U+3000 */
    assert_false(joined_is_blank("\xc2\xa0"));     /* U+00A0 no-break space */
    assert_false(joined_is_blank("\xe2\x80\xaf")); /* U+202F */
    assert_false(joined_is_blank(" x "));
}

static void test_joined_event_key_fields_fall_back_in_reference_order(void **st)
{
    (void)st;
    full_rec r;
    full_init(&r);
    Delivery__Insertion resp = DELIVERY__INSERTION__INIT;
    r.j.response_insertion = &resp;
    r.ids.log_user_id = S("  ");
    r.ui[UI_USER].log_user_id = NULL;
    r.ui[UI_VIEW].log_user_id = S("from-view");
    r.ui[UI_REQ].log_user_id = S("from-request");
    assert_string_equal(joined_event_log_user_id(&r.j), "from-view");
    r.ui[UI_VIEW].log_user_id = NULL;
    assert_string_equal(joined_event_log_user_id(&r.j), "from-request");
    r.req.has_platform_id = 1;
    r.req.platform_id = 9;
    r.imp.platform_id = 8;
    assert_int_equal(joined_event_platform_id(&r.j), 9);
    r.ids.platform_id = 3;
    assert_int_equal(joined_event_platform_id(&r.j), 3);
    r.imp.insertion_id = S("from-impression");
    assert_string_equal(joined_event_insertion_id(&r.j), "from-impression");
    resp.insertion_id = S("from-response");
    assert_string_equal(joined_event_insertion_id(&r.j), "from-response");
    r.ids.insertion_id = S("from-ids");
    assert_string_equal(joined_event_insertion_id(&r.j), "from-ids");
    Event__JoinedEvent empty = EVENT__JOINED_EVENT__INIT;
    assert_string_equal(joined_event_log_user_id(&empty), "");
    assert_int_equal(joined_event_platform_id(&empty), 0);
}

/* ---------------------------------------------------------------- user_id stripping */

static void assert_no_user_id(const Event__JoinedEvent *j)
{
    assert_null(j->ids->user_id);
    const Common__UserInfo *uis[8] = {
        j->user->user_info,       j->session_profile->user_info, j->session->user_info,
        j->view->user_info,       j->auto_view->user_info,       j->request->user_info,
        j->impression->user_info, j->action->user_info,
    };
    for (int i = 0; i < 8; i++) {
        assert_non_null(uis[i]); /* stays present */
        assert_null(uis[i]->user_id);
        assert_string_equal(nz(uis[i]->anon_user_id), "anon");
    }
}

static void test_user_id_is_cleared_everywhere_without_touching_the_input(void **st)
{
    (void)st;
    pb_arena *arena = pb_arena_new(4096, 1 << 20);
    full_rec r;
    full_init(&r);
    const Event__JoinedEvent *out;
    assert_int_equal(strip_user_id_joined_event(&r.j, pb_arena_allocator(arena), &out), 0);
    assert_ptr_not_equal(out, &r.j);
    assert_no_user_id(out);
    assert_string_equal(nz(out->ids->log_user_id), "u1");
    for (int i = 0; i < 8; i++)
        assert_string_equal(nz(r.ui[i].user_id), "uid");
    assert_string_equal(nz(r.ids.user_id), "uid");
    /* nothing to clear: the input itself */
    const Event__JoinedEvent *again;
    assert_int_equal(strip_user_id_joined_event(out, pb_arena_allocator(arena), &again), 0);
    assert_ptr_equal(again, out);
    pb_arena_free(arena);
}

static void test_user_id_is_cleared_in_flat_lists_and_dropped_events(void **st)
{
    (void)st;
    pb_arena *arena = pb_arena_new(4096, 1 << 20);
    ProtobufCAllocator *a = pb_arena_allocator(arena);
    full_rec r;
    full_init(&r);
    Event__FlatResponseInsertion fri = EVENT__FLAT_RESPONSE_INSERTION__INIT;
    Event__Impression *ip[2] = {&r.imp, &r.imp};
    Event__Action *ap[1] = {&r.act};
    fri.ids = &r.ids;
    fri.request = &r.req;
    fri.n_impression = 2;
    fri.impression = ip;
    fri.n_action = 1;
    fri.action = ap;
    const Event__FlatResponseInsertion *fo;
    assert_int_equal(strip_user_id_flat_response_insertion(&fri, a, &fo), 0);
    assert_null(fo->ids->user_id);
    assert_null(fo->request->user_info->user_id);
    assert_null(fo->impression[0]->user_info->user_id);
    assert_null(fo->impression[1]->user_info->user_id);
    assert_null(fo->action[0]->user_info->user_id);
    assert_ptr_equal(fri.impression, ip);
    assert_string_equal(nz(r.imp.user_info->user_id), "uid");

    Event__DroppedMergeDetailsEvent d = EVENT__DROPPED_MERGE_DETAILS_EVENT__INIT;
    Event__TinyEvent t = tiny_ev(1, "u1", 5, NULL, NULL, NULL, NULL, "m1", NULL);
    d.tiny_event = &t;
    d.joined_event = &r.j;
    const Event__DroppedMergeDetailsEvent *dout;
    assert_int_equal(strip_user_id_dropped_merge_details(&d, a, &dout), 0);
    assert_no_user_id(dout->joined_event);
    assert_ptr_equal(dout->tiny_event, &t);
    pb_arena_free(arena);
}

static void test_strip_operator_passes_records_on_stripped(void **st)
{
    (void)st;
    rt_graph *g;
    rt_op *op;
    capture out = {0};
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    assert_int_equal(strip_user_id_op_add(g, "clear-user-id-joined-impressions", &op), 0);
    capture_port(g, "capture-out", &out, op, 0);
    graph_open_ok(g);
    full_rec r;
    full_init(&r);
    push_ok(g, op, 0, REC_JOINED_EVENT, &r.j, 77);
    Event__TinyEvent t = tiny_ev(1, "u1", 5, NULL, NULL, NULL, NULL, "m1", NULL);
    push_ok(g, op, 0, REC_TINY_EVENT, &t, 78); /* not a joined record: as it came */
    assert_int_equal(out.n, 2);
    assert_int_equal(out.recs[0].ts, 77);
    Event__JoinedEvent *j = cap_joined(&out, 0);
    assert_no_user_id(j);
    event__joined_event__free_unpacked(j, NULL);
    assert_int_equal(out.recs[1].type, REC_TINY_EVENT);
    rt_graph_free(g);
    capture_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ignore_usage_anywhere_drops_the_joined_event),
        cmocka_unit_test(test_non_buyer_sparse_hash_drops_the_joined_event),
        cmocka_unit_test(test_without_hashes_the_non_buyer_filter_is_off),
        cmocka_unit_test(test_flat_response_insertion_filters_look_into_its_lists),
        cmocka_unit_test(test_blank_follows_java_is_blank),
        cmocka_unit_test(test_joined_event_key_fields_fall_back_in_reference_order),
        cmocka_unit_test(test_user_id_is_cleared_everywhere_without_touching_the_input),
        cmocka_unit_test(test_user_id_is_cleared_in_flat_lists_and_dropped_events),
        cmocka_unit_test(test_strip_operator_passes_records_on_stripped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
