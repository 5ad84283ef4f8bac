#include "jobs/join/tiny.h"

#include "formats/java_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "google/protobuf/struct.pb-c.h"
#include "jobs/common_ops.h"
#include "jobs/join/combine_delivery_log.h"
#include "jobs/join/join_records.h"


/* ============================== keys ============================== */

int tiny_keys_init(tiny_keys *k, const char *const *names, size_t n, char *err, size_t errlen)
{
    memset(k, 0, sizeof *k);
    if (n > TINY_MAX_KEYS) {
        snprintf(err, errlen, "flag --contentIdFieldKeys: %zu keys given, at most %d allowed", n,
                 TINY_MAX_KEYS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i] ? names[i] : "";
        k->name[i] = s;
        k->hash[i] = java_string_hash(s, strlen(s));
    }
    k->n = n;
    return 0;
}

/* ============================== helpers ============================== */

static char *nz(const char *s)
{
    return s && *s ? (char *)s : NULL;
}

static void *aalloc(ProtobufCAllocator *a, size_t size)
{
    void *p = a->alloc(a->allocator_data, size ? size : 1);
    if (p) memset(p, 0, size);
    return p;
}

static char *astrdup(ProtobufCAllocator *a, const char *s, size_t n)
{
    char *p = a->alloc(a->allocator_data, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static void set_u64(protobuf_c_boolean *has, uint64_t *field, uint64_t v)
{
    *field = v;
    *has = v != 0;
}

static uint64_t lt_of(const Common__Timing *t)
{
    return t ? t->log_timestamp : 0;
}

static const char *luid_of(const Common__UserInfo *ui)
{
    return ui ? ui->log_user_id : NULL;
}

/* An ordered (key -> value) list with replace-in-place: the iteration order of the Java map the
 * reference fills (insertion order; a put on a present key keeps its position). */
typedef struct kvlist {
    int32_t key[TINY_MAX_KEYS];
    char *value[TINY_MAX_KEYS];
    size_t n;
} kvlist;

static void kv_put(kvlist *l, int32_t key, char *value)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->key[i] == key) {
            l->value[i] = value;
            return;
        }
    if (l->n < TINY_MAX_KEYS) {
        l->key[l->n] = key;
        l->value[l->n++] = value;
    }
}

/* Finds the last entry named name at the top level of s (a protobuf map keeps the last
 * duplicate). Returns 1 with *v (NULL for an entry without a value: Java reads the default Value,
 * kind not set), or 0 when absent. */
static int struct_get(const Google__Protobuf__Struct *s, const char *name,
                      const Google__Protobuf__Value **v)
{
    int found = 0;
    for (size_t i = 0; i < s->n_fields; i++) {
        const Google__Protobuf__Struct__FieldsEntry *e = s->fields[i];
        if (e && !strcmp(e->key ? e->key : "", name)) {
            *v = e->value;
            found = 1;
        }
    }
    return found;
}

/* Adds props' values for keys to l. Returns 0 or -1 (alloc). */
static int collect(const Common__Properties *props, const tiny_keys *keys, ProtobufCAllocator *a,
                   kvlist *l)
{
    if (!keys || !keys->n || !props ||
        props->struct_field_case != COMMON__PROPERTIES__STRUCT_FIELD_STRUCT || !props->struct_)
        return 0;
    for (size_t k = 0; k < keys->n; k++) {
        const Google__Protobuf__Value *v = NULL;
        if (!struct_get(props->struct_, keys->name[k], &v)) continue;
        char *s = "";
        if (v) switch (v->kind_case) {
            case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
                s = v->string_value ? v->string_value : "";
                break;
            case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE: {
                char num[JAVA_DOUBLE_CHARS];
                size_t n = java_double_string(v->number_value, num, sizeof num);
                if (!(s = astrdup(a, num, n))) return -1;
                break;
            }
            case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
                s = v->bool_value ? "true" : "false";
                break;
            default:
                break;
            }
        kv_put(l, keys->hash[k], s);
    }
    return 0;
}

