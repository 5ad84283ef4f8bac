/* MergeImpressionDetails / MergeActionDetails (spec/flat-output.md §11).
 *
 * State, all in rt_kv tables of the operator (snapshotted by name):
 *   rec-<kind>   user+id -> i64 log_timestamp, then the stored record packed (stripped as §11.2
 *                and §11.3 say, so the bytes are what a build needs)
 *   directory    user -> i64 time of the user's last batch cleanup, then the sorted times of its
 *                non-empty expiry buckets
 *   expiry       user+time B -> the (tag, id) of the stored records and wait lists that expire by
 *                the cleanup boundary B: a batch cleanup at T visits only the buckets up to the
 *                boundary at or after T, so its cost is what expires, not what the user holds
 *                (the reference scans its per-key map states whole; the result is the same)
 *   incomplete   user+time -> the tiny events waiting for that timer (timeToIncomplete)
 *   wait         user+tag+id -> the sorted timer times whose tiny events miss that parent
 *                (idToIncompleteEventTimers)
 *   parts        (action operator) user+ref -> a view or request shared by the joined
 *                impressions of the user, which rec-joined-impression keeps in split form
 *                (part_store.h): the 14 impressions of a request hold one copy, not 14
 * Variable-size values that grow by appends keep a u32 "used" header and double their capacity,
 * so an append costs O(entry) amortised. Keys: user = le64 platform_id + log_user_id (also the
 * timer key); user+x = le64 platform_id, varint length of log_user_id, log_user_id, x. */
#include "jobs/join/merge_details.h"
#include "jobs/join/join_bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pb_private.h"
#include "formats/pb_util.h"
#include "jobs/join/join_records.h"
#include "jobs/join/joined_filters.h"
#include "jobs/join/part_store.h"
#include "runtime/state.h"

#define MD_KEY_MAX 16384
#define MD_ARENA_CAP ((size_t)256 << 20)

enum md_kind { MD_IMPRESSION, MD_ACTION };

/* Record tags: index of the rec-* table, also the directory and wait-key tag. */
enum { T_VIEW, T_DL, T_BUNDLE, T_IMPRESSION, T_JOINED, T_ACTION, T_COUNT };
static const char *const tag_table[T_COUNT] = {
    "rec-view",       "rec-delivery-log",      "rec-insertion",
    "rec-impression", "rec-joined-impression", "rec-action",
};
#define DIR_WAIT 0x80 /* expiry entry tag bit: a wait list, not a stored record */

/* Missing parents of an evaluation. */
enum { M_VIEW = 1, M_DL = 2, M_IMPRESSION = 4, M_JOINED = 8, M_ACTION = 16 };

typedef struct md_op {
    rt_op *op; /* set in open */
    enum md_kind kind;
    int64_t window[T_COUNT];
    int64_t period, delay, batch_before;
    bool skip_view_join;
    rt_kv *rec[T_COUNT], *dir, *expiry, *incomplete, *wait, *parts;
    rt_buf joined; /* a joined impression rebuilt from its split form */
    pb_arena *arena;
    rt_buf scratch;
    uint8_t ukey[MD_KEY_MAX + 16]; /* the current user key (timer key form) */
    size_t ukey_len;
    rt_counter *c_out, *c_dropped, *c_no_lt, *c_bad_ins, *c_key, *c_wait_overflow, *c_mismatch;
    /* The last view and delivery log decoded: the tiny impressions of one request follow each
     * other and name the same two, so they are decoded once, not once per impression. A cache
     * entry is valid while gen[tag] (bumped by every write and delete of that table) is
     * unchanged. Evaluations only read decoded records (they copy before changing). */
    uint64_t gen[T_COUNT];
    struct md_cache {
        uint64_t gen;
        uint8_t *key;
        size_t klen;
        pb_arena *arena;
        void *msg; /* NULL: empty */
    } cache[T_COUNT];
} md_op;

/* ---------------------------------------------------------------- small helpers */

static bool nonempty(const char *s)
{
    return s && *s;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int64_t timing_lt(const Common__Timing *t)
{
    return t ? (int64_t)t->log_timestamp : 0;
}

static void *md_alloc(md_op *m, size_t n)
{
    ProtobufCAllocator *a = pb_arena_allocator(m->arena);
    void *p = a->alloc(a->allocator_data, n);
    if (p) memset(p, 0, n);
    return p;
}

/* A shallow copy of a message in the arena: the copy may be changed field by field while the
 * original, and everything it points to, stays as it was. */
static void *md_dup(md_op *m, const void *msg)
{
    const ProtobufCMessage *pm = msg;
    void *c = md_alloc(m, pm->descriptor->sizeof_message);
    if (c) memcpy(c, msg, pm->descriptor->sizeof_message);
    return c;
}

/* An empty message of type d (present when set, absent fields inside). */
static void *md_empty(md_op *m, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *c = md_alloc(m, d->sizeof_message);
    if (c) d->message_init(c);
    return c;
}

/* The copy of ui with the named ids cleared, or NULL when nothing is left (Java isEmpty:
 * unknown fields do not count). */
static Common__UserInfo *strip_user_info(md_op *m, const Common__UserInfo *ui, bool luid,
                                         bool user_id, bool *oom)
{
    if (!ui) return NULL;
    Common__UserInfo *c = md_dup(m, ui);
    if (!c) {
        *oom = true;
        return NULL;
    }
    if (luid) c->log_user_id = NULL;
    if (user_id) c->user_id = NULL;
    if (!nonempty(c->user_id) && !nonempty(c->log_user_id) && !c->is_internal_user &&
        !c->ignore_usage && !nonempty(c->anon_user_id) && !nonempty(c->retained_user_id))
        return NULL;
    return c;
}

/* The copy of ui without user_id, kept present (stored records: the build decides later). */
static Common__UserInfo *without_user_id(md_op *m, Common__UserInfo *ui, bool *oom)
{
    if (!ui || !ui->user_id) return ui;
    Common__UserInfo *c = md_dup(m, ui);
    if (!c) {
        *oom = true;
        return ui;
    }
    c->user_id = NULL;
    return c;
}

/* Removes the unknown occurrences of field `number` from a shallow copy (the array is copied). */
static int drop_unknown(md_op *m, ProtobufCMessage *msg, uint32_t number)
{
    if (!msg->n_unknown_fields) return 0;
    ProtobufCMessageUnknownField *u = md_alloc(m, msg->n_unknown_fields * sizeof *u);
    if (!u) return -1;
    size_t k = 0;
    for (size_t i = 0; i < msg->n_unknown_fields; i++)
        if (msg->unknown_fields[i].tag != number) u[k++] = msg->unknown_fields[i];
    msg->unknown_fields = k ? u : NULL;
    msg->n_unknown_fields = k;
    return 0;
}

/* ---------------------------------------------------------------- keys */

/* Sets the current user (m->ukey). Returns -1 when the key would pass MD_KEY_MAX. */
static int set_user(md_op *m, uint64_t platform, const char *luid)
{
    int n = job_key_platform_id(platform, luid, m->ukey, MD_KEY_MAX);
    if (n < 0) return -1;
    m->ukey_len = (size_t)n;
    return 0;
}

/* user+x key into buf (cap MD_KEY_MAX + 32 + xlen) for the current user. Returns its length. */
static size_t user_key(const md_op *m, uint8_t *buf, const void *x, size_t xlen)
{
    memcpy(buf, m->ukey, 8);
    size_t luid = m->ukey_len - 8;
    size_t n = 8 + jb_put_varint(buf + 8, luid);
    memcpy(buf + n, m->ukey + 8, luid);
    n += luid;
    if (xlen) memcpy(buf + n, x, xlen);
    return n + xlen;
}

/* A heap buffer for one user+x key (ids are bounded by the record size, not by a constant). */
typedef struct kbuf {
    uint8_t small[512];
    uint8_t *p;
    size_t len;
} kbuf;

static int kbuf_make(md_op *m, kbuf *k, const void *x, size_t xlen)
{
    size_t need = m->ukey_len + 16 + xlen;
    k->p = need <= sizeof k->small ? k->small : malloc(need);
    if (!k->p) return -1;
    k->len = user_key(m, k->p, x, xlen);
    return 0;
}

static void kbuf_free(kbuf *k)
{
    if (k->p && k->p != k->small) free(k->p);
    k->p = NULL;
}

/* user+tag+id, the wait-table key. */
static int kbuf_wait_n(md_op *m, kbuf *k, int tag, const char *id, size_t n)
{
    uint8_t *x = malloc(n + 1);
    if (!x) return -1;
    x[0] = (uint8_t)tag;
    memcpy(x + 1, id, n);
    int rc = kbuf_make(m, k, x, n + 1);
    free(x);
    return rc;
}

static int kbuf_wait(md_op *m, kbuf *k, int tag, const char *id)
{
    return kbuf_wait_n(m, k, tag, id, strlen(id));
}

/* ---------------------------------------------------------------- growable values */

static uint8_t *blob_get(rt_kv *kv, const uint8_t *key, size_t klen, uint32_t *used)
{
    uint8_t *v = rt_kv_get(kv, key, klen, NULL);
    if (!v) return NULL;
    memcpy(used, v, 4);
    return v + 4;
}

static int blob_append(rt_kv *kv, const uint8_t *key, size_t klen, const void *p, size_t n)
{
    size_t vlen;
    uint8_t *v = rt_kv_get(kv, key, klen, &vlen);
    uint32_t used = 0;
    if (v) memcpy(&used, v, 4);
    size_t need = 4 + (size_t)used + n;
    if (need > UINT32_MAX) return -1;
    if (!v || need > vlen) {
        size_t cap = v ? 2 * vlen : 64;
        if (cap < need) cap = need;
        if (cap > UINT32_MAX) cap = need;
        void *nv;
        if (rt_kv_upsert(kv, key, klen, cap, &nv, NULL)) return -1;
        v = nv;
    }
    memcpy(v + 4 + used, p, n);
    used += (uint32_t)n;
    memcpy(v, &used, 4);
    return 0;
}

/* Replaces the value with exactly n bytes of content. */
static int blob_set(md_op *m, rt_kv *kv, const uint8_t *key, size_t klen, const void *p, size_t n)
{
    void *nv;
    if (rt_kv_upsert(kv, key, klen, 4 + n, &nv, NULL)) return -1;
    uint32_t used = (uint32_t)n;
    memcpy(nv, &used, 4);
    if (n) memmove((uint8_t *)nv + 4, p, n);
    return 0;
}

/* ---------------------------------------------------------------- expiry buckets */

/* A record or wait list is listed in the bucket of the first cleanup boundary (a multiple of the
 * period) at which it can be gone: a record when lt < B - window (lt <= 0: at the next cleanup,
 * bucket EXPIRE_NOW), a wait list when its last time is <= B. A cleanup at T visits the buckets up
 * to the first boundary >= T and checks each entry exactly; an entry whose record moved to another
 * bucket (rewritten with another lt) is dropped there, since the record is listed again in its
 * own bucket. */
#define EXPIRE_NOW INT64_MIN
#define DIR_HDR 8 /* the directory value starts with the last cleanup time */

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
}

