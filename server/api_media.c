/*
 * api_media.c - the routes that take media bytes: hash them, look them up,
 * or store them in a bank.
 *
 * The body is an image or a video, raw (any image/, video/ or
 * application/octet-stream type) or as the field "file" of a
 * multipart/form-data form; server.c collects it.  What it is comes from
 * its bytes, never from its Content-Type.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "../hashing/hash256.h"
#include "../hashing/media.h"
#include "../index/match.h"
#include "../core/ingest.h"
#include "../core/jsonraw.h"
#include "../core/match_json.h"
#include "../core/policy.h"
#include "server_int.h"

static json_t *hex_json(const pdqm_hash256 *h)
{
    char hex[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(h, hex);
    return json_string(hex);
}

/* The frame interval from ?interval=S (0: every frame), fallback when not
 * given; -1 when bad. */
static double interval_arg(struct MHD_Connection *c, double fallback)
{
    const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "interval");
    if (s == NULL)
        return fallback;
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= 0 && v <= 3600))
        return -1;
    return v;
}

/* A hashed body: an image or a video. */
typedef struct hashed {
    pdqm_media_kind kind;
    pdqm_image_hash image;
    pdqm_video_hashes video;
} hashed;

/* Hash the body, a video a sample of burst frames every ?interval= seconds
 * (else interval); on failure reply and return 0. */
static int hash_body(pdqm_server *s, struct MHD_Connection *c, request *rq, unsigned flags,
                     double interval, unsigned burst, hashed *h, enum MHD_Result *result)
{
    memset(h, 0, sizeof *h);
    if (rq->size == 0) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                              "send an image or a video as the body (or the form field 'file')");
        return 0;
    }
    interval = interval_arg(c, interval);
    if (interval < 0) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                              "'interval' is seconds from 0 to 3600");
        return 0;
    }
    pdqm_error err;
    pdqm_status st;
    h->kind = pdqm_media_sniff(rq->body, rq->size);
    if (h->kind == PDQM_MEDIA_IMAGE && rq->size > s->image_limits.max_bytes) {
        *result = reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                              "an image is at most %zu bytes", s->image_limits.max_bytes);
        return 0;
    }
    pdqm_media_enter(s);
    double start = pdqm_monotonic_seconds();
    if (h->kind == PDQM_MEDIA_IMAGE) {
        st = pdqm_hash_image_bytes(rq->body, rq->size, &s->image_limits,
                                   flags | PDQM_MEDIA_DIGESTS,
                                   &h->image, &err);
    } else {
        st = pdqm_hash_video_bytes(rq->body, rq->size, &s->video_limits, interval, burst,
                                   PDQM_MEDIA_DIGESTS |
                                       (flags & (PDQM_MEDIA_DIHEDRAL | PDQM_MEDIA_BARS)),
                                   &h->video, &err);
        if (st == PDQM_OK && h->video.count == 0) {
            pdqm_video_hashes_free(&h->video);
            st = pdqm_error_set(&err, PDQM_ERR_DECODE, "the video has no frame to hash");
        }
    }
    pdqm_metrics_hashing(s->metrics, pdqm_monotonic_seconds() - start);
    pdqm_media_leave(s);
    if (st != PDQM_OK) {
        *result = reply_status(c, st, &err);
        return 0;
    }
    return 1;
}

static void hashed_free(hashed *h)
{
    if (h->kind == PDQM_MEDIA_VIDEO)
        pdqm_video_hashes_free(&h->video);
}

static const pdqm_digests *hashed_digests(const hashed *h)
{
    return h->kind == PDQM_MEDIA_IMAGE ? &h->image.digests : &h->video.digests;
}

static json_t *hashed_json(const hashed *h, int with_dihedral)
{
    const pdqm_digests *d = hashed_digests(h);
    if (h->kind == PDQM_MEDIA_IMAGE) {
        json_t *j = json_pack("{s:s,s:{s:o,s:i},s:s,s:s,s:i,s:i}", "type", "image",
                              "pdq", "hash", hex_json(&h->image.pdq.hash),
                              "quality", h->image.pdq.quality, "sha256", d->sha256, "md5", d->md5,
                              "width", h->image.width, "height", h->image.height);
        if (with_dihedral) {
            json_t *arr = json_array();
            for (int i = 0; i < PDQM_DIHEDRAL_COUNT; i++)
                json_array_append_new(arr, hex_json(&h->image.pdq.dihedral[i]));
            json_object_set_new(j, "dihedral", arr);
        }
        return j;
    }
    const pdqm_video_info *in = &h->video.info;
    json_t *frames = json_array();
    for (size_t i = 0; i < h->video.count; i++) {
        const pdqm_video_frame *f = &h->video.frames[i];
        json_array_append_new(frames, json_pack("{s:i,s:f,s:o,s:i}", "frame", (int)f->frame,
                                                "timestamp", f->timestamp, "hash",
                                                hex_json(&f->hash), "quality", f->quality));
    }
    return json_pack("{s:s,s:o,s:s,s:s,s:i,s:i,s:f,s:f,s:s}", "type", "video", "frames", frames,
                     "sha256", d->sha256, "md5", d->md5, "width", in->width, "height",
                     in->height, "fps", in->fps, "duration", in->duration, "codec",
                     in->codec ? in->codec : "");
}

