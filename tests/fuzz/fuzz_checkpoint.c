/* libFuzzer target: checkpoint files and the state they restore.
 *
 * The input is a control byte, then a checkpoint file (runtime/checkpoint.h). Control bits:
 *   0-1  the job whose graph the state is restored into: raw-output, flat-output,
 *        content-metrics, counter (job_defs order), built with default flags as `logproc run`
 *        builds a task (one source; checkpointing on, so sinks restore their pending parts);
 *   6    the rest is a task snapshot without the envelope (the state itself);
 *   7    repair the envelope's CRC32C first, so mutations get past the checksum and reach the
 *        header and state decoders (without it a fuzzer almost never guesses a CRC).
 * Per input: ckpt_decode; then, as the driver does, rt_task_snapshot_sources on the state and
 * rt_task_restore into a freshly built and opened task: the graph's state decoder (per operator:
 * watermarks, keyed tables, timers) and every operator's restore callback (the joins, the
 * counters, the table sinks). A restored task is snapshotted again. Errors must have a text.
 *
 * Nothing may touch files: a sink's restore links and unlinks the paths its snapshot names, so
 * this target replaces link, unlink and rename (see below; the finding is in
 * docs/RELIABILITY.md). Graph open only creates empty directories under a temporary directory,
 * removed at exit.
 *
 *   fuzz_checkpoint -max_len=65536 CORPUS_DIR */
#include <errno.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "formats/crc32c.h"
#include "jobs/job.h"
#include "runtime/checkpoint.h"
#include "runtime/task.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

#define NJOBS 4

static char tmpdir[64];
static size_t tmplen;

/* ---- file operations: none ----
 * Restoring publishes: link(pending, final) then unlink(pending), for paths the snapshot names.
 * Here they only pretend to succeed for paths under tmpdir (so the restore goes on to the next
 * operators, as it would after a crash whose parts exist) and fail for any other path, so a
 * fuzzed checkpoint can never move a file. */

static int inside(const char *p)
{
    return tmplen && p && !strncmp(p, tmpdir, tmplen) && p[tmplen] == '/' && !strstr(p, "/..");
}

int link(const char *from, const char *to)
{
    if (!inside(from) || !inside(to)) {
        errno = EACCES;
        return -1;
    }
    return 0;
}

int unlink(const char *path)
{
    if (!inside(path)) {
        errno = EACCES;
        return -1;
    }
    return 0;
}

int rename(const char *from, const char *to)
{
    if (!inside(from) || !inside(to)) {
        errno = EACCES;
        return -1;
    }
    return 0;
}

/* ---- the jobs, with their flags parsed once ---- */

typedef struct job {
    const job_def *def;
    job_common_opts c;
    void *opts;
    flag_table t[2];
} job;

static job jobs[NJOBS];

static int empty_next(rt_source *s, rt_source_record *out, char *err, size_t errlen)
{
    return RT_SOURCE_END;
}

static int64_t zero_position(const rt_source *s)
{
    return 0;
}

static rt_source source = {.name = "fuzz.rec", .partition = -1, .finite = 1,
                           .next = empty_next, .position = zero_position};

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return (int)syscall(flag == FTW_DP ? SYS_rmdir : SYS_unlink, p);
}

static void cleanup(void)
{
    for (int i = 0; i < NJOBS; i++) {
        flags_free(jobs[i].t, 2);
        jobs[i].def->free_opts(jobs[i].opts);
    }
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/logproc-fuzz-ckpt-XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    tmplen = strlen(tmpdir);
    static const char *const names[NJOBS] = {"raw-output", "flat-output", "content-metrics",
                                             "counter"};
    for (int i = 0; i < NJOBS; i++) {
        job *j = &jobs[i];
        CHECK((j->def = job_find(names[i])) != NULL);
        j->t[0] = job_flags_common_table(&j->c);
        CHECK(j->def->new_opts(&j->opts, &j->t[1]) == 0);
        char out[128], staging[128];
        snprintf(out, sizeof out, "--s3Directory=%s/%s", tmpdir, names[i]);
        snprintf(staging, sizeof staging, "--localStagingDir=%s/staging", tmpdir);
        static const char *const extra[NJOBS] = {NULL, NULL, "--outputCsv",
                                                 "--counterOutputStartTimestamp=0"};
        /* with a --source file, topic sinks write record files instead of going to Kafka */
        char src[128];
        snprintf(src, sizeof src, "--source=%s/in.rec", tmpdir);
        char *argv[4] = {out, staging, src, (char *)extra[i]};
        int argc = extra[i] ? 4 : 3;
        char *pos[1];
        size_t npos;
        bool help;
        char err[512];
        if (flags_parse(j->t, 2, argc, argv, pos, 1, &npos, &help, err, sizeof err)) {
            fprintf(stderr, "fuzz_checkpoint: %s flags: %s\n", names[i], err);
            abort();
        }
    }
    atexit(cleanup);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void restore(job *j, const uint8_t *state, size_t len)
{
    char err[1024];
    rt_task_source_pos pos[4];
    size_t n;
    err[0] = 0;
    if (rt_task_snapshot_sources(state, len, pos, 4, &n, err, sizeof err) == 0) CHECK(n <= 4);
    else CHECK(err[0] != '\0');

    rt_task_config tc = {.label = "0", .watermark_every = 1, .no_drain = 1};
    rt_task *t;
    CHECK(rt_task_new(&tc, &t, err, sizeof err) == 0);
    rt_task_set_checkpointing(t, 0, NULL, NULL);
    rt_op *root;
    if (j->def->build(rt_task_graph(t), &j->c, j->opts, "0000fuzz", "0", &root, err,
                      sizeof err)) {
        fprintf(stderr, "fuzz_checkpoint: building %s: %s\n", j->def->name, err);
        abort();
    }
    CHECK(rt_task_add_source(t, &source, NULL, root, 0, err, sizeof err) == 0);
    if (rt_task_open(t, err, sizeof err)) {
        fprintf(stderr, "fuzz_checkpoint: opening %s: %s\n", j->def->name, err);
        abort();
    }
    err[0] = 0;
    if (rt_task_restore(t, state, len, err, sizeof err) == 0) {
        rt_buf again;
        rt_buf_init(&again, (size_t)64 << 20);
        rt_task_snapshot(t, &again, err, sizeof err);
        rt_buf_free(&again);
    } else {
        if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "restore %s: %s\n", j->def->name, err);
        CHECK(err[0] != '\0');
    }
    rt_task_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tmplen) setup();
    if (size == 0) return 0;
    unsigned ctl = data[0];
    job *j = &jobs[ctl & 3];
    uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
    CHECK(copy != NULL);
    memcpy(copy, data + 1, size - 1);
    size_t len = size - 1;
    if (ctl & 0x40) {
        restore(j, copy, len);
        free(copy);
        return 0;
    }
    if ((ctl & 0x80) && len >= 4) put_le32(copy + len - 4, crc32c_update_sw(0, copy, len - 4));
    ckpt_header h;
    const uint8_t *state;
    size_t state_len;
    char err[512];
    err[0] = 0;
    if (ckpt_decode("fuzz.ckpt", copy, len, &h, &state, &state_len, err, sizeof err)) {
        CHECK(err[0] != '\0');
    } else {
        CHECK(state >= copy && state + state_len <= copy + len);
        CHECK(memchr(h.job, 0, sizeof h.job) && memchr(h.run_id, 0, sizeof h.run_id) &&
              memchr(h.task, 0, sizeof h.task));
        restore(j, state, state_len);
    }
    free(copy);
    return 0;
}
