/* The generator's scheduler and time model (spec/fake-data.md §3): each step's children are
 * scheduled at now() + that step's delay, now() being the send time of the record that
 * preceded the step; record timings carry the event-API time; --startEventApiTimestamp,
 * --delayMultiplier and --uniformRandomDelay; send times never go backwards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "generator/gen_options.h"
#include "generator/log_generator.h"

#define T0 1601596151000LL

typedef enum {
    K_USER,
    K_COHORT,
    K_SESSION,
    K_VIEW,
    K_AUTO_VIEW,
    K_DL,
    K_IMP,
    K_DIAG,
    K_NAV,
    K_CHECKOUT,
    K_PURCHASE,
    K_OTHER,
    K_KINDS
} kind;

typedef struct rec {
    int64_t ts, ea;       /* send time, wrapper event_api_timestamp */
    int64_t inner_ea;     /* the child record's event_api_timestamp */
    int64_t request_ts;   /* DeliveryLog: Request.timing.client_log_timestamp */
    int64_t insertion_ts; /* DeliveryLog: first response insertion's timing */
    kind k;
    char user[48];
} rec;

typedef struct recs {
    rec *v;
    size_t n, cap;
} recs;

static kind kind_of(const Event__LogRequest *lr, int64_t *inner)
{
    const Common__Timing *t = NULL;
    kind k = K_OTHER;
    if (lr->n_user)
        k = K_USER, t = lr->user[0]->timing;
    else if (lr->n_cohort_membership)
        k = K_COHORT, t = lr->cohort_membership[0]->timing;
    else if (lr->base.n_unknown_fields)
        k = K_SESSION, t = lr->timing;
    else if (lr->n_view)
        k = K_VIEW, t = lr->view[0]->timing;
    else if (lr->n_auto_view)
        k = K_AUTO_VIEW, t = lr->auto_view[0]->timing;
    else if (lr->n_delivery_log)
        k = K_DL, t = lr->timing;
    else if (lr->n_impression)
        k = K_IMP, t = lr->impression[0]->timing;
    else if (lr->n_diagnostics)
        k = K_DIAG, t = lr->diagnostics[0]->timing;
    else if (lr->n_action) {
        t = lr->action[0]->timing;
        switch (lr->action[0]->action_type) {
        case EVENT__ACTION_TYPE__NAVIGATE:
        case EVENT__ACTION_TYPE__ADD_TO_CART:
            k = K_NAV;
            break;
        case EVENT__ACTION_TYPE__CHECKOUT:
            k = K_CHECKOUT;
            break;
        case EVENT__ACTION_TYPE__PURCHASE:
            k = K_PURCHASE;
            break;
        default:
            break;
        }
    }
    *inner = t ? (int64_t)t->event_api_timestamp : -1;
    return k;
}

static void collect(const char *profile, const char *const *ov, recs *out)
{
    memset(out, 0, sizeof *out);
    char err[512];
    gen_options o = {0};
    if (gen_options_init(&o, profile, ov, err, sizeof err)) fail_msg("%s", err);
    gen_logs *g;
    if (gen_logs_new(&o, &g, err, sizeof err)) fail_msg("%s", err);
    gen_options_free(&o);
    int64_t ts;
    Event__LogRequest *lr;
    while (gen_logs_next(g, &ts, &lr, err, sizeof err) == 1) {
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 1024;
            out->v = realloc(out->v, out->cap * sizeof *out->v);
        }
        rec *r = &out->v[out->n++];
        memset(r, 0, sizeof *r);
        r->ts = ts;
        r->ea = (int64_t)lr->timing->event_api_timestamp;
        assert_int_equal(lr->timing->client_log_timestamp, lr->timing->event_api_timestamp);
        r->k = kind_of(lr, &r->inner_ea);
        if (r->k == K_DL) {
            const Delivery__DeliveryLog *dl = lr->delivery_log[0];
            r->request_ts = (int64_t)dl->request->timing->event_api_timestamp;
            r->insertion_ts = dl->response->n_insertion
                                  ? (int64_t)dl->response->insertion[0]->timing->event_api_timestamp
                                  : -1;
        }
        snprintf(r->user, sizeof r->user, "%s",
                 lr->user_info->log_user_id ? lr->user_info->log_user_id : "");
    }
    gen_logs_free(g);
}

