/* Task checkpoints (runtime/task.h): a task with two in-memory sources and a graph of
 * decode -> per-key windowed counter (rt_kv + timers) -> two-phase capturing sink is checkpointed
 * in the middle, "crashes" (before or after the checkpoint completed, with records processed
 * after it), and a fresh task positioned by rt_task_snapshot_sources and restored with
 * rt_task_restore runs to the end: what the sink published equals an uninterrupted run's exactly.
 * Also: final checkpoints at the end of input and on a stop request, a record read but not pushed
 * counted as unprocessed, a source-count mismatch, and the watermark never going back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/state.h"
#include "runtime/task.h"

/* ---- an in-memory source: position = index of the next record ---- */

typedef struct mrec {
    int64_t ts;
    char key[4];
} mrec;

typedef struct msrc {
    rt_source src;
    const mrec *recs;
    size_t n, pos;
} msrc;

static int msrc_next(rt_source *s, rt_source_record *out, char *err, size_t errlen)
{
    msrc *m = s->self;
    if (m->pos >= m->n) return RT_SOURCE_END;
    const mrec *r = &m->recs[m->pos];
    out->offset = (int64_t)m->pos++;
    out->ts = r->ts;
    out->key = (const uint8_t *)r->key;
    out->key_len = strlen(r->key);
    out->value = out->key;
    out->value_len = out->key_len;
    return RT_SOURCE_RECORD;
}

static int64_t msrc_position(const rt_source *s)
{
    const msrc *m = s->self;
    return (int64_t)m->pos;
}

static void msrc_init(msrc *m, const mrec *recs, size_t n, const char *name, size_t start)
{
    memset(m, 0, sizeof *m);
    m->recs = recs;
    m->n = n;
    m->pos = start;
    m->src = (rt_source){.name = name, .partition = -1, .finite = 1, .self = m,
                         .next = msrc_next, .position = msrc_position};
}

/* Source A: keys a/b, out of order by up to 2 ms; source B: key c, interleaving with A. */
#define NA 30
#define NB 24
static mrec recs_a[NA], recs_b[NB];

static void make_inputs(void)
{
    for (int i = 0; i < NA; i++) {
        recs_a[i].ts = 100 + 4 * i - (i % 3 == 1 ? 6 : 0);
        snprintf(recs_a[i].key, sizeof recs_a[i].key, "%s", i % 2 ? "a" : "b");
    }
    for (int i = 0; i < NB; i++) {
        recs_b[i].ts = 101 + 5 * i - (i % 4 == 2 ? 2 : 0);
        snprintf(recs_b[i].key, sizeof recs_b[i].key, "c");
    }
}

/* ---- the world the sink publishes to (outlives tasks, like a table directory) ---- */

#define OUT_CAP 16384

typedef struct world {
    char published[OUT_CAP];
    uint64_t last_epoch; /* highest sink epoch published: publishing is idempotent per epoch */
    int completes;
} world;

static void append(char *dst, const char *s, size_t n)
{
    size_t have = strlen(dst);
    if (have + n >= OUT_CAP) fail_msg("output over %d bytes", OUT_CAP);
    memcpy(dst + have, s, n);
    dst[have + n] = 0;
}

/* ---- operators ---- */

#define WINDOW 10

static int decode_process(rt_op *op, int input, const rt_record *rec)
{
    assert_int_equal(rec->type, RT_TYPE_SOURCE);
    const rt_source_record *sr = rec->data;
    rt_record out = {rec->ts, 1, (void *)sr->value, sr->value_len, sr->key, sr->key_len};
    return rt_emit(op, 0, &out);
}

typedef struct counter {
    rt_kv *counts;
} counter;

static int counter_open(rt_op *op)
{
    counter *c = rt_op_self(op);
    return rt_kv_new(op, "counts", &c->counts);
}

/* Emits a line per record, counts per (key, window) and emits the count when the window's
 * timer fires: a record processed twice or lost changes both. */
