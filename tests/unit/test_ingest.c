/*
 * test_ingest.c - the domain rules of core/: content ids and their
 * escaping, degenerate hashes, frame selection, hash lists into items, the
 * match policy's bank filter, stored JSON spliced in, exact numbers.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <limits.h>

#include "../../hashing/pdq.h"
#include "../../core/ingest.h"
#include "../../core/jsonraw.h"
#include "../../core/jsontext.h"
#include "../../core/match_json.h"
#include "../../core/policy.h"
#include "../../core/transfer.h"

static void test_content_id_rule(void **state)
{
    (void)state;
    pdqm_error err;
    const char *good[] = { "a", "dir/x.jpg", "caf\xc3\xa9", "..x", "x..", "a/..b", "100%" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_int_equal(pdqm_content_id_check(good[i], &err), PDQM_OK);
    char long_id[502];
    memset(long_id, 'a', 501);
    long_id[501] = '\0';
    const char *bad[] = { "", long_id, "new\nline", "tab\t", "del\x7f", "caf\xe9",
                          "\xc0\x80", "\xed\xa0\x80", "..", "a/../b", "a\\..", "../x" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(pdqm_content_id_check(bad[i], &err), PDQM_ERR_INVALID);
    long_id[500] = '\0';
    assert_int_equal(pdqm_content_id_check(long_id, &err), PDQM_OK);
}

static void test_content_id_from_name(void **state)
{
    (void)state;
    struct { const char *name, *id; } cases[] = {
        { "plain.jpg", "plain.jpg" },
        { "caf\xe9.jpg", "caf%E9.jpg" },          /* Latin-1: not UTF-8 */
        { "caf\xc3\xa9.jpg", "caf\xc3\xa9.jpg" },  /* UTF-8 stays */
        { "new\nline", "new%0Aline" },
        { "100%.jpg", "100%25.jpg" },             /* '%' too: reversible */
        { "a%0Ab", "a%250Ab" },
        { "dir/sub/x", "dir/sub/x" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *id;
        assert_int_equal(pdqm_content_id_from_name(cases[i].name, &id, NULL), PDQM_OK);
        assert_string_equal(id, cases[i].id);
        free(id);
    }
    char *id;
    char longname[200];
    memset(longname, '\n', 199);   /* 199 bytes escape to 597: too long */
    longname[199] = '\0';
    assert_int_equal(pdqm_content_id_from_name(longname, &id, NULL), PDQM_ERR_INVALID);
}

static void test_hash_check(void **state)
{
    (void)state;
    pdqm_hash256 zero = { { 0, 0, 0, 0 } }, fifteen = { { 0x7fff, 0, 0, 0 } },
                 sixteen = { { 0xffff, 0, 0, 0 } };
    pdqm_error err;
    assert_int_equal(pdqm_hash_check(&zero, -1, &err), PDQM_ERR_DEGENERATE);
    assert_int_equal(pdqm_hash_check(&fifteen, 100, &err), PDQM_ERR_DEGENERATE);
    assert_int_equal(pdqm_hash_check(&sixteen, -1, &err), PDQM_OK);
    assert_int_equal(pdqm_hash_check(&sixteen, 0, &err), PDQM_ERR_DEGENERATE);
    assert_int_equal(pdqm_hash_check(&sixteen, 1, &err), PDQM_OK);
}

static void test_frames_select(void **state)
{
    (void)state;
    pdqm_hash256 a = { { ~0ull, 0, 0, 0 } }, b = { { ~0ull, 1, 0, 0 } },
                 blank = { { 0, 0, 0, 0 } };
    pdqm_video_frame f[] = {
        { .frame = 0, .timestamp = 0.0, .hash = a, .quality = 90 },
        { .frame = 1, .timestamp = 1.0, .hash = a, .quality = 90 },      /* identical: once */
        { .frame = 2, .timestamp = 2.0, .hash = b, .quality = 40 },      /* low quality */
        { .frame = 3, .timestamp = 3.0, .hash = blank, .quality = 100 }, /* degenerate */
        { .frame = 4, .timestamp = 4.0, .hash = b, .quality = 90 },
    };
    pdqm_stored_hash out[5];
    pdqm_frame_rule rule;
    pdqm_frame_rule_default(&rule);
    assert_int_equal(rule.prune_distance, 31);
    assert_int_equal(rule.max_per_second, 15);
    assert_int_equal(pdqm_frames_select(&rule, f, 5, out), 1);   /* b is 1 bit from a */
    rule.prune_distance = 0;
    assert_int_equal(pdqm_frames_select(&rule, f, 5, out), 2);
    assert_true(out[0].timestamp == 0.0 && out[1].timestamp == 4.0);
    rule.min_quality = 0;
    rule.prune_distance = 1;
    assert_int_equal(pdqm_frames_select(&rule, f, 5, out), 1);
}

