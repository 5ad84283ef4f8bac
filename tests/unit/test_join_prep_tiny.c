/* Tiny records (src/jobs/join/tiny.h, spec/flat-output.md §6): the View, Impression, Action and
 * CombinedDeliveryLog conversions, the other content ids of --contentIdFieldKeys, the
 * CHECKOUT/PURCHASE cart split, proto3 presence of the results, and the operator's keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/java_text.h"

#include "formats/pb_util.h"
#include "google/protobuf/struct.pb-c.h"
#include "jobs/common_ops.h"
#include "jobs/join/join_records.h"
#include "jobs/join/tiny.h"
#include "runtime/graph.h"

static pb_arena *arena;

static int setup(void **state)
{
    arena = pb_arena_new(4096, 4 << 20);
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

static void *anew(size_t n)
{
    void *p = A()->alloc(A()->allocator_data, n);
    memset(p, 0, n);
    return p;
}

/* ---- building records ---- */

static Common__UserInfo *user(const char *luid)
{
    Common__UserInfo init = COMMON__USER_INFO__INIT, *u = anew(sizeof *u);
    *u = init;
    u->log_user_id = (char *)luid;
    return u;
}

static Common__Timing *lt(uint64_t t)
{
    Common__Timing init = COMMON__TIMING__INIT, *p = anew(sizeof *p);
    *p = init;
    p->has_log_timestamp = 1, p->log_timestamp = t;
    return p;
}

static Google__Protobuf__Value *value(int kind)
{
    Google__Protobuf__Value init = GOOGLE__PROTOBUF__VALUE__INIT, *v = anew(sizeof *v);
    *v = init;
    v->kind_case = (Google__Protobuf__Value__KindCase)kind;
    return v;
}

