#include "jobs/join/combine_delivery_log.h"

#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "jobs/common_ops.h"
#include "jobs/join/bot_filter.h"
#include "jobs/join/join_records.h"
#include "jobs/join/tiny.h"
#include "runtime/buf.h"
#include "runtime/htab.h"
#include "runtime/metrics.h"
#include "runtime/state.h"

/* A pending record holds two DeliveryLogs of at most --maxRecordBytes each; this bounds the
 * scratch buffer that keys and packed values are built in. */
#define SCRATCH_LIMIT ((size_t)256 << 20)
#define ARENA_CHUNK (64 << 10)
#define ARENA_CAP ((size_t)512 << 20)

/* ---- reading a combined record ---- */

const Delivery__DeliveryLog *combine_chosen(const Event__CombinedDeliveryLog *c)
{
    return c->sdk ? c->sdk : c->api;
}

uint64_t combine_platform_id(const Event__CombinedDeliveryLog *c)
{
    if (c->api && c->api->platform_id) return c->api->platform_id;
    const Delivery__DeliveryLog *d = combine_chosen(c);
    return d ? d->platform_id : 0;
}

static const char *luid_of(const Delivery__DeliveryLog *dl)
{
    return dl && dl->request && dl->request->user_info && dl->request->user_info->log_user_id
               ? dl->request->user_info->log_user_id
               : "";
}

const char *combine_log_user_id(const Event__CombinedDeliveryLog *c)
{
    const char *a = luid_of(c->api);
    return *a ? a : luid_of(c->sdk);
}

int combine_slot(int execution_server)
{
    switch (execution_server) {
    case DELIVERY__EXECUTION_SERVER__UNKNOWN_EXECUTION_SERVER:
    case DELIVERY__EXECUTION_SERVER__API:
    case DELIVERY__EXECUTION_SERVER__SIMPLE_API:
        return 0;
    case DELIVERY__EXECUTION_SERVER__SDK:
        return 1;
    default:
        return -1;
    }
}

/* ---- operator ---- */

typedef struct combine_op {
    combine_config cfg;
    rt_kv *pending;
    pb_arena *arena;
    rt_buf key, val;
    rt_counter *combined, *replaced, *kept, *unknown, *too_long;
} combine_op;

static int server_of(const Delivery__DeliveryLog *dl)
{
    return dl->execution && dl->execution->has_execution_server
               ? (int)dl->execution->execution_server
               : 0;
}

static int priority_of(const Delivery__DeliveryLog *dl)
{
    const Delivery__Request *rq = dl->request;
    int t = rq && rq->client_info && rq->client_info->has_traffic_type
                ? (int)rq->client_info->traffic_type
                : 0;
    return bot_filter_traffic_priority(t);
}

static int combine_open(rt_op *op)
{
    combine_op *c = rt_op_self(op);
    if (rt_kv_new(op, "pending", &c->pending)) return -1;
    if (rt_op_counter(op, "numCombined", &c->combined) ||
        rt_op_counter(op, "numSlotReplaced", &c->replaced) ||
        rt_op_counter(op, "numSlotKept", &c->kept) ||
        rt_op_counter(op, "numUnknownExecutionServer", &c->unknown) ||
        rt_op_counter(op, "numKeyTooLong", &c->too_long) ||
        rt_op_set_port_name(op, 1, "dropped_delivery_log_unknown_execution_server"))
        return rt_op_fail(op, "out of memory");
    rt_op_set_watermark_holdback(op, c->cfg.window_ms);
    return 0;
}

/* Paging fix (§5): an SDK log without a paging id takes the API log's. Copies the structs on
 * the path instead of writing through them: the SDK log may be the borrowed input. */
