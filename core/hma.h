/*
 * hma.h - the rules that map pdqmatch's store onto the API of Meta's
 * Hasher-Matcher-Actioner (HMA / Open Media Match, 1.1.7), kept in one
 * place and free of HTTP so that they can be tested alone.
 *
 * The mapping (README, "A drop-in for HMA"):
 *   - HMA's integer bank_content_id is the item's number in the store
 *     (pdqm_match.content, pdqm_content_info.number); an item added through
 *     HMA's routes is named by its number (store.h, pdqm_add).
 *   - Signal types: "pdq" is the hash of an image (or of a hash-list item);
 *     "video_md5" the MD5 of a video's file; "vpdq" a video's frames, one a
 *     second, written as vPDQ's compact JSON list of "hex,quality,time".
 *   - disable_until_ts: HMA's 1 (enabled) and 0 (disabled) are the store's
 *     0 and -1; any other value is a unix time in both.
 *
 * Nothing here prints or exits; functions that fail fill a pdqm_error.
 */
#ifndef PDQM_HMA_H
#define PDQM_HMA_H

#include <stddef.h>
#include <stdint.h>

#include "../hashing/error.h"
#include "../hashing/hash256.h"
#include "../index/store.h"

/* HMA's signal types that pdqmatch serves, in HMA's order. */
typedef enum pdqm_hma_signal {
    PDQM_HMA_PDQ = 0,
    PDQM_HMA_VIDEO_MD5 = 1,
    PDQM_HMA_VPDQ = 2
} pdqm_hma_signal;
#define PDQM_HMA_SIGNALS 3

/* The name of a signal type ("pdq"...), and back: -1 for a name that is
 * none of them. */
const char *pdqm_hma_signal_name(pdqm_hma_signal s);
int pdqm_hma_signal_parse(const char *name);

/* Whether a content kind has the signal: pdq for images and hash lists,
 * video_md5 and vpdq for videos. */
int pdqm_hma_kind_has(pdqm_content_kind kind, pdqm_hma_signal s);

/* PDQM_ERR_INVALID with HMA's message ("Bank names must be
 * UPPER_WITH_UNDERSCORE") unless name matches [A-Z_][A-Z0-9_]* (and fits
 * the store: PDQM_BANK_NAME_MAX). */
pdqm_status pdqm_hma_bank_name_check(const char *name, pdqm_error *err);

/* disable_until_ts from the store's disabled_until, and back. */
int64_t pdqm_hma_disable_from_store(int64_t disabled_until);
int64_t pdqm_hma_disable_to_store(int64_t disable_until_ts);

/* A float as Python writes format(v, '.3'): three significant digits,
 * fixed ("12.5", "0.00123", "5.0") or scientific from 100 up ("1e+02",
 * "1.23e+03").  out has room for 32. */
void pdqm_hma_float3(double v, char out[32]);

/* A string as Python's repr() writes it ('abc', "it's"), for messages
 * that quote what was sent; out has room for cap, the text cut to fit. */
void pdqm_hma_repr(const char *s, char *out, size_t cap);

/* A PDQ signal: 64 lower-case hex digits (HMA's rule; upper case is not
 * one).  PDQM_ERR_INVALID "invalid PDQ hash". */
pdqm_status pdqm_hma_pdq_parse(const char *text, pdqm_hash256 *out, pdqm_error *err);

/* A video_md5 signal: trimmed, lower-cased, 32 hex digits, into out.
 * PDQM_ERR_INVALID "'X' is not a valid MD5 hash". */
pdqm_status pdqm_hma_md5_parse(const char *text, char out[33], pdqm_error *err);

/* A vpdq signal: a JSON list of "hex,quality,time" strings (an empty
 * text is the empty list), parsed into a new array *frames of *n (free()).
 * A frame's hex is 64 hex digits, its quality 0..100, its time seconds
 * from 0.  At most max frames.  PDQM_ERR_INVALID with HMA's message
 * ("invalid VpdqCompactFeature serialization: ..."), PDQM_ERR_TOO_LARGE,
 * PDQM_ERR_NOMEM. */
pdqm_status pdqm_hma_vpdq_parse(const char *text, size_t len, size_t max,
                                pdqm_stored_hash **frames, size_t *n, pdqm_error *err);

/* The vpdq signal of n frames (as vPDQ writes it: hashes in lower-case
 * hex, times by pdqm_hma_float3), malloc'd; NULL when out of memory. */
char *pdqm_hma_vpdq_text(const pdqm_stored_hash *frames, size_t n);

/* A vpdq match's distance as HMA writes it: "100%[50%]", the query's and
 * the stored video's percentages rounded to whole numbers.  out has room
 * for 32. */
void pdqm_hma_vpdq_distance(double query_pct, double candidate_pct, char out[32]);

#endif
