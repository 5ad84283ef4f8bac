/* Kafka connector on librdkafka: consumer with one queue per partition, producer, and the
 * embedded mock cluster (with an optional fixed-port forwarder). kafka.h has the contract;
 * docs/KAFKA.md the design. */
#include "connectors/kafka.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "runtime/log.h"

#define KAFKA_META_TIMEOUT_MS 10000 /* metadata, watermark and committed-offset requests */
#define KAFKA_BATCH 256             /* messages taken from a partition queue at once */
#define KAFKA_MAX_PARTS 65536       /* assigned partitions of one consumer */
#define KAFKA_SEND_BLOCK_MS 120000  /* longest a send waits for queue room */
#define KAFKA_TXN_INIT_MS 30000

/* ---- shared client configuration ---- */

/* A property whose value may be a secret: its value is never printed. */
static int secret_key(const char *k)
{
    static const char *const words[] = {"pass", "secret", "key", "token", "credential", "jaas"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(k, words[i])) return 1;
    return 0;
}


static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, k, v, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka: property %s=%s: %s", k, secret_key(k) ? "***" : v, why);
        return -1;
    }
    return 0;
}

static int conf_set_kb(rd_kafka_conf_t *conf, const char *k, int64_t bytes, char *err,
                       size_t errlen)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)(bytes / 1024 > 0 ? bytes / 1024 : 1));
    return conf_set(conf, k, v, err, errlen);
}

/* Applies bootstrap, security protocol, client id and the extra "key=value" properties (last,
 * so --kafkaProperty overrides our defaults). */
static int conf_client(rd_kafka_conf_t *conf, const kafka_client_config *cc, char *err,
                       size_t errlen)
{
    if (cc->bootstrap == NULL || !*cc->bootstrap) {
        snprintf(err, errlen, "kafka: bootstrap servers are empty");
        return -1;
    }
    if (conf_set(conf, "bootstrap.servers", cc->bootstrap, err, errlen) ||
        conf_set(conf, "client.id", cc->client_id && *cc->client_id ? cc->client_id : "logproc",
                 err, errlen))
        return -1;
    if (cc->security_protocol && *cc->security_protocol &&
        conf_set(conf, "security.protocol", cc->security_protocol, err, errlen))
        return -1;
    for (size_t i = 0; i < cc->nprops; i++) {
        const char *p = cc->props[i];
        const char *eq = p ? strchr(p, '=') : NULL;
        if (eq == NULL || eq == p) {
            snprintf(err, errlen, "kafka: property '%.*s%s': expected key=value",
                     p && !secret_key(p) ? (int)strlen(p) : 0, p ? p : "",
                     p && secret_key(p) ? "***" : "");
            return -1;
        }
        char key[256];
        size_t kl = (size_t)(eq - p);
        if (kl >= sizeof key) {
            snprintf(err, errlen, "kafka: property key of '%s' longer than %zu bytes", p,
                     sizeof key - 1);
            return -1;
        }
        memcpy(key, p, kl);
        key[kl] = 0;
        if (conf_set(conf, key, eq + 1, err, errlen)) return -1;
    }
    return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        log_warn("kafka", "librdkafka %s: %s", fac, buf);
    else if (level <= 5)
        log_info("kafka", "librdkafka %s: %s", fac, buf);
}

/* Fetches full metadata (all_topics: never auto-creates a topic). */
static int metadata_all(rd_kafka_t *rk, const char *bootstrap, const struct rd_kafka_metadata **md,
                        char *err, size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, md, KAFKA_META_TIMEOUT_MS);
    if (e) {
        snprintf(err, errlen, "kafka %s: metadata request failed: %s", bootstrap,
                 rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* Partition count of topic in md, or -1 with err naming it. */
static int md_partitions(const struct rd_kafka_metadata *md, const char *bootstrap,
                         const char *topic, int32_t *n, char *err, size_t errlen)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, topic)) continue;
        if (t->err) {
            snprintf(err, errlen, "kafka %s: topic %s: %s", bootstrap, topic,
                     rd_kafka_err2str(t->err));
            return -1;
        }
        *n = t->partition_cnt;
        return 0;
    }
    snprintf(err, errlen, "kafka %s: topic %s does not exist", bootstrap, topic);
    return -1;
}

