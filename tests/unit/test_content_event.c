/* content-metrics' unified event stream (spec/other-jobs.md §C.1, §C.2; spec/README.md "Scope")
 * and the JoinedEvent helpers of §B.3 it uses. Pins:
 * - which column each source fills, and that an empty content id gives no event;
 * - action types 2/4/8/3 and a zero row for any other type;
 * - cart rows add their quantity, purchases add quantity x price, no currency conversion;
 * - an action with a content id and a cart counts once per cart row and not for its own content
 *   id, unless double counting (the reference) is asked for; a cart whose rows all lack content ids
 *   leaves the action counted for its own;
 * - a joined impression counts for ids.platform_id and response_insertion's content and position;
 * - getPlatformId's and getLogTimestamp's order of fields, and that the wire reader agrees with
 *   the decoded message, merges repeated fields as protobuf does and falls back on bad bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/common_ops.h"
#include "jobs/content/content_event.h"
#include "jobs/join/joined_filters.h"

typedef struct got {
    cm_event e[8];
    char cid[8][32];
    size_t n;
} got;

static int collect(void *ctx, const cm_event *e)
{
    got *g = ctx;
    assert_true(g->n < 8);
    g->e[g->n] = *e;
    snprintf(g->cid[g->n], sizeof g->cid[g->n], "%s", e->content_id);
    g->n++;
    return 0;
}

static got events(int type, void *msg, bool double_count)
{
    got g;
    memset(&g, 0, sizeof g);
    rt_record r = {.ts = 1, .type = type, .data = msg};
    assert_int_equal(cm_events_of(&r, double_count, collect, &g), 0);
    return g;
}

/* the columns other than col are zero */
static void only(const cm_event *e, int col, int64_t v)
{
    for (int i = 0; i < CM_NCOLS; i++) assert_int_equal(e->v[i], i == col ? v : 0);
}

static void test_views_and_impressions(void **st)
{
    Event__View v = EVENT__VIEW__INIT;
    v.platform_id = 1;
    v.content_id = "i-1-1";
    got g = events(REC_VIEW, &v, false);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.e[0].platform_id, 1);
    assert_string_equal(g.cid[0], "i-1-1");
    only(&g.e[0], CM_VIEWS, 1);
    v.content_id = ""; /* the top-level "All ITEM" views of the generator */
    assert_int_equal(events(REC_VIEW, &v, false).n, 0);
    v.content_id = NULL;
    assert_int_equal(events(REC_VIEW, &v, false).n, 0);

    Event__Impression im = EVENT__IMPRESSION__INIT;
    im.platform_id = 7;
    im.content_id = "c";
    g = events(REC_IMPRESSION, &im, false);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.e[0].platform_id, 7);
    only(&g.e[0], CM_IMPRESSIONS, 1);
    im.content_id = "";
    assert_int_equal(events(REC_IMPRESSION, &im, false).n, 0);
    /* other record types give nothing */
    assert_int_equal(events(REC_USER, &im, false).n, 0);
}

