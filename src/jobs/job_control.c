#include "jobs/job_control.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_CAP 4096
#define LINE_CAP 4096

struct jctl {
    char pid_path[PATH_CAP], req_path[PATH_CAP], reply_path[PATH_CAP], rest_path[PATH_CAP];
    char arg[LINE_CAP];
    long owner; /* the pid in the pid file: this process, or its supervisor */
};

static volatile sig_atomic_t g_stop, g_request;

static void on_stop(int sig)
{
    (void)sig;
    if (g_stop) _exit(130); /* a second signal: the operator insists */
    g_stop = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    g_request = 1;
}

void jctl_default_dir(const char *dir, char *buf, size_t cap)
{
    if (dir && *dir) {
        snprintf(buf, cap, "%s", dir);
        return;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, cap, "%s/logproc-control", tmp && *tmp ? tmp : "/tmp");
}

static int write_atomic(const char *path, const char *text)
{
    char tmp[PATH_CAP + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *r = fgets(buf, (int)cap, f);
    fclose(f);
    if (!r) return -1;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

static long read_pid(const char *path)
{
    char line[64];
    if (read_line(path, line, sizeof line)) return -1;
    char *end;
    long pid = strtol(line, &end, 10);
    return end != line && pid > 0 ? pid : -1;
}

/* The process is gone: no such pid, or a zombie its parent has not reaped yet. */
static int dead(long pid)
{
    if (kill((pid_t)pid, 0)) return 1;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')'); /* "pid (comm) S ..." */
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static void paths(const char *dir, const char *name, char *pid, char *req, char *reply)
{
    snprintf(pid, PATH_CAP, "%s/%s.pid", dir, name);
    snprintf(req, PATH_CAP, "%s/%s.request", dir, name);
    snprintf(reply, PATH_CAP, "%s/%s.reply", dir, name);
}

int jctl_open(const char *dir, const char *name, long owner, jctl **out, char *err, size_t errlen)
{
    if (owner <= 0) owner = (long)getpid();
    jctl *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "control: out of memory");
        return -1;
    }
    if (mkdir(dir, 0700) && errno != EEXIST) {
        snprintf(err, errlen, "control directory %s: %s", dir, strerror(errno));
        free(c);
        return -1;
    }
    paths(dir, name, c->pid_path, c->req_path, c->reply_path);
    long other = read_pid(c->pid_path);
    if (other > 0 && other != owner && kill((pid_t)other, 0) == 0) {
        snprintf(err, errlen,
                 "control: job %s already runs as pid %ld (%s); give another --jobLabel or "
                 "--controlDir",
                 name, other, c->pid_path);
        free(c);
        return -1;
    }
    char line[32];
    snprintf(line, sizeof line, "%ld\n", owner);
    c->owner = owner;
    if (write_atomic(c->pid_path, line)) {
        snprintf(err, errlen, "control: writing %s: %s", c->pid_path, strerror(errno));
        free(c);
        return -1;
    }
    unlink(c->reply_path);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    *out = c;
    return 0;
}

jctl_kind jctl_poll(jctl *c, const char **arg)
{
    *arg = NULL;
    if (g_stop == 1) {
        g_stop = 2; /* reported once; a second signal still exits at once */
        return JCTL_STOP;
    }
    if (!g_request) return JCTL_NONE;
    g_request = 0;
    char line[LINE_CAP];
    if (read_line(c->req_path, line, sizeof line)) return JCTL_NONE;
    unlink(c->req_path);
    if (!strcmp(line, "stop")) return JCTL_STOP;
    if (!strcmp(line, "stop-drain")) return JCTL_STOP_DRAIN;
    if (!strcmp(line, "savepoint") || !strcmp(line, "stop-savepoint")) strcat(line, " ");
    if (!strncmp(line, "savepoint ", 10)) {
        snprintf(c->arg, sizeof c->arg, "%s", line + 10);
        *arg = c->arg;
        return JCTL_SAVEPOINT;
    }
    if (!strncmp(line, "stop-savepoint ", 15)) {
        snprintf(c->arg, sizeof c->arg, "%s", line + 15);
        *arg = c->arg;
        return JCTL_STOP_SAVEPOINT;
    }
    jctl_reply(c, 0, "unknown request");
    return JCTL_NONE;
}

void jctl_reply(jctl *c, int ok, const char *text)
{
    char line[LINE_CAP + 16];
    snprintf(line, sizeof line, "%s %s\n", ok ? "ok" : "error", text);
    (void)write_atomic(c->reply_path, line);
}

int jctl_set_rest(jctl *c, const char *url)
{
    snprintf(c->rest_path, sizeof c->rest_path, "%.*s.rest", (int)(strlen(c->pid_path) - 4),
             c->pid_path);
    char line[LINE_CAP];
    snprintf(line, sizeof line, "%s\n", url);
    return write_atomic(c->rest_path, line);
}

