#include "jobs/restructure.h"

#include <string.h>

#include "google/protobuf/struct.pb-c.h"

static void *anew(ProtobufCAllocator *a, size_t size)
{
    void *p = a->alloc(a->allocator_data, size);
    if (p) memset(p, 0, size);
    return p;
}

static Google__Protobuf__Struct *new_struct(ProtobufCAllocator *a)
{
    Google__Protobuf__Struct init = GOOGLE__PROTOBUF__STRUCT__INIT, *s = anew(a, sizeof *s);
    if (s) *s = init;
    return s;
}

static Google__Protobuf__Value *new_struct_value(ProtobufCAllocator *a)
{
    Google__Protobuf__Value init = GOOGLE__PROTOBUF__VALUE__INIT, *v = anew(a, sizeof *v);
    if (!v) return NULL;
    *v = init;
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    if (!(v->struct_value = new_struct(a))) return NULL;
    return v;
}

/* Appends an entry (key, value) to s; arrays live in the arena, so growth copies. */
static int struct_append(Google__Protobuf__Struct *s, const char *key, size_t klen,
                         Google__Protobuf__Value *v, ProtobufCAllocator *a)
{
    Google__Protobuf__Struct__FieldsEntry **f = anew(a, (s->n_fields + 1) * sizeof *f);
    Google__Protobuf__Struct__FieldsEntry init = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    Google__Protobuf__Struct__FieldsEntry *e = anew(a, sizeof *e);
    char *k = a->alloc(a->allocator_data, klen + 1);
    if (!f || !e || !k) return -1;
    if (s->n_fields) memcpy(f, s->fields, s->n_fields * sizeof *f);
    memcpy(k, key, klen);
    k[klen] = 0;
    *e = init;
    e->key = k;
    e->value = v;
    f[s->n_fields++] = e;
    s->fields = f;
    return 0;
}

static Google__Protobuf__Struct__FieldsEntry *struct_find(Google__Protobuf__Struct *s,
                                                          const char *key, size_t klen)
{
    for (size_t i = 0; i < s->n_fields; i++) {
        const char *k = s->fields[i]->key ? s->fields[i]->key : "";
        if (strlen(k) == klen && !memcmp(k, key, klen)) return s->fields[i];
    }
    return NULL;
}

/* Java's String.split("\\.") segment count: trailing empty segments dropped; "" gives one
 * empty segment; a string of only dots gives none. */
static size_t path_segments(const char *h)
{
    size_t len = strlen(h);
    if (len == 0) return 1;
    while (len > 0 && h[len - 1] == '.') len--;
    if (len == 0) return 0;
    size_t n = 1;
    for (size_t i = 0; i < len; i++) n += h[i] == '.';
    return n;
}

static int put_path(Delivery__Insertion *ins, const char *header, Google__Protobuf__Value *value,
                    ProtobufCAllocator *a)
{
    size_t nseg = path_segments(header);
    if (!ins->properties) {
        Common__Properties init = COMMON__PROPERTIES__INIT;
        if (!(ins->properties = anew(a, sizeof *ins->properties))) return -1;
        *ins->properties = init;
    }
    Common__Properties *p = ins->properties;
    if (p->struct_field_case != COMMON__PROPERTIES__STRUCT_FIELD_STRUCT || !p->struct_) {
        p->struct_field_case = COMMON__PROPERTIES__STRUCT_FIELD_STRUCT;
        if (!(p->struct_ = new_struct(a))) return -1;
    }
    Google__Protobuf__Struct *cur = p->struct_;
    const char *seg = header;
    for (size_t i = 0; i < nseg; i++) {
        const char *dot = strchr(seg, '.');
        size_t klen = dot ? (size_t)(dot - seg) : strlen(seg);
        Google__Protobuf__Struct__FieldsEntry *e = struct_find(cur, seg, klen);
        if (i + 1 == nseg) {
            if (e) e->value = value; /* a later duplicate leaf overwrites, in place */
            else if (struct_append(cur, seg, klen, value, a)) return -1;
            return 0;
        }
        if (e && e->value && e->value->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE &&
            e->value->struct_value) {
            cur = e->value->struct_value;
        } else {
            Google__Protobuf__Value *sv = new_struct_value(a);
            if (!sv) return -1;
            if (e) e->value = sv; /* a non-struct value in the way is replaced */
            else if (struct_append(cur, seg, klen, sv, a)) return -1;
            cur = sv->struct_value;
        }
        seg = dot + 1;
    }
    return 0;
}

int restructure_delivery_log(Delivery__DeliveryLog *dl, ProtobufCAllocator *a)
{
    Delivery__Request *rq = dl->request;
    if (!rq || rq->n_insertion_matrix_headers == 0 || !rq->insertion_matrix ||
        rq->insertion_matrix->n_values == 0)
        return 0;
    for (size_t h = 0; h < rq->n_insertion_matrix_headers; h++)
        if (path_segments(rq->insertion_matrix_headers[h] ? rq->insertion_matrix_headers[h] : "") == 0)
            return RESTRUCTURE_ERR_DOTS;

    size_t nrows = rq->insertion_matrix->n_values;
    Delivery__Insertion **rows = anew(a, nrows * sizeof *rows);
    if (!rows) return RESTRUCTURE_ERR_NOMEM;
    for (size_t r = 0; r < nrows; r++) {
        Delivery__Insertion init = DELIVERY__INSERTION__INIT, *ins = anew(a, sizeof *ins);
        if (!ins) return RESTRUCTURE_ERR_NOMEM;
        *ins = init;
        rows[r] = ins;
        const Google__Protobuf__Value *rv = rq->insertion_matrix->values[r];
        const Google__Protobuf__ListValue *row =
            rv && rv->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE ? rv->list_value : NULL;
        size_t ncols = row ? row->n_values : 0;
        if (ncols > rq->n_insertion_matrix_headers) ncols = rq->n_insertion_matrix_headers;
        for (size_t c = 0; c < ncols; c++) {
            const char *h = rq->insertion_matrix_headers[c] ? rq->insertion_matrix_headers[c] : "";
            Google__Protobuf__Value *v = row->values[c];
            int is_num = v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
            double num = is_num ? v->number_value : 0;
            if (!strcmp(h, "contentId")) {
                const char *s = v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE
                                    ? v->string_value : NULL;
                ins->content_id = s && *s ? (char *)s : NULL;
            } else if (!strcmp(h, "retrievalRank")) {
                /* Java's (long) cast of a double: truncation, saturating, NaN -> 0 */
                int64_t rank = num != num ? 0 : num >= 9.2233720368547758e18 ? INT64_MAX
                               : num <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)num;
                ins->retrieval_rank = (uint64_t)rank;
                ins->has_retrieval_rank = 1;
            } else if (!strcmp(h, "retrievalScore")) {
                ins->retrieval_score = (float)num;
                ins->has_retrieval_score = 1;
            } else if (v && put_path(ins, h, v, a)) {
                return RESTRUCTURE_ERR_NOMEM;
            }
        }
    }
    rq->insertion = rows;
    rq->n_insertion = nrows;
    rq->insertion_matrix_headers = NULL;
    rq->n_insertion_matrix_headers = 0;
    rq->insertion_matrix = NULL;
    return 0;
}
