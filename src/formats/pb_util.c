/*
 * pb_util: arena allocator, descriptor-driven field access, UTF-8 and nesting
 * checks. See pb_util.h.
 */
#include "formats/pb_util.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena allocator ---------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    alignas(max_align_t) unsigned char data[];
} arena_chunk;

struct pb_arena {
    ProtobufCAllocator allocator; /* allocator_data points back here */
    arena_chunk *head;
    arena_chunk *cur;
    size_t chunk_bytes;
    size_t cap_bytes;
    size_t held; /* chunk bytes incl. headers */
    size_t used;
    int cap_hit;
};

#define ARENA_ALIGN (alignof(max_align_t))

static size_t align_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
}

static arena_chunk *arena_chunk_new(pb_arena *a, size_t size)
{
    size_t total = sizeof(arena_chunk) + size;
    if (total < size || a->held + total > a->cap_bytes || a->held + total < a->held) {
        a->cap_hit = 1;
        return NULL;
    }
    arena_chunk *c = malloc(total);
    if (!c) return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    a->held += total;
    return c;
}

static void *arena_alloc(void *data, size_t size)
{
    pb_arena *a = data;
    size_t need = align_up(size);
    if (need < size) {
        a->cap_hit = 1;
        return NULL;
    }
    arena_chunk *c = a->cur;
    if (c->size - c->used < need) {
        /* after a reset the following chunks are empty: reuse the next one if
         * it is big enough, else put a fresh chunk right after the current */
        if (c->next && c->next->used == 0 && c->next->size >= need) {
            c = c->next;
        } else {
            arena_chunk *n = arena_chunk_new(a, need > a->chunk_bytes ? need : a->chunk_bytes);
            if (!n) return NULL;
            n->next = c->next;
            c->next = n;
            c = n;
        }
        a->cur = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

static void arena_free_noop(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

pb_arena *pb_arena_new(size_t chunk_bytes, size_t cap_bytes)
{
    if (chunk_bytes == 0 || chunk_bytes > cap_bytes) return NULL;
    pb_arena *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->chunk_bytes = align_up(chunk_bytes);
    a->cap_bytes = cap_bytes;
    a->allocator.alloc = arena_alloc;
    a->allocator.free = arena_free_noop;
    a->allocator.allocator_data = a;
    /* the cap counts chunk headers too; the first chunk must fit */
    a->head = arena_chunk_new(a, a->chunk_bytes);
    if (!a->head) {
        free(a);
        return NULL;
    }
    a->cap_hit = 0;
    a->cur = a->head;
    return a;
}

void pb_arena_free(pb_arena *a)
{
    if (!a) return;
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

ProtobufCAllocator *pb_arena_allocator(pb_arena *a)
{
    return &a->allocator;
}

void pb_arena_reset(pb_arena *a, size_t keep_bytes)
{
    if (a->held > keep_bytes) {
        arena_chunk *c = a->head->next;
        while (c) {
            arena_chunk *n = c->next;
            a->held -= sizeof(arena_chunk) + c->size;
            free(c);
            c = n;
        }
        a->head->next = NULL;
    }
    for (arena_chunk *c = a->head; c; c = c->next)
        c->used = 0;
    a->cur = a->head;
    a->used = 0;
    a->cap_hit = 0;
}

size_t pb_arena_used(const pb_arena *a)
{
    return a->used;
}

size_t pb_arena_held(const pb_arena *a)
{
    return a->held;
}

int pb_arena_cap_hit(const pb_arena *a)
{
    return a->cap_hit;
}

/* ---- field access -------------------------------------------------------- */

size_t pb_type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

int pb_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    const void *member = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED) return 1;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const void *p = *(const void *const *)member;
        if (!p || p == f->default_value) return 0;
        if (f->label == PROTOBUF_C_LABEL_NONE && f->type == PROTOBUF_C_TYPE_STRING)
            return ((const char *)p)[0] != '\0';
        return 1;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    /* proto3 implicit presence: present iff not zero, as protobuf-c packs it */
    switch (f->type) {
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)member)->len > 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)member != 0.0f;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)member != 0.0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)member != 0;
    default:
        if (pb_type_size(f->type) == 8) return *(const uint64_t *)member != 0;
        return *(const uint32_t *)member != 0;
    }
}

