#include "runtime/graph.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/graph_private.h"
#include "runtime/state.h"
#include "runtime/timers.h"

#define MAX_PORTS 64
#define SNAP_VERSION 1
#define LABELS_MAX (RT_UID_MAX + 160)

typedef struct edge {
    rt_op *to;
    int input;
} edge;

typedef struct port {
    edge *e;
    size_t n, cap;
    char *name;
    rt_counter *side; /* numRecordsOutSide, for named ports > 0 */
} port;

struct rt_op {
    rt_graph *g;
    char *uid, *name;
    const rt_op_vtbl *vt;
    void *self;
    int nin, nout;
    port *ports;
    rt_op **ups; /* the operator behind each incoming connection */
    size_t nups, ups_cap;
    int64_t src_wm; /* roots: the source watermark */
    int64_t in_wm, out_wm, holdback;
    int drain_discards; /* rt_op_set_drain_discards_timers */
    int no_early_release; /* rt_op_set_no_early_release */
    rt_timers *timers;  /* created on the first registration */
    rt_kv **kvs;
    size_t nkv;
    int64_t mem;
    rt_counter *c_in, *c_out;
    rt_gauge *g_wm, *g_mem;
    size_t index; /* insertion order */
};

struct rt_graph {
    rt_op **ops; /* insertion order, then topological order after open */
    size_t n, cap;
    rt_metrics *metrics;
    int own_metrics;
    rt_mem *mem;
    char *task;
    int64_t reserved; /* bytes taken from the shared budget */
    int64_t used;     /* bytes charged by the operators */
    int open, finished, failed;
    int checkpointing;
    char err[512];
};

static int64_t sat_sub(int64_t wm, int64_t d)
{
    if (wm == RT_TIME_MIN || wm == RT_TIME_MAX || d <= 0) return wm;
    return wm < RT_TIME_MIN + d ? RT_TIME_MIN : wm - d;
}

