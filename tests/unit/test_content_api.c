/* The Content API client's pure pieces (src/connectors/content_api.h) and the content join's
 * side row (src/jobs/join/content_lookup.h): the query body's JSON escaping, the response
 * parsing with field filtering by Java String.hashCode (collisions included), the retry rule per
 * status code (spec/flat-output.md §9: retry iff n < attempts, 50*(n+1) ms), the cache's TTL after
 * access, short failure TTL and LRU eviction, the ContentApiError datum read back by avro-c, and
 * that a failing client never puts its key in an error message (a refused loopback port, no
 * server). The hash constants were computed independently (Python over UTF-16 code units). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "connectors/content_api.h"
#include "jobs/join/content_lookup.h"
#include "schemas_embedded.h"

#define HASH_STORE_ID (-1884271140)
#define HASH_ITEM_ID (-1178662002)
#define HASH_AA 2112 /* "Aa" and "BB" collide */

static char *body_of(const char *id, size_t len)
{
    rt_buf b;
    rt_buf_init(&b, 1 << 16);
    assert_int_equal(content_api_query_body(id, len, &b), 0);
    char *s = strndup((const char *)b.data, b.len);
    rt_buf_free(&b);
    return s;
}

static void test_query_body_escapes_the_id_as_jackson_does(void **state)
{
    (void)state;
    char *s = body_of("i-1-1", 5);
    assert_string_equal(s, "{\"content_ids\":[\"i-1-1\"],\"include_deleted\":true}");
    free(s);
    s = body_of("ab\"c", 4);
    assert_string_equal(s, "{\"content_ids\":[\"ab\\\"c\"],\"include_deleted\":true}");
    free(s);
    static const char odd[] = "a\\b\nc\td\x01" "e/\xc3\xa9";
    s = body_of(odd, sizeof odd - 1);
    assert_string_equal(s, "{\"content_ids\":[\"a\\\\b\\nc\\td\\u0001e/\xc3\xa9\"],"
                           "\"include_deleted\":true}");
    free(s);
}

static void test_query_body_over_the_limit_leaves_the_buffer_as_it_was(void **state)
{
    (void)state;
    rt_buf b;
    rt_buf_init(&b, 20);
    assert_int_equal(rt_buf_append(&b, "xy", 2), 0);
    assert_int_equal(content_api_query_body("i-1-1", 5, &b), -1);
    assert_int_equal(b.len, 2);
    rt_buf_free(&b);
}

static void keys_of(content_keys *k, const char *a, const char *b)
{
    const char *names[2] = {a, b};
    char err[200];
    assert_int_equal(content_keys_init(k, names, b ? 2 : 1, err, sizeof err), 0);
}

static void test_response_keeps_only_the_configured_fields_by_hash(void **state)
{
    (void)state;
    content_keys k;
    keys_of(&k, "storeId", NULL);
    assert_int_equal(k.hash[0], HASH_STORE_ID);
    content_fields f = {0};
    char err[300];
    static const char body[] = "{\"i-1-1\":{\"type\":\"ITEM\",\"storeId\":\"s-1-1\",\"itemId\":"
                               "\"i-1-1\"},\"i-1-2\":{\"storeId\":\"s-1-9\"}}";
    assert_int_equal(content_api_parse_response(body, sizeof body - 1, "i-1-1", &k, &f, err,
                                                sizeof err),
                     0);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.hash[0], HASH_STORE_ID);
    assert_string_equal(f.value[0], "s-1-1");
    content_fields_clear(&f);

    /* two keys: response order, each by its own hash */
    keys_of(&k, "storeId", "itemId");
    assert_int_equal(content_api_parse_response(body, sizeof body - 1, "i-1-1", &k, &f, err,
                                                sizeof err),
                     0);
    assert_int_equal(f.n, 2);
    assert_int_equal(f.hash[0], HASH_STORE_ID);
    assert_int_equal(f.hash[1], HASH_ITEM_ID);
    assert_string_equal(f.value[1], "i-1-1");
    content_fields_clear(&f);

    /* a field whose name collides with a key's hash is kept under that hash */
    keys_of(&k, "Aa", NULL);
    static const char coll[] = "{\"c\":{\"BB\":\"x\",\"storeId\":\"s\"}}";
    assert_int_equal(content_api_parse_response(coll, sizeof coll - 1, "c", &k, &f, err,
                                                sizeof err),
                     0);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.hash[0], HASH_AA);
    assert_string_equal(f.value[0], "x");
    content_fields_clear(&f);
}

