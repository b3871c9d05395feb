/*
 * store_copies.h - the in-memory copies a lookup handle keeps: the hashes
 * of the full records blocks (the arena), the postings, and an index of
 * the pending entries.  Private to index/: the lookup layer reads them,
 * the open layer makes and frees them.  See index/README.md for their
 * locks and sizes.
 */
#ifndef PDQM_STORE_COPIES_H
#define PDQM_STORE_COPIES_H

#include "store_int.h"

#include <stdatomic.h>
#include <string.h>

/* Where the records of one lookup transaction are. */
typedef struct record_view {
    pdqm_store *s;
    const uint8_t *arena;     /* hashes of ids below arena_n */
    uint32_t arena_n;
    uint32_t full;            /* blocks below this are cached */
    uint32_t n_entries;       /* ids below this exist */
    const uint8_t *tail;      /* the partial last block, or NULL */
    uint32_t tail_n;          /* records in it */
} record_view;

static inline const uint8_t *block_of(const record_view *rv, uint32_t id)
{
    uint32_t b = id / RECORDS_PER_BLOCK;
    return b < rv->full ? rv->s->copies.cache[b / CACHE_CHUNK][b % CACHE_CHUNK] : rv->tail;
}

/* The stored hash of entry id: 32 bytes (aligned in the arena and in full
 * blocks, perhaps not in a short last block). */
static inline const uint8_t *hash_at(const record_view *rv, uint32_t id)
{
    if (id < rv->arena_n)
        return rv->arena + (size_t)id * 32;
    return block_hash(block_of(rv, id), id % RECORDS_PER_BLOCK);
}

/* The whole record of entry id. */
static inline record record_at(const record_view *rv, uint32_t id)
{
    record r;
    uint32_t n = id / RECORDS_PER_BLOCK < rv->full ? RECORDS_PER_BLOCK : rv->tail_n;
    block_read(block_of(rv, id), n, id % RECORDS_PER_BLOCK, &r);
    return r;
}

/* A stored hash may sit unaligned (a short last block lives inside an
 * LMDB leaf page): read it with memcpy, which costs nothing when aligned. */
static inline __attribute__((always_inline)) int hash_distance(const void *stored, const uint64_t q[4])
{
    uint64_t h[4];
    memcpy(h, stored, 32);
    return __builtin_popcountll(h[0] ^ q[0]) + __builtin_popcountll(h[1] ^ q[1]) +
           __builtin_popcountll(h[2] ^ q[2]) + __builtin_popcountll(h[3] ^ q[3]);
}

/* The postings copy (store_copies.c says how it is kept). */
#define NKEYS ((uint32_t)SLOTS << 16)      /* narrow keys */
#define PCACHE_AFTER 64
#define PCACHE_MAX_BYTES ((size_t)1 << 30)  /* copied values: 16M narrow hashes */

/* Where a key's postings are: n postings at p (ids, then under a wide key
 * the suffixes), in the copy or in the map; p NULL: none (n 0), or not
 * kept (n PREF_LMDB: probe LMDB). */
#define PREF_LMDB UINT32_MAX
typedef struct postings_ref {
    const uint8_t *p;
    uint32_t n;
} postings_ref;

typedef struct postings_cache {
    pthread_rwlock_t lock;   /* shared while probing, exclusive to change */
    int valid;
    int disabled;            /* its memory could not be had */
    uint32_t gen;            /* the generation copied */
    uint32_t seen;           /* stale marks cover changes up to here */
    uint32_t epoch;          /* the map's (store_copies_part.map_epoch) */
    postings_ref *dir;       /* NKEYS_ALL */
    uint8_t *bytes;          /* the values copied, PCACHE_MAX_BYTES */
    uint64_t *stale;         /* NKEYS_ALL bits */
    size_t n_stale;
    atomic_ulong lookups;    /* lookups made through this handle */
} postings_cache;

/* The in-memory index of pending entries (store_copies.c). */
#define PINDEX_MIN 1024   /* fewer pending entries: scanning them is cheaper */

typedef struct pending_index {
    pthread_rwlock_t lock;   /* shared while probing, exclusive to change */
    uint32_t from, upto;     /* entries from .. upto-1 are indexed */
    uint32_t *head;          /* NKEYS (narrow keys) */
    uint32_t *next;          /* a node each */
    size_t cap;              /* entries next has room for */
} pending_index;

/* The (bank, content id) keys of the pending items (store_copies.c):
 * slot[i] is an item's key's top 32 bits << 32 | its number + 1 (0:
 * empty), open addressing over a power of two of slots. */
typedef struct pending_names {
    pthread_mutex_t lock;
    uint32_t from, upto;     /* items numbered from .. upto-1 are in */
    uint64_t *slot;
    size_t cap, n;
} pending_names;

/* Bring the copy of the full records blocks (and the arena) up to the
 * snapshot txn sees; fills *rv.  0 or an LMDB code. */
int store_cache_fill(pdqm_store *s, MDB_txn *txn, uint32_t full, uint32_t next_entry,
                      uint64_t dead);

/* The postings copy of generation gen, current for txn: 1 when it may be
 * probed (its lock then held shared), 0 when LMDB must be probed. */
int store_pcache_acquire(pdqm_store *s, MDB_txn *txn, postings_cache *c, uint32_t gen);

/* The pending index over entries from..to-1: 1 when it may be probed
 * (its lock then held shared), 0 when the pending entries are scanned. */
int store_pindex_acquire(pending_index *p, const record_view *rv, uint32_t from, uint32_t to);

#endif
