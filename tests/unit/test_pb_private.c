/* Assumed private fields kept in protobuf-c's unknown fields: each round-trips through the
 * setters and getters (and through packed bytes), Java's field order decodes too, and a wrong
 * wire type, bytes that do not parse or invalid UTF-8 make the field absent and count one bad
 * field without failing the record. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "formats/pb_private.h"
#include "formats/pb_util.h"

static uint64_t bad_count(void)
{
    return atomic_load(&pb_private_bad_fields);
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*n ? *n : 1);
    protobuf_c_message_pack(m, b);
    return b;
}

static void test_sessions_round_trip(void **state)
{
    (void)state;
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    lr.has_platform_id = 1;
    lr.platform_id = 1;

    Common__Timing t = COMMON__TIMING__INIT;
    t.has_client_log_timestamp = 1;
    t.client_log_timestamp = 5;
    Common__Location loc = COMMON__LOCATION__INIT;
    loc.has_latitude = 1;
    loc.latitude = 1.5;
    loc.has_longitude = 1;
    loc.longitude = -2.0;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.log_user_id = "lu";
    Logproc__Priv__SessionProfile sp = LOGPROC__PRIV__SESSION_PROFILE__INIT;
    sp.session_id = "s1";
    sp.timing = &t;
    sp.location = &loc;
    sp.user_info = &ui;
    sp.has_platform_id = 1;
    sp.platform_id = 9;
    Logproc__Priv__Session se = LOGPROC__PRIV__SESSION__INIT;
    se.session_id = "s1";
    se.user_info = &ui;
    se.has_start_epoch_millis = 1;
    se.start_epoch_millis = 100;
    se.has_exclusive_end_epoch_millis = 1;
    se.exclusive_end_epoch_millis = 200;

    assert_int_equal(pb_private_add_session_profile(&lr, &sp, NULL), 0);
    assert_int_equal(pb_private_add_session(&lr, &se, NULL), 0);
    assert_int_equal(pb_private_add_session(&lr, &se, NULL), 0);

    /* bytes: known fields first, then 9, 10, 10 in the order added */
    size_t n, spn;
    uint8_t *b = pack(&lr.base, &n);
    uint8_t *spb = pack(&sp.base, &spn);
    assert_true(spn < 128);
    assert_int_equal(b[0], 0x08); /* platform_id (1) */
    assert_int_equal(b[1], 0x01);
    assert_int_equal(b[2], 0x4a); /* field 9, length-delimited */
    assert_int_equal(b[3], spn);
    assert_memory_equal(b + 4, spb, spn);
    assert_int_equal(b[4 + spn], 0x52); /* field 10, length-delimited */
    pb_private_clear(&lr.base, NULL);
    assert_int_equal(lr.base.n_unknown_fields, 0);

    uint64_t before = bad_count();
    Event__LogRequest *got = event__log_request__unpack(NULL, n, b);
    assert_non_null(got);
    Logproc__Priv__SessionProfile **sps;
    size_t nsp;
    assert_int_equal(pb_private_get_session_profiles(got, NULL, &sps, &nsp), 0);
    assert_int_equal(nsp, 1);
    assert_string_equal(sps[0]->session_id, "s1");
    assert_int_equal(sps[0]->timing->client_log_timestamp, 5);
    assert_true(sps[0]->location->latitude == 1.5);
    assert_true(sps[0]->location->longitude == -2.0);
    assert_string_equal(sps[0]->user_info->log_user_id, "lu");
    assert_int_equal(sps[0]->platform_id, 9);
    Logproc__Priv__Session **ss;
    size_t nss;
    assert_int_equal(pb_private_get_sessions(got, NULL, &ss, &nss), 0);
    assert_int_equal(nss, 2);
    assert_string_equal(ss[1]->session_id, "s1");
    assert_int_equal(ss[1]->start_epoch_millis, 100);
    assert_int_equal(ss[1]->exclusive_end_epoch_millis, 200);
    assert_int_equal(bad_count(), before);
    pb_private_free_list((ProtobufCMessage **)sps, nsp, NULL);
    pb_private_free_list((ProtobufCMessage **)ss, nss, NULL);

    /* the re-encoded record keeps the private fields byte for byte */
    size_t n2;
    uint8_t *b2 = pack(&got->base, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(b2, b, n);
    free(b2);
    event__log_request__free_unpacked(got, NULL);
    free(b);
    free(spb);
}

