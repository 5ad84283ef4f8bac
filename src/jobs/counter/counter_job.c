/* counter (spec/other-jobs.md §B): joined events -> per-table sliding counts and last-time
 * features -> Redis commands.
 *
 *   source-kafka-<joined-event topic> (decode JoinedEvent) --invalid-->
 * sink-s3-counter-side-invalid-record
 *     -> assign-timestamp-joined-event   (fields of §B.3; ts = getLogTimestamp; watermark)   =
 * stream L
 *          -> count-hourly-event-<t>, count-daily-event-<t>   for platform-device, content-device,
 *                                                            log-user, [query, content-query]
 *          -> last-time-log-user-event, [last-time-log-user-query]
 *          -> count-top-query -> gate-top-query (input 1)
 *          -> join-log-user-user (input 0)                                          -> stream U
 *   source-kafka-<log-user-user topic> (decode LogUserUser) -> join-log-user-user (input 1)
 *     stream U -> count-hourly-event-user, count-daily-event-user, last-time-user-event,
 *                 [last-time-user-query]
 *     query tables' results -> gate-top-query (input 0) --\
 *     other results ---------------------------------------> to-redis-commands
 *          -> [buffer-counter-backfill] -> filter-counter-output -> sink-redis-counter
 *
 * The LogUserUser root reads the --logUserUserSource record files (then the job runs as one task,
 * each file with its own watermark); without them stream U's join finds no user and the user
 * tables stay empty (their metadata is written). */
#include "jobs/counter/counter_job.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/text.h"
#include "jobs/avro_table.h"
#include "jobs/common_ops.h"
#include "jobs/counter/counter_commands.h"
#include "jobs/counter/counter_fields.h"
#include "jobs/counter/counter_records.h"
#include "jobs/counter/counter_tables.h"
#include "jobs/counter/last_time_count.h"
#include "jobs/counter/sliding_counter.h"
#include "jobs/counter/top_query.h"
#include "jobs/counter/ua_family.h"
#include "jobs/counter/user_stream.h"
#include "logproc/join.pb-c.h"
#include "runtime/log.h"

enum { REC_COUNTER_JOINED_EVENT = 299 };

/* ---- flags (§B.13, plus the Kafka flags the counter reads and logproc's Redis sink) ---- */

typedef struct counter_opts {
    char *overrideInputLabel;
    int64_t counterOutputStartTimestamp;
    int64_t counterOutputStopTimestamp;
    int64_t counterBackfillBuffer;
    int64_t globalEventDeviceHourlyEmitWindow;
    int64_t contentEventDeviceHourlyEmitWindow;
    int64_t queryEventHourlyEmitWindow;
    int64_t logUserEventHourlyEmitWindow;
    int64_t userEventHourlyEmitWindow;
    int64_t logUserLastTimeAndCountTtl;
    int64_t userLastTimeAndCountTtl;
    int64_t searchQueryLengthLimit;
    int64_t searchQueryWindowSize;
    int64_t searchQueryWindowSlide;
    int64_t searchQueryWindowMinThreshold;
    bool queryCounts;
    bool lastUserQueryEvents;
    bool hourlyQuery;
    bool wipe;
    char *shardedEndpoints;
    char *unshardedEndpoint;
    /* Kafka */
    char *joinedEventTopic;
    char *logUserUserTopic;
    int64_t maxJoinedEventOutOfOrderness;
    int64_t maxLogUserUserOutOfOrderness;
    int64_t maxFlatResponseInsertionOutOfOrderness;
    char *maxPollJoinedEvent;
    char *maxPollFlatResponseInsertion;
    char *maxPollLogUserUser;
    char *joinedUserEventTopic;
    char *flatUserResponseInsertionTopic;
    char *flatResponseInsertionTopic;
    /* logproc's Redis sink */
    int64_t redisBatchCommands;
    int64_t redisBufferBytes;
    int64_t redisTimeout;
    int64_t redisRetryMaxBackoff;
    int64_t redisRetryTimeout;
    int64_t redisFlushInterval;
    bool counterFaithfulZeroCounts;
    flag_list logUserUserSource;
    /* set by check */
    int64_t start_wall_ms;
    char luu_uid[RT_UID_MAX];
} counter_opts;

