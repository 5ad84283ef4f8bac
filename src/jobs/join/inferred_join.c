/* The inferred-reference join: state, the §7.3-§7.7 rules, timers, snapshot. See the header for
 * the contract and docs/JOIN.md ("Inferred-reference join") for the design and its costs.
 *
 * Layout of the state (all of it per operator, entries addressed by 32-bit indexes into pools):
 *   users   user key -> {LHS heap by lt, pending-RHS heap by (due, seq), counts}
 *   lhs     a buffered parent: lt, packed bytes, PK as an offset into them; hash chain on
 *           (user, PK)
 *   scopes  (user, scope id) -> ordered members: inline when alone, else a counted B+-tree of
 *           LHS indexes (leaves of up to LEAF_MAX, inner nodes of up to FAN children with each
 *           child's element count and smallest lt); the id bytes are an offset into one
 *           member's packed bytes (the anchor), moved to another member when it is trimmed
 *   rhs     a waiting child: packed bytes, its FK (ooIdJoin) or PK (candidate) as an offset;
 *           ooIdJoin children of one FK form an arrival-ordered list whose head is hashed
 * Hash indexes chain through the entries and rehash incrementally (one bucket moved per insert
 * or remove), so no call pays for a whole resize. */
#include "jobs/join/inferred_join.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "runtime/buf.h"
#include "runtime/htab.h"
#include "runtime/metrics.h"
#include "runtime/operator.h"

#define NIL UINT32_MAX
#define MALLOC_OVERHEAD 16 /* charged per allocation, as the runtime's tables do */
#define LEAF_MAX 128       /* members per scope-tree leaf */
#define FAN 16             /* children per scope-tree inner node */
#define HIDX_MIN 16        /* smallest bucket array */
#define SNAP_VERSION 1
#define ARENA_KEEP (4u << 20)

/* ============================== types ============================== */

/* Every indexed entry keeps the low 32 bits of its index hash (hash): a resize moves entries
 * without reading their ids, and a probe skips a chain entry whose hash differs without reading
 * its record. Buckets are at most 2^31, so 32 bits choose the bucket. */
typedef struct lhs_ent { /* 48 bytes */
    int64_t lt;
    uint8_t *blob;     /* packed message (len bytes), then ids not found in it */
    uint32_t len;      /* packed message bytes */
    uint32_t blob_len; /* allocation */
    uint32_t user;     /* NIL when the slot is free */
    uint32_t hnext;    /* (user, PK) chain, or the free list */
    uint32_t pk_off, pk_len;
    uint32_t hash;
} lhs_ent;

typedef struct node {
    uint16_t n, cap;
    uint8_t is_leaf;
} node;

typedef struct leaf {
    uint16_t n, cap;
    uint8_t is_leaf;
    uint32_t e[]; /* LHS indexes in scope order */
} leaf;

typedef struct inner {
    uint16_t n, cap;
    uint8_t is_leaf;
    uint32_t cnt[FAN];
    int64_t min[FAN];
    node *kid[FAN];
} inner;

/* A scope of one member (most insertion-id scopes): its member is its anchor. Promoted to a
 * scope_ent when a second member comes. */
typedef struct single_ent {           /* 20 bytes */
    uint32_t hnext, anchor, off, len; /* len NIL: free */
    uint32_t hash;
} single_ent;

typedef struct scope_ent { /* 40 bytes */
    union {
        node *root;   /* count >= 2 */
        uint32_t one; /* count == 1 */
    } m;
    uint32_t count, content_count; /* members; members for which the id is a content id */
    uint32_t anchor, off, len;     /* id bytes = lhs[anchor].blob[off .. off+len); len NIL: free */
    uint32_t hnext;
    uint32_t hash;
} scope_ent;

enum { RK_FREE = 0, RK_OOID, RK_CAND, RK_DETACHED };

typedef struct rhs_ent {
    int64_t lt, due; /* due: when a timer at or after it handles the record */
    uint64_t seq;    /* arrival order; identifies the record in heaps */
    uint8_t *blob;
    uint32_t len, blob_len;
    uint32_t user, hnext;
    uint32_t id_off, id_len; /* FK (ooIdJoin) or PK (candidate) */
    uint32_t next, prev;     /* ooIdJoin list: next in arrival order; prev = predecessor, or the
                              * tail for the head */
    uint32_t hash;
    uint8_t kind;
} rhs_ent;

typedef struct rref {
    int64_t due;
    uint64_t seq;
    uint32_t idx;
} rref;

typedef struct user_ent {
    uint8_t *key; /* NULL when the slot is free */
    uint32_t key_len, hnext, hash;
    uint32_t *lh; /* LHS by lt: a sorted ring from lh_head, or a min-heap when lh_heap */
    uint32_t lh_n, lh_cap, lh_head;
    uint8_t lh_heap;
    rref *rh; /* pending RHS min-heap by (due, seq); may hold stale refs */
    uint32_t rh_n, rh_cap;
    uint32_t n_lhs, n_rhs;
} user_ent;

typedef struct hidx {
    uint32_t *t[2];
    uint32_t size[2];
    uint32_t used;
    uint32_t rehash; /* next bucket of t[0] to move while t[1] exists */
} hidx;

/* Kinds of pooled entries. The scope index holds scope_ent indexes and single_ent indexes
 * tagged with STAG. */
enum { HK_USER, HK_LHS, HK_SCOPE, HK_RHS, HK_SINGLE };
#define STAG 0x80000000u

/* Entries live in fixed chunks of CHUNK: growing never moves an entry (pointers stay valid) and
 * leaves at most one chunk unused, where doubling an array would leave up to half. */
#define CHUNK_BITS 8
#define CHUNK ((uint32_t)1 << CHUNK_BITS)

typedef struct pool {
    char **chunk;
    uint32_t nchunk, dircap;
    uint32_t cap, live, free_head;
} pool;

static inline void *pool_at(const pool *p, size_t el, uint32_t i)
{
    return p->chunk[i >> CHUNK_BITS] + (size_t)(i & (CHUNK - 1)) * el;
}

typedef struct vec32 {
    uint32_t *a;
    uint32_t n, cap;
} vec32;

enum {
    C_LHS_IGNORED,
    C_LATE_LHS,
    C_LATE_RHS,
    C_ZERO_LHS,
    C_ZERO_RHS,
    C_DUP_LHS,
    C_DUP_PENDING,
    C_WITHOUT_KEY,
    C_JOIN_ID,
    C_JOIN_RELEASED,
    C_JOIN_INFERRED,
    C_RIGHT_OUTER,
    C_DROPPED,
    C_SKIP,
    C_MISMATCH,
    C_N
};
static const char *const counter_names[C_N] = {
    "numLhsIgnored",
    "numLateLhs",
    "numLateRhs",
    "numLhsZeroLogTimestamp",
    "numRhsZeroLogTimestamp",
    "numDuplicateLhs",
    "numDuplicatePendingRhs",
    "numRhsWithoutKey",
    "numJoinedById",
    "numJoinedByIdReleased",
    "numJoinedInferred",
    "numUnjoinedRightOuter",
    "numDroppedRhs",
    "numSkipJoin",
    "numMismatchErrors",
};

typedef struct ij {
    inferred_join_config cfg;
    char *port_names[INFERRED_JOIN_NPORTS];
    rt_op *op;
    pool lhs, scopes, singles, rhs, users;
    hidx h_user, h_lhs, h_scope, h_rhs;
    uint64_t next_seq;
    pb_arena *arena;
    uint8_t *keybuf;
    vec32 v_cand, v_ooid, v_rm, v_view;
    int64_t index_bytes, lhs_payload, rhs_payload;
    uint64_t index_ops, pk_probes, dup_lhs, dup_pending;
    rt_counter *c[C_N];
} ij;

struct inferred_join_merge {
    ij *o;
    int port;
    int64_t ts;
    const uint8_t *key;
    size_t key_len;
};

#define LHS(o, i) (*(lhs_ent *)pool_at(&(o)->lhs, sizeof(lhs_ent), (i)))
#define SCOPE(o, i) (*(scope_ent *)pool_at(&(o)->scopes, sizeof(scope_ent), (i)))
#define SINGLE(o, i) (*(single_ent *)pool_at(&(o)->singles, sizeof(single_ent), (i)))
#define RHS(o, i) (*(rhs_ent *)pool_at(&(o)->rhs, sizeof(rhs_ent), (i)))
#define USER(o, i) (*(user_ent *)pool_at(&(o)->users, sizeof(user_ent), (i)))

/* ============================== small helpers ============================== */

/* Java long arithmetic wraps; C's signed overflow is undefined, so go through uint64_t. */
static inline int64_t wadd(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
static inline int64_t wsub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}
static inline int64_t wmul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

static void count(ij *o, int c)
{
    if (o->c[c]) rt_counter_add_1w(o->c[c], 1);
}

void inferred_join_scopes_add(inferred_join_scopes *sc, const char *s)
{
    if (sc->n >= INFERRED_JOIN_MAX_SCOPES) {
        sc->overflow = true;
        return;
    }
    sc->id[sc->n].p = s ? s : "";
    sc->id[sc->n].n = s ? strlen(s) : 0;
    sc->n++;
}

/* Character.isWhitespace: the Unicode space separators except the no-break ones, the line and
 * paragraph separators, and the ASCII controls \t \n \v \f \r and U+001C..U+001F. */
static bool java_whitespace(uint32_t cp)
{
    if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20)) return true;
    if (cp < 0x1680) return false;
    if (cp == 0x1680 || cp == 0x2028 || cp == 0x2029 || cp == 0x205F || cp == 0x3000) return true;
    return cp >= 0x2000 && cp <= 0x200A && cp != 0x2007;
}

static bool blank_n(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    while (p < end) {
        uint32_t cp;
        size_t k;
        if (p[0] < 0x80) {
            cp = p[0];
            k = 1;
        } else if ((p[0] & 0xE0) == 0xC0 && end - p >= 2) {
            cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
            k = 2;
        } else if ((p[0] & 0xF0) == 0xE0 && end - p >= 3) {
            cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
            k = 3;
        } else {
            return false; /* 4-byte sequences and stray bytes are not whitespace */
        }
        if (!java_whitespace(cp)) return false;
        p += k;
    }
    return true;
}

bool inferred_join_blank(const char *s)
{
    return !s || blank_n(s, strlen(s));
}

int64_t inferred_join_java_search(uint32_t n, uint32_t a, uint32_t b)
{
    int64_t lo = 0, hi = (int64_t)n - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) >> 1;
        if (mid < (int64_t)a)
            lo = mid + 1; /* the element there is below the key */
        else if (mid >= (int64_t)b)
            hi = mid - 1; /* above it */
        else
            return mid; /* equal: Java returns the first equal element its path meets */
    }
    return -(lo + 1);
}

static uint64_t hash_id(uint32_t user, int kind, const void *s, size_t n)
{
    uint64_t h =
        rt_hash_bytes(s, n) ^ (((uint64_t)user << 2 | (uint64_t)kind) * 0x9E3779B97F4A7C15ull);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

/* The first occurrence of needle in hay, or -1. Byte-equal is all an anchor needs. */
static int64_t find_bytes(const uint8_t *hay, size_t hn, const void *needle, size_t nn)
{
    if (nn == 0) return 0;
    const uint8_t *p = memmem(hay, hn, needle, nn);
    return p ? (int64_t)(p - hay) : -1;
}

/* ============================== memory ============================== */

static void *mem_alloc(ij *o, size_t n, int64_t *cat)
{
    int64_t c = (int64_t)n + MALLOC_OVERHEAD;
    if (rt_op_mem_charge(o->op, c)) return NULL;
    void *p = malloc(n ? n : 1);
    if (!p) {
        rt_op_mem_release(o->op, c);
        rt_op_fail(o->op, "out of memory allocating %zu bytes of join state", n);
        return NULL;
    }
    *cat += c;
    return p;
}

static void mem_free(ij *o, void *p, size_t n, int64_t *cat)
{
    if (!p) return;
    free(p);
    int64_t c = (int64_t)n + MALLOC_OVERHEAD;
    rt_op_mem_release(o->op, c);
    *cat -= c;
}

/* Resizes p from old to n bytes (p NULL: a new allocation). NULL on failure, p unchanged. */
static void *mem_realloc(ij *o, void *p, size_t old, size_t n, int64_t *cat)
{
    int64_t oc = p ? (int64_t)old + MALLOC_OVERHEAD : 0, nc = (int64_t)n + MALLOC_OVERHEAD;
    if (nc > oc && rt_op_mem_charge(o->op, nc - oc)) return NULL;
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        if (nc > oc) rt_op_mem_release(o->op, nc - oc);
        rt_op_fail(o->op, "out of memory growing join state to %zu bytes", n);
        return NULL;
    }
    if (nc < oc) rt_op_mem_release(o->op, oc - nc);
    *cat += nc - oc;
    return q;
}

/* Shrinks *p from old to n bytes. Returns 0, or -1 with *p (and its charge) kept if realloc
 * refuses: a shrink never fails the operator. */
