/* avro_source: archive tables replayed as an rt_source. Parts are written here with the table
 * writer (avro_file + avenc_message) into a temporary directory laid out as raw-output and
 * flat-output lay out their tables; the source must return every record once, in record-time
 * order across parts and partitions, with the live topic's key, skip hidden and in-progress
 * parts, refuse a foreign schema, turn damaged blocks into bad spans and go on, split records
 * into key shards, and continue at a position after a restart. */
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

#include "connectors/avro_source.h"
#include "event/event.pb-c.h"
#include "formats/avro_decode.h"
#include "formats/avro_encode.h"
#include "formats/avro_file.h"
#include "formats/avro_schema.h"
#include "formats/record_file.h"
#include "logproc/join.pb-c.h"
#include "runtime/htab.h"
#include "schemas_embedded.h"

#define BASE 1601596800000LL /* 2020-10-02T00:00:00Z */
#define HOUR 3600000LL

static char g_dir[256];

static void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static void user_of(int64_t ts, char *buf, size_t cap)
{
    snprintf(buf, cap, "user-%lld", (long long)(ts % 7));
}

/* A part of LogRequests with these event API timestamps (in this order). */
static void write_lr_part(const avsc_schema *s, const char *rel, const int64_t *ts, size_t n,
                          size_t block_bytes)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    mkdirs(dir);
    size_t jl;
    const char *j = avsc_schema_json(s, &jl);
    avro_file_opts o = {.codec = "snappy", .block_bytes = block_bytes};
    avro_file_out *w;
    assert_int_equal(avro_file_out_new(path, j, jl, &o, &w, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
        Common__UserInfo ui = COMMON__USER_INFO__INIT;
        Common__Timing t = COMMON__TIMING__INIT;
        char user[32];
        user_of(ts[i], user, sizeof user);
        lr.platform_id = 3;
        lr.has_platform_id = 1;
        ui.log_user_id = user;
        lr.user_info = &ui;
        t.event_api_timestamp = (uint64_t)ts[i];
        t.has_event_api_timestamp = 1;
        lr.timing = &t;
        assert_int_equal(avro_file_out_append_message(w, s, &lr.base, NULL, err, sizeof err), 0);
    }
    assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);
}

