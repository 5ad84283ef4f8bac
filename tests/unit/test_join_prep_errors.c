/* The error rows of flat-output (src/jobs/join/error_rows.h): the two embedded schemas are the
 * spec's (§13: names, namespace, field order, defaults), and every datum the encoders write is
 * decoded by avro-c against them, field by field, with avro-c's re-encoding equal to our bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>
#include <jansson.h>

#include "jobs/join/error_rows.h"
#include "schemas_embedded.h"

static avro_schema_t schema_of(const char *name)
{
    const char *text = embedded_schema(name);
    if (!text) fail_msg("schemas/%s.avsc is not embedded", name);
    avro_schema_t sc;
    if (avro_schema_from_json_length(text, strlen(text), &sc))
        fail_msg("schemas/%s.avsc: %s", name, avro_strerror());
    return sc;
}

typedef struct decoded {
    avro_value_iface_t *iface;
    avro_value_t v;
} decoded;

static void decode(avro_schema_t sc, const rt_buf *b, decoded *d)
{
    d->iface = avro_generic_class_from_schema(sc);
    assert_non_null(d->iface);
    assert_int_equal(avro_generic_value_new(d->iface, &d->v), 0);
    avro_reader_t r = avro_reader_memory((const char *)b->data, (int64_t)b->len);
    if (avro_value_read(r, &d->v)) fail_msg("avro-c cannot decode the datum: %s", avro_strerror());
    avro_reader_free(r);
    size_t size;
    assert_int_equal(avro_value_sizeof(&d->v, &size), 0);
    assert_int_equal(size, b->len); /* nothing left over */
    char *again = malloc(size);
    avro_writer_t w = avro_writer_memory(again, (int64_t)size);
    assert_int_equal(avro_value_write(w, &d->v), 0);
    assert_memory_equal(again, b->data, b->len);
    avro_writer_free(w);
    free(again);
}

static void undecode(decoded *d)
{
    avro_value_decref(&d->v);
    avro_value_iface_decref(d->iface);
}

static avro_value_t field(avro_value_t *rec, const char *name)
{
    avro_value_t c;
    if (avro_value_get_by_name(rec, name, &c, NULL)) fail_msg("no field %s", name);
    return c;
}

static int64_t long_of(avro_value_t *rec, const char *name)
{
    avro_value_t c = field(rec, name);
    int64_t v;
    assert_int_equal(avro_value_get_long(&c, &v), 0);
    return v;
}

static const char *str_of(avro_value_t *rec, const char *name)
{
    avro_value_t c = field(rec, name);
    const char *s;
    size_t n;
    assert_int_equal(avro_value_get_string(&c, &s, &n), 0);
    return s;
}

static const char *enum_of(avro_value_t *rec, const char *name)
{
    avro_value_t c = field(rec, name);
    int i;
    assert_int_equal(avro_value_get_enum(&c, &i), 0);
    return avro_schema_enum_get(avro_value_get_schema(&c), i);
}

/* ---- schemas ---- */

static void check_fields(json_t *fields, const char *const *names, size_t n)
{
    assert_int_equal(json_array_size(fields), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(fields, i), "name")),
                            names[i]);
}

static void test_validation_error_schema_is_the_spec(void **state)
{
    (void)state;
    json_t *j = json_loads(embedded_schema("validation_error"), 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "ValidationError");
    assert_string_equal(json_string_value(json_object_get(j, "namespace")),
                        "ai.promoted.metrics.error");
    static const char *const names[] = {
        "recordType",          "errorType",    "platformId", "logUserId", "viewId", "requestId",
        "responseInsertionId", "impressionId", "actionId",   "timing",    "field"};
    json_t *fields = json_object_get(j, "fields");
    check_fields(fields, names, 11);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(fields, 2), "default")), 0);
    for (int i = 3; i <= 8; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(fields, (size_t)i), "default")), "");
    json_t *timing = json_object_get(json_array_get(fields, 9), "type");
    static const char *const tnames[] = {"clientLogTimestamp", "eventApiTimestamp", "logTimestamp"};
    check_fields(json_object_get(timing, "fields"), tnames, 3);
    json_t *ft = json_object_get(json_array_get(fields, 10), "type");
    assert_int_equal(json_array_size(json_object_get(ft, "symbols")), 13);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ft, "symbols"), 12)),
                        "CART_CONTENT_ID");
    json_decref(j);
}

