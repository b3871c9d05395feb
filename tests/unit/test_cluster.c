/*
 * test_cluster.c - cluster/cluster.h: the log entry's encoding.
 *
 * Every op round-trips field for field; hash-named items and items
 * without timestamps take the short form; and the decoder, given entries
 * cut short at every byte, with bits flipped, with counts that lie, of
 * another version or with bytes after the end, fails with a message and
 * never reads past the entry (ASan watches) nor makes more than the entry
 * accounts for.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <strings.h>

#include "../../cluster/cluster.h"
#include "../../hashing/hash256.h"

static pdqm_error err;

#define assert_ok(call)                                                      \
    do {                                                                     \
        pdqm_error_clear(&err);                                              \
        pdqm_status st_ = (call);                                            \
        if (st_ != PDQM_OK)                                                  \
            fail_msg("%s: got %s (%s)", #call, pdqm_status_token(st_),       \
                     pdqm_error_message(&err));                              \
    } while (0)

static int str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* Digests compare case-blind (the entry holds raw bytes). */
static int hex_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcasecmp(a, b) == 0);
}

static void assert_ops_equal(const pdqm_op *a, const pdqm_op *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].type, b[i].type);
        assert_int_equal(a[i].guard, b[i].guard);
        if (a[i].type != PDQM_OP_ADD && a[i].type != PDQM_OP_PUT &&
            a[i].type != PDQM_OP_EXCHANGE_SET && a[i].type != PDQM_OP_EXCHANGE_DELETE)
            assert_true(str_eq(a[i].bank, b[i].bank));
        switch (a[i].type) {
        case PDQM_OP_EXCHANGE_DELETE:
            assert_string_equal(a[i].exchange, b[i].exchange);
            break;
        case PDQM_OP_EXCHANGE_SET:
            assert_string_equal(a[i].exchange, b[i].exchange);
            assert_int_equal(a[i].xflags, b[i].xflags);
            assert_int_equal(a[i].time, b[i].time);
            if (a[i].xflags & PDQM_XSET_CONFIG)
                assert_string_equal(a[i].config, b[i].config);
            if (a[i].xflags & PDQM_XSET_CHECKPOINT)
                assert_true(str_eq(a[i].checkpoint, b[i].checkpoint));
            if (a[i].xflags & PDQM_XSET_STATUS)
                assert_string_equal(a[i].status, b[i].status);
            if (a[i].xflags & PDQM_XSET_LEASE) {
                assert_string_equal(a[i].holder, b[i].holder);
                assert_int_equal(a[i].lease_until, b[i].lease_until);
                assert_true(str_eq(a[i].takeover, b[i].takeover));
            }
            break;
        case PDQM_OP_BANK_CREATE:
            assert_int_equal(a[i].time, b[i].time);
            assert_int_equal(a[i].threshold, b[i].threshold);
            assert_int_equal(a[i].bank_kind, b[i].bank_kind);
            break;
        case PDQM_OP_BANK_UPDATE:
            assert_int_equal(a[i].threshold, b[i].threshold);
            assert_int_equal(a[i].bank_kind, b[i].bank_kind);
            assert_int_equal(a[i].set_ratio, b[i].set_ratio);
            if (a[i].set_ratio)
                assert_true(a[i].enabled_ratio == b[i].enabled_ratio);
            assert_true(str_eq(a[i].rename, b[i].rename));
            break;
        case PDQM_OP_CONTENT_CHANGE:
            assert_int_equal(a[i].number, b[i].number);
            assert_int_equal(a[i].changes.set_disabled, b[i].changes.set_disabled);
            if (a[i].changes.set_disabled)
                assert_int_equal(a[i].changes.disabled_until, b[i].changes.disabled_until);
            assert_int_equal(a[i].changes.set_note, b[i].changes.set_note);
            if (a[i].changes.set_note)
                assert_true(str_eq(a[i].changes.note ? a[i].changes.note : "",
                                   b[i].changes.note ? b[i].changes.note : ""));
            break;
        case PDQM_OP_DELETE_NUMBER:
            assert_int_equal(a[i].number, b[i].number);
            break;
        case PDQM_OP_BANK_DELETE:
            break;
        case PDQM_OP_DELETE:
            assert_string_equal(a[i].content_id, b[i].content_id);
            break;
        case PDQM_OP_ADD:
        case PDQM_OP_PUT:
            assert_int_equal(a[i].deferred, b[i].deferred);
            assert_int_equal(a[i].n_adds, b[i].n_adds);
            for (size_t k = 0; k < a[i].n_adds; k++) {
                const pdqm_add *x = &a[i].adds[k], *y = &b[i].adds[k];
                assert_string_equal(x->bank, y->bank);
                assert_true(str_eq(x->content_id, y->content_id));
                assert_true(str_eq(x->metadata, y->metadata));
                assert_true(str_eq(x->note && x->note[0] ? x->note : NULL,
                                   y->note && y->note[0] ? y->note : NULL));
                assert_int_equal(x->disabled_until, y->disabled_until);
                assert_true(hex_eq(x->sha256, y->sha256));
                assert_true(hex_eq(x->md5, y->md5));
                assert_int_equal(x->kind, y->kind);
                assert_int_equal(x->added, y->added);
                assert_int_equal(x->n_hashes, y->n_hashes);
                for (size_t h = 0; h < x->n_hashes; h++) {
                    assert_memory_equal(&x->hashes[h].hash, &y->hashes[h].hash, 32);
                    assert_int_equal(x->hashes[h].quality, y->hashes[h].quality);
                    assert_true(x->hashes[h].timestamp == y->hashes[h].timestamp);
                }
            }
            break;
        }
    }
}

