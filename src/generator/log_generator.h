/* The deterministic fake LogRequest generator (spec/fake-data.md): `logproc generate logs`,
 * and a library for tests and benchmarks.
 *
 * It reproduces the reference LogRequestIterator's event model: a min-heap of pending
 * LogRequests and deferred steps ("runnables") ordered by (scheduled time, push counter); a
 * step runs when it reaches the top and schedules its children at now() + that step's delay.
 * now() is a simulated clock: the send time of the last LogRequest returned (or --startTime
 * before the first), so a run is a pure function of its options (and --seed). Each record's
 * send time is max(its scheduled time, the previous send time), the time a real-time sender
 * would have sent it; it is what the record file stores as the record's timestamp.
 *
 *   gen_options o = {0};
 *   gen_options_init(&o, "cli", overrides, err, sizeof err);
 *   gen_logs *g;
 *   gen_logs_new(&o, &g, err, sizeof err);
 *   while ((rc = gen_logs_next(g, &ts, &lr)) == 1) { ... }
 *   gen_logs_free(g);
 *   gen_options_free(&o);
 */
#ifndef LOGPROC_LOG_GENERATOR_H
#define LOGPROC_LOG_GENERATOR_H

#include <stddef.h>
#include <stdint.h>

#include "event/event.pb-c.h"
#include "generator/gen_options.h"

#define GEN_PLATFORM_ID 1
#define GEN_MAX_RECORD_BYTES (1024 * 1024)    /* a LogRequest larger than this is an error */
#define GEN_MAX_PENDING (64ULL * 1024 * 1024) /* pending records and steps in the heap */

typedef struct gen_logs gen_logs;

/* Record counts of a run so far (what LogGenerator logs at the end). */
typedef struct gen_counts {
    uint64_t log_requests;
    uint64_t bytes; /* packed bytes, counted by gen_logs_next_packed only */
    uint64_t users, cohort_memberships, sessions, session_profiles;
    uint64_t views, auto_views, diagnostics;
    uint64_t delivery_logs, sdk_delivery_logs, api_delivery_logs, shadow_delivery_logs;
    uint64_t request_insertions, response_insertions, execution_insertions;
    uint64_t impressions;
    uint64_t navigates, add_to_carts, checkouts, purchases;
} gen_counts;

/* Validates o and prepares a run: builds the catalogue and creates every user (as the
 * reference does up front). o is copied; it may be freed afterwards. Returns 0, or -1 with err
 * naming the option and its limit. Cost: O(users + catalogue). */
int gen_logs_new(const gen_options *o, gen_logs **out, char *err, size_t errlen);

/* Produces the next LogRequest: returns 1 with *ts_ms (its send time) and *lr, 0 when the run
 * is over, -1 with err set (a limit was passed; the run cannot continue). *lr belongs to g and
 * stays valid until the next call or gen_logs_free. Amortised cost: the record's size plus
 * O(log pending) for the heap; no malloc in steady state. */
int gen_logs_next(gen_logs *g, int64_t *ts_ms, Event__LogRequest **lr, char *err, size_t errlen);

/* Like gen_logs_next, but also serializes the record: value and value_len give the LogRequest
 * bytes, key and key_len the Event API's Kafka key (8-byte little-endian platform id, then
 * log_user_id). All point into g and stay valid until the next call. */
int gen_logs_next_packed(gen_logs *g, int64_t *ts_ms, const uint8_t **key, size_t *key_len,
                         const uint8_t **value, size_t *value_len, char *err, size_t errlen);

/* Counts of the records returned so far. */
void gen_logs_counts(const gen_logs *g, gen_counts *out);

/* Frees g and everything it holds. NULL is a no-op. */
void gen_logs_free(gen_logs *g);

#endif
