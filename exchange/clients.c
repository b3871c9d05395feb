/*
 * clients.c - what the exchange clients share: reading credentials and
 * checkpoints, answers as JSON, URLs, times.
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *xcred(xctx *x, const char *key)
{
    return xjson_str(x->credentials, key);
}

int64_t xnum_to_int(double v, int64_t dflt)
{
    /* (A double out of int64_t's range has no conversion: undefined.) */
    if (!(v > -9.2e18 && v < 9.2e18))
        return dflt;
    return (int64_t)v;
}

int64_t xjson_int(const json_t *o, const char *key, int64_t dflt)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return xnum_to_int(json_real_value(v), dflt);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        long long n = strtoll(s, &end, 10);
        if (end != s && *end == '\0')
            return (int64_t)n;
    }
    return dflt;
}

const char *xjson_str(const json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *xjson_text(xpage *p, const json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return xpage_strdup(p, buf, (size_t)n);
    }
    return NULL;
}

int xurl_param(char *url, size_t size, const char *name, const char *value)
{
    size_t len = strlen(url);
    char sep = strchr(url, '?') ? '&' : '?';
    int n = snprintf(url + len, size - len, "%c%s=", sep, name);
    if (n < 0 || (size_t)n >= size - len)
        return -1;
    len += (size_t)n;
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (len + 4 > size)
            return -1;
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            url[len++] = (char)*p;
        } else {
            url[len++] = '%';
            url[len++] = hex[*p >> 4];
            url[len++] = hex[*p & 15];
        }
    }
    url[len] = '\0';
    return 0;
}

/* The length of "scheme://host[:port]" in url (0 when none). */
static size_t origin_len(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return 0;
    p += 3;
    p += strcspn(p, "/?#");
    return (size_t)(p - url);
}

int xurl_same_origin(const char *base, const char *url)
{
    size_t a = origin_len(base), b = origin_len(url);
    return a > 0 && a == b && strncasecmp(base, url, a) == 0;
}

pdqm_status xjson_body(const xresponse *r, const char *what, json_t **out, pdqm_error *err)
{
    *out = NULL;
    if (r->body == NULL || r->size == 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "%s: an empty answer", what);
    json_error_t je;
    json_t *o = json_loadb(r->body, r->size, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "%s: not JSON (line %d, column %d: %s; %zu bytes)", what,
                              je.line, je.column, je.text, r->size);
    if (!json_is_object(o)) {
        json_decref(o);
        return pdqm_error_set(err, PDQM_ERR_INVALID, "%s: not a JSON object", what);
    }
    *out = o;
    return PDQM_OK;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

int64_t xparse_time(const char *s)
{
    if (s == NULL)
        return -1;
    const char *p = s;
    int y, mo, d, h, mi, se;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != 'T' && *p != ' ') || !*p++ || digits(&p, 2, &h) ||
        *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &se))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (digits(&p, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (*p && digits(&p, 2, &om))
            return -1;
        off = sign * (oh * 3600 + om * 60);
    }
    if (*p != '\0')
        return -1;
    return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
}

void xformat_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);      /* UTC: never the machine's zone */
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------------ */
/* A set of strings (the ids a full refetch has seen)                   */


uint64_t xstr_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* 1 when s is in the set; with add, put it there (0: it was not; -1: out
 * of memory). */
int xset_has(xset *t, const char *s, int add)
{
    if (add && (t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        char **slots = calloc(cap, sizeof *slots);
        if (slots == NULL)
            return -1;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i]) {
                size_t j = xstr_hash(t->slots[i]) & (cap - 1);
                while (slots[j])
                    j = (j + 1) & (cap - 1);
                slots[j] = t->slots[i];
            }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    if (t->cap == 0)
        return 0;
    size_t j = xstr_hash(s) & (t->cap - 1);
    while (t->slots[j]) {
        if (strcmp(t->slots[j], s) == 0)
            return 1;
        j = (j + 1) & (t->cap - 1);
    }
    if (add) {
        if ((t->slots[j] = strdup(s)) == NULL)
            return -1;
        t->n++;
    }
    return 0;
}

void xset_free(xset *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i]);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

