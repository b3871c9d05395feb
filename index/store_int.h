/*
 * store_int.h - what the files of index/ share: the LMDB layout, the
 * record formats, and the store handle.
 *
 * Layout (one LMDB environment, named databases):
 *   meta      "schema", "next_entry", "next_bank",
 *             "pending_from", "pending_to", "pass_window" (absent in
 *             stores from before it): u32 values; "applied_seq" (only in
 *             a store fed from a log): a u64, the last entry applied;
 *             "exchange/<name>": a hash exchange's config, checkpoint,
 *             status and lease (store_exchange.c)
 *   banks     bank name -> bank_rec
 *   cnum      u32 group -> the content records of numbers group*16 ..
 *             group*16+15 (see store_cnum_get): 16 records share one
 *             LMDB node, whose 14 bytes of overhead would otherwise be
 *             more than a hash-list item's record.  A content item's
 *             number is the id of its first hash.
 *   cindex    u32 bucket -> sorted 6-byte (16-bit fingerprint, u32 number),
 *             both big-endian: finds a content number from (bank, content
 *             id) by a 64-bit hash of them, 6 bytes a content item instead
 *             of a copy of every id
 *   cbank     u32 bank id -> sorted u32 content numbers: a bank's items in
 *             the order added, for listing and deleting a bank
 *   sha256    32 raw bytes + u32 bank id (big-endian) -> u32 number
 *   md5       16 raw bytes + u32 bank id (big-endian) -> u32 number
 *   postings  u32 slot << 16 | slot value -> a packed, ascending array of
 *             u32 entry ids (one value a key, read whole by one lookup:
 *             14 bytes of LMDB overhead a key, against 30 for duplicates);
 *             wide keys hold the ids and then a suffix byte each (see
 *             "The two multi-index layouts" below); meta "wide_from"
 *             (absent: none) is the first entry posted wide
 *   records   u32 block -> RECORDS_PER_BLOCK records (see block_read): the
 *             contiguous, id-indexed array lookups verify against
 *   pchanges  u32 postings generation -> the u32 posting keys that
 *             transaction changed (empty: too many to list); meta
 *             "pgen" is the latest generation.  Lookups that keep a copy
 *             of the postings in memory learn from it which keys of
 *             their copy are stale.  The last PCHANGES_KEEP are kept.
 *
 * Invariants:
 *   - entry ids and content numbers only grow; a content item's hashes are
 *     the entries first_entry .. first_entry + n_hashes - 1;
 *   - records are written once and never changed: a deleted content item
 *     loses its postings and content records, and its records become
 *     unreachable.  So a full records block never moves in the map, which
 *     is what lets lookups cache a pointer to it;
 *   - every live entry outside [pending_from, pending_to) has one posting
 *     in each slot of its layout (16 narrow below wide_from, 11 wide from
 *     it on); entries inside that range (a bulk load not
 *     yet indexed) are found by scanning their records, and the part of
 *     them a pass in steps is indexing (meta "pass_to", "pass_key",
 *     "pass_deletes": see meta_vals) is posted under the keys below
 *     pass_key too (entry_posted).
 */
#ifndef PDQM_STORE_INT_H
#define PDQM_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

#define SLOTS 16
/* 1023 records of 36 bytes, BLOCK_PAD and LMDB's 16-byte header fit in
 * exactly 9 pages. */
#define RECORDS_PER_BLOCK 1023
#define BLOCK_BYTES (16 + RECORDS_PER_BLOCK * 36)   /* a full block: block_size() */
#define MAX_BANKS 65535

/* Block pointer cache: CHUNK pointers a chunk, DIR chunks (4M blocks). */
#define CACHE_CHUNK 4096
#define CACHE_DIR 1024

/* The arena's unit of giving memory back: 65536 ids, 2 MiB of hashes,
 * one transparent huge page. */
#define ARENA_CHUNK ((uint32_t)65536)
#define ARENA_CHUNK_BYTES ((size_t)ARENA_CHUNK * 32)

/* One record of the records array, as the code handles it. */
typedef struct record {
    uint64_t hash[4];     /* pdqm_hash256.w */
    uint16_t bank;        /* bank id */
    uint8_t quality;
    uint8_t reserved;
} record;

