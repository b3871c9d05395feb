/*
 * test_store_exchange.c - what the store keeps for hash exchanges, the
 * lease that lets one fetcher write for an exchange, guards, and the PUT
 * that stores a record fetched again only when it changed.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_testutil.h"

static void set_op(pdqm_op *op, const char *name, unsigned flags)
{
    memset(op, 0, sizeof *op);
    op->type = PDQM_OP_EXCHANGE_SET;
    op->exchange = name;
    op->xflags = flags;
    op->time = 1000;
}

/* Apply ops; returns the first op's outcome. */
static pdqm_status apply(pdqm_store *s, const pdqm_op *ops, size_t n, pdqm_op_result *res)
{
    pdqm_op_result local[16];
    memset(local, 0, sizeof local);
    if (res == NULL)
        res = local;
    assert_ok(pdqm_store_apply_ops(s, ops, n, res, &err));
    return res[0].error.status;
}

static void test_exchange_create_get_list_delete(void **state)
{
    store_fixture *f = *state;
    pdqm_exchange_state st;
    assert_status(pdqm_store_exchange_get(f->store, "x", &st, &err), PDQM_ERR_NOT_FOUND);
    pdqm_op op;
    set_op(&op, "x", PDQM_XSET_CONFIG);
    op.config = "{}";
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_NOT_FOUND);   /* no CREATE */
    set_op(&op, "x", PDQM_XSET_CREATE | PDQM_XSET_CONFIG);
    op.config = "{\"type\":\"tcap\"}";
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_EXISTS);
    set_op(&op, "a", PDQM_XSET_CREATE | PDQM_XSET_CONFIG | PDQM_XSET_CHECKPOINT);
    op.config = "{\"type\":\"ncmec\"}";
    op.checkpoint = "cp1";
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);

    assert_ok(pdqm_store_exchange_get(f->store, "x", &st, &err));
    assert_string_equal(st.name, "x");
    assert_string_equal(st.config, "{\"type\":\"tcap\"}");
    assert_null(st.checkpoint);
    assert_null(st.status);
    assert_string_equal(st.holder, "");
    pdqm_exchange_state_clear(&st);

    /* Checkpoint and status set, then the checkpoint cleared. */
    set_op(&op, "x", PDQM_XSET_CHECKPOINT | PDQM_XSET_STATUS);
    op.checkpoint = "{\"after\":\"5,17\"}";
    op.status = "{\"ok\":true}";
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
    assert_ok(pdqm_store_exchange_get(f->store, "x", &st, &err));
    assert_string_equal(st.checkpoint, "{\"after\":\"5,17\"}");
    assert_string_equal(st.status, "{\"ok\":true}");
    assert_string_equal(st.config, "{\"type\":\"tcap\"}");
    pdqm_exchange_state_clear(&st);
    set_op(&op, "x", PDQM_XSET_CHECKPOINT);
    op.checkpoint = NULL;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
    assert_ok(pdqm_store_exchange_get(f->store, "x", &st, &err));
    assert_null(st.checkpoint);
    assert_string_equal(st.status, "{\"ok\":true}");
    pdqm_exchange_state_clear(&st);

    pdqm_exchange_state *all;
    size_t n;
    assert_ok(pdqm_store_exchange_list(f->store, &all, &n, &err));
    assert_int_equal(n, 2);
    assert_string_equal(all[0].name, "a");
    assert_string_equal(all[0].checkpoint, "cp1");
    assert_string_equal(all[1].name, "x");
    pdqm_exchange_states_free(all, n);

    pdqm_op del = { .type = PDQM_OP_EXCHANGE_DELETE, .exchange = "a" };
    assert_int_equal(apply(f->store, &del, 1, NULL), PDQM_OK);
    assert_int_equal(apply(f->store, &del, 1, NULL), PDQM_ERR_NOT_FOUND);
    assert_ok(pdqm_store_exchange_list(f->store, &all, &n, &err));
    assert_int_equal(n, 1);
    pdqm_exchange_states_free(all, n);
    /* Exchanges are not banks, and do not disturb them. */
    pdqm_bank_info *banks;
    assert_ok(pdqm_store_bank_list(f->store, &banks, &n, &err));
    assert_int_equal(n, 0);
    free(banks);
    assert_verified(f->store);
}

static void test_exchange_op_checks(void **state)
{
    store_fixture *f = *state;
    pdqm_op op;
    set_op(&op, "bad name!", PDQM_XSET_CREATE | PDQM_XSET_CONFIG);
    op.config = "{}";
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_INVALID);
    set_op(&op, "x", PDQM_XSET_CREATE);   /* no config */
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_INVALID);
    set_op(&op, "x", PDQM_XSET_CREATE | PDQM_XSET_CONFIG | PDQM_XSET_LEASE);
    op.config = "{}";
    op.holder = "h";
    op.time = 0;            /* a lease needs its time */
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_INVALID);
    char *big = malloc(PDQM_EXCHANGE_TEXT_MAX + 2);
    memset(big, 'a', PDQM_EXCHANGE_TEXT_MAX + 1);
    big[PDQM_EXCHANGE_TEXT_MAX + 1] = '\0';
    set_op(&op, "x", PDQM_XSET_CREATE | PDQM_XSET_CONFIG);
    op.config = big;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_TOO_LARGE);
    free(big);
    pdqm_exchange_state *all;
    size_t n;
    assert_ok(pdqm_store_exchange_list(f->store, &all, &n, &err));
    assert_int_equal(n, 0);
    pdqm_exchange_states_free(all, n);
}

