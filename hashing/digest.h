/*
 * digest.h - SHA-256 and MD5 of media bytes, the exact-match signals.
 *
 * Hash lists from NCMEC and StopNCII carry MD5; SHA-256 is what pdqmatch
 * keys files by.  Both come from FFmpeg's libavutil.
 */
#ifndef PDQM_DIGEST_H
#define PDQM_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct pdqm_digests {
    char sha256[65];   /* lower-case hex, NUL-terminated */
    char md5[33];
} pdqm_digests;

/* Digest len bytes at data into *out.  Returns PDQM_ERR_NOMEM only. */
pdqm_status pdqm_digest(const void *data, size_t len, pdqm_digests *out,
                        pdqm_error *err);

#endif
