/* The counter job end to end inside one graph (spec/other-jobs.md §E.3): the job's own graph is
 * built from its flags, the minicluster test's five NAVIGATE joined events are pushed into the
 * source operator, the input is drained (the minicluster's final watermark), and the RESP command
 * file the job writes is parsed back and checked command by command: the start-up metadata
 * (CounterJobUnitTest), the global, content, log-user, query and last-time commands
 * (CounterJobMiniclusterTest), the buffered variant, and the output gate. The user stream (U)
 * needs LogUserUser input, which the job does not read yet; its tables are only announced. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "jobs/counter/counter_commands.h"
#include "jobs/counter/counter_job.h"
#include "jobs/counter/counter_tables.h"
#include "jobs/job.h"
#include "logproc/join.pb-c.h"
#include "runtime/graph.h"
#include "runtime/task.h"

#define MIN_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)

/* ---- a parsed command stream ---- */

typedef struct cmd {
    int argc;
    char *argv[4];
    size_t len[4];
} cmd;

typedef struct stream {
    cmd *c;
    size_t n;
} stream;

static void stream_free(stream *s)
{
    for (size_t i = 0; i < s->n; i++)
        for (int j = 0; j < s->c[i].argc; j++)
            free(s->c[i].argv[j]);
    free(s->c);
}

/* Parses a RESP command file strictly (arrays of bulk strings only). */
static void parse_resp(const char *path, stream *s)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)size + 1);
    assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    memset(s, 0, sizeof *s);
    size_t cap = 0;
    char *p = b, *end = b + size;
    while (p < end) {
        assert_int_equal(*p, '*');
        int argc = (int)strtol(p + 1, &p, 10);
        assert_true(p[0] == '\r' && p[1] == '\n');
        p += 2;
        assert_true(argc >= 1 && argc <= 4);
        if (s->n == cap) s->c = realloc(s->c, (cap = cap ? cap * 2 : 64) * sizeof(cmd));
        cmd *c = &s->c[s->n++];
        c->argc = argc;
        for (int i = 0; i < argc; i++) {
            assert_int_equal(*p, '$');
            size_t n = (size_t)strtol(p + 1, &p, 10);
            assert_true(p[0] == '\r' && p[1] == '\n');
            p += 2;
            c->argv[i] = malloc(n + 1);
            memcpy(c->argv[i], p, n);
            c->argv[i][n] = 0;
            c->len[i] = n;
            p += n;
            assert_true(p[0] == '\r' && p[1] == '\n');
            p += 2;
        }
    }
    free(b);
}

static int is(const cmd *c, const char *name, const char *key, size_t klen)
{
    return !strcmp(c->argv[0], name) && c->argc > 1 && c->len[1] == klen &&
           !memcmp(c->argv[1], key, klen);
}

/* The writes of one (key, field), in order: "1", "2", ... for HSET values and "-" for HDEL, joined
 * with ','. ttls gets what follows each write: "E<ttl>", "P" (PERSIST) or "." (nothing). */
static void history(const stream *s, const char *key, size_t klen, const char *field, char *out,
                    char *ttls)
{
    out[0] = ttls[0] = 0;
    size_t fl = strlen(field);
    for (size_t i = 0; i < s->n; i++) {
        const cmd *c = &s->c[i];
        int hset = is(c, "HSET", key, klen), hdel = is(c, "HDEL", key, klen);
        if (!(hset || hdel) || c->len[2] != fl || memcmp(c->argv[2], field, fl)) continue;
        if (out[0]) strcat(out, ",");
        strcat(out, hset ? c->argv[3] : "-");
        const cmd *n = i + 1 < s->n ? &s->c[i + 1] : NULL;
        if (n && is(n, "EXPIRE", key, klen)) {
            strcat(ttls, "E");
            strcat(ttls, n->argv[2]);
        } else if (n && is(n, "PERSIST", key, klen)) {
            strcat(ttls, "P");
        } else {
            strcat(ttls, ".");
        }
    }
}

/* ---- the scenario ---- */

typedef struct event {
    int64_t t;
    const char *log_user, *ua, *query;
} event;

