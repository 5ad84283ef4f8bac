/* The records that cross flat-output's operators (spec/flat-output.md): their rt_record types,
 * and the error rows that are not protobufs. Protobuf records are the generated structs of
 * proto/logproc/join.proto (package event) and the wire schema. */
#ifndef LOGPROC_JOIN_RECORDS_H
#define LOGPROC_JOIN_RECORDS_H

#include <stdint.h>

#include "jobs/common_ops.h"
#include "logproc/join.pb-c.h"

/* rt_record.type values of flat-output (REC_VIEW ... REC_ACTION of common_ops.h are used for the
 * full input records). data points to the struct named. */
enum {
    REC_TINY_EVENT = 200,       /* Event__TinyEvent */
    REC_TINY_DELIVERY_LOG,      /* Event__TinyDeliveryLog */
    REC_COMBINED_DELIVERY_LOG,  /* Event__CombinedDeliveryLog */
    REC_JOINED_EVENT,           /* Event__JoinedEvent (a joined impression or action) */
    REC_FLAT_RESPONSE_INSERTION,/* Event__FlatResponseInsertion */
    REC_DROPPED_MERGE_DETAILS,  /* Event__DroppedMergeDetailsEvent */
    REC_VALIDATION_ERROR,       /* join_validation_error */
    REC_MISMATCH_ERROR,         /* join_mismatch_error */
    REC_CONTENT_API_ERROR,      /* content_api_error (content_lookup.h) */
};

/* ai.promoted.metrics.error enums (spec §13), as Avro symbol indexes. */
typedef enum {
    JOIN_RT_USER, JOIN_RT_VIEW, JOIN_RT_DELIVERY_LOG, JOIN_RT_REQUEST, JOIN_RT_REQUEST_INSERTION,
    JOIN_RT_EXECUTION_INSERTION, JOIN_RT_RESPONSE_INSERTION, JOIN_RT_IMPRESSION, JOIN_RT_ACTION,
} join_record_type;

typedef enum {
    JOIN_ET_MISSING_FIELD, JOIN_ET_MISSING_JOINABLE_ID, JOIN_ET_MISMATCHED_MATRIX_HEADER_LENGTH,
} join_error_type;

typedef enum {
    JOIN_F_MULTIPLE, JOIN_F_PLATFORM_ID, JOIN_F_LOG_USER_ID, JOIN_F_USER_ID, JOIN_F_SESSION_ID,
    JOIN_F_VIEW_ID, JOIN_F_REQUEST_ID, JOIN_F_INSERTION_ID, JOIN_F_CONTENT_ID, JOIN_F_IMPRESSION_ID,
    JOIN_F_ACTION_ID, JOIN_F_CART_CONTENT_QUANTITY, JOIN_F_CART_CONTENT_ID,
} join_field;

typedef enum {
    JOIN_FN_FLAT_UTIL_SET_FLAT_USER_FLAT_EVENT,
    JOIN_FN_FLAT_UTIL_SET_FLAT_USER_FLAT_RESPONSE_INSERTION,
    JOIN_FN_FLAT_UTIL_SET_FLAT_VIEW,
    JOIN_FN_FLAT_UTIL_SET_FLAT_REQUEST,
    JOIN_FN_FLAT_UTIL_SET_FLAT_REQUEST_INSERTION,
    JOIN_FN_FLAT_UTIL_SET_FLAT_API_EXECUTION_INSERTION,
    JOIN_FN_FLAT_UTIL_SET_FLAT_RESPONSE_INSERTION,
    JOIN_FN_FLAT_UTIL_SET_FLAT_IMPRESSION,
    JOIN_FN_FLAT_UTIL_SET_FLAT_ACTION,
    JOIN_FN_TINY_FLAT_UTIL_MERGE_IMPRESSION,
    JOIN_FN_TINY_FLAT_UTIL_MERGE_ACTION,
    JOIN_FN_TINY_FLAT_UTIL_CREATE_TINY_FLAT_RESPONSE_INSERTIONS,
} join_log_function;

/* A ValidationError row (§13.1). Strings are borrowed from the record validated; NULL = "". */
typedef struct join_validation_error {
    join_record_type record_type;
    join_error_type error_type;
    int64_t platform_id;
    const char *log_user_id, *view_id, *request_id, *response_insertion_id, *impression_id,
        *action_id;
    int64_t client_log_timestamp, event_api_timestamp, log_timestamp;
    join_field field;
} join_validation_error;

/* A MismatchError row (§13.2). lhs_* is a snapshot of the LHS ids before the merge. Either the
 * string pair or the long pair is meaningful, by field. Strings borrowed; NULL = "". */
typedef struct join_mismatch_error {
    join_record_type record_type;
    join_field field;
    int64_t lhs_platform_id;
    const char *lhs_log_user_id, *lhs_session_id, *lhs_view_id, *lhs_auto_view_id,
        *lhs_request_id, *lhs_insertion_id, *lhs_impression_id;
    const char *rhs_record_id;
    const char *lhs_string, *rhs_string;
    int64_t lhs_long, rhs_long;
    int64_t log_timestamp;
    join_log_function log_function_name;
} join_mismatch_error;

#endif
