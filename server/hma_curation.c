/*
 * hma_curation.c - HMA's /c/ routes of banks and their content.
 *
 * A bank is a pdqmatch bank (its enabled ratio kept by the store); a
 * content item is a store item, its HMA id the item's number.  Content
 * added here is named by its number, its HMA metadata ({content_id,
 * content_uri, json}) stored as the item's metadata.  An item added
 * through pdqmatch's API shows here with its content id and metadata as
 * HMA metadata: {"content_id": its id, "json": its metadata}.
 */
#define _POSIX_C_SOURCE 200809L
#include "hma_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/ingest.h"

/* HMA's 404 for a path its routing does not know (an id that is not a
 * number): werkzeug's text. */
#define NOT_FOUND_TEXT "The requested URL was not found on the server. If you entered the URL " \
                       "manually please check your spelling and try again."

/* The bank of the path, as HMA looks it up: 0 after replying 404 with
 * HMA's message (fmt takes the name). */
static int path_bank(pdqm_server *s, struct MHD_Connection *c, const char *name,
                     pdqm_bank_info *b, const char *fmt, enum MHD_Result *result)
{
    pdqm_error err;
    pdqm_status st = pdqm_store_bank_get(s->store, name, b, &err);
    if (st == PDQM_OK)
        return 1;
    if (st == PDQM_ERR_NOT_FOUND || st == PDQM_ERR_INVALID)
        *result = reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", fmt, name);
    else
        *result = reply_status(c, st, &err);
    return 0;
}

/* The content id of the path: HMA's <int:...>; 0 after replying 404. */
static int path_number(struct MHD_Connection *c, const char *text, uint32_t *out,
                       enum MHD_Result *result)
{
    long v = pdqm_arg_long(text, 0, UINT32_MAX);
    if (v < 0 || text[0] == '+' || text[0] == '-') {
        *result = reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "%s", NOT_FOUND_TEXT);
        return 0;
    }
    *out = (uint32_t)v;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Banks                                                                */

enum MHD_Result hma_get_banks(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    (void)rq;
    pdqm_bank_info *banks;
    size_t n;
    pdqm_error err;
    pdqm_status st = pdqm_store_bank_list(s->store, &banks, &n, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, hma_bank_json(&banks[i]));
    free(banks);
    return reply_json(c, MHD_HTTP_OK, list);
}

/* pydantic's lax float: a number or a numeric string.  1 and *out; 0
 * after replying 422; -1 for null. */
static int body_float(struct MHD_Connection *c, const char *field, json_t *v, double *out,
                      enum MHD_Result *result)
{
    if (v == NULL || json_is_null(v))
        return -1;
    if (json_is_number(v) && !json_is_true(v) && !json_is_false(v)) {
        *out = json_number_value(v);
        return 1;
    }
    const char *text = json_string_value(v);
    if (text) {
        char *end;
        errno = 0;
        double d = strtod(text, &end);
        while (*end == ' ')
            end++;
        if (end != text && *end == '\0' && !errno) {
            if (!isfinite(d)) {
                *result = hma_reply_invalid(c, field, "finite_number",
                                            "Input should be a finite number", json_incref(v));
                return 0;
            }
            *out = d;
            return 1;
        }
        *result = hma_reply_invalid(c, field, "float_parsing",
                                    "Input should be a valid number, unable to parse string as "
                                    "a number", json_incref(v));
        return 0;
    }
    if (json_is_boolean(v)) {   /* pydantic takes a bool as 0 or 1 */
        *out = json_is_true(v);
        return 1;
    }
    *result = hma_reply_invalid(c, field, "float_type", "Input should be a valid number",
                                json_incref(v));
    return 0;
}

/* pydantic's lax bool: 1 and *out; 0 after replying 422; -1 for null. */
static int body_bool(struct MHD_Connection *c, const char *field, json_t *v, int *out,
                     enum MHD_Result *result)
{
    if (v == NULL || json_is_null(v))
        return -1;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 1;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = (int)json_integer_value(v);
        return 1;
    }
    const char *text = json_string_value(v);
    if (text && hma_parse_bool(text, out))
        return 1;
    *result = hma_reply_invalid(c, field, text ? "bool_parsing" : "bool_type",
                                text ? "Input should be a valid boolean, unable to interpret "
                                       "input" : "Input should be a valid boolean",
                                json_incref(v));
    return 0;
}

