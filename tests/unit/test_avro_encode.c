/* The Avro datum encoder (src/formats/avro_encode.h): bytes are decoded back with avro-c against
 * the derived schema and compared field by field, and re-encoded by avro-c to check they are the
 * canonical bytes. Covers scalars at their limits, absent vs present messages, explicit
 * presence, oneofs, unknown enum numbers, the Struct/ListValue depth cut, the buffer limit and
 * the derived records of schemas/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delivery/delivery.pb-c.h"
#include "event/event.pb-c.h"
#include "formats/avro_encode.h"
#include "formats/avro_schema.h"
#include "google/protobuf/struct.pb-c.h"
#include "schemas_embedded.h"

/* ---- decoding with avro-c -------------------------------------------------------------------- */

typedef struct decoded {
    avro_value_iface_t *iface;
    avro_value_t v;
} decoded;

/* Decodes the buffer as one datum of `schema`, checks avro-c's own encoding of the result is
 * byte for byte the buffer (so nothing was left over and every varint is canonical). */
static void decode(avro_schema_t schema, const uint8_t *data, size_t len, decoded *d)
{
    d->iface = avro_generic_class_from_schema(schema);
    assert_non_null(d->iface);
    assert_int_equal(avro_generic_value_new(d->iface, &d->v), 0);
    avro_reader_t r = avro_reader_memory((const char *)data, (int64_t)len);
    if (avro_value_read(r, &d->v)) fail_msg("avro-c cannot decode the datum: %s", avro_strerror());
    avro_reader_free(r);

    size_t size;
    assert_int_equal(avro_value_sizeof(&d->v, &size), 0);
    assert_int_equal(size, len);
    char *again = malloc(size + 1);
    avro_writer_t w = avro_writer_memory(again, (int64_t)size);
    assert_int_equal(avro_value_write(w, &d->v), 0);
    assert_memory_equal(again, data, len);
    avro_writer_free(w);
    free(again);
}

static void undecode(decoded *d)
{
    avro_value_decref(&d->v);
    avro_value_iface_decref(d->iface);
}

static avro_value_t get(avro_value_t *rec, const char *name)
{
    avro_value_t c;
    if (avro_value_get_by_name(rec, name, &c, NULL)) fail_msg("no field %s", name);
    return c;
}

static int has(avro_value_t *rec, const char *name)
{
    avro_value_t c;
    return avro_value_get_by_name(rec, name, &c, NULL) == 0;
}

/* The branch of a ["null", X] field: NULL-typed value check or the record. */
static int is_null(avro_value_t *rec, const char *name)
{
    avro_value_t u = get(rec, name);
    int disc;
    assert_int_equal(avro_value_get_discriminant(&u, &disc), 0);
    return disc == 0;
}

static avro_value_t sub(avro_value_t *rec, const char *name)
{
    avro_value_t u = get(rec, name), b;
    int disc;
    assert_int_equal(avro_value_get_discriminant(&u, &disc), 0);
    if (disc != 1) fail_msg("field %s is null", name);
    assert_int_equal(avro_value_get_current_branch(&u, &b), 0);
    return b;
}

static int64_t get_long(avro_value_t *rec, const char *name)
{
    avro_value_t c = get(rec, name);
    int64_t v;
    assert_int_equal(avro_value_get_long(&c, &v), 0);
    return v;
}

static int32_t get_int(avro_value_t *rec, const char *name)
{
    avro_value_t c = get(rec, name);
    int32_t v;
    assert_int_equal(avro_value_get_int(&c, &v), 0);
    return v;
}

static double get_double(avro_value_t *rec, const char *name)
{
    avro_value_t c = get(rec, name);
    double v;
    assert_int_equal(avro_value_get_double(&c, &v), 0);
    return v;
}

static float get_float(avro_value_t *rec, const char *name)
{
    avro_value_t c = get(rec, name);
    float v;
    assert_int_equal(avro_value_get_float(&c, &v), 0);
    return v;
}

static int get_bool(avro_value_t *rec, const char *name)
{
    avro_value_t c = get(rec, name);
    int v;
    assert_int_equal(avro_value_get_boolean(&c, &v), 0);
    return v;
}

