/* State:
 *   window-list     key -> the key's open windows, sorted by start: {start, end, sid} (i64 LE
 *                   each). sid names the window's content; it is the start of the window that
 *                   first held it (a merged window keeps the earliest one's), unique per key.
 *   window-content  key + le64 sid -> src (u8: 0 none, 1 impression, 2 action), shared_len (u32),
 *                   items_len (u32), then the shared parts of the FlatResponseInsertion packed
 *                   (from the source), then the impression/action entries packed as repeated
 *                   fields 16/17 of the same message; capacity beyond items_len is slack.
 *   parts           user + ref -> a view or request shared by the windows of one user: the
 *                   shared parts above are kept in split form (part_store.h), so the 20
 *                   insertions of one request hold one copy of its request and view
 * The output is the unpack of shared ++ items: protobuf concatenation merges the two.
 * key = le64 platform_id, varint length of log_user_id, log_user_id, insertion_id (timer key). */
#include "jobs/join/flat_response_insertion.h"
#include "jobs/join/join_bytes.h"

#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "jobs/join/join_records.h"
#include "jobs/join/joined_filters.h"
#include "jobs/join/part_store.h"
#include "runtime/buf.h"
#include "runtime/state.h"

#define FRI_KEY_MAX 60000
#define FRI_ARENA_CAP ((size_t)256 << 20)
#define FRI_HDR 9
#define FRI_FIELD_IMPRESSION 16
#define FRI_FIELD_ACTION 17

enum { SRC_NONE, SRC_IMPRESSION, SRC_ACTION };

typedef struct fri_op {
    int64_t gap;
    rt_kv *list, *content, *parts;
    pb_arena *arena;
    rt_buf shared, item, joined;
    uint8_t key[FRI_KEY_MAX + 32];
    size_t klen;
    /* content keys under construction (a per-element malloc of this size fragmented the heap) */
    uint8_t ck[FRI_KEY_MAX + 40], ck2[FRI_KEY_MAX + 40];
    rt_counter *c_late, *c_key, *c_out;
} fri_op;

typedef struct fri_window {
    int64_t start, end, sid;
} fri_window;

static void *fri_alloc(fri_op *f, size_t n)
{
    ProtobufCAllocator *a = pb_arena_allocator(f->arena);
    void *p = a->alloc(a->allocator_data, n);
    if (p) memset(p, 0, n);
    return p;
}

static void *fri_empty(fri_op *f, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = fri_alloc(f, d->sizeof_message);
    if (m) d->message_init(m);
    return m;
}

/* The present-or-empty value of a sub-message: the reference sets these unconditionally. */
static void *or_empty(fri_op *f, void *m, const ProtobufCMessageDescriptor *d, bool *oom)
{
    if (m) return m;
    void *e = fri_empty(f, d);
    if (!e) *oom = true;
    return e;
}

/* ---------------------------------------------------------------- keys and lists */

static int build_key(fri_op *f, const Event__JoinedEvent *e)
{
    const char *luid = joined_event_log_user_id(e);
    const char *ins = joined_event_insertion_id(e);
    size_t nl = strlen(luid), ni = strlen(ins);
    if (nl + ni + 18 > FRI_KEY_MAX) return -1;
    jb_put_i64(f->key, (int64_t)joined_event_platform_id(e));
    size_t n = 8 + jb_put_varint(f->key + 8, nl);
    memcpy(f->key + n, luid, nl);
    n += nl;
    memcpy(f->key + n, ins, ni);
    f->klen = n + ni;
    return 0;
}


/* The length of the user part of the current key (platform id, varint length, log_user_id):
 * the scope of the shared parts. */
