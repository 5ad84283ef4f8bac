/* content-metrics: the unified content event stream (spec/other-jobs.md §C.1, §C.2).
 *
 * Every deduped view, impression, action (and each row of an action's cart) and joined
 * impression whose content id is not empty becomes one content event: (platform_id, content_id)
 * and nine counts, all zero but the ones its source fills:
 *
 *   view                 views = 1
 *   impression           impressions = 1
 *   joined impression    joined_impressions = 1, joined_impression_position_sum = position
 *   action               navigates, add_to_carts, checkouts or purchases = 1 by action type
 *                        (NAVIGATE 2, ADD_TO_CART 4, CHECKOUT 8, PURCHASE 3; other types give a
 *                        row of zeros, which still creates the key, as the reference's SQL does)
 *   cart row             the same column + quantity; purchases also gmv += quantity x
 *                        price_per_unit.amount_micros (no currency conversion)
 *
 * Cart actions (spec/README.md "Scope"): an action counts once per cart row and, when at least
 * one cart row has a content id, not again for its own content id. With double_count (the
 * reference, --doubleCountCartActions) it counts for its own content id as well. Sums wrap
 * around on overflow like Java's long arithmetic. */
#ifndef LOGPROC_CONTENT_EVENT_H
#define LOGPROC_CONTENT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event/event.pb-c.h"
#include "logproc/join.pb-c.h"
#include "runtime/graph.h"

/* content-metrics' own record types (the shared ones are in jobs/common_ops.h). */
enum {
    CM_REC_JOINED_EVENT = 300, /* data: Event__JoinedEvent * (a joined impression) */
    CM_REC_EVENT,              /* data: const cm_event * */
    CM_REC_METRICS,            /* data: const cm_metrics_row * (content_window.h) */
};

/* The nine counts, in the spec's column order. */
enum {
    CM_VIEWS,
    CM_IMPRESSIONS,
    CM_JOINED_IMPRESSIONS,
    CM_JOINED_IMPRESSION_POSITION_SUM,
    CM_NAVIGATES,
    CM_ADD_TO_CARTS,
    CM_CHECKOUTS,
    CM_PURCHASES,
    CM_GMV_USD_MICROS,
    CM_NCOLS
};

typedef struct cm_event {
    uint64_t platform_id;
    const char *content_id; /* never empty; borrowed from the source record */
    int64_t v[CM_NCOLS];
} cm_event;

/* Calls fn for each content event of rec (REC_VIEW, REC_IMPRESSION, REC_ACTION or
 * CM_REC_JOINED_EVENT; other types give none), stopping at fn's first non-zero return, which it
 * returns. Events point into rec's message. Cost: O(cart rows); no allocation. */
int cm_events_of(const rt_record *rec, bool double_count,
                 int (*fn)(void *ctx, const cm_event *e), void *ctx);

/* Adds the operator that turns those records into CM_REC_EVENT records (port 0, each with the
 * input's ts). One input; several streams may feed it (a union). Returns 0 or -1 (out of memory). */
int cm_event_op_add(rt_graph *g, const char *uid, bool double_count, rt_op **out);

/* ---- joined events (FlatUtil, spec/other-jobs.md §B.3) ---- */

/* getPlatformId of a joined event is joined_event_platform_id (jobs/join/joined_filters.h). */

/* getLogTimestamp: the first non-zero timing.log_timestamp of the top-level timing, action,
 * impression, api_execution_insertion, response_insertion, request, view, session, user; 0 when
 * none. */
int64_t cm_joined_log_timestamp(const Event__JoinedEvent *e);

/* The same read from the JoinedEvent's wire bytes, without decoding it (the joined-event
 * source's timestamp assigner, called once per record before the watermark sees it). Repeated
 * occurrences of a message field merge as protobuf merges them (the last log_timestamp seen
 * wins). Returns record_ts when the result is 0 or the bytes are not a well-formed message.
 * Cost: one pass over the bytes of the nine sub-messages' timings, no allocation. */
int64_t cm_joined_log_timestamp_wire(const uint8_t *value, size_t len, int64_t record_ts);

#endif
