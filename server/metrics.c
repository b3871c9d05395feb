/*
 * metrics.c - the /metrics counters.
 */
#define _POSIX_C_SOURCE 200809L
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds of the latency buckets, seconds (and +Inf). */
static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define N_BOUNDS (sizeof bounds / sizeof bounds[0])
#define N_STATUS 500   /* statuses 100..599 */

typedef struct histogram {
    atomic_uint_fast64_t bucket[N_BOUNDS + 1];
    atomic_uint_fast64_t micros;    /* the sum, in microseconds */
} histogram;

typedef struct route_metrics {
    atomic_uint_fast64_t status[N_STATUS];
    histogram latency;
} route_metrics;

struct pdqm_metrics {
    const char *const *names;
    size_t n_routes;
    route_metrics *routes;           /* n_routes + 1 */
    atomic_uint_fast64_t lookups, matches;
    histogram hashing;
};

pdqm_metrics *pdqm_metrics_new(const char *const *route_names, size_t n_routes)
{
    pdqm_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->routes = calloc(n_routes + 1, sizeof *m->routes);
    if (m->routes == NULL) {
        free(m);
        return NULL;
    }
    m->names = route_names;
    m->n_routes = n_routes;
    return m;
}

void pdqm_metrics_free(pdqm_metrics *m)
{
    if (m == NULL)
        return;
    free(m->routes);
    free(m);
}

static void observe(histogram *h, double seconds)
{
    size_t i = 0;
    while (i < N_BOUNDS && seconds > bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->micros, (uint_fast64_t)(seconds * 1e6 + 0.5),
                              memory_order_relaxed);
}

void pdqm_metrics_request(pdqm_metrics *m, size_t route, unsigned status, double seconds)
{
    if (route > m->n_routes)
        route = m->n_routes;
    route_metrics *r = &m->routes[route];
    if (status >= 100 && status < 100 + N_STATUS)
        atomic_fetch_add_explicit(&r->status[status - 100], 1, memory_order_relaxed);
    observe(&r->latency, seconds);
}

void pdqm_metrics_lookups(pdqm_metrics *m, uint64_t queries, uint64_t matches)
{
    atomic_fetch_add_explicit(&m->lookups, queries, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->matches, matches, memory_order_relaxed);
}

void pdqm_metrics_hashing(pdqm_metrics *m, double seconds)
{
    observe(&m->hashing, seconds);
}

/* A growing text buffer; on failure it stays failed and frees itself. */
typedef struct text {
    char *buf;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        /* The first call has no buffer yet: it only measures. */
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (b == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = b;
        t->cap = cap;
    }
}

static void put_histogram(text *t, const char *name, const char *labels, const histogram *h)
{
    uint64_t total = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i <= N_BOUNDS; i++) {
        total += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < N_BOUNDS)
            put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                (unsigned long long)total);
        else
            put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                (unsigned long long)total);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    put(t, "%s_sum%s%s%s %.6f\n", name, open, labels, close,
        (double)atomic_load_explicit(&h->micros, memory_order_relaxed) / 1e6);
    put(t, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)total);
}

char *pdqm_metrics_render(pdqm_metrics *m, pdqm_store *store, pdqm_body_memory body)
{
    text t = { NULL, 0, 0, 0 };
    put(&t, "# HELP pdqmatch_requests_total HTTP requests by route and status.\n"
            "# TYPE pdqmatch_requests_total counter\n");
    for (size_t r = 0; r <= m->n_routes; r++) {
        const char *name = r < m->n_routes ? m->names[r] : "unmatched";
        for (unsigned s = 0; s < N_STATUS; s++) {
            uint64_t v = atomic_load_explicit(&m->routes[r].status[s], memory_order_relaxed);
            if (v)
                put(&t, "pdqmatch_requests_total{route=\"%s\",status=\"%u\"} %llu\n", name,
                    s + 100, (unsigned long long)v);
        }
    }
    put(&t, "# HELP pdqmatch_request_seconds Time to answer a request, by route.\n"
            "# TYPE pdqmatch_request_seconds histogram\n");
    for (size_t r = 0; r <= m->n_routes; r++) {
        char labels[128];
        snprintf(labels, sizeof labels, "route=\"%s\"", r < m->n_routes ? m->names[r]
                                                                         : "unmatched");
        put_histogram(&t, "pdqmatch_request_seconds", labels, &m->routes[r].latency);
    }
    put(&t, "# HELP pdqmatch_lookups_total Hashes looked up.\n"
            "# TYPE pdqmatch_lookups_total counter\n"
            "pdqmatch_lookups_total %llu\n"
            "# HELP pdqmatch_matches_total Matches returned.\n"
            "# TYPE pdqmatch_matches_total counter\n"
            "pdqmatch_matches_total %llu\n",
        (unsigned long long)atomic_load(&m->lookups), (unsigned long long)atomic_load(&m->matches));
    put(&t, "# HELP pdqmatch_hashing_seconds Time to hash a media body.\n"
            "# TYPE pdqmatch_hashing_seconds histogram\n");
    put_histogram(&t, "pdqmatch_hashing_seconds", "", &m->hashing);
    pdqm_store_stats st;
    pdqm_error err;
    if (pdqm_store_stats_get(store, &st, &err) == PDQM_OK)
        put(&t, "# HELP pdqmatch_store_hashes Live hashes in the store.\n"
                "# TYPE pdqmatch_store_hashes gauge\n"
                "pdqmatch_store_hashes %llu\n"
                "# HELP pdqmatch_store_contents Content items in the store.\n"
                "# TYPE pdqmatch_store_contents gauge\n"
                "pdqmatch_store_contents %llu\n"
                "# HELP pdqmatch_store_banks Banks in the store.\n"
                "# TYPE pdqmatch_store_banks gauge\n"
                "pdqmatch_store_banks %llu\n"
                "# HELP pdqmatch_store_bytes Size of the store file.\n"
                "# TYPE pdqmatch_store_bytes gauge\n"
                "pdqmatch_store_bytes %llu\n"
                "# HELP pdqmatch_hash_copy_bytes Memory holding a copy of the stored hashes for lookups.\n"
                "# TYPE pdqmatch_hash_copy_bytes gauge\n"
                "pdqmatch_hash_copy_bytes %llu\n",
            (unsigned long long)st.hashes, (unsigned long long)st.contents,
            (unsigned long long)st.banks, (unsigned long long)st.file_bytes,
            (unsigned long long)st.hash_copy_bytes);
    put(&t, "# HELP pdqmatch_body_bytes Request body bytes reserved now.\n"
            "# TYPE pdqmatch_body_bytes gauge\n"
            "pdqmatch_body_bytes %zu\n"
            "# HELP pdqmatch_body_bytes_limit The budget (--max-body-memory).\n"
            "# TYPE pdqmatch_body_bytes_limit gauge\n"
            "pdqmatch_body_bytes_limit %zu\n",
        body.reserved, body.limit);
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    return t.buf;
}