static size_t user_len(const fri_op *f)
{
    size_t n = 8, shift = 0;
    uint64_t len = 0;
    while (n < f->klen && n < 18) {
        uint8_t b = f->key[n++];
        len |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    return len <= f->klen - n ? n + (size_t)len : f->klen;
}

/* Drops the part references of a stored content value (its shared bytes). */
static void content_release(fri_op *f, const uint8_t *v)
{
    part_store_release(f->parts, f->key, user_len(f), v + FRI_HDR, jb_get_u32(v + 1));
}

/* The content key of window sid for the current key, in buf (FRI_KEY_MAX + 40 bytes). */
static size_t content_key(const fri_op *f, uint8_t *buf, int64_t sid)
{
    memcpy(buf, f->key, f->klen);
    jb_put_i64(buf + f->klen, sid);
    return f->klen + 8;
}

/* Loads the window list of the current key (a malloc'd copy; *n windows). */
static int list_load(rt_op *op, fri_window **out, size_t *n)
{
    fri_op *f = rt_op_self(op);
    size_t vlen = 0;
    const uint8_t *v = rt_kv_get(f->list, f->key, f->klen, &vlen);
    *n = v ? vlen / 24 : 0;
    *out = malloc((*n + 1) * sizeof **out);
    if (!*out) return rt_op_fail(op, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        (*out)[i].start = jb_get_i64(v + 24 * i);
        (*out)[i].end = jb_get_i64(v + 24 * i + 8);
        (*out)[i].sid = jb_get_i64(v + 24 * i + 16);
    }
    return 0;
}

static int list_store(fri_op *f, const fri_window *w, size_t n)
{
    if (!n) {
        rt_kv_delete(f->list, f->key, f->klen);
        return 0;
    }
    void *v;
    if (rt_kv_upsert(f->list, f->key, f->klen, 24 * n, &v, NULL)) return -1;
    for (size_t i = 0; i < n; i++) {
        jb_put_i64((uint8_t *)v + 24 * i, w[i].start);
        jb_put_i64((uint8_t *)v + 24 * i + 8, w[i].end);
        jb_put_i64((uint8_t *)v + 24 * i + 16, w[i].sid);
    }
    return 0;
}

/* ---------------------------------------------------------------- content */

/* Writes a whole content value: src, shared bytes, item bytes (exact size). shared and items
 * must not point into the stored value (callers pass copies). */
static int content_put(fri_op *f, const uint8_t *ck, size_t cklen, int src, const uint8_t *shared,
                       size_t ns, const uint8_t *items, size_t ni)
{
    if (ns > UINT32_MAX || ni > UINT32_MAX) return -1;
    void *nv;
    if (rt_kv_upsert(f->content, ck, cklen, FRI_HDR + ns + ni, &nv, NULL)) return -1;
    uint8_t *v = nv;
    v[0] = (uint8_t)src;
    jb_put_u32(v + 1, (uint32_t)ns);
    jb_put_u32(v + 5, (uint32_t)ni);
    if (ns) memcpy(v + FRI_HDR, shared, ns);
    if (ni) memcpy(v + FRI_HDR + ns, items, ni);
    return 0;
}

static int content_append(fri_op *f, const uint8_t *ck, size_t cklen, const uint8_t *p, size_t n)
{
    size_t vlen;
    uint8_t *v = rt_kv_get(f->content, ck, cklen, &vlen);
    if (!v) return -1;
    size_t used = FRI_HDR + jb_get_u32(v + 1) + jb_get_u32(v + 5);
    if (used + n > UINT32_MAX) return -1;
    if (used + n > vlen) {
        size_t cap = 2 * vlen;
        if (cap < used + n) cap = used + n;
        void *nv;
        if (rt_kv_upsert(f->content, ck, cklen, cap, &nv, NULL)) return -1;
        v = nv;
    }
    memcpy(v + used, p, n);
    jb_put_u32(v + 5, jb_get_u32(v + 5) + (uint32_t)n);
    return 0;
}

/* Packs the shared parts of a FlatResponseInsertion whose source is s into f->shared. */
static int pack_shared(rt_op *op, const Event__JoinedEvent *s)
{
    fri_op *f = rt_op_self(op);
    bool oom = false;
    Event__FlatResponseInsertion r = EVENT__FLAT_RESPONSE_INSERTION__INIT;
    Event__JoinedIdentifiers *ids = fri_empty(f, &event__joined_identifiers__descriptor);
    if (!ids) return rt_op_fail(op, "out of memory");
    if (s->ids) memcpy(ids, s->ids, sizeof *ids);
    ids->impression_id = NULL;
    r.ids = ids;
    r.timing =
        or_empty(f, s->request ? s->request->timing : NULL, &common__timing__descriptor, &oom);
    r.session_profile =
        or_empty(f, s->session_profile, &logproc__priv__session_profile__descriptor, &oom);
    r.session = or_empty(f, s->session, &logproc__priv__session__descriptor, &oom);
    r.view = or_empty(f, s->view, &event__view__descriptor, &oom);
    r.request = or_empty(f, s->request, &delivery__request__descriptor, &oom);
    r.request_insertion = or_empty(f, s->request_insertion, &delivery__insertion__descriptor, &oom);
    r.response = or_empty(f, s->response, &delivery__response__descriptor, &oom);
    r.response_insertion =
        or_empty(f, s->response_insertion, &delivery__insertion__descriptor, &oom);
    r.api_execution =
        or_empty(f, s->api_execution, &delivery__delivery_execution__descriptor, &oom);
    r.api_execution_insertion =
        or_empty(f, s->api_execution_insertion, &delivery__insertion__descriptor, &oom);
    r.sdk_execution =
        or_empty(f, s->sdk_execution, &delivery__delivery_execution__descriptor, &oom);
    r.hidden_api_request = s->hidden_api_request;
    if (oom) return rt_op_fail(op, "out of memory");
    /* the view and request are the same for every insertion of a request: shared parts */
    static const uint32_t parts[] = {6, 8}; /* FlatResponseInsertion.view, .request */
    if (part_store_split(f->parts, f->key, user_len(f), &r.base, parts, 2, &f->shared))
        return rt_op_fail(op, "out of memory");
    return 0;
}

/* Packs the element's entry (field 16 impression or 17 action of the output) into f->item. */
static int pack_item(rt_op *op, const Event__JoinedEvent *e, bool impression)
{
    fri_op *f = rt_op_self(op);
    const ProtobufCMessage *m;
    Event__Impression imp;
    if (impression) {
        Event__Impression base = EVENT__IMPRESSION__INIT;
        imp = e->impression ? *e->impression : base;
        imp.impression_id = e->ids ? e->ids->impression_id : NULL;
        if (imp.impression_id && !*imp.impression_id) imp.impression_id = NULL;
        m = &imp.base;
    } else {
        static const Event__Action empty = EVENT__ACTION__INIT;
        m = e->action ? &e->action->base : &empty.base;
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t h[20];
    size_t hn =
        jb_put_varint(h, ((uint64_t)(impression ? FRI_FIELD_IMPRESSION : FRI_FIELD_ACTION) << 3) | 2);
    hn += jb_put_varint(h + hn, n);
    rt_buf_reset(&f->item);
    if (rt_buf_reserve(&f->item, hn + n)) return rt_op_fail(op, "out of memory");
    memcpy(f->item.data, h, hn);
    protobuf_c_message_pack(m, f->item.data + hn);
    f->item.len = hn + n;
    return 0;
}

/* Moves the content of window `from` after that of window `into` (§12.2 merge). */
static int merge_content(rt_op *op, int64_t into, int64_t from)
{
    fri_op *f = rt_op_self(op);
    uint8_t *ka = f->ck, *kb = f->ck2;
    size_t na = content_key(f, ka, into), nb = content_key(f, kb, from);
    size_t la, lb;
    const uint8_t *a = rt_kv_get(f->content, ka, na, &la);
    const uint8_t *b = rt_kv_get(f->content, kb, nb, &lb);
    int rc = 0;
    if (a && b) {
        int sa = a[0], sb = b[0];
        const uint8_t *shared_a = a + FRI_HDR, *shared_b = b + FRI_HDR;
        size_t nsa = jb_get_u32(a + 1), nsb = jb_get_u32(b + 1);
        size_t nia = jb_get_u32(a + 5), nib = jb_get_u32(b + 5);
        /* the first impression of the merged list, else its first action, is the source */
        bool take_b = sa != SRC_IMPRESSION && (sb == SRC_IMPRESSION || sa == SRC_NONE);
        rt_buf items;
        rt_buf_init(&items, 0);
        if (rt_buf_append(&items, shared_a + nsa, nia) ||
            rt_buf_append(&items, shared_b + nsb, nib)) {
            rc = rt_op_fail(op, "out of memory");
        } else {
            /* copy the chosen shared bytes before the put moves them */
            rt_buf sh;
            rt_buf_init(&sh, 0);
            if (rt_buf_append(&sh, take_b ? shared_b : shared_a, take_b ? nsb : nsa)) {
                rc = rt_op_fail(op, "out of memory");
            } else {
                content_release(f, take_b ? a : b); /* the source not taken */
                if (content_put(f, ka, na, take_b ? sb : sa, sh.data, sh.len, items.data,
                                items.len))
                    rc = -1;
            }
            rt_buf_free(&sh);
        }
        rt_buf_free(&items);
    }
    if (!rc) rt_kv_delete(f->content, kb, nb);
    return rc;
}

/* Adds element e to the content of window sid. */
static int add_element(rt_op *op, int64_t sid, const Event__JoinedEvent *e, bool impression,
                       bool fresh)
{
    fri_op *f = rt_op_self(op);
    uint8_t *ck = f->ck;
    size_t ckn = content_key(f, ck, sid);
    int rc = pack_item(op, e, impression);
    int src = SRC_NONE;
    if (!rc && !fresh) {
        const uint8_t *v = rt_kv_get(f->content, ck, ckn, NULL);
        src = v ? v[0] : SRC_NONE;
    }
    bool new_source = impression ? src != SRC_IMPRESSION : src == SRC_NONE;
    if (!rc && new_source) {
        rc = pack_shared(op, e);
        if (!rc) {
            /* replace the shared parts, keep the items */
            size_t vlen = 0;
            const uint8_t *v = fresh ? NULL : rt_kv_get(f->content, ck, ckn, &vlen);
            rt_buf items;
            rt_buf_init(&items, 0);
            if (v && rt_buf_append(&items, v + FRI_HDR + jb_get_u32(v + 1), jb_get_u32(v + 5)))
                rc = rt_op_fail(op, "out of memory");
            if (!rc && v) content_release(f, v); /* the source being replaced */
            if (!rc && rt_buf_append(&items, f->item.data, f->item.len))
                rc = rt_op_fail(op, "out of memory");
            if (!rc && content_put(f, ck, ckn, impression ? SRC_IMPRESSION : SRC_ACTION,
                                   f->shared.data, f->shared.len, items.data, items.len))
                rc = -1;
            rt_buf_free(&items);
        }
    } else if (!rc) {
        rc = content_append(f, ck, ckn, f->item.data, f->item.len);
    }
    return rc;
}

/* ---------------------------------------------------------------- operator */

static int fri_element(rt_op *op, int input, const rt_record *rec)
{
    fri_op *f = rt_op_self(op);
    if (rec->type != REC_JOINED_EVENT)
        return rt_op_fail(op, "input %d: unexpected record type %d (want a joined event)", input,
                          rec->type);
    const Event__JoinedEvent *e = rec->data;
    if (build_key(f, e)) {
        rt_counter_add(f->c_key, 1);
        return rt_emit(op, 1, rec);
    }
    int64_t ts = rec->ts, end = ts + f->gap;
    int64_t wm = rt_op_watermark(op);
    fri_window *w;
    size_t n;
    if (list_load(op, &w, &n)) return -1;
    /* windows meeting [ts, end): Flink's intersects() counts touching windows */
    size_t first = n, last = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i].start <= end && w[i].end >= ts) {
            if (first == n) first = i;
            last = i;
        }
    int rc = 0;
    if (first == n) {
        if (wm != RT_TIME_MIN && end - 1 <= wm) {
            free(w);
            rt_counter_add(f->c_late, 1);
            return rt_emit(op, 1, rec);
        }
        size_t at = 0;
        while (at < n && w[at].start < ts)
            at++;
        memmove(w + at + 1, w + at, (n - at) * sizeof *w);
        w[at] = (fri_window){ts, end, ts};
        n++;
        rc = list_store(f, w, n);
        if (!rc) rc = rt_timer_register(op, end - 1, f->key, f->klen);
        if (!rc) rc = add_element(op, ts, e, input == 0, true);
        free(w);
        return rc;
    }
    /* merge [first, last] (consecutive: open windows of a key never overlap) and the new one */
    fri_window m = w[first];
    if (ts < m.start) m.start = ts;
    for (size_t i = first; i <= last && !rc; i++) {
        if (w[i].end > m.end) m.end = w[i].end;
        if (i > first) rc = merge_content(op, m.sid, w[i].sid);
    }
    if (end > m.end) m.end = end;
    for (size_t i = first; i <= last && !rc; i++)
        if (w[i].end != m.end) rt_timer_delete(op, w[i].end - 1, f->key, f->klen);
    if (!rc) rc = rt_timer_register(op, m.end - 1, f->key, f->klen);
    if (!rc) {
        w[first] = m;
        memmove(w + first + 1, w + last + 1, (n - last - 1) * sizeof *w);
        n -= last - first;
        rc = list_store(f, w, n);
    }
    if (!rc) rc = add_element(op, m.sid, e, input == 0, false);
    free(w);
    return rc;
}

