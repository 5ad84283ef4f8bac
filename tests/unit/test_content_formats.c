/* The metric tables' encodings (spec/other-jobs.md §C.3 to §C.6): CSV as Jackson writes it
 * (formats/csv.h), JSON strings and times (formats/jsonl.h), and one row in every table
 * (jobs/content/content_output.h). Pins the §C.5 quoting rule (over 24 UTF-16 units or a
 * character below '-', inner quotes doubled) and the header it gives, the §C.6 JSON object field
 * by field, the topic's extra "dt", and the Avro datum read back by avro-c against the schema. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <avro.h>

#include "formats/csv.h"
#include "formats/jsonl.h"
#include "jobs/content/content_output.h"

#define DAY_MS 86400000LL
#define T0 1664582400000LL /* 2022-10-01T00:00:00Z */

static char *str(rt_buf *b)
{
    static char s[4096];
    assert_true(b->len < sizeof s);
    if (b->len) memcpy(s, b->data, b->len);
    s[b->len] = 0;
    return s;
}

static const char *csv(const char *in)
{
    rt_buf b;
    rt_buf_init(&b, 4096);
    assert_int_equal(csv_put_string(&b, in, strlen(in)), 0);
    static char out[4096];
    snprintf(out, sizeof out, "%s", str(&b));
    rt_buf_free(&b);
    return out;
}

