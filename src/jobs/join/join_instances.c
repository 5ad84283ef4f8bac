/* J1, J2, J3: the configurations of the inferred-reference join and their merge functions
 * (spec/flat-output.md §7.9, §7.10). */
#include "jobs/join/join_instances.h"

#include "formats/java_text.h"

#include <stdlib.h>
#include <string.h>

#include "jobs/common_ops.h"
#include "jobs/join/join_records.h"
#include "jobs/join/tiny.h"

enum { J1 = 1, J2, J3 };

typedef struct inst {
    int which;
    size_t nkeys;
    int32_t hash[TINY_MAX_KEYS]; /* String.hashCode of each --contentIdFieldKeys name */
} inst;

static bool empty(const char *s)
{
    return !s || !*s;
}

static char *nz(const char *s)
{
    return empty(s) ? NULL : (char *)s;
}

/* ============================== keys, times, ids ============================== */

static int key_of(void *ctx, int input, const void *msg, uint8_t *buf, size_t cap)
{
    const inst *in = ctx;
    if (in->which == J1 && input == INFERRED_JOIN_IN_RHS) {
        const Event__TinyDeliveryLog *d = msg;
        return job_key_platform_id(d->platform_id, d->log_user_id, buf, cap);
    }
    const Event__TinyEvent *t = msg;
    return job_key_platform_id(t->platform_id, t->log_user_id, buf, cap);
}

static int64_t lt_of(void *ctx, int input, const void *msg)
{
    const inst *in = ctx;
    if (in->which == J1 && input == INFERRED_JOIN_IN_RHS)
        return (int64_t)((const Event__TinyDeliveryLog *)msg)->log_timestamp;
    return (int64_t)((const Event__TinyEvent *)msg)->log_timestamp;
}

/* other_content_ids[hash]: the last entry with that key, as a protobuf map keeps. */
static const char *other_id(const Event__TinyEvent *t, int32_t hash)
{
    const char *v = NULL;
    for (size_t i = 0; i < t->n_other_content_ids; i++)
        if (t->other_content_ids[i]->key == hash) v = t->other_content_ids[i]->value;
    return v;
}

static void add_other_ids(const inst *in, const Event__TinyEvent *t, inferred_join_scopes *sc)
{
    for (size_t k = 0; k < in->nkeys; k++) {
        const char *v = other_id(t, in->hash[k]);
        if (!empty(v)) inferred_join_scopes_add(sc, v);
    }
}

/* J1: view_id keys both sides; the only scopes are the child's view_id and (added by the
 * operator) the user's log_user_id. */
static const char *j1_lhs_pk(void *ctx, const void *lhs)
{
    return ((const Event__TinyEvent *)lhs)->view_id;
}
static const char *j1_rhs_fk(void *ctx, const void *rhs)
{
    return ((const Event__TinyDeliveryLog *)rhs)->view_id;
}
static const char *j1_rhs_pk(void *ctx, const void *rhs, ProtobufCAllocator *a)
{
    return ((const Event__TinyDeliveryLog *)rhs)->request_id;
}
static void j1_lhs_scopes(void *ctx, const void *lhs, inferred_join_scopes *sc) {}
static void j1_rhs_scopes(void *ctx, const void *rhs, inferred_join_scopes *sc)
{
    inferred_join_scopes_add(sc, ((const Event__TinyDeliveryLog *)rhs)->view_id);
}

/* J2: insertion_id keys; parents scoped by request, view, content. */
static const char *j2_lhs_pk(void *ctx, const void *lhs)
{
    return ((const Event__TinyEvent *)lhs)->insertion_id;
}
static const char *j2_rhs_fk(void *ctx, const void *rhs)
{
    return ((const Event__TinyEvent *)rhs)->insertion_id;
}
static const char *j2_rhs_pk(void *ctx, const void *rhs, ProtobufCAllocator *a)
{
    return ((const Event__TinyEvent *)rhs)->impression_id;
}
static void j2_lhs_scopes(void *ctx, const void *lhs, inferred_join_scopes *sc)
{
    const Event__TinyEvent *t = lhs;
    inferred_join_scopes_add(sc, t->request_id);
    inferred_join_scopes_add(sc, t->view_id);
    inferred_join_scopes_add(sc, t->content_id);
}
static void j2_rhs_scopes(void *ctx, const void *rhs, inferred_join_scopes *sc)
{
    const Event__TinyEvent *t = rhs;
    inferred_join_scopes_add(sc, t->insertion_id);
    inferred_join_scopes_add(sc, t->request_id);
    inferred_join_scopes_add(sc, t->view_id);
    inferred_join_scopes_add(sc, t->content_id);
}

