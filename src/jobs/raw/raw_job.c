/* raw-output (spec/other-jobs.md §A): LogRequest -> split with push-down -> dedupe ->
 * restructure -> one partitioned Avro table per record type, plus the derived side tables.
 *
 *   source-kafka-<topic> (decode) --invalid--> sink-s3-raw-side-invalid-record
 *     -> split-log-request
 *          port 0 LogRequest as received -> sink-s3-raw-log-request
 *                                        -> derive-log-user-user -> keep-first-log-user-user
 *                                           -> sink-s3-raw-log-user-user
 *          user                -> sink-s3-raw-user
 *          cohort-membership   -> keep-first-cohort-membership -> sink-s3-raw-cohort-membership
 *          auto-view, view, impression, action: keep-first-<t> -> sink-s3-raw-<t>
 *          delivery-log        -> keep-first-delivery-log -> restructure-delivery-log
 *                                 -> sink-s3-raw-delivery-log
 *                                 -> derive-delivery-log-ids -> sink-s3-raw-side-delivery-log-ids
 *                                 -> derive-request-insertion-ids -> sink-s3-raw-side-request-insertion-ids
 *                                 -> derive-response-insertion-ids -> sink-s3-raw-side-response-insertion-ids
 *          diagnostics         -> sink-s3-raw-diagnostics
 */
#include "jobs/raw/raw_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/record_file.h"
#include "jobs/avro_table.h"
#include "jobs/common_ops.h"
#include "jobs/map_op.h"
#include "jobs/raw/derived.h"
#include "jobs/restructure.h"
#include "jobs/split.h"
#include "jobs/topic_sink.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

enum { REC_LOG_USER_USER = 100, REC_DELIVERY_LOG_IDS, REC_REQUEST_INSERTION_IDS, REC_RESPONSE_INSERTION_IDS };

typedef struct raw_opts {
    int64_t keepFirstLogUserUserDuration;
    int64_t keepFirstCohortMembershipDuration;
    int64_t keepFirstDeliveryLogDuration;
    int64_t keepFirstViewDuration;
    int64_t keepFirstImpressionDuration;
    int64_t keepFirstActionDuration;
    bool writeLogUserUserEventsToKafka;
    char *logUserUserTopic;
    bool writeHudiTables;
} raw_opts;

#define R(f) offsetof(raw_opts, f)
static const flag_def raw_defs[] = {
    {"keepFirstLogUserUserDuration", NULL, FLAG_DURATION, "PT2H", R(keepFirstLogUserUserDuration),
     "dedupe retention of LogUserUser rows", 0},
    {"keepFirstCohortMembershipDuration", NULL, FLAG_DURATION, "P1D",
     R(keepFirstCohortMembershipDuration), "dedupe retention of cohort memberships", 0},
    {"keepFirstDeliveryLogDuration", NULL, FLAG_DURATION, "P1D", R(keepFirstDeliveryLogDuration),
     "dedupe retention of delivery logs (by request_id)", 0},
    {"keepFirstViewDuration", NULL, FLAG_DURATION, "PT6H", R(keepFirstViewDuration),
     "dedupe retention of views and auto views", 0},
    {"keepFirstImpressionDuration", NULL, FLAG_DURATION, "P1D", R(keepFirstImpressionDuration),
     "dedupe retention of impressions", 0},
    {"keepFirstActionDuration", NULL, FLAG_DURATION, "P1D", R(keepFirstActionDuration),
     "dedupe retention of actions", 0},
    {"writeLogUserUserEventsToKafka", NULL, FLAG_BOOL, NULL, R(writeLogUserUserEventsToKafka),
     "also write the pre-dedupe LogUserUser stream to Kafka (metrics.[<label>.]<kafkaDataset>."
     "log-user-user-event; the counter joins on it)", 0},
    {"logUserUserTopic", NULL, FLAG_STRING, "", R(logUserUserTopic),
     "the LogUserUser topic instead of metrics.[<label>.]<kafkaDataset>.log-user-user-event", 0},
    {"writeHudiTables", NULL, FLAG_BOOL, NULL, R(writeHudiTables),
     "Hudi output (out of scope: rejected)", 0},
};