static void test_csv_quoting(void **st)
{
    assert_string_equal(csv("i-1-1"), "i-1-1");
    assert_string_equal(csv("joined_impression_count"), "joined_impression_count"); /* 23 */
    assert_string_equal(csv("joined_impression_position_sum"), "\"joined_impression_position_sum\"");
    assert_string_equal(csv("abcdefghijklmnopqrstuvwx"), "abcdefghijklmnopqrstuvwx"); /* 24 */
    assert_string_equal(csv("abcdefghijklmnopqrstuvwxy"), "\"abcdefghijklmnopqrstuvwxy\"");
    assert_string_equal(csv("a b"), "\"a b\"");
    assert_string_equal(csv("a,b"), "\"a,b\"");
    assert_string_equal(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_string_equal(csv("line\nbreak"), "\"line\nbreak\"");
    assert_string_equal(csv("a+b"), "\"a+b\"");   /* '+' is 43 */
    assert_string_equal(csv("a-b.c/d"), "a-b.c/d"); /* '-' 45, '.' 46, '/' 47 */
    assert_string_equal(csv(""), "");
    /* Java counts UTF-16 units: 24 two-byte characters stay bare, a 13th emoji (2 units each)
     * makes 26 */
    assert_string_equal(csv("éééééééééééééééééééééééé"), "éééééééééééééééééééééééé");
    assert_int_equal(csv_utf16_length("😀", strlen("😀")), 2);
    assert_int_equal(csv_needs_quotes("😀😀😀😀😀😀😀😀😀😀😀😀", strlen("😀😀😀😀😀😀😀😀😀😀😀😀")), 0);
    assert_int_equal(csv_needs_quotes("😀😀😀😀😀😀😀😀😀😀😀😀😀", strlen("😀😀😀😀😀😀😀😀😀😀😀😀😀")), 1);
}

static void test_csv_header_is_the_spec_line(void **st)
{
    rt_buf b;
    rt_buf_init(&b, 4096);
    assert_int_equal(cm_output_csv_header(&b), 0);
    assert_string_equal(str(&b),
                        "date,platform_id,content_id,view_count,impression_count,"
                        "joined_impression_count,\"joined_impression_position_sum\",navigate_count,"
                        "add_to_cart_count,checkout_count,purchase_count,gmv_usd_micros\n");
    rt_buf_free(&b);
}

static void test_json_strings_and_times(void **st)
{
    rt_buf b;
    rt_buf_init(&b, 4096);
    const char in[] = "q\"b\\s/\b\t\n\f\r\x01\x1f é";
    assert_int_equal(jsonl_put_string(&b, in, sizeof in - 1), 0);
    assert_string_equal(str(&b), "\"q\\\"b\\\\s/\\b\\t\\n\\f\\r\\u0001\\u001F é\"");
    char t[40];
    jsonl_format_utc(T0 + DAY_MS, t, sizeof t);
    assert_string_equal(t, "2022-10-02T00:00:00Z");
    jsonl_format_utc(T0 + 61001, t, sizeof t);
    assert_string_equal(t, "2022-10-01T00:01:01.001Z");
    jsonl_format_utc(-1, t, sizeof t);
    assert_string_equal(t, "1969-12-31T23:59:59.999Z");
    jsonl_format_date(T0 - 1, t, sizeof t);
    assert_string_equal(t, "2022-09-30");
    rt_buf_free(&b);
}

static cm_metrics_row row_of(const char *cid, int64_t start, int64_t end)
{
    cm_metrics_row r = {.window_start = start, .window_end = end, .platform_id = 1,
                        .content_id = cid, .content_id_len = strlen(cid)};
    int64_t v[CM_NCOLS] = {1, 1, 1, 5, 1, 1, 2, 2, 5000000};
    memcpy(r.v, v, sizeof v);
    return r;
}

static void test_csv_and_json_rows(void **st)
{
    rt_buf b;
    rt_buf_init(&b, 4096);
    cm_metrics_row r = row_of("i-1-1", T0, T0 + DAY_MS);
    assert_int_equal(cm_output_encode(CM_OUT_DAILY_CSV, "x", &r, &b), 0);
    assert_string_equal(str(&b), "2022-10-01,1,i-1-1,1,1,1,5,1,1,2,2,5000000\n");

    /* §C.6 / §E.4 cumulatedJSON: the whole line */
    rt_buf_reset(&b);
    assert_int_equal(cm_output_encode(CM_OUT_CUMULATED_JSONL, "blue.content-metrics", &r, &b), 0);
    assert_string_equal(
        str(&b),
        "{\"header\":{\"version\":\"1.0\",\"sourceId\":\"Metric\",\"id\":\"2022-10-01@1@i-1-1\","
        "\"correlationId\":\"TODO\",\"platformId\":1,\"messageType\":\"blue.content-metrics\","
        "\"eventDateTimestamp\":\"2022-10-02T00:00:00Z\"},\"body\":{\"contentId\":\"i-1-1\","
        "\"metrics\":{\"views\":1,\"impressions\":1,\"joinedImpressions\":1,"
        "\"joinedImpressionPositionSum\":5,\"navigates\":1,\"addToCarts\":1,\"checkouts\":2,"
        "\"purchases\":2,\"gmvUsd\":5000000}}}\n");

    /* the topic's value: the same object with a top-level dt, no newline */
    rt_buf_reset(&b);
    assert_int_equal(cm_output_encode(CM_OUT_CUMULATED_TOPIC, "blue.content-metrics", &r, &b), 0);
    const char *s = str(&b);
    size_t n = strlen(s);
    assert_true(n > 20);
    assert_string_equal(s + n - 21, "}},\"dt\":\"2022-10-01\"}");

    /* content ids that need escaping or quoting */
    r = row_of("a \"b\",c", T0, T0 + DAY_MS);
    rt_buf_reset(&b);
    assert_int_equal(cm_output_encode(CM_OUT_DAILY_CSV, "x", &r, &b), 0);
    assert_string_equal(str(&b), "2022-10-01,1,\"a \"\"b\"\",c\",1,1,1,5,1,1,2,2,5000000\n");
    rt_buf_reset(&b);
    assert_int_equal(cm_output_encode(CM_OUT_CUMULATED_JSONL, "x", &r, &b), 0);
    assert_non_null(strstr(str(&b), "\"id\":\"2022-10-01@1@a \\\"b\\\",c\""));
    assert_non_null(strstr(str(&b), "\"contentId\":\"a \\\"b\\\",c\""));

    /* a full buffer leaves it as it was */
    rt_buf small;
    rt_buf_init(&small, 16);
    assert_int_equal(cm_output_encode(CM_OUT_CUMULATED_JSONL, "x", &r, &small), -1);
    assert_int_equal(small.len, 0);
    rt_buf_free(&small);
    rt_buf_free(&b);
}

static void test_avro_datum_reads_back_with_the_schema(void **st)
{
    avro_schema_t schema;
    const char *json = cm_output_avro_schema();
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &schema), 0);
    rt_buf b;
    rt_buf_init(&b, 4096);
    cm_metrics_row r = row_of("i-1-1", T0, T0 + 3600000);
    r.v[CM_GMV_USD_MICROS] = -3; /* zigzag of a negative */
    r.platform_id = 300;
    assert_int_equal(cm_output_encode(CM_OUT_HOURLY_AVRO, "x", &r, &b), 0);

    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t v;
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    avro_reader_t rd = avro_reader_memory((const char *)b.data, (int64_t)b.len);
    assert_int_equal(avro_value_read(rd, &v), 0);
    avro_value_t f, br;
    int64_t l;
    const char *s;
    size_t sl;
    assert_int_equal(avro_value_get_by_name(&v, "platform_id", &f, NULL), 0);
    assert_int_equal(avro_value_get_long(&f, &l), 0);
    assert_int_equal(l, 300);
    assert_int_equal(avro_value_get_by_name(&v, "content_id", &f, NULL), 0);
    assert_int_equal(avro_value_get_string(&f, &s, &sl), 0);
    assert_string_equal(s, "i-1-1");
    static const char *const cols[] = {"view_count", "impression_count", "joined_impression_count",
                                       "joined_impression_position_sum", "navigate_count",
                                       "add_to_cart_count", "checkout_count", "purchase_count",
                                       "gmv_usd_micros"};
    for (int i = 0; i < CM_NCOLS; i++) {
        assert_int_equal(avro_value_get_by_name(&v, cols[i], &f, NULL), 0);
        assert_int_equal(avro_value_get_current_branch(&f, &br), 0);
        assert_int_equal(avro_value_get_long(&br, &l), 0);
        assert_int_equal(l, r.v[i]);
    }
    /* the whole datum was consumed: nothing left over */
    char extra;
    assert_int_not_equal(avro_read(rd, &extra, 1), 0);
    avro_reader_free(rd);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    rt_buf_free(&b);
}

static void test_table_directories(void **st)
{
    assert_string_equal(cm_output_dir(CM_OUT_HOURLY_AVRO), "etl/hourly_content_metrics");
    assert_string_equal(cm_output_dir(CM_OUT_DAILY_AVRO), "etl/daily_content_metrics");
    assert_string_equal(cm_output_dir(CM_OUT_DAILY_CSV), "etl/daily_content_metrics_csv");
    assert_string_equal(cm_output_dir(CM_OUT_CUMULATED_JSONL), "etl/cumulated_content_metrics");
    assert_string_equal(cm_output_dir(CM_OUT_CUMULATED_TOPIC),
                        "metrics.blue.default.cumulated-content-metrics");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_quoting),
        cmocka_unit_test(test_csv_header_is_the_spec_line),
        cmocka_unit_test(test_json_strings_and_times),
        cmocka_unit_test(test_csv_and_json_rows),
        cmocka_unit_test(test_avro_datum_reads_back_with_the_schema),
        cmocka_unit_test(test_table_directories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
