#include "runtime/mem.h"

#include <stdatomic.h>
#include <stdlib.h>

struct rt_mem {
    _Atomic int64_t used;
    int64_t limit;
};

int rt_mem_new(int64_t limit, rt_mem **out)
{
    rt_mem *m = malloc(sizeof *m);
    if (!m) return -1;
    atomic_init(&m->used, 0);
    m->limit = limit > 0 ? limit : 0;
    *out = m;
    return 0;
}

void rt_mem_free(rt_mem *m)
{
    free(m);
}

int rt_mem_reserve(rt_mem *m, int64_t n)
{
    int64_t now = atomic_fetch_add_explicit(&m->used, n, memory_order_relaxed) + n;
    if (m->limit && now > m->limit) {
        atomic_fetch_sub_explicit(&m->used, n, memory_order_relaxed);
        return -1;
    }
    return 0;
}

void rt_mem_unreserve(rt_mem *m, int64_t n)
{
    atomic_fetch_sub_explicit(&m->used, n, memory_order_relaxed);
}

int64_t rt_mem_used(const rt_mem *m)
{
    return atomic_load_explicit(&((rt_mem *)m)->used, memory_order_relaxed);
}

int64_t rt_mem_limit(const rt_mem *m)
{
    return m->limit;
}
