/* The bot filter and ShouldJoin (src/jobs/join/bot_filter.h, spec/flat-output.md §2.4, §2.5,
 * Appendix A, §17 scenario 5, §20 scenarios 4 and 5). The expected answers of the user-agent
 * table were produced by a JVM (OpenJDK 17) running the reference's rule: the Appendix A
 * patterns joined with '|', Pattern.compile without flags, find() in ua.toLowerCase(Locale.ROOT).
 * They pin Java's `$` (before one final line terminator), `.` (not a line terminator, but VT/FF
 * are fine), ASCII `\s`/`\d`, full-Unicode lower-casing (KELVIN SIGN), and no Unicode caseless
 * matches (LONG S is not 's'). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs/common_ops.h"
#include "jobs/join/bot_filter.h"
#include "jobs/join/join_records.h"
#include "runtime/graph.h"

static const struct {
    const char *ua;
    int bot;
} user_agents[] = {
    {"", 0},
    {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 1},
    {"Java Browser", 1},
    {"facebookexternalhit/1.1", 1},
    {"google bot", 1},
    {"okhttp/3.14.9", 0},
    {"ccc/823 CFNetwork/1240.0.4 Darwin/20.6.0", 0},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/91.0.4472.124 Safari/537.36",
     0},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/14.1.1 Safari/605.1.15",
     0},
    {"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:89.0) Gecko/20100101 Firefox/89.0", 0},
    {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 1},
    {"my browser", 1},
    {"My Browser\x0a", 1},
    {"my browser\x0d\x0a", 1},
    {"my browser\x0d", 1},
    {"my browser\xe2\x80\xa8", 1},
    {"my browser\xe2\x80\xa9", 1},
    {"my browser\xc2\x85", 1},
    {"my browser\x0b", 0},
    {"my browser\x0c", 0},
    {"my browser\x0a\x0a", 0},
    {"my browser\x0a\x0d", 0},
    {"my browser ", 0},
    {"mailchimp.com\x0a", 1},
    {"Mozilla/5.0 (compatible)", 1},
    {"Mozilla/5.0 (compatible;)\x0d\x0a", 1},
    {"mozilla/5.0 (compatible;)\x0d", 1},
    {"blocknote.net", 1},
    {"blocknote\x0anet", 0},
    {"blocknote\x0bnet", 1},
    {"blocknote\xe2\x80\xa8net", 0},
    {"blocknoteXnet", 1},
    {"blocknote\xc3\xa9net", 1},
    {"traackr\xc2\x85"
     "com",
     0},
    {"traackr\x0c"
     "com",
     1},
    {"\xc5\xbf"
     "earch",
     0},
    {"@\xc5\xbf", 0},
    {"@a", 1},
    {"CHEC\xe2\x84\xaa", 1},
    {"\xc4\xb0ndex", 0},
    {"INDEX", 1},
    {"\xc3\x89mail", 0},
    {"a\x09site", 1},
    {"a\xc2\xa0site", 0},
    {"a\x0bsite", 1},
    {"a\xe2\x80\x83site", 0},
    {"site", 1},
    {"xsite", 0},
    {"fdm 1", 1},
    {"fdm\xd9\xa0", 0},
    {"fdm/9", 1},
    {"FDM\x0b"
     "1",
     1},
    {"12345", 1},
    {" 12345", 0},
    {"\xf0\x9f\x98\x80 bot", 1},
    {"ptst/1", 1},
    {"ptst\xc2\xa0"
     "1",
     0},
    {"Dispatch/1", 1},
    {"dispatch/x", 0},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 14_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Mobile/15E148",
     0},
    {"Dalvik/2.1.0 (Linux; U; Android 11; Pixel 5 Build/RQ3A.210605.005)", 0},
    {"PostmanRuntime/7.28.0", 0},
    {"curl/7.64.1", 1},
    {"python-requests/2.25.1", 1},
    {"Wget/1.20.3 (linux-gnu)", 1},
    {"HeadlessChrome/91", 1},
    {"Mozilla/5.0 (Linux; Android 10; SM-G973F) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/91.0 Mobile Safari/537.36",
     1},
    {"\xce\xa3", 0},
    {"ACTIVE", 1},
    {" daum/", 1},
    {" daum\xe2\x80\xa8", 0},
    {"(at)x", 1},
    {"[at]y", 1},
    {"(github.com/", 1},
    {"bit.ly/", 1},
    {"bitXly/", 0},
    {"<html>", 1},
    {"  <html>", 0},
};

static void test_is_bot_answers_as_java_does(void **state)
{
    (void)state;
    bot_filter *bf;
    char err[256];
    assert_int_equal(bot_filter_new(&bf, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof user_agents / sizeof user_agents[0]; i++) {
        int r = bot_filter_is_bot(bf, user_agents[i].ua, strlen(user_agents[i].ua));
        if (r != user_agents[i].bot)
            fail_msg("user agent #%zu \"%s\": isBot %d, Java says %d", i, user_agents[i].ua, r,
                     user_agents[i].bot);
    }
    bot_filter_free(bf);
}

static void test_spec_examples_of_bots_and_browsers(void **state)
{
    (void)state;
    bot_filter *bf;
    char err[256];
    assert_int_equal(bot_filter_new(&bf, err, sizeof err), 0);
#define BOT(s) bot_filter_is_bot(bf, s, strlen(s))
    assert_int_equal(
        BOT("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"), 1);
    assert_int_equal(BOT("Java Browser"), 1);
    assert_int_equal(BOT("facebookexternalhit/1.1"), 1);
    assert_int_equal(BOT("google bot"), 1);
    assert_int_equal(BOT("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
                     1);
    assert_int_equal(BOT("okhttp/3.14.9"), 0);
    assert_int_equal(BOT("ccc/823 CFNetwork/1240.0.4 Darwin/20.6.0"), 0);
    assert_int_equal(
        BOT("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:89.0) Gecko/20100101 Firefox/89.0"), 0);
#undef BOT
    bot_filter_free(bf);
}

/* U+212A KELVIN SIGN lower-cases to 'k' (Java's toLowerCase is full Unicode): "CHEC<K>" is
 * "check", a pattern. */
