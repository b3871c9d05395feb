/*
 * jsontext.c - JSON text written straight into a growing buffer (see
 * jsontext.h).
 */
#include "jsontext.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../hashing/utf8.h"

void pdqm_jtext_init(pdqm_jtext *t)
{
    memset(t, 0, sizeof *t);
}

void pdqm_jtext_free(pdqm_jtext *t)
{
    free(t->s);
    pdqm_jtext_init(t);
}

/* Room for n more bytes and the NUL; 0 when there is none. */
static int reserve(pdqm_jtext *t, size_t n)
{
    if (t->failed)
        return 0;
    if (n < t->cap - t->len)
        return 1;
    if (n > SIZE_MAX / 2 - t->len) {
        t->failed = 1;
        return 0;
    }
    size_t cap = t->cap ? t->cap : 512;
    while (cap - t->len <= n)
        cap *= 2;
    char *grown = realloc(t->s, cap);
    if (grown == NULL) {
        t->failed = 1;
        return 0;
    }
    t->s = grown;
    t->cap = cap;
    return 1;
}

void pdqm_jtext_raw(pdqm_jtext *t, const char *s, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->s + t->len, s, n);
    t->len += n;
}

void pdqm_jtext_lit(pdqm_jtext *t, const char *s)
{
    pdqm_jtext_raw(t, s, strlen(s));
}

void pdqm_jtext_string(pdqm_jtext *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    pdqm_jtext_raw(t, "\"", 1);
    for (;;) {
        /* The plain run first, in one copy. */
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        pdqm_jtext_raw(t, (const char *)run, (size_t)(p - run));
        if (*p == '\0')
            break;
        if (*p >= 0x80) {
            size_t n = pdqm_utf8_sequence(p);
            if (n == 0) {
                pdqm_jtext_raw(t, "\xef\xbf\xbd", 3);
                p++;
            } else {
                pdqm_jtext_raw(t, (const char *)p, n);
                p += n;
            }
            continue;
        }
        char esc[6] = { '\\', (char)*p, 0, 0, 0, 0 };
        size_t n = 2;
        switch (*p) {
        case '"': case '\\': break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        pdqm_jtext_raw(t, esc, n);
        p++;
    }
    pdqm_jtext_raw(t, "\"", 1);
}

size_t pdqm_format_int(long long v, char out[20])
{
    char digits[20];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = digits[--n];
    return len;
}

void pdqm_jtext_int(pdqm_jtext *t, long long v)
{
    char buf[20];
    pdqm_jtext_raw(t, buf, pdqm_format_int(v, buf));
}

void pdqm_jtext_bool(pdqm_jtext *t, int v)
{
    if (v)
        pdqm_jtext_raw(t, "true", 4);
    else
        pdqm_jtext_raw(t, "false", 5);
}

char *pdqm_jtext_take(pdqm_jtext *t, size_t *len)
{
    if (!reserve(t, 0)) {
        pdqm_jtext_free(t);
        return NULL;
    }
    t->s[t->len] = '\0';
    char *s = t->s;
    if (len)
        *len = t->len;
    pdqm_jtext_init(t);
    return s;
}
