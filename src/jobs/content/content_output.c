#include "jobs/content/content_output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/avro_file.h"
#include "formats/csv.h"
#include "formats/jsonl.h"
#include "formats/record_file.h"
#include "jobs/topic_sink.h"
#include "jobs/common_ops.h"

static const char *const col_names[CM_NCOLS] = {
    "view_count",       "impression_count",  "joined_impression_count",
    "joined_impression_position_sum", "navigate_count", "add_to_cart_count",
    "checkout_count",   "purchase_count",    "gmv_usd_micros",
};

static const char *const json_names[CM_NCOLS] = {
    "views",     "impressions", "joinedImpressions", "joinedImpressionPositionSum",
    "navigates", "addToCarts",  "checkouts",         "purchases",
    "gmvUsd",
};

static const char avro_schema[] =
    "{\"type\":\"record\",\"name\":\"ContentMetrics\","
    "\"namespace\":\"ai.promoted.metrics.contentmetrics\",\"fields\":["
    "{\"name\":\"platform_id\",\"type\":\"long\"},"
    "{\"name\":\"content_id\",\"type\":\"string\"},"
    "{\"name\":\"view_count\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"impression_count\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"joined_impression_count\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"joined_impression_position_sum\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"navigate_count\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"add_to_cart_count\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"checkout_count\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"purchase_count\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"gmv_usd_micros\",\"type\":[\"null\",\"long\"]}]}";

const char *cm_output_avro_schema(void)
{
    return avro_schema;
}

const char *cm_output_dir(cm_output_kind kind)
{
    switch (kind) {
    case CM_OUT_HOURLY_AVRO: return "etl/hourly_content_metrics";
    case CM_OUT_DAILY_AVRO: return "etl/daily_content_metrics";
    case CM_OUT_DAILY_CSV: return "etl/daily_content_metrics_csv";
    case CM_OUT_CUMULATED_JSONL: return "etl/cumulated_content_metrics";
    case CM_OUT_CUMULATED_TOPIC: return CM_CUMULATED_TOPIC;
    }
    return "";
}

/* ---- encodings ---- */

