/*
 * store_lookup.c - exact Hamming-radius search.
 *
 * Multi-index hashing: a stored hash within r bits of the query agrees
 * with it to within floor(r/16) bits in at least one of the 16 slots
 * (pigeonhole).  So each slot's value is probed with every variant of up to
 * floor(r/16) flipped bits; the ids posted under those keys are candidates,
 * verified against the full hash in the records array.  Candidates are not
 * deduplicated (most appear once, and a set costs more than verifying
 * twice): only the matches are.
 *
 * Verification reads a copy of the hashes of the full records blocks (the
 * arena, see store_int.h), made once and kept across lookups since full
 * blocks never change, so a candidate costs one memory access, prefetched
 * ahead.  Ids are never reused: the copy gives back the memory of ranges
 * whose content is all deleted.
 *
 * Hashes added deferred and not yet indexed, and searches beyond r = 64 or
 * with too many probes to pay, are answered by scanning records instead.
 */
/* MAP_ANONYMOUS, MAP_NORESERVE, MADV_HUGEPAGE: Linux and the BSDs. */
#define _DEFAULT_SOURCE
#include "store_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Above this many probes a query scans every record instead. */
#define MAX_PROBES 16384

/* ------------------------------------------------------------------ */
/* Flip masks: every 16-bit mask of popcount <= 4, by popcount          */

static uint16_t flip_masks[1 + 16 + 120 + 560 + 1820];
static int flip_count[6];   /* masks with popcount < t: flip_count[t] */
static pthread_once_t masks_once = PTHREAD_ONCE_INIT;

static void build_masks(void)
{
    int n = 0;
    for (int bits = 0; bits <= 4; bits++) {
        for (uint32_t m = 0; m < 65536; m++)
            if (__builtin_popcount(m) == bits)
                flip_masks[n++] = (uint16_t)m;
        flip_count[bits + 1] = n;
    }
}

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
        s->arena_map = p;
        s->arena_map_bytes = bytes;
        s->arena = (uint8_t *)start;
        s->arena_cap = cap;
        s->arena_gone = gone;
        return;
    }
    s->arena_cap = 1;   /* tried: lookups read the blocks instead */
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
    uint32_t upto = s->arena_n < next_entry ? s->arena_n : next_entry;
    uint32_t chunks = upto / ARENA_CHUNK;
    if (chunks == s->arena_chunks_seen && dead < s->arena_dead_seen + ARENA_CHUNK / 4)
        return;
    for (uint32_t c = 0; c < chunks; c++) {
        if (s->arena_gone[c] || !ids_dead(s, txn, c * ARENA_CHUNK, (c + 1) * ARENA_CHUNK))
            continue;
        if (madvise(s->arena + (size_t)c * ARENA_CHUNK_BYTES, ARENA_CHUNK_BYTES,
                    MADV_DONTNEED) == 0)
            s->arena_gone[c] = 1;
    }
    s->arena_chunks_seen = chunks;
    s->arena_dead_seen = dead;
}

/* Copy the hashes of cached blocks not yet in the arena (see store_int.h),
 * reserving it first, then give back what deletes have emptied.  Called
 * with cache_lock held. */
