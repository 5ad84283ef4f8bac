#include "jobs/join/redundant_impressions.h"
#include "jobs/join/join_bytes.h"

#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "jobs/join/join_records.h"
#include "runtime/buf.h"
#include "runtime/state.h"

/* Keys longer than this are not reduced (the record passes unchanged and is counted): rt_kv keys
 * stop at 64 KiB and no real id comes near it. */
#define RI_KEY_MAX 16384
#define RI_ARENA_CAP ((size_t)64 << 20)

/* "state" value: replace_after, latest_cleanup (i64 LE each), has_root, has_cleanup (u8 each),
 * then the packed root TinyEvent. */
#define RI_HDR 18

/* "pending" value: used (u32), count (u32), then entries {cleanup i64, len u32, packed
 * TinyEvent}; `used` counts the entry bytes and the value is longer (capacity doubles) so an
 * append is amortised O(entry). */
#define RI_PHDR 8

typedef struct ri_op {
    redundant_impressions_config cfg;
    rt_kv *state, *pending;
    pb_arena *arena;
    rt_buf scratch;
    uint8_t key[RI_KEY_MAX + 32];
    rt_counter *redundant, *late_actions, *over_limit, *unkeyed;
} ri_op;

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* The §10 key. Returns its length, or 0 when it does not fit RI_KEY_MAX. */
static size_t build_key(ri_op *r, const Event__TinyEvent *t)
{
    const char *luid = str_or_empty(t->log_user_id);
    const char *ins = str_or_empty(t->insertion_id);
    const char *a = ins, *b = "";
    if (!*ins) {
        a = str_or_empty(t->view_id);
        b = str_or_empty(t->content_id);
    }
    size_t nl = strlen(luid), na = strlen(a), nb = strlen(b);
    if (nl + na + nb + 30 > RI_KEY_MAX) return 0;
    uint8_t *p = r->key;
    jb_put_i64(p, (int64_t)t->platform_id);
    size_t n = 8;
    n += jb_put_varint(p + n, nl);
    memcpy(p + n, luid, nl);
    n += nl;
    n += jb_put_varint(p + n, na);
    memcpy(p + n, a, na);
    n += na;
    memcpy(p + n, b, nb);
    return n + nb;
}

/* floor((lt + 2 ttl) / ttl) * ttl, with the truncating remainder the reference uses. */
static int64_t cleanup_time(const ri_op *r, int64_t lt)
{
    int64_t t = lt + 2 * r->cfg.ttl_ms;
    return t - t % r->cfg.ttl_ms;
}

static int emit_tiny(rt_op *op, int port, const Event__TinyEvent *t, int64_t ts)
{
    rt_record out = {.ts = ts, .type = REC_TINY_EVENT, .data = (void *)t};
    return rt_emit(op, port, &out);
}

static int pack_tiny(ri_op *r, const Event__TinyEvent *t)
{
    rt_buf_reset(&r->scratch);
    size_t n = protobuf_c_message_get_packed_size(&t->base);
    if (rt_buf_reserve(&r->scratch, n)) return -1;
    protobuf_c_message_pack(&t->base, r->scratch.data);
    r->scratch.len = n;
    return 0;
}

static Event__TinyEvent *unpack_tiny(ri_op *r, const uint8_t *p, size_t n)
{
    return event__tiny_event__unpack(pb_arena_allocator(r->arena), n, p);
}

/* The action re-pointed to the root (§10): unchanged when it names the root's impression, else a
 * copy of the root with the action's log_timestamp and action_id (the action's own content ids
 * are lost, as in the reference). */
static const Event__TinyEvent *with_root(ri_op *r, const Event__TinyEvent *action,
                                         const Event__TinyEvent *root)
{
    if (!strcmp(str_or_empty(action->impression_id), str_or_empty(root->impression_id)))
        return action;
    ProtobufCAllocator *a = pb_arena_allocator(r->arena);
    Event__TinyEvent *c = a->alloc(a->allocator_data, sizeof *c);
    if (!c) return NULL;
    *c = *root;
    c->has_log_timestamp = action->log_timestamp != 0;
    c->log_timestamp = action->log_timestamp;
    c->action_id = action->action_id;
    return c;
}

/* Sets latest_cleanup to max(latest, cleanup time of lt) and arms the timer. st points to the
 * key's state value (at least RI_HDR bytes). */
static int register_cleanup(rt_op *op, uint8_t *st, const uint8_t *key, size_t klen, int64_t lt)
{
    ri_op *r = rt_op_self(op);
    int64_t c = cleanup_time(r, lt);
    if (!st[17] || c > jb_get_i64(st + 8)) {
        jb_put_i64(st + 8, c);
        st[17] = 1;
    }
    return rt_timer_register(op, c, key, klen);
}

