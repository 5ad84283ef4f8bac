/* Every wire vector (the .pb files of tests/data/vectors/wire) as event.LogRequest through the
 * derived schema, the encoder and a container file, read back by avro-c's container reader and
 * compared field by field with the decoded protobuf message (walking both by field name,
 * independently of the encoder's layout), and re-encoded by avro-c to the same datum bytes.
 *
 * Helper mode for tests/integration/test_avro_independent_reader.py:
 *   test_avro_roundtrip --write DIR
 * writes DIR/log_request.avro (every vector, in file name order, snappy, default blocks),
 * DIR/log_request_null.avro (the same with the null codec and small blocks),
 * DIR/vectors.txt (the vector names in record order) and one file per derived table
 * (DIR/<schema name>.avro, the records listed in derived_rows() below), then exits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <glob.h>

#include "event/event.pb-c.h"
#include "formats/avro_encode.h"
#include "formats/avro_file.h"
#include "formats/avro_schema.h"
#include "formats/pb_util.h"
#include "formats/record_file.h"
#include "schemas_embedded.h"

/* ---- vectors --------------------------------------------------------------------------------- */

typedef struct vec {
    char *name;
    Event__LogRequest *msg;
    avenc_buf datum;
} vec;

typedef struct vecs {
    vec *v;
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

/* Loads and encodes every vector; returns -1 with a message on stderr when anything fails. */
static int load_vectors(const avsc_schema *s, vecs *out)
{
    const char *data = getenv("LOGPROC_TEST_DATA");
    char pattern[1024];
    snprintf(pattern, sizeof pattern, "%s/vectors/wire/*.pb", data && *data ? data : "tests/data");
    glob_t g;
    if (glob(pattern, 0, NULL, &g) || g.gl_pathc == 0) {
        fprintf(stderr, "no vectors match %s\n", pattern);
        return -1;
    }
    out->v = calloc(g.gl_pathc, sizeof *out->v);
    out->n = 0;
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) {
        size_t len;
        unsigned char *bytes = slurp(g.gl_pathv[i], &len);
        vec *v = &out->v[out->n];
        const char *base = strrchr(g.gl_pathv[i], '/');
        v->name = strdup(base ? base + 1 : g.gl_pathv[i]);
        v->msg = bytes ? event__log_request__unpack(NULL, len, bytes) : NULL;
        free(bytes);
        out->n++;
        if (!v->msg) {
            fprintf(stderr, "%s does not decode as event.LogRequest\n", g.gl_pathv[i]);
            rc = -1;
            break;
        }
        char err[512];
        avenc_buf_init(&v->datum, AVRO_FILE_DEFAULT_MAX_DATUM_BYTES);
        if (avenc_message(s, &v->msg->base, &v->datum, NULL, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", v->name, err);
            rc = -1;
        }
    }
    globfree(&g);
    return rc;
}

/* Loads every LogRequest of a record file (logproc generate logs --output) instead. */
static int load_record_file(const avsc_schema *s, const char *path, vecs *out)
{
    char err[512];
    recfile_reader *r;
    if (recfile_reader_open(path, 0, &r, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    size_t cap = 1024;
    out->v = calloc(cap, sizeof *out->v);
    out->n = 0;
    recfile_record rec;
    recfile_bad bad;
    int rc, fail = 0;
    while (!fail && (rc = recfile_next(r, &rec, &bad)) != 0) {
        if (rc != 1) continue;
        if (out->n == cap) {
            cap *= 2;
            out->v = realloc(out->v, cap * sizeof *out->v);
        }
        vec *v = &out->v[out->n++];
        memset(v, 0, sizeof *v);
        v->name = strdup("record");
        v->msg = event__log_request__unpack(NULL, rec.value_len, rec.value);
        avenc_buf_init(&v->datum, AVRO_FILE_DEFAULT_MAX_DATUM_BYTES);
        if (!v->msg || avenc_message(s, &v->msg->base, &v->datum, NULL, err, sizeof err)) fail = 1;
    }
    recfile_reader_close(r);
    return fail || out->n == 0 ? -1 : 0;
}

static void free_vectors(vecs *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].name);
        if (vs->v[i].msg) event__log_request__free_unpacked(vs->v[i].msg, NULL);
        avenc_buf_free(&vs->v[i].datum);
    }
    free(vs->v);
}

