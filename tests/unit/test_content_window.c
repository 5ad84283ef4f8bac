/* content-metrics' window aggregation (spec/other-jobs.md §C.3, §C.4, §C.6) through a real
 * rt_graph: a root that forwards content events, the window operator, and a capture sink.
 * Pins: the grouping key and sums; emission exactly when the watermark reaches the window end - 1
 * (hourly, daily) or each step end - 1 (cumulate), rows ordered by platform then content id;
 * running sums from the day start at every step until the day ends; late records dropped and
 * counted; Java-style wrap-around; epoch-aligned windows before 1970. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/content/content_window.h"
#include "runtime/graph.h"
#include "runtime/metrics.h"
#include "runtime/operator.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define T0 1664582400000LL /* 2022-10-01T00:00:00Z */

typedef struct got_row {
    int64_t ts, start, end;
    uint64_t platform;
    char content[32];
    int64_t v[CM_NCOLS];
} got_row;

typedef struct harness {
    rt_graph *g;
    rt_op *root, *win, *cap;
    got_row rows[256];
    size_t n;
} harness;

static int fwd_process(rt_op *op, int input, const rt_record *rec)
{
    return rt_emit(op, 0, rec);
}

static int cap_process(rt_op *op, int input, const rt_record *rec)
{
    harness *h = rt_op_self(op);
    assert_int_equal(rec->type, CM_REC_METRICS);
    assert_true(h->n < sizeof h->rows / sizeof h->rows[0]);
    const cm_metrics_row *r = rec->data;
    got_row *g = &h->rows[h->n++];
    g->ts = rec->ts;
    g->start = r->window_start;
    g->end = r->window_end;
    g->platform = r->platform_id;
    assert_true(r->content_id_len < sizeof g->content);
    memcpy(g->content, r->content_id, r->content_id_len);
    g->content[r->content_id_len] = 0;
    memcpy(g->v, r->v, sizeof g->v);
    return 0;
}

static const rt_op_vtbl fwd_vt = {.process = fwd_process};
static const rt_op_vtbl cap_vt = {.process = cap_process};

static void setup(harness *h, const cm_window_config *wc)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(rt_graph_new(NULL, &h->g), 0);
    assert_int_equal(rt_graph_add_op(h->g, "source-test-events", NULL, &fwd_vt, NULL, 1, 1, &h->root), 0);
    assert_int_equal(cm_window_op_add(h->g, "aggregate-test-content-metrics", wc, &h->win), 0);
    assert_int_equal(rt_graph_add_op(h->g, "sink-test-rows", NULL, &cap_vt, h, 1, 0, &h->cap), 0);
    assert_int_equal(rt_graph_connect(h->g, h->root, 0, h->win, 0), 0);
    assert_int_equal(rt_graph_connect(h->g, h->win, 0, h->cap, 0), 0);
    char err[256];
    if (rt_graph_open(h->g, err, sizeof err)) fail_msg("open: %s", err);
}

/* Pushes one content event with a single non-zero column. */
static void push(harness *h, int64_t ts, uint64_t platform, const char *content, int col, int64_t v)
{
    cm_event e = {.platform_id = platform, .content_id = content};
    e.v[col] = v;
    rt_record r = {.ts = ts, .type = CM_REC_EVENT, .data = &e};
    assert_int_equal(rt_graph_push(h->g, h->root, 0, &r), 0);
}

static int64_t late_count(harness *h)
{
    rt_metrics_snap s;
    assert_int_equal(rt_metrics_snapshot(rt_graph_metrics(h->g), &s), 0);
    int64_t v = -1;
    for (size_t i = 0; i < s.n; i++)
        if (!strcmp(s.samples[i].name, "numLateRecordsDropped")) v = s.samples[i].value;
    rt_metrics_snap_free(&s);
    return v;
}