/* The smallest multiple of the period >= x. */
static int64_t boundary_at_or_after(const md_op *m, int64_t x)
{
    int64_t r = x % m->period;
    if (!r) return x;
    return r > 0 ? sat_add(x - r, m->period) : x - r;
}

static int64_t rec_bucket(const md_op *m, int tag, int64_t lt)
{
    if (lt <= 0) return EXPIRE_NOW;
    return boundary_at_or_after(m, sat_add(lt, sat_add(m->window[tag], 1)));
}

static int64_t wait_bucket(const md_op *m, int64_t last)
{
    return boundary_at_or_after(m, last);
}

/* The user's last batch cleanup time (EXPIRE_NOW when none is recorded). */
static int64_t last_cleanup(md_op *m)
{
    uint32_t used = 0;
    const uint8_t *v = blob_get(m->dir, m->ukey, m->ukey_len, &used);
    return v && used >= DIR_HDR ? jb_get_i64(v) : EXPIRE_NOW;
}

/* Lists (tag, id) in bucket B of the current user. */
static int expiry_add(md_op *m, int64_t B, int tag, const char *id, size_t idlen)
{
    uint32_t used = 0;
    const uint8_t *v = blob_get(m->dir, m->ukey, m->ukey_len, &used);
    int rc = 0;
    if (!v || used < DIR_HDR) {
        uint8_t b[DIR_HDR + 8];
        jb_put_i64(b, EXPIRE_NOW);
        jb_put_i64(b + DIR_HDR, B);
        rc = blob_set(m, m->dir, m->ukey, m->ukey_len, b, sizeof b);
    } else {
        size_t n = (used - DIR_HDR) / 8, lo = 0, hi = n;
        const uint8_t *t = v + DIR_HDR;
        if (!n || jb_get_i64(t + 8 * (n - 1)) < B) {
            lo = n; /* the usual case: a later bucket than any so far */
        } else {
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (jb_get_i64(t + 8 * mid) < B)
                    lo = mid + 1;
                else
                    hi = mid;
            }
        }
        if (lo == n) {
            uint8_t b[8];
            jb_put_i64(b, B);
            rc = blob_append(m->dir, m->ukey, m->ukey_len, b, 8);
        } else if (jb_get_i64(t + 8 * lo) != B) {
            uint8_t *copy = malloc(used + 8);
            if (!copy) return rt_op_fail(m->op, "out of memory");
            memcpy(copy, v, DIR_HDR + 8 * lo);
            jb_put_i64(copy + DIR_HDR + 8 * lo, B);
            memcpy(copy + DIR_HDR + 8 * (lo + 1), t + 8 * lo, 8 * (n - lo));
            rc = blob_set(m, m->dir, m->ukey, m->ukey_len, copy, used + 8);
            free(copy);
        }
    }
    if (rc) return -1;
    uint8_t e[16 + 512];
    uint8_t *p = idlen + 16 <= sizeof e ? e : malloc(idlen + 16);
    if (!p) return rt_op_fail(m->op, "out of memory");
    p[0] = (uint8_t)tag;
    size_t h = 1 + jb_put_varint(p + 1, idlen);
    memcpy(p + h, id, idlen);
    uint8_t b8[8];
    jb_put_i64(b8, B);
    kbuf k;
    rc = kbuf_make(m, &k, b8, 8);
    if (!rc) rc = blob_append(m->expiry, k.p, k.len, p, h + idlen);
    kbuf_free(&k);
    if (p != e) free(p);
    return rc;
}

/* ---------------------------------------------------------------- stored records */

/* Stores packed bytes (m->scratch) with lt under rec-<tag>[user+id]; lists the record in its
 * expiry bucket when it is new or its bucket changed. */
static int rec_put(md_op *m, int tag, const char *id, int64_t lt)
{
    size_t idlen = strlen(id);
    kbuf k;
    if (kbuf_make(m, &k, id, idlen)) return -1;
    size_t oldlen = 0;
    const uint8_t *old = rt_kv_get(m->rec[tag], k.p, k.len, &oldlen);
    int64_t B = rec_bucket(m, tag, lt);
    if (old && tag == T_JOINED) {
        /* the new bytes hold their own references already (stored split first) */
        uint8_t scope[MD_KEY_MAX + 16];
        part_store_release(m->parts, scope, user_key(m, scope, NULL, 0), old + 8, oldlen - 8);
    }
    bool list = !old || rec_bucket(m, tag, jb_get_i64(old)) != B;
    void *v;
    m->gen[tag]++;
    int rc = rt_kv_upsert(m->rec[tag], k.p, k.len, 8 + m->scratch.len, &v, NULL);
    if (!rc) {
        jb_put_i64(v, lt);
        memcpy((uint8_t *)v + 8, m->scratch.data, m->scratch.len);
        if (list) rc = expiry_add(m, B, tag, id, idlen);
    }
    kbuf_free(&k);
    return rc;
}