/* J3: impression_id keys; the child's own key is action_id U+0001 content_id. */
static const char *j3_lhs_pk(void *ctx, const void *lhs)
{
    return ((const Event__TinyEvent *)lhs)->impression_id;
}
static const char *j3_rhs_fk(void *ctx, const void *rhs)
{
    return ((const Event__TinyEvent *)rhs)->impression_id;
}
static const char *j3_rhs_pk(void *ctx, const void *rhs, ProtobufCAllocator *a)
{
    const Event__TinyEvent *t = rhs;
    size_t na = t->action_id ? strlen(t->action_id) : 0;
    size_t nc = t->content_id ? strlen(t->content_id) : 0;
    char *s = a->alloc(a->allocator_data, na + nc + 2);
    if (!s) return NULL;
    if (na) memcpy(s, t->action_id, na);
    s[na] = '\x01';
    if (nc) memcpy(s + na + 1, t->content_id, nc);
    s[na + 1 + nc] = 0;
    return s;
}
static void j3_lhs_scopes(void *ctx, const void *lhs, inferred_join_scopes *sc)
{
    const Event__TinyEvent *t = lhs;
    inferred_join_scopes_add(sc, t->insertion_id);
    inferred_join_scopes_add(sc, t->request_id);
    inferred_join_scopes_add(sc, t->view_id);
    inferred_join_scopes_add(sc, t->content_id);
    add_other_ids(ctx, t, sc);
}
static void j3_rhs_scopes(void *ctx, const void *rhs, inferred_join_scopes *sc)
{
    const Event__TinyEvent *t = rhs;
    inferred_join_scopes_add(sc, t->impression_id);
    inferred_join_scopes_add(sc, t->insertion_id);
    inferred_join_scopes_add(sc, t->request_id);
    inferred_join_scopes_add(sc, t->view_id);
    inferred_join_scopes_add(sc, t->content_id);
    add_other_ids(ctx, t, sc);
}

/* ============================== content ids (§7.6) ============================== */

static int rhs_content_ids(void *ctx, const void *rhs, inferred_join_visit_fn visit, void *arg)
{
    const Event__TinyEvent *t = rhs;
    if (!empty(t->content_id) && visit(arg, t->content_id, strlen(t->content_id))) return 1;
    for (size_t i = 0; i < t->n_other_content_ids; i++) {
        const char *v = t->other_content_ids[i]->value ? t->other_content_ids[i]->value : "";
        if (visit(arg, v, strlen(v))) return 1;
    }
    return 0;
}

static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int s = 0; s < 64; s += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7F) << s;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int skip_field(const uint8_t **p, const uint8_t *end, unsigned wt)
{
    uint64_t v;
    switch (wt) {
    case 0:
        return rd_varint(p, end, &v);
    case 1:
        if (end - *p < 8) return -1;
        *p += 8;
        return 0;
    case 2:
        if (rd_varint(p, end, &v) || v > (uint64_t)(end - *p)) return -1;
        *p += v;
        return 0;
    case 5:
        if (end - *p < 4) return -1;
        *p += 4;
        return 0;
    default:
        return -1;
    }
}

