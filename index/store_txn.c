/*
 * store_txn.c - transactions: read transactions (store_read), the write
 * queue and group commit (store_write), growing the map, and the log of
 * changed posting keys that long-lived handles catch up from.  The locks
 * are described in index/README.md.
 */
/* MADV_DONTNEED: Linux and the BSDs. */
#define _DEFAULT_SOURCE
#include "store_int.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Transactions and the map                                             */

int store_txn_begin(pdqm_store *s, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(s->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size.  That needs no
         * transaction open in this process, so take the resize lock
         * exclusively, which the caller must not hold. */
        pthread_rwlock_unlock(&s->tx.resize_lock);
        pthread_rwlock_wrlock(&s->tx.resize_lock);
        rc = mdb_env_set_mapsize(s->env, 0);
        store_cache_clear(s);
        pthread_rwlock_unlock(&s->tx.resize_lock);
        pthread_rwlock_rdlock(&s->tx.resize_lock);
        if (rc == 0)
            rc = mdb_txn_begin(s->env, NULL, flags, txn);
    }
    return rc;
}

pdqm_status store_grow_map(pdqm_store *s, pdqm_error *err)
{
    pthread_rwlock_wrlock(&s->tx.resize_lock);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    size_t next = info.me_mapsize * 2;
    int rc = mdb_env_set_mapsize(s->env, next);
    store_cache_clear(s);
    pthread_rwlock_unlock(&s->tx.resize_lock);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot grow the store's map");
    return PDQM_OK;
}

void store_cache_clear(pdqm_store *s)
{
    pthread_mutex_lock(&s->copies.cache_lock);
    s->copies.cache_blocks = 0;
    s->copies.map_epoch++;
    pthread_mutex_unlock(&s->copies.cache_lock);
}

void store_release_map(pdqm_store *s)
{
#if defined(__linux__) && defined(MADV_DONTNEED)
    /* LMDB does not say where its map is (mdb_env_info only for a fixed
     * map): the process's mappings of the store's file do. */
    int fd;
    struct stat st;
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &st) != 0)
        return;
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long from, to, off, ino;
        unsigned maj, min;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &from, &to, perms, &off, &maj, &min,
                   &ino) == 7 &&
            ino == (unsigned long)st.st_ino && makedev(maj, min) == st.st_dev && perms[3] == 's')
            (void)madvise((void *)from, to - from, MADV_DONTNEED);
    }
    fclose(f);
#else
    (void)s;
#endif
}

void store_touch_all(pdqm_store *s)
{
    s->tx.touched_all = 1;
}

void store_touch(pdqm_store *s, uint32_t key)
{
    if (s->tx.touched_all)
        return;
    if (s->tx.n_touched == s->tx.cap_touched) {
        size_t cap = s->tx.cap_touched ? s->tx.cap_touched * 2 : 1024;
        uint32_t *grown = cap <= PCHANGES_MAX_KEYS ? realloc(s->tx.touched, cap * sizeof *grown) : NULL;
        if (grown == NULL) {
            s->tx.touched_all = 1;   /* listing them all is not worth it */
            return;
        }
        s->tx.touched = grown;
        s->tx.cap_touched = cap;
    }
    s->tx.touched[s->tx.n_touched++] = key;
}

/* When the transaction changed postings: a new generation, its list of
 * keys in pchanges, and the oldest entry dropped. */