static int counter_process(rt_op *op, int input, const rt_record *rec)
{
    counter *c = rt_op_self(op);
    char line[64], kk[32];
    int n = snprintf(line, sizeof line, "r:%.*s@%lld\n", (int)rec->key_len,
                     (const char *)rec->key, (long long)rec->ts);
    rt_record out = {rec->ts, 2, line, (size_t)n, NULL, 0};
    if (rt_emit(op, 0, &out) < 0) return -1;
    int64_t end = (rec->ts / WINDOW + 1) * WINDOW;
    int kn = snprintf(kk, sizeof kk, "%.*s|%lld", (int)rec->key_len, (const char *)rec->key,
                      (long long)end);
    void *v;
    if (rt_kv_upsert(c->counts, kk, (size_t)kn, sizeof(uint32_t), &v, NULL) < 0) return -1;
    uint32_t cnt;
    memcpy(&cnt, v, sizeof cnt);
    cnt++;
    memcpy(v, &cnt, sizeof cnt);
    return rt_timer_register(op, end - 1, kk, (size_t)kn);
}

static int counter_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    counter *c = rt_op_self(op);
    size_t vlen;
    uint32_t *v = rt_kv_get(c->counts, key, klen, &vlen);
    if (!v) return rt_op_fail(op, "timer %.*s without a count", (int)klen, (const char *)key);
    char line[64];
    int n = snprintf(line, sizeof line, "c:%.*s=%u\n", (int)klen, (const char *)key, *v);
    rt_kv_delete(c->counts, key, klen);
    rt_record out = {time, 2, line, (size_t)n, NULL, 0};
    return rt_emit(op, 0, &out);
}

static void free_self(rt_op *op)
{
    free(rt_op_self(op));
}

/* A two-phase sink: lines since the last snapshot are pending; a snapshot stages them as the
 * next epoch and records every staged epoch; checkpoint_complete publishes the staged epochs;
 * restore publishes what the snapshot staged (skipping epochs already published). Without
 * checkpointing it publishes at finish. */
#define MAX_STAGED 4

typedef struct csink {
    world *w;
    char pending[OUT_CAP];
    char staged[MAX_STAGED][OUT_CAP];
    uint64_t staged_epoch[MAX_STAGED];
    int nstaged;
    uint64_t next_epoch;
    int finishes, completes;
    int64_t last_complete_id;
} csink;

static int sink_process(rt_op *op, int input, const rt_record *rec)
{
    csink *s = rt_op_self(op);
    append(s->pending, rec->data, rec->len);
    return 0;
}

static void publish_epoch(world *w, uint64_t epoch, const char *text)
{
    if (epoch <= w->last_epoch) return; /* published before a crash */
    append(w->published, text, strlen(text));
    w->last_epoch = epoch;
}

static int sink_finish(rt_op *op)
{
    csink *s = rt_op_self(op);
    s->finishes++;
    if (rt_graph_checkpointing(rt_op_graph(op))) return 0; /* the final checkpoint publishes */
    publish_epoch(s->w, ++s->next_epoch, s->pending);
    s->pending[0] = 0;
    return 0;
}

static int sink_snapshot(rt_op *op, rt_buf *out)
{
    csink *s = rt_op_self(op);
    if (s->nstaged == MAX_STAGED) return rt_op_fail(op, "too many staged epochs");
    s->staged_epoch[s->nstaged] = ++s->next_epoch;
    memcpy(s->staged[s->nstaged], s->pending, sizeof s->pending);
    s->nstaged++;
    s->pending[0] = 0;
    if (rt_buf_put_u64(out, s->next_epoch) < 0 || rt_buf_put_u32(out, (uint32_t)s->nstaged) < 0)
        return -1;
    for (int i = 0; i < s->nstaged; i++)
        if (rt_buf_put_u64(out, s->staged_epoch[i]) < 0 || rt_buf_put_str(out, s->staged[i]) < 0)
            return -1;
    return 0;
}