/* HMA takes any ratio; the store keeps 0 to 1. */
static double clamp_ratio(double r)
{
    return r < 0 ? 0 : r > 1 ? 1 : r;
}

enum MHD_Result hma_post_banks(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    json_t *j = hma_body(rq);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    enum MHD_Result result;
    json_t *name_v = json_object_get(j, "name");
    if (name_v == NULL) {
        static const char *const need[] = { "name" };
        return hma_reply_missing(c, need, 1, j);
    }
    const char *name = json_string_value(name_v);
    if (name == NULL) {
        result = hma_reply_invalid(c, "name", "string_type", "Input should be a valid string",
                                   json_incref(name_v));
        json_decref(j);
        return result;
    }
    /* enabled_ratio defaults to 1.0: `enabled` counts only when the ratio
     * is sent as null (HMA's own model). */
    double ratio = 1.0;
    int enabled = 1, has_ratio_key = json_object_get(j, "enabled_ratio") != NULL;
    int r = body_float(c, "enabled_ratio", json_object_get(j, "enabled_ratio"), &ratio, &result);
    int e = r ? body_bool(c, "enabled", json_object_get(j, "enabled"), &enabled, &result) : 0;
    if (r == 0 || e == 0) {
        json_decref(j);
        return result;
    }
    if (r < 0)
        ratio = has_ratio_key && e > 0 ? (enabled ? 1.0 : 0.0) : 1.0;
    pdqm_error err;
    pdqm_status st = pdqm_hma_bank_name_check(name, &err);
    uint64_t seq = 0;
    if (st == PDQM_OK)
        st = pdqm_write_bank_create(&s->writer, name, PDQM_DEFAULT_THRESHOLD, PDQM_BANK_BLOCK,
                                    clamp_ratio(ratio), 0, &seq, &err);
    if (st == PDQM_ERR_EXISTS)
        result = reply_error(c, MHD_HTTP_FORBIDDEN, "exists", "Bank already exists");
    else if (st != PDQM_OK)
        result = reply_status(c, st, &err);
    else {
        pdqm_bank_info b;
        st = pdqm_store_bank_get(s->store, name, &b, &err);
        result = st == PDQM_OK ? reply_json(c, MHD_HTTP_CREATED, hma_bank_json(&b))
                               : reply_status(c, st, &err);
    }
    json_decref(j);
    return result;
}

enum MHD_Result hma_get_bank(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_bank_info b;
    enum MHD_Result result;
    if (!path_bank(s, c, rq->param[0], &b, "bank '%s' not found", &result))
        return result;
    return reply_json(c, MHD_HTTP_OK, hma_bank_json(&b));
}

enum MHD_Result hma_put_bank(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_bank_info b;
    enum MHD_Result result;
    if (!path_bank(s, c, rq->param[0], &b, "Bank not found", &result))
        return result;
    json_t *j = hma_body(rq);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    json_t *name_v = json_object_get(j, "name");
    const char *rename = NULL;
    if (name_v && !json_is_null(name_v) && (rename = json_string_value(name_v)) == NULL) {
        result = hma_reply_invalid(c, "name", "string_type", "Input should be a valid string",
                                   json_incref(name_v));
        json_decref(j);
        return result;
    }
    double ratio = -1;
    int enabled;
    int e = body_bool(c, "enabled", json_object_get(j, "enabled"), &enabled, &result);
    int r = e ? body_float(c, "enabled_ratio", json_object_get(j, "enabled_ratio"), &ratio,
                           &result) : 0;
    if (e == 0 || r == 0) {
        json_decref(j);
        return result;
    }
    pdqm_bank_changes ch = PDQM_BANK_UNCHANGED;
    if (e > 0)
        ch.enabled_ratio = enabled ? 1 : 0;
    if (r > 0)
        ch.enabled_ratio = clamp_ratio(ratio);
    pdqm_error err;
    pdqm_status st = PDQM_OK;
    if (rename && strcmp(rename, b.name) != 0) {
        st = pdqm_hma_bank_name_check(rename, &err);
        ch.rename = rename;
    }
    uint64_t seq;
    if (st == PDQM_OK)
        st = pdqm_write_bank_change(&s->writer, b.name, &ch, &seq, &err);
    if (st == PDQM_ERR_EXISTS)
        result = reply_error(c, MHD_HTTP_FORBIDDEN, "exists", "Bank name already exists");
    else if (st != PDQM_OK)
        result = reply_status(c, st, &err);
    else {
        char now_named[PDQM_BANK_NAME_MAX + 1];
        snprintf(now_named, sizeof now_named, "%s", ch.rename ? ch.rename : b.name);
        st = pdqm_store_bank_get(s->store, now_named, &b, &err);
        result = st == PDQM_OK ? reply_json(c, MHD_HTTP_OK, hma_bank_json(&b))
                               : reply_status(c, st, &err);
    }
    json_decref(j);
    return result;
}

