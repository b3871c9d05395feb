/*
 * ncmec.c - NCMEC's hash sharing API (v2), XML, read with expat.
 *
 *   GET {environment}/v2/entries?from=UTC&to=UTC    (HTTP Basic auth)
 *   -> <queryResult><images maxTimestamp=..><image>|<deletedImage>...
 *      </images><videos>..</videos><paging><next>PATH</next></paging>
 *
 * Entries are not in time order, so the checkpoint ({"from"}) moves only
 * when a window [from, to] has been read to its last page.  While a window
 * is being read, the checkpoint also holds it and its next page ({"to",
 * "next", "next_at"}): a fetch cut short resumes on that page for 12 hours
 * (NCMEC's advice on keeping paging links), else reads the window again.
 * Windows start as the whole time to read and shrink fourfold while the
 * first page says a window holds more than WINDOW_MAX entries (its paging
 * link tells how many); they grow back twofold after small ones.
 * Timestamps go out in UTC ("%Y-%m-%dT%H:%M:%SZ").
 *
 * A record's id is "{member id}-{entry id}".  An image's PDQ is its
 * signal; a video's MD5 is; other fingerprints (MD5 and SHA-1 of images,
 * PhotoDNA, ...) are kept as provenance only.  A DOCTYPE is refused (no
 * entity games); text over 64 KiB is.
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define WINDOW_MAX 400000
#define LINK_VALID (12 * 3600)
#define SETTLE 2               /* seconds before the fetch's start the last window ends */
#define TEXT_MAX (64 * 1024)

typedef struct ncmec_state {
    int64_t from;              /* the window's start: the stored checkpoint */
    int64_t to;                /* its end (0: no window open) */
    int64_t end;               /* where this fetch stops */
    int64_t duration;
    char next[4096];           /* the window's next page ("": its first) */
    xset visited;
} ncmec_state;

