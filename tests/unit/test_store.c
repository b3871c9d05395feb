/*
 * test_store.c - the LMDB store of index/store.h.
 *
 * Lookups must equal a brute force over the live hashes at every radius
 * (a gen.py-style corpus, added directly or deferred, with deletes and
 * re-adds; and the slot-boundary worst cases of multi-index hashing).
 * Then banks, add outcomes and all-or-nothing batches, deletes,
 * persistence, open errors, schema, a shared handle across threads, walk,
 * stats, verify and compact.
 *
 * Every test gets a new store in its own mkdtemp() folder under /tmp (the
 * fixture), removed afterwards.  Hashes come from a fixed-seed splitmix64.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "../../hashing/hash256.h"
#include "../../index/store.h"

#define COUNT(a) (sizeof (a) / sizeof (a)[0])

/* ------------------------------------------------------------------ */
/* Status checks: the last call's error, printed when a check fails.    */

static pdqm_error err;

#define assert_status(call, want)                                            \
    do {                                                                     \
        pdqm_error_clear(&err);                                              \
        pdqm_status st_ = (call);                                            \
        if (st_ != (want))                                                   \
            fail_msg("%s: got %s (%s), expected %s", #call,                  \
                     pdqm_status_token(st_), pdqm_error_message(&err),       \
                     pdqm_status_token(want));                               \
    } while (0)

#define assert_ok(call) assert_status(call, PDQM_OK)

#define assert_fails(call)                                                   \
    do {                                                                     \
        pdqm_error_clear(&err);                                              \
        pdqm_status st_ = (call);                                            \
        if (st_ == PDQM_OK)                                                  \
            fail_msg("%s: succeeded, expected an error", #call);             \
    } while (0)

/* ------------------------------------------------------------------ */
/* Deterministic hashes                                                 */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)   /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t rng_below(rng *r, uint32_t n)
{
    return (uint32_t)(rng_next(r) % n);
}

static pdqm_hash256 rand_hash(rng *r)
{
    pdqm_hash256 h;
    for (int i = 0; i < 4; i++)
        h.w[i] = rng_next(r);
    return h;
}

/* h with k distinct bits flipped (a partial Fisher-Yates over 0..255). */
static pdqm_hash256 flip(rng *r, pdqm_hash256 h, int k)
{
    uint8_t pos[256];
    for (int i = 0; i < 256; i++)
        pos[i] = (uint8_t)i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)rng_below(r, (uint32_t)(256 - i));
        uint8_t t = pos[i];
        pos[i] = pos[j];
        pos[j] = t;
        h.w[pos[i] >> 6] ^= (uint64_t)1 << (pos[i] & 63);
    }
    return h;
}

static bool hash_eq(const pdqm_hash256 *a, const pdqm_hash256 *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

/* ------------------------------------------------------------------ */
/* Files and the fixture                                                */

static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The whole file (free()), or NULL when it cannot be read. */
static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *buf = NULL;
    if (pdqm_read_file(path, (size_t)1 << 30, &buf, len, NULL) != PDQM_OK)
        return NULL;
    return buf;
}

typedef struct fixture {
    char dir[64];
    char path[128];      /* dir/store.db */
    pdqm_store *store;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    unsetenv("PDQM_WIDE_AT");   /* the layout by size, whatever a test before set */
    unsetenv("PDQM_PASS_CHUNK");
    unsetenv("PDQM_STEP_FROM");
    unsetenv("PDQM_STEP_KEYS");
    snprintf(f->dir, sizeof f->dir, "/tmp/pdqm-test-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/store.db", f->dir);
    pdqm_error e;
    if (pdqm_store_open(f->path, PDQM_STORE_CREATE, &f->store, &e) != PDQM_OK) {
        fprintf(stderr, "cannot create %s: %s\n", f->path, pdqm_error_message(&e));
        rm_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pdqm_store_close(f->store);
    rm_tree(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static pdqm_stored_hash sh(pdqm_hash256 h, int quality, double ts)
{
    pdqm_stored_hash s = {h, quality, ts};
    return s;
}

/* Add one content item with one hash; returns the outcome. */
static pdqm_add_outcome add1(pdqm_store *s, const char *bank, const char *cid,
                             pdqm_hash256 h, const char *sha256)
{
    pdqm_stored_hash one = sh(h, 100, 0);
    pdqm_add a = {bank, cid, NULL, sha256, NULL, PDQM_CONTENT_IMAGE, &one, 1, 0};
    pdqm_add_outcome o = (pdqm_add_outcome)-1;
    assert_ok(pdqm_store_add(s, &a, 1, &o, &err));
    return o;
}

static pdqm_matches lookup(pdqm_store *s, const pdqm_hash256 *q, size_t n,
                           int max_distance, const char *const *banks, size_t nb)
{
    pdqm_lookup_options o = {max_distance, banks, nb};
    pdqm_matches m;
    assert_ok(pdqm_store_lookup(s, q, n, &o, &m, &err));
    return m;
}

/* Number of matches of one query at a radius over all banks. */
static size_t count_matches(pdqm_store *s, pdqm_hash256 q, int r)
{
    pdqm_matches m = lookup(s, &q, 1, r, NULL, 0);
    size_t n = m.count;
    pdqm_matches_free(&m);
    return n;
}

static pdqm_store_stats stats(pdqm_store *s)
{
    pdqm_store_stats st;
    assert_ok(pdqm_store_stats_get(s, &st, &err));
    return st;
}

static void assert_verified(pdqm_store *s)
{
    uint64_t problems = 99;
    assert_ok(pdqm_store_verify(s, &problems, &err));
    assert_int_equal(problems, 0);
}

/* A flattened match, comparable with memcmp (for reopen and compact). */
typedef struct flat_match {
    size_t query;
    int distance;
    int quality;
    double timestamp;
    pdqm_hash256 hash;
    uint32_t entry, content;
    int kind, bank_kind;
    char bank[PDQM_BANK_NAME_MAX + 1];
    char content_id[40];
    char metadata[40];
} flat_match;

static flat_match *flatten(pdqm_store *s, const pdqm_hash256 *q, size_t n,
                           int r, size_t *count)
{
    pdqm_matches m = lookup(s, q, n, r, NULL, 0);
    flat_match *out = calloc(m.count + 1, sizeof *out);
    assert_non_null(out);
    for (size_t i = 0; i < m.count; i++) {
        const pdqm_match *x = &m.items[i];
        flat_match *y = &out[i];
        y->query = x->query;
        y->distance = x->distance;
        y->quality = x->quality;
        y->timestamp = x->timestamp;
        y->hash = x->hash;
        y->entry = x->entry;
        y->content = x->content;
        y->kind = (int)x->kind;
        y->bank_kind = (int)x->bank_kind;
        snprintf(y->bank, sizeof y->bank, "%s", x->bank);
        snprintf(y->content_id, sizeof y->content_id, "%s", x->content_id);
        snprintf(y->metadata, sizeof y->metadata, "%s", x->metadata ? x->metadata : "(null)");
    }
    *count = m.count;
    pdqm_matches_free(&m);
    return out;
}

static void assert_same_matches(const flat_match *a, size_t na,
                                const flat_match *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]) != 0)
            fail_msg("match %zu differs: query %zu %s/%s d=%d entry %u vs "
                     "query %zu %s/%s d=%d entry %u", i,
                     a[i].query, a[i].bank, a[i].content_id, a[i].distance, a[i].entry,
                     b[i].query, b[i].bank, b[i].content_id, b[i].distance, b[i].entry);
}

/* A small corpus in the gen.py style: n contents "p<i>" in bank, every
 * fourth a near-duplicate of an earlier one; returns queries near them. */
static void fill_small(pdqm_store *s, const char *bank, rng *r, int n,
                       pdqm_hash256 *queries, int nq)
{
    pdqm_hash256 *h = malloc((size_t)n * sizeof *h);
    pdqm_stored_hash *sh_ = malloc((size_t)n * sizeof *sh_);
    pdqm_add *adds = calloc((size_t)n, sizeof *adds);
    char (*ids)[16] = malloc((size_t)n * sizeof *ids);
    assert_true(h && sh_ && adds && ids);
    for (int i = 0; i < n; i++) {
        h[i] = (i % 4 == 3) ? flip(r, h[rng_below(r, (uint32_t)i)], (int)rng_below(r, 41))
                            : rand_hash(r);
        sh_[i] = sh(h[i], (int)rng_below(r, 101), 0);
        snprintf(ids[i], sizeof ids[i], "p%d", i);
        adds[i] = (pdqm_add){bank, ids[i], (i % 3 == 0) ? "{\"i\":1}" : NULL, NULL, NULL,
                             PDQM_CONTENT_HASHES, &sh_[i], 1, 0};
    }
    assert_ok(pdqm_store_add(s, adds, (size_t)n, NULL, &err));
    for (int i = 0; i < nq; i++)
        queries[i] = (i % 2) ? rand_hash(r) : flip(r, h[rng_below(r, (uint32_t)n)],
                                                   (int)rng_below(r, 40));
    free(h);
    free(sh_);
    free(adds);
    free(ids);
}

/* ------------------------------------------------------------------ */
/* 1. Lookups equal a brute force over the live hashes, at every radius */

#define EX_BASES 16000           /* uniform hashes */
#define EX_DUPS 4000             /* near-duplicates, k ~ U{0..40} flips */
#define EX_HOT 8                 /* hot bases: 10% of the duplicates */
#define EX_FIRST (EX_BASES + EX_DUPS)
#define EX_NEW 200               /* contents added after the deletes */
#define EX_READD 100             /* deleted ids added again, new hashes */
#define EX_CONTENTS (EX_FIRST + EX_NEW)
#define EX_FRAMES 3              /* every 40th content is a 3-frame video */
#define EX_QUERIES 300

typedef struct ex_content {
    pdqm_stored_hash h[EX_FRAMES];
    int n;
    bool live;
    uint32_t number;             /* seen in matches, UINT32_MAX until then */
    uint32_t entry[EX_FRAMES];
} ex_content;

typedef struct ex_tuple {
    uint32_t query, content;
    uint16_t distance, frame;
} ex_tuple;

static int ex_tuple_cmp(const void *pa, const void *pb)
{
    const ex_tuple *a = pa, *b = pb;
    if (a->query != b->query) return a->query < b->query ? -1 : 1;
    if (a->distance != b->distance) return a->distance < b->distance ? -1 : 1;
    if (a->content != b->content) return a->content < b->content ? -1 : 1;
    if (a->frame != b->frame) return a->frame < b->frame ? -1 : 1;
    return 0;
}

static void ex_add_range(pdqm_store *s, ex_content *c, const uint32_t *which,
                         size_t n, size_t batch, bool deferred)
{
    pdqm_add *adds = calloc(batch, sizeof *adds);
    pdqm_add_outcome *out = calloc(batch, sizeof *out);
    char (*ids)[16] = calloc(batch, sizeof *ids);
    assert_true(adds && out && ids);
    for (size_t at = 0; at < n; at += batch) {
        size_t k = n - at < batch ? n - at : batch;
        for (size_t i = 0; i < k; i++) {
            uint32_t ci = which[at + i];
            snprintf(ids[i], sizeof ids[i], "c%u", ci);
            adds[i] = (pdqm_add){"b", ids[i], NULL, NULL, NULL,
                                 c[ci].n > 1 ? PDQM_CONTENT_VIDEO : PDQM_CONTENT_HASHES,
                                 c[ci].h, (size_t)c[ci].n, 0};
            out[i] = (pdqm_add_outcome)-1;
        }
        if (deferred)
            assert_ok(pdqm_store_add_deferred(s, adds, k, out, &err));
        else
            assert_ok(pdqm_store_add(s, adds, k, out, &err));
        for (size_t i = 0; i < k; i++) {
            assert_int_equal(out[i], PDQM_ADDED);
            c[which[at + i]].live = true;
        }
    }
    free(adds);
    free(out);
    free(ids);
}

static void ex_fill_content(rng *r, ex_content *c, pdqm_hash256 first)
{
    c->number = UINT32_MAX;   /* not seen in a match yet */
    memset(c->entry, 0xff, sizeof c->entry);
    c->n = (rng_below(r, 40) == 0) ? EX_FRAMES : 1;
    for (int f = 0; f < c->n; f++) {
        pdqm_hash256 h = f == 0 ? first : flip(r, first, (int)rng_below(r, 41));
        c->h[f] = sh(h, (int)rng_below(r, 101), (double)f);
    }
}

/* Compare one lookup at radius r with the brute force; dist[q][i] is the
 * distance of query q to live[i]. */
static void ex_check_radius(pdqm_store *s, ex_content *c, size_t n_contents,
                            const pdqm_hash256 *q, size_t nq, int r,
                            const ex_tuple *live, size_t nlive, const uint16_t *dist)
{
    size_t cap = 1024, ne = 0;
    ex_tuple *want = malloc(cap * sizeof *want);
    assert_non_null(want);
    for (size_t qi = 0; qi < nq; qi++)
        for (size_t i = 0; i < nlive; i++) {
            uint16_t d = dist[qi * nlive + i];
            if (d > r)
                continue;
            if (ne == cap) {
                cap *= 2;
                want = realloc(want, cap * sizeof *want);
                assert_non_null(want);
            }
            want[ne++] = (ex_tuple){(uint32_t)qi, live[i].content, d, live[i].frame};
        }
    qsort(want, ne, sizeof *want, ex_tuple_cmp);

    pdqm_matches m = lookup(s, q, nq, r, NULL, 0);
    ex_tuple *got = malloc((m.count + 1) * sizeof *got);
    assert_non_null(got);
    for (size_t i = 0; i < m.count; i++) {
        const pdqm_match *x = &m.items[i];
        if (x->query >= nq)
            fail_msg("r=%d: match %zu names query %zu of %zu", r, i, x->query, nq);
        if (i > 0) {   /* sorted by query, then distance, then entry */
            const pdqm_match *p = &m.items[i - 1];
            bool ordered = p->query < x->query ||
                (p->query == x->query && (p->distance < x->distance ||
                 (p->distance == x->distance && p->entry < x->entry)));
            if (!ordered)
                fail_msg("r=%d: matches %zu (q%zu d%d e%u) and %zu (q%zu d%d e%u) out of order",
                         r, i - 1, p->query, p->distance, p->entry, i, x->query,
                         x->distance, x->entry);
        }
        unsigned ci;
        if (strcmp(x->bank, "b") != 0 || sscanf(x->content_id, "c%u", &ci) != 1 ||
            ci >= n_contents)
            fail_msg("r=%d: match %zu is %s/%s", r, i, x->bank, x->content_id);
        int frame = (int)x->timestamp;
        if ((double)frame != x->timestamp || frame < 0 || frame >= c[ci].n)
            fail_msg("r=%d: match %zu: c%u has no frame at %g", r, i, ci, x->timestamp);
        ex_content *cc = &c[ci];
        if (!cc->live)
            fail_msg("r=%d: match %zu: c%u was deleted", r, i, ci);
        assert_true(hash_eq(&x->hash, &cc->h[frame].hash));
        assert_int_equal(x->distance, pdqm_hash256_distance(&q[x->query], &x->hash));
        assert_int_equal(x->quality, cc->h[frame].quality);
        assert_int_equal(x->kind, cc->n > 1 ? PDQM_CONTENT_VIDEO : PDQM_CONTENT_HASHES);
        assert_int_equal(x->bank_kind, PDQM_BANK_BLOCK);
        assert_null(x->metadata);
        if (cc->number == UINT32_MAX) {
            cc->number = x->content;
            cc->entry[frame] = x->entry;
        } else {   /* the same numbers every time */
            assert_int_equal(x->content, cc->number);
            if (cc->entry[frame] == UINT32_MAX)
                cc->entry[frame] = x->entry;
            assert_int_equal(x->entry, cc->entry[frame]);
        }
        got[i] = (ex_tuple){(uint32_t)x->query, ci, (uint16_t)x->distance, (uint16_t)frame};
    }
    size_t ng = m.count;
    pdqm_matches_free(&m);
    qsort(got, ng, sizeof *got, ex_tuple_cmp);

    /* Report the differences, a few of each kind, before failing. */
    size_t i = 0, j = 0, missing = 0, extra = 0;
    while (i < ne || j < ng) {
        int cmp = i == ne ? 1 : j == ng ? -1 : ex_tuple_cmp(&want[i], &got[j]);
        if (cmp == 0) {
            i++, j++;
        } else if (cmp < 0) {
            if (missing++ < 5)
                print_error("r=%d: missing q%u c%u frame %u d=%u\n", r, want[i].query,
                            want[i].content, want[i].frame, want[i].distance);
            i++;
        } else {
            if (extra++ < 5)
                print_error("r=%d: extra q%u c%u frame %u d=%u\n", r, got[j].query,
                            got[j].content, got[j].frame, got[j].distance);
            j++;
        }
    }
    if (missing || extra)
        fail_msg("r=%d, %zu queries: %zu matches, expected %zu (%zu missing, %zu extra)",
                 r, nq, ng, ne, missing, extra);
    free(want);
    free(got);
}

typedef struct ex_radius {
    int r;
    size_t nq;
} ex_radius;

/* Every radius around the slot boundaries; fewer queries where the answer
 * is large or the lookup is a full scan. */
static const ex_radius ex_all_radii[] = {
    {0, 300}, {1, 300}, {15, 300}, {16, 300}, {17, 300}, {31, 300},
    {32, 300}, {47, 300}, {48, 300}, {63, 300}, {64, 300}, {65, 60},
    {100, 20}, {256, 3},
};
static const ex_radius ex_some_radii[] = {
    {0, 300}, {16, 300}, {31, 300}, {64, 300}, {65, 60}, {256, 2},
};

/* Check the store against a brute force over the live hashes of c[0..n),
 * with the first nq of the n_queries queries at each radius. */
