/*
 * avro_schema: protobuf-c descriptor -> Avro schema (layout, JSON text, avro-c schema).
 * The mapping rule is in avro_schema.h and docs/AVRO.md.
 *
 * Building happens in three passes:
 *  1. collect the message types reachable from the root and find the recursive families
 *     (strongly connected components with a cycle) and, for each, the member whose removal
 *     leaves the family acyclic: passing it raises the depth;
 *  2. create one record per (message type, depth) actually reached, fields in descriptor order;
 *     naming comes last because the Flat rule depends on the fields;
 *  3. print the JSON (first use defines a type, later uses name it) and parse it with avro-c.
 */
#include "formats/avro_schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Bounds on what a schema may contain; they only guard against a runaway descriptor graph. */
#define MAX_TYPES 4096
#define MAX_NODES 16384
/* An enum whose numbers span more than this uses the sorted pairs instead of a table. */
#define MAX_ENUM_TABLE 4096

/* ---- memory: every allocation of a schema hangs off one list, freed at once ------------------ */

typedef struct pool_block {
    struct pool_block *next;
    max_align_t data[];
} pool_block;

/* ---- internal node types (the public part first, so a pointer converts) ---------------------- */

typedef struct rec_node {
    avsc_record pub;
    int type;     /* index into the type table */
    int building; /* guards against a cycle the depth rule failed to break */
    int emitted;  /* the JSON has defined it already */
    unsigned cap_fields, cap_cut;
    avsc_field *fields, *cut;
} rec_node;

typedef struct enum_node {
    avsc_enum pub;
    int emitted;
} enum_node;

typedef struct type_info {
    const ProtobufCMessageDescriptor *d;
    int *adj; /* message types its fields refer to (with repeats) */
    int n_adj, cap_adj;
    /* Tarjan */
    int index, low, on_stack;
    int family;     /* family id or -1 when not recursive */
    int level_type; /* 1 if passing this type raises the depth of its family */
    int mark;       /* scratch for the cycle check */
} type_info;

struct avsc_schema {
    pool_block *pool;
    char *json;
    size_t json_len;
    avro_schema_t avro;
    rec_node *root;
    rec_node **recs;
    unsigned n_recs, cap_recs;
    enum_node **enums;
    unsigned n_enums, cap_enums;
};

typedef struct builder {
    avsc_schema *s;
    type_info *types;
    int n_types, cap_types;
    int *stack, sp;
    int next_index;
    int n_families;
    char *err;
    size_t errlen;
} builder;

static void set_err(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(builder *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (b->err && b->errlen) vsnprintf(b->err, b->errlen, fmt, ap);
    va_end(ap);
}

static void *pool_alloc(avsc_schema *s, size_t n)
{
    pool_block *blk = calloc(1, sizeof *blk + n);
    if (!blk) return NULL;
    blk->next = s->pool;
    s->pool = blk;
    return blk->data;
}

static char *pool_strcat(avsc_schema *s, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *p = pool_alloc(s, la + lb + lc + 1);
    if (!p) return NULL;
    memcpy(p, a, la);
    memcpy(p + la, b, lb);
    memcpy(p + la + lb, c, lc + 1);
    return p;
}

static int grow(void **arr, unsigned *cap, unsigned need, size_t elt)
{
    if (need <= *cap) return 0;
    unsigned n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, (size_t)n * elt);
    if (!p) return -1;
    *arr = p;
    *cap = n;
    return 0;
}

/* ---- namespaces and names -------------------------------------------------------------------- */

const char *avsc_namespace_of_package(const char *package)
{
    static const struct {
        const char *package, *space;
    } map[] = {
        {"event", "ai.promoted.proto.event"},
        {"delivery", "ai.promoted.proto.delivery"},
        {"common", "ai.promoted.proto.common"},
        {"google.protobuf", "com.google.protobuf"},
        /* the private Session/SessionProfile are event records in the reference's schema */
        {"logproc.priv", "ai.promoted.proto.event"},
    };
    if (!package) return "";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].package, package)) return map[i].space;
    return package;
}

/*
 * Splits a qualified proto name into the namespace and name of its Avro type. `level` > 0
 * appends the depth to the outermost message of the nesting path (Struct -> Struct3,
 * Struct.FieldsEntry -> Struct3.FieldsEntry); `prefix` goes before the innermost name (Flat).
 */
