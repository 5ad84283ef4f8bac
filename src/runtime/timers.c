#include "runtime/timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/record.h"

#define TIMERS_VERSION 1
#define HEAP_OVERHEAD 16

/* The value of each hash entry; the entry's key is the 8-byte time followed by the timer key, so
 * (key, time) pairs are unique in the table. */
typedef struct tval {
    int64_t time;
    uint64_t seq; /* registration order: ties on time fire first-registered first */
    size_t pos;   /* index in the heap */
} tval;

struct rt_timers {
    rt_htab set;
    rt_hentry **heap;
    size_t n, cap;
    uint64_t seq;
    uint8_t *scratch; /* composite key under construction */
    size_t scratch_cap;
    rt_htab_charge_fn charge;
    void *ctx;
};

static tval *tv(rt_hentry *e)
{
    return rt_hentry_val(e);
}

static int before(rt_hentry *a, rt_hentry *b)
{
    tval *x = tv(a), *y = tv(b);
    return x->time < y->time || (x->time == y->time && x->seq < y->seq);
}

static void place(rt_timers *t, size_t i, rt_hentry *e)
{
    t->heap[i] = e;
    tv(e)->pos = i;
}

static void sift_up(rt_timers *t, size_t i)
{
    rt_hentry *e = t->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(e, t->heap[p])) break;
        place(t, i, t->heap[p]);
        i = p;
    }
    place(t, i, e);
}

static void sift_down(rt_timers *t, size_t i)
{
    rt_hentry *e = t->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->n) break;
        if (c + 1 < t->n && before(t->heap[c + 1], t->heap[c])) c++;
        if (!before(t->heap[c], e)) break;
        place(t, i, t->heap[c]);
        i = c;
    }
    place(t, i, e);
}

static void heap_remove(rt_timers *t, size_t i)
{
    rt_hentry *last = t->heap[--t->n];
    if (i == t->n) return;
    place(t, i, last);
    if (i > 0 && before(last, t->heap[(i - 1) / 2]))
        sift_up(t, i);
    else
        sift_down(t, i);
}

static int heap_charge(rt_timers *t, int64_t n)
{
    return t->charge ? t->charge(t->ctx, n) : 0;
}

int rt_timers_new(rt_htab_charge_fn charge, void *ctx, rt_timers **out)
{
    rt_timers *t = calloc(1, sizeof *t);
    if (!t) return -1;
    rt_htab_init(&t->set, charge, ctx);
    t->charge = charge;
    t->ctx = ctx;
    *out = t;
    return 0;
}

void rt_timers_free(rt_timers *t)
{
    if (!t) return;
    rt_htab_clear(&t->set);
    if (t->heap) heap_charge(t, -(int64_t)(t->cap * sizeof(rt_hentry *) + HEAP_OVERHEAD));
    free(t->heap);
    free(t->scratch);
    free(t);
}

/* Builds time ++ key in the scratch buffer. */
static const uint8_t *composite(rt_timers *t, int64_t time, const void *key, size_t klen)
{
    if (klen + 8 > t->scratch_cap) {
        size_t cap = klen + 8 < 64 ? 64 : klen + 8;
        uint8_t *p = realloc(t->scratch, cap);
        if (!p) return NULL;
        t->scratch = p;
        t->scratch_cap = cap;
    }
    memcpy(t->scratch, &time, 8);
    if (klen) memcpy(t->scratch + 8, key, klen);
    return t->scratch;
}

int rt_timers_register(rt_timers *t, int64_t time, const void *key, size_t klen)
{
    if (klen > RT_HTAB_KEY_MAX - 8) return -1;
    const uint8_t *ck = composite(t, time, key, klen);
    if (!ck) return -1;
    uint64_t h = rt_hash_bytes(ck, klen + 8);
    if (rt_htab_find(&t->set, ck, klen + 8, h)) return 0;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        int64_t delta = (int64_t)((cap - t->cap) * sizeof(rt_hentry *)) + (t->cap ? 0 : HEAP_OVERHEAD);
        if (heap_charge(t, delta) < 0) return -1;
        rt_hentry **p = realloc(t->heap, cap * sizeof *p);
        if (!p) {
            heap_charge(t, -delta);
            return -1;
        }
        t->heap = p;
        t->cap = cap;
    }
    rt_hentry *e = rt_htab_insert(&t->set, ck, klen + 8, h, sizeof(tval));
    if (!e) return -1;
    tv(e)->time = time;
    tv(e)->seq = t->seq++;
    place(t, t->n++, e);
    sift_up(t, t->n - 1);
    return 1;
}

