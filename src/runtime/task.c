#include "runtime/task.h"

#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/log.h"
#include "runtime/mem.h"

#define DEFAULT_WM_EVERY 256
#define DEFAULT_STEP 4096
#define LABELS_MAX 160
#define CKPT_CHECK_EVERY 256 /* records between checks of the checkpoint clock (a power of 2) */

enum { STOP_NONE = 0, STOP_KEEP = 1, STOP_DRAIN = 2 };
enum { PEND_NONE = 0, PEND_RECORD = 1, PEND_BAD = 2 };

/* One input of the task: the source, where its records go, its own watermark, and the record
 * read from it but not pushed yet (the merge holds one per source; its bytes stay valid because
 * the source is not called again until it is pushed). */
typedef struct task_source {
    rt_source *src;
    rt_op *root;
    int input;
    rt_wmgen_config wc;
    rt_wmgen wm;
    int64_t wm_now; /* what this source contributes to its root's watermark */
    uint32_t since_wm;
    int ended;
    int idle;    /* said IDLE during this step: not asked again until the next step */
    int pending; /* PEND_*: rec holds a record or a bad span */
    rt_source_record rec;
} task_source;

struct rt_task {
    rt_task_config cfg;
    char *label;
    rt_graph *g;
    task_source *srcs;
    size_t nsrc, capsrc;
    int64_t wm_sent; /* minimum of the sources' watermarks, as last propagated */
    uint64_t records, bad;
    int64_t last_offset;
    _Atomic int stop;
    _Atomic int ckpt_requested;
    int opened, done, drained, stopped;
    rt_checkpoint_fn ckpt_fn;
    void *ckpt_arg;
    int64_t ckpt_interval, ckpt_due;
    int64_t ckpt_min_pause, ckpt_tolerable, ckpt_failures;
    rt_counter *c_bad;
    rt_gauge *g_wm, *g_offset, *g_pending; /* g_pending: NULL unless a source has an end */
    /* memory pressure */
    int64_t pressure_since; /* mono ms when the budget went over the high mark; 0: not over */
    rt_counter *c_early, *c_pauses;
    rt_counter *c_read; /* numRecordsRead: records taken from the sources */
    uint64_t read_reported;
};

int rt_task_new(const rt_task_config *cfg, rt_task **out, char *err, size_t errlen)
{
    rt_task *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->cfg = *cfg;
    if (!t->cfg.watermark_every) t->cfg.watermark_every = DEFAULT_WM_EVERY;
    if (!t->cfg.step_records) t->cfg.step_records = DEFAULT_STEP;
    if (!t->cfg.pressure_wait_ms) t->cfg.pressure_wait_ms = 1000;
    t->label = strdup(cfg->label ? cfg->label : "0");
    if (!t->label) goto oom;
    t->cfg.label = t->label;
    rt_graph_config gc = {cfg->metrics, cfg->mem, t->label};
    if (rt_graph_new(&gc, &t->g) < 0) goto oom;
    t->wm_sent = RT_TIME_MIN;
    t->last_offset = -1;
    atomic_init(&t->stop, STOP_NONE);
    *out = t;
    return 0;
oom:
    snprintf(err, errlen, "task %s: out of memory", cfg->label ? cfg->label : "0");
    rt_task_free(t);
    return -1;
}

rt_graph *rt_task_graph(rt_task *t)
{
    return t->g;
}

static void source_init(task_source *s, rt_source *src, const rt_wmgen_config *wm, rt_op *root,
                        int input)
{
    memset(s, 0, sizeof *s);
    s->src = src;
    s->root = root;
    s->input = input;
    s->wc = *wm;
    s->wm_now = RT_TIME_MIN;
}