/* A sample entry of every op type. */
static pdqm_stored_hash frames[3];
static pdqm_stored_hash plain[1];
static pdqm_add items[3];
static char hash_id[PDQM_HASH_HEX_LEN + 1];
static pdqm_op sample[6];

static void make_sample(void)
{
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 4; k++)
            frames[i].hash.w[k] = 0x0123456789abcdefull * (uint64_t)(i + k + 1);
        frames[i].quality = 70 + i;
        frames[i].timestamp = 0.5 * i;
    }
    plain[0] = (pdqm_stored_hash){ { { 1, 2, 3, 0xffffffffffffffffull } }, 100, 0 };
    pdqm_hash256_to_hex(&plain[0].hash, hash_id);
    items[0] = (pdqm_add){ "videos", "clip/one.mp4", "{\"src\":\"ncmec\",\"n\":[1,2]}",
                           "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                           "d41d8cd98f00b204e9800998ecf8427e", PDQM_CONTENT_VIDEO, frames, 3,
                           1700000000 };
    items[1] = (pdqm_add){ "list", hash_id, NULL, NULL, NULL, PDQM_CONTENT_HASHES, plain, 1,
                           1700000001 };
    items[2] = (pdqm_add){ "list", "named", NULL, NULL, NULL, PDQM_CONTENT_IMAGE, plain, 1,
                           1700000002 };
    sample[0] = (pdqm_op){ .type = PDQM_OP_BANK_CREATE, .bank = "videos", .threshold = 31,
                           .bank_kind = PDQM_BANK_ALLOW, .time = 1699999999 };
    sample[1] = (pdqm_op){ .type = PDQM_OP_BANK_UPDATE, .bank = "videos", .threshold = -1,
                           .bank_kind = PDQM_BANK_BLOCK };
    sample[2] = (pdqm_op){ .type = PDQM_OP_ADD, .adds = items, .n_adds = 3, .deferred = 1 };
    sample[3] = (pdqm_op){ .type = PDQM_OP_DELETE, .bank = "list", .content_id = "named" };
    sample[4] = (pdqm_op){ .type = PDQM_OP_BANK_DELETE, .bank = "list" };
    sample[5] = (pdqm_op){ .type = PDQM_OP_BANK_UPDATE, .bank = "b", .threshold = 256,
                           .bank_kind = -1 };
}

