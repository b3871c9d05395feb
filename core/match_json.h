/*
 * match_json.h - a video match as JSON, the one shape that `pdqmatch lookup
 * --json` and `POST /v1/lookup/media` both give.
 */
#ifndef PDQM_MATCH_JSON_H
#define PDQM_MATCH_JSON_H

#include <jansson.h>

#include "../index/match.h"
#include "jsonraw.h"

/* {"content_id", "bank", "kind" ("video" or "image"), "rule" ("percent" or
 * "segment"), "query_pct", "candidate_pct", "best_distance", "metadata"
 * (the stored text, through raw), "segments": [{"query_start",
 * "query_end", "candidate_start", "candidate_end", "frames"}],
 * "frame_matches": [{"query_time", "candidate_time", "distance"}]}.  A new
 * reference, NULL when out of memory. */
json_t *pdqm_video_candidate_json(const pdqm_video_candidate *c, pdqm_json_raw *raw);

#endif
