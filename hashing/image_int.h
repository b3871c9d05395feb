/*
 * image_int.h - what image.c and image_jpeg.c share (private to hashing/).
 */
#ifndef PDQM_IMAGE_INT_H
#define PDQM_IMAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* Hand out rows y0 .. y0 + n - 1 of a decoded image, in order: the first
 * at *first, each stride bytes after the one before, valid until the next
 * call.  PDQM_OK, or a status with err filled. */
typedef pdqm_status (*pdqm_rows_fn)(void *arg, int y0, int n, const uint8_t **first,
                                    size_t *stride, pdqm_error *err);

/* Read a width x height image of in_bands 8-bit bands (1 grey, 3 RGB, 4
 * CMYK) from read_rows, top to bottom, and keep the samples PDQ's 512
 * pre-shrink picks in img_out->pixels.  With collapse_grey, an RGB image
 * whose every pixel is grey becomes one channel.  Fails with
 * PDQM_ERR_TOO_LARGE once max_seconds have passed since began (monotonic
 * seconds), or with read_rows' status. */
pdqm_status pdqm_image_sample(int width, int height, int in_bands, pdqm_rows_fn read_rows,
                              void *arg, int collapse_grey, double began, double max_seconds,
                              pdqm_image *img_out, pdqm_error *err);

/* pdqm_image_decode() by libvips alone, for limits checked already
 * (bytes) and a decode that began at began (monotonic seconds). */
pdqm_status pdqm_image_decode_vips(const void *data, size_t len,
                                   const pdqm_image_limits *limits, double began,
                                   pdqm_image **out, pdqm_error *err);

/* The JPEG path without libvips, for files whose decoding it can vouch
 * for: 8-bit grey or RGB (YCbCr) JPEGs within limits that libjpeg decodes
 * without a single warning.  Then it returns 1 with *st and *out (or err)
 * set as pdqm_image_decode() would; for anything else (not a JPEG, CMYK,
 * over a limit, a warning or an error) it returns 0, keeps nothing, and
 * libvips decides, so that every message and refusal stays libvips'. */
int pdqm_jpeg_decode(const void *data, size_t len, const pdqm_image_limits *limits,
                     double began, pdqm_image **out, pdqm_status *st, pdqm_error *err);

#endif
