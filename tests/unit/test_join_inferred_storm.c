/* The inferred join's costs, counted instead of timed (spec/README.md "Benchmarks"; the issue's
 * goals): duplicate ids cost one hash lookup each and no state; 10^5 distinct parents in one
 * (user, content) scope cost O(n log n) index work, with times in order or all equal; the scope
 * order and the nearest choice equal a literal model of the reference's lists; the index stays
 * under 128 bytes per buffered impression. The work counter is the operator's index_ops (scope
 * tree nodes, comparisons, slots moved, hash entries compared). */
#include <math.h>

#include "test_join_inferred_harness.h"

static const int64_t T0 = 1601596151000;

static join_instances_params params(int64_t max_time, int64_t max_ooo)
{
    join_instances_params p;
    join_instances_params_default(&p);
    p.impression_action_join_min_ms = -max_time;
    p.impression_action_join_max_ms = max_ooo;
    return p;
}

/* ---------------------------------------------------------------- duplicates -------- */

/* 10^5 copies of one impression id for one user: the first is kept, each copy goes to the
 * duplicate port after one key comparison; the state does not grow and no timer is added. */
static void test_duplicate_parent_storm_costs_one_lookup_each_and_no_state(void **s)
{
    const int n = 100000;
    join_instances_params p = params(86400000, 0);
    harness *h = start(J3, &p);
    const char *spec = "imp=m1 ins=i1 req=r1 view=v1 content=c1";
    lhs(h, T0, spec);
    inferred_join_stats a = stats(h);
    for (int i = 1; i < n; i++)
        lhs(h, T0 + i, spec);
    inferred_join_stats b = stats(h);
    assert_int_equal(b.lhs_duplicates, n - 1);
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_DUPLICATE_LHS), n - 1);
    assert_int_equal(b.lhs_buffered, 1);
    assert_int_equal(b.index_bytes, a.index_bytes);
    assert_int_equal(b.lhs_payload_bytes, a.lhs_payload_bytes);
    assert_int_equal(b.pk_probes - a.pk_probes, n - 1); /* exactly one key compared per copy */
    assert_true(b.index_ops - a.index_ops <= 2ull * (n - 1)); /* user + key lookups */
    assert_int_equal(rt_timer_count(h->join), 1);
    wm(h, T0 + 2 * 86400000LL);
    assert_empty(h);
    stop(h);
}

/* 10^5 copies of one pending child key (an action with no impression id waiting for inference):
 * one is kept, the others go to the duplicate-pending port after one lookup each. */
static void test_duplicate_pending_child_storm_costs_one_lookup_each(void **s)
{
    const int n = 100000;
    join_instances_params p = params(86400000, 0);
    harness *h = start(J3, &p);
    rhs(h, T0, "act=a1 content=c1");
    inferred_join_stats a = stats(h);
    for (int i = 1; i < n; i++)
        rhs(h, T0, "act=a1 content=c1");
    inferred_join_stats b = stats(h);
    assert_int_equal(b.rhs_duplicate_pending, n - 1);
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_RHS_DUPLICATE_PENDING), n - 1);
    assert_int_equal(b.rhs_buffered, 1);
    assert_int_equal(b.index_bytes, a.index_bytes);
    assert_int_equal(b.rhs_payload_bytes, a.rhs_payload_bytes);
    assert_true(b.index_ops - a.index_ops <= 2ull * (n - 1));
    wm(h, T0 + 1);
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_DROPPED), 1);
    assert_empty(h);
    stop(h);
}

/* ---------------------------------------------------------------- one scope --------- */

/* Pushes n distinct impressions of content c for one user (times in order, or all equal) and
 * returns the index work it took. */
static uint64_t fill_scope(harness *h, int n, bool equal_times)
{
    uint64_t before = stats(h).index_ops;
    char spec[96];
    for (int i = 0; i < n; i++) {
        snprintf(spec, sizeof spec, "imp=m%d ins=i%d content=c", i, i);
        lhs(h, equal_times ? T0 : T0 + i, spec);
    }
    return stats(h).index_ops - before;
}

