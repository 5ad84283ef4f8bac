/* Tasks end to end: source -> decode -> keyed dedupe with a timer -> two sinks, driven by
 * rt_task_run with and without drain, bad spans to a side output, in/out metrics, stop requests,
 * and a pool of 2 threads running 4 tasks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/pool.h"
#include "runtime/state.h"
#include "runtime/task.h"

/* ---- an in-memory source ---- */

typedef struct item {
    int64_t ts;
    const char *value; /* NULL with error NULL: the source reports IDLE once */
    const char *error; /* a bad span */
} item;

typedef struct asrc {
    rt_source src;
    const item *items;
    size_t n, pos;
    char names[8][16]; /* generated values, for the pool test */
} asrc;

static int asrc_next(rt_source *s, rt_source_record *out, char *err, size_t errlen)
{
    asrc *a = s->self;
    if (a->pos >= a->n) return RT_SOURCE_END;
    const item *it = &a->items[a->pos];
    out->offset = (int64_t)a->pos++;
    if (!it->value && !it->error) return RT_SOURCE_IDLE;
    if (it->error) {
        out->error = it->error;
        out->value = (const uint8_t *)"\xff\xfe";
        out->value_len = 2;
        out->raw_length = 2;
        return RT_SOURCE_BAD;
    }
    out->ts = it->ts;
    out->value = (const uint8_t *)it->value;
    out->value_len = strlen(it->value);
    out->key = out->value;
    out->key_len = out->value_len;
    return RT_SOURCE_RECORD;
}

static void asrc_init(asrc *a, const item *items, size_t n, const char *name)
{
    memset(a, 0, sizeof *a);
    a->items = items;
    a->n = n;
    a->src = (rt_source){.name = name, .partition = -1, .finite = 1, .self = a, .next = asrc_next};
}

/* ---- the job: decode -> keep-first (retention) -> sinks ---- */

typedef struct job {
    int64_t retention;
    rt_kv *seen;
    char main_out[1024];
    char invalid_out[256];
    int main_finished, invalid_finished;
    const char *invalid_source;
    rt_op *decode, *dedupe, *sink_main, *sink_invalid;
} job;

static int decode_process(rt_op *op, int input, const rt_record *rec)
{
    const rt_source_record *sr = rec->data;
    if (rec->type == RT_TYPE_SOURCE_BAD) return rt_emit(op, 1, rec);
    assert_int_equal(rec->type, RT_TYPE_SOURCE);
    rt_record out = {rec->ts, 1, (void *)sr->value, sr->value_len, sr->key, sr->key_len};
    return rt_emit(op, 0, &out);
}

static int dedupe_open(rt_op *op)
{
    job *j = rt_op_self(op);
    return rt_kv_new(op, "seen", &j->seen);
}

static int dedupe_process(rt_op *op, int input, const rt_record *rec)
{
    job *j = rt_op_self(op);
    if (rec->len == 4 && !memcmp(rec->data, "boom", 4))
        return rt_op_fail(op, "value boom at ts %lld", (long long)rec->ts);
    if (rt_kv_get(j->seen, rec->key, rec->key_len, NULL)) return 0;
    if (rt_kv_put(j->seen, rec->key, rec->key_len, NULL, 0) < 0) return -1;
    if (rt_timer_register(op, rec->ts + j->retention, rec->key, rec->key_len) < 0) return -1;
    return rt_emit(op, 0, rec);
}

static int dedupe_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    job *j = rt_op_self(op);
    rt_kv_delete(j->seen, key, klen);
    return 0;
}

static int main_process(rt_op *op, int input, const rt_record *rec)
{
    job *j = rt_op_self(op);
    size_t n = strlen(j->main_out);
    snprintf(j->main_out + n, sizeof j->main_out - n, "%.*s@%lld ", (int)rec->len,
             (const char *)rec->data, (long long)rec->ts);
    return 0;
}

static int main_finish(rt_op *op)
{
    job *j = rt_op_self(op);
    j->main_finished++;
    return 0;
}

