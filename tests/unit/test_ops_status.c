/* The REST API's status documents (ops/status.c) from hand-made metric snapshots, the graph's
 * plan (rt_graph_plan_json) and the Prometheus rates (rt_metrics_format_prometheus_rates). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "ops/status.h"
#include "runtime/graph.h"
#include "runtime/operator.h"
#include "runtime/record.h"

static json_t *parse(rt_buf *b)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)b->data, b->len, 0, &je);
    assert_non_null(j);
    return j;
}

static json_t *find(json_t *arr, const char *id)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        if (!strcmp(json_string_value(json_object_get(e, "id")), id)) return e;
    }
    return NULL;
}

static int64_t ival(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void test_status_folds_operators_tasks_and_rates(void **state)
{
    (void)state;
    rt_metrics *m;
    assert_int_equal(rt_metrics_new(&m), 0);
    rt_counter *in0, *in1, *side;
    rt_gauge *wm0, *wm1, *ck0, *ck1, *ckt, *other;
    assert_int_equal(rt_metrics_counter(m, "numRecordsIn", "operator=join,task=p0", &in0), 0);
    assert_int_equal(rt_metrics_counter(m, "numRecordsIn", "operator=join,task=p1", &in1), 0);
    assert_int_equal(rt_metrics_gauge(m, "currentInputWatermark", "operator=join,task=p0", &wm0), 0);
    assert_int_equal(rt_metrics_gauge(m, "currentInputWatermark", "operator=join,task=p1", &wm1), 0);
    assert_int_equal(rt_metrics_counter(m, "numRecordsOutSide", "operator=join,output=late,task=p0", &side), 0);
    assert_int_equal(rt_metrics_gauge(m, "numberOfCompletedCheckpoints", "task=p0", &ck0), 0);
    assert_int_equal(rt_metrics_gauge(m, "numberOfCompletedCheckpoints", "task=p1", &ck1), 0);
    assert_int_equal(rt_metrics_gauge(m, "lastCheckpointTime", "task=p1", &ckt), 0);
    assert_int_equal(rt_metrics_gauge(m, "cacheEntries", "cache=content", &other), 0);
    rt_gauge_set(wm0, 5000);
    rt_gauge_set(wm1, RT_TIME_MIN); /* no watermark yet: ignored by the minimum */
    rt_counter_add(in0, 10);
    rt_counter_add(in1, 5);
    rt_counter_add(side, 2);
    rt_gauge_set(ck0, 3);
    rt_gauge_set(ck1, 4);
    rt_gauge_set(ckt, 1700000000000);
    rt_gauge_set(other, 7);
    rt_metrics_snap prev, cur;
    assert_int_equal(rt_metrics_snapshot(m, &prev), 0);
    rt_counter_add(in0, 20);
    rt_counter_add(in1, 10);
    assert_int_equal(rt_metrics_snapshot(m, &cur), 0);
    prev.taken_ms = cur.taken_ms - 2000; /* 30 records in 2 s */

    ops_job_info ji = {.id = "blue.flat-output", .job = "flat-output", .run_id = "0123abcd",
                       .state = "RUNNING", .start_time_ms = 1000, .now_ms = 4000,
                       .checkpoint_store = "ck",
                       .plan_json = "[{\"id\":\"src\",\"name\":\"s\",\"inputs\":[]},"
                                    "{\"id\":\"join\",\"name\":\"j\",\"inputs\":[\"src\"]}]"};
    rt_buf b;
    rt_buf_init(&b, 1 << 20);
    assert_int_equal(ops_status_json(&ji, &cur, &prev, &b), 0);
    json_t *j = parse(&b);
    assert_string_equal(json_string_value(json_object_get(j, "jid")), "blue.flat-output");
    assert_int_equal(ival(j, "duration"), 3000);
    json_t *ops = json_object_get(j, "operators");
    assert_int_equal(json_array_size(ops), 2); /* plan order: src, join */
    assert_string_equal(json_string_value(json_object_get(json_array_get(ops, 0), "id")), "src");
    json_t *join = find(ops, "join");
    assert_int_equal(ival(join, "numRecordsIn"), 45);
    assert_int_equal(ival(join, "currentInputWatermark"), 5000);
    assert_true(json_real_value(json_object_get(join, "numRecordsInPerSecond")) > 14.9 &&
                json_real_value(json_object_get(join, "numRecordsInPerSecond")) < 15.1);
    assert_int_equal(ival(json_object_get(join, "side"), "late"), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(join, "inputs"), 0)), "src");
    json_t *tasks = json_object_get(j, "tasks");
    assert_int_equal(json_array_size(tasks), 2);
    json_t *ck = json_object_get(j, "checkpoints");
    assert_int_equal(ival(ck, "completed"), 7);
    assert_int_equal(ival(ck, "lastTime"), 1700000000000);
    json_t *oth = json_object_get(j, "other");
    assert_int_equal(json_array_size(oth), 1);
    assert_int_equal(ival(json_array_get(oth, 0), "value"), 7);
    json_decref(j);

    /* without a previous snapshot: no rates */
    b.len = 0;
    assert_int_equal(ops_status_json(&ji, &cur, NULL, &b), 0);
    j = parse(&b);
    assert_null(json_object_get(find(json_object_get(j, "operators"), "join"), "numRecordsInPerSecond"));
    json_decref(j);

    /* Flink's shapes */
    b.len = 0;
    assert_int_equal(ops_plan_json(&ji, &b), 0);
    j = parse(&b);
    json_t *nodes = json_object_get(json_object_get(j, "plan"), "nodes");
    assert_int_equal(json_array_size(nodes), 2);
    json_t *jn = find(nodes, "join");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(jn, "inputs"), 0), "id")), "src");
    json_decref(j);
    b.len = 0;
    assert_int_equal(ops_checkpoints_json(&ji, &cur, &b), 0);
    j = parse(&b);
    assert_int_equal(ival(json_object_get(j, "counts"), "completed"), 7);
    assert_int_equal(ival(json_object_get(json_object_get(j, "latest"), "completed"), "latest_ack_timestamp"),
                     1700000000000);
    json_decref(j);

    /* a plan that is not JSON is an error, not a crash */
    ji.plan_json = "[{";
    b.len = 0;
    assert_int_equal(ops_status_json(&ji, &cur, &prev, &b), -1);

    /* Prometheus rates: one gauge per counter sample */
    b.len = 0;
    assert_int_equal(rt_metrics_format_prometheus_rates(&cur, &prev, &b), 0);
    rt_buf_put_u8(&b, 0);
    const char *txt = (const char *)b.data;
    assert_non_null(strstr(txt, "# TYPE logproc_numRecordsInPerSecond gauge\n"));
    assert_non_null(strstr(txt, "logproc_numRecordsInPerSecond{operator=\"join\",task=\"p0\"} 10.000\n"));
    assert_non_null(strstr(txt, "logproc_numRecordsInPerSecond{operator=\"join\",task=\"p1\"} 5.000\n"));
    assert_null(strstr(txt, "currentInputWatermarkPerSecond")); /* gauges have no rate */
    rt_buf_free(&b);
    rt_metrics_snap_free(&prev);
    rt_metrics_snap_free(&cur);
    rt_metrics_free(m);
}