static void graph_fail(rt_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void graph_fail(rt_graph *g, const char *fmt, ...)
{
    if (g->failed) return;
    g->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
}

/* ---- build ---- */

int rt_graph_new(const rt_graph_config *cfg, rt_graph **out)
{
    rt_graph *g = calloc(1, sizeof *g);
    if (!g) return -1;
    g->task = strdup(cfg && cfg->task ? cfg->task : "0");
    g->mem = cfg ? cfg->mem : NULL;
    g->metrics = cfg ? cfg->metrics : NULL;
    if (!g->metrics) {
        g->own_metrics = 1;
        if (rt_metrics_new(&g->metrics) < 0) g->metrics = NULL;
    }
    if (!g->task || !g->metrics) {
        rt_graph_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

int rt_graph_add_op(rt_graph *g, const char *uid, const char *name, const rt_op_vtbl *vt,
                    void *self, int nin, int nout, rt_op **out)
{
    if (g->open || nin < 0 || nin > MAX_PORTS || nout < 0 || nout > MAX_PORTS || !vt || !uid)
        return -1;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        rt_op **p = realloc(g->ops, cap * sizeof *p);
        if (!p) return -1;
        g->ops = p;
        g->cap = cap;
    }
    rt_op *op = calloc(1, sizeof *op);
    if (!op) return -1;
    op->uid = strdup(uid);
    op->name = strdup(name ? name : uid);
    op->ports = nout ? calloc((size_t)nout, sizeof *op->ports) : NULL;
    if (!op->uid || !op->name || (nout && !op->ports)) {
        free(op->uid);
        free(op->name);
        free(op->ports);
        free(op);
        return -1;
    }
    op->g = g;
    op->vt = vt;
    op->self = self;
    op->nin = nin;
    op->nout = nout;
    op->src_wm = op->in_wm = op->out_wm = RT_TIME_MIN;
    op->index = g->n;
    g->ops[g->n++] = op;
    *out = op;
    return 0;
}

int rt_graph_connect(rt_graph *g, rt_op *from, int portno, rt_op *to, int input)
{
    if (g->open) {
        graph_fail(g, "connect %s -> %s: the graph is already open", from->uid, to->uid);
        return -1;
    }
    if (from->g != g || to->g != g) {
        graph_fail(g, "connect %s -> %s: operator of another graph", from->uid, to->uid);
        return -1;
    }
    if (portno < 0 || portno >= from->nout) {
        graph_fail(g, "connect %s -> %s: port %d, the operator has %d", from->uid, to->uid, portno,
                   from->nout);
        return -1;
    }
    if (input < 0 || input >= to->nin) {
        graph_fail(g, "connect %s -> %s: input %d, the operator has %d", from->uid, to->uid, input,
                   to->nin);
        return -1;
    }
    port *p = &from->ports[portno];
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 2;
        edge *e = realloc(p->e, cap * sizeof *e);
        if (!e) goto oom;
        p->e = e;
        p->cap = cap;
    }
    if (to->nups == to->ups_cap) {
        size_t cap = to->ups_cap ? to->ups_cap * 2 : 2;
        rt_op **u = realloc(to->ups, cap * sizeof *u);
        if (!u) goto oom;
        to->ups = u;
        to->ups_cap = cap;
    }
    p->e[p->n++] = (edge){to, input};
    to->ups[to->nups++] = from;
    return 0;
oom:
    graph_fail(g, "connect %s -> %s: out of memory", from->uid, to->uid);
    return -1;
}

int rt_uid_check(const char *uid, char *err, size_t errlen)
{
    size_t n = strlen(uid);
    if (n == 0) {
        snprintf(err, errlen, "operator uid is empty");
        return -1;
    }
    if (n > RT_UID_MAX) {
        snprintf(err, errlen, "operator uid \"%.40s...\" is %zu bytes, over the limit of %d", uid,
                 n, RT_UID_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = uid[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-')) {
            snprintf(err, errlen,
                     "operator uid \"%s\": character %zu ('%c') is not one of [a-z0-9._-]", uid,
                     i + 1, c >= 0x20 && c < 0x7f ? c : '?');
            return -1;
        }
        if (c == '-' && (i == 0 || i == n - 1 || uid[i + 1] == '-')) {
            snprintf(err, errlen, "operator uid \"%s\": empty segment between '-' at character %zu",
                     uid, i + 1);
            return -1;
        }
    }
    return 0;
}

int rt_graph_check_uids(const rt_graph *g, char *err, size_t errlen)
{
    for (size_t i = 0; i < g->n; i++) {
        if (rt_uid_check(g->ops[i]->uid, err, errlen) < 0) return -1;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(g->ops[i]->uid, g->ops[j]->uid)) {
                snprintf(err, errlen, "operator uid \"%s\" is used twice in the graph",
                         g->ops[i]->uid);
                return -1;
            }
    }
    return 0;
}

/* Kahn's algorithm, always taking the earliest-added ready operator, so the order is stable and
 * readable (sources first, as the job added them). O(n^2) over tens of operators. */
static int topo_sort(rt_graph *g, char *err, size_t errlen)
{
    size_t n = g->n;
    if (!n) return 0;
    size_t *indeg = calloc(n, sizeof *indeg);
    rt_op **order = calloc(n, sizeof *order);
    char *done = calloc(n, 1);
    int rc = -1;
    if (!indeg || !order || !done) {
        snprintf(err, errlen, "graph: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        indeg[i] = g->ops[i]->nups;
    for (size_t k = 0; k < n; k++) {
        size_t pick = n;
        for (size_t i = 0; i < n && pick == n; i++)
            if (!done[i] && indeg[i] == 0) pick = i;
        if (pick == n) {
            for (size_t i = 0; i < n; i++)
                if (!done[i]) {
                    snprintf(err, errlen, "graph: operator %s is on a cycle", g->ops[i]->uid);
                    break;
                }
            goto out;
        }
        done[pick] = 1;
        order[k] = g->ops[pick];
        rt_op *op = g->ops[pick];
        for (int p = 0; p < op->nout; p++)
            for (size_t e = 0; e < op->ports[p].n; e++)
                indeg[op->ports[p].e[e].to->index]--;
    }
    memcpy(g->ops, order, n * sizeof *order);
    rc = 0;
out:
    free(indeg);
    free(order);
    free(done);
    return rc;
}

static int register_side(rt_op *op, int portno);

static int register_metrics(rt_graph *g, rt_op *op)
{
    char labels[LABELS_MAX];
    snprintf(labels, sizeof labels, "operator=%s,task=%s", op->uid, g->task);
    if (rt_metrics_counter(g->metrics, "numRecordsIn", labels, &op->c_in) < 0 ||
        rt_metrics_counter(g->metrics, "numRecordsOut", labels, &op->c_out) < 0 ||
        rt_metrics_gauge(g->metrics, "currentInputWatermark", labels, &op->g_wm) < 0 ||
        rt_metrics_gauge(g->metrics, "stateBytes", labels, &op->g_mem) < 0)
        return -1;
    rt_gauge_set(op->g_wm, op->in_wm);
    rt_gauge_set(op->g_mem, op->mem);
    for (int p = 1; p < op->nout; p++)
        if (op->ports[p].name && register_side(op, p) < 0) return -1;
    return 0;
}

int rt_graph_open(rt_graph *g, char *err, size_t errlen)
{
    if (g->open) {
        snprintf(err, errlen, "graph: already open");
        return -1;
    }
    if (g->failed) {
        snprintf(err, errlen, "%s", g->err);
        return -1;
    }
    if (rt_graph_check_uids(g, err, errlen) < 0 || topo_sort(g, err, errlen) < 0) goto fail;
    for (size_t i = 0; i < g->n; i++) {
        rt_op *op = g->ops[i];
        if (op->nups && !op->vt->process) {
            snprintf(err, errlen, "operator %s: has inputs connected but no process callback",
                     op->uid);
            goto fail;
        }
        if (register_metrics(g, op) < 0) {
            snprintf(err, errlen,
                     "operator %s: cannot register metrics (out of memory, or a "
                     "name clash)",
                     op->uid);
            goto fail;
        }
    }
    g->open = 1;
    for (size_t i = 0; i < g->n; i++) {
        rt_op *op = g->ops[i];
        if (op->vt->open && op->vt->open(op) < 0) {
            if (!g->failed) graph_fail(g, "operator %s: open failed", op->uid);
            snprintf(err, errlen, "%s", g->err);
            return -1;
        }
    }
    return 0;
fail:
    graph_fail(g, "%s", err);
    return -1;
}

/* ---- operator context ---- */

void *rt_op_self(const rt_op *op)
{
    return op->self;
}
const char *rt_op_uid(const rt_op *op)
{
    return op->uid;
}
const char *rt_op_name(const rt_op *op)
{
    return op->name;
}
rt_graph *rt_op_graph(const rt_op *op)
{
    return op->g;
}
int64_t rt_op_watermark(const rt_op *op)
{
    return op->in_wm;
}
int64_t rt_op_output_watermark(const rt_op *op)
{
    return op->out_wm;
}

void rt_op_set_watermark_holdback(rt_op *op, int64_t ms)
{
    op->holdback = ms > 0 ? ms : 0;
}

void rt_op_set_no_early_release(rt_op *op)
{
    op->no_early_release = 1;
}

void rt_op_set_drain_discards_timers(rt_op *op)
{
    op->drain_discards = 1;
}

static int register_side(rt_op *op, int portno)
{
    char labels[LABELS_MAX];
    snprintf(labels, sizeof labels, "operator=%s,output=%s,task=%s", op->uid,
             op->ports[portno].name, op->g->task);
    return rt_metrics_counter(op->g->metrics, "numRecordsOutSide", labels, &op->ports[portno].side);
}

int rt_op_set_port_name(rt_op *op, int portno, const char *name)
{
    if (portno < 0 || portno >= op->nout) return -1;
    char *s = strdup(name);
    if (!s) return -1;
    free(op->ports[portno].name);
    op->ports[portno].name = s;
    op->ports[portno].side = NULL;
    /* after open's registration pass (e.g. named from the operator's open): register now */
    if (op->c_in && portno > 0 && register_side(op, portno) < 0) return -1;
    return 0;
}

static int op_metric(rt_op *op, const char *name, rt_counter **c, rt_gauge **g)
{
    char labels[LABELS_MAX];
    snprintf(labels, sizeof labels, "operator=%s,task=%s", op->uid, op->g->task);
    int rc = c ? rt_metrics_counter(op->g->metrics, name, labels, c)
               : rt_metrics_gauge(op->g->metrics, name, labels, g);
    if (rc < 0) return rt_op_fail(op, "metric %s: out of memory, or a clash of kinds", name);
    return 0;
}

int rt_op_counter(rt_op *op, const char *name, rt_counter **out)
{
    return op_metric(op, name, out, NULL);
}

int rt_op_gauge(rt_op *op, const char *name, rt_gauge **out)
{
    return op_metric(op, name, NULL, out);
}

int rt_op_fail(rt_op *op, const char *fmt, ...)
{
    rt_graph *g = op->g;
    if (g->failed) return -1;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    graph_fail(g, "operator %s (task %s): %s", op->uid, g->task, msg);
    return -1;
}

const char *rt_graph_error(const rt_graph *g)
{
    return g->err;
}

/* ---- memory ---- */

/* Charges n (> 0) bytes or releases -n; the graph takes budget in chunks so the shared atomic is
 * touched rarely. */
static int op_charge(rt_op *op, int64_t n)
{
    rt_graph *g = op->g;
    if (n > 0 && g->used + n > g->reserved) {
        int64_t need = g->used + n - g->reserved;
        int64_t chunk = need < RT_MEM_CHUNK ? RT_MEM_CHUNK : need;
        if (g->mem && rt_mem_reserve(g->mem, chunk) < 0) {
            chunk = need;
            if (rt_mem_reserve(g->mem, chunk) < 0) return -1;
        }
        g->reserved += chunk;
    }
    g->used += n;
    op->mem += n;
    if (n < 0 && g->reserved - g->used > 2 * RT_MEM_CHUNK) {
        int64_t back = g->reserved - g->used - RT_MEM_CHUNK;
        if (g->mem) rt_mem_unreserve(g->mem, back);
        g->reserved -= back;
    }
    if (op->g_mem) rt_gauge_set(op->g_mem, op->mem);
    return 0;
}

int rt_op_charge_cb_(void *ctx, int64_t delta)
{
    return op_charge(ctx, delta);
}

int rt_op_fail_mem_(rt_op *op, const char *what, int64_t want)
{
    rt_graph *g = op->g;
    return rt_op_fail(op,
                      "%s: memory limit %lld bytes (--memoryLimit) reached: the operator holds "
                      "%lld bytes, the process %lld; %lld more wanted",
                      what, (long long)(g->mem ? rt_mem_limit(g->mem) : 0), (long long)op->mem,
                      (long long)(g->mem ? rt_mem_used(g->mem) : g->used), (long long)want);
}

int rt_op_mem_charge(rt_op *op, int64_t n)
{
    if (n <= 0) {
        if (n < 0) op_charge(op, n);
        return 0;
    }
    if (op_charge(op, n) < 0) return rt_op_fail_mem_(op, "state", n);
    return 0;
}

void rt_op_mem_release(rt_op *op, int64_t n)
{
    if (n > 0) op_charge(op, -n);
}

int64_t rt_op_mem_used(const rt_op *op)
{
    return op->mem;
}

int64_t rt_graph_mem_used(const rt_graph *g)
{
    return g->used;
}

int rt_op_attach_kv_(rt_op *op, rt_kv *kv)
{
    for (size_t i = 0; i < op->nkv; i++)
        if (!strcmp(rt_kv_name(op->kvs[i]), rt_kv_name(kv)))
            return rt_op_fail(op, "state %s created twice", rt_kv_name(kv));
    rt_kv **p = realloc(op->kvs, (op->nkv + 1) * sizeof *p);
    if (!p) return rt_op_fail(op, "state %s: out of memory", rt_kv_name(kv));
    op->kvs = p;
    op->kvs[op->nkv++] = kv;
    return 0;
}

/* ---- timers ---- */

int rt_timer_register(rt_op *op, int64_t time, const void *key, size_t key_len)
{
    if (!op->timers && rt_timers_new(rt_op_charge_cb_, op, &op->timers) < 0)
        return rt_op_fail(op, "timers: out of memory");
    if (key_len > RT_HTAB_KEY_MAX - 8)
        return rt_op_fail(op, "timer key of %zu bytes over the limit of %u", key_len,
                          RT_HTAB_KEY_MAX - 8);
    if (rt_timers_register(op->timers, time, key, key_len) < 0)
        return rt_op_fail_mem_(op, "timers", (int64_t)(64 + key_len));
    return 0;
}

int rt_timer_register_new(rt_op *op, int64_t time, const void *key, size_t key_len)
{
    if (!op->timers && rt_timers_new(rt_op_charge_cb_, op, &op->timers) < 0)
        return rt_op_fail(op, "timers: out of memory");
    if (key_len > RT_HTAB_KEY_MAX - 8)
        return rt_op_fail(op, "timer key of %zu bytes over the limit of %u", key_len,
                          RT_HTAB_KEY_MAX - 8);
    if (rt_timers_register_new(op->timers, time, key, key_len) < 0)
        return rt_op_fail_mem_(op, "timers", (int64_t)(64 + key_len));
    return 0;
}

int rt_timer_delete(rt_op *op, int64_t time, const void *key, size_t key_len)
{
    return op->timers ? rt_timers_delete(op->timers, time, key, key_len) : 0;
}

size_t rt_timer_count(const rt_op *op)
{
    return op->timers ? rt_timers_count(op->timers) : 0;
}

/* ---- run ---- */

int rt_emit(rt_op *op, int portno, const rt_record *rec)
{
    if ((unsigned)portno >= (unsigned)op->nout)
        return rt_op_fail(op, "emit to port %d, the operator has %d", portno, op->nout);
    port *p = &op->ports[portno];
    rt_counter_add_1w(op->c_out, 1);
    if (p->side) rt_counter_add_1w(p->side, 1);
    for (size_t i = 0; i < p->n; i++) {
        rt_op *to = p->e[i].to;
        rt_counter_add_1w(to->c_in, 1);
        int rc = to->vt->process(to, p->e[i].input, rec);
        if (rc < 0) return rc;
    }
    return 0;
}

int rt_graph_push(rt_graph *g, rt_op *op, int input, const rt_record *rec)
{
    if (!g->open || g->finished || op->g != g || !op->vt->process || input < 0 ||
        input >= op->nin) {
        graph_fail(g, "push into operator %s input %d: %s", op->uid, input,
                   !g->open      ? "the graph is not open"
                   : g->finished ? "the graph is finished"
                                 : "no such input");
        return -1;
    }
    rt_counter_add_1w(op->c_in, 1);
    return op->vt->process(op, input, rec);
}

/* Fires every timer due at limit, including those registered while firing. */
static int fire_timers(rt_op *op, int64_t limit)
{
    if (!op->timers) return 0;
    rt_timer_fired f;
    while (rt_timers_pop_due(op->timers, limit, &f) == 1) {
        int rc = op->vt->on_timer ? op->vt->on_timer(op, f.time, f.key, f.key_len) : 0;
        rt_timers_done(op->timers, &f);
        if (rc < 0) return rc;
    }
    return 0;
}

#define RELEASE_MAX_TIMERS (1 << 20) /* per call: the caller checks again after its next records */

int64_t rt_graph_release_early(rt_graph *g, int64_t target)
{
    int64_t fired = 0;
    int futile = 0;
    while (g->used > target && fired < RELEASE_MAX_TIMERS && futile < 64) {
        rt_op *best = NULL;
        for (size_t i = 0; i < g->n; i++) {
            rt_op *op = g->ops[i];
            if (op->timers && !op->no_early_release && rt_timers_count(op->timers) &&
                (!best || op->mem > best->mem))
                best = op;
        }
        if (!best) break;
        int64_t t, before = g->used;
        rt_timers_peek(best->timers, &t);
        rt_timer_fired f;
        while (rt_timers_pop_due(best->timers, t, &f) == 1) {
            int rc = best->vt->on_timer ? best->vt->on_timer(best, f.time, f.key, f.key_len) : 0;
            rt_timers_done(best->timers, &f);
            fired++;
            if (rc < 0) return -1;
        }
        futile = g->used < before ? 0 : futile + 1;
    }
    return fired;
}

/* Raises op's input watermark to wm: due timers fire, on_watermark runs, and only then the
 * output watermark moves, so timer output travels ahead of the watermark that released it. */
static int op_advance(rt_op *op, int64_t wm)
{
    if (wm <= op->in_wm) return 0;
    op->in_wm = wm;
    if (op->g_wm) rt_gauge_set(op->g_wm, wm);
    int rc = fire_timers(op, wm);
    if (rc < 0) return rc;
    if (op->vt->on_watermark && (rc = op->vt->on_watermark(op, wm)) < 0) return rc;
    int64_t out = sat_sub(wm, op->holdback);
    if (out > op->out_wm) op->out_wm = out;
    return 0;
}

static int64_t input_watermark(const rt_op *op)
{
    if (!op->nups) return op->src_wm;
    int64_t m = RT_TIME_MAX;
    for (size_t i = 0; i < op->nups; i++)
        if (op->ups[i]->out_wm < m) m = op->ups[i]->out_wm;
    return m;
}

static int propagate(rt_graph *g)
{
    for (size_t i = 0; i < g->n; i++) {
        rt_op *op = g->ops[i];
        int rc = op_advance(op, input_watermark(op));
        if (rc < 0) return rc;
    }
    return 0;
}

static int check_running(rt_graph *g)
{
    if (!g->open || g->finished) {
        graph_fail(g, "watermark: the graph is %s", g->open ? "finished" : "not open");
        return -1;
    }
    return 0;
}

int rt_graph_advance_watermark(rt_graph *g, int64_t wm)
{
    if (check_running(g) < 0) return -1;
    int changed = 0;
    for (size_t i = 0; i < g->n; i++) {
        rt_op *op = g->ops[i];
        if (!op->nups && wm > op->src_wm) {
            op->src_wm = wm;
            changed = 1;
        }
    }
    return changed ? propagate(g) : 0;
}

int rt_graph_advance_watermark_at(rt_graph *g, rt_op *root, int64_t wm)
{
    if (check_running(g) < 0) return -1;
    if (root->nups || wm <= root->src_wm) return 0;
    root->src_wm = wm;
    return propagate(g);
}

int rt_graph_finish(rt_graph *g)
{
    if (check_running(g) < 0) return -1;
    for (size_t i = 0; i < g->n; i++) {
        rt_op *op = g->ops[i];
        op->src_wm = RT_TIME_MAX;
        if (op->drain_discards) {
            /* its timers would only delete its state: drop both wholesale */
            rt_timers_free(op->timers);
            op->timers = NULL;
            for (size_t k = 0; k < op->nkv; k++)
                rt_kv_clear(op->kvs[k]);
        }
        int rc = op_advance(op, RT_TIME_MAX);
        if (rc == 0) rc = fire_timers(op, RT_TIME_MAX);
        if (rc == 0 && op->vt->finish) rc = op->vt->finish(op);
        if (rc == 0) rc = fire_timers(op, RT_TIME_MAX);
        if (rc < 0) {
            if (!g->failed) graph_fail(g, "operator %s: finish failed", op->uid);
            return rc;
        }
        op->out_wm = RT_TIME_MAX;
    }
    g->finished = 1;
    return 0;
}

/* ---- inspection ---- */

size_t rt_graph_op_count(const rt_graph *g)
{
    return g->n;
}

rt_op *rt_graph_op_at(const rt_graph *g, size_t i)
{
    return i < g->n ? g->ops[i] : NULL;
}

rt_op *rt_graph_find(const rt_graph *g, const char *uid)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->ops[i]->uid, uid)) return g->ops[i];
    return NULL;
}

