/*
 * hma.c - HMA's rules and formats (see hma.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "hma.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"

static const char *const signal_names[PDQM_HMA_SIGNALS] = { "pdq", "video_md5", "vpdq" };

const char *pdqm_hma_signal_name(pdqm_hma_signal s)
{
    return (unsigned)s < PDQM_HMA_SIGNALS ? signal_names[s] : "?";
}

int pdqm_hma_signal_parse(const char *name)
{
    for (int i = 0; name && i < PDQM_HMA_SIGNALS; i++)
        if (strcmp(name, signal_names[i]) == 0)
            return i;
    return -1;
}

int pdqm_hma_kind_has(pdqm_content_kind kind, pdqm_hma_signal s)
{
    return s == PDQM_HMA_PDQ ? kind != PDQM_CONTENT_VIDEO : kind == PDQM_CONTENT_VIDEO;
}

pdqm_status pdqm_hma_bank_name_check(const char *name, pdqm_error *err)
{
    size_t n = strlen(name);
    int ok = n > 0 && !(name[0] >= '0' && name[0] <= '9');
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '_';
    if (!ok)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "Bank names must be UPPER_WITH_UNDERSCORE");
    if (n > PDQM_BANK_NAME_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "Bank names are at most %d characters here",
                              PDQM_BANK_NAME_MAX);
    return PDQM_OK;
}

int64_t pdqm_hma_disable_from_store(int64_t disabled_until)
{
    return disabled_until == 0 ? 1 : disabled_until < 0 ? 0 : disabled_until;
}

int64_t pdqm_hma_disable_to_store(int64_t disable_until_ts)
{
    return disable_until_ts == 1 ? 0 : disable_until_ts == 0 ? -1 : disable_until_ts;
}

/* Trailing zeros of a fraction off, keeping `keep` digits after the point
 * (0: the point goes too when nothing is left). */
static void trim_zeros(char *s, int keep)
{
    char *dot = strchr(s, '.');
    if (dot == NULL)
        return;
    char *end = s + strlen(s);
    while (end > dot + 1 + keep && end[-1] == '0')
        *--end = '\0';
    if (end == dot + 1 && keep == 0)
        *dot = '\0';
}

