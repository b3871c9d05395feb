/*
 * hma_matching.c - HMA's /m/ routes (lookups, compare, the index) and /h/
 * (hashing), on the store's exact search.
 *
 * What HMA's index answers, pdqmatch's store answers at once: an item
 * added is found by the next lookup (HMA waits for its next index build).
 * A "pdq" lookup is a PDQ search within each bank's threshold (31 unless
 * changed), of images and hash-list items; "video_md5" finds videos by
 * their file's MD5; "vpdq" matches a list of frames by vPDQ's rule (80 %
 * of the query's frames).  /m/raw_lookup sees disabled content and every
 * bank, as HMA's does; /m/lookup drops disabled content and lets each bank
 * take part by its enabled ratio ("coinflip", seeded by ?seed=).
 */
#define _POSIX_C_SOURCE 200809L
#include "hma_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/ingest.h"
#include "../hashing/digest.h"
#include "../hashing/media.h"
#include "../index/match.h"

/* Frames of a vpdq signal, at most (a day at a frame a second); of
 * each of the two signals /m/compare compares frame by frame. */
#define VPDQ_MAX_FRAMES 100000
#define COMPARE_MAX_FRAMES 10000

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

static int hits_add(hma_hits *h, size_t *cap, uint32_t number, const char *bank,
                    const char *distance, double order)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i].number == number) {   /* one hit an item, its nearest */
            if (order < h->v[i].order) {
                snprintf(h->v[i].distance, sizeof h->v[i].distance, "%s", distance);
                h->v[i].order = order;
            }
            return 0;
        }
    if (h->n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        hma_hit *grown = realloc(h->v, c * sizeof *grown);
        if (grown == NULL)
            return -1;
        h->v = grown;
        *cap = c;
    }
    hma_hit *x = &h->v[h->n++];
    x->number = number;
    snprintf(x->bank, sizeof x->bank, "%s", bank);
    snprintf(x->distance, sizeof x->distance, "%s", distance);
    x->order = order;
    return 0;
}

static int hit_order(const void *pa, const void *pb)
{
    const hma_hit *a = pa, *b = pb;
    if (a->order != b->order)
        return a->order < b->order ? -1 : 1;
    return (a->number > b->number) - (a->number < b->number);
}

static int lookup_pdq(pdqm_server *s, const pdqm_hash256 *h, unsigned flags, double draw,
                      hma_hits *out, pdqm_error *err)
{
    pdqm_lookup_options o = { -1, NULL, 0, draw, flags };
    pdqm_matches m;
    if (pdqm_store_lookup(s->store, h, 1, &o, &m, err) != PDQM_OK)
        return -1;
    size_t cap = 0;
    for (size_t i = 0; i < m.count; i++) {
        const pdqm_match *x = &m.items[i];
        if (!pdqm_hma_kind_has(x->kind, PDQM_HMA_PDQ))
            continue;
        char d[16];
        snprintf(d, sizeof d, "%d", x->distance);
        if (hits_add(out, &cap, x->content, x->bank, d, x->distance) != 0) {
            pdqm_matches_free(&m);
            pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
            return -1;
        }
    }
    pdqm_count_lookups(s, 1, m.count);
    pdqm_matches_free(&m);
    return 0;
}

/* Videos stored from a file of this MD5, by the same rules of banks and
 * disabled content as a search. */
