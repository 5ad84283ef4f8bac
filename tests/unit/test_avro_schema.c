/* The protobuf -> Avro schema mapping (src/formats/avro_schema.h, docs/AVRO.md), checked on the
 * JSON text with jansson: names, namespaces, field order and types, enums with UNRECOGNIZED,
 * map entry records, the Flat* renaming and the Struct/Value/ListValue unrolling to depth 5. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "formats/avro_schema.h"

/* ---- helpers --------------------------------------------------------------------------------- */

typedef struct doc {
    avsc_schema *s;
    json_t *root;
    json_t *defs; /* full name -> definition object */
} doc;

static int is_primitive(const char *t)
{
    static const char *const prims[] = {"null",  "boolean", "int",   "long",
                                        "float", "double",  "bytes", "string"};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (!strcmp(t, prims[i])) return 1;
    return 0;
}

static void full_name_of(json_t *def, char *buf, size_t n)
{
    const char *ns = json_string_value(json_object_get(def, "namespace"));
    const char *name = json_string_value(json_object_get(def, "name"));
    assert_non_null(name);
    snprintf(buf, n, "%s%s%s", ns ? ns : "", ns ? "." : "", name);
}

/* Walks a type in document order: every named type must be defined before any reference to
 * it, and defined only once. */
static void collect(json_t *defs, json_t *t)
{
    if (json_is_string(t)) {
        const char *s = json_string_value(t);
        if (!is_primitive(s)) {
            if (!json_object_get(defs, s)) fail_msg("type %s used before its definition", s);
        }
        return;
    }
    if (json_is_array(t)) {
        size_t i;
        json_t *b;
        json_array_foreach(t, i, b) collect(defs, b);
        return;
    }
    assert_true(json_is_object(t));
    const char *type = json_string_value(json_object_get(t, "type"));
    assert_non_null(type);
    if (!strcmp(type, "array")) {
        collect(defs, json_object_get(t, "items"));
        return;
    }
    char full[512];
    full_name_of(t, full, sizeof full);
    if (json_object_get(defs, full)) fail_msg("type %s defined twice", full);
    json_object_set(defs, full, t);
    if (!strcmp(type, "record")) {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(t, "fields"), i, f)
            collect(defs, json_object_get(f, "type"));
    } else {
        assert_string_equal(type, "enum");
    }
}

static doc load(const ProtobufCMessageDescriptor *d)
{
    doc x;
    char err[512];
    assert_int_equal(avsc_schema_new(d, &x.s, err, sizeof err), 0);
    size_t len;
    const char *text = avsc_schema_json(x.s, &len);
    assert_int_equal(strlen(text), len);
    json_error_t je;
    x.root = json_loads(text, 0, &je);
    assert_non_null(x.root);
    x.defs = json_object();
    collect(x.defs, x.root);
    return x;
}

static void unload(doc *x)
{
    json_decref(x->defs);
    json_decref(x->root);
    avsc_schema_free(x->s);
}

static json_t *def(doc *x, const char *full)
{
    json_t *d = json_object_get(x->defs, full);
    if (!d) fail_msg("no type %s in the schema", full);
    return d;
}

/* A reference or an inline definition, resolved to the definition. */
static json_t *resolve(doc *x, json_t *t)
{
    return json_is_string(t) && !is_primitive(json_string_value(t)) ? def(x, json_string_value(t))
                                                                    : t;
}

static json_t *field_type(json_t *record, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(record, "fields"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "name")), name))
            return json_object_get(f, "type");
    }
    fail_msg("record %s has no field %s", json_string_value(json_object_get(record, "name")), name);
    return NULL;
}

static int has_field(json_t *record, const char *name)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(record, "fields"), i, f)
    {
        if (!strcmp(json_string_value(json_object_get(f, "name")), name)) return 1;
    }
    return 0;
}

/* ["null", X] -> X resolved */
static json_t *nullable(doc *x, json_t *t)
{
    assert_true(json_is_array(t));
    assert_int_equal(json_array_size(t), 2);
    assert_string_equal(json_string_value(json_array_get(t, 0)), "null");
    return resolve(x, json_array_get(t, 1));
}