static void test_response_null_or_missing_entry_gives_no_fields(void **state)
{
    (void)state;
    content_keys k;
    keys_of(&k, "storeId", NULL);
    content_fields f = {0};
    char err[300];
    assert_int_equal(content_api_parse_response("null", 4, "c", &k, &f, err, sizeof err), 0);
    assert_int_equal(f.n, 0);
    static const char other[] = "{\"d\":{\"storeId\":\"s\"}}";
    assert_int_equal(content_api_parse_response(other, sizeof other - 1, "c", &k, &f, err,
                                                sizeof err),
                     0);
    assert_int_equal(f.n, 0);
}

static void expect_parse_error(const char *body, const char *want)
{
    content_keys k;
    keys_of(&k, "storeId", NULL);
    content_fields f = {0};
    char err[300] = "";
    assert_int_equal(content_api_parse_response(body, strlen(body), "c-1", &k, &f, err,
                                                sizeof err),
                     -1);
    assert_int_equal(f.n, 0);
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    assert_non_null(strstr(err, "c-1"));
}

static void test_response_errors_name_the_content_and_the_field(void **state)
{
    (void)state;
    expect_parse_error("<html>503</html>", "not JSON");
    expect_parse_error("[1,2]", "not a JSON object");
    expect_parse_error("{\"c-1\":5}", "not an object");
    expect_parse_error("{\"c-1\":{\"storeId\":5}}", "field storeId");
    expect_parse_error("{\"c-1\":{\"storeId\":null}}", "null");
    /* an earlier kept field is released when a later one fails */
    content_keys k;
    keys_of(&k, "storeId", "itemId");
    content_fields f = {0};
    char err[300];
    static const char body[] = "{\"c-1\":{\"storeId\":\"s\",\"itemId\":true}}";
    assert_int_equal(content_api_parse_response(body, sizeof body - 1, "c-1", &k, &f, err,
                                                sizeof err),
                     -1);
    assert_int_equal(f.n, 0);
    /* a non-configured field may be anything */
    keys_of(&k, "storeId", NULL);
    static const char ok[] = "{\"c-1\":{\"price\":5,\"tags\":[1],\"storeId\":\"s\"}}";
    assert_int_equal(content_api_parse_response(ok, sizeof ok - 1, "c-1", &k, &f, err,
                                                sizeof err),
                     0);
    assert_int_equal(f.n, 1);
    content_fields_clear(&f);
}

static void test_retry_rule_counts_failures_per_status_code(void **state)
{
    (void)state;
    content_api_retry_policy p;
    char err[300];
    char *items[] = {"503=5", "0=2"};
    assert_int_equal(content_api_retry_policy_init(&p, 3, items, 2, err, sizeof err), 0);
    content_api_failures f = {0};
    int ms;
    /* 500 uses the default 3: retries after failures 1 and 2, then gives up */
    assert_int_equal(content_api_retry_decide(&p, &f, 500, &ms), 1);
    assert_int_equal(ms, 100);
    assert_int_equal(content_api_retry_decide(&p, &f, 500, &ms), 1);
    assert_int_equal(ms, 150);
    /* 503 has its own count and limit 5 */
    for (int n = 1; n <= 4; n++) {
        assert_int_equal(content_api_retry_decide(&p, &f, 503, &ms), 1);
        assert_int_equal(ms, 50 * (n + 1));
    }
    assert_int_equal(content_api_retry_decide(&p, &f, 503, &ms), 0);
    assert_int_equal(content_api_retry_decide(&p, &f, 500, &ms), 0);
    /* transport errors (0): limit 2 */
    content_api_failures g = {0};
    assert_int_equal(content_api_retry_decide(&p, &g, 0, &ms), 1);
    assert_int_equal(content_api_retry_decide(&p, &g, 0, &ms), 0);
    /* one attempt: never a retry */
    assert_int_equal(content_api_retry_policy_init(&p, 1, NULL, 0, err, sizeof err), 0);
    content_api_failures h = {0};
    assert_int_equal(content_api_retry_decide(&p, &h, 503, &ms), 0);
}

static void test_retry_policy_rejects_bad_items_naming_the_flag(void **state)
{
    (void)state;
    content_api_retry_policy p;
    char err[300];
    char *bad[] = {"503", "503=0", "abc=2", "503=101"};
    for (size_t i = 0; i < 4; i++) {
        err[0] = 0;
        assert_int_equal(content_api_retry_policy_init(&p, 3, &bad[i], 1, err, sizeof err), -1);
        assert_non_null(strstr(err, "--contentApiMaxAttemptsPerStatusCode"));
    }
    assert_int_equal(content_api_retry_policy_init(&p, 0, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "--contentApiMaxAttempts"));
}

static content_fields fields1(int32_t h, const char *v)
{
    content_fields f = {0};
    f.n = 1;
    f.hash[0] = h;
    f.value[0] = strdup(v);
    return f;
}

