/*
 * ingest.c - content ids, degenerate hashes, video frame selection and
 * the names of kinds (see ingest.h).  Hash lists are in list.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "ingest.h"
#include "../hashing/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7F;
}

pdqm_status pdqm_content_id_check(const char *id, pdqm_error *err)
{
    size_t len = strlen(id);
    if (len == 0 || len > PDQM_CONTENT_ID_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a content id is 1 to %d bytes",
                              PDQM_CONTENT_ID_MAX);
    const unsigned char *p = (const unsigned char *)id;
    while (*p) {
        size_t n = pdqm_utf8_sequence(p);
        if (n == 0)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "a content id must be UTF-8");
        if (n == 1 && is_control(*p))
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "a content id holds no control characters");
        p += n;
    }
    for (const char *d = id; (d = strstr(d, "..")) != NULL; d += 2)
        if ((d == id || d[-1] == '/' || d[-1] == '\\') &&
            (d[2] == '\0' || d[2] == '/' || d[2] == '\\'))
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "a content id holds no '..' path segment");
    return PDQM_OK;
}

pdqm_status pdqm_content_id_from_name(const char *name, char **out, pdqm_error *err)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(name);
    char *id = malloc(3 * len + 1);
    if (id == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    const unsigned char *p = (const unsigned char *)name;
    char *w = id;
    while (*p) {
        size_t n = pdqm_utf8_sequence(p);
        if (n == 0 || *p == '%' || (n == 1 && is_control(*p))) {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
            p++;
            continue;
        }
        memcpy(w, p, n);
        w += n;
        p += n;
    }
    *w = '\0';
    pdqm_status st = pdqm_content_id_check(id, err);
    if (st != PDQM_OK) {
        free(id);
        return st;
    }
    *out = id;
    return PDQM_OK;
}

pdqm_status pdqm_metadata_check(const char *text, pdqm_error *err)
{
    size_t len = strlen(text);
    if (len > PDQM_METADATA_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "metadata is at most %d bytes of JSON",
                              PDQM_METADATA_MAX);
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "metadata is not valid JSON: %s", je.text);
    json_decref(j);
    return PDQM_OK;
}

pdqm_status pdqm_hash_check(const pdqm_hash256 *hash, int quality, pdqm_error *err)
{
    if (quality == 0)
        return pdqm_error_set(err, PDQM_ERR_DEGENERATE,
                              "a hash of quality 0 (a blank or flat image) matches "
                              "nothing it resembles");
    int w = pdqm_hash256_weight(hash);
    if (w < PDQM_MIN_HASH_WEIGHT)
        return pdqm_error_set(err, PDQM_ERR_DEGENERATE,
                              "a hash with %d bits set (fewer than %d: a blank image, or "
                              "a hasher's error value) matches nothing it resembles",
                              w, PDQM_MIN_HASH_WEIGHT);
    return PDQM_OK;
}

void pdqm_frame_rule_default(pdqm_frame_rule *rule)
{
    rule->interval = PDQM_STORE_INTERVAL;
    rule->min_quality = PDQM_DEFAULT_MIN_QUALITY;
    rule->prune_distance = PDQM_STORE_PRUNE_DISTANCE;
    rule->max_per_second = PDQM_STORE_MAX_PER_SECOND;
}

void pdqm_frame_rule_as_listed(pdqm_frame_rule *rule)
{
    rule->prune_distance = 0;
    rule->max_per_second = 0;
}

/* Frames [from, to) of f kept by pruning at distance d after last (NULL:
 * none kept yet), into out; returns how many. */
static size_t prune(const pdqm_frame_rule *rule, const pdqm_video_frame *f, size_t from,
                    size_t to, int d, const pdqm_hash256 *last, pdqm_stored_hash *out)
{
    size_t kept = 0;
    for (size_t i = from; i < to; i++) {
        if (f[i].quality < rule->min_quality ||
            pdqm_hash_check(&f[i].hash, f[i].quality, NULL) != PDQM_OK)
            continue;
        if (last && pdqm_hash256_distance(last, &f[i].hash) <= d)
            continue;
        out[kept++] = (pdqm_stored_hash){ f[i].hash, f[i].quality, f[i].timestamp };
        last = &f[i].hash;
    }
    return kept;
}

size_t pdqm_frames_select(const pdqm_frame_rule *rule, const pdqm_video_frame *f, size_t n,
                          pdqm_stored_hash *out)
{
    if (rule->max_per_second <= 0)
        return prune(rule, f, 0, n, rule->prune_distance, NULL, out);
    /* A second at a time (by timestamp): pruned at the rule's distance,
     * then at a distance raised 2 bits at a time until the second keeps
     * no more than the cap.  At PDQM_HASH_BITS nothing after the first is
     * kept, so the raising ends. */
    size_t kept = 0;
    for (size_t i = 0; i < n;) {
        double second = floor(f[i].timestamp);
        size_t end = i + 1;
        while (end < n && floor(f[end].timestamp) == second)
            end++;
        const pdqm_hash256 *last = kept ? &out[kept - 1].hash : NULL;
        size_t k;
        for (int d = rule->prune_distance;; d += 2) {
            k = prune(rule, f, i, end, d, last, out + kept);
            if (k <= (size_t)rule->max_per_second || d >= PDQM_HASH_BITS)
                break;
        }
        kept += k;
        i = end;
    }
    return kept;
}

pdqm_status pdqm_ingest_add(pdqm_store *store, const pdqm_add *adds, size_t n, int deferred,
                            pdqm_add_outcome *outcomes, pdqm_error *err)
{
    const char *last = NULL;   /* items come grouped by bank: ask once a run */
    for (size_t i = 0; i < n; i++) {
        if (last && strcmp(last, adds[i].bank) == 0)
            continue;
        last = adds[i].bank;
        pdqm_bank_info info;
        pdqm_status st = pdqm_store_bank_get(store, last, &info, err);
        if (st == PDQM_ERR_NOT_FOUND) {
            st = pdqm_store_bank_create(store, last, PDQM_DEFAULT_THRESHOLD, PDQM_BANK_BLOCK,
                                        err);
            if (st == PDQM_ERR_EXISTS)   /* another writer made it meanwhile */
                st = PDQM_OK;
        }
        if (st != PDQM_OK)
            return st;
    }
    return deferred ? pdqm_store_add_deferred(store, adds, n, outcomes, err)
                    : pdqm_store_add(store, adds, n, outcomes, err);
}

const char *pdqm_bank_kind_name(pdqm_bank_kind kind)
{
    return kind == PDQM_BANK_ALLOW ? "allow" : "block";
}

int pdqm_bank_kind_parse(const char *name)
{
    if (strcmp(name, "block") == 0)
        return PDQM_BANK_BLOCK;
    if (strcmp(name, "allow") == 0)
        return PDQM_BANK_ALLOW;
    return -1;
}

const char *pdqm_content_kind_name(pdqm_content_kind kind)
{
    return kind == PDQM_CONTENT_IMAGE ? "image" : kind == PDQM_CONTENT_VIDEO ? "video" : "hashes";
}

int pdqm_content_kind_parse(const char *name)
{
    static const char *const names[] = { "hashes", "image", "video" };
    for (int i = 0; i < 3; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}