static int raw_new_opts(void **opts, flag_table *table)
{
    raw_opts *o = calloc(1, sizeof *o);
    if (!o) return -1;
    flag_table t = FLAG_TABLE("raw-output", raw_defs, o);
    *table = t;
    *opts = o;
    return 0;
}

static void raw_free_opts(void *opts)
{
    free(opts);
}

static int raw_check(const job_common_opts *c, void *opts, char *err, size_t errlen)
{
    raw_opts *o = opts;
    if (o->writeHudiTables) {
        snprintf(err, errlen, "flag --writeHudiTables: Hudi output is not supported by logproc "
                              "(the Avro tables under raw/ hold the same records)");
        return -1;
    }
    if (!c->logAvro && !c->logParquet && job_label_is_live(c->jobLabel)) {
        snprintf(err, errlen, "raw-output needs at least one output: --logAvro or --logParquet");
        return -1;
    }
    if (c->logParquet)
        log_info("raw-output", "--logParquet: Parquet tables are written as Avro here; no second copy");
    return 0;
}

/* ---- keys for keep-first ---- */

#define KEY_BY(name, type, platform, id)                                                          \
    static int name(const rt_record *rec, uint8_t *buf, size_t cap)                               \
    {                                                                                             \
        const type *m = rec->data;                                                                \
        return job_key_platform_id((platform), (id), buf, cap);                                   \
    }
KEY_BY(key_cohort, Event__CohortMembership, m->platform_id, m->membership_id)
KEY_BY(key_view, Event__View, m->platform_id, m->view_id)
KEY_BY(key_auto_view, Event__AutoView, m->platform_id, m->auto_view_id)
KEY_BY(key_impression, Event__Impression, m->platform_id, m->impression_id)
KEY_BY(key_action, Event__Action, m->platform_id, m->action_id)
KEY_BY(key_delivery_log, Delivery__DeliveryLog, m->platform_id,
       m->request ? m->request->request_id : NULL)

static int key_log_user_user(const rt_record *rec, uint8_t *buf, size_t cap)
{
    const avenc_log_user_user *r = rec->data;
    size_t nu = strlen(r->user_id), nl = strlen(r->log_user_id);
    if (16 + nu + 1 + nl > cap) return -1;
    int64_t hour = r->event_api_timestamp - ((r->event_api_timestamp % 3600000) + 3600000) % 3600000;
    job_put_le64(buf, (uint64_t)r->platform_id);
    job_put_le64(buf + 8, (uint64_t)hour);
    memcpy(buf + 16, r->user_id, nu);
    buf[16 + nu] = 0; /* separator: ids carry no NUL */
    memcpy(buf + 17 + nu, r->log_user_id, nl);
    return (int)(17 + nu + nl);
}

/* ---- split, restructure, derive ---- */

static int restructure_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    int rc = restructure_delivery_log(rec->data, map_op_allocator(op));
    if (rc == RESTRUCTURE_ERR_NOMEM) return rt_op_fail(op, "out of memory restructuring a delivery log");
    if (rc == RESTRUCTURE_ERR_DOTS) {
        /* the reference fails the job; here the delivery log is archived as it came */
        map_op_count(op, "numDeliveryLogsNotRestructured", 1);
        log_warn("raw-output", "delivery log kept unrestructured: an insertion matrix header is "
                               "made only of dots");
    }
    return rt_emit(op, 0, rec);
}

typedef struct luu_emit {
    rt_op *op;
    const rt_record *rec;
} luu_emit;

static int luu_one(void *ctx, const avenc_log_user_user *luu)
{
    luu_emit *e = ctx;
    rt_record r = {.ts = e->rec->ts, .type = REC_LOG_USER_USER, .data = (void *)luu};
    return rt_emit(e->op, 0, &r);
}

static int derive_luu_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    luu_emit e = {op, rec};
    return raw_log_user_users(rec->data, luu_one, &e);
}

static int derive_dl_ids_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    avenc_delivery_log_ids ids;
    raw_delivery_log_ids_of(rec->data, &ids);
    rt_record r = {.ts = rec->ts, .type = REC_DELIVERY_LOG_IDS, .data = &ids};
    return rt_emit(op, 0, &r);
}

