/* logproc-bench-join: storms and state bytes of the inferred-reference join J3
 * (join-impression-action, spec/flat-output.md §7), driven as docs/JOIN.md "Driving a storm
 * benchmark" describes: a graph with the operator alone, TinyEvents pushed into its inputs,
 * watermarks advanced by hand, the operator's own statistics read back.
 *
 *   --mode=dup   N impressions with one impression id for one user, pushed as parents with
 *                increasing times and no watermark: every one after the first is a duplicate
 *                (O(1) each). Reports the time per record and the index bytes before/after.
 *   --mode=scope N distinct impressions of one content id for one user (one scope), with
 *                increasing log times (--equal-times: all equal). Then --actions keyless actions
 *                of that content, resolved at their timers (the nearest-parent selection), then a
 *                watermark past every horizon (the cleanup). Reports each phase's time, the index
 *                work, and index and payload bytes per buffered impression.
 *   --mode=cli   impressions shaped like the generator's CLI profile (UUID ids; per user 100
 *                views of one request each, 20 insertions per request of which 14 are impressed,
 *                every request listing the same 20 items), N users: index and payload bytes per
 *                buffered impression, time per impression.
 *
 * Prints one JSON object. Timing is CLOCK_MONOTONIC around the push loops only. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/pb_util.h"
#include "jobs/common_ops.h"
#include "jobs/join/inferred_join.h"
#include "jobs/join/join_instances.h"
#include "jobs/join/join_records.h"
#include "runtime/graph.h"

static const int64_t T0 = 1601596151000; /* the generator's start time */
static const int64_t DAY = 86400000;

typedef struct bench {
    rt_graph *g;
    rt_op *join, *sink;
    uint8_t key[256];
    size_t klen;
    uint64_t out[INFERRED_JOIN_NPORTS];
} bench;

static int sink_process(rt_op *op, int input, const rt_record *rec)
{
    bench *b = rt_op_self(op);
    b->out[input]++;
    return 0;
}

static const rt_op_vtbl sink_vt = {.process = sink_process};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(bench *b, const char *what)
{
    fprintf(stderr, "logproc-bench-join: %s%s%s\n", what, b && b->g ? ": " : "",
            b && b->g ? rt_graph_error(b->g) : "");
    exit(1);
}

static void start(bench *b, const char *luid)
{
    memset(b, 0, sizeof *b);
    join_instances_params p;
    join_instances_params_default(&p);
    if (rt_graph_new(NULL, &b->g) ||
        join_impression_action_op_add(b->g, "join-impression-action", &p, &b->join) ||
        rt_graph_add_op(b->g, "sink", NULL, &sink_vt, b, INFERRED_JOIN_NPORTS, 0, &b->sink))
        die(b, "building the graph");
    for (int port = 0; port < INFERRED_JOIN_NPORTS; port++)
        if (rt_graph_connect(b->g, b->join, port, b->sink, port)) die(b, "connecting");
    char err[256];
    if (rt_graph_open(b->g, err, sizeof err)) die(NULL, err);
    int n = job_key_platform_id(1, luid, b->key, sizeof b->key);
    if (n < 0) die(b, "user key");
    b->klen = (size_t)n;
}

static void push(bench *b, int input, int64_t ts, Event__TinyEvent *t)
{
    rt_record r = {.ts = ts, .type = REC_TINY_EVENT, .data = t, .key = b->key, .key_len = b->klen};
    if (rt_graph_push(b->g, b->join, input, &r)) die(b, "push");
}

static void watermark(bench *b, int64_t wm)
{
    if (rt_graph_advance_watermark(b->g, wm)) die(b, "watermark");
}

static Event__TinyEvent tiny(const char *luid, int64_t lt)
{
    Event__TinyEvent t = EVENT__TINY_EVENT__INIT;
    t.has_platform_id = 1;
    t.platform_id = 1;
    t.log_user_id = (char *)luid;
    t.has_log_timestamp = 1;
    t.log_timestamp = (uint64_t)lt;
    return t;
}

