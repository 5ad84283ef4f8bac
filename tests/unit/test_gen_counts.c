/* Record counts of the fake log generator against spec/fake-data.md.
 *
 * For each option set, the test walks the generated LogRequests, counts every record type, and
 * compares with the counts the spec's rules give for those options (§3, §4, §6, §7): shape
 * products (U·S·V views, views·R DeliveryLogs, ...), and per-request and per-batch draws
 * (impressions = count(impressedRate, n, request_id), navigates = count(navigateRate, m,
 * first impression id), ...) evaluated here, with the Java-compatible roll/count, on the ids
 * the generator emitted. It also checks the spec's own numbers (§1.D, §7). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "delivery/execution.pb-c.h"
#include "event/event.pb-c.h"
#include "formats/pb_private.h"
#include "generator/gen_options.h"
#include "generator/java_random.h"
#include "generator/log_generator.h"

/* ---- what a run produced ------------------------------------------------------ */

typedef struct dl_obs {
    char *request_id;
    char *client_request_id;
    int shadow, sdk;
    size_t n_resp, n_req_full, n_matrix_rows, n_exec;
    char *headers; /* insertion_matrix_headers joined by ',' */
    int matrix_ok; /* every matrix row holds its response insertion's content in header order */
    int has_view_id;
} dl_obs;

typedef struct batch_obs {
    size_t n;
    char *first_impression_id;
    char *request_id; /* via insertion_id -> response insertion; NULL when inferred */
    char **impression_ids;
    int has_insertion_ids;
} batch_obs;

typedef struct actions_obs {
    size_t nav, atc, co, pu;
    char *first_impression_id; /* impression_id of its first action, if any */
    int any_impression_id;
    int carts_ok; /* checkout/purchase carry a cart exactly when add-to-carts happened */
} actions_obs;

typedef struct run_obs {
    size_t log_requests;
    size_t users, cohorts, sessions, session_profiles, views, auto_views, diagnostics;
    size_t delivery_logs, sdk, api, shadow, resp_ins, req_ins_full, matrix_rows, exec_ins;
    size_t impressions, impression_lrs, navigates, add_to_carts, checkouts, purchases;
    size_t action_lrs, empty_lrs;
    dl_obs *dls;
    size_t n_dls;
    batch_obs *batches;
    size_t n_batches;
    actions_obs *acts;
    size_t n_acts;
    char **view_ids;
    size_t n_view_ids;
    char **auto_view_ids;
    size_t n_auto_view_ids;
    /* insertion_id -> request_id, from the primary DeliveryLogs */
    struct ins_pair {
        char *ins, *req;
    } * ins;
    size_t n_ins;
    gen_counts internal;
} run_obs;

/* Appends one element; capacity doubles at each power of two, so none is stored. */
#define GROW(arr, n)                                                                               \
    ((((n) & ((n)-1)) == 0 ? (void)((arr) = realloc((arr), ((n) ? 2 * (n) : 1) * sizeof *(arr)))   \
                           : (void)0),                                                             \
     &(arr)[(n)++])

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static const char *request_of_insertion(const run_obs *o, const char *ins)
{
    for (size_t i = o->n_ins; i-- > 0;)
        if (!strcmp(o->ins[i].ins, ins)) return o->ins[i].req;
    return NULL;
}

static void observe_dl(run_obs *o, const Delivery__DeliveryLog *dl)
{
    dl_obs *d = GROW(o->dls, o->n_dls);
    memset(d, 0, sizeof *d);
    const Delivery__Request *rq = dl->request;
    assert_non_null(rq);
    d->request_id = strdup(rq->request_id);
    d->client_request_id = dup_or_null(rq->client_request_id);
    d->has_view_id = rq->view_id != NULL;
    d->shadow = rq->client_info &&
                rq->client_info->traffic_type == COMMON__CLIENT_INFO__TRAFFIC_TYPE__SHADOW;
    d->sdk = dl->execution->execution_server == DELIVERY__EXECUTION_SERVER__SDK;
    d->n_resp = dl->response ? dl->response->n_insertion : 0;
    d->n_req_full = rq->n_insertion;
    d->n_exec = dl->execution->base.n_unknown_fields;
    size_t hl = 1;
    for (size_t h = 0; h < rq->n_insertion_matrix_headers; h++)
        hl += strlen(rq->insertion_matrix_headers[h]) + 1;
    d->headers = calloc(1, hl);
    for (size_t h = 0; h < rq->n_insertion_matrix_headers; h++) {
        if (h) strcat(d->headers, ",");
        strcat(d->headers, rq->insertion_matrix_headers[h]);
    }
    d->matrix_ok = 1;
    if (rq->insertion_matrix) {
        d->n_matrix_rows = rq->insertion_matrix->n_values;
        for (size_t r = 0; r < d->n_matrix_rows && r < d->n_resp; r++) {
            const Google__Protobuf__Value *row = rq->insertion_matrix->values[r];
            if (row->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE ||
                row->list_value->n_values != rq->n_insertion_matrix_headers) {
                d->matrix_ok = 0;
                continue;
            }
            for (size_t h = 0; h < rq->n_insertion_matrix_headers; h++) {
                const Google__Protobuf__Value *cell = row->list_value->values[h];
                if (!strcmp(rq->insertion_matrix_headers[h], "contentId") &&
                    (cell->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE ||
                     strcmp(cell->string_value, dl->response->insertion[r]->content_id)))
                    d->matrix_ok = 0;
            }
        }
    }
    o->delivery_logs++;
    if (d->shadow)
        o->shadow++;
    else if (d->sdk)
        o->sdk++;
    else
        o->api++;
    o->resp_ins += d->n_resp;
    o->req_ins_full += d->n_req_full;
    o->matrix_rows += d->n_matrix_rows;
    o->exec_ins += d->n_exec;
    if (!d->shadow)
        for (size_t k = 0; k < d->n_resp; k++) {
            struct ins_pair *p = GROW(o->ins, o->n_ins);
            p->ins = strdup(dl->response->insertion[k]->insertion_id);
            p->req = strdup(dl->response->insertion[k]->request_id);
        }
}

