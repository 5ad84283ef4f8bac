/* CombineDeliveryLog (src/jobs/join/combine_delivery_log.h, spec/flat-output.md §5, §20
 * scenario 6): the spec's scenarios driven through a real graph (x@t = a DeliveryLog with ts t),
 * window W = 2000 ms, plus pass-through, the unknown execution server side output, the
 * watermark hold-back, keys, drain, and state that survives a snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/pb_private.h"
#include "jobs/common_ops.h"
#include "jobs/join/combine_delivery_log.h"
#include "jobs/join/join_records.h"
#include "runtime/buf.h"
#include "runtime/graph.h"

#define W 2000

/* ---- building delivery logs ---- */

typedef struct dlog {
    Delivery__DeliveryLog dl;
    Delivery__Request rq;
    Delivery__Response resp;
    Delivery__PagingInfo paging;
    Delivery__DeliveryExecution ex;
    Common__UserInfo ui;
    Common__ClientInfo ci;
} dlog;

enum { API = DELIVERY__EXECUTION_SERVER__API, SDK = DELIVERY__EXECUTION_SERVER__SDK };
enum {
    PROD = COMMON__CLIENT_INFO__TRAFFIC_TYPE__PRODUCTION,
    SHADOW = COMMON__CLIENT_INFO__TRAFFIC_TYPE__SHADOW,
    REPLAY = COMMON__CLIENT_INFO__TRAFFIC_TYPE__REPLAY,
};

/* A DeliveryLog of user (1, luid) with request_id req, client request id crid (NULL: none),
 * execution server (-1: no execution), traffic type, and response paging id (NULL: none). */
static dlog *mk(const char *luid, const char *req, const char *crid, int server, int traffic,
                const char *paging)
{
    dlog *d = calloc(1, sizeof *d);
    Delivery__DeliveryLog di = DELIVERY__DELIVERY_LOG__INIT;
    Delivery__Request ri = DELIVERY__REQUEST__INIT;
    Delivery__Response si = DELIVERY__RESPONSE__INIT;
    Delivery__PagingInfo pi = DELIVERY__PAGING_INFO__INIT;
    Delivery__DeliveryExecution ei = DELIVERY__DELIVERY_EXECUTION__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    Common__ClientInfo ci = COMMON__CLIENT_INFO__INIT;
    d->dl = di, d->rq = ri, d->resp = si, d->paging = pi, d->ex = ei, d->ui = ui, d->ci = ci;
    d->dl.has_platform_id = 1, d->dl.platform_id = 1;
    d->dl.request = &d->rq;
    d->rq.has_platform_id = 1, d->rq.platform_id = 1;
    d->rq.request_id = (char *)req;
    d->rq.client_request_id = (char *)crid;
    d->ui.log_user_id = (char *)luid;
    d->rq.user_info = &d->ui;
    d->ci.has_traffic_type = 1;
    d->ci.traffic_type = (Common__ClientInfo__TrafficType)traffic;
    d->rq.client_info = &d->ci;
    if (server >= 0) {
        d->ex.has_execution_server = 1;
        d->ex.execution_server = (Delivery__ExecutionServer)server;
        d->dl.execution = &d->ex;
    }
    if (paging) {
        d->paging.paging_id = (char *)paging;
        d->resp.paging_info = &d->paging;
        d->dl.response = &d->resp;
    }
    return d;
}

static void unmk(dlog *d)
{
    pb_private_clear(&d->ex.base, NULL);
    free(d);
}

/* ---- capturing outputs ---- */

typedef struct capture {
    char lines[16][256];
    int n;
    char private_insertion[64]; /* content_id of an API execution insertion seen, if any */
} capture;

static void describe(const Delivery__DeliveryLog *dl, char *buf, size_t cap)
{
    if (!dl) {
        snprintf(buf, cap, "-");
        return;
    }
    const char *paging =
        dl->response && dl->response->paging_info && dl->response->paging_info->paging_id
            ? dl->response->paging_info->paging_id
            : "";
    snprintf(buf, cap, "%s/%s",
             dl->request && dl->request->request_id ? dl->request->request_id : "", paging);
}

