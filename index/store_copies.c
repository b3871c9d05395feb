/*
 * store_copies.c - the in-memory copies a handle keeps for lookups: the
 * hashes of full records blocks (the arena), the postings, and the index
 * of pending entries (store_copies.h; sizes and locks in index/README.md).
 */
/* MAP_ANONYMOUS, MAP_NORESERVE, MADV_HUGEPAGE: Linux and the BSDs. */
#define _DEFAULT_SOURCE
#include "store_copies.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Block pointers                                                       */

/* Reserve the arena: address space for every id there can be, committed
 * only as it is written, aligned to a chunk so that giving one back frees
 * a whole huge page (a partly used one could be filled again by the
 * kernel's khugepaged).  Called with cache_lock held. */
static void arena_reserve(pdqm_store *s)
{
    for (size_t cap = (size_t)1 << 32; cap >= ((size_t)1 << 24); cap >>= 2) {
        size_t bytes = cap * 32 + ARENA_CHUNK_BYTES;
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            continue;
        uint8_t *gone = calloc(cap / ARENA_CHUNK, 1);
        if (gone == NULL) {
            munmap(p, bytes);
            break;
        }
        uintptr_t start = ((uintptr_t)p + ARENA_CHUNK_BYTES - 1) & ~(uintptr_t)(ARENA_CHUNK_BYTES - 1);
#ifdef MADV_HUGEPAGE
        madvise((void *)start, cap * 32, MADV_HUGEPAGE);
#endif
        s->copies.arena_map = p;
        s->copies.arena_map_bytes = bytes;
        s->copies.arena = (uint8_t *)start;
        s->copies.arena_cap = cap;
        s->copies.arena_gone = gone;
        return;
    }
    s->copies.arena_cap = 1;   /* tried: lookups read the blocks instead */
}

/* Whether no live content item has an entry in [from, to) (in txn); 0
 * when it cannot tell. */
static int ids_dead(pdqm_store *s, MDB_txn *txn, uint32_t from, uint32_t to)
{
    uint32_t number;
    MDB_val rec;
    if (store_content_of_entry(s, txn, from, &number, &rec) != MDB_NOTFOUND)
        return 0;
    cnum_iter it;
    int rc = store_cnum_from(s, txn, &it, from, &number, &rec);
    store_cnum_end(&it);
    return rc == MDB_NOTFOUND || (rc == 0 && number >= to);
}

/* Give back the memory of every copied chunk whose entries are all
 * deleted (in txn's snapshot, whose next_entry and dead ids, next_entry
 * less the live hashes, are given).  It looks only when there can be new
 * ones: a chunk filled, or a quarter of a chunk's worth of entries deleted,
 * since the last look (each look costs two B-tree lookups a chunk).
 *
 * Ids are never reused, so such a chunk is dead in every later snapshot.
 * A lookup still on an older one may verify a candidate there and read
 * zeros: verify() and check_entry() measure every near hit again from its
 * record, so the worst is missing an entry whose delete committed before
 * the lookup ended.  Called with cache_lock held. */
static void arena_trim(pdqm_store *s, MDB_txn *txn, uint32_t next_entry, uint64_t dead)
{
    uint32_t upto = s->copies.arena_n < next_entry ? s->copies.arena_n : next_entry;
    uint32_t chunks = upto / ARENA_CHUNK;
    if (chunks == s->copies.arena_chunks_seen && dead < s->copies.arena_dead_seen + ARENA_CHUNK / 4)
        return;
    for (uint32_t c = 0; c < chunks; c++) {
        if (s->copies.arena_gone[c] || !ids_dead(s, txn, c * ARENA_CHUNK, (c + 1) * ARENA_CHUNK))
            continue;
        if (madvise(s->copies.arena + (size_t)c * ARENA_CHUNK_BYTES, ARENA_CHUNK_BYTES,
                    MADV_DONTNEED) == 0)
            s->copies.arena_gone[c] = 1;
    }
    s->copies.arena_chunks_seen = chunks;
    s->copies.arena_dead_seen = dead;
}

/* Copy the hashes of cached blocks not yet in the arena (see store_int.h),
 * reserving it first, then give back what deletes have emptied.  Called
 * with cache_lock held. */
