/* `logproc run JOB`: parse the flags, build the tasks (one per input file or Kafka partition,
 * or one for every input of a job whose aggregates are not keyed by user), restore them from
 * their checkpoints, run them on the worker pool, serve control requests and Kafka group
 * rebalances, and print what each output received. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "connectors/avro_source.h"
#include "connectors/kafka.h"
#include "formats/record_file.h"
#include "jobs/common_ops.h"
#include "jobs/job.h"
#include "jobs/job_checkpoint.h"
#include "jobs/job_control.h"
#include "jobs/job_supervise.h"
#include "jobs/topic_sink.h"
#include "ops/http.h"
#include "ops/status.h"
#include "runtime/log.h"
#include "runtime/htab.h"
#include "runtime/mem.h"
#include "runtime/metrics.h"
#include "runtime/pool.h"
#include "runtime/task.h"

#define MAX_TASKS 1024
#define MAX_TOTALS 512
#define CONTROL_POLL_MS 50
#define REST_DEFAULT_PORT 8081
#define SAVEPOINT_TIMEOUT_MS 600000

/* ---- record-file source ---- */

typedef struct file_source {
    rt_source src;
    recfile_reader *r;
    avsrc *av; /* instead of r: Avro tables (backfill, open_input) */
    int64_t (*assign_ts)(const uint8_t *value, size_t len, int64_t record_ts);
    /* Key shard this source reads (--maxParallelism above 1 with fewer files than shards): a
     * record belongs to shard rt_hash_bytes(key) % nshards, as a Kafka partitioner would place
     * it; bad spans (no key) go to shard 0. Every shard maps the whole file and skips the frames
     * of the others, which costs only their framing (no decode). */
    uint32_t shard, nshards;
} file_source;

/* The key shard of a record: the same for every run and platform (the checkpoint store keeps
 * the shard count: see check_file_shards). */
static uint32_t key_shard(const uint8_t *key, size_t len, uint32_t nshards)
{
    if (nshards <= 1) return 0;
    return (uint32_t)(rt_hash_bytes(key, len) % nshards);
}

static int file_next(rt_source *src, rt_source_record *out, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    file_source *fs = src->self;
    recfile_record rec;
    recfile_bad bad;
    int r;
    do {
        r = recfile_next(fs->r, &rec, &bad);
    } while ((r == 1 && key_shard(rec.key, rec.key_len, fs->nshards) != fs->shard) ||
             (r == 2 && fs->shard != 0));
    switch (r) {
    case 1:
        out->ts = rec.ts_ms;
        out->offset = (int64_t)rec.offset;
        out->key = rec.key;
        out->key_len = rec.key_len;
        out->value = rec.value;
        out->value_len = rec.value_len;
        out->raw_length = rec.value_len;
        out->error = NULL;
        if (fs->assign_ts) out->ts = fs->assign_ts(rec.value, rec.value_len, rec.ts_ms);
        return RT_SOURCE_RECORD;
    case 2:
        out->ts = bad.ts_ms;
        out->offset = (int64_t)bad.offset;
        out->key = NULL;
        out->key_len = 0;
        out->value = bad.raw;
        out->value_len = bad.raw_len;
        out->raw_length = bad.full_len;
        out->error = bad.error;
        return RT_SOURCE_BAD;
    default:
        return RT_SOURCE_END;
    }
}

static int64_t file_position(const rt_source *src)
{
    const file_source *fs = src->self;
    return (int64_t)recfile_reader_position(fs->r);
}

/* Opens path as a finite record-file source. Returns 0 or -1 with err naming the flag. */
static int file_source_open(file_source *fs, const char *flag, const char *path,
                            const job_common_opts *c,
                            int64_t (*assign_ts)(const uint8_t *, size_t, int64_t),
                            uint32_t shard, uint32_t nshards, char *err, size_t errlen)
{
    memset(fs, 0, sizeof *fs);
    fs->shard = shard;
    fs->nshards = nshards ? nshards : 1;
    char why[900];
    if (recfile_reader_open(path, (size_t)c->maxRecordBytes, &fs->r, why, sizeof why)) {
        snprintf(err, errlen, "--%s %s: %s", flag, path, why);
        return -1;
    }
    fs->src.name = path;
    fs->src.partition = -1;
    fs->src.finite = 1;
    fs->src.self = fs;
    fs->src.next = file_next;
    fs->src.position = file_position;
    fs->assign_ts = assign_ts;
    return 0;
}

/* ---- output totals (the run summary) ---- */

typedef struct out_total {
    char name[1024];
    int kafka;
    uint64_t records, parts, bytes;
    uint64_t txn_begin, txn_commit, txn_abort;
} out_total;

typedef struct totals {
    out_total t[MAX_TOTALS];
    size_t n;
} totals;