/* The two map-entry types have the same layout but their own descriptors. */
static int to_event_entries(const kvlist *l, ProtobufCAllocator *a,
                            Event__TinyEvent__OtherContentIdsEntry ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!l->n) return 0;
    Event__TinyEvent__OtherContentIdsEntry **arr = aalloc(a, l->n * sizeof *arr);
    Event__TinyEvent__OtherContentIdsEntry *e = aalloc(a, l->n * sizeof *e);
    if (!arr || !e) return -1;
    for (size_t i = 0; i < l->n; i++) {
        Event__TinyEvent__OtherContentIdsEntry init =
            EVENT__TINY_EVENT__OTHER_CONTENT_IDS_ENTRY__INIT;
        e[i] = init;
        /* proto3 map entries: a zero key or "" value is still written by Java's map codec, and
         * protobuf-c writes has_key/value when set, so set them always */
        e[i].has_key = 1;
        e[i].key = l->key[i];
        e[i].value = l->value[i];
        arr[i] = &e[i];
    }
    *out = arr;
    *n = l->n;
    return 0;
}

static int to_insertion_entries(const kvlist *l, ProtobufCAllocator *a,
                                Event__TinyInsertion__OtherContentIdsEntry ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!l->n) return 0;
    Event__TinyInsertion__OtherContentIdsEntry **arr = aalloc(a, l->n * sizeof *arr);
    Event__TinyInsertion__OtherContentIdsEntry *e = aalloc(a, l->n * sizeof *e);
    if (!arr || !e) return -1;
    for (size_t i = 0; i < l->n; i++) {
        Event__TinyInsertion__OtherContentIdsEntry init =
            EVENT__TINY_INSERTION__OTHER_CONTENT_IDS_ENTRY__INIT;
        e[i] = init;
        e[i].has_key = 1;
        e[i].key = l->key[i];
        e[i].value = l->value[i];
        arr[i] = &e[i];
    }
    *out = arr;
    *n = l->n;
    return 0;
}

int tiny_other_content_ids(const Common__Properties *props, const tiny_keys *keys,
                           ProtobufCAllocator *a, Event__TinyEvent__OtherContentIdsEntry ***out,
                           size_t *n)
{
    kvlist l;
    l.n = 0;
    if (collect(props, keys, a, &l)) return -1;
    return to_event_entries(&l, a, out, n);
}

/* A small open-addressing set of strings from the allocator, for first-seen dedupe. */
typedef struct strset {
    const char **slot;
    size_t cap;
} strset;

