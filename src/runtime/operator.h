/* Operators: what a job's operator implements and what it may call.
 *
 * An operator is a vtable of callbacks plus a `self` pointer, added to a graph (graph.h) under a
 * stable uid. It has `nin` inputs and `nout` output ports (port 0 the main output, the others side
 * outputs). Records reach it through `process` as a direct call from the upstream operator's
 * rt_emit: no queue, no copy, no allocation. All callbacks of one graph run on the thread that
 * drives its task, one at a time.
 *
 * Time. Each operator has an input watermark: the minimum over the output watermarks of the
 * operators feeding it (the task's source watermark for a root). When it rises, the graph fires
 * the operator's due timers in ascending (time, registration) order, calls `on_watermark`, and
 * only then forwards the new watermark downstream, so records emitted from timers reach
 * downstream operators before the watermark that released them. The output watermark is the input
 * watermark minus the operator's hold-back (rt_op_set_watermark_holdback): an operator that keeps
 * records for up to D ms declares D, and its consumers never see such a record as late.
 *
 * Errors. A callback returns 0, or -1 after calling rt_op_fail with a message naming the input,
 * the field and the limit; the failure unwinds through rt_emit to whoever pushed the record, and
 * the task stops with that message (rt_graph_error). */
#ifndef LOGPROC_OPERATOR_H
#define LOGPROC_OPERATOR_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/metrics.h"
#include "runtime/record.h"

typedef struct rt_op rt_op;
typedef struct rt_graph rt_graph;

typedef struct rt_op_vtbl {
    /* Once, from rt_graph_open, in topological order, before any record: create keyed state
     * (state.h: rt_kv_new), set the hold-back, open files. Optional. */
    int (*open)(rt_op *op);
    /* One record on input `input` (0..nin-1). Required unless the operator is never fed. */
    int (*process)(rt_op *op, int input, const rt_record *rec);
    /* A timer registered with rt_timer_register is due: `time` <= the input watermark. key is
     * borrowed for the call. Records emitted here should carry ts = time. Optional. */
    int (*on_timer)(rt_op *op, int64_t time, const uint8_t *key, size_t key_len);
    /* The input watermark rose to wm (after the due timers fired). Optional. */
    int (*on_watermark)(rt_op *op, int64_t wm);
    /* End of a drained input: every timer has fired at RT_TIME_MAX and every upstream operator
     * has finished. Flush whatever is buffered (emitting is allowed), publish outputs. Timers
     * registered here fire right after it returns. Optional. Not called without --drain. */
    int (*finish)(rt_op *op);
    /* Appends the operator's own state (what is not in its rt_kv tables or timers, which the
     * graph snapshots itself) to out. Optional: no own state. */
    int (*snapshot)(rt_op *op, rt_buf *out);
    /* Restores what snapshot wrote (after open). Optional. */
    int (*restore)(rt_op *op, const uint8_t *bytes, size_t len);
    /* The checkpoint whose snapshot was taken last is durable (rt_graph_checkpoint_complete):
     * publish what that snapshot recorded as pending (parts, a transaction). Optional. */
    int (*checkpoint_complete)(rt_op *op, int64_t id);
    /* Frees self. Called once by rt_graph_free for every added operator, opened or not, in
     * reverse topological order. Optional. */
    void (*close)(rt_op *op);
} rt_op_vtbl;

/* ---- emitting (from process, on_timer, on_watermark, finish) ---- */

/* Pushes rec to every operator connected to output `port` of op, in connection order, each as a
 * direct call to its `process`; counts numRecordsOut for op and numRecordsIn for each callee.
 * rec is borrowed for the call. Returns 0, or the first callee's negative status (the remaining
 * callees are skipped). Cost: one indirect call per connected input, no allocation. */
int rt_emit(rt_op *op, int port, const rt_record *rec);

/* ---- the operator's own context ---- */

void *rt_op_self(const rt_op *op);
const char *rt_op_uid(const rt_op *op);
const char *rt_op_name(const rt_op *op);
rt_graph *rt_op_graph(const rt_op *op);
/* The input watermark (RT_TIME_MIN before the first one). A record with ts < it is late. */
int64_t rt_op_watermark(const rt_op *op);
/* The output watermark forwarded downstream. */
int64_t rt_op_output_watermark(const rt_op *op);
/* Declares that the operator may emit records up to ms behind its input watermark (its largest
 * timer delay): the output watermark is then input - ms. Set in open; may be raised later, and the
 * output watermark still never moves backwards. */
