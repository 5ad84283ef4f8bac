/* raw-output: archives every raw record type of the LogRequest stream as partitioned Avro tables
 * (spec/other-jobs.md §A). */
#ifndef LOGPROC_RAW_JOB_H
#define LOGPROC_RAW_JOB_H

#include "jobs/job.h"

extern const job_def raw_job_def;

#endif
