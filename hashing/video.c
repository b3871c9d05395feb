/*
 * video.c - vPDQ frame hashes with libavformat, libavcodec and libswscale.
 *
 * The bytes are read through a custom AVIOContext over memory, so files and
 * request bodies take one path.  Limits are checked before any frame is
 * decoded where the container tells (size, frame size, duration) and again
 * as frames come (count, decoded duration, wall time).
 */
#define _POSIX_C_SOURCE 200809L
#include "video.h"

#include "bars.h"

#include "clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>

#include "av_lazy.h"

#include "pdq.h"

#define IO_BUFFER 65536

void pdqm_video_limits_default(pdqm_video_limits *limits)
{
    limits->max_bytes = PDQM_VIDEO_DEFAULT_MAX_BYTES;
    limits->max_seconds = PDQM_VIDEO_DEFAULT_MAX_SECONDS;
    limits->max_frames = PDQM_VIDEO_DEFAULT_MAX_FRAMES;
    limits->max_pixels = PDQM_VIDEO_DEFAULT_MAX_PIXELS;
    limits->max_wall_seconds = PDQM_VIDEO_DEFAULT_MAX_WALL;
}

/* FFmpeg logs to stderr by default; the library never prints. */
static void quiet_log(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl; (void)level; (void)fmt; (void)vl;
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void silence_ffmpeg(void)
{
    av_log_set_callback(quiet_log);
}

/* ------------------------------------------------------------------ */
/* Reading from memory                                                  */

typedef struct mem_reader {
    const uint8_t *data;
    size_t len, pos;
    double deadline;       /* CLOCK_MONOTONIC seconds */
} mem_reader;

static int mem_read(void *opaque, uint8_t *buf, int size)
{
    mem_reader *r = opaque;
    if (r->pos >= r->len)
        return AVERROR_EOF;
    size_t n = r->len - r->pos;
    if (n > (size_t)size)
        n = (size_t)size;
    memcpy(buf, r->data + r->pos, n);
    r->pos += n;
    return (int)n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence)
{
    mem_reader *r = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return (int64_t)r->len;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)r->pos; break;
    case SEEK_END: base = (int64_t)r->len; break;
    default: return AVERROR(EINVAL);
    }
    int64_t to = base + offset;
    if (to < 0 || to > (int64_t)r->len)
        return AVERROR(EINVAL);
    r->pos = (size_t)to;
    return to;
}

/* Demuxing stops at the wall-time limit too (a hostile container can make
 * probing slow). */
static int past_deadline(void *opaque)
{
    const mem_reader *r = opaque;
    return pdqm_monotonic_seconds() > r->deadline;
}

/* ------------------------------------------------------------------ */

static pdqm_status av_failure(pdqm_error *err, pdqm_status status, const char *what, int averr)
{
    char text[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(averr, text, sizeof text);
    return pdqm_error_set(err, status, "%s (%s)", what, text);
}

int pdqm_video_probe(const void *data, size_t len)
{
    if (len == 0 || pdqm_av_load(NULL) != PDQM_OK)
        return 0;
    pthread_once(&log_once, silence_ffmpeg);
    /* av_probe_input_format wants AVPROBE_PADDING_SIZE zero bytes after. */
    size_t n = len < 1 << 20 ? len : 1 << 20;
    uint8_t *buf = calloc(1, n + AVPROBE_PADDING_SIZE);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, n);
    AVProbeData pd = { .filename = "", .buf = buf, .buf_size = (int)n, .mime_type = NULL };
    int score = 0;
    const AVInputFormat *f = av_probe_input_format2(&pd, 1, &score);
    free(buf);
    /* Image demuxers (image2, png_pipe, ...) also probe: not videos. */
    if (f == NULL || (f->flags & AVFMT_NOFILE))
        return 0;
    if (strstr(f->name, "_pipe") || strcmp(f->name, "image2") == 0 || strcmp(f->name, "gif") == 0 ||
        strcmp(f->name, "webp") == 0)
        return 0;
    return score >= AVPROBE_SCORE_EXTENSION / 2;
}

