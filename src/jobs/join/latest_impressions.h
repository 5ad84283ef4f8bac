/* AddLatestImpressions (spec/flat-output.md §12.3, --addLatestImpressions): decorates each joined
 * action with the user's latest impressions before it (the negative signal a recommender
 * consumes), leaving out content the user acted on.
 *
 * Keyed by (platform_id, log_user_id) of the JoinedEvent (with the reference's fallbacks).
 * t(x) = client_log_timestamp if non-zero, else event_api_timestamp.
 *   - joined impression at ts: stored as a LatestImpression {ids.impression_id,
 *     response_insertion.content_id, the impression's client/event-API timestamps,
 *     event_timestamp = ts}; timers at the next whole minute after ts and at
 *     (floor(ts / 1 h) + 7) h.
 *   - joined action at ts: stored whole, plus an "actioned" LatestImpression built the same way
 *     from the action's timing (content id still the response insertion's); timers at ts + M and
 *     the 7-hour bucket.
 *   - timer T: each stored action whose action.timing.event_api_timestamp <= T - M is emitted
 *     with latest_impressions = up to 25 impressions with t <= t(action), newest first by t, one
 *     per content id, skipping content ids actioned at or before t(action), listed in ascending t
 *     (an empty list is still set). Then both lists are pruned: t < T - 6 h goes; entries with
 *     event_timestamp > T - M stay uncounted; of the rest the newest per content id stay, at
 *     most 30 (impressions sorted by t first, the actioned list in arrival order).
 *
 * Input 0: REC_JOINED_EVENT joined actions. Input 1: REC_JOINED_EVENT joined impressions.
 * Port 0: REC_JOINED_EVENT joined actions with latest_impressions, ts = the timer's time.
 * State in rt_kv ("actions", "impressions", "actioned"), one value per user. --devMode's
 * sortedness asserts are not run (they would fail the job on input). */
#ifndef LOGPROC_LATEST_IMPRESSIONS_H
#define LOGPROC_LATEST_IMPRESSIONS_H

#include <stdint.h>

#include "runtime/graph.h"

/* Per user and list, entries kept between timers. Past it a new impression (or actioned entry)
 * is not stored and an action is emitted at once as if its timer had come (both counted). */
#define LATEST_IMPRESSIONS_LIST_CAP 100000

typedef struct latest_impressions_config {
    int64_t out_of_orderness_ms; /* M: --extraAddLatestImpressionOutOfOrderness (PT0.5S), >= 0 */
    int max_output;              /* 25 */
    int max_state;               /* 30 */
} latest_impressions_config;

/* The reference's values: M = 500 ms, 25 output, 30 kept. */
latest_impressions_config latest_impressions_defaults(void);

/* Adds the operator (2 inputs, 1 port). Returns 0 with *out, or -1 (out of memory, bad config).
 * Cost: an append per input; per timer, a sort of the user's impressions (O(n log n), n about 30
 * plus the last minute's) and one unpack per released action. */
int latest_impressions_op_add(rt_graph *g, const char *uid, const latest_impressions_config *cfg,
                              rt_op **out);

#endif
