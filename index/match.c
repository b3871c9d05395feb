/*
 * match.c - video matching on top of the store's lookups (see match.h).
 *
 * The query's unique frames are looked up in one batch; matches are
 * grouped by content item; each candidate video's own frames are read once
 * to count its unique frames of quality and to place matched frames in
 * time.
 */
#define _POSIX_C_SOURCE 200809L
#include "match.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../hashing/pdq.h"

void pdqm_video_match_options_default(pdqm_video_match_options *o)
{
    o->max_distance = 31;
    o->min_quality = 50;
    o->min_query_pct = 80.0;
    o->min_candidate_pct = 0.0;
    o->min_segment = 5.0;
    o->dihedral = 0;
    o->banks = NULL;
    o->n_banks = 0;
    o->draw = PDQM_DRAW_RANDOM;
    o->flags = 0;
}

const char *pdqm_match_rule_name(pdqm_match_rule rule)
{
    return rule == PDQM_RULE_SEGMENT ? "segment" : "percent";
}

static int compare_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

/* A stored time a unique query hash matched, for following segments. */
typedef struct query_time {
    size_t u;
    double t;
} query_time;

static int compare_query_time(const void *pa, const void *pb)
{
    const query_time *a = pa, *b = pb;
    if (a->u != b->u)
        return (a->u > b->u) - (a->u < b->u);
    return (a->t > b->t) - (a->t < b->t);
}

/* The median of the positive steps between the n times t (sorted), 0 when
 * there is none. */
static double median_step(const double *t, size_t n)
{
    double *gaps = malloc((n ? n : 1) * sizeof *gaps);
    size_t ng = 0;
    if (gaps == NULL)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (t[i] > t[i - 1])
            gaps[ng++] = t[i] - t[i - 1];
    double m = 0;
    if (ng) {
        qsort(gaps, ng, sizeof *gaps, compare_double);
        m = gaps[ng / 2];
    }
    free(gaps);
    return m;
}

/* Where the stored frame at time t stops standing for the video: the next
 * stored time after it (ct sorted, n), or t + step after the last. */
static double extent_end(const double *ct, size_t n, double t, double step)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ct[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n ? ct[lo] : t + step;
}

static void candidate_free(pdqm_video_candidate *c)
{
    free(c->content_id);
    free(c->metadata);
    free(c->segments);
    free(c->frames);
}

void pdqm_video_matches_free(pdqm_video_matches *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->count; i++)
        candidate_free(&m->items[i]);
    free(m->items);
    memset(m, 0, sizeof *m);
}

static int same_hash(const pdqm_hash256 *a, const pdqm_hash256 *b)
{
    return memcmp(a->w, b->w, sizeof a->w) == 0;
}

static int compare_hash(const void *pa, const void *pb)
{
    return memcmp(((const pdqm_hash256 *)pa)->w, ((const pdqm_hash256 *)pb)->w,
                  sizeof ((const pdqm_hash256 *)pa)->w);
}

/* Index of h in the sorted unique array u of n, or -1. */
static long find_hash(const pdqm_hash256 *u, size_t n, const pdqm_hash256 *h)
{
    const pdqm_hash256 *p = bsearch(h, u, n, sizeof *u, compare_hash);
    return p ? (long)(p - u) : -1;
}

static int compare_candidates(const void *pa, const void *pb)
{
    const pdqm_video_candidate *a = pa, *b = pb;
    int av = a->kind == PDQM_CONTENT_VIDEO, bv = b->kind == PDQM_CONTENT_VIDEO;
    if (av != bv)
        return bv - av;                 /* videos first */
    if (a->query_pct != b->query_pct)
        return a->query_pct < b->query_pct ? 1 : -1;
    if (a->candidate_pct != b->candidate_pct)
        return a->candidate_pct < b->candidate_pct ? 1 : -1;
    return strcmp(a->content_id, b->content_id);
}

/* Whether query frame i belongs to the sample of frame i - 1 (frames of a
 * burst share a sample number; 0 is a sample alone). */
