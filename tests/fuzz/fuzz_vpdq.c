/*
 * fuzz_vpdq.c - reference vPDQ hash files (FRAME,QUALITY,HASH,TIMESTAMP
 * lines), as `pdqmatch index --vpdq-list` reads them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../hashing/hashlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t start = 0;
    while (start <= size) {
        const char *nl = memchr(text + start, '\n', size - start);
        size_t len = nl ? (size_t)(nl - (text + start)) : size - start;
        pdqm_video_frame f;
        pdqm_error err;
        if (pdqm_vpdq_line(text + start, len, &f, &err) == PDQM_OK &&
            (f.quality < 0 || f.quality > 100 || !(f.timestamp >= 0)))
            __builtin_trap();   /* a line accepted must be in range */
        if (nl == NULL)
            break;
        start += len + 1;
    }
    return 0;
}
