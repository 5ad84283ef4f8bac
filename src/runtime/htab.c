#include "runtime/htab.h"

#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 8
#define MALLOC_OVERHEAD 16 /* what the allocator adds per block, roughly: counted, not measured */

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

static int64_t slots_charge(size_t n)
{
    return (int64_t)(n * sizeof(rt_hslot) + MALLOC_OVERHEAD);
}

/* ---- slot arrays ---- */

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

static int live(const rt_hentry *e)
{
    return e && e != RT_HTAB_TOMB;
}

static rt_hslot *alloc_slots(rt_htab *h, size_t n)
{
    if (charge(h, slots_charge(n)) < 0) return NULL;
    rt_hslot *s = calloc(n, sizeof *s);
    if (!s) release(h, slots_charge(n));
    return s;
}

static void drop_table(rt_htab *h, int t)
{
    if (h->t[t]) {
        free(h->t[t]);
        release(h, slots_charge(h->size[t]));
    }
    h->t[t] = NULL;
    h->size[t] = h->used[t] = h->tomb[t] = 0;
}

void rt_htab_clear(rt_htab *h)
{
    /* Entries are freed without reading their sizes: the table's whole charge (entries and
     * arrays, nothing else: entries made by rt_htab_entry_new are released by their owner) goes
     * back in one call. */
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < h->size[t]; i++)
            if (live(h->t[t][i].e)) free(h->t[t][i].e);
    for (int t = 0; t < 2; t++) {
        free(h->t[t]);
        h->t[t] = NULL;
        h->size[t] = h->used[t] = h->tomb[t] = 0;
    }
    if (h->bytes) release(h, h->bytes);
    h->rehash_idx = 0;
}

static int resizing(const rt_htab *h)
{
    return h->t[1] != NULL;
}

/* Puts (hash, e) into the first free or dead slot of its run in table t (which has room). */
static void place(rt_htab *h, int t, uint64_t hash, rt_hentry *e)
{
    size_t mask = h->size[t] - 1, i = hash & mask;
    rt_hslot *s = h->t[t];
    while (live(s[i].e))
        i = (i + 1) & mask;
    if (s[i].e == RT_HTAB_TOMB) h->tomb[t]--;
    s[i].hash = hash;
    s[i].e = e;
    h->used[t]++;
}

/* Moves a few entries of t[0] into t[1]; when t[0] is through, t[1] becomes t[0]. */
static void resize_step(rt_htab *h)
{
    if (!resizing(h) || h->iters) return;
    rt_hslot *old = h->t[0];
    int moved = 0;
    for (int visited = 0; visited < RT_HTAB_STEP_SLOTS && moved < RT_HTAB_STEP_MOVES &&
                          h->rehash_idx < h->size[0];
         visited++) {
        rt_hslot *s = &old[h->rehash_idx++];
        if (!live(s->e)) continue;
        place(h, 1, s->hash, s->e);
        /* the slot stays a tombstone so runs through it still reach the entries not yet moved */
        s->e = RT_HTAB_TOMB;
        h->used[0]--;
        h->tomb[0]++;
        moved++;
    }
    if (h->rehash_idx >= h->size[0]) {
        drop_table(h, 0);
        h->t[0] = h->t[1];
        h->size[0] = h->size[1];
        h->used[0] = h->used[1];
        h->tomb[0] = h->tomb[1];
        h->t[1] = NULL;
        h->size[1] = h->used[1] = h->tomb[1] = 0;
        h->rehash_idx = 0;
    }
}

/* The slot count for n entries: at most half full after the move, and at least 1/8 of the
 * current size so that the move (RT_HTAB_STEP_SLOTS visits per step) ends before the new array
 * passes 3/4 full however many inserts come meanwhile. */
static size_t target_size(const rt_htab *h, size_t n)
{
    size_t s = MIN_SLOTS;
    while (s < 2 * n || s < h->size[0] / 8)
        s *= 2;
    return s;
}

/* Starts moving into an array of n slots; on failure the current array simply stays. */
static int start_resize(rt_htab *h, size_t n)
{
    rt_hslot *s = alloc_slots(h, n);
    if (!s) return -1;
    h->t[1] = s;
    h->size[1] = n;
    h->used[1] = h->tomb[1] = 0;
    h->rehash_idx = 0;
    return 0;
}

static int over_full(const rt_htab *h, int t, size_t extra)
{
    return (h->used[t] + h->tomb[t] + extra) * 4 > h->size[t] * 3;
}

/* The slot of table t holding key, or NULL. */
static rt_hslot *lookup(rt_htab *h, int t, const void *key, size_t klen, uint64_t hash)
{
    size_t mask = h->size[t] - 1, i = hash & mask;
    rt_hslot *s = h->t[t];
    for (;; i = (i + 1) & mask) {
        rt_hentry *e = s[i].e;
        if (!e) return NULL;
        if (s[i].hash == hash && e != RT_HTAB_TOMB && e->klen == klen &&
            !memcmp(rt_hentry_key(e), key, klen))
            return &s[i];
    }
}

/* The slot holding entry e (of this hash), and its table. */
static rt_hslot *slot_of(rt_htab *h, const rt_hentry *e, uint64_t hash, int *table)
{
    for (int t = 0; t < 2; t++) {
        if (!h->size[t]) continue;
        size_t mask = h->size[t] - 1, i = hash & mask;
        rt_hslot *s = h->t[t];
        for (; s[i].e; i = (i + 1) & mask)
            if (s[i].e == e) {
                *table = t;
                return &s[i];
            }
    }
    return NULL;
}

