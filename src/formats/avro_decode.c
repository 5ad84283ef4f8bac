/*
 * avro_decode: Avro datum -> protobuf-c message over an avsc_schema layout, and container file
 * blocks. The rules (what an Avro row can and cannot give back) are in avro_decode.h.
 */
#include "formats/avro_decode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <snappy-c.h>
#include <zlib.h>

#include "formats/pb_util.h"
#include "delivery/delivery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

/* An array of records without fields costs no bytes per item: this bounds its length. */
#define MAX_EMPTY_ITEMS 65536
/* Header metadata: entries and the size of one value (the schema text). */
#define MAX_META_ENTRIES 1024
#define MAX_META_VALUE (16u * 1024 * 1024)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- primitive reads ---------------------------------------------------------------------------
 */

int avdec_long(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        if (shift == 63 && (b & 0x7e)) return -1; /* bits past 64 */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -1;
}

int avdec_blob(const uint8_t **pp, const uint8_t *end, const uint8_t **data, size_t *len)
{
    int64_t n;
    const uint8_t *p = *pp;
    if (avdec_long(&p, end, &n) || n < 0 || (uint64_t)n > (uint64_t)(end - p)) return -1;
    *data = p;
    *len = (size_t)n;
    *pp = p + n;
    return 0;
}

/* ---- datums ------------------------------------------------------------------------------------
 */

typedef struct dec {
    const uint8_t *p, *start, *end;
    ProtobufCAllocator *a;
    uint64_t unrecognized;
    /* the first failure */
    const avsc_record *rec;
    const char *field;
    const char *what;
    size_t at;
    int nomem;
} dec;

static int fail(dec *d, const avsc_record *r, const avsc_field *f, const char *what)
{
    if (!d->what) {
        d->rec = r;
        d->field = f ? f->name : NULL;
        d->what = what;
        d->at = (size_t)(d->p - d->start);
    }
    return -1;
}

static void *dalloc(dec *d, size_t n)
{
    void *p = d->a->alloc(d->a->allocator_data, n ? n : 1);
    if (!p) d->nomem = 1;
    return p;
}

static void dfree(dec *d, void *p)
{
    if (p) d->a->free(d->a->allocator_data, p);
}

static void *sys_alloc(void *ud, size_t n)
{
    (void)ud;
    return malloc(n);
}

static void sys_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static ProtobufCAllocator g_sys = {sys_alloc, sys_free, NULL};

static int rd_long(dec *d, const avsc_record *r, const avsc_field *f, int64_t *v)
{
    if (avdec_long(&d->p, d->end, v))
        return fail(d, r, f, d->p >= d->end ? "truncated" : "varint over 10 bytes");
    return 0;
}

static int rd_int(dec *d, const avsc_record *r, const avsc_field *f, int32_t *v)
{
    int64_t x;
    if (rd_long(d, r, f, &x)) return -1;
    if (x < INT32_MIN || x > INT32_MAX) return fail(d, r, f, "int out of the 32-bit range");
    *v = (int32_t)x;
    return 0;
}

static int rd_fixed(dec *d, const avsc_record *r, const avsc_field *f, void *out, size_t n)
{
    if ((size_t)(d->end - d->p) < n) return fail(d, r, f, "truncated");
    /* little-endian on the wire and in memory (the encoder makes the same assumption) */
    memcpy(out, d->p, n);
    d->p += n;
    return 0;
}

static int rd_bool(dec *d, const avsc_record *r, const avsc_field *f, protobuf_c_boolean *v)
{
    if (d->p >= d->end) return fail(d, r, f, "truncated");
    uint8_t b = *d->p;
    if (b > 1) return fail(d, r, f, "boolean byte other than 0 or 1");
    d->p++;
    *v = b;
    return 0;
}