/* A sample of what only version 2 holds. */
static pdqm_add items2[3];
static pdqm_op sample2[6];

static void make_sample2(void)
{
    make_sample();
    items2[0] = (pdqm_add){ .bank = "B", .content_id = NULL, .kind = PDQM_CONTENT_IMAGE,
                            .hashes = plain, .n_hashes = 1, .added = 1700000003,
                            .note = "a note", .disabled_until = -1 };
    items2[1] = (pdqm_add){ .bank = "B", .content_id = NULL,
                            .md5 = "d41d8cd98f00b204e9800998ecf8427e",
                            .kind = PDQM_CONTENT_VIDEO, .added = 1700000004 };
    items2[2] = items[1];   /* a version-1 item among them */
    sample2[0] = (pdqm_op){ .type = PDQM_OP_BANK_UPDATE, .bank = "B", .threshold = -1,
                            .bank_kind = -1, .set_ratio = 1, .enabled_ratio = 0.3 };
    sample2[1] = (pdqm_op){ .type = PDQM_OP_BANK_UPDATE, .bank = "B", .threshold = 20,
                            .bank_kind = -1, .rename = "C" };
    sample2[2] = (pdqm_op){ .type = PDQM_OP_ADD, .adds = items2, .n_adds = 3 };
    sample2[3] = (pdqm_op){ .type = PDQM_OP_CONTENT_CHANGE, .bank = "C", .number = 7,
                            .changes = { 1, 1800000000, 1, "note" } };
    sample2[4] = (pdqm_op){ .type = PDQM_OP_CONTENT_CHANGE, .bank = NULL, .number = 8,
                            .changes = { 0, 0, 1, NULL } };
    sample2[5] = (pdqm_op){ .type = PDQM_OP_DELETE_NUMBER, .number = 9 };
}

/* A sample of what only version 3 holds: the exchanges' ops. */
static pdqm_op sample3[6];

static void make_sample3(void)
{
    make_sample2();
    sample3[0] = (pdqm_op){ .type = PDQM_OP_EXCHANGE_SET, .exchange = "ncmec",
                            .xflags = PDQM_XSET_CREATE | PDQM_XSET_CONFIG,
                            .config = "{\"type\":\"ncmec\"}", .time = 1700000005 };
    sample3[1] = (pdqm_op){ .type = PDQM_OP_EXCHANGE_SET, .exchange = "ncmec", .guard = 1,
                            .xflags = PDQM_XSET_LEASE | PDQM_XSET_CHECKPOINT | PDQM_XSET_STATUS,
                            .checkpoint = "{\"from\":17}", .status = "{}",
                            .holder = "host/12", .lease_until = 1700000600,
                            .takeover = "host/11", .time = 1700000006 };
    sample3[2] = (pdqm_op){ .type = PDQM_OP_PUT, .adds = items2, .n_adds = 3, .deferred = 1 };
    sample3[3] = (pdqm_op){ .type = PDQM_OP_EXCHANGE_SET, .exchange = "x",
                            .xflags = PDQM_XSET_CHECKPOINT, .checkpoint = NULL,
                            .time = 1700000007 };
    sample3[4] = (pdqm_op){ .type = PDQM_OP_DELETE, .bank = "B", .content_id = "n-1" };
    sample3[5] = (pdqm_op){ .type = PDQM_OP_EXCHANGE_DELETE, .exchange = "x" };
}

static void test_log_round_trip(void **state)
{
    (void)state;
    make_sample();
    uint8_t *buf;
    size_t len;
    assert_ok(pdqm_log_encode(sample, 6, &buf, &len, &err));
    size_t want = PDQM_LOG_HEADER_BYTES;
    for (int i = 0; i < 6; i++)
        want += pdqm_log_op_bytes(&sample[i]);
    assert_int_equal(len, want);
    pdqm_log_ops d;
    assert_ok(pdqm_log_decode(buf, len, &d, &err));
    assert_int_equal(d.n_ops, 6);
    assert_ops_equal(sample, d.ops, 6);
    pdqm_log_ops_free(&d);
    free(buf);
}

