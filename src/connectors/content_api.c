#include "connectors/content_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "formats/java_text.h"
#include "runtime/htab.h"

/* ============================== keys and fields ============================== */

int content_keys_init(content_keys *k, const char *const *names, size_t n, char *err,
                      size_t errlen)
{
    memset(k, 0, sizeof *k);
    if (n > CONTENT_API_MAX_KEYS) {
        snprintf(err, errlen, "flag --contentIdFieldKeys: %zu keys given, at most %d allowed", n,
                 CONTENT_API_MAX_KEYS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i] ? names[i] : "";
        k->hash[i] = java_string_hash(s, strlen(s));
    }
    k->n = n;
    return 0;
}

static int keys_has(const content_keys *k, int32_t h)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->hash[i] == h) return 1;
    return 0;
}

void content_fields_clear(content_fields *f)
{
    for (size_t i = 0; i < f->n; i++) free(f->value[i]);
    f->n = 0;
}

/* ============================== request body ============================== */

static int put_json_string(rt_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (rt_buf_append(b, "\"", 1)) return -1;
    size_t run = 0; /* bytes copied as they are, flushed in one append */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[7];
        size_t elen = 0;
        switch (ch) {
        case '"': elen = 2, esc[0] = '\\', esc[1] = '"'; break;
        case '\\': elen = 2, esc[0] = '\\', esc[1] = '\\'; break;
        case '\n': elen = 2, esc[0] = '\\', esc[1] = 'n'; break;
        case '\t': elen = 2, esc[0] = '\\', esc[1] = 't'; break;
        case '\r': elen = 2, esc[0] = '\\', esc[1] = 'r'; break;
        case '\b': elen = 2, esc[0] = '\\', esc[1] = 'b'; break;
        case '\f': elen = 2, esc[0] = '\\', esc[1] = 'f'; break;
        default:
            if (ch < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[ch >> 4];
                esc[5] = hex[ch & 15];
                elen = 6;
            }
        }
        if (!elen) {
            run++;
            continue;
        }
        if (rt_buf_append(b, s + i - run, run) || rt_buf_append(b, esc, elen)) return -1;
        run = 0;
    }
    if (rt_buf_append(b, s + n - run, run)) return -1;
    return rt_buf_append(b, "\"", 1);
}

int content_api_query_body(const char *id, size_t id_len, rt_buf *out)
{
    static const char head[] = "{\"content_ids\":[", tail[] = "],\"include_deleted\":true}";
    size_t len0 = out->len;
    if (rt_buf_append(out, head, sizeof head - 1) || put_json_string(out, id, id_len) ||
        rt_buf_append(out, tail, sizeof tail - 1)) {
        out->len = len0;
        return -1;
    }
    return 0;
}

/* ============================== response ============================== */

int content_api_parse_response(const char *body, size_t len, const char *id,
                               const content_keys *keys, content_fields *out, char *err,
                               size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    int rc = -1;
    if (!root) {
        snprintf(err, errlen, "content %s: response is not JSON (line %d column %d: %s)", id,
                 jerr.line, jerr.column, jerr.text);
        return -1;
    }
    if (json_is_null(root)) {
        rc = 0;
        goto out;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "content %s: response is not a JSON object", id);
        goto out;
    }
    json_t *entry = json_object_get(root, id);
    if (!entry) {
        rc = 0;
        goto out;
    }
    if (!json_is_object(entry)) {
        snprintf(err, errlen, "content %s: its entry in the response is not an object", id);
        goto out;
    }
    const char *name;
    json_t *v;
    json_object_foreach(entry, name, v)
    {
        int32_t h = java_string_hash(name, strlen(name));
        if (!keys_has(keys, h)) continue;
        if (!json_is_string(v)) {
            snprintf(err, errlen, "content %s: field %s is %s, not a string", id, name,
                     json_is_null(v)      ? "null"
                     : json_is_number(v)  ? "a number"
                     : json_is_boolean(v) ? "a boolean"
                     : json_is_array(v)   ? "an array"
                                          : "an object");
            goto fail;
        }
        size_t vlen = json_string_length(v);
        if (vlen > CONTENT_API_MAX_VALUE) {
            snprintf(err, errlen, "content %s: field %s is %zu bytes, over the limit of %d", id,
                     name, vlen, CONTENT_API_MAX_VALUE);
            goto fail;
        }
        char *copy = malloc(vlen + 1);
        if (!copy) {
            snprintf(err, errlen, "content %s: out of memory", id);
            goto fail;
        }
        memcpy(copy, json_string_value(v), vlen);
        copy[vlen] = 0;
        size_t i = 0;
        while (i < out->n && out->hash[i] != h) i++;
        if (i < out->n) {
            free(out->value[i]);
        } else if (out->n == CONTENT_API_MAX_KEYS) {
            free(copy); /* cannot happen: at most one slot per configured hash */
            continue;
        } else {
            out->hash[out->n++] = h;
        }
        out->value[i] = copy;
    }
    rc = 0;
    goto out;