static int sink_restore(rt_op *op, const uint8_t *bytes, size_t len)
{
    csink *s = rt_op_self(op);
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t n;
    if (rt_buf_read_u64(&r, &s->next_epoch) < 0 || rt_buf_read_u32(&r, &n) < 0)
        return rt_op_fail(op, "truncated sink state");
    for (uint32_t i = 0; i < n; i++) {
        uint64_t epoch;
        const uint8_t *p;
        size_t pn;
        if (rt_buf_read_u64(&r, &epoch) < 0 || rt_buf_read_bytes(&r, &p, &pn) < 0 || pn >= OUT_CAP)
            return rt_op_fail(op, "truncated sink state");
        char text[OUT_CAP];
        memcpy(text, p, pn);
        text[pn] = 0;
        publish_epoch(s->w, epoch, text);
    }
    return 0;
}

static int sink_complete(rt_op *op, int64_t id)
{
    csink *s = rt_op_self(op);
    for (int i = 0; i < s->nstaged; i++) publish_epoch(s->w, s->staged_epoch[i], s->staged[i]);
    s->nstaged = 0;
    s->completes++;
    s->last_complete_id = id;
    s->w->completes++;
    return 0;
}

static const rt_op_vtbl decode_vt = {.process = decode_process};
static const rt_op_vtbl counter_vt = {.open = counter_open, .process = counter_process,
                                      .on_timer = counter_timer, .close = free_self};
static const rt_op_vtbl sink_vt = {.process = sink_process, .finish = sink_finish,
                                   .snapshot = sink_snapshot, .restore = sink_restore,
                                   .checkpoint_complete = sink_complete, .close = free_self};

/* ---- the checkpoint hook ---- */

typedef struct hook {
    int calls, finals;
    int last_final;
    rt_task_info last_info;
    int capture_at;             /* the non-final call (1-based) whose snapshot is kept; 0: none */
    int crash_before_complete;  /* at the captured call, return before completing */
    int crashed;
    uint8_t *kept;
    size_t kept_len;
    rt_task_info kept_info;
    int64_t kept_pos[2];        /* the sources' positions when the snapshot was taken */
    int64_t kept_sink_wm;
    msrc *srcs[2];
    size_t nsrcs;
    rt_op *sink;
    int64_t next_id;
    rt_buf snap;
} hook;

static int hook_fn(rt_task *t, void *arg, int final, char *err, size_t errlen)
{
    hook *h = arg;
    h->calls++;
    h->last_final = final;
    h->finals += final;
    rt_task_info_get(t, &h->last_info);
    rt_buf_reset(&h->snap);
    if (rt_task_snapshot(t, &h->snap, err, errlen) < 0) return -1;
    if (!final && h->calls == h->capture_at) {
        h->kept = malloc(h->snap.len);
        assert_non_null(h->kept);
        memcpy(h->kept, h->snap.data, h->snap.len);
        h->kept_len = h->snap.len;
        h->kept_info = h->last_info;
        for (size_t i = 0; i < h->nsrcs; i++) h->kept_pos[i] = (int64_t)h->srcs[i]->pos;
        h->kept_sink_wm = rt_op_watermark(h->sink);
        if (h->crash_before_complete) {
            h->crashed = 1;
            return 0;
        }
    }
    if (rt_graph_checkpoint_complete(rt_task_graph(t), ++h->next_id) < 0) {
        snprintf(err, errlen, "%s", rt_graph_error(rt_task_graph(t)));
        return -1;
    }
    return 0;
}

/* ---- building a task ---- */

typedef struct job {
    rt_task *t;
    msrc a, b;
    rt_op *decode, *counter, *sink;
    csink *sink_self;
} job;

/* Builds and opens a task over A (and B when two), starting the sources at the given positions.
 * h: checkpointing with that hook (NULL: none). */
