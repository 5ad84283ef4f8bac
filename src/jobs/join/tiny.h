/* The tiny join records of flat-output (spec/flat-output.md §6): View, Impression and Action
 * become TinyEvents, a CombinedDeliveryLog becomes a TinyDeliveryLog, with the "other content
 * ids" of --contentIdFieldKeys taken from properties.struct. Also the two Java functions those
 * ids depend on: String.hashCode (the map keys) and Double.toString (numbers as values).
 *
 * Tiny records follow proto3 presence: an empty string or a zero number is left unset (NULL, no
 * has_ flag), so they pack to the bytes Java writes. Strings are borrowed from the source record
 * unless a function says it allocates. */
#ifndef LOGPROC_JOIN_TINY_H
#define LOGPROC_JOIN_TINY_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/common.pb-c.h"
#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "logproc/join.pb-c.h"
#include "runtime/graph.h"

/* ---- Java string and number semantics ---- */

/* Java's String.hashCode and Double.toString live in formats/java_text.h. */

/* ---- --contentIdFieldKeys ---- */

#define TINY_MAX_KEYS 64

/* The configured property names, in flag order, with their hashes. Plain struct; names are
 * borrowed and must outlive it. */
typedef struct tiny_keys {
    size_t n;
    const char *name[TINY_MAX_KEYS];
    int32_t hash[TINY_MAX_KEYS];
} tiny_keys;

/* Fills k from names[0..n). Returns 0, or -1 with err when n exceeds TINY_MAX_KEYS (naming the
 * flag and the limit). */
int tiny_keys_init(tiny_keys *k, const char *const *names, size_t n, char *err, size_t errlen);

/* ---- conversions ---- */

/* View -> TinyEvent {platform_id, log_user_id, log_timestamp = view lt, view_id}. No
 * allocation: out borrows v's strings. */
void tiny_of_view(const Event__View *v, Event__TinyEvent *out);

/* The TinyEvent of a dropped DeliveryLog (§2.4, §2.5): {platform_id = DeliveryLog.platform_id,
 * log_user_id, log_timestamp = request lt, view_id, request_id}, the ids from request. No
 * allocation. */
void tiny_of_delivery_log(const Delivery__DeliveryLog *dl, Event__TinyEvent *out);

/* Impression -> TinyEvent {platform_id, log_user_id, log_timestamp, view_id, request_id,
 * insertion_id, content_id, impression_id} plus the other content ids of impression.properties
 * for the configured keys (keys may be NULL: none). Map entries and number strings come from
 * alloc. Returns 0 or -1 (alloc failed). */
int tiny_of_impression(const Event__Impression *im, const tiny_keys *keys,
                       ProtobufCAllocator *alloc, Event__TinyEvent *out);

/* Action -> TinyEvents (§6): one TinyEvent {platform_id, log_user_id, log_timestamp, view_id,
 * request_id, insertion_id, content_id, impression_id, action_id, other content ids}, or, for a
 * CHECKOUT or PURCHASE with at least one cart content, one per distinct non-empty content id of
 * {action.content_id} then cart.contents[] in first-seen order (the reference's HashSet order is
 * unspecified), each with that content_id and without impression_id, insertion_id, request_id
 * and view_id. *out is an array of *n pointers from alloc (*n may be 0 when every id is empty).
 * Cost: O(cart contents) with a hash set of ids. Returns 0 or -1 (alloc failed). */
int tiny_of_action(const Event__Action *ac, const tiny_keys *keys, ProtobufCAllocator *alloc,
                   Event__TinyEvent ***out, size_t *n);

/* CombinedDeliveryLog -> TinyDeliveryLog: platform_id by the combined rule
 * (combine_platform_id), log_user_id, log_timestamp, view_id and request_id from the chosen
 * log's request (SDK if present, else API), one TinyInsertion {insertion_id, content_id} per
 * chosen response insertion. With keys configured, each insertion's other_content_ids are
 * request.properties' values, overridden by those of the first request insertion with the same
 * content_id. Where the reference throws (request.properties set and no request insertion
 * matches) the request's values alone are used. Returns 0 or -1 (alloc failed). */
int tiny_of_combined(const Event__CombinedDeliveryLog *c, const tiny_keys *keys,
                     ProtobufCAllocator *alloc, Event__TinyDeliveryLog *out);

/* The other content ids of props for keys, in key order (a later key with the same hash
 * replaces the earlier value in place): string values as they are, numbers by
 * java_double_string, booleans "true"/"false", other kinds "" (§6). Only the top level of
 * properties.struct is read; a key repeated inside the struct takes its last value, as a
 * protobuf map does. Entries (and number strings) come from alloc. Returns 0 or -1. */
int tiny_other_content_ids(const Common__Properties *props, const tiny_keys *keys,
                           ProtobufCAllocator *alloc, Event__TinyEvent__OtherContentIdsEntry ***out,
                           size_t *n);

/* ---- operator ---- */

typedef enum {
    TINY_VIEW,                  /* REC_VIEW -> REC_TINY_EVENT */
    TINY_COMBINED_DELIVERY_LOG, /* REC_COMBINED_DELIVERY_LOG -> REC_TINY_DELIVERY_LOG */
    TINY_IMPRESSION,            /* REC_IMPRESSION -> REC_TINY_EVENT */
    TINY_ACTION,                /* REC_ACTION -> REC_TINY_EVENT (one or more) */
} tiny_input;

typedef struct tiny_op_config {
    tiny_input input;
    const char *const *content_id_keys; /* --contentIdFieldKeys in flag order; copied */
    size_t n_content_id_keys;
} tiny_op_config;

/* Adds the conversion operator. Port 0: the tiny record(s), with the input's ts, and key = the
 * 8-byte little-endian platform_id then log_user_id of the tiny record (valid during the push).
 * Returns 0, or -1 (out of memory, more than TINY_MAX_KEYS keys). */
int tiny_op_add(rt_graph *g, const char *uid, const tiny_op_config *cfg, rt_op **out);

#endif
