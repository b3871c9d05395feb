/*
 * lines.h - the lines of a fuzz input, split at '\n' as the line readers
 * of `pdqmatch index` split a file; the last line may lack its '\n', and
 * an input ending in '\n' ends with an empty line.
 */
#ifndef PDQM_FUZZ_LINES_H
#define PDQM_FUZZ_LINES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fuzz_lines {
    const char *text;
    size_t size;
    size_t start;   /* where the next line begins; past size when done */
} fuzz_lines;

static inline fuzz_lines fuzz_lines_of(const uint8_t *data, size_t size)
{
    fuzz_lines it = { (const char *)data, size, 0 };
    return it;
}

/* The next line in *line and *len; 0 when there is none left. */
static inline int fuzz_next_line(fuzz_lines *it, const char **line, size_t *len)
{
    if (it->start > it->size)
        return 0;
    const char *p = it->text + it->start;
    const char *nl = memchr(p, '\n', it->size - it->start);
    *line = p;
    *len = nl ? (size_t)(nl - p) : it->size - it->start;
    it->start = nl ? it->start + *len + 1 : it->size + 1;
    return 1;
}

#endif