static int write_container(const char *path, const avsc_schema *s, const vecs *vs,
                           const avro_file_opts *o, char *err, size_t errlen)
{
    size_t jl;
    const char *json = avsc_schema_json(s, &jl);
    avro_file_out *w;
    if (avro_file_out_new(path, json, jl, o, &w, err, errlen)) return -1;
    for (size_t i = 0; i < vs->n; i++)
        if (avro_file_out_append(w, vs->v[i].datum.data, vs->v[i].datum.len, err, errlen)) {
            avro_file_out_free(w);
            return -1;
        }
    return avro_file_out_close(w, err, errlen);
}

/* ---- comparing a protobuf message with the avro-c value read back ---------------------------- */

typedef struct walk {
    const char *vector;
    char path[1024];
    uint64_t cut; /* values missing from the Avro side because of the depth limit */
} walk;

static void cmp_message(walk *w, const ProtobufCMessage *m, avro_value_t *rec);

static void mismatch(walk *w, const char *what)
{
    fail_msg("%s: %s at %s", w->vector, what, w->path);
}

/* The value of one element (index i) of field f, compared with the avro value v. */
static void cmp_scalar(walk *w, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                       size_t i, int present, avro_value_t *v)
{
    const void *p = present ? pb_field_value(m, f, i) : NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        int32_t want = 0, got;
        if (p) memcpy(&want, p, 4);
        if (avro_value_get_int(v, &got) || got != want) mismatch(w, "int differs");
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        int64_t want = 0, got;
        if (p) memcpy(&want, p, 8);
        if (avro_value_get_long(v, &got) || got != want) mismatch(w, "long differs");
        break;
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float want = 0, got;
        if (p) memcpy(&want, p, 4);
        if (avro_value_get_float(v, &got) || memcmp(&got, &want, 4)) mismatch(w, "float differs");
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double want = 0, got;
        if (p) memcpy(&want, p, 8);
        if (avro_value_get_double(v, &got) || memcmp(&got, &want, 8)) mismatch(w, "double differs");
        break;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        int want = p ? *(const protobuf_c_boolean *)p != 0 : 0, got;
        if (avro_value_get_boolean(v, &got) || got != want) mismatch(w, "boolean differs");
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *want = p ? *(const char *const *)p : NULL, *got;
        size_t n;
        if (!want) want = "";
        if (avro_value_get_string(v, &got, &n) || n != strlen(want) + 1 || memcmp(got, want, n))
            mismatch(w, "string differs");
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *want = p;
        const void *got;
        size_t n;
        size_t wl = want ? want->len : 0;
        if (avro_value_get_bytes(v, &got, &n) || n != wl || (wl && memcmp(got, want->data, wl)))
            mismatch(w, "bytes differ");
        break;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t num = 0;
        if (p) memcpy(&num, p, 4);
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, num);
        const char *want = ev ? ev->name : "UNRECOGNIZED";
        int idx;
        if (avro_value_get_enum(v, &idx)) mismatch(w, "not an enum");
        const char *got = avro_schema_enum_get(avro_value_get_schema(v), idx);
        if (!got || strcmp(got, want)) mismatch(w, "enum symbol differs");
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
}

static void cmp_field(walk *w, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                      avro_value_t *v)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = pb_field_count(m, f), got;
        if (avro_value_get_size(v, &got) || got != n) mismatch(w, "array length differs");
        size_t base = strlen(w->path);
        for (size_t i = 0; i < n; i++) {
            avro_value_t e;
            snprintf(w->path + base, sizeof w->path - base, "[%zu]", i);
            if (avro_value_get_by_index(v, i, &e, NULL)) mismatch(w, "missing array item");
            if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                cmp_message(w, *(const ProtobufCMessage *const *)pb_field_value(m, f, i), &e);
            else
                cmp_scalar(w, m, f, i, 1, &e);
        }
        w->path[base] = 0;
        return;
    }
    int present = pb_field_present(m, f);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        int disc;
        if (avro_value_get_discriminant(v, &disc)) mismatch(w, "message field is not a union");
        if (disc != present)
            mismatch(w, present ? "present message written as null"
                                : "absent message not written as null");
        if (present) {
            avro_value_t b;
            avro_value_get_current_branch(v, &b);
            cmp_message(w, *(const ProtobufCMessage *const *)pb_field_value(m, f, 0), &b);
        }
        return;
    }
    cmp_scalar(w, m, f, 0, present, v);
}

