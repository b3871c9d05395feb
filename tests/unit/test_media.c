/*
 * test_media.c - bounded file reads, digests, and bytes-to-hash.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

#include "../../hashing/digest.h"
#include "../../hashing/media.h"

static void test_digests(void **state)
{
    (void)state;
    pdqm_digests d;
    assert_int_equal(pdqm_digest("abc", 3, &d, NULL), PDQM_OK);
    assert_string_equal(d.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_string_equal(d.md5, "900150983cd24fb0d6963f7d28e17f72");
    assert_int_equal(pdqm_digest("", 0, &d, NULL), PDQM_OK);
    assert_string_equal(d.sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
}

static void expect_read_error(const char *path, size_t max, pdqm_status want, const char *message)
{
    uint8_t *buf = (uint8_t *)0x1;
    size_t len = 7;
    pdqm_error err;
    assert_int_equal(pdqm_read_file(path, max, &buf, &len, &err), want);
    assert_null(buf);
    assert_int_equal(len, 0);
    if (strcmp(err.message, message) != 0)
        fail_msg("%s: message '%s', expected '%s'", path, err.message, message);
}

static void test_read_file(void **state)
{
    (void)state;
    uint8_t *buf;
    size_t len;
    const char *tiny = data_path("pdq/synthetic/tiny-5x5.png");
    assert_int_equal(pdqm_read_file(tiny, 96, &buf, &len, NULL), PDQM_OK);
    assert_int_equal(len, 96);
    assert_memory_equal(buf, "\x89PNG", 4);
    free(buf);

    expect_read_error(tiny, 95, PDQM_ERR_TOO_LARGE, "96 bytes is over the limit of 95 bytes");
    expect_read_error(data_path("no-such-file.png"), 100, PDQM_ERR_IO, "No such file or directory");
    expect_read_error(data_path("pdq"), 100, PDQM_ERR_IO, "is a directory");

    /* A pipe has no size up front: the limit applies as it is read. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "0123456789", 10), 10);
    close(fds[1]);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
    expect_read_error(path, 9, PDQM_ERR_TOO_LARGE, "more than the limit of 9 bytes");
    close(fds[0]);

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "0123456789", 10), 10);
    close(fds[1]);
    snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
    assert_int_equal(pdqm_read_file(path, 10, &buf, &len, NULL), PDQM_OK);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "0123456789", 10);
    free(buf);
    close(fds[0]);

    /* An empty file reads as zero bytes. */
    assert_int_equal(pdqm_read_file(data_path("bad/empty.jpg"), 10, &buf, &len, NULL), PDQM_OK);
    assert_int_equal(len, 0);
    free(buf);
}

static void test_hash_image_file(void **state)
{
    (void)state;
    pdqm_image_hash r;
    pdqm_error err;
    const char *rel = "pdq/images/bridge-mods/aaa-orig.jpg";
    assert_int_equal(pdqm_hash_image_file(data_path(rel), NULL,
                                          PDQM_MEDIA_DIGESTS | PDQM_MEDIA_DIHEDRAL, &r, &err), PDQM_OK);
    char hex[65];
    pdqm_hash256_to_hex(&r.pdq.hash, hex);
    assert_string_equal(hex, "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22");
    assert_int_equal(r.pdq.quality, 100);
    assert_int_equal(r.width, 1600);
    assert_int_equal(r.height, 1004);
    assert_string_equal(r.format, "jpeg");
    pdqm_hash256_to_hex(&r.pdq.dihedral[PDQM_DIH_ROT90], hex);
    assert_string_equal(hex, "f0a10efd51c83d429053d48d0fffbc52e34e0e17ada956a9d29685211ea9e58f");

    size_t n;
    uint8_t *bytes = read_data(rel, &n);
    pdqm_digests d;
    pdqm_digest(bytes, n, &d, NULL);
    assert_string_equal(r.digests.sha256, d.sha256);
    assert_string_equal(r.digests.md5, d.md5);

    /* From memory: the same answer. */
    pdqm_image_hash m;
    assert_int_equal(pdqm_hash_image_bytes(bytes, n, NULL, 0, &m, NULL), PDQM_OK);
    assert_int_equal(pdqm_hash256_distance(&m.pdq.hash, &r.pdq.hash), 0);
    free(bytes);

    /* File errors come through unchanged. */
    assert_int_equal(pdqm_hash_image_file(data_path("bad/nothing-here.jpg"), NULL, 0, &r, &err), PDQM_ERR_IO);
    assert_string_equal(err.message, "No such file or directory");
    pdqm_image_limits limits;
    pdqm_image_limits_default(&limits);
    limits.max_bytes = 1000;
    assert_int_equal(pdqm_hash_image_file(data_path(rel), &limits, 0, &r, &err), PDQM_ERR_TOO_LARGE);
    assert_string_equal(err.message, "361182 bytes is over the limit of 1000 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_hash_image_file),
    };
    int failed = cmocka_run_group_tests_name("media", tests, NULL, NULL);
    pdqm_image_shutdown();
    return failed;
}
