/* The sliding hourly and daily counters (spec/other-jobs.md §B.7: SlidingHourlyCounter,
 * SlidingDailyCounter): one operator per table and kind, keyed by the table's grouping key.
 *
 * Each event adds its count to the key's window ending at the next emit boundary strictly after
 * its event time (wEnd = t - t mod E + E) and registers timers at t - t mod E + k*unit + E for
 * k = 0 and every bucket (moved to ts - ts mod E + E when that is earlier than the record time).
 * At a timer T the key's windows give, per bucket b, the sum of the windows with
 * 0 <= trunc((T - wEnd) / unit) < b; windows with that quotient >= the largest bucket are
 * dropped; one REC_COUNTER_WINDOW result per bucket is emitted with ts = T, zero included (the
 * zero becomes an HDEL downstream).
 *
 * State: one rt_kv entry per key holding its live windows as a sorted array of (wEnd, count)
 * pairs (16 bytes each; at most largest bucket * unit / E + unit / E + 1 of them: 6 hourly at
 * E = 15 min, 187 daily), so everything snapshots with the graph. Cost per event: one hash probe
 * and an append or in-place add (events arrive roughly in time order, so the window is found
 * from the end), plus 2 (hourly) or 4 (daily) timer registrations, deduplicated per (key, time).
 * Cost per timer: one pass over the key's live windows. */
#ifndef LOGPROC_SLIDING_COUNTER_H
#define LOGPROC_SLIDING_COUNTER_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"

#define SLIDING_MAX_BUCKETS 4

typedef struct sliding_counter_config {
    int64_t unit_ms; /* 3600000 hourly, 86400000 daily */
    int64_t emit_ms; /* E: the window length and timer grid */
    int nbuckets;
    int buckets[SLIDING_MAX_BUCKETS];    /* sizes in units, largest first: {1} or {30, 7, 1} */
    int64_t expiry[SLIDING_MAX_BUCKETS]; /* TTL seconds per bucket (0: none) */
    int emit_order[SLIDING_MAX_BUCKETS]; /* indices into buckets, in emission order */
    int tag;                             /* copied into every result's table field */
    /* The key of a record (written to buf, at most cap bytes), its event time and count.
     * Returns the key length, or -1 to skip the record (counted as numSkipped). */
    int (*key_fn)(void *ctx, const rt_record *rec, uint8_t *buf, size_t cap, int64_t *event_time,
                  int64_t *count);
    void *ctx;
} sliding_counter_config;

/* The hourly emit window must be whole minutes from 1 to 60 that divide an hour (1, 2, 3, 4, 5,
 * 6, 10, 12, 15, 20, 30, 60). Returns 0, or -1 with err naming flag and value. */
int sliding_counter_check_emit_window(const char *flag, int64_t emit_ms, char *err, size_t errlen);

/* A config for the hourly counter (buckets {1}, TTL 0) or the daily one (E = 4 h, buckets
 * {30, 7, 1} with TTLs 5184000, 0, 0, emitted in the order 1, 30, 7). */
void sliding_counter_hourly(sliding_counter_config *c, int64_t emit_ms);
void sliding_counter_daily(sliding_counter_config *c);

/* The window key of an event time: YYYYMMDDHHmm (hourly) or YYYYMMDDHH (daily) of its window end
 * in UTC (debug output and tests). out holds 64 bytes. */
void sliding_counter_window_key(int64_t event_time, int64_t emit_ms, int daily, char out[64]);

/* Adds the operator (one input; port 0 REC_COUNTER_WINDOW results). cfg is copied. Returns 0 with
 * *out, or -1 (out of memory). */
int sliding_counter_op_add(rt_graph *g, const char *uid, const sliding_counter_config *cfg,
                           rt_op **out);

#endif
