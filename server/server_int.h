/*
 * server_int.h - what server.c shares with the route handlers in api.c.
 * Not part of the public API.
 */
#ifndef PDQM_SERVER_INT_H
#define PDQM_SERVER_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <microhttpd.h>

#include "mhd_lazy.h"

#include "auth.h"
#include "keyring.h"
#include "metrics.h"
#include "../hashing/clock.h"
#include "server.h"

/* The header deadline (deadline.c): start the watcher (NULL when out of
 * memory or threads), stop it once libmicrohttpd has stopped; the
 * notification callback for MHD_OPTION_NOTIFY_CONNECTION (cls: the
 * watcher); a request's head is in; a request is done (its connection
 * waits for the next head from now). */
typedef struct pdqm_deadlines pdqm_deadlines;
pdqm_deadlines *pdqm_deadlines_start(double timeout);
void pdqm_deadlines_stop(pdqm_deadlines *d);
unsigned long long pdqm_deadlines_closed(const pdqm_deadlines *d);
void pdqm_deadlines_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                           enum MHD_ConnectionNotificationCode code);
void pdqm_deadlines_head_in(struct MHD_Connection *c);
void pdqm_deadlines_request_done(struct MHD_Connection *c);

struct pdqm_server {
    struct MHD_Daemon *daemon;
    pdqm_store *store;
    unsigned port;
    size_t max_body;         /* JSON bodies */
    size_t max_media_body;   /* image and video bodies: the larger limit */
    size_t max_body_memory;  /* bodies held at once, all requests together */
    _Atomic size_t body_memory;   /* reserved by requests in progress */
    size_t body_share;       /* what one key's requests (or, without keys, one
                                request) may hold: half of max_body_memory */
    pdqm_deadlines *deadlines;   /* the header deadline's watcher */
    _Atomic int disk_full;   /* a full disk was logged, its end not yet */
    double timeout;          /* seconds a request's body may take */
    pdqm_image_limits image_limits;
    pdqm_video_limits video_limits;
    pthread_mutex_t keys_lock;   /* guards the keyring pointer (not what it holds) */
    pdqm_keyring *keyring;       /* NULL: no auth (loopback only) */
    pdqm_metrics *metrics;
    pdqm_log *log;               /* NULL: none */
    pdqm_writer writer;          /* where writes go: the store, or the cluster */
    pdqm_cluster *cluster;       /* NULL: a single node */
    double max_lag, min_seq_wait;
    uint64_t id_seed;            /* request ids: made from the seed and a count */
    _Atomic uint64_t id_counter;
    const struct route *routes;  /* pdqmatch's, then HMA's with --hma */
    size_t n_routes;
    char (*route_names)[96];     /* "METHOD /v1/banks/{name}", for the metrics */
    const char **route_labels;
    char (*route_paths)[80];     /* "/v1/banks/{name}", for the access log */
    pdqm_fetcher *fetcher;       /* borrowed: URL fetching (HMA's url=); NULL: off */
    struct pdqm_exchange_scheduler *scheduler;   /* borrowed: the exchanges' fetcher;
                                                    NULL: off */
    /* Decoding and hashing media, at most media_max at once (one a core),
     * however many request threads --threads makes: the decoders' memory
     * and CPU do not grow with them. */
    pthread_mutex_t media_lock;
    pthread_cond_t media_free;
    unsigned media_busy, media_max;
    /* The write pool: requests that write run in its threads, their
     * connections suspended meanwhile, so that one waiting for the store's
     * writer holds no request thread (server.c, "The write pool"). */
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_more, pool_idle;
    struct request *pool_head, *pool_tail;
    pthread_t *pool_threads;
    unsigned pool_n, pool_busy;
    int pool_closed;          /* stopping: writes run in the request thread */
};

/* Wait for, and give back, a turn to decode and hash media. */
void pdqm_media_enter(pdqm_server *s);
void pdqm_media_leave(pdqm_server *s);

#define REQUEST_ID_MAX 64

/* One request, from its first call to its completion.  The path holds at
 * most two parameters, {name} and {content_id}, decoded by libmicrohttpd. */
