/*
 * api.c - the route handlers of pdqmatch serve and the route table.
 *
 * Each handler reads its parameters, checks them all before touching the
 * store (a bad request changes nothing), calls the store, and answers
 * with reply_json() or reply_error().
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../hashing/hash256.h"
#include "../core/ingest.h"
#include "../core/jsonraw.h"
#include "../core/jsontext.h"
#include "../core/match_json.h"
#include "../core/policy.h"
#include "server_int.h"

#define MAX_LOOKUP_BATCH 1000
#define MAX_ADD_BATCH 10000
#define MAX_PAGE 1000
#define DEFAULT_PAGE 100

/* ------------------------------------------------------------------ */
/* Checking input                                                       */

/* Parse "N" in lo..hi from a query argument; -1 when bad. */
long pdqm_arg_long(const char *s, long lo, long hi)
{
    if (s == NULL || *s == '\0')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

/* The body as JSON; NULL after replying 400 in *result. */
static json_t *body_json(struct MHD_Connection *c, request *rq, enum MHD_Result *result)
{
    json_error_t je;
    json_t *j = rq->body ? json_loadb(rq->body, rq->size, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (j == NULL)
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid_json", "%s",
                              rq->body ? je.text : "the body must be a JSON object");
    else if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid_json",
                              "the body must be a JSON object");
    }
    return j;
}

/* ------------------------------------------------------------------ */
/* JSON forms of stored things                                          */

static json_t *bank_json(const pdqm_bank_info *b)
{
    return json_pack("{s:s,s:i,s:s,s:f,s:I,s:I,s:I}", "name", b->name, "threshold", b->threshold,
                     "kind", pdqm_bank_kind_name(b->kind), "enabled_ratio", b->enabled_ratio,
                     "created", (json_int_t)b->created, "contents", (json_int_t)b->contents,
                     "hashes", (json_int_t)b->hashes);
}

static json_t *content_json(const pdqm_content_info *info, const pdqm_stored_hash *hashes,
                            size_t n, pdqm_json_raw *raw)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:o}", "bank", info->bank,
                          "content_id", info->content_id, "kind", pdqm_content_kind_name(info->kind),
                          "added", (json_int_t)info->added,
                          "metadata", pdqm_json_raw_value(raw, info->metadata));
    if (j == NULL)
        return NULL;
    if (info->sha256[0])
        json_object_set_new(j, "sha256", json_string(info->sha256));
    if (info->md5[0])
        json_object_set_new(j, "md5", json_string(info->md5));
    json_object_set_new(j, "number", json_integer((json_int_t)info->number));
    if (info->disabled_until)
        json_object_set_new(j, "disabled_until", json_integer((json_int_t)info->disabled_until));
    if (info->note)
        json_object_set_new(j, "note", json_string(info->note));
    if (hashes) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            char hex[PDQM_HASH_HEX_LEN + 1];
            pdqm_hash256_to_hex(&hashes[i].hash, hex);
            json_t *h = json_pack("{s:s,s:i}", "hash", hex, "quality", hashes[i].quality);
            if (info->kind == PDQM_CONTENT_VIDEO)
                json_object_set_new(h, "timestamp", json_real(hashes[i].timestamp));
            json_array_append_new(arr, h);
        }
        json_object_set_new(j, "hashes", arr);
    }
    return j;
}

/* ------------------------------------------------------------------ */
/* Service                                                              */

