#include "jobs/job_supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime/log.h"

static volatile sig_atomic_t g_child;     /* the worker's pid (supervisor side) */
static volatile sig_atomic_t g_stopping;  /* SIGTERM/SIGINT seen: no more restarts */
static int g_restarts;
static long g_supervisor;

int job_restart_count(void)
{
    return g_restarts;
}

long job_supervisor_pid(void)
{
    return g_supervisor;
}

static void forward(int sig)
{
    if (sig == SIGTERM || sig == SIGINT) g_stopping = 1;
    if (g_child > 0) kill((pid_t)g_child, sig);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms, cut short by a stop signal. */
static void pause_ms(int64_t ms)
{
    int64_t until = mono_ms() + ms;
    while (!g_stopping) {
        int64_t left = until - mono_ms();
        if (left <= 0) break;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void install(void (*h)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = h;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int job_supervise(const char *name, const job_restart_opts *o)
{
    if (o->attempts == 0) return -1;
    pid_t me = getpid();
    int failures = 0;
    int64_t delay = o->delay_ms > 0 ? o->delay_ms : 1;
    for (int restarts = 0;; restarts++) {
        fflush(NULL);
        int64_t started = mono_ms();
        pid_t pid = fork();
        if (pid < 0) {
            log_error(name, "supervisor: fork failed: %s; running the job unsupervised", strerror(errno));
            return -1;
        }
        if (pid == 0) {
            /* the worker: end with the supervisor, whatever kills it */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != me) _exit(1);
            install(SIG_DFL);
            /* until the job's control handler is in place, a forwarded SIGUSR1 must not kill it */
            signal(SIGUSR1, SIG_IGN);
            g_restarts = restarts;
            g_supervisor = (long)me;
            return -1;
        }
        g_child = pid;
        install(forward);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        g_child = 0;
        int64_t ran = mono_ms() - started;
        if (WIFEXITED(st)) {
            int code = WEXITSTATUS(st);
            if (code == 0 || code == 2 || code == 137 || g_stopping) return code;
            if (code == JOB_EXIT_NOT_STARTED) return 1;
            log_error(name, "supervisor: the worker (pid %ld) failed with exit status %d after %lld ms",
                      (long)pid, code, (long long)ran);
        } else {
            int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            if (g_stopping) return 128 + sig;
            log_error(name, "supervisor: the worker (pid %ld) was killed by signal %d after %lld ms",
                      (long)pid, sig, (long long)ran);
        }
        if (o->reset_ms > 0 && ran >= o->reset_ms) {
            failures = 0;
            delay = o->delay_ms > 0 ? o->delay_ms : 1;
        }
        if (o->attempts > 0 && failures >= o->attempts) {
            log_error(name, "supervisor: %d consecutive failures (--restartAttempts %lld): giving up",
                      failures, (long long)o->attempts);
            return 1;
        }
        failures++;
        char of[32] = "";
        if (o->attempts > 0) snprintf(of, sizeof of, "/%lld", (long long)o->attempts);
        log_warn(name, "supervisor: restarting from the last checkpoint in %lld ms (attempt %d%s)",
                 (long long)delay, failures, of);
        pause_ms(delay);
        if (g_stopping) return 0;
        delay = delay * 2 > o->max_delay_ms ? o->max_delay_ms : delay * 2;
        if (delay <= 0) delay = 1;
    }
}
