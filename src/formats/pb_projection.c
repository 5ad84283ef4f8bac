#include "formats/pb_projection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_PARTS 16

/* One message on some path: the original descriptor, which of its fields are kept, the nodes of
 * the kept message fields cut further, and (once built) the projected descriptor. */
typedef struct node {
    const ProtobufCMessageDescriptor *orig;
    unsigned char *keep;  /* per original field: 0 dropped, 1 kept whole, 2 kept through sub */
    struct node **sub;    /* per original field: the node of a field kept through sub */
    ProtobufCMessageDescriptor desc;
    ProtobufCFieldDescriptor *fields;
    unsigned *by_name;
    ProtobufCIntRange *ranges;
    struct node *next_alloc; /* every node, for freeing */
} node;

struct pb_projection {
    node *root;
    node *all;
};

static node *node_new(pb_projection *p, const ProtobufCMessageDescriptor *d)
{
    node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->next_alloc = p->all;
    p->all = n;
    n->orig = d;
    n->keep = calloc(d->n_fields ? d->n_fields : 1, 1);
    n->sub = calloc(d->n_fields ? d->n_fields : 1, sizeof *n->sub);
    return n->keep && n->sub ? n : NULL;
}

static int add_path(pb_projection *p, const char *path, char *err, size_t errlen)
{
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(err, errlen, "projection path %.80s...: longer than %zu bytes", path,
                 sizeof buf - 1);
        return -1;
    }
    node *n = p->root;
    char *save = NULL;
    int parts = 0;
    for (char *name = strtok_r(buf, ".", &save); name; name = strtok_r(NULL, ".", &save)) {
        if (++parts > PATH_MAX_PARTS) {
            snprintf(err, errlen, "projection path %s: more than %d parts", path, PATH_MAX_PARTS);
            return -1;
        }
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(n->orig, name);
        if (!f) {
            snprintf(err, errlen, "projection path %s: %s has no field %s", path, n->orig->name,
                     name);
            return -1;
        }
        size_t i = (size_t)(f - n->orig->fields);
        char *rest = save && *save ? save : NULL;
        if (!rest) {
            n->keep[i] = 1; /* whole, whatever was asked of its fields before */
            return 0;
        }
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
            snprintf(err, errlen, "projection path %s: %s.%s is not a message", path,
                     n->orig->name, name);
            return -1;
        }
        if (n->keep[i] == 1) return 0; /* already whole */
        if (!n->sub[i]) {
            n->sub[i] = node_new(p, f->descriptor);
            if (!n->sub[i]) {
                snprintf(err, errlen, "projection: out of memory");
                return -1;
            }
        }
        n->keep[i] = 2;
        n = n->sub[i];
    }
    snprintf(err, errlen, "projection path '%s' names no field", path);
    return -1;
}

/* Builds n's descriptor (and its subs' first): the kept fields in their original order (which
 * protobuf-c keeps sorted by number), the name index, and the number ranges protobuf-c searches
 * by tag. */
static int build(node *n)
{
    const ProtobufCMessageDescriptor *d = n->orig;
    unsigned kept = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (n->keep[i] == 2) {
            int rc = build(n->sub[i]);
            if (rc) return rc;
        }
        if (n->keep[i]) kept++;
        /* protobuf-c sets a field's explicit default only when its descriptor lists it: our
         * schemas have none (proto3), and a projection may not drop one */
        if (!n->keep[i] && d->fields[i].default_value) return -2;
    }
    n->fields = calloc(kept ? kept : 1, sizeof *n->fields);
    n->by_name = calloc(kept ? kept : 1, sizeof *n->by_name);
    n->ranges = calloc(kept + 1, sizeof *n->ranges);
    if (!n->fields || !n->by_name || !n->ranges) return -1;
    unsigned k = 0, nr = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (!n->keep[i]) continue;
        n->fields[k] = d->fields[i];
        if (n->keep[i] == 2) n->fields[k].descriptor = &n->sub[i]->desc;
        if (k == 0 || n->fields[k].id != n->fields[k - 1].id + 1) {
            n->ranges[nr].start_value = (int)n->fields[k].id;
            n->ranges[nr].orig_index = (int)k;
            nr++;
        }
        k++;
    }
    n->ranges[nr].start_value = 0;
    n->ranges[nr].orig_index = (int)kept; /* protobuf-c's sentinel: the field count */
    /* names in order: the original order restricted to the kept fields is still sorted */
    unsigned m = 0;
    for (unsigned j = 0; j < d->n_fields; j++) {
        unsigned oi = d->fields_sorted_by_name[j];
        if (!n->keep[oi]) continue;
        unsigned pos = 0; /* the kept index of original field oi */
        for (unsigned i = 0; i < oi; i++)
            if (n->keep[i]) pos++;
        n->by_name[m++] = pos;
    }
    n->desc = *d;
    n->desc.n_fields = kept;
    n->desc.fields = n->fields;
    n->desc.fields_sorted_by_name = n->by_name;
    n->desc.n_field_ranges = nr;
    n->desc.field_ranges = n->ranges;
    return 0;
}

int pb_projection_new(const ProtobufCMessageDescriptor *root, const char *const *paths,
                      pb_projection **out, char *err, size_t errlen)
{
    *out = NULL;
    pb_projection *p = calloc(1, sizeof *p);
    if (!p || !(p->root = node_new(p, root))) {
        pb_projection_free(p);
        snprintf(err, errlen, "projection: out of memory");
        return -1;
    }
    for (size_t i = 0; paths && paths[i]; i++) {
        if (add_path(p, paths[i], err, errlen)) {
            pb_projection_free(p);
            return -1;
        }
    }
    int rc = build(p->root);
    if (rc) {
        pb_projection_free(p);
        snprintf(err, errlen, "projection of %s: %s", root->name,
                 rc == -2 ? "would drop a field with an explicit default value"
                          : "out of memory");
        return -1;
    }
    *out = p;
    return 0;
}

static void finish(const node *n, ProtobufCMessage *m)
{
    m->descriptor = n->orig;
    for (unsigned i = 0; i < n->orig->n_fields; i++) {
        if (n->keep[i] != 2) continue;
        const ProtobufCFieldDescriptor *f = &n->orig->fields[i];
        char *at = (char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t cnt = *(const size_t *)((const char *)m + f->quantifier_offset);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)at;
            for (size_t j = 0; j < cnt; j++)
                if (arr[j]) finish(n->sub[i], arr[j]);
        } else {
            /* a oneof member that is not the set case holds another member's bytes */
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
                *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
                continue;
            ProtobufCMessage *sub = *(ProtobufCMessage **)at;
            if (sub) finish(n->sub[i], sub);
        }
    }
}

void pb_projection_finish(const pb_projection *p, ProtobufCMessage *m)
{
    if (m) finish(p->root, m);
}

const ProtobufCMessageDescriptor *pb_projection_descriptor(const pb_projection *p)
{
    return &p->root->desc;
}

void pb_projection_free(pb_projection *p)
{
    if (!p) return;
    for (node *n = p->all, *next; n; n = next) {
        next = n->next_alloc;
        free(n->keep);
        free(n->sub);
        free(n->fields);
        free(n->by_name);
        free(n->ranges);
        free(n);
    }
    free(p);
}
