/*
 * test_auth.c - API key files and the key check: exact matches only, no
 * prefix, no longer key, the role of the key that matched.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <unistd.h>

#include "../../server/auth.h"

static char keyfile[] = "/tmp/pdqm-test-keysXXXXXX";

static pdqm_api_keys load(const char *text)
{
    int fd = mkstemp(keyfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    pdqm_api_keys keys;
    pdqm_error err;
    pdqm_status st = pdqm_api_keys_load(keyfile, &keys, &err);
    unlink(keyfile);
    strcpy(keyfile, "/tmp/pdqm-test-keysXXXXXX");
    assert_int_equal(st, PDQM_OK);
    return keys;
}

static void test_roles_of_keys(void **state)
{
    (void)state;
    pdqm_api_keys keys = load("# comment\n"
                              "reader-0123456789 read alice\n"
                              "\n"
                              "writer-0123456789 write\n"
                              "admin-01234567890 admin ops\n");
    assert_int_equal(keys.count, 3);
    const char *name;
    assert_int_equal(pdqm_api_keys_role(&keys, "reader-0123456789", &name), PDQM_ROLE_READ);
    assert_string_equal(name, "alice");
    assert_int_equal(pdqm_api_keys_role(&keys, "writer-0123456789", &name), PDQM_ROLE_WRITE);
    assert_string_equal(name, "");
    assert_int_equal(pdqm_api_keys_role(&keys, "admin-01234567890", &name), PDQM_ROLE_ADMIN);
    assert_string_equal(name, "ops");
    /* prefixes, extensions, case changes and empty keys are no keys */
    const char *wrong[] = { "reader-012345678", "reader-01234567890", "READER-0123456789",
                            "", "admin-01234567890 " };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        assert_int_equal(pdqm_api_keys_role(&keys, wrong[i], &name), PDQM_ROLE_NONE);
        assert_null(name);
    }
    char longer[400];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(pdqm_api_keys_role(&keys, longer, NULL), PDQM_ROLE_NONE);
    pdqm_api_keys_free(&keys);
    assert_int_equal(keys.count, 0);
}

static void test_a_128_byte_key_is_not_its_129_byte_extension(void **state)
{
    (void)state;
    char text[300], key[PDQM_KEY_MAX + 2];
    memset(key, 'k', PDQM_KEY_MAX);
    key[PDQM_KEY_MAX] = '\0';
    snprintf(text, sizeof text, "%s admin\n", key);
    pdqm_api_keys keys = load(text);
    assert_int_equal(pdqm_api_keys_role(&keys, key, NULL), PDQM_ROLE_ADMIN);
    key[PDQM_KEY_MAX] = 'k';
    key[PDQM_KEY_MAX + 1] = '\0';
    assert_int_equal(pdqm_api_keys_role(&keys, key, NULL), PDQM_ROLE_NONE);
    pdqm_api_keys_free(&keys);
}

static void test_missing_file(void **state)
{
    (void)state;
    pdqm_api_keys keys;
    pdqm_error err;
    assert_int_equal(pdqm_api_keys_load("/nonexistent/keys", &keys, &err), PDQM_ERR_IO);
    assert_string_equal(pdqm_error_message(&err),
                        "cannot read the key file /nonexistent/keys: No such file or directory");
    assert_null(keys.keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_of_keys),
        cmocka_unit_test(test_a_128_byte_key_is_not_its_129_byte_extension),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
