/*
 * digest.c - SHA-256 and MD5 through libavutil.
 */
#include "digest.h"

#include <libavutil/md5.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>

#include "av_lazy.h"

static void to_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * n] = '\0';
}

pdqm_status pdqm_digest(const void *data, size_t len, pdqm_digests *out,
                        pdqm_error *err)
{
    uint8_t sha[32], md5[16];
    pdqm_status st = pdqm_av_load(err);
    if (st != PDQM_OK)
        return st;
    struct AVSHA *ctx = av_sha_alloc();
    if (ctx == NULL || av_sha_init(ctx, 256) != 0) {
        av_free(ctx);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for SHA-256");
    }
    av_sha_update(ctx, data, len);
    av_sha_final(ctx, sha);
    av_free(ctx);
    av_md5_sum(md5, data, len);
    to_hex(sha, sizeof sha, out->sha256);
    to_hex(md5, sizeof md5, out->md5);
    return PDQM_OK;
}