static int log_postings_change(pdqm_store *s, MDB_txn *txn)
{
    if (s->tx.n_touched == 0 && !s->tx.touched_all)
        return 0;
    uint32_t gen;
    int rc = store_meta_get(s, txn, "pgen", &gen);
    if (rc != 0)
        return rc;
    gen++;
    MDB_val k = { 4, &gen };
    MDB_val v = { s->tx.touched_all ? 0 : s->tx.n_touched * 4, s->tx.touched };
    if ((rc = mdb_put(txn, s->db.pchanges, &k, &v, MDB_APPEND)) != 0 &&
        (rc = mdb_put(txn, s->db.pchanges, &k, &v, 0)) != 0)
        return rc;
    if (gen > PCHANGES_KEEP) {
        uint32_t old = gen - PCHANGES_KEEP;
        MDB_val ok = { 4, &old };
        rc = mdb_del(txn, s->db.pchanges, &ok, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    return store_meta_put(s, txn, "pgen", gen);
}

/* Writes: group commit.
 *
 * Every write is a job on the handle's queue.  The thread that finds no
 * leader at work becomes one: it takes every queued job (at most
 * GROUP_MAX) and runs each in a nested transaction of one write
 * transaction, so a job that fails is undone alone and the others commit
 * together, sharing one commit and its two fsyncs.  A group of one runs in
 * the transaction itself.  Writers from several threads (a server) thus
 * pay for durability once a group, not once a write; a lone writer pays
 * nothing extra.
 *
 * When the map fills, the group is undone, the map grown and the group
 * run again.  When nesting itself fails (too many dirty pages for one
 * transaction), every job of the group runs again in a transaction of its
 * own. */
#define GROUP_MAX 16

typedef struct write_job {
    write_fn fn;
    void *arg;
    const char *what;
    pdqm_error *err;
    pdqm_status st;
    int rc;                   /* LMDB code or -1, for the leader */
    int done;
    struct write_job *next;
} write_job;

static void job_finish(write_job *j, int rc)
{
    j->rc = rc;
    if (rc == 0)
        j->st = PDQM_OK;
    else if (rc == -1)
        j->st = j->err ? j->err->status : PDQM_ERR_INVALID;
    else
        j->st = store_lmdb_error(j->err, rc, j->what);
}

/* LMDB reports a short write as EIO, and a short write is what a commit
 * meets first on a full disk (the next write gets ENOSPC).  Call it
 * ENOSPC when the store's filesystem has next to no room left, so that a
 * full disk is the recoverable state it is (store_write), whichever of
 * the two the commit met. */
#define LOW_SPACE_BYTES ((uint64_t)64 << 20)

static int commit_error(pdqm_store *s, int rc)
{
    mdb_filehandle_t fd;
    struct statvfs v;
    if (rc == EIO && mdb_env_get_fd(s->env, &fd) == 0 && fstatvfs(fd, &v) == 0 &&
        (uint64_t)v.f_bavail * v.f_frsize < LOW_SPACE_BYTES)
        return ENOSPC;
    return rc;
}

/* Run the jobs of group (n of them, linked) in one transaction.  Returns
 * 0 when it committed (each job's rc says whether its own part stayed),
 * MDB_MAP_FULL or MDB_TXN_FULL for the caller to handle, or another LMDB
 * code that fails the whole group. */
static int run_group(pdqm_store *s, write_job *group, size_t n)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&s->tx.resize_lock);
    int rc = store_txn_begin(s, 0, &txn);
    if (rc != 0) {
        pthread_rwlock_unlock(&s->tx.resize_lock);
        return rc;
    }
    s->tx.n_touched = 0;
    s->tx.touched_all = 0;
    int any = 0;
    for (write_job *j = group; j && rc == 0; j = j->next) {
        if (n == 1) {
            j->rc = j->fn(s, txn, j->arg, j->err);
            if (j->rc == MDB_MAP_FULL || j->rc == MDB_TXN_FULL)
                rc = j->rc;
            any = j->rc == 0;
            break;
        }
        MDB_txn *child;
        if ((rc = mdb_txn_begin(s->env, txn, 0, &child)) != 0)
            break;
        j->rc = j->fn(s, child, j->arg, j->err);
        if (j->rc == 0)
            j->rc = mdb_txn_commit(child);
        else
            mdb_txn_abort(child);
        if (j->rc == MDB_MAP_FULL || j->rc == MDB_TXN_FULL)
            rc = j->rc;
        any |= j->rc == 0;
    }
    if (rc == 0 && any)
        rc = log_postings_change(s, txn);
    if (rc == 0 && any)
        rc = commit_error(s, mdb_txn_commit(txn));
    else
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->tx.resize_lock);
    return rc;
}

/* Run a group to the end, growing the map as needed, and set every job's
 * status.  Called with write_lock held. */
static void lead_group(pdqm_store *s, write_job *group, size_t n)
{
    for (;;) {
        int rc = run_group(s, group, n);
        if (rc == MDB_MAP_FULL) {
            pdqm_error grow_err;
            if (store_grow_map(s, &grow_err) == PDQM_OK)
                continue;
            for (write_job *j = group; j; j = j->next) {
                if (j->err)
                    *j->err = grow_err;
                j->st = grow_err.status;
            }
            return;
        }
        if (rc == MDB_TXN_FULL && n > 1) {
            /* Too much for one transaction: one job at a time, then. */
            for (write_job *j = group; j; j = j->next) {
                write_job *rest = j->next;
                j->next = NULL;
                lead_group(s, j, 1);
                j->next = rest;
            }
            return;
        }
        for (write_job *j = group; j; j = j->next)
            job_finish(j, rc != 0 && j->rc == 0 ? rc : j->rc);
        return;
    }
}

