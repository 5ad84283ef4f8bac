/* Checkpoint files (runtime/checkpoint.h): the envelope round-trips every header field and states
 * of 0 bytes and 1 MiB; every single-byte corruption and every truncation is rejected with an
 * error naming the input; a future format version is rejected naming both versions; checkpoint
 * names round-trip and near-misses are rejected. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/crc32c.h"
#include "runtime/buf.h"
#include "runtime/checkpoint.h"

static ckpt_header sample_header(void)
{
    ckpt_header h = {0};
    snprintf(h.job, sizeof h.job, "content-metrics");
    snprintf(h.run_id, sizeof h.run_id, "0a1b2c3d");
    snprintf(h.task, sizeof h.task, "p3");
    h.id = 4242424242LL;
    h.created_ms = 1700000000123LL;
    h.flags = CKPT_FINAL | CKPT_DRAINED;
    h.watermark = -5; /* negative values must survive the little-endian i64 */
    return h;
}

static void encode(const ckpt_header *h, const uint8_t *state, size_t n, rt_buf *out)
{
    char err[256] = "";
    rt_buf_init(out, 0);
    assert_int_equal(ckpt_encode(h, state, n, out, err, sizeof err), 0);
}

static void check_round_trip(const uint8_t *state, size_t n)
{
    ckpt_header h = sample_header(), d;
    rt_buf b;
    encode(&h, state, n, &b);
    /* magic + version + header + state length + state + crc: the state is stored as is */
    assert_true(b.len > n + 8 + 4 + 4 + 8 + 4);
    const uint8_t *st = NULL;
    size_t sn = 99;
    char err[256] = "";
    assert_int_equal(ckpt_decode("mem", b.data, b.len, &d, &st, &sn, err, sizeof err), 0);
    assert_string_equal(d.job, h.job);
    assert_string_equal(d.run_id, h.run_id);
    assert_string_equal(d.task, h.task);
    assert_int_equal(d.id, h.id);
    assert_int_equal(d.created_ms, h.created_ms);
    assert_int_equal(d.flags, h.flags);
    assert_int_equal(d.watermark, h.watermark);
    assert_int_equal(d.version, CKPT_FORMAT_VERSION);
    assert_int_equal(sn, n);
    if (n) {
        /* the state span is borrowed from the input, not copied */
        assert_true(st >= b.data && st + n <= b.data + b.len);
        assert_memory_equal(st, state, n);
    }
    rt_buf_free(&b);
}

static void test_round_trip_empty_state(void **unused)
{
    check_round_trip(NULL, 0);
}

static void test_round_trip_1mib_state(void **unused)
{
    size_t n = (size_t)1 << 20;
    uint8_t *state = malloc(n);
    assert_non_null(state);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) { /* xorshift: no repeating pattern a shifted read could pass */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        state[i] = (uint8_t)x;
    }
    check_round_trip(state, n);
    free(state);
}

static void test_round_trip_extreme_header_values(void **unused)
{
    ckpt_header h = {0}, d;
    memset(h.job, 'j', sizeof h.job - 1); /* longest strings the fields hold */
    memset(h.run_id, 'r', sizeof h.run_id - 1);
    memset(h.task, 't', sizeof h.task - 1);
    h.id = INT64_MAX;
    h.created_ms = INT64_MIN;
    h.flags = CKPT_FINAL | CKPT_SAVEPOINT | CKPT_DRAINED;
    h.watermark = INT64_MIN;
    const uint8_t state[] = {0, 1, 2};
    rt_buf b;
    encode(&h, state, sizeof state, &b);
    const uint8_t *st;
    size_t sn;
    char err[256] = "";
    assert_int_equal(ckpt_decode("mem", b.data, b.len, &d, &st, &sn, err, sizeof err), 0);
    assert_string_equal(d.job, h.job);
    assert_string_equal(d.run_id, h.run_id);
    assert_string_equal(d.task, h.task);
    assert_int_equal(d.id, INT64_MAX);
    assert_int_equal(d.created_ms, INT64_MIN);
    assert_int_equal(d.flags, CKPT_FINAL | CKPT_SAVEPOINT | CKPT_DRAINED);
    assert_int_equal(d.watermark, INT64_MIN);
    assert_int_equal(sn, 3);
    assert_memory_equal(st, state, 3);
    rt_buf_free(&b);
}

static void test_encode_appends_after_existing_bytes(void **unused)
{
    ckpt_header h = sample_header(), d;
    const uint8_t state[] = "abc";
    rt_buf b;
    rt_buf_init(&b, 0);
    assert_int_equal(rt_buf_append(&b, "junk", 4), 0);
    char err[256] = "";
    assert_int_equal(ckpt_encode(&h, state, 3, &b, err, sizeof err), 0);
    const uint8_t *st;
    size_t sn;
    /* the checksum covers the envelope only, not what was in the buffer before it */
    assert_int_equal(ckpt_decode("mem", b.data + 4, b.len - 4, &d, &st, &sn, err, sizeof err), 0);
    assert_int_equal(sn, 3);
    assert_memory_equal(st, "abc", 3);
    rt_buf_free(&b);
}

