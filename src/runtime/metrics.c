#include "runtime/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/htab.h"

/* A cell: the value first, so a cell pointer is a counter or gauge pointer. */
typedef struct cell {
    union {
        rt_counter c;
        rt_gauge g;
    } u;
    rt_metric_kind kind;
    char *name;
    char *labels;
} cell;

struct rt_metrics {
    pthread_mutex_t lock;
    rt_htab index; /* "name\0labels" -> cell * */
    cell **cells;  /* registration order */
    size_t n, cap;
};

int rt_metrics_new(rt_metrics **out)
{
    rt_metrics *m = calloc(1, sizeof *m);
    if (!m) return -1;
    pthread_mutex_init(&m->lock, NULL);
    rt_htab_init(&m->index, NULL, NULL);
    *out = m;
    return 0;
}

void rt_metrics_free(rt_metrics *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->cells[i]->name);
        free(m->cells[i]->labels);
        free(m->cells[i]);
    }
    free(m->cells);
    rt_htab_clear(&m->index);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static int lookup(rt_metrics *m, const char *name, const char *labels, rt_metric_kind kind,
                  cell **out)
{
    if (!labels) labels = "";
    size_t nl = strlen(name), ll = strlen(labels);
    char stack[512];
    char *key = nl + ll + 1 <= sizeof stack ? stack : malloc(nl + ll + 1);
    if (!key) return -1;
    memcpy(key, name, nl);
    key[nl] = 0;
    memcpy(key + nl + 1, labels, ll);
    size_t klen = nl + 1 + ll;
    uint64_t h = rt_hash_bytes(key, klen);
    int rc = -1;
    pthread_mutex_lock(&m->lock);
    rt_hentry *e = rt_htab_find(&m->index, key, klen, h);
    if (e) {
        cell *c = *(cell **)rt_hentry_val(e);
        if (c->kind == kind) {
            *out = c;
            rc = 0;
        }
        goto done;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        cell **p = realloc(m->cells, cap * sizeof *p);
        if (!p) goto done;
        m->cells = p;
        m->cap = cap;
    }
    cell *c = calloc(1, sizeof *c);
    if (!c) goto done;
    c->kind = kind;
    c->name = strdup(name);
    c->labels = strdup(labels);
    if (!c->name || !c->labels || !(e = rt_htab_insert(&m->index, key, klen, h, sizeof c))) {
        free(c->name);
        free(c->labels);
        free(c);
        goto done;
    }
    *(cell **)rt_hentry_val(e) = c;
    m->cells[m->n++] = c;
    *out = c;
    rc = 0;
done:
    pthread_mutex_unlock(&m->lock);
    if (key != stack) free(key);
    return rc;
}

int rt_metrics_counter(rt_metrics *m, const char *name, const char *labels, rt_counter **out)
{
    cell *c;
    if (lookup(m, name, labels, RT_METRIC_COUNTER, &c) < 0) return -1;
    *out = &c->u.c;
    return 0;
}

int rt_metrics_gauge(rt_metrics *m, const char *name, const char *labels, rt_gauge **out)
{
    cell *c;
    if (lookup(m, name, labels, RT_METRIC_GAUGE, &c) < 0) return -1;
    *out = &c->u.g;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rt_metrics_snapshot(rt_metrics *m, rt_metrics_snap *snap)
{
    memset(snap, 0, sizeof *snap);
    pthread_mutex_lock(&m->lock);
    size_t n = m->n;
    rt_metric_sample *s = n ? malloc(n * sizeof *s) : NULL;
    if (n && !s) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        cell *c = m->cells[i];
        s[i].name = c->name;
        s[i].labels = c->labels;
        s[i].kind = c->kind;
        s[i].value =
            c->kind == RT_METRIC_COUNTER ? (int64_t)rt_counter_get(&c->u.c) : rt_gauge_get(&c->u.g);
    }
    pthread_mutex_unlock(&m->lock);
    snap->samples = s;
    snap->n = n;
    snap->taken_ms = mono_ms();
    return 0;
}

void rt_metrics_snap_free(rt_metrics_snap *snap)
{
    free(snap->samples);
    memset(snap, 0, sizeof *snap);
}