enum MHD_Result pdqm_post_hash(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    hashed h;
    enum MHD_Result result;
    if (!hash_body(s, c, rq, PDQM_MEDIA_DIHEDRAL, PDQM_QUERY_INTERVAL, 1, &h, &result))
        return result;
    json_t *j = hashed_json(&h, 1);
    hashed_free(&h);
    return reply_json(c, MHD_HTTP_OK, j);
}

/* Items stored from a file with these exact bytes. */
static json_t *file_matches(pdqm_server *s, const pdqm_digests *d)
{
    json_t *arr = json_array();
    uint32_t *numbers;
    size_t n;
    pdqm_error err;
    if (pdqm_store_find_file(s->store, d->sha256, d->md5, &numbers, &n, &err) != PDQM_OK)
        return arr;
    for (size_t i = 0; i < n; i++) {
        pdqm_content_info info;
        pdqm_stored_hash *hashes;
        size_t nh;
        if (pdqm_store_content_by_number(s->store, numbers[i], &info, &hashes, &nh, &err))
            continue;
        json_t *m = json_pack("{s:s,s:s,s:b,s:b}", "bank", info.bank, "content_id",
                              info.content_id, "sha256", strcmp(info.sha256, d->sha256) == 0,
                              "md5", strcmp(info.md5, d->md5) == 0);
        if (m && info.metadata) {
            /* Its provenance, as lookups by hash give it (an exchange's). */
            json_t *meta = json_loads(info.metadata, JSON_DECODE_ANY, NULL);
            if (meta)
                json_object_set_new(m, "metadata", meta);
        }
        if (m)
            json_array_append_new(arr, m);
        free(hashes);
        pdqm_content_info_clear(&info);
    }
    free(numbers);
    return arr;
}

enum MHD_Result pdqm_post_lookup_media(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    const char *dist = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "max_distance");
    const char *dihedral = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dihedral");
    int max_distance = -1;
    if (dist) {
        long d = pdqm_arg_long(dist, 0, PDQM_MAX_DISTANCE);
        if (d < 0)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                               "max_distance is a number from 0 to 256");
        max_distance = (int)d;
    }
    int all8 = dihedral && strcmp(dihedral, "1") == 0;
    const char *minq = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "min_quality");
    int min_quality = -1;
    if (minq && (min_quality = (int)pdqm_arg_long(minq, 0, 100)) < 0)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "min_quality is a number from 0 to 100");
    const char *mins = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "min_segment");
    long min_segment = -1;
    if (mins && (min_segment = pdqm_arg_long(mins, 0, 86400)) < 0)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "min_segment is a number of seconds from 0 to 86400 (0: off)");
    const char *bursts = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "burst");
    long burst = PDQM_QUERY_BURST;
    if (bursts && (burst = pdqm_arg_long(bursts, 1, PDQM_VIDEO_MAX_BURST)) < 0)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "burst is a number of frames a sample from 1 to %d",
                           PDQM_VIDEO_MAX_BURST);
    hashed h;
    enum MHD_Result result;
    if (!hash_body(s, c, rq, PDQM_MEDIA_BARS | (all8 ? PDQM_MEDIA_DIHEDRAL : 0),
                   PDQM_QUERY_INTERVAL, (unsigned)burst, &h, &result))
        return result;
    pdqm_error err;
    pdqm_status st;
    json_t *j = hashed_json(&h, all8);
    json_t *matches = json_array();
    pdqm_json_raw raw;
    pdqm_json_raw_init(&raw);
    if (h.kind == PDQM_MEDIA_IMAGE) {
        pdqm_policy_options o;
        pdqm_policy_options_default(&o);
        o.max_distance = max_distance;
        if (min_quality >= 0)
            o.min_quality = min_quality;
        pdqm_query q = { all8 ? h.image.pdq.dihedral : &h.image.pdq.hash,
                         all8 ? PDQM_DIHEDRAL_COUNT : 1, h.image.pdq.quality };
        pdqm_policy_result r;
        st = pdqm_policy_lookup(s->store, &q, 1, &o, &r, &err);
        if (st == PDQM_OK) {
            pdqm_count_lookups(s, q.n, r.store_matches);
            json_decref(matches);
            pdqm_jtext t;
            pdqm_jtext_init(&t);
            pdqm_answers_text(&t, &r.queries[0], all8);
            char *text = pdqm_jtext_take(&t, NULL);
            matches = text ? pdqm_json_raw_text(&raw, text) : NULL;
            free(text);
            if (matches == NULL)
                st = pdqm_error_set(&err, PDQM_ERR_NOMEM, "out of memory");
            if (r.queries[0].not_matched)
                json_object_set_new(j, "not_matched", json_string(r.queries[0].not_matched));
            pdqm_policy_result_free(&r);
        }
    } else {
        pdqm_video_match_options o;
        pdqm_video_match_options_default(&o);
        if (max_distance >= 0)
            o.max_distance = max_distance;
        if (min_quality >= 0)
            o.min_quality = min_quality;
        if (min_segment >= 0)
            o.min_segment = (double)min_segment;
        o.dihedral = all8;
        pdqm_video_matches m;
        st = pdqm_store_match_video(s->store, h.video.frames, h.video.count, &o, &m, &err);
        if (st == PDQM_OK) {
            for (size_t i = 0; i < m.count; i++)
                json_array_append_new(matches, pdqm_video_candidate_json(&m.items[i], all8, &raw));
            pdqm_count_lookups(s, h.video.count, m.count);
            json_object_set_new(j, "query_frames", json_integer((json_int_t)m.query_frames));
            pdqm_video_matches_free(&m);
        }
        /* The frame list can be long; a lookup answers with the matches. */
        json_object_del(j, "frames");
    }
    if (st != PDQM_OK) {
        json_decref(j);
        json_decref(matches);
        hashed_free(&h);
        pdqm_json_raw_clear(&raw);
        return reply_status(c, st, &err);
    }
    json_object_set_new(j, "matches", matches);
    json_object_set_new(j, "file_matches", file_matches(s, hashed_digests(&h)));
    hashed_free(&h);
    return reply_json_raw(c, MHD_HTTP_OK, j, &raw);
}

