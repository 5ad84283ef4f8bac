/*
 * pb_json: canonical proto3 JSON printer over protobuf-c descriptors.
 * See pb_json.h for the mapping.
 */
#include "formats/pb_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pb_private.h"
#include "formats/pb_util.h"
#include "google/protobuf/struct.pb-c.h"

typedef struct {
    char *p;
    size_t len, cap, max;
    int oom, too_big, too_deep;
    const char *deep_field;
    unsigned flags;
} jw;

static int jw_reserve(jw *w, size_t extra)
{
    if (w->oom || w->too_big) return -1;
    if (w->len + extra > w->max) {
        w->too_big = 1;
        return -1;
    }
    if (w->len + extra + 1 <= w->cap) return 0;
    size_t nc = w->cap ? w->cap : 256;
    while (nc < w->len + extra + 1)
        nc *= 2;
    char *np = realloc(w->p, nc);
    if (!np) {
        w->oom = 1;
        return -1;
    }
    w->p = np;
    w->cap = nc;
    return 0;
}

static void jw_put(jw *w, const char *s, size_t n)
{
    if (jw_reserve(w, n) < 0) return;
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

static void jw_puts(jw *w, const char *s)
{
    jw_put(w, s, strlen(s));
}

static void jw_putc(jw *w, char c)
{
    jw_put(w, &c, 1);
}

static void jw_printf(jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jw_printf(jw *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) jw_put(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    size_t n = s[0] < 0x80 ? 1 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    if (n > left || !pb_utf8_valid((const char *)s, n)) return 0;
    return n;
}

static void jw_string(jw *w, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    jw_putc(w, '"');
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t run = i;
        /* copy plain runs in one go */
        while (run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            jw_put(w, str + i, run - i);
            i = run;
            continue;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            jw_put(w, e, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n':
                jw_puts(w, "\\n");
                break;
            case '\r':
                jw_puts(w, "\\r");
                break;
            case '\t':
                jw_puts(w, "\\t");
                break;
            case '\b':
                jw_puts(w, "\\b");
                break;
            case '\f':
                jw_puts(w, "\\f");
                break;
            default:
                jw_printf(w, "\\u%04x", c);
            }
            i++;
        } else {
            size_t n = utf8_seq(s + i, len - i);
            if (n == 0) {
                jw_puts(w, "\\ufffd");
                i++;
            } else {
                jw_put(w, str + i, n);
                i += n;
            }
        }
    }
    jw_putc(w, '"');
}

static void jw_base64(jw *w, const uint8_t *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    jw_putc(w, '"');
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        char o[4] = {tab[d[i] >> 2], tab[((d[i] & 3) << 4) | (d[i + 1] >> 4)],
                     tab[((d[i + 1] & 15) << 2) | (d[i + 2] >> 6)], tab[d[i + 2] & 63]};
        jw_put(w, o, 4);
    }
    if (n - i == 1) {
        char o[4] = {tab[d[i] >> 2], tab[(d[i] & 3) << 4], '=', '='};
        jw_put(w, o, 4);
    } else if (n - i == 2) {
        char o[4] = {tab[d[i] >> 2], tab[((d[i] & 3) << 4) | (d[i + 1] >> 4)],
                     tab[(d[i + 1] & 15) << 2], '='};
        jw_put(w, o, 4);
    }
    jw_putc(w, '"');
}

static void jw_double(jw *w, double v, int digits)
{
    if (isnan(v))
        jw_puts(w, "\"NaN\"");
    else if (isinf(v))
        jw_puts(w, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
        jw_printf(w, "%.*g", digits, v);
}

static void print_message(jw *w, const ProtobufCMessage *m, int depth);

/* Prints one scalar/string/bytes/enum/message value stored at v. */
static void print_value(jw *w, const ProtobufCFieldDescriptor *f, const void *v, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        jw_printf(w, "%" PRId32, *(const int32_t *)v);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        jw_printf(w, "%" PRIu32, *(const uint32_t *)v);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        jw_printf(w, "\"%" PRId64 "\"", *(const int64_t *)v);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        jw_printf(w, "\"%" PRIu64 "\"", *(const uint64_t *)v);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        jw_double(w, *(const float *)v, 9);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        jw_double(w, *(const double *)v, 17);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        jw_puts(w, *(const protobuf_c_boolean *)v ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        int32_t n = *(const int32_t *)v;
        if (ed == &google__protobuf__null_value__descriptor) {
            jw_puts(w, "null");
            break;
        }
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, n);
        if (ev)
            jw_string(w, ev->name, strlen(ev->name));
        else
            jw_printf(w, "%" PRId32, n);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;
        if (!s) s = "";
        jw_string(w, s, strlen(s));
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = v;
        jw_base64(w, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)v;
        if (!sub) {
            /* a map entry without its value: the default, as proto3 reads it */
            const ProtobufCMessageDescriptor *sd = f->descriptor;
            jw_puts(w, sd == &google__protobuf__value__descriptor        ? "null"
                       : sd == &google__protobuf__list_value__descriptor ? "[]"
                                                                         : "{}");
        } else {
            if (depth + 1 > PB_MAX_DEPTH) {
                w->too_deep = 1;
                w->deep_field = f->name;
                return;
            }
            print_message(w, sub, depth + 1);
        }
        break;
    }
    }
}

