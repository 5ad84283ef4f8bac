/* content-metrics' own flags (spec/other-jobs.md §C.7, the Kafka flags of §1.4 it reads, and
 * logproc's --joinedEventSource and --doubleCountCartActions), declared once in content_flags.c. */
#ifndef LOGPROC_CONTENT_FLAGS_H
#define LOGPROC_CONTENT_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/job_flags.h"
#include "runtime/flags.h"

typedef struct content_opts {
    /* §C.7 */
    char *jobName;
    char *region;
    char *overrideInputLabel;
    bool outputParquet, outputCsv;
    bool outputCumulatedFiles, outputCumulatedKafka, outputCumulatedKinesis;
    char *cumulatedWindowStep;
    char *kinesisStream;
    int64_t keepFirstViewDuration, keepFirstImpressionDuration, keepFirstActionDuration;
    int64_t keepFirstJoinedImpressionDuration;
    /* Kafka (§1.4) */
    char *joinedEventTopic;
    int64_t maxJoinedEventOutOfOrderness;
    char *maxPollJoinedEvent, *maxPollFlatResponseInsertion, *maxPollLogUserUser;
    char *joinedUserEventTopic, *flatUserResponseInsertionTopic, *flatResponseInsertionTopic;
    char *logUserUserTopic;
    int64_t maxFlatResponseInsertionOutOfOrderness, maxLogUserUserOutOfOrderness;
    /* logproc */
    flag_list joinedEventSource;
    bool doubleCountCartActions;
    /* derived by content_flags_check */
    int64_t cumulated_step_ms;
    char joined_source_uid[256]; /* the joined-event source operator's uid */
} content_opts;

/* The table bound to o. */
flag_table content_flags_table(content_opts *o);

/* Cross-flag checks: at least one output, Kinesis needs --kinesisStream and --region, the
 * cumulated step parses and divides a day. Fills the derived fields. Returns 0 or -1 with err
 * naming the flag and the value. */
int content_flags_check(const job_common_opts *c, content_opts *o, char *err, size_t errlen);

/* Parses a window step: Flink SQL's `INTERVAL 'n' UNIT` (UNIT one of SECOND, MINUTE, HOUR, DAY,
 * case-insensitive, optionally plural) or an ISO-8601 duration (PT1M). Returns 0 with *ms, or -1. */
int content_parse_interval(const char *s, int64_t *ms);

/* The job name as the reference prefixes it: <label>.<jobName>, or jobName when live. */
void content_job_name(const job_common_opts *c, const content_opts *o, char *buf, size_t cap);

/* The joined-event topic: --joinedEventTopic, else metrics[.<input label>].<kafkaDataset>.joined-event
 * where the input label is --overrideInputLabel when set, else --jobLabel. */
void content_joined_event_topic(const job_common_opts *c, const content_opts *o, char *buf,
                                size_t cap);

#endif