static void cmp_message(walk *w, const ProtobufCMessage *m, avro_value_t *rec)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *rname = avro_schema_name(avro_value_get_schema(rec));
    size_t n;
    if (avro_value_get_size(rec, &n)) mismatch(w, "not a record");
    size_t base = strlen(w->path);
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        avro_value_t c;
        const char *name;
        avro_value_get_by_index(rec, i, &c, &name);
        snprintf(w->path + base, sizeof w->path - base, ".%s", name);
        const ProtobufCFieldDescriptor *f = pb_field_by_name(d, name);
        if (!f) mismatch(w, "Avro field without a protobuf field");
        /* the Avro fields follow the protobuf fields in number order */
        unsigned fi = (unsigned)(f - d->fields);
        if (fi < seen) mismatch(w, "field out of order");
        seen = fi + 1;
        cmp_field(w, m, f, &c);
    }
    w->path[base] = 0;
    if (n == d->n_fields) return;
    /* only the depth-5 Value leaves fields out: its nested struct_value and list_value */
    if (strcmp(d->name, "google.protobuf.Value") || strcmp(rname, "Value5"))
        mismatch(w, "record has fewer fields than its message");
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        avro_value_t c;
        if (avro_value_get_by_name(rec, f->name, &c, NULL) == 0) continue;
        if (strcmp(f->name, "struct_value") && strcmp(f->name, "list_value"))
            mismatch(w, "a field other than struct_value/list_value is missing");
        if (pb_field_present(m, f)) w->cut++;
    }
}

/* ---- the test -------------------------------------------------------------------------------- */

static void test_wire_vectors_round_trip(void **state)
{
    (void)state;
    char err[512];
    avsc_schema *s;
    if (avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err)) fail_msg("%s", err);
    vecs vs = {0};
    if (load_vectors(s, &vs)) fail_msg("loading the vectors failed");
    assert_true(vs.n >= 150);

    char dir[] = "/tmp/test_avro_roundtrip.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/log_request.avro", dir);
    avro_file_opts o = {.block_bytes = 16 * 1024}; /* several blocks */
    if (write_container(path, s, &vs, &o, err, sizeof err)) fail_msg("%s", err);

    avro_file_reader_t r;
    if (avro_file_reader(path, &r)) fail_msg("avro-c cannot open %s: %s", path, avro_strerror());
    avro_schema_t ws = avro_file_reader_get_writer_schema(r);
    assert_true(avro_schema_equal(ws, avsc_schema_avro(s)));
    avro_value_iface_t *iface = avro_generic_class_from_schema(ws);
    avro_value_t v;
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    size_t i = 0;
    uint64_t cut = 0;
    char *again = malloc(AVRO_FILE_DEFAULT_MAX_DATUM_BYTES);
    while (avro_file_reader_read_value(r, &v) == 0) {
        if (i >= vs.n) fail_msg("more records than vectors");
        walk w = {.vector = vs.v[i].name};
        snprintf(w.path, sizeof w.path, "LogRequest");
        cmp_message(&w, &vs.v[i].msg->base, &v);
        cut += w.cut;
        /* avro-c's encoding of what it read is exactly our datum */
        avro_writer_t aw = avro_writer_memory(again, AVRO_FILE_DEFAULT_MAX_DATUM_BYTES);
        assert_int_equal(avro_value_write(aw, &v), 0);
        size_t len = (size_t)avro_writer_tell(aw);
        avro_writer_free(aw);
        if (len != vs.v[i].datum.len || memcmp(again, vs.v[i].datum.data, len))
            fail_msg("%s: avro-c re-encodes the record differently", vs.v[i].name);
        i++;
    }
    assert_int_equal(i, vs.n);
    /* the public vectors nest Structs less than 5 deep */
    assert_int_equal(cut, 0);
    free(again);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(ws);
    avro_file_reader_close(r);
    remove(path);
    remove(dir);
    free_vectors(&vs);
    avsc_schema_free(s);
}

