/*
 * cmd_lookup.c - `pdqmatch lookup`: near-duplicates of hashes and media.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <sys/stat.h>
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
#include "../core/policy.h"

#define QUERY_BATCH 512   /* hashes a store lookup */

static const char usage[] =
    "usage: pdqmatch lookup [--db PATH] [--max-distance N] [--bank A,B] [--dihedral]\n"
    "                       [--json] [--hash-list FILE] [--interval S]\n"
    "                       [--min-quality Q] [--query-pct P] [--candidate-pct P]\n"
    "                       QUERY...\n"
    "\n"
    "Find the stored hashes near each QUERY: a 64-hex PDQ hash, an image file,\n"
    "or a video file.\n"
    "\n"
    "  --db PATH          the store (default ./pdqmatch.db)\n"
    "  --max-distance N   report matches within N bits (0-256; default: each\n"
    "                     bank's threshold, 31 unless set)\n"
    "  --bank A,B         search only these banks\n"
    "  --dihedral         for image files, also look up the 7 rotated and\n"
    "                     mirrored hashes, and say which orientation matched\n"
    "  --json             one JSON object a query: {\"query\", \"matches\": [...]}\n"
    "  --hash-list FILE   take queries from a hash list (as 'pdqmatch index'\n"
    "                     reads them; '-' for standard input)\n"
    "\n"
    "Output: one line a match, QUERY,HASH,DISTANCE,BANK,CONTENT_ID (then\n"
    ",ORIENTATION with --dihedral), nearest first within a query.\n"
    "\n"
    "A video QUERY is hashed a frame every --interval seconds (default 1) and\n"
    "matched as vPDQ does: frames of quality under --min-quality (50) are\n"
    "ignored and identical ones counted once; a stored video matches when the\n"
    "share of the query's frames within the distance (default 31) is at least\n"
    "--query-pct (80) and the share of its own frames matched at least\n"
    "--candidate-pct (0).  One line a matched video or image:\n"
    "QUERY,CONTENT_ID,BANK,QUERY_PCT,CANDIDATE_PCT; --json adds the matched\n"
    "segments of time and every frame match.\n"
    "Exit status: 0 when something matched, 1 when nothing did, 2 on an error.\n";

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
            json_t *o = json_object(), *arr = json_array();
            pdqm_json_raw raw;
            pdqm_json_raw_init(&raw);
            json_object_set_new(o, "query", cli_json_text(q->label));
            for (size_t i = 0; i < qr->count; i++) {
                const pdqm_answer *a = &qr->answers[i];
                const pdqm_match *x = a->match;
                char hex[PDQM_HASH_HEX_LEN + 1];
                pdqm_hash256_to_hex(&x->hash, hex);
                json_t *e = json_object();
                json_object_set_new(e, "hash", json_string(hex));
                json_object_set_new(e, "distance", json_integer(x->distance));
                json_object_set_new(e, "bank", json_string(x->bank));
                json_object_set_new(e, "bank_kind",
                                    json_string(x->bank_kind == PDQM_BANK_ALLOW ? "allow" : "block"));
                json_object_set_new(e, "content_id", cli_json_text(x->content_id));
                json_object_set_new(e, "quality", json_integer(x->quality));
                json_object_set_new(e, "metadata", pdqm_json_raw_value(&raw, x->metadata));
                json_object_set_new(e, "suppressed", json_boolean(a->suppressed));
                if (r->dihedral)
                    json_object_set_new(e, "orientation",
                        json_string(pdqm_dihedral_name((pdqm_dihedral)a->orientation)));
                json_array_append_new(arr, e);
            }
            json_object_set_new(o, "matches", arr);
            if (qr->not_matched)
                json_object_set_new(o, "not_matched", json_string(qr->not_matched));
            print_json(o, JSON_COMPACT, &raw);
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

