/* Avro container files (src/formats/avro_file.h): what we write is read back by avro-c's own
 * container reader (independent framing code) and by our reader; output is deterministic for
 * a path or seed; limits, codecs, corruption and the JSON printer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "event/event.pb-c.h"
#include "formats/avro_encode.h"
#include "formats/avro_schema.h"
#include "formats/avro_file.h"
#include "schemas_embedded.h"

static char g_dir[256];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/test_avro_file.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", g_dir, name);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Writes `n` LogUserUser records (platformId = i, userId = "u<i>") to path. */
static void write_users(const char *path, int n, const avro_file_opts *opts)
{
    const char *schema = embedded_schema("log_user_user");
    assert_non_null(schema);
    char err[512];
    avro_file_out *w;
    if (avro_file_out_new(path, schema, strlen(schema), opts, &w, err, sizeof err))
        fail_msg("%s", err);
    avenc_buf b;
    avenc_buf_init(&b, 4096);
    for (int i = 0; i < n; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "u%d", i);
        avenc_log_user_user r = {i, 1000 + i, "lu", uid};
        avenc_buf_clear(&b);
        assert_int_equal(avenc_log_user_user_datum(&r, &b, err, sizeof err), 0);
        if (avro_file_out_append(w, b.data, b.len, err, sizeof err)) fail_msg("%s", err);
    }
    assert_int_equal(avro_file_out_records(w), (uint64_t)n);
    if (avro_file_out_close(w, err, sizeof err)) fail_msg("%s", err);
    avenc_buf_free(&b);
}

/* Reads with avro-c's container reader and checks the records write_users wrote. */
static void check_users_with_avro_c(const char *path, int n)
{
    avro_file_reader_t r;
    if (avro_file_reader(path, &r)) fail_msg("avro-c cannot open %s: %s", path, avro_strerror());
    avro_schema_t ws = avro_file_reader_get_writer_schema(r);
    assert_string_equal(avro_schema_name(ws), "LogUserUser");
    avro_value_iface_t *iface = avro_generic_class_from_schema(ws);
    avro_value_t v;
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    int count = 0;
    while (avro_file_reader_read_value(r, &v) == 0) {
        avro_value_t f;
        int64_t pid, ts;
        const char *uid;
        size_t len;
        assert_int_equal(avro_value_get_by_name(&v, "platformId", &f, NULL), 0);
        assert_int_equal(avro_value_get_long(&f, &pid), 0);
        assert_int_equal(avro_value_get_by_name(&v, "eventApiTimestamp", &f, NULL), 0);
        assert_int_equal(avro_value_get_long(&f, &ts), 0);
        assert_int_equal(avro_value_get_by_name(&v, "userId", &f, NULL), 0);
        assert_int_equal(avro_value_get_string(&f, &uid, &len), 0);
        char want[32];
        snprintf(want, sizeof want, "u%d", count);
        assert_int_equal(pid, count);
        assert_int_equal(ts, 1000 + count);
        assert_string_equal(uid, want);
        count++;
    }
    assert_int_equal(count, n);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(ws); /* get_writer_schema returns a new reference */
    avro_file_reader_close(r);
}

static int count_with_our_reader(const char *path, char *err, size_t errlen)
{
    avro_file_in *r;
    if (avro_file_in_open(path, 0, &r, err, errlen)) return -1;
    int rc, n = 0;
    avro_value_t *v;
    while ((rc = avro_file_in_next(r, &v, err, errlen)) == 1)
        n++;
    avro_file_in_close(r);
    return rc < 0 ? -1 : n;
}

static void test_blocks_read_by_avro_c(void **state)
{
    (void)state;
    char p[512];
    path_of(p, sizeof p, "users.avro");
    avro_file_opts o = {.block_bytes = 64}; /* about 8 records per block: many blocks */
    write_users(p, 500, &o);
    check_users_with_avro_c(p, 500);
    char err[512];
    assert_int_equal(count_with_our_reader(p, err, sizeof err), 500);

    /* one big default block reads the same */
    path_of(p, sizeof p, "users-one-block.avro");
    write_users(p, 500, NULL);
    check_users_with_avro_c(p, 500);

    avro_file_in *r;
    assert_int_equal(avro_file_in_open(p, 0, &r, err, sizeof err), 0);
    assert_string_equal(avro_file_in_codec(r), "snappy");
    size_t len;
    const char *json = avro_file_in_schema_json(r, &len);
    assert_int_equal(len, strlen(embedded_schema("log_user_user")));
    assert_memory_equal(json, embedded_schema("log_user_user"), len);
    avro_file_in_close(r);
}

