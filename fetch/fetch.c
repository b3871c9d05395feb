/*
 * fetch.c - fetching by URL on libcurl, under the rules of fetch.h.
 *
 * Each hop (the URL, then each same-host redirect) is: parse with curl's
 * own URL parser (the host curl would connect to is the host checked),
 * check the host against the allowed ones, resolve it and check every
 * address, then let curl connect to the checked address alone
 * (CURLOPT_RESOLVE), with redirects, proxies and other protocols off.
 */
#define _POSIX_C_SOURCE 200809L
#include "fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include "curl_lazy.h"
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

struct pdqm_fetcher {
    pdqm_fetch_options o;
    char **hosts;              /* lower case; addresses in their canonical form */
    size_t n_hosts;
};

void pdqm_fetch_options_default(pdqm_fetch_options *o)
{
    o->allow_hosts = NULL;
    o->max_bytes = (size_t)100 << 20;
    o->timeout = 30;
    o->max_redirects = 5;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status;

static void curl_init(void)
{
    curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------------ */
/* Addresses                                                            */

static int in_v4(const uint8_t *a, uint32_t net, int bits)
{
    uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    uint32_t mask = bits ? ~(uint32_t)0 << (32 - bits) : 0;
    return (v & mask) == (net & mask);
}

static int blocked_v4(const uint8_t *a)
{
    static const struct { uint32_t net; int bits; } ranges[] = {
        { 0x00000000, 8 },    /* "this" network, 0.0.0.0 */
        { 0x0a000000, 8 },    /* private */
        { 0x64400000, 10 },   /* carrier-grade NAT (and 100.100.100.200, a metadata service) */
        { 0x7f000000, 8 },    /* loopback */
        { 0xa9fe0000, 16 },   /* link-local: 169.254.169.254, cloud metadata */
        { 0xac100000, 12 },   /* private */
        { 0xc0000000, 24 },   /* IETF protocol assignments */
        { 0xc0000200, 24 },   /* documentation */
        { 0xc0586300, 24 },   /* 6to4 relay anycast */
        { 0xc0a80000, 16 },   /* private */
        { 0xc6120000, 15 },   /* benchmarking */
        { 0xc6336400, 24 },   /* documentation */
        { 0xcb007100, 24 },   /* documentation */
        { 0xe0000000, 4 },    /* multicast */
        { 0xf0000000, 4 },    /* reserved, and the broadcast address */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (in_v4(a, ranges[i].net, ranges[i].bits))
            return 1;
    return 0;
}

int pdqm_fetch_address_blocked(int family, const uint8_t *addr)
{
    if (family == AF_INET)
        return blocked_v4(addr);
    if (family != AF_INET6)
        return 1;
    static const uint8_t zero[16];
    /* ::ffff:a.b.c.d and the deprecated ::a.b.c.d: as IPv4. */
    if (memcmp(addr, zero, 10) == 0 &&
        ((addr[10] == 0xff && addr[11] == 0xff) || (addr[10] == 0 && addr[11] == 0)))
        return memcmp(addr, zero, 16) == 0 || blocked_v4(addr + 12) ||
               (addr[10] == 0 && addr[11] == 0);
    if (addr[0] == 0x00 && addr[1] == 0x64 && addr[2] == 0xff && addr[3] == 0x9b)
        return blocked_v4(addr + 12);                  /* 64:ff9b::/96, NAT64 */
    if (addr[0] == 0x20 && addr[1] == 0x02)            /* 2002::/16, 6to4 */
        return blocked_v4(addr + 2);
    return (addr[0] & 0xfe) == 0xfc ||                 /* fc00::/7, unique local */
           (addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80) ||   /* fe80::/10, link-local */
           (addr[0] == 0xfe && (addr[1] & 0xc0) == 0xc0) ||   /* fec0::/10, site-local */
           addr[0] == 0xff ||                          /* multicast */
           (addr[0] == 0x20 && addr[1] == 0x01 && addr[2] == 0x0d && addr[3] == 0xb8) ||
           (addr[0] == 0x01 && addr[1] == 0x00 && memcmp(addr + 2, zero, 6) == 0);   /* discard */
}

/* An address literal in its canonical text (brackets off); 0, or -1 when
 * text is not one. */
static int canonical_address(const char *text, char *out, size_t cap, int *family,
                             uint8_t raw[16])
{
    char buf[64];
    size_t n = strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        if (n - 2 >= sizeof buf)
            return -1;
        memcpy(buf, text + 1, n - 2);
        buf[n - 2] = '\0';
    } else {
        if (n >= sizeof buf)
            return -1;
        memcpy(buf, text, n + 1);
    }
    if (inet_pton(AF_INET, buf, raw) == 1)
        *family = AF_INET;
    else if (inet_pton(AF_INET6, buf, raw) == 1)
        *family = AF_INET6;
    else
        return -1;
    return inet_ntop(*family, raw, out, (socklen_t)cap) ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* The fetcher                                                          */

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

void pdqm_fetcher_free(pdqm_fetcher *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n_hosts; i++)
        free(f->hosts[i]);
    free(f->hosts);
    free(f);
}

pdqm_status pdqm_fetcher_new(const pdqm_fetch_options *o, pdqm_fetcher **out, pdqm_error *err)
{
    *out = NULL;
    pdqm_status loaded = pdqm_curl_load(err);
    if (loaded != PDQM_OK)
        return loaded;
    pthread_once(&curl_once, curl_init);
    if (curl_init_status != CURLE_OK)
        return pdqm_error_set(err, PDQM_ERR_INTERNAL, "libcurl did not start: %s",
                              curl_easy_strerror(curl_init_status));
    pdqm_fetcher *f = calloc(1, sizeof *f);
    if (f == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    f->o = *o;
    f->o.allow_hosts = NULL;
    if (f->o.max_bytes == 0)
        f->o.max_bytes = (size_t)100 << 20;
    if (!(f->o.timeout > 0))
        f->o.timeout = 30;
    if (f->o.max_redirects < 0)
        f->o.max_redirects = 0;
    const char *p = o->allow_hosts ? o->allow_hosts : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0) {
            char host[256];
            if (n >= sizeof host) {
                pdqm_fetcher_free(f);
                return pdqm_error_set(err, PDQM_ERR_INVALID, "a host name is at most 255 "
                                      "characters");
            }
            memcpy(host, p, n);
            host[n] = '\0';
            lower(host);
            char canon[64];
            int family;
            uint8_t raw[16];
            if (canonical_address(host, canon, sizeof canon, &family, raw) == 0) {
                snprintf(host, sizeof host, "%s", canon);
            } else {
                int ok = host[0] != '.' && host[0] != '-';
                for (size_t i = 0; ok && host[i]; i++)
                    ok = (host[i] >= 'a' && host[i] <= 'z') || (host[i] >= '0' && host[i] <= '9') ||
                         host[i] == '.' || host[i] == '-';
                if (!ok) {
                    pdqm_error_set(err, PDQM_ERR_INVALID, "'%s' is not a host name or an "
                                   "address", host);
                    pdqm_fetcher_free(f);
                    return PDQM_ERR_INVALID;
                }
            }
            char **grown = realloc(f->hosts, (f->n_hosts + 1) * sizeof *grown);
            char *copy = grown ? strdup(host) : NULL;
            if (grown)
                f->hosts = grown;
            if (copy == NULL) {
                pdqm_fetcher_free(f);
                return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
            }
            f->hosts[f->n_hosts++] = copy;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *out = f;
    return PDQM_OK;
}

int pdqm_fetcher_enabled(const pdqm_fetcher *f)
{
    return f && f->n_hosts > 0;
}

void pdqm_fetched_free(pdqm_fetched *r)
{
    if (r == NULL)
        return;
    free(r->data);
    memset(r, 0, sizeof *r);
}

/* Whether a host name is allowed: itself, or a subdomain of one allowed. */
static int name_allowed(const pdqm_fetcher *f, const char *host)
{
    size_t n = strlen(host);
    for (size_t i = 0; i < f->n_hosts; i++) {
        const char *a = f->hosts[i];
        size_t m = strlen(a);
        if (strcmp(host, a) == 0 || (n > m + 1 && host[n - m - 1] == '.' &&
                                     strcmp(host + n - m, a) == 0))
            return 1;
    }
    return 0;
}

static int address_allowed(const pdqm_fetcher *f, const char *canon)
{
    for (size_t i = 0; i < f->n_hosts; i++)
        if (strcmp(f->hosts[i], canon) == 0)
            return 1;
    return 0;
}

/* One hop's target: its URL's parts, checked, and the address to use. */
typedef struct target {
    char host[256];            /* as curl parsed it, lower case, brackets off */
    long port;
    char address[64];          /* the checked address, canonical text */
    int family;
} target;

/* Parse and check url; fill *t.  PDQM_OK, or PDQM_ERR_INVALID with why. */
static pdqm_status check_url(const pdqm_fetcher *f, const char *url, target *t,
                             pdqm_error *err)
{
    memset(t, 0, sizeof *t);
    CURLU *u = curl_url();
    if (u == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    char *scheme = NULL, *host = NULL, *port = NULL;
    pdqm_status st = PDQM_OK;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "not a URL");
        goto done;
    }
    lower(scheme);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "only http and https URLs are fetched");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "not a URL");
        goto done;
    }
    t->port = strtol(port, NULL, 10);
    char h[256];
    snprintf(h, sizeof h, "%s", host);
    lower(h);
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        memmove(h, h + 1, hl - 2);
        h[hl - 2] = '\0';
    }
    snprintf(t->host, sizeof t->host, "%s", h);
    uint8_t raw[16];
    char canon[64];
    if (canonical_address(h, canon, sizeof canon, &t->family, raw) == 0) {
        /* An address: allowed by itself alone, then whatever its range. */
        if (!address_allowed(f, canon)) {
            st = pdqm_error_set(err, PDQM_ERR_INVALID, "the host %s is not one fetched from",
                                canon);
            goto done;
        }
        snprintf(t->address, sizeof t->address, "%s", canon);
        goto done;
    }
    if (!name_allowed(f, h)) {
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "the host %s is not one fetched from", h);
        goto done;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(h, NULL, &hints, &res);
    if (rc != 0) {
        st = pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "cannot resolve %s: %s", h,
                            gai_strerror(rc));
        goto done;
    }
    /* Every address it has must be one fetched from: a name that points
     * into the private network (or rebinds to it) is refused whole. */
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        const uint8_t *bytes = a->ai_family == AF_INET
            ? (const uint8_t *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
            : (const uint8_t *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        char text[64];
        if (inet_ntop(a->ai_family, bytes, text, sizeof text) == NULL)
            continue;
        if (pdqm_fetch_address_blocked(a->ai_family, bytes)) {
            st = pdqm_error_set(err, PDQM_ERR_INVALID, "%s resolves to %s, an address not "
                                "fetched from", h, text);
            break;
        }
        if (t->address[0] == '\0' || (t->family == AF_INET6 && a->ai_family == AF_INET)) {
            snprintf(t->address, sizeof t->address, "%s", text);
            t->family = a->ai_family;
        }
    }
    freeaddrinfo(res);
    if (st == PDQM_OK && t->address[0] == '\0')
        st = pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "%s has no address", h);
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return st;
}