size_t pb_field_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)((const char *)m + f->quantifier_offset);
    return pb_field_present(m, f) ? 1 : 0;
}

const void *pb_field_value(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, size_t i)
{
    const char *member = (const char *)m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        const char *arr = *(const char *const *)member;
        return arr + i * pb_type_size(f->type);
    }
    return member;
}

const ProtobufCFieldDescriptor *pb_field_by_name(const ProtobufCMessageDescriptor *d,
                                                 const char *name)
{
    return protobuf_c_message_descriptor_get_field_by_name(d, name);
}

/* protoc's map entry name: field name in CamelCase (first letter and each
 * letter after '_' upper-cased, '_' dropped) + "Entry" */
static int map_entry_name_matches(const char *entry_short, const char *field)
{
    const char *p = entry_short;
    int up = 1;
    for (const char *q = field; *q; q++) {
        if (*q == '_') {
            up = 1;
            continue;
        }
        char c = *q;
        if (up && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        up = 0;
        if (*p++ != c) return 0;
    }
    return strcmp(p, "Entry") == 0;
}

int pb_field_is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
        strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
        return 0;
    size_t pl = strlen(parent->name);
    if (strncmp(e->name, parent->name, pl) != 0 || e->name[pl] != '.') return 0;
    return map_entry_name_matches(e->name + pl + 1, f->name);
}

int pb_json_name(const char *proto_name, char *buf, size_t buflen)
{
    size_t n = 0;
    int up = 0;
    if (buflen == 0) return -1;
    for (const char *q = proto_name; *q; q++) {
        if (*q == '_') {
            up = 1;
            continue;
        }
        char c = *q;
        if (up && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        up = 0;
        if (n + 1 >= buflen) {
            buf[n] = '\0';
            return -1;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    return 0;
}

/* ---- wire pre-check ------------------------------------------------------ */

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

typedef struct {
    uint32_t path[PB_MAX_DEPTH + 1];
    int max_depth;
    int utf8;     /* also check string fields' bytes (pb_unpack_checked) */
    int bad_utf8; /* the walk failed on a string field's bytes */
    char *err;
    size_t errlen;
} depth_ctx;

static int utf8_bytes_valid(const uint8_t *s, size_t len);

static void depth_path(const depth_ctx *c, int depth, char *buf, size_t buflen)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < depth && i <= PB_MAX_DEPTH; i++) {
        int w = snprintf(buf + n, buflen - n, i ? ".%u" : "%u", (unsigned)c->path[i]);
        if (w < 0 || (size_t)w >= buflen - n) break;
        n += (size_t)w;
    }
}

static void depth_fail(depth_ctx *c, int depth, const char *what)
{
    char path[256];
    depth_path(c, depth, path, sizeof path);
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s (nesting limit %d) at field path %s", what, c->max_depth,
                 path[0] ? path : "(root)");
}

/* The field with number num: fields come in number order on the wire and in the descriptor
 * (protobuf-c sorts them), so the last one found or the next is nearly always it. */
static const ProtobufCFieldDescriptor *field_near(const ProtobufCMessageDescriptor *d,
                                                  uint32_t num, unsigned *hint)
{
    unsigned h = *hint;
    if (h < d->n_fields && d->fields[h].id == num) return &d->fields[h];
    if (h + 1 < d->n_fields && d->fields[h + 1].id == num) {
        *hint = h + 1;
        return &d->fields[h + 1];
    }
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, num);
    if (f) *hint = (unsigned)(f - d->fields);
    return f;
}