static void test_null_codec_and_empty_file(void **state)
{
    (void)state;
    char p[512], err[512];
    path_of(p, sizeof p, "null.avro");
    avro_file_opts o = {.codec = "null", .block_bytes = 100};
    write_users(p, 50, &o);
    check_users_with_avro_c(p, 50);
    avro_file_in *r;
    assert_int_equal(avro_file_in_open(p, 0, &r, err, sizeof err), 0);
    assert_string_equal(avro_file_in_codec(r), "null");
    avro_file_in_close(r);

    path_of(p, sizeof p, "empty.avro");
    write_users(p, 0, NULL);
    assert_int_equal(count_with_our_reader(p, err, sizeof err), 0);

    avro_file_out *w = NULL;
    const char *schema = embedded_schema("log_user_user");
    o.codec = "deflate";
    assert_int_equal(avro_file_out_new(p, schema, strlen(schema), &o, &w, err, sizeof err), -1);
    assert_null(w);
    assert_non_null(strstr(err, "deflate"));
}

static void test_deterministic_bytes(void **state)
{
    (void)state;
    char a[512], b[512];
    path_of(a, sizeof a, "det-a.avro");
    path_of(b, sizeof b, "det-b.avro");
    size_t la, la2, lb;
    write_users(a, 300, NULL);
    unsigned char *first = slurp(a, &la);
    write_users(a, 300, NULL); /* same datums, same path: same bytes */
    unsigned char *second = slurp(a, &la2);
    assert_int_equal(la, la2);
    assert_memory_equal(first, second, la);

    /* another path: another sync marker, so the bytes differ (the length does not) */
    write_users(b, 300, NULL);
    unsigned char *third = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_true(memcmp(first, third, la) != 0);
    uint8_t sa[16], sb[16];
    avro_file_sync_marker(a, sa);
    avro_file_sync_marker(b, sb);
    assert_true(memcmp(sa, sb, 16) != 0);
    /* the header ends with the marker and the file ends with it */
    assert_memory_equal(first + la - 16, sa, 16);
    assert_memory_equal(third + lb - 16, sb, 16);

    /* an explicit seed makes the path irrelevant */
    avro_file_opts o = {.sync_seed = "part-0001"};
    write_users(a, 300, &o);
    write_users(b, 300, &o);
    free(first);
    free(third);
    first = slurp(a, &la);
    third = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(first, third, la);
    free(first);
    free(second);
    free(third);
}

static void test_datum_limit(void **state)
{
    (void)state;
    char p[512], err[512];
    path_of(p, sizeof p, "limit.avro");
    const char *schema = embedded_schema("log_user_user");
    avro_file_opts o = {.max_datum_bytes = 16};
    avro_file_out *w;
    assert_int_equal(avro_file_out_new(p, schema, strlen(schema), &o, &w, err, sizeof err), 0);
    avenc_buf b;
    avenc_buf_init(&b, 4096);
    avenc_log_user_user big = {1, 2, "a-log-user-id", "a-user-id"};
    assert_int_equal(avenc_log_user_user_datum(&big, &b, err, sizeof err), 0);
    assert_true(b.len > 16);
    assert_int_equal(avro_file_out_append(w, b.data, b.len, err, sizeof err), -1);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "limit of 16 bytes"));
    /* the writer is still usable */
    avenc_log_user_user small = {3, 4, "l", "u"};
    avenc_buf_clear(&b);
    assert_int_equal(avenc_log_user_user_datum(&small, &b, err, sizeof err), 0);
    assert_int_equal(avro_file_out_append(w, b.data, b.len, err, sizeof err), 0);
    assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);
    assert_int_equal(count_with_our_reader(p, err, sizeof err), 1);
    avenc_buf_free(&b);

    /* an unwritable path is reported with its name */
    path_of(p, sizeof p, "no-such-dir/x.avro");
    assert_int_equal(avro_file_out_new(p, schema, strlen(schema), NULL, &w, err, sizeof err), -1);
    assert_non_null(strstr(err, "no-such-dir/x.avro"));
}

static void expect_read_error(const char *path, const char *needle)
{
    char err[512] = "";
    int n = count_with_our_reader(path, err, sizeof err);
    if (n >= 0) fail_msg("%s read %d records without error (expected \"%s\")", path, n, needle);
    if (!strstr(err, needle)) fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    assert_non_null(strstr(err, path));
}

