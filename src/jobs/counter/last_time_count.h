/* LastTimeAndCount (spec/other-jobs.md §B.8): per key, the event time of the last processed event
 * and the number of events over the last ttlDays days, for the last-time tables.
 *
 * State per key (one rt_kv entry): the last event time, then (UTC day start, count) pairs sorted
 * by day, at most ttlDays + 1 of them. On an event: the last time is set, its day's count rises
 * by one (cart quantities are ignored), the key's output is computed at the event time and
 * emitted with the record's ts, and a cleanup timer is registered at
 * max(day + (ttlDays + 2) days + jitter, ts). The output at time X sums the days with
 * 0 <= trunc((X - day) / 1 day) < ttlDays, drops the days at or past ttlDays, and is
 * (last time, count, ttl = count ? keep : 3 days); a key whose days are all gone is deleted after
 * its last (zero) output. Cost per event: a hash probe, an in-place add or append, a walk over the
 * key's days (at most ttlDays + 1), one timer registration. */
#ifndef LOGPROC_LAST_TIME_COUNT_H
#define LOGPROC_LAST_TIME_COUNT_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"

#define LAST_TIME_ZERO_TTL_SECONDS 259200 /* EXPIRE_TTL_SECONDS: 3 days */

typedef struct last_time_config {
    int ttl_days; /* 90 */
    int tag;      /* copied into every result's table field */
    /* The key of a record (into buf, at most cap bytes) and its event time. Returns the key
     * length, or -1 to skip the record (counted as numSkipped). */
    int (*key_fn)(void *ctx, const rt_record *rec, uint8_t *buf, size_t cap, int64_t *event_time);
    /* Java's hashCode of the key tuple (for the timer jitter); NULL: no jitter (tests). */
    int32_t (*hash_fn)(void *ctx, const uint8_t *key, size_t len);
    void *ctx;
} last_time_config;

/* The reference's pseudo-random timer offset in ms for h (§B.8): 0 -> 0, 1 -> 20656972,
 * 2432 -> 47038708. Spreads the cleanup timers of one day over the next day. */
int64_t last_time_jitter(int32_t h);

/* keepTtlSeconds = (ttlDays + 3) days in seconds (8035200 for 90 days). */
int64_t last_time_keep_ttl(int ttl_days);

/* Adds the operator (one input; port 0 REC_COUNTER_LAST_TIME results). cfg is copied. Returns 0
 * with *out, or -1 (out of memory). */
int last_time_op_add(rt_graph *g, const char *uid, const last_time_config *cfg, rt_op **out);

#endif