int kafka_topic_partitions(const kafka_client_config *cc, const char *topic, int32_t *n, char *err,
                           size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    if (conf_client(conf, cc, err, errlen) || conf_set(conf, "log_level", "3", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "kafka %s: %s", cc->bootstrap, why);
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    int rc = metadata_all(rk, cc->bootstrap, &md, err, errlen);
    if (rc == 0) rc = md_partitions(md, cc->bootstrap, topic, n, err, errlen);
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- consumer ---- */

typedef struct kpart {
    char *topic;
    int32_t partition;
    int64_t start;       /* concrete offset, or a logical one (RD_KAFKA_OFFSET_STORED) */
    int64_t hwm;         /* high watermark at assignment */
    rd_kafka_queue_t *q; /* holds the partition queue while assigned (forwarding is off) */
} kpart;

struct kafka_consumer {
    rd_kafka_t *rk;
    kafka_consumer_config cfg; /* strings below are owned copies */
    char *bootstrap;
    char *group_id;
    char **topics;
    kafka_rebalance_cb cb;
    kpart *parts;
    size_t nparts, capparts;
    char fatal[512]; /* first fatal client error, reported by kafka_consumer_poll */
};

typedef struct ksource {
    rt_source src;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    char *topic;
    const char *bootstrap; /* for errors; owned copy below */
    char bootstrap_buf[256];
    int64_t position; /* next offset to read; < 0 while unknown (logical start) */
    int64_t hwm;
    int64_t start_ts, end_ts;
    int skip_before_ts; /* start policy timestamp */
    int stop_at_end;
    int ended;
    size_t max_record_bytes;
    rd_kafka_message_t *batch[KAFKA_BATCH];
    size_t nbatch, ibatch;
    rd_kafka_message_t *held; /* the message whose bytes the last record borrows */
    char error[512];
} ksource;

static kpart *part_find(kafka_consumer *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && !strcmp(c->parts[i].topic, topic))
            return &c->parts[i];
    return NULL;
}

static void part_release(kpart *p)
{
    if (p->q) rd_kafka_queue_destroy(p->q);
    free(p->topic);
}

/* Resolves where a newly assigned partition starts and its high watermark, and takes its queue
 * away from the consumer queue (before the assignment, so no message reaches the main queue). */
static int part_prepare(kafka_consumer *c, const char *topic, int32_t partition, int64_t *start,
                        char *err, size_t errlen)
{
    if (part_find(c, topic, partition)) {
        snprintf(err, errlen, "kafka %s: topic %s partition %d assigned twice", c->bootstrap, topic,
                 (int)partition);
        return -1;
    }
    if (c->nparts == c->capparts) {
        size_t cap = c->capparts ? c->capparts * 2 : 16;
        if (cap > KAFKA_MAX_PARTS) {
            snprintf(err, errlen, "kafka %s: more than %d assigned partitions", c->bootstrap,
                     KAFKA_MAX_PARTS);
            return -1;
        }
        kpart *np = realloc(c->parts, cap * sizeof *np);
        if (np == NULL) {
            snprintf(err, errlen, "kafka: out of memory");
            return -1;
        }
        c->parts = np;
        c->capparts = cap;
    }
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(c->rk, topic, partition, &lo, &hi, KAFKA_META_TIMEOUT_MS);
    if (e) {
        snprintf(err, errlen, "kafka %s: topic %s partition %d: watermarks: %s", c->bootstrap,
                 topic, (int)partition, rd_kafka_err2str(e));
        return -1;
    }
    int64_t off = c->cb.start_offset ? c->cb.start_offset(c->cb.arg, topic, partition) : -1;
    if (off < 0) {
        off = lo; /* earliest, and timestamp (the mock cannot look offsets up by time) */
        if (c->cfg.start == KAFKA_START_COMMITTED) {
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(l, topic, partition);
            if (rd_kafka_committed(c->rk, l, KAFKA_META_TIMEOUT_MS) || l->elems[0].err)
                off = RD_KAFKA_OFFSET_STORED; /* unknown here: let the client resolve it */
            else if (l->elems[0].offset >= 0)
                off = l->elems[0].offset; /* else nothing committed yet: earliest */
            rd_kafka_topic_partition_list_destroy(l);
        }
    } else if (off < lo) {
        log_warn("kafka",
                 "topic %s partition %d: start offset %lld is below the log start %lld "
                 "(trimmed): starting at %lld",
                 topic, (int)partition, (long long)off, (long long)lo, (long long)lo);
        off = lo;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_partition(c->rk, topic, partition);
    char *t = strdup(topic);
    if (q == NULL || t == NULL) {
        if (q) rd_kafka_queue_destroy(q);
        free(t);
        snprintf(err, errlen, "kafka %s: topic %s partition %d: no partition queue", c->bootstrap,
                 topic, (int)partition);
        return -1;
    }
    rd_kafka_queue_forward(q, NULL);
    c->parts[c->nparts++] = (kpart){t, partition, off, hi, q};
    *start = off;
    return 0;
}

/* Assigns list (offsets already set) and tells the driver. */
static int assign_list(kafka_consumer *c, rd_kafka_topic_partition_list_t *l, char *err,
                       size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, l);
    if (e) {
        snprintf(err, errlen, "kafka %s: assign: %s", c->bootstrap, rd_kafka_err2str(e));
        return -1;
    }
    if (c->cb.on_assigned)
        for (int i = 0; i < l->cnt; i++)
            c->cb.on_assigned(c->cb.arg, l->elems[i].topic, l->elems[i].partition);
    return 0;
}

static void revoke_all(kafka_consumer *c)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (c->cb.on_revoked) c->cb.on_revoked(c->cb.arg, c->parts[i].topic, c->parts[i].partition);
    for (size_t i = 0; i < c->nparts; i++)
        part_release(&c->parts[i]);
    c->nparts = 0;
}