static int same_sample(const pdqm_video_frame *q, size_t i)
{
    return i > 0 && q[i].sample != 0 && q[i].sample == q[i - 1].sample;
}

static int compare_second(const void *pa, const void *pb)
{
    const long *a = pa, *b = pb;
    return (*a > *b) - (*a < *b);
}

/* The share of a stored video's seconds (those holding a frame of quality)
 * in which one of its frames was matched: what a sampled query covers of
 * a video stored with many frames a second.  The n hashes; the unique ones
 * of quality cu (ncu, sorted) and which of them matched, cu_hit.  A second
 * is numbered 2s + 1 when matched, 2s otherwise. */
static double seconds_pct(const pdqm_video_match_options *o, const pdqm_stored_hash *hashes,
                          size_t n, const pdqm_hash256 *cu, size_t ncu,
                          const unsigned char *cu_hit, size_t *n_seconds)
{
    *n_seconds = 0;
    long *sec = malloc((n ? n : 1) * sizeof *sec);
    if (sec == NULL)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (hashes[i].quality < o->min_quality)
            continue;
        long ci = find_hash(cu, ncu, &hashes[i].hash);
        double t = floor(hashes[i].timestamp);
        sec[k++] = 2 * (long)(t > 1e12 ? 1e12 : t < 0 ? 0 : t) + (ci >= 0 && cu_hit[ci]);
    }
    qsort(sec, k, sizeof *sec, compare_second);
    size_t seconds = 0, hit = 0;
    for (size_t i = 0; i < k; i++) {
        if (i == 0 || sec[i] / 2 != sec[i - 1] / 2)
            seconds++;
        /* Sorted: a matched second's odd entry is its last. */
        if ((sec[i] & 1) && (i + 1 == k || sec[i + 1] / 2 != sec[i] / 2))
            hit++;
    }
    free(sec);
    *n_seconds = seconds;
    return seconds ? 100.0 * (double)hit / (double)seconds : 0;
}

/* Build candidate c from the matches of one content item.
 * q / nq: the query frames of quality in time order; qu (nu): their unique
 * hashes, sorted, and q_unique[i] the unique index of frame i.
 * m: the store's matches; mi / nmi: indexes into m of this content's.
 * query_last: the start of the query's last sample, of quality or not. */
