/*
 * threatexchange.c - Meta's ThreatExchange (the Graph API), JSON.
 *
 *   GET {base}/{version}/{privacy_group}/threat_updates/?access_token=T
 *       &start_time=S&limit=100&fields=id,indicator,type,last_updated,
 *       should_delete,descriptors{...}
 *   -> {data: [{id, indicator, type, last_updated, should_delete,
 *               descriptors: {data: [...]}}], paging: {next}}
 *
 * Updates come in time order; the checkpoint is the latest last_updated
 * read ({"update_time"}), from which the next fetch starts (records at
 * that very second come again and change nothing).  Paging follows
 * paging.next on the base's host only.  A record is deleted when
 * should_delete is true or it has no descriptors.  HASH_PDQ is a PDQ;
 * HASH_VIDEO_MD5, or HASH_MD5 tagged media_type_video, a video's MD5.
 *
 * The service keeps deletions 90 days: a checkpoint older than 85 days
 * cannot be trusted to bring them, so the fetch reads everything again
 * and, at its end, deletes what it did not see.  Until that full fetch
 * ends, the checkpoint stays where it was (a full fetch cut short starts
 * over, its "seen" being lost).
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STALE_SECONDS (85 * 86400)
#define DEFAULT_PAGE 100
#define FIELDS "id,indicator,type,last_updated,should_delete," \
               "descriptors{id,owner{id,name},tags,status,added_on}"

typedef struct te_state {
    char url[8192];            /* the next page, without the token */
    int64_t start;             /* this fetch's start_time */
    int64_t max_seen;
    int full;                  /* reading everything again */
    xset visited;
} te_state;

static pdqm_status te_start(xctx *x, pdqm_error *err)
{
    te_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    x->state = s;
    int64_t since = x->config->since;
    s->start = xjson_int(x->checkpoint, "update_time", since);
    if (x->checkpoint && s->start > 0 && x->now - s->start > STALE_SECONDS) {
        s->full = 1;
        s->start = since;
    }
    /* (A full fetch that was cut short left its mark: it starts again.) */
    if (json_is_true(json_object_get(x->checkpoint, "full")))
        s->full = 1, s->start = since;
    s->max_seen = s->start;
    const char *version = x->config->api_version[0] ? x->config->api_version : "v21.0";
    char start[32], limit[16];
    snprintf(start, sizeof start, "%lld", (long long)s->start);
    snprintf(limit, sizeof limit, "%d", x->config->page_size ? x->config->page_size : DEFAULT_PAGE);
    snprintf(s->url, sizeof s->url, "%s/%s/%s/threat_updates/", x->base, version,
             x->config->privacy_group);
    if (xurl_param(s->url, sizeof s->url, "start_time", start) ||
        xurl_param(s->url, sizeof s->url, "limit", limit) ||
        xurl_param(s->url, sizeof s->url, "fields", FIELDS))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "the base URL is too long");
    return PDQM_OK;
}

/* Remove the access_token parameter of a URL (in place). */
static void strip_token(char *url)
{
    char *q = strchr(url, '?');
    if (q == NULL)
        return;
    char *src = q + 1, *dst = q + 1;
    while (*src) {
        size_t n = strcspn(src, "&");
        int drop = strncmp(src, "access_token=", 13) == 0;
        if (!drop) {
            if (dst != q + 1)
                *dst++ = '&';
            memmove(dst, src, n);
            dst += n;
        }
        src += n;
        if (*src == '&')
            src++;
    }
    *dst = '\0';
    if (dst == q + 1)
        *q = '\0';
}

static int tag_text(json_t *t, const char **out)
{
    if (json_is_string(t)) {
        *out = json_string_value(t);
        return 1;
    }
    const char *s = xjson_str(t, "text");
    if (s) {
        *out = s;
        return 1;
    }
    return 0;
}

