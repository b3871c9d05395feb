/*
 * image.h - decode image bytes with libvips into pixels ready for PDQ.
 *
 * Decoding follows the reference's pixel conventions (spec/PDQ.md section 1)
 * but not its bugs:
 *   - alpha is dropped, never composited; EXIF orientation is not applied;
 *   - an image whose every pixel has R = G = B is hashed as one grey channel,
 *     exactly as the reference sees it after ImageMagick writes a PGM;
 *   - 16-bit samples keep their high byte (the reference keeps the low one);
 *   - GIF and other multi-page formats give their first frame;
 *   - bytes that cannot be decoded are an error, never an all-zero hash.
 *
 * Only JPEG, PNG, GIF, WebP, TIFF, PPM/PGM/PBM and (where libvips has
 * libheif) HEIF/AVIF are accepted; every other libvips loader (SVG, PDF,
 * ImageMagick, ...) is refused, since all input is treated as hostile.
 * The pixel limit is checked on the header, before any pixel is decoded,
 * and decoding streams: memory stays near 512x512 samples plus one strip of
 * the source, whatever the image size.
 */
#ifndef PDQM_IMAGE_H
#define PDQM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pdq.h"

#define PDQM_IMAGE_DEFAULT_MAX_PIXELS ((uint64_t)250000000)   /* 250 megapixels */
#define PDQM_IMAGE_DEFAULT_MAX_BYTES ((size_t)256 << 20)      /* 256 MiB */
#define PDQM_IMAGE_DEFAULT_MAX_SECONDS 60.0

/* Limits on one image; fill with pdqm_image_limits_default() first. */
typedef struct pdqm_image_limits {
    uint64_t max_pixels;   /* width * height as the header claims it */
    size_t max_bytes;      /* encoded size */
    double max_seconds;    /* decoding time: some formats cost far more a
                              pixel than others (ASCII and 1-bit PNM) */
} pdqm_image_limits;

void pdqm_image_limits_default(pdqm_image_limits *limits);

typedef struct pdqm_image {
    pdqm_pixels pixels;    /* pre-shrunk 8-bit samples, 1 or 3 channels,
                              ready for pdqm_pdq_hash(); owned by the image */
    int width;             /* of the stored image, in pixels */
    int height;
    const char *format;    /* "jpeg", "png", "gif", "webp", "tiff", "ppm",
                              "heif": static storage */
} pdqm_image;

/* Start libvips for this process.  Call once before any decode, from one
 * thread; later calls do nothing.  Returns PDQM_ERR_INTERNAL when libvips
 * cannot start. */
pdqm_status pdqm_image_init(pdqm_error *err);

/* Release libvips at process exit; no decode may run during or after it. */
void pdqm_image_shutdown(void);

/* Decode len bytes at data into a new image in *out, freed with
 * pdqm_image_free().  data is only read during the call.
 * Errors: PDQM_ERR_INVALID (empty input), PDQM_ERR_TOO_LARGE (bytes or
 * pixels over limits; limits NULL means the defaults), PDQM_ERR_UNSUPPORTED
 * (not an accepted image format), PDQM_ERR_DECODE (corrupt or truncated
 * data), PDQM_ERR_NOMEM. */
pdqm_status pdqm_image_decode(const void *data, size_t len,
                              const pdqm_image_limits *limits,
                              pdqm_image **out, pdqm_error *err);

/* Free an image; NULL does nothing. */
void pdqm_image_free(pdqm_image *img);

#endif