static pdqm_status fill_candidate(pdqm_store *s, const pdqm_video_match_options *o,
                                  double query_last,
                                  const pdqm_video_frame *q, size_t nq, const long *q_unique,
                                  size_t nu, const pdqm_matches *m, const size_t *mi,
                                  size_t nmi, pdqm_video_candidate *c, int *keep,
                                  pdqm_error *err)
{
    *keep = 0;
    pdqm_content_info info;
    pdqm_stored_hash *hashes = NULL;
    size_t nh = 0;
    pdqm_status st = pdqm_store_content_by_number(s, m->items[mi[0]].content, &info, &hashes,
                                                  &nh, err);
    if (st == PDQM_ERR_NOT_FOUND)
        return PDQM_OK;     /* deleted since the lookup */
    if (st != PDQM_OK)
        return st;

    /* The candidate's unique hashes of quality. */
    pdqm_hash256 *cu = malloc((nh ? nh : 1) * sizeof *cu);
    unsigned char *cu_hit = NULL, *q_hit = calloc(nu ? nu : 1, 1);
    size_t ncu = 0;
    /* Best match of each unique query hash: distance and candidate time. */
    int *best_d = malloc((nu ? nu : 1) * sizeof *best_d);
    double *best_t = malloc((nu ? nu : 1) * sizeof *best_t);
    double *ct = NULL, *qt = NULL, *seg_ext = NULL;
    unsigned char *slot_hit = NULL;   /* a query sample matched */
    size_t *seg_last = NULL;          /* each segment's last frame in q */
    query_time *times = NULL;     /* every stored time each query hash matched */
    size_t *times_at = NULL;      /* times[times_at[u] .. times_at[u + 1]) */
    if (!cu || !q_hit || !best_d || !best_t) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
        goto done;
    }
    for (size_t i = 0; i < nh; i++)
        if (hashes[i].quality >= o->min_quality)
            cu[ncu++] = hashes[i].hash;
    qsort(cu, ncu, sizeof *cu, compare_hash);
    size_t w = 0;
    for (size_t i = 0; i < ncu; i++)
        if (w == 0 || !same_hash(&cu[w - 1], &cu[i]))
            cu[w++] = cu[i];
    ncu = w;
    cu_hit = calloc(ncu ? ncu : 1, 1);
    if (cu_hit == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
        goto done;
    }
    for (size_t i = 0; i < nu; i++)
        best_d[i] = 1 << 30;

    int best_overall = 1 << 30;
    for (size_t k = 0; k < nmi; k++) {
        const pdqm_match *x = &m->items[mi[k]];
        if (x->quality < o->min_quality)
            continue;
        size_t u = x->query;     /* queries were the unique hashes */
        q_hit[u] = 1;
        long ci = find_hash(cu, ncu, &x->hash);
        if (ci >= 0)
            cu_hit[ci] = 1;
        if (x->distance < best_d[u]) {
            best_d[u] = x->distance;
            best_t[u] = x->timestamp;
        }
        if (x->distance < best_overall)
            best_overall = x->distance;
    }
    size_t q_matched = 0, c_matched = 0;
    for (size_t i = 0; i < nu; i++)
        q_matched += q_hit[i];
    for (size_t i = 0; i < ncu; i++)
        c_matched += cu_hit[i];
    if (q_matched == 0)
        goto done;

    /* The query's points: its unique hashes (vPDQ's rule), or, when its
     * frames were hashed in samples of several (a burst), its samples, each
     * matched when one of its frames is. */
    slot_hit = calloc(nq ? nq : 1, 1);
    if (slot_hit == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
        goto done;
    }
    size_t n_slots = 0, slots_hit = 0;
    int grouped = 0;
    for (size_t i = 0; i < nq; i++) {
        grouped |= q[i].sample != 0;
        if (!same_sample(q, i))
            n_slots++;
        if (q_unique[i] >= 0 && q_hit[q_unique[i]] && !slot_hit[n_slots - 1]) {
            slot_hit[n_slots - 1] = 1;
            slots_hit++;
        }
    }

    size_t quality_seconds = 0;    /* of the stored video, when grouped */
    c->kind = info.kind;
    if (grouped)
        c->query_pct = n_slots ? 100.0 * (double)slots_hit / (double)n_slots : 0;
    else
        c->query_pct = nu ? 100.0 * (double)q_matched / (double)nu : 0;
    if (info.kind != PDQM_CONTENT_VIDEO)
        c->candidate_pct = 100.0;
    else if (grouped)
        c->candidate_pct = seconds_pct(o, hashes, nh, cu, ncu, cu_hit, &quality_seconds);
    else
        c->candidate_pct = ncu ? 100.0 * (double)c_matched / (double)ncu : 0;
    c->best_distance = best_overall;
    int by_percent = info.kind != PDQM_CONTENT_VIDEO ||
                     (c->query_pct >= o->min_query_pct &&
                      c->candidate_pct >= o->min_candidate_pct);
    if (!by_percent && !(o->min_segment > 0))
        goto done;

    /* The candidate's stored times, each standing for the video until the
     * next one; the query's and the candidate's frame steps. */
    ct = malloc((nh ? nh : 1) * sizeof *ct);
    qt = malloc((nq ? nq : 1) * sizeof *qt);
    c->frames = malloc((nq ? nq : 1) * sizeof *c->frames);
    c->segments = malloc((nq ? nq : 1) * sizeof *c->segments);
    seg_ext = malloc((nq ? nq : 1) * sizeof *seg_ext);
    seg_last = malloc((nq ? nq : 1) * sizeof *seg_last);
    if (!ct || !qt || !c->frames || !c->segments || !seg_ext || !seg_last) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
        goto done;
    }
    for (size_t i = 0; i < nh; i++)
        ct[i] = hashes[i].timestamp;
    qsort(ct, nh, sizeof *ct, compare_double);
    size_t nqt = 0;     /* the samples' start times */
    for (size_t i = 0; i < nq; i++)
        if (!same_sample(q, i))
            qt[nqt++] = q[i].timestamp;
    double qstep = median_step(qt, nqt), cstep = median_step(ct, nh);
    if (cstep <= 0 || cstep > 1.0)
        cstep = 1.0;

    /* Every matched query frame, in time order, then the segments: runs of
     * consecutive matched frames whose candidate times move forward about
     * as fast as the query's (a stored frame standing for the time until
     * the next stored one). */
    /* A query frame may match several stored frames (a video looks alike
     * at several times): a segment goes on through whichever of them
     * follows it, not only the nearest. */
    times = malloc((nmi ? nmi : 1) * sizeof *times);
    times_at = calloc(nu + 1, sizeof *times_at);
    if (!times || !times_at) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
        goto done;
    }
    size_t nt = 0;
    for (size_t k = 0; k < nmi; k++)
        if (m->items[mi[k]].quality >= o->min_quality)
            times[nt++] = (query_time){ m->items[mi[k]].query, m->items[mi[k]].timestamp };
    qsort(times, nt, sizeof *times, compare_query_time);
    for (size_t k = 0; k < nt; k++)
        times_at[times[k].u + 1]++;
    for (size_t u = 0; u < nu; u++)
        times_at[u + 1] += times_at[u];
    int open = 0;
    for (size_t i = 0, slot = 0; i < nq; i++) {
        if (i > 0 && !same_sample(q, i))
            slot++;
        long u = q_unique[i];
        if (u < 0 || !q_hit[u]) {
            if (!slot_hit[slot])
                open = 0;   /* an unmatched sample ends a segment */
            continue;
        }
        pdqm_frame_match fm = { q[i].timestamp, best_t[u], best_d[u] };
        c->frames[c->n_frames++] = fm;
        if (info.kind != PDQM_CONTENT_VIDEO)
            continue;
        pdqm_segment *g = open ? &c->segments[c->n_segments - 1] : NULL;
        double follow = -1;   /* the first stored time it matched that follows g */
        if (g) {
            double dq = fm.query_time - g->query_end;
            double still = seg_ext[c->n_segments - 1] - g->candidate_end;
            for (size_t k = times_at[u]; k < times_at[u + 1] && follow < 0; k++) {
                double dc = times[k].t - g->candidate_end;
                if (dc >= -0.5 && dc <= still + dq + 2.0)
                    follow = times[k].t;
            }
        }
        if (follow >= 0) {
            double ext = extent_end(ct, nh, follow, cstep);
            g->query_end = fm.query_time;
            if (follow > g->candidate_end)
                g->candidate_end = follow;
            if (ext > seg_ext[c->n_segments - 1])
                seg_ext[c->n_segments - 1] = ext;
            seg_last[c->n_segments - 1] = i;
            g->frames++;
        } else {
            double ext = extent_end(ct, nh, fm.candidate_time, cstep);
            seg_ext[c->n_segments] = ext;
            seg_last[c->n_segments] = i;
            c->segments[c->n_segments++] = (pdqm_segment){
                fm.query_time, fm.query_time, fm.candidate_time, fm.candidate_time, 1 };
            open = 1;
        }
    }
    /* A sampled query's segment runs until the next sample of quality
     * that is not in it, or the query's end: samples of no quality (a fade
     * to black) are neither for it nor against it. */
    for (size_t k = 0; grouped && k < c->n_segments; k++) {
        size_t j = seg_last[k] + 1;
        while (j < nq && same_sample(q, j))
            j++;
        c->segments[k].query_end = j < nq ? q[j].timestamp : query_last + qstep;
    }
    c->rule = PDQM_RULE_PERCENT;
    if (!by_percent) {
        /* The segment rule: a segment of min_segment seconds, or 80 % of a
         * shorter video's length, on the query's side, and half as much on
         * the candidate's.  A sampled query measures in seconds: a stored
         * video's length is its seconds of quality, a segment on the
         * query's side runs to its end (above) and on the candidate's
         * covers the seconds it touches. */
        double length = nh ? ct[nh - 1] + cstep : 0;
        if (grouped)
            length = (double)quality_seconds;
        double need = o->min_segment < 0.8 * length ? o->min_segment : 0.8 * length;
        int found = 0;
        for (size_t k = 0; k < c->n_segments && !found; k++) {
            const pdqm_segment *g = &c->segments[k];
            double qlen = g->query_end - g->query_start + (grouped ? 0 : qstep);
            double clen = seg_ext[k] - g->candidate_start;
            if (grouped) {
                double touched = floor(g->candidate_end) - floor(g->candidate_start) + 1;
                if (touched > clen)
                    clen = touched;
            }
            found = qlen >= need - 1e-6 && clen >= need / 2 - 1e-6;
        }
        if (!found || need <= 0)
            goto done;
        c->rule = PDQM_RULE_SEGMENT;
    }
    snprintf(c->bank, sizeof c->bank, "%s", info.bank);
    c->number = info.number;
    c->content_id = info.content_id;
    c->metadata = info.metadata;
    info.content_id = info.metadata = NULL;
    *keep = 1;

