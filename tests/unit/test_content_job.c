/* content-metrics end to end through `logproc run`'s driver (job_run_main): record files in,
 * tables out, read back. The inputs are the reference test's (spec/other-jobs.md §E.4): the
 * generator's test preset at 2022-10-01 22:49:11 UTC with product views and add-to-cart,
 * checkout and purchase rates of 1.0, plus hand-made joined impressions; and hand-made LogRequests
 * for the §C rules (dedupe windows, empty ids, other action types, invalid input).
 *
 * Expected figures are the spec's where it gives them (they hold under --doubleCountCartActions,
 * spec/README.md "Scope"); elsewhere a walker in this file counts the generated LogRequests by
 * the §C.2 rules on its own (it shares no code with the job) and every output row must equal its
 * figures, with and without double counting.
 *
 * E.4 "complex": its hourly impression and joined-impression figures are asserted as the spec
 * gives them. Its funnel figures (views 7, add-to-carts 5, checkouts 17, ... on i-1-1) come from
 * the reference's random draws, which hash the reference run's ids; the three runs here use three
 * seeded id spaces (the spec's runs cannot share one incrementing id space: the later runs' ids
 * would be deduped against the first run's), so those figures are checked against the walker. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <avro.h>
#include <ftw.h>
#include <glob.h>
#include <time.h>
#include <unistd.h>

#include "formats/avro_file.h"
#include "formats/record_file.h"
#include "generator/log_generator.h"
#include "jobs/content/content_event.h"
#include "jobs/content/content_flags.h"
#include "jobs/job.h"
#include "logproc/join.pb-c.h"

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define T0 1664582400000LL                       /* 2022-10-01T00:00:00Z */
#define T_E4 (T0 + 22 * HOUR_MS + 49 * MIN_MS + 11000) /* 2022-10-01T22:49:11Z */

/* ---- files ---- */

