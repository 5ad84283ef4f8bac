/* Kafka connector against the embedded mock cluster (in this process, 127.0.0.1 only):
 * transactional produce then per-partition consume (exactly once, offsets in order, murmur2
 * placement checked with an independent Java-style hash), bad spans over max_record_bytes,
 * end_ts, start offsets from the rebalance hook, start by timestamp, a missing topic, and one
 * group subscription. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "connectors/kafka.h"

#define N_RECORDS 20000
#define N_KEYS 500
#define TS_BASE 1700000000000LL
#define DEADLINE_S 30

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Kafka's Java Utils.murmur2, written from its specification: 32-bit MurmurHash2 with seed
 * 0x9747b28c, little-endian 4-byte blocks; the partition is (h & 0x7fffffff) % partitions. */
static int32_t java_partition(const uint8_t *k, size_t n, int32_t parts)
{
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)n;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t w = (uint32_t)k[i] | (uint32_t)k[i + 1] << 8 | (uint32_t)k[i + 2] << 16 |
                     (uint32_t)k[i + 3] << 24;
        w *= m;
        w ^= w >> 24;
        w *= m;
        h *= m;
        h ^= w;
    }
    switch (n - i) {
    case 3:
        h ^= (uint32_t)k[i + 2] << 16; /* fall through */
    case 2:
        h ^= (uint32_t)k[i + 1] << 8; /* fall through */
    case 1:
        h ^= k[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)((h & 0x7fffffffu) % (uint32_t)parts);
}

/* ---- rebalance hooks that record what happened ---- */

typedef struct hooks {
    int assigned, revoked;
    int32_t restart_partition; /* -1: none */
    int64_t restart_offset;
    int64_t asked;
} hooks;

static int64_t hk_start(void *arg, const char *topic, int32_t partition)
{
    (void)topic;
    hooks *h = arg;
    h->asked++;
    return partition == h->restart_partition ? h->restart_offset : -1;
}
static void hk_assigned(void *arg, const char *topic, int32_t partition)
{
    (void)topic;
    (void)partition;
    ((hooks *)arg)->assigned++;
}
static void hk_revoked(void *arg, const char *topic, int32_t partition)
{
    (void)topic;
    (void)partition;
    ((hooks *)arg)->revoked++;
}

static kafka_consumer *consumer(const char *bootstrap, const char *topic, int use_group,
                                int stop_at_end, int64_t end_ts, size_t max_bytes, hooks *h)
{
    static const char *topics[1];
    topics[0] = topic;
    kafka_consumer_config cfg = {
        .client = {.bootstrap = bootstrap},
        .group_id = "test-kafka",
        .topics = topics,
        .ntopics = 1,
        .use_group = use_group,
        .start = KAFKA_START_EARLIEST,
        .end_ts = end_ts,
        .stop_at_end = stop_at_end,
        .max_record_bytes = max_bytes,
    };
    kafka_rebalance_cb cb = {hk_start, hk_assigned, hk_revoked, h};
    kafka_consumer *c = NULL;
    char err[512] = "";
    int rc = kafka_consumer_new(&cfg, &cb, &c, err, sizeof err);
    if (rc) fprintf(stderr, "consumer: %s\n", err);
    assert_int_equal(rc, 0);
    return c;
}

/* Next record or END/BAD from src, serving the consumer while the partition is idle. */
static int next_of(kafka_consumer *c, rt_source *src, rt_source_record *r)
{
    char err[512];
    double deadline = now_s() + DEADLINE_S;
    for (;;) {
        int rc = src->next(src, r, err, sizeof err);
        if (rc < 0) fprintf(stderr, "source: %s\n", err);
        assert_true(rc >= 0);
        if (rc != RT_SOURCE_IDLE) return rc;
        assert_int_equal(kafka_consumer_poll(c, 5, err, sizeof err), 0);
        assert_true(now_s() < deadline);
    }
}

/* ---- produce, then read every partition back ---- */

typedef struct key_sums {
    uint64_t count[N_KEYS];
    uint64_t sum[N_KEYS];
} key_sums;

static void make_key(int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "user-%d", i % N_KEYS);
}

