/* CRC32C: published check values on the instruction path and the table path, chaining, and both
 * paths against a bit-at-a-time oracle at every alignment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "formats/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* The definition itself, one bit at a time: slow, obviously right, shares no code or table with
 * the module. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint8_t rnd_byte(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)(rng_state >> 24);
}

/* RFC 3720 appendix B.4 and the common "123456789" check value. */
static void check_vectors(crc_fn f)
{
    uint8_t buf[48];
    assert_int_equal(f(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(f(0, "", 0), 0u);
    memset(buf, 0, 32);
    assert_int_equal(f(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, 32);
    assert_int_equal(f(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(f(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(f(0, buf, 32), 0x113FDB5Cu);
    /* an iSCSI read command PDU */
    static const uint8_t pdu[48] = {0x01, 0xC0, 0, 0,    0,    0, 0, 0,    0,    0, 0,    0,
                                    0,    0,    0, 0,    0x14, 0, 0, 0,    0,    0, 0x04, 0,
                                    0,    0,    0, 0x14, 0,    0, 0, 0x18, 0x28, 0, 0,    0,
                                    0,    0,    0, 0,    0x02, 0, 0, 0,    0,    0, 0,    0};
    assert_int_equal(f(0, pdu, sizeof pdu), 0xD9963A56u);
}

static void test_vectors_table(void **state)
{
    (void)state;
    check_vectors(crc32c_update_sw);
}

static void test_vectors_hardware(void **state)
{
    (void)state;
    if (!crc32c_hw_available()) skip();
    check_vectors(crc32c_update_hw);
}

static void test_vectors_dispatch(void **state)
{
    (void)state;
    check_vectors(crc32c_update);
}

/* Every length 0..300 at every start alignment 0..7, against the oracle: catches a wrong tail or
 * head loop, a misaligned load, a slicing table built wrong. */
static void check_against_oracle(crc_fn f)
{
    static uint8_t buf[320];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = rnd_byte();
    for (size_t align = 0; align < 8; align++)
        for (size_t len = 0; len <= 300; len++)
            assert_int_equal(f(0, buf + align, len), crc_bitwise(buf + align, len));
}

static void test_oracle_table(void **state)
{
    (void)state;
    check_against_oracle(crc32c_update_sw);
}

static void test_oracle_hardware(void **state)
{
    (void)state;
    if (!crc32c_hw_available()) skip();
    check_against_oracle(crc32c_update_hw);
}

/* Updates chain: the record file computes a frame's CRC by extending its header's CRC. */
static void check_chaining(crc_fn f)
{
    uint8_t buf[200];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = rnd_byte();
    uint32_t whole = crc_bitwise(buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut++)
        assert_int_equal(f(f(0, buf, cut), buf + cut, sizeof buf - cut), whole);
}

static void test_chaining(void **state)
{
    (void)state;
    check_chaining(crc32c_update_sw);
    check_chaining(crc32c_update);
    if (crc32c_hw_available()) check_chaining(crc32c_update_hw);
}

/* A long buffer: the paths must agree far past any unrolled block size. */
static void test_long_buffer_paths_agree(void **state)
{
    (void)state;
    enum { N = 1 << 20 };
    static uint8_t buf[N];
    for (size_t i = 0; i < N; i++)
        buf[i] = rnd_byte();
    uint32_t sw = crc32c_update_sw(0, buf, N);
    assert_int_equal(sw, crc_bitwise(buf, N));
    assert_int_equal(crc32c_update(0, buf, N), sw);
    if (crc32c_hw_available()) assert_int_equal(crc32c_update_hw(0, buf, N), sw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_table),           cmocka_unit_test(test_vectors_hardware),
        cmocka_unit_test(test_vectors_dispatch),        cmocka_unit_test(test_oracle_table),
        cmocka_unit_test(test_oracle_hardware),         cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_long_buffer_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