static const event events[] = {
    {10 * MIN_MS, "log_todd", "okhttp/3.14.9", "query two"},
    {30 * MIN_MS, "log_eve", "promoted/980 CFNetwork/1240.0.4 Darwin/20.6.0", "query two"},
    {2 * HOUR_MS, "log_todd", "okhttp/3.14.9", "query one"},
    {3 * DAY_MS, "log_eve", "promoted/980 CFNetwork/1240.0.4 Darwin/20.6.0", ""},
    {10 * DAY_MS, "log_eve", "promoted/980 CFNetwork/1240.0.4 Darwin/20.6.0", ""},
};

static size_t pack_event(const event *ev, uint8_t **out)
{
    char content[64];
    snprintf(content, sizeof content, "NAVIGATE @ %lld", (long long)ev->t);
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    ids.has_platform_id = 1;
    ids.platform_id = 20;
    ids.log_user_id = (char *)ev->log_user;
    Common__Timing timing = COMMON__TIMING__INIT;
    timing.has_log_timestamp = timing.has_event_api_timestamp = 1;
    timing.log_timestamp = timing.event_api_timestamp = (uint64_t)ev->t;
    Common__Browser browser = COMMON__BROWSER__INIT;
    browser.user_agent = (char *)ev->ua;
    Common__Device device = COMMON__DEVICE__INIT;
    device.browser = &browser;
    Delivery__Request request = DELIVERY__REQUEST__INIT;
    request.search_query = (char *)ev->query;
    request.device = &device;
    Common__Timing atiming = timing;
    Event__Action action = EVENT__ACTION__INIT;
    action.has_action_type = 1;
    action.action_type = EVENT__ACTION_TYPE__NAVIGATE;
    action.content_id = content;
    action.timing = &atiming;
    Event__JoinedEvent je = EVENT__JOINED_EVENT__INIT;
    je.ids = &ids;
    je.timing = &timing;
    je.request = &request;
    je.action = &action;
    size_t n = event__joined_event__get_packed_size(&je);
    *out = malloc(n);
    event__joined_event__pack(&je, *out);
    return n;
}