static int fri_process(rt_op *op, int input, const rt_record *rec)
{
    fri_op *f = rt_op_self(op);
    int rc = fri_element(op, input, rec);
    pb_arena_reset(f->arena, 4 << 20);
    return rc;
}

static int fire(rt_op *op, const fri_window *w)
{
    fri_op *f = rt_op_self(op);
    uint8_t *ck = f->ck;
    size_t ckn = content_key(f, ck, w->sid);
    size_t vlen;
    const uint8_t *v = rt_kv_get(f->content, ck, ckn, &vlen);
    int rc = 0;
    if (v) {
        size_t ns = jb_get_u32(v + 1), ni = jb_get_u32(v + 5);
        rt_buf_reset(&f->joined);
        Event__FlatResponseInsertion *r = NULL;
        if (part_store_join(f->parts, f->key, user_len(f), v + FRI_HDR, ns, &f->joined) ||
            rt_buf_append(&f->joined, v + FRI_HDR + ns, ni))
            rc = rt_op_fail(op, "stored flat response insertion: its shared parts do not join");
        else
            r = event__flat_response_insertion__unpack(pb_arena_allocator(f->arena),
                                                       f->joined.len, f->joined.data);
        if (!rc && !r) {
            rc = rt_op_fail(op, "stored flat response insertion of %zu bytes does not decode",
                            f->joined.len);
        } else if (!rc) {
            rt_counter_add(f->c_out, 1);
            rt_record out = {.ts = w->end - 1, .type = REC_FLAT_RESPONSE_INSERTION, .data = r};
            rc = rt_emit(op, 0, &out);
        }
        v = rt_kv_get(f->content, ck, ckn, NULL); /* emitting never touches this operator */
        if (v) content_release(f, v);
        rt_kv_delete(f->content, ck, ckn);
    }
    pb_arena_reset(f->arena, 4 << 20);
    return rc;
}

