/*
 * utf8.h - checking UTF-8, one sequence at a time: the rule content ids,
 * JSON texts and log records share.
 */
#ifndef PDQM_UTF8_H
#define PDQM_UTF8_H
#include <stddef.h>

/* The length (1 to 4) of the valid UTF-8 sequence that starts at s, or 0
 * when none does: a stray continuation byte, an overlong or surrogate
 * form, a code point past U+10FFFF, or a sequence cut short (by the NUL
 * that ends the string, or any byte that is not a continuation).  s[0] is
 * read, and at most the 3 bytes after it while they continue a sequence. */
size_t pdqm_utf8_sequence(const unsigned char *s);

#endif
