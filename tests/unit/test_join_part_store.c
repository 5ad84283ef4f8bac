/* part_store: records kept in split form share their common sub-messages, join back to the same
 * message, and give every byte back when the last reference goes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/join/part_store.h"
#include "logproc/join.pb-c.h"
#include "runtime/graph.h"
#include "runtime/state.h"

static const rt_op_vtbl nop_vt = {0};
static const uint32_t SHARED[] = {6, 8}; /* view, request */
static const uint8_t SCOPE[] = "\x01\x00\x00\x00\x00\x00\x00\x00\x02u1";

typedef struct fx {
    rt_graph *g;
    rt_op *op;
    rt_kv *kv;
} fx;

static void setup(fx *f)
{
    assert_int_equal(rt_graph_new(NULL, &f->g), 0);
    assert_int_equal(rt_graph_add_op(f->g, "merge-action-details", NULL, &nop_vt, NULL, 1, 1, &f->op),
                     0);
    char err[256];
    assert_int_equal(rt_graph_open(f->g, err, sizeof err), 0);
    assert_int_equal(rt_kv_new(f->op, "parts", &f->kv), 0);
}

/* A joined impression of request r: the view and request depend on r only. */
static void joined(Event__JoinedEvent *e, Event__JoinedIdentifiers *ids, Event__View *v,
                   Delivery__Request *rq, Event__Impression *im, int r, int i, char *buf)
{
    *e = (Event__JoinedEvent)EVENT__JOINED_EVENT__INIT;
    *ids = (Event__JoinedIdentifiers)EVENT__JOINED_IDENTIFIERS__INIT;
    *v = (Event__View)EVENT__VIEW__INIT;
    *rq = (Delivery__Request)DELIVERY__REQUEST__INIT;
    *im = (Event__Impression)EVENT__IMPRESSION__INIT;
    snprintf(buf, 64, "imp-%d-%d", r, i);
    ids->impression_id = buf;
    v->name = r % 2 ? "search page" : "feed";
    v->search_query = "red shoes";
    rq->search_query = r % 2 ? "red shoes" : "blue shoes";
    rq->client_request_id = "c-1";
    e->ids = ids;
    e->view = v;
    e->request = rq;
    e->impression = im;
}

static size_t packed(const ProtobufCMessage *m, uint8_t *out)
{
    return protobuf_c_message_pack(m, out);
}

static void test_split_records_share_parts_and_join_to_the_same_message(void **state)
{
    (void)state;
    fx f;
    setup(&f);
    int64_t empty = rt_op_mem_used(f.op);
    enum { R = 3, I = 14 };
    rt_buf split[R * I];
    for (int r = 0; r < R; r++)
        for (int i = 0; i < I; i++) {
            Event__JoinedEvent e;
            Event__JoinedIdentifiers ids;
            Event__View v;
            Delivery__Request rq;
            Event__Impression im;
            char id[64];
            joined(&e, &ids, &v, &rq, &im, r, i, id);
            rt_buf *b = &split[r * I + i];
            rt_buf_init(b, 0);
            assert_int_equal(part_store_split(f.kv, SCOPE, sizeof SCOPE - 1, &e.base, SHARED, 2, b), 0);
            /* the record keeps two references, not the view and the request */
            assert_int_equal(b->data[0], 2);
            assert_true(b->len < protobuf_c_message_get_packed_size(&e.base));
            /* joined again, it is the same message */
            rt_buf j;
            rt_buf_init(&j, 0);
            assert_int_equal(part_store_join(f.kv, SCOPE, sizeof SCOPE - 1, b->data, b->len, &j), 0);
            Event__JoinedEvent *back = event__joined_event__unpack(NULL, j.len, j.data);
            assert_non_null(back);
            uint8_t want[1024], got[1024];
            assert_true(protobuf_c_message_get_packed_size(&e.base) <= sizeof want);
            size_t nw = packed(&e.base, want), ng = packed(&back->base, got);
            assert_int_equal(ng, nw);
            assert_memory_equal(got, want, nw);
            event__joined_event__free_unpacked(back, NULL);
            rt_buf_free(&j);
        }
    /* two distinct views and two distinct requests (r % 2) are all the store holds */
    assert_int_equal(rt_kv_count(f.kv), 4);
    for (int k = 0; k < R * I; k++) {
        part_store_release(f.kv, SCOPE, sizeof SCOPE - 1, split[k].data, split[k].len);
        rt_buf_free(&split[k]);
    }
    assert_int_equal(rt_kv_count(f.kv), 0);
    assert_int_equal(rt_op_mem_used(f.op), empty);
    rt_graph_free(f.g);
}

