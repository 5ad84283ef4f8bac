/* content-metrics (spec/other-jobs.md §C): per-content view, impression, joined-impression,
 * action and cart counts, hourly, daily and cumulated over the day, from the LogRequest topic
 * and the joined events flat-output writes.
 *
 *   source-kafka-tracking.event.log-request (decode) --invalid--> sink-s3-etl_side-content_metrics_invalid_record
 *     -> split-log-request
 *          view        -> keep-first-view ---------------------------\
 *          impression  -> keep-first-impression ----------------------+-> derive-content-event
 *          action      -> keep-first-action --------------------------/        |
 *   source-kafka-metrics[.<label>].default.joined-event (decode, with --joinedEventSource or Kafka input)
 *     --invalid--> (the same invalid-record sink)                              |
 *     -> filter-joined-impression -> keep-first-joined-impression -------------/
 *   derive-content-event -> aggregate-hourly-content-metrics    -> sink-s3-etl-hourly_content_metrics
 *                        -> aggregate-daily-content-metrics     -> sink-s3-etl-daily_content_metrics
 *                                                               -> sink-s3-etl-daily_content_metrics_csv
 *                        -> aggregate-cumulated-content-metrics -> sink-s3-etl-cumulated_content_metrics
 *                                                               -> sink-kafka-metrics.blue.default.cumulated-content-metrics
 * and after each table sink a write-success-etl-<table> operator that puts `_SUCCESS` into every
 * partition directory the sink published to. Only the aggregations whose outputs are on (and not --disableS3Sink'd) are built. The two
 * sources are read by one task, each with its own watermark (job.h job_input, runtime/task.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/avro_table.h"
#include "jobs/common_ops.h"
#include "jobs/content/content_event.h"
#include "jobs/join/joined_filters.h"
#include "jobs/content/content_flags.h"
#include "jobs/content/content_output.h"
#include "jobs/content/content_window.h"
#include "jobs/job.h"
#include "jobs/topic_sink.h"
#include "jobs/map_op.h"
#include "jobs/split.h"

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static int content_new_opts(void **opts, flag_table *table)
{
    content_opts *o = calloc(1, sizeof *o);
    if (!o) return -1;
    *table = content_flags_table(o);
    *opts = o;
    return 0;
}

static void content_free_opts(void *opts)
{
    free(opts);
}

static int content_check(const job_common_opts *c, void *opts, char *err, size_t errlen)
{
    return content_flags_check(c, opts, err, errlen);
}

static int content_second_input(const job_common_opts *c, const void *opts, job_input *in)
{
    const content_opts *o = opts;
    *in = (job_input){
        .flag = "joinedEventSource",
        .files = &o->joinedEventSource,
        .root_uid = o->joined_source_uid,
        .max_out_of_orderness = o->maxJoinedEventOutOfOrderness,
        .assign_ts = cm_joined_log_timestamp_wire,
    };
    return 1;
}

/* ---- keys of the dedupes ---- */

static int key_view(const rt_record *rec, uint8_t *buf, size_t cap)
{
    const Event__View *m = rec->data;
    return job_key_platform_id(m->platform_id, m->view_id, buf, cap);
}

static int key_impression(const rt_record *rec, uint8_t *buf, size_t cap)
{
    const Event__Impression *m = rec->data;
    return job_key_platform_id(m->platform_id, m->impression_id, buf, cap);
}

static int key_action(const rt_record *rec, uint8_t *buf, size_t cap)
{
    const Event__Action *m = rec->data;
    return job_key_platform_id(m->platform_id, m->action_id, buf, cap);
}

static int key_joined_impression(const rt_record *rec, uint8_t *buf, size_t cap)
{
    const Event__JoinedEvent *e = rec->data;
    return job_key_platform_id(joined_event_platform_id(e), e->ids ? e->ids->impression_id : NULL,
                               buf, cap);
}

/* JoinedEvents without an action are the joined impressions (§C.1). */
static int filter_joined_impression(rt_op *op, const rt_record *rec, void *ctx)
{
    const Event__JoinedEvent *e = rec->data;
    if (e->action) {
        map_op_count(op, "numJoinedActionsSkipped", 1);
        return 0;
    }
    return rt_emit(op, 0, rec);
}

/* ---- building ---- */

typedef struct build {
    rt_graph *g;
    const job_common_opts *c;
    const content_opts *o;
    const char *run_id, *task;
    char *err;
    size_t errlen;
} build;

static int fail(build *b, const char *what)
{
    return job_build_fail(b->g, "content-metrics", what, b->err, b->errlen);
}

static int connect(build *b, rt_op *from, int port, rt_op *to)
{
    return rt_graph_connect(b->g, from, port, to, 0) ? fail(b, "connecting operators") : 0;
}