int join_tiny_event_content_ids_packed(const uint8_t *p, size_t n, inferred_join_visit_fn visit,
                                       void *arg)
{
    const uint8_t *q = p, *end = p + n;
    while (q < end) {
        uint64_t tag, len;
        if (rd_varint(&q, end, &tag)) return -1;
        uint64_t field = tag >> 3;
        unsigned wt = (unsigned)(tag & 7);
        if (wt != 2 || (field != 8 && field != 11)) {
            if (skip_field(&q, end, wt)) return -1;
            continue;
        }
        if (rd_varint(&q, end, &len) || len > (uint64_t)(end - q)) return -1;
        const uint8_t *s = q;
        q += len;
        if (field == 8) { /* content_id */
            if (len && visit(arg, (const char *)s, (size_t)len)) return 1;
            continue;
        }
        /* an other_content_ids entry: key = 1, value = 2 (absent value = "") */
        const uint8_t *e = s, *eend = s + len, *val = (const uint8_t *)"";
        uint64_t vlen = 0;
        while (e < eend) {
            uint64_t etag, elen;
            if (rd_varint(&e, eend, &etag)) return -1;
            if ((etag >> 3) == 2 && (etag & 7) == 2) {
                if (rd_varint(&e, eend, &elen) || elen > (uint64_t)(eend - e)) return -1;
                val = e;
                vlen = elen;
                e += elen;
            } else if (skip_field(&e, eend, (unsigned)(etag & 7))) {
                return -1;
            }
        }
        if (visit(arg, (const char *)val, (size_t)vlen)) return 1;
    }
    return 0;
}

static int lhs_content_ids_packed(void *ctx, const uint8_t *p, size_t n,
                                  inferred_join_visit_fn visit, void *arg)
{
    return join_tiny_event_content_ids_packed(p, n, visit, arg);
}

/* ============================== merges (§7.9) ============================== */

/* The JoinValueSetter rule: an empty LHS value takes the RHS's; a different non-empty RHS value
 * keeps the LHS's and writes a MismatchError. */
typedef struct setter {
    inferred_join_merge *m;
    const Event__TinyEvent *lhs; /* the parent as it was before the merge (lhsIds), or NULL */
    join_record_type record_type;
    join_log_function fn;
    const char *rhs_record_id;
    int64_t log_timestamp;
    int rc;
} setter;

static void mismatch(setter *c, join_field f, const char *ls, const char *rs, int64_t ll,
                     int64_t rl)
{
    if (c->rc || !c->lhs) return;
    const Event__TinyEvent *l = c->lhs;
    join_mismatch_error e = {
        .record_type = c->record_type,
        .field = f,
        .lhs_platform_id = (int64_t)l->platform_id,
        .lhs_log_user_id = l->log_user_id,
        .lhs_session_id = NULL,
        .lhs_view_id = l->view_id,
        .lhs_auto_view_id = l->auto_view_id,
        .lhs_request_id = l->request_id,
        .lhs_insertion_id = l->insertion_id,
        .lhs_impression_id = l->impression_id,
        .rhs_record_id = c->rhs_record_id,
        .lhs_string = ls,
        .rhs_string = rs,
        .lhs_long = ll,
        .rhs_long = rl,
        .log_timestamp = c->log_timestamp,
        .log_function_name = c->fn,
    };
    c->rc = inferred_join_merge_mismatch(c->m, &e);
}

static char *set_str(setter *c, join_field f, const char *lv, const char *rv)
{
    if (empty(lv)) return nz(rv);
    if (!empty(rv) && strcmp(lv, rv)) mismatch(c, f, lv, rv, 0, 0);
    return (char *)lv;
}

static void set_platform(setter *c, Event__TinyEvent *out, uint64_t lv, uint64_t rv)
{
    if (!lv) {
        out->platform_id = rv;
    } else {
        if (rv && rv != lv) mismatch(c, JOIN_F_PLATFORM_ID, NULL, NULL, (int64_t)lv, (int64_t)rv);
        out->platform_id = lv;
    }
    out->has_platform_id = out->platform_id != 0;
}

static void set_lt(Event__TinyEvent *out, uint64_t lt)
{
    out->log_timestamp = lt;
    out->has_log_timestamp = lt != 0;
}

