/* The event-time timer service of one operator: keyed timers, deduplicated per (key, time),
 * popped in ascending (time, registration) order.
 *
 * A hash table from (time, key) to the timer's entry, plus the order: a few FIFO lanes, each
 * sorted, that take the timers registered in ascending time (the usual case: ts + a constant per
 * operator, or a few such sequences interleaved), and a binary min-heap of (time, seq, entry)
 * for the rest. Register is one hash probe plus an O(1) append (O(log n) for the heap); pop is
 * O(1) from a lane (O(log n) from the heap), touching only the contiguous item arrays; a
 * duplicate register is one hash probe; delete is a hash probe that marks the entry dead (its
 * item goes when it reaches the front, or when the dead outnumber the live and everything is
 * compacted: O(1) amortized). Each timer costs one allocation of about 48 + key_len bytes, a
 * 16-byte slot at a load between 3/8 and 3/4 and a 24-byte item, all charged through the charge
 * callback. Operators reach their service through operator.h (rt_timer_register); this
 * interface is the graph's, and the tests'. Not thread-safe; one owner. */
#ifndef LOGPROC_TIMERS_H
#define LOGPROC_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/htab.h"

typedef struct rt_timers rt_timers;

/* Creates an empty service whose allocations are charged through charge (NULL: not accounted).
 * Returns 0 or -1 (out of memory). */
int rt_timers_new(rt_htab_charge_fn charge, void *ctx, rt_timers **out);
/* Frees every pending timer (releasing its charge) and the service. NULL is a no-op. */
void rt_timers_free(rt_timers *t);

/* Adds timer (key, time); key is copied. Returns 1 if added, 0 if it was already pending, -1 if
 * the charge was refused or memory ran out. */
int rt_timers_register(rt_timers *t, int64_t time, const void *key, size_t key_len);
/* Adds timer (key, time) that the caller knows is not pending, without a hash entry: it fires
 * and snapshots as any other but cannot be deleted (rt_timers_delete does not see it). Returns 1,
 * or -1 as rt_timers_register. */
int rt_timers_register_new(rt_timers *t, int64_t time, const void *key, size_t key_len);
/* Removes timer (key, time). Returns 1 if it was pending, 0 if not. */
int rt_timers_delete(rt_timers *t, int64_t time, const void *key, size_t key_len);
size_t rt_timers_count(const rt_timers *t);
/* The earliest pending time, or RT_TIME_MAX with 0 returned when none is pending (1 otherwise). */
int rt_timers_peek(const rt_timers *t, int64_t *time);

/* A timer taken out of the service: valid until rt_timers_done. */
typedef struct rt_timer_fired {
    int64_t time;
    const uint8_t *key;
    size_t key_len;
    void *entry_; /* private */
} rt_timer_fired;

/* Takes the earliest timer if its time is <= limit. Returns 1 with *f filled, or 0 when none is
 * due. The timer is no longer pending: registering the same (key, time) again creates a new one.
 * Every 1 must be followed by rt_timers_done(t, f) once the caller is through with the key. */
int rt_timers_pop_due(rt_timers *t, int64_t limit, rt_timer_fired *f);
void rt_timers_done(rt_timers *t, rt_timer_fired *f);

/* Appends every pending timer to out in firing order: a version, a count, then (time, key) per
 * timer. Returns 0 or -1 (out's limit). Cost: O(n log n) (a sort of a pointer array). */
int rt_timers_snapshot(const rt_timers *t, rt_buf *out);
/* Adds the timers of a snapshot (usually into an empty service), preserving their firing order.
 * Returns 0, or -1 with err naming the problem (version, truncation, memory). */
int rt_timers_restore(rt_timers *t, const uint8_t *bytes, size_t len, char *err, size_t errlen);

#endif