static double nlogn(double n)
{
    return n * log2(n);
}

/* 10^5 distinct impressions in one (user, content) scope: O(n log n) work whether the times
 * arrive in order (appends) or all equal (each insert lands mid-run, §7.3), and 8x the parents
 * cost about 8x (x the log factor), not 64x. */
static void test_one_scope_storm_is_n_log_n(void **s)
{
    const int n = 100000, small = 12500;
    for (int equal = 0; equal < 2; equal++) {
        join_instances_params p = params(86400000, 0);
        harness *h = start(J3, &p);
        uint64_t ops = fill_scope(h, n, equal);
        assert_int_equal(stats(h).lhs_buffered, n);
        print_message("one scope, %s times: %d parents, %.1f index ops each, %.1f index bytes "
                      "each\n",
                      equal ? "equal" : "ordered", n, (double)ops / n,
                      (double)stats(h).index_bytes / n);
        assert_true((double)ops <= 8.0 * nlogn(n));
        /* the order kept is the reference's: an equal-time impression probes index 1 of
         * [c, d, ..] only for tiny lists, so check the first members against the model below */
        harness *g = start(J3, &p);
        uint64_t ops_small = fill_scope(g, small, equal);
        double ratio = (double)ops / (double)ops_small;
        assert_true(ratio < 8.0 * 1.5 * log2(n) / log2(small)); /* quadratic would be 64 */
        stop(g);

        /* children against the big scope: each choice is a few tree descents */
        uint64_t before = stats(h).index_ops;
        char spec[64];
        for (int i = 0; i < 1000; i++) {
            snprintf(spec, sizeof spec, "act=a%d content=c", i);
            rhs(h, T0 + n + i, spec);
        }
        wm(h, T0 + n + 1000);
        assert_int_equal(on_port(h, INFERRED_JOIN_PORT_OUT), 1000);
        assert_true((double)(stats(h).index_ops - before) <= 1000 * 8.0 * log2(n));
        /* every parent leaves by prefix trims: linear in all */
        before = stats(h).index_ops;
        wm(h, T0 + n + 2 * 86400000LL);
        assert_true((double)(stats(h).index_ops - before) <= 8.0 * nlogn(n));
        assert_empty(h);
        stop(h);
    }
}

/* ---------------------------------------------------------------- the model --------- */

/* The reference's list: an array sorted by lt, inserted at Collections.binarySearch's index
 * (comparing elements, not counts), trimmed by removing every element with lt <= horizon. */
typedef struct mel {
    int64_t lt;
    int id;
} mel;

typedef struct model {
    mel *v;
    int n;
} model;

static int64_t model_search(const model *m, int64_t key)
{
    int lo = 0, hi = m->n - 1;
    while (lo <= hi) {
        int mid = (int)(((unsigned)lo + (unsigned)hi) >> 1);
        if (m->v[mid].lt < key)
            lo = mid + 1;
        else if (m->v[mid].lt > key)
            hi = mid - 1;
        else
            return mid;
    }
    return -(lo + 1);
}

static void model_insert(model *m, int64_t lt, int id)
{
    int64_t r = model_search(m, lt);
    int at = r >= 0 ? (int)r : (int)(-r - 1);
    memmove(m->v + at + 1, m->v + at, (size_t)(m->n - at) * sizeof m->v[0]);
    m->v[at] = (mel){lt, id};
    m->n++;
}

static void model_trim(model *m, int64_t horizon)
{
    int k = 0;
    while (k < m->n && m->v[k].lt <= horizon)
        k++;
    memmove(m->v, m->v + k, (size_t)(m->n - k) * sizeof m->v[0]);
    m->n -= k;
}

