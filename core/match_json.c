/*
 * match_json.c - matches as JSON (see match_json.h).
 */
#include "match_json.h"

#include <math.h>

#include "../hashing/hash256.h"
#include "../hashing/pdq.h"
#include "ingest.h"

void pdqm_answer_text(pdqm_jtext *t, const pdqm_answer *a, int with_orientation)
{
    const pdqm_match *m = a->match;
    char hex[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&m->hash, hex);
    pdqm_jtext_lit(t, "{\"hash\":\"");
    pdqm_jtext_raw(t, hex, PDQM_HASH_HEX_LEN);
    pdqm_jtext_lit(t, "\",\"distance\":");
    pdqm_jtext_int(t, m->distance);
    pdqm_jtext_lit(t, ",\"bank\":");
    pdqm_jtext_string(t, m->bank);
    pdqm_jtext_lit(t, ",\"bank_kind\":");
    pdqm_jtext_string(t, pdqm_bank_kind_name(m->bank_kind));
    pdqm_jtext_lit(t, ",\"content_id\":");
    pdqm_jtext_string(t, m->content_id ? m->content_id : "");
    pdqm_jtext_lit(t, ",\"quality\":");
    pdqm_jtext_int(t, m->quality);
    pdqm_jtext_lit(t, ",\"metadata\":");
    if (m->metadata == NULL)
        pdqm_jtext_lit(t, "null");
    else if (pdqm_json_text_valid(m->metadata))
        pdqm_jtext_lit(t, m->metadata);
    else
        pdqm_jtext_string(t, m->metadata);
    pdqm_jtext_lit(t, ",\"suppressed\":");
    pdqm_jtext_bool(t, a->suppressed);
    if (with_orientation) {
        pdqm_jtext_lit(t, ",\"orientation\":");
        pdqm_jtext_string(t, pdqm_dihedral_name((pdqm_dihedral)a->orientation));
    }
    pdqm_jtext_raw(t, "}", 1);
}

void pdqm_answers_text(pdqm_jtext *t, const pdqm_query_result *q, int with_orientation)
{
    pdqm_jtext_raw(t, "[", 1);
    for (size_t x = 0; x < q->count; x++) {
        if (x)
            pdqm_jtext_raw(t, ",", 1);
        pdqm_answer_text(t, &q->answers[x], with_orientation);
    }
    pdqm_jtext_raw(t, "]", 1);
}

void pdqm_query_result_text(pdqm_jtext *t, const char *label, const pdqm_query_result *q,
                            int with_orientation)
{
    pdqm_jtext_lit(t, "{\"query\":");
    pdqm_jtext_string(t, label);
    pdqm_jtext_lit(t, ",\"matches\":");
    pdqm_answers_text(t, q, with_orientation);
    if (q->not_matched) {
        pdqm_jtext_lit(t, ",\"not_matched\":");
        pdqm_jtext_string(t, q->not_matched);
    }
    pdqm_jtext_raw(t, "}", 1);
}

/* Times to the microsecond, percentages to 4 places: frame times come
 * from float32 (vPDQ's), and more digits are noise. */
static double us(double t)
{
    return round(t * 1e6) / 1e6;
}

static double pct(double p)
{
    return round(p * 1e4) / 1e4;
}

json_t *pdqm_video_candidate_json(const pdqm_video_candidate *c, int with_orientation,
                                  pdqm_json_raw *raw)
{
    json_t *segs = json_array(), *frames = json_array();
    for (size_t k = 0; segs && k < c->n_segments; k++) {
        const pdqm_segment *g = &c->segments[k];
        json_array_append_new(segs, json_pack("{s:f,s:f,s:f,s:f,s:I}", "query_start",
                                              us(g->query_start), "query_end", us(g->query_end),
                                              "candidate_start", us(g->candidate_start),
                                              "candidate_end", us(g->candidate_end), "frames",
                                              (json_int_t)g->frames));
    }
    for (size_t k = 0; frames && k < c->n_frames; k++) {
        const pdqm_frame_match *f = &c->frames[k];
        json_array_append_new(frames, json_pack("{s:f,s:f,s:i}", "query_time", us(f->query_time),
                                                "candidate_time", us(f->candidate_time),
                                                "distance", f->distance));
    }
    /* Content ids are UTF-8 by the store's rule; a store from before it
     * could hold one that is not. */
    json_t *id = json_string(c->content_id ? c->content_id : "");
    json_t *j = json_pack("{s:o,s:s,s:s,s:s,s:f,s:f,s:i,s:o,s:o,s:o}",
                          "content_id", id ? id : json_string(""), "bank", c->bank,
                          "kind", c->kind == PDQM_CONTENT_VIDEO ? "video" : "image",
                          "rule", pdqm_match_rule_name(c->rule), "query_pct", pct(c->query_pct),
                          "candidate_pct", pct(c->candidate_pct), "best_distance", c->best_distance,
                          "metadata", pdqm_json_raw_value(raw, c->metadata),
                          "segments", segs, "frame_matches", frames);
    if (j)
        json_object_set_new(j, "bars_cut", json_boolean(c->bars_cut));
    if (j && with_orientation)
        json_object_set_new(j, "orientation",
                            json_string(pdqm_dihedral_name((pdqm_dihedral)c->orientation)));
    return j;
}
