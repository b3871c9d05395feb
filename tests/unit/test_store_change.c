/*
 * test_store_change.c - what a store holds beyond hashes, and changes in
 * place (index/store.h): disabled content and notes, a bank's enabled
 * ratio and its name, items named by their number, items with no hash,
 * deletes by number, and the same through a replicated log.
 *
 * These are the rules HMA's API rests on (the integer ids of its content,
 * disable_until_ts, enabled_ratio), kept by the store for every front end.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_testutil.h"

#include <math.h>
#include <time.h>

#define MD5_A "0123456789abcdef0123456789abcdef"
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* Add one image of one hash; returns its number. */
static uint32_t add_image(pdqm_store *s, const char *bank, const char *id, pdqm_hash256 h,
                          pdqm_add_outcome *outcome)
{
    pdqm_stored_hash one = { h, 100, 0 };
    uint32_t number = UINT32_MAX;
    pdqm_add a = { .bank = bank, .content_id = id, .kind = PDQM_CONTENT_IMAGE,
                   .hashes = &one, .n_hashes = 1, .number = &number };
    pdqm_add_outcome o;
    assert_ok(pdqm_store_add(s, &a, 1, &o, &err));
    if (outcome)
        *outcome = o;
    assert_int_not_equal(number, UINT32_MAX);
    return number;
}

/* Matches of q within r, with lookup flags and a draw. */
static size_t matches(pdqm_store *s, pdqm_hash256 q, int r, unsigned flags, double draw)
{
    pdqm_lookup_options o = { .max_distance = r, .draw = draw, .flags = flags };
    pdqm_matches m;
    assert_ok(pdqm_store_lookup(s, &q, 1, &o, &m, &err));
    size_t n = m.count;
    pdqm_matches_free(&m);
    return n;
}

static pdqm_content_info get(pdqm_store *s, const char *bank, const char *id)
{
    pdqm_content_info info;
    assert_ok(pdqm_store_content_get(s, bank, id, &info, &err));
    return info;
}

static void set_disabled(pdqm_store *s, const char *bank, uint32_t number, int64_t until)
{
    pdqm_content_changes c = { .set_disabled = 1, .disabled_until = until };
    assert_ok(pdqm_store_content_change(s, bank, number, &c, &err));
}

/* ------------------------------------------------------------------ */

static void test_disabled_content_does_not_match(void **state)
{
    store_fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = { 1 };
    pdqm_hash256 h = rand_hash(&r), near = flip_first(h, 9);
    char hex[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&h, hex);
    assert_ok(pdqm_store_bank_create(s, "b", 31, PDQM_BANK_BLOCK, &err));
    uint32_t n = add_image(s, "b", hex, h, NULL);   /* a hash-named id */
    assert_int_equal(matches(s, near, 31, 0, 0), 1);

    int64_t now = (int64_t)time(NULL);
    set_disabled(s, "b", n, -1);
    assert_int_equal(matches(s, near, 31, 0, 0), 0);
    assert_int_equal(matches(s, near, 31, PDQM_LOOKUP_DISABLED, 0), 1);   /* raw lookups */
    pdqm_content_info info = get(s, "b", hex);
    assert_int_equal(info.disabled_until, -1);
    pdqm_content_info_clear(&info);

    set_disabled(s, "b", n, now + 3600);
    assert_int_equal(matches(s, near, 31, 0, 0), 0);
    set_disabled(s, "b", n, now - 10);     /* a time passed: it matches again */
    assert_int_equal(matches(s, near, 31, 0, 0), 1);
    set_disabled(s, "b", n, -1);
    set_disabled(s, "b", n, 0);
    assert_int_equal(matches(s, near, 31, 0, 0), 1);
    assert_true(pdqm_content_disabled(-1, now) && pdqm_content_disabled(now + 1, now) &&
                !pdqm_content_disabled(now, now) && !pdqm_content_disabled(0, now));

    /* Kept across a reopen; the item keeps its id and hashes. */
    set_disabled(s, "b", n, now + 7200);
    pdqm_store_close(s);
    assert_ok(pdqm_store_open(f->path, 0, &f->store, &err));
    s = f->store;
    info = get(s, "b", hex);
    assert_int_equal(info.disabled_until, now + 7200);
    assert_int_equal(info.number, n);
    pdqm_content_info_clear(&info);
    assert_int_equal(matches(s, near, 31, 0, 0), 0);
    assert_verified(s);

    /* Refusals change nothing. */
    pdqm_content_changes bad = { .set_disabled = 1, .disabled_until = -2 };
    assert_status(pdqm_store_content_change(s, "b", n, &bad, &err), PDQM_ERR_INVALID);
    pdqm_content_changes ok = { .set_disabled = 1, .disabled_until = 0 };
    assert_status(pdqm_store_content_change(s, "b", n + 1, &ok, &err), PDQM_ERR_NOT_FOUND);
    assert_status(pdqm_store_content_change(s, "nope", n, &ok, &err), PDQM_ERR_NOT_FOUND);
    assert_ok(pdqm_store_bank_create(s, "other", 31, PDQM_BANK_BLOCK, &err));
    assert_status(pdqm_store_content_change(s, "other", n, &ok, &err), PDQM_ERR_NOT_FOUND);
    assert_int_equal(matches(s, near, 31, 0, 0), 0);
    assert_ok(pdqm_store_content_change(s, NULL, n, &ok, &err));   /* any bank */
    assert_int_equal(matches(s, near, 31, 0, 0), 1);
}

