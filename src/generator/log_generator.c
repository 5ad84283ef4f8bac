#include "generator/log_generator.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "formats/pb_private.h"
#include "formats/record_file.h"
#include "generator/content_db.h"
#include "generator/gen_records.h"
#include "generator/id_supplier.h"
#include "generator/java_random.h"

/* Limits on the options (each bounds memory that grows with it). */
#define MAX_USERS 10000000
#define MAX_PER_PARENT 10000000 /* sessions per user, views and auto views per session */
#define MAX_REQUESTS 10000
#define MAX_INSERTIONS 100000
#define MAX_REDUNDANT 10000
#define MAX_DELAY_S 1000000

/* Deferred steps (the reference's runnables). A state with run == RUN_NONE is a LogRequest. */
typedef enum {
    RUN_NONE = 0,
    RUN_COHORT,
    RUN_SESSIONS,
    RUN_VIEWS,
    RUN_AUTO_VIEWS,
    RUN_DELIVERY_LOGS,
    RUN_DIAGNOSTICS,
    RUN_IMPRESSIONS,
    RUN_ACTIONS,
    RUN_FOLLOW_UP,
    RUN_PURCHASES,
} run_kind;

typedef struct gen_state {
    genrec r; /* the LogRequest, or the step's arguments */
    uint8_t run;
    struct gen_state *next_free;
} gen_state;

typedef struct heap_entry {
    int64_t t;
    uint64_t seq;
    gen_state *s;
} heap_entry;

#define STATE_BLOCK 4096
#define ITEM_CLASSES 32

/* Options as the reference holds them: float rates, millisecond delays. */
typedef struct run_opts {
    int64_t users, sessions, views, auto_views, requests, insertions, max_redundant;
    int64_t view_delay_s, auto_view_delay_s;
    float impressed, navigate, add_to_cart, checkout, purchase;
    float mini_sdk, shadow, redundant, empty_log_user;
    float missing_view, missing_auto_view, missing_delivery_log, missing_impression;
    float multiplier;
    bool uniform, fixed_clock, write_users, write_product_views;
    bool log_navigates[2];
    int64_t start, start_ea;
    genrec_config cfg;
} run_opts;

struct gen_logs {
    run_opts o;
    contentdb *db;
    genrec_builder *builder;
    idsup ids;
    jrandom delay_rng;

    genrec_user *users;
    genrec_cart *carts;     /* one per user */
    genrec_cart empty_cart; /* shared by users whose log_user_id is "" (keyed by it, as the
                               reference keys carts by log_user_id) */
    int64_t n_users;

    heap_entry *heap;
    size_t heap_n, heap_cap;
    uint64_t seq;

    gen_state *free_states;
    gen_state **state_blocks;
    size_t n_state_blocks;

    genrec_items *free_items[ITEM_CLASSES];
    genrec_items **item_blocks;
    size_t n_item_blocks, cap_item_blocks;

    int64_t clock;     /* send time of the last LogRequest returned */
    int64_t last_send; /* INT64_MIN before the first */
    int failed;
    char err[512];

    uint8_t key[8 + 64];
    gen_counts counts;
};

static void fail(gen_logs *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(gen_logs *g, const char *fmt, ...)
{
    if (g->failed) return;
    g->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
}

/* ---- memory: states and item arrays from free lists ------------------------- */

static gen_state *state_new(gen_logs *g)
{
    if (!g->free_states) {
        gen_state **blocks = realloc(g->state_blocks, (g->n_state_blocks + 1) * sizeof *blocks);
        gen_state *blk = malloc(STATE_BLOCK * sizeof *blk);
        if (!blocks || !blk) {
            free(blk);
            if (blocks) g->state_blocks = blocks;
            fail(g, "generator: out of memory for pending records");
            return NULL;
        }
        g->state_blocks = blocks;
        g->state_blocks[g->n_state_blocks++] = blk;
        for (size_t i = 0; i < STATE_BLOCK; i++) {
            blk[i].next_free = g->free_states;
            g->free_states = &blk[i];
        }
    }
    gen_state *s = g->free_states;
    g->free_states = s->next_free;
    memset(s, 0, sizeof *s);
    return s;
}

static genrec_items *items_new(gen_logs *g, size_t n)
{
    unsigned cls = 0;
    while (((size_t)1 << cls) < n)
        cls++;
    if (cls >= ITEM_CLASSES) {
        fail(g, "generator: %zu items in one record", n);
        return NULL;
    }
    genrec_items *it = g->free_items[cls];
    if (it) {
        g->free_items[cls] = it->next_free;
    } else {
        if (g->n_item_blocks == g->cap_item_blocks) {
            size_t cap = g->cap_item_blocks ? 2 * g->cap_item_blocks : 256;
            genrec_items **v = realloc(g->item_blocks, cap * sizeof *v);
            if (!v) goto oom;
            g->item_blocks = v;
            g->cap_item_blocks = cap;
        }
        it = malloc(sizeof *it + ((size_t)1 << cls) * sizeof(genrec_item));
        if (!it) goto oom;
        g->item_blocks[g->n_item_blocks++] = it;
        it->cls = cls;
    }
    it->refs = 1;
    it->n = 0;
    return it;
oom:
    fail(g, "generator: out of memory for pending records");
    return NULL;
}

static genrec_items *items_ref(genrec_items *it)
{
    if (it) it->refs++;
    return it;
}

static void items_unref(gen_logs *g, genrec_items *it)
{
    if (!it || --it->refs) return;
    it->next_free = g->free_items[it->cls];
    g->free_items[it->cls] = it;
}

static void state_free(gen_logs *g, gen_state *s)
{
    items_unref(g, s->r.items);
    s->next_free = g->free_states;
    g->free_states = s;
}

/* ---- the heap: (time, push counter) order -------------------------------- */

static inline bool before(const heap_entry *a, const heap_entry *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(gen_logs *g, int64_t t, gen_state *s)
{
    if (!s) return;
    if (g->heap_n == g->heap_cap) {
        if (g->heap_cap >= GEN_MAX_PENDING) {
            fail(g,
                 "generator: more than %llu pending records and steps; use fewer users, "
                 "sessions or views per session",
                 (unsigned long long)GEN_MAX_PENDING);
            state_free(g, s);
            return;
        }
        size_t cap = g->heap_cap ? 2 * g->heap_cap : 1024;
        heap_entry *h = realloc(g->heap, cap * sizeof *h);
        if (!h) {
            fail(g, "generator: out of memory for %zu pending records", cap);
            state_free(g, s);
            return;
        }
        g->heap = h;
        g->heap_cap = cap;
    }
    heap_entry e = {t, g->seq++, s};
    size_t i = g->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&e, &g->heap[p])) break;
        g->heap[i] = g->heap[p];
        i = p;
    }
    g->heap[i] = e;
}

