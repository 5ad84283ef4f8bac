/* The sliding hourly and daily counters against spec/other-jobs.md §E.2 (SlidingHourlyCounterTest,
 * SlidingDailyCounterTest) and the window rules of §B.7. Keys are action names, as in the spec. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobs/counter/sliding_counter.h"
#include "runtime/timers.h"
#include "test_counter_harness.h"

static void setup_hourly(harness *h, int64_t emit_ms)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(rt_graph_new(NULL, &h->g), 0);
    sliding_counter_config c;
    sliding_counter_hourly(&c, emit_ms);
    c.key_fn = h_key_count;
    assert_int_equal(sliding_counter_op_add(h->g, "count-hourly-event-test", &c, &h->op), 0);
    h_open(h);
}

static void setup_daily(harness *h)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(rt_graph_new(NULL, &h->g), 0);
    sliding_counter_config c;
    sliding_counter_daily(&c);
    c.key_fn = h_key_count;
    assert_int_equal(sliding_counter_op_add(h->g, "count-daily-event-test", &c, &h->op), 0);
    h_open(h);
}

static void test_hourly_scenario(void **s)
{
    harness h;
    setup_hourly(&h, 15 * MIN_MS);
    assert_int_equal(h_push(&h, "UNKNOWN", 10, 1, 10), 0);
    assert_int_equal(h_push(&h, "NAVIGATE", 21, 1, 11000), 0);
    assert_int_equal(rt_timer_count(h.op), 4);

    assert_int_equal(h_push(&h, "NAVIGATE", 899990, 1, 900000), 0);
    assert_int_equal(h_push(&h, "15m border", 900000, 1, 900000), 0);
    assert_int_equal(h_wm(&h, 900020), 0);
    /* both timers are at 900000; they fire in registration order */
    assert_string_equal(h_take(&h), "UNKNOWN 1h 1 ttl=0 @900000\n"
                                    "NAVIGATE 1h 2 ttl=0 @900000");

    assert_int_equal(h_wm(&h, 31 * MIN_MS), 0);
    assert_string_equal(h_take(&h), "15m border 1h 1 ttl=0 @1800000");

    assert_int_equal(h_push(&h, "NAVIGATE", 33 * MIN_MS, 1, 33 * MIN_MS), 0);
    assert_int_equal(h_wm(&h, 48 * MIN_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1h 3 ttl=0 @2700000");

    assert_int_equal(h_push(&h, "LIKE", 92 * MIN_MS, 1, 92 * MIN_MS), 0);
    assert_int_equal(h_wm(&h, 102 * MIN_MS), 0);
    assert_string_equal(h_take(&h), "UNKNOWN 1h 0 ttl=0 @4500000\n"
                                    "NAVIGATE 1h 1 ttl=0 @4500000\n"
                                    "15m border 1h 0 ttl=0 @5400000");

    assert_int_equal(h_wm(&h, 115 * MIN_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1h 0 ttl=0 @6300000\n"
                                    "LIKE 1h 1 ttl=0 @6300000");

    assert_int_equal(h_wm(&h, 165 * MIN_MS), 0);
    assert_string_equal(h_take(&h), "LIKE 1h 0 ttl=0 @9900000");
    assert_int_equal(rt_timer_count(h.op), 0);
    h_free(&h);
}

static void test_hourly_cart_quantity_is_the_count(void **s)
{
    harness h;
    setup_hourly(&h, 15 * MIN_MS);
    assert_int_equal(h_push(&h, "PURCHASE", 10, 5, 10), 0);
    assert_int_equal(h_wm(&h, 15 * MIN_MS), 0);
    assert_string_equal(h_take(&h), "PURCHASE 1h 5 ttl=0 @900000");
    h_free(&h);
}

static void test_hourly_same_window_adds_up(void **s)
{
    harness h;
    setup_hourly(&h, 15 * MIN_MS);
    assert_int_equal(h_push(&h, "NAVIGATE", 10 * MIN_MS, 1, 10 * MIN_MS), 0);
    assert_int_equal(h_push(&h, "NAVIGATE", 11 * MIN_MS, 1, 11 * MIN_MS), 0);
    /* one (key, time) timer per boundary, however many events */
    assert_int_equal(rt_timer_count(h.op), 2);
    assert_int_equal(h_wm(&h, 2 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1h 2 ttl=0 @900000\n"
                                    "NAVIGATE 1h 0 ttl=0 @4500000");
    h_free(&h);
}

static void test_hourly_timers_never_before_the_record_time(void **s)
{
    harness h;
    setup_hourly(&h, 15 * MIN_MS);
    /* event time 00:00:00.010 arriving with record time 02:00: both timers (00:15, 01:15) would
     * lie in the past, so both move to 02:15 (one timer) */
    assert_int_equal(h_push(&h, "LATE", 10, 1, 2 * HOUR_MS), 0);
    assert_int_equal(rt_timer_count(h.op), 1);
    assert_int_equal(h_wm(&h, 3 * HOUR_MS), 0);
    /* at 02:15 the 00:15 window is two hours old: dropped, so the only output is a zero */
    assert_string_equal(h_take(&h), "LATE 1h 0 ttl=0 @8100000");
    h_free(&h);
}

static void test_hourly_other_emit_window(void **s)
{
    harness h;
    setup_hourly(&h, 30 * MIN_MS);
    assert_int_equal(h_push(&h, "NAVIGATE", 31 * MIN_MS, 1, 31 * MIN_MS), 0);
    assert_int_equal(h_wm(&h, 3 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1h 1 ttl=0 @3600000\n"
                                    "NAVIGATE 1h 0 ttl=0 @7200000");
    h_free(&h);
}

static void test_window_keys(void **s)
{
    char k[64];
    sliding_counter_window_key(INT64_C(304758930000), 15 * MIN_MS, 0, k);
    assert_string_equal(k, "197908290730");
    sliding_counter_window_key(INT64_C(1000212360000), 15 * MIN_MS, 0, k);
    assert_string_equal(k, "200109111300");
    sliding_counter_window_key(INT64_C(1583018099999), 15 * MIN_MS, 0, k);
    assert_string_equal(k, "202002292315");
    sliding_counter_window_key(INT64_C(1583020799999), 15 * MIN_MS, 0, k);
    assert_string_equal(k, "202003010000");
    sliding_counter_window_key(INT64_C(304758000000), 4 * HOUR_MS, 1, k);
    assert_string_equal(k, "1979082908");
    sliding_counter_window_key(INT64_C(1000212360000), 4 * HOUR_MS, 1, k);
    assert_string_equal(k, "2001091116");
    sliding_counter_window_key(INT64_C(1583020799999), 4 * HOUR_MS, 1, k);
    assert_string_equal(k, "2020030100");
    /* 00:15:00.000 belongs to the window ending 00:30 (strictly after) */
    sliding_counter_window_key(15 * MIN_MS, 15 * MIN_MS, 0, k);
    assert_string_equal(k, "197001010030");
}

static void test_emit_window_values(void **s)
{
    char err[256];
    static const int ok[] = {1, 2, 3, 10, 12, 15, 20, 30, 60};
    static const int bad[] = {0, 7, 8, 31, 120};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(sliding_counter_check_emit_window("x", ok[i] * MIN_MS, err, sizeof err),
                         0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sliding_counter_check_emit_window("x", bad[i] * MIN_MS, err, sizeof err),
                         -1);
    assert_int_equal(
        sliding_counter_check_emit_window("queryEventHourlyEmitWindow", 90000, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "--queryEventHourlyEmitWindow"));
}

static void test_daily_first_output_and_decay(void **s)
{
    harness h;
    setup_daily(&h);
    assert_int_equal(h_push(&h, "NAVIGATE", 10, 1, 10), 0);
    assert_int_equal(rt_timer_count(h.op), 4);
    assert_int_equal(h_wm(&h, 4 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1d 1 ttl=0 @14400000\n"
                                    "NAVIGATE 30d 1 ttl=5184000 @14400000\n"
                                    "NAVIGATE 7d 1 ttl=0 @14400000");
    /* the 1-day count decays at +24 h, the 7-day at +7 d, the 30-day at +30 d */
    assert_int_equal(h_wm(&h, DAY_MS + 4 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1d 0 ttl=0 @100800000\n"
                                    "NAVIGATE 30d 1 ttl=5184000 @100800000\n"
                                    "NAVIGATE 7d 1 ttl=0 @100800000");
    assert_int_equal(h_wm(&h, 7 * DAY_MS + 4 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1d 0 ttl=0 @619200000\n"
                                    "NAVIGATE 30d 1 ttl=5184000 @619200000\n"
                                    "NAVIGATE 7d 0 ttl=0 @619200000");
    assert_int_equal(h_wm(&h, 30 * DAY_MS + 4 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1d 0 ttl=0 @2606400000\n"
                                    "NAVIGATE 30d 0 ttl=5184000 @2606400000\n"
                                    "NAVIGATE 7d 0 ttl=0 @2606400000");
    assert_int_equal(rt_timer_count(h.op), 0);
    h_free(&h);
}

static void test_daily_event_on_the_boundary_goes_to_the_next_window(void **s)
{
    harness h;
    setup_daily(&h);
    assert_int_equal(h_push(&h, "NAVIGATE", 4 * HOUR_MS, 1, 4 * HOUR_MS), 0);
    assert_int_equal(h_wm(&h, 4 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "");
    assert_int_equal(h_wm(&h, 8 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE 1d 1 ttl=0 @28800000\n"
                                    "NAVIGATE 30d 1 ttl=5184000 @28800000\n"
                                    "NAVIGATE 7d 1 ttl=0 @28800000");
    h_free(&h);
}

/* Daily LIKEs on days 32..61: the 30-day count climbs to 30 at 1468 h, then falls by one per
 * day from 1492 h while the 7-day count goes 6, 5, ..., 0; the 1-day count is 1 on each day with
 * an event and 0 the day after. */
static void test_daily_likes_month(void **s)
{
    harness h;
    setup_daily(&h);
    for (int d = 32; d <= 61; d++) {
        assert_int_equal(h_push(&h, "LIKE", d * DAY_MS, 1, d * DAY_MS), 0);
        assert_int_equal(h_wm(&h, d * DAY_MS + 4 * HOUR_MS), 0);
        char want[256];
        int n7 = d - 32 + 1 < 7 ? d - 32 + 1 : 7;
        snprintf(want, sizeof want,
                 "LIKE 1d 1 ttl=0 @%" PRId64 "\nLIKE 30d %d ttl=5184000 @%" PRId64
                 "\nLIKE 7d %d ttl=0 @%" PRId64,
                 d * DAY_MS + 4 * HOUR_MS, d - 32 + 1, d * DAY_MS + 4 * HOUR_MS, n7,
                 d * DAY_MS + 4 * HOUR_MS);
        assert_string_equal(h_take(&h), want);
    }
    assert_int_equal(1468 * HOUR_MS, 61 * DAY_MS + 4 * HOUR_MS);
    /* day 62 at 04:00 (1492 h): 29 in 30 days, 6 in 7 days, 0 today */
    assert_int_equal(h_wm(&h, 1492 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "LIKE 1d 0 ttl=0 @5371200000\n"
                                    "LIKE 30d 29 ttl=5184000 @5371200000\n"
                                    "LIKE 7d 6 ttl=0 @5371200000");
    for (int d = 63; d <= 68; d++) {
        assert_int_equal(h_wm(&h, d * DAY_MS + 4 * HOUR_MS), 0);
        char want[256];
        snprintf(want, sizeof want,
                 "LIKE 1d 0 ttl=0 @%" PRId64 "\nLIKE 30d %d ttl=5184000 @%" PRId64
                 "\nLIKE 7d %d ttl=0 @%" PRId64,
                 d * DAY_MS + 4 * HOUR_MS, 30 - (d - 61), d * DAY_MS + 4 * HOUR_MS, 7 - (d - 61),
                 d * DAY_MS + 4 * HOUR_MS);
        assert_string_equal(h_take(&h), want);
    }
    /* drain: the 30-day count reaches 0 on day 91 and nothing is left */
    assert_int_equal(rt_graph_finish(h.g), 0);
    const char *rest = h_take(&h);
    const char *last = strrchr(rest, '\n');
    assert_non_null(last);
    assert_non_null(strstr(rest, "LIKE 30d 1 ttl=5184000 @7790400000")); /* day 90 04:00 */
    assert_non_null(strstr(rest, "LIKE 30d 0 ttl=5184000 @7876800000")); /* day 91 04:00 */
    assert_int_equal(rt_timer_count(h.op), 0);
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hourly_scenario),
        cmocka_unit_test(test_hourly_cart_quantity_is_the_count),
        cmocka_unit_test(test_hourly_same_window_adds_up),
        cmocka_unit_test(test_hourly_timers_never_before_the_record_time),
        cmocka_unit_test(test_hourly_other_emit_window),
        cmocka_unit_test(test_window_keys),
        cmocka_unit_test(test_emit_window_values),
        cmocka_unit_test(test_daily_first_output_and_decay),
        cmocka_unit_test(test_daily_event_on_the_boundary_goes_to_the_next_window),
        cmocka_unit_test(test_daily_likes_month),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
