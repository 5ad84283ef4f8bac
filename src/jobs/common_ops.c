#include "jobs/common_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "formats/pb_projection.h"
#include "formats/pb_util.h"
#include "jobs/avro_table.h"
#include "jobs/job_flags.h"
#include "runtime/log.h"
#include "runtime/state.h"
#include "runtime/task.h"

int job_key_platform_id(uint64_t platform_id, const char *id, uint8_t *buf, size_t cap)
{
    size_t n = id ? strlen(id) : 0;
    if (8 + n > cap) return -1;
    job_put_le64(buf, platform_id);
    if (n) memcpy(buf + 8, id, n);
    return (int)(8 + n);
}

/* ============================== decode ============================== */

typedef struct decode_op {
    decode_op_config cfg;
    pb_projection *proj; /* NULL: unpack every field */
    pb_arena *arena;
    rt_counter *dropped_end_at, *invalid;
    char err[512];
} decode_op;

static int decode_open(rt_op *op)
{
    decode_op *d = rt_op_self(op);
    if (rt_op_counter(op, "numRecordsDroppedEndAt", &d->dropped_end_at) ||
        rt_op_counter(op, "numInvalidRecords", &d->invalid))
        return rt_op_fail(op, "out of memory");
    rt_op_set_port_name(op, 1, "invalid_record");
    if (d->cfg.projection && !d->proj &&
        pb_projection_new(d->cfg.desc, d->cfg.projection, &d->proj, d->err, sizeof d->err))
        return rt_op_fail(op, "%s", d->err);
    return 0;
}

static int emit_invalid(rt_op *op, const rt_source_record *src, const char *error)
{
    decode_op *d = rt_op_self(op);
    job_invalid_record inv = {
        .source = src->source,
        .partition = src->partition,
        .offset = src->offset,
        .timestamp = src->ts,
        .error = error,
        .raw = src->value,
        .raw_len = src->value_len,
        .raw_length = (int64_t)(src->error ? src->raw_length : src->value_len),
    };
    if (inv.raw_len > d->cfg.max_record_bytes) inv.raw_len = d->cfg.max_record_bytes;
    rt_counter_add(d->invalid, 1);
    rt_record r = {.ts = src->ts >= 0 ? src->ts : 0, .type = REC_INVALID, .data = &inv};
    return rt_emit(op, 1, &r);
}

static int decode_process(rt_op *op, int input, const rt_record *rec)
{
    decode_op *d = rt_op_self(op);
    const rt_source_record *src = rec->data;
    if (rec->type == RT_TYPE_SOURCE_BAD) return emit_invalid(op, src, src->error);
    if (rec->type != RT_TYPE_SOURCE) return rt_op_fail(op, "unexpected record type %d", rec->type);
    if (d->cfg.end_at_ts > 0 && src->ts >= d->cfg.end_at_ts) {
        rt_counter_add(d->dropped_end_at, 1);
        return 0;
    }
    if (src->value_len > d->cfg.max_record_bytes) {
        snprintf(d->err, sizeof d->err, "value length %zu over --maxRecordBytes %zu",
                 src->value_len, d->cfg.max_record_bytes);
        return emit_invalid(op, src, d->err);
    }
    ProtobufCMessage *m;
    int rc;
    if (pb_unpack_checked_as(d->cfg.desc,
                             d->proj ? pb_projection_descriptor(d->proj) : d->cfg.desc,
                             src->value, src->value_len, pb_arena_allocator(d->arena), &m, d->err,
                             sizeof d->err)) {
        if (pb_arena_cap_hit(d->arena))
            snprintf(d->err, sizeof d->err, "%s needs more than the decode arena's %zu bytes",
                     d->cfg.desc->name, pb_arena_held(d->arena));
        rc = emit_invalid(op, src, d->err);
    } else {
        if (d->proj) pb_projection_finish(d->proj, m);
        rt_record r = {.ts = src->ts, .type = d->cfg.rec_type, .data = m,
                       .key = src->key, .key_len = src->key_len};
        rc = rt_emit(op, 0, &r);
    }
    pb_arena_reset(d->arena, 4 << 20);
    return rc;
}

static void decode_close(rt_op *op)
{
    decode_op *d = rt_op_self(op);
    pb_arena_free(d->arena);
    pb_projection_free(d->proj);
    free(d);
}

