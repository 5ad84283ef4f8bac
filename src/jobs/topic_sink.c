#include "jobs/topic_sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/kafka.h"
#include "formats/record_file.h"
#include "jobs/common_ops.h"
#include "runtime/log.h"

#define TXN_TIMEOUT_MS 60000
#define SNAP_VERSION 1

int topic_sink_kafka_mode(const job_common_opts *c)
{
    return c->source.n == 0;
}

/* ---- the record-file form ---- */

typedef struct file_adapter {
    int (*encode)(void *ctx, const rt_record *rec, rt_buf *out);
    void *ctx;
    void (*free_ctx)(void *ctx);
} file_adapter;

static int file_encode(void *ctx, const rt_record *rec, rt_buf *out, int64_t *pts)
{
    file_adapter *a = ctx;
    *pts = rec->ts;
    return a->encode(a->ctx, rec, out);
}

static void file_adapter_free(void *ctx)
{
    file_adapter *a = ctx;
    if (a->free_ctx) a->free_ctx(a->ctx);
    free(a);
}

static int rec_open(void *ctx, const char *path, void **part, char *err, size_t errlen)
{
    (void)ctx;
    return recfile_writer_open(path, (recfile_writer **)part, err, errlen);
}

static int rec_append(void *part, const void *bytes, size_t len, char *err, size_t errlen)
{
    if (recfile_write_frames(part, bytes, len) == 0) return 0;
    const char *why = recfile_writer_error(part);
    snprintf(err, errlen, "writing a record file part: %s", why ? why : "failed");
    return -1;
}

static int rec_close(void *part, char *err, size_t errlen)
{
    return recfile_writer_close(part, err, errlen);
}

/* ---- the Kafka form ---- */

typedef struct ksink {
    topic_sink_config cfg;
    char *topic, *run_id, *task, *txn_id;
    kafka_producer_config pc;
    const char **props;
    kafka_producer *p;
    rt_buf buf;
    uint64_t seq;   /* records sent by this sink (and its restored predecessors) */
    int in_txn;
    int checkpointing;
    int finished;
    topic_sink_stats base; /* stats of producers closed before (none yet) */
    rt_counter *m_records;
} ksink;

static int ks_fail(rt_op *op, ksink *k, const char *what, const char *why)
{
    return rt_op_fail(op, "topic %s: %s: %s", k->topic, what, why);
}

static int ks_open(rt_op *op)
{
    ksink *k = rt_op_self(op);
    k->checkpointing = rt_graph_checkpointing(rt_op_graph(op));
    if (rt_op_counter(op, "numRecordsSent", &k->m_records)) return -1;
    char err[1024];
    if (kafka_producer_new(&k->pc, &k->p, err, sizeof err)) return ks_fail(op, k, "producer", err);
    return 0;
}

static int ks_begin(rt_op *op, ksink *k)
{
    if (k->in_txn) return 0;
    char err[1024];
    if (kafka_producer_begin(k->p, err, sizeof err)) return ks_fail(op, k, "begin transaction", err);
    k->in_txn = 1;
    return 0;
}

