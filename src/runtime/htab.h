/* A byte-keyed hash table with incremental rehashing: the storage under keyed state (state.h),
 * the timer service (timers.h) and the metrics registry.
 *
 * Chained buckets, power-of-two sizes, load factor 1. Growing (and shrinking below 1/8 full)
 * allocates the new bucket array and then moves one old bucket per later find/insert/remove, so
 * no single call pays for a whole resize (the Redis dict model). Each entry is one allocation
 * holding the header, the key and the value (8-byte aligned): entries never move during a
 * rehash, so a pointer to an entry or its value stays valid until that entry is removed or
 * resized. Every allocation is charged through the table's charge callback first, so a table
 * can be held to a memory budget.
 *
 * Not thread-safe; one owner. Keys up to RT_HTAB_KEY_MAX bytes, values up to RT_HTAB_VAL_MAX. */
#ifndef LOGPROC_HTAB_H
#define LOGPROC_HTAB_H

#include <stddef.h>
#include <stdint.h>

#define RT_HTAB_KEY_MAX 65535u
#define RT_HTAB_VAL_MAX (1u << 30)

typedef struct rt_hentry {
    struct rt_hentry *next;
    uint64_t hash;
    uint32_t klen;
    uint32_t vlen;
    /* key bytes, padding to 8, value bytes */
} rt_hentry;

/* Charges (delta > 0) or releases (delta < 0) bytes; returns 0, or -1 to refuse a charge. */
typedef int (*rt_htab_charge_fn)(void *ctx, int64_t delta);

typedef struct rt_htab {
    rt_hentry **t[2];
    size_t size[2]; /* buckets; 0 when absent */
    size_t used[2];
    size_t rehash_idx;          /* next bucket of t[0] to move while t[1] exists */
    struct rt_htab_iter *iters; /* live iterators: rehash steps wait while there are any */
    rt_htab_charge_fn charge;
    void *charge_ctx;
    int64_t bytes; /* bytes charged: entries plus bucket arrays */
} rt_htab;

typedef struct rt_htab_iter {
    rt_htab *h;
    int table;
    size_t bucket;
    rt_hentry *next;
    struct rt_htab_iter *link; /* the table's list of live iterators */
} rt_htab_iter;

/* The hash of n bytes (a fixed seed, so iteration orders repeat from run to run). */
uint64_t rt_hash_bytes(const void *p, size_t n);

static inline uint8_t *rt_hentry_key(rt_hentry *e)
{
    return (uint8_t *)(e + 1);
}
static inline void *rt_hentry_val(rt_hentry *e)
{
    return (uint8_t *)(e + 1) + (((size_t)e->klen + 7) & ~(size_t)7);
}

/* Initialises an empty table (allocates nothing); charge may be NULL (no accounting). */
void rt_htab_init(rt_htab *h, rt_htab_charge_fn charge, void *ctx);
/* Frees every entry and the buckets, releasing their charge. The table is empty and usable. */
void rt_htab_clear(rt_htab *h);
size_t rt_htab_count(const rt_htab *h);

/* The entry with this key, or NULL. hash is rt_hash_bytes(key, klen). O(1) expected. */
rt_hentry *rt_htab_find(rt_htab *h, const void *key, size_t klen, uint64_t hash);
/* Inserts a new entry (the key must be absent) with vlen value bytes, zeroed. Returns it, or
 * NULL if over the size maxima, the charge is refused or malloc fails. */
rt_hentry *rt_htab_insert(rt_htab *h, const void *key, size_t klen, uint64_t hash, size_t vlen);
/* Gives e a value of vlen bytes (the first min(old, new) bytes kept, the rest zeroed). Returns
 * the entry, which may have moved, or NULL (e unchanged) if the charge or realloc fails. */
rt_hentry *rt_htab_resize_val(rt_htab *h, rt_hentry *e, size_t vlen);
/* Unlinks e from the table without freeing it (the caller frees with rt_htab_release). */
void rt_htab_unlink(rt_htab *h, rt_hentry *e);
/* Frees an unlinked entry and releases its charge. */
void rt_htab_release(rt_htab *h, rt_hentry *e);
/* Unlinks and frees e. */
void rt_htab_remove(rt_htab *h, rt_hentry *e);

/* Iteration visits every entry present from begin to end once, in no defined order. While an
 * iterator is live the table does not rehash; removing or resizing any entry is allowed (live
 * iterators are fixed up); an entry inserted meanwhile may or may not be visited. Every begin
 * needs an end. */
void rt_htab_iter_begin(rt_htab *h, rt_htab_iter *it);
rt_hentry *rt_htab_iter_next(rt_htab_iter *it);
void rt_htab_iter_end(rt_htab_iter *it);

#endif
