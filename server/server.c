/*
 * server.c - libmicrohttpd glue, the route table, and JSON replies.
 *
 * One reply family: reply_json() for successes and reply_error() for every
 * failure, so each error has the same JSON shape, a stable code and no
 * line breaks in its message.
 */
#define _POSIX_C_SOURCE 200809L
#include "server_int.h"
#include "../core/jsonraw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "../hashing/hash256.h"


void pdqm_server_options_default(pdqm_server_options *o)
{
    o->listen = "127.0.0.1:8080";
    o->threads = 0;
    o->max_connections = 1024;
    o->max_connections_per_ip = 64;
    o->header_timeout_seconds = 10;
    o->timeout_seconds = 30;
    o->keys = NULL;
    o->tls_cert_pem = NULL;
    o->tls_key_pem = NULL;
    o->log = NULL;
    o->max_body = (size_t)64 << 20;
    o->max_body_memory = (size_t)1 << 30;
    pdqm_image_limits_default(&o->image_limits);
    o->image_limits.max_bytes = (size_t)64 << 20;
    pdqm_video_limits_default(&o->video_limits);
    o->video_limits.max_bytes = (size_t)512 << 20;
    o->cluster = NULL;
    o->max_lag = 1;
    o->min_seq_wait = 5;
    o->hma = 0;
    o->console = 0;
    o->fetcher = NULL;
    o->scheduler = NULL;
}

json_t *pdqm_with_seq(json_t *j, uint64_t seq)
{
    if (j && seq)
        json_object_set_new(j, "seq", json_integer((json_int_t)seq));
    return j;
}

/* ------------------------------------------------------------------ */
/* Replies                                                              */

/* The status of the reply this thread queued last, for the metrics, and
 * the request this thread is answering (its id goes in every reply; the
 * reply's status and size go in its access record). */
static _Thread_local unsigned replied_status;
static _Thread_local request *current;
/* In a thread of the write pool: the request whose reply is kept for its
 * request thread to queue (libmicrohttpd queues replies only there). */
static _Thread_local request *capturing;

/* Queue r (consumed) with status: add the headers every reply carries,
 * note the status and size for the access record, and in a thread of the
 * write pool keep it for the request thread instead. */
static enum MHD_Result queue_reply(struct MHD_Connection *c, unsigned status,
                                   struct MHD_Response *r, size_t len)
{
    replied_status = status;
    /* A browser never guesses another type than the one sent (a JSON body
     * holding stored text is never read as HTML). */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (current) {
        current->status = status;
        current->bytes_out = len;
        if (current->id[0])
            MHD_add_response_header(r, "X-Request-Id", current->id);
    }
    if (capturing) {
        capturing->reply = r;
        capturing->reply_status = status;
        return MHD_YES;
    }
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Queue body (malloc'd, consumed) with its type and, when header is not
 * NULL, one more header. */
static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, char *body,
                                 const char *content_type, const char *header,
                                 const char *value)
{
    size_t len = strlen(body);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", content_type);
    /* An API reply opened in a browser runs nothing and is framed nowhere. */
    MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'; "
                                                          "frame-ancestors 'none'");
    if (header)
        MHD_add_response_header(r, header, value);
    return queue_reply(c, status, r, len);
}

enum MHD_Result reply_static(struct MHD_Connection *c, unsigned status, const void *body,
                             size_t len, const char *const *headers)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
                                                             MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    for (size_t i = 0; headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    return queue_reply(c, status, r, len);
}

/* Reply with body (malloc'd, consumed). */
enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, char *body,
                           const char *content_type)
{
    return send_body(c, status, body, content_type, NULL, NULL);
}

/* Reply with j (consumed). */
enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *body = json_dumps(j, PDQM_JSON_DUMP_FLAGS);
    json_decref(j);
    if (body == NULL)
        return MHD_NO;
    return reply_text(c, status, body, "application/json");
}

enum MHD_Result reply_json_raw(struct MHD_Connection *c, unsigned status, json_t *j,
                               struct pdqm_json_raw *raw)
{
    char *body = pdqm_json_raw_dumps(j, PDQM_JSON_DUMP_FLAGS, raw);
    json_decref(j);
    pdqm_json_raw_clear(raw);
    if (body == NULL)
        return MHD_NO;
    return reply_text(c, status, body, "application/json");
}

/* The route template of rq for the log ("/v1/banks/{name}"), or NULL
 * when it matched none. */
static const char *route_path_of(const request *rq)
{
    return rq->route ? rq->server->route_paths[rq->route - rq->server->routes] : NULL;
}

/* The JSON text of an error (malloc'd), NULL when out of memory.  The
 * message is kept on one line.  HMA's routes answer {"message": ...}, as
 * HMA does. */
static char *error_body(const char *code, char *message)
{
    for (char *p = message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    int hma = current && current->route && current->route->hma;
    json_t *j = hma ? json_pack("{s:s%}", "message", message, strlen(message))
                    : json_pack("{s:{s:s,s:s%}}", "error", "code", code, "message", message,
                                strlen(message));
    if (j == NULL)   /* a message that is not UTF-8: keep the code */
        j = hma ? json_pack("{s:s}", "message", "invalid request")
                : json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                            "invalid request");
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return body;
}

enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                            const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (status >= 500 && status != MHD_HTTP_INSUFFICIENT_STORAGE && current)
        PDQM_LOG(current->server->log, PDQM_LOG_ERROR, "server error",
                 PDQM_LOG_S("request_id", current->id),
                 PDQM_LOG_S("route", route_path_of(current)),
                 PDQM_LOG_I("status", status), PDQM_LOG_S("code", code),
                 PDQM_LOG_S("error", message));
    char *body = error_body(code, message);
    if (body == NULL)
        return MHD_NO;
    return reply_text(c, status, body, "application/json");
}

