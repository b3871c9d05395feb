/*
 * test_apply.c - a store fed from a log (pdqm_store_apply in index/store.h).
 *
 * What a cluster rests on: entries are applied in order with their
 * sequence stored in the same transaction; a replay from any point is
 * harmless; an op that cannot be applied is an outcome, not a failure;
 * nothing in an op may mean "now"; and two stores given the same log in
 * different batches end identical, item numbers and all.
 *
 * Every test gets new stores in its own mkdtemp() folder under /tmp.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../hashing/hash256.h"
#include "../../index/store.h"

#define COUNT(a) (sizeof (a) / sizeof (a)[0])

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

static uint64_t rng_state;
static uint64_t rng_next(void)   /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static pdqm_hash256 rand_hash(void)
{
    pdqm_hash256 h;
    for (int i = 0; i < 4; i++)
        h.w[i] = rng_next();
    return h;
}

typedef struct fixture {
    char dir[64];
    pdqm_store *a, *b;
} fixture;

static pdqm_store *open_in(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    pdqm_store *s = NULL;
    assert_ok(pdqm_store_open(path, PDQM_STORE_CREATE, &s, &err));
    return s;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pdqm-test-apply-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->a = open_in(f->dir, "a.db");
    f->b = open_in(f->dir, "b.db");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pdqm_store_close(f->a);
    pdqm_store_close(f->b);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ */
/* A dump of everything a store holds, to compare two stores.           */

typedef struct dump {
    char *text;
    size_t len, cap;
} dump;

static void dump_put(dump *d, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (d->len + (size_t)n + 1 > d->cap) {
        d->cap = (d->cap + (size_t)n + 1) * 2;
        d->text = realloc(d->text, d->cap);
    }
    memcpy(d->text + d->len, line, (size_t)n + 1);
    d->len += (size_t)n;
}

static int dump_item(void *arg, const pdqm_content_info *c, const pdqm_stored_hash *h, size_t n)
{
    dump *d = arg;
    dump_put(d, "item %s/%s #%u at %lld kind %d meta %s sha %s md5 %s\n", c->bank,
             c->content_id, c->number, (long long)c->added, (int)c->kind,
             c->metadata ? c->metadata : "-", c->sha256, c->md5);
    for (size_t i = 0; i < n; i++) {
        char hex[PDQM_HASH_HEX_LEN + 1];
        pdqm_hash256_to_hex(&h[i].hash, hex);
        dump_put(d, "  %s q%d t%.3f\n", hex, h[i].quality, h[i].timestamp);
    }
    return 0;
}

static char *dump_store(pdqm_store *s)
{
    dump d = { NULL, 0, 0 };
    dump_put(&d, "%s", "");
    pdqm_bank_info *banks;
    size_t nb;
    assert_ok(pdqm_store_bank_list(s, &banks, &nb, &err));
    for (size_t i = 0; i < nb; i++)
        dump_put(&d, "bank %s id %u threshold %d kind %d created %lld contents %llu\n",
                 banks[i].name, banks[i].id, banks[i].threshold, (int)banks[i].kind,
                 (long long)banks[i].created, (unsigned long long)banks[i].contents);
    free(banks);
    assert_ok(pdqm_store_walk(s, NULL, dump_item, &d, NULL, &err));
    uint64_t seq;
    assert_ok(pdqm_store_applied_seq(s, &seq, &err));
    dump_put(&d, "applied %llu\n", (unsigned long long)seq);
    return d.text;
}

/* ------------------------------------------------------------------ */
/* Ops                                                                  */

static pdqm_op bank_create(const char *name, int threshold)
{
    return (pdqm_op){ .type = PDQM_OP_BANK_CREATE, .bank = name, .threshold = threshold,
                      .bank_kind = PDQM_BANK_BLOCK, .time = 1700000000 };
}

static pdqm_op delete_op(const char *bank, const char *id)
{
    return (pdqm_op){ .type = PDQM_OP_DELETE, .bank = bank, .content_id = id };
}

/* An add op of one item of one hash (the hash and item live in statics
 * of the caller's choosing: slot). */