static int lookup_md5(pdqm_server *s, const char *md5, unsigned flags, double draw,
                      hma_hits *out, pdqm_error *err)
{
    uint32_t *numbers;
    size_t n, cap = 0;
    if (pdqm_store_find_file(s->store, NULL, md5, &numbers, &n, err) != PDQM_OK)
        return -1;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        pdqm_content_info info;
        pdqm_stored_hash *hashes;
        size_t nh;
        pdqm_bank_info b;
        if (pdqm_store_content_by_number(s->store, numbers[i], &info, &hashes, &nh, NULL))
            continue;
        free(hashes);
        int take = pdqm_hma_kind_has(info.kind, PDQM_HMA_VIDEO_MD5) &&
                   ((flags & PDQM_LOOKUP_DISABLED) ||
                    !pdqm_content_disabled(info.disabled_until, now)) &&
                   pdqm_store_bank_get(s->store, info.bank, &b, NULL) == PDQM_OK &&
                   pdqm_bank_takes_part(b.enabled_ratio, draw, flags);
        if (take && hits_add(out, &cap, numbers[i], info.bank, "-", 0) != 0) {
            pdqm_content_info_clear(&info);
            free(numbers);
            pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
            return -1;
        }
        pdqm_content_info_clear(&info);
    }
    pdqm_count_lookups(s, 1, n);
    free(numbers);
    return 0;
}

static int lookup_vpdq(pdqm_server *s, const pdqm_stored_hash *frames, size_t n,
                       unsigned flags, double draw, hma_hits *out, pdqm_error *err)
{
    pdqm_video_frame *vf = calloc(n ? n : 1, sizeof *vf);
    if (vf == NULL) {
        pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        vf[i].frame = (uint32_t)i;
        vf[i].timestamp = frames[i].timestamp;
        vf[i].hash = frames[i].hash;
        vf[i].quality = frames[i].quality;
    }
    /* vPDQ's rule alone: 80 % of the query's frames, no segment rule. */
    pdqm_video_match_options o;
    pdqm_video_match_options_default(&o);
    o.min_segment = 0;
    o.draw = draw;
    o.flags = flags;
    pdqm_video_matches m;
    pdqm_status st = pdqm_store_match_video(s->store, vf, n, &o, &m, err);
    free(vf);
    if (st != PDQM_OK)
        return -1;
    size_t cap = 0;
    for (size_t i = 0; i < m.count; i++) {
        const pdqm_video_candidate *x = &m.items[i];
        if (!pdqm_hma_kind_has(x->kind, PDQM_HMA_VPDQ) || x->rule != PDQM_RULE_PERCENT)
            continue;
        char d[32];
        pdqm_hma_vpdq_distance(x->query_pct, x->candidate_pct, d);
        if (hits_add(out, &cap, x->number, x->bank, d, -x->query_pct) != 0) {
            pdqm_video_matches_free(&m);
            pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
            return -1;
        }
    }
    pdqm_count_lookups(s, n, m.count);
    pdqm_video_matches_free(&m);
    return 0;
}

int hma_lookup(pdqm_server *s, struct MHD_Connection *c, const char *type, const char *signal,
               unsigned flags, double draw, hma_hits *out, enum MHD_Result *result)
{
    memset(out, 0, sizeof *out);
    int t = pdqm_hma_signal_parse(type);
    if (t < 0) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "No such SignalType '%s'",
                              type);
        return 0;
    }
    pdqm_error err;
    int rc;
    if (t == PDQM_HMA_PDQ) {
        pdqm_hash256 h;
        if (pdqm_hma_pdq_parse(signal, &h, &err) != PDQM_OK)
            goto invalid;
        rc = lookup_pdq(s, &h, flags, draw, out, &err);
    } else if (t == PDQM_HMA_VIDEO_MD5) {
        char md5[33];
        if (pdqm_hma_md5_parse(signal, md5, &err) != PDQM_OK)
            goto invalid;
        rc = lookup_md5(s, md5, flags, draw, out, &err);
    } else {
        pdqm_stored_hash *frames;
        size_t n;
        pdqm_status st = pdqm_hma_vpdq_parse(signal, strlen(signal), VPDQ_MAX_FRAMES, &frames,
                                             &n, &err);
        if (st != PDQM_OK) {
            if (st == PDQM_ERR_NOMEM) {
                *result = reply_status(c, st, &err);
                return 0;
            }
            goto invalid;
        }
        rc = lookup_vpdq(s, frames, n, flags, draw, out, &err);
        free(frames);
    }
    if (rc != 0) {
        hma_hits_free(out);
        *result = reply_status(c, err.status, &err);
        return 0;
    }
    if (out->n > 1)   /* (v is NULL when nothing matched) */
        qsort(out->v, out->n, sizeof *out->v, hit_order);
    return 1;