static enum MHD_Result get_healthz(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s; (void)rq;
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result get_readyz(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    pdqm_store_stats st;
    pdqm_error err;
    if (pdqm_store_stats_get(s->store, &st, &err) != PDQM_OK)
        return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready", "%s",
                           pdqm_error_message(&err));
    /* A full disk leaves the service ready: lookups go on, adds get 507. */
    if (s->cluster == NULL)
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:s,s:I,s:b}", "status", "ready", "hashes",
                                                    (json_int_t)st.hashes, "writable",
                                                    pdqm_store_writable(s->store)));
    /* A node of a cluster is ready while its store is at most --max-lag
     * behind the log.  A node cut off from NATS keeps answering lookups
     * from what it holds (ready), but cannot take writes. */
    pdqm_cluster_state cs;
    pdqm_cluster_state_get(s->cluster, &cs);
    int stuck = cs.missing || cs.unsupported;
    int behind = cs.lag > s->max_lag || stuck;
    json_t *j = json_pack("{s:s,s:I,s:b,s:I,s:I,s:I,s:f,s:b}", "status",
                          stuck ? "stuck" : behind ? "lagging" : "ready",
                          "hashes", (json_int_t)st.hashes,
                          "writable", pdqm_store_writable(s->store) && cs.connected,
                          "applied_seq", (json_int_t)cs.applied, "last_seq", (json_int_t)cs.last,
                          "lag_entries", (json_int_t)(cs.last - cs.applied), "lag_seconds",
                          cs.lag, "connected", cs.connected);
    if (cs.apply_error.status != PDQM_OK)
        json_object_set_new(j, "apply_error", json_string(pdqm_error_message(&cs.apply_error)));
    if (cs.unsupported) {
        /* A later pdqmatch wrote it: skipping it would make this replica
         * unlike the others. */
        json_object_set_new(j, "unsupported_seq", json_integer((json_int_t)cs.unsupported));
        json_object_set_new(j, "message", json_string("the log holds an entry written by a "
                                                      "later pdqmatch: upgrade this node"));
    } else if (cs.missing) {
        /* The stream was purged past this store: it cannot catch up. */
        json_object_set_new(j, "missing_seq", json_integer((json_int_t)cs.missing));
        json_object_set_new(j, "message", json_string("the stream no longer has the entries "
                                                      "this store needs next (purged): restart "
                                                      "this node from a newer snapshot"));
    }
    return reply_json(c, behind ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, j);
}

static enum MHD_Result get_metrics(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    pdqm_body_memory body = { atomic_load(&s->body_memory), s->max_body_memory };
    char *text = pdqm_metrics_render(s->metrics, s->store, body);
    char *rates = pdqm_server_metrics(s, pdqm_store_writable(s->store));
    char *xm = pdqm_exchange_metrics(s);
    char *both = text && rates && xm ? malloc(strlen(text) + strlen(rates) + strlen(xm) + 1)
                                     : NULL;
    if (both) {
        strcpy(both, text);
        strcat(both, rates);
        strcat(both, xm);
    }
    free(text);
    free(rates);
    free(xm);
    text = both;
    if (text == NULL)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
    return reply_text(c, MHD_HTTP_OK, text, "text/plain; version=0.0.4");
}

/* The OpenAPI 3 document, built from the route table so it cannot drift. */
static enum MHD_Result get_openapi(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)s; (void)rq;
    static const char *const roles[] = { "none", "read", "write", "admin" };
    json_t *paths = json_object();
    for (size_t i = 0; i < pdqm_n_routes; i++) {
        const struct route *r = &pdqm_routes[i];
        char path[80], method[8];
        pdqm_route_path(r, path, sizeof path);
        size_t k = 0;
        for (; r->method[k] && k + 1 < sizeof method; k++)
            method[k] = (char)(r->method[k] | 0x20);   /* ASCII lower case */
        method[k] = '\0';
        json_t *item = json_object_get(paths, path);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, path, item);
        }
        json_t *params = json_array();
        if (strstr(path, "{name}"))
            json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s}}", "name", "name",
                                                    "in", "path", "required", 1,
                                                    "schema", "type", "string"));
        if (strstr(path, "{content_id}"))
            json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:{s:s}}", "name",
                                                    "content_id", "in", "path", "required", 1,
                                                    "schema", "type", "string"));
        json_t *op = json_pack("{s:s,s:s,s:o,s:{s:{s:s},s:{s:s}}}", "summary", r->summary,
                               "x-pdqmatch-role", roles[r->role], "parameters", params,
                               "responses", "200", "description", "OK",
                               "4XX", "description", "{\"error\":{\"code\",\"message\"}}");
        if (r->takes_body == 1)
            json_object_set_new(op, "requestBody", json_pack("{s:b,s:{s:{}}}", "required", 1,
                                                             "content", "application/json"));
        else if (r->takes_body == 2)
            json_object_set_new(op, "requestBody",
                                json_pack("{s:b,s:{s:{},s:{},s:{},s:{}}}", "required", 1,
                                          "content", "image/*", "video/*",
                                          "application/octet-stream", "multipart/form-data"));
        if (r->role != PDQM_ROLE_NONE)
            json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearer"));
        json_object_set_new(item, method, op);
    }
    return reply_json(c, MHD_HTTP_OK,
                      json_pack("{s:s,s:{s:s,s:s},s:o,s:{s:{s:{s:s,s:s}}}}",
                                "openapi", "3.0.3", "info", "title", "pdqmatch",
                                "version", PDQM_VERSION, "paths", paths,
                                "components", "securitySchemes", "bearer",
                                "type", "http", "scheme", "bearer"));
}