/* Emits every buffered action of key re-pointed to root (ts), and forgets them. */
static int flush_pending(rt_op *op, const uint8_t *key, size_t klen, const Event__TinyEvent *root,
                         int64_t ts)
{
    ri_op *r = rt_op_self(op);
    size_t vlen;
    const uint8_t *v = rt_kv_get(r->pending, key, klen, &vlen);
    if (!v) return 0;
    uint32_t used;
    memcpy(&used, v, 4);
    /* emitting may not touch this key's pending list (nothing downstream calls back into this
     * operator), but copy to be independent of the table anyway */
    uint8_t *copy = malloc(used ? used : 1);
    if (!copy) return rt_op_fail(op, "out of memory flushing pending actions");
    memcpy(copy, v + RI_PHDR, used);
    rt_kv_delete(r->pending, key, klen);
    int rc = 0;
    for (size_t off = 0; off + 12 <= used && !rc;) {
        uint32_t len;
        memcpy(&len, copy + off + 8, 4);
        Event__TinyEvent *a = unpack_tiny(r, copy + off + 12, len);
        off += 12 + len;
        const Event__TinyEvent *o = a ? with_root(r, a, root) : NULL;
        if (!o) {
            rc = rt_op_fail(op, "cannot decode a buffered tiny action (%u bytes)", len);
            break;
        }
        rc = emit_tiny(op, 0, o, ts);
    }
    free(copy);
    return rc;
}

static int on_impression(rt_op *op, const rt_record *rec, const Event__TinyEvent *t,
                         const uint8_t *key, size_t klen)
{
    ri_op *r = rt_op_self(op);
    size_t vlen;
    uint8_t *st = rt_kv_get(r->state, key, klen, &vlen);
    if (st && st[16] && !(rec->ts > jb_get_i64(st))) {
        rt_counter_add(r->redundant, 1);
        return emit_tiny(op, 1, t, rec->ts);
    }
    /* becomes the root: keep latest_cleanup from a previous life of the key */
    int64_t latest = 0;
    uint8_t has_cleanup = 0;
    if (st) {
        latest = jb_get_i64(st + 8);
        has_cleanup = st[17];
    }
    if (pack_tiny(r, t)) return rt_op_fail(op, "out of memory packing a tiny impression");
    void *nv;
    if (rt_kv_upsert(r->state, key, klen, RI_HDR + r->scratch.len, &nv, NULL)) return -1;
    st = nv;
    jb_put_i64(st, rec->ts + r->cfg.ttl_ms);
    jb_put_i64(st + 8, latest);
    st[16] = 1;
    st[17] = has_cleanup;
    memcpy(st + RI_HDR, r->scratch.data, r->scratch.len);
    if (register_cleanup(op, st, key, klen, (int64_t)t->log_timestamp)) return -1;
    if (emit_tiny(op, 0, t, rec->ts)) return -1;
    return flush_pending(op, key, klen, t, rec->ts);
}

static int append_pending(ri_op *r, const uint8_t *key, size_t klen, int64_t cleanup,
                          const uint8_t *bytes, size_t n)
{
    size_t vlen;
    uint8_t *v = rt_kv_get(r->pending, key, klen, &vlen);
    uint32_t used = 0, count = 0;
    if (v) {
        memcpy(&used, v, 4);
        memcpy(&count, v + 4, 4);
    }
    size_t need = RI_PHDR + (size_t)used + 12 + n;
    if (need > UINT32_MAX) return -1;
    if (!v || need > vlen) {
        size_t cap = v ? vlen * 2 : 64;
        if (cap < need) cap = need;
        void *nv;
        if (rt_kv_upsert(r->pending, key, klen, cap, &nv, NULL)) return -1;
        v = nv;
    }
    uint8_t *p = v + RI_PHDR + used;
    jb_put_i64(p, cleanup);
    uint32_t len = (uint32_t)n;
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, bytes, n);
    used += (uint32_t)(12 + n);
    count++;
    memcpy(v, &used, 4);
    memcpy(v + 4, &count, 4);
    return 0;
}

static size_t pending_count(ri_op *r, const uint8_t *key, size_t klen)
{
    const uint8_t *v = rt_kv_get(r->pending, key, klen, NULL);
    uint32_t count = 0;
    if (v) memcpy(&count, v + 4, 4);
    return count;
}

static int on_action(rt_op *op, const rt_record *rec, const Event__TinyEvent *t, const uint8_t *key,
                     size_t klen)
{
    ri_op *r = rt_op_self(op);
    size_t vlen;
    uint8_t *st = rt_kv_get(r->state, key, klen, &vlen);
    if (st && st[16]) {
        Event__TinyEvent *root = unpack_tiny(r, st + RI_HDR, vlen - RI_HDR);
        const Event__TinyEvent *o = root ? with_root(r, t, root) : NULL;
        if (!o) return rt_op_fail(op, "cannot decode the stored root impression");
        return emit_tiny(op, 0, o, rec->ts);
    }
    if (pending_count(r, key, klen) >= REDUNDANT_MAX_PENDING_ACTIONS) {
        rt_counter_add(r->over_limit, 1);
        return emit_tiny(op, 0, t, rec->ts);
    }
    if (!st) {
        void *nv;
        if (rt_kv_upsert(r->state, key, klen, RI_HDR, &nv, NULL)) return -1;
        st = nv; /* zeroed: no root, no cleanup yet */
    }
    int64_t lt = (int64_t)t->log_timestamp;
    if (pack_tiny(r, t)) return rt_op_fail(op, "out of memory packing a tiny action");
    if (append_pending(r, key, klen, cleanup_time(r, lt), r->scratch.data, r->scratch.len))
        return -1;
    st = rt_kv_get(r->state, key, klen, NULL);
    return register_cleanup(op, st, key, klen, lt);
}