static int capture_process(rt_op *op, int input, const rt_record *rec)
{
    capture *c = rt_op_self(op);
    char *line = c->lines[c->n++ % 16];
    char key[64] = "";
    if (rec->key_len >= 8)
        snprintf(key, sizeof key, "%u:%.*s", rec->key[0], (int)rec->key_len - 8,
                 (const char *)rec->key + 8);
    if (rec->type == REC_COMBINED_DELIVERY_LOG) {
        const Event__CombinedDeliveryLog *cd = rec->data;
        char a[64], s[64];
        describe(cd->api, a, sizeof a);
        describe(cd->sdk, s, sizeof s);
        snprintf(line, 256, "ts=%lld key=%s api=%s sdk=%s", (long long)rec->ts, key, a, s);
        if (cd->api && cd->api->execution) {
            Delivery__Insertion **ins;
            size_t n;
            assert_int_equal(
                pb_private_get_execution_insertions(cd->api->execution, NULL, &ins, &n), 0);
            if (n)
                snprintf(c->private_insertion, sizeof c->private_insertion, "%s",
                         ins[0]->content_id);
            pb_private_free_list((ProtobufCMessage **)ins, n, NULL);
        }
    } else if (rec->type == REC_TINY_EVENT) {
        const Event__TinyEvent *t = rec->data;
        snprintf(line, 256, "ts=%lld tiny u=%s r=%s", (long long)rec->ts,
                 t->log_user_id ? t->log_user_id : "-", t->request_id ? t->request_id : "-");
    } else {
        snprintf(line, 256, "ts=%lld type=%d", (long long)rec->ts, rec->type);
    }
    return 0;
}

static const rt_op_vtbl capture_vt = {.process = capture_process};

typedef struct fixture {
    rt_graph *g;
    rt_op *op;
    capture out, side;
} fixture;

static void build(fixture *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(rt_graph_new(NULL, &f->g), 0);
    combine_config cfg = {.window_ms = W};
    assert_int_equal(combine_delivery_log_op_add(f->g, "combine-delivery-log", &cfg, &f->op), 0);
    rt_op *s0, *s1;
    assert_int_equal(rt_graph_add_op(f->g, "sink-combined", NULL, &capture_vt, &f->out, 1, 0, &s0),
                     0);
    assert_int_equal(rt_graph_add_op(f->g, "sink-side", NULL, &capture_vt, &f->side, 1, 0, &s1), 0);
    assert_int_equal(rt_graph_connect(f->g, f->op, 0, s0, 0), 0);
    assert_int_equal(rt_graph_connect(f->g, f->op, 1, s1, 0), 0);
    char err[256];
    assert_int_equal(rt_graph_open(f->g, err, sizeof err), 0);
}

static void push(fixture *f, dlog *d, int64_t ts)
{
    rt_record r = {.ts = ts, .type = REC_DELIVERY_LOG, .data = &d->dl};
    assert_int_equal(rt_graph_push(f->g, f->op, 0, &r), 0);
    unmk(d);
}

static void wm(fixture *f, int64_t t)
{
    assert_int_equal(rt_graph_advance_watermark(f->g, t), 0);
}

/* ---- §5 scenarios ---- */

static void test_api_and_sdk_logs_with_one_client_request_id_combine_into_one(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    dlog *api = mk("u1", "r-api", "c1", API, PROD, "pagingId1");
    Delivery__Insertion ei = DELIVERY__INSERTION__INIT;
    ei.content_id = "c1";
    /* a private (unknown) field must survive the packed state */
    assert_int_equal(pb_private_add_execution_insertion(&api->ex, &ei, NULL), 0);
    push(&f, api, 100);
    push(&f, mk("u1", "r-sdk", "c1", SDK, PROD, NULL), 500);
    wm(&f, 100 + W - 1);
    assert_int_equal(f.out.n, 0);
    wm(&f, 100 + W);
    assert_int_equal(f.out.n, 1);
    /* emitted at the timer, with the API's paging id copied into the SDK response */
    assert_string_equal(f.out.lines[0], "ts=2100 key=1:u1 api=r-api/pagingId1 sdk=r-sdk/pagingId1");
    assert_string_equal(f.out.private_insertion, "c1");
    assert_int_equal(rt_timer_count(f.op), 0);
    wm(&f, 100000);
    assert_int_equal(f.out.n, 1);
    rt_graph_free(f.g);
}

static void test_later_logs_of_equal_priority_replace_the_slot(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "req1", "c1", API, PROD, NULL), 100);
    push(&f, mk("u1", "req2", "c1", API, PROD, NULL), 200);
    push(&f, mk("u1", "req3", "c1", SDK, PROD, NULL), 600);
    push(&f, mk("u1", "req4", "c1", SDK, PROD, NULL), 700);
    wm(&f, 5000);
    assert_int_equal(f.out.n, 1);
    assert_string_equal(f.out.lines[0], "ts=2100 key=1:u1 api=req2/ sdk=req4/");
    rt_graph_free(f.g);
}