/* The HTTP status and code for a library error. */
static unsigned status_of(pdqm_status st)
{
    switch (st) {
    case PDQM_ERR_INVALID: return MHD_HTTP_BAD_REQUEST;
    case PDQM_ERR_NOT_FOUND: return MHD_HTTP_NOT_FOUND;
    case PDQM_ERR_EXISTS: return MHD_HTTP_CONFLICT;
    case PDQM_ERR_TOO_LARGE: return MHD_HTTP_CONTENT_TOO_LARGE;
    case PDQM_ERR_UNSUPPORTED: return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    case PDQM_ERR_DECODE: return MHD_HTTP_BAD_REQUEST;
    case PDQM_ERR_DEGENERATE: return MHD_HTTP_UNPROCESSABLE_CONTENT;
    case PDQM_ERR_NO_SPACE: return MHD_HTTP_INSUFFICIENT_STORAGE;
    case PDQM_ERR_UNAVAILABLE: return MHD_HTTP_SERVICE_UNAVAILABLE;
    case PDQM_ERR_BUSY: return MHD_HTTP_CONFLICT;
    default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

enum MHD_Result reply_status(struct MHD_Connection *c, pdqm_status st, const pdqm_error *err)
{
    if (st == PDQM_ERR_NO_SPACE) {
        /* A state, not an incident: logged once when it starts (and once
         * when writes resume, request_count), answered "disk full". */
        if (current && !atomic_exchange(&current->server->disk_full, 1))
            PDQM_LOG(current->server->log, PDQM_LOG_ERROR, "disk full",
                     PDQM_LOG_S("request_id", current->id),
                     PDQM_LOG_S("error", pdqm_error_message(err)),
                     PDQM_LOG_S("effect", "writes get 507 until space is freed; reads go on"));
        return reply_error(c, status_of(st), pdqm_status_token(st), "disk full");
    }
    return reply_error(c, status_of(st), pdqm_status_token(st), "%s", pdqm_error_message(err));
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                             */

/* Match path against pattern; on success fill rq->param[] (pointing into
 * rq->path_copy, which this allocates). */
static int route_match(const char *pattern, const char *path, request *rq)
{
    size_t np = 0;
    const char *p = pattern, *u = path;
    const char *starts[2];
    size_t lens[2];
    while (*p) {
        if (p[0] == '*' && p[1] == '*') {
            if (*u == '\0' || np == 2)
                return 0;
            starts[np] = u;
            lens[np++] = strlen(u);
            u += strlen(u);
            p += 2;
        } else if (*p == '*') {
            const char *slash = strchr(u, '/');
            size_t len = slash ? (size_t)(slash - u) : strlen(u);
            if (len == 0 || np == 2)
                return 0;
            starts[np] = u;
            lens[np++] = len;
            u += len;
            p++;
        } else {
            if (*p != *u)
                return 0;
            p++;
            u++;
        }
    }
    if (*u != '\0')
        return 0;
    if (np > 0) {
        size_t total = 0;
        for (size_t i = 0; i < np; i++)
            total += lens[i] + 1;
        rq->path_copy = malloc(total);
        if (rq->path_copy == NULL)
            return -1;
        char *w = rq->path_copy;
        for (size_t i = 0; i < np; i++) {
            memcpy(w, starts[i], lens[i]);
            w[lens[i]] = '\0';
            rq->param[i] = w;
            w += lens[i] + 1;
        }
    }
    return 1;
}

static void request_free(request *rq)
{
    if (rq == NULL)
        return;
    if (rq->reserved) {
        atomic_fetch_sub(&rq->server->body_memory, rq->reserved);
        if (rq->holder)
            atomic_fetch_sub(rq->holder, rq->reserved);
    }
    pdqm_keyring_unref(rq->keyring);
    if (rq->form)
        MHD_destroy_post_processor(rq->form);
    free(rq->form_text[0]);
    free(rq->form_text[1]);
    free(rq->path_copy);
    free(rq->body);
    free(rq);
}

/* The access record of a finished request: one at info, whatever became
 * of it (status 0: closed without a reply). */
static void access_record(pdqm_server *s, const request *rq, enum MHD_RequestTerminationCode toe)
{
    static const char *const ends[] = {
        [MHD_REQUEST_TERMINATED_COMPLETED_OK] = NULL,
        [MHD_REQUEST_TERMINATED_WITH_ERROR] = "closed on an error",
        [MHD_REQUEST_TERMINATED_TIMEOUT_REACHED] = "timed out",
        [MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN] = "server stopping",
        [MHD_REQUEST_TERMINATED_READ_ERROR] = "closed by the client",
        [MHD_REQUEST_TERMINATED_CLIENT_ABORT] = "closed by the client",
    };
    const char *end = (unsigned)toe < sizeof ends / sizeof ends[0] ? ends[toe] : "closed";
    if (rq->timed_out)
        end = "the body took too long";
    pdqm_log_field f[] = {
        PDQM_LOG_S("request_id", rq->id),
        PDQM_LOG_S("method", rq->method),
        PDQM_LOG_S("route", route_path_of(rq)),
        PDQM_LOG_I("status", rq->status),
        PDQM_LOG_I("bytes_in", rq->bytes_in),
        PDQM_LOG_I("bytes_out", rq->bytes_out),
        PDQM_LOG_D("duration_ms", (pdqm_monotonic_seconds() - rq->start) * 1000.0),
        PDQM_LOG_S("key", rq->key_name[0] ? rq->key_name : NULL),
        PDQM_LOG_I("matches", rq->matches),
        PDQM_LOG_S("end", end),
    };
    size_t n = sizeof f / sizeof f[0];
    if (rq->matches < 0) {   /* no lookup ran: no matches field */
        f[8] = f[9];
        n--;
    }
    pdqm_log_record_deferred(s->log, PDQM_LOG_INFO, "request", f, n);
}

static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    (void)c;
    pdqm_server *s = cls;
    request *rq = *con_cls;
    pdqm_deadlines_request_done(c);
    if (rq && pdqm_log_wants(s->log, PDQM_LOG_INFO))
        access_record(s, rq, toe);
    request_free(rq);
    *con_cls = NULL;
}

void pdqm_count_lookups(pdqm_server *s, size_t n, size_t matches)
{
    pdqm_metrics_lookups(s->metrics, n, matches);
    if (current)
        current->matches = (current->matches < 0 ? 0 : current->matches) + (long long)matches;
}

/* A request id from the client is kept when it is a sane token: 1 to 64
 * of [A-Za-z0-9._:-]. */
static int request_id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        unsigned char ch = (unsigned char)id[n];
        if (n == REQUEST_ID_MAX ||
            !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' || ch == '-'))
            return 0;
    }
    return n > 0;
}

/* Otherwise one is made: 16 hex digits, from a counter scrambled with a
 * seed of the process (unique within it, unlikely to repeat across). */
static void request_id_make(pdqm_server *s, char out[REQUEST_ID_MAX + 1])
{
    uint64_t x = s->id_seed + 0x9e3779b97f4a7c15ull * atomic_fetch_add(&s->id_counter, 1);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    snprintf(out, REQUEST_ID_MAX + 1, "%016llx", (unsigned long long)x);
}

static size_t body_limit(const pdqm_server *s, const request *rq)
{
    return rq->route->takes_body >= 2 ? s->max_media_body : s->max_body;
}

/* Gather the form field "file" of a multipart/form-data body. */
static int request_append(pdqm_server *s, request *rq, const char *data, size_t n);

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data,
                                  uint64_t off, size_t size)
{
    (void)kind; (void)filename; (void)content_type; (void)transfer_encoding;
    request *rq = cls;
    if (key == NULL || strcmp(key, "file") != 0)
        return MHD_YES;
    /* A field's data comes in pieces, the first at offset 0: a second
     * field named "file" starts at 0 again.  Two files in one request
     * would be hashed as one, so the form is refused. */
    if (off == 0 && ++rq->file_fields > 1) {
        rq->bad_form = 2;
        return MHD_NO;
    }
    if (size == 0)
        return MHD_YES;
    return request_append(rq->server, rq, data, size) == 0 ? MHD_YES : MHD_NO;
}

