/* Wire vectors (tests/data/vectors/wire, encoded by the public schema's own code on Google's
 * runtime): every LogRequest decodes, prints as JSON equal to its .json (compared as parsed JSON,
 * floats within a relative 1e-6), and re-encodes to exactly its bytes, with the malloc allocator
 * and with the arena. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.pb-c.h"
#include "formats/pb_json.h"
#include "formats/pb_util.h"

#define EXPECTED_VECTORS 154

typedef struct {
    char **names; /* base names without extension, sorted */
    size_t n;
    char dir[1024];
} vector_set;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void vectors_load(vector_set *vs)
{
    const char *root = getenv("LOGPROC_TEST_DATA");
    assert_non_null(root);
    snprintf(vs->dir, sizeof vs->dir, "%s/vectors/wire", root);
    DIR *d = opendir(vs->dir);
    assert_non_null(d);
    size_t cap = 256;
    vs->names = malloc(cap * sizeof *vs->names);
    vs->n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 4 || strcmp(de->d_name + l - 3, ".pb") != 0) continue;
        if (vs->n == cap) {
            cap *= 2;
            vs->names = realloc(vs->names, cap * sizeof *vs->names);
        }
        vs->names[vs->n++] = strndup(de->d_name, l - 3);
    }
    closedir(d);
    qsort(vs->names, vs->n, sizeof *vs->names, cmp_str);
}

static void vectors_free(vector_set *vs)
{
    for (size_t i = 0; i < vs->n; i++)
        free(vs->names[i]);
    free(vs->names);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)sz + 1);
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) {
        free(buf);
        return NULL;
    }
    buf[sz] = 0;
    *len = (size_t)sz;
    return buf;
}

/* Compares two parsed JSON values; on the first difference writes its path to err and
 * returns -1. Numbers compare within a relative 1e-6 whether integer or real. */
static int json_same(const json_t *a, const json_t *b, char *path, size_t plen, size_t pcap,
                     char *err, size_t errlen)
{
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        if (json_is_integer(a) && json_is_integer(b)) {
            if (json_integer_value(a) == json_integer_value(b)) return 0;
        } else if (x == y || fabs(x - y) <= 1e-6 * fmax(fabs(x), fabs(y))) {
            return 0;
        }
        snprintf(err, errlen, "%s: number %.17g != %.17g", plen ? path : "$", x, y);
        return -1;
    }
    if (json_typeof(a) != json_typeof(b)) {
        snprintf(err, errlen, "%s: JSON type %d != %d", plen ? path : "$", json_typeof(a),
                 json_typeof(b));
        return -1;
    }
    switch (json_typeof(a)) {
    case JSON_STRING:
        if (json_string_length(a) != json_string_length(b) ||
            memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) != 0) {
            snprintf(err, errlen, "%s: string \"%s\" != \"%s\"", plen ? path : "$",
                     json_string_value(a), json_string_value(b));
            return -1;
        }
        return 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) {
            snprintf(err, errlen, "%s: array length %zu != %zu", plen ? path : "$",
                     json_array_size(a), json_array_size(b));
            return -1;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            int w = snprintf(path + plen, pcap - plen, "[%zu]", i);
            size_t nl = plen + ((size_t)w < pcap - plen ? (size_t)w : 0);
            if (json_same(json_array_get(a, i), json_array_get(b, i), path, nl, pcap, err, errlen) <
                0)
                return -1;
            path[plen] = '\0';
        }
        return 0;
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)b, k, v)
        {
            if (!json_object_get(a, k)) {
                snprintf(err, errlen, "%s.%s: missing in output", plen ? path : "$", k);
                return -1;
            }
        }
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *o = json_object_get(b, k);
            if (!o) {
                snprintf(err, errlen, "%s.%s: not expected", plen ? path : "$", k);
                return -1;
            }
            int w = snprintf(path + plen, pcap - plen, ".%s", k);
            size_t nl = plen + ((size_t)w < pcap - plen ? (size_t)w : 0);
            if (json_same(v, o, path, nl, pcap, err, errlen) < 0) return -1;
            path[plen] = '\0';
        }
        return 0;
    }
    default: /* true, false, null: the type says it all */
        return 0;
    }
}

static int json_text_equal(const char *got, const char *want, char *err, size_t errlen)
{
    json_error_t je;
    json_t *a = json_loads(got, JSON_DECODE_ANY, &je);
    if (!a) {
        snprintf(err, errlen, "output is not JSON: %s at %d", je.text, je.position);
        return -1;
    }
    json_t *b = json_loads(want, JSON_DECODE_ANY, &je);
    if (!b) {
        json_decref(a);
        snprintf(err, errlen, "expected file is not JSON: %s", je.text);
        return -1;
    }
    char path[1024] = "";
    int rc = json_same(a, b, path, 0, sizeof path, err, errlen);
    json_decref(a);
    json_decref(b);
    return rc;
}