/* The hashes of px with its bars (inside in) cut, into f->inner. */
static pdqm_status hash_cuts(const pdqm_pixels *px, const pdqm_rect *in, const pdqm_pdq *whole,
                             pdqm_video_frame *f, pdqm_error *err)
{
    const pdqm_rect cuts[PDQM_CUTS] = {
        [PDQM_CUT_ROWS] = { 0, in->y, px->width, in->height },
        [PDQM_CUT_COLUMNS] = { in->x, 0, in->width, px->height },
        [PDQM_CUT_ALL] = *in,
    };
    for (int k = 0; k < PDQM_CUTS; k++) {
        const pdqm_rect *r = &cuts[k];
        pdqm_pdq p = *whole;
        if (r->width != px->width || r->height != px->height) {
            if (k == PDQM_CUT_ALL && (r->width == px->width || r->height == px->height)) {
                /* Bars on one axis only: the same cut as that axis's. */
                int same = r->width == px->width ? PDQM_CUT_ROWS : PDQM_CUT_COLUMNS;
                f->inner[k] = f->inner[same];
                f->inner_quality[k] = f->inner_quality[same];
                continue;
            }
            pdqm_pixels sub = { px->data + (size_t)r->y * px->stride + (size_t)r->x * 3,
                                r->width, r->height, 3, px->stride };
            pdqm_status st = pdqm_pdq_hash(&sub, PDQM_PDQ_NO_PRESHRINK, &p, err);
            if (st != PDQM_OK)
                return st;
        }
        f->inner[k] = p.hash;
        f->inner_quality[k] = p.quality;
    }
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* The hashing half: sampled frames are converted, hashed and handed to
 * fn on a thread of their own, in order, while the decoder goes on (at
 * 720p a frame's conversion and hash cost about as much as decoding
 * several frames, and on the caller's thread they held the decoder up).
 * At most QUEUE_DEPTH frames wait: references to the decoder's own
 * buffers, not copies. */

enum { QUEUE_DEPTH = 2 };

typedef struct job {
    AVFrame *frame;
    uint32_t index;
} job;

/* How frames are hashed and numbered: set before the first frame,
 * read-only after. */
typedef struct hash_params {
    unsigned flags;
    int grouped;
    uint32_t frame_mod;
    float fps_f;
} hash_params;

/* A frame converted and hashed, as fn is handed it, with the size and
 * format it was decoded in.  vf.dihedral points into the struct itself. */
typedef struct hashed {
    pdqm_video_frame vf;
    pdqm_hash256 dihedral[PDQM_DIHEDRAL_COUNT];
    int w, h, fmt;
    pdqm_status st;              /* not PDQM_OK: the hashing failed */
    AVFrame *frame;              /* not NULL: frame number vf.frame, for the
                                    caller to hash (decode_segments()) */
} hashed;

/* A scaler to RGB and its frame, made for a frame's size and format and
 * remade when a frame's differ (the hashing side's is made once: every
 * frame it gets has the first one's, see frame_shape()). */
typedef struct scaler {
    struct SwsContext *sws;
    AVFrame *rgb;
    int w, h, fmt;
} scaler;

static int scaler_fit(scaler *sc, const AVFrame *frame)
{
    if (sc->sws != NULL && frame->width == sc->w && frame->height == sc->h &&
        frame->format == sc->fmt)
        return 0;
    sws_freeContext(sc->sws);
    av_frame_unref(sc->rgb);
    sc->w = frame->width;
    sc->h = frame->height;
    sc->fmt = frame->format;
    sc->sws = sws_getContext(sc->w, sc->h, (enum AVPixelFormat)sc->fmt, sc->w, sc->h,
                             AV_PIX_FMT_RGB24, SWS_AREA, NULL, NULL, NULL);
    sc->rgb->width = sc->w;
    sc->rgb->height = sc->h;
    sc->rgb->format = AV_PIX_FMT_RGB24;
    if (sc->sws == NULL || av_frame_get_buffer(sc->rgb, 0) < 0) {
        sws_freeContext(sc->sws);
        sc->sws = NULL;
        return -1;
    }
    return 0;
}

static void scaler_free(scaler *sc)
{
    sws_freeContext(sc->sws);
    sc->sws = NULL;
    av_frame_free(&sc->rgb);
}

/* A frame over the pixel limit, or of no size. */
static int too_large(const pdqm_video_limits *limits, int w, int h)
{
    return (uint64_t)w * (uint64_t)h > limits->max_pixels || w <= 0 || h <= 0;
}

/* Convert frame (number index) to RGB with sc, fitted to it, and hash it
 * into *out. */
static pdqm_status hash_frame(const hash_params *p, const scaler *sc, const AVFrame *frame,
                              uint32_t index, hashed *out, pdqm_error *err)
{
    const AVFrame *rgb = sc->rgb;
    sws_scale(sc->sws, (const uint8_t *const *)frame->data, frame->linesize, 0, rgb->height,
              rgb->data, rgb->linesize);
    pdqm_pixels px = { rgb->data[0], rgb->width, rgb->height, 3, (size_t)rgb->linesize[0] };
    pdqm_pdq pdq;
    unsigned pdq_flags = PDQM_PDQ_NO_PRESHRINK;
    if (p->flags & PDQM_VIDEO_DIHEDRAL)
        pdq_flags |= PDQM_PDQ_DIHEDRAL;
    out->st = pdqm_pdq_hash(&px, pdq_flags, &pdq, err);
    if (out->st != PDQM_OK)
        return out->st;
    out->vf = (pdqm_video_frame){
        .frame = index,
        .sample = p->grouped ? index / p->frame_mod + 1 : 0,
        .timestamp = (double)((float)index / p->fps_f),
        .hash = pdq.hash,
        .quality = pdq.quality,
    };
    if (p->flags & PDQM_VIDEO_DIHEDRAL) {
        memcpy(out->dihedral, pdq.dihedral, sizeof out->dihedral);
        out->vf.dihedral = out->dihedral;
    }
    pdqm_rect in;
    if ((p->flags & PDQM_VIDEO_BARS) && pdqm_find_bars(&px, &in)) {
        out->vf.barred = 1;
        out->st = hash_cuts(&px, &in, &pdq, &out->vf, err);
    }
    return out->st;
}

typedef struct hasher {
    /* Set before the first job, read-only after. */
    scaler sc;
    hash_params p;
    pdqm_video_fn fn;
    void *arg;
    pdqm_video_info *info;    /* frames_hashed: the hashing side's only */

    pthread_mutex_t mu;
    pthread_cond_t changed;
    job queue[QUEUE_DEPTH];
    unsigned head, n;
    int closed;               /* no more jobs will come */
    int stopped;              /* fn asked to stop, or hashing failed */
    pdqm_status st;           /* the hashing side's failure */
    pdqm_error err;
    int started;              /* the thread was tried, at the first job */
    int running;              /* the thread runs */
    pthread_t thread;
} hasher;

/* Convert, hash and hand over one frame: 0 to go on, 1 when fn asks to
 * stop, -1 on a failure (*st, *err: the caller records it, see
 * hasher_record()). */
static int hash_one(hasher *h, const AVFrame *frame, uint32_t index, pdqm_status *st,
                    pdqm_error *err)
{
    hashed x;
    *st = hash_frame(&h->p, &h->sc, frame, index, &x, err);
    if (*st != PDQM_OK)
        return -1;
    h->info->frames_hashed++;
    return h->fn(h->arg, &x.vf) != 0 ? 1 : 0;
}

/* Record the outcome of a frame (h->mu held when the thread runs): the
 * first failure is kept, and a failure or fn's stop ends hashing. */
static void hasher_record(hasher *h, int rc, pdqm_status st, const pdqm_error *err)
{
    if (rc < 0 && h->st == PDQM_OK) {
        h->st = st;
        h->err = *err;
    }
    if (rc != 0)
        h->stopped = 1;
}

static void *hasher_main(void *arg)
{
    hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->n == 0 && !h->closed)
            pthread_cond_wait(&h->changed, &h->mu);
        if (h->n == 0)
            break;
        job j = h->queue[h->head];
        h->head = (h->head + 1) % QUEUE_DEPTH;
        h->n--;
        int stopped = h->stopped;
        pthread_cond_broadcast(&h->changed);   /* room for the decoder */
        pthread_mutex_unlock(&h->mu);
        pdqm_status st = PDQM_OK;
        pdqm_error err;
        int rc = stopped ? 1 : hash_one(h, j.frame, j.index, &st, &err);
        av_frame_free(&j.frame);
        pthread_mutex_lock(&h->mu);
        if (rc != 0 && !h->stopped)
            pthread_cond_broadcast(&h->changed);
        hasher_record(h, rc, st, &err);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Hand a frame to the hashing side (a new reference to it; on the
 * caller's thread when no thread could be started).  The thread starts
 * with the first frame: a video decoded in segments never needs it.
 * Returns 0, or nonzero once the hashing side has stopped. */
static int hasher_push(hasher *h, const AVFrame *frame, uint32_t index)
{
    pdqm_status st = PDQM_OK;
    pdqm_error err;
    if (!h->started) {
        h->started = 1;
        h->running = pthread_create(&h->thread, NULL, hasher_main, h) == 0;
    }
    if (!h->running) {
        if (!h->stopped)
            hasher_record(h, hash_one(h, frame, index, &st, &err), st, &err);
        return h->stopped;
    }
    AVFrame *ref = av_frame_clone(frame);
    pthread_mutex_lock(&h->mu);
    while (h->n == QUEUE_DEPTH && !h->stopped)
        pthread_cond_wait(&h->changed, &h->mu);
    int stopped = h->stopped;
    if (!stopped && ref == NULL) {
        st = pdqm_error_set(&err, PDQM_ERR_NOMEM, "out of memory for a video frame");
        hasher_record(h, -1, st, &err);
        stopped = 1;
    }
    if (!stopped) {
        h->queue[(h->head + h->n) % QUEUE_DEPTH] = (job){ ref, index };
        h->n++;
        pthread_cond_broadcast(&h->changed);
        ref = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    av_frame_free(&ref);
    return stopped;
}

static int hasher_stopped(hasher *h)
{
    if (!h->running)
        return h->stopped;
    pthread_mutex_lock(&h->mu);
    int stopped = h->stopped;
    pthread_mutex_unlock(&h->mu);
    return stopped;
}

/* No more frames: wait for the queued ones to be hashed. */
static void hasher_finish(hasher *h)
{
    if (!h->running)
        return;
    pthread_mutex_lock(&h->mu);
    h->closed = 1;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    h->running = 0;
}

/* ------------------------------------------------------------------ */
/* Decoding: every frame, or only what the sampled frames need          */

/* One decoding of a video: the demuxer, the decoder, the packets read
 * ahead, and where the frames go. */
typedef struct decode_run {
    AVFormatContext *fmt;
    int vi;                      /* the video stream */
    const AVCodec *codec;
    AVCodecContext *dec;
    mem_reader *reader;
    const pdqm_video_limits *limits;
    pdqm_video_info *info;
    hasher *h;
    AVFrame *frame;
    double fps;
    uint32_t frame_mod;          /* a sample every frame_mod frames ... */
    uint32_t per_sample;         /* ... of this many */
    uint32_t resume;             /* frames below this index were handed over */
    int shaped;                  /* the first frame hashed set: */
    int sws_w, sws_h, sws_fmt;
    /* The packets of the video stream read ahead (decode order), and
     * av_read_frame()'s status after the last of them. */
    AVPacket **pkts;
    size_t n_pkts, cap_pkts, next_pkt, pkt_bytes;
    int stored_all;              /* every packet is in pkts */
    int end_rc;
} decode_run;

static void packets_free(decode_run *r)
{
    for (size_t i = 0; i < r->n_pkts; i++)
        av_packet_free(&r->pkts[i]);
    free(r->pkts);
    r->pkts = NULL;
    r->n_pkts = r->cap_pkts = r->next_pkt = 0;
}

/* A decoder for the stream, threaded on every core, by frame and by slice
 * where the codec can: FFmpeg's decoders give the same pixels however
 * they are threaded (vPDQ itself uses slices only). */
static pdqm_status open_decoder(decode_run *r, const AVCodecParameters *par, pdqm_error *err)
{
    avcodec_free_context(&r->dec);
    r->dec = avcodec_alloc_context3(r->codec);
    if (r->dec == NULL || avcodec_parameters_to_context(r->dec, par) < 0)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a decoder");
    r->dec->thread_count = 0;
    r->dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    int rc = avcodec_open2(r->dec, r->codec, NULL);
    if (rc < 0)
        return av_failure(err, PDQM_ERR_DECODE, "cannot start the video decoder", rc);
    return PDQM_OK;
}

static int is_selected(const decode_run *r, uint32_t index)
{
    return index % r->frame_mod < r->per_sample;
}

/* Count the decoder's frame number index against the limits. */
static pdqm_status count_frame(decode_run *r, uint32_t index, pdqm_error *err)
{
    const pdqm_video_limits *limits = r->limits;
    pdqm_video_info *info = r->info;
    info->frames_decoded = index + 1;
    info->duration = (index + 1) / r->fps;
    if (index >= limits->max_frames)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "more than %u frames", limits->max_frames);
    if (info->duration > limits->max_seconds)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "more than %.0f seconds of video",
                              limits->max_seconds);
    if (pdqm_monotonic_seconds() > r->reader->deadline)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "decoding took over %.0f seconds",
                              limits->max_wall_seconds);
    return PDQM_OK;
}

/* The size and format of a frame to hash: the first one hashed sets them
 * (within the limits), and no later one may differ.  The reference never
 * changes its scaler, and a mid-stream change of size or format would have
 * swscale read outside the frame. */
static pdqm_status frame_shape(decode_run *r, int w, int h, int fmt, pdqm_error *err)
{
    if (!r->shaped) {
        if (too_large(r->limits, w, h))
            return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "decoded frames of %dx%d", w, h);
        r->sws_w = w;
        r->sws_h = h;
        r->sws_fmt = fmt;
        r->info->width = w;
        r->info->height = h;
        r->shaped = 1;
    } else if (w != r->sws_w || h != r->sws_h || fmt != r->sws_fmt) {
        return pdqm_error_set(err, PDQM_ERR_UNSUPPORTED,
                              "the frame size changes mid-stream (%dx%d to %dx%d)", r->sws_w,
                              r->sws_h, w, h);
    }
    return PDQM_OK;
}