static void test_kelvin_sign_is_lowercased_before_matching(void **state)
{
    (void)state;
    bot_filter *bf;
    char err[256];
    assert_int_equal(bot_filter_new(&bf, err, sizeof err), 0);
    assert_int_equal(bot_filter_is_bot(bf, "CHEC\xe2\x84\xaa", 7), 1);
    assert_int_equal(bot_filter_is_bot(bf, "CHEC", 4), 0);
    /* U+017F LONG S stays itself in Java and never equals 's' */
    assert_int_equal(bot_filter_is_bot(bf,
                                       "\xc5\xbf"
                                       "earch",
                                       7),
                     0);
    bot_filter_free(bf);
}

static void test_empty_or_unsearchable_user_agents_are_not_bots(void **state)
{
    (void)state;
    bot_filter *bf;
    char err[256];
    assert_int_equal(bot_filter_new(&bf, err, sizeof err), 0);
    assert_int_equal(bot_filter_is_bot(bf, "", 0), 0);
    assert_int_equal(bot_filter_is_bot(bf, NULL, 0), 0);
    /* over the limit: not searched (the length alone decides; nothing is read) */
    assert_int_equal(bot_filter_is_bot(bf, "bot", BOT_FILTER_MAX_UA_BYTES + 1), -1);
    /* invalid UTF-8 cannot be searched in UTF mode */
    assert_int_equal(bot_filter_is_bot(bf, "bot\xff", 4), -1);
    /* a long ordinary one is searched (the buffer grows) */
    size_t n = 100000;
    char *ua = malloc(n + 4);
    memset(ua, 'x', n);
    memcpy(ua + n, "bot", 4);
    assert_int_equal(bot_filter_is_bot(bf, ua, n + 3), 1);
    assert_int_equal(bot_filter_is_bot(bf, ua, n), 0);
    free(ua);
    bot_filter_free(bf);
}

static void test_appendix_a_patterns_are_all_there(void **state)
{
    (void)state;
    assert_int_equal(bot_filter_pattern_count(), 202);
    assert_string_equal(bot_filter_pattern(0), " daum[\\s/]");
    assert_string_equal(bot_filter_pattern(201), "zgrab");
    assert_null(bot_filter_pattern(202));
    for (size_t i = 0; i < 202; i++) {
        assert_string_not_equal(bot_filter_pattern(i), "http"); /* removed from the list */
        assert_null(strstr(bot_filter_pattern(i), "okhttp"));
    }
    /* every pattern is found in a string made of its own literal text (patterns without
     * metacharacters), so none is lost in the join */
    bot_filter *bf;
    char err[256];
    assert_int_equal(bot_filter_new(&bf, err, sizeof err), 0);
    size_t plain = 0;
    for (size_t i = 0; i < 202; i++) {
        const char *p = bot_filter_pattern(i);
        if (strpbrk(p, "\\[]()?*+|$.")) continue;
        const char *text = p[0] == '^' ? p + 1 : p;
        char ua[128];
        snprintf(ua, sizeof ua, "%s", text);
        if (bot_filter_is_bot(bf, ua, strlen(ua)) != 1) fail_msg("pattern \"%s\" not found", p);
        plain++;
    }
    assert_true(plain > 150);
    bot_filter_free(bf);
}

