/*
 * hashlist.c - the hash-list line parser (see hashlist.h for the forms).
 *
 * The first line that is not blank or a comment decides the form: if it
 * starts with a valid hash it is data (headerless: HASH[,QUALITY[,ID]]);
 * otherwise it must be a header that names a `hash` column.
 */
#define _POSIX_C_SOURCE 200809L
#include "hashlist.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 64

enum form { FORM_UNKNOWN, FORM_PLAIN, FORM_HEADER };

struct pdqm_hashlist {
    enum form form;
    char delim;                 /* ',' or '\t' (header form) */
    int col_hash, col_quality, col_id, col_timestamp, col_meta;   /* -1: absent */
    int col_sha256, col_md5, col_bank, col_kind;
    char *field_buf;            /* unquoted fields of the current line */
    size_t field_cap;
    int started;                /* a line was seen: no byte order mark now */

    /* pdqm_hashlist_next(): the record being read. */
    char *rec;
    size_t rec_len, rec_cap;
    uint64_t lines;             /* physical lines read so far */
    int ended;                  /* the list cannot be read further */
};

pdqm_hashlist *pdqm_hashlist_new(void)
{
    pdqm_hashlist *p = calloc(1, sizeof *p);
    if (p)
        p->col_hash = p->col_quality = p->col_id = p->col_timestamp = p->col_meta =
            p->col_sha256 = p->col_md5 = p->col_bank = p->col_kind = -1;
    return p;
}

void pdqm_hashlist_free(pdqm_hashlist *p)
{
    if (p == NULL)
        return;
    free(p->field_buf);
    free(p->rec);
    free(p);
}

/* Split line into fields on delim, undoing CSV quotes.  Fields point into
 * p->field_buf, NUL-terminated.  Returns the field count, or -1 with err
 * set (bad quoting, too many fields, out of memory). */
static int split(pdqm_hashlist *p, const char *line, size_t len, char delim,
                 char **fields, pdqm_error *err)
{
    if (len + 1 > p->field_cap) {
        char *grown = realloc(p->field_buf, len + 1);
        if (grown == NULL) {
            pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
            return -1;
        }
        p->field_buf = grown;
        p->field_cap = len + 1;
    }
    char *out = p->field_buf;
    int n = 0;
    size_t i = 0;
    for (;;) {
        if (n == MAX_FIELDS) {
            pdqm_error_set(err, PDQM_ERR_INVALID, "more than %d fields", MAX_FIELDS);
            return -1;
        }
        fields[n++] = out;
        if (i < len && line[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    pdqm_error_set(err, PDQM_ERR_INVALID, "a quoted field is not closed");
                    return -1;
                }
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        *out++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *out++ = line[i++];
            }
            if (i < len && line[i] != delim) {
                pdqm_error_set(err, PDQM_ERR_INVALID, "text after a closing quote");
                return -1;
            }
        } else {
            while (i < len && line[i] != delim)
                *out++ = line[i++];
        }
        *out++ = '\0';
        if (i >= len)
            break;
        i++;   /* the delimiter */
        if (i == len) {
            if (n == MAX_FIELDS) {
                pdqm_error_set(err, PDQM_ERR_INVALID, "more than %d fields", MAX_FIELDS);
                return -1;
            }
            fields[n++] = out;   /* a trailing empty field */
            *out++ = '\0';
            break;
        }
    }
    return n;
}

/* Trim spaces around a field in place. */
static char *trim(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

static pdqm_status parse_quality(const char *text, int *out, pdqm_error *err)
{
    if (*text == '\0') {
        *out = -1;
        return PDQM_OK;
    }
    char *end;
    long q = strtol(text, &end, 10);
    if (!isdigit((unsigned char)*text) || *end != '\0' || q < 0 || q > 100)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "quality is a whole number from 0 to 100, not '%.40s'", text);
    *out = (int)q;
    return PDQM_OK;
}

