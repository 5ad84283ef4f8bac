/* The top-query filter (spec/other-jobs.md §B.9): which hashes become top queries (windows of
 * size and slide over the record time, an inclusive threshold, blank and over-long queries never
 * counted, one count per hash over all platforms), and the gate (RightSeenOutput): the empty
 * query passes at once, other results wait for their timer, and the first timer of a hash emits
 * or drops everything buffered for it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "jobs/counter/counter_fields.h"
#include "jobs/counter/counter_tables.h"
#include "jobs/counter/top_query.h"
#include "runtime/timers.h"
#include "test_counter_harness.h"

static void setup_count(harness *h, int64_t size, int64_t slide, int64_t threshold)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(rt_graph_new(NULL, &h->g), 0);
    top_query_config c = {size, slide, threshold, 100};
    char err[256];
    assert_int_equal(top_query_check(&c, err, sizeof err), 0);
    assert_int_equal(top_query_count_op_add(h->g, "count-top-query", &c, &h->op), 0);
    h_open(h);
}

static int push_query(harness *h, const char *q, int64_t ts, int64_t platform)
{
    counter_fields f;
    memset(&f, 0, sizeof f);
    f.platform_id = platform;
    f.query = q;
    f.query_len = strlen(q);
    f.query_hash = ctable_query_hash(q, f.query_len);
    rt_record rec = {.ts = ts, .type = REC_COUNTER_EVENT, .data = &f};
    return rt_graph_push(h->g, h->op, 0, &rec);
}

/* The minicluster's settings: window 1 day, slide 1 minute, threshold 2. */
static void test_minicluster_queries(void **s)
{
    harness h;
    setup_count(&h, DAY_MS, MIN_MS, 2);
    assert_int_equal(push_query(&h, "query two", 10 * MIN_MS, 20), 0);
    assert_int_equal(h_wm(&h, 10 * MIN_MS), 0);
    assert_int_equal(push_query(&h, "query two", 30 * MIN_MS, 20), 0);
    assert_int_equal(push_query(&h, "query one", 2 * HOUR_MS, 20), 0);
    /* the first window holding both ends at 00:31 (start 00:30 - 1 day + 1 minute) */
    assert_int_equal(h_wm(&h, 31 * MIN_MS - 2), 0);
    assert_string_equal(h_take(&h), "");
    assert_int_equal(h_wm(&h, 31 * MIN_MS - 1), 0);
    assert_string_equal(h_take(&h), "top 41809fa5f00aefaa @1859999");
    /* once through, later events of the hash cost a probe and emit nothing more */
    assert_int_equal(push_query(&h, "query two", 40 * MIN_MS, 21), 0);
    assert_int_equal(rt_graph_finish(h.g), 0);
    /* query one was seen once: never a top query */
    assert_string_equal(h_take(&h), "");
    assert_int_equal(rt_timer_count(h.op), 0);
    h_free(&h);
}

static void test_blank_and_long_queries_never_count(void **s)
{
    harness h;
    setup_count(&h, DAY_MS, MIN_MS, 1);
    char q100[101], q101[102];
    memset(q100, 'x', 100);
    q100[100] = 0;
    memset(q101, 'y', 101);
    q101[101] = 0;
    assert_int_equal(push_query(&h, "", 1000, 1), 0);
    assert_int_equal(push_query(&h, "   ", 1000, 1), 0);
    assert_int_equal(push_query(&h, q101, 1000, 1), 0);
    assert_int_equal(push_query(&h, q100, 1000, 1), 0);
    assert_int_equal(rt_graph_finish(h.g), 0);
    char want[64];
    snprintf(want, sizeof want, "top %016" PRIx64 " @%d", ctable_query_hash(q100, 100), 60000 - 1);
    assert_string_equal(h_take(&h), want);
    h_free(&h);
}

