/*
 * bench_lookup.c - in-process timings of the store for `make bench`
 * (bench/bench_index.py runs it; see bench/README.md).
 *
 * usage: bench_lookup lookup STORE QUERIES.hex PAIRS.tsv [MAX_DISTANCE]
 *   Opens STORE read-only, reads one 64-hex query a line, looks every query
 *   up once to warm up, then again one query a call, timing each call.
 *   Writes every match of the timed pass to PAIRS.tsv as
 *   `query entry distance content_id hash` and prints one JSON line:
 *   p50/p99/mean milliseconds a query (and the same for the warm-up pass),
 *   the number of matches and the store's size.  MAX_DISTANCE: 31.
 *
 * usage: bench_lookup add STORE COUNT [BANK]
 *   Opens STORE read-write (use a copy: it adds COUNT content items to it)
 *   and adds COUNT random hashes to BANK (default "bench", created when
 *   missing), one content item a pdqm_store_add call, so one transaction
 *   each.  Prints one JSON line: adds a second and p50/p99 milliseconds
 *   an add.
 *
 * usage: bench_lookup truth DB.bin QUERIES.bin MAX_DISTANCE PAIRS.tsv [THREADS]
 *   Exact brute force over raw 32-byte hashes (bench/gen.py's .bin files):
 *   writes `qi id dist` for every pair within MAX_DISTANCE, sorted by query
 *   then id, id being the 0-based row of DB.bin.  This is the ground truth
 *   the store's and FAISS's answers are checked against; it shares no code
 *   with the store.  THREADS: 2.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../hashing/error.h"
#include "../hashing/hash256.h"
#include "../index/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentile p (0..100) of n values, sorting them; linear interpolation
 * between closest ranks, as numpy.percentile does. */
static double percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof v[0], compare_double);
    double pos = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (pos - (double)lo) * (v[lo + 1] - v[lo]);
}

static double mean(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return n ? s / (double)n : 0.0;
}

/* Report a library error, after what it was doing (when what is not NULL). */
static int fail(const char *what, const pdqm_error *err)
{
    fprintf(stderr, "bench_lookup: %s%s%s\n", what ? what : "", what ? ": " : "",
            pdqm_error_message(err));
    return 1;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_lookup: out of memory\n");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------------ */
/* lookup                                                               */

static pdqm_hash256 *read_hex_file(const char *path, size_t *count)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_lookup: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t n = 0, cap = 1024;
    pdqm_hash256 *v = xmalloc(cap * sizeof *v);
    char line[256];
    unsigned long lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        if (len == 0)
            continue;
        if (n == cap) {
            cap *= 2;
            pdqm_hash256 *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                fprintf(stderr, "bench_lookup: out of memory\n");
                exit(1);
            }
            v = nv;
        }
        pdqm_error err;
        if (pdqm_hash256_from_hex(line, len, &v[n], &err) != PDQM_OK) {
            fprintf(stderr, "bench_lookup: %s:%lu: %s\n", path, lineno,
                    pdqm_error_message(&err));
            fclose(f);
            free(v);
            return NULL;
        }
        n++;
    }
    fclose(f);
    *count = n;
    return v;
}