#define C(f) offsetof(counter_opts, f)
static const flag_def counter_defs[] = {
    {"overrideInputLabel", NULL, FLAG_STRING, "", C(overrideInputLabel),
     "label of the input topics instead of --jobLabel", 0},
    {"counterOutputStartTimestamp", NULL, FLAG_INT, NULL, C(counterOutputStartTimestamp),
     "drop commands whose record time is before this (ms; 0 for a full backfill)", FLAG_REQUIRED},
    {"counterOutputStopTimestamp", NULL, FLAG_INT, "-1", C(counterOutputStopTimestamp),
     "drop commands whose record time is after this (ms); negative: no end", 0},
    {"counterBackfillBuffer", NULL, FLAG_DURATION, "PT0S", C(counterBackfillBuffer),
     "keep only the last command per key and field for this long for records before the job's "
     "start; PT0S: off",
     0},
    {"globalEventDeviceHourlyEmitWindow", NULL, FLAG_DURATION, "PT15M",
     C(globalEventDeviceHourlyEmitWindow), "hourly emit window of platform-device", 0},
    {"contentEventDeviceHourlyEmitWindow", NULL, FLAG_DURATION, "PT15M",
     C(contentEventDeviceHourlyEmitWindow), "hourly emit window of content-device", 0},
    {"queryEventHourlyEmitWindow", NULL, FLAG_DURATION, "PT15M", C(queryEventHourlyEmitWindow),
     "hourly emit window of query and content-query", 0},
    {"logUserEventHourlyEmitWindow", NULL, FLAG_DURATION, "PT15M", C(logUserEventHourlyEmitWindow),
     "hourly emit window of log-user", 0},
    {"userEventHourlyEmitWindow", NULL, FLAG_DURATION, "PT15M", C(userEventHourlyEmitWindow),
     "hourly emit window of user", 0},
    {"logUserLastTimeAndCountTtl", NULL, FLAG_DURATION, "P90D", C(logUserLastTimeAndCountTtl),
     "days counted by the last-time log-user tables (whole days)", 0},
    {"userLastTimeAndCountTtl", NULL, FLAG_DURATION, "P90D", C(userLastTimeAndCountTtl),
     "days counted by the last-time user tables (whole days)", 0},
    {"searchQueryLengthLimit", NULL, FLAG_INT, "100", C(searchQueryLengthLimit),
     "longest query (UTF-16 units) that can become a top query", 0},
    {"searchQueryWindowSize", NULL, FLAG_DURATION, "P14D", C(searchQueryWindowSize),
     "top-query sliding window size", 0},
    {"searchQueryWindowSlide", NULL, FLAG_DURATION, "P3D", C(searchQueryWindowSlide),
     "top-query sliding window slide", 0},
    {"searchQueryWindowMinThreshold", NULL, FLAG_INT, "1000", C(searchQueryWindowMinThreshold),
     "events in one window that make a query a top query", 0},
    {"queryCounts", NULL, FLAG_BOOL, "true", C(queryCounts),
     "count the query and content-query tables", 0},
    {"lastUserQueryEvents", NULL, FLAG_BOOL, "true", C(lastUserQueryEvents),
     "count the last-time query tables", 0},
    {"hourlyQuery", NULL, FLAG_BOOL, "true", C(hourlyQuery), "hourly counts for the query tables",
     0},
    {"wipe", NULL, FLAG_BOOL, NULL, C(wipe), "FLUSHDB before writing the metadata", 0},
    {"shardedEndpoints", NULL, FLAG_STRING, "", C(shardedEndpoints),
     "Redis Cluster URIs (not supported: rejected)", 0},
    {"unshardedEndpoint", "counterService,redisUrl", FLAG_STRING, "", C(unshardedEndpoint),
     "Redis URI redis://host:port/db; empty: write a RESP file under the output root", 0},
    {"joinedEventTopic", NULL, FLAG_STRING, "", C(joinedEventTopic),
     "joined-event topic instead of metrics[.<input label>].<kafkaDataset>.joined-event", 0},
    {"logUserUserTopic", NULL, FLAG_STRING, "", C(logUserUserTopic),
     "LogUserUser topic instead of metrics[.<input label>].<kafkaDataset>.log-user-user-event "
     "(names its source operator)",
     0},
    {"logUserUserSource", NULL, FLAG_LIST, NULL, C(logUserUserSource),
     "record file of LogUserUser Avro datums, or raw-output's raw/log-user-user tables "
     "(repeatable): the user tables' input; without it "
     "they get no counts",
     0},
    {"maxJoinedEventOutOfOrderness", NULL, FLAG_DURATION, "PT1S", C(maxJoinedEventOutOfOrderness),
     "bounded out-of-orderness of the joined-event watermark (over getLogTimestamp)", 0},
    {"maxLogUserUserOutOfOrderness", NULL, FLAG_DURATION, "PT1S", C(maxLogUserUserOutOfOrderness),
     "bounded out-of-orderness of the LogUserUser watermark (over eventApiTimestamp)", 0},
    {"maxFlatResponseInsertionOutOfOrderness", NULL, FLAG_DURATION, "PT1S",
     C(maxFlatResponseInsertionOutOfOrderness), "unused by this job", FLAG_IGNORED},
    {"maxPollJoinedEvent", NULL, FLAG_STRING, "", C(maxPollJoinedEvent), "unused by this job",
     FLAG_IGNORED},
    {"maxPollFlatResponseInsertion", NULL, FLAG_STRING, "", C(maxPollFlatResponseInsertion),
     "unused by this job", FLAG_IGNORED},
    {"maxPollLogUserUser", NULL, FLAG_STRING, "", C(maxPollLogUserUser), "unused by this job",
     FLAG_IGNORED},
    {"joinedUserEventTopic", NULL, FLAG_STRING, "", C(joinedUserEventTopic), "unused by this job",
     FLAG_IGNORED},
    {"flatUserResponseInsertionTopic", NULL, FLAG_STRING, "", C(flatUserResponseInsertionTopic),
     "unused by this job", FLAG_IGNORED},
    {"flatResponseInsertionTopic", NULL, FLAG_STRING, "", C(flatResponseInsertionTopic),
     "unused by this job", FLAG_IGNORED},
    {"redisBatchCommands", NULL, FLAG_INT, "1000", C(redisBatchCommands),
     "commands per pipelined round trip to Redis", 0},
    {"redisBufferBytes", NULL, FLAG_INT, "67108864", C(redisBufferBytes),
     "hard limit of Redis command bytes buffered while unacknowledged", 0},
    {"redisTimeout", NULL, FLAG_DURATION, "PT10S", C(redisTimeout),
     "Redis connect, read and write timeout", 0},
    {"redisRetryMaxBackoff", NULL, FLAG_DURATION, "PT5S", C(redisRetryMaxBackoff),
     "longest wait between Redis reconnection attempts (the task blocks meanwhile)", 0},
    {"redisRetryTimeout", NULL, FLAG_DURATION, "PT10M", C(redisRetryTimeout),
     "fail the job after Redis has been unreachable this long; PT0S: retry forever", 0},
    {"redisFlushInterval", NULL, FLAG_DURATION, "PT0.1S", C(redisFlushInterval),
     "longest a partial batch of commands waits before it is sent", 0},
    {"counterFaithfulZeroCounts", NULL, FLAG_BOOL, NULL, C(counterFaithfulZeroCounts),
     "write a count that decays to 0 as the reference does (no HDEL; PERSIST the key)", 0},
};