static Google__Protobuf__Value *vstr(const char *s)
{
    Google__Protobuf__Value *v = value(GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
    v->string_value = (char *)s;
    return v;
}

static Google__Protobuf__Value *vnum(double d)
{
    Google__Protobuf__Value *v = value(GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
    v->number_value = d;
    return v;
}

static Google__Protobuf__Value *vbool(int b)
{
    Google__Protobuf__Value *v = value(GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
    v->bool_value = b;
    return v;
}

/* Properties with a struct of n (key, value) pairs. */
static Common__Properties *props(size_t n, ...)
{
    Google__Protobuf__Struct sinit = GOOGLE__PROTOBUF__STRUCT__INIT, *s = anew(sizeof *s);
    *s = sinit;
    s->n_fields = n;
    s->fields = anew((n ? n : 1) * sizeof *s->fields);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        Google__Protobuf__Struct__FieldsEntry einit = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
        Google__Protobuf__Struct__FieldsEntry *e = anew(sizeof *e);
        *e = einit;
        e->key = va_arg(ap, char *);
        e->value = va_arg(ap, Google__Protobuf__Value *);
        s->fields[i] = e;
    }
    va_end(ap);
    Common__Properties pinit = COMMON__PROPERTIES__INIT, *p = anew(sizeof *p);
    *p = pinit;
    p->struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT;
    p->struct_ = s;
    return p;
}

static tiny_keys keys_of(size_t n, const char *const *names)
{
    tiny_keys k;
    char err[128];
    assert_int_equal(tiny_keys_init(&k, names, n, err, sizeof err), 0);
    return k;
}

/* "key=value,..." of a TinyEvent's other ids, keys as numbers, in map order. */
static void others_text(Event__TinyEvent__OtherContentIdsEntry **e, size_t n, char *buf, size_t cap)
{
    buf[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%d=%s", i ? "," : "", e[i]->key,
                 e[i]->value);
}

#define S(x) ((x) ? (x) : "-")

static void tiny_text(const Event__TinyEvent *t, char *buf, size_t cap)
{
    char o[256];
    others_text(t->other_content_ids, t->n_other_content_ids, o, sizeof o);
    snprintf(buf, cap, "p=%llu u=%s lt=%llu v=%s r=%s i=%s c=%s m=%s a=%s o={%s}",
             t->has_platform_id ? (unsigned long long)t->platform_id : 0ull, S(t->log_user_id),
             t->has_log_timestamp ? (unsigned long long)t->log_timestamp : 0ull, S(t->view_id),
             S(t->request_id), S(t->insertion_id), S(t->content_id), S(t->impression_id),
             S(t->action_id), o);
}

/* ---- View, Impression ---- */

static void test_view_becomes_tiny_event(void **state)
{
    (void)state;
    Event__View v = EVENT__VIEW__INIT;
    v.platform_id = 1, v.user_info = user("u1"), v.timing = lt(10), v.view_id = "v1";
    v.session_id = "s1";
    Event__TinyEvent t;
    tiny_of_view(&v, &t);
    char buf[512];
    tiny_text(&t, buf, sizeof buf);
    assert_string_equal(buf, "p=1 u=u1 lt=10 v=v1 r=- i=- c=- m=- a=- o={}");

    /* proto3 presence: "" and 0 are left unset, so nothing is written for them */
    Event__View empty = EVENT__VIEW__INIT;
    empty.user_info = user(""), empty.view_id = "";
    tiny_of_view(&empty, &t);
    assert_false(t.has_platform_id);
    assert_null(t.log_user_id);
    assert_null(t.view_id);
    assert_int_equal(event__tiny_event__get_packed_size(&t), 0);
}

static void test_impression_becomes_tiny_event_with_other_content_ids(void **state)
{
    (void)state;
    const char *names[] = {"storeId", "owner", "absent", "flag", "nested", "nothing", "off"};
    tiny_keys k = keys_of(7, names);
    Event__Impression im = EVENT__IMPRESSION__INIT;
    im.platform_id = 1, im.user_info = user("u1"), im.timing = lt(20);
    im.view_id = "v1", im.request_id = "r1", im.insertion_id = "i1", im.content_id = "c1";
    im.impression_id = "m1", im.session_id = "s1";
    im.properties = props(7, "owner", vnum(12), "storeId", vstr("s1"), "flag", vbool(1), "nested",
                          value(GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE), "nothing",
                          value(GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE), "off", vbool(0),
                          "unlisted", vstr("x"));
    Event__TinyEvent t;
    assert_int_equal(tiny_of_impression(&im, &k, A(), &t), 0);
    char buf[512], want[512];
    tiny_text(&t, buf, sizeof buf);
    /* flag order, not property order; a number by Double.toString; null/struct -> "" */
    snprintf(
        want, sizeof want,
        "p=1 u=u1 lt=20 v=v1 r=r1 i=i1 c=c1 m=m1 a=- o={%d=s1,%d=12.0,%d=true,%d=,%d=,%d=false}",
        java_string_hash("storeId", 7), 106164915, java_string_hash("flag", 4),
        java_string_hash("nested", 6), java_string_hash("nothing", 7), java_string_hash("off", 3));
    assert_string_equal(buf, want);

    /* without keys: no other ids at all */
    assert_int_equal(tiny_of_impression(&im, NULL, A(), &t), 0);
    assert_int_equal(t.n_other_content_ids, 0);
}

static void test_other_content_ids_read_only_the_top_level_and_the_last_duplicate(void **state)
{
    (void)state;
    const char *names[] = {"store"};
    tiny_keys k = keys_of(1, names);
    Event__TinyEvent__OtherContentIdsEntry **e;
    size_t n;
    /* a repeated key in the struct: the last one wins, as in a protobuf map */
    Common__Properties *p = props(2, "store", vstr("first"), "store", vnum(2.5));
    assert_int_equal(tiny_other_content_ids(p, &k, A(), &e, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(e[0]->key, 109770977);
    assert_string_equal(e[0]->value, "2.5");
    /* a key only inside a nested struct is not found */
    Google__Protobuf__Value *sv = value(GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
    sv->struct_value = props(1, "store", vstr("deep"))->struct_;
    p = props(1, "outer", sv);
    assert_int_equal(tiny_other_content_ids(p, &k, A(), &e, &n), 0);
    assert_int_equal(n, 0);
    /* properties as struct_bytes are not read (Java's getStruct() of them is empty) */
    Common__Properties raw = COMMON__PROPERTIES__INIT;
    raw.struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT_BYTES;
    assert_int_equal(tiny_other_content_ids(&raw, &k, A(), &e, &n), 0);
    assert_int_equal(n, 0);
    /* number formats */
    p = props(1, "store", vnum(1e7));
    assert_int_equal(tiny_other_content_ids(p, &k, A(), &e, &n), 0);
    assert_string_equal(e[0]->value, "1.0E7");
    /* a map entry is written whole (key and value), as Java's map codec does */
    p = props(1, "store", vstr(""));
    assert_int_equal(tiny_other_content_ids(p, &k, A(), &e, &n), 0);
    Event__TinyEvent t = EVENT__TINY_EVENT__INIT;
    t.n_other_content_ids = n, t.other_content_ids = e;
    uint8_t buf[32];
    size_t len = event__tiny_event__pack(&t, buf);
    /* field 11 LEN { field 1 varint 109770977, field 2 LEN 0 } */
    assert_int_equal(buf[0], (11 << 3) | 2);
    assert_int_equal(buf[2], 1 << 3);
    assert_int_equal(buf[len - 2], (2 << 3) | 2);
    assert_int_equal(buf[len - 1], 0);
}

/* ---- Action ---- */

static Event__Cart *cart_of(size_t n, const char *const *ids)
{
    Event__Cart init = EVENT__CART__INIT, *c = anew(sizeof *c);
    *c = init;
    c->n_contents = n;
    c->contents = anew((n ? n : 1) * sizeof *c->contents);
    for (size_t i = 0; i < n; i++) {
        Event__CartContent cinit = EVENT__CART_CONTENT__INIT, *cc = anew(sizeof *cc);
        *cc = cinit;
        cc->content_id = (char *)ids[i];
        cc->has_quantity = 1, cc->quantity = 1;
        c->contents[i] = cc;
    }
    return c;
}

static Event__Action base_action(void)
{
    Event__Action ac = EVENT__ACTION__INIT;
    ac.platform_id = 1, ac.user_info = user("u1"), ac.timing = lt(50);
    ac.view_id = "v1", ac.request_id = "r1", ac.insertion_id = "ins1", ac.impression_id = "imp1";
    ac.action_id = "act1";
    return ac;
}

static void test_action_becomes_one_tiny_event(void **state)
{
    (void)state;
    Event__Action ac = base_action();
    ac.content_id = "c9";
    ac.has_action_type = 1, ac.action_type = EVENT__ACTION_TYPE__NAVIGATE;
    const char *ids[] = {"content1"};
    ac.cart = cart_of(1, ids); /* a cart on another action type does not split */
    Event__TinyEvent **t;
    size_t n;
    assert_int_equal(tiny_of_action(&ac, NULL, A(), &t, &n), 0);
    assert_int_equal(n, 1);
    char buf[512];
    tiny_text(t[0], buf, sizeof buf);
    assert_string_equal(buf, "p=1 u=u1 lt=50 v=v1 r=r1 i=ins1 c=c9 m=imp1 a=act1 o={}");
}

/* §6: PURCHASE act1 with cart [content1, content2] and ins1/imp1 set -> two TinyEvents. */
static void test_purchase_with_a_cart_splits_into_one_tiny_event_per_content(void **state)
{
    (void)state;
    Event__Action ac = base_action();
    ac.has_action_type = 1, ac.action_type = EVENT__ACTION_TYPE__PURCHASE;
    const char *ids[] = {"content1", "content2"};
    ac.cart = cart_of(2, ids);
    Event__TinyEvent **t;
    size_t n;
    assert_int_equal(tiny_of_action(&ac, NULL, A(), &t, &n), 0);
    assert_int_equal(n, 2);
    char buf[512];
    tiny_text(t[0], buf, sizeof buf);
    assert_string_equal(buf, "p=1 u=u1 lt=50 v=- r=- i=- c=content1 m=- a=act1 o={}");
    tiny_text(t[1], buf, sizeof buf);
    assert_string_equal(buf, "p=1 u=u1 lt=50 v=- r=- i=- c=content2 m=- a=act1 o={}");
}

static void test_checkout_split_takes_each_distinct_id_once_in_first_seen_order(void **state)
{
    (void)state;
    const char *names[] = {"storeId"};
    tiny_keys k = keys_of(1, names);
    Event__Action ac = base_action();
    ac.has_action_type = 1, ac.action_type = EVENT__ACTION_TYPE__CHECKOUT;
    ac.content_id = "c2";
    ac.properties = props(1, "storeId", vstr("s1"));
    const char *ids[] = {"c1", "c2", "", "c1", "c3"};
    ac.cart = cart_of(5, ids);
    Event__TinyEvent **t;
    size_t n;
    assert_int_equal(tiny_of_action(&ac, &k, A(), &t, &n), 0);
    assert_int_equal(n, 3);
    const char *want[] = {"c2", "c1", "c3"};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(t[i]->content_id, want[i]);
        assert_string_equal(t[i]->action_id, "act1");
        assert_int_equal(t[i]->n_other_content_ids, 1); /* the action's other ids stay */
        assert_null(t[i]->impression_id);
    }
    /* a PURCHASE with an empty cart message is not split */
    ac.has_action_type = 1, ac.action_type = EVENT__ACTION_TYPE__PURCHASE;
    ac.cart = cart_of(0, NULL);
    assert_int_equal(tiny_of_action(&ac, &k, A(), &t, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(t[0]->impression_id, "imp1");
}

/* ---- CombinedDeliveryLog ---- */

typedef struct dl_parts {
    Delivery__DeliveryLog dl;
    Delivery__Request rq;
    Delivery__Response resp;
    Delivery__Insertion *resp_ins[4], *req_ins[4];
} dl_parts;

static Delivery__Insertion *ins(const char *id, const char *content, Common__Properties *p)
{
    Delivery__Insertion init = DELIVERY__INSERTION__INIT, *i = anew(sizeof *i);
    *i = init;
    i->insertion_id = (char *)id;
    i->content_id = (char *)content;
    i->properties = p;
    return i;
}

static void dl_init(dl_parts *p, uint64_t platform, const char *luid, const char *req, uint64_t t)
{
    Delivery__DeliveryLog di = DELIVERY__DELIVERY_LOG__INIT;
    Delivery__Request ri = DELIVERY__REQUEST__INIT;
    Delivery__Response si = DELIVERY__RESPONSE__INIT;
    p->dl = di, p->rq = ri, p->resp = si;
    p->dl.platform_id = platform;
    p->dl.request = &p->rq;
    p->dl.response = &p->resp;
    p->rq.user_info = user(luid);
    p->rq.request_id = (char *)req;
    p->rq.view_id = "v1";
    p->rq.timing = lt(t);
    p->resp.insertion = p->resp_ins;
    p->rq.insertion = p->req_ins;
}

static void test_combined_delivery_log_becomes_tiny_delivery_log_of_the_chosen_log(void **state)
{
    (void)state;
    dl_parts api, sdk;
    dl_init(&api, 5, "u-api", "r-api", 100);
    dl_init(&sdk, 6, "u-sdk", "r-sdk", 500);
    api.resp_ins[api.resp.n_insertion++] = ins("ia", "ca", NULL);
    sdk.resp_ins[sdk.resp.n_insertion++] = ins("i1", "c1", NULL);
    sdk.resp_ins[sdk.resp.n_insertion++] = ins("i2", "c2", NULL);
    Event__CombinedDeliveryLog c = EVENT__COMBINED_DELIVERY_LOG__INIT;
    c.api = &api.dl, c.sdk = &sdk.dl;
    Event__TinyDeliveryLog t;
    assert_int_equal(tiny_of_combined(&c, NULL, A(), &t), 0);
    /* the SDK log is chosen; platform_id is the API's when non-zero */
    assert_int_equal(t.platform_id, 5);
    assert_string_equal(t.log_user_id, "u-sdk");
    assert_string_equal(t.request_id, "r-sdk");
    assert_int_equal(t.log_timestamp, 500);
    assert_int_equal(t.n_response_insertion, 2);
    assert_string_equal(t.response_insertion[1]->insertion_id, "i2");
    assert_string_equal(t.response_insertion[1]->content_id, "c2");
    assert_int_equal(t.response_insertion[0]->n_other_content_ids, 0);

    api.dl.platform_id = 0;
    assert_int_equal(tiny_of_combined(&c, NULL, A(), &t), 0);
    assert_int_equal(t.platform_id, 6);
    c.sdk = NULL;
    assert_int_equal(tiny_of_combined(&c, NULL, A(), &t), 0);
    assert_string_equal(t.request_id, "r-api");
    assert_int_equal(t.n_response_insertion, 1);
}

static void test_tiny_insertion_other_ids_come_from_request_then_request_insertion(void **state)
{
    (void)state;
    const char *names[] = {"storeId", "owner"};
    tiny_keys k = keys_of(2, names);
    dl_parts d;
    dl_init(&d, 1, "u1", "r1", 10);
    d.rq.properties = props(2, "owner", vstr("o0"), "storeId", vstr("s0"));
    d.req_ins[d.rq.n_insertion++] = ins(NULL, "c1", props(1, "storeId", vstr("s1")));
    d.req_ins[d.rq.n_insertion++] = ins(NULL, "c1", props(1, "storeId", vstr("sX")));
    d.resp_ins[d.resp.n_insertion++] = ins("i1", "c1", NULL);
    d.resp_ins[d.resp.n_insertion++] = ins("i2", "c2", NULL); /* no request insertion: the
                                                                reference throws here */
    Event__CombinedDeliveryLog c = EVENT__COMBINED_DELIVERY_LOG__INIT;
    c.sdk = &d.dl;
    Event__TinyDeliveryLog t;
    assert_int_equal(tiny_of_combined(&c, &k, A(), &t), 0);
    const Event__TinyInsertion *a = t.response_insertion[0], *b = t.response_insertion[1];
    assert_int_equal(a->n_other_content_ids, 2);
    assert_int_equal(a->other_content_ids[0]->key, java_string_hash("storeId", 7));
    assert_string_equal(a->other_content_ids[0]->value, "s1"); /* first request insertion */
    assert_int_equal(a->other_content_ids[1]->key, 106164915);
    assert_string_equal(a->other_content_ids[1]->value, "o0");
    assert_int_equal(b->n_other_content_ids, 2);
    assert_string_equal(b->other_content_ids[0]->value, "s0");
}

/* ---- operator ---- */

typedef struct capture {
    char lines[8][512];
    int n;
} capture;

static int capture_process(rt_op *op, int input, const rt_record *rec)
{
    capture *c = rt_op_self(op);
    char *line = c->lines[c->n++ % 8];
    char body[400] = "";
    if (rec->type == REC_TINY_EVENT) tiny_text(rec->data, body, sizeof body);
    if (rec->type == REC_TINY_DELIVERY_LOG) {
        const Event__TinyDeliveryLog *t = rec->data;
        snprintf(body, sizeof body, "dl %s n=%zu", S(t->request_id), t->n_response_insertion);
    }
    /* the key: 8 bytes little-endian platform then log_user_id */
    uint64_t p = 0;
    for (int i = 7; i >= 0 && rec->key_len >= 8; i--)
        p = p << 8 | rec->key[i];
    snprintf(line, 512, "ts=%lld key=%llu:%.*s %s", (long long)rec->ts, (unsigned long long)p,
             rec->key_len >= 8 ? (int)(rec->key_len - 8) : 0,
             rec->key_len >= 8 ? (const char *)rec->key + 8 : "", body);
    return 0;
}

static const rt_op_vtbl capture_vt = {.process = capture_process};

static rt_graph *graph_with(const tiny_op_config *cfg, capture *c, rt_op **op)
{
    rt_graph *g;
    rt_op *sink;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    assert_int_equal(tiny_op_add(g, "tiny", cfg, op), 0);
    assert_int_equal(rt_graph_add_op(g, "sink", NULL, &capture_vt, c, 1, 0, &sink), 0);
    assert_int_equal(rt_graph_connect(g, *op, 0, sink, 0), 0);
    char err[256];
    assert_int_equal(rt_graph_open(g, err, sizeof err), 0);
    return g;
}

static void test_tiny_op_emits_with_the_input_ts_and_the_user_key(void **state)
{
    (void)state;
    capture c = {.n = 0};
    const char *names[] = {"storeId"};
    tiny_op_config cfg = {.input = TINY_ACTION, .content_id_keys = names, .n_content_id_keys = 1};
    rt_op *op;
    rt_graph *g = graph_with(&cfg, &c, &op);
    Event__Action ac = base_action();
    ac.platform_id = 258;
    ac.has_action_type = 1, ac.action_type = EVENT__ACTION_TYPE__PURCHASE;
    const char *ids[] = {"content1", "content2"};
    ac.cart = cart_of(2, ids);
    ac.properties = props(1, "storeId", vstr("s1"));
    rt_record r = {.ts = 1234, .type = REC_ACTION, .data = &ac};
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
    assert_int_equal(c.n, 2);
    char want[512];
    snprintf(want, sizeof want,
             "ts=1234 key=258:u1 p=258 u=u1 lt=50 v=- r=- i=- c=content2 m=- a=act1 o={%d=s1}",
             java_string_hash("storeId", 7));
    assert_string_equal(c.lines[1], want);
    rt_graph_free(g);

    c.n = 0;
    cfg.input = TINY_COMBINED_DELIVERY_LOG;
    g = graph_with(&cfg, &c, &op);
    dl_parts d;
    dl_init(&d, 3, "u3", "r3", 10);
    d.resp_ins[d.resp.n_insertion++] = ins("i1", "c1", NULL);
    Event__CombinedDeliveryLog cd = EVENT__COMBINED_DELIVERY_LOG__INIT;
    cd.api = &d.dl;
    rt_record r2 = {.ts = 99, .type = REC_COMBINED_DELIVERY_LOG, .data = &cd};
    assert_int_equal(rt_graph_push(g, op, 0, &r2), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.lines[0], "ts=99 key=3:u3 dl r3 n=1");
    rt_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_becomes_tiny_event),
        cmocka_unit_test(test_impression_becomes_tiny_event_with_other_content_ids),
        cmocka_unit_test(test_other_content_ids_read_only_the_top_level_and_the_last_duplicate),
        cmocka_unit_test(test_action_becomes_one_tiny_event),
        cmocka_unit_test(test_purchase_with_a_cart_splits_into_one_tiny_event_per_content),
        cmocka_unit_test(test_checkout_split_takes_each_distinct_id_once_in_first_seen_order),
        cmocka_unit_test(test_combined_delivery_log_becomes_tiny_delivery_log_of_the_chosen_log),
        cmocka_unit_test(test_tiny_insertion_other_ids_come_from_request_then_request_insertion),
        cmocka_unit_test(test_tiny_op_emits_with_the_input_ts_and_the_user_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
