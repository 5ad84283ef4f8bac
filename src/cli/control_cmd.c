/* logproc list | savepoint JOB | stop JOB | cancel JOB: control of running jobs on this machine
 * through their control directory (jobs/job_control.h). A job is named by its job name and
 * --jobLabel, as `logproc run` names its consumer group ("flat-output", "blue.flat-output").
 *
 *   logproc list                                  the live jobs and their pids
 *   logproc savepoint JOB [--savepointPath P]     every task writes a savepoint; prints its path
 *   logproc stop JOB [--savepoint [--savepointPath P]] [--drain]
 *                                                 savepoint (optional), then stop; a stop keeps
 *                                                 state in a final checkpoint (drain: closes
 *                                                 every window first)
 *   logproc cancel JOB                            ends the job at once (SIGKILL): nothing after
 *                                                 its last checkpoint is published; a restart
 *                                                 resumes from that checkpoint
 * The REST API (--restPort) offers the same operations over HTTP. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "jobs/job_control.h"
#include "jobs/job_flags.h"
#include "runtime/flags.h"

typedef struct control_opts {
    char *jobLabel;
    char *controlDir;
    char *savepointPath;
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

static void print_job(void *arg, const char *name, long pid)
{
    (void)arg;
    printf("%-40s pid %ld\n", name, pid);
}

int cli_list(int argc, char **argv)
{
    char job[8];
    int rc = parse("list", argc, argv, 0, job, sizeof job);
    if (rc >= 0) return rc;
    char dir[4096];
    dir_of(dir, sizeof dir);
    if (jctl_list(dir, print_job, NULL) == 0) printf("no running job (control directory %s)\n", dir);
    return 0;
}

static int send(const char *cmd, const char *job, const char *request)
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
    char req[4200];
    snprintf(req, sizeof req, "savepoint %s", opts.savepointPath ? opts.savepointPath : "");
    return send("savepoint", job, req);
}

int cli_stop(int argc, char **argv)
{
    char job[512];
    int rc = parse("stop", argc, argv, 1, job, sizeof job);
    if (rc >= 0) return rc;
    char req[4200];
    if (opts.savepoint)
        snprintf(req, sizeof req, "stop-savepoint %s", opts.savepointPath ? opts.savepointPath : "");
    else
        snprintf(req, sizeof req, "%s", opts.drain ? "stop-drain" : "stop");
    rc = send("stop", job, req);
    if (rc) return rc;
    /* the reply comes when the stop (and savepoint) is under way: wait for the process to go */
    char dir[4096], err[1024];
    dir_of(dir, sizeof dir);
    if (jctl_wait_exit(dir, job, (int)opts.timeout, err, sizeof err)) {
        fprintf(stderr, "logproc stop: %s\n", err);
        return 1;
    }
    return 0;
}

int cli_cancel(int argc, char **argv)
{
    char job[512];
    int rc = parse("cancel", argc, argv, 1, job, sizeof job);
    if (rc >= 0) return rc;
    char dir[4096], err[1024];
    dir_of(dir, sizeof dir);
    if (jctl_cancel(dir, job, (int)opts.timeout, err, sizeof err)) {
        fprintf(stderr, "logproc cancel: %s\n", err);
        return 1;
    }
    printf("cancelled %s\n", job);
    return 0;
}
