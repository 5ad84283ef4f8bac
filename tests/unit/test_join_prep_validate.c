/* SetLogTimestamp and validation (src/jobs/join/validate.h, spec/flat-output.md §2.1, §2.2,
 * §20 scenario 3): the log timestamp on a copy, each rule of §2.2 with the ids its row carries,
 * the DeliveryLog rows the reference drops (spec README: they go to validation_error), the
 * dots-only matrix header, and the operator's two ports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/pb_util.h"
#include "google/protobuf/struct.pb-c.h"
#include "jobs/join/validate.h"
#include "runtime/graph.h"

static pb_arena *arena;

static int setup(void **state)
{
    arena = pb_arena_new(4096, 1 << 20);
    return arena ? 0 : -1;
}

static int teardown(void **state)
{
    pb_arena_free(arena);
    return 0;
}

static ProtobufCAllocator *A(void)
{
    return pb_arena_allocator(arena);
}

static const char *const rt_names[] = {"USER",
                                       "VIEW",
                                       "DELIVERY_LOG",
                                       "REQUEST",
                                       "REQUEST_INSERTION",
                                       "EXECUTION_INSERTION",
                                       "RESPONSE_INSERTION",
                                       "IMPRESSION",
                                       "ACTION"};
static const char *const et_names[] = {"MISSING_FIELD", "MISSING_JOINABLE_ID",
                                       "MISMATCHED_MATRIX_HEADER_LENGTH"};
static const char *const f_names[] = {"MULTIPLE",       "PLATFORM_ID",  "LOG_USER_ID",
                                      "USER_ID",        "SESSION_ID",   "VIEW_ID",
                                      "REQUEST_ID",     "INSERTION_ID", "CONTENT_ID",
                                      "IMPRESSION_ID",  "ACTION_ID",    "CART_CONTENT_QUANTITY",
                                      "CART_CONTENT_ID"};

/* One row as text: "TYPE ERROR FIELD p=.. u=.. v=.. r=.. i=.. m=.. a=.. t=clt/eat/lt". */
static void row_text(const join_validation_error *e, char *buf, size_t cap)
{
#define S(x) ((x) ? (x) : "")
    snprintf(buf, cap, "%s %s %s p=%lld u=%s v=%s r=%s i=%s m=%s a=%s t=%lld/%lld/%lld",
             rt_names[e->record_type], et_names[e->error_type], f_names[e->field],
             (long long)e->platform_id, S(e->log_user_id), S(e->view_id), S(e->request_id),
             S(e->response_insertion_id), S(e->impression_id), S(e->action_id),
             (long long)e->client_log_timestamp, (long long)e->event_api_timestamp,
             (long long)e->log_timestamp);
#undef S
}

static Common__UserInfo *user(const char *luid)
{
    static Common__UserInfo u[16];
    static int next;
    Common__UserInfo init = COMMON__USER_INFO__INIT;
    Common__UserInfo *p = &u[next++ % 16];
    *p = init;
    p->log_user_id = (char *)luid;
    return p;
}

/* ---- SetLogTimestamp ---- */

static void test_set_log_timestamp_creates_timing_on_a_copy(void **state)
{
    (void)state;
    Event__View v = EVENT__VIEW__INIT;
    v.view_id = "v1";
    void *out;
    assert_int_equal(validate_set_log_timestamp(VALIDATE_VIEW, &v, 1601596151000, A(), &out), 0);
    Event__View *c = out;
    assert_ptr_not_equal(c, &v);
    assert_non_null(c->timing);
    assert_true(c->timing->has_log_timestamp);
    assert_int_equal(c->timing->log_timestamp, 1601596151000);
    assert_string_equal(c->view_id, "v1");
    assert_null(v.timing); /* the borrowed input is untouched */
}