/* The decoder's frame number index: count it against the limits and, when
 * it is sampled, hand it to the hashing side.  *stop is set when the
 * hashing side has stopped (fn asked to, or hashing failed). */
static pdqm_status take_frame(decode_run *r, const AVFrame *frame, uint32_t index, int *stop,
                              pdqm_error *err)
{
    *stop = 0;
    if (hasher_stopped(r->h)) {
        *stop = 1;
        return PDQM_OK;
    }
    pdqm_status st = count_frame(r, index, err);
    if (st != PDQM_OK || !is_selected(r, index) || index < r->resume)
        return st;
    st = frame_shape(r, frame->width, frame->height, frame->format, err);
    if (st != PDQM_OK)
        return st;
    /* The hashing side's scaler, made for the first frame before it is
     * handed over (frame_shape() keeps every later one the same). */
    if (scaler_fit(&r->h->sc, frame) != 0)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "cannot convert %dx%d frames", r->sws_w,
                              r->sws_h);
    if (hasher_push(r->h, frame, index) != 0)
        *stop = 1;
    r->resume = index + 1;
    return PDQM_OK;
}

/* The next packet of the video stream into pkt: the ones read ahead
 * first, then the demuxer's.  0, or av_read_frame()'s status. */
static int next_packet(decode_run *r, AVPacket *pkt)
{
    if (r->next_pkt < r->n_pkts)
        return av_packet_ref(pkt, r->pkts[r->next_pkt++]);
    if (r->stored_all)
        return r->end_rc;
    for (;;) {
        int rc = av_read_frame(r->fmt, pkt);
        if (rc < 0 || pkt->stream_index == r->vi)
            return rc;
        av_packet_unref(pkt);
    }
}