static void arena_fill(pdqm_store *s, MDB_txn *txn, uint32_t next_entry, uint64_t dead)
{
    if (s->copies.arena == NULL && s->copies.arena_cap == 0)
        arena_reserve(s);
    if (s->copies.arena == NULL)
        return;
    while (s->copies.arena_n / RECORDS_PER_BLOCK < s->copies.cache_blocks &&
           (size_t)s->copies.arena_n + RECORDS_PER_BLOCK <= s->copies.arena_cap) {
        uint32_t b = s->copies.arena_n / RECORDS_PER_BLOCK;
        const uint8_t *block = s->copies.cache[b / CACHE_CHUNK][b % CACHE_CHUNK];
        memcpy(s->copies.arena + (size_t)s->copies.arena_n * 32, block_hash(block, 0),
               (size_t)RECORDS_PER_BLOCK * 32);
        s->copies.arena_n += RECORDS_PER_BLOCK;
        /* Lookups read the copy now, and the block only for a near hit's
         * bank: its map pages need not stay in this process's resident set
         * (they stay in the page cache; a later read maps them again).
         * Records are never freed, so otherwise every block ever copied
         * would. */
        const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t from = (uintptr_t)block & ~(page - 1);
        uintptr_t to = ((uintptr_t)block + BLOCK_BYTES) & ~(page - 1);
        if (to > from)
            madvise((void *)from, to - from, MADV_DONTNEED);
    }
    arena_trim(s, txn, next_entry, dead);
}

uint64_t store_arena_bytes(pdqm_store *s)
{
    pthread_mutex_lock(&s->copies.cache_lock);
    uint64_t bytes = (uint64_t)s->copies.arena_n * 32;
    for (uint32_t c = 0; s->copies.arena && c < s->copies.arena_n / ARENA_CHUNK; c++)
        if (s->copies.arena_gone[c])
            bytes -= ARENA_CHUNK_BYTES;
    pthread_mutex_unlock(&s->copies.cache_lock);
    return bytes;
}

/* Make sure blocks 0..full-1 have cached pointers (taken in txn, whose
 * next_entry and dead ids arena_trim wants). */
int store_cache_fill(pdqm_store *s, MDB_txn *txn, uint32_t full, uint32_t next_entry,
                      uint64_t dead)
{
    int rc = 0;
    pthread_mutex_lock(&s->copies.cache_lock);
    while (s->copies.cache_blocks < full) {
        uint32_t b = s->copies.cache_blocks;
        uint32_t dir = b / CACHE_CHUNK;
        if (dir >= CACHE_DIR) {
            rc = ENOMEM;
            break;
        }
        if (s->copies.cache[dir] == NULL) {
            s->copies.cache[dir] = calloc(CACHE_CHUNK, sizeof(const uint8_t *));
            if (s->copies.cache[dir] == NULL) {
                rc = ENOMEM;
                break;
            }
        }
        MDB_val k = { 4, &b }, v;
        rc = mdb_get(txn, s->db.records, &k, &v);
        if (rc == 0 && v.mv_size != BLOCK_BYTES)
            rc = MDB_CORRUPTED;
        if (rc != 0)
            break;
        s->copies.cache[dir][b % CACHE_CHUNK] = v.mv_data;
        s->copies.cache_blocks = b + 1;
    }
    if (rc == 0)
        arena_fill(s, txn, next_entry, dead);
    pthread_mutex_unlock(&s->copies.cache_lock);
    return rc;
}


/* ------------------------------------------------------------------ */
/* The in-memory copy of the postings                                   */

/* A long-lived handle (a server, a benchmark) probes a directory of the
 * postings in memory, a key's place one load away, where LMDB's B-tree
 * costs a dozen dependent cache misses.  Values of up to half a page
 * (narrow keys, and wide ones of small stores) are copied, PCACHE_MAX_BYTES
 * at most (16M narrow hashes); larger ones, which LMDB keeps on overflow
 * pages of their own, are pointed to in the map: an overflow page moves
 * only when its value is written again, which marks the key stale, or
 * when the map moves, which changes the epoch.  So at 100M hashes the
 * directory is 28 MB and probes are memory accesses.  The copy is of one
 * postings generation; keys that later transactions changed are marked
 * stale (from pchanges, see store_int.h) and probed in LMDB; when too
 * many are stale, or the log does not reach back, the copy is made anew.
 * A handle builds it only after PCACHE_AFTER lookups, so a one-shot
 * command never pays for it.  Its memory is reserved once, on
 * transparent huge pages, and committed only as it is written. */

