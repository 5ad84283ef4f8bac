#include "jobs/split.h"

#include <string.h>

#include "formats/text.h"
#include "jobs/common_ops.h"
#include "jobs/map_op.h"

static const char *kind_names[SPLIT_KINDS] = {
    "user", "cohort-membership", "auto-view", "view", "delivery-log", "impression", "action",
    "diagnostics",
};

const char *split_kind_name(split_kind k)
{
    return k < SPLIT_KINDS ? kind_names[k] : "?";
}

static void *arena_new(ProtobufCAllocator *a, size_t size)
{
    void *p = a->alloc(a->allocator_data, size);
    if (p) memset(p, 0, size);
    return p;
}

char *split_lower(const char *s, ProtobufCAllocator *a)
{
    size_t len = strlen(s);
    if (!text_has_upper(s, len)) return (char *)s;
    char *out = a->alloc(a->allocator_data, text_lower_cap(len));
    if (!out) return NULL;
    size_t n;
    text_lower(s, len, out, &n);
    return out;
}

/* The four push-down targets of a child record, wherever they sit in its struct. */
typedef struct target {
    protobuf_c_boolean *has_platform_id;
    uint64_t *platform_id;
    Common__UserInfo **user_info;
    Common__Timing **timing;
    Common__ClientInfo **client_info;
} target;

#define TARGET(m) {&(m)->has_platform_id, &(m)->platform_id, &(m)->user_info, &(m)->timing, &(m)->client_info}

static int ensure_user_info(Common__UserInfo **ui, ProtobufCAllocator *a)
{
    if (*ui) return 0;
    Common__UserInfo init = COMMON__USER_INFO__INIT;
    if (!(*ui = arena_new(a, sizeof **ui))) return -1;
    **ui = init;
    return 0;
}

static int push_down_one(const Event__LogRequest *lr, const char *batch_luid, const target *t,
                         int copy_user_id, ProtobufCAllocator *a)
{
    if (t->platform_id && *t->platform_id == 0 && lr->platform_id) {
        *t->platform_id = lr->platform_id;
        *t->has_platform_id = 1;
    }
    if (lr->user_info) {
        if (ensure_user_info(t->user_info, a)) return -1;
        Common__UserInfo *ui = *t->user_info;
        if (!ui->log_user_id || !*ui->log_user_id) {
            /* empty stays absent so the bytes match proto3's */
            ui->log_user_id = batch_luid && *batch_luid ? (char *)batch_luid : NULL;
        } else if (!(ui->log_user_id = split_lower(ui->log_user_id, a))) {
            return -1;
        }
        if (copy_user_id && (!ui->user_id || !*ui->user_id) && lr->user_info->user_id &&
            *lr->user_info->user_id)
            ui->user_id = lr->user_info->user_id;
    } else if (*t->user_info && (*t->user_info)->log_user_id) {
        Common__UserInfo *ui = *t->user_info;
        if (!(ui->log_user_id = split_lower(ui->log_user_id, a))) return -1;
    }
    if (lr->timing) {
        if (!*t->timing) {
            Common__Timing init = COMMON__TIMING__INIT;
            if (!(*t->timing = arena_new(a, sizeof **t->timing))) return -1;
            **t->timing = init;
        }
        Common__Timing *tm = *t->timing;
        if (tm->client_log_timestamp == 0 && lr->timing->client_log_timestamp) {
            tm->client_log_timestamp = lr->timing->client_log_timestamp;
            tm->has_client_log_timestamp = 1;
        }
        if (tm->event_api_timestamp == 0 && lr->timing->event_api_timestamp) {
            tm->event_api_timestamp = lr->timing->event_api_timestamp;
            tm->has_event_api_timestamp = 1;
        }
    }
    if (lr->client_info) {
        if (!*t->client_info) {
            Common__ClientInfo init = COMMON__CLIENT_INFO__INIT;
            if (!(*t->client_info = arena_new(a, sizeof **t->client_info))) return -1;
            **t->client_info = init;
        }
        Common__ClientInfo *ci = *t->client_info;
        /* compared numerically: unrecognised non-zero values stay */
        if (ci->client_type == 0 && lr->client_info->client_type) {
            ci->client_type = lr->client_info->client_type;
            ci->has_client_type = 1;
        }
        if (ci->traffic_type == 0 && lr->client_info->traffic_type) {
            ci->traffic_type = lr->client_info->traffic_type;
            ci->has_traffic_type = 1;
        }
    }
    return 0;
}

