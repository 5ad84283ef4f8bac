/* The jobs `logproc run` knows: each builds its operator graph per task from its flags. */
#ifndef LOGPROC_JOB_H
#define LOGPROC_JOB_H

#include <stddef.h>
#include <stdio.h>

#include "jobs/job_flags.h"
#include "runtime/graph.h"

typedef struct job_def {
    const char *name; /* "raw-output" */
    const char *help; /* one line */
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
} job_def;

/* Every job, NULL-terminated. */
extern const job_def *const job_defs[];

/* The job named name, or NULL. */
const job_def *job_find(const char *name);

/* Runs `logproc run JOB` with argv after the job name. Returns the exit status. */
int job_run_main(const job_def *def, int argc, char **argv);

#endif
