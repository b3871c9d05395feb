/*
 * fuzz_hashlist.c - hash lists, as partners send them: the input is a file
 * of lines fed to one parser (so a header line shapes what follows), and
 * each line is also tried as a bare hex hash.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../hashing/hash256.h"
#include "../../hashing/hashlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pdqm_hashlist *p = pdqm_hashlist_new();
    if (p == NULL)
        return 0;
    const char *text = (const char *)data;
    size_t start = 0;
    while (start <= size) {
        const char *nl = memchr(text + start, '\n', size - start);
        size_t len = nl ? (size_t)(nl - (text + start)) : size - start;
        pdqm_hashlist_row row;
        int got = 0;
        pdqm_error err;
        if (pdqm_hashlist_line(p, text + start, len, &row, &got, &err) == PDQM_OK && got) {
            /* What a row gives must be usable: a quality in range, strings
             * that end. */
            if (row.quality < -1 || row.quality > 100)
                __builtin_trap();
            if (row.content_id)
                (void)strlen(row.content_id);
            if (row.metadata)
                (void)strlen(row.metadata);
        }
        pdqm_hash256 h;
        if (pdqm_hash256_from_hex(text + start, len, &h, &err) == PDQM_OK) {
            char hex[65];
            pdqm_hash256_to_hex(&h, hex);
            pdqm_hash256 again;
            if (pdqm_hash256_from_hex(hex, 64, &again, NULL) != PDQM_OK ||
                memcmp(&h, &again, sizeof h) != 0)
                __builtin_trap();   /* hex must round-trip */
        }
        if (nl == NULL)
            break;
        start += len + 1;
    }
    pdqm_hashlist_free(p);
    return 0;
}
