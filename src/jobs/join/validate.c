#include "jobs/join/validate.h"

#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "google/protobuf/struct.pb-c.h"
#include "jobs/common_ops.h"
#include "runtime/metrics.h"

static int empty(const char *s)
{
    return !s || !*s;
}

static void *acopy(ProtobufCAllocator *a, const void *src, size_t size)
{
    void *p = a->alloc(a->allocator_data, size);
    if (p) memcpy(p, src, size);
    return p;
}

/* A copy of t (or a fresh Timing) with log_timestamp = ts. */
static Common__Timing *timing_with(const Common__Timing *t, int64_t ts, ProtobufCAllocator *a)
{
    Common__Timing init = COMMON__TIMING__INIT;
    Common__Timing *c = acopy(a, t ? t : &init, sizeof *c);
    if (!c) return NULL;
    c->log_timestamp = (uint64_t)ts;
    c->has_log_timestamp = ts != 0;
    return c;
}

int validate_set_log_timestamp(validate_kind kind, const void *msg, int64_t ts,
                               ProtobufCAllocator *a, void **out)
{
    *out = NULL;
    switch (kind) {
    case VALIDATE_VIEW: {
        Event__View *c = acopy(a, msg, sizeof *c);
        if (!c || !(c->timing = timing_with(c->timing, ts, a))) return -1;
        *out = c;
        return 0;
    }
    case VALIDATE_IMPRESSION: {
        Event__Impression *c = acopy(a, msg, sizeof *c);
        if (!c || !(c->timing = timing_with(c->timing, ts, a))) return -1;
        *out = c;
        return 0;
    }
    case VALIDATE_ACTION: {
        Event__Action *c = acopy(a, msg, sizeof *c);
        if (!c || !(c->timing = timing_with(c->timing, ts, a))) return -1;
        *out = c;
        return 0;
    }
    case VALIDATE_DELIVERY_LOG: {
        Delivery__DeliveryLog *c = acopy(a, msg, sizeof *c);
        if (!c) return -1;
        Delivery__Request init = DELIVERY__REQUEST__INIT;
        Delivery__Request *rq = acopy(a, c->request ? c->request : &init, sizeof *rq);
        if (!rq || !(rq->timing = timing_with(rq->timing, ts, a))) return -1;
        c->request = rq;
        *out = c;
        return 0;
    }
    }
    return -1;
}

/* ---- rules ---- */

typedef struct rows {
    join_validation_error *e;
    size_t n;
    join_validation_error base; /* the ids every row of this record carries */
} rows;

static void add(rows *r, join_error_type type, join_field field)
{
    join_validation_error *e = &r->e[r->n++];
    *e = r->base;
    e->error_type = type;
    e->field = field;
}

static void base_of(join_validation_error *b, join_record_type rt, uint64_t platform_id,
                    const Common__UserInfo *ui, const Common__Timing *t)
{
    memset(b, 0, sizeof *b);
    b->record_type = rt;
    b->platform_id = (int64_t)platform_id;
    b->log_user_id = ui ? ui->log_user_id : NULL;
    if (t) {
        b->client_log_timestamp = (int64_t)t->client_log_timestamp;
        b->event_api_timestamp = (int64_t)t->event_api_timestamp;
        b->log_timestamp = (int64_t)t->log_timestamp;
    }
}

static size_t check_view(const Event__View *v, join_validation_error *errs)
{
    rows r = {errs, 0, {0}};
    base_of(&r.base, JOIN_RT_VIEW, v->platform_id, v->user_info, v->timing);
    r.base.view_id = v->view_id;
    if (empty(r.base.log_user_id)) add(&r, JOIN_ET_MISSING_FIELD, JOIN_F_LOG_USER_ID);
    return r.n;
}

/* Java's String.split("\\.") gives no segment for a header made only of dots, and the
 * reference's restructure step throws on it. */
static int only_dots(const char *h)
{
    if (empty(h)) return 0;
    for (; *h; h++)
        if (*h != '.') return 0;
    return 1;
}

