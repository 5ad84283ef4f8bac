/*
 * pb_private: the ASSUMED private input fields, decoded from and encoded into
 * protobuf-c's unknown-field list.
 *
 * The private Promoted schema carries four fields whose numbers are not public
 * (spec README, "Wire schema"); logproc assumes:
 *
 *   event.LogRequest.session_profile          = 9   repeated logproc.priv.SessionProfile
 *   event.LogRequest.session                  = 10  repeated logproc.priv.Session
 *   delivery.DeliveryExecution.execution_insertion = 1  repeated delivery.Insertion
 *   delivery.Insertion.feature_stage          = 17  logproc.priv.FeatureStage
 *
 * They are not declared in the wire .proto files, so protobuf-c keeps them as
 * unknown fields and a wrong guess can never fail a record. This module
 * decodes them in a second step: an occurrence with the wrong wire type, bytes
 * that do not parse as the assumed type, nesting beyond PB_MAX_DEPTH or an
 * invalid UTF-8 string counts as absent and adds one to pb_private_bad_fields.
 *
 * Encoding: the setters append the field to the unknown list, so protobuf-c
 * packs it AFTER all known fields, in the order added (e.g. a LogRequest's
 * session_profile (9) comes after auto_view (25)). Java writes it between
 * fields 8 and 11; every protobuf parser reads both orders to the same message.
 *
 * Memory: every getter and setter takes the allocator that owns the message
 * (NULL = malloc/free). Unknown-field data added by a setter belongs to the
 * message: `*__free_unpacked(msg, alloc)` frees it for an unpacked message; for
 * a message built by hand call pb_private_clear(msg, alloc) before dropping it.
 */
#ifndef LOGPROC_PB_PRIVATE_H
#define LOGPROC_PB_PRIVATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "delivery/delivery.pb-c.h"
#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "logproc/private.pb-c.h"

/* Assumed field numbers (see above). */
#define PB_PRIVATE_LOG_REQUEST_SESSION_PROFILE 9u
#define PB_PRIVATE_LOG_REQUEST_SESSION 10u
#define PB_PRIVATE_EXECUTION_INSERTION 1u
#define PB_PRIVATE_INSERTION_FEATURE_STAGE 17u

/*
 * Occurrences of assumed fields that were dropped as undecodable, process-wide.
 * Metrics export it; tests read it before and after a call.
 */
extern _Atomic uint64_t pb_private_bad_fields;

/* One assumed field: where it lives, its number, name and message type. */
typedef struct {
    const ProtobufCMessageDescriptor *owner; /* message that carries it */
    uint32_t number;
    const char *name; /* proto field name, e.g. "session_profile" */
    const ProtobufCMessageDescriptor *type;
    int repeated;
} pb_private_field;

/* The table of all assumed fields (static storage); *n gets its length. */
const pb_private_field *pb_private_fields(size_t *n);

/* ---- generic ------------------------------------------------------------- */

/*
 * Decodes every length-delimited unknown occurrence of `number` in m as a
 * message of `type`, in wire order. Bad occurrences are skipped and counted.
 * On success *out is an array of *n_out messages (NULL and 0 when none), all
 * allocated with alloc; free with pb_private_free_list(). Returns 0, or -1 on
 * allocation failure (nothing to free then). Cost: one unpack per occurrence.
 */
int pb_private_get_list(const ProtobufCMessage *m, uint32_t number,
                        const ProtobufCMessageDescriptor *type, ProtobufCAllocator *alloc,
                        ProtobufCMessage ***out, size_t *n_out);

/*
 * Decodes a singular message field: all occurrences are merged as protobuf
 * does (their bytes are concatenated and parsed once). *out is NULL when the
 * field is absent or undecodable (counted). Free with
 * protobuf_c_message_free_unpacked(*out, alloc). Returns 0, or -1 on OOM.
 */
int pb_private_get_one(const ProtobufCMessage *m, uint32_t number,
                       const ProtobufCMessageDescriptor *type, ProtobufCAllocator *alloc,
                       ProtobufCMessage **out);

/* Frees a list from pb_private_get_list (each message and the array). */
void pb_private_free_list(ProtobufCMessage **list, size_t n, ProtobufCAllocator *alloc);

/*
 * Packs `value` and appends it to m's unknown fields as field `number`
 * (length-delimited). Returns 0, or -1 on OOM (m unchanged). Cost: packs the
 * value once and copies the unknown-field array (O(unknown fields)).
 */
int pb_private_add(ProtobufCMessage *m, uint32_t number, const ProtobufCMessage *value,
                   ProtobufCAllocator *alloc);

/* Removes every unknown occurrence of `number` from m (freeing its data). */
void pb_private_remove(ProtobufCMessage *m, uint32_t number, ProtobufCAllocator *alloc);

/* Frees all of m's unknown fields (not those of nested messages). */
void pb_private_clear(ProtobufCMessage *m, ProtobufCAllocator *alloc);

/* ---- typed getters (same contracts as pb_private_get_list / _one) -------- */

int pb_private_get_session_profiles(const Event__LogRequest *lr, ProtobufCAllocator *alloc,
                                    Logproc__Priv__SessionProfile ***out, size_t *n_out);
int pb_private_get_sessions(const Event__LogRequest *lr, ProtobufCAllocator *alloc,
                            Logproc__Priv__Session ***out, size_t *n_out);
/* The returned insertions keep their own unknown fields, so
 * pb_private_get_feature_stage() works on them. */
int pb_private_get_execution_insertions(const Delivery__DeliveryExecution *ex,
                                        ProtobufCAllocator *alloc, Delivery__Insertion ***out,
                                        size_t *n_out);
int pb_private_get_feature_stage(const Delivery__Insertion *ins, ProtobufCAllocator *alloc,
                                 Logproc__Priv__FeatureStage **out);

/* ---- typed setters (same contract as pb_private_add) --------------------- */

int pb_private_add_session_profile(Event__LogRequest *lr, const Logproc__Priv__SessionProfile *sp,
                                   ProtobufCAllocator *alloc);
int pb_private_add_session(Event__LogRequest *lr, const Logproc__Priv__Session *s,
                           ProtobufCAllocator *alloc);
int pb_private_add_execution_insertion(Delivery__DeliveryExecution *ex,
                                       const Delivery__Insertion *ins, ProtobufCAllocator *alloc);
/* Replaces any feature_stage already present. */
int pb_private_set_feature_stage(Delivery__Insertion *ins, const Logproc__Priv__FeatureStage *fs,
                                 ProtobufCAllocator *alloc);

#endif
