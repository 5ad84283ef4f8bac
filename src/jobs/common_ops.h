/* Operators shared by the jobs: decoding the LogRequest source, KeepFirstRow dedupe, and the
 * table sink. Each is created with a small config and added to a task's graph. */
#ifndef LOGPROC_COMMON_OPS_H
#define LOGPROC_COMMON_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "connectors/table_sink.h"
#include "formats/avro_encode.h"
#include "runtime/buf.h"
#include "runtime/graph.h"
#include "runtime/metrics.h"

/* Record types that cross operators of several jobs (job-specific ones start at 100). */
enum {
    REC_LOG_REQUEST = 0, /* data: Event__LogRequest * */
    REC_USER,            /* Event__User * */
    REC_COHORT_MEMBERSHIP,
    REC_AUTO_VIEW,
    REC_VIEW,
    REC_DELIVERY_LOG,
    REC_IMPRESSION,
    REC_ACTION,
    REC_DIAGNOSTICS,
    REC_INVALID, /* data: job_invalid_record * */
};

/* A record that could not be read or decoded is a REC_INVALID whose data is an
 * avenc_invalid_record (formats/avro_encode.h): the invalid_record side output's row
 * (spec/README.md "Record file"). */
typedef avenc_invalid_record job_invalid_record;

/* ---- decode: the root of a LogRequest job ----
 * Input: RT_TYPE_SOURCE / RT_TYPE_SOURCE_BAD records from the task. Port 0: the decoded message
 * (type `rec_type`, data a message of `desc`, decoded into a per-record arena that is reset when
 * the push returns, ts and key from the source). Port 1: REC_INVALID for a bad span, a record over
 * max_record_bytes, a message nested too deep, undecodable bytes or invalid UTF-8. Records with
 * ts >= end_at_ts (when > 0) are dropped and counted. */
typedef struct decode_op_config {
    const ProtobufCMessageDescriptor *desc;
    int rec_type;
    size_t max_record_bytes;
    int64_t end_at_ts;
    /* Optional: the fields the job reads (formats/pb_projection.h paths, NULL-terminated;
     * static storage). The bytes are still checked against desc in full, so the same records
     * are invalid; only the named fields are unpacked, the others read as absent. */
    const char *const *projection;
} decode_op_config;

int decode_op_add(rt_graph *g, const char *uid, const decode_op_config *cfg, rt_op **out);

/* ---- keep-first: KeepFirstRow (spec/other-jobs.md §1.6) ----
 * The first record of a key passes to port 0; later ones with the same key are dropped (and
 * counted) until a timer at ts(first) + retention clears the key. State holds a 128-bit hash
 * of each key (16 bytes per key, whatever the ids' length). Key bytes come from key_fn
 * (returns the key length written to buf, at most cap, or -1 to pass the record unkeyed). */
typedef struct keep_first_config {
    int64_t retention_ms;
    int (*key_fn)(const rt_record *rec, uint8_t *buf, size_t cap);
} keep_first_config;

int keep_first_op_add(rt_graph *g, const char *uid, const keep_first_config *cfg, rt_op **out);

/* ---- table sink: records into a partitioned table (connectors/table_sink.h) ----
 * encode appends the record's bytes to out (cleared before each call) and sets the partition
 * timestamp; returning 1 skips the record, -1 fails the task. Parts are committed at finish. */
typedef struct sink_op_config {
    const char *dir; /* table directory, or s3://bucket/prefix: then parts are staged under
                        --localStagingDir and published through the store, with the settings
                        of job_output_store_config() */
    const char *run_id;
    const char *task;
    bool daily;
    bool unpartitioned;
    table_format format;
    void (*format_free)(void *ctx); /* frees format.ctx at close; may be NULL */
    int (*encode)(void *ctx, const rt_record *rec, rt_buf *out, int64_t *partition_ts);
    void *encode_ctx;
    void (*encode_free)(void *ctx); /* may be NULL */
    size_t max_record_bytes;        /* cap of the encode buffer */
} sink_op_config;

int sink_op_add(rt_graph *g, const char *uid, const sink_op_config *cfg, rt_op **out);

/* The display name of every table sink operator: how the run summary tells them from other
 * sinks (Redis, ...). */
#define SINK_OP_NAME "table-sink"

/* The dead-letter table of a job: a table sink of invalid_record rows (REC_INVALID records, the
 * schema schemas/invalid_record.avsc) under <output root>[/<label>]/<dir>, partitioned by the
 * record's timestamp (0 when unknown), with uid sink-s3-<dir with '/' as '-'>. *out is that sink
 * (an existing one of the uid is returned as it is, so several decoders can feed it), or NULL when
 * --disableS3Sink names it. Returns 0, or -1 with err. */
struct job_common_opts;
int invalid_sink_op_add(rt_graph *g, const struct job_common_opts *c, const char *dir,
                        const char *run_id, const char *task, rt_op **out, char *err,
                        size_t errlen);

/* Stats of a sink operator added by sink_op_add (for the run summary). */
table_sink_stats sink_op_stats(rt_op *op);
const char *sink_op_dir(rt_op *op);
void sink_op_each_published(rt_op *op, void (*fn)(void *arg, const char *relpath), void *arg);
/* An empty marker (e.g. "dt=.../_SUCCESS") under the sink's table, wherever the table is (local
 * directory or S3): table_sink_put_marker. Call it from the sink's task. Returns 0 or -1. */
int sink_op_put_marker(rt_op *op, const char *relpath, char *err, size_t errlen);

/* Writes 8 bytes little-endian of v into buf (the keys' platform_id prefix). */
static inline void job_put_le64(uint8_t *buf, uint64_t v)
{
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(v >> (8 * i));
}

/* Key helper for keep-first: 8-byte platform_id then the id's bytes. Returns the length, or -1
 * if it does not fit cap. id may be NULL (the empty id: an ordinary key). */
int job_key_platform_id(uint64_t platform_id, const char *id, uint8_t *buf, size_t cap);

#endif