static void test_action_types(void **st)
{
    static const struct {
        Event__ActionType type;
        int col;
    } cases[] = {
        {EVENT__ACTION_TYPE__NAVIGATE, CM_NAVIGATES},
        {EVENT__ACTION_TYPE__ADD_TO_CART, CM_ADD_TO_CARTS},
        {EVENT__ACTION_TYPE__CHECKOUT, CM_CHECKOUTS},
        {EVENT__ACTION_TYPE__PURCHASE, CM_PURCHASES},
        {EVENT__ACTION_TYPE__LIKE, -1},
        {EVENT__ACTION_TYPE__UNKNOWN_ACTION_TYPE, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Event__Action a = EVENT__ACTION__INIT;
        a.platform_id = 1;
        a.content_id = "x";
        a.action_type = cases[i].type;
        got g = events(REC_ACTION, &a, false);
        assert_int_equal(g.n, 1); /* a row even for other types: it creates the key */
        if (cases[i].col >= 0) only(&g.e[0], cases[i].col, 1);
        else only(&g.e[0], 0, 0);
    }
}

/* A PURCHASE of content "a" with a cart {a x2 @ 3 USD, b x1 @ 5 USD, "" x9}. */
static void cart_action(Event__Action *a, Event__Cart *cart, Event__CartContent *cc,
                        Common__Money *m, Event__CartContent **ptrs)
{
    Event__Action ai = EVENT__ACTION__INIT;
    Event__Cart ci = EVENT__CART__INIT;
    *a = ai;
    *cart = ci;
    const char *ids[3] = {"a", "b", ""};
    int64_t q[3] = {2, 1, 9}, p[3] = {3000000, 5000000, 1};
    for (int i = 0; i < 3; i++) {
        Event__CartContent cci = EVENT__CART_CONTENT__INIT;
        Common__Money mi = COMMON__MONEY__INIT;
        cc[i] = cci;
        m[i] = mi;
        m[i].amount_micros = p[i];
        m[i].currency_code = COMMON__CURRENCY_CODE__EUR; /* not converted */
        cc[i].content_id = (char *)ids[i];
        cc[i].quantity = q[i];
        cc[i].price_per_unit = &m[i];
        ptrs[i] = &cc[i];
    }
    cart->n_contents = 3;
    cart->contents = ptrs;
    a->platform_id = 1;
    a->content_id = "a";
    a->action_type = EVENT__ACTION_TYPE__PURCHASE;
    a->cart = cart;
}

static void test_cart_actions_count_once_per_cart_row(void **st)
{
    Event__Action a;
    Event__Cart cart;
    Event__CartContent cc[3], *ptrs[3];
    Common__Money m[3];
    cart_action(&a, &cart, cc, m, ptrs);

    got g = events(REC_ACTION, &a, false);
    assert_int_equal(g.n, 2); /* rows a and b; not the action's own content id; not "" */
    assert_string_equal(g.cid[0], "a");
    assert_int_equal(g.e[0].v[CM_PURCHASES], 2);
    assert_int_equal(g.e[0].v[CM_GMV_USD_MICROS], 6000000);
    assert_string_equal(g.cid[1], "b");
    assert_int_equal(g.e[1].v[CM_PURCHASES], 1);
    assert_int_equal(g.e[1].v[CM_GMV_USD_MICROS], 5000000);

    /* the reference: the action counts for its own content id too (purchases 1, no gmv) */
    g = events(REC_ACTION, &a, true);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.cid[0], "a");
    only(&g.e[0], CM_PURCHASES, 1);
    assert_string_equal(g.cid[1], "a");
    assert_int_equal(g.e[1].v[CM_PURCHASES], 2);

    /* checkout: quantities count, gmv does not */
    a.action_type = EVENT__ACTION_TYPE__CHECKOUT;
    g = events(REC_ACTION, &a, false);
    assert_int_equal(g.n, 2);
    only(&g.e[0], CM_CHECKOUTS, 2);
    only(&g.e[1], CM_CHECKOUTS, 1);

    /* a cart whose rows have no content id: the action counts for its own */
    cart.n_contents = 0;
    g = events(REC_ACTION, &a, false);
    assert_int_equal(g.n, 1);
    only(&g.e[0], CM_CHECKOUTS, 1);
    cart.contents = ptrs + 2; /* only the "" row */
    cart.n_contents = 1;
    g = events(REC_ACTION, &a, false);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.cid[0], "a");
    only(&g.e[0], CM_CHECKOUTS, 1);

    /* an action without a content id counts only its cart rows, in both modes */
    cart.contents = ptrs;
    cart.n_contents = 3;
    a.content_id = "";
    assert_int_equal(events(REC_ACTION, &a, false).n, 2);
    assert_int_equal(events(REC_ACTION, &a, true).n, 2);
}

