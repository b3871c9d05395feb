/*
 * image_jpeg.c - JPEG to PDQ-ready pixels with libjpeg alone.
 *
 * libvips reads JPEG through this same libjpeg (libjpeg-turbo on Debian),
 * with libjpeg's defaults: the accurate integer IDCT, fancy upsampling,
 * YCbCr to RGB, no colour management, no rotation by EXIF.  So the pixels
 * are the same, and a process that hashes a JPEG need not load libvips,
 * whose 100 shared libraries and modules cost 30-40 ms a start.
 *
 * Only decodes this file can vouch for are kept: a grey or RGB JPEG within
 * the limits that libjpeg decodes without one warning.  Everything else
 * (CMYK, a corrupt or truncated file, too many pixels) goes back to
 * libvips before a pixel is kept, so its messages and refusals stand.
 * tests/unit/test_image.c checks both paths give the same pixels.
 */
#include "image_int.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#define STRIP_ROWS 16

typedef struct guard {
    struct jpeg_error_mgr pub;
    jmp_buf escape;
    int warned;
} guard;

static void on_error(j_common_ptr cinfo)
{
    guard *g = (guard *)cinfo->err;
    longjmp(g->escape, 1);
}

/* Level -1 is a warning (corrupt data, a premature end): libvips decides
 * about those.  Other levels are traces. */
static void on_message(j_common_ptr cinfo, int level)
{
    guard *g = (guard *)cinfo->err;
    if (level < 0)
        g->warned = 1;
}

typedef struct jpeg_rows {
    struct jpeg_decompress_struct *cinfo;
    guard *g;
    uint8_t *buf;
    size_t stride;
    int declined;     /* an error or warning: hand over to libvips */
} jpeg_rows;

static pdqm_status read_rows(void *arg, int y0, int n, const uint8_t **first, size_t *stride,
                             pdqm_error *err)
{
    jpeg_rows *r = arg;
    (void)y0;
    if (setjmp(r->g->escape)) {
        r->declined = 1;
        return pdqm_error_set(err, PDQM_ERR_DECODE, "corrupt jpeg data");
    }
    for (int i = 0; i < n; i++) {
        JSAMPROW row = r->buf + (size_t)i * r->stride;
        if (jpeg_read_scanlines(r->cinfo, &row, 1) != 1 || r->g->warned) {
            r->declined = 1;
            return pdqm_error_set(err, PDQM_ERR_DECODE, "corrupt jpeg data");
        }
    }
    *first = r->buf;
    *stride = r->stride;
    return PDQM_OK;
}

int pdqm_jpeg_decode(const void *data, size_t len, const pdqm_image_limits *limits,
                     double began, pdqm_image **out, pdqm_status *st, pdqm_error *err)
{
    static const uint8_t soi[] = { 0xff, 0xd8, 0xff };
    if (len < sizeof soi || memcmp(data, soi, sizeof soi) != 0)
        return 0;
    /* libjpeg's errors jump back to the setjmp below only while the header
     * is read and decoding starts; read_rows() takes them from then on. */
    struct jpeg_decompress_struct cinfo;
    guard g;
    jpeg_rows rows = { &cinfo, &g, NULL, 0, 0 };
    pdqm_image *volatile img = NULL;
    volatile int handled = 0;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&g.pub);
    g.pub.error_exit = on_error;
    g.pub.emit_message = on_message;
    g.warned = 0;
    jpeg_create_decompress(&cinfo);
    if (setjmp(g.escape))
        goto done;   /* libvips reads it again and says what is wrong */
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK || g.warned)
        goto done;
    int bands = cinfo.out_color_space == JCS_GRAYSCALE ? 1
              : cinfo.out_color_space == JCS_RGB ? 3 : 0;
    if (bands == 0 || cinfo.image_width == 0 || cinfo.image_height == 0 ||
        (uint64_t)cinfo.image_width * cinfo.image_height > limits->max_pixels ||
        cinfo.image_width > 65535 || cinfo.image_height > 65535)
        goto done;
    if (!jpeg_start_decompress(&cinfo) || g.warned ||
        cinfo.output_components != bands)
        goto done;
    rows.stride = (size_t)cinfo.output_width * (size_t)bands;
    rows.buf = malloc(rows.stride * STRIP_ROWS);
    img = calloc(1, sizeof *img);
    if (rows.buf == NULL || img == NULL)
        goto done;   /* libvips may still manage, or say it cannot */
    img->width = (int)cinfo.output_width;
    img->height = (int)cinfo.output_height;
    img->format = "jpeg";
    pdqm_error scratch;
    pdqm_status s = pdqm_image_sample(img->width, img->height, bands, read_rows, &rows, 1,
                                      began, limits->max_seconds, img, &scratch);
    if (rows.declined)
        goto done;
    handled = 1;
    *st = s;
    if (s == PDQM_OK) {
        *out = img;
        img = NULL;
    } else if (err != NULL) {
        *err = scratch;
    }
done:
    jpeg_destroy_decompress(&cinfo);
    free(rows.buf);
    pdqm_image_free(img);
    return handled;
}
