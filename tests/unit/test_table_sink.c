/* Table sink: partition paths, hidden in-progress parts, publish at commit, no overwrite. */
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

/* A line-per-record text format, enough to check what the sink hands its format. */
static int txt_open(void *ctx, const char *path, void **part, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) return snprintf(err, errlen, "open %s", path), -1;
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

static char root[256];

static int setup(void **s)
{
    snprintf(root, sizeof root, "/tmp/logproc-sink-XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **s)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd) ? -1 : 0;
}

/* Counts visible part-* files and hidden .part-* files under dir (recursively). */
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
        stat(p, &st);
        if (S_ISDIR(st.st_mode)) count_parts(p, visible, hidden);
        else if (!strncmp(e->d_name, "part-", 5)) (*visible)++;
        else if (!strncmp(e->d_name, ".part-", 6)) (*hidden)++;
    }
    closedir(d);
}

static table_sink_config config(const char *dir, size_t max_open)
{
    table_sink_config c = {0};
    c.dir = dir;
    c.run_id = "0a1b2c3d";
    c.task = "0";
    c.max_open = max_open;
    c.format.open_part = txt_open;
    c.format.append = txt_append;
    c.format.close_part = txt_close;
    c.format.ext = "txt";
    return c;
}

static void test_partition_names_are_utc_hours(void **s)
{
    char b[64];
    table_sink_partition(1612815980000, false, b, sizeof b);
    assert_string_equal(b, "dt=2021-02-08/hour=20");
    table_sink_partition(0, false, b, sizeof b);
    assert_string_equal(b, "dt=1970-01-01/hour=00");
    table_sink_partition(1612815980000, true, b, sizeof b);
    assert_string_equal(b, "dt=2021-02-08");
    table_sink_partition(-1, false, b, sizeof b);
    assert_string_equal(b, "dt=1969-12-31/hour=23");
}

static void test_parts_are_hidden_until_commit_then_published_whole(void **s)
{
    char dir[512], err[256];
    snprintf(dir, sizeof dir, "%s/raw/view", root);
    table_sink_config c = config(dir, 0);
    table_sink *sink;
    assert_int_equal(table_sink_new(&c, &sink, err, sizeof err), 0);
    const int64_t h = 3600000, t0 = 1612815980000;
    for (int i = 0; i < 30; i++) {
        char rec[32];
        int n = snprintf(rec, sizeof rec, "r%d", i);
        assert_int_equal(table_sink_write(sink, t0 + (i % 3) * h, rec, (size_t)n, err, sizeof err), 0);
    }
    int vis = 0, hid = 0;
    count_parts(dir, &vis, &hid);
    assert_int_equal(vis, 0); /* a reader sees nothing yet */
    assert_int_equal(hid, 3);
    assert_int_equal(table_sink_commit(sink, err, sizeof err), 0);
    vis = hid = 0;
    count_parts(dir, &vis, &hid);
    assert_int_equal(vis, 3);
    assert_int_equal(hid, 0);

    /* the hour-20 part holds records 0, 3, 6, ... under its deterministic name */
    char path[1024];
    snprintf(path, sizeof path, "%s/dt=2021-02-08/hour=20/part-0a1b2c3d-0-0-0.txt", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[64];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        char want[32];
        snprintf(want, sizeof want, "r%d\n", lines * 3);
        assert_string_equal(line, want);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 10);
    table_sink_stats st = table_sink_get_stats(sink);
    assert_int_equal(st.records, 30);
    assert_int_equal(st.parts_published, 3);
    table_sink_free(sink);
}

static void test_rolling_past_max_open_keeps_every_record(void **s)
{
    char dir[512], err[256];
    snprintf(dir, sizeof dir, "%s/roll", root);
    table_sink_config c = config(dir, 2);
    table_sink *sink;
    assert_int_equal(table_sink_new(&c, &sink, err, sizeof err), 0);
    for (int i = 0; i < 12; i++) /* 4 hours round robin through 2 open slots */
        assert_int_equal(table_sink_write(sink, (int64_t)(i % 4) * 3600000, "x", 1, err, sizeof err), 0);
    assert_int_equal(table_sink_commit(sink, err, sizeof err), 0);
    int vis = 0, hid = 0;
    count_parts(dir, &vis, &hid);
    assert_int_equal(vis, 12); /* each write found its hour closed: one part each */
    assert_int_equal(table_sink_get_stats(sink).records, 12);
    table_sink_free(sink);
}

static void test_published_part_is_never_overwritten(void **s)
{
    char dir[512], err[256];
    snprintf(dir, sizeof dir, "%s/twice", root);
    table_sink_config c = config(dir, 0);
    table_sink *a, *b;
    assert_int_equal(table_sink_new(&c, &a, err, sizeof err), 0);
    assert_int_equal(table_sink_write(a, 0, "x", 1, err, sizeof err), 0);
    assert_int_equal(table_sink_commit(a, err, sizeof err), 0);
    /* a second sink with the same run id would produce the same name */
    assert_int_equal(table_sink_new(&c, &b, err, sizeof err), 0);
    assert_int_equal(table_sink_write(b, 0, "y", 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "already published"));
    table_sink_free(a);
    table_sink_free(b);
}

static void test_free_without_commit_leaves_nothing_visible(void **s)
{
    char dir[512], err[256];
    snprintf(dir, sizeof dir, "%s/abort", root);
    table_sink_config c = config(dir, 0);
    table_sink *sink;
    assert_int_equal(table_sink_new(&c, &sink, err, sizeof err), 0);
    assert_int_equal(table_sink_write(sink, 0, "x", 1, err, sizeof err), 0);
    table_sink_free(sink);
    int vis = 0, hid = 0;
    count_parts(dir, &vis, &hid);
    assert_int_equal(vis + hid, 0);
}

static void test_commit_of_an_empty_table_publishes_nothing(void **s)
{
    char dir[512], err[256];
    snprintf(dir, sizeof dir, "%s/empty", root);
    table_sink_config c = config(dir, 0);
    table_sink *sink;
    assert_int_equal(table_sink_new(&c, &sink, err, sizeof err), 0);
    assert_int_equal(table_sink_commit(sink, err, sizeof err), 0);
    assert_int_equal(table_sink_commit(sink, err, sizeof err), 0);
    int vis = 0, hid = 0;
    count_parts(dir, &vis, &hid);
    assert_int_equal(vis + hid, 0);
    assert_int_equal(table_sink_get_stats(sink).commits, 2);
    table_sink_free(sink);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_names_are_utc_hours),
        cmocka_unit_test(test_parts_are_hidden_until_commit_then_published_whole),
        cmocka_unit_test(test_rolling_past_max_open_keeps_every_record),
        cmocka_unit_test(test_published_part_is_never_overwritten),
        cmocka_unit_test(test_free_without_commit_leaves_nothing_visible),
        cmocka_unit_test(test_commit_of_an_empty_table_publishes_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
