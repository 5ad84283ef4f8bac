#include "jobs/counter/counter_commands.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/text.h"
#include "jobs/counter/counter_records.h"
#include "jobs/counter/counter_tables.h"
#include "runtime/log.h"
#include "runtime/state.h"

#define ROW_FORMAT_KEY "\x1d\x1frow_format"
#define FEATURE_IDS_KEY                                                                            \
    "\x1d\x1f"                                                                                     \
    "feature_ids"

/* ---- metadata ---- */

int counter_metadata_commands(unsigned tables, bool wipe, counter_command_fn fn, void *ctx)
{
    const char *argv[4];
    size_t len[4];
    int rc;
#define CALL(n) ((rc = fn(ctx, (n), argv, len)) != 0)
#define ARG(i, s, l) (argv[i] = (s), len[i] = (l))
    ARG(0, "PING", 4);
    if (CALL(1)) return rc;
    if (wipe) {
        ARG(0, "FLUSHDB", 7);
        if (CALL(1)) return rc;
    }
    rt_buf csv;
    rt_buf_init(&csv, 1 << 20);
    for (int t = 0; t < CTABLE_COUNT; t++) {
        if (!(tables & (1u << t))) continue;
        const ctable_info *ti = ctable_get((ctable_id)t);
        ARG(0, "HSET", 4);
        ARG(1, ROW_FORMAT_KEY, strlen(ROW_FORMAT_KEY));
        ARG(2, ti->name, strlen(ti->name));
        ARG(3, ti->row_format, strlen(ti->row_format));
        if (CALL(4)) goto out;
        ARG(0, "PERSIST", 7);
        if (CALL(2)) goto out;
        rt_buf_reset(&csv);
        if (ctable_feature_ids((ctable_id)t, &csv)) {
            rc = -1;
            goto out;
        }
        ARG(0, "HSET", 4);
        ARG(1, FEATURE_IDS_KEY, strlen(FEATURE_IDS_KEY));
        ARG(2, ti->name, strlen(ti->name));
        ARG(3, (const char *)csv.data, csv.len);
        if (CALL(4)) goto out;
        ARG(0, "PERSIST", 7);
        if (CALL(2)) goto out;
    }
    rc = 0;
out:
    rt_buf_free(&csv);
    return rc;
#undef CALL
#undef ARG
}

/* ---- results to commands ---- */

typedef struct to_commands {
    counter_commands_config cfg;
    rt_buf key, field;
    rt_counter *bad;
} to_commands;

static int tc_open(rt_op *op)
{
    to_commands *c = rt_op_self(op);
    return rt_op_counter(op, "numBadResults", &c->bad);
}

/* Emits one command for field fid of the rendered key. */
static int emit_command(rt_op *op, to_commands *c, ctable_id t, const ctable_key *k, int64_t fid,
                        bool del, int64_t value, int64_t ttl, int64_t ts)
{
    rt_buf_reset(&c->field);
    if (ctable_redis_field(t, k, fid, &c->field))
        return rt_op_fail(op, "a Redis field over 64 KiB");
    counter_command cmd = {
        .key = c->key.data,
        .key_len = c->key.len,
        .field = c->field.data,
        .field_len = c->field.len,
        .del = del,
        .value = value,
        .ttl = del ? 0 : ttl,
    };
    if (del && c->cfg.faithful_zero_counts) {
        /* the reference sends no HDEL: the field keeps its last value, the key is persisted */
        cmd.field = NULL;
        cmd.field_len = 0;
        cmd.ttl = -1;
    }
    rt_record out = {.ts = ts, .type = REC_COUNTER_COMMAND, .data = &cmd};
    return rt_emit(op, 0, &out);
}

