/* AddLatestImpressions (spec/flat-output.md §12.3) through a graph: the spec's scenario (M = 1 s,
 * Kafka time = clt + 110, event API time = clt + 100), the empty list, the actioned-content and
 * time filters, the 25 limit, pruning to 30 and to 6 hours, the event-API-time release quirk,
 * users kept apart, and snapshot/restore. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "jobs/join/latest_impressions.h"
#include "runtime/buf.h"
#include "test_join_post_util.h"

#define M 1000
#define KAFKA_DELAY 110
#define API_DELAY 100
#define HOUR 3600000

typedef struct ev_rec {
    Event__JoinedEvent j;
    Event__JoinedIdentifiers ids;
    Common__Timing t;
    Delivery__Insertion resp;
    Event__Impression imp;
    Event__Action act;
    char idbuf[32], cbuf[32];
} ev_rec;

static void ev_init(ev_rec *r, const char *luid, const char *imp_id, const char *content,
                    uint64_t clt, const char *action_id)
{
    memset(r, 0, sizeof *r);
    Event__JoinedEvent j = EVENT__JOINED_EVENT__INIT;
    Event__JoinedIdentifiers ids = EVENT__JOINED_IDENTIFIERS__INIT;
    Common__Timing t = COMMON__TIMING__INIT;
    Delivery__Insertion resp = DELIVERY__INSERTION__INIT;
    Event__Impression imp = EVENT__IMPRESSION__INIT;
    Event__Action act = EVENT__ACTION__INIT;
    r->j = j;
    r->ids = ids;
    r->t = t;
    r->resp = resp;
    r->imp = imp;
    r->act = act;
    snprintf(r->idbuf, sizeof r->idbuf, "%s", imp_id);
    snprintf(r->cbuf, sizeof r->cbuf, "%s", content);
    r->ids.has_platform_id = 1;
    r->ids.platform_id = 1;
    r->ids.log_user_id = (char *)luid;
    r->ids.impression_id = r->idbuf;
    r->resp.content_id = r->cbuf;
    r->t.has_client_log_timestamp = clt != 0;
    r->t.client_log_timestamp = clt;
    r->t.has_event_api_timestamp = 1;
    r->t.event_api_timestamp = clt + API_DELAY;
    r->j.ids = &r->ids;
    r->j.response_insertion = &r->resp;
    r->j.timing = &r->t;
    if (action_id) {
        r->act.action_id = (char *)action_id;
        r->act.timing = &r->t;
        r->j.action = &r->act;
        r->j.impression = &r->imp;
    } else {
        r->imp.timing = &r->t;
        r->j.impression = &r->imp;
    }
}

typedef struct fixture {
    rt_graph *g;
    rt_op *op;
    capture out;
} fixture;

static void fx_build(fixture *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(rt_graph_new(NULL, &f->g), 0);
    latest_impressions_config c = latest_impressions_defaults();
    c.out_of_orderness_ms = M;
    assert_int_equal(latest_impressions_op_add(f->g, "join-latest-impressions", &c, &f->op), 0);
    capture_port(f->g, "capture-out", &f->out, f->op, 0);
    graph_open_ok(f->g);
}

static void fx_free(fixture *f)
{
    rt_graph_free(f->g);
    capture_free(&f->out);
}

static void impression(fixture *f, const char *luid, const char *id, const char *content,
                       uint64_t clt)
{
    ev_rec r;
    ev_init(&r, luid, id, content, clt, NULL);
    push_ok(f->g, f->op, 1, REC_JOINED_EVENT, &r.j, (int64_t)clt + KAFKA_DELAY);
}

static void action(fixture *f, const char *luid, const char *imp_id, const char *content,
                   uint64_t clt, const char *id)
{
    ev_rec r;
    ev_init(&r, luid, imp_id, content, clt, id);
    push_ok(f->g, f->op, 0, REC_JOINED_EVENT, &r.j, (int64_t)clt + KAFKA_DELAY);
}

/* The latest impression ids of out[i] joined by ',' into buf. */
static const char *latest_ids(const capture *c, size_t i, char *buf, size_t cap)
{
    Event__JoinedEvent *j = cap_joined(c, i);
    assert_non_null(j->latest_impressions);
    buf[0] = 0;
    for (size_t k = 0; k < j->latest_impressions->n_impression; k++) {
        if (k) strncat(buf, ",", cap - strlen(buf) - 1);
        strncat(buf, nz(j->latest_impressions->impression[k]->impression_id),
                cap - strlen(buf) - 1);
    }
    event__joined_event__free_unpacked(j, NULL);
    return buf;
}

