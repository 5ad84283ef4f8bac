/* pb_util: the arena allocator (alignment, chunk growth, hard cap, reset and reuse), the UTF-8
 * validator and the recursive string check (names the path of the first bad string, looks only
 * at the selected oneof member), the nesting pre-check, JSON names and map detection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/blender.pb-c.h"
#include "event/event.pb-c.h"
#include "formats/pb_util.h"
#include "google/protobuf/struct.pb-c.h"

static void test_arena_alignment_and_growth(void **state)
{
    (void)state;
    pb_arena *a = pb_arena_new(1024, 1 << 20);
    assert_non_null(a);
    ProtobufCAllocator *al = pb_arena_allocator(a);
    size_t held0 = pb_arena_held(a);
    for (int i = 0; i < 100; i++) {
        void *p = al->alloc(al->allocator_data, (size_t)(i % 7) + 1);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, 0xab, (size_t)(i % 7) + 1);
    }
    assert_true(pb_arena_held(a) > held0); /* 100 aligned blocks do not fit 1 KiB */
    /* an allocation larger than a chunk gets its own chunk */
    void *big = al->alloc(al->allocator_data, 10000);
    assert_non_null(big);
    memset(big, 0, 10000);
    size_t held = pb_arena_held(a);
    /* reset keeping everything: the same work needs no new chunk */
    pb_arena_reset(a, SIZE_MAX);
    assert_int_equal(pb_arena_used(a), 0);
    for (int i = 0; i < 100; i++)
        assert_non_null(al->alloc(al->allocator_data, (size_t)(i % 7) + 1));
    assert_non_null(al->alloc(al->allocator_data, 10000));
    assert_int_equal(pb_arena_held(a), held);
    /* reset with a small keep limit drops all but the first chunk */
    pb_arena_reset(a, 0);
    assert_int_equal(pb_arena_held(a), held0);
    al->free(al->allocator_data, big); /* a no-op, must not crash */
    pb_arena_free(a);
}