/* One holder at a time; a lease past its time, released, or named as the
 * takeover may be taken. */
static void test_exchange_lease(void **state)
{
    store_fixture *f = *state;
    pdqm_op op;
    set_op(&op, "x", PDQM_XSET_CREATE | PDQM_XSET_CONFIG);
    op.config = "{}";
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);

    set_op(&op, "x", PDQM_XSET_LEASE);
    op.holder = "A";
    op.time = 1000;
    op.lease_until = 1100;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
    op.holder = "B";
    op.lease_until = 1200;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_BUSY);
    op.time = 1099;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_BUSY);
    op.takeover = "A";      /* A is known to be gone */
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
    pdqm_exchange_state st;
    assert_ok(pdqm_store_exchange_get(f->store, "x", &st, &err));
    assert_string_equal(st.holder, "B");
    assert_int_equal(st.lease_until, 1200);
    pdqm_exchange_state_clear(&st);

    /* A comes back: busy, until the lease ends. */
    op.takeover = NULL;
    op.holder = "A";
    op.time = 1150;
    op.lease_until = 1300;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_ERR_BUSY);
    op.time = 1200;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
    /* The holder renews; then releases (lease_until 0). */
    op.time = 1250;
    op.lease_until = 1400;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
    op.lease_until = 0;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
    assert_ok(pdqm_store_exchange_get(f->store, "x", &st, &err));
    assert_string_equal(st.holder, "");
    pdqm_exchange_state_clear(&st);
    op.holder = "C";
    op.lease_until = 1500;
    assert_int_equal(apply(f->store, &op, 1, NULL), PDQM_OK);
}

static pdqm_stored_hash some_hash(uint64_t seed)
{
    rng r = { seed };
    pdqm_stored_hash h = { rand_hash(&r), 90, 0 };
    return h;
}

/* A guard that fails leaves the rest of its entry unapplied: a page of a
 * fetcher that lost its lease stores nothing. */
static void test_guard_skips_the_rest(void **state)
{
    store_fixture *f = *state;
    assert_ok(pdqm_store_bank_create(f->store, "b", 31, PDQM_BANK_BLOCK, &err));
    pdqm_op ops[3];
    set_op(&ops[0], "x", PDQM_XSET_CREATE | PDQM_XSET_CONFIG | PDQM_XSET_LEASE);
    ops[0].config = "{}";
    ops[0].holder = "A";
    ops[0].lease_until = 2000;
    assert_int_equal(apply(f->store, ops, 1, NULL), PDQM_OK);

    pdqm_stored_hash h = some_hash(1);
    pdqm_add add = { .bank = "b", .content_id = "r1", .kind = PDQM_CONTENT_IMAGE,
                     .hashes = &h, .n_hashes = 1, .added = 1000 };
    set_op(&ops[0], "x", PDQM_XSET_LEASE | PDQM_XSET_CHECKPOINT);
    ops[0].guard = 1;
    ops[0].holder = "B";
    ops[0].lease_until = 2000;
    ops[0].checkpoint = "B's";
    ops[1] = (pdqm_op){ .type = PDQM_OP_PUT, .adds = &add, .n_adds = 1 };
    ops[2] = (pdqm_op){ .type = PDQM_OP_BANK_DELETE, .bank = "b" };
    pdqm_op_result res[3];
    memset(res, 0, sizeof res);
    assert_int_equal(apply(f->store, ops, 3, res), PDQM_ERR_BUSY);
    assert_int_equal(res[1].error.status, PDQM_ERR_BUSY);
    assert_non_null(strstr(res[1].error.message, "not applied"));
    assert_int_equal(res[2].error.status, PDQM_ERR_BUSY);
    pdqm_bank_info b;
    assert_ok(pdqm_store_bank_get(f->store, "b", &b, &err));
    assert_int_equal(b.contents, 0);
    pdqm_exchange_state st;
    assert_ok(pdqm_store_exchange_get(f->store, "x", &st, &err));
    assert_null(st.checkpoint);
    pdqm_exchange_state_clear(&st);

    /* The holder's page: all of it. */
    ops[0].holder = "A";
    ops[0].checkpoint = "A's";
    pdqm_add_outcome out = (pdqm_add_outcome)-1;
    memset(res, 0, sizeof res);
    res[1].outcomes = &out;
    assert_int_equal(apply(f->store, ops, 2, res), PDQM_OK);
    assert_int_equal(res[1].error.status, PDQM_OK);
    assert_int_equal(out, PDQM_ADDED);
    assert_ok(pdqm_store_bank_get(f->store, "b", &b, &err));
    assert_int_equal(b.contents, 1);
    assert_ok(pdqm_store_exchange_get(f->store, "x", &st, &err));
    assert_string_equal(st.checkpoint, "A's");
    pdqm_exchange_state_clear(&st);
    /* An op that fails without a guard does not stop the others. */
    ops[0] = (pdqm_op){ .type = PDQM_OP_DELETE, .bank = "b", .content_id = "none" };
    ops[1] = (pdqm_op){ .type = PDQM_OP_DELETE, .bank = "b", .content_id = "r1" };
    memset(res, 0, sizeof res);
    assert_int_equal(apply(f->store, ops, 2, res), PDQM_ERR_NOT_FOUND);
    assert_int_equal(res[1].error.status, PDQM_OK);
    assert_verified(f->store);
}

