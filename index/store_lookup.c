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
 * arena, see store_copies.h), made once and kept across lookups since full
 * blocks never change, so a candidate costs one memory access, prefetched
 * ahead.  Ids are never reused: the copy gives back the memory of ranges
 * whose content is all deleted.
 *
 * Probes read the postings copy when the handle keeps one, else LMDB: a
 * lookup of one query descends the B-tree for each of its keys; a lookup
 * of a batch of queries without the copy first reads every key the batch
 * probes in one forward walk of the cursor (most keys then sit on the page
 * the cursor is on), and its queries take their runs from that.
 *
 * Hashes added deferred and not yet indexed, and searches beyond r = 64 or
 * with too many probes to pay, are answered by scanning records instead.
 */
/* MAP_ANONYMOUS, MAP_NORESERVE, MADV_HUGEPAGE: Linux and the BSDs. */
#define _DEFAULT_SOURCE
#include "store_copies.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Above this many probes a query scans every record instead. */
#define MAX_PROBES 16384
/* From this many queries, a lookup without the postings copy reads the
 * batch's keys in one walk (batch_read()). */
#define BATCH_MIN 16

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
    uint32_t *wide;                  /* wide probes: key << 8 | bits left */
    struct run *wruns;               /* the wide probes that found postings */
    uint32_t *wleft;                 /* and their key << 8 | bits left */
    uint8_t qs[WIDE_SLOTS];          /* the query's wide suffixes (wide_keys) */
    int narrow, wide_too;            /* which layouts hold indexed entries */
    hits *out;
    int disabled_too;                /* PDQM_LOOKUP_DISABLED */
    /* The runs of every key a batch probes (batch_read()), or NULL: the
     * keys as NKEYS bits, the set bits before each 64-bit word, and the
     * run of each set key in key order (in the map: valid for txn). */
    uint64_t *batch_keys;
    uint32_t *batch_rank;
    struct run *batch_runs;
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

/* Room for n candidate ids in se->flat. */
static int flat_room(search *se, size_t n)
{
    if (n <= se->flat_cap)
        return 0;
    size_t cap = n * 2;
    uint32_t *grown = realloc(se->flat, cap * sizeof *grown);
    if (grown == NULL)
        return ENOMEM;
    se->flat = grown;
    se->flat_cap = cap;
    return 0;
}

/* Append to out the ids of a wide value of n postings (ids, then their
 * suffixes) whose suffix is within `left` bits of qs; returns how many.
 * Eight suffixes at a time: each byte's popcount, then its top bit set
 * where the popcount is over `left`. */
static const uint8_t popcount8[256] = {
#define B2(n) n, n + 1, n + 1, n + 2
#define B4(n) B2(n), B2(n + 1), B2(n + 1), B2(n + 2)
#define B6(n) B4(n), B4(n + 1), B4(n + 1), B4(n + 2)
    B6(0), B6(1), B6(1), B6(2)
#undef B2
#undef B4
#undef B6
};

static size_t filter_suffixes(const uint8_t *v, uint32_t n, uint8_t qs, int left,
                              uint32_t *out)
{
    size_t o = 0, i = 0;
    if (left >= 8) {
        memcpy(out, v, (size_t)n * 4);
        return n;
    }
    const uint8_t *suffix = v + 4 * (size_t)n;
    const uint64_t ones = 0x0101010101010101ull, tops = 0x8080808080808080ull;
    const uint64_t q8 = ones * qs, bias = ones * (uint64_t)(0x7f - left);
    /* First the places of the ids that pass, their loads started (at 100M
     * hashes a key's ids span 6 KB, and those that pass are a few cache
     * lines apart: loaded one by one, each would wait for memory). */
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, suffix + i, 8);
        x ^= q8;
        x = x - ((x >> 1) & 0x5555555555555555ull);
        x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
        x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
        for (uint64_t ok = ~(x + bias) & tops; ok; ok &= ok - 1) {
            uint32_t at = (uint32_t)(i + (size_t)(__builtin_ctzll(ok) >> 3));
            __builtin_prefetch(v + 4 * (size_t)at);
            out[o++] = at;
        }
    }
    for (; i < n; i++)
        if (popcount8[suffix[i] ^ qs] <= left)
            out[o++] = (uint32_t)i;
    /* Then the ids. */
    for (size_t j = 0; j < o; j++)
        memcpy(&out[j], v + 4 * (size_t)out[j], 4);
    return o;
}

