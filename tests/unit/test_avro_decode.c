/* avro_decode: Avro datums back into protobuf-c messages (the inverse of avenc_message), and
 * container file blocks.
 *
 * The round trips compare packed protobuf bytes: a message encoded with avenc_message and decoded
 * with avdec_message must pack to the same bytes as the original once the original is put in the
 * form the Avro row can hold (canon() below: written from the descriptors, independently of the
 * decoder's avsc layout walk, from the rules stated in avro_decode.h). Inputs: every wire vector
 * (tests/data/vectors/wire) as event.LogRequest, and event.JoinedEvent messages assembled from
 * the vectors' parts plus one with every top-level field set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <glob.h>
#include <jansson.h>
#include <zlib.h>

#include "delivery/delivery.pb-c.h"
#include "event/event.pb-c.h"
#include "formats/avro_decode.h"
#include "formats/avro_encode.h"
#include "formats/avro_file.h"
#include "formats/avro_schema.h"
#include "formats/pb_private.h"
#include "formats/pb_util.h"
#include "google/protobuf/struct.pb-c.h"
#include "logproc/join.pb-c.h"
#include "logproc/private.pb-c.h"

#define MAX_DATUM (16u << 20)

/* ---- vectors ----------------------------------------------------------------------------------
 */

typedef struct vecs {
    ProtobufCMessage **m; /* unpacked into the arena */
    char **names;
    size_t n;
} vecs;

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Every wire vector as a LogRequest unpacked with alloc. */
static void load_vectors(ProtobufCAllocator *alloc, vecs *out)
{
    const char *data = getenv("LOGPROC_TEST_DATA");
    char pattern[1024];
    snprintf(pattern, sizeof pattern, "%s/vectors/wire/*.pb", data && *data ? data : "tests/data");
    glob_t g;
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_true(g.gl_pathc > 100);
    out->m = calloc(g.gl_pathc, sizeof *out->m);
    out->names = calloc(g.gl_pathc, sizeof *out->names);
    out->n = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        size_t len;
        unsigned char *b = slurp(g.gl_pathv[i], &len);
        assert_non_null(b);
        ProtobufCMessage *m =
            protobuf_c_message_unpack(&event__log_request__descriptor, alloc, len, b);
        free(b);
        assert_non_null(m);
        out->names[out->n] = strdup(strrchr(g.gl_pathv[i], '/') + 1);
        out->m[out->n++] = m;
    }
    globfree(&g);
}

static void free_vectors(vecs *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->names[i]);
    free(v->names);
    free(v->m);
}

/* ---- the canonical form (the rules of avro_decode.h, from the descriptors) --------------------
 */

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

static int enum_zero_number(const ProtobufCEnumDescriptor *e)
{
    for (unsigned i = 0; i < e->n_values; i++)
        if (e->values[i].value == 0) return 0;
    return e->n_values ? e->values[0].value : 0;
}

static int enum_named(const ProtobufCEnumDescriptor *e, int v)
{
    return protobuf_c_enum_descriptor_get_value(e, v) != NULL;
}

