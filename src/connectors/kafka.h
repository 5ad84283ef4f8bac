/* Kafka connector (librdkafka): a consumer-group source with one rt_source per assigned
 * partition, a producer (idempotent, or transactional per task), and the embedded
 * Kafka-protocol cluster (librdkafka's mock cluster) that `logproc kafka-local` and `make demo`
 * host.
 *
 * Threads. One kafka_consumer per process, polled by the driver thread (kafka_consumer_poll):
 * that is where group rebalances arrive. Each assigned partition has its own queue, read by the
 * partition's task through its rt_source on whatever worker thread drives the task, never
 * blocking (IDLE when the queue is empty). A kafka_producer belongs to one task.
 *
 * The mock cluster's traps (docs/KAFKA.md): it keeps about 5 MiB per partition (producers here
 * compress by default) and does not hide aborted or open transactions from read_committed
 * consumers; ListOffsets by timestamp returns -1 there, so start-from-timestamp falls back to
 * scanning from the earliest offset and skipping older records. */
#ifndef LOGPROC_KAFKA_H
#define LOGPROC_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/task.h"

/* Client settings shared by consumers and producers. */
typedef struct kafka_client_config {
    const char *bootstrap;         /* "host:port[,host:port]" */
    const char *security_protocol; /* NULL or "": PLAINTEXT */
    const char *client_id;         /* NULL: "logproc" */
    /* extra librdkafka properties "key=value" (from --kafkaProperty), may be NULL */
    const char *const *props;
    size_t nprops;
} kafka_client_config;

/* ---- consumer ---- */

enum {
    KAFKA_START_COMMITTED = 0, /* the group's committed offset, else earliest */
    KAFKA_START_EARLIEST = 1,
    KAFKA_START_TIMESTAMP = 2, /* first record with ts >= start_ts */
};

typedef struct kafka_consumer_config {
    kafka_client_config client;
    const char *group_id; /* consumer group (job label based) */
    const char *const *topics;
    size_t ntopics;
    /* 1: subscribe and let the group assign partitions (scale-out, rebalances: about 3 s to
     * join on the mock); 0: assign every partition of the topics to this process at once. */
    int use_group;
    int start;          /* KAFKA_START_* when no checkpointed offset is known */
    int64_t start_ts;   /* for KAFKA_START_TIMESTAMP (ms) */
    int64_t end_ts;     /* > 0: a partition ends at its first record with ts >= end_ts */
    int stop_at_end;    /* 1: finite: a partition ends at the high watermark seen when it was
                           assigned (bounded replays, tests) */
    size_t max_record_bytes; /* larger records are reported as bad spans (their first bytes) */
    int64_t fetch_queue_bytes; /* prefetched bytes per partition (queued.max.messages.kbytes);
                                  0: librdkafka's default (64 MiB) */
} kafka_consumer_config;

typedef struct kafka_consumer kafka_consumer;

/* Assignment changes, delivered from kafka_consumer_poll on the driver thread.
 * start_offset: asked for each newly assigned partition before consumption starts; return the
 * next offset to read (a checkpoint's), or -1 for the configured start policy.
 * on_assigned / on_revoked: after the assignment changed; on_revoked is called before the
 * partitions are released, so the driver can stop their tasks (and must free their sources:
 * kafka_source_free) before returning. */
typedef struct kafka_rebalance_cb {
    int64_t (*start_offset)(void *arg, const char *topic, int32_t partition);
    void (*on_assigned)(void *arg, const char *topic, int32_t partition);
    void (*on_revoked)(void *arg, const char *topic, int32_t partition);
    void *arg;
} kafka_rebalance_cb;

/* Creates the consumer and subscribes (use_group) or assigns every partition of the topics
 * (which must exist: an error names a missing topic). Returns 0 or -1 with err. */
int kafka_consumer_new(const kafka_consumer_config *cfg, const kafka_rebalance_cb *cb,
                       kafka_consumer **out, char *err, size_t errlen);

/* Serves rebalance events and client errors for up to timeout_ms. Returns 0, or -1 with err on
 * a fatal client error. */
int kafka_consumer_poll(kafka_consumer *c, int timeout_ms, char *err, size_t errlen);

/* Creates the source of an assigned partition (after on_assigned). Its records carry the Kafka
 * record timestamp as ts and the Kafka offset as offset; src->name is the topic,
 * src->partition the partition, src->finite follows stop_at_end / end_ts. Returns 0 or -1. */
int kafka_source_new(kafka_consumer *c, const char *topic, int32_t partition, rt_source **out,
                     char *err, size_t errlen);
