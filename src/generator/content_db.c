#include "generator/content_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "generator/java_random.h"

struct contentdb {
    content_entry *entries;
    size_t n;
    char *ids; /* every id string, NUL-separated */
    /* per type: entries of that type sorted by id (built at creation) */
    uint32_t *by_type[CONTENT_TYPES];
    size_t n_type[CONTENT_TYPES];
    /* per (parent type, child type): children that have the parent's id field, sorted by
     * (that field's value, id); built on first use so a listing is a binary search */
    uint32_t *by_parent[CONTENT_TYPES][CONTENT_TYPES];
    size_t n_parent[CONTENT_TYPES][CONTENT_TYPES];
    int built[CONTENT_TYPES][CONTENT_TYPES];
};

static const char *const type_names[CONTENT_TYPES] = {"ITEM", "STORE", "PROMOTION"};
static const char *const id_fields[CONTENT_TYPES] = {"itemId", "storeId", "promotionId"};

const char *contentdb_type_name(content_type t)
{
    return (unsigned)t < CONTENT_TYPES ? type_names[t] : "?";
}

const char *contentdb_id_field(content_type t)
{
    return (unsigned)t < CONTENT_TYPES ? id_fields[t] : "?";
}

int contentdb_type_parse(const char *s)
{
    for (int t = 0; t < CONTENT_TYPES; t++)
        if (s && !strcasecmp(s, type_names[t])) return t;
    return -1;
}

size_t contentdb_size(const contentdb *db)
{
    return db->n;
}

const content_entry *contentdb_entry(const contentdb *db, uint32_t index)
{
    return &db->entries[index];
}

/* qsort_r context (glibc's argument order) */
typedef struct sort_ctx {
    const contentdb *db;
    content_type parent;
} sort_ctx;

static const char *parent_value(const content_entry *e, content_type parent)
{
    switch (parent) {
    case CONTENT_STORE:
        return e->store_id;
    case CONTENT_ITEM:
        return e->item_id;
    case CONTENT_PROMOTION:
        return e->promotion_id;
    default:
        return NULL;
    }
}

static int cmp_by_id(const void *a, const void *b, void *arg)
{
    const sort_ctx *c = arg;
    const content_entry *x = &c->db->entries[*(const uint32_t *)a];
    const content_entry *y = &c->db->entries[*(const uint32_t *)b];
    return strcmp(x->id, y->id); /* ASCII ids: byte order = Java's UTF-16 order */
}

static int cmp_by_parent(const void *a, const void *b, void *arg)
{
    const sort_ctx *ctx = arg;
    const content_entry *x = &ctx->db->entries[*(const uint32_t *)a];
    const content_entry *y = &ctx->db->entries[*(const uint32_t *)b];
    int c = strcmp(parent_value(x, ctx->parent), parent_value(y, ctx->parent));
    return c ? c : strcmp(x->id, y->id);
}

