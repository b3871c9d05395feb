/*
 * hma.c - HMA's API (Hasher-Matcher-Actioner / Open Media Match 1.1.7),
 * served beside pdqmatch's own with `serve --hma`: the route table, what
 * its handlers share, and the routes of status and configuration.
 *
 * The handlers of banks and content are in hma_curation.c, those of
 * lookups and hashing in hma_matching.c.  HMA's rules that need no HTTP
 * (signal formats, the id and time mappings) are core/hma.h's.
 */
#define _POSIX_C_SOURCE 200809L
#include "hma_int.h"
#include "../exchange/exchange.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* pydantic's error pages, as HMA's 422 answers link them. */
#define PYDANTIC_URL "https://errors.pydantic.dev/2.11/v/"

const char *hma_arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

enum MHD_Result hma_reply_missing(struct MHD_Connection *c, const char *const *fields, size_t n,
                                  json_t *input)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s,s:[s],s:s,s:O,s:s}", "type", "missing",
                                              "loc", fields[i], "msg", "Field required",
                                              "input", input ? input : json_null(),
                                              "url", PYDANTIC_URL "missing"));
    json_decref(input);
    return reply_json(c, MHD_HTTP_UNPROCESSABLE_CONTENT, list);
}

enum MHD_Result hma_reply_invalid(struct MHD_Connection *c, const char *field,
                                  const char *type, const char *msg, json_t *value)
{
    char url[128];
    snprintf(url, sizeof url, PYDANTIC_URL "%s", type);
    return reply_json(c, MHD_HTTP_UNPROCESSABLE_CONTENT,
                      json_pack("[{s:s,s:[s],s:s,s:o,s:s}]", "type", type, "loc", field, "msg",
                                msg, "input", value ? value : json_null(), "url", url));
}

int hma_parse_bool(const char *text, int *out)
{
    static const char *const yes[] = { "1", "on", "t", "true", "y", "yes" };
    static const char *const no[] = { "0", "off", "f", "false", "n", "no" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

json_t *hma_body(const request *rq)
{
    if (rq->body == NULL || rq->size == 0)
        return NULL;
    return json_loadb(rq->body, rq->size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

json_t *hma_bank_json(const pdqm_bank_info *b)
{
    return json_pack("{s:s,s:f}", "name", b->name, "matching_enabled_ratio", b->enabled_ratio);
}

void hma_hits_free(hma_hits *h)
{
    free(h->v);
    h->v = NULL;
    h->n = 0;
}

/* ------------------------------------------------------------------ */
/* Status                                                               */

static enum MHD_Result text_reply(struct MHD_Connection *c, unsigned status, const char *text)
{
    char *body = strdup(text);
    if (body == NULL)
        return MHD_NO;
    return reply_text(c, status, body, "text/html; charset=utf-8");
}

/* HMA says INDEX-NOT-LOADED until its index is built, INDEX-STALE when
 * it is behind: a store is searchable from the start, and a node of a
 * cluster is stale while it lags the log past --max-lag. */
static enum MHD_Result hma_status(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    pdqm_store_stats st;
    pdqm_error err;
    if (pdqm_store_stats_get(s->store, &st, &err) != PDQM_OK)
        return text_reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "INDEX-NOT-LOADED");
    if (s->cluster) {
        pdqm_cluster_state cs;
        pdqm_cluster_state_get(s->cluster, &cs);
        if (cs.lag > s->max_lag || cs.missing || cs.unsupported)
            return text_reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "INDEX-STALE");
    }
    return text_reply(c, MHD_HTTP_OK, "I-AM-ALIVE");
}

static enum MHD_Result hma_status_live(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s; (void)rq;
    return text_reply(c, MHD_HTTP_OK, "I-AM-ALIVE");
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every route HMA's server has that this one answers, sorted, as Flask
 * writes its rules (the summary of each route entry is its rule). */
static enum MHD_Result hma_site_map(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s; (void)rq;
    const char *rules[64];
    size_t n = 0;
    for (size_t i = 0; i < pdqm_hma_n_routes && n < 64; i++) {
        int seen = 0;
        for (size_t j = 0; j < n; j++)
            seen |= strcmp(rules[j], pdqm_hma_routes[i].summary) == 0;
        if (!seen)
            rules[n++] = pdqm_hma_routes[i].summary;
    }
    qsort(rules, n, sizeof *rules, compare_str);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(rules[i]));
    return reply_json(c, MHD_HTTP_OK, list);
}

/* ------------------------------------------------------------------ */
/* Configuration: signal types, content types, the index                */

static enum MHD_Result hma_signal_types(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s; (void)rq;
    json_t *list = json_array();
    for (int i = 0; i < PDQM_HMA_SIGNALS; i++)
        json_array_append_new(list, json_pack("{s:s,s:f}", "name",
                                              pdqm_hma_signal_name((pdqm_hma_signal)i),
                                              "enabled_ratio", 1.0));
    return reply_json(c, MHD_HTTP_OK, list);
}

static enum MHD_Result hma_content_types(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s; (void)rq;
    return reply_json(c, MHD_HTTP_OK, json_pack("[{s:s,s:b},{s:s,s:b}]", "name", "photo",
                                                "enabled", 1, "name", "video", "enabled", 1));
}

/* The types asked for (?signal_type=), or all: 0 after replying 400. */
static int signal_type_arg(struct MHD_Connection *c, int *which, enum MHD_Result *result)
{
    const char *name = hma_arg(c, "signal_type");
    *which = -1;
    if (name == NULL)
        return 1;
    if ((*which = pdqm_hma_signal_parse(name)) < 0) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "No such signal type '%s'",
                              name);
        return 0;
    }
    return 1;
}

