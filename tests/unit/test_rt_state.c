/* Keyed state: put/get/upsert/delete/iterate, byte accounting per operator and against the
 * process budget, the budget error, incremental resize, snapshot round trip; the open-addressing
 * table under it: back-shift removal against a model, entries that never move, tombstones under
 * iterators, charged slot arrays. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/graph.h"
#include "runtime/htab.h"
#include "runtime/mem.h"
#include "runtime/state.h"

static const rt_op_vtbl nop_vt = {0};

typedef struct fixture {
    rt_mem *mem;
    rt_graph *g;
    rt_op *op;
    rt_kv *kv;
} fixture;

static void setup(fixture *f, int64_t limit, const char *uid)
{
    assert_int_equal(rt_mem_new(limit, &f->mem), 0);
    rt_graph_config cfg = {.mem = f->mem, .task = "t1"};
    assert_int_equal(rt_graph_new(&cfg, &f->g), 0);
    assert_int_equal(rt_graph_add_op(f->g, uid, NULL, &nop_vt, NULL, 1, 1, &f->op), 0);
    char err[256];
    assert_int_equal(rt_graph_open(f->g, err, sizeof err), 0);
    assert_int_equal(rt_kv_new(f->op, "seen", &f->kv), 0);
}

static void teardown(fixture *f)
{
    rt_graph_free(f->g);
    assert_int_equal(rt_mem_used(f->mem), 0); /* every byte came back */
    rt_mem_free(f->mem);
}

static int keyf(char *buf, size_t cap, int i)
{
    return snprintf(buf, cap, "user-%08d", i);
}

static int charge_sum(void *ctx, int64_t delta)
{
    *(int64_t *)ctx += delta;
    return 0;
}

static void test_put_get_upsert_delete(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 0, "dedupe-impression");
    assert_null(rt_kv_get(f.kv, "a", 1, NULL));
    assert_int_equal(rt_kv_put(f.kv, "a", 1, "one", 3), 0);
    assert_int_equal(rt_kv_put(f.kv, "b", 1, "two", 3), 0);
    size_t vlen = 0;
    char *v = rt_kv_get(f.kv, "a", 1, &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 3);
    assert_memory_equal(v, "one", 3);
    /* a key that is a prefix of another, and the empty key, are distinct keys */
    assert_int_equal(rt_kv_put(f.kv, "", 0, "empty", 5), 0);
    assert_int_equal(rt_kv_put(f.kv, "ab", 2, "", 0), 0);
    assert_int_equal(rt_kv_count(f.kv), 4);
    v = rt_kv_get(f.kv, "", 0, &vlen);
    assert_int_equal(vlen, 5);
    assert_memory_equal(v, "empty", 5);
    assert_non_null(rt_kv_get(f.kv, "ab", 2, &vlen));
    assert_int_equal(vlen, 0);
    /* overwrite with a longer value */
    assert_int_equal(rt_kv_put(f.kv, "a", 1, "eleven!", 7), 0);
    v = rt_kv_get(f.kv, "a", 1, &vlen);
    assert_int_equal(vlen, 7);
    assert_memory_equal(v, "eleven!", 7);
    /* upsert: new zeroed, existing keeps its prefix, pointer writable in place */
    int created = -1;
    uint64_t *cnt;
    assert_int_equal(rt_kv_upsert(f.kv, "c", 1, 8, (void **)&cnt, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(*cnt, 0);
    *cnt = 41;
    assert_int_equal(rt_kv_upsert(f.kv, "c", 1, 8, (void **)&cnt, &created), 0);
    assert_int_equal(created, 0);
    (*cnt)++;
    assert_int_equal(*(uint64_t *)rt_kv_get(f.kv, "c", 1, NULL), 42);
    assert_int_equal(rt_kv_upsert(f.kv, "c", 1, 16, (void **)&cnt, &created), 0);
    assert_int_equal(cnt[0], 42);
    assert_int_equal(cnt[1], 0);
    /* a value pointer survives other keys' traffic, including growth of the table */
    uint64_t *stable = rt_kv_get(f.kv, "c", 1, NULL);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        int n = keyf(k, sizeof k, i);
        assert_int_equal(rt_kv_put(f.kv, k, (size_t)n, &i, sizeof i), 0);
    }
    assert_ptr_equal(rt_kv_get(f.kv, "c", 1, NULL), stable);
    assert_int_equal(stable[0], 42);
    assert_int_equal(rt_kv_delete(f.kv, "c", 1), 1);
    assert_int_equal(rt_kv_delete(f.kv, "c", 1), 0);
    assert_null(rt_kv_get(f.kv, "c", 1, NULL));
    for (int i = 0; i < 5000; i++) {
        int n = keyf(k, sizeof k, i);
        int *iv = rt_kv_get(f.kv, k, (size_t)n, NULL);
        assert_non_null(iv);
        assert_int_equal(*iv, i);
    }
    assert_int_equal(rt_kv_count(f.kv), 5004);
    teardown(&f);
}

