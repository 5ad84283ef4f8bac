#include "formats/pb_text.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/java_text.h"
#include "formats/pb_private.h"
#include "formats/pb_util.h"

/* ---- printing ------------------------------------------------------------------ */

typedef struct printer {
    FILE *out;
    int err;
} printer;

static void indent(printer *p, int depth)
{
    for (int i = 0; i < depth; i++)
        fputs("  ", p->out);
}

/* Java TextFormat.escapeBytes */
static void print_escaped(printer *p, const uint8_t *s, size_t n)
{
    fputc('"', p->out);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        switch (c) {
        case 0x07:
            fputs("\\a", p->out);
            break;
        case '\b':
            fputs("\\b", p->out);
            break;
        case '\f':
            fputs("\\f", p->out);
            break;
        case '\n':
            fputs("\\n", p->out);
            break;
        case '\r':
            fputs("\\r", p->out);
            break;
        case '\t':
            fputs("\\t", p->out);
            break;
        case 0x0b:
            fputs("\\v", p->out);
            break;
        case '\\':
            fputs("\\\\", p->out);
            break;
        case '\'':
            fputs("\\'", p->out);
            break;
        case '"':
            fputs("\\\"", p->out);
            break;
        default:
            if (c >= 0x20 && c < 0x7f)
                fputc(c, p->out);
            else
                fprintf(p->out, "\\%03o", c);
        }
    }
    fputc('"', p->out);
}

static void print_message(printer *p, const ProtobufCMessage *m, int depth);

/* Prints one scalar or message value of field f located at v (an element address as given by
 * pb_field_value). */
static void print_value(printer *p, const ProtobufCFieldDescriptor *f, const void *v, int depth)
{
    char num[48];
    FILE *o = p->out;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        fprintf(o, "%" PRId32, *(const int32_t *)v);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        fprintf(o, "%" PRIu32, *(const uint32_t *)v);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        fprintf(o, "%" PRId64, *(const int64_t *)v);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(o, "%" PRIu64, *(const uint64_t *)v);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        java_float_string(*(const float *)v, num, sizeof num);
        fputs(num, o);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        java_double_string(*(const double *)v, num, sizeof num);
        fputs(num, o);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)v ? "true" : "false", o);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int value = *(const int *)v;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, value);
        if (ev)
            fputs(ev->name, o);
        else
            fprintf(o, "%d", value);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;
        print_escaped(p, (const uint8_t *)(s ? s : ""), s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = v;
        print_escaped(p, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        break; /* handled by the caller */
    }
}

static void print_field_value(printer *p, const char *name, const ProtobufCFieldDescriptor *f,
                              const void *v, int depth)
{
    indent(p, depth);
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)v;
        fprintf(p->out, "%s {\n", name);
        if (sub) print_message(p, sub, depth + 1);
        indent(p, depth);
        fputs("}\n", p->out);
        return;
    }
    fprintf(p->out, "%s: ", name);
    print_value(p, f, v, depth);
    fputc('\n', p->out);
}

/* A map entry prints both halves, whatever their values (Java's MapEntry has no presence). */
static void print_map_entry(printer *p, const ProtobufCMessage *e, int depth)
{
    const ProtobufCMessageDescriptor *d = e->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
            !*(const ProtobufCMessage *const *)pb_field_value(e, f, 0))
            continue;
        print_field_value(p, f->name, f, pb_field_value(e, f, 0), depth);
    }
}