static void test_an_empty_part_stays_present_and_an_absent_one_absent(void **state)
{
    (void)state;
    fx f;
    setup(&f);
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    Event__View v = EVENT__VIEW__INIT; /* present, no fields: 0 bytes packed */
    e.view = &v;                      /* request absent */
    rt_buf b, j;
    rt_buf_init(&b, 0);
    rt_buf_init(&j, 0);
    assert_int_equal(part_store_split(f.kv, SCOPE, sizeof SCOPE - 1, &e.base, SHARED, 2, &b), 0);
    assert_int_equal(b.data[0], 1);
    assert_int_equal(part_store_join(f.kv, SCOPE, sizeof SCOPE - 1, b.data, b.len, &j), 0);
    Event__JoinedEvent *back = event__joined_event__unpack(NULL, j.len, j.data);
    assert_non_null(back);
    assert_non_null(back->view);
    assert_null(back->request);
    event__joined_event__free_unpacked(back, NULL);
    /* a record whose part is gone does not join (the caller reports a corrupt state) */
    part_store_release(f.kv, SCOPE, sizeof SCOPE - 1, b.data, b.len);
    rt_buf_reset(&j);
    assert_int_equal(part_store_join(f.kv, SCOPE, sizeof SCOPE - 1, b.data, b.len, &j), -1);
    /* malformed bytes are refused, not read past their end */
    uint8_t bad[] = {3, 6, 1, 2};
    assert_int_equal(part_store_header_len(bad, sizeof bad), -1);
    assert_int_equal(part_store_join(f.kv, SCOPE, sizeof SCOPE - 1, bad, sizeof bad, &j), -1);
    rt_buf_free(&b);
    rt_buf_free(&j);
    rt_graph_free(f.g);
}

static void test_scopes_keep_parts_apart(void **state)
{
    (void)state;
    fx f;
    setup(&f);
    static const uint8_t other[] = "\x01\x00\x00\x00\x00\x00\x00\x00\x02u2";
    Event__JoinedEvent e;
    Event__JoinedIdentifiers ids;
    Event__View v;
    Delivery__Request rq;
    Event__Impression im;
    char id[64];
    joined(&e, &ids, &v, &rq, &im, 1, 1, id);
    rt_buf a, b;
    rt_buf_init(&a, 0);
    rt_buf_init(&b, 0);
    assert_int_equal(part_store_split(f.kv, SCOPE, sizeof SCOPE - 1, &e.base, SHARED, 2, &a), 0);
    assert_int_equal(part_store_split(f.kv, other, sizeof other - 1, &e.base, SHARED, 2, &b), 0);
    /* the same bytes under two users: one copy each, released independently */
    assert_int_equal(rt_kv_count(f.kv), 4);
    part_store_release(f.kv, SCOPE, sizeof SCOPE - 1, a.data, a.len);
    assert_int_equal(rt_kv_count(f.kv), 2);
    rt_buf j;
    rt_buf_init(&j, 0);
    assert_int_equal(part_store_join(f.kv, other, sizeof other - 1, b.data, b.len, &j), 0);
    part_store_release(f.kv, other, sizeof other - 1, b.data, b.len);
    assert_int_equal(rt_kv_count(f.kv), 0);
    rt_buf_free(&a);
    rt_buf_free(&b);
    rt_buf_free(&j);
    rt_graph_free(f.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_records_share_parts_and_join_to_the_same_message),
        cmocka_unit_test(test_an_empty_part_stays_present_and_an_absent_one_absent),
        cmocka_unit_test(test_scopes_keep_parts_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
