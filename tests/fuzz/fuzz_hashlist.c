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
#include "lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pdqm_hashlist *p = pdqm_hashlist_new();
    if (p == NULL)
        return 0;
    fuzz_lines it = fuzz_lines_of(data, size);
    const char *line;
    size_t len;
    while (fuzz_next_line(&it, &line, &len)) {
        pdqm_hashlist_row row;
        int got = 0;
        pdqm_error err;
        if (pdqm_hashlist_line(p, line, len, &row, &got, &err) == PDQM_OK && got) {
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
        if (pdqm_hash256_from_hex(line, len, &h, &err) == PDQM_OK) {
            char hex[65];
            pdqm_hash256_to_hex(&h, hex);
            pdqm_hash256 again;
            if (pdqm_hash256_from_hex(hex, 64, &again, NULL) != PDQM_OK ||
                memcmp(&h, &again, sizeof h) != 0)
                __builtin_trap();   /* hex must round-trip */
        }
    }
    pdqm_hashlist_free(p);
    return 0;
}