static int cmd_lookup(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: bench_lookup lookup STORE QUERIES.hex PAIRS.tsv [MAX_DISTANCE]\n");
        return 2;
    }
    const char *store_path = argv[2], *pairs_path = argv[4];
    int max_distance = argc > 5 ? atoi(argv[5]) : PDQM_DEFAULT_THRESHOLD;
    size_t nq;
    pdqm_hash256 *queries = read_hex_file(argv[3], &nq);
    if (!queries)
        return 1;

    int rc = 1;
    pdqm_error err;
    pdqm_store *store = NULL;
    FILE *pairs = NULL;
    double *warm = xmalloc(nq * sizeof *warm), *lat = xmalloc(nq * sizeof *lat);
    pdqm_store_stats stats;
    if (pdqm_store_open(store_path, PDQM_STORE_READONLY, &store, &err) != PDQM_OK) {
        fail(NULL, &err);
        goto done;
    }
    if (pdqm_store_stats_get(store, &stats, &err) != PDQM_OK) {
        fail("stats", &err);
        goto done;
    }
    pairs = fopen(pairs_path, "w");
    if (!pairs) {
        fprintf(stderr, "bench_lookup: %s: %s\n", pairs_path, strerror(errno));
        goto done;
    }
    fprintf(pairs, "qi\tentry\tdist\tcontent_id\thash\n");

    /* Pass 0 warms up (and maps the store's pages), pass 1 is timed. */
    pdqm_lookup_options opt = { .max_distance = max_distance };
    size_t matches = 0, with_match = 0, warm_matches = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nq; i++) {
            pdqm_matches m;
            double t0 = now_s();
            pdqm_status st = pdqm_store_lookup(store, &queries[i], 1, &opt, &m, &err);
            double dt = now_s() - t0;
            if (st != PDQM_OK) {
                fail("lookup", &err);
                goto done;
            }
            if (pass == 0) {
                warm[i] = dt;
                warm_matches += m.count;
            } else {
                lat[i] = dt;
                matches += m.count;
                with_match += m.count > 0;
                for (size_t j = 0; j < m.count; j++) {
                    const pdqm_match *x = &m.items[j];
                    char hex[PDQM_HASH_HEX_LEN + 1];
                    pdqm_hash256_to_hex(&x->hash, hex);
                    fprintf(pairs, "%zu\t%" PRIu32 "\t%d\t%s\t%s\n", i, x->entry,
                            x->distance, x->content_id ? x->content_id : "", hex);
                }
            }
            pdqm_matches_free(&m);
        }
    }
    int closed = fclose(pairs);
    pairs = NULL;
    if (closed != 0) {
        fprintf(stderr, "bench_lookup: %s: %s\n", pairs_path, strerror(errno));
        goto done;
    }
    if (warm_matches != matches) {
        fprintf(stderr, "bench_lookup: the two passes disagree: %zu and %zu matches\n",
                warm_matches, matches);
        goto done;
    }
    double lat_mean = mean(lat, nq), warm_mean = mean(warm, nq);
    printf("{\"tool\":\"pdqmatch\",\"mode\":\"lookup\",\"hashes\":%" PRIu64
           ",\"nq\":%zu,\"max_distance\":%d,\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
           "\"mean_ms\":%.4f,\"first_pass_p50_ms\":%.4f,\"first_pass_p99_ms\":%.4f,"
           "\"first_pass_mean_ms\":%.4f,\"matches\":%zu,\"queries_with_match\":%zu,"
           "\"file_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64 ",\"pending\":%" PRIu64 "}\n",
           stats.hashes, nq, max_distance, percentile(lat, nq, 50) * 1e3,
           percentile(lat, nq, 99) * 1e3, lat_mean * 1e3,
           percentile(warm, nq, 50) * 1e3, percentile(warm, nq, 99) * 1e3,
           warm_mean * 1e3, matches, with_match, stats.file_bytes, stats.used_bytes,
           stats.pending);
    rc = 0;
done:
    if (pairs)
        fclose(pairs);
    pdqm_store_close(store);
    free(queries);
    free(warm);
    free(lat);
    return rc;
}

