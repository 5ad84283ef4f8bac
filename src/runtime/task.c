#include "runtime/task.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_WM_EVERY 256
#define DEFAULT_STEP 4096
#define LABELS_MAX 160

enum { STOP_NONE = 0, STOP_KEEP = 1, STOP_DRAIN = 2 };

struct rt_task {
    rt_task_config cfg;
    char *label;
    rt_graph *g;
    rt_source *src;
    rt_op *root;
    int root_input;
    rt_wmgen wm;
    int64_t wm_sent;
    uint32_t since_wm;
    uint64_t records, bad;
    int64_t last_offset;
    _Atomic int stop;
    int opened, done, drained;
    rt_counter *c_bad;
    rt_gauge *g_wm, *g_offset;
};

int rt_task_new(const rt_task_config *cfg, rt_task **out, char *err, size_t errlen)
{
    rt_task *t = calloc(1, sizeof *t);
    if (!t) goto oom;
    t->cfg = *cfg;
    if (!t->cfg.watermark_every) t->cfg.watermark_every = DEFAULT_WM_EVERY;
    if (!t->cfg.step_records) t->cfg.step_records = DEFAULT_STEP;
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

void rt_task_set_source(rt_task *t, rt_source *src, rt_op *root, int input)
{
    t->src = src;
    t->root = root;
    t->root_input = input;
}

int rt_task_open(rt_task *t, char *err, size_t errlen)
{
    if (!t->src || !t->root) {
        snprintf(err, errlen, "task %s: no source (rt_task_set_source)", t->label);
        return -1;
    }
    rt_wmgen_config wc = t->cfg.wm;
    if (t->src->finite) wc.idleness = 0; /* processing time never moves a finite input */
    rt_wmgen_init(&t->wm, &wc);
    if (rt_graph_open(t->g, err, errlen) < 0) return -1;
    char labels[LABELS_MAX];
    snprintf(labels, sizeof labels, "task=%s", t->label);
    rt_metrics *m = rt_graph_metrics(t->g);
    if (rt_metrics_counter(m, "numBadSpans", labels, &t->c_bad) < 0 ||
        rt_metrics_gauge(m, "sourceWatermark", labels, &t->g_wm) < 0 ||
        rt_metrics_gauge(m, "sourceOffset", labels, &t->g_offset) < 0) {
        snprintf(err, errlen, "task %s: cannot register metrics", t->label);
        return -1;
    }
    rt_gauge_set(t->g_wm, RT_TIME_MIN);
    rt_gauge_set(t->g_offset, -1);
    t->opened = 1;
    return 0;
}

static int fail(rt_task *t, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "task %s: %s", t->label, what);
    t->done = 1;
    return -1;
}

static int poll_watermark(rt_task *t, char *err, size_t errlen)
{
    t->since_wm = 0;
    int64_t w = rt_wmgen_poll(&t->wm);
    if (w <= t->wm_sent) return 0;
    t->wm_sent = w;
    rt_gauge_set(t->g_wm, w);
    if (rt_graph_advance_watermark(t->g, w) < 0) return fail(t, err, errlen, rt_graph_error(t->g));
    return 0;
}

static int end_input(rt_task *t, int drain, char *err, size_t errlen)
{
    if (drain) {
        if (rt_graph_finish(t->g) < 0) return fail(t, err, errlen, rt_graph_error(t->g));
        t->drained = 1;
    }
    t->done = 1;
    return RT_TASK_DONE;
}

int rt_task_step(rt_task *t, char *err, size_t errlen)
{
    if (t->done) return RT_TASK_DONE;
    if (!t->opened) return fail(t, err, errlen, "not open (rt_task_open)");
    int stop = atomic_load_explicit(&t->stop, memory_order_relaxed);
    if (stop != STOP_NONE) {
        if (poll_watermark(t, err, errlen) < 0) return -1;
        return end_input(t, stop == STOP_DRAIN, err, errlen);
    }
    rt_source *src = t->src;
    for (uint32_t i = 0; i < t->cfg.step_records; i++) {
        rt_source_record sr = {.ts = -1, .offset = -1};
        int r = src->next(src, &sr, err, errlen);
        if (r < 0) {
            char what[400];
            snprintf(what, sizeof what, "source %s: %s", src->name ? src->name : "?", err);
            return fail(t, err, errlen, what);
        }
        if (r == RT_SOURCE_IDLE) {
            if (poll_watermark(t, err, errlen) < 0) return -1;
            return RT_TASK_IDLE;
        }
        if (r == RT_SOURCE_END) {
            if (poll_watermark(t, err, errlen) < 0) return -1;
            return end_input(t, !t->cfg.no_drain, err, errlen);
        }
        sr.source = src->name;
        sr.partition = src->partition;
        t->last_offset = sr.offset;
        rt_record rec = {sr.ts, RT_TYPE_SOURCE, &sr, sr.value_len, sr.key, sr.key_len};
        if (r == RT_SOURCE_BAD) {
            rec.type = RT_TYPE_SOURCE_BAD;
            t->bad++;
            rt_counter_add_1w(t->c_bad, 1);
        } else {
            rt_wmgen_observe(&t->wm, sr.ts);
            t->records++;
        }
        if (rt_graph_push(t->g, t->root, t->root_input, &rec) < 0)
            return fail(t, err, errlen, rt_graph_error(t->g));
        if (++t->since_wm >= t->cfg.watermark_every && poll_watermark(t, err, errlen) < 0)
            return -1;
    }
    rt_gauge_set(t->g_offset, t->last_offset);
    if (poll_watermark(t, err, errlen) < 0) return -1;
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
    info->done = t->done;
}

void rt_task_free(rt_task *t)
{
    if (!t) return;
    rt_graph_free(t->g);
    free(t->label);
    free(t);
}
