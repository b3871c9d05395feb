/*
 * keyring.c - the keys a running server checks, and each key's state.
 */
#define _POSIX_C_SOURCE 200809L
#include "keyring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hashing/clock.h"

pdqm_keyring *pdqm_keyring_new(const pdqm_api_keys *keys, const pdqm_keyring *prev)
{
    pdqm_keyring *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    size_t n = keys->count;
    r->keys.keys = malloc((n ? n : 1) * sizeof *r->keys.keys);
    r->held = calloc(n ? n : 1, sizeof *r->held);
    r->buckets = calloc(n ? n : 1, sizeof *r->buckets);
    if (r->keys.keys == NULL || r->held == NULL || r->buckets == NULL) {
        free(r->keys.keys);
        free((void *)r->held);
        free(r->buckets);
        free(r);
        return NULL;
    }
    if (n)
        memcpy(r->keys.keys, keys->keys, n * sizeof *r->keys.keys);
    r->keys.count = n;
    double now = pdqm_monotonic_seconds();
    for (size_t i = 0; i < n; i++) {
        key_bucket *b = &r->buckets[i];
        pthread_mutex_init(&b->lock, NULL);
        b->tokens = r->keys.keys[i].burst;
        b->last = now;
        for (size_t j = 0; prev && j < prev->keys.count; j++) {
            if (strcmp(prev->keys.keys[j].key, r->keys.keys[i].key) != 0)
                continue;
            key_bucket *old = &prev->buckets[j];
            pthread_mutex_lock(&old->lock);
            if (prev->keys.keys[j].rate > 0) {
                b->tokens = old->tokens < b->tokens ? old->tokens : b->tokens;
                b->last = old->last;
            }
            pthread_mutex_unlock(&old->lock);
            atomic_store(&b->limited, atomic_load(&old->limited));
            break;
        }
    }
    atomic_store(&r->refs, 1);
    return r;
}

void pdqm_keyring_ref(pdqm_keyring *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void pdqm_keyring_unref(pdqm_keyring *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    for (size_t i = 0; i < r->keys.count; i++)
        pthread_mutex_destroy(&r->buckets[i].lock);
    /* The keys are secrets: leave no copy in freed memory. */
    memset(r->keys.keys, 0, r->keys.count * sizeof *r->keys.keys);
    free(r->keys.keys);
    free((void *)r->held);
    free(r->buckets);
    free(r);
}

double pdqm_keyring_take(pdqm_keyring *r, size_t i)
{
    const pdqm_api_key *key = &r->keys.keys[i];
    if (key->rate <= 0)
        return 0;
    key_bucket *b = &r->buckets[i];
    double now = pdqm_monotonic_seconds(), wait = 0;
    pthread_mutex_lock(&b->lock);
    b->tokens += (now - b->last) * key->rate;
    if (b->tokens > key->burst)
        b->tokens = key->burst;
    b->last = now;
    if (b->tokens >= 1)
        b->tokens -= 1;
    else
        wait = (1 - b->tokens) / key->rate;
    pthread_mutex_unlock(&b->lock);
    if (wait > 0)
        atomic_fetch_add(&b->limited, 1);
    return wait;
}

size_t pdqm_keyring_metrics_size(const pdqm_keyring *r)
{
    return 256 + (r ? r->keys.count : 0) * (2 * PDQM_KEY_NAME_MAX + 64);
}

void pdqm_keyring_metrics(const pdqm_keyring *r, char *text, size_t *pw, size_t cap)
{
    size_t w = *pw;
#define PUT(...) do { int k_ = snprintf(text + w, cap - w, __VA_ARGS__); \
                      w += k_ > 0 && (size_t)k_ < cap - w ? (size_t)k_ : cap - w - 1; } while (0)
    PUT("# HELP pdqmatch_rate_limited_total Requests refused (429) by their key's rate limit, "
        "by key name.\n"
        "# TYPE pdqmatch_rate_limited_total counter\n");
    size_t n = r ? r->keys.count : 0;
    const pdqm_api_key *keys = n ? r->keys.keys : NULL;
    for (size_t i = 0; i < n; i++) {
        const pdqm_api_key *k = &keys[i];
        size_t j = 0;   /* keys of one name are one series: its first key sums them */
        while (j < i && (keys[j].rate == 0 || strcmp(keys[j].name, k->name) != 0))
            j++;
        if (k->rate == 0 || j < i)
            continue;
        unsigned long long total = 0;
        for (j = i; j < n; j++)
            if (keys[j].rate > 0 && strcmp(keys[j].name, k->name) == 0)
                total += atomic_load(&r->buckets[j].limited);
        /* Names are printable and hold no space; quotes and backslashes
         * are escaped as Prometheus has it. */
        PUT("pdqmatch_rate_limited_total{key=\"");
        for (const char *p = k->name; *p && w + 4 < cap; p++) {
            if (*p == '"' || *p == '\\')
                text[w++] = '\\';
            text[w++] = *p;
        }
        text[w] = '\0';
        PUT("\"} %llu\n", total);
    }
#undef PUT
    *pw = w;
}