static void test_java_order_decodes(void **state)
{
    (void)state;
    /* Java writes 9 and 10 between 8 and 11 */
    static const uint8_t b[] = {
        0x08, 0x01,                       /* platform_id (1) = 1 */
        0x4a, 0x04, 0x0a, 0x02, 's', '1', /* session_profile (9, assumed) [{session_id "s1"}] */
        0x52, 0x04, 0x0a, 0x02, 's', '2', /* session (10, assumed) [{session_id "s2"}] */
        0x5a, 0x03, 0x32, 0x01, 'v',      /* view (11) [{view_id "v"}] */
    };
    Event__LogRequest *lr = event__log_request__unpack(NULL, sizeof b, b);
    assert_non_null(lr);
    assert_int_equal(lr->n_view, 1);
    Logproc__Priv__SessionProfile **sps;
    Logproc__Priv__Session **ss;
    size_t nsp, nss;
    assert_int_equal(pb_private_get_session_profiles(lr, NULL, &sps, &nsp), 0);
    assert_int_equal(pb_private_get_sessions(lr, NULL, &ss, &nss), 0);
    assert_int_equal(nsp, 1);
    assert_int_equal(nss, 1);
    assert_string_equal(sps[0]->session_id, "s1");
    assert_string_equal(ss[0]->session_id, "s2");
    pb_private_free_list((ProtobufCMessage **)sps, nsp, NULL);
    pb_private_free_list((ProtobufCMessage **)ss, nss, NULL);
    event__log_request__free_unpacked(lr, NULL);
}

static void test_execution_insertions_and_feature_stage(void **state)
{
    (void)state;
    Delivery__DeliveryExecution ex = DELIVERY__DELIVERY_EXECUTION__INIT;
    ex.has_execution_server = 1;
    ex.execution_server = DELIVERY__EXECUTION_SERVER__API;

    Logproc__Priv__Features__NumericEntry ne = LOGPROC__PRIV__FEATURES__NUMERIC_ENTRY__INIT;
    ne.has_key = 1;
    ne.key = 100;
    ne.has_value = 1;
    ne.value = 0.5f;
    Logproc__Priv__Features__NumericEntry *nes[] = {&ne};
    Logproc__Priv__Features__SparseIdEntry se = LOGPROC__PRIV__FEATURES__SPARSE_ID_ENTRY__INIT;
    se.has_key = 1;
    se.key = 7;
    se.has_value = 1;
    se.value = 1;
    Logproc__Priv__Features__SparseIdEntry *ses[] = {&se};
    Logproc__Priv__Features f = LOGPROC__PRIV__FEATURES__INIT;
    f.n_numeric = 1;
    f.numeric = nes;
    f.n_sparse_id = 1;
    f.sparse_id = ses;
    Logproc__Priv__FeatureStage fs = LOGPROC__PRIV__FEATURE_STAGE__INIT;
    fs.features = &f;

    Delivery__Insertion i1 = DELIVERY__INSERTION__INIT;
    i1.insertion_id = "i1";
    i1.content_id = "c1";
    /* set twice: the second replaces the first */
    ne.value = 0.25f;
    assert_int_equal(pb_private_set_feature_stage(&i1, &fs, NULL), 0);
    ne.value = 0.5f;
    assert_int_equal(pb_private_set_feature_stage(&i1, &fs, NULL), 0);
    assert_int_equal(i1.base.n_unknown_fields, 1);
    Delivery__Insertion i2 = DELIVERY__INSERTION__INIT;
    i2.insertion_id = "i2";
    assert_int_equal(pb_private_add_execution_insertion(&ex, &i1, NULL), 0);
    assert_int_equal(pb_private_add_execution_insertion(&ex, &i2, NULL), 0);
    pb_private_clear(&i1.base, NULL);

    size_t n;
    uint8_t *b = pack(&ex.base, &n);
    pb_private_clear(&ex.base, NULL);
    assert_int_equal(b[0], 0x10); /* execution_server (2) first */
    assert_int_equal(b[1], 0x01);
    assert_int_equal(b[2], 0x0a); /* then execution_insertion (1, assumed) */

    pb_arena *arena = pb_arena_new(4096, 1 << 20);
    ProtobufCAllocator *a = pb_arena_allocator(arena);
    uint64_t before = bad_count();
    Delivery__DeliveryExecution *got = delivery__delivery_execution__unpack(a, n, b);
    assert_non_null(got);
    Delivery__Insertion **ins;
    size_t nins;
    assert_int_equal(pb_private_get_execution_insertions(got, a, &ins, &nins), 0);
    assert_int_equal(nins, 2);
    assert_string_equal(ins[0]->insertion_id, "i1");
    assert_string_equal(ins[0]->content_id, "c1");
    assert_string_equal(ins[1]->insertion_id, "i2");
    Logproc__Priv__FeatureStage *gfs;
    assert_int_equal(pb_private_get_feature_stage(ins[0], a, &gfs), 0);
    assert_non_null(gfs);
    assert_int_equal(gfs->features->n_numeric, 1);
    assert_int_equal(gfs->features->numeric[0]->key, 100);
    assert_true(gfs->features->numeric[0]->value == 0.5f);
    assert_int_equal(gfs->features->n_sparse_id, 1);
    assert_int_equal(gfs->features->sparse_id[0]->key, 7);
    assert_int_equal(gfs->features->sparse_id[0]->value, 1);
    assert_int_equal(pb_private_get_feature_stage(ins[1], a, &gfs), 0);
    assert_null(gfs);
    assert_int_equal(bad_count(), before);
    pb_arena_free(arena); /* everything above lived in the arena */
    free(b);
}