static heap_entry pop(gen_logs *g)
{
    heap_entry top = g->heap[0];
    heap_entry last = g->heap[--g->heap_n];
    size_t i = 0, n = g->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&g->heap[c + 1], &g->heap[c])) c++;
        if (!before(&g->heap[c], &last)) break;
        g->heap[i] = g->heap[c];
        i = c;
    }
    if (n) g->heap[i] = last;
    return top;
}

/* ---- time -------------------------------------------------------------------- */

static int64_t now_ms(const gen_logs *g)
{
    return g->o.fixed_clock ? g->o.start : g->clock;
}

/* event_api_timestamp at clock value now: the clock itself, or --startEventApiTimestamp plus
 * the simulated time elapsed (the reference uses wall-clock elapsed time). */
static int64_t ea_ms(const gen_logs *g, int64_t now)
{
    return g->o.start_ea ? g->o.start_ea + (now - g->o.start) : now;
}

/* The reference's delay multiplier: (long)(d_ms * multiplier) with a float32 product, then
 * optionally (long)(that * nextFloat()). Every call draws when uniform, as each call there
 * does. */
static int64_t delay(gen_logs *g, int64_t d_ms)
{
    volatile float p = (float)d_ms * g->o.multiplier;
    int64_t r = (int64_t)p;
    if (g->o.uniform) {
        volatile float q = (float)r * jrandom_next_float(&g->delay_rng);
        r = (int64_t)q;
    }
    return r;
}

/* ---- deterministic choices on ids ------------------------------------------ */

static bool roll_id(float rate, gen_id id, const char *salt)
{
    if (!(rate > 0.0f)) return false;
    if (rate >= 1.0f) return true;
    char buf[IDSUP_UUID_LEN + 1];
    idsup_format_uuid(id, buf);
    return jrandom_roll(rate, buf, IDSUP_UUID_LEN, salt);
}

static int64_t count_id(float rate, int64_t n, gen_id id, const char *salt)
{
    char buf[IDSUP_UUID_LEN + 1];
    volatile float x = rate * (float)n;
    if ((float)(int64_t)x == x) return (int64_t)x; /* whole: the roll cannot matter */
    idsup_format_uuid(id, buf);
    return jrandom_count(rate, n, buf, IDSUP_UUID_LEN, salt);
}

static bool last_level(const gen_logs *g, int level)
{
    return level == g->o.cfg.levels - 1;
}

/* ---- the steps (spec §3, "push order and id draws") ------------------------- */

static gen_state *record(gen_logs *g, genrec_kind kind, genrec_user *u, int64_t ea)
{
    gen_state *s = state_new(g);
    if (!s) return NULL;
    s->r.kind = (uint8_t)kind;
    s->r.user = u;
    s->r.ea = ea;
    s->r.content = GENREC_NO_CONTENT;
    return s;
}

static gen_state *step(gen_logs *g, run_kind run, genrec_user *u)
{
    gen_state *s = state_new(g);
    if (!s) return NULL;
    s->run = (uint8_t)run;
    s->r.user = u;
    s->r.content = GENREC_NO_CONTENT;
    return s;
}

/* One view: its LogRequest, and for a view that lists content its DeliveryLog and
 * diagnostics steps (pushed even when the view itself is dropped as missing). */