static pdqm_status ncmec_start(xctx *x, pdqm_error *err)
{
    ncmec_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    x->state = s;
    s->from = xjson_int(x->checkpoint, "from", x->config->since);
    s->end = x->now - SETTLE;
    const char *next = xjson_str(x->checkpoint, "next");
    int64_t to = xjson_int(x->checkpoint, "to", 0);
    int64_t at = xjson_int(x->checkpoint, "next_at", 0);
    if (next && next[0] && to > s->from && x->now - at <= LINK_VALID &&
        strlen(next) < sizeof s->next) {
        s->to = to;
        snprintf(s->next, sizeof s->next, "%s", next);
        x->log(x, PDQM_XLOG_INFO, "resuming a window on its stored page");
    }
    s->duration = s->end - s->from;
    if (s->duration < 1)
        s->duration = 1;
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* The XML                                                              */

typedef struct entry {
    int kind;                  /* 0 none, 1 image, 2 video */
    int deleted;
    char *member_id, *member, *id, *timestamp, *classification;
    json_t *fingerprints;
    const char *bad;
} entry;

typedef struct parse {
    XML_Parser p;
    xpage *page;
    int depth;
    int in_results;            /* depth 2 is images or videos */
    int in_paging;
    int in_fp;                 /* inside <fingerprints> of the entry */
    int skip_depth;            /* > 0: inside an element we ignore */
    entry e;
    char *text;
    size_t text_len;
    int text_over;
    int collecting;
    char *next;
    int seen_root;
    const char *error;
    uint64_t entries_seen;
} parse;

static const char *local(const char *name)
{
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
}

static void entry_clear(entry *e)
{
    free(e->member_id);
    free(e->member);
    free(e->id);
    free(e->timestamp);
    free(e->classification);
    json_decref(e->fingerprints);
    memset(e, 0, sizeof *e);
}

static char *take_text(parse *ps)
{
    char *t = ps->text ? ps->text : strdup("");
    ps->text = NULL;
    ps->text_len = 0;
    if (t) {   /* trim */
        char *a = t;
        while (*a == ' ' || *a == '\n' || *a == '\r' || *a == '\t')
            a++;
        size_t n = strlen(a);
        while (n && (a[n - 1] == ' ' || a[n - 1] == '\n' || a[n - 1] == '\r' ||
                     a[n - 1] == '\t'))
            n--;
        memmove(t, a, n);
        t[n] = '\0';
    }
    return t;
}

static void XMLCALL on_text(void *arg, const XML_Char *s, int len)
{
    parse *ps = arg;
    if (!ps->collecting || len <= 0)
        return;
    if (ps->text_len + (size_t)len > TEXT_MAX) {
        ps->text_over = 1;
        return;
    }
    char *g = realloc(ps->text, ps->text_len + (size_t)len + 1);
    if (g == NULL) {
        ps->text_over = 1;
        return;
    }
    memcpy(g + ps->text_len, s, (size_t)len);
    ps->text_len += (size_t)len;
    g[ps->text_len] = '\0';
    ps->text = g;
}

static const char *attr(const XML_Char **atts, const char *name)
{
    for (int i = 0; atts && atts[i]; i += 2)
        if (strcmp(local(atts[i]), name) == 0)
            return atts[i + 1];
    return NULL;
}

static void XMLCALL on_start(void *arg, const XML_Char *name, const XML_Char **atts)
{
    parse *ps = arg;
    ps->depth++;
    const char *n = local(name);
    free(ps->text);
    ps->text = NULL;
    ps->text_len = 0;
    ps->text_over = 0;
    ps->collecting = 0;
    if (ps->skip_depth)
        return;
    if (ps->depth == 1) {
        if (strcmp(n, "queryResult") != 0) {
            ps->error = "the answer is not a <queryResult>";
            XML_StopParser(ps->p, XML_FALSE);
        }
        ps->seen_root = 1;
        return;
    }
    if (ps->depth == 2) {
        ps->in_results = strcmp(n, "images") == 0 || strcmp(n, "videos") == 0;
        ps->in_paging = strcmp(n, "paging") == 0;
        if (!ps->in_results && !ps->in_paging)
            ps->skip_depth = ps->depth;    /* an element we do not know: ignored */
        return;
    }
    if (ps->depth == 3 && ps->in_paging) {
        ps->collecting = strcmp(n, "next") == 0;
        return;
    }
    if (ps->depth == 3 && ps->in_results) {
        entry_clear(&ps->e);
        ps->entries_seen++;
        if (strcmp(n, "image") == 0 || strcmp(n, "deletedImage") == 0)
            ps->e.kind = 1;
        else if (strcmp(n, "video") == 0 || strcmp(n, "deletedVideo") == 0)
            ps->e.kind = 2;
        else
            ps->e.bad = "an entry that is neither an image nor a video";
        ps->e.deleted = strncmp(n, "deleted", 7) == 0;
        ps->e.fingerprints = json_object();
        return;
    }
    if (ps->depth == 4 && ps->e.kind) {
        if (strcmp(n, "member") == 0) {
            const char *id = attr(atts, "id");
            free(ps->e.member_id);
            ps->e.member_id = id ? strdup(id) : NULL;
            ps->collecting = 1;
        } else if (strcmp(n, "id") == 0 || strcmp(n, "timestamp") == 0 ||
                   strcmp(n, "classification") == 0) {
            ps->collecting = 1;
        } else if (strcmp(n, "fingerprints") == 0) {
            ps->in_fp = 1;
        } else {
            ps->skip_depth = ps->depth;   /* feedback, and what we do not know */
        }
        return;
    }
    if (ps->depth == 5 && ps->in_fp) {
        ps->collecting = 1;
        return;
    }
    ps->skip_depth = ps->depth;
}

static void entry_done(parse *ps)
{
    entry *e = &ps->e;
    xpage *p = ps->page;
    xrecord *r = xpage_add(p);
    if (r == NULL) {
        ps->error = "out of memory";
        XML_StopParser(ps->p, XML_FALSE);
        return;
    }
    if (e->bad) {
        r->bad = e->bad;
        return;
    }
    if (e->id == NULL || e->id[0] == '\0' || e->member_id == NULL || e->member_id[0] == '\0') {
        r->bad = "an entry without its id and member id";
        return;
    }
    char id[1100];
    int n = snprintf(id, sizeof id, "%s-%s", e->member_id, e->id);
    if (n < 0 || (size_t)n >= sizeof id) {
        r->bad = "an entry id over 1000 bytes";
        return;
    }
    r->id = xpage_strdup(p, id, (size_t)n);
    r->deleted = e->deleted;
    r->updated = e->timestamp ? xparse_time(e->timestamp) : 0;
    if (r->updated < 0) {
        r->bad = "an entry whose timestamp is not a time";
        return;
    }
    const char *pdq = xjson_str(e->fingerprints, "pdq");
    const char *md5 = xjson_str(e->fingerprints, "md5");
    if (e->kind == 1 && pdq) {
        r->signal = XSIG_PDQ;
        r->hash = xpage_strdup(p, pdq, strlen(pdq));
    } else if (e->kind == 2 && md5) {
        r->signal = XSIG_VIDEO_MD5;
        r->hash = xpage_strdup(p, md5, strlen(md5));
    } else {
        r->other = e->kind == 1 ? "image without PDQ" : "video without MD5";
    }
    json_t *prov = json_object();
    if (prov) {
        json_object_set_new(prov, "member_id", json_string(e->member_id));
        if (e->member && e->member[0])
            json_object_set_new(prov, "member", json_string(e->member));
        if (e->classification && e->classification[0])
            json_object_set_new(prov, "classification", json_string(e->classification));
        json_object_set_new(prov, "entry_type", json_string(e->kind == 1 ? "image" : "video"));
        if (json_object_size(e->fingerprints))
            json_object_set(prov, "fingerprints", e->fingerprints);
    }
    r->provenance = prov;
    if (r->id == NULL || (r->signal && r->hash == NULL)) {
        ps->error = "out of memory";
        XML_StopParser(ps->p, XML_FALSE);
    }
}

static void XMLCALL on_end(void *arg, const XML_Char *name)
{
    parse *ps = arg;
    const char *n = local(name);
    int depth = ps->depth--;
    if (ps->skip_depth) {
        if (depth == ps->skip_depth)
            ps->skip_depth = 0;
        return;
    }
    if (ps->text_over && ps->collecting) {
        if (depth >= 4 && ps->e.kind)
            ps->e.bad = "a text of an entry over 64 KiB";
        else if (ps->in_paging)
            ps->error = "a paging link over 64 KiB";
    }
    if (depth == 3 && ps->in_paging && strcmp(n, "next") == 0) {
        free(ps->next);
        ps->next = take_text(ps);
    } else if (depth == 3 && ps->in_results) {
        entry_done(ps);
        entry_clear(&ps->e);
    } else if (depth == 4 && ps->e.kind) {
        if (strcmp(n, "fingerprints") == 0) {
            ps->in_fp = 0;
        } else if (ps->collecting) {
            char *t = take_text(ps);
            char **slot = strcmp(n, "member") == 0 ? &ps->e.member
                        : strcmp(n, "id") == 0 ? &ps->e.id
                        : strcmp(n, "timestamp") == 0 ? &ps->e.timestamp
                        : &ps->e.classification;
            free(*slot);
            *slot = t;
        }
    } else if (depth == 5 && ps->in_fp && ps->e.kind && ps->collecting) {
        char *t = take_text(ps);
        if (t && t[0] && ps->e.fingerprints) {
            char key[64];
            snprintf(key, sizeof key, "%s", n);
            for (char *k = key; *k; k++)
                if (*k >= 'A' && *k <= 'Z')
                    *k = (char)(*k - 'A' + 'a');
            json_object_set_new(ps->e.fingerprints, key, json_string(t));
        }
        free(t);
    } else if (depth == 2) {
        ps->in_results = ps->in_paging = 0;
    }
    ps->collecting = 0;
    free(ps->text);
    ps->text = NULL;
    ps->text_len = 0;
}

static void XMLCALL on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)internal;
    parse *ps = arg;
    ps->error = "a DOCTYPE (refused)";
    XML_StopParser(ps->p, XML_FALSE);
}

