/* logproc list | savepoint JOB | stop JOB | cancel JOB: control of running jobs through their
 * REST API (the Flink endpoints of jobs/job_run.c), found in the job's control directory
 * (jobs/job_control.h: <name>.rest) or named with --rest. A job without a REST API
 * (--restPort -1, or its port taken) is reached through the control files instead. A job is named
 * by its job name and --jobLabel, as `logproc run` names its consumer group ("flat-output",
 * "blue.flat-output").
 *
 *   logproc list                                  the live jobs: pid, REST url, state
 *   logproc savepoint JOB [--savepointPath P]     every task writes a savepoint; prints its path
 *   logproc stop JOB [--savepoint [--savepointPath P]] [--drain]
 *                                                 savepoint (optional), then stop; a stop keeps
 *                                                 state in a final checkpoint (drain: closes
 *                                                 every window first)
 *   logproc cancel JOB                            ends the job at once: nothing after its last
 *                                                 checkpoint is published; a restart resumes
 *                                                 from that checkpoint
 * Over HTTP: POST /jobs/<id>/savepoints, POST /jobs/<id>/stop, PATCH /jobs/<id>?mode=cancel,
 * GET /jobs. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli/cli.h"
#include "jobs/job_control.h"
#include "jobs/job_flags.h"
#include "runtime/flags.h"

typedef struct control_opts {
    char *jobLabel;
    char *controlDir;
    char *savepointPath;
    char *rest;
    bool savepoint;
    bool drain;
    int64_t timeout;
} control_opts;

static control_opts opts;

static const flag_def control_flags[] = {
    {"jobLabel", NULL, FLAG_STRING, "live", offsetof(control_opts, jobLabel),
     "the job's --jobLabel", 0},
    {"controlDir", NULL, FLAG_STRING, NULL, offsetof(control_opts, controlDir),
     "the job's --controlDir (default $TMPDIR/logproc-control)", 0},
    {"savepointPath", "savepointDir", FLAG_STRING, NULL, offsetof(control_opts, savepointPath),
     "where the savepoint goes (a directory or s3:// prefix); default: the job's --savepointDir, "
     "else <output root>/savepoints/<job>/savepoint-<time>", 0},
    {"rest", NULL, FLAG_STRING, NULL, offsetof(control_opts, rest),
     "the job's REST API (http://127.0.0.1:8081/); default: the url the job published in its "
     "control directory, else the control files", 0},
    {"savepoint", NULL, FLAG_BOOL, NULL, offsetof(control_opts, savepoint),
     "stop: write a savepoint first", 0},
    {"drain", NULL, FLAG_BOOL, NULL, offsetof(control_opts, drain),
     "stop: drain (fire every timer, close every window) before stopping", 0},
    {"timeout", NULL, FLAG_DURATION, "PT10M", offsetof(control_opts, timeout),
     "how long to wait for the job", 0},
};

static int parse(const char *cmd, int argc, char **argv, int want_job, char *job, size_t cap)
{
    flag_table tables[] = {FLAG_TABLE(cmd, control_flags, &opts)};
    char *pos[2];
    size_t npos = 0;
    bool help = false;
    char err[512];
    if (flags_parse(tables, 1, argc - 1, argv + 1, pos, 2, &npos, &help, err, sizeof err) < 0) {
        fprintf(stderr, "logproc %s: %s\n", cmd, err);
        return 2;
    }
    if (help) {
        char usage[128];
        snprintf(usage, sizeof usage, "logproc %s%s [flags]", cmd, want_job ? " JOB" : "");
        flags_help(stdout, usage, tables, 1);
        return 0;
    }
    if ((size_t)want_job != npos) {
        fprintf(stderr, "logproc %s: %s\n", cmd,
                want_job ? "name the job (raw-output, flat-output, counter, content-metrics)"
                         : "takes no argument");
        return 2;
    }
    if (want_job) job_label_prefix(opts.jobLabel, pos[0], job, cap);
    return -1;
}

static void dir_of(char *buf, size_t cap)
{
    jctl_default_dir(opts.controlDir, buf, cap);
}

/* ---- HTTP ---- */

#define REPLY_MAX (1 << 20)

typedef struct reply_buf {
    char *data;
    size_t len;
    int over;
} reply_buf;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    reply_buf *b = arg;
    size_t len = size * n;
    if (b->len + len >= REPLY_MAX) {
        b->over = 1;
        return 0;
    }
    char *grown = realloc(b->data, b->len + len + 1);
    if (!grown) return 0;
    b->data = grown;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = 0;
    return len;
}

/* One request to base + path. Returns the HTTP status (0: no answer: err says why); *body gets
 * the answer (malloc'd, NUL-terminated; NULL when none). */