/* What only version 2 holds goes in an entry of version 2; an entry of
 * version-1 ops stays version 1, which older nodes read. */
static void test_log_version_2(void **state)
{
    (void)state;
    make_sample2();
    uint8_t *buf;
    size_t len;
    assert_ok(pdqm_log_encode(sample, 6, &buf, &len, &err));
    assert_int_equal(buf[4], 1);
    free(buf);
    assert_ok(pdqm_log_encode(sample2, 6, &buf, &len, &err));
    assert_int_equal(buf[4], 2);
    size_t want = PDQM_LOG_HEADER_BYTES;
    for (int i = 0; i < 6; i++)
        want += pdqm_log_op_bytes(&sample2[i]);
    assert_int_equal(len, want);
    pdqm_log_ops d;
    assert_ok(pdqm_log_decode(buf, len, &d, &err));
    assert_int_equal(d.n_ops, 6);
    assert_ops_equal(sample2, d.ops, 6);
    assert_null(d.ops[2].adds[0].content_id);    /* named by its number */
    assert_int_equal(d.ops[2].adds[1].n_hashes, 0);
    assert_null(d.ops[4].bank);
    assert_null(d.ops[5].bank);
    pdqm_log_ops_free(&d);
    /* Version 2's ops in an entry that says version 1: refused. */
    buf[4] = 1;
    assert_int_equal(pdqm_log_decode(buf, len, &d, &err), PDQM_ERR_INVALID);
    free(buf);
    pdqm_op del = { .type = PDQM_OP_DELETE_NUMBER, .bank = "B", .number = 3 };
    assert_ok(pdqm_log_encode(&del, 1, &buf, &len, &err));
    buf[4] = 1;
    assert_int_equal(pdqm_log_decode(buf, len, &d, &err), PDQM_ERR_INVALID);
    assert_non_null(strstr(err.message, "unknown type"));
    free(buf);
    /* An item with no hash needs its MD5, and an id: the hash's or a number. */
    pdqm_add none[2] = { items2[1], items[0] };
    none[0].md5 = NULL;
    pdqm_op add = { .type = PDQM_OP_ADD, .adds = none, .n_adds = 2 };
    assert_ok(pdqm_log_encode(&add, 1, &buf, &len, &err));
    assert_int_equal(pdqm_log_decode(buf, len, &d, &err), PDQM_ERR_INVALID);
    if (strstr(err.message, "no hashes") == NULL) fail_msg("%s", err.message);
    free(buf);
}

/* The exchanges' ops and guards go in entries of version 3, which a node
 * of version 2 refuses as unsupported (it stops, not skips); an entry of
 * older ops keeps its version. */