static int depth_walk(depth_ctx *c, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                      size_t len, int depth)
{
    size_t pos = 0;
    unsigned hint = 0;
    while (pos < len) {
        uint64_t tag;
        if (read_varint(p, len, &pos, &tag) < 0) {
            depth_fail(c, depth - 1, "truncated tag");
            return -1;
        }
        uint32_t num = (uint32_t)(tag >> 3);
        if (num == 0 || tag >> 32) {
            depth_fail(c, depth - 1, "bad field number");
            return -1;
        }
        if (depth - 1 <= PB_MAX_DEPTH) c->path[depth - 1] = num;
        uint64_t v;
        switch (tag & 7) {
        case 0:
            if (read_varint(p, len, &pos, &v) < 0) {
                depth_fail(c, depth, "truncated varint");
                return -1;
            }
            break;
        case 1:
            if (len - pos < 8) {
                depth_fail(c, depth, "truncated fixed64");
                return -1;
            }
            pos += 8;
            break;
        case 5:
            if (len - pos < 4) {
                depth_fail(c, depth, "truncated fixed32");
                return -1;
            }
            pos += 4;
            break;
        case 2: {
            if (read_varint(p, len, &pos, &v) < 0 || v > len - pos) {
                depth_fail(c, depth, "truncated length-delimited field");
                return -1;
            }
            const ProtobufCFieldDescriptor *f = d ? field_near(d, num, &hint) : NULL;
            if (c->utf8 && f && f->type == PROTOBUF_C_TYPE_STRING &&
                !utf8_bytes_valid(p + pos, (size_t)v)) {
                char path[256];
                c->bad_utf8 = 1;
                depth_path(c, depth, path, sizeof path);
                if (c->err && c->errlen)
                    snprintf(c->err, c->errlen, "invalid UTF-8 in string field at field path %s",
                             path);
                return -1;
            }
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth + 1 > c->max_depth) {
                    depth_fail(c, depth, "message nesting too deep");
                    return -1;
                }
                if (depth_walk(c, f->descriptor, p + pos, (size_t)v, depth + 1) < 0) return -1;
            }
            pos += (size_t)v;
            break;
        }
        default:
            depth_fail(c, depth, "unsupported wire type");
            return -1;
        }
    }
    return 0;
}

int pb_wire_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                        int max_depth, char *err, size_t errlen)
{
    depth_ctx c;
    if (max_depth > PB_MAX_DEPTH) max_depth = PB_MAX_DEPTH;
    if (max_depth < 1) max_depth = 1;
    c.max_depth = max_depth;
    c.utf8 = 0;
    c.bad_utf8 = 0;
    c.err = err;
    c.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    return depth_walk(&c, d, data, len, 1);
}

/* ---- UTF-8 -------------------------------------------------------------- */

int pb_utf8_valid(const char *str, size_t len)
{
    return utf8_bytes_valid((const uint8_t *)str, len);
}

/* Nearly every string is ASCII: eight bytes are checked at once while no high bit is set. */
static int utf8_bytes_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            uint64_t w;
            while (len - i >= 8 && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ULL))) i += 8;
            while (i < len && s[i] < 0x80) i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return 0;
        }
        if (len - i <= n) return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += n + 1;
    }
    return 1;
}

typedef struct {
    char path[512];
    size_t len;
    char *err;
    size_t errlen;
    int track; /* build the field path (the second walk, after a failure) */
} utf8_ctx;

/* appends to the path, truncating silently (the path is only for messages) */
static size_t path_push(utf8_ctx *c, const char *fmt, ...)
{
    size_t old = c->len;
    if (c->len < sizeof c->path - 1) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(c->path + c->len, sizeof c->path - c->len, fmt, ap);
        va_end(ap);
        if (w > 0)
            c->len += (size_t)w < sizeof c->path - c->len ? (size_t)w : sizeof c->path - 1 - c->len;
    }
    return old;
}

static void path_pop(utf8_ctx *c, size_t old)
{
    c->len = old;
    c->path[old] = '\0';
}

