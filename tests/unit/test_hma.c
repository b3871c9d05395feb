/*
 * test_hma.c - HMA's formats and rules (core/hma.h): what an HMA client
 * reads and writes must come out as HMA's own Python code writes it.
 *
 * The expected float texts are Python 3.11's format(v, '.3'), the way
 * vPDQ's compact features write a frame's time.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include "../../core/hma.h"

static void test_float3_as_python(void **state)
{
    (void)state;
    static const struct { double v; const char *want; } cases[] = {
        { 0.0, "0.0" },        { 0.5, "0.5" },         { 1.0, "1.0" },
        { 5.0, "5.0" },        { 12.0, "12.0" },       { 12.5, "12.5" },
        { 99.9, "99.9" },      { 99.96, "1e+02" },     { 100.0, "1e+02" },
        { 150.5, "1.5e+02" },  { 123.4, "1.23e+02" },  { 0.001234, "0.00123" },
        { 0.00001, "1e-05" },  { 3.3333333, "3.33" },  { 59.94, "59.9" },
        { 1234.5, "1.23e+03" }, { 0.0416666, "0.0417" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        pdqm_hma_float3(cases[i].v, out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%.17g: got %s, want %s", cases[i].v, out, cases[i].want);
    }
}

static void test_vpdq_signal_round_trip(void **state)
{
    (void)state;
    pdqm_stored_hash f[2];
    memset(f, 0, sizeof f);
    pdqm_hash256_from_hex("f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22", 64,
                          &f[0].hash, NULL);
    f[0].quality = 100;
    f[0].timestamp = 0;
    f[1].hash = f[0].hash;
    f[1].quality = 49;
    f[1].timestamp = 100.5;
    char *text = pdqm_hma_vpdq_text(f, 2);
    assert_string_equal(text,
        "[\"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,100,0.0\", "
        "\"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,49,1e+02\"]");
    pdqm_stored_hash *back;
    size_t n;
    pdqm_error err;
    assert_int_equal(pdqm_hma_vpdq_parse(text, strlen(text), 10, &back, &n, &err), PDQM_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(&back[1].hash, &f[1].hash, 32);
    assert_int_equal(back[1].quality, 49);
    assert_true(back[1].timestamp == 100.0);   /* three digits, as HMA keeps it */
    free(back);
    free(text);
    text = pdqm_hma_vpdq_text(NULL, 0);
    assert_string_equal(text, "[]");
    free(text);
    assert_int_equal(pdqm_hma_vpdq_parse("", 0, 10, &back, &n, &err), PDQM_OK);
    assert_int_equal(n, 0);
    free(back);
}

static void test_vpdq_signal_refusals(void **state)
{
    (void)state;
    const char *hex = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";
    char buf[512];
    static const char *const bad[] = {
        "[\"%s,100\"]", "[\"%s,101,0\"]", "[\"%s,100,-1\"]", "[\"%s,x,0\"]",
        "[\"%s,100,0,1\"]", "[\"%.60s,100,0\"]", "[\"%s,100,nan\"]", "[7]", "{}", "[",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, bad[i], hex);
        pdqm_stored_hash *f = NULL;
        size_t n = 99;
        pdqm_error err;
        assert_int_equal(pdqm_hma_vpdq_parse(buf, strlen(buf), 10, &f, &n, &err),
                         PDQM_ERR_INVALID);
        assert_null(f);
        assert_int_equal(n, 0);
        if (i < 7)
            assert_non_null(strstr(err.message, "invalid VpdqCompactFeature serialization: "));
    }
    /* Python's int() and float() take spaces around a number. */
    snprintf(buf, sizeof buf, "[\"%s, 90 , 1.5 \"]", hex);
    pdqm_stored_hash *f;
    size_t n;
    pdqm_error err;
    assert_int_equal(pdqm_hma_vpdq_parse(buf, strlen(buf), 10, &f, &n, &err), PDQM_OK);
    assert_int_equal(f[0].quality, 90);
    free(f);
    snprintf(buf, sizeof buf, "[\"%s,1,0\", \"%s,1,1\"]", hex, hex);
    assert_int_equal(pdqm_hma_vpdq_parse(buf, strlen(buf), 1, &f, &n, &err), PDQM_ERR_TOO_LARGE);
}

static void test_signals_and_names(void **state)
{
    (void)state;
    pdqm_hash256 h;
    pdqm_error err;
    char md5[33];
    assert_int_equal(pdqm_hma_pdq_parse(
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22", &h, &err), PDQM_OK);
    assert_int_equal(pdqm_hma_pdq_parse(
        "F8F8F0CEE0F4A84F06370A22038F63F0B36E2ED596621E1D33E6B39C4E9C9B22", &h, &err),
        PDQM_ERR_INVALID);
    assert_string_equal(err.message, "invalid PDQ hash");
    assert_int_equal(pdqm_hma_md5_parse(" D41D8CD98F00B204E9800998ECF8427E\n", md5, &err),
                     PDQM_OK);
    assert_string_equal(md5, "d41d8cd98f00b204e9800998ecf8427e");
    assert_int_equal(pdqm_hma_md5_parse("it's", md5, &err), PDQM_ERR_INVALID);
    assert_string_equal(err.message, "\"it's\" is not a valid MD5 hash");
    assert_int_equal(pdqm_hma_md5_parse("x\ny", md5, &err), PDQM_ERR_INVALID);
    assert_string_equal(err.message, "'x\\ny' is not a valid MD5 hash");

    assert_int_equal(pdqm_hma_bank_name_check("TEST_BANK_2", &err), PDQM_OK);
    assert_int_equal(pdqm_hma_bank_name_check("_X", &err), PDQM_OK);
    static const char *const bad[] = { "", "bad_name", "2BANK", "A-B", "A B", "Ä" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pdqm_hma_bank_name_check(bad[i], &err), PDQM_ERR_INVALID);
        assert_string_equal(err.message, "Bank names must be UPPER_WITH_UNDERSCORE");
    }
    assert_int_equal(pdqm_hma_signal_parse("video_md5"), PDQM_HMA_VIDEO_MD5);
    assert_int_equal(pdqm_hma_signal_parse("tmk"), -1);
    assert_true(pdqm_hma_kind_has(PDQM_CONTENT_HASHES, PDQM_HMA_PDQ));
    assert_false(pdqm_hma_kind_has(PDQM_CONTENT_VIDEO, PDQM_HMA_PDQ));
    assert_true(pdqm_hma_kind_has(PDQM_CONTENT_VIDEO, PDQM_HMA_VPDQ));

    /* disable_until_ts: HMA's magic 1 and 0 are the store's 0 and -1. */
    assert_int_equal(pdqm_hma_disable_from_store(0), 1);
    assert_int_equal(pdqm_hma_disable_from_store(-1), 0);
    assert_int_equal(pdqm_hma_disable_from_store(1800000000), 1800000000);
    assert_int_equal(pdqm_hma_disable_to_store(1), 0);
    assert_int_equal(pdqm_hma_disable_to_store(0), -1);
    assert_int_equal(pdqm_hma_disable_to_store(1800000000), 1800000000);

    char d[32];
    pdqm_hma_vpdq_distance(100, 12.5, d);
    assert_string_equal(d, "100%[12%]");   /* halves to even, as Python's :.0f */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float3_as_python),
        cmocka_unit_test(test_vpdq_signal_round_trip),
        cmocka_unit_test(test_vpdq_signal_refusals),
        cmocka_unit_test(test_signals_and_names),
    };
    return cmocka_run_group_tests_name("hma", tests, NULL, NULL);
}
