/*
 * image.c - libvips decoding to PDQ-ready pixels.
 *
 * The image is read once, top to bottom, a strip of rows at a time
 * (libvips sequential access).  Each strip is checked for colour (to find
 * images whose every pixel is grey, see image.h) and the rows the 512
 * pre-shrink picks are copied out, sampled by column.  Nothing larger than
 * a strip of the source is ever held.
 */
#include "image.h"

#include "clock.h"
#include "image_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "vips_lazy.h"

/* Rows asked of libvips at a time. */
#define STRIP_ROWS 16

/* The loaders pdqmatch accepts, by libvips class name, and the format name
 * reported for each.  Everything else is refused before it runs. */
static const struct {
    const char *loader;
    const char *format;
} accepted_loaders[] = {
    { "VipsForeignLoadJpegSource",  "jpeg" },
    { "VipsForeignLoadPngSource",   "png"  },
    { "VipsForeignLoadNsgifSource", "gif"  },
    { "VipsForeignLoadWebpSource",  "webp" },
    { "VipsForeignLoadTiffSource",  "tiff" },
    { "VipsForeignLoadPpmSource",   "ppm"  },
    { "VipsForeignLoadHeifSource",  "heif" },
};
#define N_ACCEPTED (sizeof accepted_loaders / sizeof accepted_loaders[0])

void pdqm_image_limits_default(pdqm_image_limits *limits)
{
    limits->max_pixels = PDQM_IMAGE_DEFAULT_MAX_PIXELS;
    limits->max_bytes = PDQM_IMAGE_DEFAULT_MAX_BYTES;
    limits->max_seconds = PDQM_IMAGE_DEFAULT_MAX_SECONDS;
}

static int pnm_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Does a PNM file (bytes starting "P1".."P6", "PF", "Pf") hold every
 * sample its header claims?  libvips' readers of ASCII and 1-bit PNM take
 * a missing end for zeros, so a 17-byte file claiming a 1x2287334 image
 * decodes, for seconds, to a blank hash.  *need and *have count samples
 * (ASCII) or body bytes (binary).  Returns 0 when the data is short.  The
 * header is read as libvips reads it: tokens between blanks and '#'
 * comments, then one blank. */
static int pnm_complete(const uint8_t *data, size_t len, const VipsImage *img,
                        uint64_t *need, uint64_t *have)
{
    *need = *have = 0;
    if (len < 2 || data[0] != 'P' || !strchr("123456Ff", data[1]))
        return 1;
    const char kind = (char)data[1];
    const int tokens = kind == '1' || kind == '4' ? 2 : 3;   /* w h [maxval|scale] */
    size_t p = 2;
    for (int t = 0; t < tokens; t++) {
        while (p < len && (pnm_space(data[p]) || data[p] == '#')) {
            if (data[p] == '#')
                while (p < len && data[p] != '\n' && data[p] != '\r')
                    p++;
            else
                p++;
        }
        while (p < len && !pnm_space(data[p]))
            p++;
    }
    p++;   /* the one blank after the header */
    const uint64_t w = (uint64_t)img->Xsize, h = (uint64_t)img->Ysize;
    const uint64_t samples = w * h * (uint64_t)img->Bands;   /* <= 2^62 * 3 */
    const uint8_t *body = data + (p < len ? p : len);
    const size_t body_len = p < len ? len - p : 0;
    switch (kind) {
    case '1':   /* ASCII bits: "0101" needs no blanks */
        *need = samples;
        for (size_t i = 0; i < body_len; i++)
            *have += body[i] == '0' || body[i] == '1';
        break;
    case '2':
    case '3':   /* ASCII numbers: a token each */
        *need = samples;
        for (size_t i = 0; i < body_len; i++)
            *have += !pnm_space(body[i]) && (i == 0 || pnm_space(body[i - 1]));
        break;
    case '4':   /* bits, each row padded to a byte */
        *need = h * ((w + 7) / 8);
        *have = body_len;
        break;
    default:    /* binary samples of 1, 2 or 4 bytes */
        *need = samples * (uint64_t)vips_format_sizeof(img->BandFmt);
        *have = body_len;
        break;
    }
    return *have >= *need;
}