const char *rt_graph_task(const rt_graph *g)
{
    return g->task;
}

rt_metrics *rt_graph_metrics(const rt_graph *g)
{
    return g->metrics;
}

int64_t rt_graph_watermark(const rt_graph *g)
{
    int64_t m = RT_TIME_MAX;
    int any = 0;
    for (size_t i = 0; i < g->n; i++) {
        rt_op *op = g->ops[i];
        size_t down = 0;
        for (int p = 0; p < op->nout; p++)
            down += op->ports[p].n;
        if (down) continue;
        any = 1;
        if (op->out_wm < m) m = op->out_wm;
    }
    return any ? m : RT_TIME_MIN;
}

/* ---- snapshot ---- */

/* A section is a u32 length followed by that many bytes; the length is patched in at the end. */
static int section_begin(rt_buf *b, size_t *at)
{
    *at = b->len;
    return rt_buf_put_u32(b, 0);
}

static int section_end(rt_buf *b, size_t at)
{
    size_t n = b->len - at - 4;
    if (n > UINT32_MAX) return -1;
    rt_buf_patch_u32(b, at, (uint32_t)n);
    return 0;
}

static int snapshot_op(rt_op *op, rt_buf *out)
{
    size_t at;
    if (rt_buf_put_str(out, op->uid) < 0 || rt_buf_put_i64(out, op->in_wm) < 0 ||
        rt_buf_put_i64(out, op->out_wm) < 0 || rt_buf_put_u32(out, (uint32_t)op->nkv) < 0)
        return -1;
    for (size_t i = 0; i < op->nkv; i++) {
        if (rt_buf_put_str(out, rt_kv_name(op->kvs[i])) < 0 || section_begin(out, &at) < 0 ||
            rt_kv_snapshot(op->kvs[i], out) < 0 || section_end(out, at) < 0)
            return -1;
    }
    if (section_begin(out, &at) < 0) return -1;
    if (op->timers && rt_timers_count(op->timers) && rt_timers_snapshot(op->timers, out) < 0)
        return -1;
    if (section_end(out, at) < 0 || section_begin(out, &at) < 0) return -1;
    if (op->vt->snapshot && op->vt->snapshot(op, out) < 0) return -1;
    return section_end(out, at);
}

