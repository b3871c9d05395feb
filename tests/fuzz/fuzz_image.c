/*
 * fuzz_image.c - image bytes through our decode path (libvips from memory,
 * the loaders we allow, the pixel limit on the header) and PDQ.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../hashing/media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready = 0;
    if (!ready) {
        pdqm_error err;
        if (pdqm_image_init(&err) != PDQM_OK)
            abort();
        ready = 1;
    }
    pdqm_image_limits limits;
    pdqm_image_limits_default(&limits);
    limits.max_pixels = 4000000;   /* bombs are refused from the header */
    limits.max_seconds = 5;        /* slow decodes give up well inside the
                                      fuzzer's 25 s timeout */
    pdqm_image_hash out;
    pdqm_error err;
    if (pdqm_hash_image_bytes(data, size, &limits, PDQM_MEDIA_DIHEDRAL | PDQM_MEDIA_DIGESTS,
                              &out, &err) == PDQM_OK &&
        (out.pdq.quality < 0 || out.pdq.quality > 100 || out.width <= 0 || out.height <= 0 ||
         (uint64_t)out.width * (uint64_t)out.height > limits.max_pixels))
        __builtin_trap();
    return 0;
}