static void test_hourly_rows_when_the_watermark_reaches_the_hour_end(void **st)
{
    harness h;
    cm_window_config wc = {.kind = CM_WINDOW_TUMBLE, .size_ms = HOUR_MS};
    setup(&h, &wc);
    int64_t h22 = T0 + 22 * HOUR_MS;
    push(&h, h22 + 10 * MIN_MS, 1, "b", CM_VIEWS, 1);
    push(&h, h22 + 20 * MIN_MS, 1, "a", CM_IMPRESSIONS, 1);
    push(&h, h22 + HOUR_MS - 1, 2, "a", CM_IMPRESSIONS, 1);
    push(&h, h22 + 30 * MIN_MS, 1, "a", CM_IMPRESSIONS, 1);
    push(&h, h22 + 40 * MIN_MS, 1, "a", CM_GMV_USD_MICROS, 5000000);
    push(&h, h22 + HOUR_MS, 1, "a", CM_VIEWS, 1); /* the next hour */

    assert_int_equal(rt_graph_advance_watermark(h.g, h22 + HOUR_MS - 2), 0);
    assert_int_equal(h.n, 0); /* the window's last millisecond may still come */
    assert_int_equal(rt_graph_advance_watermark(h.g, h22 + HOUR_MS - 1), 0);
    assert_int_equal(h.n, 3);
    /* ordered by platform, then content id */
    assert_int_equal(h.rows[0].platform, 1);
    assert_string_equal(h.rows[0].content, "a");
    assert_int_equal(h.rows[0].v[CM_IMPRESSIONS], 2);
    assert_int_equal(h.rows[0].v[CM_GMV_USD_MICROS], 5000000);
    assert_int_equal(h.rows[0].v[CM_VIEWS], 0);
    assert_string_equal(h.rows[1].content, "b");
    assert_int_equal(h.rows[1].v[CM_VIEWS], 1);
    assert_int_equal(h.rows[2].platform, 2);
    assert_string_equal(h.rows[2].content, "a");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(h.rows[i].start, h22);
        assert_int_equal(h.rows[i].end, h22 + HOUR_MS);
        assert_int_equal(h.rows[i].ts, h22 + HOUR_MS - 1);
    }

    /* the 22h window has been emitted: a record for it is late, dropped and counted */
    push(&h, h22 + 50 * MIN_MS, 1, "a", CM_VIEWS, 1);
    assert_int_equal(late_count(&h), 1);
    assert_int_equal(rt_graph_finish(h.g), 0);
    assert_int_equal(h.n, 4);
    assert_int_equal(h.rows[3].start, h22 + HOUR_MS);
    assert_string_equal(h.rows[3].content, "a");
    assert_int_equal(h.rows[3].v[CM_VIEWS], 1);
    assert_int_equal(h.rows[3].v[CM_IMPRESSIONS], 0);
    rt_graph_free(h.g);
}

static void test_daily_window_sums_the_utc_day(void **st)
{
    harness h;
    cm_window_config wc = {.kind = CM_WINDOW_TUMBLE, .size_ms = DAY_MS};
    setup(&h, &wc);
    push(&h, T0, 1, "i-1-1", CM_NAVIGATES, 1);
    push(&h, T0 + DAY_MS - 1, 1, "i-1-1", CM_NAVIGATES, 1);
    push(&h, T0 + DAY_MS, 1, "i-1-1", CM_NAVIGATES, 1);
    assert_int_equal(rt_graph_finish(h.g), 0);
    assert_int_equal(h.n, 2);
    assert_int_equal(h.rows[0].start, T0);
    assert_int_equal(h.rows[0].v[CM_NAVIGATES], 2);
    assert_int_equal(h.rows[1].start, T0 + DAY_MS);
    assert_int_equal(h.rows[1].v[CM_NAVIGATES], 1);
    rt_graph_free(h.g);
}

static void test_sums_wrap_like_java_longs(void **st)
{
    harness h;
    cm_window_config wc = {.kind = CM_WINDOW_TUMBLE, .size_ms = HOUR_MS};
    setup(&h, &wc);
    push(&h, T0, 1, "x", CM_GMV_USD_MICROS, INT64_MAX);
    push(&h, T0, 1, "x", CM_GMV_USD_MICROS, 1);
    assert_int_equal(rt_graph_finish(h.g), 0);
    assert_int_equal(h.n, 1);
    assert_true(h.rows[0].v[CM_GMV_USD_MICROS] == INT64_MIN);
    rt_graph_free(h.g);
}