/* HMA's forms: the one file, in a field named by its content type
 * ("photo", "video"), and the text fields "metadata" and "note" (at most
 * FORM_TEXT_MAX bytes each).  A second file is refused, as HMA does. */
#define FORM_TEXT_MAX (64 * 1024)

static enum MHD_Result hma_form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *filename, const char *content_type,
                                      const char *transfer_encoding, const char *data,
                                      uint64_t off, size_t size)
{
    (void)kind; (void)content_type; (void)transfer_encoding;
    request *rq = cls;
    if (key == NULL)
        return MHD_YES;
    if (filename != NULL) {
        if (off == 0 && ++rq->file_fields > 1) {
            rq->bad_form = 3;
            return MHD_NO;
        }
        if (off == 0)
            snprintf(rq->file_field, sizeof rq->file_field, "%s", key);
        if (size == 0)
            return MHD_YES;
        return request_append(rq->server, rq, data, size) == 0 ? MHD_YES : MHD_NO;
    }
    int which = strcmp(key, "metadata") == 0 ? 0 : strcmp(key, "note") == 0 ? 1 : -1;
    if (which < 0 || size == 0)
        return MHD_YES;
    size_t have = rq->form_text_len[which];
    if (have + size > FORM_TEXT_MAX) {
        rq->bad_form = 4;
        return MHD_NO;
    }
    char *grown = realloc(rq->form_text[which], have + size + 1);
    if (grown == NULL)
        return MHD_NO;
    memcpy(grown + have, data, size);
    grown[have + size] = '\0';
    rq->form_text[which] = grown;
    rq->form_text_len[which] = have + size;
    return MHD_YES;
}

/* A media body's Content-Type: NULL when fine, else why not. */
static const char *media_type_problem(struct MHD_Connection *c, request *rq)
{
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_TYPE);
    if (rq->route->takes_body == 3) {
        /* HMA's: a form, or anything else taken whole (JSON). */
        if (type && strncasecmp(type, "multipart/form-data", 19) == 0) {
            rq->form = MHD_create_post_processor(c, 64 * 1024, hma_form_field, rq);
            return rq->form ? NULL : "the multipart/form-data body has no boundary";
        }
        return NULL;
    }
    if (type == NULL || strncasecmp(type, "image/", 6) == 0 ||
        strncasecmp(type, "video/", 6) == 0 ||
        strncasecmp(type, "application/octet-stream", 24) == 0)
        return NULL;
    if (strncasecmp(type, "multipart/form-data", 19) == 0) {
        rq->form = MHD_create_post_processor(c, 64 * 1024, form_field, rq);
        return rq->form ? NULL : "the multipart/form-data body has no boundary";
    }
    return "send the media as image/*, video/*, application/octet-stream or "
           "multipart/form-data (field 'file')";
}

/* Bodies are held whole in memory (a media decoder wants the bytes, a JSON
 * parser the text), so all of them together get a budget, reserved as the
 * bytes arrive (never the declared length ahead: two requests declaring
 * 512 MiB and sending 2 bytes would take the whole budget from everyone).
 * One key's requests together, and one request, may hold at most
 * body_share (half the budget): what a client holds costs its own
 * requests, answered 429 once their body is in. */
static int body_reserve(pdqm_server *s, request *rq, size_t n)
{
    if (n > s->body_share - rq->reserved)
        return -1;
    if (rq->holder) {
        size_t mine = atomic_fetch_add(rq->holder, n);
        if (mine + n > s->body_share) {
            atomic_fetch_sub(rq->holder, n);
            return -1;
        }
    }
    size_t before = atomic_fetch_add(&s->body_memory, n);
    if (before + n > s->max_body_memory) {
        atomic_fetch_sub(&s->body_memory, n);
        if (rq->holder)
            atomic_fetch_sub(rq->holder, n);
        return -1;
    }
    rq->reserved += n;
    return 0;
}

