/*
 * hash256.c - hex text <-> 256-bit hash.
 */
#include "hash256.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

pdqm_status pdqm_hash256_from_hex(const char *hex, size_t len,
                                  pdqm_hash256 *out, pdqm_error *err)
{
    if (len != PDQM_HASH_HEX_LEN)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a PDQ hash is 64 hex characters, not %zu", len);
    pdqm_hash256 h = {{0, 0, 0, 0}};
    for (size_t i = 0; i < PDQM_HASH_HEX_LEN; i++) {
        int v = hex_value(hex[i]);
        if (v < 0) {
            unsigned char c = (unsigned char)hex[i];
            if (c >= 0x20 && c < 0x7f)
                return pdqm_error_set(err, PDQM_ERR_INVALID,
                    "'%c' at position %zu of a hash is not a hex digit",
                    (char)c, i + 1);
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                "byte 0x%02x at position %zu of a hash is not a hex digit",
                c, i + 1);
        }
        /* Character i holds bits 255-4i .. 252-4i. */
        int word = 3 - (int)(i / 16);
        int shift = 60 - 4 * (int)(i % 16);
        h.w[word] |= (uint64_t)v << shift;
    }
    *out = h;
    return PDQM_OK;
}

void pdqm_hash256_to_hex(const pdqm_hash256 *h, char out[PDQM_HASH_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < PDQM_HASH_HEX_LEN; i++) {
        int word = 3 - i / 16;
        int shift = 60 - 4 * (i % 16);
        out[i] = digits[(h->w[word] >> shift) & 0xf];
    }
    out[PDQM_HASH_HEX_LEN] = '\0';
}

int pdqm_hash256_weight(const pdqm_hash256 *h)
{
    return __builtin_popcountll(h->w[0]) + __builtin_popcountll(h->w[1]) +
           __builtin_popcountll(h->w[2]) + __builtin_popcountll(h->w[3]);
}