static void produce_and_consume(int brokers)
{
    char err[512] = "";
    const char *topics[] = {"events:4"};
    kafka_local *k = NULL;
    assert_int_equal(kafka_local_new(brokers, 0, topics, 1, &k, err, sizeof err), 0);
    const char *bs = kafka_local_bootstrap(k);

    kafka_producer_config pc = {.client = {.bootstrap = bs}, .transactional_id = "test-txn"};
    kafka_producer *p = NULL;
    assert_int_equal(kafka_producer_new(&pc, &p, err, sizeof err), 0);
    assert_int_equal(kafka_producer_begin(p, err, sizeof err), 0);
    static key_sums want, got;
    memset(&want, 0, sizeof want);
    memset(&got, 0, sizeof got);
    for (int i = 0; i < N_RECORDS; i++) {
        char key[32], value[64], id[32];
        make_key(i, key, sizeof key);
        int vl = snprintf(value, sizeof value, "value-%d", i);
        snprintf(id, sizeof id, "id-%d", i);
        int rc = kafka_producer_send(p, "events", -1, TS_BASE + i, key, strlen(key), value,
                                     (size_t)vl, id, err, sizeof err);
        if (rc) fprintf(stderr, "send: %s\n", err);
        assert_int_equal(rc, 0);
        want.count[i % N_KEYS]++;
        want.sum[i % N_KEYS] += (uint64_t)i;
    }
    int crc = kafka_producer_commit(p, 30000, err, sizeof err);
    if (crc) fprintf(stderr, "commit: %s\n", err);
    assert_int_equal(crc, 0);
    assert_int_equal(kafka_producer_flush(p, 10000, err, sizeof err), 0);
    kafka_producer_stats st = kafka_producer_get_stats(p);
    assert_int_equal(st.records, N_RECORDS);
    assert_int_equal(st.delivered, N_RECORDS);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.txn_init, 1);
    assert_int_equal(st.txn_begin, 1);
    assert_int_equal(st.txn_commit, 1);
    assert_int_equal(st.txn_abort, 0);
    kafka_producer_free(p);

    int32_t nparts = 0;
    kafka_client_config cc = {.bootstrap = bs};
    assert_int_equal(kafka_topic_partitions(&cc, "events", &nparts, err, sizeof err), 0);
    assert_int_equal(nparts, 4);

    hooks h = {.restart_partition = -1};
    kafka_consumer *c = consumer(bs, "events", 0, 1, 0, 1 << 20, &h);
    assert_int_equal(h.asked, 4);
    assert_int_equal(h.assigned, 4);
    uint64_t total = 0;
    for (int32_t part = 0; part < 4; part++) {
        rt_source *src = NULL;
        assert_int_equal(kafka_source_new(c, "events", part, &src, err, sizeof err), 0);
        assert_string_equal(src->name, "events");
        assert_int_equal(src->partition, part);
        assert_int_equal(src->finite, 1);
        assert_int_equal(kafka_source_position(src), 0);
        int64_t last = -1;
        uint64_t n = 0;
        rt_source_record r;
        int rc;
        while ((rc = next_of(c, src, &r)) == RT_SOURCE_RECORD) {
            assert_true(r.offset > last);
            last = r.offset;
            assert_int_equal(kafka_source_position(src), r.offset + 1);
            assert_int_equal(java_partition(r.key, r.key_len, 4), part);
            char value[64];
            assert_true(r.value_len < sizeof value);
            memcpy(value, r.value, r.value_len);
            value[r.value_len] = 0;
            int i = atoi(value + strlen("value-"));
            assert_true(i >= 0 && i < N_RECORDS);
            char key[32];
            make_key(i, key, sizeof key);
            assert_int_equal(r.key_len, strlen(key));
            assert_memory_equal(r.key, key, r.key_len);
            assert_int_equal(r.ts, TS_BASE + i);
            got.count[i % N_KEYS]++;
            got.sum[i % N_KEYS] += (uint64_t)i;
            n++;
        }
        assert_int_equal(rc, RT_SOURCE_END);
        /* the transaction's control record may sit after the last data record */
        assert_true(kafka_source_position(src) >= last + 1);
        assert_true(n > 0); /* 500 keys over 4 partitions: every partition has some */
        total += n;
        kafka_source_free(src);
    }
    assert_int_equal(total, N_RECORDS);
    assert_memory_equal(&got, &want, sizeof want);
    kafka_consumer_free(c);
    assert_int_equal(h.revoked, 4);
    kafka_local_free(k);
}

static void test_roundtrip_one_broker(void **state)
{
    (void)state;
    produce_and_consume(1);
}

static void test_roundtrip_three_brokers(void **state)
{
    (void)state;
    produce_and_consume(3);
}

/* ---- bad spans, end_ts, start offsets ---- */

static kafka_local *small_cluster(const char *topic_spec, char *bs, size_t cap)
{
    char err[512];
    const char *topics[] = {topic_spec};
    kafka_local *k = NULL;
    assert_int_equal(kafka_local_new(1, 0, topics, 1, &k, err, sizeof err), 0);
    snprintf(bs, cap, "%s", kafka_local_bootstrap(k));
    return k;
}