static void write_raw(const char *rel, const void *bytes, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    mkdirs(dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

typedef struct item {
    int kind; /* RT_SOURCE_RECORD or _BAD */
    int64_t ts, offset;
    uint8_t key[64];
    size_t klen;
    uint8_t *value;
    size_t vlen;
    char name[512], error[512];
} item;

typedef struct items {
    item *v;
    size_t n;
} items;

static void free_items(items *it)
{
    for (size_t i = 0; i < it->n; i++)
        free(it->v[i].value);
    free(it->v);
    it->v = NULL;
    it->n = 0;
}

/* Reads a source to its end (at most max items). */
static void drain(avsrc *a, items *out, size_t max)
{
    rt_source *s = avsrc_source(a);
    char err[512];
    out->v = calloc(max ? max : 1, sizeof *out->v);
    out->n = 0;
    for (;;) {
        rt_source_record r;
        int k = s->next(s, &r, err, sizeof err);
        if (k < 0) fail_msg("next: %s", err);
        if (k == RT_SOURCE_END) break;
        assert_true(out->n < max);
        item *it = &out->v[out->n++];
        it->kind = k;
        it->ts = r.ts;
        it->offset = r.offset;
        assert_true(r.key_len <= sizeof it->key);
        if (r.key_len) memcpy(it->key, r.key, r.key_len);
        it->klen = r.key_len;
        it->value = malloc(r.value_len ? r.value_len : 1);
        if (r.value_len) memcpy(it->value, r.value, r.value_len);
        it->vlen = r.value_len;
        snprintf(it->name, sizeof it->name, "%s", s->name);
        if (r.error) snprintf(it->error, sizeof it->error, "%s", r.error);
        assert_true(s->position(s) > r.offset);
    }
    /* at the end it stays at the end */
    rt_source_record r;
    assert_int_equal(s->next(s, &r, err, sizeof err), RT_SOURCE_END);
}

static avsrc *open_src(const char *spec, avsrc_kind kind, int64_t reorder)
{
    avsrc_config c = {.spec = spec, .flag = "source", .kind = kind, .reorder_ms = reorder};
    avsrc *a;
    char err[1024];
    if (avsrc_open(&c, &a, err, sizeof err)) fail_msg("avsrc_open %s: %s", spec, err);
    return a;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_avro_source.XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The root of a raw-output run: two hourly partitions, three parts whose records interleave
 * in time, plus files a reader must skip. */
static void write_log_request_root(const avsc_schema *s)
{
    int64_t a[] = {BASE + 1000, BASE + 4000, BASE + 7000, BASE + 20000};
    int64_t b[] = {BASE + 2000, BASE + 5000, BASE + 8000};
    int64_t c[] = {BASE + 3000, BASE + 6000, BASE + 9000, BASE + 9000};
    int64_t early[] = {BASE - HOUR + 10, BASE - HOUR + 20};
    write_lr_part(s, "root/raw/log-request/dt=2020-10-02/hour=00/part-0000000a-0-0-0.avro", a, 4,
                  64);
    write_lr_part(s, "root/raw/log-request/dt=2020-10-02/hour=00/part-0000000a-1-0-0.avro", b, 3,
                  64);
    write_lr_part(s, "root/raw/log-request/dt=2020-10-02/hour=00/part-0000000b-0-0-0.avro", c, 4,
                  1 << 20);
    write_lr_part(s, "root/raw/log-request/dt=2020-10-01/hour=23/part-0000000a-0-0-0.avro", early,
                  2, 64);
    write_raw("root/raw/log-request/dt=2020-10-02/hour=00/.part-0000000c-0-0-0.avro.inprogress",
              "junk", 4);
    write_raw("root/raw/log-request/dt=2020-10-02/hour=00/.hidden.avro", "junk", 4);
    write_raw("root/raw/log-request/dt=2020-10-02/hour=00/_SUCCESS", "", 0);
    /* another table beside it, of another schema: never read */
    write_raw("root/raw/user/dt=2020-10-02/hour=00/part-0000000a-0-0-0.avro", "junk", 4);
}

static void test_order_keys_and_layouts(void **state)
{
    (void)state;
    char err[512], spec[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    write_log_request_root(s);
    const int64_t want[] = {BASE - HOUR + 10, BASE - HOUR + 20, BASE + 1000, BASE + 2000,
                            BASE + 3000,      BASE + 4000,      BASE + 5000, BASE + 6000,
                            BASE + 7000,      BASE + 8000,      BASE + 9000, BASE + 9000,
                            BASE + 20000};
    snprintf(spec, sizeof spec, "%s/root/", g_dir);
    assert_true(avsrc_spec_is_tables(spec));
    avsrc *a = open_src(spec, AVSRC_LOG_REQUEST, 0);
    assert_int_equal(avsrc_parts(a), 4);
    assert_true(avsrc_total_bytes(a) > 0);
    items it;
    drain(a, &it, 100);
    assert_int_equal(it.n, 13);
    for (size_t i = 0; i < it.n; i++) {
        assert_int_equal(it.v[i].kind, RT_SOURCE_RECORD);
        assert_int_equal(it.v[i].ts, want[i]);
        if (i) assert_true(it.v[i].offset > it.v[i - 1].offset);
        /* the live key and the packed LogRequest */
        char user[32];
        uint8_t key[64];
        user_of(want[i], user, sizeof user);
        size_t kl = recfile_make_key(3, user, key, sizeof key);
        assert_int_equal(it.v[i].klen, kl);
        assert_memory_equal(it.v[i].key, key, kl);
        Event__LogRequest *lr = event__log_request__unpack(NULL, it.v[i].vlen, it.v[i].value);
        assert_non_null(lr);
        assert_int_equal(lr->platform_id, 3);
        assert_int_equal((int64_t)lr->timing->event_api_timestamp, want[i]);
        event__log_request__free_unpacked(lr, NULL);
    }
    free_items(&it);
    avsrc_free(a);

    /* the table directory itself, and one partition under it */
    snprintf(spec, sizeof spec, "%s/root/raw/log-request", g_dir);
    a = open_src(spec, AVSRC_LOG_REQUEST, 0);
    drain(a, &it, 100);
    assert_int_equal(it.n, 13);
    free_items(&it);
    avsrc_free(a);
    snprintf(spec, sizeof spec, "%s/root/raw/log-request/dt=2020-10-01", g_dir);
    a = open_src(spec, AVSRC_LOG_REQUEST, 0);
    drain(a, &it, 100);
    assert_int_equal(it.n, 2);
    assert_int_equal(it.v[0].ts, BASE - HOUR + 10);
    free_items(&it);
    avsrc_free(a);

    /* no parts: the error says what was looked for */
    avsrc_config c = {.spec = g_dir, .flag = "source", .kind = AVSRC_JOINED_EVENT};
    snprintf(spec, sizeof spec, "%s/root/raw/log-request/dt=2020-10-03", g_dir);
    mkdirs(spec);
    c.spec = spec;
    avsrc *none;
    char e2[2048];
    assert_int_equal(avsrc_open(&c, &none, e2, sizeof e2), -1);
    assert_non_null(strstr(e2, "--source"));
    assert_non_null(strstr(e2, "etl/joined_impression"));
    assert_non_null(strstr(e2, "no Avro parts"));
    /* a regular file is not tables */
    snprintf(spec, sizeof spec, "%s/root/raw/log-request/dt=2020-10-02/hour=00/_SUCCESS", g_dir);
    assert_false(avsrc_spec_is_tables(spec));
    assert_true(avsrc_spec_is_tables("s3://bucket/prefix"));
    avsc_schema_free(s);
}

/* Records written out of order within a part come out sorted (within the reorder window); with
 * reordering off they come in write order, which shows the window does it. */
static void test_reorder_within_part(void **state)
{
    (void)state;
    char err[512], spec[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    int64_t ts[] = {BASE + 5000, BASE + 3000, BASE + 4000, BASE + 1000, BASE + 9000, BASE + 8000};
    write_lr_part(s, "skew/raw/log-request/dt=2020-10-02/hour=00/part-0000000a-0-0-0.avro", ts, 6,
                  64);
    snprintf(spec, sizeof spec, "%s/skew", g_dir);
    items it;
    avsrc *a = open_src(spec, AVSRC_LOG_REQUEST, 0);
    drain(a, &it, 10);
    assert_int_equal(it.n, 6);
    for (size_t i = 1; i < it.n; i++)
        assert_true(it.v[i].ts >= it.v[i - 1].ts);
    assert_int_equal(it.v[0].ts, BASE + 1000);
    free_items(&it);
    avsrc_free(a);
    a = open_src(spec, AVSRC_LOG_REQUEST, -1);
    drain(a, &it, 10);
    for (size_t i = 0; i < it.n; i++)
        assert_int_equal(it.v[i].ts, ts[i]);
    free_items(&it);
    avsrc_free(a);
    /* a window smaller than the skew leaves the far-behind record where it was */
    avsrc_config c = {.spec = spec, .kind = AVSRC_LOG_REQUEST, .reorder_ms = 1500};
    assert_int_equal(avsrc_open(&c, &a, err, sizeof err), 0);
    drain(a, &it, 10);
    assert_int_equal(it.v[0].ts, BASE + 3000);
    free_items(&it);
    avsrc_free(a);
    avsc_schema_free(s);
}

static void test_bad_blocks_and_foreign_schema(void **state)
{
    (void)state;
    char err[2048], spec[512], path[1024];
    avsc_schema *s, *je;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    assert_int_equal(avsc_schema_new(&event__joined_event__descriptor, &je, err, sizeof err), 0);
    int64_t ts[40];
    for (int i = 0; i < 40; i++)
        ts[i] = BASE + 1000 * i;
    const char *rel = "bad/raw/log-request/dt=2020-10-02/hour=00/part-0000000a-0-0-0.avro";
    write_lr_part(s, rel, ts, 40, 64); /* small blocks: a few datums each */
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    uint8_t *buf = malloc((size_t)len);
    fseek(f, 0, SEEK_SET);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    avdec_file *df;
    assert_int_equal(avdec_file_open(buf, (size_t)len, path, 0, 0, &df, err, sizeof err), 0);
    long data = (long)avdec_file_data_offset(df);
    avdec_file_free(df);
    long at = data + (len - data) / 2; /* a byte in the middle of the blocks */
    fseek(f, at, SEEK_SET);
    fputc(buf[at] ^ 0x5a, f);
    fclose(f);
    free(buf);
    snprintf(spec, sizeof spec, "%s/bad", g_dir);
    avsrc *a = open_src(spec, AVSRC_LOG_REQUEST, 0);
    items it;
    drain(a, &it, 100);
    size_t bad = 0, good = 0;
    for (size_t i = 0; i < it.n; i++) {
        if (it.v[i].kind == RT_SOURCE_BAD) {
            bad++;
            assert_string_equal(it.v[i].name, path);
            assert_non_null(strstr(it.v[i].error, "block at byte"));
            if (it.v[i].vlen == 0) fail_msg("empty bad span: %s", it.v[i].error);
        } else {
            good++;
            assert_string_equal(it.v[i].name, spec);
        }
    }
    assert_int_equal(bad, 1);
    /* the damaged block is lost, no more (a damaged datum count may read extra datums from
     * the block: Avro has no checksum over the count) */
    assert_true(good >= 30);
    avsrc_stats st;
    avsrc_get_stats(a, &st);
    assert_int_equal(st.bad, 1);
    assert_int_equal(st.records, good);
    free_items(&it);
    avsrc_free(a);

    /* a part of another schema in the table: refused, naming the file */
    snprintf(path, sizeof path, "%s/foreign/raw/log-request/dt=2020-10-02/hour=00", g_dir);
    mkdirs(path);
    strcat(path, "/part-0000000a-0-0-0.avro");
    size_t jl;
    const char *jj = avsc_schema_json(je, &jl);
    avro_file_out *w;
    assert_int_equal(avro_file_out_new(path, jj, jl, NULL, &w, err, sizeof err), 0);
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    assert_int_equal(avro_file_out_append_message(w, je, &e.base, NULL, err, sizeof err), 0);
    assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);
    snprintf(spec, sizeof spec, "%s/foreign", g_dir);
    avsrc_config c = {.spec = spec, .flag = "source", .kind = AVSRC_LOG_REQUEST};
    assert_int_equal(avsrc_open(&c, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "part-0000000a-0-0-0.avro"));
    assert_non_null(strstr(err, "another schema"));
    assert_non_null(strstr(err, "event.LogRequest"));
    avsc_schema_free(s);
    avsc_schema_free(je);
}

static void test_shards_and_seek(void **state)
{
    (void)state;
    char err[512], spec[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    write_log_request_root(s);
    snprintf(spec, sizeof spec, "%s/root", g_dir);
    items all;
    avsrc *a = open_src(spec, AVSRC_LOG_REQUEST, 0);
    drain(a, &all, 100);
    avsrc_free(a);
    /* two shards: disjoint, together everything, each by the key hash */
    size_t total = 0;
    for (uint32_t sh = 0; sh < 2; sh++) {
        avsrc_config c = {.spec = spec, .kind = AVSRC_LOG_REQUEST, .shard = sh, .nshards = 2};
        assert_int_equal(avsrc_open(&c, &a, err, sizeof err), 0);
        items it;
        drain(a, &it, 100);
        for (size_t i = 0; i < it.n; i++) {
            assert_int_equal(rt_hash_bytes(it.v[i].key, it.v[i].klen) % 2, sh);
            if (i) assert_true(it.v[i].ts >= it.v[i - 1].ts);
        }
        total += it.n;
        free_items(&it);
        avsrc_free(a);
    }
    assert_int_equal(total, all.n);
    /* a fresh source seeks to a record's offset and continues with that record */
    for (size_t k = 0; k < all.n; k += 3) {
        a = open_src(spec, AVSRC_LOG_REQUEST, 0);
        assert_int_equal(avsrc_seek(a, all.v[k].offset, err, sizeof err), 0);
        items rest;
        drain(a, &rest, 100);
        assert_int_equal(rest.n, all.n - k);
        for (size_t i = 0; i < rest.n; i++) {
            assert_int_equal(rest.v[i].ts, all.v[k + i].ts);
            assert_int_equal(rest.v[i].offset, all.v[k + i].offset);
            assert_int_equal(rest.v[i].vlen, all.v[k + i].vlen);
            assert_memory_equal(rest.v[i].value, all.v[k + i].value, rest.v[i].vlen);
        }
        free_items(&rest);
        avsrc_free(a);
    }
    /* past the end: an error */
    a = open_src(spec, AVSRC_LOG_REQUEST, 0);
    assert_int_equal(avsrc_seek(a, all.v[all.n - 1].offset + 1000000, err, sizeof err), -1);
    assert_non_null(strstr(err, "past the end"));
    avsrc_free(a);
    free_items(&all);
    avsc_schema_free(s);
}

/* Joined events: both tables merged, record time = the log timestamp, key = ids. LogUserUser:
 * the datum itself as the value. */
static void test_joined_and_luu(void **state)
{
    (void)state;
    char err[512], spec[512], path[1024];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__joined_event__descriptor, &s, err, sizeof err), 0);
    size_t jl;
    const char *j = avsc_schema_json(s, &jl);
    const char *tables[] = {"etl/joined_impression", "etl/joined_action"};
    for (int t = 0; t < 2; t++) {
        snprintf(path, sizeof path, "%s/flat/%s/dt=2020-10-02/hour=00", g_dir, tables[t]);
        mkdirs(path);
        strcat(path, "/part-0000000a-0-0-0.avro");
        avro_file_opts o = {.codec = "null"};
        avro_file_out *w;
        assert_int_equal(avro_file_out_new(path, j, jl, &o, &w, err, sizeof err), 0);
        for (int i = 0; i < 3; i++) {
            Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
            Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
            Common__Timing tm = COMMON__TIMING__INIT;
            Event__Action act = EVENT__ACTION__INIT;
            Common__Timing at = COMMON__TIMING__INIT;
            ids.platform_id = 5;
            ids.has_platform_id = 1;
            ids.log_user_id = t ? "lu-action" : "lu-imp";
            e.ids = &ids;
            if (t == 0) {
                tm.log_timestamp = (uint64_t)(BASE + 1000 * (2 * i));
                tm.has_log_timestamp = 1;
                e.timing = &tm;
            } else { /* no top-level timing: the action's log timestamp */
                at.log_timestamp = (uint64_t)(BASE + 1000 * (2 * i + 1));
                at.has_log_timestamp = 1;
                act.timing = &at;
                e.action = &act;
            }
            assert_int_equal(avro_file_out_append_message(w, s, &e.base, NULL, err, sizeof err), 0);
        }
        assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);
    }
    snprintf(spec, sizeof spec, "%s/flat", g_dir);
    avsrc *a = open_src(spec, AVSRC_JOINED_EVENT, 0);
    assert_int_equal(avsrc_parts(a), 2);
    items it;
    drain(a, &it, 10);
    assert_int_equal(it.n, 6);
    for (size_t i = 0; i < it.n; i++) {
        assert_int_equal(it.v[i].ts, BASE + 1000 * (int64_t)i);
        uint8_t key[64];
        size_t kl = recfile_make_key(5, i % 2 ? "lu-action" : "lu-imp", key, sizeof key);
        assert_int_equal(it.v[i].klen, kl);
        assert_memory_equal(it.v[i].key, key, kl);
        Event__JoinedEvent *e = event__joined_event__unpack(NULL, it.v[i].vlen, it.v[i].value);
        assert_non_null(e);
        assert_int_equal(e->action != NULL, i % 2);
        event__joined_event__free_unpacked(e, NULL);
    }
    free_items(&it);
    avsrc_free(a);
    /* a LogRequest source over the joined root finds no log-request table, then refuses the
     * parts it finds under the root, naming one */
    avsrc_config c = {.spec = spec, .flag = "source", .kind = AVSRC_LOG_REQUEST};
    assert_int_equal(avsrc_open(&c, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "another schema"));

    /* LogUserUser */
    const char *luu = embedded_schema("log_user_user");
    assert_non_null(luu);
    snprintf(path, sizeof path, "%s/raw2/raw/log-user-user/dt=2020-10-02/hour=00", g_dir);
    mkdirs(path);
    strcat(path, "/part-0000000a-0-0-0.avro");
    avro_file_out *w;
    assert_int_equal(avro_file_out_new(path, luu, strlen(luu), NULL, &w, err, sizeof err), 0);
    avenc_buf b;
    avenc_buf_init(&b, 1 << 20);
    for (int i = 0; i < 2; i++) {
        avenc_log_user_user r = {.platform_id = 9,
                                 .event_api_timestamp = BASE + 10 - i,
                                 .log_user_id = i ? "lu-b" : "lu-a",
                                 .user_id = "u"};
        avenc_buf_clear(&b);
        assert_int_equal(avenc_log_user_user_datum(&r, &b, err, sizeof err), 0);
        assert_int_equal(avro_file_out_append(w, b.data, b.len, err, sizeof err), 0);
    }
    assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);
    snprintf(spec, sizeof spec, "%s/raw2", g_dir);
    a = open_src(spec, AVSRC_LOG_USER_USER, 0);
    drain(a, &it, 10);
    assert_int_equal(it.n, 2);
    assert_int_equal(it.v[0].ts, BASE + 9); /* sorted */
    uint8_t key[64];
    size_t kl = recfile_make_key(9, "lu-b", key, sizeof key);
    assert_memory_equal(it.v[0].key, key, kl);
    avenc_log_user_user r = {
        .platform_id = 9, .event_api_timestamp = BASE + 9, .log_user_id = "lu-b", .user_id = "u"};
    avenc_buf_clear(&b);
    assert_int_equal(avenc_log_user_user_datum(&r, &b, err, sizeof err), 0);
    assert_int_equal(it.v[0].vlen, b.len);
    assert_memory_equal(it.v[0].value, b.data, b.len);
    free_items(&it);
    avsrc_free(a);
    avenc_buf_free(&b);
    avsc_schema_free(s);
}

/* A table written by 4 tasks over 5 commits (20 parts in one partition): with room for two
 * commits' parts the source opens them in commit order and returns everything sorted; with room
 * for two parts it cannot, and says so (late_parts). */
static void test_many_parts_commit_order(void **state)
{
    (void)state;
    char err[512], spec[512], rel[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    for (int task = 0; task < 4; task++)
        for (int commit = 0; commit < 5; commit++) {
            int64_t ts[10];
            for (int k = 0; k < 10; k++)
                ts[k] = BASE + commit * 20000 + k * 2000 + task * 100;
            snprintf(rel, sizeof rel,
                     "many/raw/log-request/dt=2020-10-02/hour=00/part-0000000a-%d-%d-0.avro", task,
                     commit);
            write_lr_part(s, rel, ts, 10, 1 << 20);
        }
    snprintf(spec, sizeof spec, "%s/many", g_dir);
    for (int pass = 0; pass < 2; pass++) {
        avsrc_config c = {
            .spec = spec, .kind = AVSRC_LOG_REQUEST, .max_open = pass ? 2 : 8, .reorder_ms = -1};
        avsrc *a;
        assert_int_equal(avsrc_open(&c, &a, err, sizeof err), 0);
        assert_int_equal(avsrc_parts(a), 20);
        items it;
        drain(a, &it, 400);
        assert_int_equal(it.n, 200);
        size_t back = 0;
        for (size_t i = 1; i < it.n; i++)
            back += it.v[i].ts < it.v[i - 1].ts;
        avsrc_stats st;
        avsrc_get_stats(a, &st);
        if (pass == 0) {
            assert_int_equal(back, 0);
            assert_int_equal(st.late_parts, 0);
        } else {
            assert_true(back > 0);
            assert_true(st.late_parts > 0);
        }
        free_items(&it);
        avsrc_free(a);
    }
    avsc_schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_keys_and_layouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reorder_within_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_blocks_and_foreign_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shards_and_seek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_joined_and_luu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_parts_commit_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
