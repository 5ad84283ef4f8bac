/* Metrics: a process-wide registry of named counters and gauges with labels.
 *
 *   rt_counter *c;
 *   rt_metrics_counter(m, "numRecordsIn", "operator=join-impression-action,task=3", &c);
 *   rt_counter_add(c, 1);
 *
 * A metric is identified by its name and its label string: comma-separated `key=value` pairs in
 * a fixed order (values must not contain ',', '=', '"', '\\' or spaces: uids and task labels
 * don't). Registering the same (name, labels) twice returns the same cell, so a task that is
 * rebuilt continues its counters. Cells are never freed before the registry: pointers stay valid
 * for its whole life, and updates are lock-free.
 *
 * Updating: rt_counter_add is an atomic add, safe from any thread. rt_counter_add_1w and
 * rt_gauge_set are a relaxed load and store: the cost of a plain increment, correct only when
 * one thread at a time writes the cell, which is the case for every per-task metric (a task is
 * driven by one thread at a time). Readers on other threads always see a whole value.
 *
 * Reading: rt_metrics_snapshot copies every value (under the registry lock, so registration
 * waits, updates don't); rt_metrics_format_lines renders the periodic log line's body, with
 * per-second rates from a previous snapshot; rt_metrics_format_prometheus renders the text
 * exposition format for GET /metrics. */
#ifndef LOGPROC_METRICS_H
#define LOGPROC_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

typedef struct rt_metrics rt_metrics;

typedef struct rt_counter {
    _Atomic uint64_t v;
} rt_counter;

typedef struct rt_gauge {
    _Atomic int64_t v;
} rt_gauge;

typedef enum { RT_METRIC_COUNTER = 0, RT_METRIC_GAUGE = 1 } rt_metric_kind;

/* ---- the registry ---- */

/* Creates an empty registry. Returns 0 or -1 (out of memory). */
int rt_metrics_new(rt_metrics **out);
/* Frees the registry and every cell; no cell may be used afterwards. NULL is a no-op. */
void rt_metrics_free(rt_metrics *m);

/* Finds or creates the counter (name, labels); labels may be "" or NULL. Returns 0, or -1 with no
 * cell if out of memory or the name is already a gauge with those labels. Thread-safe (a mutex):
 * call at setup, not per record. The name and labels are copied. */
int rt_metrics_counter(rt_metrics *m, const char *name, const char *labels, rt_counter **out);
/* Same for a gauge. */
int rt_metrics_gauge(rt_metrics *m, const char *name, const char *labels, rt_gauge **out);

/* ---- updating (any thread, no lock) ---- */

static inline void rt_counter_add(rt_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}
/* Single-writer add: only the thread that drives the cell's task may call it. */
static inline void rt_counter_add_1w(rt_counter *c, uint64_t n)
{
    atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline uint64_t rt_counter_get(const rt_counter *c)
{
    return atomic_load_explicit(&((rt_counter *)c)->v, memory_order_relaxed);
}
static inline void rt_gauge_set(rt_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}
static inline int64_t rt_gauge_get(const rt_gauge *g)
{
    return atomic_load_explicit(&((rt_gauge *)g)->v, memory_order_relaxed);
}

/* ---- reading ---- */

typedef struct rt_metric_sample {
    const char *name;   /* owned by the registry: valid while it lives */
    const char *labels; /* "k=v,k=v" or "" */
    rt_metric_kind kind;
    int64_t value; /* counters are reported as int64 (they never reach 2^63) */
} rt_metric_sample;

typedef struct rt_metrics_snap {
    rt_metric_sample *samples; /* in registration order; owned by the snapshot */
    size_t n;
    int64_t taken_ms; /* CLOCK_MONOTONIC milliseconds when it was taken */
} rt_metrics_snap;

/* Copies every metric's current value into *snap (allocated; release with
 * rt_metrics_snap_free). Cost: O(metrics) under the registry lock. Returns 0 or -1 (OOM). */
int rt_metrics_snapshot(rt_metrics *m, rt_metrics_snap *snap);
void rt_metrics_snap_free(rt_metrics_snap *snap);

/* Appends one line per metric of cur to out, in registration order:
 *   numRecordsOut operator=join-impression-action task=3 value=1200
 * and, when prev is given (an earlier snapshot of the same registry), one more line per counter
 * with its rate over the time between the two snapshots:
 *   numRecordsOutPerSecond operator=join-impression-action task=3 value=400.0
 * Only metrics whose name starts with one of the comma-separated prefixes in `only` are printed
 * (NULL: all). Returns 0, or -1 if out hits its limit. */
int rt_metrics_format_lines(const rt_metrics_snap *cur, const rt_metrics_snap *prev,
                            const char *only, rt_buf *out);

/* Appends the Prometheus text exposition of cur to out: a `# TYPE` line per name, then
 * `logproc_<name>{operator="...",task="..."} value` per sample. Returns 0 or -1 (limit). */
int rt_metrics_format_prometheus(const rt_metrics_snap *cur, rt_buf *out);
/* Appends, for every counter of cur that prev (an earlier snapshot of the same registry) also
 * has, a gauge `logproc_<name>PerSecond{labels} rate` over the time between the two snapshots,
 * grouped by name like rt_metrics_format_prometheus. Nothing when the snapshots are less than a
 * millisecond apart. Returns 0 or -1 (limit, out of memory). */
int rt_metrics_format_prometheus_rates(const rt_metrics_snap *cur, const rt_metrics_snap *prev,
                                       rt_buf *out);
/* The per-second rate of cur's i-th sample since prev (0 when prev lacks it or is not older). */
double rt_metrics_rate(const rt_metrics_snap *cur, const rt_metrics_snap *prev, size_t i);

#endif
