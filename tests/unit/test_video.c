/*
 * test_video.c - vPDQ frame hashes against Meta's reference, frame
 * selection, and hostile video bytes.
 *
 * Reference data (tests/data/vpdq, see its README): the sample videos and
 * what the unmodified reference printed for them (`reference-outputs/
 * full-default`, every frame, full size), plus upstream's expected hashes.
 */
#include "testutil.h"

#include <dirent.h>

#include "../../hashing/media.h"
#include "../../hashing/video.h"

static const char *const videos[] = {
    "chair-19-sd-bar", "chair-20-sd-bar", "chair-22-sd-grey-bar", "chair-22-sd-sepia-bar",
    "chair-22-with-large-logo-bar", "chair-22-with-small-logo-bar", "chair-orig-22-sd-bar",
    "doorknob-hd-no-bar", "pattern-hd-no-bar", "pattern-longer-no-bar", "pattern-sd-grey-bar",
    "pattern-sd-with-large-logo-bar", "pattern-sd-with-small-logo-bar", "test-padded-dimensions",
};
#define N_VIDEOS (sizeof videos / sizeof videos[0])

/* The frames of a video as the reference's text. */
typedef struct text {
    char *buf;
    size_t len, cap;
} text;

static void append_str(text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->cap + n + 1) * 2;
        t->buf = realloc(t->buf, t->cap);
        assert_non_null(t->buf);
    }
    memcpy(t->buf + t->len, s, n + 1);
    t->len += n;
}

static int append_line(void *arg, const pdqm_video_frame *f)
{
    char hex[PDQM_HASH_HEX_LEN + 1], line[128];
    pdqm_hash256_to_hex(&f->hash, hex);
    snprintf(line, sizeof line, "%u,%d,%s,%.3f\n", f->frame, f->quality, hex, f->timestamp);
    append_str(arg, line);
    return 0;
}

static text hash_text(const char *name, double interval)
{
    char rel[256];
    snprintf(rel, sizeof rel, "vpdq/videos/%s.mp4", name);
    size_t n;
    uint8_t *bytes = read_data(rel, &n);
    text t = { NULL, 0, 0 };
    pdqm_error err;
    pdqm_video_info info;
    if (pdqm_video_hash(bytes, n, NULL, interval, 1, 0, append_line, &t, &info, &err) != PDQM_OK)
        fail_msg("%s: %s", name, err.message);
    free(bytes);
    return t;
}

static void test_every_frame_byte_identical(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_VIDEOS; i++) {
        text t = hash_text(videos[i], 0);
        char rel[256];
        snprintf(rel, sizeof rel, "vpdq/reference-outputs/full-default/%s.txt", videos[i]);
        size_t n;
        uint8_t *want = read_data(rel, &n);
        if (t.len != n || memcmp(t.buf, want, n) != 0)
            fail_msg("%s: frame hashes differ from the reference's", videos[i]);
        free(want);
        free(t.buf);
    }
}

/* Upstream's own rule against its committed hashes: same lines, and
 * distance < 31 wherever both qualities are at least 50. */
static void test_upstream_regression_rule(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_VIDEOS; i++) {
        text t = hash_text(videos[i], 0);
        char rel[256];
        snprintf(rel, sizeof rel, "vpdq/hashes/%s.txt", videos[i]);
        FILE *f = fopen(data_path(rel), "r");
        assert_non_null(f);
        char line[256];
        const char *ours = t.buf;
        int lines = 0;
        while (fgets(line, sizeof line, f)) {
            unsigned frame_a, frame_b;
            int qa, qb;
            char ha[65], hb[65];
            assert_int_equal(sscanf(line, "%u,%d,%64[0-9a-f]", &frame_a, &qa, ha), 3);
            assert_int_equal(sscanf(ours, "%u,%d,%64[0-9a-f]", &frame_b, &qb, hb), 3);
            assert_int_equal(frame_a, frame_b);
            pdqm_hash256 a, b;
            pdqm_hash256_from_hex(ha, 64, &a, NULL);
            pdqm_hash256_from_hex(hb, 64, &b, NULL);
            if (qa >= 50 && qb >= 50 && pdqm_hash256_distance(&a, &b) >= 31)
                fail_msg("%s frame %u: %d bits from upstream", videos[i], frame_a,
                         pdqm_hash256_distance(&a, &b));
            ours = strchr(ours, '\n') + 1;
            lines++;
        }
        assert_int_equal(*ours, '\0');   /* no extra frames */
        assert_true(lines > 0);
        fclose(f);
        free(t.buf);
    }
}