static const char *get_str(avro_value_t *rec, const char *name)
{
    avro_value_t c = get(rec, name);
    const char *s;
    size_t n;
    assert_int_equal(avro_value_get_string(&c, &s, &n), 0);
    return s;
}

static const char *get_enum(avro_value_t *rec, const char *name)
{
    avro_value_t c = get(rec, name);
    int i;
    assert_int_equal(avro_value_get_enum(&c, &i), 0);
    return avro_schema_enum_get(avro_value_get_schema(&c), i);
}

static size_t get_size(avro_value_t *rec, const char *name)
{
    avro_value_t c = get(rec, name);
    size_t n;
    assert_int_equal(avro_value_get_size(&c, &n), 0);
    return n;
}

static avro_value_t item(avro_value_t *rec, const char *name, size_t i)
{
    avro_value_t c = get(rec, name), e;
    assert_int_equal(avro_value_get_by_index(&c, i, &e, NULL), 0);
    return e;
}

static avsc_schema *schema_of(const ProtobufCMessageDescriptor *d)
{
    avsc_schema *s;
    char err[512];
    if (avsc_schema_new(d, &s, err, sizeof err)) fail_msg("%s", err);
    return s;
}

static void encode(const avsc_schema *s, const ProtobufCMessage *m, avenc_buf *b, avenc_stats *st)
{
    char err[512];
    if (avenc_message(s, m, b, st, err, sizeof err)) fail_msg("%s", err);
}

/* ---- protobuf messages ----------------------------------------------------------------------- */

static void test_impression_values(void **state)
{
    (void)state;
    avsc_schema *s = schema_of(&event__impression__descriptor);
    Event__Impression imp = EVENT__IMPRESSION__INIT;
    Common__Timing timing = COMMON__TIMING__INIT; /* present but empty */
    Common__ClientInfo ci = COMMON__CLIENT_INFO__INIT;
    Event__IndexPath pos = EVENT__INDEX_PATH__INIT;
    Common__Properties props = COMMON__PROPERTIES__INIT;
    int32_t idx[] = {-5, INT32_MAX, 0};
    uint8_t raw[] = {0x00, 0x01, 0xff};

    imp.has_platform_id = 1;
    imp.platform_id = UINT64_MAX; /* uint64 -> long keeps the bits: -1 */
    imp.timing = &timing;
    ci.has_client_type = 1;
    ci.client_type = 99; /* a number the enum does not name */
    imp.client_info = &ci;
    imp.impression_id = "imp-\xc3\xbc";
    imp.has_source_type = 0;
    imp.source_type = EVENT__IMPRESSION_SOURCE_TYPE__CLIENT_BACKEND; /* no has_: absent */
    imp.has_has_superimposed_views = 1;
    imp.has_superimposed_views = 1;
    pos.n_index = 3;
    pos.index = idx;
    imp.client_position = &pos;
    props.struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT_BYTES;
    props.struct_bytes.len = sizeof raw;
    props.struct_bytes.data = raw;
    imp.properties = &props;

    avenc_buf b;
    avenc_buf_init(&b, 1 << 20);
    avenc_stats st = {0};
    encode(s, &imp.base, &b, &st);
    assert_int_equal(st.enum_unrecognized, 1);
    assert_int_equal(st.depth_cut, 0);

    decoded d;
    decode(avsc_schema_avro(s), b.data, b.len, &d);
    assert_int_equal(get_long(&d.v, "platform_id"), -1);
    assert_true(is_null(&d.v, "user_info"));
    avro_value_t t = sub(&d.v, "timing");
    assert_int_equal(get_long(&t, "client_log_timestamp"), 0);
    assert_int_equal(get_long(&t, "event_api_timestamp"), 0);
    avro_value_t c = sub(&d.v, "client_info");
    assert_string_equal(get_enum(&c, "client_type"), "UNRECOGNIZED");
    assert_string_equal(get_enum(&c, "traffic_type"), "UNKNOWN_TRAFFIC_TYPE");
    assert_string_equal(get_str(&d.v, "impression_id"), "imp-\xc3\xbc");
    assert_string_equal(get_str(&d.v, "insertion_id"), ""); /* NULL string */
    assert_string_equal(get_enum(&d.v, "source_type"), "UNKNOWN_IMPRESSION_SOURCE_TYPE");
    assert_true(get_bool(&d.v, "has_superimposed_views"));
    avro_value_t p = sub(&d.v, "client_position");
    assert_int_equal(get_size(&p, "index"), 3);
    for (size_t i = 0; i < 3; i++) {
        avro_value_t e = item(&p, "index", i);
        int32_t v;
        assert_int_equal(avro_value_get_int(&e, &v), 0);
        assert_int_equal(v, idx[i]);
    }
    avro_value_t pr = sub(&d.v, "properties");
    avro_value_t sb = get(&pr, "struct_bytes");
    const void *bytes;
    size_t n;
    assert_int_equal(avro_value_get_bytes(&sb, &bytes, &n), 0);
    assert_int_equal(n, sizeof raw);
    assert_memory_equal(bytes, raw, n);
    assert_true(is_null(&pr, "struct"));
    assert_true(is_null(&d.v, "id_provenances"));
    undecode(&d);
    avenc_buf_free(&b);
    avsc_schema_free(s);
}

