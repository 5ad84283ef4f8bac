/* `logproc run JOB`: parse the flags, build one task per input, run them on the worker pool,
 * print what each table received. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/record_file.h"
#include "jobs/common_ops.h"
#include "jobs/job.h"
#include "runtime/log.h"
#include "runtime/mem.h"
#include "runtime/metrics.h"
#include "runtime/pool.h"
#include "runtime/task.h"

#define MAX_TASKS 1024

/* ---- record-file source ---- */

typedef struct file_source {
    rt_source src;
    recfile_reader *r;
    int64_t (*assign_ts)(const uint8_t *value, size_t len, int64_t record_ts);
} file_source;

static int file_next(rt_source *src, rt_source_record *out, char *err, size_t errlen)
{
    file_source *fs = src->self;
    recfile_record rec;
    recfile_bad bad;
    switch (recfile_next(fs->r, &rec, &bad)) {
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

/* ---- summary ---- */

typedef struct table_total {
    const char *dir;
    uint64_t records, parts, bytes;
} table_total;

static void print_summary(FILE *out, const char *job, const char *run_id, rt_task **tasks,
                          size_t ntasks)
{
    table_total totals[256];
    size_t nt = 0;
    for (size_t t = 0; t < ntasks; t++) {
        rt_graph *g = rt_task_graph(tasks[t]);
        for (size_t i = 0; i < rt_graph_op_count(g); i++) {
            rt_op *op = rt_graph_op_at(g, i);
            if (strcmp(rt_op_name(op), SINK_OP_NAME)) continue;
            const char *dir = sink_op_dir(op);
            table_sink_stats st = sink_op_stats(op);
            size_t k = 0;
            while (k < nt && strcmp(totals[k].dir, dir)) k++;
            if (k == nt) {
                if (nt == sizeof totals / sizeof totals[0]) continue;
                totals[nt++] = (table_total){dir, 0, 0, 0};
            }
            totals[k].records += st.records;
            totals[k].parts += st.parts_published;
            totals[k].bytes += st.bytes_published;
        }
    }
    fprintf(out, "%s: run %s, %zu task(s)\n", job, run_id, ntasks);
    fprintf(out, "  %-12s %6s %12s  %s\n", "records", "parts", "bytes", "table");
    size_t empty = 0;
    for (size_t k = 0; k < nt; k++) {
        if (!totals[k].records) {
            empty++;
            continue;
        }
        fprintf(out, "  %-12" PRIu64 " %6" PRIu64 " %12" PRIu64 "  %s\n", totals[k].records,
                totals[k].parts, totals[k].bytes, totals[k].dir);
    }
    if (empty) {
        fprintf(out, "  (no records:");
        for (size_t k = 0; k < nt; k++)
            if (!totals[k].records) fprintf(out, " %s", strrchr(totals[k].dir, '/') + 1);
        fprintf(out, ")\n");
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

typedef struct metrics_logger {
    rt_metrics *m;
    int64_t interval_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
} metrics_logger;

/* Every interval: a metric line per operator with its rate since the previous one. */
static void *metrics_logger_main(void *arg)
{
    metrics_logger *ml = arg;
    rt_metrics_snap prev = {0}, cur;
    int have_prev = 0;
    pthread_mutex_lock(&ml->mu);
    while (!ml->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ml->interval_ms / 1000;
        until.tv_nsec += (ml->interval_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        if (pthread_cond_timedwait(&ml->cv, &ml->mu, &until) != ETIMEDOUT) continue;
        log_metrics(ml->m, have_prev ? &prev : NULL, &cur, "numRecordsOut,numInvalid,stateBytes");
        if (have_prev) rt_metrics_snap_free(&prev);
        prev = cur;
        have_prev = 1;
    }
    pthread_mutex_unlock(&ml->mu);
    if (have_prev) rt_metrics_snap_free(&prev);
    return NULL;
}

/* Opens path as a finite record-file source. Returns 0 or -1 with err naming the flag. */
static int file_source_open(file_source *fs, const char *flag, const char *path,
                            const job_common_opts *c,
                            int64_t (*assign_ts)(const uint8_t *, size_t, int64_t), char *err,
                            size_t errlen)
{
    memset(fs, 0, sizeof *fs);
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
    fs->assign_ts = assign_ts;
    return 0;
}

static void random_run_id(char out[9])
{
    uint32_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v) v = (uint32_t)getpid() ^ (uint32_t)time(NULL);
    if (fd >= 0) close(fd);
    snprintf(out, 9, "%08" PRIx32, v);
}

int job_run_main(const job_def *def, int argc, char **argv)
{
    job_common_opts c;
    memset(&c, 0, sizeof c);
    void *jopts = NULL;
    flag_table tables[2];
    tables[0] = job_flags_common_table(&c);
    if (def->new_opts(&jopts, &tables[1])) {
        fprintf(stderr, "logproc run %s: out of memory\n", def->name);
        return 1;
    }
    char err[1024];
    char *pos[4];
    size_t npos;
    bool help;
    int status = 2;
    rt_metrics *metrics = NULL;
    rt_mem *mem = NULL;
    rt_pool *pool = NULL;
    rt_task *tasks[MAX_TASKS];
    file_source *sources = NULL;
    size_t ntasks = 0, nsources = 0;
    job_input in2;
    int two = 0;
    char usage[128];
    snprintf(usage, sizeof usage, "logproc run %s [flags]", def->name);

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
    if (job_flags_check(&c, err, sizeof err) || def->check(&c, jopts, err, sizeof err)) {
        fprintf(stderr, "logproc run %s: %s\n", def->name, err);
        goto out;
    }
    if (c.source.n == 0) {
        fprintf(stderr, "logproc run %s: no input: give --source PATH (a record file; repeatable)\n",
                def->name);
        goto out;
    }
    two = def->second_input && def->second_input(&c, jopts, &in2) == 1;
    size_t nfiles = c.source.n + (two ? in2.files->n : 0);
    if (nfiles > MAX_TASKS) {
        fprintf(stderr, "logproc run %s: %zu inputs, over the limit of %d %s\n", def->name, nfiles,
                MAX_TASKS, two ? "files per task" : "tasks");
        goto out;
    }
    status = 1;
    char run_id[9];
    if (c.runId) snprintf(run_id, sizeof run_id, "%s", c.runId);
    else random_run_id(run_id);
    if (!c.s3Directory)
        log_info(def->name, "output root=%s (no -o/--s3Directory given)", job_output_root(&c));
    if (rt_metrics_new(&metrics) || rt_mem_new(c.memoryLimit, &mem) ||
        !(sources = calloc(nfiles, sizeof *sources))) {
        fprintf(stderr, "logproc run %s: out of memory\n", def->name);
        goto out;
    }
    for (; nsources < nfiles; nsources++) {
        int first = nsources < c.source.n;
        const char *path = first ? c.source.items[nsources] : in2.files->items[nsources - c.source.n];
        if (file_source_open(&sources[nsources], first ? "source" : in2.flag, path, &c,
                             first ? NULL : in2.assign_ts, err, sizeof err)) {
            fprintf(stderr, "logproc run %s: %s\n", def->name, err);
            goto out;
        }
    }
    /* one task per --source file; a job with a second input reads every file in one task */
    size_t want_tasks = two ? 1 : c.source.n;
    for (size_t i = 0; i < want_tasks; i++) {
        char label[24];
        snprintf(label, sizeof label, "%zu", i);
        rt_task_config tc = {
            .label = label,
            .metrics = metrics,
            .mem = mem,
            .wm = {.max_out_of_orderness = c.maxLogRequestOutOfOrderness},
            /* the watermark follows every record (spec flat-output §8.1): outputs do not
             * depend on how records are batched */
            .watermark_every = 1,
            .no_drain = !c.drain,
        };
        rt_op *root;
        if (rt_task_new(&tc, &tasks[ntasks], err, sizeof err)) {
            fprintf(stderr, "logproc run %s: %s\n", def->name, err);
            goto out;
        }
        ntasks++;
        if (def->build(rt_task_graph(tasks[i]), &c, jopts, run_id, label, &root, err, sizeof err)) {
            fprintf(stderr, "logproc run %s: %s\n", def->name, err);
            goto out;
        }
        if (!two) {
            rt_task_set_source(tasks[i], &sources[i].src, root, 0);
        } else {
            rt_op *root2 = rt_graph_find(rt_task_graph(tasks[i]), in2.root_uid);
            rt_wmgen_config wm2 = {.max_out_of_orderness = in2.max_out_of_orderness};
            if (!root2 && in2.files->n) {
                fprintf(stderr, "logproc run %s: no operator %s for --%s\n", def->name,
                        in2.root_uid, in2.flag);
                goto out;
            }
            for (size_t k = 0; k < nfiles; k++) {
                int first = k < c.source.n;
                if (rt_task_add_source(tasks[i], &sources[k].src, first ? &tc.wm : &wm2,
                                       first ? root : root2, 0, err, sizeof err)) {
                    fprintf(stderr, "logproc run %s: %s\n", def->name, err);
                    goto out;
                }
            }
        }
        if (rt_task_open(tasks[i], err, sizeof err)) {
            fprintf(stderr, "logproc run %s: %s\n", def->name, err);
            goto out;
        }
    }
    int threads = (int)(c.parallelism < (int64_t)ntasks ? c.parallelism : (int64_t)ntasks);
    if (rt_pool_new(threads, &pool)) goto out;
    for (size_t i = 0; i < ntasks; i++)
        if (rt_pool_add(pool, tasks[i])) goto out;
    log_info(def->name, "run=%s tasks=%zu threads=%d", run_id, ntasks, threads);
    metrics_logger ml = {.m = metrics, .interval_ms = c.metricsLogInterval};
    pthread_t ml_thread;
    int ml_started = 0;
    if (c.metricsLogInterval > 0) {
        pthread_mutex_init(&ml.mu, NULL);
        pthread_cond_init(&ml.cv, NULL);
        ml_started = !pthread_create(&ml_thread, NULL, metrics_logger_main, &ml);
    }
    int run_rc = rt_pool_run(pool, err, sizeof err);
    if (ml_started) {
        pthread_mutex_lock(&ml.mu);
        ml.stop = 1;
        pthread_cond_signal(&ml.cv);
        pthread_mutex_unlock(&ml.mu);
        pthread_join(ml_thread, NULL);
    }
    if (run_rc) {
        fprintf(stderr, "logproc run %s: %s\n", def->name, err);
        goto out;
    }
    print_summary(stdout, def->name, run_id, tasks, ntasks);
    rt_metrics_snap snap;
    log_metrics(metrics, NULL, &snap, "numRecordsIn,numRecordsOut,numInvalid,numRecordsDeduped");
    rt_metrics_snap_free(&snap);
    status = 0;
out:
    rt_pool_free(pool);
    for (size_t i = 0; i < ntasks; i++) rt_task_free(tasks[i]);
    for (size_t i = 0; i < nsources; i++) recfile_reader_close(sources[i].r);
    free(sources);
    rt_mem_free(mem);
    rt_metrics_free(metrics);
    flags_free(tables, 2);
    def->free_opts(jopts);
    return status;
}
