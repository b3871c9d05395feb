/*
 * policy.c - the match policy (see policy.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

#define REASON_MAX PDQM_ERROR_MESSAGE_MAX

void pdqm_policy_options_default(pdqm_policy_options *o)
{
    o->max_distance = -1;
    o->banks = NULL;
    o->n_banks = 0;
    o->min_quality = PDQM_DEFAULT_MIN_QUALITY;
    o->draw = PDQM_DRAW_RANDOM;
    o->flags = 0;
}


pdqm_status pdqm_policy_check_banks(const char *const *banks, size_t n_banks,
                                    pdqm_error *err)
{
    if (banks != NULL && n_banks == 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "the bank filter names no bank: leave it out to search every bank");
    for (size_t i = 0; banks && i < n_banks; i++)
        if (banks[i] == NULL || banks[i][0] == '\0')
            return pdqm_error_set(err, PDQM_ERR_INVALID, "the bank filter holds an empty name");
    return PDQM_OK;
}

void pdqm_policy_result_free(pdqm_policy_result *r)
{
    if (r == NULL)
        return;
    free(r->queries);
    free(r->answers_);
    free(r->reasons_);
    pdqm_matches_free(&r->matches_);
    memset(r, 0, sizeof *r);
}

static int answer_order(const void *pa, const void *pb)
{
    const pdqm_answer *a = pa, *b = pb;
    if (a->match->distance != b->match->distance)
        return a->match->distance < b->match->distance ? -1 : 1;
    return (a->match->entry > b->match->entry) - (a->match->entry < b->match->entry);
}

static int by_entry(const void *pa, const void *pb)
{
    const pdqm_answer *a = pa, *b = pb;
    if (a->match->entry != b->match->entry)
        return a->match->entry < b->match->entry ? -1 : 1;
    if (a->match->distance != b->match->distance)
        return a->match->distance < b->match->distance ? -1 : 1;
    return a->orientation - b->orientation;
}

pdqm_status pdqm_policy_lookup(pdqm_store *store, const pdqm_query *queries, size_t n,
                               const pdqm_policy_options *o, pdqm_policy_result *out,
                               pdqm_error *err)
{
    pdqm_status st = pdqm_policy_check_banks(o->banks, o->n_banks, err);
    if (st != PDQM_OK)
        return st;
    pdqm_policy_result r;
    memset(&r, 0, sizeof r);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += queries[i].n;
    pdqm_hash256 *hashes = malloc((total ? total : 1) * sizeof *hashes);
    size_t *owner = malloc((total ? total : 1) * sizeof *owner);
    int *orient = malloc((total ? total : 1) * sizeof *orient);
    r.queries = calloc(n ? n : 1, sizeof *r.queries);
    r.reasons_ = calloc(n ? n : 1, REASON_MAX);
    if (!hashes || !owner || !orient || !r.queries || !r.reasons_) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    r.n_queries = n;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const pdqm_query *q = &queries[i];
        char *why = r.reasons_ + i * REASON_MAX;
        pdqm_error qe;
        if (q->n == 0) {
            snprintf(why, REASON_MAX, "no hash to look up");
        } else if (pdqm_hash_check(&q->hashes[0], q->quality, &qe) != PDQM_OK) {
            snprintf(why, REASON_MAX, "%s", qe.message);
        } else if (q->quality >= 0 && q->quality < o->min_quality) {
            snprintf(why, REASON_MAX, "quality %d is below the minimum %d: PDQ hashes of "
                     "low quality match unreliably", q->quality, o->min_quality);
        } else {
            for (size_t d = 0; d < q->n; d++, k++) {
                hashes[k] = q->hashes[d];
                owner[k] = i;
                orient[k] = (int)d;
            }
            continue;
        }
        r.queries[i].not_matched = why;
    }
    pdqm_lookup_options lo = { o->max_distance, o->banks, o->n_banks, o->draw, o->flags };
    st = pdqm_store_lookup(store, hashes, k, &lo, &r.matches_, err);
    if (st != PDQM_OK)
        goto fail;
    r.store_matches = r.matches_.count;
    r.answers_ = malloc((r.matches_.count ? r.matches_.count : 1) * sizeof *r.answers_);
    if (r.answers_ == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* The store's matches come sorted by query hash: each query's are one
     * run (its orientations are consecutive hashes). */
    size_t m = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t first = w;
        while (m < r.matches_.count && owner[r.matches_.items[m].query] == i) {
            const pdqm_match *x = &r.matches_.items[m++];
            r.answers_[w++] = (pdqm_answer){ x, orient[x->query], 0 };
        }
        /* One answer per stored entry: its best orientation. */
        size_t cnt = w - first;
        pdqm_answer *a = r.answers_ + first;
        if (queries[i].n > 1 && cnt > 1) {
            qsort(a, cnt, sizeof *a, by_entry);
            size_t u = 0;
            for (size_t j = 0; j < cnt; j++)
                if (u == 0 || a[u - 1].match->entry != a[j].match->entry)
                    a[u++] = a[j];
            cnt = u;
            w = first + cnt;
        }
        qsort(a, cnt, sizeof *a, answer_order);
        int allowed = 0;
        for (size_t j = 0; j < cnt; j++)
            if (a[j].match->bank_kind == PDQM_BANK_ALLOW &&
                a[j].match->distance <= a[j].match->bank_threshold)
                allowed = 1;
        for (size_t j = 0; j < cnt; j++) {
            a[j].suppressed = allowed && a[j].match->bank_kind == PDQM_BANK_BLOCK;
            if (a[j].match->bank_kind == PDQM_BANK_BLOCK && !a[j].suppressed)
                r.flagged++;
        }
        r.queries[i].answers = a;
        r.queries[i].count = cnt;
        r.queries[i].allowed = allowed;
    }
    free(hashes);
    free(owner);
    free(orient);
    *out = r;
    return PDQM_OK;
fail:
    free(hashes);
    free(owner);
    free(orient);
    pdqm_policy_result_free(&r);
    return st;
}