/* Explicit-presence scalars (Insertion.position, retrieval_rank, retrieval_score) are plain
 * Avro fields: set-to-zero and absent both read 0; the has_ flag, not the member, decides. */
static void test_explicit_presence_scalars(void **state)
{
    (void)state;
    avsc_schema *s = schema_of(&delivery__insertion__descriptor);
    Delivery__Insertion ins = DELIVERY__INSERTION__INIT;
    ins.has_position = 1;
    ins.position = 0;
    ins.has_retrieval_rank = 0;
    ins.retrieval_rank = 9; /* not present: must not leak out */
    ins.has_retrieval_score = 1;
    ins.retrieval_score = 1.5f;
    ins.content_id = "c1";

    avenc_buf b;
    avenc_buf_init(&b, 1 << 20);
    encode(s, &ins.base, &b, NULL);
    decoded d;
    decode(avsc_schema_avro(s), b.data, b.len, &d);
    assert_int_equal(get_long(&d.v, "position"), 0);
    assert_int_equal(get_long(&d.v, "retrieval_rank"), 0);
    assert_true(get_float(&d.v, "retrieval_score") == 1.5f);
    assert_string_equal(get_str(&d.v, "content_id"), "c1");
    undecode(&d);
    avenc_buf_free(&b);
    avsc_schema_free(s);
}

/* Absent message -> null branch; present empty message -> the record with defaults. */
static void test_message_presence(void **state)
{
    (void)state;
    avsc_schema *s = schema_of(&event__action__descriptor);
    Event__Action a = EVENT__ACTION__INIT;
    Event__Cart cart = EVENT__CART__INIT;
    Event__NavigateAction nav = EVENT__NAVIGATE_ACTION__INIT;
    a.cart = &cart;
    a.action_case = EVENT__ACTION__ACTION_NAVIGATE_ACTION;
    a.navigate_action = &nav;
    a.has_action_type = 1;
    a.action_type = EVENT__ACTION_TYPE__PURCHASE;

    avenc_buf b;
    avenc_buf_init(&b, 1 << 20);
    encode(s, &a.base, &b, NULL);
    decoded d;
    decode(avsc_schema_avro(s), b.data, b.len, &d);
    avro_value_t c = sub(&d.v, "cart");
    assert_int_equal(get_size(&c, "contents"), 0);
    (void)sub(&d.v, "navigate_action");
    assert_true(is_null(&d.v, "device"));
    assert_true(is_null(&d.v, "properties"));
    assert_string_equal(get_enum(&d.v, "action_type"), "PURCHASE");
    undecode(&d);

    /* the same action without the cart: null */
    a.cart = NULL;
    avenc_buf_clear(&b);
    encode(s, &a.base, &b, NULL);
    decode(avsc_schema_avro(s), b.data, b.len, &d);
    assert_true(is_null(&d.v, "cart"));
    undecode(&d);
    avenc_buf_free(&b);
    avsc_schema_free(s);
}