static int counter_new_opts(void **opts, flag_table *table)
{
    counter_opts *o = calloc(1, sizeof *o);
    if (!o) return -1;
    flag_table t = FLAG_TABLE("counter", counter_defs, o);
    *table = t;
    *opts = o;
    return 0;
}

static void counter_free_opts(void *opts)
{
    free(opts);
}

static void input_topic(const char *job_label, const char *override_input_label,
                        const char *kafka_dataset, const char *topic_override, const char *name,
                        char *buf, size_t cap);

static int whole_days(const char *flag, int64_t ms, int *days, char *err, size_t errlen)
{
    if (ms <= 0 || ms % 86400000 || ms / 86400000 > 3650) {
        snprintf(err, errlen, "flag --%s=%" PRId64 "ms: want whole days from P1D to P3650D", flag,
                 ms);
        return -1;
    }
    *days = (int)(ms / 86400000);
    return 0;
}

static int counter_check(const job_common_opts *c, void *opts, char *err, size_t errlen)
{
    counter_opts *o = opts;
    int days;
    if (o->shardedEndpoints[0]) {
        snprintf(err, errlen,
                 "flag --shardedEndpoints=%s: Redis Cluster is not supported yet; "
                 "give a standalone --unshardedEndpoint (--counterService)",
                 o->shardedEndpoints);
        return -1;
    }
    if (o->unshardedEndpoint[0]) {
        char host[256], pass[256];
        int port, db;
        if (redis_sink_parse_url(o->unshardedEndpoint, host, sizeof host, &port, &db, pass,
                                 sizeof pass, err, errlen))
            return -1;
    }
    struct {
        const char *name;
        int64_t v;
    } windows[] = {
        {"globalEventDeviceHourlyEmitWindow", o->globalEventDeviceHourlyEmitWindow},
        {"contentEventDeviceHourlyEmitWindow", o->contentEventDeviceHourlyEmitWindow},
        {"queryEventHourlyEmitWindow", o->queryEventHourlyEmitWindow},
        {"logUserEventHourlyEmitWindow", o->logUserEventHourlyEmitWindow},
        {"userEventHourlyEmitWindow", o->userEventHourlyEmitWindow},
    };
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++)
        if (sliding_counter_check_emit_window(windows[i].name, windows[i].v, err, errlen))
            return -1;
    if (whole_days("logUserLastTimeAndCountTtl", o->logUserLastTimeAndCountTtl, &days, err,
                   errlen) ||
        whole_days("userLastTimeAndCountTtl", o->userLastTimeAndCountTtl, &days, err, errlen))
        return -1;
    top_query_config tq = {o->searchQueryWindowSize, o->searchQueryWindowSlide,
                           o->searchQueryWindowMinThreshold, o->searchQueryLengthLimit};
    if (top_query_check(&tq, err, errlen)) return -1;
    if (o->counterBackfillBuffer < 0) {
        snprintf(err, errlen, "flag --counterBackfillBuffer: must not be negative");
        return -1;
    }
    if (o->redisBatchCommands < 1 || o->redisBatchCommands > 1000000) {
        snprintf(err, errlen, "flag --redisBatchCommands=%" PRId64 ": must be 1..1000000",
                 o->redisBatchCommands);
        return -1;
    }
    if (o->redisBufferBytes < 65536) {
        snprintf(err, errlen, "flag --redisBufferBytes=%" PRId64 ": must be at least 65536",
                 o->redisBufferBytes);
        return -1;
    }
    if (o->redisTimeout <= 0 || o->redisRetryMaxBackoff <= 0 || o->redisRetryTimeout < 0 ||
        o->redisFlushInterval < 0) {
        snprintf(err, errlen,
                 "flags --redisTimeout and --redisRetryMaxBackoff must be positive, "
                 "--redisRetryTimeout and --redisFlushInterval not negative");
        return -1;
    }
    char topic[512];
    input_topic(c->jobLabel, o->overrideInputLabel, c->kafkaDataset, o->logUserUserTopic,
                "log-user-user-event", topic, sizeof topic);
    if ((size_t)snprintf(o->luu_uid, sizeof o->luu_uid, "%s%s", c->kafkaSourceUidPrefix, topic) >=
        sizeof o->luu_uid) {
        snprintf(err, errlen, "source uid %s%s is over %d bytes", c->kafkaSourceUidPrefix, topic,
                 RT_UID_MAX);
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    o->start_wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return 0;
}