fail:
    content_fields_clear(out);
out:
    json_decref(root);
    return rc;
}

/* ============================== retries ============================== */

int content_api_retry_policy_init(content_api_retry_policy *p, int64_t max_attempts,
                                  char *const *items, size_t n, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (max_attempts < 1 || max_attempts > CONTENT_API_MAX_ATTEMPTS_LIMIT) {
        snprintf(err, errlen, "flag --contentApiMaxAttempts=%lld: want 1..%d",
                 (long long)max_attempts, CONTENT_API_MAX_ATTEMPTS_LIMIT);
        return -1;
    }
    p->max_attempts = (int)max_attempts;
    for (size_t i = 0; i < n; i++) {
        const char *s = items[i];
        char *end;
        errno = 0;
        long code = strtol(s, &end, 10);
        if (end == s || *end != '=' || errno || code < 0 || code > 999) {
            snprintf(err, errlen,
                     "flag --contentApiMaxAttemptsPerStatusCode=%s: want STATUS=ATTEMPTS with a "
                     "status 0..999",
                     s);
            return -1;
        }
        const char *a = end + 1;
        errno = 0;
        long att = strtol(a, &end, 10);
        if (end == a || *end || errno || att < 1 || att > CONTENT_API_MAX_ATTEMPTS_LIMIT) {
            snprintf(err, errlen,
                     "flag --contentApiMaxAttemptsPerStatusCode=%s: attempts must be 1..%d", s,
                     CONTENT_API_MAX_ATTEMPTS_LIMIT);
            return -1;
        }
        size_t k = 0;
        while (k < p->n_codes && p->code[k] != (int)code) k++;
        if (k == p->n_codes) {
            if (p->n_codes == CONTENT_API_MAX_STATUS_CODES) {
                snprintf(err, errlen,
                         "flag --contentApiMaxAttemptsPerStatusCode: more than %d status codes",
                         CONTENT_API_MAX_STATUS_CODES);
                return -1;
            }
            p->code[p->n_codes++] = (int)code;
        }
        p->attempts[k] = (int)att;
    }
    return 0;
}

int content_api_retry_decide(const content_api_retry_policy *p, content_api_failures *f,
                             int status, int *sleep_ms)
{
    *sleep_ms = 0;
    size_t k = 0;
    while (k < f->n_codes && f->code[k] != status) k++;
    if (k == f->n_codes) {
        if (f->n_codes == CONTENT_API_MAX_STATUS_CODES) return 0;
        f->code[k] = status;
        f->count[k] = 0;
        f->n_codes++;
    }
    int n = ++f->count[k];
    int max = p->max_attempts;
    for (size_t i = 0; i < p->n_codes; i++)
        if (p->code[i] == status) max = p->attempts[i];
    if (n >= max) return 0;
    *sleep_ms = 50 * (n + 1);
    return 1;
}

/* ============================== cache ============================== */

typedef struct centry {
    rt_hentry *prev, *next; /* LRU list: head the most recently used */
    uint64_t hash;
    int64_t expires;
    int failed, status;
    size_t n;
    char **value;   /* n pointers, then n hashes (fhash), one allocation */
    int32_t *fhash;
    char *error;
} centry;

struct content_cache {
    rt_htab h;
    rt_hentry *head, *tail;
    size_t max;
    int64_t ttl, failure_ttl;
};

static centry *ce(rt_hentry *e)
{
    return rt_hentry_val(e);
}

static void lru_unlink(content_cache *c, rt_hentry *e)
{
    centry *v = ce(e);
    if (v->prev) ce(v->prev)->next = v->next;
    else c->head = v->next;
    if (v->next) ce(v->next)->prev = v->prev;
    else c->tail = v->prev;
    v->prev = v->next = NULL;
}