int rt_graph_snapshot(rt_graph *g, rt_buf *out)
{
    if (!g->open) {
        graph_fail(g, "snapshot: the graph is not open");
        return -1;
    }
    if (rt_buf_put_u32(out, SNAP_VERSION) < 0 || rt_buf_put_u32(out, (uint32_t)g->n) < 0) goto full;
    for (size_t i = 0; i < g->n; i++) {
        if (snapshot_op(g->ops[i], out) < 0) {
            if (!g->failed)
                graph_fail(g, "snapshot of operator %s: over the snapshot limit of %zu bytes",
                           g->ops[i]->uid, out->limit);
            return -1;
        }
    }
    return 0;
full:
    graph_fail(g, "snapshot: over the snapshot limit of %zu bytes", out->limit);
    return -1;
}

static int restore_op(rt_graph *g, rt_buf_reader *r, char *err, size_t errlen)
{
    const uint8_t *uidp, *namep, *sec;
    size_t uidn, namen, secn;
    int64_t in_wm, out_wm;
    uint32_t nkv, len;
    if (rt_buf_read_bytes(r, &uidp, &uidn) < 0 || uidn > RT_UID_MAX ||
        rt_buf_read_i64(r, &in_wm) < 0 || rt_buf_read_i64(r, &out_wm) < 0 ||
        rt_buf_read_u32(r, &nkv) < 0) {
        snprintf(err, errlen, "graph snapshot: truncated operator header");
        return -1;
    }
    char uid[RT_UID_MAX + 1];
    memcpy(uid, uidp, uidn);
    uid[uidn] = 0;
    rt_op *op = rt_graph_find(g, uid);
    if (!op) {
        snprintf(err, errlen,
                 "graph snapshot: state of operator %s, which this job does not have (renamed "
                 "or removed?)",
                 uid);
        return -1;
    }
    op->in_wm = in_wm;
    op->out_wm = out_wm;
    if (!op->nups) op->src_wm = in_wm;
    if (op->g_wm) rt_gauge_set(op->g_wm, in_wm);
    for (uint32_t i = 0; i < nkv; i++) {
        if (rt_buf_read_bytes(r, &namep, &namen) < 0 || rt_buf_read_u32(r, &len) < 0 ||
            rt_buf_read_raw(r, len, &sec) < 0) {
            snprintf(err, errlen, "graph snapshot: operator %s: truncated state table %u", uid, i);
            return -1;
        }
        rt_kv *kv = NULL;
        for (size_t k = 0; k < op->nkv; k++)
            if (strlen(rt_kv_name(op->kvs[k])) == namen &&
                !memcmp(rt_kv_name(op->kvs[k]), namep, namen))
                kv = op->kvs[k];
        if (!kv) {
            snprintf(err, errlen, "graph snapshot: operator %s has no state table %.*s", uid,
                     (int)namen, (const char *)namep);
            return -1;
        }
        if (rt_kv_restore(kv, sec, len, err, errlen) < 0) return -1;
    }
    if (rt_buf_read_u32(r, &len) < 0 || rt_buf_read_raw(r, len, &sec) < 0) {
        snprintf(err, errlen, "graph snapshot: operator %s: truncated timers", uid);
        return -1;
    }
    if (len) {
        if (!op->timers && rt_timers_new(rt_op_charge_cb_, op, &op->timers) < 0) {
            snprintf(err, errlen, "operator %s: timers: out of memory", uid);
            return -1;
        }
        char e2[256];
        if (rt_timers_restore(op->timers, sec, len, e2, sizeof e2) < 0) {
            snprintf(err, errlen, "operator %s: %s", uid, e2);
            return -1;
        }
    }
    if (rt_buf_read_u32(r, &len) < 0 || rt_buf_read_raw(r, len, &sec) < 0) {
        snprintf(err, errlen, "graph snapshot: operator %s: truncated own state", uid);
        return -1;
    }
    secn = len;
    if (secn) {
        if (!op->vt->restore) {
            snprintf(err, errlen,
                     "operator %s: the snapshot has %zu bytes of its own state but "
                     "it has no restore callback",
                     uid, secn);
            return -1;
        }
        if (op->vt->restore(op, sec, secn) < 0) {
            snprintf(err, errlen, "%s", g->failed ? g->err : "restore failed");
            return -1;
        }
    }
    return 0;
}

