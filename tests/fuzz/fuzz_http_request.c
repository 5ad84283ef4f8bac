/* libFuzzer target: the REST API's request handling.
 *
 * The job driver's REST handler (jobs/job_run.c) is static, so this target drives the two public
 * halves it is made of:
 *   - the HTTP server's request handling (ops/http.c). The first byte is a control byte. Most
 *     inputs run in process through http_request_run, what the server does once libmicrohttpd
 *     has parsed a request: the rest of the input is a method line, a path line, query arguments
 *     one per line ("k=v" or "k") up to an empty line, then the body, handed over in pieces of
 *     1 << (control & 15) bytes (or larger: at most 4096 pieces); control bit 4 sends the body
 *     16 times and bit 5 the arguments 32 times, so inputs of a few KiB reach the 64 KiB
 *     limits. Checked: a body over
 *     HTTP_MAX_BODY gets 413 and a method other than GET, HEAD, POST, PUT, PATCH 405, without
 *     calling the handler; otherwise the handler is called once with the path, the body exactly
 *     (NUL-terminated) and the query exactly "k=v&k=v" (or "" when that would pass the limit);
 *     the answer has a content type.
 *     When the control byte is 0xff, the rest is sent instead as raw bytes over a connection to
 *     the real server (libmicrohttpd on 127.0.0.1, started for the input and stopped after it,
 *     so its threads have freed everything before the input ends): the only path through
 *     libmicrohttpd's own parsing (request line, headers, chunked bodies, percent-decoding),
 *     which is not instrumented; the write side is shut and the answer read to the end, and it
 *     must start with "HTTP/1.". The handler checks the same as above.
 *     FUZZ_HTTP_SOCKET=0 turns that path off (such inputs then run in process): it costs a
 *     server, threads and a connection per input, and libFuzzer keeps many such inputs (the
 *     server's callbacks add coverage), so it would take half of a long run's time.
 *   - the status documents (ops/status.c): ops_status_json, ops_plan_json and
 *     ops_checkpoints_json with the input as the plan JSON (the part of them that parses text),
 *     over a fixed metrics snapshot. What they produce must be valid JSON.
 *
 *   fuzz_http_request -max_len=8192 CORPUS_DIR */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "ops/http.h"
#include "ops/status.h"
#include "runtime/metrics.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static rt_metrics *metrics;
static int over_socket = 1; /* FUZZ_HTTP_SOCKET=0: none */
static rt_metrics_snap prev, cur;

/* ops_* output: must be JSON when they succeed (-1 is allowed: a plan that is not JSON). */
static void documents(const char *plan, rt_buf *out)
{
    ops_job_info info = {.id = "blue.flat-output",
                         .job = "flat-output",
                         .run_id = "0000abcd",
                         .state = "RUNNING",
                         .start_time_ms = 1600000000000,
                         .now_ms = 1600000005000,
                         .checkpoint_store = "/tmp/ckpt",
                         .plan_json = plan};
    for (int i = 0; i < 3; i++) {
        rt_buf_reset(out);
        int rc = i == 0   ? ops_status_json(&info, &cur, &prev, out)
                 : i == 1 ? ops_plan_json(&info, out)
                          : ops_checkpoints_json(&info, &cur, out);
        if (rc) continue;
        json_error_t e;
        json_t *v = json_loadb((const char *)out->data, out->len, 0, &e);
        CHECK(v != NULL);
        json_decref(v);
    }
}

/* What the handler saw (in-process requests only: the socket path's handler runs on the
 * server's threads). */
static struct {
    int calls;
    char *method, *path, *query, *body;
    size_t len;
} seen;