/* The host of url as curl parses it (lower case, brackets off); 0, or -1
 * when url is not one. */
static int url_host(const char *url, char *out, size_t cap)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        size_t n = strlen(host);
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
            snprintf(out, cap, "%.*s", (int)(n - 2), host + 1);
        else
            snprintf(out, cap, "%s", host);
        lower(out);
        rc = 0;
    }
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* The body of a hop, up to the cap. */
typedef struct sink {
    uint8_t *data;
    size_t size, cap, max;
    int over;
    int keep;                  /* 0 for a redirect's body: dropped */
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;
    if (n > s->max - s->size) {
        s->over = 1;
        return 0;   /* curl stops: CURLE_WRITE_ERROR */
    }
    if (!s->keep)
        return n;
    if (s->size + n > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->size + n)
            cap = cap > s->max / 2 ? s->max : cap * 2;
        uint8_t *grown = realloc(s->data, cap);
        if (grown == NULL)
            return 0;
        s->data = grown;
        s->cap = cap;
    }
    memcpy(s->data + s->size, ptr, n);
    s->size += n;
    return n;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

pdqm_status pdqm_fetch(pdqm_fetcher *f, const char *url, pdqm_fetched *out, pdqm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!pdqm_fetcher_enabled(f))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "fetching by URL is off: no host is "
                              "allowed (--fetch-allow-hosts)");
    char *current = strdup(url);
    if (current == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    const double deadline = now_seconds() + f->o.timeout;
    char first_host[256] = "";
    pdqm_status st = PDQM_OK;
    sink body = { NULL, 0, 0, f->o.max_bytes, 0, 1 };
    for (int hop = 0;; hop++) {
        target t;
        if ((st = check_url(f, current, &t, err)) != PDQM_OK)
            break;
        if (hop == 0)
            snprintf(first_host, sizeof first_host, "%s", t.host);
        double left = deadline - now_seconds();
        if (left <= 0) {
            st = pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "the fetch took over %g s",
                                f->o.timeout);
            break;
        }
        CURL *h = curl_easy_init();
        if (h == NULL) {
            st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
            break;
        }
        /* Connect to the checked address, and no other. */
        char pin[400];
        snprintf(pin, sizeof pin, "%s:%ld:%s%s%s", t.host, t.port,
                 t.family == AF_INET6 ? "[" : "", t.address, t.family == AF_INET6 ? "]" : "");
        struct curl_slist *resolve = curl_slist_append(NULL, pin);
        body.size = 0;
        body.over = 0;
        body.keep = 1;
        curl_easy_setopt(h, CURLOPT_URL, current);
        curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_PROXY, "");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "pdqmatch");
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left * 1000) + 1);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)((left < 10 ? left : 10) * 1000) + 1);
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f->o.max_bytes);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        CURLcode rc = curl_easy_perform(h);
        int again = 0;
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (rc == CURLE_FILESIZE_EXCEEDED || body.over) {
            st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "the content is over %zu bytes",
                                f->o.max_bytes);
        } else if (rc == CURLE_OPERATION_TIMEDOUT) {
            st = pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "the fetch took over %g s",
                                f->o.timeout);
        } else if (rc != CURLE_OK) {
            st = pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "%s", curl_easy_strerror(rc));
        } else if (code == 301 || code == 302 || code == 303 || code == 307 || code == 308) {
            char *next = NULL;
            char next_host[256];
            curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next);
            if (next == NULL || url_host(next, next_host, sizeof next_host) != 0) {
                st = pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "a redirect (%ld) without a "
                                    "Location one can follow", code);
            } else if (strcmp(next_host, first_host) != 0) {
                st = pdqm_error_set(err, PDQM_ERR_INVALID, "a redirect to another host (%s) "
                                    "is not followed", next_host);
            } else if (hop >= f->o.max_redirects) {
                st = pdqm_error_set(err, PDQM_ERR_INVALID, "more than %d redirects",
                                    f->o.max_redirects);
            } else {
                char *copy = strdup(next);
                if (copy == NULL) {
                    st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
                } else {
                    free(current);
                    current = copy;
                    again = 1;   /* the next hop checks it again */
                }
            }
        } else if (code >= 400) {
            st = pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "%ld %s Error for url: %s", code,
                                code < 500 ? "Client" : "Server", current);
        } else {
            char *type = NULL;
            curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
            snprintf(out->content_type, sizeof out->content_type, "%s", type ? type : "");
        }
        curl_slist_free_all(resolve);
        curl_easy_cleanup(h);
        if (again)
            continue;
        break;
    }
    free(current);
    if (st != PDQM_OK) {
        free(body.data);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->data = body.data ? body.data : malloc(1);
    out->size = body.size;
    if (out->data == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    return PDQM_OK;
}