static int keep_frames(void *arg, const pdqm_video_frame *f)
{
    pdqm_video_frame *out = arg;
    static size_t n;
    if (f->frame == 0)
        n = 0;
    if (n < 64)
        out[n++] = *f;
    return 0;
}

static int count_frames(void *arg, const pdqm_video_frame *f)
{
    (void)f;
    ++*(int *)arg;
    return 0;
}

static void test_frame_selection(void **state)
{
    (void)state;
    size_t n;
    uint8_t *bytes = read_data("vpdq/videos/doorknob-hd-no-bar.mp4", &n);
    pdqm_video_frame frames[64];
    pdqm_video_info info;
    /* 1 second at 30 fps: every 30th frame. */
    assert_int_equal(pdqm_video_hash(bytes, n, NULL, 1.0, 1,
                                     0, keep_frames, frames, &info, NULL), PDQM_OK);
    assert_int_equal(info.frames_decoded, 120);
    assert_int_equal(info.frames_hashed, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(frames[i].frame, 30u * (unsigned)i);
        assert_true(frames[i].timestamp == (double)((float)(30 * i) / 30.0f));
    }
    assert_true(info.fps == 30.0 && info.width == 1280 && info.height == 720);
    /* 0.5 s: every 15th. */
    assert_int_equal(pdqm_video_hash(bytes, n, NULL, 0.5, 1,
                                     0, keep_frames, frames, &info, NULL), PDQM_OK);
    assert_int_equal(info.frames_hashed, 8);
    assert_int_equal(frames[1].frame, 15);
    assert_int_equal(frames[1].sample, 0);          /* a sample alone */
    /* A sample a second of 3 frames in a row (the query default): frames
     * 0 1 2, 30 31 32, ..., numbered by sample from 1. */
    assert_int_equal(pdqm_video_hash(bytes, n, NULL, 1.0, 3,
                                     0, keep_frames, frames, &info, NULL), PDQM_OK);
    assert_int_equal(info.frames_hashed, 12);
    for (unsigned i = 0; i < 12; i++) {
        assert_int_equal(frames[i].frame, 30 * (i / 3) + i % 3);
        assert_int_equal(frames[i].sample, i / 3 + 1);
    }
    /* Every frame: a burst means nothing, each frame is its own sample. */
    int calls = 0;
    assert_int_equal(pdqm_video_hash(bytes, n, NULL, 0, 3, 0, count_frames, &calls, &info,
                                     NULL), PDQM_OK);
    assert_int_equal(calls, 120);
    pdqm_error err;
    assert_int_equal(pdqm_video_hash(bytes, n, NULL, 1.0, PDQM_VIDEO_MAX_BURST + 1, 0,
                                     count_frames, &calls, &info, &err), PDQM_ERR_INVALID);
    free(bytes);
}

static int stop_after_two(void *arg, const pdqm_video_frame *f)
{
    (void)f;
    return ++*(int *)arg >= 2;
}


static void expect_video_error(const void *bytes, size_t n, const pdqm_video_limits *limits,
                               pdqm_status want, const char *message)
{
    pdqm_error err;
    int calls = 0;
    pdqm_status st = pdqm_video_hash(bytes, n, limits, 0, 1, 0, count_frames, &calls, NULL, &err);
    if (st != want || strcmp(err.message, message) != 0)
        fail_msg("got %s '%s', expected %s '%s'", pdqm_status_token(st), err.message,
                 pdqm_status_token(want), message);
}

