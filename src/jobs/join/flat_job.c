/* flat-output (spec/flat-output.md): LogRequest -> split -> per-stream validation, dedupe and
 * filters -> CombineDeliveryLog -> the three inferred-reference joins -> redundant impressions ->
 * merge details -> filters -> joined impressions, joined actions and flat response insertions as
 * Avro tables under etl/ and record files per Kafka topic; every drop has an etl_side/ table.
 *
 *  view:  split -> validate-view -> keep-first-view -> filter-bot-view -> to-tiny-view ---------> J1 lhs
 *                                                                     \----------------------> merge-impression-details (full)
 *  DL:    split -> validate-delivery-log -> keep-first-delivery-log -> restructure-delivery-log
 *           -> filter-bot-delivery-log -> fix-delivery-log -> combine-delivery-log -> to-tiny-delivery-log -> J1 rhs
 *                                                                     \----------------------> merge-impression-details (full)
 *  imp:   split -> keep-first-impression -> validate-impression -> to-tiny-impression ------> J2 rhs
 *                                                              \--------------------------> merge-impression-details (full)
 *  act:   split -> keep-first-action -> validate-action -> to-tiny-action ----------------> J3 rhs (and debug_rhs_tiny_action)
 *                                                      \------------------------------> merge-action-details (full)
 *  join-view-insertion (J1) -> J2 lhs (and debug_partial_response_insertion)
 *  join-insertion-impression (J2) -> J3 lhs, reduce-redundant-impressions
 *  join-impression-action (J3) -> reduce-redundant-impressions -> split-tiny-impressions-actions
 *     (debug_tiny_event)    tiny impressions -> merge-impression-details -> joined impressions
 *                           tiny actions     -> merge-action-details (full: joined impressions) -> joined actions
 *  joined impressions -> filter-joined-impression -> sinks, FRI, latest impressions
 *  joined actions     -> filter-joined-action -> add-latest-impressions -> sinks; FRI
 *  pivot-flat-response-insertion -> filter-flat-response-insertion -> sinks
 * With the content join on (--contentApiRootUrl, or --enableDummyContentApiLoader), §9:
 *  to-tiny-action -> lookup-content-tiny-action -> J3 rhs
 *  join-view-insertion (J1) -> lookup-content-tiny-insertion -> J2 lhs
 *  both lookups' failures -> etl_side/content_api_error
 * Every sink strips user_id (§12.4) before writing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/avro_schema.h"
#include "formats/pb_util.h"
#include "formats/record_file.h"
#include "jobs/topic_sink.h"
#include "jobs/avro_table.h"
#include "jobs/common_ops.h"
#include "jobs/job.h"
#include "jobs/join/bot_filter.h"
#include "jobs/join/combine_delivery_log.h"
#include "jobs/join/content_lookup.h"
#include "jobs/join/error_rows.h"
#include "jobs/join/fix_delivery_log.h"
#include "jobs/join/flat_flags.h"
#include "jobs/join/flat_response_insertion.h"
#include "jobs/join/join_instances.h"
#include "jobs/join/join_records.h"
#include "jobs/join/joined_filters.h"
#include "jobs/join/latest_impressions.h"
#include "jobs/join/merge_details.h"
#include "jobs/join/redundant_impressions.h"
#include "jobs/join/strip_user_id.h"
#include "jobs/join/tiny.h"
#include "jobs/join/validate.h"
#include "jobs/map_op.h"
#include "jobs/restructure.h"
#include "jobs/split.h"
#include "runtime/log.h"
#include "schemas_embedded.h"

/* ---- options ---- */

static int flat_new_opts(void **opts, flag_table *table)
{
    flat_opts *o = calloc(1, sizeof *o);
    if (!o) return -1;
    *table = flat_flags_table(o);
    *opts = o;
    return 0;
}

static void flat_free_opts(void *opts)
{
    flat_flags_free(opts);
    free(opts);
}

/* The content join (§9) is on: real lookups with a root URL, pass-throughs with the dummy. */
static int content_join_on(const flat_opts *o)
{
    return o->enableDummyContentApiLoader || (o->contentApiRootUrl && *o->contentApiRootUrl);
}

static void content_config(const flat_opts *o, const char *lookup, content_lookup_config *cc)
{
    *cc = (content_lookup_config){
        .dummy = o->enableDummyContentApiLoader,
        .lookup = lookup,
        .root_url = o->contentApiRootUrl,
        .api_key = o->contentApiKey,
        .timeout_ms = o->contentApiTimeout,
        .max_attempts = o->contentApiMaxAttempts,
        .attempts_per_status = o->contentApiMaxAttemptsPerStatusCode.items,
        .n_attempts_per_status = o->contentApiMaxAttemptsPerStatusCode.n,
        .keys = (const char *const *)o->contentIdFieldKeys.items,
        .n_keys = o->contentIdFieldKeys.n,
        .cache_max_entries = o->contentCacheMaxSize,
        .cache_ttl_ms = o->contentCacheExpiration,
        .failure_ttl_ms = o->contentApiFailureCacheExpiration,
    };
}