static void observe(run_obs *o, const Event__LogRequest *lr)
{
    o->log_requests++;
    o->users += lr->n_user;
    o->cohorts += lr->n_cohort_membership;
    o->diagnostics += lr->n_diagnostics;
    for (size_t i = 0; i < lr->base.n_unknown_fields; i++) {
        if (lr->base.unknown_fields[i].tag == PB_PRIVATE_LOG_REQUEST_SESSION) o->sessions++;
        if (lr->base.unknown_fields[i].tag == PB_PRIVATE_LOG_REQUEST_SESSION_PROFILE)
            o->session_profiles++;
    }
    for (size_t i = 0; i < lr->n_view; i++)
        *GROW(o->view_ids, o->n_view_ids) = strdup(lr->view[i]->view_id);
    o->views += lr->n_view;
    for (size_t i = 0; i < lr->n_auto_view; i++)
        *GROW(o->auto_view_ids, o->n_auto_view_ids) = strdup(lr->auto_view[i]->auto_view_id);
    o->auto_views += lr->n_auto_view;
    for (size_t i = 0; i < lr->n_delivery_log; i++)
        observe_dl(o, lr->delivery_log[i]);
    if (lr->n_impression) {
        batch_obs *b = GROW(o->batches, o->n_batches);
        memset(b, 0, sizeof *b);
        b->n = lr->n_impression;
        b->first_impression_id = strdup(lr->impression[0]->impression_id);
        b->impression_ids = calloc(b->n, sizeof *b->impression_ids);
        for (size_t i = 0; i < b->n; i++)
            b->impression_ids[i] = strdup(lr->impression[i]->impression_id);
        b->has_insertion_ids = lr->impression[0]->insertion_id != NULL;
        if (b->has_insertion_ids) {
            const char *r = request_of_insertion(o, lr->impression[0]->insertion_id);
            b->request_id = dup_or_null(r);
        }
        o->impressions += b->n;
        o->impression_lrs++;
    }
    if (lr->n_action) {
        actions_obs *a = GROW(o->acts, o->n_acts);
        memset(a, 0, sizeof *a);
        a->carts_ok = 1;
        for (size_t i = 0; i < lr->n_action; i++) {
            const Event__Action *ac = lr->action[i];
            switch (ac->action_type) {
            case EVENT__ACTION_TYPE__NAVIGATE:
                a->nav++;
                break;
            case EVENT__ACTION_TYPE__ADD_TO_CART:
                a->atc++;
                if (ac->impression_id || ac->cart) a->carts_ok = 0; /* never either */
                break;
            case EVENT__ACTION_TYPE__CHECKOUT:
                a->co++;
                break;
            case EVENT__ACTION_TYPE__PURCHASE:
                a->pu++;
                break;
            default:
                fail_msg("unexpected action type %d", ac->action_type);
            }
            if (ac->impression_id) a->any_impression_id = 1;
            if (i == 0) a->first_impression_id = dup_or_null(ac->impression_id);
        }
        o->navigates += a->nav;
        o->add_to_carts += a->atc;
        o->checkouts += a->co;
        o->purchases += a->pu;
        o->action_lrs++;
    }
    if (!lr->n_user && !lr->n_cohort_membership && !lr->n_view && !lr->n_auto_view &&
        !lr->n_delivery_log && !lr->n_diagnostics && !lr->n_impression && !lr->n_action &&
        !lr->base.n_unknown_fields)
        o->empty_lrs++;
}

