#include "jobs/raw/derived.h"

#include <string.h>

/* ---- extraction ---- */

static int candidate(int64_t p0, int64_t t0, uint64_t p, const Common__Timing *tm,
                     const Common__UserInfo *ui, int (*emit)(void *, const avenc_log_user_user *),
                     void *ctx)
{
    if (!ui || !ui->log_user_id || !*ui->log_user_id || !ui->user_id || !*ui->user_id) return 0;
    avenc_log_user_user r = {
        .platform_id = p ? (int64_t)p : p0,
        .event_api_timestamp = tm && tm->event_api_timestamp ? (int64_t)tm->event_api_timestamp : t0,
        .log_user_id = ui->log_user_id,
        .user_id = ui->user_id,
    };
    return emit(ctx, &r);
}

int raw_log_user_users(const Event__LogRequest *lr,
                       int (*emit)(void *ctx, const avenc_log_user_user *luu), void *ctx)
{
    int64_t p0 = (int64_t)lr->platform_id;
    int64_t t0 = lr->timing ? (int64_t)lr->timing->event_api_timestamp : 0;
    int rc;
#define EACH(arr, n)                                                                              \
    for (size_t i = 0; i < lr->n; i++)                                                            \
        if ((rc = candidate(p0, t0, lr->arr[i]->platform_id, lr->arr[i]->timing,                  \
                            lr->arr[i]->user_info, emit, ctx)))                                   \
            return rc;
    if ((rc = candidate(p0, t0, 0, NULL, lr->user_info, emit, ctx))) return rc;
    EACH(user, n_user)
    EACH(cohort_membership, n_cohort_membership)
    EACH(view, n_view)
    EACH(auto_view, n_auto_view)
    for (size_t i = 0; i < lr->n_delivery_log; i++) {
        const Delivery__DeliveryLog *dl = lr->delivery_log[i];
        const Delivery__Request *rq = dl->request;
        uint64_t p = dl->platform_id ? dl->platform_id : rq ? rq->platform_id : 0;
        if (rq && (rc = candidate(p0, t0, p, rq->timing, rq->user_info, emit, ctx))) return rc;
    }
    EACH(impression, n_impression)
    EACH(action, n_action)
    EACH(diagnostics, n_diagnostics)
#undef EACH
    return 0;
}

void raw_delivery_log_ids_of(const Delivery__DeliveryLog *dl, avenc_delivery_log_ids *out)
{
    const Delivery__Request *rq = dl->request;
    memset(out, 0, sizeof *out);
    out->platform_id = (int64_t)dl->platform_id;
    if (rq) {
        out->event_api_timestamp = rq->timing ? (int64_t)rq->timing->event_api_timestamp : 0;
        out->log_user_id = rq->user_info ? rq->user_info->log_user_id : NULL;
        out->view_id = rq->view_id;
        out->request_id = rq->request_id;
        out->client_request_id = rq->client_request_id;
        out->search_query = rq->search_query;
        out->user_agent = rq->device && rq->device->browser ? rq->device->browser->user_agent : NULL;
    }
    out->execution_server = dl->execution ? (int32_t)dl->execution->execution_server : 0;
}