static int rd_blob(dec *d, const avsc_record *r, const avsc_field *f, const uint8_t **data,
                   size_t *len)
{
    int64_t n;
    if (rd_long(d, r, f, &n)) return -1;
    if (n < 0) return fail(d, r, f, "negative length");
    if ((uint64_t)n > (uint64_t)(d->end - d->p)) return fail(d, r, f, "truncated");
    *data = d->p;
    *len = (size_t)n;
    d->p += n;
    return 0;
}

/* A NUL-terminated copy of a string value (protobuf-c strings cannot hold NUL). */
static int rd_string(dec *d, const avsc_record *r, const avsc_field *f, char **out, size_t *len)
{
    const uint8_t *s;
    size_t n;
    if (rd_blob(d, r, f, &s, &n)) return -1;
    if (n && memchr(s, 0, n)) return fail(d, r, f, "string with a NUL byte");
    *len = n;
    *out = NULL;
    if (!n) return 0;
    char *c = dalloc(d, n + 1);
    if (!c) return fail(d, r, f, "out of memory");
    memcpy(c, s, n);
    c[n] = 0;
    *out = c;
    return 0;
}

static int rd_bytes(dec *d, const avsc_record *r, const avsc_field *f, ProtobufCBinaryData *out)
{
    const uint8_t *s;
    size_t n;
    if (rd_blob(d, r, f, &s, &n)) return -1;
    out->len = n;
    out->data = NULL;
    if (!n) return 0;
    out->data = dalloc(d, n);
    if (!out->data) return fail(d, r, f, "out of memory");
    memcpy(out->data, s, n);
    return 0;
}

/* The enum number of a symbol index; 1 with *num, 0 for UNRECOGNIZED, -1 out of range. */
static int enum_number(dec *d, const avsc_record *r, const avsc_field *f, int32_t *num, int *zero)
{
    int64_t idx;
    if (rd_long(d, r, f, &idx)) return -1;
    const avsc_enum *e = f->enm;
    if (idx < 0 || idx >= (int64_t)e->n_symbols) return fail(d, r, f, "enum index out of range");
    *zero = idx == e->zero_index;
    if (idx == e->unrecognized) {
        d->unrecognized++;
        return 0;
    }
    *num = e->pb->values[idx].value;
    return 1;
}

static ProtobufCMessage *new_message(dec *d, const avsc_record *r, const avsc_field *f,
                                     const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = dalloc(d, desc->sizeof_message);
    if (!m) {
        fail(d, r, f, "out of memory");
        return NULL;
    }
    protobuf_c_message_init(desc, m);
    return m;
}

/* Marks a singular field as present (its value is already stored). */
static void mark(const avsc_field *f, uint8_t *m)
{
    if (f->presence == AVSC_HAS_FLAG)
        *(protobuf_c_boolean *)(m + f->quantifier_offset) = 1;
    else if (f->presence == AVSC_ONEOF)
        *(uint32_t *)(m + f->quantifier_offset) = f->id;
}

static int dec_record(dec *d, const avsc_record *r, uint8_t *m);

/* A oneof member about to be stored while another member of its oneof is already set: only a
 * damaged datum does that (the encoder writes the others as zero or null), and storing it would
 * overwrite the other's value in their shared storage. */
static int oneof_taken(dec *d, const avsc_record *r, const avsc_field *f, const uint8_t *m)
{
    if (f->presence != AVSC_ONEOF || *(const uint32_t *)(m + f->quantifier_offset) == 0) return 0;
    return fail(d, r, f, "two members of a oneof are set");
}

/* Grows a repeated field's array to hold `more` elements after its current ones; the message
 * stays consistent (for free_unpacked) at every step. */
static int grow_array(dec *d, const avsc_record *r, const avsc_field *f, uint8_t *m, size_t more,
                      size_t *cap)
{
    size_t *n = (size_t *)(m + f->quantifier_offset);
    void **arr = (void **)(m + f->offset);
    size_t sz = pb_type_size((ProtobufCType)f->pb_type);
    if (*n + more <= *cap) return 0;
    size_t want = *n + more;
    uint8_t *na = dalloc(d, want * sz);
    if (!na) return fail(d, r, f, "out of memory");
    if (*n) memcpy(na, *arr, *n * sz);
    dfree(d, *arr);
    *arr = na;
    *cap = want;
    return 0;
}

