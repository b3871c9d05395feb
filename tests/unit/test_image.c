/*
 * test_image.c - libvips decoding: formats, the reference's pixel
 * conventions, limits, and hostile bytes.
 */
#include "testutil.h"

#include "../../hashing/image.h"
#include "../../hashing/clock.h"
#include "../../hashing/image_int.h"

#include <dirent.h>
#include <strings.h>
#include <sys/stat.h>

#include <vips/vips.h>

static pdqm_image *decode_rel(const char *rel)
{
    size_t n;
    uint8_t *bytes = read_data(rel, &n);
    pdqm_image *img = NULL;
    pdqm_error err;
    pdqm_status st = pdqm_image_decode(bytes, n, NULL, &img, &err);
    free(bytes);
    if (st != PDQM_OK)
        fail_msg("%s: %s", rel, pdqm_error_message(&err));
    return img;
}

static void expect_failure(const void *bytes, size_t n, const pdqm_image_limits *limits,
                           pdqm_status want, const char *message)
{
    pdqm_image *img = (pdqm_image *)0x1;
    pdqm_error err;
    assert_int_equal(pdqm_image_decode(bytes, n, limits, &img, &err), want);
    assert_null(img);
    assert_int_equal(err.status, want);
    if (strcmp(err.message, message) != 0)
        fail_msg("message '%s', expected '%s'", err.message, message);
}

static void expect_failure_rel(const char *rel, pdqm_status want, const char *message)
{
    size_t n;
    uint8_t *bytes = read_data(rel, &n);
    expect_failure(bytes, n, NULL, want, message);
    free(bytes);
}