static int invalid_process(rt_op *op, int input, const rt_record *rec)
{
    job *j = rt_op_self(op);
    const rt_source_record *sr = rec->data;
    size_t n = strlen(j->invalid_out);
    snprintf(j->invalid_out + n, sizeof j->invalid_out - n, "%lld:%s:%d:%zu ",
             (long long)sr->offset, sr->error, sr->partition, sr->raw_length);
    j->invalid_source = sr->source;
    return 0;
}

static int invalid_finish(rt_op *op)
{
    job *j = rt_op_self(op);
    j->invalid_finished++;
    return 0;
}

static const rt_op_vtbl decode_vt = {.process = decode_process};
static const rt_op_vtbl dedupe_vt = {
    .open = dedupe_open, .process = dedupe_process, .on_timer = dedupe_timer};
static const rt_op_vtbl main_vt = {.process = main_process, .finish = main_finish};
static const rt_op_vtbl invalid_vt = {.process = invalid_process, .finish = invalid_finish};

static rt_task *build(job *j, asrc *src, const char *label, rt_metrics *m, rt_mem *mem,
                      int no_drain, uint32_t step)
{
    rt_task_config cfg = {.label = label,
                          .metrics = m,
                          .mem = mem,
                          .wm = {.max_out_of_orderness = 0},
                          .watermark_every = 1,
                          .step_records = step,
                          .no_drain = no_drain};
    char err[256];
    rt_task *t;
    assert_int_equal(rt_task_new(&cfg, &t, err, sizeof err), 0);
    rt_graph *g = rt_task_graph(t);
    assert_int_equal(
        rt_graph_add_op(g, "decode-log-request", NULL, &decode_vt, j, 1, 2, &j->decode), 0);
    assert_int_equal(rt_op_set_port_name(j->decode, 1, "invalid_record"), 0);
    assert_int_equal(rt_graph_add_op(g, "keep-first-value", NULL, &dedupe_vt, j, 1, 1, &j->dedupe),
                     0);
    assert_int_equal(rt_graph_add_op(g, "sink-main", NULL, &main_vt, j, 1, 0, &j->sink_main), 0);
    assert_int_equal(
        rt_graph_add_op(g, "sink-invalid_record", NULL, &invalid_vt, j, 1, 0, &j->sink_invalid), 0);
    assert_int_equal(rt_graph_connect(g, j->decode, 0, j->dedupe, 0), 0);
    assert_int_equal(rt_graph_connect(g, j->decode, 1, j->sink_invalid, 0), 0);
    assert_int_equal(rt_graph_connect(g, j->dedupe, 0, j->sink_main, 0), 0);
    rt_task_set_source(t, &src->src, j->decode, 0);
    if (rt_task_open(t, err, sizeof err)) fail_msg("open: %s", err);
    return t;
}

static int64_t metric(rt_metrics *m, const char *name, const char *labels)
{
    rt_metrics_snap s;
    assert_int_equal(rt_metrics_snapshot(m, &s), 0);
    int64_t v = -1;
    for (size_t i = 0; i < s.n; i++)
        if (!strcmp(s.samples[i].name, name) && !strcmp(s.samples[i].labels, labels))
            v = s.samples[i].value;
    rt_metrics_snap_free(&s);
    return v;
}

static const item scenario[] = {
    {10, "a", NULL},
    {20, "b", NULL},
    {30, "a", NULL},            /* duplicate within retention */
    {0, NULL, "bad frame crc"}, /* offset 3 */
    {150, "a", NULL},           /* timer a@110 not fired yet: dropped */
    {160, "a", NULL},           /* watermark 149 cleared it: passes */
};