static void test_cache_success_expires_after_last_access(void **state)
{
    (void)state;
    content_cache *c;
    assert_int_equal(content_cache_new(10, 100, 10, &c), 0);
    content_fields f = fields1(HASH_STORE_ID, "s-1-1");
    assert_int_equal(content_cache_put(c, "i-1-1", 5, 0, &f, 0, NULL), 0);
    assert_int_equal(f.n, 0); /* the values moved into the cache */
    content_cache_hit h;
    assert_int_equal(content_cache_get(c, "i-1-1", 5, 50, &h), 1);
    assert_int_equal(h.failed, 0);
    assert_int_equal(h.n_fields, 1);
    assert_int_equal(h.hash[0], HASH_STORE_ID);
    assert_string_equal(h.value[0], "s-1-1");
    assert_int_equal(content_cache_get(c, "i-1-1", 5, 140, &h), 1); /* 50 + 100 > 140 */
    assert_int_equal(content_cache_get(c, "i-1-1", 5, 239, &h), 1); /* 140 + 100 > 239 */
    assert_int_equal(content_cache_get(c, "i-1-1", 5, 339, &h), 0); /* expired at 339 */
    assert_int_equal(content_cache_size(c), 0);
    assert_int_equal(content_cache_get(c, "i-1-2", 5, 0, &h), 0);
    content_cache_free(c);
}

static void test_cache_failure_expires_after_the_short_ttl_whatever_the_access(void **state)
{
    (void)state;
    content_cache *c;
    assert_int_equal(content_cache_new(10, 100000, 10, &c), 0);
    assert_int_equal(content_cache_put(c, "x", 1, 0, NULL, 503, "status 503"), 0);
    content_cache_hit h;
    assert_int_equal(content_cache_get(c, "x", 1, 5, &h), 1);
    assert_int_equal(h.failed, 1);
    assert_int_equal(h.status, 503);
    assert_string_equal(h.error, "status 503");
    assert_int_equal(content_cache_get(c, "x", 1, 9, &h), 1);
    assert_int_equal(content_cache_get(c, "x", 1, 10, &h), 0);
    /* a success replaces a failure */
    assert_int_equal(content_cache_put(c, "x", 1, 20, NULL, 0, "timeout"), 0);
    content_fields f = fields1(1, "v");
    assert_int_equal(content_cache_put(c, "x", 1, 21, &f, 0, NULL), 0);
    assert_int_equal(content_cache_get(c, "x", 1, 50, &h), 1);
    assert_int_equal(h.failed, 0);
    assert_string_equal(h.value[0], "v");
    assert_int_equal(content_cache_size(c), 1);
    content_cache_free(c);
}

static void test_cache_evicts_the_least_recently_used_over_its_size(void **state)
{
    (void)state;
    content_cache *c;
    assert_int_equal(content_cache_new(2, 1000, 1000, &c), 0);
    content_fields a = fields1(1, "a"), b = fields1(1, "b"), d = fields1(1, "d");
    assert_int_equal(content_cache_put(c, "a", 1, 0, &a, 0, NULL), 0);
    assert_int_equal(content_cache_put(c, "b", 1, 1, &b, 0, NULL), 0);
    content_cache_hit h;
    assert_int_equal(content_cache_get(c, "a", 1, 2, &h), 1); /* a is now the most recent */
    assert_int_equal(content_cache_put(c, "d", 1, 3, &d, 0, NULL), 0);
    assert_int_equal(content_cache_size(c), 2);
    assert_int_equal(content_cache_get(c, "b", 1, 4, &h), 0);
    assert_int_equal(content_cache_get(c, "a", 1, 4, &h), 1);
    assert_int_equal(content_cache_get(c, "d", 1, 4, &h), 1);
    /* many more than the size: stays at the size */
    for (int i = 0; i < 100; i++) {
        char id[16];
        int n = snprintf(id, sizeof id, "c%d", i);
        assert_int_equal(content_cache_put(c, id, (size_t)n, 10 + i, NULL, 500, "e"), 0);
        assert_true(content_cache_size(c) <= 2);
    }
    assert_int_equal(content_cache_get(c, "c99", 3, 200, &h), 1);
    assert_int_equal(content_cache_get(c, "c98", 3, 200, &h), 1);
    assert_int_equal(content_cache_get(c, "c97", 3, 200, &h), 0);
    content_cache_free(c);
}

