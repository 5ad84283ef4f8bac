/* Hand-built wire bytes for every message the jobs read: each decodes to the field values the
 * bytes spell out, and re-encodes to the same bytes (proto3 rules: fields in number order,
 * nothing for absent fields, explicit-presence zeros kept). Also: unknown fields of all four
 * wire types are kept and re-emitted (after the known fields), packed and unpacked
 * IndexPath.index both decode, negative int32 is a 10-byte varint, an absent string is NULL,
 * unknown enum numbers survive. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/common.pb-c.h"
#include "delivery/delivery.pb-c.h"
#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

static ProtobufCMessage *unpack_ok(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t n)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, b);
    assert_non_null(m);
    return m;
}

/* Packs m and compares with want byte for byte. */
static void assert_packs_to(const ProtobufCMessage *m, const uint8_t *want, size_t n)
{
    size_t sz = protobuf_c_message_get_packed_size(m);
    uint8_t *out = malloc(sz ? sz : 1);
    assert_int_equal(protobuf_c_message_pack(m, out), sz);
    assert_int_equal(sz, n);
    assert_memory_equal(out, want, n);
    free(out);
}

#define UNPACK(T, d, b) ((T *)unpack_ok(&(d), (b), sizeof(b)))

static void test_user_info_timing_client_info(void **state)
{
    (void)state;
    static const uint8_t ui_bytes[] = {
        0x0a, 0x03, 'u', '-', '1', /* user_id (1) = "u-1" */
        0x12, 0x02, 'l', 'u',      /* log_user_id (2) = "lu" */
        0x18, 0x01,                /* is_internal_user (3) = true */
        0x20, 0x01,                /* ignore_usage (4) = true */
        0x2a, 0x01, 'a',           /* anon_user_id (5) = "a" */
        0x3a, 0x01, 'r',           /* retained_user_id (7) = "r" */
    };
    Common__UserInfo *ui = UNPACK(Common__UserInfo, common__user_info__descriptor, ui_bytes);
    assert_string_equal(ui->user_id, "u-1");
    assert_string_equal(ui->log_user_id, "lu");
    assert_true(ui->has_is_internal_user && ui->is_internal_user);
    assert_true(ui->has_ignore_usage && ui->ignore_usage);
    assert_string_equal(ui->anon_user_id, "a");
    assert_string_equal(ui->retained_user_id, "r");
    assert_packs_to(&ui->base, ui_bytes, sizeof ui_bytes);
    common__user_info__free_unpacked(ui, NULL);

    static const uint8_t t_bytes[] = {
        0x08, 0xd8, 0xa9, 0xc7, 0xb4, 0xce, 0x2e, /* client_log_timestamp (1) = 1601596151000 */
        0x10, 0xc0, 0xb1, 0xc7, 0xb4, 0xce, 0x2e, /* event_api_timestamp (2, private) = ..152000 */
        0x18, 0xa8, 0xb9, 0xc7, 0xb4, 0xce, 0x2e, /* log_timestamp (3, private) = ..153000 */
    };
    Common__Timing *t = UNPACK(Common__Timing, common__timing__descriptor, t_bytes);
    assert_true(t->has_client_log_timestamp);
    assert_int_equal(t->client_log_timestamp, 1601596151000ULL);
    assert_true(t->has_event_api_timestamp);
    assert_int_equal(t->event_api_timestamp, 1601596152000ULL);
    assert_true(t->has_log_timestamp);
    assert_int_equal(t->log_timestamp, 1601596153000ULL);
    assert_int_equal(t->base.n_unknown_fields, 0);
    assert_packs_to(&t->base, t_bytes, sizeof t_bytes);
    common__timing__free_unpacked(t, NULL);

    static const uint8_t ci_bytes[] = {
        0x08, 0x01, /* client_type (1) = PLATFORM_SERVER */
        0x10, 0x0b, /* traffic_type (2) = 11, a number the schema does not name */
    };
    Common__ClientInfo *ci = UNPACK(Common__ClientInfo, common__client_info__descriptor, ci_bytes);
    assert_true(ci->has_client_type);
    assert_int_equal(ci->client_type, COMMON__CLIENT_INFO__CLIENT_TYPE__PLATFORM_SERVER);
    assert_true(ci->has_traffic_type);
    assert_int_equal(ci->traffic_type, 11);
    assert_packs_to(&ci->base, ci_bytes, sizeof ci_bytes);
    common__client_info__free_unpacked(ci, NULL);

    /* the assumed private enum values */
    static const uint8_t ci2_bytes[] = {
        0x10, 0x05, /* traffic_type (2) = LOAD_TEST (5, assumed) */
    };
    ci = UNPACK(Common__ClientInfo, common__client_info__descriptor, ci2_bytes);
    assert_int_equal(ci->traffic_type, COMMON__CLIENT_INFO__TRAFFIC_TYPE__LOAD_TEST);
    assert_false(ci->has_client_type);
    common__client_info__free_unpacked(ci, NULL);
}