static void print_stats(const char *name, const inferred_join_stats *st, bool comma)
{
    printf("\"%s\": {\"users\": %" PRIu64 ", \"lhs_buffered\": %" PRIu64 ", \"rhs_buffered\": %" PRIu64
           ", \"scopes\": %" PRIu64 ", \"index_bytes\": %" PRId64 ", \"lhs_payload_bytes\": %" PRId64
           ", \"rhs_payload_bytes\": %" PRId64 ", \"index_ops\": %" PRIu64
           ", \"lhs_duplicates\": %" PRIu64 "}%s",
           name, st->users, st->lhs_buffered, st->rhs_buffered, st->scopes, st->index_bytes,
           st->lhs_payload_bytes, st->rhs_payload_bytes, st->index_ops, st->lhs_duplicates,
           comma ? ", " : "");
}

static const char *LUID = "00000000-0000-4000-8000-000000000001";

/* N pushes of one impression id. */
static void mode_dup(long n)
{
    bench b;
    start(&b, LUID);
    char req[64], ins[64];
    snprintf(req, sizeof req, "33333333-3333-4333-8333-%012d", 1);
    snprintf(ins, sizeof ins, "44444444-4444-4444-8444-%012d", 1);
    inferred_join_stats first, last;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        Event__TinyEvent t = tiny(LUID, T0 + i);
        t.impression_id = "55555555-5555-4555-8555-000000000001";
        t.insertion_id = ins;
        t.request_id = req;
        t.content_id = "i-1-1";
        push(&b, INFERRED_JOIN_IN_LHS, T0 + i, &t);
        if (!i) inferred_join_stats_get(b.join, &first);
    }
    double secs = now() - t0;
    inferred_join_stats_get(b.join, &last);
    printf("{\"mode\": \"dup\", \"n\": %ld, \"seconds\": %.6f, \"ns_per_record\": %.1f, "
           "\"duplicate_outputs\": %" PRIu64 ", ",
           n, secs, secs * 1e9 / (double)n, b.out[INFERRED_JOIN_PORT_DUPLICATE_LHS]);
    print_stats("after_first", &first, true);
    print_stats("after_all", &last, false);
    printf("}\n");
    rt_graph_free(b.g);
}

/* N distinct impressions of one content id, then keyless actions, then the cleanup. */
static void mode_scope(long n, bool equal, long actions)
{
    bench b;
    start(&b, LUID);
    char imp[64], ins[64], req[64], act[64];
    snprintf(req, sizeof req, "33333333-3333-4333-8333-%012d", 1);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        int64_t ts = T0 + (equal ? 0 : i);
        Event__TinyEvent t = tiny(LUID, ts);
        snprintf(imp, sizeof imp, "55555555-5555-4555-8555-%012ld", i);
        snprintf(ins, sizeof ins, "44444444-4444-4444-8444-%012ld", i);
        t.impression_id = imp;
        t.insertion_id = ins;
        t.request_id = req;
        t.content_id = "i-1-1";
        push(&b, INFERRED_JOIN_IN_LHS, ts, &t);
    }
    double t_insert = now() - t0;
    inferred_join_stats st;
    inferred_join_stats_get(b.join, &st);
    /* keyless actions of that content, after every impression: each picks its nearest parent */
    int64_t ta = T0 + n + 1000;
    t0 = now();
    for (long i = 0; i < actions; i++) {
        Event__TinyEvent t = tiny(LUID, ta + i);
        snprintf(act, sizeof act, "66666666-6666-4666-8666-%012ld", i);
        t.action_id = act;
        t.content_id = "i-1-1";
        push(&b, INFERRED_JOIN_IN_RHS, ta + i, &t);
    }
    double t_push_actions = now() - t0;
    inferred_join_stats mid;
    inferred_join_stats_get(b.join, &mid);
    t0 = now();
    watermark(&b, ta + actions + 1);
    double t_select = now() - t0;
    inferred_join_stats after_select;
    inferred_join_stats_get(b.join, &after_select);
    t0 = now();
    watermark(&b, ta + actions + 2 * DAY);
    double t_cleanup = now() - t0;
    inferred_join_stats end;
    inferred_join_stats_get(b.join, &end);
    printf("{\"mode\": \"scope\", \"n\": %ld, \"equal_times\": %s, \"actions\": %ld, "
           "\"insert_seconds\": %.6f, \"ns_per_insert\": %.1f, "
           "\"index_ops_per_insert\": %.2f, \"index_bytes_per_impression\": %.1f, "
           "\"payload_bytes_per_impression\": %.1f, \"action_push_seconds\": %.6f, "
           "\"select_seconds\": %.6f, \"ns_per_selection\": %.1f, \"joined\": %" PRIu64 ", "
           "\"cleanup_seconds\": %.6f, \"ns_per_cleaned_impression\": %.1f, ",
           n, equal ? "true" : "false", actions, t_insert, t_insert * 1e9 / (double)n,
           (double)st.index_ops / (double)n, (double)st.index_bytes / (double)st.lhs_buffered,
           (double)st.lhs_payload_bytes / (double)st.lhs_buffered, t_push_actions, t_select,
           actions ? t_select * 1e9 / (double)actions : 0.0, b.out[INFERRED_JOIN_PORT_OUT],
           t_cleanup, t_cleanup * 1e9 / (double)n);
    print_stats("after_inserts", &st, true);
    print_stats("after_selection", &after_select, true);
    print_stats("after_cleanup", &end, false);
    printf("}\n");
    (void)mid;
    rt_graph_free(b.g);
}