static int dec_repeated(dec *d, const avsc_record *r, const avsc_field *f, uint8_t *m)
{
    size_t *n = (size_t *)(m + f->quantifier_offset);
    size_t cap = 0, sz = pb_type_size((ProtobufCType)f->pb_type);
    size_t empty_items = 0;
    for (;;) {
        int64_t c;
        if (rd_long(d, r, f, &c)) return -1;
        if (c == 0) return 0;
        if (c < 0) { /* a block with its byte size: the size is not needed */
            int64_t bytes;
            if (c == INT64_MIN) return fail(d, r, f, "array block count out of range");
            c = -c;
            if (rd_long(d, r, f, &bytes)) return -1;
            if (bytes < 0) return fail(d, r, f, "negative array block size");
        }
        /* every item takes at least one byte unless it is a record without fields */
        int zero_size = f->kind == AVSC_RECORD && f->record->n_fields == 0;
        if (zero_size) {
            if ((uint64_t)c > MAX_EMPTY_ITEMS - empty_items)
                return fail(d, r, f, "array of empty records over 65536 items");
            empty_items += (size_t)c;
        } else if ((uint64_t)c > (uint64_t)(d->end - d->p)) {
            return fail(d, r, f, "array count over the bytes left");
        }
        if (grow_array(d, r, f, m, (size_t)c, &cap)) return -1;
        uint8_t *arr = *(uint8_t **)(m + f->offset);
        for (int64_t k = 0; k < c; k++) {
            uint8_t *slot = arr + *n * sz;
            switch ((avsc_kind)f->kind) {
            case AVSC_RECORD: {
                ProtobufCMessage *sub = new_message(d, r, f, f->record->pb);
                if (!sub) return -1;
                *(ProtobufCMessage **)slot = sub;
                (*n)++;
                if (dec_record(d, f->record, (uint8_t *)sub)) return -1;
                continue;
            }
            case AVSC_STRING: {
                char *s;
                size_t len;
                if (rd_string(d, r, f, &s, &len)) return -1;
                if (!s) { /* a repeated string keeps its empty elements */
                    s = dalloc(d, 1);
                    if (!s) return fail(d, r, f, "out of memory");
                    *s = 0;
                }
                *(char **)slot = s;
                break;
            }
            case AVSC_BYTES:
                if (rd_bytes(d, r, f, (ProtobufCBinaryData *)slot)) return -1;
                break;
            case AVSC_BOOL:
                if (rd_bool(d, r, f, (protobuf_c_boolean *)slot)) return -1;
                break;
            case AVSC_INT:
                if (rd_int(d, r, f, (int32_t *)(void *)slot)) return -1;
                break;
            case AVSC_LONG:
                if (rd_long(d, r, f, (int64_t *)(void *)slot)) return -1;
                break;
            case AVSC_FLOAT:
                if (rd_fixed(d, r, f, slot, 4)) return -1;
                break;
            case AVSC_DOUBLE:
                if (rd_fixed(d, r, f, slot, 8)) return -1;
                break;
            case AVSC_ENUM: {
                int32_t num;
                int zero;
                int rc = enum_number(d, r, f, &num, &zero);
                if (rc < 0) return -1;
                if (rc == 0) continue; /* UNRECOGNIZED: its number is lost, the element too */
                memcpy(slot, &num, 4);
                break;
            }
            }
            (*n)++;
        }
    }
}

/* google.protobuf.Value writes null_value as the enum's zero symbol, which reads as "not
 * selected"; a Value with no kind is not valid JSON-mapped data, so a Value whose oneof reads
 * empty was a null. (A number_value of 0 encodes the same bytes: it comes back as null too.) */
