/*
 * pool.c - an ordered worker pool over a ring of POOL_WINDOW slots.
 */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct slot {
    void *item;
    int done;
} slot;

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work_ready;   /* an item was queued, or input ended */
    pthread_cond_t slot_done;    /* a worker finished an item */
    slot ring[POOL_WINDOW];
    unsigned long queued, taken, returned;
    int closed;
    pool_work_fn work;
    pool_done_fn done;
    void *ctx;
    int n_threads;
    pthread_t threads[256];
};

static void *worker(void *arg)
{
    pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->taken == p->queued && !p->closed)
            pthread_cond_wait(&p->work_ready, &p->lock);
        if (p->taken == p->queued)
            break;
        slot *s = &p->ring[p->taken++ % POOL_WINDOW];
        pthread_mutex_unlock(&p->lock);
        p->work(p->ctx, s->item);
        pthread_mutex_lock(&p->lock);
        s->done = 1;
        pthread_cond_broadcast(&p->slot_done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

pool *pool_start(int threads, pool_work_fn work, pool_done_fn done, void *ctx)
{
    pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_ready, NULL);
    pthread_cond_init(&p->slot_done, NULL);
    p->work = work;
    p->done = done;
    p->ctx = ctx;
    if (threads < 1)
        threads = 1;
    if (threads > 256)
        threads = 256;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[p->n_threads], NULL, worker, p) != 0)
            break;
        p->n_threads++;
    }
    if (p->n_threads == 0) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->work_ready);
        pthread_cond_destroy(&p->slot_done);
        free(p);
        return NULL;
    }
    return p;
}

/* Hand back finished items in order: all queued ones with `all`, else only
 * while the window is full (and any already done).  Holds the lock, but
 * drops it around each `done` call. */
static void drain(pool *p, int all)
{
    while (p->returned < p->queued) {
        slot *s = &p->ring[p->returned % POOL_WINDOW];
        if (!s->done) {
            if (!all && p->queued - p->returned < POOL_WINDOW)
                return;
            pthread_cond_wait(&p->slot_done, &p->lock);
            continue;
        }
        void *item = s->item;
        s->done = 0;
        s->item = NULL;
        p->returned++;
        pthread_mutex_unlock(&p->lock);
        p->done(p->ctx, item);
        pthread_mutex_lock(&p->lock);
    }
}

void pool_submit(pool *p, void *item)
{
    pthread_mutex_lock(&p->lock);
    drain(p, 0);
    slot *s = &p->ring[p->queued % POOL_WINDOW];
    s->item = item;
    s->done = 0;
    p->queued++;
    pthread_cond_signal(&p->work_ready);
    pthread_mutex_unlock(&p->lock);
}

void pool_finish(pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->closed = 1;
    pthread_cond_broadcast(&p->work_ready);
    drain(p, 1);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work_ready);
    pthread_cond_destroy(&p->slot_done);
    free(p);
}
