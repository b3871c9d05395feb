/*
 * tcap.c - Tech Against Terrorism's hash list (TCAP), JSON.
 *
 *   POST {base}/token-auth/tcap/ {"username","password"} -> {"token"}
 *   GET  {base}/api/hash-list/v2/all?order=asc[&after=CHECKPOINT]
 *        Authorization: Bearer TOKEN
 *   -> {count, next, previous, checkpoint, results: [{id, hash_digest,
 *       algorithm, ideology, file_type, deleted, updated_on, created_on}]}
 *
 * Pages follow `next` (a full URL, on the base's host only); each page's
 * `checkpoint` ("{epoch},{id}" of its last record, in ascending order) is
 * stored with it.  A PDQ is an image's; an MD5 is a video's when file_type
 * is a video type; other algorithms are skipped.  Fields the client does
 * not know are ignored.  An expired token (401) is renewed once a page.
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct tcap_state {
    char *token;
    char url[4096];
    xset visited;
} tcap_state;

static pdqm_status login(xctx *x, tcap_state *s, pdqm_error *err)
{
    json_t *body = json_pack("{s:s, s:s}", "username", xcred(x, "username"), "password",
                             xcred(x, "password"));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    char url[1200];
    snprintf(url, sizeof url, "%s/token-auth/tcap/", x->base);
    xrequest q = { .url = url, .body = text };
    xresponse r;
    pdqm_status st = xhttp_request(x->http, &q, &r, err);
    free(text);
    if (st != PDQM_OK) {
        if (r.code == 400 || r.code == 401 || r.code == 403)
            pdqm_error_set(err, PDQM_ERR_INVALID, "TCAP refused the login (HTTP %ld): check "
                           "the username and password", r.code);
        xresponse_free(&r);
        return st;
    }
    json_t *o;
    st = xjson_body(&r, "TCAP's login answer", &o, err);
    xresponse_free(&r);
    if (st != PDQM_OK)
        return st;
    const char *token = xjson_str(o, "token");
    free(s->token);
    s->token = token ? strdup(token) : NULL;
    json_decref(o);
    if (s->token == NULL || s->token[0] == '\0' || strpbrk(s->token, "\r\n"))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "TCAP's login answer has no token");
    return PDQM_OK;
}

static pdqm_status tcap_start(xctx *x, pdqm_error *err)
{
    tcap_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    x->state = s;
    snprintf(s->url, sizeof s->url, "%s/api/hash-list/v2/all", x->base);
    const char *after = xjson_str(x->checkpoint, "after");
    if (xurl_param(s->url, sizeof s->url, "order", "asc") ||
        (after && after[0] && xurl_param(s->url, sizeof s->url, "after", after)))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "the checkpoint is too long");
    return login(x, s, err);
}

static int is_video_type(const char *t)
{
    static const char *const video[] = { "mp4", "mov", "m4v", "webm", "avi", "mkv", "flv",
                                         "wmv", "mpg", "mpeg", "3gp", "ts", "video" };
    if (t == NULL)
        return 0;
    if (strncasecmp(t, "video/", 6) == 0)
        return 1;
    if (t[0] == '.')
        t++;
    for (size_t i = 0; i < sizeof video / sizeof video[0]; i++)
        if (strcasecmp(t, video[i]) == 0)
            return 1;
    return 0;
}

static void read_record(xpage *p, json_t *e)
{
    xrecord *r = xpage_add(p);
    if (r == NULL)
        return;
    if (!json_is_object(e)) {
        r->bad = "a record that is not a JSON object";
        return;
    }
    r->id = xjson_text(p, json_object_get(e, "id"));
    json_t *del = json_object_get(e, "deleted");
    if (del && !json_is_boolean(del)) {
        r->bad = "\"deleted\" is not true or false";
        return;
    }
    r->deleted = json_is_true(del);
    json_t *up = json_object_get(e, "updated_on");
    if (json_is_number(up))
        r->updated = xnum_to_int(json_number_value(up), 0);
    else if (json_is_string(up))
        r->updated = xparse_time(json_string_value(up)) > 0 ? xparse_time(json_string_value(up))
                                                            : xjson_int(e, "updated_on", 0);
    const char *alg = xjson_str(e, "algorithm"), *ft = xjson_str(e, "file_type");
    r->hash = xjson_str(e, "hash_digest");
    if (alg && strcasecmp(alg, "PDQ") == 0)
        r->signal = XSIG_PDQ;
    else if (alg && strcasecmp(alg, "MD5") == 0 && is_video_type(ft))
        r->signal = XSIG_VIDEO_MD5;
    else
        r->other = alg ? alg : "no algorithm";
    if (!r->deleted && r->signal != XSIG_NONE && r->hash == NULL) {
        r->bad = "no hash_digest";
        return;
    }
    json_t *prov = json_object();
    static const char *const keep[] = { "ideology", "file_type", "algorithm", "created_on",
                                        "updated_on" };
    for (size_t i = 0; prov && i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(e, keep[i]);
        if (json_is_string(v) || json_is_number(v))
            json_object_set(prov, keep[i], v);
    }
    r->provenance = prov;
}

static pdqm_status tcap_next(xctx *x, xpage *p, pdqm_error *err)
{
    tcap_state *s = x->state;
    int seen = xset_has(&s->visited, s->url, 1);
    if (seen < 0)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    if (seen)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "TCAP's paging came back to a page already read (a loop)");
    char auth[2048];
    xresponse r;
    pdqm_status st = PDQM_OK;
    for (int tries = 0; tries < 2; tries++) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
        const char *headers[] = { auth };
        xrequest q = { .url = s->url, .headers = headers, .n_headers = 1 };
        st = xhttp_request(x->http, &q, &r, err);
        if (st == PDQM_OK || r.code != 401 || tries == 1)
            break;
        xresponse_free(&r);
        x->log(x, PDQM_XLOG_INFO, "TCAP's token expired: logging in again");
        if ((st = login(x, s, err)) != PDQM_OK)
            return st;
    }
    if (st != PDQM_OK) {
        xresponse_free(&r);
        return st;
    }
    json_t *o;
    st = xjson_body(&r, "a TCAP page", &o, err);
    xresponse_free(&r);
    if (st != PDQM_OK)
        return st;
    p->keep = o;
    json_t *results = json_object_get(o, "results"), *next = json_object_get(o, "next");
    const char *cp = xjson_str(o, "checkpoint");
    if (!json_is_array(results))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a TCAP page without its results");
    if (next && !json_is_null(next) && !json_is_string(next))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a TCAP page whose next is not a URL");
    if (json_array_size(results) && (cp == NULL || cp[0] == '\0'))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a TCAP page without its checkpoint");
    size_t i;
    json_t *e;
    json_array_foreach(results, i, e)
        read_record(p, e);
    if (p->n != json_array_size(results))
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    const char *after = cp && cp[0] ? cp : xjson_str(x->checkpoint, "after");
    json_t *c = after ? json_pack("{s:s}", "after", after) : json_object();
    p->checkpoint = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    if (p->checkpoint == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    const char *nu = json_string_value(next);
    if (nu == NULL || nu[0] == '\0') {
        p->done = 1;
        return PDQM_OK;
    }
    if (!xurl_same_origin(x->base, nu) || strlen(nu) >= sizeof s->url)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "TCAP's next page is on another host (not followed)");
    snprintf(s->url, sizeof s->url, "%s", nu);
    return PDQM_OK;
}

static void tcap_finish(xctx *x)
{
    tcap_state *s = x->state;
    if (s == NULL)
        return;
    free(s->token);
    xset_free(&s->visited);
    free(s);
    x->state = NULL;
}

const xclient xclient_tcap = { PDQM_EXCHANGE_TCAP, tcap_start, tcap_next, tcap_finish };