static void test_bad_videos(void **state)
{
    (void)state;
    size_t n;
    uint8_t *bytes = read_data("vpdq/videos/doorknob-hd-no-bar.mp4", &n);
    expect_video_error(bytes, 0, NULL, PDQM_ERR_INVALID, "empty file (0 bytes)");
    /* Truncated: frames decode until the data stops short, then an error
     * (never a silent success with fewer frames). */
    {
        pdqm_error err;
        int calls = -1000000;
        pdqm_status st = pdqm_video_hash(bytes, n / 2, NULL, 0, 1,
                                         0, count_frames, &calls, NULL, &err);
        assert_int_equal(st, PDQM_ERR_DECODE);
        assert_string_equal(err.message, "corrupt or truncated video data (Invalid data found "
                                         "when processing input)");
        assert_true(calls > -1000000);
    }
    /* Limits, checked before decoding or as frames come. */
    pdqm_video_limits l;
    pdqm_video_limits_default(&l);
    l.max_seconds = 2;
    expect_video_error(bytes, n, &l, PDQM_ERR_TOO_LARGE,
                       "4.3 seconds of video is over the limit of 2 seconds");
    pdqm_video_limits_default(&l);
    l.max_frames = 10;
    expect_video_error(bytes, n, &l, PDQM_ERR_TOO_LARGE, "more than 10 frames");
    pdqm_video_limits_default(&l);
    l.max_pixels = 1000;
    expect_video_error(bytes, n, &l, PDQM_ERR_TOO_LARGE,
                       "frames of 1280x720 are over the limit of 1000 pixels");
    pdqm_video_limits_default(&l);
    l.max_bytes = 1000;
    char msg[128];
    snprintf(msg, sizeof msg, "%zu bytes is over the limit of 1000 bytes", n);
    expect_video_error(bytes, n, &l, PDQM_ERR_TOO_LARGE, msg);
    free(bytes);

    /* A stream header claiming 16000x16000: refused before decoding (the
     * 20000x20000 case is in tests/e2e, FFmpeg itself refuses it in y4m). */
    const char y4m[] = "YUV4MPEG2 W16000 H16000 F30:1 Ip A1:1 C420jpeg\nFRAME\n";
    expect_video_error(y4m, sizeof y4m - 1, NULL, PDQM_ERR_TOO_LARGE,
                       "frames of 16000x16000 are over the limit of 35389440 pixels");
    /* Random bytes. */
    uint8_t noise[4096];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof noise; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        noise[i] = (uint8_t)x;
    }
    pdqm_error err;
    int calls = 0;
    pdqm_status st = pdqm_video_hash(noise, sizeof noise, NULL, 0, 1,
                                     0, stop_after_two, &calls, NULL, &err);
    assert_true(st == PDQM_ERR_UNSUPPORTED || st == PDQM_ERR_DECODE);
    assert_int_equal(calls, 0);
}

/* The frames are hashed on a thread beside the decoder: a callback that
 * asks to stop is called no more, and the call returns PDQM_OK. */
static void test_callback_stops_the_decoder(void **state)
{
    (void)state;
    size_t n;
    uint8_t *bytes = read_data("vpdq/videos/doorknob-hd-no-bar.mp4", &n);
    for (unsigned burst = 1; burst <= 3; burst += 2) {
        pdqm_error err;
        pdqm_video_info info;
        int calls = 0;
        assert_int_equal(pdqm_video_hash(bytes, n, NULL, 0, burst, 0, stop_after_two, &calls,
                                         &info, &err),
                         PDQM_OK);
        assert_int_equal(calls, 2);
        assert_int_equal(info.frames_hashed, 2);
    }
    free(bytes);
}

static void test_every_prefix_fails_cleanly(void **state)
{
    (void)state;
    size_t n;
    uint8_t *bytes = read_data("vpdq/videos/test-padded-dimensions.mp4", &n);
    for (size_t len = 1; len < n; len += n / 41 + 1) {
        int calls = 0;
        pdqm_error err;
        pdqm_status st = pdqm_video_hash(bytes, len, NULL, 0, 1,
                                         0, stop_after_two, &calls, NULL, &err);
        assert_true(st != PDQM_OK || calls > 0);
    }
    free(bytes);
}

static void test_sniffing(void **state)
{
    (void)state;
    static const char *const images[] = {
        "pdq/images/bridge-mods/square-128x128.jpg", "pdq/synthetic/tiny-5x5.png",
        "pdq/synthetic/anim-2frames-100x80.gif", "pdq/images/misc-images/modes/F.webp",
        "pdq/synthetic/gray120-64x64.pgm", "bad/text.jpg",
    };
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) {
        size_t n;
        uint8_t *b = read_data(images[i], &n);
        if (pdqm_media_sniff(b, n) != PDQM_MEDIA_IMAGE)
            fail_msg("%s taken for a video", images[i]);
        free(b);
    }
    for (size_t i = 0; i < N_VIDEOS; i += 5) {
        char rel[256];
        snprintf(rel, sizeof rel, "vpdq/videos/%s.mp4", videos[i]);
        size_t n;
        uint8_t *b = read_data(rel, &n);
        assert_int_equal(pdqm_media_sniff(b, n), PDQM_MEDIA_VIDEO);
        free(b);
    }
}

