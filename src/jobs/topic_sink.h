/* Topic sinks: a job's Kafka outputs. With Kafka input (no --source) records go to the Kafka
 * topic through a transactional producer; with record-file input they go to record files under
 * <output root>/kafka/<topic>/ (the file form of the topic), as before Kafka existed.
 *
 * The encode callback writes one record-file frame (recfile_frame_encode: timestamp, key,
 * value) for the record, or returns 1 to skip it, -1 to fail. The Kafka form reads the frame's
 * fields back and sends them; every record carries the header logproc.id =
 * "<run>-<task>-<sink seq>", deterministic across restores, so a duplicate is detectable.
 *
 * Exactly-once with checkpoints (docs/KAFKA.md): one transaction per checkpoint epoch. The
 * snapshot flushes and commits the epoch's transaction and records the sink's sequence number;
 * the next record begins the next one. librdkafka cannot resume another process's transaction,
 * so the commit is made at the snapshot, before the checkpoint write: a crash between the two
 * replays that epoch, and its records come again with the same ids. Without checkpoints
 * (finite runs) one transaction spans the run and commits at the end. */
#ifndef LOGPROC_TOPIC_SINK_H
#define LOGPROC_TOPIC_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "jobs/job_flags.h"
#include "runtime/buf.h"
#include "runtime/graph.h"

typedef struct topic_sink_config {
    const char *topic;
    const char *run_id;
    const char *task;
    const char *job; /* job name, for the transactional id */
    int (*encode)(void *ctx, const rt_record *rec, rt_buf *out);
    void *encode_ctx;
    void (*encode_free)(void *ctx); /* may be NULL */
    size_t max_record_bytes;        /* cap of one encoded frame */
} topic_sink_config;

/* The display name of Kafka topic sink operators (the run summary's Kafka lines). */
#define TOPIC_SINK_OP_NAME "kafka-sink"

/* Adds the sink uid fed by nothing yet (connect it). Kafka when c has no --source, else a
 * record-file table sink under <root>/kafka/<topic>/. On failure the caller still owns
 * encode_ctx. Returns 0 or -1 with err. */
int topic_sink_op_add(rt_graph *g, const job_common_opts *c, const char *uid,
                      const topic_sink_config *cfg, rt_op **out, char *err, size_t errlen);

/* True when the job reads Kafka (no --source): topics are Kafka topics. */
int topic_sink_kafka_mode(const job_common_opts *c);

typedef struct topic_sink_stats {
    uint64_t records, txn_begin, txn_commit, txn_abort, delivered, failed;
} topic_sink_stats;
/* Stats of a Kafka topic sink operator (name TOPIC_SINK_OP_NAME). */
topic_sink_stats topic_sink_op_stats(rt_op *op);
const char *topic_sink_op_topic(rt_op *op);

#endif