/* A second of fast motion keeps no more than the cap; the next, quieter,
 * second keeps what pruning alone keeps. */
static void test_frames_select_caps_a_second(void **state)
{
    (void)state;
    pdqm_video_frame f[35];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 35; i++) {
        pdqm_hash256 h;
        for (int w = 0; w < 4; w++) {      /* far apart: about 128 bits */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            h.w[w] = x;
        }
        f[i] = (pdqm_video_frame){ .frame = (uint32_t)i, .hash = h, .quality = 90,
                                   .timestamp = i < 30 ? i / 30.0 : 1.0 + (i - 30) / 5.0 };
    }
    pdqm_stored_hash out[35];
    pdqm_frame_rule rule;
    pdqm_frame_rule_default(&rule);
    size_t n = pdqm_frames_select(&rule, f, 35, out), first = 0;
    while (first < n && out[first].timestamp < 1.0)
        first++;
    assert_true(first >= 1 && first <= 15);
    assert_int_equal(n - first, 5);
    rule.max_per_second = 0;                        /* no cap: all 35 */
    assert_int_equal(pdqm_frames_select(&rule, f, 35, out), 35);
}

/* A sink that keeps what it is handed. */
typedef struct kept {
    char ids[16][80];
    size_t hashes[16];
    int kinds[16];
    size_t n;
    uint64_t refused_lines[16];
    size_t n_refused;
} kept;

static pdqm_status keep_items(void *arg, const pdqm_add *adds, size_t n, pdqm_error *err)
{
    (void)err;
    kept *k = arg;
    for (size_t i = 0; i < n && k->n < 16; i++, k->n++) {
        snprintf(k->ids[k->n], sizeof k->ids[0], "%s/%s", adds[i].bank, adds[i].content_id);
        k->hashes[k->n] = adds[i].n_hashes;
        k->kinds[k->n] = adds[i].kind;
    }
    return PDQM_OK;
}

static void keep_refused(void *arg, uint64_t line, const pdqm_error *why)
{
    (void)why;
    kept *k = arg;
    if (k->n_refused < 16)
        k->refused_lines[k->n_refused++] = line;
}

static kept ingest(const char *text, const char *bank, pdqm_list_counts *c)
{
    kept k;
    memset(&k, 0, sizeof k);
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    pdqm_list_options o;
    pdqm_list_options_default(&o);
    o.bank = bank;
    o.batch = 2;     /* several batches */
    pdqm_list_sink sink = { &k, keep_items, keep_refused };
    assert_int_equal(pdqm_list_ingest(f, &o, &sink, c, NULL), PDQM_OK);
    fclose(f);
    return k;
}

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

static void test_list_items(void **state)
{
    (void)state;
    pdqm_list_counts c;
    /* Ids anywhere, in order of first rows; bare rows named by hash, a
     * repeated bare hash once; a BOM, CRLF and a quoted line break. */
    kept k = ingest("\xef\xbb\xbfhash,content_id,bank,kind,metadata\r\n"
                    H1 ",vidA,,video,\r\n"
                    H2 ",,,,\"{\"\"a\"\":\n1}\"\r\n"
                    H3 ",vidA,,,\r\n"
                    H2 ",,,,\r\n"
                    H3 ",x,other,,\r\n", "b", &c);
    assert_int_equal(c.rows, 5);
    assert_int_equal(c.duplicates, 1);
    assert_int_equal(c.refused, 0);
    assert_int_equal(k.n, 3);
    assert_string_equal(k.ids[0], "b/" "2222222222222222222222222222222222222222222222222222222222222222");
    assert_string_equal(k.ids[1], "b/vidA");
    assert_int_equal(k.hashes[1], 2);
    assert_int_equal(k.kinds[1], PDQM_CONTENT_VIDEO);
    assert_string_equal(k.ids[2], "other/x");

    /* Bad rows: reported with their line, the rest goes on. */
    k = ingest("hash,content_id,quality,metadata\n"
               H1 ",ok,90,\n"
               "0000000000000000000000000000000000000000000000000000000000000000,z,90,\n"
               H2 ",../up,90,\n"
               H3 ",m,90,{not json}\n"
               H3 ",low,0,\n", "b", &c);
    assert_int_equal(k.n, 1);
    assert_int_equal(c.refused, 4);
    assert_int_equal(c.degenerate, 2);
    assert_int_equal(k.n_refused, 4);
    assert_int_equal(k.refused_lines[0], 3);
    assert_int_equal(k.refused_lines[3], 6);

    /* No bank for a row: refused. */
    k = ingest(H1 "\n", NULL, &c);
    assert_int_equal(c.refused, 1);
    assert_int_equal(k.n, 0);
}