static int ks_commit(rt_op *op, ksink *k)
{
    if (!k->in_txn) return 0;
    char err[1024];
    if (kafka_producer_commit(k->p, TXN_TIMEOUT_MS, err, sizeof err))
        return ks_fail(op, k, "commit transaction", err);
    k->in_txn = 0;
    return 0;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int ks_process(rt_op *op, int input, const rt_record *rec)
{
    (void)input;
    ksink *k = rt_op_self(op);
    rt_buf_reset(&k->buf);
    int rc = k->cfg.encode(k->cfg.encode_ctx, rec, &k->buf);
    if (rc == 1) return 0;
    if (rc || k->buf.len < RECFILE_FRAME_OVERHEAD)
        return rt_op_fail(op, "topic %s: encoding a record failed (over %zu bytes?)", k->topic,
                          k->buf.limit);
    /* the frame's fields (record_file.h): lengths at 4 and 8, timestamp at 12, key at 24 */
    const uint8_t *f = k->buf.data;
    uint32_t klen = le32(f + 4), vlen = le32(f + 8);
    int64_t ts = (int64_t)((uint64_t)le32(f + 12) | (uint64_t)le32(f + 16) << 32);
    if ((size_t)RECFILE_FRAME_OVERHEAD + klen + vlen != k->buf.len)
        return rt_op_fail(op, "topic %s: encoder wrote %zu bytes, not one frame", k->topic,
                          k->buf.len);
    if (ks_begin(op, k)) return -1;
    char id[96];
    snprintf(id, sizeof id, "%s-%s-%" PRIu64, k->run_id, k->task, k->seq);
    char err[1024];
    if (kafka_producer_send(k->p, k->topic, -1, ts, f + RECFILE_HEADER_BYTES, klen,
                            f + RECFILE_HEADER_BYTES + klen, vlen, id, err, sizeof err))
        return ks_fail(op, k, "send", err);
    k->seq++;
    rt_counter_add_1w(k->m_records, 1);
    return 0;
}

static int ks_finish(rt_op *op)
{
    ksink *k = rt_op_self(op);
    k->finished = 1;
    /* with checkpoints the final checkpoint's snapshot commits */
    return k->checkpointing ? 0 : ks_commit(op, k);
}

static int ks_snapshot(rt_op *op, rt_buf *out)
{
    ksink *k = rt_op_self(op);
    if (ks_commit(op, k)) return -1;
    if (rt_buf_put_u32(out, SNAP_VERSION) < 0 || rt_buf_put_u64(out, k->seq) < 0) return -1;
    return 0;
}

static int ks_restore(rt_op *op, const uint8_t *bytes, size_t len)
{
    ksink *k = rt_op_self(op);
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t v;
    if (rt_buf_read_u32(&r, &v) < 0 || v != SNAP_VERSION || rt_buf_read_u64(&r, &k->seq) < 0)
        return rt_op_fail(op, "topic %s: bad sink snapshot", k->topic);
    return 0;
}

static void ks_close(rt_op *op)
{
    ksink *k = rt_op_self(op);
    if (k->p && k->in_txn) {
        /* stopped or failed mid-epoch: what was not checkpointed is replayed from the source */
        char err[512];
        if (kafka_producer_abort(k->p, 10000, err, sizeof err))
            log_warn("kafka-sink", "abort failed topic=%s error=\"%s\"", k->topic, err);
    }
    kafka_producer_free(k->p);
    rt_buf_free(&k->buf);
    if (k->cfg.encode_free) k->cfg.encode_free(k->cfg.encode_ctx);
    free(k->props);
    free(k->topic);
    free(k->run_id);
    free(k->task);
    free(k->txn_id);
    free(k);
}

static const rt_op_vtbl ks_vtbl = {
    .open = ks_open, .process = ks_process, .finish = ks_finish, .snapshot = ks_snapshot,
    .restore = ks_restore, .close = ks_close,
};

topic_sink_stats topic_sink_op_stats(rt_op *op)
{
    ksink *k = rt_op_self(op);
    topic_sink_stats s = {0};
    if (!k->p) return s;
    kafka_producer_stats ps = kafka_producer_get_stats(k->p);
    s.records = ps.records;
    s.txn_begin = ps.txn_begin;
    s.txn_commit = ps.txn_commit;
    s.txn_abort = ps.txn_abort;
    s.delivered = ps.delivered;
    s.failed = ps.failed;
    return s;
}

const char *topic_sink_op_topic(rt_op *op)
{
    return ((ksink *)rt_op_self(op))->topic;
}

int topic_sink_op_add(rt_graph *g, const job_common_opts *c, const char *uid,
                      const topic_sink_config *cfg, rt_op **out, char *err, size_t errlen)
{
    if (!topic_sink_kafka_mode(c)) {
        char path[4096];
        snprintf(path, sizeof path, "%s/kafka/%s", job_output_root(c), cfg->topic);
        file_adapter *a = calloc(1, sizeof *a);
        if (!a) goto oom;
        a->encode = cfg->encode;
        a->ctx = cfg->encode_ctx;
        a->free_ctx = cfg->encode_free;
        sink_op_config sc = {
            .dir = path, .run_id = cfg->run_id, .task = cfg->task, .unpartitioned = true,
            .format = {rec_open, rec_append, rec_close, NULL, "rec"},
            .encode = file_encode, .encode_ctx = a, .encode_free = file_adapter_free,
            .max_record_bytes = cfg->max_record_bytes,
        };
        if (sink_op_add(g, uid, &sc, out)) {
            free(a);
            goto oom;
        }
        return 0;
    }
    ksink *k = calloc(1, sizeof *k);
    if (!k) goto oom;
    k->cfg = *cfg;
    char txn[512], label[300];
    job_label_prefix(c->jobLabel, cfg->job, label, sizeof label);
    snprintf(txn, sizeof txn, "logproc.%s.%s.%s", label, cfg->task, uid);
    k->topic = strdup(cfg->topic);
    k->run_id = strdup(cfg->run_id);
    k->task = strdup(cfg->task);
    k->txn_id = strdup(txn);
    k->props = calloc(c->kafkaProperty.n ? c->kafkaProperty.n : 1, sizeof *k->props);
    if (!k->topic || !k->run_id || !k->task || !k->txn_id || !k->props) goto oom_k;
    for (size_t i = 0; i < c->kafkaProperty.n; i++) k->props[i] = c->kafkaProperty.items[i];
    k->pc.client.bootstrap = c->bootstrapServers;
    k->pc.client.security_protocol = c->kafkaSecurityProtocol;
    k->pc.client.props = k->props;
    k->pc.client.nprops = c->kafkaProperty.n;
    k->pc.compression = c->kafkaCompressionType;
    k->pc.transactional_id = k->txn_id;
    /* under --memoryLimit the producer's queue (outside the budget) is 1/16 of it, 1 to 64 MiB */
    if (c->memoryLimit > 0)
        k->pc.max_buffered_bytes = c->memoryLimit / 16 < (1 << 20)   ? (1 << 20)
                                   : c->memoryLimit / 16 > (64 << 20) ? (64 << 20)
                                                                      : c->memoryLimit / 16;
    rt_buf_init(&k->buf, cfg->max_record_bytes + RECFILE_FRAME_OVERHEAD);
    if (rt_graph_add_op(g, uid, TOPIC_SINK_OP_NAME, &ks_vtbl, k, 1, 0, out)) goto oom_k;
    return 0;
oom_k:
    if (k) {
        rt_buf_free(&k->buf);
        free(k->props);
        free(k->topic);
        free(k->run_id);
        free(k->task);
        free(k->txn_id);
        free(k);
    }
oom:
    snprintf(err, errlen, "adding topic sink %s: out of memory", uid);
    return -1;
}