/* The seven ids mergeImpression and mergeAction merge, in the reference's order. */
static void set_event_ids(setter *c, Event__TinyEvent *out, const Event__TinyEvent *l,
                          const Event__TinyEvent *r)
{
    static const Event__TinyEvent none = EVENT__TINY_EVENT__INIT;
    if (!l) l = &none;
    set_platform(c, out, l->platform_id, r->platform_id);
    out->log_user_id = set_str(c, JOIN_F_LOG_USER_ID, l->log_user_id, r->log_user_id);
    out->view_id = set_str(c, JOIN_F_VIEW_ID, l->view_id, r->view_id);
    out->request_id = set_str(c, JOIN_F_REQUEST_ID, l->request_id, r->request_id);
    out->insertion_id = set_str(c, JOIN_F_INSERTION_ID, l->insertion_id, r->insertion_id);
    out->impression_id = set_str(c, JOIN_F_IMPRESSION_ID, l->impression_id, r->impression_id);
    out->action_id = set_str(c, JOIN_F_ACTION_ID, l->action_id, r->action_id);
}

/* out's other_content_ids plus r's entries: overwrite = 1 replaces the value of a key out
 * already has (mergeAction), 0 keeps it (mergeImpression). */
static int merge_other_ids(ProtobufCAllocator *a, Event__TinyEvent *out, const Event__TinyEvent *r,
                           int overwrite)
{
    if (!r->n_other_content_ids) return 0;
    size_t cap = out->n_other_content_ids + r->n_other_content_ids, n = out->n_other_content_ids;
    Event__TinyEvent__OtherContentIdsEntry **v = a->alloc(a->allocator_data, cap * sizeof *v);
    if (!v) return -1;
    if (n) memcpy(v, out->other_content_ids, n * sizeof *v);
    for (size_t i = 0; i < r->n_other_content_ids; i++) {
        Event__TinyEvent__OtherContentIdsEntry *e = r->other_content_ids[i];
        size_t k = 0;
        while (k < n && v[k]->key != e->key)
            k++;
        if (k < n) {
            if (overwrite) v[k] = e;
        } else {
            v[n++] = e;
        }
    }
    out->n_other_content_ids = n;
    out->other_content_ids = v;
    return 0;
}

/* J1 createTinyFlatResponseInsertions(view, dl): the view's TinyEvent with the DeliveryLog's
 * ids merged in, request_id and log_timestamp from the DeliveryLog, then one output per response
 * insertion. */
static int merge_j1(void *ctx, inferred_join_merge *m, const void *lhsv, const void *rhsv)
{
    const Event__TinyEvent *v = lhsv;
    const Event__TinyDeliveryLog *d = rhsv;
    Event__TinyEvent out = EVENT__TINY_EVENT__INIT;
    if (v) out = *v;
    setter c = {m,
                v,
                JOIN_RT_DELIVERY_LOG,
                JOIN_FN_TINY_FLAT_UTIL_CREATE_TINY_FLAT_RESPONSE_INSERTIONS,
                d->request_id,
                (int64_t)d->log_timestamp,
                0};
    set_platform(&c, &out, v ? v->platform_id : 0, d->platform_id);
    out.log_user_id = set_str(&c, JOIN_F_LOG_USER_ID, v ? v->log_user_id : NULL, d->log_user_id);
    out.view_id = set_str(&c, JOIN_F_VIEW_ID, v ? v->view_id : NULL, d->view_id);
    if (c.rc) return c.rc;
    out.request_id = nz(d->request_id);
    if (d->log_timestamp) set_lt(&out, d->log_timestamp);
    for (size_t i = 0; i < d->n_response_insertion; i++) {
        const Event__TinyInsertion *ins = d->response_insertion[i];
        out.insertion_id = nz(ins->insertion_id);
        out.content_id = nz(ins->content_id);
        int rc = inferred_join_merge_emit(m, &out);
        if (rc) return rc;
    }
    return 0;
}

/* J2 mergeImpression(insertion, impression). */
static int merge_j2(void *ctx, inferred_join_merge *m, const void *lhsv, const void *rhsv)
{
    const Event__TinyEvent *l = lhsv, *im = rhsv;
    Event__TinyEvent out = EVENT__TINY_EVENT__INIT;
    if (l) out = *l;
    setter c = {m,
                l,
                JOIN_RT_IMPRESSION,
                JOIN_FN_TINY_FLAT_UTIL_MERGE_IMPRESSION,
                im->impression_id,
                (int64_t)im->log_timestamp,
                0};
    set_event_ids(&c, &out, l, im);
    if (c.rc) return c.rc;
    set_lt(&out, im->log_timestamp);
    /* content_id stays the insertion's */
    if (merge_other_ids(inferred_join_merge_allocator(m), &out, im, 0)) return -1;
    return inferred_join_merge_emit(m, &out);
}