/* Impressions shaped like the generator's CLI profile, for `users` users. */
static void mode_cli(long users)
{
    bench b;
    memset(&b, 0, sizeof b);
    start(&b, LUID);
    char luid[64], view[64], req[64], ins[64], imp[64], content[32];
    long imps = 0;
    double t0 = now();
    for (long u = 0; u < users; u++) {
        snprintf(luid, sizeof luid, "00000000-0000-4000-8000-%012lx", u);
        int n = job_key_platform_id(1, luid, b.key, sizeof b.key);
        if (n < 0) die(&b, "user key");
        b.klen = (size_t)n;
        for (long v = 0; v < 100; v++) {
            snprintf(view, sizeof view, "22222222-2222-4222-8000-%012lx", u * 100 + v);
            snprintf(req, sizeof req, "33333333-3333-4333-8000-%012lx", u * 100 + v);
            for (int i = 0; i < 20; i++) {
                if (i % 10 >= 7) continue;
                long id = (u * 100 + v) * 20 + i;
                snprintf(ins, sizeof ins, "44444444-4444-4444-8000-%012lx", id);
                snprintf(imp, sizeof imp, "55555555-5555-4555-8000-%012lx", id);
                snprintf(content, sizeof content, "i-1-%d", i + 1);
                int64_t ts = T0 + v * 1000 + i;
                Event__TinyEvent t = tiny(luid, ts);
                t.view_id = view;
                t.request_id = req;
                t.insertion_id = ins;
                t.content_id = content;
                t.impression_id = imp;
                push(&b, INFERRED_JOIN_IN_LHS, ts, &t);
                imps++;
            }
        }
    }
    double secs = now() - t0;
    inferred_join_stats st;
    inferred_join_stats_get(b.join, &st);
    printf("{\"mode\": \"cli\", \"users\": %ld, \"impressions\": %ld, \"seconds\": %.6f, "
           "\"ns_per_impression\": %.1f, \"index_bytes_per_impression\": %.1f, "
           "\"payload_bytes_per_impression\": %.1f, ",
           users, imps, secs, secs * 1e9 / (double)imps,
           (double)st.index_bytes / (double)st.lhs_buffered,
           (double)st.lhs_payload_bytes / (double)st.lhs_buffered);
    print_stats("state", &st, false);
    printf("}\n");
    rt_graph_free(b.g);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: logproc-bench-join --mode=dup|scope|cli [--n=N] [--equal-times] "
               "[--actions=N]\n"
               "Storms and state bytes of the inferred join J3 (see the comment at the top of\n"
               "bench/join_bench.c). --n: records (dup, scope; default 100000) or users (cli;\n"
               "default 200). Prints one JSON object.\n");
}

int main(int argc, char **argv)
{
    const char *mode = NULL;
    long n = -1, actions = 1000;
    bool equal = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--mode=", 7)) {
            mode = a + 7;
        } else if (!strncmp(a, "--n=", 4)) {
            n = strtol(a + 4, NULL, 10);
        } else if (!strncmp(a, "--actions=", 10)) {
            actions = strtol(a + 10, NULL, 10);
        } else if (!strcmp(a, "--equal-times")) {
            equal = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!mode || (n != -1 && (n < 1 || n > 100000000)) || actions < 0 || actions > 10000000) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(mode, "dup")) {
        mode_dup(n < 0 ? 100000 : n);
    } else if (!strcmp(mode, "scope")) {
        mode_scope(n < 0 ? 100000 : n, equal, actions);
    } else if (!strcmp(mode, "cli")) {
        mode_cli(n < 0 ? 200 : n);
    } else {
        usage(stderr);
        return 2;
    }
    return 0;
}