invalid:
    *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "invalid signal: %s", err.message);
    return 0;
}

/* Keep only the hits in the banks named (a comma list; NULL: all). */
static void hits_in_banks(hma_hits *h, const char *banks)
{
    if (banks == NULL)
        return;
    size_t w = 0;
    for (size_t i = 0; i < h->n; i++) {
        int in = 0;
        for (const char *p = banks; *p && !in;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            in = len == strlen(h->v[i].bank) && strncmp(p, h->v[i].bank, len) == 0;
            p += len + (comma != NULL);
            if (comma == NULL)
                break;
        }
        if (in)
            h->v[w++] = h->v[i];
    }
    h->n = w;
}

/* {"BANK": [{"bank_content_id", "distance"}], ...} */
static json_t *by_bank(const hma_hits *h)
{
    json_t *out = json_object();
    for (size_t i = 0; i < h->n; i++) {
        json_t *list = json_object_get(out, h->v[i].bank);
        if (list == NULL) {
            list = json_array();
            json_object_set_new(out, h->v[i].bank, list);
        }
        json_array_append_new(list, json_pack("{s:I,s:s}", "bank_content_id",
                                              (json_int_t)h->v[i].number, "distance",
                                              h->v[i].distance));
    }
    return out;
}

/* The query's known fields as the 422's input (pydantic's). */
static json_t *query_input(struct MHD_Connection *c, const char *const *fields, size_t n)
{
    json_t *in = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *v = hma_arg(c, fields[i]);
        if (v)
            json_object_set_new(in, fields[i], json_string(v));
    }
    return in;
}

enum MHD_Result hma_get_raw_lookup(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    static const char *const fields[] = { "signal", "signal_type", "banks",
                                          "include_distance" };
    const char *signal = hma_arg(c, "signal"), *type = hma_arg(c, "signal_type");
    const char *dist = hma_arg(c, "include_distance");
    if (!signal || !type) {
        const char *missing[2];
        size_t n = 0;
        if (!signal)
            missing[n++] = "signal";
        if (!type)
            missing[n++] = "signal_type";
        return hma_reply_missing(c, missing, n, query_input(c, fields, 4));
    }
    int with_distance = 0;
    if (dist && !hma_parse_bool(dist, &with_distance))
        return hma_reply_invalid(c, "include_distance", "bool_parsing",
                                 "Input should be a valid boolean, unable to interpret input",
                                 json_string(dist));
    hma_hits h;
    enum MHD_Result result;
    /* As HMA's index: disabled content and every bank. */
    if (!hma_lookup(s, c, type, signal, PDQM_LOOKUP_DISABLED | PDQM_LOOKUP_ALL_BANKS, 0, &h,
                    &result))
        return result;
    const char *banks = hma_arg(c, "banks");
    hits_in_banks(&h, banks && *banks ? banks : NULL);
    json_t *list = json_array();
    for (size_t i = 0; i < h.n; i++)
        json_array_append_new(list, with_distance
                                        ? json_pack("{s:I,s:s}", "bank_content_id",
                                                    (json_int_t)h.v[i].number, "distance",
                                                    h.v[i].distance)
                                        : json_integer((json_int_t)h.v[i].number));
    hma_hits_free(&h);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "matches", list));
}

/* The draw of a lookup: from ?seed= when given (the same seed, the same
 * banks), else a new one. */
static double lookup_draw(struct MHD_Connection *c)
{
    return pdqm_lookup_draw(hma_arg(c, "seed"));
}

