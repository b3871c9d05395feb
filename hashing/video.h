/*
 * video.h - vPDQ: PDQ hashes of video frames, as Meta's vPDQ computes them.
 *
 * FFmpeg decodes the first video stream; libswscale converts each frame to
 * RGB24 at its own size with SWS_AREA; each selected frame is hashed by the
 * PDQ core on its 3-channel path without the 512 pre-shrink.  Frame numbers
 * count the decoder's output frames from 0; timestamps are frame / fps in
 * single precision, fps being the stream's average frame rate.  (See
 * spec/VPDQ.md.)  One difference on purpose: the decoder is always drained
 * at the end, where the reference loses the last frames of a file whose
 * video is not its first stream.
 *
 * Frames are handed to a callback as they are hashed: nothing holds more
 * than a couple of frames, whatever the video's length.
 */
#ifndef PDQM_VIDEO_H
#define PDQM_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "hash256.h"

#define PDQM_VIDEO_DEFAULT_MAX_BYTES ((size_t)512 << 20)   /* 512 MiB */
#define PDQM_VIDEO_DEFAULT_MAX_SECONDS (4.0 * 3600)         /* of video */
#define PDQM_VIDEO_DEFAULT_MAX_FRAMES 1000000u              /* decoded */
#define PDQM_VIDEO_DEFAULT_MAX_PIXELS ((uint64_t)8192 * 4320) /* a frame: 8K */
#define PDQM_VIDEO_DEFAULT_MAX_WALL 900.0                   /* seconds of work */

/* Limits on one video; fill with pdqm_video_limits_default() first. */
typedef struct pdqm_video_limits {
    size_t max_bytes;          /* encoded size */
    double max_seconds;        /* duration, by the container or by frames decoded */
    uint32_t max_frames;       /* frames decoded */
    uint64_t max_pixels;       /* width * height of a frame */
    double max_wall_seconds;   /* time spent decoding and hashing */
} pdqm_video_limits;

void pdqm_video_limits_default(pdqm_video_limits *limits);

typedef struct pdqm_video_frame {
    uint32_t frame;            /* 0-based decoder output index */
    uint32_t sample;           /* frames hashed as one sample of several
                                  (pdqm_video_hash()'s burst) share it,
                                  1-based; 0: the frame is a sample alone */
    double timestamp;          /* frame / fps, computed in float as vPDQ does */
    pdqm_hash256 hash;
    int quality;
    const pdqm_hash256 *dihedral;  /* with PDQM_VIDEO_DIHEDRAL: the frame's 8
                                      orientations (pdq.h's order, one DCT),
                                      valid while it is handed over; else NULL */
    int barred;                /* with PDQM_VIDEO_BARS: the frame has uniform
                                  bars (bars.h), and then the hashes of the
                                  picture with its bars cut (PDQM_CUT_*): the
                                  top and bottom ones only, the left and
                                  right ones only, and all (a picture that
                                  had bars of its own on one axis, given
                                  more on the other, is found by one cut);
                                  a cut of no bars is the frame's hash */
    pdqm_hash256 inner[3];
    int inner_quality[3];
} pdqm_video_frame;

enum { PDQM_CUT_ROWS = 0, PDQM_CUT_COLUMNS = 1, PDQM_CUT_ALL = 2, PDQM_CUTS = 3 };

typedef struct pdqm_video_info {
    int width;                 /* of the frames hashed, pixels */
    int height;
    double fps;                /* average frame rate */
    double duration;           /* seconds: frames decoded / fps */
    uint32_t frames_decoded;    /* frames counted, up to where decoding went */
    uint32_t frames_hashed;
    uint32_t frames_skipped;    /* of those, frames a sampled decoding did not
                                   decode: no sampled frame needed them */
    uint32_t segments;         /* runs of packets decoded apart, on every core
                                  (cut at gaps and at key frames that close
                                  their groups); 0: decoded in one pass */
    const char *codec;         /* FFmpeg's short name: static storage */
} pdqm_video_info;

/* Called for each hashed frame, in order, from one thread at a time, not
 * always the caller's (frames are hashed beside the decoder), and never
 * after pdqm_video_hash() returns; return 0 to go on, anything else to
 * stop (pdqm_video_hash() then returns PDQM_OK with what was done). */
typedef int (*pdqm_video_fn)(void *arg, const pdqm_video_frame *frame);

/* Flags for pdqm_video_hash(). */
#define PDQM_VIDEO_DIHEDRAL 0x1u   /* fill each frame's dihedral */
#define PDQM_VIDEO_BARS     0x2u   /* find bars, and hash inside them */
#define PDQM_VIDEO_DECODE_ALL 0x4u /* decode every frame, in one pass, all the
                                      same (the hashes are the same: for tests
                                      and benchmarks of the faster way) */

/* Hash the video in len bytes at data, one sample every `interval` seconds
 * (0: every frame), calling fn for each frame hashed.  A sample is one
 * frame, or with burst > 1 that many consecutive frames (vPDQ's frame and
 * the burst - 1 after it, sharing a `sample` number): on fast-moving video
 * one of them is likelier to be near a stored frame.  info (may be NULL) is filled as
 * far as decoding went.  limits NULL means the defaults.
 * Errors: PDQM_ERR_INVALID (empty input, a negative interval, a burst over
 * PDQM_VIDEO_MAX_BURST),
 * PDQM_ERR_UNSUPPORTED (no video stream, or not a format FFmpeg reads),
 * PDQM_ERR_DECODE (corrupt data), PDQM_ERR_TOO_LARGE (over a limit),
 * PDQM_ERR_NOMEM, PDQM_ERR_INTERNAL. */
#define PDQM_VIDEO_MAX_BURST 60
pdqm_status pdqm_video_hash(const void *data, size_t len, const pdqm_video_limits *limits,
                            double interval, unsigned burst, unsigned flags, pdqm_video_fn fn,
                            void *arg, pdqm_video_info *info, pdqm_error *err);

/* True when the bytes look like a video FFmpeg can open (for telling
 * videos from images by content). */
int pdqm_video_probe(const void *data, size_t len);

#endif
