/*
 * fuzz_video.c - video bytes through our decode path (libavformat over
 * memory, libavcodec, libswscale) and vPDQ, with tight limits so that
 * each input costs little.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../hashing/media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pdqm_video_limits limits;
    pdqm_video_limits_default(&limits);
    limits.max_pixels = 640 * 480;
    limits.max_frames = 64;
    limits.max_seconds = 2;
    limits.max_wall_seconds = 5;
    /* Every frame, then a sample every 0.1 s (the sampled decoding, which
     * reads the packets ahead and decodes only what samples need). */
    static const double intervals[] = { 0, 0.1 };
    for (size_t k = 0; k < sizeof intervals / sizeof intervals[0]; k++) {
        pdqm_video_hashes out;
        pdqm_error err;
        if (pdqm_hash_video_bytes(data, size, &limits, intervals[k], 1, PDQM_MEDIA_DIGESTS, &out,
                                  &err) != PDQM_OK)
            continue;
        if (out.count > limits.max_frames)
            __builtin_trap();
        for (size_t i = 0; i < out.count; i++)
            if (out.frames[i].quality < 0 || out.frames[i].quality > 100 ||
                (i > 0 && out.frames[i].frame <= out.frames[i - 1].frame))
                __builtin_trap();
        pdqm_video_hashes_free(&out);
    }
    return 0;
}