static long http_call(const char *method, const char *base, const char *path, const char *json,
                      int timeout_ms, char **body, char *err, size_t errlen)
{
    *body = NULL;
    char url[4500];
    size_t bl = strlen(base);
    snprintf(url, sizeof url, "%s%s%s", base, bl && base[bl - 1] == '/' ? "" : "/",
             path[0] == '/' ? path + 1 : path);
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "curl: cannot start");
        return 0;
    }
    reply_buf b = {0};
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (json) curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    long status = 0;
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    } else {
        snprintf(err, errlen, "%.10s %.700s: %.300s", method, url,
                 b.over ? "answer over 1 MiB" : cerr[0] ? cerr : curl_easy_strerror(cc));
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (status) *body = b.data;
    else free(b.data);
    return status;
}

/* A string member of a JSON answer, or def. */
static const char *member(json_t *j, const char *name, const char *def)
{
    json_t *v = j ? json_object_get(j, name) : NULL;
    return json_is_string(v) ? json_string_value(v) : def;
}

/* The job's REST url: --rest, else the one it published. Returns 0, or 1 when it has none. */
static int rest_of(const char *dir, const char *job, char *buf, size_t cap)
{
    if (opts.rest && *opts.rest) {
        snprintf(buf, cap, "%s", opts.rest);
        return 0;
    }
    return jctl_rest_url(dir, job, buf, cap);
}

/* Waits until the job at base stops answering (its process ended), up to the timeout. */
static int wait_rest_gone(const char *base, const char *job, int timeout_ms, char *err, size_t errlen)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *body, why[512];
        long st = http_call("GET", base, "healthz", NULL, 2000, &body, why, sizeof why);
        free(body);
        if (!st) return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= timeout_ms) {
            snprintf(err, errlen, "job %s at %s still answers after %d ms", job, base, timeout_ms);
            return -1;
        }
        nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
    }
}

/* After a stop or cancel: the process is gone (by its pid when local, else by its REST API). */
static int wait_gone(const char *cmd, const char *dir, const char *job, const char *base)
{
    char err[1024];
    /* a job named by --rest may run elsewhere: its REST API tells; else its pid does */
    int rc = base && opts.rest && *opts.rest
                 ? wait_rest_gone(base, job, (int)opts.timeout, err, sizeof err)
                 : jctl_wait_exit(dir, job, (int)opts.timeout, err, sizeof err);
    if (rc) fprintf(stderr, "logproc %s: %s\n", cmd, err);
    return rc ? 1 : 0;
}

/* POSTs body to jobs/<job>/<what>; prints the answer's detail member. Returns 0 or 1. */
static int rest_post(const char *cmd, const char *base, const char *job, const char *what,
                     json_t *body, const char *detail)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char path[700], err[1200], *answer;
    snprintf(path, sizeof path, "jobs/%s/%s", job, what);
    long st = text ? http_call("POST", base, path, text, (int)opts.timeout, &answer, err, sizeof err) : 0;
    free(text);
    if (!st) {
        fprintf(stderr, "logproc %s: job %s: %s\n", cmd, job, err);
        return 1;
    }
    json_error_t je;
    json_t *j = answer ? json_loads(answer, 0, &je) : NULL;
    int ok = st >= 200 && st < 300;
    if (ok) printf("%s\n", member(j, detail, "ok"));
    else
        fprintf(stderr, "logproc %s: job %s: HTTP %ld: %s\n", cmd, job, st,
                member(j, "error", answer ? answer : ""));
    json_decref(j);
    free(answer);
    return ok ? 0 : 1;
}

/* ---- the commands ---- */

typedef struct list_ctx {
    const char *dir;
    int n;
} list_ctx;

static void print_job(void *arg, const char *name, long pid)
{
    list_ctx *lc = arg;
    char base[512], state[64] = "-", *body = NULL, err[512];
    int has_rest = jctl_rest_url(lc->dir, name, base, sizeof base) == 0;
    if (has_rest) {
        char path[600];
        snprintf(path, sizeof path, "jobs/%s", name);
        long st = http_call("GET", base, path, NULL, 5000, &body, err, sizeof err);
        json_error_t je;
        json_t *j = st == 200 && body ? json_loads(body, 0, &je) : NULL;
        snprintf(state, sizeof state, "%s", st ? member(j, "state", "?") : "UNREACHABLE");
        json_decref(j);
        free(body);
    }
    printf("%-40s pid %-8ld %-12s %s\n", name, pid, state, has_rest ? base : "(no REST API)");
    lc->n++;
}