static void test_log_version_3(void **state)
{
    (void)state;
    make_sample3();
    uint8_t *buf;
    size_t len;
    assert_ok(pdqm_log_encode(sample2, 6, &buf, &len, &err));
    assert_int_equal(buf[4], 2);
    free(buf);
    assert_ok(pdqm_log_encode(sample3, 6, &buf, &len, &err));
    assert_int_equal(buf[4], 3);
    size_t want = PDQM_LOG_HEADER_BYTES;
    for (int i = 0; i < 6; i++)
        want += pdqm_log_op_bytes(&sample3[i]);
    assert_int_equal(len, want);
    pdqm_log_ops d;
    assert_ok(pdqm_log_decode(buf, len, &d, &err));
    assert_int_equal(d.n_ops, 6);
    assert_ops_equal(sample3, d.ops, 6);
    assert_null(d.ops[3].checkpoint);
    assert_null(d.ops[0].takeover);
    pdqm_log_ops_free(&d);
    /* The same bytes said to be version 2: exchange ops are unknown there. */
    buf[4] = 2;
    assert_int_equal(pdqm_log_decode(buf, len, &d, &err), PDQM_ERR_INVALID);
    free(buf);
    /* A guard alone makes an entry version 3. */
    pdqm_op g = { .type = PDQM_OP_DELETE, .bank = "b", .content_id = "c", .guard = 1 };
    assert_ok(pdqm_log_encode(&g, 1, &buf, &len, &err));
    assert_int_equal(buf[4], 3);
    assert_ok(pdqm_log_decode(buf, len, &d, &err));
    assert_int_equal(d.ops[0].guard, 1);
    pdqm_log_ops_free(&d);
    free(buf);
    /* What the format cannot hold is refused. */
    pdqm_op bad = sample3[1];
    bad.holder = NULL;
    assert_int_equal(pdqm_log_encode(&bad, 1, &buf, &len, &err), PDQM_ERR_INVALID);
    bad = sample3[0];
    bad.exchange = NULL;
    assert_int_equal(pdqm_log_encode(&bad, 1, &buf, &len, &err), PDQM_ERR_INVALID);
}

/* A hash-named item does not repeat its id, and hashes without
 * timestamps leave them out: 33 bytes a hash, the size of a hash list. */
static void test_log_short_forms(void **state)
{
    (void)state;
    make_sample();
    size_t hash_named = pdqm_log_add_bytes(&items[1]);
    assert_int_equal(hash_named, 1 + 1 + 4 + 1 + 8 + 4 + 33);
    pdqm_add named = items[1];
    named.content_id = "x";
    assert_int_equal(pdqm_log_add_bytes(&named), hash_named + 2 + 1);
    pdqm_op add = { .type = PDQM_OP_ADD, .adds = &items[1], .n_adds = 1 };
    assert_int_equal(pdqm_log_op_bytes(&add), PDQM_LOG_ADD_BYTES + hash_named);
}

static void test_log_encode_refuses(void **state)
{
    (void)state;
    make_sample();
    uint8_t *buf;
    size_t len;
    pdqm_add bad = items[0];
    bad.sha256 = "not hex";
    pdqm_op op = { .type = PDQM_OP_ADD, .adds = &bad, .n_adds = 1 };
    assert_int_equal(pdqm_log_encode(&op, 1, &buf, &len, &err), PDQM_ERR_INVALID);
    char longbank[300];
    memset(longbank, 'b', sizeof longbank - 1);
    longbank[sizeof longbank - 1] = '\0';
    pdqm_op del = { .type = PDQM_OP_BANK_DELETE, .bank = longbank };
    assert_int_equal(pdqm_log_encode(&del, 1, &buf, &len, &err), PDQM_ERR_INVALID);
    pdqm_op unknown = { .type = (pdqm_op_type)99, .bank = "b" };
    assert_int_equal(pdqm_log_encode(&unknown, 1, &buf, &len, &err), PDQM_ERR_INVALID);
}

/* Every prefix of an entry is refused; so is the entry with a byte after
 * it.  Each refusal says where. */
static void test_log_truncated_entries(void **state)
{
    (void)state;
    make_sample3();
    for (int version = 1; version <= 3; version++) {
    uint8_t *buf;
    size_t len;
    assert_ok(pdqm_log_encode(version == 1 ? sample : version == 2 ? sample2 : sample3, 6,
                              &buf, &len, &err));
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);   /* exactly cut bytes: ASan sees overreads */
        memcpy(copy, buf, cut);
        pdqm_log_ops d;
        pdqm_error e;
        pdqm_error_clear(&e);
        assert_int_equal(pdqm_log_decode(copy, cut, &d, &e), PDQM_ERR_INVALID);
        assert_non_null(strstr(e.message, "log entry"));
        free(copy);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    pdqm_log_ops d;
    assert_int_equal(pdqm_log_decode(longer, len + 1, &d, &err), PDQM_ERR_INVALID);
    assert_non_null(strstr(err.message, "after the last op"));
    free(longer);
    free(buf);
    }
}