static int derive_req_ins_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    const Delivery__DeliveryLog *dl = rec->data;
    const Delivery__Request *rq = dl->request;
    if (!rq) return 0;
    for (size_t i = 0; i < rq->n_insertion; i++) {
        const Delivery__Insertion *ins = rq->insertion[i];
        avenc_request_insertion_ids ids = {
            .platform_id = (int64_t)dl->platform_id,
            .event_api_timestamp = rq->timing ? (int64_t)rq->timing->event_api_timestamp : 0,
            .request_id = rq->request_id,
            .content_id = ins->content_id,
            .has_retrieval_rank = ins->has_retrieval_rank,
            .retrieval_rank = (int64_t)ins->retrieval_rank,
        };
        rt_record r = {.ts = rec->ts, .type = REC_REQUEST_INSERTION_IDS, .data = &ids};
        if (rt_emit(op, 0, &r)) return -1;
    }
    return 0;
}

static int derive_resp_ins_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    const Delivery__DeliveryLog *dl = rec->data;
    const Delivery__Request *rq = dl->request;
    if (!dl->response) return 0;
    for (size_t i = 0; i < dl->response->n_insertion; i++) {
        const Delivery__Insertion *ins = dl->response->insertion[i];
        avenc_response_insertion_ids ids = {
            .platform_id = (int64_t)dl->platform_id,
            .event_api_timestamp = rq && rq->timing ? (int64_t)rq->timing->event_api_timestamp : 0,
            .request_id = rq ? rq->request_id : NULL,
            .insertion_id = ins->insertion_id,
            .content_id = ins->content_id,
            .position = (int64_t)ins->position,
        };
        rt_record r = {.ts = rec->ts, .type = REC_RESPONSE_INSERTION_IDS, .data = &ids};
        if (rt_emit(op, 0, &r)) return -1;
    }
    return 0;
}

/* ---- partition timestamps and user_id clearing of the proto tables ---- */

static int64_t eat(const Common__Timing *t)
{
    return t ? (int64_t)t->event_api_timestamp : 0;
}

/* The Event API timestamp a proto table partitions by, and the user_info whose user_id the table
 * clears (NULL: keeps it). */
static int64_t proto_partition(int type, const void *m, Common__UserInfo **clear)
{
    *clear = NULL;
    switch (type) {
    case REC_LOG_REQUEST: return eat(((const Event__LogRequest *)m)->timing);
    case REC_USER: return eat(((const Event__User *)m)->timing);
    case REC_COHORT_MEMBERSHIP:
        *clear = ((const Event__CohortMembership *)m)->user_info;
        return eat(((const Event__CohortMembership *)m)->timing);
    case REC_VIEW:
        *clear = ((const Event__View *)m)->user_info;
        return eat(((const Event__View *)m)->timing);
    case REC_AUTO_VIEW:
        *clear = ((const Event__AutoView *)m)->user_info;
        return eat(((const Event__AutoView *)m)->timing);
    case REC_DELIVERY_LOG: {
        const Delivery__Request *rq = ((const Delivery__DeliveryLog *)m)->request;
        *clear = rq ? rq->user_info : NULL;
        return rq ? eat(rq->timing) : 0;
    }
    case REC_IMPRESSION:
        *clear = ((const Event__Impression *)m)->user_info;
        return eat(((const Event__Impression *)m)->timing);
    case REC_ACTION:
        *clear = ((const Event__Action *)m)->user_info;
        return eat(((const Event__Action *)m)->timing);
    case REC_DIAGNOSTICS:
        *clear = ((const Event__Diagnostics *)m)->user_info;
        return eat(((const Event__Diagnostics *)m)->timing);
    }
    return 0;
}

static int encode_proto(avro_table *t, const rt_record *rec, rt_buf *out, int64_t *pts)
{
    Common__UserInfo *clear;
    *pts = proto_partition(rec->type, rec->data, &clear);
    /* "clear user_id": written as empty without touching the shared record */
    char *saved = clear ? clear->user_id : NULL;
    if (clear) clear->user_id = NULL;
    int rc = avro_table_encode_message(t, rec->data, out);
    if (clear) clear->user_id = saved;
    return rc;
}

