/* Table sink two-phase commits (connectors/table_sink.h): precommit + snapshot hide the parts,
 * publish shows them; a fresh sink restored from the snapshot re-publishes idempotently (already
 * published, or published with the hidden file left behind); a part lost both ways is an error
 * naming it; parts opened after a restore carry the restored commit number. */
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

/* ---- a text format: one line per record ---- */

static int txt_open(void *ctx, const char *path, void **part, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) return snprintf(err, errlen, "cannot create %s", path), -1;
    *part = f;
    return 0;
}

static int txt_append(void *part, const void *b, size_t n, char *err, size_t errlen)
{
    if (fwrite(b, 1, n, part) != n || fputc('\n', part) == EOF)
        return snprintf(err, errlen, "write failed"), -1;
    return 0;
}

static int txt_close(void *part, char *err, size_t errlen)
{
    if (fclose(part)) return snprintf(err, errlen, "close failed"), -1;
    return 0;
}

/* ---- a temp dir per test ---- */

static char root[256];
static char table[300];

static int setup(void **unused)
{
    snprintf(root, sizeof root, "/tmp/logproc-sink2pc-XXXXXX");
    if (!mkdtemp(root)) return -1;
    snprintf(table, sizeof table, "%s/table", root);
    return 0;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (!lstat(p, &st) && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **unused)
{
    rm_tree(root);
    return 0;
}

/* Counts part-* (visible) and .part-* (hidden) files under dir, recursively. */
static void count_parts(const char *dir, int *visible, int *hidden)
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
        if (S_ISDIR(st.st_mode)) count_parts(p, visible, hidden);
        else if (!strncmp(e->d_name, "part-", 5)) (*visible)++;
        else if (!strncmp(e->d_name, ".part-", 6)) (*hidden)++;
    }
    closedir(d);
}

static void expect_parts(int visible, int hidden)
{
    int v = 0, h = 0;
    count_parts(table, &v, &h);
    if (v != visible || h != hidden)
        fail_msg("expected %d visible and %d hidden parts, found %d and %d", visible, hidden, v, h);
}

static table_sink_config config(void)
{
    table_sink_config c = {0};
    c.dir = table;
    c.run_id = "0a1b2c3d";
    c.task = "3";
    c.format.open_part = txt_open;
    c.format.append = txt_append;
    c.format.close_part = txt_close;
    c.format.ext = "txt";
    return c;
}

static table_sink *new_sink(void)
{
    table_sink_config c = config();
    table_sink *s;
    char err[512];
    assert_int_equal(table_sink_new(&c, &s, err, sizeof err), 0);
    return s;
}

#define HOUR0 1700000000000LL               /* 2023-11-14 22:13:20 UTC */
#define HOUR1 (HOUR0 + 3600 * 1000LL)       /* the next hour: another partition */

static void put(table_sink *s, int64_t ts, const char *line)
{
    char err[512] = "";
    if (table_sink_write(s, ts, line, strlen(line), err, sizeof err)) fail_msg("write: %s", err);
}

static void ok(int rc, const char *what, const char *err)
{
    if (rc) fail_msg("%s: %s", what, err);
}

/* A fresh sink restored from snap (the restore must succeed). */
static table_sink *restored(const rt_buf *snap)
{
    table_sink *b = new_sink();
    char err[512] = "";
    ok(table_sink_restore(b, snap->data, snap->len, err, sizeof err), "restore", err);
    return b;
}

/* Writes three records into two partitions, precommits and snapshots into snap. */
static table_sink *two_parts_pending(rt_buf *snap)
{
    table_sink *s = new_sink();
    put(s, HOUR0, "r1");
    put(s, HOUR1, "r2");
    put(s, HOUR0 + 1, "r3");
    char err[512] = "";
    ok(table_sink_precommit(s, err, sizeof err), "precommit", err);
    rt_buf_init(snap, 0);
    assert_int_equal(table_sink_snapshot(s, snap), 0);
    return s;
}

/* The hidden parts on disk (sorted by path) and the final names they publish to. */
typedef struct snap_parts {
    uint32_t n;
    char tmp[8][1024], final[8][1024];
} snap_parts;

static void find_hidden(const char *dir, snap_parts *p)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            find_hidden(path, p);
            continue;
        }
        size_t n = strlen(e->d_name), sfx = strlen(".inprogress");
        if (strncmp(e->d_name, ".part-", 6) || n <= sfx ||
            strcmp(e->d_name + n - sfx, ".inprogress"))
            continue;
        assert_true(p->n < 8);
        snprintf(p->tmp[p->n], sizeof p->tmp[p->n], "%s", path);
        snprintf(p->final[p->n], sizeof p->final[p->n], "%s/%.*s", dir, (int)(n - sfx - 1),
                 e->d_name + 1);
        p->n++;
    }
    closedir(d);
}