static int pass(rt_op *op, int input, const rt_record *rec)
{
    (void)input;
    return rt_emit(op, 0, rec);
}

static void test_graph_plan_lists_inputs_once(void **state)
{
    (void)state;
    static const rt_op_vtbl vt = {.process = pass};
    rt_graph *g;
    rt_graph_config cfg = {0};
    assert_int_equal(rt_graph_new(&cfg, &g), 0);
    rt_op *a, *b, *c;
    assert_int_equal(rt_graph_add_op(g, "a", "first \"op\"", &vt, NULL, 1, 1, &a), 0);
    assert_int_equal(rt_graph_add_op(g, "b", "second", &vt, NULL, 1, 1, &b), 0);
    assert_int_equal(rt_graph_add_op(g, "c", "third", &vt, NULL, 2, 1, &c), 0);
    assert_int_equal(rt_graph_connect(g, a, 0, b, 0), 0);
    assert_int_equal(rt_graph_connect(g, b, 0, c, 0), 0);
    assert_int_equal(rt_graph_connect(g, b, 0, c, 1), 0); /* same upstream on two inputs */
    assert_int_equal(rt_graph_connect(g, a, 0, c, 1), 0);
    rt_buf out;
    rt_buf_init(&out, 1 << 16);
    assert_int_equal(rt_graph_plan_json(g, &out), 0);
    json_t *j = parse(&out);
    assert_int_equal(json_array_size(j), 3);
    json_t *jc = find(j, "c");
    json_t *ins = json_object_get(jc, "inputs");
    assert_int_equal(json_array_size(ins), 2);
    assert_string_equal(json_string_value(json_object_get(find(j, "a"), "name")), "first \"op\"");
    json_decref(j);
    rt_buf_free(&out);
    rt_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_folds_operators_tasks_and_rates),
        cmocka_unit_test(test_graph_plan_lists_inputs_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