enum MHD_Result pdqm_post_bank_media(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    const char *bank = rq->param[0];
    const char *cid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "content_id");
    pdqm_bank_info b;
    pdqm_error err;
    if (cid && pdqm_content_id_check(cid, &err) != PDQM_OK)
        return reply_status(c, err.status, &err);
    pdqm_status st = pdqm_store_bank_get(s->store, bank, &b, &err);
    if (st != PDQM_OK)   /* before hashing: an unknown bank costs nothing */
        return reply_status(c, st, &err);
    /* A video is stored by the library's rule, as `pdqmatch index` stores
     * it (?interval= overrides which frames are hashed). */
    pdqm_frame_rule rule;
    pdqm_frame_rule_default(&rule);
    hashed h;
    enum MHD_Result result;
    if (!hash_body(s, c, rq, 0, rule.interval, 1, &h, &result))
        return result;
    const pdqm_digests *d = hashed_digests(&h);
    pdqm_stored_hash one, *hashes = &one;
    size_t n = 1;
    if (h.kind == PDQM_MEDIA_IMAGE) {
        one.hash = h.image.pdq.hash;
        one.quality = h.image.pdq.quality;
        one.timestamp = 0;
        if (pdqm_hash_check(&one.hash, one.quality, &err) != PDQM_OK) {
            hashed_free(&h);
            return reply_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, pdqm_status_token(err.status),
                               "%s", err.message);
        }
    } else {
        hashes = malloc(h.video.count * sizeof *hashes);
        if (hashes == NULL) {
            hashed_free(&h);
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
        }
        n = pdqm_frames_select(&rule, h.video.frames, h.video.count, hashes);
        if (n == 0) {
            free(hashes);
            hashed_free(&h);
            return reply_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "degenerate_hash",
                               "no frame of the video has quality %d or more",
                               rule.min_quality);
        }
    }
    pdqm_add add = { .bank = bank, .content_id = cid ? cid : d->sha256, .sha256 = d->sha256,
                     .md5 = d->md5, .hashes = hashes, .n_hashes = n,
                     .kind = h.kind == PDQM_MEDIA_IMAGE ? PDQM_CONTENT_IMAGE
                                                        : PDQM_CONTENT_VIDEO };
    pdqm_add_outcome outcome;
    uint64_t seq;
    st = pdqm_write_add(&s->writer, &add, 1, 0, 0, &outcome, &seq, &err);
    json_t *j = NULL;
    if (st == PDQM_OK)
        j = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s}", "bank", bank, "content_id", add.content_id,
                      "type", h.kind == PDQM_MEDIA_IMAGE ? "image" : "video",
                      "hashes", (json_int_t)n, "sha256", d->sha256,
                      "outcome", outcome == PDQM_ADDED ? "added"
                               : outcome == PDQM_ADD_EXISTS ? "content_id_exists" : "same_file");
    j = pdqm_with_seq(j, seq);
    if (hashes != &one)
        free(hashes);
    hashed_free(&h);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    return reply_json(c, outcome == PDQM_ADDED ? MHD_HTTP_CREATED : MHD_HTTP_OK, j);
}