/* libvips reports warnings through GLib logging; the library never prints,
 * and every failure that matters comes back as an error instead. */
static void drop_log(const gchar *domain, GLogLevelFlags level,
                     const gchar *message, gpointer data)
{
    (void)domain; (void)level; (void)message; (void)data;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_failed;
static int started;

static void start_vips(void)
{
    if (pdqm_vips_load(NULL) != PDQM_OK || VIPS_INIT("pdqmatch") != 0) {
        init_failed = 1;
        return;
    }
    g_log_set_handler("VIPS", G_LOG_LEVEL_MASK, drop_log, NULL);
    /* A hostile header (a PPM 0 pixels wide) makes libvips set an object
     * property out of range, which GObject warns of before the load fails
     * or the value is clamped: one line on stderr per such input. */
    g_log_set_handler("GLib-GObject", G_LOG_LEVEL_WARNING, drop_log, NULL);
    /* Each decode has its own source; caching operations on them would
     * only keep freed inputs alive. */
    vips_cache_set_max(0);
    started = 1;
    /* Refuse every loader but the accepted ones, even if a later libvips
     * call would pick another by itself. */
    vips_operation_block_set("VipsForeignLoad", TRUE);
    for (size_t i = 0; i < N_ACCEPTED; i++) {
        const char *base = accepted_loaders[i].loader;
        vips_operation_block_set(base, FALSE);
    }
}

pdqm_status pdqm_image_init(pdqm_error *err)
{
    pthread_once(&init_once, start_vips);
    if (init_failed) {
        /* The loader's reason when libvips is not there at all. */
        pdqm_status st = pdqm_vips_load(err);
        return st != PDQM_OK ? st
                             : pdqm_error_set(err, PDQM_ERR_INTERNAL, "libvips failed to start");
    }
    return PDQM_OK;
}

void pdqm_image_shutdown(void)
{
    if (started)
        vips_shutdown();
}

void pdqm_image_free(pdqm_image *img)
{
    if (img == NULL)
        return;
    free((void *)img->pixels.data);
    free(img);
}

/* Record our context and libvips' own account of a failure (its first
 * line, which names the decoder that spoke), then clear libvips' error
 * buffer. */
static pdqm_status vips_failure(pdqm_error *err, pdqm_status status,
                                const char *context, const char *format)
{
    char *text = vips_error_buffer_copy();
    char *line = text ? text : "";
    line[strcspn(line, "\n")] = '\0';
    pdqm_status st = line[0]
        ? pdqm_error_set(err, status, "%s %s data (%s)", context, format, line)
        : pdqm_error_set(err, status, "%s %s data", context, format);
    g_free(text);
    return st;
}

/* Turn whatever the loader gives into 8-bit samples with 1 or 3 bands: drop
 * alpha, bring other colour spaces to sRGB, keep the high byte of 16-bit
 * samples.  Returns a new reference in *out, or -1 with the vips error set. */
static int to_pdq_bands(VipsImage *in, VipsImage **out)
{
    VipsImage *base = vips_image_new();   /* owns the intermediates */
    VipsImage **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 4);
    VipsImage *x = in;
    VipsInterpretation interp = vips_image_get_interpretation(x);
    int ok = 0;

    /* 8-bit CMYK stays CMYK: sample_pixels() converts it the way the
     * reference's ImageMagick does, not through a colour profile. */
    if (interp == VIPS_INTERPRETATION_CMYK && x->Bands >= 4 &&
        x->BandFmt == VIPS_FORMAT_UCHAR) {
        if (x->Bands == 4) {
            g_object_ref(x);
            *out = x;
        } else if (vips_extract_band(x, out, 0, "n", 4, NULL)) {
            goto done;
        }
        ok = 1;
        goto done;
    }

    switch (interp) {
    case VIPS_INTERPRETATION_CMYK:
    case VIPS_INTERPRETATION_LAB:
    case VIPS_INTERPRETATION_LABQ:
    case VIPS_INTERPRETATION_LABS:
    case VIPS_INTERPRETATION_LCH:
    case VIPS_INTERPRETATION_CMC:
    case VIPS_INTERPRETATION_XYZ:
    case VIPS_INTERPRETATION_YXY:
    case VIPS_INTERPRETATION_HSV:
    case VIPS_INTERPRETATION_scRGB:
        if (vips_colourspace(x, &t[0], VIPS_INTERPRETATION_sRGB, NULL))
            goto done;
        x = t[0];
        break;
    default:
        break;
    }

    /* Alpha (and any extra band) is dropped, not composited. */
    int bands = x->Bands >= 3 ? 3 : 1;
    if (x->Bands != bands) {
        if (vips_extract_band(x, &t[1], 0, "n", bands, NULL))
            goto done;
        x = t[1];
    }
    if (x->BandFmt != VIPS_FORMAT_UCHAR) {
        /* shift: 16-bit samples keep their high byte (8-bit shift);
         * float samples are clipped to 0..255. */
        gboolean shift = x->BandFmt == VIPS_FORMAT_USHORT ||
                         x->BandFmt == VIPS_FORMAT_SHORT;
        if (vips_cast(x, &t[2], VIPS_FORMAT_UCHAR, "shift", shift, NULL))
            goto done;
        x = t[2];
    }
    g_object_ref(x);
    *out = x;
    ok = 1;
done:
    g_object_unref(base);
    return ok ? 0 : -1;
}