static void value_kind_fixup(const avsc_record *r, uint8_t *m)
{
    if (r->pb != &google__protobuf__value__descriptor) return;
    Google__Protobuf__Value *v = (Google__Protobuf__Value *)(void *)m;
    if (v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
        v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
    }
}

/* delivery.Insertion.position has explicit presence and 0 is the first slot: delivery sets it
 * on every response insertion, so a 0 in the table is read as a set 0 (other explicit-presence
 * scalars, retrieval_rank/score and Response.introspection_data, are mostly unset: 0 reads as
 * unset). */
static int zero_is_set(const avsc_record *r, const avsc_field *f)
{
    return r->pb == &delivery__insertion__descriptor && f->id == 12;
}

static int dec_record(dec *d, const avsc_record *r, uint8_t *m)
{
    for (unsigned i = 0; i < r->n_fields; i++) {
        const avsc_field *f = &r->fields[i];
        uint8_t *mem = m + f->offset;
        int plain = f->presence == AVSC_PLAIN;
        if (f->presence == AVSC_REPEATED) {
            if (dec_repeated(d, r, f, m)) return -1;
            continue;
        }
        switch ((avsc_kind)f->kind) {
        case AVSC_BOOL: {
            protobuf_c_boolean v;
            if (rd_bool(d, r, f, &v)) return -1;
            if (v && oneof_taken(d, r, f, m)) return -1;
            if (v || plain) {
                *(protobuf_c_boolean *)mem = v;
                if (v) mark(f, m);
            }
            break;
        }
        case AVSC_INT: {
            int32_t v;
            if (rd_int(d, r, f, &v)) return -1;
            if (v && oneof_taken(d, r, f, m)) return -1;
            if (v || plain) {
                memcpy(mem, &v, 4);
                if (v) mark(f, m);
            }
            break;
        }
        case AVSC_LONG: {
            int64_t v;
            if (rd_long(d, r, f, &v)) return -1;
            if (v && oneof_taken(d, r, f, m)) return -1;
            if (v || plain || zero_is_set(r, f)) {
                memcpy(mem, &v, 8);
                mark(f, m);
            }
            break;
        }
        case AVSC_FLOAT: {
            uint32_t v; /* the bits: -0.0 is a value, only +0.0 reads as absent */
            if (rd_fixed(d, r, f, &v, 4)) return -1;
            if (v && oneof_taken(d, r, f, m)) return -1;
            if (v || plain) {
                memcpy(mem, &v, 4);
                if (v) mark(f, m);
            }
            break;
        }
        case AVSC_DOUBLE: {
            uint64_t v;
            if (rd_fixed(d, r, f, &v, 8)) return -1;
            if (v && oneof_taken(d, r, f, m)) return -1;
            if (v || plain) {
                memcpy(mem, &v, 8);
                if (v) mark(f, m);
            }
            break;
        }
        case AVSC_ENUM: {
            int32_t num;
            int zero;
            int rc = enum_number(d, r, f, &num, &zero);
            if (rc < 0) return -1;
            if (rc == 1 && !zero && oneof_taken(d, r, f, m)) return -1;
            if (rc == 1 && (!zero || plain)) {
                memcpy(mem, &num, 4);
                if (!zero) mark(f, m);
            }
            break;
        }
        case AVSC_STRING: {
            char *s;
            size_t len;
            if (rd_string(d, r, f, &s, &len)) return -1;
            if (!s && f->pb->label == PROTOBUF_C_LABEL_REQUIRED) {
                s = dalloc(d, 1);
                if (!s) return fail(d, r, f, "out of memory");
                *s = 0;
            }
            if (s && oneof_taken(d, r, f, m)) {
                dfree(d, s);
                return -1;
            }
            if (s) {
                *(char **)mem = s;
                mark(f, m);
            }
            break;
        }
        case AVSC_BYTES: {
            ProtobufCBinaryData b;
            if (rd_bytes(d, r, f, &b)) return -1;
            if (b.len && oneof_taken(d, r, f, m)) {
                dfree(d, b.data);
                return -1;
            }
            if (b.len || plain) {
                *(ProtobufCBinaryData *)mem = b;
                if (b.len) mark(f, m);
            }
            break;
        }
        case AVSC_RECORD: {
            int64_t branch;
            if (rd_long(d, r, f, &branch)) return -1;
            if (branch == 0) break;
            if (branch != 1) return fail(d, r, f, "union branch out of range");
            if (oneof_taken(d, r, f, m)) return -1;
            ProtobufCMessage *sub = new_message(d, r, f, f->record->pb);
            if (!sub) return -1;
            *(ProtobufCMessage **)mem = sub;
            mark(f, m);
            if (dec_record(d, f->record, (uint8_t *)sub)) return -1;
            break;
        }
        }
    }
    value_kind_fixup(r, m);
    return 0;
}

