#include "runtime/timers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/record.h"

#define TIMERS_VERSION 1
#define ARRAY_OVERHEAD 16
#define MIN_CAP 16

/* A pending timer is an entry of the hash table keyed by time ++ key (so a duplicate register is
 * one probe) plus an item (time, seq, entry) in one of the ordered structures below. Items hold
 * (time, seq) inline, so ordering never touches the entries (each would be a cache miss); the
 * entry is reached only to fire or delete.
 *
 * Operators mostly register times that grow with their input (ts + a constant), often several
 * such sequences interleaved (one per window length). So before the heap come a few FIFO lanes,
 * each sorted by (time, seq): a new item goes to the lane whose last time is the largest one not
 * above it, and only an item that fits no lane goes to the heap. Appending to a lane and popping
 * its head are O(1) and touch memory sequentially; the heap is O(log n). The next timer is the
 * least of the lane heads and the heap's top.
 *
 * Delete is lazy: the entry leaves the hash table at once (so the same (key, time) can be
 * registered again) and is marked dead; its item is dropped when it reaches the front of its
 * structure, or when the dead outnumber the live and everything is compacted. Every front is
 * kept live, so peek is O(1). */
typedef struct hitem {
    int64_t time;
    uint64_t seq; /* registration order: ties on time fire first-registered first */
    rt_hentry *e;
} hitem;

typedef struct tval {
    uint64_t hash; /* of time ++ key, to unlink without hashing again */
    uint16_t dead;
    uint16_t unlisted; /* registered as new: not in the hash table */
} tval;

#define NLANES 4

typedef struct lane { /* a ring buffer; cap is 0 or a power of two */
    hitem *a;
    size_t head, n, cap;
} lane;

