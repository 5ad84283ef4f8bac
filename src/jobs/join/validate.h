/* SetLogTimestamp and validation of flat-output's input records (spec/flat-output.md §2.1,
 * §2.2): the log timestamp that every join uses as its clock, and the rules whose failure
 * removes a record and writes one ValidationError row per failed rule.
 *
 * Nothing here modifies the record it is given: a record is borrowed from upstream, and the same
 * message may reach other operators, so SetLogTimestamp returns a shallow copy (new top-level
 * struct and timing; a DeliveryLog also gets a new request) from the caller's allocator. */
#ifndef LOGPROC_JOIN_VALIDATE_H
#define LOGPROC_JOIN_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "jobs/join/join_records.h"
#include "runtime/graph.h"

typedef enum {
    VALIDATE_VIEW,         /* Event__View, REC_VIEW */
    VALIDATE_DELIVERY_LOG, /* Delivery__DeliveryLog, REC_DELIVERY_LOG */
    VALIDATE_IMPRESSION,   /* Event__Impression, REC_IMPRESSION */
    VALIDATE_ACTION,       /* Event__Action, REC_ACTION */
} validate_kind;

/* Most rules one record can fail (an Action: log user id, joinable id, cart quantity, cart
 * content id). */
#define VALIDATE_MAX_ERRORS 4

/* SetLogTimestamp (§2.1): returns through *out a copy of msg (a message of kind's type) whose
 * timing.log_timestamp is ts, creating timing when absent; for a DeliveryLog the timing is
 * request.timing (request created when absent). ts 0 leaves log_timestamp unset, as proto3
 * writes it. Only the structs on the path are new (from alloc); everything else is shared with
 * msg, which is not modified. Returns 0, or -1 when alloc fails. O(1). */
int validate_set_log_timestamp(validate_kind kind, const void *msg, int64_t ts,
                               ProtobufCAllocator *alloc, void **out);

/* Checks msg (of kind's type) against the rules of §2.2 and fills errs with one row per failed
 * rule, in the table's order; returns how many (0: valid). Rows borrow strings from msg.
 * DeliveryLog rules: empty request.user_info.log_user_id; a matrix row whose length differs
 * from the header count (MISMATCHED_MATRIX_HEADER_LENGTH, MULTIPLE); and, where the reference
 * crashes in RestructureDeliveryLog, a header made only of dots while the matrix has rows
 * (also MISMATCHED_MATRIX_HEADER_LENGTH, MULTIPLE: the header names no column path). Cost:
 * O(cart contents) or O(matrix rows + headers). */
size_t validate_record(validate_kind kind, const void *msg,
                       join_validation_error errs[VALIDATE_MAX_ERRORS]);

/* The rt_record type that carries kind's messages (REC_VIEW ...). */
int validate_rec_type(validate_kind kind);

/* Adds the SetLogTimestamp + validation operator for one stream. Input: records of kind's type.
 * Port 0: each valid record, as the copy with the log timestamp set (same ts, type and key;
 * the copy lives until the push returns). Port 1 "validation_error": one REC_VALIDATION_ERROR
 * per failed rule (data: join_validation_error, valid during the push), with the input's ts and
 * key; the invalid record itself goes nowhere else. Counters: numValidationErrors (rows),
 * numInvalidRecords (records removed). Returns 0 or -1 (out of memory). */
int validate_op_add(rt_graph *g, const char *uid, validate_kind kind, rt_op **out);

#endif