static void test_set_log_timestamp_overwrites_and_keeps_the_other_timing_fields(void **state)
{
    (void)state;
    Common__Timing t = COMMON__TIMING__INIT;
    t.has_client_log_timestamp = 1, t.client_log_timestamp = 5;
    t.has_event_api_timestamp = 1, t.event_api_timestamp = 7;
    t.has_log_timestamp = 1, t.log_timestamp = 99;
    Event__Impression im = EVENT__IMPRESSION__INIT;
    im.timing = &t;
    void *out;
    assert_int_equal(validate_set_log_timestamp(VALIDATE_IMPRESSION, &im, 300, A(), &out), 0);
    Event__Impression *c = out;
    assert_int_equal(c->timing->log_timestamp, 300);
    assert_int_equal(c->timing->client_log_timestamp, 5);
    assert_int_equal(c->timing->event_api_timestamp, 7);
    assert_int_equal(t.log_timestamp, 99);

    Event__Action ac = EVENT__ACTION__INIT;
    assert_int_equal(validate_set_log_timestamp(VALIDATE_ACTION, &ac, 0, A(), &out), 0);
    /* a zero time stays unset, as proto3 writes it */
    assert_false(((Event__Action *)out)->timing->has_log_timestamp);
}

static void test_set_log_timestamp_of_a_delivery_log_is_on_request_timing(void **state)
{
    (void)state;
    Delivery__DeliveryLog dl = DELIVERY__DELIVERY_LOG__INIT;
    void *out;
    assert_int_equal(validate_set_log_timestamp(VALIDATE_DELIVERY_LOG, &dl, 42, A(), &out), 0);
    Delivery__DeliveryLog *c = out;
    assert_non_null(c->request);
    assert_int_equal(c->request->timing->log_timestamp, 42);
    assert_null(dl.request);

    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    rq.request_id = "r1";
    dl.request = &rq;
    assert_int_equal(validate_set_log_timestamp(VALIDATE_DELIVERY_LOG, &dl, 43, A(), &out), 0);
    c = out;
    assert_ptr_not_equal(c->request, &rq);
    assert_string_equal(c->request->request_id, "r1");
    assert_int_equal(c->request->timing->log_timestamp, 43);
    assert_null(rq.timing);
}

/* ---- rules ---- */

static void expect_rows(validate_kind kind, const void *msg, const char *const *want, size_t n)
{
    join_validation_error errs[VALIDATE_MAX_ERRORS];
    size_t got = validate_record(kind, msg, errs);
    char buf[512];
    for (size_t i = 0; i < got && i < n; i++) {
        row_text(&errs[i], buf, sizeof buf);
        assert_string_equal(buf, want[i]);
    }
    if (got != n) {
        if (got) row_text(&errs[0], buf, sizeof buf);
        fail_msg("%zu rows, expected %zu (first: %s)", got, n, got ? buf : "-");
    }
}

static void test_view_without_log_user_id_is_a_missing_field(void **state)
{
    (void)state;
    Common__Timing t = COMMON__TIMING__INIT;
    t.client_log_timestamp = 1, t.event_api_timestamp = 2, t.log_timestamp = 3;
    Event__View v = EVENT__VIEW__INIT;
    v.platform_id = 1, v.view_id = "v1", v.timing = &t, v.user_info = user("");
    const char *want[] = {"VIEW MISSING_FIELD LOG_USER_ID p=1 u= v=v1 r= i= m= a= t=1/2/3"};
    expect_rows(VALIDATE_VIEW, &v, want, 1);
    v.user_info = NULL;
    expect_rows(VALIDATE_VIEW, &v, want, 1);
    v.user_info = user("u1");
    expect_rows(VALIDATE_VIEW, &v, NULL, 0);
}

/* §20 scenario 3: no user and no joinable id: two rows. */
static void test_impression_without_user_and_joinable_ids_gives_two_rows(void **state)
{
    (void)state;
    Event__Impression im = EVENT__IMPRESSION__INIT;
    im.platform_id = 1, im.impression_id = "m1", im.request_id = "r1", im.view_id = "v1";
    const char *want[] = {
        "IMPRESSION MISSING_FIELD LOG_USER_ID p=1 u= v=v1 r=r1 i= m=m1 a= t=0/0/0",
        "IMPRESSION MISSING_JOINABLE_ID MULTIPLE p=1 u= v=v1 r=r1 i= m=m1 a= t=0/0/0",
    };
    expect_rows(VALIDATE_IMPRESSION, &im, want, 2);
    im.user_info = user("u1");
    im.content_id = "c1"; /* a content id alone is joinable */
    expect_rows(VALIDATE_IMPRESSION, &im, NULL, 0);
    im.content_id = NULL;
    im.insertion_id = "i1";
    expect_rows(VALIDATE_IMPRESSION, &im, NULL, 0);
}

