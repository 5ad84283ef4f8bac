/* Record contents of the fake log generator (spec/fake-data.md §4): the FULL decorators, the
 * session location formula, cohort arms, cart quantities and prices, the fake feature of API
 * execution insertions, and empty log user ids. Expected values are computed here from the
 * spec's formulas on the emitted ids. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "formats/pb_private.h"
#include "generator/gen_options.h"
#include "generator/java_random.h"
#include "generator/log_generator.h"

typedef void (*visit_fn)(const Event__LogRequest *lr, void *ctx);

static void each(const char *profile, const char *const *ov, visit_fn fn, void *ctx)
{
    char err[512];
    gen_options o = {0};
    if (gen_options_init(&o, profile, ov, err, sizeof err)) fail_msg("%s", err);
    gen_logs *g;
    if (gen_logs_new(&o, &g, err, sizeof err)) fail_msg("%s", err);
    gen_options_free(&o);
    int64_t ts;
    const uint8_t *key, *value;
    size_t kl, vl;
    /* through the bytes, so the private fields are checked as a reader decodes them */
    while (gen_logs_next_packed(g, &ts, &key, &kl, &value, &vl, err, sizeof err) == 1) {
        Event__LogRequest *lr = event__log_request__unpack(NULL, vl, value);
        assert_non_null(lr);
        const char *luid = lr->user_info->log_user_id ? lr->user_info->log_user_id : "";
        assert_int_equal(kl, 8 + strlen(luid));
        fn(lr, ctx);
        event__log_request__free_unpacked(lr, NULL);
    }
    gen_logs_free(g);
}

static int32_t hash(const char *s)
{
    return jrandom_string_hash(s, strlen(s));
}

static double java_round3(double x)
{
    double y = 1000.0 * x, f = floor(y);
    if (y - f >= 0.5) f += 1;
    return f / 1000.0;
}

typedef struct seen {
    int views, auto_views, sessions, api_dls, sdk_dls, carts, cohorts, requests;
    int empty_users, users;
} seen;

