/* The protobuf text-format printer: Java TextFormat's layout, escapes and number formats, map
 * entries, the private fields printed by name in their number's place, and unknown fields. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/java_text.h"

#include "formats/pb_private.h"
#include "formats/pb_text.h"
#include "google/protobuf/struct.pb-c.h"

static void assert_text(const ProtobufCMessage *m, const char *want)
{
    char *text;
    size_t len;
    assert_int_equal(pbtext_format(m, &text, &len), 0);
    assert_int_equal(len, strlen(text));
    if (strcmp(text, want)) fail_msg("got:\n%s\nwant:\n%s", text, want);
    free(text);
}

static void assert_float(float f, const char *want)
{
    char buf[48];
    java_float_string(f, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void assert_double(double d, const char *want)
{
    char buf[48];
    java_double_string(d, buf, sizeof buf);
    assert_string_equal(buf, want);
}

/* Java's Float.toString / Double.toString: shortest digits that read back, a fraction always,
 * scientific notation outside [1e-3, 1e7). */
static void test_java_number_formats(void **s)
{
    (void)s;
    assert_float(0.1f, "0.1");
    assert_float(1.0f, "1.0");
    assert_float(0.0f, "0.0");
    assert_float(-0.0f, "-0.0");
    volatile float nine = 0.1f * 9.0f;
    assert_float(nine, "0.90000004");
    assert_float(100.0f, "100.0");
    assert_float(123456.7f, "123456.7");
    assert_float(0.001f, "0.001");
    assert_float(0.0001f, "1.0E-4");
    assert_float(1e7f, "1.0E7");
    assert_float(9999999.0f, "9999999.0");
    assert_float(-2.5f, "-2.5");
    assert_float(3.4028235e38f, "3.4028235E38");
    assert_float(1.4e-45f, "1.4E-45");
    assert_float(NAN, "NaN");
    assert_float(-INFINITY, "-Infinity");
    assert_double(0.1, "0.1");
    assert_double(100.0, "100.0");
    assert_double(-63.451, "-63.451");
    assert_double(1e-5, "1.0E-5");
    assert_double(123456789.01234567, "1.2345678901234567E8");
    assert_double(4.9e-324, "4.9E-324");
    assert_double(1e21, "1.0E21");
    assert_double(12345.0, "12345.0");
}

static void test_layout_escapes_enums(void **s)
{
    (void)s;
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    lr.has_platform_id = 1;
    lr.platform_id = 1;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.user_id = "q\"uo'te\\ \n\t\x01 \xc3\xa9"; /* quote, escapes, control byte, UTF-8 é */
    lr.user_info = &ui;
    Event__CohortMembership cm = EVENT__COHORT_MEMBERSHIP__INIT;
    cm.has_arm = 1;
    cm.arm = EVENT__COHORT_ARM__CONTROL;
    Event__CohortMembership cm2 = EVENT__COHORT_MEMBERSHIP__INIT;
    cm2.has_arm = 1;
    cm2.arm = (Event__CohortArm)77; /* unknown values survive and print as numbers */
    Event__CohortMembership *cms[] = {&cm, &cm2};
    lr.n_cohort_membership = 2;
    lr.cohort_membership = cms;
    Event__View v = EVENT__VIEW__INIT; /* an empty sub-message still prints as a block */
    Event__View *vs[] = {&v};
    lr.n_view = 1;
    lr.view = vs;
    assert_text(&lr.base, "platform_id: 1\n"
                          "user_info {\n"
                          "  user_id: \"q\\\"uo\\'te\\\\ \\n\\t\\001 \\303\\251\"\n"
                          "}\n"
                          "cohort_membership {\n"
                          "  arm: CONTROL\n"
                          "}\n"
                          "cohort_membership {\n"
                          "  arm: 77\n"
                          "}\n"
                          "view {\n"
                          "}\n");
}

