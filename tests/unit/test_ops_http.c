/* The HTTP server's request handling, run in process (http_request_run): the handler gets
 * exactly the path, body and "k=v&k=v" query it was sent; a query that would pass HTTP_MAX_BODY
 * reaches it empty, never with some arguments silently missing (fuzz finding 10); an oversized
 * body gets 413 and an unknown method 405 without the handler being called. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ops/http.h"

typedef struct seen {
    int calls;
    char method[16], path[64];
    char *query, *body;
    size_t len;
} seen;

static void handler(void *arg, const char *method, const char *path, const char *query,
                    const char *body, size_t len, http_response *resp)
{
    seen *s = arg;
    s->calls++;
    strncpy(s->method, method, sizeof s->method - 1);
    strncpy(s->path, path, sizeof s->path - 1);
    free(s->query);
    free(s->body);
    s->query = strdup(query);
    s->body = malloc(len + 1);
    memcpy(s->body, body, len + 1);
    s->len = len;
    resp->status = 200;
}

static void reset(seen *s)
{
    free(s->query);
    free(s->body);
    memset(s, 0, sizeof *s);
}

static int run(seen *s, const char *method, const char *url, const http_arg *args, size_t nargs,
               const char *const *chunks, const size_t *lens, size_t n)
{
    http_response r;
    memset(&r, 0, sizeof r);
    assert_int_equal(http_request_run(handler, s, method, url, args, nargs, chunks, lens, n, &r),
                     0);
    rt_buf_free(&r.body);
    return r.status;
}

static void test_passes_path_query_and_body(void **state)
{
    (void)state;
    seen s = {0};
    http_arg args[] = {{"get", "numRecordsIn"}, {"flag", NULL}};
    const char *chunks[] = {"{\"savepoint\"", ":true}"};
    size_t lens[] = {12, 6};
    assert_int_equal(run(&s, "POST", "/jobs/x/stop", args, 2, chunks, lens, 2), 200);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.method, "POST");
    assert_string_equal(s.path, "/jobs/x/stop");
    assert_string_equal(s.query, "get=numRecordsIn&flag");
    assert_int_equal(s.len, 18);
    assert_string_equal(s.body, "{\"savepoint\":true}");
    reset(&s);
}

static void test_query_over_the_limit_arrives_empty(void **state)
{
    (void)state;
    seen s = {0};
    /* 40 KiB, then 30 KiB (over 64 KiB together), then a short one that would still fit */
    char *big = malloc(40 * 1024 + 1), *mid = malloc(30 * 1024 + 1);
    memset(big, 'a', 40 * 1024);
    big[40 * 1024] = 0;
    memset(mid, 'b', 30 * 1024);
    mid[30 * 1024] = 0;
    http_arg args[] = {{"k1", big}, {"k2", mid}, {"k3", "short"}};
    assert_int_equal(run(&s, "GET", "/metrics", args, 3, NULL, NULL, 0), 200);
    assert_int_equal(s.calls, 1);
    assert_string_equal(s.query, "");
    reset(&s);
    free(big);
    free(mid);
}

static void test_limits_refuse_without_the_handler(void **state)
{
    (void)state;
    seen s = {0};
    char *piece = malloc(40 * 1024);
    memset(piece, 'x', 40 * 1024);
    const char *chunks[] = {piece, piece};
    size_t lens[] = {40 * 1024, 40 * 1024};
    assert_int_equal(run(&s, "POST", "/jobs/x/savepoints", NULL, 0, chunks, lens, 2), 413);
    assert_int_equal(run(&s, "DELETE", "/jobs/x", NULL, 0, NULL, NULL, 0), 405);
    assert_int_equal(s.calls, 0);
    free(piece);
    reset(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passes_path_query_and_body),
        cmocka_unit_test(test_query_over_the_limit_arrives_empty),
        cmocka_unit_test(test_limits_refuse_without_the_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
