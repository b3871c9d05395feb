/*
 * test_hash256.c - hex text round trips, bit layout, Hamming distance.
 */
#include "testutil.h"

#include "../../hashing/hash256.h"

static const char *known[] = {
    "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "000000002c4b1134000000000000000000000000000000000000000000000001",
};

static pdqm_hash256 parse(const char *hex)
{
    pdqm_hash256 h;
    pdqm_error err;
    assert_int_equal(pdqm_hash256_from_hex(hex, strlen(hex), &h, &err), PDQM_OK);
    return h;
}

static void test_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        pdqm_hash256 h = parse(known[i]);
        char out[PDQM_HASH_HEX_LEN + 1];
        pdqm_hash256_to_hex(&h, out);
        assert_string_equal(out, known[i]);
    }
}

static void test_upper_case_in_lower_case_out(void **state)
{
    (void)state;
    pdqm_hash256 h = parse("D8F8F0CEE0F4A84F0637022A078F67F0B36E2ED596621E1D33E6339C4E9C9B22");
    char out[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&h, out);
    assert_string_equal(out, known[0]);
}

static void test_bit_layout(void **state)
{
    (void)state;
    /* Bit 0 is the lowest bit of the last hex character (coefficient 0,0);
     * bit 255 the highest bit of the first. */
    pdqm_hash256 low = parse("0000000000000000000000000000000000000000000000000000000000000001");
    assert_true(pdqm_hash256_get_bit(&low, 0));
    assert_int_equal(pdqm_hash256_weight(&low), 1);
    pdqm_hash256 high = parse("8000000000000000000000000000000000000000000000000000000000000000");
    assert_true(pdqm_hash256_get_bit(&high, 255));
    assert_int_equal(pdqm_hash256_weight(&high), 1);
    /* Character 16 (0-based) starts the second 64-bit word: bit 191. */
    pdqm_hash256 mid = parse("0000000000000000800000000000000000000000000000000000000000000000");
    assert_true(pdqm_hash256_get_bit(&mid, 191));

    pdqm_hash256 set = {{0, 0, 0, 0}};
    pdqm_hash256_set_bit(&set, 4);
    char out[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&set, out);
    assert_string_equal(out, "0000000000000000000000000000000000000000000000000000000000000010");
}

static void test_distance(void **state)
{
    (void)state;
    pdqm_hash256 zero = parse(known[1]), ones = parse(known[2]), a = parse(known[0]);
    assert_int_equal(pdqm_hash256_distance(&zero, &ones), 256);
    assert_int_equal(pdqm_hash256_distance(&a, &a), 0);
    assert_int_equal(pdqm_hash256_distance(&a, &zero), pdqm_hash256_weight(&a));
    assert_int_equal(pdqm_hash256_weight(&a), 128);
    /* blur-a-lot's rot90 against the original's: 2 bits, measured with the
     * reference's hashes (public-pdq-dihedral.tsv). */
    pdqm_hash256 r1 = parse("f0a10efd51c83d429053d48d0fffbc52e34e0e17ada956a9d29685211ea9e58f");
    pdqm_hash256 r2 = parse("b0a10efd51c83d429053d48d0fffbc52e34e0e17ada956a9d29685211ea9e5af");
    assert_int_equal(pdqm_hash256_distance(&r1, &r2), 2);
}

static void expect_invalid(const char *hex, size_t len, const char *message)
{
    pdqm_hash256 h = parse(known[0]), before = h;
    pdqm_error err;
    assert_int_equal(pdqm_hash256_from_hex(hex, len, &h, &err), PDQM_ERR_INVALID);
    assert_int_equal(err.status, PDQM_ERR_INVALID);
    assert_string_equal(err.message, message);
    assert_memory_equal(&h, &before, sizeof h);   /* untouched on failure */
}

static void test_invalid_hex(void **state)
{
    (void)state;
    expect_invalid(known[0], 63, "a PDQ hash is 64 hex characters, not 63");
    expect_invalid("", 0, "a PDQ hash is 64 hex characters, not 0");
    char long_hex[66];
    snprintf(long_hex, sizeof long_hex, "%s0", known[0]);
    expect_invalid(long_hex, 65, "a PDQ hash is 64 hex characters, not 65");
    expect_invalid("g8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22", 64,
                   "'g' at position 1 of a hash is not a hex digit");
    expect_invalid("d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b2 ", 64,
                   "' ' at position 64 of a hash is not a hex digit");
    char bad[65];
    memcpy(bad, known[0], 65);
    bad[10] = (char)0xff;
    expect_invalid(bad, 64, "byte 0xff at position 11 of a hash is not a hex digit");
    bad[10] = '\0';
    expect_invalid(bad, 64, "byte 0x00 at position 11 of a hash is not a hex digit");
    /* No error buffer: still refused. */
    pdqm_hash256 h;
    assert_int_equal(pdqm_hash256_from_hex("xyz", 3, &h, NULL), PDQM_ERR_INVALID);
}

static void test_error_texts(void **state)
{
    (void)state;
    /* Every status has its own message and token. */
    for (int a = 0; a <= PDQM_LAST_STATUS; a++) {
        assert_true(strlen(pdqm_strerror((pdqm_status)a)) > 0);
        assert_string_not_equal(pdqm_strerror((pdqm_status)a), "unknown error");
        for (int b = 0; b < a; b++)
            assert_string_not_equal(pdqm_status_token((pdqm_status)a),
                                    pdqm_status_token((pdqm_status)b));
    }
    assert_string_equal(pdqm_status_token(PDQM_ERR_TOO_LARGE), "too_large");
    assert_string_equal(pdqm_strerror((pdqm_status)999), "unknown error");

    pdqm_error err;
    pdqm_error_set(&err, PDQM_ERR_IO, "line one\nline two\n");
    assert_string_equal(err.message, "line one line two");
    pdqm_error_clear(&err);
    assert_int_equal(err.status, PDQM_OK);
    assert_string_equal(pdqm_error_message(&err), "success");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_upper_case_in_lower_case_out),
        cmocka_unit_test(test_bit_layout),
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_invalid_hex),
        cmocka_unit_test(test_error_texts),
    };
    return cmocka_run_group_tests_name("hash256", tests, NULL, NULL);
}