/* J3 mergeAction(impression, action). */
static int merge_j3(void *ctx, inferred_join_merge *m, const void *lhsv, const void *rhsv)
{
    const Event__TinyEvent *l = lhsv, *ac = rhsv;
    Event__TinyEvent out = EVENT__TINY_EVENT__INIT;
    if (l) out = *l;
    setter c = {m,
                l,
                JOIN_RT_ACTION,
                JOIN_FN_TINY_FLAT_UTIL_MERGE_ACTION,
                ac->action_id,
                (int64_t)ac->log_timestamp,
                0};
    set_event_ids(&c, &out, l, ac);
    if (c.rc) return c.rc;
    set_lt(&out, ac->log_timestamp);
    if (!empty(ac->content_id)) out.content_id = ac->content_id;
    if (merge_other_ids(inferred_join_merge_allocator(m), &out, ac, 1)) return -1;
    return inferred_join_merge_emit(m, &out);
}

/* ============================== constructors ============================== */

void join_instances_params_default(join_instances_params *p)
{
    *p = (join_instances_params){
        .view_insertion_join_min_ms = -10 * 60 * 1000,
        .view_insertion_join_max_ms = 0,
        .insertion_impression_join_min_ms = -30 * 60 * 1000,
        .insertion_impression_join_max_ms = 0,
        .impression_action_join_min_ms = -24 * 60 * 60 * 1000,
        .impression_action_join_max_ms = 0,
        .id_join_duration_multiplier = 1,
        .skip_view_join = false,
        .check_lateness = true,
    };
}

static int64_t abs_ms(int64_t v)
{
    return v == INT64_MIN ? INT64_MAX : v < 0 ? -v : v;
}

