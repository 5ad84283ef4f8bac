/* Tasks: one input partition with its operator graph, its watermark and its driver loop.
 *
 *   rt_task *t;
 *   rt_task_new(&cfg, &t, err, sizeof err);
 *   rt_graph *g = rt_task_graph(t);
 *   ... rt_graph_add_op / rt_graph_connect: the job's graph, root `decode` ...
 *   rt_task_set_source(t, &src, decode, 0);
 *   rt_task_open(t, err, sizeof err);                  // rt_graph_open and restore hooks
 *   rt_task_run(t, err, sizeof err);                   // or steps from a pool (pool.h)
 *   rt_task_free(t);
 *
 * The loop pulls source records and pushes each into the root operator as an rt_record of type
 * RT_TYPE_SOURCE whose data is the rt_source_record (bytes borrowed from the source until its
 * next call); a bad span the source reports becomes RT_TYPE_SOURCE_BAD with the error, so the
 * job routes it to its invalid_record output and goes on. Every `watermark_every` records, when
 * the source is idle and at each step's end, the watermark generator is polled and a higher
 * watermark is propagated through the graph.
 *
 * At the end of a finite input the task either drains (rt_graph_finish: the watermark goes to
 * the end of time, every timer fires, every operator finishes) or stops at its last watermark
 * with state and timers intact for a final snapshot (DESIGN.md §2 "End of a finite input").
 * A stop requested from another thread (rt_task_request_stop) ends the task the same way at the
 * next step. A task is driven by one thread at a time.
 *
 * Several sources (rt_task_add_source): a task may read more than one input, each feeding a root
 * of the graph (content-metrics reads LogRequests and joined events). Each source has its own
 * watermark generator, so its watermark follows only its own records; a root fed by several
 * sources gets the minimum of theirs, and an operator fed by several roots sees the minimum of
 * its inputs (graph.h). So a record that is in order within its own source (not behind that
 * source's watermark) is never late anywhere downstream, however the sources are interleaved;
 * only records already behind their own source's watermark can be late, and whether they are
 * depends on the other sources' progress. Interleaving: the task holds the next record of every
 * source and pushes the one with the smallest timestamp (a bad span first; ties to the source
 * added first), so the order, and with it every output, is a function of the inputs alone, the
 * inputs advance together in event time, and windows close as early as the slowest input
 * allows. A source with nothing to read right now (IDLE) is skipped until the next step while
 * the others go on. A finite source that ends while others go on stops holding the watermark
 * back (its watermark goes to the end of time, as a finished Flink source does) unless the task
 * does not drain; the task drains once every source has ended. A root no source feeds stays at
 * the start of time and holds back everything downstream of it until the drain. With one source
 * the task behaves as it always did: its watermark is every root's. */
#ifndef LOGPROC_TASK_H
#define LOGPROC_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/graph.h"
#include "runtime/watermark.h"

/* ---- sources ---- */

/* One record, or one bad span, as a source reports it. All pointers are borrowed until the
 * source's next call. */
typedef struct rt_source_record {
    int64_t ts;     /* event time (ms); -1 when unknown (bad spans) */
    int64_t offset; /* Kafka offset, or byte offset of the frame in a file */
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value; /* a bad span: its raw bytes, at most --maxRecordBytes */
    size_t value_len;
    size_t raw_length; /* a bad span: its whole length (value_len may be less) */
    const char *error; /* a bad span: what is wrong; NULL for a good record */
    /* filled by the task: */
    const char *source; /* the source's name: file path or topic */
    int32_t partition;  /* -1 for a file */
} rt_source_record;

enum {
    RT_SOURCE_RECORD = 0, /* *out is a good record */
    RT_SOURCE_BAD = 1,    /* *out is a bad span (error set); the source has moved past it */
    RT_SOURCE_IDLE = 2,   /* nothing to read right now; ask again later */
    RT_SOURCE_END = 3,    /* the input is finished */
};

