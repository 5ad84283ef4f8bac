/* The records that cross the counter job's operators (spec/other-jobs.md §B): the counted event,
 * the counting operators' results, and the Redis commands. All are borrowed for the call that
 * carries them (runtime/record.h). */
#ifndef LOGPROC_COUNTER_RECORDS_H
#define LOGPROC_COUNTER_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    REC_COUNTER_EVENT = 300, /* data: counter_fields * (jobs/counter/counter_fields.h) */
    REC_COUNTER_WINDOW,      /* data: counter_window_result * */
    REC_COUNTER_LAST_TIME,   /* data: counter_last_time_result * */
    REC_COUNTER_TOP_QUERY,   /* data: uint64_t * (a query hash that passed the threshold) */
    REC_COUNTER_COMMAND,     /* data: counter_command * */
};

/* A sliding counter's result for one bucket (WindowAggResult): the sum of the key's windows that
 * fall in the last `bucket` units, and the key's TTL for that bucket (seconds, 0: none). */
typedef struct counter_window_result {
    int table; /* the operator's tag: a ctable_id in the job */
    const uint8_t *key;
    size_t key_len;
    int bucket;      /* 1, 7, 30 */
    int64_t unit_ms; /* 3600000 (hourly) or 86400000 (daily) */
    int64_t count;
    int64_t ttl;
} counter_window_result;

/* A LastTimeAndCount result (LastTimeAggResult): the event time of the last processed event and
 * the count over the TTL days. */
typedef struct counter_last_time_result {
    int table;
    const uint8_t *key;
    size_t key_len;
    int64_t last_ts; /* ms */
    int64_t count;
    int64_t ttl; /* seconds: 8035200, or 259200 when count is 0 */
} counter_last_time_result;

/* One hash write: HSET key field value (del false) or HDEL key field (del true), then a TTL action
 * on the whole key: ttl > 0 EXPIRE key ttl, ttl < 0 PERSIST key, 0 nothing. */
typedef struct counter_command {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *field;
    size_t field_len;
    bool del;
    int64_t value;
    int64_t ttl;
} counter_command;

#endif
