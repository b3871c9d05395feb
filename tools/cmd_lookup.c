/*
 * cmd_lookup.c - `pdqmatch lookup`: near-duplicates of hashes and media.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../core/transfer.h"
#include "../hashing/hashlist.h"
#include "../hashing/media.h"
#include "../hashing/fileio.h"
#include "../index/match.h"
#include "../index/store.h"
#include "../core/jsonraw.h"
#include "../core/ingest.h"
#include "../core/match_json.h"
#include "../core/policy.h"

#define QUERY_BATCH 512   /* hashes a store lookup */

static const char usage[] =
    "usage: pdqmatch lookup [--db PATH] [--max-distance N] [--bank A,B] [--dihedral]\n"
    "                       [--json] [--hash-list FILE] [--interval S]\n"
    "                       [--min-quality Q] [--query-pct P] [--candidate-pct P]\n"
    "                       [--min-segment S]\n"
    "                       QUERY...\n";

static const char intro[] =
    "Find the stored hashes near each QUERY: a 64-hex PDQ hash, an image file,\n"
    "or a video file.  Queries of quality under --min-quality, and degenerate\n"
    "hashes, are not looked up (said on standard error).  A match within an\n"
    "allow bank's own threshold of the query marks the block matches\n"
    "',suppressed' (\"suppressed\": true with --json).\n";

static const char outro[] =
    "Output: one line a match, QUERY,HASH,DISTANCE,BANK,CONTENT_ID (then\n"
    ",ORIENTATION with --dihedral: one line a stored hash, at its best\n"
    "orientation), nearest first within a query.\n"
    "\n"
    "A video QUERY is hashed a frame every --interval seconds and matched as\n"
    "vPDQ does: frames of quality under --min-quality are ignored and identical\n"
    "ones counted once; a stored video matches when the share of the query's\n"
    "frames within the distance is at least --query-pct and the share of its\n"
    "own frames matched at least --candidate-pct, or when --min-segment seconds\n"
    "of it in a row are found in the query (a compilation).  One line a matched\n"
    "video or image: QUERY,CONTENT_ID,BANK,QUERY_PCT,CANDIDATE_PCT (then\n"
    ",ORIENTATION with --dihedral: the query's frames are matched turned and\n"
    "mirrored too, each item at its best orientation), then ',bars_cut' when\n"
    "it matched once the frames' uniform bars (letterbox, pillarbox) were cut\n"
    "off, then ',segment' when only the segment rule matched; --json adds the\n"
    "rule, the matched segments of time and every frame match.\n"
    "Exit status: 0 when a block match was found that no allow match\n"
    "suppresses, 1 otherwise, 2 on an error.\n";

typedef struct query {
    char *label;                 /* as given, or the hash's hex */
    int n;                       /* 1, or 8 with --dihedral on media */
    int quality;                 /* of an image; -1 for a hash */
    pdqm_hash256 hash[PDQM_DIHEDRAL_COUNT];
} query;

typedef struct lookup_run {
    pdqm_store *store;
    pdqm_policy_options opts;
    pdqm_video_match_options vopts;
    double interval;
    unsigned burst;
    int dihedral, json;
    int matched, errors;        /* matched: a block match not suppressed */
    query *q;
    size_t n_q, cap_q;
} lookup_run;

/* Print o (consumed) as one line, stored metadata spliced in as stored. */
static void print_json(json_t *o, size_t flags, pdqm_json_raw *raw)
{
    char *text = pdqm_json_raw_dumps(o, flags, raw);
    if (text == NULL) {
        cli_error("out of memory");
        exit(2);
    }
    fputs(text, stdout);
    putchar('\n');
    free(text);
    json_decref(o);
    pdqm_json_raw_clear(raw);
}