static pdqm_status parse_timestamp(const char *text, double *out, pdqm_error *err)
{
    if (*text == '\0') {
        *out = 0;
        return PDQM_OK;
    }
    char *end;
    double t = strtod(text, &end);
    if (*end != '\0' || !(t >= 0) || t > 1e9)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "timestamp is seconds from 0, not '%.40s'", text);
    *out = t;
    return PDQM_OK;
}

/* An optional hex digest of `digits` characters: NULL when empty. */
static pdqm_status parse_digest(const char *text, size_t digits, const char *what,
                                const char **out, pdqm_error *err)
{
    *out = NULL;
    if (*text == '\0')
        return PDQM_OK;
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)text[i]))
            n = 0;
    if (n != digits)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "%s is %zu hex characters, not '%.70s'",
                              what, digits, text);
    *out = text;
    return PDQM_OK;
}

/* A content kind by name, as the numbers of pdqm_content_kind (index/
 * store.h): 0 hashes, 1 image, 2 video; -1 when empty. */
static pdqm_status parse_kind(const char *text, int *out, pdqm_error *err)
{
    static const char *const names[] = { "hashes", "image", "video" };
    *out = -1;
    if (*text == '\0')
        return PDQM_OK;
    for (int i = 0; i < 3; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = i;
            return PDQM_OK;
        }
    return pdqm_error_set(err, PDQM_ERR_INVALID,
                          "kind is hashes, image or video, not '%.40s'", text);
}

static pdqm_status parse_hash(const char *text, pdqm_hash256 *out, pdqm_error *err)
{
    return pdqm_hash256_from_hex(text, strlen(text), out, err);
}

/* Make the line a header: find the columns. */
static pdqm_status read_header(pdqm_hashlist *p, const char *line, size_t len,
                               pdqm_error *err)
{
    char *fields[MAX_FIELDS];
    p->delim = memchr(line, '\t', len) ? '\t' : ',';
    int n = split(p, line, len, p->delim, fields, err);
    if (n < 0)
        return err ? err->status : PDQM_ERR_INVALID;
    for (int i = 0; i < n; i++) {
        const char *name = trim(fields[i]);
        int *col = NULL;
        if (strcasecmp(name, "hash") == 0 || strcasecmp(name, "pdq") == 0)
            col = &p->col_hash;
        else if (strcasecmp(name, "quality") == 0)
            col = &p->col_quality;
        else if (strcasecmp(name, "content_id") == 0)
            col = &p->col_id;
        else if (strcasecmp(name, "timestamp") == 0)
            col = &p->col_timestamp;
        else if (strcasecmp(name, "metadata") == 0)
            col = &p->col_meta;
        else if (strcasecmp(name, "sha256") == 0)
            col = &p->col_sha256;
        else if (strcasecmp(name, "md5") == 0)
            col = &p->col_md5;
        else if (strcasecmp(name, "bank") == 0)
            col = &p->col_bank;
        else if (strcasecmp(name, "kind") == 0)
            col = &p->col_kind;
        if (col && *col >= 0)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "column '%s' appears twice", name);
        if (col)
            *col = i;
    }
    if (p->col_hash < 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "neither a hash nor a header naming a 'hash' column");
    p->form = FORM_HEADER;
    return PDQM_OK;
}

