#include "ops/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct http_server {
    struct MHD_Daemon *d;
    http_handler h;
    void *arg;
};

/* The body of a request, collected over the upload callbacks. */
typedef struct conn_body {
    char buf[HTTP_MAX_BODY + 1];
    size_t len;
    int too_big;
} conn_body;

static enum MHD_Result send_text(struct MHD_Connection *c, int status, const char *ct,
                                 const void *data, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ct);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

/* The query arguments joined as "k=v&k=v", within HTTP_MAX_BODY bytes. Once an append fails
 * the query is over the limit and stays so: skipping that piece and going on with shorter ones
 * would hand the handler arguments with their values or keys left out. */
typedef struct query_buf {
    rt_buf b;
    int over;
} query_buf;

static void query_add(query_buf *q, const char *key, const char *value)
{
    if (q->over) return;
    if ((q->b.len && rt_buf_append(&q->b, "&", 1)) || rt_buf_append(&q->b, key, strlen(key)) ||
        (value && (rt_buf_append(&q->b, "=", 1) || rt_buf_append(&q->b, value, strlen(value)))))
        q->over = 1;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    query_add(cls, key, value);
    return MHD_YES;
}

/* One upload piece of a request's body: kept while the body stays within HTTP_MAX_BODY. */
static void body_add(conn_body *b, const char *upload, size_t n)
{
    if (b->len + n > HTTP_MAX_BODY)
        b->too_big = 1;
    else
        memcpy(b->buf + b->len, upload, n), b->len += n;
}

/* The answer to a complete request (body collected, query arguments in q without their NUL):
 * 413, 405, or the handler's. resp->body is initialised here; content_type is never NULL. */
static void answer(http_handler h, void *arg, const char *method, const char *url, query_buf *q,
                   conn_body *b, http_response *resp)
{
    static const char big[] = "{\"errors\":[\"request body over 65536 bytes\"]}\n";
    static const char bad[] = "{\"errors\":[\"method not allowed\"]}\n";
    resp->status = 200;
    resp->content_type = NULL;
    rt_buf_init(&resp->body, HTTP_MAX_RESPONSE);
    if (b->too_big || (strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "POST") &&
                       strcmp(method, "PUT") && strcmp(method, "PATCH"))) {
        resp->status = b->too_big ? 413 : 405;
        resp->content_type = "application/json";
        if (b->too_big)
            rt_buf_append(&resp->body, big, sizeof big - 1);
        else
            rt_buf_append(&resp->body, bad, sizeof bad - 1);
        return;
    }
    b->buf[b->len] = 0;
    /* a query over the limit (or without room for its NUL) reaches the handler empty */
    int whole = !q->over && rt_buf_append(&q->b, "", 1) == 0;
    h(arg, method, url, whole ? (const char *)q->b.data : "", b->buf, b->len, resp);
    if (!resp->content_type) resp->content_type = "application/json";
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    http_server *s = cls;
    if (!*state) {
        conn_body *b = calloc(1, sizeof *b);
        if (!b) return MHD_NO;
        *state = b;
        return MHD_YES;
    }
    conn_body *b = *state;
    if (*upload_size) {
        body_add(b, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    query_buf q = {.over = 0};
    rt_buf_init(&q.b, HTTP_MAX_BODY);
    if (!b->too_big) MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &q);
    http_response resp;
    answer(s->h, s->arg, method, url, &q, b, &resp);
    rt_buf_free(&q.b);
    enum MHD_Result rc =
        send_text(c, resp.status, resp.content_type,
                  resp.body.data ? (const void *)resp.body.data : "", resp.body.len);
    rt_buf_free(&resp.body);
    return rc;
}

int http_request_run(http_handler h, void *arg, const char *method, const char *url,
                     const http_arg *args, size_t nargs, const char *const *chunks,
                     const size_t *lens, size_t nchunks, http_response *resp)
{
    conn_body *b = calloc(1, sizeof *b);
    if (!b) return -1;
    for (size_t i = 0; i < nchunks; i++)
        if (lens[i]) body_add(b, chunks[i], lens[i]);
    query_buf q = {.over = 0};
    rt_buf_init(&q.b, HTTP_MAX_BODY);
    if (!b->too_big)
        for (size_t i = 0; i < nargs; i++)
            query_add(&q, args[i].key, args[i].value);
    answer(h, arg, method, url, &q, b, resp);
    rt_buf_free(&q.b);
    free(b);
    return 0;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    free(*state);
    *state = NULL;
}

int http_server_start(const char *addr, int port, http_handler h, void *arg, http_server **out,
                      int *bound, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "--restAddress %s: not an IPv4 address", addr);
        return -1;
    }
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "http: out of memory");
        return -1;
    }
    s->h = h;
    s->arg = arg;
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024), MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen, "http: cannot listen on %s:%d (in use?)", addr, port);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = info ? info->port : port;
    *out = s;
    return 0;
}

void http_server_stop(http_server *s)
{
    if (!s) return;
    MHD_stop_daemon(s->d);
    free(s);
}