static int avro_long(rt_buf *out, int64_t v)
{
    return rt_buf_put_varint(out, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static int avro_row(const cm_metrics_row *row, rt_buf *out)
{
    if (avro_long(out, (int64_t)row->platform_id) ||
        avro_long(out, (int64_t)row->content_id_len) ||
        rt_buf_append(out, row->content_id, row->content_id_len))
        return -1;
    for (int i = 0; i < CM_NCOLS; i++)
        if (avro_long(out, 1) || avro_long(out, row->v[i])) return -1; /* union branch "long" */
    return 0;
}

int cm_output_csv_header(rt_buf *out)
{
    const char *names[3 + CM_NCOLS] = {"date", "platform_id", "content_id"};
    for (int i = 0; i < CM_NCOLS; i++) names[3 + i] = col_names[i];
    return csv_put_header(out, names, 3 + CM_NCOLS);
}

static int csv_row(const cm_metrics_row *row, rt_buf *out)
{
    char date[32];
    jsonl_format_date(row->window_start, date, sizeof date);
    if (csv_put_string(out, date, strlen(date)) || rt_buf_put_u8(out, ',') ||
        csv_put_long(out, (int64_t)row->platform_id) || rt_buf_put_u8(out, ',') ||
        csv_put_string(out, row->content_id, row->content_id_len))
        return -1;
    for (int i = 0; i < CM_NCOLS; i++)
        if (rt_buf_put_u8(out, ',') || csv_put_long(out, row->v[i])) return -1;
    return rt_buf_put_u8(out, '\n');
}

static int json_row(const cm_metrics_row *row, const char *message_type, int with_dt, rt_buf *out)
{
    char date[32], end[40], platform[24];
    jsonl_format_date(row->window_start, date, sizeof date);
    jsonl_format_utc(row->window_end, end, sizeof end);
    snprintf(platform, sizeof platform, "%lld", (long long)row->platform_id);
    /* the id is "<dt>@<platform>@<content>": built whole, then escaped once */
    size_t dl = strlen(date), pl = strlen(platform), idlen = dl + pl + 2 + row->content_id_len;
    char *id = malloc(idlen + 1);
    if (!id) return -1;
    snprintf(id, idlen + 1, "%s@%s@", date, platform);
    memcpy(id + dl + pl + 2, row->content_id, row->content_id_len);
    int rc = jsonl_put_raw(out, "{\"header\":{\"version\":\"1.0\",\"sourceId\":\"Metric\",\"id\":") ||
             jsonl_put_string(out, id, idlen) ||
             jsonl_put_raw(out, ",\"correlationId\":\"TODO\",\"platformId\":") ||
             jsonl_put_long(out, (int64_t)row->platform_id) ||
             jsonl_put_raw(out, ",\"messageType\":") ||
             jsonl_put_string(out, message_type, strlen(message_type)) ||
             jsonl_put_raw(out, ",\"eventDateTimestamp\":") ||
             jsonl_put_string(out, end, strlen(end)) ||
             jsonl_put_raw(out, "},\"body\":{\"contentId\":") ||
             jsonl_put_string(out, row->content_id, row->content_id_len) ||
             jsonl_put_raw(out, ",\"metrics\":{");
    free(id);
    if (rc) return -1;
    for (int i = 0; i < CM_NCOLS; i++)
        if ((i && jsonl_put_raw(out, ",")) || jsonl_put_raw(out, "\"") ||
            jsonl_put_raw(out, json_names[i]) || jsonl_put_raw(out, "\":") ||
            jsonl_put_long(out, row->v[i]))
            return -1;
    if (jsonl_put_raw(out, "}}")) return -1;
    if (with_dt && (jsonl_put_raw(out, ",\"dt\":") || jsonl_put_string(out, date, dl))) return -1;
    return jsonl_put_raw(out, with_dt ? "}" : "}\n");
}

int cm_output_encode(cm_output_kind kind, const char *message_type, const cm_metrics_row *row,
                     rt_buf *out)
{
    size_t start = out->len;
    int rc = -1;
    switch (kind) {
    case CM_OUT_HOURLY_AVRO:
    case CM_OUT_DAILY_AVRO: rc = avro_row(row, out); break;
    case CM_OUT_DAILY_CSV: rc = csv_row(row, out); break;
    case CM_OUT_CUMULATED_JSONL: rc = json_row(row, message_type, 0, out); break;
    case CM_OUT_CUMULATED_TOPIC: rc = json_row(row, message_type, 1, out); break;
    }
    if (rc) out->len = start;
    return rc;
}

/* ---- part formats ---- */

/* Avro container parts with the metric schema. */
static int avro_open(void *ctx, const char *path, void **part, char *err, size_t errlen)
{
    avro_file_opts o = {.codec = "snappy", .fsync_on_close = 1};
    return avro_file_out_new(path, avro_schema, strlen(avro_schema), &o, (avro_file_out **)part,
                             err, errlen);
}

static int avro_append(void *part, const void *bytes, size_t len, char *err, size_t errlen)
{
    return avro_file_out_append(part, bytes, len, err, errlen);
}

static int avro_close(void *part, char *err, size_t errlen)
{
    return avro_file_out_close(part, err, errlen);
}

/* Text parts (CSV, JSON lines): the CSV header is the first line of every part. */
typedef struct text_part {
    FILE *f;
    char *path;
} text_part;

static int text_fail(text_part *p, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s: %s", p->path, what, strerror(errno));
    return -1;
}

static int text_open(void *ctx, const char *path, void **part, char *err, size_t errlen)
{
    const int *csv = ctx;
    text_part *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path))) {
        free(p);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (!(p->f = fopen(path, "wb"))) {
        text_fail(p, "open", err, errlen);
        free(p->path);
        free(p);
        return -1;
    }
    if (*csv) {
        rt_buf h;
        rt_buf_init(&h, 4096);
        int rc = cm_output_csv_header(&h) || fwrite(h.data, 1, h.len, p->f) != h.len;
        rt_buf_free(&h);
        if (rc) {
            text_fail(p, "write", err, errlen);
            fclose(p->f);
            free(p->path);
            free(p);
            return -1;
        }
    }
    *part = p;
    return 0;
}