static void build(job *j, world *w, hook *h, int two, const int64_t *start, uint32_t step,
                  int no_drain)
{
    memset(j, 0, sizeof *j);
    rt_task_config cfg = {.label = "p7",
                          .wm = {.max_out_of_orderness = 6},
                          .watermark_every = 1,
                          .step_records = step,
                          .no_drain = no_drain};
    char err[512] = "";
    assert_int_equal(rt_task_new(&cfg, &j->t, err, sizeof err), 0);
    rt_graph *g = rt_task_graph(j->t);
    counter *c = calloc(1, sizeof *c);
    csink *s = calloc(1, sizeof *s);
    assert_true(c && s);
    s->w = w;
    j->sink_self = s;
    assert_int_equal(rt_graph_add_op(g, "decode", NULL, &decode_vt, NULL, 1, 1, &j->decode), 0);
    assert_int_equal(rt_graph_add_op(g, "count", NULL, &counter_vt, c, 1, 1, &j->counter), 0);
    assert_int_equal(rt_graph_add_op(g, "sink", NULL, &sink_vt, s, 1, 0, &j->sink), 0);
    assert_int_equal(rt_graph_connect(g, j->decode, 0, j->counter, 0), 0);
    assert_int_equal(rt_graph_connect(g, j->counter, 0, j->sink, 0), 0);
    msrc_init(&j->a, recs_a, NA, "mem://a", start ? (size_t)start[0] : 0);
    rt_task_set_source(j->t, &j->a.src, j->decode, 0);
    if (two) {
        msrc_init(&j->b, recs_b, NB, "mem://b", start ? (size_t)start[1] : 0);
        if (rt_task_add_source(j->t, &j->b.src, NULL, j->decode, 0, err, sizeof err))
            fail_msg("add source: %s", err);
    }
    if (h) {
        h->srcs[0] = &j->a;
        h->srcs[1] = &j->b;
        h->nsrcs = two ? 2 : 1;
        h->sink = j->sink;
        rt_task_set_checkpointing(j->t, 0, hook_fn, h);
    }
    if (rt_task_open(j->t, err, sizeof err)) fail_msg("open: %s", err);
}

static void run(job *j)
{
    char err[512] = "";
    if (rt_task_run(j->t, err, sizeof err)) fail_msg("run: %s", err);
}

static int step(job *j)
{
    char err[512] = "";
    int r = rt_task_step(j->t, err, sizeof err);
    if (r < 0) fail_msg("step: %s", err);
    return r;
}

static void hook_init(hook *h)
{
    memset(h, 0, sizeof *h);
    rt_buf_init(&h->snap, 0);
}

static void hook_free(hook *h)
{
    free(h->kept);
    rt_buf_free(&h->snap);
}

/* The reference: one run, no checkpoints, publishing at the drain. */
static void reference(world *w)
{
    memset(w, 0, sizeof *w);
    job j;
    build(&j, w, NULL, 1 + 1, NULL, 3, 0);
    run(&j);
    rt_task_info info;
    rt_task_info_get(j.t, &info);
    assert_int_equal(info.records, NA + NB);
    rt_task_free(j.t);
    /* sanity: every record and every window appears */
    int lines = 0, counts = 0;
    for (const char *p = w->published; (p = strchr(p, '\n')); p++) lines++;
    for (const char *p = w->published; (p = strstr(p, "c:")); p++) counts++;
    assert_int_equal(lines - counts, NA + NB);
    assert_true(counts > 10);
}

/* Restores the kept snapshot into a fresh task (sources positioned from it) and runs to the end.
 * Returns the new task's hook calls through h2. */
