/*
 * match_json.c - a video match as JSON (see match_json.h).
 */
#include "match_json.h"

json_t *pdqm_video_candidate_json(const pdqm_video_candidate *c, pdqm_json_raw *raw)
{
    json_t *segs = json_array(), *frames = json_array();
    for (size_t k = 0; segs && k < c->n_segments; k++) {
        const pdqm_segment *g = &c->segments[k];
        json_array_append_new(segs, json_pack("{s:f,s:f,s:f,s:f,s:I}", "query_start",
                                              g->query_start, "query_end", g->query_end,
                                              "candidate_start", g->candidate_start,
                                              "candidate_end", g->candidate_end, "frames",
                                              (json_int_t)g->frames));
    }
    for (size_t k = 0; frames && k < c->n_frames; k++) {
        const pdqm_frame_match *f = &c->frames[k];
        json_array_append_new(frames, json_pack("{s:f,s:f,s:i}", "query_time", f->query_time,
                                                "candidate_time", f->candidate_time,
                                                "distance", f->distance));
    }
    /* Content ids are UTF-8 by the store's rule; a store from before it
     * could hold one that is not. */
    json_t *id = json_string(c->content_id ? c->content_id : "");
    return json_pack("{s:o,s:s,s:s,s:s,s:f,s:f,s:i,s:o,s:o,s:o}",
                     "content_id", id ? id : json_string(""), "bank", c->bank,
                     "kind", c->kind == PDQM_CONTENT_VIDEO ? "video" : "image",
                     "rule", pdqm_match_rule_name(c->rule), "query_pct", c->query_pct,
                     "candidate_pct", c->candidate_pct, "best_distance", c->best_distance,
                     "metadata", pdqm_json_raw_value(raw, c->metadata),
                     "segments", segs, "frame_matches", frames);
}