/* 429: the body budget is spent.  Retry-After says when to try again. */
static enum MHD_Result reply_busy(struct MHD_Connection *c)
{
    char message[] = "the server holds as many request bodies as it may; retry shortly";
    char *body = error_body("too_many_requests", message);
    if (body == NULL)
        return MHD_NO;
    return send_body(c, MHD_HTTP_TOO_MANY_REQUESTS, body, "application/json", "Retry-After",
                     "1");
}

/* 429: the key's rate is spent; Retry-After says when a request will pass. */
static enum MHD_Result reply_rate_limited(struct MHD_Connection *c, const pdqm_api_key *key,
                                          double wait)
{
    char message[160], after[24];
    snprintf(message, sizeof message, "this key may make %g requests a second (bursts of %g); "
             "retry after %.3f s", key->rate, key->burst, wait);
    snprintf(after, sizeof after, "%llu", (unsigned long long)ceil(wait));
    char *body = error_body("rate_limited", message);
    if (body == NULL)
        return MHD_NO;
    return send_body(c, MHD_HTTP_TOO_MANY_REQUESTS, body, "application/json", "Retry-After",
                     after);
}

/* The server's keyring with a reference taken; NULL without keys. */
static pdqm_keyring *keyring_get(pdqm_server *s)
{
    pthread_mutex_lock(&s->keys_lock);
    pdqm_keyring *r = s->keyring;
    if (r)
        pdqm_keyring_ref(r);
    pthread_mutex_unlock(&s->keys_lock);
    return r;
}

char *pdqm_server_metrics(pdqm_server *s, int writable)
{
    pdqm_keyring *r = keyring_get(s);
    size_t w = 0, cap = pdqm_keyring_metrics_size(r) + 4096;
    char *text = malloc(cap);
    if (text != NULL) {
        pdqm_keyring_metrics(r, text, &w, cap);
        snprintf(text + w, cap - w,
                 "# HELP pdqmatch_header_deadline_closed_total Connections closed for not "
                 "sending a request head within --header-timeout.\n"
                 "# TYPE pdqmatch_header_deadline_closed_total counter\n"
                 "pdqmatch_header_deadline_closed_total %llu\n"
                 "# HELP pdqmatch_store_writable 1 while writes may be tried, 0 while the disk "
                 "is full.\n"
                 "# TYPE pdqmatch_store_writable gauge\n"
                 "pdqmatch_store_writable %d\n",
                 pdqm_deadlines_closed(s->deadlines), writable);
        w += strlen(text + w);
        if (s->cluster) {
            pdqm_cluster_state cs;
            pdqm_cluster_state_get(s->cluster, &cs);
            snprintf(text + w, cap - w,
                     "# HELP pdqmatch_cluster_applied_seq The last log entry this node's store "
                     "applied.\n"
                     "# TYPE pdqmatch_cluster_applied_seq gauge\n"
                     "pdqmatch_cluster_applied_seq %llu\n"
                     "# HELP pdqmatch_cluster_last_seq The log's last entry, as last seen.\n"
                     "# TYPE pdqmatch_cluster_last_seq gauge\n"
                     "pdqmatch_cluster_last_seq %llu\n"
                     "# HELP pdqmatch_cluster_lag_seconds How long this node has been behind "
                     "the log (0: caught up).\n"
                     "# TYPE pdqmatch_cluster_lag_seconds gauge\n"
                     "pdqmatch_cluster_lag_seconds %.3f\n"
                     "# HELP pdqmatch_cluster_apply_rate Log entries applied a second, lately.\n"
                     "# TYPE pdqmatch_cluster_apply_rate gauge\n"
                     "pdqmatch_cluster_apply_rate %.1f\n"
                     "# HELP pdqmatch_cluster_entries_applied_total Log entries applied by this "
                     "process.\n"
                     "# TYPE pdqmatch_cluster_entries_applied_total counter\n"
                     "pdqmatch_cluster_entries_applied_total %llu\n"
                     "# HELP pdqmatch_cluster_bad_entries_total Log entries that did not decode "
                     "(applied as empty).\n"
                     "# TYPE pdqmatch_cluster_bad_entries_total counter\n"
                     "pdqmatch_cluster_bad_entries_total %llu\n"
                     "# HELP pdqmatch_cluster_apply_failures_total Batches that could not be "
                     "applied and were tried again.\n"
                     "# TYPE pdqmatch_cluster_apply_failures_total counter\n"
                     "pdqmatch_cluster_apply_failures_total %llu\n"
                     "# HELP pdqmatch_cluster_connected 1 while the NATS connection is up.\n"
                     "# TYPE pdqmatch_cluster_connected gauge\n"
                     "pdqmatch_cluster_connected %d\n",
                     (unsigned long long)cs.applied, (unsigned long long)cs.last, cs.lag,
                     cs.apply_rate, (unsigned long long)cs.entries,
                     (unsigned long long)cs.bad_entries, (unsigned long long)cs.apply_failures,
                     cs.connected);
        }
    }
    pdqm_keyring_unref(r);
    return text;
}