static void test_error_row_datum_reads_back_with_avro_c(void **state)
{
    (void)state;
    const char *text = embedded_schema(CONTENT_LOOKUP_ERROR_SCHEMA);
    assert_non_null(text);
    avro_schema_t sc;
    assert_int_equal(avro_schema_from_json_length(text, strlen(text), &sc), 0);
    content_api_error_row r = {.lookup = "action", .platform_id = 1, .log_user_id = "u1",
                               .content_id = "i-1-1", .insertion_id = NULL, .action_id = "a1",
                               .log_timestamp = 1601596151000, .status = 503,
                               .error = "POST http://x/v1/content/query: status 503",
                               .attempts = 3, .cached = 1, .processing_timestamp = 42};
    rt_buf b;
    rt_buf_init(&b, 4096);
    assert_int_equal(content_lookup_error_datum(&r, &b), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(sc);
    avro_value_t v;
    avro_generic_value_new(iface, &v);
    avro_reader_t rd = avro_reader_memory((const char *)b.data, (int64_t)b.len);
    assert_int_equal(avro_value_read(rd, &v), 0);
    avro_value_t f;
    const char *s;
    size_t n;
    int32_t i32;
    int64_t i64;
    int bl;
    assert_int_equal(avro_value_get_by_name(&v, "contentId", &f, NULL), 0);
    avro_value_get_string(&f, &s, &n);
    assert_string_equal(s, "i-1-1");
    assert_int_equal(avro_value_get_by_name(&v, "insertionId", &f, NULL), 0);
    avro_value_get_string(&f, &s, &n);
    assert_string_equal(s, "");
    assert_int_equal(avro_value_get_by_name(&v, "status", &f, NULL), 0);
    avro_value_get_int(&f, &i32);
    assert_int_equal(i32, 503);
    assert_int_equal(avro_value_get_by_name(&v, "attempts", &f, NULL), 0);
    avro_value_get_int(&f, &i32);
    assert_int_equal(i32, 3);
    assert_int_equal(avro_value_get_by_name(&v, "logTimestamp", &f, NULL), 0);
    avro_value_get_long(&f, &i64);
    assert_int_equal(i64, 1601596151000);
    assert_int_equal(avro_value_get_by_name(&v, "cached", &f, NULL), 0);
    avro_value_get_boolean(&f, &bl);
    assert_int_equal(bl, 1);
    assert_int_equal(avro_value_get_by_name(&v, "processingTimestamp", &f, NULL), 0);
    avro_value_get_long(&f, &i64);
    assert_int_equal(i64, 42);
    avro_reader_free(rd);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(sc);
    rt_buf_free(&b);
}

static void test_client_failure_names_the_url_never_the_key(void **state)
{
    (void)state;
    static const char key[] = "SECRET-KEY-7f3a";
    content_api_config cfg = {.root_url = "http://127.0.0.1:1/", .api_key = key,
                              .timeout_ms = 2000, .no_sleep = 1};
    char err[300];
    assert_int_equal(content_api_retry_policy_init(&cfg.retry, 2, NULL, 0, err, sizeof err), 0);
    content_api_client *c;
    assert_int_equal(content_api_client_new(&cfg, &c, err, sizeof err), 0);
    content_keys k;
    keys_of(&k, "storeId", NULL);
    content_fields f = {0};
    content_api_result res;
    assert_int_equal(content_api_query(c, "i-1-1", 5, &k, &f, &res), 0);
    assert_int_equal(res.ok, 0);
    assert_int_equal(res.status, 0); /* a transport error */
    assert_int_equal(res.attempts, 2);
    assert_int_equal(res.retries, 1);
    assert_non_null(strstr(res.error, "http://127.0.0.1:1/v1/content/query"));
    assert_null(strstr(res.error, key));
    assert_int_equal(content_api_put_batch(c, "{}", 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "v1/content/batch"));
    assert_null(strstr(err, key));
    content_api_client_free(c);

    cfg.root_url = "http://127.0.0.1:1";
    assert_int_equal(content_api_client_new(&cfg, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "must end with"));
    assert_null(strstr(err, key));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_body_escapes_the_id_as_jackson_does),
        cmocka_unit_test(test_query_body_over_the_limit_leaves_the_buffer_as_it_was),
        cmocka_unit_test(test_response_keeps_only_the_configured_fields_by_hash),
        cmocka_unit_test(test_response_null_or_missing_entry_gives_no_fields),
        cmocka_unit_test(test_response_errors_name_the_content_and_the_field),
        cmocka_unit_test(test_retry_rule_counts_failures_per_status_code),
        cmocka_unit_test(test_retry_policy_rejects_bad_items_naming_the_flag),
        cmocka_unit_test(test_cache_success_expires_after_last_access),
        cmocka_unit_test(test_cache_failure_expires_after_the_short_ttl_whatever_the_access),
        cmocka_unit_test(test_cache_evicts_the_least_recently_used_over_its_size),
        cmocka_unit_test(test_error_row_datum_reads_back_with_avro_c),
        cmocka_unit_test(test_client_failure_names_the_url_never_the_key),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