static void test_joined_impression(void **st)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    Delivery__Insertion ri = DELIVERY__INSERTION__INIT;
    Event__Impression im = EVENT__IMPRESSION__INIT;
    ids.platform_id = 1;
    ids.impression_id = "imp1";
    ri.content_id = "i-1-1";
    ri.position = 5;
    ri.platform_id = 9;
    im.content_id = "other"; /* the joined impression's content is the insertion's */
    e.ids = &ids;
    e.response_insertion = &ri;
    e.impression = &im;
    got g = events(CM_REC_JOINED_EVENT, &e, false);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.e[0].platform_id, 1);
    assert_string_equal(g.cid[0], "i-1-1");
    assert_int_equal(g.e[0].v[CM_JOINED_IMPRESSIONS], 1);
    assert_int_equal(g.e[0].v[CM_JOINED_IMPRESSION_POSITION_SUM], 5);
    assert_int_equal(g.e[0].v[CM_IMPRESSIONS], 0);
    /* the column is ids.platform_id even when it is 0 (getPlatformId is for the dedupe key) */
    ids.platform_id = 0;
    g = events(CM_REC_JOINED_EVENT, &e, false);
    assert_int_equal(g.e[0].platform_id, 0);
    e.response_insertion = NULL;
    assert_int_equal(events(CM_REC_JOINED_EVENT, &e, false).n, 0);
}

static void test_joined_platform_id_order(void **st)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    Event__User u = EVENT__USER__INIT;
    Event__View v = EVENT__VIEW__INIT;
    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    Delivery__Insertion ri = DELIVERY__INSERTION__INIT;
    Event__Impression im = EVENT__IMPRESSION__INIT;
    Event__Action a = EVENT__ACTION__INIT;
    assert_int_equal(joined_event_platform_id(&e), 0);
    e.action = &a;
    a.platform_id = 7;
    assert_int_equal(joined_event_platform_id(&e), 7);
    e.impression = &im;
    im.platform_id = 6;
    assert_int_equal(joined_event_platform_id(&e), 6);
    e.response_insertion = &ri;
    ri.platform_id = 5;
    assert_int_equal(joined_event_platform_id(&e), 5);
    e.request = &rq;
    rq.platform_id = 4;
    assert_int_equal(joined_event_platform_id(&e), 4);
    e.view = &v;
    v.platform_id = 3;
    assert_int_equal(joined_event_platform_id(&e), 3);
    e.user = &u;
    u.platform_id = 2;
    assert_int_equal(joined_event_platform_id(&e), 2);
    e.ids = &ids; /* ids present but 0: the next one wins */
    assert_int_equal(joined_event_platform_id(&e), 2);
    ids.platform_id = 1;
    assert_int_equal(joined_event_platform_id(&e), 1);
}

/* Packs e and checks the wire reader against the decoded message. */
static int64_t wire_ts(const Event__JoinedEvent *e, int64_t fallback)
{
    size_t n = event__joined_event__get_packed_size(e);
    uint8_t *buf = malloc(n ? n : 1);
    event__joined_event__pack(e, buf);
    int64_t w = cm_joined_log_timestamp_wire(buf, n, fallback);
    Event__JoinedEvent *d = event__joined_event__unpack(NULL, n, buf);
    assert_non_null(d);
    int64_t s = cm_joined_log_timestamp(d);
    assert_int_equal(w, s ? s : fallback);
    event__joined_event__free_unpacked(d, NULL);
    free(buf);
    return w;
}

