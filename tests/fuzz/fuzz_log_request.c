/* libFuzzer target: a LogRequest as the jobs receive it. The input is the record value.
 *
 * It goes through the operators the jobs use, built once into one graph: the decode operator
 * (pb_unpack_checked into an arena with its cap) feeding the split operator, whose ports carry
 * the LogRequest as received and each child after push-down. Every record that comes out is
 *   - printed with pb_json (the printer of `logproc inspect`, private fields included), and the
 *     text must parse as JSON;
 *   - encoded to Avro for its table (avenc_message, as raw-output's sinks do), and the datum must
 *     decode with avro-c against the same schema and consume every byte;
 * and the LogRequest's assumed private fields are decoded (pb_private getters). A record the
 * decoder rejects must come out on the invalid_record port with an error text.
 *
 *   fuzz_log_request -max_len=4096 CORPUS_DIR    (scripts/fuzz.sh: see its MAX_LEN table) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "formats/avro_encode.h"
#include "formats/avro_schema.h"
#include "formats/pb_json.h"
#include "formats/pb_private.h"
#include "jobs/common_ops.h"
#include "jobs/split.h"
#include "runtime/graph.h"
#include "runtime/task.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

#define MAX_RECORD_BYTES (1 << 20)

/* One Avro schema per record type that comes out of the split: avro_schema.h's plan for the
 * encoder and avro-c's parse of the same JSON for the read-back. */
typedef struct table {
    const ProtobufCMessageDescriptor *desc;
    avsc_schema *plan;
    avro_schema_t schema;
    avro_value_iface_t *iface;
} table;

static table tables[1 + SPLIT_KINDS];
static rt_graph *graph;
static rt_op *root;
static avenc_buf datum;
static uint64_t outputs, invalid;

static void check_json(const ProtobufCMessage *m)
{
    char *json = NULL;
    size_t len = 0;
    char err[256];
    if (pb_json_encode_ex(m, PB_JSON_PRIVATE, 0, &json, &len, err, sizeof err)) {
        CHECK(err[0] != '\0');
        return;
    }
    CHECK(json != NULL && strlen(json) == len);
    json_error_t jerr;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    CHECK(v != NULL && json_is_object(v));
    json_decref(v);
    free(json);
}

static void check_avro(table *t, const ProtobufCMessage *m)
{
    char err[256];
    avenc_buf_clear(&datum);
    int rc = avenc_message(t->plan, m, &datum, NULL, err, sizeof err);
    if (rc == AVENC_E_LIMIT) return;
    CHECK(rc == 0);
    avro_value_t v;
    CHECK(avro_generic_value_new(t->iface, &v) == 0);
    avro_reader_t r = avro_reader_memory((const char *)datum.data, (int64_t)datum.len);
    CHECK(r != NULL);
    CHECK(avro_value_read(r, &v) == 0);
    /* the whole datum is one value: nothing left over */
    char probe;
    CHECK(avro_read(r, &probe, 1) != 0);
    avro_reader_free(r);
    avro_value_decref(&v);
}

static void check_private(const Event__LogRequest *lr, ProtobufCAllocator *alloc)
{
    Logproc__Priv__SessionProfile **sp;
    Logproc__Priv__Session **ss;
    size_t n;
    if (pb_private_get_session_profiles(lr, alloc, &sp, &n) == 0) {
        for (size_t i = 0; i < n; i++) check_json(&sp[i]->base);
        pb_private_free_list((ProtobufCMessage **)sp, n, alloc);
    }
    if (pb_private_get_sessions(lr, alloc, &ss, &n) == 0)
        pb_private_free_list((ProtobufCMessage **)ss, n, alloc);
    for (size_t i = 0; i < lr->n_delivery_log; i++) {
        const Delivery__DeliveryLog *dl = lr->delivery_log[i];
        if (!dl->execution) continue;
        Delivery__Insertion **ins;
        if (pb_private_get_execution_insertions(dl->execution, alloc, &ins, &n)) continue;
        for (size_t j = 0; j < n; j++) {
            Logproc__Priv__FeatureStage *fs;
            if (pb_private_get_feature_stage(ins[j], alloc, &fs) == 0 && fs)
                protobuf_c_message_free_unpacked(&fs->base, alloc);
        }
        pb_private_free_list((ProtobufCMessage **)ins, n, alloc);
    }
}

