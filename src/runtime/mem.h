/* The process-wide memory budget for operator state (--memoryLimit).
 *
 * Every byte of keyed state, timers and operator-managed structures is charged to its operator
 * (operator.h: rt_op_mem_charge) and, through the operator's task, to one rt_mem shared by all
 * tasks. A graph reserves budget from rt_mem in chunks (RT_MEM_CHUNK) and charges its operators
 * from its chunk, so the shared atomic counter is touched about once per MiB of state growth, not
 * per put; the price is that the limit can be reached up to one chunk per task early. Over the
 * limit a charge fails and the operator's put fails with an error naming the operator, its bytes
 * and the limit: the job stops cleanly instead of being killed by the OOM killer. */
#ifndef LOGPROC_MEM_H
#define LOGPROC_MEM_H

#include <stdint.h>

#define RT_MEM_CHUNK ((int64_t)1 << 20) /* bytes a graph reserves from the budget at a time */

typedef struct rt_mem rt_mem;

/* Creates a budget of `limit` bytes (0: unlimited, accounting only). Returns 0, or -1 when out of
 * memory. Free with rt_mem_free after every graph charged to it is freed. */
int rt_mem_new(int64_t limit, rt_mem **out);
void rt_mem_free(rt_mem *m);

/* Reserves n bytes. Returns 0, or -1 (nothing reserved) if that would pass the limit.
 * Thread-safe: one atomic add (and one subtract on failure). */
int rt_mem_reserve(rt_mem *m, int64_t n);
/* Gives n reserved bytes back. Thread-safe. */
void rt_mem_unreserve(rt_mem *m, int64_t n);
/* Bytes reserved now, and the limit (0: none). Thread-safe. */
int64_t rt_mem_used(const rt_mem *m);
int64_t rt_mem_limit(const rt_mem *m);
/* The highest rt_mem_used seen (updated on every reservation: one relaxed compare). */
int64_t rt_mem_peak(const rt_mem *m);

/* Memory pressure (the policy at the limit, docs/RELIABILITY.md): above RT_MEM_HIGH_PCT percent
 * of the limit tasks stop reading (back-pressure) and, if that does not bring the budget back
 * down, release state early until RT_MEM_LOW_PCT percent (task.c, rt_graph_release_early). */
#define RT_MEM_HIGH_PCT 90
#define RT_MEM_LOW_PCT 60
/* 1 when a limit is set and more than RT_MEM_HIGH_PCT percent of it is reserved. */
int rt_mem_pressure(const rt_mem *m);

#endif