static int mem_shrink(ij *o, void **p, size_t old, size_t n, int64_t *cat)
{
    void *q = realloc(*p, n ? n : 1);
    if (!q) return -1;
    *p = q;
    rt_op_mem_release(o->op, (int64_t)(old - n));
    *cat -= (int64_t)(old - n);
    return 0;
}

static int vec_push(ij *o, vec32 *v, uint32_t x)
{
    if (v->n == v->cap) {
        uint32_t nc = v->cap ? v->cap * 2 : 16;
        uint32_t *a = mem_realloc(o, v->a, (size_t)v->cap * 4, (size_t)nc * 4, &o->index_bytes);
        if (!a) return -1;
        v->a = a;
        v->cap = nc;
    }
    v->a[v->n++] = x;
    return 0;
}

static void vec_release(ij *o, vec32 *v)
{
    mem_free(o, v->a, (size_t)v->cap * 4, &o->index_bytes);
    v->a = NULL;
    v->n = v->cap = 0;
}

/* Scratch vectors hold indexes for the length of one call; they are given back after it so an
 * idle operator holds nothing. */
static void scratch_release(ij *o)
{
    vec_release(o, &o->v_cand);
    vec_release(o, &o->v_ooid);
    vec_release(o, &o->v_rm);
    vec_release(o, &o->v_view);
    pb_arena_reset(o->arena, ARENA_KEEP);
}

/* ============================== pools ============================== */

/* The chain link of entry i of kind hk (for HK_SCOPE, i may carry STAG). */
static uint32_t *pool_link(ij *o, int hk, uint32_t i)
{
    switch (hk) {
    case HK_USER:
        return &USER(o, i).hnext;
    case HK_LHS:
        return &LHS(o, i).hnext;
    case HK_SCOPE:
        return i & STAG ? &SINGLE(o, i & ~STAG).hnext : &SCOPE(o, i).hnext;
    case HK_SINGLE:
        return &SINGLE(o, i).hnext;
    default:
        return &RHS(o, i).hnext;
    }
}

/* The stored index hash of entry i (set by hidx_insert). */
static uint32_t *pool_hash(ij *o, int hk, uint32_t i)
{
    switch (hk) {
    case HK_USER:
        return &USER(o, i).hash;
    case HK_LHS:
        return &LHS(o, i).hash;
    case HK_SCOPE:
        return i & STAG ? &SINGLE(o, i & ~STAG).hash : &SCOPE(o, i).hash;
    case HK_SINGLE:
        return &SINGLE(o, i).hash;
    default:
        return &RHS(o, i).hash;
    }
}

static void pool_mark_free(ij *o, int hk, uint32_t i)
{
    switch (hk) {
    case HK_USER:
        memset(&USER(o, i), 0, sizeof(user_ent));
        break;
    case HK_LHS:
        memset(&LHS(o, i), 0, sizeof(lhs_ent));
        LHS(o, i).user = NIL;
        break;
    case HK_SCOPE:
        memset(&SCOPE(o, i), 0, sizeof(scope_ent));
        SCOPE(o, i).len = NIL;
        break;
    case HK_SINGLE:
        memset(&SINGLE(o, i), 0, sizeof(single_ent));
        SINGLE(o, i).len = NIL;
        break;
    default:
        memset(&RHS(o, i), 0, sizeof(rhs_ent));
        break;
    }
}

static size_t pool_elem(int hk)
{
    switch (hk) {
    case HK_USER:
        return sizeof(user_ent);
    case HK_LHS:
        return sizeof(lhs_ent);
    case HK_SCOPE:
        return sizeof(scope_ent);
    case HK_SINGLE:
        return sizeof(single_ent);
    default:
        return sizeof(rhs_ent);
    }
}

static pool *pool_of(ij *o, int hk)
{
    switch (hk) {
    case HK_USER:
        return &o->users;
    case HK_LHS:
        return &o->lhs;
    case HK_SCOPE:
        return &o->scopes;
    case HK_SINGLE:
        return &o->singles;
    default:
        return &o->rhs;
    }
}

static void pool_drop(ij *o, int hk)
{
    pool *p = pool_of(o, hk);
    for (uint32_t c = 0; c < p->nchunk; c++)
        mem_free(o, p->chunk[c], CHUNK * pool_elem(hk), &o->index_bytes);
    mem_free(o, p->chunk, (size_t)p->dircap * sizeof p->chunk[0], &o->index_bytes);
    memset(p, 0, sizeof *p);
    p->free_head = NIL;
}

/* Takes a free slot, adding a chunk when none is left. Returns NIL on failure (recorded). */
static uint32_t pool_take(ij *o, int hk)
{
    pool *p = pool_of(o, hk);
    size_t el = pool_elem(hk);
    if (p->free_head == NIL) {
        if (p->cap >= (STAG - CHUNK)) {
            rt_op_fail(o->op, "join state: more than %u entries of one kind", STAG - CHUNK);
            return NIL;
        }
        if (p->nchunk == p->dircap) {
            uint32_t nd = p->dircap ? p->dircap * 2 : 4;
            char **d = mem_realloc(o, p->chunk, (size_t)p->dircap * sizeof *d,
                                   (size_t)nd * sizeof *d, &o->index_bytes);
            if (!d) return NIL;
            p->chunk = d;
            p->dircap = nd;
        }
        char *c = mem_alloc(o, CHUNK * el, &o->index_bytes);
        if (!c) return NIL;
        p->chunk[p->nchunk++] = c;
        uint32_t first = p->cap;
        p->cap += CHUNK;
        for (uint32_t i = p->cap; i-- > first;) {
            pool_mark_free(o, hk, i);
            *pool_link(o, hk, i) = p->free_head;
            p->free_head = i;
        }
    }
    uint32_t i = p->free_head;
    p->free_head = *pool_link(o, hk, i);
    p->live++;
    *pool_link(o, hk, i) = NIL;
    return i;
}

static void pool_put(ij *o, int hk, uint32_t i)
{
    pool *p = pool_of(o, hk);
    pool_mark_free(o, hk, i);
    *pool_link(o, hk, i) = p->free_head;
    p->free_head = i;
    if (--p->live == 0) pool_drop(o, hk); /* empty: give every chunk back */
}

/* ============================== hash indexes ============================== */

/* Where the id of scope t (STAG: a single) lives. */
static void scope_key(ij *o, uint32_t t, uint32_t *anchor, uint32_t *off, uint32_t *len)
{
    if (t & STAG) {
        single_ent *x = &SINGLE(o, t & ~STAG);
        *anchor = x->anchor;
        *off = x->off;
        *len = x->len;
    } else {
        scope_ent *x = &SCOPE(o, t);
        *anchor = x->anchor;
        *off = x->off;
        *len = x->len;
    }
}

static uint64_t hkey(ij *o, int hk, uint32_t i)
{
    switch (hk) {
    case HK_USER:
        return rt_hash_bytes(USER(o, i).key, USER(o, i).key_len);
    case HK_LHS: {
        lhs_ent *e = &LHS(o, i);
        return hash_id(e->user, 0, e->blob + e->pk_off, e->pk_len);
    }
    case HK_SCOPE: {
        uint32_t an, off, len;
        scope_key(o, i, &an, &off, &len);
        lhs_ent *a = &LHS(o, an);
        return hash_id(a->user, 0, a->blob + off, len);
    }
    default: {
        rhs_ent *r = &RHS(o, i);
        return hash_id(r->user, r->kind, r->blob + r->id_off, r->id_len);
    }
    }
}

static uint32_t hidx_head(const hidx *h, int w, uint64_t hash)
{
    return h->t[w] ? h->t[w][hash & (h->size[w] - 1)] : NIL;
}

static uint32_t *table_new(ij *o, uint32_t size)
{
    uint32_t *t = mem_alloc(o, (size_t)size * 4, &o->index_bytes);
    if (t) memset(t, 0xFF, (size_t)size * 4);
    return t;
}

/* Moves one bucket of the old table into the new one. */
static void hidx_step(ij *o, hidx *h, int hk)
{
    if (!h->t[1]) return;
    uint32_t i = h->t[0][h->rehash];
    while (i != NIL) {
        uint32_t *link = pool_link(o, hk, i), nx = *link;
        uint32_t b = *pool_hash(o, hk, i) & (h->size[1] - 1);
        *link = h->t[1][b];
        h->t[1][b] = i;
        i = nx;
        o->index_ops++;
    }
    h->t[0][h->rehash] = NIL;
    if (++h->rehash == h->size[0]) {
        mem_free(o, h->t[0], (size_t)h->size[0] * 4, &o->index_bytes);
        h->t[0] = h->t[1];
        h->size[0] = h->size[1];
        h->t[1] = NULL;
        h->size[1] = 0;
        h->rehash = 0;
    }
}

static int hidx_start_resize(ij *o, hidx *h, uint32_t size)
{
    h->t[1] = table_new(o, size);
    if (!h->t[1]) return -1;
    h->size[1] = size;
    h->rehash = 0;
    return 0;
}

static int hidx_insert(ij *o, hidx *h, int hk, uint32_t i, uint64_t hash)
{
    hidx_step(o, h, hk);
    if (!h->t[0]) {
        if (!(h->t[0] = table_new(o, HIDX_MIN))) return -1;
        h->size[0] = HIDX_MIN;
    }
    if (!h->t[1] && h->used >= h->size[0] && h->size[0] < (1u << 31) &&
        hidx_start_resize(o, h, h->size[0] * 2))
        return -1;
    int w = h->t[1] ? 1 : 0;
    uint32_t b = (uint32_t)(hash & (h->size[w] - 1));
    *pool_hash(o, hk, i) = (uint32_t)hash;
    *pool_link(o, hk, i) = h->t[w][b];
    h->t[w][b] = i;
    h->used++;
    return 0;
}

static int hidx_remove(ij *o, hidx *h, int hk, uint32_t i, uint64_t hash)
{
    for (int w = 0; w < 2; w++) {
        if (!h->t[w]) continue;
        uint32_t *at = &h->t[w][hash & (h->size[w] - 1)];
        while (*at != NIL && *at != i) {
            at = pool_link(o, hk, *at);
            o->index_ops++;
        }
        if (*at == i) {
            *at = *pool_link(o, hk, i);
            *pool_link(o, hk, i) = NIL;
            h->used--;
            break;
        }
    }
    if (h->used == 0) {
        for (int w = 0; w < 2; w++)
            mem_free(o, h->t[w], (size_t)h->size[w] * 4, &o->index_bytes);
        memset(h, 0, sizeof *h);
        return 0;
    }
    hidx_step(o, h, hk);
    if (!h->t[1] && h->size[0] > HIDX_MIN && h->used < h->size[0] / 8)
        return hidx_start_resize(o, h, h->size[0] / 2);
    return 0;
}

static void hidx_free(ij *o, hidx *h)
{
    for (int w = 0; w < 2; w++)
        mem_free(o, h->t[w], (size_t)h->size[w] * 4, &o->index_bytes);
    memset(h, 0, sizeof *h);
}

/* ---- lookups (one per kind: each compares its own key layout) ---- */

static uint32_t user_find(ij *o, const uint8_t *key, size_t klen, uint64_t hash)
{
    for (int w = 0; w < 2; w++)
        for (uint32_t i = hidx_head(&o->h_user, w, hash); i != NIL; i = USER(o, i).hnext) {
            o->index_ops++;
            if (USER(o, i).hash == (uint32_t)hash && USER(o, i).key_len == klen &&
                !memcmp(USER(o, i).key, key, klen))
                return i;
        }
    return NIL;
}

static uint32_t lhs_find(ij *o, uint32_t u, const char *pk, size_t n)
{
    uint64_t hash = hash_id(u, 0, pk, n);
    for (int w = 0; w < 2; w++)
        for (uint32_t i = hidx_head(&o->h_lhs, w, hash); i != NIL; i = LHS(o, i).hnext) {
            lhs_ent *e = &LHS(o, i);
            o->pk_probes++;
            o->index_ops++;
            if (e->hash == (uint32_t)hash && e->user == u && e->pk_len == n &&
                !memcmp(e->blob + e->pk_off, pk, n))
                return i;
        }
    return NIL;
}

static uint32_t scope_find(ij *o, uint32_t u, const char *id, size_t n)
{
    uint64_t hash = hash_id(u, 0, id, n);
    for (int w = 0; w < 2; w++)
        for (uint32_t i = hidx_head(&o->h_scope, w, hash); i != NIL;
             i = *pool_link(o, HK_SCOPE, i)) {
            o->index_ops++;
            if (*pool_hash(o, HK_SCOPE, i) != (uint32_t)hash) continue;
            uint32_t an, off, len;
            scope_key(o, i, &an, &off, &len);
            lhs_ent *a = &LHS(o, an);
            if (a->user == u && len == n && !memcmp(a->blob + off, id, n)) return i;
        }
    return NIL;
}