int rt_task_add_source(rt_task *t, rt_source *src, const rt_wmgen_config *wm, rt_op *root,
                       int input, char *err, size_t errlen)
{
    if (t->opened) {
        snprintf(err, errlen, "task %s: a source is added after the task opened", t->label);
        return -1;
    }
    if (t->nsrc == RT_TASK_MAX_SOURCES) {
        snprintf(err, errlen, "task %s: source %s is over the limit of %d sources per task",
                 t->label, src->name ? src->name : "?", RT_TASK_MAX_SOURCES);
        return -1;
    }
    if (t->nsrc == t->capsrc) {
        size_t cap = t->capsrc ? 2 * t->capsrc : 2;
        task_source *n = realloc(t->srcs, cap * sizeof *n);
        if (!n) {
            snprintf(err, errlen, "task %s: out of memory", t->label);
            return -1;
        }
        t->srcs = n;
        t->capsrc = cap;
    }
    source_init(&t->srcs[t->nsrc++], src, wm ? wm : &t->cfg.wm, root, input);
    return 0;
}

void rt_task_set_source(rt_task *t, rt_source *src, rt_op *root, int input)
{
    if (t->nsrc) {
        source_init(&t->srcs[0], src, &t->cfg.wm, root, input);
        return;
    }
    char err[64];
    /* the first source cannot hit the limit; out of memory shows at open as "no source" */
    (void)rt_task_add_source(t, src, NULL, root, input, err, sizeof err);
}

int rt_task_open(rt_task *t, char *err, size_t errlen)
{
    if (!t->nsrc || !t->srcs[0].src || !t->srcs[0].root) {
        snprintf(err, errlen, "task %s: no source (rt_task_set_source)", t->label);
        return -1;
    }
    for (size_t i = 0; i < t->nsrc; i++) {
        task_source *s = &t->srcs[i];
        if (!s->src || !s->root) {
            snprintf(err, errlen, "task %s: source %zu has no source or root", t->label, i);
            return -1;
        }
        rt_wmgen_config wc = s->wc;
        if (s->src->finite) wc.idleness = 0; /* processing time never moves a finite input */
        rt_wmgen_init(&s->wm, &wc);
    }
    if (rt_graph_open(t->g, err, errlen) < 0) return -1;
    char labels[LABELS_MAX];
    snprintf(labels, sizeof labels, "task=%s", t->label);
    rt_metrics *m = rt_graph_metrics(t->g);
    if (rt_metrics_counter(m, "numBadSpans", labels, &t->c_bad) < 0 ||
        rt_metrics_gauge(m, "sourceWatermark", labels, &t->g_wm) < 0 ||
        rt_metrics_gauge(m, "sourceOffset", labels, &t->g_offset) < 0 ||
        rt_metrics_counter(m, "numTimersFiredEarly", labels, &t->c_early) < 0 ||
        rt_metrics_counter(m, "numRecordsRead", labels, &t->c_read) < 0 ||
        rt_metrics_counter(m, "numMemoryPressurePauses", labels, &t->c_pauses) < 0) {
        snprintf(err, errlen, "task %s: cannot register metrics", t->label);
        return -1;
    }
    rt_gauge_set(t->g_wm, RT_TIME_MIN);
    rt_gauge_set(t->g_offset, -1);
    for (size_t i = 0; i < t->nsrc && !t->g_pending; i++)
        if (t->srcs[i].src->end_offset && rt_metrics_gauge(m, "pendingRecords", labels, &t->g_pending) < 0) {
            snprintf(err, errlen, "task %s: cannot register metrics", t->label);
            return -1;
        }
    t->opened = 1;
    return 0;
}

static int fail(rt_task *t, char *err, size_t errlen, const char *what);
static int64_t mono_ms(void);

/* The memory policy (mem.h) at a record boundary. Returns 0 to go on reading, 1 to read nothing
 * now (back-pressure: the step ends idle), -1 on failure. Over the high mark the task first
 * pauses for pressure_wait_ms; if the budget is still over it then, it releases its graph's
 * oldest state early down to its share of the low mark, and goes on. */
