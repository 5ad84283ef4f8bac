#include "runtime/mem.h"

#include <stdatomic.h>
#include <stdlib.h>

struct rt_mem {
    _Atomic int64_t used;
    _Atomic int64_t peak;
    int64_t limit;
    int64_t high; /* RT_MEM_HIGH_PCT of the limit */
};

int rt_mem_new(int64_t limit, rt_mem **out)
{
    rt_mem *m = malloc(sizeof *m);
    if (!m) return -1;
    atomic_init(&m->used, 0);
    atomic_init(&m->peak, 0);
    m->limit = limit > 0 ? limit : 0;
    m->high = m->limit / 100 * RT_MEM_HIGH_PCT;
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
    int64_t peak = atomic_load_explicit(&m->peak, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&m->peak, &peak, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    return 0;
}

int64_t rt_mem_peak(const rt_mem *m)
{
    return atomic_load_explicit(&((rt_mem *)m)->peak, memory_order_relaxed);
}

int rt_mem_pressure(const rt_mem *m)
{
    return m && m->limit && atomic_load_explicit(&((rt_mem *)m)->used, memory_order_relaxed) > m->high;
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
