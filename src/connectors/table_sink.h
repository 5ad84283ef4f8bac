/* Partitioned table sink: writes records into part files under
 *   <dir>/dt=YYYY-MM-DD/hour=HH/part-<run>-<task>-<commit>-<seq>.<ext>   (hourly tables)
 *   <dir>/dt=YYYY-MM-DD/part-<run>-<task>-<commit>-<seq>.<ext>           (daily tables)
 * in UTC by each record's partition timestamp.
 *
 * Exactly-once publishing (spec/README.md "Paths and names"): a part is written as the hidden
 * `.part-...<ext>.inprogress` in its partition directory, closed into a pending part when it is
 * rolled (too many open partitions) or at a commit, and renamed to its final name only at a commit
 * (table_sink_commit: one per checkpoint, and one at the end of input). A reader listing
 * `part-*` never sees a half-written file; a published name is never overwritten (an error).
 * Names are deterministic per (run, task, commit, seq), so a replay from a checkpoint rewrites the
 * same names.
 *
 * The file format is pluggable (Avro container now; CSV and JSON lines for the metric tables):
 * the sink hands the format the in-progress path and the encoded records. */
#ifndef LOGPROC_TABLE_SINK_H
#define LOGPROC_TABLE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

typedef struct table_format {
    /* Creates the file at path and returns its writer in *part. */
    int (*open_part)(void *ctx, const char *path, void **part, char *err, size_t errlen);
    /* Appends one encoded record (an Avro datum, a CSV line, ...). */
    int (*append)(void *part, const void *bytes, size_t len, char *err, size_t errlen);
    /* Flushes, syncs and closes the file and frees part (also on error). */
    int (*close_part)(void *part, char *err, size_t errlen);
    void *ctx;
    const char *ext; /* "avro", "csv", "jsonl" */
} table_format;

typedef struct table_sink_config {
    const char *dir;    /* table directory, created with the first part (copied) */
    const char *run_id; /* 8 hex digits (copied) */
    const char *task;   /* task label (copied), e.g. "0" */
    bool daily;         /* dt= partitions only, no hour= */
    bool unpartitioned; /* parts directly in dir (record files standing in for a Kafka topic) */
    size_t max_open;    /* open parts at once; more roll the least recently used; 0: 16 */
    table_format format;
} table_sink_config;

typedef struct table_sink table_sink;

typedef struct table_sink_stats {
    uint64_t records;         /* appended since creation */
    uint64_t parts_published; /* renamed to final names */
    uint64_t bytes_published; /* sizes of those parts */
    uint64_t commits;
} table_sink_stats;

/* Creates the sink. Nothing is written, and no directory made, before the first record (a table
 * that receives nothing has no directory). Returns 0, or -1 when out of memory. */
int table_sink_new(const table_sink_config *cfg, table_sink **out, char *err, size_t errlen);

/* Appends an encoded record to the part of the partition containing ts_ms (UTC), opening it when
 * needed. Cost: O(open parts) lookup, then the format's append. Returns 0 or -1 with err. */
int table_sink_write(table_sink *s, int64_t ts_ms, const void *bytes, size_t len, char *err,
                     size_t errlen);

/* Closes every open part and publishes every pending part (rename to the final name, failing if
 * that name exists), then starts the next commit number. Returns 0 or -1 with err (parts not yet
 * published stay pending and are retried by the next commit). */
int table_sink_commit(table_sink *s, char *err, size_t errlen);

/* Two-phase commits (checkpoints). precommit closes every open part into the pending list and
 * starts the next commit number (new parts get it); the checkpoint then records the pending list
 * (table_sink_snapshot); publish renames the pending parts once the checkpoint is durable.
 * table_sink_restore reads a snapshot into a fresh sink: the commit number, and the parts it
 * left pending, which it publishes at once (a part already published before a crash is no
 * error). Return 0 or -1 with err. */
int table_sink_precommit(table_sink *s, char *err, size_t errlen);
int table_sink_publish(table_sink *s, char *err, size_t errlen);
int table_sink_snapshot(const table_sink *s, rt_buf *out);
int table_sink_restore(table_sink *s, const uint8_t *bytes, size_t len, char *err, size_t errlen);

/* Calls fn for each part published so far, oldest first (path relative to cfg->dir). */
void table_sink_each_published(const table_sink *s, void (*fn)(void *arg, const char *relpath),
                               void *arg);

table_sink_stats table_sink_get_stats(const table_sink *s);

/* Closes and deletes open and pending (unpublished) parts, then frees the sink. NULL is a no-op. */
void table_sink_free(table_sink *s);

/* "dt=YYYY-MM-DD/hour=HH" (or "dt=YYYY-MM-DD" when daily) for ts_ms, UTC. */
void table_sink_partition(int64_t ts_ms, bool daily, char *buf, size_t cap);

#endif