static void read_record(xctx *x, xpage *p, json_t *e)
{
    te_state *s = x->state;
    xrecord *r = xpage_add(p);
    if (r == NULL)
        return;
    if (!json_is_object(e)) {
        r->bad = "a record that is not a JSON object";
        return;
    }
    r->id = xjson_text(p, json_object_get(e, "id"));
    r->updated = xjson_int(e, "last_updated", 0);
    if (r->updated == 0) {
        const char *t = xjson_str(e, "last_updated");
        if (t && xparse_time(t) > 0)
            r->updated = xparse_time(t);
    }
    if (r->updated > s->max_seen)
        s->max_seen = r->updated;
    json_t *descs = json_object_get(e, "descriptors");
    json_t *data = json_is_object(descs) ? json_object_get(descs, "data") : NULL;
    r->deleted = json_is_true(json_object_get(e, "should_delete")) || !json_is_object(descs);
    const char *type = xjson_str(e, "type");
    r->hash = xjson_str(e, "indicator");
    json_t *tags = json_array(), *owners = json_array(), *ids = json_array();
    int video_tag = 0;
    size_t i, k;
    json_t *d, *t;
    if (json_is_array(data))
        json_array_foreach(data, i, d) {
            json_t *tl = json_object_get(d, "tags");
            if (json_is_object(tl))
                tl = json_object_get(tl, "data");
            if (json_is_array(tl))
                json_array_foreach(tl, k, t) {
                    const char *txt;
                    if (tag_text(t, &txt)) {
                        if (strcmp(txt, "media_type_video") == 0)
                            video_tag = 1;
                        json_array_append_new(tags, json_string(txt));
                    }
                }
            const char *owner = xjson_text(p, json_object_get(json_object_get(d, "owner"), "id"));
            if (owner)
                json_array_append_new(owners, json_string(owner));
            const char *did = xjson_text(p, json_object_get(d, "id"));
            if (did)
                json_array_append_new(ids, json_string(did));
        }
    if (type && strcmp(type, "HASH_PDQ") == 0)
        r->signal = XSIG_PDQ;
    else if (type && (strcmp(type, "HASH_VIDEO_MD5") == 0 ||
                      (strcmp(type, "HASH_MD5") == 0 && video_tag)))
        r->signal = XSIG_VIDEO_MD5;
    else
        r->other = type ? type : "no type";
    if (!r->deleted && r->signal != XSIG_NONE && r->hash == NULL) {
        r->bad = "no indicator";
        json_decref(tags);
        json_decref(owners);
        json_decref(ids);
        return;
    }
    json_t *prov = json_object();
    if (prov) {
        json_object_set_new(prov, "indicator_type", json_string(type ? type : ""));
        json_object_set_new(prov, "tags", tags);
        json_object_set_new(prov, "owners", owners);
        json_object_set_new(prov, "descriptor_ids", ids);
    } else {
        json_decref(tags);
        json_decref(owners);
        json_decref(ids);
    }
    r->provenance = prov;
}

/* Where the next fetch starts: the latest update read; once the updates
 * are read to their end, the fetch's start (a minute before, for what
 * was being written then): a quiet exchange's checkpoint does not age. */
static int64_t done_time(xctx *x, const xpage *p)
{
    te_state *s = x->state;
    int64_t t = s->max_seen;
    if (p->done && x->now - 60 > t)
        t = x->now - 60;
    return t;
}

static pdqm_status te_next(xctx *x, xpage *p, pdqm_error *err)
{
    te_state *s = x->state;
    int seen = xset_has(&s->visited, s->url, 1);
    if (seen < 0)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    if (seen)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "ThreatExchange's paging came back to a page already read (a loop)");
    char url[sizeof s->url + 512];
    snprintf(url, sizeof url, "%s", s->url);
    if (xurl_param(url, sizeof url, "access_token", xcred(x, "access_token")))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "the access token is too long");
    xrequest q = { .url = url };
    xresponse r;
    pdqm_status st = xhttp_request(x->http, &q, &r, err);
    if (st != PDQM_OK) {
        if (r.code == 400 || r.code == 401 || r.code == 403)
            pdqm_error_set(err, PDQM_ERR_INVALID, "ThreatExchange refused the request (HTTP "
                           "%ld): check the access token and the privacy group", r.code);
        xresponse_free(&r);
        return st;
    }
    json_t *o;
    st = xjson_body(&r, "a ThreatExchange page", &o, err);
    xresponse_free(&r);
    if (st != PDQM_OK)
        return st;
    p->keep = o;
    json_t *data = json_object_get(o, "data");
    if (!json_is_array(data))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a ThreatExchange page without its data");
    size_t i;
    json_t *e;
    json_array_foreach(data, i, e)
        read_record(x, p, e);
    if (p->n != json_array_size(data))
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    p->full_refetch = s->full;
    const char *next = xjson_str(json_object_get(o, "paging"), "next");
    if (next == NULL || next[0] == '\0' || json_array_size(data) == 0)
        p->done = 1;
    else if (!xurl_same_origin(x->base, next) || strlen(next) >= sizeof s->url)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "ThreatExchange's next page is on another host (not followed)");
    else {
        snprintf(s->url, sizeof s->url, "%s", next);
        strip_token(s->url);
    }
    /* A full fetch moves the checkpoint only at its end. */
    json_t *c = s->full && !p->done
                    ? json_pack("{s:I, s:b}", "update_time", (json_int_t)s->start, "full", 1)
                    : json_pack("{s:I}", "update_time", (json_int_t)done_time(x, p));
    p->checkpoint = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    if (p->checkpoint == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    return PDQM_OK;
}

static void te_finish(xctx *x)
{
    te_state *s = x->state;
    if (s == NULL)
        return;
    xset_free(&s->visited);
    free(s);
    x->state = NULL;
}

const xclient xclient_threatexchange = { PDQM_EXCHANGE_THREATEXCHANGE, te_start, te_next,
                                         te_finish };