static int fix_paging(Event__CombinedDeliveryLog *cd, ProtobufCAllocator *a)
{
    if (!cd->api || !cd->sdk) return 0;
    const Delivery__Response *ar = cd->api->response;
    const char *api_id = ar && ar->paging_info ? ar->paging_info->paging_id : NULL;
    const Delivery__Response *sr = cd->sdk->response;
    const char *sdk_id = sr && sr->paging_info ? sr->paging_info->paging_id : NULL;
    if (!api_id || !*api_id || (sdk_id && *sdk_id)) return 0;
    Delivery__DeliveryLog *sdk = a->alloc(a->allocator_data, sizeof *sdk);
    Delivery__Response *resp = a->alloc(a->allocator_data, sizeof *resp);
    Delivery__PagingInfo *pi = a->alloc(a->allocator_data, sizeof *pi);
    if (!sdk || !resp || !pi) return -1;
    Delivery__Response rinit = DELIVERY__RESPONSE__INIT;
    Delivery__PagingInfo pinit = DELIVERY__PAGING_INFO__INIT;
    *sdk = *cd->sdk;
    *resp = sr ? *sr : rinit;
    *pi = sr && sr->paging_info ? *sr->paging_info : pinit;
    pi->paging_id = (char *)api_id;
    resp->paging_info = pi;
    sdk->response = resp;
    cd->sdk = sdk;
    return 0;
}

static int emit_combined(rt_op *op, combine_op *c, Event__CombinedDeliveryLog *cd, int64_t ts)
{
    ProtobufCAllocator *a = pb_arena_allocator(c->arena);
    if (fix_paging(cd, a)) return rt_op_fail(op, "out of memory (arena cap %zu bytes)", ARENA_CAP);
    const char *luid = combine_log_user_id(cd);
    size_t n = strlen(luid);
    uint8_t *key = a->alloc(a->allocator_data, 8 + n);
    if (!key) return rt_op_fail(op, "out of memory (arena cap %zu bytes)", ARENA_CAP);
    job_key_platform_id(combine_platform_id(cd), luid, key, 8 + n);
    if (cd->api && cd->sdk) rt_counter_add(c->combined, 1);
    rt_record r = {
        .ts = ts, .type = REC_COMBINED_DELIVERY_LOG, .data = cd, .key = key, .key_len = 8 + n};
    return rt_emit(op, 0, &r);
}

/* State key: platform_id (8 bytes LE), log_user_id length (4 bytes LE), log_user_id,
 * client_request_id. The length keeps (user, id) pairs from running into each other. */
static int build_key(combine_op *c, const Delivery__DeliveryLog *dl, const char *crid)
{
    const char *luid = luid_of(dl);
    size_t nl = strlen(luid);
    uint8_t p[8];
    job_put_le64(p, dl->platform_id);
    rt_buf_reset(&c->key);
    if (nl > UINT32_MAX) return -1;
    return rt_buf_append(&c->key, p, 8) || rt_buf_put_u32(&c->key, (uint32_t)nl) ||
                   rt_buf_append(&c->key, luid, nl) || rt_buf_append(&c->key, crid, strlen(crid))
               ? -1
               : 0;
}

/* Packs [timer time][cd] into c->val. */
static int pack_value(combine_op *c, int64_t timer, const Event__CombinedDeliveryLog *cd)
{
    size_t size = event__combined_delivery_log__get_packed_size(cd);
    rt_buf_reset(&c->val);
    if (rt_buf_put_i64(&c->val, timer) || rt_buf_reserve(&c->val, size)) return -1;
    event__combined_delivery_log__pack(cd, c->val.data + c->val.len);
    c->val.len += size;
    return 0;
}

static Event__CombinedDeliveryLog *unpack_value(combine_op *c, const uint8_t *v, size_t len,
                                                int64_t *timer)
{
    rt_buf_reader r;
    rt_buf_reader_init(&r, v, len);
    if (rt_buf_read_i64(&r, timer)) return NULL;
    return event__combined_delivery_log__unpack(pb_arena_allocator(c->arena),
                                                rt_buf_reader_left(&r), r.p);
}

