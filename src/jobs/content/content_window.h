/* content-metrics: event-time window aggregation of content events (spec/other-jobs.md §C.3,
 * §C.4, §C.6), the part the reference does in Flink SQL.
 *
 * Input: CM_REC_EVENT records (content_event.h). Grouping: (platform_id, content_id, window),
 * summing the nine counts (wrapping like Java's long). Windows are aligned to the Unix epoch, so
 * in UTC (the reference's SQL session time zone):
 *
 *   tumble    [k*size, (k+1)*size): one row per (key, window) that received an event, emitted
 *             when the watermark reaches the window's end - 1 ms (hourly: size 1 h; daily: 1 d).
 *   cumulate  CUMULATE(step, max size): for each day (size = max) and each step end E in it, one
 *             row per key with events in [day start, E), holding the sums from the day start to
 *             E, emitted when the watermark reaches E - 1. A key is emitted at every step end
 *             from its first event to the end of the day, whether or not it had new events.
 *
 * Output (port 0): CM_REC_METRICS records, ts = window end - 1 ms (Flink's window result time),
 * in order of window end, then platform_id, then content_id bytes: the same rows in the same
 * order whatever the order of the inputs. A record whose window (cumulate: whose step) has
 * already been emitted is late: it is dropped and counted in numLateRecordsDropped, as Flink's
 * window operators drop late records.
 *
 * State: rt_kv tables of plain bytes (window end or day start, platform, content id) -> sums, so
 * the graph snapshots them; one key-less timer per open window end or step. Emitting a window
 * walks the open entries once: O(open entries + rows log rows). */
#ifndef LOGPROC_CONTENT_WINDOW_H
#define LOGPROC_CONTENT_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "jobs/content/content_event.h"
#include "runtime/graph.h"

typedef struct cm_metrics_row {
    int64_t window_start; /* ms; cumulate: the day's start */
    int64_t window_end;   /* ms, exclusive */
    uint64_t platform_id;
    const char *content_id; /* content_id_len bytes, not NUL-terminated; borrowed for the emit */
    size_t content_id_len;
    int64_t v[CM_NCOLS];
} cm_metrics_row;

typedef enum { CM_WINDOW_TUMBLE, CM_WINDOW_CUMULATE } cm_window_kind;

typedef struct cm_window_config {
    cm_window_kind kind;
    int64_t size_ms; /* tumble: the window length; cumulate: the max size (a day) */
    int64_t step_ms; /* cumulate: the step, > 0, dividing size_ms */
} cm_window_config;

/* Adds the aggregation operator (1 input, 1 output). Returns 0, or -1 (out of memory, or a size
 * or step that is not positive or a step that does not divide the size). */
int cm_window_op_add(rt_graph *g, const char *uid, const cm_window_config *cfg, rt_op **out);

/* The window start of ts for windows of size ms aligned to the epoch (floor, also before 1970). */
int64_t cm_window_start(int64_t ts, int64_t size);

#endif