static int tc_process(rt_op *op, int input, const rt_record *rec)
{
    to_commands *c = rt_op_self(op);
    int table;
    const uint8_t *kb;
    size_t kl;
    if (rec->type == REC_COUNTER_WINDOW) {
        const counter_window_result *r = rec->data;
        table = r->table, kb = r->key, kl = r->key_len;
    } else if (rec->type == REC_COUNTER_LAST_TIME) {
        const counter_last_time_result *r = rec->data;
        table = r->table, kb = r->key, kl = r->key_len;
    } else {
        return rt_op_fail(op, "unexpected record type %d", rec->type);
    }
    const ctable_info *ti = ctable_get((ctable_id)table);
    ctable_key k;
    if (!ti || ctable_key_decode((ctable_id)table, kb, kl, &k)) {
        rt_counter_add(c->bad, 1);
        return rt_op_fail(op, "a result with a malformed key (table %d)", table);
    }
    rt_buf_reset(&c->key);
    if (ctable_redis_key((ctable_id)table, &k, &c->key))
        return rt_op_fail(op, "a Redis key over 64 KiB");
    if (rec->type == REC_COUNTER_WINDOW) {
        const counter_window_result *r = rec->data;
        int window = ctable_window(r->bucket, r->unit_ms);
        if (window < 0)
            return rt_op_fail(op, "no CountWindow for a bucket of %d x %" PRId64 " ms", r->bucket,
                              r->unit_ms);
        int64_t ttl = table == CTABLE_PLATFORM_DEVICE ? -1 : r->ttl;
        return emit_command(op, c, (ctable_id)table, &k,
                            ctable_fid(ti->count_type, k.metric, window), r->count == 0, r->count,
                            ttl, rec->ts);
    }
    const counter_last_time_result *r = rec->data;
    bool zero = r->count == 0;
    if (emit_command(op, c, (ctable_id)table, &k,
                     ctable_fid(ti->count_type, k.metric, CWINDOW_DAY_90), zero, r->count, r->ttl,
                     rec->ts))
        return -1;
    return emit_command(op, c, (ctable_id)table, &k,
                        ctable_fid(ti->hours_ago_type, k.metric, CWINDOW_NONE), zero, r->last_ts,
                        ti->query ? 0 : r->ttl, rec->ts);
}

static void tc_close(rt_op *op)
{
    to_commands *c = rt_op_self(op);
    rt_buf_free(&c->key);
    rt_buf_free(&c->field);
    free(c);
}

static const rt_op_vtbl to_commands_vtbl = {
    .open = tc_open, .process = tc_process, .close = tc_close};

int counter_commands_op_add(rt_graph *g, const char *uid, const counter_commands_config *cfg,
                            rt_op **out)
{
    to_commands *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->cfg = *cfg;
    rt_buf_init(&c->key, 1 << 20);
    rt_buf_init(&c->field, 1 << 20);
    if (rt_graph_add_op(g, uid, NULL, &to_commands_vtbl, c, 1, 1, out)) {
        free(c);
        return -1;
    }
    return 0;
}

/* ---- backfill buffer ---- */

typedef struct backfill {
    counter_backfill_config cfg;
    rt_kv *cache;
    rt_buf scratch;
} backfill;

/* State key: varint key length, key, field. Value: del (1), value (8), ttl (8). */
static int cache_key(rt_buf *b, const counter_command *c)
{
    rt_buf_reset(b);
    return rt_buf_put_bytes(b, c->key, c->key_len) || rt_buf_append(b, c->field, c->field_len) ? -1
                                                                                               : 0;
}

static int bf_open(rt_op *op)
{
    backfill *b = rt_op_self(op);
    return rt_kv_new(op, "commands", &b->cache);
}

static int bf_process(rt_op *op, int input, const rt_record *rec)
{
    backfill *b = rt_op_self(op);
    const counter_command *c = rec->data;
    if (cache_key(&b->scratch, c)) return rt_op_fail(op, "a command key over the buffer limit");
    if (rec->ts >= b->cfg.start_ms) {
        rt_kv_delete(b->cache, b->scratch.data, b->scratch.len);
        return rt_emit(op, 0, rec);
    }
    uint8_t v[17];
    v[0] = c->del ? 1 : (c->field ? 0 : 2); /* 2: a bare TTL command (faithful zero counts) */
    memcpy(v + 1, &c->value, 8);
    memcpy(v + 9, &c->ttl, 8);
    if (rt_kv_put(b->cache, b->scratch.data, b->scratch.len, v, sizeof v)) return -1;
    int64_t B = b->cfg.buffer_ms;
    return rt_timer_register(op, rec->ts - rec->ts % B + B + b->cfg.offset_ms, b->scratch.data,
                             b->scratch.len);
}

