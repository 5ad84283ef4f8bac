/* Checkpoints of a job's tasks in the checkpoint store (a local directory or s3://), and
 * savepoints (DESIGN.md §2 "Checkpoints").
 *
 * Each task has a jckpt_ctx (its own object-store handle: a task's checkpoint is written on the
 * thread that drives it). jckpt_hook is the task's rt_checkpoint_fn: it snapshots the task,
 * writes <store>/<task>/chk-<id> atomically, and only then tells the graph the checkpoint is
 * complete, so sinks publish what the checkpoint recorded as pending. The two newest
 * checkpoints of a task are kept; older ones are deleted after a newer one is durable.
 *
 * A savepoint (jckpt_request_savepoint) is the next checkpoint of every task, also written to
 * <savepoint>/<task>.ckpt; when the last task has written its own, _metadata lists them all (a
 * savepoint without _metadata is incomplete and is not restored). */
#ifndef LOGPROC_JOB_CHECKPOINT_H
#define LOGPROC_JOB_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "connectors/objstore.h"
#include "runtime/buf.h"
#include "runtime/checkpoint.h"
#include "runtime/task.h"

/* A savepoint in progress, shared by the tasks of one process. */
typedef struct jckpt_savepoint jckpt_savepoint;

typedef struct jckpt_ctx jckpt_ctx;

/* Opens the context of one task: store is the checkpoint store's url, cfg its S3 settings (may be
 * NULL), job/run_id/task name the checkpoints. Returns 0 or -1 with err. */
int jckpt_ctx_new(const char *store, const objstore_config *cfg, const char *job,
                  const char *run_id, const char *task, jckpt_ctx **out, char *err, size_t errlen);
void jckpt_ctx_free(jckpt_ctx *c);

/* A loaded checkpoint: its bytes (owned) and its decoded header and state span. */
typedef struct jckpt_loaded {
    rt_buf bytes;
    ckpt_header h;
    const uint8_t *state;
    size_t state_len;
    char from[1024]; /* where it was read, for logs */
} jckpt_loaded;
void jckpt_loaded_free(jckpt_loaded *l);

/* Loads the newest checkpoint of the task that verifies (a damaged one is logged and skipped).
 * Returns 1 with *l filled, 0 when the task has none, -1 with err. Sets the context's next id
 * after it. */
int jckpt_load_latest(jckpt_ctx *c, jckpt_loaded *l, char *err, size_t errlen);

/* Loads the task's checkpoint from a savepoint at url (which must have its _metadata). Returns 1,
 * 0 when the savepoint has no state for this task (it starts empty), -1 with err. */
int jckpt_load_savepoint(const char *url, const objstore_config *cfg, const char *task,
                         jckpt_loaded *l, char *err, size_t errlen);

/* Continue checkpoint ids after a restored one. */
void jckpt_set_next_id(jckpt_ctx *c, int64_t next);

/* The task's rt_checkpoint_fn; arg is its jckpt_ctx. */
int jckpt_hook(rt_task *t, void *arg, int final, char *err, size_t errlen);

/* Starts a savepoint to url for the given contexts (the running tasks of the process) and asks
 * each task for a checkpoint. then_stop: each task stops right after its savepoint, so no record
 * is processed past it (a stop with savepoint leaves nothing after the savepoint to publish). Returns the savepoint handle (poll jckpt_savepoint_done), or NULL
 * with err (one already in progress, out of memory). */
jckpt_savepoint *jckpt_request_savepoint(const char *url, const objstore_config *cfg,
                                         jckpt_ctx *const *ctxs, rt_task *const *tasks, size_t n,
                                         int then_stop, char *err, size_t errlen);
/* 0 while in progress, 1 when every task wrote its part and _metadata is written, -1 when it
 * failed (err). */
int jckpt_savepoint_done(jckpt_savepoint *sp, char *err, size_t errlen);
void jckpt_savepoint_free(jckpt_savepoint *sp);

typedef struct jckpt_stats {
    int64_t completed, failed;
    int64_t last_id, last_bytes, last_duration_ms, last_time_ms;
} jckpt_stats;
jckpt_stats jckpt_get_stats(const jckpt_ctx *c);

#endif