static int fri_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    fri_op *f = rt_op_self(op);
    if (klen > FRI_KEY_MAX) return rt_op_fail(op, "bad timer key of %zu bytes", klen);
    memcpy(f->key, key, klen);
    f->klen = klen;
    fri_window *w;
    size_t n;
    if (list_load(op, &w, &n)) return -1;
    size_t kept = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc && w[i].end - 1 <= time)
            rc = fire(op, &w[i]);
        else
            w[kept++] = w[i];
    }
    if (!rc) {
        memcpy(f->key, key, klen); /* emitting never re-enters this operator, but be exact */
        f->klen = klen;
        rc = list_store(f, w, kept);
    }
    free(w);
    return rc;
}

static int fri_open(rt_op *op)
{
    fri_op *f = rt_op_self(op);
    if (rt_kv_new(op, "window-list", &f->list) || rt_kv_new(op, "window-content", &f->content) ||
        rt_kv_new(op, "parts", &f->parts))
        return -1;
    if (rt_op_counter(op, "numLateElements", &f->c_late) ||
        rt_op_counter(op, "numRecordsKeyTooLong", &f->c_key) ||
        rt_op_counter(op, "numFlatResponseInsertionsOut", &f->c_out))
        return rt_op_fail(op, "out of memory");
    return 0;
}