static void hidden_parts(snap_parts *p)
{
    memset(p, 0, sizeof *p);
    find_hidden(table, p);
    for (uint32_t i = 0; i < p->n; i++) /* sort: hour=22 before hour=23 */
        for (uint32_t j = i + 1; j < p->n; j++)
            if (strcmp(p->tmp[j], p->tmp[i]) < 0) {
                char t[1024];
                memcpy(t, p->tmp[i], sizeof t);
                memcpy(p->tmp[i], p->tmp[j], sizeof t);
                memcpy(p->tmp[j], t, sizeof t);
                memcpy(t, p->final[i], sizeof t);
                memcpy(p->final[i], p->final[j], sizeof t);
                memcpy(p->final[j], t, sizeof t);
            }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot read %s", path);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- tests ---- */

static void test_nothing_visible_before_publish(void **unused)
{
    rt_buf snap;
    table_sink *s = two_parts_pending(&snap);
    expect_parts(0, 2);
    snap_parts p;
    hidden_parts(&p);
    assert_int_equal(p.n, 2);
    for (uint32_t i = 0; i < 2; i++) {
        assert_true(exists(p.tmp[i]));
        assert_false(exists(p.final[i]));
        /* names carry run, task, and the commit (0) the parts were written in */
        assert_non_null(strstr(p.final[i], "/part-0a1b2c3d-3-0-"));
        assert_non_null(strstr(p.tmp[i], "/.part-0a1b2c3d-3-0-"));
    }
    table_sink_stats st = table_sink_get_stats(s);
    assert_int_equal(st.parts_published, 0);
    assert_int_equal(st.records, 3);

    char err[512] = "";
    ok(table_sink_publish(s, err, sizeof err), "publish", err);
    expect_parts(2, 0);
    /* each partition's records, in write order */
    int found0 = 0, found1 = 0;
    for (uint32_t i = 0; i < 2; i++) {
        const char *text = slurp(p.final[i]);
        if (strstr(p.final[i], "hour=22")) found0 = !strcmp(text, "r1\nr3\n");
        if (strstr(p.final[i], "hour=23")) found1 = !strcmp(text, "r2\n");
    }
    assert_true(found0 && found1);
    st = table_sink_get_stats(s);
    assert_int_equal(st.parts_published, 2);
    /* a second publish with nothing pending is a no-op, not an error */
    ok(table_sink_publish(s, err, sizeof err), "publish again", err);
    expect_parts(2, 0);
    table_sink_free(s);
    rt_buf_free(&snap);
}

static void test_restore_after_publish_is_idempotent(void **unused)
{
    rt_buf snap;
    table_sink *a = two_parts_pending(&snap);
    snap_parts p;
    hidden_parts(&p);
    assert_int_equal(p.n, 2);
    char err[512] = "";
    ok(table_sink_publish(a, err, sizeof err), "publish", err);
    table_sink_free(a);
    char before[2][64];
    for (int i = 0; i < 2; i++) snprintf(before[i], sizeof before[i], "%.63s", slurp(p.final[i]));

    /* restored twice, as a crash loop would: both succeed and change nothing */
    for (int round = 0; round < 2; round++) {
        table_sink *b = new_sink();
        ok(table_sink_restore(b, snap.data, snap.len, err, sizeof err), "restore", err);
        expect_parts(2, 0);
        for (int i = 0; i < 2; i++) assert_string_equal(slurp(p.final[i]), before[i]);
        table_sink_free(b);
        expect_parts(2, 0); /* freeing the restored sink deletes nothing published */
    }
    rt_buf_free(&snap);
}

static void test_restore_publishes_what_was_pending(void **unused)
{
    rt_buf snap;
    table_sink *a = two_parts_pending(&snap);
    snap_parts p;
    hidden_parts(&p);
    /* the process dies after the checkpoint was durable, before publishing: the hidden parts
     * are on disk and the sink is gone (its free would clean up, so it is freed only after) */
    table_sink *b = restored(&snap);
    expect_parts(2, 0);
    for (uint32_t i = 0; i < p.n; i++) assert_true(exists(p.final[i]));
    assert_int_equal(table_sink_get_stats(b).parts_published, 2);
    table_sink_free(b);
    table_sink_free(a);
    expect_parts(2, 0);
    rt_buf_free(&snap);
}

static void test_restore_with_final_and_hidden_both_present(void **unused)
{
    rt_buf snap;
    table_sink *a = two_parts_pending(&snap);
    snap_parts p;
    hidden_parts(&p);
    /* publish got as far as the link of part 0 (final name present, hidden not yet removed) */
    assert_int_equal(link(p.tmp[0], p.final[0]), 0);
    expect_parts(1, 2);
    table_sink *b = restored(&snap);
    expect_parts(2, 0); /* part 0 kept, its hidden file removed; part 1 published */
    assert_false(exists(p.tmp[0]));
    assert_false(exists(p.tmp[1]));
    table_sink_free(b);
    table_sink_free(a);
    rt_buf_free(&snap);
}

static void test_restore_after_partial_publish(void **unused)
{
    rt_buf snap;
    table_sink *a = two_parts_pending(&snap);
    snap_parts p;
    hidden_parts(&p);
    /* the first part was fully published before the crash, the second not */
    assert_int_equal(rename(p.tmp[0], p.final[0]), 0);
    expect_parts(1, 1);
    table_sink *b = restored(&snap);
    expect_parts(2, 0);
    table_sink_free(b);
    table_sink_free(a);
    rt_buf_free(&snap);
}

static void test_restore_with_part_lost_fails_naming_it(void **unused)
{
    rt_buf snap;
    table_sink *a = two_parts_pending(&snap);
    snap_parts p;
    hidden_parts(&p);
    /* both names gone (deleted outside logproc) */
    for (uint32_t i = 0; i < p.n; i++) assert_int_equal(unlink(p.tmp[i]), 0);
    expect_parts(0, 0);
    table_sink *b = new_sink();
    char err[512] = "";
    assert_int_equal(table_sink_restore(b, snap.data, snap.len, err, sizeof err), -1);
    /* the part that cannot be published is named by its final path */
    if (!strstr(err, p.final[0]) && !strstr(err, p.final[1]))
        fail_msg("error names neither pending part: %s", err);
    assert_non_null(strstr(err, "gone"));
    expect_parts(0, 0);
    table_sink_free(b);
    table_sink_free(a);
    rt_buf_free(&snap);
}

/* A snapshot naming a part outside the table (a tampered or foreign checkpoint) is refused before
 * anything is linked or deleted: the victim file stays. */
static void test_restore_refuses_paths_outside_the_table(void **unused)
{
    char victim[400];
    snprintf(victim, sizeof victim, "%s/victim", root);
    FILE *f = fopen(victim, "w");
    assert_non_null(f);
    fputs("keep me", f);
    fclose(f);
    const char *bad[][2] = {
        {"", "../victim"},                 /* relative with .. (stored relative to the table) */
        {"x/../../victim", "x/part-1.txt"},
        {NULL, NULL},                      /* whole path outside: filled below */
    };
    char whole[400];
    snprintf(whole, sizeof whole, "%s", victim);
    for (int i = 0; i < 3; i++) {
        rt_buf b;
        rt_buf_init(&b, 0);
        assert_int_equal(rt_buf_put_u32(&b, 3), 0);
        assert_int_equal(rt_buf_put_u64(&b, 1), 0);
        assert_int_equal(rt_buf_put_u32(&b, 1), 0);
        if (i < 2) {
            /* tmp (u8 1: relative), final (u8 1: relative) */
            assert_int_equal(rt_buf_put_u8(&b, 1), 0);
            assert_int_equal(rt_buf_put_str(&b, *bad[i][0] ? bad[i][0] : ".part-x.inprogress"), 0);
            assert_int_equal(rt_buf_put_u8(&b, 1), 0);
            assert_int_equal(rt_buf_put_str(&b, bad[i][1]), 0);
        } else {
            assert_int_equal(rt_buf_put_u8(&b, 0), 0);
            assert_int_equal(rt_buf_put_str(&b, whole), 0);
            assert_int_equal(rt_buf_put_u8(&b, 1), 0);
            assert_int_equal(rt_buf_put_str(&b, "part-2.txt"), 0);
        }
        assert_int_equal(rt_buf_put_str(&b, ""), 0); /* no handle: a local part */
        assert_int_equal(rt_buf_put_u64(&b, 7), 0);
        table_sink *t = new_sink();
        char err[512] = "";
        assert_int_equal(table_sink_restore(t, b.data, b.len, err, sizeof err), -1);
        if (!strstr(err, "outside the table")) fail_msg("case %d: %s", i, err);
        table_sink_free(t);
        rt_buf_free(&b);
        assert_true(exists(victim));
    }
    assert_string_equal(slurp(victim), "keep me");
}

/* A pending part a snapshot recorded may belong to a checkpoint that is already durable (the
 * task failed after the checkpoint was written, before or while publishing: another sink's
 * checkpoint_complete failed, a publish error): table_sink_free must keep it, so the restore
 * from that checkpoint can publish it. */
static void test_free_keeps_recorded_pending_parts(void **unused)
{
    rt_buf snap;
    table_sink *a = two_parts_pending(&snap);
    table_sink_free(a); /* the task fails after its checkpoint was made durable */
    expect_parts(0, 2);
    table_sink *b = restored(&snap);
    expect_parts(2, 0);
    table_sink_free(b);
    rt_buf_free(&snap);
}

static void test_restore_rejects_bad_snapshots(void **unused)
{
    rt_buf snap;
    table_sink *a = two_parts_pending(&snap);
    char err[512] = "";
    for (size_t len = 0; len < snap.len; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        assert_non_null(cut);
        memcpy(cut, snap.data, len);
        table_sink *b = new_sink();
        err[0] = 0;
        if (table_sink_restore(b, cut, len, err, sizeof err) != -1)
            fail_msg("a sink snapshot cut to %zu of %zu bytes was accepted", len, snap.len);
        assert_non_null(strstr(err, table));
        table_sink_free(b);
        free(cut);
    }
    table_sink_free(a);
    rt_buf_free(&snap);
}

static void test_parts_after_restore_carry_restored_commit(void **unused)
{
    rt_buf snap;
    table_sink *a = two_parts_pending(&snap);
    char err[512] = "";
    /* two more checkpoints: commit goes 1 -> 3 */
    put(a, HOUR0, "r4");
    ok(table_sink_precommit(a, err, sizeof err), "precommit", err);
    put(a, HOUR0, "r5");
    ok(table_sink_precommit(a, err, sizeof err), "precommit", err);
    rt_buf_reset(&snap);
    assert_int_equal(table_sink_snapshot(a, &snap), 0);
    snap_parts p;
    hidden_parts(&p);
    assert_int_equal(p.n, 4);
    /* parts of commits 0, 1 and 2 */
    int per_commit[3] = {0};
    for (uint32_t i = 0; i < p.n; i++)
        for (int c = 0; c < 3; c++) {
            char tag[32];
            snprintf(tag, sizeof tag, "/.part-0a1b2c3d-3-%d-", c);
            per_commit[c] += strstr(p.tmp[i], tag) != NULL;
        }
    assert_int_equal(per_commit[0], 2);
    assert_int_equal(per_commit[1], 1);
    assert_int_equal(per_commit[2], 1);
    ok(table_sink_publish(a, err, sizeof err), "publish", err);
    table_sink_free(a);
    expect_parts(4, 0);

    table_sink *b = new_sink();
    ok(table_sink_restore(b, snap.data, snap.len, err, sizeof err), "restore", err);
    put(b, HOUR1, "r6");
    put(b, HOUR0, "r7");
    char hidden1[1024], hidden0[1024];
    snprintf(hidden1, sizeof hidden1, "%s/dt=2023-11-14/hour=23/.part-0a1b2c3d-3-3-0.txt.inprogress",
             table);
    snprintf(hidden0, sizeof hidden0, "%s/dt=2023-11-14/hour=22/.part-0a1b2c3d-3-3-1.txt.inprogress",
             table);
    if (!exists(hidden1)) fail_msg("no part %s after restoring commit 3", hidden1);
    if (!exists(hidden0)) fail_msg("no part %s after restoring commit 3", hidden0);
    ok(table_sink_precommit(b, err, sizeof err), "precommit", err);
    ok(table_sink_publish(b, err, sizeof err), "publish", err);
    expect_parts(6, 0);
    char final1[1024];
    snprintf(final1, sizeof final1, "%s/dt=2023-11-14/hour=23/part-0a1b2c3d-3-3-0.txt", table);
    assert_string_equal(slurp(final1), "r6\n");
    /* the next commit after the restored one is 4 */
    put(b, HOUR1, "r8");
    char hidden4[1024];
    snprintf(hidden4, sizeof hidden4, "%s/dt=2023-11-14/hour=23/.part-0a1b2c3d-3-4-0.txt.inprogress",
             table);
    if (!exists(hidden4)) fail_msg("no part %s after the commit following restored 3", hidden4);
    table_sink_free(b);
    rt_buf_free(&snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_nothing_visible_before_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_after_publish_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_publishes_what_was_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_with_final_and_hidden_both_present, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restore_after_partial_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_with_part_lost_fails_naming_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_keeps_recorded_pending_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_rejects_bad_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_refuses_paths_outside_the_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parts_after_restore_carry_restored_commit, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