struct rt_timers {
    rt_htab set;
    hitem *heap;
    size_t n, cap;
    lane lanes[NLANES];
    size_t live;
    size_t dead; /* deleted entries still in the heap or a lane */
    uint64_t seq;
    /* The pending timer registered or found last: operators often register the same (key,
     * time) for record after record of one key, and a match here costs no hash probe. */
    rt_hentry *last;
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

static int arr_charge(rt_timers *t, int64_t n)
{
    return t->charge ? t->charge(t->ctx, n) : 0;
}

static int64_t arr_bytes(size_t cap)
{
    return cap ? (int64_t)(cap * sizeof(hitem) + ARRAY_OVERHEAD) : 0;
}

/* ---- the heap ---- */

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

/* Sets the heap's capacity (>= n); charges first. */
static int heap_realloc(rt_timers *t, size_t cap)
{
    int64_t delta = arr_bytes(cap) - arr_bytes(t->cap);
    if (delta > 0 && arr_charge(t, delta) < 0) return -1;
    hitem *p = cap ? realloc(t->heap, cap * sizeof *p) : (free(t->heap), NULL);
    if (cap && !p) {
        if (delta > 0) arr_charge(t, -delta);
        return -1;
    }
    if (delta < 0) arr_charge(t, delta);
    t->heap = p;
    t->cap = cap;
    return 0;
}

/* Halves an array a quarter full, so a drained burst of timers gives its memory back. */
static void heap_maybe_shrink(rt_timers *t)
{
    if (t->cap > 64 && t->n < t->cap / 4) heap_realloc(t, t->cap / 2);
}

static void heap_pop(rt_timers *t)
{
    t->heap[0] = t->heap[--t->n];
    if (t->n) sift_down(t, 0);
    heap_maybe_shrink(t);
}

/* ---- lanes ---- */

static hitem *lane_at(const lane *l, size_t k)
{
    return &l->a[(l->head + k) & (l->cap - 1)];
}

static int lane_realloc(rt_timers *t, lane *l, size_t cap)
{
    int64_t delta = arr_bytes(cap) - arr_bytes(l->cap);
    if (delta > 0 && arr_charge(t, delta) < 0) return -1;
    hitem *p = NULL;
    if (cap) {
        p = malloc(cap * sizeof *p);
        if (!p) {
            if (delta > 0) arr_charge(t, -delta);
            return -1;
        }
        for (size_t k = 0; k < l->n; k++)
            p[k] = *lane_at(l, k);
    }
    free(l->a);
    if (delta < 0) arr_charge(t, delta);
    l->a = p;
    l->cap = cap;
    l->head = 0;
    return 0;
}

static void lane_pop(rt_timers *t, lane *l)
{
    l->head = (l->head + 1) & (l->cap - 1);
    l->n--;
    if (!l->n)
        l->head = 0;
    if (l->cap > 64 && l->n < l->cap / 4) lane_realloc(t, l, l->cap / 2);
}

/* ---- fronts ---- */

/* Frees dead items at the front of every structure, restoring "every front is live". */
static void drop_dead_fronts(rt_timers *t)
{
    while (t->n && tv(t->heap[0].e)->dead) {
        rt_hentry *e = t->heap[0].e;
        heap_pop(t);
        rt_htab_release(&t->set, e);
        t->dead--;
    }
    for (int k = 0; k < NLANES; k++) {
        lane *l = &t->lanes[k];
        while (l->n && tv(lane_at(l, 0)->e)->dead) {
            rt_hentry *e = lane_at(l, 0)->e;
            lane_pop(t, l);
            rt_htab_release(&t->set, e);
            t->dead--;
        }
    }
}

/* Frees the item arrays once nothing is pending at all: an operator between bursts of timers
 * holds no memory for them (a lane that empties while others hold items keeps its array). */
static void release_if_idle(rt_timers *t)
{
    if (t->n) return;
    for (int k = 0; k < NLANES; k++)
        if (t->lanes[k].n) return;
    heap_realloc(t, 0);
    for (int k = 0; k < NLANES; k++)
        lane_realloc(t, &t->lanes[k], 0);
}

/* The earliest front: -1 for the heap, a lane's index, or -2 when nothing is pending. */
static int earliest(const rt_timers *t, const hitem **out)
{
    int which = -2;
    const hitem *best = NULL;
    if (t->n) {
        best = &t->heap[0];
        which = -1;
    }
    for (int k = 0; k < NLANES; k++) {
        const lane *l = &t->lanes[k];
        if (l->n && (!best || before(lane_at(l, 0), best))) {
            best = lane_at(l, 0);
            which = k;
        }
    }
    *out = best;
    return which;
}

/* Drops every dead item and re-heapifies: O(n), run when the dead outnumber the live, so
 * delete stays O(1) amortized and a register/delete pattern (a session window moving its end)
 * cannot fill memory with tombstones. Lanes keep their order. */
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
    for (size_t i = n / 2; i-- > 0;)
        sift_down(t, i);
    while (t->cap > 64 && t->n < t->cap / 4) {
        size_t was = t->cap;
        heap_maybe_shrink(t);
        if (t->cap == was) break;
    }
    for (int k = 0; k < NLANES; k++) {
        lane *l = &t->lanes[k];
        size_t m = 0;
        for (size_t j = 0; j < l->n; j++) {
            hitem it = *lane_at(l, j);
            if (tv(it.e)->dead)
                rt_htab_release(&t->set, it.e);
            else
                *lane_at(l, m++) = it;
        }
        l->n = m;
        size_t cap = l->cap;
        while (cap > 64 && l->n < cap / 4)
            cap /= 2;
        if (!l->n) cap = 0;
        if (cap != l->cap) lane_realloc(t, l, cap);
    }
    t->dead = 0;
}

/* ---- the service ---- */

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
    /* the dead and the unlisted are not in the set: free them from the items */
    for (size_t i = 0; i < t->n; i++)
        if (tv(t->heap[i].e)->dead || tv(t->heap[i].e)->unlisted)
            rt_htab_release(&t->set, t->heap[i].e);
    for (int k = 0; k < NLANES; k++) {
        lane *l = &t->lanes[k];
        for (size_t j = 0; j < l->n; j++)
            if (tv(lane_at(l, j)->e)->dead || tv(lane_at(l, j)->e)->unlisted)
                rt_htab_release(&t->set, lane_at(l, j)->e);
        l->n = 0;
        lane_realloc(t, l, 0);
    }
    rt_htab_clear(&t->set);
    t->n = 0;
    heap_realloc(t, 0);
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

/* Makes room for one more item where it belongs: a lane (*lane_out) or the heap (NULL). */
static int reserve(rt_timers *t, int64_t time, lane **lane_out)
{
    lane *best = NULL, *empty = NULL;
    for (int k = 0; k < NLANES; k++) {
        lane *l = &t->lanes[k];
        if (!l->n) {
            if (!empty) empty = l;
            continue;
        }
        const hitem *last = lane_at(l, l->n - 1);
        if (last->time <= time && (!best || last->time > lane_at(best, best->n - 1)->time))
            best = l;
    }
    if (!best) best = empty;
    *lane_out = best;
    if (best) {
        if (best->n == best->cap && lane_realloc(t, best, best->cap ? best->cap * 2 : MIN_CAP))
            return -1;
        return 0;
    }
    if (t->n == t->cap && heap_realloc(t, t->cap ? t->cap * 2 : MIN_CAP)) return -1;
    return 0;
}