static void test_cumulate_emits_running_sums_at_every_step(void **st)
{
    harness h;
    cm_window_config wc = {.kind = CM_WINDOW_CUMULATE, .size_ms = DAY_MS, .step_ms = 6 * HOUR_MS};
    setup(&h, &wc);
    push(&h, T0 + 1 * HOUR_MS, 1, "a", CM_VIEWS, 1);
    push(&h, T0 + 7 * HOUR_MS, 1, "a", CM_VIEWS, 1);
    push(&h, T0 + 7 * HOUR_MS, 1, "b", CM_IMPRESSIONS, 1);
    push(&h, T0 + DAY_MS + 3 * HOUR_MS, 1, "a", CM_VIEWS, 1);

    /* up to 12:00 - 1 ms: the steps ending 06:00 and 12:00 */
    assert_int_equal(rt_graph_advance_watermark(h.g, T0 + 12 * HOUR_MS - 1), 0);
    assert_int_equal(h.n, 3);
    assert_int_equal(h.rows[0].end, T0 + 6 * HOUR_MS);
    assert_string_equal(h.rows[0].content, "a");
    assert_int_equal(h.rows[0].v[CM_VIEWS], 1);
    assert_int_equal(h.rows[1].end, T0 + 12 * HOUR_MS);
    assert_string_equal(h.rows[1].content, "a");
    assert_int_equal(h.rows[1].v[CM_VIEWS], 2);
    assert_string_equal(h.rows[2].content, "b");
    assert_int_equal(h.rows[2].v[CM_IMPRESSIONS], 1);

    /* a record of a step already emitted is late */
    push(&h, T0 + 11 * HOUR_MS, 1, "a", CM_VIEWS, 1);
    assert_int_equal(late_count(&h), 1);

    assert_int_equal(rt_graph_finish(h.g), 0);
    /* day 1: 06 a; 12 a b; 18 a b; 24 a b. day 2: 06 12 18 24 a */
    assert_int_equal(h.n, 11);
    int64_t want_end[] = {6, 12, 12, 18, 18, 24, 24, 30, 36, 42, 48};
    for (size_t i = 0; i < 11; i++) {
        assert_int_equal(h.rows[i].end, T0 + want_end[i] * HOUR_MS);
        assert_int_equal(h.rows[i].ts, T0 + want_end[i] * HOUR_MS - 1);
        assert_int_equal(h.rows[i].start, i < 7 ? T0 : T0 + DAY_MS);
    }
    assert_int_equal(h.rows[5].v[CM_VIEWS], 2); /* day 1 totals at the day end */
    assert_int_equal(h.rows[6].v[CM_IMPRESSIONS], 1);
    for (size_t i = 7; i < 11; i++) {
        assert_string_equal(h.rows[i].content, "a");
        assert_int_equal(h.rows[i].v[CM_VIEWS], 1); /* the new day starts from zero */
    }
    rt_graph_free(h.g);
}

static void test_cumulate_with_one_step_per_day_is_the_daily_total(void **st)
{
    harness h;
    cm_window_config wc = {.kind = CM_WINDOW_CUMULATE, .size_ms = DAY_MS, .step_ms = DAY_MS};
    setup(&h, &wc);
    push(&h, T0 + 22 * HOUR_MS, 1, "i-1-1", CM_VIEWS, 1);
    push(&h, T0 + 23 * HOUR_MS, 1, "i-1-1", CM_VIEWS, 1);
    assert_int_equal(rt_graph_finish(h.g), 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.rows[0].start, T0);
    assert_int_equal(h.rows[0].end, T0 + DAY_MS);
    assert_int_equal(h.rows[0].v[CM_VIEWS], 2);
    rt_graph_free(h.g);
}

static void test_windows_align_to_the_epoch(void **st)
{
    assert_int_equal(cm_window_start(-1, HOUR_MS), -HOUR_MS);
    assert_int_equal(cm_window_start(0, HOUR_MS), 0);
    assert_int_equal(cm_window_start(T0 + 22 * HOUR_MS + 49 * MIN_MS, HOUR_MS), T0 + 22 * HOUR_MS);
    assert_int_equal(cm_window_start(T0 + 22 * HOUR_MS, DAY_MS), T0);
    rt_graph *g;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *op;
    cm_window_config bad = {.kind = CM_WINDOW_CUMULATE, .size_ms = DAY_MS, .step_ms = 7 * HOUR_MS};
    assert_int_equal(cm_window_op_add(g, "aggregate-bad-content-metrics", &bad, &op), -1);
    bad.step_ms = 0;
    assert_int_equal(cm_window_op_add(g, "aggregate-bad-content-metrics", &bad, &op), -1);
    rt_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hourly_rows_when_the_watermark_reaches_the_hour_end),
        cmocka_unit_test(test_daily_window_sums_the_utc_day),
        cmocka_unit_test(test_sums_wrap_like_java_longs),
        cmocka_unit_test(test_cumulate_emits_running_sums_at_every_step),
        cmocka_unit_test(test_cumulate_with_one_step_per_day_is_the_daily_total),
        cmocka_unit_test(test_windows_align_to_the_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