static out_total *total_of(totals *tt, const char *name, int kafka)
{
    for (size_t k = 0; k < tt->n; k++)
        if (tt->t[k].kafka == kafka && !strcmp(tt->t[k].name, name)) return &tt->t[k];
    if (tt->n == MAX_TOTALS) return NULL;
    out_total *o = &tt->t[tt->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->kafka = kafka;
    return o;
}

/* Adds a task's sinks to the totals (before the task is freed). */
static void collect_totals(totals *tt, rt_task *t)
{
    rt_graph *g = rt_task_graph(t);
    for (size_t i = 0; i < rt_graph_op_count(g); i++) {
        rt_op *op = rt_graph_op_at(g, i);
        if (!strcmp(rt_op_name(op), SINK_OP_NAME)) {
            table_sink_stats st = sink_op_stats(op);
            out_total *o = total_of(tt, sink_op_dir(op), 0);
            if (!o) continue;
            o->records += st.records;
            o->parts += st.parts_published;
            o->bytes += st.bytes_published;
        } else if (!strcmp(rt_op_name(op), TOPIC_SINK_OP_NAME)) {
            topic_sink_stats st = topic_sink_op_stats(op);
            out_total *o = total_of(tt, topic_sink_op_topic(op), 1);
            if (!o) continue;
            o->records += st.records;
            o->txn_begin += st.txn_begin;
            o->txn_commit += st.txn_commit;
            o->txn_abort += st.txn_abort;
        }
    }
}

static void print_summary(FILE *out, const char *job, const char *run_id, size_t ntasks,
                          const totals *tt)
{
    fprintf(out, "%s: run %s, %zu task(s)\n", job, run_id, ntasks);
    fprintf(out, "  %-12s %6s %12s  %s\n", "records", "parts", "bytes", "table");
    size_t empty = 0;
    for (size_t k = 0; k < tt->n; k++) {
        const out_total *o = &tt->t[k];
        if (o->kafka) continue;
        if (!o->records) {
            empty++;
            continue;
        }
        fprintf(out, "  %-12" PRIu64 " %6" PRIu64 " %12" PRIu64 "  %s\n", o->records, o->parts,
                o->bytes, o->name);
    }
    if (empty) {
        fprintf(out, "  (no records:");
        for (size_t k = 0; k < tt->n; k++)
            if (!tt->t[k].kafka && !tt->t[k].records) {
                const char *slash = strrchr(tt->t[k].name, '/');
                fprintf(out, " %s", slash ? slash + 1 : tt->t[k].name);
            }
        fprintf(out, ")\n");
    }
    for (size_t k = 0; k < tt->n; k++) {
        const out_total *o = &tt->t[k];
        if (!o->kafka) continue;
        fprintf(out,
                "  kafka %-12" PRIu64 " txn begin=%" PRIu64 " commit=%" PRIu64 " abort=%" PRIu64
                "  %s\n",
                o->records, o->txn_begin, o->txn_commit, o->txn_abort, o->name);
    }
}

/* ---- metric log lines ---- */

/* Logs one line per metric (numRecordsOut, numRecordsOutPerSecond, ...) for the given prefixes,
 * with rates against prev when given. */
static void log_metrics(rt_metrics *m, rt_metrics_snap *prev, rt_metrics_snap *cur, const char *only)
{
    if (rt_metrics_snapshot(m, cur)) {
        memset(cur, 0, sizeof *cur);
        return;
    }
    rt_buf lines;
    rt_buf_init(&lines, 16 << 20);
    if (!rt_metrics_format_lines(cur, prev, only, &lines)) {
        size_t start = 0;
        for (size_t i = 0; i < lines.len; i++)
            if (lines.data[i] == '\n') {
                log_info("metrics", "%.*s", (int)(i - start), (char *)lines.data + start);
                start = i + 1;
            }
    }
    rt_buf_free(&lines);
}

/* The sampler: a snapshot of the metrics every second, so the REST API can give rates (the last
 * two snapshots) without a request paying for them, and the periodic metric log line
 * (--metricsLogInterval) with numRecordsOut and numRecordsOutPerSecond per operator. */
typedef struct sampler {
    rt_metrics *m;
    rt_mem *mem;
    rt_gauge *g_used, *g_limit, *g_peak; /* the memory budget's accounting */
    int64_t log_every_ms; /* 0: no log lines */
    pthread_mutex_t mu;   /* guards prev, cur and stop */
    pthread_cond_t cv;
    rt_metrics_snap prev, cur; /* the last two samples (empty until taken) */
    int stop;
    /* the progress line (--progressInterval) */
    int64_t progress_every_ms;
    uint64_t input_bytes; /* record-file input: the files' total size (0: Kafka) */
    uint64_t last_read;
    int64_t last_progress_ms, started_ms;
} sampler;

#define SAMPLE_MS 1000

static void mem_gauges(sampler *sm)
{
    if (!sm->g_used || !sm->mem) return;
    rt_gauge_set(sm->g_used, rt_mem_used(sm->mem));
    rt_gauge_set(sm->g_limit, rt_mem_limit(sm->mem));
    rt_gauge_set(sm->g_peak, rt_mem_peak(sm->mem));
}

static int64_t mono_ms(void);

/* One progress line: records read (and per second since the last line), the event-time position
 * (the lowest source watermark), what is left (Kafka: pendingRecords; files: bytes) and an ETA. */
static void log_progress(sampler *sm, const rt_metrics_snap *s)
{
    uint64_t read = 0, offset_sum = 0;
    int64_t pending = 0, wm = INT64_MAX;
    int has_pending = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rt_metric_sample *x = &s->samples[i];
        if (!strcmp(x->name, "numRecordsRead")) read += (uint64_t)x->value;
        else if (!strcmp(x->name, "pendingRecords")) pending += x->value, has_pending = 1;
        else if (!strcmp(x->name, "sourceOffset") && x->value > 0) offset_sum += (uint64_t)x->value;
        else if (!strcmp(x->name, "sourceWatermark") && x->value != INT64_MIN && x->value < wm)
            wm = x->value;
    }
    int64_t now = s->taken_ms;
    double dt = (double)(now - sm->last_progress_ms) / 1000.0;
    double rate = dt > 0 ? (double)(read - sm->last_read) / dt : 0;
    sm->last_read = read;
    sm->last_progress_ms = now;
    char when[40] = "-", left[64] = "-", eta[32] = "-";
    if (wm != INT64_MAX) {
        time_t secs = (time_t)(wm / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (has_pending) {
        snprintf(left, sizeof left, "%lld records", (long long)pending);
        if (rate > 0) snprintf(eta, sizeof eta, "%.0fs", (double)pending / rate);
    } else if (sm->input_bytes) {
        double done = (double)offset_sum / (double)sm->input_bytes;
        if (done > 1) done = 1;
        snprintf(left, sizeof left, "%.1f%% of %llu bytes", 100.0 * (1 - done),
                 (unsigned long long)sm->input_bytes);
        double el = (double)(now - sm->started_ms) / 1000.0;
        if (done > 0.001) snprintf(eta, sizeof eta, "%.0fs", el * (1 - done) / done);
    }
    log_info("progress", "records=%llu rate=%.0f/s event_time=%s left=\"%s\" eta=%s",
             (unsigned long long)read, rate, when, left, eta);
}

static void *sampler_main(void *arg)
{
    sampler *sm = arg;
    rt_metrics_snap logged = {0};
    int have_logged = 0;
    int64_t next_log = sm->log_every_ms;
    int64_t since_log = 0, since_progress = 0;
    sm->started_ms = sm->last_progress_ms = mono_ms();
    pthread_mutex_lock(&sm->mu);
    while (!sm->stop) {
        int64_t wait = sm->log_every_ms > 0 && next_log - since_log < SAMPLE_MS
                           ? next_log - since_log
                           : SAMPLE_MS;
        if (sm->progress_every_ms > 0 && sm->progress_every_ms - since_progress < wait)
            wait = sm->progress_every_ms - since_progress;
        if (wait < 1) wait = 1;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait / 1000;
        until.tv_nsec += (wait % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        if (pthread_cond_timedwait(&sm->cv, &sm->mu, &until) != ETIMEDOUT) continue;
        since_log += wait;
        since_progress += wait;
        pthread_mutex_unlock(&sm->mu);
        mem_gauges(sm);
        rt_metrics_snap snap;
        int ok = !rt_metrics_snapshot(sm->m, &snap);
        pthread_mutex_lock(&sm->mu);
        if (ok) {
            rt_metrics_snap_free(&sm->prev);
            sm->prev = sm->cur;
            sm->cur = snap;
            if (sm->progress_every_ms > 0 && since_progress >= sm->progress_every_ms) {
                since_progress = 0;
                log_progress(sm, &sm->cur);
            }
        }
        if (sm->log_every_ms > 0 && since_log >= next_log) {
            since_log = 0;
            pthread_mutex_unlock(&sm->mu);
            rt_metrics_snap now;
            log_metrics(sm->m, have_logged ? &logged : NULL, &now,
                        "numRecordsOut,numInvalid,stateBytes,lastCheckpoint,pendingRecords,memory,"
                        "numTimersFiredEarly,numMemoryPressurePauses,numRecordsDeduped");
            if (have_logged) rt_metrics_snap_free(&logged);
            logged = now;
            have_logged = 1;
            pthread_mutex_lock(&sm->mu);
        }
    }
    pthread_mutex_unlock(&sm->mu);
    if (have_logged) rt_metrics_snap_free(&logged);
    return NULL;
}

static void random_run_id(char out[9])
{
    uint32_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v) v = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    if (fd >= 0) close(fd);
    snprintf(out, 9, "%08" PRIx32, v);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ============================== the driver ============================== */

/* A source of a task being built, and which root it feeds. */
typedef struct tinput {
    rt_source *src;
    int second; /* feeds the job's second input (job_input) */
} tinput;

typedef struct driver driver;

typedef struct dtask {
    driver *d;
    rt_task *t;
    jckpt_ctx *ck;
    rt_source **ksrc; /* Kafka sources (freed with kafka_source_free) */
    size_t nksrc;
    char label[300];
} dtask;

/* A Kafka partition assigned to this process, with its checkpoint loaded at assignment. */
typedef struct apart {
    char topic[256];
    int32_t partition;
} apart;

typedef struct preload {
    char label[300];
    jckpt_ctx *ck;
    jckpt_loaded l;
    int have;
} preload;

struct driver {
    const job_def *def;
    job_common_opts *c;
    void *jopts;
    char run_id[9];
    rt_metrics *metrics;
    rt_mem *mem;
    int checkpointing;
    char ckstore[4096];
    objstore_config oscfg;
    int two;
    job_input in2;
    /* file mode: files[s * ninputs + k] reads input k (the --source files, then the second
     * input's) for key shard s; nfiles = ninputs * nshards */
    file_source *files;
    size_t nfiles, ninputs;
    uint32_t nshards;
    /* Kafka mode */
    int kafka;
    kafka_consumer *kc;
    char topics[2][512];
    size_t ntopics;
    const char *topic_ptrs[2];
    apart *assigned;
    size_t nassigned;
    int assignment_changed;
    preload *pre;
    size_t npre;
    /* tasks of the current generation */
    dtask tasks[MAX_TASKS];
    size_t ntasks;
    size_t tasks_ever;
    totals tot;
    /* pool thread */
    rt_pool *pool;
    pthread_t pool_th;
    int pool_running;
    _Atomic int pool_finished;
    int pool_rc;
    char pool_err[1024];
    /* control */
    jctl *ctl;
    jckpt_savepoint *sp;
    char sp_url[4096];
    /* REST requests, handed from the HTTP threads to the driver thread */
    http_server *http;
    pthread_mutex_t rest_mu;
    pthread_cond_t rest_cv;
    struct rest_req *rest_pending; /* waiting to be taken */
    struct rest_req *rest_active;  /* taken: the next reply goes to it */
    char name[300];
    /* status for the REST API */
    sampler sm;
    char *plan;       /* rt_graph_plan_json of the first task built (guarded by sm.mu) */
    int64_t start_ms; /* wall clock */
    _Atomic int cancel_requested;
    int started_once; /* tasks ran: a later failure is one a restart may cure */
    int sp_then_stop;
    int stop_requested;
    int failed;
    char err[2048];
};

/* ---- inputs: a record file, or Avro tables (backfill) ---- */

static int table_next(rt_source *src, rt_source_record *out, char *err, size_t errlen)
{
    file_source *fs = src->self;
    rt_source *a = avsrc_source(fs->av);
    int r = a->next(a, out, err, errlen);
    src->name = a->name; /* a bad span is named by its part file */
    if (r == RT_SOURCE_RECORD && fs->assign_ts)
        out->ts = fs->assign_ts(out->value, out->value_len, out->ts);
    return r;
}

static int64_t table_position(const rt_source *src)
{
    const file_source *fs = src->self;
    const rt_source *a = avsrc_source(fs->av);
    return a->position(a);
}

/* The table a job reads from an input flag: the counter's --source and content-metrics'
 * --joinedEventSource are joined events, --logUserUserSource the LogUserUser table, every
 * other --source the LogRequest table. */
static avsrc_kind table_kind(const driver *d, const char *flag)
{
    if (!strcmp(flag, "joinedEventSource")) return AVSRC_JOINED_EVENT;
    if (!strcmp(flag, "logUserUserSource")) return AVSRC_LOG_USER_USER;
    if (!strcmp(flag, "source") && !strcmp(d->def->name, "counter")) return AVSRC_JOINED_EVENT;
    return AVSRC_LOG_REQUEST;
}

/* Opens one input of a file-mode run: a directory or s3:// prefix is replayed from its Avro
 * tables (connectors/avro_source.h), anything else is a record file. Returns 0 or -1 with err. */
static int open_input(driver *d, file_source *fs, const char *flag, const char *path,
                      int64_t (*assign_ts)(const uint8_t *, size_t, int64_t), uint32_t shard,
                      uint32_t nshards, char *err, size_t errlen)
{
    if (!avsrc_spec_is_tables(path))
        return file_source_open(fs, flag, path, d->c, assign_ts, shard, nshards, err, errlen);
    memset(fs, 0, sizeof *fs);
    avsrc_config ac = {
        .spec = path, .flag = flag, .kind = table_kind(d, flag), .s3 = &d->oscfg,
        .max_record_bytes = (size_t)d->c->maxRecordBytes, .shard = shard, .nshards = nshards,
    };
    if (avsrc_open(&ac, &fs->av, err, errlen)) return -1;
    fs->src = *avsrc_source(fs->av);
    fs->src.self = fs;
    fs->src.next = table_next;
    fs->src.position = table_position;
    fs->assign_ts = assign_ts;
    log_info(d->def->name, "backfill input=%s flag=%s parts=%zu bytes=%llu shard=%u/%u", path,
             flag, avsrc_parts(fs->av), (unsigned long long)avsrc_total_bytes(fs->av), shard,
             nshards ? nshards : 1);
    return 0;
}

/* Bytes of an input (the progress line's total). */
static uint64_t input_size(const file_source *fs)
{
    return fs->av ? avsrc_total_bytes(fs->av) : fs->r ? recfile_reader_size(fs->r) : 0;
}

/* Continues an input at a checkpoint's next offset (a record file's byte offset, or an Avro
 * source's position figure). Returns 0 or -1. For build_file_tasks' restore. */
static int input_seek(file_source *fs, int64_t offset)
{
    char err[1024];
    if (fs->av) {
        if (avsrc_seek(fs->av, offset, err, sizeof err) == 0) return 0;
        log_error("backfill", "%s", err);
        return -1;
    }
    return recfile_reader_seek(fs->r, (uint64_t)offset);
}

static void input_close(file_source *fs)
{
    recfile_reader_close(fs->r);
    avsrc_free(fs->av);
    fs->r = NULL;
    fs->av = NULL;
}

static int dfail(driver *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int dfail(driver *d, const char *fmt, ...)
{
    if (!d->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, sizeof d->err, fmt, ap);
        va_end(ap);
        d->failed = 1;
    }
    return -1;
}

static void task_label_kafka(const char *topic, int32_t partition, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.200s-%" PRId32, topic, partition);
}

/* Loads a task's checkpoint (the savepoint's, or the newest in the store). Returns 1, 0 or -1. */
static int load_for(driver *d, jckpt_ctx *ck, const char *label, jckpt_loaded *l)
{
    char err[1500];
    jckpt_loaded latest;
    int r = jckpt_load_latest(ck, &latest, err, sizeof err);
    if (r < 0) return dfail(d, "%s", err);
    /* a restarted worker resumes from its newest checkpoint, not from the savepoint again */
    if (!d->c->fromSavepoint || (job_restart_count() > 0 && r == 1)) {
        *l = latest;
        return r;
    }
    if (r == 1) jckpt_loaded_free(&latest);
    r = jckpt_load_savepoint(d->c->fromSavepoint, &d->oscfg, label, l, err, sizeof err);
    if (r < 0) return dfail(d, "%s", err);
    if (r == 1) {
        /* continue ids after both the savepoint's and whatever the store already holds */
        (void)0;
    }
    return r;
}

/* Creates the checkpoint context of a task and loads its checkpoint. */
static int open_ckpt(driver *d, const char *label, jckpt_ctx **ck, jckpt_loaded *l, int *have)
{
    *ck = NULL;
    *have = 0;
    memset(l, 0, sizeof *l);
    if (!d->checkpointing) return 0;
    char err[1500];
    if (jckpt_ctx_new(d->ckstore, &d->oscfg, d->def->name, d->run_id, label, ck, err, sizeof err))
        return dfail(d, "%s", err);
    int r = load_for(d, *ck, label, l);
    if (r < 0) {
        jckpt_ctx_free(*ck);
        *ck = NULL;
        return -1;
    }
    *have = r;
    if (r == 1) {
        log_info(d->def->name, "restoring task=%s from=%s checkpoint=%" PRId64 " run=%s%s", label,
                 l->from, l->h.id, l->h.run_id, l->h.flags & CKPT_FINAL ? " final=true" : "");
    }
    return 0;
}

/* The checkpoint hook of a task: the checkpoint, then (Kafka input) the checkpointed offsets are
 * committed to the consumer group, as Flink's Kafka source does on checkpoint completion: for lag
 * monitoring, and the start point of a run without checkpoints (restores use checkpoints). */
static int task_hook(rt_task *t, void *arg, int final, char *err, size_t errlen)
{
    dtask *dt = arg;
    if (jckpt_hook(t, dt->ck, final, err, errlen)) return -1;
    if (!dt->d->kc) return 0;
    for (size_t i = 0; i < dt->nksrc; i++) {
        rt_source *src = rt_task_source_at(t, i);
        int64_t next = rt_task_source_position(t, i);
        if (src && next >= 0) (void)kafka_consumer_commit(dt->d->kc, src->name, src->partition, next);
    }
    return 0;
}

/* Builds, opens and restores one task over inputs (already positioned). Takes ck and l. */
static int build_task(driver *d, const char *label, const tinput *in, size_t nin, jckpt_ctx *ck,
                      jckpt_loaded *l, int have, rt_source **ksrc, size_t nksrc)
{
    if (d->ntasks == MAX_TASKS) {
        jckpt_ctx_free(ck);
        if (have) jckpt_loaded_free(l);
        return dfail(d, "over the limit of %d tasks in one process", MAX_TASKS);
    }
    dtask *dt = &d->tasks[d->ntasks];
    memset(dt, 0, sizeof *dt);
    snprintf(dt->label, sizeof dt->label, "%s", label);
    dt->ck = ck;
    dt->ksrc = ksrc;
    dt->nksrc = nksrc;
    char err[2048];
    const char *run_id = have ? l->h.run_id : d->run_id;
    job_common_opts *c = d->c;
    rt_task_config tc = {
        .label = label,
        .metrics = d->metrics,
        .mem = d->mem,
        .wm = {.max_out_of_orderness = c->maxLogRequestOutOfOrderness},
        /* the watermark follows every record (spec flat-output §8.1): outputs do not depend on
         * how records are batched */
        .watermark_every = 1,
        .no_drain = !c->drain,
        .pressure_wait_ms = c->memoryPressureWait,
    };
    if (c->procAndEventWatermarkGenerator) {
        tc.wm.idleness = c->watermarkIdleness;
        tc.wm.idle_trailing = c->watermarkIdlenessProcessingTimeTrailingDuration;
    }
    int rc = -1;
    if (rt_task_new(&tc, &dt->t, err, sizeof err)) {
        dfail(d, "%s", err);
        goto out;
    }
    d->ntasks++;
    d->tasks_ever++;
    dt->d = d;
    if (d->checkpointing) {
        rt_task_set_checkpointing(dt->t, c->checkpointInterval, task_hook, dt);
        rt_task_set_checkpoint_policy(dt->t, c->minPauseBetweenCheckpoints,
                                      c->tolerableCheckpointFailureNumber);
    }
    rt_op *root;
    if (d->def->build(rt_task_graph(dt->t), c, d->jopts, run_id, label, &root, err, sizeof err)) {
        dfail(d, "%s", err);
        goto out;
    }
    rt_op *root2 = d->two ? rt_graph_find(rt_task_graph(dt->t), d->in2.root_uid) : NULL;
    rt_wmgen_config wm2 = {.max_out_of_orderness = d->two ? d->in2.max_out_of_orderness : 0};
    for (size_t k = 0; k < nin; k++) {
        if (in[k].second && !root2) {
            dfail(d, "no operator %s for --%s", d->in2.root_uid, d->in2.flag);
            goto out;
        }
        if (rt_task_add_source(dt->t, in[k].src, in[k].second ? &wm2 : &tc.wm,
                               in[k].second ? root2 : root, 0, err, sizeof err)) {
            dfail(d, "%s", err);
            goto out;
        }
    }
    if (rt_task_open(dt->t, err, sizeof err)) {
        dfail(d, "%s", err);
        goto out;
    }
    if (!d->plan) { /* every task has the same graph: its plan is the job's */
        rt_buf pb;
        rt_buf_init(&pb, 4 << 20);
        if (!rt_graph_plan_json(rt_task_graph(dt->t), &pb) && !rt_buf_put_u8(&pb, 0)) {
            pthread_mutex_lock(&d->sm.mu);
            d->plan = strdup((const char *)pb.data);
            pthread_mutex_unlock(&d->sm.mu);
        }
        rt_buf_free(&pb);
    }
    if (have) {
        if (rt_task_restore(dt->t, l->state, l->state_len, err, sizeof err)) {
            dfail(d, "restoring task %s from %s: %s", label, l->from, err);
            goto out;
        }
        jckpt_set_next_id(ck, l->h.id + 1 > 1 ? l->h.id + 1 : 1);
        if (l->h.flags & CKPT_FINAL) rt_task_mark_done(dt->t);
    }
    rc = 0;
out:
    if (have) jckpt_loaded_free(l);
    return rc;
}

static void free_tasks(driver *d)
{
    for (size_t i = 0; i < d->ntasks; i++) {
        dtask *dt = &d->tasks[i];
        if (dt->t) collect_totals(&d->tot, dt->t);
        rt_task_free(dt->t);
        for (size_t k = 0; k < dt->nksrc; k++) kafka_source_free(dt->ksrc[k]);
        free(dt->ksrc);
        jckpt_ctx_free(dt->ck);
    }
    d->ntasks = 0;
}

/* ---- the pool thread ---- */

static void *pool_main(void *arg)
{
    driver *d = arg;
    d->pool_rc = rt_pool_run(d->pool, d->pool_err, sizeof d->pool_err);
    atomic_store(&d->pool_finished, 1);
    return NULL;
}

static int start_pool(driver *d)
{
    int threads = (int)(d->c->parallelism < (int64_t)d->ntasks ? d->c->parallelism
                                                               : (int64_t)d->ntasks);
    if (threads < 1) threads = 1;
    if (rt_pool_new(threads, &d->pool)) return dfail(d, "out of memory");
    for (size_t i = 0; i < d->ntasks; i++)
        if (rt_pool_add(d->pool, d->tasks[i].t)) return dfail(d, "out of memory");
    atomic_store(&d->pool_finished, 0);
    if (pthread_create(&d->pool_th, NULL, pool_main, d)) return dfail(d, "cannot start the pool");
    d->pool_running = 1;
    d->started_once = 1;
    log_info(d->def->name, "run=%s tasks=%zu threads=%d", d->run_id, d->ntasks, threads);
    return 0;
}

/* Joins the pool thread (after its tasks are done or asked to stop). */
static int join_pool(driver *d)
{
    if (!d->pool_running) return 0;
    pthread_join(d->pool_th, NULL);
    d->pool_running = 0;
    rt_pool_free(d->pool);
    d->pool = NULL;
    if (d->pool_rc) return dfail(d, "%s", d->pool_err);
    return 0;
}

static void stop_pool(driver *d, int drain)
{
    if (d->pool_running) rt_pool_request_stop(d->pool, drain);
}

/* ---- file mode ---- */

static int build_file_tasks(driver *d)
{
    job_common_opts *c = d->c;
    size_t ntasks = d->two ? 1 : c->source.n * d->nshards;
    for (size_t i = 0; i < ntasks; i++) {
        /* task i reads file i % n, key shard i / n; one shard keeps the plain file index */
        char label[48];
        size_t file = d->two ? 0 : i % c->source.n, shard = d->two ? 0 : i / c->source.n;
        if (d->nshards > 1) snprintf(label, sizeof label, "%zus%zu", file, shard);
        else snprintf(label, sizeof label, "%zu", i);
        tinput in[MAX_TASKS];
        size_t nin = 0;
        if (d->two) {
            for (size_t k = 0; k < d->nfiles; k++)
                in[nin++] = (tinput){&d->files[k].src, k >= c->source.n};
        } else {
            in[nin++] = (tinput){&d->files[shard * d->ninputs + file].src, 0};
        }
        jckpt_ctx *ck;
        jckpt_loaded l;
        int have;
        if (open_ckpt(d, label, &ck, &l, &have)) return -1;
        if (have) {
            /* seek each file to the first record the checkpoint has not processed */
            rt_task_source_pos pos[MAX_TASKS];
            size_t npos;
            char err[1024];
            if (rt_task_snapshot_sources(l.state, l.state_len, pos, MAX_TASKS, &npos, err,
                                         sizeof err) ||
                npos != nin) {
                jckpt_loaded_free(&l);
                jckpt_ctx_free(ck);
                return dfail(d, "task %s: checkpoint %s: %s", label, l.from,
                             npos != nin ? "a different number of inputs" : err);
            }
            for (size_t k = 0; k < nin; k++) {
                file_source *fs = in[k].src->self;
                if (strcmp(pos[k].name, in[k].src->name))
                    log_warn(d->def->name,
                             "task %s: the checkpoint read %s as input %zu, this run reads %s",
                             label, pos[k].name, k, in[k].src->name);
                if (pos[k].next_offset >= 0 &&
                    input_seek(fs, pos[k].next_offset)) {
                    jckpt_loaded_free(&l);
                    jckpt_ctx_free(ck);
                    return dfail(d, "task %s: cannot seek %s to offset %" PRId64, label,
                                 in[k].src->name, pos[k].next_offset);
                }
            }
        }
        if (build_task(d, label, in, nin, ck, &l, have, NULL, 0)) return -1;
    }
    return 0;
}

/* ---- Kafka mode ---- */

static preload *find_pre(driver *d, const char *label)
{
    for (size_t i = 0; i < d->npre; i++)
        if (!strcmp(d->pre[i].label, label)) return &d->pre[i];
    return NULL;
}

static preload *add_pre(driver *d, const char *label)
{
    preload *p = find_pre(d, label);
    if (p) return p;
    preload *n = realloc(d->pre, (d->npre + 1) * sizeof *n);
    if (!n) return NULL;
    d->pre = n;
    p = &d->pre[d->npre];
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    if (open_ckpt(d, label, &p->ck, &p->l, &p->have)) return NULL;
    d->npre++;
    return p;
}

static void drop_pre(driver *d, preload *p)
{
    size_t i = (size_t)(p - d->pre);
    d->pre[i] = d->pre[--d->npre];
}

static void free_pres(driver *d)
{
    for (size_t i = 0; i < d->npre; i++) {
        if (d->pre[i].have) jckpt_loaded_free(&d->pre[i].l);
        jckpt_ctx_free(d->pre[i].ck);
    }
    free(d->pre);
    d->pre = NULL;
    d->npre = 0;
}

/* The label of the task that reads (topic, partition). */
static void label_of(driver *d, const char *topic, int32_t partition, char *buf, size_t cap)
{
    if (d->def->one_task) snprintf(buf, cap, "all");
    else task_label_kafka(topic, partition, buf, cap);
}

static int64_t cb_start_offset(void *arg, const char *topic, int32_t partition)
{
    driver *d = arg;
    char label[300];
    label_of(d, topic, partition, label, sizeof label);
    preload *p = add_pre(d, label);
    if (!p || !p->have) return -1;
    rt_task_source_pos pos[MAX_TASKS];
    size_t npos;
    char err[512];
    if (rt_task_snapshot_sources(p->l.state, p->l.state_len, pos, MAX_TASKS, &npos, err,
                                 sizeof err))
        return -1;
    for (size_t i = 0; i < npos; i++)
        if (pos[i].partition == partition && !strcmp(pos[i].name, topic)) return pos[i].next_offset;
    return -1;
}

static void cb_assigned(void *arg, const char *topic, int32_t partition)
{
    driver *d = arg;
    apart *n = realloc(d->assigned, (d->nassigned + 1) * sizeof *n);
    if (!n) {
        dfail(d, "out of memory");
        return;
    }
    d->assigned = n;
    snprintf(n[d->nassigned].topic, sizeof n[d->nassigned].topic, "%s", topic);
    n[d->nassigned].partition = partition;
    d->nassigned++;
    d->assignment_changed = 1;
    log_info(d->def->name, "assigned topic=%s partition=%" PRId32, topic, partition);
}

static void cb_revoked(void *arg, const char *topic, int32_t partition)
{
    driver *d = arg;
    /* the whole generation stops (each task writes a checkpoint); the next assignment restores
     * every task from the store, wherever its partition went */
    if (d->pool_running) {
        log_info(d->def->name, "rebalance: stopping %zu task(s)", d->ntasks);
        stop_pool(d, 0);
        join_pool(d);
    }
    free_tasks(d);
    free_pres(d);
    for (size_t i = 0; i < d->nassigned; i++)
        if (d->assigned[i].partition == partition && !strcmp(d->assigned[i].topic, topic)) {
            d->assigned[i] = d->assigned[--d->nassigned];
            break;
        }
    d->assignment_changed = 1;
    log_info(d->def->name, "revoked topic=%s partition=%" PRId32, topic, partition);
}

static int cmp_apart(const void *a, const void *b)
{
    const apart *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Builds the tasks of the current assignment. */
static int build_kafka_tasks(driver *d)
{
    qsort(d->assigned, d->nassigned, sizeof *d->assigned, cmp_apart);
    size_t ngroups = d->def->one_task ? 1 : d->nassigned;
    for (size_t g = 0; g < ngroups; g++) {
        size_t from = d->def->one_task ? 0 : g, to = d->def->one_task ? d->nassigned : g + 1;
        char label[300];
        label_of(d, d->assigned[from].topic, d->assigned[from].partition, label, sizeof label);
        rt_source **ks = calloc(to - from, sizeof *ks);
        tinput *in = calloc(to - from, sizeof *in);
        if (!ks || !in) {
            free(ks);
            free(in);
            return dfail(d, "out of memory");
        }
        size_t nin = 0;
        /* the main topic's partitions first, then the second input's */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = from; i < to; i++) {
                int second = d->ntopics > 1 && !strcmp(d->assigned[i].topic, d->topics[1]);
                if (second != pass) continue;
                char err[1024];
                if (kafka_source_new(d->kc, d->assigned[i].topic, d->assigned[i].partition,
                                     &ks[nin], err, sizeof err)) {
                    for (size_t k = 0; k < nin; k++) kafka_source_free(ks[k]);
                    free(ks);
                    free(in);
                    return dfail(d, "%s", err);
                }
                if (!ks[nin]->position) ks[nin]->position = kafka_source_position;
                in[nin] = (tinput){ks[nin], second};
                nin++;
            }
        preload *p = add_pre(d, label);
        if (!p) {
            for (size_t k = 0; k < nin; k++) kafka_source_free(ks[k]);
            free(ks);
            free(in);
            return dfail(d, "task %s: loading its checkpoint failed", label);
        }
        jckpt_ctx *ck = p->ck;
        jckpt_loaded l = p->l;
        int have = p->have;
        drop_pre(d, p);
        int rc = build_task(d, label, in, nin, ck, &l, have, ks, nin);
        free(in);
        if (rc) {
            if (d->ntasks == 0 || d->tasks[d->ntasks - 1].ksrc != ks) {
                for (size_t k = 0; k < nin; k++) kafka_source_free(ks[k]);
                free(ks);
            }
            return -1;
        }
    }
    return 0;
}

/* Every partition of the main topic has a final checkpoint in the store (a bounded input that
 * the processes of the group have finished between them). */
static int all_partitions_final(driver *d)
{
    kafka_client_config cc = {.bootstrap = d->c->bootstrapServers,
                              .security_protocol = d->c->kafkaSecurityProtocol};
    int32_t n;
    char err[1024];
    if (kafka_topic_partitions(&cc, d->topics[0], &n, err, sizeof err)) return 0;
    for (int32_t p = 0; p < n; p++) {
        char label[300];
        label_of(d, d->topics[0], p, label, sizeof label);
        jckpt_ctx *ck;
        if (jckpt_ctx_new(d->ckstore, &d->oscfg, d->def->name, d->run_id, label, &ck, err,
                          sizeof err))
            return 0;
        jckpt_loaded l;
        int r = jckpt_load_latest(ck, &l, err, sizeof err);
        int final = r == 1 && (l.h.flags & CKPT_FINAL);
        if (r == 1) jckpt_loaded_free(&l);
        jckpt_ctx_free(ck);
        if (!final) return 0;
    }
    return 1;
}

/* The Kafka topic a root operator reads: its uid without --kafkaSourceUidPrefix. */
static int topic_of_uid(driver *d, const char *uid, char *buf, size_t cap)
{
    size_t n = strlen(d->c->kafkaSourceUidPrefix);
    if (strncmp(uid, d->c->kafkaSourceUidPrefix, n)) return -1;
    snprintf(buf, cap, "%s", uid + n);
    return 0;
}

/* Finds the input topics by building one throwaway graph. */
static int probe_topics(driver *d)
{
    rt_graph *g;
    if (rt_graph_new(NULL, &g)) return dfail(d, "out of memory");
    rt_op *root;
    char err[2048];
    int rc = d->def->build(g, d->c, d->jopts, d->run_id, "probe", &root, err, sizeof err);
    if (rc) {
        rt_graph_free(g);
        return dfail(d, "%s", err);
    }
    if (topic_of_uid(d, rt_op_uid(root), d->topics[0], sizeof d->topics[0])) {
        rt_graph_free(g);
        return dfail(d, "source operator %s does not start with --kafkaSourceUidPrefix %s",
                     rt_op_uid(root), d->c->kafkaSourceUidPrefix);
    }
    d->ntopics = 1;
    if (d->two && d->def->one_task && rt_graph_find(g, d->in2.root_uid) &&
        !topic_of_uid(d, d->in2.root_uid, d->topics[1], sizeof d->topics[1]))
        d->ntopics = 2;
    rt_graph_free(g);
    d->topic_ptrs[0] = d->topics[0];
    d->topic_ptrs[1] = d->topics[1];
    return 0;
}

static int open_kafka(driver *d)
{
    if (probe_topics(d)) return -1;
    job_common_opts *c = d->c;
    char group[512];
    job_label_prefix(c->jobLabel, d->def->kafka_group ? d->def->kafka_group : d->def->name, group,
                     sizeof group);
    static const char *no_props[1];
    kafka_consumer_config kc = {
        .client = {.bootstrap = c->bootstrapServers, .security_protocol = c->kafkaSecurityProtocol,
                   .props = c->kafkaProperty.n ? (const char *const *)c->kafkaProperty.items
                                               : no_props,
                   .nprops = c->kafkaProperty.n},
        .group_id = group,
        .topics = d->topic_ptrs,
        .ntopics = d->ntopics,
        .use_group = c->kafkaGroup && !d->def->one_task,
        .start = c->startFromTimestamp > 0 ? KAFKA_START_TIMESTAMP
                 : c->startFromEarliest    ? KAFKA_START_EARLIEST
                                           : KAFKA_START_COMMITTED,
        .start_ts = c->startFromTimestamp,
        .end_ts = c->endAtTimestamp,
        .stop_at_end = c->endAtLatest,
        .max_record_bytes = (size_t)c->maxRecordBytes,
        /* under --memoryLimit, Kafka's prefetch (outside the budget) is kept to 1/32 of it per
         * partition, between 1 and 64 MiB (docs/RELIABILITY.md, "Memory budget") */
        .fetch_queue_bytes = c->memoryLimit > 0
                                 ? (c->memoryLimit / 32 < (1 << 20)   ? (1 << 20)
                                    : c->memoryLimit / 32 > (64 << 20) ? (64 << 20)
                                                                       : c->memoryLimit / 32)
                                 : 0,
    };
    kafka_rebalance_cb cb = {cb_start_offset, cb_assigned, cb_revoked, d};
    char err[1024];
    log_info(d->def->name, "kafka bootstrap=%s group=%s topics=%s%s%s mode=%s", c->bootstrapServers,
             group, d->topics[0], d->ntopics > 1 ? "," : "", d->ntopics > 1 ? d->topics[1] : "",
             kc.use_group ? "group" : "assign");
    if (kafka_consumer_new(&kc, &cb, &d->kc, err, sizeof err)) return dfail(d, "%s", err);
    return d->failed ? -1 : 0;
}

/* ---- control requests ---- */

/* ---- REST API (issue 6 will grow it: status page, more of Flink's endpoints) ---- */

typedef struct rest_req {
    jctl_kind kind;
    char url[4096];
    int done, ok;
    char result[4200];
} rest_req;

/* Answers the request being served: a REST caller waiting on rest_cv, or the control file. */
static void reply(driver *d, int ok, const char *text)
{
    pthread_mutex_lock(&d->rest_mu);
    rest_req *r = d->rest_active;
    if (r) {
        r->ok = ok;
        snprintf(r->result, sizeof r->result, "%s", text);
        r->done = 1;
        d->rest_active = NULL;
        pthread_cond_broadcast(&d->rest_cv);
    }
    pthread_mutex_unlock(&d->rest_mu);
    if (!r && d->ctl) jctl_reply(d->ctl, ok, text);
}

/* Hands a request to the driver and waits for its reply (savepoints take seconds). */
static int rest_call(driver *d, jctl_kind kind, const char *url, rest_req *r)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    snprintf(r->url, sizeof r->url, "%s", url ? url : "");
    pthread_mutex_lock(&d->rest_mu);
    while (d->rest_pending) pthread_cond_wait(&d->rest_cv, &d->rest_mu);
    d->rest_pending = r;
    while (!r->done) pthread_cond_wait(&d->rest_cv, &d->rest_mu);
    pthread_mutex_unlock(&d->rest_mu);
    return r->ok ? 0 : -1;
}

static void json_str(rt_buf *b, const char *s)
{
    rt_buf_append(b, "\"", 1);
    for (; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\', esc[1] = *s;
            rt_buf_append(b, esc, 2);
        } else if ((unsigned char)*s < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)*s);
            rt_buf_append(b, esc, 6);
        } else {
            rt_buf_append(b, s, 1);
        }
    }
    rt_buf_append(b, "\"", 1);
}

