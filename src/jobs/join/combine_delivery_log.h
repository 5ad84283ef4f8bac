/* CombineDeliveryLog (spec/flat-output.md §5): pairs the API and the SDK DeliveryLog of one
 * client request into one CombinedDeliveryLog {api, sdk}.
 *
 * Keyed by (DeliveryLog.platform_id, request.user_info.log_user_id). A log without
 * request.client_request_id passes at once (alone in its slot, with its own ts). Otherwise the
 * first log of a client_request_id opens a window of W ms (--combineDeliveryLogWindow): every
 * log of that id until the timer at ts_first + W goes into its slot, and at the timer the
 * combined record is emitted (ts = the timer's time) and the id is forgotten, so a later log
 * with the same id opens a new window. Slot by execution.execution_server: SDK -> sdk; API,
 * SIMPLE_API, UNKNOWN -> api. A new log takes the slot iff it is empty or the new log's traffic
 * priority (bot_filter_traffic_priority) is >= the occupant's. At emission, an SDK log without
 * response.paging_info.paging_id gets the API log's. The output watermark is held back by W.
 *
 * A log whose state key (12 bytes + log_user_id + client_request_id) would pass the keyed-state
 * key limit (RT_HTAB_KEY_MAX, 64 KiB) cannot be kept: it passes at once like a log without
 * client_request_id, counted in numKeyTooLong.
 *
 * Any other execution_server value makes the reference throw (job failure); here the log goes to
 * the side output "dropped_delivery_log_unknown_execution_server" as a TinyEvent (the shape of
 * the other dropped DeliveryLogs) and is counted.
 *
 * State: one rt_kv table "pending", key = user key + client_request_id, value = the timer time
 * (8 bytes) then the packed CombinedDeliveryLog; one timer per pending id with the same key, so
 * the timer finds its id directly. Both are snapshotted by the graph. */
#ifndef LOGPROC_JOIN_COMBINE_DELIVERY_LOG_H
#define LOGPROC_JOIN_COMBINE_DELIVERY_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/execution.pb-c.h"
#include "logproc/join.pb-c.h"
#include "runtime/graph.h"

/* ---- reading a combined record ---- */

/* "The DeliveryLog" of a combined record: sdk if present, else api (may be NULL if neither). */
const Delivery__DeliveryLog *combine_chosen(const Event__CombinedDeliveryLog *c);
/* platform_id: the API log's when present and non-zero, else the chosen log's (§5, §3). */
uint64_t combine_platform_id(const Event__CombinedDeliveryLog *c);
/* The key's log_user_id (§3): the API log's request.user_info.log_user_id when non-empty, else
 * the SDK log's; "" when neither has one. */
const char *combine_log_user_id(const Event__CombinedDeliveryLog *c);

/* The slot of an execution_server number: 0 api (API 1, SIMPLE_API 3, UNKNOWN 0), 1 sdk (SDK
 * 2), -1 any other value. */
int combine_slot(int execution_server);

/* ---- operator ---- */

typedef struct combine_config {
    int64_t window_ms; /* W, --combineDeliveryLogWindow (PT2S); >= 0 */
} combine_config;

/* Adds the operator. Input: REC_DELIVERY_LOG. Port 0: REC_COMBINED_DELIVERY_LOG (data
 * Event__CombinedDeliveryLog, valid during the push; key = 8-byte little-endian
 * combine_platform_id then combine_log_user_id). Port 1
 * "dropped_delivery_log_unknown_execution_server": REC_TINY_EVENT {platform_id, log_user_id,
 * log_timestamp, view_id, request_id}. Counters: numCombined (records emitted with both slots),
 * numSlotReplaced (a log replaced the occupant of its slot), numSlotKept (a log lost to a
 * higher-priority occupant), numUnknownExecutionServer, numKeyTooLong. Cost per log:
 * O(log timers) plus one unpack and pack of the pending record when its id is already pending.
 * Returns 0 or -1 (out of memory, negative window). */
int combine_delivery_log_op_add(rt_graph *g, const char *uid, const combine_config *cfg,
                                rt_op **out);

#endif