/* The LogUserUser record's time is its eventApiTimestamp (§B.1). */
static int64_t luu_timestamp(const uint8_t *value, size_t len, int64_t record_ts)
{
    user_stream_luu l;
    return user_stream_decode_luu(value, len, &l) ? record_ts : l.event_api_timestamp;
}

static int counter_second_input(const job_common_opts *c, const void *opts, job_input *in)
{
    const counter_opts *o = opts;
    if (!o->logUserUserSource.n) return 0;
    *in = (job_input){
        .flag = "logUserUserSource",
        .files = &o->logUserUserSource,
        .root_uid = o->luu_uid,
        .max_out_of_orderness = o->maxLogUserUserOutOfOrderness,
        .assign_ts = luu_timestamp,
    };
    return 1;
}

static void input_topic(const char *job_label, const char *override_input_label,
                        const char *kafka_dataset, const char *topic_override, const char *name,
                        char *buf, size_t cap)
{
    if (topic_override && *topic_override) {
        snprintf(buf, cap, "%s", topic_override);
        return;
    }
    const char *label =
        override_input_label && *override_input_label ? override_input_label : job_label;
    if (job_label_is_live(label))
        snprintf(buf, cap, "metrics.%s.%s", kafka_dataset, name);
    else
        snprintf(buf, cap, "metrics.%s.%s.%s", label, kafka_dataset, name);
}

void counter_input_topic(const char *job_label, const char *override_input_label,
                         const char *kafka_dataset, const char *topic_override, char *buf,
                         size_t cap)
{
    input_topic(job_label, override_input_label, kafka_dataset, topic_override, "joined-event", buf,
                cap);
}

/* ---- assign-timestamp-joined-event ----
 * The reference stamps each joined event with getLogTimestamp(event) and builds the watermark
 * over that, with --maxJoinedEventOutOfOrderness (§B.1). Records are re-stamped here; the
 * watermark the counting operators see is the lower of the source's (over the record file's
 * timestamps) and max(getLogTimestamp) - out-of-orderness - 1, applied as a hold-back. */

typedef struct assign_ts {
    int64_t out_of_orderness;
    int64_t max_log_ts;
    ua_family *ua;
    char *qbuf;
    size_t qcap;
    rt_counter *too_long;
} assign_ts;

