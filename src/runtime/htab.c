#include "runtime/htab.h"

#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS 8
#define MALLOC_OVERHEAD 16 /* what the allocator adds per block, roughly: counted, not measured */
#define EMPTY_VISITS 10    /* empty buckets a rehash step may skip */

/* ---- hashing: multiply-fold over 16-byte blocks, fixed seed ---- */

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t fold(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rotl(uint64_t x, int r)
{
    return x << r | x >> (64 - r);
}

uint64_t rt_hash_bytes(const void *p, size_t n)
{
    static const uint64_t k0 = 0x8f2d6a1b5c3e9d07ull, k1 = 0xc13fa9a902a6328full,
                          k2 = 0x91e10da5c79e7b1dull, k3 = 0x2545f4914f6cdd1dull;
    const uint8_t *s = p;
    uint64_t h = k0 ^ (n * k1);
    /* Folding the accumulator in with xor and a rotation (not into the product) keeps a zero
     * product from erasing what came before. */
    while (n >= 16) {
        h = rotl(h ^ fold(load64(s) ^ k1, load64(s + 8) ^ k2), 29) * k3;
        s += 16;
        n -= 16;
    }
    if (n) {
        uint64_t a = 0, b = 0;
        if (n >= 8) {
            a = load64(s);
            memcpy(&b, s + 8, n - 8);
        } else {
            memcpy(&a, s, n);
        }
        h = rotl(h ^ fold(a ^ k1, b ^ k2 ^ n), 29) * k3;
    }
    return fold(h ^ k0, k1) ^ h;
}

/* ---- accounting ---- */

static int charge(rt_htab *h, int64_t n)
{
    if (h->charge && h->charge(h->charge_ctx, n) < 0) return -1;
    h->bytes += n;
    return 0;
}

static void release(rt_htab *h, int64_t n)
{
    if (h->charge) h->charge(h->charge_ctx, -n);
    h->bytes -= n;
}

static size_t entry_size(size_t klen, size_t vlen)
{
    return sizeof(rt_hentry) + ((klen + 7) & ~(size_t)7) + vlen;
}

static int64_t entry_charge(size_t klen, size_t vlen)
{
    return (int64_t)(entry_size(klen, vlen) + MALLOC_OVERHEAD);
}

static int64_t buckets_charge(size_t n)
{
    return (int64_t)(n * sizeof(rt_hentry *) + MALLOC_OVERHEAD);
}

/* ---- tables ---- */

void rt_htab_init(rt_htab *h, rt_htab_charge_fn fn, void *ctx)
{
    memset(h, 0, sizeof *h);
    h->charge = fn;
    h->charge_ctx = ctx;
}

size_t rt_htab_count(const rt_htab *h)
{
    return h->used[0] + h->used[1];
}

static rt_hentry **alloc_buckets(rt_htab *h, size_t n)
{
    if (charge(h, buckets_charge(n)) < 0) return NULL;
    rt_hentry **b = calloc(n, sizeof *b);
    if (!b) release(h, buckets_charge(n));
    return b;
}

static void free_buckets(rt_htab *h, rt_hentry **b, size_t n)
{
    if (!b) return;
    free(b);
    release(h, buckets_charge(n));
}

void rt_htab_clear(rt_htab *h)
{
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < h->size[t]; i++) {
            rt_hentry *e = h->t[t][i];
            while (e) {
                rt_hentry *next = e->next;
                release(h, entry_charge(e->klen, e->vlen));
                free(e);
                e = next;
            }
        }
        free_buckets(h, h->t[t], h->size[t]);
        h->t[t] = NULL;
        h->size[t] = h->used[t] = 0;
    }
    h->rehash_idx = 0;
    for (rt_htab_iter *it = h->iters; it; it = it->link)
        it->next = NULL, it->table = 2;
}

static int rehashing(const rt_htab *h)
{
    return h->t[1] != NULL;
}

/* Moves one non-empty bucket (skipping at most EMPTY_VISITS empty ones) from t[0] to t[1]. */
static void rehash_step(rt_htab *h)
{
    if (!rehashing(h) || h->iters) return;
    int empty = 0;
    while (h->rehash_idx < h->size[0] && !h->t[0][h->rehash_idx]) {
        h->rehash_idx++;
        if (++empty >= EMPTY_VISITS) break;
    }
    if (h->rehash_idx < h->size[0] && h->t[0][h->rehash_idx]) {
        rt_hentry *e = h->t[0][h->rehash_idx];
        size_t mask = h->size[1] - 1;
        while (e) {
            rt_hentry *next = e->next;
            size_t i = e->hash & mask;
            e->next = h->t[1][i];
            h->t[1][i] = e;
            h->used[0]--;
            h->used[1]++;
            e = next;
        }
        h->t[0][h->rehash_idx++] = NULL;
    }
    if (h->rehash_idx >= h->size[0]) {
        free_buckets(h, h->t[0], h->size[0]);
        h->t[0] = h->t[1];
        h->size[0] = h->size[1];
        h->used[0] = h->used[1];
        h->t[1] = NULL;
        h->size[1] = h->used[1] = 0;
        h->rehash_idx = 0;
    }
}

/* Starts moving to a table of n buckets; on failure the old table simply stays (longer chains). */
static void start_rehash(rt_htab *h, size_t n)
{
    rt_hentry **b = alloc_buckets(h, n);
    if (!b) return;
    h->t[1] = b;
    h->size[1] = n;
    h->used[1] = 0;
    h->rehash_idx = 0;
}