static enum MHD_Result get_stats(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    pdqm_store_stats st;
    pdqm_error err;
    pdqm_status rc = pdqm_store_stats_get(s->store, &st, &err);
    if (rc != PDQM_OK)
        return reply_status(c, rc, &err);
    return reply_json(c, MHD_HTTP_OK,
                      json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:I}",
                                "banks", (json_int_t)st.banks, "contents", (json_int_t)st.contents,
                                "hashes", (json_int_t)st.hashes, "pending", (json_int_t)st.pending,
                                "pending_limit", (json_int_t)st.pending_limit,
                                "file_bytes", (json_int_t)st.file_bytes,
                                "used_bytes", (json_int_t)st.used_bytes,
                                "map_bytes", (json_int_t)st.map_bytes,
                                "hash_copy_bytes", (json_int_t)st.hash_copy_bytes,
                                "schema", st.schema, "wide_from", (json_int_t)st.wide_from));
}

/* ------------------------------------------------------------------ */
/* Lookup                                                               */

/* Answer n queries (bare hashes) as {"query","matches"} objects, or one
 * object when single. */
static enum MHD_Result lookup_reply(pdqm_server *s, struct MHD_Connection *c,
                                    const pdqm_hash256 *q, size_t n,
                                    const pdqm_policy_options *o, int single)
{
    pdqm_query *queries = calloc(n ? n : 1, sizeof *queries);
    if (queries == NULL)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
    for (size_t i = 0; i < n; i++)
        queries[i] = (pdqm_query){ &q[i], 1, -1 };
    pdqm_policy_result r;
    pdqm_error err;
    pdqm_status st = pdqm_policy_lookup(s->store, queries, n, o, &r, &err);
    free(queries);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    /* The reply is written as text: on a one-hash lookup, jansson's
     * tree and dump would cost more than the HTTP floor (jsontext.h). */
    pdqm_jtext t;
    pdqm_jtext_init(&t);
    if (!single)
        pdqm_jtext_lit(&t, "{\"results\":[");
    for (size_t i = 0; i < n; i++) {
        char hex[PDQM_HASH_HEX_LEN + 1];
        pdqm_hash256_to_hex(&q[i], hex);
        if (i)
            pdqm_jtext_raw(&t, ",", 1);
        pdqm_query_result_text(&t, hex, &r.queries[i], 0);
    }
    if (!single)
        pdqm_jtext_lit(&t, "]}");
    pdqm_count_lookups(s, n, r.store_matches);
    pdqm_policy_result_free(&r);
    char *body = pdqm_jtext_take(&t, NULL);
    if (body == NULL)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
    return reply_text(c, MHD_HTTP_OK, body, "application/json");
}

static enum MHD_Result get_lookup(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    const char *hex = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hash");
    const char *dist = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "max_distance");
    const char *banks = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "banks");
    if (hex == NULL)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "the 'hash' parameter is required");
    /* PDQ's rotated and mirrored hashes come from the image's DCT: a hash
     * alone cannot be turned (its bits are thresholds at a median that
     * turning changes), so say where to get them instead of guessing. */
    if (MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "dihedral"))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "dihedral needs the image: POST it to /v1/lookup/media?dihedral=1, "
                           "or POST its 8 hashes (pdqmatch hash --dihedral) to /v1/lookup");
    pdqm_hash256 h;
    pdqm_error err;
    if (pdqm_hash256_from_hex(hex, strlen(hex), &h, &err) != PDQM_OK)
        return reply_status(c, PDQM_ERR_INVALID, &err);
    pdqm_policy_options o;
    pdqm_policy_options_default(&o);
    if (dist) {
        long d = pdqm_arg_long(dist, 0, PDQM_MAX_DISTANCE);
        if (d < 0)
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
        char *save = NULL;
        for (char *p = strtok_r(bank_buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
            if (o.n_banks == 64)
                return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "at most 64 banks");
            names[o.n_banks++] = p;
        }
        o.banks = names;
    }
    return lookup_reply(s, c, &h, 1, &o, 1);
}

