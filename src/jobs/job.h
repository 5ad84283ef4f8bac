/* The jobs `logproc run` knows: each builds its operator graph per task from its flags. */
#ifndef LOGPROC_JOB_H
#define LOGPROC_JOB_H

#include <stddef.h>
#include <stdio.h>

#include "jobs/job_flags.h"
#include "runtime/graph.h"

/* An input besides --source (content-metrics' joined events): its record files and where they
 * go. The driver reads such a job's inputs in one task (runtime/task.h: one watermark per file,
 * the next record by timestamp), because the job's aggregates are keyed by content, not by the
 * user keys the input partitions hold; a shuffle across tasks comes with the Kafka connector. */
typedef struct job_input {
    const char *flag;        /* the flag naming the files, for messages ("joinedEventSource") */
    const flag_list *files;  /* record files (borrowed from the job's options) */
    const char *root_uid;    /* uid of the operator the files feed (input 0), built by build */
    int64_t max_out_of_orderness; /* ms, for each file's watermark */
    /* The record's event time from its value and its record timestamp (a Flink timestamp
     * assigner); NULL keeps the record timestamp. Must be cheap and never fail: a value it
     * cannot read keeps record_ts (the decoder reports it). */
    int64_t (*assign_ts)(const uint8_t *value, size_t len, int64_t record_ts);
} job_input;

typedef struct job_def {
    const char *name; /* "raw-output" */
    const char *help; /* one line */
    /* The Kafka consumer group (spec other-jobs §1.3, README Resolutions), prefixed with a
     * non-live --jobLabel: "loglogrequest", "joinuser", "countEvents",
     * "contentmetrics-logrequest". Offsets are committed under it, as the reference did. */
    const char *kafka_group;
    /* 1: the job's aggregates are not keyed by the users its input partitions hold (counter,
     * content-metrics), so one task reads every partition of its inputs; 0: one task per
     * partition (or file). */
    int one_task;
    /* The job's own flag table, bound to a freshly allocated options struct (*opts, freed by
     * free_opts after flags_free). */
    int (*new_opts)(void **opts, flag_table *table);
    void (*free_opts)(void *opts);
    /* Cross-flag checks after parsing. Returns 0 or -1 with err. */
    int (*check)(const job_common_opts *common, void *opts, char *err, size_t errlen);
    /* Builds the graph of one task into g: returns the root operator the task's source feeds
     * (input 0). run_id and task name the task's part files. Returns 0 or -1 with err. */
    int (*build)(rt_graph *g, const job_common_opts *common, const void *opts, const char *run_id,
                 const char *task, rt_op **root, char *err, size_t errlen);
    /* Optional (NULL for one-input jobs): fills *in with the job's second input and returns 1,
     * or returns 0 when it has none. A job with a second input runs as one task (job_input),
     * also when the input has no files (build then need not add root_uid). */
    int (*second_input)(const job_common_opts *common, const void *opts, job_input *in);
} job_def;

/* content-metrics (jobs/content/content_job.c). */
extern const job_def content_job_def;

/* For a job's graph builder: formats "<job>: <what>[: <the graph's first error>]" into err and
 * returns -1. */
int job_build_fail(rt_graph *g, const char *job, const char *what, char *err, size_t errlen);

/* Every job, NULL-terminated. */
extern const job_def *const job_defs[];

/* The job named name, or NULL. */
const job_def *job_find(const char *name);

/* Runs `logproc run JOB` with argv after the job name. Returns the exit status. */
int job_run_main(const job_def *def, int argc, char **argv);

#endif
