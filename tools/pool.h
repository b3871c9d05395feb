/*
 * pool.h - run work on worker threads, hand results back in order.
 *
 * The subcommands that hash many files (hash, index) submit one item a
 * file.  Workers run `work` on items in any order; the submitting thread
 * gets `done` called for each item in submission order, so output stays in
 * the order given.  At most POOL_WINDOW items are in flight: a list of any
 * length takes bounded memory.
 */
#ifndef PDQM_POOL_H
#define PDQM_POOL_H

#define POOL_WINDOW 64

typedef struct pool pool;

/* work runs on a worker thread; done runs on the submitting thread. */
typedef void (*pool_work_fn)(void *ctx, void *item);
typedef void (*pool_done_fn)(void *ctx, void *item);

/* Start threads workers (1..256); NULL when no thread could start. */
pool *pool_start(int threads, pool_work_fn work, pool_done_fn done, void *ctx);

/* Queue an item; may first wait for, and hand back, earlier ones. */
void pool_submit(pool *p, void *item);

/* Hand back everything still queued, then stop the workers and free p. */
void pool_finish(pool *p);

#endif
