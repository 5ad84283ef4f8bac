/* Stream U of the counter (spec/other-jobs.md §B.2): joined events reduced to the fields the
 * user tables need, joined in event time with the latest LogUserUser (log user -> user) of their
 * (platform_id, log_user_id), so the user tables count by user_id.
 *
 * decode-log-user-user: the root of the LogUserUser input (an Avro binary datum of
 * schemas/log_user_user.avsc per record, §A.7); port 0 REC_COUNTER_LOG_USER_USER with
 * ts = eventApiTimestamp, port 1 REC_INVALID for bytes that are not such a datum.
 *
 * join-log-user-user (a temporal inner join): input 0 the L stream's REC_COUNTER_EVENT records,
 * input 1 REC_COUNTER_LOG_USER_USER. Each event is reduced (user_stream_reduce) and kept, packed,
 * under its key until the watermark reaches its ts; then it takes the user_id of the version with
 * the largest ts <= its own, or is dropped (counted) when there is none, and goes out as a
 * REC_COUNTER_EVENT of the reduced event with its own ts. Versions older than the newest one at
 * or below the watermark are dropped as the watermark passes them. State: packed reduced events
 * and (ts, user_id) versions per key, in rt_kv; a key's waiting events are limited to
 * USER_STREAM_MAX_PENDING_BYTES (over it the task fails, naming the key's size and the limit). */
#ifndef LOGPROC_USER_STREAM_H
#define LOGPROC_USER_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "logproc/join.pb-c.h"
#include "runtime/graph.h"

#define REC_COUNTER_LOG_USER_USER 310
#define USER_STREAM_MAX_PENDING_BYTES ((size_t)64 << 20)

typedef struct user_stream_luu {
    int64_t platform_id;
    int64_t event_api_timestamp;
    const char *log_user_id; /* borrowed from the record bytes, not NUL-terminated */
    size_t log_user_id_len;
    const char *user_id;
    size_t user_id_len;
} user_stream_luu;

/* Decodes one LogUserUser Avro binary datum (platformId long, eventApiTimestamp long, logUserId
 * string, userId string; zig-zag varints). Returns 0, or -1 if the bytes are short, malformed or
 * carry trailing bytes. Strings point into p. */
int user_stream_decode_luu(const uint8_t *p, size_t n, user_stream_luu *out);

/* The reduced copy of §B.2 step 1, built in *copy from e with shallow pointers into e and into
 * the caller's scratch structs (s), so it lives as long as both. ids is copied so that its
 * user_id can be set. */
typedef struct user_stream_scratch {
    Event__JoinedIdentifiers ids;
    Delivery__Request request;
    Common__Device device;
    Common__Browser browser;
    Event__Impression impression;
    Event__Action action;
} user_stream_scratch;
void user_stream_reduce(const Event__JoinedEvent *e, user_stream_scratch *s,
                        Event__JoinedEvent *copy);

/* Adds decode-log-user-user (a root: 1 input, ports 0 and 1). Returns 0 or -1. */
int user_stream_decode_op_add(rt_graph *g, const char *uid, size_t max_record_bytes, rt_op **out);

/* Adds join-log-user-user (2 inputs, 1 output). Returns 0 or -1. */
int user_stream_join_op_add(rt_graph *g, const char *uid, rt_op **out);

#endif
