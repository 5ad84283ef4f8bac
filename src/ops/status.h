/* The job's status as JSON for the REST API and the status page, built from a metrics snapshot
 * (and the one before it, for rates) and the job's plan.
 *
 * Metrics are grouped by their labels: `operator=<uid>,task=<t>` samples are summed per operator
 * over tasks (watermarks: the minimum over the tasks that have one), `operator=<uid>,output=<o>`
 * go to the operator's side outputs, `task=<t>` samples describe the task, anything else is
 * listed under "other". Counters also get a `<name>PerSecond` rate when a previous snapshot is
 * given. Nothing here knows the job: new metrics show up without code changes. */
#ifndef LOGPROC_OPS_STATUS_H
#define LOGPROC_OPS_STATUS_H

#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/metrics.h"

typedef struct ops_job_info {
    const char *id;               /* the job's name with its label ("blue.flat-output") */
    const char *job;              /* the job kind ("flat-output") */
    const char *run_id;           /* this run's id */
    const char *state;            /* "RUNNING", "STOPPING", ... */
    int64_t start_time_ms;        /* wall clock, ms since the epoch */
    int64_t now_ms;               /* wall clock */
    const char *checkpoint_store; /* "" when checkpointing is off */
    const char *plan_json;        /* rt_graph_plan_json of a task, or NULL before the first */
} ops_job_info;

/* GET /jobs/<id>/status: appends
 *   {"jid","name","state","run","startTime","now","duration","checkpointStore",
 *    "operators":[{"id","name","inputs",<metric>:value,...,"side":{<output>:n}}],
 *    "tasks":[{"id",<metric>:value,...}], "checkpoints":{"completed","lastTime",
 *    "lastDuration","lastSize"}, "other":[{"name","labels","value"}]}
 * Operators come in plan order (then any operator the plan lacks). Returns 0, or -1 (out's limit,
 * out of memory, a plan that is not JSON). Cost: O(samples × operators). */
int ops_status_json(const ops_job_info *info, const rt_metrics_snap *cur,
                    const rt_metrics_snap *prev, rt_buf *out);

/* GET /jobs/<id>/plan, Flink's shape:
 *   {"plan":{"jid","name","nodes":[{"id","description","inputs":[{"id"}]}]}} */
int ops_plan_json(const ops_job_info *info, rt_buf *out);

/* GET /jobs/<id>/checkpoints, Flink's shape where it applies:
 *   {"counts":{"completed":n},"latest":{"completed":{"latest_ack_timestamp","state_size",
 *    "end_to_end_duration"}},"tasks":[{"id","completed","latest_ack_timestamp","state_size",
 *    "end_to_end_duration"}]} (null "completed" before the first checkpoint). */
int ops_checkpoints_json(const ops_job_info *info, const rt_metrics_snap *cur, rt_buf *out);

/* The status page served at `/` (src/ops/status_page.html, embedded at build time): one HTML
 * file with its script and styles inline, no external assets. It polls GET /jobs and
 * GET /jobs/<id>/status every two seconds. */
extern const char ops_status_page[];
extern const unsigned long ops_status_page_len;

#endif