done:
    if (!*keep) {
        free(c->frames);
        free(c->segments);
        c->frames = NULL;
        c->segments = NULL;
    }
    pdqm_content_info_clear(&info);
    free(hashes);
    free(cu);
    free(cu_hit);
    free(q_hit);
    free(best_d);
    free(best_t);
    free(ct);
    free(qt);
    free(seg_ext);
    free(slot_hit);
    free(seg_last);
    free(times);
    free(times_at);
    return st;
}

/* A match's content number and index, to group matches by content. */
typedef struct by_content {
    uint32_t content;
    size_t index;
} by_content;

static int compare_by_content(const void *pa, const void *pb)
{
    const by_content *a = pa, *b = pb;
    if (a->content != b->content)
        return (a->content > b->content) - (a->content < b->content);
    return (a->index > b->index) - (a->index < b->index);
}

/* The matches of the query in one orientation. */
static pdqm_status match_frames(pdqm_store *store, const pdqm_video_frame *frames, size_t n,
                                const pdqm_video_match_options *options,
                                pdqm_video_matches *out, pdqm_error *err)
{
    memset(out, 0, sizeof *out);
    pdqm_status st = PDQM_OK;
    pdqm_video_frame *q = malloc((n ? n : 1) * sizeof *q);
    pdqm_hash256 *qu = malloc((n ? n : 1) * sizeof *qu);
    long *q_unique = malloc((n ? n : 1) * sizeof *q_unique);
    by_content *order = NULL;
    size_t *group = NULL;
    pdqm_matches m = { NULL, 0, NULL };
    if (!q || !qu || !q_unique) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
        goto done;
    }
    /* Query frames of quality, and their unique hashes. */
    size_t nq = 0, nu = 0;
    for (size_t i = 0; i < n; i++)
        if (frames[i].quality >= options->min_quality)
            q[nq++] = frames[i];
    for (size_t i = 0; i < nq; i++)
        qu[i] = q[i].hash;
    qsort(qu, nq, sizeof *qu, compare_hash);
    for (size_t i = 0; i < nq; i++)
        if (nu == 0 || !same_hash(&qu[nu - 1], &qu[i]))
            qu[nu++] = qu[i];
    for (size_t i = 0; i < nq; i++)
        q_unique[i] = find_hash(qu, nu, &q[i].hash);
    out->query_frames = nu;
    if (nu == 0)
        goto done;

    pdqm_lookup_options lo = { options->max_distance, options->banks, options->n_banks,
                               options->draw, options->flags };
    if ((st = pdqm_store_lookup(store, qu, nu, &lo, &m, err)) != PDQM_OK)
        goto done;
    if (m.count == 0)
        goto done;
    order = malloc(m.count * sizeof *order);
    group = malloc(m.count * sizeof *group);
    if (order == NULL || group == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
        goto done;
    }
    for (size_t i = 0; i < m.count; i++)
        order[i] = (by_content){ m.items[i].content, i };
    qsort(order, m.count, sizeof *order, compare_by_content);
    for (size_t i = 0; i < m.count; i++)
        group[i] = order[i].index;

    size_t last_sample = n - 1;    /* where the query's last sample starts */
    while (last_sample > 0 && frames[last_sample].sample != 0 &&
           frames[last_sample].sample == frames[last_sample - 1].sample)
        last_sample--;
    size_t cap = 16;
    out->items = calloc(cap, sizeof *out->items);
    if (out->items == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
        goto done;
    }
    for (size_t i = 0; i < m.count && st == PDQM_OK;) {
        size_t j = i;
        while (j < m.count && order[j].content == order[i].content)
            j++;
        if (out->count == cap) {
            pdqm_video_candidate *grown = realloc(out->items, 2 * cap * sizeof *grown);
            if (grown == NULL) {
                st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
                break;
            }
            memset(grown + cap, 0, cap * sizeof *grown);
            out->items = grown;
            cap *= 2;
        }
        int keep;
        pdqm_video_candidate *c = &out->items[out->count];
        memset(c, 0, sizeof *c);
        st = fill_candidate(store, options, frames[last_sample].timestamp, q, nq, q_unique, nu,
                            &m, group + i, j - i, c, &keep, err);
        if (keep)
            out->count++;
        i = j;
    }
    qsort(out->items, out->count, sizeof *out->items, compare_candidates);