/* Forgets the partitions prepared after the first `keep` (an assignment that failed half way:
 * the driver never heard of them). */
static void parts_truncate(kafka_consumer *c, size_t keep)
{
    for (size_t i = keep; i < c->nparts; i++)
        part_release(&c->parts[i]);
    c->nparts = keep;
}

static void set_fatal(kafka_consumer *c, const char *what)
{
    if (!c->fatal[0]) snprintf(c->fatal, sizeof c->fatal, "kafka %.200s: %.290s", c->bootstrap, what);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)rk;
    kafka_consumer *c = opaque;
    char err[512];
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        size_t keep = c->nparts;
        for (int i = 0; i < parts->cnt; i++) {
            int64_t start;
            if (part_prepare(c, parts->elems[i].topic, parts->elems[i].partition, &start, err,
                             sizeof err)) {
                parts_truncate(c, keep);
                set_fatal(c, err);
                return;
            }
            parts->elems[i].offset = start;
        }
        log_info("kafka", "assigned partitions=%d group=%s", parts->cnt, c->group_id);
        if (assign_list(c, parts, err, sizeof err)) {
            parts_truncate(c, keep);
            set_fatal(c, err);
        }
    } else {
        log_info("kafka", "revoked partitions=%d group=%s reason=%s", parts->cnt, c->group_id,
                 rd_kafka_err2str(e));
        revoke_all(c);
        rd_kafka_assign(c->rk, NULL);
    }
}

static void consumer_error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    kafka_consumer *c = opaque;
    if (e == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        set_fatal(c, why);
        return;
    }
    /* transport errors are retried by the client: worth a line, not a failure */
    log_warn("kafka", "consumer bootstrap=%s: %s: %s", c->bootstrap,
             rd_kafka_err2name((rd_kafka_resp_err_t)e), reason);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int assign_all(kafka_consumer *c, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    if (metadata_all(c->rk, c->bootstrap, &md, err, errlen)) return -1;
    int rc = -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (size_t t = 0; t < c->cfg.ntopics; t++) {
        int32_t n;
        if (md_partitions(md, c->bootstrap, c->topics[t], &n, err, errlen)) goto out;
        for (int32_t p = 0; p < n; p++) {
            int64_t start;
            if (part_prepare(c, c->topics[t], p, &start, err, errlen)) goto out;
            rd_kafka_topic_partition_list_add(l, c->topics[t], p)->offset = start;
        }
    }
    rc = assign_list(c, l, err, errlen);
out:
    if (rc) parts_truncate(c, 0);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_metadata_destroy(md);
    return rc;
}

int kafka_consumer_new(const kafka_consumer_config *cfg, const kafka_rebalance_cb *cb,
                       kafka_consumer **out, char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->ntopics == 0) {
        snprintf(err, errlen, "kafka consumer: no topics");
        return -1;
    }
    kafka_consumer *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "kafka: out of memory");
        return -1;
    }
    c->cfg = *cfg;
    if (cb) c->cb = *cb;
    c->bootstrap = dup_or_null(cfg->client.bootstrap ? cfg->client.bootstrap : "");
    c->group_id = dup_or_null(cfg->group_id && *cfg->group_id ? cfg->group_id : "logproc");
    c->topics = calloc(cfg->ntopics, sizeof *c->topics);
    int oom = !c->bootstrap || !c->group_id || !c->topics;
    for (size_t i = 0; !oom && i < cfg->ntopics; i++)
        oom = (c->topics[i] = strdup(cfg->topics[i])) == NULL;
    if (oom) {
        snprintf(err, errlen, "kafka: out of memory");
        kafka_consumer_free(c);
        return -1;
    }
    c->cfg.topics = (const char *const *)c->topics;
    c->cfg.group_id = c->group_id;
    c->cfg.client.bootstrap = c->bootstrap;

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "group.id", c->group_id, err, errlen) ||
        conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        conf_set(conf, "enable.auto.offset.store", "false", err, errlen) ||
        conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        conf_set(conf, "enable.partition.eof", "true", err, errlen) ||
        conf_set(conf, "log_level", "4", err, errlen) ||
        (cfg->fetch_queue_bytes > 0 && conf_set_kb(conf, "queued.max.messages.kbytes",
                                                   cfg->fetch_queue_bytes, err, errlen)) ||
        conf_client(conf, &cfg->client, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        kafka_consumer_free(c);
        return -1;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (cfg->use_group) rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    char why[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (c->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "kafka %s: consumer: %s", c->bootstrap, why);
        kafka_consumer_free(c);
        return -1;
    }
    if (cfg->use_group) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)cfg->ntopics);
        for (size_t i = 0; i < cfg->ntopics; i++)
            rd_kafka_topic_partition_list_add(l, c->topics[i], RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        if (e) {
            snprintf(err, errlen, "kafka %s: subscribe to %s: %s", c->bootstrap, c->topics[0],
                     rd_kafka_err2str(e));
            kafka_consumer_free(c);
            return -1;
        }
    } else if (assign_all(c, err, errlen)) {
        kafka_consumer_free(c);
        return -1;
    }
    log_info("kafka", "consumer bootstrap=%s group=%s topics=%zu mode=%s", c->bootstrap,
             c->group_id, cfg->ntopics, cfg->use_group ? "group" : "assign");
    *out = c;
    return 0;
}

