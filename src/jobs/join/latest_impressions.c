/* State (per user key = le64 platform_id + log_user_id, also the timer key):
 *   actions      count (u32), used (u32), then {event_api_timestamp i64, len u32, packed
 *                JoinedEvent} per waiting action, in arrival order
 *   impressions  count, used, then LatestImpression entries {client_log_timestamp,
 *   actioned     event_api_timestamp, event_timestamp (i64 each), varint + impression_id,
 *                varint + content_id}
 * Values keep slack capacity beyond `used` so appends are amortised O(entry). */
#include "jobs/join/latest_impressions.h"
#include "jobs/join/join_bytes.h"

#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "jobs/common_ops.h"
#include "jobs/join/join_records.h"
#include "jobs/join/joined_filters.h"
#include "runtime/state.h"

#define LI_KEY_MAX 60000
#define LI_ARENA_CAP ((size_t)256 << 20)
#define LI_HDR 8
#define MINUTE 60000
#define HOUR 3600000
#define SESSION_MS (6 * (int64_t)HOUR)
#define SESSION_CLEANUP_HOURS 7

typedef struct li_op {
    latest_impressions_config cfg;
    rt_kv *actions, *impressions, *actioned;
    pb_arena *arena;
    rt_buf buf;
    uint8_t key[LI_KEY_MAX + 16];
    size_t klen;
    rt_counter *c_out, *c_over, *c_key;
} li_op;

/* One parsed LatestImpression entry; raw points at its bytes in a copy of the list. */
typedef struct li_entry {
    int64_t clt, eat, ets;
    const char *id, *cid;
    size_t idlen, cidlen;
    const uint8_t *raw;
    size_t rawlen;
    size_t seq; /* position in the list: ties keep it (a stable sort) */
} li_entry;

static int64_t entry_t(const li_entry *e)
{
    return e->clt != 0 ? e->clt : e->eat;
}

/* ---------------------------------------------------------------- lists in rt_kv */

/* Appends one entry to a list value; returns -1 on the memory limit. */
static int list_append(rt_kv *kv, const uint8_t *key, size_t klen, const void *p, size_t n)
{
    size_t vlen;
    uint8_t *v = rt_kv_get(kv, key, klen, &vlen);
    size_t used = v ? jb_get_u32(v + 4) : 0;
    size_t need = LI_HDR + used + n;
    if (need > UINT32_MAX) return -1;
    if (!v || need > vlen) {
        size_t cap = v ? 2 * vlen : 128;
        if (cap < need) cap = need;
        void *nv;
        if (rt_kv_upsert(kv, key, klen, cap, &nv, NULL)) return -1;
        v = nv;
    }
    memcpy(v + LI_HDR + used, p, n);
    jb_put_u32(v, jb_get_u32(v) + 1);
    jb_put_u32(v + 4, (uint32_t)(used + n));
    return 0;
}

static uint32_t list_count(rt_kv *kv, const uint8_t *key, size_t klen)
{
    const uint8_t *v = rt_kv_get(kv, key, klen, NULL);
    return v ? jb_get_u32(v) : 0;
}

/* A malloc'd copy of a list's entries (*n bytes, *count entries); NULL with 0 when absent. */
static int list_copy(rt_op *op, rt_kv *kv, const uint8_t *key, size_t klen, uint8_t **out,
                     size_t *n, size_t *count)
{
    const uint8_t *v = rt_kv_get(kv, key, klen, NULL);
    *out = NULL;
    *n = *count = 0;
    if (!v) return 0;
    *count = jb_get_u32(v);
    *n = jb_get_u32(v + 4);
    *out = malloc(*n ? *n : 1);
    if (!*out) return rt_op_fail(op, "out of memory");
    memcpy(*out, v + LI_HDR, *n);
    return 0;
}

