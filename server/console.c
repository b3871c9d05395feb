/*
 * console.c - the web console (`pdqmatch serve --console`): its page, script,
 * style sheet and icon, compiled into the binary (console_assets.S takes
 * them from server/console/), served under /console/.
 *
 * The console is a client of the public API like any other: the page holds
 * no data, needs no key, and every request it makes goes to /v1/... with the
 * analyst's own key and role.  What it serves is fixed text, so the replies
 * are made from the bytes in the binary without a copy.
 */
#include <string.h>

#include "server_int.h"

/* The assets (console_assets.S): each starts at NAME and ends at NAME_end. */
extern const char pdqm_console_index[], pdqm_console_index_end[];
extern const char pdqm_console_js[], pdqm_console_js_end[];
extern const char pdqm_console_css[], pdqm_console_css_end[];
extern const char pdqm_console_icon[], pdqm_console_icon_end[];

/* What the browser may do with the console's pages: run and style only what
 * came from this server (no inline script, no eval, no style attribute),
 * send requests only here, show images only from here or from an upload the
 * analyst picked (blob:), never be framed, and in browsers that know Trusted
 * Types, refuse any string handed to an HTML sink (innerHTML and the like),
 * so that a stored value can never become markup. */
#define CONSOLE_CSP                                                                    \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "    \
    "frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

static const struct asset {
    const char *name;        /* after /console/ */
    const char *type;
    const char *start, *end;
} assets[] = {
    { "", "text/html; charset=utf-8", pdqm_console_index, pdqm_console_index_end },
    { "index.html", "text/html; charset=utf-8", pdqm_console_index, pdqm_console_index_end },
    { "app.js", "text/javascript; charset=utf-8", pdqm_console_js, pdqm_console_js_end },
    { "app.css", "text/css; charset=utf-8", pdqm_console_css, pdqm_console_css_end },
    { "icon.svg", "image/svg+xml", pdqm_console_icon, pdqm_console_icon_end },
};

static enum MHD_Result console_reply(struct MHD_Connection *c, const struct asset *a)
{
    const char *const headers[] = {
        "Content-Type", a->type,
        "Content-Security-Policy", CONSOLE_CSP,
        "X-Frame-Options", "DENY",
        "Referrer-Policy", "no-referrer",
        "Cross-Origin-Opener-Policy", "same-origin",
        "Cache-Control", "no-cache",
        NULL,
    };
    return reply_static(c, MHD_HTTP_OK, a->start, (size_t)(a->end - a->start), headers);
}

static enum MHD_Result get_console_root(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s; (void)rq;
    static const char body[] = "";
    const char *const headers[] = { "Location", "/console/", NULL };
    return reply_static(c, MHD_HTTP_PERMANENT_REDIRECT, body, 0, headers);
}

static enum MHD_Result get_console(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s;
    const char *name = rq->param[0] ? rq->param[0] : "";
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
        if (strcmp(assets[i].name, name) == 0)
            return console_reply(c, &assets[i]);
    return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "the console has no file '%s'",
                       name);
}

const struct route pdqm_console_routes[] = {
    { "GET", "/console", get_console_root, 0, PDQM_ROLE_NONE, "The web console", 0 },
    { "GET", "/console/", get_console, 0, PDQM_ROLE_NONE, "The web console", 0 },
    { "GET", "/console/*", get_console, 0, PDQM_ROLE_NONE, "The web console's files", 0 },
};
const size_t pdqm_console_n_routes = sizeof pdqm_console_routes / sizeof pdqm_console_routes[0];