/* Print the policy's answers to queries [from, to). */
static void print_results(lookup_run *r, size_t from, const pdqm_policy_result *res)
{
    if (res->flagged > 0)
        r->matched = 1;
    for (size_t qi = 0; qi < res->n_queries; qi++) {
        const query *q = &r->q[from + qi];
        const pdqm_query_result *qr = &res->queries[qi];
        if (qr->not_matched)
            cli_error("%s: not looked up: %s", q->label, qr->not_matched);
        if (r->json) {
            pdqm_jtext t;
            pdqm_jtext_init(&t);
            pdqm_query_result_text(&t, q->label, qr, r->dihedral);
            size_t len;
            char *text = pdqm_jtext_take(&t, &len);
            if (text == NULL) {
                cli_error("out of memory");
                exit(2);
            }
            fwrite(text, 1, len, stdout);
            putchar('\n');
            free(text);
        } else {
            for (size_t i = 0; i < qr->count; i++) {
                const pdqm_answer *a = &qr->answers[i];
                const pdqm_match *x = a->match;
                char hex[PDQM_HASH_HEX_LEN + 1];
                pdqm_hash256_to_hex(&x->hash, hex);
                pdqm_csv_field(stdout, q->label);
                printf(",%s,%d,%s,", hex, x->distance, x->bank);
                pdqm_csv_field(stdout, x->content_id);
                if (r->dihedral)
                    printf(",%s", pdqm_dihedral_name((pdqm_dihedral)a->orientation));
                if (a->suppressed)
                    fputs(",suppressed", stdout);
                putchar('\n');
            }
        }
    }
}

/* One store lookup of queries [from, to), on a thread of its own. */
typedef struct batch {
    lookup_run *r;
    size_t from, to;
    pdqm_policy_result res;
    pdqm_status st;
    pdqm_error err;
    pthread_t thread;
    int started;
} batch;

static void *run_batch(void *arg)
{
    batch *b = arg;
    pdqm_query qs[QUERY_BATCH];
    for (size_t i = b->from; i < b->to; i++)
        qs[i - b->from] = (pdqm_query){ b->r->q[i].hash, (size_t)b->r->q[i].n,
                                        b->r->q[i].quality };
    b->st = pdqm_policy_lookup(b->r->store, qs, b->to - b->from, &b->r->opts, &b->res, &b->err);
    return NULL;
}

/* Look up and print every query gathered so far, then forget them: a
 * batch of QUERY_BATCH a core at a time, printed in order. */
static int run_queries(lookup_run *r)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t ways = cores < 1 ? 1 : cores > 8 ? 8 : (size_t)cores;
    size_t from = 0;
    int failed = 0;
    while (from < r->n_q && !failed) {
        batch b[8];
        size_t nb = 0;
        for (; nb < ways && from < r->n_q; nb++) {
            size_t to = from + QUERY_BATCH < r->n_q ? from + QUERY_BATCH : r->n_q;
            b[nb] = (batch){ .r = r, .from = from, .to = to };
            from = to;
        }
        for (size_t k = 1; k < nb; k++)
            b[k].started = pthread_create(&b[k].thread, NULL, run_batch, &b[k]) == 0;
        run_batch(&b[0]);
        for (size_t k = 1; k < nb; k++) {
            if (b[k].started)
                pthread_join(b[k].thread, NULL);
            else
                run_batch(&b[k]);
        }
        for (size_t k = 0; k < nb; k++) {
            if (b[k].st != PDQM_OK) {
                if (!failed)
                    cli_error("%s", pdqm_error_message(&b[k].err));
                failed = 1;
                continue;
            }
            if (!failed)
                print_results(r, b[k].from, &b[k].res);
            pdqm_policy_result_free(&b[k].res);
        }
    }
    if (failed)
        return -1;
    for (size_t i = 0; i < r->n_q; i++)
        free(r->q[i].label);
    r->n_q = 0;
    return 0;
}

