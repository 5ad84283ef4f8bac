/*
 * avro_encode: protobuf-c message -> Avro binary datum by walking the avsc layout, plus the
 * derived-record encoders. See avro_encode.h.
 *
 * The writer keeps a raw cursor into the caller's buffer. Room is checked once per record for
 * all its fixed-size parts and again only for variable contents (string bytes, array items,
 * sub-records); growing reallocates and moves the cursor. A datum that would pass the buffer's
 * limit stops the walk and the buffer is rolled back to where the datum started.
 */
#include "formats/avro_encode.h"

#include "formats/pb_util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/execution.pb-c.h"

static _Atomic uint64_t g_depth_cut;

uint64_t avenc_depth_cut_total(void)
{
    return atomic_load_explicit(&g_depth_cut, memory_order_relaxed);
}

/* ---- buffer ---------------------------------------------------------------------------------- */

/* ---- writer ---------------------------------------------------------------------------------- */

typedef struct enc {
    avenc_buf *b;
    uint8_t *p;   /* next byte to write */
    uint8_t *end; /* end of the allocation */
    uint64_t cut, unrecognized;
    int oom; /* a failed realloc, as opposed to the limit */
} enc;

/*
 * Makes room for `content` bytes of data plus `fixed` bytes of headroom for the fixed-size
 * parts that follow (see "Room discipline" below). The limit is checked on content: the
 * allocation may pass it by the headroom, and avenc_message checks the finished datum against
 * the limit. -1 when the content would pass the limit or memory runs out.
 */