static void check_full(const Event__LogRequest *lr, void *ctx)
{
    seen *s = ctx;
    for (size_t i = 0; i < lr->n_view; i++) {
        const Event__View *v = lr->view[i];
        assert_string_equal(v->name, "Search");
        assert_int_equal(v->use_case, DELIVERY__USE_CASE__SEARCH);
        assert_string_equal(v->search_query, "shoes");
        assert_int_equal(v->view_type, EVENT__VIEW__VIEW_TYPE__WEB_PAGE);
        assert_int_equal(v->device->device_type, COMMON__DEVICE_TYPE__MOBILE);
        assert_string_equal(v->device->brand, "Pixel");
        assert_string_equal(v->device->identifier, "long_model_name");
        assert_int_equal(v->ui_type_case, EVENT__VIEW__UI_TYPE_WEB_PAGE_VIEW);
        assert_string_equal(v->web_page_view->url, "https://www.mymarket.com/search?q=shoes");
        assert_string_equal(v->web_page_view->referrer, "https://www.google.com/search?q=shoes");
        const Common__Browser *b = v->web_page_view->browser;
        assert_non_null(strstr(b->user_agent, "Android 7.0; SM-G930V"));
        assert_false(b->client_hints->has_is_mobile); /* false is not written */
        assert_int_equal(b->client_hints->n_brand, 3);
        assert_string_equal(b->client_hints->brand[2]->brand, ";Not A Brand");
        assert_string_equal(b->client_hints->brand[2]->version, "99");
        s->views++;
    }
    for (size_t i = 0; i < lr->n_auto_view; i++) {
        const Event__AutoView *a = lr->auto_view[i];
        assert_string_equal(a->name, "Search");
        assert_string_equal(a->web_page_view->url, "https://www.mymarket.com/search?shoes");
        assert_non_null(a->web_page_view->browser->client_hints);
        s->auto_views++;
    }
    Logproc__Priv__SessionProfile **sps;
    Logproc__Priv__Session **ses;
    size_t nsp, nse;
    assert_int_equal(pb_private_get_session_profiles(lr, NULL, &sps, &nsp), 0);
    assert_int_equal(pb_private_get_sessions(lr, NULL, &ses, &nse), 0);
    assert_int_equal(nsp, nse);
    for (size_t i = 0; i < nsp; i++) {
        int32_t h = hash(sps[i]->session_id);
        double q5 = (double)(int32_t)(5u * (uint32_t)h) / 2147483647.0;
        double q7 = (double)(int32_t)(7u * (uint32_t)h) / 2147483647.0;
        assert_true(sps[i]->location->latitude == java_round3(-90 + 180 * q5));
        assert_true(sps[i]->location->longitude == java_round3(-180 + 360 * q7));
        assert_string_equal(ses[i]->session_id, sps[i]->session_id);
        assert_true(ses[i]->start_epoch_millis == 1601581751000ULL);
        assert_true(ses[i]->exclusive_end_epoch_millis == 1601524151000ULL);
        assert_null(ses[i]->user_info->user_id);
        assert_string_equal(ses[i]->user_info->log_user_id, lr->user_info->log_user_id);
        s->sessions++;
    }
    pb_private_free_list((ProtobufCMessage **)sps, nsp, NULL);
    pb_private_free_list((ProtobufCMessage **)ses, nse, NULL);

    for (size_t i = 0; i < lr->n_cohort_membership; i++) {
        int32_t h = hash(lr->user_info->user_id);
        assert_int_equal(lr->cohort_membership[i]->arm,
                         h % 2 == 0 ? EVENT__COHORT_ARM__TREATMENT : EVENT__COHORT_ARM__CONTROL);
        s->cohorts++;
    }
    for (size_t i = 0; i < lr->n_delivery_log; i++) {
        const Delivery__DeliveryLog *dl = lr->delivery_log[i];
        const Delivery__Request *rq = dl->request;
        assert_int_equal(rq->use_case, DELIVERY__USE_CASE__SEARCH);
        assert_string_equal(rq->search_query, "prom dresses");
        assert_non_null(strstr(rq->device->browser->user_agent, "Macintosh"));
        const Google__Protobuf__Struct *p = rq->properties->struct_;
        assert_int_equal(p->n_fields, 3);
        assert_string_equal(p->fields[0]->key, "maxPriceFilter");
        assert_true(p->fields[0]->value->number_value == 100);
        assert_true(p->fields[1]->value->number_value == 8);
        assert_string_equal(p->fields[2]->value->list_value->values[0]->string_value, "High tops");
        assert_false(dl->has_platform_id); /* the pipeline pushes it down */
        s->requests++;

        Delivery__Insertion **ex;
        size_t nex;
        assert_int_equal(pb_private_get_execution_insertions(dl->execution, NULL, &ex, &nex), 0);
        if (dl->execution->execution_server == DELIVERY__EXECUTION_SERVER__SDK) {
            assert_int_equal(nex, 0);
            s->sdk_dls++;
        } else if (rq->client_info->traffic_type == COMMON__CLIENT_INFO__TRAFFIC_TYPE__PRODUCTION) {
            /* the response insertions, each with numeric[100] = 0.1f * (N mod 11) */
            assert_int_equal(nex, dl->response->n_insertion);
            for (size_t k = 0; k < nex; k++) {
                assert_string_equal(ex[k]->insertion_id, dl->response->insertion[k]->insertion_id);
                assert_true(ex[k]->has_position && ex[k]->position == k);
                Logproc__Priv__FeatureStage *fs;
                assert_int_equal(pb_private_get_feature_stage(ex[k], NULL, &fs), 0);
                assert_non_null(fs);
                const char *cid = ex[k]->content_id;
                long num = strtol(strrchr(cid, '-') + 1, NULL, 10);
                volatile float want = 0.1f * (float)(num % 11);
                assert_int_equal(fs->features->n_numeric, 1);
                assert_true(fs->features->numeric[0]->key == 100);
                assert_true(fs->features->numeric[0]->value == want);
                protobuf_c_message_free_unpacked(&fs->base, NULL);
            }
            s->api_dls++;
        }
        pb_private_free_list((ProtobufCMessage **)ex, nex, NULL);
    }
    for (size_t i = 0; i < lr->n_action; i++) {
        const Event__Action *a = lr->action[i];
        if (!a->cart) continue;
        assert_true(a->action_type == EVENT__ACTION_TYPE__CHECKOUT ||
                    a->action_type == EVENT__ACTION_TYPE__PURCHASE);
        for (size_t c = 0; c < a->cart->n_contents; c++) {
            const Event__CartContent *cc = a->cart->contents[c];
            int32_t h = jrandom_salted_hash(cc->content_id, strlen(cc->content_id), "");
            assert_int_equal(cc->quantity, 1 + jrandom_mod_abs(h, 4));
            assert_int_equal(cc->price_per_unit->currency_code, COMMON__CURRENCY_CODE__USD);
            assert_int_equal(cc->price_per_unit->amount_micros,
                             1000000LL * (1 + jrandom_mod_abs(h, 5)));
        }
        s->carts++;
    }
}

