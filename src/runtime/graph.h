/* The operator graph of one task: build it, check it, run records and watermarks through it,
 * drain it, snapshot it.
 *
 * Phases: new -> add_op/connect (build) -> open (check uids and cycles, order, open operators)
 * -> push/advance_watermark (run) -> finish (drain; optional) -> free. A graph belongs to one
 * task and is driven by one thread at a time; nothing in it is locked. The metrics registry and
 * memory budget it reports to are the shared, thread-safe parts.
 *
 * Uids (spec/README.md "Operator uids"): lowercase [a-z0-9._-], no empty segment between '-'
 * (no leading, trailing or doubled '-'), unique within the graph. The uid keys the operator's
 * state in snapshots and its metrics, so renaming one is a breaking change. */
#ifndef LOGPROC_GRAPH_H
#define LOGPROC_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/mem.h"
#include "runtime/metrics.h"
#include "runtime/operator.h"
#include "runtime/record.h"

#define RT_UID_MAX 200 /* bytes in a uid */

typedef struct rt_graph_config {
    rt_metrics *metrics; /* shared registry; NULL: the graph keeps a private one */
    rt_mem *mem;         /* shared budget; NULL: unlimited (bytes are still counted) */
    const char *task;    /* task label for metrics and errors ("0", "p3"); NULL: "0" */
} rt_graph_config;

/* ---- build ---- */

/* Creates an empty graph. cfg may be NULL (private metrics, no limit, task "0"); the registry and
 * budget it names must outlive the graph. Returns 0 or -1 (out of memory). */
int rt_graph_new(const rt_graph_config *cfg, rt_graph **out);

/* Adds an operator with nin inputs and nout output ports (nout >= 1 unless it is a sink: 0 is
 * allowed). uid and name (NULL: the uid) are copied; vt must outlive the graph (a static table).
 * On success the graph owns self and releases it through vt->close in rt_graph_free; on failure
 * the caller still owns it. The uid is checked by rt_graph_open, not here. Returns 0 with *out, or
 * -1 (out of memory, nin/nout out of range 0..64). */
int rt_graph_add_op(rt_graph *g, const char *uid, const char *name, const rt_op_vtbl *vt,
                    void *self, int nin, int nout, rt_op **out);

/* Connects output `port` of from to input `input` of to. Several connections may leave one port
 * (broadcast, in connection order) and several may enter one input (a union). Returns 0, or -1
 * with the reason in rt_graph_error (bad port or input, graph already open, out of memory). */
int rt_graph_connect(rt_graph *g, rt_op *from, int port, rt_op *to, int input);

/* Checks every uid of the graph: allowed characters, no empty segment between '-', length,
 * uniqueness. Returns 0, or -1 with err naming the first bad uid and what is wrong with it. */
int rt_graph_check_uids(const rt_graph *g, char *err, size_t errlen);
/* Checks one uid by the same rules (except uniqueness). Returns 0 or -1 with err. */
int rt_uid_check(const char *uid, char *err, size_t errlen);

/* Checks uids, rejects cycles, orders the operators topologically (ties keep insertion order),
 * registers their metrics (numRecordsIn, numRecordsOut, currentInputWatermark, stateBytes with
 * labels operator=<uid>,task=<task>) and calls every open callback in that order. Returns 0, or
 * -1 with err (also in rt_graph_error) naming the operator. */
int rt_graph_open(rt_graph *g, char *err, size_t errlen);

/* ---- run (after open) ---- */

/* Feeds rec into input `input` of op (normally a root: an operator with no connected input).
 * Counts numRecordsIn. Returns 0 or the operator's negative status. */
int rt_graph_push(rt_graph *g, rt_op *op, int input, const rt_record *rec);

/* Raises the source watermark of every root operator to wm (a lower or equal wm is ignored: a
 * watermark never goes backwards) and propagates it in topological order, firing due timers.
 * Cost: O(operators) plus the timers fired. Returns 0 or a callback's negative status. */
int rt_graph_advance_watermark(rt_graph *g, int64_t wm);
/* Same for one root only: for a task with several sources, each with its own watermark. */
int rt_graph_advance_watermark_at(rt_graph *g, rt_op *root, int64_t wm);