static void ex_check(pdqm_store *s, ex_content *c, size_t n_contents,
                     const pdqm_hash256 *q, size_t n_queries,
                     const ex_radius *radii, size_t n_radii)
{
    size_t nlive = 0, ncontents = 0;
    ex_tuple *live = malloc(n_contents * EX_FRAMES * sizeof *live);
    assert_non_null(live);
    for (uint32_t i = 0; i < n_contents; i++)
        if (c[i].live) {
            ncontents++;
            for (int fr = 0; fr < c[i].n; fr++)
                live[nlive++] = (ex_tuple){0, i, 0, (uint16_t)fr};
        }
    pdqm_store_stats st = stats(s);
    assert_int_equal(st.contents, ncontents);
    assert_int_equal(st.hashes, nlive);

    uint16_t *dist = malloc(n_queries * nlive * sizeof *dist + 1);
    assert_non_null(dist);
    for (size_t qi = 0; qi < n_queries; qi++)
        for (size_t i = 0; i < nlive; i++)
            dist[qi * nlive + i] = (uint16_t)pdqm_hash256_distance(
                &q[qi], &c[live[i].content].h[live[i].frame].hash);
    for (size_t i = 0; i < n_radii; i++)
        ex_check_radius(s, c, n_contents, q, radii[i].nq < n_queries ? radii[i].nq : n_queries,
                        radii[i].r, live, nlive, dist);
    free(dist);
    free(live);
}

static void ex_index_pending(pdqm_store *s, uint64_t pending_live)
{
    uint64_t before = stats(s).pending, indexed = UINT64_MAX;
    assert_true(before >= pending_live);
    assert_ok(pdqm_store_index_pending(s, &indexed, &err));
    assert_true(indexed >= pending_live && indexed <= before);
    assert_int_equal(stats(s).pending, 0);
    assert_verified(s);
}

/* The corpus of gen.py: uniform hashes and near-duplicates, added in
 * batches, a tenth deleted, a few hundred more added; then every lookup
 * must equal the brute force.  Deferred: the adds go through
 * pdqm_store_add_deferred() and lookups are also checked with hashes
 * pending (found by scanning) and after indexing them. */
static void ex_run_radii(pdqm_store *s, bool deferred, const ex_radius *radii, size_t n_radii)
{
    rng r = {deferred ? 20240602u : 20240601u};
    assert_ok(pdqm_store_bank_create(s, "b", PDQM_DEFAULT_THRESHOLD, PDQM_BANK_BLOCK, &err));

    ex_content *c = calloc(EX_CONTENTS, sizeof *c);
    pdqm_hash256 *pool = malloc(EX_FIRST * sizeof *pool);
    uint32_t *which = malloc(EX_CONTENTS * sizeof *which);
    uint32_t *deleted = malloc(EX_FIRST * sizeof *deleted);
    assert_true(c && pool && which && deleted);

    /* Uniform bases, then near-duplicates with distinct flips, a tenth of
     * them off a few hot bases; shuffled like gen.py. */
    uint32_t hot[EX_HOT];
    for (int i = 0; i < EX_HOT; i++)
        hot[i] = rng_below(&r, EX_BASES);
    for (uint32_t i = 0; i < EX_BASES; i++)
        pool[i] = rand_hash(&r);
    for (uint32_t i = EX_BASES; i < EX_FIRST; i++) {
        uint32_t base = rng_below(&r, 10) == 0 ? hot[rng_below(&r, EX_HOT)]
                                               : rng_below(&r, EX_BASES);
        pool[i] = flip(&r, pool[base], (int)rng_below(&r, 41));
    }
    for (uint32_t i = EX_FIRST - 1; i > 0; i--) {
        uint32_t j = rng_below(&r, i + 1);
        pdqm_hash256 t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
    }
    uint64_t nhashes = 0;
    for (uint32_t i = 0; i < EX_FIRST; i++) {
        ex_fill_content(&r, &c[i], pool[i]);
        nhashes += (uint64_t)c[i].n;
        which[i] = i;
    }
    ex_add_range(s, c, which, EX_FIRST, 2500, deferred);
    assert_int_equal(stats(s).pending, deferred ? nhashes : 0);

    /* Delete about a tenth one by one (a twentieth when deferred: each
     * delete is a transaction, synced to disk). */
    const uint32_t one_in = deferred ? 20 : 10;
    uint32_t ndel = 0;
    uint64_t deleted_hashes = 0;
    char id[16];
    for (uint32_t i = 0; i < EX_FIRST; i++)
        if (rng_below(&r, one_in) == 0) {
            snprintf(id, sizeof id, "c%u", i);
            assert_ok(pdqm_store_delete(s, "b", id, &err));
            c[i].live = false;
            deleted[ndel++] = i;
            deleted_hashes += (uint64_t)c[i].n;
        }
    assert_true(ndel > EX_FIRST / one_in * 3 / 4);

    /* Some more to add: deleted ids again with hashes near their old ones,
     * new near-duplicates of deleted hashes, new uniform hashes. */
    uint32_t nmore = 0;
    for (uint32_t i = 0; i < EX_READD; i++) {
        uint32_t ci = deleted[i * (ndel / EX_READD)];
        ex_fill_content(&r, &c[ci], flip(&r, c[ci].h[0].hash, 1 + (int)rng_below(&r, 20)));
        which[nmore++] = ci;
    }
    for (uint32_t i = EX_FIRST; i < EX_CONTENTS; i++) {
        pdqm_hash256 h = (i % 2) ? rand_hash(&r)
            : flip(&r, c[deleted[rng_below(&r, ndel)]].h[0].hash, (int)rng_below(&r, 11));
        ex_fill_content(&r, &c[i], h);
        which[nmore++] = i;
    }

    /* Queries: planted ones d ~ U{0..63} flips off a hash of any content
     * (deleted ones too), alternating with uniform ones. */
    pdqm_hash256 q[EX_QUERIES];
    for (int i = 0; i < EX_QUERIES; i++) {
        if (i % 2) {
            q[i] = rand_hash(&r);
        } else {
            ex_content *src = &c[rng_below(&r, EX_CONTENTS)];
            q[i] = flip(&r, src->h[rng_below(&r, (uint32_t)src->n)].hash,
                        (int)rng_below(&r, 64));
        }
    }

    if (deferred) {   /* all pending, some deleted */
        ex_check(s, c, EX_CONTENTS, q, EX_QUERIES, ex_some_radii, COUNT(ex_some_radii));
        ex_index_pending(s, nhashes - deleted_hashes);
        ex_check(s, c, EX_CONTENTS, q, EX_QUERIES, ex_some_radii, COUNT(ex_some_radii));
    }
    ex_add_range(s, c, which, nmore, 50, deferred);
    ex_check(s, c, EX_CONTENTS, q, EX_QUERIES, radii, n_radii);
    if (deferred) {   /* indexed and pending mixed, then all indexed */
        assert_true(stats(s).pending > 0);
        ex_index_pending(s, 0);
        ex_check(s, c, EX_CONTENTS, q, EX_QUERIES, ex_some_radii, COUNT(ex_some_radii));
    }
    assert_verified(s);

    free(deleted);
    free(which);
    free(pool);
    free(c);
}

static void ex_run(pdqm_store *s, bool deferred)
{
    ex_run_radii(s, deferred, ex_all_radii, COUNT(ex_all_radii));
}

static void test_exact_lookups(void **state)
{
    fixture *f = *state;
    ex_run(f->store, false);
}

static void test_exact_lookups_deferred(void **state)
{
    fixture *f = *state;
    ex_run(f->store, true);
}

/* h with per_slot[j] distinct bits flipped in slot j, the bits
 * 16j..16j+15 (slot j of store.h's 16 slots of 16 bits, taken as the
 * hash's 16-bit words). */
static pdqm_hash256 flip_slots(rng *r, pdqm_hash256 h, const int *per_slot)
{
    for (int j = 0; j < 16; j++) {
        uint16_t mask = 0;
        for (int done = 0; done < per_slot[j];) {
            uint16_t bit = (uint16_t)(1u << rng_below(r, 16));
            if (!(mask & bit)) {
                mask |= bit;
                done++;
            }
        }
        h.w[j / 4] ^= (uint64_t)mask << (16 * (j % 4));
    }
    return h;
}

/* The worst cases of multi-index hashing: bits flipped evenly across the
 * slots, so that no slot is closer than floor(d/16) (d = 16k, k in every
 * slot) or only one is (d = 16k + 15: k + 1 in fifteen slots, k in one).
 * Random flips almost never do that.  Every radius near a slot boundary
 * must still equal the brute force. */
typedef pdqm_hash256 (*slot_flipper)(rng *r, pdqm_hash256 h, const int *per_slot);

/* The boundary cases of a layout of n_slots slots (flip puts per_slot[j]
 * distinct bits in slot j), for k = 0 .. k_max bits a slot: `bases` queries
 * for each k, each with three stored hashes (k in every slot; k + 1 in
 * all but one; k - 1 in one), among FILL random ones; indexed, then
 * checked at radii against the brute force. */
static void boundary_run(pdqm_store *s, uint64_t seed, int n_slots, int k_max, int bases,
                         slot_flipper flip, const ex_radius *radii, size_t n_radii)
{
    rng r = {seed};
    enum { FILL = 500 };
    const size_t nq = (size_t)(k_max + 1) * (size_t)bases, N = nq * 3 + FILL;
    assert_ok(pdqm_store_bank_create(s, "b", 31, PDQM_BANK_BLOCK, &err));
    ex_content *c = calloc(N, sizeof *c);
    pdqm_hash256 *q = calloc(nq, sizeof *q);
    uint32_t *which = calloc(N, sizeof *which);
    assert_true(c && q && which);
    size_t n = 0;
    for (int k = 0; k <= k_max; k++)
        for (int b = 0; b < bases; b++) {
            pdqm_hash256 base = rand_hash(&r);
            q[(size_t)k * (size_t)bases + (size_t)b] = base;
            int even[16], uneven[16], near[16];
            int low = (int)rng_below(&r, (uint32_t)n_slots);
            for (int j = 0; j < n_slots; j++) {
                even[j] = k;
                uneven[j] = j == low ? k : k + 1;
                near[j] = j == low ? (k > 0 ? k - 1 : 0) : k;   /* n_slots k - 1 */
            }
            c[n++].h[0] = sh(flip(&r, base, even), 50, 0);
            c[n++].h[0] = sh(flip(&r, base, uneven), 50, 0);
            c[n++].h[0] = sh(flip(&r, base, near), 50, 0);
        }
    while (n < N)
        c[n++].h[0] = sh(rand_hash(&r), 50, 0);
    for (uint32_t i = 0; i < N; i++) {
        c[i].n = 1;
        c[i].number = UINT32_MAX;
        memset(c[i].entry, 0xff, sizeof c[i].entry);
        which[i] = i;
    }
    ex_add_range(s, c, which, N, 100, false);
    assert_ok(pdqm_store_index_pending(s, NULL, &err));   /* (small adds wait for a pass) */
    ex_check(s, c, N, q, nq, radii, n_radii);
    free(c);
    free(q);
    free(which);
}

static void test_exact_slot_boundaries(void **state)
{
    fixture *f = *state;
    static const ex_radius radii[] = {
        {0, 50}, {1, 50}, {14, 50}, {15, 50}, {16, 50}, {17, 50}, {30, 50},
        {31, 50}, {32, 50}, {33, 50}, {46, 50}, {47, 50}, {48, 50}, {49, 50},
        {62, 50}, {63, 50}, {64, 50}, {65, 50}, {79, 50}, {80, 50},
    };
    boundary_run(f->store, 46, 16, 4, 10, flip_slots, radii, COUNT(radii));
    assert_int_equal(stats(f->store).wide_from, -1);
}

/* ------------------------------------------------------------------ */
/* 1b. The wide layout, and a store that changes layout as it grows      */

/* Every radius from 0 to 64 (60 queries each), and beyond. */
static ex_radius every_radius[68];

static size_t every_radius_list(void)
{
    size_t n = 0;
    for (int r = 0; r <= 64; r++)
        every_radius[n++] = (ex_radius){r, 60};
    every_radius[n++] = (ex_radius){65, 30};
    every_radius[n++] = (ex_radius){100, 10};
    every_radius[n++] = (ex_radius){256, 2};
    return n;
}

/* PDQM_WIDE_AT: the live hashes from which new entries are posted wide. */
static void wide_at(const char *hashes)
{
    if (hashes)
        setenv("PDQM_WIDE_AT", hashes, 1);
    else
        unsetenv("PDQM_WIDE_AT");
}

/* Every entry wide: lookups equal the brute force at every radius 0-64,
 * through adds, deletes, re-adds, and deferred adds with passes. */
static void test_wide_layout_exact_at_radii_0_to_64(void **state)
{
    fixture *f = *state;
    wide_at("0");
    ex_run_radii(f->store, false, every_radius, every_radius_list());
    assert_int_equal(stats(f->store).wide_from, 0);
    wide_at(NULL);
}

static void test_wide_layout_exact_deferred(void **state)
{
    fixture *f = *state;
    wide_at("0");
    ex_run_radii(f->store, true, every_radius, every_radius_list());
    assert_int_equal(stats(f->store).wide_from, 0);
    wide_at(NULL);
}

/* A pass over more postings than it holds at once (a bulk load of
 * millions) builds them slot by slot, a range of keys at a time: made to
 * here with ranges of 3,000 postings, in both layouts. */
static void test_pass_in_key_ranges(void **state)
{
    fixture *f = *state;
    setenv("PDQM_PASS_CHUNK", "3000", 1);
    ex_run(f->store, true);
    assert_int_equal(stats(f->store).wide_from, -1);
    unsetenv("PDQM_PASS_CHUNK");
}

static void test_pass_in_key_ranges_wide(void **state)
{
    fixture *f = *state;
    setenv("PDQM_PASS_CHUNK", "3000", 1);
    wide_at("0");
    ex_run(f->store, true);
    assert_int_equal(stats(f->store).wide_from, 0);
    wide_at(NULL);
    unsetenv("PDQM_PASS_CHUNK");
}

/* A service's pass in a large store goes in steps, each its own
 * transaction (made to here: from the first indexed entry on, 150,000
 * keys a step, of the 1.77M of both layouts: the wide keys from the
 * eighth step on).  After each step lookups equal the brute force and
 * verify passes; meanwhile items of the window and older ones are deleted
 * (three times: before and after the handle changes, and among the wide
 * keys), more are added past the window (pending
 * still when it ends), and the handle is closed halfway: the next one
 * goes on where it stopped. */
static void steps_run(fixture *f, const char *wide)
{
    setenv("PDQM_STEP_FROM", "1", 1);
    setenv("PDQM_STEP_KEYS", "150000", 1);
    wide_at(wide);
    enum { N0 = 6000, N1 = 4000, N2 = 300, N = N0 + N1 + N2, NQ = 120 };
    rng r = {20261207u};
    ex_content *c = calloc(N, sizeof *c);
    uint32_t *which = malloc(N * sizeof *which);
    assert_true(c && which);
    for (uint32_t i = 0; i < N; i++) {
        /* A third near-duplicates of earlier ones, indexed or pending. */
        pdqm_hash256 h = i > 100 && i % 3 == 0
                             ? flip(&r, c[rng_below(&r, i)].h[0].hash, (int)rng_below(&r, 33))
                             : rand_hash(&r);
        ex_fill_content(&r, &c[i], h);
        which[i] = i;
    }
    pdqm_hash256 q[NQ];
    for (int i = 0; i < NQ; i++)
        q[i] = i % 2 ? rand_hash(&r)
                     : flip(&r, c[rng_below(&r, N)].h[0].hash, (int)rng_below(&r, 40));
    assert_ok(pdqm_store_bank_create(f->store, "b", PDQM_DEFAULT_THRESHOLD, PDQM_BANK_BLOCK,
                                     &err));
    ex_add_range(f->store, c, which, N0, 2000, false);
    ex_add_range(f->store, c, which + N0, N1, 500, true);
    assert_int_equal(stats(f->store).pending >= N1, true);

    int left = 1, steps = 0;
    char id[16];
    while (left) {
        assert_ok(pdqm_store_index_step(f->store, &left, &err));
        steps++;
        if (steps == 2 || steps == 5 || steps == 9) {   /* of the window, and older */
            for (uint32_t i = (uint32_t)steps; i < N0 + N1; i += 97) {
                snprintf(id, sizeof id, "c%u", i);
                assert_ok(pdqm_store_delete(f->store, "b", id, &err));
                c[i].live = false;
            }
        }
        if (steps == 3)   /* past the window */
            ex_add_range(f->store, c, which + N0 + N1, N2, 100, true);
        if (steps == 4) {   /* another handle goes on */
            pdqm_store_close(f->store);
            assert_ok(pdqm_store_open(f->path, 0, &f->store, &err));
        }
        ex_check(f->store, c, steps >= 3 ? N : N0 + N1, q, NQ, ex_some_radii,
                 COUNT(ex_some_radii));
        assert_verified(f->store);
    }
    assert_true(steps >= 8);
    /* The adds past the window are pending still; a pass indexes them. */
    uint64_t past = 0;
    for (uint32_t i = N0 + N1; i < N; i++)
        past += (uint64_t)c[i].n;
    assert_int_equal(stats(f->store).pending, past);
    ex_index_pending(f->store, past);
    ex_check(f->store, c, N, q, NQ, ex_all_radii, COUNT(ex_all_radii));
    free(which);
    free(c);
    wide_at(NULL);
}

static void test_pass_in_steps(void **state)
{
    steps_run(*state, NULL);
    assert_int_equal(stats(((fixture *)*state)->store).wide_from, -1);
}

static void test_pass_in_steps_wide(void **state)
{
    steps_run(*state, "0");
    assert_int_equal(stats(((fixture *)*state)->store).wide_from, 0);
}

/* The narrow layout at every radius too (the other tests take a few). */
static void test_narrow_layout_exact_at_radii_0_to_64(void **state)
{
    fixture *f = *state;
    wide_at(NULL);
    ex_run_radii(f->store, false, every_radius, every_radius_list());
    assert_int_equal(stats(f->store).wide_from, -1);
}