static void test_full_decorators(void **st)
{
    (void)st;
    const char *ov[] = {"--users=4",
                        "--viewsPerSession=5",
                        "--autoViewsPerSession=3",
                        "--miniSdkRate=0.5",
                        "--shadowTrafficRate=0.5",
                        "--impressionNavigateRate=1",
                        "--navigateAddToCartRate=1",
                        "--navigateCheckoutRate=0.5",
                        NULL};
    seen s = {0};
    each("cli", ov, check_full, &s);
    assert_int_equal(s.views, 20);
    assert_int_equal(s.auto_views, 12);
    assert_int_equal(s.sessions, 4);
    assert_int_equal(s.cohorts, 4);
    assert_true(s.api_dls > 0 && s.sdk_dls > 0);
    assert_true(s.carts > 0);
}

static void check_partial(const Event__LogRequest *lr, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < lr->n_view; i++) {
        assert_string_equal(lr->view[i]->name, "All ITEM");
        assert_null(lr->view[i]->device);
        assert_int_equal(lr->view[i]->ui_type_case, EVENT__VIEW__UI_TYPE__NOT_SET);
    }
    for (size_t i = 0; i < lr->n_delivery_log; i++) {
        assert_null(lr->delivery_log[i]->request->properties);
        assert_null(lr->delivery_log[i]->request->device);
    }
    Logproc__Priv__SessionProfile **sps;
    size_t nsp;
    assert_int_equal(pb_private_get_session_profiles(lr, NULL, &sps, &nsp), 0);
    for (size_t i = 0; i < nsp; i++)
        assert_null(sps[i]->location);
    pb_private_free_list((ProtobufCMessage **)sps, nsp, NULL);
}

static void test_partial_detail(void **st)
{
    (void)st;
    const char *ov[] = {"--users=2", "--viewsPerSession=3", "--detail=PARTIAL", NULL};
    each("cli", ov, check_partial, NULL);
}

static void check_empty_ids(const Event__LogRequest *lr, void *ctx)
{
    seen *s = ctx;
    if (!lr->n_user) return;
    const char *uid = lr->user_info->user_id;
    int empty = jrandom_roll(0.5f, uid, strlen(uid), "setLogUserUuidSupplier");
    assert_int_equal(lr->user_info->log_user_id == NULL, empty);
    s->empty_users += empty;
    s->users++;
}

/* --emptyLogUserIdRate: the users whose user_id rolls true have no log_user_id. */
static void test_empty_log_user_ids(void **st)
{
    (void)st;
    const char *ov[] = {"--users=40", "--viewsPerSession=1", "--autoViewsPerSession=1",
                        "--emptyLogUserIdRate=0.5", NULL};
    seen s = {0};
    each("cli", ov, check_empty_ids, &s);
    assert_int_equal(s.users, 40);
    assert_true(s.empty_users > 0 && s.empty_users < 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_decorators),
        cmocka_unit_test(test_partial_detail),
        cmocka_unit_test(test_empty_log_user_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