static int encode_derived(avro_table *t, const rt_record *rec, rt_buf *out, int64_t *pts)
{
    switch (rec->type) {
    case REC_LOG_USER_USER: {
        const avenc_log_user_user *r = rec->data;
        *pts = r->event_api_timestamp;
        return avro_table_encode_log_user_user(t, r, out);
    }
    case REC_DELIVERY_LOG_IDS: {
        const avenc_delivery_log_ids *r = rec->data;
        *pts = r->event_api_timestamp;
        return avro_table_encode_delivery_log_ids(t, r, out);
    }
    case REC_REQUEST_INSERTION_IDS: {
        const avenc_request_insertion_ids *r = rec->data;
        *pts = r->event_api_timestamp;
        return avro_table_encode_request_insertion_ids(t, r, out);
    }
    case REC_RESPONSE_INSERTION_IDS: {
        const avenc_response_insertion_ids *r = rec->data;
        *pts = r->event_api_timestamp;
        return avro_table_encode_response_insertion_ids(t, r, out);
    }
    }
    return -1;
}

/* ---- graph ---- */

typedef struct build_ctx {
    rt_graph *g;
    const job_common_opts *c;
    const char *run_id, *task;
    char *err;
    size_t errlen;
} build_ctx;

/* Adds sink-s3-<dir with / as -> for table dir ("raw/view"), fed from `from` port `port`.
 * A proto table takes desc; a derived table takes its schema name. */
static int add_sink(build_ctx *b, rt_op *from, int port, const char *dir,
                    const ProtobufCMessageDescriptor *desc, const char *schema_name)
{
    char uid[RT_UID_MAX], path[4096];
    snprintf(uid, sizeof uid, "sink-s3-%s", dir);
    for (char *p = uid; *p; p++)
        if (*p == '/') *p = '-';
    if (job_sink_disabled(b->c, uid)) return 0;
    if (desc && !b->c->logAvro && !b->c->logParquet) return 0;
    const char *parts[] = {dir};
    if (job_output_path(b->c, parts, 1, path, sizeof path)) {
        snprintf(b->err, b->errlen, "output path of %s is too long", dir);
        return -1;
    }
    avro_table *t;
    if (avro_table_new(desc, schema_name, (size_t)b->c->maxRecordBytes, &t, b->err, b->errlen))
        return -1;
    sink_op_config sc = {
        .dir = path, .run_id = b->run_id, .task = b->task,
        .format = avro_table_format(t),
        .encode = desc ? (int (*)(void *, const rt_record *, rt_buf *, int64_t *))encode_proto
                       : (int (*)(void *, const rt_record *, rt_buf *, int64_t *))encode_derived,
        .encode_ctx = t,
        .encode_free = (void (*)(void *))avro_table_free,
        .max_record_bytes = (size_t)b->c->maxRecordBytes,
    };
    rt_op *sink;
    if (sink_op_add(b->g, uid, &sc, &sink)) {
        avro_table_free(t);
        snprintf(b->err, b->errlen, "adding %s: out of memory", uid);
        return -1;
    }
    if (rt_graph_connect(b->g, from, port, sink, 0)) {
        snprintf(b->err, b->errlen, "%s", rt_graph_error(b->g));
        return -1;
    }
    return 0;
}

/* ---- the LogUserUser topic (other-jobs §A.7): key = §1.4 key, value = Avro binary ---- */

typedef struct luu_topic {
    avenc_buf datum;
} luu_topic;

static int luu_topic_encode(void *ctx, const rt_record *rec, rt_buf *out)
{
    luu_topic *t = ctx;
    if (rec->type != REC_LOG_USER_USER) return -1;
    const avenc_log_user_user *r = rec->data;
    char err[256];
    rt_buf_reset(&t->datum);
    if (avenc_log_user_user_datum(r, &t->datum, err, sizeof err)) return -1;
    uint8_t key[4096];
    size_t klen = recfile_make_key((uint64_t)r->platform_id, r->log_user_id ? r->log_user_id : "",
                                   key, sizeof key);
    if (klen > sizeof key || rt_buf_reserve(out, RECFILE_FRAME_OVERHEAD + klen + t->datum.len))
        return -1;
    out->len += recfile_frame_encode(out->data + out->len, rec->ts, key, (uint32_t)klen,
                                     t->datum.data, (uint32_t)t->datum.len);
    return 0;
}

static void luu_topic_free(void *ctx)
{
    luu_topic *t = ctx;
    avenc_buf_free(&t->datum);
    free(t);
}

