/*
 * cli.h - what the pdqmatch subcommands share: messages, option values,
 * and the subcommand table's entry points.
 *
 * Messages follow one shape: `pdqmatch: WHAT: reason` on standard error,
 * one line each.  A usage error adds `try 'pdqmatch CMD --help'` and the
 * command exits 2.
 */
#ifndef PDQM_CLI_H
#define PDQM_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "../hashing/error.h"   /* PDQM_VERSION */

/* Exit statuses shared by every subcommand. */
#define EXIT_USAGE 2

/* Each subcommand: argv[0] is the subcommand's name. */
int cmd_hash(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_banks(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Print `pdqmatch: MESSAGE` on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print `pdqmatch: MESSAGE` and the hint for cmd's help; return EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse a whole decimal number in [min, max] from text; 0 on success. */
int cli_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* A new JSON string of s; bytes that are not valid UTF-8 (file names may
 * hold any bytes) become U+FFFD.  NULL when out of memory. */
json_t *cli_json_text(const char *s);

/* Online processors, at least 1. */
int cli_cpu_count(void);

/* Read one line of f into *buf (grown as needed, NUL-terminated, newline
 * dropped) of at most max bytes.  Returns 1 for a line, 0 at the end, -1
 * on a read error, 2 for a line over max (consumed and dropped). */
int cli_read_line(FILE *f, char **buf, size_t *cap, size_t max, size_t *len);

/* Split a comma-separated list into a new array of new strings (free with
 * cli_free_list); NULL when out of memory or an item is empty. */
char **cli_split_list(const char *text, size_t *count);
void cli_free_list(char **list, size_t count);

/* Write s to f as one CSV field, quoted (with "" for ") only when it holds
 * a comma, a quote or a line break; NULL writes nothing. */
void cli_csv_field(FILE *f, const char *s);

#endif