/* One RGB sample from an ink amount and black, as ImageMagick 6 (Q16)
 * converts CMYK for its PNM writer, which is what the reference hashes:
 * in 16-bit quanta, v = Q - (ink * (Q - black) / Q + black), rounded, then
 * scaled to 8 bits.  A colour-managed conversion is 12 bits away on the
 * public CMYK.jpg. */
static uint8_t cmyk_sample(unsigned ink, unsigned black)
{
    const double q = 65535.0;
    const double c = ink * 257.0, k = black * 257.0;
    double v = q - ((1.0 / q) * c * (q - k) + k);
    unsigned quantum = v <= 0.0 ? 0u : v >= q ? 65535u : (unsigned)(v + 0.5);
    return (uint8_t)(((quantum + 128u) - ((quantum + 128u) >> 8)) >> 8);
}

static void cmyk_row_to_rgb(const uint8_t *in, int n, uint8_t *out)
{
    for (int x = 0; x < n; x++, in += 4, out += 3) {
        out[0] = cmyk_sample(in[0], in[3]);
        out[1] = cmyk_sample(in[1], in[3]);
        out[2] = cmyk_sample(in[2], in[3]);
    }
}

/* True when the row of n RGB pixels has R = G = B everywhere. */
static int row_is_grey(const uint8_t *p, int n)
{
    for (int x = 0; x < n; x++, p += 3)
        if (p[0] != p[1] || p[0] != p[2])
            return 0;
    return 1;
}