static void test_a_slot_keeps_the_log_of_higher_traffic_priority(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "req1", "c1", API, PROD, NULL), 100);
    push(&f, mk("u1", "req2", "c1", API, SHADOW, NULL), 200);
    push(&f, mk("u1", "req3", "c1", SDK, PROD, NULL), 300);
    push(&f, mk("u1", "req4", "c1", SDK, REPLAY, NULL), 400);
    /* and the other way round: a higher priority replaces a lower one */
    push(&f, mk("u1", "req5", "c2", API, SHADOW, NULL), 100);
    push(&f, mk("u1", "req6", "c2", API, PROD, NULL), 200);
    wm(&f, 5000);
    assert_int_equal(f.out.n, 2);
    assert_string_equal(f.out.lines[0], "ts=2100 key=1:u1 api=req1/ sdk=req3/");
    assert_string_equal(f.out.lines[1], "ts=2100 key=1:u1 api=req6/ sdk=-");
    rt_graph_free(f.g);
}

static void test_three_client_request_ids_give_three_outputs_in_timer_order(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "ra", "c1", API, PROD, NULL), 300);
    push(&f, mk("u1", "rb", "c2", API, PROD, NULL), 100);
    push(&f, mk("u1", "rc", "c3", SDK, PROD, NULL), 200);
    wm(&f, 2150);
    assert_int_equal(f.out.n, 1);
    wm(&f, 10000);
    assert_int_equal(f.out.n, 3);
    assert_string_equal(f.out.lines[0], "ts=2100 key=1:u1 api=rb/ sdk=-");
    assert_string_equal(f.out.lines[1], "ts=2200 key=1:u1 api=- sdk=rc/");
    assert_string_equal(f.out.lines[2], "ts=2300 key=1:u1 api=ra/ sdk=-");
    rt_graph_free(f.g);
}

static void test_the_same_pair_after_the_window_is_emitted_again(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "r1", "c1", API, PROD, NULL), 100);
    push(&f, mk("u1", "r2", "c1", SDK, PROD, NULL), 500);
    wm(&f, 2100);
    push(&f, mk("u1", "r1", "c1", API, PROD, NULL), 3000);
    push(&f, mk("u1", "r2", "c1", SDK, PROD, NULL), 3500);
    wm(&f, 10000);
    assert_int_equal(f.out.n, 2);
    assert_string_equal(f.out.lines[0], "ts=2100 key=1:u1 api=r1/ sdk=r2/");
    assert_string_equal(f.out.lines[1], "ts=5000 key=1:u1 api=r1/ sdk=r2/");
    rt_graph_free(f.g);
}

/* §20 scenario 6: an SDK PRODUCTION log and a shadow API log of one client request (T0+100,
 * T0+150) become one combined record: SDK r1 is the request, API r2 the hidden one. */
static void test_sdk_log_and_shadow_api_log_become_one_record(void **state)
{
    (void)state;
    const int64_t t0 = 1601596151000;
    fixture f;
    build(&f);
    push(&f, mk("u1", "r1", "c1", SDK, PROD, NULL), t0 + 100);
    push(&f, mk("u1", "r2", "c1", API, SHADOW, NULL), t0 + 150);
    wm(&f, t0 + 100000);
    assert_int_equal(f.out.n, 1);
    char want[128];
    snprintf(want, sizeof want, "ts=%lld key=1:u1 api=r2/ sdk=r1/", (long long)(t0 + 100 + W));
    assert_string_equal(f.out.lines[0], want);
    rt_graph_free(f.g);
}

/* ---- around the scenarios ---- */

static void test_a_log_without_client_request_id_passes_at_once(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "r1", NULL, SDK, PROD, "p1"), 100);
    push(&f, mk("u1", "r2", "", API, PROD, NULL), 150);
    assert_int_equal(f.out.n, 2);
    assert_string_equal(f.out.lines[0], "ts=100 key=1:u1 api=- sdk=r1/p1");
    assert_string_equal(f.out.lines[1], "ts=150 key=1:u1 api=r2/ sdk=-");
    assert_int_equal(rt_timer_count(f.op), 0);
    rt_graph_free(f.g);
}

static void test_simple_api_and_unknown_servers_take_the_api_slot(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "r1", "c1", DELIVERY__EXECUTION_SERVER__SIMPLE_API, PROD, NULL), 100);
    push(&f, mk("u1", "r2", "c2", -1, PROD, NULL), 100); /* no execution: UNKNOWN */
    push(&f, mk("u1", "r3", "c2", SDK, PROD, NULL), 200);
    wm(&f, 5000);
    assert_int_equal(f.out.n, 2);
    assert_string_equal(f.out.lines[0], "ts=2100 key=1:u1 api=r1/ sdk=-");
    assert_string_equal(f.out.lines[1], "ts=2100 key=1:u1 api=r2/ sdk=r3/");
    rt_graph_free(f.g);
}

/* The reference throws on any other execution_server value; logproc routes the log to a side
 * output (decision documented in docs/JOIN.md). */