/* Checks one vector with the given allocator (NULL = malloc). Returns 0 or -1 with err. */
static int check_vector(const vector_set *vs, const char *name, ProtobufCAllocator *alloc,
                        char *err, size_t errlen)
{
    char path[1400];
    size_t pblen, jlen;
    snprintf(path, sizeof path, "%s/%s.pb", vs->dir, name);
    uint8_t *pb = read_file(path, &pblen);
    snprintf(path, sizeof path, "%s/%s.json", vs->dir, name);
    uint8_t *js = read_file(path, &jlen);
    int rc = -1;
    Event__LogRequest *lr = NULL;
    char *json = NULL;
    uint8_t *re = NULL;
    if (!pb || !js) {
        snprintf(err, errlen, "cannot read vector files");
        goto done;
    }
    if (pb_wire_check_depth(&event__log_request__descriptor, pb, pblen, PB_MAX_DEPTH, err, errlen) <
        0)
        goto done;
    lr = event__log_request__unpack(alloc, pblen, pb);
    if (!lr) {
        snprintf(err, errlen, "protobuf-c failed to decode");
        goto done;
    }
    if (pb_check_utf8(&lr->base, err, errlen) < 0) goto done;
    json = pb_json_encode(&lr->base, NULL);
    if (!json) {
        snprintf(err, errlen, "pb_json_encode failed");
        goto done;
    }
    if (json_text_equal(json, (const char *)js, err, errlen) < 0) goto done;
    size_t n = event__log_request__get_packed_size(lr);
    re = malloc(n ? n : 1);
    if (event__log_request__pack(lr, re) != n || n != pblen || memcmp(re, pb, n) != 0) {
        size_t at = 0;
        while (at < n && at < pblen && re[at] == pb[at])
            at++;
        snprintf(err, errlen, "re-encoded %zu bytes vs %zu, first difference at byte %zu", n, pblen,
                 at);
        goto done;
    }
    rc = 0;
done:
    if (lr) event__log_request__free_unpacked(lr, alloc);
    free(json);
    free(re);
    free(pb);
    free(js);
    return rc;
}

static void test_vector_count(void **state)
{
    (void)state;
    vector_set vs;
    vectors_load(&vs);
    assert_int_equal(vs.n, EXPECTED_VECTORS);
    vectors_free(&vs);
}

static void run_all(ProtobufCAllocator *alloc, pb_arena *arena)
{
    vector_set vs;
    vectors_load(&vs);
    int failures = 0;
    for (size_t i = 0; i < vs.n; i++) {
        char err[1024];
        if (arena) pb_arena_reset(arena, 1 << 20);
        if (check_vector(&vs, vs.names[i], alloc, err, sizeof err) < 0) {
            print_error("vector %s: %s\n", vs.names[i], err);
            failures++;
        }
    }
    vectors_free(&vs);
    assert_int_equal(failures, 0);
}

static void test_vectors_malloc(void **state)
{
    (void)state;
    run_all(NULL, NULL);
}

static void test_vectors_arena(void **state)
{
    (void)state;
    pb_arena *a = pb_arena_new(16 << 10, 64 << 20);
    assert_non_null(a);
    run_all(pb_arena_allocator(a), a);
    pb_arena_free(a);
}

/* The hand-written vectors pin specific printing rules; check a few values directly so a
 * comparator bug cannot hide them. */
static void test_vector_printing_details(void **state)
{
    (void)state;
    const char *root = getenv("LOGPROC_TEST_DATA");
    assert_non_null(root);
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/vectors/wire/001-varint-limits.pb", root);
    uint8_t *pb = read_file(path, &len);
    assert_non_null(pb);
    Event__LogRequest *lr = event__log_request__unpack(NULL, len, pb);
    assert_non_null(lr);
    char *json = pb_json_encode(&lr->base, NULL);
    assert_non_null(json);
    /* uint64 limits print as strings, non-ASCII passes through as UTF-8 */
    assert_non_null(strstr(json, "\"clientLogTimestamp\":\"18446744073709551615\""));
    assert_non_null(strstr(json, "\"platformId\":\"9223372036854775807\""));
    assert_non_null(strstr(json, "\"logUserId\":\"log-user-\xc3\xbc\""));
    free(json);
    event__log_request__free_unpacked(lr, NULL);
    free(pb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_count),
        cmocka_unit_test(test_vectors_malloc),
        cmocka_unit_test(test_vectors_arena),
        cmocka_unit_test(test_vector_printing_details),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
