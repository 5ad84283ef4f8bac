/* Automatic recovery (Flink's restart strategy): a job with checkpoints runs in a worker process
 * that its supervisor restarts from the last checkpoint when it fails.
 *
 *   supervisor (the `logproc run` process: holds the job's name, pid file owner)
 *     └─ worker (fork; dies with the supervisor: PR_SET_PDEATHSIG)
 *
 * A worker that fails (exit 1, or killed by a signal: an S3 outage past its retries, a Kafka
 * transaction that timed out, the OOM killer) is restarted after --restartDelay, doubled per
 * consecutive failure up to --restartMaxDelay; the count of consecutive failures starts again
 * after a worker ran --restartResetInterval, and after --restartAttempts of them the job fails.
 * Outputs stay exactly-once: the new worker restores every task from its newest checkpoint, as
 * after a crash. Not restarted: exit 0 (done, stopped), 2 (usage), 137 (cancelled), and a first
 * worker that fails before its tasks ran (JOB_EXIT_NOT_STARTED). SIGTERM,
 * SIGINT and SIGUSR1 to the supervisor are passed to the worker, so `kill`, `logproc stop` and
 * the control files work on the pid the job published. */
#ifndef LOGPROC_JOB_SUPERVISE_H
#define LOGPROC_JOB_SUPERVISE_H

#include <stdint.h>

/* A worker's exit status when its first start failed before any task ran: not restarted (the
 * supervisor exits 1). Later workers that fail at start are restarted: an outage can stop a
 * restart from loading its checkpoints. */
#define JOB_EXIT_NOT_STARTED 3

typedef struct job_restart_opts {
    int64_t attempts;       /* consecutive restarts allowed; -1: unlimited; 0: no supervisor */
    int64_t delay_ms;       /* first delay */
    int64_t max_delay_ms;   /* delay cap */
    int64_t reset_ms;       /* a worker that ran this long resets the failure count */
} job_restart_opts;

/* Forks the worker and supervises it. Returns -1 in the worker (which goes on to run the job),
 * or, in the supervisor, the exit status of the job once it ends for good. Call before any
 * thread is created. name is for log lines. */
int job_supervise(const char *name, const job_restart_opts *o);

/* In a worker: how many times the job was restarted before it (0 in the first worker and when
 * not supervised), and the supervisor's pid (0 when not supervised). */
int job_restart_count(void);
long job_supervisor_pid(void);

#endif