static uint32_t rhs_find(ij *o, uint32_t u, int kind, const char *id, size_t n)
{
    uint64_t hash = hash_id(u, kind, id, n);
    for (int w = 0; w < 2; w++)
        for (uint32_t i = hidx_head(&o->h_rhs, w, hash); i != NIL; i = RHS(o, i).hnext) {
            rhs_ent *r = &RHS(o, i);
            o->index_ops++;
            if (r->hash == (uint32_t)hash && r->user == u && r->kind == kind && r->id_len == n &&
                !memcmp(r->blob + r->id_off, id, n))
                return i;
        }
    return NIL;
}

/* ============================== scope trees ============================== */

static inline int64_t elt(ij *o, uint32_t i)
{
    return LHS(o, i).lt;
}

static size_t leaf_bytes(uint32_t cap)
{
    return sizeof(leaf) + (size_t)cap * 4;
}

static leaf *leaf_new(ij *o, uint32_t cap)
{
    leaf *l = mem_alloc(o, leaf_bytes(cap), &o->index_bytes);
    if (!l) return NULL;
    l->n = 0;
    l->cap = (uint16_t)cap;
    l->is_leaf = 1;
    return l;
}

static inner *inner_new(ij *o)
{
    inner *in = mem_alloc(o, sizeof(inner), &o->index_bytes);
    if (!in) return NULL;
    memset(in, 0, sizeof *in);
    in->cap = FAN;
    return in;
}

static void node_free(ij *o, node *nd)
{
    if (!nd) return;
    if (nd->is_leaf) {
        mem_free(o, nd, leaf_bytes(nd->cap), &o->index_bytes);
        return;
    }
    inner *in = (inner *)nd;
    for (int k = 0; k < in->n; k++)
        node_free(o, in->kid[k]);
    mem_free(o, in, sizeof(inner), &o->index_bytes);
}

static uint32_t node_count(const node *nd)
{
    if (nd->is_leaf) return nd->n;
    const inner *in = (const inner *)nd;
    uint32_t c = 0;
    for (int k = 0; k < in->n; k++)
        c += in->cnt[k];
    return c;
}

static int64_t node_min(ij *o, const node *nd)
{
    return nd->is_leaf ? elt(o, ((const leaf *)nd)->e[0]) : ((const inner *)nd)->min[0];
}

/* Elements of the subtree with lt < key (le = 0) or lt <= key (le = 1). O(log n). */
static uint32_t node_rank(ij *o, const node *nd, int64_t key, int le)
{
    uint32_t acc = 0;
    while (!nd->is_leaf) {
        const inner *in = (const inner *)nd;
        int c = -1;
        o->index_ops++;
        for (int k = 0; k < in->n; k++) {
            if (le ? in->min[k] <= key : in->min[k] < key)
                c = k;
            else
                break;
        }
        if (c < 0) return acc;
        for (int k = 0; k < c; k++)
            acc += in->cnt[k];
        nd = in->kid[c];
    }
    const leaf *lf = (const leaf *)nd;
    uint32_t lo = 0, hi = lf->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int64_t v = elt(o, lf->e[mid]);
        o->index_ops++;
        if (le ? v <= key : v < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return acc + lo;
}

static uint32_t node_get(ij *o, const node *nd, uint32_t k)
{
    while (!nd->is_leaf) {
        const inner *in = (const inner *)nd;
        int c = 0;
        while (c + 1 < in->n && k >= in->cnt[c]) {
            k -= in->cnt[c];
            c++;
        }
        o->index_ops++;
        nd = in->kid[c];
    }
    return ((const leaf *)nd)->e[k];
}

static void leaf_put(ij *o, leaf *lf, uint32_t pos, uint32_t idx)
{
    memmove(lf->e + pos + 1, lf->e + pos, (size_t)(lf->n - pos) * 4);
    lf->e[pos] = idx;
    lf->n++;
    o->index_ops += (uint64_t)(lf->n - pos);
}

static void inner_put(ij *o, inner *in, uint32_t at, uint32_t cnt, int64_t min, node *kid)
{
    uint32_t move = in->n - at;
    memmove(in->cnt + at + 1, in->cnt + at, move * sizeof in->cnt[0]);
    memmove(in->min + at + 1, in->min + at, move * sizeof in->min[0]);
    memmove(in->kid + at + 1, in->kid + at, move * sizeof in->kid[0]);
    in->cnt[at] = cnt;
    in->min[at] = min;
    in->kid[at] = kid;
    in->n++;
    o->index_ops += move + 1;
}

/* Inserts idx (time lt, in order) at position pos of the subtree *np. A full node splits: the
 * new right sibling comes back in *split for the caller to link. An insert at the very end of a
 * full node starts a new node with just that element, so appends in time order fill the nodes
 * instead of leaving them half empty. */
static int node_insert(ij *o, node **np, uint32_t pos, uint32_t idx, int64_t lt, node **split)
{
    *split = NULL;
    node *nd = *np;
    o->index_ops++;
    if (nd->is_leaf) {
        leaf *lf = (leaf *)nd;
        if (lf->n == lf->cap && lf->cap < LEAF_MAX) {
            uint32_t nc = lf->cap * 2u > LEAF_MAX ? LEAF_MAX : lf->cap * 2u;
            leaf *g = mem_realloc(o, lf, leaf_bytes(lf->cap), leaf_bytes(nc), &o->index_bytes);
            if (!g) return -1;
            g->cap = (uint16_t)nc;
            *np = (node *)g;
            lf = g;
        }
        if (lf->n < lf->cap) {
            leaf_put(o, lf, pos, idx);
            return 0;
        }
        leaf *r;
        if (pos == lf->n) {
            if (!(r = leaf_new(o, 8))) return -1;
            r->e[0] = idx;
            r->n = 1;
        } else {
            uint32_t half = lf->n / 2u;
            if (!(r = leaf_new(o, LEAF_MAX))) return -1;
            memcpy(r->e, lf->e + half, (size_t)(lf->n - half) * 4);
            r->n = (uint16_t)(lf->n - half);
            lf->n = (uint16_t)half;
            o->index_ops += r->n;
            if (pos <= half)
                leaf_put(o, lf, pos, idx);
            else
                leaf_put(o, r, pos - half, idx);
        }
        *split = (node *)r;
        return 0;
    }
    inner *in = (inner *)nd;
    uint32_t c = 0, acc = 0;
    while (c + 1 < in->n && pos > acc + in->cnt[c]) {
        acc += in->cnt[c];
        c++;
    }
    uint32_t local = pos - acc;
    node *sp;
    if (node_insert(o, &in->kid[c], local, idx, lt, &sp)) return -1;
    in->cnt[c]++;
    if (local == 0) in->min[c] = lt;
    if (!sp) return 0;
    uint32_t rc = node_count(sp);
    int64_t rmin = node_min(o, sp);
    in->cnt[c] -= rc;
    if (in->n < FAN) {
        inner_put(o, in, c + 1, rc, rmin, sp);
        return 0;
    }
    inner *r = inner_new(o);
    if (!r) {
        node_free(o, sp); /* the elements it holds are lost, but the task is failing anyway */
        return -1;
    }
    if (c + 1 == in->n) {
        inner_put(o, r, 0, rc, rmin, sp);
    } else {
        uint32_t half = FAN / 2;
        uint32_t move = in->n - half;
        memcpy(r->cnt, in->cnt + half, move * sizeof in->cnt[0]);
        memcpy(r->min, in->min + half, move * sizeof in->min[0]);
        memcpy(r->kid, in->kid + half, move * sizeof in->kid[0]);
        r->n = (uint16_t)move;
        in->n = (uint16_t)half;
        o->index_ops += move;
        if (c + 1 <= half)
            inner_put(o, in, c + 1, rc, rmin, sp);
        else
            inner_put(o, r, c + 1 - half, rc, rmin, sp);
    }
    *split = (node *)r;
    return 0;
}

/* Removes the first k elements (fewer than the subtree holds); returns the new smallest lt. */
static int64_t node_trim(ij *o, node **np, uint32_t k)
{
    node *nd = *np;
    o->index_ops++;
    if (nd->is_leaf) {
        leaf *lf = (leaf *)nd;
        memmove(lf->e, lf->e + k, (size_t)(lf->n - k) * 4);
        lf->n = (uint16_t)(lf->n - k);
        o->index_ops += lf->n;
        if (lf->cap > 8 && lf->n <= lf->cap / 4u) {
            uint32_t nc = lf->cap / 2u;
            void *g = lf;
            if (!mem_shrink(o, &g, leaf_bytes(lf->cap), leaf_bytes(nc), &o->index_bytes)) {
                lf = g;
                lf->cap = (uint16_t)nc;
                *np = (node *)lf;
            }
        }
        return elt(o, lf->e[0]);
    }
    inner *in = (inner *)nd;
    uint32_t drop = 0;
    while (k >= in->cnt[drop]) {
        k -= in->cnt[drop];
        node_free(o, in->kid[drop]);
        drop++;
        o->index_ops++;
    }
    if (drop) {
        uint32_t keep = in->n - drop;
        memmove(in->cnt, in->cnt + drop, keep * sizeof in->cnt[0]);
        memmove(in->min, in->min + drop, keep * sizeof in->min[0]);
        memmove(in->kid, in->kid + drop, keep * sizeof in->kid[0]);
        in->n = (uint16_t)keep;
        o->index_ops += keep;
    }
    if (k) {
        in->min[0] = node_trim(o, &in->kid[0], k);
        in->cnt[0] -= k;
    }
    return in->min[0];
}

/* Calls fn for the members in order, at most *left of them; stops when fn returns non-zero
 * (which is returned). */
typedef int (*walk_fn)(ij *o, void *arg, uint32_t idx);

static int node_walk(ij *o, const node *nd, uint32_t *left, walk_fn fn, void *arg)
{
    if (nd->is_leaf) {
        const leaf *lf = (const leaf *)nd;
        for (uint32_t i = 0; i < lf->n && *left; i++) {
            (*left)--;
            int rc = fn(o, arg, lf->e[i]);
            if (rc) return rc;
        }
        return 0;
    }
    const inner *in = (const inner *)nd;
    for (int k = 0; k < in->n && *left; k++) {
        int rc = node_walk(o, in->kid[k], left, fn, arg);
        if (rc) return rc;
    }
    return 0;
}

/* ---- a scope's members: inline when one, else a tree ---- */

static uint32_t seq_rank(ij *o, const scope_ent *s, int64_t key, int le)
{
    if (s->count == 1) {
        o->index_ops++;
        int64_t v = elt(o, s->m.one);
        return (le ? v <= key : v < key) ? 1 : 0;
    }
    return node_rank(o, s->m.root, key, le);
}

static uint32_t seq_get(ij *o, const scope_ent *s, uint32_t k)
{
    return s->count == 1 ? s->m.one : node_get(o, s->m.root, k);
}

static int seq_walk(ij *o, const scope_ent *s, uint32_t limit, walk_fn fn, void *arg)
{
    if (s->count == 1) return limit ? fn(o, arg, s->m.one) : 0;
    return node_walk(o, s->m.root, &limit, fn, arg);
}

/* Inserts idx at pos; the caller then counts it. */
static int seq_insert(ij *o, scope_ent *s, uint32_t pos, uint32_t idx, int64_t lt)
{
    if (s->count == 1) {
        leaf *lf = leaf_new(o, 2);
        if (!lf) return -1;
        lf->e[0] = s->m.one;
        lf->n = 1;
        leaf_put(o, lf, pos, idx);
        s->m.root = (node *)lf;
        return 0;
    }
    node *sp;
    if (node_insert(o, &s->m.root, pos, idx, lt, &sp)) return -1;
    if (!sp) return 0;
    inner *r = inner_new(o);
    if (!r) {
        node_free(o, sp);
        return -1;
    }
    inner_put(o, r, 0, node_count(s->m.root), node_min(o, s->m.root), s->m.root);
    inner_put(o, r, 1, node_count(sp), node_min(o, sp), sp);
    s->m.root = (node *)r;
    return 0;
}

/* Removes the first k members (0 < k < count); the caller updates count afterwards. */
static void seq_trim(ij *o, scope_ent *s, uint32_t k)
{
    node_trim(o, &s->m.root, k);
    while (!s->m.root->is_leaf && s->m.root->n == 1) {
        inner *in = (inner *)s->m.root;
        s->m.root = in->kid[0];
        mem_free(o, in, sizeof(inner), &o->index_bytes);
    }
    if (s->count - k == 1) {
        uint32_t last = node_get(o, s->m.root, 0);
        node_free(o, s->m.root);
        s->m.one = last;
    }
}

static void seq_free(ij *o, scope_ent *s)
{
    if (s->count >= 2) node_free(o, s->m.root);
    s->m.root = NULL;
}

/* ============================== heaps ============================== */

static int lheap_less(ij *o, uint32_t a, uint32_t b)
{
    return elt(o, a) < elt(o, b);
}

/* A user's parents by lt. While they arrive in lt order (the usual case: parents come with
 * their log time) lh is a ring sorted by lt: a push appends, a pop takes the head, and neither
 * reads more than one entry's lt. The first out-of-order push turns the array into a binary
 * min-heap (a sorted array already is one), whose sifts read an entry per comparison, until it
 * empties. Capacities are powers of two. */
static uint32_t *lring_at(user_ent *us, uint32_t k)
{
    return &us->lh[(us->lh_head + k) & (us->lh_cap - 1)];
}

/* Moves the ring to start at index 0 of an array of nc slots (nc >= lh_n). */
static int lring_relocate(ij *o, user_ent *us, uint32_t nc)
{
    uint32_t *a = mem_alloc(o, (size_t)nc * 4, &o->index_bytes);
    if (!a) return -1;
    for (uint32_t k = 0; k < us->lh_n; k++)
        a[k] = *lring_at(us, k);
    mem_free(o, us->lh, (size_t)us->lh_cap * 4, &o->index_bytes);
    us->lh = a;
    us->lh_cap = nc;
    us->lh_head = 0;
    return 0;
}

static int lheap_push(ij *o, uint32_t u, uint32_t idx)
{
    user_ent *us = &USER(o, u);
    if (us->lh_n == us->lh_cap &&
        lring_relocate(o, us, us->lh_cap ? us->lh_cap * 2 : 4)) /* also a heap's growth */
        return -1;
    if (!us->lh_heap) {
        if (!us->lh_n || elt(o, *lring_at(us, us->lh_n - 1)) <= elt(o, idx)) {
            *lring_at(us, us->lh_n++) = idx;
            o->index_ops++;
            return 0;
        }
        if (us->lh_head && lring_relocate(o, us, us->lh_cap)) return -1;
        us->lh_heap = 1;
    }
    uint32_t i = us->lh_n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        o->index_ops++;
        if (!lheap_less(o, idx, us->lh[p])) break;
        us->lh[i] = us->lh[p];
        i = p;
    }
    us->lh[i] = idx;
    return 0;
}