static void test_mismatch_error_schema_is_the_spec(void **state)
{
    (void)state;
    json_t *j = json_loads(embedded_schema("mismatch_error"), 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "MismatchError");
    assert_string_equal(json_string_value(json_object_get(j, "namespace")),
                        "ai.promoted.metrics.error");
    static const char *const names[] = {"recordType",   "field",          "lhsIds",  "rhsRecordId",
                                        "lhsString",    "rhsString",      "lhsLong", "rhsLong",
                                        "logTimestamp", "logFunctionName"};
    json_t *fields = json_object_get(j, "fields");
    check_fields(fields, names, 10);
    static const char *const ids[] = {"platformId", "logUserId", "sessionId",   "viewId",
                                      "autoViewId", "requestId", "insertionId", "impressionId"};
    check_fields(json_object_get(json_object_get(json_array_get(fields, 2), "type"), "fields"), ids,
                 8);
    json_t *fn = json_object_get(json_array_get(fields, 9), "type");
    assert_int_equal(json_array_size(json_object_get(fn, "symbols")), 12);
    json_decref(j);
}

/* ---- datums ---- */

static void test_validation_error_datum_decodes_with_avro_c(void **state)
{
    (void)state;
    avro_schema_t sc = schema_of(ERROR_ROWS_VALIDATION_SCHEMA);
    join_validation_error e = {
        .record_type = JOIN_RT_ACTION,
        .error_type = JOIN_ET_MISSING_FIELD,
        .platform_id = -3,
        .log_user_id = "u\xc3\xbc",
        .view_id = "v1",
        .request_id = NULL,
        .response_insertion_id = "i1",
        .impression_id = "",
        .action_id = "a1",
        .client_log_timestamp = 5,
        .event_api_timestamp = INT64_MAX,
        .log_timestamp = 1601596151000,
        .field = JOIN_F_CART_CONTENT_QUANTITY,
    };
    rt_buf b;
    rt_buf_init(&b, 4096);
    char err[256];
    assert_int_equal(error_rows_validation_datum(&e, &b, err, sizeof err), 0);
    decoded d;
    decode(sc, &b, &d);
    assert_string_equal(enum_of(&d.v, "recordType"), "ACTION");
    assert_string_equal(enum_of(&d.v, "errorType"), "MISSING_FIELD");
    assert_int_equal(long_of(&d.v, "platformId"), -3);
    assert_string_equal(str_of(&d.v, "logUserId"), "u\xc3\xbc");
    assert_string_equal(str_of(&d.v, "viewId"), "v1");
    assert_string_equal(str_of(&d.v, "requestId"), "");
    assert_string_equal(str_of(&d.v, "responseInsertionId"), "i1");
    assert_string_equal(str_of(&d.v, "impressionId"), "");
    assert_string_equal(str_of(&d.v, "actionId"), "a1");
    avro_value_t t = field(&d.v, "timing");
    assert_int_equal(long_of(&t, "clientLogTimestamp"), 5);
    assert_int_equal(long_of(&t, "eventApiTimestamp"), INT64_MAX);
    assert_int_equal(long_of(&t, "logTimestamp"), 1601596151000);
    assert_string_equal(enum_of(&d.v, "field"), "CART_CONTENT_QUANTITY");
    undecode(&d);

    /* the adapter for the table sink: partition by eventApiTimestamp */
    rt_buf_reset(&b);
    rt_record rec = {.type = REC_VALIDATION_ERROR, .data = &e};
    int64_t pts = 0;
    assert_int_equal(error_rows_encode_validation(NULL, &rec, &b, &pts), 0);
    assert_int_equal(pts, INT64_MAX);
    rec.type = REC_MISMATCH_ERROR;
    assert_int_equal(error_rows_encode_validation(NULL, &rec, &b, &pts), -1);
    rt_buf_free(&b);
    avro_schema_decref(sc);
}