/* Send times of kind k for user u, sorted (they are emitted in time order already). */
static size_t times(const recs *rs, const char *u, kind k, int64_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->n; i++)
        if (rs->v[i].k == k && !strcmp(rs->v[i].user, u) && n < cap) out[n++] = rs->v[i].ts;
    return n;
}

/* Every send time of kind k for user u is base + step * i for some i in [0, count). */
static void assert_on_grid(const recs *rs, const char *u, kind k, int64_t base, int64_t step,
                           int64_t count)
{
    int64_t t[256];
    size_t n = times(rs, u, k, t, 256);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        int64_t d = t[i] - base;
        if (d < 0 || d % step || d / step >= count)
            fail_msg("kind %d at T%+lld ms is off the grid T%+lld + %lld*i", k,
                     (long long)(t[i] - T0), (long long)(base - T0), (long long)step);
    }
}

static void test_local_timeline(void **s)
{
    (void)s;
    recs rs;
    collect("local", NULL, &rs);
    const char *u = rs.v[0].user;
    int64_t t[256];

    /* send times never go backwards */
    for (size_t i = 1; i < rs.n; i++)
        assert_true(rs.v[i].ts >= rs.v[i - 1].ts);

    /* the per-user timeline of spec §3: exactly one per grid point for the ones that always
     * happen, a subset of the grid for checkouts and purchases */
    assert_int_equal(times(&rs, u, K_USER, t, 256), 1);
    assert_true(t[0] == T0);
    assert_int_equal(times(&rs, u, K_COHORT, t, 256), 1);
    assert_true(t[0] == T0 + 1000);
    assert_int_equal(times(&rs, u, K_SESSION, t, 256), 1);
    assert_true(t[0] == T0 + 1000);
    assert_int_equal(times(&rs, u, K_VIEW, t, 256), 10);
    for (int i = 0; i < 10; i++)
        assert_true(t[i] == T0 + 1000 + 1000 * i);
    assert_int_equal(times(&rs, u, K_AUTO_VIEW, t, 256), 100);
    for (int i = 0; i < 100; i++)
        assert_true(t[i] == T0 + 1000 + 1000 * i);
    size_t ndl = times(&rs, u, K_DL, t, 256);
    assert_true(ndl >= 10); /* plus shadows at the same instants */
    assert_on_grid(&rs, u, K_DL, T0 + 1500, 1000, 10);
    assert_int_equal(times(&rs, u, K_IMP, t, 256), 10);
    for (int i = 0; i < 10; i++)
        assert_true(t[i] == T0 + 3500 + 1000 * i);
    assert_int_equal(times(&rs, u, K_DIAG, t, 256), 10);
    for (int i = 0; i < 10; i++)
        assert_true(t[i] == T0 + 6000 + 1000 * i);
    assert_int_equal(times(&rs, u, K_NAV, t, 256), 10); /* 7 impressions x 0.2: 1 or 2 each */
    for (int i = 0; i < 10; i++)
        assert_true(t[i] == T0 + 8500 + 1000 * i);
    assert_on_grid(&rs, u, K_CHECKOUT, T0 + 13500, 1000, 10);
    if (times(&rs, u, K_PURCHASE, t, 256)) assert_on_grid(&rs, u, K_PURCHASE, T0 + 18500, 1000, 10);

    /* event-API times: the send time of the record's parent step */
    for (size_t i = 0; i < rs.n; i++) {
        const rec *r = &rs.v[i];
        int64_t lag = 0;
        switch (r->k) {
        case K_COHORT:
            lag = 1000;
            break; /* written at T, sent at T + 1 s */
        case K_SESSION:
            lag = 1000;
            break;
        case K_DL:
            lag = 500;
            break;
        case K_IMP:
            lag = 2000;
            break;
        case K_DIAG:
        case K_NAV:
        case K_CHECKOUT:
        case K_PURCHASE:
            lag = 5000;
            break;
        default:
            lag = 0;
        }
        assert_true(r->ea == r->ts - lag);
        assert_true(r->inner_ea == r->ea);
        if (r->k == K_DL) {
            assert_true(r->request_ts == r->ea);
            assert_true(r->insertion_ts == r->ea);
        }
    }
    /* all users run in lock-step */
    for (size_t i = 0; i < rs.n; i++)
        if (rs.v[i].k == K_VIEW) assert_true((rs.v[i].ts - T0 - 1000) % 1000 == 0);
    free(rs.v);
}