static void test_oneof_members(void **state)
{
    (void)state;
    avsc_schema *s = schema_of(&delivery__paging__descriptor);
    Delivery__Paging p = DELIVERY__PAGING__INIT;
    p.starting_case = DELIVERY__PAGING__STARTING_OFFSET;
    p.offset = -3;
    avenc_buf b;
    avenc_buf_init(&b, 1 << 20);
    encode(s, &p.base, &b, NULL);
    decoded d;
    decode(avsc_schema_avro(s), b.data, b.len, &d);
    assert_string_equal(get_str(&d.v, "cursor"), ""); /* the unselected member: its default */
    assert_int_equal(get_int(&d.v, "offset"), -3);
    undecode(&d);

    p.starting_case = DELIVERY__PAGING__STARTING_CURSOR;
    p.cursor = "next";
    avenc_buf_clear(&b);
    encode(s, &p.base, &b, NULL);
    decode(avsc_schema_avro(s), b.data, b.len, &d);
    assert_string_equal(get_str(&d.v, "cursor"), "next");
    assert_int_equal(get_int(&d.v, "offset"), 0);
    undecode(&d);
    avenc_buf_free(&b);
    avsc_schema_free(s);

    s = schema_of(&event__view__descriptor);
    Event__View v = EVENT__VIEW__INIT;
    Event__AppScreenView app = EVENT__APP_SCREEN_VIEW__INIT;
    v.ui_type_case = EVENT__VIEW__UI_TYPE_APP_SCREEN_VIEW;
    v.app_screen_view = &app;
    avenc_buf_init(&b, 1 << 20);
    encode(s, &v.base, &b, NULL);
    decode(avsc_schema_avro(s), b.data, b.len, &d);
    assert_true(is_null(&d.v, "web_page_view"));
    (void)sub(&d.v, "app_screen_view");
    undecode(&d);
    avenc_buf_free(&b);
    avsc_schema_free(s);
}

/* ---- Struct nesting and the cut at depth 5 --------------------------------------------------- */

static Google__Protobuf__Value *value_new(void)
{
    Google__Protobuf__Value *v = malloc(sizeof *v);
    google__protobuf__value__init(v);
    return v;
}

static Google__Protobuf__Struct *struct_of(const char *key, Google__Protobuf__Value *val)
{
    Google__Protobuf__Struct *st = malloc(sizeof *st);
    google__protobuf__struct__init(st);
    Google__Protobuf__Struct__FieldsEntry *e = malloc(sizeof *e);
    google__protobuf__struct__fields_entry__init(e);
    e->key = strdup(key);
    e->value = val;
    st->fields = malloc(sizeof *st->fields);
    st->fields[0] = e;
    st->n_fields = 1;
    return st;
}

static Google__Protobuf__Value *string_value(const char *s)
{
    Google__Protobuf__Value *v = value_new();
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v->string_value = strdup(s);
    return v;
}

static Google__Protobuf__Value *struct_value(Google__Protobuf__Struct *st)
{
    Google__Protobuf__Value *v = value_new();
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    v->struct_value = st;
    return v;
}

static Google__Protobuf__Value *list_value(Google__Protobuf__Value *a, Google__Protobuf__Value *b)
{
    Google__Protobuf__ListValue *l = malloc(sizeof *l);
    google__protobuf__list_value__init(l);
    l->values = malloc(2 * sizeof *l->values);
    l->values[0] = a;
    l->n_values = 1;
    if (b) l->values[l->n_values++] = b;
    Google__Protobuf__Value *v = value_new();
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    v->list_value = l;
    return v;
}