static int flat_check(const job_common_opts *c, void *opts, char *err, size_t errlen)
{
    if (flat_flags_check(opts, err, errlen)) return -1;
    const flat_opts *o = opts;
    if (content_join_on(o) && !o->enableDummyContentApiLoader) {
        if (!o->contentApiKey || !*o->contentApiKey) {
            snprintf(err, errlen, "flag --contentApiRootUrl needs --contentApiKey%s",
                     o->contentApiSecretName && *o->contentApiSecretName
                         ? " (--contentApiSecretName: no secrets manager is supported here)"
                         : "");
            return -1;
        }
        content_lookup_config cc;
        content_config(o, "action", &cc);
        if (content_lookup_check(&cc, err, errlen)) return -1;
    }
    if (!c->logAvro && !c->logParquet && job_label_is_live(c->jobLabel)) {
        snprintf(err, errlen, "flat-output needs at least one output: --logAvro or --logParquet");
        return -1;
    }
    return 0;
}

/* ---- what a sink writes ---- */

/* How a table picks the partition timestamp of its records (§14.2). */
typedef enum {
    PART_IMPRESSION_EAT, /* joined_impression: impression.timing.event_api_timestamp */
    PART_ACTION_EAT,     /* joined_action: action.timing.event_api_timestamp */
    PART_REQUEST_EAT,    /* flat_response_insertion: request.timing.event_api_timestamp */
    PART_LOG_TIMESTAMP,  /* side tables: the record's log timestamp */
} part_rule;

typedef struct flat_sink {
    avro_table *table; /* Avro tables */
    part_rule rule;
    int kafka;         /* 1: a record file of the topic (protobuf value, the spec's key) */
    pb_arena *arena;   /* for user_id stripping */
    char err[256];
} flat_sink;

static int64_t eat_of(const Common__Timing *t)
{
    return t ? (int64_t)t->event_api_timestamp : 0;
}

static int64_t lt_of(const Common__Timing *t)
{
    return t ? (int64_t)t->log_timestamp : 0;
}

static int64_t partition_ts(const flat_sink *s, const rt_record *rec)
{
    switch (rec->type) {
    case REC_JOINED_EVENT: {
        const Event__JoinedEvent *e = rec->data;
        if (s->rule == PART_IMPRESSION_EAT) return e->impression ? eat_of(e->impression->timing) : 0;
        if (s->rule == PART_ACTION_EAT) return e->action ? eat_of(e->action->timing) : 0;
        return lt_of(e->timing);
    }
    case REC_FLAT_RESPONSE_INSERTION: {
        const Event__FlatResponseInsertion *f = rec->data;
        if (s->rule == PART_REQUEST_EAT) return f->request ? eat_of(f->request->timing) : 0;
        return lt_of(f->timing);
    }
    case REC_TINY_EVENT: return (int64_t)((const Event__TinyEvent *)rec->data)->log_timestamp;
    case REC_TINY_DELIVERY_LOG:
        return (int64_t)((const Event__TinyDeliveryLog *)rec->data)->log_timestamp;
    case REC_DROPPED_MERGE_DETAILS: {
        const Event__DroppedMergeDetailsEvent *d = rec->data;
        return d->tiny_event ? (int64_t)d->tiny_event->log_timestamp : 0;
    }
    }
    return 0;
}

/* The message to write: user_id stripped (§12.4) from everything logproc writes. */
static int stripped(flat_sink *s, const rt_record *rec, const ProtobufCMessage **m)
{
    ProtobufCAllocator *a = pb_arena_allocator(s->arena);
    switch (rec->type) {
    case REC_JOINED_EVENT:
        return strip_user_id_joined_event(rec->data, a, (const Event__JoinedEvent **)m);
    case REC_FLAT_RESPONSE_INSERTION:
        return strip_user_id_flat_response_insertion(rec->data, a,
                                                     (const Event__FlatResponseInsertion **)m);
    case REC_DROPPED_MERGE_DETAILS:
        return strip_user_id_dropped_merge_details(rec->data, a,
                                                   (const Event__DroppedMergeDetailsEvent **)m);
    default:
        *m = rec->data;
        return 0;
    }
}