enum MHD_Result hma_delete_bank(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_error err;
    uint64_t seq;
    pdqm_status st = pdqm_write_bank_delete(&s->writer, rq->param[0], &seq, &err);
    /* "Done", even when there was no such bank (HMA's). */
    if (st != PDQM_OK && st != PDQM_ERR_NOT_FOUND && st != PDQM_ERR_INVALID)
        return reply_status(c, st, &err);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "message", "Done"));
}

/* ------------------------------------------------------------------ */
/* Content                                                              */

/* HMA's note rule: a falsy note is none, else a string of at most 255
 * characters.  1 with *out (borrowed from v, NULL for none); 0 after
 * replying 400. */
static int note_of(struct MHD_Connection *c, json_t *v, const char **out,
                   enum MHD_Result *result)
{
    *out = NULL;
    if (v == NULL || json_is_null(v) || json_is_false(v) ||
        (json_is_integer(v) && json_integer_value(v) == 0) ||
        (json_is_real(v) && json_real_value(v) == 0) ||
        (json_is_string(v) && json_string_length(v) == 0) ||
        (json_is_array(v) && json_array_size(v) == 0) ||
        (json_is_object(v) && json_object_size(v) == 0))
        return 1;
    const char *note = json_string_value(v);
    pdqm_error err;
    if (note == NULL) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "note should be a string");
        return 0;
    }
    if (pdqm_note_check(note, &err) != PDQM_OK) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                              "note must be at most 255 characters");
        return 0;
    }
    *out = note;
    return 1;
}

/* HMA's metadata of an add ({content_id, content_uri, json}, checked as
 * HMA's model does): 1 with *text the JSON to store (malloc'd, NULL for
 * none); 0 after replying 400. */
static int metadata_of(struct MHD_Connection *c, json_t *m, char **text,
                       enum MHD_Result *result)
{
    *text = NULL;
    if (m == NULL || json_is_null(m))
        return 1;
    if (!json_is_object(m)) {
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                              "metadata should be a json object");
        return 0;
    }
    json_t *keep = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        const char *field = strcmp(key, "json_data") == 0 ? "json" : key;
        const char *why = NULL;
        if (strcmp(key, "collab") == 0)
            continue;   /* HMA drops it */
        if (strcmp(field, "content_id") == 0 || strcmp(field, "content_uri") == 0)
            why = json_is_string(v) || json_is_null(v) ? NULL : "Input should be a valid string";
        else if (strcmp(field, "json") == 0)
            why = json_is_object(v) || json_is_null(v) ? NULL
                                                        : "Input should be a valid dictionary";
        else
            why = "Extra inputs are not permitted";
        if (why) {
            json_decref(keep);
            *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                  "Invalid metadata: 1 validation error for "
                                  "BankedContentMetadata\n%s\n  %s", key, why);
            return 0;
        }
        if (!json_is_null(v))
            json_object_set(keep, field, v);
    }
    if (json_object_size(keep) > 0)
        *text = json_dumps(keep, JSON_COMPACT);
    json_decref(keep);
    if (*text && strlen(*text) > PDQM_METADATA_MAX) {
        free(*text);
        *text = NULL;
        *result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                              "metadata is at most %d bytes of JSON here", PDQM_METADATA_MAX);
        return 0;
    }
    return 1;
}

/* The item's content id is its number: added through HMA's routes. */
static int named_by_number(const pdqm_content_info *info)
{
    char n[16];
    snprintf(n, sizeof n, "%u", info->number);
    return strncmp(info->content_id, n, strlen(n)) == 0 &&
           (info->content_id[strlen(n)] == '\0' || info->content_id[strlen(n)] == '.');
}

/* HMA's user metadata of an item (a new object, or NULL for none): what an
 * add through HMA stored; for an item added through pdqmatch, its content
 * id and metadata. */