/* The grouping rule both front ends use: one item per (bank, id) wherever
 * its rows stand, hash-named rows deduplicated, items in first-row order. */
static void test_items_group(void **state)
{
    (void)state;
    pdqm_item_row rows[7];
    memset(rows, 0, sizeof rows);
    const char *ids[7] = { "vidA", "vidB", NULL, "vidA", NULL, "vidB", "vidA" };
    const char *banks[7] = { "b", "b", "b", "b", "b", "b", "other" };
    for (int i = 0; i < 7; i++) {
        rows[i].bank = banks[i];
        rows[i].content_id = ids[i];
        rows[i].kind = -1;
        rows[i].hash.hash.w[0] = 0xff00ff00ff00ffull * (uint64_t)(i + 1);
        rows[i].hash.quality = 100;
    }
    rows[4].hash = rows[2].hash;           /* the same bare hash again */
    rows[3].metadata = "{\"x\":1}";
    rows[5].kind = PDQM_CONTENT_VIDEO;
    pdqm_items out;
    pdqm_error err;
    assert_int_equal(pdqm_items_group(rows, 7, &out, &err), PDQM_OK);
    assert_int_equal(out.n_adds, 4);
    assert_int_equal(out.duplicates, 1);
    assert_string_equal(out.adds[0].content_id, "vidA");
    assert_int_equal(out.adds[0].n_hashes, 2);   /* rows 0 and 3, not 6 (other bank) */
    assert_true(out.adds[0].hashes[1].hash.w[0] == rows[3].hash.hash.w[0]);
    assert_string_equal(out.adds[0].metadata, "{\"x\":1}");
    assert_int_equal(out.adds[0].kind, PDQM_CONTENT_HASHES);
    assert_string_equal(out.adds[1].content_id, "vidB");
    assert_int_equal(out.adds[1].n_hashes, 2);
    assert_int_equal(out.adds[1].kind, PDQM_CONTENT_VIDEO);
    char hex[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&rows[2].hash.hash, hex);
    assert_string_equal(out.adds[2].content_id, hex);
    assert_int_equal(out.adds[2].n_hashes, 1);
    assert_string_equal(out.adds[3].bank, "other");
    pdqm_items_free(&out);
}

static void test_policy_bank_filter(void **state)
{
    (void)state;
    const char *none[1] = { NULL };
    const char *empty[1] = { "" };
    assert_int_equal(pdqm_policy_check_banks(NULL, 0, NULL), PDQM_OK);
    assert_int_equal(pdqm_policy_check_banks(none, 0, NULL), PDQM_ERR_INVALID);
    assert_int_equal(pdqm_policy_check_banks(empty, 1, NULL), PDQM_ERR_INVALID);
}

static void test_json_raw(void **state)
{
    (void)state;
    pdqm_json_raw raw;
    pdqm_json_raw_init(&raw);
    json_t *j = json_pack("{s:o,s:o,s:o,s:f}", "m", pdqm_json_raw_value(&raw, "{\"t\":0.1}"),
                          "n", pdqm_json_raw_value(&raw, NULL),
                          "bad", pdqm_json_raw_value(&raw, "{oops"), "x", 0.5);
    char *text = pdqm_json_raw_dumps(j, JSON_COMPACT, &raw);
    assert_string_equal(text, "{\"m\":{\"t\":0.1},\"n\":null,\"bad\":\"{oops\",\"x\":0.5}");
    free(text);
    json_decref(j);
    pdqm_json_raw_clear(&raw);
}

static void test_format_double(void **state)
{
    (void)state;
    double v[] = { 0, 0.5, 0.1, 1700000000.5, 1.7976931348623157e308, 5e-324, 1.0 / 3 };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char buf[32];
        pdqm_format_double(v[i], buf);
        assert_true(strtod(buf, NULL) == v[i]);
    }
    char buf[32];
    pdqm_format_double(0.1, buf);
    assert_string_equal(buf, "0.1");
    pdqm_format_double(1700000000.5, buf);
    assert_string_equal(buf, "1700000000.5");
}

/* Text written by pdqm_jtext reads back, through jansson, as what was
 * written: every escape, every byte that is not UTF-8 as U+FFFD, the
 * extreme integers. */