static Event__CartContent *content(const char *id, int64_t qty)
{
    static Event__CartContent c[16];
    static int next;
    Event__CartContent init = EVENT__CART_CONTENT__INIT;
    Event__CartContent *p = &c[next++ % 16];
    *p = init;
    p->content_id = (char *)id;
    p->has_quantity = qty != 0;
    p->quantity = qty;
    return p;
}

static void test_action_rules_give_one_row_per_failed_rule(void **state)
{
    (void)state;
    Event__Action ac = EVENT__ACTION__INIT;
    ac.platform_id = 2, ac.action_id = "a1";
    /* no ids and no cart: vacuously no cart id */
    const char *no_ids[] = {
        "ACTION MISSING_FIELD LOG_USER_ID p=2 u= v= r= i= m= a=a1 t=0/0/0",
        "ACTION MISSING_JOINABLE_ID MULTIPLE p=2 u= v= r= i= m= a=a1 t=0/0/0",
    };
    expect_rows(VALIDATE_ACTION, &ac, no_ids, 2);

    ac.user_info = user("u1");
    Event__CartContent *items[2] = {content("c1", 2), content("c2", 0)};
    Event__Cart cart = EVENT__CART__INIT;
    cart.n_contents = 2, cart.contents = items;
    ac.cart = &cart;
    /* §20 scenario 3: a cart item with quantity 0; the cart's ids make it joinable */
    const char *qty[] = {
        "ACTION MISSING_FIELD CART_CONTENT_QUANTITY p=2 u=u1 v= r= i= m= a=a1 t=0/0/0",
    };
    expect_rows(VALIDATE_ACTION, &ac, qty, 1);

    /* every rule at once, in the table's order */
    ac.user_info = NULL;
    items[0] = content("", 1);
    items[1] = content(NULL, 0);
    const char *all[] = {
        "ACTION MISSING_FIELD LOG_USER_ID p=2 u= v= r= i= m= a=a1 t=0/0/0",
        "ACTION MISSING_JOINABLE_ID MULTIPLE p=2 u= v= r= i= m= a=a1 t=0/0/0",
        "ACTION MISSING_FIELD CART_CONTENT_QUANTITY p=2 u= v= r= i= m= a=a1 t=0/0/0",
        "ACTION MISSING_FIELD CART_CONTENT_ID p=2 u= v= r= i= m= a=a1 t=0/0/0",
    };
    expect_rows(VALIDATE_ACTION, &ac, all, 4);

    /* an impression id makes it joinable; an empty cart message has nothing to check */
    ac.user_info = user("u1");
    ac.impression_id = "m1";
    cart.n_contents = 0;
    expect_rows(VALIDATE_ACTION, &ac, NULL, 0);
    ac.cart = NULL;
    ac.impression_id = NULL;
    ac.insertion_id = "i1";
    expect_rows(VALIDATE_ACTION, &ac, NULL, 0);
}

static Google__Protobuf__Value *str_value(const char *s)
{
    Google__Protobuf__Value init = GOOGLE__PROTOBUF__VALUE__INIT;
    Google__Protobuf__Value *v = A()->alloc(A()->allocator_data, sizeof *v);
    *v = init;
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = (char *)s;
    return v;
}

/* A matrix row of n string values. */
static Google__Protobuf__Value *row(size_t n)
{
    Google__Protobuf__ListValue linit = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
    Google__Protobuf__ListValue *l = A()->alloc(A()->allocator_data, sizeof *l);
    *l = linit;
    l->n_values = n;
    l->values = A()->alloc(A()->allocator_data, (n ? n : 1) * sizeof *l->values);
    for (size_t i = 0; i < n; i++)
        l->values[i] = str_value("x");
    Google__Protobuf__Value *v = str_value(NULL);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    v->list_value = l;
    return v;
}

typedef struct dl_parts {
    Delivery__DeliveryLog dl;
    Delivery__Request rq;
    Google__Protobuf__ListValue matrix;
    Google__Protobuf__Value *rows[4];
    char *headers[4];
    Common__Timing t;
} dl_parts;

