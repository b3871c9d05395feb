/*
 * match_json.h - matches as JSON, the one shape that `pdqmatch lookup
 * --json` and the HTTP API both give: a hash's answers (written as text,
 * on every lookup) and a video match.
 */
#ifndef PDQM_MATCH_JSON_H
#define PDQM_MATCH_JSON_H

#include <jansson.h>

#include "../index/match.h"
#include "jsonraw.h"
#include "jsontext.h"
#include "policy.h"

/* One answer: {"hash", "distance", "bank", "bank_kind", "content_id",
 * "quality", "metadata" (the stored text as it was given; a string when
 * it is not JSON, from a store of before the rule), "suppressed"}, and
 * "orientation" with with_orientation. */
void pdqm_answer_text(pdqm_jtext *t, const pdqm_answer *a, int with_orientation);

/* [answer, ...] of one query, nearest first. */
void pdqm_answers_text(pdqm_jtext *t, const pdqm_query_result *q, int with_orientation);

/* {"query": label, "matches": [...]}, and "not_matched" when the query
 * was not looked up. */
void pdqm_query_result_text(pdqm_jtext *t, const char *label, const pdqm_query_result *q,
                            int with_orientation);

/* {"content_id", "bank", "kind" ("video" or "image"), "rule" ("percent" or
 * "segment"), "query_pct", "candidate_pct", "best_distance", "metadata"
 * (the stored text, through raw), "segments": [{"query_start",
 * "query_end", "candidate_start", "candidate_end", "frames"}],
 * "frame_matches": [{"query_time", "candidate_time", "distance"}],
 * "bars_cut" (matched by the query's frames with their bars cut off)}, and
 * "orientation" (of the query frames that matched) with with_orientation.
 * A new reference, NULL when out of memory. */
json_t *pdqm_video_candidate_json(const pdqm_video_candidate *c, int with_orientation,
                                  pdqm_json_raw *raw);

#endif