int avdec_message(const avsc_schema *s, const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                  ProtobufCMessage **out, size_t *used, avdec_stats *stats, char *err,
                  size_t errlen)
{
    const avsc_record *root = avsc_schema_root(s);
    *out = NULL;
    dec d;
    memset(&d, 0, sizeof d);
    d.p = d.start = data;
    d.end = data + len;
    d.a = alloc ? alloc : &g_sys;
    ProtobufCMessage *m = new_message(&d, root, NULL, root->pb);
    int rc = m ? dec_record(&d, root, (uint8_t *)m) : -1;
    if (rc) {
        if (m) protobuf_c_message_free_unpacked(m, alloc);
        if (d.nomem) {
            set_err(err, errlen, "Avro datum of %s: out of memory decoding field %s",
                    root->full_name, d.field ? d.field : "(root)");
            return AVDEC_E_NOMEM;
        }
        set_err(err, errlen, "Avro datum of %s: %s.%s: %s at byte %zu of %zu", root->full_name,
                d.rec ? d.rec->name : root->name, d.field ? d.field : "",
                d.what ? d.what : "does not decode", d.at, len);
        return -1;
    }
    *out = m;
    *used = (size_t)(d.p - data);
    if (stats) stats->enum_unrecognized += d.unrecognized;
    return 0;
}

