/*
 * test_pdq.c - the PDQ core against the spec's hand-checkable examples, the
 * reference's DCT matrix bits and float dumps, and every reference vector.
 *
 * Reference data (tests/data/pdq, from Meta's pdq-photo-hasher; see its
 * README): public and synthetic images with their hashes, dihedral hashes,
 * 64x64 and 16x16 float intermediates and the DCT matrix.
 */
#include "testutil.h"

#include <dirent.h>
#include <math.h>

#include "../../hashing/image.h"
#include "../../hashing/media.h"
#include "../../hashing/pdq.h"
#include "../../hashing/pdq_int.h"

/* ------------------------------------------------------------------ */
/* Stages                                                               */

static void test_box_filter_examples(void **state)
{
    (void)state;
    /* spec/PDQ.md section 4: input 0,10,...,90. */
    static const struct { int window; float out[10]; } cases[] = {
        { 1, { 0, 10, 20, 30, 40, 50, 60, 70, 80, 90 } },
        { 2, { 5, 15, 25, 35, 45, 55, 65, 75, 85, 90 } },
        { 3, { 5, 10, 20, 30, 40, 50, 60, 70, 80, 85 } },
        { 4, { 10, 15, 25, 35, 45, 55, 65, 75, 80, 85 } },
        { 5, { 10, 15, 20, 30, 40, 50, 60, 70, 75, 80 } },
        { 8, { 20, 25, 30, 35, 45, 55, 60, 65, 70, 75 } },
    };
    float in[10], out[10];
    for (int i = 0; i < 10; i++)
        in[i] = 10.0f * i;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pdqm_pdq_box1d(in, out, 10, cases[c].window);
        for (int i = 0; i < 10; i++)
            if (out[i] != cases[c].out[i])
                fail_msg("window %d, output %d: %g, expected %g",
                         cases[c].window, i, out[i], cases[c].out[i]);
    }
}

static void test_box_filter_keeps_running_sum(void **state)
{
    (void)state;
    /* With window 1 the reference still walks one running sum:
     * output 1 is (x0 + x1) - x0, not x1, for fractional values. */
    float in[3] = { 0.1f, 1e8f, 0.3f }, out[3];
    pdqm_pdq_box1d(in, out, 3, 1);
    float s = 0.0f;
    s += in[0];
    float expect0 = s;
    s += in[1];
    s -= in[0];
    float expect1 = s;
    assert_true(out[0] == expect0);
    assert_true(out[1] == expect1);
}

static void test_window_sizes(void **state)
{
    (void)state;
    assert_int_equal(pdqm_pdq_window(5), 1);
    assert_int_equal(pdqm_pdq_window(128), 1);
    assert_int_equal(pdqm_pdq_window(129), 2);
    assert_int_equal(pdqm_pdq_window(256), 2);
    assert_int_equal(pdqm_pdq_window(384), 3);
    assert_int_equal(pdqm_pdq_window(399), 4);
    assert_int_equal(pdqm_pdq_window(512), 4);
}

static void test_preshrink_indices(void **state)
{
    (void)state;
    int w, h;
    pdqm_pdq_preshrink_dims(512, 512, &w, &h);
    assert_true(w == 512 && h == 512);
    pdqm_pdq_preshrink_dims(513, 100, &w, &h);     /* strict '>': both sides go to 512 */
    assert_true(w == 512 && h == 512);
    pdqm_pdq_preshrink_dims(1000, 3, &w, &h);
    assert_true(w == 512 && h == 512);
    pdqm_pdq_preshrink_dims(320, 240, &w, &h);
    assert_true(w == 320 && h == 240);
    /* floor(x * W / 512) */
    assert_int_equal(pdqm_pdq_preshrink_source(3000, 1), 5);
    assert_int_equal(pdqm_pdq_preshrink_source(3000, 511), 2994);
    assert_int_equal(pdqm_pdq_preshrink_source(513, 511), 511);
    assert_int_equal(pdqm_pdq_preshrink_source(100, 511), 99);
    assert_int_equal(pdqm_pdq_preshrink_source(3, 170), 0);
    assert_int_equal(pdqm_pdq_preshrink_source(3, 171), 1);
}

