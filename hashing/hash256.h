/*
 * hash256.h - the 256-bit PDQ hash: hex text and Hamming distance.
 *
 * Bit numbering follows Meta's reference: read the 64 hex characters as one
 * big-endian 256-bit number N; bit k of the hash is (N >> k) & 1, and bit k
 * is the DCT coefficient at row k/16, column k%16.  In memory, w[i] holds
 * bits 64*i .. 64*i+63, least significant first, so w[3] is the first 16 hex
 * characters.
 */
#ifndef PDQM_HASH256_H
#define PDQM_HASH256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define PDQM_HASH_BITS 256
#define PDQM_HASH_HEX_LEN 64   /* characters, without a terminator */

typedef struct pdqm_hash256 {
    uint64_t w[4];
} pdqm_hash256;

/* Parse exactly `len` characters of hex (upper or lower case) into *out.
 * Returns PDQM_ERR_INVALID, with the reason in *err, when len is not 64 or a
 * character is not a hex digit.  *out is untouched on failure. */
pdqm_status pdqm_hash256_from_hex(const char *hex, size_t len,
                                  pdqm_hash256 *out, pdqm_error *err);

/* Write the 64 lower-case hex characters of *h and a NUL into out. */
void pdqm_hash256_to_hex(const pdqm_hash256 *h,
                         char out[PDQM_HASH_HEX_LEN + 1]);

/* Number of differing bits, 0..256. */
static inline int pdqm_hash256_distance(const pdqm_hash256 *a,
                                        const pdqm_hash256 *b)
{
    return __builtin_popcountll(a->w[0] ^ b->w[0]) +
           __builtin_popcountll(a->w[1] ^ b->w[1]) +
           __builtin_popcountll(a->w[2] ^ b->w[2]) +
           __builtin_popcountll(a->w[3] ^ b->w[3]);
}

/* Number of set bits, 0..256 (a normal PDQ hash has about 128). */
int pdqm_hash256_weight(const pdqm_hash256 *h);

static inline bool pdqm_hash256_get_bit(const pdqm_hash256 *h, int k)
{
    return (h->w[k >> 6] >> (k & 63)) & 1u;
}

static inline void pdqm_hash256_set_bit(pdqm_hash256 *h, int k)
{
    h->w[k >> 6] |= (uint64_t)1 << (k & 63);
}

#endif