int avdec_schema_matches(const char *json, size_t len, const char *ours, size_t ours_len)
{
    if (len == ours_len && !memcmp(json, ours, len)) return 1;
    json_t *a = json_loadb(json, len, 0, NULL);
    json_t *b = json_loadb(ours, ours_len, 0, NULL);
    int eq = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

/* ---- container files ---------------------------------------------------------------------------
 */

static const uint8_t MAGIC[4] = {'O', 'b', 'j', 1};

struct avdec_file {
    const uint8_t *buf;
    size_t len;
    char *name;
    size_t max_block, max_raw;
    uint8_t sync[16];
    size_t pos, data_offset;
    const uint8_t *schema;
    size_t schema_len;
    char codec[16];
    uint8_t *inflated;
    size_t inflated_cap;
    char errbuf[512];
};

static int header_fail(avdec_file *f, const char *what, char *err, size_t errlen)
{
    set_err(err, errlen, "%s: not a readable Avro container file: %s", f->name, what);
    free(f->name);
    free(f);
    return -1;
}

int avdec_file_open(const uint8_t *buf, size_t len, const char *name, size_t max_block_bytes,
                    size_t max_raw, avdec_file **out, char *err, size_t errlen)
{
    *out = NULL;
    avdec_file *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(name ? name : "(memory)"))) {
        free(f);
        set_err(err, errlen, "%s: out of memory", name ? name : "(memory)");
        return -1;
    }
    f->buf = buf;
    f->len = len;
    f->max_block = max_block_bytes ? max_block_bytes : AVDEC_DEFAULT_MAX_BLOCK_BYTES;
    f->max_raw = max_raw ? max_raw : 1024 * 1024;
    snprintf(f->codec, sizeof f->codec, "null");
    const uint8_t *p = buf, *end = buf + len;
    if (len < 4 || memcmp(p, MAGIC, 4)) return header_fail(f, "no Obj\\1 magic", err, errlen);
    p += 4;
    size_t entries = 0;
    for (;;) {
        int64_t c;
        if (avdec_long(&p, end, &c)) return header_fail(f, "truncated metadata", err, errlen);
        if (c == 0) break;
        if (c < 0) {
            int64_t bytes;
            if (c == INT64_MIN || avdec_long(&p, end, &bytes) || bytes < 0)
                return header_fail(f, "bad metadata block", err, errlen);
            c = -c;
        }
        if ((uint64_t)c > MAX_META_ENTRIES - entries)
            return header_fail(f, "over 1024 metadata entries", err, errlen);
        entries += (size_t)c;
        for (int64_t k = 0; k < c; k++) {
            const uint8_t *key, *val;
            size_t klen, vlen;
            if (avdec_blob(&p, end, &key, &klen) || avdec_blob(&p, end, &val, &vlen))
                return header_fail(f, "truncated metadata", err, errlen);
            if (vlen > MAX_META_VALUE)
                return header_fail(f, "a metadata value over 16 MiB", err, errlen);
            if (klen == 11 && !memcmp(key, "avro.schema", 11)) {
                f->schema = val;
                f->schema_len = vlen;
            } else if (klen == 10 && !memcmp(key, "avro.codec", 10)) {
                if ((vlen == 4 && !memcmp(val, "null", 4)) ||
                    (vlen == 7 && !memcmp(val, "deflate", 7)) ||
                    (vlen == 6 && !memcmp(val, "snappy", 6))) {
                    memcpy(f->codec, val, vlen);
                    f->codec[vlen] = 0;
                } else {
                    char what[96];
                    snprintf(what, sizeof what, "codec \"%.*s\" (null, deflate or snappy)",
                             (int)(vlen > 32 ? 32 : vlen), (const char *)val);
                    return header_fail(f, what, err, errlen);
                }
            }
        }
    }
    if (!f->schema) return header_fail(f, "no avro.schema in the header", err, errlen);
    if ((size_t)(end - p) < 16) return header_fail(f, "truncated sync marker", err, errlen);
    memcpy(f->sync, p, 16);
    p += 16;
    f->pos = f->data_offset = (size_t)(p - buf);
    *out = f;
    return 0;
}

const char *avdec_file_schema(const avdec_file *f, size_t *len)
{
    *len = f->schema_len;
    return (const char *)f->schema;
}

const char *avdec_file_codec(const avdec_file *f)
{
    return f->codec;
}

uint64_t avdec_file_data_offset(const avdec_file *f)
{
    return f->data_offset;
}

uint64_t avdec_file_position(const avdec_file *f)
{
    return f->pos;
}

static int reserve_inflated(avdec_file *f, size_t n)
{
    if (n <= f->inflated_cap) return 0;
    size_t c = f->inflated_cap ? f->inflated_cap : 64 * 1024;
    while (c < n)
        c *= 2;
    if (c > f->max_block) c = f->max_block;
    if (c < n) return -1;
    uint8_t *p = realloc(f->inflated, c);
    if (!p) return -1;
    f->inflated = p;
    f->inflated_cap = c;
    return 0;
}

/* Inflates a raw deflate stream (the Avro deflate codec: RFC 1951, no zlib header). */
static const char *inflate_block(avdec_file *f, const uint8_t *in, size_t n, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK) return "deflate: cannot start zlib";
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    size_t have = 0;
    const char *why = NULL;
    for (;;) {
        size_t want = have + (n > 4096 ? n : 4096);
        if (want > f->max_block) want = f->max_block;
        if (want <= have || reserve_inflated(f, want)) {
            why = "deflate: the block inflates past the block limit";
            break;
        }
        z.next_out = f->inflated + have;
        z.avail_out = (uInt)(f->inflated_cap - have);
        int rc = inflate(&z, Z_NO_FLUSH);
        have = f->inflated_cap - z.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc == Z_OK && z.avail_out == 0) continue;
        why = rc == Z_OK || rc == Z_BUF_ERROR ? "deflate: truncated stream" : "deflate: bad data";
        break;
    }
    inflateEnd(&z);
    *outlen = have;
    return why;
}

