/*
 * media.h - from media bytes (a file, or an HTTP body) to hashes.
 *
 * The one way through for callers that do not care how a format is
 * decoded: bytes in, the PDQ hash, its quality, the dihedral hashes when
 * asked, and the SHA-256 and MD5 of the bytes when asked.
 */
#ifndef PDQM_MEDIA_H
#define PDQM_MEDIA_H

#include <stddef.h>

#include "digest.h"
#include "error.h"
#include "image.h"
#include "pdq.h"

/* Flags for the functions below. */
#define PDQM_MEDIA_DIHEDRAL 0x1u   /* fill pdq.dihedral */
#define PDQM_MEDIA_DIGESTS  0x2u   /* fill digests */

typedef struct pdqm_image_hash {
    pdqm_pdq pdq;            /* hash, quality, dihedrals */
    int width;               /* of the stored image, pixels */
    int height;
    const char *format;      /* "jpeg", "png", ...: static storage */
    pdqm_digests digests;    /* with PDQM_MEDIA_DIGESTS */
} pdqm_image_hash;

/* Hash the image in len bytes at data into *out.  limits NULL means the
 * defaults.  Errors are those of pdqm_image_decode(). */
pdqm_status pdqm_hash_image_bytes(const void *data, size_t len,
                                  const pdqm_image_limits *limits,
                                  unsigned flags, pdqm_image_hash *out,
                                  pdqm_error *err);

/* The same for the file at path (read whole, up to limits->max_bytes);
 * adds the errors of pdqm_read_file(). */
pdqm_status pdqm_hash_image_file(const char *path,
                                 const pdqm_image_limits *limits,
                                 unsigned flags, pdqm_image_hash *out,
                                 pdqm_error *err);

#endif