static int add_luu_topic(build_ctx *b, rt_op *from, const char *override)
{
    char topic[512], uid[RT_UID_MAX];
    if (override && *override) {
        snprintf(topic, sizeof topic, "%s", override);
    } else {
        char mid[256] = "";
        if (!job_label_is_live(b->c->jobLabel)) snprintf(mid, sizeof mid, "%s.", b->c->jobLabel);
        snprintf(topic, sizeof topic, "metrics.%s%s.log-user-user-event", mid, b->c->kafkaDataset);
    }
    if ((size_t)snprintf(uid, sizeof uid, "sink-kafka-%s", topic) >= sizeof uid) {
        snprintf(b->err, b->errlen, "topic %.100s...: uid over %d bytes", topic, RT_UID_MAX);
        return -1;
    }
    luu_topic *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(b->err, b->errlen, "adding %s: out of memory", uid);
        return -1;
    }
    avenc_buf_init(&t->datum, (size_t)b->c->maxRecordBytes);
    topic_sink_config tc = {
        .topic = topic, .run_id = b->run_id, .task = b->task, .job = "raw-output",
        .encode = luu_topic_encode, .encode_ctx = t, .encode_free = luu_topic_free,
        .max_record_bytes = (size_t)b->c->maxRecordBytes + 8192,
    };
    rt_op *sink;
    if (topic_sink_op_add(b->g, b->c, uid, &tc, &sink, b->err, b->errlen)) {
        luu_topic_free(t);
        return -1;
    }
    if (rt_graph_connect(b->g, from, 0, sink, 0)) {
        snprintf(b->err, b->errlen, "%s", rt_graph_error(b->g));
        return -1;
    }
    return 0;
}

static int add_map(build_ctx *b, rt_op *from, int port, const char *uid, int nout,
                   int (*fn)(rt_op *, const rt_record *, void *), rt_op **out)
{
    if (map_op_add(b->g, uid, nout, fn, NULL, out)) {
        snprintf(b->err, b->errlen, "adding %s: out of memory", uid);
        return -1;
    }
    if (from && rt_graph_connect(b->g, from, port, *out, 0)) {
        snprintf(b->err, b->errlen, "%s", rt_graph_error(b->g));
        return -1;
    }
    return 0;
}

static int add_keep_first(build_ctx *b, rt_op *from, int port, const char *uid, int64_t retention,
                          int (*key_fn)(const rt_record *, uint8_t *, size_t), rt_op **out)
{
    keep_first_config kc = {.retention_ms = retention, .key_fn = key_fn};
    if (keep_first_op_add(b->g, uid, &kc, out) || rt_graph_connect(b->g, from, port, *out, 0)) {
        snprintf(b->err, b->errlen, "adding %s failed", uid);
        return -1;
    }
    return 0;
}