static void test_arena_cap_enforced(void **state)
{
    (void)state;
    const size_t cap = 8192;
    pb_arena *a = pb_arena_new(1024, cap);
    assert_non_null(a);
    ProtobufCAllocator *al = pb_arena_allocator(a);
    size_t total = 0;
    int allocs = 0;
    while (al->alloc(al->allocator_data, 100) != NULL) {
        total += 100;
        allocs++;
        assert_true(allocs < 1000);
    }
    assert_true(pb_arena_cap_hit(a));
    assert_true(pb_arena_held(a) <= cap);
    assert_true(total > cap / 2); /* most of the cap was usable */
    assert_null(al->alloc(al->allocator_data, cap + 1));
    pb_arena_reset(a, SIZE_MAX);
    assert_false(pb_arena_cap_hit(a));
    assert_non_null(al->alloc(al->allocator_data, 100));
    pb_arena_free(a);

    /* protobuf-c's unpack fails cleanly when the message needs more than the cap */
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    Event__View views[200];
    Event__View *vp[200];
    for (int i = 0; i < 200; i++) {
        event__view__init(&views[i]);
        views[i].view_id = "view-id-that-takes-some-room";
        vp[i] = &views[i];
    }
    lr.n_view = 200;
    lr.view = vp;
    size_t n = event__log_request__get_packed_size(&lr);
    uint8_t *b = malloc(n);
    event__log_request__pack(&lr, b);
    a = pb_arena_new(1024, 4096);
    assert_null(event__log_request__unpack(pb_arena_allocator(a), n, b));
    assert_true(pb_arena_cap_hit(a));
    pb_arena_free(a);
    a = pb_arena_new(4096, 1 << 20);
    Event__LogRequest *got = event__log_request__unpack(pb_arena_allocator(a), n, b);
    assert_non_null(got);
    assert_int_equal(got->n_view, 200);
    assert_string_equal(got->view[199]->view_id, "view-id-that-takes-some-room");
    event__log_request__free_unpacked(got, pb_arena_allocator(a)); /* no-op frees */
    pb_arena_free(a);
    free(b);

    assert_null(pb_arena_new(0, 100));
    assert_null(pb_arena_new(200, 100));
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(pb_utf8_valid("", 0));
    assert_true(pb_utf8_valid("plain", 5));
    assert_true(pb_utf8_valid("\xc3\xbc", 2));         /* U+00FC */
    assert_true(pb_utf8_valid("\xe2\x9c\x93", 3));     /* U+2713 */
    assert_true(pb_utf8_valid("\xf0\x9f\x98\x80", 4)); /* U+1F600 */
    assert_true(pb_utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
    assert_false(pb_utf8_valid("\xff", 1));
    assert_false(pb_utf8_valid("\x80", 1));             /* lone continuation */
    assert_false(pb_utf8_valid("\xc0\x80", 2));         /* overlong NUL */
    assert_false(pb_utf8_valid("\xe0\x80\xaf", 3));     /* overlong '/' */
    assert_false(pb_utf8_valid("\xed\xa0\x80", 3));     /* surrogate U+D800 */
    assert_false(pb_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    assert_false(pb_utf8_valid("\xe2\x9c", 2));         /* truncated */
    assert_false(pb_utf8_valid("ab\xc3", 3));           /* truncated at the end */
    /* the ASCII fast path (8 bytes at a time) hands over to the byte loop and back */
    assert_true(pb_utf8_valid("aaaaaaaaaaaaaaaa\xc3\xbc" "aaaaaaaaa", 27));
    assert_false(pb_utf8_valid("aaaaaaaaaaaaa\xff" "aaaaaa", 20));
    assert_false(pb_utf8_valid("aaaaaaaaaaaaaaaa\xc3\xbc" "aaaaaaaa\xc3", 27));
    assert_false(pb_utf8_valid("aaaaaaaa\x80", 9));
}

static void test_check_utf8_names_path(void **state)
{
    (void)state;
    char err[512];
    Common__UserInfo ui_ok = COMMON__USER_INFO__INIT;
    ui_ok.log_user_id = "fine-\xc3\xbc";
    Common__UserInfo ui_bad = COMMON__USER_INFO__INIT;
    ui_bad.log_user_id = "bad-\xff-id";
    Delivery__Insertion i0 = DELIVERY__INSERTION__INIT, i1 = DELIVERY__INSERTION__INIT;
    i0.user_info = &ui_ok;
    i1.user_info = &ui_bad;
    Delivery__Insertion *ins[] = {&i0, &i1};
    Delivery__Request req = DELIVERY__REQUEST__INIT;
    req.n_insertion = 2;
    req.insertion = ins;
    Delivery__DeliveryLog dl = DELIVERY__DELIVERY_LOG__INIT;
    dl.request = &req;
    Delivery__DeliveryLog *dls[] = {&dl};
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    lr.n_delivery_log = 1;
    lr.delivery_log = dls;

    assert_int_equal(pb_check_utf8(&lr.base, err, sizeof err), -1);
    assert_string_equal(err, "invalid UTF-8 in string field delivery_log[0].request.insertion[1]."
                             "user_info.log_user_id");
    ui_bad.log_user_id = "now-ok";
    assert_int_equal(pb_check_utf8(&lr.base, err, sizeof err), 0);

    /* repeated strings, and a Struct key inside a oneof */
    char *hdrs[] = {"a", "b\xc0"};
    req.n_insertion_matrix_headers = 2;
    req.insertion_matrix_headers = hdrs;
    assert_int_equal(pb_check_utf8(&lr.base, err, sizeof err), -1);
    assert_non_null(strstr(err, "delivery_log[0].request.insertion_matrix_headers[1]"));
    req.n_insertion_matrix_headers = 0;

    Google__Protobuf__Value val = GOOGLE__PROTOBUF__VALUE__INIT;
    val.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    val.string_value = "v\xed\xa0\x80"; /* surrogate */
    Google__Protobuf__Struct__FieldsEntry fe = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    fe.key = "k";
    fe.value = &val;
    Google__Protobuf__Struct__FieldsEntry *fes[] = {&fe};
    Google__Protobuf__Struct st = GOOGLE__PROTOBUF__STRUCT__INIT;
    st.n_fields = 1;
    st.fields = fes;
    Common__Properties props = COMMON__PROPERTIES__INIT;
    props.struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT;
    props.struct_ = &st;
    Event__View v = EVENT__VIEW__INIT;
    v.properties = &props;
    Event__View *vs[] = {&v};
    lr.n_view = 1;
    lr.view = vs;
    assert_int_equal(pb_check_utf8(&lr.base, err, sizeof err), -1);
    assert_string_equal(err, "invalid UTF-8 in string field view[0].properties.struct.fields[0]"
                             ".value.string_value");

    /* an unselected oneof member shares storage with the selected one: never read it */
    val.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    val.number_value = 12345.0;
    assert_int_equal(pb_check_utf8(&lr.base, err, sizeof err), 0);

    /* bytes fields are not strings */
    props.struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT_BYTES;
    props.struct_bytes.len = 1;
    props.struct_bytes.data = (uint8_t *)"\xff";
    assert_int_equal(pb_check_utf8(&lr.base, err, sizeof err), 0);
}

static size_t put_varint(uint8_t *out, size_t x)
{
    size_t n = 0;
    do {
        out[n++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
        x >>= 7;
    } while (x);
    return n;
}

/* Builds a Struct nested `levels` deep through Value.struct_value; returns malloc'd bytes.
 * Each level wraps the previous Struct X as
 * Struct{fields (1): [{key (1) "k", value (2): Value{struct_value (5): X}}]}. */
static uint8_t *nested_struct_bytes(int levels, size_t *len)
{
    size_t cap = (size_t)levels * 32 + 32;
    uint8_t *cur = malloc(cap), *val = malloc(cap), *ent = malloc(cap);
    size_t n = 0; /* innermost: the empty Struct */
    for (int i = 0; i < levels; i++) {
        size_t v = 0, e = 0;
        val[v++] = 0x2a; /* struct_value (5) */
        v += put_varint(val + v, n);
        memcpy(val + v, cur, n);
        v += n;
        ent[e++] = 0x0a; /* key (1) = "k" */
        ent[e++] = 0x01;
        ent[e++] = 'k';
        ent[e++] = 0x12; /* value (2) */
        e += put_varint(ent + e, v);
        memcpy(ent + e, val, v);
        e += v;
        n = 0;
        cur[n++] = 0x0a; /* fields (1) */
        n += put_varint(cur + n, e);
        memcpy(cur + n, ent, e);
        n += e;
    }
    free(val);
    free(ent);
    *len = n;
    return cur;
}

static void test_wire_check_depth(void **state)
{
    (void)state;
    char err[256];
    size_t n;
    /* each wrapping level adds Struct -> FieldsEntry -> Value: 3 message levels */
    uint8_t *b = nested_struct_bytes(10, &n);
    assert_int_equal(pb_wire_check_depth(&google__protobuf__struct__descriptor, b, n, PB_MAX_DEPTH,
                                         err, sizeof err),
                     0);
    Google__Protobuf__Struct *s = google__protobuf__struct__unpack(NULL, n, b);
    assert_non_null(s);
    google__protobuf__struct__free_unpacked(s, NULL);
    free(b);

    b = nested_struct_bytes(40, &n); /* 1 + 3*40 = 121 levels */
    assert_int_equal(pb_wire_check_depth(&google__protobuf__struct__descriptor, b, n, PB_MAX_DEPTH,
                                         err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "nesting"));
    assert_non_null(strstr(err, "100"));
    assert_non_null(strstr(err, "1.2.5.1.2.5")); /* fields.value.struct_value... */
    free(b);

    static const uint8_t trunc[] = {0x92, 0x01, 0x05, 0x08}; /* delivery_log (18) claims 5 bytes */
    assert_int_equal(pb_wire_check_depth(&event__log_request__descriptor, trunc, sizeof trunc,
                                         PB_MAX_DEPTH, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "18"));
    /* unknown length-delimited fields are skipped, not descended into */
    static const uint8_t unk[] = {0xfa, 0x03, 0x02, 0xff, 0xff}; /* field 63, 2 bytes of junk */
    assert_int_equal(pb_wire_check_depth(&event__log_request__descriptor, unk, sizeof unk,
                                         PB_MAX_DEPTH, err, sizeof err),
                     0);
}

static void test_names_and_maps(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(pb_json_name("client_log_timestamp", buf, sizeof buf), 0);
    assert_string_equal(buf, "clientLogTimestamp");
    assert_int_equal(pb_json_name("struct", buf, sizeof buf), 0);
    assert_string_equal(buf, "struct");
    assert_int_equal(pb_json_name("ios_errors", buf, sizeof buf), 0);
    assert_string_equal(buf, "iosErrors");
    assert_int_equal(pb_json_name("treatment_1", buf, sizeof buf), 0);
    assert_string_equal(buf, "treatment1");
    assert_int_equal(pb_json_name("client_log_timestamp", buf, 6), -1);
    assert_string_equal(buf, "clien");

    const ProtobufCFieldDescriptor *f =
        pb_field_by_name(&google__protobuf__struct__descriptor, "fields");
    assert_non_null(f);
    assert_true(pb_field_is_map(&google__protobuf__struct__descriptor, f));
    f = pb_field_by_name(&delivery__hyperloop_log__descriptor, "parameter_logs");
    assert_true(pb_field_is_map(&delivery__hyperloop_log__descriptor, f));
    f = pb_field_by_name(&event__log_request__descriptor, "view");
    assert_false(pb_field_is_map(&event__log_request__descriptor, f));
    assert_null(pb_field_by_name(&event__log_request__descriptor, "session"));
}

static void test_field_presence(void **state)
{
    (void)state;
    Delivery__Insertion ins = DELIVERY__INSERTION__INIT;
    const ProtobufCMessageDescriptor *d = &delivery__insertion__descriptor;
    const ProtobufCFieldDescriptor *pos = pb_field_by_name(d, "position");
    const ProtobufCFieldDescriptor *id = pb_field_by_name(d, "insertion_id");
    assert_false(pb_field_present(&ins.base, pos));
    ins.has_position = 1; /* explicit zero */
    assert_true(pb_field_present(&ins.base, pos));
    assert_false(pb_field_present(&ins.base, id));
    ins.insertion_id = "";
    assert_true(pb_field_present(&ins.base, id)); /* proto2: set "" is present */

    Google__Protobuf__Struct__FieldsEntry fe = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    const ProtobufCFieldDescriptor *key =
        pb_field_by_name(&google__protobuf__struct__fields_entry__descriptor, "key");
    assert_false(pb_field_present(&fe.base, key)); /* proto3 "" is absent */
    fe.key = "k";
    assert_true(pb_field_present(&fe.base, key));

    Delivery__Paging pg = DELIVERY__PAGING__INIT;
    const ProtobufCFieldDescriptor *off = pb_field_by_name(&delivery__paging__descriptor, "offset");
    const ProtobufCFieldDescriptor *cur = pb_field_by_name(&delivery__paging__descriptor, "cursor");
    pg.starting_case = DELIVERY__PAGING__STARTING_OFFSET;
    pg.offset = 0;
    assert_true(pb_field_present(&pg.base, off));
    assert_false(pb_field_present(&pg.base, cur));
}

static void test_unpack_checked(void **state)
{
    (void)state;
    char err[512];
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    static const uint8_t ok[] = {
        0x12, 0x03, 0x12, 0x01, 'x', /* user_info (2) {log_user_id (2) "x"} */
    };
    assert_int_equal(pb_unpack_checked(&event__log_request__descriptor, ok, sizeof ok, NULL, &m,
                                       err, sizeof err),
                     0);
    assert_string_equal(((Event__LogRequest *)m)->user_info->log_user_id, "x");
    protobuf_c_message_free_unpacked(m, NULL);

    static const uint8_t bad_utf8[] = {
        0x12, 0x03, 0x12, 0x01, 0xfe, /* user_info (2) {log_user_id (2) = byte fe} */
    };
    assert_int_equal(pb_unpack_checked(&event__log_request__descriptor, bad_utf8, sizeof bad_utf8,
                                       NULL, &m, err, sizeof err),
                     -1);
    assert_null(m);
    assert_string_equal(err,
                        "event.LogRequest: invalid UTF-8 in string field user_info.log_user_id");

    static const uint8_t bad_type[] = {
        0x15, 1, 2, 3, 4, /* user_info (2) as fixed32: wrong wire type for a message */
    };
    assert_int_equal(pb_unpack_checked(&event__log_request__descriptor, bad_type, sizeof bad_type,
                                       NULL, &m, err, sizeof err),
                     -1);
    assert_string_equal(err, "event.LogRequest: protobuf-c could not decode 5 bytes");

    /* bad bytes after an embedded NUL: Java's parser rejects them, the C string ends before
     * them, so the error keeps the wire path (fields.key) */
    static const uint8_t nul_then_bad[] = {0x0a, 0x05, 0x0a, 0x03, 'a', 0x00, 0xff};
    assert_int_equal(pb_unpack_checked(&google__protobuf__struct__descriptor, nul_then_bad,
                                       sizeof nul_then_bad, NULL, &m, err, sizeof err),
                     -1);
    assert_string_equal(err, "google.protobuf.Struct: invalid UTF-8 in string field at field "
                             "path 1.1");

    /* a bad string before a nesting bomb: the nesting is still checked before protobuf-c
     * recurses (the wire walk stops at the string, so it is walked again for depth alone) */
    size_t n;
    uint8_t *deep = nested_struct_bytes(40, &n);
    uint8_t *both = malloc(n + 5);
    assert_non_null(both);
    static const uint8_t bad_key[] = {0x0a, 0x03, 0x0a, 0x01, 0xff};
    memcpy(both, bad_key, sizeof bad_key);
    memcpy(both + sizeof bad_key, deep, n);
    assert_int_equal(pb_unpack_checked(&google__protobuf__struct__descriptor, both, n + 5, NULL,
                                       &m, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "nesting"));
    free(deep);
    deep = nested_struct_bytes(3, &n);
    memcpy(both + sizeof bad_key, deep, n);
    assert_int_equal(pb_unpack_checked(&google__protobuf__struct__descriptor, both,
                                       sizeof bad_key + n, NULL, &m, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "google.protobuf.Struct: invalid UTF-8 in string field fields"));
    free(deep);
    free(both);

    /* with an arena too small for the message: the same clean failure */
    pb_arena *a = pb_arena_new(64, 64 + 64);
    assert_non_null(a);
    assert_int_equal(pb_unpack_checked(&event__log_request__descriptor, ok, sizeof ok,
                                       pb_arena_allocator(a), &m, err, sizeof err),
                     -1);
    assert_true(pb_arena_cap_hit(a));
    pb_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_alignment_and_growth),
        cmocka_unit_test(test_arena_cap_enforced),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_check_utf8_names_path),
        cmocka_unit_test(test_wire_check_depth),
        cmocka_unit_test(test_names_and_maps),
        cmocka_unit_test(test_field_presence),
        cmocka_unit_test(test_unpack_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