static void add_view(gen_logs *g, genrec_user *u, const gen_id *session, int64_t index,
                     uint32_t content, genrec_view_name name, bool lists_content, int level)
{
    int64_t now = now_ms(g), ea = ea_ms(g, now);
    int64_t d = index * g->o.view_delay_s * 1000;
    int64_t view_t = now + delay(g, d);
    int64_t view_ea = ea + delay(g, d); /* a second draw, as the reference makes */
    gen_id view_id = idsup_next(&g->ids, IDSUP_VIEW);
    if (!roll_id(g->o.missing_view, view_id, "addViewToHeap")) {
        gen_state *s = record(g, GENREC_VIEW, u, view_ea);
        if (s) {
            s->r.id = view_id;
            if (session) s->r.parent = *session, s->r.has_parent = 1;
            s->r.content = content;
            s->r.view_name = (uint8_t)name;
            s->r.level = (uint8_t)level;
        }
        push(g, view_t, s);
    }
    if (!lists_content) return;
    gen_state *dl = step(g, RUN_DELIVERY_LOGS, u);
    if (dl) {
        dl->r.view = view_id;
        dl->r.level = (uint8_t)level;
        dl->r.content = content; /* the navigated content whose children are listed */
    }
    push(g, view_t, dl);
    push(g, view_t, step(g, RUN_DIAGNOSTICS, u));
}

static void run_cohort(gen_logs *g, const gen_state *st)
{
    int64_t now = now_ms(g), ea = ea_ms(g, now);
    gen_state *s = record(g, GENREC_COHORT, st->r.user, ea);
    if (s) s->r.id = idsup_next(&g->ids, IDSUP_MEMBERSHIP);
    push(g, now + delay(g, 1000), s);
}

static void run_sessions(gen_logs *g, const gen_state *st)
{
    for (int64_t i = 0; i < g->o.sessions && !g->failed; i++) {
        int64_t now = now_ms(g), ea = ea_ms(g, now);
        gen_id sid = idsup_next(&g->ids, IDSUP_SESSION);
        int64_t t = now + delay(g, 1000);
        gen_state *s = record(g, GENREC_SESSION, st->r.user, ea);
        if (s) s->r.id = sid;
        push(g, t, s);
        gen_state *v = step(g, RUN_VIEWS, st->r.user);
        if (v) v->r.parent = sid;
        push(g, t, v);
        gen_state *a = step(g, RUN_AUTO_VIEWS, st->r.user);
        if (a) a->r.parent = sid;
        push(g, t, a);
    }
}

static void run_views(gen_logs *g, const gen_state *st)
{
    for (int64_t i = 0; i < g->o.views && !g->failed; i++)
        add_view(g, st->r.user, &st->r.parent, i, GENREC_NO_CONTENT, GENREC_VIEW_ALL, true, 0);
}

static void run_auto_views(gen_logs *g, const gen_state *st)
{
    for (int64_t j = 0; j < g->o.auto_views && !g->failed; j++) {
        int64_t now = now_ms(g), ea = ea_ms(g, now);
        int64_t d = j * g->o.auto_view_delay_s * 1000;
        int64_t t = now + delay(g, d);
        int64_t aea = ea + delay(g, d);
        gen_id id = idsup_next(&g->ids, IDSUP_AUTO_VIEW);
        if (roll_id(g->o.missing_auto_view, id, "addAutoViewsToHeap")) continue;
        gen_state *s = record(g, GENREC_AUTO_VIEW, st->r.user, aea);
        if (s) {
            s->r.id = id;
            s->r.parent = st->r.parent;
            s->r.has_parent = 1;
        }
        push(g, t, s);
    }
}

static void add_delivery_log(gen_logs *g, const gen_state *st, const uint32_t *contents, int64_t n,
                             int64_t index)
{
    int64_t now = now_ms(g), ea = ea_ms(g, now);
    genrec_items *ins = items_new(g, (size_t)n);
    if (!ins) return;
    for (int64_t k = 0; k < n; k++) {
        genrec_item *it = &ins->v[k];
        memset(it, 0, sizeof *it);
        it->content = contents[k];
        it->insertion = idsup_next(&g->ids, IDSUP_INSERTION);
    }
    ins->n = (uint32_t)n;
    gen_id request_id = idsup_next(&g->ids, IDSUP_REQUEST);
    bool sdk = roll_id(g->o.mini_sdk, request_id, "addDeliveryLogsToHeap");
    int64_t t = now + delay(g, 500 * (index + 1));

    if (!roll_id(g->o.missing_delivery_log, request_id, "addDeliveryLogsToHeap1")) {
        gen_state *s = record(g, GENREC_DELIVERY_LOG, st->r.user, ea);
        if (s) {
            s->r.now = now;
            s->r.id = request_id;
            s->r.view = st->r.view;
            s->r.items = items_ref(ins);
            s->r.n = (uint32_t)n;
            s->r.sdk = sdk;
            s->r.level = st->r.level;
        }
        push(g, t, s);
    }
    gen_state *im = step(g, RUN_IMPRESSIONS, st->r.user);
    if (im) {
        im->r.id = request_id;
        im->r.items = items_ref(ins);
        im->r.n = (uint32_t)n;
        im->r.level = st->r.level;
    }
    push(g, t, im);
    if (sdk && roll_id(g->o.shadow, request_id, "addDeliveryLogsToHeap2")) {
        gen_state *s = record(g, GENREC_SHADOW_LOG, st->r.user, ea);
        if (s) {
            s->r.now = now;
            s->r.id = idsup_next(&g->ids, IDSUP_REQUEST);
            s->r.parent = request_id;
            s->r.view = st->r.view;
            s->r.items = items_ref(ins);
            s->r.n = (uint32_t)n;
            s->r.level = st->r.level;
        }
        push(g, t, s);
    }
    items_unref(g, ins);
}

