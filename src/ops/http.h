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

/* Answers one request; query is the decoded query arguments as "k=v&k=v" ("" when none), body
 * is NUL-terminated (len bytes, possibly 0). Runs on the connection's thread: it may block (a
 * savepoint) and must be thread-safe. Methods reaching it: GET, HEAD, POST, PUT and PATCH; it
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

#endif