/* LogUserUser Avro datums: zig-zag varint longs, strings as a length then bytes. */
static size_t put_long(uint8_t *p, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (u >= 0x80) {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (uint8_t)u;
    return n;
}

static size_t luu_datum(uint8_t *p, int64_t platform, int64_t ts, const char *luid, const char *uid)
{
    size_t n = put_long(p, platform);
    n += put_long(p + n, ts);
    n += put_long(p + n, (int64_t)strlen(luid));
    memcpy(p + n, luid, strlen(luid));
    n += strlen(luid);
    n += put_long(p + n, (int64_t)strlen(uid));
    memcpy(p + n, uid, strlen(uid));
    return n + strlen(uid);
}

/* The minicluster's LogUserUser records: todd at 10 min - 1 ms, eve at 30 min, todd at 2 h, eve
 * at 3 d, and an empty one at 10 d. */
static void push_log_user_users(rt_graph *g)
{
    rt_op *luu = rt_graph_find(g, "source-kafka-metrics.default.log-user-user-event");
    assert_non_null(luu);
    struct {
        int64_t platform, ts;
        const char *luid, *uid;
    } v[] = {{20, 10 * MIN_MS - 1, "log_todd", "todd"},
             {20, 30 * MIN_MS, "log_eve", "eve"},
             {20, 2 * HOUR_MS, "log_todd", "todd"},
             {20, 3 * DAY_MS, "log_eve", "eve"},
             {0, 10 * DAY_MS, "", ""}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t d[128];
        size_t n = luu_datum(d, v[i].platform, v[i].ts, v[i].luid, v[i].uid);
        rt_source_record src = {.ts = v[i].ts,
                                .offset = (int64_t)i,
                                .value = d,
                                .value_len = n,
                                .raw_length = n,
                                .source = "luu",
                                .partition = -1};
        rt_record rec = {.ts = v[i].ts, .type = RT_TYPE_SOURCE, .data = &src};
        if (rt_graph_push(g, luu, 0, &rec)) fail_msg("push: %s", rt_graph_error(g));
    }
}

static int with_log_user_users;

/* Builds the counter's graph from argv (flags after `run counter`), pushes the five events (and
 * the LogUserUser records when with_log_user_users) with no watermark in between, drains, and
 * parses the command file. */
static void run_scenario(const char *const *args, int nargs, const char *dir, stream *s)
{
    job_common_opts c;
    memset(&c, 0, sizeof c);
    void *o;
    flag_table t[2];
    t[0] = job_flags_common_table(&c);
    assert_int_equal(counter_job_def.new_opts(&o, &t[1]), 0);
    char *argv[32];
    int argc = 0;
    char outdir[512];
    snprintf(outdir, sizeof outdir, "-o=%s", dir);
    argv[argc++] = outdir;
    for (int i = 0; i < nargs; i++)
        argv[argc++] = (char *)args[i];
    char *pos[2];
    size_t npos;
    bool help;
    char err[512];
    if (flags_parse(t, 2, argc, argv, pos, 2, &npos, &help, err, sizeof err))
        fail_msg("flags: %s", err);
    if (job_flags_check(&c, err, sizeof err) || counter_job_def.check(&c, o, err, sizeof err))
        fail_msg("check: %s", err);
    rt_graph *g;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *root;
    if (counter_job_def.build(g, &c, o, "00000000", "0", &root, err, sizeof err))
        fail_msg("build: %s", err);
    if (rt_graph_open(g, err, sizeof err)) fail_msg("open: %s", err);
    if (with_log_user_users) push_log_user_users(g);
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        uint8_t *v;
        size_t n = pack_event(&events[i], &v);
        rt_source_record src = {.ts = events[i].t,
                                .offset = (int64_t)i,
                                .value = v,
                                .value_len = n,
                                .raw_length = n,
                                .source = "test",
                                .partition = -1};
        rt_record rec = {.ts = events[i].t, .type = RT_TYPE_SOURCE, .data = &src};
        if (rt_graph_push(g, root, 0, &rec)) fail_msg("push: %s", rt_graph_error(g));
        free(v);
    }
    if (rt_graph_finish(g)) fail_msg("finish: %s", rt_graph_error(g));
    rt_graph_free(g);
    flags_free(t, 2);
    counter_job_def.free_opts(o);
    char path[600];
    snprintf(path, sizeof path, "%s/counter/redis-commands-0.resp", dir);
    parse_resp(path, s);
    unlink(path);
    snprintf(path, sizeof path, "%s/counter", dir);
    rmdir(path);
}

static char tmpdir[64];

static int setup(void **st)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/counter-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **st)
{
    return rmdir(tmpdir);
}

static const char *const minicluster[] = {
    "--counterOutputStartTimestamp=0",
    "--searchQueryWindowSize=P1D",
    "--searchQueryWindowSlide=PT1M",
    "--searchQueryWindowMinThreshold=2",
};
#define NMINI 4

#define K(lit) lit, sizeof(lit) - 1

static void test_metadata_commands(void **st)
{
    stream s;
    run_scenario(minicluster, NMINI, tmpdir, &s);
    /* PING, then per table HSET row_format + PERSIST, HSET feature_ids + PERSIST */
    assert_string_equal(s.c[0].argv[0], "PING");
    size_t hsets = 0, i = 1;
    for (; i < s.n && is(&s.c[i], s.c[i].argv[0], s.c[i].argv[1], s.c[i].len[1]) &&
           s.c[i].argv[1][0] == 0x1d;
         i++)
        if (!strcmp(s.c[i].argv[0], "HSET"))
            hsets++;
        else
            assert_string_equal(s.c[i].argv[0], "PERSIST");
    assert_int_equal(1 + hsets, 21);
    assert_true(is(&s.c[1], "HSET", K("\x1d\x1frow_format")));
    assert_string_equal(s.c[1].argv[2], "platform-device");
    assert_string_equal(s.c[1].argv[3], "os,user_agent,fid:value");
    assert_true(is(&s.c[2], "PERSIST", K("\x1d\x1frow_format")));
    assert_true(is(&s.c[3], "HSET",
                   K("\x1d\x1f"
                     "feature_ids")));
    /* the user table's ids are announced although stream U is not counted yet */
    int user_ids = 0, last_row = 0;
    for (size_t j = 1; j < i; j++) {
        if (is(&s.c[j], "HSET",
               K("\x1d\x1f"
                 "feature_ids")) &&
            !strcmp(s.c[j].argv[2], "user")) {
            user_ids = 1;
            assert_non_null(strstr(s.c[j].argv[3], "1147144"));
        }
        if (is(&s.c[j], "HSET", K("\x1d\x1frow_format")) &&
            !strcmp(s.c[j].argv[2], "last-time-user-query")) {
            last_row = 1;
            assert_string_equal(s.c[j].argv[3], "fid:value");
        }
    }
    assert_true(user_ids && last_row);
    stream_free(&s);

    const char *const wipe[] = {"--counterOutputStartTimestamp=0", "--wipe"};
    run_scenario(wipe, 2, tmpdir, &s);
    assert_string_equal(s.c[0].argv[0], "PING");
    assert_string_equal(s.c[1].argv[0], "FLUSHDB");
    stream_free(&s);
}

