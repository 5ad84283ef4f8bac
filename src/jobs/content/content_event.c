#include "jobs/content/content_event.h"

#include <stdlib.h>
#include <string.h>

#include "jobs/common_ops.h"
#include "runtime/operator.h"

/* Java long arithmetic: wraps, where C's signed overflow would be undefined. */
static int64_t wrap_mul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

static int nonempty(const char *s)
{
    return s && *s;
}

/* The column an action type counts in, or -1 (a row of zeros). */
static int action_column(const Event__Action *a)
{
    switch (a->action_type) {
    case EVENT__ACTION_TYPE__NAVIGATE: return CM_NAVIGATES;
    case EVENT__ACTION_TYPE__ADD_TO_CART: return CM_ADD_TO_CARTS;
    case EVENT__ACTION_TYPE__CHECKOUT: return CM_CHECKOUTS;
    case EVENT__ACTION_TYPE__PURCHASE: return CM_PURCHASES;
    default: return -1;
    }
}

static int action_events(const Event__Action *a, bool double_count,
                         int (*fn)(void *, const cm_event *), void *ctx)
{
    int col = action_column(a);
    size_t counted_rows = 0;
    const Event__Cart *cart = a->cart;
    if (cart)
        for (size_t i = 0; i < cart->n_contents; i++)
            counted_rows += cart->contents[i] && nonempty(cart->contents[i]->content_id);
    int rc;
    if (nonempty(a->content_id) && (double_count || !counted_rows)) {
        cm_event e = {.platform_id = a->platform_id, .content_id = a->content_id};
        if (col >= 0) e.v[col] = 1;
        if ((rc = fn(ctx, &e))) return rc;
    }
    for (size_t i = 0; cart && i < cart->n_contents; i++) {
        const Event__CartContent *cc = cart->contents[i];
        if (!cc || !nonempty(cc->content_id)) continue;
        cm_event e = {.platform_id = a->platform_id, .content_id = cc->content_id};
        if (col >= 0) e.v[col] = cc->quantity;
        if (col == CM_PURCHASES)
            e.v[CM_GMV_USD_MICROS] =
                wrap_mul(cc->quantity, cc->price_per_unit ? cc->price_per_unit->amount_micros : 0);
        if ((rc = fn(ctx, &e))) return rc;
    }
    return 0;
}

int cm_events_of(const rt_record *rec, bool double_count,
                 int (*fn)(void *ctx, const cm_event *e), void *ctx)
{
    cm_event e;
    memset(&e, 0, sizeof e);
    switch (rec->type) {
    case REC_VIEW: {
        const Event__View *v = rec->data;
        if (!nonempty(v->content_id)) return 0;
        e.platform_id = v->platform_id;
        e.content_id = v->content_id;
        e.v[CM_VIEWS] = 1;
        return fn(ctx, &e);
    }
    case REC_IMPRESSION: {
        const Event__Impression *im = rec->data;
        if (!nonempty(im->content_id)) return 0;
        e.platform_id = im->platform_id;
        e.content_id = im->content_id;
        e.v[CM_IMPRESSIONS] = 1;
        return fn(ctx, &e);
    }
    case REC_ACTION: return action_events(rec->data, double_count, fn, ctx);
    case CM_REC_JOINED_EVENT: {
        const Event__JoinedEvent *je = rec->data;
        const Delivery__Insertion *ri = je->response_insertion;
        if (!ri || !nonempty(ri->content_id)) return 0;
        e.platform_id = je->ids ? je->ids->platform_id : 0;
        e.content_id = ri->content_id;
        e.v[CM_JOINED_IMPRESSIONS] = 1;
        e.v[CM_JOINED_IMPRESSION_POSITION_SUM] = (int64_t)ri->position;
        return fn(ctx, &e);
    }
    }
    return 0;
}

/* ---- the operator ---- */

typedef struct event_op {
    bool double_count;
} event_op;

typedef struct emit_ctx {
    rt_op *op;
    int64_t ts;
} emit_ctx;

static int emit_event(void *ctx, const cm_event *e)
{
    emit_ctx *c = ctx;
    rt_record r = {.ts = c->ts, .type = CM_REC_EVENT, .data = (void *)e};
    return rt_emit(c->op, 0, &r);
}

static int event_process(rt_op *op, int input, const rt_record *rec)
{
    event_op *s = rt_op_self(op);
    emit_ctx c = {op, rec->ts};
    return cm_events_of(rec, s->double_count, emit_event, &c);
}

static void event_close(rt_op *op)
{
    free(rt_op_self(op));
}