/* Sampled hashing decodes only what the sampled frames need (non-reference
 * frames dropped, groups of pictures cut after their last sampled frame):
 * the frames handed over, their numbers, samples and timestamps must be
 * exactly those of decoding every frame, on the sample videos and on the
 * stress videos (tests/data/vpdq/stress: B-frame pyramids, open GOPs, VFR,
 * 29.97 fps, HEVC, VP9 alt-refs, MPEG-4 in AVI, MPEG-TS). */
static int append_sampled(void *arg, const pdqm_video_frame *f)
{
    append_line(arg, f);
    char extra[32];
    snprintf(extra, sizeof extra, "s%u\n", f->sample);
    append_str(arg, extra);
    return 0;
}

static text sampled_text(const uint8_t *bytes, size_t n, double interval, unsigned burst,
                         unsigned flags, pdqm_video_info *info)
{
    text t = { NULL, 0, 0 };
    pdqm_error err;
    if (pdqm_video_hash(bytes, n, NULL, interval, burst, flags, append_sampled, &t, info,
                        &err) != PDQM_OK)
        fail_msg("%s", err.message);
    return t;
}

static void check_sampling(const char *rel, size_t n_runs, uint32_t *skipped)
{
    static const struct { double interval; unsigned burst; } runs[] = {
        { 1.0, 1 }, { 0.5, 1 }, { 1.0, 3 }, { 2.0, 1 }, { 3.0, 1 }, { 0.1, 1 },
    };
    size_t n;
    uint8_t *bytes = read_data(rel, &n);
    for (size_t k = 0; k < n_runs && k < sizeof runs / sizeof runs[0]; k++) {
        pdqm_video_info all_info, info;
        text all = sampled_text(bytes, n, runs[k].interval, runs[k].burst,
                                PDQM_VIDEO_DECODE_ALL, &all_info);
        text some = sampled_text(bytes, n, runs[k].interval, runs[k].burst, 0, &info);
        if (all.len == 0 || some.len != all.len || memcmp(some.buf, all.buf, all.len) != 0)
            fail_msg("%s, every %.1f s x %u: sampled decoding gives other frames:\n%.*s\n"
                     "against\n%.*s", rel, runs[k].interval, runs[k].burst,
                     (int)(some.len < 2000 ? some.len : 2000), some.buf ? some.buf : "",
                     (int)(all.len < 2000 ? all.len : 2000), all.buf);
        assert_int_equal(info.frames_decoded, all_info.frames_decoded);
        assert_int_equal(info.frames_hashed, all_info.frames_hashed);
        assert_int_equal(info.width, all_info.width);
        assert_true(info.duration == all_info.duration);
        assert_int_equal(all_info.frames_skipped, 0);
        *skipped += info.frames_skipped;
        free(all.buf);
        free(some.buf);
    }
    free(bytes);
}

static void test_sampled_decoding_gives_every_frame_decodings_frames(void **state)
{
    (void)state;
    char rel[256];
    /* Four of the samples (every frame of all is checked above), three
     * ways each; the small stress videos six ways. */
    static const char *const samples[] = {
        "chair-22-sd-grey-bar", "doorknob-hd-no-bar", "pattern-hd-no-bar",
        "test-padded-dimensions",
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        uint32_t skipped = 0;
        snprintf(rel, sizeof rel, "vpdq/videos/%s.mp4", samples[i]);
        check_sampling(rel, 3, &skipped);
        /* x264's closed GOPs with B-frames: most frames need no decoding. */
        if (skipped == 0)
            fail_msg("%s: sampled decoding decoded every frame", rel);
    }
    static const char *const stress[] = {
        "bframes-pyramid.mp4", "open-gop.mp4", "vfr.mp4", "ntsc-29.97.mp4", "hevc.mp4",
        "vp9-altref.webm", "mpeg4-bframes.avi", "ts-open-gop.ts",
    };
    for (size_t i = 0; i < sizeof stress / sizeof stress[0]; i++) {
        uint32_t skipped = 0;
        snprintf(rel, sizeof rel, "vpdq/stress/%s", stress[i]);
        check_sampling(rel, 6, &skipped);
        print_message("%s: %u frames not decoded in 6 runs\n", stress[i], skipped);
    }
}