/* event_api_timestamp = start + simulated time since --startTime; the Request keeps the clock */
static void test_start_event_api_timestamp(void **s)
{
    (void)s;
    const int64_t X = 1700000000000LL;
    const char *ov[] = {"--startEventApiTimestamp=1700000000000", "--users=2", NULL};
    recs rs;
    collect("local", ov, &rs);
    for (size_t i = 0; i < rs.n; i++) {
        const rec *r = &rs.v[i];
        int64_t lag = r->k == K_DL                            ? 500
                      : r->k == K_IMP                         ? 2000
                      : r->k >= K_DIAG && r->k <= K_PURCHASE  ? 5000
                      : r->k == K_COHORT || r->k == K_SESSION ? 1000
                                                              : 0;
        assert_true(r->ea == X + (r->ts - lag - T0));
        if (r->k == K_DL) assert_true(r->request_ts == r->ts - 500); /* not shifted */
    }
    free(rs.v);
}

static void test_delay_multiplier(void **s)
{
    (void)s;
    const char *ov[] = {"--delayMultiplier=2", "--users=1", NULL};
    recs rs;
    collect("local", ov, &rs);
    const char *u = rs.v[0].user;
    int64_t t[256];
    assert_int_equal(times(&rs, u, K_VIEW, t, 256), 10);
    for (int i = 0; i < 10; i++)
        assert_true(t[i] == T0 + 2000 + 2000 * i);
    assert_int_equal(times(&rs, u, K_IMP, t, 256), 10);
    for (int i = 0; i < 10; i++)
        assert_true(t[i] == T0 + 2000 + 2000 * i + 1000 + 4000);
    free(rs.v);

    /* the product is float32 then truncated: 0.3 x 1000 ms = 300 */
    const char *ov2[] = {"--delayMultiplier=0.3", "--users=1", NULL};
    collect("local", ov2, &rs);
    u = rs.v[0].user;
    assert_int_equal(times(&rs, u, K_VIEW, t, 256), 10);
    for (int i = 0; i < 10; i++)
        assert_true(t[i] == T0 + 300 + 300 * i);
    free(rs.v);
}

static void test_uniform_random_delay(void **s)
{
    (void)s;
    const char *a[] = {"--uniformRandomDelay", "--users=2", "--seed=5", NULL};
    const char *b[] = {"--uniformRandomDelay", "--users=2", "--seed=6", NULL};
    recs r1, r2, r3;
    collect("local", a, &r1);
    collect("local", a, &r2);
    collect("local", b, &r3);
    assert_int_equal(r1.n, r2.n);
    int differs = 0, view_split = 0;
    for (size_t i = 0; i < r1.n; i++) {
        assert_true(r1.v[i].ts == r2.v[i].ts && r1.v[i].ea == r2.v[i].ea);
        if (i > 0) assert_true(r1.v[i].ts >= r1.v[i - 1].ts);
        /* each delay shrinks: a view is never later than without the draws */
        if (r1.v[i].k == K_VIEW) {
            assert_true(r1.v[i].ts <= T0 + 1000 + 9 * 1000);
            /* the send time and the event-API time are separate draws */
            if (r1.v[i].ea != r1.v[i].ts) view_split = 1;
        }
    }
    for (size_t i = 0; i < r1.n && i < r3.n; i++)
        if (r1.v[i].ts != r3.v[i].ts) differs = 1;
    assert_true(view_split);
    assert_true(differs);
    free(r1.v);
    free(r2.v);
    free(r3.v);
}

/* The presets' fixed clock: now() stays at the start, only the order follows the delays;
 * a view's time is the start plus its own index delay. */
static void test_fixed_clock(void **s)
{
    (void)s;
    const char *ov[] = {"--users=2",
                        "--sessionsPerUser=1",
                        "--viewsPerSession=3",
                        "--autoViewsPerSession=1",
                        "--requestsPerViews=1",
                        "--responseInsertionsPerRequest=2",
                        NULL};
    recs rs;
    collect("factory", ov, &rs);
    for (size_t i = 0; i < rs.n; i++) {
        const rec *r = &rs.v[i];
        if (r->k == K_VIEW) {
            assert_true((r->ea - T0) % 1000 == 0 && r->ea <= T0 + 2000);
        } else {
            assert_true(r->ea == T0);
        }
        if (i) assert_true(r->ts >= rs.v[i - 1].ts);
    }
    free(rs.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_timeline),   cmocka_unit_test(test_start_event_api_timestamp),
        cmocka_unit_test(test_delay_multiplier), cmocka_unit_test(test_uniform_random_delay),
        cmocka_unit_test(test_fixed_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
