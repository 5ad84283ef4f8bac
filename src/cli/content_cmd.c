/* logproc generate content [flags]: the fake content catalogue (spec/fake-data.md §2, §9;
 * docs/GENERATOR.md "generate content").
 *
 * Upload (the reference's ContentGenerator): builds the default catalogue (platform 1, 10 stores
 * x 10 items x 2 promotions = 310 entries) and sends it in batches of 100 as
 * PUT <root>v1/content/batch, each body a compact JSON object from content id to its request
 * fields (keys in the order type, storeId, itemId, promotionId). Any status but 200 ends the run
 * with an error naming the URL and the status. --output FILE writes the batch bodies as JSON
 * lines instead (or as well).
 *
 * --serve: a local Content API on libmicrohttpd for the join and the tests. It preloads the
 * default catalogue (request and document fields), merges PUT v1/content/batch bodies into it
 * (field by field, so a re-sent catalogue keeps the document fields) and
 * answers POST v1/content/query {"content_ids":[...]} with {"<id>":{fields}} for the ids it knows.
 * With --contentApiKey every request must carry that x-api-key (401 otherwise). Test aids:
 * --failFirst N / --failEvery N answer queries with --failStatus, --delay waits before each
 * query's answer. Prints `listening on http://ADDR:PORT/` on stdout, then serves until SIGTERM or
 * SIGINT. (Its own small server rather than ops/http.c: it needs PUT and the x-api-key header.) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "cli/cli.h"
#include "connectors/content_api.h"
#include "generator/content_db.h"
#include "runtime/flags.h"
#include "runtime/log.h"

#define USAGE                                                                                      \
    "logproc generate content --contentApiRootUrl URL/ --contentApiKey KEY [--output FILE]\n"      \
    "       logproc generate content --serve [--port P] [--address A] [--contentApiKey KEY]"
#define BATCH_SIZE 100
#define SERVE_MAX_BODY (8u << 20)       /* a PUT body */
#define SERVE_MAX_QUERY_IDS 10000       /* ids in one query */
#define SERVE_MAX_ENTRIES 1000000       /* catalogue entries held */

typedef struct content_opts {
    char *root_url, *api_key, *output, *address;
    int64_t timeout_ms;
    bool serve, preload;
    int64_t port;
    int64_t fail_first, fail_every, fail_status;
    int64_t delay_ms;
    int64_t stores, items_per_store, promotions_per_item;
} content_opts;

#define O(f) offsetof(content_opts, f)
static const flag_def content_flags[] = {
    {"contentApiRootUrl", NULL, FLAG_STRING, "", O(root_url),
     "Content API root, ending with / (upload mode)", 0},
    {"contentApiKey", NULL, FLAG_STRING, "", O(api_key),
     "x-api-key sent (upload) or required (--serve; empty: no check); never logged", 0},
    {"contentApiTimeout", NULL, FLAG_DURATION, "PT10S", O(timeout_ms), "timeout of one PUT", 0},
    {"output", "o", FLAG_STRING, "", O(output),
     "also (or, without --contentApiRootUrl, only) write each batch body as one JSON line", 0},
    {"stores", NULL, FLAG_INT, "10", O(stores), "stores in the catalogue", 0},
    {"itemsPerStore", NULL, FLAG_INT, "10", O(items_per_store), "items per store", 0},
    {"promotionsPerItem", NULL, FLAG_INT, "2", O(promotions_per_item), "promotions per item", 0},
    {"serve", NULL, FLAG_BOOL, "false", O(serve), "serve a local Content API until SIGTERM", 0},
    {"port", NULL, FLAG_INT, "5150", O(port), "--serve: port (0: any free port)", 0},
    {"address", NULL, FLAG_STRING, "127.0.0.1", O(address), "--serve: IPv4 address to bind", 0},
    {"preload", NULL, FLAG_BOOL, "true", O(preload),
     "--serve: start with the catalogue (request and document fields); --no-preload: empty", 0},
    {"failFirst", NULL, FLAG_INT, "0", O(fail_first),
     "--serve test aid: answer the first N queries with --failStatus", 0},
    {"failEvery", NULL, FLAG_INT, "0", O(fail_every),
     "--serve test aid: answer every Nth query with --failStatus", 0},
    {"failStatus", NULL, FLAG_INT, "503", O(fail_status), "--serve test aid: the failing status",
     0},
    {"delay", NULL, FLAG_DURATION, "PT0S", O(delay_ms),
     "--serve test aid: wait this long before answering each query", 0},
};

