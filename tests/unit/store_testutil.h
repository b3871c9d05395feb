/*
 * store_testutil.h - what the store's unit tests share: status checks that
 * print the call's error, deterministic hashes, and a fixture of a new
 * store in its own mkdtemp() folder under /tmp.  Header-only, like
 * testutil.h.
 */
#ifndef PDQM_STORE_TESTUTIL_H
#define PDQM_STORE_TESTUTIL_H

#include "testutil.h"

#include <dirent.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../hashing/hash256.h"
#include "../../index/store.h"

#define COUNT(a) (sizeof (a) / sizeof (a)[0])

/* The last checked call's error, printed when a check fails. */
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

/* splitmix64 */
typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline pdqm_hash256 rand_hash(rng *r)
{
    pdqm_hash256 h;
    for (int i = 0; i < 4; i++)
        h.w[i] = rng_next(r);
    return h;
}

/* h with its first k bits flipped. */
static inline pdqm_hash256 flip_first(pdqm_hash256 h, int k)
{
    for (int i = 0; i < k; i++)
        h.w[i >> 6] ^= (uint64_t)1 << (i & 63);
    return h;
}

static inline void rm_tree(const char *path)
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
                char sub[1300];
                snprintf(sub, sizeof sub, "%.1000s/%.255s", path, e->d_name);
                rm_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* A new store, store.db in its own folder. */
typedef struct store_fixture {
    char dir[64];
    char path[128];
    pdqm_store *store;
} store_fixture;

static inline int store_setup(void **state)
{
    store_fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
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

static inline int store_teardown(void **state)
{
    store_fixture *f = *state;
    pdqm_store_close(f->store);
    rm_tree(f->dir);
    free(f);
    return 0;
}

static inline void assert_verified(pdqm_store *s)
{
    uint64_t problems = 99;
    assert_ok(pdqm_store_verify(s, &problems, &err));
    assert_int_equal(problems, 0);
}

#endif