static void run_delivery_logs(gen_logs *g, const gen_state *st)
{
    const uint32_t *contents;
    content_type type = g->o.cfg.level_type[st->r.level];
    int64_t n = contentdb_list(g->db, type, st->r.level ? st->r.content : UINT32_MAX,
                               (size_t)g->o.insertions, &contents);
    if (n < 0) {
        fail(g, "generator: out of memory listing the catalogue");
        return;
    }
    for (int64_t r = 0; r < g->o.requests && !g->failed; r++)
        add_delivery_log(g, st, contents, n, r);
}

static void run_diagnostics(gen_logs *g, const gen_state *st)
{
    int64_t now = now_ms(g), ea = ea_ms(g, now);
    push(g, now + delay(g, 5000), record(g, GENREC_DIAGNOSTICS, st->r.user, ea));
}

/* One batch of impressions (copy k of a request's), and after the last copy the actions. */
static void add_impressions(gen_logs *g, const gen_state *st, genrec_items *imp, int64_t k,
                            bool create_actions)
{
    if (!imp->n) return;
    int64_t now = now_ms(g), ea = ea_ms(g, now);
    int64_t t = now + delay(g, (2 + 2 * k) * 1000);
    bool logged = g->o.cfg.log_impressions[st->r.level];
    /* only a batch that holds impressions can be dropped */
    if (!(logged &&
          roll_id(g->o.missing_impression, imp->v[0].impression, "addImpressionsToHeap1"))) {
        gen_state *s = record(g, GENREC_IMPRESSIONS, st->r.user, ea);
        if (s) {
            s->r.items = items_ref(imp);
            s->r.n = imp->n;
            s->r.level = st->r.level;
        }
        push(g, t, s);
    }
    if (create_actions) {
        gen_state *a = step(g, RUN_ACTIONS, st->r.user);
        if (a) {
            a->r.items = items_ref(imp);
            a->r.n = imp->n;
            a->r.level = st->r.level;
        }
        push(g, t, a);
    }
}

static void run_impressions(gen_logs *g, const gen_state *st)
{
    int64_t copies =
        roll_id(g->o.redundant, st->r.id, "addImpressionsToHeap1") ? g->o.max_redundant : 1;
    int64_t m = count_id(g->o.impressed, st->r.n, st->r.id, "addImpressionsToHeap2");
    if (m > st->r.n) m = st->r.n; /* rates are checked to be <= 1; this only guards */
    for (int64_t k = 0; k < copies && !g->failed; k++) {
        genrec_items *imp = items_new(g, (size_t)m);
        if (!imp) return;
        for (int64_t i = 0; i < m; i++) {
            genrec_item *it = &imp->v[i];
            memset(it, 0, sizeof *it);
            it->content = st->r.items->v[i].content;
            it->insertion = st->r.items->v[i].insertion;
            it->impression = idsup_next(&g->ids, IDSUP_IMPRESSION);
        }
        imp->n = (uint32_t)m;
        add_impressions(g, st, imp, k, k == copies - 1);
        items_unref(g, imp);
    }
}

static int cart_add(gen_logs *g, genrec_user *u, uint32_t content)
{
    genrec_cart *c = u->cart;
    if (c->n == c->cap) {
        if (c->cap >= GENREC_MAX_CART) {
            fail(g, "generator: the cart of log user '%s' passed %d entries", u->log_user_id,
                 GENREC_MAX_CART);
            return -1;
        }
        uint32_t cap = c->cap ? 2 * c->cap : 8;
        uint32_t *v = realloc(c->content, cap * sizeof *v);
        if (!v) {
            fail(g, "generator: out of memory for a cart");
            return -1;
        }
        c->content = v;
        c->cap = cap;
    }
    c->content[c->n++] = content;
    return 0;
}

