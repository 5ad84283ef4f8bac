/* From counting results to Redis (spec/other-jobs.md §B.6, §B.10, §B.11): the start-up metadata,
 * the mapping of results to hash commands, the backfill buffer, the output gate, and the sink
 * operator that writes the commands through connectors/redis_sink.
 *
 *   results -> to-redis-commands -> [buffer-counter-backfill] -> filter-counter-output
 *           -> sink-redis-counter
 *
 * Mapping (§B.10, with the Resolutions' deletes): a count c of a window result is
 * `HSET key field c` (then EXPIRE key ttl when the bucket has one; platform-device keys get
 * PERSIST: global keys never expire), and a zero count is `HDEL key field` with the key's TTL
 * left alone. A last-time result writes its 90-day count field the same way (ttl 8035200) and its
 * timestamp field `HSET key hours_ago_fid <last time ms>` (ttl 8035200 for the event tables, none
 * for the query tables), or HDEL for a zero count. With faithful_zero_counts the reference's actual
 * behaviour replaces every HDEL: the field keeps its last value and the key is PERSISTed. */
#ifndef LOGPROC_COUNTER_COMMANDS_H
#define LOGPROC_COUNTER_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/redis_sink.h"
#include "runtime/graph.h"

/* ---- start-up metadata (§B.6) ---- */

/* Calls fn once per logical command of prepareSink, in order: PING; FLUSHDB if wipe; then per
 * enabled table (bit t of tables = ctable_id t) `HSET \x1d\x1frow_format <table> <format>`,
 * `PERSIST \x1d\x1frow_format`, `HSET \x1d\x1ffeature_ids <table> <csv>`,
 * `PERSIST \x1d\x1ffeature_ids`. Returns 0, or fn's first non-zero status, or -1 (out of memory).
 */
typedef int (*counter_command_fn)(void *ctx, int argc, const char *const *argv,
                                  const size_t *argvlen);
int counter_metadata_commands(unsigned tables, bool wipe, counter_command_fn fn, void *ctx);

/* ---- results to commands ---- */

typedef struct counter_commands_config {
    bool faithful_zero_counts; /* --counterFaithfulZeroCounts */
} counter_commands_config;

/* Adds to-redis-commands: input REC_COUNTER_WINDOW / REC_COUNTER_LAST_TIME, output
 * REC_COUNTER_COMMAND (1, 2 or 4 per result, ts kept). Returns 0 or -1. */
int counter_commands_op_add(rt_graph *g, const char *uid, const counter_commands_config *cfg,
                            rt_op **out);

/* ---- backfill buffer (§B.11.1) ---- */

typedef struct counter_backfill_config {
    int64_t buffer_ms; /* --counterBackfillBuffer (> 0) */
    int64_t start_ms;  /* the job's wall-clock start */
    int64_t offset_ms; /* added to every timer: (buffer / tasks) * task index for index > 1 */
} counter_backfill_config;

/* Adds buffer-counter-backfill: a command older than start_ms replaces the one cached for its
 * (key, field) and sets a timer at ts - ts mod B + B + offset; the timer emits the cached command
 * (ts = the timer's time) and clears it. A command at or after start_ms is emitted at once and
 * clears the cache of its (key, field). Returns 0 or -1. */
int counter_backfill_op_add(rt_graph *g, const char *uid, const counter_backfill_config *cfg,
                            rt_op **out);

/* ---- output gate (§B.11.2) ---- */

/* Adds filter-counter-output: keeps commands with start_ms <= ts and (stop_ms < 0 or
 * ts <= stop_ms); counts the others (numFiltered). Returns 0 or -1. */
int counter_output_gate_op_add(rt_graph *g, const char *uid, int64_t start_ms, int64_t stop_ms,
                               rt_op **out);

/* ---- the sink ---- */

typedef struct counter_sink_config {
    redis_sink_config redis;   /* url (server) or path (file); borrowed until open */
    bool write_metadata;       /* this task writes the start-up metadata (one task per job) */
    bool wipe;                 /* FLUSHDB first */
    unsigned tables;           /* metadata tables, bit per ctable_id */
    int64_t flush_interval_ms; /* a partial batch waits at most this long (checked at watermarks) */
} counter_sink_config;

/* Adds sink-redis-counter: opens the Redis sink (blocking until the server answers, or the retry
 * limit), writes the metadata when asked, then turns each REC_COUNTER_COMMAND into HSET/HDEL
 * plus EXPIRE/PERSIST. Flushes when a batch is full, at watermarks once flush_interval_ms has
 * passed, at finish (then publishes the file) and at close without drain. Metrics: redisCommands,
 * redisBatches, redisRetries, redisReplyErrors. Returns 0 or -1. */
int counter_sink_op_add(rt_graph *g, const char *uid, const counter_sink_config *cfg, rt_op **out);

/* The sink operator's statistics (for the run summary and tests). */
void counter_sink_op_stats(rt_op *op, redis_sink_stats *out);

#endif
