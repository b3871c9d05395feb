/*
 * test_fetch.c - the rules of fetching by URL (fetch/fetch.h) that need no
 * network: which addresses are never reached, which host lists are taken,
 * and the refusals made before any connection.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "../../fetch/fetch.h"

static int blocked(const char *text)
{
    uint8_t raw[16];
    if (inet_pton(AF_INET, text, raw) == 1)
        return pdqm_fetch_address_blocked(AF_INET, raw);
    if (inet_pton(AF_INET6, text, raw) == 1)
        return pdqm_fetch_address_blocked(AF_INET6, raw);
    fail_msg("not an address: %s", text);
    return -1;
}

static void test_addresses(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "127.0.0.1", "127.255.0.9", "10.0.0.1", "10.255.255.255", "172.16.0.1",
        "172.31.255.255", "192.168.1.1", "169.254.169.254", "169.254.0.1", "100.64.0.1",
        "100.100.100.200", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.1.1.1", "255.255.255.255",
        "240.0.0.1", "192.0.2.1", "198.18.0.1", "::1", "::", "fe80::1", "fc00::1",
        "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "64:ff9b::a00:1", "2002:a00:1::", "2001:db8::1", "fec0::1",
    };
    static const char *const reached[] = {
        "8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
        "169.253.255.255", "192.169.0.1", "2606:4700::1111", "2a00:1450:4001::1",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!blocked(refused[i]))
            fail_msg("%s should be refused", refused[i]);
    for (size_t i = 0; i < sizeof reached / sizeof reached[0]; i++)
        if (blocked(reached[i]))
            fail_msg("%s should be reached", reached[i]);
}

static void test_host_lists_and_early_refusals(void **state)
{
    (void)state;
    pdqm_fetch_options o;
    pdqm_fetch_options_default(&o);
    pdqm_fetcher *f;
    pdqm_error err;
    /* None allowed: fetching is off. */
    assert_int_equal(pdqm_fetcher_new(&o, &f, &err), PDQM_OK);
    assert_false(pdqm_fetcher_enabled(f));
    pdqm_fetched got;
    assert_int_equal(pdqm_fetch(f, "http://example.org/", &got, &err), PDQM_ERR_INVALID);
    pdqm_fetcher_free(f);
    o.allow_hosts = "bad host";
    assert_int_equal(pdqm_fetcher_new(&o, &f, &err), PDQM_ERR_INVALID);
    o.allow_hosts = " Example.ORG , 127.0.0.1,[::1] ,localhost";
    assert_int_equal(pdqm_fetcher_new(&o, &f, &err), PDQM_OK);
    assert_true(pdqm_fetcher_enabled(f));
    static const char *const refused[] = {
        "file:///etc/passwd", "gopher://example.org/", "http://evil.test/",
        "http://example.org.evil.test/", "http://notexample.org/", "http://127.0.0.2/",
        "http://[::2]/", "http://10.0.0.1/", "no scheme at all",
        "http://localhost/",   /* allowed by name, but it resolves to loopback: an
                                  address allowed only by that address itself */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        pdqm_error_clear(&err);
        pdqm_status st = pdqm_fetch(f, refused[i], &got, &err);
        if (st != PDQM_ERR_INVALID)
            fail_msg("%s: %s (%s)", refused[i], pdqm_status_token(st), err.message);
        assert_null(got.data);
    }
    pdqm_fetcher_free(f);
    pdqm_fetcher_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_host_lists_and_early_refusals),
    };
    return cmocka_run_group_tests_name("fetch", tests, NULL, NULL);
}
