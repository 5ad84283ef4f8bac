/* content-metrics outputs (spec/other-jobs.md §C.3 to §C.6): what one metric row becomes in
 * each table, and the sinks that write them.
 *
 *   hourly Avro   etl/hourly_content_metrics/dt=/hour=/part-*.avro  (window start's UTC hour)
 *   daily Avro    etl/daily_content_metrics/dt=/part-*.avro
 *   daily CSV     etl/daily_content_metrics_csv/dt=/part-*.csv      (header line first in each part)
 *   cumulated     etl/cumulated_content_metrics/dt=/part-*.jsonl    (one JSON object per line)
 *   cumulated topic  <root>/kafka/metrics.blue.default.cumulated-content-metrics/part-*.rec
 *                 (records for the Kafka sink: no key, the JSON value with a top-level "dt")
 *
 * The Avro tables are the reference's Parquet tables (spec/README.md "Scope"): the columns
 * platform_id (long), content_id (string) and the nine sums (["null","long"], never null here),
 * without the partition columns dt and hour, which the reference does not store in its files
 * either. The CSV has the columns date, platform_id, content_id and the nine sums (formats/csv.h
 * quoting). The cumulated JSON is, fields in this order:
 *   {"header":{"version":"1.0","sourceId":"Metric","id":"<dt>@<platform>@<content>",
 *    "correlationId":"TODO","platformId":<platform>,"messageType":"<job name>",
 *    "eventDateTimestamp":"<window end, UTC ISO-8601>"},
 *    "body":{"contentId":"<content>","metrics":{"views":n,"impressions":n,"joinedImpressions":n,
 *    "joinedImpressionPositionSum":n,"navigates":n,"addToCarts":n,"checkouts":n,"purchases":n,
 *    "gmvUsd":n}}}
 * where dt is the UTC date of the window start; the topic's value adds ,"dt":"<dt>" at the end. */
#ifndef LOGPROC_CONTENT_OUTPUT_H
#define LOGPROC_CONTENT_OUTPUT_H

#include <stddef.h>

#include "jobs/content/content_window.h"
#include "runtime/buf.h"
#include "runtime/graph.h"

typedef enum {
    CM_OUT_HOURLY_AVRO,
    CM_OUT_DAILY_AVRO,
    CM_OUT_DAILY_CSV,
    CM_OUT_CUMULATED_JSONL,
    CM_OUT_CUMULATED_TOPIC,
} cm_output_kind;

/* The cumulated topic's name: hard-coded in the reference, label and dataset flags aside. */
#define CM_CUMULATED_TOPIC "metrics.blue.default.cumulated-content-metrics"

/* The table's directory under the output root ("etl/hourly_content_metrics"), or for the topic
 * its name. */
const char *cm_output_dir(cm_output_kind kind);

/* The Avro schema (JSON text) of the hourly and daily tables (one schema serves both). */
const char *cm_output_avro_schema(void);

/* The CSV header line, with its '\n'. Returns 0 or -1 (out's limit). */
int cm_output_csv_header(rt_buf *out);

/* Appends what row becomes in the table of kind: the Avro datum, the CSV line with its '\n', the
 * JSON line with its '\n', or (the topic) the JSON value with "dt" and no newline.
 * message_type is the cumulated JSON's header.messageType. Returns 0 or -1 (out's limit). */
int cm_output_encode(cm_output_kind kind, const char *message_type, const cm_metrics_row *row,
                     rt_buf *out);

typedef struct cm_sink_config {
    cm_output_kind kind;
    const char *dir;          /* the table directory (or <root>/kafka/<topic>) */
    const char *message_type; /* cumulated kinds; copied */
    const char *run_id, *task;
    size_t max_record_bytes; /* cap on one encoded row */
} cm_sink_config;

/* Adds a sink operator (jobs/common_ops.h sink_op) writing CM_REC_METRICS rows into the table of
 * cfg->kind: parts are published at the end of input (and at each checkpoint once they land),
 * partitioned by the UTC time of the window start (hourly: dt/hour; the others: dt; the topic:
 * unpartitioned). Returns 0 or -1 with err. */
int cm_sink_add(rt_graph *g, const char *uid, const cm_sink_config *cfg, rt_op **out, char *err,
                size_t errlen);

/* Adds the cumulated topic's sink (jobs/topic_sink.h: Kafka with Kafka input, else a record file
 * under <root>/kafka/<topic>/). Returns 0 or -1 with err. */
struct job_common_opts;
int cm_topic_sink_add(rt_graph *g, const struct job_common_opts *c, const char *uid,
                      const char *topic, const char *message_type, const char *run_id,
                      const char *task, size_t max_record_bytes, rt_op **out, char *err,
                      size_t errlen);

/* Adds an operator that writes an empty `_SUCCESS` file into every partition directory in which
 * the sink `sink` (added by cm_sink_add) has published a part, as the reference's partition
 * commit does (§C.3 to §C.6). It must be added after the sink and fed from the same operator
 * (`from`), so that the graph finishes it after the sink has published (rt_graph_finish runs
 * siblings in insertion order). Until checkpoints land, publishing, and so the markers, happen at
 * the end of input. Returns 0 or -1 with err. */
int cm_success_marker_add(rt_graph *g, const char *uid, rt_op *sink, rt_op *from, char *err,
                          size_t errlen);

#endif