int rt_timers_delete(rt_timers *t, int64_t time, const void *key, size_t klen)
{
    if (klen > RT_HTAB_KEY_MAX - 8) return 0;
    const uint8_t *ck = composite(t, time, key, klen);
    if (!ck) return 0;
    rt_hentry *e = rt_htab_find(&t->set, ck, klen + 8, rt_hash_bytes(ck, klen + 8));
    if (!e) return 0;
    heap_remove(t, tv(e)->pos);
    rt_htab_remove(&t->set, e);
    return 1;
}

size_t rt_timers_count(const rt_timers *t)
{
    return t->n;
}

int rt_timers_peek(const rt_timers *t, int64_t *time)
{
    if (!t->n) {
        *time = RT_TIME_MAX;
        return 0;
    }
    *time = tv(t->heap[0])->time;
    return 1;
}

int rt_timers_pop_due(rt_timers *t, int64_t limit, rt_timer_fired *f)
{
    if (!t->n || tv(t->heap[0])->time > limit) return 0;
    rt_hentry *e = t->heap[0];
    heap_remove(t, 0);
    rt_htab_unlink(&t->set, e);
    f->time = tv(e)->time;
    f->key = rt_hentry_key(e) + 8;
    f->key_len = e->klen - 8;
    f->entry_ = e;
    return 1;
}

void rt_timers_done(rt_timers *t, rt_timer_fired *f)
{
    if (f->entry_) rt_htab_release(&t->set, f->entry_);
    f->entry_ = NULL;
}

static int cmp_entries(const void *a, const void *b)
{
    rt_hentry *x = *(rt_hentry *const *)a, *y = *(rt_hentry *const *)b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

int rt_timers_snapshot(const rt_timers *t, rt_buf *out)
{
    if (rt_buf_put_u32(out, TIMERS_VERSION) < 0 || rt_buf_put_u64(out, t->n) < 0) return -1;
    if (!t->n) return 0;
    rt_hentry **order = malloc(t->n * sizeof *order);
    if (!order) return -1;
    memcpy(order, t->heap, t->n * sizeof *order);
    qsort(order, t->n, sizeof *order, cmp_entries);
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        rt_hentry *e = order[i];
        if (rt_buf_put_i64(out, tv(e)->time) < 0 ||
            rt_buf_put_bytes(out, rt_hentry_key(e) + 8, e->klen - 8) < 0)
            rc = -1;
    }
    free(order);
    return rc;
}

int rt_timers_restore(rt_timers *t, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t version;
    uint64_t n;
    if (rt_buf_read_u32(&r, &version) < 0 || rt_buf_read_u64(&r, &n) < 0) {
        snprintf(err, errlen, "timers: snapshot truncated in its header (%zu bytes)", len);
        return -1;
    }
    if (version != TIMERS_VERSION) {
        snprintf(err, errlen, "timers: snapshot version %u, this build reads %u", version,
                 TIMERS_VERSION);
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        int64_t time;
        const uint8_t *key;
        size_t klen;
        if (rt_buf_read_i64(&r, &time) < 0 || rt_buf_read_bytes(&r, &key, &klen) < 0) {
            snprintf(err, errlen, "timers: snapshot truncated at timer %llu of %llu",
                     (unsigned long long)i, (unsigned long long)n);
            return -1;
        }
        if (rt_timers_register(t, time, key, klen) < 0) {
            snprintf(err, errlen, "timers: cannot restore timer %llu of %llu (memory limit, or a "
                     "key over %u bytes)", (unsigned long long)i, (unsigned long long)n,
                     RT_HTAB_KEY_MAX - 8);
            return -1;
        }
    }
    if (rt_buf_reader_left(&r)) {
        snprintf(err, errlen, "timers: %zu bytes after the last of %llu timers",
                 rt_buf_reader_left(&r), (unsigned long long)n);
        return -1;
    }
    return 0;
}
