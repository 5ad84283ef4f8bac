/* ReduceRedundantTinyImpressions (spec/flat-output.md §10): keeps the first tiny impression of an
 * insertion (the "root") for ttl and re-points the tiny actions of later, redundant impressions
 * of that insertion to it.
 *
 * Input 0: REC_TINY_EVENT (Event__TinyEvent *), the union of J2's tiny impressions (action_id
 * empty) and J3's tiny actions (action_id set). Each record is keyed by
 * (platform_id, log_user_id, insertion_id, "") when insertion_id is non-empty, else by
 * (platform_id, log_user_id, view_id, content_id): the four-part key of the reference, so an
 * insertion id and a view id that are equal strings share a key, as they do there.
 *
 * Ports:
 *   0  REC_TINY_EVENT: the reduced tiny events (roots and re-pointed actions); also the
 *      etl_side/debug_tiny_event stream.
 *   1  "dropped_redundant_impression", REC_TINY_EVENT: an impression that arrived while a root
 *      of its key was live.
 *
 * Records emitted while handling an input carry that input's ts, records emitted from a cleanup
 * timer the timer's time. State (rt_kv "state" and "pending", timers keyed by the same bytes) is
 * snapshotted by the graph. */
#ifndef LOGPROC_REDUNDANT_IMPRESSIONS_H
#define LOGPROC_REDUNDANT_IMPRESSIONS_H

#include <stdint.h>

#include "runtime/graph.h"

/* Tiny actions buffered per key while no root impression has arrived. Past it, an action is
 * emitted unchanged right away (what the cleanup timer would do later) and counted in
 * numActionsOverPendingLimit. */
#define REDUNDANT_MAX_PENDING_ACTIONS 4096

typedef struct redundant_impressions_config {
    /* |--impressionActionJoinMin| (P1D): a root is replaced only by an impression more than ttl
     * after it; state is cleaned at floor((lt + 2 ttl) / ttl) * ttl. Must be > 0. */
    int64_t ttl_ms;
} redundant_impressions_config;

/* Adds the operator (1 input, 2 ports) to g under uid. cfg is copied. Returns 0 with *out, or -1
 * (out of memory, ttl_ms <= 0). State cost per live key: the packed root impression plus about
 * 150 bytes of table entry and timer; buffered actions add their packed size. */
int redundant_impressions_op_add(rt_graph *g, const char *uid,
                                 const redundant_impressions_config *cfg, rt_op **out);

#endif