static int add(rt_graph *g, const char *uid, const join_instances_params *p, int which, rt_op **out)
{
    if (p->id_join_duration_multiplier < 1 || p->n_content_id_field_keys > TINY_MAX_KEYS) return -1;
    inst *in = calloc(1, sizeof *in);
    if (!in) return -1;
    in->which = which;
    if (which == J3) {
        in->nkeys = p->n_content_id_field_keys;
        for (size_t k = 0; k < in->nkeys; k++) {
            const char *name = p->content_id_field_keys[k] ? p->content_id_field_keys[k] : "";
            in->hash[k] = java_string_hash(name, strlen(name));
        }
    }
    inferred_join_config c = {
        .lhs_type = REC_TINY_EVENT,
        .rhs_type = which == J1 ? REC_TINY_DELIVERY_LOG : REC_TINY_EVENT,
        .out_type = REC_TINY_EVENT,
        .lhs_desc = &event__tiny_event__descriptor,
        .rhs_desc =
            which == J1 ? &event__tiny_delivery_log__descriptor : &event__tiny_event__descriptor,
        .mult = p->id_join_duration_multiplier,
        .check_lateness = p->check_lateness,
        .ctx = in,
        .ctx_free = free,
        .key = key_of,
        .lt = lt_of,
    };
    c.port_names[INFERRED_JOIN_PORT_MISMATCH] = "mismatch_error";
    switch (which) {
    case J1:
        c.max_time_ms = abs_ms(p->view_insertion_join_min_ms);
        c.max_ooo_ms = abs_ms(p->view_insertion_join_max_ms);
        c.skip_join = p->skip_view_join;
        if (c.skip_join) {
            c.max_time_ms = c.max_ooo_ms = 0;
            c.mult = 1;
        }
        c.right_outer = true;
        c.include_key_as_scope = true;
        c.lhs_pk = j1_lhs_pk;
        c.rhs_fk = j1_rhs_fk;
        c.rhs_pk = j1_rhs_pk;
        c.lhs_scopes = j1_lhs_scopes;
        c.rhs_scopes = j1_rhs_scopes;
        c.merge = merge_j1;
        c.port_names[INFERRED_JOIN_PORT_LATE] = "late_view_responseinsertions";
        c.port_names[INFERRED_JOIN_PORT_DROPPED] = "dropped_view_responseinsertions";
        c.port_names[INFERRED_JOIN_PORT_DUPLICATE_LHS] = "duplicate_view";
        c.port_names[INFERRED_JOIN_PORT_RHS_WITHOUT_KEY] = "dropped_delivery_log_without_key";
        c.port_names[INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING] =
            "dropped_delivery_log_duplicate_pending";
        c.port_names[INFERRED_JOIN_PORT_LHS_ZERO_LT] = "dropped_view_zero_log_timestamp";
        c.port_names[INFERRED_JOIN_PORT_RHS_ZERO_LT] = "dropped_delivery_log_zero_log_timestamp";
        break;
    case J2:
        c.max_time_ms = abs_ms(p->insertion_impression_join_min_ms);
        c.max_ooo_ms = abs_ms(p->insertion_impression_join_max_ms);
        c.content_filter = true;
        c.lhs_pk = j2_lhs_pk;
        c.rhs_fk = j2_rhs_fk;
        c.rhs_pk = j2_rhs_pk;
        c.lhs_scopes = j2_lhs_scopes;
        c.rhs_scopes = j2_rhs_scopes;
        c.lhs_content_ids_packed = lhs_content_ids_packed;
        c.rhs_content_ids = rhs_content_ids;
        c.merge = merge_j2;
        c.port_names[INFERRED_JOIN_PORT_LATE] = "late_insertion_impressions";
        c.port_names[INFERRED_JOIN_PORT_DROPPED] = "dropped_insertion_impressions";
        c.port_names[INFERRED_JOIN_PORT_DUPLICATE_LHS] = "duplicate_insertion";
        c.port_names[INFERRED_JOIN_PORT_RHS_WITHOUT_KEY] = "dropped_impression_without_key";
        c.port_names[INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING] =
            "dropped_impression_duplicate_pending";
        c.port_names[INFERRED_JOIN_PORT_LHS_ZERO_LT] = "dropped_insertion_zero_log_timestamp";
        c.port_names[INFERRED_JOIN_PORT_RHS_ZERO_LT] = "dropped_impression_zero_log_timestamp";
        break;
    default:
        c.max_time_ms = abs_ms(p->impression_action_join_min_ms);
        c.max_ooo_ms = abs_ms(p->impression_action_join_max_ms);
        c.content_filter = true;
        c.lhs_pk = j3_lhs_pk;
        c.rhs_fk = j3_rhs_fk;
        c.rhs_pk = j3_rhs_pk;
        c.lhs_scopes = j3_lhs_scopes;
        c.rhs_scopes = j3_rhs_scopes;
        c.lhs_content_ids_packed = lhs_content_ids_packed;
        c.rhs_content_ids = rhs_content_ids;
        c.merge = merge_j3;
        c.port_names[INFERRED_JOIN_PORT_LATE] = "late_impression_actions";
        c.port_names[INFERRED_JOIN_PORT_DROPPED] = "dropped_impression_actions";
        c.port_names[INFERRED_JOIN_PORT_DUPLICATE_LHS] = "duplicate_impression";
        c.port_names[INFERRED_JOIN_PORT_RHS_WITHOUT_KEY] = "dropped_action_without_key";
        c.port_names[INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING] = "dropped_action_duplicate_pending";
        c.port_names[INFERRED_JOIN_PORT_LHS_ZERO_LT] = "dropped_impression_zero_log_timestamp";
        c.port_names[INFERRED_JOIN_PORT_RHS_ZERO_LT] = "dropped_action_zero_log_timestamp";
        break;
    }
    return inferred_join_op_add(g, uid, &c, out); /* owns in from here, even on failure */
}

int join_view_insertion_op_add(rt_graph *g, const char *uid, const join_instances_params *p,
                               rt_op **out)
{
    return add(g, uid, p, J1, out);
}

int join_insertion_impression_op_add(rt_graph *g, const char *uid, const join_instances_params *p,
                                     rt_op **out)
{
    return add(g, uid, p, J2, out);
}

int join_impression_action_op_add(rt_graph *g, const char *uid, const join_instances_params *p,
                                  rt_op **out)
{
    return add(g, uid, p, J3, out);
}