/* Sends n records to partition 0 of topic: value i is "v<i>", except big_at gets big bytes. */
static void send_seq(const char *bs, const char *topic, int n, int big_at, size_t big)
{
    char err[512];
    kafka_producer_config pc = {.client = {.bootstrap = bs}, .compression = "none"};
    kafka_producer *p = NULL;
    assert_int_equal(kafka_producer_new(&pc, &p, err, sizeof err), 0);
    char *bigv = calloc(1, big + 1);
    assert_non_null(bigv);
    memset(bigv, 'x', big);
    for (int i = 0; i < n; i++) {
        char v[32];
        int vl = snprintf(v, sizeof v, "v%d", i);
        const char *val = i == big_at ? bigv : v;
        size_t len = i == big_at ? big : (size_t)vl;
        assert_int_equal(
            kafka_producer_send(p, topic, 0, TS_BASE + i, "k", 1, val, len, NULL, err, sizeof err),
            0);
    }
    assert_int_equal(kafka_producer_flush(p, 10000, err, sizeof err), 0);
    assert_int_equal(kafka_producer_get_stats(p).delivered, (uint64_t)n);
    kafka_producer_free(p);
    free(bigv);
}

static void test_bad_span_and_end_ts(void **state)
{
    (void)state;
    char bs[512], err[512];
    kafka_local *k = small_cluster("small:1", bs, sizeof bs);
    send_seq(bs, "small", 10, 5, 2000);
    hooks h = {.restart_partition = -1};
    /* not stop_at_end: only end_ts makes the partition finite */
    kafka_consumer *c = consumer(bs, "small", 0, 0, TS_BASE + 8, 1000, &h);
    rt_source *src = NULL;
    assert_int_equal(kafka_source_new(c, "small", 0, &src, err, sizeof err), 0);
    assert_int_equal(src->finite, 1);
    rt_source_record r;
    for (int i = 0; i < 8; i++) {
        int rc = next_of(c, src, &r);
        assert_int_equal(r.offset, i);
        if (i == 5) {
            assert_int_equal(rc, RT_SOURCE_BAD);
            assert_int_equal(r.raw_length, 2000);
            assert_int_equal(r.value_len, 1000);
            assert_non_null(r.error);
            assert_non_null(strstr(r.error, "topic small partition 0 offset 5"));
            assert_non_null(strstr(r.error, "2001 bytes")); /* key + value */
            assert_non_null(strstr(r.error, "1000"));
            assert_non_null(strstr(r.error, bs));
        } else {
            assert_int_equal(rc, RT_SOURCE_RECORD);
            assert_null(r.error);
            char v[32];
            snprintf(v, sizeof v, "v%d", i);
            assert_int_equal(r.value_len, strlen(v));
            assert_memory_equal(r.value, v, r.value_len);
        }
    }
    /* record 8 has ts == end_ts: the end, not delivered, and the position stays on it */
    assert_int_equal(next_of(c, src, &r), RT_SOURCE_END);
    assert_int_equal(kafka_source_position(src), 8);
    assert_int_equal(next_of(c, src, &r), RT_SOURCE_END);
    kafka_source_free(src);
    kafka_consumer_free(c);
    kafka_local_free(k);
}

static void test_start_offset_from_hook(void **state)
{
    (void)state;
    char bs[512], err[512];
    kafka_local *k = small_cluster("restart:2", bs, sizeof bs);
    send_seq(bs, "restart", 100, -1, 0);
    hooks h = {.restart_partition = 0, .restart_offset = 37};
    kafka_consumer *c = consumer(bs, "restart", 0, 1, 0, 1 << 20, &h);
    assert_int_equal(h.asked, 2);
    rt_source *src = NULL;
    assert_int_equal(kafka_source_new(c, "restart", 0, &src, err, sizeof err), 0);
    assert_int_equal(kafka_source_position(src), 37);
    rt_source_record r;
    int64_t want = 37;
    int rc;
    while ((rc = next_of(c, src, &r)) == RT_SOURCE_RECORD) {
        assert_int_equal(r.offset, want);
        char v[32];
        snprintf(v, sizeof v, "v%lld", (long long)want);
        assert_memory_equal(r.value, v, strlen(v));
        want++;
    }
    assert_int_equal(rc, RT_SOURCE_END);
    assert_int_equal(want, 100);
    kafka_source_free(src);
    /* partition 1 is empty: it ends at once */
    assert_int_equal(kafka_source_new(c, "restart", 1, &src, err, sizeof err), 0);
    assert_int_equal(next_of(c, src, &r), RT_SOURCE_END);
    kafka_source_free(src);
    /* a partition that is not assigned */
    assert_int_equal(kafka_source_new(c, "restart", 7, &src, err, sizeof err), -1);
    assert_non_null(strstr(err, "partition 7"));
    kafka_consumer_free(c);
    kafka_local_free(k);
}