/* Loads rec-<tag>[user+id] unpacked into the arena (*out NULL when absent). */
static int rec_load(rt_op *op, int tag, const char *id, const ProtobufCMessageDescriptor *d,
                    void *out)
{
    md_op *m = rt_op_self(op);
    *(void **)out = NULL;
    kbuf k;
    if (kbuf_make(m, &k, nz(id), strlen(nz(id)))) return rt_op_fail(op, "out of memory");
    struct md_cache *c = tag == T_VIEW || tag == T_DL ? &m->cache[tag] : NULL;
    if (c && c->msg && c->gen == m->gen[tag] && c->klen == k.len && !memcmp(c->key, k.p, k.len)) {
        kbuf_free(&k);
        *(void **)out = c->msg;
        return 0;
    }
    size_t vlen;
    const uint8_t *v = rt_kv_get(m->rec[tag], k.p, k.len, &vlen);
    if (!v) {
        kbuf_free(&k);
        return 0;
    }
    pb_arena *arena = m->arena;
    if (c) {
        /* refill the cache entry: its previous record is no longer referenced (each evaluation
         * emits before the next one loads) */
        c->msg = NULL;
        uint8_t *key = realloc(c->key, k.len ? k.len : 1);
        if (!c->arena) c->arena = pb_arena_new(16 << 10, MD_ARENA_CAP);
        if (key) c->key = key;
        if (!key || !c->arena) {
            kbuf_free(&k);
            return rt_op_fail(op, "out of memory");
        }
        pb_arena_reset(c->arena, 64 << 10);
        memcpy(c->key, k.p, k.len);
        c->klen = k.len;
        arena = c->arena;
    }
    kbuf_free(&k);
    const uint8_t *body = v + 8;
    size_t blen = vlen - 8;
    if (tag == T_JOINED) {
        uint8_t scope[MD_KEY_MAX + 16];
        rt_buf_reset(&m->joined);
        if (part_store_join(m->parts, scope, user_key(m, scope, NULL, 0), body, blen,
                            &m->joined))
            return rt_op_fail(op, "stored joined impression %s: its split form does not join",
                              nz(id));
        body = m->joined.data;
        blen = m->joined.len;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(d, pb_arena_allocator(arena), blen, body);
    if (!msg)
        return rt_op_fail(op, "stored %s %s of %zu bytes does not decode (arena %zu bytes)",
                          d->short_name, nz(id), blen, pb_arena_held(arena));
    if (c) {
        c->msg = msg;
        c->gen = m->gen[tag];
    }
    *(void **)out = msg;
    return 0;
}

static int pack_scratch(md_op *m, const ProtobufCMessage *msg)
{
    rt_buf_reset(&m->scratch);
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (rt_buf_reserve(&m->scratch, n)) return -1;
    protobuf_c_message_pack(msg, m->scratch.data);
    m->scratch.len = n;
    return 0;
}

/* ---------------------------------------------------------------- evaluation */

typedef struct md_eval {
    rt_op *op;
    md_op *m;
    int64_t ts; /* ts of what is emitted */
} md_eval;

/* One JoinValueSetter (§7.9): the LHS ids are a snapshot taken before the record is merged. */
typedef struct setter {
    md_eval *ev;
    Event__JoinedIdentifiers *ids;
    Event__JoinedIdentifiers lhs;
    join_record_type record_type;
    const char *rhs_id;
    int64_t lt;
    join_log_function fn;
} setter;

static setter setter_begin(md_eval *ev, Event__JoinedIdentifiers *ids, join_record_type rt,
                           const char *rhs_id, int64_t lt, join_log_function fn)
{
    setter s = {
        .ev = ev, .ids = ids, .lhs = *ids, .record_type = rt, .rhs_id = rhs_id, .lt = lt, .fn = fn};
    return s;
}

static int emit_mismatch(setter *s, join_field f, const char *ls, const char *rs, int64_t ll,
                         int64_t rl)
{
    const Event__JoinedIdentifiers *l = &s->lhs;
    join_mismatch_error e = {
        .record_type = s->record_type,
        .field = f,
        .lhs_platform_id = (int64_t)l->platform_id,
        .lhs_log_user_id = l->log_user_id,
        .lhs_session_id = l->session_id,
        .lhs_view_id = l->view_id,
        .lhs_auto_view_id = l->auto_view_id,
        .lhs_request_id = l->request_id,
        .lhs_insertion_id = l->insertion_id,
        .lhs_impression_id = l->impression_id,
        .rhs_record_id = s->rhs_id,
        .lhs_string = ls,
        .rhs_string = rs,
        .lhs_long = ll,
        .rhs_long = rl,
        .log_timestamp = s->lt,
        .log_function_name = s->fn,
    };
    rt_counter_add(s->ev->m->c_mismatch, 1);
    rt_record r = {.ts = s->ev->ts, .type = REC_MISMATCH_ERROR, .data = &e};
    return rt_emit(s->ev->op, 1, &r);
}

static int set_str(setter *s, join_field f, char **dst, const char *rhs, bool log)
{
    if (!nonempty(*dst)) {
        if (nonempty(rhs)) *dst = (char *)rhs;
        return 0;
    }
    if (nonempty(rhs) && strcmp(*dst, rhs) && log) return emit_mismatch(s, f, *dst, rhs, 0, 0);
    return 0;
}

static int set_platform(setter *s, uint64_t rhs)
{
    Event__JoinedIdentifiers *ids = s->ids;
    if (!ids->platform_id) {
        ids->platform_id = rhs;
        ids->has_platform_id = rhs != 0;
        return 0;
    }
    if (rhs && rhs != ids->platform_id)
        return emit_mismatch(s, JOIN_F_PLATFORM_ID, NULL, NULL, (int64_t)ids->platform_id,
                             (int64_t)rhs);
    return 0;
}

static const char *ui_luid(const Common__UserInfo *ui)
{
    return ui ? ui->log_user_id : NULL;
}

/* setBaseFlatInsertion: merges the insertion's ids and returns the trimmed copy. */
static int flat_insertion(md_eval *ev, Event__JoinedIdentifiers *ids, const Delivery__Insertion *in,
                          join_record_type rt, join_log_function fn, int64_t lt, bool move_id,
                          bool log_request, Delivery__Insertion **out)
{
    setter s = setter_begin(ev, ids, rt, nz(in->insertion_id), lt, fn);
    if (set_platform(&s, in->platform_id) ||
        set_str(&s, JOIN_F_LOG_USER_ID, &ids->log_user_id, ui_luid(in->user_info), true) ||
        set_str(&s, JOIN_F_SESSION_ID, &ids->session_id, in->session_id, true) ||
        set_str(&s, JOIN_F_VIEW_ID, &ids->view_id, in->view_id, true) ||
        set_str(&s, JOIN_F_REQUEST_ID, &ids->request_id, in->request_id, log_request))
        return -1;
    if (move_id &&
        set_str(&s, JOIN_F_INSERTION_ID, &ids->insertion_id, in->insertion_id, log_request))
        return -1;
    bool oom = false;
    Delivery__Insertion *c = md_dup(ev->m, in);
    if (!c) return rt_op_fail(ev->op, "out of memory");
    c->view_id = NULL;
    c->request_id = NULL;
    c->has_platform_id = 0;
    c->platform_id = 0;
    c->session_id = NULL;
    c->user_info = strip_user_info(ev->m, in->user_info, true, true, &oom);
    if (move_id) c->insertion_id = NULL;
    if (oom) return rt_op_fail(ev->op, "out of memory");
    *out = c;
    return 0;
}

/* The ids of a JoinedEvent under construction, created on first use. */
static Event__JoinedIdentifiers *ids_of(md_eval *ev, Event__JoinedEvent *je)
{
    if (!je->ids) je->ids = md_empty(ev->m, &event__joined_identifiers__descriptor);
    return je->ids;
}

static const Delivery__Request *combined_request(const Event__CombinedDeliveryLog *c)
{
    const Delivery__DeliveryLog *dl = c->sdk ? c->sdk : c->api;
    return dl ? dl->request : NULL;
}

/* Steps 1-4 of §11.2 for one tiny impression. */
static int fill_impression(md_eval *ev, const Event__TinyEvent *t, Event__JoinedEvent *je,
                           unsigned *missing)
{
    md_op *m = ev->m;
    rt_op *op = ev->op;
    bool oom = false;
    /* 1. view: merged when present, never required */
    if (!m->skip_view_join && nonempty(t->view_id)) {
        Event__View *v;
        if (rec_load(op, T_VIEW, t->view_id, &event__view__descriptor, &v)) return -1;
        if (v) {
            Event__JoinedIdentifiers *ids = ids_of(ev, je);
            if (!ids) return rt_op_fail(op, "out of memory");
            setter s = setter_begin(ev, ids, JOIN_RT_VIEW, nz(v->view_id), timing_lt(v->timing),
                                    JOIN_FN_FLAT_UTIL_SET_FLAT_VIEW);
            if (set_platform(&s, v->platform_id) ||
                set_str(&s, JOIN_F_LOG_USER_ID, &ids->log_user_id, ui_luid(v->user_info), true) ||
                set_str(&s, JOIN_F_SESSION_ID, &ids->session_id, v->session_id, true) ||
                set_str(&s, JOIN_F_VIEW_ID, &ids->view_id, v->view_id, true))
                return -1;
            Event__View *c = md_dup(m, v);
            if (!c) return rt_op_fail(op, "out of memory");
            c->has_platform_id = 0;
            c->platform_id = 0;
            c->session_id = NULL;
            c->view_id = NULL;
            c->user_info = strip_user_info(m, v->user_info, true, true, &oom);
            je->view = c;
        } else {
            *missing |= M_VIEW;
        }
    }
    /* 2. request, response, executions */
    if (nonempty(t->request_id)) {
        Event__CombinedDeliveryLog *cdl;
        if (rec_load(op, T_DL, t->request_id, &event__combined_delivery_log__descriptor, &cdl))
            return -1;
        if (cdl) {
            Event__JoinedIdentifiers *ids = ids_of(ev, je);
            const Delivery__Request *rq = combined_request(cdl);
            Delivery__Request *c = rq ? md_dup(m, rq) : md_empty(m, &delivery__request__descriptor);
            if (!ids || !c) return rt_op_fail(op, "out of memory");
            setter s = setter_begin(ev, ids, JOIN_RT_DELIVERY_LOG, nz(c->request_id),
                                    timing_lt(c->timing), JOIN_FN_FLAT_UTIL_SET_FLAT_REQUEST);
            if (set_platform(&s, c->platform_id) ||
                set_str(&s, JOIN_F_LOG_USER_ID, &ids->log_user_id, ui_luid(c->user_info), true) ||
                set_str(&s, JOIN_F_SESSION_ID, &ids->session_id, c->session_id, true) ||
                set_str(&s, JOIN_F_VIEW_ID, &ids->view_id, c->view_id, true) ||
                set_str(&s, JOIN_F_REQUEST_ID, &ids->request_id, c->request_id, true))
                return -1;
            c->view_id = NULL;
            c->n_insertion = 0;
            c->insertion = NULL;
            c->has_platform_id = 0;
            c->platform_id = 0;
            c->session_id = NULL;
            c->request_id = NULL;
            c->user_info = strip_user_info(m, c->user_info, true, true, &oom);
            je->request = c;
            if (cdl->api && cdl->sdk) {
                const Delivery__Request *ar = cdl->api->request;
                Event__HiddenApiRequest *h = md_empty(m, &event__hidden_api_request__descriptor);
                if (!h) return rt_op_fail(op, "out of memory");
                h->request_id = ar ? ar->request_id : NULL;
                h->timing =
                    ar && ar->timing ? ar->timing : md_empty(m, &common__timing__descriptor);
                h->client_info = ar && ar->client_info
                                     ? ar->client_info
                                     : md_empty(m, &common__client_info__descriptor);
                je->hidden_api_request = h;
            }
            const Delivery__DeliveryLog *dl = cdl->sdk ? cdl->sdk : cdl->api;
            Delivery__Response *resp = dl && dl->response
                                           ? md_dup(m, dl->response)
                                           : md_empty(m, &delivery__response__descriptor);
            if (!resp) return rt_op_fail(op, "out of memory");
            resp->n_insertion = 0;
            resp->insertion = NULL;
            je->response = resp;
            /* execution insertions were stripped when the log was stored */
            if (cdl->api && cdl->api->execution) je->api_execution = cdl->api->execution;
            if (cdl->sdk && cdl->sdk->execution) je->sdk_execution = cdl->sdk->execution;
        } else {
            *missing |= M_DL;
        }
    }
    /* 3. the insertion bundle */
    Event__InsertionBundle *b = NULL;
    if (nonempty(t->insertion_id)) {
        Event__JoinedIdentifiers *ids = ids_of(ev, je);
        if (!ids) return rt_op_fail(op, "out of memory");
        ids->insertion_id = t->insertion_id;
        if (rec_load(op, T_BUNDLE, t->insertion_id, &event__insertion_bundle__descriptor, &b))
            return -1;
    }
    if (b) {
        Event__JoinedIdentifiers *ids = ids_of(ev, je);
        int64_t lt = (int64_t)t->log_timestamp;
        if (b->request_insertion &&
            flat_insertion(ev, ids, b->request_insertion, JOIN_RT_REQUEST_INSERTION,
                           JOIN_FN_FLAT_UTIL_SET_FLAT_REQUEST_INSERTION, lt, false, true,
                           &je->request_insertion))
            return -1;
        if (b->response_insertion &&
            flat_insertion(ev, ids, b->response_insertion, JOIN_RT_RESPONSE_INSERTION,
                           JOIN_FN_FLAT_UTIL_SET_FLAT_RESPONSE_INSERTION, lt, true, true,
                           &je->response_insertion))
            return -1;
        if (b->api_execution_insertion &&
            flat_insertion(ev, ids, b->api_execution_insertion, JOIN_RT_EXECUTION_INSERTION,
                           JOIN_FN_FLAT_UTIL_SET_FLAT_API_EXECUTION_INSERTION, lt, true, false,
                           &je->api_execution_insertion))
            return -1;
    } else {
        *missing |= M_DL;
    }
    /* 4. impression */
    if (nonempty(t->impression_id)) {
        Event__Impression *im;
        if (rec_load(op, T_IMPRESSION, t->impression_id, &event__impression__descriptor, &im))
            return -1;
        if (im) {
            Event__JoinedIdentifiers *ids = ids_of(ev, je);
            if (!ids) return rt_op_fail(op, "out of memory");
            setter s = setter_begin(ev, ids, JOIN_RT_IMPRESSION, nz(im->impression_id),
                                    timing_lt(im->timing), JOIN_FN_FLAT_UTIL_SET_FLAT_IMPRESSION);
            if (set_platform(&s, im->platform_id) ||
                set_str(&s, JOIN_F_LOG_USER_ID, &ids->log_user_id, ui_luid(im->user_info), true) ||
                set_str(&s, JOIN_F_SESSION_ID, &ids->session_id, im->session_id, true) ||
                set_str(&s, JOIN_F_VIEW_ID, &ids->view_id, im->view_id, true) ||
                set_str(&s, JOIN_F_REQUEST_ID, &ids->request_id, im->request_id, true) ||
                set_str(&s, JOIN_F_INSERTION_ID, &ids->insertion_id, im->insertion_id, true) ||
                set_str(&s, JOIN_F_IMPRESSION_ID, &ids->impression_id, im->impression_id, true))
                return -1;
            Event__Impression *c = md_dup(m, im);
            if (!c) return rt_op_fail(op, "out of memory");
            c->view_id = NULL;
            c->request_id = NULL;
            c->insertion_id = NULL;
            c->has_platform_id = 0;
            c->platform_id = 0;
            c->session_id = NULL;
            c->impression_id = NULL;
            c->user_info = strip_user_info(m, im->user_info, true, true, &oom);
            je->impression = c;
            je->timing = im->timing ? im->timing : md_empty(m, &common__timing__descriptor);
        } else {
            *missing |= M_IMPRESSION;
        }
    }
    if (oom) return rt_op_fail(op, "out of memory");
    return 0;
}

static const Event__CartContent *cart_match(const Event__Cart *cart, const char *id)
{
    for (size_t i = 0; i < cart->n_contents; i++)
        if (!strcmp(nz(cart->contents[i]->content_id), nz(id))) return cart->contents[i];
    return NULL;
}

/* §11.3 for one tiny action. */
static int fill_action(md_eval *ev, const Event__TinyEvent *t, Event__JoinedEvent *je,
                       unsigned *missing)
{
    md_op *m = ev->m;
    rt_op *op = ev->op;
    if (nonempty(t->impression_id)) {
        Event__JoinedEvent *ji;
        if (rec_load(op, T_JOINED, t->impression_id, &event__joined_event__descriptor, &ji))
            return -1;
        if (ji) {
            /* the whole joined impression; its ids are copied so merging leaves it alone */
            *je = *ji;
            if (ji->ids && !(je->ids = md_dup(m, ji->ids))) return rt_op_fail(op, "out of memory");
        } else {
            *missing |= M_JOINED;
        }
    }
    if (nonempty(t->action_id)) {
        Event__Action *a;
        if (rec_load(op, T_ACTION, t->action_id, &event__action__descriptor, &a)) return -1;
        if (a) {
            Event__JoinedIdentifiers *ids = ids_of(ev, je);
            if (!ids) return rt_op_fail(op, "out of memory");
            setter s = setter_begin(ev, ids, JOIN_RT_ACTION, nz(a->action_id), timing_lt(a->timing),
                                    JOIN_FN_FLAT_UTIL_SET_FLAT_ACTION);
            if (set_platform(&s, a->platform_id) ||
                set_str(&s, JOIN_F_LOG_USER_ID, &ids->log_user_id, ui_luid(a->user_info), true) ||
                set_str(&s, JOIN_F_SESSION_ID, &ids->session_id, a->session_id, true) ||
                set_str(&s, JOIN_F_VIEW_ID, &ids->view_id, a->view_id, true) ||
                set_str(&s, JOIN_F_REQUEST_ID, &ids->request_id, a->request_id, true) ||
                set_str(&s, JOIN_F_INSERTION_ID, &ids->insertion_id, a->insertion_id, true) ||
                set_str(&s, JOIN_F_IMPRESSION_ID, &ids->impression_id, a->impression_id, true))
                return -1;
            bool oom = false;
            Event__Action *c = md_dup(m, a);
            if (!c) return rt_op_fail(op, "out of memory");
            c->view_id = NULL;
            c->request_id = NULL;
            c->insertion_id = NULL;
            c->impression_id = NULL;
            c->has_platform_id = 0;
            c->platform_id = 0;
            c->session_id = NULL;
            c->user_info = strip_user_info(m, a->user_info, true, true, &oom);
            if (oom) return rt_op_fail(op, "out of memory");
            if (a->cart) {
                /* the cart row this split of the action is about: by the tiny content id, else
                 * by any of its other content ids, first match wins */
                const Event__CartContent *cc = cart_match(a->cart, t->content_id);
                for (size_t i = 0; !cc && i < t->n_other_content_ids; i++)
                    cc = cart_match(a->cart, t->other_content_ids[i]->value);
                if (cc) {
                    Event__CartContent *one = md_dup(m, cc);
                    if (!one) return rt_op_fail(op, "out of memory");
                    if (one->quantity == 0) {
                        one->has_quantity = 1;
                        one->quantity = 1;
                    }
                    c->single_cart_content = one;
                }
            }
            je->action = c;
            je->timing = a->timing ? a->timing : md_empty(m, &common__timing__descriptor);
            if (!je->timing) return rt_op_fail(op, "out of memory");
        } else {
            *missing |= M_ACTION;
        }
    }
    return 0;
}

/* Builds the JoinedEvent of tiny t (mismatch rows go out as a side effect). *complete says
 * whether the required parents were all there. */
static int evaluate(md_eval *ev, const Event__TinyEvent *t, Event__JoinedEvent **out,
                    unsigned *missing)
{
    Event__JoinedEvent *je = md_empty(ev->m, &event__joined_event__descriptor);
    if (!je) return rt_op_fail(ev->op, "out of memory");
    *missing = 0;
    int rc = ev->m->kind == MD_IMPRESSION ? fill_impression(ev, t, je, missing)
                                          : fill_action(ev, t, je, missing);
    *out = je;
    return rc;
}

static bool complete(const md_op *m, unsigned missing)
{
    return m->kind == MD_IMPRESSION ? !(missing & (M_DL | M_IMPRESSION))
                                    : !(missing & (M_JOINED | M_ACTION));
}

static int emit_joined(md_eval *ev, const Event__JoinedEvent *je)
{
    rt_counter_add(ev->m->c_out, 1);
    rt_record r = {.ts = ev->ts,
                   .type = REC_JOINED_EVENT,
                   .data = (void *)je,
                   .key = ev->m->ukey,
                   .key_len = ev->m->ukey_len};
    return rt_emit(ev->op, 0, &r);
}

static int emit_dropped(md_eval *ev, const Event__TinyEvent *t, Event__JoinedEvent *je)
{
    Event__DroppedMergeDetailsEvent d = EVENT__DROPPED_MERGE_DETAILS_EVENT__INIT;
    d.tiny_event = (Event__TinyEvent *)t;
    d.joined_event = je;
    rt_counter_add(ev->m->c_dropped, 1);
    rt_record r = {.ts = ev->ts, .type = REC_DROPPED_MERGE_DETAILS, .data = &d};
    return rt_emit(ev->op, 2, &r);
}

/* ---------------------------------------------------------------- waiting */

static int64_t cleanup_ts(const md_op *m, int64_t t)
{
    return t - t % m->period + m->period;
}

/* Adds time T to wait[user+tag+id], sorted, without duplicates. Times at or before the user's
 * last batch cleanup go first (that cleanup removed them in the reference), and the list is
 * listed in the expiry bucket of T when T becomes its last time in a later bucket. */
static int wait_add(rt_op *op, int tag, const char *id, int64_t T)
{
    md_op *m = rt_op_self(op);
    const char *sid = nz(id);
    size_t idlen = strlen(sid);
    kbuf k;
    if (kbuf_wait_n(m, &k, tag, sid, idlen)) return rt_op_fail(op, "out of memory");
    uint32_t used = 0;
    uint8_t *v = blob_get(m->wait, k.p, k.len, &used);
    int rc = 0;
    if (!v) {
        uint8_t b[8];
        jb_put_i64(b, T);
        rc = blob_append(m->wait, k.p, k.len, b, 8);
        if (!rc) rc = expiry_add(m, wait_bucket(m, T), DIR_WAIT | tag, sid, idlen);
        kbuf_free(&k);
        return rc;
    }
    size_t n = used / 8, stale = 0;
    int64_t done = last_cleanup(m);
    while (stale < n && jb_get_i64(v + 8 * stale) <= done)
        stale++;
    const uint8_t *live = v + 8 * stale;
    size_t nl = n - stale;
    size_t lo = 0, hi = nl;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (jb_get_i64(live + 8 * mid) < T)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < nl && jb_get_i64(live + 8 * lo) == T) {
        kbuf_free(&k);
        return 0;
    }
    bool raises = lo == nl;
    bool new_bucket = raises && (!nl || wait_bucket(m, jb_get_i64(live + 8 * (nl - 1))) !=
                                            wait_bucket(m, T));
    if (raises && !stale && n < MERGE_DETAILS_MAX_WAIT_TIMES) {
        uint8_t b[8];
        jb_put_i64(b, T);
        rc = blob_append(m->wait, k.p, k.len, b, 8);
    } else {
        uint8_t *copy = malloc(8 * (nl + 1));
        if (!copy) {
            kbuf_free(&k);
            return rt_op_fail(op, "out of memory");
        }
        memcpy(copy, live, 8 * lo);
        jb_put_i64(copy + 8 * lo, T);
        memcpy(copy + 8 * (lo + 1), live + 8 * lo, 8 * (nl - lo));
        size_t first = 0;
        if (nl + 1 > MERGE_DETAILS_MAX_WAIT_TIMES) {
            first = 1; /* forget the oldest */
            rt_counter_add(m->c_wait_overflow, 1);
        }
        rc = blob_set(m, m->wait, k.p, k.len, copy + 8 * first, 8 * (nl + 1 - first));
        free(copy);
    }
    if (!rc && new_bucket) rc = expiry_add(m, wait_bucket(m, T), DIR_WAIT | tag, sid, idlen);
    kbuf_free(&k);
    return rc;
}

