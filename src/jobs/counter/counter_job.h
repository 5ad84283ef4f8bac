/* counter (spec/other-jobs.md §B): sliding hourly and daily counts and last-time features of
 * joined events, written to Redis hashes (or a RESP command file). docs/COUNTER.md. */
#ifndef LOGPROC_COUNTER_JOB_H
#define LOGPROC_COUNTER_JOB_H

#include "jobs/job.h"

extern const job_def counter_job_def;

/* The joined-event topic the counter reads: --joinedEventTopic, else
 * metrics.[<input label>.]<kafkaDataset>.joined-event with the input label
 * --overrideInputLabel when set, else --jobLabel (omitted when live). Exposed for tests. */
void counter_input_topic(const char *job_label, const char *override_input_label,
                         const char *kafka_dataset, const char *topic_override, char *buf,
                         size_t cap);

#endif
