#include "jobs/join/strip_user_id.h"

#include <string.h>

#include "jobs/join/join_records.h"
#include "jobs/map_op.h"

static void *dup_msg(ProtobufCAllocator *a, const void *m)
{
    const ProtobufCMessage *pm = m;
    size_t n = pm->descriptor->sizeof_message;
    void *c = a->alloc(a->allocator_data, n);
    if (c) memcpy(c, m, n);
    return c;
}

static int has_uid(const Common__UserInfo *ui)
{
    return ui && ui->user_id;
}

static Common__UserInfo *ui_without(ProtobufCAllocator *a, const Common__UserInfo *ui)
{
    Common__UserInfo *c = dup_msg(a, ui);
    if (c) c->user_id = NULL;
    return c;
}

/* For a message type T with a user_info field: *slot becomes a copy without user_id when the
 * original has one. Returns 0 or -1 (alloc). */
#define STRIP_MSG(T, slot)                                                                         \
    do {                                                                                           \
        if ((slot) && has_uid((slot)->user_info)) {                                                \
            T *c_ = dup_msg(a, (slot));                                                            \
            if (!c_ || !(c_->user_info = ui_without(a, (slot)->user_info))) return -1;             \
            (slot) = c_;                                                                           \
        }                                                                                          \
    } while (0)

/* Strips the fields JoinedEvent and FlatResponseInsertion share, on a copy `o` of the outer
 * message whose pointers may be replaced. */
#define STRIP_COMMON(o)                                                                            \
    do {                                                                                           \
        if ((o)->ids && (o)->ids->user_id) {                                                       \
            Event__JoinedIdentifiers *ids_ = dup_msg(a, (o)->ids);                                 \
            if (!ids_) return -1;                                                                  \
            ids_->user_id = NULL;                                                                  \
            (o)->ids = ids_;                                                                       \
        }                                                                                          \
        STRIP_MSG(Event__User, (o)->user);                                                         \
        STRIP_MSG(Logproc__Priv__SessionProfile, (o)->session_profile);                            \
        STRIP_MSG(Logproc__Priv__Session, (o)->session);                                           \
        STRIP_MSG(Event__View, (o)->view);                                                         \
        STRIP_MSG(Event__AutoView, (o)->auto_view);                                                \
        STRIP_MSG(Delivery__Request, (o)->request);                                                \
    } while (0)

#define COMMON_HAS_UID(o)                                                                          \
    (((o)->ids && (o)->ids->user_id) || ((o)->user && has_uid((o)->user->user_info)) ||            \
     ((o)->session_profile && has_uid((o)->session_profile->user_info)) ||                         \
     ((o)->session && has_uid((o)->session->user_info)) ||                                         \
     ((o)->view && has_uid((o)->view->user_info)) ||                                               \
     ((o)->auto_view && has_uid((o)->auto_view->user_info)) ||                                     \
     ((o)->request && has_uid((o)->request->user_info)))

int strip_user_id_joined_event(const Event__JoinedEvent *in, ProtobufCAllocator *a,
                               const Event__JoinedEvent **out)
{
    *out = in;
    if (!COMMON_HAS_UID(in) && !(in->impression && has_uid(in->impression->user_info)) &&
        !(in->action && has_uid(in->action->user_info)))
        return 0;
    Event__JoinedEvent *o = dup_msg(a, in);
    if (!o) return -1;
    STRIP_COMMON(o);
    STRIP_MSG(Event__Impression, o->impression);
    STRIP_MSG(Event__Action, o->action);
    *out = o;
    return 0;
}

int strip_user_id_flat_response_insertion(const Event__FlatResponseInsertion *in,
                                          ProtobufCAllocator *a,
                                          const Event__FlatResponseInsertion **out)
{
    *out = in;
    int any = COMMON_HAS_UID(in);
    for (size_t i = 0; !any && i < in->n_impression; i++)
        any = in->impression[i] && has_uid(in->impression[i]->user_info);
    for (size_t i = 0; !any && i < in->n_action; i++)
        any = in->action[i] && has_uid(in->action[i]->user_info);
    if (!any) return 0;
    Event__FlatResponseInsertion *o = dup_msg(a, in);
    if (!o) return -1;
    STRIP_COMMON(o);
    if (o->n_impression) {
        Event__Impression **arr = a->alloc(a->allocator_data, o->n_impression * sizeof *arr);
        if (!arr) return -1;
        memcpy(arr, in->impression, o->n_impression * sizeof *arr);
        for (size_t i = 0; i < o->n_impression; i++)
            STRIP_MSG(Event__Impression, arr[i]);
        o->impression = arr;
    }
    if (o->n_action) {
        Event__Action **arr = a->alloc(a->allocator_data, o->n_action * sizeof *arr);
        if (!arr) return -1;
        memcpy(arr, in->action, o->n_action * sizeof *arr);
        for (size_t i = 0; i < o->n_action; i++)
            STRIP_MSG(Event__Action, arr[i]);
        o->action = arr;
    }
    *out = o;
    return 0;
}

int strip_user_id_dropped_merge_details(const Event__DroppedMergeDetailsEvent *in,
                                        ProtobufCAllocator *a,
                                        const Event__DroppedMergeDetailsEvent **out)
{
    *out = in;
    if (!in->joined_event) return 0;
    const Event__JoinedEvent *je;
    if (strip_user_id_joined_event(in->joined_event, a, &je)) return -1;
    if (je == in->joined_event) return 0;
    Event__DroppedMergeDetailsEvent *o = dup_msg(a, in);
    if (!o) return -1;
    o->joined_event = (Event__JoinedEvent *)je;
    *out = o;
    return 0;
}

static int strip_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    ProtobufCAllocator *a = map_op_allocator(op);
    rt_record r = *rec;
    int rc = 0;
    switch (rec->type) {
    case REC_JOINED_EVENT: {
        const Event__JoinedEvent *o;
        rc = strip_user_id_joined_event(rec->data, a, &o);
        r.data = (void *)o;
        break;
    }
    case REC_FLAT_RESPONSE_INSERTION: {
        const Event__FlatResponseInsertion *o;
        rc = strip_user_id_flat_response_insertion(rec->data, a, &o);
        r.data = (void *)o;
        break;
    }
    case REC_DROPPED_MERGE_DETAILS: {
        const Event__DroppedMergeDetailsEvent *o;
        rc = strip_user_id_dropped_merge_details(rec->data, a, &o);
        r.data = (void *)o;
        break;
    }
    }
    if (rc) return rt_op_fail(op, "out of memory stripping user_id");
    return rt_emit(op, 0, &r);
}

int strip_user_id_op_add(rt_graph *g, const char *uid, rt_op **out)
{
    return map_op_add(g, uid, 1, strip_fn, NULL, out);
}
