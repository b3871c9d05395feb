/*
 * bars.c - uniform bars around a picture (see bars.h).
 */
#include "bars.h"

#include <stdint.h>
#include <stdlib.h>

#define TOLERANCE 6      /* of a channel, from the band's colour: padding
                            stays flat through an encoder (its blocks are
                            uniform), where a wall or a sky varies more */
#define PAIR_TOLERANCE 16 /* between the colours of two bars of a pair */
#define OFF_SHARE 50     /* a flat line has at most 1 in this many pixels off */
#define MIN_BAR_PCT 2    /* a bar is at least this share of the picture */
#define MIN_LEFT_PCT 40  /* and leaves at least this share of it */

typedef struct line_walk {
    const pdqm_pixels *px;
    int horizontal;      /* rows (1) or columns (0) */
    int from, to;        /* the other axis's extent looked at */
} line_walk;

static const uint8_t *pixel(const pdqm_pixels *px, int x, int y)
{
    return px->data + (size_t)y * px->stride + (size_t)x * (size_t)px->channels;
}

/* Whether line k (a row or a column) is within TOLERANCE of colour c, but
 * for a few pixels. */
static int flat(const line_walk *w, int k, const int c[3])
{
    int n = w->to - w->from, off = 0, budget = n / OFF_SHARE;
    for (int i = w->from; i < w->to; i++) {
        const uint8_t *p = w->horizontal ? pixel(w->px, i, k) : pixel(w->px, k, i);
        for (int ch = 0; ch < w->px->channels; ch++)
            if (abs((int)p[ch] - c[ch]) > TOLERANCE) {
                if (++off > budget)
                    return 0;
                break;
            }
    }
    return 1;
}

/* The colour of line k: the median of each channel would cost a sort, so
 * its mean, which a flat line's pixels all lie near. */
static void colour(const line_walk *w, int k, int c[3])
{
    long sum[3] = { 0, 0, 0 };
    for (int i = w->from; i < w->to; i++) {
        const uint8_t *p = w->horizontal ? pixel(w->px, i, k) : pixel(w->px, k, i);
        for (int ch = 0; ch < w->px->channels; ch++)
            sum[ch] += p[ch];
    }
    int n = w->to - w->from;
    for (int ch = 0; ch < 3; ch++)
        c[ch] = n > 0 && ch < w->px->channels ? (int)(sum[ch] / n) : 0;
}

/* How many lines from line `edge`, stepping by `step`, are flat in the
 * edge line's colour (in *c), looking at no more than `limit` lines. */
static int band(const line_walk *w, int edge, int step, int limit, int c[3])
{
    colour(w, edge, c);
    int k = 0;
    while (k < limit && flat(w, edge + step * k, c))
        k++;
    return k;
}

/* The thickness of the pair of bars that bands a and b (of colours ca,
 * cb) across a dimension of n make, or 0 when they make none.  Bars come
 * in pairs of one colour, as a picture centred in a larger frame has (a
 * flat band at one edge only is more often the picture's own, a sky or a
 * wall), and of one thickness: the thinner band's, the thicker one having
 * run on into a flat part of the picture. */
static int pair(int a, int b, const int ca[3], const int cb[3], int n)
{
    int thin = a < b ? a : b;
    if (thin < n * MIN_BAR_PCT / 100)
        return 0;
    for (int ch = 0; ch < 3; ch++)
        if (abs(ca[ch] - cb[ch]) > PAIR_TOLERANCE)
            return 0;
    return thin;
}

int pdqm_find_bars(const pdqm_pixels *px, pdqm_rect *inner)
{
    *inner = (pdqm_rect){ 0, 0, px->width, px->height };
    int w = px->width, h = px->height;
    if (w < 16 || h < 16)
        return 0;
    int keep_h = h * MIN_LEFT_PCT / 100, keep_w = w * MIN_LEFT_PCT / 100;
    int c0[3], c1[3];
    line_walk rows = { px, 1, 0, w };
    int top = band(&rows, 0, 1, h - keep_h, c0);
    int bottom = band(&rows, h - 1, -1, h - keep_h - top, c1);
    top = bottom = pair(top, bottom, c0, c1, h);
    line_walk cols = { px, 0, top, h - bottom };
    int left = band(&cols, 0, 1, w - keep_w, c0);
    int right = band(&cols, w - 1, -1, w - keep_w - left, c1);
    left = right = pair(left, right, c0, c1, w);
    if (top + bottom + left + right == 0)
        return 0;
    *inner = (pdqm_rect){ left, top, w - left - right, h - top - bottom };
    return 1;
}