/* Key order of map entries: Java's TextFormat sorts them by key. */
static int cmp_entries(const void *a, const void *b)
{
    const ProtobufCMessage *x = *(const ProtobufCMessage *const *)a;
    const ProtobufCMessage *y = *(const ProtobufCMessage *const *)b;
    const ProtobufCFieldDescriptor *kf = &x->descriptor->fields[0];
    const void *kx = pb_field_value(x, kf, 0), *ky = pb_field_value(y, kf, 0);
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *sx = *(const char *const *)kx, *sy = *(const char *const *)ky;
        return strcmp(sx ? sx : "", sy ? sy : "");
    }
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t u = *(const int32_t *)kx, w = *(const int32_t *)ky;
        return (u > w) - (u < w);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t u = *(const int64_t *)kx, w = *(const int64_t *)ky;
        return (u > w) - (u < w);
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t u = *(const uint32_t *)kx, w = *(const uint32_t *)ky;
        return (u > w) - (u < w);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t u = *(const uint64_t *)kx, w = *(const uint64_t *)ky;
        return (u > w) - (u < w);
    }
    case PROTOBUF_C_TYPE_BOOL: {
        int u = *(const protobuf_c_boolean *)kx != 0, w = *(const protobuf_c_boolean *)ky != 0;
        return u - w;
    }
    default:
        return 0;
    }
}

static void print_known_field(printer *p, const ProtobufCMessage *m,
                              const ProtobufCFieldDescriptor *f, int depth)
{
    if (!pb_field_present(m, f)) return;
    size_t n = pb_field_count(m, f);
    if (f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
        pb_field_is_map(m->descriptor, f)) {
        const ProtobufCMessage *const *entries = pb_field_value(m, f, 0);
        const ProtobufCMessage **sorted = malloc(n * sizeof *sorted);
        if (sorted) {
            memcpy(sorted, entries, n * sizeof *sorted);
            qsort(sorted, n, sizeof *sorted, cmp_entries); /* stable enough: keys are unique */
            entries = sorted;
        }
        for (size_t i = 0; i < n; i++) {
            indent(p, depth);
            fprintf(p->out, "%s {\n", f->name);
            print_map_entry(p, entries[i], depth + 1);
            indent(p, depth);
            fputs("}\n", p->out);
        }
        free(sorted);
        return;
    }
    for (size_t i = 0; i < n; i++)
        print_field_value(p, f->name, f, pb_field_value(m, f, i), depth);
}

/* The assumed private field `number` of messages of type d, or NULL. */
static const pb_private_field *private_field(const ProtobufCMessageDescriptor *d, uint32_t number)
{
    size_t n;
    const pb_private_field *t = pb_private_fields(&n);
    for (size_t i = 0; i < n; i++)
        if (t[i].owner == d && t[i].number == number) return &t[i];
    return NULL;
}

/* Prints unknown field u as the private field pf when its bytes decode; returns 0 if printed. */
static int print_private(printer *p, const pb_private_field *pf,
                         const ProtobufCMessageUnknownField *u, int depth)
{
    if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) return -1;
    /* protobuf-c keeps the length prefix at the start of the data */
    uint64_t plen = 0;
    size_t i = 0;
    for (int shift = 0;; shift += 7) {
        if (i >= u->len || shift > 63) return -1;
        uint8_t c = u->data[i++];
        plen |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
    }
    if (plen != u->len - i) return -1;
    char err[128];
    if (pb_wire_check_depth(pf->type, u->data + i, (size_t)plen, PB_MAX_DEPTH, err, sizeof err))
        return -1;
    ProtobufCMessage *sub = protobuf_c_message_unpack(pf->type, NULL, (size_t)plen, u->data + i);
    if (!sub) return -1;
    indent(p, depth);
    fprintf(p->out, "%s {\n", pf->name);
    print_message(p, sub, depth + 1);
    indent(p, depth);
    fputs("}\n", p->out);
    protobuf_c_message_free_unpacked(sub, NULL);
    return 0;
}