static size_t check_delivery_log(const Delivery__DeliveryLog *dl, join_validation_error *errs)
{
    rows r = {errs, 0, {0}};
    const Delivery__Request *rq = dl->request;
    base_of(&r.base, JOIN_RT_DELIVERY_LOG, rq ? rq->platform_id : 0, rq ? rq->user_info : NULL,
            rq ? rq->timing : NULL);
    if (rq) {
        r.base.view_id = rq->view_id;
        r.base.request_id = rq->request_id;
    }
    if (empty(r.base.log_user_id)) add(&r, JOIN_ET_MISSING_FIELD, JOIN_F_LOG_USER_ID);
    if (!rq) return r.n;
    const Google__Protobuf__ListValue *m = rq->insertion_matrix;
    size_t nrows = m ? m->n_values : 0;
    for (size_t i = 0; i < nrows; i++) {
        const Google__Protobuf__Value *row = m->values[i];
        /* a row that is not a list has no values, as Java's getListValue() of it */
        size_t n =
            row && row->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE && row->list_value
                ? row->list_value->n_values
                : 0;
        if (n != rq->n_insertion_matrix_headers) {
            add(&r, JOIN_ET_MISMATCHED_MATRIX_HEADER_LENGTH, JOIN_F_MULTIPLE);
            break;
        }
    }
    if (nrows && rq->n_insertion_matrix_headers)
        for (size_t h = 0; h < rq->n_insertion_matrix_headers; h++)
            if (only_dots(rq->insertion_matrix_headers[h])) {
                add(&r, JOIN_ET_MISMATCHED_MATRIX_HEADER_LENGTH, JOIN_F_MULTIPLE);
                break;
            }
    return r.n;
}

static size_t check_impression(const Event__Impression *im, join_validation_error *errs)
{
    rows r = {errs, 0, {0}};
    base_of(&r.base, JOIN_RT_IMPRESSION, im->platform_id, im->user_info, im->timing);
    r.base.view_id = im->view_id;
    r.base.request_id = im->request_id;
    r.base.response_insertion_id = im->insertion_id;
    r.base.impression_id = im->impression_id;
    if (empty(r.base.log_user_id)) add(&r, JOIN_ET_MISSING_FIELD, JOIN_F_LOG_USER_ID);
    if (empty(im->insertion_id) && empty(im->content_id))
        add(&r, JOIN_ET_MISSING_JOINABLE_ID, JOIN_F_MULTIPLE);
    return r.n;
}

static size_t check_action(const Event__Action *ac, join_validation_error *errs)
{
    rows r = {errs, 0, {0}};
    base_of(&r.base, JOIN_RT_ACTION, ac->platform_id, ac->user_info, ac->timing);
    r.base.view_id = ac->view_id;
    r.base.request_id = ac->request_id;
    r.base.response_insertion_id = ac->insertion_id;
    r.base.impression_id = ac->impression_id;
    r.base.action_id = ac->action_id;
    if (empty(r.base.log_user_id)) add(&r, JOIN_ET_MISSING_FIELD, JOIN_F_LOG_USER_ID);
    const Event__Cart *cart = ac->cart;
    size_t n = cart ? cart->n_contents : 0;
    int any_cart_id = 0, zero_qty = 0, no_id = 0;
    for (size_t i = 0; i < n; i++) {
        const Event__CartContent *c = cart->contents[i];
        if (c && !empty(c->content_id))
            any_cart_id = 1;
        else
            no_id = 1;
        if (!c || c->quantity == 0) zero_qty = 1;
    }
    if (empty(ac->impression_id) && empty(ac->insertion_id) && empty(ac->content_id) &&
        !any_cart_id)
        add(&r, JOIN_ET_MISSING_JOINABLE_ID, JOIN_F_MULTIPLE);
    if (zero_qty) add(&r, JOIN_ET_MISSING_FIELD, JOIN_F_CART_CONTENT_QUANTITY);
    if (no_id) add(&r, JOIN_ET_MISSING_FIELD, JOIN_F_CART_CONTENT_ID);
    return r.n;
}