/* A records block of n records (RECORDS_PER_BLOCK, or fewer in the last
 * block), as stored: BLOCK_PAD bytes, the n hashes, then their 4-byte
 * infos (bank, quality, reserved).  Hashes apart from the rest mean
 * verifying a candidate touches one cache line; the padding puts them 32
 * bytes into a page (after LMDB's 16-byte header), so none straddles two
 * cache lines.  The content an entry belongs to is found from its id
 * (store_content_of_entry), so the records do not repeat it.  A partial
 * block holds only what it has, so adding one hash rewrites half a block
 * on average, not a whole one. */
#define BLOCK_PAD 16
#define RECORD_BYTES 36

static inline size_t block_size(uint32_t n)
{
    return BLOCK_PAD + RECORD_BYTES * (size_t)n;
}

/* Records in a block value of size bytes; 0 when the size is malformed. */
static inline uint32_t block_count(size_t size)
{
    if (size < BLOCK_PAD + RECORD_BYTES || (size - BLOCK_PAD) % RECORD_BYTES != 0 ||
        (size - BLOCK_PAD) / RECORD_BYTES > RECORDS_PER_BLOCK)
        return 0;
    return (uint32_t)((size - BLOCK_PAD) / RECORD_BYTES);
}

static inline const uint8_t *block_hash(const void *block, uint32_t i)
{
    return (const uint8_t *)block + BLOCK_PAD + 32 * (size_t)i;
}

static inline void block_read(const void *block, uint32_t n, uint32_t i, record *out)
{
    const uint8_t *info = (const uint8_t *)block + BLOCK_PAD + 32 * (size_t)n + 4 * (size_t)i;
    memcpy(out->hash, block_hash(block, i), 32);
    memcpy(&out->bank, info, 2);
    out->quality = info[2];
    out->reserved = info[3];
}

static inline void block_write(void *block, uint32_t n, uint32_t i, const record *r)
{
    uint8_t *info = (uint8_t *)block + BLOCK_PAD + 32 * (size_t)n + 4 * (size_t)i;
    memcpy((uint8_t *)block + BLOCK_PAD + 32 * (size_t)i, r->hash, 32);
    memcpy(info, &r->bank, 2);
    info[2] = r->quality;
    info[3] = r->reserved;
}

typedef struct bank_rec {
    uint32_t id;
    int32_t threshold;
    uint32_t kind;
    uint32_t ratio;           /* the enabled ratio: see bank_ratio() */
    int64_t created;
    uint64_t contents;
    uint64_t hashes;
} bank_rec;

/* A bank's enabled ratio is kept as the bits of the float ratio XOR those
 * of 1.0f: the 0 of every bank written before schema 4 reads as 1. */
#define BANK_RATIO_ONE 0x3f800000u