static int incomplete_key(md_op *m, kbuf *k, int64_t T)
{
    uint8_t b[8];
    jb_put_i64(b, T);
    return kbuf_make(m, k, b, 8);
}

/* Splits one stored incomplete list into (varint length, packed tiny) entries. */
typedef struct tiny_iter {
    const uint8_t *p, *end;
} tiny_iter;

static int tiny_next(tiny_iter *it, const uint8_t **bytes, size_t *len)
{
    if (it->p >= it->end) return 0;
    uint64_t n;
    size_t h = jb_get_varint(it->p, (size_t)(it->end - it->p), &n);
    if (!h || n > (uint64_t)(it->end - it->p - h)) return -1;
    *bytes = it->p + h;
    *len = (size_t)n;
    it->p += h + n;
    return 1;
}

/* The tiny events waiting at T that the arrival of (tag, id) may complete: every list named by
 * wait[tag, id] is re-evaluated (§11.1), the complete ones are emitted at ev->ts. */
static int try_incomplete(md_eval *ev, int tag, const char *id)
{
    md_op *m = ev->m;
    rt_op *op = ev->op;
    kbuf wk;
    if (kbuf_wait(m, &wk, tag, nz(id))) return rt_op_fail(op, "out of memory");
    uint32_t used = 0;
    const uint8_t *v = blob_get(m->wait, wk.p, wk.len, &used);
    if (!v || !used) {
        kbuf_free(&wk);
        return 0;
    }
    uint8_t *times = malloc(used);
    if (!times) {
        kbuf_free(&wk);
        return rt_op_fail(op, "out of memory");
    }
    memcpy(times, v, used);
    size_t kept = 0;
    int rc = 0;
    for (size_t i = 0; i < used / 8 && !rc; i++) {
        int64_t T = jb_get_i64(times + 8 * i);
        kbuf ik;
        if (incomplete_key(m, &ik, T)) {
            rc = rt_op_fail(op, "out of memory");
            break;
        }
        uint32_t lused = 0;
        const uint8_t *lv = blob_get(m->incomplete, ik.p, ik.len, &lused);
        if (!lv) {
            kbuf_free(&ik);
            continue; /* its timer already ran: the entry is stale */
        }
        uint8_t *list = malloc(lused ? lused : 1);
        rt_buf still;
        rt_buf_init(&still, 0);
        if (!list)
            rc = rt_op_fail(op, "out of memory");
        else
            memcpy(list, lv, lused);
        tiny_iter it = {list, list ? list + lused : NULL};
        const uint8_t *tb;
        size_t tl;
        int more;
        while (!rc && (more = tiny_next(&it, &tb, &tl)) != 0) {
            if (more < 0) {
                rc = rt_op_fail(op, "corrupt incomplete list");
                break;
            }
            Event__TinyEvent *t = event__tiny_event__unpack(pb_arena_allocator(m->arena), tl, tb);
            if (!t) {
                rc = rt_op_fail(op, "stored tiny event does not decode");
                break;
            }
            Event__JoinedEvent *je;
            unsigned missing;
            rc = evaluate(ev, t, &je, &missing);
            if (!rc && complete(m, missing)) {
                rc = emit_joined(ev, je);
            } else if (!rc) {
                uint8_t h[10];
                size_t hn = jb_put_varint(h, tl);
                if (rt_buf_append(&still, h, hn) || rt_buf_append(&still, tb, tl))
                    rc = rt_op_fail(op, "out of memory");
            }
            pb_arena_reset(m->arena, 4 << 20);
        }
        if (!rc) {
            if (!still.len) {
                rt_kv_delete(m->incomplete, ik.p, ik.len);
            } else {
                rc = blob_set(m, m->incomplete, ik.p, ik.len, still.data, still.len);
                jb_put_i64(times + 8 * kept++, T);
            }
        }
        rt_buf_free(&still);
        free(list);
        kbuf_free(&ik);
    }
    /* the emptied list stays as a key so its directory entry stays unique */
    if (!rc) rc = blob_set(m, m->wait, wk.p, wk.len, times, 8 * kept);
    free(times);
    kbuf_free(&wk);
    return rc;
}