static void test_formats(void **state)
{
    (void)state;
    static const struct { const char *file, *format; int w, h, channels; } cases[] = {
        { "pdq/images/bridge-mods/square-512x512.jpg", "jpeg", 512, 512, 3 },
        { "pdq/images/misc-images/modes/RGBA.png", "png", 1600, 1004, 3 },
        { "pdq/synthetic/static-100x80.gif", "gif", 100, 80, 1 },
        { "pdq/images/misc-images/modes/PA.webp", "webp", 1600, 1004, 3 },
        { "pdq/synthetic/blob-rgb-320x240.ppm", "ppm", 320, 240, 3 },
        { "pdq/synthetic/gray120-64x64.pgm", "ppm", 64, 64, 1 },
        { "pdq/images/misc-images/modes/CMYK.jpg", "jpeg", 1600, 1004, 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pdqm_image *img = decode_rel(cases[i].file);
        assert_string_equal(img->format, cases[i].format);
        assert_int_equal(img->width, cases[i].w);
        assert_int_equal(img->height, cases[i].h);
        assert_int_equal(img->pixels.channels, cases[i].channels);
        /* Over 512 on a side: handed over pre-shrunk to 512x512. */
        int big = cases[i].w > 512 || cases[i].h > 512;
        assert_int_equal(img->pixels.width, big ? 512 : cases[i].w);
        assert_int_equal(img->pixels.height, big ? 512 : cases[i].h);
        pdqm_image_free(img);
    }
}

static int same_pixels(const pdqm_image *a, const pdqm_image *b)
{
    if (a->pixels.width != b->pixels.width || a->pixels.height != b->pixels.height ||
        a->pixels.channels != b->pixels.channels)
        return 0;
    for (int y = 0; y < a->pixels.height; y++)
        if (memcmp(a->pixels.data + y * a->pixels.stride, b->pixels.data + y * b->pixels.stride,
                   (size_t)a->pixels.width * a->pixels.channels) != 0)
            return 0;
    return 1;
}

static void expect_same_pixels(const char *a_rel, const char *b_rel)
{
    pdqm_image *a = decode_rel(a_rel), *b = decode_rel(b_rel);
    if (!same_pixels(a, b))
        fail_msg("%s and %s decode to different pixels", a_rel, b_rel);
    pdqm_image_free(a);
    pdqm_image_free(b);
}

static void test_pixel_conventions(void **state)
{
    (void)state;
    /* An RGB file whose pixels are all grey is hashed as one channel. */
    expect_same_pixels("pdq/synthetic/blob-gray-as-rgb-320x240.png", "pdq/synthetic/blob-gray-320x240.png");
    /* ... but a binary PPM keeps its channels, as the reference reads it itself. */
    pdqm_image *ppm = decode_rel("pdq/synthetic/gray120-as-rgb-64x64.ppm");
    assert_int_equal(ppm->pixels.channels, 3);
    pdqm_image_free(ppm);
    /* Alpha is dropped, not composited. */
    expect_same_pixels("pdq/synthetic/blob-rgba-semitransparent-320x240.png",
                       "pdq/synthetic/blob-rgb-same-planes-320x240.png");
    /* EXIF orientation is not applied. */
    expect_same_pixels("pdq/synthetic/exif-orient6-320x240.jpg", "pdq/synthetic/exif-orient1-320x240.jpg");
    /* 16-bit samples keep their high byte. */
    expect_same_pixels("pdq/synthetic/blob-gray16-lowbyte-320x240.png", "pdq/synthetic/blob-gray-320x240.png");
    expect_same_pixels("pdq/synthetic/blob-gray16-320x240.png", "pdq/synthetic/blob-gray-320x240.png");
    /* A GIF gives its first frame. */
    expect_same_pixels("pdq/synthetic/anim-2frames-100x80.gif", "pdq/synthetic/anim-frame0-100x80.png");
}

static void test_bad_bytes(void **state)
{
    (void)state;
    const char *formats = "not an image format pdqmatch reads (JPEG, PNG, GIF, WebP, TIFF, PPM/PGM, HEIF/AVIF)";
    expect_failure("", 0, NULL, PDQM_ERR_INVALID, "empty file (0 bytes)");
    expect_failure_rel("bad/text.jpg", PDQM_ERR_UNSUPPORTED, formats);
    expect_failure_rel("bad/image.svg", PDQM_ERR_UNSUPPORTED, formats);
    expect_failure_rel("bad/truncated.jpg", PDQM_ERR_DECODE,
                       "corrupt or truncated jpeg data (VipsJpeg: Premature end of input file)");
    expect_failure_rel("bad/truncated.png", PDQM_ERR_DECODE,
                       "corrupt or truncated png data (vipspng: libpng read error)");
    expect_failure_rel("bad/huge-header.png", PDQM_ERR_TOO_LARGE,
                       "100000x100000 is 10000000000 pixels, over the limit of 250000000 pixels");
    /* Magic bytes alone are not an image. */
    static const uint8_t jpeg_magic[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F' };
    pdqm_image *img = NULL;
    pdqm_error err;
    assert_int_equal(pdqm_image_decode(jpeg_magic, sizeof jpeg_magic, NULL, &img, &err), PDQM_ERR_DECODE);
    assert_null(img);
}

static void test_limits(void **state)
{
    (void)state;
    size_t n;
    uint8_t *bytes = read_data("pdq/synthetic/tiny-5x5.png", &n);
    pdqm_image_limits limits;
    pdqm_image_limits_default(&limits);
    assert_true(limits.max_pixels == 250000000);
    limits.max_pixels = 24;
    expect_failure(bytes, n, &limits, PDQM_ERR_TOO_LARGE,
                   "5x5 is 25 pixels, over the limit of 24 pixels");
    limits.max_pixels = 25;
    pdqm_image *img;
    assert_int_equal(pdqm_image_decode(bytes, n, &limits, &img, NULL), PDQM_OK);
    pdqm_image_free(img);
    limits.max_bytes = n - 1;
    char message[128];
    snprintf(message, sizeof message, "%zu bytes is over the limit of %zu bytes", n, n - 1);
    expect_failure(bytes, n, &limits, PDQM_ERR_TOO_LARGE, message);
    free(bytes);

    /* Decoding time: 60 s by default; past the limit, the next strip of
     * rows is not read. */
    pdqm_image_limits_default(&limits);
    assert_true(limits.max_seconds == 60.0);
    limits.max_seconds = 0;
    bytes = read_data("pdq/images/bridge-mods/square-128x128.jpg", &n);
    expect_failure(bytes, n, &limits, PDQM_ERR_TOO_LARGE, "decoding took over 0 seconds");
    free(bytes);
}

/* PNM whose pixel data is short: libvips' ASCII and 1-bit readers would
 * read zeros for what is missing (slowly, for a tall image), so the
 * decoder counts what is there first. */
static void test_truncated_pnm(void **state)
{
    (void)state;
    static const struct { const char *file, *message; } cases[] = {
        { "P1\n1 100000\n0 1 1",
          "truncated ppm data: 1x100000 needs 100000 samples of pixel data, the file has 3" },
        { "P2\n1 100000\n255\n0 255\n",
          "truncated ppm data: 1x100000 needs 100000 samples of pixel data, the file has 2" },
        { "P3\n2 2\n255\n1 2 3 4 5 6 7 8 9 10 11",
          "truncated ppm data: 2x2 needs 12 samples of pixel data, the file has 11" },
        { "P4\n1 2287334\n\xff\x0c",   /* what the image fuzzer found */
          "truncated ppm data: 1x2287334 needs 2287334 bytes of pixel data, the file has 2" },
        { "P4\n# a comment\n16 2\n\x01\x02\x03",
          "truncated ppm data: 16x2 needs 4 bytes of pixel data, the file has 3" },
        { "P5\n3 3\n255\nabcdefgh",
          "truncated ppm data: 3x3 needs 9 bytes of pixel data, the file has 8" },
        { "P6\n2 1\n65535\n0123456789a",
          "truncated ppm data: 2x1 needs 12 bytes of pixel data, the file has 11" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_failure(cases[i].file, strlen(cases[i].file), NULL, PDQM_ERR_DECODE,
                       cases[i].message);
    /* Whole files decode, ASCII bits with or without blanks. */
    static const char *const whole[] = {
        "P1\n3 2\n0 1 0\n1 0 1\n", "P1\n3 2\n010101", "P2\n2 2\n255\n0 64 128 255",
        "P4\n16 2\n\x01\x02\x03\x04", "P5\n3 3\n255\nabcdefghi",
        "P6 # comment\n2 1\n65535\n0123456789ab",
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        pdqm_image *img = NULL;
        pdqm_error err;
        if (pdqm_image_decode(whole[i], strlen(whole[i]), NULL, &img, &err) != PDQM_OK)
            fail_msg("'%s': %s", whole[i], pdqm_error_message(&err));
        pdqm_image_free(img);
    }
    /* Binary PNM has no trailer: every cut is an error. */
    const char *p5 = "P5\n3 3\n255\nabcdefghi";
    for (size_t len = 1; len < strlen(p5); len++) {
        pdqm_image *img = NULL;
        if (pdqm_image_decode(p5, len, NULL, &img, NULL) == PDQM_OK)
            fail_msg("P5 cut to %zu bytes decoded", len);
    }
}

static void test_every_prefix_of_a_file_fails_cleanly(void **state)
{
    (void)state;
    /* Truncation anywhere is an error, or a success with every pixel of
     * the whole file (when only trailing bytes were cut): never a crash,
     * never a half-decoded image. */
    static const char *const files[] = {
        "pdq/images/bridge-mods/square-128x128.jpg",
        "pdq/synthetic/tiny-5x5.png",
        "pdq/synthetic/static-100x80.gif",
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *bytes = read_data(files[f], &n);
        pdqm_image *whole = decode_rel(files[f]);
        size_t step = n / 97 + 1;
        int failures = 0, tries = 0;
        for (size_t len = 1; len < n; len += step, tries++) {
            pdqm_image *img = NULL;
            pdqm_error err;
            pdqm_status st = pdqm_image_decode(bytes, len, NULL, &img, &err);
            if (st == PDQM_OK) {
                if (!same_pixels(img, whole))
                    fail_msg("%s cut to %zu bytes decoded to other pixels", files[f], len);
                pdqm_image_free(img);
            } else {
                assert_null(img);
                failures++;
            }
        }
        /* Only a cut into the trailer (PNG's IEND) may still decode. */
        assert_true(failures * 10 >= tries * 8);
        pdqm_image_free(whole);
        free(bytes);
    }
}

/* Encode a test image into another format with libvips itself, then check
 * our decoder gives back the same pixels (lossless) or at least an image of
 * the same size (lossy). */
static void round_trip(const char *saver_suffix, int lossless)
{
    const char *rel = "pdq/synthetic/noise-rgb-130x70.png";
    pdqm_image *src = decode_rel(rel);   /* also starts libvips */
    VipsImage *in = vips_image_new_from_memory(src->pixels.data,
        src->pixels.stride * src->pixels.height, src->pixels.width,
        src->pixels.height, src->pixels.channels, VIPS_FORMAT_UCHAR);
    assert_non_null(in);
    void *buf = NULL;
    size_t len = 0;
    int failed = vips_image_write_to_buffer(in, saver_suffix, &buf, &len, NULL);
    g_object_unref(in);
    pdqm_image_free(src);
    if (failed) {
        /* libvips built without this encoder: nothing to decode. */
        vips_error_clear();
        print_message("skipping %s: this libvips cannot write it\n", saver_suffix);
        return;
    }
    pdqm_image *img = NULL;
    pdqm_error err;
    pdqm_status st = pdqm_image_decode(buf, len, NULL, &img, &err);
    g_free(buf);
    if (st != PDQM_OK)
        fail_msg("%s: %s", saver_suffix, pdqm_error_message(&err));
    assert_int_equal(img->width, 130);
    assert_int_equal(img->height, 70);
    if (lossless) {
        pdqm_image *want = decode_rel(rel);
        if (!same_pixels(img, want))
            fail_msg("%s round trip changed the pixels", saver_suffix);
        pdqm_image_free(want);
    }
    pdqm_image_free(img);
}

static void test_more_formats(void **state)
{
    (void)state;
    round_trip(".tif", 1);
    round_trip(".tif[compression=deflate]", 1);
    round_trip(".webp[lossless]", 1);
    round_trip(".ppm", 1);
    round_trip(".png[bitdepth=8,palette=0]", 1);
    round_trip(".jpg", 0);
    round_trip(".avif", 0);
    round_trip(".heic", 0);
}

/* Every JPEG under tests/data: libjpeg's path (pdqm_image_decode) and
 * libvips' give the same outcome, and the same pixels when they decode.
 * Cut copies of a few too, where libjpeg warns and hands over. */
static int jpeg_paths_agree(const char *name, const uint8_t *bytes, size_t n)
{
    if (n == 0)
        return 0;   /* refused before either decoder sees it */
    pdqm_image *fast = NULL, *slow = NULL;
    pdqm_error e1, e2;
    pdqm_image_limits limits;
    pdqm_image_limits_default(&limits);
    pdqm_status s1 = pdqm_image_decode(bytes, n, &limits, &fast, &e1);
    pdqm_status s2 = pdqm_image_decode_vips(bytes, n, &limits, pdqm_monotonic_seconds(), &slow,
                                            &e2);
    if (s1 != s2)
        fail_msg("%s: %s by libjpeg, %s by libvips", name, pdqm_strerror(s1), pdqm_strerror(s2));
    if (s1 == PDQM_OK) {
        if (!same_pixels(fast, slow) || fast->width != slow->width ||
            fast->height != slow->height || strcmp(fast->format, slow->format) != 0)
            fail_msg("%s: libjpeg and libvips give other pixels", name);
    } else if (strcmp(e1.message, e2.message) != 0) {
        fail_msg("%s: '%s' against libvips' '%s'", name, e1.message, e2.message);
    }
    pdqm_image_free(fast);
    pdqm_image_free(slow);
    return s1 == PDQM_OK;
}

static void walk_jpegs(const char *dir, int *decoded)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            walk_jpegs(path, decoded);
            continue;
        }
        const char *dot = strrchr(e->d_name, '.');
        if (dot == NULL || (strcasecmp(dot, ".jpg") != 0 && strcasecmp(dot, ".jpeg") != 0))
            continue;
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        uint8_t *bytes = malloc((size_t)st.st_size + 1);
        assert_non_null(bytes);
        assert_int_equal(fread(bytes, 1, (size_t)st.st_size, f), (size_t)st.st_size);
        fclose(f);
        *decoded += jpeg_paths_agree(path, bytes, (size_t)st.st_size);
        if (st.st_size > 64)
            for (int cut = 1; cut < 4; cut++)
                jpeg_paths_agree(path, bytes, (size_t)st.st_size * (size_t)cut / 4);
        free(bytes);
    }
    closedir(d);
}

static void test_jpeg_without_libvips_gives_libvips_pixels(void **state)
{
    (void)state;
    const char *root = getenv("PDQM_TEST_DATA");
    int decoded = 0;
    walk_jpegs(root ? root : "tests/data", &decoded);
    assert_true(decoded >= 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_more_formats),
        cmocka_unit_test(test_pixel_conventions),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_truncated_pnm),
        cmocka_unit_test(test_every_prefix_of_a_file_fails_cleanly),
        cmocka_unit_test(test_jpeg_without_libvips_gives_libvips_pixels),
    };
    int failed = cmocka_run_group_tests_name("image", tests, NULL, NULL);
    pdqm_image_shutdown();
    return failed;
}
