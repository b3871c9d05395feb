/*
 * pdq.h - the PDQ perceptual image hash, bit-exact with Meta's reference.
 *
 * Pure computation: decoded 8-bit pixels in, a 256-bit hash and a quality
 * score out.  No I/O, no global state beyond a constant table built once.
 * The arithmetic is float32 in the reference's exact operation order; this
 * file must be compiled with -ffp-contract=off and without fast-math.
 * See spec/PDQ.md in the design notes for every fact reproduced here.
 *
 * Thread safety: every function may be called from any thread at once.
 */
#ifndef PDQM_PDQ_H
#define PDQM_PDQ_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hash256.h"

/* Images wider or taller than this are first resampled to exactly
 * PDQM_PDQ_PRESHRINK x PDQM_PDQ_PRESHRINK by nearest neighbour. */
#define PDQM_PDQ_PRESHRINK 512
/* Images with fewer rows or columns than this hash to all zeros, quality 0. */
#define PDQM_PDQ_MIN_SIZE 5
/* Meta's advice: hashes of quality below this are too unreliable to use. */
#define PDQM_PDQ_GOOD_QUALITY 50

/* The eight dihedral transforms, in the reference's output order. */
typedef enum pdqm_dihedral {
    PDQM_DIH_ORIG = 0,        /* identity */
    PDQM_DIH_ROT90 = 1,       /* 90 degrees counter-clockwise */
    PDQM_DIH_ROT180 = 2,
    PDQM_DIH_ROT270 = 3,      /* 90 degrees clockwise */
    PDQM_DIH_FLIPX = 4,       /* top <-> bottom */
    PDQM_DIH_FLIPY = 5,       /* left <-> right */
    PDQM_DIH_FLIPPLUS1 = 6,   /* transpose about the main diagonal */
    PDQM_DIH_FLIPMINUS1 = 7   /* transpose about the anti-diagonal */
} pdqm_dihedral;
#define PDQM_DIHEDRAL_COUNT 8

/* Short name of a transform ("rot90"); "?" outside the enum. */
const char *pdqm_dihedral_name(pdqm_dihedral d);

/* A borrowed view of decoded pixels: 8-bit samples, interleaved, row-major.
 * channels is 1 (grey: luma is the sample itself) or 3 (R, G, B: luma is
 * the reference's weighted sum).  Callers drop alpha before hashing. */
typedef struct pdqm_pixels {
    const uint8_t *data;
    int width;        /* pixels */
    int height;       /* pixels */
    int channels;     /* 1 or 3 */
    size_t stride;    /* bytes from one row to the next, >= width*channels */
} pdqm_pixels;

typedef struct pdqm_pdq {
    pdqm_hash256 hash;                            /* the hash of the image */
    int quality;                                  /* 0..100 */
    pdqm_hash256 dihedral[PDQM_DIHEDRAL_COUNT];   /* only with PDQM_PDQ_DIHEDRAL */
} pdqm_pdq;

/* Flags for pdqm_pdq_hash(). */
#define PDQM_PDQ_DIHEDRAL     0x1u /* also fill out->dihedral (one DCT for all) */
#define PDQM_PDQ_NO_PRESHRINK 0x2u /* skip the 512 nearest-neighbour step, as
                                      vPDQ does for video frames */

/* Largest image hashed when PDQM_PDQ_NO_PRESHRINK is given, in pixels;
 * larger ones fail with PDQM_ERR_TOO_LARGE.  (With the pre-shrink the work
 * is bounded by 512x512 whatever the input size.) */
#define PDQM_PDQ_MAX_PIXELS_UNSHRUNK ((size_t)1 << 26)

/* Hash the pixels in *px into *out.
 * Returns PDQM_OK, PDQM_ERR_INVALID for a malformed view (NULL data, a
 * channel count other than 1 or 3, a stride too small), PDQM_ERR_TOO_LARGE
 * (see above) or PDQM_ERR_NOMEM.  Images under 5 pixels on a side (after the
 * pre-shrink) succeed with an all-zero hash and quality 0, as the reference
 * does. */
pdqm_status pdqm_pdq_hash(const pdqm_pixels *px, unsigned flags,
                          pdqm_pdq *out, pdqm_error *err);

/* The pre-shrink, for decoders that sample while they stream instead of
 * holding a whole large image.  pdqm_pdq_preshrink_dims() gives the size
 * the core hashes an image of width x height at (512x512 when either side is
 * over 512, else unchanged); pdqm_pdq_preshrink_source() gives the source
 * row or column that output index `dst` of a side of `src_len` samples takes. */
void pdqm_pdq_preshrink_dims(int width, int height, int *out_width,
                             int *out_height);
int pdqm_pdq_preshrink_source(int src_len, int dst);

#endif