static void test_log_timestamp_order_and_wire_reader(void **st)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    Common__Timing t[9];
    for (int i = 0; i < 9; i++) {
        Common__Timing ti = COMMON__TIMING__INIT;
        t[i] = ti;
        t[i].has_log_timestamp = 1;
        t[i].log_timestamp = 1000 + (uint64_t)i;
        t[i].has_event_api_timestamp = 1;
        t[i].event_api_timestamp = 5; /* never read */
    }
    Event__User u = EVENT__USER__INIT;
    Logproc__Priv__Session se = LOGPROC__PRIV__SESSION__INIT;
    Event__View v = EVENT__VIEW__INIT;
    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    Delivery__Insertion ri = DELIVERY__INSERTION__INIT, ai = DELIVERY__INSERTION__INIT;
    Event__Impression im = EVENT__IMPRESSION__INIT;
    Event__Action a = EVENT__ACTION__INIT;
    assert_int_equal(wire_ts(&e, 42), 42); /* nothing: the record's own time */
    /* from the last in the order to the first, each one taking over */
    e.user = &u;
    u.timing = &t[8];
    assert_int_equal(wire_ts(&e, 42), 1008);
    e.session = &se;
    se.timing = &t[7];
    assert_int_equal(wire_ts(&e, 42), 1007);
    e.view = &v;
    v.timing = &t[6];
    assert_int_equal(wire_ts(&e, 42), 1006);
    e.request = &rq;
    rq.timing = &t[5];
    assert_int_equal(wire_ts(&e, 42), 1005);
    e.response_insertion = &ri;
    ri.timing = &t[4];
    assert_int_equal(wire_ts(&e, 42), 1004);
    e.api_execution_insertion = &ai;
    ai.timing = &t[3];
    assert_int_equal(wire_ts(&e, 42), 1003);
    e.impression = &im;
    im.timing = &t[2];
    assert_int_equal(wire_ts(&e, 42), 1002);
    e.action = &a;
    a.timing = &t[1];
    assert_int_equal(wire_ts(&e, 42), 1001);
    e.timing = &t[0];
    assert_int_equal(wire_ts(&e, 42), 1000);
    /* a zero log timestamp is skipped */
    t[0].log_timestamp = 0;
    assert_int_equal(wire_ts(&e, 42), 1001);
}

static void test_wire_reader_merges_and_falls_back(void **st)
{
    /* two occurrences of `impression` (field 16): protobuf merges them, the later
     * log_timestamp wins; an occurrence without one keeps the earlier value */
    Event__JoinedEvent e1 = EVENT__JOINED_EVENT__INIT, e2 = EVENT__JOINED_EVENT__INIT,
                       e3 = EVENT__JOINED_EVENT__INIT;
    Event__Impression i1 = EVENT__IMPRESSION__INIT, i2 = EVENT__IMPRESSION__INIT,
                      i3 = EVENT__IMPRESSION__INIT;
    Common__Timing t1 = COMMON__TIMING__INIT, t2 = COMMON__TIMING__INIT;
    t1.has_log_timestamp = t2.has_log_timestamp = 1;
    t1.log_timestamp = 111;
    t2.log_timestamp = 222;
    i1.timing = &t1;
    i2.timing = &t2;
    i3.impression_id = "x";
    e1.impression = &i1;
    e2.impression = &i2;
    e3.impression = &i3;
    uint8_t buf[256];
    size_t n1 = event__joined_event__pack(&e1, buf);
    size_t n2 = event__joined_event__pack(&e2, buf + n1);
    size_t n3 = event__joined_event__pack(&e3, buf + n1 + n2);
    Event__JoinedEvent *d = event__joined_event__unpack(NULL, n1 + n2 + n3, buf);
    assert_non_null(d);
    assert_int_equal(cm_joined_log_timestamp(d), 222);
    event__joined_event__free_unpacked(d, NULL);
    assert_int_equal(cm_joined_log_timestamp_wire(buf, n1 + n2 + n3, 7), 222);

    /* truncated or garbled bytes: the record's own time (the decoder reports the record) */
    assert_int_equal(cm_joined_log_timestamp_wire(buf, n1 - 1, 7), 7);
    static const uint8_t group[] = {0x83, 0x01}; /* field 16, start group */
    assert_int_equal(cm_joined_log_timestamp_wire(group, sizeof group, 7), 7);
    static const uint8_t varint_timing[] = {0x10, 0x05}; /* field 2 as a varint */
    assert_int_equal(cm_joined_log_timestamp_wire(varint_timing, sizeof varint_timing, 7), 7);
    assert_int_equal(cm_joined_log_timestamp_wire(NULL, 0, 7), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views_and_impressions),
        cmocka_unit_test(test_action_types),
        cmocka_unit_test(test_cart_actions_count_once_per_cart_row),
        cmocka_unit_test(test_joined_impression),
        cmocka_unit_test(test_joined_platform_id_order),
        cmocka_unit_test(test_log_timestamp_order_and_wire_reader),
        cmocka_unit_test(test_wire_reader_merges_and_falls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
