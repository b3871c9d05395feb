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

typedef struct hasher {
    /* Set before the first job, read-only after. */
    struct SwsContext *sws;
    AVFrame *rgb;
    unsigned flags;
    int grouped;
    uint32_t frame_mod;
    float fps_f;
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
    int running;              /* the thread was started */
    pthread_t thread;
} hasher;

/* Convert, hash and hand over one frame: 0 to go on, 1 when fn asks to
 * stop, -1 on a failure (*st, *err: the caller records it, see
 * hasher_record()). */
static int hash_one(hasher *h, const AVFrame *frame, uint32_t index, pdqm_status *st,
                    pdqm_error *err)
{
    sws_scale(h->sws, (const uint8_t *const *)frame->data, frame->linesize, 0, h->rgb->height,
              h->rgb->data, h->rgb->linesize);
    pdqm_pixels px = { h->rgb->data[0], h->rgb->width, h->rgb->height, 3,
                       (size_t)h->rgb->linesize[0] };
    pdqm_pdq pdq;
    unsigned pdq_flags = PDQM_PDQ_NO_PRESHRINK;
    if (h->flags & PDQM_VIDEO_DIHEDRAL)
        pdq_flags |= PDQM_PDQ_DIHEDRAL;
    *st = pdqm_pdq_hash(&px, pdq_flags, &pdq, err);
    if (*st != PDQM_OK)
        return -1;
    pdqm_video_frame vf = {
        .frame = index,
        .sample = h->grouped ? index / h->frame_mod + 1 : 0,
        .timestamp = (double)((float)index / h->fps_f),
        .hash = pdq.hash,
        .quality = pdq.quality,
        .dihedral = (h->flags & PDQM_VIDEO_DIHEDRAL) ? pdq.dihedral : NULL,
    };
    pdqm_rect in;
    if ((h->flags & PDQM_VIDEO_BARS) && pdqm_find_bars(&px, &in)) {
        vf.barred = 1;
        *st = hash_cuts(&px, &in, &pdq, &vf, err);
        if (*st != PDQM_OK)
            return -1;
    }
    h->info->frames_hashed++;
    return h->fn(h->arg, &vf) != 0 ? 1 : 0;
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
 * caller's thread when no thread could be started).  Returns 0, or
 * nonzero once the hashing side has stopped. */
static int hasher_push(hasher *h, const AVFrame *frame, uint32_t index)
{
    pdqm_status st = PDQM_OK;
    pdqm_error err;
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
    AVCodecContext *dec = NULL;
    struct SwsContext *sws = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc(), *rgb = av_frame_alloc();
    hasher h = { .flags = flags, .fn = fn, .arg = arg, .info = info, .st = PDQM_OK };
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.changed, NULL);
    uint8_t *io_buf = av_malloc(IO_BUFFER);
    fmt = avformat_alloc_context();
    if (!pkt || !frame || !rgb || !io_buf || !fmt) {
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
    dec = avcodec_alloc_context3(codec);
    if (dec == NULL || avcodec_parameters_to_context(dec, par) < 0) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a decoder");
        goto cleanup;
    }
    /* Threads on every core, by frame and by slice where the codec can:
     * FFmpeg's decoders give the same pixels however they are threaded
     * (vPDQ itself uses slices only). */
    dec->thread_count = 0;
    dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    if ((rc = avcodec_open2(dec, codec, NULL)) < 0) {
        st = av_failure(err, PDQM_ERR_DECODE, "cannot start the video decoder", rc);
        goto cleanup;
    }

    /* Every frame_mod-th frame: trunc(interval * fps) in vPDQ's float. */
    uint32_t frame_mod = 1;
    if (interval > 0) {
        double step = (double)(float)interval * fps;
        frame_mod = step >= 1 ? (step > 1e9 ? 1000000000u : (uint32_t)step) : 1;
    }
    /* A sample is its first frame and the burst - 1 after it (all of
     * them when it is as long as the step). */
    const int grouped = burst > 1 && frame_mod > 1;
    const float fps_f = (float)fps;
    int sws_w = 0, sws_h = 0, sws_fmt = -1;
    h.rgb = rgb;
    h.grouped = grouped;
    h.frame_mod = frame_mod;
    h.fps_f = fps_f;
    /* Without a thread, the frames are hashed here, as they come. */
    h.running = pthread_create(&h.thread, NULL, hasher_main, &h) == 0;
    int eof = 0;
    uint32_t index = 0;
    while (st == PDQM_OK) {
        if (!eof) {
            rc = av_read_frame(fmt, pkt);
            if (rc == AVERROR_EOF) {
                eof = 1;
                rc = avcodec_send_packet(dec, NULL);   /* drain */
            } else if (rc < 0) {
                if (rc == AVERROR_EXIT)
                    st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "decoding took over %.0f seconds",
                                        limits->max_wall_seconds);
                else
                    st = av_failure(err, PDQM_ERR_DECODE, "truncated or corrupt video", rc);
                break;
            } else if (pkt->stream_index != vi) {
                av_packet_unref(pkt);
                continue;
            } else {
                rc = avcodec_send_packet(dec, pkt);
                av_packet_unref(pkt);
            }
            if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) {
                st = av_failure(err, PDQM_ERR_DECODE, "corrupt or truncated video data", rc);
                break;
            }
        }
        /* Every frame the decoder has ready. */
        for (;;) {
            rc = avcodec_receive_frame(dec, frame);
            if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
                break;
            if (rc < 0) {
                st = av_failure(err, PDQM_ERR_DECODE, "corrupt or truncated video data", rc);
                break;
            }
            if (hasher_stopped(&h)) {   /* fn asked to stop, or hashing failed */
                av_frame_unref(frame);
                goto finish;
            }
            info->frames_decoded = index + 1;
            info->duration = (index + 1) / fps;
            if (index >= limits->max_frames) {
                st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "more than %u frames",
                                    limits->max_frames);
            } else if (info->duration > limits->max_seconds) {
                st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                                    "more than %.0f seconds of video", limits->max_seconds);
            } else if (pdqm_monotonic_seconds() > reader.deadline) {
                st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "decoding took over %.0f seconds",
                                    limits->max_wall_seconds);
            } else if (index % frame_mod < (grouped ? burst : 1)) {
                /* One scaler, set by the first frame; the reference never
                 * changes it, and a mid-stream change of size or format
                 * would have swscale read outside the frame. */
                if (sws == NULL) {
                    sws_w = frame->width;
                    sws_h = frame->height;
                    sws_fmt = frame->format;
                    if ((uint64_t)sws_w * (uint64_t)sws_h > limits->max_pixels || sws_w <= 0 ||
                        sws_h <= 0) {
                        st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "decoded frames of %dx%d",
                                            sws_w, sws_h);
                    } else {
                        sws = sws_getContext(sws_w, sws_h, (enum AVPixelFormat)sws_fmt, sws_w, sws_h,
                                             AV_PIX_FMT_RGB24, SWS_AREA, NULL, NULL, NULL);
                        rgb->width = sws_w;
                        rgb->height = sws_h;
                        rgb->format = AV_PIX_FMT_RGB24;
                        h.sws = sws;   /* before the first frame is handed over */
                        if (sws == NULL || av_frame_get_buffer(rgb, 0) < 0)
                            st = pdqm_error_set(err, PDQM_ERR_NOMEM, "cannot convert %dx%d frames",
                                                sws_w, sws_h);
                        info->width = sws_w;
                        info->height = sws_h;
                    }
                } else if (frame->width != sws_w || frame->height != sws_h ||
                           frame->format != sws_fmt) {
                    st = pdqm_error_set(err, PDQM_ERR_UNSUPPORTED,
                                        "the frame size changes mid-stream (%dx%d to %dx%d)",
                                        sws_w, sws_h, frame->width, frame->height);
                }
                if (st == PDQM_OK) {
                    if (hasher_push(&h, frame, index) != 0) {
                        av_frame_unref(frame);
                        goto finish;   /* fn asked to stop, or hashing failed */
                    }
                }
            }
            av_frame_unref(frame);
            index++;
            if (st != PDQM_OK)
                break;
        }
        if (eof && rc == AVERROR_EOF)
            break;
    }
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
    sws_freeContext(sws);
    avcodec_free_context(&dec);
    if (fmt)
        avformat_close_input(&fmt);
    if (io) {
        av_freep(&io->buffer);
        avio_context_free(&io);
    }
    av_free(io_buf);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    av_frame_free(&rgb);
    return st;
}
