/*
 * fuzz_exchange.c - pages from the hash exchanges, as their APIs send them:
 * the first byte picks the client (NCMEC's XML, StopNCII's, ThreatExchange's
 * or TCAP's JSON) and the rest is the answer to its page request (TCAP's
 * login is answered with a token).  Two pages are read when the first
 * says there is another; every record a page gives is turned into the item
 * it would store, which must be one the store takes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exchange/exchange_int.h"
#include "../../index/store.h"

typedef struct canned_arg {
    const uint8_t *data;
    size_t size;
} canned_arg;

static pdqm_status canned(void *arg, const xrequest *q, xresponse *out)
{
    canned_arg *c = arg;
    const char *token = "{\"token\":\"t\"}";
    const char *body = strstr(q->url, "token-auth") ? token : (const char *)c->data;
    size_t n = body == token ? strlen(token) : c->size;
    out->code = 200;
    out->body = malloc(n + 1);
    if (out->body == NULL)
        return PDQM_ERR_NOMEM;
    memcpy(out->body, body, n);
    out->body[n] = '\0';
    out->size = n;
    return PDQM_OK;
}

static void no_log(xctx *x, pdqm_exchange_log_level level, const char *fmt, ...)
{
    (void)x;
    (void)level;
    (void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const xclient *const clients[4] = { &xclient_ncmec, &xclient_stopncii,
                                               &xclient_threatexchange, &xclient_tcap };
    const xclient *cl = clients[data[0] % 4];
    canned_arg ca = { data + 1, size - 1 };
    pdqm_exchange_config cfg;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.name, "fuzz");
    strcpy(cfg.bank, "B");
    strcpy(cfg.privacy_group, "1");
    cfg.type = cl->type;
    json_t *creds = json_pack("{s:s,s:s,s:s,s:s,s:s}", "username", "u", "password", "p",
                              "functions_key", "f", "subscription_key", "s", "access_token", "a");
    xhttp http = { 5, 1 << 20, 0, 0, 0, NULL, NULL, NULL, NULL, 0, 0, canned, &ca };
    xctx x = { &cfg, "http://127.0.0.1:1/x", creds, NULL, &http, 1700000000, no_log, NULL, NULL };
    xpage page;
    memset(&page, 0, sizeof page);
    if (cl->start(&x, NULL) == PDQM_OK) {
        for (int round = 0; round < 2; round++) {
            xpage_clear(&page);
            if (cl->next(&x, &page, NULL) != PDQM_OK)
                break;
            for (size_t i = 0; i < page.n; i++) {
                const xrecord *r = &page.recs[i];
                if (r->bad || r->deleted || r->signal == XSIG_NONE)
                    continue;
                pdqm_add add;
                pdqm_stored_hash h;
                char *meta = NULL;
                if (xrecord_to_add(&cfg, r, 1700000000, &add, &h, &meta, NULL) == PDQM_OK) {
                    /* An item made of a record is one the store takes. */
                    if (pdqm_store_check_op(&(pdqm_op){ .type = PDQM_OP_PUT, .adds = &add,
                                                        .n_adds = 1 }, NULL) != PDQM_OK)
                        __builtin_trap();
                }
                free(meta);
            }
            if (page.done)
                break;
        }
    }
    cl->finish(&x);
    xpage_clear(&page);
    free(page.recs);
    free(page.strings);
    json_decref(creds);
    return 0;
}
