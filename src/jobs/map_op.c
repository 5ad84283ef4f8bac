#include "jobs/map_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pb_util.h"
#include "runtime/metrics.h"

#define MAP_ARENA_CAP ((size_t)64 << 20)
#define MAP_MAX_COUNTERS 8

typedef struct map_op {
    map_fn fn;
    void *ctx;
    pb_arena *arena;
    struct {
        const char *name;
        rt_counter *c;
    } counters[MAP_MAX_COUNTERS];
    int ncounters;
} map_op;

static int map_process(rt_op *op, int input, const rt_record *rec)
{
    map_op *m = rt_op_self(op);
    int rc = m->fn(op, rec, m->ctx);
    if (m->arena && pb_arena_used(m->arena)) pb_arena_reset(m->arena, 1 << 20);
    return rc;
}

static void map_close(rt_op *op)
{
    map_op *m = rt_op_self(op);
    pb_arena_free(m->arena);
    free(m);
}

static const rt_op_vtbl map_vtbl = {.process = map_process, .close = map_close};

int map_op_add(rt_graph *g, const char *uid, int nout, map_fn fn, void *ctx, rt_op **out)
{
    map_op *m = calloc(1, sizeof *m);
    if (!m) return -1;
    m->fn = fn;
    m->ctx = ctx;
    if (rt_graph_add_op(g, uid, NULL, &map_vtbl, m, 1, nout, out)) {
        free(m);
        return -1;
    }
    return 0;
}

/* An allocator that always fails: used when the arena cannot be created. */
static void *fail_alloc(void *d, size_t n)
{
    return NULL;
}
static void fail_free(void *d, void *p)
{
}
static ProtobufCAllocator failing = {fail_alloc, fail_free, NULL};

ProtobufCAllocator *map_op_allocator(rt_op *op)
{
    map_op *m = rt_op_self(op);
    if (!m->arena && !(m->arena = pb_arena_new(64 << 10, MAP_ARENA_CAP))) return &failing;
    return pb_arena_allocator(m->arena);
}

void map_op_count(rt_op *op, const char *name, uint64_t n)
{
    map_op *m = rt_op_self(op);
    for (int i = 0; i < m->ncounters; i++)
        if (!strcmp(m->counters[i].name, name)) {
            rt_counter_add(m->counters[i].c, n);
            return;
        }
    if (m->ncounters == MAP_MAX_COUNTERS) return;
    rt_counter *c;
    if (rt_op_counter(op, name, &c)) return;
    m->counters[m->ncounters].name = name;
    m->counters[m->ncounters++].c = c;
    rt_counter_add(c, n);
}
