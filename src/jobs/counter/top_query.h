/* The top-query filter of the query tables (spec/other-jobs.md §B.9): which query hashes are
 * frequent enough to be written, and the gate that holds query-table results until that is known.
 *
 * count-top-query: counts events per query hash (all platforms together) in sliding event-time
 * windows [s, s + size) with s a multiple of the slide, over the record timestamp; blank queries
 * and queries longer than the length limit (UTF-16 units) are not counted. When the watermark
 * reaches s + size - 1 and the window holds >= threshold events, the hash is emitted
 * (REC_COUNTER_TOP_QUERY, ts = s + size - 1). State per hash: event counts per pane of
 * gcd(size, slide) ms (at most size / pane + 1 panes) and the next window to evaluate, so one
 * timer per hash is pending instead of one per (window, hash); a hash that passed is remembered
 * (8 bytes) and its later events cost one probe.
 *
 * gate-top-query (RightSeenOutput): input 0 takes the query tables' results (REC_COUNTER_WINDOW,
 * REC_COUNTER_LAST_TIME), input 1 the top hashes. A result of the empty query passes at once.
 * Any other result is buffered under its hash with a timer at its ts; the first timer of a hash
 * emits everything buffered for it (ts = the timer's time) if the hash has been seen on input 1,
 * and drops it otherwise. "Seen" is forever. The buffer of one hash is limited to
 * TOP_QUERY_GATE_MAX_BYTES (over it the task fails, naming the hash and the limit). */
#ifndef LOGPROC_TOP_QUERY_H
#define LOGPROC_TOP_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"

#define TOP_QUERY_GATE_MAX_BYTES ((size_t)64 << 20)

typedef struct top_query_config {
    int64_t window_ms;  /* --searchQueryWindowSize */
    int64_t slide_ms;   /* --searchQueryWindowSlide */
    int64_t threshold;  /* --searchQueryWindowMinThreshold (inclusive) */
    int64_t max_length; /* --searchQueryLengthLimit, UTF-16 units */
} top_query_config;

/* Checks the window flags: size and slide > 0, a window of at most 100000 panes. Returns 0 or -1
 * with err naming the flags. */
int top_query_check(const top_query_config *cfg, char *err, size_t errlen);

/* Adds count-top-query. Input: REC_COUNTER_EVENT records (counter_fields). Returns 0 or -1. */
int top_query_count_op_add(rt_graph *g, const char *uid, const top_query_config *cfg, rt_op **out);

/* Adds the gate (2 inputs, 1 output). Returns 0 or -1. */
int top_query_gate_op_add(rt_graph *g, const char *uid, rt_op **out);

#endif