static int at_open(rt_op *op)
{
    assign_ts *a = rt_op_self(op);
    char err[256];
    if (ua_family_new(&a->ua, err, sizeof err)) return rt_op_fail(op, "%s", err);
    return rt_op_counter(op, "numQueryTooLong", &a->too_long);
}

/* The joined-event fields the counter reads (decode_op_config.projection): counter_fields.c's
 * ids, platform ids, user infos, timings, content ids, action type and cart quantity, the
 * request's query and user agent, and the two messages stream U's reduced copy keeps whole (user,
 * response_insertion). The view, request and insertion bodies it never reads are checked, not
 * unpacked. A field read here but missing from this list reads as absent: keep them in step. */
static const char *const joined_event_fields[] = {
    "ids", "timing", "user", "response_insertion", "view.platform_id", "view.user_info",
    "view.timing", "request.platform_id", "request.user_info", "request.timing",
    "request.search_query", "request.device.browser.user_agent", "impression.platform_id",
    "impression.user_info", "impression.timing", "impression.content_id", "action.platform_id",
    "action.user_info", "action.timing", "action.content_id", "action.action_type",
    "action.custom_action_type", "action.single_cart_content", "api_execution_insertion.timing",
    "api_execution_insertion.content_id", "session.timing", NULL};

static int at_process(rt_op *op, int input, const rt_record *rec)
{
    assign_ts *a = rt_op_self(op);
    const Event__JoinedEvent *e = rec->data;
    counter_fields f;
    const char *q = e->request && e->request->search_query ? e->request->search_query : "";
    size_t need = text_lower_cap(strlen(q));
    if (need > a->qcap) {
        char *nb = realloc(a->qbuf, need);
        if (!nb) return rt_op_fail(op, "out of memory lower-casing a %zu-byte query", strlen(q));
        a->qbuf = nb;
        a->qcap = need;
    }
    if (cfield_extract(e, a->ua, a->qbuf, a->qcap, &f)) {
        rt_counter_add(a->too_long, 1);
        return 0;
    }
    if (f.log_ts > a->max_log_ts) a->max_log_ts = f.log_ts;
    rt_record out = {.ts = f.log_ts,
                     .type = REC_COUNTER_EVENT,
                     .data = &f,
                     .key = rec->key,
                     .key_len = rec->key_len};
    return rt_emit(op, 0, &out);
}

static int at_watermark(rt_op *op, int64_t wm)
{
    assign_ts *a = rt_op_self(op);
    if (wm == RT_TIME_MAX || a->max_log_ts == RT_TIME_MIN) {
        rt_op_set_watermark_holdback(op, 0);
        return 0;
    }
    int64_t own = a->max_log_ts - a->out_of_orderness - 1;
    rt_op_set_watermark_holdback(op, own < wm ? wm - own : 0);
    return 0;
}

static void at_close(rt_op *op)
{
    assign_ts *a = rt_op_self(op);
    ua_family_free(a->ua);
    free(a->qbuf);
    free(a);
}

static int at_snapshot(rt_op *op, rt_buf *out)
{
    return rt_buf_put_i64(out, ((assign_ts *)rt_op_self(op))->max_log_ts);
}

static int at_restore(rt_op *op, const uint8_t *bytes, size_t len)
{
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    return rt_buf_read_i64(&r, &((assign_ts *)rt_op_self(op))->max_log_ts);
}

static const rt_op_vtbl assign_ts_vtbl = {
    .open = at_open,
    .process = at_process,
    .on_watermark = at_watermark,
    .close = at_close,
    .snapshot = at_snapshot,
    .restore = at_restore,
};

/* ---- keys of the tables ---- */

static int table_key(ctable_id t, const counter_fields *f, uint8_t *buf, size_t cap)
{
    ctable_key k = {
        .platform_id = f->platform_id, .metric = f->metric, .query_hash = f->query_hash};
#define S(i, p) (k.s[i] = (p), k.n[i] = strlen(p))
#define SL(i, p, l) (k.s[i] = (p), k.n[i] = (l))
    switch (t) {
    case CTABLE_PLATFORM_DEVICE:
        SL(0, f->os, f->os_len), SL(1, f->ua, f->ua_len);
        break;
    case CTABLE_CONTENT_DEVICE:
        S(0, f->content_id), SL(1, f->os, f->os_len), SL(2, f->ua, f->ua_len);
        break;
    case CTABLE_LOG_USER:
        S(0, f->log_user_id);
        break;
    case CTABLE_USER:
        S(0, f->user_id);
        break;
    case CTABLE_LAST_TIME_LOG_USER_EVENT:
        S(0, f->log_user_id), S(1, f->content_id);
        break;
    case CTABLE_LAST_TIME_USER_EVENT:
        S(0, f->user_id), S(1, f->content_id);
        break;
    case CTABLE_QUERY:
        break;
    case CTABLE_CONTENT_QUERY:
        S(0, f->content_id);
        break;
    case CTABLE_LAST_TIME_LOG_USER_QUERY:
        S(0, f->log_user_id);
        break;
    case CTABLE_LAST_TIME_USER_QUERY:
        S(0, f->user_id);
        break;
    default:
        return -1;
    }
#undef S
#undef SL
    return ctable_key_encode(t, &k, buf, cap);
}