pdqm_status pdqm_server_set_keys(pdqm_server *s, const pdqm_api_keys *keys, pdqm_error *err)
{
    if (keys == NULL || keys->count == 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a server keeps at least one API key");
    pthread_mutex_lock(&s->keys_lock);
    pdqm_keyring *old = s->keyring, *r = NULL;
    if (old != NULL)
        r = pdqm_keyring_new(keys, old);
    if (r != NULL)
        s->keyring = r;
    pthread_mutex_unlock(&s->keys_lock);
    if (old == NULL)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "the server was started without API keys: restart it with them");
    if (r == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    pdqm_keyring_unref(old);   /* freed when its last request is done */
    return PDQM_OK;
}

/* libmicrohttpd decodes %XX in the path and the query arguments; a %00
 * would end the C string there, so "/v1/banks/t%00/content/x" would reach
 * the handlers as "/v1/banks/t".  This decoder writes a decoded NUL as the
 * two bytes C0 80 (the overlong form, never valid UTF-8) so the string
 * keeps its length, and request_begin() refuses any request that holds
 * them.  Everything else is libmicrohttpd's own decoding. */
#define NUL_MARK "\xC0\x80"

static size_t unescape(void *cls, struct MHD_Connection *c, char *text)
{
    (void)cls; (void)c;
    char *w = text;
    for (const char *r = text; *r; ) {
        if (r[0] == '%' && r[1] == '0' && r[2] == '0') {
            memcpy(w, NUL_MARK, 2);
            w += 2;
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return MHD_http_unescape(text);
}

static enum MHD_Result find_nul(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    int *found = cls;
    if (strstr(key, NUL_MARK) || (value && strstr(value, NUL_MARK))) {
        *found = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result count_lengths(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind; (void)value;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        (*(int *)cls)++;
    return MHD_YES;
}

/* First call of a request: find its route, check its declared length. */
static enum MHD_Result request_begin(pdqm_server *s, struct MHD_Connection *c, const char *url,
                                     const char *method, void **con_cls)
{
    request *rq = calloc(1, sizeof *rq);
    if (rq == NULL)
        return MHD_NO;
    rq->server = s;
    rq->start = pdqm_monotonic_seconds();
    rq->matches = -1;
    *con_cls = rq;
    current = rq;
    pdqm_deadlines_head_in(c);
    snprintf(rq->method, sizeof rq->method, "%s", method);
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (given && request_id_ok(given))
        memcpy(rq->id, given, strlen(given) + 1);
    else
        request_id_make(s, rq->id);
    int nul = strstr(url, NUL_MARK) != NULL;
    if (!nul)
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, find_nul, &nul);
    if (nul)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "a NUL byte (%%00) in the path or a parameter");
    int path_known = 0;
    /* "//c/banks" is "/c/banks" (clients that join a base URL ending in
     * '/' to a path, as HMA's own Flask server takes them). */
    while (url[0] == '/' && url[1] == '/')
        url++;
    for (size_t i = 0; i < s->n_routes && rq->route == NULL; i++) {
        request probe = { 0 };
        int m = route_match(s->routes[i].pattern, url, &probe);
        if (m < 0)
            return MHD_NO;
        if (m == 0)
            continue;
        path_known = 1;
        if (strcmp(method, s->routes[i].method) == 0) {
            rq->route = &s->routes[i];
            rq->path_copy = probe.path_copy;
            rq->param[0] = probe.param[0];
            rq->param[1] = probe.param[1];
        } else {
            free(probe.path_copy);
        }
    }
    if (rq->route == NULL && path_known)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                           "%s is not allowed on %s", method, url);
    if (rq->route == NULL)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no route %s", url);

    if (s->keyring && rq->route->role != PDQM_ROLE_NONE) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION);
        /* The scheme is case-insensitive (RFC 9110, 11.1); spaces follow. */
        if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
            return reply_error(c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                               "send an API key: 'Authorization: Bearer KEY'");
        const char *token = auth + 7;
        while (*token == ' ')
            token++;
        pdqm_keyring *r = rq->keyring = keyring_get(s);
        size_t key = r->keys.count;
        pdqm_role role = pdqm_api_keys_match(&r->keys, token, &key);
        if (key < r->keys.count) {
            const pdqm_api_key *k = &r->keys.keys[key];
            snprintf(rq->key_name, sizeof rq->key_name, "%s", k->name);
            rq->holder = &r->held[key];
            double wait = pdqm_keyring_take(r, key);
            if (wait > 0)
                return reply_rate_limited(c, k, wait);
        }
        if (role == PDQM_ROLE_NONE)
            return reply_error(c, MHD_HTTP_UNAUTHORIZED, "unauthorized", "unknown API key");
        rq->role = role;
        if (role < rq->route->role)
            return reply_error(c, MHD_HTTP_FORBIDDEN, "forbidden",
                               "%s %s needs the %s role", method, url,
                               rq->route->role == PDQM_ROLE_ADMIN ? "admin" : "write");
    }
    /* Two lengths (libmicrohttpd takes the first) would let a proxy and
     * this server read different bodies: request smuggling. */
    int lengths = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_lengths, &lengths);
    if (lengths > 1)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "more than one Content-Length header");
    const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length != NULL && strcmp(length, "0") != 0) {
        if (!rq->route->takes_body)
            return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                               "%s %s takes no body", method, rq->route->pattern);
        char *end;
        errno = 0;
        unsigned long long n = strtoull(length, &end, 10);
        if (errno != 0 || *end != '\0' || length[0] < '0' || length[0] > '9')
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                               "Content-Length is a number of bytes, not '%s'", length);
        if (n > body_limit(s, rq))
            return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                               "the body is %llu bytes, over the limit of %zu", n,
                               body_limit(s, rq));
        if (n > s->body_share)
            return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                               "the body is %llu bytes, over the %zu one client may hold at "
                               "once (half of --max-body-memory)", n, s->body_share);
    }
    if (rq->route->takes_body >= 2) {
        const char *why = media_type_problem(c, rq);
        if (why)
            return reply_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                               "%s", why);
    }
    return MHD_YES;
}