static int count_logical(void *ctx, int argc, const char *const *argv, const size_t *len)
{
    if (strcmp(argv[0], "PERSIST")) (*(int *)ctx)++;
    return 0;
}

static void test_metadata_counts(void **st)
{
    int n = 0;
    assert_int_equal(counter_metadata_commands((1u << CTABLE_COUNT) - 1, false, count_logical, &n),
                     0);
    assert_int_equal(n, 21);
    n = 0;
    assert_int_equal(counter_metadata_commands((1u << CTABLE_COUNT) - 1, true, count_logical, &n),
                     0);
    assert_int_equal(n, 22);
    /* --no-queryCounts and --no-lastUserQueryEvents remove two tables each */
    n = 0;
    unsigned no_query =
        ((1u << CTABLE_COUNT) - 1) & ~(1u << CTABLE_QUERY) & ~(1u << CTABLE_CONTENT_QUERY);
    assert_int_equal(counter_metadata_commands(no_query, false, count_logical, &n), 0);
    assert_int_equal(n, 17);
}

static void test_minicluster_counts(void **st)
{
    stream s;
    run_scenario(minicluster, NMINI, tmpdir, &s);
    char h[512], t[512];
    /* global, okhttp: 1h 1; 1d, 7d, 30d 2; PERSIST after every HSET; a final HDEL; never 3 */
    history(&s, K("20"),
            "Other\x1fokhttp\x1f"
            "1056834",
            h, t);
    assert_string_equal(h, "1,-,1,-");
    assert_string_equal(t, "P.P.");
    /* every daily timer writes all three buckets: 1d, 7d and 30d decay one after the other */
    history(&s, K("20"),
            "Other\x1fokhttp\x1f"
            "1056836",
            h, t);
    assert_string_equal(h, "2,-,-,-");
    history(&s, K("20"),
            "Other\x1fokhttp\x1f"
            "1056838",
            h, t);
    assert_string_equal(h, "2,2,-,-");
    history(&s, K("20"),
            "Other\x1fokhttp\x1f"
            "1056840",
            h, t);
    assert_string_equal(h, "2,2,2,-");
    assert_string_equal(t, "PPP.");
    /* global, promoted on iOS: 1h 1, 1d 1, 7d 2, 30d 3 at the highest */
    history(&s, K("20"),
            "iOS\x1fpromoted\x1f"
            "1056834",
            h, t);
    assert_string_equal(h, "1,-,1,-,1,-");
    /* daily timers at 4h, 1d4h, 3d4h, 4d4h, 7d4h, 10d4h, 11d4h, 17d4h, 30d4h, 33d4h, 40d4h */
    history(&s, K("20"),
            "iOS\x1fpromoted\x1f"
            "1056836",
            h, t);
    assert_string_equal(h, "1,-,1,-,-,1,-,-,-,-,-");
    history(&s, K("20"),
            "iOS\x1fpromoted\x1f"
            "1056838",
            h, t);
    assert_string_equal(h, "1,1,2,2,1,1,1,-,-,-,-");
    history(&s, K("20"),
            "iOS\x1fpromoted\x1f"
            "1056840",
            h, t);
    assert_string_equal(h, "1,1,2,2,2,3,3,3,2,1,-");
    /* content-device: 1 in every window; the 30-day HSET carries EXPIRE 5184000, the others none */
    history(&s, K("20\x1fNAVIGATE @ 600000"),
            "Other\x1fokhttp\x1f"
            "1056834",
            h, t);
    assert_string_equal(h, "1,-");
    assert_string_equal(t, "..");
    history(&s, K("20\x1fNAVIGATE @ 600000"),
            "Other\x1fokhttp\x1f"
            "1056836",
            h, t);
    assert_string_equal(h, "1,-,-,-");
    assert_string_equal(t, "....");
    history(&s, K("20\x1fNAVIGATE @ 600000"),
            "Other\x1fokhttp\x1f"
            "1056840",
            h, t);
    assert_string_equal(h, "1,1,1,-");
    assert_string_equal(t, "E5184000E5184000E5184000.");
    /* log users: todd 1h 1, 1d 2, 7d 2, 30d 2; eve 1, 1, 2, 3 */
    history(&s, K("20\x1f\x1du\x1flog_todd"), "1237058", h, t);
    assert_string_equal(h, "1,-,1,-");
    history(&s, K("20\x1f\x1du\x1flog_todd"), "1237060", h, t);
    assert_string_equal(h, "2,-,-,-");
    history(&s, K("20\x1f\x1du\x1flog_todd"), "1237064", h, t);
    assert_string_equal(h, "2,2,2,-");
    assert_string_equal(t, "E5184000E5184000E5184000.");
    history(&s, K("20\x1f\x1du\x1flog_eve"), "1237058", h, t);
    assert_string_equal(h, "1,-,1,-,1,-");
    history(&s, K("20\x1f\x1du\x1flog_eve"), "1237062", h, t);
    assert_string_equal(h, "1,1,2,2,1,1,1,-,-,-,-");
    history(&s, K("20\x1f\x1du\x1flog_eve"), "1237064", h, t);
    assert_string_equal(h, "1,1,2,2,2,3,3,3,2,1,-");
    stream_free(&s);
}