/* Rewrites a list from entries (NULL-free array of raw slices); deletes it when empty. */
static int list_store(li_op *l, rt_kv *kv, const li_entry *const *e, size_t n)
{
    if (!n) {
        rt_kv_delete(kv, l->key, l->klen);
        return 0;
    }
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += e[i]->rawlen;
    void *v;
    if (rt_kv_upsert(kv, l->key, l->klen, LI_HDR + used, &v, NULL)) return -1;
    uint8_t *p = v;
    jb_put_u32(p, (uint32_t)n);
    jb_put_u32(p + 4, (uint32_t)used);
    size_t off = LI_HDR;
    for (size_t i = 0; i < n; i++) {
        memmove(p + off, e[i]->raw, e[i]->rawlen);
        off += e[i]->rawlen;
    }
    return 0;
}

static int parse_entries(rt_op *op, const uint8_t *p, size_t n, size_t count, li_entry **out)
{
    *out = calloc(count ? count : 1, sizeof **out);
    if (!*out) return rt_op_fail(op, "out of memory");
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        li_entry *e = &(*out)[i];
        uint64_t a, b;
        size_t h1, h2;
        if (off + 24 > n) goto bad;
        e->raw = p + off;
        e->clt = jb_get_i64(p + off);
        e->eat = jb_get_i64(p + off + 8);
        e->ets = jb_get_i64(p + off + 16);
        off += 24;
        if (!(h1 = jb_get_varint(p + off, n - off, &a)) || a > n - off - h1) goto bad;
        e->id = (const char *)p + off + h1;
        e->idlen = (size_t)a;
        off += h1 + a;
        if (!(h2 = jb_get_varint(p + off, n - off, &b)) || b > n - off - h2) goto bad;
        e->cid = (const char *)p + off + h2;
        e->cidlen = (size_t)b;
        off += h2 + b;
        e->rawlen = (size_t)(p + off - e->raw);
        e->seq = i;
    }
    return 0;
bad:
    free(*out);
    *out = NULL;
    return rt_op_fail(op, "corrupt latest-impression list");
}

/* Packs a LatestImpression entry into l->buf. */
static int entry_pack(li_op *l, const char *id, const char *cid, const Common__Timing *t,
                      int64_t ets)
{
    id = id ? id : "";
    cid = cid ? cid : "";
    size_t ni = strlen(id), nc = strlen(cid);
    rt_buf_reset(&l->buf);
    if (rt_buf_reserve(&l->buf, 24 + 20 + ni + nc)) return -1;
    uint8_t *p = l->buf.data;
    jb_put_i64(p, t ? (int64_t)t->client_log_timestamp : 0);
    jb_put_i64(p + 8, t ? (int64_t)t->event_api_timestamp : 0);
    jb_put_i64(p + 16, ets);
    size_t off = 24 + jb_put_varint(p + 24, ni);
    memcpy(p + off, id, ni);
    off += ni;
    off += jb_put_varint(p + off, nc);
    memcpy(p + off, cid, nc);
    l->buf.len = off + nc;
    return 0;
}

/* ---------------------------------------------------------------- a small string set */

typedef struct strset {
    const char **s;
    size_t *len;
    size_t cap;
} strset;

static int strset_init(strset *ss, size_t n)
{
    ss->cap = 16;
    while (ss->cap < 2 * n + 2)
        ss->cap *= 2;
    ss->s = calloc(ss->cap, sizeof *ss->s);
    ss->len = calloc(ss->cap, sizeof *ss->len);
    return ss->s && ss->len ? 0 : -1;
}

static void strset_free(strset *ss)
{
    free(ss->s);
    free(ss->len);
}

/* Java Set.add: returns true when s was not in the set (and adds it). The set is sized for
 * every string it may receive, so it never fills up. */
static bool strset_add(strset *ss, const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    for (size_t i = (size_t)h & (ss->cap - 1);; i = (i + 1) & (ss->cap - 1)) {
        if (!ss->s[i]) {
            ss->s[i] = s;
            ss->len[i] = n;
            return true;
        }
        if (ss->len[i] == n && !memcmp(ss->s[i], s, n)) return false;
    }
}