static void test_two_matchers_share_the_pattern_and_free_in_any_order(void **state)
{
    (void)state;
    bot_filter *a, *b;
    char err[256];
    assert_int_equal(bot_filter_new(&a, err, sizeof err), 0);
    assert_int_equal(bot_filter_new(&b, err, sizeof err), 0);
    bot_filter_free(a);
    assert_int_equal(bot_filter_is_bot(b, "spider", 6), 1);
    bot_filter_free(b);
    assert_int_equal(bot_filter_new(&a, err, sizeof err), 0); /* compiled again */
    assert_int_equal(bot_filter_is_bot(a, "spider", 6), 1);
    bot_filter_free(a);
}

static void test_should_join_keeps_production_unknown_and_shadow(void **state)
{
    (void)state;
    assert_int_equal(bot_filter_traffic_priority(1), 3);  /* PRODUCTION */
    assert_int_equal(bot_filter_traffic_priority(0), 3);  /* UNKNOWN */
    assert_int_equal(bot_filter_traffic_priority(99), 3); /* unrecognized */
    assert_int_equal(bot_filter_traffic_priority(4), 2);  /* SHADOW */
    assert_int_equal(bot_filter_traffic_priority(2), 1);  /* REPLAY */
    assert_int_equal(bot_filter_traffic_priority(3), 1);  /* INTERNAL */
    assert_int_equal(bot_filter_traffic_priority(5), 1);  /* LOAD_TEST */
    assert_true(bot_filter_should_join(1));
    assert_true(bot_filter_should_join(0));
    assert_true(bot_filter_should_join(4));
    assert_false(bot_filter_should_join(2));
    assert_false(bot_filter_should_join(3));
    assert_false(bot_filter_should_join(5));
}

/* ---- operators ---- */

typedef struct capture {
    char lines[8][256];
    int n;
} capture;

static int capture_process(rt_op *op, int input, const rt_record *rec)
{
    capture *c = rt_op_self(op);
    char *line = c->lines[c->n++ % 8];
    if (rec->type == REC_TINY_EVENT) {
        const Event__TinyEvent *t = rec->data;
#define S(x) ((x) ? (x) : "-")
        snprintf(line, 256, "ts=%lld tiny p=%llu u=%s lt=%llu v=%s r=%s i=%s", (long long)rec->ts,
                 (unsigned long long)t->platform_id, S(t->log_user_id),
                 (unsigned long long)t->log_timestamp, S(t->view_id), S(t->request_id),
                 S(t->insertion_id));
#undef S
    } else {
        snprintf(line, 256, "ts=%lld type=%d", (long long)rec->ts, rec->type);
    }
    return 0;
}

static const rt_op_vtbl capture_vt = {.process = capture_process};

static rt_graph *graph_with(bot_filter_stream s, capture *c, int nports, rt_op **op)
{
    rt_graph *g;
    assert_int_equal(rt_graph_new(NULL, &g), 0);
    assert_int_equal(
        bot_filter_op_add(g, s == BOT_FILTER_VIEW ? "filter-bot-view" : "filter-delivery-log", s,
                          op),
        0);
    for (int p = 0; p < nports; p++) {
        char uid[32];
        rt_op *sink;
        snprintf(uid, sizeof uid, "sink-%d", p);
        assert_int_equal(rt_graph_add_op(g, uid, NULL, &capture_vt, &c[p], 1, 0, &sink), 0);
        assert_int_equal(rt_graph_connect(g, *op, p, sink, 0), 0);
    }
    char err[256];
    assert_int_equal(rt_graph_open(g, err, sizeof err), 0);
    return g;
}