/* ---------------------------------------------------------------- full records */

static Delivery__Insertion *bundle_insertion(md_op *m, const Delivery__Insertion *in,
                                             bool drop_content)
{
    Delivery__Insertion *c = md_dup(m, in);
    if (!c) return NULL;
    /* clearRedundantFlatInsertionFields + request-level fields + the id kept as the key */
    c->view_id = NULL;
    c->request_id = NULL;
    c->user_info = NULL;
    c->has_platform_id = 0;
    c->platform_id = 0;
    c->timing = NULL;
    c->client_info = NULL;
    c->session_id = NULL;
    c->auto_view_id = NULL;
    c->insertion_id = NULL;
    if (drop_content) c->content_id = NULL;
    return c;
}

/* Stores the InsertionBundles of a combined log (from the log as it came, before stripping). */
static int store_bundles(rt_op *op, const Event__CombinedDeliveryLog *in, int64_t lt)
{
    md_op *m = rt_op_self(op);
    const Delivery__DeliveryLog *dl = in->sdk ? in->sdk : in->api;
    if (!dl || !dl->response || !dl->response->n_insertion) return 0;
    const Delivery__Request *rq = dl->request;
    Delivery__Insertion **exec = NULL;
    size_t n_exec = 0;
    if (in->api && in->api->execution &&
        pb_private_get_execution_insertions(in->api->execution, pb_arena_allocator(m->arena), &exec,
                                            &n_exec))
        return rt_op_fail(op, "out of memory decoding execution insertions");
    for (size_t i = 0; i < dl->response->n_insertion; i++) {
        const Delivery__Insertion *resp = dl->response->insertion[i];
        const char *ins_id = nz(resp->insertion_id);
        const char *content = nz(resp->content_id);
        if (!*ins_id) {
            /* the reference throws; FixDeliveryLog fills these ids, so count and go on */
            rt_counter_add(m->c_bad_ins, 1);
            continue;
        }
        Event__InsertionBundle b = EVENT__INSERTION_BUNDLE__INIT;
        b.has_log_timestamp = lt != 0;
        b.log_timestamp = (uint64_t)lt;
        b.response_insertion = bundle_insertion(m, resp, false);
        for (size_t k = 0; rq && k < rq->n_insertion && !b.request_insertion; k++)
            if (!strcmp(nz(rq->insertion[k]->content_id), content))
                b.request_insertion = bundle_insertion(m, rq->insertion[k], true);
        const Delivery__Insertion *ex = NULL;
        for (size_t k = 0; k < n_exec && !ex; k++)
            if (nonempty(exec[k]->insertion_id) && !strcmp(exec[k]->insertion_id, ins_id))
                ex = exec[k];
        for (size_t k = 0; k < n_exec && !ex; k++)
            if (!strcmp(nz(exec[k]->content_id), content)) ex = exec[k];
        if (ex) b.api_execution_insertion = bundle_insertion(m, ex, true);
        if (!b.response_insertion || (ex && !b.api_execution_insertion))
            return rt_op_fail(op, "out of memory");
        if (pack_scratch(m, &b.base) || rec_put(m, T_BUNDLE, ins_id, lt)) return -1;
    }
    return 0;
}