static int memory_policy(rt_task *t, char *err, size_t errlen)
{
    if (!rt_mem_pressure(t->cfg.mem)) {
        t->pressure_since = 0;
        return 0;
    }
    int64_t now = mono_ms();
    if (!t->pressure_since) {
        t->pressure_since = now;
        rt_counter_add_1w(t->c_pauses, 1);
    }
    if (now - t->pressure_since < t->cfg.pressure_wait_ms) return 1;
    int64_t used = rt_mem_used(t->cfg.mem), mine = rt_graph_mem_used(t->g);
    int64_t low = rt_mem_limit(t->cfg.mem) / 100 * RT_MEM_LOW_PCT;
    int64_t target = used > 0 ? (int64_t)((double)mine * ((double)low / (double)used)) : 0;
    int64_t fired = rt_graph_release_early(t->g, target);
    if (fired < 0) return fail(t, err, errlen, rt_graph_error(t->g));
    rt_counter_add_1w(t->c_early, (uint64_t)fired);
    log_warn("memory",
             "task=%s budget over %d%% of --memoryLimit for %" PRId64
             " ms: released early timers=%" PRId64 " state_bytes=%" PRId64 "->%" PRId64,
             t->label, RT_MEM_HIGH_PCT, now - t->pressure_since, fired, mine, rt_graph_mem_used(t->g));
    t->pressure_since = now; /* wait again before the next release */
    return 0;
}

/* Records the sources' backlog: their ends minus their positions (Flink's pendingRecords). */
static void update_pending(rt_task *t)
{
    rt_counter_add_1w(t->c_read, t->records - t->read_reported);
    t->read_reported = t->records;
    int64_t pending = 0;
    for (size_t i = 0; i < t->nsrc; i++) {
        const rt_source *src = t->srcs[i].src;
        if (!src->end_offset || !src->position) continue;
        int64_t end = src->end_offset(src), pos = src->position(src);
        if (end > pos && pos >= 0) pending += end - pos;
    }
    if (t->g_pending) rt_gauge_set(t->g_pending, pending);
}

static int fail(rt_task *t, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "task %s: %s", t->label, what);
    t->done = 1;
    return -1;
}

/* Propagates the watermark of s's root: with one source, its watermark is every root's (as
 * tasks always had it); with several, each root gets the minimum of the sources feeding it. */
static int raise_root(rt_task *t, task_source *s, char *err, size_t errlen)
{
    int rc;
    if (t->nsrc == 1) {
        rc = rt_graph_advance_watermark(t->g, s->wm_now);
    } else {
        int64_t m = RT_TIME_MAX;
        for (size_t i = 0; i < t->nsrc; i++)
            if (t->srcs[i].root == s->root && t->srcs[i].wm_now < m) m = t->srcs[i].wm_now;
        rc = rt_graph_advance_watermark_at(t->g, s->root, m);
    }
    if (rc < 0) return fail(t, err, errlen, rt_graph_error(t->g));
    int64_t all = RT_TIME_MAX;
    for (size_t i = 0; i < t->nsrc; i++)
        if (t->srcs[i].wm_now < all) all = t->srcs[i].wm_now;
    if (all > t->wm_sent) {
        t->wm_sent = all;
        rt_gauge_set(t->g_wm, all);
    }
    return 0;
}

static int poll_source(rt_task *t, task_source *s, char *err, size_t errlen)
{
    s->since_wm = 0;
    if (s->ended) return 0;
    int64_t w = rt_wmgen_poll(&s->wm);
    if (w <= s->wm_now) return 0;
    s->wm_now = w;
    return raise_root(t, s, err, errlen);
}

static int poll_all(rt_task *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->nsrc; i++)
        if (poll_source(t, &t->srcs[i], err, errlen) < 0) return -1;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the checkpoint hook. */