/* {"type":"array","items":X} -> X resolved */
static json_t *array_of(doc *x, json_t *t)
{
    assert_true(json_is_object(t));
    assert_string_equal(json_string_value(json_object_get(t, "type")), "array");
    return resolve(x, json_object_get(t, "items"));
}

static void assert_named(json_t *d, const char *type, const char *ns, const char *name)
{
    assert_string_equal(json_string_value(json_object_get(d, "type")), type);
    assert_string_equal(json_string_value(json_object_get(d, "namespace")), ns);
    assert_string_equal(json_string_value(json_object_get(d, "name")), name);
}

static void assert_symbols(json_t *e, const char *const *want, size_t n)
{
    json_t *syms = json_object_get(e, "symbols");
    assert_int_equal(json_array_size(syms), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(syms, i)), want[i]);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_impression_record(void **state)
{
    (void)state;
    doc x = load(&event__impression__descriptor);
    assert_named(x.root, "record", "ai.promoted.proto.event", "Impression");

    /* fields in ascending field number, with the proto names */
    const ProtobufCMessageDescriptor *d = &event__impression__descriptor;
    json_t *fields = json_object_get(x.root, "fields");
    assert_int_equal(json_array_size(fields), d->n_fields);
    static const char *const first[] = {"platform_id", "user_info",     "timing",
                                        "client_info", "impression_id", "insertion_id"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(fields, i), "name")),
                            first[i]);
    for (size_t i = 1; i < d->n_fields; i++)
        assert_true(d->fields[i].id > d->fields[i - 1].id);

    /* scalars are plain types, never unions */
    assert_string_equal(json_string_value(field_type(x.root, "platform_id")), "long");
    assert_string_equal(json_string_value(field_type(x.root, "impression_id")), "string");
    assert_string_equal(json_string_value(field_type(x.root, "has_superimposed_views")), "boolean");
    /* a singular message is ["null", record] in the namespace of its own package */
    json_t *ui = nullable(&x, field_type(x.root, "user_info"));
    assert_named(ui, "record", "ai.promoted.proto.common", "UserInfo");
    assert_string_equal(json_string_value(field_type(ui, "log_user_id")), "string");
    json_t *timing = nullable(&x, field_type(x.root, "timing"));
    /* the private Timing fields with known numbers are plain fields */
    assert_string_equal(json_string_value(field_type(timing, "event_api_timestamp")), "long");
    assert_string_equal(json_string_value(field_type(timing, "log_timestamp")), "long");
    /* repeated int32 -> array of int */
    json_t *ip = nullable(&x, field_type(x.root, "client_position"));
    assert_named(ip, "record", "ai.promoted.proto.event", "IndexPath");
    assert_string_equal(json_string_value(array_of(&x, field_type(ip, "index"))), "int");
    /* an enum field: the enum type with UNRECOGNIZED last */
    json_t *src = resolve(&x, field_type(x.root, "source_type"));
    assert_named(src, "enum", "ai.promoted.proto.event", "ImpressionSourceType");
    json_t *syms = json_object_get(src, "symbols");
    assert_string_equal(json_string_value(json_array_get(syms, json_array_size(syms) - 1)),
                        "UNRECOGNIZED");
    assert_int_equal(json_array_size(syms), event__impression_source_type__descriptor.n_values + 1);
    /* Properties -> FlatProperties, whose Struct is the depth-1 copy */
    json_t *props = nullable(&x, field_type(x.root, "properties"));
    assert_named(props, "record", "ai.promoted.proto.common", "FlatProperties");
    assert_string_equal(json_string_value(field_type(props, "struct_bytes")), "bytes");
    json_t *s1 = nullable(&x, field_type(props, "struct"));
    assert_named(s1, "record", "com.google.protobuf", "Struct1");
    /* names and types only: no defaults, no Java properties */
    assert_null(strstr(avsc_schema_json(x.s, NULL), "\"default\""));
    assert_null(strstr(avsc_schema_json(x.s, NULL), "avro.java.string"));
    unload(&x);
}