done:
    if (st != PDQM_OK)
        pdqm_video_matches_free(out);
    pdqm_matches_free(&m);
    free(order);
    free(group);
    free(q);
    free(qu);
    free(q_unique);
    return st;
}

/* Whether candidate a, found under one orientation, is a better answer
 * than b, the same item under an earlier one. */
static int better(const pdqm_video_candidate *a, const pdqm_video_candidate *b)
{
    if (a->rule != b->rule)
        return a->rule == PDQM_RULE_PERCENT;
    if (a->query_pct != b->query_pct)
        return a->query_pct > b->query_pct;
    return a->best_distance < b->best_distance;
}

/* The query's frames as variant v sees them: v < 8 turned to orientation
 * v, v = 8 + k with each barred frame's bars cut by cut k. */
static void variant_frames(const pdqm_video_frame *frames, size_t n, int v,
                           pdqm_video_frame *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = frames[i];
        if (v >= PDQM_DIHEDRAL_COUNT) {
            if (frames[i].barred) {
                out[i].hash = frames[i].inner[v - PDQM_DIHEDRAL_COUNT];
                out[i].quality = frames[i].inner_quality[v - PDQM_DIHEDRAL_COUNT];
            }
        } else if (v > 0) {
            out[i].hash = frames[i].dihedral[v];
        }
    }
}