static enum MHD_Result post_lookup(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    enum MHD_Result result;
    json_t *j = body_json(c, rq, &result);
    if (j == NULL)
        return result;
    json_t *hashes = json_object_get(j, "hashes");
    json_t *dist = json_object_get(j, "max_distance");
    json_t *banks = json_object_get(j, "banks");
    pdqm_policy_options o;
    pdqm_policy_options_default(&o);
    const char *names[64];
    pdqm_hash256 *q = NULL;
    size_t n = json_array_size(hashes);
    if (!json_is_array(hashes) || n == 0 || n > MAX_LOOKUP_BATCH) {
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                             "'hashes' is an array of 1 to %d hashes", MAX_LOOKUP_BATCH);
        goto done;
    }
    if (dist && (!json_is_integer(dist) || json_integer_value(dist) < 0 ||
                 json_integer_value(dist) > PDQM_MAX_DISTANCE)) {
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                             "'max_distance' is a number from 0 to 256");
        goto done;
    }
    if (dist)
        o.max_distance = (int)json_integer_value(dist);
    if (banks) {
        if (!json_is_array(banks) || json_array_size(banks) > 64) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                 "'banks' is an array of at most 64 bank names");
            goto done;
        }
        for (size_t i = 0; i < json_array_size(banks); i++) {
            names[i] = json_string_value(json_array_get(banks, i));
            if (names[i] == NULL) {
                result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                     "'banks' holds bank names (strings)");
                goto done;
            }
        }
        o.banks = names;
        o.n_banks = json_array_size(banks);
    }
    q = malloc(n * sizeof *q);
    if (q == NULL) {
        result = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const char *hex = json_string_value(json_array_get(hashes, i));
        pdqm_error err;
        if (hex == NULL || pdqm_hash256_from_hex(hex, strlen(hex), &q[i], &err) != PDQM_OK) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                 "hashes[%zu] is not a 64-hex-digit hash", i);
            goto done;
        }
    }
    result = lookup_reply(s, c, q, n, &o, 0);
done:
    free(q);
    json_decref(j);
    return result;
}

/* ------------------------------------------------------------------ */
/* Banks                                                                */

static enum MHD_Result get_banks(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    pdqm_bank_info *banks;
    size_t n;
    pdqm_error err;
    pdqm_status st = pdqm_store_bank_list(s->store, &banks, &n, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, bank_json(&banks[i]));
    free(banks);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "banks", arr));
}

/* Read "threshold", "kind" and "enabled_ratio" from j (-1 for absent)
 * into *b; 0 after replying. */
static int bank_fields(struct MHD_Connection *c, json_t *j, pdqm_bank_changes *b,
                       enum MHD_Result *result)
{
    json_t *t = json_object_get(j, "threshold"), *k = json_object_get(j, "kind");
    json_t *r = json_object_get(j, "enabled_ratio");
    int *threshold = &b->threshold, *kind = &b->kind;
    *b = (pdqm_bank_changes)PDQM_BANK_UNCHANGED;
    if (r) {
        if (!json_is_number(r) || !(json_number_value(r) >= 0 && json_number_value(r) <= 1)) {
            *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                  "'enabled_ratio' is a number from 0 to 1");
            return 0;
        }
        b->enabled_ratio = json_number_value(r);
    }
    if (t) {
        if (!json_is_integer(t) || json_integer_value(t) < 0 ||
            json_integer_value(t) > PDQM_MAX_DISTANCE) {
            *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                  "'threshold' is a number from 0 to 256");
            return 0;
        }
        *threshold = (int)json_integer_value(t);
    }
    if (k) {
        const char *v = json_string_value(k);
        if (v && strcmp(v, "block") == 0)
            *kind = PDQM_BANK_BLOCK;
        else if (v && strcmp(v, "allow") == 0)
            *kind = PDQM_BANK_ALLOW;
        else {
            *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                  "'kind' is \"block\" or \"allow\"");
            return 0;
        }
    }
    return 1;
}