static int bf_timer(rt_op *op, int64_t T, const uint8_t *key, size_t klen)
{
    backfill *b = rt_op_self(op);
    size_t vlen = 0;
    uint8_t *v = rt_kv_get(b->cache, key, klen, &vlen);
    if (!v || vlen != 17) return 0;
    rt_buf_reader rd;
    rt_buf_reader_init(&rd, key, klen);
    const uint8_t *k;
    size_t kl;
    if (rt_buf_read_bytes(&rd, &k, &kl)) return rt_op_fail(op, "corrupt backfill cache key");
    counter_command c = {.key = k, .key_len = kl, .del = v[0] == 1};
    if (v[0] != 2) {
        c.field = rd.p;
        c.field_len = rt_buf_reader_left(&rd);
    }
    memcpy(&c.value, v + 1, 8);
    memcpy(&c.ttl, v + 9, 8);
    /* the key bytes are the timer's copy, so the entry can go before the emit */
    rt_kv_delete(b->cache, key, klen);
    rt_record out = {.ts = T, .type = REC_COUNTER_COMMAND, .data = &c};
    return rt_emit(op, 0, &out);
}

static void bf_close(rt_op *op)
{
    backfill *b = rt_op_self(op);
    rt_buf_free(&b->scratch);
    free(b);
}

static const rt_op_vtbl backfill_vtbl = {
    .open = bf_open,
    .process = bf_process,
    .on_timer = bf_timer,
    .close = bf_close,
};

int counter_backfill_op_add(rt_graph *g, const char *uid, const counter_backfill_config *cfg,
                            rt_op **out)
{
    backfill *b = calloc(1, sizeof *b);
    if (!b) return -1;
    b->cfg = *cfg;
    rt_buf_init(&b->scratch, 1 << 20);
    if (rt_graph_add_op(g, uid, NULL, &backfill_vtbl, b, 1, 1, out)) {
        free(b);
        return -1;
    }
    return 0;
}

/* ---- output gate ---- */

typedef struct out_gate {
    int64_t start, stop;
    rt_counter *filtered;
} out_gate;

static int og_open(rt_op *op)
{
    out_gate *o = rt_op_self(op);
    return rt_op_counter(op, "numFiltered", &o->filtered);
}

static int og_process(rt_op *op, int input, const rt_record *rec)
{
    out_gate *o = rt_op_self(op);
    if (rec->ts < o->start || (o->stop >= 0 && rec->ts > o->stop)) {
        rt_counter_add(o->filtered, 1);
        return 0;
    }
    return rt_emit(op, 0, rec);
}

static void og_close(rt_op *op)
{
    free(rt_op_self(op));
}

static const rt_op_vtbl out_gate_vtbl = {.open = og_open, .process = og_process, .close = og_close};

int counter_output_gate_op_add(rt_graph *g, const char *uid, int64_t start_ms, int64_t stop_ms,
                               rt_op **out)
{
    out_gate *o = calloc(1, sizeof *o);
    if (!o) return -1;
    o->start = start_ms;
    o->stop = stop_ms;
    if (rt_graph_add_op(g, uid, NULL, &out_gate_vtbl, o, 1, 1, out)) {
        free(o);
        return -1;
    }
    return 0;
}

/* ---- the sink ---- */

typedef struct sink {
    counter_sink_config cfg;
    char *url, *path;
    redis_sink *rs;
    redis_sink_stats reported;
    rt_counter *m_commands, *m_batches, *m_retries, *m_errors;
    int64_t last_flush;
    int64_t charged; /* bytes of the sink's buffer charged to the operator */
    int closed, failed;
    int started;  /* the start-up metadata is written (before the first command) */
    int restored; /* the task was restored from a checkpoint: --wipe does not apply */
} sink;

/* Charges the growth (or releases the shrinkage) of the sink's command buffer to the operator
 * and the process budget. The buffer grows by doubling, so this is a compare per command. */