pdqm_status pdqm_hashlist_line(pdqm_hashlist *p, const char *line, size_t len,
                               pdqm_hashlist_row *row, int *got_row,
                               pdqm_error *err)
{
    *got_row = 0;
    if (!p->started && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;    /* a UTF-8 byte order mark */
        len -= 3;
    }
    p->started = 1;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > PDQM_HASHLIST_MAX_LINE)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "line longer than %d bytes",
                              PDQM_HASHLIST_MAX_LINE);
    if (len > 0 && memchr(line, '\0', len))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a NUL byte in the line");
    size_t start = 0;
    while (start < len && (line[start] == ' ' || line[start] == '\t'))
        start++;
    if (start == len || line[start] == '#')
        return PDQM_OK;

    if (p->form == FORM_UNKNOWN) {
        /* Data if the line starts with a hash, else a header. */
        size_t hex = 0;
        while (start + hex < len && isxdigit((unsigned char)line[start + hex]))
            hex++;
        int ends = start + hex == len || line[start + hex] == ',' ||
                   line[start + hex] == '\t' || line[start + hex] == ' ';
        if (hex == PDQM_HASH_HEX_LEN && ends)
            p->form = FORM_PLAIN;
        else
            return read_header(p, line, len, err);
    }

    char *fields[MAX_FIELDS];
    char delim = p->form == FORM_HEADER ? p->delim : (memchr(line, '\t', len) ? '\t' : ',');
    int n = split(p, line, len, delim, fields, err);
    if (n < 0)
        return err ? err->status : PDQM_ERR_INVALID;
    memset(row, 0, sizeof *row);
    row->quality = -1;
    row->kind = -1;
    pdqm_status st;

    if (p->form == FORM_PLAIN) {
        if (n > 3)
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "expected HASH[,QUALITY[,CONTENT_ID]], found %d fields", n);
        if ((st = parse_hash(trim(fields[0]), &row->hash, err)) != PDQM_OK)
            return st;
        if (n >= 2 && (st = parse_quality(trim(fields[1]), &row->quality, err)) != PDQM_OK)
            return st;
        if (n == 3 && fields[2][0] != '\0')
            row->content_id = fields[2];
        *got_row = 1;
        return PDQM_OK;
    }

    int want = p->col_hash;
    if (p->col_quality > want) want = p->col_quality;
    if (p->col_id > want) want = p->col_id;
    if (p->col_timestamp > want) want = p->col_timestamp;
    if (p->col_meta > want) want = p->col_meta;
    if (p->col_sha256 > want) want = p->col_sha256;
    if (p->col_md5 > want) want = p->col_md5;
    if (p->col_bank > want) want = p->col_bank;
    if (p->col_kind > want) want = p->col_kind;
    if (n <= want)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "%d fields, but the header names %d", n, want + 1);
    if ((st = parse_hash(trim(fields[p->col_hash]), &row->hash, err)) != PDQM_OK)
        return st;
    if (p->col_quality >= 0 &&
        (st = parse_quality(trim(fields[p->col_quality]), &row->quality, err)) != PDQM_OK)
        return st;
    if (p->col_timestamp >= 0 &&
        (st = parse_timestamp(trim(fields[p->col_timestamp]), &row->timestamp, err)) != PDQM_OK)
        return st;
    if (p->col_id >= 0 && fields[p->col_id][0] != '\0')
        row->content_id = fields[p->col_id];
    if (p->col_meta >= 0 && fields[p->col_meta][0] != '\0')
        row->metadata = fields[p->col_meta];
    if (p->col_bank >= 0 && *trim(fields[p->col_bank]) != '\0')
        row->bank = trim(fields[p->col_bank]);
    if (p->col_kind >= 0 && (st = parse_kind(trim(fields[p->col_kind]), &row->kind, err)))
        return st;
    if ((st = parse_digest(p->col_sha256 >= 0 ? trim(fields[p->col_sha256]) : "", 64,
                           "SHA-256", &row->sha256, err)) != PDQM_OK ||
        (st = parse_digest(p->col_md5 >= 0 ? trim(fields[p->col_md5]) : "", 32,
                           "MD5", &row->md5, err)) != PDQM_OK)
        return st;
    *got_row = 1;
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* Records from a file                                                  */

/* Append one physical line of f to the record (without its newline; a
 * NUL byte is kept, for the parser to refuse).  Returns 1 for a line, 0 at
 * the end of f, -1 on a read error or out of memory, 2 when the record
 * would pass the limit (the rest of the line is consumed). */
