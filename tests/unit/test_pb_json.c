/* pb_json: the canonical proto3 JSON rules the wire vectors do not reach (NaN and infinities,
 * base64 padding, escapes and invalid UTF-8, uint64 map keys, unnamed enum numbers, presence),
 * the PB_JSON_PRIVATE view of the assumed fields, and the output limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/blender.pb-c.h"
#include "event/event.pb-c.h"
#include "formats/pb_json.h"
#include "formats/pb_private.h"

static void assert_json(const ProtobufCMessage *m, const char *want)
{
    size_t len = 0;
    char *got = pb_json_encode(m, &len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
}

static void test_floats_special(void **state)
{
    (void)state;
    Common__Location loc = COMMON__LOCATION__INIT;
    loc.has_latitude = 1;
    loc.latitude = NAN;
    loc.has_longitude = 1;
    loc.longitude = INFINITY;
    loc.has_accuracy_in_meters = 1;
    loc.accuracy_in_meters = -INFINITY;
    assert_json(&loc.base, "{\"latitude\":\"NaN\",\"longitude\":\"Infinity\","
                           "\"accuracyInMeters\":\"-Infinity\"}");

    /* float and double print with enough digits to read back exactly */
    Delivery__Insertion ins = DELIVERY__INSERTION__INIT;
    ins.has_retrieval_score = 1;
    ins.retrieval_score = 0.1f;
    char *j = pb_json_encode(&ins.base, NULL);
    assert_non_null(j);
    const char *num = strstr(j, "\"retrievalScore\":");
    assert_non_null(num);
    assert_true(strtof(num + strlen("\"retrievalScore\":"), NULL) == 0.1f);
    free(j);
    loc.has_longitude = loc.has_accuracy_in_meters = 0;
    loc.latitude = 0.1 + 0.2;
    j = pb_json_encode(&loc.base, NULL);
    assert_true(strtod(strchr(j, ':') + 1, NULL) == 0.1 + 0.2);
    free(j);
}

static void test_bytes_base64(void **state)
{
    (void)state;
    static const char *want[] = {
        "{\"structBytes\":\"\"}",         "{\"structBytes\":\"AQ==\"}",
        "{\"structBytes\":\"AQI=\"}",     "{\"structBytes\":\"AQID\"}",
        "{\"structBytes\":\"AQIDBA==\"}",
    };
    uint8_t data[] = {1, 2, 3, 4};
    Common__Properties p = COMMON__PROPERTIES__INIT;
    p.struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT_BYTES;
    p.struct_bytes.data = data;
    for (size_t n = 0; n <= 4; n++) {
        p.struct_bytes.len = n;
        assert_json(&p.base, want[n]);
    }
    uint8_t hi[] = {0xfb, 0xff, 0xbf};
    p.struct_bytes.data = hi;
    p.struct_bytes.len = 3;
    assert_json(&p.base, "{\"structBytes\":\"+/+/\"}");
}

static void test_strings_escaped(void **state)
{
    (void)state;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.user_id = "q\"b\\s/\n\t\x01\x7f-\xc3\xbc";
    ui.log_user_id = "bad\xff\xc3";
    assert_json(&ui.base, "{\"userId\":\"q\\\"b\\\\s/\\n\\t\\u0001\x7f-\xc3\xbc\","
                          "\"logUserId\":\"bad\\ufffd\\ufffd\"}");
}

static void test_enums_ints_presence(void **state)
{
    (void)state;
    Common__ClientInfo ci = COMMON__CLIENT_INFO__INIT;
    ci.has_client_type = 1;
    ci.client_type = 2;
    ci.has_traffic_type = 1;
    ci.traffic_type = 11; /* not named */
    assert_json(&ci.base, "{\"clientType\":\"PLATFORM_CLIENT\",\"trafficType\":11}");

    Delivery__Insertion ins = DELIVERY__INSERTION__INIT;
    assert_json(&ins.base, "{}");
    ins.has_position = 1; /* explicit zero prints */
    ins.position = 0;
    ins.has_platform_id = 0;
    ins.platform_id = 7; /* not flagged: absent */
    assert_json(&ins.base, "{\"position\":\"0\"}");

    Event__IndexPath ip = EVENT__INDEX_PATH__INIT;
    int32_t idx[] = {-2147483647 - 1, 0, 2147483647};
    ip.n_index = 3;
    ip.index = idx;
    assert_json(&ip.base, "{\"index\":[-2147483648,0,2147483647]}");

    Event__CartContent cc = EVENT__CART_CONTENT__INIT;
    cc.has_quantity = 1;
    cc.quantity = INT64_MIN;
    assert_json(&cc.base, "{\"quantity\":\"-9223372036854775808\"}");

    /* empty sub-messages print as {}, empty repeated fields not at all */
    Event__Action a = EVENT__ACTION__INIT;
    Event__Cart cart = EVENT__CART__INIT;
    a.cart = &cart;
    a.action_case = EVENT__ACTION__ACTION_NAVIGATE_ACTION;
    Event__NavigateAction nav = EVENT__NAVIGATE_ACTION__INIT;
    a.navigate_action = &nav;
    assert_json(&a.base, "{\"navigateAction\":{},\"cart\":{}}");
}