/* The index is the store, searchable as soon as anything is added: built
 * to the newest item, never out of date.  Its size is the store's
 * hashes (a video's frames are PDQ hashes in the one index) and, for
 * video_md5, its items. */
static enum MHD_Result index_report(pdqm_server *s, struct MHD_Connection *c, int config_form)
{
    int which;
    enum MHD_Result result;
    if (!signal_type_arg(c, &which, &result))
        return result;
    pdqm_store_stats st;
    pdqm_error err;
    if (pdqm_store_stats_get(s->store, &st, &err) != PDQM_OK)
        return reply_status(c, err.status, &err);
    json_int_t built = st.contents ? (json_int_t)st.newest_added : -1;
    json_t *out = json_object();
    for (int i = 0; i < PDQM_HMA_SIGNALS; i++) {
        if (which >= 0 && which != i)
            continue;
        json_int_t size = (json_int_t)(i == PDQM_HMA_VIDEO_MD5 ? st.contents : st.hashes);
        json_t *one = config_form
            ? json_pack("{s:I,s:I,s:b,s:I,s:I}", "db_size", size, "index_size", size,
                        "index_out_of_date", 0, "newest_db_item", built, "index_built_to", built)
            : json_pack("{s:b,s:I,s:I}", "present", 1, "built_to", built, "size", size);
        json_object_set_new(out, pdqm_hma_signal_name((pdqm_hma_signal)i), one);
    }
    return reply_json(c, MHD_HTTP_OK, out);
}

static enum MHD_Result hma_index_status(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    return index_report(s, c, 0);
}

static enum MHD_Result hma_signal_type_index(pdqm_server *s, struct MHD_Connection *c,
                                             request *rq)
{
    (void)rq;
    return index_report(s, c, 1);
}

/* ------------------------------------------------------------------ */
/* Exchanges: read-only, from pdqmatch's exchanges ('pdqmatch exchange') */

/* HMA's (python-threatexchange's) name of each exchange API. */
static const char *hma_api_name(pdqm_exchange_type t)
{
    switch (t) {
    case PDQM_EXCHANGE_NCMEC: return "ncmec";
    case PDQM_EXCHANGE_STOPNCII: return "stop_ncii";
    case PDQM_EXCHANGE_THREATEXCHANGE: return "fb_threatexchange";
    case PDQM_EXCHANGE_TCAP: return "tat";
    }
    return "unknown";
}