static void test_bad_fields_are_absent_and_counted(void **state)
{
    (void)state;
    static const uint8_t b[] = {
        0x08, 0x01,                        /* platform_id (1) = 1 */
        0x48, 0x05,                        /* field 9 as a varint: wrong wire type */
        0x4a, 0x04, 0x0a, 0x02, 'o',  'k', /* field 9 [{session_id "ok"}]: good */
        0x52, 0x02, 0xff, 0xff,            /* field 10: bytes that are not a message */
        0x52, 0x03, 0x0a, 0x01, 0xff,      /* field 10: session_id is invalid UTF-8 */
        0x55, 1,    2,    3,    4,         /* field 10 as fixed32: wrong wire type */
    };
    Event__LogRequest *lr = event__log_request__unpack(NULL, sizeof b, b);
    assert_non_null(lr); /* the record itself is fine */
    assert_int_equal(lr->platform_id, 1);

    uint64_t before = bad_count();
    Logproc__Priv__SessionProfile **sps;
    size_t nsp;
    assert_int_equal(pb_private_get_session_profiles(lr, NULL, &sps, &nsp), 0);
    assert_int_equal(nsp, 1);
    assert_string_equal(sps[0]->session_id, "ok");
    assert_int_equal(bad_count(), before + 1);
    pb_private_free_list((ProtobufCMessage **)sps, nsp, NULL);

    Logproc__Priv__Session **ss;
    size_t nss;
    assert_int_equal(pb_private_get_sessions(lr, NULL, &ss, &nss), 0);
    assert_int_equal(nss, 0);
    assert_null(ss);
    assert_int_equal(bad_count(), before + 4);
    event__log_request__free_unpacked(lr, NULL);

    static const uint8_t ib[] = {
        0x32, 0x01, 'i',  /* insertion_id (6) = "i" */
        0x88, 0x01, 0x05, /* field 17 as a varint: wrong wire type */
    };
    Delivery__Insertion *ins = delivery__insertion__unpack(NULL, sizeof ib, ib);
    assert_non_null(ins);
    Logproc__Priv__FeatureStage *fs = (void *)1;
    assert_int_equal(pb_private_get_feature_stage(ins, NULL, &fs), 0);
    assert_null(fs);
    assert_int_equal(bad_count(), before + 5);
    delivery__insertion__free_unpacked(ins, NULL);

    /* features map with the wrong value wire type (value as LEN instead of fixed32) */
    static const uint8_t ib2[] = {
        0x8a, 0x01, 0x08, /* feature_stage (17, assumed), 8 bytes: */
        0x0a, 0x06,       /*   features (1), 6 bytes: */
        0x0a, 0x04,       /*     numeric (1) entry, 4 bytes: */
        0x08, 0x64,       /*       key (1) = 100 */
        0x12, 0x00,       /*       value (2) as length-delimited: wrong for float */
    };
    ins = delivery__insertion__unpack(NULL, sizeof ib2, ib2);
    assert_non_null(ins);
    assert_int_equal(pb_private_get_feature_stage(ins, NULL, &fs), 0);
    assert_null(fs);
    assert_int_equal(bad_count(), before + 6);
    delivery__insertion__free_unpacked(ins, NULL);
}

static void test_field_table(void **state)
{
    (void)state;
    size_t n;
    const pb_private_field *f = pb_private_fields(&n);
    assert_int_equal(n, 4);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        /* none of the assumed numbers may be declared in the wire messages */
        assert_null(protobuf_c_message_descriptor_get_field(f[i].owner, f[i].number));
        if (f[i].owner == &delivery__insertion__descriptor && f[i].number == 17 && !f[i].repeated)
            seen++;
    }
    assert_int_equal(seen, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_round_trip),
        cmocka_unit_test(test_java_order_decodes),
        cmocka_unit_test(test_execution_insertions_and_feature_stage),
        cmocka_unit_test(test_bad_fields_are_absent_and_counted),
        cmocka_unit_test(test_field_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