static int checkpoint(rt_task *t, int final, char *err, size_t errlen)
{
    atomic_store(&t->ckpt_requested, 0);
    int64_t start = mono_ms();
    if (t->ckpt_interval > 0) t->ckpt_due = start + t->ckpt_interval;
    char why[900];
    int rc = t->ckpt_fn(t, t->ckpt_arg, final, why, sizeof why);
    int64_t end = mono_ms();
    if (t->ckpt_interval > 0 && end + t->ckpt_min_pause > t->ckpt_due)
        t->ckpt_due = end + t->ckpt_min_pause;
    if (rc < 0) {
        if (!final && t->ckpt_failures < t->ckpt_tolerable) {
            t->ckpt_failures++;
            log_warn("checkpoint",
                     "task=%s failed (%" PRId64 " of %" PRId64
                     " tolerated, --tolerableCheckpointFailureNumber): %s",
                     t->label, t->ckpt_failures, t->ckpt_tolerable, why);
            return 0;
        }
        char what[1000];
        snprintf(what, sizeof what, "checkpoint: %s", why);
        return fail(t, err, errlen, what);
    }
    t->ckpt_failures = 0;
    return 0;
}

void rt_task_set_checkpoint_policy(rt_task *t, int64_t min_pause_ms, int64_t tolerable)
{
    t->ckpt_min_pause = min_pause_ms > 0 ? min_pause_ms : 0;
    t->ckpt_tolerable = tolerable > 0 ? tolerable : 0;
}

/* At a record boundary: a checkpoint when one is due or requested. */
static int maybe_checkpoint(rt_task *t, char *err, size_t errlen)
{
    if (!t->ckpt_fn) return 0;
    if (atomic_load_explicit(&t->ckpt_requested, memory_order_relaxed) ||
        (t->ckpt_interval > 0 && mono_ms() >= t->ckpt_due))
        return checkpoint(t, 0, err, errlen);
    return 0;
}

static void update_pending(rt_task *t);

static int end_input(rt_task *t, int drain, char *err, size_t errlen)
{
    if (t->c_read) update_pending(t);
    if (drain) {
        if (rt_graph_finish(t->g) < 0) return fail(t, err, errlen, rt_graph_error(t->g));
        t->drained = 1;
    }
    if (t->ckpt_fn && checkpoint(t, 1, err, errlen) < 0) return -1;
    t->done = 1;
    return RT_TASK_DONE;
}

static size_t sources_left(const rt_task *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nsrc; i++) n += !t->srcs[i].ended;
    return n;
}

/* The source has ended: its last watermark goes out; when others go on and the task drains, it
 * stops holding its root back. */
static int source_end(rt_task *t, task_source *s, char *err, size_t errlen)
{
    if (poll_source(t, s, err, errlen) < 0) return -1;
    s->ended = 1;
    if (t->cfg.no_drain || !sources_left(t)) return 0;
    s->wm_now = RT_TIME_MAX;
    return raise_root(t, s, err, errlen);
}

/* Makes sure every source that can has a record pending. Returns 0 or -1. */
static int refill(rt_task *t, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->nsrc; i++) {
        task_source *s = &t->srcs[i];
        if (s->ended || s->idle || s->pending) continue;
        s->rec = (rt_source_record){.ts = -1, .offset = -1};
        int r = s->src->next(s->src, &s->rec, err, errlen);
        if (r < 0) {
            char what[400];
            snprintf(what, sizeof what, "source %s: %s", s->src->name ? s->src->name : "?", err);
            return fail(t, err, errlen, what);
        }
        if (r == RT_SOURCE_RECORD) s->pending = PEND_RECORD;
        else if (r == RT_SOURCE_BAD) s->pending = PEND_BAD;
        else if (r == RT_SOURCE_IDLE) s->idle = 1;
        else if (source_end(t, s, err, errlen) < 0) return -1;
    }
    return 0;
}

/* The pending record to push next: a bad span first, else the smallest timestamp; ties go to
 * the source added first. NULL when no source has one. */
