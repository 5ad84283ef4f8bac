/* Push-down split (spec/other-jobs.md §1.7, flat-output.md §1.2) and Java lowercasing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "formats/pb_util.h"
#include "formats/text.h"
#include "jobs/split.h"

static pb_arena *arena;

static int setup(void **s)
{
    arena = pb_arena_new(4096, 1 << 20);
    return arena ? 0 : -1;
}

static int teardown(void **s)
{
    pb_arena_free(arena);
    return 0;
}

static void test_lowercase_matches_java_to_lower_case_root(void **s)
{
    char out[64];
    size_t n;
    text_lower("LogUserId1", 10, out, &n);
    assert_string_equal(out, "loguserid1");
    /* U+0130 -> "i" + U+0307 (Java's special case) */
    text_lower("\xC4\xB0X", 3, out, &n);
    assert_string_equal(out, "i\xCC\x87x");
    /* final sigma: "ΟΔΟΣ" -> "οδος" with ς at the end, σ inside */
    text_lower("\xCE\x9F\xCE\xA3\xCE\x9F\xCE\xA3", 8, out, &n);
    assert_string_equal(out, "\xCE\xBF\xCF\x83\xCE\xBF\xCF\x82");
    /* non-ASCII upper case: Ä -> ä */
    text_lower("\xC3\x84", 2, out, &n);
    assert_string_equal(out, "\xC3\xA4");
    /* title case is not upper case for Java's isUpperCase */
    assert_false(text_has_upper("\xC7\x85", 2));
    assert_true(text_has_upper("a\xC3\x84", 3));
    assert_false(text_has_upper("abc-123", 7));
}

/* B{platform 1, user_info{luid "loguserid1"}, timing{clt}, client_info{...}} + empty DeliveryLog */
static void test_push_down_fills_delivery_log_request(void **s)
{
    Common__UserInfo ui = COMMON__USER_INFO__INIT;
    ui.log_user_id = "loguserid1";
    Common__Timing tm = COMMON__TIMING__INIT;
    tm.has_client_log_timestamp = 1;
    tm.client_log_timestamp = 1601516627000;
    Common__ClientInfo ci = COMMON__CLIENT_INFO__INIT;
    ci.has_client_type = ci.has_traffic_type = 1;
    ci.client_type = COMMON__CLIENT_INFO__CLIENT_TYPE__PLATFORM_SERVER;
    ci.traffic_type = COMMON__CLIENT_INFO__TRAFFIC_TYPE__PRODUCTION;
    Delivery__DeliveryLog dl = DELIVERY__DELIVERY_LOG__INIT, *dls[] = {&dl};
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    lr.has_platform_id = 1;
    lr.platform_id = 1;
    lr.user_info = &ui;
    lr.timing = &tm;
    lr.client_info = &ci;
    lr.n_delivery_log = 1;
    lr.delivery_log = dls;

    assert_int_equal(split_push_down(&lr, pb_arena_allocator(arena)), 0);
    assert_int_equal(dl.platform_id, 1);
    assert_non_null(dl.request);
    assert_int_equal(dl.request->platform_id, 1);
    assert_string_equal(dl.request->user_info->log_user_id, "loguserid1");
    assert_int_equal(dl.request->timing->client_log_timestamp, 1601516627000);
    assert_int_equal(dl.request->client_info->client_type,
                     COMMON__CLIENT_INFO__CLIENT_TYPE__PLATFORM_SERVER);
    assert_int_equal(dl.request->client_info->traffic_type,
                     COMMON__CLIENT_INFO__TRAFFIC_TYPE__PRODUCTION);
    /* the LogRequest's own fields stay as they were */
    assert_string_equal(lr.user_info->log_user_id, "loguserid1");
    pb_arena_reset(arena, 0);
}

static void test_push_down_keeps_child_values_and_lowercases(void **s)
{
    Common__UserInfo bui = COMMON__USER_INFO__INIT;
    bui.log_user_id = "BatchLUID";
    bui.user_id = "user-1";
    Common__UserInfo vui = COMMON__USER_INFO__INIT;
    vui.log_user_id = "logUserId1";
    Event__View v = EVENT__VIEW__INIT, *views[] = {&v};
    v.has_platform_id = 1;
    v.platform_id = 2;
    v.user_info = &vui;
    Event__Impression imp = EVENT__IMPRESSION__INIT, *imps[] = {&imp};
    Event__User u = EVENT__USER__INIT, *users[] = {&u};
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    lr.has_platform_id = 1;
    lr.platform_id = 1;
    lr.user_info = &bui;
    lr.n_view = 1;
    lr.view = views;
    lr.n_impression = 1;
    lr.impression = imps;
    lr.n_user = 1;
    lr.user = users;

    assert_int_equal(split_push_down(&lr, pb_arena_allocator(arena)), 0);
    assert_int_equal(v.platform_id, 2);                          /* own value kept */
    assert_string_equal(v.user_info->log_user_id, "loguserid1"); /* lower-cased */
    assert_string_equal(imp.user_info->log_user_id, "batchluid"); /* batch luid, lower-cased */
    assert_null(imp.user_info->user_id);                         /* user_id only for User */
    assert_string_equal(u.user_info->user_id, "user-1");
    assert_null(imp.timing); /* B has no timing: nothing created */
    pb_arena_reset(arena, 0);
}

static void test_push_down_without_batch_user_info_lowercases_child(void **s)
{
    Common__UserInfo aui = COMMON__USER_INFO__INIT;
    aui.log_user_id = "ABC";
    Common__Device dev = COMMON__DEVICE__INIT;
    Event__Action a = EVENT__ACTION__INIT, *acts[] = {&a};
    a.user_info = &aui;
    Event__LogRequest lr = EVENT__LOG_REQUEST__INIT;
    lr.device = &dev;
    lr.n_action = 1;
    lr.action = acts;
    assert_int_equal(split_push_down(&lr, pb_arena_allocator(arena)), 0);
    assert_string_equal(a.user_info->log_user_id, "abc");
    /* the device stub quirk: B has a device, so the action gets an empty one */
    assert_non_null(a.device);
    pb_arena_reset(arena, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lowercase_matches_java_to_lower_case_root),
        cmocka_unit_test(test_push_down_fills_delivery_log_request),
        cmocka_unit_test(test_push_down_keeps_child_values_and_lowercases),
        cmocka_unit_test(test_push_down_without_batch_user_info_lowercases_child),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