int rt_timers_register(rt_timers *t, int64_t time, const void *key, size_t klen)
{
    if (klen > RT_HTAB_KEY_MAX - 8) return -1;
    if (t->last && t->last->klen == klen + 8 && !memcmp(rt_hentry_key(t->last), &time, 8) &&
        (!klen || !memcmp(rt_hentry_key(t->last) + 8, key, klen)))
        return 0;
    const uint8_t *ck = composite(t, time, key, klen);
    if (!ck) return -1;
    uint64_t h = rt_hash_bytes(ck, klen + 8);
    rt_hentry *found = rt_htab_find(&t->set, ck, klen + 8, h);
    if (found) {
        t->last = found;
        return 0;
    }
    lane *l;
    if (reserve(t, time, &l)) return -1;
    rt_hentry *e = rt_htab_insert(&t->set, ck, klen + 8, h, sizeof(tval));
    if (!e) return -1;
    tv(e)->hash = h;
    t->last = e;
    hitem it = {time, t->seq++, e};
    if (l) {
        *lane_at(l, l->n) = it;
        l->n++;
    } else {
        t->heap[t->n++] = it;
        sift_up(t, t->n - 1);
    }
    t->live++;
    return 1;
}

int rt_timers_register_new(rt_timers *t, int64_t time, const void *key, size_t klen)
{
    if (klen > RT_HTAB_KEY_MAX - 8) return -1;
    const uint8_t *ck = composite(t, time, key, klen);
    if (!ck) return -1;
    lane *l;
    if (reserve(t, time, &l)) return -1;
    rt_hentry *e = rt_htab_entry_new(&t->set, ck, klen + 8, sizeof(tval));
    if (!e) return -1;
    tv(e)->unlisted = 1;
    hitem it = {time, t->seq++, e};
    if (l) {
        *lane_at(l, l->n) = it;
        l->n++;
    } else {
        t->heap[t->n++] = it;
        sift_up(t, t->n - 1);
    }
    t->live++;
    return 1;
}

int rt_timers_delete(rt_timers *t, int64_t time, const void *key, size_t klen)
{
    if (klen > RT_HTAB_KEY_MAX - 8) return 0;
    const uint8_t *ck = composite(t, time, key, klen);
    if (!ck) return 0;
    uint64_t h = rt_hash_bytes(ck, klen + 8);
    rt_hentry *e = rt_htab_find(&t->set, ck, klen + 8, h);
    if (!e) return 0;
    if (e == t->last) t->last = NULL;
    rt_htab_unlink(&t->set, e, h);
    tv(e)->dead = 1;
    t->live--;
    t->dead++;
    drop_dead_fronts(t);
    if (t->dead > 64 && t->dead > t->live) compact(t);
    release_if_idle(t);
    return 1;
}

size_t rt_timers_count(const rt_timers *t)
{
    return t->live;
}

int rt_timers_peek(const rt_timers *t, int64_t *time)
{
    const hitem *first;
    if (earliest(t, &first) == -2) {
        *time = RT_TIME_MAX;
        return 0;
    }
    *time = first->time;
    return 1;
}

int rt_timers_pop_due(rt_timers *t, int64_t limit, rt_timer_fired *f)
{
    const hitem *first;
    int which = earliest(t, &first);
    if (which == -2 || first->time > limit) return 0;
    rt_hentry *e = first->e;
    if (e == t->last) t->last = NULL;
    f->time = first->time;
    if (which == -1)
        heap_pop(t);
    else
        lane_pop(t, &t->lanes[which]);
    drop_dead_fronts(t);
    release_if_idle(t);
    if (!tv(e)->unlisted) rt_htab_unlink(&t->set, e, tv(e)->hash);
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
    for (int k = 0; k < NLANES; k++)
        for (size_t j = 0; j < t->lanes[k].n; j++) {
            const hitem *it = lane_at(&t->lanes[k], j);
            if (!tv(it->e)->dead) order[n++] = *it;
        }
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
