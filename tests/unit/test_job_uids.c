/* Walks every job's operator graph (built with default flags) and enforces the uid convention of
 * spec/README.md "Operator uids": lowercase [a-z0-9._-], no empty segment between '-', unique
 * within the job; plus the naming habits checked mechanically here: sinks start with "sink-",
 * sources with the Kafka source prefix, and every uid has at least two words. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "jobs/job.h"
#include "runtime/graph.h"

static void build_default(const job_def *def, rt_graph **g)
{
    job_common_opts c;
    memset(&c, 0, sizeof c);
    void *jopts;
    flag_table t[2];
    t[0] = job_flags_common_table(&c);
    assert_int_equal(def->new_opts(&jopts, &t[1]), 0);
    char err[512];
    assert_int_equal(flags_defaults(t, 2, err, sizeof err), 0);
    assert_int_equal(rt_graph_new(NULL, g), 0);
    rt_op *root;
    int rc = def->build(*g, &c, jopts, "00000000", "0", &root, err, sizeof err);
    if (rc) fail_msg("building %s: %s", def->name, err);
    assert_non_null(root);
    flags_free(t, 2);
    def->free_opts(jopts);
}

static void test_every_job_graph_follows_the_uid_convention(void **s)
{
    int jobs = 0;
    for (int j = 0; job_defs[j]; j++, jobs++) {
        rt_graph *g;
        build_default(job_defs[j], &g);
        char err[512];
        if (rt_graph_check_uids(g, err, sizeof err)) fail_msg("%s: %s", job_defs[j]->name, err);
        size_t n = rt_graph_op_count(g);
        assert_true(n > 3);
        int sources = 0;
        for (size_t i = 0; i < n; i++) {
            const char *uid = rt_op_uid(rt_graph_op_at(g, i));
            if (!strchr(uid, '-')) fail_msg("%s: uid '%s' is a single word", job_defs[j]->name, uid);
            if (!strncmp(uid, "source-kafka-", 13)) sources++;
        }
        assert_true(sources >= 1);
        rt_graph_free(g);
    }
    assert_true(jobs >= 1);
}

static void test_raw_output_has_a_sink_per_spec_table(void **s)
{
    rt_graph *g;
    build_default(job_find("raw-output"), &g);
    static const char *const sinks[] = {
        "sink-s3-raw-log-request", "sink-s3-raw-user", "sink-s3-raw-cohort-membership",
        "sink-s3-raw-view", "sink-s3-raw-auto-view", "sink-s3-raw-delivery-log",
        "sink-s3-raw-impression", "sink-s3-raw-action", "sink-s3-raw-diagnostics",
        "sink-s3-raw-log-user-user", "sink-s3-raw-side-delivery-log-ids",
        "sink-s3-raw-side-request-insertion-ids", "sink-s3-raw-side-response-insertion-ids",
        "sink-s3-raw-side-invalid-record", "source-kafka-tracking.event.log-request",
    };
    for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++)
        if (!rt_graph_find(g, sinks[i])) fail_msg("raw-output has no operator %s", sinks[i]);
    rt_graph_free(g);
}

static void test_uid_checker_rejects_bad_uids(void **s)
{
    char err[256];
    assert_int_equal(rt_uid_check("join-impression-action", err, sizeof err), 0);
    assert_int_equal(rt_uid_check("sink-s3-etl_side-validation_error", err, sizeof err), 0);
    assert_int_equal(rt_uid_check("Join-Impression", err, sizeof err), -1);
    assert_int_equal(rt_uid_check("a--b", err, sizeof err), -1);
    assert_int_equal(rt_uid_check("-a", err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_job_graph_follows_the_uid_convention),
        cmocka_unit_test(test_raw_output_has_a_sink_per_spec_table),
        cmocka_unit_test(test_uid_checker_rejects_bad_uids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
