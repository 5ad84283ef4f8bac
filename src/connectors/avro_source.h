/*
 * avro_source: a finite rt_source (runtime/task.h) that replays archive tables (the Avro
 * object container parts raw-output and flat-output publish) in event-time order: backfill.
 *
 *   avsrc_config cfg = {.spec = "out", .flag = "source", .kind = AVSRC_LOG_REQUEST};
 *   avsrc *a;
 *   avsrc_open(&cfg, &a, err, sizeof err);
 *   rt_task_add_source(task, avsrc_source(a), ...);      // one avsrc per task
 *   ...
 *   avsrc_free(a);                                       // after the task
 *
 * What is read. spec is a local directory or an s3://bucket/prefix, naming either an output
 * root (then the tables of the kind are taken under it: raw/log-request; etl/joined_impression
 * and etl/joined_action; raw/log-user-user), or a table directory, or a partition under one
 * (then every part under it). Parts are the files ending in .avro; hidden names (a segment
 * starting with '.', so in-progress and staged parts) are skipped. Every part's header schema
 * must be the one logproc writes for the kind's record type (avro_schema.h / schemas/): another
 * schema is an error naming the file (a wrong directory), not a bad record.
 *
 * Order. Parts are ordered by their partition (dt=YYYY-MM-DD[/hour=HH], UTC; parts outside a
 * partition come first), then, for parts named part-<run>-<task>-<commit>-<seq>, by commit and
 * sequence (a commit's parts hold records of about the same time), then by name. Records are merged
 * across the open parts by record time with a heap (ties: the part listed first); a part is opened
 * once the next record's time reaches its partition's start minus the lookahead, or when nothing
 * else is open. A part holds its records in write (Kafka append) order, which is not quite
 * record-time order, so the merged stream then passes a reorder heap that holds each record until
 * one of at least reorder_ms later has been read (ties keep the merge order). So the job sees the
 * records in event-time order as long as no record is more than reorder_ms behind a record written
 * before it in its part, and none lies more than the lookahead after its partition's start.
 * Limits: at most max_open parts are open at once (and, for S3, at most max_held_bytes of
 * downloaded parts are held): a due part waits for an open one to end, which keeps the order
 * while the parts that overlap in time fit (about one per writing task and commit); a part
 * opened after a newer record was returned is counted (avsrc_stats.late_parts) and logged
 * once. The reorder heap holds at most max_reorder_bytes; when full, its oldest record goes on
 * early (avsrc_stats.reorder_full, logged once).
 *
 * Records. Each datum is decoded (avro_decode.h) and packed to the protobuf bytes the Kafka
 * source would give, with the Kafka key the live topic carries
 * (recfile_make_key(platform_id, log_user_id)) and the record time:
 *   - LogRequest: timing.event_api_timestamp (the Kafka append time is not archived);
 *   - JoinedEvent: the event's log timestamp (timing.log_timestamp, else the action's, else the
 *     impression's), which is the record time flat-output's joined-event topic gives a joined
 *     impression; a joined action's topic record carries the action's Kafka append time
 *     instead (not archived); key: ids.platform_id and ids.log_user_id;
 *   - LogUserUser: event_api_timestamp; the value is the datum itself (the log-user-user topic's
 *     value is the same Avro binary datum); key: platform_id and log_user_id.
 * A datum that does not decode, a block that is truncated or fails its codec, or a packed
 * record over max_record_bytes is a bad span (RT_SOURCE_BAD): rt_source.name is the part file's
 * path while the span is out (the task names the invalid record's source by it), the error
 * names the block's byte offset in that file and the datum, and the offset is the position
 * figure (below, so a checkpoint taken with the span pending restores correctly); the rest of
 * the block is skipped and the source goes on.
 *
 * Sharding. With nshards > 1 only the records whose key falls in `shard` (rt_hash_bytes(key) %
 * nshards, the record-file source's rule) are returned; bad spans go to shard 0. Each avsrc is
 * an independent reader: open the same spec once per task.
 *
 * Position. rt_source.position is a monotone figure: the bytes of the parts' blocks read so far
 * plus the records and bad spans returned (a record's offset is the figure before it, so each
 * record has its own). avsrc_total_bytes is the parts' total size (for progress); avsrc_seek
 * continues after a checkpoint at such a position by replaying the merge from the start and
 * skipping (the merge is deterministic for the same parts).
 *
 * Memory: the reorder heap's copies (at most max_reorder_bytes), and per open part a local
 * file mapped (the kernel pages it) or an S3 object held (downloaded one object at a time,
 * each at most max_object_bytes, all at most max_held_bytes), plus its inflated block
 * (at most AVDEC_DEFAULT_MAX_BLOCK_BYTES) and its packed record (at most max_record_bytes).
 * Not thread-safe: one avsrc per task thread.
 */
#ifndef LOGPROC_AVRO_SOURCE_H
#define LOGPROC_AVRO_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "connectors/objstore.h"
#include "runtime/task.h"

