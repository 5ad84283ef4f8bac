/* `logproc generate logs`: the record file it writes (timestamps, Event API keys, values that
 * decode to the preset's golden records), --text output, and usage errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "event/event.pb-c.h"
#include "formats/pb_text.h"
#include "formats/record_file.h"

static int call(int n, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return cli_generate(n, argv);
}

static char *temp_path(const char *suffix)
{
    const char *dir = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/gen_cli_XXXXXX", dir && *dir ? dir : P_tmpdir);
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    close(fd);
    unlink(tmpl);
    size_t n = strlen(tmpl) + strlen(suffix) + 1;
    char *p = malloc(n);
    snprintf(p, n, "%s%s", tmpl, suffix);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)size + 1);
    assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
    b[size] = 0;
    fclose(f);
    *len = (size_t)size;
    return b;
}

static char *golden_path(const char *preset)
{
    const char *dir = getenv("LOGPROC_TEST_DATA");
    assert_non_null(dir);
    size_t n = strlen(dir) + strlen(preset) + 16;
    char *p = malloc(n);
    snprintf(p, n, "%s/golden/%s.txt", dir, preset);
    return p;
}

/* The record file: one frame per LogRequest, its value the preset's record, its key the
 * Event API's (8-byte little-endian platform id 1, then log_user_id), its timestamp the send
 * time (non-decreasing, from --startTime). Printed back, the values are the golden file. */
static void test_record_file_matches_golden(void **s)
{
    (void)s;
    const char *preset = "createItemShoppingCartBuilder";
    char *out = temp_path(".rec");
    assert_int_equal(call(5, "generate", "logs", "--preset", (char *)preset, "--output"), 2);
    assert_int_equal(call(6, "generate", "logs", "--preset", (char *)preset, "-o", out), 0);

    char err[256];
    recfile_reader *r;
    assert_int_equal(
        recfile_reader_open(out, RECFILE_DEFAULT_MAX_RECORD_BYTES, &r, err, sizeof err), 0);
    recfile_record rec;
    recfile_bad bad;
    int rc, n = 0;
    int64_t last = 0;
    char *all = NULL;
    size_t all_len = 0;
    FILE *text = open_memstream(&all, &all_len);
    while ((rc = recfile_next(r, &rec, &bad)) == 1) {
        assert_true(rec.ts_ms >= 1601596151000LL && rec.ts_ms >= last);
        last = rec.ts_ms;
        Event__LogRequest *lr = event__log_request__unpack(NULL, rec.value_len, rec.value);
        assert_non_null(lr);
        const char *luid = lr->user_info->log_user_id;
        assert_int_equal(rec.key_len, 8 + strlen(luid));
        static const uint8_t one[8] = {1, 0, 0, 0, 0, 0, 0, 0};
        assert_memory_equal(rec.key, one, 8);
        assert_memory_equal(rec.key + 8, luid, strlen(luid));
        if (n) fputc('\n', text);
        assert_int_equal(pbtext_print(text, &lr->base), 0);
        event__log_request__free_unpacked(lr, NULL);
        n++;
    }
    assert_int_equal(rc, 0);
    fclose(text);
    recfile_reader_close(r);
    assert_int_equal(n, 37);

    char *gp = golden_path(preset);
    size_t glen;
    char *golden = slurp(gp, &glen);
    assert_int_equal(all_len, glen);
    assert_string_equal(all, golden);
    free(golden);
    free(gp);
    free(all);
    unlink(out);
    free(out);
}

/* --text prints the same dump to stdout. */
static void test_text_output(void **s)
{
    (void)s;
    const char *preset = "createStoreToItemBuilder";
    char *out = temp_path(".txt");
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(out, "wb");
    assert_non_null(f);
    dup2(fileno(f), 1);
    int rc = call(4, "generate", "logs", "--preset=createStoreToItemBuilder", "--text");
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    assert_int_equal(rc, 0);
    size_t len, glen;
    char *got = slurp(out, &len);
    char *gp = golden_path(preset);
    char *golden = slurp(gp, &glen);
    assert_string_equal(got, golden);
    free(got);
    free(golden);
    free(gp);
    unlink(out);
    free(out);
}

static void test_usage_errors(void **s)
{
    (void)s;
    assert_int_equal(call(1, "generate"), 2);
    assert_int_equal(call(2, "generate", "pictures"), 2);
    assert_int_equal(call(3, "generate", "logs", "--help"), 0);
    /* no output chosen */
    assert_int_equal(call(2, "generate", "logs"), 2);
    /* unknown flag, bad value, value out of range, unknown profile, two profiles */
    assert_int_equal(call(4, "generate", "logs", "--text", "--userz=3"), 2);
    assert_int_equal(call(4, "generate", "logs", "--text", "--users=many"), 2);
    assert_int_equal(call(4, "generate", "logs", "--text", "--users=-3"), 2);
    assert_int_equal(call(4, "generate", "logs", "--text", "--insertionImpressedRate=1.5"), 2);
    assert_int_equal(call(4, "generate", "logs", "--text", "--requestContentType0=SHOE"), 2);
    assert_int_equal(call(4, "generate", "logs", "--text", "--profile=nope"), 2);
    assert_int_equal(call(5, "generate", "logs", "--text", "--profile=local",
                          "--preset=createStoreToItemBuilder"),
                     2);
    /* the library profile needs its sizes */
    assert_int_equal(call(4, "generate", "logs", "--text", "--profile=library"), 2);
    /* an unwritable output: a path through a regular file */
    char *file = temp_path("");
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    fclose(f);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/x.rec", file);
    assert_int_equal(call(4, "generate", "logs", "-o", bad), 1);
    unlink(file);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_file_matches_golden),
        cmocka_unit_test(test_text_output),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
