/* Records and time: the values that cross operators.
 *
 * A record is a small struct passed by pointer from one operator to the next as a direct
 * function call (operator.h: rt_emit). The callee borrows it, and everything it points to, for
 * the duration of that call only: to keep anything it copies the bytes (into keyed state, say).
 * The runtime never allocates, copies or frees a record. */
#ifndef LOGPROC_RECORD_H
#define LOGPROC_RECORD_H

#include <stddef.h>
#include <stdint.h>

/* Event time is milliseconds since the Unix epoch in an int64_t. RT_TIME_MIN is "no watermark
 * yet" (minus infinity: nothing is late); RT_TIME_MAX is the end of time, the watermark of a
 * drained input, at which every timer fires. */
#define RT_TIME_MIN INT64_MIN
#define RT_TIME_MAX INT64_MAX

/* Record types below zero belong to the runtime; jobs number theirs from 0. */
#define RT_TYPE_SOURCE (-1)     /* data: const rt_source_record * (task.h), a good record */
#define RT_TYPE_SOURCE_BAD (-2) /* data: const rt_source_record * whose error is set */

typedef struct rt_record {
    int64_t ts; /* event time (ms); a record emitted from a timer carries the timer's time */
    int type;   /* job-defined (>= 0) or RT_TYPE_* */
    void *data; /* job-defined: a decoded message, a struct, raw bytes */
    size_t len; /* length of data when it is bytes; 0 otherwise */
    const uint8_t *key; /* the key the record is partitioned/keyed by, or NULL */
    size_t key_len;
} rt_record;

#endif