static void test_corruption_is_reported(void **state)
{
    (void)state;
    char p[512], q[512];
    path_of(p, sizeof p, "good.avro");
    avro_file_opts o = {.block_bytes = 256};
    write_users(p, 200, &o);
    size_t len;
    unsigned char *good = slurp(p, &len);
    unsigned char *bad = malloc(len);

    /* a flipped byte inside the last block's compressed data */
    memcpy(bad, good, len);
    bad[len - 16 - 6] ^= 0x5a;
    path_of(q, sizeof q, "flipped.avro");
    spit(q, bad, len);
    char err[512] = "";
    int n = count_with_our_reader(q, err, sizeof err);
    assert_int_equal(n, -1);
    assert_true(strstr(err, "CRC32 mismatch") || strstr(err, "snappy"));
    assert_non_null(strstr(err, "at byte"));

    /* the last sync marker damaged */
    memcpy(bad, good, len);
    bad[len - 1] ^= 0xff;
    path_of(q, sizeof q, "badsync.avro");
    spit(q, bad, len);
    expect_read_error(q, "sync marker");

    /* cut short in the middle of a block */
    path_of(q, sizeof q, "truncated.avro");
    spit(q, good, len - 30);
    expect_read_error(q, "truncated");

    /* not a container file at all */
    memcpy(bad, good, len);
    bad[0] = 'X';
    path_of(q, sizeof q, "magic.avro");
    spit(q, bad, len);
    expect_read_error(q, "bad magic");

    /* a block larger than the reader's limit */
    avro_file_in *r;
    assert_int_equal(avro_file_in_open(p, 64, &r, err, sizeof err), 0);
    avro_value_t *v;
    assert_int_equal(avro_file_in_next(r, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit 64 bytes"));
    assert_non_null(strstr(err, "at byte"));
    avro_file_in_close(r);
    free(good);
    free(bad);
}

static void test_print_json(void **state)
{
    (void)state;
    char p[512], err[512];
    path_of(p, sizeof p, "ids.avro");
    const char *schema = embedded_schema("request_insertion_ids");
    avro_file_out *w;
    assert_int_equal(avro_file_out_new(p, schema, strlen(schema), NULL, &w, err, sizeof err), 0);
    avenc_buf b;
    avenc_buf_init(&b, 4096);
    avenc_request_insertion_ids r1 = {5, 6, "req-\xc3\xa9", "c1", 0, 0};
    avenc_request_insertion_ids r2 = {-1, 7, "req", "c2", 1, 9};
    assert_int_equal(avenc_request_insertion_ids_datum(&r1, &b, err, sizeof err), 0);
    assert_int_equal(avro_file_out_append(w, b.data, b.len, err, sizeof err), 0);
    avenc_buf_clear(&b);
    assert_int_equal(avenc_request_insertion_ids_datum(&r2, &b, err, sizeof err), 0);
    assert_int_equal(avro_file_out_append(w, b.data, b.len, err, sizeof err), 0);
    assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);

    char *text = NULL;
    size_t tlen = 0;
    FILE *out = open_memstream(&text, &tlen);
    assert_int_equal(avro_file_print_json(p, out, err, sizeof err), 0);
    fclose(out);
    /* one object per line, unions unwrapped, fields in schema order */
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = 0;
    assert_string_equal(text,
                        "{\"platformId\":5,\"eventApiTimestamp\":6,\"requestId\":\"req-\xc3\xa9\","
                        "\"contentId\":\"c1\",\"retrievalRank\":null}");
    json_error_t je;
    json_t *j2 = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &je);
    assert_non_null(j2);
    assert_int_equal(json_integer_value(json_object_get(j2, "platformId")), -1);
    assert_int_equal(json_integer_value(json_object_get(j2, "retrievalRank")), 9);
    json_decref(j2);
    free(text);

    /* bytes as base64, enums by symbol */
    path_of(p, sizeof p, "invalid.avro");
    schema = embedded_schema("invalid_record");
    assert_int_equal(avro_file_out_new(p, schema, strlen(schema), NULL, &w, err, sizeof err), 0);
    uint8_t raw[] = {0xde, 0xad, 0x00, 0xbe};
    avenc_invalid_record ir = {"f.rec", -1, 12, -1, "bad", raw, sizeof raw, 4};
    avenc_buf_clear(&b);
    assert_int_equal(avenc_invalid_record_datum(&ir, &b, err, sizeof err), 0);
    assert_int_equal(avro_file_out_append(w, b.data, b.len, err, sizeof err), 0);
    assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);
    text = NULL;
    out = open_memstream(&text, &tlen);
    assert_int_equal(avro_file_print_json(p, out, err, sizeof err), 0);
    fclose(out);
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "raw")), "3q0Avg==");
    assert_int_equal(json_integer_value(json_object_get(j, "partition")), -1);
    json_decref(j);
    free(text);

    path_of(p, sizeof p, "dl.avro");
    schema = embedded_schema("delivery_log_ids");
    assert_int_equal(avro_file_out_new(p, schema, strlen(schema), NULL, &w, err, sizeof err), 0);
    avenc_delivery_log_ids dl = {1, 2, "lu", NULL, "r", NULL, 3, NULL, NULL};
    avenc_buf_clear(&b);
    assert_int_equal(avenc_delivery_log_ids_datum(&dl, &b, err, sizeof err), 0);
    assert_int_equal(avro_file_out_append(w, b.data, b.len, err, sizeof err), 0);
    assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);
    text = NULL;
    out = open_memstream(&text, &tlen);
    assert_int_equal(avro_file_print_json(p, out, err, sizeof err), 0);
    fclose(out);
    j = json_loads(text, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "executionServer")), "SIMPLE_API");
    assert_string_equal(json_string_value(json_object_get(j, "viewId")), "");
    json_decref(j);
    free(text);
    avenc_buf_free(&b);

    /* a missing file is an error naming it */
    path_of(p, sizeof p, "missing.avro");
    out = fopen("/dev/null", "w");
    assert_int_equal(avro_file_print_json(p, out, err, sizeof err), -1);
    fclose(out);
    assert_non_null(strstr(err, "missing.avro"));
}

