/*
 * exchange_int.h - what the files of exchange/ share: the HTTP client,
 * the record every client produces, and the client interface the fetch
 * drives (fetch.c).
 */
#ifndef PDQM_EXCHANGE_INT_H
#define PDQM_EXCHANGE_INT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "exchange.h"

/* ------------------------------------------------------------------ */
/* HTTP (http.c)                                                        */

struct xrequest;
struct xresponse;

typedef struct xhttp {
    double timeout;            /* seconds a try */
    size_t max_bytes;          /* of a body */
    int max_retries;
    double retry_base, max_wait;
    const char *ca_file;
    atomic_int *stop;
    void (*on_retry)(void *arg, const char *url, long code, double wait);
    void *arg;
    uint64_t requests, retries;   /* counted */
    /* Tests only (the fuzz target): answers in place of the network. */
    pdqm_status (*canned)(void *arg, const struct xrequest *q, struct xresponse *out);
    void *canned_arg;
} xhttp;

typedef struct xrequest {
    const char *url;
    const char *const *headers;   /* "Name: value" */
    size_t n_headers;
    const char *userpwd;       /* HTTP Basic "user:password", or NULL */
    const char *body;          /* JSON to POST, or NULL for a GET */
} xrequest;

typedef struct xresponse {
    long code;
    char *body;                /* NUL-terminated (malloc'd), may be NULL */
    size_t size;
} xresponse;

/* One request, retried on 429, 5xx and failed connections (at most
 * max_retries more tries, waiting Retry-After or a doubling backoff, at
 * most max_wait).  PDQM_OK for a 2xx; else PDQM_ERR_INVALID (another 4xx,
 * its code in out->code and the body kept), PDQM_ERR_NOT_FOUND (404),
 * PDQM_ERR_UNAVAILABLE (retries spent, or stopped), PDQM_ERR_TOO_LARGE
 * (a body over max_bytes). */
pdqm_status xhttp_request(xhttp *h, const xrequest *q, xresponse *out, pdqm_error *err);
void xresponse_free(xresponse *r);

/* A URL as messages show it: no query, no fragment. */
void xurl_for_humans(const char *url, char *out, size_t size);

/* ------------------------------------------------------------------ */
/* Records (record.c)                                                   */

typedef enum xsignal {
    XSIG_NONE = 0,             /* nothing pdqmatch matches: counted, skipped */
    XSIG_PDQ = 1,
    XSIG_VIDEO_MD5 = 2
} xsignal;

/* One record of an exchange, as its client read it.  Strings are the
 * page's (valid until the next page). */
typedef struct xrecord {
    const char *id;            /* the source's record id */
    int deleted;               /* a tombstone or a withdrawal */
    int64_t updated;           /* the source's time of the record (0: none) */
    xsignal signal;
    const char *hash;          /* PDQ: 64 hex; video MD5: 32 hex */
    const char *other;         /* XSIG_NONE: the signal type, for the count */
    json_t *provenance;        /* an object of what the source says (owned by
                                  the page), or NULL */
    const char *bad;           /* not NULL: why the record is malformed (it is
                                  skipped and reported) */
} xrecord;

/* A page: records, then the checkpoint once it is stored. */
typedef struct xpage {
    xrecord *recs;
    size_t n, cap;
    char *checkpoint;          /* JSON text (malloc'd) */
    int done;                  /* no page after this one */
    int full_refetch;          /* this run fetches everything again: at its
                                  end, items of the bank no page named are
                                  deleted (the source forgot its tombstones) */
    uint64_t bad_pages;        /* pages the client could not read and skipped */
    json_t *keep;              /* what the records' strings point into */
    char **strings;            /* copies the page owns */
    size_t n_strings, cap_strings;
} xpage;

xrecord *xpage_add(xpage *p);
/* A copy of s (n bytes) the page owns; NULL when out of memory. */
const char *xpage_strdup(xpage *p, const char *s, size_t n);
void xpage_clear(xpage *p);    /* empties it for the next page */