static void test_byte_accounting(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 0, "count-hourly-item-event");
    assert_int_equal(rt_kv_bytes(f.kv), 0);
    assert_int_equal(rt_kv_put(f.kv, "key", 3, "v", 1), 0);
    int64_t one = rt_kv_bytes(f.kv);
    /* the entry (header, key, value) and the bucket array are both charged */
    assert_true(one >= 24 + 3 + 1 + 8 * 8);
    assert_int_equal(rt_op_mem_used(f.op), one);
    assert_int_equal(rt_graph_mem_used(f.g), one);
    assert_true(rt_mem_used(f.mem) >= one); /* reserved in chunks */
    /* a bigger value costs exactly its extra bytes */
    assert_int_equal(rt_kv_put(f.kv, "key", 3, "vvvvvvvvv", 9), 0);
    assert_int_equal(rt_kv_bytes(f.kv), one + 8);
    char k[32];
    for (int i = 0; i < 20000; i++) {
        int n = keyf(k, sizeof k, i);
        assert_int_equal(rt_kv_put(f.kv, k, (size_t)n, k, (size_t)n), 0);
    }
    int64_t many = rt_kv_bytes(f.kv);
    assert_true(many > 20000 * (24 + 2 * 13));
    assert_int_equal(rt_op_mem_used(f.op), many);
    /* the stateBytes gauge follows */
    rt_metrics_snap snap;
    assert_int_equal(rt_metrics_snapshot(rt_graph_metrics(f.g), &snap), 0);
    int found = 0;
    for (size_t i = 0; i < snap.n; i++)
        if (!strcmp(snap.samples[i].name, "stateBytes") &&
            !strcmp(snap.samples[i].labels, "operator=count-hourly-item-event,task=t1")) {
            assert_int_equal(snap.samples[i].value, many);
            found = 1;
        }
    assert_true(found);
    rt_metrics_snap_free(&snap);
    for (int i = 0; i < 20000; i++) {
        int n = keyf(k, sizeof k, i);
        assert_int_equal(rt_kv_delete(f.kv, k, (size_t)n), 1);
    }
    for (int i = 0; i < 100; i++)
        rt_kv_get(f.kv, "x", 1, NULL); /* let the shrink finish */
    assert_true(rt_kv_bytes(f.kv) < one + 8 + 1024);
    /* budget handed back beyond a chunk or two */
    assert_true(rt_mem_used(f.mem) <= 3 * RT_MEM_CHUNK);
    rt_kv_clear(f.kv);
    assert_int_equal(rt_kv_bytes(f.kv), 0);
    assert_int_equal(rt_op_mem_used(f.op), 0);
    teardown(&f);
}

