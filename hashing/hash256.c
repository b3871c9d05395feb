/*
 * hash256.c - hex text <-> 256-bit hash.
 */
#include "hash256.h"

/* Hex digit values, -1 for every other byte. */
static const signed char hex_values[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7,
    ['7'] = 8, ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13,
    ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13,
    ['D'] = 14, ['E'] = 15, ['F'] = 16,
};   /* value + 1, so that the zero default means "not a digit" */

static inline int hex_value(char c)
{
    return hex_values[(unsigned char)c] - 1;
}

pdqm_status pdqm_hash256_from_hex(const char *hex, size_t len,
                                  pdqm_hash256 *out, pdqm_error *err)
{
    if (len != PDQM_HASH_HEX_LEN)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a PDQ hash is 64 hex characters, not %zu", len);
    pdqm_hash256 h = {{0, 0, 0, 0}};
    for (int word = 0; word < 4; word++) {
        /* Characters 16*word.. hold the bits of w[3 - word], high first. */
        uint64_t w = 0;
        int bad = 0;
        for (int i = 0; i < 16; i++) {
            int v = hex_value(hex[16 * word + i]);
            bad |= v;
            w = w << 4 | (uint64_t)(v & 0xf);
        }
        h.w[3 - word] = w;
        if (bad >= 0)
            continue;
        /* Find the offending character for the message. */
        for (size_t i = 0; i < PDQM_HASH_HEX_LEN; i++) {
            if (hex_value(hex[i]) >= 0)
                continue;
            unsigned char c = (unsigned char)hex[i];
            if (c >= 0x20 && c < 0x7f)
                return pdqm_error_set(err, PDQM_ERR_INVALID,
                    "'%c' at position %zu of a hash is not a hex digit",
                    (char)c, i + 1);
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                "byte 0x%02x at position %zu of a hash is not a hex digit",
                c, i + 1);
        }
    }
    *out = h;
    return PDQM_OK;
}

void pdqm_hash256_to_hex(const pdqm_hash256 *h, char out[PDQM_HASH_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    /* Characters 16*k.. are the bits of w[3 - k], high first: each word
     * from its low end, with no shift that depends on the position. */
    for (int k = 0; k < 4; k++) {
        uint64_t w = h->w[3 - k];
        for (int i = 15; i >= 0; i--) {
            out[16 * k + i] = digits[w & 0xf];
            w >>= 4;
        }
    }
    out[PDQM_HASH_HEX_LEN] = '\0';
}

int pdqm_hash256_weight(const pdqm_hash256 *h)
{
    return __builtin_popcountll(h->w[0]) + __builtin_popcountll(h->w[1]) +
           __builtin_popcountll(h->w[2]) + __builtin_popcountll(h->w[3]);
}
