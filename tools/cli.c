/*
 * cli.c - messages and small parsers shared by the subcommands.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "../hashing/utf8.h"
#include "../cluster/cluster.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("pdqmatch: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("pdqmatch: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\ntry 'pdqmatch %s --help'\n", cmd);
    else
        fputs("\ntry 'pdqmatch --help'\n", stderr);
    return EXIT_USAGE;
}

int cli_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text == NULL || *text < '0' || *text > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

json_t *cli_json_text(const char *s)
{
    /* Each invalid byte becomes the 3-byte U+FFFD: at most 3x the input. */
    size_t len = strlen(s);
    char *clean = malloc(3 * len + 1);
    if (clean == NULL)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p) {
        size_t n = pdqm_utf8_sequence(p);
        if (n == 0) {
            memcpy(clean + o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        } else {
            memcpy(clean + o, p, n);
            o += n;
            p += n;
        }
    }
    json_t *j = json_stringn(clean, o);
    free(clean);
    return j;
}

pdqm_cluster *cli_cluster_open(const pdqm_cluster_options *co)
{
    pdqm_cluster *c;
    pdqm_error err;
    if (pdqm_cluster_open(co, &c, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return NULL;
    }
    return c;
}

int cli_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

int cli_read_line(FILE *f, char **buf, size_t *cap, size_t max, size_t *len)
{
    size_t n = 0;
    int c, too_long = 0, any = 0;
    while ((c = getc_unlocked(f)) != EOF) {
        any = 1;
        if (c == '\n')
            break;
        if (too_long)
            continue;
        if (n >= max) {
            too_long = 1;
            continue;
        }
        if (n + 1 >= *cap) {
            size_t grown_cap = *cap ? *cap * 2 : 256;
            char *grown = realloc(*buf, grown_cap);
            if (grown == NULL)
                return -1;
            *buf = grown;
            *cap = grown_cap;
        }
        (*buf)[n++] = (char)c;
    }
    if (ferror(f))
        return -1;
    if (!any)
        return 0;
    if (*cap == 0) {
        *buf = malloc(1);
        if (*buf == NULL)
            return -1;
        *cap = 1;
    }
    (*buf)[n] = '\0';
    *len = n;
    return too_long ? 2 : 1;
}

char **cli_split_list(const char *text, size_t *count)
{
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    char **list = calloc(n, sizeof *list);
    if (list == NULL)
        return NULL;
    const char *start = text;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        if (len == 0 || (list[i] = strndup(start, len)) == NULL) {
            cli_free_list(list, n);
            return NULL;
        }
        start = end ? end + 1 : start + len;
    }
    *count = n;
    return list;
}

void cli_free_list(char **list, size_t count)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}


/* ------------------------------------------------------------------ */
/* Options as data                                                      */

static void default_text(const cli_opt *o, char *buf, size_t size)
{
    buf[0] = '\0';
    if (o->type == CLI_COUNT) {
        uint64_t v = 0;
        switch (o->size) {
        case 1: v = *(const uint8_t *)o->target; break;
        case 2: v = *(const uint16_t *)o->target; break;
        case 4: v = *(const uint32_t *)o->target; break;
        default: v = *(const uint64_t *)o->target; break;
        }
        snprintf(buf, size, "%llu", (unsigned long long)v);
    } else if (o->type == CLI_SECONDS || o->type == CLI_NUMBER) {
        snprintf(buf, size, "%g", *(const double *)o->target);
    } else if (o->type == CLI_TEXT && *(const char *const *)o->target) {
        snprintf(buf, size, "%s", *(const char *const *)o->target);
    }
}

void cli_print_options(FILE *f, const cli_opt *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cli_opt *o = &opts[i];
        char head[64];
        char letter[8] = "";
        if (o->letter)
            snprintf(letter, sizeof letter, "-%c, ", o->letter);
        snprintf(head, sizeof head, "  %s--%s%s%s", letter, o->name, o->value ? " " : "",
                 o->value ? o->value : "");
        fprintf(f, "%-22s", head);
        if (strlen(head) >= 22)
            fprintf(f, "\n%-22s", "");
        for (const char *p = o->help; *p; p++) {
            fputc(*p, f);
            if (*p == '\n')
                fprintf(f, "%-22s", "");
        }
        if (o->show_default) {
            char d[64], d2[64];
            default_text(o, d, sizeof d);
            if (o->also && o->also_label) {
                cli_opt second = *o;
                second.target = o->also;
                default_text(&second, d2, sizeof d2);
                fprintf(f, " (default %s; %s %s)", d, d2, o->also_label);
            } else {
                fprintf(f, " (default %s)", d);
            }
        }
        fputc('\n', f);
    }
    fprintf(f, "%-22s%s\n", "  -h, --help", "show this help");
}