/* A store that grows past the size of the wide layout in the middle of
 * its adds: the entries before stay narrow, the later ones are wide,
 * lookups probe both and equal the brute force at every radius, deletes
 * reach both, and verify checks each entry in its own layout. */
static void test_layout_changes_as_the_store_grows(void **state)
{
    fixture *f = *state;
    wide_at("12000");   /* crossed by the fifth of eight batches of 2,500 */
    ex_run_radii(f->store, false, every_radius, every_radius_list());
    pdqm_store_stats st = stats(f->store);
    assert_true(st.wide_from > 0 && st.wide_from < (int64_t)st.entries_ever);
    wide_at(NULL);

    /* Reopened, with no PDQM_WIDE_AT: the store keeps its layouts. */
    pdqm_store_close(f->store);
    assert_ok(pdqm_store_open(f->path, 0, &f->store, &err));
    assert_int_equal(stats(f->store).wide_from, st.wide_from);
    assert_verified(f->store);
}

/* The wide layout's worst cases: bits flipped evenly across its 11 slots
 * (in the 16 bits of a key and in the suffix alike), so that no slot is
 * closer than r / 11, or only some are. */
static pdqm_hash256 flip_wide_slots(rng *r, pdqm_hash256 h, const int *per_slot)
{
    for (int k = 0; k < 11; k++) {
        int start = k < 3 ? 24 * k : 72 + 23 * (k - 3), width = k < 3 ? 24 : 23;
        uint32_t mask = 0;
        for (int done = 0; done < per_slot[k];) {
            uint32_t bit = 1u << rng_below(r, (uint32_t)width);
            if (!(mask & bit)) {
                mask |= bit;
                done++;
            }
        }
        for (int b = 0; b < width; b++)
            if (mask & (1u << b))
                h.w[(start + b) / 64] ^= (uint64_t)1 << ((start + b) % 64);
    }
    return h;
}

static void test_wide_slot_boundaries(void **state)
{
    fixture *f = *state;
    wide_at("0");
    boundary_run(f->store, 47, 11, 5, 8, flip_wide_slots, every_radius, every_radius_list());
    assert_int_equal(stats(f->store).wide_from, 0);
    wide_at(NULL);
}

/* ------------------------------------------------------------------ */
/* 2. Banks                                                             */

static pdqm_bank_info bank(pdqm_store *s, const char *name)
{
    pdqm_bank_info b;
    memset(&b, 0xee, sizeof b);
    assert_ok(pdqm_store_bank_get(s, name, &b, &err));
    assert_string_equal(b.name, name);
    return b;
}

static void test_bank_create_update(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    time_t now = time(NULL);

    assert_ok(pdqm_store_bank_create(s, "zeta", 10, PDQM_BANK_BLOCK, &err));
    assert_status(pdqm_store_bank_create(s, "zeta", 20, PDQM_BANK_ALLOW, &err),
                  PDQM_ERR_EXISTS);
    pdqm_bank_info b = bank(s, "zeta");
    assert_int_equal(b.threshold, 10);
    assert_int_equal(b.kind, PDQM_BANK_BLOCK);
    assert_int_equal(b.contents, 0);
    assert_int_equal(b.hashes, 0);
    assert_true(b.created >= now - 5 && b.created <= now + 5);

    /* Names: 1..64 bytes of [A-Za-z0-9._-]. */
    char long_name[80];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    const char *bad[] = {"", long_name, "a b", "a/b", "a\tb", "caf\xc3\xa9", "a:b"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        assert_status(pdqm_bank_name_check(bad[i], &err), PDQM_ERR_INVALID);
        assert_status(pdqm_store_bank_create(s, bad[i], 10, PDQM_BANK_BLOCK, &err),
                      PDQM_ERR_INVALID);
    }
    long_name[64] = '\0';
    assert_ok(pdqm_bank_name_check(long_name, &err));
    assert_ok(pdqm_bank_name_check("A-z_0.9", &err));
    assert_ok(pdqm_store_bank_create(s, long_name, 10, PDQM_BANK_BLOCK, &err));
    assert_int_equal(strlen(bank(s, long_name).name), 64);

    /* Thresholds 0..256. */
    assert_status(pdqm_store_bank_create(s, "t", -1, PDQM_BANK_BLOCK, &err), PDQM_ERR_INVALID);
    assert_status(pdqm_store_bank_create(s, "t", 257, PDQM_BANK_BLOCK, &err), PDQM_ERR_INVALID);
    assert_status(pdqm_store_bank_get(s, "t", &b, &err), PDQM_ERR_NOT_FOUND);
    assert_ok(pdqm_store_bank_create(s, "t0", 0, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "t256", 256, PDQM_BANK_ALLOW, &err));
    assert_int_equal(bank(s, "t0").threshold, 0);
    assert_int_equal(bank(s, "t256").threshold, 256);
    assert_int_equal(bank(s, "t256").kind, PDQM_BANK_ALLOW);
    assert_int_equal(stats(s).banks, 4);

    /* Update: each part only when given. */
    assert_ok(pdqm_store_bank_update(s, "zeta", 25, PDQM_BANK_ALLOW, &err));
    b = bank(s, "zeta");
    assert_int_equal(b.threshold, 25);
    assert_int_equal(b.kind, PDQM_BANK_ALLOW);
    assert_ok(pdqm_store_bank_update(s, "zeta", -1, -1, &err));
    b = bank(s, "zeta");
    assert_int_equal(b.threshold, 25);
    assert_int_equal(b.kind, PDQM_BANK_ALLOW);
    assert_ok(pdqm_store_bank_update(s, "zeta", 0, -1, &err));
    b = bank(s, "zeta");
    assert_int_equal(b.threshold, 0);
    assert_int_equal(b.kind, PDQM_BANK_ALLOW);
    assert_ok(pdqm_store_bank_update(s, "zeta", -1, PDQM_BANK_BLOCK, &err));
    b = bank(s, "zeta");
    assert_int_equal(b.threshold, 0);
    assert_int_equal(b.kind, PDQM_BANK_BLOCK);
    assert_fails(pdqm_store_bank_update(s, "zeta", 257, -1, &err));
    assert_fails(pdqm_store_bank_update(s, "zeta", -1, 2, &err));
    b = bank(s, "zeta");
    assert_int_equal(b.threshold, 0);
    assert_int_equal(b.kind, PDQM_BANK_BLOCK);
    assert_status(pdqm_store_bank_update(s, "nope", 5, -1, &err), PDQM_ERR_NOT_FOUND);
    assert_status(pdqm_store_bank_get(s, "nope", &b, &err), PDQM_ERR_NOT_FOUND);
}

/* Issue 12, finding 14: a write's status is the same with and without an
 * error buffer (it was read from the buffer, so without one an existing
 * bank was "invalid"). */
static void test_finding_14_status_without_error_buffer(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    assert_ok(pdqm_store_bank_create(s, "once", 10, PDQM_BANK_BLOCK, NULL));
    assert_int_equal(pdqm_store_bank_create(s, "once", 10, PDQM_BANK_BLOCK, NULL),
                     PDQM_ERR_EXISTS);
    assert_int_equal(pdqm_store_bank_create(s, "once", 10, PDQM_BANK_BLOCK, &err),
                     PDQM_ERR_EXISTS);
    assert_int_equal(pdqm_store_bank_update(s, "none", 5, -1, NULL), PDQM_ERR_NOT_FOUND);
    assert_int_equal(pdqm_store_bank_delete(s, "none", NULL), PDQM_ERR_NOT_FOUND);
    assert_int_equal(pdqm_store_delete(s, "once", "absent", NULL), PDQM_ERR_NOT_FOUND);
    pdqm_stored_hash h = { { { 1, 2, 3, 4 } }, 90, 0 };
    pdqm_add a = { .bank = "nope", .content_id = "x", .hashes = &h, .n_hashes = 1 };
    assert_int_equal(pdqm_store_add(s, &a, 1, NULL, NULL), PDQM_ERR_NOT_FOUND);
    /* A restored creation time is kept. */
    pdqm_bank_info b;
    assert_ok(pdqm_store_bank_create_at(s, "old", 3, PDQM_BANK_ALLOW, 1600000000, &err));
    assert_ok(pdqm_store_bank_get(s, "old", &b, &err));
    assert_int_equal(b.created, 1600000000);
}

static void test_bank_list_and_delete(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {2};
    const char *names[] = {"zeta", "alpha", "Mid", "beta-2", "alpha.1", "_x"};
    for (size_t i = 0; i < 6; i++)
        assert_ok(pdqm_store_bank_create(s, names[i], (int)i, PDQM_BANK_BLOCK, &err));

    /* alpha: one 4-hash video and two images; beta-2 and Mid: one image
     * each, all three holding the same hash h. */
    pdqm_hash256 h = rand_hash(&r);
    pdqm_stored_hash v[4];
    for (int i = 0; i < 4; i++)
        v[i] = sh(rand_hash(&r), 90, i);
    pdqm_add video = {"alpha", "vid", NULL, NULL, NULL, PDQM_CONTENT_VIDEO, v, 4, 0};
    assert_ok(pdqm_store_add(s, &video, 1, NULL, &err));
    pdqm_hash256 gone = rand_hash(&r);
    assert_int_equal(add1(s, "alpha", "img1", gone, NULL), PDQM_ADDED);
    assert_int_equal(add1(s, "alpha", "img2", h, NULL), PDQM_ADDED);
    assert_int_equal(add1(s, "beta-2", "img", h, NULL), PDQM_ADDED);
    assert_int_equal(add1(s, "Mid", "img", h, NULL), PDQM_ADDED);
    assert_ok(pdqm_store_delete(s, "alpha", "img1", &err));
    assert_int_equal(count_matches(s, gone, 0), 0);

    pdqm_bank_info *list = NULL;
    size_t n = 0;
    assert_ok(pdqm_store_bank_list(s, &list, &n, &err));
    const char *sorted[] = {"Mid", "_x", "alpha", "alpha.1", "beta-2", "zeta"};
    const uint64_t contents[] = {1, 0, 2, 0, 1, 0};
    const uint64_t hashes[] = {1, 0, 5, 0, 1, 0};
    const int thresholds[] = {2, 5, 1, 4, 3, 0};
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].name, sorted[i]);
        assert_int_equal(list[i].contents, contents[i]);
        assert_int_equal(list[i].hashes, hashes[i]);
        assert_int_equal(list[i].threshold, thresholds[i]);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(list[i].id, list[j].id);
    }
    free(list);

    /* Lookups limited to banks. */
    pdqm_matches m = lookup(s, &h, 1, 0, NULL, 0);
    assert_int_equal(m.count, 3);
    pdqm_matches_free(&m);
    const char *two[] = {"alpha", "Mid"};
    m = lookup(s, &h, 1, 0, two, 2);
    assert_int_equal(m.count, 2);
    for (size_t i = 0; i < m.count; i++)
        assert_true(strcmp(m.items[i].bank, "alpha") == 0 || strcmp(m.items[i].bank, "Mid") == 0);
    assert_string_not_equal(m.items[0].bank, m.items[1].bank);
    pdqm_matches_free(&m);
    const char *one[] = {"beta-2"};
    m = lookup(s, &h, 1, 0, one, 1);
    assert_int_equal(m.count, 1);
    assert_string_equal(m.items[0].bank, "beta-2");
    assert_string_equal(m.items[0].content_id, "img");
    pdqm_matches_free(&m);
    const char *empty_bank[] = {"zeta"};
    m = lookup(s, &h, 1, 256, empty_bank, 1);
    assert_int_equal(m.count, 0);
    pdqm_matches_free(&m);
    const char *unknown[] = {"alpha", "nope"};
    pdqm_lookup_options o = {0, unknown, 2};
    assert_status(pdqm_store_lookup(s, &h, 1, &o, &m, &err), PDQM_ERR_NOT_FOUND);

    /* Deleting a bank takes its content along, and nothing else. */
    assert_ok(pdqm_store_bank_delete(s, "alpha", &err));
    pdqm_bank_info b;
    assert_status(pdqm_store_bank_get(s, "alpha", &b, &err), PDQM_ERR_NOT_FOUND);
    assert_status(pdqm_store_bank_delete(s, "alpha", &err), PDQM_ERR_NOT_FOUND);
    pdqm_content_info ci;
    assert_status(pdqm_store_content_get(s, "alpha", "img2", &ci, &err), PDQM_ERR_NOT_FOUND);
    assert_status(pdqm_store_content_get(s, "alpha", "vid", &ci, &err), PDQM_ERR_NOT_FOUND);
    m = lookup(s, &h, 1, 0, NULL, 0);
    assert_int_equal(m.count, 2);
    for (size_t i = 0; i < m.count; i++)
        assert_string_not_equal(m.items[i].bank, "alpha");
    pdqm_matches_free(&m);
    assert_int_equal(count_matches(s, v[2].hash, 31), 0);
    const char *alpha[] = {"alpha"};
    o = (pdqm_lookup_options){0, alpha, 1};
    assert_status(pdqm_store_lookup(s, &h, 1, &o, &m, &err), PDQM_ERR_NOT_FOUND);
    pdqm_store_stats st = stats(s);
    assert_int_equal(st.banks, 5);
    assert_int_equal(st.contents, 2);
    assert_int_equal(st.hashes, 2);
    assert_ok(pdqm_store_bank_list(s, &list, &n, &err));
    assert_int_equal(n, 5);
    assert_string_equal(list[2].name, "alpha.1");
    free(list);
    assert_verified(s);

    /* A new bank of the old name starts empty. */
    assert_ok(pdqm_store_bank_create(s, "alpha", 31, PDQM_BANK_BLOCK, &err));
    b = bank(s, "alpha");
    assert_int_equal(b.contents, 0);
    assert_int_equal(b.hashes, 0);
    assert_status(pdqm_store_content_get(s, "alpha", "img2", &ci, &err), PDQM_ERR_NOT_FOUND);
    m = lookup(s, &h, 1, 0, alpha, 1);
    assert_int_equal(m.count, 0);
    pdqm_matches_free(&m);
    assert_int_equal(add1(s, "alpha", "img2", h, NULL), PDQM_ADDED);
    assert_int_equal(count_matches(s, h, 0), 3);
    assert_verified(s);
}