static json_t *user_metadata(const pdqm_content_info *info)
{
    json_t *m = info->metadata ? json_loads(info->metadata, JSON_DECODE_ANY, NULL) : NULL;
    if (named_by_number(info)) {
        if (json_is_object(m))
            return m;
        json_decref(m);
        return NULL;
    }
    json_t *out = json_pack("{s:s}", "content_id", info->content_id);
    if (json_is_object(m))
        json_object_set(out, "json", m);
    json_decref(m);
    return out;
}

/* The item's signals: pdq for an image or a hash-list item, video_md5 and
 * vpdq for a video. */
static json_t *signals_of(const pdqm_content_info *info, const pdqm_stored_hash *hashes,
                          size_t n)
{
    json_t *sig = json_object();
    if (info->kind != PDQM_CONTENT_VIDEO) {
        if (n > 0) {
            char hex[PDQM_HASH_HEX_LEN + 1];
            pdqm_hash256_to_hex(&hashes[0].hash, hex);
            json_object_set_new(sig, "pdq", json_string(hex));
        }
        return sig;
    }
    if (info->md5[0])
        json_object_set_new(sig, "video_md5", json_string(info->md5));
    if (n > 0) {
        char *text = pdqm_hma_vpdq_text(hashes, n);
        if (text)
            json_object_set_new(sig, "vpdq", json_string(text));
        free(text);
    }
    return sig;
}

/* The item numbered number in bank: 1 with *info and its hashes (the
 * caller clears and frees them); 0 after replying 404 with HMA's
 * message. */
static int content_in_bank(pdqm_server *s, struct MHD_Connection *c, const char *bank,
                           uint32_t number, pdqm_content_info *info, pdqm_stored_hash **hashes,
                           size_t *n, enum MHD_Result *result)
{
    pdqm_error err;
    pdqm_status st = pdqm_store_content_by_number(s->store, number, info, hashes, n, &err);
    if (st == PDQM_OK && strcmp(info->bank, bank) != 0) {
        pdqm_content_info_clear(info);
        free(*hashes);
        st = PDQM_ERR_NOT_FOUND;
    }
    if (st == PDQM_ERR_NOT_FOUND) {
        *result = reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "content '%u' not found",
                              number);
        return 0;
    }
    if (st != PDQM_OK) {
        *result = reply_status(c, st, &err);
        return 0;
    }
    return 1;
}

enum MHD_Result hma_get_content(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_bank_info b;
    uint32_t number;
    enum MHD_Result result;
    if (!path_number(c, rq->param[1], &number, &result) ||
        !path_bank(s, c, rq->param[0], &b, "bank '%s' not found", &result))
        return result;
    const char *is = hma_arg(c, "include_signals"), *im = hma_arg(c, "include_metadata");
    int with_signals = is && strcasecmp(is, "true") == 0;
    int with_metadata = im == NULL || strcasecmp(im, "true") == 0;
    pdqm_content_info info;
    pdqm_stored_hash *hashes;
    size_t n;
    if (!content_in_bank(s, c, b.name, number, &info, &hashes, &n, &result))
        return result;
    json_t *j = json_pack("{s:I,s:I,s:n,s:o}", "id", (json_int_t)number, "disable_until_ts",
                          (json_int_t)pdqm_hma_disable_from_store(info.disabled_until),
                          "original_media_uri", "bank", hma_bank_json(&b));
    if (with_signals)
        json_object_set_new(j, "signals", signals_of(&info, hashes, n));
    json_t *um = with_metadata ? user_metadata(&info) : NULL;
    if (um) {
        json_t *m = json_pack("{s:O,s:O,s:O,s:n}", "content_id",
                              json_object_get(um, "content_id") ? json_object_get(um, "content_id")
                                                                : json_null(),
                              "content_uri",
                              json_object_get(um, "content_uri") ? json_object_get(um, "content_uri")
                                                                 : json_null(),
                              "json", json_object_get(um, "json") ? json_object_get(um, "json")
                                                                  : json_null(),
                              "collab");
        json_object_set_new(j, "metadata", m);
        json_decref(um);
    }
    if (info.note)
        json_object_set_new(j, "note", json_string(info.note));
    pdqm_content_info_clear(&info);
    free(hashes);
    return reply_json(c, MHD_HTTP_OK, j);
}

