/*
 * fuzz_http.c - raw HTTP bytes to a whole server in this process: request
 * lines, headers, bodies of every route (JSON, media, multipart forms),
 * with the store behind it.  The first input byte picks how the rest is
 * sent:
 *   0..127    the rest is the whole request, as is;
 *   128..255  the rest is the body of route (byte - 128) % routes (of
 *             pdqmatch's API and HMA's), sent with a valid request line and
 *             headers, as JSON, as a multipart form (field "file"), as raw
 *             media, or as HMA's form (a file field "photo"), by turns.
 * The server must answer (or close) every request and stay up.
 *
 * libmicrohttpd keeps a half-closed connection open until its timeout, so
 * every request ends with "Connection: close": a raw input is followed by
 * a request that says so, which the server reaches once it has done with
 * the input.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../hashing/image.h"
#include "../../index/store.h"
#include "../../server/server.h"

static pdqm_server *server;
static unsigned port;

static void start(void)
{
    char dir[] = "/tmp/pdqm-fuzz-http-XXXXXX";
    char path[64];
    pdqm_error err;
    pdqm_store *store;
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof path, "%s/s.db", dir);
    if (pdqm_image_init(&err) != PDQM_OK ||
        pdqm_store_open(path, PDQM_STORE_CREATE, &store, &err) != PDQM_OK ||
        pdqm_store_bank_create(store, "b", 31, PDQM_BANK_BLOCK, &err) != PDQM_OK ||
        pdqm_store_bank_create(store, "B", 31, PDQM_BANK_BLOCK, &err) != PDQM_OK) {
        fprintf(stderr, "fuzz_http: %s\n", pdqm_error_message(&err));
        abort();
    }
    pdqm_server_options o;
    pdqm_server_options_default(&o);
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    o.timeout_seconds = 2;
    o.max_body = 1 << 20;
    o.image_limits.max_bytes = 1 << 20;
    o.image_limits.max_pixels = 4000000;
    o.image_limits.max_seconds = 5;
    o.video_limits.max_bytes = 1 << 20;
    o.video_limits.max_frames = 64;
    o.video_limits.max_wall_seconds = 5;
    o.hma = 1;   /* HMA's routes too (no URL fetching: no host allowed) */
    if (pdqm_server_start(store, &o, &server, &err) != PDQM_OK) {
        fprintf(stderr, "fuzz_http: %s\n", pdqm_error_message(&err));
        abort();
    }
    port = pdqm_server_port(server);
}

/* The routes, with parameters filled in. */
static const struct { const char *method, *path; } routes[] = {
    { "GET", "/healthz" }, { "GET", "/readyz" }, { "GET", "/metrics" },
    { "GET", "/openapi.json" }, { "GET", "/v1/stats" },
    { "GET", "/v1/lookup?hash=d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22" },
    { "POST", "/v1/lookup" }, { "POST", "/v1/hash" }, { "POST", "/v1/lookup/media" },
    { "GET", "/v1/banks" }, { "POST", "/v1/banks" }, { "GET", "/v1/banks/b" },
    { "PATCH", "/v1/banks/b" }, { "POST", "/v1/banks/b/hashes" },
    { "POST", "/v1/banks/b/media?content_id=f" }, { "GET", "/v1/banks/b/content?limit=3" },
    { "GET", "/v1/banks/b/content/x" }, { "DELETE", "/v1/banks/b/content/x" },
    { "PATCH", "/v1/banks/b/content/x" },
    { "GET", "/m/raw_lookup?signal_type=pdq&include_distance=true&signal="
             "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22" },
    { "GET", "/m/lookup?signal_type=vpdq&signal=%5B%5D" }, { "POST", "/m/lookup" },
    { "POST", "/m/compare" }, { "POST", "/h/hash" }, { "POST", "/c/banks" },
    { "PUT", "/c/bank/B" }, { "POST", "/c/bank/B/content" }, { "POST", "/c/bank/B/signal" },
    { "PUT", "/c/bank/B/content/0" }, { "GET", "/c/bank/B/content/0?include_signals=true" },
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

static void exchange(const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* An incomplete request holds the connection until the server's
     * timeout: give up on the reply sooner (it is not a failure). */
    struct timeval tv = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* Closed with a reset, so that no TIME_WAIT socket holds a local port:
     * a long run makes millions of connections. */
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int tries = 0;
    while (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if ((errno != EADDRNOTAVAIL && errno != EAGAIN && errno != EINTR) || ++tries > 100) {
            fprintf(stderr, "fuzz_http: cannot connect: %s\n", strerror(errno));
            abort();   /* the server is gone */
        }
        usleep(10000);
    }
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;   /* the server may answer and close early */
        sent += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    char buf[65536];
    while (recv(fd, buf, sizeof buf, 0) > 0)
        ;
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (server == NULL)
        start();
    if (size == 0)
        return 0;
    if (data[0] < 128) {
        static const char closing[] = "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n\r\n";
        char *req = malloc(size - 1 + sizeof closing);
        if (req == NULL)
            return 0;
        memcpy(req, data + 1, size - 1);
        memcpy(req + size - 1, closing, sizeof closing - 1);
        exchange(req, size - 1 + sizeof closing - 1);
        free(req);
        return 0;
    }
    unsigned pick = (unsigned)(data[0] - 128);
    const char *method = routes[pick % N_ROUTES].method;
    const char *path = routes[pick % N_ROUTES].path;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    static const char boundary[] = "pdqmfuzz";
    char head[512];
    int h;
    size_t extra = 0;
    /* The form's file field: "file" (pdqmatch's), or HMA's content type. */
    const char *field = (pick / N_ROUTES) % 4 == 3 ? "photo\"; filename=\"a.jpg" : "file";
    switch ((pick / N_ROUTES) % 4) {
    case 0:
        h = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     method, path, n);
        break;
    case 1:
    case 3:
        extra = 2 * sizeof boundary + 64;
        h = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: multipart/form-data; boundary=%s\r\n"
                     "Content-Length: %zu\r\n\r\n--%s\r\n"
                     "Content-Disposition: form-data; name=\"%s\"\r\n\r\n",
                     method, path, boundary,
                     n + strlen("--") + strlen(boundary) + strlen("\r\n")
                       + strlen("Content-Disposition: form-data; name=\"\"\r\n\r\n")
                       + strlen(field)
                       + strlen("\r\n--") + strlen(boundary) + strlen("--\r\n"),
                     boundary, field);
        break;
    default:
        h = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: image/png\r\nContent-Length: %zu\r\n\r\n",
                     method, path, n);
        break;
    }
    if (h < 0 || (size_t)h >= sizeof head)
        return 0;
    char *req = malloc((size_t)h + n + extra + 1);
    if (req == NULL)
        return 0;
    memcpy(req, head, (size_t)h);
    memcpy(req + h, body, n);
    size_t len = (size_t)h + n;
    if (extra) {
        int t = snprintf(req + len, extra + 1, "\r\n--%s--\r\n", boundary);
        len += (size_t)t;
    }
    exchange(req, len);
    free(req);
    return 0;
}
