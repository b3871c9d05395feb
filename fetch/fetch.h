/*
 * fetch.h - fetching media by URL for the service (HMA's url= routes),
 * without letting a client reach what the server can reach.
 *
 * A fetch is a server-side request made for a client: without rules it
 * reaches the loopback, the private network and cloud metadata services
 * (SSRF).  The rules, checked before any byte is sent and again at each
 * redirect:
 *   - http and https only, and only to the hosts allowed (none by default:
 *     fetching is off until hosts are allowed).  A name allows itself and
 *     its subdomains; an address allows itself.
 *   - Every address a name resolves to is checked; loopback, private,
 *     link-local (cloud metadata), carrier-grade NAT, multicast and other
 *     special addresses are refused, unless the host was allowed by that
 *     very address ("127.0.0.1" allows fetching from 127.0.0.1, and nothing
 *     else on loopback).
 *   - The connection goes to the address that was checked (no second
 *     resolution for a name that might resolve elsewhere the second time),
 *     never through a proxy.
 *   - A redirect is followed only to the same host (at most max_redirects),
 *     checked again; one to another host is refused, not fetched.
 *   - The body is cut at max_bytes (a declared length over it is refused
 *     before the body is read), and the whole fetch at a deadline.
 *
 * Library code: returns errors with a message, never prints or exits.
 */
#ifndef PDQM_FETCH_H
#define PDQM_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "../hashing/error.h"

typedef struct pdqm_fetch_options {
    const char *allow_hosts;   /* comma-separated host names or addresses;
                                  NULL or "": none (fetching is off) */
    size_t max_bytes;          /* of a body (default 100 MiB, as HMA) */
    double timeout;            /* seconds for the whole fetch, redirects
                                  included (default 30) */
    int max_redirects;         /* same-host redirects followed (default 5) */
} pdqm_fetch_options;

void pdqm_fetch_options_default(pdqm_fetch_options *o);

typedef struct pdqm_fetcher pdqm_fetcher;

/* A fetcher with these options (copied).  PDQM_ERR_INVALID for a bad host
 * in the list; PDQM_ERR_NOMEM.  Safe to share between threads. */
pdqm_status pdqm_fetcher_new(const pdqm_fetch_options *o, pdqm_fetcher **out, pdqm_error *err);

/* NULL does nothing. */
void pdqm_fetcher_free(pdqm_fetcher *f);

/* Whether any host is allowed (fetching is on). */
int pdqm_fetcher_enabled(const pdqm_fetcher *f);

typedef struct pdqm_fetched {
    uint8_t *data;             /* the body (malloc'd) */
    size_t size;
    char content_type[128];    /* the response's Content-Type, "" when none */
} pdqm_fetched;

void pdqm_fetched_free(pdqm_fetched *r);

/* Fetch url into *out (the caller frees it with pdqm_fetched_free).
 * Errors, with the reason:
 *   PDQM_ERR_INVALID      not an http(s) URL, a host not allowed, an address
 *                         refused, a redirect to another host or too many
 *   PDQM_ERR_TOO_LARGE    the body is over max_bytes
 *   PDQM_ERR_UNAVAILABLE  the fetch failed: no answer, the deadline, an
 *                         error status (its code in the message)
 *   PDQM_ERR_NOMEM */
pdqm_status pdqm_fetch(pdqm_fetcher *f, const char *url, pdqm_fetched *out, pdqm_error *err);

/* Whether an address (AF_INET or AF_INET6, in network order: 4 or 16
 * bytes) is one a fetch may not reach unless allowed by that very address:
 * loopback, private, link-local, carrier-grade NAT, unspecified,
 * multicast, broadcast, documentation and other reserved ranges, and their
 * IPv4-mapped forms.  No side effects. */
int pdqm_fetch_address_blocked(int family, const uint8_t *addr);

#endif
