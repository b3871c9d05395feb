/*
 * bars.h - uniform bars around a picture: letterbox (top and bottom) and
 * pillarbox (left and right) bands of one flat colour, black or any other.
 *
 * PDQ is not robust to bars added around a picture (12.5 % of the height
 * in black moves a frame's hash by more than 31 bits), so a video query
 * also looks its frames up with the bars cut off (see match.h).  Stored
 * hashes are never cut: they stay those of the reference.
 *
 * A side's band is the run of rows (or columns) from that edge whose
 * pixels nearly all lie within a small tolerance of the edge's own colour
 * (compression leaves a little noise in a flat band).  Bars come in pairs,
 * top and bottom or left and right, of one colour and about one
 * thickness, each at least 2 % of the picture: a flat band at one edge
 * only is taken for the picture's own (a sky, a wall).  At least 40 % of
 * the picture is always left (a flat frame has no bars).
 */
#ifndef PDQM_BARS_H
#define PDQM_BARS_H

#include "pdq.h"

typedef struct pdqm_rect {
    int x, y, width, height;
} pdqm_rect;

/* The part of px inside its bars, in *inner (all of px when none); 1 when
 * px has bars on some side, 0 otherwise.  px holds 1 or 3 channels. */
int pdqm_find_bars(const pdqm_pixels *px, pdqm_rect *inner);

#endif