static const rt_op_vtbl decode_vtbl = {
    .open = decode_open, .process = decode_process, .close = decode_close,
};

int decode_op_add(rt_graph *g, const char *uid, const decode_op_config *cfg, rt_op **out)
{
    decode_op *d = calloc(1, sizeof *d);
    if (!d) return -1;
    d->cfg = *cfg;
    /* a decoded message takes a few times its wire size; the cap bounds a hostile record */
    d->arena = pb_arena_new(64 << 10, 8 * cfg->max_record_bytes + (1 << 20));
    if (!d->arena || rt_graph_add_op(g, uid, "decode", &decode_vtbl, d, 1, 2, out)) {
        pb_arena_free(d->arena);
        free(d);
        return -1;
    }
    return 0;
}

/* ============================== keep-first ============================== */

#define KEY_CAP 4096

typedef struct keep_first_op {
    keep_first_config cfg;
    rt_kv *seen;
    rt_counter *dropped;
    uint8_t key[KEY_CAP];
} keep_first_op;

static int keep_first_open(rt_op *op)
{
    keep_first_op *k = rt_op_self(op);
    if (rt_kv_new(op, "seen", &k->seen)) return -1;
    if (rt_op_counter(op, "numRecordsDeduped", &k->dropped)) return rt_op_fail(op, "out of memory");
    /* its timers only forget keys: the drain drops them with the table */
    rt_op_set_drain_discards_timers(op);
    /* forgetting ids early would let duplicates through: keep them under memory pressure */
    rt_op_set_no_early_release(op);
    return 0;
}

static int keep_first_process(rt_op *op, int input, const rt_record *rec)
{
    keep_first_op *k = rt_op_self(op);
    int n = k->cfg.key_fn(rec, k->key, sizeof k->key);
    if (n < 0) return rt_emit(op, 0, rec);
    /* State and timers hold the key's 128-bit hash, not the key: 16 bytes whatever the ids'
     * length, and two distinct keys collide with probability ~2^-128 per pair. */
    XXH128_hash_t h = XXH3_128bits(k->key, (size_t)n);
    uint8_t hk[16];
    memcpy(hk, &h.low64, 8);
    memcpy(hk + 8, &h.high64, 8);
    int created;
    if (rt_kv_upsert(k->seen, hk, sizeof hk, 0, NULL, &created)) return -1;
    if (!created) {
        rt_counter_add(k->dropped, 1);
        return 0;
    }
    /* one timer per newly seen key, never deleted: the key's entry is gone when it fires, so
     * (key, time) cannot be pending */
    if (rt_timer_register_new(op, rec->ts + k->cfg.retention_ms, hk, sizeof hk)) return -1;
    return rt_emit(op, 0, rec);
}

static int keep_first_timer(rt_op *op, int64_t time, const uint8_t *key, size_t key_len)
{
    keep_first_op *k = rt_op_self(op);
    rt_kv_delete(k->seen, key, key_len);
    return 0;
}

static void keep_first_close(rt_op *op)
{
    free(rt_op_self(op));
}

static const rt_op_vtbl keep_first_vtbl = {
    .open = keep_first_open, .process = keep_first_process, .on_timer = keep_first_timer,
    .close = keep_first_close,
};

int keep_first_op_add(rt_graph *g, const char *uid, const keep_first_config *cfg, rt_op **out)
{
    keep_first_op *k = calloc(1, sizeof *k);
    if (!k) return -1;
    k->cfg = *cfg;
    if (rt_graph_add_op(g, uid, "keep-first", &keep_first_vtbl, k, 1, 1, out)) {
        free(k);
        return -1;
    }
    return 0;
}

/* ============================== table sink ============================== */

typedef struct sink_op {
    sink_op_config cfg;
    char *dir;
    table_sink *sink;
    /* object-store requests, retries and failures (registered only for a store) */
    rt_counter *m_requests, *m_retries, *m_failures, *m_bytes;
    objstore_stats reported;
    rt_buf buf;
    int finished;
    char err[512];
} sink_op;

/* An s3:// table directory "s3://bucket/a/b" is the store s3://bucket and the key prefix "a/b";
 * its parts are staged under <staging>/<bucket>/a/b. Returns 1 when dir is such a URL. */