static inline float bank_ratio(const bank_rec *b)
{
    uint32_t u = b->ratio ^ BANK_RATIO_ONE;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t bank_ratio_bits(double ratio)
{
    float f = (float)ratio;
    uint32_t u;
    memcpy(&u, &f, 4);
    return u ^ BANK_RATIO_ONE;
}

/* A content record, decoded.  Flags say which optional parts it has. */
#define CONTENT_HAS_SHA256 0x1u
#define CONTENT_HAS_TIMESTAMPS 0x2u
#define CONTENT_HAS_MD5 0x4u
#define CONTENT_HAS_METADATA 0x8u
#define CONTENT_HAS_DISABLE 0x10u
#define CONTENT_HAS_NOTE 0x20u
typedef struct content_head {
    uint32_t bank;
    uint32_t first_entry;
    uint32_t n_hashes;
    uint32_t kind;
    int64_t added;
    uint32_t id_len;
    uint32_t meta_len;
    uint32_t flags;
    int64_t disabled_until;  /* 0 (matches) unless CONTENT_HAS_DISABLE */
    uint32_t note_len;
} content_head;

#define PCHANGES_KEEP 4096
#define PCHANGES_MAX_KEYS 262144

typedef struct meta_vals {
    uint32_t next_entry;
    uint32_t next_bank;
    uint32_t pending_from;
    uint32_t pending_to;
    uint32_t pgen;           /* postings generation (see pchanges) */
    uint32_t pass_window;    /* pending hashes that bring an indexing pass,
                                set from the live hashes by each pass and
                                large add; 0 in a store from before it
                                (see store_pass_window) */
    uint32_t wide_from;      /* entries from here on are posted wide;
                                WIDE_NONE (meta absent): none are */
    /* A pass in steps under way (store_add.c), or 0 (meta absent): it
     * indexes the entries [pending_from, pass_to), has posted them under
     * the keys below pass_key, and has put the items below pass_to in
     * cindex; pass_deletes counts the deletes of its items since it
     * began (its copy of which entries live is stale when this moves). */
    uint32_t pass_to;
    uint32_t pass_key;
    uint32_t pass_deletes;
} meta_vals;

/* The first item whose name is not in cindex yet: the handle's table of
 * pending names (store_copies.c) holds the items from here on. */
static inline uint32_t names_from(const meta_vals *m)
{
    return m->pass_to ? m->pass_to : m->pending_from;
}

/* Is entry id posted under key?  (Given that the key is one of its
 * layout's: every key of an indexed entry, the keys below pass_key of an
 * entry a pass in steps is indexing, none of another pending one.) */
static inline int entry_posted(const meta_vals *m, uint32_t id, uint32_t key)
{
    if (id < m->pending_from || id >= m->pending_to)
        return 1;
    return m->pass_to && id < m->pass_to && key < m->pass_key;
}

/* The handle, in parts: each part belongs to one layer, the only code that
 * writes it (the others read it through that layer's functions, or, for
 * the copies, under their locks as index/README.md says). */

/* The tables' handles (store_open.c opens them; store_tables.c and the
 * layers above use them in their transactions). */
typedef struct store_dbs {
    MDB_dbi meta, banks, cnum, cindex, cbank, sha256, md5, postings, records, pchanges;
} store_dbs;

/* Transactions, map growth and group commit (store_txn.c). */
typedef struct store_tx {
    /* Lookups hold this shared; growing the map holds it exclusive, since
     * LMDB may move the map and no transaction may be open meanwhile. */
    pthread_rwlock_t resize_lock;
    /* One writer in this process (LMDB's own lock serialises processes). */
    pthread_mutex_t write_lock;
    /* Group commit: writes queue here; one thread at a time, the leader,
     * commits every queued write in one transaction, so concurrent writers
     * share its fsyncs. */
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_done;
    struct write_job *queue_head, *queue_tail;
    int leader_active;
    /* Posting keys the open write transaction changed (under write_lock),
     * for pchanges; touched_all when there were too many to list. */
    uint32_t *touched;
    size_t n_touched, cap_touched;
    int touched_all;
    /* The disk filled (a write ended in ENOSPC) and no write has fitted
     * since: writes fail at once until retry_at (monotonic seconds), then
     * one is tried; each failure doubles the wait, up to 5 s.  Atomics: a
     * hint read without locks, never an invariant of the store. */
    _Atomic int full;
    _Atomic double full_retry_at, full_wait;
} store_tx;

/* The in-memory copies a lookup handle keeps (store_copies.c). */
typedef struct store_copies_part {
    /* The in-memory copy of the postings, and the in-memory index of
     * pending entries (store_copies.h). */
    struct postings_cache *pcache;
    struct pending_index *pindex;
    struct pending_names *pnames;   /* the pending items' names */

    /* Pointers to full records blocks, valid until the map moves. */
    pthread_mutex_t cache_lock;
    const uint8_t **cache[CACHE_DIR];
    uint32_t cache_blocks;       /* blocks 0 .. cache_blocks-1 are cached */

    /* The hashes of full blocks copied into anonymous memory, id-indexed,
     * on transparent huge pages: verifying a candidate is then one load
     * with no TLB miss, where the map's 4 KiB pages cost a page walk each.
     * 32 bytes of memory a hash; NULL when it could not be reserved.
     * Ids are never reused, so a store that adds and deletes would keep
     * growing it: a chunk of ARENA_CHUNK ids whose entries are all
     * deleted gives its memory back (arena_trim in store_copies.c). */
    uint8_t *arena;              /* aligned to a chunk */
    size_t arena_cap;            /* hashes the reservation holds */
    uint32_t arena_n;            /* hashes 0 .. arena_n-1 are copied */
    void *arena_map;             /* the reservation itself, for munmap */
    size_t arena_map_bytes;
    uint8_t *arena_gone;         /* a byte a chunk: 1 once given back */
    uint32_t arena_chunks_seen;  /* chunks the last trim looked at */
    uint64_t arena_dead_seen;    /* deleted ids the last trim knew of */
    /* Counts the times the map moved (store_cache_clear): pointers into
     * it kept across transactions hold for one epoch. */
    uint32_t map_epoch;
} store_copies_part;

/* Passes in steps (store_add.c).  The postings of the entries a pass is
 * indexing, by key, kept between its steps (touched only in write
 * transactions, so under write_lock); and the thread that takes the steps
 * after the first, which a small add's own transaction takes (under
 * lock). */
typedef struct store_pass_part {
    uint32_t *start;        /* NKEYS_ALL + 1: where each key's ids begin in ids */
    uint32_t *ids;          /* the window's postings, key by key, ids ascending */
    uint8_t *suffixes;      /* beside them (wide keys) */
    uint8_t *live;          /* a bit an entry of the window */
    uint32_t from, to, wide_from, deletes;
    uint64_t n_live;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int started;            /* thread is to be joined */
    int running, stop;
} store_pass_part;

/* A small add brought the pending hashes to the pass window: the pass
 * now, or its first step (the next in the background), unless the
 * handle's thread is taking them already. */
void store_pass_due(pdqm_store *s);

/* Stop the pass thread (a pass left half done goes on at the next small
 * add, or any pass) and free the pass's copy.  Close calls it. */
void store_pass_stop(pdqm_store *s);

/* Open and close (store_open.c) own the environment and put the parts
 * together. */
struct pdqm_store {
    MDB_env *env;
    int read_only;
    char *path;
    store_dbs db;
    store_tx tx;
    store_copies_part copies;
    store_pass_part pass;
};

/* LMDB result to our status, with context. */
pdqm_status store_lmdb_error(pdqm_error *err, int rc, const char *what);

/* Run fn in one read transaction (under the resize lock, shared); its
 * status is the call's.  Every read function of store.h goes through it. */
typedef pdqm_status (*read_fn)(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err);
pdqm_status store_read(pdqm_store *s, read_fn fn, void *arg, pdqm_error *err);

/* Bank `name` in txn, as a status: PDQM_ERR_NOT_FOUND when absent. */
pdqm_status store_bank_for_read(pdqm_store *s, MDB_txn *txn, const char *name, bank_rec *b,
                                pdqm_error *err);

/* One named u32 of the meta table (0 when absent), and its update; the
 * sized pair for values of another size (MDB_CORRUPTED when the stored
 * size differs). */
int store_meta_get(pdqm_store *s, MDB_txn *txn, const char *name, uint32_t *out);
int store_meta_put(pdqm_store *s, MDB_txn *txn, const char *name, uint32_t value);
int store_meta_get_sized(pdqm_store *s, MDB_txn *txn, const char *name, void *out, size_t size);
int store_meta_put_sized(pdqm_store *s, MDB_txn *txn, const char *name, const void *value,
                         size_t size);

/* Run fn inside a write transaction of its own, growing the map and
 * retrying when it fills, and logging changed posting keys before the
 * commit.  fn returns an LMDB code, or -1 with *err set by itself; `what`
 * prefixes LMDB's errors. */
typedef int (*write_fn)(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err);
pdqm_status store_write(pdqm_store *s, write_fn fn, void *arg, const char *what,
                        pdqm_error *err);

/* The writes of store.h in two halves, for pdqm_store_apply(): the checks
 * made before any transaction (a status), and the write itself in the
 * caller's transaction (an LMDB code, or -1 with *err set).
 * store_bank_check's unchanged allows -1 for threshold and kind (an
 * update); store_add_is_small says whether pdqm_store_add() would defer
 * the batch and leave it to a pass (store_add.c, store_banks.c,
 * store_delete.c, store_content.c).  store_add_in writes each added
 * item's number to numbers[i] when numbers is given (else to the add's
 * own number pointer). */
pdqm_status store_bank_check(const char *name, int threshold, int kind, int unchanged,
                             pdqm_error *err);
pdqm_status store_bank_changes_check(const char *name, const pdqm_bank_changes *c,
                                     pdqm_error *err);
int store_bank_create_in(pdqm_store *s, MDB_txn *txn, const char *name, int threshold,
                         int kind, int64_t created, double ratio, pdqm_error *err);
int store_bank_change_in(pdqm_store *s, MDB_txn *txn, const char *name,
                         const pdqm_bank_changes *c, pdqm_error *err);
int store_bank_delete_in(pdqm_store *s, MDB_txn *txn, const char *name, pdqm_error *err);
pdqm_status store_delete_check(const char *bank, const char *content_id, pdqm_error *err);
int store_delete_in(pdqm_store *s, MDB_txn *txn, const char *bank, const char *content_id,
                    pdqm_error *err);
int store_delete_number_in(pdqm_store *s, MDB_txn *txn, const char *bank, uint32_t number,
                           int *deleted, pdqm_error *err);
pdqm_status store_content_changes_check(const pdqm_content_changes *c, pdqm_error *err);
int store_content_change_in(pdqm_store *s, MDB_txn *txn, const char *bank, uint32_t number,
                            const pdqm_content_changes *c, pdqm_error *err);
pdqm_status store_add_check(const pdqm_add *adds, size_t n, pdqm_error *err);
int store_add_in(pdqm_store *s, MDB_txn *txn, const pdqm_add *adds, size_t n,
                 pdqm_add_outcome *outcomes, uint32_t *numbers, int deferred,
                 uint32_t *pending_after, uint32_t *window_after, pdqm_error *err);
int store_add_is_small(const pdqm_add *adds, size_t n);
/* The exchange ops and the PUT (store_exchange.c), in the same two halves. */
pdqm_status store_exchange_check(const pdqm_op *op, pdqm_error *err);
int store_exchange_set_in(pdqm_store *s, MDB_txn *txn, const pdqm_op *op, pdqm_error *err);
int store_exchange_delete_in(pdqm_store *s, MDB_txn *txn, const char *name, pdqm_error *err);
int store_put_in(pdqm_store *s, MDB_txn *txn, const pdqm_add *adds, size_t n,
                 pdqm_add_outcome *outcomes, uint32_t *numbers, int deferred,
                 uint32_t *pending_after, uint32_t *window_after, pdqm_error *err);

/* Note that the open write transaction changed posting key `key`. */
void store_touch(pdqm_store *s, uint32_t key);

/* Note that the open write transaction may have changed every posting key
 * (a rewrite of the whole table). */
void store_touch_all(pdqm_store *s);

/* The record of entry id in txn (copied into *out), through a cache of one
 * block: *cached holds block *cached_block's value (mv_data NULL: none
 * yet).  MDB_CORRUPTED when it is missing (store_tables.c). */
int store_read_record(pdqm_store *s, MDB_txn *txn, uint32_t id, record *out,
                      uint32_t *cached_block, MDB_val *cached);

/* How many pending entries a store of `live` hashes gathers before a
 * pass; and the window in force, from meta (store_add.c). */
uint32_t store_pending_limit(uint64_t live);
uint32_t store_pass_window(const meta_vals *m);


/* Make and free the in-memory postings copy and pending index
 * (store_copies.c). */
pdqm_status store_caches_init(pdqm_store *s, int oneshot, pdqm_error *err);
void store_pcache_free(pdqm_store *s);
void store_pindex_free(pdqm_store *s);

/* Find the number of content (bank, id) in txn, among the items cindex
 * holds and the pending ones (added deferred: cindex holds them once a
 * pass indexes them), which a handle keeps a table of in memory: 0 with
 * *number (and, when value is not NULL, its record), MDB_NOTFOUND, or an
 * LMDB error.  m: txn's meta values, or NULL to read them.  The _key form
 * takes the key already computed (store_content_key).  In a write
 * transaction, store_pnames_sync first (store_copies.c). */
int store_content_find(pdqm_store *s, MDB_txn *txn, uint32_t bank, const char *id,
                       size_t len, uint32_t *number, MDB_val *value);
int store_content_find_key(pdqm_store *s, MDB_txn *txn, const meta_vals *m, uint64_t key,
                           uint32_t bank, const char *id, size_t len, uint32_t *number,
                           MDB_val *value);

/* Make the table of pending names agree with the write transaction whose
 * meta values m are: an aborted write may have left it items that the
 * transaction does not hold. */
void store_pnames_sync(pdqm_store *s, const meta_vals *m);

/* A deferred add in write transaction txn added the items numbered
 * first .. end-1 (the pending range then starting at pending_from): n of
 * them named by keys[i], numbered numbers[i], and no other.  The table
 * takes them at once when it had read up to first (else it reads them
 * when next asked); a transaction that then fails leaves them in it, which
 * the next store_pnames_sync sees. */
void store_pnames_added(pdqm_store *s, uint32_t pending_from, uint32_t first, uint32_t end,
                        const uint64_t *keys, const uint32_t *numbers, size_t n);

/* Start loading the table's slot for key, for a find soon after. */
void store_pnames_prefetch(pdqm_store *s, uint64_t key);

/* For the pass that indexes the pending items [from, to): when the table
 * holds them all, its memory, turned into each item's key's top 32 bits
 * << 32 | its number (*n of them, in about their keys' order; items since
 * deleted among them), to free with store_pnames_free_taken(v, *bytes);
 * else NULL.  The table is empty after. */
uint64_t *store_pnames_take(pdqm_store *s, uint32_t from, uint32_t to, size_t *n,
                            size_t *bytes);
void store_pnames_free_taken(uint64_t *v, size_t bytes);

/* Forget the table (an indexing pass put the pending items in cindex), and
 * free it with the handle. */
void store_pnames_reset(pdqm_store *s);
void store_pnames_free(pdqm_store *s);

/* Bytes of hashes the arena holds now (store_copies.c). */
uint64_t store_arena_bytes(pdqm_store *s);

/* Begin a transaction, handling a map grown by another process. */
int store_txn_begin(pdqm_store *s, unsigned flags, MDB_txn **txn);

/* Read the meta values in txn. */
int store_meta_read(pdqm_store *s, MDB_txn *txn, meta_vals *m);
int store_meta_write(pdqm_store *s, MDB_txn *txn, const meta_vals *m);

/* Find a bank by name in txn; MDB_NOTFOUND when absent. */
int store_bank_find(pdqm_store *s, MDB_txn *txn, const char *name, bank_rec *out);
int store_bank_put(pdqm_store *s, MDB_txn *txn, const char *name, const bank_rec *b);

/* All banks of txn: names (static size) and records, indexed by position. */
typedef struct bank_table {
    size_t count;
    char (*names)[PDQM_BANK_NAME_MAX + 1];
    bank_rec *recs;
    uint32_t max_id;      /* every bank id ever handed out is <= max_id */
    int32_t *by_id;       /* [max_id + 1]: position in the table, or -1 */
    uint64_t hashes;      /* live hashes: the sum of recs[].hashes */
} bank_table;
pdqm_status store_bank_table(pdqm_store *s, MDB_txn *txn, bank_table *t, pdqm_error *err);

/* The same in a table of its own (*out; free it with
 * store_bank_table_delete), *out NULL on failure. */
pdqm_status store_bank_table_new(pdqm_store *s, MDB_txn *txn, bank_table **out,
                                 pdqm_error *err);
void store_bank_table_delete(bank_table *t);
void store_bank_table_free(bank_table *t);

/* The key of slot k of a hash. */
static inline uint32_t slot_key(const uint64_t w[4], int k)
{
    return ((uint32_t)k << 16) | (uint32_t)((w[k >> 2] >> (16 * (k & 3))) & 0xffff);
}

/* The two multi-index layouts of the postings (index/README.md, "Layouts").
 *
 * Narrow: 16 slots of 16 bits; key slot << 16 | value; a value is the
 * ascending u32 ids posted there.  Its candidates grow as N x 272 / 65,536
 * a query at r <= 31, which is few up to some ten million hashes.
 *
 * Wide: 11 slots, three of 24 bits and eight of 23 (bits 0-71, then
 * 72-255 by 23), so that a stored hash within r of the query is within
 * r / 11 bits of it in at least one of them.  Key (SLOTS + slot) << 16 |
 * the slot's low 16 bits; the rest of the slot (8 or 7 bits, its suffix)
 * is kept beside each id: a value of n postings is n ascending u32 ids,
 * then their n suffix bytes.  A probe reads a key and keeps the ids whose
 * suffix is within the bits the probe has left: at 100M hashes, about
 * 1,400 probes and 30,000 candidates at r = 31, against 415,000.
 *
 * Entries from meta "wide_from" on are posted wide, those below narrow:
 * the layout is chosen by the size of the store when entries are indexed
 * (store_layout_for), and a store that grows changes layout for its new
 * entries with no rebuild. */
#define WIDE_SLOTS 11
#define WIDE_KEY0 ((uint32_t)SLOTS << 16)               /* the first wide key */
#define NKEYS_ALL ((uint32_t)(SLOTS + WIDE_SLOTS) << 16)  /* keys of both layouts */
#define WIDE_NONE UINT32_MAX                            /* wide_from: no wide entry */

static inline int key_is_wide(uint32_t key)
{
    return key >= WIDE_KEY0;
}

/* Slot k's first bit and width in the wide layout. */
static inline unsigned wide_start(int k)
{
    return k < 3 ? 24u * (unsigned)k : 72u + 23u * (unsigned)(k - 3);
}

static inline unsigned wide_width(int k)
{
    return k < 3 ? 24u : 23u;
}

/* Bits [start, start + width) of a hash (width <= 32), bit i being bit
 * i % 64 of w[i / 64], as slot_key takes them. */
static inline uint32_t hash_bits(const uint64_t w[4], unsigned start, unsigned width)
{
    unsigned i = start >> 6, off = start & 63;
    uint64_t v = w[i] >> off;
    if (off + width > 64)
        v |= w[i + 1] << (64 - off);
    return (uint32_t)(v & (((uint64_t)1 << width) - 1));
}

/* The key of wide slot k of a hash, and its suffix in *suffix. */
static inline uint32_t wide_key(const uint64_t w[4], int k, uint8_t *suffix)
{
    uint32_t v = hash_bits(w, wide_start(k), wide_width(k));
    *suffix = (uint8_t)(v >> 16);
    return WIDE_KEY0 + ((uint32_t)k << 16) + (v & 0xffff);
}

/* The keys (and, wide, the suffixes) an entry is posted under in its
 * layout; returns how many (SLOTS or WIDE_SLOTS). */
static inline int entry_keys(const uint64_t w[4], int wide, uint32_t keys[SLOTS],
                             uint8_t suffixes[SLOTS])
{
    if (wide) {
        for (int k = 0; k < WIDE_SLOTS; k++)
            keys[k] = wide_key(w, k, &suffixes[k]);
        return WIDE_SLOTS;
    }
    for (int k = 0; k < SLOTS; k++) {
        keys[k] = slot_key(w, k);
        suffixes[k] = 0;
    }
    return SLOTS;
}

/* The postings in a value of `size` bytes under key; (size_t)-1 when the
 * size cannot be one of that key's values. */
static inline size_t posting_count(uint32_t key, size_t size)
{
    size_t unit = key_is_wide(key) ? 5 : 4;
    return size % unit ? (size_t)-1 : size / unit;
}

/* A content record, decoded from its LMDB value; the pointers point into
 * the value. */
typedef struct content_view {
    content_head head;
    const char *content_id;        /* may point into idbuf: do not copy views;
                                      NULL while id_from_hash (below) */
    char idbuf[65];                /* a numeric or hex id, rendered */
    const pdqm_hash256 *first_hash;   /* encoding: the item's first hash, so
                                         that an id naming it is not stored */
    int id_from_hash;              /* decoded: the id is the hex of the first
                                      hash, not yet rendered (see
                                      store_content_read) */
    const char *metadata;          /* NULL when none */
    const uint8_t *sha256, *md5;   /* NULL when absent */
    const uint8_t *timestamps;     /* n_hashes doubles, unaligned; NULL when absent */
    const char *note;              /* head.note_len bytes; NULL when none */
} content_view;

/* number is the record's key: the content's number, which is also the id
 * of its first hash.  Returns 0, or -1 when the value is malformed. */
int store_content_decode(uint32_t number, const MDB_val *v, content_view *out);

/* Render a hash-named item's id (id_from_hash) from its first hash, the
 * 32 record bytes of entry out->head.first_entry. */
void store_content_name_by_hash(content_view *out, const uint64_t hash[4]);

/* At least the bytes store_content_encode() writes for c (cheap: the
 * id's form is decided once, by the encoding); then write them into buf,
 * returning how many. */
size_t store_content_bound(const content_view *c);
size_t store_content_encode(uint8_t *buf, const content_view *c);

/* Content records by number: get (the value points into the map, valid
 * for the transaction), delete; 0, MDB_NOTFOUND or an LMDB error. */
int store_cnum_get(pdqm_store *s, MDB_txn *txn, uint32_t number, MDB_val *rec);
int store_cnum_del(pdqm_store *s, MDB_txn *txn, uint32_t number);
/* Replace the record of an item that exists (MDB_NOTFOUND if none). */
int store_cnum_replace(pdqm_store *s, MDB_txn *txn, uint32_t number, const void *rec,
                       size_t len);

/* New content records, in ascending numbers above every stored one, a
 * group at a time: a group is written once, when the writer moves past it
 * or ends, not once a record.  Until then store_cnum_get does not see the
 * group's new records.  A zeroed writer starts; store_cnum_writer_end
 * writes what is left and frees it (call it on failure too).  0,
 * MDB_KEYEXIST for a number not above the last, or an LMDB error. */
typedef struct cnum_writer {
    uint8_t *buf;             /* the open group's value */
    size_t len, cap;
    uint32_t group, last;     /* the open group; the table's last group */
    int open, extends;        /* a group is open; it is stored already */
    int started, have_last;   /* last is read; the table had one */
    int last_low;             /* the open group's last entry (-1: none) */
} cnum_writer;

int store_cnum_writer_add(pdqm_store *s, MDB_txn *txn, cnum_writer *w, uint32_t number,
                          const void *rec, size_t len);
int store_cnum_writer_end(pdqm_store *s, MDB_txn *txn, cnum_writer *w);

/* Every content record in number order. */
typedef struct cnum_iter {
    MDB_cursor *cur;
    const uint8_t *p, *end;   /* the rest of the current group */
    uint32_t group;
} cnum_iter;
int store_cnum_first(pdqm_store *s, MDB_txn *txn, cnum_iter *it, uint32_t *number, MDB_val *rec);
int store_cnum_next(cnum_iter *it, uint32_t *number, MDB_val *rec);
/* The first record numbered from or more. */
int store_cnum_from(pdqm_store *s, MDB_txn *txn, cnum_iter *it, uint32_t from,
                    uint32_t *number, MDB_val *rec);
void store_cnum_end(cnum_iter *it);

/* The live content item that entry id belongs to: 0 with *number and its
 * record, MDB_NOTFOUND when the entry's content was deleted. */
/* store_content_decode, and a hash-named item's id rendered from its first
 * record in txn: every view whose content_id is used comes from here.
 * Returns 0, MDB_CORRUPTED, or LMDB's code. */
int store_content_read(pdqm_store *s, MDB_txn *txn, uint32_t number, const MDB_val *v,
                       content_view *out);

int store_content_of_entry(pdqm_store *s, MDB_txn *txn, uint32_t id, uint32_t *number,
                           MDB_val *rec);

/* The key of (bank, id) in cindex.  Keys in ascending order of their top
 * 32 bits are in cindex's order: a batch that finds and indexes its items
 * in that order walks the index's pages once, not at random. */
uint64_t store_content_key(uint32_t bank, const char *id, size_t len);

/* Find the number of content (bank, id), whose key is `key`, among the
 * items cindex holds (all but the pending ones: store_content_find, in
 * store_copies.c, looks for those too): 0 with *number (and, when value
 * is not NULL, its record), MDB_NOTFOUND, or an LMDB error. */
int store_cindex_find(pdqm_store *s, MDB_txn *txn, uint64_t key, uint32_t bank,
                      const char *id, size_t len, uint32_t *number, MDB_val *value);

/* Put the cindex entries of n items into bucket (their keys' top 16
 * bits): entries[i] is an item's key, its low 32 bits replaced by its
 * number, ascending; scratch has room for 6 n bytes.  Appended when they
 * all sort after the bucket's last entry. */
int store_cindex_put_bucket(pdqm_store *s, MDB_txn *txn, uint32_t bucket, const uint64_t *entries,
                            size_t n, uint8_t *scratch);

/* A bank's content numbers, ascending, in a new array (free()). */
int store_bank_numbers(pdqm_store *s, MDB_txn *txn, uint32_t bank, uint32_t **out, size_t *count);

/* Adding content items takes both: an entry in cindex (by key) for each,
 * and their numbers (ascending, above the bank's last) appended to their
 * bank's list in cbank. */
int store_content_index_put(pdqm_store *s, MDB_txn *txn, uint64_t key, uint32_t number);
int store_bank_list_append(pdqm_store *s, MDB_txn *txn, uint32_t bank,
                           const uint32_t *numbers, size_t n);
/* Remove a content item from both; a pending one (pending: 1) has no
 * entry in cindex yet. */
int store_content_unlink(pdqm_store *s, MDB_txn *txn, uint32_t bank, const char *id,
                         size_t len, uint32_t number, int pending);

/* Delete one content item (by number) inside a write transaction: its
 * postings, digests and records of it; adjusts the bank counts in *bank. */
int store_delete_content(pdqm_store *s, MDB_txn *txn, uint32_t number,
                         const content_view *c, bank_rec *bank);

/* Grow the map (double it) after MDB_MAP_FULL; no transaction may be open
 * in this thread. */
pdqm_status store_grow_map(pdqm_store *s, pdqm_error *err);

/* Let go of this process's mapping of the store's pages: they stay in the
 * kernel's page cache, and a later read maps them again (a minor fault).
 * A bulk load and its pass read and write gigabytes through the map once;
 * without this, every page they touch counts in the process's resident
 * set until it ends.  Pointers into the map stay valid. */
void store_release_map(pdqm_store *s);

/* Forget cached block pointers (the map moved). Caller holds resize_lock
 * exclusively. */
void store_cache_clear(pdqm_store *s);

/* Sort an array that is nearly in order already (each value a few places
 * from its own): an insertion sort, one sweep and a few moves. */
static inline void sort_nearly_u64(uint64_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t x = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* A 32-bit number big-endian, as keys sort. */
static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

static inline size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Read a varint of at most 64 bits from [*p, end); -1 when malformed. */
static inline int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

#endif