int cli_list(int argc, char **argv)
{
    char job[8];
    int rc = parse("list", argc, argv, 0, job, sizeof job);
    if (rc >= 0) return rc;
    if (opts.rest && *opts.rest) {
        char *body, err[1024];
        long st = http_call("GET", opts.rest, "jobs", NULL, (int)opts.timeout, &body, err, sizeof err);
        if (st != 200) {
            fprintf(stderr, "logproc list: %s\n", st ? "GET /jobs failed" : err);
            free(body);
            return 1;
        }
        json_error_t je;
        json_t *j = json_loads(body, 0, &je), *jobs = j ? json_object_get(j, "jobs") : NULL;
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            json_t *e = json_array_get(jobs, i);
            printf("%-40s %-12s %s\n", member(e, "id", "?"), member(e, "status", "?"), opts.rest);
        }
        json_decref(j);
        free(body);
        return 0;
    }
    char dir[4096];
    dir_of(dir, sizeof dir);
    list_ctx lc = {.dir = dir};
    if (jctl_list(dir, print_job, &lc) == 0) printf("no running job (control directory %s)\n", dir);
    return 0;
}

static int ctl_send(const char *cmd, const char *job, const char *request)
{
    char dir[4096], reply[4096], err[4096];
    dir_of(dir, sizeof dir);
    if (jctl_send(dir, job, request, (int)opts.timeout, reply, sizeof reply, err, sizeof err)) {
        fprintf(stderr, "logproc %s: %s\n", cmd, err);
        return 1;
    }
    /* "ok <detail>" */
    printf("%s\n", reply[2] == ' ' ? reply + 3 : reply);
    return 0;
}

int cli_savepoint(int argc, char **argv)
{
    char job[512];
    int rc = parse("savepoint", argc, argv, 1, job, sizeof job);
    if (rc >= 0) return rc;
    char dir[4096], base[4096];
    dir_of(dir, sizeof dir);
    if (rest_of(dir, job, base, sizeof base) == 0) {
        json_t *b = json_object();
        json_object_set_new(b, "target-directory",
                            json_string(opts.savepointPath ? opts.savepointPath : ""));
        return rest_post("savepoint", base, job, "savepoints", b, "location");
    }
    char req[4200];
    snprintf(req, sizeof req, "savepoint %s", opts.savepointPath ? opts.savepointPath : "");
    return ctl_send("savepoint", job, req);
}

int cli_stop(int argc, char **argv)
{
    char job[512];
    int rc = parse("stop", argc, argv, 1, job, sizeof job);
    if (rc >= 0) return rc;
    char dir[4096], base[4096];
    dir_of(dir, sizeof dir);
    if (rest_of(dir, job, base, sizeof base) == 0) {
        json_t *b = json_object();
        json_object_set_new(b, "targetDirectory",
                            json_string(opts.savepoint && opts.savepointPath ? opts.savepointPath : ""));
        json_object_set_new(b, "savepoint", json_boolean(opts.savepoint));
        json_object_set_new(b, "drain", json_boolean(opts.drain));
        rc = rest_post("stop", base, job, "stop", b, "detail");
        /* the answer comes when the stop (and savepoint) is under way: wait for the process */
        return rc ? rc : wait_gone("stop", dir, job, base);
    }
    char req[4200];
    if (opts.savepoint)
        snprintf(req, sizeof req, "stop-savepoint %s", opts.savepointPath ? opts.savepointPath : "");
    else
        snprintf(req, sizeof req, "%s", opts.drain ? "stop-drain" : "stop");
    rc = ctl_send("stop", job, req);
    return rc ? rc : wait_gone("stop", dir, job, NULL);
}

int cli_cancel(int argc, char **argv)
{
    char job[512];
    int rc = parse("cancel", argc, argv, 1, job, sizeof job);
    if (rc >= 0) return rc;
    char dir[4096], base[4096], err[1024];
    dir_of(dir, sizeof dir);
    if (rest_of(dir, job, base, sizeof base) == 0) {
        char path[600], *body;
        snprintf(path, sizeof path, "jobs/%s?mode=cancel", job);
        long st = http_call("PATCH", base, path, NULL, (int)opts.timeout, &body, err, sizeof err);
        free(body);
        /* the process may end before its answer leaves: no answer is fine if it is gone */
        if (st && (st < 200 || st >= 300)) {
            fprintf(stderr, "logproc cancel: job %s: HTTP %ld\n", job, st);
            return 1;
        }
        if (wait_gone("cancel", dir, job, base)) return 1;
        printf("cancelled %s\n", job);
        return 0;
    }
    if (jctl_cancel(dir, job, (int)opts.timeout, err, sizeof err)) {
        fprintf(stderr, "logproc cancel: %s\n", err);
        return 1;
    }
    printf("cancelled %s\n", job);
    return 0;
}