static query *new_query(lookup_run *r, const char *label)
{
    if (r->n_q == r->cap_q) {
        size_t cap = r->cap_q ? r->cap_q * 2 : 64;
        query *grown = realloc(r->q, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        r->q = grown;
        r->cap_q = cap;
    }
    query *q = &r->q[r->n_q];
    if ((q->label = strdup(label)) == NULL)
        return NULL;
    q->n = 1;
    q->quality = -1;
    r->n_q++;
    return q;
}

static int is_hash_text(const char *s)
{
    if (strlen(s) != PDQM_HASH_HEX_LEN)
        return 0;
    pdqm_hash256 h;
    return pdqm_hash256_from_hex(s, PDQM_HASH_HEX_LEN, &h, NULL) == PDQM_OK;
}

/* A video query: its frames against the stored videos (and images), one
 * line (or JSON object) a matched item.  Returns -1 when out of memory. */
static int lookup_video(lookup_run *r, const char *name, const uint8_t *data, size_t len)
{
    pdqm_video_hashes v;
    pdqm_error err;
    if (pdqm_hash_video_bytes(data, len, NULL, r->interval, r->burst,
                              PDQM_MEDIA_BARS | (r->dihedral ? PDQM_MEDIA_DIHEDRAL : 0), &v,
                              &err) != PDQM_OK) {
        cli_error("%s: %s", name, pdqm_error_message(&err));
        r->errors++;
        return 0;
    }
    pdqm_video_matches m;
    pdqm_video_match_options o = r->vopts;
    o.banks = r->opts.banks;
    o.n_banks = r->opts.n_banks;
    o.dihedral = r->dihedral;
    if (r->opts.max_distance >= 0)
        o.max_distance = r->opts.max_distance;
    pdqm_status st = pdqm_store_match_video(r->store, v.frames, v.count, &o, &m, &err);
    pdqm_video_hashes_free(&v);
    if (st != PDQM_OK) {
        cli_error("%s: %s", name, pdqm_error_message(&err));
        r->errors++;
        return 0;
    }
    if (m.count > 0)
        r->matched = 1;
    if (r->json) {
        json_t *o_json = json_object(), *arr = json_array();
        pdqm_json_raw raw;
        pdqm_json_raw_init(&raw);
        json_object_set_new(o_json, "query", cli_json_text(name));
        json_object_set_new(o_json, "type", json_string("video"));
        json_object_set_new(o_json, "frames", json_integer((json_int_t)m.query_frames));
        for (size_t i = 0; i < m.count; i++)
            json_array_append_new(arr, pdqm_video_candidate_json(&m.items[i], r->dihedral, &raw));
        json_object_set_new(o_json, "matches", arr);
        print_json(o_json, PDQM_JSON_DUMP_FLAGS, &raw);
    } else {
        for (size_t i = 0; i < m.count; i++) {
            const pdqm_video_candidate *c = &m.items[i];
            pdqm_csv_field(stdout, name);
            putchar(',');
            pdqm_csv_field(stdout, c->content_id);
            printf(",%s,%.2f,%.2f", c->bank, c->query_pct, c->candidate_pct);
            if (r->dihedral)
                printf(",%s", pdqm_dihedral_name((pdqm_dihedral)c->orientation));
            if (c->bars_cut)
                fputs(",bars_cut", stdout);
            puts(c->rule == PDQM_RULE_SEGMENT ? ",segment" : "");
        }
    }
    pdqm_video_matches_free(&m);
    return 0;
}

/* 64 characters, or hex digits only: meant as a hash. */
static int looks_like_hash(const char *s)
{
    size_t n = strlen(s);
    if (n == PDQM_HASH_HEX_LEN)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return n >= 16;
}

static int add_argument(lookup_run *r, const char *arg)
{
    pdqm_error err;
    if (is_hash_text(arg)) {
        query *q = new_query(r, arg);
        if (q == NULL)
            return -1;
        pdqm_hash256_from_hex(arg, PDQM_HASH_HEX_LEN, &q->hash[0], NULL);
        return 0;
    }
    /* Not a hash: a media file, unless there is no such file and the
     * argument looks like a hash gone wrong (then say what is wrong). */
    struct stat sb;
    if (stat(arg, &sb) != 0 && errno == ENOENT && looks_like_hash(arg)) {
        pdqm_hash256 h;
        pdqm_hash256_from_hex(arg, strlen(arg), &h, &err);
        cli_error("%s: not a hash (%s) nor a file", arg, pdqm_error_message(&err));
        r->errors++;
        return 0;
    }
    uint8_t *data;
    size_t len;
    pdqm_image_hash ih;
    if (pdqm_read_file(arg, PDQM_VIDEO_DEFAULT_MAX_BYTES, &data, &len, &err) != PDQM_OK) {
        cli_error("%s: %s", arg, pdqm_error_message(&err));
        r->errors++;
        return 0;
    }
    if (pdqm_media_sniff(data, len) == PDQM_MEDIA_VIDEO) {
        int rc = lookup_video(r, arg, data, len);
        free(data);
        return rc;
    }
    pdqm_status st = pdqm_hash_image_bytes(data, len, NULL, r->dihedral ? PDQM_MEDIA_DIHEDRAL : 0, &ih, &err);
    free(data);
    if (st != PDQM_OK) {
        cli_error("%s: %s", arg, pdqm_error_message(&err));
        r->errors++;
        return 0;
    }
    query *q = new_query(r, arg);
    if (q == NULL)
        return -1;
    q->quality = ih.pdq.quality;
    if (r->dihedral) {
        q->n = PDQM_DIHEDRAL_COUNT;
        memcpy(q->hash, ih.pdq.dihedral, sizeof q->hash);
    } else {
        q->hash[0] = ih.pdq.hash;
    }
    return 0;
}

static int add_list(lookup_run *r, const char *name)
{
    FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
    if (f == NULL) {
        cli_error("%s: %s", name, strerror(errno));
        r->errors++;
        return 0;
    }
    pdqm_hashlist *parser = pdqm_hashlist_new();
    char *line = NULL;
    size_t cap = 0, len, lineno = 0;
    int rc, result = 0;
    while (parser && (rc = cli_read_line(f, &line, &cap, PDQM_HASHLIST_MAX_LINE, &len)) != 0) {
        lineno++;
        if (rc < 0) {
            cli_error("%s: %s", name, strerror(errno));
            r->errors++;
            break;
        }
        if (rc == 2) {
            cli_error("%s:%zu: line longer than %d bytes", name, lineno, PDQM_HASHLIST_MAX_LINE);
            r->errors++;
            continue;
        }
        pdqm_hashlist_row row;
        int got;
        pdqm_error err;
        if (pdqm_hashlist_line(parser, line, len, &row, &got, &err) != PDQM_OK) {
            cli_error("%s:%zu: %s", name, lineno, pdqm_error_message(&err));
            r->errors++;
            continue;
        }
        if (!got)
            continue;
        char hex[PDQM_HASH_HEX_LEN + 1];
        pdqm_hash256_to_hex(&row.hash, hex);
        query *q = new_query(r, hex);
        if (q == NULL) {
            result = -1;
            break;
        }
        q->hash[0] = row.hash;
        /* Keep memory bounded on long lists. */
        if (r->n_q >= 4 * QUERY_BATCH && run_queries(r) != 0) {
            result = -2;
            break;
        }
    }
    free(line);
    pdqm_hashlist_free(parser);
    if (f != stdin)
        fclose(f);
    return result;
}

int cmd_lookup(int argc, char **argv)
{
    lookup_run r;
    memset(&r, 0, sizeof r);
    pdqm_policy_options_default(&r.opts);
    pdqm_video_match_options_default(&r.vopts);
    r.interval = PDQM_QUERY_INTERVAL;
    r.burst = PDQM_QUERY_BURST;
    const char *db = PDQM_STORE_DEFAULT_PATH, *bank_list = NULL;
    cli_list lists = { .n = 0 };
    const cli_opt options[] = {
        { .name = "db", .type = CLI_TEXT, .value = "PATH", .target = &db, .show_default = 1,
          .help = "the store" },
        { .name = "max-distance", .type = CLI_COUNT, .value = "N", .target = &r.opts.max_distance,
          .size = sizeof r.opts.max_distance, .min = 0, .max = PDQM_MAX_DISTANCE,
          .help = "report matches within N bits (default: each bank's threshold)" },
        { .name = "bank", .type = CLI_TEXT, .value = "A,B", .target = &bank_list,
          .help = "search only these banks" },
        { .name = "dihedral", .type = CLI_FLAG, .target = &r.dihedral,
          .help = "for image files, also look up the 7 rotated and mirrored hashes,\n"
                  "and say which orientation matched" },
        { .name = "json", .type = CLI_FLAG, .target = &r.json,
          .help = "one JSON object a query: {\"query\", \"matches\": [...]}" },
        { .name = "hash-list", .type = CLI_LIST, .value = "FILE", .target = &lists,
          .help = "take queries from a hash list (as 'pdqmatch index' reads them;\n"
                  "'-' for standard input); repeatable" },
        { .name = "interval", .type = CLI_SECONDS, .value = "S", .target = &r.interval,
          .min = 0, .max = 86400, .show_default = 1,
          .help = "hash a sample of a video query every S seconds (0: every frame)" },
        { .name = "burst", .type = CLI_COUNT, .value = "N", .target = &r.burst,
          .size = sizeof r.burst, .min = 1, .max = PDQM_VIDEO_MAX_BURST, .show_default = 1,
          .help = "frames in a row a sample: the sample matches when one of them does" },
        { .name = "min-quality", .type = CLI_COUNT, .value = "Q", .target = &r.opts.min_quality,
          .size = sizeof r.opts.min_quality, .min = 0, .max = 100, .show_default = 1,
          .also = &r.vopts.min_quality,
          .help = "do not look up hashes or video frames of lower quality" },
        { .name = "query-pct", .type = CLI_NUMBER, .value = "P", .target = &r.vopts.min_query_pct,
          .min = 0, .max = 100, .show_default = 1,
          .help = "a video matches when this share of the query's frames match" },
        { .name = "candidate-pct", .type = CLI_NUMBER, .value = "P",
          .target = &r.vopts.min_candidate_pct, .min = 0, .max = 100, .show_default = 1,
          .help = "... and this share of the stored video's frames" },
        { .name = "min-segment", .type = CLI_NUMBER, .value = "S",
          .target = &r.vopts.min_segment, .min = 0, .max = 86400, .show_default = 1,
          .help = "a video also matches when S seconds of it in a row are found in the "
                  "query, whatever the shares (0: off)" },
    };
    int rc = cli_parse_options("lookup", usage, intro, outro, options,
                               sizeof options / sizeof options[0], argc, argv);
    if (rc >= 0)
        return rc;
    char **banks = NULL;
    size_t n_banks = 0, n_lists = lists.n;
    if (bank_list && (banks = cli_split_list(bank_list, &n_banks)) == NULL)
        return cli_usage_error("lookup", "--bank takes names separated by commas, not '%s'",
                               bank_list);
    if (optind >= argc && n_lists == 0)
        return cli_usage_error("lookup", "no QUERY and no --hash-list given");
    r.opts.banks = (const char *const *)banks;
    r.opts.n_banks = n_banks;

    pdqm_error err;
    if (pdqm_store_open(db, PDQM_STORE_READONLY | PDQM_STORE_ONESHOT, &r.store, &err) !=
        PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        cli_free_list(banks, n_banks);
        return 2;
    }
    int failed = 0;
    for (int i = optind; i < argc && !failed; i++) {
        if (add_argument(&r, argv[i]) != 0) {
            cli_error("out of memory");
            failed = 1;
        }
        if (r.n_q >= QUERY_BATCH && run_queries(&r) != 0)
            failed = 1;
    }
    for (size_t i = 0; i < n_lists && !failed; i++) {
        int rc = add_list(&r, lists.v[i]);
        if (rc == -1)
            cli_error("out of memory");
        if (rc != 0)
            failed = 1;
    }
    if (!failed && run_queries(&r) != 0)
        failed = 1;
    for (size_t i = 0; i < r.n_q; i++)
        free(r.q[i].label);
    free(r.q);
    pdqm_store_close(r.store);
    cli_free_list(banks, n_banks);
    if (fflush(stdout) != 0)
        failed = 1;
    if (failed || r.errors)
        return 2;
    return r.matched ? 0 : 1;
}