/* Each signal of signals looked up as /m/lookup does: {"type": {BANK: [...]}}. */
static int lookup_signals(pdqm_server *s, struct MHD_Connection *c, json_t *signals,
                          unsigned flags, double draw, const char *banks, json_t **out,
                          enum MHD_Result *result)
{
    *out = json_object();
    const char *type;
    json_t *v;
    json_object_foreach(signals, type, v) {
        const char *text = json_string_value(v);
        hma_hits h;
        if (text == NULL || (strcmp(type, "pdq") == 0 && text[0] == '\0')) {
            /* A photo of quality under 50: HMA looks up "" and fails. */
            *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                  "invalid signal: invalid PDQ hash");
            json_decref(*out);
            return 0;
        }
        if (!hma_lookup(s, c, type, text, flags, draw, &h, result)) {
            json_decref(*out);
            return 0;
        }
        hits_in_banks(&h, banks);
        json_object_set_new(*out, type, by_bank(&h));
        hma_hits_free(&h);
    }
    return 1;
}

enum MHD_Result hma_get_lookup(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    const char *url = hma_arg(c, "url"), *signal = hma_arg(c, "signal");
    const char *type = hma_arg(c, "signal_type"), *banks = hma_arg(c, "banks");
    if (banks && *banks == '\0')
        banks = NULL;
    double draw = lookup_draw(c);
    enum MHD_Result result;
    if (url == NULL) {
        if (signal == NULL || type == NULL || *signal == '\0' || *type == '\0')
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                               "Either url or both signal and signal_type are required");
        hma_hits h;
        if (!hma_lookup(s, c, type, signal, 0, draw, &h, &result))
            return result;
        hits_in_banks(&h, banks);
        json_t *j = by_bank(&h);
        hma_hits_free(&h);
        return reply_json(c, MHD_HTTP_OK, j);
    }
    const uint8_t *data;
    size_t size;
    const char *content_type;
    pdqm_fetched fetched = { 0 };
    json_t *signals = NULL, *out = NULL;
    if (hma_media_of(s, c, rq, url, hma_arg(c, "content_type"), &data, &size, &content_type,
                     &fetched, &result) &&
        hma_hash_media(s, c, data, size, content_type, hma_arg(c, "types"), &signals, NULL,
                       NULL, NULL, &result) &&
        lookup_signals(s, c, signals, 0, draw, banks, &out, &result)) {
        if (type) {   /* flattened to the one type asked for */
            json_t *one = json_object_get(out, type);
            result = reply_json(c, MHD_HTTP_OK, one ? json_incref(one) : json_object());
            json_decref(out);
        } else {
            result = reply_json(c, MHD_HTTP_OK, out);
        }
    }
    json_decref(signals);
    pdqm_fetched_free(&fetched);
    return result;
}

enum MHD_Result hma_post_lookup(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    if (!rq->form || rq->file_fields == 0)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "Missing multipart/form-data file upload");
    const char *bypass = hma_arg(c, "bypass_coinflip");
    unsigned flags = bypass && strcmp(bypass, "true") == 0 ? PDQM_LOOKUP_ALL_BANKS : 0;
    const char *banks = hma_arg(c, "banks");
    if (banks && *banks == '\0')
        banks = NULL;
    const uint8_t *data;
    size_t size;
    const char *content_type;
    pdqm_fetched none = { 0 };
    json_t *signals = NULL, *out = NULL;
    enum MHD_Result result;
    if (hma_media_of(s, c, rq, NULL, NULL, &data, &size, &content_type, &none, &result) &&
        hma_hash_media(s, c, data, size, content_type, NULL, &signals, NULL, NULL, NULL,
                       &result) &&
        lookup_signals(s, c, signals, flags, lookup_draw(c), banks, &out, &result))
        result = reply_json(c, MHD_HTTP_OK, out);
    json_decref(signals);
    return result;
}