int contentdb_new(int64_t stores, int64_t items_per_store, int64_t promotions_per_item,
                  contentdb **out, char *err, size_t errlen)
{
    *out = NULL;
    if (stores < 0 || items_per_store < 0 || promotions_per_item < 0) {
        snprintf(err, errlen,
                 "content catalogue: negative count (stores=%lld itemsPerStore=%lld "
                 "promotionsPerItem=%lld)",
                 (long long)stores, (long long)items_per_store, (long long)promotions_per_item);
        return -1;
    }
    /* checked in steps so the products cannot overflow */
    double total =
        (double)stores * (1.0 + (double)items_per_store * (1.0 + (double)promotions_per_item));
    if (total > CONTENTDB_MAX_ENTRIES) {
        snprintf(err, errlen,
                 "content catalogue: stores=%lld itemsPerStore=%lld promotionsPerItem=%lld "
                 "make %.0f entries, over the limit of %d",
                 (long long)stores, (long long)items_per_store, (long long)promotions_per_item,
                 total, CONTENTDB_MAX_ENTRIES);
        return -1;
    }
    size_t n = (size_t)total;
    contentdb *db = calloc(1, sizeof *db);
    if (!db) goto oom;
    db->n = n;
    db->entries = calloc(n ? n : 1, sizeof *db->entries);
    db->ids = malloc(n * 16 + 1); /* "p-1-" + at most 8 digits + NUL */
    if (!db->entries || !db->ids) goto oom;

    char *p = db->ids;
    size_t k = 0;
    uint32_t item_no = 0, promo_no = 0;
    for (uint32_t s = 1; s <= (uint32_t)stores; s++) {
        content_entry *st = &db->entries[k++];
        st->type = CONTENT_STORE;
        st->store = s;
        st->number = s;
        st->id = p;
        p += sprintf(p, "s-1-%u", s) + 1;
        st->store_id = st->id;
        for (int64_t i = 0; i < items_per_store; i++) {
            content_entry *it = &db->entries[k++];
            it->type = CONTENT_ITEM;
            it->store = s;
            it->item = ++item_no;
            it->number = item_no;
            it->id = p;
            p += sprintf(p, "i-1-%u", item_no) + 1;
            it->store_id = st->id;
            it->item_id = it->id;
            for (int64_t q = 0; q < promotions_per_item; q++) {
                content_entry *pr = &db->entries[k++];
                pr->type = CONTENT_PROMOTION;
                pr->store = s;
                pr->item = item_no;
                pr->promotion = ++promo_no;
                pr->number = promo_no;
                pr->id = p;
                p += sprintf(p, "p-1-%u", promo_no) + 1;
                pr->store_id = st->id;
                pr->item_id = it->id;
                pr->promotion_id = pr->id;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        content_entry *e = &db->entries[i];
        e->id_len = (uint32_t)strlen(e->id);
        e->hash = jrandom_salted_hash(e->id, e->id_len, "");
        db->n_type[e->type]++;
    }
    for (int t = 0; t < CONTENT_TYPES; t++) {
        db->by_type[t] = malloc((db->n_type[t] ? db->n_type[t] : 1) * sizeof(uint32_t));
        if (!db->by_type[t]) goto oom;
        db->n_type[t] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        content_type t = db->entries[i].type;
        db->by_type[t][db->n_type[t]++] = (uint32_t)i;
    }
    sort_ctx ctx = {db, CONTENT_ITEM};
    for (int t = 0; t < CONTENT_TYPES; t++)
        qsort_r(db->by_type[t], db->n_type[t], sizeof(uint32_t), cmp_by_id, &ctx);
    *out = db;
    return 0;
oom:
    contentdb_free(db);
    snprintf(err, errlen, "content catalogue: out of memory for %zu entries", n);
    return -1;
}

void contentdb_free(contentdb *db)
{
    if (!db) return;
    for (int t = 0; t < CONTENT_TYPES; t++) {
        free(db->by_type[t]);
        for (int c = 0; c < CONTENT_TYPES; c++)
            free(db->by_parent[t][c]);
    }
    free(db->entries);
    free(db->ids);
    free(db);
}

static int build_parent_index(contentdb *db, content_type parent, content_type child)
{
    size_t n = 0;
    uint32_t *v = malloc((db->n_type[child] ? db->n_type[child] : 1) * sizeof *v);
    if (!v) return -1;
    for (size_t i = 0; i < db->n_type[child]; i++) {
        uint32_t e = db->by_type[child][i];
        if (parent_value(&db->entries[e], parent)) v[n++] = e;
    }
    sort_ctx ctx = {db, parent};
    qsort_r(v, n, sizeof *v, cmp_by_parent, &ctx);
    db->by_parent[parent][child] = v;
    db->n_parent[parent][child] = n;
    db->built[parent][child] = 1;
    return 0;
}

int64_t contentdb_list(contentdb *db, content_type type, uint32_t parent, size_t limit,
                       const uint32_t **out)
{
    size_t n;
    if (parent == UINT32_MAX) {
        *out = db->by_type[type];
        n = db->n_type[type];
        return (int64_t)(n < limit ? n : limit);
    }
    content_type pt = db->entries[parent].type;
    if (!db->built[pt][type] && build_parent_index(db, pt, type)) return -1;
    const uint32_t *v = db->by_parent[pt][type];
    const char *want = db->entries[parent].id;
    /* lower bound of `want` among the children's parent values */
    size_t lo = 0, hi = db->n_parent[pt][type];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(parent_value(&db->entries[v[mid]], pt), want) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < db->n_parent[pt][type] && end - lo < limit &&
           !strcmp(parent_value(&db->entries[v[end]], pt), want))
        end++;
    *out = v + lo;
    return (int64_t)(end - lo);
}