static int text_append(void *part, const void *bytes, size_t len, char *err, size_t errlen)
{
    text_part *p = part;
    if (fwrite(bytes, 1, len, p->f) != len) return text_fail(p, "write", err, errlen);
    return 0;
}

static int text_close(void *part, char *err, size_t errlen)
{
    text_part *p = part;
    int rc = 0;
    if (fflush(p->f) || fsync(fileno(p->f))) rc = text_fail(p, "flush", err, errlen);
    if (fclose(p->f) && !rc) rc = text_fail(p, "close", err, errlen);
    free(p->path);
    free(p);
    return rc;
}


/* ---- the sink ---- */

typedef struct cm_sink {
    cm_output_kind kind;
    char *message_type;
    int csv; /* text_open's ctx: write the CSV header */
    rt_buf scratch; /* the topic's JSON value before it is framed */
} cm_sink;

static int sink_encode(void *ctx, const rt_record *rec, rt_buf *out, int64_t *pts)
{
    cm_sink *s = ctx;
    if (rec->type != CM_REC_METRICS) return -1;
    const cm_metrics_row *row = rec->data;
    *pts = row->window_start;
    if (s->kind != CM_OUT_CUMULATED_TOPIC) return cm_output_encode(s->kind, s->message_type, row, out);
    rt_buf_reset(&s->scratch);
    if (cm_output_encode(s->kind, s->message_type, row, &s->scratch)) return -1;
    if (rt_buf_reserve(out, RECFILE_FRAME_OVERHEAD + s->scratch.len)) return -1;
    out->len += recfile_frame_encode(out->data + out->len, rec->ts, NULL, 0, s->scratch.data,
                                     (uint32_t)s->scratch.len);
    return 0;
}

static void sink_free(void *ctx)
{
    cm_sink *s = ctx;
    rt_buf_free(&s->scratch);
    free(s->message_type);
    free(s);
}

static int topic_encode(void *ctx, const rt_record *rec, rt_buf *out)
{
    int64_t pts;
    return sink_encode(ctx, rec, out, &pts);
}

int cm_topic_sink_add(rt_graph *g, const job_common_opts *c, const char *uid, const char *topic,
                      const char *message_type, const char *run_id, const char *task,
                      size_t max_record_bytes, rt_op **out, char *err, size_t errlen)
{
    cm_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->message_type = strdup(message_type ? message_type : ""))) {
        free(s);
        snprintf(err, errlen, "adding %s: out of memory", uid);
        return -1;
    }
    s->kind = CM_OUT_CUMULATED_TOPIC;
    rt_buf_init(&s->scratch, max_record_bytes);
    topic_sink_config tc = {
        .topic = topic, .run_id = run_id, .task = task, .job = "content-metrics",
        .encode = topic_encode, .encode_ctx = s, .encode_free = sink_free,
        .max_record_bytes = max_record_bytes + RECFILE_FRAME_OVERHEAD,
    };
    if (topic_sink_op_add(g, c, uid, &tc, out, err, errlen)) {
        sink_free(s);
        return -1;
    }
    return 0;
}