static enum MHD_Result bank_reply(pdqm_server *s, struct MHD_Connection *c, const char *name,
                                  unsigned status, uint64_t seq)
{
    pdqm_bank_info b;
    pdqm_error err;
    pdqm_status st = pdqm_store_bank_get(s->store, name, &b, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    return reply_json(c, status, pdqm_with_seq(bank_json(&b), seq));
}

static enum MHD_Result post_banks(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    enum MHD_Result result;
    json_t *j = body_json(c, rq, &result);
    if (j == NULL)
        return result;
    const char *name = json_string_value(json_object_get(j, "name"));
    pdqm_bank_changes b;
    pdqm_error err;
    if (name == NULL)
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "'name' (a string) is required");
    else if (bank_fields(c, j, &b, &result)) {
        uint64_t seq;
        pdqm_status st = pdqm_write_bank_create(&s->writer, name,
                                                b.threshold < 0 ? PDQM_DEFAULT_THRESHOLD
                                                                : b.threshold,
                                                b.kind < 0 ? PDQM_BANK_BLOCK
                                                           : (pdqm_bank_kind)b.kind,
                                                b.enabled_ratio, 0, &seq, &err);
        result = st == PDQM_OK ? bank_reply(s, c, name, MHD_HTTP_CREATED, seq)
                               : reply_status(c, st, &err);
    }
    json_decref(j);
    return result;
}

static enum MHD_Result get_bank(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    return bank_reply(s, c, rq->param[0], MHD_HTTP_OK, 0);
}

static enum MHD_Result patch_bank(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    enum MHD_Result result;
    json_t *j = body_json(c, rq, &result);
    if (j == NULL)
        return result;
    pdqm_bank_changes b;
    pdqm_error err;
    if (bank_fields(c, j, &b, &result)) {
        uint64_t seq;
        pdqm_status st = pdqm_write_bank_change(&s->writer, rq->param[0], &b, &seq, &err);
        result = st == PDQM_OK ? bank_reply(s, c, rq->param[0], MHD_HTTP_OK, seq)
                               : reply_status(c, st, &err);
    }
    json_decref(j);
    return result;
}

static enum MHD_Result delete_bank(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_error err;
    uint64_t seq;
    pdqm_status st = pdqm_write_bank_delete(&s->writer, rq->param[0], &seq, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    return reply_json(c, MHD_HTTP_OK, pdqm_with_seq(json_pack("{s:s,s:b}", "bank", rq->param[0],
                                                              "deleted", 1), seq));
}

/* ------------------------------------------------------------------ */
/* Content                                                              */

static enum MHD_Result post_hashes(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    enum MHD_Result result;
    json_t *j = body_json(c, rq, &result);
    if (j == NULL)
        return result;
    const char *bank = rq->param[0];
    json_t *items = json_object_get(j, "items");
    size_t n = json_array_size(items);
    pdqm_item_row *rows = NULL;
    pdqm_items grouped = { 0 };
    pdqm_error err;
    char **metadata = NULL;
    pdqm_add_outcome *outcomes = NULL;
    if (!json_is_array(items) || n == 0 || n > MAX_ADD_BATCH) {
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                             "'items' is an array of 1 to %d items", MAX_ADD_BATCH);
        goto done;
    }
    rows = calloc(n, sizeof *rows);
    metadata = calloc(n, sizeof *metadata);
    if (!rows || !metadata) {
        result = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
        goto done;
    }
    /* Check every item before storing any: the batch is all or nothing. */
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, i);
        const char *hex = json_string_value(json_object_get(it, "hash"));
        const char *cid = json_string_value(json_object_get(it, "content_id"));
        json_t *quality = json_object_get(it, "quality");
        json_t *meta = json_object_get(it, "metadata");
        const char *why = NULL;
        int q = quality && json_is_integer(quality) ? (int)json_integer_value(quality) : 100;
        if (!json_is_object(it))
            why = "is not an object";
        else if (hex == NULL || pdqm_hash256_from_hex(hex, strlen(hex), &rows[i].hash.hash, &err))
            why = "has no valid 'hash' (64 hex digits)";
        else if (quality && (!json_is_integer(quality) || json_integer_value(quality) < 0 ||
                             json_integer_value(quality) > 100))
            why = "has a 'quality' outside 0..100";
        else if (json_object_get(it, "content_id") && cid == NULL)
            why = "has a 'content_id' that is not a string";
        else if ((cid && pdqm_content_id_check(cid, &err) != PDQM_OK) ||
                 pdqm_hash_check(&rows[i].hash.hash, quality ? q : -1, &err) != PDQM_OK) {
            result = reply_error(c, err.status == PDQM_ERR_DEGENERATE
                                        ? MHD_HTTP_UNPROCESSABLE_CONTENT : MHD_HTTP_BAD_REQUEST,
                                 pdqm_status_token(err.status), "items[%zu]: %s", i, err.message);
            goto done;
        }
        if (why) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "items[%zu] %s", i, why);
            goto done;
        }
        rows[i].hash.quality = q;
        if (meta && !json_is_null(meta)) {
            metadata[i] = json_dumps(meta, JSON_COMPACT | JSON_ENCODE_ANY);
            if (metadata[i] == NULL || strlen(metadata[i]) > PDQM_METADATA_MAX) {
                result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                     "items[%zu]: 'metadata' is over %d bytes", i,
                                     PDQM_METADATA_MAX);
                goto done;
            }
        }
        rows[i].bank = bank;
        rows[i].content_id = cid;
        rows[i].metadata = metadata[i];
        rows[i].kind = PDQM_CONTENT_HASHES;
    }
    /* Items of one content id, wherever they stand, are one content item
     * (the library's rule, as for hash lists). */
    if (pdqm_items_group(rows, n, &grouped, &err) != PDQM_OK ||
        (outcomes = calloc(grouped.n_adds, sizeof *outcomes)) == NULL) {
        result = reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
        goto done;
    }
    const pdqm_add *adds = grouped.adds;
    size_t n_adds = grouped.n_adds;
    uint64_t seq;
    pdqm_status st = pdqm_write_add(&s->writer, adds, n_adds, 0, 0, outcomes, &seq, &err);
    if (st != PDQM_OK) {
        result = reply_status(c, st, &err);
        goto done;
    }
    size_t added = 0;
    json_t *existing = json_array();
    for (size_t i = 0; i < n_adds; i++) {
        if (outcomes[i] == PDQM_ADDED)
            added += adds[i].n_hashes;
        else
            json_array_append_new(existing, json_string(adds[i].content_id));
    }
    result = reply_json(c, MHD_HTTP_OK,
                        pdqm_with_seq(json_pack("{s:s,s:I,s:o}", "bank", bank, "added",
                                                (json_int_t)added, "existing", existing), seq));