static int count_key(void *ctx, const rt_record *rec, uint8_t *buf, size_t cap, int64_t *t,
                     int64_t *count)
{
    const counter_fields *f = rec->data;
    *t = f->event_ts;
    *count = f->count;
    return table_key((ctable_id)(intptr_t)ctx, f, buf, cap);
}

static int time_key(void *ctx, const rt_record *rec, uint8_t *buf, size_t cap, int64_t *t)
{
    const counter_fields *f = rec->data;
    *t = f->event_ts;
    return table_key((ctable_id)(intptr_t)ctx, f, buf, cap);
}

static int32_t java_hash(void *ctx, const uint8_t *key, size_t len)
{
    ctable_key k;
    if (ctable_key_decode((ctable_id)(intptr_t)ctx, key, len, &k)) return 0;
    return ctable_java_key_hash((ctable_id)(intptr_t)ctx, &k);
}

/* ---- building ---- */

typedef struct build {
    rt_graph *g;
    const job_common_opts *c;
    const counter_opts *o;
    const char *run_id, *task;
    char *err;
    size_t errlen;
} build;

static int fail(build *b, const char *what)
{
    return job_build_fail(b->g, "counter", what, b->err, b->errlen);
}

static int connect(build *b, rt_op *from, int port, rt_op *to, int input)
{
    return rt_graph_connect(b->g, from, port, to, input) ? fail(b, "connecting operators") : 0;
}

/* Undecodable input of both sources goes to counter-side/invalid-record. */
static int add_invalid_sink(build *b, rt_op *decode, rt_op *decode_luu)
{
    if (!b->c->logAvro && !b->c->logParquet) return 0;
    rt_op *sink;
    if (invalid_sink_op_add(b->g, b->c, "counter-side/invalid-record", b->run_id, b->task, &sink,
                            b->err, b->errlen))
        return -1;
    if (!sink) return 0;
    return connect(b, decode, 1, sink, 0) || connect(b, decode_luu, 1, sink, 0) ? -1 : 0;
}

/* Adds the counting operators of table t fed by src; their results go to dst input 0. */
static int add_table(build *b, ctable_id t, rt_op *src, rt_op *dst, int64_t hourly_emit_ms,
                     bool hourly, int ttl_days)
{
    const ctable_info *ti = ctable_get(t);
    char uid[RT_UID_MAX];
    rt_op *op;
    if (ti->last_time) {
        last_time_config lc = {.ttl_days = ttl_days,
                               .tag = t,
                               .key_fn = time_key,
                               .hash_fn = java_hash,
                               .ctx = (void *)(intptr_t)t};
        if (last_time_op_add(b->g, ti->name, &lc, &op)) return fail(b, ti->name);
        return connect(b, src, 0, op, 0) || connect(b, op, 0, dst, 0) ? -1 : 0;
    }
    sliding_counter_config sc;
    if (hourly) {
        sliding_counter_hourly(&sc, hourly_emit_ms);
        sc.tag = t;
        sc.key_fn = count_key;
        sc.ctx = (void *)(intptr_t)t;
        snprintf(uid, sizeof uid, "count-hourly-event-%s", ti->name);
        if (sliding_counter_op_add(b->g, uid, &sc, &op)) return fail(b, uid);
        if (connect(b, src, 0, op, 0) || connect(b, op, 0, dst, 0)) return -1;
    }
    sliding_counter_daily(&sc);
    sc.tag = t;
    sc.key_fn = count_key;
    sc.ctx = (void *)(intptr_t)t;
    snprintf(uid, sizeof uid, "count-daily-event-%s", ti->name);
    if (sliding_counter_op_add(b->g, uid, &sc, &op)) return fail(b, uid);
    return connect(b, src, 0, op, 0) || connect(b, op, 0, dst, 0) ? -1 : 0;
}