static void body_text(http_response *resp, int status, const char *text)
{
    resp->status = status;
    rt_buf_append(&resp->body, text, strlen(text));
}

/* A string member of a small JSON object body ("" when absent or not a string). */
static void json_member(const char *body, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    json_error_t je;
    json_t *j = body && *body ? json_loads(body, 0, &je) : NULL;
    json_t *v = j ? json_object_get(j, name) : NULL;
    if (json_is_string(v)) snprintf(out, cap, "%s", json_string_value(v));
    json_decref(j);
}

static int json_bool_member(const char *body, const char *name)
{
    json_error_t je;
    json_t *j = body && *body ? json_loads(body, 0, &je) : NULL;
    int v = j && json_is_true(json_object_get(j, name));
    json_decref(j);
    return v;
}

/* GET /jobs/<id>/metrics[?get=a,b]: Flink's job metrics: each named metric summed over its
 * operators and tasks, as [{"id": name, "value": "n"}]; without get, the names. */
static void rest_job_metrics(driver *d, const char *query, http_response *resp)
{
    rt_metrics_snap snap;
    if (rt_metrics_snapshot(d->metrics, &snap)) {
        body_text(resp, 500, "{\"errors\":[\"out of memory\"]}\n");
        return;
    }
    const char *get = NULL;
    for (const char *q = query; q && *q;) {
        if (!strncmp(q, "get=", 4)) get = q + 4;
        const char *amp = strchr(q, '&');
        q = amp ? amp + 1 : NULL;
    }
    body_text(resp, 200, "[");
    int first = 1;
    if (get) {
        for (const char *n = get; *n;) {
            size_t len = strcspn(n, ",&");
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(len < 127 ? len : 127), n);
            int64_t sum = 0, seen = 0;
            for (size_t i = 0; i < snap.n; i++)
                if (!strcmp(snap.samples[i].name, name)) sum += snap.samples[i].value, seen = 1;
            if (seen) {
                char v[48];
                body_text(resp, 200, first ? "{\"id\":" : ",{\"id\":");
                json_str(&resp->body, name);
                snprintf(v, sizeof v, ",\"value\":\"%lld\"}", (long long)sum);
                body_text(resp, 200, v);
                first = 0;
            }
            n += len;
            if (*n != ',') break;
            n++;
        }
    } else {
        for (size_t i = 0; i < snap.n; i++) {
            int dup = 0;
            for (size_t k = 0; k < i && !dup; k++) dup = !strcmp(snap.samples[k].name, snap.samples[i].name);
            if (dup) continue;
            body_text(resp, 200, first ? "{\"id\":" : ",{\"id\":");
            json_str(&resp->body, snap.samples[i].name);
            body_text(resp, 200, "}");
            first = 0;
        }
    }
    body_text(resp, 200, "]\n");
    rt_metrics_snap_free(&snap);
}