static const rt_op_vtbl event_vtbl = {.process = event_process, .close = event_close};

int cm_event_op_add(rt_graph *g, const char *uid, bool double_count, rt_op **out)
{
    event_op *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->double_count = double_count;
    if (rt_graph_add_op(g, uid, "content-event", &event_vtbl, s, 1, 1, out)) {
        free(s);
        return -1;
    }
    return 0;
}

/* ---- joined events ---- */

static int64_t lt(const Common__Timing *t)
{
    return t ? (int64_t)t->log_timestamp : 0;
}

int64_t cm_joined_log_timestamp(const Event__JoinedEvent *e)
{
    const Common__Timing *order[] = {
        e->timing,
        e->action ? e->action->timing : NULL,
        e->impression ? e->impression->timing : NULL,
        e->api_execution_insertion ? e->api_execution_insertion->timing : NULL,
        e->response_insertion ? e->response_insertion->timing : NULL,
        e->request ? e->request->timing : NULL,
        e->view ? e->view->timing : NULL,
        e->session ? e->session->timing : NULL,
        e->user ? e->user->timing : NULL,
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (lt(order[i])) return lt(order[i]);
    return 0;
}

/* ---- getLogTimestamp from the wire ----
 * JoinedEvent fields in getLogTimestamp's order, and the one field number every one of their
 * messages gives its Timing (User, View, Request, Insertion, Impression, Action and the private
 * Session all declare `timing = 3`); the top-level timing is field 2, and Timing.log_timestamp
 * is field 3. */
static const uint32_t wire_order[] = {2, 17, 16, 14, 12, 8, 6, 5, 3};
#define WIRE_SLOTS (sizeof wire_order / sizeof wire_order[0])
#define TIMING_FIELD 3
#define LOG_TIMESTAMP_FIELD 3

typedef struct wire_rd {
    const uint8_t *p, *end;
} wire_rd;

static int rd_varint(wire_rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Reads one field's tag and, for a length-delimited field, its bytes into *sub; skips the value
 * of any other wire type. Returns 0, or -1 on malformed bytes (groups count as malformed). */
static int rd_field(wire_rd *r, uint32_t *num, int *wt, wire_rd *sub, uint64_t *varint)
{
    uint64_t tag, n;
    if (rd_varint(r, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFF) return -1;
    *num = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    switch (*wt) {
    case 0: return rd_varint(r, varint);
    case 1: n = 8; break;
    case 5: n = 4; break;
    case 2:
        if (rd_varint(r, &n)) return -1;
        break;
    default: return -1;
    }
    if (n > (uint64_t)(r->end - r->p)) return -1;
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return 0;
}

/* Scans a Timing message for log_timestamp; *slot takes the last value seen. */
static int scan_timing(wire_rd r, uint64_t *slot, int *set)
{
    while (r.p < r.end) {
        uint32_t num;
        int wt;
        wire_rd sub;
        uint64_t v = 0;
        if (rd_field(&r, &num, &wt, &sub, &v)) return -1;
        if (num == LOG_TIMESTAMP_FIELD) {
            if (wt != 0) return -1; /* the decoder rejects it too */
            *slot = v;
            *set = 1;
        }
    }
    return 0;
}

int64_t cm_joined_log_timestamp_wire(const uint8_t *value, size_t len, int64_t record_ts)
{
    uint64_t slot[WIRE_SLOTS] = {0};
    int set[WIRE_SLOTS] = {0};
    wire_rd r = {value, value + len};
    while (r.p < r.end) {
        uint32_t num;
        int wt;
        wire_rd sub;
        uint64_t v;
        if (rd_field(&r, &num, &wt, &sub, &v)) return record_ts;
        size_t k = 0;
        while (k < WIRE_SLOTS && wire_order[k] != num) k++;
        if (k == WIRE_SLOTS) continue;
        if (wt != 2) return record_ts;
        if (num == 2) {
            if (scan_timing(sub, &slot[k], &set[k])) return record_ts;
            continue;
        }
        while (sub.p < sub.end) {
            uint32_t n2;
            int wt2;
            wire_rd t;
            uint64_t v2;
            if (rd_field(&sub, &n2, &wt2, &t, &v2)) return record_ts;
            if (n2 != TIMING_FIELD) continue;
            if (wt2 != 2 || scan_timing(t, &slot[k], &set[k])) return record_ts;
        }
    }
    for (size_t k = 0; k < WIRE_SLOTS; k++)
        if (set[k] && slot[k]) return (int64_t)slot[k];
    return record_ts;
}