/* Delivery log of a combined record with its insertions (and execution insertions) removed. */
static Delivery__DeliveryLog *strip_dl(md_op *m, const Delivery__DeliveryLog *dl)
{
    Delivery__DeliveryLog *c = md_dup(m, dl);
    if (!c) return NULL;
    if (c->request) {
        if (!(c->request = md_dup(m, dl->request))) return NULL;
        c->request->n_insertion = 0;
        c->request->insertion = NULL;
    }
    if (c->response) {
        if (!(c->response = md_dup(m, dl->response))) return NULL;
        c->response->n_insertion = 0;
        c->response->insertion = NULL;
    }
    if (c->execution) {
        if (!(c->execution = md_dup(m, dl->execution))) return NULL;
        if (drop_unknown(m, &c->execution->base, PB_PRIVATE_EXECUTION_INSERTION)) return NULL;
    }
    return c;
}

static int store_combined(rt_op *op, const Event__CombinedDeliveryLog *in, const char **id,
                          int64_t *lt)
{
    md_op *m = rt_op_self(op);
    const Delivery__Request *rq = combined_request(in);
    *id = rq ? nz(rq->request_id) : "";
    *lt = rq ? timing_lt(rq->timing) : 0;
    if (store_bundles(op, in, *lt)) return -1;
    Event__CombinedDeliveryLog c = *in;
    if (in->sdk && in->api) {
        /* the SDK log wins the request and response; the API copy keeps what differs */
        Delivery__DeliveryLog *api = md_dup(m, in->api);
        Delivery__Request *hr = md_empty(m, &delivery__request__descriptor);
        if (!api || !hr) return rt_op_fail(op, "out of memory");
        const Delivery__Request *ar = in->api->request;
        hr->request_id = ar ? ar->request_id : NULL;
        hr->timing = ar && ar->timing ? ar->timing : md_empty(m, &common__timing__descriptor);
        hr->client_info =
            ar && ar->client_info ? ar->client_info : md_empty(m, &common__client_info__descriptor);
        if (!hr->timing || !hr->client_info) return rt_op_fail(op, "out of memory");
        api->request = hr;
        api->response = NULL;
        c.api = api;
    }
    if (c.sdk && !(c.sdk = strip_dl(m, c.sdk))) return rt_op_fail(op, "out of memory");
    if (c.api && !(c.api = strip_dl(m, c.api))) return rt_op_fail(op, "out of memory");
    if (pack_scratch(m, &c.base)) return rt_op_fail(op, "out of memory");
    return rec_put(m, T_DL, *id, *lt);
}

/* Stores one full record; *tag and *id name what tiny events may wait for. */
static int store_full(rt_op *op, const rt_record *rec, int *tag, const char **id, int64_t *lt)
{
    md_op *m = rt_op_self(op);
    bool oom = false;
    switch (rec->type) {
    case REC_VIEW: {
        Event__View c = *(const Event__View *)rec->data;
        c.user_info = without_user_id(m, c.user_info, &oom);
        *tag = T_VIEW;
        *id = nz(c.view_id);
        *lt = timing_lt(c.timing);
        if (oom || pack_scratch(m, &c.base)) return rt_op_fail(op, "out of memory");
        return rec_put(m, T_VIEW, *id, *lt);
    }
    case REC_COMBINED_DELIVERY_LOG:
        *tag = T_DL;
        return store_combined(op, rec->data, id, lt);
    case REC_IMPRESSION: {
        Event__Impression c = *(const Event__Impression *)rec->data;
        c.view_id = NULL;
        c.request_id = NULL;
        c.insertion_id = NULL;
        c.user_info = without_user_id(m, c.user_info, &oom);
        *tag = T_IMPRESSION;
        *id = nz(c.impression_id);
        *lt = timing_lt(c.timing);
        if (oom || pack_scratch(m, &c.base)) return rt_op_fail(op, "out of memory");
        return rec_put(m, T_IMPRESSION, *id, *lt);
    }
    case REC_JOINED_EVENT: {
        const Event__JoinedEvent *j = rec->data;
        *tag = T_JOINED;
        *id = j->ids ? nz(j->ids->impression_id) : "";
        *lt = timing_lt(j->timing);
        /* the view and request are shared by the impressions of one request */
        static const uint32_t shared[] = {6, 8}; /* JoinedEvent.view, .request */
        uint8_t scope[MD_KEY_MAX + 16];
        if (part_store_split(m->parts, scope, user_key(m, scope, NULL, 0), &j->base, shared, 2,
                             &m->scratch))
            return rt_op_fail(op, "out of memory");
        return rec_put(m, T_JOINED, *id, *lt);
    }
    case REC_ACTION: {
        Event__Action c = *(const Event__Action *)rec->data;
        c.view_id = NULL;
        c.request_id = NULL;
        c.insertion_id = NULL;
        c.impression_id = NULL;
        c.user_info = without_user_id(m, c.user_info, &oom);
        *tag = T_ACTION;
        *id = nz(c.action_id);
        *lt = timing_lt(c.timing);
        if (oom || pack_scratch(m, &c.base)) return rt_op_fail(op, "out of memory");
        return rec_put(m, T_ACTION, *id, *lt);
    }
    }
    return rt_op_fail(op, "input 0: unexpected record type %d", rec->type);
}

/* The user a full record belongs to (§3). */
static int full_user(rt_op *op, const rt_record *rec, uint64_t *platform, const char **luid)
{
    md_op *m = rt_op_self(op);
    bool ok = m->kind == MD_IMPRESSION
                  ? (rec->type == REC_VIEW || rec->type == REC_COMBINED_DELIVERY_LOG ||
                     rec->type == REC_IMPRESSION)
                  : (rec->type == REC_JOINED_EVENT || rec->type == REC_ACTION);
    if (!ok) return rt_op_fail(op, "input 0: unexpected record type %d", rec->type);
    switch (rec->type) {
    case REC_VIEW: {
        const Event__View *v = rec->data;
        *platform = v->platform_id;
        *luid = nz(ui_luid(v->user_info));
        break;
    }
    case REC_COMBINED_DELIVERY_LOG: {
        const Event__CombinedDeliveryLog *c = rec->data;
        const Delivery__DeliveryLog *a = c->api, *s = c->sdk;
        uint64_t ap = a ? a->platform_id : 0;
        const char *al = a && a->request ? nz(ui_luid(a->request->user_info)) : "";
        *platform = ap ? ap : (s ? s->platform_id : 0);
        *luid = *al ? al : (s && s->request ? nz(ui_luid(s->request->user_info)) : "");
        break;
    }
    case REC_IMPRESSION: {
        const Event__Impression *i = rec->data;
        *platform = i->platform_id;
        *luid = nz(ui_luid(i->user_info));
        break;
    }
    case REC_JOINED_EVENT:
        *platform = joined_event_platform_id(rec->data);
        *luid = joined_event_log_user_id(rec->data);
        break;
    case REC_ACTION: {
        const Event__Action *a = rec->data;
        *platform = a->platform_id;
        *luid = nz(ui_luid(a->user_info));
        break;
    }
    }
    return 0;
}

static int on_full(rt_op *op, const rt_record *rec)
{
    md_op *m = rt_op_self(op);
    uint64_t platform;
    const char *luid;
    if (full_user(op, rec, &platform, &luid)) return -1;
    if (set_user(m, platform, luid)) {
        rt_counter_add(m->c_key, 1);
        return 0; /* cannot be stored; tiny events naming it end in the dropped output */
    }
    int tag;
    const char *id;
    int64_t lt;
    if (store_full(op, rec, &tag, &id, &lt)) return -1;
    /* id points into the record or the arena: keep a copy across the evaluations below */
    char *idc = strdup(id);
    if (!idc) return rt_op_fail(op, "out of memory");
    pb_arena_reset(m->arena, 4 << 20);
    md_eval ev = {.op = op, .m = m, .ts = rec->ts};
    int rc = try_incomplete(&ev, tag, idc);
    free(idc);
    if (rc) return -1;
    int64_t w = m->window[tag];
    if (rt_timer_register(op, cleanup_ts(m, rec->ts + w), m->ukey, m->ukey_len)) return -1;
    /* a record whose log time is ahead of its event time would outlive every cleanup timer
     * of the reference (a leak there); one more batch timer covers it */
    if (lt > rec->ts && rt_timer_register(op, cleanup_ts(m, lt + w), m->ukey, m->ukey_len))
        return -1;
    return 0;
}

