/*
 * store_open.c - opening and closing a store: the LMDB environment and
 * its databases, the schema check, the in-memory copies of a handle.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INITIAL_MAP ((size_t)1 << 30)   /* 1 GiB of address space to start */

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

/* Open every named database; create them (and the schema record) in a
 * fresh environment when allowed. */
static pdqm_status open_databases(pdqm_store *s, unsigned flags, pdqm_error *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the store");

    /* Is this a pdqmatch store?  The unnamed database of an environment
     * lists its named ones: a new environment has none. */
    MDB_dbi main_dbi;
    MDB_stat st;
    int fresh = 0;
    rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc == 0)
        rc = mdb_stat(txn, main_dbi, &st);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store_lmdb_error(err, rc, "cannot read the store");
    }
    if (st.ms_entries == 0) {
        if (!(flags & PDQM_STORE_CREATE) || s->read_only) {
            mdb_txn_abort(txn);
            return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                                  "%s is an empty LMDB file, not a pdqmatch store", s->path);
        }
        fresh = 1;
    }

    static const struct { const char *name; unsigned flags; size_t offset; } dbs[] = {
        { "meta", 0, offsetof(pdqm_store, db.meta) },
        { "banks", 0, offsetof(pdqm_store, db.banks) },
        { "cnum", MDB_INTEGERKEY, offsetof(pdqm_store, db.cnum) },
        { "cindex", MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED, offsetof(pdqm_store, db.cindex) },
        { "cbank", MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP,
          offsetof(pdqm_store, db.cbank) },
        { "sha256", MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP, offsetof(pdqm_store, db.sha256) },
        { "md5", MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP, offsetof(pdqm_store, db.md5) },
        { "postings", MDB_INTEGERKEY, offsetof(pdqm_store, db.postings) },
        { "records", MDB_INTEGERKEY, offsetof(pdqm_store, db.records) },
        { "pchanges", MDB_INTEGERKEY, offsetof(pdqm_store, db.pchanges) },
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)s + dbs[i].offset);
        rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | (fresh ? MDB_CREATE : 0), dbi);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            mdb_txn_abort(txn);
            return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                                  "%s is an LMDB file but not a pdqmatch store", s->path);
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            return store_lmdb_error(err, rc, "cannot open the store's tables");
        }
    }

    uint32_t schema = 0;
    if (fresh) {
        rc = store_meta_put(s, txn, "schema", PDQM_STORE_SCHEMA_VERSION);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc != 0)
            return store_lmdb_error(err, rc, "cannot initialise the store");
        return PDQM_OK;
    }
    rc = store_meta_get(s, txn, "schema", &schema);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store_lmdb_error(err, rc, "cannot read the store's schema");
    }
    /* Earlier schemas lack only what later ones may store (compact ids,
     * disabled content, notes, enabled ratios, hash-less items): mark the
     * store with this version before any write, so that an older pdqmatch
     * refuses it instead of misreading those records. */
    if (schema >= 1 && schema < PDQM_STORE_SCHEMA_VERSION && !(flags & PDQM_STORE_READONLY)) {
        if ((rc = store_meta_put(s, txn, "schema", PDQM_STORE_SCHEMA_VERSION)) != 0) {
            mdb_txn_abort(txn);
            return store_lmdb_error(err, rc, "cannot update the store's schema");
        }
        schema = PDQM_STORE_SCHEMA_VERSION;
    }
    /* Commit, even read-only: database handles opened in a transaction
     * that is aborted are closed with it. */
    if ((rc = mdb_txn_commit(txn)) != 0)
        return store_lmdb_error(err, rc, "cannot open the store's tables");
    if (schema == 0)
        return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                              "%s is an LMDB file but not a pdqmatch store", s->path);
    if (schema < 1 || schema > PDQM_STORE_SCHEMA_VERSION)
        return pdqm_error_set(err, PDQM_ERR_SCHEMA,
                              "%s has store schema version %u; this pdqmatch reads "
                              "versions 1 to %d", s->path, schema, PDQM_STORE_SCHEMA_VERSION);
    return PDQM_OK;
}