/* Explicit presence prints a zero; implicit-presence zeros and empty strings do not print. */
static void test_presence(void **s)
{
    (void)s;
    Delivery__Insertion ins = DELIVERY__INSERTION__INIT;
    ins.has_position = 1;
    ins.position = 0;
    ins.content_id = "i-1-1";
    assert_text(&ins.base, "content_id: \"i-1-1\"\nposition: 0\n");

    Google__Protobuf__Value empty = GOOGLE__PROTOBUF__VALUE__INIT;
    Google__Protobuf__Value str = GOOGLE__PROTOBUF__VALUE__INIT;
    str.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    str.string_value = "";
    Google__Protobuf__Value *vals[] = {&empty, &str};
    Google__Protobuf__ListValue lv = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
    lv.n_values = 2;
    lv.values = vals;
    /* a oneof member prints even when empty; a Value with no kind is an empty block */
    assert_text(&lv.base, "values {\n}\nvalues {\n  string_value: \"\"\n}\n");
}

/* Map entries: sorted by key, key and value both printed even when zero. */
static void test_map_entries(void **s)
{
    (void)s;
    Logproc__Priv__Features__NumericEntry a = LOGPROC__PRIV__FEATURES__NUMERIC_ENTRY__INIT;
    Logproc__Priv__Features__NumericEntry b = LOGPROC__PRIV__FEATURES__NUMERIC_ENTRY__INIT;
    a.has_key = a.has_value = 1;
    a.key = 200;
    a.value = 0.5f;
    b.has_key = 1;
    b.key = 100; /* value unset: prints as 0.0 */
    Logproc__Priv__Features__NumericEntry *es[] = {&a, &b};
    Logproc__Priv__Features f = LOGPROC__PRIV__FEATURES__INIT;
    f.n_numeric = 2;
    f.numeric = es;
    assert_text(&f.base, "numeric {\n  key: 100\n  value: 0.0\n}\n"
                         "numeric {\n  key: 200\n  value: 0.5\n}\n");

    Google__Protobuf__Value v1 = GOOGLE__PROTOBUF__VALUE__INIT, v2 = GOOGLE__PROTOBUF__VALUE__INIT;
    v1.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    v1.number_value = 8;
    v2.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
    v2.bool_value = 0;
    Google__Protobuf__Struct__FieldsEntry e1 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    Google__Protobuf__Struct__FieldsEntry e2 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    e1.key = "z";
    e1.value = &v1;
    e2.key = "a";
    e2.value = &v2;
    Google__Protobuf__Struct__FieldsEntry *fe[] = {&e1, &e2};
    Google__Protobuf__Struct st = GOOGLE__PROTOBUF__STRUCT__INIT;
    st.n_fields = 2;
    st.fields = fe;
    assert_text(&st.base, "fields {\n  key: \"a\"\n  value {\n    bool_value: false\n  }\n}\n"
                          "fields {\n  key: \"z\"\n  value {\n    number_value: 8.0\n  }\n}\n");
}

/* Private fields print by name where their number puts them (session_profile 9 and session 10
 * between cohort_membership 8 and view 11), with the reference's field order inside; the
 * feature_stage inside an execution insertion too; other unknown fields print raw, last. */
