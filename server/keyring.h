/*
 * keyring.h - the API keys a running server checks, with each key's state:
 * its rate-limit bucket and the request body bytes its requests hold.
 *
 * A keyring is immutable once made, apart from that per-key state, and
 * counted: a request takes a reference when it is authenticated and drops
 * it when it is done, so a reload (SIGHUP) swaps in a new keyring while
 * the requests in flight finish against the old one.  Not part of the
 * public API.
 */
#ifndef PDQM_KEYRING_H
#define PDQM_KEYRING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "auth.h"

/* A key's rate limit: a token bucket (tokens refill at the key's rate, up
 * to its burst; a request takes one). */
typedef struct key_bucket {
    pthread_mutex_t lock;
    double tokens;
    double last;             /* monotonic seconds of the last refill */
    _Atomic unsigned long long limited;   /* requests refused for it */
} key_bucket;

typedef struct pdqm_keyring {
    _Atomic long refs;
    pdqm_api_keys keys;      /* a copy, owned */
    _Atomic size_t *held;    /* body bytes held by each key's requests */
    key_bucket *buckets;     /* each key's rate limit */
} pdqm_keyring;

/* A keyring of a copy of keys, holding one reference.  A key that prev
 * (NULL: none) also holds keeps its bucket's tokens and its count of
 * refused requests, so a reload neither refills a key nor resets its
 * counter.  NULL when out of memory. */
pdqm_keyring *pdqm_keyring_new(const pdqm_api_keys *keys, const pdqm_keyring *prev);

void pdqm_keyring_ref(pdqm_keyring *r);
void pdqm_keyring_unref(pdqm_keyring *r);   /* frees it with the last reference */

/* Take a token of key i's bucket: 0 when there was one (or the key has no
 * rate), else the seconds until there is one. */
double pdqm_keyring_take(pdqm_keyring *r, size_t i);

/* The Prometheus series pdqmatch_rate_limited_total, one a key name, with
 * its HELP and TYPE lines, appended at text + *w (cap bytes in all; what
 * does not fit is cut).  cap: pdqm_keyring_metrics_size() more than *w. */
size_t pdqm_keyring_metrics_size(const pdqm_keyring *r);
void pdqm_keyring_metrics(const pdqm_keyring *r, char *text, size_t *w, size_t cap);

#endif