/* Verify the n candidate ids in se->flat against the query; push the
 * matches. */
POPCNT_CLONES
static int verify(search *se, uint32_t qi, const uint64_t q[4], size_t n)
{
    const uint32_t *ids = se->flat;
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

/* Keys probed per narrow slot at the search's radius (0: more than the
 * masks go to). */
static size_t narrow_per_slot(const search *se)
{
    int flips = se->r_max / SLOTS;
    return flips <= 4 ? (size_t)flip_count[flips + 1] : 0;
}

/* The bits wide slot k is probed within at radius r, or -1 when it is not
 * probed: with r = 11 r' + a, slots 0 .. a within r', the others within
 * r' - 1 (a hash within r of the query cannot be further than that in all
 * of them: that would make (a + 1)(r' + 1) + (10 - a) r' = r + 1 bits). */
static int wide_radius(int r, int k)
{
    return k <= r % WIDE_SLOTS ? r / WIDE_SLOTS : r / WIDE_SLOTS - 1;
}

/* Wide probes a query makes at radius r (0: more than the masks go to). */
static size_t wide_probes(int r)
{
    size_t n = 0;
    for (int k = 0; k < WIDE_SLOTS; k++) {
        int rho = wide_radius(r, k);
        if (rho > 4)
            return 0;
        if (rho >= 0)
            n += (size_t)flip_count[rho + 1];
    }
    return n;
}

/* The probes of a query of the search's layouts (narrow, wide or both),
 * or 0 when its queries scan the records instead. */
static size_t probes_per_query(const search *se)
{
    size_t n = 0;
    if (se->narrow) {
        size_t per_slot = narrow_per_slot(se);
        if (per_slot == 0)
            return 0;
        n += per_slot * SLOTS;
    }
    if (se->wide_too) {
        size_t w = wide_probes(se->r_max);
        if (w == 0)
            return 0;
        n += w;
    }
    return se->r_max > 64 || n > MAX_PROBES ? 0 : n;
}

/* The wide probes of q into se->wide (key << 8 | bits its suffix may
 * differ by), each slot's in key order; returns how many. */
static size_t wide_keys(search *se, const uint64_t q[4])
{
    size_t nw = 0;
    for (int k = 0; k < WIDE_SLOTS; k++) {
        int rho = wide_radius(se->r_max, k);
        if (rho < 0)
            continue;
        uint32_t base = wide_key(q, k, &se->qs[k]);
        uint32_t *seg = se->wide + nw;
        size_t n = (size_t)flip_count[rho + 1];
        for (size_t m = 0; m < n; m++)
            seg[m] = (base ^ flip_masks[m]) << 8 |
                     (uint32_t)(rho - __builtin_popcount(flip_masks[m]));
        qsort(seg, n, sizeof *seg, compare_u32);
        nw += n;
    }
    return nw;
}

/* The probe keys of q into se->keys; returns how many.  Sorted so the
 * cursor walks the tree forward (and cost the copy nothing measurable).
 * A key is slot << 16 | value, so the slots' keys come in order already:
 * each slot's few keys (17 at the default distance) are sorted among
 * themselves, by insertion, which costs a fraction of a qsort of them all
 * (measured: qsort and its comparisons were 8 % of a lookup served over
 * HTTP). */
static size_t probe_keys(search *se, const uint64_t q[4], size_t per_slot)
{
    size_t nk = 0;
    for (int slot = 0; slot < SLOTS; slot++) {
        uint32_t base = slot_key(q, slot);
        uint32_t *seg = se->keys + nk;
        for (size_t m = 0; m < per_slot; m++)
            seg[m] = base ^ flip_masks[m];
        if (per_slot > 64) {
            qsort(seg, per_slot, sizeof *seg, compare_u32);
        } else {
            for (size_t i = 1; i < per_slot; i++) {
                uint32_t v = seg[i];
                size_t j = i;
                for (; j > 0 && seg[j - 1] > v; j--)
                    seg[j] = seg[j - 1];
                seg[j] = v;
            }
        }
        nk += per_slot;
    }
    return nk;
}

/* The run of key in a value read from LMDB; MDB_CORRUPTED when the value
 * cannot be one of that key's. */
static int run_of(uint32_t key, const MDB_val *v, run *out)
{
    size_t n = posting_count(key, v->mv_size);
    if (n == (size_t)-1 || n > UINT32_MAX)
        return MDB_CORRUPTED;
    *out = (run){ v->mv_data, (uint32_t)n };
    return 0;
}

/* For a batch of queries probing LMDB: mark every key they probe, then
 * read each key's run in key order, one cursor walking forward, so that
 * most keys are found on the page the cursor is on (LMDB searches that
 * page first) instead of by a descent from the root each.  Returns 0, or
 * an LMDB error; with ENOMEM the queries probe one by one instead. */
static int batch_read(search *se, const pdqm_hash256 *queries, size_t n, size_t per_slot)
{
    const size_t words = NKEYS_ALL / 64;
    se->batch_keys = calloc(words, sizeof *se->batch_keys);
    se->batch_rank = malloc(words * sizeof *se->batch_rank);
    if (se->batch_keys == NULL || se->batch_rank == NULL)
        return ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t nk = se->narrow ? probe_keys(se, queries[i].w, per_slot) : 0;
        for (size_t k = 0; k < nk; k++)
            se->batch_keys[se->keys[k] / 64] |= (uint64_t)1 << (se->keys[k] % 64);
        size_t nw = se->wide_too ? wide_keys(se, queries[i].w) : 0;
        for (size_t k = 0; k < nw; k++) {
            uint32_t key = se->wide[k] >> 8;
            se->batch_keys[key / 64] |= (uint64_t)1 << (key % 64);
        }
    }
    uint32_t total = 0;
    for (size_t w = 0; w < words; w++) {
        se->batch_rank[w] = total;
        total += (uint32_t)__builtin_popcountll(se->batch_keys[w]);
    }
    se->batch_runs = malloc(((size_t)total + 1) * sizeof *se->batch_runs);
    if (se->batch_runs == NULL)
        return ENOMEM;
    uint32_t at = 0;
    for (size_t w = 0; w < words; w++)
        for (uint64_t bits = se->batch_keys[w]; bits; bits &= bits - 1) {
            uint32_t key = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
            MDB_val k = { 4, &key }, v;
            int rc = mdb_cursor_get(se->cur, &k, &v, MDB_SET_KEY);
            if (rc == MDB_NOTFOUND)
                se->batch_runs[at++] = (run){ NULL, 0 };
            else if (rc != 0 || (rc = run_of(key, &v, &se->batch_runs[at++])) != 0)
                return rc;
        }
    return 0;
}