static void resume(world *w, hook *h, hook *h2)
{
    rt_task_source_pos pos[4];
    size_t n = 0;
    char err[512] = "";
    if (rt_task_snapshot_sources(h->kept, h->kept_len, pos, 4, &n, err, sizeof err))
        fail_msg("snapshot sources: %s", err);
    assert_int_equal(n, 2);
    assert_string_equal(pos[0].name, "mem://a");
    assert_string_equal(pos[1].name, "mem://b");
    assert_int_equal(pos[0].partition, -1);
    int64_t start[2] = {pos[0].next_offset, pos[1].next_offset};
    job j;
    build(&j, w, h2, 2, start, 3, 0);
    if (rt_task_restore(j.t, h->kept, h->kept_len, err, sizeof err)) fail_msg("restore: %s", err);
    rt_task_info info;
    rt_task_info_get(j.t, &info);
    /* counters and watermark come back; the watermark is not lower than at the snapshot */
    assert_int_equal(info.records, h->kept_info.records);
    assert_true(info.watermark >= h->kept_info.watermark);
    assert_true(rt_op_watermark(j.sink) >= h->kept_sink_wm);
    int64_t wm_before = info.watermark;
    if (step(&j) != RT_TASK_DONE) {
        rt_task_info_get(j.t, &info);
        assert_true(info.watermark >= wm_before);
    }
    run(&j);
    rt_task_info_get(j.t, &info);
    assert_int_equal(info.records, NA + NB); /* none pushed twice, none skipped */
    assert_int_equal(info.drained, 1);
    assert_int_equal(info.stopped, 0);
    assert_int_equal(h2->last_final, 1);
    assert_int_equal(h2->finals, 1);
    rt_task_free(j.t);
}

/* ---- tests ---- */

/* Checkpoint after every possible step, crash after one more step of records (processed, never
 * published), restore, run to the end: output equals the uninterrupted run. Both crash points:
 * after the checkpoint completed (restore must not publish again) and before (restore must
 * publish what the checkpoint staged). */
static void test_restore_gives_exactly_the_uninterrupted_output(void **unused)
{
    world ref;
    reference(&ref);
    int steps_total = (NA + NB) / 3;
    for (int crash_before = 0; crash_before < 2; crash_before++) {
        for (int k = 1; k < steps_total - 1; k++) {
            world w;
            memset(&w, 0, sizeof w);
            hook h, h2;
            hook_init(&h);
            hook_init(&h2);
            h.capture_at = 1;
            h.crash_before_complete = crash_before;
            job j;
            build(&j, &w, &h, 2, NULL, 3, 0);
            for (int s = 0; s < k; s++) assert_int_equal(step(&j), RT_TASK_MORE);
            rt_task_request_checkpoint(j.t);
            assert_int_equal(step(&j), RT_TASK_MORE);
            assert_int_equal(h.calls, 1);
            assert_non_null(h.kept);
            assert_int_equal(h.crashed, crash_before);
            /* only durable checkpoints publish: a prefix of the reference, or nothing */
            if (crash_before) assert_string_equal(w.published, "");
            else assert_memory_equal(w.published, ref.published, strlen(w.published));
            step(&j); /* more records, in no checkpoint: lost with the task, replayed */
            assert_int_equal(h.calls, 1);
            rt_task_free(j.t);

            resume(&w, &h, &h2);
            if (strcmp(w.published, ref.published))
                fail_msg("checkpoint after step %d (crash %s completing): output\n%s\n"
                         "differs from the uninterrupted\n%s",
                         k + 1, crash_before ? "before" : "after", w.published, ref.published);
            hook_free(&h);
            hook_free(&h2);
        }
    }
}

/* The snapshot counts a record read from a source but not pushed (the merge holds one per
 * source) as unprocessed: every record before next_offset was pushed, none at or after it. */
static void test_pending_record_counts_as_unprocessed(void **unused)
{
    world w;
    memset(&w, 0, sizeof w);
    for (int k = 0; k < 10; k++) {
        hook h;
        hook_init(&h);
        h.capture_at = 1;
        job j;
        build(&j, &w, &h, 2, NULL, 1, 0);
        for (int s = 0; s < k; s++) step(&j);
        rt_task_request_checkpoint(j.t);
        step(&j);
        assert_non_null(h.kept);
        rt_task_source_pos pos[2];
        size_t n;
        char err[256];
        assert_int_equal(rt_task_snapshot_sources(h.kept, h.kept_len, pos, 2, &n, err, sizeof err),
                         0);
        assert_int_equal(n, 2);
        /* both sources have been read; the one not picked holds a record: it is unprocessed */
        int held = 0;
        for (int i = 0; i < 2; i++) {
            if (pos[i].next_offset == h.kept_pos[i] - 1) held++;
            else assert_int_equal(pos[i].next_offset, h.kept_pos[i]);
            assert_int_equal(pos[i].ended, 0);
        }
        assert_int_equal(held, 1);
        assert_int_equal((int64_t)h.kept_info.records, pos[0].next_offset + pos[1].next_offset);
        assert_int_equal(h.kept_info.records, (uint64_t)k + 1);
        /* and the cap is honoured */
        assert_int_equal(rt_task_snapshot_sources(h.kept, h.kept_len, pos, 1, &n, err, sizeof err),
                         -1);
        assert_non_null(strstr(err, "2 sources"));
        rt_task_free(j.t);
        hook_free(&h);
    }
}

