/* Record files: round trip, the exact frame bytes, and each kind of bad input giving exactly one
 * bad span at the right offset, with an error that names the field and the limit, while every
 * valid record before and after it is still returned. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>
#include <cmocka.h>

#include "formats/record_file.h"

static char tmpdir[256];

/* ---- helpers ---- */

/* The CRC32C definition, bit by bit: an oracle that shares nothing with the module. */
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

typedef struct spec {
    int64_t ts;
    size_t klen, vlen;
    unsigned seed;
} spec;

/* Deterministic content; never the sync marker's first byte, so a test's only markers are the
 * ones it puts there. */
static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t x = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
        b[i] = x == 0xF7 ? 0x00 : x;
    }
}

static char *path_for(const char *name)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* Writes the frames; offs[i] gets frame i's offset. Returns the file size. */
static uint64_t write_frames(const char *path, const spec *s, size_t n, uint64_t *offs)
{
    char err[256];
    recfile_writer *w;
    assert_int_equal(recfile_writer_open(path, &w, err, sizeof err), 0);
    size_t cap = 0;
    uint8_t *k = NULL, *v = NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i].klen + s[i].vlen > cap) {
            cap = s[i].klen + s[i].vlen;
            k = realloc(k, cap);
            v = realloc(v, cap);
        }
        fill(k, s[i].klen, s[i].seed);
        fill(v, s[i].vlen, s[i].seed + 1000);
        if (offs) offs[i] = recfile_writer_offset(w);
        assert_int_equal(recfile_write(w, s[i].ts, s[i].klen ? k : NULL, s[i].klen,
                                       s[i].vlen ? v : NULL, s[i].vlen),
                         0);
    }
    uint64_t end = recfile_writer_offset(w);
    assert_int_equal(recfile_writer_close(w, err, sizeof err), 0);
    free(k);
    free(v);
    return end;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spill(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* A byte string that tests assemble from pieces of good files and garbage. */
typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static void put(bytes *b, const void *d, size_t n)
{
    b->p = realloc(b->p, b->n + n + 1);
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static recfile_reader *open_reader(const char *path, size_t max)
{
    char err[256];
    recfile_reader *r;
    assert_int_equal(recfile_reader_open(path, max, &r, err, sizeof err), 0);
    return r;
}

static void expect_record(recfile_reader *r, const spec *s, uint64_t offset)
{
    recfile_record rec;
    recfile_bad bad;
    int rc = recfile_next(r, &rec, &bad);
    if (rc == 2)
        fail_msg("expected a record at %llu, got bad span at %llu: %s", (unsigned long long)offset,
                 (unsigned long long)bad.offset, bad.error);
    assert_int_equal(rc, 1);
    assert_int_equal(rec.offset, offset);
    assert_true(rec.ts_ms == s->ts);
    assert_int_equal(rec.key_len, s->klen);
    assert_int_equal(rec.value_len, s->vlen);
    uint8_t *k = malloc(s->klen + 1), *v = malloc(s->vlen + 1);
    fill(k, s->klen, s->seed);
    fill(v, s->vlen, s->seed + 1000);
    assert_memory_equal(rec.key, k, s->klen);
    assert_memory_equal(rec.value, v, s->vlen);
    free(k);
    free(v);
}

/* One bad span: its offset, its full length and its exact error (or an error prefix when
 * prefix is set, for messages that carry computed CRC values). */
static void expect_bad(recfile_reader *r, uint64_t offset, size_t full_len, int64_t ts,
                       const char *error, int prefix)
{
    recfile_record rec;
    recfile_bad bad;
    int rc = recfile_next(r, &rec, &bad);
    if (rc == 1)
        fail_msg("expected a bad span at %llu, got a record at %llu", (unsigned long long)offset,
                 (unsigned long long)rec.offset);
    assert_int_equal(rc, 2);
    assert_int_equal(bad.offset, offset);
    assert_int_equal(bad.full_len, full_len);
    assert_true(bad.ts_ms == ts);
    if (prefix)
        assert_memory_equal(bad.error, error, strlen(error));
    else
        assert_string_equal(bad.error, error);
    assert_true(bad.raw_len <= full_len);
    assert_ptr_not_equal(bad.raw, NULL);
}

static void expect_eof(recfile_reader *r)
{
    recfile_record rec;
    recfile_bad bad;
    assert_int_equal(recfile_next(r, &rec, &bad), 0);
    assert_int_equal(recfile_reader_position(r), recfile_reader_size(r));
    assert_int_equal(recfile_next(r, &rec, &bad), 0); /* and stays there */
}

static size_t frame_len(const spec *s)
{
    return RECFILE_FRAME_OVERHEAD + s->klen + s->vlen;
}

static const spec abcd[] = {
    {1601596151000, 9, 120, 1},
    {1601596152000, 9, 300, 2},
    {1601596153000, 0, 40, 3},
    {1601596154000, 12, 0, 4},
};

/* ---- tests ---- */

/* Many records of every shape, read back in order with their offsets; the largest record that
 * the default limit allows (bigger than the 1 MiB write buffer) passes, in order, between
 * buffered ones. */
static void test_round_trip(void **state)
{
    (void)state;
    enum { N = 10003 };
    spec *s = calloc(N, sizeof *s);
    uint64_t *offs = calloc(N, sizeof *offs);
    for (size_t i = 0; i < N - 3; i++) {
        s[i].ts = 1601596151000 + (int64_t)i * 13 - (i % 3 == 0 ? 5000 : 0);
        s[i].klen = i % 5 == 0 ? 0 : 1 + i % 40;
        s[i].vlen = i % 7 == 0 ? 0 : (i * 37) % 3000;
        s[i].seed = (unsigned)i;
    }
    s[10].ts = INT64_MIN;
    s[11].ts = INT64_MAX;
    s[12].ts = -1;
    s[N - 3] = (spec){42, 8, RECFILE_DEFAULT_MAX_RECORD_BYTES - 8, 77}; /* exactly the limit */
    s[N - 2] = (spec){43, 0, 0, 78};
    s[N - 1] = (spec){44, 3, 5, 79};
    const char *path = path_for("round_trip.rec");
    uint64_t end = write_frames(path, s, N, offs);

    recfile_reader *r = open_reader(path, RECFILE_DEFAULT_MAX_RECORD_BYTES);
    assert_int_equal(recfile_reader_size(r), end);
    for (size_t i = 0; i < N; i++)
        expect_record(r, &s[i], offs[i]);
    expect_eof(r);
    recfile_reader_close(r);

    /* The same file read with a limit one byte smaller: exactly that record is a bad span. */
    r = open_reader(path, RECFILE_DEFAULT_MAX_RECORD_BYTES - 1);
    for (size_t i = 0; i < N - 3; i++)
        expect_record(r, &s[i], offs[i]);
    expect_bad(r, offs[N - 3], frame_len(&s[N - 3]), 42,
               "key_length 8 + value_length 1048568 = 1048576 over --maxRecordBytes 1048575", 0);
    expect_record(r, &s[N - 2], offs[N - 2]);
    expect_record(r, &s[N - 1], offs[N - 1]);
    expect_eof(r);
    recfile_reader_close(r);
    free(s);
    free(offs);
}

/* The bytes docs/FORMATS.md documents, checked with an independent CRC. */
static void test_frame_bytes(void **state)
{
    (void)state;
    const char *path = path_for("bytes.rec");
    char err[256];
    recfile_writer *w;
    assert_int_equal(recfile_writer_open(path, &w, err, sizeof err), 0);
    assert_int_equal(recfile_write(w, 0x0102030405060708, "ab", 2, "xyz", 3), 0);
    assert_int_equal(recfile_write(w, -2, NULL, 0, NULL, 0), 0);
    assert_int_equal(recfile_writer_offset(w), 33 + 28);
    assert_int_equal(recfile_writer_close(w, err, sizeof err), 0);
    size_t n;
    uint8_t *b = slurp(path, &n);
    assert_int_equal(n, 33 + 28);
    static const uint8_t head[20] = {0xF7, 'L', 'R',  0xFE, 2,    0,    0,    0,    3,    0,
                                     0,    0,   0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
    assert_memory_equal(b, head, 20);
    assert_int_equal(le32(b + 20), crc_bitwise(b, 20));
    assert_memory_equal(b + 24, "abxyz", 5);
    assert_int_equal(le32(b + 29), crc_bitwise(b, 29));
    /* second frame: empty key and value, timestamp -2 as two's complement */
    static const uint8_t head2[20] = {0xF7, 'L', 'R',  0xFE, 0,    0,    0,    0,    0,    0,
                                      0,    0,   0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    assert_memory_equal(b + 33, head2, 20);
    assert_int_equal(le32(b + 53), crc_bitwise(b + 33, 20));
    assert_int_equal(le32(b + 57), crc_bitwise(b + 33, 24));
    free(b);
}

/* A file cut inside a frame header (a writer killed mid-frame). */
static void test_truncated_length_prefix_at_eof(void **state)
{
    (void)state;
    uint64_t offs[4];
    const char *good = path_for("trunc_src.rec");
    write_frames(good, abcd, 4, offs);
    size_t n;
    uint8_t *b = slurp(good, &n);
    const char *path = path_for("trunc_header.rec");

    spill(path, b, offs[3] + 10); /* marker and half the key_length */
    recfile_reader *r = open_reader(path, 0);
    for (int i = 0; i < 3; i++)
        expect_record(r, &abcd[i], offs[i]);
    expect_bad(r, offs[3], 10, -1, "truncated frame header: 10 of 24 bytes before end of file", 0);
    expect_eof(r);
    recfile_reader_close(r);

    spill(path, b, offs[3] + 2); /* only a prefix of the marker */
    r = open_reader(path, 0);
    for (int i = 0; i < 3; i++)
        expect_record(r, &abcd[i], offs[i]);
    expect_bad(r, offs[3], 2, -1, "truncated frame header: 2 of 24 bytes before end of file", 0);
    expect_eof(r);
    recfile_reader_close(r);
    free(b);
}

/* A file cut after a verified header, inside the payload: the error names both lengths. */
static void test_truncated_frame_at_eof(void **state)
{
    (void)state;
    uint64_t offs[4];
    const char *good = path_for("trunc_src2.rec");
    write_frames(good, abcd, 4, offs);
    size_t n;
    uint8_t *b = slurp(good, &n);
    const char *path = path_for("trunc_frame.rec");
    spill(path, b, n - 5);
    recfile_reader *r = open_reader(path, 0);
    for (int i = 0; i < 3; i++)
        expect_record(r, &abcd[i], offs[i]);
    expect_bad(r, offs[3], frame_len(&abcd[3]) - 5, abcd[3].ts,
               "truncated frame: key_length 12 + value_length 0 need 40 bytes, 35 before end of "
               "file",
               0);
    expect_eof(r);
    recfile_reader_close(r);
    free(b);
}

/* Garbage between frames, at the start and at the end: one span each, exact lengths. */
static void test_garbage_between_frames(void **state)
{
    (void)state;
    uint64_t offs[4];
    const char *good = path_for("garbage_src.rec");
    write_frames(good, abcd, 4, offs);
    size_t n;
    uint8_t *b = slurp(good, &n);
    uint8_t junk[100];
    fill(junk, sizeof junk, 999);

    bytes f = {0};
    put(&f, junk, 7);                  /* at the start */
    put(&f, b, offs[2]);               /* A B */
    put(&f, junk, sizeof junk);        /* between */
    put(&f, b + offs[2], n - offs[2]); /* C D */
    put(&f, junk, 30);                 /* at the end */
    const char *path = path_for("garbage.rec");
    spill(path, f.p, f.n);

    recfile_reader *r = open_reader(path, 0);
    expect_bad(r, 0, 7, -1, "no sync marker: 7 bytes of garbage before the next frame", 0);
    expect_record(r, &abcd[0], 7 + offs[0]);
    expect_record(r, &abcd[1], 7 + offs[1]);
    expect_bad(r, 7 + offs[2], 100, -1,
               "no sync marker: 100 bytes of garbage before the next frame", 0);
    expect_record(r, &abcd[2], 107 + offs[2]);
    expect_record(r, &abcd[3], 107 + offs[3]);
    expect_bad(r, 107 + n, 30, -1, "no sync marker: 30 bytes of garbage before end of file", 0);
    expect_eof(r);
    recfile_reader_close(r);
    free(f.p);
    free(b);
}

/* One flipped bit in a value: the frame is one bad span; its header verified, so its timestamp
 * is known. A flipped bit in a length: the header fails, the span still ends at the next frame. */
static void test_crc_mismatch(void **state)
{
    (void)state;
    uint64_t offs[4];
    const char *good = path_for("crc_src.rec");
    write_frames(good, abcd, 4, offs);
    size_t n;
    uint8_t *b = slurp(good, &n);
    const char *path = path_for("crc.rec");

    b[offs[1] + RECFILE_HEADER_BYTES + abcd[1].klen + 150] ^= 0x10;
    spill(path, b, n);
    recfile_reader *r = open_reader(path, 0);
    expect_record(r, &abcd[0], offs[0]);
    expect_bad(r, offs[1], frame_len(&abcd[1]), abcd[1].ts, "frame_crc mismatch: stored 0x", 1);
    expect_record(r, &abcd[2], offs[2]);
    expect_record(r, &abcd[3], offs[3]);
    expect_eof(r);
    recfile_reader_close(r);
    b[offs[1] + RECFILE_HEADER_BYTES + abcd[1].klen + 150] ^= 0x10;

    b[offs[2] + 8] ^= 0x01; /* value_length of C */
    spill(path, b, n);
    r = open_reader(path, 0);
    expect_record(r, &abcd[0], offs[0]);
    expect_record(r, &abcd[1], offs[1]);
    expect_bad(r, offs[2], frame_len(&abcd[2]), -1, "header_crc mismatch: stored 0x", 1);
    expect_record(r, &abcd[3], offs[3]);
    expect_eof(r);
    recfile_reader_close(r);
    free(b);
}

/* Frames over --maxRecordBytes: a whole verified frame is one span with the error naming the
 * field and the limit, raw is cut at the limit, and the neighbours are intact. */
static void test_over_limit(void **state)
{
    (void)state;
    const spec s[] = {
        {10, 4, 50, 1},    /* ok */
        {11, 0, 2000, 2},  /* value alone over */
        {12, 4, 60, 3},    /* ok */
        {13, 1500, 0, 4},  /* key alone over */
        {14, 600, 600, 5}, /* the sum over */
        {15, 400, 600, 6}, /* exactly the limit: ok */
        {16, 8, 3000, 7},  /* over, and cut by the end of the file */
    };
    uint64_t offs[7];
    const char *path = path_for("limit.rec");
    uint64_t end = write_frames(path, s, 7, offs);
    size_t n;
    uint8_t *b = slurp(path, &n);
    assert_int_equal(n, end);
    spill(path, b, n - 100);

    recfile_reader *r = open_reader(path, 1000);
    expect_record(r, &s[0], offs[0]);
    recfile_record rec;
    recfile_bad bad;
    assert_int_equal(recfile_next(r, &rec, &bad), 2);
    assert_int_equal(bad.offset, offs[1]);
    assert_string_equal(bad.error, "value_length 2000 over --maxRecordBytes 1000");
    assert_int_equal(bad.full_len, frame_len(&s[1]));
    assert_int_equal(bad.raw_len, 1000); /* invalid_record keeps at most --maxRecordBytes */
    assert_memory_equal(bad.raw, b + offs[1], 1000);
    assert_true(bad.ts_ms == 11);
    expect_record(r, &s[2], offs[2]);
    expect_bad(r, offs[3], frame_len(&s[3]), 13, "key_length 1500 over --maxRecordBytes 1000", 0);
    expect_bad(r, offs[4], frame_len(&s[4]), 14,
               "key_length 600 + value_length 600 = 1200 over --maxRecordBytes 1000", 0);
    expect_record(r, &s[5], offs[5]);
    expect_bad(r, offs[6], frame_len(&s[6]) - 100, 16,
               "value_length 3000 over --maxRecordBytes 1000; truncated frame: key_length 8 + "
               "value_length 3000 need 3036 bytes, 2936 before end of file",
               0);
    expect_eof(r);
    recfile_reader_close(r);
    free(b);
}

/* Garbage holding things that look like frames: markers with headers that do not verify, a
 * marker too close to the end for a header. Still one span, and the next frame is found. */
static void test_false_sync_marker_in_garbage(void **state)
{
    (void)state;
    uint64_t offs[4];
    const char *good = path_for("false_src.rec");
    write_frames(good, abcd, 4, offs);
    size_t n;
    uint8_t *b = slurp(good, &n);

    bytes g = {0};
    uint8_t junk[64];
    fill(junk, sizeof junk, 5);
    put(&g, junk, 13);
    put(&g, RECFILE_SYNC, 4);
    put(&g, junk, 30); /* a "header" whose CRC fails */
    uint8_t fake[RECFILE_HEADER_BYTES];
    memcpy(fake, b + offs[1], sizeof fake); /* B's real header, one bit changed in key_length */
    fake[4] ^= 0x40;
    put(&g, fake, sizeof fake);
    put(&g, RECFILE_SYNC, 4);
    put(&g, RECFILE_SYNC, 4);
    put(&g, junk, 5);
    size_t glen = g.n;

    bytes f = {0};
    put(&f, b, offs[1]);
    put(&f, g.p, g.n);
    put(&f, b + offs[1], n - offs[1]);
    put(&f, RECFILE_SYNC, 4); /* a marker with no room for a header at the very end */
    const char *path = path_for("false_marker.rec");
    spill(path, f.p, f.n);

    recfile_reader *r = open_reader(path, 0);
    expect_record(r, &abcd[0], offs[0]);
    expect_bad(r, offs[1], glen, -1, "no sync marker: 84 bytes of garbage before the next frame",
               0);
    for (int i = 1; i < 4; i++)
        expect_record(r, &abcd[i], glen + offs[i]);
    expect_bad(r, glen + n, 4, -1, "truncated frame header: 4 of 24 bytes before end of file", 0);
    expect_eof(r);
    recfile_reader_close(r);
    free(g.p);
    free(f.p);
    free(b);
}

/* A torn write: a frame's header and part of its payload, then good frames. The claimed length
 * runs over the good frames; they must not be swallowed. */
static void test_torn_frame_then_frames(void **state)
{
    (void)state;
    uint64_t offs[4];
    const char *good = path_for("torn_src.rec");
    write_frames(good, abcd, 4, offs);
    size_t n;
    uint8_t *b = slurp(good, &n);
    bytes f = {0};
    put(&f, b, offs[2]);               /* A B */
    put(&f, b + offs[1], 24 + 9 + 40); /* B again, torn after 40 value bytes (of 300) */
    put(&f, b + offs[2], n - offs[2]); /* C D */
    const char *path = path_for("torn.rec");
    spill(path, f.p, f.n);
    recfile_reader *r = open_reader(path, 0);
    expect_record(r, &abcd[0], offs[0]);
    expect_record(r, &abcd[1], offs[1]);
    /* B claims 337 bytes; 73 of them are B's, the rest would swallow C and D. */
    expect_bad(r, offs[2], 73, abcd[1].ts,
               "truncated frame: key_length 9 + value_length 300 need 337 bytes, 181 before end "
               "of file",
               0);
    expect_record(r, &abcd[2], offs[2] + 73);
    expect_record(r, &abcd[3], offs[3] + 73);
    expect_eof(r);
    recfile_reader_close(r);
    free(f.p);
    free(b);
}

static void test_seek(void **state)
{
    (void)state;
    uint64_t offs[4];
    const char *path = path_for("seek.rec");
    uint64_t end = write_frames(path, abcd, 4, offs);
    recfile_reader *r = open_reader(path, 0);
    assert_int_equal(recfile_reader_seek(r, offs[2]), 0);
    assert_int_equal(recfile_reader_position(r), offs[2]);
    expect_record(r, &abcd[2], offs[2]);
    expect_record(r, &abcd[3], offs[3]);
    expect_eof(r);
    assert_int_equal(recfile_reader_seek(r, offs[0]), 0); /* backwards too */
    expect_record(r, &abcd[0], offs[0]);
    /* Into the middle of a frame: a bad span up to the next frame, then that frame. */
    assert_int_equal(recfile_reader_seek(r, offs[1] + 5), 0);
    expect_bad(r, offs[1] + 5, offs[2] - offs[1] - 5, -1,
               "no sync marker: 332 bytes of garbage before the next frame", 0);
    expect_record(r, &abcd[2], offs[2]);
    assert_int_equal(recfile_reader_seek(r, end), 0);
    expect_eof(r);
    assert_int_equal(recfile_reader_seek(r, end + 1), -1);
    assert_int_equal(recfile_reader_position(r), end); /* a refused seek moves nothing */
    recfile_reader_close(r);
}

static void test_empty_missing_and_memory(void **state)
{
    (void)state;
    const char *path = path_for("empty.rec");
    spill(path, "", 0);
    recfile_reader *r = open_reader(path, 0);
    assert_int_equal(recfile_reader_size(r), 0);
    expect_eof(r);
    recfile_reader_close(r);

    char err[256];
    path = path_for("missing.rec");
    assert_int_equal(recfile_reader_open(path, 0, &r, err, sizeof err), -1);
    assert_null(r);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(recfile_reader_open(tmpdir, 0, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));

    /* The in-memory reader sees what the file reader sees. */
    uint64_t offs[4];
    path = path_for("mem.rec");
    write_frames(path, abcd, 4, offs);
    size_t n;
    uint8_t *b = slurp(path, &n);
    assert_int_equal(recfile_reader_open_mem(b, n, 0, &r), 0);
    for (int i = 0; i < 4; i++)
        expect_record(r, &abcd[i], offs[i]);
    expect_eof(r);
    recfile_reader_close(r);
    free(b);
    recfile_reader_close(NULL);
}

static void test_make_key(void **state)
{
    (void)state;
    uint8_t buf[32];
    memset(buf, 0xAA, sizeof buf);
    assert_int_equal(recfile_make_key(0x0102030405060708ull, "abc", buf, sizeof buf), 11);
    static const uint8_t want[11] = {8, 7, 6, 5, 4, 3, 2, 1, 'a', 'b', 'c'};
    assert_memory_equal(buf, want, 11);
    assert_int_equal(buf[11], 0xAA); /* no terminator written */

    memset(buf, 0xAA, sizeof buf);
    assert_int_equal(recfile_make_key(0x0102030405060708ull, "abc", buf, 9), 11);
    assert_memory_equal(buf, want, 9);
    assert_int_equal(buf[9], 0xAA);
    assert_int_equal(recfile_make_key(5, "abc", buf, 3), 11);
    assert_memory_equal(buf, "\x05\x00\x00", 3);
    assert_int_equal(recfile_make_key(7, NULL, buf, sizeof buf), 8);
    assert_memory_equal(buf, "\x07\0\0\0\0\0\0\0", 8);
    assert_int_equal(recfile_make_key(7, "xy", NULL, 0), 10);
}

static void test_writer_errors(void **state)
{
    (void)state;
    char err[256];
    recfile_writer *w;
    const char *bad = path_for("no-such-dir/x.rec");
    assert_int_equal(recfile_writer_open(bad, &w, err, sizeof err), -1);
    assert_null(w);
    assert_non_null(strstr(err, bad));

    /* A length the format cannot carry fails before any byte is read or written. */
    const char *path = path_for("huge.rec");
    assert_int_equal(recfile_writer_open(path, &w, err, sizeof err), 0);
    assert_int_equal(recfile_write(w, 1, "k", 1, "v", (size_t)UINT32_MAX + 1), -1);
    assert_non_null(strstr(recfile_writer_error(w), "value_length 4294967296 over"));
    assert_int_equal(recfile_write(w, 1, "k", 1, "v", 1), -1); /* stays failed */
    assert_int_equal(recfile_writer_close(w, err, sizeof err), -1);
    assert_non_null(strstr(err, "value_length 4294967296"));

    /* A full disk: buffered writes succeed, the error surfaces at flush and close. */
    if (access("/dev/full", W_OK) != 0) return;
    assert_int_equal(recfile_writer_open("/dev/full", &w, err, sizeof err), 0);
    assert_null(recfile_writer_error(w));
    assert_int_equal(recfile_write(w, 1, "k", 1, "v", 1), 0);
    assert_int_equal(recfile_writer_flush(w, err, sizeof err), -1);
    assert_non_null(strstr(err, "/dev/full: write: No space left on device"));
    assert_int_equal(recfile_writer_close(w, err, sizeof err), -1);
    assert_non_null(strstr(err, "No space left on device"));
}

/* flush makes frames visible to a reader while the writer stays open. */
static void test_flush_visible(void **state)
{
    (void)state;
    char err[256];
    recfile_writer *w;
    const char *path = path_for("flush.rec");
    assert_int_equal(recfile_writer_open(path, &w, err, sizeof err), 0);
    assert_int_equal(recfile_write(w, 5, "k", 1, "value", 5), 0);
    assert_int_equal(recfile_writer_flush(w, err, sizeof err), 0);
    recfile_reader *r = open_reader(path, 0);
    recfile_record rec;
    recfile_bad bad;
    assert_int_equal(recfile_next(r, &rec, &bad), 1);
    assert_memory_equal(rec.value, "value", 5);
    assert_int_equal(recfile_next(r, &rec, &bad), 0);
    recfile_reader_close(r);
    assert_int_equal(recfile_writer_close(w, err, sizeof err), 0);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_record_file.XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_frame_bytes),
        cmocka_unit_test(test_truncated_length_prefix_at_eof),
        cmocka_unit_test(test_truncated_frame_at_eof),
        cmocka_unit_test(test_garbage_between_frames),
        cmocka_unit_test(test_crc_mismatch),
        cmocka_unit_test(test_over_limit),
        cmocka_unit_test(test_false_sync_marker_in_garbage),
        cmocka_unit_test(test_torn_frame_then_frames),
        cmocka_unit_test(test_seek),
        cmocka_unit_test(test_empty_missing_and_memory),
        cmocka_unit_test(test_make_key),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_flush_visible),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