/* ---- the catalogue as JSON ---- */

/* The entry's request fields (and, with docs, its document fields) as a new JSON object, keys
 * in the order type, storeId, itemId, promotionId[, storeName, contentName]. */
static json_t *entry_json(const content_entry *e, int docs)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = json_object_set_new(o, "type", json_string(contentdb_type_name(e->type)));
    if (e->store_id) bad |= json_object_set_new(o, "storeId", json_string(e->store_id));
    if (e->item_id) bad |= json_object_set_new(o, "itemId", json_string(e->item_id));
    if (e->promotion_id) bad |= json_object_set_new(o, "promotionId", json_string(e->promotion_id));
    if (docs && e->type != CONTENT_PROMOTION) {
        char name[64];
        if (e->type == CONTENT_ITEM) {
            snprintf(name, sizeof name, "Item %s", e->id);
            bad |= json_object_set_new(o, "contentName", json_string(name));
        }
        snprintf(name, sizeof name, "Store %s", e->store_id ? e->store_id : e->id);
        bad |= json_object_set_new(o, "storeName", json_string(name));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int catalogue(const content_opts *o, contentdb **db, char *err, size_t errlen)
{
    return contentdb_new(o->stores, o->items_per_store, o->promotions_per_item, db, err, errlen);
}

/* ---- upload ---- */

static int upload(const content_opts *o)
{
    char err[1024];
    int rc = 1;
    contentdb *db = NULL;
    content_api_client *client = NULL;
    FILE *out = NULL;
    bool to_api = *o->root_url != 0;
    if (!to_api && !*o->output) {
        fprintf(stderr, "logproc generate content: --contentApiRootUrl URL/ or --output FILE is "
                        "required (or --serve)\n");
        return 2;
    }
    if (to_api && !*o->api_key) {
        fprintf(stderr, "logproc generate content: --contentApiKey is required with "
                        "--contentApiRootUrl\n");
        return 2;
    }
    if (to_api) {
        content_api_config cc = {.root_url = o->root_url, .api_key = o->api_key,
                                 .timeout_ms = o->timeout_ms};
        cc.retry.max_attempts = 1;
        if (content_api_client_new(&cc, &client, err, sizeof err)) {
            fprintf(stderr, "logproc generate content: %s\n", err);
            return 2;
        }
    }
    if (catalogue(o, &db, err, sizeof err)) {
        fprintf(stderr, "logproc generate content: %s\n", err);
        rc = 2;
        goto done;
    }
    if (*o->output && !(out = fopen(o->output, "w"))) {
        fprintf(stderr, "logproc generate content: cannot write %s: %s\n", o->output,
                strerror(errno));
        goto done;
    }
    size_t n = contentdb_size(db), batches = 0;
    for (size_t start = 0; start < n; start += BATCH_SIZE) {
        json_t *batch = json_object();
        if (!batch) goto oom;
        for (size_t i = start; i < n && i < start + BATCH_SIZE; i++) {
            const content_entry *e = contentdb_entry(db, (uint32_t)i);
            json_t *v = entry_json(e, 0);
            if (!v || json_object_set_new(batch, e->id, v)) {
                json_decref(batch);
                goto oom;
            }
        }
        char *body = json_dumps(batch, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(batch);
        if (!body) goto oom;
        int bad = 0;
        if (out && (fputs(body, out) == EOF || fputc('\n', out) == EOF)) {
            fprintf(stderr, "logproc generate content: writing %s failed\n", o->output);
            bad = 1;
        }
        if (!bad && client && content_api_put_batch(client, body, strlen(body), err, sizeof err)) {
            fprintf(stderr, "logproc generate content: %s\n", err);
            bad = 1;
        }
        free(body);
        if (bad) goto done;
        batches++;
    }
    if (out) {
        int e = fclose(out);
        out = NULL;
        if (e) {
            fprintf(stderr, "logproc generate content: writing %s failed\n", o->output);
            goto done;
        }
    }
    log_info("generate", "content done entries=%zu batches=%zu to=%s%s%s", n, batches,
             to_api ? o->root_url : "", to_api && *o->output ? "," : "", o->output);
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "logproc generate content: out of memory\n");
done:
    if (out) fclose(out);
    content_api_client_free(client);
    contentdb_free(db);
    return rc;
}

/* ---- serve ---- */

typedef struct server {
    pthread_mutex_t mu;
    json_t *db; /* id -> fields object */
    const content_opts *o;
    uint64_t queries, batches, failed;
} server;

typedef struct req_body {
    char *buf;
    size_t len, cap;
    int too_big;
} req_body;

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result answer_json(struct MHD_Connection *c, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) return answer(c, 500, "{\"error\":\"out of memory\"}");
    enum MHD_Result rc = answer(c, status, text);
    free(text);
    return rc;
}

