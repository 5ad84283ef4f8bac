/* The counter's tables byte for byte: feature ids (§B.5 FeatureIdTest vectors), the start-up
 * metadata CSVs (§B.6), Redis key and field bytes (§B.4 worked example), the query hash
 * (§B.3 StringUtilTest vectors), and the Java key hash of the last-time jitter (§B.8). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/counter/counter_tables.h"

static void test_feature_id_vectors(void **s)
{
    /* content-device NAVIGATE per window */
    assert_int_equal(ctable_fid(CTYPE_ITEM_DEVICE_COUNT, 64, CWINDOW_HOUR), 1056834);
    assert_int_equal(ctable_fid(CTYPE_ITEM_DEVICE_COUNT, 64, CWINDOW_DAY), 1056836);
    assert_int_equal(ctable_fid(CTYPE_ITEM_DEVICE_COUNT, 64, CWINDOW_DAY_7), 1056838);
    assert_int_equal(ctable_fid(CTYPE_ITEM_DEVICE_COUNT, 64, CWINDOW_DAY_30), 1056840);
    assert_int_equal(ctable_fid(CTYPE_ITEM_DEVICE_COUNT, CMETRIC_IMPRESSION, CWINDOW_HOUR),
                     1056802);
    assert_int_equal(ctable_fid(CTYPE_ITEM_DEVICE_COUNT, 96, CWINDOW_DAY_7), 1056870);
    assert_int_equal(ctable_fid(CTYPE_ITEM_DEVICE_COUNT, CMETRIC_SUM_PURCHASE_GMV, CWINDOW_DAY_90),
                     1064938);
    assert_int_equal(ctable_fid(CTYPE_LOG_USER_COUNT, 64, CWINDOW_DAY), 1237060);
    assert_int_equal(ctable_fid(CTYPE_USER_COUNT, 256, CWINDOW_DAY_30), 1147144);
    assert_int_equal(ctable_fid(CTYPE_LOG_USER_ITEM_HOURS_AGO, 160, CWINDOW_NONE), 1351840);
    assert_int_equal(ctable_fid(CTYPE_USER_ITEM_COUNT, 64, CWINDOW_DAY_90), 1327178);
    assert_int_equal(ctable_fid(CTYPE_USER_QUERY_HOURS_AGO, 224, CWINDOW_NONE), 1548512);
    assert_int_equal(ctable_fid(CTYPE_USER_QUERY_COUNT, 64, CWINDOW_DAY_90), 1540170);
    assert_int_equal(ctable_fid(CTYPE_USER_QUERY_HOURS_AGO, 64, CWINDOW_NONE), 1548352);
    assert_int_equal(ctable_fid(CTYPE_LOG_USER_ITEM_HOURS_AGO, 64, CWINDOW_NONE), 1351744);
    assert_int_equal(ctable_fid(CTYPE_LOG_USER_ITEM_COUNT, 64, CWINDOW_DAY_90), 1343562);
    /* the reader's type mask: shift 13 gives the CountType number */
    assert_int_equal(CTYPE_ITEM_DEVICE_COUNT >> 13, 129);
    assert_int_equal(CTYPE_LOG_USER_QUERY_HOURS_AGO >> 13, 191);
}

static void test_windows(void **s)
{
    assert_int_equal(ctable_window(1, 3600000), CWINDOW_HOUR);
    assert_int_equal(ctable_window(1, 86400000), CWINDOW_DAY);
    assert_int_equal(ctable_window(7, 86400000), CWINDOW_DAY_7);
    assert_int_equal(ctable_window(30, 86400000), CWINDOW_DAY_30);
    assert_int_equal(ctable_window(90, 86400000), CWINDOW_DAY_90);
    assert_int_equal(ctable_window(2, 3600000), -1);
    assert_int_equal(ctable_window(14, 86400000), -1);
}

static void test_metric_names(void **s)
{
    assert_string_equal(ctable_metric_name(0), "UNKNOWN_AGGREGATE");
    assert_string_equal(ctable_metric_name(32), "COUNT_IMPRESSION");
    assert_string_equal(ctable_metric_name(64), "COUNT_NAVIGATE");
    assert_string_equal(ctable_metric_name(608), "COUNT_REMOVE_FROM_LIST");
    assert_string_equal(ctable_metric_name(8160), "SUM_PURCHASE_GMV");
    assert_null(ctable_metric_name(640));
    assert_null(ctable_metric_name(33));
}