static int make_names(builder *b, const char *qualified, const char *package, int level,
                      const char *prefix, const char **name, const char **space, const char **full)
{
    avsc_schema *s = b->s;
    const char *rel = qualified;
    size_t plen = package ? strlen(package) : 0;
    if (plen && !strncmp(qualified, package, plen) && qualified[plen] == '.') rel += plen + 1;

    char lvl[16] = "";
    if (level > 0) snprintf(lvl, sizeof lvl, "%d", level);

    const char *last = strrchr(rel, '.');
    const char *short_name = last ? last + 1 : rel;
    const char *n = pool_strcat(s, prefix, short_name, last ? "" : lvl);
    if (!n) goto oom;

    const char *base = avsc_namespace_of_package(package);
    const char *sp;
    if (last) {
        /* containers "A.B" -> "A<level>_B" (Java joined them with '$') */
        size_t clen = (size_t)(last - rel);
        char *cont = pool_alloc(s, clen + sizeof lvl + 1);
        if (!cont) goto oom;
        const char *dot = memchr(rel, '.', clen);
        size_t first = dot ? (size_t)(dot - rel) : clen;
        memcpy(cont, rel, first);
        strcpy(cont + first, lvl);
        size_t o = strlen(cont);
        for (size_t i = first; i < clen; i++)
            cont[o++] = rel[i] == '.' ? '_' : rel[i];
        cont[o] = 0;
        sp = *base ? pool_strcat(s, base, ".", cont) : cont;
    } else {
        sp = base;
    }
    if (!sp) goto oom;
    const char *f = *sp ? pool_strcat(s, sp, ".", n) : n;
    if (!f) goto oom;
    *name = n;
    *space = sp;
    *full = f;
    return 0;
oom:
    set_err(b, "out of memory naming %s", qualified);
    return -1;
}

/* ---- pass 1: type graph, recursive families -------------------------------------------------- */

static int type_index(builder *b, const ProtobufCMessageDescriptor *d)
{
    for (int i = 0; i < b->n_types; i++)
        if (b->types[i].d == d) return i;
    return -1;
}

static int collect_types(builder *b, const ProtobufCMessageDescriptor *d)
{
    if (type_index(b, d) >= 0) return 0;
    if (b->n_types >= MAX_TYPES) {
        set_err(b, "more than %d message types reachable (at %s)", MAX_TYPES, d->name);
        return -1;
    }
    unsigned cap = (unsigned)b->cap_types;
    if (grow((void **)&b->types, &cap, (unsigned)b->n_types + 1, sizeof *b->types)) {
        set_err(b, "out of memory collecting %s", d->name);
        return -1;
    }
    b->cap_types = (int)cap;
    int me = b->n_types++;
    memset(&b->types[me], 0, sizeof b->types[me]);
    b->types[me].d = d;
    b->types[me].index = -1;
    b->types[me].family = -1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const ProtobufCMessageDescriptor *sub = f->descriptor;
        if (collect_types(b, sub)) return -1;
        int t = type_index(b, sub);
        type_info *ti = &b->types[me]; /* the array may have moved */
        unsigned c = (unsigned)ti->cap_adj;
        if (grow((void **)&ti->adj, &c, (unsigned)ti->n_adj + 1, sizeof(int))) {
            set_err(b, "out of memory collecting %s", d->name);
            return -1;
        }
        ti->cap_adj = (int)c;
        ti->adj[ti->n_adj++] = t;
    }
    return 0;
}

static void tarjan(builder *b, int v)
{
    type_info *t = b->types;
    t[v].index = t[v].low = b->next_index++;
    b->stack[b->sp++] = v;
    t[v].on_stack = 1;
    for (int i = 0; i < t[v].n_adj; i++) {
        int w = t[v].adj[i];
        if (t[w].index < 0) {
            tarjan(b, w);
            if (t[w].low < t[v].low) t[v].low = t[w].low;
        } else if (t[w].on_stack && t[w].index < t[v].low) {
            t[v].low = t[w].index;
        }
    }
    if (t[v].low != t[v].index) return;
    /* v roots a component: it is a family if it has two members or a self-loop */
    int start = b->sp;
    do
        start--;
    while (b->stack[start] != v);
    int size = b->sp - start;
    int self_loop = 0;
    for (int i = 0; i < t[v].n_adj; i++)
        if (t[v].adj[i] == v) self_loop = 1;
    int fam = (size > 1 || self_loop) ? b->n_families++ : -1;
    for (int i = start; i < b->sp; i++) {
        t[b->stack[i]].on_stack = 0;
        t[b->stack[i]].family = fam;
    }
    b->sp = start;
}