static void test_dct_matrix_bits(void **state)
{
    (void)state;
    const float *d = pdqm_pdq_dct_matrix();
    FILE *f = fopen(data_path("pdq/dct-matrix-16x64-float32.tsv"), "r");
    assert_non_null(f);
    char line[512];
    char *fields[4];
    int checked = 0;
    int n;
    while ((n = tsv_next(f, line, sizeof line, fields, 4)) >= 0) {
        if (n < 3 || line[0] == '#' || strcmp(fields[0], "i") == 0)
            continue;
        int i = atoi(fields[0]), j = atoi(fields[1]);
        uint32_t want = (uint32_t)strtoul(fields[2], NULL, 16), got;
        memcpy(&got, &d[i * 64 + j], 4);
        if (got != want)
            fail_msg("D[%d][%d] = %08x, reference %08x", i, j, got, want);
        checked++;
    }
    fclose(f);
    assert_int_equal(checked, 16 * 64);
}

/* ------------------------------------------------------------------ */
/* Reference vectors                                                    */

static pdqm_image_hash hash_file(const char *rel, unsigned flags)
{
    pdqm_image_hash r;
    pdqm_error err;
    pdqm_status st = pdqm_hash_image_file(data_path(rel), NULL, flags, &r, &err);
    if (st != PDQM_OK)
        fail_msg("%s: %s", rel, pdqm_error_message(&err));
    return r;
}

static int distance_to_hex(const pdqm_hash256 *h, const char *hex)
{
    pdqm_hash256 ref;
    pdqm_error err;
    if (pdqm_hash256_from_hex(hex, strlen(hex), &ref, &err) != PDQM_OK)
        fail_msg("bad hash '%s' in the data: %s", hex, err.message);
    return pdqm_hash256_distance(h, &ref);
}

/* A reference row: file, 1 or 8 hashes, quality. */
typedef struct vector {
    char file[256];
    char hash[PDQM_DIHEDRAL_COUNT][PDQM_HASH_HEX_LEN + 1];
    int quality;
} vector;

#define MAX_VECTORS 128

/* Load a TSV of `nhash` hash columns after relpath (then quality) into v;
 * prefix goes before each relpath.  Returns the row count. */
static int load_vectors(const char *tsv, const char *prefix, int nhash, vector *v)
{
    FILE *f = tsv_open(tsv);
    char line[4096];
    char *fields[16];
    int n, count = 0;
    while ((n = tsv_next(f, line, sizeof line, fields, 16)) >= 0) {
        if (n < nhash + 2)
            continue;
        assert_true(count < MAX_VECTORS);
        snprintf(v[count].file, sizeof v[count].file, "%s%s", prefix, fields[0]);
        for (int k = 0; k < nhash; k++)
            snprintf(v[count].hash[k], sizeof v[count].hash[k], "%s", fields[1 + k]);
        v[count].quality = atoi(fields[1 + nhash]);
        count++;
    }
    fclose(f);
    return count;
}

/*
 * Where pdqmatch differs from the reference on purpose.  Every other vector
 * must match bit for bit, quality included.
 *   same_as: our hashes equal the reference's for this other file instead;
 *   distances: measured distance of our hashes from the reference's
 *              (orig, rot90, ..., flipminus1);
 *   quality: our quality (-1: the reference's).
 * CMYK.jpg is not here: decoding CMYK as ImageMagick does gives 0 bits.
 */