pdqm_status pdqm_store_match_video(pdqm_store *store, const pdqm_video_frame *frames,
                                   size_t n, const pdqm_video_match_options *options,
                                   pdqm_video_matches *out, pdqm_error *err)
{
    pdqm_video_match_options defaults;
    if (options == NULL) {
        pdqm_video_match_options_default(&defaults);
        options = &defaults;
    }
    int barred = 0;
    for (size_t i = 0; i < n; i++)
        barred |= frames[i].barred;
    if (!options->dihedral && !barred)
        return match_frames(store, frames, n, options, out, err);
    memset(out, 0, sizeof *out);
    for (size_t i = 0; options->dihedral && i < n; i++)
        if (frames[i].dihedral == NULL)
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "a dihedral video lookup needs each frame's 8 hashes");
    pdqm_video_frame *turned = malloc((n ? n : 1) * sizeof *turned);
    size_t cap = 0;
    pdqm_status st = turned ? PDQM_OK
                            : pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
    for (int v = 0; v < PDQM_DIHEDRAL_COUNT + PDQM_CUTS && st == PDQM_OK; v++) {
        if ((v > 0 && v < PDQM_DIHEDRAL_COUNT && !options->dihedral) ||
            (v >= PDQM_DIHEDRAL_COUNT && !barred))
            continue;
        variant_frames(frames, n, v, turned);
        pdqm_video_matches part;
        if ((st = match_frames(store, turned, n, options, &part, err)) != PDQM_OK)
            break;
        if (v == 0)
            out->query_frames = part.query_frames;
        for (size_t k = 0; k < part.count; k++) {
            pdqm_video_candidate *c = &part.items[k];
            c->orientation = v < PDQM_DIHEDRAL_COUNT ? v : 0;
            c->bars_cut = v >= PDQM_DIHEDRAL_COUNT;
            size_t at = 0;
            while (at < out->count && !(strcmp(out->items[at].bank, c->bank) == 0 &&
                                        strcmp(out->items[at].content_id, c->content_id) == 0))
                at++;
            if (at < out->count) {
                if (better(c, &out->items[at])) {
                    candidate_free(&out->items[at]);
                    out->items[at] = *c;
                } else {
                    candidate_free(c);
                }
                continue;
            }
            if (out->count == cap) {
                size_t grown_cap = cap ? 2 * cap : 16;
                pdqm_video_candidate *grown = realloc(out->items, grown_cap * sizeof *grown);
                if (grown == NULL) {
                    /* Free what is left of this part; the rest is out's. */
                    for (size_t r = k; r < part.count; r++)
                        candidate_free(&part.items[r]);
                    st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory matching a video");
                    break;
                }
                out->items = grown;
                cap = grown_cap;
            }
            out->items[out->count++] = *c;
        }
        free(part.items);   /* each candidate now out's, or freed */
    }
    free(turned);
    if (st != PDQM_OK) {
        pdqm_video_matches_free(out);
        return st;
    }
    if (out->count > 1)
        qsort(out->items, out->count, sizeof *out->items, compare_candidates);
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* vPDQ's brute-force comparison                                        */