static void fri_close(rt_op *op)
{
    fri_op *f = rt_op_self(op);
    pb_arena_free(f->arena);
    rt_buf_free(&f->shared);
    rt_buf_free(&f->item);
    rt_buf_free(&f->joined);
    free(f);
}

static const rt_op_vtbl fri_vtbl = {
    .open = fri_open,
    .process = fri_process,
    .on_timer = fri_timer,
    .close = fri_close,
};

int flat_response_insertion_op_add(rt_graph *g, const char *uid,
                                   const flat_response_insertion_config *cfg, rt_op **out)
{
    if (!cfg || cfg->gap_ms <= 0) return -1;
    fri_op *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->gap = cfg->gap_ms;
    rt_buf_init(&f->shared, FRI_ARENA_CAP);
    rt_buf_init(&f->joined, FRI_ARENA_CAP);
    rt_buf_init(&f->item, FRI_ARENA_CAP);
    f->arena = pb_arena_new(64 << 10, FRI_ARENA_CAP);
    if (!f->arena ||
        rt_graph_add_op(g, uid, "join-flat-response-insertion", &fri_vtbl, f, 2, 2, out)) {
        pb_arena_free(f->arena);
        free(f);
        return -1;
    }
    return rt_op_set_port_name(*out, 1, "dropped_flat_response_insertion_late");
}