static const struct exception {
    const char *file;
    const char *why;
    const char *same_as;
    int distances[PDQM_DIHEDRAL_COUNT];
    int quality;
} exceptions[] = {
    { "pdq/synthetic/anim-2frames-100x80.gif",
      "reference bug: ImageMagick pads the grey first frame to 3 channels "
      "with zeros, so its luma is 0.299v and the quality drops to 14",
      NULL, { 0, 0, 0, 0, 0, 0, 0, 0 }, 100 },
    { "pdq/synthetic/blob-gray16-lowbyte-320x240.png",
      "reference bug: it keeps the low byte of 16-bit samples; pdqmatch "
      "keeps the high byte, which is the blob image",
      "pdq/synthetic/blob-gray-320x240.png",
      { 156, 158, 152, 118, 118, 158, 156, 152 }, -1 },
};

static const struct exception *exception_for(const char *file)
{
    for (size_t i = 0; i < sizeof exceptions / sizeof exceptions[0]; i++)
        if (strcmp(exceptions[i].file, file) == 0)
            return &exceptions[i];
    return NULL;
}

static const vector *find_vector(const vector *v, int n, const char *file)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].file, file) == 0)
            return &v[i];
    fail_msg("no reference row for %s", file);
    return NULL;
}

static void check_vectors(const char *tsv, const char *prefix, int dihedral,
                          int expect_rows)
{
    static vector v[MAX_VECTORS];
    const int nhash = dihedral ? PDQM_DIHEDRAL_COUNT : 1;
    int n = load_vectors(tsv, prefix, nhash, v);
    assert_int_equal(n, expect_rows);
    int exceptions_seen = 0;
    for (int i = 0; i < n; i++) {
        pdqm_image_hash r = hash_file(v[i].file, dihedral ? PDQM_MEDIA_DIHEDRAL : 0);
        const pdqm_hash256 *ours = dihedral ? r.pdq.dihedral : &r.pdq.hash;
        const struct exception *x = exception_for(v[i].file);
        if (x != NULL)
            exceptions_seen++;
        for (int k = 0; k < nhash; k++) {
            int d = distance_to_hex(&ours[k], v[i].hash[k]);
            int want = x ? x->distances[k] : 0;
            if (d != want)
                fail_msg("%s %s: %d bits from the reference, expected %d",
                         v[i].file, pdqm_dihedral_name((pdqm_dihedral)k), d, want);
            if (x && x->same_as) {
                const vector *other = find_vector(v, n, x->same_as);
                assert_int_equal(distance_to_hex(&ours[k], other->hash[k]), 0);
            }
        }
        int want_quality = (x && x->quality >= 0) ? x->quality : v[i].quality;
        if (r.pdq.quality != want_quality)
            fail_msg("%s: quality %d, expected %d (reference %d)", v[i].file,
                     r.pdq.quality, want_quality, v[i].quality);
    }
    if (strstr(tsv, "synthetic"))
        assert_int_equal(exceptions_seen, 2);
    else
        assert_int_equal(exceptions_seen, 0);
}

static void test_public_vectors(void **state)
{
    (void)state;
    check_vectors("pdq/public-pdq.tsv", "pdq/images/", 0, 49);
}

static void test_public_dihedral_vectors(void **state)
{
    (void)state;
    check_vectors("pdq/public-pdq-dihedral.tsv", "pdq/images/", 1, 49);
}

static void test_synthetic_vectors(void **state)
{
    (void)state;
    check_vectors("pdq/synthetic-pdq.tsv", "pdq/", 0, 39);
}

static void test_synthetic_dihedral_vectors(void **state)
{
    (void)state;
    check_vectors("pdq/synthetic-pdq-dihedral.tsv", "pdq/", 1, 39);
}

/* ------------------------------------------------------------------ */
/* Float intermediates                                                  */

/* Read n floats printed with %.9g (which round-trips float32). */
static void read_floats(const char *rel, float *out, int n)
{
    FILE *f = fopen(data_path(rel), "r");
    if (f == NULL)
        fail_msg("cannot open %s", rel);
    for (int i = 0; i < n; i++) {
        char word[64];
        if (fscanf(f, "%63s", word) != 1)
            fail_msg("%s: only %d of %d values", rel, i, n);
        out[i] = strtof(word, NULL);
    }
    fclose(f);
}