static pdqm_status read_failure(decode_run *r, int rc, pdqm_error *err)
{
    if (rc == AVERROR_EXIT)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "decoding took over %.0f seconds",
                              r->limits->max_wall_seconds);
    return av_failure(err, PDQM_ERR_DECODE, "truncated or corrupt video", rc);
}

/* Decode every frame, in order, numbering them as they come. */
static pdqm_status decode_all(decode_run *r, pdqm_error *err)
{
    AVPacket *pkt = av_packet_alloc();
    if (pkt == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory opening a video");
    r->next_pkt = 0;
    pdqm_status st = PDQM_OK;
    int eof = 0, rc = 0, stop = 0;
    uint32_t index = 0;
    while (st == PDQM_OK && !stop) {
        if (!eof) {
            rc = next_packet(r, pkt);
            if (rc == AVERROR_EOF) {
                eof = 1;
                rc = avcodec_send_packet(r->dec, NULL);   /* drain */
            } else if (rc < 0) {
                st = read_failure(r, rc, err);
                break;
            } else {
                rc = avcodec_send_packet(r->dec, pkt);
                av_packet_unref(pkt);
            }
            if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) {
                st = av_failure(err, PDQM_ERR_DECODE, "corrupt or truncated video data", rc);
                break;
            }
        }
        /* Every frame the decoder has ready. */
        for (;;) {
            rc = avcodec_receive_frame(r->dec, r->frame);
            if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
                break;
            if (rc < 0) {
                st = av_failure(err, PDQM_ERR_DECODE, "corrupt or truncated video data", rc);
                break;
            }
            st = take_frame(r, r->frame, index, &stop, err);
            av_frame_unref(r->frame);
            index++;
            if (st != PDQM_OK || stop)
                break;
        }
        if (eof && rc == AVERROR_EOF)
            break;
    }
    av_packet_free(&pkt);
    return st;
}

/* Read the video stream's packets ahead, up to the end, while they stay
 * within the limits (frames) and the input's size (a container may point
 * many packets at the same bytes).  Returns 1 when every packet was read
 * and the stream ended cleanly. */
static int read_ahead(decode_run *r, size_t input_len)
{
    for (;;) {
        AVPacket *pkt = av_packet_alloc();
        if (pkt == NULL)
            return 0;
        int rc = av_read_frame(r->fmt, pkt);
        if (rc < 0) {
            av_packet_free(&pkt);
            r->end_rc = rc;
            r->stored_all = 1;
            return rc == AVERROR_EOF;
        }
        if (pkt->stream_index != r->vi) {
            av_packet_free(&pkt);
            continue;
        }
        if (r->n_pkts == r->cap_pkts) {
            size_t cap = r->cap_pkts ? 2 * r->cap_pkts : 256;
            AVPacket **grown = realloc(r->pkts, cap * sizeof *grown);
            if (grown == NULL) {
                av_packet_free(&pkt);
                return 0;
            }
            r->pkts = grown;
            r->cap_pkts = cap;
        }
        r->pkts[r->n_pkts++] = pkt;
        r->pkt_bytes += (size_t)pkt->size;
        /* Past a limit: the decoding of every frame says which. */
        if (r->n_pkts > r->limits->max_frames || r->n_pkts / r->fps > r->limits->max_seconds ||
            r->pkt_bytes > input_len + ((size_t)1 << 20))
            return 0;
    }
}

/* Does the keyframe packet start a closed group of pictures, one that no
 * frame after it refers across?  Known for the codecs whose key frames
 * say so: an H.264 IDR picture, an HEVC IDR picture, a VP8, VP9 or AV1
 * key frame (each resets every reference). */
static int nal_length_size(const AVCodecParameters *par, int hevc)
{
    const uint8_t *x = par->extradata;
    if (x == NULL || x[0] != 1)
        return 0;   /* Annex B: start codes */
    if (!hevc)
        return par->extradata_size >= 7 ? (x[4] & 3) + 1 : -1;
    return par->extradata_size >= 23 ? (x[21] & 3) + 1 : -1;
}

static int is_idr(const AVCodecParameters *par, const AVPacket *pkt)
{
    const int hevc = par->codec_id == AV_CODEC_ID_HEVC;
    const int len_size = nal_length_size(par, hevc);
    const uint8_t *p = pkt->data, *end = pkt->data + pkt->size;
    if (len_size < 0 || p == NULL)
        return 0;
    while (p < end) {
        size_t n;
        if (len_size > 0) {
            if (end - p < len_size)
                return 0;
            n = 0;
            for (int i = 0; i < len_size; i++)
                n = n << 8 | *p++;
            if (n == 0 || n > (size_t)(end - p))
                return 0;
        } else {
            /* Annex B: the NAL unit after the next start code. */
            while (end - p >= 3 && !(p[0] == 0 && p[1] == 0 && p[2] == 1))
                p++;
            if (end - p < 4)
                return 0;
            p += 3;
            const uint8_t *q = p;
            while (end - q >= 3 && !(q[0] == 0 && q[1] == 0 && (q[2] == 1 || q[2] == 0)))
                q++;
            n = end - q >= 3 ? (size_t)(q - p) : (size_t)(end - p);
        }
        int type = hevc ? (p[0] >> 1) & 0x3f : p[0] & 0x1f;
        if (hevc ? type == 19 || type == 20 : type == 5)
            return 1;
        /* A coded slice that is not IDR: this picture is not one. */
        if (hevc ? type <= 21 : type >= 1 && type <= 5)
            return 0;
        p += n;
    }
    return 0;
}

static int closes_gop(const AVCodecParameters *par, const AVPacket *pkt)
{
    if (!(pkt->flags & AV_PKT_FLAG_KEY))
        return 0;
    switch (par->codec_id) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_HEVC:
        return is_idr(par, pkt);
    case AV_CODEC_ID_VP8:
    case AV_CODEC_ID_VP9:
    case AV_CODEC_ID_AV1:
        return 1;
    default:
        return 0;
    }
}

typedef struct planned {
    int64_t pts;
    uint32_t pos;     /* in decode order */
} planned;

static int by_pts(const void *a, const void *b)
{
    const planned *x = a, *y = b;
    return (x->pts > y->pts) - (x->pts < y->pts);
}