static void pause_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static enum MHD_Result serve_query(server *s, struct MHD_Connection *c, const char *body,
                                   size_t len)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = ++s->queries;
    pthread_mutex_unlock(&s->mu);
    const content_opts *o = s->o;
    if (o->delay_ms > 0) pause_ms(o->delay_ms);
    if ((o->fail_first > 0 && n <= (uint64_t)o->fail_first) ||
        (o->fail_every > 0 && n % (uint64_t)o->fail_every == 0)) {
        pthread_mutex_lock(&s->mu);
        s->failed++;
        pthread_mutex_unlock(&s->mu);
        return answer(c, (int)o->fail_status, "{\"error\":\"failing on purpose (test aid)\"}");
    }
    json_error_t jerr;
    json_t *q = json_loadb(body, len, 0, &jerr);
    json_t *ids = q ? json_object_get(q, "content_ids") : NULL;
    if (!json_is_array(ids) || json_array_size(ids) > SERVE_MAX_QUERY_IDS) {
        json_decref(q);
        return answer(c, 400, "{\"error\":\"want {\\\"content_ids\\\":[...]} with at most "
                              "10000 ids\"}");
    }
    json_t *res = json_object();
    size_t i;
    json_t *id;
    pthread_mutex_lock(&s->mu);
    json_array_foreach(ids, i, id)
    {
        const char *k = json_string_value(id);
        json_t *v = k ? json_object_get(s->db, k) : NULL;
        if (v && res) json_object_set_new(res, k, json_deep_copy(v));
    }
    pthread_mutex_unlock(&s->mu);
    json_decref(q);
    if (!res) return answer(c, 500, "{\"error\":\"out of memory\"}");
    enum MHD_Result rc = answer_json(c, 200, res);
    json_decref(res);
    return rc;
}

static enum MHD_Result serve_batch(server *s, struct MHD_Connection *c, const char *body,
                                   size_t len)
{
    json_error_t jerr;
    json_t *b = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(b)) {
        json_decref(b);
        return answer(c, 400, "{\"error\":\"want a JSON object from content id to fields\"}");
    }
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (!json_is_object(v)) {
            json_decref(b);
            return answer(c, 400, "{\"error\":\"every entry must be an object\"}");
        }
    }
    int full = 0;
    pthread_mutex_lock(&s->mu);
    json_object_foreach(b, k, v)
    {
        json_t *have = json_object_get(s->db, k);
        if (have) {
            json_object_update(have, v); /* fields merge: document fields stay */
            continue;
        }
        if (json_object_size(s->db) >= SERVE_MAX_ENTRIES) {
            full = 1;
            break;
        }
        json_object_set_new(s->db, k, json_deep_copy(v));
    }
    s->batches++;
    pthread_mutex_unlock(&s->mu);
    json_decref(b);
    if (full) return answer(c, 413, "{\"error\":\"catalogue is full (1000000 entries)\"}");
    return answer(c, 200, "{}");
}

