/* Source watermark generation: bounded out-of-orderness, optionally advanced by processing time
 * when the source is idle.
 *
 * Event-time rule (Flink's, spec/README.md "Time"): watermark = max timestamp seen -
 * out-of-orderness - 1 ms, and it never moves backwards. rt_wmgen_observe is called per record
 * and is a compare and a store; rt_wmgen_poll computes the watermark to emit and is called
 * periodically (the task calls it every N records and when the source has nothing to read).
 *
 * Idleness (other-jobs.md §1.8, --procAndEventWatermarkGenerator with --watermarkIdleness and
 * --watermarkIdlenessProcessingTimeTrailingDuration): when no record has arrived for `idleness`
 * ms of processing time, the watermark moves to now - trailing - 1 if that is higher. Arrival is
 * noted at poll time (the first poll after a record), so its resolution is the poll period and
 * observe never reads the clock. Never for a finite input (spec/README.md "Arguments").
 *
 * The clock is injectable so tests drive processing time by hand. */
#ifndef LOGPROC_WATERMARK_H
#define LOGPROC_WATERMARK_H

#include <stdint.h>

/* Milliseconds of processing time (any epoch, monotone). */
typedef int64_t (*rt_clock_fn)(void *ctx);

/* The default clock: CLOCK_REALTIME in ms (processing-time watermarks compare with event times,
 * which are epoch ms). */
int64_t rt_clock_wall_ms(void *ctx);

typedef struct rt_wmgen_config {
    int64_t max_out_of_orderness; /* ms >= 0 (--maxLogRequestOutOfOrderness, default PT1S) */
    int64_t idleness;             /* ms; 0: no processing-time advance */
    int64_t idle_trailing;        /* ms subtracted from now when idle (default PT15S) */
    rt_clock_fn clock;            /* NULL: rt_clock_wall_ms */
    void *clock_ctx;
} rt_wmgen_config;

typedef struct rt_wmgen {
    rt_wmgen_config cfg;
    int64_t max_ts;       /* RT_TIME_MIN before the first record */
    int64_t wm;           /* last value returned by poll */
    int64_t last_arrival; /* processing time of the last poll that saw a record */
    int seen;             /* a record was observed since the last poll */
} rt_wmgen;

/* Initialises g (a plain struct, nothing to free). The idleness clock starts at the first poll. */
void rt_wmgen_init(rt_wmgen *g, const rt_wmgen_config *cfg);

/* Notes a record's timestamp. O(1), no clock read. */
static inline void rt_wmgen_observe(rt_wmgen *g, int64_t ts)
{
    if (ts > g->max_ts) g->max_ts = ts;
    g->seen = 1;
}

/* The watermark to emit now: the event-time rule, or the idle rule when it is higher, and never
 * lower than the previous result. RT_TIME_MIN until a record (or idleness) allows more. */
int64_t rt_wmgen_poll(rt_wmgen *g);
/* The last value poll returned. */
int64_t rt_wmgen_current(const rt_wmgen *g);
/* Raises the generator's floor (a restored checkpoint's watermark): poll never returns less. */
void rt_wmgen_restore(rt_wmgen *g, int64_t wm, int64_t max_ts);

#endif