static int read_line(pdqm_hashlist *p, FILE *f)
{
    int c, any = 0;
    while ((c = getc_unlocked(f)) != EOF) {
        any = 1;
        if (c == '\n')
            return 1;
        if (p->rec_len + 2 > p->rec_cap) {
            if (p->rec_len >= PDQM_HASHLIST_MAX_LINE) {
                while ((c = getc_unlocked(f)) != EOF && c != '\n')
                    ;
                return 2;
            }
            size_t cap = p->rec_cap ? p->rec_cap * 2 : 8192;
            if (cap > PDQM_HASHLIST_MAX_LINE + 2)
                cap = PDQM_HASHLIST_MAX_LINE + 2;
            char *grown = realloc(p->rec, cap);
            if (grown == NULL)
                return -1;
            p->rec = grown;
            p->rec_cap = cap;
        }
        p->rec[p->rec_len++] = (char)c;
    }
    if (ferror(f))
        return -1;
    return any;
}

/* Whether the record so far leaves a quoted field open. */
static int quote_open(const char *s, size_t n)
{
    size_t quotes = 0;
    for (size_t i = 0; i < n; i++)
        quotes += s[i] == '"';
    return quotes & 1;
}

pdqm_status pdqm_hashlist_next(pdqm_hashlist *p, FILE *f, pdqm_hashlist_row *row,
                               int *got, uint64_t *line, pdqm_error *err)
{
    for (;;) {
        *got = 0;
        if (p->ended)
            return PDQM_OK;
        p->rec_len = 0;
        *line = p->lines + 1;
        int rc = read_line(p, f);
        if (rc == 0) {
            p->ended = 1;
            return PDQM_OK;
        }
        p->lines++;
        while (rc == 1 && quote_open(p->rec, p->rec_len)) {
            /* A quoted field goes on over the line break. */
            if (p->rec_len >= PDQM_HASHLIST_MAX_LINE) {
                rc = 2;
                break;
            }
            if (p->rec_len > 0 && p->rec[p->rec_len - 1] == '\r')
                p->rec_len--;
            p->rec[p->rec_len++] = '\n';
            int more = read_line(p, f);
            if (more == 0) {
                p->ended = 1;
                return pdqm_error_set(err, PDQM_ERR_INVALID, "a quoted field is not closed");
            }
            p->lines++;
            rc = more;
        }
        if (rc < 0) {
            p->ended = 1;
            return pdqm_error_set(err, PDQM_ERR_IO, "cannot read the list");
        }
        if (rc == 2) {
            /* Too long.  Where no quote is open the next line is a new
             * record; otherwise there is no telling where this one ends. */
            if (quote_open(p->rec, p->rec_len))
                p->ended = 1;
            return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "record longer than %d bytes%s",
                                  PDQM_HASHLIST_MAX_LINE,
                                  p->ended ? ", in a quoted field: the rest of the list is not read"
                                           : "");
        }
        /* (An empty first line leaves no buffer yet.) */
        pdqm_status st = pdqm_hashlist_line(p, p->rec ? p->rec : "", p->rec_len, row, got, err);
        if (st != PDQM_OK || *got)
            return st;
    }
}

/* ------------------------------------------------------------------ */
/* vPDQ hash files                                                      */

pdqm_status pdqm_vpdq_line(const char *line, size_t len, pdqm_video_frame *frame,
                           pdqm_error *err)
{
    /* Longest valid line: 10 + 3 + 64 + a timestamp and 3 commas. */
    char buf[160];
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len >= sizeof buf || memchr(line, '\0', len) != NULL)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "not a vPDQ line (FRAME,QUALITY,HASH,TIMESTAMP)");
    memcpy(buf, line, len);
    buf[len] = '\0';
    unsigned number;
    int quality, used = 0;
    char hex[65];
    double ts;
    pdqm_hash256 h;
    if (sscanf(buf, "%u,%d,%64[0-9a-fA-F],%lf%n", &number, &quality, hex, &ts, &used) != 4 ||
        (size_t)used != len || buf[0] < '0' || buf[0] > '9' || quality < 0 || quality > 100 ||
        !(ts >= 0) || ts > 1e9 || pdqm_hash256_from_hex(hex, strlen(hex), &h, NULL) != PDQM_OK)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "not a vPDQ line (FRAME,QUALITY,HASH,TIMESTAMP)");
    *frame = (pdqm_video_frame){ .frame = number, .timestamp = ts, .hash = h, .quality = quality };
    return PDQM_OK;
}