static void test_minicluster_queries(void **st)
{
    stream s;
    run_scenario(minicluster, NMINI, tmpdir, &s);
    char h[512], t[512];
    /* query two: hourly 2 (no TTL), daily 2, 7-day 2, 30-day 2 with 5184000. At 00:15 the 00:45
     * window already counts (it ends less than an hour after the timer: quotient 0), since the
     * drained input delivered both events before the first timer */
    history(&s,
            K("20\x1f\x1dq\x1f"
              "41809fa5f00aefaa"),
            "1359938", h, t);
    assert_string_equal(h, "2,2,1,-");
    assert_string_equal(t, "....");
    history(&s,
            K("20\x1f\x1dq\x1f"
              "41809fa5f00aefaa"),
            "1359940", h, t);
    assert_string_equal(h, "2,-,-,-");
    history(&s,
            K("20\x1f\x1dq\x1f"
              "41809fa5f00aefaa"),
            "1359942", h, t);
    assert_string_equal(h, "2,2,-,-");
    history(&s,
            K("20\x1f\x1dq\x1f"
              "41809fa5f00aefaa"),
            "1359944", h, t);
    assert_string_equal(h, "2,2,2,-");
    assert_string_equal(t, "E5184000E5184000E5184000.");
    /* the empty query passes without a window: 1h 1, 7-day 1, 30-day 2 at the highest */
    history(&s,
            K("20\x1f\x1dq\x1f"
              "ef46db3751d8e999"),
            "1359938", h, t);
    assert_string_equal(h, "1,-,1,-");
    /* daily timers at 3d4h, 4d4h, 10d4h, 11d4h, 17d4h, 33d4h, 40d4h */
    history(&s,
            K("20\x1f\x1dq\x1f"
              "ef46db3751d8e999"),
            "1359942", h, t);
    assert_string_equal(h, "1,1,1,1,-,-,-");
    history(&s,
            K("20\x1f\x1dq\x1f"
              "ef46db3751d8e999"),
            "1359944", h, t);
    assert_string_equal(h, "1,1,2,2,2,1,-");
    /* content x query: 1 for each content with query two or "" */
    history(&s,
            K("20\x1fNAVIGATE @ 600000\x1f\x1dq\x1f"
              "41809fa5f00aefaa"),
            "1450050", h, t);
    assert_string_equal(h, "1,-");
    history(&s,
            K("20\x1fNAVIGATE @ 864000000\x1f\x1dq\x1f"
              "ef46db3751d8e999"),
            "1450056", h, t);
    assert_string_equal(h, "1,1,1,-");
    /* nothing for query one (seen once, under the threshold of 2) */
    for (size_t i = 0; i < s.n; i++)
        if (s.c[i].argc > 1) assert_null(strstr(s.c[i].argv[1], "28841ff692f4061a"));
    stream_free(&s);
}

