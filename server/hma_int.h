/*
 * hma_int.h - what the files of HMA's API share (hma.c, hma_curation.c,
 * hma_matching.c).  Not part of the public API.
 *
 * HMA's routes answer as HMA 1.1.7's code does (../shared/spec/HMA-API.md):
 * errors {"message": ...} with its status codes (reply_error() takes that
 * shape for a route marked hma), a missing or ill-typed parameter 422 with
 * pydantic's list of errors.
 */
#ifndef PDQM_HMA_INT_H
#define PDQM_HMA_INT_H

#include "server_int.h"
#include "../core/hma.h"

/* The value of query argument name, NULL when absent. */
const char *hma_arg(struct MHD_Connection *c, const char *name);

/* 422 with pydantic's error list: "missing" for each of n required
 * fields named that are absent (input: the query's known fields, or the
 * body).  input is consumed. */
enum MHD_Result hma_reply_missing(struct MHD_Connection *c, const char *const *fields, size_t n,
                                  json_t *input);

/* 422 of one field of the wrong form: type ("bool_parsing"), message and
 * the value given. */
enum MHD_Result hma_reply_invalid(struct MHD_Connection *c, const char *field,
                                  const char *type, const char *msg, json_t *value);

/* pydantic's lax booleans: 1 and *out, or 0 when text is none of them. */
int hma_parse_bool(const char *text, int *out);

/* The body as a JSON value (NULL when there is none or it is not JSON). */
json_t *hma_body(const request *rq);

/* {"name", "matching_enabled_ratio"} of a bank. */
json_t *hma_bank_json(const pdqm_bank_info *b);

/* A match of a lookup: the item, its bank and HMA's distance text. */
typedef struct hma_hit {
    uint32_t number;
    char bank[PDQM_BANK_NAME_MAX + 1];
    char distance[32];
    double order;              /* to sort by: the distance */
} hma_hit;

typedef struct hma_hits {
    hma_hit *v;
    size_t n;
} hma_hits;

void hma_hits_free(hma_hits *h);

/* Look up a signal of one type (text as given) in every bank: with
 * PDQM_LOOKUP_DISABLED disabled content too (raw_lookup), with
 * PDQM_LOOKUP_ALL_BANKS every bank whatever its ratio, else the banks the
 * draw lets in.  Only items that have the signal type match (a pdq lookup
 * finds images and hash-list items, not a video's frames).  On failure
 * it replies (400 with HMA's message: "No such SignalType 'x'", "invalid
 * signal: ...") and returns 0. */
int hma_lookup(pdqm_server *s, struct MHD_Connection *c, const char *type, const char *signal,
               unsigned flags, double draw, hma_hits *out, enum MHD_Result *result);

/* The media of a request, hashed to HMA's signals: for a photo "pdq" ("" when
 * its quality is under 50), for a video "video_md5" and "vpdq"; only the
 * types named in types (a comma list, NULL: all).  content_type "photo"
 * or "video".  *frames (when not NULL) gets the video's frames (free()).
 * On failure it replies and returns 0. */
int hma_hash_media(pdqm_server *s, struct MHD_Connection *c, const uint8_t *data, size_t size,
                   const char *content_type, const char *types, json_t **signals,
                   pdqm_stored_hash **frames, size_t *n_frames, char sha256[65],
                   enum MHD_Result *result);

/* The media of a request as HMA takes it: the form's one file (its field
 * the content type: *content_type), or the body fetched from url (its
 * content type from content_type_hint, else the response's
 * Content-Type).  On failure it replies with HMA's message and returns 0.
 * *data is the request's own body or a fetched one (*fetched, freed by
 * the caller with pdqm_fetched_free). */
int hma_media_of(pdqm_server *s, struct MHD_Connection *c, request *rq, const char *url,
                 const char *content_type_hint, const uint8_t **data, size_t *size,
                 const char **content_type, pdqm_fetched *fetched, enum MHD_Result *result);

/* The routes, by file. */
enum MHD_Result hma_get_banks(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_post_banks(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_get_bank(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_put_bank(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_delete_bank(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_post_content(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_post_signal(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_get_content(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_put_content(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_delete_content(pdqm_server *s, struct MHD_Connection *c, request *rq);

enum MHD_Result hma_get_raw_lookup(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_get_lookup(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_post_lookup(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_post_compare(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_get_hash(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result hma_post_hash(pdqm_server *s, struct MHD_Connection *c, request *rq);

#endif
