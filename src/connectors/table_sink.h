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
 * With an object store (cfg.store_url, e.g. s3://bucket), dir is a key prefix under the store's
 * root. Parts are written in a local staging directory (cfg.staging_dir/<dir>/..., the same
 * hidden names), and a part closed into pending is staged in the store (objstore_stage_file: S3
 * uploads it as a multipart upload left uncompleted) and its local file removed; publishing
 * completes it (objstore_publish), so the object appears whole under its final key, and a
 * restore publishes the staged handles its snapshot recorded (idempotently).
 *
 * The file format is pluggable (Avro container now; CSV and JSON lines for the metric tables):
 * the sink hands the format the in-progress path and the encoded records. */
#ifndef LOGPROC_TABLE_SINK_H
#define LOGPROC_TABLE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/objstore.h"
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
    /* Optional object store (NULL: dir is a local directory, parts are renamed into place).
     * With one, dir is a key prefix relative to the store's root ("" for the root itself) and
     * staging_dir (required) is the local directory in-progress parts are written under. The
     * sink opens its own objstore (one per sink: a sink belongs to one thread). */
    const char *store_url;
    const objstore_config *store_cfg;
    const char *staging_dir;
} table_sink_config;

typedef struct table_sink table_sink;

typedef struct table_sink_stats {
    uint64_t records;         /* appended since creation */
    uint64_t parts_published; /* renamed to final names (or completed in the store) */
    uint64_t bytes_published; /* sizes of those parts (the local file's, before upload) */
    uint64_t commits;
} table_sink_stats;

/* Creates the sink. Nothing is written, and no directory made, before the first record (a table
 * that receives nothing has no directory). With a store, opens it (no request is made yet).
 * Returns 0, or -1 with err (out of memory, a store URL or config objstore_open refuses). */
int table_sink_new(const table_sink_config *cfg, table_sink **out, char *err, size_t errlen);

/* Appends an encoded record to the part of the partition containing ts_ms (UTC), opening it when
 * needed. Cost: O(open parts) lookup, then the format's append. Returns 0 or -1 with err. */
int table_sink_write(table_sink *s, int64_t ts_ms, const void *bytes, size_t len, char *err,
                     size_t errlen);

/* Closes every open part and publishes every pending part (rename to the final name, failing if
 * that name exists; with a store: stage, then publish), then starts the next commit number.
 * Returns 0 or -1 with err (parts not yet published stay pending and are retried by the next
 * commit). A part's final name is checked to be free when the part is opened (with a store: one
 * listing request per part). */
int table_sink_commit(table_sink *s, char *err, size_t errlen);

/* Two-phase commits (checkpoints). precommit closes every open part into the pending list (with
 * a store: uploads it, uncompleted) and starts the next commit number (new parts get it); the
 * checkpoint then records the pending list (table_sink_snapshot: version 2, with each part's
 * store handle and size; version 1 snapshots are still read); publish renames (completes) the
 * pending parts once the checkpoint is durable. table_sink_restore reads a snapshot into a fresh
 * sink: the commit number, and the parts it left pending, which it publishes at once (a part
 * already published before a crash is no error). A snapshot marks its pending parts as
 * recorded: table_sink_free leaves their staged uploads for a restore to publish. Return 0 or -1
 * with err (snapshot: -1 when out's limit is hit). */
int table_sink_precommit(table_sink *s, char *err, size_t errlen);
int table_sink_publish(table_sink *s, char *err, size_t errlen);
int table_sink_snapshot(table_sink *s, rt_buf *out);
int table_sink_restore(table_sink *s, const uint8_t *bytes, size_t len, char *err, size_t errlen);

/* Calls fn for each part published so far, oldest first (path relative to cfg->dir; with a
 * store: the key relative to cfg->dir). */
void table_sink_each_published(const table_sink *s, void (*fn)(void *arg, const char *relpath),
                               void *arg);

/* Writes an empty marker named relpath under the table (e.g. "dt=2024-01-01/_SUCCESS"): locally
 * a file, created unless it exists; with a store an empty object (one PUT). Returns 0 or -1 with
 * err naming the path. */
int table_sink_put_marker(table_sink *s, const char *relpath, char *err, size_t errlen);

table_sink_stats table_sink_get_stats(const table_sink *s);

/* The object store's request counters (requests, retries, failures, bytes); all zero for a local
 * table. Returns 1 when the sink writes to a store, else 0. */
int table_sink_store_stats(const table_sink *s, objstore_stats *out);

/* Closes and deletes open and pending (unpublished) parts, then frees the sink. With a store,
 * aborts the staged uploads of pending parts no snapshot recorded (a recorded one may be in a
 * durable checkpoint whose restore publishes it). NULL is a no-op. */
void table_sink_free(table_sink *s);

/* "dt=YYYY-MM-DD/hour=HH" (or "dt=YYYY-MM-DD" when daily) for ts_ms, UTC. */
void table_sink_partition(int64_t ts_ms, bool daily, char *buf, size_t cap);

#endif