/* 1 if the family has a cycle once `skip` is removed (colour DFS inside the family). */
static int has_cycle_from(builder *b, int v, int fam, int skip)
{
    type_info *t = b->types;
    t[v].mark = 1;
    for (int i = 0; i < t[v].n_adj; i++) {
        int w = t[v].adj[i];
        if (w == skip || t[w].family != fam) continue;
        if (t[w].mark == 1) return 1;
        if (t[w].mark == 0 && has_cycle_from(b, w, fam, skip)) return 1;
    }
    t[v].mark = 2;
    return 0;
}

static int family_cyclic_without(builder *b, int fam, int skip)
{
    for (int i = 0; i < b->n_types; i++)
        b->types[i].mark = 0;
    for (int i = 0; i < b->n_types; i++)
        if (i != skip && b->types[i].family == fam && b->types[i].mark == 0 &&
            has_cycle_from(b, i, fam, skip))
            return 1;
    return 0;
}

/* Picks each family's depth-raising member: the one on every cycle (lowest full name on a tie,
 * so the choice is deterministic). */
static int choose_level_types(builder *b)
{
    for (int fam = 0; fam < b->n_families; fam++) {
        int pick = -1;
        for (int i = 0; i < b->n_types; i++) {
            if (b->types[i].family != fam || family_cyclic_without(b, fam, i)) continue;
            if (pick < 0 || strcmp(b->types[i].d->name, b->types[pick].d->name) < 0) pick = i;
        }
        if (pick < 0) {
            char names[512] = "";
            for (int i = 0; i < b->n_types; i++) {
                if (b->types[i].family != fam) continue;
                size_t o = strlen(names);
                snprintf(names + o, sizeof names - o, "%s%s", o ? ", " : "", b->types[i].d->name);
            }
            set_err(b,
                    "recursive messages {%s}: no single type lies on every cycle, so the "
                    "depth rule cannot unroll them",
                    names);
            return -1;
        }
        b->types[pick].level_type = 1;
    }
    return 0;
}

/* ---- pass 2: records and enums --------------------------------------------------------------- */

static enum_node *get_enum(builder *b, const ProtobufCEnumDescriptor *d)
{
    avsc_schema *s = b->s;
    for (unsigned i = 0; i < s->n_enums; i++)
        if (s->enums[i]->pub.pb == d) return s->enums[i];
    if (grow((void **)&s->enums, &s->cap_enums, s->n_enums + 1, sizeof *s->enums)) goto oom;
    enum_node *e = pool_alloc(s, sizeof *e);
    if (!e) goto oom;
    avsc_enum *p = &e->pub;
    p->pb = d;
    if (make_names(b, d->name, d->package_name, 0, "", &p->name, &p->space, &p->full_name))
        return NULL;
    p->n_symbols = d->n_values + 1;
    p->unrecognized = (int32_t)d->n_values;
    p->zero_index = 0;
    for (unsigned i = 0; i < d->n_values; i++)
        if (d->values[i].value == 0) p->zero_index = (int32_t)i;
    if (d->n_values) {
        /* values[] is sorted by number with duplicates dropped: its index is the symbol index */
        int64_t lo = d->values[0].value, hi = d->values[d->n_values - 1].value;
        if (hi - lo < MAX_ENUM_TABLE) {
            int32_t *tab = pool_alloc(s, (size_t)(hi - lo + 1) * sizeof *tab);
            if (!tab) goto oom;
            for (int64_t k = 0; k <= hi - lo; k++)
                tab[k] = -1;
            for (unsigned i = 0; i < d->n_values; i++)
                tab[d->values[i].value - lo] = (int32_t)i;
            p->table = tab;
            p->table_min = (int32_t)lo;
            p->table_len = (uint32_t)(hi - lo + 1);
        } else {
            avsc_enum_pair *pairs = pool_alloc(s, d->n_values * sizeof *pairs);
            if (!pairs) goto oom;
            for (unsigned i = 0; i < d->n_values; i++) {
                pairs[i].number = d->values[i].value;
                pairs[i].index = (int32_t)i;
            }
            p->sparse = pairs;
            p->n_sparse = d->n_values;
        }
    }
    s->enums[s->n_enums++] = e;
    return e;
oom:
    set_err(b, "out of memory building enum %s", d->name);
    return NULL;
}