static void test_final_checkpoint_at_end_of_input(void **unused)
{
    world ref, w;
    reference(&ref);
    memset(&w, 0, sizeof w);
    hook h;
    hook_init(&h);
    job j;
    build(&j, &w, &h, 2, NULL, 4, 0);
    run(&j);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.finals, 1);
    assert_int_equal(h.last_final, 1);
    assert_int_equal(h.last_info.stopped, 0);
    assert_int_equal(h.last_info.drained, 1);
    assert_int_equal(h.last_info.records, NA + NB);
    /* finish left the last outputs pending; the final checkpoint published them */
    assert_int_equal(j.sink_self->finishes, 1);
    assert_int_equal(j.sink_self->completes, 1);
    assert_string_equal(w.published, ref.published);
    /* the final snapshot records the sources as read to the end */
    rt_task_source_pos pos[2];
    size_t n;
    char err[256];
    assert_int_equal(rt_task_snapshot_sources(h.snap.data, h.snap.len, pos, 2, &n, err, sizeof err),
                     0);
    assert_int_equal(pos[0].next_offset, NA);
    assert_int_equal(pos[1].next_offset, NB);
    assert_int_equal(pos[0].ended, 1);
    assert_int_equal(pos[1].ended, 1);
    rt_task_free(j.t);
    hook_free(&h);
}

/* A stop without drain: the final checkpoint is marked stopped, keeps state and timers, and a
 * task restored from it finishes the input with the uninterrupted output. */
static void test_stop_request_gives_final_stopped_checkpoint(void **unused)
{
    world ref, w;
    reference(&ref);
    memset(&w, 0, sizeof w);
    hook h, h2;
    hook_init(&h);
    hook_init(&h2);
    job j;
    build(&j, &w, &h, 2, NULL, 5, 0);
    for (int s = 0; s < 4; s++) assert_int_equal(step(&j), RT_TASK_MORE);
    rt_task_request_stop(j.t, 0);
    assert_int_equal(step(&j), RT_TASK_DONE);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.last_final, 1);
    assert_int_equal(h.last_info.stopped, 1);
    assert_int_equal(h.last_info.drained, 0);
    assert_int_equal(h.last_info.records, 20);
    assert_int_equal(j.sink_self->finishes, 0); /* not drained */
    /* what the 20 records produced so far is published, and it is a prefix of the reference */
    assert_true(strlen(w.published) > 0);
    assert_memory_equal(w.published, ref.published, strlen(w.published));
    /* the stopped task's state goes on in a fresh task */
    h.kept = malloc(h.snap.len);
    assert_non_null(h.kept);
    memcpy(h.kept, h.snap.data, h.snap.len);
    h.kept_len = h.snap.len;
    h.kept_info = h.last_info;
    h.kept_sink_wm = rt_op_watermark(j.sink);
    rt_task_free(j.t);
    resume(&w, &h, &h2);
    assert_string_equal(w.published, ref.published);
    hook_free(&h);
    hook_free(&h2);
}