/* The Kafka key of §14.1: 8-byte little-endian ids.platform_id, then ids.log_user_id. */
static size_t kafka_key(const rt_record *rec, uint8_t *buf, size_t cap)
{
    const Event__JoinedIdentifiers *ids = NULL;
    if (rec->type == REC_JOINED_EVENT) ids = ((const Event__JoinedEvent *)rec->data)->ids;
    else if (rec->type == REC_FLAT_RESPONSE_INSERTION)
        ids = ((const Event__FlatResponseInsertion *)rec->data)->ids;
    return recfile_make_key(ids ? ids->platform_id : 0, ids && ids->log_user_id ? ids->log_user_id : "",
                            buf, cap);
}

static int flat_encode(void *ctx, const rt_record *rec, rt_buf *out, int64_t *pts)
{
    flat_sink *s = ctx;
    int rc = -1;
    switch (rec->type) {
    case REC_VALIDATION_ERROR: return error_rows_encode_validation(NULL, rec, out, pts);
    case REC_MISMATCH_ERROR: return error_rows_encode_mismatch(NULL, rec, out, pts);
    case REC_CONTENT_API_ERROR: return content_lookup_encode_error(NULL, rec, out, pts);
    }
    *pts = s->kafka ? rec->ts : partition_ts(s, rec);
    const ProtobufCMessage *m;
    if (stripped(s, rec, &m)) goto done;
    if (!s->kafka) {
        rc = avro_table_encode_message(s->table, m, out);
        goto done;
    }
    uint8_t key[4096];
    size_t klen = kafka_key(rec, key, sizeof key);
    size_t vlen = protobuf_c_message_get_packed_size(m);
    if (klen > sizeof key || rt_buf_reserve(out, RECFILE_FRAME_OVERHEAD + klen + vlen)) goto done;
    /* pack the value where the frame will hold it, then frame it around itself */
    uint8_t *frame = out->data + out->len;
    uint8_t *value = frame + RECFILE_HEADER_BYTES + klen;
    protobuf_c_message_pack(m, value);
    out->len += recfile_frame_encode(frame, rec->ts, key, (uint32_t)klen, value, (uint32_t)vlen);
    rc = 0;
done:
    pb_arena_reset(s->arena, 1 << 20);
    return rc;
}

static void flat_sink_free(void *ctx)
{
    flat_sink *s = ctx;
    avro_table_free(s->table);
    pb_arena_free(s->arena);
    free(s);
}

/* ---- building ---- */

typedef struct build {
    rt_graph *g;
    const job_common_opts *c;
    const flat_opts *o;
    const char *run_id, *task;
    char *err;
    size_t errlen;
} build;

static int fail(build *b, const char *what)
{
    return job_build_fail(b->g, "flat-output", what, b->err, b->errlen);
}

static int connect(build *b, rt_op *from, int port, rt_op *to, int input)
{
    return rt_graph_connect(b->g, from, port, to, input) ? fail(b, "connecting operators") : 0;
}

/* A sink of desc's messages (or a hand-written schema) under <root>/<dir>/<name>, fed from
 * from:port. Side tables are etl_side/<name>; uid sink-s3-<dir>-<name>. */
static int add_table(build *b, rt_op *from, int port, const char *dir, const char *name,
                     const ProtobufCMessageDescriptor *desc, const char *schema, part_rule rule)
{
    char uid[RT_UID_MAX], path[4096], sub[256];
    snprintf(uid, sizeof uid, "sink-s3-%s-%s", dir, name);
    if (job_sink_disabled(b->c, uid) || (!b->c->logAvro && !b->c->logParquet)) return 0;
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    const char *parts[] = {sub};
    if (job_output_path(b->c, parts, 1, path, sizeof path)) return fail(b, "output path too long");
    flat_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->arena = pb_arena_new(64 << 10, 256 << 20))) {
        free(s);
        return fail(b, "out of memory");
    }
    s->rule = rule;
    if (avro_table_new(desc, schema, (size_t)b->c->maxRecordBytes, &s->table, b->err, b->errlen)) {
        flat_sink_free(s);
        return -1;
    }
    sink_op_config sc = {
        .dir = path, .run_id = b->run_id, .task = b->task,
        .format = avro_table_format(s->table),
        .encode = flat_encode, .encode_ctx = s, .encode_free = flat_sink_free,
        .max_record_bytes = 16 * (size_t)b->c->maxRecordBytes,
    };
    rt_op *op;
    if (sink_op_add(b->g, uid, &sc, &op)) {
        flat_sink_free(s);
        return fail(b, "adding a sink");
    }
    return connect(b, from, port, op, 0);
}