static int count_ids(const rt_buf *b)
{
    int n = 1;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == ',';
    return n;
}

static int has_id(const rt_buf *b, const char *id)
{
    char want[32];
    snprintf(want, sizeof want, ",%s,", id);
    char *csv = malloc(b->len + 3);
    csv[0] = ',';
    memcpy(csv + 1, b->data, b->len);
    csv[b->len + 1] = ',';
    csv[b->len + 2] = 0;
    int found = strstr(csv, want) != NULL;
    free(csv);
    return found;
}

static void test_feature_id_csv(void **s)
{
    rt_buf b;
    rt_buf_init(&b, 1 << 20);
    assert_int_equal(ctable_feature_ids(CTABLE_CONTENT_DEVICE, &b), 0);
    assert_int_equal(count_ids(&b), 80);
    static const char start[] = "1056802,1056804,1056806,1056808,1056834,";
    assert_memory_equal(b.data, start, strlen(start));
    assert_true(has_id(&b, "1056834"));
    assert_false(memchr(b.data, ' ', b.len) != NULL);
    rt_buf_reset(&b);
    assert_int_equal(ctable_feature_ids(CTABLE_LAST_TIME_USER_QUERY, &b), 0);
    assert_int_equal(count_ids(&b), 40);
    assert_true(has_id(&b, "1540170"));
    assert_true(has_id(&b, "1548352"));
    /* no zero fid, no duplicates in any table */
    for (int t = 0; t < CTABLE_COUNT; t++) {
        rt_buf_reset(&b);
        assert_int_equal(ctable_feature_ids((ctable_id)t, &b), 0);
        assert_false(has_id(&b, "0"));
        char *csv = strndup((const char *)b.data, b.len);
        int n = 0;
        int64_t ids[80];
        for (char *tok = strtok(csv, ","); tok; tok = strtok(NULL, ","))
            ids[n++] = atoll(tok);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                assert_true(ids[i] != ids[j]);
        free(csv);
    }
    rt_buf_free(&b);
}

static void test_table_order_and_formats(void **s)
{
    static const char *const names[] = {
        "platform-device",          "content-device",       "log-user", "user",
        "last-time-log-user-event", "last-time-user-event", "query",    "content-query",
        "last-time-log-user-query", "last-time-user-query",
    };
    for (int t = 0; t < CTABLE_COUNT; t++)
        assert_string_equal(ctable_get((ctable_id)t)->name, names[t]);
    assert_string_equal(ctable_get(CTABLE_PLATFORM_DEVICE)->row_format, "os,user_agent,fid:value");
    assert_string_equal(ctable_get(CTABLE_CONTENT_DEVICE)->row_format, "os,user_agent,fid:value");
    assert_string_equal(ctable_get(CTABLE_LOG_USER)->row_format, "fid:value");
    assert_string_equal(ctable_get(CTABLE_LAST_TIME_USER_QUERY)->row_format, "fid:value");
}