static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int combine_handle(rt_op *op, combine_op *c, const rt_record *rec)
{
    if (rec->type != REC_DELIVERY_LOG)
        return rt_op_fail(op, "record type %d is not a delivery log", rec->type);
    Delivery__DeliveryLog *dl = rec->data;
    int slot = combine_slot(server_of(dl));
    if (slot < 0) {
        rt_counter_add(c->unknown, 1);
        Event__TinyEvent te;
        tiny_of_delivery_log(dl, &te);
        rt_record r = {.ts = rec->ts,
                       .type = REC_TINY_EVENT,
                       .data = &te,
                       .key = rec->key,
                       .key_len = rec->key_len};
        return rt_emit(op, 1, &r);
    }
    const char *crid = dl->request ? dl->request->client_request_id : NULL;
    int too_long = crid && *crid && 12 + strlen(luid_of(dl)) + strlen(crid) > RT_HTAB_KEY_MAX;
    if (too_long) rt_counter_add(c->too_long, 1);
    if (!crid || !*crid || too_long) {
        Event__CombinedDeliveryLog cd = EVENT__COMBINED_DELIVERY_LOG__INIT;
        if (slot)
            cd.sdk = dl;
        else
            cd.api = dl;
        return emit_combined(op, c, &cd, rec->ts);
    }
    if (build_key(c, dl, crid))
        return rt_op_fail(op, "delivery log key over %zu bytes", c->key.limit);
    size_t vlen;
    const uint8_t *v = rt_kv_get(c->pending, c->key.data, c->key.len, &vlen);
    int64_t timer;
    Event__CombinedDeliveryLog *cd;
    Event__CombinedDeliveryLog fresh = EVENT__COMBINED_DELIVERY_LOG__INIT;
    if (!v) {
        timer = add_sat(rec->ts, c->cfg.window_ms);
        cd = &fresh;
    } else {
        if (!(cd = unpack_value(c, v, vlen, &timer)))
            return rt_op_fail(op, "a pending combined delivery log (%zu bytes) does not decode",
                              vlen);
        const Delivery__DeliveryLog *old = slot ? cd->sdk : cd->api;
        if (old && priority_of(dl) < priority_of(old)) {
            rt_counter_add(c->kept, 1);
            return 0;
        }
        /* the reference logs a warning when request ids differ; the later log wins */
        if (old) rt_counter_add(c->replaced, 1);
    }
    if (slot)
        cd->sdk = dl;
    else
        cd->api = dl;
    if (pack_value(c, timer, cd))
        return rt_op_fail(op, "pending combined delivery log over %zu bytes", c->val.limit);
    if (rt_kv_put(c->pending, c->key.data, c->key.len, c->val.data, c->val.len)) return -1;
    if (!v && rt_timer_register(op, timer, c->key.data, c->key.len)) return -1;
    return 0;
}

static int combine_process(rt_op *op, int input, const rt_record *rec)
{
    combine_op *c = rt_op_self(op);
    int rc = combine_handle(op, c, rec);
    pb_arena_reset(c->arena, ARENA_CHUNK);
    return rc;
}

static int combine_timer(rt_op *op, int64_t time, const uint8_t *key, size_t key_len)
{
    combine_op *c = rt_op_self(op);
    size_t vlen;
    const uint8_t *v = rt_kv_get(c->pending, key, key_len, &vlen);
    if (!v) return 0;
    int64_t timer;
    Event__CombinedDeliveryLog *cd = unpack_value(c, v, vlen, &timer);
    if (!cd) {
        pb_arena_reset(c->arena, ARENA_CHUNK);
        return rt_op_fail(op, "a pending combined delivery log (%zu bytes) does not decode", vlen);
    }
    rt_kv_delete(c->pending, key, key_len);
    int rc = emit_combined(op, c, cd, time);
    pb_arena_reset(c->arena, ARENA_CHUNK);
    return rc;
}

static void combine_close(rt_op *op)
{
    combine_op *c = rt_op_self(op);
    rt_buf_free(&c->key);
    rt_buf_free(&c->val);
    pb_arena_free(c->arena);
    free(c);
}

static const rt_op_vtbl combine_vtbl = {
    .open = combine_open,
    .process = combine_process,
    .on_timer = combine_timer,
    .close = combine_close,
};

int combine_delivery_log_op_add(rt_graph *g, const char *uid, const combine_config *cfg,
                                rt_op **out)
{
    if (cfg->window_ms < 0) return -1;
    combine_op *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->cfg = *cfg;
    rt_buf_init(&c->key, RT_HTAB_KEY_MAX);
    rt_buf_init(&c->val, SCRATCH_LIMIT);
    if (!(c->arena = pb_arena_new(ARENA_CHUNK, ARENA_CAP)) ||
        rt_graph_add_op(g, uid, "combine-delivery-log", &combine_vtbl, c, 1, 2, out)) {
        pb_arena_free(c->arena);
        free(c);
        return -1;
    }
    return 0;
}