static void test_run_with_drain(void **state)
{
    (void)state;
    rt_metrics *m;
    assert_int_equal(rt_metrics_new(&m), 0);
    job j = {.retention = 100};
    asrc src;
    asrc_init(&src, scenario, sizeof scenario / sizeof *scenario, "in.rec");
    rt_task *t = build(&j, &src, "0", m, NULL, 0, 4096);
    char err[256];
    assert_int_equal(rt_task_run(t, err, sizeof err), 0);
    assert_string_equal(j.main_out, "a@10 b@20 a@160 ");
    assert_string_equal(j.invalid_out, "3:bad frame crc:-1:2 ");
    assert_string_equal(j.invalid_source, "in.rec");
    assert_int_equal(j.main_finished, 1);
    assert_int_equal(j.invalid_finished, 1);
    /* drained: the last key's timer fired at the end of time and cleared it */
    assert_int_equal(rt_kv_count(j.seen), 0);
    assert_int_equal(rt_timer_count(j.dedupe), 0);
    rt_task_info info;
    rt_task_info_get(t, &info);
    assert_int_equal(info.records, 5);
    assert_int_equal(info.bad, 1);
    assert_int_equal(info.last_offset, 5);
    assert_int_equal(info.drained, 1);
    assert_int_equal(metric(m, "numRecordsIn", "operator=decode-log-request,task=0"), 6);
    assert_int_equal(metric(m, "numRecordsOut", "operator=decode-log-request,task=0"), 6);
    assert_int_equal(
        metric(m, "numRecordsOutSide", "operator=decode-log-request,output=invalid_record,task=0"),
        1);
    assert_int_equal(metric(m, "numRecordsIn", "operator=keep-first-value,task=0"), 5);
    assert_int_equal(metric(m, "numRecordsOut", "operator=keep-first-value,task=0"), 3);
    assert_int_equal(metric(m, "numRecordsIn", "operator=sink-main,task=0"), 3);
    assert_int_equal(metric(m, "numRecordsIn", "operator=sink-invalid_record,task=0"), 1);
    assert_int_equal(metric(m, "numBadSpans", "task=0"), 1);
    assert_true(metric(m, "currentInputWatermark", "operator=sink-main,task=0") == RT_TIME_MAX);
    rt_task_free(t);
    rt_metrics_free(m);
}

static void test_run_without_drain_keeps_state(void **state)
{
    (void)state;
    job j = {.retention = 100};
    asrc src;
    asrc_init(&src, scenario, sizeof scenario / sizeof *scenario, "in.rec");
    rt_task *t = build(&j, &src, "0", NULL, NULL, 1, 4096);
    char err[256];
    assert_int_equal(rt_task_run(t, err, sizeof err), 0);
    assert_string_equal(j.main_out, "a@10 b@20 a@160 ");
    assert_int_equal(j.main_finished, 0); /* no finish without drain */
    assert_int_equal(rt_kv_count(j.seen), 1);
    assert_int_equal(rt_timer_count(j.dedupe), 1); /* a@260 waits for a later run */
    rt_task_info info;
    rt_task_info_get(t, &info);
    assert_int_equal(info.drained, 0);
    assert_int_equal(info.done, 1);
    assert_int_equal(info.watermark, 159);
    assert_int_equal(rt_graph_watermark(rt_task_graph(t)), 159);
    /* the state is there for the final snapshot */
    rt_buf b;
    rt_buf_init(&b, 0);
    assert_int_equal(rt_graph_snapshot(rt_task_graph(t), &b), 0);
    assert_true(b.len > 0);
    rt_buf_free(&b);
    rt_task_free(t);
}

static void test_stop_request_between_steps(void **state)
{
    (void)state;
    static const item items[] = {
        {10, "a", NULL}, {20, "b", NULL}, {0, NULL, NULL}, {30, "c", NULL}};
    job j = {.retention = 1000};
    asrc src;
    asrc_init(&src, items, 4, "live");
    src.src.finite = 0;
    rt_task *t = build(&j, &src, "7", NULL, NULL, 0, 4096);
    char err[256];
    assert_int_equal(rt_task_step(t, err, sizeof err), RT_TASK_IDLE);
    assert_string_equal(j.main_out, "a@10 b@20 ");
    assert_int_equal(rt_timer_count(j.dedupe), 2);
    rt_task_request_stop(t, 1);
    rt_task_request_stop(t, 0); /* the first request wins */
    assert_int_equal(rt_task_step(t, err, sizeof err), RT_TASK_DONE);
    assert_int_equal(rt_task_step(t, err, sizeof err), RT_TASK_DONE);
    assert_string_equal(j.main_out, "a@10 b@20 "); /* c was never read */
    assert_int_equal(j.main_finished, 1);
    assert_int_equal(rt_timer_count(j.dedupe), 0);
    rt_task_free(t);
}