static void test_action_gets_latest_impressions_without_actioned_content(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    static const char *items[6] = {"itemA", "itemB", "itemC", "itemD", "itemE", "itemF"};
    static const char *ids[6] = {"1", "2", "3", "4", "5", "6"};
    static const uint64_t clt[6] = {500, 500, 500, 1000, 1000, 1000};
    for (int i = 0; i < 6; i++)
        impression(&f, "u1", ids[i], items[i], clt[i]);
    action(&f, "u1", "3", "itemC", 10000, "act1");
    wm_ok(f.g, 10000 + KAFKA_DELAY + M - 1);
    assert_int_equal(f.out.n, 0);
    wm_ok(f.g, 10000 + KAFKA_DELAY + M);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 10000 + KAFKA_DELAY + M);
    char buf[256];
    assert_string_equal(latest_ids(&f.out, 0, buf, sizeof buf), "1,2,4,5,6");
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_string_equal(nz(j->action->action_id), "act1");
    for (size_t k = 0; k < j->latest_impressions->n_impression; k++) {
        const Event__LatestImpression *li = j->latest_impressions->impression[k];
        uint64_t c = li->client_log_timestamp;
        assert_true(c == 500 || c == 1000);
        assert_int_equal(li->event_api_timestamp, c + API_DELAY);
        assert_int_equal(li->event_timestamp, c + KAFKA_DELAY);
    }
    assert_string_equal(nz(j->latest_impressions->impression[2]->content_id), "itemD");
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_single_action_gets_an_empty_list(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    action(&f, "u1", "3", "itemC", 10000, "act1");
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 1);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_non_null(j->latest_impressions);
    assert_int_equal(j->latest_impressions->n_impression, 0);
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_only_impressions_before_the_action_and_one_per_content(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    impression(&f, "u1", "old-a", "A", 100);
    impression(&f, "u1", "new-a", "A", 200);
    impression(&f, "u1", "b", "B", 300);
    impression(&f, "u1", "after", "C", 9000); /* after the action's t */
    action(&f, "u1", "x", "X", 8000, "act-early");
    action(&f, "u1", "b", "B", 8500, "act-late");
    impression(&f, "u2", "other-user", "D", 300);
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 2);
    char buf[256];
    /* the action on B comes after act-early's t, so it does not hide B there */
    assert_string_equal(latest_ids(&f.out, 0, buf, sizeof buf), "new-a,b");
    assert_string_equal(latest_ids(&f.out, 1, buf, sizeof buf), "new-a");
    fx_free(&f);
}

static void test_at_most_25_newest_are_output(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    for (int i = 0; i < 28; i++) {
        char id[16], c[16];
        snprintf(id, sizeof id, "i%02d", i);
        snprintf(c, sizeof c, "c%02d", i);
        impression(&f, "u1", id, c, (uint64_t)(1000 + i));
    }
    action(&f, "u1", "x", "X", 5000, "act1");
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 1);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_int_equal(j->latest_impressions->n_impression, 25);
    assert_string_equal(nz(j->latest_impressions->impression[0]->impression_id), "i03");
    assert_string_equal(nz(j->latest_impressions->impression[24]->impression_id), "i27");
    event__joined_event__free_unpacked(j, NULL);
    fx_free(&f);
}