static void test_json_text(void **state)
{
    (void)state;
    pdqm_jtext t;
    pdqm_jtext_init(&t);
    const char *in = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f caf\xc3\xa9 \xe2\x80\xa8 \xe9 \xc0\x80 "
                     "\xf0\x9f\x98\x80";
    pdqm_jtext_lit(&t, "[");
    pdqm_jtext_string(&t, in);
    pdqm_jtext_lit(&t, ",");
    pdqm_jtext_int(&t, LLONG_MIN);
    pdqm_jtext_lit(&t, ",");
    pdqm_jtext_int(&t, LLONG_MAX);
    pdqm_jtext_lit(&t, ",");
    pdqm_jtext_int(&t, 0);
    pdqm_jtext_lit(&t, ",");
    pdqm_jtext_bool(&t, 1);
    pdqm_jtext_lit(&t, ",");
    pdqm_jtext_string(&t, "");
    pdqm_jtext_lit(&t, "]");
    size_t len;
    char *text = pdqm_jtext_take(&t, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    const char *want = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f caf\xc3\xa9 \xe2\x80\xa8 \xef\xbf\xbd "
                       "\xef\xbf\xbd\xef\xbf\xbd \xf0\x9f\x98\x80";
    assert_string_equal(json_string_value(json_array_get(j, 0)), want);
    assert_true(json_integer_value(json_array_get(j, 1)) == LLONG_MIN);
    assert_true(json_integer_value(json_array_get(j, 2)) == LLONG_MAX);
    assert_true(json_integer_value(json_array_get(j, 3)) == 0);
    assert_true(json_is_true(json_array_get(j, 4)));
    assert_string_equal(json_string_value(json_array_get(j, 5)), "");
    json_decref(j);
    free(text);

    /* Grown past its first block, a text stays whole. */
    pdqm_jtext_init(&t);
    pdqm_jtext_lit(&t, "[");
    for (int i = 0; i < 10000; i++) {
        if (i)
            pdqm_jtext_lit(&t, ",");
        pdqm_jtext_int(&t, i);
    }
    pdqm_jtext_lit(&t, "]");
    text = pdqm_jtext_take(&t, NULL);
    j = json_loads(text, 0, &je);
    assert_int_equal(json_array_size(j), 10000);
    assert_int_equal(json_integer_value(json_array_get(j, 9999)), 9999);
    json_decref(j);
    free(text);
}

/* An answer as text: the fields in their order, stored metadata as it
 * was given (its numbers unrounded), text that is not JSON as a string. */
static void test_answer_text(void **state)
{
    (void)state;
    pdqm_match m = { .distance = 3, .quality = 90, .bank = "b\"1", .bank_kind = PDQM_BANK_ALLOW,
                     .content_id = "caf\xc3\xa9/\"x\"",
                     .metadata = "{\"n\": 9007199254740993, \"f\": 0.10000000000000000001}" };
    memset(m.hash.w, 0xab, sizeof m.hash.w);
    pdqm_answer a[2] = { { &m, 5, 1 }, { &m, 0, 0 } };
    pdqm_query_result q = { a, 2, NULL, 0 };
    pdqm_jtext t;
    pdqm_jtext_init(&t);
    pdqm_query_result_text(&t, "label\xff", &q, 1);
    char *text = pdqm_jtext_take(&t, NULL);
    const char *want =
        "{\"query\":\"label\xef\xbf\xbd\",\"matches\":[{\"hash\":\""
        "abababababababababababababababababababababababababababababababab\",\"distance\":3,"
        "\"bank\":\"b\\\"1\",\"bank_kind\":\"allow\",\"content_id\":\"caf\xc3\xa9/\\\"x\\\"\","
        "\"quality\":90,\"metadata\":{\"n\": 9007199254740993, "
        "\"f\": 0.10000000000000000001},\"suppressed\":true,\"orientation\":\"%s\"},";
    char expect[1024];
    snprintf(expect, sizeof expect, want, pdqm_dihedral_name((pdqm_dihedral)5));
    assert_memory_equal(text, expect, strlen(expect));
    free(text);

    m.metadata = "not json {";
    a[0].suppressed = 0;
    q.count = 1;
    q.not_matched = "why";
    pdqm_jtext_init(&t);
    pdqm_query_result_text(&t, "x", &q, 0);
    text = pdqm_jtext_take(&t, NULL);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    json_t *x = json_array_get(json_object_get(j, "matches"), 0);
    assert_string_equal(json_string_value(json_object_get(x, "metadata")), "not json {");
    assert_null(json_object_get(x, "orientation"));
    assert_string_equal(json_string_value(json_object_get(j, "not_matched")), "why");
    json_decref(j);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_id_rule),
        cmocka_unit_test(test_content_id_from_name),
        cmocka_unit_test(test_hash_check),
        cmocka_unit_test(test_frames_select),
        cmocka_unit_test(test_frames_select_caps_a_second),
        cmocka_unit_test(test_list_items),
        cmocka_unit_test(test_items_group),
        cmocka_unit_test(test_policy_bank_filter),
        cmocka_unit_test(test_json_raw),
        cmocka_unit_test(test_json_text),
        cmocka_unit_test(test_answer_text),
        cmocka_unit_test(test_format_double),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