static void test_step_counts_records(void **state)
{
    (void)state;
    /* with 2 records per step the task needs several steps and says MORE in between */
    job j = {.retention = 100};
    asrc src;
    asrc_init(&src, scenario, sizeof scenario / sizeof *scenario, "in.rec");
    rt_task *t = build(&j, &src, "0", NULL, NULL, 0, 2);
    char err[256];
    int steps = 0, r;
    while ((r = rt_task_step(t, err, sizeof err)) == RT_TASK_MORE)
        steps++;
    assert_int_equal(r, RT_TASK_DONE);
    assert_int_equal(steps, 3);
    assert_string_equal(j.main_out, "a@10 b@20 a@160 ");
    rt_task_free(t);
}

static int64_t fake_now;
static int64_t stepping_clock(void *ctx)
{
    (void)ctx;
    return fake_now += 1000;
}

static void run_idle_scenario(int finite, const char *want)
{
    static const item items[] = {{10, "a", NULL}, {0, NULL, NULL}, {30, "a", NULL}};
    job j = {.retention = 100};
    asrc src;
    asrc_init(&src, items, 3, "in");
    src.src.finite = finite;
    rt_task_config cfg = {.label = "0",
                          .wm = {.idleness = 1, .idle_trailing = 0, .clock = stepping_clock},
                          .watermark_every = 1};
    char err[256];
    rt_task *t;
    fake_now = 1000000;
    assert_int_equal(rt_task_new(&cfg, &t, err, sizeof err), 0);
    rt_graph *g = rt_task_graph(t);
    assert_int_equal(rt_graph_add_op(g, "decode", NULL, &decode_vt, &j, 1, 2, &j.decode), 0);
    assert_int_equal(rt_graph_add_op(g, "keep-first", NULL, &dedupe_vt, &j, 1, 1, &j.dedupe), 0);
    assert_int_equal(rt_graph_add_op(g, "sink", NULL, &main_vt, &j, 1, 0, &j.sink_main), 0);
    rt_graph_connect(g, j.decode, 0, j.dedupe, 0);
    rt_graph_connect(g, j.dedupe, 0, j.sink_main, 0);
    rt_task_set_source(t, &src.src, j.decode, 0);
    assert_int_equal(rt_task_open(t, err, sizeof err), 0);
    int r;
    while ((r = rt_task_step(t, err, sizeof err)) != RT_TASK_DONE)
        assert_true(r >= 0);
    assert_string_equal(j.main_out, want);
    rt_task_free(t);
}

static void test_idleness_moves_live_sources_only(void **state)
{
    (void)state;
    /* live: the idle poll moves the watermark by processing time, the timer of a@10 fires and
     * the second a passes */
    run_idle_scenario(0, "a@10 a@30 ");
    /* finite: processing time never moves a file's watermark (spec/README.md "Arguments") */
    run_idle_scenario(1, "a@10 ");
}

/* ---- pool ---- */

enum { POOL_TASKS = 4, PER_TASK = 60 };

static void pool_items(item *items, asrc *src, int task, int fail_at)
{
    for (int k = 0; k < 8; k++)
        snprintf(src->names[k], sizeof src->names[k], "t%d-v%d", task, k);
    for (int i = 0; i < PER_TASK; i++) {
        items[i].ts = i * 10;
        items[i].value = i == fail_at ? "boom" : src->names[i % 8];
        items[i].error = NULL;
        if (i % 17 == 5 && i != fail_at) items[i].value = NULL; /* idle now and then */
    }
}

