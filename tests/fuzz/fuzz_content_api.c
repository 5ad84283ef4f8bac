/* libFuzzer target: the Content API client's pure parsers (connectors/content_api.h).
 *
 * The input is "<content id>\n<response body>" (no newline: the id is "c1"). The body goes to
 * content_api_parse_response with the keys flat-output asks for; kept fields must be as many as
 * the response's distinct key hashes allow and each value within CONTENT_API_MAX_VALUE, and an
 * error leaves the output empty with a text. The id also goes through content_api_query_body,
 * whose result must be JSON holding the id unchanged. And the body's lines are read as the
 * --contentApiMaxAttemptsPerStatusCode items for content_api_retry_policy_init.
 *
 *   fuzz_content_api -max_len=16384 CORPUS_DIR */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "connectors/content_api.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static void query_body(const char *id, size_t id_len)
{
    rt_buf out;
    rt_buf_init(&out, 1 << 20);
    if (content_api_query_body(id, id_len, &out) == 0) {
        json_error_t e;
        json_t *v = json_loadb((const char *)out.data, out.len, JSON_ALLOW_NUL, &e);
        /* an id that is not UTF-8 is sent as it is (as Jackson would): jansson may refuse it */
        if (v) {
            json_t *ids = json_object_get(v, "content_ids");
            CHECK(json_is_array(ids) && json_array_size(ids) == 1);
            json_t *s = json_array_get(ids, 0);
            CHECK(json_string_length(s) == id_len && !memcmp(json_string_value(s), id, id_len));
            CHECK(json_is_true(json_object_get(v, "include_deleted")));
            json_decref(v);
        }
    }
    rt_buf_free(&out);
}

static void retry_items(const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    CHECK(copy != NULL);
    memcpy(copy, body, len);
    copy[len] = 0;
    char *items[32];
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, "\n", &save); t && n < 32; t = strtok_r(NULL, "\n", &save))
        items[n++] = t;
    content_api_retry_policy p;
    char err[256];
    if (content_api_retry_policy_init(&p, 3, items, n, err, sizeof err) == 0) {
        CHECK(p.n_codes <= CONTENT_API_MAX_STATUS_CODES);
        content_api_failures f;
        memset(&f, 0, sizeof f);
        int sleep_ms, tries = 0;
        /* a give-up always comes, after at most the largest attempts value */
        while (content_api_retry_decide(&p, &f, p.n_codes ? p.code[0] : 500, &sleep_ms))
            CHECK(++tries < CONTENT_API_MAX_ATTEMPTS_LIMIT);
    } else {
        CHECK(err[0] != '\0');
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"type", "storeId", "name", "category"};
    static content_keys keys;
    static int ready;
    char err[512];
    if (!ready) {
        CHECK(content_keys_init(&keys, names, 4, err, sizeof err) == 0);
        ready = 1;
    }
    const uint8_t *nl = memchr(data, '\n', size);
    char id[CONTENT_API_MAX_ID + 1] = "c1";
    size_t id_len = 2;
    const char *body = (const char *)data;
    size_t len = size;
    if (nl) {
        id_len = (size_t)(nl - data);
        if (id_len > CONTENT_API_MAX_ID) id_len = CONTENT_API_MAX_ID;
        memcpy(id, data, id_len);
        id[id_len] = 0;
        body = (const char *)nl + 1;
        len = size - (size_t)(nl - data) - 1;
    }
    /* a private copy without a NUL after it: the parser must respect len */
    char *b = malloc(len ? len : 1);
    CHECK(b != NULL);
    memcpy(b, body, len);
    content_fields f;
    memset(&f, 0, sizeof f);
    err[0] = 0;
    if (content_api_parse_response(b, len, id, &keys, &f, err, sizeof err) == 0) {
        CHECK(f.n <= keys.n);
        for (size_t i = 0; i < f.n; i++)
            CHECK(f.value[i] != NULL && strlen(f.value[i]) <= CONTENT_API_MAX_VALUE);
    } else {
        CHECK(f.n == 0 && err[0] != '\0');
    }
    content_fields_clear(&f);
    query_body(id, strlen(id));
    retry_items(b, len);
    free(b);
    return 0;
}