static int account(rt_op *op, sink *s)
{
    int64_t now = (int64_t)redis_sink_buffer_bytes(s->rs);
    if (now > s->charged) {
        if (rt_op_mem_charge(op, now - s->charged)) {
            s->failed = 1;
            return -1;
        }
    } else if (now < s->charged) {
        rt_op_mem_release(op, s->charged - now);
    }
    s->charged = now;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report(sink *s)
{
    redis_sink_stats st;
    redis_sink_get_stats(s->rs, &st);
    rt_counter_add(s->m_commands, st.commands - s->reported.commands);
    rt_counter_add(s->m_batches, st.batches - s->reported.batches);
    rt_counter_add(s->m_retries, st.retries - s->reported.retries);
    rt_counter_add(s->m_errors, st.reply_errors - s->reported.reply_errors);
    s->reported = st;
}

static int sink_fail(rt_op *op, sink *s, const char *err)
{
    s->failed = 1;
    return rt_op_fail(op, "%s", err);
}

static int metadata_one(void *ctx, int argc, const char *const *argv, const size_t *len)
{
    sink *s = ctx;
    char err[512];
    if (redis_sink_command(s->rs, argc, argv, len, err, sizeof err)) {
        log_error("counter", "start-up metadata: %s", err);
        return -1;
    }
    return 0;
}

static int sink_open(rt_op *op)
{
    sink *s = rt_op_self(op);
    if (rt_op_counter(op, "redisCommands", &s->m_commands) ||
        rt_op_counter(op, "redisBatches", &s->m_batches) ||
        rt_op_counter(op, "redisRetries", &s->m_retries) ||
        rt_op_counter(op, "redisReplyErrors", &s->m_errors))
        return -1;
    char err[512];
    s->cfg.redis.url = s->url;
    s->cfg.redis.path = s->path;
    if (redis_sink_new(&s->cfg.redis, &s->rs, err, sizeof err)) return sink_fail(op, s, err);
    log_info("counter", "redis sink target=%s", redis_sink_target(s->rs));
    s->last_flush = mono_ms();
    return account(op, s);
}

/* The start-up metadata, written before anything else reaches Redis: after open and a possible
 * restore, so --wipe (FLUSHDB) applies to a fresh start only. A restored task's counts that
 * its replay does not rewrite would be lost to a wipe. */
static int ensure_started(rt_op *op, sink *s)
{
    if (s->started) return 0;
    s->started = 1;
    if (!s->cfg.write_metadata) return 0;
    char err[512];
    int wipe = s->cfg.wipe && !s->restored;
    if (counter_metadata_commands(s->cfg.tables, wipe, metadata_one, s) ||
        redis_sink_flush(s->rs, err, sizeof err)) {
        report(s);
        return sink_fail(op, s, "writing the start-up metadata failed");
    }
    log_info("counter", "start-up metadata written target=%s wipe=%s%s", redis_sink_target(s->rs),
             wipe ? "true" : "false", s->cfg.wipe && !wipe ? " (restored: no wipe)" : "");
    report(s);
    return account(op, s);
}

static int put_dec(char *buf, int64_t v)
{
    return (int)text_i64_dec(buf, v);
}

static int sink_process(rt_op *op, int input, const rt_record *rec)
{
    sink *s = rt_op_self(op);
    if (ensure_started(op, s)) return -1;
    const counter_command *c = rec->data;
    char err[512], num[24];
    const char *argv[4];
    size_t len[4];
    argv[1] = (const char *)c->key;
    len[1] = c->key_len;
    if (c->field) {
        argv[2] = (const char *)c->field;
        len[2] = c->field_len;
        int rc;
        if (c->del) {
            argv[0] = "HDEL", len[0] = 4;
            rc = redis_sink_command(s->rs, 3, argv, len, err, sizeof err);
        } else {
            argv[0] = "HSET", len[0] = 4;
            argv[3] = num;
            len[3] = (size_t)put_dec(num, c->value);
            rc = redis_sink_command(s->rs, 4, argv, len, err, sizeof err);
        }
        if (rc) return sink_fail(op, s, err);
    }
    if (c->ttl > 0) {
        argv[0] = "EXPIRE", len[0] = 6;
        argv[2] = num;
        len[2] = (size_t)put_dec(num, c->ttl);
        if (redis_sink_command(s->rs, 3, argv, len, err, sizeof err)) return sink_fail(op, s, err);
    } else if (c->ttl < 0) {
        argv[0] = "PERSIST", len[0] = 7;
        if (redis_sink_command(s->rs, 2, argv, len, err, sizeof err)) return sink_fail(op, s, err);
    }
    return account(op, s);
}

static int sink_watermark(rt_op *op, int64_t wm)
{
    sink *s = rt_op_self(op);
    if (ensure_started(op, s)) return -1;
    int64_t now = mono_ms();
    if (now - s->last_flush < s->cfg.flush_interval_ms) return 0;
    s->last_flush = now;
    char err[512];
    if (redis_sink_flush(s->rs, err, sizeof err)) return sink_fail(op, s, err);
    report(s);
    return 0;
}

static int sink_finish(rt_op *op)
{
    sink *s = rt_op_self(op);
    char err[512];
    if (ensure_started(op, s)) return -1;
    s->closed = 1;
    if (redis_sink_close(s->rs, err, sizeof err)) return sink_fail(op, s, err);
    report(s);
    redis_sink_stats st;
    redis_sink_get_stats(s->rs, &st);
    log_info("counter",
             "redis sink done target=%s commands=%" PRIu64 " batches=%" PRIu64 " retries=%" PRIu64
             " replyErrors=%" PRIu64,
             redis_sink_target(s->rs), st.commands, st.batches, st.retries, st.reply_errors);
    return 0;
}

static void sink_close(rt_op *op)
{
    sink *s = rt_op_self(op);
    if (s->rs && !s->closed && !s->failed) {
        /* stopped without drain: what was produced up to the last watermark still goes out */
        char err[512];
        if (redis_sink_close(s->rs, err, sizeof err))
            log_error("counter", "closing the redis sink: %s", err);
    }
    if (s->charged) rt_op_mem_release(op, s->charged);
    redis_sink_free(s->rs);
    free(s->url);
    free(s->path);
    free(s);
}

/* A checkpoint: every command before it must be applied before the checkpoint is durable (a
 * restore does not emit them again). Values are absolute, so commands after it that a restore
 * replays rewrite the same values. No state of its own. */
static int sink_snapshot(rt_op *op, rt_buf *out)
{
    sink *s = rt_op_self(op);
    /* one byte, so a restore tells the sink it is not a fresh start */
    if (rt_buf_put_u8(out, 1)) return sink_fail(op, s, "snapshot: out of memory");
    if (s->closed) return 0;
    if (ensure_started(op, s)) return -1;
    char err[512];
    if (redis_sink_flush(s->rs, err, sizeof err)) return sink_fail(op, s, err);
    report(s);
    return 0;
}

static int sink_restore(rt_op *op, const uint8_t *bytes, size_t len)
{
    (void)bytes, (void)len;
    sink *s = rt_op_self(op);
    s->restored = 1;
    return 0;
}

static const rt_op_vtbl sink_vtbl = {
    .open = sink_open,
    .process = sink_process,
    .on_watermark = sink_watermark,
    .finish = sink_finish,
    .snapshot = sink_snapshot,
    .restore = sink_restore,
    .close = sink_close,
};

int counter_sink_op_add(rt_graph *g, const char *uid, const counter_sink_config *cfg, rt_op **out)
{
    sink *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->cfg = *cfg;
    s->url = cfg->redis.url ? strdup(cfg->redis.url) : NULL;
    s->path = cfg->redis.path ? strdup(cfg->redis.path) : NULL;
    if ((cfg->redis.url && !s->url) || (cfg->redis.path && !s->path) ||
        rt_graph_add_op(g, uid, NULL, &sink_vtbl, s, 1, 0, out)) {
        free(s->url);
        free(s->path);
        free(s);
        return -1;
    }
    return 0;
}

void counter_sink_op_stats(rt_op *op, redis_sink_stats *out)
{
    sink *s = rt_op_self(op);
    if (s->rs)
        redis_sink_get_stats(s->rs, out);
    else
        memset(out, 0, sizeof *out);
}