/* §7.7 on the model: the chosen id or -1. */
static int model_nearest(const model *m, int64_t r, int64_t max_time, int64_t max_ooo)
{
    if (!m->n) return -1;
    int64_t at = model_search(m, r);
    const mel *c;
    if (at >= 0) {
        c = &m->v[at];
    } else {
        int i = (int)(-at - 1);
        if (i == m->n) {
            c = &m->v[m->n - 1];
        } else if (i == 0) {
            c = &m->v[0];
        } else {
            int64_t e = r - m->v[i - 1].lt, l = m->v[i].lt - r;
            bool ev = e <= max_time, lv = l <= max_ooo;
            if (!ev && !lv) return -1;
            c = (ev && (!lv || e < l)) ? &m->v[i - 1] : &m->v[i];
        }
    }
    if (c->lt < r - max_time || c->lt > r + max_ooo) return -1;
    return c->id;
}

typedef struct walk_buf {
    int *ids;
    int64_t *lts;
    int n;
} walk_buf;

static void walk_collect(void *arg, const char *pk, size_t n, int64_t lt)
{
    walk_buf *w = arg;
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)n, pk);
    w->ids[w->n] = atoi(buf + 1); /* "m<id>" */
    w->lts[w->n] = lt;
    w->n++;
}

static void assert_same_order(harness *h, const model *m)
{
    uint8_t key[16];
    int kl = job_key_platform_id(1, "u1", key, sizeof key);
    walk_buf w = {malloc(sizeof(int) * (size_t)(m->n + 1)),
                  malloc(sizeof(int64_t) * (size_t)(m->n + 1)), 0};
    size_t got_n = inferred_join_scope_walk(h->join, key, (size_t)kl, "c", walk_collect, &w);
    assert_int_equal(got_n, (size_t)m->n);
    for (int i = 0; i < m->n; i++) {
        if (w.ids[i] != m->v[i].id)
            fail_msg("position %d of %d: m%d (lt %lld), the model has m%d (lt %lld)", i, m->n,
                     w.ids[i], (long long)w.lts[i], m->v[i].id, (long long)m->v[i].lt);
    }
    free(w.ids);
    free(w.lts);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* 3000 parents with times drawn from 60 values, so runs of equal times sit anywhere in the list
 * and span tree nodes: the scope order equals the literal model after every insert batch and
 * after every cleanup (a prefix trim), down to empty. */
static void test_scope_order_equals_the_reference_list_through_inserts_and_trims(void **s)
{
    const int n = 3000;
    const int64_t max_time = 100;
    join_instances_params p = params(max_time, 0);
    harness *h = start(J3, &p);
    model m = {calloc((size_t)n, sizeof(mel)), 0};
    char spec[64];
    for (int i = 0; i < n; i++) {
        int64_t lt = 1000 + 2 * (int64_t)rnd(60);
        snprintf(spec, sizeof spec, "imp=m%d ins=i%d content=c", i, i);
        lhs(h, lt, spec);
        model_insert(&m, lt, i);
        if (i % 500 == 499) assert_same_order(h, &m);
    }
    /* each parent's timer is at lt + maxTime: raising the watermark to w removes lt <= w - 100 */
    for (int64_t w = 1000 + max_time; m.n; w += 7) {
        wm(h, w);
        model_trim(&m, w - max_time);
        if (m.n) assert_same_order(h, &m);
    }
    assert_empty(h);
    free(m.v);
    stop(h);
}

/* 2000 parents with clustered times, then 600 keyless actions of that content at times around
 * and between them (exact hits on runs, misses inside and at both ends, out of range): each
 * joins the parent the model picks, or is dropped when the model finds none. */
static void test_nearest_choice_equals_the_reference_over_random_times(void **s)
{
    const int n = 2000, k = 600;
    const int64_t max_time = 40, max_ooo = 15;
    join_instances_params p = params(max_time, max_ooo);
    /* the multiplier stretches cleanup only: every timer of the key cleans by lt, so without it
     * the first child's timer would clear these parents before the others choose */
    p.id_join_duration_multiplier = 1000;
    harness *h = start(J3, &p);
    model m = {calloc((size_t)n, sizeof(mel)), 0};
    char spec[64];
    for (int i = 0; i < n; i++) {
        int64_t lt = 1000 + 3 * (int64_t)rnd(200);
        snprintf(spec, sizeof spec, "imp=m%d ins=i%d content=c lt=%lld", i, i, (long long)lt);
        lhs(h, 1000 + i, spec);
        model_insert(&m, lt, i);
    }
    int want_joined = 0;
    int *want = malloc(sizeof(int) * k);
    for (int i = 0; i < k; i++) {
        int64_t r = 900 + (int64_t)rnd(820);
        snprintf(spec, sizeof spec, "act=a%d content=c lt=%lld", i, (long long)r);
        rhs(h, 5000 + i, spec); /* timers in arrival order, all before any parent's cleanup */
        want[i] = model_nearest(&m, r, max_time, max_ooo);
        want_joined += want[i] >= 0;
    }
    wm(h, 5000 + k + max_ooo);
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_OUT), want_joined);
    assert_int_equal(on_port(h, INFERRED_JOIN_PORT_DROPPED), k - want_joined);
    assert_true(want_joined > k / 3 && want_joined < k);
    size_t jo = 0, dr = 0;
    for (int i = 0; i < k; i++) {
        char act[16];
        snprintf(act, sizeof act, "a%d", i);
        if (want[i] >= 0) {
            const got *g = nth(h, INFERRED_JOIN_PORT_OUT, jo++);
            assert_string_equal(g->action, act);
            char imp[16];
            snprintf(imp, sizeof imp, "m%d", want[i]);
            assert_string_equal(g->impression, imp);
        } else {
            assert_string_equal(nth(h, INFERRED_JOIN_PORT_DROPPED, dr++)->action, act);
        }
    }
    free(want);
    free(m.v);
    stop(h);
}