int32_t avsc_enum_index_sparse(const avsc_enum *e, int32_t v)
{
    unsigned lo = 0, hi = e->n_sparse;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (e->sparse[mid].number < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < e->n_sparse && e->sparse[lo].number == v) return e->sparse[lo].index;
    return e->unrecognized;
}

static avsc_kind kind_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return AVSC_INT;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return AVSC_LONG;
    case PROTOBUF_C_TYPE_FLOAT:
        return AVSC_FLOAT;
    case PROTOBUF_C_TYPE_DOUBLE:
        return AVSC_DOUBLE;
    case PROTOBUF_C_TYPE_BOOL:
        return AVSC_BOOL;
    case PROTOBUF_C_TYPE_ENUM:
        return AVSC_ENUM;
    case PROTOBUF_C_TYPE_STRING:
        return AVSC_STRING;
    case PROTOBUF_C_TYPE_BYTES:
        return AVSC_BYTES;
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    return AVSC_RECORD;
}

static avsc_presence presence_of(const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) return AVSC_REPEATED;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return AVSC_ONEOF;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE)
        return AVSC_HAS_FLAG;
    return AVSC_PLAIN;
}

static rec_node *get_record(builder *b, int type, int level);

/* The depth at which a field of `from` (at `level`) holds type `to`: 0 outside families,
 * 1 on entering a family, the same depth inside it, one more after its depth-raising type. */
static int target_level(builder *b, int from, int level, int to)
{
    const type_info *t = b->types;
    if (t[to].family < 0) return 0;
    if (t[from].family != t[to].family) return 1;
    return level + (t[from].level_type ? 1 : 0);
}

static int add_field(builder *b, rec_node *r, const ProtobufCFieldDescriptor *f)
{
    avsc_field af;
    memset(&af, 0, sizeof af);
    af.name = f->name;
    af.pb = f;
    af.kind = (uint8_t)kind_of(f->type);
    af.presence = (uint8_t)presence_of(f);
    af.pb_type = (uint8_t)f->type;
    af.id = f->id;
    af.offset = f->offset;
    af.quantifier_offset = f->quantifier_offset;
    int cut = 0;
    if (f->type == PROTOBUF_C_TYPE_ENUM) {
        enum_node *e = get_enum(b, f->descriptor);
        if (!e) return -1;
        af.enm = &e->pub;
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        int to = type_index(b, f->descriptor);
        int lvl = target_level(b, r->type, r->pub.level, to);
        if (lvl > AVSC_MAX_LEVEL) {
            cut = 1;
        } else {
            rec_node *sub = get_record(b, to, lvl);
            if (!sub) return -1;
            af.record = &sub->pub;
        }
    }
    if (cut) {
        if (grow((void **)&r->cut, &r->cap_cut, r->pub.n_cut + 1, sizeof af)) goto oom;
        r->cut[r->pub.n_cut++] = af;
    } else {
        if (grow((void **)&r->fields, &r->cap_fields, r->pub.n_fields + 1, sizeof af)) goto oom;
        r->fields[r->pub.n_fields++] = af;
    }
    return 0;
oom:
    set_err(b, "out of memory building %s", r->pub.pb->name);
    return -1;
}

static rec_node *get_record(builder *b, int type, int level)
{
    avsc_schema *s = b->s;
    for (unsigned i = 0; i < s->n_recs; i++) {
        rec_node *r = s->recs[i];
        if (r->type == type && r->pub.level == level) {
            if (r->building) {
                set_err(b,
                        "message %s refers to itself at depth %d: the depth rule did not "
                        "break this cycle",
                        r->pub.pb->name, level);
                return NULL;
            }
            return r;
        }
    }
    const ProtobufCMessageDescriptor *d = b->types[type].d;
    if (s->n_recs >= MAX_NODES) {
        set_err(b, "more than %d Avro records needed (at %s)", MAX_NODES, d->name);
        return NULL;
    }
    if (grow((void **)&s->recs, &s->cap_recs, s->n_recs + 1, sizeof *s->recs)) goto oom;
    rec_node *r = calloc(1, sizeof *r); /* fields arrays are realloc'ed, so not pooled */
    if (!r) goto oom;
    s->recs[s->n_recs++] = r;
    r->type = type;
    r->pub.pb = d;
    r->pub.level = level;
    r->building = 1;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (add_field(b, r, &d->fields[i])) return NULL;
    r->building = 0;
    r->pub.fields = r->fields;
    r->pub.cut = r->cut;
    for (unsigned i = 0; i < r->pub.n_fields; i++) {
        const avsc_field *f = &r->fields[i];
        if (f->presence == AVSC_REPEATED)
            r->pub.max_fixed += 10 + 1; /* count, end marker */
        else if (f->kind == AVSC_FLOAT)
            r->pub.max_fixed += 4;
        else if (f->kind == AVSC_DOUBLE)
            r->pub.max_fixed += 8;
        else if (f->kind == AVSC_BOOL || f->kind == AVSC_RECORD)
            r->pub.max_fixed += 1;
        else
            r->pub.max_fixed += 10; /* varint: int, long, enum index, string/bytes length */
    }

    /* the Flat rule: a message outside the families that holds a family member directly */
    const char *prefix = "";
    if (b->types[type].family < 0)
        for (unsigned i = 0; i < r->pub.n_fields; i++)
            if (r->fields[i].record && r->fields[i].record->level > 0) prefix = "Flat";
    if (make_names(b, d->name, d->package_name, level, prefix, &r->pub.name, &r->pub.space,
                   &r->pub.full_name))
        return NULL;
    return r;
oom:
    set_err(b, "out of memory building %s", d->name);
    return NULL;
}