typedef struct request {
    pdqm_server *server;
    const struct route *route;
    const char *param[2];
    char *path_copy;         /* owns what param[] points into */
    char *body;
    size_t size, cap;
    int too_large;           /* the body passed the limit: dropped */
    int too_busy;            /* no body memory left: dropped, 429 */
    int bad_form;            /* the multipart parser gave up: 400 */
    int file_fields;         /* form fields named "file" seen; a second is 400 */
    int timed_out;           /* the body took too long: connection closed */
    size_t reserved;         /* bytes of max_body_memory this request holds */
    _Atomic size_t *holder;  /* its key's count of held bytes; NULL: no key */
    pdqm_keyring *keyring;   /* a reference to the keyring holder is in */
    struct MHD_PostProcessor *form;   /* multipart/form-data: field "file" (HMA's
                                         routes: the file of any field) */
    char file_field[16];     /* HMA: the name of the form's file field ("photo") */
    char *form_text[2];      /* HMA: the form's fields "metadata" and "note" */
    size_t form_text_len[2];
    double start;            /* monotonic seconds at the first call */
    /* For the access record: */
    char id[REQUEST_ID_MAX + 1];      /* X-Request-Id, sent back in every reply */
    char method[16];
    char key_name[PDQM_KEY_NAME_MAX + 1];   /* the API key's name, "" when none */
    pdqm_role role;          /* the key's role (PDQM_ROLE_NONE: no key checked) */
    unsigned status;         /* of the reply, 0 before one */
    size_t bytes_in, bytes_out;   /* body bytes received, and sent */
    long long matches;       /* store matches of the lookups it ran; -1: none */
    /* A write, run by the write pool while its connection is suspended
     * (server.c, "The write pool"): */
    struct MHD_Connection *conn;
    struct request *next_job;
    int pooled;              /* 1: handed to the pool; 2: its reply is ready */
    struct MHD_Response *reply;   /* the reply the pool made, to queue */
    unsigned reply_status;
    enum MHD_Result pool_result;
} request;

typedef enum MHD_Result (*route_fn)(pdqm_server *s, struct MHD_Connection *c, request *rq);

struct route {
    const char *method;
    const char *pattern;     /* "*" matches one segment, "**" the rest */
    route_fn fn;
    int takes_body;          /* 0: none, 1: JSON, 2: media, 3: HMA's media or
                                JSON (a form's file field is its content type) */
    pdqm_role role;          /* the least role that may call it, with keys */
    const char *summary;     /* one line, for /openapi.json */
    int hma;                 /* one of HMA's routes: its errors in HMA's shape */
};

extern const struct route pdqm_routes[];
extern const size_t pdqm_n_routes;
/* The web console's routes (console.c), served with --console. */
extern const struct route pdqm_console_routes[];
extern const size_t pdqm_console_n_routes;
/* HMA's routes (hma.c), served with --hma. */
extern const struct route pdqm_hma_routes[];
extern const size_t pdqm_hma_n_routes;

/* The media routes (api_media.c). */
enum MHD_Result pdqm_post_hash(pdqm_server *s, struct MHD_Connection *c, request *rq);
/* /v1/exchanges (api_exchanges.c), and the exchanges' lines of /metrics. */
enum MHD_Result pdqm_get_exchanges(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result pdqm_get_exchange(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result pdqm_post_exchange_fetch(pdqm_server *s, struct MHD_Connection *c, request *rq);
char *pdqm_exchange_metrics(pdqm_server *s);
enum MHD_Result pdqm_post_lookup_media(pdqm_server *s, struct MHD_Connection *c, request *rq);
enum MHD_Result pdqm_post_bank_media(pdqm_server *s, struct MHD_Connection *c, request *rq);

/* Count lookups of n queries that found `matches` store matches: in the
 * metrics, and in the access record of the request being answered. */
void pdqm_count_lookups(pdqm_server *s, size_t n, size_t matches);

/* The server's own metrics as Prometheus text, appended to the metrics
 * (malloc'd; NULL when out of memory): the rate-limit counters, the
 * connections cut at the header deadline, whether the store is writable. */
char *pdqm_server_metrics(pdqm_server *s, int writable);

/* j with "seq": the write's place in the cluster's log, when it has one
 * (seq 0: a single node's write, j as it was). */
json_t *pdqm_with_seq(json_t *j, uint64_t seq);

/* "N" in lo..hi from a query argument, -1 when bad (api.c). */
long pdqm_arg_long(const char *s, long lo, long hi);


/* The route's path as OpenAPI writes it: "/v1/banks/{name}". */
void pdqm_route_path(const struct route *r, char *out, size_t size);

enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, char *body,
                           const char *content_type);
enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j);
/* Reply with len bytes at body (not copied: they must outlive the reply,
 * as fixed text does) and headers: name, value, ..., NULL. */
enum MHD_Result reply_static(struct MHD_Connection *c, unsigned status, const void *body,
                             size_t len, const char *const *headers);
/* reply_json() with the stored texts of raw spliced in (jsonraw.h); raw is
 * cleared. */
struct pdqm_json_raw;
enum MHD_Result reply_json_raw(struct MHD_Connection *c, unsigned status, json_t *j,
                               struct pdqm_json_raw *raw);
enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
enum MHD_Result reply_status(struct MHD_Connection *c, pdqm_status st, const pdqm_error *err);

#endif
