/* Splitting a LogRequest into its child records, with the reference's push-down rules
 * (spec/other-jobs.md §1.7, spec/flat-output.md §1.2). Shared by raw-output, flat-output and
 * content-metrics. */
#ifndef LOGPROC_SPLIT_H
#define LOGPROC_SPLIT_H

#include <protobuf-c/protobuf-c.h>

#include "event/event.pb-c.h"

/* Child record kinds in the order the split emits them. */
typedef enum {
    SPLIT_USER = 0,
    SPLIT_COHORT_MEMBERSHIP,
    SPLIT_AUTO_VIEW,
    SPLIT_VIEW,
    SPLIT_DELIVERY_LOG,
    SPLIT_IMPRESSION,
    SPLIT_ACTION,
    SPLIT_DIAGNOSTICS,
    SPLIT_KINDS
} split_kind;

/* The record type name of a kind ("user", "cohort-membership", ...: the raw table names). */
const char *split_kind_name(split_kind k);

/* Applies push-down to every child of lr, in place: platform_id, user_info (log_user_id
 * lower-cased like Java; user_id for User children only), timing and client_info from the
 * LogRequest, creating the child's sub-messages where the rules make them present; for a
 * DeliveryLog the rules act on `request`, whose platform_id is forced to the DeliveryLog's; for an
 * Action without a device the empty device stub appears when the LogRequest has one (the
 * reference's quirk). lr itself keeps its top-level fields. New strings and sub-messages come from
 * alloc (the record's arena), which must outlive the children. Returns 0, or -1 when alloc fails.
 * Cost: O(size of the ids), no allocation when nothing changes. */
int split_push_down(Event__LogRequest *lr, ProtobufCAllocator *alloc);

/* Lower-cases a log_user_id-like string the Java way, allocating from alloc when it changes:
 * returns s itself when it has no upper-case character, the new string otherwise, NULL when
 * alloc fails. */
char *split_lower(const char *s, ProtobufCAllocator *alloc);

/* Adds the split operator (a map op, 1 input, 1 + SPLIT_KINDS ports). Input: REC_LOG_REQUEST.
 * Port 0: the LogRequest as received, emitted before push-down touches it. Port 1 + k: each
 * child of kind k (split_kind) after push-down, in the spec's order (users, cohort memberships,
 * auto views, views, delivery logs, impressions, actions, diagnostics), typed REC_USER ...
 * REC_DIAGNOSTICS, with the LogRequest's ts and key. Unconnected ports cost nothing.
 * Returns 0 or -1 (out of memory). */
#include "runtime/graph.h"
int split_op_add(rt_graph *g, const char *uid, rt_op **out);

#endif