static void test_notes(void **state)
{
    store_fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = { 2 };
    assert_ok(pdqm_store_bank_create(s, "b", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash one = { rand_hash(&r), 90, 0 };
    pdqm_add a = { .bank = "b", .content_id = "x", .kind = PDQM_CONTENT_IMAGE,
                   .hashes = &one, .n_hashes = 1, .note = "seen in report 7" };
    assert_ok(pdqm_store_add(s, &a, 1, NULL, &err));
    pdqm_content_info info = get(s, "b", "x");
    assert_string_equal(info.note, "seen in report 7");
    uint32_t n = info.number;
    pdqm_content_info_clear(&info);

    /* 255 characters of two bytes each pass; 256 do not, nor bad UTF-8. */
    char note[600] = "";
    for (int i = 0; i < 255; i++)
        strcat(note, "\xc3\xa9");
    pdqm_content_changes c = { .set_note = 1, .note = note };
    assert_ok(pdqm_store_content_change(s, "b", n, &c, &err));
    info = get(s, "b", "x");
    assert_string_equal(info.note, note);
    pdqm_content_info_clear(&info);
    strcat(note, "e");
    assert_status(pdqm_store_content_change(s, "b", n, &c, &err), PDQM_ERR_INVALID);
    c.note = "bad \xff byte";
    assert_status(pdqm_store_content_change(s, "b", n, &c, &err), PDQM_ERR_INVALID);
    a.content_id = "y";
    a.note = note;
    assert_status(pdqm_store_add(s, &a, 1, NULL, &err), PDQM_ERR_INVALID);

    /* A note and a disabled time together, then the note cleared. */
    pdqm_content_changes both = { 1, -1, 1, "short" };
    assert_ok(pdqm_store_content_change(s, "b", n, &both, &err));
    info = get(s, "b", "x");
    assert_string_equal(info.note, "short");
    assert_int_equal(info.disabled_until, -1);
    pdqm_content_info_clear(&info);
    pdqm_content_changes clear = { .set_note = 1, .note = NULL };
    assert_ok(pdqm_store_content_change(s, "b", n, &clear, &err));
    info = get(s, "b", "x");
    assert_null(info.note);
    assert_int_equal(info.disabled_until, -1);
    pdqm_content_info_clear(&info);
    assert_verified(s);
}

static void test_bank_ratio_and_rename(void **state)
{
    store_fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = { 3 };
    pdqm_hash256 h = rand_hash(&r);
    assert_ok(pdqm_store_bank_create(s, "b", 31, PDQM_BANK_BLOCK, &err));
    add_image(s, "b", "x", h, NULL);
    pdqm_bank_info info;
    assert_ok(pdqm_store_bank_get(s, "b", &info, &err));
    assert_true(info.enabled_ratio == 1.0);

    pdqm_bank_changes c = PDQM_BANK_UNCHANGED;
    c.enabled_ratio = 0;
    assert_ok(pdqm_store_bank_change(s, "b", &c, &err));
    assert_int_equal(matches(s, h, 0, 0, 0), 0);
    assert_int_equal(matches(s, h, 0, PDQM_LOOKUP_ALL_BANKS, 0), 1);

    /* A ratio reads back as given, and takes part when at least the draw. */
    c.enabled_ratio = 0.3;
    assert_ok(pdqm_store_bank_change(s, "b", &c, &err));
    assert_ok(pdqm_store_bank_get(s, "b", &info, &err));
    assert_true(info.enabled_ratio == 0.3);
    assert_int_equal(info.threshold, 31);   /* the rest unchanged */
    assert_int_equal(matches(s, h, 0, 0, 0.2), 1);
    assert_int_equal(matches(s, h, 0, 0, 0.5), 0);
    assert_int_equal(matches(s, h, 0, 0, 0), 1);
    assert_int_equal(matches(s, h, 0, PDQM_LOOKUP_ALL_BANKS, 0.5), 1);
    c.enabled_ratio = 1;
    assert_ok(pdqm_store_bank_change(s, "b", &c, &err));
    assert_int_equal(matches(s, h, 0, 0, 1.0), 1);
    c.enabled_ratio = 1.5;
    assert_status(pdqm_store_bank_change(s, "b", &c, &err), PDQM_ERR_INVALID);
    c.enabled_ratio = NAN;
    assert_status(pdqm_store_bank_change(s, "b", &c, &err), PDQM_ERR_INVALID);

    /* A rename keeps the content; lookups name the new bank. */
    pdqm_bank_changes ren = PDQM_BANK_UNCHANGED;
    ren.rename = "NEW_NAME";
    ren.threshold = 20;
    assert_ok(pdqm_store_bank_change(s, "b", &ren, &err));
    assert_status(pdqm_store_bank_get(s, "b", &info, &err), PDQM_ERR_NOT_FOUND);
    assert_ok(pdqm_store_bank_get(s, "NEW_NAME", &info, &err));
    assert_int_equal(info.contents, 1);
    assert_int_equal(info.threshold, 20);
    pdqm_content_info ci = get(s, "NEW_NAME", "x");
    pdqm_content_info_clear(&ci);
    pdqm_matches m;
    pdqm_lookup_options o = { .max_distance = 0 };
    assert_ok(pdqm_store_lookup(s, &h, 1, &o, &m, &err));
    assert_int_equal(m.count, 1);
    assert_string_equal(m.items[0].bank, "NEW_NAME");
    pdqm_matches_free(&m);
    assert_ok(pdqm_store_bank_create(s, "taken", 31, PDQM_BANK_BLOCK, &err));
    ren.rename = "taken";
    assert_status(pdqm_store_bank_change(s, "NEW_NAME", &ren, &err), PDQM_ERR_EXISTS);
    ren.rename = "bad name";
    assert_status(pdqm_store_bank_change(s, "NEW_NAME", &ren, &err), PDQM_ERR_INVALID);
    assert_ok(pdqm_store_bank_get(s, "NEW_NAME", &info, &err));
    assert_int_equal(info.threshold, 20);
    assert_verified(s);
}

static void test_items_named_by_number(void **state)
{
    store_fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = { 4 };
    char id[32];
    assert_ok(pdqm_store_bank_create(s, "b", 31, PDQM_BANK_BLOCK, &err));
    uint32_t n1 = add_image(s, "b", NULL, rand_hash(&r), NULL);
    snprintf(id, sizeof id, "%u", n1);
    pdqm_content_info info = get(s, "b", id);
    assert_int_equal(info.number, n1);
    pdqm_content_info_clear(&info);

    /* The next number's name taken by a named item: ".1" after it. */
    pdqm_store_stats st;
    assert_ok(pdqm_store_stats_get(s, &st, &err));
    uint32_t next = (uint32_t)st.entries_ever;
    snprintf(id, sizeof id, "%u", next + 1);
    assert_int_equal(add_image(s, "b", id, rand_hash(&r), NULL), next);
    uint32_t n2 = add_image(s, "b", NULL, rand_hash(&r), NULL);
    assert_int_equal(n2, next + 1);
    snprintf(id, sizeof id, "%u.1", n2);
    info = get(s, "b", id);
    assert_int_equal(info.number, n2);
    pdqm_content_info_clear(&info);

    /* In one batch: a named item takes the name a numbered one would. */
    assert_ok(pdqm_store_stats_get(s, &st, &err));
    next = (uint32_t)st.entries_ever;
    char named[32];
    snprintf(named, sizeof named, "%u", next);
    pdqm_stored_hash hs[2] = { { rand_hash(&r), 90, 0 }, { rand_hash(&r), 90, 0 } };
    uint32_t nums[2];
    pdqm_add batch[2] = {
        { .bank = "b", .content_id = NULL, .kind = PDQM_CONTENT_IMAGE, .hashes = &hs[0],
          .n_hashes = 1, .number = &nums[0] },
        { .bank = "b", .content_id = named, .kind = PDQM_CONTENT_IMAGE, .hashes = &hs[1],
          .n_hashes = 1, .number = &nums[1] },
    };
    pdqm_add_outcome out[2];
    assert_ok(pdqm_store_add(s, batch, 2, out, &err));
    assert_int_equal(out[0], PDQM_ADDED);
    assert_int_equal(out[1], PDQM_ADDED);
    assert_int_equal(nums[0], next);
    assert_int_equal(nums[1], next + 1);
    snprintf(id, sizeof id, "%u.1", next);
    info = get(s, "b", id);
    assert_int_equal(info.number, next);
    pdqm_content_info_clear(&info);
    info = get(s, "b", named);
    assert_int_equal(info.number, next + 1);
    pdqm_content_info_clear(&info);

    /* What an add skipped gives the number the bank has. */
    pdqm_add_outcome o;
    assert_int_equal(add_image(s, "b", named, rand_hash(&r), &o), next + 1);
    assert_int_equal(o, PDQM_ADD_EXISTS);
    pdqm_stored_hash one = { rand_hash(&r), 90, 0 };
    uint32_t a_num = 0, b_num = 0;
    pdqm_add file = { .bank = "b", .content_id = "file", .sha256 = SHA_A,
                      .kind = PDQM_CONTENT_IMAGE, .hashes = &one, .n_hashes = 1,
                      .number = &a_num };
    assert_ok(pdqm_store_add(s, &file, 1, &o, &err));
    file.content_id = NULL;
    file.number = &b_num;
    assert_ok(pdqm_store_add(s, &file, 1, &o, &err));
    assert_int_equal(o, PDQM_ADD_SAME_FILE);
    assert_int_equal(b_num, a_num);
    assert_verified(s);
}

static void test_items_without_hashes(void **state)
{
    store_fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = { 5 };
    assert_ok(pdqm_store_bank_create(s, "v", 31, PDQM_BANK_BLOCK, &err));
    pdqm_hash256 h = rand_hash(&r);
    add_image(s, "v", "before", h, NULL);
    uint32_t n = 0;
    pdqm_add md5only = { .bank = "v", .md5 = MD5_A, .kind = PDQM_CONTENT_VIDEO, .number = &n };
    for (int deferred = 0; deferred < 2; deferred++) {
        pdqm_add_outcome o;
        assert_ok(deferred ? pdqm_store_add_deferred(s, &md5only, 1, &o, &err)
                           : pdqm_store_add(s, &md5only, 1, &o, &err));
        assert_int_equal(o, PDQM_ADDED);
        uint32_t *found;
        size_t count;
        assert_ok(pdqm_store_find_file(s, NULL, MD5_A, &found, &count, &err));
        assert_int_equal(count, deferred + 1);
        assert_int_equal(found[count - 1], n);
        free(found);
        pdqm_content_info info;
        pdqm_stored_hash *hashes;
        size_t nh = 99;
        assert_ok(pdqm_store_content_by_number(s, n, &info, &hashes, &nh, &err));
        assert_int_equal(nh, 0);
        assert_int_equal(info.kind, PDQM_CONTENT_VIDEO);
        assert_string_equal(info.md5, MD5_A);
        pdqm_content_info_clear(&info);
        free(hashes);
    }
    assert_ok(pdqm_store_index_pending(s, NULL, &err));
    /* Never a match, not even of a scan of everything. */
    pdqm_hash256 zero = { { 0, 0, 0, 0 } };
    assert_int_equal(matches(s, zero, 256, PDQM_LOOKUP_DISABLED, 0), 1);
    assert_int_equal(matches(s, h, 0, 0, 0), 1);
    add_image(s, "v", "after", rand_hash(&r), NULL);
    pdqm_store_stats st;
    assert_ok(pdqm_store_stats_get(s, &st, &err));
    assert_int_equal(st.contents, 4);
    assert_int_equal(st.hashes, 2);
    assert_verified(s);

    int deleted = 0;
    assert_ok(pdqm_store_delete_number(s, "v", n, &deleted, &err));
    assert_int_equal(deleted, 1);
    assert_verified(s);
    /* Nothing to name it, nothing to find it by: refused. */
    pdqm_add nothing = { .bank = "v", .content_id = "x", .kind = PDQM_CONTENT_VIDEO };
    assert_status(pdqm_store_add(s, &nothing, 1, NULL, &err), PDQM_ERR_INVALID);
}

static void test_delete_by_number(void **state)
{
    store_fixture *f = *state;
    pdqm_store *s = f->store;
    rng r = { 6 };
    assert_ok(pdqm_store_bank_create(s, "a", 31, PDQM_BANK_BLOCK, &err));
    assert_ok(pdqm_store_bank_create(s, "b", 31, PDQM_BANK_BLOCK, &err));
    pdqm_hash256 h = rand_hash(&r);
    uint32_t n = add_image(s, "a", "x", h, NULL);
    int deleted = 9;
    assert_ok(pdqm_store_delete_number(s, "b", n, &deleted, &err));
    assert_int_equal(deleted, 0);
    assert_status(pdqm_store_delete_number(s, "nope", n, &deleted, &err), PDQM_ERR_NOT_FOUND);
    assert_int_equal(matches(s, h, 0, 0, 0), 1);
    assert_ok(pdqm_store_delete_number(s, NULL, n, &deleted, &err));
    assert_int_equal(deleted, 1);
    assert_int_equal(matches(s, h, 0, 0, 0), 0);
    assert_ok(pdqm_store_delete_number(s, "a", n, &deleted, &err));
    assert_int_equal(deleted, 0);
    pdqm_bank_info info;
    assert_ok(pdqm_store_bank_get(s, "a", &info, &err));
    assert_int_equal(info.contents, 0);
    assert_verified(s);
}

/* Every item of a store, one line each, for comparing two stores. */
static int describe(void *arg, const pdqm_content_info *info, const pdqm_stored_hash *hashes,
                    size_t n)
{
    (void)hashes;
    char *out = arg;
    char line[512];
    snprintf(line, sizeof line, "%s/%s #%u n=%zu off=%lld note=%s md5=%s\n", info->bank,
             info->content_id, info->number, n, (long long)info->disabled_until,
             info->note ? info->note : "-", info->md5);
    strcat(out, line);
    return 0;
}

static void test_the_same_through_the_log(void **state)
{
    store_fixture *f = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/b.db", f->dir);
    pdqm_store *b;
    assert_ok(pdqm_store_open(path, PDQM_STORE_CREATE, &b, &err));
    rng r = { 7 };
    pdqm_stored_hash hs[3] = { { rand_hash(&r), 90, 0 }, { rand_hash(&r), 90, 0 },
                               { rand_hash(&r), 90, 0 } };
    pdqm_add items[] = {
        { .bank = "B", .content_id = NULL, .kind = PDQM_CONTENT_IMAGE, .hashes = &hs[0],
          .n_hashes = 1, .added = 1700000000, .note = "n1" },
        { .bank = "B", .content_id = "named", .kind = PDQM_CONTENT_IMAGE, .hashes = &hs[1],
          .n_hashes = 1, .added = 1700000000, .disabled_until = -1 },
        { .bank = "B", .content_id = NULL, .md5 = MD5_A, .kind = PDQM_CONTENT_VIDEO,
          .added = 1700000000 },
        { .bank = "B", .content_id = NULL, .kind = PDQM_CONTENT_IMAGE, .hashes = &hs[2],
          .n_hashes = 1, .added = 1700000000 },
    };
    pdqm_op ops[] = {
        { .type = PDQM_OP_BANK_CREATE, .bank = "B", .threshold = 31, .time = 1699999999 },
        { .type = PDQM_OP_ADD, .adds = items, .n_adds = COUNT(items) },
        { .type = PDQM_OP_BANK_UPDATE, .bank = "B", .threshold = -1, .bank_kind = -1,
          .set_ratio = 1, .enabled_ratio = 0.25 },
        { .type = PDQM_OP_CONTENT_CHANGE, .bank = "B", .number = 0,
          .changes = { 1, 1800000000, 1, "changed" } },
        { .type = PDQM_OP_DELETE_NUMBER, .bank = NULL, .number = 3 },
        { .type = PDQM_OP_BANK_UPDATE, .bank = "B", .threshold = -1, .bank_kind = -1,
          .rename = "C" },
        { .type = PDQM_OP_CONTENT_CHANGE, .bank = "B", .number = 1,   /* B is gone: an outcome */
          .changes = { 1, 0, 0, NULL } },
    };
    pdqm_op_result results[COUNT(ops)];
    memset(results, 0, sizeof results);
    pdqm_log_entry one_batch[COUNT(ops)];
    for (size_t i = 0; i < COUNT(ops); i++)
        one_batch[i] = (pdqm_log_entry){ i + 1, &ops[i], 1, &results[i], 0 };
    assert_ok(pdqm_store_apply(f->store, one_batch, COUNT(ops), &err));
    assert_int_equal(results[6].error.status, PDQM_ERR_NOT_FOUND);
    for (size_t i = 0; i < COUNT(ops); i++) {
        pdqm_log_entry e = { i + 1, &ops[i], 1, NULL, 0 };
        assert_ok(pdqm_store_apply(b, &e, 1, &err));
    }
    static char da[4096], db[4096];
    da[0] = db[0] = '\0';
    assert_ok(pdqm_store_walk(f->store, NULL, describe, da, NULL, &err));
    assert_ok(pdqm_store_walk(b, NULL, describe, db, NULL, &err));
    assert_string_equal(da, db);
    assert_string_equal(da, "C/0 #0 n=1 off=1800000000 note=changed md5=\n"
                            "C/named #1 n=1 off=-1 note=- md5=\n"
                            "C/2 #2 n=0 off=0 note=- md5=" MD5_A "\n");
    pdqm_bank_info info;
    assert_ok(pdqm_store_bank_get(b, "C", &info, &err));
    assert_true(info.enabled_ratio == 0.25);
    assert_verified(f->store);
    assert_verified(b);
    pdqm_store_close(b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_setup, store_teardown)
    const struct CMUnitTest tests[] = {
        T(test_disabled_content_does_not_match),
        T(test_notes),
        T(test_bank_ratio_and_rename),
        T(test_items_named_by_number),
        T(test_items_without_hashes),
        T(test_delete_by_number),
        T(test_the_same_through_the_log),
    };
#undef T
    return cmocka_run_group_tests_name("store changes", tests, NULL, NULL);
}
