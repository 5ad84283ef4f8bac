/* What the counter reads from a JoinedEvent (spec/other-jobs.md §B.3): the first-non-zero and
 * first-non-blank getters and their orders, the count (CounterUtilTest), the aggregate metric,
 * blank strings (StringUtilTest), the lowered query and its hash, and the OS / user-agent
 * families of the spec's vectors and the generator's user agents. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/counter/counter_fields.h"
#include "jobs/counter/counter_tables.h"
#include "jobs/counter/ua_family.h"

static void test_platform_order(void **s)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    assert_int_equal(cfield_platform_id(&e), 0);
    Event__Action a = EVENT__ACTION__INIT;
    a.platform_id = 7;
    e.action = &a;
    assert_int_equal(cfield_platform_id(&e), 7);
    Event__View v = EVENT__VIEW__INIT;
    v.platform_id = 5;
    e.view = &v;
    assert_int_equal(cfield_platform_id(&e), 5);
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    e.ids = &ids; /* ids present but 0: the next one wins */
    assert_int_equal(cfield_platform_id(&e), 5);
    ids.platform_id = 3;
    assert_int_equal(cfield_platform_id(&e), 3);
}

static void test_user_ids_first_non_blank(void **s)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    assert_string_equal(cfield_log_user_id(&e), "");
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    ids.log_user_id = "   ";
    ids.user_id = "";
    e.ids = &ids;
    Common__UserInfo vu = COMMON__USER_INFO__INIT;
    vu.log_user_id = "from-view";
    vu.user_id = "uid-view";
    Event__View v = EVENT__VIEW__INIT;
    v.user_info = &vu;
    e.view = &v;
    Common__UserInfo au = COMMON__USER_INFO__INIT;
    au.log_user_id = "from-action";
    Event__Action a = EVENT__ACTION__INIT;
    a.user_info = &au;
    e.action = &a;
    assert_string_equal(cfield_log_user_id(&e), "from-view");
    assert_string_equal(cfield_user_id(&e), "uid-view");
    /* all blank: the last candidate's value, as firstNotEmpty returns its last argument */
    vu.log_user_id = "";
    au.log_user_id = " \t";
    assert_string_equal(cfield_log_user_id(&e), " \t");
    ids.log_user_id = "ids";
    assert_string_equal(cfield_log_user_id(&e), "ids");
}

static void test_content_id_order(void **s)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    Delivery__Insertion ri = DELIVERY__INSERTION__INIT, ai = DELIVERY__INSERTION__INIT;
    Event__Impression imp = EVENT__IMPRESSION__INIT;
    ri.content_id = "";
    ai.content_id = "api";
    imp.content_id = "imp";
    e.response_insertion = &ri;
    e.api_execution_insertion = &ai;
    e.impression = &imp;
    assert_string_equal(cfield_content_id(&e), "api");
    ri.content_id = "resp";
    assert_string_equal(cfield_content_id(&e), "resp");
}

static void test_timestamps(void **s)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    Common__Timing top = COMMON__TIMING__INIT, at = COMMON__TIMING__INIT, it = COMMON__TIMING__INIT,
                   ut = COMMON__TIMING__INIT;
    top.event_api_timestamp = 9;
    e.timing = &top;
    /* the top-level timing is not an event API timestamp source */
    assert_int_equal(cfield_event_api_timestamp(&e), 0);
    Event__Impression imp = EVENT__IMPRESSION__INIT;
    it.event_api_timestamp = 3;
    it.log_timestamp = 4;
    imp.timing = &it;
    e.impression = &imp;
    Event__User u = EVENT__USER__INIT;
    ut.event_api_timestamp = 1;
    ut.log_timestamp = 2;
    u.timing = &ut;
    e.user = &u;
    assert_int_equal(cfield_event_api_timestamp(&e), 3);
    assert_int_equal(cfield_log_timestamp(&e), 4);
    Event__Action a = EVENT__ACTION__INIT;
    at.event_api_timestamp = 5;
    at.log_timestamp = 6;
    a.timing = &at;
    e.action = &a;
    assert_int_equal(cfield_event_api_timestamp(&e), 5);
    assert_int_equal(cfield_log_timestamp(&e), 6);
    top.log_timestamp = 7; /* the top-level timing comes first for the log timestamp */
    assert_int_equal(cfield_log_timestamp(&e), 7);
}

static void test_count(void **s)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    assert_int_equal(cfield_count(&e), 1);
    Event__Action a = EVENT__ACTION__INIT;
    a.has_action_type = 1;
    a.action_type = EVENT__ACTION_TYPE__PURCHASE;
    e.action = &a;
    assert_int_equal(cfield_count(&e), 1);
    Event__CartContent cc = EVENT__CART_CONTENT__INIT;
    a.single_cart_content = &cc;
    assert_int_equal(cfield_count(&e), 0); /* a cart without quantity counts 0 */
    cc.has_quantity = 1;
    cc.quantity = 1;
    assert_int_equal(cfield_count(&e), 1);
    cc.quantity = 5;
    assert_int_equal(cfield_count(&e), 5);
    cc.quantity = -3;
    assert_int_equal(cfield_count(&e), -3);
}