/* ---------------------------------------------------------------- timer work */

static int cmp_t(const void *a, const void *b)
{
    const li_entry *x = *(const li_entry *const *)a, *y = *(const li_entry *const *)b;
    int64_t tx = entry_t(x), ty = entry_t(y);
    if (tx != ty) return tx < ty ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Emits one action with its latest impressions. sorted: impressions by t; actioned in order. */
static int release(rt_op *op, const uint8_t *bytes, size_t len, int64_t T, li_entry *const *sorted,
                   size_t ni, const li_entry *actioned, size_t na)
{
    li_op *l = rt_op_self(op);
    ProtobufCAllocator *a = pb_arena_allocator(l->arena);
    Event__JoinedEvent *je = event__joined_event__unpack(a, len, bytes);
    if (!je) return rt_op_fail(op, "stored joined action of %zu bytes does not decode", len);
    const Common__Timing *at = je->action ? je->action->timing : NULL;
    int64_t ta = at ? (at->client_log_timestamp ? (int64_t)at->client_log_timestamp
                                                : (int64_t)at->event_api_timestamp)
                    : 0;
    strset seen;
    if (strset_init(&seen, na + ni)) {
        strset_free(&seen);
        return rt_op_fail(op, "out of memory");
    }
    for (size_t i = 0; i < na; i++)
        if (entry_t(&actioned[i]) <= ta) strset_add(&seen, actioned[i].cid, actioned[i].cidlen);
    size_t max = (size_t)l->cfg.max_output, k = 0;
    const li_entry **pick = malloc((max ? max : 1) * sizeof *pick);
    if (!pick) {
        strset_free(&seen);
        return rt_op_fail(op, "out of memory");
    }
    for (size_t i = ni; i-- > 0;) {
        const li_entry *e = sorted[i];
        if (entry_t(e) <= ta && strset_add(&seen, e->cid, e->cidlen) && k < max) pick[k++] = e;
    }
    strset_free(&seen);
    Event__LatestImpressions *lis = a->alloc(a->allocator_data, sizeof *lis);
    Event__LatestImpression **arr = a->alloc(a->allocator_data, (k ? k : 1) * sizeof *arr);
    Event__JoinedEvent *out = a->alloc(a->allocator_data, sizeof *out);
    int rc = 0;
    if (!lis || !arr || !out) rc = rt_op_fail(op, "out of memory");
    for (size_t i = 0; !rc && i < k; i++) {
        const li_entry *e = pick[k - 1 - i]; /* ascending t */
        Event__LatestImpression *m = a->alloc(a->allocator_data, sizeof *m);
        char *id = a->alloc(a->allocator_data, e->idlen + 1);
        char *cid = a->alloc(a->allocator_data, e->cidlen + 1);
        if (!m || !id || !cid) {
            rc = rt_op_fail(op, "out of memory");
            break;
        }
        event__latest_impression__init(m);
        memcpy(id, e->id, e->idlen);
        id[e->idlen] = 0;
        memcpy(cid, e->cid, e->cidlen);
        cid[e->cidlen] = 0;
        m->impression_id = e->idlen ? id : NULL;
        m->content_id = e->cidlen ? cid : NULL;
        m->has_client_log_timestamp = e->clt != 0;
        m->client_log_timestamp = (uint64_t)e->clt;
        m->has_event_api_timestamp = e->eat != 0;
        m->event_api_timestamp = (uint64_t)e->eat;
        m->has_event_timestamp = e->ets != 0;
        m->event_timestamp = (uint64_t)e->ets;
        arr[i] = m;
    }
    free(pick);
    if (rc) return rc;
    event__latest_impressions__init(lis);
    lis->n_impression = k;
    lis->impression = arr;
    *out = *je;
    out->latest_impressions = lis;
    rt_counter_add(l->c_out, 1);
    rt_record r = {
        .ts = T, .type = REC_JOINED_EVENT, .data = out, .key = l->key, .key_len = l->klen};
    return rt_emit(op, 0, &r);
}

/* prune() of the reference: newest first, drop older than the session, keep the late-window
 * entries uncounted, then the first of each content id up to max_state. keep[] gets the kept
 * entries in their original (ascending) order. */
static int prune(const li_op *l, li_entry *const *in, size_t n, int64_t T, const li_entry **keep,
                 size_t *nkeep)
{
    strset ids;
    if (strset_init(&ids, n)) {
        strset_free(&ids);
        return -1;
    }
    int64_t before_session = T - SESSION_MS, late_start = T - l->cfg.out_of_orderness_ms;
    size_t kept = 0, counted = 0;
    for (size_t i = n; i-- > 0;) {
        const li_entry *e = in[i];
        if (entry_t(e) < before_session) continue;
        if (late_start < e->ets) {
            keep[kept++] = e;
        } else if (strset_add(&ids, e->cid, e->cidlen) && counted < (size_t)l->cfg.max_state) {
            keep[kept++] = e;
            counted++;
        }
    }
    strset_free(&ids);
    for (size_t i = 0; i < kept / 2; i++) {
        const li_entry *t = keep[i];
        keep[i] = keep[kept - 1 - i];
        keep[kept - 1 - i] = t;
    }
    *nkeep = kept;
    return 0;
}

/* The timer of §12.3 for the current user (l->key). When only_action is set, releases just that
 * action (bytes) at T without touching the stored lists (the over-limit path). */
static int run_timer(rt_op *op, int64_t T, const uint8_t *only_action, size_t only_len)
{
    li_op *l = rt_op_self(op);
    uint8_t *ib = NULL, *ab = NULL, *xb = NULL;
    size_t in_, ic, an, ac, xn, xc;
    li_entry *imps = NULL, *acts = NULL;
    li_entry **sorted = NULL, **aptr = NULL;
    const li_entry **keep = NULL;
    rt_buf kept_actions;
    rt_buf_init(&kept_actions, 0);
    int rc = 0;
    if (list_copy(op, l->impressions, l->key, l->klen, &ib, &in_, &ic) ||
        list_copy(op, l->actioned, l->key, l->klen, &ab, &an, &ac) ||
        parse_entries(op, ib, in_, ic, &imps) || parse_entries(op, ab, an, ac, &acts)) {
        rc = -1;
        goto out;
    }
    sorted = malloc((ic ? ic : 1) * sizeof *sorted);
    aptr = malloc((ac ? ac : 1) * sizeof *aptr);
    keep = malloc(((ic > ac ? ic : ac) + 1) * sizeof *keep);
    if (!sorted || !aptr || !keep) {
        rc = rt_op_fail(op, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ic; i++)
        sorted[i] = &imps[i];
    for (size_t i = 0; i < ac; i++)
        aptr[i] = &acts[i];
    qsort(sorted, ic, sizeof *sorted, cmp_t);
    if (only_action) {
        rc = release(op, only_action, only_len, T, sorted, ic, acts, ac);
        goto out;
    }
    if (list_copy(op, l->actions, l->key, l->klen, &xb, &xn, &xc)) {
        rc = -1;
        goto out;
    }
    size_t kept_count = 0;
    for (size_t off = 0, i = 0; i < xc && !rc; i++) {
        if (off + 12 > xn) {
            rc = rt_op_fail(op, "corrupt action list");
            break;
        }
        int64_t eat = jb_get_i64(xb + off);
        uint32_t len = jb_get_u32(xb + off + 8);
        if (len > xn - off - 12) {
            rc = rt_op_fail(op, "corrupt action list");
            break;
        }
        if (eat <= T - l->cfg.out_of_orderness_ms) {
            rc = release(op, xb + off + 12, len, T, sorted, ic, acts, ac);
            pb_arena_reset(l->arena, 4 << 20);
        } else {
            if (rt_buf_append(&kept_actions, xb + off, 12 + (size_t)len))
                rc = rt_op_fail(op, "out of memory");
            kept_count++;
        }
        off += 12 + (size_t)len;
    }
    if (rc) goto out;
    if (!kept_count) {
        rt_kv_delete(l->actions, l->key, l->klen);
    } else {
        void *v;
        if (rt_kv_upsert(l->actions, l->key, l->klen, LI_HDR + kept_actions.len, &v, NULL)) {
            rc = -1;
            goto out;
        }
        jb_put_u32(v, (uint32_t)kept_count);
        jb_put_u32((uint8_t *)v + 4, (uint32_t)kept_actions.len);
        memcpy((uint8_t *)v + LI_HDR, kept_actions.data, kept_actions.len);
    }
    size_t nk;
    if (prune(l, sorted, ic, T, keep, &nk) ||
        list_store(l, l->impressions, (const li_entry *const *)keep, nk) ||
        prune(l, aptr, ac, T, keep, &nk) ||
        list_store(l, l->actioned, (const li_entry *const *)keep, nk))
        rc = rc ? rc : rt_op_fail(op, "out of memory pruning latest impressions");
out:
    rt_buf_free(&kept_actions);
    free(keep);
    free(sorted);
    free(aptr);
    free(imps);
    free(acts);
    free(ib);
    free(ab);
    free(xb);
    return rc;
}

/* ---------------------------------------------------------------- operator */

static int64_t hour_bucket(int64_t ts)
{
    return (ts / HOUR + SESSION_CLEANUP_HOURS) * HOUR;
}

static int li_element(rt_op *op, int input, const rt_record *rec)
{
    li_op *l = rt_op_self(op);
    if (rec->type != REC_JOINED_EVENT)
        return rt_op_fail(op, "input %d: unexpected record type %d (want a joined event)", input,
                          rec->type);
    const Event__JoinedEvent *e = rec->data;
    int n = job_key_platform_id(joined_event_platform_id(e), joined_event_log_user_id(e), l->key,
                                LI_KEY_MAX);
    const char *content = e->response_insertion ? e->response_insertion->content_id : NULL;
    const char *imp_id = e->ids ? e->ids->impression_id : NULL;
    int64_t ts = rec->ts;
    if (input == 1) {
        if (n < 0) {
            rt_counter_add(l->c_key, 1);
            return 0; /* cannot be kept: only a negative signal is lost */
        }
        l->klen = (size_t)n;
        if (list_count(l->impressions, l->key, l->klen) >= LATEST_IMPRESSIONS_LIST_CAP) {
            rt_counter_add(l->c_over, 1);
            return 0;
        }
        if (entry_pack(l, imp_id, content, e->impression ? e->impression->timing : NULL, ts) ||
            list_append(l->impressions, l->key, l->klen, l->buf.data, l->buf.len))
            return rt_op_fail(op, "cannot store a latest impression");
        if (rt_timer_register(op, (ts / MINUTE + 1) * MINUTE, l->key, l->klen) ||
            rt_timer_register(op, hour_bucket(ts), l->key, l->klen))
            return -1;
        return 0;
    }
    rt_buf_reset(&l->buf);
    size_t len = protobuf_c_message_get_packed_size(&e->base);
    if (rt_buf_reserve(&l->buf, 12 + len)) return rt_op_fail(op, "out of memory");
    const Common__Timing *at = e->action ? e->action->timing : NULL;
    jb_put_i64(l->buf.data, at ? (int64_t)at->event_api_timestamp : 0);
    jb_put_u32(l->buf.data + 8, (uint32_t)len);
    protobuf_c_message_pack(&e->base, l->buf.data + 12);
    l->buf.len = 12 + len;
    if (n < 0) {
        /* no state for this user: it goes out at once, without latest impressions */
        rt_counter_add(l->c_key, 1);
        l->klen = 0;
        return release(op, l->buf.data + 12, len, ts, NULL, 0, NULL, 0);
    }
    l->klen = (size_t)n;
    if (list_count(l->actions, l->key, l->klen) >= LATEST_IMPRESSIONS_LIST_CAP ||
        list_count(l->actioned, l->key, l->klen) >= LATEST_IMPRESSIONS_LIST_CAP) {
        rt_counter_add(l->c_over, 1);
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy) return rt_op_fail(op, "out of memory");
        memcpy(copy, l->buf.data + 12, len);
        int rc = run_timer(op, ts, copy, len);
        free(copy);
        return rc;
    }
    if (list_append(l->actions, l->key, l->klen, l->buf.data, l->buf.len)) return -1;
    if (entry_pack(l, imp_id, content, at, ts) ||
        list_append(l->actioned, l->key, l->klen, l->buf.data, l->buf.len))
        return rt_op_fail(op, "cannot store an actioned impression");
    if (rt_timer_register(op, ts + l->cfg.out_of_orderness_ms, l->key, l->klen) ||
        rt_timer_register(op, hour_bucket(ts), l->key, l->klen))
        return -1;
    return 0;
}

static int li_process(rt_op *op, int input, const rt_record *rec)
{
    li_op *l = rt_op_self(op);
    int rc = li_element(op, input, rec);
    pb_arena_reset(l->arena, 4 << 20);
    return rc;
}

static int li_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    li_op *l = rt_op_self(op);
    if (klen > LI_KEY_MAX) return rt_op_fail(op, "bad timer key of %zu bytes", klen);
    memcpy(l->key, key, klen);
    l->klen = klen;
    int rc = run_timer(op, time, NULL, 0);
    pb_arena_reset(l->arena, 4 << 20);
    return rc;
}