static enum MHD_Result hma_exchange_apis(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s; (void)rq;
    json_t *arr = json_array();
    for (int t = 0; t < PDQM_EXCHANGE_TYPES; t++)
        json_array_append_new(arr, json_string(hma_api_name((pdqm_exchange_type)t)));
    return reply_json(c, MHD_HTTP_OK, arr);
}

static enum MHD_Result hma_exchanges(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    pdqm_exchange_info *all;
    size_t n;
    pdqm_error err;
    pdqm_status st = pdqm_exchange_list(s->store, &all, &n, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(all[i].config.name));
    pdqm_exchange_infos_free(all, n);
    return reply_json(c, MHD_HTTP_OK, arr);
}

/* The time a checkpoint stands for (each type's own field), or null. */
static json_t *checkpoint_ts(const pdqm_exchange_info *x)
{
    json_t *cp = x->checkpoint ? json_loads(x->checkpoint, 0, NULL) : NULL;
    json_t *v = NULL;
    if (json_is_object(cp)) {
        static const char *const keys[] = { "from", "start", "update_time" };
        for (size_t i = 0; i < 3 && v == NULL; i++)
            if (json_is_integer(json_object_get(cp, keys[i])))
                v = json_integer(json_integer_value(json_object_get(cp, keys[i])));
        const char *after = json_string_value(json_object_get(cp, "after"));
        if (v == NULL && after)
            v = json_integer(strtoll(after, NULL, 10));   /* TCAP: "{epoch},{id}" */
    }
    json_decref(cp);
    return v ? v : json_null();
}

static enum MHD_Result exchange_reply(pdqm_server *s, struct MHD_Connection *c, request *rq,
                                      int status)
{
    pdqm_exchange_info x;
    pdqm_error err;
    if (pdqm_exchange_get(s->store, rq->param[0], &x, &err) != PDQM_OK)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "Exchange '%s' not found",
                           rq->param[0]);
    json_t *j;
    if (status) {
        pdqm_bank_info b;
        uint64_t items = pdqm_store_bank_get(s->store, x.config.bank, &b, NULL) == PDQM_OK
                             ? b.contents : 0;
        int64_t now = (int64_t)time(NULL);
        int running = x.holder[0] && x.lease_until > now;
        const pdqm_exchange_status *st = &x.status;
        j = json_pack("{s:o, s:o, s:o, s:o, s:b, s:I}",
                      "checkpoint_ts", checkpoint_ts(&x),
                      "running_fetch_start_ts",
                      running && st->running_since ? json_integer(st->running_since)
                                                   : json_null(),
                      "last_fetch_complete_ts",
                      st->fetches ? json_integer(st->finished) : json_null(),
                      "last_fetch_succeeded", st->fetches ? json_boolean(st->ok) : json_null(),
                      "up_to_date", st->fetches && st->ok,
                      "fetched_items", (json_int_t)items);
    } else {
        j = json_pack("{s:s, s:s, s:b, s:s}", "name", x.config.name, "api",
                      hma_api_name(x.config.type), "enabled", 1, "bank", x.config.bank);
        if (j && x.config.type == PDQM_EXCHANGE_NCMEC)
            json_object_set_new(j, "environment",
                                json_string(x.config.base_url[0]
                                                ? x.config.base_url
                                                : pdqm_exchange_default_url(x.config.type)));
        if (j && x.config.type == PDQM_EXCHANGE_THREATEXCHANGE)
            json_object_set_new(j, "privacy_group",
                                json_integer(strtoll(x.config.privacy_group, NULL, 10)));
    }
    free(x.checkpoint);
    return reply_json(c, MHD_HTTP_OK, j);
}

static enum MHD_Result hma_exchange(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    return exchange_reply(s, c, rq, 0);
}

static enum MHD_Result hma_exchange_status(pdqm_server *s, struct MHD_Connection *c,
                                           request *rq)
{
    return exchange_reply(s, c, rq, 1);
}

/* ------------------------------------------------------------------ */
/* The routes: HMA's rule for /site-map as the summary                  */