int jctl_rest_url(const char *dir, const char *name, char *buf, size_t cap)
{
    char pidp[PATH_CAP], reqp[PATH_CAP], repp[PATH_CAP], restp[PATH_CAP + 8];
    paths(dir, name, pidp, reqp, repp);
    snprintf(restp, sizeof restp, "%s/%s.rest", dir, name);
    long pid = read_pid(pidp);
    if (pid <= 0 || dead(pid) || read_line(restp, buf, cap) || !*buf) return 1;
    return 0;
}

void jctl_close(jctl *c)
{
    if (!c) return;
    if (read_pid(c->pid_path) == c->owner) {
        unlink(c->pid_path);
        if (c->rest_path[0]) unlink(c->rest_path);
    }
    free(c);
}

static void nap(void)
{
    nanosleep(&(struct timespec){0, 20 * 1000000}, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long live_pid(const char *dir, const char *name, char *pid_path, char *err, size_t errlen)
{
    long pid = read_pid(pid_path);
    if (pid <= 0 || dead(pid)) {
        snprintf(err, errlen, "no running job %s (no live pid in %s)", name, pid_path);
        return -1;
    }
    (void)dir;
    return pid;
}

int jctl_send(const char *dir, const char *name, const char *request, int timeout_ms, char *reply,
              size_t cap, char *err, size_t errlen)
{
    char pidp[PATH_CAP], reqp[PATH_CAP], repp[PATH_CAP];
    paths(dir, name, pidp, reqp, repp);
    long pid = live_pid(dir, name, pidp, err, errlen);
    if (pid < 0) return -1;
    unlink(repp);
    char line[LINE_CAP];
    snprintf(line, sizeof line, "%s\n", request);
    if (write_atomic(reqp, line) || kill((pid_t)pid, SIGUSR1)) {
        snprintf(err, errlen, "sending the request to job %s (pid %ld): %s", name, pid,
                 strerror(errno));
        return -1;
    }
    /* the reply is a file the job renames into place: poll for it, up to the deadline */
    int64_t until = mono_ms() + timeout_ms;
    while (mono_ms() < until) {
        if (!read_line(repp, reply, cap)) {
            unlink(repp);
            if (!strncmp(reply, "ok", 2)) return 0;
            snprintf(err, errlen, "job %s: %s", name, reply);
            return -1;
        }
        if (dead(pid)) {
            if (!read_line(repp, reply, cap) && !strncmp(reply, "ok", 2)) return 0;
            snprintf(err, errlen, "job %s (pid %ld) exited without a reply", name, pid);
            return -1;
        }
        nap();
    }
    snprintf(err, errlen, "job %s: no reply within %d ms", name, timeout_ms);
    return -1;
}

static int wait_gone(long pid, const char *name, int timeout_ms, char *err, size_t errlen)
{
    int64_t until = mono_ms() + timeout_ms;
    while (mono_ms() < until) {
        if (dead(pid)) return 0;
        nap();
    }
    snprintf(err, errlen, "job %s (pid %ld) still runs after %d ms", name, pid, timeout_ms);
    return -1;
}

int jctl_wait_exit(const char *dir, const char *name, int timeout_ms, char *err, size_t errlen)
{
    char pidp[PATH_CAP], reqp[PATH_CAP], repp[PATH_CAP];
    paths(dir, name, pidp, reqp, repp);
    long pid = read_pid(pidp);
    if (pid <= 0) return 0;
    return wait_gone(pid, name, timeout_ms, err, errlen);
}

int jctl_cancel(const char *dir, const char *name, int timeout_ms, char *err, size_t errlen)
{
    char pidp[PATH_CAP], reqp[PATH_CAP], repp[PATH_CAP];
    paths(dir, name, pidp, reqp, repp);
    long pid = live_pid(dir, name, pidp, err, errlen);
    if (pid < 0) return -1;
    if (kill((pid_t)pid, SIGKILL)) {
        snprintf(err, errlen, "signalling job %s (pid %ld): %s", name, pid, strerror(errno));
        return -1;
    }
    if (wait_gone(pid, name, timeout_ms, err, errlen)) return -1;
    unlink(pidp); /* the job could not remove it */
    return 0;
}

int jctl_list(const char *dir, void (*fn)(void *arg, const char *name, long pid), void *arg)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".pid")) continue;
        char path[PATH_CAP], name[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(name, sizeof name, "%.*s", (int)(len - 4), e->d_name);
        long pid = read_pid(path);
        if (pid <= 0 || dead(pid)) continue;
        fn(arg, name, pid);
        n++;
    }
    closedir(d);
    return n;
}