static void test_log_request_children(void **state)
{
    (void)state;
    static const uint8_t b[] = {
        0x08, 0x05,                             /* platform_id (1) = 5 */
        0x12, 0x03, 0x12, 0x01, 'x',            /* user_info (2) {log_user_id "x"} */
        0x1a, 0x02, 0x08, 0x07,                 /* timing (3) {client_log_timestamp 7} */
        0x22, 0x02, 0x10, 0x01,                 /* client_info (4) {traffic PRODUCTION} */
        0x3a, 0x02, 0x08, 0x01,                 /* user (7) [{platform_id 1}] */
        0x42, 0x03, 0x32, 0x01, 'm',            /* cohort_membership (8) [{membership_id}] */
        0x5a, 0x03, 0x32, 0x01, 'v',            /* view (11) [{view_id "v"}] */
        0x5a, 0x00,                             /* view (11) [{}] second, empty */
        0x62, 0x03, 0x32, 0x01, 'r',            /* request (12) [{request_id "r"}] */
        0x6a, 0x03, 0x32, 0x01, 'i',            /* insertion (13) [{insertion_id "i"}] */
        0x72, 0x03, 0x32, 0x01, 'p',            /* impression (14) [{impression_id "p"}] */
        0x7a, 0x03, 0x32, 0x01, 'a',            /* action (15) [{action_id "a"}] */
        0x92, 0x01, 0x02, 0x08, 0x02,           /* delivery_log (18) [{platform_id 2}] */
        0xba, 0x01, 0x02, 0x08, 0x03,           /* diagnostics (23) [{platform_id 3}] */
        0xc2, 0x01, 0x03, 0x12, 0x01, 'B',      /* device (24) {brand "B"} */
        0xca, 0x01, 0x04, 0x32, 0x02, 'a', 'v', /* auto_view (25) [{auto_view_id "av"}] */
    };
    Event__LogRequest *lr = UNPACK(Event__LogRequest, event__log_request__descriptor, b);
    assert_true(lr->has_platform_id);
    assert_int_equal(lr->platform_id, 5);
    assert_string_equal(lr->user_info->log_user_id, "x");
    assert_null(lr->user_info->user_id);
    assert_int_equal(lr->timing->client_log_timestamp, 7);
    assert_int_equal(lr->client_info->traffic_type, COMMON__CLIENT_INFO__TRAFFIC_TYPE__PRODUCTION);
    assert_int_equal(lr->n_user, 1);
    assert_int_equal(lr->user[0]->platform_id, 1);
    assert_int_equal(lr->n_cohort_membership, 1);
    assert_string_equal(lr->cohort_membership[0]->membership_id, "m");
    assert_int_equal(lr->n_view, 2);
    assert_string_equal(lr->view[0]->view_id, "v");
    assert_null(lr->view[1]->view_id);
    assert_int_equal(lr->n_request, 1);
    assert_string_equal(lr->request[0]->request_id, "r");
    assert_int_equal(lr->n_insertion, 1);
    assert_string_equal(lr->insertion[0]->insertion_id, "i");
    assert_int_equal(lr->n_impression, 1);
    assert_string_equal(lr->impression[0]->impression_id, "p");
    assert_int_equal(lr->n_action, 1);
    assert_string_equal(lr->action[0]->action_id, "a");
    assert_int_equal(lr->n_delivery_log, 1);
    assert_int_equal(lr->delivery_log[0]->platform_id, 2);
    assert_int_equal(lr->n_diagnostics, 1);
    assert_int_equal(lr->diagnostics[0]->platform_id, 3);
    assert_string_equal(lr->device->brand, "B");
    assert_int_equal(lr->n_auto_view, 1);
    assert_string_equal(lr->auto_view[0]->auto_view_id, "av");
    assert_packs_to(&lr->base, b, sizeof b);
    event__log_request__free_unpacked(lr, NULL);
}

static void test_user_and_cohort_membership(void **state)
{
    (void)state;
    static const uint8_t ub[] = {
        0x08, 0x07,                         /* platform_id (1) = 7 */
        0x12, 0x03, 0x0a, 0x01, 'u',        /* user_info (2) {user_id "u"} */
        0x32, 0x04, 0x0a, 0x02, 0x01, 0x02, /* properties (6) {struct_bytes (1) = 01 02} */
        0x3a, 0x02, 0x08, 0x04, /* id_provenances (7) {user_id_provenance PLATFORM_SPECIFIED} */
    };
    Event__User *u = UNPACK(Event__User, event__user__descriptor, ub);
    assert_int_equal(u->platform_id, 7);
    assert_string_equal(u->user_info->user_id, "u");
    assert_int_equal(u->properties->struct_field_case,
                     COMMON__PROPERTIES__STRUCT_FIELD_STRUCT_BYTES);
    assert_int_equal(u->properties->struct_bytes.len, 2);
    assert_int_equal(u->properties->struct_bytes.data[1], 0x02);
    assert_int_equal(u->id_provenances->user_id_provenance,
                     EVENT__IDENTIFIER_PROVENANCE__PLATFORM_SPECIFIED);
    assert_packs_to(&u->base, ub, sizeof ub);
    event__user__free_unpacked(u, NULL);

    static const uint8_t cb[] = {
        0x32, 0x02, 'm', '1', /* membership_id (6) = "m1" */
        0x42, 0x01, 'c',      /* cohort_id (8) = "c" */
        0x48, 0x02,           /* arm (9) = TREATMENT */
        0x52, 0x00,           /* properties (10) = {} (present, empty) */
    };
    Event__CohortMembership *c =
        UNPACK(Event__CohortMembership, event__cohort_membership__descriptor, cb);
    assert_string_equal(c->membership_id, "m1");
    assert_string_equal(c->cohort_id, "c");
    assert_int_equal(c->arm, EVENT__COHORT_ARM__TREATMENT);
    assert_non_null(c->properties);
    assert_int_equal(c->properties->struct_field_case, COMMON__PROPERTIES__STRUCT_FIELD__NOT_SET);
    assert_false(c->has_platform_id);
    assert_packs_to(&c->base, cb, sizeof cb);
    event__cohort_membership__free_unpacked(c, NULL);
}

