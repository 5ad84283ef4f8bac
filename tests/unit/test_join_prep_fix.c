/* FixDeliveryLog (src/jobs/join/fix_delivery_log.h, spec/flat-output.md §2.6, §20 scenario 7):
 * synthesized insertion ids, the v1 optimized SDK rewrite, and that the borrowed input is never
 * written through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/pb_util.h"
#include "jobs/common_ops.h"
#include "jobs/join/fix_delivery_log.h"
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

typedef struct dl_parts {
    Delivery__DeliveryLog dl;
    Delivery__Request rq;
    Delivery__Response resp;
    Delivery__DeliveryExecution ex;
    Delivery__Insertion ins[4];
    Delivery__Insertion *ptr[4];
} dl_parts;

static void dl_init(dl_parts *p, const char *request_id, int server)
{
    Delivery__DeliveryLog di = DELIVERY__DELIVERY_LOG__INIT;
    Delivery__Request ri = DELIVERY__REQUEST__INIT;
    Delivery__Response si = DELIVERY__RESPONSE__INIT;
    Delivery__DeliveryExecution ei = DELIVERY__DELIVERY_EXECUTION__INIT;
    p->dl = di, p->rq = ri, p->resp = si, p->ex = ei;
    p->rq.request_id = (char *)request_id;
    p->dl.request = &p->rq;
    p->dl.response = &p->resp;
    p->resp.insertion = p->ptr;
    if (server >= 0) {
        p->ex.has_execution_server = 1;
        p->ex.execution_server = (Delivery__ExecutionServer)server;
        p->dl.execution = &p->ex;
    }
}

/* Adds a response insertion; position < 0 leaves it unset. */
static Delivery__Insertion *add_ins(dl_parts *p, const char *id, const char *content,
                                    int64_t position)
{
    Delivery__Insertion init = DELIVERY__INSERTION__INIT;
    Delivery__Insertion *i = &p->ins[p->resp.n_insertion];
    *i = init;
    i->insertion_id = (char *)id;
    i->content_id = (char *)content;
    if (position >= 0) i->has_position = 1, i->position = (uint64_t)position;
    p->ptr[p->resp.n_insertion++] = i;
    return i;
}

static void test_missing_insertion_ids_are_request_position_content(void **state)
{
    (void)state;
    dl_parts p;
    dl_init(&p, "request1", DELIVERY__EXECUTION_SERVER__API);
    add_ins(&p, NULL, "content2", -1);
    add_ins(&p, "", "content3", 4);
    add_ins(&p, "keep", "content4", 1);
    add_ins(&p, NULL, NULL, 7);
    Delivery__DeliveryLog *out;
    assert_int_equal(fix_delivery_log(&p.dl, A(), &out), 0);
    assert_ptr_not_equal(out, &p.dl);
    assert_string_equal(out->response->insertion[0]->insertion_id, "request1-0-content2");
    assert_string_equal(out->response->insertion[1]->insertion_id, "request1-4-content3");
    assert_string_equal(out->response->insertion[2]->insertion_id, "keep");
    assert_string_equal(out->response->insertion[3]->insertion_id, "request1-7-");
    /* an unset position reads as 0 but stays unset outside the v1 SDK form */
    assert_false(out->response->insertion[0]->has_position);
    /* the input is untouched */
    assert_null(p.ins[0].insertion_id);
    assert_string_equal(p.ins[1].insertion_id, "");
    assert_int_equal(out->request->n_insertion, 0);
}

/* §20 scenario 7: r1, position 0, c1 -> "r1-0-c1", the id an impression can name. */
static void test_synthesized_id_matches_what_an_impression_names(void **state)
{
    (void)state;
    dl_parts p;
    dl_init(&p, "r1", -1);
    add_ins(&p, NULL, "c1", 0);
    Delivery__DeliveryLog *out;
    assert_int_equal(fix_delivery_log(&p.dl, A(), &out), 0);
    assert_string_equal(out->response->insertion[0]->insertion_id, "r1-0-c1");
}

static void test_a_complete_delivery_log_is_passed_as_is(void **state)
{
    (void)state;
    dl_parts p;
    dl_init(&p, "r1", DELIVERY__EXECUTION_SERVER__API);
    add_ins(&p, "i1", "c1", 0);
    Delivery__DeliveryLog *out;
    assert_int_equal(fix_delivery_log(&p.dl, A(), &out), 0);
    assert_ptr_equal(out, &p.dl);
    /* SDK with request insertions already present: not the v1 form */
    Delivery__Insertion ri = DELIVERY__INSERTION__INIT, *rip = &ri;
    dl_init(&p, "r1", DELIVERY__EXECUTION_SERVER__SDK);
    add_ins(&p, "i1", "c1", 0);
    p.rq.n_insertion = 1, p.rq.insertion = &rip;
    assert_int_equal(fix_delivery_log(&p.dl, A(), &out), 0);
    assert_ptr_equal(out, &p.dl);
}

