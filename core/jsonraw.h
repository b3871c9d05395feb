/*
 * jsonraw.h - stored JSON texts written out byte for byte.
 *
 * A content item's metadata is JSON text, stored as it was given.  Parsed
 * and dumped again by jansson, its numbers would come back rounded (to
 * the precision of the reply) or re-spelled, so every reply and export
 * writes the stored text itself instead: build the document with
 * pdqm_json_raw_value() where the text goes, then dump it with
 * pdqm_json_raw_dumps(), which splices each text in at its place.
 *
 * A place is held by a JSON string holding a control character, a marker
 * drawn at random for each handle and a number; no user string reaching a
 * reply can spell it by chance (content ids and bank names hold no control
 * characters; a file name would have to guess 64 random bits).
 */
#ifndef PDQM_JSONRAW_H
#define PDQM_JSONRAW_H

#include <stddef.h>

#include <jansson.h>

/* How every front end writes a JSON document (the service's replies, the
 * CLI's --json): compact, reals to 10 significant digits. */
#define PDQM_JSON_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))

typedef struct pdqm_json_raw {
    char **texts;            /* owned copies, by place number */
    size_t n, cap;
    char marker[17];         /* 16 random hex digits */
} pdqm_json_raw;

/* Ready an empty handle; pdqm_json_raw_clear() frees what it holds (and
 * leaves it ready again). */
void pdqm_json_raw_init(pdqm_json_raw *r);
void pdqm_json_raw_clear(pdqm_json_raw *r);

/* The value to put where stored JSON text goes: JSON null for NULL, a JSON
 * string holding the text for text that is not valid JSON (a store written
 * before the rule), else a place for the text itself.  A new reference, or
 * NULL when out of memory. */
json_t *pdqm_json_raw_value(pdqm_json_raw *r, const char *text);

/* A place for text the caller knows is JSON (written by pdqm_jtext, say). */
json_t *pdqm_json_raw_text(pdqm_json_raw *r, const char *text);

/* Whether text is one JSON value, as jansson reads it. */
int pdqm_json_text_valid(const char *text);

/* json_dumps(j, flags) with every place of r replaced by its text.  A new
 * string (free()), or NULL when out of memory. */
char *pdqm_json_raw_dumps(const json_t *j, size_t flags, const pdqm_json_raw *r);

#endif
