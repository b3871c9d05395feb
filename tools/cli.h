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
int cmd_snapshot(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_exchange(int argc, char **argv);

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

/* Connect to the cluster co names (pdqm_cluster_open); on failure the
 * reason is reported and NULL returned (the command exits 2). */
struct pdqm_cluster_options;
struct pdqm_cluster;
struct pdqm_cluster *cli_cluster_open(const struct pdqm_cluster_options *co);

/* Read one line of f into *buf (grown as needed, NUL-terminated, newline
 * dropped) of at most max bytes.  Returns 1 for a line, 0 at the end, -1
 * on a read error, 2 for a line over max (consumed and dropped). */
int cli_read_line(FILE *f, char **buf, size_t *cap, size_t max, size_t *len);

/* Split a comma-separated list into a new array of new strings (free with
 * cli_free_list); NULL when out of memory or an item is empty. */
char **cli_split_list(const char *text, size_t *count);
void cli_free_list(char **list, size_t count);


/* ------------------------------------------------------------------ */
/* Options as data: one table a command drives parsing, --help and the
 * defaults shown (read from the targets before parsing, so a default
 * lives in one place: where the library or the command sets it). */

typedef enum cli_opt_type {
    CLI_FLAG,          /* no value: *(int *)target = 1 */
    CLI_TEXT,          /* *(const char **)target = the value */
    CLI_COUNT,         /* a whole number in [min, max], into an unsigned
                          integer of `size` bytes (1, 2, 4 or 8) */
    CLI_SECONDS,       /* a number of seconds in [min, max] (a double) */
    CLI_NUMBER,        /* a number in [min, max] (a double) */
    CLI_LIST           /* repeatable: appends the value to a cli_list */
} cli_opt_type;

/* The values of a repeatable option, in the order given. */
#define CLI_LIST_MAX 64
typedef struct cli_list {
    const char *v[CLI_LIST_MAX];
    size_t n;
} cli_list;

typedef struct cli_opt {
    const char *name;      /* without "--" */
    cli_opt_type type;
    const char *value;     /* what the value is called in --help: "N", "S" */
    void *target;
    size_t size;           /* CLI_COUNT: sizeof *target */
    double min, max;       /* CLI_COUNT, CLI_SECONDS */
    const char *help;      /* may hold '\n' for more lines */
    int show_default;      /* append "(default X)" from the target */
    void *also;            /* a second target given the same value, or NULL */
    char letter;           /* a one-letter form (-q), or 0 */
    const char *also_label;   /* show_default with also: the second default
                                 is shown as "; Y <also_label>" */
} cli_opt;

/* The five limits on media a command that hashes files takes (hash,
 * index), for its table: img a pdqm_image_limits, vid a
 * pdqm_video_limits, both filled with their defaults first. */
/* The options of a command that talks to a cluster (serve, the writing
 * commands, snapshot), for its table: co a pdqm_cluster_options filled
 * with its defaults first, what the help of --nats says it does. */
#define CLI_NATS_OPTIONS(co, what)                                                       \
    { .name = "nats", .type = CLI_TEXT, .value = "URLS", .target = &(co).urls,           \
      .help = what },                                                                    \
    { .name = "stream", .type = CLI_TEXT, .value = "NAME", .target = &(co).stream,       \
      .show_default = 1, .help = "the cluster's stream" },                               \
    { .name = "stream-replicas", .type = CLI_COUNT, .value = "N", .target = &(co).replicas, \
      .size = sizeof (co).replicas, .min = 1, .max = 5,                                  \
      .help = "copies of the stream, when it is created here (default 3, or the\n"       \
              "number of servers given when fewer)" },                                   \
    { .name = "nats-creds", .type = CLI_TEXT, .value = "FILE", .target = &(co).creds_file, \
      .help = "NATS credentials (a .creds file)" },                                      \
    { .name = "nats-ca", .type = CLI_TEXT, .value = "FILE", .target = &(co).ca_file,     \
      .help = "the CA that signs the NATS servers' certificates (tls:// servers)" },     \
    { .name = "nats-cert", .type = CLI_TEXT, .value = "FILE", .target = &(co).cert_file, \
      .help = "a client certificate (PEM) for NATS servers that verify clients,\n"      \
              "with --nats-key" },                                                       \
    { .name = "nats-key", .type = CLI_TEXT, .value = "FILE", .target = &(co).key_file,   \
      .help = "the client certificate's private key (PEM)" }

#define CLI_MEDIA_LIMIT_OPTIONS(img, vid)                                               \
    { .name = "max-pixels", .type = CLI_COUNT, .value = "N", .target = &(img).max_pixels, \
      .size = sizeof (img).max_pixels, .min = 1, .max = 1e15, .show_default = 1,        \
      .also = &(vid).max_pixels, .also_label = "for video frames",                       \
      .help = "refuse images over N pixels, before decoding, and video frames\n"         \
              "over N pixels" },                                                         \
    { .name = "max-bytes", .type = CLI_COUNT, .value = "N", .target = &(img).max_bytes,   \
      .size = sizeof (img).max_bytes, .min = 1, .max = (double)((uint64_t)1 << 40),      \
      .show_default = 1, .also = &(vid).max_bytes, .also_label = "for videos",           \
      .help = "refuse files over N bytes" },                                             \
    { .name = "max-duration", .type = CLI_SECONDS, .value = "S",                         \
      .target = &(vid).max_seconds, .min = 0.001, .max = 1e7, .show_default = 1,         \
      .help = "refuse videos over S seconds" },                                          \
    { .name = "max-frames", .type = CLI_COUNT, .value = "N", .target = &(vid).max_frames, \
      .size = sizeof (vid).max_frames, .min = 1, .max = UINT32_MAX, .show_default = 1,    \
      .help = "refuse videos over N frames" },                                           \
    { .name = "max-time", .type = CLI_SECONDS, .value = "S",                             \
      .target = &(vid).max_wall_seconds, .min = 0.001, .max = 1e7, .show_default = 1,    \
      .help = "give up on a video after S seconds of work" }

/* Parse argv (argv[0] the command) by the table.  Returns -1 when parsed,
 * with optind at the first operand; otherwise the exit status to return:
 * 0 after printing help (usage, then intro, then the options, then outro),
 * EXIT_USAGE after a usage error. */
int cli_parse_options(const char *cmd, const char *usage, const char *intro,
                      const char *outro, const cli_opt *opts, size_t n,
                      int argc, char **argv);

/* Print the options of the table as --help does. */
void cli_print_options(FILE *f, const cli_opt *opts, size_t n);

#endif
