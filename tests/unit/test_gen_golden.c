/* The generator's three deterministic presets reproduce the reference's golden dumps
 * ($LOGPROC_TEST_DATA/golden/<preset>.txt) record for record, both as built and after a round
 * trip through the wire bytes (which carry the private fields as unknown fields). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/pb_text.h"
#include "generator/gen_options.h"
#include "generator/log_generator.h"

/* Reads the golden file and splits it into records (blocks separated by one blank line);
 * each record keeps its final newline. */
static char **read_golden(const char *preset, size_t *n)
{
    const char *dir = getenv("LOGPROC_TEST_DATA");
    assert_non_null(dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/%s.txt", dir, preset);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 2);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    if (size == 0 || text[size - 1] != '\n') text[size++] = '\n';
    text[size] = 0;

    char **recs = NULL;
    *n = 0;
    char *p = text;
    while (*p) {
        char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) + 1 : strlen(p);
        recs = realloc(recs, (*n + 1) * sizeof *recs);
        recs[*n] = strndup(p, len);
        (*n)++;
        p += len;
        if (*p == '\n') p++;
    }
    free(text);
    return recs;
}

/* Fails with the record index, line number and both lines where got and want differ. */
static void assert_same_record(const char *preset, const char *how, size_t index, const char *got,
                               const char *want)
{
    if (!strcmp(got, want)) return;
    int line = 1;
    const char *g = got, *w = want;
    while (*g && *g == *w) {
        if (*g == '\n') line++;
        g++, w++;
    }
    while (g > got && g[-1] != '\n')
        g--;
    while (w > want && w[-1] != '\n')
        w--;
    fail_msg("%s (%s): record %zu differs at line %d\n  got:  %.*s\n  want: %.*s", preset, how,
             index, line, (int)strcspn(g, "\n"), g, (int)strcspn(w, "\n"), w);
}

static void check_preset(const char *preset, size_t want_records)
{
    size_t n_golden;
    char **golden = read_golden(preset, &n_golden);
    assert_int_equal(n_golden, want_records);

    char err[512];
    gen_options o = {0};
    assert_int_equal(gen_options_init(&o, preset, NULL, err, sizeof err), 0);
    gen_logs *g;
    if (gen_logs_new(&o, &g, err, sizeof err)) fail_msg("%s", err);
    gen_options_free(&o);

    size_t i = 0;
    int64_t ts, last_ts = INT64_MIN;
    Event__LogRequest *lr;
    int rc;
    while ((rc = gen_logs_next(g, &ts, &lr, err, sizeof err)) == 1) {
        if (i >= n_golden) fail_msg("%s: more than the %zu golden records", preset, n_golden);
        char *text;
        size_t len;
        assert_int_equal(pbtext_format(&lr->base, &text, &len), 0);
        assert_same_record(preset, "as built", i, text, golden[i]);
        free(text);

        /* the wire bytes decode to the same record (private fields as unknown fields) */
        size_t size = event__log_request__get_packed_size(lr);
        uint8_t *buf = malloc(size ? size : 1);
        event__log_request__pack(lr, buf);
        Event__LogRequest *back = event__log_request__unpack(NULL, size, buf);
        assert_non_null(back);
        assert_int_equal(pbtext_format(&back->base, &text, &len), 0);
        assert_same_record(preset, "after a wire round trip", i, text, golden[i]);
        free(text);
        event__log_request__free_unpacked(back, NULL);
        free(buf);

        /* record times never go backwards: they are send times */
        assert_true(ts >= last_ts);
        last_ts = ts;
        i++;
    }
    if (rc < 0) fail_msg("%s: %s", preset, err);
    assert_int_equal(i, n_golden);
    gen_logs_free(g);
    for (size_t k = 0; k < n_golden; k++)
        free(golden[k]);
    free(golden);
}

static void test_store_to_item(void **s)
{
    (void)s;
    check_preset("createStoreToItemBuilder", 16);
}

static void test_item_shopping_cart(void **s)
{
    (void)s;
    check_preset("createItemShoppingCartBuilder", 37);
}

static void test_store_insertion_item_shopping_cart(void **s)
{
    (void)s;
    check_preset("createStoreInsertionItemShoppingCartBuilder", 37);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_to_item),
        cmocka_unit_test(test_item_shopping_cart),
        cmocka_unit_test(test_store_insertion_item_shopping_cart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
