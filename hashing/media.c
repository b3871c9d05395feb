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
