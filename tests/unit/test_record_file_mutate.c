/* The record-file reader on a few thousand seeded, mutated files (the deterministic sibling of
 * tests/fuzz/fuzz_record_file.c): it never crashes or reads out of bounds (ASan), what it returns
 * tiles the file exactly (every byte is in one record or one bad span, in order), every record's
 * header and frame CRC verify and its size is within the limit, and garbage inserted between
 * frames never costs a record. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/record_file.h"

#define ITERATIONS 3000

static uint64_t rng;

static uint64_t next_u64(void)
{
    /* splitmix64: the sequence is fixed by the seed, so a failure reproduces */
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t below(size_t n)
{
    return n ? (size_t)(next_u64() % n) : 0;
}

/* Bit-at-a-time CRC32C: the oracle for "every returned record verifies". */
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

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void reserve(buf *b, size_t extra)
{
    if (b->n + extra <= b->cap) return;
    b->cap = (b->n + extra) * 2;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
}

static void append(buf *b, const void *d, size_t n)
{
    reserve(b, n);
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A frame built from the documented layout, not by the writer, so the reader is checked against
 * the format rather than against its sibling. */
static void append_frame(buf *b, int64_t ts, const uint8_t *k, size_t kl, const uint8_t *v,
                         size_t vl)
{
    size_t start = b->n;
    reserve(b, RECFILE_FRAME_OVERHEAD + kl + vl);
    uint8_t *f = b->p + start;
    memcpy(f, RECFILE_SYNC, 4);
    put32(f + 4, (uint32_t)kl);
    put32(f + 8, (uint32_t)vl);
    put32(f + 12, (uint32_t)(uint64_t)ts);
    put32(f + 16, (uint32_t)((uint64_t)ts >> 32));
    put32(f + 20, crc_bitwise(f, 20));
    if (kl) memcpy(f + 24, k, kl);
    if (vl) memcpy(f + 24 + kl, v, vl);
    put32(f + 24 + kl + vl, crc_bitwise(f, 24 + kl + vl));
    b->n += RECFILE_FRAME_OVERHEAD + kl + vl;
}

static void random_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)next_u64();
}

/* A base file of 20..60 frames with sizes from empty to a few KB. frames[] gets their offsets. */
static void base_file(buf *b, size_t *offs, size_t *nframes)
{
    uint8_t payload[4096];
    b->n = 0;
    *nframes = 20 + below(41);
    for (size_t i = 0; i < *nframes; i++) {
        size_t kl = below(4) == 0 ? 0 : below(40);
        size_t vl = below(5) == 0 ? 0 : below(below(8) == 0 ? sizeof payload : 300);
        random_bytes(payload, kl + vl > sizeof payload ? sizeof payload : kl + vl);
        if (kl + vl > sizeof payload) vl = sizeof payload - kl;
        offs[i] = b->n;
        append_frame(b, (int64_t)next_u64(), payload, kl, payload + kl, vl);
    }
}

/* Applies 1..6 random mutations of the kinds real damage takes. */
static void mutate(buf *b)
{
    int count = 1 + (int)below(6);
    for (int m = 0; m < count && b->n > 0; m++) {
        size_t at = below(b->n);
        switch (below(8)) {
        case 0: /* flip a bit */
            b->p[at] ^= (uint8_t)(1u << below(8));
            break;
        case 1: { /* overwrite a range with noise */
            size_t len = 1 + below(64);
            if (len > b->n - at) len = b->n - at;
            random_bytes(b->p + at, len);
            break;
        }
        case 2: { /* insert noise */
            size_t len = 1 + below(100);
            reserve(b, len);
            memmove(b->p + at + len, b->p + at, b->n - at);
            random_bytes(b->p + at, len);
            b->n += len;
            break;
        }
        case 3: { /* delete a range */
            size_t len = 1 + below(200);
            if (len > b->n - at) len = b->n - at;
            memmove(b->p + at, b->p + at + len, b->n - at - len);
            b->n -= len;
            break;
        }
        case 4: /* truncate */
            b->n = at;
            break;
        case 5: { /* insert a bare sync marker */
            reserve(b, 4);
            memmove(b->p + at + 4, b->p + at, b->n - at);
            memcpy(b->p + at, RECFILE_SYNC, 4);
            b->n += 4;
            break;
        }
        case 6: { /* duplicate a range (a retried write) */
            size_t len = 1 + below(300);
            if (len > b->n - at) len = b->n - at;
            reserve(b, len);
            memmove(b->p + at + len, b->p + at, b->n - at);
            b->n += len;
            break;
        }
        case 7: /* a huge length in a header (CRC then fails, or not, if the header is redone) */
            if (at + 24 <= b->n && !memcmp(b->p + at, RECFILE_SYNC, 4)) {
                put32(b->p + at + 8, (uint32_t)next_u64());
                if (below(2)) put32(b->p + at + 20, crc_bitwise(b->p + at, 20));
            } else {
                b->p[at] = (uint8_t)RECFILE_SYNC[0];
            }
            break;
        }
    }
}