pdqm_status pdqm_image_sample(int width, int height, int in_bands, pdqm_rows_fn read_rows,
                              void *arg, int collapse_grey, double began, double max_seconds,
                              pdqm_image *img_out, pdqm_error *err)
{
    const int cmyk = in_bands == 4;
    const int bands = cmyk ? 3 : in_bands;
    int out_w, out_h;
    pdqm_pdq_preshrink_dims(width, height, &out_w, &out_h);
    const int shrink = (out_w != width || out_h != height);

    uint8_t *buf = malloc((size_t)out_w * out_h * bands);
    int *col_src = malloc(sizeof(int) * (size_t)out_w);
    uint8_t *rgb_row = cmyk ? malloc((size_t)width * 3) : NULL;
    pdqm_status st = PDQM_OK;
    if (!buf || !col_src || (cmyk && !rgb_row)) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory decoding image");
        goto cleanup;
    }
    for (int x = 0; x < out_w; x++)
        col_src[x] = shrink ? pdqm_pdq_preshrink_source(width, x) : x;

    int grey = collapse_grey && bands == 3;
    int next_out = 0;   /* next output row to fill */
    for (int y0 = 0; y0 < height; y0 += STRIP_ROWS) {
        const int n = height - y0 < STRIP_ROWS ? height - y0 : STRIP_ROWS;
        if (pdqm_monotonic_seconds() - began > max_seconds) {
            st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "decoding took over %g seconds",
                                max_seconds);
            goto cleanup;
        }
        const uint8_t *first;
        size_t stride;
        if ((st = read_rows(arg, y0, n, &first, &stride, err)) != PDQM_OK)
            goto cleanup;
        for (int y = y0; y < y0 + n; y++) {
            const uint8_t *row = first + (size_t)(y - y0) * stride;
            if (cmyk) {
                cmyk_row_to_rgb(row, width, rgb_row);
                row = rgb_row;
            }
            if (grey)
                grey = row_is_grey(row, width);
            /* Upsampled sides repeat a source row, so several output rows
             * may take this one. */
            while (next_out < out_h &&
                   (shrink ? pdqm_pdq_preshrink_source(height, next_out)
                           : next_out) == y) {
                uint8_t *dst = buf + (size_t)next_out * out_w * bands;
                if (!shrink)
                    memcpy(dst, row, (size_t)width * bands);
                else if (bands == 1)
                    for (int x = 0; x < out_w; x++)
                        dst[x] = row[col_src[x]];
                else
                    for (int x = 0; x < out_w; x++)
                        memcpy(dst + 3 * x, row + 3 * (size_t)col_src[x], 3);
                next_out++;
            }
        }
    }

    int channels = bands;
    if (grey) {
        /* Keep R only: the reference hashes such an image as a PGM. */
        size_t n = (size_t)out_w * out_h;
        for (size_t i = 0; i < n; i++)
            buf[i] = buf[3 * i];
        channels = 1;
    }
    img_out->pixels.data = buf;
    img_out->pixels.width = out_w;
    img_out->pixels.height = out_h;
    img_out->pixels.channels = channels;
    img_out->pixels.stride = (size_t)out_w * channels;
    buf = NULL;

cleanup:
    free(buf);
    free(col_src);
    free(rgb_row);
    return st;
}

/* Rows of a libvips image, a strip at a time, for pdqm_image_sample(). */
typedef struct vips_rows {
    VipsRegion *region;
    const char *format;
} vips_rows;

static pdqm_status vips_read_rows(void *arg, int y0, int n, const uint8_t **first,
                                  size_t *stride, pdqm_error *err)
{
    vips_rows *r = arg;
    VipsRect strip = { 0, y0, r->region->im->Xsize, n };
    if (vips_region_prepare(r->region, &strip))
        return vips_failure(err, PDQM_ERR_DECODE, "corrupt or truncated", r->format);
    *first = (const uint8_t *)VIPS_REGION_ADDR(r->region, 0, y0);
    *stride = VIPS_REGION_LSKIP(r->region);
    return PDQM_OK;
}

pdqm_status pdqm_image_decode(const void *data, size_t len,
                              const pdqm_image_limits *limits,
                              pdqm_image **out, pdqm_error *err)
{
    pdqm_image_limits defaults;
    if (limits == NULL) {
        pdqm_image_limits_default(&defaults);
        limits = &defaults;
    }
    *out = NULL;
    const double began = pdqm_monotonic_seconds();
    if (len == 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "empty file (0 bytes)");
    if (len > limits->max_bytes)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                              "%zu bytes is over the limit of %zu bytes",
                              len, limits->max_bytes);
    /* A plain JPEG needs no libvips (nor its 100 libraries at start-up):
     * libjpeg gives the very pixels libvips' loader would. */
    pdqm_status st;
    if (pdqm_jpeg_decode(data, len, limits, began, out, &st, err))
        return st;
    return pdqm_image_decode_vips(data, len, limits, began, out, err);
}