rt_hentry *rt_htab_find(rt_htab *h, const void *key, size_t klen, uint64_t hash)
{
    rehash_step(h);
    for (int t = 0; t < 2; t++) {
        if (!h->size[t]) continue;
        for (rt_hentry *e = h->t[t][hash & (h->size[t] - 1)]; e; e = e->next)
            if (e->hash == hash && e->klen == klen && !memcmp(rt_hentry_key(e), key, klen))
                return e;
    }
    return NULL;
}

rt_hentry *rt_htab_insert(rt_htab *h, const void *key, size_t klen, uint64_t hash, size_t vlen)
{
    if (klen > RT_HTAB_KEY_MAX || vlen > RT_HTAB_VAL_MAX) return NULL;
    if (!h->size[0]) {
        rt_hentry **b = alloc_buckets(h, MIN_BUCKETS);
        if (!b) return NULL;
        h->t[0] = b;
        h->size[0] = MIN_BUCKETS;
    } else if (!rehashing(h) && h->used[0] >= h->size[0] && h->size[0] <= SIZE_MAX / 16) {
        start_rehash(h, h->size[0] * 2);
    }
    rehash_step(h);
    if (charge(h, entry_charge(klen, vlen)) < 0) return NULL;
    rt_hentry *e = malloc(entry_size(klen, vlen));
    if (!e) {
        release(h, entry_charge(klen, vlen));
        return NULL;
    }
    e->hash = hash;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    if (klen) memcpy(rt_hentry_key(e), key, klen);
    memset(rt_hentry_val(e), 0, vlen);
    int t = rehashing(h) ? 1 : 0;
    size_t i = hash & (h->size[t] - 1);
    e->next = h->t[t][i];
    h->t[t][i] = e;
    h->used[t]++;
    return e;
}

/* The link that points at e, and the table holding it. */
static rt_hentry **link_of(rt_htab *h, rt_hentry *e, int *table)
{
    for (int t = 0; t < 2; t++) {
        if (!h->size[t]) continue;
        for (rt_hentry **pp = &h->t[t][e->hash & (h->size[t] - 1)]; *pp; pp = &(*pp)->next)
            if (*pp == e) {
                *table = t;
                return pp;
            }
    }
    return NULL;
}

rt_hentry *rt_htab_resize_val(rt_htab *h, rt_hentry *e, size_t vlen)
{
    if (vlen == e->vlen) return e;
    if (vlen > RT_HTAB_VAL_MAX) return NULL;
    int64_t delta = entry_charge(e->klen, vlen) - entry_charge(e->klen, e->vlen);
    if (delta > 0 && charge(h, delta) < 0) return NULL;
    int t;
    rt_hentry **pp = link_of(h, e, &t);
    size_t old = e->vlen;
    rt_hentry *n = realloc(e, entry_size(e->klen, vlen));
    if (!n) {
        if (delta > 0) release(h, delta);
        return NULL;
    }
    if (delta < 0) release(h, -delta);
    *pp = n;
    n->vlen = (uint32_t)vlen;
    if (vlen > old) memset((uint8_t *)rt_hentry_val(n) + old, 0, vlen - old);
    for (rt_htab_iter *it = h->iters; it; it = it->link)
        if (it->next == e) it->next = n;
    return n;
}

void rt_htab_unlink(rt_htab *h, rt_hentry *e)
{
    int t;
    rt_hentry **pp = link_of(h, e, &t);
    if (!pp) return;
    *pp = e->next;
    h->used[t]--;
    for (rt_htab_iter *it = h->iters; it; it = it->link)
        if (it->next == e) it->next = e->next;
    if (!h->used[0] && !h->used[1] && !h->iters) {
        /* empty: drop the buckets now instead of shrinking step by step */
        for (int k = 0; k < 2; k++) {
            free_buckets(h, h->t[k], h->size[k]);
            h->t[k] = NULL;
            h->size[k] = 0;
        }
        h->rehash_idx = 0;
        return;
    }
    if (!rehashing(h) && h->size[0] > MIN_BUCKETS && h->used[0] < h->size[0] / 8) {
        size_t n = MIN_BUCKETS;
        while (n < h->used[0] * 2)
            n *= 2;
        start_rehash(h, n);
    }
    rehash_step(h);
}

void rt_htab_release(rt_htab *h, rt_hentry *e)
{
    release(h, entry_charge(e->klen, e->vlen));
    free(e);
}

void rt_htab_remove(rt_htab *h, rt_hentry *e)
{
    rt_htab_unlink(h, e);
    rt_htab_release(h, e);
}

/* ---- iteration ---- */

void rt_htab_iter_begin(rt_htab *h, rt_htab_iter *it)
{
    it->h = h;
    it->table = 0;
    it->bucket = 0;
    it->next = NULL;
    it->link = h->iters;
    h->iters = it;
}

rt_hentry *rt_htab_iter_next(rt_htab_iter *it)
{
    rt_htab *h = it->h;
    while (!it->next) {
        if (it->table > 1) return NULL;
        if (it->bucket >= h->size[it->table]) {
            it->table++;
            it->bucket = 0;
            continue;
        }
        it->next = h->t[it->table][it->bucket++];
    }
    rt_hentry *e = it->next;
    it->next = e->next;
    return e;
}

void rt_htab_iter_end(rt_htab_iter *it)
{
    rt_htab *h = it->h;
    for (rt_htab_iter **pp = &h->iters; *pp; pp = &(*pp)->link)
        if (*pp == it) {
            *pp = it->link;
            break;
        }
}