static int utf8_walk(utf8_ctx *c, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > PB_MAX_DEPTH) {
        if (c->track && c->err && c->errlen)
            snprintf(c->err, c->errlen, "message nesting deeper than %d at %s", PB_MAX_DEPTH,
                     c->path);
        return -1;
    }
    for (unsigned fi = 0; fi < d->n_fields; fi++) {
        const ProtobufCFieldDescriptor *f = &d->fields[fi];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if (!pb_field_present(m, f)) continue;
        size_t n = pb_field_count(m, f);
        int rep = f->label == PROTOBUF_C_LABEL_REPEATED;
        for (size_t i = 0; i < n; i++) {
            /* the path is only built on the second walk, after a failure, to name the field */
            size_t mark = c->len;
            if (c->track) {
                path_push(c, c->len ? ".%s" : "%s", f->name);
                if (rep) path_push(c, "[%zu]", i);
            }
            const void *v = pb_field_value(m, f, i);
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *s = *(const char *const *)v;
                if (s && !pb_utf8_valid(s, strlen(s))) {
                    if (c->track && c->err && c->errlen)
                        snprintf(c->err, c->errlen, "invalid UTF-8 in string field %s", c->path);
                    return -1;
                }
            } else {
                const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)v;
                if (sub && utf8_walk(c, sub, depth + 1) < 0) return -1;
            }
            if (c->track) path_pop(c, mark);
        }
    }
    return 0;
}

int pb_check_utf8(const ProtobufCMessage *m, char *err, size_t errlen)
{
    utf8_ctx c;
    c.path[0] = '\0';
    c.len = 0;
    c.err = err;
    c.errlen = errlen;
    c.track = 0;
    if (err && errlen) err[0] = '\0';
    if (utf8_walk(&c, m, 1) == 0) return 0;
    /* rare: walk again, building the path, to name the first bad field */
    c.track = 1;
    utf8_walk(&c, m, 1);
    return -1;
}

/* ---- checked decode ------------------------------------------------------ */

int pb_unpack_checked(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                      ProtobufCAllocator *alloc, ProtobufCMessage **out, char *err, size_t errlen)
{
    return pb_unpack_checked_as(d, d, data, len, alloc, out, err, errlen);
}

int pb_unpack_checked_as(const ProtobufCMessageDescriptor *d,
                         const ProtobufCMessageDescriptor *unpack_as, const uint8_t *data,
                         size_t len, ProtobufCAllocator *alloc, ProtobufCMessage **out, char *err,
                         size_t errlen)
{
    char why[384];
    *out = NULL;
    /* One walk over the wire bytes checks the nesting and every string field's UTF-8 (what
     * Java's parser checks), so the unpacked message needs no second walk. */
    depth_ctx c;
    c.max_depth = PB_MAX_DEPTH;
    c.utf8 = 1;
    c.bad_utf8 = 0;
    c.err = why;
    c.errlen = sizeof why;
    why[0] = '\0';
    int walked = depth_walk(&c, d, data, len, 1);
    if (walked < 0 && c.bad_utf8) {
        /* the walk stopped at the bad string: the rest must still pass the nesting check
         * before protobuf-c recurses into it */
        char deep[384];
        if (pb_wire_check_depth(d, data, len, PB_MAX_DEPTH, deep, sizeof deep) < 0) {
            snprintf(why, sizeof why, "%s", deep);
            c.bad_utf8 = 0;
        }
    }
    if (walked < 0 && !c.bad_utf8) {
        if (err && errlen) snprintf(err, errlen, "%s: %s", d->name, why);
        return -1;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(unpack_as, alloc, len, data);
    if (!m) {
        if (err && errlen)
            snprintf(err, errlen, "%s: protobuf-c could not decode %zu bytes", d->name, len);
        return -1;
    }
    if (c.bad_utf8) {
        /* rare: name the field as the message walk does; bytes after a NUL that the walk of
         * the C strings cannot see keep the wire walk's numeric path */
        char named[384];
        if (pb_check_utf8(m, named, sizeof named) < 0) snprintf(why, sizeof why, "%s", named);
        if (err && errlen) snprintf(err, errlen, "%s: %s", d->name, why);
        protobuf_c_message_free_unpacked(m, alloc);
        return -1;
    }
    *out = m;
    return 0;
}
