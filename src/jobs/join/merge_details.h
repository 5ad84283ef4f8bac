/* MergeImpressionDetails and MergeActionDetails (spec/flat-output.md §11): re-hydrate the tiny
 * events that came out of the joins with the full records they name, into JoinedEvent.
 *
 * Both operators are keyed by (platform_id, log_user_id) and keep every full record as packed
 * protobuf bytes in rt_kv tables (one table per record kind, keyed by user + id), so the state is
 * snapshotted with the graph and charged to --memoryLimit. A tiny event whose required parents are
 * all stored is emitted at once; otherwise it waits until ts + missing_output_delay, and is
 * emitted early if the last missing parent arrives first (§11.1). Timers are keyed by the user.
 *
 * ---- merge-impression-details ----
 * Input 0 (full records): REC_VIEW (Event__View), REC_COMBINED_DELIVERY_LOG
 *   (Event__CombinedDeliveryLog), REC_IMPRESSION (Event__Impression).
 * Input 1: REC_TINY_EVENT tiny impressions (the reduced stream with empty action_id).
 * Ports:
 *   0  REC_JOINED_EVENT: joined impressions.
 *   1  "mismatch_error", REC_MISMATCH_ERROR (join_mismatch_error): an id of a full record that
 *      differs from the one already merged (§13.2); written on every evaluation.
 *   2  "dropped_merge_impression_details", REC_DROPPED_MERGE_DETAILS: a tiny event still
 *      incomplete at its timer, with what was merged (user_id not yet stripped: strip_user_id).
 *   3  "dropped_merge_impression_details_without_log_timestamp", REC_TINY_EVENT: a stored full
 *      record whose log timestamp is <= 0 found by the batch cleanup (the reference throws there);
 *      the TinyEvent names it (platform, user, lt and its view/request/insertion/impression id).
 *
 * ---- merge-action-details ----
 * Input 0 (full records): REC_JOINED_EVENT joined impressions, REC_ACTION (Event__Action).
 * Input 1: REC_TINY_EVENT tiny actions.
 * Ports: as above with "dropped_merge_action_details" (2) and
 *   "dropped_merge_action_details_without_log_timestamp" (3, TinyEvent naming the impression or
 *   action id); port 0 carries joined actions.
 *
 * Output timestamps: a tiny event completed on arrival carries its own ts, one completed by a
 * full record that record's ts, one released by a timer the timer's time. Mismatch rows carry the
 * ts of the evaluation that produced them. Emitted messages live in the operator's arena until
 * the push returns (consumers copy what they keep). */
#ifndef LOGPROC_MERGE_DETAILS_H
#define LOGPROC_MERGE_DETAILS_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/graph.h"

/* The flags the windows are derived from (ms; the *Join* durations as given, their absolute
 * values are used, as the reference does). */
typedef struct merge_details_flags {
    int64_t view_insertion_join_min, view_insertion_join_max;
    int64_t insertion_impression_join_min, insertion_impression_join_max;
    int64_t impression_action_join_min, impression_action_join_max;
    int64_t combine_delivery_log_window;
    int64_t merge_details_missing_output_delay; /* --mergeDetailsMissingOutputDelay (PT0S) */
    int64_t merge_details_cleanup_buffer;       /* --mergeDetailsCleanupBuffer (PT30S) */
    int64_t merge_details_cleanup_period;       /* --mergeDetailsCleanupPeriod (PT30S) */
    int64_t batch_cleanup_all_before;           /* --batchCleanupAll...BeforeTimestamp (0) */
    bool skip_view_join;                        /* --skipViewJoin */
} merge_details_flags;

typedef struct merge_impression_details_config {
    int64_t view_window_ms;         /* default 40 m 32 s */
    int64_t delivery_log_window_ms; /* default 30 m 32 s (also insertion bundles) */
    int64_t impression_window_ms;   /* default 32 s */
    int64_t cleanup_period_ms;      /* P of §11.1, > 0 */
    int64_t missing_output_delay_ms;
    int64_t batch_cleanup_all_before;
    bool skip_view_join; /* views are neither looked up nor waited for */
} merge_impression_details_config;

typedef struct merge_action_details_config {
    int64_t joined_impression_window_ms; /* default 1 d 32 s */
    int64_t action_window_ms;            /* default 32 s */
    int64_t cleanup_period_ms;
    int64_t missing_output_delay_ms;
    int64_t batch_cleanup_all_before;
} merge_action_details_config;

/* Derives both configs from the flags as §11.2/§11.3 say:
 *   impression = |viewMax| + |insImpMax| + |combine| + |missingDelay| + |cleanupBuffer|
 *   deliveryLog = impression + |insImpMin|;  view = deliveryLog + |viewInsMin|
 *   action = |viewMax| + |insImpMax| + |combine| + |impActMax| + |missingDelay| + |cleanupBuffer|
 *   joinedImpression = action + |impActMin|
 * Either out pointer may be NULL. */
void merge_details_configs_from_flags(const merge_details_flags *f,
                                      merge_impression_details_config *imp,
                                      merge_action_details_config *act);

/* Limits on what one user may hold waiting (beyond them the oldest waiting entry is forgotten,
 * counted in numWaitIndexOverflow: the tiny event is still evaluated at its own timer). */
#define MERGE_DETAILS_MAX_WAIT_TIMES 4096

/* Adds merge-impression-details (2 inputs, 4 ports). cfg is copied. Returns 0 with *out, or -1
 * (out of memory, a window or the period <= 0). Costs: a full record is packed once and stored
 * (about 100 bytes of entry and index on top of its packed size, plus one timer per cleanup
 * bucket); a tiny event costs one table lookup per parent and one unpack per parent found. */
int merge_impression_details_op_add(rt_graph *g, const char *uid,
                                    const merge_impression_details_config *cfg, rt_op **out);

/* Adds merge-action-details (2 inputs, 4 ports), as above. */
int merge_action_details_op_add(rt_graph *g, const char *uid,
                                const merge_action_details_config *cfg, rt_op **out);

#endif