static void test_pool_two_threads_four_tasks(void **state)
{
    (void)state;
    rt_metrics *m;
    rt_mem *mem;
    assert_int_equal(rt_metrics_new(&m), 0);
    assert_int_equal(rt_mem_new(64 * RT_MEM_CHUNK, &mem), 0);
    static item items[POOL_TASKS][PER_TASK];
    static asrc srcs[POOL_TASKS];
    static job jobs[POOL_TASKS];
    rt_task *tasks[POOL_TASKS];
    rt_pool *p;
    assert_int_equal(rt_pool_new(2, &p), 0);
    for (int t = 0; t < POOL_TASKS; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].retention = 10000; /* longer than the input: every value passes once */
        asrc_init(&srcs[t], NULL, 0, "in.rec");
        pool_items(items[t], &srcs[t], t, -1);
        srcs[t].items = items[t];
        srcs[t].n = PER_TASK;
        char label[16];
        snprintf(label, sizeof label, "%d", t);
        tasks[t] = build(&jobs[t], &srcs[t], label, m, mem, 0, 3);
        assert_int_equal(rt_pool_add(p, tasks[t]), 0);
    }
    char err[256] = "";
    int rc = rt_pool_run(p, err, sizeof err);
    if (rc) fail_msg("pool: %s", err);
    for (int t = 0; t < POOL_TASKS; t++) {
        /* every value passes once, at its first occurrence that is not an idle slot */
        char want[512] = "";
        int passed[8] = {0};
        for (int i = 0; i < PER_TASK; i++) {
            if (i % 17 == 5 || passed[i % 8]) continue;
            passed[i % 8] = 1;
            size_t n = strlen(want);
            snprintf(want + n, sizeof want - n, "t%d-v%d@%d ", t, i % 8, i * 10);
        }
        assert_string_equal(jobs[t].main_out, want);
        assert_int_equal(jobs[t].main_finished, 1);
        assert_int_equal(rt_kv_count(jobs[t].seen), 0);
        char label[64];
        snprintf(label, sizeof label, "operator=keep-first-value,task=%d", t);
        assert_int_equal(metric(m, "numRecordsOut", label), 8);
        assert_int_equal(metric(m, "numRecordsIn", label), PER_TASK - 4);
    }
    rt_pool_free(p);
    for (int t = 0; t < POOL_TASKS; t++)
        rt_task_free(tasks[t]);
    assert_int_equal(rt_mem_used(mem), 0);
    rt_mem_free(mem);
    rt_metrics_free(m);
}

static void test_pool_failure_stops_and_names_task(void **state)
{
    (void)state;
    static item items[POOL_TASKS][PER_TASK];
    static asrc srcs[POOL_TASKS];
    static job jobs[POOL_TASKS];
    rt_task *tasks[POOL_TASKS];
    rt_pool *p;
    assert_int_equal(rt_pool_new(2, &p), 0);
    for (int t = 0; t < POOL_TASKS; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].retention = 10000;
        asrc_init(&srcs[t], NULL, 0, "in.rec");
        pool_items(items[t], &srcs[t], t, t == 2 ? 30 : -1);
        srcs[t].items = items[t];
        srcs[t].n = PER_TASK;
        char label[16];
        snprintf(label, sizeof label, "%d", t);
        tasks[t] = build(&jobs[t], &srcs[t], label, NULL, NULL, 0, 3);
        assert_int_equal(rt_pool_add(p, tasks[t]), 0);
    }
    char err[256] = "";
    assert_int_equal(rt_pool_run(p, err, sizeof err), -1);
    assert_non_null(strstr(err, "task 2"));
    assert_non_null(strstr(err, "keep-first-value"));
    assert_non_null(strstr(err, "value boom at ts 300"));
    for (int t = 0; t < POOL_TASKS; t++) {
        rt_task_info info;
        rt_task_info_get(tasks[t], &info);
        assert_int_equal(info.done, 1);
    }
    rt_pool_free(p);
    for (int t = 0; t < POOL_TASKS; t++)
        rt_task_free(tasks[t]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_with_drain),
        cmocka_unit_test(test_run_without_drain_keeps_state),
        cmocka_unit_test(test_stop_request_between_steps),
        cmocka_unit_test(test_step_counts_records),
        cmocka_unit_test(test_idleness_moves_live_sources_only),
        cmocka_unit_test(test_pool_two_threads_four_tasks),
        cmocka_unit_test(test_pool_failure_stops_and_names_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