static void test_bot_views_go_to_dropped_view_is_bot(void **state)
{
    (void)state;
    capture c[2] = {{.n = 0}, {.n = 0}};
    rt_op *op;
    rt_graph *g = graph_with(BOT_FILTER_VIEW, c, 2, &op);
    Common__Browser br = COMMON__BROWSER__INIT;
    Common__Device dev = COMMON__DEVICE__INIT;
    dev.browser = &br;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.log_user_id = "u1";
    Common__Timing t = COMMON__TIMING__INIT;
    t.has_log_timestamp = 1, t.log_timestamp = 1000;
    Event__View v = EVENT__VIEW__INIT;
    v.platform_id = 1, v.user_info = &ui, v.timing = &t, v.view_id = "v1", v.device = &dev;
    br.user_agent = "Googlebot/2.1";
    rt_record r = {.ts = 1000, .type = REC_VIEW, .data = &v};
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
    br.user_agent = "okhttp/3.14.9";
    r.ts = 1001;
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
    v.device = NULL; /* no device: no UA, not a bot */
    r.ts = 1002;
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
    assert_int_equal(c[1].n, 1);
    assert_string_equal(c[1].lines[0], "ts=1000 tiny p=1 u=u1 lt=1000 v=v1 r=- i=-");
    assert_int_equal(c[0].n, 2);
    assert_string_equal(c[0].lines[1], "ts=1002 type=4");
    rt_graph_free(g);
}

/* §20 scenarios 4 and 5: REPLAY traffic -> dropped_delivery_log_should_not_join, a bot UA ->
 * dropped_delivery_log_is_bot, SHADOW and UNKNOWN traffic and okhttp pass. */
static void test_delivery_logs_are_filtered_by_traffic_then_by_bot(void **state)
{
    (void)state;
    capture c[3] = {{.n = 0}, {.n = 0}, {.n = 0}};
    rt_op *op;
    rt_graph *g = graph_with(BOT_FILTER_DELIVERY_LOG, c, 3, &op);
    Common__Browser br = COMMON__BROWSER__INIT;
    Common__Device dev = COMMON__DEVICE__INIT;
    dev.browser = &br;
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.log_user_id = "u1";
    Common__Timing t = COMMON__TIMING__INIT;
    t.has_log_timestamp = 1, t.log_timestamp = 1601596151100;
    Common__ClientInfo ci = COMMON__CLIENT_INFO__INIT;
    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    rq.user_info = &ui, rq.timing = &t, rq.view_id = "v1", rq.request_id = "r1";
    rq.client_info = &ci, rq.device = &dev;
    Delivery__DeliveryLog dl = DELIVERY__DELIVERY_LOG__INIT;
    dl.platform_id = 1, dl.request = &rq;
    rt_record r = {.ts = 1601596151100, .type = REC_DELIVERY_LOG, .data = &dl};

    ci.has_traffic_type = 1, ci.traffic_type = COMMON__CLIENT_INFO__TRAFFIC_TYPE__REPLAY;
    br.user_agent = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)";
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0); /* traffic first: should-not-join */
    ci.traffic_type = COMMON__CLIENT_INFO__TRAFFIC_TYPE__PRODUCTION;
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0); /* bot */
    br.user_agent = "okhttp/3.14.9";
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
    ci.traffic_type = COMMON__CLIENT_INFO__TRAFFIC_TYPE__SHADOW;
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
    ci.has_traffic_type = 0, ci.traffic_type = 0;
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0);
    rq.client_info = NULL;
    ci.has_traffic_type = 1, ci.traffic_type = COMMON__CLIENT_INFO__TRAFFIC_TYPE__LOAD_TEST;
    assert_int_equal(rt_graph_push(g, op, 0, &r), 0); /* no client_info: UNKNOWN, kept */

    assert_int_equal(c[1].n, 1);
    assert_string_equal(c[1].lines[0], "ts=1601596151100 tiny p=1 u=u1 lt=1601596151100 v=v1 "
                                       "r=r1 i=-");
    assert_int_equal(c[2].n, 1);
    assert_string_equal(c[2].lines[0], c[1].lines[0]);
    assert_int_equal(c[0].n, 4);
    rt_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_bot_answers_as_java_does),
        cmocka_unit_test(test_spec_examples_of_bots_and_browsers),
        cmocka_unit_test(test_kelvin_sign_is_lowercased_before_matching),
        cmocka_unit_test(test_empty_or_unsearchable_user_agents_are_not_bots),
        cmocka_unit_test(test_appendix_a_patterns_are_all_there),
        cmocka_unit_test(test_two_matchers_share_the_pattern_and_free_in_any_order),
        cmocka_unit_test(test_should_join_keeps_production_unknown_and_shadow),
        cmocka_unit_test(test_bot_views_go_to_dropped_view_is_bot),
        cmocka_unit_test(test_delivery_logs_are_filtered_by_traffic_then_by_bot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