int kafka_consumer_poll(kafka_consumer *c, int timeout_ms, char *err, size_t errlen)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int left = timeout_ms;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, left);
        if (m) {
            if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "-";
                if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                    char why[512];
                    rd_kafka_fatal_error(c->rk, why, sizeof why);
                    set_fatal(c, why);
                } else if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                           m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                    char why[512];
                    snprintf(why, sizeof why, "topic %s partition %d: %s", topic, (int)m->partition,
                             rd_kafka_message_errstr(m));
                    set_fatal(c, why);
                } else {
                    log_warn("kafka", "consumer bootstrap=%s topic=%s partition=%d: %s",
                             c->bootstrap, topic, (int)m->partition, rd_kafka_message_errstr(m));
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (c->fatal[0]) {
            snprintf(err, errlen, "%s", c->fatal);
            return -1;
        }
        if (m == NULL || left <= 0) return 0;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int spent = (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        left = timeout_ms - spent;
        if (left <= 0) return 0;
    }
}

static void source_release_held(ksource *s)
{
    if (s->held) {
        rd_kafka_message_destroy(s->held);
        s->held = NULL;
    }
}

static int source_next(rt_source *src, rt_source_record *out, char *err, size_t errlen)
{
    ksource *s = src->self;
    source_release_held(s);
    if (s->ended) return RT_SOURCE_END;
    for (;;) {
        if (s->stop_at_end && s->position >= 0 && s->position >= s->hwm) {
            s->ended = 1;
            return RT_SOURCE_END;
        }
        if (s->ibatch == s->nbatch) {
            s->ibatch = 0;
            ssize_t n = rd_kafka_consume_batch_queue(s->q, 0, s->batch, KAFKA_BATCH);
            s->nbatch = n > 0 ? (size_t)n : 0;
            if (n < 0) {
                snprintf(err, errlen, "kafka %s: topic %s partition %d: %s", s->bootstrap, s->topic,
                         (int)src->partition, rd_kafka_err2str(rd_kafka_last_error()));
                return -1;
            }
            if (n == 0) return RT_SOURCE_IDLE;
        }
        rd_kafka_message_t *m = s->batch[s->ibatch++];
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset >= 0) s->position = m->offset;
            rd_kafka_message_destroy(m);
            if (s->stop_at_end && s->position >= 0 && s->position >= s->hwm) continue;
            /* at the end for now: report idle so the task looks at its watermark */
            return RT_SOURCE_IDLE;
        }
        if (m->err) {
            int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL ||
                        m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            if (fatal)
                snprintf(err, errlen, "kafka %s: topic %s partition %d: %s", s->bootstrap, s->topic,
                         (int)src->partition, rd_kafka_message_errstr(m));
            else
                log_warn("kafka", "bootstrap=%s topic=%s partition=%d: %s", s->bootstrap, s->topic,
                         (int)src->partition, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (fatal) return -1;
            continue;
        }
        rd_kafka_timestamp_type_t tst;
        int64_t ts = rd_kafka_message_timestamp(m, &tst);
        if (s->end_ts > 0 && ts >= s->end_ts) {
            /* not delivered: the position stays on it, so a later run reads it first */
            rd_kafka_message_destroy(m);
            s->ended = 1;
            return RT_SOURCE_END;
        }
        s->position = m->offset + 1;
        if (s->skip_before_ts && ts < s->start_ts) {
            rd_kafka_message_destroy(m);
            continue;
        }
        memset(out, 0, sizeof *out);
        out->ts = ts;
        out->offset = m->offset;
        out->key = m->key;
        out->key_len = m->key ? m->key_len : 0;
        out->value = m->payload;
        out->value_len = m->payload ? m->len : 0;
        s->held = m;
        size_t total = out->key_len + out->value_len;
        if (total > s->max_record_bytes) {
            snprintf(s->error, sizeof s->error,
                     "kafka %s: topic %s partition %d offset %lld: record of %zu bytes (key+value) "
                     "is over --maxRecordBytes=%zu",
                     s->bootstrap, s->topic, (int)src->partition, (long long)m->offset, total,
                     s->max_record_bytes);
            out->raw_length = out->value_len;
            if (out->value_len > s->max_record_bytes) out->value_len = s->max_record_bytes;
            out->error = s->error;
            return RT_SOURCE_BAD;
        }
        return RT_SOURCE_RECORD;
    }
}