done:
    if (metadata)
        for (size_t i = 0; i < n; i++)
            free(metadata[i]);
    free(metadata);
    free(rows);
    pdqm_items_free(&grouped);
    free(outcomes);
    json_decref(j);
    return result;
}

static enum MHD_Result content_id_arg(struct MHD_Connection *c, const char *id, int *ok)
{
    pdqm_error err;
    *ok = pdqm_content_id_check(id, &err) == PDQM_OK;
    return *ok ? MHD_YES : reply_status(c, err.status, &err);
}

static enum MHD_Result get_content(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    int ok;
    enum MHD_Result r = content_id_arg(c, rq->param[1], &ok);
    if (!ok)
        return r;
    pdqm_content_info info;
    pdqm_error err;
    pdqm_status st = pdqm_store_content_get(s->store, rq->param[0], rq->param[1], &info, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    pdqm_stored_hash *hashes = NULL;
    size_t n = 0;
    uint32_t number = info.number;
    pdqm_content_info_clear(&info);
    st = pdqm_store_content_by_number(s->store, number, &info, &hashes, &n, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    pdqm_json_raw raw;
    pdqm_json_raw_init(&raw);
    json_t *j = content_json(&info, hashes, n, &raw);
    free(hashes);
    pdqm_content_info_clear(&info);
    return reply_json_raw(c, MHD_HTTP_OK, j, &raw);
}

static enum MHD_Result delete_content(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    int ok;
    enum MHD_Result r = content_id_arg(c, rq->param[1], &ok);
    if (!ok)
        return r;
    pdqm_error err;
    uint64_t seq;
    pdqm_status st = pdqm_write_delete(&s->writer, rq->param[0], rq->param[1], &seq, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    return reply_json(c, MHD_HTTP_OK,
                      pdqm_with_seq(json_pack("{s:s,s:s,s:b}", "bank", rq->param[0],
                                              "content_id", rq->param[1], "deleted", 1), seq));
}

/* Change an item: whether it matches ("disabled_until": -1 until changed,
 * 0 matching, or unix seconds) and its "note" (null or "": none). */
static enum MHD_Result patch_content(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    int ok;
    enum MHD_Result result = content_id_arg(c, rq->param[1], &ok);
    if (!ok)
        return result;
    json_t *j = body_json(c, rq, &result);
    if (j == NULL)
        return result;
    json_t *d = json_object_get(j, "disabled_until"), *n = json_object_get(j, "note");
    pdqm_content_changes ch = { d != NULL, 0, n != NULL, json_string_value(n) };
    pdqm_content_info info;
    pdqm_error err;
    if (d && (!json_is_integer(d) || json_integer_value(d) < -1)) {
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                             "'disabled_until' is -1 (until changed), 0 (matches) or unix "
                             "seconds");
    } else if (n && !json_is_null(n) && !json_is_string(n)) {
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "'note' is a string or null");
    } else if (!d && !n) {
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                             "send 'disabled_until' or 'note' to change");
    } else {
        ch.disabled_until = d ? (int64_t)json_integer_value(d) : 0;
        pdqm_status st = pdqm_store_content_get(s->store, rq->param[0], rq->param[1], &info,
                                                &err);
        uint64_t seq = 0;
        if (st == PDQM_OK) {
            uint32_t number = info.number;
            pdqm_content_info_clear(&info);
            st = pdqm_write_content_change(&s->writer, rq->param[0], number, &ch, &seq, &err);
        }
        if (st != PDQM_OK) {
            result = reply_status(c, st, &err);
        } else {
            st = pdqm_store_content_get(s->store, rq->param[0], rq->param[1], &info, &err);
            if (st != PDQM_OK) {
                result = reply_status(c, st, &err);
            } else {
                pdqm_json_raw raw;
                pdqm_json_raw_init(&raw);
                json_t *out = pdqm_with_seq(content_json(&info, NULL, 0, &raw), seq);
                pdqm_content_info_clear(&info);
                result = reply_json_raw(c, MHD_HTTP_OK, out, &raw);
            }
        }
    }
    json_decref(j);
    return result;
}

