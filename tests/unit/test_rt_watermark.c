/* Source watermark generator: max - out-of-orderness - 1 ms, never backwards, idleness by a fake
 * processing-time clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/record.h"
#include "runtime/watermark.h"

static int64_t fake_now;
static int clock_reads;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    clock_reads++;
    return fake_now;
}

static void test_bounded_out_of_orderness(void **state)
{
    (void)state;
    rt_wmgen g;
    rt_wmgen_config cfg = {.max_out_of_orderness = 1000};
    rt_wmgen_init(&g, &cfg);
    assert_true(rt_wmgen_poll(&g) == RT_TIME_MIN); /* nothing seen: nothing is late */
    rt_wmgen_observe(&g, 5000);
    assert_int_equal(rt_wmgen_poll(&g), 3999);
    rt_wmgen_observe(&g, 4000); /* out of order: the max stays */
    assert_int_equal(rt_wmgen_poll(&g), 3999);
    rt_wmgen_observe(&g, 7000);
    rt_wmgen_observe(&g, 6500);
    assert_int_equal(rt_wmgen_poll(&g), 5999);
    assert_int_equal(rt_wmgen_current(&g), 5999);
}

static void test_zero_ooo_is_one_ms_behind(void **state)
{
    (void)state;
    rt_wmgen g;
    rt_wmgen_config cfg = {0};
    rt_wmgen_init(&g, &cfg);
    rt_wmgen_observe(&g, 100);
    assert_int_equal(rt_wmgen_poll(&g), 99);
}

static void test_never_backwards_after_restore(void **state)
{
    (void)state;
    rt_wmgen g;
    rt_wmgen_config cfg = {.max_out_of_orderness = 10};
    rt_wmgen_init(&g, &cfg);
    rt_wmgen_restore(&g, 1000, 1011);
    rt_wmgen_observe(&g, 500); /* older than the restored position */
    assert_int_equal(rt_wmgen_poll(&g), 1000);
    rt_wmgen_observe(&g, 2000);
    assert_int_equal(rt_wmgen_poll(&g), 1989);
}

static void test_saturates_near_min(void **state)
{
    (void)state;
    rt_wmgen g;
    rt_wmgen_config cfg = {.max_out_of_orderness = 1000};
    rt_wmgen_init(&g, &cfg);
    rt_wmgen_observe(&g, RT_TIME_MIN + 5);
    assert_true(rt_wmgen_poll(&g) == RT_TIME_MIN);
}

static void test_idleness_advances_by_processing_time(void **state)
{
    (void)state;
    rt_wmgen g;
    rt_wmgen_config cfg = {.max_out_of_orderness = 1000,
                           .idleness = 60000,
                           .idle_trailing = 15000,
                           .clock = fake_clock};
    fake_now = 1000000;
    rt_wmgen_init(&g, &cfg);
    rt_wmgen_observe(&g, 500000);
    assert_int_equal(rt_wmgen_poll(&g), 498999); /* arrival noted at now */
    fake_now += 59999;
    assert_int_equal(rt_wmgen_poll(&g), 498999); /* not idle yet */
    fake_now += 1;
    assert_int_equal(rt_wmgen_poll(&g), 1060000 - 15000 - 1);
    fake_now += 1000;
    assert_int_equal(rt_wmgen_poll(&g), 1061000 - 15000 - 1); /* follows the clock while idle */

    /* A record ends the idleness; its older event time does not pull the watermark back. */
    rt_wmgen_observe(&g, 600000);
    assert_int_equal(rt_wmgen_poll(&g), 1045999);
    fake_now += 30000;
    assert_int_equal(rt_wmgen_poll(&g), 1045999); /* 30 s since the record: not idle */
    fake_now += 30000;
    assert_int_equal(rt_wmgen_poll(&g), 1121000 - 15000 - 1);
}

static void test_idleness_starts_at_first_poll_without_records(void **state)
{
    (void)state;
    rt_wmgen g;
    rt_wmgen_config cfg = {.idleness = 100, .idle_trailing = 10, .clock = fake_clock};
    fake_now = 5000;
    rt_wmgen_init(&g, &cfg);
    assert_true(rt_wmgen_poll(&g) == RT_TIME_MIN);
    fake_now = 5099;
    assert_true(rt_wmgen_poll(&g) == RT_TIME_MIN);
    fake_now = 5100;
    assert_int_equal(rt_wmgen_poll(&g), 5089);
}

static void test_no_idleness_never_reads_the_clock(void **state)
{
    (void)state;
    rt_wmgen g;
    rt_wmgen_config cfg = {.max_out_of_orderness = 5, .clock = fake_clock};
    clock_reads = 0;
    rt_wmgen_init(&g, &cfg);
    for (int i = 0; i < 100; i++) {
        rt_wmgen_observe(&g, i * 10);
        rt_wmgen_poll(&g);
    }
    assert_int_equal(clock_reads, 0);
    assert_int_equal(rt_wmgen_current(&g), 990 - 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_out_of_orderness),
        cmocka_unit_test(test_zero_ooo_is_one_ms_behind),
        cmocka_unit_test(test_never_backwards_after_restore),
        cmocka_unit_test(test_saturates_near_min),
        cmocka_unit_test(test_idleness_advances_by_processing_time),
        cmocka_unit_test(test_idleness_starts_at_first_poll_without_records),
        cmocka_unit_test(test_no_idleness_never_reads_the_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