static char work[256];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void setup_work(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(work, sizeof work, "%s/test_content_job.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(work));
}

static void cleanup_work(void)
{
    nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *path_of(const char *rel)
{
    static char p[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", work, rel);
    return p[k];
}

/* Paths matching pattern (under work), sorted; caller frees with globfree. */
static size_t find(const char *pattern, glob_t *g)
{
    int rc = glob(path_of(pattern), 0, NULL, g);
    if (rc == GLOB_NOMATCH) {
        g->gl_pathc = 0;
        return 0;
    }
    assert_int_equal(rc, 0);
    return g->gl_pathc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* ---- the walker: expected rows from the input, by the §C.2 rules ---- */

typedef struct exp_row {
    int64_t window; /* window start */
    char content[32];
    int64_t v[CM_NCOLS];
} exp_row;

typedef struct walker {
    exp_row hourly[64], daily[32];
    size_t nh, nd;
} walker;

static int64_t *exp_at(exp_row *rows, size_t *n, size_t cap, int64_t window, const char *content)
{
    for (size_t i = 0; i < *n; i++)
        if (rows[i].window == window && !strcmp(rows[i].content, content)) return rows[i].v;
    assert_true(*n < cap);
    exp_row *r = &rows[(*n)++];
    memset(r, 0, sizeof *r);
    r->window = window;
    snprintf(r->content, sizeof r->content, "%s", content);
    return r->v;
}

static void walk_add(walker *w, int64_t ts, const char *content, int col, int64_t v)
{
    if (!content || !*content) return;
    int64_t *h = exp_at(w->hourly, &w->nh, 64, ts - ts % HOUR_MS, content);
    int64_t *d = exp_at(w->daily, &w->nd, 32, ts - ts % DAY_MS, content);
    if (col >= 0) h[col] += v, d[col] += v;
}

static void walk_log_request(walker *w, int64_t ts, const Event__LogRequest *lr, bool dbl)
{
    for (size_t i = 0; i < lr->n_view; i++) walk_add(w, ts, lr->view[i]->content_id, CM_VIEWS, 1);
    for (size_t i = 0; i < lr->n_impression; i++)
        walk_add(w, ts, lr->impression[i]->content_id, CM_IMPRESSIONS, 1);
    for (size_t i = 0; i < lr->n_action; i++) {
        const Event__Action *a = lr->action[i];
        int col = a->action_type == 2 ? CM_NAVIGATES : a->action_type == 4 ? CM_ADD_TO_CARTS
                : a->action_type == 8 ? CM_CHECKOUTS : a->action_type == 3 ? CM_PURCHASES : -1;
        size_t rows = 0;
        for (size_t k = 0; a->cart && k < a->cart->n_contents; k++) {
            const Event__CartContent *cc = a->cart->contents[k];
            if (!cc->content_id || !*cc->content_id) continue;
            rows++;
            walk_add(w, ts, cc->content_id, col, cc->quantity);
            if (col == CM_PURCHASES)
                walk_add(w, ts, cc->content_id, CM_GMV_USD_MICROS,
                         cc->quantity * cc->price_per_unit->amount_micros);
        }
        if (dbl || !rows) walk_add(w, ts, a->content_id, col, 1);
    }
}

static void walk_joined(walker *w, int64_t log_ts, const char *content, int64_t pos)
{
    walk_add(w, log_ts, content, CM_JOINED_IMPRESSIONS, 1);
    walk_add(w, log_ts, content, CM_JOINED_IMPRESSION_POSITION_SUM, pos);
}

/* ---- inputs ---- */

/* The §E.4 generator input: the reference's test preset with n users, sessions, views, requests
 * and insertions, product views on, add-to-cart/checkout/purchase 1.0. ids "incrementing" or
 * "random" with seed. Each LogRequest goes to w and to both walkers (single and double count). */
static void gen_e4(recfile_writer *out, int n, int64_t start, const char *ids, int seed,
                   walker *once, walker *twice)
{
    char a[40][64];
    const char *ov[41];
    int k = 0;
    const char *fixed[] = {"--delayBetweenViewInSeconds=1", "--delayBetweenAutoViewInSeconds=1",
                           "--insertionImpressedRate=1.0", "--navigateAddToCartRate=1.0",
                           "--navigateCheckoutRate=1.0", "--checkoutPurchaseRate=1.0",
                           "--setupForInferredIds=false", "--shadowTrafficRate=0",
                           "--miniSdkRate=0.5", "--stores=20", "--itemsPerStore=20",
                           "--promotionsPerItem=4", "--detail=PARTIAL", "--fixedClock=true",
                           "--writeProductViews=true"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) ov[k++] = fixed[i];
    const char *dims[] = {"users", "sessionsPerUser", "viewsPerSession", "autoViewsPerSession",
                          "requestsPerViews", "responseInsertionsPerRequest"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(a[i], sizeof a[i], "--%s=%d", dims[i], n);
        ov[k++] = a[i];
    }
    double nav = 1.0 / ((double)n * n * n * n * n);
    snprintf(a[6], sizeof a[6], "--impressionNavigateRate=%.17g", nav > 0.1 ? nav : 0.1);
    snprintf(a[7], sizeof a[7], "--startTime=%lld", (long long)start);
    snprintf(a[8], sizeof a[8], "--ids=%s", ids);
    snprintf(a[9], sizeof a[9], "--seed=%d", seed);
    for (int i = 6; i < 10; i++) ov[k++] = a[i];
    ov[k] = NULL;
    gen_options o;
    memset(&o, 0, sizeof o);
    char err[512];
    if (gen_options_init(&o, "cli", ov, err, sizeof err)) fail_msg("generator options: %s", err);
    gen_logs *g;
    if (gen_logs_new(&o, &g, err, sizeof err)) fail_msg("generator: %s", err);
    int64_t ts;
    const uint8_t *key, *val;
    size_t kl, vl;
    int rc;
    while ((rc = gen_logs_next_packed(g, &ts, &key, &kl, &val, &vl, err, sizeof err)) == 1) {
        assert_int_equal(recfile_write(out, ts, key, kl, val, vl), 0);
        Event__LogRequest *lr = event__log_request__unpack(NULL, vl, val);
        assert_non_null(lr);
        if (once) walk_log_request(once, ts, lr, false);
        if (twice) walk_log_request(twice, ts, lr, true);
        event__log_request__free_unpacked(lr, NULL);
    }
    assert_int_equal(rc, 0);
    gen_logs_free(g);
    gen_options_free(&o);
}

/* A joined event, impression or action, with the log timestamp the job buckets it by and a
 * record timestamp that differs (flat-output writes its records later than the log time). */
static void write_joined(recfile_writer *out, int64_t record_ts, int64_t log_ts, uint64_t platform,
                         const char *imp_id, const char *content, uint64_t pos, int with_action)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    Delivery__Insertion ri = DELIVERY__INSERTION__INIT;
    Event__Impression im = EVENT__IMPRESSION__INIT;
    Event__Action a = EVENT__ACTION__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    ids.has_platform_id = 1;
    ids.platform_id = platform;
    ids.impression_id = (char *)imp_id;
    ids.log_user_id = "u1";
    ri.content_id = (char *)content;
    ri.has_position = 1;
    ri.position = pos;
    t.has_log_timestamp = 1;
    t.log_timestamp = (uint64_t)log_ts;
    im.timing = &t;
    im.impression_id = (char *)imp_id;
    e.ids = &ids;
    e.response_insertion = &ri;
    e.impression = &im;
    if (with_action) {
        a.action_id = "act";
        a.content_id = (char *)content;
        a.has_action_type = 1;
        a.action_type = EVENT__ACTION_TYPE__NAVIGATE;
        e.action = &a;
    }
    uint8_t buf[1024], key[64];
    size_t n = event__joined_event__pack(&e, buf);
    size_t kl = recfile_make_key(platform, "u1", key, sizeof key);
    assert_int_equal(recfile_write(out, record_ts, key, kl, buf, n), 0);
}

/* A LogRequest of platform 1 with one child: 'v' view, 'i' impression, 'a' action of type. */
static void write_lr(recfile_writer *out, int64_t ts, char kind, const char *id, const char *content,
                     int type)
{
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    Event__View v = EVENT__VIEW__INIT, *vp = &v;
    Event__Impression im = EVENT__IMPRESSION__INIT, *ip = &im;
    Event__Action a = EVENT__ACTION__INIT, *ap = &a;
    Common__Timing t = COMMON__TIMING__INIT;
    lr.has_platform_id = 1;
    lr.platform_id = 1;
    t.has_event_api_timestamp = 1;
    t.event_api_timestamp = (uint64_t)ts;
    lr.timing = &t;
    if (kind == 'v') {
        v.view_id = (char *)id;
        v.content_id = (char *)content;
        lr.n_view = 1;
        lr.view = &vp;
    } else if (kind == 'i') {
        im.impression_id = (char *)id;
        im.content_id = (char *)content;
        lr.n_impression = 1;
        lr.impression = &ip;
    } else {
        a.action_id = (char *)id;
        a.content_id = (char *)content;
        a.has_action_type = 1;
        a.action_type = (Event__ActionType)type;
        lr.n_action = 1;
        lr.action = &ap;
    }
    uint8_t buf[1024], key[64];
    size_t n = event__log_request__pack(&lr, buf);
    size_t kl = recfile_make_key(1, "u1", key, sizeof key);
    assert_int_equal(recfile_write(out, ts, key, kl, buf, n), 0);
}

static recfile_writer *open_rec(const char *rel)
{
    recfile_writer *w;
    char err[256];
    if (recfile_writer_open(path_of(rel), &w, err, sizeof err)) fail_msg("%s", err);
    return w;
}

static void close_rec(recfile_writer *w)
{
    char err[256];
    if (recfile_writer_close(w, err, sizeof err)) fail_msg("%s", err);
}

/* ---- running the job ---- */

/* Runs `logproc run content-metrics` on in.rec (and joined.rec when it exists) into work/out
 * with the given flags (NULL-terminated). Returns the exit status. */
static int run_job(const char *const *flags)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "--source";
    argv[argc++] = path_of("in.rec");
    if (access(path_of("joined.rec"), F_OK) == 0) {
        argv[argc++] = "--joinedEventSource";
        argv[argc++] = path_of("joined.rec");
    }
    argv[argc++] = "-o";
    argv[argc++] = path_of("out");
    argv[argc++] = "--runId=0000c0de";
    for (int i = 0; flags[i]; i++) argv[argc++] = (char *)flags[i];
    argv[argc] = NULL;
    fflush(stdout);
    return job_run_main(job_find("content-metrics"), argc, argv);
}

/* ---- reading the Avro tables ---- */

typedef struct row {
    char part[160]; /* the partition: "dt=.../hour=.." */
    uint64_t platform;
    char content[32];
    int64_t v[CM_NCOLS];
} row;

static size_t read_avro(const char *table, row *rows, size_t cap)
{
    static const char *const cols[] = {"view_count", "impression_count", "joined_impression_count",
                                       "joined_impression_position_sum", "navigate_count",
                                       "add_to_cart_count", "checkout_count", "purchase_count",
                                       "gmv_usd_micros"};
    char pat[256];
    snprintf(pat, sizeof pat, "out/%s/dt=*/%spart-*.avro", table,
             strstr(table, "hourly") ? "hour=*/" : "");
    glob_t g;
    size_t n = 0;
    find(pat, &g);
    for (size_t p = 0; p < g.gl_pathc; p++) {
        avro_file_in *in;
        char err[512];
        if (avro_file_in_open(g.gl_pathv[p], 0, &in, err, sizeof err)) fail_msg("%s", err);
        avro_value_t *v;
        int rc;
        while ((rc = avro_file_in_next(in, &v, err, sizeof err)) == 1) {
            assert_true(n < cap);
            row *r = &rows[n++];
            memset(r, 0, sizeof *r);
            const char *dt = strstr(g.gl_pathv[p], "/dt=") + 1;
            snprintf(r->part, sizeof r->part, "%.*s", (int)(strrchr(dt, '/') - dt), dt);
            avro_value_t f, br;
            int64_t l;
            const char *s;
            size_t sl;
            assert_int_equal(avro_value_get_by_name(v, "platform_id", &f, NULL), 0);
            assert_int_equal(avro_value_get_long(&f, &l), 0);
            r->platform = (uint64_t)l;
            assert_int_equal(avro_value_get_by_name(v, "content_id", &f, NULL), 0);
            assert_int_equal(avro_value_get_string(&f, &s, &sl), 0);
            snprintf(r->content, sizeof r->content, "%s", s);
            for (int i = 0; i < CM_NCOLS; i++) {
                assert_int_equal(avro_value_get_by_name(v, cols[i], &f, NULL), 0);
                assert_int_equal(avro_value_get_current_branch(&f, &br), 0);
                assert_int_equal(avro_value_get_long(&br, &r->v[i]), 0);
            }
        }
        if (rc < 0) fail_msg("%s", err);
        avro_file_in_close(in);
    }
    globfree(&g);
    return n;
}

static const row *row_in(const row *rows, size_t n, const char *part, const char *content)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].part, part) && !strcmp(rows[i].content, content)) return &rows[i];
    fail_msg("no row for %s %s", part, content);
    return NULL;
}