static void test_view_and_auto_view(void **state)
{
    (void)state;
    static const uint8_t vb[] = {
        0x32, 0x02, 'v',  '1',                         /* view_id (6) = "v1" */
        0x3a, 0x01, 's',                               /* session_id (7) = "s" */
        0x42, 0x01, 'n',                               /* name (8) = "n" */
        0x48, 0x02,                                    /* use_case (9) = SEARCH */
        0x62, 0x06, 0x52, 0x04, 0x0a, 0x02, 'U',  'A', /* device (12, private) {browser (10)
                                                          {user_agent "UA"}} */
        0x68, 0x01,                                    /* view_type (13) = WEB_PAGE */
        0x72, 0x08, 0x0a, 0x01, 'u',  0x12, 0x03, 0x0a, 0x01,
        'b', /* web_page_view (14) {url "u", browser (2, private) {user_agent "b"}} */
        0x9a, 0x01, 0x01, 'c', /* content_id (19) = "c" */
    };
    Event__View *v = UNPACK(Event__View, event__view__descriptor, vb);
    assert_string_equal(v->view_id, "v1");
    assert_string_equal(v->session_id, "s");
    assert_string_equal(v->name, "n");
    assert_int_equal(v->use_case, DELIVERY__USE_CASE__SEARCH);
    assert_string_equal(v->device->browser->user_agent, "UA");
    assert_int_equal(v->view_type, EVENT__VIEW__VIEW_TYPE__WEB_PAGE);
    assert_int_equal(v->ui_type_case, EVENT__VIEW__UI_TYPE_WEB_PAGE_VIEW);
    assert_string_equal(v->web_page_view->url, "u");
    assert_string_equal(v->web_page_view->browser->user_agent, "b");
    assert_null(v->web_page_view->referrer);
    assert_string_equal(v->content_id, "c");
    assert_int_equal(v->base.n_unknown_fields, 0);
    assert_packs_to(&v->base, vb, sizeof vb);
    event__view__free_unpacked(v, NULL);

    static const uint8_t ab[] = {
        0x32, 0x02, 'a', 'v', /* auto_view_id (6) = "av" */
        0x6a, 0x00,           /* app_screen_view (13) = {} (oneof member, empty) */
        0x72, 0x01, 'v',      /* view_id (14) = "v" */
    };
    Event__AutoView *a = UNPACK(Event__AutoView, event__auto_view__descriptor, ab);
    assert_string_equal(a->auto_view_id, "av");
    assert_int_equal(a->ui_type_case, EVENT__AUTO_VIEW__UI_TYPE_APP_SCREEN_VIEW);
    assert_non_null(a->app_screen_view);
    assert_string_equal(a->view_id, "v");
    assert_packs_to(&a->base, ab, sizeof ab);
    event__auto_view__free_unpacked(a, NULL);
}