/* The unique frames of quality (first occurrences), in a new array. */
static pdqm_hash256 *vpdq_filtered(const pdqm_stored_hash *f, size_t n, size_t *out_n)
{
    pdqm_hash256 *u = malloc((n ? n : 1) * sizeof *u);
    size_t k = 0;
    if (u == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = memcmp(&f[j].hash, &f[i].hash, sizeof f[i].hash) == 0;
        if (!seen && f[i].quality >= PDQM_VPDQ_QUALITY)
            u[k++] = f[i].hash;
    }
    *out_n = k;
    return u;
}

static double vpdq_share(const pdqm_hash256 *a, size_t na, const pdqm_hash256 *b, size_t nb)
{
    size_t matched = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (pdqm_hash256_distance(&a[i], &b[j]) <= PDQM_VPDQ_DISTANCE) {
                matched++;
                break;
            }
    return (double)matched * 100.0 / (double)na;
}

pdqm_status pdqm_vpdq_compare(const pdqm_stored_hash *q, size_t nq, const pdqm_stored_hash *c,
                              size_t nc, double *query_pct, double *compared_pct,
                              pdqm_error *err)
{
    size_t uq, uc;
    pdqm_hash256 *a = vpdq_filtered(q, nq, &uq), *b = a ? vpdq_filtered(c, nc, &uc) : NULL;
    pdqm_status st = PDQM_OK;
    if (a == NULL || b == NULL)
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    else if (uq == 0 || uc == 0)
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "division by zero");
    else {
        *query_pct = vpdq_share(a, uq, b, uc);
        *compared_pct = vpdq_share(b, uc, a, uq);
    }
    free(a);
    free(b);
    return st;
}