static void test_budget_error_names_operator_and_limit(void **state)
{
    (void)state;
    fixture f;
    /* not a multiple of the chunk: the graph must take the last part exactly */
    const int64_t limit = 2 * RT_MEM_CHUNK + RT_MEM_CHUNK / 2;
    setup(&f, limit, "join-impression-action");
    char k[32];
    char val[200];
    memset(val, 'x', sizeof val);
    int i, rc = 0;
    for (i = 0; i < 1000000; i++) {
        int n = keyf(k, sizeof k, i);
        rc = rt_kv_put(f.kv, k, (size_t)n, val, sizeof val);
        if (rc) break;
    }
    assert_int_equal(rc, -1);
    assert_true(i > 5000); /* roughly 2.5 MiB / 270 bytes */
    assert_true(rt_mem_used(f.mem) <= limit);
    assert_true(rt_graph_mem_used(f.g) > limit - 65536); /* refused at the limit, not before */
    const char *err = rt_graph_error(f.g);
    assert_non_null(strstr(err, "join-impression-action"));
    assert_non_null(strstr(err, "state seen"));
    assert_non_null(strstr(err, "memory limit 2621440 bytes"));
    assert_non_null(strstr(err, "--memoryLimit"));
    /* the failed put changed nothing */
    int n = keyf(k, sizeof k, i);
    assert_null(rt_kv_get(f.kv, k, (size_t)n, NULL));
    assert_int_equal(rt_kv_count(f.kv), (size_t)i);
    /* freeing state makes room again */
    for (int j = 0; j < 100; j++) {
        n = keyf(k, sizeof k, j);
        assert_int_equal(rt_kv_delete(f.kv, k, (size_t)n), 1);
    }
    n = keyf(k, sizeof k, i);
    assert_int_equal(rt_kv_put(f.kv, k, (size_t)n, val, sizeof val), 0);
    teardown(&f);
}

static void test_budget_is_shared_between_graphs(void **state)
{
    (void)state;
    rt_mem *mem;
    assert_int_equal(rt_mem_new(4 * RT_MEM_CHUNK, &mem), 0);
    rt_graph *g[2];
    rt_op *op[2];
    rt_kv *kv[2];
    char err[256];
    for (int t = 0; t < 2; t++) {
        rt_graph_config cfg = {.mem = mem, .task = t ? "1" : "0"};
        assert_int_equal(rt_graph_new(&cfg, &g[t]), 0);
        assert_int_equal(
            rt_graph_add_op(g[t], "keep-first-view", NULL, &nop_vt, NULL, 1, 1, &op[t]), 0);
        assert_int_equal(rt_graph_open(g[t], err, sizeof err), 0);
        assert_int_equal(rt_kv_new(op[t], "seen", &kv[t]), 0);
    }
    char k[32], val[1000] = {0};
    int i = 0, failed = -1;
    /* alternate between the tasks until one is refused: together they hit the one limit */
    for (; failed < 0 && i < 100000; i++) {
        int n = keyf(k, sizeof k, i);
        if (rt_kv_put(kv[i % 2], k, (size_t)n, val, sizeof val) < 0) failed = i % 2;
    }
    assert_true(failed >= 0);
    assert_true(rt_graph_mem_used(g[0]) + rt_graph_mem_used(g[1]) > 3 * RT_MEM_CHUNK);
    assert_true(rt_graph_mem_used(g[0]) + rt_graph_mem_used(g[1]) <= 4 * RT_MEM_CHUNK);
    assert_non_null(strstr(rt_graph_error(g[failed]), failed ? "task 1" : "task 0"));
    rt_graph_free(g[0]);
    rt_graph_free(g[1]);
    assert_int_equal(rt_mem_used(mem), 0);
    rt_mem_free(mem);
}