static void canon(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    m->n_unknown_fields = 0; /* the private fields: not in the table (arena memory) */
    m->unknown_fields = NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        uint8_t *mem = (uint8_t *)m + f->offset;
        uint8_t *q = (uint8_t *)m + f->quantifier_offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t *n = (size_t *)q;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                ProtobufCMessage **arr = *(ProtobufCMessage ***)mem;
                for (size_t k = 0; k < *n; k++)
                    canon(arr[k]);
            } else if (f->type == PROTOBUF_C_TYPE_ENUM) {
                int *arr = *(int **)mem;
                size_t w = 0;
                for (size_t k = 0; k < *n; k++)
                    if (enum_named(f->descriptor, arr[k])) arr[w++] = arr[k];
                *n = w;
            }
            continue;
        }
        int oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
        if (oneof && *(uint32_t *)q != f->id) continue;
        int optional = f->label == PROTOBUF_C_LABEL_OPTIONAL;
        protobuf_c_boolean *has = !oneof && optional && f->type != PROTOBUF_C_TYPE_STRING &&
                                          f->type != PROTOBUF_C_TYPE_MESSAGE
                                      ? (protobuf_c_boolean *)q
                                      : NULL;
        int present = oneof || (has && *has);
        int clear = 0;
        switch (f->type) {
        case PROTOBUF_C_TYPE_MESSAGE: {
            ProtobufCMessage *sub = *(ProtobufCMessage **)mem;
            if (sub) canon(sub);
            break;
        }
        case PROTOBUF_C_TYPE_STRING: {
            char *s = *(char **)mem;
            if (s && !*s && (oneof || optional)) {
                if (oneof)
                    clear = 1;
                else
                    *(char **)mem = NULL;
            }
            break;
        }
        case PROTOBUF_C_TYPE_BYTES:
            clear = present && ((ProtobufCBinaryData *)mem)->len == 0;
            break;
        case PROTOBUF_C_TYPE_ENUM: {
            int v = *(int *)mem;
            clear =
                present && (!enum_named(f->descriptor, v) || v == enum_zero_number(f->descriptor));
            break;
        }
        default:
            clear = present && all_zero(mem, pb_type_size(f->type)) &&
                    !(d == &delivery__insertion__descriptor && f->id == 12);
            break;
        }
        if (clear) {
            if (oneof)
                *(uint32_t *)q = 0;
            else if (has)
                *has = 0;
        }
    }
    if (d == &delivery__insertion__descriptor) /* position: a 0 in the row reads as set */
        ((Delivery__Insertion *)m)->has_position = 1;
    if (d == &google__protobuf__value__descriptor) {
        Google__Protobuf__Value *v = (Google__Protobuf__Value *)m;
        if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET) {
            v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
            v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
        }
    }
}

/* ---- round trips ------------------------------------------------------------------------------
 */

typedef struct rt_counts {
    size_t messages, exact_pack, idempotent, cut, unrecognized;
} rt_counts;

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_int_equal(protobuf_c_message_pack(m, b), *len);
    return b;
}

/* Encodes m, decodes the datum, checks length, idempotence and the packed bytes against canon(m).
 * m is changed (canonicalised): it must live in an arena. */
static void round_trip(const avsc_schema *s, ProtobufCMessage *m, const char *name, rt_counts *c)
{
    char err[512];
    avenc_buf a, b;
    avenc_buf_init(&a, MAX_DATUM);
    avenc_buf_init(&b, MAX_DATUM);
    avenc_stats es = {0};
    if (avenc_message(s, m, &a, &es, err, sizeof err)) fail_msg("%s: encode: %s", name, err);
    /* the datum is followed by garbage: the decoder must stop where the datum ends */
    size_t dlen = a.len;
    assert_int_equal(rt_buf_append(&a, "\x05\x07\x09", 3), 0);
    ProtobufCMessage *d = NULL;
    size_t used = 0;
    avdec_stats ds = {0};
    int rc = avdec_message(s, a.data, a.len, NULL, &d, &used, &ds, err, sizeof err);
    if (rc) fail_msg("%s: decode: %s", name, err);
    assert_int_equal(used, dlen);
    assert_ptr_equal(d->descriptor, m->descriptor);
    c->messages++;
    if (es.enum_unrecognized) {
        c->unrecognized++;
        assert_true(ds.enum_unrecognized > 0);
    } else {
        /* the Avro row is a fixed point: decoding then encoding gives the same datum */
        assert_int_equal(avenc_message(s, d, &b, NULL, err, sizeof err), 0);
        assert_int_equal(b.len, dlen);
        assert_memory_equal(b.data, a.data, dlen);
        c->idempotent++;
    }
    if (es.depth_cut) {
        c->cut++;
    } else {
        canon(m);
        size_t lw, lg;
        uint8_t *want = pack(m, &lw), *got = pack(d, &lg);
        if (lw != lg || memcmp(want, got, lw))
            fail_msg("%s: packed bytes differ (%zu vs %zu bytes)", name, lg, lw);
        free(want);
        free(got);
        c->exact_pack++;
    }
    protobuf_c_message_free_unpacked(d, NULL);
    avenc_buf_free(&a);
    avenc_buf_free(&b);
}