/* Start policy timestamp: the mock cannot look offsets up by time, so the source scans from
 * the earliest offset and skips records older than start_ts (their offsets still count). */
static void test_start_timestamp(void **state)
{
    (void)state;
    char bs[512], err[512];
    kafka_local *k = small_cluster("bytime:1", bs, sizeof bs);
    send_seq(bs, "bytime", 100, -1, 0);
    const char *topics[] = {"bytime"};
    kafka_consumer_config cfg = {.client = {.bootstrap = bs},
                                 .topics = topics,
                                 .ntopics = 1,
                                 .start = KAFKA_START_TIMESTAMP,
                                 .start_ts = TS_BASE + 90,
                                 .stop_at_end = 1,
                                 .max_record_bytes = 1 << 20};
    kafka_consumer *c = NULL;
    assert_int_equal(kafka_consumer_new(&cfg, NULL, &c, err, sizeof err), 0);
    rt_source *src = NULL;
    assert_int_equal(kafka_source_new(c, "bytime", 0, &src, err, sizeof err), 0);
    rt_source_record r;
    int64_t want = 90;
    int rc;
    while ((rc = next_of(c, src, &r)) == RT_SOURCE_RECORD) {
        assert_int_equal(r.offset, want);
        assert_int_equal(r.ts, TS_BASE + want);
        want++;
    }
    assert_int_equal(rc, RT_SOURCE_END);
    assert_int_equal(want, 100);
    assert_int_equal(kafka_source_position(src), 100);
    kafka_source_free(src);
    kafka_consumer_free(c);
    kafka_local_free(k);
}

static void test_missing_topic(void **state)
{
    (void)state;
    char bs[512], err[512] = "";
    kafka_local *k = small_cluster("present:1", bs, sizeof bs);
    const char *topics[] = {"absent"};
    kafka_consumer_config cfg = {.client = {.bootstrap = bs}, .topics = topics, .ntopics = 1};
    kafka_consumer *c = NULL;
    assert_int_equal(kafka_consumer_new(&cfg, NULL, &c, err, sizeof err), -1);
    assert_null(c);
    assert_non_null(strstr(err, "absent"));
    assert_non_null(strstr(err, bs));
    int32_t n = 0;
    kafka_client_config cc = {.bootstrap = bs};
    assert_int_equal(kafka_topic_partitions(&cc, "absent", &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "absent"));
    kafka_local_free(k);
}

/* A group subscription: the hooks see the assignment (after the mock's ~3 s join), every
 * record comes back through the partition sources, and leaving revokes every partition. */
static void test_group_subscribe(void **state)
{
    (void)state;
    char bs[512], err[512];
    kafka_local *k = small_cluster("grouped:2", bs, sizeof bs);
    send_seq(bs, "grouped", 50, -1, 0);
    hooks h = {.restart_partition = -1};
    kafka_consumer *c = consumer(bs, "grouped", 1, 1, 0, 1 << 20, &h);
    double deadline = now_s() + DEADLINE_S;
    while (h.assigned < 2) {
        assert_int_equal(kafka_consumer_poll(c, 100, err, sizeof err), 0);
        assert_true(now_s() < deadline);
    }
    assert_int_equal(h.asked, 2);
    int total = 0;
    for (int32_t part = 0; part < 2; part++) {
        rt_source *src = NULL;
        assert_int_equal(kafka_source_new(c, "grouped", part, &src, err, sizeof err), 0);
        rt_source_record r;
        while (next_of(c, src, &r) == RT_SOURCE_RECORD)
            total++;
        kafka_source_free(src);
    }
    assert_int_equal(total, 50);
    assert_int_equal(kafka_consumer_commit(c, "grouped", 0, 50), 0);
    kafka_consumer_free(c);
    assert_int_equal(h.revoked, 2);
    kafka_local_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_one_broker), cmocka_unit_test(test_roundtrip_three_brokers),
        cmocka_unit_test(test_bad_span_and_end_ts),  cmocka_unit_test(test_start_offset_from_hook),
        cmocka_unit_test(test_start_timestamp),      cmocka_unit_test(test_missing_topic),
        cmocka_unit_test(test_group_subscribe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