/* A page of a bank's content, in the order added, after the cursor. */
typedef struct page {
    int64_t after;           /* -1: from the start */
    size_t limit;
    json_t *items;
    uint32_t last;
    pdqm_json_raw raw;       /* the items' metadata */
} page;

static int page_add(void *arg, const pdqm_content_info *info, const pdqm_stored_hash *hashes,
                    size_t n)
{
    page *p = arg;
    if ((int64_t)info->number <= p->after)
        return 0;
    if (json_array_size(p->items) == p->limit)
        return 1;   /* one more exists: there is a next page */
    json_array_append_new(p->items, content_json(info, hashes, n, &p->raw));
    p->last = info->number;
    return 0;
}

static enum MHD_Result get_content_list(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    const char *cursor = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "cursor");
    const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    page p = { -1, DEFAULT_PAGE, NULL, 0, { 0 } };
    pdqm_json_raw_init(&p.raw);
    if (cursor) {
        long v = pdqm_arg_long(cursor, 0, UINT32_MAX);
        if (v < 0)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                               "'cursor' is the next_cursor of an earlier page");
        p.after = v;
    }
    if (limit) {
        long v = pdqm_arg_long(limit, 1, MAX_PAGE);
        if (v < 0)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                               "'limit' is a number from 1 to %d", MAX_PAGE);
        p.limit = (size_t)v;
    }
    p.items = json_array();
    int more = 0;
    pdqm_error err;
    /* A cursor is the last number of the page before: the walk starts past
     * it (a cursor past every item is an empty last page). */
    pdqm_bank_info bank;
    pdqm_status st = p.after >= (int64_t)UINT32_MAX
                         ? pdqm_store_bank_get(s->store, rq->param[0], &bank, &err)
                         : pdqm_store_walk_from(s->store, rq->param[0], (uint32_t)(p.after + 1),
                                                page_add, &p, &more, &err);
    if (st != PDQM_OK) {
        json_decref(p.items);
        pdqm_json_raw_clear(&p.raw);
        return reply_status(c, st, &err);
    }
    char next[16];
    snprintf(next, sizeof next, "%u", (unsigned)p.last);
    return reply_json_raw(c, MHD_HTTP_OK,
                          json_pack("{s:s,s:o,s:o}", "bank", rq->param[0], "items", p.items,
                                    "next_cursor", more ? json_string(next) : json_null()),
                          &p.raw);
}

/* ------------------------------------------------------------------ */

/* Who the caller is: whether keys are checked, the key's name and role.
 * Without keys (a loopback server) every caller may do everything. */