static void test_minicluster_last_time(void **st)
{
    stream s;
    run_scenario(minicluster, NMINI, tmpdir, &s);
    char h[512], t[512];
    /* last-time log user x content: count "1" and hours-ago "600000", both with 8035200 */
    history(&s, K("20\x1f\x1du\x1flog_todd\x1fNAVIGATE @ 600000"), "1343562", h, t);
    assert_string_equal(h, "1,-");
    assert_string_equal(t, "E8035200.");
    history(&s, K("20\x1f\x1du\x1flog_todd\x1fNAVIGATE @ 600000"), "1351744", h, t);
    assert_string_equal(h, "600000,-");
    assert_string_equal(t, "E8035200.");
    /* last-time log user x query (keyed by log_user_id): count 1, timestamp without TTL */
    history(&s,
            K("20\x1f\x1du\x1flog_todd\x1f\x1dq\x1f"
              "41809fa5f00aefaa"),
            "1556554", h, t);
    assert_string_equal(h, "1,-");
    assert_string_equal(t, "E8035200.");
    history(&s,
            K("20\x1f\x1du\x1flog_todd\x1f\x1dq\x1f"
              "41809fa5f00aefaa"),
            "1564736", h, t);
    assert_string_equal(h, "600000,-");
    assert_string_equal(t, "..");
    /* eve's two query-two-free events on "" count 1 then 2 */
    history(&s,
            K("20\x1f\x1du\x1flog_eve\x1f\x1dq\x1f"
              "ef46db3751d8e999"),
            "1556554", h, t);
    assert_string_equal(h, "1,2,1,-");
    for (size_t i = 0; i < s.n; i++)
        if (s.c[i].argc > 1)
            assert_null(strstr(s.c[i].argv[1], "log_todd\x1f\x1dq\x1f"
                                               "28841ff692f4061a"));
    /* the stream U tables are not written */
    for (size_t i = 0; i < s.n; i++)
        if (s.c[i].argc > 1) assert_null(strstr(s.c[i].argv[1], "\x1du\x1ftodd"));
    stream_free(&s);
}