static void test_stop_with_drain_is_final_and_stopped(void **unused)
{
    world w;
    memset(&w, 0, sizeof w);
    hook h;
    hook_init(&h);
    job j;
    build(&j, &w, &h, 2, NULL, 5, 0);
    assert_int_equal(step(&j), RT_TASK_MORE);
    rt_task_request_stop(j.t, 1);
    assert_int_equal(step(&j), RT_TASK_DONE);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.last_final, 1);
    assert_int_equal(h.last_info.stopped, 1);
    assert_int_equal(h.last_info.drained, 1);
    assert_int_equal(j.sink_self->finishes, 1);
    /* the drain fired every window of the 5 records: their counts are published */
    assert_non_null(strstr(w.published, "c:"));
    rt_task_free(j.t);
    hook_free(&h);
}

static void test_restore_into_other_source_count_fails(void **unused)
{
    world w;
    memset(&w, 0, sizeof w);
    hook h;
    hook_init(&h);
    h.capture_at = 1;
    job j;
    build(&j, &w, &h, 2, NULL, 3, 0);
    rt_task_request_checkpoint(j.t);
    step(&j);
    assert_non_null(h.kept);
    rt_task_free(j.t);

    job one;
    build(&one, &w, NULL, 0, NULL, 3, 0);
    char err[512] = "";
    assert_int_equal(rt_task_restore(one.t, h.kept, h.kept_len, err, sizeof err), -1);
    /* names the task and both counts */
    assert_non_null(strstr(err, "p7"));
    assert_non_null(strstr(err, "2 sources"));
    assert_non_null(strstr(err, "1"));
    rt_task_free(one.t);
    hook_free(&h);
}

static void test_restore_rejects_truncated_snapshots(void **unused)
{
    world w;
    memset(&w, 0, sizeof w);
    hook h;
    hook_init(&h);
    h.capture_at = 1;
    job j;
    build(&j, &w, &h, 2, NULL, 3, 0);
    for (int s = 0; s < 3; s++) step(&j);
    rt_task_request_checkpoint(j.t);
    step(&j);
    assert_non_null(h.kept);
    rt_task_free(j.t);
    /* every cut of the snapshot fails cleanly (a fresh task per try: restore is not atomic) */
    for (size_t len = 0; len < h.kept_len; len += 7) {
        uint8_t *cut = malloc(len ? len : 1);
        assert_non_null(cut);
        memcpy(cut, h.kept, len);
        hook h2;
        hook_init(&h2);
        job r;
        build(&r, &w, &h2, 2, NULL, 3, 0);
        char err[512] = "";
        if (rt_task_restore(r.t, cut, len, err, sizeof err) != -1)
            fail_msg("a task snapshot cut to %zu of %zu bytes was accepted", len, h.kept_len);
        assert_true(err[0] != 0);
        rt_task_free(r.t);
        hook_free(&h2);
        free(cut);
    }
    hook_free(&h);
}

/* A stop asked for by the checkpoint hook (a stop with savepoint) ends the task before one more
 * record, even when the checkpoint comes in the middle of a long step: the final checkpoint then
 * holds exactly the savepoint's records. */
typedef struct stop_hook {
    int calls;
    uint64_t records_at[4];
    int finals[4];
} stop_hook;

static int stop_hook_fn(rt_task *t, void *arg, int final, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    stop_hook *h = arg;
    rt_task_info info;
    rt_task_info_get(t, &info);
    if (h->calls < 4) h->records_at[h->calls] = info.records, h->finals[h->calls] = final;
    if (h->calls++ == 0) rt_task_request_stop(t, 0);
    return 0;
}

#define NLONG 3000
static mrec recs_long[NLONG];

static int count_process(rt_op *op, int input, const rt_record *rec)
{
    (void)input;
    return rt_emit(op, 0, rec);
}

/* A task over NLONG records of one key, through one pass-through operator, steps of `step`
 * records; m is its source (for its position). Not open yet. */