/* ------------------------------------------------------------------ */
/* add                                                                  */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int cmd_add(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: bench_lookup add STORE COUNT [BANK]\n");
        return 2;
    }
    const char *store_path = argv[2];
    long count = strtol(argv[3], NULL, 10);
    const char *bank = argc > 4 ? argv[4] : "bench";
    if (count <= 0) {
        fprintf(stderr, "bench_lookup: COUNT must be positive\n");
        return 2;
    }

    int rc = 1;
    pdqm_error err;
    pdqm_store *store = NULL;
    double *lat = xmalloc((size_t)count * sizeof *lat);
    pdqm_store_stats before, after;
    if (pdqm_store_open(store_path, 0, &store, &err) != PDQM_OK) {
        fail(NULL, &err);
        goto done;
    }
    pdqm_bank_info info;
    pdqm_status st = pdqm_store_bank_get(store, bank, &info, &err);
    if (st == PDQM_ERR_NOT_FOUND)
        st = pdqm_store_bank_create(store, bank, PDQM_DEFAULT_THRESHOLD,
                                    PDQM_BANK_BLOCK, &err);
    if (st != PDQM_OK) {
        fail(bank, &err);
        goto done;
    }
    if (pdqm_store_stats_get(store, &before, &err) != PDQM_OK) {
        fail("stats", &err);
        goto done;
    }

    /* Content ids unique to this run, so that a rerun on the same store
     * adds again instead of being skipped as known content. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t run = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t rng = 20240601;
    double t_all = now_s();
    for (long i = 0; i < count; i++) {
        char content_id[64];
        snprintf(content_id, sizeof content_id, "bench-add-%" PRIx64 "-%ld", run, i);
        pdqm_stored_hash h = { .quality = 100 };
        for (int w = 0; w < 4; w++)
            h.hash.w[w] = splitmix64(&rng);
        pdqm_add add = { .bank = bank, .content_id = content_id,
                         .kind = PDQM_CONTENT_HASHES, .hashes = &h, .n_hashes = 1 };
        pdqm_add_outcome outcome;
        double t0 = now_s();
        st = pdqm_store_add(store, &add, 1, &outcome, &err);
        lat[i] = now_s() - t0;
        if (st != PDQM_OK) {
            fail("add", &err);
            goto done;
        }
        if (outcome != PDQM_ADDED) {
            fprintf(stderr, "bench_lookup: add %ld was skipped (outcome %d)\n", i,
                    (int)outcome);
            goto done;
        }
    }
    double total = now_s() - t_all;
    if (pdqm_store_stats_get(store, &after, &err) != PDQM_OK) {
        fail("stats", &err);
        goto done;
    }
    if (after.hashes != before.hashes + (uint64_t)count) {
        fprintf(stderr, "bench_lookup: the store has %" PRIu64 " hashes, expected %" PRIu64 "\n",
                after.hashes, before.hashes + (uint64_t)count);
        goto done;
    }
    double lat_mean = mean(lat, (size_t)count);
    printf("{\"tool\":\"pdqmatch\",\"mode\":\"add\",\"hashes_before\":%" PRIu64
           ",\"adds\":%ld,\"seconds\":%.4f,\"adds_per_s\":%.1f,\"p50_ms\":%.4f,"
           "\"p99_ms\":%.4f,\"mean_ms\":%.4f}\n",
           before.hashes, count, total, (double)count / total,
           percentile(lat, (size_t)count, 50) * 1e3,
           percentile(lat, (size_t)count, 99) * 1e3, lat_mean * 1e3);
    rc = 0;
done:
    pdqm_store_close(store);
    free(lat);
    return rc;
}

/* ------------------------------------------------------------------ */
/* truth: exact brute force                                             */

typedef struct raw256 { uint64_t w[4]; } raw256;
typedef struct hit { uint32_t id; uint32_t dist; } hit;
typedef struct hits { hit *v; size_t n, cap; } hits;

static const raw256 *T_DB, *T_Q;
static size_t T_N, T_NQ, T_NEXT;
static int T_R;
static hits *T_OUT;
static pthread_mutex_t T_LOCK = PTHREAD_MUTEX_INITIALIZER;

#define TRUTH_BLOCK 8   /* queries compared with each row in one pass */

static void hits_push(hits *h, size_t id, int dist)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        hit *nv = realloc(h->v, h->cap * sizeof *nv);
        if (!nv) {
            fprintf(stderr, "bench_lookup: out of memory\n");
            exit(1);
        }
        h->v = nv;
    }
    h->v[h->n].id = (uint32_t)id;
    h->v[h->n].dist = (uint32_t)dist;
    h->n++;
}

/* One pass over the rows for queries q0 .. q0+nq-1 (nq <= TRUTH_BLOCK).
 * Written twice, the same loop: once compiled for the POPCNT instruction,
 * taken when the CPU has it, and once for any x86-64. */
#define SCAN_BODY                                                          \
    for (size_t i = 0; i < T_N; i++) {                                     \
        const raw256 *h = &T_DB[i];                                        \
        for (size_t j = 0; j < nq; j++) {                                  \
            const raw256 *q = &T_Q[q0 + j];                                \
            int d = __builtin_popcountll(h->w[0] ^ q->w[0]) +              \
                    __builtin_popcountll(h->w[1] ^ q->w[1]) +              \
                    __builtin_popcountll(h->w[2] ^ q->w[2]) +              \
                    __builtin_popcountll(h->w[3] ^ q->w[3]);               \
            if (d <= T_R)                                                  \
                hits_push(&T_OUT[q0 + j], i, d);                           \
        }                                                                  \
    }

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("popcnt"))) static void scan_popcnt(size_t q0, size_t nq)
{
    SCAN_BODY
}
#endif

