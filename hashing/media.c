/*
 * media.c - bytes to image hashes: decode, hash, digest.
 */
#include "media.h"

#include <stdlib.h>
#include <string.h>

#include "fileio.h"

pdqm_status pdqm_hash_image_bytes(const void *data, size_t len,
                                  const pdqm_image_limits *limits,
                                  unsigned flags, pdqm_image_hash *out,
                                  pdqm_error *err)
{
    memset(out, 0, sizeof *out);
    pdqm_image *img = NULL;
    pdqm_status st = pdqm_image_decode(data, len, limits, &img, err);
    if (st != PDQM_OK)
        return st;
    unsigned pdq_flags = (flags & PDQM_MEDIA_DIHEDRAL) ? PDQM_PDQ_DIHEDRAL : 0;
    st = pdqm_pdq_hash(&img->pixels, pdq_flags, &out->pdq, err);
    out->width = img->width;
    out->height = img->height;
    out->format = img->format;
    pdqm_image_free(img);
    if (st == PDQM_OK && (flags & PDQM_MEDIA_DIGESTS))
        st = pdqm_digest(data, len, &out->digests, err);
    return st;
}

pdqm_status pdqm_hash_image_file(const char *path,
                                 const pdqm_image_limits *limits,
                                 unsigned flags, pdqm_image_hash *out,
                                 pdqm_error *err)
{
    pdqm_image_limits defaults;
    if (limits == NULL) {
        pdqm_image_limits_default(&defaults);
        limits = &defaults;
    }
    uint8_t *data;
    size_t len;
    pdqm_status st = pdqm_read_file(path, limits->max_bytes, &data, &len, err);
    if (st != PDQM_OK)
        return st;
    st = pdqm_hash_image_bytes(data, len, limits, flags, out, err);
    free(data);
    return st;
}

pdqm_media_kind pdqm_media_sniff(const void *data, size_t len)
{
    /* Images first: libvips knows its formats by their magic bytes, and
     * FFmpeg would take some of them (GIF, WebP) for videos. */
    if (len >= 4) {
        const uint8_t *p = data;
        static const uint8_t jpeg[] = { 0xff, 0xd8, 0xff }, png[] = { 0x89, 'P', 'N', 'G' };
        if (memcmp(p, jpeg, 3) == 0 || memcmp(p, png, 4) == 0 || memcmp(p, "GIF8", 4) == 0 ||
            memcmp(p, "II*", 3) == 0 || memcmp(p, "MM\0*", 4) == 0 ||
            (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) ||
            (p[0] == 'P' && p[1] >= '1' && p[1] <= '6'))
            return PDQM_MEDIA_IMAGE;
        /* HEIF/AVIF are ISO boxes like MP4: their brand tells. */
        if (len >= 12 && memcmp(p + 4, "ftyp", 4) == 0) {
            static const char *const still[] = { "heic", "heix", "mif1", "msf1", "avif", "avis", "heim", "heis" };
            for (size_t i = 0; i < sizeof still / sizeof still[0]; i++)
                if (memcmp(p + 8, still[i], 4) == 0)
                    return PDQM_MEDIA_IMAGE;
        }
    }
    return pdqm_video_probe(data, len) ? PDQM_MEDIA_VIDEO : PDQM_MEDIA_IMAGE;
}

typedef struct collect {
    pdqm_video_hashes *out;
    size_t cap;
    int failed;
    int dihedral;
} collect;

static int collect_frame(void *arg, const pdqm_video_frame *f)
{
    collect *c = arg;
    pdqm_video_hashes *v = c->out;
    if (v->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        pdqm_video_frame *grown = realloc(v->frames, cap * sizeof *grown);
        if (grown == NULL) {
            c->failed = 1;
            return 1;
        }
        v->frames = grown;
        if (c->dihedral) {
            pdqm_hash256 *d = realloc(v->dihedral, cap * PDQM_DIHEDRAL_COUNT * sizeof *d);
            if (d == NULL) {
                c->failed = 1;
                return 1;
            }
            v->dihedral = d;
        }
        c->cap = cap;
    }
    if (c->dihedral)
        memcpy(v->dihedral + v->count * PDQM_DIHEDRAL_COUNT, f->dihedral,
               PDQM_DIHEDRAL_COUNT * sizeof *v->dihedral);
    v->frames[v->count] = *f;
    v->frames[v->count].dihedral = NULL;   /* set once the array stops moving */
    v->count++;
    return 0;
}

pdqm_status pdqm_hash_video_bytes(const void *data, size_t len,
                                  const pdqm_video_limits *limits, double interval,
                                  unsigned burst, unsigned flags, pdqm_video_hashes *out,
                                  pdqm_error *err)
{
    memset(out, 0, sizeof *out);
    collect c = { out, 0, 0, (flags & PDQM_MEDIA_DIHEDRAL) != 0 };
    pdqm_status st = pdqm_video_hash(data, len, limits, interval, burst,
                                     (c.dihedral ? PDQM_VIDEO_DIHEDRAL : 0) |
                                         ((flags & PDQM_MEDIA_BARS) ? PDQM_VIDEO_BARS : 0),
                                     collect_frame, &c,
                                     &out->info, err);
    if (st == PDQM_OK && c.failed)
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for video frames");
    if (st == PDQM_OK && (flags & PDQM_MEDIA_DIGESTS))
        st = pdqm_digest(data, len, &out->digests, err);
    if (st == PDQM_OK && c.dihedral)
        for (size_t i = 0; i < out->count; i++)
            out->frames[i].dihedral = out->dihedral + i * PDQM_DIHEDRAL_COUNT;
    if (st != PDQM_OK)
        pdqm_video_hashes_free(out);
    return st;
}

void pdqm_video_hashes_free(pdqm_video_hashes *v)
{
    if (v == NULL)
        return;
    free(v->frames);
    free(v->dihedral);
    v->frames = NULL;
    v->dihedral = NULL;
    v->count = 0;
}