int split_push_down(Event__LogRequest *lr, ProtobufCAllocator *a)
{
    const char *batch_luid = NULL;
    if (lr->user_info && lr->user_info->log_user_id &&
        !(batch_luid = split_lower(lr->user_info->log_user_id, a)))
        return -1;

    for (size_t i = 0; i < lr->n_user; i++) {
        target t = TARGET(lr->user[i]);
        if (push_down_one(lr, batch_luid, &t, 1, a)) return -1;
    }
    for (size_t i = 0; i < lr->n_cohort_membership; i++) {
        target t = TARGET(lr->cohort_membership[i]);
        if (push_down_one(lr, batch_luid, &t, 0, a)) return -1;
    }
    for (size_t i = 0; i < lr->n_auto_view; i++) {
        target t = TARGET(lr->auto_view[i]);
        if (push_down_one(lr, batch_luid, &t, 0, a)) return -1;
    }
    for (size_t i = 0; i < lr->n_view; i++) {
        target t = TARGET(lr->view[i]);
        if (push_down_one(lr, batch_luid, &t, 0, a)) return -1;
    }
    for (size_t i = 0; i < lr->n_delivery_log; i++) {
        Delivery__DeliveryLog *dl = lr->delivery_log[i];
        if (dl->platform_id == 0 && lr->platform_id) {
            dl->platform_id = lr->platform_id;
            dl->has_platform_id = 1;
        }
        if (!dl->request) {
            Delivery__Request init = DELIVERY__REQUEST__INIT;
            if (!(dl->request = arena_new(a, sizeof *dl->request))) return -1;
            *dl->request = init;
        }
        /* always overwritten with the DeliveryLog's, then the rules act on the request */
        dl->request->platform_id = dl->platform_id;
        dl->request->has_platform_id = dl->platform_id != 0;
        target t = {NULL, NULL, &dl->request->user_info, &dl->request->timing,
                    &dl->request->client_info};
        if (push_down_one(lr, batch_luid, &t, 0, a)) return -1;
    }
    for (size_t i = 0; i < lr->n_impression; i++) {
        target t = TARGET(lr->impression[i]);
        if (push_down_one(lr, batch_luid, &t, 0, a)) return -1;
    }
    for (size_t i = 0; i < lr->n_action; i++) {
        Event__Action *ac = lr->action[i];
        target t = TARGET(ac);
        if (push_down_one(lr, batch_luid, &t, 0, a)) return -1;
        if (lr->device && !ac->device) {
            /* the reference's device stub touches the action's device: it becomes present */
            Common__Device init = COMMON__DEVICE__INIT;
            if (!(ac->device = arena_new(a, sizeof *ac->device))) return -1;
            *ac->device = init;
        }
    }
    for (size_t i = 0; i < lr->n_diagnostics; i++) {
        target t = TARGET(lr->diagnostics[i]);
        if (push_down_one(lr, batch_luid, &t, 0, a)) return -1;
    }
    return 0;
}

static const int kind_rec_type[SPLIT_KINDS] = {
    REC_USER, REC_COHORT_MEMBERSHIP, REC_AUTO_VIEW, REC_VIEW, REC_DELIVERY_LOG, REC_IMPRESSION,
    REC_ACTION, REC_DIAGNOSTICS,
};

static int emit_children(rt_op *op, const rt_record *rec, void **arr, size_t n, split_kind k)
{
    for (size_t i = 0; i < n; i++) {
        rt_record r = {.ts = rec->ts, .type = kind_rec_type[k], .data = arr[i],
                       .key = rec->key, .key_len = rec->key_len};
        if (rt_emit(op, 1 + (int)k, &r)) return -1;
    }
    return 0;
}

static int split_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    Event__LogRequest *lr = rec->data;
    /* the LogRequest as received goes first, before push-down touches its children */
    if (rt_emit(op, 0, rec)) return -1;
    if (split_push_down(lr, map_op_allocator(op))) return rt_op_fail(op, "out of memory in push-down");
    if (emit_children(op, rec, (void **)lr->user, lr->n_user, SPLIT_USER) ||
        emit_children(op, rec, (void **)lr->cohort_membership, lr->n_cohort_membership,
                      SPLIT_COHORT_MEMBERSHIP) ||
        emit_children(op, rec, (void **)lr->auto_view, lr->n_auto_view, SPLIT_AUTO_VIEW) ||
        emit_children(op, rec, (void **)lr->view, lr->n_view, SPLIT_VIEW) ||
        emit_children(op, rec, (void **)lr->delivery_log, lr->n_delivery_log, SPLIT_DELIVERY_LOG) ||
        emit_children(op, rec, (void **)lr->impression, lr->n_impression, SPLIT_IMPRESSION) ||
        emit_children(op, rec, (void **)lr->action, lr->n_action, SPLIT_ACTION) ||
        emit_children(op, rec, (void **)lr->diagnostics, lr->n_diagnostics, SPLIT_DIAGNOSTICS))
        return -1;
    return 0;
}

int split_op_add(rt_graph *g, const char *uid, rt_op **out)
{
    return map_op_add(g, uid, 1 + SPLIT_KINDS, split_fn, NULL, out);
}