/* The partition's high watermark as the client last saw it in a fetch answer (no request). */
static int64_t source_end_offset(const rt_source *src)
{
    const ksource *s = src->self;
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(s->rk, s->topic, src->partition, &lo, &hi) ||
        hi < 0)
        return s->hwm;
    return hi;
}

int kafka_source_new(kafka_consumer *c, const char *topic, int32_t partition, rt_source **out,
                     char *err, size_t errlen)
{
    *out = NULL;
    kpart *p = part_find(c, topic, partition);
    if (p == NULL) {
        snprintf(err, errlen, "kafka %s: topic %s partition %d is not assigned to this process",
                 c->bootstrap, topic, (int)partition);
        return -1;
    }
    ksource *s = calloc(1, sizeof *s);
    if (s == NULL || (s->topic = strdup(topic)) == NULL) {
        free(s);
        snprintf(err, errlen, "kafka: out of memory");
        return -1;
    }
    s->q = rd_kafka_queue_get_partition(c->rk, topic, partition);
    if (s->q == NULL) {
        free(s->topic);
        free(s);
        snprintf(err, errlen, "kafka %s: topic %s partition %d: no partition queue", c->bootstrap,
                 topic, (int)partition);
        return -1;
    }
    snprintf(s->bootstrap_buf, sizeof s->bootstrap_buf, "%s", c->bootstrap);
    s->bootstrap = s->bootstrap_buf;
    s->position = p->start >= 0 ? p->start : -1;
    s->hwm = p->hwm;
    s->stop_at_end = c->cfg.stop_at_end;
    s->end_ts = c->cfg.end_ts;
    s->start_ts = c->cfg.start_ts;
    s->skip_before_ts = c->cfg.start == KAFKA_START_TIMESTAMP && c->cfg.start_ts > 0;
    s->max_record_bytes = c->cfg.max_record_bytes ? c->cfg.max_record_bytes : SIZE_MAX;
    s->src.name = s->topic;
    s->src.partition = partition;
    s->src.finite = c->cfg.stop_at_end || c->cfg.end_ts > 0;
    s->src.self = s;
    s->src.next = source_next;
    s->src.end_offset = source_end_offset;
    s->rk = c->rk;
    *out = &s->src;
    return 0;
}

void kafka_source_free(rt_source *src)
{
    if (src == NULL) return;
    ksource *s = src->self;
    source_release_held(s);
    for (size_t i = s->ibatch; i < s->nbatch; i++)
        rd_kafka_message_destroy(s->batch[i]);
    rd_kafka_queue_destroy(s->q);
    free(s->topic);
    free(s);
}

int64_t kafka_source_position(const rt_source *src)
{
    const ksource *s = src->self;
    return s->position;
}