/* The sink of every port: self is the table index (1 + split_kind, 0 for the LogRequest), or
 * NULL-tagged -1 for the invalid_record port. */
static int capture_process(rt_op *op, int input, const rt_record *rec)
{
    intptr_t k = (intptr_t)rt_op_self(op);
    if (k < 0) {
        const job_invalid_record *inv = rec->data;
        CHECK(rec->type == REC_INVALID && inv->error && inv->error[0]);
        CHECK(inv->raw_len <= MAX_RECORD_BYTES);
        invalid++;
        return 0;
    }
    const ProtobufCMessage *m = rec->data;
    CHECK(m->descriptor == tables[k].desc);
    outputs++;
    check_json(m);
    check_avro(&tables[k], m);
    /* the private getters allocate with malloc here, so leaks of theirs are reported */
    if (k == 0) check_private((const Event__LogRequest *)m, NULL);
    return 0;
}

static const rt_op_vtbl capture_vt = {.process = capture_process};

static const ProtobufCMessageDescriptor *const kind_desc[SPLIT_KINDS] = {
    &event__user__descriptor,         &event__cohort_membership__descriptor,
    &event__auto_view__descriptor,    &event__view__descriptor,
    &delivery__delivery_log__descriptor, &event__impression__descriptor,
    &event__action__descriptor,       &event__diagnostics__descriptor,
};

static void cleanup(void)
{
    rt_graph_free(graph);
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        avro_value_iface_decref(tables[i].iface);
        avro_schema_decref(tables[i].schema);
        avsc_schema_free(tables[i].plan);
    }
    avenc_buf_free(&datum);
}

static void setup(void)
{
    char err[512];
    for (int i = 0; i <= SPLIT_KINDS; i++) {
        table *t = &tables[i];
        t->desc = i ? kind_desc[i - 1] : &event__log_request__descriptor;
        CHECK(avsc_schema_new(t->desc, &t->plan, err, sizeof err) == 0);
        size_t len;
        const char *js = avsc_schema_json(t->plan, &len);
        CHECK(avro_schema_from_json_length(js, len, &t->schema) == 0);
        CHECK((t->iface = avro_generic_class_from_schema(t->schema)) != NULL);
    }
    avenc_buf_init(&datum, 16 * MAX_RECORD_BYTES);

    CHECK(rt_graph_new(NULL, &graph) == 0);
    decode_op_config dc = {.desc = &event__log_request__descriptor, .rec_type = REC_LOG_REQUEST,
                           .max_record_bytes = MAX_RECORD_BYTES};
    rt_op *split, *cap;
    CHECK(decode_op_add(graph, "decode-log-request", &dc, &root) == 0);
    CHECK(split_op_add(graph, "split-log-request", &split) == 0);
    CHECK(rt_graph_connect(graph, root, 0, split, 0) == 0);
    CHECK(rt_graph_add_op(graph, "capture-invalid", NULL, &capture_vt, (void *)(intptr_t)-1, 1, 0,
                          &cap) == 0);
    CHECK(rt_graph_connect(graph, root, 1, cap, 0) == 0);
    for (intptr_t k = 0; k <= SPLIT_KINDS; k++) {
        char uid[64];
        snprintf(uid, sizeof uid, "capture-port-%d", (int)k);
        CHECK(rt_graph_add_op(graph, uid, NULL, &capture_vt, (void *)k, 1, 0, &cap) == 0);
        CHECK(rt_graph_connect(graph, split, (int)k, cap, 0) == 0);
    }
    CHECK(rt_graph_open(graph, err, sizeof err) == 0);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!graph) setup();
    /* a private copy, so a read past the end is an ASan report */
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    static const uint8_t key[] = "k";
    rt_source_record src = {.ts = 1600000000000, .offset = 0, .key = key, .key_len = 1,
                            .value = copy, .value_len = size, .source = "fuzz", .partition = 0};
    rt_record rec = {.ts = src.ts, .type = RT_TYPE_SOURCE, .data = &src, .key = key,
                     .key_len = 1};
    uint64_t before = outputs + invalid;
    CHECK(rt_graph_push(graph, root, 0, &rec) == 0);
    /* every record comes out somewhere: as a LogRequest (plus children) or as invalid */
    CHECK(outputs + invalid > before);
    free(copy);
    return 0;
}