/* Parse an answer into the page's records; *next the paging link (or
 * NULL).  PDQM_ERR_INVALID when it is not a whole <queryResult>. */
static pdqm_status parse_page(const xresponse *r, xpage *page, char **next, uint64_t *entries,
                              pdqm_error *err)
{
    *next = NULL;
    parse ps;
    memset(&ps, 0, sizeof ps);
    ps.page = page;
    ps.p = XML_ParserCreate("UTF-8");
    if (ps.p == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    XML_SetUserData(ps.p, &ps);
    XML_SetElementHandler(ps.p, on_start, on_end);
    XML_SetCharacterDataHandler(ps.p, on_text);
    XML_SetStartDoctypeDeclHandler(ps.p, on_doctype);
    pdqm_status st = PDQM_OK;
    if (r->body == NULL || r->size == 0 || r->size > (size_t)INT32_MAX) {
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "an NCMEC page: an empty answer");
    } else if (XML_Parse(ps.p, r->body, (int)r->size, XML_TRUE) != XML_STATUS_OK || ps.error) {
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "an NCMEC page: %s (line %lu, column %lu; "
                            "%zu bytes)",
                            ps.error ? ps.error : XML_ErrorString(XML_GetErrorCode(ps.p)),
                            (unsigned long)XML_GetCurrentLineNumber(ps.p),
                            (unsigned long)XML_GetCurrentColumnNumber(ps.p), r->size);
    } else if (!ps.seen_root) {
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "an NCMEC page without its <queryResult>");
    }
    XML_ParserFree(ps.p);
    entry_clear(&ps.e);
    free(ps.text);
    if (st == PDQM_OK) {
        *next = ps.next && ps.next[0] ? ps.next : NULL;
        if (*next == NULL)
            free(ps.next);
    } else {
        free(ps.next);
    }
    *entries = ps.entries_seen;
    return st;
}

