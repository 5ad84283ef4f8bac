#include "runtime/pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256

struct rt_pool {
    int threads;
    rt_task **tasks;
    size_t n, cap;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t *queue; /* ring of runnable task indices */
    size_t head, qlen;
    size_t remaining;   /* tasks not done */
    size_t idle_streak; /* consecutive IDLE steps */
    int failed;
    char err[512];
};

int rt_pool_new(int threads, rt_pool **out)
{
    if (threads < 1 || threads > MAX_THREADS) return -1;
    rt_pool *p = calloc(1, sizeof *p);
    if (!p) return -1;
    p->threads = threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    *out = p;
    return 0;
}

int rt_pool_add(rt_pool *p, rt_task *t)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        rt_task **a = realloc(p->tasks, cap * sizeof *a);
        if (!a) return -1;
        p->tasks = a;
        p->cap = cap;
    }
    p->tasks[p->n++] = t;
    return 0;
}

static void push(rt_pool *p, size_t i)
{
    p->queue[(p->head + p->qlen++) % p->n] = i;
}

static void *worker(void *arg)
{
    rt_pool *p = arg;
    char err[512];
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->qlen && p->remaining)
            pthread_cond_wait(&p->cond, &p->lock);
        if (!p->remaining) break;
        size_t i = p->queue[p->head];
        p->head = (p->head + 1) % p->n;
        p->qlen--;
        pthread_mutex_unlock(&p->lock);

        int r = rt_task_step(p->tasks[i], err, sizeof err);

        pthread_mutex_lock(&p->lock);
        if (r < 0) {
            if (!p->failed) {
                p->failed = 1;
                snprintf(p->err, sizeof p->err, "%s", err);
                for (size_t k = 0; k < p->n; k++)
                    rt_task_request_stop(p->tasks[k], 0);
            }
            p->remaining--;
            pthread_cond_broadcast(&p->cond);
            continue;
        }
        if (r == RT_TASK_DONE) {
            p->remaining--;
            pthread_cond_broadcast(&p->cond);
            continue;
        }
        push(p, i);
        pthread_cond_signal(&p->cond);
        if (r != RT_TASK_IDLE) {
            p->idle_streak = 0;
            continue;
        }
        if (++p->idle_streak >= p->remaining) {
            /* Every live task just said its source is empty: wait a little rather than spin. */
            p->idle_streak = 0;
            pthread_mutex_unlock(&p->lock);
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            pthread_mutex_lock(&p->lock);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int rt_pool_run(rt_pool *p, char *err, size_t errlen)
{
    if (!p->n) return 0;
    p->queue = calloc(p->n, sizeof *p->queue);
    if (!p->queue) {
        snprintf(err, errlen, "pool: out of memory");
        return -1;
    }
    p->head = p->qlen = 0;
    for (size_t i = 0; i < p->n; i++)
        push(p, i);
    p->remaining = p->n;
    p->failed = 0;
    int nt = p->threads < (int)p->n ? p->threads : (int)p->n;
    pthread_t th[MAX_THREADS];
    int started = 0;
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, worker, p) != 0) break;
    if (!started) {
        free(p->queue);
        p->queue = NULL;
        snprintf(err, errlen, "pool: cannot start a worker thread");
        return -1;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(p->queue);
    p->queue = NULL;
    if (p->failed) {
        snprintf(err, errlen, "%s", p->err);
        return -1;
    }
    return 0;
}

void rt_pool_request_stop(rt_pool *p, int drain)
{
    pthread_mutex_lock(&p->lock);
    for (size_t k = 0; k < p->n; k++)
        rt_task_request_stop(p->tasks[k], drain);
    pthread_mutex_unlock(&p->lock);
}

void rt_pool_free(rt_pool *p)
{
    if (!p) return;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->tasks);
    free(p);
}
