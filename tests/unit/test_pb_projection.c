/* pb_projection: descriptors cut to the fields a job reads fill exactly those fields, keep the
 * rest as unknown bytes, refuse paths that do not exist, and leave the checked decode's verdict
 * unchanged (a bad string in a dropped field still makes the record invalid). With every field
 * kept, a projection unpacks every wire vector to the same message as the full descriptor. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.pb-c.h"
#include "formats/pb_projection.h"
#include "formats/pb_util.h"
#include "logproc/join.pb-c.h"

static uint8_t *joined_bytes(size_t *n)
{
    Event__JoinedEvent je = EVENT__JOINED_EVENT__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    ids.platform_id = 7;
    ids.has_platform_id = 1;
    ids.impression_id = "imp-1";
    je.ids = &ids;
    Common__Timing t = COMMON__TIMING__INIT, rt = COMMON__TIMING__INIT;
    t.log_timestamp = 1000;
    t.has_log_timestamp = 1;
    rt.log_timestamp = 2000;
    rt.has_log_timestamp = 1;
    je.timing = &t;
    Delivery__Request req = DELIVERY__REQUEST__INIT;
    req.request_id = "req-1";
    req.timing = &rt;
    je.request = &req;
    Delivery__Insertion ins = DELIVERY__INSERTION__INIT;
    ins.content_id = "c-1";
    ins.position = 4;
    ins.has_position = 1;
    je.response_insertion = &ins;
    Event__View view = EVENT__VIEW__INIT;
    view.view_id = "view-1";
    je.view = &view;
    *n = event__joined_event__get_packed_size(&je);
    uint8_t *b = malloc(*n);
    assert_non_null(b);
    event__joined_event__pack(&je, b);
    return b;
}

static void test_keeps_what_is_named(void **state)
{
    (void)state;
    char err[256];
    static const char *const paths[] = {"ids", "request.timing", "response_insertion.content_id",
                                        NULL};
    pb_projection *p;
    assert_int_equal(pb_projection_new(&event__joined_event__descriptor, paths, &p, err, sizeof err),
                     0);
    size_t n;
    uint8_t *b = joined_bytes(&n);
    ProtobufCMessage *m;
    assert_int_equal(pb_unpack_checked_as(&event__joined_event__descriptor,
                                          pb_projection_descriptor(p), b, n, NULL, &m, err,
                                          sizeof err),
                     0);
    pb_projection_finish(p, m);
    Event__JoinedEvent *je = (Event__JoinedEvent *)m;
    assert_ptr_equal(m->descriptor, &event__joined_event__descriptor);
    assert_ptr_equal(je->request->base.descriptor, &delivery__request__descriptor);
    assert_non_null(je->ids);
    assert_int_equal(je->ids->platform_id, 7);
    assert_string_equal(je->ids->impression_id, "imp-1");
    assert_null(je->timing); /* not named */
    assert_null(je->view);
    assert_non_null(je->request);
    assert_non_null(je->request->timing);
    assert_int_equal(je->request->timing->log_timestamp, 2000);
    assert_null(je->request->request_id); /* not named: as an absent string unpacks */
    assert_non_null(je->response_insertion);
    assert_string_equal(je->response_insertion->content_id, "c-1");
    assert_int_equal(je->response_insertion->position, 0);
    /* the dropped fields are kept as bytes: timing and view at the top, request_id in the
     * request, position in the insertion */
    assert_int_equal(je->base.n_unknown_fields, 2);
    assert_int_equal(je->request->base.n_unknown_fields, 1);
    assert_int_equal(je->response_insertion->base.n_unknown_fields, 1);
    protobuf_c_message_free_unpacked(m, NULL);
    free(b);
    pb_projection_free(p);
}

static void test_bad_paths(void **state)
{
    (void)state;
    char err[256];
    pb_projection *p;
    static const char *const missing[] = {"ids", "request.nope", NULL};
    assert_int_equal(pb_projection_new(&event__joined_event__descriptor, missing, &p, err,
                                       sizeof err),
                     -1);
    assert_non_null(strstr(err, "request.nope"));
    assert_non_null(strstr(err, "no field nope"));
    static const char *const scalar[] = {"ids.platform_id.x", NULL};
    assert_int_equal(pb_projection_new(&event__joined_event__descriptor, scalar, &p, err,
                                       sizeof err),
                     -1);
    assert_non_null(strstr(err, "not a message"));
}

static void test_dropped_field_still_checked(void **state)
{
    (void)state;
    char err[256];
    static const char *const paths[] = {"platform_id", NULL};
    pb_projection *p;
    assert_int_equal(pb_projection_new(&event__log_request__descriptor, paths, &p, err, sizeof err),
                     0);
    static const uint8_t bad[] = {0x12, 0x03, 0x12, 0x01, 0xfe}; /* user_info.log_user_id */
    ProtobufCMessage *m;
    assert_int_equal(pb_unpack_checked_as(&event__log_request__descriptor,
                                          pb_projection_descriptor(p), bad, sizeof bad, NULL, &m,
                                          err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "invalid UTF-8"));
    pb_projection_free(p);
}

static void test_all_fields_equal_full(void **state)
{
    (void)state;
    char err[512];
    const ProtobufCMessageDescriptor *d = &event__log_request__descriptor;
    const char *paths[64];
    assert_true(d->n_fields < 64);
    for (unsigned i = 0; i < d->n_fields; i++) paths[i] = d->fields[i].name;
    paths[d->n_fields] = NULL;
    pb_projection *p;
    assert_int_equal(pb_projection_new(d, paths, &p, err, sizeof err), 0);
    const char *root = getenv("LOGPROC_TEST_DATA");
    assert_non_null(root);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/vectors/wire", root);
    DIR *dh = opendir(dir);
    assert_non_null(dh);
    int seen = 0;
    for (struct dirent *e; (e = readdir(dh));) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 3, ".pb")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        ProtobufCMessage *a, *b;
        int ra = pb_unpack_checked(d, buf, n, NULL, &a, err, sizeof err);
        int rb = pb_unpack_checked_as(d, pb_projection_descriptor(p), buf, n, NULL, &b, err,
                                      sizeof err);
        assert_int_equal(ra, rb);
        if (ra) continue;
        pb_projection_finish(p, b);
        size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);
        assert_int_equal(na, nb);
        uint8_t *pa = malloc(na + 1), *pbuf = malloc(nb + 1);
        protobuf_c_message_pack(a, pa);
        protobuf_c_message_pack(b, pbuf);
        assert_memory_equal(pa, pbuf, na);
        assert_int_equal(b->n_unknown_fields, a->n_unknown_fields);
        free(pa);
        free(pbuf);
        protobuf_c_message_free_unpacked(a, NULL);
        protobuf_c_message_free_unpacked(b, NULL);
        seen++;
    }
    closedir(dh);
    assert_true(seen >= 10);
    pb_projection_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keeps_what_is_named),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_dropped_field_still_checked),
        cmocka_unit_test(test_all_fields_equal_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