static void print_unknown(printer *p, const ProtobufCMessageUnknownField *u, int depth)
{
    indent(p, depth);
    switch (u->wire_type) {
    case PROTOBUF_C_WIRE_TYPE_VARINT: {
        uint64_t v = 0;
        for (size_t i = 0; i < u->len && i < 10; i++)
            v |= (uint64_t)(u->data[i] & 0x7f) << (7 * i);
        fprintf(p->out, "%u: %" PRIu64 "\n", u->tag, v);
        break;
    }
    case PROTOBUF_C_WIRE_TYPE_32BIT: {
        uint32_t v = 0;
        for (size_t i = 0; i < 4 && i < u->len; i++)
            v |= (uint32_t)u->data[i] << (8 * i);
        fprintf(p->out, "%u: 0x%08" PRIx32 "\n", u->tag, v);
        break;
    }
    case PROTOBUF_C_WIRE_TYPE_64BIT: {
        uint64_t v = 0;
        for (size_t i = 0; i < 8 && i < u->len; i++)
            v |= (uint64_t)u->data[i] << (8 * i);
        fprintf(p->out, "%u: 0x%016" PRIx64 "\n", u->tag, v);
        break;
    }
    default: {
        /* protobuf-c keeps the length prefix in the data; print the payload */
        size_t i = 0;
        while (i < u->len && i < 10 && (u->data[i] & 0x80)) i++;
        i = i < u->len ? i + 1 : 0;
        fprintf(p->out, "%u: ", u->tag);
        print_escaped(p, u->data + i, u->len - i);
        fputc('\n', p->out);
    }
    }
}

/* Print order of the private Session and SessionProfile: their real numbers are unknown, and
 * the reference's dumps show them in this order (the common header fields first, as in every
 * other event message); fields not listed follow by number. */
static const char *const session_order[] = {"platform_id",
                                            "user_info",
                                            "timing",
                                            "session_id",
                                            "location",
                                            "start_epoch_millis",
                                            "exclusive_end_epoch_millis",
                                            NULL};

static const char *const *print_order(const ProtobufCMessageDescriptor *d)
{
    if (d == &logproc__priv__session__descriptor ||
        d == &logproc__priv__session_profile__descriptor)
        return session_order;
    return NULL;
}

static void print_message(printer *p, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > PBTEXT_MAX_DEPTH) {
        indent(p, depth);
        fputs("# nesting limit\n", p->out);
        return;
    }
    const char *const *order = print_order(d);
    if (order) {
        unsigned char done[256] = {0};
        for (size_t k = 0; order[k]; k++) {
            const ProtobufCFieldDescriptor *f = pb_field_by_name(d, order[k]);
            if (!f) continue;
            print_known_field(p, m, f, depth);
            if (f - d->fields < 256) done[f - d->fields] = 1;
        }
        for (unsigned i = 0; i < d->n_fields; i++)
            if (i >= 256 || !done[i]) print_known_field(p, m, &d->fields[i], depth);
    }

    /* known fields and decodable private fields, merged by number; unknown ones after */
    size_t nu = m->n_unknown_fields;
    unsigned char *printed = nu ? calloc(nu, 1) : NULL;
    if (nu && !printed) p->err = 1;
    for (unsigned i = 0; i <= d->n_fields; i++) {
        uint32_t limit = i < d->n_fields ? d->fields[i].id : UINT32_MAX;
        /* private fields numbered below this known field, lowest number first */
        for (;;) {
            size_t best = nu;
            for (size_t j = 0; j < nu; j++) {
                const ProtobufCMessageUnknownField *u = &m->unknown_fields[j];
                if (printed && printed[j]) continue;
                if (u->tag >= limit || !private_field(d, u->tag)) continue;
                if (best == nu || u->tag < m->unknown_fields[best].tag) best = j;
            }
            if (best == nu || !printed) break;
            printed[best] = 1;
            const ProtobufCMessageUnknownField *u = &m->unknown_fields[best];
            if (print_private(p, private_field(d, u->tag), u, depth)) printed[best] = 2;
        }
        if (i < d->n_fields && !order) print_known_field(p, m, &d->fields[i], depth);
    }
    for (size_t j = 0; j < nu; j++)
        if (!printed || printed[j] != 1) print_unknown(p, &m->unknown_fields[j], depth);
    free(printed);
}

int pbtext_print(FILE *out, const ProtobufCMessage *m)
{
    printer p = {out, 0};
    print_message(&p, m, 0);
    return p.err || ferror(out) ? -1 : 0;
}

int pbtext_format(const ProtobufCMessage *m, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    FILE *f = open_memstream(text, len);
    if (!f) return -1;
    int rc = pbtext_print(f, m);
    if (fclose(f)) rc = -1;
    if (rc) {
        free(*text);
        *text = NULL;
        *len = 0;
    }
    return rc;
}