/* The item a live record becomes, written into the caller's storage:
 * metadata (JSON text, malloc'd into *metadata) and the hash.  Returns
 * PDQM_OK, or the reason the record is refused (PDQM_ERR_INVALID: a bad
 * id or hash; PDQM_ERR_DEGENERATE: a PDQ with nothing to match). */
pdqm_status xrecord_to_add(const pdqm_exchange_config *c, const xrecord *r, int64_t added,
                           pdqm_add *out, pdqm_stored_hash *hash, char **metadata,
                           pdqm_error *err);

/* The credentials file's object, checked (record.c). */
pdqm_status xcredentials_load(const pdqm_exchange_config *c, json_t **out, pdqm_error *err);

/* A status as the store keeps it, and back (unreadable: all zero). */
char *xstatus_to_json(const pdqm_exchange_status *s);
void xstatus_from_json(const char *text, pdqm_exchange_status *s);

/* Checks of a record's id alone (the rule of content ids). */
pdqm_status xrecord_id_check(const char *id, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* Clients                                                              */

typedef struct xctx {
    const pdqm_exchange_config *config;
    const char *base;          /* the base URL, without a trailing '/' */
    json_t *credentials;       /* the file's object */
    json_t *checkpoint;        /* the stored checkpoint (NULL: none) */
    xhttp *http;
    int64_t now;               /* the fetch's start (unix seconds) */
    void (*log)(struct xctx *x, pdqm_exchange_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
    void *log_arg;
    void *state;               /* the client's */
} xctx;

typedef struct xclient {
    pdqm_exchange_type type;
    /* Set up a run from x->checkpoint. */
    pdqm_status (*start)(xctx *x, pdqm_error *err);
    /* Fetch the next page into p (cleared by the caller): its records,
     * the checkpoint that holds once they are stored, done when it is the
     * last.  An error stops the run (what is stored stays). */
    pdqm_status (*next)(xctx *x, xpage *p, pdqm_error *err);
    void (*finish)(xctx *x);
} xclient;

extern const xclient xclient_ncmec, xclient_stopncii, xclient_threatexchange, xclient_tcap;

/* Helpers the clients share (clients.c): a string member of the
 * credentials; a JSON checkpoint's number or string; URL building. */
const char *xcred(xctx *x, const char *key);
int64_t xjson_int(const json_t *o, const char *key, int64_t dflt);
/* A JSON number (a double) as a whole number, dflt when out of range. */
int64_t xnum_to_int(double v, int64_t dflt);
const char *xjson_str(const json_t *o, const char *key);
/* A JSON value of an answer as text for provenance: a string or a number
 * as a string, NULL otherwise. */
const char *xjson_text(xpage *p, const json_t *v);
/* Append "name=value" (value URL-encoded) to a URL being built. */
int xurl_param(char *url, size_t size, const char *name, const char *value);
/* Whether url is on the same scheme, host and port as base (a paging link
 * may not take the fetch elsewhere). */
int xurl_same_origin(const char *base, const char *url);
/* The body of an answer as JSON (an object), or PDQM_ERR_INVALID saying
 * where it breaks. */
pdqm_status xjson_body(const xresponse *r, const char *what, json_t **out, pdqm_error *err);
/* A set of strings (copies). */
typedef struct xset {
    char **slots;
    size_t cap, n;
} xset;
uint64_t xstr_hash(const char *s);
/* 1 when s is in the set; with add, it is put there (0: it was not; -1:
 * out of memory). */
int xset_has(xset *t, const char *s, int add);
void xset_free(xset *t);

/* Unix seconds from "%Y-%m-%dT%H:%M:%S" with an optional fraction and a
 * "Z" or "+hh:mm" / "+hhmm" offset; -1 when it is not one. */
int64_t xparse_time(const char *s);
/* Unix seconds to "%Y-%m-%dT%H:%M:%SZ", in UTC. */
void xformat_time(int64_t t, char out[32]);

#endif