static int enc_grow(enc *e, size_t content, size_t fixed)
{
    avenc_buf *b = e->b;
    size_t used = b->data ? (size_t)(e->p - b->data) : 0;
    if (used > b->limit || content > b->limit - used) return -1;
    size_t want = used + content + fixed;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    if (cap > b->limit && cap > want) cap = want > b->limit ? want : b->limit;
    if (cap != b->cap) {
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            e->oom = 1;
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    e->p = b->data + used;
    e->end = b->data + b->cap;
    return 0;
}

/* bytes left; via uintptr_t because both pointers are NULL before the first allocation */
static inline size_t room(const enc *e)
{
    return (size_t)((uintptr_t)e->end - (uintptr_t)e->p);
}

/* Room for `content` data bytes plus `fixed` bytes of fixed-size parts. */
#define RESERVE(e, content, fixed)                                                                 \
    do {                                                                                           \
        if (room(e) < (size_t)(content) + (size_t)(fixed) &&                                       \
            enc_grow((e), (size_t)(content), (size_t)(fixed)))                                     \
            return -1;                                                                             \
    } while (0)

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* zigzag: small magnitudes, positive or negative, get short varints */
static inline uint8_t *put_long(uint8_t *p, int64_t n)
{
    return put_varint(p, ((uint64_t)n << 1) ^ (uint64_t)(n >> 63));
}

static inline uint8_t *put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static inline uint8_t *put_u64le(uint8_t *p, uint64_t v)
{
    put_u32le(p, (uint32_t)v);
    return put_u32le(p + 4, (uint32_t)(v >> 32));
}

static int put_blob(enc *e, const void *data, size_t len)
{
    RESERVE(e, len, 10);
    e->p = put_long(e->p, (int64_t)len);
    if (len) memcpy(e->p, data, len);
    e->p += len;
    return 0;
}

static int put_str(enc *e, const char *s)
{
    return put_blob(e, s ? s : "", s ? strlen(s) : 0);
}

static int put_long_r(enc *e, int64_t v)
{
    RESERVE(e, 0, 10);
    e->p = put_long(e->p, v);
    return 0;
}

/* ---- protobuf messages ----------------------------------------------------------------------- */


/* Counts the values in the fields this depth-limited copy left out. */
static void count_cut(enc *e, const avsc_record *r, const uint8_t *m)
{
    for (unsigned i = 0; i < r->n_cut; i++) {
        const avsc_field *f = &r->cut[i];
        const uint8_t *mem = m + f->offset;
        switch ((avsc_presence)f->presence) {
        case AVSC_REPEATED:
            e->cut += *(const size_t *)(m + f->quantifier_offset);
            break;
        case AVSC_ONEOF:
            if (*(const uint32_t *)(m + f->quantifier_offset) == f->id && *(const void *const *)mem)
                e->cut++;
            break;
        default:
            if (*(const void *const *)mem) e->cut++;
            break;
        }
    }
}

static int enc_record(enc *e, const avsc_record *r, const uint8_t *m);

/*
 * Room discipline: enc_record reserves the record's max_fixed bytes on entry, which covers
 * every fixed-size part of its fields (varints, floats, union branches, lengths). Whatever
 * writes variable contents (string bytes, array items, sub-records) reserves again for its own
 * bytes plus max_fixed, so the fixed parts that follow never need a check of their own.
 */

/* Writes one element of a repeated scalar field; reserves its own room. */
static int enc_item(enc *e, const avsc_field *f, const uint8_t *mem, size_t keep)
{
    switch ((avsc_kind)f->kind) {
    case AVSC_STRING:
    case AVSC_BYTES: {
        const void *data;
        size_t n;
        if (f->kind == AVSC_STRING) {
            data = *(const char *const *)mem;
            n = data ? strlen(data) : 0;
        } else {
            data = ((const ProtobufCBinaryData *)mem)->data;
            n = ((const ProtobufCBinaryData *)mem)->len;
        }
        RESERVE(e, n, 10 + keep);
        e->p = put_long(e->p, (int64_t)n);
        if (n) memcpy(e->p, data, n);
        e->p += n;
        return 0;
    }
    default:
        break;
    }
    RESERVE(e, 0, 10 + keep);
    switch ((avsc_kind)f->kind) {
    case AVSC_BOOL:
        *e->p++ = *(const protobuf_c_boolean *)mem ? 1 : 0;
        break;
    case AVSC_INT: {
        int32_t v;
        memcpy(&v, mem, 4);
        e->p = put_long(e->p, v);
        break;
    }
    case AVSC_LONG: {
        int64_t v;
        memcpy(&v, mem, 8);
        e->p = put_long(e->p, v);
        break;
    }
    case AVSC_FLOAT: {
        uint32_t v;
        memcpy(&v, mem, 4);
        e->p = put_u32le(e->p, v);
        break;
    }
    case AVSC_DOUBLE: {
        uint64_t v;
        memcpy(&v, mem, 8);
        e->p = put_u64le(e->p, v);
        break;
    }
    case AVSC_ENUM: {
        int32_t v;
        memcpy(&v, mem, 4);
        int32_t idx = avsc_enum_index(f->enm, v);
        if (idx == f->enm->unrecognized) e->unrecognized++;
        e->p = put_long(e->p, idx);
        break;
    }
    default:
        return -1;
    }
    return 0;
}

static int enc_repeated(enc *e, const avsc_record *r, const avsc_field *f, const uint8_t *m)
{
    size_t n = *(const size_t *)(m + f->quantifier_offset);
    if (!n) {
        *e->p++ = 0; /* an empty array: just the end marker */
        return 0;
    }
    e->p = put_long(e->p, (int64_t)n);
    const uint8_t *arr = *(const uint8_t *const *)(m + f->offset);
    if (f->kind == AVSC_RECORD) {
        const ProtobufCMessage *const *msgs = (const ProtobufCMessage *const *)arr;
        for (size_t k = 0; k < n; k++) {
            if (!msgs[k]) return -2; /* only a hand-built message can hold NULL here */
            int rc = enc_record(e, f->record, (const uint8_t *)msgs[k]);
            if (rc) return rc;
        }
        RESERVE(e, 0, r->max_fixed);
    } else {
        size_t sz = pb_type_size((ProtobufCType)f->pb_type);
        for (size_t k = 0; k < n; k++)
            if (enc_item(e, f, arr + k * sz, r->max_fixed)) return -1;
    }
    *e->p++ = 0; /* end of the array: a block of 0 items */
    return 0;
}

static int enc_record(enc *e, const avsc_record *r, const uint8_t *m)
{
    RESERVE(e, 0, r->max_fixed);
    for (unsigned i = 0; i < r->n_fields; i++) {
        const avsc_field *f = &r->fields[i];
        const uint8_t *mem = m + f->offset;
        int present;
        switch ((avsc_presence)f->presence) {
        case AVSC_REPEATED: {
            int rc = enc_repeated(e, r, f, m);
            if (rc) return rc;
            continue;
        }
        case AVSC_HAS_FLAG:
            present = *(const protobuf_c_boolean *)(m + f->quantifier_offset) != 0;
            break;
        case AVSC_ONEOF:
            present = *(const uint32_t *)(m + f->quantifier_offset) == f->id;
            break;
        default:
            present = 1;
            break;
        }
        /* an absent field is written as zero, "", false, the enum's 0 value, or null */
        switch ((avsc_kind)f->kind) {
        case AVSC_BOOL:
            *e->p++ = present && *(const protobuf_c_boolean *)mem ? 1 : 0;
            break;
        case AVSC_INT: {
            int32_t v = 0;
            if (present) memcpy(&v, mem, 4);
            e->p = put_long(e->p, v);
            break;
        }
        case AVSC_LONG: {
            int64_t v = 0;
            if (present) memcpy(&v, mem, 8);
            e->p = put_long(e->p, v);
            break;
        }
        case AVSC_FLOAT: {
            uint32_t v = 0;
            if (present) memcpy(&v, mem, 4);
            e->p = put_u32le(e->p, v);
            break;
        }
        case AVSC_DOUBLE: {
            uint64_t v = 0;
            if (present) memcpy(&v, mem, 8);
            e->p = put_u64le(e->p, v);
            break;
        }
        case AVSC_ENUM: {
            int32_t idx = f->enm->zero_index;
            if (present) {
                int32_t v;
                memcpy(&v, mem, 4);
                idx = avsc_enum_index(f->enm, v);
                if (idx == f->enm->unrecognized) e->unrecognized++;
            }
            e->p = put_long(e->p, idx);
            break;
        }
        case AVSC_STRING:
        case AVSC_BYTES: {
            const void *data = NULL;
            size_t n = 0;
            if (present) {
                if (f->kind == AVSC_STRING) {
                    data = *(const char *const *)mem;
                    n = data ? strlen(data) : 0;
                } else {
                    data = ((const ProtobufCBinaryData *)mem)->data;
                    n = ((const ProtobufCBinaryData *)mem)->len;
                }
            }
            e->p = put_long(e->p, (int64_t)n);
            if (n) {
                RESERVE(e, n, r->max_fixed);
                memcpy(e->p, data, n);
                e->p += n;
            }
            break;
        }
        case AVSC_RECORD: {
            const ProtobufCMessage *sub = present ? *(const ProtobufCMessage *const *)mem : NULL;
            if (!sub) {
                *e->p++ = 0; /* union branch 0: null */
                break;
            }
            *e->p++ = 2; /* union branch 1 (zigzag) */
            int rc = enc_record(e, f->record, (const uint8_t *)sub);
            if (rc) return rc;
            RESERVE(e, 0, r->max_fixed);
            break;
        }
        }
    }
    if (r->n_cut) count_cut(e, r, m);
    return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void enc_start(enc *e, avenc_buf *b)
{
    memset(e, 0, sizeof *e);
    e->b = b;
    e->p = b->data ? b->data + b->len : NULL;
    e->end = b->data ? b->data + b->cap : NULL;
}

int avenc_message(const avsc_schema *s, const ProtobufCMessage *msg, avenc_buf *out,
                  avenc_stats *stats, char *err, size_t errlen)
{
    const avsc_record *root = avsc_schema_root(s);
    if (!msg || msg->descriptor != root->pb) {
        set_err(err, errlen, "avenc_message: message of type %s given to the schema of %s",
                msg ? msg->descriptor->name : "(null)", root->pb->name);
        return -1;
    }
    size_t start = out->len;
    enc e;
    enc_start(&e, out);
    int rc = enc_record(&e, root, (const uint8_t *)msg);
    size_t len = out->data ? (size_t)(e.p - out->data) : 0;
    if (rc || len > out->limit) {
        out->len = start;
        if (rc == -2) {
            set_err(err, errlen, "Avro datum of %s: a repeated message field holds NULL",
                    root->full_name);
            return -1;
        }
        if (e.oom) {
            set_err(err, errlen, "Avro datum of %s: out of memory", root->full_name);
            return -1;
        }
        set_err(err, errlen, "Avro datum of %s over the limit of %zu bytes", root->full_name,
                out->limit);
        return AVENC_E_LIMIT;
    }
    out->len = len;
    if (e.cut) atomic_fetch_add_explicit(&g_depth_cut, e.cut, memory_order_relaxed);
    if (stats) {
        stats->depth_cut += e.cut;
        stats->enum_unrecognized += e.unrecognized;
    }
    return 0;
}

/* ---- derived records ------------------------------------------------------------------------- */

static int derived_done(enc *e, size_t start, int rc, const char *what, char *err, size_t errlen)
{
    size_t len = e->b->data ? (size_t)(e->p - e->b->data) : 0;
    if (rc || len > e->b->limit) {
        e->b->len = start;
        if (e->oom) {
            set_err(err, errlen, "Avro datum of %s: out of memory", what);
            return -1;
        }
        set_err(err, errlen, "Avro datum of %s over the limit of %zu bytes", what, e->b->limit);
        return AVENC_E_LIMIT;
    }
    e->b->len = len;
    return 0;
}

static int log_user_user_body(enc *e, const avenc_log_user_user *r)
{
    if (put_long_r(e, r->platform_id) || put_long_r(e, r->event_api_timestamp) ||
        put_str(e, r->log_user_id) || put_str(e, r->user_id))
        return -1;
    return 0;
}

int avenc_log_user_user_datum(const avenc_log_user_user *r, avenc_buf *out, char *err,
                              size_t errlen)
{
    enc e;
    size_t start = out->len;
    enc_start(&e, out);
    return derived_done(&e, start, log_user_user_body(&e, r), "LogUserUser", err, errlen);
}

int32_t avenc_execution_server_index(int32_t proto_number)
{
    /* the symbol order of schemas/delivery_log_ids.avsc */
    static const char *const symbols[] = {"UNKNOWN_EXECUTION_SERVER", "UNRECOGNIZED", "API", "SDK",
                                          "SIMPLE_API"};
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&delivery__execution_server__descriptor, proto_number);
    if (v)
        for (int32_t i = 0; i < (int32_t)(sizeof symbols / sizeof symbols[0]); i++)
            if (!strcmp(symbols[i], v->name)) return i;
    return 1;
}

static int delivery_log_ids_body(enc *e, const avenc_delivery_log_ids *r)
{
    if (put_long_r(e, r->platform_id) || put_long_r(e, r->event_api_timestamp) ||
        put_str(e, r->log_user_id) || put_str(e, r->view_id) || put_str(e, r->request_id) ||
        put_str(e, r->client_request_id) ||
        put_long_r(e, avenc_execution_server_index(r->execution_server)) ||
        put_str(e, r->search_query) || put_str(e, r->user_agent))
        return -1;
    return 0;
}

int avenc_delivery_log_ids_datum(const avenc_delivery_log_ids *r, avenc_buf *out, char *err,
                                 size_t errlen)
{
    enc e;
    size_t start = out->len;
    enc_start(&e, out);
    return derived_done(&e, start, delivery_log_ids_body(&e, r), "DeliveryLogIds", err, errlen);
}

static int request_insertion_ids_body(enc *e, const avenc_request_insertion_ids *r)
{
    if (put_long_r(e, r->platform_id) || put_long_r(e, r->event_api_timestamp) ||
        put_str(e, r->request_id) || put_str(e, r->content_id))
        return -1;
    if (!r->has_retrieval_rank) return put_long_r(e, 0); /* union branch 0: null */
    return put_long_r(e, 1) || put_long_r(e, r->retrieval_rank);
}

int avenc_request_insertion_ids_datum(const avenc_request_insertion_ids *r, avenc_buf *out,
                                      char *err, size_t errlen)
{
    enc e;
    size_t start = out->len;
    enc_start(&e, out);
    return derived_done(&e, start, request_insertion_ids_body(&e, r), "RequestInsertionIds", err,
                        errlen);
}

static int response_insertion_ids_body(enc *e, const avenc_response_insertion_ids *r)
{
    if (put_long_r(e, r->platform_id) || put_long_r(e, r->event_api_timestamp) ||
        put_str(e, r->request_id) || put_str(e, r->insertion_id) || put_str(e, r->content_id) ||
        put_long_r(e, r->position))
        return -1;
    return 0;
}

int avenc_response_insertion_ids_datum(const avenc_response_insertion_ids *r, avenc_buf *out,
                                       char *err, size_t errlen)
{
    enc e;
    size_t start = out->len;
    enc_start(&e, out);
    return derived_done(&e, start, response_insertion_ids_body(&e, r), "ResponseInsertionIds", err,
                        errlen);
}

static int invalid_record_body(enc *e, const avenc_invalid_record *r)
{
    if (put_str(e, r->source) || put_long_r(e, r->partition) || put_long_r(e, r->offset) ||
        put_long_r(e, r->timestamp) || put_str(e, r->error) ||
        put_blob(e, r->raw, r->raw ? r->raw_len : 0) || put_long_r(e, r->raw_length))
        return -1;
    return 0;
}

int avenc_invalid_record_datum(const avenc_invalid_record *r, avenc_buf *out, char *err,
                               size_t errlen)
{
    enc e;
    size_t start = out->len;
    enc_start(&e, out);
    return derived_done(&e, start, invalid_record_body(&e, r), "InvalidRecord", err, errlen);
}