enum MHD_Result hma_post_compare(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s;
    json_t *j = hma_body(rq);
    if (!json_is_object(j)) {
        json_decref(j);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Request input was not a dict");
    }
    json_t *out = json_object();
    const char *type;
    json_t *pair;
    enum MHD_Result result = MHD_YES;
    int failed = 0;
    json_object_foreach(j, type, pair) {
        pdqm_error err;
        int t = pdqm_hma_signal_parse(type);
        const char *a = json_string_value(json_array_get(pair, 0));
        const char *b = json_string_value(json_array_get(pair, 1));
        if (!json_is_array(pair)) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                 "Comparison hashes for %s was not a list", type);
        } else if (json_array_size(pair) != 2) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                 "Comparison hash list length must be exactly 2");
        } else if (t < 0) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "No such SignalType '%s'",
                                 type);
        } else if (a == NULL || b == NULL) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Invalid %s hash: a hash "
                                 "is a string", type);
        } else if (t == PDQM_HMA_PDQ) {
            pdqm_hash256 x, y;
            if (pdqm_hma_pdq_parse(a, &x, &err) != PDQM_OK ||
                pdqm_hma_pdq_parse(b, &y, &err) != PDQM_OK) {
                result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Invalid %s hash: %s",
                                     type, err.message);
            } else {
                int d = pdqm_hash256_distance(&x, &y);
                json_object_set_new(out, type, json_pack("[b,{s:i}]", d <= PDQM_DEFAULT_THRESHOLD,
                                                         "distance", d));
                continue;
            }
        } else if (t == PDQM_HMA_VIDEO_MD5) {
            char x[33], y[33];
            if (pdqm_hma_md5_parse(a, x, &err) != PDQM_OK ||
                pdqm_hma_md5_parse(b, y, &err) != PDQM_OK) {
                result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Invalid %s hash: %s",
                                     type, err.message);
            } else {
                json_object_set_new(out, type, json_pack("[b,{}]", strcmp(x, y) == 0));
                continue;
            }
        } else {
            /* A brute-force comparison: its lists are bounded. */
            pdqm_stored_hash *fa = NULL, *fb = NULL;
            size_t na, nb;
            double qp = 0, cp = 0;
            int ok = pdqm_hma_vpdq_parse(a, strlen(a), COMPARE_MAX_FRAMES, &fa, &na, &err) ==
                         PDQM_OK &&
                     pdqm_hma_vpdq_parse(b, strlen(b), COMPARE_MAX_FRAMES, &fb, &nb, &err) ==
                         PDQM_OK &&
                     pdqm_vpdq_compare(fa, na, fb, nb, &qp, &cp, &err) == PDQM_OK;
            free(fa);
            free(fb);
            if (ok) {
                json_object_set_new(out, type,
                                    json_pack("[b,{s:f,s:f}]", qp >= 80.0 && cp >= 0.0,
                                              "query_match_percent", qp,
                                              "compared_match_percent", cp));
                continue;
            }
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Invalid %s hash: %s", type,
                                 err.message);
        }
        failed = 1;
        break;
    }
    json_decref(j);
    if (failed) {
        json_decref(out);
        return result;
    }
    return reply_json(c, MHD_HTTP_OK, out);
}

/* ------------------------------------------------------------------ */
/* Hashing                                                              */

/* HMA's content types: "photo" and "video". */
static int content_type_ok(const char *name)
{
    return strcmp(name, "photo") == 0 || strcmp(name, "video") == 0;
}