size_t validate_record(validate_kind kind, const void *msg,
                       join_validation_error errs[VALIDATE_MAX_ERRORS])
{
    switch (kind) {
    case VALIDATE_VIEW:
        return check_view(msg, errs);
    case VALIDATE_DELIVERY_LOG:
        return check_delivery_log(msg, errs);
    case VALIDATE_IMPRESSION:
        return check_impression(msg, errs);
    case VALIDATE_ACTION:
        return check_action(msg, errs);
    }
    return 0;
}

int validate_rec_type(validate_kind kind)
{
    switch (kind) {
    case VALIDATE_VIEW:
        return REC_VIEW;
    case VALIDATE_DELIVERY_LOG:
        return REC_DELIVERY_LOG;
    case VALIDATE_IMPRESSION:
        return REC_IMPRESSION;
    case VALIDATE_ACTION:
        return REC_ACTION;
    }
    return -1;
}

/* ---- operator ---- */

#define ARENA_CHUNK (16 << 10)
#define ARENA_CAP ((size_t)16 << 20) /* copies are a few small structs per record */

typedef struct validate_op {
    validate_kind kind;
    pb_arena *arena;
    rt_counter *rows, *invalid;
} validate_op;

static int validate_open(rt_op *op)
{
    validate_op *v = rt_op_self(op);
    if (rt_op_counter(op, "numValidationErrors", &v->rows) ||
        rt_op_counter(op, "numInvalidRecords", &v->invalid) ||
        rt_op_set_port_name(op, 1, "validation_error"))
        return rt_op_fail(op, "out of memory");
    return 0;
}

static int validate_process2(rt_op *op, validate_op *v, const rt_record *rec)
{
    if (rec->type != validate_rec_type(v->kind))
        return rt_op_fail(op, "record type %d is not the stream's type %d", rec->type,
                          validate_rec_type(v->kind));
    void *copy;
    if (validate_set_log_timestamp(v->kind, rec->data, rec->ts, pb_arena_allocator(v->arena),
                                   &copy))
        return rt_op_fail(op, "out of memory setting the log timestamp");
    join_validation_error errs[VALIDATE_MAX_ERRORS];
    size_t n = validate_record(v->kind, copy, errs);
    if (n == 0) {
        rt_record r = *rec;
        r.data = copy;
        return rt_emit(op, 0, &r);
    }
    rt_counter_add(v->invalid, 1);
    rt_counter_add(v->rows, n);
    for (size_t i = 0; i < n; i++) {
        rt_record r = {.ts = rec->ts,
                       .type = REC_VALIDATION_ERROR,
                       .data = &errs[i],
                       .key = rec->key,
                       .key_len = rec->key_len};
        if (rt_emit(op, 1, &r)) return -1;
    }
    return 0;
}

static int validate_process(rt_op *op, int input, const rt_record *rec)
{
    validate_op *v = rt_op_self(op);
    int rc = validate_process2(op, v, rec);
    pb_arena_reset(v->arena, ARENA_CHUNK);
    return rc;
}

static void validate_close(rt_op *op)
{
    validate_op *v = rt_op_self(op);
    pb_arena_free(v->arena);
    free(v);
}

static const rt_op_vtbl validate_vtbl = {
    .open = validate_open,
    .process = validate_process,
    .close = validate_close,
};

int validate_op_add(rt_graph *g, const char *uid, validate_kind kind, rt_op **out)
{
    validate_op *v = calloc(1, sizeof *v);
    if (!v) return -1;
    v->kind = kind;
    v->arena = pb_arena_new(ARENA_CHUNK, ARENA_CAP);
    if (!v->arena || rt_graph_add_op(g, uid, "validate", &validate_vtbl, v, 1, 2, out)) {
        pb_arena_free(v->arena);
        free(v);
        return -1;
    }
    return 0;
}