static void run(const char *profile, const char *const *overrides, run_obs *o)
{
    memset(o, 0, sizeof *o);
    char err[512];
    gen_options opts = {0};
    if (gen_options_init(&opts, profile, overrides, err, sizeof err)) fail_msg("%s", err);
    gen_logs *g;
    if (gen_logs_new(&opts, &g, err, sizeof err)) fail_msg("%s", err);
    gen_options_free(&opts);
    int64_t ts;
    Event__LogRequest *lr;
    int rc;
    while ((rc = gen_logs_next(g, &ts, &lr, err, sizeof err)) == 1)
        observe(o, lr);
    if (rc < 0) fail_msg("%s", err);
    gen_logs_counts(g, &o->internal);
    gen_logs_free(g);
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void release(run_obs *o)
{
    for (size_t i = 0; i < o->n_dls; i++) {
        free(o->dls[i].request_id);
        free(o->dls[i].client_request_id);
        free(o->dls[i].headers);
    }
    free(o->dls);
    for (size_t i = 0; i < o->n_batches; i++) {
        free(o->batches[i].first_impression_id);
        free(o->batches[i].request_id);
        free_strs(o->batches[i].impression_ids, o->batches[i].n);
    }
    free(o->batches);
    for (size_t i = 0; i < o->n_acts; i++)
        free(o->acts[i].first_impression_id);
    free(o->acts);
    free_strs(o->view_ids, o->n_view_ids);
    free_strs(o->auto_view_ids, o->n_auto_view_ids);
    for (size_t i = 0; i < o->n_ins; i++) {
        free(o->ins[i].ins);
        free(o->ins[i].req);
    }
    free(o->ins);
}

/* ---- the spec's rules (§6), on ids ---------------------------------------------- */

static int roll(double rate, const char *id, const char *salt)
{
    return jrandom_roll((float)rate, id, strlen(id), salt);
}

static int64_t count(double rate, int64_t n, const char *id, const char *salt)
{
    return jrandom_count((float)rate, n, id, strlen(id), salt);
}

/* The numbers an option set should produce, from its parameters. */
typedef struct shape {
    int64_t users, sessions, views, auto_views, requests, insertions;
    double impressed, navigate, add_to_cart, checkout, purchase, mini_sdk, shadow, redundant;
    int64_t max_redundant;
    int64_t catalogue_of_type; /* entries of the first page's content type */
    int write_users;
} shape;

/* Checks everything that follows from the options and the emitted ids, for a single-level
 * run without missing records. */
static void check_single_level(const shape *s, const run_obs *o)
{
    int64_t sessions = s->users * s->sessions;
    int64_t views = sessions * s->views;
    int64_t primary = views * s->requests;
    int64_t per_request =
        s->insertions < s->catalogue_of_type ? s->insertions : s->catalogue_of_type;

    assert_int_equal(o->users, s->write_users ? s->users : 0);
    assert_int_equal(o->cohorts, s->users);
    assert_int_equal(o->sessions, sessions);
    assert_int_equal(o->session_profiles, sessions);
    assert_int_equal(o->views, views);
    assert_int_equal(o->auto_views, sessions * s->auto_views);
    assert_int_equal(o->diagnostics, views);

    /* every primary DeliveryLog: its kind is the roll on its request id; shadows follow it */
    int64_t want_shadow = 0, want_imps = 0, want_imp_lrs = 0;
    size_t n_primary = 0;
    for (size_t i = 0; i < o->n_dls; i++) {
        const dl_obs *d = &o->dls[i];
        assert_int_equal(d->n_resp, per_request);
        if (d->shadow) continue;
        n_primary++;
        int sdk = roll(s->mini_sdk, d->request_id, "addDeliveryLogsToHeap");
        assert_int_equal(d->sdk, sdk);
        assert_int_equal(d->n_exec, sdk ? 0 : d->n_resp);
        if (sdk && roll(s->shadow, d->request_id, "addDeliveryLogsToHeap2")) want_shadow++;
        int64_t m = count(s->impressed, (int64_t)d->n_resp, d->request_id, "addImpressionsToHeap2");
        int64_t copies =
            roll(s->redundant, d->request_id, "addImpressionsToHeap1") ? s->max_redundant : 1;
        want_imps += m * copies;
        if (m > 0) want_imp_lrs += copies;
    }
    assert_int_equal(n_primary, primary);
    assert_int_equal(o->shadow, want_shadow);
    assert_int_equal(o->delivery_logs, primary + want_shadow);
    assert_int_equal(o->resp_ins, (primary + want_shadow) * per_request);
    assert_int_equal(o->impressions, want_imps);
    assert_int_equal(o->impression_lrs, want_imp_lrs);

    /* the batch that makes actions: the last copy of each request's impressions */
    int64_t want_nav = 0, want_atc = 0, want_co = 0, want_pu = 0, want_action_lrs = 0;
    for (size_t i = 0; i < o->n_batches; i++) {
        const batch_obs *b = &o->batches[i];
        if (b->request_id) {
            int later = 0;
            for (size_t j = i + 1; j < o->n_batches; j++)
                if (o->batches[j].request_id && !strcmp(o->batches[j].request_id, b->request_id))
                    later = 1;
            if (later) continue;
        } else {
            assert_true(s->redundant == 0); /* without insertion ids copies cannot be told apart */
        }
        const char *f = b->first_impression_id;
        int64_t k = count(s->navigate, (int64_t)b->n, f, "addImpressionsToHeap2");
        int64_t a = count(s->add_to_cart, k, f, "addToCart");
        int64_t c = count(s->checkout, k, f, "addNavigatesToHeap");
        int64_t p = count(s->purchase, c, f, "addCheckoutsToHeap");
        want_nav += k, want_atc += a, want_co += c, want_pu += p;
        want_action_lrs += (k > 0) + (c > 0) + (p > 0);
    }
    assert_int_equal(o->navigates, want_nav);
    assert_int_equal(o->add_to_carts, want_atc);
    assert_int_equal(o->checkouts, want_co);
    assert_int_equal(o->purchases, want_pu);
    assert_int_equal(o->action_lrs, want_action_lrs);

    /* every LogRequest is one of the above */
    assert_int_equal(o->empty_lrs, 0);
    assert_int_equal(o->log_requests, o->users + o->cohorts + o->sessions + o->views +
                                          o->auto_views + o->diagnostics + o->delivery_logs +
                                          o->impression_lrs + o->action_lrs);

    /* the generator's own counters agree with what was emitted */
    assert_int_equal(o->internal.log_requests, o->log_requests);
    assert_int_equal(o->internal.impressions, o->impressions);
    assert_int_equal(o->internal.navigates, o->navigates);
    assert_int_equal(o->internal.delivery_logs, o->delivery_logs);
}

/* ---- option sets ------------------------------------------------------------------ */

/* LogRequestIteratorOptions.builder() defaults plus the sizes it requires. */
static void test_library_defaults_with_sizes(void **st)
{
    (void)st;
    const char *ov[] = {"--users=3",
                        "--sessionsPerUser=2",
                        "--viewsPerSession=3",
                        "--autoViewsPerSession=2",
                        "--delayBetweenViewInSeconds=1",
                        "--delayBetweenAutoViewInSeconds=1",
                        "--requestsPerViews=2",
                        "--responseInsertionsPerRequest=7",
                        "--insertionImpressedRate=0.6",
                        "--impressionNavigateRate=0.5",
                        "--navigateAddToCartRate=0.5",
                        "--navigateCheckoutRate=0.5",
                        "--checkoutPurchaseRate=0.5",
                        NULL};
    run_obs o;
    run("library", ov, &o);
    /* library defaults: miniSdk 0.5, shadow 0.5, full format, no matrix, 10x10x2 catalogue */
    shape s = {3, 2, 3, 2, 2, 7, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 5, 100, 1};
    check_single_level(&s, &o);
    assert_true(o.shadow > 0); /* shadows do occur at 0.5 x 0.5 over 36 requests */
    for (size_t i = 0; i < o.n_dls; i++) {
        assert_int_equal(o.dls[i].n_req_full, o.dls[i].n_resp);
        assert_int_equal(o.dls[i].n_matrix_rows, 0);
        /* a shadow logs the request insertions; an SDK log none; an API log the response's */
        if (o.dls[i].shadow) assert_int_equal(o.dls[i].n_exec, o.dls[i].n_req_full);
        assert_true(o.dls[i].has_view_id); /* setupForInferredIds defaults to false here */
    }
    release(&o);
}

static void test_library_requires_sizes(void **st)
{
    (void)st;
    char err[256];
    gen_options opts = {0};
    assert_int_equal(gen_options_init(&opts, "library", NULL, err, sizeof err), 0);
    gen_logs *g;
    assert_int_equal(gen_logs_new(&opts, &g, err, sizeof err), -1);
    assert_non_null(strstr(err, "--users is required"));
    gen_options_free(&opts);
}

/* The LogGenerator command's defaults (profile B): 25 users x 100 views, 20 insertions,
 * matrix format, inferred ids, FULL detail. */
static void test_cli_defaults(void **st)
{
    (void)st;
    run_obs o;
    run("cli", NULL, &o);
    shape s = {25, 1, 100, 100, 1, 20, 0.7, 0.2, 0.2, 0.2, 0.3, 0, 0, 0, 5, 100, 1};
    check_single_level(&s, &o);
    /* spec §7's figures for this profile */
    assert_int_equal(o.views, 2500);
    assert_int_equal(o.delivery_logs, 2500);
    assert_int_equal(o.resp_ins, 50000);
    assert_int_equal(o.impressions, 35000); /* 0.7 x 20 = 14 exactly per request */
    assert_int_equal(o.auto_views, 2500);
    assert_in_range(o.navigates, 5000, 6000);
    assert_in_range(o.log_requests, 15000, 16500);
    /* inferred references: nothing names its parent */
    for (size_t i = 0; i < o.n_dls; i++)
        assert_false(o.dls[i].has_view_id);
    for (size_t i = 0; i < o.n_batches; i++)
        assert_false(o.batches[i].has_insertion_ids);
    for (size_t i = 0; i < o.n_acts; i++)
        assert_false(o.acts[i].any_impression_id);
    release(&o);
}

/* The local deployment (profile C): exactly 700 impressions. */
static void test_local_profile(void **st)
{
    (void)st;
    run_obs o;
    run("local", NULL, &o);
    shape s = {10, 1, 10, 100, 1, 10, 0.7, 0.2, 0.2, 0.2, 0.3, 0.2, 1.0, 0, 5, 100, 1};
    check_single_level(&s, &o);
    assert_int_equal(o.impressions, 700);
    assert_int_equal(o.views, 100);
    assert_int_equal(o.auto_views, 1000);
    assert_int_equal(o.delivery_logs - o.shadow, 100);
    assert_int_equal(o.shadow, o.sdk);           /* shadowTrafficRate 1.0: every SDK log has one */
    assert_in_range(o.log_requests, 1563, 1592); /* the spec's range over seeds */
    release(&o);
}

/* Matrix format: rows instead of Request.insertion, headers sorted, shadows without
 * execution insertions. */
static void test_matrix_format(void **st)
{
    (void)st;
    run_obs o;
    run("local", NULL, &o);
    assert_true(o.shadow > 0);
    for (size_t i = 0; i < o.n_dls; i++) {
        const dl_obs *d = &o.dls[i];
        assert_int_equal(d->n_req_full, 0);
        assert_int_equal(d->n_matrix_rows, d->n_resp);
        assert_string_equal(d->headers, "contentId,itemId,storeId,type");
        assert_true(d->matrix_ok);
        if (d->shadow) {
            assert_int_equal(d->n_exec, 0);
            /* the shadow shares its original's client_request_id */
            int found = 0;
            for (size_t j = 0; j < o.n_dls; j++)
                if (!o.dls[j].shadow && !strcmp(o.dls[j].client_request_id, d->client_request_id))
                    found = 1;
            assert_true(found);
        }
    }
    release(&o);

    /* the same run in full format instead */
    const char *ov[] = {"--useInsertionMatrixFormat=false", NULL};
    run("local", ov, &o);
    for (size_t i = 0; i < o.n_dls; i++) {
        assert_int_equal(o.dls[i].n_req_full, o.dls[i].n_resp);
        assert_int_equal(o.dls[i].n_matrix_rows, 0);
        if (o.dls[i].shadow) assert_int_equal(o.dls[i].n_exec, o.dls[i].n_req_full);
    }
    release(&o);
}

/* Redundant impressions: the chosen requests' impressions are logged max times; only the
 * last copy makes actions. */
static void test_redundant_impressions(void **st)
{
    (void)st;
    const char *ov[] = {"--users=2",
                        "--sessionsPerUser=2",
                        "--viewsPerSession=3",
                        "--autoViewsPerSession=1",
                        "--requestsPerViews=2",
                        "--responseInsertionsPerRequest=9",
                        "--insertionImpressedRate=0.7",
                        "--impressionNavigateRate=0.5",
                        "--navigateAddToCartRate=0.5",
                        "--navigateCheckoutRate=0.5",
                        "--checkoutPurchaseRate=0.5",
                        "--redundantImpressionRate=0.5",
                        "--maxRedundantImpressionsPerDeliveryLog=3",
                        "--miniSdkRate=0.3",
                        "--shadowTrafficRate=0.5",
                        NULL};
    run_obs o;
    run("factory", ov, &o);
    shape s = {2, 2, 3, 1, 2, 9, 0.7, 0.5, 0.5, 0.5, 0.5, 0.3, 0.5, 0.5, 3, 400, 1};
    check_single_level(&s, &o);
    assert_true(o.impression_lrs > o.n_dls - o.shadow); /* some requests were repeated */
    /* each navigate names an impression of its request's last copy */
    for (size_t i = 0; i < o.n_acts; i++) {
        const char *f = o.acts[i].first_impression_id;
        if (!f || !o.acts[i].nav) continue;
        const batch_obs *owner = NULL;
        size_t owner_idx = 0;
        for (size_t j = 0; j < o.n_batches; j++)
            for (size_t k = 0; k < o.batches[j].n; k++)
                if (!strcmp(o.batches[j].impression_ids[k], f))
                    owner = &o.batches[j], owner_idx = j;
        assert_non_null(owner);
        for (size_t j = owner_idx + 1; j < o.n_batches; j++)
            assert_false(!strcmp(o.batches[j].request_id, owner->request_id));
    }
    release(&o);
}

/* Missing records: the dropped set is exactly the ids whose roll passes; children of a dropped
 * View, DeliveryLog or impression batch still follow. */
static void test_missing_rates(void **st)
{
    (void)st;
    const char *ov[] = {"--users=3",
                        "--sessionsPerUser=2",
                        "--viewsPerSession=4",
                        "--autoViewsPerSession=5",
                        "--requestsPerViews=2",
                        "--responseInsertionsPerRequest=6",
                        "--insertionImpressedRate=0.5",
                        "--impressionNavigateRate=0.5",
                        "--navigateCheckoutRate=0.5",
                        "--missingViewRate=0.3",
                        "--missingAutoViewRate=0.3",
                        "--missingDeliveryLogRate=0.3",
                        "--missingImpressionRate=0.3",
                        "--miniSdkRate=0.5",
                        "--shadowTrafficRate=0.5",
                        NULL};
    run_obs o;
    run("factory", ov, &o);
    int64_t views = 3 * 2 * 4, auto_views = 3 * 2 * 5, primary = views * 2;
    char id[48];

    /* views and auto views: incrementing ids, so every drawn id is known */
    size_t want_views = 0, want_auto = 0;
    for (int64_t n = 1; n <= views; n++) {
        snprintf(id, sizeof id, "22222222-2222-2222-0000-%012llx", (unsigned long long)n);
        want_views += !roll(0.3, id, "addViewToHeap");
    }
    for (int64_t n = 1; n <= auto_views; n++) {
        snprintf(id, sizeof id, "77777777-7777-7777-0000-%012llx", (unsigned long long)n);
        want_auto += !roll(0.3, id, "addAutoViewsToHeap");
    }
    assert_int_equal(o.views, want_views);
    assert_true(want_views < (size_t)views);
    assert_int_equal(o.auto_views, want_auto);
    assert_int_equal(o.diagnostics, views); /* a dropped view still lists content */

    /* request ids: a primary, then its shadow's id when one is made */
    size_t want_primary = 0, want_shadow = 0;
    int64_t want_imps_drawn = 0;
    int64_t n = 1;
    for (int64_t r = 0; r < primary; r++, n++) {
        snprintf(id, sizeof id, "33333333-3333-3333-0000-%012llx", (unsigned long long)n);
        want_primary += !roll(0.3, id, "addDeliveryLogsToHeap1");
        want_imps_drawn += count(0.5, 6, id, "addImpressionsToHeap2");
        if (roll(0.5, id, "addDeliveryLogsToHeap") && roll(0.5, id, "addDeliveryLogsToHeap2")) {
            want_shadow++;
            n++;
        }
    }
    assert_int_equal(o.delivery_logs - o.shadow, want_primary);
    assert_true(want_primary < (size_t)primary);
    assert_int_equal(o.shadow, want_shadow);

    /* impression batches: kept ones roll false on their first id; the ids of dropped ones are
     * the gaps, and the first id of each gap rolls true */
    int64_t seen = 0;
    for (size_t i = 0; i < o.n_batches; i++) {
        assert_false(roll(0.3, o.batches[i].first_impression_id, "addImpressionsToHeap1"));
        seen += (int64_t)o.batches[i].n;
    }
    assert_true(seen < want_imps_drawn);
    unsigned char *present = calloc((size_t)want_imps_drawn + 1, 1);
    for (size_t i = 0; i < o.n_batches; i++)
        for (size_t k = 0; k < o.batches[i].n; k++) {
            unsigned long long v = strtoull(o.batches[i].impression_ids[k] + 24, NULL, 16);
            assert_in_range(v, 1, (unsigned long long)want_imps_drawn);
            present[v] = 1;
        }
    int gaps = 0;
    for (int64_t v = 1; v <= want_imps_drawn; v++)
        if (!present[v] && (v == 1 || present[v - 1])) {
            snprintf(id, sizeof id, "55555555-5555-5555-0000-%012llx", (unsigned long long)v);
            assert_true(roll(0.3, id, "addImpressionsToHeap1"));
            gaps++;
        }
    assert_true(gaps > 0);

    /* a dropped batch's actions still follow: some navigate names an impression never sent */
    int orphan = 0;
    for (size_t i = 0; i < o.n_acts; i++) {
        const char *f = o.acts[i].first_impression_id;
        if (!f) continue;
        unsigned long long v = strtoull(f + 24, NULL, 16);
        if (v <= (unsigned long long)want_imps_drawn && !present[v]) orphan = 1;
    }
    assert_true(orphan);
    free(present);
    release(&o);
}

/* ---- the spec's own numbers ---------------------------------------------------------- */

static void test_presets(void **st)
{
    (void)st;
    static const struct {
        const char *name;
        size_t lrs, imps, actions;
    } want[] = {
        {"createStoreToItemBuilder", 16, 1, 4},
        {"createItemShoppingCartBuilder", 37, 16, 28},
        {"createStoreInsertionItemShoppingCartBuilder", 37, 4, 16},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        run_obs o;
        run(want[i].name, NULL, &o);
        assert_int_equal(o.log_requests, want[i].lrs);
        assert_int_equal(o.impressions, want[i].imps);
        assert_int_equal(o.navigates + o.add_to_carts + o.checkouts + o.purchases, want[i].actions);
        release(&o);
    }
}

#define FACTORY_N2                                                                                 \
    "--users=2", "--sessionsPerUser=2", "--viewsPerSession=2", "--autoViewsPerSession=2",          \
        "--requestsPerViews=2", "--responseInsertionsPerRequest=2",                                \
        "--impressionNavigateRate=0.1", "--detail=FULL"
#define FACTORY_N5                                                                                 \
    "--users=5", "--sessionsPerUser=5", "--viewsPerSession=5", "--autoViewsPerSession=5",          \
        "--requestsPerViews=5", "--responseInsertionsPerRequest=5",                                \
        "--impressionNavigateRate=0.1", "--detail=FULL"

/* LogRequestIteratorTest's scenarios (spec §7), on createLogRequestOptionsBuilder(t, n). */
static void test_reference_scenarios(void **st)
{
    (void)st;
    run_obs o;
    const char *counts[] = {FACTORY_N2, NULL};
    run("factory", counts, &o);
    assert_int_equal(o.users, 2);
    assert_int_equal(o.views, 8);
    assert_int_equal(o.delivery_logs, 16);
    assert_int_equal(o.sdk, 10);
    assert_int_equal(o.api, 6);
    assert_int_equal(o.impressions, 32);
    assert_int_equal(o.navigates + o.add_to_carts + o.checkouts + o.purchases, 2);
    assert_int_equal(o.log_requests, 66);
    release(&o);

    const char *redundant[] = {FACTORY_N2,
                               "--redundantImpressionRate=0.5",
                               "--responseInsertionsPerRequest=12",
                               "--maxRedundantImpressionsPerDeliveryLog=5",
                               "--navigateCheckoutRate=0.2",
                               "--checkoutPurchaseRate=0.3",
                               NULL};
    run("factory", redundant, &o);
    assert_int_equal(o.views, 8);
    assert_int_equal(o.delivery_logs, 16);
    assert_int_equal(o.impressions, 624);
    assert_int_equal(o.navigates, 16);
    assert_int_equal(o.checkouts, 3);
    assert_int_equal(o.add_to_carts + o.purchases, 0);
    release(&o);

    const char *all_one[] = {FACTORY_N5,
                             "--responseInsertionsPerRequest=12",
                             "--impressionNavigateRate=1",
                             "--navigateCheckoutRate=1",
                             "--checkoutPurchaseRate=1",
                             NULL};
    run("factory", all_one, &o);
    assert_int_equal(o.users, 5);
    assert_int_equal(o.views, 125);
    assert_int_equal(o.delivery_logs, 625);
    assert_int_equal(o.resp_ins, 7500);
    assert_int_equal(o.impressions, 7500);
    assert_int_equal(o.navigates, 7500);
    assert_int_equal(o.checkouts, 7500);
    assert_int_equal(o.purchases, 7500);
    release(&o);

    const char *half[] = {FACTORY_N5,
                          "--responseInsertionsPerRequest=12",
                          "--impressionNavigateRate=0.5",
                          "--navigateCheckoutRate=0.5",
                          "--checkoutPurchaseRate=0.5",
                          NULL};
    run("factory", half, &o);
    assert_int_equal(o.navigates, 3750);
    assert_int_equal(o.checkouts, 1875);
    assert_int_equal(o.purchases, 942);
    release(&o);

    const char *stores_items[] = {FACTORY_N2,
                                  "--redundantImpressionRate=0.5",
                                  "--responseInsertionsPerRequest=12",
                                  "--maxRedundantImpressionsPerDeliveryLog=5",
                                  "--requestContentType0=STORE",
                                  "--requestContentType1=ITEM",
                                  "--navigateCheckoutRate=0.25",
                                  "--checkoutPurchaseRate=0.5",
                                  NULL};
    run("factory", stores_items, &o);
    assert_int_equal(o.views, 24);
    assert_int_equal(o.delivery_logs, 48);
    assert_int_equal(o.impressions, 1680);
    assert_int_equal(o.navigates, 55);
    assert_int_equal(o.checkouts, 11);
    assert_int_equal(o.purchases, 4);
    release(&o);

    const char *cart[] = {FACTORY_N2,
                          "--users=1",
                          "--sessionsPerUser=1",
                          "--responseInsertionsPerRequest=4",
                          "--miniSdkRate=0",
                          "--impressionNavigateRate=1",
                          "--navigateCheckoutRate=0.25",
                          "--navigateAddToCartRate=0.5",
                          "--checkoutPurchaseRate=1",
                          "--requestContentType0=STORE",
                          "--requestLogImpressions0=false",
                          "--requestLogNavigates0=false",
                          "--requestContentType1=ITEM",
                          NULL};
    run("factory", cart, &o);
    assert_int_equal(o.views, 18);
    assert_int_equal(o.delivery_logs, 36);
    assert_int_equal(o.impressions, 128);
    assert_int_equal(o.navigates, 128);
    assert_int_equal(o.add_to_carts, 64);
    assert_int_equal(o.checkouts, 32);
    assert_int_equal(o.purchases, 32);
    for (size_t i = 0; i < o.n_acts; i++)
        assert_true(o.acts[i].carts_ok);
    release(&o);
}

/* ---- determinism ---------------------------------------------------------------------- */

typedef struct digest {
    uint64_t hash;
    size_t n;
    char first_user[64];
    char first_view[40];
} digest;

static void digest_run(const char *const *ov, digest *d)
{
    char err[512];
    gen_options opts = {0};
    assert_int_equal(gen_options_init(&opts, "cli", ov, err, sizeof err), 0);
    gen_logs *g;
    if (gen_logs_new(&opts, &g, err, sizeof err)) fail_msg("%s", err);
    gen_options_free(&opts);
    memset(d, 0, sizeof *d);
    d->hash = 1469598103934665603ULL;
    int64_t ts;
    const uint8_t *key, *value;
    size_t kl, vl;
    Event__LogRequest *lr;
    while (gen_logs_next_packed(g, &ts, &key, &kl, &value, &vl, err, sizeof err) == 1) {
        /* FNV-1a over timestamp, key and value */
        for (int i = 0; i < 8; i++)
            d->hash = (d->hash ^ (uint8_t)(ts >> (8 * i))) * 1099511628211ULL;
        for (size_t i = 0; i < kl; i++)
            d->hash = (d->hash ^ key[i]) * 1099511628211ULL;
        for (size_t i = 0; i < vl; i++)
            d->hash = (d->hash ^ value[i]) * 1099511628211ULL;
        lr = event__log_request__unpack(NULL, vl, value);
        assert_non_null(lr);
        if (!d->first_user[0])
            snprintf(d->first_user, sizeof d->first_user, "%s", lr->user_info->user_id);
        if (!d->first_view[0] && lr->n_view)
            snprintf(d->first_view, sizeof d->first_view, "%s", lr->view[0]->view_id);
        event__log_request__free_unpacked(lr, NULL);
        d->n++;
    }
    gen_logs_free(g);
}

static void test_same_seed_same_bytes(void **st)
{
    (void)st;
    const char *a[] = {"--users=3",
                       "--viewsPerSession=5",
                       "--autoViewsPerSession=5",
                       "--miniSdkRate=0.5",
                       "--shadowTrafficRate=0.5",
                       "--seed=42",
                       NULL};
    const char *b[] = {"--users=3",
                       "--viewsPerSession=5",
                       "--autoViewsPerSession=5",
                       "--miniSdkRate=0.5",
                       "--shadowTrafficRate=0.5",
                       "--seed=43",
                       NULL};
    digest d1, d2, d3;
    digest_run(a, &d1);
    digest_run(a, &d2);
    digest_run(b, &d3);
    assert_true(d1.n > 0);
    assert_int_equal(d1.n, d2.n);
    assert_true(d1.hash == d2.hash);
    assert_string_equal(d1.first_user, d2.first_user);
    /* another seed: other ids */
    assert_string_not_equal(d1.first_user, d3.first_user);
    assert_string_not_equal(d1.first_view, d3.first_view);
    assert_true(d1.hash != d3.hash);
    /* random ids are UUIDv4 */
    assert_int_equal(strlen(d1.first_view), 36);
    assert_int_equal(d1.first_view[14], '4');
    assert_non_null(strchr("89ab", d1.first_view[19]));
    assert_int_equal(strncmp(d1.first_user, "userId-", 7), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_defaults_with_sizes),
        cmocka_unit_test(test_library_requires_sizes),
        cmocka_unit_test(test_cli_defaults),
        cmocka_unit_test(test_local_profile),
        cmocka_unit_test(test_matrix_format),
        cmocka_unit_test(test_redundant_impressions),
        cmocka_unit_test(test_missing_rates),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_reference_scenarios),
        cmocka_unit_test(test_same_seed_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