enum { SKIP = 0, SEND_NONREF = 1, SEND = 2 };

/* The frame number of a decoded frame, by its timestamp among the
 * packets' (sorted), or -1. */
static int64_t rank_of(const planned *sorted, size_t n, int64_t pts)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid].pts < pts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && sorted[lo].pts == pts ? (int64_t)lo : -1;
}

/* ------------------------------------------------------------------ */
/* Decoding the sent packets: segment by segment, on every core         */

/* Hashed frames a segment holds for the caller to hand over, at most: a
 * segment's worker waits when it is that far ahead of the caller (a
 * segment ahead of the one handed over waits for it: its ring holds all
 * of its frames unless it has more than this; 2 MB). */
enum { RING_MAX = 4096 };
/* With one worker, decoded frames waiting for the caller to hash them. */
enum { RING_FRAMES = 4 };

/* A run of packets sent without a gap: it starts at a key frame that
 * closes its group of pictures (or the first packet), so it decodes alone,
 * and its frames' numbers lie between the segments' before and after it.
 * Its worker decodes it and converts and hashes its sampled frames; the
 * caller hands them to fn in order, through a ring of slots. */
typedef struct segment {
    size_t first, end;           /* packets [first, end) */
    hashed *ring;                /* set by the worker that takes it */
    uint32_t ring_n;             /* its slots */
    uint32_t written, read;      /* frames put in the ring, taken out */
    uint32_t outputs;            /* frames that came out of the decoder */
    pdqm_error err;              /* of a hashed frame whose st is not OK */
    int state;                   /* SEG_* */
} segment;

enum {
    SEG_RUNNING = 0,
    SEG_DONE,                    /* decoded (or a frame's failure is in the ring) */
    SEG_REPLAN,                  /* the plan did not hold, or the run stopped */
    SEG_SLOW,                    /* past the wall-time limit */
};

typedef struct segment_run {
    decode_run *r;
    const AVCodecParameters *par;
    const planned *sorted;
    const int64_t *rank;
    const uint8_t *action;
    segment *seg;
    size_t n_seg;
    int threads_each;            /* the decoders' own threads */
    int caller_hashes;           /* one worker: the caller hashes its frames */
    pthread_mutex_t mu;
    pthread_cond_t changed;
    size_t next;                 /* the next segment to take */
    size_t delivered;            /* segments handed over */
    size_t window;               /* at most this many ahead of delivered */
    int stop;
} segment_run;

/* Convert and hash a sampled frame into the segment's next slot (or with
 * one worker, put a reference to it there), waiting for room.  0; 1 when
 * the slot holds a failure (the caller reports it); -1 when the run
 * stops. */
static int put_frame(segment_run *sr, segment *sg, scaler *sc, const AVFrame *frame,
                     uint32_t index)
{
    pthread_mutex_lock(&sr->mu);
    while (!sr->stop && sg->written - sg->read == sg->ring_n)
        pthread_cond_wait(&sr->changed, &sr->mu);
    int stop = sr->stop;
    pthread_mutex_unlock(&sr->mu);
    if (stop)
        return -1;
    /* The caller reads only slots below written: this one is ours. */
    hashed *x = &sg->ring[sg->written % sg->ring_n];
    x->w = frame->width;
    x->h = frame->height;
    x->fmt = frame->format;
    x->st = PDQM_OK;
    if (sr->caller_hashes) {
        x->vf.frame = index;
        x->frame = av_frame_clone(frame);
        if (x->frame == NULL)
            x->st = pdqm_error_set(&sg->err, PDQM_ERR_NOMEM, "out of memory for a video frame");
    } else if (too_large(sr->r->limits, x->w, x->h)) {
        /* Not for a scaler; the caller's frame_shape() says why. */
        x->st = pdqm_error_set(&sg->err, PDQM_ERR_TOO_LARGE, "decoded frames of %dx%d", x->w,
                               x->h);
    } else if (scaler_fit(sc, frame) != 0) {
        x->st = pdqm_error_set(&sg->err, PDQM_ERR_NOMEM, "cannot convert %dx%d frames", x->w,
                               x->h);
    } else {
        hash_frame(&sr->r->h->p, sc, frame, index, x, &sg->err);
    }
    int failed = x->st != PDQM_OK;   /* the slot is the caller's once written */
    pthread_mutex_lock(&sr->mu);
    sg->written++;
    pthread_cond_broadcast(&sr->changed);
    pthread_mutex_unlock(&sr->mu);
    return failed;
}

static void segment_free(segment *sg)
{
    for (uint32_t i = 0; sg->ring != NULL && i < sg->ring_n; i++)
        av_frame_free(&sg->ring[i].frame);
    free(sg->ring);
    sg->ring = NULL;
}

