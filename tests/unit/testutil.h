/*
 * testutil.h - what the C unit tests share: cmocka, the test data folder,
 * whole-file reads and a TSV line splitter.  Header-only, so each test file
 * builds into its own binary with no extra object.
 *
 * The data folder is $PDQM_TEST_DATA, or tests/data from the top of the
 * checkout (where `make test` runs).
 */
#ifndef PDQM_TESTUTIL_H
#define PDQM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../hashing/error.h"
#include "../../hashing/fileio.h"

/* Path of a file under the test data folder, in a rotating static buffer
 * (so a test may hold a few at once). */
static inline const char *data_path(const char *rel)
{
    static char bufs[4][1024];
    static int next;
    const char *dir = getenv("PDQM_TEST_DATA");
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir && *dir ? dir : "tests/data", rel);
    return b;
}

/* The whole of a data file; fails the test when it cannot be read. */
static inline uint8_t *read_data(const char *rel, size_t *len)
{
    uint8_t *buf = NULL;
    pdqm_error err;
    pdqm_status st = pdqm_read_file(data_path(rel), (size_t)1 << 30, &buf, len, &err);
    if (st != PDQM_OK)
        fail_msg("cannot read %s: %s", rel, pdqm_error_message(&err));
    return buf;
}

/* Read the next line of f into line and split it on tabs into at most max
 * fields.  Returns the field count, or -1 at the end of the file. */
static inline int tsv_next(FILE *f, char *line, size_t cap, char **fields, int max)
{
    if (fgets(line, (int)cap, f) == NULL)
        return -1;
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (tab == NULL)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

/* Open a TSV under the data folder and skip its header line. */
static inline FILE *tsv_open(const char *rel)
{
    FILE *f = fopen(data_path(rel), "r");
    if (f == NULL)
        fail_msg("cannot open %s", rel);
    char line[4096];
    if (fgets(line, sizeof line, f) == NULL)
        fail_msg("%s is empty", rel);
    return f;
}

#endif