/* The image an intermediates file was dumped from, and the file whose dump
 * our own intermediates equal (the two exceptions above). */
static void intermediate_source(const char *name, char *image, size_t cap,
                                char *dump, size_t dump_cap)
{
    static const char *const prefixes[] = { "bridge-mods_", "misc-images_", "reg-test-input_" };
    int public_image = 0;
    for (size_t i = 0; i < 3; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            public_image = 1;
    if (public_image) {
        snprintf(image, cap, "pdq/images/%s", name);
        for (char *p = image + strlen("pdq/images/"); *p; p++)
            if (*p == '_')
                *p = '/';
    } else {
        snprintf(image, cap, "pdq/synthetic/%s", name);
    }
    const char *dump_name = name;
    if (strcmp(name, "anim-2frames-100x80.gif") == 0)
        dump_name = "anim-frame0-100x80.png";
    else if (strcmp(name, "blob-gray16-lowbyte-320x240.png") == 0)
        dump_name = "blob-gray-320x240.png";
    snprintf(dump, dump_cap, "pdq/intermediates/%s", dump_name);
}

static void test_intermediates(void **state)
{
    (void)state;
    DIR *dir = opendir(data_path("pdq/intermediates"));
    assert_non_null(dir);
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(dir)) != NULL) {
        const char *suffix = ".luma64.txt";
        size_t len = strlen(e->d_name);
        if (len <= strlen(suffix) || strcmp(e->d_name + len - strlen(suffix), suffix) != 0)
            continue;
        char name[256], image[512], dump[512], rel[600];
        snprintf(name, sizeof name, "%.*s", (int)(len - strlen(suffix)), e->d_name);
        intermediate_source(name, image, sizeof image, dump, sizeof dump);

        size_t n;
        uint8_t *bytes = read_data(image, &n);
        pdqm_image *img;
        pdqm_error err;
        if (pdqm_image_decode(bytes, n, NULL, &img, &err) != PDQM_OK)
            fail_msg("%s: %s", image, pdqm_error_message(&err));
        free(bytes);

        float luma[64 * 64], dct[256], want_luma[64 * 64], want_dct[256];
        assert_int_equal(pdqm_pdq_intermediates(&img->pixels, 0, luma, dct, &err), PDQM_OK);
        pdqm_image_free(img);
        snprintf(rel, sizeof rel, "%s.luma64.txt", dump);
        read_floats(rel, want_luma, 64 * 64);
        snprintf(rel, sizeof rel, "%s.dct16.txt", dump);
        read_floats(rel, want_dct, 256);
        for (int i = 0; i < 64 * 64; i++)
            if (luma[i] != want_luma[i])
                fail_msg("%s: 64x64 buffer [%d][%d] = %.9g, reference %.9g",
                         name, i / 64, i % 64, luma[i], want_luma[i]);
        for (int i = 0; i < 256; i++)
            if (dct[i] != want_dct[i])
                fail_msg("%s: DCT [%d][%d] = %.9g, reference %.9g",
                         name, i / 16, i % 16, dct[i], want_dct[i]);
        checked++;
    }
    closedir(dir);
    assert_int_equal(checked, 40);
}

/* ------------------------------------------------------------------ */
/* Edges of the core API                                                */

