/*
 * stopncii.c - StopNCII.org's hashes, JSON.
 *
 *   GET {base}/v1/FetchHashes?startTimestamp=T&pageSize=800[&nextPageToken=X]
 *       x-functions-key: ..., Ocp-Apim-Subscription-Key: ...
 *   -> {count, nextPageToken, nextSetTimestamp, hasMoreRecords,
 *       hashRecords: [{lastModtimestamp, signalType, hashValue, hashStatus,
 *                      caseNumbers, CSPFeedbacks}]}
 *
 * A set of pages starts at a timestamp; while hasMoreRecords, the next
 * page is asked for by its token; the last page's nextSetTimestamp starts
 * the next set.  The checkpoint holds both ({"start", "token"}), so a
 * fetch resumes inside a set.  A token the service no longer takes (a
 * 4xx: it went stale) starts the set again from its timestamp, once.
 * Records have no id: "signalType:hashValue" is theirs.  hashStatus
 * Withdrawn or Deleted deletes (the status, not the hash, is compared).
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_START 10      /* the service's own first timestamp */
#define DEFAULT_PAGE 800

typedef struct ncii_state {
    int64_t start;
    char *token;               /* NULL: the first page of the set */
    int restarted;
    xset visited;
} ncii_state;

static pdqm_status ncii_start(xctx *x, pdqm_error *err)
{
    ncii_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    x->state = s;
    s->start = xjson_int(x->checkpoint, "start",
                         x->config->since ? x->config->since : DEFAULT_START);
    const char *token = xjson_str(x->checkpoint, "token");
    if (token && token[0] && (s->token = strdup(token)) == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    return PDQM_OK;
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
    const char *type = xjson_str(e, "signalType"), *value = xjson_str(e, "hashValue");
    const char *status = xjson_str(e, "hashStatus");
    if (type == NULL || value == NULL || type[0] == '\0' || value[0] == '\0') {
        r->bad = "a record without its signalType and hashValue";
        return;
    }
    size_t tl = strlen(type), vl = strlen(value);
    char *id = malloc(tl + vl + 2);
    if (id == NULL)
        return;
    memcpy(id, type, tl);
    id[tl] = ':';
    memcpy(id + tl + 1, value, vl + 1);
    r->id = xpage_strdup(p, id, tl + vl + 1);
    free(id);
    r->deleted = status && (strcasecmp(status, "Withdrawn") == 0 ||
                            strcasecmp(status, "Deleted") == 0);
    r->updated = xjson_int(e, "lastModtimestamp", 0);
    r->hash = value;
    if (strcmp(type, "ImagePDQ") == 0)
        r->signal = XSIG_PDQ;
    else if (strcmp(type, "VideoMD5") == 0)
        r->signal = XSIG_VIDEO_MD5;
    else
        r->other = type;
    json_t *prov = json_object();
    if (prov) {
        if (status)
            json_object_set_new(prov, "hash_status", json_string(status));
        json_t *cases = json_object_get(e, "caseNumbers");
        if (json_is_object(cases))
            json_object_set(prov, "case_numbers", cases);
        json_t *fb = json_object_get(e, "CSPFeedbacks");
        if (json_is_array(fb) && json_array_size(fb))
            json_object_set(prov, "csp_feedbacks", fb);
    }
    r->provenance = prov;
}

static pdqm_status ncii_next(xctx *x, xpage *p, pdqm_error *err)
{
    ncii_state *s = x->state;
    char url[4096], start[32], size[16];
    snprintf(url, sizeof url, "%s/v1/FetchHashes", x->base);
    snprintf(start, sizeof start, "%lld", (long long)s->start);
    snprintf(size, sizeof size, "%d", x->config->page_size ? x->config->page_size : DEFAULT_PAGE);
    if (xurl_param(url, sizeof url, "startTimestamp", start) ||
        xurl_param(url, sizeof url, "pageSize", size) ||
        (s->token && xurl_param(url, sizeof url, "nextPageToken", s->token)))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "StopNCII's page token is too long");
    int seen = xset_has(&s->visited, url, 1);
    if (seen < 0)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    if (seen)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "StopNCII's paging came back to a page already read (a loop)");
    char fkey[1024], skey[1024];
    snprintf(fkey, sizeof fkey, "x-functions-key: %s", xcred(x, "functions_key"));
    snprintf(skey, sizeof skey, "Ocp-Apim-Subscription-Key: %s", xcred(x, "subscription_key"));
    const char *headers[] = { fkey, skey };
    xrequest q = { .url = url, .headers = headers, .n_headers = 2 };
    xresponse r;
    pdqm_status st = xhttp_request(x->http, &q, &r, err);
    if (st != PDQM_OK && s->token && !s->restarted && r.code >= 400 && r.code < 500 &&
        r.code != 401 && r.code != 403) {
        /* The token went stale: the set again, from its start. */
        x->log(x, PDQM_XLOG_WARN, "StopNCII refused the stored page token (HTTP %ld): "
               "reading the set again from %lld", r.code, (long long)s->start);
        xresponse_free(&r);
        free(s->token);
        s->token = NULL;
        s->restarted = 1;
        return ncii_next(x, p, err);
    }
    if (st != PDQM_OK) {
        if (r.code == 401 || r.code == 403)
            pdqm_error_set(err, PDQM_ERR_INVALID, "StopNCII refused the keys (HTTP %ld)",
                           r.code);
        xresponse_free(&r);
        return st;
    }
    json_t *o;
    st = xjson_body(&r, "a StopNCII page", &o, err);
    xresponse_free(&r);
    if (st != PDQM_OK)
        return st;
    p->keep = o;
    json_t *recs = json_object_get(o, "hashRecords");
    json_t *more = json_object_get(o, "hasMoreRecords");
    if (!json_is_array(recs) || !json_is_boolean(more))
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a StopNCII page without hashRecords and hasMoreRecords");
    size_t i;
    json_t *e;
    json_array_foreach(recs, i, e)
        read_record(p, e);
    if (p->n != json_array_size(recs))
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    json_t *c;
    if (json_is_true(more)) {
        const char *token = xjson_str(o, "nextPageToken");
        if (token == NULL || token[0] == '\0')
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "a StopNCII page with more records but no nextPageToken");
        free(s->token);
        if ((s->token = strdup(token)) == NULL)
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        c = json_pack("{s:I, s:s}", "start", (json_int_t)s->start, "token", token);
    } else {
        json_t *next = json_object_get(o, "nextSetTimestamp");
        if (!json_is_integer(next) && !(json_is_string(next) && xjson_int(o, "nextSetTimestamp",
                                                                           -1) >= 0))
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "a StopNCII page without its nextSetTimestamp");
        int64_t ns = xjson_int(o, "nextSetTimestamp", s->start);
        if (ns < s->start)
            ns = s->start;    /* never backwards */
        c = json_pack("{s:I}", "start", (json_int_t)ns);
        p->done = 1;
    }
    p->checkpoint = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    if (p->checkpoint == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    return PDQM_OK;
}

static void ncii_finish(xctx *x)
{
    ncii_state *s = x->state;
    if (s == NULL)
        return;
    free(s->token);
    xset_free(&s->visited);
    free(s);
    x->state = NULL;
}

const xclient xclient_stopncii = { PDQM_EXCHANGE_STOPNCII, ncii_start, ncii_next, ncii_finish };