static int split_s3_dir(const char *dir, char *store, size_t store_cap, const char **prefix,
                        char *staging, size_t staging_cap)
{
    if (strncmp(dir, "s3://", 5)) return 0;
    const char *b = dir + 5, *slash = strchr(b, '/');
    int bl = slash ? (int)(slash - b) : (int)strlen(b);
    snprintf(store, store_cap, "s3://%.*s", bl, b);
    snprintf(staging, staging_cap, "%s/%.*s", job_output_staging_dir(), bl, b);
    *prefix = slash ? slash + 1 : "";
    return 1;
}

static int sink_open(rt_op *op)
{
    sink_op *s = rt_op_self(op);
    table_sink_config tc = {
        .dir = s->dir, .run_id = s->cfg.run_id, .task = s->cfg.task, .daily = s->cfg.daily,
        .unpartitioned = s->cfg.unpartitioned, .format = s->cfg.format,
    };
    char store[1100], staging[4096 + 1100];
    if (split_s3_dir(s->dir, store, sizeof store, &tc.dir, staging, sizeof staging)) {
        tc.store_url = store;
        tc.store_cfg = job_output_store_config();
        tc.staging_dir = staging;
    }
    if (table_sink_new(&tc, &s->sink, s->err, sizeof s->err)) return rt_op_fail(op, "%s", s->err);
    rt_buf_init(&s->buf, s->cfg.max_record_bytes + (64 << 10));
    if (tc.store_url &&
        (rt_op_counter(op, "sinkRequests", &s->m_requests) ||
         rt_op_counter(op, "sinkRetries", &s->m_retries) ||
         rt_op_counter(op, "sinkFailures", &s->m_failures) ||
         rt_op_counter(op, "sinkBytesWritten", &s->m_bytes)))
        return rt_op_fail(op, "out of memory");
    return 0;
}

/* Moves the store's counters into the operator's metrics (at each checkpoint and the end). */
static void sink_report(sink_op *s)
{
    objstore_stats st;
    if (!s->m_requests || !table_sink_store_stats(s->sink, &st)) return;
    rt_counter_add_1w(s->m_requests, st.requests - s->reported.requests);
    rt_counter_add_1w(s->m_retries, st.retries - s->reported.retries);
    rt_counter_add_1w(s->m_failures, st.failures - s->reported.failures);
    rt_counter_add_1w(s->m_bytes, st.bytes_up - s->reported.bytes_up);
    s->reported = st;
}

static int sink_process(rt_op *op, int input, const rt_record *rec)
{
    sink_op *s = rt_op_self(op);
    rt_buf_reset(&s->buf);
    int64_t pts = 0;
    int rc = s->cfg.encode(s->cfg.encode_ctx, rec, &s->buf, &pts);
    if (rc == 1) return 0;
    if (rc) return rt_op_fail(op, "encoding a record for %s failed (over %zu bytes?)", s->dir,
                              s->buf.limit);
    if (table_sink_write(s->sink, pts, s->buf.data, s->buf.len, s->err, sizeof s->err))
        return rt_op_fail(op, "%s", s->err);
    return 0;
}

/* Without checkpoints the end of input publishes; with them it leaves the last parts pending
 * for the final checkpoint, which publishes them when it is durable. */
static int sink_finish(rt_op *op)
{
    sink_op *s = rt_op_self(op);
    s->finished = 1;
    int rc = rt_graph_checkpointing(rt_op_graph(op))
                 ? table_sink_precommit(s->sink, s->err, sizeof s->err)
                 : table_sink_commit(s->sink, s->err, sizeof s->err);
    sink_report(s);
    return rc ? rt_op_fail(op, "%s", s->err) : 0;
}

/* A checkpoint: close the epoch's parts (pending) and record them. After finish they are
 * already closed; precommit again would only start an empty commit. */
static int sink_snapshot(rt_op *op, rt_buf *out)
{
    sink_op *s = rt_op_self(op);
    if (!s->finished && table_sink_precommit(s->sink, s->err, sizeof s->err))
        return rt_op_fail(op, "%s", s->err);
    sink_report(s);
    return table_sink_snapshot(s->sink, out);
}