/* Reads data[0..n) and checks the invariants; returns the number of records and of bad spans. */
static void read_checked(const uint8_t *file, size_t n, size_t max, size_t *nrec, size_t *nbad,
                         size_t *rec_offs, size_t rec_cap)
{
    /* An exact-size copy, so a read one byte past the end is an ASan report. */
    uint8_t *data = malloc(n ? n : 1);
    assert_non_null(data);
    if (n) memcpy(data, file, n);
    recfile_reader *r;
    assert_int_equal(recfile_reader_open_mem(data, n, max, &r), 0);
    uint64_t expect_at = 0;
    int last_bad = 0;
    *nrec = *nbad = 0;
    recfile_record rec;
    recfile_bad bad;
    int rc;
    while ((rc = recfile_next(r, &rec, &bad)) != 0) {
        if (rc == 1) {
            assert_int_equal(rec.offset, expect_at); /* offsets increase with no gap */
            const uint8_t *f = data + rec.offset;
            size_t body = 24 + rec.key_len + rec.value_len;
            assert_true(rec.offset + body + 4 <= n);
            assert_memory_equal(f, RECFILE_SYNC, 4);
            assert_int_equal(le32(f + 20), crc_bitwise(f, 20));
            assert_int_equal(le32(f + body), crc_bitwise(f, body));
            assert_true(rec.key_len + rec.value_len <= max);
            assert_ptr_equal(rec.key, f + 24);
            assert_ptr_equal(rec.value, f + 24 + rec.key_len);
            if (*nrec < rec_cap) rec_offs[*nrec] = rec.offset;
            (*nrec)++;
            expect_at = rec.offset + body + 4;
            last_bad = 0;
        } else {
            assert_int_equal(rc, 2);
            assert_int_equal(bad.offset, expect_at);
            assert_true(bad.full_len > 0);
            assert_true(bad.offset + bad.full_len <= n);
            assert_true(bad.raw_len <= max && bad.raw_len <= bad.full_len);
            assert_ptr_equal(bad.raw, data + bad.offset);
            assert_non_null(bad.error);
            assert_true(bad.error[0] != '\0');
            /* two garbage spans in a row would be one span cut in two */
            if (last_bad) assert_null(strstr(bad.error, "no sync marker"));
            (*nbad)++;
            expect_at = bad.offset + bad.full_len;
            last_bad = strstr(bad.error, "no sync marker") != NULL;
        }
        assert_int_equal(recfile_reader_position(r), expect_at);
    }
    assert_int_equal(expect_at, n); /* the items cover the whole file */
    recfile_reader_close(r);
    free(data);
}

static void test_random_mutations(void **state)
{
    (void)state;
    rng = 20240601;
    buf b = {0};
    size_t offs[64], got[64];
    size_t total_rec = 0, total_bad = 0;
    for (int it = 0; it < ITERATIONS; it++) {
        size_t nframes;
        base_file(&b, offs, &nframes);
        mutate(&b);
        /* Small limits make the over-limit path common; the default keeps it rare. */
        size_t max = below(3) == 0 ? 64 + below(2000) : RECFILE_DEFAULT_MAX_RECORD_BYTES;
        size_t nrec, nbad;
        read_checked(b.p, b.n, max, &nrec, &nbad, got, 64);
        total_rec += nrec;
        total_bad += nbad;
    }
    /* The mutations must actually exercise both outcomes. */
    assert_true(total_rec > ITERATIONS * 10);
    assert_true(total_bad > ITERATIONS / 2);
    free(b.p);
}

/* Garbage inserted only between frames (with false markers in it) never costs a record: every
 * original frame comes back at its shifted offset, and each insertion is exactly one bad span. */
static void test_garbage_between_frames_loses_nothing(void **state)
{
    (void)state;
    rng = 7;
    buf b = {0}, f = {0};
    size_t offs[64], got[64];
    for (int it = 0; it < 500; it++) {
        size_t nframes;
        base_file(&b, offs, &nframes);
        offs[nframes] = b.n;
        f.n = 0;
        size_t want[64], ninserted = 0;
        for (size_t i = 0; i < nframes; i++) {
            if (below(3) == 0) {
                uint8_t junk[80];
                size_t len = 1 + below(sizeof junk);
                random_bytes(junk, len);
                if (len >= 4 && below(2)) memcpy(junk + below(len - 3), RECFILE_SYNC, 4);
                append(&f, junk, len);
                ninserted++;
            }
            want[i] = f.n;
            append(&f, b.p + offs[i], offs[i + 1] - offs[i]);
        }
        size_t nrec, nbad;
        read_checked(f.p, f.n, RECFILE_DEFAULT_MAX_RECORD_BYTES, &nrec, &nbad, got, 64);
        assert_int_equal(nrec, nframes);
        assert_memory_equal(got, want, nframes * sizeof want[0]);
        assert_int_equal(nbad, ninserted);
    }
    free(b.p);
    free(f.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_garbage_between_frames_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