typedef struct rt_source {
    const char *name;  /* file path or topic (copied into every rt_source_record) */
    int32_t partition; /* -1 for a file */
    int finite;        /* 1: a file or a bounded backfill (no idleness, drains by default) */
    void *self;
    /* Returns RT_SOURCE_*, or -1 with err set for a fatal error (I/O, lost connection). Must
     * not block for long: return IDLE instead, so stop requests are seen. */
    int (*next)(struct rt_source *src, rt_source_record *out, char *err, size_t errlen);
    /* The offset of the next record next() would return (a Kafka offset, or a file's byte
     * offset), for checkpoints. Optional: NULL records -1 ("unknown"). */
    int64_t (*position)(const struct rt_source *src);
    /* The offset the input ends at now (a Kafka partition's high watermark, as last seen by the
     * client: no network call), for the pendingRecords metric. Optional. */
    int64_t (*end_offset)(const struct rt_source *src);
} rt_source;

/* ---- tasks ---- */

typedef struct rt_task_config {
    const char *label;        /* task label in metrics and errors ("0", "p3"); copied */
    rt_metrics *metrics;      /* shared registry (NULL: the graph's own) */
    rt_mem *mem;              /* shared budget (NULL: unlimited) */
    rt_wmgen_config wm;       /* watermark generator; idleness is ignored for a finite source */
    uint32_t watermark_every; /* records between watermark polls; 0: 256 */
    uint32_t step_records;    /* records per rt_task_step; 0: 4096 */
    int no_drain;             /* 1: at the end of input stop without draining (--no-drain) */
    /* Memory pressure (mem.h): how long the task reads nothing (back-pressure, so other tasks,
     * sinks and timers can bring the budget down) before it releases state early; 0: 1000 ms. */
    int64_t pressure_wait_ms;
} rt_task_config;

typedef struct rt_task rt_task;

typedef enum {
    RT_TASK_MORE = 0, /* step ended with records possibly left: step again */
    RT_TASK_IDLE = 1, /* the source had nothing: step again later */
    RT_TASK_DONE = 2, /* end of input (drained or stopped) or stop requested */
} rt_task_state;

/* Creates a task and its empty graph. Returns 0, or -1 with err. */
int rt_task_new(const rt_task_config *cfg, rt_task **out, char *err, size_t errlen);
/* The task's graph, for the job to build. Owned by the task. */
rt_graph *rt_task_graph(rt_task *t);
/* Sets the task's first source (borrowed: it must outlive the task) and the root operator and
 * input its records go to, with the task's watermark configuration (cfg.wm). Calling it again
 * replaces that first source. */
void rt_task_set_source(rt_task *t, rt_source *src, rt_op *root, int input);

#define RT_TASK_MAX_SOURCES 1024 /* sources of one task */

/* Adds one more source (before rt_task_open), feeding input `input` of root, with its own
 * watermark generator configured by wm (NULL: the task's cfg.wm; idleness is ignored for a
 * finite source). Several sources may feed one root. The source is borrowed and must outlive the
 * task. Cost per record with n sources: O(n) to pick the next record and to recompute a root's
 * watermark. Returns 0, or -1 with err (over RT_TASK_MAX_SOURCES, after open, out of memory). */
int rt_task_add_source(rt_task *t, rt_source *src, const rt_wmgen_config *wm, rt_op *root,
                       int input, char *err, size_t errlen);
/* Opens the graph (rt_graph_open). Returns 0 or -1 with err. */
int rt_task_open(rt_task *t, char *err, size_t errlen);

/* Runs at most step_records records. Returns RT_TASK_MORE/IDLE/DONE, or -1 with err (a source
 * or operator failure: the task is then done and may only be freed). */
int rt_task_step(rt_task *t, char *err, size_t errlen);
/* Steps until DONE (an IDLE source is polled again at once: for finite sources, and tests).
 * Returns 0 or -1 with err. */
int rt_task_run(rt_task *t, char *err, size_t errlen);

/* Asks the task to end at its next step: drain = 1 drains, 0 stops with state kept. Safe from
 * any thread (an atomic flag). */
void rt_task_request_stop(rt_task *t, int drain);

