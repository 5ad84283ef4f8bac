/* text_u64_dec, text_i64_dec and text_u64_hex write exactly what printf's PRIu64, PRId64 and
 * PRIx64 write (the counter's Redis commands and keys depend on it), across the edges and a
 * sweep of values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "formats/text.h"

static void check_u64(uint64_t v)
{
    char got[21], want[32];
    size_t n = text_u64_dec(got, v);
    snprintf(want, sizeof want, "%" PRIu64, v);
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
    n = text_u64_hex(got, v);
    snprintf(want, sizeof want, "%" PRIx64, v);
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
}

static void check_i64(int64_t v)
{
    char got[21], want[32];
    size_t n = text_i64_dec(got, v);
    snprintf(want, sizeof want, "%" PRId64, v);
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
}

static void test_edges(void **state)
{
    (void)state;
    check_u64(0);
    check_u64(9);
    check_u64(10);
    check_u64(UINT64_MAX);
    check_i64(0);
    check_i64(-1);
    check_i64(INT64_MAX);
    check_i64(INT64_MIN);
    check_i64(INT64_MIN + 1);
}

static void test_sweep(void **state)
{
    (void)state;
    /* every power of ten and of two, and their neighbours */
    uint64_t p = 1;
    for (int i = 0; i < 20; i++, p *= 10) {
        check_u64(p - 1);
        check_u64(p);
        check_u64(p + 1);
        check_i64(-(int64_t)(p % (uint64_t)INT64_MAX));
    }
    for (int i = 0; i < 64; i++) {
        check_u64((uint64_t)1 << i);
        check_i64(-(int64_t)((uint64_t)1 << (i < 63 ? i : 62)));
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        check_u64(x >> (i % 64));
        check_i64((int64_t)x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
