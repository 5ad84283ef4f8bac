/* The three inferred-reference joins of flat-output (spec/flat-output.md §7.9, §7.10): their
 * keys, scopes, merge functions and MismatchError rows, on the generic operator of
 * inferred_join.h.
 *
 *   J1 view x insertion        LHS TinyEvent (a view), RHS TinyDeliveryLog; right outer; the
 *                              user's log_user_id is the last scope on both sides. Output: one
 *                              TinyEvent per response insertion (createTinyFlatResponseInsertions).
 *   J2 insertion x impression  LHS TinyEvent (J1 output), RHS TinyEvent (an impression); content
 *                              filter. Output: mergeImpression.
 *   J3 impression x action     LHS TinyEvent (J2 output), RHS TinyEvent (an action, after the
 *                              cart split); content filter; the other content ids of
 *                              --contentIdFieldKeys are scopes, in flag order. Output:
 *                              mergeAction.
 *
 * Every operator takes REC_TINY_EVENT on input 0 (INFERRED_JOIN_IN_LHS) and REC_TINY_EVENT or
 * REC_TINY_DELIVERY_LOG on input 1, emits REC_TINY_EVENT on port 0, and has the side ports of
 * inferred_join.h, named (J1; J2; J3):
 *
 *   LATE                   late_view_responseinsertions; late_insertion_impressions;
 *                          late_impression_actions (TinyEvents)
 *   DROPPED                dropped_view_responseinsertions (TinyDeliveryLog; never produced: J1
 *                          is right outer); dropped_insertion_impressions;
 *                          dropped_impression_actions (the raw tiny child)
 *   MISMATCH               mismatch_error for all three (REC_MISMATCH_ERROR rows)
 *   DUPLICATE_LHS          duplicate_view; duplicate_insertion; duplicate_impression
 *   RHS_WITHOUT_KEY        dropped_delivery_log_without_key; dropped_impression_without_key;
 *                          dropped_action_without_key
 *   RHS_DUPLICATE_PENDING  dropped_delivery_log_duplicate_pending;
 *                          dropped_impression_duplicate_pending; dropped_action_duplicate_pending
 *   LHS_ZERO_LT            dropped_view_zero_log_timestamp; dropped_insertion_zero_log_timestamp;
 *                          dropped_impression_zero_log_timestamp
 *   RHS_ZERO_LT            dropped_delivery_log_zero_log_timestamp;
 *                          dropped_impression_zero_log_timestamp; dropped_action_zero_log_timestamp
 *
 * J2's child and J3's parent are both impressions, so both operators may feed one
 * dropped_impression_zero_log_timestamp table; J3's parents come out of J2 with the impression's
 * non-zero time, so in this job only J2 fills it. J3's child key is action_id + U+0001 +
 * content_id and is never blank, so dropped_action_without_key stays empty, as in the reference.
 */
#ifndef LOGPROC_JOIN_INSTANCES_H
#define LOGPROC_JOIN_INSTANCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/join/inferred_join.h"
#include "runtime/graph.h"

/* The flags that shape the joins (spec §16), durations in ms as the flags give them (the
 * *Min values are negative; the joins use absolute values). */
typedef struct join_instances_params {
    int64_t view_insertion_join_min_ms;       /* --viewInsertionJoinMin, -PT10M */
    int64_t view_insertion_join_max_ms;       /* --viewInsertionJoinMax, PT0S */
    int64_t insertion_impression_join_min_ms; /* --insertionImpressionJoinMin, -PT30M */
    int64_t insertion_impression_join_max_ms; /* --insertionImpressionJoinMax, PT0S */
    int64_t impression_action_join_min_ms;    /* --impressionActionJoinMin, -P1D */
    int64_t impression_action_join_max_ms;    /* --impressionActionJoinMax, PT0S */
    int64_t id_join_duration_multiplier;      /* --idJoinDurationMultiplier, 1 (>= 1) */
    bool skip_view_join;                      /* --skipViewJoin: J1 passes DeliveryLogs through
                                               * (maxTime = maxOOO = 0, multiplier 1) */
    bool check_lateness;                      /* --[no-]checkLateness, true */
    const char *const *content_id_field_keys; /* --contentIdFieldKeys in flag order (J3 scopes);
                                               * copied by the constructors */
    size_t n_content_id_field_keys;           /* at most TINY_MAX_KEYS (64) */
} join_instances_params;

/* The defaults above. */
void join_instances_params_default(join_instances_params *p);

/* Add J1, J2, J3 under uid (the flat-output job passes "join-view-insertion",
 * "join-insertion-impression", "join-impression-action"). p is read during the call only.
 * Returns 0 with *out, or -1 (out of memory, a multiplier below 1, more than 64 content id
 * keys). */
int join_view_insertion_op_add(rt_graph *g, const char *uid, const join_instances_params *p,
                               rt_op **out);
int join_insertion_impression_op_add(rt_graph *g, const char *uid, const join_instances_params *p,
                                     rt_op **out);
int join_impression_action_op_add(rt_graph *g, const char *uid, const join_instances_params *p,
                                  rt_op **out);

/* ---- the pieces, for tests ---- */

/* Calls visit for the content ids (§7.6) of a packed TinyEvent: content_id when non-empty, then
 * each other_content_ids value (empty ones included), reading the wire bytes without unpacking.
 * Returns 1 if visit stopped the walk, 0 at the end, -1 on malformed bytes. */
int join_tiny_event_content_ids_packed(const uint8_t *p, size_t n, inferred_join_visit_fn visit,
                                       void *arg);

#endif