static int raw_build(rt_graph *g, const job_common_opts *c, const void *opts, const char *run_id,
                     const char *task, rt_op **root, char *err, size_t errlen)
{
    const raw_opts *o = opts;
    build_ctx b = {g, c, run_id, task, err, errlen};
    char topic[512], uid[RT_UID_MAX];
    job_log_request_topic(c, topic, sizeof topic);
    if ((size_t)snprintf(uid, sizeof uid, "%s%s", c->kafkaSourceUidPrefix, topic) >= sizeof uid) {
        snprintf(err, errlen, "source uid %s%s is over %d bytes", c->kafkaSourceUidPrefix, topic,
                 RT_UID_MAX);
        return -1;
    }

    decode_op_config dc = {
        .desc = &event__log_request__descriptor,
        .rec_type = REC_LOG_REQUEST,
        .max_record_bytes = (size_t)c->maxRecordBytes,
        .end_at_ts = c->endAtTimestamp,
    };
    rt_op *decode, *split, *op, *rs, *luu;
    if (decode_op_add(g, uid, &dc, &decode)) {
        snprintf(err, errlen, "adding %s: out of memory", uid);
        return -1;
    }
    *root = decode;
    rt_op *inv;
    if (invalid_sink_op_add(g, c, "raw-side/invalid-record", run_id, task, &inv, err, errlen))
        return -1;
    if (inv && rt_graph_connect(g, decode, 1, inv, 0))
        return job_build_fail(g, "raw-output", "connecting the invalid-record sink", err, errlen);
    if (split_op_add(g, "split-log-request", &split) || rt_graph_connect(g, decode, 0, split, 0)) {
        snprintf(err, errlen, "adding split-log-request failed");
        return -1;
    }

    /* port 0: the LogRequest as received */
    if (add_sink(&b, split, 0, "raw/log-request", &event__log_request__descriptor, NULL) ||
        add_map(&b, split, 0, "derive-log-user-user", 1, derive_luu_fn, &luu) ||
        add_keep_first(&b, luu, 0, "keep-first-log-user-user", o->keepFirstLogUserUserDuration,
                       key_log_user_user, &op) ||
        add_sink(&b, op, 0, "raw/log-user-user", NULL, "log_user_user"))
        return -1;
    if (o->writeLogUserUserEventsToKafka && add_luu_topic(&b, luu, o->logUserUserTopic)) return -1;

    if (add_sink(&b, split, 1 + SPLIT_USER, "raw/user", &event__user__descriptor, NULL)) return -1;
    if (add_keep_first(&b, split, 1 + SPLIT_COHORT_MEMBERSHIP, "keep-first-cohort-membership",
                       o->keepFirstCohortMembershipDuration, key_cohort, &op) ||
        add_sink(&b, op, 0, "raw/cohort-membership", &event__cohort_membership__descriptor, NULL))
        return -1;
    if (add_keep_first(&b, split, 1 + SPLIT_AUTO_VIEW, "keep-first-auto-view",
                       o->keepFirstViewDuration, key_auto_view, &op) ||
        add_sink(&b, op, 0, "raw/auto-view", &event__auto_view__descriptor, NULL))
        return -1;
    if (add_keep_first(&b, split, 1 + SPLIT_VIEW, "keep-first-view", o->keepFirstViewDuration,
                       key_view, &op) ||
        add_sink(&b, op, 0, "raw/view", &event__view__descriptor, NULL))
        return -1;

    if (add_keep_first(&b, split, 1 + SPLIT_DELIVERY_LOG, "keep-first-delivery-log",
                       o->keepFirstDeliveryLogDuration, key_delivery_log, &op) ||
        add_map(&b, op, 0, "restructure-delivery-log", 1, restructure_fn, &rs) ||
        add_sink(&b, rs, 0, "raw/delivery-log", &delivery__delivery_log__descriptor, NULL) ||
        add_map(&b, rs, 0, "derive-delivery-log-ids", 1, derive_dl_ids_fn, &op) ||
        add_sink(&b, op, 0, "raw-side/delivery-log-ids", NULL, "delivery_log_ids") ||
        add_map(&b, rs, 0, "derive-request-insertion-ids", 1, derive_req_ins_fn, &op) ||
        add_sink(&b, op, 0, "raw-side/request-insertion-ids", NULL, "request_insertion_ids") ||
        add_map(&b, rs, 0, "derive-response-insertion-ids", 1, derive_resp_ins_fn, &op) ||
        add_sink(&b, op, 0, "raw-side/response-insertion-ids", NULL, "response_insertion_ids"))
        return -1;

    if (add_keep_first(&b, split, 1 + SPLIT_IMPRESSION, "keep-first-impression",
                       o->keepFirstImpressionDuration, key_impression, &op) ||
        add_sink(&b, op, 0, "raw/impression", &event__impression__descriptor, NULL))
        return -1;
    if (add_keep_first(&b, split, 1 + SPLIT_ACTION, "keep-first-action",
                       o->keepFirstActionDuration, key_action, &op) ||
        add_sink(&b, op, 0, "raw/action", &event__action__descriptor, NULL))
        return -1;
    if (add_sink(&b, split, 1 + SPLIT_DIAGNOSTICS, "raw/diagnostics", &event__diagnostics__descriptor,
                 NULL))
        return -1;
    return 0;
}

const job_def raw_job_def = {
    .name = "raw-output",
    .kafka_group = "loglogrequest",
    .help = "archive every raw record type as partitioned Avro tables (raw/, raw-side/)",
    .new_opts = raw_new_opts,
    .free_opts = raw_free_opts,
    .check = raw_check,
    .build = raw_build,
};