/* Stream U with the minicluster's LogUserUser records: the user tables count by user_id. */
static void test_minicluster_users(void **st)
{
    stream s;
    with_log_user_users = 1;
    run_scenario(minicluster, NMINI, tmpdir, &s);
    with_log_user_users = 0;
    char h[512], t[512];
    /* users: todd 1h 1, 1d 2, 7d 2, 30d 2; eve 1, 1, 2, 3 (USER_COUNT fids) */
    history(&s, K("20\x1f\x1du\x1ftodd"), "1146946", h, t);
    assert_string_equal(h, "1,-,1,-");
    history(&s, K("20\x1f\x1du\x1ftodd"), "1146948", h, t);
    assert_string_equal(h, "2,-,-,-");
    history(&s, K("20\x1f\x1du\x1ftodd"), "1146952", h, t);
    assert_string_equal(h, "2,2,2,-");
    assert_string_equal(t, "E5184000E5184000E5184000.");
    history(&s,
            K("20\x1f\x1du\x1f"
              "eve"),
            "1146946", h, t);
    assert_string_equal(h, "1,-,1,-,1,-");
    history(&s,
            K("20\x1f\x1du\x1f"
              "eve"),
            "1146952", h, t);
    assert_string_equal(h, "1,1,2,2,2,3,3,3,2,1,-");
    /* last-time user x content: count "1", hours-ago "600000", both 8035200, later HDEL */
    history(&s, K("20\x1f\x1du\x1ftodd\x1fNAVIGATE @ 600000"), "1327178", h, t);
    assert_string_equal(h, "1,-");
    assert_string_equal(t, "E8035200.");
    history(&s, K("20\x1f\x1du\x1ftodd\x1fNAVIGATE @ 600000"), "1335360", h, t);
    assert_string_equal(h, "600000,-");
    assert_string_equal(t, "E8035200.");
    /* last-time user x query (the worked example of §B.4): 1540170 "1" with EXPIRE 8035200, then
     * 1548352 "600000" without a TTL command; nothing for query one */
    history(&s,
            K("\x32\x30\x1F\x1D\x75\x1F\x74\x6F\x64\x64\x1F\x1D\x71\x1F"
              "41809fa5f00aefaa"),
            "1540170", h, t);
    assert_string_equal(h, "1,-");
    assert_string_equal(t, "E8035200.");
    history(&s,
            K("20\x1f\x1du\x1ftodd\x1f\x1dq\x1f"
              "41809fa5f00aefaa"),
            "1548352", h, t);
    assert_string_equal(h, "600000,-");
    assert_string_equal(t, "..");
    for (size_t i = 0; i < s.n; i++)
        if (s.c[i].argc > 1)
            assert_null(strstr(s.c[i].argv[1], "todd\x1f\x1dq\x1f"
                                               "28841ff692f4061a"));
    /* the log-user tables are the same as without LogUserUser records */
    history(&s, K("20\x1f\x1du\x1flog_todd"), "1237060", h, t);
    assert_string_equal(h, "2,-,-,-");
    stream_free(&s);
}

static void test_buffered_variant(void **st)
{
    /* every record precedes the job's start: only the last command per field goes out */
    const char *const args[] = {"--counterOutputStartTimestamp=0", "--searchQueryWindowSize=P1D",
                                "--searchQueryWindowSlide=PT1M",
                                "--searchQueryWindowMinThreshold=2",
                                "--counterBackfillBuffer=P14D"};
    stream s;
    run_scenario(args, 5, tmpdir, &s);
    size_t hdel = 0, hset = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (!strcmp(s.c[i].argv[0], "HDEL")) hdel++;
        if (!strcmp(s.c[i].argv[0], "HSET") && s.c[i].argv[1][0] != 0x1d) hset++;
    }
    assert_true(hdel > 50);
    assert_int_equal(hset, 0);
    stream_free(&s);
}

static void test_output_gate(void **st)
{
    /* nothing whose record time is before the start or after the stop is written */
    const char *const args[] = {"--counterOutputStartTimestamp=3600000",
                                "--counterOutputStopTimestamp=259200000"};
    stream s;
    run_scenario(args, 2, tmpdir, &s);
    char h[512], t[512];
    /* the 00:15 hourly write of todd is gone; his 01:15 delete and the 02:15 write remain */
    history(&s, K("20\x1f\x1du\x1flog_todd"), "1237058", h, t);
    assert_string_equal(h, "-,1,-");
    /* the 3-day event's last-time write (ts 259200000) is kept, the 10-day one's is not */
    history(&s, K("20\x1f\x1du\x1flog_eve\x1fNAVIGATE @ 259200000"), "1343562", h, t);
    assert_string_equal(h, "1");
    history(&s, K("20\x1f\x1du\x1flog_eve\x1fNAVIGATE @ 864000000"), "1343562", h, t);
    assert_string_equal(h, "");
    stream_free(&s);
}