/* A value at least this large is on overflow pages (LMDB puts a node of
 * over about half a page there). */
#define OVERFLOW_BYTES 2048

void store_pcache_free(pdqm_store *s)
{
    postings_cache *c = s->copies.pcache;
    if (c == NULL)
        return;
    pthread_rwlock_destroy(&c->lock);
    if (c->dir)
        munmap(c->dir, (size_t)NKEYS_ALL * sizeof *c->dir);
    if (c->bytes)
        munmap(c->bytes, PCACHE_MAX_BYTES);
    free(c->stale);
    free(c);
    s->copies.pcache = NULL;
}

/* Anonymous memory for `bytes`, on huge pages where the kernel has them;
 * NULL when it cannot be had. */
static void *reserve(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

/* The map's epoch now (the caller holds resize_lock, shared at least). */
static uint32_t map_epoch(pdqm_store *s)
{
    pthread_mutex_lock(&s->copies.cache_lock);
    uint32_t e = s->copies.map_epoch;
    pthread_mutex_unlock(&s->copies.cache_lock);
    return e;
}

/* Place every key of txn's snapshot.  Called with the lock exclusive. */
static int pcache_build(pdqm_store *s, MDB_txn *txn, postings_cache *c, uint32_t gen)
{
    c->valid = 0;
    if (c->dir == NULL)
        c->dir = reserve((size_t)NKEYS_ALL * sizeof *c->dir);
    if (c->bytes == NULL)
        c->bytes = reserve(PCACHE_MAX_BYTES);
    if (c->stale == NULL)
        c->stale = malloc(NKEYS_ALL / 8);
    if (c->dir == NULL || c->bytes == NULL || c->stale == NULL) {
        c->disabled = 1;
        return ENOMEM;
    }
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db.postings, &cur);
    if (rc != 0)
        return rc;
    size_t used = 0;
    uint32_t next_key = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t key;
        memcpy(&key, k.mv_data, 4);
        size_t n = posting_count(key, v.mv_size);
        if (k.mv_size != 4 || key >= NKEYS_ALL || key < next_key || n == (size_t)-1 ||
            n >= PREF_LMDB) {
            rc = MDB_CORRUPTED;
            break;
        }
        while (next_key < key)
            c->dir[next_key++] = (postings_ref){ NULL, 0 };
        if (v.mv_size >= OVERFLOW_BYTES) {
            c->dir[key] = (postings_ref){ v.mv_data, (uint32_t)n };
        } else if (used + v.mv_size <= PCACHE_MAX_BYTES) {
            memcpy(c->bytes + used, v.mv_data, v.mv_size);
            c->dir[key] = (postings_ref){ c->bytes + used, (uint32_t)n };
            used += (v.mv_size + 3) & ~(size_t)3;   /* ids stay aligned */
        } else {
            c->dir[key] = (postings_ref){ NULL, PREF_LMDB };
        }
        next_key = key + 1;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    while (next_key < NKEYS_ALL)
        c->dir[next_key++] = (postings_ref){ NULL, 0 };
    memset(c->stale, 0, NKEYS_ALL / 8);
    c->n_stale = 0;
    c->gen = c->seen = gen;
    c->epoch = map_epoch(s);
    c->valid = 1;
    return 0;
}

/* Mark the keys changed after c->seen up to gen as stale.  Returns 0, or
 * MDB_NOTFOUND when the log does not reach back (the copy must be made
 * anew).  Called with the lock exclusive. */
static int pcache_catch_up(pdqm_store *s, MDB_txn *txn, postings_cache *c, uint32_t gen)
{
    for (uint32_t g = c->seen + 1; g <= gen; g++) {
        MDB_val k = { 4, &g }, v;
        int rc = mdb_get(txn, s->db.pchanges, &k, &v);
        if (rc != 0)
            return rc;
        if (v.mv_size == 0 || v.mv_size % 4)
            return MDB_NOTFOUND;      /* too many keys changed to list */
        const uint8_t *p = v.mv_data;
        for (size_t i = 0; i < v.mv_size / 4; i++) {
            uint32_t key;
            memcpy(&key, p + 4 * i, 4);
            if (key >= NKEYS_ALL)
                return MDB_CORRUPTED;
            uint64_t bit = (uint64_t)1 << (key % 64);
            if (!(c->stale[key / 64] & bit)) {
                c->stale[key / 64] |= bit;
                c->n_stale++;
            }
        }
    }
    c->seen = gen;
    return 0;
}