pdqm_status pdqm_image_decode_vips(const void *data, size_t len,
                                   const pdqm_image_limits *limits, double began,
                                   pdqm_image **out, pdqm_error *err)
{
    *out = NULL;
    pdqm_status st = pdqm_image_init(err);
    if (st != PDQM_OK)
        return st;

    VipsSource *source = vips_source_new_from_memory(data, len);
    VipsImage *loaded = NULL, *ready = NULL;
    pdqm_image *img = NULL;
    if (source == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory reading image bytes");
        goto cleanup;
    }

    const char *loader = vips_foreign_find_load_source(source);
    const char *format = NULL;
    for (size_t i = 0; loader && i < N_ACCEPTED; i++)
        if (strcmp(loader, accepted_loaders[i].loader) == 0)
            format = accepted_loaders[i].format;
    vips_error_clear();
    if (format == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_UNSUPPORTED,
                            "not an image format pdqmatch reads (JPEG, PNG, "
                            "GIF, WebP, TIFF, PPM/PGM, HEIF/AVIF)");
        goto cleanup;
    }

    /* Header only: no pixel is decoded until the region below asks. */
    loaded = vips_image_new_from_source(source, "",
                                        "access", VIPS_ACCESS_SEQUENTIAL,
                                        "fail_on", VIPS_FAIL_ON_ERROR,
                                        NULL);
    if (loaded == NULL) {
        st = vips_failure(err, PDQM_ERR_DECODE, "corrupt", format);
        goto cleanup;
    }
    uint64_t pixels = (uint64_t)loaded->Xsize * (uint64_t)loaded->Ysize;
    if (pixels > limits->max_pixels) {
        st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                            "%dx%d is %llu pixels, over the limit of %llu pixels",
                            loaded->Xsize, loaded->Ysize,
                            (unsigned long long)pixels,
                            (unsigned long long)limits->max_pixels);
        goto cleanup;
    }
    uint64_t need, have;
    if (strcmp(format, "ppm") == 0 && !pnm_complete(data, len, loaded, &need, &have)) {
        const char *unit = ((const char *)data)[1] <= '3' ? "samples" : "bytes";
        st = pdqm_error_set(err, PDQM_ERR_DECODE,
                            "truncated ppm data: %dx%d needs %llu %s of pixel data, the "
                            "file has %llu", loaded->Xsize, loaded->Ysize,
                            (unsigned long long)need, unit, (unsigned long long)have);
        goto cleanup;
    }
    if (to_pdq_bands(loaded, &ready)) {
        st = vips_failure(err, PDQM_ERR_DECODE, "cannot convert the pixels of", format);
        goto cleanup;
    }

    img = calloc(1, sizeof *img);
    if (img == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory decoding image");
        goto cleanup;
    }
    img->width = loaded->Xsize;
    img->height = loaded->Ysize;
    img->format = format;
    /* The reference reads PPM/PGM itself, channels as stored; every other
     * format reaches it through ImageMagick, which writes all-grey images
     * as one-channel PGM. */
    vips_rows rows = { vips_region_new(ready), format };
    if (rows.region == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory decoding image");
        goto cleanup;
    }
    st = pdqm_image_sample(ready->Xsize, ready->Ysize, ready->Bands, vips_read_rows, &rows,
                           strcmp(format, "ppm") != 0, began, limits->max_seconds, img, err);
    g_object_unref(rows.region);
    if (st == PDQM_OK) {
        *out = img;
        img = NULL;
    }

cleanup:
    pdqm_image_free(img);
    if (ready)
        g_object_unref(ready);
    if (loaded)
        g_object_unref(loaded);
    if (source)
        g_object_unref(source);
    return st;
}