rt_hentry *rt_htab_find(rt_htab *h, const void *key, size_t klen, uint64_t hash)
{
    resize_step(h);
    for (int t = 0; t < 2; t++) {
        if (!h->size[t]) continue;
        rt_hslot *s = lookup(h, t, key, klen, hash);
        if (s) return s->e;
    }
    return NULL;
}

rt_hentry *rt_htab_insert(rt_htab *h, const void *key, size_t klen, uint64_t hash, size_t vlen)
{
    if (klen > RT_HTAB_KEY_MAX || vlen > RT_HTAB_VAL_MAX) return NULL;
    if (!h->size[0]) {
        rt_hslot *s = alloc_slots(h, MIN_SLOTS);
        if (!s) return NULL;
        h->t[0] = s;
        h->size[0] = MIN_SLOTS;
    }
    if (resizing(h) && over_full(h, 1, 1) && !h->iters) {
        /* cannot happen with the step sizes above; finish the move rather than overfill */
        while (resizing(h))
            resize_step(h);
    }
    if (!resizing(h) && over_full(h, 0, 1)) start_resize(h, target_size(h, h->used[0] + 1));
    resize_step(h);
    int t = resizing(h) ? 1 : 0;
    if (h->used[t] + h->tomb[t] + 1 >= h->size[t]) {
        /* only while an iterator holds the move: the array is full and cannot grow now */
        if (!h->tomb[t]) return NULL;
    }
    rt_hentry *e = rt_htab_entry_new(h, key, klen, vlen);
    if (!e) return NULL;
    place(h, t, hash, e);
    return e;
}

rt_hentry *rt_htab_entry_new(rt_htab *h, const void *key, size_t klen, size_t vlen)
{
    if (klen > RT_HTAB_KEY_MAX || vlen > RT_HTAB_VAL_MAX) return NULL;
    if (charge(h, entry_charge(klen, vlen)) < 0) return NULL;
    rt_hentry *e = malloc(entry_size(klen, vlen));
    if (!e) {
        release(h, entry_charge(klen, vlen));
        return NULL;
    }
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    if (klen) memcpy(rt_hentry_key(e), key, klen);
    memset(rt_hentry_val(e), 0, vlen);
    return e;
}

rt_hentry *rt_htab_resize_val(rt_htab *h, rt_hentry *e, uint64_t hash, size_t vlen)
{
    if (vlen == e->vlen) return e;
    if (vlen > RT_HTAB_VAL_MAX) return NULL;
    int64_t delta = entry_charge(e->klen, vlen) - entry_charge(e->klen, e->vlen);
    if (delta > 0 && charge(h, delta) < 0) return NULL;
    int t;
    rt_hslot *s = slot_of(h, e, hash, &t);
    size_t old = e->vlen;
    rt_hentry *n = realloc(e, entry_size(e->klen, vlen));
    if (!n) {
        if (delta > 0) release(h, delta);
        return NULL;
    }
    if (delta < 0) release(h, -delta);
    if (s) s->e = n;
    n->vlen = (uint32_t)vlen;
    if (vlen > old) memset((uint8_t *)rt_hentry_val(n) + old, 0, vlen - old);
    return n;
}

/* Empties slot i of table t: shifts the rest of the run back where each entry may sit (linear
 * probing's deletion without tombstones), or leaves a tombstone where slots must not move. */
static void vacate(rt_htab *h, int t, size_t i)
{
    rt_hslot *s = h->t[t];
    h->used[t]--;
    if (h->iters || (t == 0 && resizing(h)) || h->tomb[t]) {
        /* a tombstone: an iterator or the move walks the array by index, and a run that
         * already holds tombstones is left for the next resize to rebuild */
        s[i].e = RT_HTAB_TOMB;
        h->tomb[t]++;
        return;
    }
    size_t mask = h->size[t] - 1;
    for (size_t j = (i + 1) & mask; s[j].e; j = (j + 1) & mask) {
        size_t home = s[j].hash & mask;
        /* s[j] may move into the hole at i when its home is not in (i, j] cyclically */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        s[i] = s[j];
        i = j;
    }
    s[i].e = NULL;
    s[i].hash = 0;
}

void rt_htab_unlink(rt_htab *h, rt_hentry *e, uint64_t hash)
{
    int t;
    rt_hslot *s = slot_of(h, e, hash, &t);
    if (!s) return;
    vacate(h, t, (size_t)(s - h->t[t]));
    if (!h->used[0] && !h->used[1] && !h->iters) {
        /* empty: drop the arrays now instead of shrinking step by step */
        drop_table(h, 0);
        drop_table(h, 1);
        h->rehash_idx = 0;
        return;
    }
    if (!resizing(h) && h->size[0] > MIN_SLOTS && h->used[0] < h->size[0] / 8)
        start_resize(h, target_size(h, h->used[0]));
    resize_step(h);
}

void rt_htab_release(rt_htab *h, rt_hentry *e)
{
    release(h, entry_charge(e->klen, e->vlen));
    free(e);
}

void rt_htab_remove(rt_htab *h, rt_hentry *e, uint64_t hash)
{
    rt_htab_unlink(h, e, hash);
    rt_htab_release(h, e);
}

/* ---- iteration ---- */

void rt_htab_iter_begin(rt_htab *h, rt_htab_iter *it)
{
    it->h = h;
    it->table = 0;
    it->slot = 0;
    h->iters++;
}

rt_hentry *rt_htab_iter_next(rt_htab_iter *it)
{
    rt_htab *h = it->h;
    while (it->table < 2) {
        if (it->slot >= h->size[it->table]) {
            it->table++;
            it->slot = 0;
            continue;
        }
        rt_hentry *e = h->t[it->table][it->slot++].e;
        if (live(e)) return e;
    }
    return NULL;
}

void rt_htab_iter_end(rt_htab_iter *it)
{
    if (it->h->iters) it->h->iters--;
}