int cm_sink_add(rt_graph *g, const char *uid, const cm_sink_config *cfg, rt_op **out, char *err,
                size_t errlen)
{
    cm_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->message_type = strdup(cfg->message_type ? cfg->message_type : ""))) {
        free(s);
        snprintf(err, errlen, "adding %s: out of memory", uid);
        return -1;
    }
    s->kind = cfg->kind;
    s->csv = cfg->kind == CM_OUT_DAILY_CSV;
    rt_buf_init(&s->scratch, cfg->max_record_bytes);
    table_format f;
    switch (cfg->kind) {
    case CM_OUT_HOURLY_AVRO:
    case CM_OUT_DAILY_AVRO: f = (table_format){avro_open, avro_append, avro_close, NULL, "avro"}; break;
    case CM_OUT_DAILY_CSV: f = (table_format){text_open, text_append, text_close, &s->csv, "csv"}; break;
    case CM_OUT_CUMULATED_JSONL:
        f = (table_format){text_open, text_append, text_close, &s->csv, "jsonl"};
        break;
    default: /* the cumulated topic: cm_topic_sink_add */
        sink_free(s);
        snprintf(err, errlen, "adding %s: the cumulated topic is added by cm_topic_sink_add", uid);
        return -1;
    }
    sink_op_config sc = {
        .dir = cfg->dir,
        .run_id = cfg->run_id,
        .task = cfg->task,
        .daily = cfg->kind != CM_OUT_HOURLY_AVRO,
        .unpartitioned = cfg->kind == CM_OUT_CUMULATED_TOPIC,
        .format = f,
        .encode = sink_encode,
        .encode_ctx = s,
        .encode_free = sink_free,
        .max_record_bytes = cfg->max_record_bytes + RECFILE_FRAME_OVERHEAD,
    };
    if (sink_op_add(g, uid, &sc, out)) {
        sink_free(s);
        snprintf(err, errlen, "adding %s: out of memory", uid);
        return -1;
    }
    return 0;
}

/* ---- _SUCCESS markers ---- */

#define MAX_MARKED 4096 /* partitions remembered as marked (more are put again: harmless) */

typedef struct marker_op {
    rt_op *sink;
    char *marked[MAX_MARKED];
    size_t nmarked;
    char *dir;
    int failed;
    char err[512];
} marker_op;

static int marker_process(rt_op *op, int input, const rt_record *rec)
{
    return 0; /* connected only to be ordered after the aggregation */
}

/* Writes <dir>/<partition>/_SUCCESS for one published part (relpath "dt=../part-..."). */
static void mark_one(void *arg, const char *relpath)
{
    marker_op *m = arg;
    const char *slash = strrchr(relpath, '/');
    if (!slash || m->failed) return;
    char rel[4096];
    snprintf(rel, sizeof rel, "%.*s/_SUCCESS", (int)(slash - relpath), relpath);
    for (size_t i = 0; i < m->nmarked; i++)
        if (!strcmp(m->marked[i], rel)) return;
    if (sink_op_put_marker(m->sink, rel, m->err, sizeof m->err)) {
        m->failed = 1;
        return;
    }
    if (m->nmarked < MAX_MARKED) {
        char *c = strdup(rel);
        if (c) m->marked[m->nmarked++] = c;
    }
}

static int marker_finish(rt_op *op)
{
    marker_op *m = rt_op_self(op);
    sink_op_each_published(m->sink, mark_one, m);
    return m->failed ? rt_op_fail(op, "writing a _SUCCESS marker: %s", m->err) : 0;
}

/* With checkpoints the sink publishes when a checkpoint completes (it runs first: it precedes
 * this operator in the graph's order), so the markers follow then. */
static int marker_complete(rt_op *op, int64_t id)
{
    (void)id;
    return marker_finish(op);
}

static void marker_close(rt_op *op)
{
    marker_op *m = rt_op_self(op);
    for (size_t i = 0; i < m->nmarked; i++) free(m->marked[i]);
    free(m->dir);
    free(m);
}

static const rt_op_vtbl marker_vtbl = {
    .process = marker_process, .finish = marker_finish, .checkpoint_complete = marker_complete,
    .close = marker_close,
};

int cm_success_marker_add(rt_graph *g, const char *uid, rt_op *sink, rt_op *from, char *err,
                          size_t errlen)
{
    marker_op *m = calloc(1, sizeof *m);
    rt_op *op;
    if (!m || !(m->dir = strdup(sink_op_dir(sink)))) {
        free(m);
        snprintf(err, errlen, "adding %s: out of memory", uid);
        return -1;
    }
    m->sink = sink;
    if (rt_graph_add_op(g, uid, "success-marker", &marker_vtbl, m, 1, 0, &op)) {
        free(m->dir);
        free(m);
        snprintf(err, errlen, "adding %s: out of memory", uid);
        return -1;
    }
    if (rt_graph_connect(g, from, 0, op, 0)) {
        snprintf(err, errlen, "adding %s: %s", uid, rt_graph_error(g));
        return -1;
    }
    return 0;
}
