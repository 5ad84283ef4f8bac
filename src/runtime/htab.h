/* A byte-keyed hash table with incremental resizing: the storage under keyed state (state.h),
 * the timer service (timers.h) and the metrics registry.
 *
 * Open addressing with linear probing over an array of 16-byte slots {hash, entry pointer},
 * power-of-two sizes, at most 3/4 full. Each entry is one allocation holding an 8-byte header,
 * the key and the value (8-byte aligned). The slot keeps the whole 64-bit hash, so a probe
 * compares hashes in the slot array and reads an entry only on a match: a hit costs about one
 * slot-line miss and one entry miss, a miss one slot-line miss. Entries never move in memory
 * (only their slot pointers do), so a pointer to an entry or its value stays valid until that
 * entry is removed or resized.
 *
 * Growing (and shrinking below 1/8 full) allocates the new slot array, then each later
 * find/insert/remove moves a few slots (at most RT_HTAB_STEP_SLOTS visited, RT_HTAB_STEP_MOVES
 * entries moved), reading only the slot arrays, so no single call pays for a whole resize (the
 * Redis dict model); meanwhile a lookup probes both arrays. A removal shifts the rest of its
 * probe run back (no tombstones), except in the array a resize is emptying and while an iterator
 * is live: there it leaves a tombstone, which the next resize drops. Every allocation is charged
 * through the table's charge callback first, so a table can be held to a memory budget.
 *
 * Not thread-safe; one owner. Keys up to RT_HTAB_KEY_MAX bytes, values up to RT_HTAB_VAL_MAX. */
#ifndef LOGPROC_HTAB_H
#define LOGPROC_HTAB_H

#include <stddef.h>
#include <stdint.h>

#define RT_HTAB_KEY_MAX 65535u
#define RT_HTAB_VAL_MAX (1u << 30)
#define RT_HTAB_STEP_SLOTS 64 /* slots one resize step visits at most */
#define RT_HTAB_STEP_MOVES 4  /* entries one resize step moves at most */

typedef struct rt_hentry {
    uint32_t klen;
    uint32_t vlen;
    /* key bytes, padding to 8, value bytes */
} rt_hentry;

/* A slot: e is NULL when empty, RT_HTAB_TOMB when its entry left while slots could not shift. */
typedef struct rt_hslot {
    uint64_t hash;
    rt_hentry *e;
} rt_hslot;

#define RT_HTAB_TOMB ((rt_hentry *)(uintptr_t)1)

/* Charges (delta > 0) or releases (delta < 0) bytes; returns 0, or -1 to refuse a charge. */
typedef int (*rt_htab_charge_fn)(void *ctx, int64_t delta);

typedef struct rt_htab {
    rt_hslot *t[2];    /* t[1] exists while a resize moves t[0]'s entries into it */
    size_t size[2];    /* slots; 0 when absent */
    size_t used[2];    /* live entries */
    size_t tomb[2];    /* tombstones */
    size_t rehash_idx; /* next slot of t[0] to move while t[1] exists */
    unsigned iters;    /* live iterators: no slot moves while there are any */
    rt_htab_charge_fn charge;
    void *charge_ctx;
    int64_t bytes; /* bytes charged: entries plus slot arrays */
} rt_htab;

typedef struct rt_htab_iter {
    rt_htab *h;
    int table;
    size_t slot;
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
/* Frees every entry and the slot arrays, releasing their charge. The table is empty and usable;
 * live iterators see the end. O(slots). */
void rt_htab_clear(rt_htab *h);
size_t rt_htab_count(const rt_htab *h);

/* The entry with this key, or NULL. hash is rt_hash_bytes(key, klen). O(1) expected. */
rt_hentry *rt_htab_find(rt_htab *h, const void *key, size_t klen, uint64_t hash);
/* Inserts a new entry (the key must be absent) with vlen value bytes, zeroed. Returns it, or
 * NULL if over the size maxima, the charge is refused or malloc fails (or, while an iterator is
 * live, the slot arrays are full: they cannot be resized then). O(1) expected. */
rt_hentry *rt_htab_insert(rt_htab *h, const void *key, size_t klen, uint64_t hash, size_t vlen);
/* An entry (key copied, vlen value bytes zeroed) charged like an inserted one but not in the
 * table: for owners that keep some entries elsewhere. Free it with rt_htab_release. NULL on the
 * size maxima, a refused charge or malloc failure. */
rt_hentry *rt_htab_entry_new(rt_htab *h, const void *key, size_t klen, size_t vlen);
/* Gives e (whose key hashes to hash) a value of vlen bytes (the first min(old, new) bytes kept,
 * the rest zeroed). Returns the entry, which may have moved, or NULL (e unchanged) if the
 * charge or realloc fails. */
rt_hentry *rt_htab_resize_val(rt_htab *h, rt_hentry *e, uint64_t hash, size_t vlen);
/* Unlinks e (whose key hashes to hash) from the table without freeing it (the caller frees it
 * with rt_htab_release). */
void rt_htab_unlink(rt_htab *h, rt_hentry *e, uint64_t hash);
/* Frees an unlinked entry and releases its charge. */
void rt_htab_release(rt_htab *h, rt_hentry *e);
/* Unlinks and frees e (whose key hashes to hash). */
void rt_htab_remove(rt_htab *h, rt_hentry *e, uint64_t hash);

/* Iteration visits every entry present from begin to end once, in no defined order. While an
 * iterator is live no entry changes slot (resize steps and back-shifts wait); removing or
 * resizing any entry is allowed; an entry inserted meanwhile may or may not be visited. Every
 * begin needs an end. */
void rt_htab_iter_begin(rt_htab *h, rt_htab_iter *it);
rt_hentry *rt_htab_iter_next(rt_htab_iter *it);
void rt_htab_iter_end(rt_htab_iter *it);

#endif