/* The item as HMA's PUT answers it: its dataclass, whole. */
static json_t *content_record(const pdqm_bank_info *b, uint32_t number,
                              const pdqm_content_info *info)
{
    json_t *um = user_metadata(info);
    return json_pack("{s:I,s:I,s:{},s:n,s:o,s:o,s:o}", "id", (json_int_t)number,
                     "disable_until_ts",
                     (json_int_t)pdqm_hma_disable_from_store(info->disabled_until),
                     "collab_metadata", "original_media_uri", "bank", hma_bank_json(b),
                     "user_metadata", um ? um : json_null(),
                     "note", info->note ? json_string(info->note) : json_null());
}

/* Python's int() of a JSON value: 1 and *out, else 0. */
static int python_int(json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 1;
    }
    if (json_is_real(v) && isfinite(json_real_value(v)) && fabs(json_real_value(v)) < 9e18) {
        *out = (long long)json_real_value(v);   /* int() truncates */
        return 1;
    }
    const char *t = json_string_value(v);
    if (t) {
        char *end;
        errno = 0;
        long long x = strtoll(t, &end, 10);
        while (*end == ' ')
            end++;
        if (end != t && *end == '\0' && !errno) {
            *out = x;
            return 1;
        }
    }
    return 0;
}

enum MHD_Result hma_put_content(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_bank_info b;
    uint32_t number;
    enum MHD_Result result;
    if (!path_number(c, rq->param[1], &number, &result) ||
        !path_bank(s, c, rq->param[0], &b, "bank '%s' not found", &result))
        return result;
    pdqm_content_info info;
    pdqm_stored_hash *hashes;
    size_t n;
    if (!content_in_bank(s, c, b.name, number, &info, &hashes, &n, &result))
        return result;
    free(hashes);
    pdqm_content_info_clear(&info);
    json_t *j = hma_body(rq);
    if (!json_is_object(j)) {
        json_decref(j);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "Failed to decode JSON object: send a JSON object");
    }
    pdqm_content_changes ch = { 0, 0, 0, NULL };
    json_t *d = json_object_get(j, "disable_until_ts");
    if (d) {
        long long ts;
        /* At most five years ahead (HMA's rule, from its clock). */
        long long limit = (long long)time(NULL) + 5LL * 365 * 86400;
        if (!python_int(d, &ts)) {
            char *given = json_dumps(d, JSON_ENCODE_ANY);
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Invalid int: '%s'",
                                 json_string_value(d) ? json_string_value(d)
                                                      : given ? given : "?");
            free(given);
            json_decref(j);
            return result;
        }
        if (ts < 0 || ts > limit) {
            json_decref(j);
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "%s",
                               ts < 0 ? "disable_until_ts must be a non-negative integer"
                                      : "disable_until_ts must be less than 5 years in the "
                                        "future");
        }
        ch.set_disabled = 1;
        ch.disabled_until = pdqm_hma_disable_to_store(ts);
    }
    if (json_object_get(j, "note")) {
        if (!note_of(c, json_object_get(j, "note"), &ch.note, &result)) {
            json_decref(j);
            return result;
        }
        ch.set_note = 1;
    }
    pdqm_error err;
    uint64_t seq;
    pdqm_status st = ch.set_disabled || ch.set_note
                         ? pdqm_write_content_change(&s->writer, b.name, number, &ch, &seq, &err)
                         : PDQM_OK;
    json_decref(j);
    if (st == PDQM_OK &&
        (st = pdqm_store_content_by_number(s->store, number, &info, &hashes, &n, &err)) ==
            PDQM_OK) {
        free(hashes);
        result = reply_json(c, MHD_HTTP_OK, content_record(&b, number, &info));
        pdqm_content_info_clear(&info);
        return result;
    }
    if (st == PDQM_ERR_NOT_FOUND)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "content '%u' not found", number);
    return reply_status(c, st, &err);
}

enum MHD_Result hma_delete_content(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_bank_info b;
    uint32_t number;
    enum MHD_Result result;
    if (!path_number(c, rq->param[1], &number, &result) ||
        !path_bank(s, c, rq->param[0], &b, "bank '%s' not found", &result))
        return result;
    pdqm_error err;
    uint64_t seq;
    int deleted = 0;
    pdqm_status st = pdqm_write_delete_number(&s->writer, b.name, number, &deleted, &seq, &err);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:i}", "deleted", deleted));
}

/* ------------------------------------------------------------------ */
/* Adding                                                               */

/* Store one item of HMA's signals in bank: a photo's or a hash's pdq, or
 * a video's MD5 and frames (those of quality, as a vPDQ list is taken).
 * Answers {"id", "signals"}. */