static void test_metric(void **s)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    assert_int_equal(cfield_metric(&e), CMETRIC_UNKNOWN);
    Event__Impression imp = EVENT__IMPRESSION__INIT;
    e.impression = &imp;
    assert_int_equal(cfield_metric(&e), CMETRIC_IMPRESSION);
    Event__Action a = EVENT__ACTION__INIT;
    e.action = &a;
    a.has_action_type = 1;
    struct {
        int type, metric;
    } v[] = {{2, 64}, {3, 96}, {4, 128}, {8, 256}, {19, 608},
             {1, 0},  {0, 0},  {20, 0},  {25, 0},  {99, 0}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        a.action_type = (Event__ActionType)v[i].type;
        assert_int_equal(cfield_metric(&e), v[i].metric);
    }
}

static void test_blank_and_length(void **s)
{
    assert_true(cfield_is_blank("", 0));
    assert_true(cfield_is_blank("   ", 3));
    assert_true(cfield_is_blank("\t\n\r\x0b\x0c\x1c", 6));
    assert_true(cfield_is_blank("\xe2\x80\x83", 3)); /* U+2003 EM SPACE */
    assert_false(cfield_is_blank("\xc2\xa0", 2));    /* U+00A0 is not Java whitespace */
    assert_false(cfield_is_blank(" a ", 3));
    assert_int_equal(cfield_utf16_length("abc", 3), 3);
    assert_int_equal(cfield_utf16_length("\xc3\xa9", 2), 1);
    assert_int_equal(cfield_utf16_length("\xf0\x9f\x98\x80", 4), 2);
}

static void ua(ua_family *p, const char *agent, const char *os, const char *fam)
{
    ua_family_result r;
    assert_int_equal(ua_family_parse(p, agent, strlen(agent), &r), 0);
    assert_string_equal(r.os, os);
    assert_string_equal(r.ua, fam);
    assert_int_equal(r.os_len, strlen(os));
    assert_int_equal(r.ua_len, strlen(fam));
}

static void test_ua_families(void **s)
{
    ua_family *p;
    char err[256];
    assert_int_equal(ua_family_new(&p, err, sizeof err), 0);
    for (int round = 0; round < 2; round++) { /* the second round comes from the cache */
        ua(p, "okhttp/3.14.9", "Other", "okhttp");
        ua(p, "promoted/980 CFNetwork/1240.0.4 Darwin/20.6.0", "iOS", "promoted");
        ua(p, "", "Other", "Other");
        ua(p,
           "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
           "Gecko) Chrome/96.0.4664.110 Safari/537.36",
           "Mac OS X", "Chrome");
        ua(p,
           "Mozilla/5.0 (Linux; Android 7.0; SM-G930V Build/NRD90M) AppleWebKit/537.36 (KHTML, "
           "like Gecko) Chrome/59.0.3071.125 Mobile Safari/537.36",
           "Android", "Chrome Mobile");
        ua(p, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/118.0",
           "Windows", "Firefox");
        ua(p,
           "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
           "like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
           "iOS", "Mobile Safari");
        ua(p, "curl/7.88.1", "Other", "curl");
        ua(p, "something else entirely", "Other", "Other");
    }
    /* a very long app name is cut at a UTF-8 boundary */
    char big[600];
    memset(big, 'a', 300);
    strcpy(big + 300, "/1.0 CFNetwork/1 Darwin/20.0");
    ua_family_result r;
    ua_family_parse(p, big, strlen(big), &r);
    assert_int_equal(r.ua_len, UA_FAMILY_MAX);
    ua_family_free(p);
}

static void test_extract(void **s)
{
    Event__JoinedEvent e = EVENT__JOINED_EVENT__INIT;
    Delivery__Request rq = DELIVERY__REQUEST__INIT;
    rq.search_query = "Query Two";
    Common__Device dev = COMMON__DEVICE__INIT;
    Common__Browser br = COMMON__BROWSER__INIT;
    br.user_agent = "okhttp/3.14.9";
    dev.browser = &br;
    rq.device = &dev;
    rq.platform_id = 20;
    e.request = &rq;
    ua_family *p;
    char err[256], q[64];
    assert_int_equal(ua_family_new(&p, err, sizeof err), 0);
    counter_fields f;
    assert_int_equal(cfield_extract(&e, p, q, sizeof q, &f), 0);
    assert_int_equal(f.platform_id, 20);
    assert_string_equal(f.query, "query two");
    char hex[17];
    ctable_hash_hex(f.query_hash, hex);
    assert_string_equal(hex, "41809fa5f00aefaa");
    assert_string_equal(f.os, "Other");
    assert_string_equal(f.ua, "okhttp");
    assert_string_equal(f.content_id, "");
    assert_int_equal(f.count, 1);
    /* a query whose lower-cased form does not fit the buffer is refused */
    assert_int_equal(cfield_extract(&e, p, q, 8, &f), -1);
    /* no request: empty query, the empty-string hash, Other/Other */
    e.request = NULL;
    assert_int_equal(cfield_extract(&e, p, q, sizeof q, &f), 0);
    assert_int_equal(f.query_len, 0);
    assert_true(f.query_hash == CTABLE_EMPTY_QUERY_HASH);
    assert_string_equal(f.ua, "Other");
    ua_family_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_platform_order),
        cmocka_unit_test(test_user_ids_first_non_blank),
        cmocka_unit_test(test_content_id_order),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_metric),
        cmocka_unit_test(test_blank_and_length),
        cmocka_unit_test(test_ua_families),
        cmocka_unit_test(test_extract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
