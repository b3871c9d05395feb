/*
 * jsonraw.c - stored JSON texts spliced into dumped documents (jsonraw.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "jsonraw.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 64 bits from the kernel, or from the clock and the process when
 * /dev/urandom cannot be read. */
static uint64_t random_bits(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&v, sizeof v, 1, f) != 1)
            v = 0;
        fclose(f);
    }
    if (v == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    return v;
}

void pdqm_json_raw_init(pdqm_json_raw *r)
{
    memset(r, 0, sizeof *r);
    static _Thread_local uint64_t base, count;
    if (base == 0)
        base = random_bits() | 1;
    snprintf(r->marker, sizeof r->marker, "%016llx",
             (unsigned long long)(base ^ (++count * 0x9E3779B97F4A7C15ull)));
}

void pdqm_json_raw_clear(pdqm_json_raw *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->texts[i]);
    free(r->texts);
    r->texts = NULL;
    r->n = r->cap = 0;
}

int pdqm_json_text_valid(const char *text)
{
    json_t *check = json_loads(text, JSON_DECODE_ANY, NULL);
    json_decref(check);
    return check != NULL;
}

json_t *pdqm_json_raw_value(pdqm_json_raw *r, const char *text)
{
    if (text == NULL)
        return json_null();
    if (!pdqm_json_text_valid(text))
        return json_string(text);
    return pdqm_json_raw_text(r, text);
}

json_t *pdqm_json_raw_text(pdqm_json_raw *r, const char *text)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        char **grown = realloc(r->texts, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        r->texts = grown;
        r->cap = cap;
    }
    char *copy = strdup(text);
    if (copy == NULL)
        return NULL;
    char place[48];
    snprintf(place, sizeof place, "\001%s:%zu\001", r->marker, r->n);
    json_t *v = json_string(place);
    if (v == NULL) {
        free(copy);
        return NULL;
    }
    r->texts[r->n++] = copy;
    return v;
}

char *pdqm_json_raw_dumps(const json_t *j, size_t flags, const pdqm_json_raw *r)
{
    char *dumped = json_dumps(j, flags);
    if (dumped == NULL || r->n == 0)
        return dumped;
    /* How a place looks once dumped: "\u0001MARKER:N\u0001". */
    char head[40];
    int head_len = snprintf(head, sizeof head, "\"\\u0001%s:", r->marker);
    char *out = NULL;
    size_t out_len = 0;
    FILE *w = open_memstream(&out, &out_len);
    if (w == NULL) {
        free(dumped);
        return NULL;
    }
    const char *p = dumped;
    for (;;) {
        const char *at = strstr(p, head);
        if (at == NULL)
            break;
        char *end;
        unsigned long long k = strtoull(at + head_len, &end, 10);
        if (k >= r->n || strncmp(end, "\\u0001\"", 7) != 0) {
            /* Not one of ours after all: copy it and go on. */
            fwrite(p, 1, (size_t)(at - p) + 1, w);
            p = at + 1;
            continue;
        }
        fwrite(p, 1, (size_t)(at - p), w);
        fputs(r->texts[k], w);
        p = end + 7;
    }
    fputs(p, w);
    int failed = ferror(w);
    if (fclose(w) != 0 || failed) {
        free(out);
        out = NULL;
    }
    free(dumped);
    return out;
}