typedef struct rt_task_info {
    const char *label;
    uint64_t records;    /* good records pushed */
    uint64_t bad;        /* bad spans pushed */
    int64_t last_offset; /* offset of the last record or span taken from the source; -1 none */
    int64_t watermark;   /* last source watermark propagated (several sources: their minimum) */
    size_t sources;      /* sources the task reads */
    int drained;         /* 1 after rt_graph_finish ran */
    int stopped;         /* 1 when it ended on a stop request (not at the end of its input) */
    int done;
} rt_task_info;
/* Reads the task's counters (from its driving thread, or after it is done). */
void rt_task_info_get(const rt_task *t, rt_task_info *info);

/* ---- checkpoints ---- */

/* Called on the task's driving thread at a record boundary when a checkpoint is due (every
 * interval_ms of processing time, or requested), and once more at the end of input (final = 1:
 * drained or stopped; the graph's outputs of the last epoch are pending). The hook takes the
 * snapshot (rt_task_snapshot), makes it durable, then calls rt_graph_checkpoint_complete.
 * Returns 0, or -1 with err (the task fails). */
typedef int (*rt_checkpoint_fn)(rt_task *t, void *arg, int final, char *err, size_t errlen);

/* Sets the hook (before the first step). interval_ms <= 0: only requested and final
 * checkpoints. Turns on the graph's two-phase outputs (rt_graph_set_checkpointing). */
void rt_task_set_checkpointing(rt_task *t, int64_t interval_ms, rt_checkpoint_fn fn, void *arg);
/* Flink's checkpoint policy: the next periodic checkpoint starts no sooner than min_pause_ms
 * after the previous one ended; up to tolerable consecutive failed checkpoints are logged and
 * the task goes on (what they left pending is recorded by the next one); one more fails the
 * task. A final checkpoint's failure always fails the task. Defaults: 0 and 0. */
void rt_task_set_checkpoint_policy(rt_task *t, int64_t min_pause_ms, int64_t tolerable);
/* Asks for a checkpoint at the task's next record boundary (a savepoint). Safe from any thread. */
void rt_task_request_checkpoint(rt_task *t);

/* Appends the task's state to out: for each source its name, partition, the offset of its next
 * unprocessed record (a record read but not pushed yet counts as unprocessed) and watermark
 * generator; the task's counters; then the graph snapshot (rt_graph_snapshot). Versioned.
 * Returns 0, or -1 with err. Cost: O(state). */
int rt_task_snapshot(rt_task *t, rt_buf *out, char *err, size_t errlen);

/* One source's position in a task snapshot. */
typedef struct rt_task_source_pos {
    char name[512];
    int32_t partition;
    int64_t next_offset; /* -1: unknown */
    int ended;
} rt_task_source_pos;

/* Reads the sources' positions from a task snapshot without a task (the driver seeks its
 * sources before building them). Returns 0 with *n entries (at most cap), or -1 with err. */
int rt_task_snapshot_sources(const uint8_t *bytes, size_t len, rt_task_source_pos *out,
                             size_t cap, size_t *n, char *err, size_t errlen);

/* Restores a task snapshot into an opened task whose sources are the same inputs (in the same
 * order) already positioned at their offsets: the watermark generators, counters and the graph
 * (rt_graph_restore, whose sinks publish what the checkpoint left pending). Returns 0, or -1
 * with err. */
int rt_task_restore(rt_task *t, const uint8_t *bytes, size_t len, char *err, size_t errlen);

/* The offset of source i's next unprocessed record (a record read but not pushed yet counts as
 * unprocessed), as a snapshot records it; -1 when unknown. From the task's driving thread (its
 * checkpoint hook). */
int64_t rt_task_source_position(const rt_task *t, size_t i);
/* Source i of the task (in the order they were added), or NULL. */
rt_source *rt_task_source_at(const rt_task *t, size_t i);

/* Marks a restored task as already finished (its checkpoint was final): steps return DONE. */
void rt_task_mark_done(rt_task *t);

/* Frees the graph (closing every operator) and the task. NULL is a no-op. */
void rt_task_free(rt_task *t);

#endif