static void scan_generic(size_t q0, size_t nq)
{
    SCAN_BODY
}

static void *truth_worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&T_LOCK);
        size_t q0 = T_NEXT;
        T_NEXT += TRUTH_BLOCK;
        pthread_mutex_unlock(&T_LOCK);
        if (q0 >= T_NQ)
            return NULL;
        size_t nq = T_NQ - q0 < TRUTH_BLOCK ? T_NQ - q0 : TRUTH_BLOCK;
#if defined(__x86_64__) && defined(__GNUC__)
        if (__builtin_cpu_supports("popcnt")) {
            scan_popcnt(q0, nq);
            continue;
        }
#endif
        scan_generic(q0, nq);
    }
}

static raw256 *read_raw(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench_lookup: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long size = ftell(f);
    rewind(f);
    if (size < 0 || size % 32 != 0) {
        fprintf(stderr, "bench_lookup: %s: not a file of 32-byte hashes\n", path);
        fclose(f);
        return NULL;
    }
    raw256 *v = xmalloc((size_t)size);
    if (fread(v, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "bench_lookup: %s: short read\n", path);
        fclose(f);
        free(v);
        return NULL;
    }
    fclose(f);
    *count = (size_t)size / 32;
    return v;
}

static int cmd_truth(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: bench_lookup truth DB.bin QUERIES.bin MAX_DISTANCE PAIRS.tsv [THREADS]\n");
        return 2;
    }
    T_R = atoi(argv[4]);
    int threads = argc > 6 ? atoi(argv[6]) : 2;
    if (threads < 1 || threads > 64)
        threads = 2;
    double t0 = now_s();
    raw256 *db = read_raw(argv[2], &T_N), *q = db ? read_raw(argv[3], &T_NQ) : NULL;
    if (!q || T_N > UINT32_MAX) {
        if (q)
            fprintf(stderr, "bench_lookup: too many rows\n");
        free(db);
        free(q);
        return 1;
    }
    T_DB = db;
    T_Q = q;
    T_OUT = calloc(T_NQ ? T_NQ : 1, sizeof *T_OUT);
    if (!T_OUT)
        return 1;
    double t_load = now_s() - t0;
    t0 = now_s();
    pthread_t th[64];
    for (int t = 0; t < threads; t++)
        if (pthread_create(&th[t], NULL, truth_worker, NULL) != 0) {
            fprintf(stderr, "bench_lookup: cannot start a thread\n");
            return 1;
        }
    for (int t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    double t_scan = now_s() - t0;

    FILE *f = fopen(argv[5], "w");
    if (!f) {
        fprintf(stderr, "bench_lookup: %s: %s\n", argv[5], strerror(errno));
        return 1;
    }
    size_t matches = 0, with_match = 0;
    fprintf(f, "qi\tid\tdist\n");
    for (size_t i = 0; i < T_NQ; i++) {
        matches += T_OUT[i].n;
        with_match += T_OUT[i].n > 0;
        for (size_t j = 0; j < T_OUT[i].n; j++)
            fprintf(f, "%zu\t%" PRIu32 "\t%" PRIu32 "\n", i, T_OUT[i].v[j].id,
                    T_OUT[i].v[j].dist);
        free(T_OUT[i].v);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_lookup: %s: %s\n", argv[5], strerror(errno));
        return 1;
    }
    printf("{\"tool\":\"bench_lookup\",\"mode\":\"truth\",\"n\":%zu,\"nq\":%zu,"
           "\"max_distance\":%d,\"threads\":%d,\"load_s\":%.3f,\"scan_s\":%.3f,"
           "\"matches\":%zu,\"queries_with_match\":%zu}\n",
           T_N, T_NQ, T_R, threads, t_load, t_scan, matches, with_match);
    free(T_OUT);
    free(db);
    free(q);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "lookup") == 0)
        return cmd_lookup(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "add") == 0)
        return cmd_add(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "truth") == 0)
        return cmd_truth(argc, argv);
    fprintf(stderr,
            "usage: bench_lookup lookup STORE QUERIES.hex PAIRS.tsv [MAX_DISTANCE]\n"
            "       bench_lookup add STORE COUNT [BANK]\n"
            "       bench_lookup truth DB.bin QUERIES.bin MAX_DISTANCE PAIRS.tsv [THREADS]\n");
    return 2;
}