/* The dead-letter table of both sources (created on first use; NULL when disabled). */
static int invalid_sink(build *b, rt_op **out)
{
    return invalid_sink_op_add(b->g, b->c, "etl_side/content_metrics_invalid_record", b->run_id,
                               b->task, out, b->err, b->errlen);
}

/* The fields the job reads (see decode_op_config.projection): of a LogRequest, what the split
 * pushes down into views, impressions and actions, and those three; of a joined event, the ids,
 * the content and position of its insertion, the platform ids joined_event_platform_id looks
 * at, the timings of getLogTimestamp's order and whether it is an action. Everything else (the
 * delivery logs, the joined event's view, request and insertion bodies) is checked but not
 * unpacked: most of each record's bytes. */
static const char *const log_request_fields[] = {
    "platform_id", "user_info", "timing", "client_info", "device", "view", "impression", "action",
    NULL};
static const char *const joined_event_fields[] = {
    "ids", "timing", "user.platform_id", "user.timing", "view.platform_id", "view.timing",
    "request.platform_id", "request.timing", "response_insertion.platform_id",
    "response_insertion.content_id", "response_insertion.position", "response_insertion.timing",
    "api_execution_insertion.timing", "impression.platform_id", "impression.timing",
    "action.platform_id", "action.timing", "session.timing", NULL};

static int add_source(build *b, const char *topic, const ProtobufCMessageDescriptor *desc,
                      int rec_type, rt_op **out)
{
    char uid[RT_UID_MAX + 1];
    if ((size_t)snprintf(uid, sizeof uid, "%s%s", b->c->kafkaSourceUidPrefix, topic) >= sizeof uid) {
        snprintf(b->err, b->errlen, "source uid %s%s is over %d bytes", b->c->kafkaSourceUidPrefix,
                 topic, RT_UID_MAX);
        return -1;
    }
    decode_op_config dc = {.desc = desc, .rec_type = rec_type,
                           .max_record_bytes = (size_t)b->c->maxRecordBytes,
                           .end_at_ts = b->c->endAtTimestamp,
                           .projection = desc == &event__log_request__descriptor
                                             ? log_request_fields
                                             : joined_event_fields};
    if (decode_op_add(b->g, uid, &dc, out)) return fail(b, uid);
    rt_op *inv;
    if (invalid_sink(b, &inv)) return -1;
    return inv ? connect(b, *out, 1, inv) : 0;
}

static int add_keep_first(build *b, rt_op *from, int port, const char *uid, int64_t retention,
                          int (*key_fn)(const rt_record *, uint8_t *, size_t), rt_op *to)
{
    keep_first_config kc = {.retention_ms = retention, .key_fn = key_fn};
    rt_op *op;
    if (keep_first_op_add(b->g, uid, &kc, &op)) return fail(b, uid);
    return connect(b, from, port, op) || connect(b, op, 0, to) ? -1 : 0;
}

/* A sink of kind under the output root (tables: with the label; the topic: <root>/kafka/),
 * unless disabled. *added tells whether it was. */
static int add_sink(build *b, rt_op **agg, const cm_window_config *wc, const char *agg_uid,
                    rt_op *events, cm_output_kind kind, const char *message_type)
{
    char uid[RT_UID_MAX + 1], path[4096];
    const char *dir = cm_output_dir(kind);
    if (kind == CM_OUT_CUMULATED_TOPIC) {
        snprintf(uid, sizeof uid, "sink-kafka-%s", dir);
    } else {
        snprintf(uid, sizeof uid, "sink-s3-%s", dir);
        for (char *p = uid; *p; p++)
            if (*p == '/') *p = '-';
        const char *parts[] = {dir};
        if (job_output_path(b->c, parts, 1, path, sizeof path)) return fail(b, "output path too long");
    }
    if (job_sink_disabled(b->c, uid)) return 0;
    if (!*agg) {
        if (cm_window_op_add(b->g, agg_uid, wc, agg) || connect(b, events, 0, *agg))
            return fail(b, agg_uid);
    }
    rt_op *sink;
    if (kind == CM_OUT_CUMULATED_TOPIC) {
        if (cm_topic_sink_add(b->g, b->c, uid, dir, message_type, b->run_id, b->task,
                              64 * 1024 + 16 * 4096, &sink, b->err, b->errlen) ||
            connect(b, *agg, 0, sink))
            return -1;
        return 0;
    }
    cm_sink_config sc = {
        .kind = kind, .dir = path, .message_type = message_type, .run_id = b->run_id,
        .task = b->task, .max_record_bytes = 64 * 1024 + 16 * 4096,
    };
    if (cm_sink_add(b->g, uid, &sc, &sink, b->err, b->errlen) || connect(b, *agg, 0, sink))
        return -1;
    /* the partition commit's _SUCCESS files: write-success-etl-<table> */
    char muid[RT_UID_MAX + 32];
    snprintf(muid, sizeof muid, "write-success-%s", uid + strlen("sink-s3-"));
    return cm_success_marker_add(b->g, muid, sink, *agg, b->err, b->errlen);
}