static const char *job_state(driver *d)
{
    if (atomic_load(&d->cancel_requested)) return "CANCELLING";
    return d->stop_requested ? "STOPPING" : "RUNNING";
}

/* The job's status documents (ops/status.h): status, plan or checkpoints. The plan and the
 * sampler's last two snapshots are read under the sampler's lock. */
static void rest_status(driver *d, const char *what, http_response *resp)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rt_metrics_snap snap;
    mem_gauges(&d->sm);
    if (rt_metrics_snapshot(d->metrics, &snap)) {
        body_text(resp, 500, "{\"errors\":[\"out of memory\"]}\n");
        return;
    }
    ops_job_info ji = {.id = d->name,
                       .job = d->def->name,
                       .run_id = d->run_id,
                       .state = job_state(d),
                       .start_time_ms = d->start_ms,
                       .now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                       .checkpoint_store = d->checkpointing ? d->ckstore : ""};
    pthread_mutex_lock(&d->sm.mu);
    ji.plan_json = d->plan;
    int rc;
    if (!strcmp(what, "plan")) {
        rc = ops_plan_json(&ji, &resp->body);
    } else if (!strcmp(what, "checkpoints")) {
        rc = ops_checkpoints_json(&ji, &snap, &resp->body);
    } else {
        /* fresh values; rates since the sampler's last sample, or the one before when the
         * last is too recent to give a steady rate */
        const rt_metrics_snap *base = NULL;
        if (d->sm.cur.n && snap.taken_ms - d->sm.cur.taken_ms >= SAMPLE_MS / 4) base = &d->sm.cur;
        else if (d->sm.prev.n) base = &d->sm.prev;
        rc = ops_status_json(&ji, &snap, base, &resp->body);
    }
    pthread_mutex_unlock(&d->sm.mu);
    rt_metrics_snap_free(&snap);
    if (rc) {
        resp->body.len = 0;
        body_text(resp, 500, "{\"errors\":[\"status: out of memory or over the response limit\"]}\n");
    }
}