static void assert_row(const row *r, const int64_t want[CM_NCOLS])
{
    for (int i = 0; i < CM_NCOLS; i++)
        if (r->v[i] != want[i])
            fail_msg("%s %s column %d: got %lld, want %lld", r->part, r->content, i,
                     (long long)r->v[i], (long long)want[i]);
}

static void part_name(int64_t window, int hourly, char *buf, size_t cap)
{
    time_t s = (time_t)(window / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    if (hourly)
        snprintf(buf, cap, "dt=%04d-%02d-%02d/hour=%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour);
    else snprintf(buf, cap, "dt=%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* Every row of the table equals the walker's, and the walker has no row the table lacks. */
static void assert_rows_match(const char *table, const exp_row *exp, size_t nexp, int hourly)
{
    row rows[64];
    size_t n = read_avro(table, rows, 64);
    assert_int_equal(n, nexp);
    for (size_t i = 0; i < nexp; i++) {
        char part[64];
        part_name(exp[i].window, hourly, part, sizeof part);
        const row *r = row_in(rows, n, part, exp[i].content);
        assert_int_equal(r->platform, 1);
        assert_row(r, exp[i].v);
    }
}

/* ---- §E.4 ---- */

static void write_e4_simple_inputs(int n, walker *once, walker *twice)
{
    recfile_writer *in = open_rec("in.rec");
    gen_e4(in, n, T_E4, "incrementing", 0, once, twice);
    close_rec(in);
    recfile_writer *je = open_rec("joined.rec");
    /* recorded 20 s after its log time, as flat-output's records are; counted at the log time */
    write_joined(je, T_E4 + 20000, T_E4, 1, "imp1", "i-1-1", 5, 0);
    close_rec(je);
    if (once) walk_joined(once, T_E4, "i-1-1", 5);
    if (twice) walk_joined(twice, T_E4, "i-1-1", 5);
}

static void test_e4_simple(void **st)
{
    setup_work();
    walker once = {0}, twice = {0};
    write_e4_simple_inputs(1, &once, &twice);
    const char *flags[] = {"--jobLabel=blue", "--outputParquet", "--doubleCountCartActions", NULL};
    assert_int_equal(run_job(flags), 0);
    row rows[8];
    assert_int_equal(read_avro("blue/etl/hourly_content_metrics", rows, 8), 1);
    assert_string_equal(rows[0].part, "dt=2022-10-01/hour=22");
    assert_int_equal(rows[0].platform, 1);
    assert_string_equal(rows[0].content, "i-1-1");
    static const int64_t spec[CM_NCOLS] = {1, 1, 1, 5, 1, 1, 2, 2, 5000000};
    assert_row(&rows[0], spec);
    glob_t g;
    assert_int_equal(find("out/blue/etl/hourly_content_metrics/dt=2022-10-01/*", &g), 1);
    assert_non_null(strstr(g.gl_pathv[0], "/hour=22"));
    globfree(&g);
    assert_rows_match("blue/etl/hourly_content_metrics", twice.hourly, twice.nh, 1);
    assert_rows_match("blue/etl/daily_content_metrics", twice.daily, twice.nd, 0);
    cleanup_work();

    /* logproc's default: the checkout and the purchase carry content i-1-1 and a one-row cart
     * {i-1-1 x1 at $5}; each counts once, for its cart row */
    setup_work();
    write_e4_simple_inputs(1, NULL, NULL);
    const char *flags1[] = {"--jobLabel=blue", "--outputParquet", NULL};
    assert_int_equal(run_job(flags1), 0);
    assert_int_equal(read_avro("blue/etl/hourly_content_metrics", rows, 8), 1);
    static const int64_t once_spec[CM_NCOLS] = {1, 1, 1, 5, 1, 1, 1, 1, 5000000};
    assert_row(&rows[0], once_spec);
    assert_rows_match("blue/etl/hourly_content_metrics", once.hourly, once.nh, 1);
    cleanup_work();
}

static void test_e4_csv(void **st)
{
    setup_work();
    walker twice = {0};
    write_e4_simple_inputs(2, NULL, &twice);
    const char *flags[] = {"--jobLabel=blue", "--outputCsv", "--outputParquet",
                           "--doubleCountCartActions", NULL};
    assert_int_equal(run_job(flags), 0);
    row rows[8];
    size_t n = read_avro("blue/etl/hourly_content_metrics", rows, 8);
    assert_int_equal(n, 2);
    static const int64_t spec[CM_NCOLS] = {2, 16, 1, 5, 2, 2, 4, 4, 10000000};
    assert_row(row_in(rows, n, "dt=2022-10-01/hour=22", "i-1-1"), spec);
    glob_t g;
    assert_int_equal(find("out/blue/etl/daily_content_metrics_csv/dt=2022-10-01/*.csv", &g), 1);
    assert_string_equal(slurp(g.gl_pathv[0]),
                        "date,platform_id,content_id,view_count,impression_count,"
                        "joined_impression_count,\"joined_impression_position_sum\","
                        "navigate_count,add_to_cart_count,checkout_count,purchase_count,"
                        "gmv_usd_micros\n"
                        "2022-10-01,1,i-1-1,2,16,1,5,2,2,4,4,10000000\n"
                        "2022-10-01,1,i-1-10,0,16,0,0,0,0,0,0,0\n");
    globfree(&g);
    assert_int_equal(find("out/blue/etl/daily_content_metrics_csv/*", &g), 1); /* dt only */
    globfree(&g);
    /* each committed partition gets its _SUCCESS file (§C.3, §C.5) */
    assert_int_equal(access(path_of("out/blue/etl/daily_content_metrics_csv/dt=2022-10-01/_SUCCESS"), F_OK), 0);
    assert_int_equal(access(path_of("out/blue/etl/hourly_content_metrics/dt=2022-10-01/hour=22/_SUCCESS"), F_OK), 0);
    assert_int_equal(access(path_of("out/blue/etl/hourly_content_metrics/dt=2022-10-01/_SUCCESS"), F_OK), -1);
    assert_int_equal(access(path_of("out/blue/etl/daily_content_metrics/dt=2022-10-01/_SUCCESS"), F_OK), 0);
    assert_rows_match("blue/etl/hourly_content_metrics", twice.hourly, twice.nh, 1);
    cleanup_work();
}

static const char E4_JSON[] =
    "{\"header\":{\"version\":\"1.0\",\"sourceId\":\"Metric\",\"id\":\"2022-10-01@1@i-1-1\","
    "\"correlationId\":\"TODO\",\"platformId\":1,\"messageType\":\"blue.content-metrics\","
    "\"eventDateTimestamp\":\"2022-10-02T00:00:00Z\"},\"body\":{\"contentId\":\"i-1-1\","
    "\"metrics\":{\"views\":1,\"impressions\":1,\"joinedImpressions\":1,"
    "\"joinedImpressionPositionSum\":5,\"navigates\":1,\"addToCarts\":1,\"checkouts\":2,"
    "\"purchases\":2,\"gmvUsd\":5000000}}}";

static void test_e4_cumulated_json(void **st)
{
    setup_work();
    write_e4_simple_inputs(1, NULL, NULL);
    const char *flags[] = {"--jobLabel=blue", "--outputCumulatedFiles", "--outputCumulatedKafka",
                           "--doubleCountCartActions", NULL};
    assert_int_equal(run_job(flags), 0);
    glob_t g;
    assert_int_equal(find("out/blue/etl/cumulated_content_metrics/dt=2022-10-01/part-*.jsonl", &g), 1);
    char want[2048];
    snprintf(want, sizeof want, "%s\n", E4_JSON);
    assert_string_equal(slurp(g.gl_pathv[0]), want);
    globfree(&g);

    /* the topic's records: no key, the same JSON with "dt" at the end, at the window end - 1 */
    assert_int_equal(find("out/kafka/metrics.blue.default.cumulated-content-metrics/part-*.rec", &g), 1);
    recfile_reader *r;
    char err[256];
    assert_int_equal(recfile_reader_open(g.gl_pathv[0], 0, &r, err, sizeof err), 0);
    recfile_record rec;
    recfile_bad bad;
    assert_int_equal(recfile_next(r, &rec, &bad), 1);
    assert_int_equal(rec.key_len, 0);
    assert_int_equal(rec.ts_ms, T0 + DAY_MS - 1);
    snprintf(want, sizeof want, "%.*s,\"dt\":\"2022-10-01\"}", (int)strlen(E4_JSON) - 1, E4_JSON);
    assert_int_equal(rec.value_len, strlen(want));
    assert_memory_equal(rec.value, want, rec.value_len);
    assert_int_equal(recfile_next(r, &rec, &bad), 0);
    recfile_reader_close(r);
    globfree(&g);
    assert_int_equal(access(path_of("out/blue/etl/cumulated_content_metrics/dt=2022-10-01/_SUCCESS"), F_OK), 0);
    /* a topic has no partitions and no marker */
    assert_int_equal(find("out/kafka/metrics.blue.default.cumulated-content-metrics/_*", &g), 0);
    cleanup_work();
}

static void test_e4_complex(void **st)
{
    setup_work();
    walker once = {0}, twice = {0};
    recfile_writer *in = open_rec("in.rec");
    gen_e4(in, 3, T_E4, "random", 1, &once, &twice);
    gen_e4(in, 2, T_E4 + HOUR_MS, "random", 2, &once, &twice);
    gen_e4(in, 1, T_E4 + 2 * HOUR_MS, "random", 3, &once, &twice);
    close_rec(in);
    recfile_writer *je = open_rec("joined.rec");
    write_joined(je, T_E4 + 20000, T_E4, 1, "imp1", "i-1-1", 5, 0);
    write_joined(je, T_E4 + 21000, T_E4 + 1000, 1, "imp2", "i-1-1", 3, 0);
    close_rec(je);
    walk_joined(&once, T_E4, "i-1-1", 5);
    walk_joined(&once, T_E4 + 1000, "i-1-1", 3);
    walk_joined(&twice, T_E4, "i-1-1", 5);
    walk_joined(&twice, T_E4 + 1000, "i-1-1", 3);

    const char *flags[] = {"--jobLabel=blue", "--outputParquet", "--doubleCountCartActions", NULL};
    assert_int_equal(run_job(flags), 0);
    row rows[64];
    size_t n = read_avro("blue/etl/hourly_content_metrics", rows, 64);
    assert_int_equal(n, 6);
    /* the spec's figures: impressions per content and hour, the two joined impressions */
    assert_int_equal(row_in(rows, n, "dt=2022-10-01/hour=22", "i-1-1")->v[CM_IMPRESSIONS], 81);
    assert_int_equal(row_in(rows, n, "dt=2022-10-01/hour=22", "i-1-10")->v[CM_IMPRESSIONS], 81);
    assert_int_equal(row_in(rows, n, "dt=2022-10-01/hour=22", "i-1-100")->v[CM_IMPRESSIONS], 81);
    assert_int_equal(row_in(rows, n, "dt=2022-10-01/hour=23", "i-1-1")->v[CM_IMPRESSIONS], 16);
    assert_int_equal(row_in(rows, n, "dt=2022-10-01/hour=23", "i-1-10")->v[CM_IMPRESSIONS], 16);
    assert_int_equal(row_in(rows, n, "dt=2022-10-02/hour=00", "i-1-1")->v[CM_IMPRESSIONS], 1);
    const row *r22 = row_in(rows, n, "dt=2022-10-01/hour=22", "i-1-1");
    assert_int_equal(r22->v[CM_JOINED_IMPRESSIONS], 2);
    assert_int_equal(r22->v[CM_JOINED_IMPRESSION_POSITION_SUM], 8);
    n = read_avro("blue/etl/daily_content_metrics", rows, 64);
    assert_int_equal(n, 4);
    assert_int_equal(row_in(rows, n, "dt=2022-10-01", "i-1-1")->v[CM_IMPRESSIONS], 97);
    assert_int_equal(row_in(rows, n, "dt=2022-10-01", "i-1-10")->v[CM_IMPRESSIONS], 97);
    assert_int_equal(row_in(rows, n, "dt=2022-10-01", "i-1-100")->v[CM_IMPRESSIONS], 81);
    assert_int_equal(row_in(rows, n, "dt=2022-10-02", "i-1-1")->v[CM_IMPRESSIONS], 1);
    /* every figure, funnel included, against the walker */
    assert_rows_match("blue/etl/hourly_content_metrics", twice.hourly, twice.nh, 1);
    assert_rows_match("blue/etl/daily_content_metrics", twice.daily, twice.nd, 0);
    cleanup_work();

    /* the same input without double counting */
    setup_work();
    in = open_rec("in.rec");
    gen_e4(in, 3, T_E4, "random", 1, NULL, NULL);
    gen_e4(in, 2, T_E4 + HOUR_MS, "random", 2, NULL, NULL);
    gen_e4(in, 1, T_E4 + 2 * HOUR_MS, "random", 3, NULL, NULL);
    close_rec(in);
    je = open_rec("joined.rec");
    write_joined(je, T_E4 + 20000, T_E4, 1, "imp1", "i-1-1", 5, 0);
    write_joined(je, T_E4 + 21000, T_E4 + 1000, 1, "imp2", "i-1-1", 3, 0);
    close_rec(je);
    const char *flags1[] = {"--jobLabel=blue", "--outputParquet", NULL};
    assert_int_equal(run_job(flags1), 0);
    assert_rows_match("blue/etl/hourly_content_metrics", once.hourly, once.nh, 1);
    assert_rows_match("blue/etl/daily_content_metrics", once.daily, once.nd, 0);
    cleanup_work();
}

/* ---- §C rules on hand-made input ---- */

static void test_dedupe_windows_and_joined_impressions(void **st)
{
    setup_work();
    recfile_writer *in = open_rec("in.rec");
    write_lr(in, T0 + 10 * MIN_MS, 'v', "v1", "c", 0);
    write_lr(in, T0 + 20 * MIN_MS, 'i', "i1", "c", 0);
    write_lr(in, T0 + 30 * MIN_MS, 'a', "a1", "c", EVENT__ACTION_TYPE__NAVIGATE);
    write_lr(in, T0 + 35 * MIN_MS, 'a', "a2", "d", EVENT__ACTION_TYPE__LIKE);
    write_lr(in, T0 + 36 * MIN_MS, 'i', "i9", "", 0);       /* no content: nothing */
    write_lr(in, T0 + 60 * MIN_MS, 'v', "v1", "c", 0);      /* duplicate within 6 h */
    write_lr(in, T0 + 5 * HOUR_MS, 'a', "a1", "c", EVENT__ACTION_TYPE__NAVIGATE); /* within 1 d */
    write_lr(in, T0 + 6 * HOUR_MS + 30 * MIN_MS, 'i', "i2", "e", 0); /* moves the watermark */
    write_lr(in, T0 + 7 * HOUR_MS, 'v', "v1", "c", 0);      /* 6 h after the first: passes */
    write_lr(in, T0 + 12 * HOUR_MS, 'i', "i1", "c", 0);     /* within 1 d: dropped */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    uint8_t key[16];
    size_t kl = recfile_make_key(1, "u1", key, sizeof key);
    assert_int_equal(recfile_write(in, T0 + 13 * HOUR_MS, key, kl, garbage, sizeof garbage), 0);
    close_rec(in);
    recfile_writer *je = open_rec("joined.rec");
    write_joined(je, T0 + 41 * MIN_MS, T0 + 40 * MIN_MS, 1, "imp1", "c", 2, 0);
    write_joined(je, T0 + 51 * MIN_MS, T0 + 50 * MIN_MS, 1, "imp1", "c", 2, 0); /* duplicate */
    write_joined(je, T0 + 52 * MIN_MS, T0 + 52 * MIN_MS, 1, "imp3", "c", 4, 1); /* an action */
    write_joined(je, T0 + 2 * HOUR_MS, T0 + 59 * MIN_MS, 1, "imp4", "c", 1, 0);
    assert_int_equal(recfile_write(je, T0 + 3 * HOUR_MS, key, kl, garbage, sizeof garbage), 0);
    close_rec(je);

    const char *flags[] = {"--outputParquet", NULL};
    assert_int_equal(run_job(flags), 0);
    row rows[16];
    size_t n = read_avro("etl/hourly_content_metrics", rows, 16);
    assert_int_equal(n, 4);
    static const int64_t c00[CM_NCOLS] = {1, 1, 2, 3, 1, 0, 0, 0, 0};
    static const int64_t d00[CM_NCOLS] = {0};
    static const int64_t e06[CM_NCOLS] = {0, 1, 0, 0, 0, 0, 0, 0, 0};
    static const int64_t c07[CM_NCOLS] = {1, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_row(row_in(rows, n, "dt=2022-10-01/hour=00", "c"), c00);
    assert_row(row_in(rows, n, "dt=2022-10-01/hour=00", "d"), d00); /* LIKE: a row of zeros */
    assert_row(row_in(rows, n, "dt=2022-10-01/hour=06", "e"), e06);
    assert_row(row_in(rows, n, "dt=2022-10-01/hour=07", "c"), c07);

    /* both undecodable records are in the dead-letter table, and the job went on */
    glob_t g;
    assert_int_equal(find("out/etl_side/content_metrics_invalid_record/dt=*/hour=*/part-*.avro", &g), 2);
    globfree(&g);
    cleanup_work();
}

static void test_cumulated_steps_and_disabled_sinks(void **st)
{
    setup_work();
    write_e4_simple_inputs(1, NULL, NULL);
    const char *flags[] = {"--outputCumulatedFiles", "--outputCsv", "--outputParquet",
                           "--cumulatedWindowStep=INTERVAL '1' MINUTE",
                           "--disableS3Sink=sink-s3-etl-daily_content_metrics", NULL};
    assert_int_equal(run_job(flags), 0);
    glob_t g;
    /* live label: no label directory; messageType is the bare job name */
    assert_int_equal(find("out/etl/cumulated_content_metrics/dt=2022-10-01/part-*.jsonl", &g), 1);
    char *text = slurp(g.gl_pathv[0]);
    globfree(&g);
    /* the data starts at 22:49:11: one row per minute step from 22:50 to 24:00 */
    size_t lines = 0;
    for (char *p = text; (p = strchr(p, '\n')); p++) lines++;
    assert_int_equal(lines, 71);
    assert_non_null(strstr(text, "\"eventDateTimestamp\":\"2022-10-01T22:50:00Z\""));
    assert_non_null(strstr(text, "\"messageType\":\"content-metrics\""));
    char *last = text + strlen(text) - 1;
    *last = 0;
    last = strrchr(text, '\n') + 1;
    assert_non_null(strstr(last, "\"eventDateTimestamp\":\"2022-10-02T00:00:00Z\""));
    assert_non_null(strstr(last, "\"checkouts\":1,\"purchases\":1,\"gmvUsd\":5000000"));
    /* the same id at every step: consumers keep the latest */
    size_t ids = 0;
    for (char *p = text; (p = strstr(p, "\"id\":\"2022-10-01@1@i-1-1\"")); p++) ids++;
    assert_int_equal(ids, 71);
    /* the disabled daily Avro table is absent, its CSV sibling and the hourly table are there */
    assert_int_equal(find("out/etl/daily_content_metrics", &g), 0);
    assert_int_equal(find("out/etl/daily_content_metrics_csv/dt=2022-10-01/part-*.csv", &g), 1);
    globfree(&g);
    assert_int_equal(find("out/etl/hourly_content_metrics/dt=2022-10-01/hour=22/part-*.avro", &g), 1);
    globfree(&g);
    cleanup_work();
}

/* ---- §C.7 flags ---- */

static void test_flag_rules(void **st)
{
    setup_work();
    write_e4_simple_inputs(1, NULL, NULL);
    const char *none[] = {NULL};
    assert_int_equal(run_job(none), 2); /* no output flag: refused at start */
    const char *kin[] = {"--outputCumulatedKinesis", NULL};
    assert_int_equal(run_job(kin), 2); /* needs --kinesisStream and --region */
    const char *kin2[] = {"--outputCumulatedKinesis", "--kinesisStream=s", NULL};
    assert_int_equal(run_job(kin2), 2);
    const char *bad[] = {"--outputCsv", "--cumulatedWindowStep=INTERVAL '7' HOUR", NULL};
    assert_int_equal(run_job(bad), 2); /* does not divide a day */
    glob_t g;
    assert_int_equal(find("out/*", &g), 0); /* nothing written by a refused run */
    cleanup_work();

    int64_t ms;
    assert_int_equal(content_parse_interval("INTERVAL '1' MINUTE", &ms), 0);
    assert_int_equal(ms, 60000);
    assert_int_equal(content_parse_interval("interval '10' minutes", &ms), 0);
    assert_int_equal(ms, 600000);
    assert_int_equal(content_parse_interval("INTERVAL '1' DAY", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(content_parse_interval("PT15M", &ms), 0);
    assert_int_equal(ms, 900000);
    assert_int_equal(content_parse_interval("INTERVAL 1 MINUTE", &ms), -1);
    assert_int_equal(content_parse_interval("INTERVAL '1' WEEK", &ms), -1);
    assert_int_equal(content_parse_interval("INTERVAL '25' HOUR", &ms), -1);

    /* names: job name and the joined-event topic by label */
    job_common_opts c;
    memset(&c, 0, sizeof c);
    content_opts o;
    memset(&o, 0, sizeof o);
    flag_table t[2] = {job_flags_common_table(&c), content_flags_table(&o)};
    char err[256], buf[256];
    assert_int_equal(flags_defaults(t, 2, err, sizeof err), 0);
    content_job_name(&c, &o, buf, sizeof buf);
    assert_string_equal(buf, "content-metrics");
    content_joined_event_topic(&c, &o, buf, sizeof buf);
    assert_string_equal(buf, "metrics.default.joined-event");
    free(c.jobLabel);
    c.jobLabel = strdup("blue");
    content_job_name(&c, &o, buf, sizeof buf);
    assert_string_equal(buf, "blue.content-metrics");
    content_joined_event_topic(&c, &o, buf, sizeof buf);
    assert_string_equal(buf, "metrics.blue.default.joined-event");
    free(o.overrideInputLabel);
    o.overrideInputLabel = strdup("green");
    content_joined_event_topic(&c, &o, buf, sizeof buf);
    assert_string_equal(buf, "metrics.green.default.joined-event");
    free(o.joinedEventTopic);
    o.joinedEventTopic = strdup("my.topic");
    content_joined_event_topic(&c, &o, buf, sizeof buf);
    assert_string_equal(buf, "my.topic");
    flags_free(t, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e4_simple),
        cmocka_unit_test(test_e4_csv),
        cmocka_unit_test(test_e4_cumulated_json),
        cmocka_unit_test(test_e4_complex),
        cmocka_unit_test(test_dedupe_windows_and_joined_impressions),
        cmocka_unit_test(test_cumulated_steps_and_disabled_sinks),
        cmocka_unit_test(test_flag_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