static void test_faithful_zero_counts(void **st)
{
    const char *const args[] = {"--counterOutputStartTimestamp=0", "--counterFaithfulZeroCounts"};
    stream s;
    run_scenario(args, 2, tmpdir, &s);
    char h[512], t[512];
    /* no HDEL: the key is persisted instead and the field keeps its value */
    history(&s, K("20\x1fNAVIGATE @ 600000"),
            "Other\x1fokhttp\x1f"
            "1056840",
            h, t);
    assert_string_equal(h, "1,1,1");
    size_t persist_after = 0;
    for (size_t i = 0; i < s.n; i++) {
        assert_string_not_equal(s.c[i].argv[0], "HDEL");
        if (is(&s.c[i], "PERSIST", K("20\x1fNAVIGATE @ 600000"))) persist_after++;
    }
    assert_true(persist_after >= 4);
    stream_free(&s);
}

/* §B.1: records are re-stamped with getLogTimestamp and the counting operators' watermark
 * follows max(log timestamp) - out-of-orderness - 1 ms, not the later record-file time. */
static void test_watermark_follows_the_log_timestamp(void **st)
{
    job_common_opts c;
    memset(&c, 0, sizeof c);
    void *o;
    flag_table t[2];
    t[0] = job_flags_common_table(&c);
    assert_int_equal(counter_job_def.new_opts(&o, &t[1]), 0);
    char outdir[128], err[512];
    snprintf(outdir, sizeof outdir, "-o=%s", tmpdir);
    char *argv[] = {outdir, "--counterOutputStartTimestamp=0"};
    char *pos[2];
    size_t npos;
    bool help;
    assert_int_equal(flags_parse(t, 2, 2, argv, pos, 2, &npos, &help, err, sizeof err), 0);
    assert_int_equal(counter_job_def.check(&c, o, err, sizeof err), 0);
    rt_graph *g;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    rt_op *root;
    assert_int_equal(counter_job_def.build(g, &c, o, "00000000", "0", &root, err, sizeof err), 0);
    assert_int_equal(rt_graph_open(g, err, sizeof err), 0);
    /* the 10-minute event arrives with a record-file time 20 s later */
    uint8_t *v;
    size_t n = pack_event(&events[0], &v);
    rt_source_record src = {.ts = events[0].t + 20000, .value = v, .value_len = n, .raw_length = n,
                            .source = "test", .partition = -1};
    rt_record rec = {.ts = src.ts, .type = RT_TYPE_SOURCE, .data = &src};
    assert_int_equal(rt_graph_push(g, root, 0, &rec), 0);
    free(v);
    assert_int_equal(rt_graph_advance_watermark(g, events[0].t + 20000 - 1001), 0);
    rt_op *count = rt_graph_find(g, "count-hourly-event-platform-device");
    assert_non_null(count);
    assert_int_equal(rt_op_watermark(count), events[0].t - 1001);
    /* the source's own watermark is the record file's */
    assert_int_equal(rt_op_watermark(rt_graph_find(g, "source-kafka-metrics.default.joined-event")),
                     events[0].t + 20000 - 1001);
    assert_int_equal(rt_graph_finish(g), 0);
    rt_graph_free(g);
    flags_free(t, 2);
    counter_job_def.free_opts(o);
    char path[600];
    snprintf(path, sizeof path, "%s/counter/redis-commands-0.resp", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/counter", tmpdir);
    rmdir(path);
}

static void test_input_topic(void **st)
{
    char b[256];
    counter_input_topic("blue-canary", "blue", "default", "", b, sizeof b);
    assert_string_equal(b, "metrics.blue.default.joined-event");
    counter_input_topic("blue", "", "default", "", b, sizeof b);
    assert_string_equal(b, "metrics.blue.default.joined-event");
    counter_input_topic("live", "", "default", "", b, sizeof b);
    assert_string_equal(b, "metrics.default.joined-event");
    counter_input_topic("", "", "default", "mine", b, sizeof b);
    assert_string_equal(b, "mine");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_counts),
        cmocka_unit_test(test_metadata_commands),
        cmocka_unit_test(test_minicluster_counts),
        cmocka_unit_test(test_minicluster_queries),
        cmocka_unit_test(test_minicluster_last_time),
        cmocka_unit_test(test_minicluster_users),
        cmocka_unit_test(test_buffered_variant),
        cmocka_unit_test(test_output_gate),
        cmocka_unit_test(test_faithful_zero_counts),
        cmocka_unit_test(test_watermark_follows_the_log_timestamp),
        cmocka_unit_test(test_input_topic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
