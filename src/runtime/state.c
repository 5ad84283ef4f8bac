#include "runtime/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/graph.h"
#include "runtime/graph_private.h"

#define KV_VERSION 1
#define KV_NAME_MAX 64

struct rt_kv {
    rt_htab h;
    rt_op *op;
    char *name;
};

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > KV_NAME_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

int rt_kv_new(rt_op *op, const char *name, rt_kv **out)
{
    if (!name_ok(name))
        return rt_op_fail(op, "state name \"%s\": want 1..%d characters of [a-z0-9._-]", name,
                          KV_NAME_MAX);
    rt_kv *kv = calloc(1, sizeof *kv);
    if (!kv || !(kv->name = strdup(name))) {
        free(kv);
        return rt_op_fail(op, "state %s: out of memory", name);
    }
    kv->op = op;
    rt_htab_init(&kv->h, rt_op_charge_cb_, op);
    if (rt_op_attach_kv_(op, kv) < 0) {
        rt_kv_free_(kv);
        return -1;
    }
    *out = kv;
    return 0;
}

void rt_kv_free_(rt_kv *kv)
{
    if (!kv) return;
    rt_htab_clear(&kv->h);
    free(kv->name);
    free(kv);
}

/* Explains why an insert or resize returned NULL. */
static int put_failed(rt_kv *kv, size_t klen, size_t vlen)
{
    if (klen > RT_HTAB_KEY_MAX)
        return rt_op_fail(kv->op, "state %s: key of %zu bytes over the limit of %u", kv->name, klen,
                          RT_HTAB_KEY_MAX);
    if (vlen > RT_HTAB_VAL_MAX)
        return rt_op_fail(kv->op, "state %s: value of %zu bytes over the limit of %u", kv->name,
                          vlen, RT_HTAB_VAL_MAX);
    char what[96];
    snprintf(what, sizeof what, "state %s", kv->name);
    return rt_op_fail_mem_(kv->op, what, (int64_t)(klen + vlen));
}

void *rt_kv_get(rt_kv *kv, const void *key, size_t klen, size_t *vlen)
{
    rt_hentry *e = rt_htab_find(&kv->h, key, klen, rt_hash_bytes(key, klen));
    if (!e) return NULL;
    if (vlen) *vlen = e->vlen;
    return rt_hentry_val(e);
}

int rt_kv_upsert(rt_kv *kv, const void *key, size_t klen, size_t vlen, void **val, int *created)
{
    uint64_t h = rt_hash_bytes(key, klen);
    rt_hentry *e = rt_htab_find(&kv->h, key, klen, h);
    int fresh = !e;
    if (e)
        e = rt_htab_resize_val(&kv->h, e, h, vlen);
    else
        e = rt_htab_insert(&kv->h, key, klen, h, vlen);
    if (!e) return put_failed(kv, klen, vlen);
    if (val) *val = rt_hentry_val(e);
    if (created) *created = fresh;
    return 0;
}

int rt_kv_put(rt_kv *kv, const void *key, size_t klen, const void *val, size_t vlen)
{
    void *p = NULL;
    if (rt_kv_upsert(kv, key, klen, vlen, &p, NULL) < 0) return -1;
    if (vlen) memcpy(p, val, vlen);
    return 0;
}

int rt_kv_delete(rt_kv *kv, const void *key, size_t klen)
{
    uint64_t h = rt_hash_bytes(key, klen);
    rt_hentry *e = rt_htab_find(&kv->h, key, klen, h);
    if (!e) return 0;
    rt_htab_remove(&kv->h, e, h);
    return 1;
}

void rt_kv_clear(rt_kv *kv)
{
    rt_htab_clear(&kv->h);
}

size_t rt_kv_count(const rt_kv *kv)
{
    return rt_htab_count(&kv->h);
}

int64_t rt_kv_bytes(const rt_kv *kv)
{
    return kv->h.bytes;
}

const char *rt_kv_name(const rt_kv *kv)
{
    return kv->name;
}

void rt_kv_iter_begin(rt_kv *kv, rt_kv_iter *it)
{
    rt_htab_iter_begin(&kv->h, &it->hi);
}

int rt_kv_iter_next(rt_kv_iter *it, const uint8_t **key, size_t *klen, void **val, size_t *vlen)
{
    rt_hentry *e = rt_htab_iter_next(&it->hi);
    if (!e) return 0;
    if (key) *key = rt_hentry_key(e);
    if (klen) *klen = e->klen;
    if (val) *val = rt_hentry_val(e);
    if (vlen) *vlen = e->vlen;
    return 1;
}

void rt_kv_iter_end(rt_kv_iter *it)
{
    rt_htab_iter_end(&it->hi);
}

int rt_kv_snapshot(rt_kv *kv, rt_buf *out)
{
    if (rt_buf_put_u32(out, KV_VERSION) < 0 || rt_buf_put_u64(out, rt_kv_count(kv)) < 0) return -1;
    rt_htab_iter it;
    rt_htab_iter_begin(&kv->h, &it);
    int rc = 0;
    rt_hentry *e;
    while (rc == 0 && (e = rt_htab_iter_next(&it)))
        if (rt_buf_put_bytes(out, rt_hentry_key(e), e->klen) < 0 ||
            rt_buf_put_bytes(out, rt_hentry_val(e), e->vlen) < 0)
            rc = -1;
    rt_htab_iter_end(&it);
    return rc;
}

int rt_kv_restore(rt_kv *kv, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    rt_kv_clear(kv);
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t version;
    uint64_t n;
    if (rt_buf_read_u32(&r, &version) < 0 || rt_buf_read_u64(&r, &n) < 0) {
        snprintf(err, errlen, "state %s: snapshot truncated in its header (%zu bytes)", kv->name,
                 len);
        return -1;
    }
    if (version != KV_VERSION) {
        snprintf(err, errlen, "state %s: snapshot version %u, this build reads %u", kv->name,
                 version, KV_VERSION);
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *k, *v;
        size_t klen, vlen;
        if (rt_buf_read_bytes(&r, &k, &klen) < 0 || rt_buf_read_bytes(&r, &v, &vlen) < 0) {
            snprintf(err, errlen, "state %s: snapshot truncated at entry %llu of %llu", kv->name,
                     (unsigned long long)i, (unsigned long long)n);
            return -1;
        }
        if (rt_kv_put(kv, k, klen, v, vlen) < 0) {
            snprintf(err, errlen, "%s", rt_graph_error(rt_op_graph(kv->op)));
            return -1;
        }
    }
    if (rt_buf_reader_left(&r)) {
        snprintf(err, errlen, "state %s: %zu bytes after the last of %llu entries", kv->name,
                 rt_buf_reader_left(&r), (unsigned long long)n);
        return -1;
    }
    return 0;
}