static unsigned enabled_tables(const counter_opts *o)
{
    unsigned m = 0;
    for (int t = 0; t < CTABLE_COUNT; t++) {
        const ctable_info *ti = ctable_get((ctable_id)t);
        if (ti->query && !ti->last_time && !o->queryCounts) continue;
        if (ti->query && ti->last_time && !o->lastUserQueryEvents) continue;
        m |= 1u << t;
    }
    return m;
}

static int counter_build(rt_graph *g, const job_common_opts *c, const void *opts,
                         const char *run_id, const char *task, rt_op **root, char *err,
                         size_t errlen)
{
    const counter_opts *o = opts;
    build b = {g, c, o, run_id, task, err, errlen};
    char topic[512], uid[RT_UID_MAX];
    counter_input_topic(c->jobLabel, o->overrideInputLabel, c->kafkaDataset, o->joinedEventTopic,
                        topic, sizeof topic);
    if ((size_t)snprintf(uid, sizeof uid, "%s%s", c->kafkaSourceUidPrefix, topic) >= sizeof uid) {
        snprintf(err, errlen, "source uid %s%s is over %d bytes", c->kafkaSourceUidPrefix, topic,
                 RT_UID_MAX);
        return -1;
    }
    decode_op_config dc = {
        .desc = &event__joined_event__descriptor,
        .rec_type = REC_COUNTER_JOINED_EVENT,
        .max_record_bytes = (size_t)c->maxRecordBytes,
        .end_at_ts = c->endAtTimestamp,
        .projection = joined_event_fields,
    };
    rt_op *decode, *decode_luu, *assign, *commands, *gate = NULL, *top, *join, *op, *last;
    if (decode_op_add(g, uid, &dc, &decode)) return fail(&b, "adding the source");
    *root = decode;
    input_topic(c->jobLabel, o->overrideInputLabel, c->kafkaDataset, o->logUserUserTopic,
                "log-user-user-event", topic, sizeof topic);
    if ((size_t)snprintf(uid, sizeof uid, "%s%s", c->kafkaSourceUidPrefix, topic) >= sizeof uid) {
        snprintf(err, errlen, "source uid %s%s is over %d bytes", c->kafkaSourceUidPrefix, topic,
                 RT_UID_MAX);
        return -1;
    }
    if (user_stream_decode_op_add(g, uid, (size_t)c->maxRecordBytes, &decode_luu))
        return fail(&b, "adding the LogUserUser source");
    if (add_invalid_sink(&b, decode, decode_luu)) return -1;

    assign_ts *a = calloc(1, sizeof *a);
    if (!a) return fail(&b, "out of memory");
    a->out_of_orderness = o->maxJoinedEventOutOfOrderness;
    a->max_log_ts = RT_TIME_MIN;
    if (rt_graph_add_op(g, "assign-timestamp-joined-event", NULL, &assign_ts_vtbl, a, 1, 1,
                        &assign)) {
        free(a);
        return fail(&b, "adding assign-timestamp-joined-event");
    }
    if (connect(&b, decode, 0, assign, 0)) return -1;

    counter_commands_config cc = {.faithful_zero_counts = o->counterFaithfulZeroCounts};
    if (counter_commands_op_add(g, "to-redis-commands", &cc, &commands))
        return fail(&b, "adding to-redis-commands");
    unsigned tables = enabled_tables(o);
    bool any_query = tables & ((1u << CTABLE_QUERY) | (1u << CTABLE_LAST_TIME_LOG_USER_QUERY));
    if (any_query) {
        top_query_config tq = {o->searchQueryWindowSize, o->searchQueryWindowSlide,
                               o->searchQueryWindowMinThreshold, o->searchQueryLengthLimit};
        if (top_query_count_op_add(g, "count-top-query", &tq, &top) ||
            top_query_gate_op_add(g, "gate-top-query", &gate))
            return fail(&b, "adding the top-query filter");
        if (connect(&b, assign, 0, top, 0) || connect(&b, top, 0, gate, 1) ||
            connect(&b, gate, 0, commands, 0))
            return -1;
    }
    int log_days = (int)(o->logUserLastTimeAndCountTtl / 86400000);
    struct {
        ctable_id t;
        int64_t emit;
    } l_tables[] = {
        {CTABLE_PLATFORM_DEVICE, o->globalEventDeviceHourlyEmitWindow},
        {CTABLE_CONTENT_DEVICE, o->contentEventDeviceHourlyEmitWindow},
        {CTABLE_LOG_USER, o->logUserEventHourlyEmitWindow},
        {CTABLE_LAST_TIME_LOG_USER_EVENT, 0},
        {CTABLE_QUERY, o->queryEventHourlyEmitWindow},
        {CTABLE_CONTENT_QUERY, o->queryEventHourlyEmitWindow},
        {CTABLE_LAST_TIME_LOG_USER_QUERY, 0},
    };
    for (size_t i = 0; i < sizeof l_tables / sizeof l_tables[0]; i++) {
        ctable_id t = l_tables[i].t;
        if (!(tables & (1u << t))) continue;
        const ctable_info *ti = ctable_get(t);
        bool hourly = !ti->query || o->hourlyQuery;
        if (add_table(&b, t, assign, ti->query ? gate : commands, l_tables[i].emit, hourly,
                      log_days))
            return -1;
    }
    /* stream U. A file run without --logUserUserSource can never see a user: the join would
     * buffer every event and drop it at its timer (about a tenth of the job's time), so it gets
     * no events; the user tables write the same (nothing), numDroppedWithoutUser stays 0. */
    bool no_users = c->source.n > 0 && !o->logUserUserSource.n;
    if (user_stream_join_op_add(g, "join-log-user-user", &join) ||
        (!no_users && connect(&b, assign, 0, join, 0)) || connect(&b, decode_luu, 0, join, 1))
        return fail(&b, "adding join-log-user-user");
    int user_days = (int)(o->userLastTimeAndCountTtl / 86400000);
    static const ctable_id u_tables[] = {CTABLE_USER, CTABLE_LAST_TIME_USER_EVENT,
                                         CTABLE_LAST_TIME_USER_QUERY};
    for (size_t i = 0; i < sizeof u_tables / sizeof u_tables[0]; i++) {
        ctable_id t = u_tables[i];
        if (!(tables & (1u << t))) continue;
        const ctable_info *ti = ctable_get(t);
        if (add_table(&b, t, join, ti->query ? gate : commands, o->userEventHourlyEmitWindow, true,
                      user_days))
            return -1;
    }

    last = commands;
    if (o->counterBackfillBuffer > 0) {
        int idx = atoi(task);
        int64_t ntasks = c->source.n > 0 ? (int64_t)c->source.n : 1;
        counter_backfill_config bc = {
            .buffer_ms = o->counterBackfillBuffer,
            .start_ms = o->start_wall_ms,
            /* the reference offsets subtasks with index > 1 only (§B.11 QUIRK, kept) */
            .offset_ms = idx > 1 ? (o->counterBackfillBuffer / ntasks) * idx : 0,
        };
        if (counter_backfill_op_add(g, "buffer-counter-backfill", &bc, &op) ||
            connect(&b, last, 0, op, 0))
            return fail(&b, "adding buffer-counter-backfill");
        last = op;
    }
    if (counter_output_gate_op_add(g, "filter-counter-output", o->counterOutputStartTimestamp,
                                   o->counterOutputStopTimestamp, &op) ||
        connect(&b, last, 0, op, 0))
        return fail(&b, "adding filter-counter-output");
    last = op;

    char dir[4096], path[4200];
    counter_sink_config sc = {
        .redis = {.batch_commands = (size_t)o->redisBatchCommands,
                  .max_buffer_bytes = (size_t)o->redisBufferBytes,
                  .timeout_ms = o->redisTimeout,
                  .backoff_max_ms = o->redisRetryMaxBackoff,
                  .retry_limit_ms = o->redisRetryTimeout},
        .write_metadata = !strcmp(task, "0") || !strcmp(task, "all"), /* "all": Kafka input */
        .wipe = o->wipe,
        .tables = tables,
        .flush_interval_ms = o->redisFlushInterval,
    };
    if (o->unshardedEndpoint[0]) {
        sc.redis.url = o->unshardedEndpoint;
    } else {
        const char *parts[] = {"counter"};
        if (job_local_output_path(c, parts, 1, dir, sizeof dir)) {
            snprintf(err, errlen, "counter: the output path is too long");
            return -1;
        }
        snprintf(path, sizeof path, "%s/redis-commands-%s.resp", dir, task);
        sc.redis.path = path;
    }
    if (counter_sink_op_add(g, "sink-redis-counter", &sc, &op) || connect(&b, last, 0, op, 0))
        return fail(&b, "adding sink-redis-counter");
    return 0;
}

const job_def counter_job_def = {
    .name = "counter",
    .kafka_group = "countEvents",
    .help = "sliding hourly/daily counts and last-time features of joined events, into Redis "
            "hashes or a RESP file",
    .new_opts = counter_new_opts,
    .free_opts = counter_free_opts,
    .check = counter_check,
    .build = counter_build,
    .one_task = 1,
    .second_input = counter_second_input,
};
