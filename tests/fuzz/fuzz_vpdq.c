/*
 * fuzz_vpdq.c - reference vPDQ hash files (FRAME,QUALITY,HASH,TIMESTAMP
 * lines), as `pdqmatch index --vpdq-list` reads them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../hashing/hashlist.h"
#include "lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lines it = fuzz_lines_of(data, size);
    const char *line;
    size_t len;
    while (fuzz_next_line(&it, &line, &len)) {
        pdqm_video_frame f;
        pdqm_error err;
        if (pdqm_vpdq_line(line, len, &f, &err) == PDQM_OK &&
            (f.quality < 0 || f.quality > 100 || !(f.timestamp >= 0)))
            __builtin_trap();   /* a line accepted must be in range */
    }
    return 0;
}