/* Look up and print every query gathered so far, then forget them. */
static int run_queries(lookup_run *r)
{
    size_t from = 0;
    while (from < r->n_q) {
        size_t to = from + QUERY_BATCH < r->n_q ? from + QUERY_BATCH : r->n_q;
        pdqm_query qs[QUERY_BATCH];
        for (size_t i = from; i < to; i++)
            qs[i - from] = (pdqm_query){ r->q[i].hash, (size_t)r->q[i].n, r->q[i].quality };
        pdqm_policy_result res;
        pdqm_error err;
        if (pdqm_policy_lookup(r->store, qs, to - from, &r->opts, &res, &err) != PDQM_OK) {
            cli_error("%s", pdqm_error_message(&err));
            return -1;
        }
        print_results(r, from, &res);
        pdqm_policy_result_free(&res);
        from = to;
    }
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
    if (pdqm_hash_video_bytes(data, len, NULL, r->interval, 0, &v, &err) != PDQM_OK) {
        cli_error("%s: %s", name, pdqm_error_message(&err));
        r->errors++;
        return 0;
    }
    pdqm_video_matches m;
    pdqm_video_match_options o = r->vopts;
    o.banks = r->opts.banks;
    o.n_banks = r->opts.n_banks;
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
        for (size_t i = 0; i < m.count; i++) {
            const pdqm_video_candidate *c = &m.items[i];
            json_t *e = json_object(), *segs = json_array(), *frames = json_array();
            json_object_set_new(e, "content_id", cli_json_text(c->content_id));
            json_object_set_new(e, "bank", json_string(c->bank));
            json_object_set_new(e, "kind", json_string(c->kind == PDQM_CONTENT_VIDEO ? "video" : "image"));
            json_object_set_new(e, "query_pct", json_real(c->query_pct));
            json_object_set_new(e, "candidate_pct", json_real(c->candidate_pct));
            json_object_set_new(e, "best_distance", json_integer(c->best_distance));
            json_object_set_new(e, "metadata", pdqm_json_raw_value(&raw, c->metadata));
            for (size_t k = 0; k < c->n_segments; k++)
                json_array_append_new(segs, json_pack("{s:f,s:f,s:f,s:f,s:i}",
                    "query_start", c->segments[k].query_start, "query_end", c->segments[k].query_end,
                    "candidate_start", c->segments[k].candidate_start,
                    "candidate_end", c->segments[k].candidate_end, "frames", (int)c->segments[k].frames));
            for (size_t k = 0; k < c->n_frames; k++)
                json_array_append_new(frames, json_pack("{s:f,s:f,s:i}",
                    "query_time", c->frames[k].query_time, "candidate_time", c->frames[k].candidate_time,
                    "distance", c->frames[k].distance));
            if (c->kind == PDQM_CONTENT_VIDEO)
                json_object_set_new(e, "segments", segs);
            else
                json_decref(segs);
            json_object_set_new(e, "frame_matches", frames);
            json_array_append_new(arr, e);
        }
        json_object_set_new(o_json, "matches", arr);
        print_json(o_json, JSON_COMPACT | JSON_REAL_PRECISION(6), &raw);
    } else {
        for (size_t i = 0; i < m.count; i++) {
            const pdqm_video_candidate *c = &m.items[i];
            pdqm_csv_field(stdout, name);
            putchar(',');
            pdqm_csv_field(stdout, c->content_id);
            printf(",%s,%.2f,%.2f\n", c->bank, c->query_pct, c->candidate_pct);
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
    pdqm_status st = pdqm_image_init(&err);
    if (st == PDQM_OK)
        st = pdqm_hash_image_bytes(data, len, NULL, r->dihedral ? PDQM_MEDIA_DIHEDRAL : 0, &ih, &err);
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
    static const struct option options[] = {
        { "db",           required_argument, NULL, 'D' },
        { "max-distance", required_argument, NULL, 'r' },
        { "bank",         required_argument, NULL, 'B' },
        { "dihedral",     no_argument,       NULL, 'd' },
        { "json",         no_argument,       NULL, 'j' },
        { "hash-list",    required_argument, NULL, 'L' },
        { "interval",     required_argument, NULL, 'i' },
        { "min-quality",  required_argument, NULL, 'Q' },
        { "query-pct",    required_argument, NULL, 'q' },
        { "candidate-pct", required_argument, NULL, 'c' },
        { "help",         no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    lookup_run r;
    memset(&r, 0, sizeof r);
    pdqm_policy_options_default(&r.opts);
    pdqm_video_match_options_default(&r.vopts);
    r.interval = 1.0;
    const char *db = PDQM_STORE_DEFAULT_PATH;
    const char *lists[64];
    size_t n_lists = 0;
    char **banks = NULL;
    size_t n_banks = 0;
    uint64_t v;

    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'D': db = optarg; break;
        case 'd': r.dihedral = 1; break;
        case 'j': r.json = 1; break;
        case 'r':
            if (cli_parse_u64(optarg, 0, PDQM_MAX_DISTANCE, &v))
                return cli_usage_error("lookup", "--max-distance takes a number from 0 to 256, not '%s'", optarg);
            r.opts.max_distance = (int)v;
            break;
        case 'B':
            cli_free_list(banks, n_banks);
            banks = cli_split_list(optarg, &n_banks);
            if (banks == NULL)
                return cli_usage_error("lookup", "--bank takes names separated by commas, not '%s'", optarg);
            break;
        case 'L':
            if (n_lists == sizeof lists / sizeof lists[0])
                return cli_usage_error("lookup", "at most 64 --hash-list options");
            lists[n_lists++] = optarg;
            break;
        case 'i': case 'q': case 'c': {
            char *end;
            double d = strtod(optarg, &end);
            double top = c == 'i' ? 86400 : 100;
            if (*optarg == '\0' || *end != '\0' || !(d >= 0) || d > top)
                return cli_usage_error("lookup", "%s takes a number from 0 to %g, not '%s'",
                                       c == 'i' ? "--interval" : c == 'q' ? "--query-pct" : "--candidate-pct",
                                       top, optarg);
            if (c == 'i')
                r.interval = d;
            else if (c == 'q')
                r.vopts.min_query_pct = d;
            else
                r.vopts.min_candidate_pct = d;
            break;
        }
        case 'Q':
            if (cli_parse_u64(optarg, 0, 100, &v))
                return cli_usage_error("lookup", "--min-quality takes a number from 0 to 100, not '%s'", optarg);
            r.vopts.min_quality = r.opts.min_quality = (int)v;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            return cli_usage_error("lookup", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("lookup", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc && n_lists == 0)
        return cli_usage_error("lookup", "no QUERY and no --hash-list given");
    r.opts.banks = (const char *const *)banks;
    r.opts.n_banks = n_banks;

    pdqm_error err;
    if (pdqm_store_open(db, PDQM_STORE_READONLY, &r.store, &err) != PDQM_OK) {
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
        int rc = add_list(&r, lists[i]);
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