static const char *snappy_block(avdec_file *f, const uint8_t *in, size_t n, size_t *outlen)
{
    if (n < 4) return "snappy: block shorter than its CRC";
    size_t ulen;
    if (snappy_uncompressed_length((const char *)in, n - 4, &ulen) != SNAPPY_OK)
        return "snappy: bad length header";
    if (ulen > f->max_block) return "snappy: the block inflates past the block limit";
    if (reserve_inflated(f, ulen ? ulen : 1)) return "snappy: out of memory";
    size_t got = f->inflated_cap;
    if (snappy_uncompress((const char *)in, n - 4, (char *)f->inflated, &got) != SNAPPY_OK ||
        got != ulen)
        return "snappy: bad data";
    const uint8_t *c = in + n - 4;
    uint32_t want = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
    if ((uint32_t)crc32(0L, f->inflated, (uInt)ulen) != want) return "snappy: CRC mismatch";
    *outlen = ulen;
    return NULL;
}

/* Reports [start, the next sync marker's end) as bad and moves past it. */
static int bad_span(avdec_file *f, size_t start, const char *why, avdec_bad *bad)
{
    const uint8_t *from = f->buf + start + 1;
    const uint8_t *hit = start + 1 < f->len ? memmem(from, f->len - start - 1, f->sync, 16) : NULL;
    size_t stop = hit ? (size_t)(hit - f->buf) + 16 : f->len;
    snprintf(f->errbuf, sizeof f->errbuf, "%s: block at byte %zu: %s", f->name, start, why);
    bad->offset = start;
    bad->error = f->errbuf;
    bad->raw = f->buf + start;
    bad->full_len = stop - start;
    bad->raw_len = bad->full_len < f->max_raw ? bad->full_len : f->max_raw;
    f->pos = stop;
    return 2;
}

int avdec_file_next_block(avdec_file *f, avdec_block *b, avdec_bad *bad)
{
    if (f->pos >= f->len) return 0;
    size_t start = f->pos;
    const uint8_t *p = f->buf + start, *end = f->buf + f->len;
    int64_t count, size;
    if (avdec_long(&p, end, &count) || avdec_long(&p, end, &size))
        return bad_span(f, start, "truncated block header", bad);
    if (count < 0 || size < 0) return bad_span(f, start, "negative block count or size", bad);
    if ((uint64_t)size > f->max_block) {
        char why[96];
        snprintf(why, sizeof why, "block of %lld bytes over the limit of %zu", (long long)size,
                 f->max_block);
        return bad_span(f, start, why, bad);
    }
    if ((uint64_t)size + 16 > (uint64_t)(end - p))
        return bad_span(f, start, "truncated block", bad);
    if (memcmp(p + size, f->sync, 16)) return bad_span(f, start, "wrong sync marker", bad);
    const char *why = NULL;
    size_t n = (size_t)size;
    b->data = p;
    b->len = n;
    if (!strcmp(f->codec, "deflate")) {
        why = inflate_block(f, p, n, &b->len);
        b->data = f->inflated;
    } else if (!strcmp(f->codec, "snappy")) {
        why = snappy_block(f, p, n, &b->len);
        b->data = f->inflated;
    }
    if (why) return bad_span(f, start, why, bad);
    b->offset = start;
    b->count = count;
    f->pos = (size_t)(p - f->buf) + n + 16;
    b->end = f->pos;
    return 1;
}

void avdec_file_free(avdec_file *f)
{
    if (!f) return;
    free(f->inflated);
    free(f->name);
    free(f);
}