static int bprintf(rt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bprintf(rt_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    return rt_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* labels "a=1,b=2" as " a=1 b=2" */
static int put_labels_text(rt_buf *b, const char *labels)
{
    if (!*labels) return 0;
    if (rt_buf_put_u8(b, ' ') < 0) return -1;
    for (const char *p = labels; *p; p++)
        if (rt_buf_put_u8(b, *p == ',' ? ' ' : (uint8_t)*p) < 0) return -1;
    return 0;
}

static int wanted(const char *name, const char *only)
{
    if (!only) return 1;
    for (const char *p = only; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n && !strncmp(name, p, n)) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

int rt_metrics_format_lines(const rt_metrics_snap *cur, const rt_metrics_snap *prev,
                            const char *only, rt_buf *out)
{
    int64_t dt = prev ? cur->taken_ms - prev->taken_ms : 0;
    for (size_t i = 0; i < cur->n; i++) {
        const rt_metric_sample *s = &cur->samples[i];
        if (!wanted(s->name, only)) continue;
        if (bprintf(out, "%s", s->name) < 0 || put_labels_text(out, s->labels) < 0 ||
            bprintf(out, " value=%lld\n", (long long)s->value) < 0)
            return -1;
        /* Registries only grow, so an earlier snapshot's i-th sample is the same metric. */
        if (s->kind != RT_METRIC_COUNTER || !prev || i >= prev->n || dt <= 0) continue;
        double rate = (double)(s->value - prev->samples[i].value) * 1000.0 / (double)dt;
        if (bprintf(out, "%sPerSecond", s->name) < 0 || put_labels_text(out, s->labels) < 0 ||
            bprintf(out, " value=%.1f\n", rate) < 0)
            return -1;
    }
    return 0;
}

static int put_prom_name(rt_buf *out, const rt_metric_sample *s)
{
    int rc = bprintf(out, "logproc_%s", s->name);
    if (*s->labels) {
        rc |= rt_buf_put_u8(out, '{');
        for (const char *p = s->labels; *p && rc == 0;) {
            const char *end = strchr(p, ',');
            if (!end) end = p + strlen(p);
            const char *eq = memchr(p, '=', (size_t)(end - p));
            if (!eq) eq = end;
            rc |= bprintf(out, "%s%.*s=\"%.*s\"", p == s->labels ? "" : ",", (int)(eq - p), p,
                          (int)(eq < end ? end - eq - 1 : 0), eq < end ? eq + 1 : "");
            p = *end ? end + 1 : end;
        }
        rc |= rt_buf_put_u8(out, '}');
    }
    return rc ? -1 : 0;
}

static int put_prom_sample(rt_buf *out, const rt_metric_sample *s)
{
    if (put_prom_name(out, s)) return -1;
    return bprintf(out, " %lld\n", (long long)s->value) < 0 ? -1 : 0;
}

static int put_prom_sample_f(rt_buf *out, const rt_metric_sample *s, double v)
{
    if (put_prom_name(out, s)) return -1;
    return bprintf(out, " %.3f\n", v) < 0 ? -1 : 0;
}

double rt_metrics_rate(const rt_metrics_snap *cur, const rt_metrics_snap *prev, size_t i)
{
    if (!prev || i >= prev->n || i >= cur->n || cur->taken_ms <= prev->taken_ms) return 0;
    /* Registries only grow, so an earlier snapshot's i-th sample is the same metric. */
    return (double)(cur->samples[i].value - prev->samples[i].value) * 1000.0 /
           (double)(cur->taken_ms - prev->taken_ms);
}

int rt_metrics_format_prometheus_rates(const rt_metrics_snap *cur, const rt_metrics_snap *prev,
                                       rt_buf *out)
{
    if (!prev || cur->taken_ms <= prev->taken_ms) return 0;
    size_t n = cur->n < prev->n ? cur->n : prev->n;
    const char **names = n ? malloc(n * sizeof *names) : NULL;
    if (n && !names) return -1;
    size_t nn = 0;
    for (size_t i = 0; i < n; i++) {
        if (cur->samples[i].kind != RT_METRIC_COUNTER) continue;
        size_t k = 0;
        while (k < nn && strcmp(names[k], cur->samples[i].name))
            k++;
        if (k == nn) names[nn++] = cur->samples[i].name;
    }
    int rc = 0;
    for (size_t k = 0; k < nn && rc == 0; k++) {
        rc = bprintf(out, "# TYPE logproc_%sPerSecond gauge\n", names[k]);
        for (size_t i = 0; i < n && rc == 0; i++) {
            const rt_metric_sample *s = &cur->samples[i];
            if (s->kind != RT_METRIC_COUNTER || strcmp(s->name, names[k])) continue;
            rt_metric_sample r = *s;
            char name[256];
            snprintf(name, sizeof name, "%.200sPerSecond", s->name);
            r.name = name;
            rc = put_prom_sample_f(out, &r, rt_metrics_rate(cur, prev, i));
        }
    }
    free(names);
    return rc;
}

int rt_metrics_format_prometheus(const rt_metrics_snap *cur, rt_buf *out)
{
    /* The exposition format wants the samples of one name together. There are a handful of
     * distinct names and thousands of samples, so: collect the names in first-seen order, then
     * one pass over the samples per name. */
    const char **names = cur->n ? malloc(cur->n * sizeof *names) : NULL;
    if (cur->n && !names) return -1;
    size_t nn = 0;
    for (size_t i = 0; i < cur->n; i++) {
        size_t k = 0;
        while (k < nn && strcmp(names[k], cur->samples[i].name))
            k++;
        if (k == nn) names[nn++] = cur->samples[i].name;
    }
    int rc = 0;
    for (size_t k = 0; k < nn && rc == 0; k++) {
        int first = 1;
        for (size_t i = 0; i < cur->n && rc == 0; i++) {
            const rt_metric_sample *s = &cur->samples[i];
            if (strcmp(s->name, names[k])) continue;
            if (first)
                rc = bprintf(out, "# TYPE logproc_%s %s\n", s->name,
                             s->kind == RT_METRIC_COUNTER ? "counter" : "gauge");
            first = 0;
            if (rc == 0) rc = put_prom_sample(out, s);
        }
    }
    free(names);
    return rc;
}