static task_source *pick(rt_task *t)
{
    task_source *best = NULL;
    for (size_t i = 0; i < t->nsrc; i++) {
        task_source *s = &t->srcs[i];
        if (!s->pending) continue;
        if (s->pending == PEND_BAD) return s;
        if (!best || s->rec.ts < best->rec.ts) best = s;
    }
    return best;
}

int rt_task_step(rt_task *t, char *err, size_t errlen)
{
    if (t->done) return RT_TASK_DONE;
    if (!t->opened) return fail(t, err, errlen, "not open (rt_task_open)");
    int stop = atomic_load_explicit(&t->stop, memory_order_relaxed);
    if (stop != STOP_NONE) {
        if (poll_all(t, err, errlen) < 0) return -1;
        t->stopped = 1;
        return end_input(t, stop == STOP_DRAIN, err, errlen);
    }
    for (size_t i = 0; i < t->nsrc; i++) t->srcs[i].idle = 0;
    if (t->cfg.mem) {
        int p = memory_policy(t, err, errlen);
        if (p < 0) return -1;
        if (p > 0) {
            if (poll_all(t, err, errlen) < 0) return -1;
            if (maybe_checkpoint(t, err, errlen) < 0) return -1;
            return RT_TASK_IDLE;
        }
    }
    for (uint32_t n = 0; n < t->cfg.step_records; n++) {
        if (refill(t, err, errlen) < 0) return -1;
        task_source *s = pick(t);
        if (!s) {
            if (!sources_left(t)) return end_input(t, !t->cfg.no_drain, err, errlen);
            rt_gauge_set(t->g_offset, t->last_offset);
            update_pending(t);
            if (poll_all(t, err, errlen) < 0) return -1;
            if (maybe_checkpoint(t, err, errlen) < 0) return -1;
            return RT_TASK_IDLE;
        }
        rt_source_record *sr = &s->rec;
        sr->source = s->src->name;
        sr->partition = s->src->partition;
        t->last_offset = sr->offset;
        rt_record rec = {sr->ts, RT_TYPE_SOURCE, sr, sr->value_len, sr->key, sr->key_len};
        if (s->pending == PEND_BAD) {
            rec.type = RT_TYPE_SOURCE_BAD;
            t->bad++;
            rt_counter_add_1w(t->c_bad, 1);
        } else {
            rt_wmgen_observe(&s->wm, sr->ts);
            t->records++;
        }
        s->pending = PEND_NONE;
        if (rt_graph_push(t->g, s->root, s->input, &rec) < 0)
            return fail(t, err, errlen, rt_graph_error(t->g));
        if (++s->since_wm >= t->cfg.watermark_every && poll_source(t, s, err, errlen) < 0)
            return -1;
        /* a due checkpoint need not wait for the step's end (a step can be seconds of work) */
        if ((n & (CKPT_CHECK_EVERY - 1)) == CKPT_CHECK_EVERY - 1) {
            if (maybe_checkpoint(t, err, errlen) < 0) return -1;
            /* a stop asked for by the checkpoint (stop with savepoint) comes before any more
             * records: the next step ends the task; so does memory pressure (the step start
             * applies the policy) */
            if (atomic_load_explicit(&t->stop, memory_order_relaxed) != STOP_NONE ||
                rt_mem_pressure(t->cfg.mem))
                return RT_TASK_MORE;
        }
    }
    rt_gauge_set(t->g_offset, t->last_offset);
    update_pending(t);
    if (poll_all(t, err, errlen) < 0) return -1;
    if (maybe_checkpoint(t, err, errlen) < 0) return -1;
    return RT_TASK_MORE;
}

int rt_task_run(rt_task *t, char *err, size_t errlen)
{
    for (;;) {
        int r = rt_task_step(t, err, errlen);
        if (r < 0) return -1;
        if (r == RT_TASK_DONE) return 0;
    }
}