static void test_iterate_with_delete(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 0, "dedupe-action");
    enum { N = 3000 };
    char k[32];
    for (int i = 0; i < N; i++) {
        int n = keyf(k, sizeof k, i);
        assert_int_equal(rt_kv_put(f.kv, k, (size_t)n, &i, sizeof i), 0);
    }
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    rt_kv_iter it;
    rt_kv_iter_begin(f.kv, &it);
    const uint8_t *key;
    size_t klen, vlen;
    void *val;
    int visited = 0;
    while (rt_kv_iter_next(&it, &key, &klen, &val, &vlen)) {
        int i = *(int *)val;
        assert_int_equal(vlen, sizeof(int));
        int n = keyf(k, sizeof k, i);
        assert_int_equal(klen, (size_t)n);
        assert_memory_equal(key, k, klen);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        visited++;
        if (i % 2) assert_int_equal(rt_kv_delete(f.kv, key, klen), 1);
    }
    rt_kv_iter_end(&it);
    assert_int_equal(visited, N);
    assert_int_equal(rt_kv_count(f.kv), N / 2);
    for (int i = 0; i < N; i++) {
        int n = keyf(k, sizeof k, i);
        assert_int_equal(rt_kv_get(f.kv, k, (size_t)n, NULL) != NULL, i % 2 == 0);
    }
    teardown(&f);
}

static void test_rehash_is_incremental(void **state)
{
    (void)state;
    rt_htab h;
    rt_htab_init(&h, NULL, NULL);
    char k[32];
    int i = 0;
    /* fill until a grow of a table of at least 1024 buckets starts */
    for (;;) {
        int was = h.t[1] != NULL;
        int n = keyf(k, sizeof k, i);
        assert_non_null(rt_htab_insert(&h, k, (size_t)n, rt_hash_bytes(k, (size_t)n), 4));
        i++;
        assert_true(i < 100000);
        if (!was && h.t[1] && h.size[0] >= 1024) break;
    }
    size_t old_size = h.size[0];
    assert_int_equal(h.size[1], 2 * old_size);
    /* one operation moves at most a bucket: most entries are still in the old table */
    assert_true(h.used[0] > old_size / 2);
    int steps = 0;
    while (h.t[1]) {
        int n = keyf(k, sizeof k, steps % i);
        assert_non_null(rt_htab_find(&h, k, (size_t)n, rt_hash_bytes(k, (size_t)n)));
        steps++;
    }
    assert_true(steps > 10); /* it took many operations, each a small step */
    assert_int_equal(h.size[0], 2 * old_size);
    assert_int_equal(rt_htab_count(&h), (size_t)i);
    for (int j = 0; j < i; j++) {
        int n = keyf(k, sizeof k, j);
        assert_non_null(rt_htab_find(&h, k, (size_t)n, rt_hash_bytes(k, (size_t)n)));
    }
    rt_htab_clear(&h);
}

static void test_iterate_during_rehash(void **state)
{
    (void)state;
    rt_htab h;
    rt_htab_init(&h, NULL, NULL);
    char k[32];
    int n = 0;
    for (;;) {
        int was = h.t[1] != NULL;
        int len = keyf(k, sizeof k, n);
        rt_hentry *e = rt_htab_insert(&h, k, (size_t)len, rt_hash_bytes(k, (size_t)len), 4);
        assert_non_null(e);
        memcpy(rt_hentry_val(e), &n, 4);
        n++;
        if (!was && h.t[1] && h.size[0] >= 512) break;
    }
    /* entries sit in both tables now; removing while iterating must neither skip nor repeat */
    unsigned char *seen = calloc((size_t)n, 1);
    rt_htab_iter it;
    rt_htab_iter_begin(&h, &it);
    rt_hentry *e;
    int visited = 0;
    while ((e = rt_htab_iter_next(&it))) {
        int v;
        memcpy(&v, rt_hentry_val(e), 4);
        assert_int_equal(seen[v], 0);
        seen[v] = 1;
        visited++;
        if (v % 2) rt_htab_remove(&h, e, rt_hash_bytes(rt_hentry_key(e), e->klen));
        /* lookups in between would move buckets if the iterator did not hold the rehash */
        int len = keyf(k, sizeof k, (v * 7) % n);
        rt_htab_find(&h, k, (size_t)len, rt_hash_bytes(k, (size_t)len));
    }
    rt_htab_iter_end(&it);
    assert_int_equal(visited, n);
    assert_int_equal(rt_htab_count(&h), (size_t)(n - n / 2));
    free(seen);
    rt_htab_clear(&h);
}