static void rest_handler(void *arg, const char *method, const char *path, const char *query,
                         const char *body, size_t len, http_response *resp)
{
    (void)len;
    driver *d = arg;
    char prefix[400];
    snprintf(prefix, sizeof prefix, "/jobs/%s", d->name);
    if (!strcmp(method, "PUT") || (!strcmp(method, "PATCH") && strcmp(path, prefix))) {
        body_text(resp, 405, "{\"errors\":[\"method not allowed\"]}\n");
        return;
    }
    if (!strcmp(path, "/healthz")) {
        resp->content_type = "text/plain";
        body_text(resp, 200, "ok\n");
        return;
    }
    if ((!strcmp(path, "/") || !strcmp(path, "/index.html")) && strcmp(method, "POST")) {
        resp->content_type = "text/html; charset=utf-8";
        rt_buf_append(&resp->body, ops_status_page, ops_status_page_len);
        return;
    }
    if (!strcmp(path, "/metrics") && strcmp(method, "POST")) {
        rt_metrics_snap snap;
        resp->content_type = "text/plain; version=0.0.4";
        mem_gauges(&d->sm);
        if (rt_metrics_snapshot(d->metrics, &snap)) {
            body_text(resp, 500, "metrics: out of memory\n");
            return;
        }
        int rc = rt_metrics_format_prometheus(&snap, &resp->body);
        pthread_mutex_lock(&d->sm.mu);
        if (!rc && d->sm.prev.n)
            rc = rt_metrics_format_prometheus_rates(&d->sm.cur, &d->sm.prev, &resp->body);
        pthread_mutex_unlock(&d->sm.mu);
        if (rc) resp->status = 500;
        rt_metrics_snap_free(&snap);
        return;
    }
    if (!strcmp(path, "/jobs") && strcmp(method, "POST")) {
        body_text(resp, 200, "{\"jobs\":[{\"id\":");
        json_str(&resp->body, d->name);
        body_text(resp, 200, ",\"status\":");
        json_str(&resp->body, job_state(d));
        body_text(resp, 200, "}]}\n");
        return;
    }
    if (!strcmp(path, prefix) && !strcmp(method, "PATCH")) {
        /* Flink's cancel: PATCH /jobs/<id>?mode=cancel. The driver ends the process at once,
         * like SIGKILL: nothing after the last checkpoint is published. */
        if (*query && strcmp(query, "mode=cancel")) {
            body_text(resp, 400, "{\"errors\":[\"mode: only cancel is supported\"]}\n");
            return;
        }
        atomic_store(&d->cancel_requested, 1);
        body_text(resp, 202, "{}\n");
        return;
    }
    if (!strcmp(path, prefix) && strcmp(method, "POST")) {
        body_text(resp, 200, "{\"jid\":");
        json_str(&resp->body, d->name);
        body_text(resp, 200, ",\"name\":");
        json_str(&resp->body, d->def->name);
        body_text(resp, 200, ",\"state\":");
        json_str(&resp->body, job_state(d));
        body_text(resp, 200, ",\"run\":");
        json_str(&resp->body, d->run_id);
        body_text(resp, 200, ",\"checkpointStore\":");
        json_str(&resp->body, d->checkpointing ? d->ckstore : "");
        body_text(resp, 200, "}\n");
        return;
    }
    size_t n = strlen(prefix);
    if (!strncmp(path, prefix, n) && !strcmp(path + n, "/metrics") && strcmp(method, "POST")) {
        rest_job_metrics(d, query, resp);
        return;
    }
    if (!strncmp(path, prefix, n) && strcmp(method, "POST") &&
        (!strcmp(path + n, "/status") || !strcmp(path + n, "/plan") ||
         !strcmp(path + n, "/checkpoints"))) {
        rest_status(d, path + n + 1, resp);
        return;
    }
    if (!strncmp(path, prefix, n) && !strcmp(method, "POST")) {
        const char *rest = path + n;
        char target[4096];
        rest_req r;
        if (!strcmp(rest, "/savepoints")) {
            json_member(body, "target-directory", target, sizeof target);
            int rc = rest_call(d, JCTL_SAVEPOINT, target, &r);
            resp->status = rc ? 500 : 200;
            body_text(resp, resp->status, rc ? "{\"status\":\"FAILED\",\"error\":"
                                             : "{\"status\":\"COMPLETED\",\"location\":");
            json_str(&resp->body, r.result);
            body_text(resp, resp->status, "}\n");
            return;
        }
        if (!strcmp(rest, "/stop")) {
            json_member(body, "targetDirectory", target, sizeof target);
            int drain = json_bool_member(body, "drain");
            /* a savepoint is taken when a directory is named, or asked for ("savepoint": true,
             * to the job's default place) */
            int sp = target[0] || json_bool_member(body, "savepoint");
            jctl_kind k = sp ? JCTL_STOP_SAVEPOINT : drain ? JCTL_STOP_DRAIN : JCTL_STOP;
            int rc = rest_call(d, k, target, &r);
            resp->status = rc ? 500 : 202;
            body_text(resp, resp->status, rc ? "{\"status\":\"FAILED\",\"error\":"
                                             : "{\"status\":\"STOPPING\",\"detail\":");
            json_str(&resp->body, r.result);
            body_text(resp, resp->status, "}\n");
            return;
        }
    }
    body_text(resp, 404, "{\"errors\":[\"not found\"]}\n");
}