/* Prints the map key of an entry as a JSON string. */
static void print_map_key(jw *w, const ProtobufCMessage *entry)
{
    const ProtobufCFieldDescriptor *kf = &entry->descriptor->fields[0];
    const void *v = pb_field_value(entry, kf, 0);
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)v;
        if (!s) s = "";
        jw_string(w, s, strlen(s));
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        jw_puts(w, *(const protobuf_c_boolean *)v ? "\"true\"" : "\"false\"");
        break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        jw_printf(w, "\"%" PRId32 "\"", *(const int32_t *)v);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        jw_printf(w, "\"%" PRIu32 "\"", *(const uint32_t *)v);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        jw_printf(w, "\"%" PRId64 "\"", *(const int64_t *)v);
        break;
    default:
        jw_printf(w, "\"%" PRIu64 "\"", *(const uint64_t *)v);
        break;
    }
}

/* Prints the entries of a map field (or Struct.fields) as a JSON object. */
static void print_map(jw *w, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                      int depth)
{
    size_t n = pb_field_count(m, f);
    jw_putc(w, '{');
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessage *e = *(const ProtobufCMessage *const *)pb_field_value(m, f, i);
        if (i) jw_putc(w, ',');
        if (!e) {
            jw_puts(w, "\"\":null");
            continue;
        }
        print_map_key(w, e);
        jw_putc(w, ':');
        const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
        print_value(w, vf, pb_field_value(e, vf, 0), depth);
    }
    jw_putc(w, '}');
}

static void print_list_value(jw *w, const Google__Protobuf__ListValue *l, int depth);
static void print_struct(jw *w, const Google__Protobuf__Struct *s, int depth);

static void print_struct_value(jw *w, const Google__Protobuf__Value *v, int depth)
{
    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        jw_double(w, v->number_value, 17);
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: {
        const char *s = v->string_value ? v->string_value : "";
        jw_string(w, s, strlen(s));
        break;
    }
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
        jw_puts(w, v->bool_value ? "true" : "false");
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        if (v->struct_value)
            print_struct(w, v->struct_value, depth + 1);
        else
            jw_puts(w, "{}");
        break;
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
        if (v->list_value)
            print_list_value(w, v->list_value, depth + 1);
        else
            jw_puts(w, "[]");
        break;
    default: /* null_value, or no kind set */
        jw_puts(w, "null");
        break;
    }
}

static int deep(jw *w, int depth, const char *where)
{
    if (depth > PB_MAX_DEPTH) {
        w->too_deep = 1;
        w->deep_field = where;
        return 1;
    }
    return 0;
}

static void print_list_value(jw *w, const Google__Protobuf__ListValue *l, int depth)
{
    if (deep(w, depth, "google.protobuf.ListValue")) return;
    jw_putc(w, '[');
    for (size_t i = 0; i < l->n_values; i++) {
        if (i) jw_putc(w, ',');
        if (l->values[i])
            print_struct_value(w, l->values[i], depth + 1);
        else
            jw_puts(w, "null");
    }
    jw_putc(w, ']');
}

static void print_struct(jw *w, const Google__Protobuf__Struct *s, int depth)
{
    if (deep(w, depth, "google.protobuf.Struct")) return;
    print_map(w, &s->base, &s->base.descriptor->fields[0], depth);
}

