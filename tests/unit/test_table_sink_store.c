/* Table sink with an object store (here the local-directory backend, which stages a part as a
 * hidden `.<name>.pending` beside its key): parts are written in the staging directory, staged
 * into the store when closed (the local file removed), invisible until published; a snapshot
 * records (key, handle) and a restore in a fresh sink publishes them, twice without error; a
 * version-1 snapshot (local paths) is still read; free aborts staged parts no snapshot recorded
 * and keeps the recorded ones; a published key is never overwritten. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "connectors/table_sink.h"
#include "runtime/buf.h"

static int txt_open(void *ctx, const char *path, void **part, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) return snprintf(err, errlen, "cannot create %s", path), -1;
    *part = f;
    return 0;
}

static int txt_append(void *part, const void *b, size_t n, char *err, size_t errlen)
{
    return fwrite(b, 1, n, part) == n && fputc('\n', part) != EOF ? 0 : -1;
}

static int txt_close(void *part, char *err, size_t errlen)
{
    return fclose(part) ? -1 : 0;
}

static char root[256], store[300], staging[300];

static int setup(void **unused)
{
    snprintf(root, sizeof root, "/tmp/logproc-sinkstore-XXXXXX");
    if (!mkdtemp(root)) return -1;
    snprintf(store, sizeof store, "%s/bucket", root);
    snprintf(staging, sizeof staging, "%s/staging", root);
    return 0;
}

static int teardown(void **unused)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd) ? -1 : 0;
}

static table_sink_config config(const char *dir)
{
    table_sink_config c = {0};
    c.dir = dir;
    c.run_id = "0a1b2c3d";
    c.task = "1";
    c.format = (table_format){txt_open, txt_append, txt_close, NULL, "txt"};
    c.store_url = store;
    c.staging_dir = staging;
    return c;
}

/* Counts files under dir (recursively): visible part-*, hidden .part-*.pending (staged) and
 * hidden .part-*.inprogress (being written). */
typedef struct counts {
    int visible, pending, inprogress, other;
} counts;

static void count(const char *dir, counts *n)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        size_t len = strlen(e->d_name);
        if (S_ISDIR(st.st_mode)) count(p, n);
        else if (!strncmp(e->d_name, "part-", 5)) n->visible++;
        else if (len > 8 && !strcmp(e->d_name + len - 8, ".pending")) n->pending++;
        else if (len > 11 && !strcmp(e->d_name + len - 11, ".inprogress")) n->inprogress++;
        else n->other++;
    }
    closedir(d);
}

static counts count_in(const char *base, const char *sub)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", base, sub);
    counts n = {0};
    count(p, &n);
    return n;
}

static void ok(int rc, const char *what, const char *err)
{
    if (rc) fail_msg("%s: %s", what, err);
}

static void write_hours(table_sink *s, int records, int hours)
{
    char err[256];
    for (int i = 0; i < records; i++) {
        char rec[16];
        int n = snprintf(rec, sizeof rec, "r%d", i);
        ok(table_sink_write(s, 1612815980000 + (int64_t)(i % hours) * 3600000, rec, (size_t)n, err,
                            sizeof err),
           "write", err);
    }
}

static void test_staged_parts_are_invisible_until_published(void **unused)
{
    char err[256];
    table_sink_config c = config("out/raw/view");
    table_sink *s;
    ok(table_sink_new(&c, &s, err, sizeof err), "new", err);
    write_hours(s, 20, 2);
    counts st = count_in(staging, "out/raw/view");
    assert_int_equal(st.inprogress, 2); /* written in the staging directory */
    assert_int_equal(count_in(store, "out").visible + count_in(store, "out").pending, 0);

    ok(table_sink_precommit(s, err, sizeof err), "precommit", err);
    st = count_in(staging, "out/raw/view");
    assert_int_equal(st.inprogress + st.visible + st.other, 0); /* staged: local files gone */
    counts so = count_in(store, "out/raw/view");
    assert_int_equal(so.pending, 2);
    assert_int_equal(so.visible, 0);

    ok(table_sink_publish(s, err, sizeof err), "publish", err);
    so = count_in(store, "out/raw/view");
    assert_int_equal(so.visible, 2);
    assert_int_equal(so.pending, 0);
    char path[700];
    snprintf(path, sizeof path, "%s/out/raw/view/dt=2021-02-08/hour=21/part-0a1b2c3d-1-0-1.txt",
             store);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 5 * 3 + 5 * 4); /* "r1\n" ... "r9\n", "r11\n" ... "r19\n" */
    table_sink_stats stats = table_sink_get_stats(s);
    assert_int_equal(stats.parts_published, 2);
    assert_int_equal(stats.bytes_published, 2 * 35); /* the even records' part is as long */
    table_sink_free(s);
}