static void test_mismatch_error_datum_decodes_with_avro_c(void **state)
{
    (void)state;
    avro_schema_t sc = schema_of(ERROR_ROWS_MISMATCH_SCHEMA);
    join_mismatch_error e = {
        .record_type = JOIN_RT_IMPRESSION,
        .field = JOIN_F_VIEW_ID,
        .lhs_platform_id = 1,
        .lhs_log_user_id = "u1",
        .lhs_session_id = "s1",
        .lhs_view_id = "v1",
        .lhs_auto_view_id = NULL,
        .lhs_request_id = "r1",
        .lhs_insertion_id = "i1",
        .lhs_impression_id = "",
        .rhs_record_id = "m1",
        .lhs_string = "v1",
        .rhs_string = "v2",
        .lhs_long = 0,
        .rhs_long = -1,
        .log_timestamp = 1601596151200,
        .log_function_name = JOIN_FN_TINY_FLAT_UTIL_MERGE_IMPRESSION,
    };
    rt_buf b;
    rt_buf_init(&b, 4096);
    char err[256];
    assert_int_equal(error_rows_mismatch_datum(&e, &b, err, sizeof err), 0);
    decoded d;
    decode(sc, &b, &d);
    assert_string_equal(enum_of(&d.v, "recordType"), "IMPRESSION");
    assert_string_equal(enum_of(&d.v, "field"), "VIEW_ID");
    avro_value_t ids = field(&d.v, "lhsIds");
    assert_int_equal(long_of(&ids, "platformId"), 1);
    assert_string_equal(str_of(&ids, "logUserId"), "u1");
    assert_string_equal(str_of(&ids, "sessionId"), "s1");
    assert_string_equal(str_of(&ids, "viewId"), "v1");
    assert_string_equal(str_of(&ids, "autoViewId"), "");
    assert_string_equal(str_of(&ids, "requestId"), "r1");
    assert_string_equal(str_of(&ids, "insertionId"), "i1");
    assert_string_equal(str_of(&ids, "impressionId"), "");
    assert_string_equal(str_of(&d.v, "rhsRecordId"), "m1");
    assert_string_equal(str_of(&d.v, "lhsString"), "v1");
    assert_string_equal(str_of(&d.v, "rhsString"), "v2");
    assert_int_equal(long_of(&d.v, "lhsLong"), 0);
    assert_int_equal(long_of(&d.v, "rhsLong"), -1);
    assert_int_equal(long_of(&d.v, "logTimestamp"), 1601596151200);
    assert_string_equal(enum_of(&d.v, "logFunctionName"), "TINY_FLAT_UTIL_MERGE_IMPRESSION");
    undecode(&d);

    rt_buf_reset(&b);
    rt_record rec = {.type = REC_MISMATCH_ERROR, .data = &e};
    int64_t pts = 0;
    assert_int_equal(error_rows_encode_mismatch(NULL, &rec, &b, &pts), 0);
    assert_int_equal(pts, 1601596151200);
    rt_buf_free(&b);
    avro_schema_decref(sc);
}

static void test_error_datum_over_the_limit_leaves_the_buffer_as_it_was(void **state)
{
    (void)state;
    join_validation_error e = {.record_type = JOIN_RT_VIEW, .log_user_id = "a long user id"};
    rt_buf b;
    rt_buf_init(&b, 16);
    assert_int_equal(rt_buf_append(&b, "xyz", 3), 0);
    char err[256];
    assert_int_equal(error_rows_validation_datum(&e, &b, err, sizeof err), -1);
    assert_int_equal(b.len, 3);
    assert_non_null(strstr(err, "ValidationError"));
    assert_non_null(strstr(err, "16"));
    rt_buf_free(&b);
}

static void test_error_datum_rejects_an_enum_outside_the_schema(void **state)
{
    (void)state;
    join_mismatch_error e = {.record_type = JOIN_RT_ACTION,
                             .log_function_name = (join_log_function)12};
    rt_buf b;
    rt_buf_init(&b, 4096);
    char err[256];
    assert_int_equal(error_rows_mismatch_datum(&e, &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "logFunctionName"));
    assert_int_equal(b.len, 0);
    rt_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_error_schema_is_the_spec),
        cmocka_unit_test(test_mismatch_error_schema_is_the_spec),
        cmocka_unit_test(test_validation_error_datum_decodes_with_avro_c),
        cmocka_unit_test(test_mismatch_error_datum_decodes_with_avro_c),
        cmocka_unit_test(test_error_datum_over_the_limit_leaves_the_buffer_as_it_was),
        cmocka_unit_test(test_error_datum_rejects_an_enum_outside_the_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