static void lru_push_front(content_cache *c, rt_hentry *e)
{
    centry *v = ce(e);
    v->prev = NULL;
    v->next = c->head;
    if (c->head) ce(c->head)->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static void entry_free_values(centry *v)
{
    for (size_t i = 0; i < v->n; i++) free(v->value[i]);
    free(v->value); /* also holds fhash[] */
    free(v->error);
    v->n = 0;
    v->fhash = NULL;
    v->value = NULL;
    v->error = NULL;
}

static void entry_remove(content_cache *c, rt_hentry *e)
{
    centry *v = ce(e);
    lru_unlink(c, e);
    entry_free_values(v);
    rt_htab_remove(&c->h, e, v->hash);
}

int content_cache_new(int64_t max_entries, int64_t ttl_ms, int64_t failure_ttl_ms,
                      content_cache **out)
{
    if (max_entries < 1) return -1;
    content_cache *c = calloc(1, sizeof *c);
    if (!c) return -1;
    rt_htab_init(&c->h, NULL, NULL);
    c->max = (size_t)max_entries;
    c->ttl = ttl_ms;
    c->failure_ttl = failure_ttl_ms;
    *out = c;
    return 0;
}

void content_cache_free(content_cache *c)
{
    if (!c) return;
    for (rt_hentry *e = c->head; e; e = ce(e)->next) entry_free_values(ce(e));
    rt_htab_clear(&c->h);
    free(c);
}

size_t content_cache_size(const content_cache *c)
{
    return rt_htab_count(&c->h);
}

int content_cache_get(content_cache *c, const char *id, size_t id_len, int64_t now,
                      content_cache_hit *hit)
{
    uint64_t h = rt_hash_bytes(id, id_len);
    rt_hentry *e = rt_htab_find(&c->h, id, id_len, h);
    if (!e) return 0;
    centry *v = ce(e);
    if (v->expires <= now) {
        entry_remove(c, e);
        return 0;
    }
    if (!v->failed) v->expires = now + c->ttl;
    lru_unlink(c, e);
    lru_push_front(c, e);
    memset(hit, 0, sizeof *hit);
    hit->failed = v->failed;
    hit->status = v->status;
    hit->error = v->error ? v->error : "";
    hit->n_fields = v->n;
    hit->hash = v->fhash;
    hit->value = v->value;
    return 1;
}

int content_cache_put(content_cache *c, const char *id, size_t id_len, int64_t now,
                      content_fields *fields, int status, const char *error)
{
    /* build the new values first, so a failed allocation changes nothing */
    int32_t *fh = NULL;
    char **vals = NULL;
    char *errcopy = NULL;
    size_t n = fields ? fields->n : 0;
    if (n) {
        vals = malloc(n * (sizeof *vals + sizeof *fh));
        if (!vals) return -1;
        fh = (int32_t *)(void *)(vals + n);
    }
    if (!fields && !(errcopy = strdup(error ? error : ""))) return -1;
    uint64_t h = rt_hash_bytes(id, id_len);
    rt_hentry *e = rt_htab_find(&c->h, id, id_len, h);
    if (e) {
        lru_unlink(c, e);
        entry_free_values(ce(e));
    } else if (!(e = rt_htab_insert(&c->h, id, id_len, h, sizeof(centry)))) {
        free(vals);
        free(errcopy);
        return -1;
    }
    centry *v = ce(e);
    v->hash = h;
    v->failed = !fields;
    v->status = status;
    v->expires = now + (fields ? c->ttl : c->failure_ttl);
    v->error = errcopy;
    v->n = n;
    v->fhash = fh;
    v->value = vals;
    for (size_t i = 0; i < n; i++) {
        fh[i] = fields->hash[i];
        vals[i] = fields->value[i];
    }
    if (fields) fields->n = 0; /* the values moved */
    lru_push_front(c, e);
    while (rt_htab_count(&c->h) > c->max && c->tail && c->tail != e) entry_remove(c, c->tail);
    return 0;
}

/* ============================== client ============================== */

struct content_api_client {
    CURL *curl;
    struct curl_slist *headers; /* holds the key: freed, never printed */
    char *query_url, *batch_url;
    content_api_config cfg;
    rt_buf body, req;
    int body_too_big;
    char curl_err[CURL_ERROR_SIZE];
};

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
    content_api_client *c = arg;
    size_t n = size * nmemb;
    if (rt_buf_append(&c->body, p, n)) {
        c->body_too_big = 1;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

int content_api_client_new(const content_api_config *cfg, content_api_client **out, char *err,
                           size_t errlen)
{
    const char *root = cfg->root_url ? cfg->root_url : "";
    size_t rl = strlen(root);
    if (!rl || root[rl - 1] != '/') {
        snprintf(err, errlen, "flag --contentApiRootUrl=%s: must end with \"/\"", root);
        return -1;
    }
    content_api_client *c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->cfg = *cfg;
    c->cfg.root_url = NULL;
    c->cfg.api_key = NULL;
    rt_buf_init(&c->body, CONTENT_API_MAX_BODY);
    rt_buf_init(&c->req, 2 * CONTENT_API_MAX_ID + 64);
    c->query_url = concat(root, "v1/content/query");
    c->batch_url = concat(root, "v1/content/batch");
    char *keyhdr = concat("x-api-key: ", cfg->api_key ? cfg->api_key : "");
    if (!c->query_url || !c->batch_url || !keyhdr) {
        free(keyhdr);
        goto oom;
    }
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *l2 = l ? curl_slist_append(l, keyhdr) : NULL;
    memset(keyhdr, 0, strlen(keyhdr)); /* curl copied it */
    free(keyhdr);
    if (!l2) {
        curl_slist_free_all(l);
        goto oom;
    }
    c->headers = l2;
    if (!(c->curl = curl_easy_init())) goto oom;
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)(cfg->timeout_ms > 0 ? cfg->timeout_ms : 0));
    *out = c;
    return 0;
oom:
    snprintf(err, errlen, "content api: out of memory");
    content_api_client_free(c);
    return -1;
}