void pdqm_hma_float3(double v, char out[32])
{
    enum { P = 3 };
    if (!isfinite(v)) {
        snprintf(out, 32, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    if (v == 0) {
        snprintf(out, 32, "%s", signbit(v) ? "-0.0" : "0.0");
        return;
    }
    /* The exponent after rounding to P significant digits. */
    char sci[40];
    snprintf(sci, sizeof sci, "%.*e", P - 1, v);
    int exp = atoi(strchr(sci, 'e') + 1);
    if (exp < -4 || exp >= P - 1) {
        /* Python's 'g' form: the mantissa's trailing zeros off, the
         * exponent of at least two digits. */
        char *e = strchr(sci, 'e');
        char mant[16];
        size_t ml = (size_t)(e - sci);
        if (ml >= sizeof mant)
            ml = sizeof mant - 1;
        memcpy(mant, sci, ml);
        mant[ml] = '\0';
        trim_zeros(mant, 0);
        snprintf(out, 32, "%se%c%02d", mant, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    snprintf(out, 32, "%.*f", P - 1 - exp, v);
    trim_zeros(out, 1);
    if (strchr(out, '.') == NULL)
        strcat(out, ".0");
}

void pdqm_hma_repr(const char *s, char *out, size_t cap)
{
    if (cap < 3) {
        if (cap)
            out[0] = '\0';
        return;
    }
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    size_t w = 0;
    out[w++] = q;
    for (const unsigned char *p = (const unsigned char *)s; *p && w + 5 < cap; p++) {
        unsigned char ch = *p;
        if (ch == '\\' || ch == (unsigned char)q) {
            out[w++] = '\\';
            out[w++] = (char)ch;
        } else if (ch == '\n') {
            out[w++] = '\\';
            out[w++] = 'n';
        } else if (ch == '\r') {
            out[w++] = '\\';
            out[w++] = 'r';
        } else if (ch == '\t') {
            out[w++] = '\\';
            out[w++] = 't';
        } else if (ch < 0x20 || ch == 0x7f) {
            w += (size_t)snprintf(out + w, cap - w, "\\x%02x", ch);
        } else {
            out[w++] = (char)ch;   /* UTF-8 passes as it is, as Python prints it */
        }
    }
    out[w++] = q;
    out[w] = '\0';
}

pdqm_status pdqm_hma_pdq_parse(const char *text, pdqm_hash256 *out, pdqm_error *err)
{
    size_t n = strlen(text);
    int ok = n == PDQM_HASH_HEX_LEN;
    for (size_t i = 0; ok && i < n; i++)
        ok = (text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f');
    if (!ok || pdqm_hash256_from_hex(text, n, out, NULL) != PDQM_OK)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "invalid PDQ hash");
    return PDQM_OK;
}

pdqm_status pdqm_hma_md5_parse(const char *text, char out[33], pdqm_error *err)
{
    const char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r' ||
                 p[n - 1] == '\f' || p[n - 1] == '\v'))
        n--;
    int ok = n == 32;
    for (size_t i = 0; ok && i < n; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        out[i] = c;
    }
    if (!ok) {
        char quoted[200];
        pdqm_hma_repr(text, quoted, sizeof quoted);
        return pdqm_error_set(err, PDQM_ERR_INVALID, "%s is not a valid MD5 hash", quoted);
    }
    out[32] = '\0';
    return PDQM_OK;
}

/* Python's int() and float() take surrounding spaces. */
static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' || *p == '\v')
        p++;
    return p;
}

/* One "hex,quality,time": 0, or -1 when it is not one. */
static int parse_feature(const char *s, pdqm_stored_hash *f)
{
    const char *c1 = strchr(s, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (c1 == NULL || c2 == NULL || strchr(c2 + 1, ','))
        return -1;
    if (c1 - s != PDQM_HASH_HEX_LEN || pdqm_hash256_from_hex(s, PDQM_HASH_HEX_LEN, &f->hash,
                                                             NULL) != PDQM_OK)
        return -1;
    char part[64];
    size_t ql = (size_t)(c2 - c1 - 1);
    if (ql == 0 || ql >= sizeof part)
        return -1;
    memcpy(part, c1 + 1, ql);
    part[ql] = '\0';
    char *end;
    errno = 0;
    long q = strtol(skip_spaces(part), &end, 10);
    if (errno || end == skip_spaces(part) || *skip_spaces(end) != '\0' || q < 0 || q > 100)
        return -1;
    const char *t = skip_spaces(c2 + 1);
    double ts = strtod(t, &end);
    if (end == t || *skip_spaces(end) != '\0' || !isfinite(ts) || ts < 0)
        return -1;
    f->quality = (int)q;
    f->timestamp = ts;
    return 0;
}

pdqm_status pdqm_hma_vpdq_parse(const char *text, size_t len, size_t max,
                                pdqm_stored_hash **frames, size_t *n, pdqm_error *err)
{
    *frames = NULL;
    *n = 0;
    if (len == 0) {   /* HMA reads "" as "[]" */
        *frames = malloc(1);
        return *frames ? PDQM_OK : pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &je);
    if (j == NULL)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "%s", je.text);
    if (!json_is_array(j)) {
        json_decref(j);
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "invalid VpdqCompactFeature serialization: not a list");
    }
    size_t count = json_array_size(j);
    if (count > max) {
        json_decref(j);
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "a vpdq signal holds at most %zu frames",
                              max);
    }
    pdqm_stored_hash *out = malloc((count ? count : 1) * sizeof *out);
    if (out == NULL) {
        json_decref(j);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        const char *s = json_string_value(json_array_get(j, i));
        if (s == NULL || parse_feature(s, &out[i]) != 0) {
            pdqm_error_set(err, PDQM_ERR_INVALID, "invalid VpdqCompactFeature serialization: "
                           "%.200s", s ? s : "(not a string)");
            free(out);
            json_decref(j);
            return PDQM_ERR_INVALID;
        }
    }
    json_decref(j);
    *frames = out;
    *n = count;
    return PDQM_OK;
}

char *pdqm_hma_vpdq_text(const pdqm_stored_hash *frames, size_t n)
{
    pdqm_jtext t;
    pdqm_jtext_init(&t);
    pdqm_jtext_raw(&t, "[", 1);
    for (size_t i = 0; i < n; i++) {
        char hex[PDQM_HASH_HEX_LEN + 1], ts[32], one[128];
        pdqm_hash256_to_hex(&frames[i].hash, hex);
        pdqm_hma_float3(frames[i].timestamp, ts);
        snprintf(one, sizeof one, "%s%s,%d,%s", i ? "\", \"" : "\"", hex, frames[i].quality, ts);
        pdqm_jtext_raw(&t, one, strlen(one));
    }
    pdqm_jtext_raw(&t, n ? "\"]" : "]", n ? 2 : 1);
    return pdqm_jtext_take(&t, NULL);
}

void pdqm_hma_vpdq_distance(double query_pct, double candidate_pct, char out[32])
{
    snprintf(out, 32, "%.0f%%[%.0f%%]", query_pct, candidate_pct);
}