static void test_private_and_unknown_fields(void **s)
{
    (void)s;
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    Event__CohortMembership cm = EVENT__COHORT_MEMBERSHIP__INIT;
    cm.cohort_id = "c";
    Event__CohortMembership *cms[] = {&cm};
    lr.n_cohort_membership = 1;
    lr.cohort_membership = cms;
    Event__View v = EVENT__VIEW__INIT;
    v.view_id = "v";
    Event__View *vs[] = {&v};
    lr.n_view = 1;
    lr.view = vs;

    Common__Timing t = COMMON__TIMING__INIT;
    t.has_client_log_timestamp = 1;
    t.client_log_timestamp = 5;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.log_user_id = "lu";
    Logproc__Priv__Session se = LOGPROC__PRIV__SESSION__INIT;
    se.session_id = "s1";
    se.user_info = &ui;
    se.timing = &t;
    Logproc__Priv__SessionProfile sp = LOGPROC__PRIV__SESSION_PROFILE__INIT;
    sp.session_id = "s1";
    sp.timing = &t;
    /* added in reverse order: printing follows the numbers */
    assert_int_equal(pb_private_add_session(&lr, &se, NULL), 0);
    assert_int_equal(pb_private_add_session_profile(&lr, &sp, NULL), 0);

    const char *want = "cohort_membership {\n  cohort_id: \"c\"\n}\n"
                       "session_profile {\n  timing {\n    client_log_timestamp: 5\n  }\n"
                       "  session_id: \"s1\"\n}\n"
                       "session {\n  user_info {\n    log_user_id: \"lu\"\n  }\n"
                       "  timing {\n    client_log_timestamp: 5\n  }\n  session_id: \"s1\"\n}\n"
                       "view {\n  view_id: \"v\"\n}\n";
    assert_text(&lr.base, want);

    /* the same after a trip through the wire bytes */
    size_t n = event__log_request__get_packed_size(&lr);
    uint8_t *buf = malloc(n);
    event__log_request__pack(&lr, buf);
    Event__LogRequest *back = event__log_request__unpack(NULL, n, buf);
    assert_non_null(back);
    assert_text(&back->base, want);
    event__log_request__free_unpacked(back, NULL);
    free(buf);

    /* an unrelated unknown varint, and a private number whose bytes do not decode */
    uint8_t varint[] = {0x96, 0x01};        /* 150 */
    uint8_t garbage[] = {0x02, 0xff, 0xff}; /* length 2, then an invalid tag */
    ProtobufCMessageUnknownField extra[2] = {
        {99, PROTOBUF_C_WIRE_TYPE_VARINT, sizeof varint, varint},
        {PB_PRIVATE_LOG_REQUEST_SESSION, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, sizeof garbage,
         garbage},
    };
    Event__LogRequest lr2 = EVENT__LOG_REQUEST__INIT;
    lr2.has_platform_id = 1;
    lr2.platform_id = 3;
    lr2.base.n_unknown_fields = 2;
    lr2.base.unknown_fields = extra;
    assert_text(&lr2.base, "platform_id: 3\n99: 150\n10: \"\\377\\377\"\n");

    /* feature_stage (17) inside an execution insertion (1 of DeliveryExecution) */
    Logproc__Priv__Features__NumericEntry e = LOGPROC__PRIV__FEATURES__NUMERIC_ENTRY__INIT;
    e.has_key = e.has_value = 1;
    e.key = 100;
    e.value = 0.1f;
    Logproc__Priv__Features__NumericEntry *es[] = {&e};
    Logproc__Priv__Features f = LOGPROC__PRIV__FEATURES__INIT;
    f.n_numeric = 1;
    f.numeric = es;
    Logproc__Priv__FeatureStage fs = LOGPROC__PRIV__FEATURE_STAGE__INIT;
    fs.features = &f;
    Delivery__Insertion ins = DELIVERY__INSERTION__INIT;
    ins.has_position = 1;
    ins.position = 0;
    assert_int_equal(pb_private_set_feature_stage(&ins, &fs, NULL), 0);
    Delivery__DeliveryExecution ex = DELIVERY__DELIVERY_EXECUTION__INIT;
    ex.has_execution_server = 1;
    ex.execution_server = DELIVERY__EXECUTION_SERVER__API;
    assert_int_equal(pb_private_add_execution_insertion(&ex, &ins, NULL), 0);
    assert_text(&ex.base, "execution_insertion {\n  position: 0\n  feature_stage {\n"
                          "    features {\n      numeric {\n        key: 100\n"
                          "        value: 0.1\n      }\n    }\n  }\n}\n"
                          "execution_server: API\n");
    pb_private_clear(&ex.base, NULL);
    pb_private_clear(&ins.base, NULL);
    pb_private_clear(&lr.base, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_java_number_formats),
        cmocka_unit_test(test_layout_escapes_enums),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_map_entries),
        cmocka_unit_test(test_private_and_unknown_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