static void test_an_unknown_execution_server_goes_to_its_side_output(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "r1", "c1", 7, PROD, NULL), 100);
    push(&f, mk("u1", "r2", NULL, 9, PROD, NULL), 120);
    wm(&f, 5000);
    assert_int_equal(f.out.n, 0);
    assert_int_equal(f.side.n, 2);
    assert_string_equal(f.side.lines[0], "ts=100 tiny u=u1 r=r1");
    assert_string_equal(f.side.lines[1], "ts=120 tiny u=u1 r=r2");
    rt_graph_free(f.g);
}

/* State keys are limited (64 KiB): a log whose ids would pass it is not combined but passes at
 * once, instead of failing the task. */
static void test_a_client_request_id_too_long_to_key_passes_at_once(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    size_t n = 70000;
    char *crid = malloc(n + 1);
    memset(crid, 'c', n);
    crid[n] = 0;
    push(&f, mk("u1", "r1", crid, SDK, PROD, NULL), 100);
    assert_int_equal(f.out.n, 1);
    assert_string_equal(f.out.lines[0], "ts=100 key=1:u1 api=- sdk=r1/");
    assert_int_equal(rt_timer_count(f.op), 0);
    free(crid);
    rt_graph_free(f.g);
}

static void test_users_do_not_share_a_client_request_id(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "r1", "c1", API, PROD, NULL), 100);
    push(&f, mk("u2", "r2", "c1", SDK, PROD, NULL), 100);
    wm(&f, 5000);
    assert_int_equal(f.out.n, 2);
    assert_string_equal(f.out.lines[0], "ts=2100 key=1:u1 api=r1/ sdk=-");
    assert_string_equal(f.out.lines[1], "ts=2100 key=1:u2 api=- sdk=r2/");
    rt_graph_free(f.g);
}

static void test_the_output_watermark_is_held_back_by_the_window(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    wm(&f, 5000);
    assert_int_equal(rt_op_watermark(f.op), 5000);
    assert_int_equal(rt_op_output_watermark(f.op), 5000 - W);
    rt_graph_free(f.g);
}

static void test_drain_emits_pending_records_at_their_timer_time(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "r1", "c1", API, PROD, NULL), 100);
    assert_int_equal(rt_graph_finish(f.g), 0);
    assert_int_equal(f.out.n, 1);
    assert_string_equal(f.out.lines[0], "ts=2100 key=1:u1 api=r1/ sdk=-");
    rt_graph_free(f.g);
}

static void test_pending_logs_survive_a_snapshot(void **state)
{
    (void)state;
    fixture f;
    build(&f);
    push(&f, mk("u1", "r1", "c1", API, PROD, "p1"), 100);
    rt_buf snap;
    rt_buf_init(&snap, 1 << 20);
    assert_int_equal(rt_graph_snapshot(f.g, &snap), 0);
    rt_graph_free(f.g);

    fixture g;
    build(&g);
    char err[256];
    assert_int_equal(rt_graph_restore(g.g, snap.data, snap.len, err, sizeof err), 0);
    rt_buf_free(&snap);
    assert_int_equal(rt_timer_count(g.op), 1);
    push(&g, mk("u1", "r2", "c1", SDK, PROD, NULL), 500);
    wm(&g, 5000);
    assert_int_equal(g.out.n, 1);
    assert_string_equal(g.out.lines[0], "ts=2100 key=1:u1 api=r1/p1 sdk=r2/p1");
    rt_graph_free(g.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_and_sdk_logs_with_one_client_request_id_combine_into_one),
        cmocka_unit_test(test_later_logs_of_equal_priority_replace_the_slot),
        cmocka_unit_test(test_a_slot_keeps_the_log_of_higher_traffic_priority),
        cmocka_unit_test(test_three_client_request_ids_give_three_outputs_in_timer_order),
        cmocka_unit_test(test_the_same_pair_after_the_window_is_emitted_again),
        cmocka_unit_test(test_sdk_log_and_shadow_api_log_become_one_record),
        cmocka_unit_test(test_a_log_without_client_request_id_passes_at_once),
        cmocka_unit_test(test_simple_api_and_unknown_servers_take_the_api_slot),
        cmocka_unit_test(test_an_unknown_execution_server_goes_to_its_side_output),
        cmocka_unit_test(test_a_client_request_id_too_long_to_key_passes_at_once),
        cmocka_unit_test(test_users_do_not_share_a_client_request_id),
        cmocka_unit_test(test_the_output_watermark_is_held_back_by_the_window),
        cmocka_unit_test(test_drain_emits_pending_records_at_their_timer_time),
        cmocka_unit_test(test_pending_logs_survive_a_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