static void test_struct_depth_cut(void **state)
{
    (void)state;
    avsc_schema *s = schema_of(&common__properties__descriptor);
    /* {"k1": {"k2": {"k3": {"k4": {"k5": {"k6": "lost"}}}}}}: the value under k5 is a struct at
     * depth 6, which the schema cannot hold. */
    Google__Protobuf__Struct *inner = struct_of("k6", string_value("lost"));
    Google__Protobuf__Value *v = struct_value(inner);
    for (int k = 5; k >= 2; k--) {
        char key[8];
        snprintf(key, sizeof key, "k%d", k);
        v = struct_value(struct_of(key, v));
    }
    /* k1 holds a list [ [ [ [ ["deep" , [..]] ] ] ] ]: "deep" sits in ListValue5 (kept), the
     * list beside it would be ListValue6 (cut) */
    Google__Protobuf__Value *l =
        list_value(string_value("deep"), list_value(string_value("x"), NULL));
    for (int k = 0; k < 3; k++)
        l = list_value(l, NULL);
    Google__Protobuf__Struct *top = struct_of("k1", v);
    Google__Protobuf__Struct__FieldsEntry *e2 = malloc(sizeof *e2);
    google__protobuf__struct__fields_entry__init(e2);
    e2->key = strdup("list");
    e2->value = l;
    top->fields = realloc(top->fields, 2 * sizeof *top->fields);
    top->fields[1] = e2;
    top->n_fields = 2;

    Common__Properties *props = malloc(sizeof *props);
    common__properties__init(props);
    props->struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT;
    props->struct_ = top;

    uint64_t before = avenc_depth_cut_total();
    avenc_buf b;
    avenc_buf_init(&b, 1 << 20);
    avenc_stats st = {0};
    encode(s, &props->base, &b, &st);
    assert_int_equal(st.depth_cut, 2);
    assert_int_equal(avenc_depth_cut_total() - before, 2);

    decoded d;
    decode(avsc_schema_avro(s), b.data, b.len, &d);
    /* walk k1 .. k5 down the struct chain */
    avro_value_t cur = sub(&d.v, "struct");
    for (int k = 1; k <= 5; k++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", k);
        avro_value_t entry = item(&cur, "fields", 0);
        assert_string_equal(get_str(&entry, "key"), key);
        avro_value_t val = sub(&entry, "value");
        if (k < 5) {
            cur = sub(&val, "struct_value");
        } else {
            /* Value5: the nested struct was cut; what remains are the scalar defaults */
            assert_false(has(&val, "struct_value"));
            assert_false(has(&val, "list_value"));
            assert_string_equal(get_str(&val, "string_value"), "");
            assert_true(get_double(&val, "number_value") == 0.0);
            assert_string_equal(get_enum(&val, "null_value"), "NULL_VALUE");
        }
    }
    /* the list chain: Value1.list_value -> ListValue2 ... ListValue5 holds "deep" */
    avro_value_t top_rec = sub(&d.v, "struct");
    avro_value_t le = item(&top_rec, "fields", 1);
    assert_string_equal(get_str(&le, "key"), "list");
    avro_value_t lv = sub(&le, "value"); /* Value1 */
    for (int depth = 2; depth <= 5; depth++) {
        avro_value_t list = sub(&lv, "list_value"); /* ListValue<depth> */
        lv = item(&list, "values", 0);              /* Value<depth> */
        if (depth == 5) {
            assert_string_equal(get_str(&lv, "string_value"), "deep");
            avro_value_t cut = item(&list, "values", 1);
            assert_false(has(&cut, "list_value"));
            assert_string_equal(get_str(&cut, "string_value"), "");
        }
    }
    undecode(&d);
    avenc_buf_free(&b);
    protobuf_c_message_free_unpacked(&props->base, NULL);
    avsc_schema_free(s);
}

/* ---- limits and misuse ----------------------------------------------------------------------- */

static void test_limit_rolls_back(void **state)
{
    (void)state;
    avsc_schema *s = schema_of(&event__impression__descriptor);
    avenc_buf b;
    avenc_buf_init(&b, 40);
    char err[256];
    avenc_log_user_user u = {1, 2, "a", "b"};
    assert_int_equal(avenc_log_user_user_datum(&u, &b, err, sizeof err), 0);
    size_t first = b.len;
    uint8_t copy[64];
    memcpy(copy, b.data, first);

    Event__Impression imp = EVENT__IMPRESSION__INIT;
    imp.impression_id = "an impression id far too long to fit in the forty bytes";
    assert_int_equal(avenc_message(s, &imp.base, &b, NULL, err, sizeof err), AVENC_E_LIMIT);
    assert_non_null(strstr(err, "ai.promoted.proto.event.Impression"));
    assert_non_null(strstr(err, "limit of 40 bytes"));
    assert_int_equal(b.len, first);
    assert_memory_equal(b.data, copy, first);
    /* the allocation stays within the limit plus one record's fixed-size headroom */
    assert_true(b.cap <= 40 + avsc_schema_root(s)->max_fixed);

    /* a short one still fits after the failure */
    imp.impression_id = "i";
    assert_int_equal(avenc_message(s, &imp.base, &b, NULL, err, sizeof err), 0);
    assert_true(b.len > first);
    avenc_buf_free(&b);

    /* no string at all: the fixed-size parts alone pass a 10-byte limit */
    Event__Impression empty = EVENT__IMPRESSION__INIT;
    avenc_buf_init(&b, 10);
    assert_int_equal(avenc_message(s, &empty.base, &b, NULL, err, sizeof err), AVENC_E_LIMIT);
    assert_non_null(strstr(err, "limit of 10 bytes"));
    assert_int_equal(b.len, 0);
    avenc_buf_free(&b);

    Event__View v = EVENT__VIEW__INIT;
    avenc_buf_init(&b, 1024);
    assert_int_equal(avenc_message(s, &v.base, &b, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "event.View"));
    assert_non_null(strstr(err, "event.Impression"));
    assert_int_equal(b.len, 0);
    avenc_buf_free(&b);
    avsc_schema_free(s);
}