static void run_actions(gen_logs *g, const gen_state *st)
{
    genrec_user *u = st->r.user;
    const genrec_items *imp = st->r.items;
    int level = st->r.level;
    int64_t k = count_id(g->o.navigate, st->r.n, imp->v[0].impression, "addImpressionsToHeap2");
    if (k > st->r.n) k = st->r.n;
    if (k == 0) return;
    int64_t now = now_ms(g), ea = ea_ms(g, now);
    genrec_items *acts = items_new(g, (size_t)(2 * k));
    if (!acts) return;
    for (int64_t i = 0; i < k; i++) {
        gen_id action_id = idsup_next(&g->ids, IDSUP_ACTION);
        if (g->o.log_navigates[level]) {
            genrec_item *a = &acts->v[acts->n++];
            *a = imp->v[i];
            a->action = action_id;
            a->action_type = EVENT__ACTION_TYPE__NAVIGATE;
        }
        if (last_level(g, level) && g->o.write_product_views)
            add_view(g, u, NULL, i, imp->v[i].content, GENREC_VIEW_PAGE_FOR, false, level);
    }
    if (last_level(g, level)) {
        int64_t a = count_id(g->o.add_to_cart, k, imp->v[0].impression, "addToCart");
        for (int64_t i = 0; i < a && i < k; i++) {
            genrec_item *it = &acts->v[acts->n++];
            *it = imp->v[i];
            it->action = idsup_next(&g->ids, IDSUP_ACTION);
            it->action_type = EVENT__ACTION_TYPE__ADD_TO_CART;
            if (cart_add(g, u, imp->v[i].content)) break;
        }
    }
    int64_t t = now + delay(g, 5000);
    gen_state *s = record(g, GENREC_ACTIONS, u, ea);
    if (s) {
        s->r.items = items_ref(acts);
        s->r.n = acts->n;
    }
    push(g, t, s);
    gen_state *f = step(g, RUN_FOLLOW_UP, u);
    if (f) {
        f->r.items = items_ref(st->r.items);
        f->r.n = (uint32_t)k;
        f->r.level = (uint8_t)level;
    }
    push(g, t, f);
    items_unref(g, acts);
}

/* Actions of one type on the first n of `from`, in one LogRequest at now + 5 s; returns it. */
static gen_state *add_cart_actions(gen_logs *g, const gen_state *st, int64_t n,
                                   Event__ActionType type, int64_t *t)
{
    int64_t now = now_ms(g), ea = ea_ms(g, now);
    genrec_items *acts = items_new(g, (size_t)n);
    if (!acts) return NULL;
    for (int64_t i = 0; i < n; i++) {
        genrec_item *a = &acts->v[acts->n++];
        *a = st->r.items->v[i];
        a->action = idsup_next(&g->ids, IDSUP_ACTION);
        a->action_type = type;
    }
    *t = now + delay(g, 5000);
    gen_state *s = record(g, GENREC_ACTIONS, st->r.user, ea);
    if (s) {
        s->r.items = items_ref(acts);
        s->r.n = acts->n;
        s->r.cart_len = st->r.user->cart->n; /* the cart as it is now */
    }
    items_unref(g, acts);
    return s;
}

static void run_follow_up(gen_logs *g, const gen_state *st)
{
    const genrec_items *nav = st->r.items;
    int level = st->r.level;
    if (!last_level(g, level)) {
        /* level 0 of two levels: one "Items for <content>" view per navigated content */
        for (uint32_t i = 0; i < st->r.n && !g->failed; i++)
            add_view(g, st->r.user, NULL, i, nav->v[i].content, GENREC_VIEW_ITEMS_FOR, true,
                     level + 1);
        return;
    }
    int64_t c = count_id(g->o.checkout, st->r.n, nav->v[0].impression, "addNavigatesToHeap");
    if (c > st->r.n) c = st->r.n;
    if (c == 0) return;
    int64_t t;
    gen_state *s = add_cart_actions(g, st, c, EVENT__ACTION_TYPE__CHECKOUT, &t);
    if (!s) return;
    push(g, t, s);
    gen_state *p = step(g, RUN_PURCHASES, st->r.user);
    if (p) {
        p->r.items = items_ref(st->r.items);
        p->r.n = (uint32_t)c;
        p->r.level = (uint8_t)level;
    }
    push(g, t, p);
}

static void run_purchases(gen_logs *g, const gen_state *st)
{
    int64_t p =
        count_id(g->o.purchase, st->r.n, st->r.items->v[0].impression, "addCheckoutsToHeap");
    if (p > st->r.n) p = st->r.n;
    if (p == 0) return;
    int64_t t;
    gen_state *s = add_cart_actions(g, st, p, EVENT__ACTION_TYPE__PURCHASE, &t);
    push(g, t, s);
}

static void run(gen_logs *g, const gen_state *s)
{
    switch ((run_kind)s->run) {
    case RUN_COHORT:
        run_cohort(g, s);
        break;
    case RUN_SESSIONS:
        run_sessions(g, s);
        break;
    case RUN_VIEWS:
        run_views(g, s);
        break;
    case RUN_AUTO_VIEWS:
        run_auto_views(g, s);
        break;
    case RUN_DELIVERY_LOGS:
        run_delivery_logs(g, s);
        break;
    case RUN_DIAGNOSTICS:
        run_diagnostics(g, s);
        break;
    case RUN_IMPRESSIONS:
        run_impressions(g, s);
        break;
    case RUN_ACTIONS:
        run_actions(g, s);
        break;
    case RUN_FOLLOW_UP:
        run_follow_up(g, s);
        break;
    case RUN_PURCHASES:
        run_purchases(g, s);
        break;
    case RUN_NONE:
        break;
    }
}

/* ---- options ---------------------------------------------------------------- */