static void test_encode_over_limit_fails(void **unused)
{
    ckpt_header h = sample_header();
    uint8_t state[200] = {0};
    rt_buf b;
    rt_buf_init(&b, 100);
    char err[256] = "";
    assert_int_equal(ckpt_encode(&h, state, sizeof state, &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "100 bytes"));
    assert_non_null(strstr(err, "p3"));
    rt_buf_free(&b);
}

/* Every byte of a small checkpoint, flipped in turn (all 8 single-bit flips and a full
 * inversion), must be rejected: magic, version, lengths, header, state, and the checksum itself. */
static void test_every_single_byte_flip_is_rejected(void **unused)
{
    ckpt_header h = sample_header();
    const uint8_t state[] = "state bytes of a task";
    rt_buf b;
    encode(&h, state, sizeof state - 1, &b);
    uint8_t *copy = malloc(b.len);
    assert_non_null(copy);
    for (size_t pos = 0; pos < b.len; pos++) {
        for (int m = 0; m < 9; m++) {
            uint8_t mask = m < 8 ? (uint8_t)(1u << m) : 0xff;
            memcpy(copy, b.data, b.len);
            copy[pos] ^= mask;
            ckpt_header d;
            const uint8_t *st = NULL;
            size_t sn = 0;
            char err[256] = "";
            int rc = ckpt_decode("store/p3/chk-000000000007", copy, b.len, &d, &st, &sn, err,
                                 sizeof err);
            if (rc != -1) fail_msg("flip of byte %zu with mask %02x was accepted", pos, mask);
            if (!strstr(err, "store/p3/chk-000000000007"))
                fail_msg("flip of byte %zu: error does not name the input: %s", pos, err);
        }
    }
    free(copy);
    rt_buf_free(&b);
}

static void test_every_truncation_is_rejected(void **unused)
{
    ckpt_header h = sample_header();
    const uint8_t state[] = "0123456789";
    rt_buf b;
    encode(&h, state, 10, &b);
    for (size_t len = 0; len < b.len; len++) {
        /* a fresh allocation of exactly len bytes, so ASan catches a read past the end */
        uint8_t *cut = malloc(len ? len : 1);
        assert_non_null(cut);
        memcpy(cut, b.data, len);
        ckpt_header d;
        const uint8_t *st = NULL;
        size_t sn = 0;
        char err[256] = "";
        int rc = ckpt_decode("cut.ckpt", cut, len, &d, &st, &sn, err, sizeof err);
        if (rc != -1) fail_msg("truncation to %zu of %zu bytes was accepted", len, b.len);
        if (!strstr(err, "cut.ckpt"))
            fail_msg("truncation to %zu: error does not name the input: %s", len, err);
        free(cut);
    }
    rt_buf_free(&b);
}

static void test_trailing_bytes_are_rejected(void **unused)
{
    ckpt_header h = sample_header();
    rt_buf b;
    encode(&h, (const uint8_t *)"xyz", 3, &b);
    assert_int_equal(rt_buf_append(&b, "\0", 1), 0);
    ckpt_header d;
    const uint8_t *st;
    size_t sn;
    char err[256] = "";
    assert_int_equal(ckpt_decode("long.ckpt", b.data, b.len, &d, &st, &sn, err, sizeof err), -1);
    assert_non_null(strstr(err, "long.ckpt"));
    rt_buf_free(&b);
}