/* ---- derived records ------------------------------------------------------------------------- */

static avro_schema_t embedded(const char *name)
{
    const char *text = embedded_schema(name);
    if (!text) fail_msg("schemas/%s.avsc is not embedded", name);
    avro_schema_t sc;
    if (avro_schema_from_json_length(text, strlen(text), &sc))
        fail_msg("schemas/%s.avsc: %s", name, avro_strerror());
    return sc;
}

static void test_log_user_user(void **state)
{
    (void)state;
    avro_schema_t sc = embedded("log_user_user");
    assert_string_equal(avro_schema_name(sc), "LogUserUser");
    assert_string_equal(avro_schema_namespace(sc), "ai.promoted.metrics.common");
    avenc_buf b;
    avenc_buf_init(&b, 4096);
    char err[256];
    avenc_log_user_user r = {INT64_MIN, 1663099208000, "lu-1", NULL};
    assert_int_equal(avenc_log_user_user_datum(&r, &b, err, sizeof err), 0);
    decoded d;
    decode(sc, b.data, b.len, &d);
    assert_int_equal(avro_schema_record_size(sc), 4);
    assert_true(get_long(&d.v, "platformId") == INT64_MIN);
    assert_int_equal(get_long(&d.v, "eventApiTimestamp"), 1663099208000);
    assert_string_equal(get_str(&d.v, "logUserId"), "lu-1");
    assert_string_equal(get_str(&d.v, "userId"), "");
    undecode(&d);
    avenc_buf_free(&b);
    avro_schema_decref(sc);
}