static void dl_init(dl_parts *p, const char *const *headers, size_t nh, const size_t *row_len,
                    size_t nrows)
{
    Delivery__DeliveryLog di = DELIVERY__DELIVERY_LOG__INIT;
    Delivery__Request ri = DELIVERY__REQUEST__INIT;
    Google__Protobuf__ListValue li = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
    Common__Timing ti = COMMON__TIMING__INIT;
    p->dl = di, p->rq = ri, p->matrix = li, p->t = ti;
    p->dl.platform_id = 9; /* the row carries request.platform_id */
    p->dl.request = &p->rq;
    p->rq.platform_id = 1, p->rq.request_id = "r1", p->rq.view_id = "v1";
    p->rq.user_info = user("u1");
    p->t.event_api_timestamp = 1601596151000, p->t.log_timestamp = 1601596151000;
    p->rq.timing = &p->t;
    for (size_t i = 0; i < nh; i++)
        p->headers[i] = (char *)headers[i];
    p->rq.n_insertion_matrix_headers = nh;
    p->rq.insertion_matrix_headers = p->headers;
    for (size_t i = 0; i < nrows; i++)
        p->rows[i] = row(row_len[i]);
    p->matrix.n_values = nrows;
    p->matrix.values = p->rows;
    p->rq.insertion_matrix = &p->matrix;
}

/* §20 scenario 3: the reference drops such a DeliveryLog silently; logproc writes the row. */
static void test_delivery_log_with_a_longer_matrix_row_is_a_mismatched_header_length(void **state)
{
    (void)state;
    dl_parts p;
    const char *h[] = {"contentId", "storeId"};
    size_t lens[] = {2, 3};
    dl_init(&p, h, 2, lens, 2);
    const char *want[] = {"DELIVERY_LOG MISMATCHED_MATRIX_HEADER_LENGTH MULTIPLE p=1 u=u1 v=v1 "
                          "r=r1 i= m= a= t=0/1601596151000/1601596151000"};
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, want, 1);
    size_t ok[] = {2, 2};
    dl_init(&p, h, 2, ok, 2);
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, NULL, 0);
    /* a row that is not a list counts as empty */
    p.rows[1] = str_value("not a list");
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, want, 1);
}

static void test_delivery_log_without_log_user_id_is_a_missing_field(void **state)
{
    (void)state;
    dl_parts p;
    dl_init(&p, NULL, 0, NULL, 0);
    p.rq.user_info = NULL;
    const char *want[] = {"DELIVERY_LOG MISSING_FIELD LOG_USER_ID p=1 u= v=v1 r=r1 i= m= a= "
                          "t=0/1601596151000/1601596151000"};
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, want, 1);
    Delivery__DeliveryLog bare = DELIVERY__DELIVERY_LOG__INIT;
    const char *want_bare[] = {
        "DELIVERY_LOG MISSING_FIELD LOG_USER_ID p=0 u= v= r= i= m= a= t=0/0/0"};
    expect_rows(VALIDATE_DELIVERY_LOG, &bare, want_bare, 1);
}

/* The reference's RestructureDeliveryLog throws on a header made only of dots (Java's split gives
 * no segment) and fails the job; here it is a validation error instead (spec README). */
static void test_delivery_log_header_made_only_of_dots_is_a_validation_error(void **state)
{
    (void)state;
    dl_parts p;
    size_t lens[] = {2};
    const char *want[] = {"DELIVERY_LOG MISMATCHED_MATRIX_HEADER_LENGTH MULTIPLE p=1 u=u1 v=v1 "
                          "r=r1 i= m= a= t=0/1601596151000/1601596151000"};
    const char *dots[] = {"contentId", "..."};
    dl_init(&p, dots, 2, lens, 1);
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, want, 1);
    const char *dot[] = {".", "contentId"};
    dl_init(&p, dot, 2, lens, 1);
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, want, 1);
    /* headers that do name a path: "" (key ""), "a." (key a), ".a" ({"": {a}}) */
    const char *fine[] = {"", "a."};
    dl_init(&p, fine, 2, lens, 1);
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, NULL, 0);
    const char *lead[] = {".a", "b"};
    dl_init(&p, lead, 2, lens, 1);
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, NULL, 0);
    /* without matrix rows nothing is restructured, so the header harms nothing */
    dl_init(&p, dots, 2, NULL, 0);
    expect_rows(VALIDATE_DELIVERY_LOG, &p.dl, NULL, 0);
}

/* ---- operator ---- */

typedef struct capture {
    char lines[16][512];
    int n;
} capture;

