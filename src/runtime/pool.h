/* Worker threads that drive tasks (--parallelism).
 *
 * N threads share a queue of runnable tasks: a worker takes a task, runs one rt_task_step (at most
 * step_records records), and puts it back unless it is done, so more tasks than threads all make
 * progress and a task is never driven by two threads at once. When every task reports IDLE the
 * workers wait a millisecond before asking again. The first task failure stops the others (no
 * drain) and is returned. Tasks share nothing mutable but the metrics registry and the memory
 * budget, which are thread-safe. */
#ifndef LOGPROC_POOL_H
#define LOGPROC_POOL_H

#include <stddef.h>

#include "runtime/task.h"

typedef struct rt_pool rt_pool;

/* Creates a pool of `threads` workers (1..256; started by rt_pool_run). Returns 0 or -1. */
int rt_pool_new(int threads, rt_pool **out);
/* Adds an opened task (borrowed: it must outlive the run). Before rt_pool_run only. Returns 0 or
 * -1 (out of memory). */
int rt_pool_add(rt_pool *p, rt_task *t);
/* Starts the workers and returns when every task is done. Returns 0, or -1 with err naming the
 * first task that failed and why (the other tasks were asked to stop without draining). */
int rt_pool_run(rt_pool *p, char *err, size_t errlen);
/* Asks every task to stop (see rt_task_request_stop). Safe from any thread, e.g. a signal
 * watcher or the HTTP stop handler, while rt_pool_run is running. */
void rt_pool_request_stop(rt_pool *p, int drain);
/* Frees the pool (not its tasks). Not while running. NULL is a no-op. */
void rt_pool_free(rt_pool *p);

#endif