int kafka_consumer_commit(kafka_consumer *c, const char *topic, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        log_warn("kafka", "commit bootstrap=%s topic=%s partition=%d offset=%lld: %s", c->bootstrap,
                 topic, (int)partition, (long long)offset, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

void kafka_consumer_free(kafka_consumer *c)
{
    if (c == NULL) return;
    if (c->rk) {
        if (!c->cfg.use_group) {
            revoke_all(c);
            rd_kafka_assign(c->rk, NULL);
        }
        /* in a group, close leaves it: the rebalance callback revokes what is left */
        rd_kafka_consumer_close(c->rk);
        revoke_all(c);
        rd_kafka_destroy(c->rk);
    }
    for (size_t i = 0; i < c->nparts; i++)
        part_release(&c->parts[i]);
    free(c->parts);
    if (c->topics)
        for (size_t i = 0; i < c->cfg.ntopics; i++)
            free(c->topics[i]);
    free(c->topics);
    free(c->bootstrap);
    free(c->group_id);
    free(c);
}

/* ---- producer ---- */

struct kafka_producer {
    rd_kafka_t *rk;
    char *bootstrap;
    int transactional;
    kafka_producer_stats st;
    char first_error[512];
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kafka_producer *p = opaque;
    if (m->err == 0) {
        p->st.delivered++;
        return;
    }
    p->st.failed++;
    if (!p->first_error[0])
        snprintf(p->first_error, sizeof p->first_error,
                 "kafka %s: delivery to topic %s partition %d failed: %s", p->bootstrap,
                 rd_kafka_topic_name(m->rkt), (int)m->partition, rd_kafka_err2str(m->err));
}

static void producer_error_cb(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    (void)rk;
    kafka_producer *p = opaque;
    log_warn("kafka", "producer bootstrap=%s: %s: %s", p->bootstrap,
             rd_kafka_err2name((rd_kafka_resp_err_t)e), reason);
}

/* Reports a transactional call's error (and frees it). */
static int txn_result(kafka_producer *p, const char *what, rd_kafka_error_t *e, char *err,
                      size_t errlen)
{
    if (e == NULL) return 0;
    snprintf(err, errlen, "kafka %s: %s: %s%s", p->bootstrap, what, rd_kafka_error_string(e),
             rd_kafka_error_txn_requires_abort(e) ? " (the transaction must be aborted)" : "");
    rd_kafka_error_destroy(e);
    return -1;
}

int kafka_producer_new(const kafka_producer_config *cfg, kafka_producer **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    kafka_producer *p = calloc(1, sizeof *p);
    if (p == NULL ||
        (p->bootstrap = strdup(cfg->client.bootstrap ? cfg->client.bootstrap : "")) == NULL) {
        free(p);
        snprintf(err, errlen, "kafka: out of memory");
        return -1;
    }
    int64_t maxb = cfg->max_buffered_bytes > 0 ? cfg->max_buffered_bytes : 64LL << 20;
    int64_t kb = maxb / 1024;
    if (kb < 1) kb = 1;
    if (kb > 2147483647LL) kb = 2147483647LL;
    char kbs[32];
    snprintf(kbs, sizeof kbs, "%lld", (long long)kb);
    const char *codec = cfg->compression && *cfg->compression ? cfg->compression : "lz4";
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        conf_set(conf, "acks", "all", err, errlen) ||
        conf_set(conf, "compression.codec", codec, err, errlen) ||
        conf_set(conf, "partitioner", "murmur2_random", err, errlen) ||
        conf_set(conf, "linger.ms", "5", err, errlen) ||
        conf_set(conf, "queue.buffering.max.kbytes", kbs, err, errlen) ||
        conf_set(conf, "log_level", "4", err, errlen) ||
        (cfg->transactional_id &&
         conf_set(conf, "transactional.id", cfg->transactional_id, err, errlen)) ||
        conf_client(conf, &cfg->client, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        kafka_producer_free(p);
        return -1;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    char why[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (p->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "kafka %s: producer: %s", p->bootstrap, why);
        kafka_producer_free(p);
        return -1;
    }
    if (cfg->transactional_id) {
        p->transactional = 1;
        if (txn_result(p, "init_transactions", rd_kafka_init_transactions(p->rk, KAFKA_TXN_INIT_MS),
                       err, errlen)) {
            kafka_producer_free(p);
            return -1;
        }
        p->st.txn_init++;
    }
    *out = p;
    return 0;
}

int kafka_producer_send(kafka_producer *p, const char *topic, int32_t partition, int64_t ts_ms,
                        const void *key, size_t key_len, const void *value, size_t value_len,
                        const char *id, char *err, size_t errlen)
{
    int waited = 0;
    for (;;) {
        rd_kafka_headers_t *h = NULL;
        if (id) {
            h = rd_kafka_headers_new(1);
            rd_kafka_header_add(h, "logproc.id", -1, id, -1);
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_TIMESTAMP(ts_ms > 0 ? ts_ms : 0),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (e == 0) {
            p->st.records++;
            /* serve delivery reports now and then so their counters keep up */
            if ((p->st.records & 1023) == 0) rd_kafka_poll(p->rk, 0);
            return 0;
        }
        if (h) rd_kafka_headers_destroy(h); /* not taken over on failure */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || waited >= KAFKA_SEND_BLOCK_MS) {
            snprintf(err, errlen, "kafka %s: send to topic %s partition %d: %s%s", p->bootstrap,
                     topic, (int)partition, rd_kafka_err2str(e),
                     e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? " (no room for 120 s)" : "");
            return -1;
        }
        rd_kafka_poll(p->rk, 10); /* back-pressure: wait for deliveries to free room */
        waited += 10;
    }
}

static int need_txn(kafka_producer *p, char *err, size_t errlen)
{
    if (p->transactional) return 0;
    snprintf(err, errlen, "kafka %s: the producer has no transactional id", p->bootstrap);
    return -1;
}

int kafka_producer_begin(kafka_producer *p, char *err, size_t errlen)
{
    if (need_txn(p, err, errlen) ||
        txn_result(p, "begin_transaction", rd_kafka_begin_transaction(p->rk), err, errlen))
        return -1;
    p->st.txn_begin++;
    return 0;
}

int kafka_producer_commit(kafka_producer *p, int timeout_ms, char *err, size_t errlen)
{
    if (need_txn(p, err, errlen) ||
        txn_result(p, "commit_transaction", rd_kafka_commit_transaction(p->rk, timeout_ms), err,
                   errlen))
        return -1;
    rd_kafka_poll(p->rk, 0); /* the delivery reports of the transaction */
    p->st.txn_commit++;
    return 0;
}

int kafka_producer_abort(kafka_producer *p, int timeout_ms, char *err, size_t errlen)
{
    if (need_txn(p, err, errlen) ||
        txn_result(p, "abort_transaction", rd_kafka_abort_transaction(p->rk, timeout_ms), err,
                   errlen))
        return -1;
    p->st.txn_abort++;
    return 0;
}

int kafka_producer_flush(kafka_producer *p, int timeout_ms, char *err, size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, timeout_ms);
    rd_kafka_poll(p->rk, 0);
    if (e) {
        snprintf(err, errlen, "kafka %s: flush: %d records not acknowledged after %d ms",
                 p->bootstrap, rd_kafka_outq_len(p->rk), timeout_ms);
        return -1;
    }
    if (p->st.failed) {
        snprintf(err, errlen, "%s (%llu failed deliveries)", p->first_error,
                 (unsigned long long)p->st.failed);
        return -1;
    }
    return 0;
}

kafka_producer_stats kafka_producer_get_stats(const kafka_producer *p)
{
    return p->st;
}

void kafka_producer_free(kafka_producer *p)
{
    if (p == NULL) return;
    if (p->rk) {
        if (rd_kafka_flush(p->rk, 10000))
            log_warn("kafka", "producer bootstrap=%s: %d records not acknowledged at close",
                     p->bootstrap, rd_kafka_outq_len(p->rk));
        rd_kafka_destroy(p->rk);
    }
    free(p->bootstrap);
    free(p);
}

/* ---- embedded cluster ---- */

/* A TCP relay from 127.0.0.1:port to the first mock broker, because the mock listens only on
 * ephemeral ports. Clients bootstrap through it and then reach the brokers' advertised
 * addresses directly, so it carries little traffic. */
typedef struct relay {
    int listen_fd;
    int stop_pipe[2]; /* written once at shutdown; every thread polls the read end */
    struct sockaddr_in target;
    pthread_t acceptor;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int active; /* connection threads still running */
} relay;

typedef struct relay_conn {
    relay *r;
    int a, b;
} relay_conn;

#define RELAY_BUF 65536
#define RELAY_MAX_CONNS 256

static void *relay_conn_main(void *arg)
{
    relay_conn *rc = arg;
    char *buf = malloc(RELAY_BUF);
    struct pollfd fds[3] = {
        {rc->a, POLLIN, 0}, {rc->b, POLLIN, 0}, {rc->r->stop_pipe[0], POLLIN, 0}};
    while (buf) {
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[2].revents) break;
        int done = 0;
        for (int i = 0; i < 2 && !done; i++) {
            if (!fds[i].revents) continue;
            ssize_t n = read(fds[i].fd, buf, RELAY_BUF);
            if (n <= 0) {
                done = 1;
                break;
            }
            int to = i == 0 ? rc->b : rc->a;
            for (ssize_t off = 0; off < n && !done;) {
                ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
                if (w <= 0) {
                    if (w < 0 && errno == EINTR) continue;
                    done = 1;
                } else {
                    off += w;
                }
            }
        }
        if (done) break;
    }
    free(buf);
    close(rc->a);
    close(rc->b);
    relay *r = rc->r;
    free(rc);
    pthread_mutex_lock(&r->mu);
    r->active--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void *relay_accept_main(void *arg)
{
    relay *r = arg;
    struct pollfd fds[2] = {{r->listen_fd, POLLIN, 0}, {r->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents) break;
        int a = accept(r->listen_fd, NULL, NULL);
        if (a < 0) continue;
        int b = socket(AF_INET, SOCK_STREAM, 0);
        if (b < 0 || connect(b, (struct sockaddr *)&r->target, sizeof r->target) < 0) {
            log_warn("kafka-local", "forwarder: connecting to the broker failed: %s",
                     strerror(errno));
            if (b >= 0) close(b);
            close(a);
            continue;
        }
        relay_conn *rc = malloc(sizeof *rc);
        pthread_mutex_lock(&r->mu);
        int full = r->active >= RELAY_MAX_CONNS;
        if (!full && rc) r->active++;
        pthread_mutex_unlock(&r->mu);
        pthread_t t;
        if (full || rc == NULL) {
            free(rc);
            close(a);
            close(b);
            continue;
        }
        *rc = (relay_conn){r, a, b};
        if (pthread_create(&t, NULL, relay_conn_main, rc)) {
            close(a);
            close(b);
            free(rc);
            pthread_mutex_lock(&r->mu);
            r->active--;
            pthread_mutex_unlock(&r->mu);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static void relay_free(relay *r)
{
    if (r == NULL) return;
    if (write(r->stop_pipe[1], "x", 1) < 0) log_warn("kafka-local", "forwarder: stop: %m");
    pthread_join(r->acceptor, NULL);
    pthread_mutex_lock(&r->mu);
    while (r->active > 0)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    close(r->listen_fd);
    close(r->stop_pipe[0]);
    close(r->stop_pipe[1]);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* target: the first "host:port" of the mock's bootstrap list (an IPv4 loopback address). */
static int relay_new(int port, const char *target, relay **out, char *err, size_t errlen)
{
    *out = NULL;
    char host[64];
    const char *colon = strrchr(target, ':');
    const char *comma = strchr(target, ',');
    if (comma && colon > comma) {
        for (colon = comma - 1; colon > target && *colon != ':'; colon--)
            ;
    }
    if (colon == NULL || *colon != ':' || (size_t)(colon - target) >= sizeof host) {
        snprintf(err, errlen, "kafka-local: cannot parse the broker address '%s'", target);
        return -1;
    }
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = 0;
    if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
    relay *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "kafka-local: out of memory");
        return -1;
    }
    r->target.sin_family = AF_INET;
    r->target.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &r->target.sin_addr) != 1) {
        snprintf(err, errlen, "kafka-local: broker address '%s' is not IPv4", target);
        free(r);
        return -1;
    }
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (r->listen_fd < 0 ||
        setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(r->listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(r->listen_fd, 64) < 0) {
        snprintf(err, errlen, "kafka-local: listening on 127.0.0.1:%d: %s", port, strerror(errno));
        if (r->listen_fd >= 0) close(r->listen_fd);
        free(r);
        return -1;
    }
    if (pipe(r->stop_pipe) < 0) {
        snprintf(err, errlen, "kafka-local: pipe: %s", strerror(errno));
        close(r->listen_fd);
        free(r);
        return -1;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->acceptor, NULL, relay_accept_main, r)) {
        snprintf(err, errlen, "kafka-local: cannot start the forwarder thread");
        close(r->listen_fd);
        close(r->stop_pipe[0]);
        close(r->stop_pipe[1]);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

struct kafka_local {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    relay *fwd;
    char bootstrap[1024];
};

int kafka_local_create_topic(kafka_local *k, const char *topic, int partitions, char *err,
                             size_t errlen)
{
    if (partitions < 1 || partitions > 10000) {
        snprintf(err, errlen, "kafka-local: topic %s: %d partitions (must be 1..10000)", topic,
                 partitions);
        return -1;
    }
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(k->mc, topic, partitions, 1);
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        snprintf(err, errlen, "kafka-local: creating topic %s: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int kafka_local_new(int brokers, int port, const char *const *topics, size_t ntopics,
                    kafka_local **out, char *err, size_t errlen)
{
    *out = NULL;
    if (brokers < 1 || brokers > 64) {
        snprintf(err, errlen, "kafka-local: %d brokers (must be 1..64)", brokers);
        return -1;
    }
    if (port < 0 || port > 65535) {
        snprintf(err, errlen, "kafka-local: port %d (must be 0..65535)", port);
        return -1;
    }
    kafka_local *k = calloc(1, sizeof *k);
    if (k == NULL) {
        snprintf(err, errlen, "kafka-local: out of memory");
        return -1;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    /* log_level 3: the owning handle has no bootstrap servers, which it would warn about */
    if (conf_set(conf, "log_level", "3", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        free(k);
        return -1;
    }
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (k->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "kafka-local: %s", why);
        free(k);
        return -1;
    }
    k->mc = rd_kafka_mock_cluster_new(k->rk, brokers);
    if (k->mc == NULL) {
        snprintf(err, errlen, "kafka-local: cannot start a mock cluster of %d brokers", brokers);
        kafka_local_free(k);
        return -1;
    }
    for (size_t i = 0; i < ntopics; i++) {
        char name[256];
        const char *t = topics[i];
        const char *c = strrchr(t, ':');
        int parts = 4;
        size_t nl = c ? (size_t)(c - t) : strlen(t);
        if (c) {
            char *end;
            long v = strtol(c + 1, &end, 10);
            if (*end || end == c + 1 || v < 1 || v > 10000) {
                snprintf(err, errlen, "kafka-local: topic '%s': partitions must be 1..10000", t);
                kafka_local_free(k);
                return -1;
            }
            parts = (int)v;
        }
        if (nl == 0 || nl >= sizeof name) {
            snprintf(err, errlen, "kafka-local: topic '%s': name must be 1..%zu bytes", t,
                     sizeof name - 1);
            kafka_local_free(k);
            return -1;
        }
        memcpy(name, t, nl);
        name[nl] = 0;
        if (kafka_local_create_topic(k, name, parts, err, errlen)) {
            kafka_local_free(k);
            return -1;
        }
    }
    const char *bs = rd_kafka_mock_cluster_bootstraps(k->mc);
    if (port > 0) {
        if (relay_new(port, bs, &k->fwd, err, errlen)) {
            kafka_local_free(k);
            return -1;
        }
        snprintf(k->bootstrap, sizeof k->bootstrap, "127.0.0.1:%d", port);
    } else {
        snprintf(k->bootstrap, sizeof k->bootstrap, "%s", bs);
    }
    *out = k;
    return 0;
}

const char *kafka_local_bootstrap(const kafka_local *k)
{
    return k->bootstrap;
}

void kafka_local_free(kafka_local *k)
{
    if (k == NULL) return;
    relay_free(k->fwd);
    if (k->mc) rd_kafka_mock_cluster_destroy(k->mc);
    if (k->rk) rd_kafka_destroy(k->rk);
    free(k);
}
