/*
 * media.h - from media bytes (a file, or an HTTP body) to hashes.
 *
 * The one way through for callers that do not care how a format is
 * decoded: bytes in, the PDQ hash, its quality, the dihedral hashes when
 * asked, and the SHA-256 and MD5 of the bytes when asked.
 */
#ifndef PDQM_MEDIA_H
#define PDQM_MEDIA_H

#include <stddef.h>

#include "digest.h"
#include "error.h"
#include "image.h"
#include "pdq.h"
#include "video.h"

/* Flags for the functions below. */
#define PDQM_MEDIA_DIHEDRAL 0x1u   /* fill pdq.dihedral */
#define PDQM_MEDIA_DIGESTS  0x2u   /* fill digests */
#define PDQM_MEDIA_BARS     0x4u   /* video: find each frame's bars (bars.h) */

typedef struct pdqm_image_hash {
    pdqm_pdq pdq;            /* hash, quality, dihedrals */
    int width;               /* of the stored image, pixels */
    int height;
    const char *format;      /* "jpeg", "png", ...: static storage */
    pdqm_digests digests;    /* with PDQM_MEDIA_DIGESTS */
} pdqm_image_hash;

/* Hash the image in len bytes at data into *out.  limits NULL means the
 * defaults.  Errors are those of pdqm_image_decode(). */
pdqm_status pdqm_hash_image_bytes(const void *data, size_t len,
                                  const pdqm_image_limits *limits,
                                  unsigned flags, pdqm_image_hash *out,
                                  pdqm_error *err);

/* The same for the file at path (read whole, up to limits->max_bytes);
 * adds the errors of pdqm_read_file(). */
pdqm_status pdqm_hash_image_file(const char *path,
                                 const pdqm_image_limits *limits,
                                 unsigned flags, pdqm_image_hash *out,
                                 pdqm_error *err);

/* Image or video?  Told from the content, never from a file name. */
typedef enum pdqm_media_kind {
    PDQM_MEDIA_IMAGE = 0,
    PDQM_MEDIA_VIDEO = 1
} pdqm_media_kind;

pdqm_media_kind pdqm_media_sniff(const void *data, size_t len);

/* The frames of a video and what describes it. */
typedef struct pdqm_video_hashes {
    pdqm_video_frame *frames;   /* owned: pdqm_video_hashes_free(); with
                                   PDQM_MEDIA_DIHEDRAL each frame's dihedral
                                   points into `dihedral` */
    pdqm_hash256 *dihedral;     /* 8 a frame, with PDQM_MEDIA_DIHEDRAL */
    size_t count;
    pdqm_video_info info;
    pdqm_digests digests;       /* with PDQM_MEDIA_DIGESTS */
} pdqm_video_hashes;

/* Hash every frame (interval 0) or a sample of burst frames every interval
 * seconds into *out, which holds them all (at most limits->max_frames).
 * Errors are those of pdqm_video_hash(). */
pdqm_status pdqm_hash_video_bytes(const void *data, size_t len,
                                  const pdqm_video_limits *limits, double interval,
                                  unsigned burst, unsigned flags, pdqm_video_hashes *out,
                                  pdqm_error *err);

void pdqm_video_hashes_free(pdqm_video_hashes *v);

#endif
