/* Stream U (spec/other-jobs.md §B.2): the reduced copy and its consequences, the LogUserUser
 * Avro datum, and the temporal inner join (§E.2 TemporalJoinFunctionTest). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/common_ops.h"
#include "jobs/counter/counter_fields.h"
#include "jobs/counter/counter_records.h"
#include "jobs/counter/counter_tables.h"
#include "jobs/counter/user_stream.h"
#include "runtime/graph.h"
#include "runtime/task.h"

static void test_reduced_copy(void **s)
{
    Common__Timing top = COMMON__TIMING__INIT, rit = COMMON__TIMING__INIT,
                   it = COMMON__TIMING__INIT, at = COMMON__TIMING__INIT;
    top.has_event_api_timestamp = top.has_log_timestamp = 1;
    top.event_api_timestamp = 100;
    top.log_timestamp = 101;
    rit.event_api_timestamp = 200;
    it.event_api_timestamp = 300;
    at.event_api_timestamp = 400;
    Delivery__Insertion ri = DELIVERY__INSERTION__INIT, ai = DELIVERY__INSERTION__INIT;
    ri.timing = &rit;
    ai.content_id = "api-content";
    Event__Impression imp = EVENT__IMPRESSION__INIT;
    imp.timing = &it;
    imp.content_id = "";
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.log_user_id = "from-request";
    Common__Browser br = COMMON__BROWSER__INIT;
    br.user_agent = "okhttp/3.14.9";
    Common__Device dev = COMMON__DEVICE__INIT;
    dev.browser = &br;
    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    rq.search_query = "Q";
    rq.user_info = &ui;
    rq.device = &dev;
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    e.timing = &top;
    e.response_insertion = &ri;
    e.api_execution_insertion = &ai;
    e.impression = &imp;
    e.request = &rq;
    user_stream_scratch sc;
    Event__JoinedEvent copy;
    user_stream_reduce(&e, &sc, &copy);
    /* an impression without its own content id: no impression in the copy, so UNKNOWN_AGGREGATE
     * (the spec's QUIRK, reproduced), and its event time from response_insertion */
    assert_null(copy.impression);
    assert_int_equal(cfield_metric(&copy), CMETRIC_UNKNOWN);
    assert_int_equal(cfield_event_api_timestamp(&copy), 200);
    /* api_execution_insertion is not copied: the content id falls through */
    assert_null(copy.api_execution_insertion);
    assert_string_equal(cfield_content_id(&copy), "");
    /* the request keeps only the query and the user agent */
    assert_string_equal(copy.request->search_query, "Q");
    assert_string_equal(copy.request->device->browser->user_agent, "okhttp/3.14.9");
    assert_null(copy.request->user_info);
    assert_string_equal(cfield_log_user_id(&copy), "");
    /* with a content id the impression is kept (content id only) */
    imp.content_id = "c1";
    user_stream_reduce(&e, &sc, &copy);
    assert_int_equal(cfield_metric(&copy), CMETRIC_IMPRESSION);
    assert_string_equal(cfield_content_id(&copy), "c1");
    assert_int_equal(cfield_event_api_timestamp(&copy), 200);
    /* an action: the top-level timing, no cart (count 1) */
    Event__CartContent cc = EVENT__CART_CONTENT__INIT;
    cc.quantity = 5;
    Event__Action a = EVENT__ACTION__INIT;
    a.timing = &at;
    a.has_action_type = 1;
    a.action_type = EVENT__ACTION_TYPE__PURCHASE;
    a.single_cart_content = &cc;
    e.action = &a;
    assert_int_equal(cfield_count(&e), 5);
    user_stream_reduce(&e, &sc, &copy);
    assert_int_equal(cfield_count(&copy), 1);
    assert_int_equal(cfield_metric(&copy), 96);
    assert_int_equal(cfield_event_api_timestamp(&copy), 100);
    assert_int_equal(cfield_log_timestamp(&copy), 101);
    /* the copy packs and unpacks (it is what the join stores) */
    size_t n = event__joined_event__get_packed_size(&copy);
    uint8_t *buf = malloc(n);
    event__joined_event__pack(&copy, buf);
    Event__JoinedEvent *u = event__joined_event__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_int_equal(cfield_event_api_timestamp(u), 100);
    event__joined_event__free_unpacked(u, NULL);
    free(buf);
}

