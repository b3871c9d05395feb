/*
 * cmd_admin.c - the store's administrative commands: stats, banks, delete,
 * export, verify, compact.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../index/store.h"
#include "../core/ingest.h"
#include "../core/transfer.h"
#include "../cluster/cluster.h"

/* The options of the admin commands: one table, each command taking the
 * ones it names. */
typedef struct admin_opts {
    const char *db;
    const char *bank;
    const char *content_id;
    const char *kind_name;
    const char *format;
    int json;
    int threshold;       /* -1: not given */
    int kind;            /* -1: not given */
    pdqm_cluster_options co;   /* co.urls: write through the cluster */
} admin_opts;

/* Parse the options of cmd, which takes those named in `takes` (names
 * separated by spaces); returns -1 when parsed (optind is at the first
 * operand), or the exit status to return (help or a usage error). */
static int parse_opts(const char *cmd, const char *usage, const char *takes, int argc,
                      char **argv, admin_opts *o)
{
    memset(o, 0, sizeof *o);
    o->db = PDQM_STORE_DEFAULT_PATH;
    o->format = "csv";
    o->threshold = -1;
    o->kind = -1;
    pdqm_cluster_options_default(&o->co);
    o->co.name = "pdqmatch";
    const cli_opt all[] = {
        { .name = "db", .type = CLI_TEXT, .value = "PATH", .target = &o->db, .show_default = 1,
          .help = "the store" },
        { .name = "bank", .type = CLI_TEXT, .value = "NAME", .target = &o->bank,
          .help = "the bank" },
        { .name = "content-id", .type = CLI_TEXT, .value = "ID", .target = &o->content_id,
          .help = "the content item's id" },
        { .name = "json", .type = CLI_FLAG, .target = &o->json, .help = "print JSON" },
        { .name = "threshold", .type = CLI_COUNT, .value = "N", .target = &o->threshold,
          .size = sizeof o->threshold, .min = 0, .max = PDQM_MAX_DISTANCE,
          .help = "the distance the bank's matches are reported within (a new\n"
                  "bank's default: 31)" },
        { .name = "kind", .type = CLI_TEXT, .value = "block|allow", .target = &o->kind_name,
          .help = "'allow': the bank lists known-good media (a new bank's default:\n"
                  "block)" },
        { .name = "format", .type = CLI_TEXT, .value = "jsonl|csv", .target = &o->format,
          .show_default = 1,
          .help = "jsonl: everything the store holds, one JSON object a line: the\n"
                  "banks with their thresholds and kinds, then each item with its\n"
                  "bank, content id, kind, hashes (quality, timestamp), metadata as\n"
                  "stored, digests and time added; 'pdqmatch import' restores it\n"
                  "exactly.  csv: one row a hash, hash,quality,content_id,timestamp,\n"
                  "bank,metadata,sha256,md5,kind, the form 'pdqmatch index\n"
                  "--hash-list' reads back into the same banks and items (thresholds\n"
                  "and times are jsonl's)" },
        CLI_NATS_OPTIONS(o->co, "publish the change to the cluster on these NATS servers\n"
                                "(nats://HOST:PORT, comma-separated) instead of writing a store"),
    };
    cli_opt mine[sizeof all / sizeof all[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        size_t len = strlen(all[i].name);
        for (const char *t = takes; (t = strstr(t, all[i].name)) != NULL; t += len)
            if ((t == takes || t[-1] == ' ') && (t[len] == ' ' || t[len] == '\0')) {
                mine[n++] = all[i];
                break;
            }
    }
    int rc = cli_parse_options(cmd, usage, NULL, NULL, mine, n, argc, argv);
    if (rc >= 0)
        return rc;
    if (o->kind_name) {
        o->kind = pdqm_bank_kind_parse(o->kind_name);
        if (o->kind < 0)
            return cli_usage_error(cmd, "--kind is 'block' or 'allow', not '%s'", o->kind_name);
    }
    return -1;
}

static pdqm_store *open_store(const char *db, unsigned flags)
{
    pdqm_store *s;
    pdqm_error err;
    if (pdqm_store_open(db, flags, &s, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return NULL;
    }
    return s;
}

/* A writing command's writer: the store, or with --nats the cluster
 * (published for the nodes to apply).  0 when ready, else the exit
 * status. */
static int open_writer(const admin_opts *o, pdqm_writer *w)
{
    memset(w, 0, sizeof *w);
    if (o->co.urls == NULL)
        return (w->store = open_store(o->db, PDQM_STORE_CREATE)) ? 0 : 2;
    return (w->cluster = cli_cluster_open(&o->co)) ? 0 : 2;
}

static void close_writer(pdqm_writer *w, uint64_t seq)
{
    if (w->cluster && seq)
        printf("published as log entry %llu\n", (unsigned long long)seq);
    pdqm_cluster_close(w->cluster);
    pdqm_store_close(w->store);
}

static const char *kind_name(pdqm_bank_kind k)
{
    return k == PDQM_BANK_ALLOW ? "allow" : "block";
}

/* ------------------------------------------------------------------ */

static const char stats_usage[] =
    "usage: pdqmatch stats [--db PATH] [--json]\n"
    "\n"
    "Print the store's counts and sizes.\n";

int cmd_stats(int argc, char **argv)
{
    admin_opts o;
    int rc = parse_opts("stats", stats_usage, "db json", argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);
    pdqm_store *s = open_store(o.db, PDQM_STORE_READONLY);
    if (s == NULL)
        return 2;
    pdqm_store_stats st;
    pdqm_error err;
    if (pdqm_store_stats_get(s, &st, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        pdqm_store_close(s);
        return 2;
    }
    pdqm_store_close(s);
    double per_hash = st.hashes ? (double)st.file_bytes / st.hashes : 0;
    if (o.json) {
        json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:i,s:I}",
                              "db", o.db, "banks", (json_int_t)st.banks,
                              "contents", (json_int_t)st.contents,
                              "hashes", (json_int_t)st.hashes,
                              "pending", (json_int_t)st.pending,
                              "pending_limit", (json_int_t)st.pending_limit,
                              "file_bytes", (json_int_t)st.file_bytes,
                              "used_bytes", (json_int_t)st.used_bytes,
                              "map_bytes", (json_int_t)st.map_bytes,
                              "bytes_per_hash", per_hash, "schema", st.schema,
                              "wide_from", (json_int_t)st.wide_from);
        json_dumpf(j, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(j);
    } else {
        printf("store:      %s (schema %d)\n", o.db, st.schema);
        printf("banks:      %llu\n", (unsigned long long)st.banks);
        printf("contents:   %llu\n", (unsigned long long)st.contents);
        printf("hashes:     %llu\n", (unsigned long long)st.hashes);
        if (st.pending)
            printf("pending:    %llu (added, not yet indexed; indexed at %llu)\n",
                   (unsigned long long)st.pending, (unsigned long long)st.pending_limit);
        if (st.wide_from == 0)
            printf("layout:     wide\n");
        else if (st.wide_from > 0)
            printf("layout:     narrow below entry %lld, wide from it\n", (long long)st.wide_from);
        printf("file size:  %llu bytes (%.1f a hash)\n", (unsigned long long)st.file_bytes, per_hash);
        printf("pages used: %llu bytes\n", (unsigned long long)st.used_bytes);
    }
    return 0;
}

/* ------------------------------------------------------------------ */

static const char banks_usage[] =
    "usage: pdqmatch banks [--db PATH] [--json]\n"
    "       pdqmatch banks create NAME [--threshold N] [--kind block|allow]\n"
    "       pdqmatch banks set NAME [--threshold N] [--kind block|allow]\n"
    "       pdqmatch banks delete NAME\n"
    "\n"
    "List, create, change or delete banks.  A bank's threshold (default 31) is\n"
    "the distance its matches are reported within unless a lookup asks for\n"
    "another; an 'allow' bank lists known-good media.  Deleting a bank deletes\n"
    "everything in it.  With --nats URLS, create, set and delete go to the\n"
    "cluster: they are published to its stream and every node applies them\n"
    "(what they do there, the nodes' /v1/banks shows).\n";

int cmd_banks(int argc, char **argv)
{
    admin_opts o;
    int rc = parse_opts("banks", banks_usage,
                        "db json threshold kind nats stream stream-replicas nats-creds nats-ca "
                        "nats-cert nats-key",
                        argc, argv, &o);
    if (rc >= 0)
        return rc;
    const char *action = optind < argc ? argv[optind] : "list";
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    int is_list = strcmp(action, "list") == 0;
    if (!is_list && strcmp(action, "create") && strcmp(action, "set") && strcmp(action, "delete"))
        return cli_usage_error("banks", "unknown action '%s'", action);
    if (!is_list && name == NULL)
        return cli_usage_error("banks", "'banks %s' needs a NAME", action);
    if (optind + (is_list ? 1 : 2) < argc)
        return cli_usage_error("banks", "unexpected argument '%s'", argv[optind + (is_list ? 1 : 2)]);
    if (strcmp(action, "set") == 0 && o.threshold < 0 && o.kind < 0)
        return cli_usage_error("banks", "'banks set' needs --threshold or --kind");
    if (is_list && o.co.urls)
        return cli_usage_error("banks", "a list is a node's: 'banks list --db PATH' there, or "
                               "GET /v1/banks");
    pdqm_error err;
    pdqm_status st = PDQM_OK;
    if (!is_list) {
        pdqm_writer w;
        if ((rc = open_writer(&o, &w)) != 0)
            return rc;
        uint64_t seq = 0;
        if (strcmp(action, "create") == 0)
            st = pdqm_write_bank_create(&w, name, o.threshold >= 0 ? o.threshold
                                                            : PDQM_DEFAULT_THRESHOLD,
                                        o.kind >= 0 ? (pdqm_bank_kind)o.kind : PDQM_BANK_BLOCK,
                                        -1.0, 0, &seq, &err);
        else if (strcmp(action, "set") == 0)
            st = pdqm_write_bank_update(&w, name, o.threshold, o.kind, &seq, &err);
        else
            st = pdqm_write_bank_delete(&w, name, &seq, &err);
        close_writer(&w, seq);
        if (st != PDQM_OK) {
            cli_error("%s", pdqm_error_message(&err));
            return st == PDQM_ERR_NOT_FOUND || st == PDQM_ERR_EXISTS || st == PDQM_ERR_INVALID
                ? 1 : 2;
        }
        return 0;
    }
    pdqm_store *s = open_store(o.db, PDQM_STORE_READONLY);
    if (s == NULL)
        return 2;
    {
        pdqm_bank_info *list;
        size_t n;
        st = pdqm_store_bank_list(s, &list, &n, &err);
        if (st == PDQM_OK) {
            if (o.json) {
                json_t *arr = json_array();
                for (size_t i = 0; i < n; i++)
                    json_array_append_new(arr, json_pack("{s:s,s:i,s:s,s:I,s:I,s:I}",
                        "name", list[i].name, "threshold", list[i].threshold,
                        "kind", kind_name(list[i].kind), "contents", (json_int_t)list[i].contents,
                        "hashes", (json_int_t)list[i].hashes, "created", (json_int_t)list[i].created));
                json_dumpf(arr, stdout, JSON_COMPACT);
                putchar('\n');
                json_decref(arr);
            } else {
                printf("%-24s %9s %-5s %10s %10s\n", "NAME", "THRESHOLD", "KIND", "CONTENTS", "HASHES");
                for (size_t i = 0; i < n; i++)
                    printf("%-24s %9d %-5s %10llu %10llu\n", list[i].name, list[i].threshold,
                           kind_name(list[i].kind), (unsigned long long)list[i].contents,
                           (unsigned long long)list[i].hashes);
            }
            free(list);
        }
    }
    pdqm_store_close(s);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return st == PDQM_ERR_NOT_FOUND || st == PDQM_ERR_EXISTS || st == PDQM_ERR_INVALID ? 1 : 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ */

static const char delete_usage[] =
    "usage: pdqmatch delete [--db PATH | --nats URLS] --bank NAME --content-id ID\n"
    "\n"
    "Delete one content item and its hashes; lookups stop finding it at once.\n"
    "With --nats URLS the delete is published to the cluster's stream, and\n"
    "every node applies it (one that does not hold the item changes nothing).\n";

int cmd_delete(int argc, char **argv)
{
    admin_opts o;
    int rc = parse_opts("delete", delete_usage,
                        "db bank content-id nats stream stream-replicas nats-creds nats-ca "
                        "nats-cert nats-key",
                        argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.bank == NULL || o.content_id == NULL)
        return cli_usage_error("delete", "--bank and --content-id are required");
    if (optind < argc)
        return cli_usage_error("delete", "unexpected argument '%s'", argv[optind]);
    pdqm_writer w;
    if (o.co.urls)
        rc = open_writer(&o, &w);
    else if ((w = (pdqm_writer){ open_store(o.db, 0), NULL }).store == NULL)
        rc = 2;
    if (rc > 0)
        return rc;
    pdqm_error err;
    uint64_t seq = 0;
    pdqm_status st = pdqm_write_delete(&w, o.bank, o.content_id, &seq, &err);
    close_writer(&w, seq);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return st == PDQM_ERR_NOT_FOUND ? 1 : 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ */

static const char export_usage[] =
    "usage: pdqmatch export [--db PATH] [--bank NAME] [--format jsonl|csv]\n"
    "\n"
    "Print the store (or one bank of it) on standard output.\n";

int cmd_export(int argc, char **argv)
{
    admin_opts o;
    int rc = parse_opts("export", export_usage, "db bank format", argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    const char *format = o.format;
    pdqm_export_format f;
    if (strcmp(format, "csv") == 0)
        f = PDQM_EXPORT_CSV;
    else if (strcmp(format, "jsonl") == 0)
        f = PDQM_EXPORT_JSONL;
    else
        return cli_usage_error("export", "--format is jsonl or csv, not '%s'", format);
    pdqm_store *s = open_store(o.db, PDQM_STORE_READONLY);
    if (s == NULL)
        return 2;
    pdqm_error err;
    pdqm_status st = pdqm_export(s, o.bank, f, stdout, &err);
    pdqm_store_close(s);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 2;
    }
    return 0;
}

static const char import_usage[] =
    "usage: pdqmatch import [--db PATH | --nats URLS] FILE\n"
    "\n"
    "Restore what 'pdqmatch export --format jsonl' wrote (FILE '-' for standard\n"
    "input) into the store at PATH (created when missing): banks with their\n"
    "thresholds, kinds and times, items with their hashes, metadata, digests\n"
    "and times.  Items the store has are skipped, so importing twice stores\n"
    "nothing twice.  A bad line is reported as 'pdqmatch: FILE:LINE: reason'\n"
    "and skipped.  Exit status: 0, 1 when a line was refused, 2 on a usage\n"
    "error or when the store cannot be written.\n"
    "With --nats URLS the file goes to a cluster: every bank line and batch of\n"
    "items is published to its stream, in entries as large as the servers\n"
    "take, and every node applies them (skipping the items it holds).\n";

typedef struct import_run {
    const char *name;
} import_run;

static void import_refused(void *arg, uint64_t line, const pdqm_error *why)
{
    const import_run *r = arg;
    cli_error("%s:%llu: %s", r->name, (unsigned long long)line, pdqm_error_message(why));
}

int cmd_import(int argc, char **argv)
{
    admin_opts o;
    int rc = parse_opts("import", import_usage,
                        "db nats stream stream-replicas nats-creds nats-ca nats-cert nats-key",
                        argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (optind + 1 != argc)
        return cli_usage_error("import", optind >= argc ? "no FILE given"
                                                          : "one FILE at a time");
    const char *name = argv[optind];
    FILE *in = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
    if (in == NULL) {
        cli_error("%s: %s", name, strerror(errno));
        return 2;
    }
    pdqm_writer w;
    if ((rc = open_writer(&o, &w)) != 0) {
        if (in != stdin)
            fclose(in);
        return rc;
    }
    import_run r = { name };
    pdqm_import_counts n;
    pdqm_error err;
    pdqm_import_sink sink;
    pdqm_write_import_sink(&w, &sink);
    pdqm_status st = pdqm_import_jsonl_to(&sink, in, import_refused, &r, &n, &err);
    if (in != stdin)
        fclose(in);
    int published = w.cluster != NULL;
    close_writer(&w, 0);
    if (st != PDQM_OK) {
        cli_error("%s: %s", name, pdqm_error_message(&err));
        return 2;
    }
    if (published) {
        printf("published %llu item%s (%llu hash%s) and %llu bank%s, refused %llu line%s\n",
               (unsigned long long)n.items, n.items == 1 ? "" : "s",
               (unsigned long long)n.hashes, n.hashes == 1 ? "" : "es",
               (unsigned long long)n.banks_published, n.banks_published == 1 ? "" : "s",
               (unsigned long long)n.refused, n.refused == 1 ? "" : "s");
        return n.refused ? 1 : 0;
    }
    printf("imported %llu item%s (%llu hash%s), created %llu bank%s and changed %llu, "
           "skipped %llu already stored, refused %llu line%s\n",
           (unsigned long long)n.items, n.items == 1 ? "" : "s",
           (unsigned long long)n.hashes, n.hashes == 1 ? "" : "es",
           (unsigned long long)n.banks_created, n.banks_created == 1 ? "" : "s",
           (unsigned long long)n.banks_changed, (unsigned long long)n.existing,
           (unsigned long long)n.refused, n.refused == 1 ? "" : "s");
    return n.refused ? 1 : 0;
}

/* ------------------------------------------------------------------ */

static const char verify_usage[] =
    "usage: pdqmatch verify [--db PATH]\n"
    "\n"
    "Check the store: every posting points to a live hash, every hash is\n"
    "indexed in every slot, content records, digests and bank counts agree.\n"
    "Exit status 0 when all holds, 1 when something does not.\n";

int cmd_verify(int argc, char **argv)
{
    admin_opts o;
    int rc = parse_opts("verify", verify_usage, "db", argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error("verify", "unexpected argument '%s'", argv[optind]);
    pdqm_store *s = open_store(o.db, PDQM_STORE_READONLY);
    if (s == NULL)
        return 2;
    uint64_t problems = 0;
    pdqm_error err;
    pdqm_status st = pdqm_store_verify(s, &problems, &err);
    pdqm_store_stats stats;
    int have_stats = pdqm_store_stats_get(s, &stats, NULL) == PDQM_OK;
    pdqm_store_close(s);
    if (st != PDQM_OK) {
        cli_error("%s: %s", o.db, pdqm_error_message(&err));
        if (problems > 1)
            cli_error("%s: %llu problems in all", o.db, (unsigned long long)problems);
        return problems ? 1 : 2;
    }
    if (have_stats)
        printf("%s: ok: %llu banks, %llu contents, %llu hashes\n", o.db,
               (unsigned long long)stats.banks, (unsigned long long)stats.contents,
               (unsigned long long)stats.hashes);
    return 0;
}

/* ------------------------------------------------------------------ */

static const char compact_usage[] =
    "usage: pdqmatch compact [--db PATH] OUTPUT\n"
    "\n"
    "Write a compacted copy of the store to OUTPUT, which must not exist.  The\n"
    "store stays in use meanwhile; swap the files when no process has it open.\n";

int cmd_compact(int argc, char **argv)
{
    admin_opts o;
    int rc = parse_opts("compact", compact_usage, "db", argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return cli_usage_error("compact", "no OUTPUT given");
    if (optind + 1 < argc)
        return cli_usage_error("compact", "unexpected argument '%s'", argv[optind + 1]);
    pdqm_store *s = open_store(o.db, PDQM_STORE_READONLY);
    if (s == NULL)
        return 2;
    pdqm_error err;
    pdqm_status st = pdqm_store_compact(s, argv[optind], &err);
    pdqm_store_close(s);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ */

static const char snapshot_usage[] =
    "usage: pdqmatch snapshot [--db PATH] [--nats URLS [--stream NAME] [--purge]] OUTPUT\n";

static const char snapshot_intro[] =
    "Write a compacted copy of the store at PATH, a cluster node's (it may be\n"
    "serving meanwhile), to OUTPUT, which must not exist.  The copy holds the\n"
    "last log entry it applied: a node started on it ('pdqmatch serve --db\n"
    "OUTPUT --nats ...') replays only the entries after that one.  Prints\n"
    "'snapshot at log entry N: OUTPUT'.\n";

static const char snapshot_outro[] =
    "With --purge, the stream's entries up to N are then purged, which bounds\n"
    "the stream's size.  A node that has not applied them yet cannot catch up\n"
    "afterwards (its /readyz says 'stuck') and must be started from a newer\n"
    "snapshot: take the snapshot from the node furthest behind, or purge to\n"
    "the lowest applied_seq the nodes' /readyz report (docs/SCALING.md).\n";

int cmd_snapshot(int argc, char **argv)
{
    const char *db = PDQM_STORE_DEFAULT_PATH;
    int purge = 0;
    pdqm_cluster_options co;
    pdqm_cluster_options_default(&co);
    co.name = "pdqmatch snapshot";
    const cli_opt options[] = {
        { .name = "db", .type = CLI_TEXT, .value = "PATH", .target = &db, .show_default = 1,
          .help = "the store" },
        CLI_NATS_OPTIONS(co, "the cluster's NATS servers (nats://HOST:PORT, comma-separated),\n"
                             "for --purge"),
        { .name = "purge", .type = CLI_FLAG, .target = &purge,
          .help = "purge the stream's entries the snapshot holds (see below)" },
    };
    int rc = cli_parse_options("snapshot", snapshot_usage, snapshot_intro, snapshot_outro,
                               options, sizeof options / sizeof options[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return cli_usage_error("snapshot", "no OUTPUT given");
    if (optind + 1 < argc)
        return cli_usage_error("snapshot", "unexpected argument '%s'", argv[optind + 1]);
    if (purge && co.urls == NULL)
        return cli_usage_error("snapshot", "--purge needs --nats");
    const char *out = argv[optind];
    pdqm_store *s = open_store(db, PDQM_STORE_READONLY);
    if (s == NULL)
        return 2;
    pdqm_error err;
    pdqm_status st = pdqm_store_compact(s, out, &err);
    pdqm_store_close(s);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 2;
    }
    /* The seq is read from the copy: the very snapshot the copy is of. */
    uint64_t seq = 0;
    s = open_store(out, PDQM_STORE_READONLY);
    if (s == NULL)
        return 2;
    st = pdqm_store_applied_seq(s, &seq, &err);
    pdqm_store_close(s);
    if (st != PDQM_OK) {
        cli_error("%s: %s", out, pdqm_error_message(&err));
        return 2;
    }
    printf("snapshot at log entry %llu: %s\n", (unsigned long long)seq, out);
    fflush(stdout);
    if (!purge)
        return 0;
    if (seq == 0) {
        cli_error("%s has applied no log entry: nothing to purge", db);
        return 1;
    }
    pdqm_cluster *c = cli_cluster_open(&co);
    if (c == NULL)
        return 2;
    uint64_t first = 0;
    st = pdqm_cluster_purge(c, seq, &first, &err);
    pdqm_cluster_close(c);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 2;
    }
    printf("purged the stream's entries up to %llu; it begins at %llu\n",
           (unsigned long long)seq, (unsigned long long)first);
    return 0;
}