/* The parent with the least lt (lh_n > 0). */
static uint32_t lheap_top(user_ent *us)
{
    return us->lh_heap ? us->lh[0] : *lring_at(us, 0);
}

static uint32_t lheap_pop(ij *o, uint32_t u)
{
    user_ent *us = &USER(o, u);
    uint32_t top;
    if (!us->lh_heap) {
        top = *lring_at(us, 0);
        us->lh_head = (us->lh_head + 1) & (us->lh_cap - 1);
        us->lh_n--;
        o->index_ops++;
    } else {
        top = us->lh[0];
        uint32_t last = us->lh[--us->lh_n], i = 0, n = us->lh_n;
        while (n) {
            uint32_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && lheap_less(o, us->lh[c + 1], us->lh[c])) c++;
            o->index_ops++;
            if (!lheap_less(o, us->lh[c], last)) break;
            us->lh[i] = us->lh[c];
            i = c;
        }
        if (n) us->lh[i] = last;
    }
    if (!us->lh_n) {
        us->lh_heap = 0; /* empty: sorted again */
        us->lh_head = 0;
    }
    if (us->lh_cap > 16 && us->lh_n <= us->lh_cap / 4) {
        /* move the ring to index 0 in place (a heap already is there), then shrink */
        uint32_t cap = us->lh_cap, h = us->lh_head, n = us->lh_n;
        if (h + n <= cap) {
            memmove(us->lh, us->lh + h, (size_t)n * 4);
        } else { /* wrapped: n <= cap/4, so the pieces never overlap the head part */
            memmove(us->lh + (cap - h), us->lh, (size_t)(n - (cap - h)) * 4);
            memmove(us->lh, us->lh + h, (size_t)(cap - h) * 4);
        }
        us->lh_head = 0;
        void *a = us->lh;
        if (!mem_shrink(o, &a, (size_t)cap * 4, (size_t)cap / 2 * 4, &o->index_bytes)) {
            us->lh = a;
            us->lh_cap = cap / 2;
        }
    }
    return top;
}

static int rref_less(const rref *a, const rref *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static int rheap_push(ij *o, uint32_t u, rref x)
{
    user_ent *us = &USER(o, u);
    if (us->rh_n == us->rh_cap) {
        uint32_t nc = us->rh_cap ? us->rh_cap * 2 : 4;
        rref *a = mem_realloc(o, us->rh, (size_t)us->rh_cap * sizeof(rref),
                              (size_t)nc * sizeof(rref), &o->index_bytes);
        if (!a) return -1;
        us->rh = a;
        us->rh_cap = nc;
    }
    uint32_t i = us->rh_n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!rref_less(&x, &us->rh[p])) break;
        us->rh[i] = us->rh[p];
        i = p;
    }
    us->rh[i] = x;
    return 0;
}

static rref rheap_pop(ij *o, uint32_t u)
{
    user_ent *us = &USER(o, u);
    rref top = us->rh[0], last = us->rh[--us->rh_n];
    uint32_t i = 0, n = us->rh_n;
    while (n) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && rref_less(&us->rh[c + 1], &us->rh[c])) c++;
        if (!rref_less(&us->rh[c], &last)) break;
        us->rh[i] = us->rh[c];
        i = c;
    }
    if (n) us->rh[i] = last;
    if (us->rh_cap > 16 && us->rh_n <= us->rh_cap / 4) {
        uint32_t nc = us->rh_cap / 2;
        void *a = us->rh;
        if (!mem_shrink(o, &a, (size_t)us->rh_cap * sizeof(rref), (size_t)nc * sizeof(rref),
                        &o->index_bytes)) {
            us->rh = a;
            us->rh_cap = nc;
        }
    }
    return top;
}

/* ============================== users ============================== */

/* The user of key, created if create and absent. *out = NIL when absent and not created.
 * Returns 0 or -1 (failure recorded). */
static int user_get(ij *o, const uint8_t *key, size_t klen, int create, uint32_t *out)
{
    uint64_t hash = rt_hash_bytes(key, klen);
    *out = user_find(o, key, klen, hash);
    if (*out != NIL || !create) return 0;
    uint8_t *k = mem_alloc(o, klen, &o->index_bytes);
    if (!k) return -1;
    uint32_t u = pool_take(o, HK_USER);
    if (u == NIL) {
        mem_free(o, k, klen, &o->index_bytes);
        return -1;
    }
    if (klen) memcpy(k, key, klen);
    USER(o, u).key = k;
    USER(o, u).key_len = (uint32_t)klen;
    if (hidx_insert(o, &o->h_user, HK_USER, u, hash)) {
        mem_free(o, k, klen, &o->index_bytes);
        pool_put(o, HK_USER, u);
        return -1;
    }
    *out = u;
    return 0;
}

static int user_free(ij *o, uint32_t u)
{
    user_ent *us = &USER(o, u);
    int rc = hidx_remove(o, &o->h_user, HK_USER, u, rt_hash_bytes(us->key, us->key_len));
    us = &USER(o, u);
    mem_free(o, us->lh, (size_t)us->lh_cap * 4, &o->index_bytes);
    mem_free(o, us->rh, (size_t)us->rh_cap * sizeof(rref), &o->index_bytes);
    mem_free(o, us->key, us->key_len, &o->index_bytes);
    pool_put(o, HK_USER, u);
    return rc;
}

/* ============================== records in and out ============================== */

static int late(ij *o, int64_t ts)
{
    int64_t wm = rt_op_watermark(o->op);
    return o->cfg.check_lateness && wm != RT_TIME_MIN && ts < wm;
}

static int do_merge(ij *o, int port, int64_t ts, const uint8_t *key, size_t klen, const void *lhs,
                    const void *rhs)
{
    inferred_join_merge m = {.o = o, .port = port, .ts = ts, .key = key, .key_len = klen};
    return o->cfg.merge(o->cfg.ctx, &m, lhs, rhs);
}

ProtobufCAllocator *inferred_join_merge_allocator(inferred_join_merge *m)
{
    return pb_arena_allocator(m->o->arena);
}

int inferred_join_merge_emit(inferred_join_merge *m, const void *msg)
{
    rt_record r = {.ts = m->ts,
                   .type = m->o->cfg.out_type,
                   .data = (void *)msg,
                   .key = m->key,
                   .key_len = m->key_len};
    return rt_emit(m->o->op, m->port, &r);
}

int inferred_join_merge_mismatch(inferred_join_merge *m, const join_mismatch_error *e)
{
    count(m->o, C_MISMATCH);
    rt_record r = {.ts = m->ts,
                   .type = REC_MISMATCH_ERROR,
                   .data = (void *)e,
                   .key = m->key,
                   .key_len = m->key_len};
    return rt_emit(m->o->op, INFERRED_JOIN_PORT_MISMATCH, &r);
}

static int emit_raw(ij *o, int port, int type, int64_t ts, const void *msg, const uint8_t *key,
                    size_t klen)
{
    rt_record r = {.ts = ts, .type = type, .data = (void *)msg, .key = key, .key_len = klen};
    return rt_emit(o->op, port, &r);
}

static void *unpack(ij *o, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    void *m = protobuf_c_message_unpack(d, pb_arena_allocator(o->arena), n, p);
    if (!m)
        rt_op_fail(o->op, "join state: a stored %s of %zu bytes does not decode (corrupt state)",
                   d->name, n);
    return m;
}

/* Packs msg into a new blob and appends each of the nids ids that its bytes do not contain, so
 * that every id can be kept as an offset into the blob; offs[i] receives id i's offset. */
static uint8_t *blob_make(ij *o, const ProtobufCMessage *msg, const inferred_join_id *ids,
                          size_t nids, uint32_t *offs, uint32_t *len, uint32_t *blob_len,
                          int64_t *cat)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    size_t idbytes = 0;
    for (size_t i = 0; i < nids; i++)
        idbytes += ids[i].n;
    if (n > UINT32_MAX / 4 || idbytes > UINT32_MAX / 4) {
        rt_op_fail(o->op, "join state: a %s of %zu bytes is over the 1 GiB record limit",
                   msg->descriptor->name, n);
        return NULL;
    }
    uint8_t *b = mem_alloc(o, n, cat);
    if (!b) return NULL;
    protobuf_c_message_pack(msg, b);
    size_t extra = 0;
    for (size_t i = 0; i < nids; i++) {
        int64_t at = find_bytes(b, n, ids[i].p, ids[i].n);
        offs[i] = at < 0 ? NIL : (uint32_t)at;
        if (at >= 0) continue;
        bool again = false; /* the same missing id twice is appended once */
        for (size_t j = 0; j < i && !again; j++)
            again = offs[j] == NIL && ids[j].n == ids[i].n && !memcmp(ids[j].p, ids[i].p, ids[i].n);
        if (!again) extra += ids[i].n;
    }
    size_t total = n;
    if (extra) { /* rare: ids the callbacks computed rather than read from the record */
        uint8_t *g = mem_realloc(o, b, n, n + extra, cat);
        if (!g) {
            mem_free(o, b, n, cat);
            return NULL;
        }
        b = g;
        for (size_t i = 0; i < nids; i++) {
            if (offs[i] != NIL) continue;
            int64_t at = find_bytes(b + n, total - n, ids[i].p, ids[i].n);
            if (at >= 0) {
                offs[i] = (uint32_t)(n + (size_t)at);
                continue;
            }
            memcpy(b + total, ids[i].p, ids[i].n);
            offs[i] = (uint32_t)total;
            total += ids[i].n;
        }
    }
    *len = (uint32_t)n;
    *blob_len = (uint32_t)total;
    return b;
}

/* The user key of a message, into o->keybuf. Returns its length, or -1. */
static int key_of(ij *o, int input, const void *msg)
{
    return o->cfg.key(o->cfg.ctx, input, msg, o->keybuf, INFERRED_JOIN_KEY_MAX);
}

/* The log_user_id part of a job key (8-byte platform id first). */
static void key_scope(ij *o, const uint8_t *key, size_t klen, inferred_join_scopes *sc)
{
    if (!o->cfg.include_key_as_scope || klen <= 8) return;
    if (sc->n >= INFERRED_JOIN_MAX_SCOPES) {
        sc->overflow = true;
        return;
    }
    sc->id[sc->n].p = (const char *)key + 8;
    sc->id[sc->n].n = klen - 8;
    sc->n++;
}

/* Left scopes of a parent: the callback's non-blank ids, then the key's log_user_id. */
static int left_scopes(ij *o, const void *lhs, const uint8_t *key, size_t klen,
                       inferred_join_scopes *sc)
{
    inferred_join_scopes all;
    all.n = 0;
    all.overflow = false;
    o->cfg.lhs_scopes(o->cfg.ctx, lhs, &all);
    key_scope(o, key, klen, &all);
    if (all.overflow)
        return rt_op_fail(o->op, "a parent has more than %d scope ids", INFERRED_JOIN_MAX_SCOPES);
    sc->n = 0;
    sc->overflow = false;
    for (size_t i = 0; i < all.n; i++)
        if (all.id[i].n && !blank_n(all.id[i].p, all.id[i].n)) sc->id[sc->n++] = all.id[i];
    return 0;
}

/* ============================== content filter ============================== */

typedef struct idset {
    struct {
        const char *p;
        size_t n;
    } * v;
    size_t n, cap;
    uint32_t *slot; /* open addressing over v, when large */
    uint32_t mask;
    bool any; /* ids(rhs) is non-empty (blank ids count here, never match) */
    ij *o;
    int failed;
} idset;