static enum MHD_Result store_signals(pdqm_server *s, struct MHD_Connection *c, const char *bank,
                                     json_t *signals, const pdqm_stored_hash *frames,
                                     size_t n_frames, const char *sha256, pdqm_content_kind kind,
                                     const char *metadata, const char *note)
{
    pdqm_stored_hash one;
    const pdqm_stored_hash *hashes = NULL;
    size_t n = 0;
    pdqm_error err;
    const char *pdq = json_string_value(json_object_get(signals, "pdq"));
    const char *md5 = json_string_value(json_object_get(signals, "video_md5"));
    pdqm_stored_hash *kept = NULL;
    if (pdq) {
        if (pdqm_hma_pdq_parse(pdq, &one.hash, &err) != PDQM_OK)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Invalid pdq signal: %s",
                               err.message);
        /* A degenerate hash (a blank image) would match every blank upload:
         * refused, as everywhere in pdqmatch. */
        if (pdqm_hash_check(&one.hash, -1, &err) != PDQM_OK)
            return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "Invalid pdq signal: %s",
                               err.message);
        one.quality = 100;
        one.timestamp = 0;
        hashes = &one;
        n = 1;
    } else if (n_frames > 0) {
        /* As a vPDQ list is taken: frames of quality, exact repeats once. */
        pdqm_video_frame *vf = calloc(n_frames, sizeof *vf);
        kept = malloc(n_frames * sizeof *kept);
        if (vf == NULL || kept == NULL) {
            free(vf);
            free(kept);
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "nomem", "out of memory");
        }
        for (size_t i = 0; i < n_frames; i++) {
            vf[i].frame = (uint32_t)i;
            vf[i].timestamp = frames[i].timestamp;
            vf[i].hash = frames[i].hash;
            vf[i].quality = frames[i].quality;
        }
        pdqm_frame_rule rule;
        pdqm_frame_rule_default(&rule);
        pdqm_frame_rule_as_listed(&rule);
        n = pdqm_frames_select(&rule, vf, n_frames, kept);
        free(vf);
        hashes = kept;
    }
    if (n == 0 && md5 == NULL) {
        free(kept);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "No signals given: no frame of the video has quality 50 or more");
    }
    uint32_t number = 0;
    pdqm_add add = { .bank = bank, .content_id = NULL, .metadata = metadata, .sha256 = sha256,
                     .md5 = md5, .kind = kind, .hashes = hashes, .n_hashes = n, .note = note,
                     .number = &number };
    pdqm_add_outcome outcome;
    uint64_t seq;
    pdqm_status st = pdqm_write_add(&s->writer, &add, 1, 0, 0, &outcome, &seq, &err);
    free(kept);
    if (st != PDQM_OK)
        return reply_status(c, st, &err);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:I,s:O}", "id", (json_int_t)number,
                                                "signals", signals));
}

enum MHD_Result hma_post_signal(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_bank_info b;
    enum MHD_Result result;
    if (!path_bank(s, c, rq->param[0], &b, "bank '%s' not found", &result))
        return result;
    json_t *j = hma_body(rq);
    if (!json_is_object(j)) {
        json_decref(j);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                           "Failed to decode JSON object: send a JSON object of signals");
    }
    const char *note = NULL;
    if (!note_of(c, json_object_get(j, "note"), &note, &result)) {
        json_decref(j);
        return result;
    }
    char *note_copy = note ? strdup(note) : NULL;
    json_object_del(j, "note");
    json_t *signals = json_object();
    pdqm_stored_hash *frames = NULL;
    size_t n_frames = 0;
    int video = 0;
    const char *name;
    json_t *v;
    result = MHD_YES;
    int failed = 0;
    if (json_object_size(j) == 0) {
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "No signals given");
        failed = 1;
    }
    json_object_foreach(j, name, v) {
        if (failed)
            break;
        int type = pdqm_hma_signal_parse(name);
        const char *text = json_string_value(v);
        pdqm_error err;
        char md5[33];
        pdqm_hash256 h;
        if (type < 0) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "No such signal type %s",
                                 name);
            failed = 1;
        } else if (text == NULL) {
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                 "Invalid %s signal: a signal is a string", name);
            failed = 1;
        } else if (type == PDQM_HMA_PDQ) {
            if (pdqm_hma_pdq_parse(text, &h, &err) != PDQM_OK) {
                result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                     "Invalid pdq signal: %s", err.message);
                failed = 1;
            } else {
                json_object_set_new(signals, "pdq", json_string(text));
            }
        } else if (type == PDQM_HMA_VIDEO_MD5) {
            if (pdqm_hma_md5_parse(text, md5, &err) != PDQM_OK) {
                result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                     "Invalid video_md5 signal: %s", err.message);
                failed = 1;
            } else {
                json_object_set_new(signals, "video_md5", json_string(md5));
                video = 1;
            }
        } else {
            free(frames);
            frames = NULL;
            if (pdqm_hma_vpdq_parse(text, strlen(text), PDQM_MAX_HASHES_PER_CONTENT, &frames,
                                    &n_frames, &err) != PDQM_OK) {
                result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                     "Invalid vpdq signal: %s", err.message);
                failed = 1;
            } else {
                json_object_set_new(signals, "vpdq", json_string(text));
                video = 1;
            }
        }
    }
    if (!failed && video && json_object_get(signals, "pdq")) {
        /* One item is an image or a video here, never both. */
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                             "a pdq signal and a video's signals are not one item here: add "
                             "them one at a time");
        failed = 1;
    }
    if (!failed)
        result = store_signals(s, c, b.name, signals, frames, n_frames, NULL,
                               video ? PDQM_CONTENT_VIDEO : PDQM_CONTENT_HASHES, NULL,
                               note_copy);
    free(frames);
    free(note_copy);
    json_decref(signals);
    json_decref(j);
    return result;
}