/* ---- helper mode ----------------------------------------------------------------------------- */

static int write_derived(const char *dir, char *err, size_t errlen)
{
    static const char *const names[] = {"log_user_user", "delivery_log_ids",
                                        "request_insertion_ids", "response_insertion_ids",
                                        "invalid_record"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *schema = embedded_schema(names[k]);
        if (!schema) {
            snprintf(err, errlen, "schemas/%s.avsc is not embedded", names[k]);
            return -1;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.avro", dir, names[k]);
        avro_file_out *w;
        if (avro_file_out_new(path, schema, strlen(schema), NULL, &w, err, errlen)) return -1;
        avenc_buf b;
        avenc_buf_init(&b, 1 << 20);
        int rc = 0;
        /* the rows the Python test expects (keep the two in step) */
        for (int i = 0; i < 3 && !rc; i++) {
            char s1[32], s2[32];
            snprintf(s1, sizeof s1, "id-%d", i);
            snprintf(s2, sizeof s2, "\xc3\xbc-%d", i);
            avenc_buf_clear(&b);
            switch (k) {
            case 0: {
                avenc_log_user_user r = {i - 1, 1663099208000 + i, s1, s2};
                rc = avenc_log_user_user_datum(&r, &b, err, errlen);
                break;
            }
            case 1: {
                avenc_delivery_log_ids r = {i, 100 + i, s1, s2, "req", NULL, i + 1, "q", "ua"};
                rc = avenc_delivery_log_ids_datum(&r, &b, err, errlen);
                break;
            }
            case 2: {
                avenc_request_insertion_ids r = {i, 100 + i, "req", s1, i != 1, i * 10};
                rc = avenc_request_insertion_ids_datum(&r, &b, err, errlen);
                break;
            }
            case 3: {
                avenc_response_insertion_ids r = {i, 100 + i, "req", s1, s2, i};
                rc = avenc_response_insertion_ids_datum(&r, &b, err, errlen);
                break;
            }
            default: {
                uint8_t raw[3] = {0, (uint8_t)i, 0xff};
                avenc_invalid_record r = {"in.rec", -1, 64 * i, i ? 1000 * i : -1, s1, raw, 3, 3};
                rc = avenc_invalid_record_datum(&r, &b, err, errlen);
                break;
            }
            }
            if (!rc) rc = avro_file_out_append(w, b.data, b.len, err, errlen);
        }
        avenc_buf_free(&b);
        if (rc) {
            avro_file_out_free(w);
            return -1;
        }
        if (avro_file_out_close(w, err, errlen)) return -1;
    }
    return 0;
}

static int helper_write(const char *dir)
{
    char err[1536] = "loading the wire vectors failed (is LOGPROC_TEST_DATA set?)";
    avsc_schema *s;
    if (avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    vecs vs = {0};
    int rc = load_vectors(s, &vs) ? 1 : 0;
    char path[1024];
    if (!rc) {
        snprintf(path, sizeof path, "%s/log_request.avro", dir);
        if (write_container(path, s, &vs, NULL, err, sizeof err)) rc = 1;
    }
    if (!rc) {
        avro_file_opts o = {.codec = "null", .block_bytes = 4096};
        snprintf(path, sizeof path, "%s/log_request_null.avro", dir);
        if (write_container(path, s, &vs, &o, err, sizeof err)) rc = 1;
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/vectors.txt", dir);
        FILE *f = fopen(path, "w");
        for (size_t i = 0; f && i < vs.n; i++)
            fprintf(f, "%s\n", vs.v[i].name);
        if (!f || fclose(f)) {
            snprintf(err, sizeof err, "cannot write %s", path);
            rc = 1;
        }
    }
    if (!rc && write_derived(dir, err, sizeof err)) rc = 1;
    if (rc) fprintf(stderr, "test_avro_roundtrip --write: %s\n", err);
    free_vectors(&vs);
    avsc_schema_free(s);
    return rc;
}

/* ---- bench mode: the figures of docs/AVRO.md ------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* test_avro_roundtrip --bench ROUNDS FILE [RECORDS]: encodes every vector (or every LogRequest
 * of the record file RECORDS, e.g. from logproc generate logs) ROUNDS times (encode only), then
 * encodes and appends them ROUNDS times to a snappy container FILE, then writes the same
 * records through avro-c's generic value API (avro_value_write of values already built, which
 * leaves out the cost of filling them), and prints records/s and MB/s for each. */
static int helper_bench(long rounds, const char *path, const char *input)
{
    char err[1536] = "loading the wire vectors failed (is LOGPROC_TEST_DATA set?)";
    avsc_schema *s;
    if (avsc_schema_new(&event__log_request__descriptor, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    vecs vs = {0};
    if (input ? load_record_file(s, input, &vs) : load_vectors(s, &vs)) {
        fprintf(stderr, "%s\n", input ? "reading the record file failed" : err);
        return 1;
    }
    size_t pb_bytes = 0, avro_bytes = 0;
    for (size_t i = 0; i < vs.n; i++) {
        pb_bytes += event__log_request__get_packed_size(vs.v[i].msg);
        avro_bytes += vs.v[i].datum.len;
    }
    double recs = (double)vs.n * (double)rounds;
    printf("workload: %zu LogRequests (%s) x %ld rounds; %.0f B protobuf, %.0f B Avro each\n", vs.n,
           input ? input : "wire vectors", rounds, (double)pb_bytes / vs.n,
           (double)avro_bytes / vs.n);

    avenc_buf b;
    avenc_buf_init(&b, AVRO_FILE_DEFAULT_MAX_DATUM_BYTES);
    double t0 = now_s();
    for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < vs.n; i++) {
            avenc_buf_clear(&b);
            if (avenc_message(s, &vs.v[i].msg->base, &b, NULL, err, sizeof err)) return 1;
        }
    double t = now_s() - t0;
    printf("encode only:            %8.0f records/s  %7.1f MB/s Avro  %7.1f MB/s protobuf\n",
           recs / t, recs / vs.n * avro_bytes / t / 1e6, recs / vs.n * pb_bytes / t / 1e6);

    size_t jl;
    const char *json = avsc_schema_json(s, &jl);
    avro_file_out *w;
    if (avro_file_out_new(path, json, jl, NULL, &w, err, sizeof err)) return 1;
    t0 = now_s();
    for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < vs.n; i++) {
            if (avro_file_out_append_message(w, s, &vs.v[i].msg->base, NULL, err, sizeof err))
                return 1;
        }
    if (avro_file_out_close(w, err, sizeof err)) return 1;
    t = now_s() - t0;
    printf("encode + snappy file:   %8.0f records/s  %7.1f MB/s Avro  %7.1f MB/s protobuf\n",
           recs / t, recs / vs.n * avro_bytes / t / 1e6, recs / vs.n * pb_bytes / t / 1e6);

    /* the raw-output shape: one row per child record (view, impression, ...), each type with its
     * own schema and file */
    static const struct {
        const ProtobufCMessageDescriptor *d;
        size_t off_n, off_arr;
    } kids[] = {
        {&event__user__descriptor, offsetof(Event__LogRequest, n_user),
         offsetof(Event__LogRequest, user)},
        {&event__cohort_membership__descriptor, offsetof(Event__LogRequest, n_cohort_membership),
         offsetof(Event__LogRequest, cohort_membership)},
        {&event__view__descriptor, offsetof(Event__LogRequest, n_view),
         offsetof(Event__LogRequest, view)},
        {&event__auto_view__descriptor, offsetof(Event__LogRequest, n_auto_view),
         offsetof(Event__LogRequest, auto_view)},
        {&delivery__delivery_log__descriptor, offsetof(Event__LogRequest, n_delivery_log),
         offsetof(Event__LogRequest, delivery_log)},
        {&event__impression__descriptor, offsetof(Event__LogRequest, n_impression),
         offsetof(Event__LogRequest, impression)},
        {&event__action__descriptor, offsetof(Event__LogRequest, n_action),
         offsetof(Event__LogRequest, action)},
        {&event__diagnostics__descriptor, offsetof(Event__LogRequest, n_diagnostics),
         offsetof(Event__LogRequest, diagnostics)},
    };
    enum { NKIDS = sizeof kids / sizeof kids[0] };
    avsc_schema *ks[NKIDS];
    avro_file_out *kw[NKIDS];
    for (int k = 0; k < NKIDS; k++) {
        char kp[1100];
        snprintf(kp, sizeof kp, "%s.%d", path, k);
        if (avsc_schema_new(kids[k].d, &ks[k], err, sizeof err)) return 1;
        const char *kj = avsc_schema_json(ks[k], &jl);
        if (avro_file_out_new(kp, kj, jl, NULL, &kw[k], err, sizeof err)) return 1;
    }
    double rows = 0, row_bytes = 0;
    for (size_t i = 0; i < vs.n; i++) /* the Avro bytes of one round of rows, untimed */
        for (int k = 0; k < NKIDS; k++) {
            const uint8_t *lr = (const uint8_t *)vs.v[i].msg;
            size_t n = *(const size_t *)(lr + kids[k].off_n);
            ProtobufCMessage *const *arr =
                *(ProtobufCMessage *const *const *)(lr + kids[k].off_arr);
            for (size_t j = 0; j < n; j++) {
                avenc_buf_clear(&b);
                if (avenc_message(ks[k], arr[j], &b, NULL, err, sizeof err)) return 1;
                row_bytes += (double)b.len * (double)rounds;
            }
        }
    t0 = now_s();
    for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < vs.n; i++)
            for (int k = 0; k < NKIDS; k++) {
                const uint8_t *lr = (const uint8_t *)vs.v[i].msg;
                size_t n = *(const size_t *)(lr + kids[k].off_n);
                ProtobufCMessage *const *arr =
                    *(ProtobufCMessage *const *const *)(lr + kids[k].off_arr);
                for (size_t j = 0; j < n; j++) {
                    if (avro_file_out_append_message(kw[k], ks[k], arr[j], NULL, err, sizeof err))
                        return 1;
                    rows++;
                }
            }
    for (int k = 0; k < NKIDS; k++) {
        if (avro_file_out_close(kw[k], err, sizeof err)) return 1;
        avsc_schema_free(ks[k]);
    }
    t = now_s() - t0;
    printf("child rows + snappy:    %8.0f rows/s     %7.1f MB/s Avro  (%.0f B per row)\n", rows / t,
           row_bytes / t / 1e6, row_bytes / rows);

    /* avro-c: decode each datum into a generic value once, then time avro_value_write */
    avro_value_iface_t *iface = avro_generic_class_from_schema(avsc_schema_avro(s));
    avro_value_t *vals = calloc(vs.n, sizeof *vals);
    for (size_t i = 0; i < vs.n; i++) {
        avro_generic_value_new(iface, &vals[i]);
        avro_reader_t rd =
            avro_reader_memory((const char *)vs.v[i].datum.data, (int64_t)vs.v[i].datum.len);
        avro_value_read(rd, &vals[i]);
        avro_reader_free(rd);
    }
    char *out = malloc(AVRO_FILE_DEFAULT_MAX_DATUM_BYTES);
    avro_writer_t aw = avro_writer_memory(out, AVRO_FILE_DEFAULT_MAX_DATUM_BYTES);
    t0 = now_s();
    for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < vs.n; i++) {
            avro_writer_reset(aw);
            if (avro_value_write(aw, &vals[i])) return 1;
        }
    t = now_s() - t0;
    printf("avro-c avro_value_write:%8.0f records/s  %7.1f MB/s Avro (values prebuilt)\n", recs / t,
           recs / vs.n * avro_bytes / t / 1e6);
    avro_writer_free(aw);
    free(out);
    for (size_t i = 0; i < vs.n; i++)
        avro_value_decref(&vals[i]);
    free(vals);
    avro_value_iface_decref(iface);
    avenc_buf_free(&b);
    free_vectors(&vs);
    avsc_schema_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write")) return helper_write(argv[2]);
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "--bench"))
        return helper_bench(atol(argv[2]), argv[3], argc == 5 ? argv[4] : NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_vectors_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