static void *arena_alloc(ij *o, size_t n)
{
    ProtobufCAllocator *a = pb_arena_allocator(o->arena);
    return a->alloc(a->allocator_data, n);
}

static int idset_add(void *arg, const char *s, size_t n)
{
    idset *st = arg;
    st->any = true;
    if (!n || blank_n(s, n)) return 0;
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 8;
        void *a = arena_alloc(st->o, nc * sizeof st->v[0]);
        if (!a) {
            st->failed = 1;
            return 1;
        }
        if (st->n) memcpy(a, st->v, st->n * sizeof st->v[0]);
        st->v = a;
        st->cap = nc;
    }
    st->v[st->n].p = s;
    st->v[st->n].n = n;
    st->n++;
    return 0;
}

static int idset_index(idset *st)
{
    if (st->n <= 8) return 0;
    size_t size = 16;
    while (size < st->n * 2)
        size *= 2;
    st->slot = arena_alloc(st->o, size * 4);
    if (!st->slot) return -1;
    memset(st->slot, 0xFF, size * 4);
    st->mask = (uint32_t)(size - 1);
    for (size_t i = 0; i < st->n; i++) {
        uint32_t b = (uint32_t)rt_hash_bytes(st->v[i].p, st->v[i].n) & st->mask;
        while (st->slot[b] != NIL)
            b = (b + 1) & st->mask;
        st->slot[b] = (uint32_t)i;
    }
    return 0;
}

static bool idset_has(const idset *st, const char *s, size_t n)
{
    if (!st->slot) {
        for (size_t i = 0; i < st->n; i++)
            if (st->v[i].n == n && !memcmp(st->v[i].p, s, n)) return true;
        return false;
    }
    uint32_t b = (uint32_t)rt_hash_bytes(s, n) & st->mask;
    for (; st->slot[b] != NIL; b = (b + 1) & st->mask) {
        uint32_t i = st->slot[b];
        if (st->v[i].n == n && !memcmp(st->v[i].p, s, n)) return true;
    }
    return false;
}

static int idset_hit(void *arg, const char *s, size_t n)
{
    return idset_has(arg, s, n) ? 1 : 0;
}

/* 1 if the parent shares a non-blank content id with the child's set. */
static int lhs_passes(ij *o, const idset *st, uint32_t e)
{
    lhs_ent *l = &LHS(o, e);
    return o->cfg.lhs_content_ids_packed(o->cfg.ctx, l->blob, l->len, idset_hit, (void *)st) == 1;
}

typedef struct eq_arg {
    const char *p;
    size_t n;
} eq_arg;

static int eq_hit(void *arg, const char *s, size_t n)
{
    const eq_arg *a = arg;
    return n == a->n && !memcmp(s, a->p, n);
}

/* 1 if id is one of the parent's content ids (§7.6 ids(lhs)). */
static int lhs_has_content(ij *o, uint32_t e, const char *id, size_t n)
{
    if (!o->cfg.content_filter) return 0;
    eq_arg a = {id, n};
    lhs_ent *l = &LHS(o, e);
    return o->cfg.lhs_content_ids_packed(o->cfg.ctx, l->blob, l->len, eq_hit, &a) == 1;
}

/* ============================== LHS state ============================== */

static int scope_insert(ij *o, uint32_t u, const char *id, size_t n, uint32_t e, int64_t lt)
{
    uint32_t si = scope_find(o, u, id, n);
    uint64_t hash = hash_id(u, 0, id, n);
    if (si == NIL) { /* a new scope: one member, kept as a single */
        int64_t at = find_bytes(LHS(o, e).blob, LHS(o, e).blob_len, id, n);
        if (at < 0) return rt_op_fail(o->op, "join state: a scope id is missing from its record");
        uint32_t x = pool_take(o, HK_SINGLE);
        if (x == NIL) return -1;
        SINGLE(o, x) = (single_ent){NIL, e, (uint32_t)at, (uint32_t)n, 0};
        if (hidx_insert(o, &o->h_scope, HK_SCOPE, x | STAG, hash)) {
            pool_put(o, HK_SINGLE, x);
            return -1;
        }
        return 0;
    }
    if (si & STAG) { /* a second member: promote the single to a full scope */
        single_ent one = SINGLE(o, si & ~STAG);
        uint32_t f = pool_take(o, HK_SCOPE);
        if (f == NIL) return -1;
        scope_ent *s = &SCOPE(o, f);
        s->m.one = one.anchor;
        s->count = 1;
        s->content_count = (uint32_t)lhs_has_content(o, one.anchor, id, n);
        s->anchor = one.anchor;
        s->off = one.off;
        s->len = one.len;
        if (hidx_remove(o, &o->h_scope, HK_SCOPE, si, hash)) return -1;
        pool_put(o, HK_SINGLE, si & ~STAG);
        if (hidx_insert(o, &o->h_scope, HK_SCOPE, f, hash)) {
            pool_put(o, HK_SCOPE, f);
            return -1;
        }
        si = f;
    }
    int content = lhs_has_content(o, e, id, n);
    scope_ent *s = &SCOPE(o, si);
    if (s->count == NIL - 1) return rt_op_fail(o->op, "join state: a scope is full");
    uint32_t a = seq_rank(o, s, lt, 0), b = seq_rank(o, s, lt, 1);
    int64_t r = inferred_join_java_search(s->count, a, b);
    uint32_t pos = r >= 0 ? (uint32_t)r : a;
    if (seq_insert(o, s, pos, e, lt)) return -1;
    s->count++;
    s->content_count += (uint32_t)content;
    return 0;
}

typedef struct content_count_arg {
    uint32_t n;
    const char *id;
    size_t len;
} content_count_arg;

static int count_content(ij *o, void *arg, uint32_t e)
{
    content_count_arg *c = arg;
    c->n += (uint32_t)lhs_has_content(o, e, c->id, c->len);
    return 0;
}

/* Drops the members with lt <= horizon (a prefix) from scope si. */
static int scope_trim(ij *o, uint32_t si, int64_t horizon)
{
    if (si & STAG) {
        single_ent *x = &SINGLE(o, si & ~STAG);
        lhs_ent *a = &LHS(o, x->anchor);
        if (a->lt > horizon) return 0;
        int rc = hidx_remove(o, &o->h_scope, HK_SCOPE, si,
                             hash_id(a->user, 0, a->blob + x->off, x->len));
        pool_put(o, HK_SINGLE, si & ~STAG);
        return rc;
    }
    scope_ent *s = &SCOPE(o, si);
    uint32_t k = seq_rank(o, s, horizon, 1);
    if (!k) return 0;
    if (k == s->count) {
        lhs_ent *a = &LHS(o, s->anchor);
        uint64_t hash = hash_id(a->user, 0, a->blob + s->off, s->len);
        seq_free(o, s);
        int rc = hidx_remove(o, &o->h_scope, HK_SCOPE, si, hash);
        pool_put(o, HK_SCOPE, si);
        return rc;
    }
    if (o->cfg.content_filter && s->content_count) {
        lhs_ent *a = &LHS(o, s->anchor);
        content_count_arg c = {0, (const char *)a->blob + s->off, s->len};
        seq_walk(o, s, k, count_content, &c);
        s->content_count -= c.n;
    }
    int anchor_gone = LHS(o, s->anchor).lt <= horizon;
    const uint8_t *idp = LHS(o, s->anchor).blob + s->off; /* freed only after every trim */
    seq_trim(o, s, k);
    s->count -= k;
    if (anchor_gone) {
        uint32_t f = seq_get(o, s, 0);
        int64_t at = find_bytes(LHS(o, f).blob, LHS(o, f).blob_len, idp, s->len);
        if (at < 0) return rt_op_fail(o->op, "join state: a scope id is missing from a member");
        s->anchor = f;
        s->off = (uint32_t)at;
    }
    return 0;
}

static void lhs_release(ij *o, uint32_t e)
{
    lhs_ent *l = &LHS(o, e);
    uint32_t u = l->user;
    mem_free(o, l->blob, l->blob_len, &o->lhs_payload);
    pool_put(o, HK_LHS, e);
    USER(o, u).n_lhs--;
}

/* §7.5 step 2: removes the user's parents with lt <= horizon from the key index and from all
 * their scopes. */
static int lhs_cleanup(ij *o, uint32_t u, const uint8_t *key, size_t klen, int64_t horizon)
{
    vec32 *rm = &o->v_rm;
    rm->n = 0;
    while (USER(o, u).lh_n && elt(o, lheap_top(&USER(o, u))) <= horizon)
        if (vec_push(o, rm, lheap_pop(o, u))) return -1;
    for (uint32_t i = 0; i < rm->n; i++) {
        lhs_ent *l = &LHS(o, rm->a[i]);
        const void *msg = unpack(o, o->cfg.lhs_desc, l->blob, l->len);
        if (!msg) return -1;
        inferred_join_scopes sc;
        if (left_scopes(o, msg, key, klen, &sc)) return -1;
        for (size_t k = 0; k < sc.n; k++) {
            uint32_t si = scope_find(o, u, sc.id[k].p, sc.id[k].n);
            if (si != NIL && scope_trim(o, si, horizon)) return -1;
        }
        pb_arena_reset(o->arena, ARENA_KEEP);
    }
    for (uint32_t i = 0; i < rm->n; i++) {
        uint32_t e = rm->a[i];
        if (hidx_remove(o, &o->h_lhs, HK_LHS, e, hkey(o, HK_LHS, e))) return -1;
        lhs_release(o, e);
    }
    rm->n = 0;
    return 0;
}

/* ============================== RHS state ============================== */

static void rhs_release(ij *o, uint32_t ri)
{
    rhs_ent *r = &RHS(o, ri);
    uint32_t u = r->user;
    mem_free(o, r->blob, r->blob_len, &o->rhs_payload);
    pool_put(o, HK_RHS, ri);
    USER(o, u).n_rhs--;
}

/* Stores a waiting child of kind RK_OOID (id = FK) or RK_CAND (id = PK). */
static int rhs_add(ij *o, uint32_t u, int kind, const ProtobufCMessage *msg, const char *id,
                   int64_t lt, int64_t due)
{
    inferred_join_id ids = {id, strlen(id)};
    uint32_t off, len, blen;
    uint8_t *b = blob_make(o, msg, &ids, 1, &off, &len, &blen, &o->rhs_payload);
    if (!b) return -1;
    uint32_t head = kind == RK_OOID ? rhs_find(o, u, RK_OOID, id, ids.n) : NIL;
    uint32_t ri = pool_take(o, HK_RHS);
    if (ri == NIL) {
        mem_free(o, b, blen, &o->rhs_payload);
        return -1;
    }
    rhs_ent *r = &RHS(o, ri);
    r->lt = lt;
    r->due = due;
    r->seq = o->next_seq++;
    r->blob = b;
    r->len = len;
    r->blob_len = blen;
    r->user = u;
    r->id_off = off;
    r->id_len = (uint32_t)ids.n;
    r->kind = (uint8_t)kind;
    r->next = NIL;
    USER(o, u).n_rhs++;
    if (head != NIL) {
        uint32_t tail = RHS(o, head).prev;
        RHS(o, tail).next = ri;
        r->prev = tail;
        RHS(o, head).prev = ri;
    } else {
        r->prev = ri;
        if (hidx_insert(o, &o->h_rhs, HK_RHS, ri, hkey(o, HK_RHS, ri))) return -1;
    }
    rref x = {due, RHS(o, ri).seq, ri};
    return rheap_push(o, u, x);
}

/* Takes an ooIdJoin child out of its FK list (it expired). */
static int ooid_unlink(ij *o, uint32_t ri)
{
    rhs_ent *r = &RHS(o, ri);
    uint32_t head = rhs_find(o, r->user, RK_OOID, (const char *)r->blob + r->id_off, r->id_len);
    if (head == ri) {
        uint32_t nx = r->next, tail = r->prev;
        uint64_t hash = hkey(o, HK_RHS, ri);
        if (hidx_remove(o, &o->h_rhs, HK_RHS, ri, hash)) return -1;
        if (nx != NIL) {
            RHS(o, nx).prev = tail;
            if (hidx_insert(o, &o->h_rhs, HK_RHS, nx, hash)) return -1;
        }
    } else {
        uint32_t p = r->prev, nx = r->next;
        RHS(o, p).next = nx;
        if (nx != NIL)
            RHS(o, nx).prev = p;
        else if (head != NIL)
            RHS(o, head).prev = p;
    }
    RHS(o, ri).kind = RK_DETACHED;
    return 0;
}

/* §7.3 step 4: the children that named this parent before it arrived join it now, in arrival
 * order, with the parent's timestamp. */