static void test_delivery_log_ids(void **state)
{
    (void)state;
    avro_schema_t sc = embedded("delivery_log_ids");
    assert_int_equal(avro_schema_record_size(sc), 9);
    /* by name: SIMPLE_API (3) -> symbol 4, API (1) -> 2, SDK (2) -> 3, unnamed -> UNRECOGNIZED */
    struct {
        int32_t proto;
        const char *sym;
    } cases[] = {{0, "UNKNOWN_EXECUTION_SERVER"},
                 {1, "API"},
                 {2, "SDK"},
                 {3, "SIMPLE_API"},
                 {42, "UNRECOGNIZED"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        avenc_buf b;
        avenc_buf_init(&b, 4096);
        char err[256];
        avenc_delivery_log_ids r = {7,       8,     "lu", "v", "req", "creq", cases[i].proto,
                                    "shoes", "UA/1"};
        assert_int_equal(avenc_delivery_log_ids_datum(&r, &b, err, sizeof err), 0);
        decoded d;
        decode(sc, b.data, b.len, &d);
        assert_int_equal(get_long(&d.v, "platformId"), 7);
        assert_int_equal(get_long(&d.v, "eventApiTimestamp"), 8);
        assert_string_equal(get_str(&d.v, "logUserId"), "lu");
        assert_string_equal(get_str(&d.v, "viewId"), "v");
        assert_string_equal(get_str(&d.v, "requestId"), "req");
        assert_string_equal(get_str(&d.v, "clientRequestId"), "creq");
        assert_string_equal(get_enum(&d.v, "executionServer"), cases[i].sym);
        assert_string_equal(get_str(&d.v, "searchQuery"), "shoes");
        assert_string_equal(get_str(&d.v, "userAgent"), "UA/1");
        undecode(&d);
        avenc_buf_free(&b);
    }
    avro_schema_decref(sc);
}

static void test_insertion_ids(void **state)
{
    (void)state;
    avro_schema_t sc = embedded("request_insertion_ids");
    char err[256];
    for (int present = 0; present < 2; present++) {
        avenc_buf b;
        avenc_buf_init(&b, 4096);
        avenc_request_insertion_ids r = {1, 2, "req", "c", present, 0};
        assert_int_equal(avenc_request_insertion_ids_datum(&r, &b, err, sizeof err), 0);
        decoded d;
        decode(sc, b.data, b.len, &d);
        assert_string_equal(get_str(&d.v, "requestId"), "req");
        assert_string_equal(get_str(&d.v, "contentId"), "c");
        /* explicit presence: a set 0 is 0, an absent rank is null */
        assert_int_equal(is_null(&d.v, "retrievalRank"), !present);
        if (present) {
            avro_value_t u = get(&d.v, "retrievalRank"), br;
            int64_t rank = -1;
            assert_int_equal(avro_value_get_current_branch(&u, &br), 0);
            assert_int_equal(avro_value_get_long(&br, &rank), 0);
            assert_int_equal(rank, 0);
        }
        undecode(&d);
        avenc_buf_free(&b);
    }
    avro_schema_decref(sc);

    sc = embedded("response_insertion_ids");
    avenc_buf b;
    avenc_buf_init(&b, 4096);
    avenc_response_insertion_ids r = {3, 4, "req", "ins", "c", 17};
    assert_int_equal(avenc_response_insertion_ids_datum(&r, &b, err, sizeof err), 0);
    decoded d;
    decode(sc, b.data, b.len, &d);
    assert_int_equal(get_long(&d.v, "platformId"), 3);
    assert_int_equal(get_long(&d.v, "eventApiTimestamp"), 4);
    assert_string_equal(get_str(&d.v, "requestId"), "req");
    assert_string_equal(get_str(&d.v, "insertionId"), "ins");
    assert_string_equal(get_str(&d.v, "contentId"), "c");
    assert_int_equal(get_long(&d.v, "position"), 17);
    undecode(&d);
    avenc_buf_free(&b);
    avro_schema_decref(sc);
}

static void test_invalid_record(void **state)
{
    (void)state;
    avro_schema_t sc = embedded("invalid_record");
    assert_string_equal(avro_schema_name(sc), "InvalidRecord");
    static const char *const names[] = {"source", "partition", "offset",    "timestamp",
                                        "error",  "raw",       "raw_length"};
    assert_int_equal(avro_schema_record_size(sc), 7);
    for (int i = 0; i < 7; i++)
        assert_string_equal(avro_schema_record_field_name(sc, i), names[i]);

    uint8_t raw[] = {0xde, 0xad, 0x00, 0xbe};
    avenc_invalid_record r = {"in.rec", -1, 4096, -1, "CRC mismatch", raw, sizeof raw, 2000000};
    avenc_buf b;
    avenc_buf_init(&b, 4096);
    char err[256];
    assert_int_equal(avenc_invalid_record_datum(&r, &b, err, sizeof err), 0);
    decoded d;
    decode(sc, b.data, b.len, &d);
    assert_string_equal(get_str(&d.v, "source"), "in.rec");
    assert_int_equal(get_int(&d.v, "partition"), -1);
    assert_int_equal(get_long(&d.v, "offset"), 4096);
    assert_int_equal(get_long(&d.v, "timestamp"), -1);
    assert_string_equal(get_str(&d.v, "error"), "CRC mismatch");
    avro_value_t rv = get(&d.v, "raw");
    const void *bytes;
    size_t n;
    assert_int_equal(avro_value_get_bytes(&rv, &bytes, &n), 0);
    assert_int_equal(n, sizeof raw);
    assert_memory_equal(bytes, raw, n);
    assert_int_equal(get_long(&d.v, "raw_length"), 2000000);
    undecode(&d);
    avenc_buf_free(&b);
    avro_schema_decref(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impression_values), cmocka_unit_test(test_explicit_presence_scalars),
        cmocka_unit_test(test_message_presence),  cmocka_unit_test(test_oneof_members),
        cmocka_unit_test(test_struct_depth_cut),  cmocka_unit_test(test_limit_rolls_back),
        cmocka_unit_test(test_log_user_user),     cmocka_unit_test(test_delivery_log_ids),
        cmocka_unit_test(test_insertion_ids),     cmocka_unit_test(test_invalid_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
