/*
 * metrics.h - counters and latency histograms for GET /metrics, in the
 * Prometheus text format.  Lock-free: every update is an atomic add.
 */
#ifndef PDQM_METRICS_H
#define PDQM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../index/store.h"

typedef struct pdqm_metrics pdqm_metrics;

/* route_names: n_routes labels ("GET /v1/lookup"); a request that matched
 * no route is counted under "unmatched".  NULL when out of memory. */
pdqm_metrics *pdqm_metrics_new(const char *const *route_names, size_t n_routes);
void pdqm_metrics_free(pdqm_metrics *m);

/* route: 0..n_routes-1, or n_routes for unmatched. */
void pdqm_metrics_request(pdqm_metrics *m, size_t route, unsigned status, double seconds);
void pdqm_metrics_lookups(pdqm_metrics *m, uint64_t queries, uint64_t matches);
void pdqm_metrics_hashing(pdqm_metrics *m, double seconds);

/* The request-body budget, which the server holds rather than the metrics. */
typedef struct pdqm_body_memory {
    size_t reserved;   /* body bytes reserved now */
    size_t limit;      /* --max-body-memory */
} pdqm_body_memory;

/* The text of /metrics (malloc'd), with the store's figures and the body
 * budget; NULL when out of memory. */
char *pdqm_metrics_render(pdqm_metrics *m, pdqm_store *store, pdqm_body_memory body);

#endif