static void arena_fill(pdqm_store *s, MDB_txn *txn, uint32_t next_entry, uint64_t dead)
{
    if (s->arena == NULL && s->arena_cap == 0)
        arena_reserve(s);
    if (s->arena == NULL)
        return;
    while (s->arena_n / RECORDS_PER_BLOCK < s->cache_blocks &&
           (size_t)s->arena_n + RECORDS_PER_BLOCK <= s->arena_cap) {
        uint32_t b = s->arena_n / RECORDS_PER_BLOCK;
        const uint8_t *block = s->cache[b / CACHE_CHUNK][b % CACHE_CHUNK];
        memcpy(s->arena + (size_t)s->arena_n * 32, block_hash(block, 0),
               (size_t)RECORDS_PER_BLOCK * 32);
        s->arena_n += RECORDS_PER_BLOCK;
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
    pthread_mutex_lock(&s->cache_lock);
    uint64_t bytes = (uint64_t)s->arena_n * 32;
    for (uint32_t c = 0; s->arena && c < s->arena_n / ARENA_CHUNK; c++)
        if (s->arena_gone[c])
            bytes -= ARENA_CHUNK_BYTES;
    pthread_mutex_unlock(&s->cache_lock);
    return bytes;
}

/* Make sure blocks 0..full-1 have cached pointers (taken in txn, whose
 * next_entry and dead ids arena_trim wants). */
static int cache_fill(pdqm_store *s, MDB_txn *txn, uint32_t full, uint32_t next_entry,
                      uint64_t dead)
{
    int rc = 0;
    pthread_mutex_lock(&s->cache_lock);
    while (s->cache_blocks < full) {
        uint32_t b = s->cache_blocks;
        uint32_t dir = b / CACHE_CHUNK;
        if (dir >= CACHE_DIR) {
            rc = ENOMEM;
            break;
        }
        if (s->cache[dir] == NULL) {
            s->cache[dir] = calloc(CACHE_CHUNK, sizeof(const uint8_t *));
            if (s->cache[dir] == NULL) {
                rc = ENOMEM;
                break;
            }
        }
        MDB_val k = { 4, &b }, v;
        rc = mdb_get(txn, s->records, &k, &v);
        if (rc == 0 && v.mv_size != BLOCK_BYTES)
            rc = MDB_CORRUPTED;
        if (rc != 0)
            break;
        s->cache[dir][b % CACHE_CHUNK] = v.mv_data;
        s->cache_blocks = b + 1;
    }
    if (rc == 0)
        arena_fill(s, txn, next_entry, dead);
    pthread_mutex_unlock(&s->cache_lock);
    return rc;
}

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
    return b < rv->full ? rv->s->cache[b / CACHE_CHUNK][b % CACHE_CHUNK] : rv->tail;
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

/* ------------------------------------------------------------------ */
/* The in-memory copy of the postings                                   */

/* A long-lived handle (a server, a benchmark) probes a copy of the
 * postings in memory: offsets and ids in two arrays, a probe two loads,
 * where LMDB's B-tree costs a dozen dependent cache misses.  The copy is
 * of one postings generation; keys that later transactions changed are
 * marked stale (from pchanges, see store_int.h) and probed in LMDB; when
 * too many are stale, or the log does not reach back, the copy is made
 * anew.  A handle builds it only after PCACHE_AFTER lookups, so a one-shot
 * command never pays for it, and only up to PCACHE_MAX_IDS postings.  Its
 * memory (64 bytes a hash) is reserved once, on transparent huge pages,
 * and committed only as it is written. */
#define NKEYS ((uint32_t)SLOTS << 16)
#define PCACHE_AFTER 64
#define PCACHE_MAX_IDS ((size_t)256 << 20)  /* 1 GiB of ids: 16M hashes */

typedef struct postings_cache {
    pthread_rwlock_t lock;   /* shared while probing, exclusive to change */
    int valid;
    int disabled;            /* the postings are over PCACHE_MAX_IDS */
    uint32_t gen;            /* the generation copied */
    uint32_t seen;           /* stale marks cover changes up to here */
    uint32_t *offsets;       /* NKEYS + 1 */
    uint32_t *ids;
    uint64_t *stale;         /* NKEYS bits */
    size_t n_stale;
    atomic_ulong lookups;    /* lookups made through this handle */
} postings_cache;

void store_pcache_free(pdqm_store *s)
{
    postings_cache *c = s->pcache;
    if (c == NULL)
        return;
    pthread_rwlock_destroy(&c->lock);
    if (c->offsets)
        munmap(c->offsets, ((size_t)NKEYS + 1) * sizeof *c->offsets);
    if (c->ids)
        munmap(c->ids, PCACHE_MAX_IDS * sizeof *c->ids);
    free(c->stale);
    free(c);
    s->pcache = NULL;
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

/* Copy every posting of txn's snapshot.  Called with the lock exclusive. */
static int pcache_build(pdqm_store *s, MDB_txn *txn, postings_cache *c, uint32_t gen)
{
    c->valid = 0;
    if (c->offsets == NULL)
        c->offsets = reserve(((size_t)NKEYS + 1) * sizeof *c->offsets);
    if (c->ids == NULL)
        c->ids = reserve(PCACHE_MAX_IDS * sizeof *c->ids);
    if (c->stale == NULL)
        c->stale = malloc(NKEYS / 8);
    if (c->offsets == NULL || c->ids == NULL || c->stale == NULL) {
        c->disabled = 1;
        return ENOMEM;
    }
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->postings, &cur);
    if (rc != 0)
        return rc;
    size_t n = 0;
    uint32_t next_key = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t key;
        memcpy(&key, k.mv_data, 4);
        if (key >= NKEYS || v.mv_size % 4) {
            rc = MDB_CORRUPTED;
            break;
        }
        while (next_key <= key)
            c->offsets[next_key++] = (uint32_t)n;
        size_t m = v.mv_size / 4;
        if (n + m > PCACHE_MAX_IDS) {
            c->disabled = 1;   /* too large to keep: LMDB it is */
            break;
        }
        memcpy(c->ids + n, v.mv_data, v.mv_size);
        n += m;
    }
    mdb_cursor_close(cur);
    if (c->disabled || rc != MDB_NOTFOUND)
        return rc == MDB_NOTFOUND ? 0 : rc;
    while (next_key <= NKEYS)
        c->offsets[next_key++] = (uint32_t)n;
    memset(c->stale, 0, NKEYS / 8);
    c->n_stale = 0;
    c->gen = c->seen = gen;
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
        int rc = mdb_get(txn, s->pchanges, &k, &v);
        if (rc != 0)
            return rc;
        if (v.mv_size == 0 || v.mv_size % 4)
            return MDB_NOTFOUND;      /* too many keys changed to list */
        const uint8_t *p = v.mv_data;
        for (size_t i = 0; i < v.mv_size / 4; i++) {
            uint32_t key;
            memcpy(&key, p + 4 * i, 4);
            if (key >= NKEYS)
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
static int pcache_acquire(pdqm_store *s, MDB_txn *txn, postings_cache *c, uint32_t gen)
{
    if (c->disabled)
        return 0;
    pthread_rwlock_rdlock(&c->lock);
    if (c->valid && c->gen <= gen && gen <= c->seen)
        return 1;
    pthread_rwlock_unlock(&c->lock);

    pthread_rwlock_wrlock(&c->lock);
    int rc = 0;
    if (c->valid && gen > c->seen) {
        rc = pcache_catch_up(s, txn, c, gen);
        if (rc != 0 || c->n_stale > NKEYS / 8)
            c->valid = 0;
    }
    if (!c->valid && !c->disabled &&
        atomic_load_explicit(&c->lookups, memory_order_relaxed) >= PCACHE_AFTER)
        rc = pcache_build(s, txn, c, gen);
    (void)rc;   /* a failed copy only means probing LMDB */
    pthread_rwlock_unlock(&c->lock);

    pthread_rwlock_rdlock(&c->lock);
    if (c->valid && c->gen <= gen && gen <= c->seen)
        return 1;
    pthread_rwlock_unlock(&c->lock);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The in-memory index of pending entries                               */

/* Entries added deferred and not yet in the postings (see store_write.c)
 * would cost every lookup a scan of them.  A handle that looks up often
 * indexes them in memory instead, as they come: for each of the 16 slot
 * keys of an entry a node, chained from the key's head, newest first.
 * head and next hold 1 + a node's number (0: none); node n is slot
 * n % SLOTS of entry from + n / SLOTS.  A lookup walks the chains of its
 * probe keys, skipping entries its snapshot does not have yet.  When the
 * pending range starts anew (an indexing pass emptied it), so does this.
 * 64 bytes a pending entry, and 4 MiB of heads. */
#define PINDEX_MIN 1024   /* fewer pending entries: scanning them is cheaper */

typedef struct pending_index {
    pthread_rwlock_t lock;   /* shared while probing, exclusive to change */
    uint32_t from, upto;     /* entries from .. upto-1 are indexed */
    uint32_t *head;          /* NKEYS */
    uint32_t *next;          /* a node each */
    size_t cap;              /* entries next has room for */
} pending_index;

void store_pindex_free(pdqm_store *s)
{
    pending_index *p = s->pindex;
    if (p == NULL)
        return;
    pthread_rwlock_destroy(&p->lock);
    free(p->head);
    free(p->next);
    free(p);
    s->pindex = NULL;
}

/* The two structures are made with the handle (their memory comes later,
 * as they fill), so lookups need no lock to find them. */
pdqm_status store_caches_init(pdqm_store *s, pdqm_error *err)
{
    s->pcache = calloc(1, sizeof *s->pcache);
    s->pindex = calloc(1, sizeof *s->pindex);
    if (s->pcache == NULL || s->pindex == NULL) {
        free(s->pcache);
        free(s->pindex);
        s->pcache = NULL;
        s->pindex = NULL;
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory opening a store");
    }
    pthread_rwlock_init(&s->pcache->lock, NULL);
    pthread_rwlock_init(&s->pindex->lock, NULL);
    return PDQM_OK;
}

/* Bring the index up to the pending range [from, to) of a snapshot whose
 * records rv shows.  Returns 1 when it covers the range (its lock then held
 * shared), 0 when this lookup should scan instead: the snapshot is older
 * than the index, or memory ran out. */
static int pindex_acquire(pending_index *p, const record_view *rv, uint32_t from, uint32_t to)
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
/* Growing arrays                                                       */

typedef struct hit {
    uint32_t query;
    uint32_t id;
    int distance;
} hit;

typedef struct hits {
    hit *v;
    size_t n, cap;
} hits;

static int hits_push(hits *h, uint32_t query, uint32_t id, int distance)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        hit *grown = realloc(h->v, cap * sizeof *grown);
        if (grown == NULL)
            return ENOMEM;
        h->v = grown;
        h->cap = cap;
    }
    h->v[h->n++] = (hit){ query, id, distance };
    return 0;
}

/* ------------------------------------------------------------------ */
/* One query                                                            */

typedef struct search {
    pdqm_store *s;
    MDB_txn *txn;
    MDB_cursor *cur;
    record_view rv;
    meta_vals meta;
    const int16_t *radius_of_bank;   /* by bank id: -1 when excluded */
    struct run *runs;                /* candidate runs, one a probe */
    uint32_t *flat;                  /* the runs' ids, copied together */
    size_t flat_cap;
    const postings_cache *pc;        /* usable copy of the postings, or NULL */
    const pending_index *pi;         /* usable index of pending entries, or NULL */
    int r_max;
    uint32_t *keys;                  /* probe keys, room for r_max's probes */
    hits *out;
} search;

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Verify a posting array (u32 ids, possibly unaligned in the map) against
 * the query; push matches. */
/* Built twice, for CPUs with and without the POPCNT instruction (every
 * x86-64 since 2008 has it, but Debian's baseline does not assume it);
 * the loader picks one at start. */
#if defined(__x86_64__) && defined(__GNUC__)
#define POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define POPCNT_CLONES
#endif

/* A run of candidate ids: a posting array, in the map or in the copy
 * (u32s, possibly unaligned in the map: copied, never dereferenced). */
typedef struct run {
    const uint8_t *ids;
    uint32_t n;
} run;

POPCNT_CLONES
static int verify(search *se, uint32_t qi, const uint64_t q[4], const run *runs, size_t nruns)
{
    /* Copy the runs into one array first: the lookahead is then a plain
     * index, which measured faster than walking the runs twice. */
    size_t n = 0;
    for (size_t r = 0; r < nruns; r++)
        n += runs[r].n;
    if (n > se->flat_cap) {
        size_t cap = n * 2;
        uint32_t *grown = realloc(se->flat, cap * sizeof *grown);
        if (grown == NULL)
            return ENOMEM;
        se->flat = grown;
        se->flat_cap = cap;
    }
    uint32_t *ids = se->flat;
    size_t o = 0;
    for (size_t r = 0; r < nruns; r++) {
        memcpy(ids + o, runs[r].ids, (size_t)runs[r].n * 4);
        o += runs[r].n;
    }
    enum { AHEAD = 192 };
    for (size_t i = 0; i < n && i < AHEAD; i++)
        __builtin_prefetch(hash_at(&se->rv, ids[i]));
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n)
            __builtin_prefetch(hash_at(&se->rv, ids[i + AHEAD]));
        int d = hash_distance(hash_at(&se->rv, ids[i]), q);
        if (d > se->r_max)
            continue;
        /* Within reach of some bank: now the record, for its bank, and for
         * the distance again (the arena may have zeros: see arena_trim). */
        record rec = record_at(&se->rv, ids[i]);
        d = hash_distance(rec.hash, q);
        if (d <= se->radius_of_bank[rec.bank]) {
            int rc = hits_push(se->out, qi, ids[i], d);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* A pending entry (or any, in a scan) within r_max of q by the arena:
 * keep it when its bank is searched as far as its record's distance and
 * its content still exists (postings tell liveness elsewhere, but not
 * here).  Entries of one content item sit together: [*live_from,
 * *live_to) remembers the last live item's range rather than asking for
 * each entry. */
static int check_entry(search *se, uint32_t qi, const uint64_t q[4], uint32_t id,
                       uint64_t *live_from, uint64_t *live_to)
{
    record rec = record_at(&se->rv, id);
    int d = hash_distance(rec.hash, q);   /* again: see verify() */
    if (d > se->radius_of_bank[rec.bank])
        return 0;
    if (id < *live_from || id >= *live_to) {
        uint32_t number;
        MDB_val v;
        content_view c;
        int rc = store_content_of_entry(se->s, se->txn, id, &number, &v);
        if (rc == MDB_NOTFOUND)
            return 0;   /* its content was deleted */
        if (rc != 0)
            return rc;
        if (store_content_decode(number, &v, &c) != 0)
            return MDB_CORRUPTED;
        *live_from = number;
        *live_to = (uint64_t)number + c.head.n_hashes;
    }
    return hits_push(se->out, qi, id, d);
}

/* Scan the records of [from, to). */
POPCNT_CLONES
static int scan(search *se, uint32_t qi, const uint64_t q[4], uint32_t from, uint32_t to)
{
    uint64_t live_from = 1, live_to = 0;
    for (uint32_t id = from; id < to; id++) {
        int d = hash_distance(hash_at(&se->rv, id), q);
        if (d > se->r_max)
            continue;
        int rc = check_entry(se, qi, q, id, &live_from, &live_to);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The pending entries [from, to) posted under the probe keys, from the
 * in-memory index. */
POPCNT_CLONES
static int probe_pending(search *se, uint32_t qi, const uint64_t q[4], const uint32_t *keys,
                         size_t nk, uint32_t to)
{
    const pending_index *p = se->pi;
    uint64_t live_from = 1, live_to = 0;
    for (size_t i = 0; i < nk; i++) {
        for (uint32_t node = p->head[keys[i]]; node != 0; node = p->next[node - 1]) {
            uint32_t id = p->from + (node - 1) / SLOTS;
            if (id >= to)
                continue;   /* newer than this snapshot */
            int d = hash_distance(hash_at(&se->rv, id), q);
            if (d > se->r_max)
                continue;
            int rc = check_entry(se, qi, q, id, &live_from, &live_to);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int compare_hit_id(const void *pa, const void *pb)
{
    const hit *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

static int search_one(search *se, uint32_t qi, const pdqm_hash256 *query)
{
    const uint64_t *q = query->w;
    const size_t first_hit = se->out->n;
    int flips = se->r_max / SLOTS;
    size_t per_slot = flips <= 4 ? (size_t)flip_count[flips + 1] : 65536;
    int rc = 0;

    if (se->r_max > 64 || per_slot * SLOTS > MAX_PROBES) {
        rc = scan(se, qi, q, 0, se->rv.n_entries);
        goto dedup;
    }

    /* Probe keys, sorted so the cursor walks the tree forward. */
    size_t nk = 0;
    for (int slot = 0; slot < SLOTS; slot++) {
        uint32_t base = slot_key(q, slot);
        for (size_t m = 0; m < per_slot; m++)
            se->keys[nk++] = base ^ flip_masks[m];
    }
    /* Keys in order let LMDB's cursor walk its tree forward (and cost the
     * copy nothing measurable). */
    qsort(se->keys, nk, sizeof *se->keys, compare_u32);

    /* Every candidate run first, then verify, prefetching across runs.
     * Pointers into the map stay valid for the transaction. */
    size_t nruns = 0;
    if (se->pc)
        for (size_t i = 0; i < nk; i++)   /* the copy's offsets, in flight together */
            __builtin_prefetch(&se->pc->offsets[se->keys[i]]);
    for (size_t i = 0; i < nk; i++) {
        uint32_t key = se->keys[i];
        const postings_cache *pc = se->pc;
        if (pc && !(pc->stale[key / 64] & ((uint64_t)1 << (key % 64)))) {
            uint32_t from = pc->offsets[key], to = pc->offsets[key + 1];
            if (to > from) {
                __builtin_prefetch(pc->ids + from);
                se->runs[nruns++] = (run){ (const uint8_t *)(pc->ids + from), to - from };
            }
            continue;
        }
        MDB_val k = { 4, &key }, v;
        rc = mdb_cursor_get(se->cur, &k, &v, MDB_SET_KEY);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        se->runs[nruns++] = (run){ v.mv_data, (uint32_t)(v.mv_size / 4) };
    }
    rc = verify(se, qi, q, se->runs, nruns);
    if (rc != 0)
        return rc;
    /* Deferred entries, not in the postings yet. */
    if (se->pi)
        rc = probe_pending(se, qi, q, se->keys, nk, se->meta.pending_to);
    else if (se->meta.pending_to > se->meta.pending_from)
        rc = scan(se, qi, q, se->meta.pending_from, se->meta.pending_to);

dedup:
    if (rc != 0)
        return rc;
    /* A hash close in several slots is found several times: keep one. */
    {
        size_t n = se->out->n - first_hit, w = 0;
        if (n > 1) {   /* (and v is not NULL: no arithmetic on a NULL v) */
            hit *h = se->out->v + first_hit;
            qsort(h, n, sizeof *h, compare_hit_id);
            for (size_t i = 0; i < n; i++)
                if (w == 0 || h[w - 1].id != h[i].id)
                    h[w++] = h[i];
            se->out->n = first_hit + w;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Building the answer                                                  */

static int compare_match(const void *pa, const void *pb)
{
    const pdqm_match *a = pa, *b = pb;
    if (a->query != b->query)
        return a->query < b->query ? -1 : 1;
    if (a->distance != b->distance)
        return a->distance < b->distance ? -1 : 1;
    return (a->entry > b->entry) - (a->entry < b->entry);
}

static pdqm_status build_matches(search *se, const bank_table *banks, const hits *h,
                                 pdqm_matches *out, pdqm_error *err)
{
    out->items = calloc(h->n ? h->n : 1, sizeof *out->items);
    if (out->items == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for matches");
    /* Strings go into one arena, sized in a first pass. */
    size_t total = 0;
    for (size_t i = 0; i < h->n; i++) {
        uint32_t c;
        MDB_val v;
        int rc = store_content_of_entry(se->s, se->txn, h->v[i].id, &c, &v);
        content_view cv;
        if (rc != 0 || store_content_decode(c, &v, &cv) != 0)
            return store_lmdb_error(err, rc ? rc : MDB_CORRUPTED, "cannot read a match");
        total += cv.head.id_len + 1 + (cv.metadata ? cv.head.meta_len + 1 : 0);
    }
    char *arena = malloc(total ? total : 1);
    if (arena == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for matches");
    out->storage = arena;
    char *p = arena;
    for (size_t i = 0; i < h->n; i++) {
        const hit *x = &h->v[i];
        record rec = record_at(&se->rv, x->id);
        const record *r = &rec;
        uint32_t c;
        MDB_val v;
        content_view cv;
        store_content_of_entry(se->s, se->txn, x->id, &c, &v);   /* read above */
        store_content_decode(c, &v, &cv);
        pdqm_match *m = &out->items[i];
        m->query = x->query;
        m->distance = x->distance;
        memcpy(m->hash.w, r->hash, 32);
        m->quality = r->quality;
        m->entry = x->id;
        m->content = c;
        m->kind = (pdqm_content_kind)cv.head.kind;
        int bi = banks->by_id[r->bank];
        m->bank = bi >= 0 ? banks->names[bi] : "?";
        m->bank_kind = bi >= 0 ? (pdqm_bank_kind)banks->recs[bi].kind : PDQM_BANK_BLOCK;
        m->bank_threshold = bi >= 0 ? (int)banks->recs[bi].threshold : PDQM_DEFAULT_THRESHOLD;
        if (cv.timestamps && x->id >= cv.head.first_entry)
            memcpy(&m->timestamp, cv.timestamps + 8 * (size_t)(x->id - cv.head.first_entry), 8);
        memcpy(p, cv.content_id, cv.head.id_len);
        p[cv.head.id_len] = '\0';
        m->content_id = p;
        p += cv.head.id_len + 1;
        if (cv.metadata) {
            memcpy(p, cv.metadata, cv.head.meta_len);
            p[cv.head.meta_len] = '\0';
            m->metadata = p;
            p += cv.head.meta_len + 1;
        }
    }
    out->count = h->n;
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* The entry point                                                      */

void pdqm_matches_free(pdqm_matches *m)
{
    if (m == NULL)
        return;
    /* Bank names point into a table freed with the storage. */
    free(m->items);
    if (m->storage) {
        void **parts = m->storage;
        free(parts[0]);
        free(parts[1]);
        free(parts);
    }
    memset(m, 0, sizeof *m);
}

pdqm_status pdqm_store_lookup(pdqm_store *s, const pdqm_hash256 *queries, size_t n,
                              const pdqm_lookup_options *options, pdqm_matches *out,
                              pdqm_error *err)
{
    memset(out, 0, sizeof *out);
    pthread_once(&masks_once, build_masks);
    pdqm_lookup_options defaults = { -1, NULL, 0 };
    if (options == NULL)
        options = &defaults;
    if (options->max_distance < -1 || options->max_distance > PDQM_MAX_DISTANCE)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a distance is 0 to 256 bits, not %d", options->max_distance);
    if (n > UINT32_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "too many queries");

    search se;
    memset(&se, 0, sizeof se);
    se.s = s;
    hits h = { NULL, 0, 0 };
    se.out = &h;
    bank_table *banks = malloc(sizeof *banks);
    int16_t *radius = NULL;

    void **parts = calloc(2, sizeof *parts);
    pdqm_status st = PDQM_OK;
    int have_banks = 0, locked = 0;
    if (!banks || !parts) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a lookup");
        goto done;
    }

    pthread_rwlock_rdlock(&s->resize_lock);
    locked = 1;
    int rc = store_txn_begin(s, MDB_RDONLY, &se.txn);
    if (rc == 0)
        rc = store_meta_read(s, se.txn, &se.meta);
    if (rc == 0)
        rc = mdb_cursor_open(se.txn, s->postings, &se.cur);
    if (rc != 0) {
        st = store_lmdb_error(err, rc, "cannot read the store");
        goto done;
    }
    if ((st = store_bank_table(s, se.txn, banks, err)) != PDQM_OK)
        goto done;
    have_banks = 1;

    /* Which banks, and each one's radius (by id; -1: not searched).  Every
     * record's bank id is at most max_id, deleted banks' included. */
    radius = malloc(((size_t)banks->max_id + 1) * sizeof *radius);
    if (radius == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a lookup");
        goto done;
    }
    for (size_t i = 0; i <= banks->max_id; i++)
        radius[i] = -1;
    se.r_max = -1;
    for (size_t i = 0; i < banks->count; i++) {
        int wanted = options->banks == NULL;
        for (size_t j = 0; !wanted && j < options->n_banks; j++)
            wanted = strcmp(options->banks[j], banks->names[i]) == 0;
        if (!wanted)
            continue;
        int r = options->max_distance >= 0 ? options->max_distance : banks->recs[i].threshold;
        radius[banks->recs[i].id] = (int16_t)r;
        if (r > se.r_max)
            se.r_max = r;
    }
    for (size_t j = 0; options->banks && j < options->n_banks; j++) {
        int known = 0;
        for (size_t i = 0; i < banks->count && !known; i++)
            known = strcmp(options->banks[j], banks->names[i]) == 0;
        if (!known) {
            st = pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", options->banks[j]);
            goto done;
        }
    }
    se.radius_of_bank = radius;

    /* Records: cached full blocks, and the tail block of this snapshot. */
    se.rv.s = s;
    se.rv.n_entries = se.meta.next_entry;
    se.rv.full = se.meta.next_entry / RECORDS_PER_BLOCK;
    uint64_t dead = se.meta.next_entry > banks->hashes ? se.meta.next_entry - banks->hashes : 0;
    if ((rc = cache_fill(s, se.txn, se.rv.full, se.meta.next_entry, dead)) != 0) {
        st = store_lmdb_error(err, rc, "cannot read the store");
        goto done;
    }
    pthread_mutex_lock(&s->cache_lock);
    se.rv.arena = s->arena;
    se.rv.arena_n = s->arena_n < se.meta.next_entry ? s->arena_n : se.meta.next_entry;
    pthread_mutex_unlock(&s->cache_lock);
    if (se.meta.next_entry % RECORDS_PER_BLOCK) {
        uint32_t b = se.rv.full;
        MDB_val k = { 4, &b }, v;
        rc = mdb_get(se.txn, s->records, &k, &v);
        se.rv.tail_n = se.meta.next_entry % RECORDS_PER_BLOCK;
        if (rc == 0 && block_count(v.mv_size) != se.rv.tail_n)
            rc = MDB_CORRUPTED;
        if (rc != 0) {
            st = store_lmdb_error(err, rc, "cannot read the store");
            goto done;
        }
        se.rv.tail = v.mv_data;
    }

    if (se.r_max >= 0 && se.meta.next_entry > 0) {
        /* Room for the probes of the widest radius (272 at r = 31). */
        pthread_once(&masks_once, build_masks);
        int flips = se.r_max / SLOTS;
        size_t probes = flips <= 4 ? (size_t)flip_count[flips + 1] * SLOTS : 1;
        if (probes > MAX_PROBES)
            probes = 1;   /* a scan: no probes */
        se.keys = malloc(probes * sizeof *se.keys);
        se.runs = malloc(probes * sizeof *se.runs);
        if (!se.keys || !se.runs) {
            st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a lookup");
            goto done;
        }
        postings_cache *pc = s->pcache;
        atomic_fetch_add_explicit(&pc->lookups, 1, memory_order_relaxed);
        int cached = pcache_acquire(s, se.txn, pc, se.meta.pgen);
        se.pc = cached ? pc : NULL;
        /* Pending entries: indexed in memory by a handle that looks up
         * often, or for a batch of queries; scanned by a one-off lookup. */
        pending_index *pi = NULL;
        uint32_t pending = se.meta.pending_to - se.meta.pending_from;
        if (probes > 1 && pending >= PINDEX_MIN &&
            (atomic_load_explicit(&pc->lookups, memory_order_relaxed) >= PCACHE_AFTER ||
             n >= 16)) {
            pi = s->pindex;
            if (!pindex_acquire(pi, &se.rv, se.meta.pending_from, se.meta.pending_to))
                pi = NULL;
        }
        se.pi = pi;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = search_one(&se, (uint32_t)i, &queries[i]);
        if (pi)
            pthread_rwlock_unlock(&pi->lock);
        se.pi = NULL;
        if (cached)
            pthread_rwlock_unlock(&pc->lock);
        se.pc = NULL;
        if (rc != 0) {
            st = store_lmdb_error(err, rc, "cannot search the store");
            goto done;
        }
    }
    st = build_matches(&se, banks, &h, out, err);
    if (st == PDQM_OK) {
        qsort(out->items, out->count, sizeof *out->items, compare_match);
        /* The bank names live in the bank table: keep it with the arena. */
        parts[0] = out->storage;
        parts[1] = banks->names;
        out->storage = parts;
        parts = NULL;
        banks->names = NULL;
    } else {
        free(out->items);
        free(out->storage);
        memset(out, 0, sizeof *out);
    }

done:
    if (se.cur)
        mdb_cursor_close(se.cur);
    if (se.txn)
        mdb_txn_abort(se.txn);
    if (locked)
        pthread_rwlock_unlock(&s->resize_lock);
    if (have_banks)
        store_bank_table_free(banks);
    free(banks);
    free(radius);
    free(se.keys);
    free(se.runs);
    free(se.flat);
    free(h.v);
    free(parts);
    return st;
}
