/* Shared by the post-join operator tests (test_join_redundant*, test_join_merge*,
 * test_join_post*, test_join_fri*, test_join_latest*): a capture sink that keeps every record it
 * receives as packed bytes (or a copy of the mismatch row), and small builders. Included after
 * cmocka. */
#ifndef TEST_JOIN_POST_UTIL_H
#define TEST_JOIN_POST_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/join/join_records.h"
#include "runtime/graph.h"

typedef struct cap_rec {
    int64_t ts;
    int type;
    uint8_t *bytes; /* packed message; for REC_MISMATCH_ERROR the copied row below */
    size_t len;
    join_mismatch_error mm;
    char *mm_strings[11];
} cap_rec;

typedef struct capture {
    cap_rec *recs;
    size_t n, cap;
} capture;

static inline char *cap_dup(const char *s)
{
    return strdup(s ? s : "");
}

static inline int cap_process(rt_op *op, int input, const rt_record *rec)
{
    (void)input;
    capture *c = rt_op_self(op);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->recs = realloc(c->recs, c->cap * sizeof *c->recs);
    }
    cap_rec *r = &c->recs[c->n++];
    memset(r, 0, sizeof *r);
    r->ts = rec->ts;
    r->type = rec->type;
    if (rec->type == REC_MISMATCH_ERROR) {
        const join_mismatch_error *m = rec->data;
        r->mm = *m;
        const char *src[11] = {m->lhs_log_user_id,
                               m->lhs_session_id,
                               m->lhs_view_id,
                               m->lhs_auto_view_id,
                               m->lhs_request_id,
                               m->lhs_insertion_id,
                               m->lhs_impression_id,
                               m->rhs_record_id,
                               m->lhs_string,
                               m->rhs_string,
                               NULL};
        for (int i = 0; i < 10; i++)
            r->mm_strings[i] = cap_dup(src[i]);
        r->mm.lhs_log_user_id = r->mm_strings[0];
        r->mm.lhs_session_id = r->mm_strings[1];
        r->mm.lhs_view_id = r->mm_strings[2];
        r->mm.lhs_auto_view_id = r->mm_strings[3];
        r->mm.lhs_request_id = r->mm_strings[4];
        r->mm.lhs_insertion_id = r->mm_strings[5];
        r->mm.lhs_impression_id = r->mm_strings[6];
        r->mm.rhs_record_id = r->mm_strings[7];
        r->mm.lhs_string = r->mm_strings[8];
        r->mm.rhs_string = r->mm_strings[9];
        return 0;
    }
    const ProtobufCMessage *m = rec->data;
    r->len = protobuf_c_message_get_packed_size(m);
    r->bytes = malloc(r->len + 1);
    protobuf_c_message_pack(m, r->bytes);
    return 0;
}

static const rt_op_vtbl cap_vtbl = {.process = cap_process};

static inline void capture_free(capture *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->recs[i].bytes);
        for (int k = 0; k < 11; k++)
            free(c->recs[i].mm_strings[k]);
    }
    free(c->recs);
    memset(c, 0, sizeof *c);
}

/* Adds a capture sink and connects port `port` of from to it. */
static inline rt_op *capture_port(rt_graph *g, const char *uid, capture *c, rt_op *from, int port)
{
    rt_op *op = NULL;
    assert_int_equal(rt_graph_add_op(g, uid, NULL, &cap_vtbl, c, 1, 0, &op), 0);
    assert_int_equal(rt_graph_connect(g, from, port, op, 0), 0);
    return op;
}

static inline void graph_open_ok(rt_graph *g)
{
    char err[256] = "";
    if (rt_graph_open(g, err, sizeof err)) fail_msg("open: %s", err);
}

static inline void push_ok(rt_graph *g, rt_op *op, int input, int type, const void *data,
                           int64_t ts)
{
    rt_record r = {.ts = ts, .type = type, .data = (void *)data};
    if (rt_graph_push(g, op, input, &r)) fail_msg("push: %s", rt_graph_error(g));
}

static inline void wm_ok(rt_graph *g, int64_t wm)
{
    if (rt_graph_advance_watermark(g, wm)) fail_msg("watermark: %s", rt_graph_error(g));
}

static inline Event__TinyEvent *cap_tiny(const capture *c, size_t i)
{
    assert_true(i < c->n);
    assert_int_equal(c->recs[i].type, REC_TINY_EVENT);
    Event__TinyEvent *t = event__tiny_event__unpack(NULL, c->recs[i].len, c->recs[i].bytes);
    assert_non_null(t);
    return t;
}

static inline Event__JoinedEvent *cap_joined(const capture *c, size_t i)
{
    assert_true(i < c->n);
    assert_int_equal(c->recs[i].type, REC_JOINED_EVENT);
    Event__JoinedEvent *j = event__joined_event__unpack(NULL, c->recs[i].len, c->recs[i].bytes);
    assert_non_null(j);
    return j;
}

static inline Event__FlatResponseInsertion *cap_fri(const capture *c, size_t i)
{
    assert_true(i < c->n);
    assert_int_equal(c->recs[i].type, REC_FLAT_RESPONSE_INSERTION);
    Event__FlatResponseInsertion *f =
        event__flat_response_insertion__unpack(NULL, c->recs[i].len, c->recs[i].bytes);
    assert_non_null(f);
    return f;
}

static inline const char *nz(const char *s)
{
    return s ? s : "";
}

#define S(x) ((char *)(x))

/* A tiny event with lt = the given time; NULL strings stay absent. */
static inline Event__TinyEvent tiny_ev(uint64_t platform, const char *luid, uint64_t lt,
                                       const char *view, const char *req, const char *ins,
                                       const char *content, const char *imp, const char *act)
{
    Event__TinyEvent t = EVENT__TINY_EVENT__INIT;
    t.has_platform_id = platform != 0;
    t.platform_id = platform;
    t.log_user_id = (char *)luid;
    t.has_log_timestamp = lt != 0;
    t.log_timestamp = lt;
    t.view_id = (char *)view;
    t.request_id = (char *)req;
    t.insertion_id = (char *)ins;
    t.content_id = (char *)content;
    t.impression_id = (char *)imp;
    t.action_id = (char *)act;
    return t;
}

#endif