static void test_log_user_user_datum(void **s)
{
    /* platformId 2, eventApiTimestamp 1235, "logUserId1", "userId1" */
    static const uint8_t d[] = {0x04, 0xa6, 0x13, 0x14, 'l', 'o', 'g', 'U', 's', 'e', 'r',
                                'I',  'd',  '1',  0x0e, 'u', 's', 'e', 'r', 'I', 'd', '1'};
    user_stream_luu l;
    assert_int_equal(user_stream_decode_luu(d, sizeof d, &l), 0);
    assert_int_equal(l.platform_id, 2);
    assert_int_equal(l.event_api_timestamp, 1235);
    assert_int_equal(l.log_user_id_len, 10);
    assert_memory_equal(l.log_user_id, "logUserId1", 10);
    assert_memory_equal(l.user_id, "userId1", 7);
    assert_int_equal(user_stream_decode_luu(d, sizeof d - 1, &l), -1);
    uint8_t longer[sizeof d + 1];
    memcpy(longer, d, sizeof d);
    longer[sizeof d] = 0;
    assert_int_equal(user_stream_decode_luu(longer, sizeof longer, &l), -1);
    static const uint8_t neg[] = {0x01, 0x00, 0x01}; /* a negative string length */
    assert_int_equal(user_stream_decode_luu(neg, sizeof neg, &l), -1);
}

/* ---- the temporal join ---- */

typedef struct jh {
    rt_graph *g;
    rt_op *join, *out;
    char lines[2048];
} jh;

static int collect(rt_op *op, int input, const rt_record *rec)
{
    jh *h = rt_op_self(op);
    const counter_fields *f = rec->data;
    char line[128];
    snprintf(line, sizeof line, "%s%s-%s@%lld", h->lines[0] ? " " : "", f->content_id, f->user_id,
             (long long)rec->ts);
    strcat(h->lines, line);
    return 0;
}

static const rt_op_vtbl collect_vtbl = {.process = collect};

static void fact(jh *h, const char *name, int64_t ts)
{
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    ids.platform_id = 1;
    ids.log_user_id = "lu";
    Common__Timing t = COMMON__TIMING__INIT;
    t.log_timestamp = t.event_api_timestamp = (uint64_t)ts;
    Event__Action a = EVENT__ACTION__INIT;
    a.content_id = (char *)name;
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    e.ids = &ids;
    e.timing = &t;
    e.action = &a;
    counter_fields f = {.event = &e};
    rt_record rec = {.ts = ts, .type = REC_COUNTER_EVENT, .data = &f};
    assert_int_equal(rt_graph_push(h->g, h->join, 0, &rec), 0);
}

static void dim(jh *h, const char *user, int64_t ts)
{
    user_stream_luu l = {1, ts, "lu", 2, user, strlen(user)};
    rt_record rec = {.ts = ts, .type = REC_COUNTER_LOG_USER_USER, .data = &l};
    assert_int_equal(rt_graph_push(h->g, h->join, 1, &rec), 0);
}

static void test_temporal_join(void **s)
{
    jh h;
    memset(&h, 0, sizeof h);
    assert_int_equal(rt_graph_new(NULL, &h.g), 0);
    assert_int_equal(user_stream_join_op_add(h.g, "join-log-user-user", &h.join), 0);
    assert_int_equal(
        rt_graph_add_op(h.g, "collect-test-output", NULL, &collect_vtbl, &h, 1, 0, &h.out), 0);
    assert_int_equal(rt_graph_connect(h.g, h.join, 0, h.out, 0), 0);
    char err[256];
    assert_int_equal(rt_graph_open(h.g, err, sizeof err), 0);
    /* f1@1, f2@2, d3@3, watermark 2: no version at or before 1 or 2: the inner join drops both */
    fact(&h, "f1", 1);
    fact(&h, "f2", 2);
    dim(&h, "d3", 3);
    assert_int_equal(rt_graph_advance_watermark(h.g, 2), 0);
    assert_string_equal(h.lines, "");
    /* f4.1@4, f4.2@4, watermark 4: joined with d3 */
    fact(&h, "f4.1", 4);
    fact(&h, "f4.2", 4);
    assert_int_equal(rt_graph_advance_watermark(h.g, 4), 0);
    assert_string_equal(h.lines, "f4.1-d3@4 f4.2-d3@4");
    h.lines[0] = 0;
    /* late f4.3@4, then d5@5, d11@11, f6@6, f10@10, watermark 10 */
    fact(&h, "f4.3", 4);
    dim(&h, "d5", 5);
    dim(&h, "d11", 11);
    fact(&h, "f6", 6);
    fact(&h, "f10", 10);
    assert_int_equal(rt_graph_advance_watermark(h.g, 10), 0);
    assert_string_equal(h.lines, "f4.3-d3@4 f6-d5@6 f10-d5@10");
    h.lines[0] = 0;
    /* d3 is gone now (d5 is the newest at or below 10); a fact at 4 would take no version */
    fact(&h, "f4.4", 4);
    fact(&h, "f12", 12);
    assert_int_equal(rt_graph_finish(h.g), 0);
    assert_string_equal(h.lines, "f12-d11@12");
    rt_graph_free(h.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduced_copy),
        cmocka_unit_test(test_log_user_user_datum),
        cmocka_unit_test(test_temporal_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