void rt_task_request_stop(rt_task *t, int drain)
{
    int want = drain ? STOP_DRAIN : STOP_KEEP, cur = STOP_NONE;
    /* The first request wins: a failure elsewhere (no drain) is not overridden by a later one. */
    atomic_compare_exchange_strong(&t->stop, &cur, want);
}

void rt_task_info_get(const rt_task *t, rt_task_info *info)
{
    info->label = t->label;
    info->records = t->records;
    info->bad = t->bad;
    info->last_offset = t->last_offset;
    info->watermark = t->wm_sent;
    info->drained = t->drained;
    info->stopped = t->stopped;
    info->done = t->done;
    info->sources = t->nsrc;
}

/* ---- checkpoints ---- */

#define TASK_SNAP_VERSION 1

void rt_task_set_checkpointing(rt_task *t, int64_t interval_ms, rt_checkpoint_fn fn, void *arg)
{
    t->ckpt_fn = fn;
    t->ckpt_arg = arg;
    t->ckpt_interval = interval_ms;
    t->ckpt_due = mono_ms() + (interval_ms > 0 ? interval_ms : 0);
    rt_graph_set_checkpointing(t->g, fn != NULL);
}

void rt_task_request_checkpoint(rt_task *t)
{
    atomic_store(&t->ckpt_requested, 1);
}

void rt_task_mark_done(rt_task *t)
{
    t->done = 1;
}

/* The next record of s not yet pushed: the pending one, else the source's position. */
static int64_t next_offset(const task_source *s)
{
    if (s->pending) return s->rec.offset;
    return s->src->position ? s->src->position(s->src) : -1;
}

int64_t rt_task_source_position(const rt_task *t, size_t i)
{
    return i < t->nsrc ? next_offset(&t->srcs[i]) : -1;
}

rt_source *rt_task_source_at(const rt_task *t, size_t i)
{
    return i < t->nsrc ? t->srcs[i].src : NULL;
}

int rt_task_snapshot(rt_task *t, rt_buf *out, char *err, size_t errlen)
{
    int ok = rt_buf_put_u32(out, TASK_SNAP_VERSION) >= 0 &&
             rt_buf_put_u32(out, (uint32_t)t->nsrc) >= 0;
    for (size_t i = 0; ok && i < t->nsrc; i++) {
        const task_source *s = &t->srcs[i];
        ok = rt_buf_put_str(out, s->src->name ? s->src->name : "") >= 0 &&
             rt_buf_put_u32(out, (uint32_t)s->src->partition) >= 0 &&
             rt_buf_put_i64(out, next_offset(s)) >= 0 &&
             rt_buf_put_i64(out, s->wm.max_ts) >= 0 && rt_buf_put_i64(out, s->wm.wm) >= 0 &&
             rt_buf_put_i64(out, s->wm_now) >= 0 && rt_buf_put_u8(out, (uint8_t)s->ended) >= 0;
    }
    ok = ok && rt_buf_put_u64(out, t->records) >= 0 && rt_buf_put_u64(out, t->bad) >= 0 &&
         rt_buf_put_i64(out, t->wm_sent) >= 0;
    if (!ok) {
        snprintf(err, errlen, "task %s: snapshot over its limit of %zu bytes", t->label, out->limit);
        return -1;
    }
    if (rt_graph_snapshot(t->g, out) < 0) {
        snprintf(err, errlen, "task %s: %s", t->label, rt_graph_error(t->g));
        return -1;
    }
    return 0;
}

typedef struct snap_src {
    const uint8_t *name;
    size_t name_len;
    uint32_t partition;
    int64_t next, max_ts, wm, wm_now;
    uint8_t ended;
} snap_src;

