/* libFuzzer target: the REST API's request handling.
 *
 * The job driver's REST handler (jobs/job_run.c) is static, so this target drives the two public
 * halves it is made of:
 *   - the HTTP server (ops/http.c over libmicrohttpd), started once on 127.0.0.1 port 0. When the
 *     control byte's low bit is set, the rest of the input is sent as raw bytes over a fresh
 *     connection (then the write side is shut, and the answer read to the end). The handler
 *     checks what the server promises: an allowed method, a body of at most HTTP_MAX_BODY bytes,
 *     NUL-terminated; and it answers with the status documents built from the body.
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
static rt_metrics_snap prev, cur;
static http_server *server;
static int port;

/* ops_* output: must be JSON when they succeed (-1 is allowed: a plan that is not JSON). */
static void documents(const char *plan, rt_buf *out)
{
    ops_job_info info = {.id = "blue.flat-output", .job = "flat-output", .run_id = "0000abcd",
                         .state = "RUNNING", .start_time_ms = 1600000000000,
                         .now_ms = 1600000005000, .checkpoint_store = "/tmp/ckpt",
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

static void handler(void *arg, const char *method, const char *path, const char *query,
                    const char *body, size_t len, http_response *resp)
{
    (void)arg;
    CHECK(!strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "POST") ||
          !strcmp(method, "PUT") || !strcmp(method, "PATCH"));
    CHECK(path != NULL && query != NULL);
    CHECK(len <= HTTP_MAX_BODY && body[len] == 0);
    if (!strcmp(path, "/metrics")) {
        resp->content_type = "text/plain; version=0.0.4";
        CHECK(rt_metrics_format_prometheus_rates(&cur, &prev, &resp->body) == 0);
        return;
    }
    documents(len ? body : NULL, &resp->body);
    if (resp->body.len == 0) resp->status = 404;
}

static void cleanup(void)
{
    http_server_stop(server);
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
    for (int i = 0; i < 5; i++) rt_counter_add(c[i], 10 * (i + 1));
    for (int i = 0; i < 7; i++) rt_gauge_set(g[i], 1600000000000 + i);
    CHECK(rt_metrics_snapshot(metrics, &cur) == 0);
    char err[256];
    CHECK(http_server_start("127.0.0.1", 0, handler, NULL, &server, &port, err, sizeof err) == 0);
    atexit(cleanup);
}

static void send_raw(const uint8_t *data, size_t size)
{
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
        for (ssize_t i = 0; i < n && got + (size_t)i < sizeof head; i++) head[got + (size_t)i] = buf[i];
        got += (size_t)n;
    }
    /* whatever the server says is HTTP */
    if (got >= 7) CHECK(!memcmp(head, "HTTP/1.", 7));
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server) setup();
    if (size == 0) return 0;
    int over_socket = data[0] & 1;
    data++;
    size--;
    if (over_socket) send_raw(data, size);
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