static int ri_process(rt_op *op, int input, const rt_record *rec)
{
    ri_op *r = rt_op_self(op);
    if (rec->type != REC_TINY_EVENT)
        return rt_op_fail(op, "input %d: unexpected record type %d (want a tiny event)", input,
                          rec->type);
    const Event__TinyEvent *t = rec->data;
    size_t klen = build_key(r, t);
    int rc;
    if (!klen) {
        rt_counter_add(r->unkeyed, 1);
        rc = emit_tiny(op, 0, t, rec->ts);
    } else {
        /* the key buffer is reused by nested calls of this operator only through timers, which
         * never run inside process */
        uint8_t *key = r->key;
        if (t->action_id && *t->action_id)
            rc = on_action(op, rec, t, key, klen);
        else
            rc = on_impression(op, rec, t, key, klen);
    }
    pb_arena_reset(r->arena, 1 << 20);
    return rc;
}

static int ri_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    ri_op *r = rt_op_self(op);
    int rc = 0;
    size_t vlen;
    uint8_t *v = rt_kv_get(r->pending, key, klen, &vlen);
    if (v) {
        uint32_t used;
        memcpy(&used, v, 4);
        uint8_t *copy = malloc(used ? used : 1);
        if (!copy) return rt_op_fail(op, "out of memory in a cleanup timer");
        memcpy(copy, v + RI_PHDR, used);
        /* keep the entries not yet due, in order */
        uint32_t kept = 0, count = 0;
        for (size_t off = 0; off + 12 <= used;) {
            uint32_t len;
            memcpy(&len, copy + off + 8, 4);
            if (jb_get_i64(copy + off) > time) {
                memmove(v + RI_PHDR + kept, copy + off, 12 + len);
                kept += 12 + len;
                count++;
            }
            off += 12 + len;
        }
        memcpy(v, &kept, 4);
        memcpy(v + 4, &count, 4);
        if (!kept) rt_kv_delete(r->pending, key, klen);
        /* the due ones go out as they are: an action whose impression never came */
        for (size_t off = 0; off + 12 <= used && !rc;) {
            uint32_t len;
            memcpy(&len, copy + off + 8, 4);
            if (jb_get_i64(copy + off) <= time) {
                Event__TinyEvent *a = unpack_tiny(r, copy + off + 12, len);
                if (!a) {
                    rc = rt_op_fail(op, "cannot decode a buffered tiny action (%u bytes)", len);
                    break;
                }
                rt_counter_add(r->late_actions, 1);
                rc = emit_tiny(op, 0, a, time);
            }
            off += 12 + len;
        }
        free(copy);
    }
    uint8_t *st = rt_kv_get(r->state, key, klen, NULL);
    if (!rc && st && st[17] && jb_get_i64(st + 8) == time) {
        rt_kv_delete(r->state, key, klen);
        rt_kv_delete(r->pending, key, klen);
    }
    pb_arena_reset(r->arena, 1 << 20);
    return rc;
}

static int ri_open(rt_op *op)
{
    ri_op *r = rt_op_self(op);
    if (rt_kv_new(op, "state", &r->state) || rt_kv_new(op, "pending", &r->pending)) return -1;
    if (rt_op_counter(op, "numRedundantImpressions", &r->redundant) ||
        rt_op_counter(op, "numActionsWithoutImpression", &r->late_actions) ||
        rt_op_counter(op, "numActionsOverPendingLimit", &r->over_limit) ||
        rt_op_counter(op, "numRecordsKeyTooLong", &r->unkeyed))
        return rt_op_fail(op, "out of memory");
    return 0;
}

static void ri_close(rt_op *op)
{
    ri_op *r = rt_op_self(op);
    pb_arena_free(r->arena);
    rt_buf_free(&r->scratch);
    free(r);
}

static const rt_op_vtbl ri_vtbl = {
    .open = ri_open,
    .process = ri_process,
    .on_timer = ri_timer,
    .close = ri_close,
};

int redundant_impressions_op_add(rt_graph *g, const char *uid,
                                 const redundant_impressions_config *cfg, rt_op **out)
{
    if (!cfg || cfg->ttl_ms <= 0) return -1;
    ri_op *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->cfg = *cfg;
    rt_buf_init(&r->scratch, RI_ARENA_CAP);
    r->arena = pb_arena_new(64 << 10, RI_ARENA_CAP);
    if (!r->arena ||
        rt_graph_add_op(g, uid, "reduce-redundant-tiny-impressions", &ri_vtbl, r, 1, 2, out)) {
        pb_arena_free(r->arena);
        free(r);
        return -1;
    }
    if (rt_op_set_port_name(*out, 1, "dropped_redundant_impression")) return -1;
    return 0;
}