static pdqm_stored_hash hashes[64];
static pdqm_add adds[64];
static pdqm_op add_op(int slot, const char *bank, const char *id, pdqm_hash256 h)
{
    hashes[slot] = (pdqm_stored_hash){ h, 90, 0 };
    adds[slot] = (pdqm_add){ bank, id, "{\"k\":1}", NULL, NULL, PDQM_CONTENT_HASHES,
                             &hashes[slot], 1, 1700000100 };
    return (pdqm_op){ .type = PDQM_OP_ADD, .adds = &adds[slot], .n_adds = 1 };
}

static size_t lookup_count(pdqm_store *s, pdqm_hash256 q)
{
    pdqm_lookup_options o = { 0, NULL, 0 };
    pdqm_matches m;
    assert_ok(pdqm_store_lookup(s, &q, 1, &o, &m, &err));
    size_t n = m.count;
    pdqm_matches_free(&m);
    return n;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

/* Ops run in order, each with its outcome, and the last seq is stored. */
static void test_apply_in_order_with_seq(void **state)
{
    fixture *f = *state;
    rng_state = 1;
    pdqm_hash256 h1 = rand_hash(), h2 = rand_hash();
    pdqm_op e1[] = { bank_create("b", 31) };
    pdqm_op e2[] = { add_op(0, "b", "one", h1), add_op(1, "b", "two", h2) };
    pdqm_op e3[] = { delete_op("b", "one") };
    pdqm_op_result r2[2] = { { .outcomes = NULL } };
    pdqm_add_outcome o2[2][1];
    r2[0].outcomes = o2[0];
    r2[1].outcomes = o2[1];
    pdqm_log_entry log[] = { { 1, e1, 1, NULL, 0 }, { 2, e2, 2, r2, 0 }, { 3, e3, 1, NULL, 0 } };
    assert_ok(pdqm_store_apply(f->a, log, 3, &err));
    assert_int_equal(r2[0].error.status, PDQM_OK);
    assert_int_equal(o2[0][0], PDQM_ADDED);
    assert_int_equal(o2[1][0], PDQM_ADDED);
    assert_int_equal(lookup_count(f->a, h1), 0);
    assert_int_equal(lookup_count(f->a, h2), 1);
    uint64_t seq;
    assert_ok(pdqm_store_applied_seq(f->a, &seq, &err));
    assert_int_equal(seq, 3);
    pdqm_bank_info info;
    assert_ok(pdqm_store_bank_get(f->a, "b", &info, &err));
    assert_int_equal(info.created, 1700000000);
    assert_ok(pdqm_store_verify(f->a, NULL, &err));
}

/* Entries at or below the stored seq are skipped: a replay from any
 * point leaves the store as one pass would. */
static void test_apply_replay_is_idempotent(void **state)
{
    fixture *f = *state;
    rng_state = 2;
    pdqm_hash256 h[4];
    for (int i = 0; i < 4; i++)
        h[i] = rand_hash();
    pdqm_op e1[] = { bank_create("b", 31) };
    pdqm_op e2[] = { add_op(0, "b", "x", h[0]) };
    pdqm_op e3[] = { delete_op("b", "x") };
    pdqm_op e4[] = { add_op(1, "b", "x", h[1]) };
    pdqm_op e5[] = { add_op(2, "b", "y", h[2]) };
    pdqm_log_entry log[] = { { 1, e1, 1, NULL, 0 }, { 2, e2, 1, NULL, 0 },
                             { 3, e3, 1, NULL, 0 }, { 4, e4, 1, NULL, 0 },
                             { 5, e5, 1, NULL, 0 } };
    /* a: the whole log at once.  b: 1-3, then 1-5 again (a node that
     * restarted from an older position), then 4-5 a third time. */
    assert_ok(pdqm_store_apply(f->a, log, 5, &err));
    assert_ok(pdqm_store_apply(f->b, log, 3, &err));
    assert_ok(pdqm_store_apply(f->b, log, 5, &err));
    assert_int_equal(log[0].skipped, 1);
    assert_int_equal(log[2].skipped, 1);
    assert_int_equal(log[3].skipped, 0);
    assert_ok(pdqm_store_apply(f->b, log + 3, 2, &err));
    assert_int_equal(log[3].skipped, 1);
    char *da = dump_store(f->a), *db = dump_store(f->b);
    assert_string_equal(da, db);
    assert_non_null(strstr(da, "item b/x"));
    assert_non_null(strstr(da, "applied 5"));
    free(da);
    free(db);
    assert_int_equal(lookup_count(f->b, h[0]), 0);
    assert_int_equal(lookup_count(f->b, h[1]), 1);
}

/* An op that cannot be applied is undone alone and reported; the batch
 * and the ops after it go on. */
static void test_apply_failed_op_is_an_outcome(void **state)
{
    fixture *f = *state;
    rng_state = 3;
    pdqm_hash256 h1 = rand_hash(), h2 = rand_hash();
    pdqm_op e1[] = { bank_create("b", 31), bank_create("b", 5), delete_op("b", "nothing"),
                     add_op(0, "nobank", "z", h1), add_op(1, "b", "z", h2) };
    pdqm_op_result r[COUNT(e1)] = { { .outcomes = NULL } };
    memset(r, 0, sizeof r);
    pdqm_log_entry log[] = { { 7, e1, COUNT(e1), r, 0 } };
    assert_ok(pdqm_store_apply(f->a, log, 1, &err));
    assert_int_equal(r[0].error.status, PDQM_OK);
    assert_int_equal(r[1].error.status, PDQM_ERR_EXISTS);
    assert_int_equal(r[2].error.status, PDQM_ERR_NOT_FOUND);
    assert_int_equal(r[3].error.status, PDQM_ERR_NOT_FOUND);
    assert_int_equal(r[4].error.status, PDQM_OK);
    pdqm_bank_info info;
    assert_ok(pdqm_store_bank_get(f->a, "b", &info, &err));
    assert_int_equal(info.threshold, 31);     /* the second create changed nothing */
    assert_int_equal(lookup_count(f->a, h1), 0);
    assert_int_equal(lookup_count(f->a, h2), 1);
    uint64_t seq;
    assert_ok(pdqm_store_applied_seq(f->a, &seq, &err));
    assert_int_equal(seq, 7);
    assert_ok(pdqm_store_verify(f->a, NULL, &err));
}

/* Nothing in an op may mean "now": a node applying it later would store
 * another time than the first. */
static void test_apply_refuses_now(void **state)
{
    fixture *f = *state;
    rng_state = 4;
    pdqm_op create = bank_create("b", 31);
    create.time = 0;
    pdqm_op add = add_op(0, "b", "t", rand_hash());
    adds[0].added = 0;
    pdqm_op e1[] = { create, bank_create("c", 31), add };
    pdqm_op_result r[3] = { { .outcomes = NULL } };
    memset(r, 0, sizeof r);
    pdqm_log_entry log[] = { { 1, e1, 3, r, 0 } };
    assert_ok(pdqm_store_apply(f->a, log, 1, &err));
    assert_int_equal(r[0].error.status, PDQM_ERR_INVALID);
    assert_int_equal(r[1].error.status, PDQM_OK);
    assert_int_equal(r[2].error.status, PDQM_ERR_INVALID);
    pdqm_bank_info info;
    assert_status(pdqm_store_bank_get(f->a, "b", &info, &err), PDQM_ERR_NOT_FOUND);
}

/* Sequences must ascend from 1; a batch that breaks it applies nothing. */
static void test_apply_seqs_ascend(void **state)
{
    fixture *f = *state;
    pdqm_op e1[] = { bank_create("b", 31) };
    pdqm_log_entry zero[] = { { 0, e1, 1, NULL, 0 } };
    assert_status(pdqm_store_apply(f->a, zero, 1, &err), PDQM_ERR_INVALID);
    pdqm_log_entry down[] = { { 5, e1, 1, NULL, 0 }, { 4, e1, 1, NULL, 0 } };
    assert_status(pdqm_store_apply(f->a, down, 2, &err), PDQM_ERR_INVALID);
    uint64_t seq = 99;
    assert_ok(pdqm_store_applied_seq(f->a, &seq, &err));
    assert_int_equal(seq, 0);
}

/* The applied seq survives closing and opening, and a read-only handle
 * cannot apply. */
static void test_apply_seq_persists(void **state)
{
    fixture *f = *state;
    pdqm_op e1[] = { bank_create("b", 31) };
    pdqm_log_entry log[] = { { 41, e1, 1, NULL, 0 } };
    assert_ok(pdqm_store_apply(f->a, log, 1, &err));
    pdqm_store_close(f->a);
    char path[128];
    snprintf(path, sizeof path, "%s/a.db", f->dir);
    assert_ok(pdqm_store_open(path, PDQM_STORE_READONLY, &f->a, &err));
    uint64_t seq;
    assert_ok(pdqm_store_applied_seq(f->a, &seq, &err));
    assert_int_equal(seq, 41);
    pdqm_log_entry next[] = { { 42, e1, 1, NULL, 0 } };
    assert_status(pdqm_store_apply(f->a, next, 1, &err), PDQM_ERR_INVALID);
}

/* A random log of creates, adds (some of the same ids, some deferred
 * bulk loads of many items), deletes and bank deletes, applied to two
 * stores in different batch sizes: the same store, numbers included, and
 * lookups agree. */
static void test_apply_two_stores_agree(void **state)
{
    fixture *f = *state;
    rng_state = 5;
    enum { ENTRIES = 400, BULK = 300 };
    static pdqm_op ops[ENTRIES];
    static pdqm_log_entry log[ENTRIES];
    static char ids[ENTRIES][16];
    static pdqm_stored_hash bulk_h[BULK];
    static pdqm_add bulk_a[BULK];
    static char bulk_ids[BULK][16];
    static pdqm_hash256 probe[ENTRIES];
    static pdqm_stored_hash one_h[ENTRIES];
    static pdqm_add one_a[ENTRIES];
    const char *banks[] = { "b0", "b1", "b2" };
    for (int i = 0; i < BULK; i++) {
        snprintf(bulk_ids[i], sizeof bulk_ids[i], "bulk%d", i);
        bulk_h[i] = (pdqm_stored_hash){ rand_hash(), 100, 0 };
        bulk_a[i] = (pdqm_add){ "b0", bulk_ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES,
                                &bulk_h[i], 1, 1700000200 };
    }
    for (int i = 0; i < ENTRIES; i++) {
        uint64_t r = rng_next();
        const char *bank = banks[r % 3];
        snprintf(ids[i], sizeof ids[i], "c%d", (int)((r >> 8) % 40));
        probe[i] = rand_hash();
        switch (i < 3 ? 0 : (r >> 16) % 10) {
        case 0:
            ops[i] = bank_create(i < 3 ? banks[i] : bank, 20);
            break;
        case 1:
            ops[i] = (pdqm_op){ .type = PDQM_OP_BANK_DELETE, .bank = bank };
            break;
        case 2:
            ops[i] = delete_op(bank, ids[i]);
            break;
        case 3:
            ops[i] = (pdqm_op){ .type = PDQM_OP_ADD, .adds = bulk_a, .n_adds = BULK,
                                .deferred = 1 };
            break;
        default:
            one_h[i] = (pdqm_stored_hash){ probe[i], 80, 0 };
            one_a[i] = (pdqm_add){ bank, ids[i], NULL, NULL, NULL, PDQM_CONTENT_HASHES,
                                   &one_h[i], 1, 1700000300 + i };
            ops[i] = (pdqm_op){ .type = PDQM_OP_ADD, .adds = &one_a[i], .n_adds = 1 };
            break;
        }
        log[i] = (pdqm_log_entry){ (uint64_t)i + 1, &ops[i], 1, NULL, 0 };
    }
    for (size_t i = 0; i < ENTRIES; i += 1)
        assert_ok(pdqm_store_apply(f->a, &log[i], 1, &err));
    for (size_t i = 0; i < ENTRIES; i += 37)
        assert_ok(pdqm_store_apply(f->b, &log[i], i + 37 <= ENTRIES ? 37 : ENTRIES - i, &err));
    char *da = dump_store(f->a), *db = dump_store(f->b);
    assert_string_equal(da, db);
    assert_true(strlen(da) > 1000);
    free(da);
    free(db);
    for (int i = 0; i < ENTRIES; i++)
        assert_int_equal(lookup_count(f->a, probe[i]), lookup_count(f->b, probe[i]));
    assert_ok(pdqm_store_index_pending(f->a, NULL, &err));
    assert_ok(pdqm_store_verify(f->a, NULL, &err));
    assert_ok(pdqm_store_verify(f->b, NULL, &err));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_apply_in_order_with_seq),
        T(test_apply_replay_is_idempotent),
        T(test_apply_failed_op_is_an_outcome),
        T(test_apply_refuses_now),
        T(test_apply_seqs_ascend),
        T(test_apply_seq_persists),
        T(test_apply_two_stores_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