int hma_media_of(pdqm_server *s, struct MHD_Connection *c, request *rq, const char *url,
                 const char *content_type_hint, const uint8_t **data, size_t *size,
                 const char **content_type, pdqm_fetched *fetched, enum MHD_Result *result)
{
    memset(fetched, 0, sizeof *fetched);
    if (url == NULL) {
        if (!content_type_ok(rq->file_field)) {
            *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                  "no such content_type: '%s'", rq->file_field);
            return 0;
        }
        *content_type = strcmp(rq->file_field, "photo") == 0 ? "photo" : "video";
        *data = (const uint8_t *)rq->body;
        *size = rq->size;
        return 1;
    }
    if (content_type_hint && *content_type_hint && !content_type_ok(content_type_hint)) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "no such content_type: '%s'",
                              content_type_hint);
        return 0;
    }
    pdqm_error err;
    pdqm_status st = s->fetcher ? pdqm_fetch(s->fetcher, url, fetched, &err)
                                : pdqm_error_set(&err, PDQM_ERR_INVALID, "fetching is off");
    if (st != PDQM_OK) {
        if (s->log)
            PDQM_LOG(s->log, PDQM_LOG_INFO, "fetch refused", PDQM_LOG_S("error", err.message));
        if (st == PDQM_ERR_INVALID)
            *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                  "Invalid or unsafe URL provided");
        else if (st == PDQM_ERR_TOO_LARGE)
            *result = reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                  "Content too large");
        else if (st == PDQM_ERR_UNAVAILABLE)
            *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Failed to fetch URL: %s",
                                  err.message);
        else
            *result = reply_status(c, st, &err);
        return 0;
    }
    if (content_type_hint && *content_type_hint) {
        *content_type = strcmp(content_type_hint, "photo") == 0 ? "photo" : "video";
    } else if (strncasecmp(fetched->content_type, "image", 5) == 0) {
        *content_type = "photo";
    } else if (strncasecmp(fetched->content_type, "video", 5) == 0) {
        *content_type = "video";
    } else {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                              "unsupported url ContentType: '%s', if you know the expected "
                              "type, provide it with the content_type query param",
                              fetched->content_type);
        pdqm_fetched_free(fetched);
        return 0;
    }
    *data = fetched->data;
    *size = fetched->size;
    return 1;
}

/* Which signal types of a content type are asked for: 0 after replying
 * 400 with HMA's message. */
static int signal_types(struct MHD_Connection *c, const char *content_type, const char *types,
                        int want[PDQM_HMA_SIGNALS], enum MHD_Result *result)
{
    int video = strcmp(content_type, "video") == 0;
    for (int i = 0; i < PDQM_HMA_SIGNALS; i++)
        want[i] = types == NULL && (i == PDQM_HMA_PDQ ? !video : video);
    if (types == NULL)
        return 1;
    int any = 0;
    for (const char *p = types; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[64];
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, p, len);
        name[len] = '\0';
        if (len > 0) {
            int t = pdqm_hma_signal_parse(name);
            if (t < 0 || (t == PDQM_HMA_PDQ) == video) {
                *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                      "signal type '%s' doesn't exist or is disabled", name);
                return 0;
            }
            want[t] = 1;
            any = 1;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    if (!any) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "empty signal type selection");
        return 0;
    }
    return 1;
}