static void test_query_hash_vectors(void **s)
{
    struct {
        const char *q, *hex;
    } v[] = {
        {"", "ef46db3751d8e999"},
        {"a", "d24ec4f1a98c6e5b"},
        {"prom dresses", "2633a713effe6bda"},
        {"query one", "28841ff692f4061a"},
        {"query two", "41809fa5f00aefaa"},
        {"Call me Ishmael. Some years ago--never mind how long precisely-", "2a2e85470d6fd96"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[17];
        uint64_t h = ctable_query_hash(v[i].q, strlen(v[i].q));
        assert_int_equal(ctable_hash_hex(h, hex), strlen(v[i].hex));
        assert_string_equal(hex, v[i].hex);
    }
    assert_int_equal((int64_t)CTABLE_EMPTY_QUERY_HASH, INT64_C(-1205034819632174695));
    assert_true(ctable_query_hash("", 0) == CTABLE_EMPTY_QUERY_HASH);
}

/* Renders the key and field of table t for k into key/field (NUL-terminated). */
static void render(ctable_id t, const ctable_key *k, int64_t fid, rt_buf *key, rt_buf *field)
{
    rt_buf_reset(key);
    rt_buf_reset(field);
    uint8_t enc[1024];
    int n = ctable_key_encode(t, k, enc, sizeof enc);
    assert_true(n > 0);
    ctable_key d;
    assert_int_equal(ctable_key_decode(t, enc, (size_t)n, &d), 0);
    assert_int_equal(ctable_redis_key(t, &d, key), 0);
    assert_int_equal(ctable_redis_field(t, &d, fid, field), 0);
}

#define BYTES(b, lit) (b.len == sizeof(lit) - 1 && !memcmp(b.data, lit, sizeof(lit) - 1))

static void test_worked_example_bytes(void **s)
{
    rt_buf key, field;
    rt_buf_init(&key, 4096);
    rt_buf_init(&field, 4096);
    uint64_t two = ctable_query_hash("query two", 9);
    /* last-time-user-query: 32 30 1F 1D 75 1F 74 6F 64 64 1F 1D 71 1F "41809fa5f00aefaa" */
    ctable_key k = {.platform_id = 20, .metric = 64, .query_hash = two, .s = {"todd"}, .n = {4}};
    render(CTABLE_LAST_TIME_USER_QUERY, &k, 1540170, &key, &field);
    assert_true(BYTES(key, "\x32\x30\x1F\x1D\x75\x1F\x74\x6F\x64\x64\x1F\x1D\x71\x1F"
                           "41809fa5f00aefaa"));
    assert_true(BYTES(field, "1540170"));
    /* content-device, hourly */
    ctable_key cd = {.platform_id = 20,
                     .metric = 64,
                     .s = {"NAVIGATE @ 600000", "Other", "okhttp"},
                     .n = {17, 5, 6}};
    render(CTABLE_CONTENT_DEVICE, &cd, 1056834, &key, &field);
    assert_true(BYTES(key, "20\x1FNAVIGATE @ 600000"));
    assert_true(BYTES(field, "Other\x1Fokhttp\x1F"
                             "1056834"));
    /* platform-device */
    ctable_key pd = {.platform_id = 20, .metric = 64, .s = {"Other", "okhttp"}, .n = {5, 6}};
    render(CTABLE_PLATFORM_DEVICE, &pd, 1056834, &key, &field);
    assert_true(BYTES(key, "20"));
    assert_true(BYTES(field, "Other\x1Fokhttp\x1F"
                             "1056834"));
    /* log-user, user */
    ctable_key lu = {.platform_id = 20, .metric = 64, .s = {"log_todd"}, .n = {8}};
    render(CTABLE_LOG_USER, &lu, 1237060, &key, &field);
    assert_true(BYTES(key, "20\x1F\x1Du\x1Flog_todd"));
    assert_true(BYTES(field, "1237060"));
    render(CTABLE_USER, &lu, 1147144, &key, &field);
    assert_true(BYTES(key, "20\x1F\x1Du\x1Flog_todd"));
    /* query and content-query */
    ctable_key q = {.platform_id = 20, .metric = 64, .query_hash = two};
    render(CTABLE_QUERY, &q, 1, &key, &field);
    assert_true(BYTES(key, "20\x1F\x1Dq\x1F"
                           "41809fa5f00aefaa"));
    ctable_key cq = {.platform_id = 20, .metric = 64, .query_hash = two, .s = {"c1"}, .n = {2}};
    render(CTABLE_CONTENT_QUERY, &cq, 1, &key, &field);
    assert_true(BYTES(key, "20\x1F"
                           "c1\x1F\x1Dq\x1F"
                           "41809fa5f00aefaa"));
    /* last-time events */
    ctable_key le = {.platform_id = 20, .metric = 64, .s = {"log_todd", "c1"}, .n = {8, 2}};
    render(CTABLE_LAST_TIME_LOG_USER_EVENT, &le, 1351744, &key, &field);
    assert_true(BYTES(key, "20\x1F\x1Du\x1Flog_todd\x1F"
                           "c1"));
    assert_true(BYTES(field, "1351744"));
    /* empty components are kept */
    ctable_key e1 = {.platform_id = 20,
                     .metric = 64,
                     .query_hash = CTABLE_EMPTY_QUERY_HASH,
                     .s = {"", "Other", "Other"},
                     .n = {0, 5, 5}};
    render(CTABLE_CONTENT_DEVICE, &e1, 1056834, &key, &field);
    assert_true(BYTES(key, "20\x1F"));
    render(CTABLE_CONTENT_QUERY, &e1, 1, &key, &field);
    assert_true(BYTES(key, "20\x1F\x1F\x1Dq\x1F"
                           "ef46db3751d8e999"));
    render(CTABLE_USER, &e1, 1, &key, &field);
    assert_true(BYTES(key, "20\x1F\x1Du\x1F"));
    render(CTABLE_LAST_TIME_USER_QUERY, &e1, 1, &key, &field);
    assert_true(BYTES(key, "20\x1F\x1Du\x1F\x1F\x1Dq\x1F"
                           "ef46db3751d8e999"));
    /* the platform is a signed Java long */
    ctable_key neg = {.platform_id = -5, .metric = 0};
    render(CTABLE_QUERY, &neg, 1, &key, &field);
    assert_true(BYTES(key, "-5\x1F\x1Dq\x1F"
                           "0"));
    rt_buf_free(&key);
    rt_buf_free(&field);
}

static void test_key_encoding_round_trip(void **s)
{
    /* ids holding the separators and NUL survive: parts are length-prefixed */
    ctable_key k = {.platform_id = INT64_MIN,
                    .metric = 8160,
                    .query_hash = UINT64_MAX,
                    .s = {"a\x1F"
                          "b\0c",
                          "\x1D"},
                    .n = {5, 1}};
    uint8_t enc[256];
    int n = ctable_key_encode(CTABLE_LAST_TIME_LOG_USER_EVENT, &k, enc, sizeof enc);
    assert_int_equal(n, 10 + 4 + 5 + 4 + 1);
    ctable_key d;
    assert_int_equal(ctable_key_decode(CTABLE_LAST_TIME_LOG_USER_EVENT, enc, (size_t)n, &d), 0);
    assert_true(d.platform_id == INT64_MIN);
    assert_int_equal(d.metric, 8160);
    assert_int_equal(d.n[0], 5);
    assert_memory_equal(d.s[0],
                        "a\x1F"
                        "b\0c",
                        5);
    assert_int_equal(d.n[1], 1);
    /* truncated or padded bytes are rejected */
    assert_int_equal(ctable_key_decode(CTABLE_LAST_TIME_LOG_USER_EVENT, enc, (size_t)n - 1, &d),
                     -1);
    assert_int_equal(ctable_key_decode(CTABLE_QUERY, enc, (size_t)n, &d), -1);
    /* a key that does not fit is refused, not cut */
    assert_int_equal(ctable_key_encode(CTABLE_LAST_TIME_LOG_USER_EVENT, &k, enc, 20), -1);
}

static void test_java_key_hash(void **s)
{
    /* values computed with Java's hashCode rules by an independent script */
    ctable_key a = {.platform_id = 20, .metric = 64, .s = {"log_todd", "c1"}, .n = {8, 2}};
    assert_int_equal(ctable_java_key_hash(CTABLE_LAST_TIME_LOG_USER_EVENT, &a), 244557461);
    ctable_key b = {.platform_id = 20,
                    .metric = 64,
                    .query_hash = ctable_query_hash("query two", 9),
                    .s = {"todd"},
                    .n = {4}};
    assert_int_equal(ctable_java_key_hash(CTABLE_LAST_TIME_USER_QUERY, &b), -928720519);
    /* UTF-16 units: a code point above U+FFFF counts as its two surrogates */
    ctable_key c = {
        .platform_id = -5, .metric = 0, .s = {"", "\xC3\xA9\xF0\x9F\x98\x80"}, .n = {0, 6}};
    assert_int_equal(ctable_java_key_hash(CTABLE_LAST_TIME_USER_EVENT, &c), -1733497158);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feature_id_vectors),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test(test_feature_id_csv),
        cmocka_unit_test(test_table_order_and_formats),
        cmocka_unit_test(test_query_hash_vectors),
        cmocka_unit_test(test_worked_example_bytes),
        cmocka_unit_test(test_key_encoding_round_trip),
        cmocka_unit_test(test_java_key_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