static void test_maps_and_struct(void **state)
{
    (void)state;
    Delivery__HyperloopParameterLog pl = DELIVERY__HYPERLOOP_PARAMETER_LOG__INIT;
    pl.has_bucket = 1;
    pl.bucket = -1;
    pl.has_value = 1;
    pl.value = 0.25f;
    Delivery__HyperloopLog__ParameterLogsEntry e1 =
        DELIVERY__HYPERLOOP_LOG__PARAMETER_LOGS_ENTRY__INIT;
    e1.has_key = 1;
    e1.key = UINT64_MAX;
    e1.value = &pl;
    Delivery__HyperloopLog__ParameterLogsEntry e2 =
        DELIVERY__HYPERLOOP_LOG__PARAMETER_LOGS_ENTRY__INIT;
    e2.has_key = 1;
    e2.key = 0;
    e2.value = NULL; /* absent value reads as the default */
    Delivery__HyperloopLog__ParameterLogsEntry *es[] = {&e1, &e2};
    Delivery__HyperloopLog hl = DELIVERY__HYPERLOOP_LOG__INIT;
    hl.n_parameter_logs = 2;
    hl.parameter_logs = es;
    assert_json(&hl.base, "{\"parameterLogs\":{\"18446744073709551615\":{\"bucket\":-1,"
                          "\"value\":0.25},\"0\":{}}}");

    Google__Protobuf__Value vnull = GOOGLE__PROTOBUF__VALUE__INIT;
    vnull.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
    Google__Protobuf__Value vnum = GOOGLE__PROTOBUF__VALUE__INIT;
    vnum.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    vnum.number_value = 0;
    Google__Protobuf__Value vstr = GOOGLE__PROTOBUF__VALUE__INIT;
    vstr.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    vstr.string_value = "";
    Google__Protobuf__Value vnone = GOOGLE__PROTOBUF__VALUE__INIT;
    Google__Protobuf__Value *items[] = {&vnull, &vnum, &vstr, &vnone};
    Google__Protobuf__ListValue lv = GOOGLE__PROTOBUF__LIST_VALUE__INIT;
    lv.n_values = 4;
    lv.values = items;
    Google__Protobuf__Value vlist = GOOGLE__PROTOBUF__VALUE__INIT;
    vlist.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    vlist.list_value = &lv;
    Google__Protobuf__Value vbool = GOOGLE__PROTOBUF__VALUE__INIT;
    vbool.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
    vbool.bool_value = 0;
    Google__Protobuf__Struct__FieldsEntry f1 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    f1.key = "list";
    f1.value = &vlist;
    Google__Protobuf__Struct__FieldsEntry f2 = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    f2.key = "flag";
    f2.value = &vbool;
    Google__Protobuf__Struct__FieldsEntry *fs[] = {&f1, &f2};
    Google__Protobuf__Struct st = GOOGLE__PROTOBUF__STRUCT__INIT;
    st.n_fields = 2;
    st.fields = fs;
    Common__Properties p = COMMON__PROPERTIES__INIT;
    p.struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT;
    p.struct_ = &st;
    assert_json(&p.base, "{\"struct\":{\"list\":[null,0,\"\",null],\"flag\":false}}");

    Google__Protobuf__Struct empty = GOOGLE__PROTOBUF__STRUCT__INIT;
    p.struct_ = &empty;
    assert_json(&p.base, "{\"struct\":{}}");
}

static void test_private_fields_flag(void **state)
{
    (void)state;
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    lr.has_platform_id = 1;
    lr.platform_id = 3;
    Logproc__Priv__Session s = LOGPROC__PRIV__SESSION__INIT;
    s.session_id = "s1";
    assert_int_equal(pb_private_add_session(&lr, &s, NULL), 0);

    assert_json(&lr.base, "{\"platformId\":\"3\"}");
    char *out, err[128];
    size_t len;
    assert_int_equal(pb_json_encode_ex(&lr.base, PB_JSON_PRIVATE, 0, &out, &len, err, sizeof err),
                     0);
    assert_string_equal(out, "{\"platformId\":\"3\",\"session\":[{\"sessionId\":\"s1\"}]}");
    free(out);
    pb_private_clear(&lr.base, NULL);
}

static void test_output_limit(void **state)
{
    (void)state;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.user_id = "0123456789012345678901234567890123456789";
    char *out = (char *)1, err[128];
    size_t len;
    assert_int_equal(pb_json_encode_ex(&ui.base, 0, 20, &out, &len, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "exceeds 20 bytes"));
    assert_non_null(strstr(err, "common.UserInfo"));
    assert_int_equal(pb_json_encode_ex(&ui.base, 0, 60, &out, &len, err, sizeof err), 0);
    assert_int_equal(len, strlen("{\"userId\":\"\"}") + 40);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floats_special),  cmocka_unit_test(test_bytes_base64),
        cmocka_unit_test(test_strings_escaped), cmocka_unit_test(test_enums_ints_presence),
        cmocka_unit_test(test_maps_and_struct), cmocka_unit_test(test_private_fields_flag),
        cmocka_unit_test(test_output_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
