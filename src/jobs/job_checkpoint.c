#include "jobs/job_checkpoint.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/log.h"
#include "runtime/metrics.h"

#define KEEP_CHECKPOINTS 2
#define MAX_CHECKPOINT_BYTES ((size_t)8 << 30)
#define MAX_SAVEPOINT_TASKS 4096

struct jckpt_savepoint {
    pthread_mutex_t mu;
    char *url;
    objstore_config cfg;
    size_t want, written;
    char **tasks;
    int failed, done;
    int then_stop;
    char err[2600];
};

struct jckpt_ctx {
    objstore *os;
    char *store;
    objstore_config cfg;
    char job[64], run_id[16], task[256];
    int64_t next_id;
    rt_buf file;
    _Atomic(jckpt_savepoint *) sp;
    pthread_mutex_t mu; /* stats, read by other threads */
    jckpt_stats stats;
    rt_gauge *g_size, *g_dur, *g_count, *g_time, *g_failed;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int jckpt_ctx_new(const char *store, const objstore_config *cfg, const char *job,
                  const char *run_id, const char *task, jckpt_ctx **out, char *err, size_t errlen)
{
    jckpt_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->store = strdup(store))) {
        free(c);
        snprintf(err, errlen, "checkpoints: out of memory");
        return -1;
    }
    if (cfg) c->cfg = *cfg;
    snprintf(c->job, sizeof c->job, "%s", job);
    snprintf(c->run_id, sizeof c->run_id, "%s", run_id);
    snprintf(c->task, sizeof c->task, "%s", task);
    c->next_id = 1;
    rt_buf_init(&c->file, MAX_CHECKPOINT_BYTES);
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->sp, NULL);
    char why[1024];
    if (objstore_open(store, cfg, &c->os, why, sizeof why)) {
        snprintf(err, errlen, "checkpoint store %s: %s", store, why);
        jckpt_ctx_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void jckpt_ctx_free(jckpt_ctx *c)
{
    if (!c) return;
    objstore_free(c->os);
    rt_buf_free(&c->file);
    pthread_mutex_destroy(&c->mu);
    free(c->store);
    free(c);
}

void jckpt_loaded_free(jckpt_loaded *l)
{
    rt_buf_free(&l->bytes);
    memset(l, 0, sizeof *l);
}

void jckpt_set_next_id(jckpt_ctx *c, int64_t next)
{
    c->next_id = next;
}

jckpt_stats jckpt_get_stats(const jckpt_ctx *c)
{
    jckpt_stats s;
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    s = c->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return s;
}

/* ---- loading ---- */

typedef struct id_list {
    int64_t *ids;
    size_t n, cap;
} id_list;

static int collect_id(void *arg, const char *key, int64_t size)
{
    (void)size;
    id_list *l = arg;
    int64_t id = ckpt_parse_name(key);
    if (id < 0) return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        int64_t *a = realloc(l->ids, cap * sizeof *a);
        if (!a) return -1;
        l->ids = a;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int list_ids(jckpt_ctx *c, id_list *l, char *err, size_t errlen)
{
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s/", c->task);
    memset(l, 0, sizeof *l);
    char why[1024];
    if (objstore_list(c->os, prefix, collect_id, l, why, sizeof why)) {
        free(l->ids);
        snprintf(err, errlen, "listing checkpoints of task %s in %s: %s", c->task, c->store, why);
        return -1;
    }
    if (l->n) qsort(l->ids, l->n, sizeof *l->ids, cmp_desc);
    return 0;
}

static int load_key(objstore *os, const char *where, const char *key, jckpt_loaded *l, char *err,
                    size_t errlen)
{
    rt_buf_init(&l->bytes, MAX_CHECKPOINT_BYTES);
    char why[1024];
    int r = objstore_get(os, key, &l->bytes, why, sizeof why);
    if (r == 1) {
        rt_buf_free(&l->bytes);
        return 0;
    }
    snprintf(l->from, sizeof l->from, "%s/%s", where, key);
    if (r < 0) {
        snprintf(err, errlen, "reading %s: %s", l->from, why);
        rt_buf_free(&l->bytes);
        return -1;
    }
    if (ckpt_decode(l->from, l->bytes.data, l->bytes.len, &l->h, &l->state, &l->state_len, err,
                    errlen)) {
        rt_buf_free(&l->bytes);
        return -1;
    }
    return 1;
}

int jckpt_load_latest(jckpt_ctx *c, jckpt_loaded *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    id_list ids;
    if (list_ids(c, &ids, err, errlen)) return -1;
    int found = 0;
    for (size_t i = 0; i < ids.n && !found; i++) {
        char key[300], name[32];
        ckpt_name(ids.ids[i], name, sizeof name);
        snprintf(key, sizeof key, "%s/%s", c->task, name);
        char why[1024];
        int r = load_key(c->os, c->store, key, l, why, sizeof why);
        if (r == 1) {
            found = 1;
            c->next_id = ids.ids[i] + 1;
        } else if (r < 0) {
            /* a damaged checkpoint is never used: fall back to the one before it */
            log_warn("checkpoint", "skipping a checkpoint that does not verify task=%s error=\"%s\"",
                     c->task, why);
        }
    }
    if (!found && ids.n) c->next_id = ids.ids[0] + 1;
    free(ids.ids);
    return found;
}

int jckpt_load_savepoint(const char *url, const objstore_config *cfg, const char *task,
                         jckpt_loaded *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    objstore *os;
    char why[1024];
    if (objstore_open(url, cfg, &os, why, sizeof why)) {
        snprintf(err, errlen, "savepoint %s: %s", url, why);
        return -1;
    }
    rt_buf meta;
    rt_buf_init(&meta, 64 << 20);
    int r = objstore_get(os, "_metadata", &meta, why, sizeof why);
    rt_buf_free(&meta);
    if (r != 0) {
        snprintf(err, errlen, "savepoint %s: %s", url,
                 r == 1 ? "no _metadata (not a savepoint, or an incomplete one)" : why);
        objstore_free(os);
        return -1;
    }
    char key[300];
    snprintf(key, sizeof key, "%s.ckpt", task);
    r = load_key(os, url, key, l, err, errlen);
    objstore_free(os);
    return r;
}

/* ---- writing ---- */

static void ensure_metrics(jckpt_ctx *c, rt_task *t)
{
    if (c->g_size) return;
    rt_metrics *m = rt_graph_metrics(rt_task_graph(t));
    char labels[300];
    snprintf(labels, sizeof labels, "task=%s", c->task);
    if (rt_metrics_gauge(m, "lastCheckpointSize", labels, &c->g_size) < 0 ||
        rt_metrics_gauge(m, "lastCheckpointDuration", labels, &c->g_dur) < 0 ||
        rt_metrics_gauge(m, "numberOfCompletedCheckpoints", labels, &c->g_count) < 0 ||
        rt_metrics_gauge(m, "lastCheckpointTime", labels, &c->g_time) < 0 ||
        rt_metrics_gauge(m, "numberOfFailedCheckpoints", labels, &c->g_failed) < 0)
        c->g_size = c->g_dur = c->g_count = c->g_time = c->g_failed = NULL;
}

static void savepoint_report(jckpt_savepoint *sp, const char *task, const uint8_t *bytes,
                             size_t len, const char *fail)
{
    char why[1024] = "";
    int ok = !fail;
    if (ok) {
        objstore *os;
        char key[300];
        snprintf(key, sizeof key, "%s.ckpt", task);
        ok = !objstore_open(sp->url, &sp->cfg, &os, why, sizeof why);
        if (ok) {
            ok = !objstore_put(os, key, bytes, len, why, sizeof why);
            objstore_free(os);
        }
    } else {
        snprintf(why, sizeof why, "%s", fail);
    }
    pthread_mutex_lock(&sp->mu);
    if (!ok && !sp->failed) {
        sp->failed = 1;
        snprintf(sp->err, sizeof sp->err, "savepoint %s, task %s: %s", sp->url, task, why);
    }
    if (ok && sp->written < sp->want) sp->tasks[sp->written] = strdup(task);
    sp->written++;
    int last = sp->written == sp->want;
    pthread_mutex_unlock(&sp->mu);
    if (!last) return;
    /* the last task writes _metadata: the savepoint is complete only now */
    rt_buf meta;
    rt_buf_init(&meta, 64 << 20);
    int good = !sp->failed;
    char line[600];
    snprintf(line, sizeof line, "logproc savepoint v%d\ntasks %zu\n", CKPT_FORMAT_VERSION, sp->want);
    good = good && rt_buf_append(&meta, line, strlen(line)) >= 0;
    for (size_t i = 0; good && i < sp->want; i++) {
        snprintf(line, sizeof line, "task %s\n", sp->tasks[i] ? sp->tasks[i] : "?");
        good = rt_buf_append(&meta, line, strlen(line)) >= 0;
    }
    objstore *os = NULL;
    if (good && (objstore_open(sp->url, &sp->cfg, &os, why, sizeof why) ||
                 objstore_put(os, "_metadata", meta.data, meta.len, why, sizeof why))) {
        pthread_mutex_lock(&sp->mu);
        sp->failed = 1;
        snprintf(sp->err, sizeof sp->err, "savepoint %s: writing _metadata: %s", sp->url, why);
        pthread_mutex_unlock(&sp->mu);
    }
    objstore_free(os);
    rt_buf_free(&meta);
    pthread_mutex_lock(&sp->mu);
    sp->done = 1;
    pthread_mutex_unlock(&sp->mu);
}

int jckpt_hook(rt_task *t, void *arg, int final, char *err, size_t errlen)
{
    jckpt_ctx *c = arg;
    ensure_metrics(c, t);
    int64_t t0 = mono_ms();
    rt_task_info info;
    rt_task_info_get(t, &info);
    ckpt_header h = {0};
    snprintf(h.job, sizeof h.job, "%s", c->job);
    snprintf(h.run_id, sizeof h.run_id, "%s", c->run_id);
    snprintf(h.task, sizeof h.task, "%s", c->task);
    h.id = c->next_id;
    h.created_ms = wall_ms();
    h.watermark = info.watermark;
    /* a task stopped on request is not finished: its input goes on after a restore */
    if (final && !info.stopped) h.flags |= CKPT_FINAL;
    if (info.drained) h.flags |= CKPT_DRAINED;
    jckpt_savepoint *sp = atomic_exchange(&c->sp, NULL);
    if (sp) h.flags |= CKPT_SAVEPOINT;
    rt_buf_reset(&c->file);
    char why[1024];
    ckpt_open co;
    /* the snapshot is written straight into the file's buffer: one copy of the state */
    if (ckpt_encode_begin(&h, &c->file, &co, why, sizeof why) ||
        rt_task_snapshot(t, &c->file, why, sizeof why) ||
        ckpt_encode_end(&c->file, &co, why, sizeof why))
        goto fail;
    char key[300], name[32];
    ckpt_name(h.id, name, sizeof name);
    snprintf(key, sizeof key, "%s/%s", c->task, name);
    if (objstore_put(c->os, key, c->file.data, c->file.len, why, sizeof why)) goto fail;
    /* durable: now the sinks may publish what this checkpoint recorded */
    if (rt_graph_checkpoint_complete(rt_task_graph(t), h.id) < 0) {
        snprintf(why, sizeof why, "%s", rt_graph_error(rt_task_graph(t)));
        goto fail;
    }
    if (sp) {
        /* a stop with savepoint: not one more record after it (the stop's final checkpoint then
         * holds the savepoint's state) */
        if (sp->then_stop) rt_task_request_stop(t, 0);
        savepoint_report(sp, c->task, c->file.data, c->file.len, NULL);
    }
    c->next_id++;
    if (h.id > KEEP_CHECKPOINTS) {
        ckpt_name(h.id - KEEP_CHECKPOINTS, name, sizeof name);
        snprintf(key, sizeof key, "%s/%s", c->task, name);
        if (objstore_delete(c->os, key, why, sizeof why))
            log_warn("checkpoint", "deleting an old checkpoint failed key=%s error=\"%s\"", key, why);
    }
    int64_t dur = mono_ms() - t0;
    pthread_mutex_lock(&c->mu);
    c->stats.completed++;
    c->stats.last_id = h.id;
    c->stats.last_bytes = (int64_t)c->file.len;
    c->stats.last_duration_ms = dur;
    c->stats.last_time_ms = h.created_ms;
    pthread_mutex_unlock(&c->mu);
    if (c->g_size) {
        rt_gauge_set(c->g_size, (int64_t)c->file.len);
        rt_gauge_set(c->g_dur, dur);
        rt_gauge_set(c->g_count, c->stats.completed);
        rt_gauge_set(c->g_time, h.created_ms);
    }
    log_info("checkpoint",
             "completed task=%s id=%" PRId64 " bytes=%zu duration_ms=%" PRId64 " watermark=%" PRId64
             "%s%s",
             c->task, h.id, c->file.len, dur, h.watermark, h.flags & CKPT_FINAL ? " final=true" : "",
             sp ? " savepoint=true" : "");
    return 0;
fail:
    pthread_mutex_lock(&c->mu);
    c->stats.failed++;
    pthread_mutex_unlock(&c->mu);
    if (c->g_failed) rt_gauge_set(c->g_failed, (int64_t)c->stats.failed);
    if (sp) savepoint_report(sp, c->task, NULL, 0, why);
    snprintf(err, errlen, "task %s, checkpoint %" PRId64 " to %s: %s", c->task, h.id, c->store, why);
    return -1;
}

/* ---- savepoints ---- */

jckpt_savepoint *jckpt_request_savepoint(const char *url, const objstore_config *cfg,
                                         jckpt_ctx *const *ctxs, rt_task *const *tasks, size_t n,
                                         int then_stop, char *err, size_t errlen)
{
    if (n > MAX_SAVEPOINT_TASKS) {
        snprintf(err, errlen, "savepoint: %zu tasks, over the limit of %d", n, MAX_SAVEPOINT_TASKS);
        return NULL;
    }
    jckpt_savepoint *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->url = strdup(url)) || !(sp->tasks = calloc(n ? n : 1, sizeof *sp->tasks))) {
        if (sp) free(sp->url);
        free(sp);
        snprintf(err, errlen, "savepoint: out of memory");
        return NULL;
    }
    pthread_mutex_init(&sp->mu, NULL);
    if (cfg) sp->cfg = *cfg;
    sp->want = n;
    sp->then_stop = then_stop;
    for (size_t i = 0; i < n; i++) {
        jckpt_savepoint *none = NULL;
        if (!atomic_compare_exchange_strong(&ctxs[i]->sp, &none, sp)) {
            snprintf(err, errlen, "savepoint: task %s has one in progress", ctxs[i]->task);
            for (size_t k = 0; k < i; k++) atomic_store(&ctxs[k]->sp, NULL);
            jckpt_savepoint_free(sp);
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++) rt_task_request_checkpoint(tasks[i]);
    if (n == 0) savepoint_report(sp, "", NULL, 0, "the process has no running task");
    return sp;
}

int jckpt_savepoint_done(jckpt_savepoint *sp, char *err, size_t errlen)
{
    pthread_mutex_lock(&sp->mu);
    int r = !sp->done ? 0 : sp->failed ? -1 : 1;
    if (r < 0) snprintf(err, errlen, "%s", sp->err);
    pthread_mutex_unlock(&sp->mu);
    return r;
}

void jckpt_savepoint_free(jckpt_savepoint *sp)
{
    if (!sp) return;
    for (size_t i = 0; i < sp->want; i++) free(sp->tasks[i]);
    free(sp->tasks);
    free(sp->url);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
}