static int on_tiny(rt_op *op, const rt_record *rec)
{
    md_op *m = rt_op_self(op);
    if (rec->type != REC_TINY_EVENT)
        return rt_op_fail(op, "input 1: unexpected record type %d (want a tiny event)", rec->type);
    const Event__TinyEvent *t = rec->data;
    md_eval ev = {.op = op, .m = m, .ts = rec->ts};
    Event__JoinedEvent *je;
    unsigned missing;
    if (set_user(m, t->platform_id, nz(t->log_user_id))) {
        /* nothing of this user can be stored: it can only be dropped */
        rt_counter_add(m->c_key, 1);
        job_put_le64(m->ukey, t->platform_id);
        m->ukey_len = 8;
        je = md_empty(m, &event__joined_event__descriptor);
        if (!je) return rt_op_fail(op, "out of memory");
        return emit_dropped(&ev, t, je);
    }
    if (evaluate(&ev, t, &je, &missing)) return -1;
    if (complete(m, missing)) return emit_joined(&ev, je);
    int64_t T = rec->ts + m->delay;
    if (pack_scratch(m, &t->base)) return rt_op_fail(op, "out of memory");
    kbuf ik;
    if (incomplete_key(m, &ik, T)) return rt_op_fail(op, "out of memory");
    uint8_t h[10];
    size_t hn = jb_put_varint(h, m->scratch.len);
    int rc = blob_append(m->incomplete, ik.p, ik.len, h, hn);
    if (!rc) rc = blob_append(m->incomplete, ik.p, ik.len, m->scratch.data, m->scratch.len);
    kbuf_free(&ik);
    if (rc) return -1;
    if ((missing & M_VIEW) && wait_add(op, T_VIEW, t->view_id, T)) return -1;
    if ((missing & M_DL) && wait_add(op, T_DL, t->request_id, T)) return -1;
    if ((missing & M_IMPRESSION) && wait_add(op, T_IMPRESSION, t->impression_id, T)) return -1;
    if ((missing & M_JOINED) && wait_add(op, T_JOINED, t->impression_id, T)) return -1;
    if ((missing & M_ACTION) && wait_add(op, T_ACTION, t->action_id, T)) return -1;
    if (rt_timer_register(op, T, m->ukey, m->ukey_len) ||
        rt_timer_register(op, cleanup_ts(m, T), m->ukey, m->ukey_len))
        return -1;
    return 0;
}

static int md_process(rt_op *op, int input, const rt_record *rec)
{
    md_op *m = rt_op_self(op);
    int rc = input == 0 ? on_full(op, rec) : on_tiny(op, rec);
    pb_arena_reset(m->arena, 4 << 20);
    return rc;
}

/* ---------------------------------------------------------------- timers and cleanup */

static int emit_no_lt(rt_op *op, int tag, const char *id, size_t idlen, int64_t lt, int64_t T)
{
    md_op *m = rt_op_self(op);
    char *idc = strndup(id, idlen);
    char *luid = strndup((const char *)m->ukey + 8, m->ukey_len - 8);
    if (!idc || !luid) {
        free(idc);
        free(luid);
        return rt_op_fail(op, "out of memory");
    }
    Event__TinyEvent t = EVENT__TINY_EVENT__INIT;
    t.platform_id = (uint64_t)jb_get_i64(m->ukey);
    t.has_platform_id = t.platform_id != 0;
    t.log_user_id = *luid ? luid : NULL;
    t.log_timestamp = (uint64_t)lt;
    t.has_log_timestamp = lt != 0;
    char **slot = tag == T_VIEW     ? &t.view_id
                  : tag == T_DL     ? &t.request_id
                  : tag == T_BUNDLE ? &t.insertion_id
                  : tag == T_ACTION ? &t.action_id
                                    : &t.impression_id;
    *slot = idc;
    rt_counter_add(m->c_no_lt, 1);
    rt_record r = {.ts = T, .type = REC_TINY_EVENT, .data = &t};
    int rc = rt_emit(op, 3, &r);
    free(idc);
    free(luid);
    return rc;
}

/* Checks one entry of bucket B at a cleanup at T: deletes what has expired (a record with
 * lt <= 0 goes to port 3), prunes a wait list's times <= T. *keep: the entry stays listed in B
 * (its record or list lives there and has not expired yet: only when T is not a boundary). */
static int expire_entry(rt_op *op, int64_t T, int64_t B, int tag, const char *id, size_t idlen,
                        bool *keep)
{
    md_op *m = rt_op_self(op);
    *keep = false;
    kbuf k;
    if (tag & DIR_WAIT) {
        if ((tag & ~DIR_WAIT) >= T_COUNT || kbuf_wait_n(m, &k, tag & ~DIR_WAIT, id, idlen))
            return rt_op_fail(op, "corrupt expiry bucket");
        uint32_t wused = 0;
        uint8_t *w = blob_get(m->wait, k.p, k.len, &wused);
        if (w) {
            size_t n = 0;
            for (size_t i = 0; i < wused / 8; i++)
                if (jb_get_i64(w + 8 * i) > T) memmove(w + 8 * n++, w + 8 * i, 8);
            if (!n) {
                rt_kv_delete(m->wait, k.p, k.len);
            } else {
                uint32_t nu = (uint32_t)(8 * n);
                memcpy(w - 4, &nu, 4);
                *keep = wait_bucket(m, jb_get_i64(w + 8 * (n - 1))) == B;
            }
        }
        kbuf_free(&k);
        return 0;
    }
    if (tag >= T_COUNT || !m->rec[tag] || kbuf_make(m, &k, id, idlen))
        return rt_op_fail(op, "corrupt expiry bucket");
    int rc = 0;
    size_t rlen = 0;
    const uint8_t *rv = rt_kv_get(m->rec[tag], k.p, k.len, &rlen);
    if (rv) {
        int64_t lt = jb_get_i64(rv);
        bool gone = lt <= 0 || lt < T - m->window[tag];
        if (gone && tag == T_JOINED) {
            uint8_t scope[MD_KEY_MAX + 16];
            part_store_release(m->parts, scope, user_key(m, scope, NULL, 0), rv + 8, rlen - 8);
        }
        if (lt <= 0) {
            m->gen[tag]++;
            rt_kv_delete(m->rec[tag], k.p, k.len);
            rc = emit_no_lt(op, tag, id, idlen, lt, T);
        } else if (lt < T - m->window[tag]) {
            m->gen[tag]++;
            rt_kv_delete(m->rec[tag], k.p, k.len);
        } else {
            *keep = rec_bucket(m, tag, lt) == B;
        }
    }
    kbuf_free(&k);
    return rc;
}

/* The batch cleanup of §11.1 for the current user at T: the expiry buckets up to the first
 * boundary at or after T. */
static int cleanup_user(rt_op *op, int64_t T)
{
    md_op *m = rt_op_self(op);
    uint32_t used = 0;
    const uint8_t *v = blob_get(m->dir, m->ukey, m->ukey_len, &used);
    if (!v || used < DIR_HDR) return 0;
    int64_t limit = boundary_at_or_after(m, T);
    size_t n = (used - DIR_HDR) / 8, due = 0;
    while (due < n && jb_get_i64(v + DIR_HDR + 8 * due) <= limit)
        due++;
    int64_t done = jb_get_i64(v);
    /* copies: emitting and deleting must not depend on where the directory value lives */
    uint8_t *dir = malloc(used);
    if (!dir) return rt_op_fail(op, "out of memory");
    memcpy(dir, v, used);
    size_t kept_buckets = 0; /* due buckets that keep entries (at most the last) */
    int rc = 0;
    for (size_t b = 0; b < due && !rc; b++) {
        int64_t B = jb_get_i64(dir + DIR_HDR + 8 * b);
        uint8_t b8[8];
        jb_put_i64(b8, B);
        kbuf bk;
        if (kbuf_make(m, &bk, b8, 8)) {
            rc = rt_op_fail(op, "out of memory");
            break;
        }
        uint32_t bused = 0;
        const uint8_t *bv = blob_get(m->expiry, bk.p, bk.len, &bused);
        uint8_t *list = bv ? malloc(bused ? bused : 1) : NULL;
        if (bv && !list) rc = rt_op_fail(op, "out of memory");
        if (list) memcpy(list, bv, bused);
        size_t kept = 0;
        for (size_t off = 0; list && off < bused && !rc;) {
            size_t start = off;
            int tag = list[off];
            uint64_t idlen;
            size_t h = jb_get_varint(list + off + 1, bused - off - 1, &idlen);
            if (!h || idlen > bused - off - 1 - h) {
                rc = rt_op_fail(op, "corrupt expiry bucket");
                break;
            }
            const char *id = (const char *)list + off + 1 + h;
            off += 1 + h + idlen;
            bool keep;
            rc = expire_entry(op, T, B, tag, id, (size_t)idlen, &keep);
            if (!rc && keep) {
                memmove(list + kept, list + start, off - start);
                kept += off - start;
            }
        }
        if (!rc) {
            if (kept) {
                rc = blob_set(m, m->expiry, bk.p, bk.len, list, kept);
                jb_put_i64(dir + DIR_HDR + 8 * kept_buckets++, B);
            } else if (bv) {
                rt_kv_delete(m->expiry, bk.p, bk.len);
            }
        }
        free(list);
        kbuf_free(&bk);
    }
    if (!rc) {
        /* the directory: the kept due buckets, then the later ones */
        size_t rest = n - due;
        memmove(dir + DIR_HDR + 8 * kept_buckets, dir + DIR_HDR + 8 * due, 8 * rest);
        size_t nb = kept_buckets + rest;
        if (!nb) {
            rt_kv_delete(m->dir, m->ukey, m->ukey_len);
        } else {
            jb_put_i64(dir, T > done ? T : done);
            rc = blob_set(m, m->dir, m->ukey, m->ukey_len, dir, DIR_HDR + 8 * nb);
        }
    }
    free(dir);
    return rc;
}