static void test_windows_of_size_and_slide(void **s)
{
    /* two events 2 days apart never share a 1-day window; threshold 2 is never reached */
    harness h;
    setup_count(&h, DAY_MS, 6 * HOUR_MS, 2);
    assert_int_equal(push_query(&h, "far apart", 0, 1), 0);
    assert_int_equal(push_query(&h, "far apart", 2 * DAY_MS, 2), 0);
    assert_int_equal(rt_graph_finish(h.g), 0);
    assert_string_equal(h_take(&h), "");
    h_free(&h);
    /* the platforms count together: one event each on two platforms within a window */
    setup_count(&h, DAY_MS, 6 * HOUR_MS, 2);
    assert_int_equal(push_query(&h, "shared", 5 * HOUR_MS, 1), 0);
    assert_int_equal(push_query(&h, "shared", 7 * HOUR_MS, 2), 0);
    assert_int_equal(rt_graph_finish(h.g), 0);
    /* windows start every 6 h; [06:00 - 1 day, 06:00) holds only the first; the first holding
     * both is [06:00 - 18 h, ...) = [-12h, 12h): it ends at 12:00 */
    char want[64];
    snprintf(want, sizeof want, "top %016" PRIx64 " @%" PRId64, ctable_query_hash("shared", 6),
             12 * HOUR_MS - 1);
    assert_string_equal(h_take(&h), want);
    h_free(&h);
}

static void test_check_rejects_bad_windows(void **s)
{
    char err[256];
    top_query_config c = {0, MIN_MS, 1, 100};
    assert_int_equal(top_query_check(&c, err, sizeof err), -1);
    top_query_config d = {30 * DAY_MS, 1, 1, 100};
    assert_int_equal(top_query_check(&d, err, sizeof err), -1);
    assert_non_null(strstr(err, "--searchQueryWindowSlide"));
}

/* ---- the gate ---- */

static void setup_gate(harness *h)
{
    memset(h, 0, sizeof *h);
    assert_int_equal(rt_graph_new(NULL, &h->g), 0);
    assert_int_equal(top_query_gate_op_add(h->g, "gate-top-query", &h->op), 0);
    h_open(h);
}

static int push_result(harness *h, const char *query, int64_t count, int64_t ts)
{
    ctable_key k = {
        .platform_id = 20, .metric = 64, .query_hash = ctable_query_hash(query, strlen(query))};
    uint8_t key[64];
    int n = ctable_key_encode(CTABLE_QUERY, &k, key, sizeof key);
    counter_window_result r = {.table = CTABLE_QUERY,
                               .key = key,
                               .key_len = (size_t)n,
                               .bucket = 1,
                               .unit_ms = HOUR_MS,
                               .count = count};
    rt_record rec = {.ts = ts, .type = REC_COUNTER_WINDOW, .data = &r};
    return rt_graph_push(h->g, h->op, 0, &rec);
}

static int push_top(harness *h, const char *query, int64_t ts)
{
    uint64_t hash = ctable_query_hash(query, strlen(query));
    rt_record rec = {.ts = ts, .type = REC_COUNTER_TOP_QUERY, .data = &hash};
    return rt_graph_push(h->g, h->op, 1, &rec);
}

static void test_gate(void **s)
{
    harness h;
    setup_gate(&h);
    /* the empty query passes at once */
    assert_int_equal(push_result(&h, "", 1, 100), 0);
    const char *first = h_take(&h);
    assert_null(strchr(first, '\n'));
    assert_non_null(strstr(first, " 1h 1 ttl=0 @100"));
    /* query two: buffered until its timer; seen by then, so everything buffered goes out, the
     * later result too, with the firing timer's time */
    assert_int_equal(push_result(&h, "query two", 1, 200), 0);
    assert_int_equal(push_result(&h, "query two", 2, 900), 0);
    assert_int_equal(h_wm(&h, 150), 0);
    assert_string_equal(h_take(&h), "");
    assert_int_equal(push_top(&h, "query two", 199), 0);
    assert_int_equal(h_wm(&h, 200), 0);
    const char *out = h_take(&h);
    assert_non_null(strstr(out, " 1h 1 ttl=0 @200\n"));
    assert_non_null(strstr(out, " 1h 2 ttl=0 @200"));
    /* the timer at 900 finds nothing left */
    assert_int_equal(h_wm(&h, 1000), 0);
    assert_string_equal(h_take(&h), "");
    /* query one: never seen by its timer: dropped, and a later top mark does not bring it back */
    assert_int_equal(push_result(&h, "query one", 1, 2000), 0);
    assert_int_equal(h_wm(&h, 2000), 0);
    assert_int_equal(push_top(&h, "query one", 2001), 0);
    assert_int_equal(rt_graph_finish(h.g), 0);
    assert_string_equal(h_take(&h), "");
    h_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minicluster_queries),
        cmocka_unit_test(test_blank_and_long_queries_never_count),
        cmocka_unit_test(test_windows_of_size_and_slide),
        cmocka_unit_test(test_check_rejects_bad_windows),
        cmocka_unit_test(test_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