static int strset_init(strset *s, size_t n, ProtobufCAllocator *a)
{
    s->cap = 8;
    while (s->cap < 2 * n)
        s->cap *= 2;
    s->slot = aalloc(a, s->cap * sizeof *s->slot);
    return s->slot ? 0 : -1;
}

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Index of s in the set, or of the free slot where it goes (*found says which). */
static size_t strset_find(const strset *set, const char *s, int *found)
{
    size_t i = (size_t)str_hash(s) & (set->cap - 1);
    while (set->slot[i]) {
        if (!strcmp(set->slot[i], s)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & (set->cap - 1);
    }
    *found = 0;
    return i;
}

/* ============================== conversions ============================== */

void tiny_of_view(const Event__View *v, Event__TinyEvent *out)
{
    Event__TinyEvent init = EVENT__TINY_EVENT__INIT;
    *out = init;
    set_u64(&out->has_platform_id, &out->platform_id, v->platform_id);
    out->log_user_id = nz(luid_of(v->user_info));
    set_u64(&out->has_log_timestamp, &out->log_timestamp, lt_of(v->timing));
    out->view_id = nz(v->view_id);
}

void tiny_of_delivery_log(const Delivery__DeliveryLog *dl, Event__TinyEvent *out)
{
    Event__TinyEvent init = EVENT__TINY_EVENT__INIT;
    *out = init;
    set_u64(&out->has_platform_id, &out->platform_id, dl->platform_id);
    const Delivery__Request *rq = dl->request;
    if (!rq) return;
    out->log_user_id = nz(luid_of(rq->user_info));
    set_u64(&out->has_log_timestamp, &out->log_timestamp, lt_of(rq->timing));
    out->view_id = nz(rq->view_id);
    out->request_id = nz(rq->request_id);
}

int tiny_of_impression(const Event__Impression *im, const tiny_keys *keys, ProtobufCAllocator *a,
                       Event__TinyEvent *out)
{
    Event__TinyEvent init = EVENT__TINY_EVENT__INIT;
    *out = init;
    set_u64(&out->has_platform_id, &out->platform_id, im->platform_id);
    out->log_user_id = nz(luid_of(im->user_info));
    set_u64(&out->has_log_timestamp, &out->log_timestamp, lt_of(im->timing));
    out->view_id = nz(im->view_id);
    out->request_id = nz(im->request_id);
    out->insertion_id = nz(im->insertion_id);
    out->content_id = nz(im->content_id);
    out->impression_id = nz(im->impression_id);
    return tiny_other_content_ids(im->properties, keys, a, &out->other_content_ids,
                                  &out->n_other_content_ids);
}

int tiny_of_action(const Event__Action *ac, const tiny_keys *keys, ProtobufCAllocator *a,
                   Event__TinyEvent ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    Event__TinyEvent base = EVENT__TINY_EVENT__INIT;
    set_u64(&base.has_platform_id, &base.platform_id, ac->platform_id);
    base.log_user_id = nz(luid_of(ac->user_info));
    set_u64(&base.has_log_timestamp, &base.log_timestamp, lt_of(ac->timing));
    base.view_id = nz(ac->view_id);
    base.request_id = nz(ac->request_id);
    base.insertion_id = nz(ac->insertion_id);
    base.content_id = nz(ac->content_id);
    base.impression_id = nz(ac->impression_id);
    base.action_id = nz(ac->action_id);
    if (tiny_other_content_ids(ac->properties, keys, a, &base.other_content_ids,
                               &base.n_other_content_ids))
        return -1;

    size_t ncart = ac->cart ? ac->cart->n_contents : 0;
    int split = ac->has_action_type &&
                (ac->action_type == EVENT__ACTION_TYPE__CHECKOUT ||
                 ac->action_type == EVENT__ACTION_TYPE__PURCHASE) &&
                ncart > 0;
    if (!split) {
        Event__TinyEvent **arr = aalloc(a, sizeof *arr);
        Event__TinyEvent *te = aalloc(a, sizeof *te);
        if (!arr || !te) return -1;
        *te = base;
        arr[0] = te;
        *out = arr;
        *n = 1;
        return 0;
    }
    /* first-seen order over action.content_id then the cart, each id once */
    strset seen;
    Event__TinyEvent **arr = aalloc(a, (ncart + 1) * sizeof *arr);
    Event__TinyEvent *te = aalloc(a, (ncart + 1) * sizeof *te);
    if (!arr || !te || strset_init(&seen, ncart + 1, a)) return -1;
    size_t k = 0;
    for (size_t i = 0; i <= ncart; i++) {
        const char *id = i == 0                      ? ac->content_id
                         : ac->cart->contents[i - 1] ? ac->cart->contents[i - 1]->content_id
                                                     : NULL;
        if (!id || !*id) continue;
        int found;
        size_t slot = strset_find(&seen, id, &found);
        if (found) continue;
        seen.slot[slot] = id;
        te[k] = base;
        te[k].content_id = (char *)id;
        te[k].impression_id = NULL;
        te[k].insertion_id = NULL;
        te[k].request_id = NULL;
        te[k].view_id = NULL;
        arr[k] = &te[k];
        k++;
    }
    *out = arr;
    *n = k;
    return 0;
}

int tiny_of_combined(const Event__CombinedDeliveryLog *c, const tiny_keys *keys,
                     ProtobufCAllocator *a, Event__TinyDeliveryLog *out)
{
    Event__TinyDeliveryLog init = EVENT__TINY_DELIVERY_LOG__INIT;
    *out = init;
    set_u64(&out->has_platform_id, &out->platform_id, combine_platform_id(c));
    const Delivery__DeliveryLog *dl = combine_chosen(c);
    if (!dl) return 0;
    const Delivery__Request *rq = dl->request;
    if (rq) {
        out->log_user_id = nz(luid_of(rq->user_info));
        set_u64(&out->has_log_timestamp, &out->log_timestamp, lt_of(rq->timing));
        out->view_id = nz(rq->view_id);
        out->request_id = nz(rq->request_id);
    }
    size_t n = dl->response ? dl->response->n_insertion : 0;
    if (!n) return 0;
    Event__TinyInsertion **arr = aalloc(a, n * sizeof *arr);
    Event__TinyInsertion *ti = aalloc(a, n * sizeof *ti);
    if (!arr || !ti) return -1;

    int with_ids = keys && keys->n;
    kvlist base;
    base.n = 0;
    strset first = {0}; /* content_id -> index of the first request insertion with it */
    size_t *first_idx = NULL;
    size_t nreq = rq ? rq->n_insertion : 0;
    if (with_ids) {
        if (collect(rq ? rq->properties : NULL, keys, a, &base)) return -1;
        if (nreq) {
            if (strset_init(&first, nreq, a) ||
                !(first_idx = aalloc(a, first.cap * sizeof(size_t))))
                return -1;
            for (size_t i = 0; i < nreq; i++) {
                const Delivery__Insertion *ri = rq->insertion[i];
                if (!ri) continue;
                const char *cid = ri->content_id ? ri->content_id : "";
                int found;
                size_t slot = strset_find(&first, cid, &found);
                if (found) continue;
                first.slot[slot] = cid;
                first_idx[slot] = i;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        const Delivery__Insertion *ins = dl->response->insertion[i];
        Event__TinyInsertion tinit = EVENT__TINY_INSERTION__INIT;
        ti[i] = tinit;
        arr[i] = &ti[i];
        if (!ins) continue;
        ti[i].insertion_id = nz(ins->insertion_id);
        ti[i].content_id = nz(ins->content_id);
        if (!with_ids) continue;
        kvlist l = base;
        if (nreq) {
            int found;
            size_t slot = strset_find(&first, ins->content_id ? ins->content_id : "", &found);
            if (found && collect(rq->insertion[first_idx[slot]]->properties, keys, a, &l))
                return -1;
        }
        if (to_insertion_entries(&l, a, &ti[i].other_content_ids, &ti[i].n_other_content_ids))
            return -1;
    }
    out->response_insertion = arr;
    out->n_response_insertion = n;
    return 0;
}

/* ============================== operator ============================== */

#define ARENA_CHUNK (64 << 10)
#define ARENA_CAP ((size_t)256 << 20)

typedef struct tiny_op {
    tiny_input input;
    char **names; /* owned copies of the keys */
    tiny_keys keys;
    pb_arena *arena;
} tiny_op;

static int in_type(tiny_input in)
{
    switch (in) {
    case TINY_VIEW:
        return REC_VIEW;
    case TINY_COMBINED_DELIVERY_LOG:
        return REC_COMBINED_DELIVERY_LOG;
    case TINY_IMPRESSION:
        return REC_IMPRESSION;
    case TINY_ACTION:
        return REC_ACTION;
    }
    return -1;
}

static int emit(rt_op *op, const rt_record *rec, int type, void *data, uint64_t platform_id,
                const char *luid, ProtobufCAllocator *a)
{
    size_t n = luid ? strlen(luid) : 0;
    uint8_t *key = a->alloc(a->allocator_data, 8 + n);
    if (!key) return rt_op_fail(op, "out of memory building a key");
    job_key_platform_id(platform_id, luid, key, 8 + n);
    rt_record r = {.ts = rec->ts, .type = type, .data = data, .key = key, .key_len = 8 + n};
    return rt_emit(op, 0, &r);
}

static int tiny_convert(rt_op *op, tiny_op *t, const rt_record *rec, ProtobufCAllocator *a)
{
    if (rec->type != in_type(t->input))
        return rt_op_fail(op, "record type %d is not the stream's type %d", rec->type,
                          in_type(t->input));
    switch (t->input) {
    case TINY_VIEW: {
        Event__TinyEvent te;
        tiny_of_view(rec->data, &te);
        return emit(op, rec, REC_TINY_EVENT, &te, te.platform_id, te.log_user_id, a);
    }
    case TINY_IMPRESSION: {
        Event__TinyEvent te;
        if (tiny_of_impression(rec->data, &t->keys, a, &te)) break;
        return emit(op, rec, REC_TINY_EVENT, &te, te.platform_id, te.log_user_id, a);
    }
    case TINY_ACTION: {
        Event__TinyEvent **te;
        size_t n;
        if (tiny_of_action(rec->data, &t->keys, a, &te, &n)) break;
        for (size_t i = 0; i < n; i++)
            if (emit(op, rec, REC_TINY_EVENT, te[i], te[i]->platform_id, te[i]->log_user_id, a))
                return -1;
        return 0;
    }
    case TINY_COMBINED_DELIVERY_LOG: {
        Event__TinyDeliveryLog td;
        if (tiny_of_combined(rec->data, &t->keys, a, &td)) break;
        return emit(op, rec, REC_TINY_DELIVERY_LOG, &td, td.platform_id, td.log_user_id, a);
    }
    }
    return rt_op_fail(
        op, "out of memory converting a record to its tiny form (arena cap %zu bytes)", ARENA_CAP);
}

static int tiny_process(rt_op *op, int input, const rt_record *rec)
{
    tiny_op *t = rt_op_self(op);
    int rc = tiny_convert(op, t, rec, pb_arena_allocator(t->arena));
    pb_arena_reset(t->arena, ARENA_CHUNK);
    return rc;
}

static void tiny_free(tiny_op *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->keys.n; i++)
        free(t->names[i]);
    free(t->names);
    pb_arena_free(t->arena);
    free(t);
}

static void tiny_close(rt_op *op)
{
    tiny_free(rt_op_self(op));
}

static const rt_op_vtbl tiny_vtbl = {.process = tiny_process, .close = tiny_close};

int tiny_op_add(rt_graph *g, const char *uid, const tiny_op_config *cfg, rt_op **out)
{
    if (cfg->n_content_id_keys > TINY_MAX_KEYS) return -1;
    tiny_op *t = calloc(1, sizeof *t);
    if (!t) return -1;
    t->input = cfg->input;
    size_t n = cfg->n_content_id_keys;
    t->names = calloc(n ? n : 1, sizeof *t->names);
    if (!t->names) goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *s = cfg->content_id_keys[i] ? cfg->content_id_keys[i] : "";
        if (!(t->names[i] = strdup(s))) goto fail;
        t->keys.n = i + 1; /* so tiny_free frees what was copied */
    }
    char err[128];
    if (tiny_keys_init(&t->keys, (const char *const *)t->names, n, err, sizeof err)) goto fail;
    if (!(t->arena = pb_arena_new(ARENA_CHUNK, ARENA_CAP))) goto fail;
    if (rt_graph_add_op(g, uid, "tiny", &tiny_vtbl, t, 1, 1, out)) goto fail;
    return 0;
fail:
    tiny_free(t);
    return -1;
}