static int add_side(build *b, rt_op *from, int port, const char *name,
                    const ProtobufCMessageDescriptor *desc)
{
    return add_table(b, from, port, "etl_side", name, desc, NULL, PART_LOG_TIMESTAMP);
}

static int flat_topic_encode(void *ctx, const rt_record *rec, rt_buf *out)
{
    int64_t pts;
    return flat_encode(ctx, rec, out, &pts);
}

/* The Kafka topic (a record file of it under <root>/kafka/<topic>/ with file input). */
static int add_topic(build *b, rt_op *from, int port, const char *topic)
{
    char uid[RT_UID_MAX];
    snprintf(uid, sizeof uid, "sink-kafka-%s", topic);
    flat_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->arena = pb_arena_new(64 << 10, 256 << 20))) {
        free(s);
        return fail(b, "out of memory");
    }
    s->kafka = 1;
    topic_sink_config tc = {
        .topic = topic, .run_id = b->run_id, .task = b->task, .job = "flat-output",
        .encode = flat_topic_encode, .encode_ctx = s, .encode_free = flat_sink_free,
        .max_record_bytes = 16 * (size_t)b->c->maxRecordBytes,
    };
    rt_op *op;
    if (topic_sink_op_add(b->g, b->c, uid, &tc, &op, b->err, b->errlen)) {
        flat_sink_free(s);
        return -1;
    }
    return connect(b, from, port, op, 0);
}

/* metrics.[<label>.]<kafkaDataset>.<name>, or the override */
static void topic_name(const job_common_opts *c, const char *override, const char *name, char *buf,
                       size_t cap)
{
    if (override && *override) {
        snprintf(buf, cap, "%s", override);
        return;
    }
    char mid[256] = "";
    if (!job_label_is_live(c->jobLabel)) snprintf(mid, sizeof mid, "%s.", c->jobLabel);
    snprintf(buf, cap, "metrics.%s%s.%s", mid, c->kafkaDataset, name);
}

/* Connects from:port to the existing sink uid as one more input of its union (a no-op when the
 * sink was disabled). */
static int also(build *b, rt_op *from, int port, const char *uid)
{
    rt_op *sink = rt_graph_find(b->g, uid);
    return sink ? connect(b, from, port, sink, 0) : 0;
}

static int key_view(const rt_record *rec, uint8_t *buf, size_t cap)
{
    const Event__View *m = rec->data;
    return job_key_platform_id(m->platform_id, m->view_id, buf, cap);
}

static int key_delivery_log(const rt_record *rec, uint8_t *buf, size_t cap)
{
    const Delivery__DeliveryLog *m = rec->data;
    return job_key_platform_id(m->platform_id, m->request ? m->request->request_id : NULL, buf, cap);
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

static int add_keep_first(build *b, rt_op *from, int port, const char *uid, int64_t retention,
                          int (*key_fn)(const rt_record *, uint8_t *, size_t), rt_op **out)
{
    keep_first_config kc = {.retention_ms = retention, .key_fn = key_fn};
    if (keep_first_op_add(b->g, uid, &kc, out)) return fail(b, uid);
    return connect(b, from, port, *out, 0);
}

static int restructure_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    /* a header made only of dots never gets here: validation turned it into an error row */
    if (restructure_delivery_log(rec->data, map_op_allocator(op)) == RESTRUCTURE_ERR_NOMEM)
        return rt_op_fail(op, "out of memory restructuring a delivery log");
    return rt_emit(op, 0, rec);
}

/* Tiny impressions (no action id) to port 0, tiny actions to port 1. */
static int split_tiny_fn(rt_op *op, const rt_record *rec, void *ctx)
{
    const Event__TinyEvent *t = rec->data;
    return rt_emit(op, t->action_id && *t->action_id ? 1 : 0, rec);
}