int rt_graph_restore(rt_graph *g, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
    if (!g->open || g->finished) {
        snprintf(err, errlen, "graph restore: the graph must be open and not finished");
        return -1;
    }
    rt_buf_reader r;
    rt_buf_reader_init(&r, bytes, len);
    uint32_t version, n;
    if (rt_buf_read_u32(&r, &version) < 0 || rt_buf_read_u32(&r, &n) < 0) {
        snprintf(err, errlen, "graph snapshot: truncated header (%zu bytes)", len);
        return -1;
    }
    if (version != SNAP_VERSION) {
        snprintf(err, errlen, "graph snapshot: version %u, this build reads %u", version,
                 SNAP_VERSION);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++)
        if (restore_op(g, &r, err, errlen) < 0) return -1;
    if (rt_buf_reader_left(&r)) {
        snprintf(err, errlen, "graph snapshot: %zu bytes after the last operator",
                 rt_buf_reader_left(&r));
        return -1;
    }
    return 0;
}

/* ---- checkpoints ---- */

void rt_graph_set_checkpointing(rt_graph *g, int on)
{
    g->checkpointing = on;
}

int rt_graph_checkpointing(const rt_graph *g)
{
    return g->checkpointing;
}

int rt_graph_checkpoint_complete(rt_graph *g, int64_t id)
{
    for (size_t i = 0; i < g->n; i++) {
        rt_op *op = g->ops[i];
        if (op->vt->checkpoint_complete && op->vt->checkpoint_complete(op, id) < 0) {
            if (!g->failed) graph_fail(g, "operator %s: completing checkpoint %" PRId64 " failed",
                                       op->uid, id);
            return -1;
        }
    }
    return 0;
}