static void handler(void *arg, const char *method, const char *path, const char *query,
                    const char *body, size_t len, http_response *resp)
{
    CHECK(!strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "POST") ||
          !strcmp(method, "PUT") || !strcmp(method, "PATCH"));
    CHECK(path != NULL && query != NULL);
    CHECK(len <= HTTP_MAX_BODY && body[len] == 0);
    if (arg) {
        seen.calls++;
        seen.method = strdup(method);
        seen.path = strdup(path);
        seen.query = strdup(query);
        seen.body = malloc(len + 1);
        CHECK(seen.method && seen.path && seen.query && seen.body);
        memcpy(seen.body, body, len + 1);
        seen.len = len;
    }
    if (!strcmp(path, "/metrics")) {
        resp->content_type = "text/plain; version=0.0.4";
        CHECK(rt_metrics_format_prometheus_rates(&cur, &prev, &resp->body) == 0);
        return;
    }
    /* in process, the documents are built from the whole input after the request instead */
    if (!arg) documents(len ? body : NULL, &resp->body);
    if (resp->body.len == 0) resp->status = 404;
}

static void cleanup(void)
{
    rt_metrics_snap_free(&prev);
    rt_metrics_snap_free(&cur);
    rt_metrics_free(metrics);
}

static void setup(void)
{
    CHECK(rt_metrics_new(&metrics) == 0);
    static const char *const ops[] = {"source-kafka-log-request", "decode-log-request",
                                      "join-impression-action", "sink-s3-etl-joined-action"};
    rt_counter *c[8];
    rt_gauge *g[8];
    for (int i = 0; i < 4; i++) {
        char labels[128];
        snprintf(labels, sizeof labels, "operator=%s,task=p%d", ops[i], i % 2);
        CHECK(rt_metrics_counter(metrics, "numRecordsIn", labels, &c[i]) == 0);
        CHECK(rt_metrics_gauge(metrics, "currentInputWatermark", labels, &g[i]) == 0);
    }
    CHECK(rt_metrics_counter(metrics, "numRecordsOutSide",
                             "operator=join-impression-action,output=late,task=p0", &c[4]) == 0);
    CHECK(rt_metrics_gauge(metrics, "numberOfCompletedCheckpoints", "task=p0", &g[4]) == 0);
    CHECK(rt_metrics_gauge(metrics, "lastCheckpointTime", "task=p1", &g[5]) == 0);
    CHECK(rt_metrics_gauge(metrics, "cacheEntries", "cache=content", &g[6]) == 0);
    CHECK(rt_metrics_snapshot(metrics, &prev) == 0);
    for (int i = 0; i < 5; i++)
        rt_counter_add(c[i], 10 * (i + 1));
    for (int i = 0; i < 7; i++)
        rt_gauge_set(g[i], 1600000000000 + i);
    CHECK(rt_metrics_snapshot(metrics, &cur) == 0);
    const char *env = getenv("FUZZ_HTTP_SOCKET");
    if (env && !strcmp(env, "0")) over_socket = 0;
    atexit(cleanup);
}

static void send_raw(const uint8_t *data, size_t size)
{
    http_server *server;
    int port;
    char err[256];
    CHECK(http_server_start("127.0.0.1", 0, handler, NULL, &server, &port, err, sizeof err) == 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* a request the server waits on (a Content-Length longer than what was sent) ends when the
     * write side is shut; the timeout only guards the fuzzer against a hang */
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    size_t off = 0;
    while (off < size) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0) break; /* the server may answer and close before reading everything */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096], head[8];
    size_t got = 0;
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        for (ssize_t i = 0; i < n && got + (size_t)i < sizeof head; i++)
            head[got + (size_t)i] = buf[i];
        got += (size_t)n;
    }
    /* whatever the server says is HTTP */
    if (got >= 7) CHECK(!memcmp(head, "HTTP/1.", 7));
    close(fd);
    http_server_stop(server);
}

/* The next line of [*p, end) (without its newline) as a new NUL-terminated string; C strings
 * stop at a NUL inside the line, as the server's decoded ones do. */
static char *next_line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *line = strndup((const char *)*p, n);
    CHECK(line != NULL);
    *p += nl ? n + 1 : n;
    return line;
}

static int allowed(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "POST", "PUT", "PATCH"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(m, ok[i])) return 1;
    return 0;
}

#define MAX_ARGS 64
#define ARG_REPEAT 32
#define BODY_REPEAT 16
#define MAX_CHUNKS 4096