/* A reference model for the table tests: which of N keys are present. */
static uint64_t test_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd32(void)
{
    test_rng ^= test_rng << 13;
    test_rng ^= test_rng >> 7;
    test_rng ^= test_rng << 17;
    return (uint32_t)test_rng;
}

static uint64_t hk(const char *k, int n)
{
    return rt_hash_bytes(k, (size_t)n);
}

static void test_removal_shifts_runs_and_keeps_every_key_reachable(void **state)
{
    (void)state;
    /* Random inserts and removals through several grows and shrinks, checked against a model
     * after every step: a back-shift that left a key unreachable, or a move that lost one,
     * shows up as a find that disagrees with the model. */
    enum { N = 4000 };
    static unsigned char in[N];
    memset(in, 0, sizeof in);
    rt_htab h;
    rt_htab_init(&h, NULL, NULL);
    char k[32];
    size_t count = 0;
    for (int step = 0; step < 60000; step++) {
        /* phases: mostly inserts, then mostly removals, so the table grows and shrinks */
        int phase = (step / 10000) % 2;
        int i = (int)(rnd32() % N);
        int n = keyf(k, sizeof k, i);
        rt_hentry *e = rt_htab_find(&h, k, (size_t)n, hk(k, n));
        assert_int_equal(e != NULL, in[i]);
        if (!in[i] && (rnd32() % 4 != 0) != phase) {
            e = rt_htab_insert(&h, k, (size_t)n, hk(k, n), sizeof(int));
            assert_non_null(e);
            memcpy(rt_hentry_val(e), &i, sizeof i);
            in[i] = 1;
            count++;
        } else if (in[i] && (rnd32() % 4 != 0) == phase) {
            int v;
            memcpy(&v, rt_hentry_val(e), sizeof v);
            assert_int_equal(v, i);
            rt_htab_remove(&h, e, hk(k, n));
            in[i] = 0;
            count--;
        }
        assert_int_equal(rt_htab_count(&h), count);
        /* the load stays at most 3/4, so every probe run ends */
        for (int t = 0; t < 2; t++)
            if (h.size[t]) assert_true((h.used[t] + h.tomb[t]) * 4 <= h.size[t] * 3 + 4);
    }
    for (int i = 0; i < N; i++) {
        int n = keyf(k, sizeof k, i);
        assert_int_equal(rt_htab_find(&h, k, (size_t)n, hk(k, n)) != NULL, in[i]);
    }
    rt_htab_clear(&h);
    assert_int_equal(rt_htab_count(&h), 0);
}