/* Defaults (0 in avsrc_config). */
#define AVSRC_DEFAULT_MAX_OPEN 128
#define AVSRC_DEFAULT_MAX_OBJECT_BYTES ((size_t)1 << 30)
#define AVSRC_DEFAULT_MAX_HELD_BYTES ((size_t)2 << 30)
#define AVSRC_DEFAULT_MAX_RECORD_BYTES (1024 * 1024)
/* Lookahead by kind: a LogRequest's record time is its partition time, so none is needed; a
 * joined event's log timestamp may follow its (event API time) partition by client delays. */
#define AVSRC_DEFAULT_LOOKAHEAD_JOINED_MS (3600 * 1000)
/* Records are held back until a record this much newer has been read (so records written up
 * to this far out of order come out sorted), within a byte limit. */
#define AVSRC_DEFAULT_REORDER_MS 10000
#define AVSRC_DEFAULT_MAX_REORDER_BYTES ((size_t)256 << 20)
/* Parts listed under one spec (a day of hourly partitions from 64 tasks with a checkpoint a
 * minute is about 92K parts: the limit leaves room for that). */
#define AVSRC_MAX_PARTS 1000000

typedef enum avsrc_kind {
    AVSRC_LOG_REQUEST,   /* raw/log-request: event.LogRequest */
    AVSRC_JOINED_EVENT,  /* etl/joined_impression + etl/joined_action: event.JoinedEvent */
    AVSRC_LOG_USER_USER, /* raw/log-user-user: the LogUserUser record (schemas/) */
} avsrc_kind;

typedef struct avsrc_config {
    const char *spec; /* directory or s3://bucket/prefix (copied) */
    const char *flag; /* the flag that named it, for errors ("source") */
    avsrc_kind kind;
    const objstore_config *s3; /* for s3:// (NULL: from the environment) */
    size_t max_record_bytes;   /* packed record limit (--maxRecordBytes); 0: 1 MiB */
    uint32_t shard, nshards;   /* key shard to read; nshards 0 or 1: every record */
    size_t max_open;           /* parts open at once; 0: AVSRC_DEFAULT_MAX_OPEN */
    size_t max_object_bytes;   /* largest S3 part; 0: AVSRC_DEFAULT_MAX_OBJECT_BYTES */
    size_t max_held_bytes;     /* S3 parts held at once; 0: AVSRC_DEFAULT_MAX_HELD_BYTES */
    int64_t lookahead_ms;      /* 0: the kind's default; < 0: none */
    int64_t reorder_ms;        /* 0: AVSRC_DEFAULT_REORDER_MS; < 0: no reordering */
    size_t max_reorder_bytes;  /* 0: AVSRC_DEFAULT_MAX_REORDER_BYTES */
} avsrc_config;

typedef struct avsrc avsrc;

/* 1 if spec names tables rather than a record file: an s3:// URL or a directory. */
int avsrc_spec_is_tables(const char *spec);

/*
 * Lists the parts (for a local spec, also reads and checks every part's header; for S3, the
 * first part is checked when it is opened) and prepares the merge. Returns 0 with *out, or -1
 * with err naming the flag, the spec and what was looked for (no parts found, a foreign schema,
 * a listing or S3 error, over AVSRC_MAX_PARTS parts). Cost: one listing (S3: paged LIST
 * requests), plus one header read per local part.
 */
int avsrc_open(const avsrc_config *cfg, avsrc **out, char *err, size_t errlen);

/* The rt_source to give a task (owned by a; finite; name = the spec as given, partition -1). */
rt_source *avsrc_source(avsrc *a);

/* Total bytes of the listed parts (the end of the position figure, roughly). */
uint64_t avsrc_total_bytes(const avsrc *a);

/* Number of part files listed. */
size_t avsrc_parts(const avsrc *a);

/* Skips to a position from rt_source.position (a checkpoint's next offset) on a fresh avsrc:
 * replays the merge without returning records until the next one's offset reaches it. Returns 0
 * or -1 with err (a read failure, or position past the end). Cost: reading everything before. */
int avsrc_seek(avsrc *a, int64_t position, char *err, size_t errlen);

typedef struct avsrc_stats {
    uint64_t records;           /* good records returned */
    uint64_t bad;               /* bad spans returned */
    uint64_t skipped_shard;     /* records of other shards */
    uint64_t late_parts;        /* parts whose first record is older than one already returned
                                   (opened late: more parts overlap in time than may be open) */
    uint64_t reorder_full;      /* records let go early: the reorder window's bytes were full */
    uint64_t enum_unrecognized; /* UNRECOGNIZED enum symbols read (numbers lost) */
    uint64_t downloads;         /* S3 objects fetched */
} avsrc_stats;
void avsrc_get_stats(const avsrc *a, avsrc_stats *out);

/* Frees a, its open parts and its store (NULL is a no-op). */
void avsrc_free(avsrc *a);

#endif
