/*
 * server.c - libmicrohttpd glue, the route table, and JSON replies.
 *
 * One reply family: reply_json() for successes and reply_error() for every
 * failure, so each error has the same JSON shape, a stable code and no
 * line breaks in its message.
 */
#define _POSIX_C_SOURCE 200809L
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../hashing/hash256.h"

struct pdqm_server {
    struct MHD_Daemon *daemon;
    pdqm_store *store;
    unsigned port;
};

void pdqm_server_options_default(pdqm_server_options *o)
{
    o->listen = "127.0.0.1:8080";
    o->threads = 0;
    o->max_connections = 1024;
    o->timeout_seconds = 30;
    o->allow_public = 0;
}

/* ------------------------------------------------------------------ */
/* Replies                                                              */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
                                                             MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Reply with j (consumed). */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (body == NULL)
        return MHD_NO;
    return reply_text(c, status, body);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    for (char *p = message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    json_t *j = json_pack("{s:{s:s,s:s%}}", "error", "code", code, "message", message,
                          strlen(message));
    if (j == NULL)   /* a message that is not UTF-8: keep the code */
        j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", "invalid request");
    return reply_json(c, status, j);
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
    default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

static enum MHD_Result reply_status(struct MHD_Connection *c, pdqm_status st, const pdqm_error *err)
{
    return reply_error(c, status_of(st), pdqm_status_token(st), "%s", pdqm_error_message(err));
}

/* ------------------------------------------------------------------ */
/* Routes                                                               */

static enum MHD_Result get_healthz(pdqm_server *s, struct MHD_Connection *c)
{
    (void)s;
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result get_readyz(pdqm_server *s, struct MHD_Connection *c)
{
    pdqm_store_stats st;
    pdqm_error err;
    if (pdqm_store_stats_get(s->store, &st, &err) != PDQM_OK)
        return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready", "%s",
                           pdqm_error_message(&err));
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:s,s:I}", "status", "ready", "hashes",
                                                (json_int_t)st.hashes));
}

/* Split "a,b" into at most 64 names in buf (modified); count in *n. */
static int split_banks(char *buf, const char **names, size_t *n)
{
    *n = 0;
    for (char *p = strtok(buf, ","); p; p = strtok(NULL, ",")) {
        if (*n == 64)
            return -1;
        names[(*n)++] = p;
    }
    return 0;
}

static json_t *match_json(const pdqm_match *m)
{
    char hex[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&m->hash, hex);
    json_t *meta = m->metadata ? json_loads(m->metadata, JSON_DECODE_ANY, NULL) : NULL;
    json_t *cid = json_string(m->content_id);
    return json_pack("{s:s,s:i,s:s,s:o,s:i,s:o}", "hash", hex, "distance", m->distance,
                     "bank", m->bank, "content_id", cid ? cid : json_string(""),
                     "quality", m->quality, "metadata", meta ? meta : json_null());
}

static enum MHD_Result get_lookup(pdqm_server *s, struct MHD_Connection *c)
{
    const char *hex = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hash");
    const char *dist = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "max_distance");
    const char *banks = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "banks");
    if (hex == NULL)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "the 'hash' parameter is required");
    pdqm_hash256 h;
    pdqm_error err;
    if (pdqm_hash256_from_hex(hex, strlen(hex), &h, &err) != PDQM_OK)
        return reply_status(c, PDQM_ERR_INVALID, &err);
    pdqm_lookup_options o = { -1, NULL, 0 };
    if (dist) {
        char *end;
        long d = strtol(dist, &end, 10);
        if (*dist == '\0' || *end != '\0' || d < 0 || d > PDQM_MAX_DISTANCE)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                               "max_distance is a number from 0 to 256");
        o.max_distance = (int)d;
    }
    char bank_buf[4096];
    const char *names[64];
    if (banks) {
        if (strlen(banks) >= sizeof bank_buf)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "banks is too long");
        strcpy(bank_buf, banks);
        if (split_banks(bank_buf, names, &o.n_banks) != 0)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "at most 64 banks");
        o.banks = names;
    }
    pdqm_matches m;
    pdqm_status st = pdqm_store_lookup(s->store, &h, 1, &o, &m, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    json_t *arr = json_array();
    for (size_t i = 0; i < m.count; i++)
        json_array_append_new(arr, match_json(&m.items[i]));
    pdqm_matches_free(&m);
    char lower[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&h, lower);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:s,s:o}", "query", lower, "matches", arr));
}

typedef enum MHD_Result (*route_fn)(pdqm_server *s, struct MHD_Connection *c);

static const struct route {
    const char *method;
    const char *path;
    route_fn fn;
} routes[] = {
    { "GET", "/healthz", get_healthz },
    { "GET", "/readyz", get_readyz },
    { "GET", "/v1/lookup", get_lookup },
};

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version; (void)upload_data;
    pdqm_server *s = cls;
    /* No route here takes a body yet: refuse one rather than read it. */
    if (*upload_data_size != 0 || (*con_cls == NULL && MHD_lookup_connection_value(
            c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) != NULL &&
            strcmp(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH), "0") != 0)) {
        *upload_data_size = 0;
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "this route takes no body");
    }
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path) != 0)
            continue;
        path_known = 1;
        if (strcmp(method, routes[i].method) == 0)
            return routes[i].fn(s, c);
    }
    if (path_known)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                           "%s is not allowed on %s", method, url);
    return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no route %s", url);
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                       */

pdqm_status pdqm_server_start(pdqm_store *store, const pdqm_server_options *o,
                              pdqm_server **out, pdqm_error *err)
{
    *out = NULL;
    pdqm_server_options defaults;
    if (o == NULL) {
        pdqm_server_options_default(&defaults);
        o = &defaults;
    }
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
    if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127 && !o->allow_public)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "without API keys pdqmatch listens on loopback only, not on %s", host);

    pdqm_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    s->store = store;
    unsigned threads = o->threads ? o->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY, 0,
                                 NULL, NULL, handle, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, o->timeout_seconds,
                                 MHD_OPTION_END);
    if (s->daemon == NULL) {
        int e = errno;
        free(s);
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot listen on %s: %s", o->listen,
                              e ? strerror(e) : "libmicrohttpd failed to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (unsigned)port;
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
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    MHD_stop_daemon(s->daemon);
    free(s);
}
