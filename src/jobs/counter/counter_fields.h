/* What the counter reads from a JoinedEvent (spec/other-jobs.md §B.3, the reference's FlatUtil
 * and CounterUtil): ids, content id, the two timestamps, the count, the aggregate metric, the
 * lowered query and its hash, and the OS and user-agent families. */
#ifndef LOGPROC_COUNTER_FIELDS_H
#define LOGPROC_COUNTER_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event/event.pb-c.h"
#include "jobs/counter/ua_family.h"
#include "logproc/join.pb-c.h"

typedef struct counter_fields {
    int64_t platform_id;                            /* a Java long: rendered signed */
    const char *log_user_id, *user_id, *content_id; /* never NULL; borrowed from the event */
    int64_t log_ts;                                 /* getLogTimestamp: the record timestamp */
    int64_t event_ts;                               /* getEventApiTimestamp: the bucketing time */
    int64_t count;                                  /* cart quantity, else 1 */
    int metric;                                     /* AggMetric value */
    const char *query; /* request.search_query lower-cased; borrowed from the caller's buffer */
    size_t query_len;
    uint64_t query_hash;
    const char *os, *ua; /* families; valid until the parser's next call */
    size_t os_len, ua_len;
    const Event__JoinedEvent *event; /* the event the fields were read from (borrowed) */
} counter_fields;

/* The first non-zero platform_id of ids, user, view, request, response_insertion, impression,
 * action; 0 if none. */
uint64_t cfield_platform_id(const Event__JoinedEvent *e);
/* The first non-blank (empty or whitespace-only is blank) log_user_id / user_id of ids,
 * user.user_info, view.user_info, request.user_info, response_insertion.user_info,
 * impression.user_info, action.user_info; when all are blank, the last one's value ("" if
 * absent), as the reference's firstNotEmpty. */
const char *cfield_log_user_id(const Event__JoinedEvent *e);
const char *cfield_user_id(const Event__JoinedEvent *e);
/* The first non-blank content_id of response_insertion, api_execution_insertion, impression,
 * action (the last one's value when all are blank). */
const char *cfield_content_id(const Event__JoinedEvent *e);
/* getLogTimestamp: the first non-zero timing.log_timestamp of the top-level timing, action,
 * impression, api_execution_insertion, response_insertion, request, view, session, user. */
int64_t cfield_log_timestamp(const Event__JoinedEvent *e);
/* getEventApiTimestamp: the first non-zero timing.event_api_timestamp of action, impression,
 * response_insertion, request, view, session, user (not the top-level timing). */
int64_t cfield_event_api_timestamp(const Event__JoinedEvent *e);
/* CounterUtil count: action.single_cart_content.quantity when the action has one (0 or negative
 * included), else 1. */
int64_t cfield_count(const Event__JoinedEvent *e);
/* AggMetric: COUNT_IMPRESSION for an impression without action; UNKNOWN_AGGREGATE (0) for a
 * custom, unknown or unmapped action type (FOLLOW and above); else action_type << 5. */
int cfield_metric(const Event__JoinedEvent *e);
/* Java's String.isBlank of the reference's StringUtil: empty or only whitespace
 * (Character.isWhitespace). */
bool cfield_is_blank(const char *s, size_t len);
/* The number of UTF-16 code units of a UTF-8 string (Java's String.length()). */
size_t cfield_utf16_length(const char *s, size_t len);

/* Fills every field of out. The lowered query is written into qbuf (qcap bytes; at least
 * text_lower_cap(strlen(search_query))); returns -1 when it does not fit, else 0. ua is the
 * caller's parser. Cost: the getters' walks, one lower-casing, one xxHash64, one UA lookup. */
int cfield_extract(const Event__JoinedEvent *e, ua_family *ua, char *qbuf, size_t qcap,
                   counter_fields *out);

#endif