static pdqm_status with_write_txn(pdqm_store *s, write_fn fn, void *arg,
                                  const char *what, pdqm_error *err)
{
    if (s->read_only)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "the store is open read-only");
    /* The job always has an error record of its own: a write function's
     * status is read from it, so it must not depend on whether the caller
     * passed one. */
    pdqm_error local;
    pdqm_error_clear(&local);
    write_job job = { fn, arg, what, &local, PDQM_OK, 0, 0, NULL };

    pthread_mutex_lock(&s->tx.queue_lock);
    if (s->tx.queue_tail)
        s->tx.queue_tail->next = &job;
    else
        s->tx.queue_head = &job;
    s->tx.queue_tail = &job;
    for (;;) {
        while (!job.done && s->tx.leader_active)
            pthread_cond_wait(&s->tx.queue_done, &s->tx.queue_lock);
        if (job.done)
            break;
        /* Lead: take up to GROUP_MAX jobs from the head of the queue (ours
         * too, unless more than that wait ahead of it: then lead again). */
        s->tx.leader_active = 1;
        write_job *group = s->tx.queue_head, *last = group;
        size_t n = 1;
        while (last->next && n < GROUP_MAX) {
            last = last->next;
            n++;
        }
        s->tx.queue_head = last->next;
        if (s->tx.queue_head == NULL)
            s->tx.queue_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->tx.queue_lock);

        pthread_mutex_lock(&s->tx.write_lock);
        lead_group(s, group, n);
        pthread_mutex_unlock(&s->tx.write_lock);

        pthread_mutex_lock(&s->tx.queue_lock);
        for (write_job *j = group; j; ) {
            write_job *next = j->next;
            j->done = 1;   /* its thread may return as soon as we unlock */
            j = next;
        }
        s->tx.leader_active = 0;
        pthread_cond_broadcast(&s->tx.queue_done);
    }
    pthread_mutex_unlock(&s->tx.queue_lock);
    if (err)
        *err = local;
    return job.st;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

pdqm_status store_write(pdqm_store *s, write_fn fn, void *arg, const char *what,
                        pdqm_error *err)
{
    /* A full disk is a state: while it lasts a write fails at once (an
     * add is answered in microseconds, and no add tries a doomed indexing
     * pass), and one is tried again now and then, so that writes resume
     * as soon as space is freed. */
    if (atomic_load(&s->tx.full)) {
        double now = now_seconds(), at = atomic_load(&s->tx.full_retry_at);
        if (now < at)
            return pdqm_error_set(err, PDQM_ERR_NO_SPACE,
                                  "%s: disk full (free space; the next try is in %.1f s)", what,
                                  at - now);
    }
    pdqm_status st = with_write_txn(s, fn, arg, what, err);
    if (st == PDQM_ERR_NO_SPACE) {
        double wait = atomic_load(&s->tx.full) ? atomic_load(&s->tx.full_wait) * 2 : 0.25;
        if (wait > 5)
            wait = 5;
        atomic_store(&s->tx.full_wait, wait);
        atomic_store(&s->tx.full_retry_at, now_seconds() + wait);
        atomic_store(&s->tx.full, 1);
    } else if (st == PDQM_OK && atomic_load(&s->tx.full)) {
        atomic_store(&s->tx.full, 0);
    }
    return st;
}

int pdqm_store_writable(pdqm_store *store)
{
    return !store->read_only && !atomic_load(&store->tx.full);
}

pdqm_status store_read(pdqm_store *s, read_fn fn, void *arg, pdqm_error *err)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&s->tx.resize_lock);
    int rc = store_txn_begin(s, MDB_RDONLY, &txn);
    pdqm_status st;
    if (rc != 0) {
        st = store_lmdb_error(err, rc, "cannot read the store");
    } else {
        st = fn(s, txn, arg, err);
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&s->tx.resize_lock);
    return st;
}
