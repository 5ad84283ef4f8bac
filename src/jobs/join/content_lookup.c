#include "jobs/join/content_lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/content_api.h"
#include "formats/pb_util.h"
#include "jobs/join/join_records.h"
#include "runtime/log.h"

typedef struct lookup_op {
    int dummy;
    char *lookup;
    content_keys keys;
    content_api_client *client; /* NULL when dummy */
    content_cache *cache;
    pb_arena *arena; /* the enriched TinyEvent of one push */
    rt_counter *hits, *misses, *requests, *retries, *failures;
    rt_gauge *entries;
    rt_gauge *hit_percent; /* hits / (hits + misses), in percent */
} lookup_op;

static int64_t clock_ms(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the side row ---- */

static int put_long(rt_buf *b, int64_t v)
{
    return rt_buf_put_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static int put_string(rt_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return put_long(b, (int64_t)n) || rt_buf_append(b, s, n) ? -1 : 0;
}

int content_lookup_error_datum(const content_api_error_row *r, rt_buf *out)
{
    size_t len0 = out->len;
    uint8_t cached = r->cached ? 1 : 0;
    if (put_string(out, r->lookup) || put_long(out, r->platform_id) ||
        put_string(out, r->log_user_id) || put_string(out, r->content_id) ||
        put_string(out, r->insertion_id) || put_string(out, r->action_id) ||
        put_long(out, r->log_timestamp) || put_long(out, r->status) ||
        put_string(out, r->error) || put_long(out, r->attempts) ||
        rt_buf_append(out, &cached, 1) || put_long(out, r->processing_timestamp)) {
        out->len = len0;
        return -1;
    }
    return 0;
}

int content_lookup_encode_error(void *ctx, const rt_record *rec, rt_buf *out,
                                int64_t *partition_ts)
{
    (void)ctx;
    if (rec->type != REC_CONTENT_API_ERROR) return -1;
    const content_api_error_row *r = rec->data;
    *partition_ts = r->log_timestamp;
    return content_lookup_error_datum(r, out);
}

/* ---- checks ---- */

int content_lookup_check(const content_lookup_config *cfg, char *err, size_t errlen)
{
    if (cfg->dummy) return 0;
    const char *root = cfg->root_url ? cfg->root_url : "";
    size_t rl = strlen(root);
    if (!rl || root[rl - 1] != '/') {
        snprintf(err, errlen, "flag --contentApiRootUrl=%s: must end with \"/\"", root);
        return -1;
    }
    content_api_retry_policy p;
    content_keys k;
    if (content_api_retry_policy_init(&p, cfg->max_attempts, cfg->attempts_per_status,
                                      cfg->n_attempts_per_status, err, errlen) ||
        content_keys_init(&k, cfg->keys, cfg->n_keys, err, errlen))
        return -1;
    if (cfg->cache_max_entries < 1) {
        snprintf(err, errlen, "flag --contentCacheMaxSize=%lld: must be >= 1",
                 (long long)cfg->cache_max_entries);
        return -1;
    }
    if (cfg->cache_ttl_ms < 0 || cfg->failure_ttl_ms < 0 || cfg->timeout_ms < 0) {
        snprintf(err, errlen, "flags --contentCacheExpiration, --contentApiFailureCacheExpiration "
                              "and --contentApiTimeout must not be negative");
        return -1;
    }
    return 0;
}

/* ---- the operator ---- */

static void publish_size(lookup_op *l)
{
    if (l->entries) rt_gauge_set(l->entries, (int64_t)content_cache_size(l->cache));
    if (l->hit_percent) {
        uint64_t h = rt_counter_get(l->hits), m = rt_counter_get(l->misses);
        if (h + m) rt_gauge_set(l->hit_percent, (int64_t)(h * 100 / (h + m)));
    }
}

static int emit_error(rt_op *op, const rt_record *rec, const Event__TinyEvent *t, int status,
                      const char *error, int attempts, int cached)
{
    lookup_op *l = rt_op_self(op);
    content_api_error_row row = {
        .lookup = l->lookup, .platform_id = (int64_t)t->platform_id,
        .log_user_id = t->log_user_id, .content_id = t->content_id,
        .insertion_id = t->insertion_id, .action_id = t->action_id,
        .log_timestamp = (int64_t)t->log_timestamp, .status = status, .error = error,
        .attempts = attempts, .cached = cached,
        .processing_timestamp = clock_ms(CLOCK_REALTIME),
    };
    rt_record r = *rec;
    r.type = REC_CONTENT_API_ERROR;
    r.data = &row;
    r.len = 0;
    return rt_emit(op, 1, &r);
}

static int has_key(const Event__TinyEvent *t, int32_t h)
{
    for (size_t i = 0; i < t->n_other_content_ids; i++)
        if (t->other_content_ids[i] && t->other_content_ids[i]->key == h) return 1;
    return 0;
}

/* Emits t with the fields it lacks added to other_content_ids (after its own entries). */
static int emit_enriched(rt_op *op, const rt_record *rec, const Event__TinyEvent *t, size_t n,
                         const int32_t *hash, char *const *value)
{
    lookup_op *l = rt_op_self(op);
    size_t add = 0;
    for (size_t i = 0; i < n; i++)
        if (!has_key(t, hash[i])) add++;
    if (!add) return rt_emit(op, 0, rec);
    ProtobufCAllocator *a = pb_arena_allocator(l->arena);
    size_t total = t->n_other_content_ids + add;
    Event__TinyEvent__OtherContentIdsEntry **arr = a->alloc(a->allocator_data, total * sizeof *arr);
    Event__TinyEvent__OtherContentIdsEntry *e = a->alloc(a->allocator_data, add * sizeof *e);
    if (!arr || !e) {
        pb_arena_reset(l->arena, 1 << 20);
        return rt_op_fail(op, "out of memory adding other content ids");
    }
    if (t->n_other_content_ids)
        memcpy(arr, t->other_content_ids, t->n_other_content_ids * sizeof *arr);
    size_t k = t->n_other_content_ids, j = 0;
    for (size_t i = 0; i < n; i++) {
        if (has_key(t, hash[i])) continue;
        Event__TinyEvent__OtherContentIdsEntry init =
            EVENT__TINY_EVENT__OTHER_CONTENT_IDS_ENTRY__INIT;
        e[j] = init;
        e[j].has_key = 1; /* map entries are written whole, as tiny.c does */
        e[j].key = hash[i];
        e[j].value = value[i];
        arr[k++] = &e[j++];
    }
    Event__TinyEvent copy = *t;
    copy.n_other_content_ids = total;
    copy.other_content_ids = arr;
    rt_record r = *rec;
    r.data = &copy;
    int rc = rt_emit(op, 0, &r);
    pb_arena_reset(l->arena, 1 << 20);
    return rc;
}

static int lookup_process(rt_op *op, int input, const rt_record *rec)
{
    (void)input;
    lookup_op *l = rt_op_self(op);
    const Event__TinyEvent *t = rec->data;
    if (rec->type != REC_TINY_EVENT)
        return rt_op_fail(op, "record type %d is not a TinyEvent", rec->type);
    if (l->dummy || !t->content_id || !*t->content_id || !l->keys.n) return rt_emit(op, 0, rec);
    size_t idlen = strlen(t->content_id);
    int64_t now = clock_ms(CLOCK_MONOTONIC);
    content_cache_hit hit;
    if (content_cache_get(l->cache, t->content_id, idlen, now, &hit)) {
        rt_counter_add_1w(l->hits, 1);
        publish_size(l);
        if (hit.failed) {
            /* copy what the row needs: the emit may run code that changes the cache */
            char error[600];
            snprintf(error, sizeof error, "%s", hit.error);
            int status = hit.status;
            if (emit_error(op, rec, t, status, error, 0, 1)) return -1;
            return rt_emit(op, 0, rec);
        }
        return emit_enriched(op, rec, t, hit.n_fields, hit.hash, hit.value);
    }
    rt_counter_add_1w(l->misses, 1);
    content_fields f = {0};
    content_api_result res;
    content_api_query(l->client, t->content_id, idlen, &l->keys, &f, &res);
    rt_counter_add_1w(l->requests, (uint64_t)res.attempts);
    rt_counter_add_1w(l->retries, (uint64_t)res.retries);
    now = clock_ms(CLOCK_MONOTONIC);
    if (!res.ok) {
        rt_counter_add_1w(l->failures, 1);
        content_cache_put(l->cache, t->content_id, idlen, now, NULL, res.status, res.error);
        publish_size(l);
        if (emit_error(op, rec, t, res.status, res.error, res.attempts, 0)) return -1;
        return rt_emit(op, 0, rec);
    }
    if (content_cache_put(l->cache, t->content_id, idlen, now, &f, 0, NULL)) {
        content_fields_clear(&f);
        return rt_op_fail(op, "out of memory caching content %s", t->content_id);
    }
    publish_size(l);
    /* the entry just stored is the most recent one: read it back for the values */
    if (!content_cache_get(l->cache, t->content_id, idlen, now, &hit))
        return rt_emit(op, 0, rec); /* a zero TTL: nothing is kept */
    return emit_enriched(op, rec, t, hit.n_fields, hit.hash, hit.value);
}

static int lookup_open(rt_op *op)
{
    lookup_op *l = rt_op_self(op);
    if (rt_op_counter(op, "contentCacheHits", &l->hits) ||
        rt_op_counter(op, "contentCacheMisses", &l->misses) ||
        rt_op_counter(op, "contentApiRequests", &l->requests) ||
        rt_op_counter(op, "contentApiRetries", &l->retries) ||
        rt_op_counter(op, "contentApiFailures", &l->failures) ||
        rt_op_gauge(op, "contentCacheEntries", &l->entries) ||
        rt_op_gauge(op, "contentCacheHitPercent", &l->hit_percent))
        return -1;
    return 0;
}

static int lookup_finish(rt_op *op)
{
    lookup_op *l = rt_op_self(op);
    if (l->dummy) return 0;
    log_info("content-lookup",
             "operator=%s task=%s cacheHits=%llu cacheMisses=%llu apiRequests=%llu "
             "apiRetries=%llu apiFailures=%llu cacheEntries=%zu",
             rt_op_uid(op), rt_graph_task(rt_op_graph(op)),
             (unsigned long long)rt_counter_get(l->hits),
             (unsigned long long)rt_counter_get(l->misses),
             (unsigned long long)rt_counter_get(l->requests),
             (unsigned long long)rt_counter_get(l->retries),
             (unsigned long long)rt_counter_get(l->failures), content_cache_size(l->cache));
    return 0;
}

static void lookup_free(lookup_op *l)
{
    if (!l) return;
    content_api_client_free(l->client);
    content_cache_free(l->cache);
    pb_arena_free(l->arena);
    free(l->lookup);
    free(l);
}

static void lookup_close(rt_op *op)
{
    lookup_free(rt_op_self(op));
}

static const rt_op_vtbl lookup_vtbl = {
    .open = lookup_open,
    .process = lookup_process,
    .finish = lookup_finish,
    .close = lookup_close,
};

int content_lookup_op_add(rt_graph *g, const char *uid, const content_lookup_config *cfg,
                          rt_op **out, char *err, size_t errlen)
{
    if (content_lookup_check(cfg, err, errlen)) return -1;
    lookup_op *l = calloc(1, sizeof *l);
    if (!l) goto oom;
    l->dummy = cfg->dummy;
    if (!(l->lookup = strdup(cfg->lookup ? cfg->lookup : ""))) goto oom;
    if (!l->dummy) {
        content_api_config cc = {.root_url = cfg->root_url, .api_key = cfg->api_key,
                                 .timeout_ms = cfg->timeout_ms};
        if (content_api_retry_policy_init(&cc.retry, cfg->max_attempts, cfg->attempts_per_status,
                                          cfg->n_attempts_per_status, err, errlen) ||
            content_keys_init(&l->keys, cfg->keys, cfg->n_keys, err, errlen) ||
            content_api_client_new(&cc, &l->client, err, errlen)) {
            lookup_free(l);
            return -1;
        }
        if (content_cache_new(cfg->cache_max_entries, cfg->cache_ttl_ms, cfg->failure_ttl_ms,
                              &l->cache) ||
            !(l->arena = pb_arena_new(16 << 10, 64 << 20)))
            goto oom;
    }
    if (rt_graph_add_op(g, uid, "lookup-content", &lookup_vtbl, l, 1, 2, out)) goto oom;
    if (rt_op_set_port_name(*out, 1, "content_api_error")) {
        snprintf(err, errlen, "operator %s: out of memory", uid);
        return -1;
    }
    return 0;
oom:
    lookup_free(l);
    snprintf(err, errlen, "operator %s: out of memory", uid);
    return -1;
}