static rt_task *long_task(const char *label, uint32_t step, msrc *m)
{
    for (int i = 0; i < NLONG; i++) {
        recs_long[i].ts = 1000 + i;
        snprintf(recs_long[i].key, sizeof recs_long[i].key, "k");
    }
    rt_task_config cfg = {.label = label, .watermark_every = 1, .step_records = step};
    char err[512] = "";
    rt_task *t;
    assert_int_equal(rt_task_new(&cfg, &t, err, sizeof err), 0);
    static const rt_op_vtbl pass_vt = {.process = count_process};
    rt_op *op;
    assert_int_equal(rt_graph_add_op(rt_task_graph(t), "pass", NULL, &pass_vt, NULL, 1, 1, &op), 0);
    msrc_init(m, recs_long, NLONG, "mem://long", 0);
    rt_task_set_source(t, &m->src, op, 0);
    return t;
}

static void test_stop_requested_by_the_checkpoint_comes_before_the_next_record(void **unused)
{
    char err[512] = "";
    msrc m;
    rt_task *t = long_task("s", 100000, &m);
    stop_hook h = {0};
    rt_task_set_checkpointing(t, 0, stop_hook_fn, &h);
    assert_int_equal(rt_task_open(t, err, sizeof err), 0);
    rt_task_request_checkpoint(t); /* taken at the first 256-record boundary of the long step */
    assert_int_equal(rt_task_step(t, err, sizeof err), RT_TASK_MORE);
    assert_int_equal(rt_task_step(t, err, sizeof err), RT_TASK_DONE);
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.finals[0], 0);
    assert_int_equal(h.finals[1], 1);
    assert_true(h.records_at[0] > 0 && h.records_at[0] < NLONG);
    assert_int_equal(h.records_at[1], h.records_at[0]); /* not one record in between */
    assert_int_equal((int64_t)m.pos, (int64_t)h.records_at[0]);
    rt_task_free(t);
}

/* --tolerableCheckpointFailureNumber: that many consecutive failed checkpoints are logged and the
 * task goes on; a success resets the count; one failure more fails the task. */
typedef struct flaky_hook {
    int calls;
    const char *plan; /* per call: 'f' fails, 'o' succeeds */
} flaky_hook;

static int flaky_fn(rt_task *t, void *arg, int final, char *err, size_t errlen)
{
    (void)t, (void)final;
    flaky_hook *h = arg;
    char c = h->plan[h->calls++];
    if (c == 'f') {
        snprintf(err, errlen, "store unavailable (call %d)", h->calls);
        return -1;
    }
    return 0;
}

static void test_tolerable_checkpoint_failures(void **unused)
{
    char err[512] = "";
    msrc m;
    rt_task *t = long_task("f", 10, &m);
    flaky_hook h = {.plan = "ffoff" "f"};
    rt_task_set_checkpointing(t, 0, flaky_fn, &h);
    rt_task_set_checkpoint_policy(t, 0, 2);
    assert_int_equal(rt_task_open(t, err, sizeof err), 0);
    for (int i = 0; i < 5; i++) { /* f f o f f: never more than 2 in a row */
        rt_task_request_checkpoint(t);
        assert_int_equal(rt_task_step(t, err, sizeof err), RT_TASK_MORE);
    }
    assert_int_equal(h.calls, 5);
    rt_task_request_checkpoint(t); /* the third failure in a row */
    assert_int_equal(rt_task_step(t, err, sizeof err), -1);
    assert_non_null(strstr(err, "store unavailable (call 6)"));
    rt_task_free(t);
}

static int setup(void **unused)
{
    make_inputs();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_gives_exactly_the_uninterrupted_output),
        cmocka_unit_test(test_pending_record_counts_as_unprocessed),
        cmocka_unit_test(test_final_checkpoint_at_end_of_input),
        cmocka_unit_test(test_stop_request_gives_final_stopped_checkpoint),
        cmocka_unit_test(test_stop_with_drain_is_final_and_stopped),
        cmocka_unit_test(test_restore_into_other_source_count_fails),
        cmocka_unit_test(test_restore_rejects_truncated_snapshots),
        cmocka_unit_test(test_stop_requested_by_the_checkpoint_comes_before_the_next_record),
        cmocka_unit_test(test_tolerable_checkpoint_failures),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