static int release_ooid(ij *o, uint32_t u, const char *pk, size_t n, const void *lhs, int64_t ts,
                        const uint8_t *key, size_t klen)
{
    uint32_t head = rhs_find(o, u, RK_OOID, pk, n);
    if (head == NIL) return 0;
    if (hidx_remove(o, &o->h_rhs, HK_RHS, head, hash_id(u, RK_OOID, pk, n))) return -1;
    for (uint32_t x = head; x != NIL; x = RHS(o, x).next) {
        RHS(o, x).kind = RK_DETACHED;
        const void *msg = unpack(o, o->cfg.rhs_desc, RHS(o, x).blob, RHS(o, x).len);
        if (!msg) return -1;
        count(o, C_JOIN_RELEASED);
        int rc = do_merge(o, INFERRED_JOIN_PORT_OUT, ts, key, klen, lhs, msg);
        pb_arena_reset(o->arena, ARENA_KEEP);
        if (rc) return rc;
    }
    for (uint32_t x = head; x != NIL;) {
        uint32_t nx = RHS(o, x).next;
        rhs_release(o, x);
        x = nx;
    }
    return 0;
}

/* ============================== §7.7 nearest selection ============================== */

typedef struct view {
    const scope_ent *s;  /* the whole scope, or */
    const uint32_t *arr; /* the filtered members */
    uint32_t n;
} view;