static void test_entries_never_move_and_tombstones_go_with_the_next_resize(void **state)
{
    (void)state;
    rt_htab h;
    rt_htab_init(&h, NULL, NULL);
    enum { N = 2000 };
    rt_hentry *at[N];
    char k[32];
    for (int i = 0; i < N; i++) {
        int n = keyf(k, sizeof k, i);
        at[i] = rt_htab_insert(&h, k, (size_t)n, hk(k, n), 8);
        assert_non_null(at[i]);
    }
    /* growth moved slots, never entries: every pointer handed out is still the entry */
    for (int i = 0; i < N; i++) {
        int n = keyf(k, sizeof k, i);
        assert_ptr_equal(rt_htab_find(&h, k, (size_t)n, hk(k, n)), at[i]);
    }
    while (h.t[1]) { /* let any resize finish */
        int n = keyf(k, sizeof k, 0);
        rt_htab_find(&h, k, (size_t)n, hk(k, n));
    }
    /* removals while an iterator is live leave tombstones (nothing may shift under it) */
    rt_htab_iter it;
    rt_htab_iter_begin(&h, &it);
    rt_hentry *e;
    int removed = 0;
    while ((e = rt_htab_iter_next(&it))) {
        if (removed < N / 2) {
            rt_htab_remove(&h, e, rt_hash_bytes(rt_hentry_key(e), e->klen));
            removed++;
        }
    }
    rt_htab_iter_end(&it);
    assert_int_equal(h.tomb[0], (size_t)removed);
    assert_int_equal(rt_htab_count(&h), (size_t)(N - removed));
    /* the survivors are still found through the tombstones */
    int found = 0;
    for (int i = 0; i < N; i++) {
        int n = keyf(k, sizeof k, i);
        if (rt_htab_find(&h, k, (size_t)n, hk(k, n))) found++;
    }
    assert_int_equal(found, N - removed);
    /* inserts reuse tombstones or trigger a resize; either way, once a resize has run the
     * array holds no tombstones */
    int next = N;
    while (h.tomb[0] && next < 20 * N) {
        int n = keyf(k, sizeof k, next++);
        assert_non_null(rt_htab_insert(&h, k, (size_t)n, hk(k, n), 8));
    }
    while (h.t[1]) {
        int n = keyf(k, sizeof k, 0);
        rt_htab_find(&h, k, (size_t)n, hk(k, n));
    }
    assert_int_equal(h.tomb[0], 0);
    rt_htab_clear(&h);
}

static void test_slot_arrays_are_charged_and_returned(void **state)
{
    (void)state;
    int64_t charged = 0;
    rt_htab h;
    rt_htab_init(&h, charge_sum, &charged);
    char k[32];
    for (int i = 0; i < 10000; i++) {
        int n = keyf(k, sizeof k, i);
        assert_non_null(rt_htab_insert(&h, k, (size_t)n, hk(k, n), 16));
    }
    assert_int_equal(charged, h.bytes);
    /* entries (8 header + 16 key + 16 value + 16 allocator) plus 16-byte slots at <= 3/4 load */
    assert_true(charged >= 10000 * (56 + 16 * 4 / 3));
    assert_true(charged <= 10000 * (56 + 16 * 8 / 3) + 4096);
    for (int i = 0; i < 10000; i++) {
        int n = keyf(k, sizeof k, i);
        rt_hentry *e = rt_htab_find(&h, k, (size_t)n, hk(k, n));
        assert_non_null(e);
        rt_htab_remove(&h, e, hk(k, n));
    }
    /* empty: the slot arrays went back too */
    assert_int_equal(charged, 0);
    assert_null(h.t[0]);
    rt_htab_clear(&h);
}

static void test_kv_snapshot_round_trip(void **state)
{
    (void)state;
    fixture a, b;
    setup(&a, 0, "merge-impression-details");
    setup(&b, 0, "merge-impression-details");
    char k[32];
    for (int i = 0; i < 1000; i++) {
        int n = keyf(k, sizeof k, i);
        uint8_t v[64];
        memset(v, i & 0xff, sizeof v);
        assert_int_equal(rt_kv_put(a.kv, k, (size_t)n, v, (size_t)(i % 64)), 0);
    }
    assert_int_equal(rt_kv_put(b.kv, "stale", 5, "x", 1), 0);
    rt_buf buf;
    rt_buf_init(&buf, 0);
    assert_int_equal(rt_kv_snapshot(a.kv, &buf), 0);
    char err[256];
    assert_int_equal(rt_kv_restore(b.kv, buf.data, buf.len, err, sizeof err), 0);
    assert_int_equal(rt_kv_count(b.kv), 1000);
    assert_null(rt_kv_get(b.kv, "stale", 5, NULL)); /* restore replaces */
    for (int i = 0; i < 1000; i++) {
        int n = keyf(k, sizeof k, i);
        size_t vlen;
        uint8_t *v = rt_kv_get(b.kv, k, (size_t)n, &vlen);
        assert_non_null(v);
        assert_int_equal(vlen, (size_t)(i % 64));
        for (size_t j = 0; j < vlen; j++)
            assert_int_equal(v[j], i & 0xff);
    }
    /* truncated and corrupted images are errors that name the table */
    assert_int_equal(rt_kv_restore(b.kv, buf.data, buf.len - 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "state seen"));
    assert_non_null(strstr(err, "truncated"));
    buf.data[0] = 2;
    assert_int_equal(rt_kv_restore(b.kv, buf.data, buf.len, err, sizeof err), -1);
    assert_non_null(strstr(err, "version 2"));
    /* a snapshot buffer's hard cap turns into an error, not a huge allocation */
    rt_buf small;
    rt_buf_init(&small, 1000);
    assert_int_equal(rt_kv_snapshot(a.kv, &small), -1);
    assert_true(small.len <= 1000);
    rt_buf_free(&small);
    rt_buf_free(&buf);
    teardown(&a);
    teardown(&b);
}