static void in_process(unsigned ctl, const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *method = next_line(&p, end), *path = next_line(&p, end);
    char *lines[MAX_ARGS];
    http_arg args[MAX_ARGS * ARG_REPEAT];
    size_t nlines = 0;
    while (p < end && *p != '\n' && nlines < MAX_ARGS) {
        char *l = next_line(&p, end);
        char *eq = strchr(l, '=');
        if (!*l) { /* "" (a line holding a NUL): an argument with no key and no value is
                    * nothing in "k=v&k=v"; the server leaves it out */
            free(l);
            continue;
        }
        if (eq) *eq = 0;
        lines[nlines] = l;
        args[nlines].key = l;
        args[nlines].value = eq ? eq + 1 : NULL;
        nlines++;
    }
    if (p < end && *p == '\n') p++;
    size_t nargs = nlines;
    if (ctl & 0x20)
        for (size_t r = 1; r < ARG_REPEAT; r++)
            for (size_t i = 0; i < nlines; i++)
                args[nargs++] = args[i];
    /* the body, in pieces */
    size_t body_len = (size_t)(end - p), reps = ctl & 0x10 ? BODY_REPEAT : 1;
    size_t piece = (size_t)1 << (ctl & 15);
    /* at most MAX_CHUNKS pieces: a long body in 1-byte pieces would cost more than it finds */
    while (reps * (body_len / piece + 1) > MAX_CHUNKS)
        piece *= 2;
    static const char *chunks[MAX_CHUNKS];
    static size_t lens[MAX_CHUNKS];
    size_t n = 0;
    for (size_t r = 0; r < reps; r++)
        for (size_t off = 0; off < body_len; off += piece) {
            chunks[n] = (const char *)p + off;
            lens[n++] = body_len - off < piece ? body_len - off : piece;
        }
    /* the query the handler must see: every argument, in order, unless that passes the limit */
    size_t want_len = 0;
    for (size_t i = 0; i < nargs; i++)
        want_len += (i > 0) + strlen(args[i].key) + (args[i].value ? 1 + strlen(args[i].value) : 0);
    int query_fits = want_len < HTTP_MAX_BODY;
    char *want = NULL;
    if (query_fits) {
        char *w = want = malloc(want_len + 1);
        CHECK(want != NULL);
        for (size_t i = 0; i < nargs; i++) {
            if (i) *w++ = '&';
            w = stpcpy(w, args[i].key);
            if (args[i].value) *w++ = '=', w = stpcpy(w, args[i].value);
        }
        *w = 0;
    }

    http_response resp;
    memset(&seen, 0, sizeof seen);
    CHECK(http_request_run(handler, &seen, method, path, args, nargs, chunks, lens, n, &resp) == 0);
    CHECK(resp.content_type != NULL);
    size_t total = reps * body_len;
    if (total > HTTP_MAX_BODY) {
        CHECK(resp.status == 413 && seen.calls == 0);
    } else if (!allowed(method)) {
        CHECK(resp.status == 405 && seen.calls == 0);
    } else {
        CHECK(seen.calls == 1);
        CHECK(!strcmp(seen.method, method) && !strcmp(seen.path, path));
        CHECK(seen.len == total);
        for (size_t r = 0; r < reps; r++)
            CHECK(!memcmp(seen.body + r * body_len, p, body_len));
        if (query_fits)
            CHECK(!strcmp(seen.query, want));
        else
            CHECK(seen.query[0] == 0);
    }
    rt_buf_free(&resp.body);
    free(want);
    free(seen.method);
    free(seen.path);
    free(seen.query);
    free(seen.body);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(method);
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!metrics) setup();
    if (size == 0) return 0;
    unsigned ctl = data[0];
    data++;
    size--;
    if (ctl == 0xff && over_socket)
        send_raw(data, size);
    else
        in_process(ctl, data, size);
    char *plan = malloc(size + 1);
    CHECK(plan != NULL);
    memcpy(plan, data, size);
    plan[size] = 0;
    rt_buf out;
    rt_buf_init(&out, (size_t)16 << 20);
    documents(plan, &out);
    rt_buf_free(&out);
    free(plan);
    return 0;
}
