/*
 * server.h - the HTTP service on libmicrohttpd: start and stop.
 *
 * The server answers JSON over HTTP from a thread pool, on one store.
 * Every error is {"error":{"code":"...","message":"..."}} with its status.
 * The routes are listed in api.c and in the README.
 */
#ifndef PDQM_SERVER_H
#define PDQM_SERVER_H

#include <stddef.h>

#include "../hashing/error.h"
#include "../hashing/image.h"
#include "../hashing/video.h"
#include "../index/store.h"
#include "../cluster/cluster.h"
#include "../fetch/fetch.h"
#include "auth.h"
#include "log.h"

typedef struct pdqm_server_options {
    const char *listen;          /* "HOST:PORT"; port 0 picks a free one */
    unsigned threads;            /* thread pool size; 0: one per core */
    unsigned max_connections;    /* at once (default 1024) */
    unsigned max_connections_per_ip;   /* at once from one address (default 64) */
    unsigned header_timeout_seconds;   /* a connection that has not sent a whole
                                          request head this long after it opened, or
                                          after its last request, is closed (default 10) */
    unsigned timeout_seconds;    /* a connection idle this long, or whose request
                                    body takes longer to arrive, is closed (default 30) */
    size_t max_body;             /* bytes of a JSON body (default 64 MiB) */
    size_t max_body_memory;      /* bytes of bodies held at once, all requests
                                    together (default 1 GiB); past it: 429 */
    pdqm_image_limits image_limits;   /* default: 64 MiB, 250 megapixels */
    pdqm_video_limits video_limits;   /* default: 512 MiB, and the hashing defaults */
    const pdqm_api_keys *keys;   /* copied; NULL: no auth, loopback only */
    const char *tls_cert_pem;    /* both set: HTTPS (PEM text, borrowed) */
    const char *tls_key_pem;
    pdqm_log *log;               /* borrowed; NULL: no log.  An access record
                                    a request at info, every 5xx at error */
    pdqm_cluster *cluster;       /* borrowed; not NULL: a node of a cluster, whose
                                    writes go through the log and whose store
                                    the cluster's applier feeds */
    double max_lag;              /* seconds behind the log past which /readyz
                                    says 503 (default 1) */
    double min_seq_wait;         /* seconds a read waits for X-Pdqmatch-Min-Seq
                                    (default 5) */
    int hma;                     /* also answer HMA's API (server/hma.c) */
    int console;                 /* also serve the web console at /console/
                                    (server/console.c) */
    pdqm_fetcher *fetcher;       /* borrowed; fetches HMA's url= (NULL: off) */
    struct pdqm_exchange_scheduler *scheduler;   /* borrowed; the exchanges' background
                                                    fetcher (POST /v1/exchanges/N/fetch
                                                    asks it); NULL: off */
} pdqm_server_options;

void pdqm_server_options_default(pdqm_server_options *o);

typedef struct pdqm_server pdqm_server;

/* Start serving store (borrowed: it must outlive the server).
 * Errors: PDQM_ERR_INVALID (a bad listen address, or a public one with
 * no API keys), PDQM_ERR_IO (cannot listen there: the system's reason). */
pdqm_status pdqm_server_start(pdqm_store *store, const pdqm_server_options *o,
                              pdqm_server **out, pdqm_error *err);

/* The port the server listens on (useful with port 0). */
unsigned pdqm_server_port(const pdqm_server *s);

/* Check keys (copied) from now on, in place of the ones the server has:
 * requests already authenticated finish under the old keys, no connection
 * is dropped, and a key in both keeps its rate-limit state.  A server
 * started without keys keeps serving without (PDQM_ERR_INVALID): auth is
 * never switched on or off while it runs. */
pdqm_status pdqm_server_set_keys(pdqm_server *s, const pdqm_api_keys *keys, pdqm_error *err);

/* Stop accepting, finish the requests in flight, free; NULL does nothing. */
void pdqm_server_stop(pdqm_server *s);

#endif