static void test_restore_publishes_recorded_handles_idempotently(void **unused)
{
    char err[256];
    table_sink_config c = config("out/etl/joined");
    table_sink *s;
    ok(table_sink_new(&c, &s, err, sizeof err), "new", err);
    write_hours(s, 6, 3);
    ok(table_sink_precommit(s, err, sizeof err), "precommit", err);
    rt_buf snap;
    rt_buf_init(&snap, 0);
    assert_int_equal(table_sink_snapshot(s, &snap), 0);
    /* a crash before the checkpoint's publish: free keeps what the snapshot recorded */
    table_sink_free(s);
    assert_int_equal(count_in(store, "out/etl/joined").pending, 3);

    for (int round = 0; round < 2; round++) { /* the second restore finds them published */
        table_sink *r;
        ok(table_sink_new(&c, &r, err, sizeof err), "new", err);
        ok(table_sink_restore(r, snap.data, snap.len, err, sizeof err), "restore", err);
        counts so = count_in(store, "out/etl/joined");
        assert_int_equal(so.visible, 3);
        assert_int_equal(so.pending, 0);
        assert_int_equal(table_sink_get_stats(r).parts_published, 3);
        /* new parts carry the restored commit number (1) */
        write_hours(r, 1, 1);
        ok(table_sink_commit(r, err, sizeof err), "commit", err);
        char path[700];
        snprintf(path, sizeof path,
                 "%s/out/etl/joined/dt=2021-02-08/hour=20/part-0a1b2c3d-1-1-0.txt", store);
        assert_int_equal(access(path, F_OK), 0);
        table_sink_free(r);
        unlink(path); /* the second round writes it again */
    }
    rt_buf_free(&snap);
}

static void test_free_aborts_unrecorded_staged_parts(void **unused)
{
    char err[256];
    table_sink_config c = config("out/raw/abort");
    table_sink *s;
    ok(table_sink_new(&c, &s, err, sizeof err), "new", err);
    write_hours(s, 4, 2);
    ok(table_sink_precommit(s, err, sizeof err), "precommit", err);
    assert_int_equal(count_in(store, "out/raw/abort").pending, 2);
    table_sink_free(s); /* no snapshot took them: nothing can publish them */
    counts so = count_in(store, "out/raw/abort");
    assert_int_equal(so.pending + so.visible, 0);
}

static void test_version_1_snapshot_of_local_parts_is_read(void **unused)
{
    char err[256], dir[600], tmp[700], final[700];
    snprintf(dir, sizeof dir, "%s/v1/dt=2021-02-08/hour=20", root);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(tmp, sizeof tmp, "%s/.part-0a1b2c3d-1-0-0.txt.inprogress", dir);
    snprintf(final, sizeof final, "%s/part-0a1b2c3d-1-0-0.txt", dir);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs("old\n", f);
    fclose(f);
    rt_buf snap;
    rt_buf_init(&snap, 0);
    assert_int_equal(rt_buf_put_u32(&snap, 1), 0);
    assert_int_equal(rt_buf_put_u64(&snap, 1), 0);
    assert_int_equal(rt_buf_put_u32(&snap, 1), 0);
    assert_int_equal(rt_buf_put_str(&snap, tmp), 0);
    assert_int_equal(rt_buf_put_str(&snap, final), 0);
    char tdir[600];
    snprintf(tdir, sizeof tdir, "%s/v1", root);
    table_sink_config c = config(tdir);
    c.store_url = NULL; /* a local table, as version 1 knew them */
    table_sink *s;
    ok(table_sink_new(&c, &s, err, sizeof err), "new", err);
    ok(table_sink_restore(s, snap.data, snap.len, err, sizeof err), "restore v1", err);
    assert_int_equal(access(final, F_OK), 0);
    assert_int_not_equal(access(tmp, F_OK), 0);
    table_sink_free(s);

    /* a truncated version-2 snapshot is refused with the table named */
    rt_buf_reset(&snap);
    assert_int_equal(rt_buf_put_u32(&snap, 2), 0);
    assert_int_equal(rt_buf_put_u64(&snap, 1), 0);
    assert_int_equal(rt_buf_put_u32(&snap, 1), 0);
    assert_int_equal(rt_buf_put_str(&snap, ""), 0);
    assert_int_equal(rt_buf_put_str(&snap, "k/part-x.txt"), 0);
    c = config("out/trunc");
    ok(table_sink_new(&c, &s, err, sizeof err), "new", err);
    assert_int_equal(table_sink_restore(s, snap.data, snap.len, err, sizeof err), -1);
    assert_non_null(strstr(err, "out/trunc"));
    table_sink_free(s);
    rt_buf_free(&snap);
}

static void test_published_key_is_never_overwritten(void **unused)
{
    char err[256];
    table_sink_config c = config("out/twice");
    table_sink *a, *b;
    ok(table_sink_new(&c, &a, err, sizeof err), "new", err);
    write_hours(a, 1, 1);
    ok(table_sink_commit(a, err, sizeof err), "commit", err);
    table_sink_free(a);
    ok(table_sink_new(&c, &b, err, sizeof err), "new", err); /* the same run id again */
    assert_int_equal(table_sink_write(b, 1612815980000, "x", 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "already published"));
    assert_non_null(strstr(err, "out/twice/dt=2021-02-08/hour=20/part-0a1b2c3d-1-0-0.txt"));
    table_sink_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_staged_parts_are_invisible_until_published),
        cmocka_unit_test(test_restore_publishes_recorded_handles_idempotently),
        cmocka_unit_test(test_free_aborts_unrecorded_staged_parts),
        cmocka_unit_test(test_version_1_snapshot_of_local_parts_is_read),
        cmocka_unit_test(test_published_key_is_never_overwritten),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
