/*
 * avro_encode: Avro binary datums, written straight from protobuf-c messages (the hot path of
 * the archive tables) and from the small derived records of the schemas/ directory.
 *
 * A protobuf message is encoded by walking the layout of its avsc_schema (avro_schema.h), which
 * is the per-descriptor plan: field offsets, presence kind, Avro type and enum number -> symbol
 * tables are all computed once when the schema is built. Encoding then reads the C structs
 * directly and appends bytes to a caller-owned buffer; it allocates nothing unless the buffer
 * has to grow, and the buffer never grows past its hard limit.
 *
 * Datum bytes follow the Avro 1.11 binary encoding: zigzag varints for int/long/enum index/
 * union branch/lengths, little-endian IEEE float and double, one byte per boolean,
 * length-prefixed strings and bytes, and every non-empty array as one block followed by 0.
 * An enum number the proto does not name is written as UNRECOGNIZED. Data below the last
 * unrolled depth (avro_schema.h) is cut: the field is not in the schema, so nothing is
 * written for it, and every cut value is counted (per call and in a process-wide counter).
 */
#ifndef LOGPROC_AVRO_ENCODE_H
#define LOGPROC_AVRO_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "formats/avro_schema.h"
#include "runtime/buf.h"

/* ---- output buffer --------------------------------------------------------------------------- */

/* The runtime's growable byte buffer with a hard limit (runtime/buf.h), so a datum is encoded
 * straight into whatever buffer the caller writes on with. The encoder may allocate up to the
 * largest record's fixed-size headroom (avsc_record.max_fixed, a few hundred bytes) past
 * `limit`; len never passes it. */
typedef rt_buf avenc_buf;

/* Sets up an empty buffer that may grow to `limit` bytes. Allocates nothing yet. */
static inline void avenc_buf_init(avenc_buf *b, size_t limit)
{
    rt_buf_init(b, limit ? limit : 1);
}

/* Frees the bytes; the buffer is empty (and reusable) afterwards. */
static inline void avenc_buf_free(avenc_buf *b)
{
    rt_buf_free(b);
}

/* Forgets the contents, keeps the allocation. */
static inline void avenc_buf_clear(avenc_buf *b)
{
    rt_buf_reset(b);
}

/* ---- protobuf messages ----------------------------------------------------------------------- */

/* Returned (instead of -1) when a datum would pass the buffer's limit. */
#define AVENC_E_LIMIT (-2)

/* Counters an encode call adds to (optional; pass NULL when not wanted). */
typedef struct avenc_stats {
    uint64_t depth_cut;         /* values dropped because they nest deeper than AVSC_MAX_LEVEL */
    uint64_t enum_unrecognized; /* enum numbers written as UNRECOGNIZED */
} avenc_stats;

/*
 * Appends the Avro datum of `msg` for the schema `s` to `out`. msg must be of the schema's root
 * type. Returns 0; AVENC_E_LIMIT with err naming the record type and the limit when the datum
 * would pass out->limit (out->len is then restored, so the buffer holds only the earlier
 * datums); or -1 with err for a message of another type or out of memory. Adds to *stats if given,
 * and every cut value to the process-wide counter (avenc_depth_cut_total). Cost: linear in the
 * message; no allocation unless out grows. Thread-safe for distinct buffers (the schema is read
 * only).
 */
int avenc_message(const avsc_schema *s, const ProtobufCMessage *msg, avenc_buf *out,
                  avenc_stats *stats, char *err, size_t errlen);

/* Values cut at the depth limit since the process started, over all threads (the metric). */
uint64_t avenc_depth_cut_total(void);

/* ---- derived records (the .avsc files in schemas/, namespace ai.promoted.metrics.common) ----- */
/* Each appends one datum to `out`: 0, or AVENC_E_LIMIT with err when out->limit would be
 * passed (out->len is restored). NULL strings are written as "". Field order is the schema
 * file's. */

/* schemas/log_user_user.avsc: LogUserUser (other-jobs §A.4). */
typedef struct avenc_log_user_user {
    int64_t platform_id;
    int64_t event_api_timestamp;
    const char *log_user_id;
    const char *user_id;
} avenc_log_user_user;
int avenc_log_user_user_datum(const avenc_log_user_user *r, avenc_buf *out, char *err,
                              size_t errlen);

/* schemas/delivery_log_ids.avsc: DeliveryLogIds. execution_server is the proto number of
 * delivery.ExecutionServer; it is mapped by name to the Avro enum
 * [UNKNOWN_EXECUTION_SERVER, UNRECOGNIZED, API, SDK, SIMPLE_API], an unnamed number to
 * UNRECOGNIZED. */
typedef struct avenc_delivery_log_ids {
    int64_t platform_id;
    int64_t event_api_timestamp;
    const char *log_user_id;
    const char *view_id;
    const char *request_id;
    const char *client_request_id;
    int32_t execution_server;
    const char *search_query;
    const char *user_agent;
} avenc_delivery_log_ids;
int avenc_delivery_log_ids_datum(const avenc_delivery_log_ids *r, avenc_buf *out, char *err,
                                 size_t errlen);

/* The DeliveryLogIds enum symbol index of a delivery.ExecutionServer number. */
int32_t avenc_execution_server_index(int32_t proto_number);

/* schemas/request_insertion_ids.avsc: RequestInsertionIds; retrieval_rank is null unless
 * has_retrieval_rank. */
typedef struct avenc_request_insertion_ids {
    int64_t platform_id;
    int64_t event_api_timestamp;
    const char *request_id;
    const char *content_id;
    int has_retrieval_rank;
    int64_t retrieval_rank;
} avenc_request_insertion_ids;
int avenc_request_insertion_ids_datum(const avenc_request_insertion_ids *r, avenc_buf *out,
                                      char *err, size_t errlen);

/* schemas/response_insertion_ids.avsc: ResponseInsertionIds. */
typedef struct avenc_response_insertion_ids {
    int64_t platform_id;
    int64_t event_api_timestamp;
    const char *request_id;
    const char *insertion_id;
    const char *content_id;
    int64_t position;
} avenc_response_insertion_ids;
int avenc_response_insertion_ids_datum(const avenc_response_insertion_ids *r, avenc_buf *out,
                                       char *err, size_t errlen);

/* schemas/invalid_record.avsc: InvalidRecord, the dead-letter row (spec README "Record file").
 * raw may be NULL when raw_len is 0; raw_length is the size of the original input, which may
 * exceed raw_len when the input was cut at --maxRecordBytes. */
typedef struct avenc_invalid_record {
    const char *source;
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    const char *error;
    const uint8_t *raw;
    size_t raw_len;
    int64_t raw_length;
} avenc_invalid_record;
int avenc_invalid_record_datum(const avenc_invalid_record *r, avenc_buf *out, char *err,
                               size_t errlen);

#endif