/* Every single bit flipped: the decoder fails or decodes something that
 * encodes again (a mangled entry never crashes or overreads). */
static void test_log_flipped_bits(void **state)
{
    (void)state;
    make_sample3();
    for (int version = 1; version <= 3; version++) {
    uint8_t *buf;
    size_t len;
    assert_ok(pdqm_log_encode(version == 1 ? sample : version == 2 ? sample2 : sample3, 6,
                              &buf, &len, &err));
    size_t decoded = 0;
    for (size_t bit = 0; bit < len * 8; bit++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        pdqm_log_ops d;
        if (pdqm_log_decode(copy, len, &d, NULL) == PDQM_OK) {
            decoded++;
            uint8_t *again;
            size_t again_len;
            if (pdqm_log_encode(d.ops, d.n_ops, &again, &again_len, NULL) == PDQM_OK)
                free(again);
            pdqm_log_ops_free(&d);
        }
        free(copy);
    }
    /* Flips inside hashes and strings still decode: the walk saw those. */
    assert_true(decoded > 0 && decoded < len * 8);
    free(buf);
    }
}

/* Counts that claim more than the entry holds are caught before anything
 * is made of them; so are other versions and other magic. */
static void test_log_lies(void **state)
{
    (void)state;
    make_sample();
    pdqm_op add = { .type = PDQM_OP_ADD, .adds = &items[2], .n_adds = 1 };
    uint8_t *buf;
    size_t len;
    assert_ok(pdqm_log_encode(&add, 1, &buf, &len, &err));
    pdqm_log_ops d;
    /* The item count (after header, type, deferred): 4 billion. */
    uint8_t *lie = malloc(len);
    memcpy(lie, buf, len);
    memset(lie + PDQM_LOG_HEADER_BYTES + 2, 0xff, 4);
    assert_int_equal(pdqm_log_decode(lie, len, &d, &err), PDQM_ERR_INVALID);
    assert_non_null(strstr(err.message, "more items"));
    /* The hash count, just before the one hash. */
    memcpy(lie, buf, len);
    memset(lie + len - 33 - 4, 0xff, 4);
    assert_int_equal(pdqm_log_decode(lie, len, &d, &err), PDQM_ERR_INVALID);
    assert_non_null(strstr(err.message, "more hashes"));
    /* A later version: unsupported, not malformed. */
    memcpy(lie, buf, len);
    lie[4] = PDQM_LOG_VERSION + 1;
    assert_int_equal(pdqm_log_decode(lie, len, &d, &err), PDQM_ERR_UNSUPPORTED);
    memcpy(lie, buf, len);
    lie[0] = 'X';
    assert_int_equal(pdqm_log_decode(lie, len, &d, &err), PDQM_ERR_INVALID);
    /* A NUL inside a string. */
    memcpy(lie, buf, len);
    lie[PDQM_LOG_HEADER_BYTES + 1 + 1 + 4 + 1 + 1 + 1] = '\0';   /* bank "list" */
    assert_int_equal(pdqm_log_decode(lie, len, &d, &err), PDQM_ERR_INVALID);
    assert_non_null(strstr(err.message, "NUL"));
    free(lie);
    free(buf);
    /* The empty entry is an entry (of no ops). */
    assert_ok(pdqm_log_encode(NULL, 0, &buf, &len, &err));
    assert_ok(pdqm_log_decode(buf, len, &d, &err));
    assert_int_equal(d.n_ops, 0);
    pdqm_log_ops_free(&d);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_round_trip),
        cmocka_unit_test(test_log_version_2),
        cmocka_unit_test(test_log_version_3),
        cmocka_unit_test(test_log_short_forms),
        cmocka_unit_test(test_log_encode_refuses),
        cmocka_unit_test(test_log_truncated_entries),
        cmocka_unit_test(test_log_flipped_bits),
        cmocka_unit_test(test_log_lies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
