/* Control of a running `logproc run` from `logproc list|savepoint|stop|cancel`: a pid file and a
 * request/reply pair of files in a local control directory, and signals.
 *
 *   <dir>/<name>.pid       "<pid>\n", written atomically at start, removed at exit
 *   <dir>/<name>.request   one line: "savepoint [<url>]", "stop", "stop-drain",
 *                          "stop-savepoint [<url>]" (the client writes it, then sends SIGUSR1;
 *                          without a url the job picks its default savepoint path)
 *   <dir>/<name>.reply     one line: "ok <detail>" or "error <message>" (the job writes it)
 *   <dir>/<name>.rest      "http://<address>:<port>/": the job's REST API, when it has one
 *                          (`logproc list|savepoint|stop|cancel` use it first)
 * where <name> is the job name, with ".<label>" for a labelled job. SIGTERM and SIGINT stop the
 * job without draining (a final checkpoint keeps its state); a second one exits at once.
 * The REST API (job_run.c, --restPort) offers the same operations over HTTP. */
#ifndef LOGPROC_JOB_CONTROL_H
#define LOGPROC_JOB_CONTROL_H

#include <stddef.h>

typedef enum {
    JCTL_NONE = 0,
    JCTL_STOP,           /* stop, keep state (final checkpoint) */
    JCTL_STOP_DRAIN,     /* stop with drain */
    JCTL_SAVEPOINT,      /* arg: url */
    JCTL_STOP_SAVEPOINT, /* arg: url */
} jctl_kind;

typedef struct jctl jctl;

/* The control directory: dir, else $TMPDIR/logproc-control (or /tmp/...). */
void jctl_default_dir(const char *dir, char *buf, size_t cap);

/* Writes the pid file with owner's pid (0: this process; a supervised worker names its
 * supervisor, which passes signals on) and installs the signal handlers. Returns 0 or -1 with err
 * (another live process holds the name: its pid is in the message). */
int jctl_open(const char *dir, const char *name, long owner, jctl **out, char *err, size_t errlen);
/* Returns the next request (JCTL_NONE when none); *arg receives a url for savepoints (owned by
 * the jctl until the next call). Cheap: two atomic loads when nothing happened. */
jctl_kind jctl_poll(jctl *c, const char **arg);
/* Writes the reply to the last request. */
void jctl_reply(jctl *c, int ok, const char *text);
/* Publishes the job's REST API base url ("http://127.0.0.1:8081/") in <dir>/<name>.rest, removed
 * by jctl_close. Returns 0 or -1 (errno). */
int jctl_set_rest(jctl *c, const char *url);
/* Client side: the REST url of the live job called name. Returns 0 (buf set), or 1 when the job
 * is not running or has no REST API. */
int jctl_rest_url(const char *dir, const char *name, char *buf, size_t cap);
/* Removes the pid file (and the REST file). NULL is a no-op. */
void jctl_close(jctl *c);

/* Client side: sends request to the job called name and waits up to timeout_ms for its reply
 * (into reply). Returns 0 (reply "ok ..."), or -1 with err (no such job, dead pid, an "error"
 * reply, no reply in time). */
int jctl_send(const char *dir, const char *name, const char *request, int timeout_ms, char *reply,
              size_t cap, char *err, size_t errlen);
/* Waits until the job's process is gone. Returns 0 or -1 with err (still running at the
 * deadline). */
int jctl_wait_exit(const char *dir, const char *name, int timeout_ms, char *err, size_t errlen);
/* Cancels the job: SIGKILL, then waits for it to go (nothing after its last checkpoint is
 * published; a restart resumes from that checkpoint). Returns 0 or -1 with err. */
int jctl_cancel(const char *dir, const char *name, int timeout_ms, char *err, size_t errlen);
/* Lists the live jobs of dir: fn(arg, name, pid) for each. Returns the count. */
int jctl_list(const char *dir, void (*fn)(void *arg, const char *name, long pid), void *arg);

#endif
