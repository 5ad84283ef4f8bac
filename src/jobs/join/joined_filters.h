/* Post-merge filters (spec/flat-output.md §12.1) and the JoinedEvent accessors the later stages
 * key by (§3).
 *
 * joined_filter_op: one operator per stream (joined impressions, joined actions, flat response
 * insertions) running the two filters in the reference's order:
 *   1. ignore_usage: user_info.ignore_usage is true on the action, impression, request, view,
 *      session or user (an FRI: on any of its actions or impressions, or request, view, session,
 *      user) -> port 1.
 *   2. non-buyer (only when hashes are configured, --nonBuyerUserSparseHash): the API execution
 *      insertion's private feature_stage.features.sparse_id[h] == 1 for a configured h -> port 2.
 * Input 0: REC_JOINED_EVENT (kinds JOINED_FILTER_IMPRESSION / _ACTION) or
 * REC_FLAT_RESPONSE_INSERTION (kind JOINED_FILTER_FLAT_RESPONSE_INSERTION); the record is passed
 * on unchanged (same data, same ts) to exactly one port:
 *   0  kept
 *   1  "dropped_ignore_usage_joined_impression" | "..._joined_action" |
 * "..._flat_response_insertion" 2  "dropped_non_buyer_joined_impression" | "..._joined_action" |
 * "..._flat_response_insertion" Stateless. */
#ifndef LOGPROC_JOINED_FILTERS_H
#define LOGPROC_JOINED_FILTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logproc/join.pb-c.h"
#include "runtime/graph.h"

/* ---- accessors with the reference's fallbacks ---- */

/* Java String.isBlank: empty, or only characters Character.isWhitespace accepts (ASCII
 * whitespace, U+001C..U+001F, Unicode space/line/paragraph separators except the no-break
 * spaces U+00A0, U+2007, U+202F). NULL is blank. */
bool joined_is_blank(const char *s);

/* ids.platform_id, else the first non-zero platform_id of user, view, request,
 * response_insertion, impression, action; else 0. */
uint64_t joined_event_platform_id(const Event__JoinedEvent *e);
/* ids.log_user_id, else the first non-blank user_info.log_user_id of user, view, request,
 * response_insertion, impression, action; else "". Never NULL; borrowed from e. */
const char *joined_event_log_user_id(const Event__JoinedEvent *e);
/* ids.insertion_id, else the first non-blank insertion_id of response_insertion, impression,
 * action; else "". Never NULL. */
const char *joined_event_insertion_id(const Event__JoinedEvent *e);

/* The ignore_usage tests of §12.1. */
bool joined_event_ignore_usage(const Event__JoinedEvent *e);
bool joined_fri_ignore_usage(const Event__FlatResponseInsertion *f);

/* Sets *out to whether ins (may be NULL: false) carries sparse_id[h] == 1 for one of the n
 * hashes (compared as the 64-bit pattern; the last entry of a repeated key wins, as in a
 * protobuf map). The private feature_stage is decoded with alloc (an arena: nothing to free).
 * Returns 0, or -1 when alloc fails. An undecodable feature_stage counts as absent. */
int joined_non_buyer(const Delivery__Insertion *ins, const int64_t *hashes, size_t n,
                     ProtobufCAllocator *alloc, bool *out);

/* ---- the filter operator ---- */

typedef enum joined_filter_kind {
    JOINED_FILTER_IMPRESSION,
    JOINED_FILTER_ACTION,
    JOINED_FILTER_FLAT_RESPONSE_INSERTION,
} joined_filter_kind;

typedef struct joined_filter_config {
    joined_filter_kind kind;
    const int64_t *non_buyer_hashes; /* copied; n == 0 turns the non-buyer filter off */
    size_t n_non_buyer_hashes;
} joined_filter_config;

/* Adds the filter (1 input, 3 ports, named as above). Returns 0 with *out, or -1 (out of
 * memory, bad kind). Cost per record: a few field tests; with hashes, one decode of the API
 * execution insertion's feature_stage (into a per-record arena). */
int joined_filter_op_add(rt_graph *g, const char *uid, const joined_filter_config *cfg,
                         rt_op **out);

#endif