/* Struct/Value/ListValue copies: Struct<n>.fields holds Value<n>, Value<n> holds Struct<n+1> and
 * ListValue<n+1>, ListValue<n>.values holds Value<n>, and Value5 has no nested fields. */
static void test_struct_unrolled_to_depth_5(void **state)
{
    (void)state;
    doc x = load(&event__impression__descriptor);
    for (int n = 1; n <= AVSC_MAX_LEVEL; n++) {
        char name[128], ns[128];
        snprintf(name, sizeof name, "com.google.protobuf.Struct%d", n);
        json_t *st = def(&x, name);
        assert_int_equal(json_array_size(json_object_get(st, "fields")), 1);
        json_t *entry = array_of(&x, field_type(st, "fields"));
        snprintf(ns, sizeof ns, "com.google.protobuf.Struct%d", n);
        assert_named(entry, "record", ns, "FieldsEntry");
        assert_string_equal(json_string_value(field_type(entry, "key")), "string");
        json_t *val = nullable(&x, field_type(entry, "value"));
        snprintf(name, sizeof name, "Value%d", n);
        assert_named(val, "record", "com.google.protobuf", name);

        json_t *nv = resolve(&x, field_type(val, "null_value"));
        assert_named(nv, "enum", "com.google.protobuf", "NullValue");
        static const char *const nullsyms[] = {"NULL_VALUE", "UNRECOGNIZED"};
        assert_symbols(nv, nullsyms, 2);
        assert_string_equal(json_string_value(field_type(val, "number_value")), "double");
        assert_string_equal(json_string_value(field_type(val, "string_value")), "string");
        assert_string_equal(json_string_value(field_type(val, "bool_value")), "boolean");
        if (n < AVSC_MAX_LEVEL) {
            snprintf(name, sizeof name, "Struct%d", n + 1);
            assert_named(nullable(&x, field_type(val, "struct_value")), "record",
                         "com.google.protobuf", name);
            snprintf(name, sizeof name, "ListValue%d", n + 1);
            json_t *lv = nullable(&x, field_type(val, "list_value"));
            assert_named(lv, "record", "com.google.protobuf", name);
            snprintf(name, sizeof name, "Value%d", n + 1);
            assert_named(array_of(&x, field_type(lv, "values")), "record", "com.google.protobuf",
                         name);
        } else {
            /* the cut: depth 6 does not exist */
            assert_int_equal(json_array_size(json_object_get(val, "fields")), 4);
            assert_false(has_field(val, "struct_value"));
            assert_false(has_field(val, "list_value"));
        }
    }
    assert_null(json_object_get(x.defs, "com.google.protobuf.Struct6"));
    assert_null(json_object_get(x.defs, "com.google.protobuf.Value6"));
    assert_null(json_object_get(x.defs, "com.google.protobuf.ListValue6"));
    /* no unnumbered copy either */
    assert_null(json_object_get(x.defs, "com.google.protobuf.Struct"));
    assert_null(json_object_get(x.defs, "com.google.protobuf.Value"));

    /* the layout the encoder uses agrees: Value5 lists its nested fields as cut */
    const avsc_record *v5 = avsc_schema_find_record(x.s, "com.google.protobuf.Value5");
    assert_non_null(v5);
    assert_int_equal(v5->n_fields, 4);
    assert_int_equal(v5->n_cut, 2);
    assert_int_equal(v5->level, 5);
    unload(&x);
}