/* A PUT stores a record fetched again only when it changed. */
static void test_put_replaces_what_changed(void **state)
{
    store_fixture *f = *state;
    assert_ok(pdqm_store_bank_create(f->store, "b", 31, PDQM_BANK_BLOCK, &err));
    pdqm_stored_hash h1 = some_hash(1), h2 = some_hash(2);
    pdqm_stored_hash frames[2] = { some_hash(3), some_hash(4) };
    frames[1].timestamp = 1.5;
    pdqm_add adds[3] = {
        { .bank = "b", .content_id = "img", .metadata = "{\"v\":1}", .kind = PDQM_CONTENT_IMAGE,
          .hashes = &h1, .n_hashes = 1, .added = 1000 },
        { .bank = "b", .content_id = "vid", .md5 = "0123456789abcdef0123456789abcdef",
          .kind = PDQM_CONTENT_VIDEO, .added = 1000 },
        { .bank = "b", .content_id = "frames", .kind = PDQM_CONTENT_VIDEO,
          .hashes = frames, .n_hashes = 2, .added = 1000 },
    };
    pdqm_op put = { .type = PDQM_OP_PUT, .adds = adds, .n_adds = 3 };
    pdqm_add_outcome out[3];
    uint32_t num[3], num2[3];
    pdqm_op_result res = { .outcomes = out, .numbers = num };
    assert_int_equal(apply(f->store, &put, 1, &res), PDQM_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(out[i], PDQM_ADDED);

    /* The same again, at another time: nothing changes, numbers stay. */
    for (int i = 0; i < 3; i++)
        adds[i].added = 2000;
    res.numbers = num2;
    assert_int_equal(apply(f->store, &put, 1, &res), PDQM_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i], PDQM_ADD_EXISTS);
        assert_int_equal(num2[i], num[i]);
    }

    /* Changed: the metadata of one, the MD5 of another, a frame's time. */
    adds[0].metadata = "{\"v\":2}";
    adds[1].md5 = "0123456789abcdef0123456789abcdee";
    frames[1].timestamp = 2.0;
    assert_int_equal(apply(f->store, &put, 1, &res), PDQM_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i], PDQM_ADD_REPLACED);
        assert_true(num2[i] != num[i]);
    }
    pdqm_content_info info;
    assert_ok(pdqm_store_content_get(f->store, "b", "img", &info, &err));
    assert_string_equal(info.metadata, "{\"v\":2}");
    pdqm_content_info_clear(&info);
    assert_ok(pdqm_store_content_get(f->store, "b", "vid", &info, &err));
    assert_string_equal(info.md5, "0123456789abcdef0123456789abcdee");
    pdqm_content_info_clear(&info);
    /* The hash changed: the old one matches no more, the new one does. */
    adds[0].hashes = &h2;
    assert_int_equal(apply(f->store, &put, 1, &res), PDQM_OK);
    assert_int_equal(out[0], PDQM_ADD_REPLACED);
    assert_int_equal(out[1], PDQM_ADD_EXISTS);
    pdqm_matches m;
    pdqm_lookup_options o = { .max_distance = 0 };
    assert_ok(pdqm_store_lookup(f->store, &h1.hash, 1, &o, &m, &err));
    assert_int_equal(m.count, 0);
    pdqm_matches_free(&m);
    assert_ok(pdqm_store_lookup(f->store, &h2.hash, 1, &o, &m, &err));
    assert_int_equal(m.count, 1);
    assert_string_equal(m.items[0].content_id, "img");
    pdqm_matches_free(&m);
    pdqm_bank_info b;
    assert_ok(pdqm_store_bank_get(f->store, "b", &b, &err));
    assert_int_equal(b.contents, 3);
    assert_int_equal(b.hashes, 3);
    assert_ok(pdqm_store_index_pending(f->store, NULL, &err));
    assert_verified(f->store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exchange_create_get_list_delete, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_exchange_op_checks, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_exchange_lease, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_guard_skips_the_rest, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_put_replaces_what_changed, store_setup,
                                        store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