static int capture_process(rt_op *op, int input, const rt_record *rec)
{
    capture *c = rt_op_self(op);
    char *line = c->lines[c->n++ % 16];
    char key[64] = "";
    for (size_t i = 0; i < rec->key_len && i < 20; i++)
        snprintf(key + strlen(key), sizeof key - strlen(key), "%c", rec->key[i]);
    if (rec->type == REC_VALIDATION_ERROR) {
        char row[400];
        row_text(rec->data, row, sizeof row);
        snprintf(line, 512, "ts=%lld key=%s %s", (long long)rec->ts, key, row);
    } else if (rec->type == REC_VIEW) {
        const Event__View *v = rec->data;
        snprintf(line, 512, "ts=%lld key=%s view %s lt=%llu", (long long)rec->ts, key, v->view_id,
                 (unsigned long long)(v->timing ? v->timing->log_timestamp : 0));
    } else {
        snprintf(line, 512, "ts=%lld type=%d", (long long)rec->ts, rec->type);
    }
    return 0;
}

static void capture_close(rt_op *op) {}

static const rt_op_vtbl capture_vt = {.process = capture_process, .close = capture_close};

static void test_validate_op_routes_valid_records_and_error_rows(void **state)
{
    (void)state;
    rt_graph *g;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *vop, *main_sink, *err_sink;
    capture main_c = {.n = 0}, err_c = {.n = 0};
    assert_int_equal(validate_op_add(g, "validate-view", VALIDATE_VIEW, &vop), 0);
    assert_int_equal(rt_graph_add_op(g, "sink-main", NULL, &capture_vt, &main_c, 1, 0, &main_sink),
                     0);
    assert_int_equal(rt_graph_add_op(g, "sink-errors", NULL, &capture_vt, &err_c, 1, 0, &err_sink),
                     0);
    assert_int_equal(rt_graph_connect(g, vop, 0, main_sink, 0), 0);
    assert_int_equal(rt_graph_connect(g, vop, 1, err_sink, 0), 0);
    char err[256];
    assert_int_equal(rt_graph_open(g, err, sizeof err), 0);

    Event__View good = EVENT__VIEW__INIT, bad = EVENT__VIEW__INIT;
    good.view_id = "v1", good.platform_id = 1, good.user_info = user("u1");
    bad.view_id = "v2", bad.platform_id = 1;
    rt_record r1 = {
        .ts = 100, .type = REC_VIEW, .data = &good, .key = (const uint8_t *)"K1", .key_len = 2};
    rt_record r2 = {
        .ts = 200, .type = REC_VIEW, .data = &bad, .key = (const uint8_t *)"K2", .key_len = 2};
    assert_int_equal(rt_graph_push(g, vop, 0, &r1), 0);
    assert_int_equal(rt_graph_push(g, vop, 0, &r2), 0);
    assert_int_equal(main_c.n, 1);
    assert_string_equal(main_c.lines[0], "ts=100 key=K1 view v1 lt=100");
    assert_int_equal(err_c.n, 1);
    assert_string_equal(err_c.lines[0], "ts=200 key=K2 VIEW MISSING_FIELD LOG_USER_ID p=1 u= v=v2 "
                                        "r= i= m= a= t=0/0/200");
    assert_null(good.timing);

    /* a record of another stream is a wiring error, not data */
    Event__Impression im = EVENT__IMPRESSION__INIT;
    rt_record r3 = {.ts = 300, .type = REC_IMPRESSION, .data = &im};
    assert_int_equal(rt_graph_push(g, vop, 0, &r3), -1);
    assert_non_null(strstr(rt_graph_error(g), "validate-view"));
    rt_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_log_timestamp_creates_timing_on_a_copy),
        cmocka_unit_test(test_set_log_timestamp_overwrites_and_keeps_the_other_timing_fields),
        cmocka_unit_test(test_set_log_timestamp_of_a_delivery_log_is_on_request_timing),
        cmocka_unit_test(test_view_without_log_user_id_is_a_missing_field),
        cmocka_unit_test(test_impression_without_user_and_joinable_ids_gives_two_rows),
        cmocka_unit_test(test_action_rules_give_one_row_per_failed_rule),
        cmocka_unit_test(test_delivery_log_with_a_longer_matrix_row_is_a_mismatched_header_length),
        cmocka_unit_test(test_delivery_log_without_log_user_id_is_a_missing_field),
        cmocka_unit_test(test_delivery_log_header_made_only_of_dots_is_a_validation_error),
        cmocka_unit_test(test_validate_op_routes_valid_records_and_error_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