/* Keep a piece of the body, up to the limit. */
static int request_append(pdqm_server *s, request *rq, const char *data, size_t n)
{
    if (rq->too_large || rq->too_busy || n > body_limit(s, rq) - rq->size) {
        rq->too_large = !rq->too_busy;
        return 0;
    }
    if (rq->size + n > rq->reserved && body_reserve(s, rq, rq->size + n - rq->reserved) != 0) {
        rq->too_busy = 1;   /* a body of no declared length, past the budget */
        return 0;
    }
    if (rq->size + n + 1 > rq->cap) {
        size_t cap = rq->cap ? rq->cap : 4096;
        while (cap < rq->size + n + 1)
            cap *= 2;
        char *b = realloc(rq->body, cap);
        if (b == NULL)
            return -1;
        rq->body = b;
        rq->cap = cap;
    }
    memcpy(rq->body + rq->size, data, n);
    rq->size += n;
    rq->body[rq->size] = '\0';
    return 0;
}

void pdqm_route_path(const struct route *r, char *out, size_t size)
{
    size_t w = 0;
    int stars = 0;
    for (const char *p = r->pattern; *p && w + 1 < size; p++) {
        const char *name = NULL;
        if (p[0] == '*' && p[1] == '*') {
            name = "{content_id}";
            p++;
        } else if (*p == '*') {
            name = stars++ ? "{id}" : "{name}";
        }
        if (name) {
            int n = snprintf(out + w, size - w, "%s", name);
            w += (size_t)n < size - w ? (size_t)n : size - w - 1;
        } else {
            out[w++] = *p;
        }
    }
    out[w] = '\0';
}

/* Count a request that was just answered (if it was). */
static void request_count(pdqm_server *s, request *rq)
{
    if (replied_status == 0 || rq == NULL)
        return;
    size_t route = rq->route ? (size_t)(rq->route - s->routes) : s->n_routes;
    pdqm_metrics_request(s->metrics, route, replied_status, pdqm_monotonic_seconds() - rq->start);
    if (atomic_load(&s->disk_full) && replied_status < 500 && pdqm_store_writable(s->store) &&
        atomic_exchange(&s->disk_full, 0))
        PDQM_LOG(s->log, PDQM_LOG_INFO, "disk space is back", PDQM_LOG_S("request_id", rq->id),
                 PDQM_LOG_S("effect", "writes go on"));
}

/* ------------------------------------------------------------------ */
/* The write pool                                                       */

/* A request that writes may wait for the store's writer: a group commit's
 * fsync, another process's write, a step of a pass in a large store.
 * Run in a request thread, it would hold that thread meanwhile, and every
 * connection the thread serves (lookups too) would wait with it; with one
 * request thread a core, two such writes stalled every lookup.  So writes
 * run in a pool of threads of their own: the request thread suspends the
 * connection and goes on with the others; the pool runs the route, keeps
 * its reply, and resumes the connection; the request thread then queues
 * the reply.  Stopping closes the pool first (writes then run in the
 * request thread), after the writes queued have run. */
#define POOL_PER_CORE 4

static void *pool_main(void *arg)
{
    pdqm_server *s = arg;
    pthread_mutex_lock(&s->pool_lock);
    for (;;) {
        while (s->pool_head == NULL && !s->pool_closed)
            pthread_cond_wait(&s->pool_more, &s->pool_lock);
        request *rq = s->pool_head;
        if (rq == NULL)
            break;   /* closed, and nothing left */
        s->pool_head = rq->next_job;
        if (s->pool_head == NULL)
            s->pool_tail = NULL;
        s->pool_busy++;
        pthread_mutex_unlock(&s->pool_lock);

        current = capturing = rq;
        rq->pool_result = rq->route->fn(s, rq->conn, rq);
        current = capturing = NULL;
        rq->pooled = 2;
        MHD_resume_connection(rq->conn);

        pthread_mutex_lock(&s->pool_lock);
        s->pool_busy--;
        if (s->pool_head == NULL && s->pool_busy == 0)
            pthread_cond_broadcast(&s->pool_idle);
    }
    pthread_mutex_unlock(&s->pool_lock);
    return NULL;
}

/* Hand rq to the pool, its connection suspended: 1, or 0 when the pool is
 * closed (or was never started): run it here. */
static int pool_push(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pthread_mutex_lock(&s->pool_lock);
    if (s->pool_closed || s->pool_n == 0) {
        pthread_mutex_unlock(&s->pool_lock);
        return 0;
    }
    rq->conn = c;
    rq->pooled = 1;
    rq->next_job = NULL;
    MHD_suspend_connection(c);
    if (s->pool_tail)
        s->pool_tail->next_job = rq;
    else
        s->pool_head = rq;
    s->pool_tail = rq;
    pthread_cond_signal(&s->pool_more);
    pthread_mutex_unlock(&s->pool_lock);
    return 1;
}

static void pool_start(pdqm_server *s, unsigned n)
{
    s->pool_threads = calloc(n, sizeof *s->pool_threads);
    for (unsigned i = 0; s->pool_threads && i < n; i++) {
        if (pthread_create(&s->pool_threads[i], NULL, pool_main, s) != 0)
            break;
        s->pool_n++;
    }
}

/* Run what is queued, then end the pool's threads. */
static void pool_stop(pdqm_server *s)
{
    pthread_mutex_lock(&s->pool_lock);
    s->pool_closed = 1;
    pthread_cond_broadcast(&s->pool_more);
    while (s->pool_head != NULL || s->pool_busy > 0)
        pthread_cond_wait(&s->pool_idle, &s->pool_lock);
    pthread_mutex_unlock(&s->pool_lock);
    for (unsigned i = 0; i < s->pool_n; i++)
        pthread_join(s->pool_threads[i], NULL);
    s->pool_n = 0;
}