/* Make the copy usable for a lookup at generation gen if it can be; on
 * success the lock is held shared (release with pcache_release).  Returns
 * 1 when usable, 0 when this lookup probes LMDB alone. */
int store_pcache_acquire(pdqm_store *s, MDB_txn *txn, postings_cache *c, uint32_t gen)
{
    if (c->disabled)
        return 0;
    const uint32_t epoch = map_epoch(s);
    pthread_rwlock_rdlock(&c->lock);
    if (c->valid && c->gen <= gen && gen <= c->seen && c->epoch == epoch)
        return 1;
    pthread_rwlock_unlock(&c->lock);

    pthread_rwlock_wrlock(&c->lock);
    int rc = 0;
    if (c->valid && c->epoch != epoch)
        c->valid = 0;   /* the map moved: its pointers are gone */
    if (c->valid && gen > c->seen) {
        rc = pcache_catch_up(s, txn, c, gen);
        if (rc != 0 || c->n_stale > NKEYS_ALL / 8)
            c->valid = 0;
    }
    if (!c->valid && !c->disabled &&
        atomic_load_explicit(&c->lookups, memory_order_relaxed) >= PCACHE_AFTER)
        rc = pcache_build(s, txn, c, gen);
    (void)rc;   /* a failed copy only means probing LMDB */
    pthread_rwlock_unlock(&c->lock);

    pthread_rwlock_rdlock(&c->lock);
    if (c->valid && c->gen <= gen && gen <= c->seen && c->epoch == epoch)
        return 1;
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The in-memory index of pending entries                               */

/* Entries added deferred and not yet in the postings (see store_add.c)
 * would cost every lookup a scan of them.  A handle that looks up often
 * indexes them in memory instead, as they come: for each of the 16 slot
 * keys of an entry a node, chained from the key's head, newest first.
 * head and next hold 1 + a node's number (0: none); node n is slot
 * n % SLOTS of entry from + n / SLOTS.  A lookup walks the chains of its
 * probe keys, skipping entries its snapshot does not have yet.  When the
 * pending range starts anew (an indexing pass emptied it), so does this.
 * 64 bytes a pending entry, and 4 MiB of heads. */

void store_pindex_free(pdqm_store *s)
{
    pending_index *p = s->copies.pindex;
    if (p == NULL)
        return;
    pthread_rwlock_destroy(&p->lock);
    free(p->head);
    free(p->next);
    free(p);
    s->copies.pindex = NULL;
}

/* The three structures are made with the handle (their memory comes
 * later, as they fill), so lookups need no lock to find them. */
pdqm_status store_caches_init(pdqm_store *s, int oneshot, pdqm_error *err)
{
    s->copies.pcache = calloc(1, sizeof *s->copies.pcache);
    s->copies.pindex = calloc(1, sizeof *s->copies.pindex);
    s->copies.pnames = calloc(1, sizeof *s->copies.pnames);
    if (s->copies.pcache == NULL || s->copies.pindex == NULL || s->copies.pnames == NULL) {
        free(s->copies.pcache);
        free(s->copies.pindex);
        free(s->copies.pnames);
        s->copies.pcache = NULL;
        s->copies.pindex = NULL;
        s->copies.pnames = NULL;
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory opening a store");
    }
    pthread_rwlock_init(&s->copies.pcache->lock, NULL);
    pthread_rwlock_init(&s->copies.pindex->lock, NULL);
    pthread_mutex_init(&s->copies.pnames->lock, NULL);
    if (oneshot) {
        /* PDQM_STORE_ONESHOT: lookups read the pages, as when neither copy
         * can be had. */
        s->copies.arena_cap = 1;
        s->copies.pcache->disabled = 1;
    }
    return PDQM_OK;
}

/* Bring the index up to the pending range [from, to) of a snapshot whose
 * records rv shows.  Returns 1 when it covers the range (its lock then held
 * shared), 0 when this lookup should scan instead: the snapshot is older
 * than the index, or memory ran out. */
int store_pindex_acquire(pending_index *p, const record_view *rv, uint32_t from, uint32_t to)
{
    pthread_rwlock_rdlock(&p->lock);
    if (p->head && p->from == from && p->upto >= to)
        return 1;
    pthread_rwlock_unlock(&p->lock);

    pthread_rwlock_wrlock(&p->lock);
    int ok = 1;
    if (p->head == NULL || p->from != from) {
        if (p->head && from < p->from)
            ok = 0;   /* an older snapshot than the index: scan */
        else {
            if (p->head == NULL)
                p->head = malloc((size_t)NKEYS * sizeof *p->head);
            if (p->head == NULL)
                ok = 0;
            else {
                memset(p->head, 0, (size_t)NKEYS * sizeof *p->head);
                p->from = p->upto = from;
            }
        }
    }
    if (ok && p->upto < to) {
        size_t need = (size_t)(to - p->from);
        if (need > p->cap) {
            size_t cap = need * 2;
            uint32_t *grown = realloc(p->next, cap * SLOTS * sizeof *grown);
            if (grown == NULL)
                ok = 0;
            else {
                p->next = grown;
                p->cap = cap;
            }
        }
        for (uint32_t id = p->upto; ok && id < to; id++) {
            uint64_t h[4];
            memcpy(h, hash_at(rv, id), 32);
            uint32_t node = (id - p->from) * SLOTS;
            for (int slot = 0; slot < SLOTS; slot++, node++) {
                uint32_t key = slot_key(h, slot);
                p->next[node] = p->head[key];
                p->head[key] = node + 1;
            }
        }
        if (ok)
            p->upto = to;
    }
    pthread_rwlock_unlock(&p->lock);
    if (!ok)
        return 0;
    pthread_rwlock_rdlock(&p->lock);
    if (p->head && p->from == from && p->upto >= to)
        return 1;
    pthread_rwlock_unlock(&p->lock);
    return 0;
}


/* ------------------------------------------------------------------ */
/* The names of pending items                                           */

/* Items added deferred have no entry in cindex until a pass indexes them
 * (store_add.c): cindex is keyed by a hash of (bank, id), so a bulk load
 * inserting its entries batch by batch would rewrite most of its pages
 * every batch (at 30M items, 300 MB written a batch of 100,000), where a
 * pass writes them once, in order.  Meanwhile a lookup by name finds
 * pending items through this table: the top 32 bits of their keys and
 * their numbers, 8 bytes a slot, at most 80 % full (about 11 bytes a
 * pending item: 1 GiB for a bulk load of 100M, 12 MiB for the service's
 * passes of up to 1M).  A slot is a candidate, confirmed by reading the
 * item in the caller's transaction, so an item the table holds and the
 * transaction does not (deleted, newer, or written by a transaction that
 * failed) is never found.  The table follows the pending range: it reads
 * the items added since it last looked, and starts anew when the range
 * does. */

#define PNAMES_MIN 1024

/* The first slot to try for a key (or a slot's value): its top bits (a
 * key is a hash already), so that slots are in the order of keys, and a
 * batch looking up its names in cindex's order reads the table in one
 * sweep, not at random. */
static size_t pnames_at(uint64_t key, size_t cap)
{
    return (size_t)((key >> 32) * (uint64_t)cap >> 32);
}

static int pnames_insert(pending_names *p, uint64_t key, uint32_t number)
{
    if ((p->n + 1) * 5 > p->cap * 4) {
        /* (On huge pages: a bulk load's table is a GiB probed at random.) */
        size_t cap = p->cap ? p->cap * 2 : PNAMES_MIN;
        uint64_t *grown = reserve(cap * sizeof *grown);
        if (grown == NULL)
            return ENOMEM;
        for (size_t i = 0; i < p->cap; i++)
            if (p->slot[i]) {
                size_t j = pnames_at(p->slot[i], cap);
                while (grown[j])
                    j = (j + 1) & (cap - 1);
                grown[j] = p->slot[i];
            }
        if (p->slot)
            munmap(p->slot, p->cap * sizeof *p->slot);
        __atomic_store_n(&p->slot, grown, __ATOMIC_RELAXED);
        __atomic_store_n(&p->cap, cap, __ATOMIC_RELAXED);
    }
    uint64_t v = (key & ~(uint64_t)0xffffffffu) | ((uint64_t)number + 1);
    size_t j = pnames_at(v, p->cap);
    while (p->slot[j])
        j = (j + 1) & (p->cap - 1);
    p->slot[j] = v;
    p->n++;
    return 0;
}

static void pnames_clear(pending_names *p, uint32_t from)
{
    if (p->cap > PNAMES_MIN * 64) {   /* a bulk load's table: give it back */
        munmap(p->slot, p->cap * sizeof *p->slot);
        __atomic_store_n(&p->slot, NULL, __ATOMIC_RELAXED);
        __atomic_store_n(&p->cap, 0, __ATOMIC_RELAXED);
    } else if (p->slot) {
        memset(p->slot, 0, p->cap * sizeof *p->slot);
    }
    p->n = 0;
    p->from = p->upto = from;
}

/* Add the items numbered upto .. to-1 that txn holds.  Called locked. */
static int pnames_catch_up(pdqm_store *s, MDB_txn *txn, pending_names *p, uint32_t to)
{
    if (p->upto >= to)
        return 0;
    cnum_iter it;
    uint32_t number;
    MDB_val v;
    int rc;
    for (rc = store_cnum_from(s, txn, &it, p->upto, &number, &v); rc == 0 && number < to;
         rc = store_cnum_next(&it, &number, &v)) {
        content_view c;
        if ((rc = store_content_read(s, txn, number, &v, &c)) != 0)
            break;
        if ((rc = pnames_insert(p, store_content_key(c.head.bank, c.content_id, c.head.id_len),
                                number)) != 0)
            break;
    }
    store_cnum_end(&it);
    if (rc == MDB_NOTFOUND || (rc == 0 && number >= to)) {
        p->upto = to;
        return 0;
    }
    pnames_clear(p, p->from);   /* half read: start again next time */
    return rc;
}

void store_pnames_sync(pdqm_store *s, const meta_vals *m)
{
    pending_names *p = s->copies.pnames;
    if (p == NULL)
        return;
    const uint32_t from = names_from(m);
    pthread_mutex_lock(&p->lock);
    if (m->pending_to <= from || p->from != from || p->upto > m->pending_to)
        pnames_clear(p, m->pending_to > from ? from : 0);
    pthread_mutex_unlock(&p->lock);
}

void store_pnames_prefetch(pdqm_store *s, uint64_t key)
{
    pending_names *p = s->copies.pnames;
    if (p == NULL)
        return;
    /* Unlocked: a slot array being replaced is only a wasted prefetch. */
    uint64_t *slot = __atomic_load_n(&p->slot, __ATOMIC_RELAXED);
    size_t cap = __atomic_load_n(&p->cap, __ATOMIC_RELAXED);
    if (slot && cap)
        __builtin_prefetch(slot + pnames_at(key, cap));
}

void store_pnames_added(pdqm_store *s, uint32_t pending_from, uint32_t first, uint32_t end,
                        const uint64_t *keys, const uint32_t *numbers, size_t n)
{
    pending_names *p = s->copies.pnames;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->n == 0 && p->from == p->upto)
        p->from = p->upto = pending_from;
    if (p->from == pending_from && p->upto == first) {
        size_t i = 0;
        enum { AHEAD = 16 };
        for (; i < n; i++) {
            /* (A table that grows meanwhile only wastes these.) */
            if (i + AHEAD < n && p->cap)
                __builtin_prefetch(p->slot + pnames_at(keys[i + AHEAD], p->cap), 1);
            if (pnames_insert(p, keys[i], numbers[i]) != 0)
                break;
        }
        if (i == n)
            p->upto = end;
        else
            pnames_clear(p, pending_from);   /* out of memory: read them later */
    }
    pthread_mutex_unlock(&p->lock);
}