enum MHD_Result hma_post_content(pdqm_server *s, struct MHD_Connection *c, request *rq)
{
    pdqm_bank_info b;
    enum MHD_Result result;
    if (!path_bank(s, c, rq->param[0], &b, "bank '%s' not found", &result))
        return result;
    /* Metadata and note: from a JSON body, or the form's fields. */
    json_t *body = rq->form ? NULL : hma_body(rq);
    json_t *meta = NULL, *note_v = NULL;
    if (json_is_object(body)) {
        meta = json_incref(json_object_get(body, "metadata"));
        note_v = json_incref(json_object_get(body, "note"));
    } else if (rq->form) {
        if (rq->form_text[0]) {
            meta = json_loads(rq->form_text[0], JSON_DECODE_ANY, NULL);
            if (meta == NULL) {
                json_decref(body);
                return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                   "metadata form field must be valid JSON");
            }
        }
        if (rq->form_text[1])
            note_v = json_string(rq->form_text[1]);
    }
    json_decref(body);
    char *metadata = NULL;
    const char *note = NULL;
    int ok = metadata_of(c, meta, &metadata, &result) && note_of(c, note_v, &note, &result);
    char *note_copy = ok && note ? strdup(note) : NULL;
    json_decref(meta);
    json_decref(note_v);
    if (!ok)
        return result;
    const char *url = hma_arg(c, "url");
    const uint8_t *data;
    size_t size;
    const char *content_type;
    pdqm_fetched fetched = { 0 };
    json_t *signals = NULL;
    pdqm_stored_hash *frames = NULL;
    size_t n_frames = 0;
    char sha256[65] = "";
    if (!url && (!rq->form || rq->file_fields == 0))
        result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                             "Neither `url` nor multipart file upload was received");
    else if (hma_media_of(s, c, rq, url, hma_arg(c, "content_type"), &data, &size,
                          &content_type, &fetched, &result) &&
             hma_hash_media(s, c, data, size, content_type, hma_arg(c, "types"), &signals,
                            &frames, &n_frames, sha256, &result)) {
        int video = strcmp(content_type, "video") == 0;
        const char *pdq = json_string_value(json_object_get(signals, "pdq"));
        if (!video && (pdq == NULL || pdq[0] == '\0'))
            /* A photo of quality under 50 hashes to "": HMA's refusal. */
            result = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid",
                                 json_object_size(signals) ? "Invalid pdq signal: invalid PDQ hash"
                                                           : "No signals given");
        else
            result = store_signals(s, c, b.name, signals, frames, n_frames,
                                   sha256[0] ? sha256 : NULL,
                                   video ? PDQM_CONTENT_VIDEO : PDQM_CONTENT_IMAGE, metadata,
                                   note_copy);
    }
    pdqm_fetched_free(&fetched);
    json_decref(signals);
    free(frames);
    free(metadata);
    free(note_copy);
    return result;
}
