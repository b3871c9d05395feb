/*
 * test_bars.c - uniform bars around a picture (hashing/bars.h): pairs of
 * black or grey bars found through encoder-like noise, a flat band at one
 * edge only or a flat frame taken for no bars, a band that runs on into a
 * flat part of the picture cut back to its pair's thickness.
 */
#include "testutil.h"

#include "../../hashing/bars.h"

enum { W = 320, H = 240 };

typedef struct picture {
    uint8_t px[H][W][3];
} picture;

static uint32_t next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Textured content everywhere, then bars of colour c: `rows` at the top
 * and bottom, `cols` at the left and right, each pixel of a bar off its
 * colour by up to +-noise. */
static void paint(picture *p, int rows, int cols, int c, int noise)
{
    uint32_t s = 7;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int bar = y < rows || y >= H - rows || x < cols || x >= W - cols;
            for (int ch = 0; ch < 3; ch++) {
                int v = bar ? c + (noise ? (int)(next(&s) % (2 * noise + 1)) - noise : 0)
                            : (int)(next(&s) % 256);
                p->px[y][x][ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

static pdqm_pixels pixels(picture *p)
{
    return (pdqm_pixels){ &p->px[0][0][0], W, H, 3, W * 3 };
}

static void test_pairs_of_bars(void **state)
{
    (void)state;
    picture *p = malloc(sizeof *p);
    pdqm_rect r;
    pdqm_pixels px = pixels(p);
    paint(p, 30, 0, 0, 0);               /* letterbox, black */
    assert_int_equal(pdqm_find_bars(&px, &r), 1);
    assert_true(r.x == 0 && r.y == 30 && r.width == W && r.height == H - 60);
    paint(p, 0, 40, 128, 3);             /* pillarbox, grey, noisy */
    assert_int_equal(pdqm_find_bars(&px, &r), 1);
    assert_true(r.x == 40 && r.y == 0 && r.width == W - 80 && r.height == H);
    paint(p, 20, 25, 16, 2);             /* both */
    assert_int_equal(pdqm_find_bars(&px, &r), 1);
    assert_true(r.x == 25 && r.y == 20 && r.width == W - 50 && r.height == H - 40);
    free(p);
}

static void test_what_is_no_bar(void **state)
{
    (void)state;
    picture *p = malloc(sizeof *p);
    pdqm_rect r;
    pdqm_pixels px = pixels(p);
    paint(p, 0, 0, 0, 0);                /* no bars */
    assert_int_equal(pdqm_find_bars(&px, &r), 0);
    assert_true(r.x == 0 && r.y == 0 && r.width == W && r.height == H);
    paint(p, 3, 0, 0, 0);                /* thinner than 2 % */
    assert_int_equal(pdqm_find_bars(&px, &r), 0);
    paint(p, 30, 0, 0, 0);               /* a flat band at the top only: a sky */
    memcpy(p->px[H - 30], p->px[H / 2], 30 * sizeof p->px[0]);
    assert_int_equal(pdqm_find_bars(&px, &r), 0);
    paint(p, 30, 0, 0, 20);              /* too noisy for padding: a texture */
    assert_int_equal(pdqm_find_bars(&px, &r), 0);
    memset(p->px, 90, sizeof p->px);     /* a flat frame */
    assert_int_equal(pdqm_find_bars(&px, &r), 0);
    paint(p, 0, 0, 0, 0);                /* bands of two colours */
    for (int y = 0; y < 30; y++) {
        memset(p->px[y], 0, sizeof p->px[y]);
        memset(p->px[H - 1 - y], 200, sizeof p->px[y]);
    }
    assert_int_equal(pdqm_find_bars(&px, &r), 0);
    free(p);
}

static void test_a_band_running_on_is_cut_back(void **state)
{
    (void)state;
    picture *p = malloc(sizeof *p);
    pdqm_rect r;
    pdqm_pixels px = pixels(p);
    paint(p, 24, 0, 0, 0);
    for (int y = 24; y < 60; y++)        /* the picture's top is black too */
        memset(p->px[y], 0, sizeof p->px[y]);
    assert_int_equal(pdqm_find_bars(&px, &r), 1);
    assert_true(r.y == 24 && r.height == H - 48);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs_of_bars),
        cmocka_unit_test(test_what_is_no_bar),
        cmocka_unit_test(test_a_band_running_on_is_cut_back),
    };
    return cmocka_run_group_tests_name("bars", tests, NULL, NULL);
}