/* Stops reading the partition and frees its source. NULL is a no-op. */
void kafka_source_free(rt_source *src);

/* The partition's next offset to read (the offset after the last record returned), for
 * checkpoints. */
int64_t kafka_source_position(const rt_source *src);

/* Commits offset (the next to read) for the partition to the group, asynchronously: for lag
 * monitoring only (restores use checkpoints). Returns 0 or -1. */
int kafka_consumer_commit(kafka_consumer *c, const char *topic, int32_t partition, int64_t offset);

/* Partitions of a topic (metadata request). Returns 0 with *n, or -1 with err. */
int kafka_topic_partitions(const kafka_client_config *cc, const char *topic, int32_t *n,
                           char *err, size_t errlen);

/* Leaves the group (revoking every partition through on_revoked) and frees the consumer. */
void kafka_consumer_free(kafka_consumer *c);

/* ---- producer ---- */

typedef struct kafka_producer_config {
    kafka_client_config client;
    const char *compression;      /* "lz4" (default), "zstd", "snappy", "gzip", "none" */
    const char *transactional_id; /* NULL: idempotent producer without transactions */
    int64_t max_buffered_bytes;   /* bytes queued in the client before send blocks; 0: 64 MiB */
} kafka_producer_config;

typedef struct kafka_producer kafka_producer;

typedef struct kafka_producer_stats {
    uint64_t records;      /* handed to the client */
    uint64_t delivered;    /* acknowledged by the cluster */
    uint64_t failed;       /* delivery reports with an error */
    uint64_t txn_init, txn_begin, txn_commit, txn_abort; /* transactional calls that succeeded */
} kafka_producer_stats;

/* Creates the producer (and with a transactional_id, runs init_transactions, which fences and
 * aborts whatever an earlier producer of that id left open). Returns 0 or -1 with err. */
int kafka_producer_new(const kafka_producer_config *cfg, kafka_producer **out, char *err,
                       size_t errlen);

/* Sends one record to topic; partition -1 picks it by the key's murmur2 hash (Kafka's Java
 * default partitioner, so the same key lands in the same partition as with the reference).
 * key/value/header value are copied. id (may be NULL) becomes the header "logproc.id": a
 * deterministic id per output record, so a duplicate is detectable downstream. When the client's
 * queue is full, it serves delivery reports until there is room (back-pressure). Returns 0 or
 * -1 with err. */
int kafka_producer_send(kafka_producer *p, const char *topic, int32_t partition, int64_t ts_ms,
                        const void *key, size_t key_len, const void *value, size_t value_len,
                        const char *id, char *err, size_t errlen);

/* Transactions (transactional producers only). begin before the first send of an epoch;
 * commit flushes and commits (blocking up to timeout_ms); abort drops the open transaction.
 * Return 0 or -1 with err. */
int kafka_producer_begin(kafka_producer *p, char *err, size_t errlen);
int kafka_producer_commit(kafka_producer *p, int timeout_ms, char *err, size_t errlen);
int kafka_producer_abort(kafka_producer *p, int timeout_ms, char *err, size_t errlen);

/* Waits until every record sent is acknowledged (or timeout_ms). Returns 0, or -1 with err when
 * a delivery failed or the time ran out. */
int kafka_producer_flush(kafka_producer *p, int timeout_ms, char *err, size_t errlen);

kafka_producer_stats kafka_producer_get_stats(const kafka_producer *p);

/* Flushes (up to 10 s) and frees. NULL is a no-op. */
void kafka_producer_free(kafka_producer *p);

/* ---- embedded cluster (librdkafka's mock cluster) ---- */

typedef struct kafka_local kafka_local;

/* Starts a mock cluster of `brokers` brokers on 127.0.0.1. port > 0: clients may bootstrap from
 * 127.0.0.1:port (the first broker's address, or a forwarder to it). topics: "name:partitions"
 * entries created at start (others are auto-created with 4 partitions). Returns 0 or -1. */
int kafka_local_new(int brokers, int port, const char *const *topics, size_t ntopics,
                    kafka_local **out, char *err, size_t errlen);
/* The bootstrap address other clients use ("127.0.0.1:port,..."). Owned by the cluster. */
const char *kafka_local_bootstrap(const kafka_local *k);
/* Creates a topic (no-op when it exists). Returns 0 or -1 with err. */
int kafka_local_create_topic(kafka_local *k, const char *topic, int partitions, char *err,
                             size_t errlen);
void kafka_local_free(kafka_local *k);

#endif