int hma_hash_media(pdqm_server *s, struct MHD_Connection *c, const uint8_t *data, size_t size,
                   const char *content_type, const char *types, json_t **signals,
                   pdqm_stored_hash **frames, size_t *n_frames, char sha256[65],
                   enum MHD_Result *result)
{
    *signals = NULL;
    if (frames)
        *frames = NULL;
    if (n_frames)
        *n_frames = 0;
    int want[PDQM_HMA_SIGNALS];
    if (!signal_types(c, content_type, types, want, result))
        return 0;
    if (size == 0) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "the file is empty");
        return 0;
    }
    pdqm_error err;
    double start = pdqm_monotonic_seconds();
    json_t *out = json_object();
    if (strcmp(content_type, "photo") == 0) {
        if (size > s->image_limits.max_bytes) {
            json_decref(out);
            *result = reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                  "Content too large");
            return 0;
        }
        pdqm_image_hash ih;
        pdqm_media_enter(s);
        pdqm_status st = pdqm_hash_image_bytes(data, size, &s->image_limits,
                                               sha256 ? PDQM_MEDIA_DIGESTS : 0, &ih, &err);
        pdqm_media_leave(s);
        if (st != PDQM_OK) {
            json_decref(out);
            *result = reply_status(c, st, &err);
            return 0;
        }
        char hex[PDQM_HASH_HEX_LEN + 1] = "";
        if (ih.pdq.quality >= PDQM_DEFAULT_MIN_QUALITY)   /* HMA's "" under 50 */
            pdqm_hash256_to_hex(&ih.pdq.hash, hex);
        json_object_set_new(out, "pdq", json_string(hex));
        if (sha256)
            snprintf(sha256, 65, "%s", ih.digests.sha256);
    } else {
        if (size > s->video_limits.max_bytes) {
            json_decref(out);
            *result = reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                  "Content too large");
            return 0;
        }
        pdqm_digests d;
        if (pdqm_digest(data, size, &d, &err) != PDQM_OK) {
            json_decref(out);
            *result = reply_status(c, err.status, &err);
            return 0;
        }
        if (sha256)
            snprintf(sha256, 65, "%s", d.sha256);
        if (want[PDQM_HMA_VIDEO_MD5])
            json_object_set_new(out, "video_md5", json_string(d.md5));
        if (want[PDQM_HMA_VPDQ]) {
            /* vPDQ's frames: one a second, as its hasher picks them. */
            pdqm_video_hashes v;
            pdqm_media_enter(s);
            pdqm_status st = pdqm_hash_video_bytes(data, size, &s->video_limits, 1.0, 1, 0, &v,
                                                   &err);
            pdqm_media_leave(s);
            if (st != PDQM_OK) {
                json_decref(out);
                *result = reply_status(c, st, &err);
                return 0;
            }
            pdqm_stored_hash *f = malloc((v.count ? v.count : 1) * sizeof *f);
            char *text = NULL;
            if (f) {
                for (size_t i = 0; i < v.count; i++) {
                    f[i].hash = v.frames[i].hash;
                    f[i].quality = v.frames[i].quality;
                    f[i].timestamp = v.frames[i].timestamp;
                }
                text = pdqm_hma_vpdq_text(f, v.count);
            }
            size_t count = v.count;
            pdqm_video_hashes_free(&v);
            if (text == NULL) {
                free(f);
                json_decref(out);
                *result = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem",
                                      "out of memory");
                return 0;
            }
            json_object_set_new(out, "vpdq", json_string(text));
            free(text);
            if (frames && n_frames) {
                *frames = f;
                *n_frames = count;
            } else {
                free(f);
            }
        }
    }
    pdqm_metrics_hashing(s->metrics, pdqm_monotonic_seconds() - start);
    *signals = out;
    return 1;
}

enum MHD_Result hma_get_hash(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    const char *url = hma_arg(c, "url");
    if (url == NULL) {
        static const char *const fields[] = { "url", "content_type", "types" };
        static const char *const need[] = { "url" };
        return hma_reply_missing(c, need, 1, query_input(c, fields, 3));
    }
    const uint8_t *data;
    size_t size;
    const char *content_type;
    pdqm_fetched fetched;
    json_t *signals;
    enum MHD_Result result;
    if (hma_media_of(s, c, rq, url, hma_arg(c, "content_type"), &data, &size, &content_type,
                     &fetched, &result) &&
        hma_hash_media(s, c, data, size, content_type, hma_arg(c, "types"), &signals, NULL,
                       NULL, NULL, &result))
        result = reply_json(c, MHD_HTTP_OK, signals);
    pdqm_fetched_free(&fetched);
    return result;
}

enum MHD_Result hma_post_hash(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    if (!rq->form || rq->file_fields == 0)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "Missing multipart/form-data file upload");
    const uint8_t *data;
    size_t size;
    const char *content_type;
    pdqm_fetched none;
    json_t *signals;
    enum MHD_Result result;
    if (hma_media_of(s, c, rq, NULL, NULL, &data, &size, &content_type, &none, &result) &&
        hma_hash_media(s, c, data, size, content_type, NULL, &signals, NULL, NULL, NULL,
                       &result))
        result = reply_json(c, MHD_HTTP_OK, signals);
    return result;
}