/* A later call of a request: a piece of its body, or its end. */
static enum MHD_Result handle_more(pdqm_server *s, struct MHD_Connection *c, request *rq,
                                   const char *upload_data, size_t *upload_data_size)
{
    if (rq->pooled == 2) {   /* the pool ran it: its reply */
        enum MHD_Result r = rq->pool_result;
        if (rq->reply) {
            r = MHD_queue_response(c, rq->reply_status, rq->reply);
            MHD_destroy_response(rq->reply);
            rq->reply = NULL;
        }
        rq->pooled = 3;
        replied_status = rq->reply_status;
        request_count(s, rq);
        return r;
    }
    if (rq->pooled)
        return MHD_YES;   /* (a call while suspended: none is made) */
    if (*upload_data_size != 0) {
        rq->bytes_in += *upload_data_size;
        if (pdqm_monotonic_seconds() - rq->start > s->timeout) {
            /* A client that sends its body too slowly (slowloris) holds a
             * connection and memory: the deadline ends it.  libmicrohttpd
             * (0.9.75) cannot send a reply before the body is read, so
             * the connection is closed without one. */
            rq->timed_out = 1;
            return MHD_NO;
        }
        if (!rq->route->takes_body)
            rq->too_large = 1;
        else if (rq->form) {
            /* A form the parser gives up on (nested parts it cannot follow,
             * a broken boundary) is answered 400 once the body is in. */
            if (!rq->bad_form &&
                MHD_post_process(rq->form, upload_data, *upload_data_size) != MHD_YES &&
                !rq->too_large && !rq->too_busy && !rq->bad_form)
                rq->bad_form = 1;   /* (form_field() sets 2 for a second file) */
        } else if (request_append(s, rq, upload_data, *upload_data_size) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rq->bad_form && !rq->too_large && !rq->too_busy) {
        enum MHD_Result r = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                        rq->bad_form == 2
                                            ? "the form has more than one field 'file': send "
                                              "one file a request"
                                        : rq->bad_form == 3 ? "Only one file allowed per request"
                                        : rq->bad_form == 4 ? "a form field is over 64 KiB"
                                            : "the multipart/form-data body is malformed");
        request_count(s, rq);
        return r;
    }
    if (rq->too_busy) {
        enum MHD_Result r = reply_busy(c);
        request_count(s, rq);
        return r;
    }
    if (rq->too_large)
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                           rq->route->takes_body ? "the body is over the limit of %zu bytes"
                                                 : "this route takes no body (limit %zu)",
                           rq->route->takes_body ? body_limit(s, rq) : (size_t)0);
    /* Read your writes on any node: wait (bounded) until this node has
     * applied the log as far as the client says. */
    const char *min_seq = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Pdqmatch-Min-Seq");
    if (min_seq) {
        char *end;
        errno = 0;
        unsigned long long want = strtoull(min_seq, &end, 10);
        if (errno || *end || min_seq[0] < '0' || min_seq[0] > '9') {
            enum MHD_Result r = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                            "X-Pdqmatch-Min-Seq is a log sequence number");
            request_count(s, rq);
            return r;
        }
        pdqm_error err;
        if (want > 0 && s->cluster &&
            pdqm_cluster_wait(s->cluster, want, s->min_seq_wait, NULL, &err) != PDQM_OK) {
            enum MHD_Result r = reply_status(c, err.status, &err);
            request_count(s, rq);
            return r;
        }
    }
    if (rq->route->role >= PDQM_ROLE_WRITE && pool_push(s, c, rq))
        return MHD_YES;   /* resumed once the pool has run it */
    enum MHD_Result r = rq->route->fn(s, c, rq);
    request_count(s, rq);
    return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    pdqm_server *s = cls;
    replied_status = 0;
    if (*con_cls == NULL) {
        enum MHD_Result r = request_begin(s, c, url, method, con_cls);
        request_count(s, *con_cls);
        current = NULL;
        return r;
    }
    request *rq = *con_cls;
    current = rq;
    enum MHD_Result r = handle_more(s, c, rq, upload_data, upload_data_size);
    current = NULL;
    return r;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                       */

static void server_free(pdqm_server *s)
{
    pdqm_deadlines_stop(s->deadlines);
    pdqm_metrics_free(s->metrics);
    free(s->route_names);
    free(s->route_labels);
    free(s->route_paths);
    free((struct route *)s->routes);
    pdqm_keyring_unref(s->keyring);
    pthread_mutex_destroy(&s->keys_lock);
    pthread_mutex_destroy(&s->media_lock);
    pthread_cond_destroy(&s->media_free);
    pool_stop(s);
    free(s->pool_threads);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_cond_destroy(&s->pool_more);
    pthread_cond_destroy(&s->pool_idle);
    free(s);
}

void pdqm_media_enter(pdqm_server *s)
{
    pthread_mutex_lock(&s->media_lock);
    while (s->media_busy >= s->media_max)
        pthread_cond_wait(&s->media_free, &s->media_lock);
    s->media_busy++;
    pthread_mutex_unlock(&s->media_lock);
}

void pdqm_media_leave(pdqm_server *s)
{
    pthread_mutex_lock(&s->media_lock);
    s->media_busy--;
    pthread_cond_signal(&s->media_free);
    pthread_mutex_unlock(&s->media_lock);
}

