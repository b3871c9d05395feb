/*
 * jsontext.h - JSON text written straight into a growing buffer.
 *
 * For the replies written on every lookup: jansson builds a tree of
 * objects and dumps it a character at a time, with a loop check per
 * container, which on a one-match lookup costs more than the HTTP floor
 * (about 10 us against 0.5 us written here).  Documents of a known shape
 * are written with these instead; everything read, and every reply of a
 * shape not known in advance, still goes through jansson.
 *
 * A write that runs out of memory marks the text failed and every later
 * write is a no-op, so a writer checks once, at pdqm_jtext_take().
 */
#ifndef PDQM_JSONTEXT_H
#define PDQM_JSONTEXT_H

#include <stddef.h>

typedef struct pdqm_jtext {
    char *s;
    size_t len, cap;
    int failed;
} pdqm_jtext;

void pdqm_jtext_init(pdqm_jtext *t);
void pdqm_jtext_free(pdqm_jtext *t);

/* n bytes as they are (JSON text the caller vouches for). */
void pdqm_jtext_raw(pdqm_jtext *t, const char *s, size_t n);
void pdqm_jtext_lit(pdqm_jtext *t, const char *s);   /* a NUL-terminated literal */

/* s as a JSON string: quotes, backslashes and control characters
 * escaped, each byte that is not part of a UTF-8 sequence written as
 * U+FFFD, as the CLI and the log already do for names. */
void pdqm_jtext_string(pdqm_jtext *t, const char *s);

void pdqm_jtext_int(pdqm_jtext *t, long long v);

/* v in decimal at out (no NUL); returns its length, at most 20. */
size_t pdqm_format_int(long long v, char out[20]);
void pdqm_jtext_bool(pdqm_jtext *t, int v);

/* The text (NUL-terminated, malloc'd, the caller frees it) and its
 * length; NULL when a write ran out of memory.  t is left empty. */
char *pdqm_jtext_take(pdqm_jtext *t, size_t *len);

#endif
