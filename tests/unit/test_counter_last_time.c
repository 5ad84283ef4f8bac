/* LastTimeAndCount against spec/other-jobs.md §E.2 (LastTimeAndCountTest: ttl 90 days, jitter 0)
 * and the rules of §B.8. Keys are action names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobs/counter/last_time_count.h"
#include "runtime/timers.h"
#include "test_counter_harness.h"

static void setup(harness *h, int32_t (*hash_fn)(void *, const uint8_t *, size_t))
{
    memset(h, 0, sizeof *h);
    assert_int_equal(rt_graph_new(NULL, &h->g), 0);
    last_time_config c = {.ttl_days = 90, .key_fn = h_key_time, .hash_fn = hash_fn};
    assert_int_equal(last_time_op_add(h->g, "last-time-test-event", &c, &h->op), 0);
    h_open(h);
}

static void test_first_event_emits_at_once(void **s)
{
    harness h;
    setup(&h, NULL);
    assert_int_equal(h_push(&h, "UNKNOWN", 10, 1, 10), 0);
    assert_string_equal(h_take(&h), "UNKNOWN last=10 count=1 ttl=8035200 @10");
    /* the cleanup timer of day 0 is at day 92: the count is then 0 with the 3-day TTL */
    assert_int_equal(h_wm(&h, 92 * DAY_MS - 1), 0);
    assert_string_equal(h_take(&h), "");
    assert_int_equal(h_wm(&h, 92 * DAY_MS), 0);
    assert_string_equal(h_take(&h), "UNKNOWN last=10 count=0 ttl=259200 @7948800000");
    assert_int_equal(rt_timer_count(h.op), 0);
    h_free(&h);
}

static void test_counts_rise_and_last_time_follows(void **s)
{
    harness h;
    setup(&h, NULL);
    assert_int_equal(h_push(&h, "NAVIGATE", 11 * HOUR_MS, 1, 11 * HOUR_MS), 0);
    assert_int_equal(h_push(&h, "NAVIGATE", 33 * HOUR_MS, 1, 33 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE last=39600000 count=1 ttl=8035200 @39600000\n"
                                    "NAVIGATE last=118800000 count=2 ttl=8035200 @118800000");
    /* the last time is the last processed event's, not the largest */
    assert_int_equal(h_push(&h, "NAVIGATE", 20 * HOUR_MS, 1, 34 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "NAVIGATE last=72000000 count=3 ttl=8035200 @122400000");
    h_free(&h);
}

/* LIKE at 96 h (day 4), then one LIKE a day on days 32..99. */
static void test_ninety_day_window(void **s)
{
    harness h;
    setup(&h, NULL);
    assert_int_equal(h_push(&h, "LIKE", 96 * HOUR_MS, 1, 96 * HOUR_MS), 0);
    assert_string_equal(h_take(&h), "LIKE last=345600000 count=1 ttl=8035200 @345600000");
    char want[512];
    for (int d = 32; d <= 99; d++) {
        int64_t t = d * DAY_MS + 1000;
        assert_int_equal(h_wm(&h, t - 1), 0);
        if (d == 96) {
            /* the day-4 event's cleanup timer (day 96) re-emits before the day's event */
            snprintf(want, sizeof want, "LIKE last=%" PRId64 " count=64 ttl=8035200 @%" PRId64,
                     95 * DAY_MS + 1000, 96 * DAY_MS);
            assert_string_equal(h_take(&h), want);
        } else {
            assert_string_equal(h_take(&h), "");
        }
        assert_int_equal(h_push(&h, "LIKE", t, 1, t), 0);
        /* day 4 is counted while it is less than 90 days old: up to day 93 */
        int want_count = d <= 93 ? 1 + (d - 32 + 1) : d - 32 + 1;
        snprintf(want, sizeof want, "LIKE last=%" PRId64 " count=%d ttl=8035200 @%" PRId64, t,
                 want_count, t);
        assert_string_equal(h_take(&h), want);
    }
    /* after the day-99 event (68) the cleanup timers take one day each: 65 on day 124, then down
     * to 0 on day 189 (with the 3-day TTL); the timers of days 98 and 99 find nothing */
    assert_int_equal(rt_graph_finish(h.g), 0);
    for (int d = 124; d <= 189; d++) {
        int count = 65 - (d - 124);
        snprintf(want, sizeof want, "LIKE last=%" PRId64 " count=%d ttl=%d @%" PRId64,
                 99 * DAY_MS + 1000, count, count ? 8035200 : 259200, d * DAY_MS);
        assert_string_equal(h.lines[h.taken++], want);
    }
    assert_int_equal(h.taken, h.n);
    h_free(&h);
}

static void test_jitter_vectors(void **s)
{
    assert_int_equal(last_time_jitter(0), 0);
    assert_int_equal(last_time_jitter(1), 20656972);
    assert_int_equal(last_time_jitter(2432), 47038708);
    assert_int_equal(last_time_keep_ttl(90), 8035200);
    /* every jitter lies within one day */
    for (int32_t h = -100000; h < 100000; h += 7) {
        int64_t j = last_time_jitter(h);
        assert_true(j >= 0 && j <= DAY_MS);
    }
}

static int32_t hash_one(void *ctx, const uint8_t *key, size_t len)
{
    return 1;
}

static void test_cleanup_timer_carries_the_jitter(void **s)
{
    harness h;
    setup(&h, hash_one);
    /* day 0: h = keyHash + (int)(dayStart / 1000) = 1, jitter(1) = 20656972 ms */
    assert_int_equal(h_push(&h, "SHARE", 5, 1, 5), 0);
    h_take(&h);
    assert_int_equal(h_wm(&h, 92 * DAY_MS + 20656971), 0);
    assert_string_equal(h_take(&h), "");
    assert_int_equal(h_wm(&h, 92 * DAY_MS + 20656972), 0);
    assert_string_equal(h_take(&h), "SHARE last=5 count=0 ttl=259200 @7969456972");
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_event_emits_at_once),
        cmocka_unit_test(test_counts_rise_and_last_time_follows),
        cmocka_unit_test(test_ninety_day_window),
        cmocka_unit_test(test_jitter_vectors),
        cmocka_unit_test(test_cleanup_timer_carries_the_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