static void test_state_names(void **state)
{
    (void)state;
    fixture f;
    setup(&f, 0, "x");
    rt_kv *kv;
    assert_int_equal(rt_kv_new(f.op, "seen", &kv), -1);
    assert_non_null(strstr(rt_graph_error(f.g), "state seen created twice"));
    teardown(&f);
    setup(&f, 0, "y");
    assert_int_equal(rt_kv_new(f.op, "Bad Name", &kv), -1);
    assert_non_null(strstr(rt_graph_error(f.g), "Bad Name"));
    teardown(&f);
}

static void test_buf_reader_limits(void **state)
{
    (void)state;
    rt_buf b;
    rt_buf_init(&b, 64);
    assert_int_equal(rt_buf_put_varint(&b, 300), 0);
    assert_int_equal(rt_buf_put_u64(&b, 0x0102030405060708ull), 0);
    assert_int_equal(rt_buf_put_str(&b, "hello"), 0);
    assert_int_equal(rt_buf_put_varint(&b, UINT64_MAX), 0);
    assert_int_equal(rt_buf_append(&b, "x", 64), -1); /* over the cap: refused, unchanged */
    size_t len = b.len;
    rt_buf_reader r;
    rt_buf_reader_init(&r, b.data, b.len);
    uint64_t v;
    const uint8_t *p;
    size_t n;
    assert_int_equal(rt_buf_read_varint(&r, &v), 0);
    assert_int_equal(v, 300);
    assert_int_equal(rt_buf_read_u64(&r, &v), 0);
    assert_int_equal(v, 0x0102030405060708ull);
    assert_int_equal(rt_buf_read_bytes(&r, &p, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "hello", 5);
    assert_int_equal(rt_buf_read_varint(&r, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(rt_buf_reader_left(&r), 0);
    assert_int_equal(rt_buf_read_u8(&r, (uint8_t *)&n), -1);
    /* a length that points past the end does not move the reader */
    rt_buf_reset(&b);
    rt_buf_put_varint(&b, 1000);
    rt_buf_put_u8(&b, 1);
    rt_buf_reader_init(&r, b.data, b.len);
    assert_int_equal(rt_buf_read_bytes(&r, &p, &n), -1);
    assert_int_equal(rt_buf_reader_left(&r), b.len);
    assert_true(len > 0);
    rt_buf_free(&b);
}

/* The budget's peak and pressure mark; early release fires the largest holder's earliest timers
 * (ahead of the watermark) and skips an operator that keeps its state. */
static int release_timer(rt_op *op, int64_t time, const uint8_t *key, size_t klen)
{
    (void)time;
    rt_kv *kv = *(rt_kv **)rt_op_self(op);
    rt_kv_delete(kv, key, klen);
    return 0;
}

static int hold_open(rt_op *op)
{
    rt_kv **kv = (rt_kv **)rt_op_self(op);
    return rt_kv_new(op, "held", kv);
}

static void test_pressure_and_early_release(void **state)
{
    (void)state;
    rt_mem *mem;
    assert_int_equal(rt_mem_new(10 * RT_MEM_CHUNK, &mem), 0);
    assert_int_equal(rt_mem_pressure(mem), 0);
    assert_int_equal(rt_mem_reserve(mem, 9 * RT_MEM_CHUNK + 1), 0);
    assert_int_equal(rt_mem_pressure(mem), 1); /* over 90% */
    rt_mem_unreserve(mem, 9 * RT_MEM_CHUNK + 1);
    assert_int_equal(rt_mem_pressure(mem), 0);
    assert_int_equal(rt_mem_peak(mem), 9 * RT_MEM_CHUNK + 1);

    static rt_kv *kv_a, *kv_b;
    static const rt_op_vtbl rel_vt = {.open = hold_open, .on_timer = release_timer};
    rt_graph *g;
    rt_graph_config cfg = {.mem = mem, .task = "t"};
    assert_int_equal(rt_graph_new(&cfg, &g), 0);
    rt_op *a, *b;
    assert_int_equal(rt_graph_add_op(g, "holder", NULL, &rel_vt, &kv_a, 1, 0, &a), 0);
    assert_int_equal(rt_graph_add_op(g, "dedupe", NULL, &rel_vt, &kv_b, 1, 0, &b), 0);
    char err[256];
    assert_int_equal(rt_graph_open(g, err, sizeof err), 0);
    rt_op_set_no_early_release(b);
    /* the dedupe holds more than the holder: still only the holder is released */
    char key[16], val[512] = {0};
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "a%d", i);
        assert_int_equal(rt_kv_put(kv_a, key, strlen(key), val, sizeof val), 0);
        assert_int_equal(rt_timer_register(a, 1000 + i, key, strlen(key)), 0);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "b%d", i);
        assert_int_equal(rt_kv_put(kv_b, key, strlen(key), val, sizeof val), 0);
        assert_int_equal(rt_timer_register(b, 10 + i, key, strlen(key)), 0);
    }
    int64_t holder = rt_op_mem_used(a), dedupe = rt_op_mem_used(b);
    int64_t target = rt_graph_mem_used(g) - holder / 2;
    int64_t fired = rt_graph_release_early(g, target);
    assert_true(fired > 0 && fired < 100);
    assert_true(rt_graph_mem_used(g) <= target);
    assert_int_equal(rt_op_mem_used(b), dedupe); /* untouched */
    assert_int_equal(rt_kv_count(kv_a), 100 - (size_t)fired);
    /* the oldest went first: a0 .. a(fired-1) */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "a%d", i);
        int present = rt_kv_get(kv_a, key, strlen(key), NULL) != NULL;
        assert_int_equal(present, i >= fired);
    }
    /* nothing left to release but the dedupe: stops */
    assert_int_equal(rt_graph_release_early(g, 0), 100 - fired);
    assert_int_equal(rt_kv_count(kv_b), 200);
    rt_graph_free(g);
    assert_int_equal(rt_mem_used(mem), 0);
    rt_mem_free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_upsert_delete),
        cmocka_unit_test(test_byte_accounting),
        cmocka_unit_test(test_budget_error_names_operator_and_limit),
        cmocka_unit_test(test_budget_is_shared_between_graphs),
        cmocka_unit_test(test_iterate_with_delete),
        cmocka_unit_test(test_rehash_is_incremental),
        cmocka_unit_test(test_iterate_during_rehash),
        cmocka_unit_test(test_removal_shifts_runs_and_keeps_every_key_reachable),
        cmocka_unit_test(test_entries_never_move_and_tombstones_go_with_the_next_resize),
        cmocka_unit_test(test_slot_arrays_are_charged_and_returned),
        cmocka_unit_test(test_kv_snapshot_round_trip),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_buf_reader_limits),
        cmocka_unit_test(test_pressure_and_early_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
