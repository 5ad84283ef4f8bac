/* The embedded HTTP server (libmicrohttpd) behind the REST API and /metrics: one thread per
 * connection, loopback unless told otherwise, small requests only.
 *
 * The server parses nothing but the method, the path and a bounded body; the handler (the job
 * driver's REST API) answers. Requests with a body over HTTP_MAX_BODY bytes get 413, methods
 * other than GET, HEAD, POST, PUT and PATCH get 405, and the handler's answer is sent as it is. */
#ifndef LOGPROC_HTTP_H
#define LOGPROC_HTTP_H

#include <stddef.h>

#include "runtime/buf.h"

#define HTTP_MAX_BODY (64 * 1024)
#define HTTP_MAX_RESPONSE ((size_t)64 << 20)

typedef struct http_response {
    int status;               /* 200 unless set */
    const char *content_type; /* static string; NULL: application/json */
    rt_buf body;              /* limited to HTTP_MAX_RESPONSE */
} http_response;

/* Answers one request; query is the decoded query arguments as "k=v&k=v" ("" when none, and
 * when they would pass HTTP_MAX_BODY bytes), body is NUL-terminated (len bytes, possibly 0).
 * Runs on the connection's thread: it may block (a savepoint) and must be thread-safe. Methods reaching it: GET, HEAD, POST, PUT and PATCH; it
 * answers 405 itself for the ones a path does not take. */
typedef void (*http_handler)(void *arg, const char *method, const char *path, const char *query,
                             const char *body, size_t len, http_response *resp);

typedef struct http_server http_server;

/* Listens on addr:port (port 0: any free port; *bound gets the port). Returns 0, or -1 with err
 * naming the address (in use, bad address). */
int http_server_start(const char *addr, int port, http_handler h, void *arg, http_server **out,
                      int *bound, char *err, size_t errlen);
/* Stops the server (waits for the connections' threads). NULL is a no-op. */
void http_server_stop(http_server *s);

/* ---- one request in process (the fuzz target, tests) ---- */

typedef struct http_arg {
    const char *key;   /* decoded, NUL-terminated */
    const char *value; /* NULL: the argument had no '=' */
} http_arg;

/* Runs one request through what the server does once libmicrohttpd has parsed it, with no socket
 * and no thread: the body, given as nchunks upload pieces, is kept within HTTP_MAX_BODY (else
 * 413), the method is checked (else 405), the query arguments are joined as "k=v&k=v" (limited
 * to HTTP_MAX_BODY bytes) and h answers. resp gets what the server would send: status, content
 * type (never NULL: a static string) and body, which the caller frees (rt_buf_free). Cost: one
 * allocation of HTTP_MAX_BODY bytes, plus the handler. Returns 0, or -1 when out of memory
 * (resp untouched). */
int http_request_run(http_handler h, void *arg, const char *method, const char *url,
                     const http_arg *args, size_t nargs, const char *const *chunks,
                     const size_t *lens, size_t nchunks, http_response *resp);

#endif