static void put_u32_at(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A file written by a newer build, checksum intact: the version is what is wrong, and the error
 * says which version the file has and which this build reads. */
static void test_future_version_is_rejected_naming_both(void **unused)
{
    ckpt_header h = sample_header();
    rt_buf b;
    encode(&h, (const uint8_t *)"s", 1, &b);
    uint32_t future = CKPT_FORMAT_VERSION + 6;
    put_u32_at(b.data + 8, future); /* after the 8-byte magic */
    put_u32_at(b.data + b.len - 4, crc32c_update(0, b.data, b.len - 4));
    ckpt_header d;
    const uint8_t *st;
    size_t sn;
    char err[256] = "", want_file[32], want_build[32];
    assert_int_equal(ckpt_decode("new.ckpt", b.data, b.len, &d, &st, &sn, err, sizeof err), -1);
    snprintf(want_file, sizeof want_file, "%u", future);
    snprintf(want_build, sizeof want_build, "%d", CKPT_FORMAT_VERSION);
    assert_non_null(strstr(err, "new.ckpt"));
    assert_non_null(strstr(err, "version"));
    assert_non_null(strstr(err, want_file));
    /* the build's version appears apart from the file's (7 contains no "1") */
    char *rest = strstr(err, want_file) + strlen(want_file);
    assert_non_null(strstr(rest, want_build));

    /* version 0 never existed */
    put_u32_at(b.data + 8, 0);
    put_u32_at(b.data + b.len - 4, crc32c_update(0, b.data, b.len - 4));
    assert_int_equal(ckpt_decode("zero.ckpt", b.data, b.len, &d, &st, &sn, err, sizeof err), -1);
    assert_non_null(strstr(err, "zero.ckpt"));
    rt_buf_free(&b);
}

/* A header length pointing past the end, with a valid checksum: truncated, not a crash. */
static void test_lying_lengths_with_valid_checksum_are_rejected(void **unused)
{
    ckpt_header h = sample_header();
    rt_buf b;
    encode(&h, (const uint8_t *)"abcd", 4, &b);
    uint32_t lies[] = {0, 1, 0x7fffffffu, 0xffffffffu};
    for (size_t i = 0; i < sizeof lies / sizeof *lies; i++) {
        uint8_t *c = malloc(b.len);
        assert_non_null(c);
        memcpy(c, b.data, b.len);
        put_u32_at(c + 12, lies[i]); /* header length */
        put_u32_at(c + b.len - 4, crc32c_update(0, c, b.len - 4));
        ckpt_header d;
        const uint8_t *st;
        size_t sn;
        char err[256] = "";
        if (ckpt_decode("lie.ckpt", c, b.len, &d, &st, &sn, err, sizeof err) != -1)
            fail_msg("header length %u accepted", lies[i]);
        assert_non_null(strstr(err, "lie.ckpt"));
        free(c);
    }
    /* the state length (the u64 before the state) saying more than there is */
    uint8_t *c = malloc(b.len);
    assert_non_null(c);
    memcpy(c, b.data, b.len);
    size_t at = b.len - 4 - 4 - 8;
    c[at] = 5;
    put_u32_at(c + b.len - 4, crc32c_update(0, c, b.len - 4));
    ckpt_header d;
    const uint8_t *st;
    size_t sn;
    char err[256] = "";
    assert_int_equal(ckpt_decode("slen.ckpt", c, b.len, &d, &st, &sn, err, sizeof err), -1);
    assert_non_null(strstr(err, "slen.ckpt"));
    free(c);
    rt_buf_free(&b);
}

/* ---- names ---- */

static void test_name_round_trip_and_order(void **unused)
{
    int64_t ids[] = {0, 1, 7, 42, 1000, 123456789012LL, 999999999999LL};
    char prev[32] = "";
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        char name[32], key[64];
        ckpt_name(ids[i], name, sizeof name);
        assert_int_equal(strlen(name), 16);
        assert_memory_equal(name, "chk-", 4);
        assert_int_equal(ckpt_parse_name(name), ids[i]);
        snprintf(key, sizeof key, "store/task-p3/%s", name);
        assert_int_equal(ckpt_parse_name(key), ids[i]);
        /* lexicographic order of names is the order of ids */
        if (i) assert_true(strcmp(prev, name) < 0);
        snprintf(prev, sizeof prev, "%s", name);
    }
    char name[32];
    ckpt_name(42, name, sizeof name);
    assert_string_equal(name, "chk-000000000042");
}

static void test_parse_name_rejects_near_misses(void **unused)
{
    const char *bad[] = {
        "chk-12",             /* too short */
        "chk-00000000001x",   /* a non-digit */
        "chk-0000000000012",  /* 13 digits */
        "chk-00000000001",    /* 11 digits */
        "chk--00000000001",   /* a sign */
        "chk-+00000000001",   /* a sign */
        "chk- 00000000001",   /* a space */
        "CHK-000000000001",   /* case */
        "chk_000000000001",   /* separator */
        "ckp-000000000001",   /* prefix */
        "xchk-00000000001",   /* prefix */
        "chk-000000000001/",  /* last segment empty */
        "chk-000000000001.tmp",
        ".chk-000000000001",
        "chk-000000000001 ",
        "",
        "/",
        "chk-",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (ckpt_parse_name(bad[i]) != -1) fail_msg("\"%s\" parsed as a checkpoint name", bad[i]);
    assert_int_equal(ckpt_parse_name("x/chk-000000000007"), 7);
    assert_int_equal(ckpt_parse_name("a/b/c/chk-000000000123"), 123);
    assert_int_equal(ckpt_parse_name("/chk-000000000000"), 0);
    /* a directory named like a checkpoint does not make its contents one */
    assert_int_equal(ckpt_parse_name("chk-000000000007/x"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_empty_state),
        cmocka_unit_test(test_round_trip_1mib_state),
        cmocka_unit_test(test_round_trip_extreme_header_values),
        cmocka_unit_test(test_encode_appends_after_existing_bytes),
        cmocka_unit_test(test_encode_over_limit_fails),
        cmocka_unit_test(test_every_single_byte_flip_is_rejected),
        cmocka_unit_test(test_every_truncation_is_rejected),
        cmocka_unit_test(test_trailing_bytes_are_rejected),
        cmocka_unit_test(test_future_version_is_rejected_naming_both),
        cmocka_unit_test(test_lying_lengths_with_valid_checksum_are_rejected),
        cmocka_unit_test(test_name_round_trip_and_order),
        cmocka_unit_test(test_parse_name_rejects_near_misses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