/* Encoding straight into the block gives the same file as encoding then appending. */
static void test_append_message(void **state)
{
    (void)state;
    char a[512], b[512], err[512];
    path_of(a, sizeof a, "msg-direct.avro");
    path_of(b, sizeof b, "msg-copied.avro");
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__impression__descriptor, &s, err, sizeof err), 0);
    size_t jl;
    const char *json = avsc_schema_json(s, &jl);
    avro_file_opts o = {.block_bytes = 300, .sync_seed = "same", .max_datum_bytes = 200};
    avro_file_out *wa, *wb;
    assert_int_equal(avro_file_out_new(a, json, jl, &o, &wa, err, sizeof err), 0);
    assert_int_equal(avro_file_out_new(b, json, jl, &o, &wb, err, sizeof err), 0);
    avenc_buf buf;
    avenc_buf_init(&buf, 200);
    char id[300];
    for (int i = 0; i < 100; i++) {
        Event__Impression imp = EVENT__IMPRESSION__INIT;
        snprintf(id, sizeof id, "impression-%d", i);
        imp.impression_id = id;
        imp.has_platform_id = 1;
        imp.platform_id = (uint64_t)i;
        avenc_stats st = {0};
        assert_int_equal(avro_file_out_append_message(wa, s, &imp.base, &st, err, sizeof err), 0);
        avenc_buf_clear(&buf);
        assert_int_equal(avenc_message(s, &imp.base, &buf, NULL, err, sizeof err), 0);
        assert_int_equal(avro_file_out_append(wb, buf.data, buf.len, err, sizeof err), 0);
    }
    /* over max_datum_bytes: refused, nothing added, the writer goes on */
    Event__Impression big = EVENT__IMPRESSION__INIT;
    memset(id, 'x', 250);
    id[250] = 0;
    big.impression_id = id;
    assert_int_equal(avro_file_out_append_message(wa, s, &big.base, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit of 200 bytes"));
    assert_non_null(strstr(err, a));
    assert_int_equal(avro_file_out_records(wa), 100);
    assert_int_equal(avro_file_out_close(wa, err, sizeof err), 0);
    assert_int_equal(avro_file_out_close(wb, err, sizeof err), 0);
    size_t la, lb;
    unsigned char *fa = slurp(a, &la), *fb = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(fa, fb, la);
    free(fa);
    free(fb);
    assert_int_equal(count_with_our_reader(a, err, sizeof err), 100);
    avenc_buf_free(&buf);
    avsc_schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_read_by_avro_c),
        cmocka_unit_test(test_null_codec_and_empty_file),
        cmocka_unit_test(test_deterministic_bytes),
        cmocka_unit_test(test_datum_limit),
        cmocka_unit_test(test_corruption_is_reported),
        cmocka_unit_test(test_print_json),
        cmocka_unit_test(test_append_message),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