static void test_pruning_keeps_thirty_contents_and_six_hours(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    /* 40 contents at t 1000..1039, pruned at the minute timer (60000) to the newest 30 */
    for (int i = 0; i < 40; i++) {
        char id[16], c[16];
        snprintf(id, sizeof id, "i%02d", i);
        snprintf(c, sizeof c, "c%02d", i);
        impression(&f, "u1", id, c, (uint64_t)(1000 + i));
    }
    wm_ok(f.g, 120000);
    action(&f, "u1", "x", "X", 200000, "act1");
    wm_ok(f.g, 200000 + KAFKA_DELAY + M);
    assert_int_equal(f.out.n, 1);
    Event__JoinedEvent *j = cap_joined(&f.out, 0);
    assert_int_equal(j->latest_impressions->n_impression, 25);
    /* the 10 oldest were pruned, so the 25 newest of the 30 kept */
    assert_string_equal(nz(j->latest_impressions->impression[0]->impression_id), "i15");
    event__joined_event__free_unpacked(j, NULL);
    /* more than 6 hours later everything older is gone */
    action(&f, "u1", "y", "Y", 7 * (uint64_t)HOUR, "act2");
    wm_ok(f.g, RT_TIME_MAX);
    assert_int_equal(f.out.n, 2);
    j = cap_joined(&f.out, 1);
    assert_int_equal(j->latest_impressions->n_impression, 0);
    event__joined_event__free_unpacked(j, NULL);
    assert_int_equal(rt_timer_count(f.op), 0);
    fx_free(&f);
}

static void test_action_with_event_api_time_ahead_waits_for_a_later_timer(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    ev_rec r;
    ev_init(&r, "u1", "3", "itemC", 10000, "act1");
    r.t.event_api_timestamp = 10000 + 5000; /* far ahead of its Kafka time 10110 */
    push_ok(f.g, f.op, 0, REC_JOINED_EVENT, &r.j, 10000 + KAFKA_DELAY);
    wm_ok(f.g, 10000 + KAFKA_DELAY + M);
    assert_int_equal(f.out.n, 0);
    /* the next timer of the user is the 7-hour bucket */
    wm_ok(f.g, 7 * (int64_t)HOUR - 1);
    assert_int_equal(f.out.n, 0);
    wm_ok(f.g, 7 * (int64_t)HOUR);
    assert_int_equal(f.out.n, 1);
    assert_int_equal(f.out.recs[0].ts, 7 * (int64_t)HOUR);
    fx_free(&f);
}

static void test_waiting_action_survives_snapshot_and_restore(void **st)
{
    (void)st;
    fixture f;
    fx_build(&f);
    impression(&f, "u1", "1", "itemA", 500);
    action(&f, "u1", "9", "itemZ", 10000, "act1");
    rt_buf snap;
    rt_buf_init(&snap, 0);
    assert_int_equal(rt_graph_snapshot(f.g, &snap), 0);
    fx_free(&f);
    fx_build(&f);
    char err[256] = "";
    if (rt_graph_restore(f.g, snap.data, snap.len, err, sizeof err)) fail_msg("%s", err);
    rt_buf_free(&snap);
    wm_ok(f.g, 10000 + KAFKA_DELAY + M);
    assert_int_equal(f.out.n, 1);
    char buf[64];
    assert_string_equal(latest_ids(&f.out, 0, buf, sizeof buf), "1");
    fx_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_action_gets_latest_impressions_without_actioned_content),
        cmocka_unit_test(test_single_action_gets_an_empty_list),
        cmocka_unit_test(test_only_impressions_before_the_action_and_one_per_content),
        cmocka_unit_test(test_at_most_25_newest_are_output),
        cmocka_unit_test(test_pruning_keeps_thirty_contents_and_six_hours),
        cmocka_unit_test(test_action_with_event_api_time_ahead_waits_for_a_later_timer),
        cmocka_unit_test(test_waiting_action_survives_snapshot_and_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
