/* Metrics registry: get-or-create by (name, labels), thread-safe counting, the periodic log
 * lines with per-second rates, the Prometheus exposition. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/metrics.h"

static char *text(rt_buf *b)
{
    rt_buf_put_u8(b, 0);
    b->len--;
    return (char *)b->data;
}

static void test_same_name_and_labels_same_cell(void **state)
{
    (void)state;
    rt_metrics *m;
    assert_int_equal(rt_metrics_new(&m), 0);
    rt_counter *a, *b, *c;
    rt_gauge *g;
    assert_int_equal(rt_metrics_counter(m, "numRecordsIn", "operator=x,task=0", &a), 0);
    assert_int_equal(rt_metrics_counter(m, "numRecordsIn", "operator=x,task=0", &b), 0);
    assert_int_equal(rt_metrics_counter(m, "numRecordsIn", "operator=x,task=1", &c), 0);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    /* the same identity as another kind is refused */
    assert_int_equal(rt_metrics_gauge(m, "numRecordsIn", "operator=x,task=0", &g), -1);
    rt_counter_add(a, 2);
    rt_counter_add_1w(b, 3);
    assert_int_equal(rt_counter_get(a), 5);
    assert_int_equal(rt_counter_get(c), 0);
    rt_metrics_free(m);
}

typedef struct adder {
    rt_metrics *m;
    int n;
} adder;

static void *add_many(void *arg)
{
    adder *a = arg;
    rt_counter *c;
    /* registration races with other threads too */
    if (rt_metrics_counter(a->m, "shared", "", &c) < 0) return NULL;
    for (int i = 0; i < a->n; i++)
        rt_counter_add(c, 1);
    return NULL;
}

static void test_concurrent_adds(void **state)
{
    (void)state;
    rt_metrics *m;
    assert_int_equal(rt_metrics_new(&m), 0);
    pthread_t th[4];
    adder a = {m, 100000};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, add_many, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    rt_counter *c;
    assert_int_equal(rt_metrics_counter(m, "shared", "", &c), 0);
    assert_int_equal(rt_counter_get(c), 400000);
    rt_metrics_free(m);
}

static void test_format_lines_with_rates(void **state)
{
    (void)state;
    rt_metrics *m;
    assert_int_equal(rt_metrics_new(&m), 0);
    rt_counter *out;
    rt_gauge *wm;
    assert_int_equal(
        rt_metrics_counter(m, "numRecordsOut", "operator=join-impression-action,task=3", &out), 0);
    assert_int_equal(
        rt_metrics_gauge(m, "currentInputWatermark", "operator=join-impression-action,task=3", &wm),
        0);
    rt_counter_add(out, 100);
    rt_gauge_set(wm, -5);
    rt_metrics_snap prev, cur;
    assert_int_equal(rt_metrics_snapshot(m, &prev), 0);
    rt_counter_add(out, 300);
    assert_int_equal(rt_metrics_snapshot(m, &cur), 0);
    /* pin the interval instead of sleeping */
    prev.taken_ms = 1000;
    cur.taken_ms = 3000;
    rt_buf b;
    rt_buf_init(&b, 0);
    assert_int_equal(rt_metrics_format_lines(&cur, &prev, NULL, &b), 0);
    assert_string_equal(
        text(&b), "numRecordsOut operator=join-impression-action task=3 value=400\n"
                  "numRecordsOutPerSecond operator=join-impression-action task=3 value=150.0\n"
                  "currentInputWatermark operator=join-impression-action task=3 value=-5\n");
    rt_buf_reset(&b);
    assert_int_equal(rt_metrics_format_lines(&cur, NULL, "numRecords", &b), 0);
    assert_string_equal(text(&b),
                        "numRecordsOut operator=join-impression-action task=3 value=400\n");
    rt_buf_free(&b);
    rt_metrics_snap_free(&prev);
    rt_metrics_snap_free(&cur);
    rt_metrics_free(m);
}

static void test_prometheus_groups_by_name(void **state)
{
    (void)state;
    rt_metrics *m;
    assert_int_equal(rt_metrics_new(&m), 0);
    rt_counter *c;
    rt_gauge *g;
    rt_metrics_counter(m, "numRecordsIn", "operator=a,task=0", &c);
    rt_counter_add(c, 7);
    rt_metrics_gauge(m, "stateBytes", "operator=a,task=0", &g);
    rt_gauge_set(g, 64);
    rt_metrics_counter(m, "numRecordsIn", "operator=b,task=0", &c);
    rt_counter_add(c, 9);
    rt_metrics_counter(m, "uptime", "", &c);
    rt_metrics_snap s;
    assert_int_equal(rt_metrics_snapshot(m, &s), 0);
    rt_buf b;
    rt_buf_init(&b, 0);
    assert_int_equal(rt_metrics_format_prometheus(&s, &b), 0);
    assert_string_equal(text(&b), "# TYPE logproc_numRecordsIn counter\n"
                                  "logproc_numRecordsIn{operator=\"a\",task=\"0\"} 7\n"
                                  "logproc_numRecordsIn{operator=\"b\",task=\"0\"} 9\n"
                                  "# TYPE logproc_stateBytes gauge\n"
                                  "logproc_stateBytes{operator=\"a\",task=\"0\"} 64\n"
                                  "# TYPE logproc_uptime counter\n"
                                  "logproc_uptime 0\n");
    rt_buf_free(&b);
    rt_metrics_snap_free(&s);
    rt_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_name_and_labels_same_cell),
        cmocka_unit_test(test_concurrent_adds),
        cmocka_unit_test(test_format_lines_with_rates),
        cmocka_unit_test(test_prometheus_groups_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
