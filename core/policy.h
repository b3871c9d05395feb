/*
 * policy.h - the match policy: what a lookup answers, for every front end.
 *
 * The store finds every stored hash within a distance (index/store.h);
 * this decides what that means, once, for `pdqmatch lookup` and the
 * service alike:
 *   - thresholds: max_distance when given, else each bank's own;
 *   - bank filters: a filter that names no bank is an error, never a
 *     lookup of nothing;
 *   - queries that cannot match: a degenerate hash (ingest.h) or a known
 *     quality below min_quality is not looked up, and the answer says why;
 *   - dihedral queries (the 8 hashes of one image): one match per stored
 *     entry, at its best orientation;
 *   - allow banks: a query that an allow bank's entry matches within THAT
 *     bank's threshold (whatever max_distance says) is known-good; its
 *     block matches are still reported, flagged suppressed.
 * Video queries keep vPDQ's rule in index/match.h.
 */
#ifndef PDQM_POLICY_H
#define PDQM_POLICY_H

#include <stddef.h>

#include "../index/store.h"

typedef struct pdqm_policy_options {
    int max_distance;          /* 0..256, or -1 for each bank's threshold */
    const char *const *banks;  /* the filter; NULL: every bank */
    size_t n_banks;            /* with banks != NULL, 0 is an error */
    int min_quality;           /* queries of lower known quality are not
                                  looked up (PDQM_DEFAULT_MIN_QUALITY) */
    double draw;               /* the lookup's draw against banks' enabled
                                  ratios (pdqm_lookup_options.draw; default
                                  PDQM_DRAW_RANDOM) */
    unsigned flags;            /* PDQM_LOOKUP_* (0) */
} pdqm_policy_options;

void pdqm_policy_options_default(pdqm_policy_options *o);

/* One query: one hash, or the 8 orientations of one image (index i is
 * orientation i, pdqm_dihedral order). */
typedef struct pdqm_query {
    const pdqm_hash256 *hashes;
    size_t n;                  /* 1 or 8 */
    int quality;               /* 0..100, or -1 when unknown (a bare hash) */
} pdqm_query;

typedef struct pdqm_answer {
    const pdqm_match *match;   /* points into the result's store matches */
    int orientation;           /* which of the query's hashes matched */
    int suppressed;            /* a block match of a query an allow bank knows */
} pdqm_answer;

typedef struct pdqm_query_result {
    const pdqm_answer *answers;   /* nearest first, then by entry */
    size_t count;
    const char *not_matched;      /* NULL, or why the query was not looked up */
    int allowed;                  /* an allow bank knows the query */
} pdqm_query_result;

typedef struct pdqm_policy_result {
    pdqm_query_result *queries;   /* one per query, in order */
    size_t n_queries;
    size_t flagged;               /* block matches not suppressed, all queries */
    size_t store_matches;         /* what the store found, before merging */
    /* owned: */
    pdqm_answer *answers_;
    char *reasons_;
    pdqm_matches matches_;
} pdqm_policy_result;

/* Look up n queries in one consistent snapshot and apply the policy.
 * *out is filled even when nothing matched; free with
 * pdqm_policy_result_free().  Errors: PDQM_ERR_INVALID (an empty bank
 * filter, a distance outside -1..256), PDQM_ERR_NOT_FOUND (an unknown bank
 * in the filter), those of pdqm_store_lookup().  *out is untouched on
 * failure.  One read transaction. */
pdqm_status pdqm_policy_lookup(pdqm_store *store, const pdqm_query *queries, size_t n,
                               const pdqm_policy_options *options, pdqm_policy_result *out,
                               pdqm_error *err);

void pdqm_policy_result_free(pdqm_policy_result *r);

/* PDQM_ERR_INVALID when a bank filter is given but names no bank. */
pdqm_status pdqm_policy_check_banks(const char *const *banks, size_t n_banks,
                                    pdqm_error *err);

#endif