static void test_delivery_log_request_response(void **state)
{
    (void)state;
    static const uint8_t db[] = {
        0x08, 0x02,                  /* platform_id (1) = 2 */
        0x12, 0x03, 0x32, 0x01, 'r', /* request (2) {request_id "r"} */
        0x1a, 0x07, 0x12, 0x05, 0x32,
        0x01, 'i',  0x60, 0x00, /* response (3) {insertion (2) [{insertion_id "i", position 0}]} */
        0x22, 0x02, 0x10, 0x02, /* execution (4) {execution_server SDK} */
    };
    Delivery__DeliveryLog *d =
        UNPACK(Delivery__DeliveryLog, delivery__delivery_log__descriptor, db);
    assert_int_equal(d->platform_id, 2);
    assert_string_equal(d->request->request_id, "r");
    assert_int_equal(d->response->n_insertion, 1);
    assert_true(d->response->insertion[0]->has_position);
    assert_int_equal(d->response->insertion[0]->position, 0);
    assert_int_equal(d->execution->execution_server, DELIVERY__EXECUTION_SERVER__SDK);
    assert_packs_to(&d->base, db, sizeof db);
    delivery__delivery_log__free_unpacked(d, NULL);

    static const uint8_t rb[] = {
        0x08, 0x01,                  /* platform_id (1) = 1 */
        0x32, 0x02, 'r',  '1',       /* request_id (6) = "r1" */
        0x3a, 0x01, 'v',             /* view_id (7) = "v" */
        0x42, 0x01, 's',             /* session_id (8) = "s" */
        0x48, 0x04,                  /* use_case (9) = FEED */
        0x52, 0x01, 'q',             /* search_query (10) = "q" */
        0x5a, 0x03, 0x52, 0x01, 'c', /* insertion (11) [{content_id "c"}] */
        0x6a, 0x00,                  /* properties (13) = {} */
        0x72, 0x02, 'c',  'r',       /* client_request_id (14) = "cr" */
        0x8a, 0x01, 0x07, 0x0a, 0x01, 'p',  0x10,
        0x0a, 0x20, 0x00, /* paging (17) {paging_id "p", size 10, offset (oneof) 0} */
        0x92, 0x01, 0x04, 0x52, 0x02, 0x0a, 0x00, /* device (18) {browser {user_agent ""}} */
        0x9a, 0x01, 0x01, 'a',                    /* auto_view_id (19) = "a" */
        0xa2, 0x01, 0x01, 'h',                    /* insertion_matrix_headers (20) [0] = "h" */
        0xa2, 0x01, 0x00,                         /* insertion_matrix_headers (20) [1] = "" */
        0xaa, 0x01, 0x15,                         /* insertion_matrix (21) ListValue, 21 bytes: */
        0x0a, 0x13,                               /*   values (1) [0] Value, 19 bytes: */
        0x32, 0x11,                               /*     list_value (6) ListValue, 17 bytes: */
        0x0a, 0x04, 0x1a, 0x02, 'c',  '1',        /*       values [0] {string_value (3) "c1"} */
        0x0a, 0x09, 0x11, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0xf8, 0x3f, /* values [1] {number_value (2) 1.5} */
        0xb0, 0x01, 0x01,       /* disable_personalization (22) = true */
    };
    Delivery__Request *r = UNPACK(Delivery__Request, delivery__request__descriptor, rb);
    assert_int_equal(r->platform_id, 1);
    assert_string_equal(r->request_id, "r1");
    assert_string_equal(r->view_id, "v");
    assert_string_equal(r->session_id, "s");
    assert_int_equal(r->use_case, DELIVERY__USE_CASE__FEED);
    assert_string_equal(r->search_query, "q");
    assert_int_equal(r->n_insertion, 1);
    assert_string_equal(r->insertion[0]->content_id, "c");
    assert_non_null(r->properties);
    assert_string_equal(r->client_request_id, "cr");
    assert_string_equal(r->paging->paging_id, "p");
    assert_int_equal(r->paging->size, 10);
    assert_int_equal(r->paging->starting_case, DELIVERY__PAGING__STARTING_OFFSET);
    assert_int_equal(r->paging->offset, 0);
    assert_string_equal(r->device->browser->user_agent, "");
    assert_string_equal(r->auto_view_id, "a");
    assert_int_equal(r->n_insertion_matrix_headers, 2);
    assert_string_equal(r->insertion_matrix_headers[0], "h");
    assert_string_equal(r->insertion_matrix_headers[1], "");
    assert_int_equal(r->insertion_matrix->n_values, 1);
    Google__Protobuf__Value *row = r->insertion_matrix->values[0];
    assert_int_equal(row->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
    assert_int_equal(row->list_value->n_values, 2);
    assert_string_equal(row->list_value->values[0]->string_value, "c1");
    assert_int_equal(row->list_value->values[1]->kind_case,
                     GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
    assert_true(row->list_value->values[1]->number_value == 1.5);
    assert_true(r->has_disable_personalization && r->disable_personalization);
    assert_packs_to(&r->base, rb, sizeof rb);
    delivery__request__free_unpacked(r, NULL);

    static const uint8_t sb[] = {
        0x12, 0x03, 0x32, 0x01, 'i', /* insertion (2) [0] {insertion_id "i"} */
        0x12, 0x02, 0x60, 0x01,      /* insertion (2) [1] {position 1} */
        0x1a, 0x06, 0x0a, 0x01, 'p',
        0x12, 0x01, 'c', /* paging_info (3) {paging_id "p", cursor "c"} */
        0x22, 0x00,      /* introspection_data (4) = "" (explicit presence) */
        0x2a, 0x01, 'r', /* request_id (5) = "r" */
    };
    Delivery__Response *s = UNPACK(Delivery__Response, delivery__response__descriptor, sb);
    assert_int_equal(s->n_insertion, 2);
    assert_string_equal(s->insertion[0]->insertion_id, "i");
    assert_false(s->insertion[0]->has_position);
    assert_true(s->insertion[1]->has_position);
    assert_int_equal(s->insertion[1]->position, 1);
    assert_null(s->insertion[1]->insertion_id);
    assert_string_equal(s->paging_info->paging_id, "p");
    assert_string_equal(s->paging_info->cursor, "c");
    assert_non_null(s->introspection_data);
    assert_string_equal(s->introspection_data, "");
    assert_string_equal(s->request_id, "r");
    assert_packs_to(&s->base, sb, sizeof sb);
    delivery__response__free_unpacked(s, NULL);
}

static void test_insertion(void **state)
{
    (void)state;
    static const uint8_t b[] = {
        0x08, 0x03,                         /* platform_id (1) = 3 */
        0x32, 0x01, 'i',                    /* insertion_id (6) = "i" */
        0x3a, 0x01, 'r',                    /* request_id (7) = "r" */
        0x42, 0x01, 's',                    /* session_id (8) = "s" */
        0x4a, 0x01, 'v',                    /* view_id (9) = "v" */
        0x52, 0x01, 'c',                    /* content_id (10) = "c" */
        0x60, 0x00,                         /* position (12) = 0, explicit presence */
        0x6a, 0x00,                         /* properties (13) = {} */
        0x98, 0x01, 0x00,                   /* retrieval_rank (19) = 0, explicit presence */
        0xa5, 0x01, 0x00, 0x00, 0x00, 0x3f, /* retrieval_score (20) = 0.5f (fixed32) */
        0xaa, 0x01, 0x01, 'a',              /* auto_view_id (21) = "a" */
    };
    Delivery__Insertion *ins = UNPACK(Delivery__Insertion, delivery__insertion__descriptor, b);
    assert_int_equal(ins->platform_id, 3);
    assert_string_equal(ins->insertion_id, "i");
    assert_string_equal(ins->request_id, "r");
    assert_string_equal(ins->session_id, "s");
    assert_string_equal(ins->view_id, "v");
    assert_string_equal(ins->content_id, "c");
    assert_true(ins->has_position);
    assert_int_equal(ins->position, 0);
    assert_non_null(ins->properties);
    assert_true(ins->has_retrieval_rank);
    assert_int_equal(ins->retrieval_rank, 0);
    assert_true(ins->has_retrieval_score);
    assert_true(ins->retrieval_score == 0.5f);
    assert_string_equal(ins->auto_view_id, "a");
    assert_null(ins->user_info);
    assert_packs_to(&ins->base, b, sizeof b);
    delivery__insertion__free_unpacked(ins, NULL);

    /* encoding from a struct: an unset field emits nothing, a set zero emits `60 00` */
    Delivery__Insertion e = DELIVERY__INSERTION__INIT;
    static const uint8_t only_pos0[] = {0x60, 0x00}; /* position (12) = 0 */
    e.has_position = 1;
    e.position = 0;
    assert_packs_to(&e.base, only_pos0, sizeof only_pos0);
    e.has_position = 0;
    assert_int_equal(protobuf_c_message_get_packed_size(&e.base), 0);
}

static void test_impression_and_index_path(void **state)
{
    (void)state;
    static const uint8_t b[] = {
        0x32, 0x01, 'p', /* impression_id (6) = "p" */
        0x3a, 0x01, 'i', /* insertion_id (7) = "i" */
        0x42, 0x01, 'r', /* request_id (8) = "r" */
        0x4a, 0x01, 's', /* session_id (9) = "s" */
        0x52, 0x01, 'v', /* view_id (10) = "v" */
        0x5a, 0x00,      /* properties (11) = {} */
        0x62, 0x01, 'c', /* content_id (12) = "c" */
        0x68, 0x01,      /* source_type (13) = DELIVERY */
        0x70, 0x01,      /* has_superimposed_views (14) = true */
        0x7a, 0x01, 'a', /* auto_view_id (15) = "a" */
        0x82, 0x01, 0x05, 0x0a, 0x03, 0x01,
        0x02, 0x03,                   /* client_position (16) {index packed [1,2,3]} */
        0x8a, 0x01, 0x02, 0x30, 0x03, /* id_provenances (17) {content_id_provenance (6)
                                         AUTOGENERATED} */
    };
    Event__Impression *im = UNPACK(Event__Impression, event__impression__descriptor, b);
    assert_string_equal(im->impression_id, "p");
    assert_string_equal(im->insertion_id, "i");
    assert_string_equal(im->request_id, "r");
    assert_string_equal(im->session_id, "s");
    assert_string_equal(im->view_id, "v");
    assert_string_equal(im->content_id, "c");
    assert_int_equal(im->source_type, EVENT__IMPRESSION_SOURCE_TYPE__DELIVERY);
    assert_true(im->has_superimposed_views);
    assert_string_equal(im->auto_view_id, "a");
    assert_int_equal(im->client_position->n_index, 3);
    assert_int_equal(im->client_position->index[2], 3);
    assert_int_equal(im->id_provenances->content_id_provenance,
                     EVENT__IDENTIFIER_PROVENANCE__AUTOGENERATED);
    assert_packs_to(&im->base, b, sizeof b);
    event__impression__free_unpacked(im, NULL);

    /* unpacked form decodes to the same list and re-encodes packed */
    static const uint8_t unpacked[] = {
        0x08, 0x01, /* index (1) varint 1 */
        0x08, 0x02, /* index (1) varint 2 */
        0x08, 0x03, /* index (1) varint 3 */
    };
    static const uint8_t packed[] = {0x0a, 0x03, 0x01, 0x02, 0x03}; /* index (1) packed [1,2,3] */
    Event__IndexPath *ip = UNPACK(Event__IndexPath, event__index_path__descriptor, unpacked);
    assert_int_equal(ip->n_index, 3);
    assert_int_equal(ip->index[0], 1);
    assert_int_equal(ip->index[1], 2);
    assert_int_equal(ip->index[2], 3);
    assert_packs_to(&ip->base, packed, sizeof packed);
    event__index_path__free_unpacked(ip, NULL);

    /* negative int32: sign-extended 10-byte varint, packed */
    static const uint8_t neg[] = {
        0x0a, 0x0b,                                                 /* index (1) packed, 11 bytes */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* -1 */
        0x00,                                                       /* 0 */
    };
    ip = UNPACK(Event__IndexPath, event__index_path__descriptor, neg);
    assert_int_equal(ip->n_index, 2);
    assert_int_equal(ip->index[0], -1);
    assert_int_equal(ip->index[1], 0);
    assert_packs_to(&ip->base, neg, sizeof neg);
    event__index_path__free_unpacked(ip, NULL);
}

static void test_action_cart_money(void **state)
{
    (void)state;
    static const uint8_t b[] = {
        0x32, 0x01, 'a',                   /* action_id (6) = "a" */
        0x3a, 0x01, 'p',                   /* impression_id (7) = "p" */
        0x42, 0x01, 'i',                   /* insertion_id (8) = "i" */
        0x4a, 0x01, 'r',                   /* request_id (9) = "r" */
        0x52, 0x01, 's',                   /* session_id (10) = "s" */
        0x5a, 0x01, 'v',                   /* view_id (11) = "v" */
        0x62, 0x01, 'n',                   /* name (12) = "n" */
        0x70, 0x03,                        /* action_type (14) = PURCHASE */
        0x7a, 0x01, 'x',                   /* custom_action_type (15) = "x" */
        0x8a, 0x01, 0x01, 'e',             /* element_id (17) = "e" */
        0x92, 0x01, 0x03, 0x0a, 0x01, 'u', /* navigate_action (18, oneof) {target_url "u"} */
        0xa2, 0x01, 0x00,                  /* properties (20) = {} */
        0xaa, 0x01, 0x01, 'c',             /* content_id (21) = "c" */
        0xb0, 0x01, 0x01,                  /* has_superimposed_views (22) = true */
        0xba, 0x01, 0x01, 'a',             /* auto_view_id (23) = "a" */
        0xc2, 0x01, 0x00,                  /* client_position (24) = {} */
        0xca, 0x01, 0x00,                  /* id_provenances (25) = {} */
        0xd2, 0x01, 0x00,                  /* device (26) = {} */
        0xe2, 0x01, 0x0f,                  /* cart (28) Cart, 15 bytes: */
        0x0a, 0x0d,                        /*   contents (1) [0] CartContent, 13 bytes: */
        0x0a, 0x01, 'c',                   /*     content_id (1) = "c" */
        0x10, 0x02,                        /*     quantity (2) = 2 */
        0x1a, 0x06,                        /*     price_per_unit (3) Money, 6 bytes: */
        0x08, 0x01,                        /*       currency_code (1) = USD */
        0x10, 0xe0, 0xc6, 0x5b,            /*       amount_micros (2) = 1500000 */
    };
    Event__Action *a = UNPACK(Event__Action, event__action__descriptor, b);
    assert_string_equal(a->action_id, "a");
    assert_string_equal(a->impression_id, "p");
    assert_string_equal(a->insertion_id, "i");
    assert_string_equal(a->request_id, "r");
    assert_string_equal(a->session_id, "s");
    assert_string_equal(a->view_id, "v");
    assert_string_equal(a->name, "n");
    assert_int_equal(a->action_type, EVENT__ACTION_TYPE__PURCHASE);
    assert_string_equal(a->custom_action_type, "x");
    assert_string_equal(a->element_id, "e");
    assert_int_equal(a->action_case, EVENT__ACTION__ACTION_NAVIGATE_ACTION);
    assert_string_equal(a->navigate_action->target_url, "u");
    assert_string_equal(a->content_id, "c");
    assert_true(a->has_superimposed_views);
    assert_string_equal(a->auto_view_id, "a");
    assert_non_null(a->client_position);
    assert_int_equal(a->client_position->n_index, 0);
    assert_non_null(a->device);
    assert_int_equal(a->cart->n_contents, 1);
    Event__CartContent *cc = a->cart->contents[0];
    assert_string_equal(cc->content_id, "c");
    assert_int_equal(cc->quantity, 2);
    assert_int_equal(cc->price_per_unit->currency_code, COMMON__CURRENCY_CODE__USD);
    assert_int_equal(cc->price_per_unit->amount_micros, 1500000);
    assert_packs_to(&a->base, b, sizeof b);
    event__action__free_unpacked(a, NULL);

    /* an empty cart is present (explicit presence); negative quantity is a 10-byte varint */
    static const uint8_t c2[] = {
        0xe2, 0x01, 0x00, /* cart (28) = {} */
    };
    a = UNPACK(Event__Action, event__action__descriptor, c2);
    assert_non_null(a->cart);
    assert_int_equal(a->cart->n_contents, 0);
    assert_null(a->action_id);
    assert_packs_to(&a->base, c2, sizeof c2);
    event__action__free_unpacked(a, NULL);

    static const uint8_t cc2[] = {
        0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* quantity (2) = -1 */
    };
    cc = UNPACK(Event__CartContent, event__cart_content__descriptor, cc2);
    assert_int_equal(cc->quantity, -1);
    assert_null(cc->content_id);
    assert_null(cc->price_per_unit);
    assert_packs_to(&cc->base, cc2, sizeof cc2);
    event__cart_content__free_unpacked(cc, NULL);
}

static void test_diagnostics(void **state)
{
    (void)state;
    static const uint8_t b[] = {
        0x08, 0x01,      /* platform_id (1) = 1 */
        0x2a, 0x22,      /* mobile_diagnostics (5, oneof), 34 bytes: */
        0x0a, 0x01, 'd', /*   device_identifier (1) = "d" */
        0x20, 0xfb, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0x01, /* batches_attempted (4) = -5 */
        0x3a, 0x12,                   /*   error_history (7), 18 bytes: */
        0x0a, 0x0e,                   /*     ios_errors (1) [0], 14 bytes: */
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0x01, /* code (1) = -1 */
        0x12, 0x01, 'x',              /*       domain (2) = "x" */
        0x10, 0x01,                   /*     total_errors (2) = 1 */
    };
    Event__Diagnostics *d = UNPACK(Event__Diagnostics, event__diagnostics__descriptor, b);
    assert_int_equal(d->platform_id, 1);
    assert_int_equal(d->diagnostics_message_case,
                     EVENT__DIAGNOSTICS__DIAGNOSTICS_MESSAGE_MOBILE_DIAGNOSTICS);
    Event__MobileDiagnostics *md = d->mobile_diagnostics;
    assert_string_equal(md->device_identifier, "d");
    assert_int_equal(md->batches_attempted, -5);
    assert_int_equal(md->error_history->n_ios_errors, 1);
    assert_int_equal(md->error_history->ios_errors[0]->code, -1);
    assert_string_equal(md->error_history->ios_errors[0]->domain, "x");
    assert_null(md->error_history->ios_errors[0]->description);
    assert_int_equal(md->error_history->total_errors, 1);
    assert_packs_to(&d->base, b, sizeof b);
    event__diagnostics__free_unpacked(d, NULL);
}

static void test_struct_value_list_value(void **state)
{
    (void)state;
    static const uint8_t b[] = {
        0x0a, 0x07,             /* fields (1) entry, 7 bytes: */
        0x0a, 0x01, 'a',        /*   key (1) = "a" */
        0x12, 0x02, 0x08, 0x00, /*   value (2) {null_value (1) = NULL_VALUE} */
        0x0a, 0x07,             /* fields (1) entry, 7 bytes: */
        0x0a, 0x01, 'b',        /*   key = "b" */
        0x12, 0x02, 0x20, 0x01, /*   value {bool_value (4) = true} */
        0x0a, 0x10,             /* fields (1) entry, 16 bytes: */
        0x0a, 0x01, 'c',        /*   key = "c" */
        0x12, 0x0b,             /*   value, 11 bytes: */
        0x2a, 0x09,             /*     struct_value (5), 9 bytes: */
        0x0a, 0x07,             /*       fields entry, 7 bytes: */
        0x0a, 0x01, 'd',        /*         key = "d" */
        0x12, 0x02, 0x1a, 0x00, /*         value {string_value (3) = ""} */
        0x0a, 0x1d,             /* fields (1) entry, 29 bytes: */
        0x0a, 0x01, 'e',        /*   key = "e" */
        0x12, 0x18,             /*   value, 24 bytes: */
        0x32, 0x16,             /*     list_value (6), 22 bytes: */
        0x0a, 0x09, 0x11, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x02, 0xc0, /* values [0] {number_value -2.25} */
        0x0a, 0x09, 0x11, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, /* values [1] {number_value 0} */
    };
    Google__Protobuf__Struct *s =
        UNPACK(Google__Protobuf__Struct, google__protobuf__struct__descriptor, b);
    assert_int_equal(s->n_fields, 4);
    assert_string_equal(s->fields[0]->key, "a");
    assert_int_equal(s->fields[0]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
    assert_string_equal(s->fields[1]->key, "b");
    assert_int_equal(s->fields[1]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
    assert_true(s->fields[1]->value->bool_value);
    Google__Protobuf__Struct *inner = s->fields[2]->value->struct_value;
    assert_int_equal(s->fields[2]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
    assert_int_equal(inner->n_fields, 1);
    assert_string_equal(inner->fields[0]->key, "d");
    assert_int_equal(inner->fields[0]->value->kind_case,
                     GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
    assert_string_equal(inner->fields[0]->value->string_value, "");
    Google__Protobuf__ListValue *l = s->fields[3]->value->list_value;
    assert_int_equal(l->n_values, 2);
    assert_true(l->values[0]->number_value == -2.25);
    assert_int_equal(l->values[1]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
    assert_true(l->values[1]->number_value == 0.0);
    assert_packs_to(&s->base, b, sizeof b);
    google__protobuf__struct__free_unpacked(s, NULL);
}

static void test_unknown_fields_kept(void **state)
{
    (void)state;
    static const uint8_t b[] = {
        0x08, 0x01,                                   /* client_log_timestamp (1) = 1 */
        0xa0, 0x01, 0x96, 0x01,                       /* unknown field 20, varint 150 */
        0xa9, 0x01, 1,    2,    3,   4,   5, 6, 7, 8, /* unknown field 21, fixed64 */
        0xb2, 0x01, 0x03, 'a',  'b', 'c',             /* unknown field 22, length-delimited "abc" */
        0xbd, 0x01, 9,    8,    7,   6,               /* unknown field 23, fixed32 */
    };
    Common__Timing *t = UNPACK(Common__Timing, common__timing__descriptor, b);
    assert_int_equal(t->client_log_timestamp, 1);
    assert_int_equal(t->base.n_unknown_fields, 4);
    assert_int_equal(t->base.unknown_fields[0].tag, 20);
    assert_int_equal(t->base.unknown_fields[0].wire_type, PROTOBUF_C_WIRE_TYPE_VARINT);
    assert_int_equal(t->base.unknown_fields[1].tag, 21);
    assert_int_equal(t->base.unknown_fields[1].wire_type, PROTOBUF_C_WIRE_TYPE_64BIT);
    assert_int_equal(t->base.unknown_fields[2].tag, 22);
    assert_int_equal(t->base.unknown_fields[2].wire_type, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED);
    assert_int_equal(t->base.unknown_fields[3].tag, 23);
    assert_int_equal(t->base.unknown_fields[3].wire_type, PROTOBUF_C_WIRE_TYPE_32BIT);
    assert_packs_to(&t->base, b, sizeof b);
    common__timing__free_unpacked(t, NULL);

    /* interleaved with known fields: known ones are re-emitted first, unknown ones after them */
    static const uint8_t mixed[] = {
        0x4a, 0x01, 'z', /* unknown field 9, "z" */
        0x12, 0x01, 'l', /* log_user_id (2) = "l" */
        0x30, 0x2a,      /* unknown field 6, varint 42 */
        0x0a, 0x01, 'u', /* user_id (1) = "u" */
    };
    static const uint8_t mixed_out[] = {
        0x0a, 0x01, 'u', /* user_id (1) */
        0x12, 0x01, 'l', /* log_user_id (2) */
        0x4a, 0x01, 'z', /* unknown 9, in the order read */
        0x30, 0x2a,      /* unknown 6 */
    };
    Common__UserInfo *ui = UNPACK(Common__UserInfo, common__user_info__descriptor, mixed);
    assert_string_equal(ui->user_id, "u");
    assert_string_equal(ui->log_user_id, "l");
    assert_int_equal(ui->base.n_unknown_fields, 2);
    assert_packs_to(&ui->base, mixed_out, sizeof mixed_out);
    common__user_info__free_unpacked(ui, NULL);

    /* unknown fields deep inside a LogRequest survive a round trip */
    static const uint8_t nested[] = {
        0x92, 0x01, 0x0b,      /* delivery_log (18) [0], 11 bytes: */
        0x1a, 0x09,            /*   response (3), 9 bytes: */
        0x12, 0x07,            /*     insertion (2) [0], 7 bytes: */
        0x32, 0x01, 'i',       /*       insertion_id (6) = "i" */
        0x8a, 0x01, 0x01, 'f', /*       unknown field 17 (assumed feature_stage) */
    };
    Event__LogRequest *lr = UNPACK(Event__LogRequest, event__log_request__descriptor, nested);
    Delivery__Insertion *ins = lr->delivery_log[0]->response->insertion[0];
    assert_string_equal(ins->insertion_id, "i");
    assert_int_equal(ins->base.n_unknown_fields, 1);
    assert_int_equal(ins->base.unknown_fields[0].tag, 17);
    assert_packs_to(&lr->base, nested, sizeof nested);
    event__log_request__free_unpacked(lr, NULL);
}

static void test_malformed_rejected(void **state)
{
    (void)state;
    static const uint8_t trunc_len[] = {0x0a, 0x05, 'a'};   /* user_id (1) claims 5 bytes, has 1 */
    static const uint8_t trunc_varint[] = {0x08, 0xff};     /* platform_id (1) varint cut off */
    static const uint8_t wrong_type[] = {0x0d, 1, 2, 3, 4}; /* platform_id (1) as fixed32 */
    assert_null(common__user_info__unpack(NULL, sizeof trunc_len, trunc_len));
    assert_null(event__log_request__unpack(NULL, sizeof trunc_varint, trunc_varint));
    assert_null(event__log_request__unpack(NULL, sizeof wrong_type, wrong_type));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_info_timing_client_info),
        cmocka_unit_test(test_log_request_children),
        cmocka_unit_test(test_user_and_cohort_membership),
        cmocka_unit_test(test_view_and_auto_view),
        cmocka_unit_test(test_delivery_log_request_response),
        cmocka_unit_test(test_insertion),
        cmocka_unit_test(test_impression_and_index_path),
        cmocka_unit_test(test_action_cart_money),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_struct_value_list_value),
        cmocka_unit_test(test_unknown_fields_kept),
        cmocka_unit_test(test_malformed_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