static int by_rank(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

/* Decode one segment with dec (reset first), hashing its sampled frames
 * as they come.  Every frame must come out in order and every sampled
 * frame sent must come out, the next one expected each time: else the
 * plan failed (2), found before a frame after the gap is handed over. */
static int decode_segment(segment_run *sr, segment *sg, AVCodecContext *dec, AVFrame *frame,
                          scaler *sc)
{
    decode_run *r = sr->r;
    avcodec_flush_buffers(dec);
    size_t n_send = 0;
    for (size_t i = sg->first; i < sg->end; i++)
        n_send += sr->action[i] == SEND;
    const size_t most = sr->caller_hashes ? RING_FRAMES : RING_MAX;
    sg->ring_n = n_send == 0 ? 1 : n_send < most ? (uint32_t)n_send : (uint32_t)most;
    sg->ring = calloc(sg->ring_n, sizeof *sg->ring);
    int64_t *sent = malloc((n_send + 1) * sizeof *sent);   /* their numbers, in order */
    if (sg->ring == NULL || sent == NULL) {
        free(sent);
        return SEG_REPLAN;
    }
    n_send = 0;
    for (size_t i = sg->first; i < sg->end; i++)
        if (sr->action[i] == SEND)
            sent[n_send++] = sr->rank[i];
    qsort(sent, n_send, sizeof *sent, by_rank);
    size_t expected = 0;
    int64_t last_rank = -1;
    int state = SEG_RUNNING;
    for (size_t i = sg->first; i <= sg->end && state == SEG_RUNNING; i++) {
        if (i < sg->end) {
            if (pdqm_monotonic_seconds() > r->reader->deadline) {
                state = SEG_SLOW;
                break;
            }
            dec->skip_frame = sr->action[i] == SEND ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
            int rc = avcodec_send_packet(dec, r->pkts[i]);
            if (rc < 0 && rc != AVERROR(EAGAIN))
                state = SEG_REPLAN;
        } else if (avcodec_send_packet(dec, NULL) < 0) {   /* drain */
            state = SEG_REPLAN;
        }
        while (state == SEG_RUNNING) {
            int rc = avcodec_receive_frame(dec, frame);
            if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
                break;
            if (rc < 0) {
                state = SEG_REPLAN;
                break;
            }
            int64_t rank = frame->pts == AV_NOPTS_VALUE
                               ? -1 : rank_of(sr->sorted, r->n_pkts, frame->pts);
            if (rank <= last_rank || (frame->flags & AV_FRAME_FLAG_CORRUPT)) {
                state = SEG_REPLAN;
            } else if (is_selected(r, (uint32_t)rank)) {
                if (expected == n_send || sent[expected] != rank)
                    state = SEG_REPLAN;   /* a sampled frame sent did not come out */
                else
                    switch (put_frame(sr, sg, sc, frame, (uint32_t)rank)) {
                    case 1: state = SEG_DONE; break;     /* the caller reports it */
                    case -1: state = SEG_REPLAN; break;  /* the run stopped */
                    default: break;
                    }
                expected++;
            }
            av_frame_unref(frame);
            last_rank = rank;
            sg->outputs++;
        }
    }
    free(sent);
    if (state == SEG_RUNNING)
        state = expected == n_send ? SEG_DONE : SEG_REPLAN;
    return state;
}

static void *segment_worker(void *arg)
{
    segment_run *sr = arg;
    AVCodecContext *dec = avcodec_alloc_context3(sr->r->codec);
    AVFrame *frame = av_frame_alloc();
    scaler sc = { .rgb = av_frame_alloc() };
    int ok = dec != NULL && frame != NULL && sc.rgb != NULL &&
             avcodec_parameters_to_context(dec, sr->par) >= 0;
    if (ok) {
        dec->thread_count = sr->threads_each;
        dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
        ok = avcodec_open2(dec, sr->r->codec, NULL) >= 0;
    }
    pthread_mutex_lock(&sr->mu);
    for (;;) {
        while (!sr->stop && sr->next < sr->n_seg && sr->next >= sr->delivered + sr->window)
            pthread_cond_wait(&sr->changed, &sr->mu);
        if (sr->stop || sr->next >= sr->n_seg)
            break;
        segment *sg = &sr->seg[sr->next++];
        pthread_mutex_unlock(&sr->mu);
        int state = ok ? decode_segment(sr, sg, dec, frame, &sc) : SEG_REPLAN;
        pthread_mutex_lock(&sr->mu);
        sg->state = state;
        pthread_cond_broadcast(&sr->changed);
    }
    pthread_mutex_unlock(&sr->mu);
    scaler_free(&sc);
    av_frame_free(&frame);
    avcodec_free_context(&dec);
    return NULL;
}

/* Hand one hashed frame of a segment to fn, as take_frame() and the
 * hashing side would have; a frame left to the caller is hashed here,
 * with ws.  *stop: fn asked to stop. */
static pdqm_status deliver(decode_run *r, segment *sg, hashed *x, scaler *sc, int *stop,
                           pdqm_error *err)
{
    uint32_t index = x->vf.frame;
    *stop = 0;
    pdqm_status st = count_frame(r, index, err);
    if (st == PDQM_OK)
        st = frame_shape(r, x->w, x->h, x->fmt, err);
    if (st == PDQM_OK && x->st == PDQM_OK && x->frame != NULL) {
        if (scaler_fit(sc, x->frame) != 0)
            st = pdqm_error_set(err, PDQM_ERR_NOMEM, "cannot convert %dx%d frames", x->w, x->h);
        else
            st = hash_frame(&r->h->p, sc, x->frame, index, x, err);
        av_frame_free(&x->frame);
        if (st != PDQM_OK)
            return st;
    }
    if (st == PDQM_OK && x->st != PDQM_OK) {
        st = x->st;
        if (err != NULL)
            *err = sg->err;
    }
    if (st != PDQM_OK)
        return st;
    r->resume = index + 1;
    r->info->frames_hashed++;
    if (r->h->fn(r->h->arg, &x->vf) != 0) {
        *stop = 1;
        pthread_mutex_lock(&r->h->mu);
        r->h->stopped = 1;
        pthread_mutex_unlock(&r->h->mu);
    }
    return PDQM_OK;
}

/* Decode the planned packets, a segment a worker and a worker a core, and
 * hand the hashed frames over in order.  cut marks the packets a segment
 * starts at although the one before is sent: key frames that close their
 * group of pictures.  Returns 0 when the plan did not hold (the caller
 * decodes everything from the first frame not handed over), 1 when done
 * (*st). */
static int decode_segments(decode_run *r, const AVCodecParameters *par, const planned *sorted,
                           const int64_t *rank, const uint8_t *action, const uint8_t *cut,
                           pdqm_status *st, pdqm_error *err)
{
    const size_t n = r->n_pkts;
    segment_run sr = { .r = r, .par = par, .sorted = sorted, .rank = rank, .action = action };
    for (size_t i = 0; i < n; i++)
        sr.n_seg += action[i] != SKIP && (i == 0 || action[i - 1] == SKIP || cut[i]);
    sr.seg = calloc(sr.n_seg + 1, sizeof *sr.seg);
    if (sr.seg == NULL)
        return 0;
    for (size_t i = 0, k = 0; i < n; i++)
        if (action[i] != SKIP) {
            if (i == 0 || action[i - 1] == SKIP || cut[i])
                sr.seg[k++].first = i;
            sr.seg[k - 1].end = i + 1;
        }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t workers = cores < 1 ? 1 : cores > 8 ? 8 : (size_t)cores;
    if (workers > sr.n_seg)
        workers = sr.n_seg;
    /* One worker: the decoder's own threads, and the frames hashed here
     * beside it; several: a thread each, hashing its own. */
    sr.threads_each = workers > 1 ? 1 : 0;
    sr.caller_hashes = workers == 1;
    sr.window = 2 * workers;
    pthread_mutex_init(&sr.mu, NULL);
    pthread_cond_init(&sr.changed, NULL);
    pthread_t threads[8];
    size_t started = 0;
    for (; started < workers; started++)
        if (pthread_create(&threads[started], NULL, segment_worker, &sr) != 0)
            break;
    int done = 0;
    uint32_t outputs = 0;
    *st = PDQM_OK;
    /* Without a worker (no thread could start), the caller decodes
     * everything (done stays 0). */
    for (size_t k = 0; k < sr.n_seg && started > 0 && !done; k++) {
        segment *sg = &sr.seg[k];
        for (;;) {
            pthread_mutex_lock(&sr.mu);
            while (sg->read == sg->written && sg->state == SEG_RUNNING)
                pthread_cond_wait(&sr.changed, &sr.mu);
            int have = sg->read < sg->written;
            pthread_mutex_unlock(&sr.mu);
            if (!have)
                break;   /* the segment ended: its state says how */
            int stop = 0;
            *st = deliver(r, sg, &sg->ring[sg->read % sg->ring_n], &r->h->sc, &stop, err);
            pthread_mutex_lock(&sr.mu);
            sg->read++;
            pthread_cond_broadcast(&sr.changed);
            pthread_mutex_unlock(&sr.mu);
            if (*st != PDQM_OK || stop) {
                done = 1;
                break;
            }
        }
        if (done)
            break;
        if (sg->state == SEG_SLOW) {
            *st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "decoding took over %.0f seconds",
                                 r->limits->max_wall_seconds);
            done = 1;
            break;
        }
        if (sg->state != SEG_DONE)
            break;   /* the plan did not hold: decode the rest */
        outputs += sg->outputs;
        segment_free(sg);
        pthread_mutex_lock(&sr.mu);
        sr.delivered = k + 1;
        pthread_cond_broadcast(&sr.changed);
        pthread_mutex_unlock(&sr.mu);
        if (k + 1 == sr.n_seg) {
            /* Every frame was counted, decoded or not. */
            r->info->frames_skipped = (uint32_t)n - outputs;
            r->info->frames_decoded = (uint32_t)n;
            r->info->duration = n / r->fps;
            r->info->segments = (uint32_t)sr.n_seg;
            done = 1;
        }
    }
    pthread_mutex_lock(&sr.mu);
    sr.stop = 1;
    pthread_cond_broadcast(&sr.changed);
    pthread_mutex_unlock(&sr.mu);
    for (size_t t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    for (size_t k = 0; k < sr.n_seg; k++)
        segment_free(&sr.seg[k]);
    free(sr.seg);
    pthread_mutex_destroy(&sr.mu);
    pthread_cond_destroy(&sr.changed);
    return done;
}

/* Decode only what the sampled frames need, when the stream allows it to
 * be known: every packet read ahead, each with its own timestamp.  A
 * frame's number is then its timestamp's rank, and a packet is
 *   - sent, when its frame is sampled;
 *   - sent with the decoder told to drop it unless other frames refer to
 *     it (AVDISCARD_NONREF), when it lies between the key frame before a
 *     sampled frame and that frame;
 *   - skipped, from the last sampled frame of a group of pictures to the
 *     next key frame that closes it (the decoder is drained and reset
 *     there, as after a seek).
 * Every frame that comes out must be the next by number, and every
 * sampled frame sent must come out; when not, this returns 0 and the
 * caller decodes everything (frames handed over already are not again).
 * Every frame sampled (no interval), every packet is sent.  The sent
 * packets are decoded in segments cut at the gaps and at the key frames
 * that close their groups, on every core (decode_segments()).
 * Returns 1 when the decoding is done, *st its outcome. */
static int decode_sampled(decode_run *r, pdqm_status *st, pdqm_error *err)
{
    if (!read_ahead(r, r->reader->len) || r->n_pkts == 0)
        return 0;
    const AVCodecParameters *par = r->fmt->streams[r->vi]->codecpar;
    const size_t n = r->n_pkts;
    planned *sorted = malloc(n * sizeof *sorted);
    uint8_t *action = calloc(n, 1), *cut = calloc(n, 1);
    int64_t *rank = malloc(n * sizeof *rank);
    int done = 0;
    if (sorted == NULL || action == NULL || cut == NULL || rank == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (r->pkts[i]->pts == AV_NOPTS_VALUE)
            goto out;
        sorted[i] = (planned){ r->pkts[i]->pts, (uint32_t)i };
    }
    qsort(sorted, n, sizeof *sorted, by_pts);
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && sorted[k].pts == sorted[k - 1].pts)
            goto out;   /* two frames at one time: their order is the decoder's */
        rank[sorted[k].pos] = (int64_t)k;
    }
    if (!(r->pkts[0]->flags & AV_PKT_FLAG_KEY))
        goto out;

    /* Groups of pictures from back to front: a group is sent up to its
     * last sampled frame, or to its end when the next group is sent and
     * does not start closed.  shown_before[i]: the largest frame number
     * among the packets before i. */
    int64_t *shown_before = malloc(n * sizeof *shown_before);
    if (shown_before == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        shown_before[i] = i == 0 ? -1 : rank[i - 1] > shown_before[i - 1] ? rank[i - 1]
                                                                          : shown_before[i - 1];
    int next_needs_us = 0;
    size_t group_end = n;
    int64_t last = -1, first_shown = INT64_MAX;
    for (size_t g = n; g-- > 0;) {
        if (is_selected(r, (uint32_t)rank[g]) && last < 0)
            last = (int64_t)g;
        if (!(r->pkts[g]->flags & AV_PKT_FLAG_KEY) && g > 0) {
            if (rank[g] < first_shown)
                first_shown = rank[g];
            continue;
        }
        /* [g, group_end) is a group; last is its last sampled packet. */
        if (next_needs_us)
            last = (int64_t)group_end - 1;
        for (int64_t i = (int64_t)g; i <= last; i++)
            action[i] = is_selected(r, (uint32_t)rank[i]) ? SEND : SEND_NONREF;
        /* Does the group need the one before it?  Unless it starts
         * closed: no frame of it shown before its key frame, none before
         * it shown after. */
        int closed = closes_gop(par, r->pkts[g]) && first_shown > rank[g] &&
                     shown_before[g] < rank[g];
        next_needs_us = last >= 0 && !closed;
        cut[g] = (uint8_t)closed;
        group_end = g;
        last = -1;
        first_shown = INT64_MAX;
    }
    free(shown_before);

    done = decode_segments(r, par, sorted, rank, action, cut, st, err);
out:
    free(sorted);
    free(action);
    free(cut);
    free(rank);
    if (!done) {
        /* Decode everything, from a fresh decoder. */
        avcodec_free_context(&r->dec);
        *st = PDQM_OK;
    }
    return done;
}

