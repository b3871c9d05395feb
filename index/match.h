/*
 * match.h - which known videos does a video contain, how much, and where.
 *
 * vPDQ's matching rule, as python-threatexchange applies it: frames below
 * a quality are dropped and identical hashes counted once, on both sides;
 * a query frame matches a candidate video when any of its frames is within
 * the distance; query % is the share of the query's frames that match the
 * candidate, candidate % the share of the candidate's frames matched by
 * the query; a candidate is reported when both reach their minimums
 * (80 % and 0 % by default).  Beyond vPDQ, the matched stretches of time
 * are reported as segments, and stored images (or single hashes) that
 * query frames match are reported too: a known image shown in a video.
 *
 * The segment rule, beyond vPDQ too: a known video is also reported when
 * one segment holds at least min_segment seconds of it (or, for a video
 * shorter than min_segment / 0.8 s, 80 % of its length), whatever the
 * percentages: a compilation holding a few seconds of a known video among
 * other material.  A segment is a run of matched query frames in time
 * order whose candidate times move forward with the query's (a stored
 * frame standing for the time until the next stored one, since stored
 * videos keep only frames that differ); its length on the query side is
 * from its first frame to its last plus one query frame step, and the
 * candidate's side must move at least half as far (a still picture shown
 * for seconds is not a stretch of a video).
 */
#ifndef PDQM_MATCH_H
#define PDQM_MATCH_H

#include <stddef.h>

#include "../hashing/video.h"
#include "store.h"

/* vPDQ's own constants (python-threatexchange): frames of lower quality
 * are not matched; frames within this distance match. */
#define PDQM_VPDQ_QUALITY 50
#define PDQM_VPDQ_DISTANCE 31

typedef struct pdqm_video_match_options {
    int max_distance;          /* D: frames within this many bits match (31) */
    int min_quality;           /* F: frames of lower quality are ignored (50) */
    double min_query_pct;      /* Pq (80) */
    double min_candidate_pct;  /* Pc (0) */
    double min_segment;        /* seconds of the segment rule (5); 0: off */
    int dihedral;              /* also match the query turned and mirrored:
                                  each frame's 8 hashes (PDQM_VIDEO_DIHEDRAL)
                                  are needed (0) */
    const char *const *banks;  /* NULL: all banks */
    size_t n_banks;
    double draw;               /* as pdqm_lookup_options (PDQM_DRAW_RANDOM) */
    unsigned flags;            /* PDQM_LOOKUP_* (0) */
} pdqm_video_match_options;

void pdqm_video_match_options_default(pdqm_video_match_options *o);

/* A stretch of the query matching a stretch of the candidate, in seconds:
 * from the first matched query frame to the last (a query of samples of
 * several frames: to where the segment stops, the start of the next sample
 * of quality not in it, or the end of the query's last sample), and the
 * candidate's times they matched. */
typedef struct pdqm_segment {
    double query_start, query_end;
    double candidate_start, candidate_end;
    uint32_t frames;           /* query frames in it */
} pdqm_segment;

/* One query frame's best match in the candidate. */
typedef struct pdqm_frame_match {
    double query_time;
    double candidate_time;     /* 0 for an image */
    int distance;
} pdqm_frame_match;

/* Why a candidate is reported. */
typedef enum pdqm_match_rule {
    PDQM_RULE_PERCENT = 0,     /* the percentages reach their minimums (and
                                  every image or single hash matched) */
    PDQM_RULE_SEGMENT = 1      /* a segment long enough, the percentages not */
} pdqm_match_rule;

/* "percent" / "segment". */
const char *pdqm_match_rule_name(pdqm_match_rule rule);

typedef struct pdqm_video_candidate {
    char bank[PDQM_BANK_NAME_MAX + 1];
    char *content_id;          /* owned by the list */
    uint32_t number;           /* the item's number (pdqm_match.content) */
    char *metadata;            /* NULL when none */
    pdqm_content_kind kind;    /* PDQM_CONTENT_VIDEO, or an image / hash */
    double query_pct;          /* of the query's unique frames */
    double candidate_pct;      /* of the candidate's unique frames (100 for an image) */
    int best_distance;
    pdqm_match_rule rule;
    int orientation;           /* with dihedral: the pdqm_dihedral of the
                                  query frames that matched; else 0 */
    int bars_cut;              /* matched by the query's frames with their
                                  bars cut off (PDQM_VIDEO_BARS) */
    pdqm_segment *segments;    /* in query time order */
    size_t n_segments;
    pdqm_frame_match *frames;  /* every matched query frame, in query order */
    size_t n_frames;
} pdqm_video_candidate;

typedef struct pdqm_video_matches {
    pdqm_video_candidate *items;   /* videos by query %, then images */
    size_t count;
    size_t query_frames;           /* unique query frames of quality */
} pdqm_video_matches;

/* Match the frames of a query video (as pdqm_video_hash() gives them)
 * against the store.  With options->dihedral each of the query's 8
 * orientations is matched as a video of its own (a mirrored copy is
 * mirrored throughout), and each candidate is reported once, under its
 * best orientation: by the percent rule before the segment rule, then the
 * higher query %, then the nearer best distance, then the lower
 * orientation; PDQM_ERR_INVALID when a frame lacks its 8 hashes.
 * Frames hashed with PDQM_VIDEO_BARS that have bars are matched once more
 * with the hashes of the picture inside their bars (the other frames as
 * they are), and a candidate found so is reported the same way, with
 * bars_cut set.  *out is filled even when nothing matched; free it with
 * pdqm_video_matches_free().  Errors: those of pdqm_store_lookup(). */
pdqm_status pdqm_store_match_video(pdqm_store *store, const pdqm_video_frame *frames,
                                   size_t n, const pdqm_video_match_options *options,
                                   pdqm_video_matches *out, pdqm_error *err);

void pdqm_video_matches_free(pdqm_video_matches *m);

/* vPDQ's brute-force comparison of two lists of frames, as
 * python-threatexchange's VPDQSignal compares two signals: in each list
 * exact repeats count once (the first) and frames of quality under 50 are
 * dropped; a frame is matched when a frame of the other list is within
 * 31 bits.  *query_pct and *compared_pct: the matched share of each list,
 * in percent.  PDQM_ERR_INVALID when either list is empty once filtered
 * (vPDQ divides by zero there).  No transaction. */
pdqm_status pdqm_vpdq_compare(const pdqm_stored_hash *q, size_t nq, const pdqm_stored_hash *c,
                              size_t nc, double *query_pct, double *compared_pct,
                              pdqm_error *err);

#endif