static int read_src(rt_buf_reader *r, snap_src *s)
{
    return rt_buf_read_bytes(r, &s->name, &s->name_len) < 0 ||
                   rt_buf_read_u32(r, &s->partition) < 0 || rt_buf_read_i64(r, &s->next) < 0 ||
                   rt_buf_read_i64(r, &s->max_ts) < 0 || rt_buf_read_i64(r, &s->wm) < 0 ||
                   rt_buf_read_i64(r, &s->wm_now) < 0 || rt_buf_read_u8(r, &s->ended) < 0
               ? -1
               : 0;
}

static int read_head(rt_buf_reader *r, uint32_t *nsrc, char *err, size_t errlen)
{
    uint32_t v;
    if (rt_buf_read_u32(r, &v) < 0 || rt_buf_read_u32(r, nsrc) < 0) {
        snprintf(err, errlen, "task snapshot: truncated header");
        return -1;
    }
    if (v != TASK_SNAP_VERSION) {
        snprintf(err, errlen, "task snapshot: version %u, this build reads %u", v, TASK_SNAP_VERSION);
        return -1;
    }
    if (*nsrc > RT_TASK_MAX_SOURCES) {
        snprintf(err, errlen, "task snapshot: %u sources, over the limit of %d", *nsrc,
                 RT_TASK_MAX_SOURCES);
        return -1;
    }
    return 0;
}

int rt_task_snapshot_sources(const uint8_t *bytes, size_t len, rt_task_source_pos *out,
                             size_t cap, size_t *n, char *err, size_t errlen)
{
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t nsrc;
    if (read_head(&r, &nsrc, err, errlen) < 0) return -1;
    if (nsrc > cap) {
        snprintf(err, errlen, "task snapshot: %u sources, more than the %zu expected", nsrc, cap);
        return -1;
    }
    for (uint32_t i = 0; i < nsrc; i++) {
        snap_src s;
        if (read_src(&r, &s) < 0) {
            snprintf(err, errlen, "task snapshot: truncated source %u", i);
            return -1;
        }
        snprintf(out[i].name, sizeof out[i].name, "%.*s", (int)s.name_len, (const char *)s.name);
        out[i].partition = (int32_t)s.partition;
        out[i].next_offset = s.next;
        out[i].ended = s.ended;
    }
    *n = nsrc;
    return 0;
}

int rt_task_restore(rt_task *t, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t nsrc;
    if (read_head(&r, &nsrc, err, errlen) < 0) return -1;
    if (nsrc != t->nsrc) {
        snprintf(err, errlen, "task %s: the checkpoint has %u sources, the task %zu", t->label,
                 nsrc, t->nsrc);
        return -1;
    }
    for (uint32_t i = 0; i < nsrc; i++) {
        snap_src s;
        if (read_src(&r, &s) < 0) {
            snprintf(err, errlen, "task snapshot: truncated source %u", i);
            return -1;
        }
        task_source *ts = &t->srcs[i];
        rt_wmgen_restore(&ts->wm, s.wm, s.max_ts);
        ts->wm_now = s.wm_now;
        ts->ended = s.ended;
    }
    uint64_t records, bad;
    int64_t wm_sent;
    if (rt_buf_read_u64(&r, &records) < 0 || rt_buf_read_u64(&r, &bad) < 0 ||
        rt_buf_read_i64(&r, &wm_sent) < 0) {
        snprintf(err, errlen, "task snapshot: truncated counters");
        return -1;
    }
    t->records = records;
    t->read_reported = records; /* numRecordsRead counts this process's reads */
    t->bad = bad;
    t->wm_sent = wm_sent;
    rt_gauge_set(t->g_wm, wm_sent);
    char why[900];
    if (rt_graph_restore(t->g, r.p, rt_buf_reader_left(&r), why, sizeof why) < 0) {
        snprintf(err, errlen, "task %s: %s", t->label, why);
        return -1;
    }
    return 0;
}

void rt_task_free(rt_task *t)
{
    if (!t) return;
    rt_graph_free(t->g);
    free(t->srcs);
    free(t->label);
    free(t);
}