static void test_log_request_vectors(void **state)
{
    (void)state;
    char err[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    pb_arena *arena = pb_arena_new(1 << 20, 1u << 30);
    vecs v;
    load_vectors(pb_arena_allocator(arena), &v);
    rt_counts c = {0};
    for (size_t i = 0; i < v.n; i++)
        round_trip(s, v.m[i], v.names[i], &c);
    /* not vacuous: nearly every vector is compared byte for byte */
    print_message("%zu vectors: %zu packed byte for byte, %zu datums re-encoded identically, "
                  "%zu with unnamed enum numbers, %zu cut below the depth limit\n",
                  c.messages, c.exact_pack, c.idempotent, c.unrecognized, c.cut);
    assert_int_equal(c.messages, v.n);
    assert_int_equal(c.exact_pack + c.cut, v.n);
    assert_true(c.exact_pack + 5 >= v.n);
    assert_int_equal(c.idempotent + c.unrecognized, v.n);
    assert_true(c.idempotent >= 50);
    free_vectors(&v);
    pb_arena_free(arena);
    avsc_schema_free(s);
}

/* A JoinedEvent made of the parts of one LogRequest (borrowed pointers into the arena). */
static void joined_from(const Event__LogRequest *lr, Event__JoinedEvent *je,
                        Event__JoinedIdentifiers *ids)
{
    event__joined_event__init(je);
    event__joined_identifiers__init(ids);
    ids->platform_id = lr->platform_id;
    ids->has_platform_id = lr->has_platform_id;
    ids->log_user_id = lr->user_info ? lr->user_info->log_user_id : NULL;
    je->ids = ids;
    je->timing = lr->timing;
    je->user = lr->n_user ? lr->user[0] : NULL;
    je->view = lr->n_view ? lr->view[0] : NULL;
    je->auto_view = lr->n_auto_view ? lr->auto_view[0] : NULL;
    if (lr->n_delivery_log) {
        Delivery__DeliveryLog *dl = lr->delivery_log[0];
        je->request = dl->request;
        je->response = dl->response;
        if (dl->response && dl->response->n_insertion)
            je->response_insertion = dl->response->insertion[0];
        if (dl->request && dl->request->n_insertion)
            je->request_insertion = dl->request->insertion[0];
        je->api_execution = dl->execution;
    }
    je->impression = lr->n_impression ? lr->impression[0] : NULL;
    je->action = lr->n_action ? lr->action[0] : NULL;
}

static void test_joined_events(void **state)
{
    (void)state;
    char err[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__joined_event__descriptor, &s, err, sizeof err), 0);
    pb_arena *arena = pb_arena_new(1 << 20, 1u << 30);
    vecs v;
    load_vectors(pb_arena_allocator(arena), &v);
    rt_counts c = {0};
    size_t with_action = 0, with_request = 0;
    for (size_t i = 0; i < v.n; i++) {
        Event__JoinedEvent je;
        Event__JoinedIdentifiers ids;
        joined_from((Event__LogRequest *)v.m[i], &je, &ids);
        with_action += je.action != NULL;
        with_request += je.request != NULL;
        round_trip(s, &je.base, v.names[i], &c);
    }
    assert_true(with_action > 10 && with_request > 10);
    assert_true(c.exact_pack + 5 >= v.n);

    /* the declared private copies (session, session_profile) and the latest impressions are
     * columns of the joined tables: they survive */
    Event__JoinedEvent je = EVENT__JOINED_EVENT__INIT;
    Logproc__Priv__Session sess = LOGPROC__PRIV__SESSION__INIT;
    Logproc__Priv__SessionProfile sp = LOGPROC__PRIV__SESSION_PROFILE__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    sess.session_id = "s-1";
    sess.start_epoch_millis = 1601596151000;
    sess.has_start_epoch_millis = 1;
    sp.session_id = "s-1";
    sp.platform_id = 7;
    sp.has_platform_id = 1;
    ids.platform_id = 7;
    ids.has_platform_id = 1;
    ids.log_user_id = "lu-1";
    ids.impression_id = "imp-1";
    t.log_timestamp = 1601596155000;
    t.has_log_timestamp = 1;
    je.ids = &ids;
    je.timing = &t;
    je.session = &sess;
    je.session_profile = &sp;
    rt_counts c2 = {0};
    round_trip(s, &je.base, "hand-made", &c2);
    assert_int_equal(c2.exact_pack, 1);
    /* and the decoded message carries them */
    avenc_buf a;
    avenc_buf_init(&a, MAX_DATUM);
    assert_int_equal(avenc_message(s, &je.base, &a, NULL, err, sizeof err), 0);
    ProtobufCMessage *d;
    size_t used;
    assert_int_equal(avdec_message(s, a.data, a.len, NULL, &d, &used, NULL, err, sizeof err), 0);
    Event__JoinedEvent *dj = (Event__JoinedEvent *)d;
    assert_non_null(dj->session);
    assert_string_equal(dj->session->session_id, "s-1");
    assert_int_equal(dj->session_profile->platform_id, 7);
    assert_string_equal(dj->ids->log_user_id, "lu-1");
    assert_int_equal(dj->timing->log_timestamp, 1601596155000);
    protobuf_c_message_free_unpacked(d, NULL);
    avenc_buf_free(&a);
    free_vectors(&v);
    pb_arena_free(arena);
    avsc_schema_free(s);
}