static int check_int(const char *flag, int64_t v, int64_t lo, int64_t hi, const char *profile_note,
                     char *err, size_t errlen)
{
    if (v == -1 && lo >= 0 && profile_note) {
        snprintf(err, errlen, "generator option --%s is required (%s)", flag, profile_note);
        return -1;
    }
    if (v < lo || v > hi) {
        snprintf(err, errlen, "generator option --%s=%lld is outside [%lld, %lld]", flag,
                 (long long)v, (long long)lo, (long long)hi);
        return -1;
    }
    return 0;
}

static int check_rate(const char *flag, double v, float *out, char *err, size_t errlen)
{
    if (v == -1) {
        snprintf(err, errlen,
                 "generator option --%s is required (the library profile has no default)", flag);
        return -1;
    }
    if (!(v >= 0 && v <= 1)) {
        snprintf(err, errlen, "generator option --%s=%g is outside [0, 1]", flag, v);
        return -1;
    }
    *out = (float)v; /* the reference holds rates as float */
    return 0;
}

static int parse_bool_text(const char *s, int *out)
{
    if (!s || !*s) return *out = -1, 0;
    if (!strcasecmp(s, "true")) return *out = 1, 0;
    if (!strcasecmp(s, "false")) return *out = 0, 0;
    return -1;
}

static int convert(const gen_options *in, run_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    const char *req = "the library profile has no default";
#define INT(flag, field, lo, hi)                                                                   \
    do {                                                                                           \
        if (check_int(flag, in->field, lo, hi, req, err, errlen)) return -1;                       \
    } while (0)
    INT("users", users, 0, MAX_USERS);
    INT("sessionsPerUser", sessions_per_user, 0, MAX_PER_PARENT);
    INT("viewsPerSession", views_per_session, 0, MAX_PER_PARENT);
    INT("autoViewsPerSession", auto_views_per_session, 0, MAX_PER_PARENT);
    INT("delayBetweenViewInSeconds", delay_between_view_in_seconds, 0, MAX_DELAY_S);
    INT("delayBetweenAutoViewInSeconds", delay_between_auto_view_in_seconds, 0, MAX_DELAY_S);
    INT("requestsPerViews", requests_per_views, 0, MAX_REQUESTS);
    INT("responseInsertionsPerRequest", response_insertions_per_request, 0, MAX_INSERTIONS);
#undef INT
    if (check_int("maxRedundantImpressionsPerDeliveryLog",
                  in->max_redundant_impressions_per_delivery_log, 0, MAX_REDUNDANT, NULL, err,
                  errlen))
        return -1;
    o->users = in->users;
    o->sessions = in->sessions_per_user;
    o->views = in->views_per_session;
    o->auto_views = in->auto_views_per_session;
    o->view_delay_s = in->delay_between_view_in_seconds;
    o->auto_view_delay_s = in->delay_between_auto_view_in_seconds;
    o->requests = in->requests_per_views;
    o->insertions = in->response_insertions_per_request;
    o->max_redundant = in->max_redundant_impressions_per_delivery_log;

#define RATE(flag, field, out)                                                                     \
    do {                                                                                           \
        if (check_rate(flag, in->field, &o->out, err, errlen)) return -1;                          \
    } while (0)
    RATE("insertionImpressedRate", insertion_impressed_rate, impressed);
    RATE("impressionNavigateRate", impression_navigate_rate, navigate);
    RATE("navigateAddToCartRate", navigate_add_to_cart_rate, add_to_cart);
    RATE("navigateCheckoutRate", navigate_checkout_rate, checkout);
    RATE("checkoutPurchaseRate", checkout_purchase_rate, purchase);
    RATE("miniSdkRate", mini_sdk_rate, mini_sdk);
    RATE("shadowTrafficRate", shadow_traffic_rate, shadow);
    RATE("redundantImpressionRate", redundant_impression_rate, redundant);
    RATE("emptyLogUserIdRate", empty_log_user_id_rate, empty_log_user);
    RATE("missingViewRate", missing_view_rate, missing_view);
    RATE("missingAutoViewRate", missing_auto_view_rate, missing_auto_view);
    RATE("missingDeliveryLogRate", missing_delivery_log_rate, missing_delivery_log);
    RATE("missingImpressionRate", missing_impression_rate, missing_impression);
#undef RATE
    if (!(in->delay_multiplier >= 0 && in->delay_multiplier <= 1e6)) {
        snprintf(err, errlen, "generator option --delayMultiplier=%g is outside [0, 1000000]",
                 in->delay_multiplier);
        return -1;
    }
    o->multiplier = (float)in->delay_multiplier;
    o->uniform = in->uniform_random_delay;
    o->fixed_clock = in->fixed_clock;
    o->write_users = in->write_users;
    o->write_product_views = in->write_product_views;
    if (in->start_time < 0 || in->start_time > 4102444800000LL) {
        snprintf(err, errlen, "generator option --startTime=%lld is outside [0, 4102444800000]",
                 (long long)in->start_time);
        return -1;
    }
    if (in->start_event_api_timestamp < 0 || in->start_event_api_timestamp > 4102444800000LL) {
        snprintf(err, errlen,
                 "generator option --startEventApiTimestamp=%lld is outside [0, 4102444800000]",
                 (long long)in->start_event_api_timestamp);
        return -1;
    }
    o->start = in->start_time;
    o->start_ea = in->start_event_api_timestamp;

    genrec_config *c = &o->cfg;
    int t0 = contentdb_type_parse(in->request_content_type0);
    if (t0 < 0) {
        snprintf(err, errlen,
                 "generator option --requestContentType0='%s' is not ITEM, STORE or PROMOTION",
                 in->request_content_type0 ? in->request_content_type0 : "");
        return -1;
    }
    c->levels = 1;
    c->level_type[0] = (content_type)t0;
    if (in->request_content_type1 && *in->request_content_type1) {
        int t1 = contentdb_type_parse(in->request_content_type1);
        if (t1 < 0) {
            snprintf(err, errlen,
                     "generator option --requestContentType1='%s' is not ITEM, STORE, PROMOTION "
                     "or empty",
                     in->request_content_type1);
            return -1;
        }
        c->levels = 2;
        c->level_type[1] = (content_type)t1;
    }
    c->log_impressions[0] = in->request_log_impressions0;
    c->log_impressions[1] = in->request_log_impressions1;
    o->log_navigates[0] = in->request_log_navigates0;
    o->log_navigates[1] = in->request_log_navigates1;
    c->matrix_format = in->use_insertion_matrix_format;
    int full;
    if (parse_bool_text(in->insertion_full_format, &full)) {
        snprintf(err, errlen,
                 "generator option --insertionFullFormat='%s' is not true, false or empty",
                 in->insertion_full_format);
        return -1;
    }
    c->full_format = full < 0 ? !c->matrix_format : full;
    c->inferred = in->setup_for_inferred_ids;
    if (!in->detail || (strcasecmp(in->detail, "FULL") && strcasecmp(in->detail, "PARTIAL"))) {
        snprintf(err, errlen, "generator option --detail='%s' is not FULL or PARTIAL",
                 in->detail ? in->detail : "");
        return -1;
    }
    c->full_detail = !strcasecmp(in->detail, "FULL");
    return 0;
}

