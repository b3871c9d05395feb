/*
 * http.c - the exchanges' HTTP client on libcurl: one request with a
 * deadline, a cap on the body, no redirects, and retries with backoff on
 * 429 and 5xx (and on a failed connection), honouring Retry-After.
 *
 * Credentials travel in headers or in HTTP Basic auth and never appear in
 * an error message: a URL is named by its host and path only.
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <curl/curl.h>

#include "../fetch/curl_lazy.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status;

static void curl_init(void)
{
    curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void xresponse_free(xresponse *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
}

typedef struct body_buf {
    xresponse *r;
    size_t cap, max;
    int over;
    double retry_after;        /* seconds, from the header (-1: none) */
} body_buf;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    body_buf *b = arg;
    size_t len = size * n;
    if (b->r->size + len > b->max) {
        b->over = 1;
        return 0;              /* aborts the transfer */
    }
    if (b->r->size + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->r->size + len + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        char *grown = realloc(b->r->body, cap);
        if (grown == NULL)
            return 0;
        b->r->body = grown;
        b->cap = cap;
    }
    memcpy(b->r->body + b->r->size, data, len);
    b->r->size += len;
    b->r->body[b->r->size] = '\0';
    return len;
}

/* Retry-After: seconds, or an HTTP date. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    body_buf *b = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char v[64];
        size_t k = len - (sizeof name - 1);
        if (k >= sizeof v)
            k = sizeof v - 1;
        memcpy(v, data + sizeof name - 1, k);
        v[k] = '\0';
        char *p = v;
        while (*p == ' ' || *p == '\t')
            p++;
        char *end;
        double secs = strtod(p, &end);
        if (end != p && secs >= 0) {
            b->retry_after = secs;
        } else {
            curl_off_t when = curl_getdate(p, NULL);
            if (when > 0) {
                double d = (double)when - (double)time(NULL);
                b->retry_after = d > 0 ? d : 0;
            }
        }
    }
    return len;
}

/* The URL as an error may show it: scheme, host and path, no query (where
 * a token may be). */
void xurl_for_humans(const char *url, char *out, size_t size)
{
    size_t n = strcspn(url, "?#");
    if (n >= size)
        n = size - 1;
    memcpy(out, url, n);
    out[n] = '\0';
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleep secs, in steps, returning early (1) when asked to stop. */
static int pause_for(const xhttp *h, double secs)
{
    double until = now_mono() + secs;
    for (;;) {
        if (h->stop && atomic_load(h->stop))
            return 1;
        double left = until - now_mono();
        if (left <= 0)
            return 0;
        if (left > 0.1)
            left = 0.1;
        struct timespec ts = { 0, (long)(left * 1e9) };
        nanosleep(&ts, NULL);
    }
}

static int retryable(long code)
{
    return code == 429 || (code >= 500 && code <= 599);
}

pdqm_status xhttp_request(xhttp *h, const xrequest *q, xresponse *out, pdqm_error *err)
{
    memset(out, 0, sizeof *out);
    if (h->canned) {
        pdqm_status st = h->canned(h->canned_arg, q, out);
        if (st == PDQM_OK && (out->code < 200 || out->code > 299))
            return pdqm_error_set(err, PDQM_ERR_INVALID, "HTTP %ld", out->code);
        return st;
    }
    pdqm_status loaded = pdqm_curl_load(err);
    if (loaded != PDQM_OK)
        return loaded;
    pthread_once(&curl_once, curl_init);
    if (curl_init_status != CURLE_OK)
        return pdqm_error_set(err, PDQM_ERR_INTERNAL, "libcurl did not start: %s",
                              curl_easy_strerror(curl_init_status));
    char shown[256];
    xurl_for_humans(q->url, shown, sizeof shown);
    if (strncasecmp(q->url, "http://", 7) != 0 && strncasecmp(q->url, "https://", 8) != 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "%s: not an http(s) URL", shown);
    double backoff = h->retry_base > 0 ? h->retry_base : 0.5;
    for (int attempt = 0;; attempt++) {
        if (h->stop && atomic_load(h->stop))
            return pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "stopped");
        CURL *c = curl_easy_init();
        if (c == NULL)
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a request");
        xresponse_free(out);
        body_buf b = { out, 0, h->max_bytes, 0, -1 };
        struct curl_slist *headers = NULL;
        for (size_t i = 0; i < q->n_headers; i++)
            headers = curl_slist_append(headers, q->headers[i]);
        if (q->body)
            headers = curl_slist_append(headers, "Content-Type: application/json");
        headers = curl_slist_append(headers, "Expect:");
        curl_easy_setopt(c, CURLOPT_URL, q->url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(h->timeout * 1000));
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(h->timeout * 1000));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &b);
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_bytes);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(c, CURLOPT_USERAGENT, "pdqmatch/" PDQM_VERSION);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        if (h->ca_file)
            curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
        if (q->userpwd) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERPWD, q->userpwd);
        }
        if (q->body) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(q->body));
        }
        CURLcode rc = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_slist_free_all(headers);
        curl_easy_cleanup(c);
        out->code = code;
        h->requests++;
        if (b.over || rc == CURLE_FILESIZE_EXCEEDED) {
            xresponse_free(out);
            return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "%s: the answer is over %zu bytes",
                                  shown, h->max_bytes);
        }
        int transport = rc != CURLE_OK;
        if (!transport && !retryable(code)) {
            if (code >= 200 && code <= 299)
                return PDQM_OK;
            /* An answer that will not change when asked again: the
             * caller reads its code (a stale token, an expired login). */
            return pdqm_error_set(err, code == 404 ? PDQM_ERR_NOT_FOUND : PDQM_ERR_INVALID,
                                  "%s: HTTP %ld", shown, code);
        }
        if (attempt >= h->max_retries) {
            if (transport) {
                xresponse_free(out);
                return pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "%s: %s (after %d tries)",
                                      shown, curl_easy_strerror(rc), attempt + 1);
            }
            return pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "%s: HTTP %ld (after %d tries)",
                                  shown, code, attempt + 1);
        }
        double wait = backoff;
        if (!transport && b.retry_after >= 0)
            wait = b.retry_after;
        if (wait > h->max_wait)
            wait = h->max_wait;
        h->retries++;
        if (h->on_retry)
            h->on_retry(h->arg, shown, transport ? -1 : code, wait);
        backoff = backoff * 2 > h->max_wait ? h->max_wait : backoff * 2;
        if (pause_for(h, wait))
            return pdqm_error_set(err, PDQM_ERR_UNAVAILABLE, "stopped");
    }
}