/* ---- end ---- */

void rt_graph_free(rt_graph *g)
{
    if (!g) return;
    for (size_t k = g->n; k-- > 0;) {
        rt_op *op = g->ops[k];
        if (op->vt->close) op->vt->close(op);
    }
    for (size_t k = g->n; k-- > 0;) {
        rt_op *op = g->ops[k];
        for (size_t i = 0; i < op->nkv; i++)
            rt_kv_free_(op->kvs[i]);
        free(op->kvs);
        rt_timers_free(op->timers);
        for (int p = 0; p < op->nout; p++) {
            free(op->ports[p].e);
            free(op->ports[p].name);
        }
        free(op->ports);
        free(op->ups);
        free(op->uid);
        free(op->name);
        free(op);
    }
    if (g->mem && g->reserved) rt_mem_unreserve(g->mem, g->reserved);
    free(g->ops);
    free(g->task);
    if (g->own_metrics) rt_metrics_free(g->metrics);
    free(g);
}

static int plan_str(rt_buf *out, const char *s)
{
    int rc = rt_buf_put_u8(out, '"');
    for (; *s && rc == 0; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            rc = rt_buf_append(out, esc, 2);
        } else if (ch < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            rc = rt_buf_append(out, esc, 6);
        } else {
            rc = rt_buf_put_u8(out, ch);
        }
    }
    return rc ? -1 : rt_buf_put_u8(out, '"');
}

int rt_graph_plan_json(const rt_graph *g, rt_buf *out)
{
    int rc = rt_buf_put_u8(out, '[');
    for (size_t i = 0; i < g->n && rc == 0; i++) {
        const rt_op *op = g->ops[i];
        rc |= rt_buf_append(out, i ? ",{\"id\":" : "{\"id\":", i ? 7 : 6);
        rc |= plan_str(out, op->uid);
        rc |= rt_buf_append(out, ",\"name\":", 8);
        rc |= plan_str(out, op->name ? op->name : op->uid);
        rc |= rt_buf_append(out, ",\"inputs\":[", 11);
        size_t listed = 0;
        for (size_t u = 0; u < op->nups && rc == 0; u++) {
            size_t k = 0;
            while (k < u && op->ups[k] != op->ups[u])
                k++;
            if (k < u) continue;
            if (listed++) rc |= rt_buf_put_u8(out, ',');
            rc |= plan_str(out, op->ups[u]->uid);
        }
        rc |= rt_buf_append(out, "]}", 2);
    }
    return rc ? -1 : rt_buf_put_u8(out, ']');
}
