/*
 * pdq_int.h - PDQ internals exposed to the unit tests and benchmarks only.
 *
 * These let a test hold each stage against the hand-checkable examples and
 * the reference's float dumps.  Front ends use pdq.h.
 */
#ifndef PDQM_PDQ_INT_H
#define PDQM_PDQ_INT_H

#include "pdq.h"

#define PDQM_PDQ_DCT_ROWS 16
#define PDQM_PDQ_BUFFER 64

/* The 16x64 float32 DCT matrix, row i = frequency i+1; static storage. */
const float *pdqm_pdq_dct_matrix(void);

/* One-dimensional Jarosz box of `window` over n samples, in -> out. */
void pdqm_pdq_box1d(const float *in, float *out, int n, int window);

/* The window the reference uses along a side of `len` samples. */
int pdqm_pdq_window(int len);

/* The stages before the bits: the 64x64 buffer after blur and decimation and
 * the 16x16 DCT, as the reference computes them.  Same errors as
 * pdqm_pdq_hash(); for an image under 5 pixels both are zero-filled. */
pdqm_status pdqm_pdq_intermediates(const pdqm_pixels *px, unsigned flags,
                                   float luma64[64 * 64], float dct16[16 * 16],
                                   pdqm_error *err);

#endif