void content_api_client_free(content_api_client *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    free(c->query_url);
    free(c->batch_url);
    rt_buf_free(&c->body);
    rt_buf_free(&c->req);
    free(c);
}

/* One request. Returns the HTTP status, or 0 with err set on a transport error. */
static int perform(content_api_client *c, const char *url, const char *method, const char *body,
                   size_t len, char *err, size_t errlen)
{
    rt_buf_reset(&c->body);
    c->body_too_big = 0;
    c->curl_err[0] = 0;
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        if (c->body_too_big)
            snprintf(err, errlen, "%s %s: response body over the limit of %u bytes", method, url,
                     CONTENT_API_MAX_BODY);
        else
            snprintf(err, errlen, "%s %s: %s", method, url,
                     c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
        return 0;
    }
    long code = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) snprintf(err, errlen, "%s %s: status %ld", method, url, code);
    return (int)code;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

int content_api_query(content_api_client *c, const char *id, size_t id_len,
                      const content_keys *keys, content_fields *out, content_api_result *res)
{
    memset(res, 0, sizeof *res);
    if (id_len > CONTENT_API_MAX_ID) {
        snprintf(res->error, sizeof res->error, "content id of %zu bytes is over the limit of %d",
                 id_len, CONTENT_API_MAX_ID);
        return 0;
    }
    rt_buf_reset(&c->req);
    if (content_api_query_body(id, id_len, &c->req)) {
        snprintf(res->error, sizeof res->error, "content id does not fit the request buffer");
        return 0;
    }
    char idz[CONTENT_API_MAX_ID + 1];
    memcpy(idz, id, id_len);
    idz[id_len] = 0;
    content_api_failures f = {0};
    for (;;) {
        int status = perform(c, c->query_url, "POST", (const char *)c->req.data, c->req.len,
                             res->error, sizeof res->error);
        res->attempts++;
        res->status = status;
        if (status == 200) {
            char perr[400];
            if (content_api_parse_response((const char *)c->body.data, c->body.len, idz, keys,
                                           out, perr, sizeof perr)) {
                snprintf(res->error, sizeof res->error, "POST %s: %s", c->query_url, perr);
                return 0;
            }
            res->ok = 1;
            res->error[0] = 0;
            return 0;
        }
        int retry_status = status;
        if (!status && strstr(res->error, "GOAWAY")) retry_status = 410;
        int sleep_ms;
        if (!content_api_retry_decide(&c->cfg.retry, &f, retry_status, &sleep_ms)) return 0;
        if (!c->cfg.no_sleep) pause_ms(sleep_ms);
        res->retries++;
    }
}

int content_api_put_batch(content_api_client *c, const char *body, size_t len, char *err,
                          size_t errlen)
{
    int status = perform(c, c->batch_url, "PUT", body, len, err, errlen);
    return status == 200 ? 0 : -1;
}