static uint32_t view_rank(ij *o, const view *v, int64_t key, int le)
{
    if (v->s) return seq_rank(o, v->s, key, le);
    uint32_t lo = 0, hi = v->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int64_t x = elt(o, v->arr[mid]);
        o->index_ops++;
        if (le ? x <= key : x < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t view_get(ij *o, const view *v, uint32_t k)
{
    return v->s ? seq_get(o, v->s, k) : v->arr[k];
}

static uint32_t nearest(ij *o, const view *v, int64_t r)
{
    if (!v->n) return NIL;
    int64_t tmax = o->cfg.max_time_ms, tooo = o->cfg.max_ooo_ms;
    uint32_t a = view_rank(o, v, r, 0), b = view_rank(o, v, r, 1);
    int64_t hit = inferred_join_java_search(v->n, a, b);
    uint32_t cand;
    if (hit >= 0) {
        cand = view_get(o, v, (uint32_t)hit);
    } else if (a == v->n) {
        cand = view_get(o, v, v->n - 1);
    } else if (a == 0) {
        cand = view_get(o, v, 0);
    } else {
        uint32_t lo = view_get(o, v, a - 1), hi = view_get(o, v, a);
        int64_t e = wsub(r, elt(o, lo)), l = wsub(elt(o, hi), r);
        bool ev = e <= tmax, lv = l <= tooo;
        if (!ev && !lv) return NIL;
        cand = (ev && (!lv || e < l)) ? lo : hi; /* ties go to the later parent */
    }
    int64_t lt = elt(o, cand);
    if (lt < wsub(r, tmax) || lt > wadd(r, tooo)) return NIL;
    return cand;
}

typedef struct filter_arg {
    const idset *st;
    vec32 *out;
    int failed;
} filter_arg;

static int filter_one(ij *o, void *arg, uint32_t e)
{
    filter_arg *f = arg;
    if (lhs_passes(o, f->st, e) && vec_push(o, f->out, e)) {
        f->failed = 1;
        return 1;
    }
    return 0;
}

/* §7.5 step 1 for one candidate: the first right scope that yields a parent wins. Returns the
 * parent, NIL, or -2 on failure. */
static int64_t infer_parent(ij *o, uint32_t u, const void *rhs, int64_t r, const uint8_t *key,
                            size_t klen)
{
    inferred_join_scopes sc = {.n = 0};
    o->cfg.rhs_scopes(o->cfg.ctx, rhs, &sc);
    key_scope(o, key, klen, &sc);
    if (sc.overflow)
        return rt_op_fail(o->op, "a child has more than %d scope ids", INFERRED_JOIN_MAX_SCOPES) -
               1;
    idset st = {.o = o};
    if (o->cfg.content_filter) {
        o->cfg.rhs_content_ids(o->cfg.ctx, rhs, idset_add, &st);
        if (st.failed || idset_index(&st))
            return rt_op_fail(o->op, "out of arena memory for a child's content ids") - 1;
    }
    for (size_t k = 0; k < sc.n; k++) {
        if (!sc.id[k].n) continue;
        uint32_t si = scope_find(o, u, sc.id[k].p, sc.id[k].n);
        if (si == NIL) continue;
        uint32_t alone;
        view v;
        if (si & STAG) {
            alone = SINGLE(o, si & ~STAG).anchor;
            v = (view){.arr = &alone, .n = 1};
            if (o->cfg.content_filter && st.any && !lhs_passes(o, &st, alone)) v.n = 0;
            uint32_t e = nearest(o, &v, r);
            if (e != NIL) return e;
            continue;
        }
        const scope_ent *s = &SCOPE(o, si);
        v = (view){.s = s, .n = s->count};
        if (o->cfg.content_filter && st.any &&
            !(s->content_count == s->count && idset_has(&st, sc.id[k].p, sc.id[k].n))) {
            /* some members may fail the filter: list those that pass, in scope order */
            o->v_view.n = 0;
            filter_arg f = {&st, &o->v_view, 0};
            seq_walk(o, s, s->count, filter_one, &f);
            if (f.failed) return -2;
            v.s = NULL;
            v.arr = o->v_view.a;
            v.n = o->v_view.n;
        }
        uint32_t e = nearest(o, &v, r);
        if (e != NIL) return e;
    }
    return NIL;
}

/* ============================== process ============================== */

/* How long after its lt a parent stays: the reference's maxTime * mult, plus maxOOO. A child
 * without a foreign key chooses its parent only at ts + maxOOO, among parents down to
 * lt - maxTime; the reference drops parents at T - maxTime * mult at every timer T of the key,
 * so with maxOOO > 0 the parents a waiting child may still choose are gone before its timer
 * fires (with maxOOO >= maxTime all of its earlier ones), and a larger *JoinMax loses the joins
 * a smaller one finds. Keeping every parent maxOOO longer closes that gap; with the default
 * maxOOO 0 it is the reference's horizon. docs/JOIN.md "Join maxima above zero". */
static int64_t lhs_keep(const ij *o)
{
    return wadd(wmul(o->cfg.max_time_ms, o->cfg.mult), o->cfg.max_ooo_ms);
}

static int process_lhs(ij *o, const rt_record *rec)
{
    const void *lhs = rec->data;
    const char *pk = o->cfg.lhs_pk(o->cfg.ctx, lhs);
    if (o->cfg.skip_join || !pk || !*pk) {
        count(o, C_LHS_IGNORED);
        return 0;
    }
    int kl = key_of(o, INFERRED_JOIN_IN_LHS, lhs);
    if (kl < 0) {
        count(o, C_LHS_IGNORED);
        return 0;
    }
    const uint8_t *key = o->keybuf;
    size_t klen = (size_t)kl;
    if (late(o, rec->ts)) {
        count(o, C_LATE_LHS);
        return rt_emit(o->op, INFERRED_JOIN_PORT_LATE, rec);
    }
    int64_t lt = o->cfg.lt(o->cfg.ctx, INFERRED_JOIN_IN_LHS, lhs);
    if (lt == 0) {
        count(o, C_ZERO_LHS);
        return rt_emit(o->op, INFERRED_JOIN_PORT_LHS_ZERO_LT, rec);
    }
    if (!inferred_join_blank(pk)) {
        size_t pkn = strlen(pk);
        uint32_t u;
        if (user_get(o, key, klen, 0, &u)) return -1;
        if (u != NIL && lhs_find(o, u, pk, pkn) != NIL) {
            o->dup_lhs++;
            count(o, C_DUP_LHS);
            return rt_emit(o->op, INFERRED_JOIN_PORT_DUPLICATE_LHS, rec);
        }
        inferred_join_scopes sc;
        if (left_scopes(o, lhs, key, klen, &sc)) return -1;
        inferred_join_id ids[INFERRED_JOIN_MAX_SCOPES + 1]; /* the scopes, then the PK */
        memcpy(ids, sc.id, sc.n * sizeof ids[0]);
        ids[sc.n].p = pk;
        ids[sc.n].n = pkn;
        uint32_t offs[INFERRED_JOIN_MAX_SCOPES + 1], len, blen;
        if (user_get(o, key, klen, 1, &u)) return -1;
        uint8_t *b = blob_make(o, (const ProtobufCMessage *)lhs, ids, sc.n + 1, offs, &len, &blen,
                               &o->lhs_payload);
        if (!b) return -1;
        uint32_t e = pool_take(o, HK_LHS);
        if (e == NIL) {
            mem_free(o, b, blen, &o->lhs_payload);
            return -1;
        }
        lhs_ent *l = &LHS(o, e);
        l->lt = lt;
        l->blob = b;
        l->len = len;
        l->blob_len = blen;
        l->user = u;
        l->pk_off = offs[sc.n];
        l->pk_len = (uint32_t)pkn;
        USER(o, u).n_lhs++;
        if (hidx_insert(o, &o->h_lhs, HK_LHS, e, hash_id(u, 0, pk, pkn)) || lheap_push(o, u, e))
            return -1;
        int rc = release_ooid(o, u, pk, pkn, lhs, rec->ts, key, klen);
        if (rc) return rc;
        for (size_t k = 0; k < sc.n; k++)
            if (scope_insert(o, u, sc.id[k].p, sc.id[k].n, e, lt)) return -1;
    }
    int64_t t = wadd(rec->ts, o->cfg.max_time_ms);
    if (rt_timer_register(o->op, t, key, klen)) return -1;
    int64_t horizon = wadd(lt, lhs_keep(o));
    if (horizon > t && rt_timer_register(o->op, horizon, key, klen)) return -1;
    return 0;
}

static int process_rhs(ij *o, const rt_record *rec)
{
    const void *rhs = rec->data;
    int kl = key_of(o, INFERRED_JOIN_IN_RHS, rhs);
    if (kl < 0) {
        count(o, C_WITHOUT_KEY);
        return rt_emit(o->op, INFERRED_JOIN_PORT_RHS_WITHOUT_KEY, rec);
    }
    const uint8_t *key = o->keybuf;
    size_t klen = (size_t)kl;
    if (late(o, rec->ts)) {
        count(o, C_LATE_RHS);
        return do_merge(o, INFERRED_JOIN_PORT_LATE, rec->ts, key, klen, NULL, rhs);
    }
    int64_t lt = o->cfg.lt(o->cfg.ctx, INFERRED_JOIN_IN_RHS, rhs);
    if (lt == 0) {
        count(o, C_ZERO_RHS);
        return rt_emit(o->op, INFERRED_JOIN_PORT_RHS_ZERO_LT, rec);
    }
    if (o->cfg.skip_join) {
        count(o, C_SKIP);
        return do_merge(o, INFERRED_JOIN_PORT_OUT, rec->ts, key, klen, NULL, rhs);
    }
    const char *fk = o->cfg.rhs_fk(o->cfg.ctx, rhs);
    bool has_fk = !inferred_join_blank(fk);
    uint32_t u;
    if (user_get(o, key, klen, 0, &u)) return -1;
    if (has_fk && u != NIL) {
        uint32_t e = lhs_find(o, u, fk, strlen(fk));
        if (e != NIL) {
            const void *lhs = unpack(o, o->cfg.lhs_desc, LHS(o, e).blob, LHS(o, e).len);
            if (!lhs) return -1;
            count(o, C_JOIN_ID);
            return do_merge(o, INFERRED_JOIN_PORT_OUT, rec->ts, key, klen, lhs, rhs);
        }
    }
    int64_t timer = wadd(rec->ts, o->cfg.max_ooo_ms);
    int64_t extra = 0; /* a second timer, for an ooIdJoin horizon past the first */
    bool has_extra = false;
    int rc = 0;
    if (has_fk) {
        int64_t due = wadd(lt, wmul(o->cfg.max_ooo_ms, o->cfg.mult));
        if (user_get(o, key, klen, 1, &u) ||
            rhs_add(o, u, RK_OOID, (const ProtobufCMessage *)rhs, fk, lt, due))
            return -1;
        if (due > timer) {
            extra = due;
            has_extra = true;
        }
    } else {
        const char *pk = o->cfg.rhs_pk(o->cfg.ctx, rhs, pb_arena_allocator(o->arena));
        if (inferred_join_blank(pk)) {
            count(o, C_WITHOUT_KEY);
            rc = rt_emit(o->op, INFERRED_JOIN_PORT_RHS_WITHOUT_KEY, rec);
        } else if (u != NIL && rhs_find(o, u, RK_CAND, pk, strlen(pk)) != NIL) {
            o->dup_pending++;
            count(o, C_DUP_PENDING);
            rc = rt_emit(o->op, INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING, rec);
        } else if (user_get(o, key, klen, 1, &u) ||
                   rhs_add(o, u, RK_CAND, (const ProtobufCMessage *)rhs, pk, lt, timer)) {
            return -1;
        }
        if (rc) return rc;
    }
    /* The reference registers the timer for every child that reaches this point, kept or not:
     * the timer's firing is also a cleanup pass, so the set of firings is kept the same. */
    if (rt_timer_register(o->op, timer, key, klen)) return -1;
    if (has_extra && rt_timer_register(o->op, extra, key, klen)) return -1;
    return 0;
}

static int ij_process(rt_op *op, int input, const rt_record *rec)
{
    ij *o = rt_op_self(op);
    int want = input == INFERRED_JOIN_IN_LHS ? o->cfg.lhs_type : o->cfg.rhs_type;
    if (rec->type != want || !rec->data)
        return rt_op_fail(op, "input %d: record type %d, expected %d", input, rec->type, want);
    int rc = input == INFERRED_JOIN_IN_LHS ? process_lhs(o, rec) : process_rhs(o, rec);
    scratch_release(o);
    return rc;
}

/* ============================== timers ============================== */

static int fire(ij *o, int64_t T, const uint8_t *key, size_t klen)
{
    uint32_t u;
    if (user_get(o, key, klen, 0, &u)) return -1;
    if (u == NIL) return 0;
    /* 1. the children due: candidates to infer now, expired ooIdJoin children for later */
    o->v_cand.n = o->v_ooid.n = 0;
    while (USER(o, u).rh_n && USER(o, u).rh[0].due <= T) {
        rref x = rheap_pop(o, u);
        if (x.idx >= o->rhs.cap) continue; /* released by its parent meanwhile */
        rhs_ent *r = &RHS(o, x.idx);
        if (r->seq != x.seq || (r->kind != RK_CAND && r->kind != RK_OOID)) continue;
        if (r->kind == RK_CAND) {
            if (hidx_remove(o, &o->h_rhs, HK_RHS, x.idx, hkey(o, HK_RHS, x.idx))) return -1;
            RHS(o, x.idx).kind = RK_DETACHED;
            if (vec_push(o, &o->v_cand, x.idx)) return -1;
        } else {
            if (ooid_unlink(o, x.idx) || vec_push(o, &o->v_ooid, x.idx)) return -1;
        }
    }
    for (uint32_t i = 0; i < o->v_cand.n; i++) {
        uint32_t ri = o->v_cand.a[i];
        const void *rhs = unpack(o, o->cfg.rhs_desc, RHS(o, ri).blob, RHS(o, ri).len);
        if (!rhs) return -1;
        int64_t e = infer_parent(o, u, rhs, RHS(o, ri).lt, key, klen);
        int rc;
        if (e < -1) return -1;
        if (e != (int64_t)NIL) {
            const void *lhs = unpack(o, o->cfg.lhs_desc, LHS(o, e).blob, LHS(o, e).len);
            if (!lhs) return -1;
            count(o, C_JOIN_INFERRED);
            rc = do_merge(o, INFERRED_JOIN_PORT_OUT, T, key, klen, lhs, rhs);
        } else if (o->cfg.right_outer) {
            count(o, C_RIGHT_OUTER);
            rc = do_merge(o, INFERRED_JOIN_PORT_OUT, T, key, klen, NULL, rhs);
        } else {
            count(o, C_DROPPED);
            rc = emit_raw(o, INFERRED_JOIN_PORT_DROPPED, o->cfg.rhs_type, T, rhs, key, klen);
        }
        pb_arena_reset(o->arena, ARENA_KEEP);
        rhs_release(o, ri);
        if (rc) return rc;
    }
    /* 2. parents past their horizon */
    if (lhs_cleanup(o, u, key, klen, wsub(T, lhs_keep(o)))) return -1;
    /* A parent restored from a checkpoint written before the horizon included maxOOO has no
     * timer at its horizon: give the oldest one a timer there (a duplicate (key, time) is a
     * no-op), so none outlives it. */
    if (USER(o, u).lh_n) {
        int64_t next = wadd(elt(o, lheap_top(&USER(o, u))), lhs_keep(o));
        if (next > T && rt_timer_register(o->op, next, key, klen)) return -1;
    }
    /* 3. children whose named parent never came */
    for (uint32_t i = 0; i < o->v_ooid.n; i++) {
        uint32_t ri = o->v_ooid.a[i];
        const void *rhs = unpack(o, o->cfg.rhs_desc, RHS(o, ri).blob, RHS(o, ri).len);
        if (!rhs) return -1;
        int rc;
        if (o->cfg.right_outer) {
            count(o, C_RIGHT_OUTER);
            rc = do_merge(o, INFERRED_JOIN_PORT_OUT, T, key, klen, NULL, rhs);
        } else {
            count(o, C_DROPPED);
            rc = emit_raw(o, INFERRED_JOIN_PORT_DROPPED, o->cfg.rhs_type, T, rhs, key, klen);
        }
        pb_arena_reset(o->arena, ARENA_KEEP);
        rhs_release(o, ri);
        if (rc) return rc;
    }
    o->v_cand.n = o->v_ooid.n = 0;
    if (!USER(o, u).n_lhs && !USER(o, u).n_rhs) return user_free(o, u);
    return 0;
}

static int ij_timer(rt_op *op, int64_t time, const uint8_t *key, size_t key_len)
{
    ij *o = rt_op_self(op);
    int rc = fire(o, time, key, key_len);
    scratch_release(o);
    return rc;
}

/* ============================== snapshot ============================== */

typedef struct snap_walk {
    rt_buf *out;
    const uint32_t *lmap;
    int failed;
} snap_walk;

static int snap_member(ij *o, void *arg, uint32_t e)
{
    snap_walk *w = arg;
    if (rt_buf_put_u32(w->out, w->lmap[e]) < 0) {
        w->failed = 1;
        return 1;
    }
    return 0;
}

static int cmp_seq(const void *a, const void *b, void *arg)
{
    ij *o = arg;
    uint64_t x = RHS(o, *(const uint32_t *)a).seq, y = RHS(o, *(const uint32_t *)b).seq;
    return x < y ? -1 : x > y;
}

static int ij_snapshot(rt_op *op, rt_buf *out)
{
    ij *o = rt_op_self(op);
    /* dense numbers for users and parents: transient, O(state) like the snapshot itself */
    uint32_t *umap = calloc(o->users.cap ? o->users.cap : 1, 4);
    uint32_t *lmap = calloc(o->lhs.cap ? o->lhs.cap : 1, 4);
    uint32_t *rl = malloc((o->rhs.live ? o->rhs.live : 1) * sizeof *rl);
    int rc = -1;
    if (!umap || !lmap || !rl) goto done;
    if (rt_buf_put_u32(out, SNAP_VERSION) || rt_buf_put_u64(out, o->next_seq) ||
        rt_buf_put_u32(out, o->users.live))
        goto done;
    uint32_t n = 0;
    for (uint32_t i = 0; i < o->users.cap; i++) {
        user_ent *us = &USER(o, i);
        if (!us->key) continue;
        umap[i] = n++;
        if (rt_buf_put_bytes(out, us->key, us->key_len)) goto done;
    }
    if (rt_buf_put_u32(out, o->lhs.live)) goto done;
    n = 0;
    for (uint32_t i = 0; i < o->lhs.cap; i++) {
        lhs_ent *l = &LHS(o, i);
        if (l->user == NIL) continue;
        lmap[i] = n++;
        if (rt_buf_put_u32(out, umap[l->user]) || rt_buf_put_i64(out, l->lt) ||
            rt_buf_put_u32(out, l->len) || rt_buf_put_u32(out, l->pk_off) ||
            rt_buf_put_u32(out, l->pk_len) || rt_buf_put_bytes(out, l->blob, l->blob_len))
            goto done;
    }
    if (rt_buf_put_u32(out, o->scopes.live + o->singles.live)) goto done;
    for (uint32_t i = 0; i < o->singles.cap; i++) {
        single_ent *x = &SINGLE(o, i);
        if (x->len == NIL) continue;
        if (rt_buf_put_u32(out, lmap[x->anchor]) || rt_buf_put_u32(out, x->off) ||
            rt_buf_put_u32(out, x->len) || rt_buf_put_u32(out, 0) || rt_buf_put_u32(out, 1) ||
            rt_buf_put_u32(out, lmap[x->anchor]))
            goto done;
    }
    for (uint32_t i = 0; i < o->scopes.cap; i++) {
        scope_ent *s = &SCOPE(o, i);
        if (s->len == NIL) continue;
        if (rt_buf_put_u32(out, lmap[s->anchor]) || rt_buf_put_u32(out, s->off) ||
            rt_buf_put_u32(out, s->len) || rt_buf_put_u32(out, s->content_count) ||
            rt_buf_put_u32(out, s->count))
            goto done;
        snap_walk w = {out, lmap, 0};
        seq_walk(o, s, s->count, snap_member, &w);
        if (w.failed) goto done;
    }
    /* children by arrival: restoring them in that order rebuilds each FK list as it was */
    n = 0;
    for (uint32_t i = 0; i < o->rhs.cap; i++)
        if (RHS(o, i).kind == RK_OOID || RHS(o, i).kind == RK_CAND) rl[n++] = i;
    qsort_r(rl, n, sizeof *rl, cmp_seq, o);
    if (rt_buf_put_u32(out, n)) goto done;
    for (uint32_t i = 0; i < n; i++) {
        rhs_ent *r = &RHS(o, rl[i]);
        if (rt_buf_put_u32(out, umap[r->user]) || rt_buf_put_u8(out, r->kind) ||
            rt_buf_put_i64(out, r->lt) || rt_buf_put_i64(out, r->due) ||
            rt_buf_put_u64(out, r->seq) || rt_buf_put_u32(out, r->len) ||
            rt_buf_put_u32(out, r->id_off) || rt_buf_put_u32(out, r->id_len) ||
            rt_buf_put_bytes(out, r->blob, r->blob_len))
            goto done;
    }
    rc = 0;
done:
    free(umap);
    free(lmap);
    free(rl);
    return rc;
}

static void state_clear(ij *o);

static int restore_fail(ij *o, const char *what)
{
    return rt_op_fail(o->op, "restore: join state snapshot %s", what);
}

static int ij_restore(rt_op *op, const uint8_t *bytes, size_t len)
{
    ij *o = rt_op_self(op);
    state_clear(o);
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t version, nu, nl, ns, nr;
    uint32_t *umap = NULL, *lmap = NULL;
    int rc = -1;
    if (rt_buf_read_u32(&r, &version) || rt_buf_read_u64(&r, &o->next_seq) ||
        rt_buf_read_u32(&r, &nu))
        return restore_fail(o, "is truncated (header)");
    if (version != SNAP_VERSION) return restore_fail(o, "has an unknown version");
    if (nu > rt_buf_reader_left(&r)) return restore_fail(o, "counts more users than its bytes");
    umap = malloc(((size_t)nu + 1) * 4);
    if (!umap) return rt_op_fail(op, "restore: out of memory");
    for (uint32_t i = 0; i < nu; i++) {
        const uint8_t *k;
        size_t kn;
        if (rt_buf_read_bytes(&r, &k, &kn) || kn > INFERRED_JOIN_KEY_MAX) {
            restore_fail(o, "has a truncated or oversized user key");
            goto done;
        }
        uint32_t u;
        if (user_get(o, k, kn, 1, &u)) goto done;
        umap[i] = u;
    }
    if (rt_buf_read_u32(&r, &nl) || nl > rt_buf_reader_left(&r)) {
        restore_fail(o, "is truncated (parents)");
        goto done;
    }
    lmap = malloc(((size_t)nl + 1) * 4);
    if (!lmap) {
        rt_op_fail(op, "restore: out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < nl; i++) {
        uint32_t uo, plen, pk_off, pk_len;
        int64_t lt;
        const uint8_t *b;
        size_t bn;
        if (rt_buf_read_u32(&r, &uo) || rt_buf_read_i64(&r, &lt) || rt_buf_read_u32(&r, &plen) ||
            rt_buf_read_u32(&r, &pk_off) || rt_buf_read_u32(&r, &pk_len) ||
            rt_buf_read_bytes(&r, &b, &bn) || uo >= nu || plen > bn || bn > UINT32_MAX / 2 ||
            (uint64_t)pk_off + pk_len > bn) {
            restore_fail(o, "has a truncated or inconsistent parent");
            goto done;
        }
        uint8_t *blob = mem_alloc(o, bn, &o->lhs_payload);
        if (!blob) goto done;
        memcpy(blob, b, bn);
        uint32_t e = pool_take(o, HK_LHS);
        if (e == NIL) {
            mem_free(o, blob, bn, &o->lhs_payload);
            goto done;
        }
        lhs_ent *l = &LHS(o, e);
        *l = (lhs_ent){.lt = lt,
                       .blob = blob,
                       .len = plen,
                       .blob_len = (uint32_t)bn,
                       .user = umap[uo],
                       .hnext = NIL,
                       .pk_off = pk_off,
                       .pk_len = pk_len};
        USER(o, umap[uo]).n_lhs++;
        lmap[i] = e;
        if (hidx_insert(o, &o->h_lhs, HK_LHS, e, hkey(o, HK_LHS, e)) || lheap_push(o, umap[uo], e))
            goto done;
    }
    if (rt_buf_read_u32(&r, &ns) || ns > rt_buf_reader_left(&r)) {
        restore_fail(o, "is truncated (scopes)");
        goto done;
    }
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t an, off, slen, cc, cnt;
        if (rt_buf_read_u32(&r, &an) || rt_buf_read_u32(&r, &off) || rt_buf_read_u32(&r, &slen) ||
            rt_buf_read_u32(&r, &cc) || rt_buf_read_u32(&r, &cnt) || an >= nl || cnt == 0 ||
            cc > cnt || slen == NIL || (uint64_t)off + slen > LHS(o, lmap[an]).blob_len ||
            (uint64_t)cnt * 4 > rt_buf_reader_left(&r)) {
            restore_fail(o, "has a truncated or inconsistent scope");
            goto done;
        }
        if (cnt == 1) { /* a single: its one member is its anchor */
            uint32_t m = 0;
            (void)rt_buf_read_u32(&r, &m);
            if (m != an) {
                restore_fail(o, "has a one-member scope anchored elsewhere");
                goto done;
            }
            uint32_t x = pool_take(o, HK_SINGLE);
            if (x == NIL) goto done;
            SINGLE(o, x) = (single_ent){NIL, lmap[an], off, slen, 0};
            if (hidx_insert(o, &o->h_scope, HK_SCOPE, x | STAG, hkey(o, HK_SCOPE, x | STAG)))
                goto done;
            continue;
        }
        uint32_t si = pool_take(o, HK_SCOPE);
        if (si == NIL) goto done;
        scope_ent *s = &SCOPE(o, si);
        s->anchor = lmap[an];
        s->off = off;
        s->len = slen;
        s->content_count = cc;
        s->count = 0;
        int64_t prev = INT64_MIN;
        for (uint32_t k = 0; k < cnt; k++) {
            uint32_t m = 0;
            (void)rt_buf_read_u32(&r, &m);
            if (m >= nl || elt(o, lmap[m]) < prev ||
                LHS(o, lmap[m]).user != LHS(o, s->anchor).user) {
                seq_free(o, s);
                pool_put(o, HK_SCOPE, si);
                restore_fail(o, "has a scope out of order or across users");
                goto done;
            }
            prev = elt(o, lmap[m]);
            if (s->count == 0) {
                s->m.one = lmap[m];
            } else if (seq_insert(o, s, s->count, lmap[m], prev)) {
                seq_free(o, s);
                pool_put(o, HK_SCOPE, si);
                goto done;
            }
            s->count++;
        }
        if (hidx_insert(o, &o->h_scope, HK_SCOPE, si, hkey(o, HK_SCOPE, si))) goto done;
    }
    if (rt_buf_read_u32(&r, &nr) || nr > rt_buf_reader_left(&r)) {
        restore_fail(o, "is truncated (children)");
        goto done;
    }
    for (uint32_t i = 0; i < nr; i++) {
        uint32_t uo, plen, id_off, id_len;
        uint8_t kind;
        int64_t lt, due;
        uint64_t seq;
        const uint8_t *b;
        size_t bn;
        if (rt_buf_read_u32(&r, &uo) || rt_buf_read_u8(&r, &kind) || rt_buf_read_i64(&r, &lt) ||
            rt_buf_read_i64(&r, &due) || rt_buf_read_u64(&r, &seq) || rt_buf_read_u32(&r, &plen) ||
            rt_buf_read_u32(&r, &id_off) || rt_buf_read_u32(&r, &id_len) ||
            rt_buf_read_bytes(&r, &b, &bn) || uo >= nu || (kind != RK_OOID && kind != RK_CAND) ||
            plen > bn || bn > UINT32_MAX / 2 || (uint64_t)id_off + id_len > bn) {
            restore_fail(o, "has a truncated or inconsistent child");
            goto done;
        }
        uint32_t u = umap[uo];
        uint32_t head =
            kind == RK_OOID ? rhs_find(o, u, RK_OOID, (const char *)b + id_off, id_len) : NIL;
        uint8_t *blob = mem_alloc(o, bn, &o->rhs_payload);
        if (!blob) goto done;
        memcpy(blob, b, bn);
        uint32_t ri = pool_take(o, HK_RHS);
        if (ri == NIL) {
            mem_free(o, blob, bn, &o->rhs_payload);
            goto done;
        }
        rhs_ent *x = &RHS(o, ri);
        *x = (rhs_ent){.lt = lt,
                       .due = due,
                       .seq = seq,
                       .blob = blob,
                       .len = plen,
                       .blob_len = (uint32_t)bn,
                       .user = u,
                       .hnext = NIL,
                       .id_off = id_off,
                       .id_len = id_len,
                       .next = NIL,
                       .prev = ri,
                       .kind = kind};
        USER(o, u).n_rhs++;
        if (head != NIL) {
            uint32_t tail = RHS(o, head).prev;
            RHS(o, tail).next = ri;
            RHS(o, ri).prev = tail;
            RHS(o, head).prev = ri;
        } else if (kind == RK_CAND &&
                   rhs_find(o, u, RK_CAND, (const char *)b + id_off, id_len) != NIL) {
            restore_fail(o, "has two pending children with one key");
            goto done;
        } else if (hidx_insert(o, &o->h_rhs, HK_RHS, ri, hkey(o, HK_RHS, ri))) {
            goto done;
        }
        rref ref = {due, seq, ri};
        if (rheap_push(o, u, ref)) goto done;
        if (seq >= o->next_seq) o->next_seq = seq + 1;
    }
    if (rt_buf_reader_left(&r)) {
        restore_fail(o, "has trailing bytes");
        goto done;
    }
    rc = 0;
done:
    free(umap);
    free(lmap);
    if (rc) state_clear(o);
    return rc;
}

/* ============================== lifecycle ============================== */

/* Frees all keyed state (not the scratch vectors' owner or the arena). */
static void state_clear(ij *o)
{
    for (uint32_t i = 0; i < o->scopes.cap; i++)
        if (SCOPE(o, i).len != NIL) seq_free(o, &SCOPE(o, i));
    for (uint32_t i = 0; i < o->lhs.cap; i++)
        if (LHS(o, i).user != NIL) mem_free(o, LHS(o, i).blob, LHS(o, i).blob_len, &o->lhs_payload);
    for (uint32_t i = 0; i < o->rhs.cap; i++)
        if (RHS(o, i).kind != RK_FREE)
            mem_free(o, RHS(o, i).blob, RHS(o, i).blob_len, &o->rhs_payload);
    for (uint32_t i = 0; i < o->users.cap; i++) {
        user_ent *us = &USER(o, i);
        if (!us->key) continue;
        mem_free(o, us->lh, (size_t)us->lh_cap * 4, &o->index_bytes);
        mem_free(o, us->rh, (size_t)us->rh_cap * sizeof(rref), &o->index_bytes);
        mem_free(o, us->key, us->key_len, &o->index_bytes);
    }
    const int kinds[] = {HK_USER, HK_LHS, HK_SCOPE, HK_SINGLE, HK_RHS};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        pool_drop(o, kinds[k]);
    hidx_free(o, &o->h_user);
    hidx_free(o, &o->h_lhs);
    hidx_free(o, &o->h_scope);
    hidx_free(o, &o->h_rhs);
}

static int ij_open(rt_op *op)
{
    ij *o = rt_op_self(op);
    o->op = op;
    rt_op_set_watermark_holdback(op, o->cfg.max_ooo_ms);
    for (int p = 1; p < INFERRED_JOIN_NPORTS; p++)
        if (o->port_names[p] && rt_op_set_port_name(op, p, o->port_names[p]))
            return rt_op_fail(op, "out of memory");
    for (int c = 0; c < C_N; c++)
        if (rt_op_counter(op, counter_names[c], &o->c[c])) return rt_op_fail(op, "out of memory");
    return 0;
}

static void ij_close(rt_op *op)
{
    ij *o = rt_op_self(op);
    o->op = op;
    state_clear(o);
    vec_release(o, &o->v_cand);
    vec_release(o, &o->v_ooid);
    vec_release(o, &o->v_rm);
    vec_release(o, &o->v_view);
    pb_arena_free(o->arena);
    free(o->keybuf);
    for (int p = 0; p < INFERRED_JOIN_NPORTS; p++)
        free(o->port_names[p]);
    if (o->cfg.ctx_free) o->cfg.ctx_free(o->cfg.ctx);
    free(o);
}

static const rt_op_vtbl ij_vtbl = {
    .open = ij_open,
    .process = ij_process,
    .on_timer = ij_timer,
    .snapshot = ij_snapshot,
    .restore = ij_restore,
    .close = ij_close,
};

int inferred_join_op_add(rt_graph *g, const char *uid, const inferred_join_config *cfg, rt_op **out)
{
    bool ok = cfg->lhs_desc && cfg->rhs_desc && cfg->key && cfg->lt && cfg->lhs_pk && cfg->rhs_fk &&
              cfg->rhs_pk && cfg->lhs_scopes && cfg->rhs_scopes && cfg->merge &&
              cfg->max_time_ms >= 0 && cfg->max_ooo_ms >= 0 && cfg->mult >= 1 &&
              (!cfg->content_filter || (cfg->lhs_content_ids_packed && cfg->rhs_content_ids));
    ij *o = ok ? calloc(1, sizeof *o) : NULL;
    if (!o) {
        if (cfg->ctx_free) cfg->ctx_free(cfg->ctx);
        return -1;
    }
    o->cfg = *cfg;
    o->lhs.free_head = o->scopes.free_head = o->singles.free_head = o->rhs.free_head =
        o->users.free_head = NIL;
    o->arena = pb_arena_new(64 << 10, (size_t)1 << 30);
    o->keybuf = malloc(INFERRED_JOIN_KEY_MAX);
    bool names_ok = true;
    for (int p = 1; p < INFERRED_JOIN_NPORTS; p++)
        if (cfg->port_names[p] && !(o->port_names[p] = strdup(cfg->port_names[p])))
            names_ok = false;
    for (int p = 0; p < INFERRED_JOIN_NPORTS; p++)
        o->cfg.port_names[p] = NULL; /* the copies above are the operator's */
    if (!o->arena || !o->keybuf || !names_ok ||
        rt_graph_add_op(g, uid, "inferred-join", &ij_vtbl, o, 2, INFERRED_JOIN_NPORTS, out)) {
        pb_arena_free(o->arena);
        free(o->keybuf);
        for (int p = 0; p < INFERRED_JOIN_NPORTS; p++)
            free(o->port_names[p]);
        if (cfg->ctx_free) cfg->ctx_free(cfg->ctx);
        free(o);
        return -1;
    }
    o->op = *out;
    return 0;
}

/* ============================== inspection ============================== */

void inferred_join_stats_get(rt_op *op, inferred_join_stats *st)
{
    ij *o = rt_op_self(op);
    *st = (inferred_join_stats){
        .users = o->users.live,
        .lhs_buffered = o->lhs.live,
        .rhs_buffered = o->rhs.live,
        .scopes = (uint64_t)o->scopes.live + o->singles.live,
        .index_bytes = o->index_bytes,
        .lhs_payload_bytes = o->lhs_payload,
        .rhs_payload_bytes = o->rhs_payload,
        .index_ops = o->index_ops,
        .pk_probes = o->pk_probes,
        .lhs_duplicates = o->dup_lhs,
        .rhs_duplicate_pending = o->dup_pending,
    };
}

int64_t inferred_join_index_bytes(rt_op *op)
{
    return ((ij *)rt_op_self(op))->index_bytes;
}

int64_t inferred_join_payload_bytes(rt_op *op)
{
    ij *o = rt_op_self(op);
    return o->lhs_payload + o->rhs_payload;
}

uint64_t inferred_join_lhs_count(rt_op *op)
{
    return ((ij *)rt_op_self(op))->lhs.live;
}

uint64_t inferred_join_rhs_count(rt_op *op)
{
    return ((ij *)rt_op_self(op))->rhs.live;
}

typedef struct scope_walk_arg {
    void (*fn)(void *arg, const char *pk, size_t pk_len, int64_t lt);
    void *arg;
} scope_walk_arg;

static int scope_walk_one(ij *o, void *arg, uint32_t e)
{
    scope_walk_arg *w = arg;
    lhs_ent *l = &LHS(o, e);
    w->fn(w->arg, (const char *)l->blob + l->pk_off, l->pk_len, l->lt);
    return 0;
}

size_t inferred_join_scope_walk(rt_op *op, const uint8_t *key, size_t key_len, const char *scope,
                                void (*fn)(void *arg, const char *pk, size_t pk_len, int64_t lt),
                                void *arg)
{
    ij *o = rt_op_self(op);
    uint32_t u = user_find(o, key, key_len, rt_hash_bytes(key, key_len));
    if (u == NIL) return 0;
    uint32_t si = scope_find(o, u, scope, strlen(scope));
    if (si == NIL) return 0;
    scope_walk_arg w = {fn, arg};
    if (si & STAG) {
        scope_walk_one(o, &w, SINGLE(o, si & ~STAG).anchor);
        return 1;
    }
    seq_walk(o, &SCOPE(o, si), SCOPE(o, si).count, scope_walk_one, &w);
    return SCOPE(o, si).count;
}