static int flat_build(rt_graph *g, const job_common_opts *c, const void *opts, const char *run_id,
                      const char *task, rt_op **root, char *err, size_t errlen)
{
    const flat_opts *o = opts;
    build B = {g, c, o, run_id, task, err, errlen}, *b = &B;
    const ProtobufCMessageDescriptor *tiny = &event__tiny_event__descriptor;
    char topic[512], uid[RT_UID_MAX];
    job_log_request_topic(c, topic, sizeof topic);
    if ((size_t)snprintf(uid, sizeof uid, "%s%s", c->kafkaSourceUidPrefix, topic) >= sizeof uid) {
        snprintf(err, errlen, "source uid %s%s is over %d bytes", c->kafkaSourceUidPrefix, topic,
                 RT_UID_MAX);
        return -1;
    }

    /* source and split */
    decode_op_config dc = {.desc = &event__log_request__descriptor, .rec_type = REC_LOG_REQUEST,
                           .max_record_bytes = (size_t)c->maxRecordBytes,
                           .end_at_ts = c->endAtTimestamp};
    rt_op *decode, *split;
    if (decode_op_add(g, uid, &dc, &decode)) return fail(b, uid);
    *root = decode;
    rt_op *inv = NULL;
    if ((c->logAvro || c->logParquet) &&
        invalid_sink_op_add(g, c, "etl_side/invalid_record", run_id, task, &inv, err, errlen))
        return -1;
    if ((inv && connect(b, decode, 1, inv, 0)) || split_op_add(g, "split-log-request", &split) ||
        connect(b, decode, 0, split, 0))
        return -1;

    /* views */
    rt_op *vval, *vkeep, *vbot, *vtiny;
    if (validate_op_add(g, "validate-view", VALIDATE_VIEW, &vval) ||
        connect(b, split, 1 + SPLIT_VIEW, vval, 0) ||
        add_keep_first(b, vval, 0, "keep-first-view", o->keepFirstViewDuration, key_view, &vkeep) ||
        bot_filter_op_add(g, "filter-bot-view", BOT_FILTER_VIEW, &vbot) ||
        connect(b, vkeep, 0, vbot, 0))
        return fail(b, "views");
    tiny_op_config tvc = {.input = TINY_VIEW,
                          .content_id_keys = (const char *const *)o->contentIdFieldKeys.items,
                          .n_content_id_keys = o->contentIdFieldKeys.n};
    if (tiny_op_add(g, "to-tiny-view", &tvc, &vtiny) || connect(b, vbot, 0, vtiny, 0) ||
        add_side(b, vbot, 1, "dropped_view_is_bot", tiny))
        return fail(b, "views");

    /* delivery logs */
    rt_op *dval, *dkeep, *drs, *dbot, *dfix, *dcomb, *dtiny;
    combine_config cc = {.window_ms = o->combineDeliveryLogWindow};
    tiny_op_config tdc = tvc;
    tdc.input = TINY_COMBINED_DELIVERY_LOG;
    if (validate_op_add(g, "validate-delivery-log", VALIDATE_DELIVERY_LOG, &dval) ||
        connect(b, split, 1 + SPLIT_DELIVERY_LOG, dval, 0) ||
        add_keep_first(b, dval, 0, "keep-first-delivery-log", o->keepFirstDeliveryLogDuration,
                       key_delivery_log, &dkeep) ||
        map_op_add(g, "restructure-delivery-log", 1, restructure_fn, NULL, &drs) ||
        connect(b, dkeep, 0, drs, 0) ||
        bot_filter_op_add(g, "filter-bot-delivery-log", BOT_FILTER_DELIVERY_LOG, &dbot) ||
        connect(b, drs, 0, dbot, 0) || fix_delivery_log_op_add(g, "fix-delivery-log", &dfix) ||
        connect(b, dbot, 0, dfix, 0) ||
        combine_delivery_log_op_add(g, "combine-delivery-log", &cc, &dcomb) ||
        connect(b, dfix, 0, dcomb, 0) || tiny_op_add(g, "to-tiny-delivery-log", &tdc, &dtiny) ||
        connect(b, dcomb, 0, dtiny, 0) ||
        add_side(b, dbot, 1, "dropped_delivery_log_should_not_join", tiny) ||
        add_side(b, dbot, 2, "dropped_delivery_log_is_bot", tiny) ||
        add_side(b, dcomb, 1, "dropped_delivery_log_unknown_execution_server", tiny))
        return fail(b, "delivery logs");

    /* impressions and actions: dedupe first (§2.7), then validation */
    rt_op *ikeep, *ival, *itiny, *akeep, *aval, *atiny;
    tiny_op_config tic = tvc, tac = tvc;
    tic.input = TINY_IMPRESSION;
    tac.input = TINY_ACTION;
    if (add_keep_first(b, split, 1 + SPLIT_IMPRESSION, "keep-first-impression",
                       o->keepFirstImpressionDuration, key_impression, &ikeep) ||
        validate_op_add(g, "validate-impression", VALIDATE_IMPRESSION, &ival) ||
        connect(b, ikeep, 0, ival, 0) || tiny_op_add(g, "to-tiny-impression", &tic, &itiny) ||
        connect(b, ival, 0, itiny, 0) ||
        add_keep_first(b, split, 1 + SPLIT_ACTION, "keep-first-action", o->keepFirstActionDuration,
                       key_action, &akeep) ||
        validate_op_add(g, "validate-action", VALIDATE_ACTION, &aval) ||
        connect(b, akeep, 0, aval, 0) || tiny_op_add(g, "to-tiny-action", &tac, &atiny) ||
        connect(b, aval, 0, atiny, 0) || add_side(b, atiny, 0, "debug_rhs_tiny_action", tiny))
        return fail(b, "impressions and actions");

    /* validation errors of all four streams: one table (several connections into one input) */
    if (add_table(b, vval, 1, "etl_side", "validation_error", NULL, "validation_error",
                  PART_LOG_TIMESTAMP) ||
        also(b, dval, 1, "sink-s3-etl_side-validation_error") ||
        also(b, ival, 1, "sink-s3-etl_side-validation_error") ||
        also(b, aval, 1, "sink-s3-etl_side-validation_error"))
        return -1;

    /* the three joins */
    join_instances_params jp;
    join_instances_params_default(&jp);
    jp.view_insertion_join_min_ms = o->viewInsertionJoinMin;
    jp.view_insertion_join_max_ms = o->viewInsertionJoinMax;
    jp.insertion_impression_join_min_ms = o->insertionImpressionJoinMin;
    jp.insertion_impression_join_max_ms = o->insertionImpressionJoinMax;
    jp.impression_action_join_min_ms = o->impressionActionJoinMin;
    jp.impression_action_join_max_ms = o->impressionActionJoinMax;
    jp.id_join_duration_multiplier = o->idJoinDurationMultiplier;
    jp.skip_view_join = o->skipViewJoin;
    jp.check_lateness = o->checkLateness;
    jp.content_id_field_keys = (const char *const *)o->contentIdFieldKeys.items;
    jp.n_content_id_field_keys = o->contentIdFieldKeys.n;
    rt_op *j1, *j2, *j3;
    if (join_view_insertion_op_add(g, "join-view-insertion", &jp, &j1) ||
        connect(b, vtiny, 0, j1, INFERRED_JOIN_IN_LHS) ||
        connect(b, dtiny, 0, j1, INFERRED_JOIN_IN_RHS))
        return fail(b, "joins");
    /* the content join (§9): tiny insertions into J2 and tiny actions into J3, never impressions */
    rt_op *j2_lhs = j1, *j3_rhs = atiny;
    int j2_lhs_port = INFERRED_JOIN_PORT_OUT;
    if (content_join_on(o)) {
        content_lookup_config lca, lci;
        content_config(o, "action", &lca);
        content_config(o, "insertion", &lci);
        if (content_lookup_op_add(g, "lookup-content-tiny-action", &lca, &j3_rhs, err, errlen) ||
            content_lookup_op_add(g, "lookup-content-tiny-insertion", &lci, &j2_lhs, err, errlen))
            return -1;
        j2_lhs_port = 0;
        if (connect(b, atiny, 0, j3_rhs, 0) || connect(b, j1, INFERRED_JOIN_PORT_OUT, j2_lhs, 0) ||
            add_table(b, j3_rhs, 1, "etl_side", "content_api_error", NULL,
                      CONTENT_LOOKUP_ERROR_SCHEMA, PART_LOG_TIMESTAMP) ||
            also(b, j2_lhs, 1, "sink-s3-etl_side-content_api_error"))
            return -1;
    }
    if (join_insertion_impression_op_add(g, "join-insertion-impression", &jp, &j2) ||
        connect(b, j2_lhs, j2_lhs_port, j2, INFERRED_JOIN_IN_LHS) ||
        connect(b, itiny, 0, j2, INFERRED_JOIN_IN_RHS) ||
        join_impression_action_op_add(g, "join-impression-action", &jp, &j3) ||
        connect(b, j2, INFERRED_JOIN_PORT_OUT, j3, INFERRED_JOIN_IN_LHS) ||
        connect(b, j3_rhs, 0, j3, INFERRED_JOIN_IN_RHS) ||
        add_side(b, j1, INFERRED_JOIN_PORT_OUT, "debug_partial_response_insertion", tiny))
        return fail(b, "joins");
    static const struct {
        int port;
        const char *name[3];
    } join_sides[] = {
        {INFERRED_JOIN_PORT_LATE, {"late_view_responseinsertions", "late_insertion_impressions",
                                   "late_impression_actions"}},
        {INFERRED_JOIN_PORT_DROPPED, {"dropped_view_responseinsertions",
                                      "dropped_insertion_impressions", "dropped_impression_actions"}},
        {INFERRED_JOIN_PORT_RHS_WITHOUT_KEY, {"dropped_delivery_log_without_key",
                                              "dropped_impression_without_key",
                                              "dropped_action_without_key"}},
        {INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING, {"dropped_delivery_log_duplicate_pending",
                                                    "dropped_impression_duplicate_pending",
                                                    "dropped_action_duplicate_pending"}},
        {INFERRED_JOIN_PORT_LHS_ZERO_LT, {"dropped_view_zero_log_timestamp",
                                          "dropped_insertion_zero_log_timestamp",
                                          "dropped_impression_zero_log_timestamp"}},
        {INFERRED_JOIN_PORT_RHS_ZERO_LT, {"dropped_delivery_log_zero_log_timestamp",
                                          "dropped_impression_zero_log_timestamp",
                                          "dropped_action_zero_log_timestamp"}},
    };
    rt_op *joins[3] = {j1, j2, j3};
    for (size_t s = 0; s < sizeof join_sides / sizeof join_sides[0]; s++)
        for (int j = 0; j < 3; j++) {
            /* J1's child is a TinyDeliveryLog: its dropped/keyless/zero-time children are those */
            bool dl = j == 0 && join_sides[s].port != INFERRED_JOIN_PORT_LATE &&
                      join_sides[s].port != INFERRED_JOIN_PORT_LHS_ZERO_LT;
            char sideuid[RT_UID_MAX];
            snprintf(sideuid, sizeof sideuid, "sink-s3-etl_side-%s", join_sides[s].name[j]);
            if (rt_graph_find(g, sideuid)) {
                /* two joins feed one table (impression zero times) */
                if (also(b, joins[j], join_sides[s].port, sideuid)) return -1;
                continue;
            }
            if (add_side(b, joins[j], join_sides[s].port, join_sides[s].name[j],
                         dl ? &event__tiny_delivery_log__descriptor : tiny))
                return -1;
        }
    /* mismatch errors of the joins and the merges: one table */
    if (o->writeMismatchError &&
        (add_table(b, j1, INFERRED_JOIN_PORT_MISMATCH, "etl_side", "mismatch_error", NULL,
                   "mismatch_error", PART_LOG_TIMESTAMP) ||
         also(b, j2, INFERRED_JOIN_PORT_MISMATCH, "sink-s3-etl_side-mismatch_error") ||
         also(b, j3, INFERRED_JOIN_PORT_MISMATCH, "sink-s3-etl_side-mismatch_error")))
        return -1;

    /* redundant impressions, then merge details */
    redundant_impressions_config rc = {.ttl_ms = llabs(o->impressionActionJoinMin)};
    merge_details_flags mf = {
        .view_insertion_join_min = o->viewInsertionJoinMin,
        .view_insertion_join_max = o->viewInsertionJoinMax,
        .insertion_impression_join_min = o->insertionImpressionJoinMin,
        .insertion_impression_join_max = o->insertionImpressionJoinMax,
        .impression_action_join_min = o->impressionActionJoinMin,
        .impression_action_join_max = o->impressionActionJoinMax,
        .combine_delivery_log_window = o->combineDeliveryLogWindow,
        .merge_details_missing_output_delay = o->mergeDetailsMissingOutputDelay,
        .merge_details_cleanup_buffer = o->mergeDetailsCleanupBuffer,
        .merge_details_cleanup_period = o->mergeDetailsCleanupPeriod,
        .batch_cleanup_all_before = o->batchCleanupAllMergeDetailsTimersBeforeTimestamp,
        .skip_view_join = o->skipViewJoin,
    };
    merge_impression_details_config mic;
    merge_action_details_config mac;
    merge_details_configs_from_flags(&mf, &mic, &mac);
    rt_op *red, *tsplit, *mimp, *mact;
    if (redundant_impressions_op_add(g, "reduce-redundant-impressions", &rc, &red) ||
        connect(b, j2, INFERRED_JOIN_PORT_OUT, red, 0) ||
        connect(b, j3, INFERRED_JOIN_PORT_OUT, red, 0) ||
        add_side(b, red, 0, "debug_tiny_event", tiny) ||
        add_side(b, red, 1, "dropped_redundant_impression", tiny) ||
        map_op_add(g, "split-tiny-impressions-actions", 2, split_tiny_fn, NULL, &tsplit) ||
        connect(b, red, 0, tsplit, 0) ||
        merge_impression_details_op_add(g, "merge-impression-details", &mic, &mimp) ||
        connect(b, vbot, 0, mimp, 0) || connect(b, dcomb, 0, mimp, 0) ||
        connect(b, ival, 0, mimp, 0) || connect(b, tsplit, 0, mimp, 1) ||
        merge_action_details_op_add(g, "merge-action-details", &mac, &mact) ||
        connect(b, mimp, 0, mact, 0) || connect(b, aval, 0, mact, 0) ||
        connect(b, tsplit, 1, mact, 1) ||
        (o->writeMismatchError && (also(b, mimp, 1, "sink-s3-etl_side-mismatch_error") ||
                                   also(b, mact, 1, "sink-s3-etl_side-mismatch_error"))) ||
        add_side(b, mimp, 2, "dropped_merge_impression_details",
                 &event__dropped_merge_details_event__descriptor) ||
        add_side(b, mact, 2, "dropped_merge_action_details",
                 &event__dropped_merge_details_event__descriptor) ||
        add_side(b, mimp, 3, "dropped_merge_impression_details_without_log_timestamp", tiny) ||
        add_side(b, mact, 3, "dropped_merge_action_details_without_log_timestamp", tiny))
        return fail(b, "merge details");

    /* filters */
    joined_filter_config fc = {.non_buyer_hashes = o->non_buyer_hashes,
                               .n_non_buyer_hashes = o->n_non_buyer_hashes};
    rt_op *fimp, *fact, *ffri, *fri, *latest = NULL;
    const ProtobufCMessageDescriptor *je = &event__joined_event__descriptor,
                                     *fr = &event__flat_response_insertion__descriptor;
    fc.kind = JOINED_FILTER_IMPRESSION;
    if (joined_filter_op_add(g, "filter-joined-impression", &fc, &fimp) ||
        connect(b, mimp, 0, fimp, 0) ||
        add_side(b, fimp, 1, "dropped_ignore_usage_joined_impression", je) ||
        add_side(b, fimp, 2, "dropped_non_buyer_joined_impression", je))
        return fail(b, "filters");
    fc.kind = JOINED_FILTER_ACTION;
    if (joined_filter_op_add(g, "filter-joined-action", &fc, &fact) ||
        connect(b, mact, 0, fact, 0) ||
        add_side(b, fact, 1, "dropped_ignore_usage_joined_action", je) ||
        add_side(b, fact, 2, "dropped_non_buyer_joined_action", je))
        return fail(b, "filters");

    /* flat response insertions */
    flat_response_insertion_config frc = {.gap_ms = o->flatResponseInsertionGapDuration};
    fc.kind = JOINED_FILTER_FLAT_RESPONSE_INSERTION;
    if (flat_response_insertion_op_add(g, "pivot-flat-response-insertion", &frc, &fri) ||
        connect(b, fimp, 0, fri, 0) || connect(b, fact, 0, fri, 1) ||
        add_side(b, fri, 1, "dropped_flat_response_insertion_late", je) ||
        joined_filter_op_add(g, "filter-flat-response-insertion", &fc, &ffri) ||
        connect(b, fri, 0, ffri, 0) ||
        add_side(b, ffri, 1, "dropped_ignore_usage_flat_response_insertion", fr) ||
        add_side(b, ffri, 2, "dropped_non_buyer_flat_response_insertion", fr))
        return fail(b, "flat response insertions");

    /* latest impressions on actions */
    rt_op *actions_out = fact;
    if (o->addLatestImpressions) {
        latest_impressions_config lc = {.out_of_orderness_ms = o->extraAddLatestImpressionOutOfOrderness,
                                        .max_output = 25, .max_state = 30};
        if (latest_impressions_op_add(g, "add-latest-impressions", &lc, &latest) ||
            connect(b, fact, 0, latest, 0) || connect(b, fimp, 0, latest, 1))
            return fail(b, "latest impressions");
        actions_out = latest;
    }

    /* outputs */
    if (add_table(b, fimp, 0, "etl", "joined_impression", je, NULL, PART_IMPRESSION_EAT) ||
        add_table(b, actions_out, 0, "etl", "joined_action", je, NULL, PART_ACTION_EAT) ||
        add_table(b, ffri, 0, "etl", "flat_response_insertion", fr, NULL, PART_REQUEST_EAT))
        return -1;
    char t[160];
    if (o->writeJoinedEventsToKafka) {
        /* joined impressions and joined actions share the topic */
        topic_name(c, o->joinedEventTopic, "joined-event", t, sizeof t);
        snprintf(uid, sizeof uid, "sink-kafka-%s", t);
        if (add_topic(b, fimp, 0, t) || also(b, actions_out, 0, uid)) return -1;
    }
    if (o->writeFlatResponseInsertionsToKafka) {
        topic_name(c, o->flatResponseInsertionTopic, "flat-response-insertion", t, sizeof t);
        if (add_topic(b, ffri, 0, t)) return -1;
    }
    return 0;
}

const job_def flat_job_def = {
    .name = "flat-output",
    .kafka_group = "joinuser",
    .help = "join views, delivery logs, impressions and actions into joined events (etl/, etl_side/)",
    .new_opts = flat_new_opts,
    .free_opts = flat_free_opts,
    .check = flat_check,
    .build = flat_build,
};
