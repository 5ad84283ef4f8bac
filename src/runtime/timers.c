#include "runtime/timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/record.h"

#define TIMERS_VERSION 1
#define HEAP_OVERHEAD 16

/* The heap holds (time, seq) inline so sifting never touches the entries (each would be a cache
 * miss); the entry, a hash-table entry keyed by time ++ key, is reached only to fire or delete.
 * Delete is lazy: the entry leaves the hash table at once (so the same (key, time) can be
 * registered again) and is marked dead; its heap slot is dropped when it reaches the top. The top
 * of the heap is never dead, so peek is O(1). */
typedef struct hitem {
    int64_t time;
    uint64_t seq; /* registration order: ties on time fire first-registered first */
    rt_hentry *e;
} hitem;

typedef struct tval {
    int dead;
} tval;

struct rt_timers {
    rt_htab set;
    hitem *heap;
    size_t n, cap;
    size_t live;
    size_t dead; /* deleted entries still in the heap */
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

static int before(const hitem *x, const hitem *y)
{
    return x->time < y->time || (x->time == y->time && x->seq < y->seq);
}

static void sift_up(rt_timers *t, size_t i)
{
    hitem it = t->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&it, &t->heap[p])) break;
        t->heap[i] = t->heap[p];
        i = p;
    }
    t->heap[i] = it;
}

static void sift_down(rt_timers *t, size_t i)
{
    hitem it = t->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->n) break;
        if (c + 1 < t->n && before(&t->heap[c + 1], &t->heap[c])) c++;
        if (!before(&t->heap[c], &it)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    t->heap[i] = it;
}

static int heap_charge(rt_timers *t, int64_t n);

/* Halves the array when it is a quarter full, so a drained burst of timers gives its memory back.
 */
static void maybe_shrink(rt_timers *t)
{
    if (t->cap <= 64 || t->n >= t->cap / 4) return;
    size_t cap = t->cap / 2;
    hitem *p = realloc(t->heap, cap * sizeof *p);
    if (!p) return;
    heap_charge(t, -(int64_t)((t->cap - cap) * sizeof(hitem)));
    t->heap = p;
    t->cap = cap;
}

static void heap_pop(rt_timers *t)
{
    t->heap[0] = t->heap[--t->n];
    if (t->n) sift_down(t, 0);
    maybe_shrink(t);
}

/* Frees dead entries sitting at the top, restoring "the top is live". */
static void drop_dead_top(rt_timers *t)
{
    while (t->n && tv(t->heap[0].e)->dead) {
        rt_hentry *e = t->heap[0].e;
        heap_pop(t);
        rt_htab_release(&t->set, e);
        t->dead--;
    }
}

/* Drops every dead entry and re-heapifies: O(n), run when the dead outnumber the live, so
 * delete stays O(1) amortized and a register/delete pattern (a session window moving its end)
 * cannot fill the heap with tombstones. */
static void compact(rt_timers *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (tv(t->heap[i].e)->dead)
            rt_htab_release(&t->set, t->heap[i].e);
        else
            t->heap[n++] = t->heap[i];
    }
    t->n = n;
    t->dead = 0;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(t, i);
    while (t->cap > 64 && t->n < t->cap / 4) {
        size_t before_cap = t->cap;
        maybe_shrink(t);
        if (t->cap == before_cap) break;
    }
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
    for (size_t i = 0; i < t->n; i++)
        if (tv(t->heap[i].e)->dead) rt_htab_release(&t->set, t->heap[i].e);
    rt_htab_clear(&t->set);
    if (t->heap) heap_charge(t, -(int64_t)(t->cap * sizeof(hitem) + HEAP_OVERHEAD));
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
        int64_t delta = (int64_t)((cap - t->cap) * sizeof(hitem)) + (t->cap ? 0 : HEAP_OVERHEAD);
        if (heap_charge(t, delta) < 0) return -1;
        hitem *p = realloc(t->heap, cap * sizeof *p);
        if (!p) {
            heap_charge(t, -delta);
            return -1;
        }
        t->heap = p;
        t->cap = cap;
    }
    rt_hentry *e = rt_htab_insert(&t->set, ck, klen + 8, h, sizeof(tval));
    if (!e) return -1;
    t->heap[t->n++] = (hitem){time, t->seq++, e};
    sift_up(t, t->n - 1);
    t->live++;
    return 1;
}

int rt_timers_delete(rt_timers *t, int64_t time, const void *key, size_t klen)
{
    if (klen > RT_HTAB_KEY_MAX - 8) return 0;
    const uint8_t *ck = composite(t, time, key, klen);
    if (!ck) return 0;
    rt_hentry *e = rt_htab_find(&t->set, ck, klen + 8, rt_hash_bytes(ck, klen + 8));
    if (!e) return 0;
    rt_htab_unlink(&t->set, e);
    tv(e)->dead = 1;
    t->live--;
    t->dead++;
    drop_dead_top(t);
    if (t->dead > 64 && t->dead > t->live) compact(t);
    return 1;
}

size_t rt_timers_count(const rt_timers *t)
{
    return t->live;
}

int rt_timers_peek(const rt_timers *t, int64_t *time)
{
    if (!t->n) {
        *time = RT_TIME_MAX;
        return 0;
    }
    *time = t->heap[0].time;
    return 1;
}

int rt_timers_pop_due(rt_timers *t, int64_t limit, rt_timer_fired *f)
{
    if (!t->n || t->heap[0].time > limit) return 0;
    rt_hentry *e = t->heap[0].e;
    f->time = t->heap[0].time;
    heap_pop(t);
    drop_dead_top(t);
    rt_htab_unlink(&t->set, e);
    t->live--;
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

static int cmp_items(const void *a, const void *b)
{
    const hitem *x = a, *y = b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

int rt_timers_snapshot(const rt_timers *t, rt_buf *out)
{
    if (rt_buf_put_u32(out, TIMERS_VERSION) < 0 || rt_buf_put_u64(out, t->live) < 0) return -1;
    if (!t->live) return 0;
    hitem *order = malloc(t->live * sizeof *order);
    if (!order) return -1;
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!tv(t->heap[i].e)->dead) order[n++] = t->heap[i];
    qsort(order, n, sizeof *order, cmp_items);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rt_hentry *e = order[i].e;
        if (rt_buf_put_i64(out, order[i].time) < 0 ||
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
            snprintf(err, errlen,
                     "timers: cannot restore timer %llu of %llu (memory limit, or a "
                     "key over %u bytes)",
                     (unsigned long long)i, (unsigned long long)n, RT_HTAB_KEY_MAX - 8);
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