static void test_tiny_images_hash_to_zero(void **state)
{
    (void)state;
    uint8_t px[4 * 4 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 37);
    pdqm_pixels p = { px, 4, 4, 3, 12 };
    pdqm_pdq out;
    assert_int_equal(pdqm_pdq_hash(&p, PDQM_PDQ_DIHEDRAL, &out, NULL), PDQM_OK);
    assert_int_equal(pdqm_hash256_weight(&out.hash), 0);
    assert_int_equal(out.quality, 0);
    for (int d = 0; d < PDQM_DIHEDRAL_COUNT; d++)
        assert_int_equal(pdqm_hash256_weight(&out.dihedral[d]), 0);
    /* 1000x3 is hashable: the pre-shrink stretches it to 512x512. */
    static uint8_t strip[1000 * 3];
    for (size_t i = 0; i < sizeof strip; i++)
        strip[i] = (uint8_t)((i * 7919) >> 3);
    pdqm_pixels s = { strip, 1000, 3, 1, 1000 };
    assert_int_equal(pdqm_pdq_hash(&s, 0, &out, NULL), PDQM_OK);
    assert_true(pdqm_hash256_weight(&out.hash) > 0);
    /* ... but not without it. */
    assert_int_equal(pdqm_pdq_hash(&s, PDQM_PDQ_NO_PRESHRINK, &out, NULL), PDQM_OK);
    assert_int_equal(pdqm_hash256_weight(&out.hash), 0);
}

static void test_bad_pixel_views(void **state)
{
    (void)state;
    uint8_t px[64 * 64 * 3] = { 0 };
    pdqm_pdq out;
    pdqm_error err;
    pdqm_pixels p = { px, 64, 64, 2, 128 };
    assert_int_equal(pdqm_pdq_hash(&p, 0, &out, &err), PDQM_ERR_INVALID);
    assert_string_equal(err.message, "PDQ takes 1 or 3 channels, not 2");
    pdqm_pixels q = { px, 64, 64, 3, 100 };
    assert_int_equal(pdqm_pdq_hash(&q, 0, &out, &err), PDQM_ERR_INVALID);
    assert_string_equal(err.message, "row stride 100 is shorter than a row");
    pdqm_pixels r = { NULL, 64, 64, 3, 192 };
    assert_int_equal(pdqm_pdq_hash(&r, 0, &out, &err), PDQM_ERR_INVALID);
    pdqm_pixels s = { px, 0, 64, 3, 192 };
    assert_int_equal(pdqm_pdq_hash(&s, 0, &out, &err), PDQM_ERR_INVALID);
    pdqm_pixels t = { px, 100000, 100000, 1, 100000 };
    assert_int_equal(pdqm_pdq_hash(&t, PDQM_PDQ_NO_PRESHRINK, &out, &err), PDQM_ERR_TOO_LARGE);
}

static void test_no_preshrink_flag(void **state)
{
    (void)state;
    /* At or under 512 the flag changes nothing... */
    pdqm_image_hash a = hash_file("pdq/synthetic/noise-rgb-130x70.png", 0);
    size_t n;
    uint8_t *bytes = read_data("pdq/synthetic/noise-rgb-130x70.png", &n);
    pdqm_image *img;
    assert_int_equal(pdqm_image_decode(bytes, n, NULL, &img, NULL), PDQM_OK);
    pdqm_pdq out;
    assert_int_equal(pdqm_pdq_hash(&img->pixels, PDQM_PDQ_NO_PRESHRINK, &out, NULL), PDQM_OK);
    assert_int_equal(pdqm_hash256_distance(&out.hash, &a.pdq.hash), 0);
    pdqm_image_free(img);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_box_filter_examples),
        cmocka_unit_test(test_box_filter_keeps_running_sum),
        cmocka_unit_test(test_window_sizes),
        cmocka_unit_test(test_preshrink_indices),
        cmocka_unit_test(test_dct_matrix_bits),
        cmocka_unit_test(test_intermediates),
        cmocka_unit_test(test_public_vectors),
        cmocka_unit_test(test_public_dihedral_vectors),
        cmocka_unit_test(test_synthetic_vectors),
        cmocka_unit_test(test_synthetic_dihedral_vectors),
        cmocka_unit_test(test_tiny_images_hash_to_zero),
        cmocka_unit_test(test_bad_pixel_views),
        cmocka_unit_test(test_no_preshrink_flag),
    };
    int failed = cmocka_run_group_tests_name("pdq", tests, NULL, NULL);
    pdqm_image_shutdown();
    return failed;
}