pdqm_status pdqm_store_open(const char *path, unsigned flags,
                            pdqm_store **out, pdqm_error *err)
{
    *out = NULL;
    if (path == NULL)
        path = PDQM_STORE_DEFAULT_PATH;
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (!exists && errno != ENOENT)
        return pdqm_error_set(err, PDQM_ERR_IO, "%s: %s", path, strerror(errno));
    if (!exists && !(flags & PDQM_STORE_CREATE))
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "%s: no store there", path);
    if (!exists && (flags & PDQM_STORE_READONLY))
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "%s: no store there", path);
    if (exists && S_ISDIR(sb.st_mode))
        return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                              "%s is a directory, not a pdqmatch store", path);
    if (exists && !S_ISREG(sb.st_mode))
        return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                              "%s is not a regular file, so not a pdqmatch store", path);
    /* LMDB would quietly make an empty file into a new store, and a short
     * one is no store at all: refuse both rather than write to them.  But
     * an empty file is also what a process killed while creating a store
     * leaves (LMDB creates the file, then writes it): with CREATE it holds
     * nothing to lose, so it is made the store it was meant to be. */
    if (exists && sb.st_size < 8192 &&
        !(sb.st_size == 0 && (flags & PDQM_STORE_CREATE) && !(flags & PDQM_STORE_READONLY)))
        return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                              "%s is not a pdqmatch store (%lld bytes)", path,
                              (long long)sb.st_size);

    pdqm_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory opening a store");
    }
    s->read_only = (flags & PDQM_STORE_READONLY) != 0;
    pthread_rwlock_init(&s->tx.resize_lock, NULL);
    pthread_mutex_init(&s->tx.write_lock, NULL);
    pthread_mutex_init(&s->tx.queue_lock, NULL);
    pthread_cond_init(&s->tx.queue_done, NULL);
    pthread_mutex_init(&s->copies.cache_lock, NULL);
    pthread_mutex_init(&s->pass.lock, NULL);
    pthread_cond_init(&s->pass.wake, NULL);

    pdqm_status st = store_caches_init(s, (flags & PDQM_STORE_ONESHOT) != 0, err);
    if (st != PDQM_OK)
        goto fail;
    int rc = mdb_env_create(&s->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(s->env, 16);
    size_t map = INITIAL_MAP;
    while (exists && map < (size_t)sb.st_size * 2)
        map *= 2;
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, map);
    if (rc != 0) {
        st = store_lmdb_error(err, rc, "cannot set up LMDB");
        goto fail;
    }
    unsigned env_flags = MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD;
    if (s->read_only)
        env_flags |= MDB_RDONLY;
    rc = mdb_env_open(s->env, path, env_flags, 0644);
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        st = pdqm_error_set(err, PDQM_ERR_NOT_A_STORE, "%s is not a pdqmatch store (%s)",
                            path, mdb_strerror(rc));
        goto fail;
    }
    if (rc != 0) {
        st = pdqm_error_set(err, rc == ENOMEM ? PDQM_ERR_NOMEM : PDQM_ERR_IO,
                            "%s: %s", path, mdb_strerror(rc));
        goto fail;
    }
    st = open_databases(s, flags, err);
    if (st != PDQM_OK)
        goto fail;
    *out = s;
    return PDQM_OK;

fail:
    pdqm_store_close(s);
    return st;
}

void pdqm_store_close(pdqm_store *s)
{
    if (s == NULL)
        return;
    store_pass_stop(s);   /* (its thread writes: before the environment goes) */
    if (s->env)
        mdb_env_close(s->env);
    for (int i = 0; i < CACHE_DIR; i++)
        free(s->copies.cache[i]);
    if (s->copies.arena_map)
        munmap(s->copies.arena_map, s->copies.arena_map_bytes);
    free(s->copies.arena_gone);
    pthread_rwlock_destroy(&s->tx.resize_lock);
    pthread_mutex_destroy(&s->tx.write_lock);
    pthread_mutex_destroy(&s->tx.queue_lock);
    pthread_cond_destroy(&s->tx.queue_done);
    pthread_mutex_destroy(&s->copies.cache_lock);
    pthread_mutex_destroy(&s->pass.lock);
    pthread_cond_destroy(&s->pass.wake);
    store_pcache_free(s);
    store_pindex_free(s);
    store_pnames_free(s);
    free(s->tx.touched);
    free(s->path);
    free(s);
}