uint64_t *store_pnames_take(pdqm_store *s, uint32_t from, uint32_t to, size_t *n,
                            size_t *bytes)
{
    pending_names *p = s->copies.pnames;
    *n = 0;
    *bytes = 0;
    if (p == NULL)
        return NULL;
    pthread_mutex_lock(&p->lock);
    uint64_t *out = NULL;
    if (p->slot && p->from == from && p->upto >= to) {
        out = p->slot;
        *bytes = p->cap * sizeof *p->slot;
        size_t o = 0;
        for (size_t i = 0; i < p->cap; i++) {
            uint64_t v = out[i];
            if (v == 0)
                continue;
            uint32_t number = (uint32_t)v - 1;
            if (number >= from && number < to)
                out[o++] = (v & ~(uint64_t)0xffffffffu) | number;
        }
        *n = o;
        __atomic_store_n(&p->slot, NULL, __ATOMIC_RELAXED);
        __atomic_store_n(&p->cap, 0, __ATOMIC_RELAXED);
    }
    pnames_clear(p, 0);
    pthread_mutex_unlock(&p->lock);
    return out;
}

void store_pnames_free_taken(uint64_t *v, size_t bytes)
{
    if (v)
        munmap(v, bytes);
}

void store_pnames_reset(pdqm_store *s)
{
    pending_names *p = s->copies.pnames;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    pnames_clear(p, 0);
    pthread_mutex_unlock(&p->lock);
}

