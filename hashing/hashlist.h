/*
 * hashlist.h - parse hash lists, one line at a time.
 *
 * Hash lists come from partners and from other tools, so every line is
 * hostile input.  Accepted forms:
 *   - one bare hash a line: 64 hex characters (quality unknown);
 *   - HASH,QUALITY[,CONTENT_ID] (what `pdqmatch hash` and Meta's
 *     pdq-photo-hasher print: the file name becomes the content id);
 *   - CSV or TSV whose first line is a header naming the columns; `hash`
 *     is required, `quality`, `content_id`, `timestamp`, `metadata`,
 *     `sha256`, `md5`, `bank` and `kind` are used when present, other
 *     columns are ignored.  Fields may be double-quoted, with "" for a
 *     quote inside; a quoted field may hold commas and line breaks, so one
 *     record may span lines (pdqm_hashlist_next() joins them).
 * Blank lines and lines starting with '#' are skipped anywhere; a UTF-8
 * byte order mark before the first line and CRLF line ends are accepted.
 */
#ifndef PDQM_HASHLIST_H
#define PDQM_HASHLIST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "hash256.h"
#include "video.h"

/* Longest record accepted, in bytes; longer ones are an error.  Room for
 * the largest metadata the store takes (PDQM_METADATA_MAX) with every
 * character a quote doubled, and the other fields. */
#define PDQM_HASHLIST_MAX_LINE (256 * 1024)

typedef struct pdqm_hashlist pdqm_hashlist;

typedef struct pdqm_hashlist_row {
    pdqm_hash256 hash;
    int quality;              /* 0..100, or -1 when the line gives none */
    const char *content_id;   /* NULL when none; valid until the next line */
    const char *metadata;     /* NULL when none; valid until the next line */
    const char *sha256;       /* hex digests of the media, or NULL; likewise */
    const char *md5;
    double timestamp;         /* 0 when none */
    const char *bank;         /* NULL when none; valid until the next line */
    int kind;                 /* a pdqm_content_kind, or -1 when none */
} pdqm_hashlist_row;

/* A parser for one list; NULL when out of memory.  Free with
 * pdqm_hashlist_free() (NULL is a no-op). */
pdqm_hashlist *pdqm_hashlist_new(void);
void pdqm_hashlist_free(pdqm_hashlist *p);

/* Parse one line of len bytes (no newline; a trailing '\r' is ignored).
 * Returns PDQM_OK with *got_row 1 and *row filled for a data line, or
 * *got_row 0 for a blank, comment or header line; PDQM_ERR_INVALID with
 * the reason (no line number: the caller knows it) for a bad line, which
 * leaves the parser ready for the next one. */
pdqm_status pdqm_hashlist_line(pdqm_hashlist *p, const char *line, size_t len,
                               pdqm_hashlist_row *row, int *got_row,
                               pdqm_error *err);

/* Read the next record of the list from f (one line, or several when a
 * quoted field holds line breaks) and parse it.  Returns PDQM_OK with *got
 * 1 and *row filled for a data record, *got 0 at the end of the list.  Any
 * other status is a bad record, with *line (the record's first line, from
 * 1) and the reason in *err; call again for the next record.  After
 * PDQM_ERR_IO (f cannot be read) or a record over PDQM_HASHLIST_MAX_LINE
 * whose quote never closes, the list ends: the next call gives *got 0.
 * Memory: one record's worth, at most PDQM_HASHLIST_MAX_LINE bytes. */
pdqm_status pdqm_hashlist_next(pdqm_hashlist *p, FILE *f, pdqm_hashlist_row *row,
                               int *got, uint64_t *line, pdqm_error *err);

/* One line of a reference vPDQ hash file, FRAME,QUALITY,HASH,TIMESTAMP
 * (what Meta's vpdq tools write), into *frame.  Returns PDQM_OK, or
 * PDQM_ERR_INVALID for anything else (blank and '#' lines are the
 * caller's to skip). */
pdqm_status pdqm_vpdq_line(const char *line, size_t len, pdqm_video_frame *frame,
                           pdqm_error *err);

#endif