static void store_count(void *target, size_t size, uint64_t v)
{
    switch (size) {
    case 1: *(uint8_t *)target = (uint8_t)v; break;
    case 2: *(uint16_t *)target = (uint16_t)v; break;
    case 4: *(uint32_t *)target = (uint32_t)v; break;
    default: *(uint64_t *)target = v; break;
    }
}

int cli_parse_options(const char *cmd, const char *usage, const char *intro,
                      const char *outro, const cli_opt *opts, size_t n,
                      int argc, char **argv)
{
    struct option *longs = calloc(n + 2, sizeof *longs);
    if (longs == NULL) {
        cli_error("out of memory");
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++)
        longs[i] = (struct option){ opts[i].name,
                                    opts[i].type == CLI_FLAG ? no_argument : required_argument,
                                    NULL, (int)(256 + i) };
    longs[n] = (struct option){ "help", no_argument, NULL, 'h' };
    char shorts[2 * 32 + 3] = ":h";
    size_t ns = 2;
    for (size_t i = 0; i < n; i++)
        if (opts[i].letter && ns + 2 < sizeof shorts) {
            shorts[ns++] = opts[i].letter;
            if (opts[i].type != CLI_FLAG)
                shorts[ns++] = ':';
        }
    shorts[ns] = '\0';
    opterr = 0;
    optind = 1;
    int c, rc = -1;
    while (rc < 0 && (c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        for (size_t i = 0; i < n && c < 256 && c != 'h'; i++)
            if (opts[i].letter && opts[i].letter == c)
                c = (int)(256 + i);
        if (c == 'h') {
            fputs(usage, stdout);
            if (intro)
                fprintf(stdout, "\n%s", intro);
            fputc('\n', stdout);
            cli_print_options(stdout, opts, n);
            if (outro)
                fprintf(stdout, "\n%s", outro);
            rc = 0;
        } else if (c == ':') {
            rc = cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        } else if (c < 256 || (size_t)(c - 256) >= n) {
            rc = cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        } else {
            const cli_opt *o = &opts[c - 256];
            uint64_t v;
            char *end;
            double d;
            switch (o->type) {
            case CLI_FLAG:
                *(int *)o->target = 1;
                break;
            case CLI_TEXT:
                *(const char **)o->target = optarg;
                break;
            case CLI_LIST: {
                cli_list *l = o->target;
                if (l->n == CLI_LIST_MAX)
                    rc = cli_usage_error(cmd, "at most %d --%s options", CLI_LIST_MAX, o->name);
                else
                    l->v[l->n++] = optarg;
                break;
            }
            case CLI_COUNT:
                if (cli_parse_u64(optarg, (uint64_t)o->min, (uint64_t)o->max, &v))
                    rc = cli_usage_error(cmd, "--%s takes a number from %.0f to %.0f, not '%s'",
                                         o->name, o->min, o->max, optarg);
                else {
                    store_count(o->target, o->size, v);
                    if (o->also)
                        store_count(o->also, o->size, v);
                }
                break;
            case CLI_SECONDS:
            case CLI_NUMBER:
                d = strtod(optarg, &end);
                if (*optarg == '\0' || *end != '\0' || !(d >= o->min) || d > o->max)
                    rc = cli_usage_error(cmd, "--%s takes %s from %g to %g, not '%s'", o->name,
                                         o->type == CLI_SECONDS ? "seconds" : "a number",
                                         o->min, o->max, optarg);
                else {
                    *(double *)o->target = d;
                    if (o->also)
                        *(double *)o->also = d;
                }
                break;
            }
        }
    }
    free(longs);
    return rc;
}