void store_pnames_free(pdqm_store *s)
{
    pending_names *p = s->copies.pnames;
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->lock);
    if (p->slot)
        munmap(p->slot, p->cap * sizeof *p->slot);
    free(p);
    s->copies.pnames = NULL;
}

/* Is (bank, id) the item numbered `number` in txn? */
static int is_item(pdqm_store *s, MDB_txn *txn, uint32_t number, uint32_t bank, const char *id,
                   size_t len, MDB_val *value)
{
    MDB_val v;
    content_view c;
    int rc = store_cnum_get(s, txn, number, &v);
    if (rc == 0)
        rc = store_content_read(s, txn, number, &v, &c);
    if (rc != 0)
        return rc;
    if (c.head.bank != bank || c.head.id_len != len || memcmp(c.content_id, id, len) != 0)
        return MDB_NOTFOUND;
    if (value)
        *value = v;
    return 0;
}

int store_content_find_key(pdqm_store *s, MDB_txn *txn, const meta_vals *m, uint64_t key,
                           uint32_t bank, const char *id, size_t len, uint32_t *number,
                           MDB_val *value)
{
    int rc = store_cindex_find(s, txn, key, bank, id, len, number, value);
    if (rc != MDB_NOTFOUND)
        return rc;
    meta_vals own;
    if (m == NULL) {
        if ((rc = store_meta_read(s, txn, &own)) != 0)
            return rc;
        m = &own;
    }
    const uint32_t from = names_from(m);
    if (m->pending_to <= from)
        return MDB_NOTFOUND;
    pending_names *p = s->copies.pnames;
    pthread_mutex_lock(&p->lock);
    if (p->from == from || p->upto == p->from) {
        if (p->from != from)
            pnames_clear(p, from);
        rc = pnames_catch_up(s, txn, p, m->pending_to);
        if (rc == 0 && p->upto >= m->pending_to) {
            rc = MDB_NOTFOUND;
            uint64_t top = key & ~(uint64_t)0xffffffffu;
            for (size_t j = p->cap ? pnames_at(key, p->cap) : 0; p->cap && p->slot[j];
                 j = (j + 1) & (p->cap - 1)) {
                uint64_t v = p->slot[j];
                uint32_t n = (uint32_t)v - 1;
                if ((v & ~(uint64_t)0xffffffffu) != top || n < from ||
                    n >= m->pending_to)
                    continue;
                rc = is_item(s, txn, n, bank, id, len, value);
                if (rc == 0)
                    *number = n;
                if (rc != MDB_NOTFOUND)
                    break;
            }
            pthread_mutex_unlock(&p->lock);
            return rc;
        }
    }
    pthread_mutex_unlock(&p->lock);
    /* The table follows another pending range (this snapshot is older than
     * a pass), or could not be read: the pending items one by one. */
    cnum_iter it;
    uint32_t n;
    MDB_val v;
    int found = 0;
    for (rc = store_cnum_from(s, txn, &it, from, &n, &v); rc == 0 && n < m->pending_to;
         rc = store_cnum_next(&it, &n, &v)) {
        content_view c;
        if ((rc = store_content_read(s, txn, n, &v, &c)) != 0)
            break;
        if (c.head.bank == bank && c.head.id_len == len && memcmp(c.content_id, id, len) == 0) {
            *number = n;
            if (value)
                *value = v;
            found = 1;
            break;
        }
    }
    store_cnum_end(&it);
    if (found)
        return 0;
    return rc == 0 || rc == MDB_NOTFOUND ? MDB_NOTFOUND : rc;
}

int store_content_find(pdqm_store *s, MDB_txn *txn, uint32_t bank, const char *id,
                       size_t len, uint32_t *number, MDB_val *value)
{
    return store_content_find_key(s, txn, NULL, store_content_key(bank, id, len), bank, id, len,
                                  number, value);
}