/* Every frame (no interval) is decoded in segments too, cut at the key
 * frames that close their groups of pictures, a worker a core, each
 * worker hashing its own frames: the frames handed over, with their
 * dihedral hashes and the hashes inside their bars, must be decode-all's
 * (chair-22 has 12 closed groups, pattern 4, open-gop.mp4 one at its start;
 * the VP9 file's count, 0 in the table, is not checked). */
static int append_all(void *arg, const pdqm_video_frame *f)
{
    text *t = arg;
    char hex[PDQM_HASH_HEX_LEN + 1], line[128];
    append_line(arg, f);
    for (int k = 0; f->dihedral != NULL && k < PDQM_DIHEDRAL_COUNT; k++) {
        pdqm_hash256_to_hex(&f->dihedral[k], hex);
        snprintf(line, sizeof line, " d%d %s\n", k, hex);
        append_str(t, line);
    }
    for (int k = 0; f->barred && k < PDQM_CUTS; k++) {
        pdqm_hash256_to_hex(&f->inner[k], hex);
        snprintf(line, sizeof line, " cut%d %s %d\n", k, hex, f->inner_quality[k]);
        append_str(t, line);
    }
    return 0;
}

static void test_every_frame_in_segments_gives_decode_alls_frames(void **state)
{
    (void)state;
    static const struct { const char *rel; uint32_t segments; } cases[] = {
        { "vpdq/videos/chair-22-sd-sepia-bar.mp4", 12 },
        { "vpdq/videos/pattern-hd-no-bar.mp4", 4 },
        { "vpdq/stress/open-gop.mp4", 1 },
        { "vpdq/stress/vp9-altref.webm", 0 },
    };
    const unsigned flags = PDQM_VIDEO_DIHEDRAL | PDQM_VIDEO_BARS;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *bytes = read_data(cases[i].rel, &n);
        pdqm_video_info all_info, info;
        pdqm_error err;
        text all = { NULL, 0, 0 }, seg = { NULL, 0, 0 };
        if (pdqm_video_hash(bytes, n, NULL, 0, 1, flags | PDQM_VIDEO_DECODE_ALL, append_all,
                            &all, &all_info, &err) != PDQM_OK ||
            pdqm_video_hash(bytes, n, NULL, 0, 1, flags, append_all, &seg, &info, &err) !=
                PDQM_OK)
            fail_msg("%s: %s", cases[i].rel, err.message);
        if (all.len == 0 || seg.len != all.len || memcmp(seg.buf, all.buf, all.len) != 0)
            fail_msg("%s: every frame in segments gives other frames", cases[i].rel);
        assert_int_equal(all_info.segments, 0);
        if (cases[i].segments > 0 && info.segments != cases[i].segments)
            fail_msg("%s: %u segments, not %u", cases[i].rel, info.segments,
                     cases[i].segments);
        assert_int_equal(info.frames_hashed, all_info.frames_hashed);
        assert_int_equal(info.frames_decoded, all_info.frames_decoded);
        assert_int_equal(info.frames_skipped, 0);
        assert_true(info.duration == all_info.duration);
        free(all.buf);
        free(seg.buf);
        free(bytes);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_frame_byte_identical),
        cmocka_unit_test(test_upstream_regression_rule),
        cmocka_unit_test(test_frame_selection),
        cmocka_unit_test(test_sampled_decoding_gives_every_frame_decodings_frames),
        cmocka_unit_test(test_every_frame_in_segments_gives_decode_alls_frames),
        cmocka_unit_test(test_bad_videos),
        cmocka_unit_test(test_callback_stops_the_decoder),
        cmocka_unit_test(test_every_prefix_fails_cleanly),
        cmocka_unit_test(test_sniffing),
    };
    return cmocka_run_group_tests_name("video", tests, NULL, NULL);
}