static void test_delivery_log_flat_request(void **state)
{
    (void)state;
    doc x = load(&delivery__delivery_log__descriptor);
    assert_named(x.root, "record", "ai.promoted.proto.delivery", "DeliveryLog");
    json_t *req = nullable(&x, field_type(x.root, "request"));
    assert_named(req, "record", "ai.promoted.proto.delivery", "FlatRequest");
    /* the matrix is a ListValue at depth 1 */
    json_t *m = nullable(&x, field_type(req, "insertion_matrix"));
    assert_named(m, "record", "com.google.protobuf", "ListValue1");
    assert_named(array_of(&x, field_type(m, "values")), "record", "com.google.protobuf", "Value1");
    assert_string_equal(
        json_string_value(array_of(&x, field_type(req, "insertion_matrix_headers"))), "string");
    /* Insertion holds Properties (not a Struct): it keeps its name; Properties is flattened */
    json_t *ins = array_of(&x, field_type(req, "insertion"));
    assert_named(ins, "record", "ai.promoted.proto.delivery", "Insertion");
    assert_named(nullable(&x, field_type(ins, "properties")), "record", "ai.promoted.proto.common",
                 "FlatProperties");
    assert_named(nullable(&x, field_type(req, "properties")), "record", "ai.promoted.proto.common",
                 "FlatProperties");
    /* explicit-presence scalars are still plain (never nullable) */
    assert_string_equal(json_string_value(field_type(ins, "position")), "long");
    assert_string_equal(json_string_value(field_type(ins, "retrieval_score")), "float");
    /* the response's insertions reuse the same Insertion type by name */
    json_t *resp = nullable(&x, field_type(x.root, "response"));
    json_t *items = json_object_get(field_type(resp, "insertion"), "items");
    assert_true(json_is_string(items));
    assert_string_equal(json_string_value(items), "ai.promoted.proto.delivery.Insertion");

    /* a map: array of {key, value} entry records nested in the owner's namespace */
    json_t *exec = nullable(&x, field_type(x.root, "execution"));
    json_t *es = resolve(&x, field_type(exec, "execution_server"));
    static const char *const servers[] = {"UNKNOWN_EXECUTION_SERVER", "API", "SDK", "SIMPLE_API",
                                          "UNRECOGNIZED"};
    assert_named(es, "enum", "ai.promoted.proto.delivery", "ExecutionServer");
    assert_symbols(es, servers, 5);
    json_t *hl = nullable(&x, field_type(exec, "hyperloop_log"));
    json_t *entry = array_of(&x, field_type(hl, "parameter_logs"));
    assert_named(entry, "record", "ai.promoted.proto.delivery.HyperloopLog", "ParameterLogsEntry");
    assert_int_equal(json_array_size(json_object_get(entry, "fields")), 2);
    assert_string_equal(json_string_value(field_type(entry, "key")), "long");
    json_t *pl = nullable(&x, field_type(entry, "value"));
    assert_named(pl, "record", "ai.promoted.proto.delivery", "HyperloopParameterLog");
    assert_string_equal(json_string_value(field_type(pl, "bucket")), "int");
    assert_string_equal(json_string_value(field_type(pl, "value")), "float");
    /* the private execution_insertion (an unknown field) is not part of the record */
    assert_false(has_field(exec, "execution_insertion"));
    unload(&x);
}

static void test_nested_enum_names(void **state)
{
    (void)state;
    doc x = load(&event__log_request__descriptor);
    static const char *const ct[] = {"UNKNOWN_REQUEST_CLIENT", "PLATFORM_SERVER", "PLATFORM_CLIENT",
                                     "UNRECOGNIZED"};
    json_t *e = def(&x, "ai.promoted.proto.common.ClientInfo.ClientType");
    assert_named(e, "enum", "ai.promoted.proto.common.ClientInfo", "ClientType");
    assert_symbols(e, ct, 4);
    static const char *const tt[] = {
        "UNKNOWN_TRAFFIC_TYPE", "PRODUCTION", "REPLAY", "INTERNAL", "SHADOW", "LOAD_TEST",
        "UNRECOGNIZED"};
    assert_symbols(def(&x, "ai.promoted.proto.common.ClientInfo.TrafficType"), tt, 7);
    /* symbols follow the value numbers: PURCHASE (3) is the fourth */
    json_t *at = def(&x, "ai.promoted.proto.event.ActionType");
    assert_string_equal(json_string_value(json_array_get(json_object_get(at, "symbols"), 3)),
                        "PURCHASE");
    assert_string_equal(json_string_value(json_array_get(json_object_get(at, "symbols"), 4)),
                        "ADD_TO_CART");
    unload(&x);
}