/* What the Avro row cannot hold, pinned: a set zero, an empty string, an unnamed enum number and
 * the private unknown fields come back absent; Insertion.position 0 comes back set. */
static void test_lossy_rules(void **state)
{
    (void)state;
    char err[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    Event__Action act = EVENT__ACTION__INIT, *acts[] = {&act};
    Delivery__DeliveryLog dl = DELIVERY__DELIVERY_LOG__INIT, *dls[] = {&dl};
    Delivery__Response resp = DELIVERY__RESPONSE__INIT;
    Delivery__Insertion ins = DELIVERY__INSERTION__INIT, *inss[] = {&ins};
    lr.platform_id = 0;
    lr.has_platform_id = 1; /* a set zero */
    lr.user_info = &ui;
    ui.log_user_id = ""; /* an empty string */
    ui.user_id = "u-1";
    lr.n_action = 1;
    lr.action = acts;
    act.action_type = (Event__ActionType)987654; /* not named by the .proto */
    act.has_action_type = 1;
    act.action_id = "a-1";
    lr.n_delivery_log = 1;
    lr.delivery_log = dls;
    dl.response = &resp;
    resp.n_insertion = 1;
    resp.insertion = inss;
    ins.content_id = "c-1"; /* position unset */
    assert_int_equal(
        pb_private_add_session(&lr, &(Logproc__Priv__Session)LOGPROC__PRIV__SESSION__INIT, NULL),
        0);
    assert_true(lr.base.n_unknown_fields > 0);
    avenc_buf a;
    avenc_buf_init(&a, MAX_DATUM);
    assert_int_equal(avenc_message(s, &lr.base, &a, NULL, err, sizeof err), 0);
    ProtobufCMessage *m;
    size_t used;
    avdec_stats st = {0};
    assert_int_equal(avdec_message(s, a.data, a.len, NULL, &m, &used, &st, err, sizeof err), 0);
    Event__LogRequest *d = (Event__LogRequest *)m;
    assert_false(d->has_platform_id);
    assert_null(d->user_info->log_user_id);
    assert_string_equal(d->user_info->user_id, "u-1");
    assert_false(d->action[0]->has_action_type);
    assert_int_equal(st.enum_unrecognized, 1);
    assert_string_equal(d->action[0]->action_id, "a-1");
    assert_true(d->delivery_log[0]->response->insertion[0]->has_position);
    assert_int_equal(d->delivery_log[0]->response->insertion[0]->position, 0);
    assert_int_equal(d->base.n_unknown_fields, 0);
    protobuf_c_message_free_unpacked(m, NULL);
    pb_private_clear(&lr.base, NULL);
    avenc_buf_free(&a);
    avsc_schema_free(s);
}

/* ---- bad datums -------------------------------------------------------------------------------
 */

static void expect_bad(const avsc_schema *s, const uint8_t *p, size_t n, const char *needle)
{
    char err[512] = "";
    ProtobufCMessage *m = NULL;
    size_t used;
    int rc = avdec_message(s, p, n, NULL, &m, &used, NULL, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_null(m);
    if (needle && !strstr(err, needle)) fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void test_bad_datums(void **state)
{
    (void)state;
    char err[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    const avsc_record *root = avsc_schema_root(s);
    /* the layout the hand-made bytes below rely on */
    assert_string_equal(root->fields[0].name, "platform_id");
    assert_int_equal(root->fields[0].kind, AVSC_LONG);
    assert_string_equal(root->fields[1].name, "user_info");
    assert_int_equal(root->fields[1].kind, AVSC_RECORD);
    const avsc_record *ui = root->fields[1].record;
    assert_int_equal(ui->fields[0].kind, AVSC_STRING);

    expect_bad(s, (const uint8_t *)"", 0, "truncated");
    expect_bad(s, (const uint8_t *)"\x02\x04", 2, "union branch out of range");
    expect_bad(s, (const uint8_t *)"\x02\x01", 2, "union branch out of range"); /* -1 */
    expect_bad(s, (const uint8_t *)"\x02\x02\x03", 3, "negative length");
    expect_bad(s,
               (const uint8_t *)"\x02\x02\x06"
                                "a\0b",
               6, "NUL byte");
    expect_bad(s,
               (const uint8_t *)"\x02\x02\x40"
                                "ab",
               5, "truncated");
    static const uint8_t long11[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0x01};
    expect_bad(s, long11, sizeof long11, "varint");

    /* every strict prefix of a real datum fails; random corruption never crashes */
    pb_arena *arena = pb_arena_new(1 << 20, 1u << 30);
    vecs v;
    load_vectors(pb_arena_allocator(arena), &v);
    avenc_buf a;
    avenc_buf_init(&a, MAX_DATUM);
    uint32_t seed = 12345;
    size_t decoded_mutants = 0;
    for (size_t i = 0; i < v.n; i++) {
        avenc_buf_clear(&a);
        assert_int_equal(avenc_message(s, v.m[i], &a, NULL, err, sizeof err), 0);
        size_t step = a.len > 400 ? a.len / 200 : 1;
        for (size_t k = 0; k < a.len; k += step)
            expect_bad(s, a.data, k, NULL);
        uint8_t *mut = malloc(a.len);
        for (int r = 0; r < 20; r++) {
            memcpy(mut, a.data, a.len);
            for (int f = 0; f < 3; f++) {
                seed = seed * 1103515245u + 12345u;
                mut[(seed >> 8) % a.len] ^= (uint8_t)(1u << ((seed >> 4) & 7));
            }
            ProtobufCMessage *m = NULL;
            size_t used = 0;
            int rc = avdec_message(s, mut, a.len, NULL, &m, &used, NULL, err, sizeof err);
            assert_true(rc == 0 || rc == -1);
            if (rc == 0) {
                assert_true(used <= a.len);
                size_t n;
                free(pack(m, &n));
                protobuf_c_message_free_unpacked(m, NULL);
                decoded_mutants++;
            }
        }
        free(mut);
    }
    (void)decoded_mutants;

    /* an allocator that refuses: AVDEC_E_NOMEM, not a crash */
    pb_arena *tiny = pb_arena_new(256, 512);
    avenc_buf_clear(&a);
    assert_int_equal(avenc_message(s, v.m[v.n - 1], &a, NULL, err, sizeof err), 0);
    ProtobufCMessage *m;
    size_t used;
    int big = 0;
    for (size_t i = 0; i < v.n && !big; i++) {
        avenc_buf_clear(&a);
        assert_int_equal(avenc_message(s, v.m[i], &a, NULL, err, sizeof err), 0);
        big = a.len > 2048;
    }
    assert_true(big);
    assert_int_equal(
        avdec_message(s, a.data, a.len, pb_arena_allocator(tiny), &m, &used, NULL, err, sizeof err),
        AVDEC_E_NOMEM);
    assert_non_null(strstr(err, "out of memory"));
    pb_arena_free(tiny);
    avenc_buf_free(&a);
    free_vectors(&v);
    pb_arena_free(arena);
    avsc_schema_free(s);
}

/* ---- the schema check -------------------------------------------------------------------------
 */

static void test_schema_matches(void **state)
{
    (void)state;
    char err[512];
    avsc_schema *lr, *je;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &lr, err, sizeof err), 0);
    assert_int_equal(avsc_schema_new(&event__joined_event__descriptor, &je, err, sizeof err), 0);
    size_t ll, jl;
    const char *l = avsc_schema_json(lr, &ll), *j = avsc_schema_json(je, &jl);
    assert_int_equal(avdec_schema_matches(l, ll, l, ll), 1);
    /* the same document written another way */
    json_t *doc = json_loadb(l, ll, 0, NULL);
    char *pretty = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    assert_int_equal(avdec_schema_matches(pretty, strlen(pretty), l, ll), 1);
    /* another record type, a changed name, not JSON */
    assert_int_equal(avdec_schema_matches(j, jl, l, ll), 0);
    json_object_set_new(doc, "name", json_string("LogRequest2"));
    char *renamed = json_dumps(doc, JSON_COMPACT);
    assert_int_equal(avdec_schema_matches(renamed, strlen(renamed), l, ll), 0);
    assert_int_equal(avdec_schema_matches("{not json", 9, l, ll), 0);
    free(pretty);
    free(renamed);
    json_decref(doc);
    avsc_schema_free(lr);
    avsc_schema_free(je);
}

/* ---- container files --------------------------------------------------------------------------
 */

static void put_long(avenc_buf *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t t[10];
    size_t n = 0;
    while (z >= 0x80) {
        t[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    t[n++] = (uint8_t)z;
    assert_int_equal(rt_buf_append(b, t, n), 0);
}

static void put_str(avenc_buf *b, const char *s, size_t n)
{
    put_long(b, (int64_t)n);
    assert_int_equal(rt_buf_append(b, s, n), 0);
}

/* A deflate container file written here (logproc's writer has no deflate): two blocks. */
static void deflate_file(const char *schema, size_t slen, const avenc_buf *datums,
                         const size_t *ends, size_t n, avenc_buf *out)
{
    static const uint8_t sync[16] = "0123456789abcdef";
    assert_int_equal(rt_buf_append(out, "Obj\x01", 4), 0);
    put_long(out, 2);
    put_str(out, "avro.codec", 10);
    put_str(out, "deflate", 7);
    put_str(out, "avro.schema", 11);
    put_str(out, schema, slen);
    put_long(out, 0);
    assert_int_equal(rt_buf_append(out, sync, 16), 0);
    size_t half = n / 2, from = 0;
    for (int blk = 0; blk < 2; blk++) {
        size_t lo = blk ? half : 0, hi = blk ? n : half;
        size_t start = from, end = hi ? ends[hi - 1] : 0;
        uLongf cap = compressBound((uLong)(end - start)) + 64;
        uint8_t *z = malloc(cap);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
        zs.next_in = datums->data + start;
        zs.avail_in = (uInt)(end - start);
        zs.next_out = z;
        zs.avail_out = (uInt)cap;
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        size_t zl = cap - zs.avail_out;
        deflateEnd(&zs);
        put_long(out, (int64_t)(hi - lo));
        put_long(out, (int64_t)zl);
        assert_int_equal(rt_buf_append(out, z, zl), 0);
        assert_int_equal(rt_buf_append(out, sync, 16), 0);
        free(z);
        from = end;
    }
}

/* Reads every block of the file and decodes its datums; returns the datums decoded, counts the
 * bad spans. */
static size_t read_all(const avsc_schema *s, const uint8_t *buf, size_t len, size_t *bad_spans,
                       const avenc_buf *want, const size_t *ends)
{
    char err[512];
    avdec_file *f;
    assert_int_equal(avdec_file_open(buf, len, "t.avro", 0, 4096, &f, err, sizeof err), 0);
    size_t got = 0;
    *bad_spans = 0;
    avdec_block b;
    avdec_bad bad;
    int r;
    while ((r = avdec_file_next_block(f, &b, &bad)) != 0) {
        if (r == 2) {
            (*bad_spans)++;
            assert_non_null(strstr(bad.error, "t.avro: block at byte"));
            assert_true(bad.raw_len <= 4096);
            continue;
        }
        const uint8_t *p = b.data, *end = b.data + b.len;
        for (int64_t k = 0; k < b.count; k++) {
            ProtobufCMessage *m;
            size_t used;
            assert_int_equal(
                avdec_message(s, p, (size_t)(end - p), NULL, &m, &used, NULL, err, sizeof err), 0);
            protobuf_c_message_free_unpacked(m, NULL);
            if (want) { /* datum i of the file is datum i of want, unless a block was lost */
                size_t i = got, start = i ? ends[i - 1] : 0;
                if (used == ends[i] - start && !memcmp(p, want->data + start, used)) got++;
            } else {
                got++;
            }
            p += used;
        }
        assert_ptr_equal(p, end);
    }
    avdec_file_free(f);
    return got;
}

static void test_container_files(void **state)
{
    (void)state;
    char err[512];
    avsc_schema *s;
    assert_int_equal(avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err), 0);
    size_t slen;
    const char *sj = avsc_schema_json(s, &slen);
    pb_arena *arena = pb_arena_new(1 << 20, 1u << 30);
    vecs v;
    load_vectors(pb_arena_allocator(arena), &v);
    avenc_buf all;
    avenc_buf_init(&all, 256u << 20);
    size_t *ends = calloc(v.n, sizeof *ends);
    for (size_t i = 0; i < v.n; i++) {
        assert_int_equal(avenc_message(s, v.m[i], &all, NULL, err, sizeof err), 0);
        ends[i] = all.len;
    }
    char dir[] = "/tmp/test_avro_decode.XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *codecs[] = {"snappy", "null"};
    for (int c = 0; c < 2; c++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.avro", dir, codecs[c]);
        avro_file_opts o = {.codec = codecs[c], .block_bytes = 8192};
        avro_file_out *w;
        assert_int_equal(avro_file_out_new(path, sj, slen, &o, &w, err, sizeof err), 0);
        for (size_t i = 0; i < v.n; i++) {
            size_t st = i ? ends[i - 1] : 0;
            assert_int_equal(avro_file_out_append(w, all.data + st, ends[i] - st, err, sizeof err),
                             0);
        }
        assert_int_equal(avro_file_out_close(w, err, sizeof err), 0);
        size_t len;
        uint8_t *buf = slurp(path, &len);
        avdec_file *f;
        assert_int_equal(avdec_file_open(buf, len, path, 0, 0, &f, err, sizeof err), 0);
        assert_string_equal(avdec_file_codec(f), codecs[c]);
        size_t hl;
        const char *hs = avdec_file_schema(f, &hl);
        assert_int_equal(avdec_schema_matches(hs, hl, sj, slen), 1);
        avdec_file_free(f);
        size_t bad;
        assert_int_equal(read_all(s, buf, len, &bad, &all, ends), v.n);
        assert_int_equal(bad, 0);

        /* a truncated file: the last block is a bad span, everything before it reads */
        size_t got = read_all(s, buf, len - 7, &bad, &all, ends);
        assert_int_equal(bad, 1);
        assert_true(got > 0 && got < v.n);

        /* a damaged sync marker in the middle: one bad span, the blocks after it still read */
        avdec_file *f2;
        assert_int_equal(avdec_file_open(buf, len, path, 0, 0, &f2, err, sizeof err), 0);
        avdec_block b;
        avdec_bad bb;
        assert_int_equal(avdec_file_next_block(f2, &b, &bb), 1);
        assert_int_equal(avdec_file_next_block(f2, &b, &bb), 1);
        size_t second_end = (size_t)b.end;
        avdec_file_free(f2);
        buf[second_end - 3] ^= 0x55;
        got = read_all(s, buf, len, &bad, NULL, NULL);
        assert_int_equal(bad, 1);
        assert_true(got > 0 && got < v.n);
        free(buf);
        unlink(path);
    }
    /* deflate */
    avenc_buf df;
    avenc_buf_init(&df, 256u << 20);
    deflate_file(sj, slen, &all, ends, v.n, &df);
    size_t bad;
    assert_int_equal(read_all(s, df.data, df.len, &bad, &all, ends), v.n);
    assert_int_equal(bad, 0);
    df.data[df.len - 20] ^= 0xff; /* inside the second block's deflate stream */
    size_t got = read_all(s, df.data, df.len, &bad, NULL, NULL);
    assert_true(bad == 1 || got == v.n); /* a flip may still inflate; never a crash */
    avenc_buf_free(&df);

    /* headers that are not Avro container files */
    avdec_file *f;
    assert_int_equal(
        avdec_file_open((const uint8_t *)"PAR1", 4, "x.avro", 0, 0, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "x.avro"));
    avenc_buf h;
    avenc_buf_init(&h, 1 << 20);
    assert_int_equal(rt_buf_append(&h, "Obj\x01", 4), 0);
    put_long(&h, 1);
    put_str(&h, "avro.codec", 10);
    put_str(&h, "zstandard", 9);
    put_long(&h, 0);
    assert_int_equal(rt_buf_append(&h, "0123456789abcdef", 16), 0);
    assert_int_equal(avdec_file_open(h.data, h.len, "z.avro", 0, 0, &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "zstandard"));
    avenc_buf_free(&h);

    rmdir(dir);
    free(ends);
    avenc_buf_free(&all);
    free_vectors(&v);
    pb_arena_free(arena);
    avsc_schema_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_request_vectors), cmocka_unit_test(test_joined_events),
        cmocka_unit_test(test_lossy_rules),         cmocka_unit_test(test_bad_datums),
        cmocka_unit_test(test_schema_matches),      cmocka_unit_test(test_container_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