static void print_key(jw *w, int *first, const char *proto_name)
{
    char name[128];
    if (!*first) jw_putc(w, ',');
    *first = 0;
    pb_json_name(proto_name, name, sizeof name);
    jw_string(w, name, strlen(name));
    jw_putc(w, ':');
}

static void print_private(jw *w, const ProtobufCMessage *m, int *first, int depth)
{
    size_t nf;
    const pb_private_field *pf = pb_private_fields(&nf);
    for (size_t k = 0; k < nf; k++) {
        if (pf[k].owner != m->descriptor) continue;
        if (pf[k].repeated) {
            ProtobufCMessage **list;
            size_t n;
            if (pb_private_get_list(m, pf[k].number, pf[k].type, NULL, &list, &n) < 0) {
                w->oom = 1;
                return;
            }
            if (n) {
                print_key(w, first, pf[k].name);
                jw_putc(w, '[');
                for (size_t i = 0; i < n; i++) {
                    if (i) jw_putc(w, ',');
                    print_message(w, list[i], depth + 1);
                }
                jw_putc(w, ']');
            }
            pb_private_free_list(list, n, NULL);
        } else {
            ProtobufCMessage *one;
            if (pb_private_get_one(m, pf[k].number, pf[k].type, NULL, &one) < 0) {
                w->oom = 1;
                return;
            }
            if (one) {
                print_key(w, first, pf[k].name);
                print_message(w, one, depth + 1);
                protobuf_c_message_free_unpacked(one, NULL);
            }
        }
    }
}

static void print_message(jw *w, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (deep(w, depth, d->name) || w->oom || w->too_big || w->too_deep) return;
    if (d == &google__protobuf__struct__descriptor) {
        print_struct(w, (const Google__Protobuf__Struct *)m, depth);
        return;
    }
    if (d == &google__protobuf__value__descriptor) {
        print_struct_value(w, (const Google__Protobuf__Value *)m, depth);
        return;
    }
    if (d == &google__protobuf__list_value__descriptor) {
        print_list_value(w, (const Google__Protobuf__ListValue *)m, depth);
        return;
    }
    int first = 1;
    jw_putc(w, '{');
    for (unsigned fi = 0; fi < d->n_fields; fi++) {
        const ProtobufCFieldDescriptor *f = &d->fields[fi];
        if (!pb_field_present(m, f)) continue;
        print_key(w, &first, f->name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && pb_field_is_map(d, f)) {
                print_map(w, m, f, depth);
                continue;
            }
            size_t n = pb_field_count(m, f);
            jw_putc(w, '[');
            for (size_t i = 0; i < n; i++) {
                if (i) jw_putc(w, ',');
                print_value(w, f, pb_field_value(m, f, i), depth);
            }
            jw_putc(w, ']');
        } else {
            print_value(w, f, pb_field_value(m, f, 0), depth);
        }
    }
    if ((w->flags & PB_JSON_PRIVATE) && m->n_unknown_fields) print_private(w, m, &first, depth);
    jw_putc(w, '}');
}

int pb_json_encode_ex(const ProtobufCMessage *msg, unsigned flags, size_t max_bytes, char **out,
                      size_t *len_out, char *err, size_t errlen)
{
    jw w;
    memset(&w, 0, sizeof w);
    w.max = max_bytes ? max_bytes : PB_JSON_DEFAULT_MAX;
    w.flags = flags;
    *out = NULL;
    if (jw_reserve(&w, 0) == 0) print_message(&w, msg, 1);
    if (w.oom || w.too_big || w.too_deep || !w.p) {
        if (err && errlen) {
            if (w.too_big)
                snprintf(err, errlen, "JSON output of %s exceeds %zu bytes", msg->descriptor->name,
                         w.max);
            else if (w.too_deep)
                snprintf(err, errlen, "nesting deeper than %d at %s", PB_MAX_DEPTH,
                         w.deep_field ? w.deep_field : "?");
            else
                snprintf(err, errlen, "out of memory printing %s as JSON", msg->descriptor->name);
        }
        free(w.p);
        return -1;
    }
    *out = w.p;
    if (len_out) *len_out = w.len;
    return 0;
}

char *pb_json_encode(const ProtobufCMessage *msg, size_t *len_out)
{
    char *out;
    if (pb_json_encode_ex(msg, 0, 0, &out, len_out, NULL, 0) < 0) return NULL;
    return out;
}