static enum MHD_Result get_whoami(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    static const char *const names[] = { "none", "read", "write", "admin" };
    int auth = s->keyring != NULL;
    pdqm_role role = auth ? rq->role : PDQM_ROLE_ADMIN;
    return reply_json(c, MHD_HTTP_OK,
                      json_pack("{s:b,s:o,s:s}", "auth", auth, "key",
                                auth && rq->key_name[0] ? json_string(rq->key_name)
                                                        : json_null(),
                                "role", names[role <= PDQM_ROLE_ADMIN ? role : 0]));
}

const struct route pdqm_routes[] = {
    { "GET", "/healthz", get_healthz, 0, PDQM_ROLE_NONE, "Liveness", 0 },
    { "GET", "/readyz", get_readyz, 0, PDQM_ROLE_NONE, "The store is open and readable", 0 },
    { "GET", "/metrics", get_metrics, 0, PDQM_ROLE_READ, "Prometheus metrics", 0 },
    { "GET", "/openapi.json", get_openapi, 0, PDQM_ROLE_NONE, "This document", 0 },
    { "GET", "/v1/stats", get_stats, 0, PDQM_ROLE_READ, "Store statistics", 0 },
    { "GET", "/v1/whoami", get_whoami, 0, PDQM_ROLE_READ,
      "Whether keys are checked, and the caller's key name and role", 0 },
    { "GET", "/v1/lookup", get_lookup, 0, PDQM_ROLE_READ,
      "Look up one hash (?hash=HEX&max_distance=N&banks=a,b)", 0 },
    { "POST", "/v1/lookup", post_lookup, 1, PDQM_ROLE_READ,
      "Look up a batch of up to 1000 hashes", 0 },
    { "POST", "/v1/hash", pdqm_post_hash, 2, PDQM_ROLE_READ,
      "Hash an image or a video; nothing is stored", 0 },
    { "POST", "/v1/lookup/media", pdqm_post_lookup_media, 2, PDQM_ROLE_READ,
      "Hash an image or a video and look it up", 0 },
    { "GET", "/v1/banks", get_banks, 0, PDQM_ROLE_READ, "List the banks", 0 },
    { "POST", "/v1/banks", post_banks, 1, PDQM_ROLE_ADMIN, "Create a bank", 0 },
    { "GET", "/v1/banks/*", get_bank, 0, PDQM_ROLE_READ, "One bank", 0 },
    { "PATCH", "/v1/banks/*", patch_bank, 1, PDQM_ROLE_ADMIN,
      "Change a bank's threshold or kind", 0 },
    { "DELETE", "/v1/banks/*", delete_bank, 0, PDQM_ROLE_ADMIN,
      "Delete a bank and all it holds", 0 },
    { "POST", "/v1/banks/*/hashes", post_hashes, 1, PDQM_ROLE_WRITE,
      "Add up to 10000 hashes, all or none", 0 },
    { "POST", "/v1/banks/*/media", pdqm_post_bank_media, 2, PDQM_ROLE_WRITE,
      "Hash media and store it (?content_id=ID)", 0 },
    { "GET", "/v1/banks/*/content", get_content_list, 0, PDQM_ROLE_READ,
      "A page of a bank's content (?cursor=C&limit=N)", 0 },
    { "GET", "/v1/banks/*/content/**", get_content, 0, PDQM_ROLE_READ,
      "One content item with its hashes", 0 },
    { "PATCH", "/v1/banks/*/content/**", patch_content, 1, PDQM_ROLE_WRITE,
      "Change whether an item matches (disabled_until) and its note", 0 },
    { "DELETE", "/v1/banks/*/content/**", delete_content, 0, PDQM_ROLE_WRITE,
      "Delete one content item", 0 },
    { "GET", "/v1/exchanges", pdqm_get_exchanges, 0, PDQM_ROLE_READ,
      "The hash exchanges fetched into the store: last fetch, checkpoint, counts", 0 },
    { "GET", "/v1/exchanges/*", pdqm_get_exchange, 0, PDQM_ROLE_READ, "One exchange", 0 },
    { "POST", "/v1/exchanges/*/fetch", pdqm_post_exchange_fetch, 0, PDQM_ROLE_ADMIN,
      "Fetch an exchange now (with --fetch-interval)", 0 },
};
const size_t pdqm_n_routes = sizeof pdqm_routes / sizeof pdqm_routes[0];