void rt_op_set_watermark_holdback(rt_op *op, int64_t ms);
/* Declares that the operator's timers only delete its own keyed state and emit nothing (a
 * dedupe's expiry). At the end-of-input drain its pending timers are then dropped unfired and its
 * rt_kv tables cleared at once, which gives the same outputs as firing them one by one and costs
 * one free per entry instead of a pop, a lookup and a delete. Set in open. */
void rt_op_set_drain_discards_timers(rt_op *op);
/* Keeps the operator's state out of early release under memory pressure (graph.h,
 * rt_graph_release_early): for state whose early loss would change results rather than timing,
 * such as the ids a dedupe must remember (forgetting them early lets duplicates through). */
void rt_op_set_no_early_release(rt_op *op);
/* Names output port `port` (> 0 gets a side-output counter, numRecordsOutSide with labels
 * operator=<uid>,output=<name>,task=<task>). Any time before records flow (building, or open).
 * The name is copied. Returns 0 or -1 (bad port, out of memory). */
int rt_op_set_port_name(rt_op *op, int port, const char *name);

/* Finds or creates a metric of this operator, labelled operator=<uid>,task=<task> like the
 * graph's own (metrics.h). For open, not per record. Returns 0, or -1 with the failure recorded. */
int rt_op_counter(rt_op *op, const char *name, rt_counter **out);
int rt_op_gauge(rt_op *op, const char *name, rt_gauge **out);

/* Records the reason for a failure: "operator <uid>: <message>", kept by the graph (the first
 * failure wins) and returned by rt_graph_error. Returns -1, so `return rt_op_fail(op, ...)`. */
int rt_op_fail(rt_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- timers: event-time, keyed, deduplicated per (key, time) ---- */

/* Registers a timer at `time` for key (copied; key may be NULL with key_len 0). A second
 * registration of the same (key, time) is a no-op. The timer fires (on_timer) once the input
 * watermark is >= time: at the next watermark rise, or right away within the current firing
 * round if one is running. Equal times fire in registration order. Cost: one hash probe (none
 * when it repeats the operator's previous registration), an O(1) append when times come in
 * ascending order (O(log n) otherwise), one allocation; about 100 + key_len bytes in all,
 * charged to the operator. Returns 0, or -1 (memory limit: the failure is recorded as by
 * rt_op_fail). */
int rt_timer_register(rt_op *op, int64_t time, const void *key, size_t key_len);
/* Registers a timer the caller knows is new: (key, time) is not pending, and the operator will
 * never rt_timer_delete it (it cannot be found: the service keeps no hash entry for it). It
 * fires exactly like one from rt_timer_register, and snapshots restore it as one. For operators
 * with one timer per newly seen key (keep-first): no hash probe, and about 30 bytes less.
 * Returns 0 or -1 as rt_timer_register. */
int rt_timer_register_new(rt_op *op, int64_t time, const void *key, size_t key_len);
/* Deletes the timer (key, time). Returns 1 if there was one, 0 if not. O(1) amortized. */
int rt_timer_delete(rt_op *op, int64_t time, const void *key, size_t key_len);
/* Pending timers of the operator. */
size_t rt_timer_count(const rt_op *op);

/* ---- memory accounting for operator-managed structures ---- */

/* Charges n bytes to the operator and to the process budget (mem.h). Keyed state and timers
 * charge themselves; call this for structures the operator allocates on its own (per-key
 * vectors, arenas). Returns 0, or -1 over the limit, with the failure recorded as by rt_op_fail:
 * "operator <uid>: memory limit 1073741824 bytes (--memoryLimit) reached: the operator holds N
 * bytes, the process M". */
int rt_op_mem_charge(rt_op *op, int64_t n);
/* Returns n previously charged bytes. */
void rt_op_mem_release(rt_op *op, int64_t n);
/* Bytes the operator holds now (state, timers, charged structures). */
int64_t rt_op_mem_used(const rt_op *op);

#endif