static void test_bank_thresholds(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {3};
    assert_ok(pdqm_store_bank_create(s, "t5", 5, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "t40", 40, PDQM_BANK_ALLOW, &err));
    pdqm_hash256 h5 = rand_hash(&r), h40 = rand_hash(&r);
    assert_int_equal(add1(s, "t5", "a", h5, NULL), PDQM_ADDED);
    assert_int_equal(add1(s, "t40", "b", h40, NULL), PDQM_ADDED);

    pdqm_hash256 q[6] = {
        flip(&r, h5, 20), flip(&r, h40, 20),  /* only the 40 one at -1 */
        flip(&r, h5, 5), flip(&r, h5, 6),     /* each side of 5 */
        flip(&r, h40, 40), flip(&r, h40, 41), /* each side of 40 */
    };
    pdqm_matches m = lookup(s, q, 6, -1, NULL, 0);
    assert_int_equal(m.count, 3);
    assert_int_equal(m.items[0].query, 1);
    assert_int_equal(m.items[0].distance, 20);
    assert_string_equal(m.items[0].bank, "t40");
    assert_int_equal(m.items[0].bank_kind, PDQM_BANK_ALLOW);
    assert_int_equal(m.items[1].query, 2);
    assert_int_equal(m.items[1].distance, 5);
    assert_string_equal(m.items[1].bank, "t5");
    assert_int_equal(m.items[1].bank_kind, PDQM_BANK_BLOCK);
    assert_int_equal(m.items[2].query, 4);
    assert_int_equal(m.items[2].distance, 40);
    pdqm_matches_free(&m);

    /* An explicit distance overrides the thresholds. */
    m = lookup(s, q, 6, 20, NULL, 0);
    assert_int_equal(m.count, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(m.items[i].query, i);
    pdqm_matches_free(&m);

    /* Limited to one bank, and after a threshold change. */
    const char *t5[] = {"t5"};
    m = lookup(s, q, 6, -1, t5, 1);
    assert_int_equal(m.count, 1);
    assert_int_equal(m.items[0].query, 2);
    pdqm_matches_free(&m);
    assert_ok(pdqm_store_bank_update(s, "t5", 20, -1, &err));
    m = lookup(s, q, 6, -1, NULL, 0);
    assert_int_equal(m.count, 5);
    assert_int_equal(m.items[0].query, 0);
    assert_string_equal(m.items[0].bank, "t5");
    pdqm_matches_free(&m);

    pdqm_lookup_options o = {-2, NULL, 0};
    assert_status(pdqm_store_lookup(s, q, 6, &o, &m, &err), PDQM_ERR_INVALID);
    o.max_distance = 257;
    assert_status(pdqm_store_lookup(s, q, 6, &o, &m, &err), PDQM_ERR_INVALID);
    /* No queries: an empty answer. */
    m = lookup(s, q, 0, 31, NULL, 0);
    assert_int_equal(m.count, 0);
    pdqm_matches_free(&m);
}

/* ------------------------------------------------------------------ */
/* 3. Adds                                                              */

#define SHA_X "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_Y "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_Z "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA_W "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_V "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define MD5_A "900150983cd24fb0d6963f7d28e17f72"

static void test_add_outcomes(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {4};
    assert_ok(pdqm_store_bank_create(s, "a", 31, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "b2", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash h[8];
    for (int i = 0; i < 8; i++)
        h[i] = sh(rand_hash(&r), 80, 0);
    pdqm_add_outcome out[3];

    pdqm_add b1[2] = {
        {"a", "c1", NULL, SHA_X, MD5_A, PDQM_CONTENT_IMAGE, &h[0], 1, 0},
        {"a", "c2", NULL, SHA_Y, NULL, PDQM_CONTENT_IMAGE, &h[1], 1, 0},
    };
    assert_ok(pdqm_store_add(s, b1, 2, out, &err));
    assert_int_equal(out[0], PDQM_ADDED);
    assert_int_equal(out[1], PDQM_ADDED);

    /* A known id (with a new file), a known file (under a new id), then
     * the known id's new file under another id: only the last is new. */
    pdqm_add b2[3] = {
        {"a", "c1", NULL, SHA_Z, NULL, PDQM_CONTENT_IMAGE, &h[2], 1, 0},
        {"a", "c3", NULL, SHA_X, NULL, PDQM_CONTENT_IMAGE, &h[3], 1, 0},
        {"a", "c4", NULL, SHA_Z, NULL, PDQM_CONTENT_IMAGE, &h[4], 1, 0},
    };
    assert_ok(pdqm_store_add(s, b2, 3, out, &err));
    assert_int_equal(out[0], PDQM_ADD_EXISTS);
    assert_int_equal(out[1], PDQM_ADD_SAME_FILE);
    assert_int_equal(out[2], PDQM_ADDED);
    assert_int_equal(count_matches(s, h[2].hash, 0), 0);
    assert_int_equal(count_matches(s, h[3].hash, 0), 0);
    assert_int_equal(count_matches(s, h[4].hash, 0), 1);
    pdqm_content_info ci;
    assert_status(pdqm_store_content_get(s, "a", "c3", &ci, &err), PDQM_ERR_NOT_FOUND);
    assert_ok(pdqm_store_content_get(s, "a", "c1", &ci, &err));
    assert_string_equal(ci.sha256, SHA_X);   /* the first one stays */
    assert_string_equal(ci.md5, MD5_A);
    assert_int_equal(ci.n_hashes, 1);
    pdqm_content_info_clear(&ci);

    /* Repeats within one batch. */
    pdqm_add b3[3] = {
        {"a", "c5", NULL, SHA_W, NULL, PDQM_CONTENT_IMAGE, &h[5], 1, 0},
        {"a", "c5", NULL, SHA_V, NULL, PDQM_CONTENT_IMAGE, &h[6], 1, 0},
        {"a", "c6", NULL, SHA_W, NULL, PDQM_CONTENT_IMAGE, &h[7], 1, 0},
    };
    assert_ok(pdqm_store_add(s, b3, 3, out, &err));
    assert_int_equal(out[0], PDQM_ADDED);
    assert_int_equal(out[1], PDQM_ADD_EXISTS);
    assert_int_equal(out[2], PDQM_ADD_SAME_FILE);
    assert_int_equal(count_matches(s, h[5].hash, 0), 1);
    assert_int_equal(count_matches(s, h[6].hash, 0), 0);
    assert_int_equal(count_matches(s, h[7].hash, 0), 0);

    /* An id whose first add in a batch is a known file: its next add, a
     * new file, is the one added (the batch reads as adds one by one). */
    pdqm_add b5[2] = {
        {"a", "c7", NULL, SHA_W, NULL, PDQM_CONTENT_IMAGE, &h[6], 1, 0},
        {"a", "c7", NULL, SHA_V, NULL, PDQM_CONTENT_IMAGE, &h[7], 1, 0},
    };
    assert_ok(pdqm_store_add(s, b5, 2, out, &err));
    assert_int_equal(out[0], PDQM_ADD_SAME_FILE);
    assert_int_equal(out[1], PDQM_ADDED);
    assert_int_equal(count_matches(s, h[6].hash, 0), 0);
    assert_int_equal(count_matches(s, h[7].hash, 0), 1);
    assert_ok(pdqm_store_delete(s, "a", "c7", &err));

    /* Another bank may hold the same id and the same file. */
    pdqm_add b4 = {"b2", "c1", NULL, SHA_X, NULL, PDQM_CONTENT_IMAGE, &h[0], 1, 0};
    assert_ok(pdqm_store_add(s, &b4, 1, out, &err));
    assert_int_equal(out[0], PDQM_ADDED);
    pdqm_matches m = lookup(s, &h[0].hash, 1, 0, NULL, 0);
    assert_int_equal(m.count, 2);
    assert_string_equal(m.items[0].content_id, "c1");
    assert_string_equal(m.items[1].content_id, "c1");
    assert_string_not_equal(m.items[0].bank, m.items[1].bank);
    pdqm_matches_free(&m);

    /* Adding it all again changes nothing (outcomes may be NULL). */
    assert_ok(pdqm_store_add(s, b1, 2, out, &err));
    assert_int_equal(out[0], PDQM_ADD_EXISTS);
    assert_int_equal(out[1], PDQM_ADD_EXISTS);
    assert_ok(pdqm_store_add(s, b2, 3, NULL, &err));
    pdqm_store_stats st = stats(s);
    assert_int_equal(st.contents, 5);   /* a: c1 c2 c4 c5, b2: c1 */
    assert_int_equal(st.hashes, 5);
    assert_int_equal(st.entries_ever, 6);   /* and c7's, deleted */
    assert_int_equal(bank(s, "a").contents, 4);
    assert_int_equal(bank(s, "b2").contents, 1);
    assert_verified(s);
}

/* One batch may touch any number of banks. */
static void test_add_across_banks(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {41};
    enum { NB = 20 };
    char names[NB][16];
    pdqm_stored_hash h[NB];
    pdqm_add adds[NB];
    pdqm_add_outcome out[NB];
    for (int i = 0; i < NB; i++) {
        snprintf(names[i], sizeof names[i], "bank%02d", i);
        assert_ok(pdqm_store_bank_create(s, names[i], 31, PDQM_BANK_BLOCK, &err));
        h[i] = sh(rand_hash(&r), 90, 0);
        adds[i] = (pdqm_add){names[i], "same-id", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &h[i], 1, 0};
    }
    assert_ok(pdqm_store_add(s, adds, NB, out, &err));
    for (int i = 0; i < NB; i++) {
        assert_int_equal(out[i], PDQM_ADDED);
        assert_int_equal(bank(s, names[i]).contents, 1);
        pdqm_matches m = lookup(s, &h[i].hash, 1, 0, NULL, 0);
        assert_int_equal(m.count, 1);
        assert_string_equal(m.items[0].bank, names[i]);
        pdqm_matches_free(&m);
    }
    assert_int_equal(stats(s).contents, NB);
    assert_verified(s);
}

/* Only the SHA-256 makes two items the same file: two items with one MD5
 * (and no SHA-256) are both stored, and the store stays consistent. */
static void test_add_same_md5(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {42};
    assert_ok(pdqm_store_bank_create(s, "m", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash h[2] = {sh(rand_hash(&r), 90, 0), sh(rand_hash(&r), 90, 0)};
    pdqm_add adds[2] = {
        {"m", "first", NULL, NULL, MD5_A, PDQM_CONTENT_IMAGE, &h[0], 1, 0},
        {"m", "second", NULL, NULL, MD5_A, PDQM_CONTENT_IMAGE, &h[1], 1, 0},
    };
    pdqm_add_outcome out[2];
    assert_ok(pdqm_store_add(s, adds, 2, out, &err));
    assert_int_equal(out[0], PDQM_ADDED);
    assert_int_equal(out[1], PDQM_ADDED);
    pdqm_content_info ci;
    assert_ok(pdqm_store_content_get(s, "m", "first", &ci, &err));
    assert_string_equal(ci.md5, MD5_A);
    assert_string_equal(ci.sha256, "");
    pdqm_content_info_clear(&ci);
    assert_verified(s);
    assert_ok(pdqm_store_delete(s, "m", "second", &err));
    assert_ok(pdqm_store_content_get(s, "m", "first", &ci, &err));
    assert_string_equal(ci.md5, MD5_A);
    pdqm_content_info_clear(&ci);
    assert_verified(s);
}

static void test_add_invalid_batches(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {5};
    assert_ok(pdqm_store_bank_create(s, "a", 31, PDQM_BANK_BLOCK, &err));
    assert_int_equal(add1(s, "a", "base", rand_hash(&r), NULL), PDQM_ADDED);
    pdqm_store_stats before = stats(s);

    char long_id[PDQM_CONTENT_ID_MAX + 2];
    memset(long_id, 'i', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';   /* 513 bytes */
    char *long_meta = malloc(PDQM_METADATA_MAX + 2);
    assert_non_null(long_meta);
    memset(long_meta, ' ', PDQM_METADATA_MAX + 1);
    long_meta[0] = '"';
    long_meta[PDQM_METADATA_MAX] = '"';
    long_meta[PDQM_METADATA_MAX + 1] = '\0';   /* 65537 bytes */

    pdqm_hash256 good = rand_hash(&r);
    pdqm_stored_hash ok1 = sh(good, 50, 0);
    pdqm_stored_hash q101 = sh(rand_hash(&r), 101, 0);
    pdqm_stored_hash qneg = sh(rand_hash(&r), -1, 0);
    pdqm_stored_hash two[2] = {sh(rand_hash(&r), 50, 0), sh(rand_hash(&r), 101, 1)};
    const pdqm_add bad[] = {
        {"a", "x", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &q101, 1, 0},
        {"a", "x", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &qneg, 1, 0},
        {"a", "x", NULL, NULL, NULL, PDQM_CONTENT_VIDEO, two, 2, 0},
        {"a", "x", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &ok1, 0, 0},
        {"a", "x", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, NULL, 0, 0},
        {"a", "", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &ok1, 1, 0},
        {"a", long_id, NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &ok1, 1, 0},
        {"a", "x", long_meta, NULL, NULL, PDQM_CONTENT_IMAGE, &ok1, 1, 0},
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        /* A good item first, the bad one second, and the other way round. */
        for (int order = 0; order < 2; order++) {
            pdqm_add batch[2] = {
                {"a", "good", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &ok1, 1, 0}, bad[i]};
            if (order) {
                batch[1] = batch[0];
                batch[0] = bad[i];
            }
            pdqm_add_outcome out[2];
            pdqm_error_clear(&err);
            pdqm_status st = pdqm_store_add(s, batch, 2, out, &err);
            if (st != PDQM_ERR_INVALID)
                fail_msg("bad item %zu (order %d): got %s, expected invalid", i, order,
                         pdqm_status_token(st));
            pdqm_store_stats now = stats(s);
            assert_int_equal(now.contents, before.contents);
            assert_int_equal(now.hashes, before.hashes);
            assert_int_equal(count_matches(s, good, 0), 0);
            pdqm_content_info ci;
            assert_status(pdqm_store_content_get(s, "a", "good", &ci, &err), PDQM_ERR_NOT_FOUND);
            assert_status(pdqm_store_content_get(s, "a", "x", &ci, &err), PDQM_ERR_NOT_FOUND);
        }
    }

    /* An unknown bank fails the batch too. */
    pdqm_add unknown[2] = {
        {"a", "good", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &ok1, 1, 0},
        {"nope", "x", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &ok1, 1, 0},
    };
    assert_status(pdqm_store_add(s, unknown, 2, NULL, &err), PDQM_ERR_NOT_FOUND);
    assert_int_equal(count_matches(s, good, 0), 0);
    assert_int_equal(stats(s).contents, before.contents);

    /* The limits themselves are fine: 512-byte id, 64 KiB of metadata,
     * quality 0 and 100. */
    long_id[PDQM_CONTENT_ID_MAX] = '\0';
    long_meta[PDQM_METADATA_MAX - 1] = '"';
    long_meta[PDQM_METADATA_MAX] = '\0';
    pdqm_stored_hash edge[2] = {sh(good, 0, 0), sh(rand_hash(&r), 100, 1)};
    pdqm_add fine = {"a", long_id, long_meta, NULL, NULL, PDQM_CONTENT_VIDEO, edge, 2, 0};
    pdqm_add_outcome out;
    assert_ok(pdqm_store_add(s, &fine, 1, &out, &err));
    assert_int_equal(out, PDQM_ADDED);
    pdqm_content_info ci;
    assert_ok(pdqm_store_content_get(s, "a", long_id, &ci, &err));
    assert_string_equal(ci.content_id, long_id);
    assert_string_equal(ci.metadata, long_meta);
    pdqm_content_info_clear(&ci);
    pdqm_matches m = lookup(s, &good, 1, 0, NULL, 0);
    assert_int_equal(m.count, 1);
    assert_int_equal(m.items[0].quality, 0);
    assert_string_equal(m.items[0].content_id, long_id);
    pdqm_matches_free(&m);
    pdqm_store_stats st = stats(s);
    assert_int_equal(st.contents, before.contents + 1);
    assert_int_equal(st.hashes, before.hashes + 2);
    assert_verified(s);
    free(long_meta);
}

static void test_add_video_and_metadata(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {6};
    time_t now = time(NULL);
    assert_ok(pdqm_store_bank_create(s, "v", 31, PDQM_BANK_BLOCK, &err));
    const char *meta = "{\"title\":\"caf\xc3\xa9 \\\"quoted\\\"\\n\",\"n\":[1,2.5,null],"
                       "\"nested\":{\"ok\":true}}";
    pdqm_stored_hash frames[5];
    for (int i = 0; i < 5; i++)
        frames[i] = sh(rand_hash(&r), 50 + i, (double)i);
    pdqm_hash256 img = rand_hash(&r);
    pdqm_stored_hash img_h = sh(img, 77, 0);
    pdqm_add adds[2] = {
        {"v", "movie", meta, SHA_Z, MD5_A, PDQM_CONTENT_VIDEO, frames, 5, 0},
        {"v", "photo", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &img_h, 1, 0},
    };
    assert_ok(pdqm_store_add(s, adds, 2, NULL, &err));

    pdqm_content_info movie;
    assert_ok(pdqm_store_content_get(s, "v", "movie", &movie, &err));
    assert_string_equal(movie.bank, "v");
    assert_string_equal(movie.content_id, "movie");
    assert_non_null(movie.metadata);
    assert_string_equal(movie.metadata, meta);
    assert_string_equal(movie.sha256, SHA_Z);
    assert_string_equal(movie.md5, MD5_A);
    assert_int_equal(movie.kind, PDQM_CONTENT_VIDEO);
    assert_int_equal(movie.n_hashes, 5);
    assert_true(movie.added >= now - 5 && movie.added <= now + 5);
    pdqm_content_info photo;
    assert_ok(pdqm_store_content_get(s, "v", "photo", &photo, &err));
    assert_null(photo.metadata);
    assert_string_equal(photo.sha256, "");
    assert_string_equal(photo.md5, "");
    assert_int_equal(photo.kind, PDQM_CONTENT_IMAGE);
    assert_int_equal(photo.n_hashes, 1);
    assert_int_not_equal(photo.number, movie.number);
    assert_true(photo.first_entry >= movie.first_entry + 5 ||
                photo.first_entry + 1 <= movie.first_entry);

    /* Each frame, 3 bits off, and the photo itself. */
    pdqm_hash256 q[6];
    for (int i = 0; i < 5; i++)
        q[i] = flip(&r, frames[i].hash, 3);
    q[5] = img;
    pdqm_matches m = lookup(s, q, 6, 10, NULL, 0);
    assert_int_equal(m.count, 6);
    for (size_t i = 0; i < 5; i++) {
        const pdqm_match *x = &m.items[i];
        assert_int_equal(x->query, i);
        assert_int_equal(x->distance, 3);
        assert_true(hash_eq(&x->hash, &frames[i].hash));
        assert_int_equal(x->quality, 50 + (int)i);
        assert_true(x->timestamp == (double)i);
        assert_int_equal(x->entry, movie.first_entry + i);
        assert_int_equal(x->content, movie.number);
        assert_int_equal(x->kind, PDQM_CONTENT_VIDEO);
        assert_int_equal(x->bank_kind, PDQM_BANK_BLOCK);
        assert_string_equal(x->bank, "v");
        assert_string_equal(x->content_id, "movie");
        assert_non_null(x->metadata);
        assert_string_equal(x->metadata, meta);
    }
    const pdqm_match *x = &m.items[5];
    assert_int_equal(x->query, 5);
    assert_int_equal(x->distance, 0);
    assert_int_equal(x->quality, 77);
    assert_true(x->timestamp == 0.0);
    assert_int_equal(x->entry, photo.first_entry);
    assert_int_equal(x->content, photo.number);
    assert_int_equal(x->kind, PDQM_CONTENT_IMAGE);
    assert_string_equal(x->content_id, "photo");
    assert_null(x->metadata);
    pdqm_matches_free(&m);

    /* Two frames near one query: both, nearer first. */
    pdqm_stored_hash near[2] = {sh(flip(&r, img, 9), 10, 0.5), sh(flip(&r, img, 4), 20, 7.25)};
    pdqm_add clip = {"v", "clip", "{}", NULL, NULL, PDQM_CONTENT_VIDEO, near, 2, 0};
    assert_ok(pdqm_store_add(s, &clip, 1, NULL, &err));
    m = lookup(s, &img, 1, 10, NULL, 0);
    assert_int_equal(m.count, 3);
    assert_string_equal(m.items[0].content_id, "photo");
    assert_string_equal(m.items[1].content_id, "clip");
    assert_int_equal(m.items[1].distance, 4);
    assert_true(m.items[1].timestamp == 7.25);
    assert_string_equal(m.items[1].metadata, "{}");
    assert_int_equal(m.items[2].distance, 9);
    assert_true(m.items[2].timestamp == 0.5);
    pdqm_matches_free(&m);
    pdqm_content_info_clear(&movie);
    pdqm_content_info_clear(&photo);
    assert_status(pdqm_store_content_get(s, "v", "nothing", &movie, &err), PDQM_ERR_NOT_FOUND);
    assert_status(pdqm_store_content_get(s, "nope", "movie", &movie, &err), PDQM_ERR_NOT_FOUND);
}

/* ------------------------------------------------------------------ */
/* 4. Deletes                                                           */

static void test_delete(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {7};
    assert_ok(pdqm_store_bank_create(s, "d", 31, PDQM_BANK_BLOCK, &err));
    pdqm_hash256 h1 = rand_hash(&r), h2 = rand_hash(&r), h3 = rand_hash(&r);
    assert_int_equal(add1(s, "d", "c1", h1, SHA_X), PDQM_ADDED);
    assert_int_equal(add1(s, "d", "c2", h2, SHA_Y), PDQM_ADDED);

    assert_status(pdqm_store_delete(s, "d", "missing", &err), PDQM_ERR_NOT_FOUND);
    assert_status(pdqm_store_delete(s, "nope", "c1", &err), PDQM_ERR_NOT_FOUND);
    assert_int_equal(stats(s).contents, 2);

    pdqm_content_info ci;
    assert_ok(pdqm_store_content_get(s, "d", "c1", &ci, &err));
    uint32_t old_entry = ci.first_entry;
    pdqm_content_info_clear(&ci);
    assert_ok(pdqm_store_delete(s, "d", "c1", &err));
    assert_int_equal(count_matches(s, h1, 31), 0);
    assert_int_equal(count_matches(s, h1, 256), 1);   /* only c2 is left */
    assert_int_equal(count_matches(s, h2, 0), 1);
    assert_status(pdqm_store_content_get(s, "d", "c1", &ci, &err), PDQM_ERR_NOT_FOUND);
    assert_status(pdqm_store_delete(s, "d", "c1", &err), PDQM_ERR_NOT_FOUND);
    pdqm_bank_info b = bank(s, "d");
    assert_int_equal(b.contents, 1);
    assert_int_equal(b.hashes, 1);

    /* The id comes back with a new hash, and only that one matches. */
    assert_int_equal(add1(s, "d", "c1", h3, SHA_X), PDQM_ADDED);
    pdqm_matches m = lookup(s, &h3, 1, 0, NULL, 0);
    assert_int_equal(m.count, 1);
    assert_string_equal(m.items[0].content_id, "c1");
    assert_int_not_equal(m.items[0].entry, old_entry);
    pdqm_matches_free(&m);
    assert_int_equal(count_matches(s, h1, 31), 0);

    /* A deleted item's file may come back under another id. */
    assert_ok(pdqm_store_delete(s, "d", "c2", &err));
    assert_int_equal(add1(s, "d", "c9", h2, SHA_Y), PDQM_ADDED);
    assert_int_equal(count_matches(s, h2, 0), 1);
    pdqm_store_stats st = stats(s);
    assert_int_equal(st.contents, 2);
    assert_int_equal(st.hashes, 2);
    assert_int_equal(st.entries_ever, 4);
    assert_verified(s);
}

/* Deletes of items and banks added deferred, before they are indexed. */
static void test_deferred_deletes(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {43};
    enum { N = 60 };
    assert_ok(pdqm_store_bank_create(s, "x", 31, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "y", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash h[2][N];
    pdqm_add adds[2 * N];
    char ids[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "d%02d", i);
        h[0][i] = sh(rand_hash(&r), 90, 0);
        h[1][i] = sh(flip(&r, h[0][i].hash, 3), 90, 0);   /* y's: near x's */
        adds[i] = (pdqm_add){"x", ids[i], NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &h[0][i], 1, 0};
        adds[N + i] = (pdqm_add){"y", ids[i], NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &h[1][i], 1, 0};
    }
    assert_ok(pdqm_store_add_deferred(s, adds, 2 * N, NULL, &err));
    assert_int_equal(stats(s).pending, 2 * N);
    pdqm_hash256 q[N];
    for (int i = 0; i < N; i++)
        q[i] = h[0][i].hash;
    pdqm_matches m = lookup(s, q, N, 3, NULL, 0);
    assert_int_equal(m.count, 2 * N);
    pdqm_matches_free(&m);

    /* Pending: delete x's d05 and the whole of y. */
    assert_ok(pdqm_store_delete(s, "x", "d05", &err));
    assert_ok(pdqm_store_bank_delete(s, "y", &err));
    assert_verified(s);
    for (int pass = 0; pass < 2; pass++) {
        m = lookup(s, q, N, 3, NULL, 0);
        assert_int_equal(m.count, N - 1);
        for (size_t i = 0; i < m.count; i++) {
            assert_string_equal(m.items[i].bank, "x");
            assert_int_equal(m.items[i].distance, 0);
            assert_string_not_equal(m.items[i].content_id, "d05");
        }
        pdqm_matches_free(&m);
        pdqm_store_stats st = stats(s);
        assert_int_equal(st.contents, N - 1);
        assert_int_equal(st.hashes, N - 1);
        if (pass == 0) {   /* then index what is left */
            uint64_t indexed = 0;
            assert_ok(pdqm_store_index_pending(s, &indexed, &err));
            assert_int_equal(indexed, N - 1);
            assert_int_equal(stats(s).pending, 0);
            assert_verified(s);
        }
    }
    /* Nothing pending: a no-op. */
    uint64_t indexed = 99;
    assert_ok(pdqm_store_index_pending(s, &indexed, &err));
    assert_int_equal(indexed, 0);
}

/* FNV-1a, 64 bits, over a bank id (4 bytes, least significant first)
 * and a content id: what index/store.c fingerprints content ids with. */
static uint64_t fnv_content(uint32_t bank, const char *id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 4; i++) {
        h ^= (bank >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    for (; *id; id++) {
        h ^= (uint8_t)*id;
        h *= 0x100000001b3ull;
    }
    return h;
}

static int compare_u64(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

/* Content id number i of the birthday search below: pseudo-random, since
 * FNV-1a spreads sequential ids too evenly to collide. */
static void collision_id(uint32_t i, char out[24])
{
    rng t = {i};
    snprintf(out, 24, "x%016llx", (unsigned long long)rng_next(&t));
}

/* Content ids that share a fingerprint must still be told apart.  Two ids
 * whose fingerprints agree in their top 32 bits (what the store keeps),
 * found by a birthday search; with another fingerprint they are simply
 * two ids, and everything here must hold all the same. */
static void test_content_id_collisions(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {47};
    assert_ok(pdqm_store_bank_create(s, "f", 31, PDQM_BANK_BLOCK, &err));
    uint32_t bank_id = bank(s, "f").id;
    enum { N = 1 << 18 };
    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    char a[24] = "", b[24] = "";
    for (uint32_t i = 0; i < N; i++) {
        collision_id(i, a);
        v[i] = (fnv_content(bank_id, a) >> 32) << 32 | i;
    }
    qsort(v, N, sizeof *v, compare_u64);
    a[0] = '\0';
    for (size_t i = 1; i < N; i++)
        if (v[i] >> 32 == v[i - 1] >> 32) {
            collision_id((uint32_t)v[i - 1], a);
            collision_id((uint32_t)v[i], b);
            break;
        }
    free(v);
    assert_string_not_equal(b, "");   /* 8 such pairs are expected */

    pdqm_hash256 ha = rand_hash(&r), hb = rand_hash(&r);
    assert_int_equal(add1(s, "f", a, ha, NULL), PDQM_ADDED);
    assert_int_equal(add1(s, "f", b, hb, NULL), PDQM_ADDED);
    assert_int_equal(add1(s, "f", b, hb, NULL), PDQM_ADD_EXISTS);
    pdqm_content_info ci;
    assert_ok(pdqm_store_content_get(s, "f", a, &ci, &err));
    assert_string_equal(ci.content_id, a);
    pdqm_content_info_clear(&ci);
    assert_ok(pdqm_store_content_get(s, "f", b, &ci, &err));
    assert_string_equal(ci.content_id, b);
    pdqm_content_info_clear(&ci);
    pdqm_matches m = lookup(s, &hb, 1, 0, NULL, 0);
    assert_int_equal(m.count, 1);
    assert_string_equal(m.items[0].content_id, b);
    pdqm_matches_free(&m);

    assert_ok(pdqm_store_delete(s, "f", a, &err));
    assert_status(pdqm_store_content_get(s, "f", a, &ci, &err), PDQM_ERR_NOT_FOUND);
    assert_status(pdqm_store_delete(s, "f", a, &err), PDQM_ERR_NOT_FOUND);
    assert_ok(pdqm_store_content_get(s, "f", b, &ci, &err));
    assert_string_equal(ci.content_id, b);
    pdqm_content_info_clear(&ci);
    assert_int_equal(count_matches(s, ha, 0), 0);
    assert_int_equal(count_matches(s, hb, 0), 1);
    assert_int_equal(add1(s, "f", a, ha, NULL), PDQM_ADDED);
    assert_int_equal(count_matches(s, ha, 0), 1);
    assert_int_equal(bank(s, "f").contents, 2);

    /* The two in one batch, each twice (an add batch looks its ids up in
     * the order of their fingerprints, where a and b are neighbours). */
    assert_ok(pdqm_store_delete(s, "f", a, &err));
    assert_ok(pdqm_store_delete(s, "f", b, &err));
    pdqm_stored_hash sa = sh(ha, 90, 0), sb = sh(hb, 90, 0);
    pdqm_add both[4] = {
        {"f", b, NULL, NULL, NULL, PDQM_CONTENT_HASHES, &sb, 1, 0},
        {"f", a, NULL, NULL, NULL, PDQM_CONTENT_HASHES, &sa, 1, 0},
        {"f", b, NULL, NULL, NULL, PDQM_CONTENT_HASHES, &sa, 1, 0},
        {"f", a, NULL, NULL, NULL, PDQM_CONTENT_HASHES, &sb, 1, 0},
    };
    pdqm_add_outcome out[4];
    assert_ok(pdqm_store_add(s, both, 4, out, &err));
    assert_int_equal(out[0], PDQM_ADDED);
    assert_int_equal(out[1], PDQM_ADDED);
    assert_int_equal(out[2], PDQM_ADD_EXISTS);
    assert_int_equal(out[3], PDQM_ADD_EXISTS);
    pdqm_matches m2 = lookup(s, &hb, 1, 0, NULL, 0);
    assert_int_equal(m2.count, 1);   /* b, not a's repeat */
    assert_string_equal(m2.items[0].content_id, b);
    pdqm_matches_free(&m2);
    assert_ok(pdqm_store_add(s, both, 4, out, &err));
    for (int i = 0; i < 4; i++)
        assert_int_equal(out[i], PDQM_ADD_EXISTS);
    assert_int_equal(bank(s, "f").contents, 2);
    assert_verified(s);
}

/* ------------------------------------------------------------------ */
/* 5. Persistence and open errors                                       */

static void test_reopen(void **state)
{
    fixture *f = *state;
    rng r = {8};
    assert_ok(pdqm_store_bank_create(f->store, "p", 12, PDQM_BANK_ALLOW, &err));
    pdqm_hash256 q[60];
    fill_small(f->store, "p", &r, 300, q, 60);
    assert_ok(pdqm_store_delete(f->store, "p", "p7", &err));
    size_t n0, n1;
    flat_match *m0 = flatten(f->store, q, 60, 31, &n0);
    assert_true(n0 >= 25);
    pdqm_store_stats st0 = stats(f->store);

    pdqm_store_close(f->store);
    f->store = NULL;
    assert_ok(pdqm_store_open(f->path, 0, &f->store, &err));
    flat_match *m1 = flatten(f->store, q, 60, 31, &n1);
    assert_same_matches(m0, n0, m1, n1);
    free(m1);
    pdqm_bank_info b = bank(f->store, "p");
    assert_int_equal(b.threshold, 12);
    assert_int_equal(b.kind, PDQM_BANK_ALLOW);
    assert_int_equal(b.contents, 299);
    pdqm_store_stats st1 = stats(f->store);
    assert_int_equal(st1.contents, st0.contents);
    assert_int_equal(st1.hashes, st0.hashes);
    assert_int_equal(st1.entries_ever, st0.entries_ever);
    assert_verified(f->store);

    /* CREATE on an existing store opens it as it is. */
    pdqm_store_close(f->store);
    f->store = NULL;
    assert_ok(pdqm_store_open(f->path, PDQM_STORE_CREATE, &f->store, &err));
    m1 = flatten(f->store, q, 60, 31, &n1);
    assert_same_matches(m0, n0, m1, n1);
    free(m1);

    /* Read-only: the same answers, and every write refused. */
    pdqm_store_close(f->store);
    f->store = NULL;
    assert_ok(pdqm_store_open(f->path, PDQM_STORE_READONLY, &f->store, &err));
    m1 = flatten(f->store, q, 60, 31, &n1);
    assert_same_matches(m0, n0, m1, n1);
    free(m1);
    pdqm_stored_hash one = sh(rand_hash(&r), 100, 0);
    pdqm_add a = {"p", "new", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &one, 1, 0};
    assert_fails(pdqm_store_add(f->store, &a, 1, NULL, &err));
    assert_fails(pdqm_store_delete(f->store, "p", "p1", &err));
    assert_fails(pdqm_store_bank_create(f->store, "other", 5, PDQM_BANK_BLOCK, &err));
    assert_fails(pdqm_store_bank_update(f->store, "p", 5, -1, &err));
    assert_fails(pdqm_store_bank_delete(f->store, "p", &err));
    pdqm_store_close(f->store);
    f->store = NULL;
    assert_ok(pdqm_store_open(f->path, 0, &f->store, &err));
    st1 = stats(f->store);
    assert_int_equal(st1.banks, 1);
    assert_int_equal(st1.contents, st0.contents);
    assert_int_equal(bank(f->store, "p").threshold, 12);
    assert_int_equal(count_matches(f->store, one.hash, 0), 0);
    free(m0);
}

/* Opening path, with any flags, is PDQM_ERR_NOT_A_STORE and leaves the
 * file's bytes alone. */
static void expect_not_a_store(const char *path)
{
    size_t len0, len1;
    uint8_t *before = slurp(path, &len0);
    assert_non_null(before);
    const unsigned flags[] = {0, PDQM_STORE_CREATE, PDQM_STORE_READONLY};
    for (size_t i = 0; i < 3; i++) {
        pdqm_store *s = NULL;
        pdqm_error_clear(&err);
        pdqm_status st = pdqm_store_open(path, flags[i], &s, &err);
        if (st != PDQM_ERR_NOT_A_STORE)
            fail_msg("open %s (flags %u): got %s (%s), expected not_a_store", path,
                     flags[i], pdqm_status_token(st), pdqm_error_message(&err));
        assert_null(s);
    }
    uint8_t *after = slurp(path, &len1);
    assert_non_null(after);
    assert_int_equal(len1, len0);
    assert_memory_equal(after, before, len0);
    free(before);
    free(after);
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    rng r = {9};
    char path[256];
    pdqm_store *s = NULL;

    /* Missing, without CREATE: not found, and still missing. */
    snprintf(path, sizeof path, "%s/missing.db", f->dir);
    assert_status(pdqm_store_open(path, 0, &s, &err), PDQM_ERR_NOT_FOUND);
    assert_null(s);
    assert_status(pdqm_store_open(path, PDQM_STORE_READONLY, &s, &err), PDQM_ERR_NOT_FOUND);
    assert_null(s);
    assert_false(file_exists(path));

    /* Junk, long and short. */
    uint8_t junk[8192];
    for (size_t i = 0; i < sizeof junk; i += 8) {
        uint64_t v = rng_next(&r);
        memcpy(junk + i, &v, 8);
    }
    snprintf(path, sizeof path, "%s/junk.db", f->dir);
    write_file(path, junk, sizeof junk);
    expect_not_a_store(path);
    snprintf(path, sizeof path, "%s/short.db", f->dir);
    write_file(path, "hello, store\n", 13);
    expect_not_a_store(path);

    /* An LMDB file that is not ours. */
    snprintf(path, sizeof path, "%s/foreign.db", f->dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = {5, "hello"}, v = {5, "world"};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    expect_not_a_store(path);

    /* A folder, and paths that cannot be created (even by root: a regular
     * file stands where a folder should be). */
    assert_fails(pdqm_store_open(f->dir, 0, &s, &err));
    assert_null(s);
    assert_fails(pdqm_store_open(f->dir, PDQM_STORE_CREATE, &s, &err));
    assert_null(s);
    snprintf(path, sizeof path, "%s/junk.db/x.db", f->dir);
    assert_status(pdqm_store_open(path, PDQM_STORE_CREATE, &s, &err), PDQM_ERR_IO);
    assert_null(s);
    assert_fails(pdqm_store_open(path, 0, &s, &err));
    assert_null(s);
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", f->dir);
    assert_status(pdqm_store_open(path, PDQM_STORE_CREATE, &s, &err), PDQM_ERR_IO);
    assert_null(s);

    /* The fixture's store is still fine. */
    assert_ok(pdqm_store_bank_create(f->store, "ok", 31, PDQM_BANK_BLOCK, &err));
    assert_int_equal(stats(f->store).schema, PDQM_STORE_SCHEMA_VERSION);
}

/* A store's table opened with LMDB itself, to make what the library never
 * would (the layout is index/store_int.h's); committed by raw_close. */
typedef struct raw_table {
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
} raw_table;

static void raw_open(raw_table *r, const char *path, const char *table, unsigned flags)
{
    assert_int_equal(mdb_env_create(&r->env), 0);
    assert_int_equal(mdb_env_set_maxdbs(r->env, 16), 0);
    assert_int_equal(mdb_env_set_mapsize(r->env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(r->env, path, MDB_NOSUBDIR, 0644), 0);
    assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
    assert_int_equal(mdb_dbi_open(r->txn, table, flags, &r->dbi), 0);
}

static void raw_close(raw_table *r)
{
    assert_int_equal(mdb_txn_commit(r->txn), 0);
    mdb_env_close(r->env);
}

/* The n-th key of the "postings" table and its ids (copied, at most 64). */
static uint32_t raw_key(raw_table *r, int n, uint32_t *ids, size_t *n_ids)
{
    MDB_cursor *c;
    MDB_val k, v;
    assert_int_equal(mdb_cursor_open(r->txn, r->dbi, &c), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_NEXT), 0);
    uint32_t key;
    memcpy(&key, k.mv_data, 4);
    *n_ids = v.mv_size / 4;
    assert_true(*n_ids <= 64);
    memcpy(ids, v.mv_data, v.mv_size);
    mdb_cursor_close(c);
    return key;
}

static void raw_put(raw_table *r, uint32_t key, const uint32_t *ids, size_t n)
{
    MDB_val k = { 4, &key }, v = { n * 4, (void *)ids };
    assert_int_equal(n ? mdb_put(r->txn, r->dbi, &k, &v, 0) : mdb_del(r->txn, r->dbi, &k, NULL), 0);
}

static void expect_damage(fixture *f, uint64_t want_problems, const char *first)
{
    assert_ok(pdqm_store_open(f->path, 0, &f->store, &err));
    uint64_t problems = 0;
    assert_status(pdqm_store_verify(f->store, &problems, &err), PDQM_ERR_STORE);
    assert_int_equal(problems, want_problems);
    if (strcmp(err.message, first) != 0)
        fail_msg("first problem '%s', expected '%s'", err.message, first);
    pdqm_store_close(f->store);
    f->store = NULL;
}

/* A store of another schema version.  Making one needs the layout of
 * index/store_int.h: the "meta" table's "schema" key, a native u32. */
/* Content ids that are their item's own first hash in hex (what a hash
 * list names a row without an id) are not stored, the record is (schema
 * 3): the content records stay as small as with numeric ids, and every
 * read path renders the id again. */
static void test_hash_named_ids(void **state)
{
    fixture *f = *state;
    rng r = {77};
    enum { N = 2000 };
    assert_ok(pdqm_store_bank_create(f->store, "b", 31, PDQM_BANK_BLOCK, &err));
    static pdqm_hash256 hs[N];
    static char ids[N][PDQM_HASH_HEX_LEN + 1];
    for (int i = 0; i < N; i++) {
        hs[i] = rand_hash(&r);
        pdqm_hash256_to_hex(&hs[i], ids[i]);
        assert_int_equal(add1(f->store, "b", ids[i], hs[i], NULL), PDQM_ADDED);
    }
    /* A hex id that is not the item's first hash is kept as it is. */
    pdqm_hash256 other = rand_hash(&r);
    assert_int_equal(add1(f->store, "b", ids[0], other, NULL), PDQM_ADD_EXISTS);
    char other_id[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256 named_elsewhere = rand_hash(&r);
    pdqm_hash256_to_hex(&named_elsewhere, other_id);
    assert_int_equal(add1(f->store, "b", other_id, other, NULL), PDQM_ADDED);

    pdqm_content_info ci;
    for (int i = 0; i < N; i += 97) {
        assert_ok(pdqm_store_content_get(f->store, "b", ids[i], &ci, &err));
        assert_string_equal(ci.content_id, ids[i]);
        pdqm_content_info_clear(&ci);
        pdqm_matches m = lookup(f->store, &hs[i], 1, 0, NULL, 0);
        assert_int_equal(m.count, 1);
        assert_string_equal(m.items[0].content_id, ids[i]);
        pdqm_matches_free(&m);
    }
    assert_ok(pdqm_store_content_get(f->store, "b", other_id, &ci, &err));
    assert_string_equal(ci.content_id, other_id);
    pdqm_content_info_clear(&ci);
    assert_ok(pdqm_store_delete(f->store, "b", ids[5], &err));
    assert_status(pdqm_store_content_get(f->store, "b", ids[5], &ci, &err), PDQM_ERR_NOT_FOUND);
    assert_int_equal(count_matches(f->store, hs[5], 0), 0);
    assert_verified(f->store);

    /* The content records: about 10 bytes an item, not 40. */
    pdqm_store_close(f->store);
    f->store = NULL;
    raw_table cnum;
    raw_open(&cnum, f->path, "cnum", MDB_INTEGERKEY);
    MDB_cursor *c;
    MDB_val k, v;
    size_t bytes = 0;
    assert_int_equal(mdb_cursor_open(cnum.txn, cnum.dbi, &c), 0);
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        bytes += v.mv_size;
    mdb_cursor_close(c);
    raw_close(&cnum);
    assert_true(bytes < (size_t)N * 20);
}

static void test_schema_mismatch(void **state)
{
    fixture *f = *state;
    assert_ok(pdqm_store_bank_create(f->store, "s", 31, PDQM_BANK_BLOCK, &err));
    pdqm_store_close(f->store);
    f->store = NULL;

    raw_table meta;
    raw_open(&meta, f->path, "meta", 0);
    uint32_t version = PDQM_STORE_SCHEMA_VERSION + 1;
    MDB_val k = {6, "schema"}, v = {4, &version};
    assert_int_equal(mdb_put(meta.txn, meta.dbi, &k, &v, 0), 0);
    raw_close(&meta);

    pdqm_store *s = NULL;
    assert_status(pdqm_store_open(f->path, 0, &s, &err), PDQM_ERR_SCHEMA);
    assert_null(s);
    assert_status(pdqm_store_open(f->path, PDQM_STORE_READONLY, &s, &err), PDQM_ERR_SCHEMA);
    assert_null(s);
    assert_status(pdqm_store_open(f->path, PDQM_STORE_CREATE, &s, &err), PDQM_ERR_SCHEMA);
    assert_null(s);

    /* Schemas 1 to 3 (before ids were stored compactly, before disabled
     * content and notes) are read as they are, and marked with this
     * version once opened for writing. */
    for (version = 1; version < PDQM_STORE_SCHEMA_VERSION; version++) {
        raw_open(&meta, f->path, "meta", 0);
        assert_int_equal(mdb_put(meta.txn, meta.dbi, &k, &v, 0), 0);
        raw_close(&meta);
        assert_ok(pdqm_store_open(f->path, PDQM_STORE_READONLY, &s, &err));
        assert_int_equal(stats(s).schema, version);
        pdqm_store_close(s);
        assert_ok(pdqm_store_open(f->path, 0, &s, &err));
        assert_int_equal(stats(s).schema, PDQM_STORE_SCHEMA_VERSION);
        pdqm_store_close(s);
    }
}

static void test_verify_finds_damage(void **state)
{
    fixture *f = *state;
    rng r = {91};
    assert_ok(pdqm_store_bank_create(f->store, "v", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash hs[50];
    pdqm_add adds[50];
    char ids[50][8];
    for (int i = 0; i < 50; i++) {
        hs[i] = sh(rand_hash(&r), 100, 0);
        snprintf(ids[i], sizeof ids[i], "c%d", i);
        adds[i] = (pdqm_add){"v", ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &hs[i], 1, 0};
    }
    assert_ok(pdqm_store_add(f->store, adds, 50, NULL, &err));
    assert_ok(pdqm_store_index_pending(f->store, NULL, &err));
    assert_verified(f->store);
    pdqm_store_close(f->store);
    f->store = NULL;

    /* 1. An entry loses one of its 16 postings. */
    /* "postings" maps a u32 key, slot << 16 | slot value, to its
     * ascending u32 entry ids. */
    raw_table rp;
    uint32_t list[65];
    size_t n;
    raw_open(&rp, f->path, "postings", MDB_INTEGERKEY);
    uint32_t key = raw_key(&rp, 0, list, &n);
    uint32_t lost = list[0];
    raw_put(&rp, key, list + 1, n - 1);
    raw_close(&rp);
    char want[160];
    snprintf(want, sizeof want, "entry %u: posted in 15 of its 16 slots", lost);
    expect_damage(f, 1, want);

    /* 2. A key names an entry whose hash has another value in that slot
     * (the key's entries keep ascending). */
    raw_open(&rp, f->path, "postings", MDB_INTEGERKEY);
    key = raw_key(&rp, 5, list, &n);
    uint32_t stranger = 0;
    while (stranger < 50) {
        int in = 0;
        for (size_t i = 0; i < n; i++)
            in |= list[i] == stranger;
        if (!in && stranger != lost)
            break;
        stranger++;
    }
    size_t at = 0;
    while (at < n && list[at] < stranger)
        at++;
    memmove(list + at + 1, list + at, (n - at) * sizeof *list);
    list[at] = stranger;
    raw_put(&rp, key, list, n + 1);
    raw_close(&rp);
    snprintf(want, sizeof want, "posting %08x -> entry %u, whose hash has another value there",
             key, stranger);
    expect_damage(f, 2, want);
}

/* verify checks the wide layout too: a wide posting whose suffix is not
 * its hash's, one missing, and a narrow one left in a store posted wide. */
static void test_verify_finds_damage_wide(void **state)
{
    fixture *f = *state;
    rng r = {92};
    wide_at("0");
    assert_ok(pdqm_store_bank_create(f->store, "v", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash hs[50];
    pdqm_add adds[50];
    char ids[50][8];
    for (int i = 0; i < 50; i++) {
        hs[i] = sh(rand_hash(&r), 100, 0);
        snprintf(ids[i], sizeof ids[i], "c%d", i);
        adds[i] = (pdqm_add){"v", ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &hs[i], 1, 0};
    }
    assert_ok(pdqm_store_add(f->store, adds, 50, NULL, &err));
    assert_ok(pdqm_store_index_pending(f->store, NULL, &err));
    assert_int_equal(stats(f->store).wide_from, 0);
    assert_verified(f->store);
    pdqm_store_close(f->store);
    f->store = NULL;
    wide_at(NULL);

    /* 1. The first wide key's first suffix changed: ids, then suffixes. */
    raw_table rp;
    raw_open(&rp, f->path, "postings", MDB_INTEGERKEY);
    MDB_cursor *c;
    uint32_t key = 16u << 16;
    MDB_val k = { 4, &key }, v;
    assert_int_equal(mdb_cursor_open(rp.txn, rp.dbi, &c), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), 0);
    memcpy(&key, k.mv_data, 4);
    size_t n = v.mv_size / 5;
    assert_true(v.mv_size % 5 == 0 && n >= 1 && n <= 64);
    uint8_t val[64 * 5];
    memcpy(val, v.mv_data, v.mv_size);
    mdb_cursor_close(c);
    uint32_t first;
    memcpy(&first, val, 4);
    val[4 * n] ^= 0x01;
    MDB_val nk = { 4, &key }, nv = { n * 5, val };
    assert_int_equal(mdb_put(rp.txn, rp.dbi, &nk, &nv, 0), 0);
    raw_close(&rp);
    char want[160];
    snprintf(want, sizeof want, "posting %08x -> entry %u, whose hash has another value there",
             key, first);
    /* (and the entry is then posted in 10 of its 11 slots) */
    expect_damage(f, 2, want);

    /* 2. A narrow posting of a wide entry. */
    raw_open(&rp, f->path, "postings", MDB_INTEGERKEY);
    uint32_t nkey = 3u << 16, one = first;
    MDB_val k2 = { 4, &nkey }, v2 = { 4, &one };
    assert_int_equal(mdb_put(rp.txn, rp.dbi, &k2, &v2, 0), 0);
    raw_close(&rp);
    snprintf(want, sizeof want, "posting %08x -> entry %u, which is posted wide (from wide_from on)",
             nkey, first);
    expect_damage(f, 3, want);
}

/* One handle shared by a writer thread and reader threads: every lookup
 * sees whole batches (each adds the hash h to 4 items at once), never
 * fewer than before.  Threads only record; the main thread asserts. */
#define TH_BATCHES 60
#define TH_PER_BATCH 4

typedef struct th_shared {
    pdqm_store *s;
    pdqm_hash256 h;
    volatile int done;           /* set by the writer; read under the lock */
    pthread_mutex_t lock;
    int writer_failures, reader_failures;
    size_t lookups;
} th_shared;

static void *th_writer(void *arg)
{
    th_shared *t = arg;
    rng r = {44};
    for (int b = 0; b < TH_BATCHES; b++) {
        pdqm_stored_hash hs[TH_PER_BATCH + 20];
        pdqm_add adds[TH_PER_BATCH + 20];
        char ids[TH_PER_BATCH + 20][24];
        for (int i = 0; i < TH_PER_BATCH + 20; i++) {
            hs[i] = sh(i < TH_PER_BATCH ? t->h : rand_hash(&r), 100, 0);
            snprintf(ids[i], sizeof ids[i], "b%d-%d", b, i);
            adds[i] = (pdqm_add){"t", ids[i], NULL, NULL, NULL, PDQM_CONTENT_IMAGE, &hs[i], 1, 0};
        }
        if (pdqm_store_add(t->s, adds, TH_PER_BATCH + 20, NULL, NULL) != PDQM_OK) {
            pthread_mutex_lock(&t->lock);
            t->writer_failures++;
            pthread_mutex_unlock(&t->lock);
        }
    }
    pthread_mutex_lock(&t->lock);
    t->done = 1;
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static void *th_reader(void *arg)
{
    th_shared *t = arg;
    size_t last = 0, n = 0;
    int failures = 0, done = 0;
    while (!done) {
        pthread_mutex_lock(&t->lock);
        done = t->done;
        pthread_mutex_unlock(&t->lock);
        pdqm_lookup_options o = {0, NULL, 0};
        pdqm_matches m;
        if (pdqm_store_lookup(t->s, &t->h, 1, &o, &m, NULL) != PDQM_OK) {
            failures++;
            continue;
        }
        if (m.count % TH_PER_BATCH != 0 || m.count < last)
            failures++;
        last = m.count;
        n++;
        pdqm_matches_free(&m);
    }
    if (last != TH_BATCHES * TH_PER_BATCH)   /* the last lookup began after the writer */
        failures++;
    pthread_mutex_lock(&t->lock);
    t->reader_failures += failures;
    t->lookups += n;
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static void test_threads(void **state)
{
    fixture *f = *state;
    rng r = {45};
    assert_ok(pdqm_store_bank_create(f->store, "t", 31, PDQM_BANK_BLOCK, &err));
    th_shared t = {.s = f->store, .h = rand_hash(&r)};
    assert_int_equal(pthread_mutex_init(&t.lock, NULL), 0);
    pthread_t w, rd[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, th_reader, &t), 0);
    assert_int_equal(pthread_create(&w, NULL, th_writer, &t), 0);
    assert_int_equal(pthread_join(w, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(rd[i], NULL), 0);
    pthread_mutex_destroy(&t.lock);
    assert_int_equal(t.writer_failures, 0);
    assert_int_equal(t.reader_failures, 0);
    assert_true(t.lookups >= 3);
    assert_int_equal(count_matches(f->store, t.h, 0), TH_BATCHES * TH_PER_BATCH);
    assert_int_equal(stats(f->store).contents, TH_BATCHES * (TH_PER_BATCH + 20));
    assert_verified(f->store);
}

/* Group commit: writers in several threads share transactions, each in a
 * nested transaction of its own.  Writers to a bank that does not exist
 * fail inside the shared transaction; what the others add must all be
 * there, and nothing of the failed ones. */
#define GC_THREADS 8
#define GC_FAILING 2            /* the last two threads write to bank "nope" */
#define GC_BATCHES 40
#define GC_PER_BATCH 50

typedef struct gc_arg {
    pdqm_store *s;
    int thread;
    int ok, not_found, other;
} gc_arg;

static pdqm_hash256 gc_hash(int thread, int batch, int i)
{
    rng r = {(uint64_t)(thread * 1000003 + batch * 1009 + i)};
    return rand_hash(&r);
}

static void *gc_writer(void *arg)
{
    gc_arg *a = arg;
    const char *bank = a->thread >= GC_THREADS - GC_FAILING ? "nope" : "g";
    for (int b = 0; b < GC_BATCHES; b++) {
        pdqm_stored_hash hs[GC_PER_BATCH];
        pdqm_add adds[GC_PER_BATCH];
        char ids[GC_PER_BATCH][32];
        for (int i = 0; i < GC_PER_BATCH; i++) {
            hs[i] = sh(gc_hash(a->thread, b, i), 100, 0);
            snprintf(ids[i], sizeof ids[i], "t%d-b%d-%d", a->thread, b, i);
            adds[i] = (pdqm_add){bank, ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &hs[i], 1, 0};
        }
        pdqm_error e;
        pdqm_status st = pdqm_store_add(a->s, adds, GC_PER_BATCH, NULL, &e);
        if (st == PDQM_OK)
            a->ok++;
        else if (st == PDQM_ERR_NOT_FOUND && strstr(pdqm_error_message(&e), "no bank 'nope'"))
            a->not_found++;
        else
            a->other++;
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    fixture *f = *state;
    assert_ok(pdqm_store_bank_create(f->store, "g", 0, PDQM_BANK_BLOCK, &err));
    pthread_t th[GC_THREADS];
    gc_arg args[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) {
        args[i] = (gc_arg){f->store, i, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, gc_writer, &args[i]), 0);
    }
    for (int i = 0; i < GC_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < GC_THREADS; i++) {
        int failing = i >= GC_THREADS - GC_FAILING;
        assert_int_equal(args[i].ok, failing ? 0 : GC_BATCHES);
        assert_int_equal(args[i].not_found, failing ? GC_BATCHES : 0);
        assert_int_equal(args[i].other, 0);
    }
    const size_t want = (size_t)(GC_THREADS - GC_FAILING) * GC_BATCHES * GC_PER_BATCH;
    assert_int_equal(stats(f->store).contents, want);
    assert_int_equal(stats(f->store).hashes, want);
    /* Every hash of every thread: found once where added, never otherwise. */
    for (int t = 0; t < GC_THREADS; t++)
        for (int b = 0; b < GC_BATCHES; b += 7) {
            pdqm_hash256 q = gc_hash(t, b, b % GC_PER_BATCH);
            assert_int_equal(count_matches(f->store, q, 0), t < GC_THREADS - GC_FAILING ? 1 : 0);
        }
    assert_verified(f->store);
}

/* Issue 12, finding 14: a large add indexed what was pending and then
 * added, in two transactions; a deferred add by another writer between
 * the two left indexed entries inside the pending range.  Deleting those
 * then skipped their postings: their hashes failed to look up ("cannot
 * read a match") and verify found problems.  One thread makes large adds
 * while another makes small deferred ones; then every large item is
 * deleted and its hashes must find nothing. */
#define IW_ROUNDS 30
#define IW_DEFERRED 1500       /* small adds at most */
#define IW_LARGE 1100          /* hashes: over the small-batch size */

typedef struct iw_arg {
    pdqm_store *store;
    _Atomic int stop;
    int failed;
    unsigned adds;
} iw_arg;

static void *iw_deferred(void *p)
{
    iw_arg *a = p;
    rng r = {77};
    char id[32];
    while (!a->stop && a->adds < IW_DEFERRED) {
        pdqm_stored_hash h = sh(rand_hash(&r), 90, 0);
        snprintf(id, sizeof id, "d%u", a->adds++);
        pdqm_add add = {"iw", id, NULL, NULL, NULL, PDQM_CONTENT_HASHES, &h, 1, 0};
        pdqm_error e;
        if (pdqm_store_add_deferred(a->store, &add, 1, NULL, &e) != PDQM_OK)
            a->failed = 1;
    }
    return NULL;
}

static void test_finding_14_second_writer_between_pass_and_add(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    assert_ok(pdqm_store_bank_create(s, "iw", 0, PDQM_BANK_BLOCK, &err));
    iw_arg a = { s, 0, 0, 0 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, iw_deferred, &a), 0);
    static pdqm_stored_hash big[IW_ROUNDS][IW_LARGE];
    rng r = {78};
    for (int i = 0; i < IW_ROUNDS; i++) {
        for (int k = 0; k < IW_LARGE; k++)
            big[i][k] = sh(rand_hash(&r), 90, 0);
        char id[16];
        snprintf(id, sizeof id, "L%d", i);
        pdqm_add add = {"iw", id, NULL, NULL, NULL, PDQM_CONTENT_VIDEO, big[i], IW_LARGE, 0};
        assert_ok(pdqm_store_add(s, &add, 1, NULL, &err));
    }
    a.stop = 1;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(a.failed, 0);
    assert_verified(s);
    for (int i = 0; i < IW_ROUNDS; i++) {
        char id[16];
        snprintf(id, sizeof id, "L%d", i);
        assert_ok(pdqm_store_delete(s, "iw", id, &err));
    }
    for (int i = 0; i < IW_ROUNDS; i++)
        for (int k = 0; k < IW_LARGE; k += 97)
            assert_int_equal(count_matches(s, big[i][k].hash, 0), 0);
    assert_verified(s);
    assert_ok(pdqm_store_index_pending(s, NULL, &err));
    assert_verified(s);
    assert_int_equal(stats(s).hashes, a.adds);
}

/* Pending entries through the in-memory index: a store with indexed
 * hashes and many pending ones (near-duplicates of indexed ones among
 * them), some deleted, looked up in batches (which index them in memory)
 * and alone (which scan), against a brute force; then indexed by a pass
 * large enough to rewrite the postings whole. */
#define PI_INDEXED 20000
#define PI_PENDING 40000        /* x 16 postings: over half the keys, a rewrite */
#define PI_QUERIES 200
#define PI_MORE 21000           /* small adds: a pass once ~15000 gather */

static void pi_check(pdqm_store *s, const pdqm_hash256 *h, const bool *live, size_t n,
                     const pdqm_hash256 *q, size_t nq, int r)
{
    size_t want = 0;
    for (size_t qi = 0; qi < nq; qi++)
        for (size_t i = 0; i < n; i++)
            if (live[i] && pdqm_hash256_distance(&q[qi], &h[i]) <= r)
                want++;
    /* One batch (the in-memory index), then each query alone (a scan). */
    pdqm_matches m = lookup(s, q, nq, r, NULL, 0);
    assert_int_equal(m.count, want);
    for (size_t i = 0; i < m.count; i++) {
        unsigned k;
        assert_int_equal(sscanf(m.items[i].content_id, "p%u", &k), 1);
        assert_true(k < n && live[k]);
        assert_true(hash_eq(&m.items[i].hash, &h[k]));
    }
    pdqm_matches_free(&m);
    size_t alone = 0;
    for (size_t qi = 0; qi < nq; qi += 10)
        alone += count_matches(s, q[qi], r);
    size_t want_alone = 0;
    for (size_t qi = 0; qi < nq; qi += 10)
        for (size_t i = 0; i < n; i++)
            if (live[i] && pdqm_hash256_distance(&q[qi], &h[i]) <= r)
                want_alone++;
    assert_int_equal(alone, want_alone);
}

static void pi_add(pdqm_store *s, const pdqm_hash256 *h, size_t from, size_t to, bool deferred)
{
    const size_t batch = 1000;
    pdqm_stored_hash *hs = malloc(batch * sizeof *hs);
    pdqm_add *adds = malloc(batch * sizeof *adds);
    char (*ids)[16] = malloc(batch * sizeof *ids);
    assert_true(hs && adds && ids);
    for (size_t b = from; b < to; b += batch) {
        size_t n = to - b < batch ? to - b : batch;
        for (size_t i = 0; i < n; i++) {
            hs[i] = sh(h[b + i], 100, 0);
            snprintf(ids[i], sizeof ids[i], "p%zu", b + i);
            adds[i] = (pdqm_add){"p", ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &hs[i], 1, 0};
        }
        if (deferred)
            assert_ok(pdqm_store_add_deferred(s, adds, n, NULL, &err));
        else
            assert_ok(pdqm_store_add(s, adds, n, NULL, &err));
    }
    free(hs);
    free(adds);
    free(ids);
}

/* Items added deferred are not in cindex until a pass: each handle finds
 * them by name through its own table of pending names.  Two handles on one
 * file (as two processes) add, find, re-add (an item already there is not
 * added twice, whichever handle added it), delete and add again; the pass
 * of one puts every name in cindex; verify holds throughout. */
static void test_pending_names_across_handles(void **state)
{
    fixture *f = *state;
    pdqm_store *a = f->store, *b;
    assert_ok(pdqm_store_open(f->path, 0, &b, &err));
    assert_ok(pdqm_store_bank_create(a, "p", 31, PDQM_BANK_BLOCK, &err));
    rng r = {93};
    enum { N = 3000 };
    pdqm_stored_hash *hs = malloc(N * sizeof *hs);
    pdqm_add *adds = malloc(N * sizeof *adds);
    pdqm_add_outcome *out = malloc(N * sizeof *out);
    char (*ids)[16] = malloc(N * sizeof *ids);
    assert_true(hs && adds && out && ids);
    for (int i = 0; i < N; i++) {
        hs[i] = sh(rand_hash(&r), 100, 0);
        snprintf(ids[i], sizeof ids[i], "n%d", i);
        adds[i] = (pdqm_add){"p", ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &hs[i], 1, 0};
    }
    /* a adds the first third, b the second; each finds the other's. */
    assert_ok(pdqm_store_add_deferred(a, adds, N / 3, out, &err));
    assert_ok(pdqm_store_add_deferred(b, adds + N / 3, N / 3, out, &err));
    pdqm_content_info info;
    for (int i = 0; i < 2 * N / 3; i += 97) {
        assert_ok(pdqm_store_content_get(i % 2 ? a : b, "p", ids[i], &info, &err));
        pdqm_content_info_clear(&info);
    }
    assert_status(pdqm_store_content_get(a, "p", ids[N - 1], &info, &err), PDQM_ERR_NOT_FOUND);
    /* Both halves again through a: nothing new; then the rest. */
    assert_ok(pdqm_store_add_deferred(a, adds, 2 * N / 3, out, &err));
    for (int i = 0; i < 2 * N / 3; i++)
        assert_int_equal(out[i], PDQM_ADD_EXISTS);
    assert_ok(pdqm_store_add_deferred(b, adds + 2 * N / 3, N - 2 * N / 3, out, &err));
    assert_int_equal(out[0], PDQM_ADDED);
    assert_int_equal(stats(a).pending, N);
    /* Deleted while pending, then added again (another hash): found once. */
    assert_ok(pdqm_store_delete(b, "p", ids[5], &err));
    assert_status(pdqm_store_content_get(a, "p", ids[5], &info, &err), PDQM_ERR_NOT_FOUND);
    pdqm_stored_hash again = sh(rand_hash(&r), 90, 0);
    pdqm_add readd = {"p", ids[5], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &again, 1, 0};
    assert_ok(pdqm_store_add_deferred(a, &readd, 1, out, &err));
    assert_int_equal(out[0], PDQM_ADDED);
    assert_ok(pdqm_store_add_deferred(b, &readd, 1, out, &err));
    assert_int_equal(out[0], PDQM_ADD_EXISTS);
    assert_verified(a);
    /* b's pass: every name in cindex; a finds them there. */
    uint64_t indexed = 0;
    assert_ok(pdqm_store_index_pending(b, &indexed, &err));
    assert_int_equal(indexed, N);
    assert_int_equal(stats(a).pending, 0);
    for (int i = 0; i < N; i += 31) {
        assert_ok(pdqm_store_content_get(a, "p", ids[i], &info, &err));
        if (i == 5)
            assert_int_equal(info.n_hashes, 1);
        pdqm_content_info_clear(&info);
    }
    assert_ok(pdqm_store_add_deferred(a, adds, N, out, &err));
    for (int i = 0; i < N; i++)
        assert_int_equal(out[i], PDQM_ADD_EXISTS);
    assert_verified(a);
    assert_verified(b);
    pdqm_store_close(b);
    free(hs);
    free(adds);
    free(out);
    free(ids);
}

static void test_pending_index(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {46};
    const size_t total = PI_INDEXED + PI_PENDING;
    pdqm_hash256 *h = malloc(total * sizeof *h);
    bool *live = calloc(total, sizeof *live);
    pdqm_hash256 q[PI_QUERIES];
    assert_true(h && live);
    for (size_t i = 0; i < total; i++)   /* a third near-duplicates of earlier ones */
        h[i] = i > 0 && i % 3 == 0 ? flip(&r, h[rng_below(&r, (uint32_t)i)], (int)rng_below(&r, 30))
                                   : rand_hash(&r);
    for (size_t i = 0; i < PI_QUERIES; i++)
        q[i] = flip(&r, h[rng_below(&r, (uint32_t)total)], (int)rng_below(&r, 40));
    assert_ok(pdqm_store_bank_create(s, "p", 31, PDQM_BANK_BLOCK, &err));

    /* Indexed: one batch over SMALL_BATCH is indexed at once. */
    {
        pdqm_stored_hash *hs = malloc(PI_INDEXED * sizeof *hs);
        pdqm_add *adds = malloc(PI_INDEXED * sizeof *adds);
        char (*ids)[16] = malloc(PI_INDEXED * sizeof *ids);
        assert_true(hs && adds && ids);
        for (size_t i = 0; i < PI_INDEXED; i++) {
            hs[i] = sh(h[i], 100, 0);
            snprintf(ids[i], sizeof ids[i], "p%zu", i);
            adds[i] = (pdqm_add){"p", ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &hs[i], 1, 0};
            live[i] = true;
        }
        assert_ok(pdqm_store_add(s, adds, PI_INDEXED, NULL, &err));
        free(hs);
        free(adds);
        free(ids);
    }
    assert_int_equal(stats(s).pending, 0);

    /* Half the pending ones, checked; deletes among them, checked; the
     * rest (the index extends), checked. */
    pi_add(s, h, PI_INDEXED, PI_INDEXED + PI_PENDING / 2, true);
    for (size_t i = PI_INDEXED; i < PI_INDEXED + PI_PENDING / 2; i++)
        live[i] = true;
    assert_int_equal(stats(s).pending, PI_PENDING / 2);
    for (int radius = 0; radius <= 32; radius += 16)
        pi_check(s, h, live, total, q, PI_QUERIES, radius);
    char id[16];
    for (size_t i = PI_INDEXED; i < PI_INDEXED + PI_PENDING / 2; i += 97) {
        snprintf(id, sizeof id, "p%zu", i);
        assert_ok(pdqm_store_delete(s, "p", id, &err));
        live[i] = false;
    }
    for (size_t i = 5; i < PI_INDEXED; i += 101) {
        snprintf(id, sizeof id, "p%zu", i);
        assert_ok(pdqm_store_delete(s, "p", id, &err));
        live[i] = false;
    }
    pi_check(s, h, live, total, q, PI_QUERIES, 31);
    pi_add(s, h, PI_INDEXED + PI_PENDING / 2, total, true);
    for (size_t i = PI_INDEXED + PI_PENDING / 2; i < total; i++)
        live[i] = true;
    pi_check(s, h, live, total, q, PI_QUERIES, 31);
    assert_verified(s);

    /* The pass: over half of the keys, so the postings are rewritten. */
    uint64_t indexed = 0;
    assert_ok(pdqm_store_index_pending(s, &indexed, &err));
    assert_int_equal(indexed, PI_PENDING - (PI_PENDING / 2 + 96) / 97);
    assert_int_equal(stats(s).pending, 0);
    assert_verified(s);
    for (int radius = 0; radius <= 48; radius += 16)
        pi_check(s, h, live, total, q, PI_QUERIES, radius);

    /* Small adds through pdqm_store_add: pending until a quarter of the
     * live hashes as of the last pass has gathered (14,9xx here), then a
     * pass of their own. */
    pdqm_hash256 *more = malloc(PI_MORE * sizeof *more);
    assert_non_null(more);
    for (size_t i = 0; i < PI_MORE; i++)
        more[i] = rand_hash(&r);
    size_t added = 0, passes = 0;
    for (size_t b = 0; b < PI_MORE / 1000; b++) {
        pdqm_stored_hash hs[1000];
        pdqm_add adds[1000];
        char ids[1000][16];
        for (size_t i = 0; i < 1000; i++) {
            hs[i] = sh(more[added + i], 100, 0);
            snprintf(ids[i], sizeof ids[i], "m%zu", added + i);
            adds[i] = (pdqm_add){"p", ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &hs[i], 1, 0};
        }
        uint64_t limit = stats(s).pending_limit;   /* the window this add meets */
        assert_ok(pdqm_store_add(s, adds, 1000, NULL, &err));
        added += 1000;
        pdqm_store_stats now = stats(s);
        uint64_t pending = now.pending;
        assert_int_equal(now.entries_ever, total + added);
        static size_t since = 0;   /* added since the last pass */
        since = b == 0 ? 1000 : since + 1000;
        if (since < limit) {
            assert_int_equal(pending, since);
        } else {
            assert_int_equal(pending, 0);
            since = 0;
            passes++;
        }
    }
    assert_int_equal(passes, 1);
    for (size_t i = 0; i < PI_MORE; i += 250)
        assert_int_equal(count_matches(s, more[i], 0), 1);
    assert_verified(s);
    free(more);
    free(h);
    free(live);
}

/* ------------------------------------------------------------------ */
/* 6. Walk, stats, verify, compact                                      */

typedef struct walk_item {
    const char *bank, *id;
    int n;
    pdqm_stored_hash h[5];
} walk_item;

typedef struct walk_state {
    walk_item *items;            /* in the order added */
    size_t n_items;
    size_t calls, hashes, stop_at;
    int seen[8];
    size_t next;                 /* items before this were walked past */
    pdqm_store *store;
} walk_state;

static int walk_fn(void *arg, const pdqm_content_info *info,
                   const pdqm_stored_hash *hashes, size_t n)
{
    walk_state *w = arg;
    w->calls++;
    w->hashes += n;
    /* In the order added: the item is at or after w->next. */
    size_t i = w->next;
    while (i < w->n_items && (strcmp(w->items[i].bank, info->bank) != 0 ||
                              strcmp(w->items[i].id, info->content_id) != 0))
        i++;
    if (i == w->n_items)
        fail_msg("walk: %s/%s unexpected or out of order", info->bank, info->content_id);
    w->next = i + 1;
    w->seen[i]++;
    const walk_item *it = &w->items[i];
    assert_int_equal(n, it->n);
    assert_int_equal(info->n_hashes, it->n);
    assert_int_equal(info->kind, it->n > 1 ? PDQM_CONTENT_VIDEO : PDQM_CONTENT_IMAGE);
    pdqm_content_info ci;   /* the same as content_get tells */
    assert_ok(pdqm_store_content_get(w->store, info->bank, info->content_id, &ci, &err));
    assert_int_equal(ci.number, info->number);
    assert_int_equal(ci.first_entry, info->first_entry);
    pdqm_content_info_clear(&ci);
    for (size_t j = 0; j < n; j++) {
        assert_true(hash_eq(&hashes[j].hash, &it->h[j].hash));
        assert_int_equal(hashes[j].quality, it->h[j].quality);
        assert_true(hashes[j].timestamp == it->h[j].timestamp);
    }
    return w->calls == w->stop_at ? 7 : 0;
}

static void test_walk(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {10};
    assert_ok(pdqm_store_bank_create(s, "w1", 31, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "w2", 31, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "w0", 31, PDQM_BANK_BLOCK, &err));   /* empty */
    /* In the order added, in two batches, the banks interleaved. */
    walk_item items[5] = {
        {.bank = "w1", .id = "k03", .n = 1}, {.bank = "w2", .id = "k00", .n = 5},
        {.bank = "w1", .id = "k01", .n = 2}, {.bank = "w1", .id = "k10", .n = 3},
        {.bank = "w1", .id = "k02", .n = 4},
    };
    pdqm_add adds[5];
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < items[i].n; j++)
            items[i].h[j] = sh(rand_hash(&r), (int)rng_below(&r, 101), j);
        adds[i] = (pdqm_add){items[i].bank, items[i].id, NULL, NULL, NULL,
                             items[i].n > 1 ? PDQM_CONTENT_VIDEO : PDQM_CONTENT_IMAGE,
                             items[i].h, (size_t)items[i].n, 0};
    }
    assert_ok(pdqm_store_add(s, adds, 3, NULL, &err));
    assert_ok(pdqm_store_add(s, adds + 3, 2, NULL, &err));

    walk_state w = {.items = items, .n_items = 5, .store = s};
    int stopped = -1;
    assert_ok(pdqm_store_walk(s, NULL, walk_fn, &w, &stopped, &err));
    assert_int_equal(stopped, 0);
    assert_int_equal(w.calls, 5);
    assert_int_equal(w.hashes, 15);
    for (int i = 0; i < 5; i++)
        assert_int_equal(w.seen[i], 1);

    w = (walk_state){.items = items, .n_items = 5, .store = s};
    assert_ok(pdqm_store_walk(s, "w1", walk_fn, &w, &stopped, &err));
    assert_int_equal(w.calls, 4);
    assert_int_equal(w.hashes, 10);
    assert_int_equal(w.seen[1], 0);
    w = (walk_state){.items = items, .n_items = 5, .store = s};
    assert_ok(pdqm_store_walk(s, "w0", walk_fn, &w, NULL, &err));
    assert_int_equal(w.calls, 0);
    assert_status(pdqm_store_walk(s, "nope", walk_fn, &w, NULL, &err), PDQM_ERR_NOT_FOUND);

    /* Stopping: k03 then k01, and no more. */
    w = (walk_state){.items = items, .n_items = 5, .stop_at = 2, .store = s};
    assert_ok(pdqm_store_walk(s, "w1", walk_fn, &w, &stopped, &err));
    assert_int_equal(stopped, 7);
    assert_int_equal(w.calls, 2);
    assert_int_equal(w.seen[0] + w.seen[2], 2);

    /* Deleted items are not walked. */
    assert_ok(pdqm_store_delete(s, "w1", "k10", &err));
    w = (walk_state){.items = items, .n_items = 5, .store = s};
    assert_ok(pdqm_store_walk(s, NULL, walk_fn, &w, &stopped, &err));
    assert_int_equal(stopped, 0);
    assert_int_equal(w.calls, 4);
    assert_int_equal(w.hashes, 12);
    assert_int_equal(w.seen[3], 0);

    /* From a number: the items numbered from it on, one bank or all (each
     * item's number is its first entry: 0, 1, 6, 8, 11, k10 at 8 gone). */
    pdqm_content_info ci;
    assert_ok(pdqm_store_content_get(s, "w1", "k01", &ci, &err));
    uint32_t k01 = ci.number;
    pdqm_content_info_clear(&ci);
    assert_int_equal(k01, 6);
    w = (walk_state){.items = items, .n_items = 5, .store = s, .next = 2};
    assert_ok(pdqm_store_walk_from(s, "w1", k01, walk_fn, &w, &stopped, &err));
    assert_int_equal(w.calls, 2);   /* k01, k02 */
    assert_int_equal(w.seen[2] + w.seen[4], 2);
    w = (walk_state){.items = items, .n_items = 5, .store = s, .next = 2};
    assert_ok(pdqm_store_walk_from(s, "w1", k01 + 1, walk_fn, &w, &stopped, &err));
    assert_int_equal(w.calls, 1);   /* k02: k10 is gone */
    assert_int_equal(w.seen[4], 1);
    w = (walk_state){.items = items, .n_items = 5, .store = s, .next = 1};
    assert_ok(pdqm_store_walk_from(s, NULL, 1, walk_fn, &w, &stopped, &err));
    assert_int_equal(w.calls, 3);   /* k00, k01, k02 */
    for (uint32_t past = 12; past < 14; past++) {
        w = (walk_state){.items = items, .n_items = 5, .store = s};
        assert_ok(pdqm_store_walk_from(s, "w1", past, walk_fn, &w, &stopped, &err));
        assert_ok(pdqm_store_walk_from(s, NULL, past, walk_fn, &w, &stopped, &err));
        assert_ok(pdqm_store_walk_from(s, "w1", UINT32_MAX, walk_fn, &w, &stopped, &err));
        assert_int_equal(w.calls, 0);
    }
    assert_status(pdqm_store_walk_from(s, "nope", 3, walk_fn, &w, NULL, &err),
                  PDQM_ERR_NOT_FOUND);
}

static void test_stats_and_verify(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {11};
    pdqm_store_stats st = stats(s);
    assert_int_equal(st.banks, 0);
    assert_int_equal(st.contents, 0);
    assert_int_equal(st.hashes, 0);
    assert_int_equal(st.entries_ever, 0);
    assert_int_equal(st.schema, PDQM_STORE_SCHEMA_VERSION);
    assert_verified(s);

    assert_ok(pdqm_store_bank_create(s, "s1", 31, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "s2", 31, PDQM_BANK_BLOCK, &err));
    pdqm_hash256 q[2];
    fill_small(s, "s1", &r, 500, q, 2);
    fill_small(s, "s2", &r, 100, q, 2);
    pdqm_stored_hash v[7];
    for (int i = 0; i < 7; i++)
        v[i] = sh(rand_hash(&r), 60, i);
    pdqm_add video = {"s2", "video", NULL, NULL, NULL, PDQM_CONTENT_VIDEO, v, 7, 0};
    assert_ok(pdqm_store_add(s, &video, 1, NULL, &err));
    char id[16];
    for (int i = 0; i < 500; i += 5) {
        snprintf(id, sizeof id, "p%d", i);
        assert_ok(pdqm_store_delete(s, "s1", id, &err));
    }
    assert_ok(pdqm_store_delete(s, "s2", "video", &err));

    st = stats(s);
    assert_int_equal(st.banks, 2);
    assert_int_equal(st.contents, 400 + 100);
    assert_int_equal(st.hashes, 400 + 100);
    assert_int_equal(st.entries_ever, 500 + 100 + 7);
    assert_int_equal(st.schema, PDQM_STORE_SCHEMA_VERSION);
    assert_true(st.used_bytes > 0);
    assert_true(st.used_bytes <= st.map_bytes);
    assert_true(st.file_bytes > 0);
    assert_int_equal(bank(s, "s1").hashes, 400);
    assert_int_equal(bank(s, "s2").hashes, 100);
    assert_verified(s);
    assert_ok(pdqm_store_verify(s, NULL, NULL));

    assert_ok(pdqm_store_bank_delete(s, "s1", &err));
    st = stats(s);
    assert_int_equal(st.banks, 1);
    assert_int_equal(st.contents, 100);
    assert_int_equal(st.hashes, 100);
    assert_verified(s);
}

/* The lookup copy of the hashes gives back the memory of a range whose
 * content is all deleted (ids are never reused, so a store that adds and
 * deletes would otherwise grow it for ever), in the handle that deleted
 * and in one opened later; lookups stay exact around and inside it. */
static void test_hash_copy_gives_back(void **state)
{
    fixture *f = *state;
    enum { PER = 65536, ITEMS = 4 };   /* one item a chunk of the copy */
    rng r = {17};
    assert_ok(pdqm_store_bank_create(f->store, "v", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash *v = malloc((size_t)PER * ITEMS * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < (size_t)PER * ITEMS; i++)
        v[i] = sh(rand_hash(&r), 80, (double)(i % PER));
    const char *ids[ITEMS] = {"v0", "v1", "v2", "v3"};
    for (int i = 0; i < ITEMS; i++) {
        pdqm_add a = {"v", ids[i], NULL, NULL, NULL, PDQM_CONTENT_VIDEO, v + (size_t)i * PER, PER, 0};
        assert_ok(pdqm_store_add(f->store, &a, 1, NULL, &err));
    }
    /* Copied: every full records block. */
    const uint64_t full = (uint64_t)PER * ITEMS / 1023 * 1023;
    pdqm_hash256 in0 = v[5].hash, in1 = v[PER + 7].hash, in2 = flip(&r, v[2 * PER + 9].hash, 5);
    assert_int_equal(count_matches(f->store, in0, 0), 1);
    assert_int_equal(stats(f->store).hash_copy_bytes, full * 32);

    /* v1 fills the second chunk exactly: deleting it gives the chunk back. */
    assert_ok(pdqm_store_delete(f->store, "v", "v1", &err));
    assert_int_equal(count_matches(f->store, in1, 0), 0);
    assert_int_equal(stats(f->store).hash_copy_bytes, (full - PER) * 32);
    pdqm_matches m = lookup(f->store, &in2, 1, 31, NULL, 0);
    assert_int_equal(m.count, 1);
    assert_int_equal(m.items[0].distance, 5);
    assert_string_equal(m.items[0].content_id, "v2");
    pdqm_matches_free(&m);
    assert_int_equal(count_matches(f->store, in0, 0), 1);
    /* A scan (radius over 64) reads the given-back range as zeros: it must
     * still find exactly the live hashes, at their true distances. */
    pdqm_hash256 zero = {{0, 0, 0, 0}};
    m = lookup(f->store, &zero, 1, 256, NULL, 0);
    assert_int_equal(m.count, (size_t)PER * (ITEMS - 1));
    for (size_t i = 0; i < m.count; i++) {
        assert_string_not_equal(m.items[i].content_id, "v1");
        assert_int_equal(m.items[i].distance, (int)pdqm_hash256_distance(&zero, &m.items[i].hash));
    }
    pdqm_matches_free(&m);

    /* A handle opened later gives it back when it first copies. */
    pdqm_store_close(f->store);
    f->store = NULL;
    assert_ok(pdqm_store_open(f->path, 0, &f->store, &err));
    assert_int_equal(count_matches(f->store, in2, 31), 1);
    assert_int_equal(stats(f->store).hash_copy_bytes, (full - PER) * 32);
    assert_int_equal(count_matches(f->store, in1, 31), 0);
    assert_verified(f->store);
    free(v);
}

/* A one-shot handle (the lookup command's) keeps no copies: the first
 * lookup of a handle copied every hash of the store (32 MB at 1M hashes)
 * however few lookups followed.  Its lookups, one by one and in a batch
 * (which reads the batch's keys in one walk), equal the copying handle's. */
static void test_oneshot_handle_keeps_no_copies(void **state)
{
    fixture *f = *state;
    enum { N = 20000, Q = 100 };
    rng r = {29};
    assert_ok(pdqm_store_bank_create(f->store, "o", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash *v = malloc(N * sizeof *v);
    pdqm_hash256 *q = malloc(Q * sizeof *q);
    assert_non_null(v);
    assert_non_null(q);
    for (size_t i = 0; i < N; i++)
        v[i] = sh(rand_hash(&r), 80, (double)i);
    pdqm_add a = {"o", "all", NULL, NULL, NULL, PDQM_CONTENT_VIDEO, v, N, 0};
    assert_ok(pdqm_store_add(f->store, &a, 1, NULL, &err));
    for (size_t i = 0; i < Q; i++)
        q[i] = i % 2 ? rand_hash(&r) : flip(&r, v[i * 97].hash, (int)(i % 31));
    pdqm_matches want = lookup(f->store, q, Q, 31, NULL, 0);
    assert_true(stats(f->store).hash_copy_bytes > 0);
    assert_true(want.count >= Q / 2);

    pdqm_store *one;
    assert_ok(pdqm_store_open(f->path, PDQM_STORE_READONLY | PDQM_STORE_ONESHOT, &one, &err));
    pdqm_matches got = lookup(one, q, Q, 31, NULL, 0);   /* a batch */
    assert_int_equal(got.count, want.count);
    for (size_t i = 0; i < got.count; i++) {
        assert_int_equal(got.items[i].query, want.items[i].query);
        assert_int_equal(got.items[i].entry, want.items[i].entry);
        assert_int_equal(got.items[i].distance, want.items[i].distance);
    }
    pdqm_matches_free(&got);
    size_t one_by_one = 0;
    for (size_t i = 0; i < Q; i++)
        one_by_one += count_matches(one, q[i], 31);
    assert_int_equal(one_by_one, want.count);
    assert_int_equal(stats(one).hash_copy_bytes, 0);
    pdqm_store_close(one);
    pdqm_matches_free(&want);
    free(v);
    free(q);
}

/* The pass window is a quarter of the live hashes, not of the ids handed
 * out: a store that adds and deletes keeps its window (and the memory of
 * its pending index).  A store from before the window was kept falls back
 * to the ids. */
static void test_pass_window_follows_live(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {23};
    enum { BASE = 40000, ROUND = 1000, ROUNDS = 30 };
    assert_ok(pdqm_store_bank_create(s, "w", 31, PDQM_BANK_BLOCK, &err));
    pdqm_hash256 q[1];
    fill_small(s, "w", &r, BASE, q, 1);   /* one large add: indexed at once */
    assert_int_equal(stats(s).pending_limit, BASE / 4);

    size_t passes = 0;
    char ids[ROUND][24], old[24];
    for (int round = 0; round < ROUNDS; round++) {
        pdqm_stored_hash hs[ROUND];
        pdqm_add adds[ROUND];
        for (int i = 0; i < ROUND; i++) {
            hs[i] = sh(rand_hash(&r), 100, 0);
            snprintf(ids[i], sizeof ids[i], "c%d-%d", round, i);
            adds[i] = (pdqm_add){"w", ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES, &hs[i], 1, 0};
        }
        uint64_t before = stats(s).pending;
        assert_ok(pdqm_store_add(s, adds, ROUND, NULL, &err));
        passes += stats(s).pending < before + ROUND;
        for (int i = 0; round > 0 && i < ROUND; i++) {
            snprintf(old, sizeof old, "c%d-%d", round - 1, i);
            assert_ok(pdqm_store_delete(s, "w", old, &err));
        }
    }
    pdqm_store_stats st = stats(s);
    assert_int_equal(st.entries_ever, BASE + ROUND * ROUNDS);
    assert_int_equal(st.hashes, BASE + ROUND);
    assert_int_equal(passes, 2);   /* at 10,000 pending, then at 10,500 */
    /* A pass runs inside an add, before that round deletes the one
     * before: BASE + 2 rounds live, not a quarter of the 70,000 ids. */
    assert_int_equal(st.pending_limit, (BASE + 2 * ROUND) / 4);
    assert_true(st.pending < st.pending_limit);
    assert_verified(s);

    /* Without the kept window (a store from before it), the ids. */
    pdqm_store_close(f->store);
    f->store = NULL;
    raw_table t;
    raw_open(&t, f->path, "meta", 0);
    MDB_val k = { strlen("pass_window"), "pass_window" };
    assert_int_equal(mdb_del(t.txn, t.dbi, &k, NULL), 0);
    raw_close(&t);
    assert_ok(pdqm_store_open(f->path, 0, &f->store, &err));
    assert_int_equal(stats(f->store).pending_limit, (BASE + ROUND * ROUNDS) / 4);
}

static void test_compact(void **state)
{
    fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = {12};
    assert_ok(pdqm_store_bank_create(s, "c1", 20, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "c2", 40, PDQM_BANK_ALLOW, &err));
    pdqm_hash256 q[80];
    fill_small(s, "c1", &r, 400, q, 40);
    fill_small(s, "c2", &r, 400, q + 40, 40);
    char id[16];
    for (int i = 0; i < 400; i += 3) {
        snprintf(id, sizeof id, "p%d", i);
        assert_ok(pdqm_store_delete(s, "c1", id, &err));
    }
    size_t n0, n1;
    flat_match *m0 = flatten(s, q, 80, 32, &n0);
    assert_true(n0 >= 30);
    pdqm_store_stats st0 = stats(s);

    char path[256];
    snprintf(path, sizeof path, "%s/compact.db", f->dir);
    assert_ok(pdqm_store_compact(s, path, &err));
    pdqm_store *c = NULL;
    assert_ok(pdqm_store_open(path, 0, &c, &err));
    flat_match *m1 = flatten(c, q, 80, 32, &n1);
    assert_same_matches(m0, n0, m1, n1);
    free(m1);
    pdqm_store_stats st1 = stats(c);
    assert_int_equal(st1.banks, st0.banks);
    assert_int_equal(st1.contents, st0.contents);
    assert_int_equal(st1.hashes, st0.hashes);
    assert_int_equal(st1.entries_ever, st0.entries_ever);
    assert_true(st1.used_bytes <= st0.used_bytes);
    assert_int_equal(bank(c, "c2").threshold, 40);
    assert_int_equal(bank(c, "c2").kind, PDQM_BANK_ALLOW);
    assert_verified(c);
    /* The copy takes writes of its own. */
    pdqm_hash256 h = rand_hash(&r);
    assert_int_equal(add1(c, "c1", "new", h, NULL), PDQM_ADDED);
    assert_int_equal(count_matches(c, h, 0), 1);
    assert_int_equal(count_matches(s, h, 0), 0);
    pdqm_store_close(c);

    /* Never onto an existing file, which stays as it was. */
    size_t len0, len1;
    uint8_t *before = slurp(path, &len0);
    assert_non_null(before);
    assert_fails(pdqm_store_compact(s, path, &err));
    assert_fails(pdqm_store_compact(s, f->path, &err));
    uint8_t *after = slurp(path, &len1);
    assert_non_null(after);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", f->dir);
    assert_fails(pdqm_store_compact(s, path, &err));

    /* And the original is unharmed. */
    m1 = flatten(s, q, 80, 32, &n1);
    assert_same_matches(m0, n0, m1, n1);
    free(m1);
    assert_verified(s);
    free(m0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_exact_lookups),
        T(test_exact_lookups_deferred),
        T(test_exact_slot_boundaries),
        T(test_wide_layout_exact_at_radii_0_to_64),
        T(test_wide_layout_exact_deferred),
        T(test_pass_in_key_ranges),
        T(test_pass_in_key_ranges_wide),
        T(test_pass_in_steps),
        T(test_pass_in_steps_wide),
        T(test_narrow_layout_exact_at_radii_0_to_64),
        T(test_layout_changes_as_the_store_grows),
        T(test_wide_slot_boundaries),
        T(test_bank_create_update),
        T(test_finding_14_status_without_error_buffer),
        T(test_finding_14_second_writer_between_pass_and_add),
        T(test_bank_list_and_delete),
        T(test_bank_thresholds),
        T(test_add_outcomes),
        T(test_add_across_banks),
        T(test_add_same_md5),
        T(test_add_invalid_batches),
        T(test_add_video_and_metadata),
        T(test_delete),
        T(test_deferred_deletes),
        T(test_content_id_collisions),
        T(test_reopen),
        T(test_open_errors),
        T(test_schema_mismatch),
        T(test_hash_named_ids),
        T(test_verify_finds_damage),
        T(test_verify_finds_damage_wide),
        T(test_threads),
        T(test_group_commit),
        T(test_pending_index),
        T(test_pending_names_across_handles),
        T(test_walk),
        T(test_stats_and_verify),
        T(test_hash_copy_gives_back),
        T(test_oneshot_handle_keeps_no_copies),
    T(test_pass_window_follows_live),
    T(test_compact),
    };
#undef T
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