static int check_unique_names(builder *b)
{
    avsc_schema *s = b->s;
    unsigned n = s->n_recs + s->n_enums;
    for (unsigned i = 0; i < n; i++) {
        const char *a =
            i < s->n_recs ? s->recs[i]->pub.full_name : s->enums[i - s->n_recs]->pub.full_name;
        for (unsigned j = i + 1; j < n; j++) {
            const char *c =
                j < s->n_recs ? s->recs[j]->pub.full_name : s->enums[j - s->n_recs]->pub.full_name;
            if (!strcmp(a, c)) {
                set_err(b, "two types map to the Avro name %s", a);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- pass 3: JSON ---------------------------------------------------------------------------- */

static json_t *named_def(const char *type, const char *name, const char *space)
{
    json_t *o = json_object();
    if (!o) return NULL;
    if (json_object_set_new(o, "type", json_string(type)) ||
        json_object_set_new(o, "name", json_string(name)) ||
        (*space && json_object_set_new(o, "namespace", json_string(space)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *enum_json(enum_node *e)
{
    if (e->emitted) return json_string(e->pub.full_name);
    e->emitted = 1;
    json_t *o = named_def("enum", e->pub.name, e->pub.space);
    json_t *syms = json_array();
    if (!o || !syms) goto fail;
    const ProtobufCEnumDescriptor *d = e->pub.pb;
    for (unsigned i = 0; i < d->n_values; i++)
        if (json_array_append_new(syms, json_string(d->values[i].name))) goto fail;
    if (json_array_append_new(syms, json_string("UNRECOGNIZED"))) goto fail;
    if (json_object_set_new(o, "symbols", syms)) {
        syms = NULL;
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    json_decref(syms);
    return NULL;
}

static json_t *record_json(rec_node *r);

static json_t *elem_json(const avsc_field *f)
{
    switch ((avsc_kind)f->kind) {
    case AVSC_BOOL:
        return json_string("boolean");
    case AVSC_INT:
        return json_string("int");
    case AVSC_LONG:
        return json_string("long");
    case AVSC_FLOAT:
        return json_string("float");
    case AVSC_DOUBLE:
        return json_string("double");
    case AVSC_STRING:
        return json_string("string");
    case AVSC_BYTES:
        return json_string("bytes");
    case AVSC_ENUM:
        return enum_json((enum_node *)f->enm);
    case AVSC_RECORD:
        return record_json((rec_node *)f->record);
    }
    return NULL;
}

static json_t *field_type_json(const avsc_field *f)
{
    json_t *elem = elem_json(f);
    if (!elem) return NULL;
    json_t *t = NULL;
    if (f->presence == AVSC_REPEATED) {
        t = json_object();
        if (t && !json_object_set_new(t, "type", json_string("array")) &&
            !json_object_set_new(t, "items", elem))
            return t;
    } else if (f->kind == AVSC_RECORD) {
        t = json_array();
        if (t && !json_array_append_new(t, json_string("null")) && !json_array_append_new(t, elem))
            return t;
    } else {
        return elem;
    }
    json_decref(t);
    return NULL;
}

static json_t *record_json(rec_node *r)
{
    if (r->emitted) return json_string(r->pub.full_name);
    r->emitted = 1;
    json_t *o = named_def("record", r->pub.name, r->pub.space);
    json_t *fields = json_array();
    if (!o || !fields) goto fail;
    for (unsigned i = 0; i < r->pub.n_fields; i++) {
        const avsc_field *f = &r->pub.fields[i];
        json_t *fo = json_object();
        json_t *t = field_type_json(f);
        if (!fo || !t || json_object_set_new(fo, "name", json_string(f->name)) ||
            json_object_set_new(fo, "type", t) || json_array_append_new(fields, fo)) {
            json_decref(fo);
            goto fail;
        }
    }
    if (json_object_set_new(o, "fields", fields)) {
        fields = NULL;
        goto fail;
    }
    return o;
fail:
    json_decref(o);
    json_decref(fields);
    return NULL;
}

/* ---- public ---------------------------------------------------------------------------------- */

void avsc_schema_free(avsc_schema *s)
{
    if (!s) return;
    for (unsigned i = 0; i < s->n_recs; i++) {
        free(s->recs[i]->fields);
        free(s->recs[i]->cut);
        free(s->recs[i]);
    }
    free(s->recs);
    free(s->enums);
    while (s->pool) {
        pool_block *n = s->pool->next;
        free(s->pool);
        s->pool = n;
    }
    free(s->json);
    if (s->avro) avro_schema_decref(s->avro);
    free(s);
}

int avsc_schema_new(const ProtobufCMessageDescriptor *root, avsc_schema **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    builder b;
    memset(&b, 0, sizeof b);
    b.err = err;
    b.errlen = errlen;
    if (!root || root->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) {
        set_err(&b, "avsc_schema_new: not a protobuf-c message descriptor");
        return -1;
    }
    b.s = calloc(1, sizeof *b.s);
    if (!b.s) {
        set_err(&b, "out of memory deriving the schema of %s", root->name);
        return -1;
    }
    int rc = -1;
    json_t *j = NULL;
    if (collect_types(&b, root)) goto done;
    b.stack = malloc((size_t)b.n_types * sizeof *b.stack);
    if (!b.stack) {
        set_err(&b, "out of memory deriving the schema of %s", root->name);
        goto done;
    }
    for (int i = 0; i < b.n_types; i++)
        if (b.types[i].index < 0) tarjan(&b, i);
    if (choose_level_types(&b)) goto done;
    /* a root inside a family starts at depth 1, like a family entered from outside */
    int root_level = b.types[0].family >= 0 ? 1 : 0;
    b.s->root = get_record(&b, 0, root_level);
    if (!b.s->root || check_unique_names(&b)) goto done;

    j = record_json(b.s->root);
    if (!j) {
        set_err(&b, "out of memory printing the schema of %s", root->name);
        goto done;
    }
    b.s->json = json_dumps(j, JSON_COMPACT);
    if (!b.s->json) {
        set_err(&b, "out of memory printing the schema of %s", root->name);
        goto done;
    }
    b.s->json_len = strlen(b.s->json);
    if (avro_schema_from_json_length(b.s->json, b.s->json_len, &b.s->avro)) {
        b.s->avro = NULL;
        set_err(&b, "avro-c rejects the schema derived from %s: %s", root->name, avro_strerror());
        goto done;
    }
    rc = 0;
done:
    json_decref(j);
    for (int i = 0; i < b.n_types; i++)
        free(b.types[i].adj);
    free(b.types);
    free(b.stack);
    if (rc)
        avsc_schema_free(b.s);
    else
        *out = b.s;
    return rc;
}

const char *avsc_schema_json(const avsc_schema *s, size_t *len)
{
    if (len) *len = s->json_len;
    return s->json;
}

avro_schema_t avsc_schema_avro(const avsc_schema *s)
{
    return s->avro;
}

const avsc_record *avsc_schema_root(const avsc_schema *s)
{
    return &s->root->pub;
}

const avsc_record *avsc_schema_find_record(const avsc_schema *s, const char *full_name)
{
    for (unsigned i = 0; i < s->n_recs; i++)
        if (!strcmp(s->recs[i]->pub.full_name, full_name)) return &s->recs[i]->pub;
    return NULL;
}

const avsc_enum *avsc_schema_find_enum(const avsc_schema *s, const char *full_name)
{
    for (unsigned i = 0; i < s->n_enums; i++)
        if (!strcmp(s->enums[i]->pub.full_name, full_name)) return &s->enums[i]->pub;
    return NULL;
}