pdqm_status pdqm_video_hash(const void *data, size_t len, const pdqm_video_limits *limits,
                            double interval, unsigned burst, unsigned flags, pdqm_video_fn fn,
                            void *arg, pdqm_video_info *info, pdqm_error *err)
{
    pdqm_video_limits defaults;
    if (limits == NULL) {
        pdqm_video_limits_default(&defaults);
        limits = &defaults;
    }
    pdqm_video_info scratch_info;
    if (info == NULL)
        info = &scratch_info;
    memset(info, 0, sizeof *info);
    if (len == 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "empty file (0 bytes)");
    if (len > limits->max_bytes)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "%zu bytes is over the limit of %zu bytes",
                              len, limits->max_bytes);
    if (!(interval >= 0))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "an interval is 0 or more seconds");
    if (burst > PDQM_VIDEO_MAX_BURST)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a sample is at most %d frames",
                              PDQM_VIDEO_MAX_BURST);
    if (burst == 0)
        burst = 1;
    pdqm_status loaded = pdqm_av_load(err);
    if (loaded != PDQM_OK)
        return loaded;
    pthread_once(&log_once, silence_ffmpeg);

    pdqm_status st = PDQM_OK;
    mem_reader reader = { data, len, 0, pdqm_monotonic_seconds() + limits->max_wall_seconds };
    AVFormatContext *fmt = NULL;
    AVIOContext *io = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc();
    hasher h = { .sc = { .rgb = av_frame_alloc() }, .fn = fn, .arg = arg, .info = info,
                 .st = PDQM_OK };
    decode_run run = { .end_rc = AVERROR_EOF };
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.changed, NULL);
    uint8_t *io_buf = av_malloc(IO_BUFFER);
    fmt = avformat_alloc_context();
    if (!pkt || !frame || !h.sc.rgb || !io_buf || !fmt) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory opening a video");
        goto cleanup;
    }
    io = avio_alloc_context(io_buf, IO_BUFFER, 0, &reader, mem_read, NULL, mem_seek);
    if (io == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory opening a video");
        goto cleanup;
    }
    io_buf = NULL;   /* the context owns it now */
    fmt->pb = io;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->interrupt_callback.callback = past_deadline;
    fmt->interrupt_callback.opaque = &reader;

    int rc = avformat_open_input(&fmt, NULL, NULL, NULL);
    if (rc < 0) {
        /* On failure FFmpeg frees the context (not our I/O). */
        fmt = NULL;
        st = av_failure(err, PDQM_ERR_UNSUPPORTED, "not a video format pdqmatch reads", rc);
        goto cleanup;
    }
    /* The header's claims first: finding stream info decodes frames, so a
     * huge frame size must be refused before it. */
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVCodecParameters *cp = fmt->streams[i]->codecpar;
        if (cp->codec_type == AVMEDIA_TYPE_VIDEO &&
            (uint64_t)cp->width * (uint64_t)cp->height > limits->max_pixels) {
            st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                                "frames of %dx%d are over the limit of %llu pixels", cp->width,
                                cp->height, (unsigned long long)limits->max_pixels);
            goto cleanup;
        }
    }
    if ((rc = avformat_find_stream_info(fmt, NULL)) < 0) {
        st = av_failure(err, PDQM_ERR_DECODE, "corrupt video", rc);
        goto cleanup;
    }
    int vi = -1;
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
            vi = (int)i;
            break;
        }
    if (vi < 0) {
        st = pdqm_error_set(err, PDQM_ERR_UNSUPPORTED, "no video stream in the file");
        goto cleanup;
    }
    AVStream *stream = fmt->streams[vi];
    const AVCodecParameters *par = stream->codecpar;
    if (par->width <= 0 || par->height <= 0) {
        st = pdqm_error_set(err, PDQM_ERR_DECODE, "the video has no frame size");
        goto cleanup;
    }
    if ((uint64_t)par->width * (uint64_t)par->height > limits->max_pixels) {
        st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                            "frames of %dx%d are over the limit of %llu pixels", par->width,
                            par->height, (unsigned long long)limits->max_pixels);
        goto cleanup;
    }
    AVRational rate = stream->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0)
        rate = stream->r_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) {
        st = pdqm_error_set(err, PDQM_ERR_DECODE, "the video has no frame rate");
        goto cleanup;
    }
    const double fps = av_q2d(rate);
    info->fps = fps;
    info->width = par->width;
    info->height = par->height;
    double container_seconds = fmt->duration > 0 ? fmt->duration / (double)AV_TIME_BASE : 0;
    if (container_seconds > limits->max_seconds) {
        st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                            "%.1f seconds of video is over the limit of %.0f seconds",
                            container_seconds, limits->max_seconds);
        goto cleanup;
    }

    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (codec == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_UNSUPPORTED, "no decoder for the video's codec");
        goto cleanup;
    }
    info->codec = codec->name;
    run.codec = codec;
    if ((st = open_decoder(&run, par, err)) != PDQM_OK)
        goto cleanup;

    /* Every frame_mod-th frame: trunc(interval * fps) in vPDQ's float. */
    uint32_t frame_mod = 1;
    if (interval > 0) {
        double step = (double)(float)interval * fps;
        frame_mod = step >= 1 ? (step > 1e9 ? 1000000000u : (uint32_t)step) : 1;
    }
    /* A sample is its first frame and the burst - 1 after it (all of
     * them when it is as long as the step). */
    const int grouped = burst > 1 && frame_mod > 1;
    h.p = (hash_params){ flags, grouped, frame_mod, (float)fps };
    run.fmt = fmt;
    run.vi = vi;
    run.reader = &reader;
    run.limits = limits;
    run.info = info;
    run.h = &h;
    run.frame = frame;
    run.fps = fps;
    run.frame_mod = frame_mod;
    run.per_sample = grouped ? burst : 1;
    if (!(flags & PDQM_VIDEO_DECODE_ALL) && decode_sampled(&run, &st, err))
        goto finish;
    /* Every frame decoded (the packets read ahead first, if any); frames
     * the sampled decoding handed over already are not again. */
    if (run.dec == NULL) {
        st = open_decoder(&run, par, err);
        if (st != PDQM_OK)
            goto finish;
    }
    st = decode_all(&run, err);

finish:
    hasher_finish(&h);
    if (h.st != PDQM_OK) {   /* an earlier frame's failure goes first */
        st = h.st;
        if (err != NULL)
            *err = h.err;
    } else if (st == PDQM_OK && !h.stopped && info->frames_decoded == 0) {
        st = pdqm_error_set(err, PDQM_ERR_DECODE, "no frame could be decoded");
    }

cleanup:
    hasher_finish(&h);
    pthread_cond_destroy(&h.changed);
    pthread_mutex_destroy(&h.mu);
    scaler_free(&h.sc);
    avcodec_free_context(&run.dec);
    packets_free(&run);
    if (fmt)
        avformat_close_input(&fmt);
    if (io) {
        av_freep(&io->buffer);
        avio_context_free(&io);
    }
    av_free(io_buf);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    return st;
}