/* Drains the graph (DESIGN.md §2 "End of a finite input", --drain): in topological order, each
 * operator's watermark goes to RT_TIME_MAX, all its timers fire (including those registered while
 * firing), finish is called, and timers registered by finish fire. Afterwards no record may be
 * pushed. Returns 0 or a callback's negative status. */
int rt_graph_finish(rt_graph *g);

/* The first failure recorded (rt_op_fail, rt_graph_connect), or "" if none. Owned by the graph. */
const char *rt_graph_error(const rt_graph *g);

/* ---- inspection ---- */

size_t rt_graph_op_count(const rt_graph *g);
/* The i-th operator in topological order after open (insertion order before). */
rt_op *rt_graph_op_at(const rt_graph *g, size_t i);
rt_op *rt_graph_find(const rt_graph *g, const char *uid);
const char *rt_graph_task(const rt_graph *g);
rt_metrics *rt_graph_metrics(const rt_graph *g);
/* The minimum output watermark over the graph's sink-side operators (those with nothing
 * connected downstream): how far the task's outputs are complete. */
int64_t rt_graph_watermark(const rt_graph *g);
/* Total bytes held by the graph's operators. */
int64_t rt_graph_mem_used(const rt_graph *g);
/* Appends the graph's plan as a JSON array, one object per operator in topological order:
 *   [{"id":"<uid>","name":"<name>","inputs":["<uid of an upstream operator>",...]},...]
 * (an operator fed by the same upstream on two inputs lists it once). For the REST API and the
 * status page; the plan is the same for every task of a job. Returns 0 or -1 (out's limit). */
int rt_graph_plan_json(const rt_graph *g, rt_buf *out);

/* ---- memory pressure ---- */

/* Early release (the last step of the memory policy, mem.h): fires, ahead of the watermark, the
 * earliest pending timers of the operator holding the most state, one time at a time, moving on
 * to the next largest holder, until the graph holds at most target bytes or no operator has a
 * timer left. What the timers release goes where it would have gone at its time (a join emits
 * its pending children with the best parent found so far, a window its result, a dedupe forgets
 * its ids), only earlier; a record that arrives later for released state is handled as new.
 * Between records only. Returns the number of timers fired, or -1 (an operator failed). */
int64_t rt_graph_release_early(rt_graph *g, int64_t target);

/* ---- snapshot (after open, between records) ---- */

/* Appends the state of every operator to out, keyed by uid: its watermarks, its rt_kv tables by
 * name, its timers, and its own snapshot callback's bytes. Versioned; the checkpoint layer adds
 * framing and a checksum. Returns 0, or -1 with the reason in rt_graph_error (out's limit, a
 * callback failing). Cost: O(state). */
int rt_graph_snapshot(rt_graph *g, rt_buf *out);
/* Restores what rt_graph_snapshot wrote into a freshly opened graph with the same uids. State of
 * a uid absent from the graph is an error (nothing is silently dropped); an operator absent from
 * the snapshot starts empty. Returns 0, or -1 with err naming the operator and what is wrong. */
int rt_graph_restore(rt_graph *g, const uint8_t *bytes, size_t len, char *err, size_t errlen);

/* ---- checkpoints (two-phase outputs) ---- */

/* Turns two-phase outputs on (before open): sinks then keep what they wrote since the last
 * checkpoint pending, record it in their snapshot, and publish it only in checkpoint_complete,
 * including at the end of input (finish leaves the last outputs pending for the final
 * checkpoint). Off (the default), sinks publish at finish. */
void rt_graph_set_checkpointing(rt_graph *g, int on);
int rt_graph_checkpointing(const rt_graph *g);

/* Tells every operator (topological order) that checkpoint id, whose snapshot was the last one
 * taken, is durable. Returns 0, or -1 with the reason in rt_graph_error. */
int rt_graph_checkpoint_complete(rt_graph *g, int64_t id);

/* ---- end ---- */

/* Closes every operator (vt->close, reverse topological order) and frees the graph, its state
 * and timers, returning their bytes to the budget. NULL is a no-op. */
void rt_graph_free(rt_graph *g);

#endif