/* ---------------------------------------------------------------- bytes ------------- */

/* Impressions shaped like the generator's CLI profile (UUID ids, one request per view, 20
 * insertions per request of which 14 are impressed, every request listing the same 20 items)
 * buffered in J3: the index costs at most 128 bytes per impression beside the packed payload. */
static void test_index_stays_under_128_bytes_per_buffered_impression(void **s)
{
    join_instances_params p;
    join_instances_params_default(&p);
    harness *h = start(J3, &p);
    char spec[512];
    int imps = 0;
    for (int u = 0; u < 4; u++) {
        for (int v = 0; v < 100; v++) {
            for (int i = 0; i < 20; i++) {
                if (i % 10 >= 7) continue;
                int id = (u * 100 + v) * 20 + i;
                snprintf(spec, sizeof spec,
                         "luid=00000000-0000-0000-0000-%012x "
                         "view=22222222-2222-2222-0000-%012x req=33333333-3333-3333-0000-%012x "
                         "ins=44444444-4444-4444-0000-%012x content=i-1-%d "
                         "imp=55555555-5555-5555-0000-%012x",
                         u, u * 100 + v, u * 100 + v, id, i + 1, id);
                lhs(h, T0 + v * 1000 + i, spec);
                imps++;
            }
        }
    }
    inferred_join_stats st = stats(h);
    assert_int_equal(st.lhs_buffered, imps);
    double idx = (double)st.index_bytes / imps, pay = (double)st.lhs_payload_bytes / imps;
    print_message("%d buffered impressions: %.1f index bytes and %.1f payload bytes each\n", imps,
                  idx, pay);
    assert_true(idx <= 128.0);
    assert_true(pay > 100.0); /* the ids themselves live in the payload, once */
    wm(h, T0 + 2 * 86400000LL);
    assert_empty(h);
    stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicate_parent_storm_costs_one_lookup_each_and_no_state),
        cmocka_unit_test(test_duplicate_pending_child_storm_costs_one_lookup_each),
        cmocka_unit_test(test_one_scope_storm_is_n_log_n),
        cmocka_unit_test(test_scope_order_equals_the_reference_list_through_inserts_and_trims),
        cmocka_unit_test(test_nearest_choice_equals_the_reference_over_random_times),
        cmocka_unit_test(test_index_stays_under_128_bytes_per_buffered_impression),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