/* ---- lifecycle -------------------------------------------------------------- */

static int create_users(gen_logs *g, char *err, size_t errlen)
{
    g->users = calloc(g->o.users ? (size_t)g->o.users : 1, sizeof *g->users);
    g->carts = calloc(g->o.users ? (size_t)g->o.users : 1, sizeof *g->carts);
    if (!g->users || !g->carts) {
        snprintf(err, errlen, "generator: out of memory for %lld users", (long long)g->o.users);
        return -1;
    }
    int64_t now = now_ms(g), ea = ea_ms(g, now);
    for (int64_t i = 0; i < g->o.users; i++) {
        genrec_user *u = &g->users[i];
        size_t len = idsup_format_user(&g->ids, idsup_next(&g->ids, IDSUP_USER), u->user_id);
        if (jrandom_roll(g->o.empty_log_user, u->user_id, len, "setLogUserUuidSupplier")) {
            u->log_user_id[0] = 0;
            u->cart = &g->empty_cart;
        } else {
            idsup_format_uuid(idsup_next(&g->ids, IDSUP_LOG_USER), u->log_user_id);
            u->cart = &g->carts[i];
        }
        u->user_hash = jrandom_string_hash(u->user_id, len);
        common__user_info__init(&u->info);
        u->info.user_id = u->user_id;
        u->info.log_user_id = u->log_user_id[0] ? u->log_user_id : NULL;
        common__user_info__init(&u->log_info);
        u->log_info.log_user_id = u->info.log_user_id;
        g->n_users++;

        if (g->o.write_users) push(g, now, record(g, GENREC_USER, u, ea));
        push(g, now, step(g, RUN_COHORT, u));
        push(g, now, step(g, RUN_SESSIONS, u));
        if (g->failed) {
            snprintf(err, errlen, "%s", g->err);
            return -1;
        }
    }
    return 0;
}

int gen_logs_new(const gen_options *opts, gen_logs **out, char *err, size_t errlen)
{
    *out = NULL;
    gen_logs *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "generator: out of memory");
        return -1;
    }
    if (convert(opts, &g->o, err, errlen)) goto fail;
    idsup_mode mode;
    if (opts->ids && !strcasecmp(opts->ids, "random"))
        mode = IDSUP_RANDOM;
    else if (opts->ids && !strcasecmp(opts->ids, "incrementing"))
        mode = IDSUP_INCREMENTING;
    else {
        snprintf(err, errlen, "generator option --ids='%s' is not random or incrementing",
                 opts->ids ? opts->ids : "");
        goto fail;
    }
    idsup_init(&g->ids, mode, (uint64_t)opts->seed);
    jrandom_seed(&g->delay_rng, opts->seed);
    if (contentdb_new(opts->stores, opts->items_per_store, opts->promotions_per_item, &g->db, err,
                      errlen))
        goto fail;
    if (genrec_builder_new(&g->o.cfg, g->db, GEN_MAX_RECORD_BYTES, &g->builder, err, errlen))
        goto fail;
    g->clock = g->o.start;
    g->last_send = INT64_MIN;
    if (create_users(g, err, errlen)) goto fail;
    *out = g;
    return 0;