pdqm_status pdqm_server_start(pdqm_store *store, const pdqm_server_options *o,
                              pdqm_server **out, pdqm_error *err)
{
    *out = NULL;
    pdqm_server_options defaults;
    if (o == NULL) {
        pdqm_server_options_default(&defaults);
        o = &defaults;
    }
    pdqm_status loaded = pdqm_mhd_load(err);
    if (loaded != PDQM_OK)
        return loaded;
    const char *colon = strrchr(o->listen, ':');
    char host[64];
    if (colon == NULL || (size_t)(colon - o->listen) >= sizeof host)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "listen on HOST:PORT, not '%s'", o->listen);
    memcpy(host, o->listen, (size_t)(colon - o->listen));
    host[colon - o->listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535 ||
        inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "listen on IPV4:PORT (such as 127.0.0.1:8080), not '%s'", o->listen);
    addr.sin_port = htons((uint16_t)port);
    if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127 && o->keys == NULL)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "without API keys pdqmatch listens on loopback only, not on %s", host);

    pdqm_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    s->store = store;
    s->cluster = o->cluster;
    s->fetcher = o->fetcher;
    s->scheduler = o->scheduler;
    s->writer = (pdqm_writer){ store, o->cluster };
    s->max_lag = o->max_lag > 0 ? o->max_lag : 1;
    s->min_seq_wait = o->min_seq_wait > 0 ? o->min_seq_wait : 5;
    pthread_mutex_init(&s->keys_lock, NULL);
    pthread_mutex_init(&s->media_lock, NULL);
    pthread_cond_init(&s->media_free, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_cond_init(&s->pool_more, NULL);
    pthread_cond_init(&s->pool_idle, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->media_max = cores > 0 ? (unsigned)cores : 1;
    if (o->keys && (s->keyring = pdqm_keyring_new(o->keys, NULL)) == NULL) {
        server_free(s);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    s->log = o->log;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s->id_seed = (uint64_t)now.tv_sec * 1000000007ull ^ (uint64_t)now.tv_nsec ^
                 (uint64_t)getpid() << 40;
    /* One table of routes: pdqmatch's, then HMA's and the console's when
     * asked for. */
    size_t n_hma = o->hma ? pdqm_hma_n_routes : 0;
    size_t n_console = o->console ? pdqm_console_n_routes : 0;
    size_t n_routes = pdqm_n_routes + n_hma + n_console;
    struct route *routes = calloc(n_routes, sizeof *routes);
    if (routes) {
        memcpy(routes, pdqm_routes, pdqm_n_routes * sizeof *routes);
        memcpy(routes + pdqm_n_routes, pdqm_hma_routes, n_hma * sizeof *routes);
        memcpy(routes + pdqm_n_routes + n_hma, pdqm_console_routes, n_console * sizeof *routes);
    }
    s->routes = routes;
    s->n_routes = routes ? n_routes : 0;
    s->route_names = calloc(n_routes, sizeof *s->route_names);
    s->route_labels = calloc(n_routes, sizeof *s->route_labels);
    s->route_paths = calloc(n_routes, sizeof *s->route_paths);
    s->deadlines = pdqm_deadlines_start(o->header_timeout_seconds ? o->header_timeout_seconds
                                                                  : 10);
    if (routes && s->route_names && s->route_labels && s->route_paths &&
        s->deadlines) {
        for (size_t i = 0; i < n_routes; i++) {
            pdqm_route_path(&routes[i], s->route_paths[i], sizeof s->route_paths[i]);
            snprintf(s->route_names[i], sizeof s->route_names[i], "%s %s",
                     routes[i].method, s->route_paths[i]);
            s->route_labels[i] = s->route_names[i];
        }
        s->metrics = pdqm_metrics_new(s->route_labels, n_routes);
    }
    if (s->metrics == NULL) {
        server_free(s);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    s->max_body = o->max_body ? o->max_body : ((size_t)64 << 20);
    s->max_body_memory = o->max_body_memory ? o->max_body_memory : ((size_t)1 << 30);
    s->body_share = s->max_body_memory / 2 ? s->max_body_memory / 2 : 1;
    s->timeout = o->timeout_seconds ? o->timeout_seconds : 30;
    s->image_limits = o->image_limits;
    s->video_limits = o->video_limits;
    s->max_media_body = o->image_limits.max_bytes > o->video_limits.max_bytes
                            ? o->image_limits.max_bytes : o->video_limits.max_bytes;
    /* One request thread a core (more would time-slice the lookups, which
     * are CPU work: at 1M hashes, four a core doubled the p99 under load);
     * writes run in the write pool, so that none holds a request thread
     * while it waits for the store's writer.  Media decoding takes a turn,
     * one a core, whatever --threads says (pdqm_media_enter). */
    unsigned threads = o->threads ? o->threads : s->media_max;
    struct MHD_OptionItem tls[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert_pem },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key_pem },
        { MHD_OPTION_END, 0, NULL },
    };
    int use_tls = o->tls_cert_pem != NULL && o->tls_key_pem != NULL;
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
                                 MHD_ALLOW_SUSPEND_RESUME | (use_tls ? MHD_USE_TLS : 0), 0,
                                 NULL, NULL, handle, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                 o->max_connections_per_ip ? o->max_connections_per_ip : 64,
                                 MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_seconds,
                                 MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, pdqm_deadlines_notify,
                                 s->deadlines,
                                 MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                                 MHD_OPTION_ARRAY, use_tls ? tls : tls + 2,
                                 MHD_OPTION_END);
    if (s->daemon == NULL) {
        int e = errno;
        server_free(s);
        if (use_tls)
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "cannot serve TLS on %s: check the certificate and key "
                                  "(PEM)%s%s", o->listen, e ? ", or: " : "", e ? strerror(e) : "");
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot listen on %s: %s", o->listen,
                              e ? strerror(e) : "libmicrohttpd failed to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (unsigned)port;
    pool_start(s, POOL_PER_CORE * s->media_max);   /* (none started: writes run here) */
    *out = s;
    return PDQM_OK;
}

unsigned pdqm_server_port(const pdqm_server *s)
{
    return s->port;
}

void pdqm_server_stop(pdqm_server *s)
{
    if (s == NULL)
        return;
    /* Stop accepting first; MHD_stop_daemon then lets the requests in
     * flight finish. */
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    pool_stop(s);   /* (no connection stays suspended) */
    MHD_stop_daemon(s->daemon);
    /* The listening socket is closed only now: libmicrohttpd's threads take
     * it out of their epoll sets some time after the quiesce, and one that
     * found it closed aborted the process ("Failed to remove listen FD from
     * epoll set"; with suspend and resume, the quiesce hands the socket
     * back in this mode). */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    server_free(s);
}
