/*
 * test_store_cache.c - lookups stay exact while a long-lived handle keeps
 * its in-memory copy of the postings and other handles write.
 *
 * One handle reads (and, after 64 lookups, builds its copy); a second
 * handle on the same file adds and deletes, indexed and deferred, between
 * the reads.  Every read is checked against a brute force over the live
 * hashes the test keeps.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <unistd.h>

#include "../../index/store.h"

#define MAX_LIVE 20000

typedef struct live_set {
    pdqm_hash256 hash[MAX_LIVE];
    char id[MAX_LIVE][16];
    int alive[MAX_LIVE];
    int n;
} live_set;

static uint64_t rng_state = 88172645463325252ull;

static uint64_t next_u64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static pdqm_hash256 random_hash(void)
{
    pdqm_hash256 h = {{ next_u64(), next_u64(), next_u64(), next_u64() }};
    return h;
}

static pdqm_hash256 flipped(pdqm_hash256 h, int bits)
{
    for (int i = 0; i < bits; i++) {
        int b = (int)(next_u64() % 256);
        h.w[b / 64] ^= (uint64_t)1 << (b % 64);
    }
    return h;
}

/* Add count new hashes through handle w, as one batch. */
static void add_batch(pdqm_store *w, live_set *l, int count)
{
    pdqm_add *adds = calloc((size_t)count, sizeof *adds);
    pdqm_stored_hash *hs = calloc((size_t)count, sizeof *hs);
    assert_true(adds && hs && l->n + count <= MAX_LIVE);
    for (int i = 0; i < count; i++) {
        int k = l->n++;
        /* Half near an existing hash, so lookups find clusters. */
        l->hash[k] = (k > 0 && next_u64() % 2) ? flipped(l->hash[next_u64() % (uint64_t)k], 1 + (int)(next_u64() % 20))
                                               : random_hash();
        snprintf(l->id[k], sizeof l->id[k], "c%d", k);
        l->alive[k] = 1;
        hs[i].hash = l->hash[k];
        hs[i].quality = 100;
        adds[i].bank = "b";
        adds[i].content_id = l->id[k];
        adds[i].hashes = &hs[i];
        adds[i].n_hashes = 1;
    }
    pdqm_error err;
    if (pdqm_store_add(w, adds, (size_t)count, NULL, &err) != PDQM_OK)
        fail_msg("add: %s", err.message);
    free(adds);
    free(hs);
}

static void delete_some(pdqm_store *w, live_set *l, int count)
{
    for (int i = 0; i < count; i++) {
        int k = (int)(next_u64() % (uint64_t)l->n);
        if (!l->alive[k])
            continue;
        pdqm_error err;
        if (pdqm_store_delete(w, "b", l->id[k], &err) != PDQM_OK)
            fail_msg("delete %s: %s", l->id[k], err.message);
        l->alive[k] = 0;
    }
}

/* Look up `count` queries near live hashes through r and compare. */
static void check(pdqm_store *r, const live_set *l, int count)
{
    for (int q = 0; q < count; q++) {
        pdqm_hash256 query = flipped(l->hash[next_u64() % (uint64_t)l->n], (int)(next_u64() % 32));
        pdqm_lookup_options o = { 31, NULL, 0 };
        pdqm_matches m;
        pdqm_error err;
        if (pdqm_store_lookup(r, &query, 1, &o, &m, &err) != PDQM_OK)
            fail_msg("lookup: %s", err.message);
        size_t want = 0;
        for (int k = 0; k < l->n; k++)
            if (l->alive[k] && pdqm_hash256_distance(&l->hash[k], &query) <= 31)
                want++;
        if (m.count != want)
            fail_msg("query %d: %zu matches, the brute force has %zu", q, m.count, want);
        for (size_t i = 0; i < m.count; i++) {
            int k = atoi(m.items[i].content_id + 1);
            assert_true(k >= 0 && k < l->n && l->alive[k]);
            assert_int_equal(m.items[i].distance, pdqm_hash256_distance(&l->hash[k], &query));
        }
        pdqm_matches_free(&m);
    }
}

static void test_copy_stays_exact_under_writes(void **state)
{
    (void)state;
    char dir[] = "/tmp/pdqm-cache-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/s.db", dir);
    static live_set l;
    memset(&l, 0, sizeof l);

    pdqm_store *w, *r;
    pdqm_error err;
    assert_int_equal(pdqm_store_open(path, PDQM_STORE_CREATE, &w, &err), PDQM_OK);
    assert_int_equal(pdqm_store_bank_create(w, "b", 31, PDQM_BANK_BLOCK, &err), PDQM_OK);
    add_batch(w, &l, 5000);                       /* indexed at once */
    assert_int_equal(pdqm_store_open(path, PDQM_STORE_READONLY, &r, &err), PDQM_OK);
    check(r, &l, 100);                            /* the copy is built */

    for (int round = 0; round < 12; round++) {
        switch (round % 4) {
        case 0: add_batch(w, &l, 1500); break;    /* indexed: keys change */
        case 1: add_batch(w, &l, 30); break;      /* pending: scanned */
        case 2: delete_some(w, &l, 40); break;    /* postings removed */
        case 3: assert_int_equal(pdqm_store_index_pending(w, NULL, &err), PDQM_OK); break;
        }
        check(r, &l, 40);
        check(w, &l, 5);                          /* the writer reads too */
    }
    /* Enough changed keys that the copy is made anew. */
    add_batch(w, &l, 8000);
    check(r, &l, 40);
    uint64_t problems = 1;
    assert_int_equal(pdqm_store_verify(w, &problems, &err), PDQM_OK);
    assert_int_equal(problems, 0);
    pdqm_store_close(r);
    pdqm_store_close(w);
    char lock[80];
    snprintf(lock, sizeof lock, "%s-lock", path);
    unlink(path);
    unlink(lock);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_stays_exact_under_writes),
    };
    return cmocka_run_group_tests_name("store cache", tests, NULL, NULL);
}