fail:
    gen_logs_free(g);
    return -1;
}

void gen_logs_free(gen_logs *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_state_blocks; i++)
        free(g->state_blocks[i]);
    free(g->state_blocks);
    for (size_t i = 0; i < g->n_item_blocks; i++)
        free(g->item_blocks[i]);
    free(g->item_blocks);
    free(g->heap);
    if (g->carts)
        for (int64_t i = 0; i < g->o.users; i++)
            free(g->carts[i].content);
    free(g->carts);
    free(g->empty_cart.content);
    free(g->users);
    genrec_builder_free(g->builder);
    contentdb_free(g->db);
    free(g);
}

static void count(gen_logs *g, const Event__LogRequest *lr)
{
    gen_counts *c = &g->counts;
    c->log_requests++;
    c->users += lr->n_user;
    c->cohort_memberships += lr->n_cohort_membership;
    c->views += lr->n_view;
    c->auto_views += lr->n_auto_view;
    c->diagnostics += lr->n_diagnostics;
    c->impressions += lr->n_impression;
    for (size_t i = 0; i < lr->base.n_unknown_fields; i++) {
        uint32_t tag = lr->base.unknown_fields[i].tag;
        if (tag == PB_PRIVATE_LOG_REQUEST_SESSION) c->sessions++;
        if (tag == PB_PRIVATE_LOG_REQUEST_SESSION_PROFILE) c->session_profiles++;
    }
    for (size_t i = 0; i < lr->n_delivery_log; i++) {
        const Delivery__DeliveryLog *dl = lr->delivery_log[i];
        c->delivery_logs++;
        if (dl->request && dl->request->client_info &&
            dl->request->client_info->traffic_type == COMMON__CLIENT_INFO__TRAFFIC_TYPE__SHADOW)
            c->shadow_delivery_logs++;
        else if (dl->execution &&
                 dl->execution->execution_server == DELIVERY__EXECUTION_SERVER__SDK)
            c->sdk_delivery_logs++;
        else
            c->api_delivery_logs++;
        if (dl->request) {
            c->request_insertions += dl->request->n_insertion;
            if (dl->request->insertion_matrix)
                c->request_insertions += dl->request->insertion_matrix->n_values;
        }
        if (dl->response) c->response_insertions += dl->response->n_insertion;
        if (dl->execution) c->execution_insertions += dl->execution->base.n_unknown_fields;
    }
    for (size_t i = 0; i < lr->n_action; i++) {
        switch (lr->action[i]->action_type) {
        case EVENT__ACTION_TYPE__NAVIGATE:
            c->navigates++;
            break;
        case EVENT__ACTION_TYPE__ADD_TO_CART:
            c->add_to_carts++;
            break;
        case EVENT__ACTION_TYPE__CHECKOUT:
            c->checkouts++;
            break;
        case EVENT__ACTION_TYPE__PURCHASE:
            c->purchases++;
            break;
        default:
            break;
        }
    }
}

int gen_logs_next(gen_logs *g, int64_t *ts_ms, Event__LogRequest **lr, char *err, size_t errlen)
{
    while (!g->failed) {
        if (!g->heap_n) return 0;
        heap_entry e = pop(g);
        gen_state *s = e.s;
        if (s->run != RUN_NONE) {
            run(g, s);
            state_free(g, s);
            continue;
        }
        /* a real-time sender never sends before the previous record */
        int64_t ts = e.t > g->last_send ? e.t : g->last_send;
        g->last_send = g->clock = ts;
        int rc = genrec_build(g->builder, &s->r, lr, g->err, sizeof g->err);
        state_free(g, s);
        if (rc) {
            g->failed = 1;
            break;
        }
        count(g, *lr);
        *ts_ms = ts;
        return 1;
    }
    snprintf(err, errlen, "%s", g->err);
    return -1;
}

int gen_logs_next_packed(gen_logs *g, int64_t *ts_ms, const uint8_t **key, size_t *key_len,
                         const uint8_t **value, size_t *value_len, char *err, size_t errlen)
{
    Event__LogRequest *lr;
    int rc = gen_logs_next(g, ts_ms, &lr, err, errlen);
    if (rc != 1) return rc;
    if (genrec_pack(g->builder, lr, value, value_len, err, errlen)) {
        g->failed = 1;
        snprintf(g->err, sizeof g->err, "%s", err);
        return -1;
    }
    g->counts.bytes += *value_len;
    const char *luid =
        lr->user_info && lr->user_info->log_user_id ? lr->user_info->log_user_id : "";
    *key_len = recfile_make_key(GEN_PLATFORM_ID, luid, g->key, sizeof g->key);
    if (*key_len > sizeof g->key) *key_len = sizeof g->key; /* log user ids are 36 bytes */
    *key = g->key;
    return 1;
}

void gen_logs_counts(const gen_logs *g, gen_counts *out)
{
    *out = g->counts;
}