/* How many entries the window holds, from its paging link's start and
 * max ("...&start=2001&size=1000&max=3000"): -1 when it does not say. */
static int64_t window_estimate(const char *next, uint64_t on_page)
{
    const char *s = strstr(next, "start="), *m = strstr(next, "max=");
    if (s == NULL || m == NULL)
        return -1;
    long long start = strtoll(s + 6, NULL, 10), max = strtoll(m + 4, NULL, 10);
    if (start < 0 || max < start)
        return -1;
    int64_t n = (int64_t)(max - start);     /* (no overflow: both >= 0) */
    return n > INT64_MAX - (int64_t)on_page ? INT64_MAX : n + (int64_t)on_page;
}

static pdqm_status ncmec_next(xctx *x, xpage *p, pdqm_error *err)
{
    ncmec_state *s = x->state;
    for (;;) {
        if (s->to == 0) {      /* a new window */
            if (s->from >= s->end) {
                /* Nothing to read: the checkpoint stays. */
                json_t *c = json_pack("{s:I}", "from", (json_int_t)s->from);
                p->checkpoint = c ? json_dumps(c, JSON_COMPACT) : NULL;
                json_decref(c);
                p->done = 1;
                return p->checkpoint ? PDQM_OK
                                     : pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
            }
            s->to = s->from + s->duration > s->end ? s->end : s->from + s->duration;
            s->next[0] = '\0';
        }
        char url[8192];
        if (s->next[0]) {
            snprintf(url, sizeof url, "%s%s", x->base, s->next);
        } else {
            char from[32], to[32];
            xformat_time(s->from, from);
            xformat_time(s->to, to);
            snprintf(url, sizeof url, "%s/v2/entries", x->base);
            xurl_param(url, sizeof url, "from", from);
            xurl_param(url, sizeof url, "to", to);
        }
        int seen = xset_has(&s->visited, url, 1);
        if (seen < 0)
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        if (seen && s->next[0])
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "NCMEC's paging came back to a page already read (a loop)");
        char userpwd[1024];
        snprintf(userpwd, sizeof userpwd, "%s:%s", xcred(x, "username"), xcred(x, "password"));
        xrequest q = { .url = url, .userpwd = userpwd };
        xresponse r;
        pdqm_status st = xhttp_request(x->http, &q, &r, err);
        memset(userpwd, 0, sizeof userpwd);
        if (st != PDQM_OK) {
            long code = r.code;
            xresponse_free(&r);
            if (code == 401 || code == 403)
                pdqm_error_set(err, PDQM_ERR_INVALID,
                               "NCMEC refused the login (HTTP %ld): check the username, the "
                               "password and the environment (--base-url)", code);
            if (s->next[0] && code >= 400 && code < 500 && code != 401 && code != 403) {
                /* A paging link gone stale: the window again from its start. */
                x->log(x, PDQM_XLOG_WARN, "NCMEC refused a stored paging link: reading its "
                       "window again");
                s->next[0] = '\0';
                continue;
            }
            return st;
        }
        char *next = NULL;
        uint64_t entries = 0;
        size_t before = p->n;
        st = parse_page(&r, p, &next, &entries, err);
        xresponse_free(&r);
        if (st != PDQM_OK)
            return st;
        int first = s->next[0] == '\0';
        if (next && first && s->duration > 1) {
            int64_t estimate = window_estimate(next, entries);
            if (estimate > WINDOW_MAX) {
                /* Too much at once: a window a quarter as long. */
                for (size_t i = before; i < p->n; i++)
                    json_decref(p->recs[i].provenance);
                p->n = before;
                free(next);
                s->duration = s->duration / 4 > 0 ? s->duration / 4 : 1;
                s->to = 0;
                x->log(x, PDQM_XLOG_INFO, "a window of about %lld entries: reading %lld "
                       "seconds at a time", (long long)estimate, (long long)s->duration);
                continue;
            }
        }
        json_t *c;
        if (next) {
            if (next[0] != '/' || strstr(next, "://") || strpbrk(next, " \t\r\n") ||
                strlen(next) >= sizeof s->next) {
                free(next);
                return pdqm_error_set(err, PDQM_ERR_INVALID,
                                      "NCMEC's paging link is not a path on its host");
            }
            snprintf(s->next, sizeof s->next, "%s", next);
            c = json_pack("{s:I, s:I, s:s, s:I}", "from", (json_int_t)s->from, "to",
                          (json_int_t)s->to, "next", next, "next_at", (json_int_t)x->now);
        } else {
            /* The window is read whole: the checkpoint moves to its end. */
            int64_t len = s->to - s->from;
            s->from = s->to;
            s->to = 0;
            s->next[0] = '\0';
            if (first && entries < WINDOW_MAX / 8 && len >= s->duration)
                s->duration *= 2;
            c = json_pack("{s:I}", "from", (json_int_t)s->from);
            p->done = s->from >= s->end;
        }
        free(next);
        p->checkpoint = c ? json_dumps(c, JSON_COMPACT) : NULL;
        json_decref(c);
        if (p->checkpoint == NULL)
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        return PDQM_OK;
    }
}

static void ncmec_finish(xctx *x)
{
    ncmec_state *s = x->state;
    if (s == NULL)
        return;
    xset_free(&s->visited);
    free(s);
    x->state = NULL;
}

const xclient xclient_ncmec = { PDQM_EXCHANGE_NCMEC, ncmec_start, ncmec_next, ncmec_finish };