static int key_ok(const server *s, struct MHD_Connection *c)
{
    const char *want = s->o->api_key;
    if (!*want) return 1;
    const char *got = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
    if (!got) return 0;
    size_t n = strlen(want);
    if (strlen(got) != n) return 0;
    unsigned char diff = 0; /* the whole string is compared whatever differs */
    for (size_t i = 0; i < n; i++) diff |= (unsigned char)(got[i] ^ want[i]);
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    server *s = cls;
    if (!*state) {
        req_body *b = calloc(1, sizeof *b);
        if (!b) return MHD_NO;
        *state = b;
        return MHD_YES;
    }
    req_body *b = *state;
    if (*upload_size) {
        if (b->len + *upload_size > SERVE_MAX_BODY) {
            b->too_big = 1;
        } else {
            if (b->len + *upload_size + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < b->len + *upload_size + 1) cap *= 2;
                char *p = realloc(b->buf, cap);
                if (!p) return MHD_NO;
                b->buf = p;
                b->cap = cap;
            }
            memcpy(b->buf + b->len, upload, *upload_size);
            b->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (b->too_big) return answer(c, 413, "{\"error\":\"request body over 8 MiB\"}");
    if (!strcmp(url, "/healthz")) return answer(c, 200, "{\"status\":\"ok\"}");
    int is_query = !strcmp(url, "/v1/content/query"), is_batch = !strcmp(url, "/v1/content/batch");
    if (!is_query && !is_batch) return answer(c, 404, "{\"error\":\"not found\"}");
    if ((is_query && strcmp(method, "POST")) || (is_batch && strcmp(method, "PUT")))
        return answer(c, 405, "{\"error\":\"method not allowed\"}");
    if (!key_ok(s, c)) return answer(c, 401, "{\"error\":\"missing or wrong x-api-key\"}");
    const char *body = b->buf ? b->buf : "";
    return is_query ? serve_query(s, c, body, b->len) : serve_batch(s, c, body, b->len);
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    req_body *b = *state;
    if (b) free(b->buf);
    free(b);
    *state = NULL;
}

static int serve(const content_opts *o)
{
    char err[512];
    if (o->port < 0 || o->port > 65535) {
        fprintf(stderr, "logproc generate content: --port=%lld: want 0..65535\n",
                (long long)o->port);
        return 2;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->address, &sa.sin_addr) != 1) {
        fprintf(stderr, "logproc generate content: --address=%s: not an IPv4 address\n",
                o->address);
        return 2;
    }
    server s = {.o = o};
    contentdb *db = NULL;
    if (catalogue(o, &db, err, sizeof err)) {
        fprintf(stderr, "logproc generate content: %s\n", err);
        return 2;
    }
    if (!(s.db = json_object())) {
        contentdb_free(db);
        fprintf(stderr, "logproc generate content: out of memory\n");
        return 1;
    }
    for (size_t i = 0; o->preload && i < contentdb_size(db); i++) {
        const content_entry *e = contentdb_entry(db, (uint32_t)i);
        if (json_object_set_new(s.db, e->id, entry_json(e, 1))) {
            contentdb_free(db);
            json_decref(s.db);
            fprintf(stderr, "logproc generate content: out of memory\n");
            return 1;
        }
    }
    size_t preloaded = json_object_size(s.db);
    contentdb_free(db);
    pthread_mutex_init(&s.mu, NULL);

    /* the server's threads inherit this mask, so the signals reach sigwait below */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)o->port, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    int rc = 1;
    if (!d) {
        fprintf(stderr, "logproc generate content: cannot listen on %s:%lld (in use?)\n",
                o->address, (long long)o->port);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : (int)o->port;
    log_info("content-api", "serving entries=%zu address=%s port=%d key=%s", preloaded,
             o->address, port, *o->api_key ? "required" : "none");
    printf("listening on http://%s:%d/\n", o->address, port);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    log_info("content-api", "stopped signal=%d queries=%llu failedOnPurpose=%llu batches=%llu "
             "entries=%zu",
             sig, (unsigned long long)s.queries, (unsigned long long)s.failed,
             (unsigned long long)s.batches, json_object_size(s.db));
    rc = 0;
out:
    pthread_mutex_destroy(&s.mu);
    json_decref(s.db);
    return rc;
}

int cli_generate_content(int argc, char **argv)
{
    content_opts o;
    memset(&o, 0, sizeof o);
    flag_table t[1] = {FLAG_TABLE("content", content_flags, &o)};
    char err[1024];
    bool help = false;
    size_t npos = 0;
    char *pos[1];
    int rc = 2;
    if (flags_parse(t, 1, argc, argv, pos, 0, &npos, &help, err, sizeof err)) {
        fprintf(stderr, "logproc generate content: %s\n", err);
        goto out;
    }
    if (help) {
        flags_help(stdout, USAGE, t, 1);
        rc = 0;
        goto out;
    }
    rc = o.serve ? serve(&o) : upload(&o);
out:
    flags_free(t, 1);
    return rc;
}