static int sink_restore(rt_op *op, const uint8_t *bytes, size_t len)
{
    sink_op *s = rt_op_self(op);
    if (table_sink_restore(s->sink, bytes, len, s->err, sizeof s->err))
        return rt_op_fail(op, "%s", s->err);
    return 0;
}

static int sink_checkpoint_complete(rt_op *op, int64_t id)
{
    (void)id;
    sink_op *s = rt_op_self(op);
    int rc = table_sink_publish(s->sink, s->err, sizeof s->err);
    sink_report(s);
    return rc ? rt_op_fail(op, "%s", s->err) : 0;
}

static void sink_close(rt_op *op)
{
    sink_op *s = rt_op_self(op);
    table_sink_free(s->sink);
    rt_buf_free(&s->buf);
    if (s->cfg.format_free) s->cfg.format_free(s->cfg.format.ctx);
    if (s->cfg.encode_free) s->cfg.encode_free(s->cfg.encode_ctx);
    free(s->dir);
    free(s);
}

static const rt_op_vtbl sink_vtbl = {
    .open = sink_open, .process = sink_process, .finish = sink_finish,
    .snapshot = sink_snapshot, .restore = sink_restore,
    .checkpoint_complete = sink_checkpoint_complete, .close = sink_close,
};

int sink_op_add(rt_graph *g, const char *uid, const sink_op_config *cfg, rt_op **out)
{
    sink_op *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(cfg->dir))) {
        free(s);
        return -1;
    }
    s->cfg = *cfg;
    if (rt_graph_add_op(g, uid, SINK_OP_NAME, &sink_vtbl, s, 1, 0, out)) {
        free(s->dir);
        free(s);
        return -1;
    }
    return 0;
}

table_sink_stats sink_op_stats(rt_op *op)
{
    sink_op *s = rt_op_self(op);
    table_sink_stats z = {0};
    return s->sink ? table_sink_get_stats(s->sink) : z;
}

const char *sink_op_dir(rt_op *op)
{
    return ((sink_op *)rt_op_self(op))->dir;
}

void sink_op_each_published(rt_op *op, void (*fn)(void *arg, const char *relpath), void *arg)
{
    sink_op *s = rt_op_self(op);
    if (s->sink) table_sink_each_published(s->sink, fn, arg);
}

int sink_op_put_marker(rt_op *op, const char *relpath, char *err, size_t errlen)
{
    sink_op *s = rt_op_self(op);
    if (!s->sink) return snprintf(err, errlen, "%s: the sink is not open", s->dir), -1;
    return table_sink_put_marker(s->sink, relpath, err, errlen);
}

/* ============================== invalid-record sink ============================== */

static int encode_invalid(void *ctx, const rt_record *rec, rt_buf *out, int64_t *pts)
{
    if (rec->type != REC_INVALID) return -1;
    const job_invalid_record *r = rec->data;
    *pts = r->timestamp >= 0 ? r->timestamp : 0;
    return avro_table_encode_invalid(ctx, r, out);
}

int invalid_sink_op_add(rt_graph *g, const job_common_opts *c, const char *dir, const char *run_id,
                        const char *task, rt_op **out, char *err, size_t errlen)
{
    char uid[RT_UID_MAX], path[4096];
    snprintf(uid, sizeof uid, "sink-s3-%s", dir);
    for (char *p = uid; *p; p++)
        if (*p == '/') *p = '-';
    *out = rt_graph_find(g, uid);
    if (*out || job_sink_disabled(c, uid)) return 0;
    const char *parts[] = {dir};
    if (job_output_path(c, parts, 1, path, sizeof path)) {
        snprintf(err, errlen, "output path of %s is too long", dir);
        return -1;
    }
    avro_table *t;
    if (avro_table_new(NULL, "invalid_record", (size_t)c->maxRecordBytes, &t, err, errlen))
        return -1;
    sink_op_config sc = {
        .dir = path, .run_id = run_id, .task = task,
        .format = avro_table_format(t),
        .encode = encode_invalid, .encode_ctx = t,
        .encode_free = (void (*)(void *))avro_table_free,
        .max_record_bytes = 2 * (size_t)c->maxRecordBytes,
    };
    if (sink_op_add(g, uid, &sc, out)) {
        avro_table_free(t);
        snprintf(err, errlen, "adding %s: out of memory", uid);
        return -1;
    }
    return 0;
}