static void test_v1_sdk_response_insertions_become_request_insertions(void **state)
{
    (void)state;
    dl_parts p;
    dl_init(&p, "r1", DELIVERY__EXECUTION_SERVER__SDK);
    Common__Properties props = COMMON__PROPERTIES__INIT;
    Delivery__Insertion *a = add_ins(&p, NULL, "c1", -1);
    a->properties = &props;
    a->has_retrieval_rank = 1, a->retrieval_rank = 3;
    Delivery__Insertion *b = add_ins(&p, "i2", "c2", 5);
    b->view_id = "v1";
    Delivery__DeliveryLog *out;
    assert_int_equal(fix_delivery_log(&p.dl, A(), &out), 0);

    /* request insertions: the whole response insertions, ids filled, without position */
    assert_int_equal(out->request->n_insertion, 2);
    const Delivery__Insertion *q0 = out->request->insertion[0], *q1 = out->request->insertion[1];
    assert_string_equal(q0->insertion_id, "r1-0-c1");
    assert_string_equal(q0->content_id, "c1");
    assert_ptr_equal(q0->properties, &props);
    assert_true(q0->has_retrieval_rank);
    assert_false(q0->has_position);
    assert_string_equal(q1->insertion_id, "i2");
    assert_string_equal(q1->view_id, "v1");
    assert_false(q1->has_position);

    /* response insertions: only ids and position, position present even when it was unset */
    assert_int_equal(out->response->n_insertion, 2);
    const Delivery__Insertion *s0 = out->response->insertion[0], *s1 = out->response->insertion[1];
    assert_string_equal(s0->insertion_id, "r1-0-c1");
    assert_string_equal(s0->content_id, "c1");
    assert_true(s0->has_position);
    assert_int_equal(s0->position, 0);
    assert_null(s0->properties);
    assert_false(s0->has_retrieval_rank);
    assert_true(s1->has_position);
    assert_int_equal(s1->position, 5);
    assert_null(s1->view_id);
    /* position 0 is now on the wire: field 12, varint 0 */
    uint8_t buf[64];
    size_t n = delivery__insertion__pack(s0, buf);
    assert_int_equal(buf[n - 2], 12 << 3);
    assert_int_equal(buf[n - 1], 0);

    /* the input is untouched */
    assert_int_equal(p.rq.n_insertion, 0);
    assert_int_equal(p.resp.n_insertion, 2);
    assert_ptr_equal(p.resp.insertion[0], a);
    assert_false(a->has_position);
    assert_null(a->insertion_id);

    /* a v1 SDK log without a request gets one */
    p.dl.request = NULL;
    assert_int_equal(fix_delivery_log(&p.dl, A(), &out), 0);
    assert_non_null(out->request);
    assert_int_equal(out->request->n_insertion, 2);
    assert_string_equal(out->request->insertion[0]->insertion_id, "-0-c1");
}

static int got;
static char got_id[64];
static int64_t got_ts;

static int capture(rt_op *op, int input, const rt_record *rec)
{
    const Delivery__DeliveryLog *dl = rec->data;
    got++;
    got_ts = rec->ts;
    snprintf(got_id, sizeof got_id, "%s", dl->response->insertion[0]->insertion_id);
    return 0;
}

static const rt_op_vtbl capture_vt = {.process = capture};

static void test_fix_op_emits_the_fixed_log(void **state)
{
    (void)state;
    rt_graph *g;
    rt_op *fix, *sink;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    assert_int_equal(fix_delivery_log_op_add(g, "fix-delivery-log", &fix), 0);
    assert_int_equal(rt_graph_add_op(g, "sink", NULL, &capture_vt, NULL, 1, 0, &sink), 0);
    assert_int_equal(rt_graph_connect(g, fix, 0, sink, 0), 0);
    char err[256];
    assert_int_equal(rt_graph_open(g, err, sizeof err), 0);
    dl_parts p;
    dl_init(&p, "r1", -1);
    add_ins(&p, NULL, "c1", 2);
    rt_record r = {.ts = 77, .type = REC_DELIVERY_LOG, .data = &p.dl};
    assert_int_equal(rt_graph_push(g, fix, 0, &r), 0);
    assert_int_equal(got, 1);
    assert_int_equal(got_ts, 77);
    assert_string_equal(got_id, "r1-2-c1");
    rt_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_insertion_ids_are_request_position_content),
        cmocka_unit_test(test_synthesized_id_matches_what_an_impression_names),
        cmocka_unit_test(test_a_complete_delivery_log_is_passed_as_is),
        cmocka_unit_test(test_v1_sdk_response_insertions_become_request_insertions),
        cmocka_unit_test(test_fix_op_emits_the_fixed_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
