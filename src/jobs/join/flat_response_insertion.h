/* The FlatResponseInsertion pivot (spec/flat-output.md §12.2): joined impressions and joined
 * actions of one insertion, grouped in event-time session windows, become one
 * FlatResponseInsertion per window.
 *
 * Key: (platform_id, log_user_id, insertion_id) of each JoinedEvent, with the reference's
 * fallbacks (joined_filters.h). Each element opens the window [ts, ts + gap); windows of a key that
 * overlap or touch merge; a window fires when the watermark reaches end - 1 and its output carries
 * ts = end - 1. An element whose window would be complete already (end - 1 <= watermark, no live
 * window to merge into) is late: the reference drops it silently, here it goes to port 1
 * (spec/README.md, §18 item 15).
 *
 * Input 0: REC_JOINED_EVENT joined impressions (filtered). Input 1: REC_JOINED_EVENT joined
 * actions (filtered, before AddLatestImpressions).
 * Ports:
 *   0  REC_FLAT_RESPONSE_INSERTION: ids (the source's, without impression_id), timing = the
 *      source's request timing, session_profile, session, view, request, request_insertion,
 *      response, response_insertion, api_execution, api_execution_insertion, sdk_execution all
 *      present (empty messages when the source lacks them), hidden_api_request when the source has
 *      it; impression[] = each joined impression's impression with impression_id restored, action[]
 *      = each joined action's action, in arrival order. The source is the first impression, else
 *      the first action. Run the FRI filters (joined_filter_op) and strip_user_id after it.
 *   1  "dropped_flat_response_insertion_late", REC_JOINED_EVENT: the late element as received;
 *      also, counted in numRecordsKeyTooLong, an element whose key passes 60000 bytes (it cannot
 *      be kept in state).
 *
 * State is compact: per window, the source's shared parts packed once, then each element's
 * impression or action packed as a repeated-field entry of the final message (rt_kv "window-list"
 * and "window-content", timers keyed by the window key). Merged windows keep the earlier
 * window's elements first. */
#ifndef LOGPROC_FLAT_RESPONSE_INSERTION_H
#define LOGPROC_FLAT_RESPONSE_INSERTION_H

#include <stdint.h>

#include "runtime/graph.h"

typedef struct flat_response_insertion_config {
    int64_t gap_ms; /* --flatResponseInsertionGapDuration (P1D), > 0 */
} flat_response_insertion_config;

/* Adds the operator (2 inputs, 2 ports). Returns 0 with *out, or -1 (out of memory, gap <= 0).
 * Cost per element: one pack of its impression or action (and of the shared parts for the first
 * element of a window) and an amortised append; per window fired, one unpack of the result.
 * State per open window: the packed shared parts (request, response, insertions, view...) plus
 * the packed impressions and actions, plus about 200 bytes of entries and timer. */
int flat_response_insertion_op_add(rt_graph *g, const char *uid,
                                   const flat_response_insertion_config *cfg, rt_op **out);

#endif