static int li_open(rt_op *op)
{
    li_op *l = rt_op_self(op);
    if (rt_kv_new(op, "actions", &l->actions) || rt_kv_new(op, "impressions", &l->impressions) ||
        rt_kv_new(op, "actioned", &l->actioned))
        return -1;
    if (rt_op_counter(op, "numActionsOut", &l->c_out) ||
        rt_op_counter(op, "numOverListCap", &l->c_over) ||
        rt_op_counter(op, "numRecordsKeyTooLong", &l->c_key))
        return rt_op_fail(op, "out of memory");
    return 0;
}

static void li_close(rt_op *op)
{
    li_op *l = rt_op_self(op);
    pb_arena_free(l->arena);
    rt_buf_free(&l->buf);
    free(l);
}

static const rt_op_vtbl li_vtbl = {
    .open = li_open,
    .process = li_process,
    .on_timer = li_timer,
    .close = li_close,
};

latest_impressions_config latest_impressions_defaults(void)
{
    latest_impressions_config c = {.out_of_orderness_ms = 500, .max_output = 25, .max_state = 30};
    return c;
}

int latest_impressions_op_add(rt_graph *g, const char *uid, const latest_impressions_config *cfg,
                              rt_op **out)
{
    if (!cfg || cfg->out_of_orderness_ms < 0 || cfg->max_output < 0 || cfg->max_state < 0)
        return -1;
    li_op *l = calloc(1, sizeof *l);
    if (!l) return -1;
    l->cfg = *cfg;
    rt_buf_init(&l->buf, LI_ARENA_CAP);
    l->arena = pb_arena_new(64 << 10, LI_ARENA_CAP);
    if (!l->arena || rt_graph_add_op(g, uid, "join-latest-impressions", &li_vtbl, l, 2, 1, out)) {
        pb_arena_free(l->arena);
        free(l);
        return -1;
    }
    return 0;
}