/* The run of one probe key: from the postings copy, the batch's runs, or
 * LMDB.  0 (n 0 when nothing is posted there), or an LMDB error. */
static int probe_run(search *se, uint32_t key, run *out)
{
    const postings_cache *pc = se->pc;
    out->n = 0;
    if (pc && !(pc->stale[key / 64] & ((uint64_t)1 << (key % 64))) &&
        (pc->dir[key].p != NULL || pc->dir[key].n == 0)) {
        *out = (run){ pc->dir[key].p, pc->dir[key].n };
        return 0;
    }
    if (se->batch_runs) {
        const uint64_t word = se->batch_keys[key / 64];
        const uint64_t below = word & (((uint64_t)1 << (key % 64)) - 1);
        *out = se->batch_runs[se->batch_rank[key / 64] + (uint32_t)__builtin_popcountll(below)];
        return 0;
    }
    MDB_val k = { 4, &key }, v;
    int rc = mdb_cursor_get(se->cur, &k, &v, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc != 0 ? rc : run_of(key, &v, out);
}

static int search_one(search *se, uint32_t qi, const pdqm_hash256 *query)
{
    const uint64_t *q = query->w;
    const size_t first_hit = se->out->n;
    int rc = 0;

    if (probes_per_query(se) == 0) {
        rc = scan(se, qi, q, 0, se->rv.n_entries);
        goto dedup;
    }
    /* The narrow keys, for the narrow postings and for the pending index. */
    const size_t per_slot = narrow_per_slot(se);
    size_t nk = se->narrow || se->pi ? probe_keys(se, q, per_slot) : 0;

    /* Every candidate first, then verify, prefetching across them.
     * Pointers into the map stay valid for the transaction. */
    size_t nruns = 0, total = 0;
    if (se->narrow) {
        if (se->pc)
            for (size_t i = 0; i < nk; i++)   /* the directory's entries, in flight together */
                __builtin_prefetch(&se->pc->dir[se->keys[i]]);
        for (size_t i = 0; i < nk; i++) {
            run x;
            if ((rc = probe_run(se, se->keys[i], &x)) != 0)
                return rc;
            if (x.n > 0) {
                se->runs[nruns++] = x;
                total += x.n;
            }
        }
    }
    if ((rc = flat_room(se, total)) != 0)
        return rc;
    size_t n = 0;
    for (size_t r = 0; r < nruns; r++) {
        memcpy(se->flat + n, se->runs[r].ids, (size_t)se->runs[r].n * 4);
        n += se->runs[r].n;
    }
    if (se->wide_too) {
        /* Each wide key's ids whose suffix is close enough: the keys' runs
         * first, then their suffixes read a few keys ahead. */
        size_t nw = wide_keys(se, q);
        if (se->pc)
            for (size_t i = 0; i < nw; i++)
                __builtin_prefetch(&se->pc->dir[se->wide[i] >> 8]);
        size_t nwr = 0, wtotal = 0;
        for (size_t i = 0; i < nw; i++) {
            run x;
            if ((rc = probe_run(se, se->wide[i] >> 8, &x)) != 0)
                return rc;
            if (x.n > 0) {
                se->wruns[nwr] = x;
                se->wleft[nwr++] = se->wide[i];
                wtotal += x.n;
            }
        }
        if ((rc = flat_room(se, n + wtotal)) != 0)
            return rc;
        enum { WAHEAD = 8 };
        for (size_t i = 0; i < nwr && i < WAHEAD; i++)
            __builtin_prefetch(se->wruns[i].ids + 4 * (size_t)se->wruns[i].n);
        for (size_t i = 0; i < nwr; i++) {
            if (i + WAHEAD < nwr)
                __builtin_prefetch(se->wruns[i + WAHEAD].ids + 4 * (size_t)se->wruns[i + WAHEAD].n);
            uint32_t key = se->wleft[i] >> 8;
            n += filter_suffixes(se->wruns[i].ids, se->wruns[i].n, se->qs[(key - WIDE_KEY0) >> 16],
                                 (int)(se->wleft[i] & 0xff), se->flat + n);
        }
    }
    rc = verify(se, qi, q, n);
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

static pdqm_status build_matches(search *se, const bank_table *banks, hits *h,
                                 pdqm_matches *out, pdqm_error *err)
{
    out->items = calloc(h->n ? h->n : 1, sizeof *out->items);
    if (out->items == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for matches");
    /* Strings go into one arena, sized in a first pass, which also drops
     * the hits of disabled content (pdqm_content_disabled: read once a
     * match, when its record is read anyway). */
    size_t total = 0, kept = 0;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < h->n; i++) {
        uint32_t c;
        MDB_val v;
        int rc = store_content_of_entry(se->s, se->txn, h->v[i].id, &c, &v);
        content_view cv;
        if (rc != 0 || store_content_decode(c, &v, &cv) != 0)
            return store_lmdb_error(err, rc ? rc : MDB_CORRUPTED, "cannot read a match");
        if (!se->disabled_too && pdqm_content_disabled(cv.head.disabled_until, now))
            continue;
        h->v[kept++] = h->v[i];
        total += cv.head.id_len + 1 + (cv.metadata ? cv.head.meta_len + 1 : 0);
    }
    h->n = kept;
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
        if (cv.id_from_hash) {
            record first = record_at(&se->rv, c);   /* the item's first hash */
            store_content_name_by_hash(&cv, first.hash);
        }
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

/* splitmix64: the draws of one thread, seeded once from the clock and the
 * thread's address (a coinflip needs no secrecy, only spread). */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int pdqm_bank_takes_part(double enabled_ratio, double draw, unsigned flags)
{
    return (flags & PDQM_LOOKUP_ALL_BANKS) || (enabled_ratio > 0 && enabled_ratio >= draw);
}

double pdqm_lookup_draw(const char *seed)
{
    static _Thread_local uint64_t state;
    uint64_t x;
    if (seed) {
        x = 0xcbf29ce484222325ull;   /* FNV-1a of the seed, mixed */
        for (const unsigned char *p = (const unsigned char *)seed; *p; p++)
            x = (x ^ *p) * 0x100000001b3ull;
        x = mix64(x);
    } else {
        if (state == 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            state = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
                    (uint64_t)(uintptr_t)&state;
        }
        x = mix64(state++);
    }
    /* 53 random bits, as (0, 1]. */
    return (double)((x >> 11) + 1) / 9007199254740992.0;
}


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
    pdqm_lookup_options defaults = { -1, NULL, 0, 0, 0 };
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
    se.disabled_too = (options->flags & PDQM_LOOKUP_DISABLED) != 0;
    const double draw = options->draw < 0 ? pdqm_lookup_draw(NULL) : options->draw;
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

    pthread_rwlock_rdlock(&s->tx.resize_lock);
    locked = 1;
    int rc = store_txn_begin(s, MDB_RDONLY, &se.txn);
    if (rc == 0)
        rc = store_meta_read(s, se.txn, &se.meta);
    if (rc == 0)
        rc = mdb_cursor_open(se.txn, s->db.postings, &se.cur);
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
        /* The bank's enabled ratio against the lookup's draw. */
        if (!wanted || !pdqm_bank_takes_part(bank_ratio(&banks->recs[i]), draw, options->flags))
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
    if ((rc = store_cache_fill(s, se.txn, se.rv.full, se.meta.next_entry, dead)) != 0) {
        st = store_lmdb_error(err, rc, "cannot read the store");
        goto done;
    }
    pthread_mutex_lock(&s->copies.cache_lock);
    se.rv.arena = s->copies.arena;
    se.rv.arena_n = s->copies.arena_n < se.meta.next_entry ? s->copies.arena_n : se.meta.next_entry;
    pthread_mutex_unlock(&s->copies.cache_lock);
    if (se.meta.next_entry % RECORDS_PER_BLOCK) {
        uint32_t b = se.rv.full;
        MDB_val k = { 4, &b }, v;
        rc = mdb_get(se.txn, s->db.records, &k, &v);
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
        /* Which layouts hold indexed entries, and room for the probes of
         * the widest radius (272 narrow and 1,387 wide at r = 31). */
        pthread_once(&masks_once, build_masks);
        se.narrow = se.meta.wide_from > 0;
        se.wide_too = se.meta.wide_from < se.meta.next_entry;
        size_t probes = probes_per_query(&se);
        int flips = se.r_max / SLOTS;
        size_t narrow = flips <= 4 ? (size_t)flip_count[flips + 1] * SLOTS : 1;
        se.keys = malloc(narrow * sizeof *se.keys);
        se.runs = malloc(narrow * sizeof *se.runs);
        se.wide = malloc((probes ? probes : 1) * sizeof *se.wide);
        se.wruns = malloc((probes ? probes : 1) * sizeof *se.wruns);
        se.wleft = malloc((probes ? probes : 1) * sizeof *se.wleft);
        if (!se.keys || !se.runs || !se.wide || !se.wruns || !se.wleft) {
            st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a lookup");
            goto done;
        }
        postings_cache *pc = s->copies.pcache;
        atomic_fetch_add_explicit(&pc->lookups, 1, memory_order_relaxed);
        int cached = store_pcache_acquire(s, se.txn, pc, se.meta.pgen);
        se.pc = cached ? pc : NULL;
        /* Pending entries: indexed in memory by a handle that looks up
         * often, or for a batch of queries; scanned by a one-off lookup. */
        pending_index *pi = NULL;
        uint32_t pending = se.meta.pending_to - se.meta.pending_from;
        if (probes > 0 && narrow > 1 && pending >= PINDEX_MIN &&
            (atomic_load_explicit(&pc->lookups, memory_order_relaxed) >= PCACHE_AFTER ||
             n >= 16)) {
            pi = s->copies.pindex;
            if (!store_pindex_acquire(pi, &se.rv, se.meta.pending_from, se.meta.pending_to))
                pi = NULL;
        }
        se.pi = pi;
        if (!cached && probes > 0 && n >= BATCH_MIN) {
            rc = batch_read(&se, queries, n, narrow_per_slot(&se));
            if (rc == ENOMEM) {   /* then one by one */
                free(se.batch_runs);
                se.batch_runs = NULL;
                rc = 0;
            }
        }
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
        pthread_rwlock_unlock(&s->tx.resize_lock);
    if (have_banks)
        store_bank_table_free(banks);
    free(banks);
    free(radius);
    free(se.keys);
    free(se.runs);
    free(se.wide);
    free(se.wruns);
    free(se.wleft);
    free(se.flat);
    free(se.batch_keys);
    free(se.batch_rank);
    free(se.batch_runs);
    free(h.v);
    free(parts);
    return st;
}
