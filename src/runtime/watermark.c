#include "runtime/watermark.h"

#include <time.h>

#include "runtime/record.h"

int64_t rt_clock_wall_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rt_wmgen_init(rt_wmgen *g, const rt_wmgen_config *cfg)
{
    g->cfg = *cfg;
    if (!g->cfg.clock) g->cfg.clock = rt_clock_wall_ms;
    if (g->cfg.max_out_of_orderness < 0) g->cfg.max_out_of_orderness = 0;
    if (g->cfg.idle_trailing < 0) g->cfg.idle_trailing = 0;
    g->max_ts = RT_TIME_MIN;
    g->wm = RT_TIME_MIN;
    g->last_arrival = RT_TIME_MIN;
    g->seen = 0;
}

/* x - d - 1 without overflow; minus infinity stays there. */
static int64_t behind(int64_t x, int64_t d)
{
    if (x == RT_TIME_MIN) return RT_TIME_MIN;
    if (x < RT_TIME_MIN + d + 1) return RT_TIME_MIN;
    return x - d - 1;
}

int64_t rt_wmgen_poll(rt_wmgen *g)
{
    int64_t cand = behind(g->max_ts, g->cfg.max_out_of_orderness);
    if (cand > g->wm) g->wm = cand;
    if (g->cfg.idleness > 0) {
        int64_t now = g->cfg.clock(g->cfg.clock_ctx);
        if (g->seen || g->last_arrival == RT_TIME_MIN) {
            g->last_arrival = now; /* the idleness clock starts at the first poll */
        } else if (now - g->last_arrival >= g->cfg.idleness) {
            int64_t idle = behind(now, g->cfg.idle_trailing);
            if (idle > g->wm) g->wm = idle;
        }
    }
    g->seen = 0;
    return g->wm;
}

int64_t rt_wmgen_current(const rt_wmgen *g)
{
    return g->wm;
}

void rt_wmgen_restore(rt_wmgen *g, int64_t wm, int64_t max_ts)
{
    if (wm > g->wm) g->wm = wm;
    if (max_ts > g->max_ts) g->max_ts = max_ts;
}