/* At the end: REST callers still waiting get an answer, then the server stops. */
static void http_server_stop_answering(driver *d)
{
    pthread_mutex_lock(&d->rest_mu);
    rest_req *rs[2] = {d->rest_pending, d->rest_active};
    for (int i = 0; i < 2; i++)
        if (rs[i] && !rs[i]->done) {
            rs[i]->ok = 0;
            snprintf(rs[i]->result, sizeof rs[i]->result, "the job ended");
            rs[i]->done = 1;
        }
    d->rest_pending = d->rest_active = NULL;
    pthread_cond_broadcast(&d->rest_cv);
    pthread_mutex_unlock(&d->rest_mu);
    http_server_stop(d->http);
    d->http = NULL;
}

static void begin_savepoint(driver *d, const char *url, int then_stop)
{
    char err[1024];
    if (!url || !*url) {
        /* the default: --savepointDir, else <output root>/savepoints/<job>, one per request */
        char name[300];
        job_label_prefix(d->c->jobLabel, d->def->name, name, sizeof name);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (d->c->savepointDir)
            snprintf(d->sp_url, sizeof d->sp_url, "%s/savepoint-%lld", d->c->savepointDir,
                     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        else
            snprintf(d->sp_url, sizeof d->sp_url, "%s/savepoints/%s/savepoint-%lld",
                     job_output_root(d->c), name, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    } else {
        snprintf(d->sp_url, sizeof d->sp_url, "%s", url);
    }
    url = d->sp_url;
    if (!d->checkpointing) {
        reply(d, 0, "savepoints need checkpoints (Kafka input or --checkpointDir)");
        return;
    }
    if (d->sp) {
        reply(d, 0, "a savepoint is already in progress");
        return;
    }
    jckpt_ctx *ctxs[MAX_TASKS];
    rt_task *ts[MAX_TASKS];
    size_t n = 0;
    for (size_t i = 0; i < d->ntasks; i++) {
        rt_task_info info;
        rt_task_info_get(d->tasks[i].t, &info);
        if (info.done) continue;
        ctxs[n] = d->tasks[i].ck;
        ts[n++] = d->tasks[i].t;
    }
    d->sp = jckpt_request_savepoint(url, &d->oscfg, ctxs, ts, n, then_stop, err, sizeof err);
    if (!d->sp) {
        reply(d, 0, err);
        return;
    }
    d->sp_then_stop = then_stop;
    log_info(d->def->name, "savepoint requested to=%s tasks=%zu%s", url, n, then_stop ? " then=stop" : "");
}

static void poll_savepoint(driver *d)
{
    if (!d->sp) return;
    char err[2600];
    int r = jckpt_savepoint_done(d->sp, err, sizeof err);
    if (r == 0) return;
    const char *url = NULL;
    if (r > 0) {
        reply(d, 1, d->sp_url);
        log_info(d->def->name, "savepoint completed path=%s", d->sp_url);
    } else {
        reply(d, 0, err);
        log_error(d->def->name, "savepoint failed: %s", err);
    }
    (void)url;
    jckpt_savepoint_free(d->sp);
    d->sp = NULL;
    if (d->sp_then_stop && r > 0) {
        d->stop_requested = 1;
        stop_pool(d, 0);
    }
    d->sp_then_stop = 0;
}

static void serve_control(driver *d)
{
    const char *arg = NULL;
    jctl_kind k = JCTL_NONE;
    pthread_mutex_lock(&d->rest_mu);
    if (d->rest_pending && !d->rest_active && !d->sp) {
        d->rest_active = d->rest_pending;
        d->rest_pending = NULL;
        k = d->rest_active->kind;
        arg = d->rest_active->url;
        pthread_cond_broadcast(&d->rest_cv);
    }
    pthread_mutex_unlock(&d->rest_mu);
    if (k == JCTL_NONE && d->ctl) k = jctl_poll(d->ctl, &arg);
    switch (k) {
    case JCTL_NONE: break;
    case JCTL_STOP:
    case JCTL_STOP_DRAIN:
        log_info(d->def->name, "stop requested%s", k == JCTL_STOP_DRAIN ? " drain=true" : "");
        d->stop_requested = 1;
        stop_pool(d, k == JCTL_STOP_DRAIN);
        reply(d, 1, "stopping");
        break;
    case JCTL_SAVEPOINT: begin_savepoint(d, arg, 0); break;
    case JCTL_STOP_SAVEPOINT: begin_savepoint(d, arg, 1); break;
    }
    poll_savepoint(d);
}

/* ---- the loop ---- */

static void nap_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static int drive(driver *d)
{
    int64_t last_final_check = 0;
    for (;;) {
        if (d->failed) return -1;
        if (d->kafka) {
            char err[1024];
            if (kafka_consumer_poll(d->kc, d->pool_running ? CONTROL_POLL_MS : 100, err,
                                    sizeof err))
                return dfail(d, "%s", err);
            if (d->failed) return -1;
            if (d->assignment_changed && !d->pool_running && !d->stop_requested) {
                d->assignment_changed = 0;
                free_tasks(d);
                if (d->nassigned) {
                    if (build_kafka_tasks(d) || start_pool(d)) return -1;
                }
            }
        } else {
            /* the pool signals nothing: poll its flag at the control period */
            nap_ms(CONTROL_POLL_MS);
        }
        serve_control(d);
        if (atomic_load(&d->cancel_requested)) {
            /* give the PATCH's answer a moment to leave, then end like SIGKILL would */
            log_warn(d->def->name, "cancelled through the REST API: exiting without a checkpoint");
            nap_ms(CONTROL_POLL_MS);
            _exit(137);
        }
        if (d->pool_running && atomic_load(&d->pool_finished)) {
            if (join_pool(d)) return -1;
            poll_savepoint(d);
            if (!d->kafka || d->stop_requested || !d->c->kafkaGroup || d->def->one_task) break;
            if (!d->c->endAtLatest && d->c->endAtTimestamp <= 0) break;
        }
        if (d->kafka && !d->pool_running && d->c->kafkaGroup && !d->def->one_task &&
            (d->c->endAtLatest || d->c->endAtTimestamp > 0) && d->tasks_ever) {
            /* a bounded input read by a group: done when every partition is, whoever read it */
            int64_t now = mono_ms();
            if (now - last_final_check >= 500) {
                last_final_check = now;
                if (d->checkpointing && all_partitions_final(d)) break;
            }
        }
        if (d->stop_requested && !d->pool_running) break;
    }
    return d->failed ? -1 : 0;
}

/* The run id lives in the checkpoint store from the first start on (`_run_id`), so a process
 * killed before its first checkpoint restarts under the same id: its replayed outputs get the
 * same part names and Kafka record ids as the ones it wrote before. */
/* Key shards per input file. A file-mode job whose state is keyed by the users of its input
 * (raw-output, flat-output: not one_task, one input) splits each file into --maxParallelism
 * (default --parallelism) shards by key hash when it has fewer files than that, so N threads
 * have N tasks to run, as N Kafka partitions would give. */
static uint32_t file_shards(const driver *d)
{
    const job_common_opts *c = d->c;
    if (d->kafka || d->two || d->def->one_task) return 1;
    int64_t want = c->maxParallelism > 0 ? c->maxParallelism : c->parallelism;
    if (want <= 1 || (int64_t)c->source.n >= want) return 1;
    return (uint32_t)want;
}

/* Opens every input file once per key shard (see file_source). */
static int open_file_sources(driver *d, char *err, size_t errlen)
{
    const job_common_opts *c = d->c;
    for (uint32_t s = 0; s < d->nshards; s++) {
        for (size_t k = 0; k < d->ninputs; k++) {
            int first = k < c->source.n;
            const char *path = first ? c->source.items[k] : d->in2.files->items[k - c->source.n];
            if (open_input(d, &d->files[d->nfiles], first ? "source" : d->in2.flag, path,
                           first ? NULL : d->in2.assign_ts, s, d->nshards, err, errlen))
                return -1;
            d->nfiles++;
        }
    }
    return 0;
}

/* Reads key from the checkpoint store into *got (returns 0) or, when the store has none, writes
 * value there (returns 1). -1 with err naming the store and `what`. */
static int ckstore_get_or_put(driver *d, const char *key, const char *what, const void *value,
                              size_t len, rt_buf *got, char *err, size_t errlen)
{
    objstore *os;
    char why[1024];
    if (objstore_open(d->ckstore, &d->oscfg, &os, why, sizeof why)) {
        snprintf(err, errlen, "checkpoint store %.1000s: %.900s", d->ckstore, why);
        return -1;
    }
    int r = objstore_get(os, key, got, why, sizeof why);
    if (r == 1 && objstore_put(os, key, value, len, why, sizeof why)) r = -1;
    if (r < 0 || r > 1) {
        snprintf(err, errlen, "checkpoint store %.1000s: %s: %.900s", d->ckstore, what, why);
        r = -1;
    }
    objstore_free(os);
    return r;
}

/* A file-mode checkpoint store belongs to one shard count: tasks are named by it, so a restore
 * with another count would find none of its tasks' checkpoints and read everything again. The
 * count is kept beside the run id; a different one is an error (Flink's rule for a changed
 * maximum parallelism). */
static int check_file_shards(driver *d, char *err, size_t errlen)
{
    rt_buf b;
    rt_buf_init(&b, 16);
    char want[16];
    int n = snprintf(want, sizeof want, "%u", (unsigned)d->nshards);
    int rc = ckstore_get_or_put(d, "_file_shards", "shard count", want, (size_t)n, &b, err,
                                errlen);
    if (rc == 0 && (b.len != (size_t)n || memcmp(b.data, want, (size_t)n))) {
        int shown = (int)(b.len < 12 ? b.len : 12);
        snprintf(err, errlen,
                 "checkpoint store %.1000s holds tasks of %.*s key shards per input file; "
                 "this run has %s (--maxParallelism, default --parallelism, when the files "
                 "are fewer): run with --maxParallelism=%.*s or another --checkpointDir",
                 d->ckstore, shown, (const char *)b.data, want, shown, (const char *)b.data);
        rc = -1;
    }
    rt_buf_free(&b);
    return rc < 0 ? -1 : 0;
}

/* The run id of a checkpoint store's first run, kept so a restart names its parts the same. */
static int keep_run_id(driver *d, char *err, size_t errlen)
{
    rt_buf b;
    rt_buf_init(&b, 64);
    int rc = ckstore_get_or_put(d, "_run_id", "run id", d->run_id, 8, &b, err, errlen);
    if (rc == 0 && b.len == 8) {
        memcpy(d->run_id, b.data, 8);
        d->run_id[8] = 0;
    }
    rt_buf_free(&b);
    return rc < 0 ? -1 : 0;
}

int job_run_main(const job_def *def, int argc, char **argv)
{
    driver *d = calloc(1, sizeof *d);
    job_common_opts *c = calloc(1, sizeof *c);
    if (!d || !c) {
        free(d);
        free(c);
        fprintf(stderr, "logproc run %s: out of memory\n", def->name);
        return 1;
    }
    d->def = def;
    d->c = c;
    pthread_mutex_init(&d->rest_mu, NULL);
    pthread_cond_init(&d->rest_cv, NULL);
    pthread_mutex_init(&d->sm.mu, NULL);
    pthread_cond_init(&d->sm.cv, NULL);
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        d->start_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    flag_table tables[2];
    tables[0] = job_flags_common_table(c);
    if (def->new_opts(&d->jopts, &tables[1])) {
        fprintf(stderr, "logproc run %s: out of memory\n", def->name);
        free(d);
        free(c);
        return 1;
    }
    char err[2048];
    char *pos[4];
    size_t npos;
    bool help;
    int status = 2;
    char usage[128];
    snprintf(usage, sizeof usage, "logproc run %s [flags]", def->name);
    pthread_t sm_thread;
    int sm_started = 0;

    if (flags_parse(tables, 2, argc, argv, pos, 4, &npos, &help, err, sizeof err)) {
        fprintf(stderr, "logproc run %s: %s\n", def->name, err);
        goto out;
    }
    if (help) {
        printf("%s\n\n", def->help);
        flags_help(stdout, usage, tables, 2);
        status = 0;
        goto out;
    }
    if (npos) {
        fprintf(stderr, "logproc run %s: unexpected argument '%s'\n", def->name, pos[0]);
        goto out;
    }
    if (job_flags_check(c, err, sizeof err) || def->check(c, d->jopts, err, sizeof err)) {
        fprintf(stderr, "logproc run %s: %s\n", def->name, err);
        goto out;
    }
    job_objstore_config(c, &d->oscfg);
    d->kafka = c->source.n == 0;
    d->two = def->second_input && def->second_input(c, d->jopts, &d->in2) == 1;
    size_t nfiles = d->kafka ? 0 : c->source.n + (d->two ? d->in2.files->n : 0);
    d->ninputs = nfiles;
    d->nshards = file_shards(d);
    if (nfiles * d->nshards > MAX_TASKS) {
        fprintf(stderr, "logproc run %s: %zu inputs%s, over the limit of %d %s\n", def->name,
                nfiles * d->nshards, d->nshards > 1 ? " times key shards" : "", MAX_TASKS,
                d->two ? "files per task" : "tasks");
        goto out;
    }
    /* checkpoints: always with Kafka input; with files when a store or savepoint is named. A job
     * with checkpoints runs in a supervised worker, restarted from them when it fails. */
    d->checkpointing = d->kafka || c->checkpointDir || c->fromSavepoint;
    if (d->checkpointing) {
        char name[300];
        job_label_prefix(c->jobLabel, def->name, name, sizeof name);
        job_restart_opts ro = {.attempts = c->restartAttempts,
                               .delay_ms = c->restartDelay,
                               .max_delay_ms = c->restartMaxDelay,
                               .reset_ms = c->restartResetInterval};
        int sv = job_supervise(name, &ro);
        if (sv >= 0) {
            status = sv;
            goto out;
        }
    }
    status = 1;
    if (c->runId) snprintf(d->run_id, sizeof d->run_id, "%s", c->runId);
    else random_run_id(d->run_id);
    if (!c->s3Directory)
        log_info(def->name, "output root=%s (no -o/--s3Directory given)", job_output_root(c));
    if (d->checkpointing) {
        if (c->checkpointDir) {
            snprintf(d->ckstore, sizeof d->ckstore, "%s", c->checkpointDir);
        } else {
            char name[300];
            job_label_prefix(c->jobLabel, def->name, name, sizeof name);
            snprintf(d->ckstore, sizeof d->ckstore, "%s/checkpoints/%s", job_output_root(c), name);
        }
        log_info(def->name, "checkpoints store=%s interval_ms=%" PRId64, d->ckstore,
                 c->checkpointInterval);
        if (!c->runId && keep_run_id(d, err, sizeof err)) {
            fprintf(stderr, "logproc run %s: %s\n", def->name, err);
            goto out;
        }
        if (!d->kafka && !c->fromSavepoint && check_file_shards(d, err, sizeof err)) {
            fprintf(stderr, "logproc run %s: %s\n", def->name, err);
            goto out;
        }
    }
    if (rt_metrics_new(&d->metrics) || rt_mem_new(c->memoryLimit, &d->mem) ||
        (nfiles && !(d->files = calloc(nfiles * d->nshards, sizeof *d->files)))) {
        fprintf(stderr, "logproc run %s: out of memory\n", def->name);
        goto out;
    }
    if (open_file_sources(d, err, sizeof err)) {
        fprintf(stderr, "logproc run %s: %s\n", def->name, err);
        goto out;
    }
    {
        char dir[4096], name[300];
        jctl_default_dir(c->controlDir, dir, sizeof dir);
        job_label_prefix(c->jobLabel, def->name, name, sizeof name);
        /* a second run of the same name (tests, a one-off backfill) runs without control */
        if (jctl_open(dir, name, job_supervisor_pid(), &d->ctl, err, sizeof err)) {
            log_warn(def->name, "control disabled: %s", err);
            d->ctl = NULL;
        }
    }
    job_label_prefix(c->jobLabel, def->name, d->name, sizeof d->name);
    if (c->restPort >= 0) {
        int port = 0;
        if (c->restPort > 65535) {
            fprintf(stderr, "logproc run %s: --restPort=%lld: want -1..65535\n", def->name,
                    (long long)c->restPort);
            goto out;
        }
        int rc_http = http_server_start(c->restAddress, (int)c->restPort, rest_handler, d, &d->http,
                                        &port, err, sizeof err);
        if (rc_http && c->restPort == REST_DEFAULT_PORT) {
            /* several jobs on one machine: the default port goes to the first, the others take
             * a free one (published in the control directory for `logproc list`) */
            log_warn(def->name, "rest port %d is taken: using a free port", REST_DEFAULT_PORT);
            rc_http = http_server_start(c->restAddress, 0, rest_handler, d, &d->http, &port, err,
                                        sizeof err);
        }
        if (rc_http) {
            log_warn(def->name, "REST API disabled: %s", err);
        } else {
            log_info(def->name, "rest listening address=%s port=%d", c->restAddress, port);
            char url[128];
            snprintf(url, sizeof url, "http://%.64s:%d/", c->restAddress, port);
            if (d->ctl && jctl_set_rest(d->ctl, url))
                log_warn(def->name, "control: cannot publish the REST url: %s", strerror(errno));
        }
    }
    d->sm.m = d->metrics;
    d->sm.mem = d->mem;
    if (rt_metrics_gauge(d->metrics, "memoryUsed", "", &d->sm.g_used) ||
        rt_metrics_gauge(d->metrics, "memoryLimit", "", &d->sm.g_limit) ||
        rt_metrics_gauge(d->metrics, "memoryPeak", "", &d->sm.g_peak))
        d->sm.g_used = NULL;
    mem_gauges(&d->sm);
    d->sm.log_every_ms = c->metricsLogInterval;
    d->sm.progress_every_ms = c->progressInterval;
    for (size_t i = 0; i < d->nfiles; i++) d->sm.input_bytes += input_size(&d->files[i]);
    if (d->http || c->metricsLogInterval > 0 || c->progressInterval > 0)
        sm_started = !pthread_create(&sm_thread, NULL, sampler_main, &d->sm);
    if (d->kafka ? open_kafka(d) : (build_file_tasks(d) || start_pool(d))) {
        fprintf(stderr, "logproc run %s: %s\n", def->name, d->err);
        goto out;
    }
    int rc = drive(d);
    if (rc) {
        stop_pool(d, 0);
        join_pool(d);
        fprintf(stderr, "logproc run %s: %s\n", def->name, d->err);
        goto out;
    }
    free_tasks(d);
    print_summary(stdout, def->name, d->run_id, d->tasks_ever, &d->tot);
    rt_metrics_snap snap;
    log_metrics(d->metrics, NULL, &snap, "numRecordsIn,numRecordsOut,numInvalid,numRecordsDeduped,memory,numTimersFiredEarly,"
                "numMemoryPressurePauses");
    rt_metrics_snap_free(&snap);
    status = 0;
out:
    /* the first worker failing before its tasks ran (a missing savepoint, a bad setting): a
     * restart would fail the same way, so the supervisor gives up at once */
    if (status == 1 && !d->started_once && job_supervisor_pid() && job_restart_count() == 0)
        status = JOB_EXIT_NOT_STARTED;
    http_server_stop_answering(d);
    if (sm_started) {
        pthread_mutex_lock(&d->sm.mu);
        d->sm.stop = 1;
        pthread_cond_signal(&d->sm.cv);
        pthread_mutex_unlock(&d->sm.mu);
        pthread_join(sm_thread, NULL);
    }
    if (d->pool_running) {
        stop_pool(d, 0);
        join_pool(d);
    }
    rt_pool_free(d->pool);
    free_tasks(d);
    free_pres(d);
    kafka_consumer_free(d->kc);
    free(d->assigned);
    jckpt_savepoint_free(d->sp);
    for (size_t i = 0; i < d->nfiles; i++) input_close(&d->files[i]);
    free(d->files);
    jctl_close(d->ctl);
    rt_mem_free(d->mem);
    rt_metrics_free(d->metrics);
    flags_free(tables, 2);
    def->free_opts(d->jopts);
    pthread_mutex_destroy(&d->rest_mu);
    pthread_cond_destroy(&d->rest_cv);
    rt_metrics_snap_free(&d->sm.prev);
    rt_metrics_snap_free(&d->sm.cur);
    pthread_mutex_destroy(&d->sm.mu);
    pthread_cond_destroy(&d->sm.cv);
    free(d->plan);
    free(c);
    free(d);
    return status;
}