#define R(method, pattern, fn, body, role, rule) { method, pattern, fn, body, role, rule, 1 }

const struct route pdqm_hma_routes[] = {
    R("GET", "/status", hma_status, 0, PDQM_ROLE_NONE, "/status"),
    R("GET", "/status/live", hma_status_live, 0, PDQM_ROLE_NONE, "/status/live"),
    R("GET", "/site-map", hma_site_map, 0, PDQM_ROLE_NONE, "/site-map"),
    R("GET", "/h/hash", hma_get_hash, 0, PDQM_ROLE_READ, "/h/hash"),
    R("POST", "/h/hash", hma_post_hash, 3, PDQM_ROLE_READ, "/h/hash"),
    R("GET", "/m/raw_lookup", hma_get_raw_lookup, 0, PDQM_ROLE_READ, "/m/raw_lookup"),
    R("GET", "/m/lookup", hma_get_lookup, 0, PDQM_ROLE_READ, "/m/lookup"),
    R("POST", "/m/lookup", hma_post_lookup, 3, PDQM_ROLE_READ, "/m/lookup"),
    R("GET", "/m/index/status", hma_index_status, 0, PDQM_ROLE_READ, "/m/index/status"),
    R("POST", "/m/compare", hma_post_compare, 1, PDQM_ROLE_READ, "/m/compare"),
    R("GET", "/c/banks", hma_get_banks, 0, PDQM_ROLE_READ, "/c/banks"),
    R("POST", "/c/banks", hma_post_banks, 1, PDQM_ROLE_ADMIN, "/c/banks"),
    R("GET", "/c/bank/*", hma_get_bank, 0, PDQM_ROLE_READ, "/c/bank/<bank_name>"),
    R("PUT", "/c/bank/*", hma_put_bank, 1, PDQM_ROLE_ADMIN, "/c/bank/<bank_name>"),
    R("DELETE", "/c/bank/*", hma_delete_bank, 0, PDQM_ROLE_ADMIN, "/c/bank/<bank_name>"),
    R("POST", "/c/bank/*/content", hma_post_content, 3, PDQM_ROLE_WRITE,
      "/c/bank/<bank_name>/content"),
    R("POST", "/c/bank/*/signal", hma_post_signal, 1, PDQM_ROLE_WRITE,
      "/c/bank/<bank_name>/signal"),
    R("GET", "/c/bank/*/content/*", hma_get_content, 0, PDQM_ROLE_READ,
      "/c/bank/<bank_name>/content/<int:content_id>"),
    R("PUT", "/c/bank/*/content/*", hma_put_content, 1, PDQM_ROLE_WRITE,
      "/c/bank/<bank_name>/content/<int:content_id>"),
    R("DELETE", "/c/bank/*/content/*", hma_delete_content, 0, PDQM_ROLE_WRITE,
      "/c/bank/<bank_name>/content/<int:content_id>"),
    R("GET", "/c/signal_type", hma_signal_types, 0, PDQM_ROLE_READ, "/c/signal_type"),
    R("GET", "/c/signal_type/index", hma_signal_type_index, 0, PDQM_ROLE_READ,
      "/c/signal_type/index"),
    R("GET", "/c/content_type", hma_content_types, 0, PDQM_ROLE_READ, "/c/content_type"),
    R("GET", "/c/exchanges/apis", hma_exchange_apis, 0, PDQM_ROLE_READ, "/c/exchanges/apis"),
    R("GET", "/c/exchanges", hma_exchanges, 0, PDQM_ROLE_READ, "/c/exchanges"),
    R("GET", "/c/exchange/*", hma_exchange, 0, PDQM_ROLE_READ,
      "/c/exchange/<string:exchange_name>"),
    R("GET", "/c/exchange/*/status", hma_exchange_status, 0, PDQM_ROLE_READ,
      "/c/exchange/<string:exchange_name>/status"),
};
const size_t pdqm_hma_n_routes = sizeof pdqm_hma_routes / sizeof pdqm_hma_routes[0];