static int md_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    md_op *m = rt_op_self(op);
    if (klen < 8 || klen > MD_KEY_MAX) return rt_op_fail(op, "bad timer key of %zu bytes", klen);
    memcpy(m->ukey, key, klen);
    m->ukey_len = klen;
    md_eval ev = {.op = op, .m = m, .ts = time};
    int rc = 0;
    kbuf ik;
    if (incomplete_key(m, &ik, time)) return rt_op_fail(op, "out of memory");
    uint32_t used = 0;
    const uint8_t *v = blob_get(m->incomplete, ik.p, ik.len, &used);
    if (v) {
        uint8_t *list = malloc(used ? used : 1);
        if (!list) {
            kbuf_free(&ik);
            return rt_op_fail(op, "out of memory");
        }
        memcpy(list, v, used);
        rt_kv_delete(m->incomplete, ik.p, ik.len);
        tiny_iter it = {list, list + used};
        const uint8_t *tb;
        size_t tl;
        int more;
        while (!rc && (more = tiny_next(&it, &tb, &tl)) != 0) {
            if (more < 0) {
                rc = rt_op_fail(op, "corrupt incomplete list");
                break;
            }
            Event__TinyEvent *t = event__tiny_event__unpack(pb_arena_allocator(m->arena), tl, tb);
            Event__JoinedEvent *je;
            unsigned missing;
            if (!t)
                rc = rt_op_fail(op, "stored tiny event does not decode");
            else if (!(rc = evaluate(&ev, t, &je, &missing)))
                rc = complete(m, missing) ? emit_joined(&ev, je) : emit_dropped(&ev, t, je);
            pb_arena_reset(m->arena, 4 << 20);
        }
        free(list);
    }
    kbuf_free(&ik);
    if (!rc && (time < m->batch_before || time % m->period == 0)) rc = cleanup_user(op, time);
    pb_arena_reset(m->arena, 4 << 20);
    return rc;
}

/* ---------------------------------------------------------------- lifecycle */

static int md_open(rt_op *op)
{
    md_op *m = rt_op_self(op);
    m->op = op;
    for (int t = 0; t < T_COUNT; t++) {
        if (!m->window[t]) continue; /* not a record kind of this operator */
        if (rt_kv_new(op, tag_table[t], &m->rec[t])) return -1;
    }
    if (rt_kv_new(op, "directory", &m->dir) || rt_kv_new(op, "expiry", &m->expiry) ||
        rt_kv_new(op, "incomplete", &m->incomplete) || rt_kv_new(op, "wait", &m->wait) ||
        (m->window[T_JOINED] && rt_kv_new(op, "parts", &m->parts)))
        return -1;
    if (rt_op_counter(op, "numJoinedOut", &m->c_out) ||
        rt_op_counter(op, "numDroppedIncomplete", &m->c_dropped) ||
        rt_op_counter(op, "numStoredWithoutLogTimestamp", &m->c_no_lt) ||
        rt_op_counter(op, "numResponseInsertionsWithoutId", &m->c_bad_ins) ||
        rt_op_counter(op, "numRecordsKeyTooLong", &m->c_key) ||
        rt_op_counter(op, "numWaitIndexOverflow", &m->c_wait_overflow) ||
        rt_op_counter(op, "numMismatchErrors", &m->c_mismatch))
        return rt_op_fail(op, "out of memory");
    return 0;
}

static void md_close(rt_op *op)
{
    md_op *m = rt_op_self(op);
    pb_arena_free(m->arena);
    for (int t = 0; t < T_COUNT; t++) {
        pb_arena_free(m->cache[t].arena);
        free(m->cache[t].key);
    }
    rt_buf_free(&m->scratch);
    rt_buf_free(&m->joined);
    free(m);
}

static const rt_op_vtbl md_vtbl = {
    .open = md_open,
    .process = md_process,
    .on_timer = md_timer,
    .close = md_close,
};

static int md_add(rt_graph *g, const char *uid, const char *name, md_op *m, const char *dropped,
                  rt_op **out)
{
    rt_buf_init(&m->scratch, MD_ARENA_CAP);
    rt_buf_init(&m->joined, MD_ARENA_CAP);
    m->arena = pb_arena_new(64 << 10, MD_ARENA_CAP);
    if (!m->arena || rt_graph_add_op(g, uid, name, &md_vtbl, m, 2, 4, out)) {
        pb_arena_free(m->arena);
        free(m);
        return -1;
    }
    char no_lt[96];
    snprintf(no_lt, sizeof no_lt, "%s_without_log_timestamp", dropped);
    if (rt_op_set_port_name(*out, 1, "mismatch_error") || rt_op_set_port_name(*out, 2, dropped) ||
        rt_op_set_port_name(*out, 3, no_lt))
        return -1;
    return 0;
}

int merge_impression_details_op_add(rt_graph *g, const char *uid,
                                    const merge_impression_details_config *cfg, rt_op **out)
{
    if (!cfg || cfg->view_window_ms <= 0 || cfg->delivery_log_window_ms <= 0 ||
        cfg->impression_window_ms <= 0 || cfg->cleanup_period_ms <= 0 ||
        cfg->missing_output_delay_ms < 0)
        return -1;
    md_op *m = calloc(1, sizeof *m);
    if (!m) return -1;
    m->kind = MD_IMPRESSION;
    m->window[T_VIEW] = cfg->view_window_ms;
    m->window[T_DL] = cfg->delivery_log_window_ms;
    m->window[T_BUNDLE] = cfg->delivery_log_window_ms;
    m->window[T_IMPRESSION] = cfg->impression_window_ms;
    m->period = cfg->cleanup_period_ms;
    m->delay = cfg->missing_output_delay_ms;
    m->batch_before = cfg->batch_cleanup_all_before;
    m->skip_view_join = cfg->skip_view_join;
    return md_add(g, uid, "merge-impression-details", m, "dropped_merge_impression_details", out);
}

int merge_action_details_op_add(rt_graph *g, const char *uid,
                                const merge_action_details_config *cfg, rt_op **out)
{
    if (!cfg || cfg->joined_impression_window_ms <= 0 || cfg->action_window_ms <= 0 ||
        cfg->cleanup_period_ms <= 0 || cfg->missing_output_delay_ms < 0)
        return -1;
    md_op *m = calloc(1, sizeof *m);
    if (!m) return -1;
    m->kind = MD_ACTION;
    m->window[T_JOINED] = cfg->joined_impression_window_ms;
    m->window[T_ACTION] = cfg->action_window_ms;
    m->period = cfg->cleanup_period_ms;
    m->delay = cfg->missing_output_delay_ms;
    m->batch_before = cfg->batch_cleanup_all_before;
    return md_add(g, uid, "merge-action-details", m, "dropped_merge_action_details", out);
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

void merge_details_configs_from_flags(const merge_details_flags *f,
                                      merge_impression_details_config *imp,
                                      merge_action_details_config *act)
{
    int64_t base = abs64(f->view_insertion_join_max) + abs64(f->insertion_impression_join_max) +
                   abs64(f->combine_delivery_log_window) +
                   abs64(f->merge_details_missing_output_delay) +
                   abs64(f->merge_details_cleanup_buffer);
    if (imp) {
        imp->impression_window_ms = base;
        imp->delivery_log_window_ms = base + abs64(f->insertion_impression_join_min);
        imp->view_window_ms = imp->delivery_log_window_ms + abs64(f->view_insertion_join_min);
        imp->cleanup_period_ms = f->merge_details_cleanup_period;
        imp->missing_output_delay_ms = f->merge_details_missing_output_delay;
        imp->batch_cleanup_all_before = f->batch_cleanup_all_before;
        imp->skip_view_join = f->skip_view_join;
    }
    if (act) {
        act->action_window_ms = base + abs64(f->impression_action_join_max);
        act->joined_impression_window_ms =
            act->action_window_ms + abs64(f->impression_action_join_min);
        act->cleanup_period_ms = f->merge_details_cleanup_period;
        act->missing_output_delay_ms = f->merge_details_missing_output_delay;
        act->batch_cleanup_all_before = f->batch_cleanup_all_before;
    }
}