static int valid_name(const char *s, size_t n)
{
    if (!n || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static void test_log_request_names(void **state)
{
    (void)state;
    doc x = load(&event__log_request__descriptor);
    assert_named(x.root, "record", "ai.promoted.proto.event", "LogRequest");
    /* the Flat rule yields exactly the reference's flattened types reachable from LogRequest */
    const char *k;
    json_t *v;
    int flats = 0;
    json_object_foreach(x.defs, k, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (!strncmp(name, "Flat", 4)) {
            flats++;
            assert_true(!strcmp(k, "ai.promoted.proto.common.FlatProperties") ||
                        !strcmp(k, "ai.promoted.proto.delivery.FlatRequest"));
        }
        /* Avro names: every dotted component [A-Za-z_][A-Za-z0-9_]* (no '$') */
        const char *p = k;
        for (;;) {
            const char *dot = strchr(p, '.');
            size_t n = dot ? (size_t)(dot - p) : strlen(p);
            if (!valid_name(p, n)) fail_msg("invalid Avro name %s", k);
            if (!dot) break;
            p = dot + 1;
        }
    }
    assert_int_equal(flats, 2);
    /* every message type reachable from the request appears, e.g. the view's UI oneof members */
    json_t *view = def(&x, "ai.promoted.proto.event.View");
    assert_named(nullable(&x, field_type(view, "web_page_view")), "record",
                 "ai.promoted.proto.event", "WebPageView");
    assert_named(nullable(&x, field_type(view, "app_screen_view")), "record",
                 "ai.promoted.proto.event", "AppScreenView");
    assert_named(nullable(&x, field_type(view, "device")), "record", "ai.promoted.proto.common",
                 "Device");
    /* avro-c resolved the references: the user_info branch is the UserInfo record */
    avro_schema_t as = avsc_schema_avro(x.s);
    assert_non_null(as);
    avro_schema_t ui = avro_schema_record_field_get(as, "user_info");
    assert_non_null(ui);
    avro_schema_t b1 = avro_schema_union_branch(ui, 1);
    assert_string_equal(avro_schema_name(b1), "UserInfo");
    assert_int_equal(avro_schema_record_size(b1), common__user_info__descriptor.n_fields);
    unload(&x);
}

/* ---- hand-built descriptors: the family rule on types other than Struct ---------------------- */

typedef struct tnode {
    ProtobufCMessage base;
    struct tnode *child;
    protobuf_c_boolean has_value;
    int32_t value;
} tnode;

extern const ProtobufCMessageDescriptor tnode_desc;
static const ProtobufCFieldDescriptor tnode_fields[] = {
    {.name = "child",
     .id = 1,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_MESSAGE,
     .offset = offsetof(tnode, child),
     .descriptor = &tnode_desc},
    {.name = "value",
     .id = 2,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_INT32,
     .quantifier_offset = offsetof(tnode, has_value),
     .offset = offsetof(tnode, value)},
};
const ProtobufCMessageDescriptor tnode_desc = {.magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                                               .name = "t.Node",
                                               .short_name = "Node",
                                               .c_name = "TNode",
                                               .package_name = "t",
                                               .sizeof_message = sizeof(tnode),
                                               .n_fields = 2,
                                               .fields = tnode_fields};

/* holder {node: Node}: holds a family member directly, so it becomes FlatHolder */
typedef struct tholder {
    ProtobufCMessage base;
    tnode *node;
} tholder;
static const ProtobufCFieldDescriptor tholder_fields[] = {
    {.name = "node",
     .id = 1,
     .label = PROTOBUF_C_LABEL_OPTIONAL,
     .type = PROTOBUF_C_TYPE_MESSAGE,
     .offset = offsetof(tholder, node),
     .descriptor = &tnode_desc},
};
static const ProtobufCMessageDescriptor tholder_desc = {.magic =
                                                            PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
                                                        .name = "t.Holder",
                                                        .short_name = "Holder",
                                                        .c_name = "THolder",
                                                        .package_name = "t",
                                                        .sizeof_message = sizeof(tholder),
                                                        .n_fields = 1,
                                                        .fields = tholder_fields};

static void test_self_recursive_family(void **state)
{
    (void)state;
    doc x = load(&tholder_desc);
    /* an unknown package is its own namespace */
    assert_named(x.root, "record", "t", "FlatHolder");
    json_t *n = nullable(&x, field_type(x.root, "node"));
    for (int lvl = 1; lvl <= AVSC_MAX_LEVEL; lvl++) {
        char name[16];
        snprintf(name, sizeof name, "Node%d", lvl);
        assert_named(n, "record", "t", name);
        assert_string_equal(json_string_value(field_type(n, "value")), "int");
        if (lvl < AVSC_MAX_LEVEL) n = nullable(&x, field_type(n, "child"));
    }
    assert_false(has_field(n, "child"));
    assert_int_equal(json_object_size(x.defs), AVSC_MAX_LEVEL + 1);
    unload(&x);
}

/* Three messages that all refer to each other: no single one breaks every cycle. */
extern const ProtobufCMessageDescriptor tri_a, tri_b, tri_c;
#define TRI_FIELDS(n1, d1, n2, d2)                                                                 \
    {                                                                                              \
        {.name = n1,                                                                               \
         .id = 1,                                                                                  \
         .label = PROTOBUF_C_LABEL_OPTIONAL,                                                       \
         .type = PROTOBUF_C_TYPE_MESSAGE,                                                          \
         .offset = sizeof(ProtobufCMessage),                                                       \
         .descriptor = d1},                                                                        \
        {                                                                                          \
            .name = n2, .id = 2, .label = PROTOBUF_C_LABEL_OPTIONAL,                               \
            .type = PROTOBUF_C_TYPE_MESSAGE, .offset = sizeof(ProtobufCMessage) + sizeof(void *),  \
            .descriptor = d2                                                                       \
        }                                                                                          \
    }
static const ProtobufCFieldDescriptor tri_a_f[] = TRI_FIELDS("b", &tri_b, "c", &tri_c);
static const ProtobufCFieldDescriptor tri_b_f[] = TRI_FIELDS("a", &tri_a, "c", &tri_c);
static const ProtobufCFieldDescriptor tri_c_f[] = TRI_FIELDS("a", &tri_a, "b", &tri_b);
#define TRI_DESC(full, shortn, f)                                                                  \
    {                                                                                              \
        .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, .name = full, .short_name = shortn,         \
        .c_name = shortn, .package_name = "t", .sizeof_message = 64, .n_fields = 2, .fields = f    \
    }
const ProtobufCMessageDescriptor tri_a = TRI_DESC("t.A", "A", tri_a_f);
const ProtobufCMessageDescriptor tri_b = TRI_DESC("t.B", "B", tri_b_f);
const ProtobufCMessageDescriptor tri_c = TRI_DESC("t.C", "C", tri_c_f);

static void test_unbreakable_family_is_an_error(void **state)
{
    (void)state;
    avsc_schema *s = (avsc_schema *)1;
    char err[512] = "";
    assert_int_equal(avsc_schema_new(&tri_a, &s, err, sizeof err), -1);
    assert_null(s);
    assert_non_null(strstr(err, "t.A"));
    assert_non_null(strstr(err, "t.B"));
    assert_non_null(strstr(err, "t.C"));
    assert_non_null(strstr(err, "cycle"));
}

static void test_namespace_table(void **state)
{
    (void)state;
    assert_string_equal(avsc_namespace_of_package("event"), "ai.promoted.proto.event");
    assert_string_equal(avsc_namespace_of_package("delivery"), "ai.promoted.proto.delivery");
    assert_string_equal(avsc_namespace_of_package("common"), "ai.promoted.proto.common");
    assert_string_equal(avsc_namespace_of_package("google.protobuf"), "com.google.protobuf");
    /* the private Session/SessionProfile are event records in the reference schema */
    assert_string_equal(avsc_namespace_of_package("logproc.priv"), "ai.promoted.proto.event");
    assert_string_equal(avsc_namespace_of_package("other.pkg"), "other.pkg");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impression_record),
        cmocka_unit_test(test_struct_unrolled_to_depth_5),
        cmocka_unit_test(test_delivery_log_flat_request),
        cmocka_unit_test(test_nested_enum_names),
        cmocka_unit_test(test_log_request_names),
        cmocka_unit_test(test_self_recursive_family),
        cmocka_unit_test(test_unbreakable_family_is_an_error),
        cmocka_unit_test(test_namespace_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