static int content_build(rt_graph *g, const job_common_opts *c, const void *opts,
                         const char *run_id, const char *task, rt_op **root, char *err,
                         size_t errlen)
{
    const content_opts *o = opts;
    build B = {g, c, o, run_id, task, err, errlen}, *b = &B;
    char topic[200];

    rt_op *events;
    if (cm_event_op_add(g, "derive-content-event", o->doubleCountCartActions, &events))
        return fail(b, "derive-content-event");

    /* LogRequests: views, impressions, actions */
    rt_op *split;
    job_log_request_topic(c, topic, sizeof topic);
    if (add_source(b, topic, &event__log_request__descriptor, REC_LOG_REQUEST, root)) return -1;
    if (split_op_add(g, "split-log-request", &split)) return fail(b, "split-log-request");
    if (connect(b, *root, 0, split) ||
        add_keep_first(b, split, 1 + SPLIT_VIEW, "keep-first-view", o->keepFirstViewDuration,
                       key_view, events) ||
        add_keep_first(b, split, 1 + SPLIT_IMPRESSION, "keep-first-impression",
                       o->keepFirstImpressionDuration, key_impression, events) ||
        add_keep_first(b, split, 1 + SPLIT_ACTION, "keep-first-action",
                       o->keepFirstActionDuration, key_action, events))
        return -1;

    /* joined impressions (the source exists when there are files to read until Kafka lands: a
     * source that never advances would hold every window back until the end of input) */
    if (o->joinedEventSource.n || topic_sink_kafka_mode(c)) { /* Kafka input: the topic */
        rt_op *joined, *filter;
        content_joined_event_topic(c, o, topic, sizeof topic);
        if (add_source(b, topic, &event__joined_event__descriptor, CM_REC_JOINED_EVENT, &joined))
            return -1;
        if (map_op_add(g, "filter-joined-impression", 1, filter_joined_impression, NULL, &filter))
            return fail(b, "filter-joined-impression");
        if (connect(b, joined, 0, filter) ||
            add_keep_first(b, filter, 0, "keep-first-joined-impression",
                           o->keepFirstJoinedImpressionDuration, key_joined_impression, events))
            return -1;
    }

    /* windows and outputs */
    char job_name[256];
    content_job_name(c, o, job_name, sizeof job_name);
    cm_window_config hourly = {.kind = CM_WINDOW_TUMBLE, .size_ms = HOUR_MS};
    cm_window_config daily = {.kind = CM_WINDOW_TUMBLE, .size_ms = DAY_MS};
    cm_window_config cumulated = {.kind = CM_WINDOW_CUMULATE, .size_ms = DAY_MS,
                                  .step_ms = o->cumulated_step_ms ? o->cumulated_step_ms : DAY_MS};
    rt_op *agg_hourly = NULL, *agg_daily = NULL, *agg_cumulated = NULL;
    if (o->outputParquet &&
        (add_sink(b, &agg_hourly, &hourly, "aggregate-hourly-content-metrics", events,
                  CM_OUT_HOURLY_AVRO, job_name) ||
         add_sink(b, &agg_daily, &daily, "aggregate-daily-content-metrics", events,
                  CM_OUT_DAILY_AVRO, job_name)))
        return -1;
    if (o->outputCsv && add_sink(b, &agg_daily, &daily, "aggregate-daily-content-metrics", events,
                                 CM_OUT_DAILY_CSV, job_name))
        return -1;
    if (o->outputCumulatedFiles &&
        add_sink(b, &agg_cumulated, &cumulated, "aggregate-cumulated-content-metrics", events,
                 CM_OUT_CUMULATED_JSONL, job_name))
        return -1;
    if (o->outputCumulatedKafka &&
        add_sink(b, &agg_cumulated, &cumulated, "aggregate-cumulated-content-metrics", events,
                 CM_OUT_CUMULATED_TOPIC, job_name))
        return -1;
    return 0;
}

const job_def content_job_def = {
    .name = "content-metrics",
    .kafka_group = "contentmetrics-logrequest",
    .help = "hourly, daily and cumulated per-content metrics (etl/*_content_metrics) from the "
            "LogRequest topic and the joined events",
    .new_opts = content_new_opts,
    .free_opts = content_free_opts,
    .check = content_check,
    .build = content_build,
    .one_task = 1,
    .second_input = content_second_input,
};
