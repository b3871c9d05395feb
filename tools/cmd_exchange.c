/*
 * cmd_exchange.c - `pdqmatch exchange`: hash lists from NCMEC, StopNCII,
 * ThreatExchange and TCAP, set up, fetched and watched (exchange/exchange.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "../cluster/cluster.h"
#include "../exchange/exchange.h"

typedef struct xopts {
    const char *db;
    const char *type, *bank, *base_url, *credentials, *privacy_group, *api_version, *since;
    const char *checkpoint;
    int page_size;
    int json, quiet;
    pdqm_exchange_fetch_options f;
    pdqm_cluster_options co;
} xopts;

static const char usage[] =
    "usage: pdqmatch exchange add NAME --type ncmec|stopncii|threatexchange|tcap\n"
    "                  --bank BANK --credentials FILE [--base-url URL] [type options]\n"
    "       pdqmatch exchange list [--json]\n"
    "       pdqmatch exchange fetch [NAME...]\n"
    "       pdqmatch exchange status [NAME] [--json]\n"
    "       pdqmatch exchange delete NAME\n"
    "       pdqmatch exchange reset NAME [--checkpoint JSON]\n";

static const char intro[] =
    "Keep banks in sync with the hash exchanges: each exchange fills a bank of\n"
    "its own with the PDQ hashes of images and the MD5s of videos it shares,\n"
    "each item named by its record id and carrying its provenance (source,\n"
    "record id, member, classification or tags) as metadata, which lookups\n"
    "return; withdrawals and tombstones delete.  Records of other signal types\n"
    "are counted and skipped.  A fetch stores each page with the checkpoint\n"
    "that covers it in one transaction: killed at any moment, the next fetch\n"
    "goes on from there.  One fetch at a time per exchange (a lease in the\n"
    "store; one whose process is gone is taken over at once).\n"
    "\n"
    "  add      set an exchange up (and its bank); credentials are read from a\n"
    "           JSON file of mode 0600, at each fetch, and never shown:\n"
    "           ncmec {\"username\",\"password\"}, stopncii {\"functions_key\",\n"
    "           \"subscription_key\"}, threatexchange {\"access_token\"},\n"
    "           tcap {\"username\",\"password\"}\n"
    "  list     the exchanges and their last fetch\n"
    "  fetch    fetch the exchanges named (all when none) to their end; exits 1\n"
    "           when one failed (what it stored stays)\n"
    "  status   an exchange's config, checkpoint and counts\n"
    "  delete   forget an exchange (its bank and content stay)\n"
    "  reset    set the checkpoint (none: the next fetch reads everything)\n";

static const char outro[] =
    "'pdqmatch serve --fetch-interval S' fetches every exchange in the background.\n"
    "With --nats URLS, add, delete and reset are published to a cluster.\n";

static int parse(int argc, char **argv, xopts *o)
{
    memset(o, 0, sizeof *o);
    o->db = PDQM_STORE_DEFAULT_PATH;
    pdqm_exchange_fetch_options_default(&o->f);
    pdqm_cluster_options_default(&o->co);
    o->co.name = "pdqmatch";
    const cli_opt opts[] = {
        { .name = "db", .type = CLI_TEXT, .value = "PATH", .target = &o->db, .show_default = 1,
          .help = "the store" },
        { .name = "type", .type = CLI_TEXT, .value = "TYPE", .target = &o->type,
          .help = "add: ncmec, stopncii, threatexchange or tcap" },
        { .name = "bank", .type = CLI_TEXT, .value = "BANK", .target = &o->bank,
          .help = "add: the bank its records go to (made when missing; one\n"
                  "exchange a bank)" },
        { .name = "credentials", .type = CLI_TEXT, .value = "FILE", .target = &o->credentials,
          .help = "add: the JSON file of its credentials (mode 0600)" },
        { .name = "base-url", .type = CLI_TEXT, .value = "URL", .target = &o->base_url,
          .help = "add: where the API is (an NCMEC environment, a stand-in);\n"
                  "default: the type's production service" },
        { .name = "privacy-group", .type = CLI_TEXT, .value = "ID", .target = &o->privacy_group,
          .help = "add, threatexchange: the privacy group's id" },
        { .name = "api-version", .type = CLI_TEXT, .value = "V", .target = &o->api_version,
          .help = "add, threatexchange: the Graph API version (default v21.0)" },
        { .name = "since", .type = CLI_TEXT, .value = "TIME", .target = &o->since,
          .help = "add: the first fetch starts at TIME (unix seconds or\n"
                  "YYYY-MM-DD[THH:MM:SSZ]; default: the beginning)" },
        { .name = "page-size", .type = CLI_COUNT, .value = "N", .target = &o->page_size,
          .size = sizeof o->page_size, .min = 1, .max = 10000,
          .help = "add: records a page, where the API takes it (default: the\n"
                  "API's own)" },
        { .name = "checkpoint", .type = CLI_TEXT, .value = "JSON", .target = &o->checkpoint,
          .help = "reset: the checkpoint to set (default: none)" },
        { .name = "timeout", .type = CLI_SECONDS, .value = "S", .target = &o->f.timeout,
          .min = 1, .max = 3600, .show_default = 1, .help = "fetch: seconds a request may take" },
        { .name = "retries", .type = CLI_COUNT, .value = "N", .target = &o->f.max_retries,
          .size = sizeof o->f.max_retries, .min = 0, .max = 100, .show_default = 1,
          .help = "fetch: tries again after a 429, a 5xx or no answer, waiting\n"
                  "Retry-After or a doubling backoff" },
        { .name = "max-wait", .type = CLI_SECONDS, .value = "S", .target = &o->f.max_wait,
          .min = 0, .max = 3600, .show_default = 1,
          .help = "fetch: the longest wait before trying again" },
        { .name = "max-page-bytes", .type = CLI_COUNT, .value = "N",
          .target = &o->f.max_page_bytes, .size = sizeof o->f.max_page_bytes, .min = 1024,
          .max = (double)((uint64_t)1 << 34), .show_default = 1,
          .help = "fetch: a page over N bytes is refused" },
        { .name = "ca-file", .type = CLI_TEXT, .value = "FILE", .target = &o->f.ca_file,
          .help = "fetch: the CA bundle to trust for https (default: the system's)" },
        { .name = "json", .type = CLI_FLAG, .target = &o->json, .help = "list, status: JSON" },
        { .name = "quiet", .type = CLI_FLAG, .target = &o->quiet, .letter = 'q',
          .help = "fetch: warnings only" },
        CLI_NATS_OPTIONS(o->co, "add, delete, reset: publish to the cluster on these NATS\n"
                                "servers (nats://HOST:PORT, comma-separated)"),
    };
    return cli_parse_options("exchange", usage, intro, outro, opts, sizeof opts / sizeof opts[0],
                             argc, argv);
}

static int exit_for(pdqm_status st)
{
    return st == PDQM_ERR_NOT_FOUND || st == PDQM_ERR_EXISTS || st == PDQM_ERR_INVALID ||
                   st == PDQM_ERR_BUSY || st == PDQM_ERR_IO
               ? 1
               : 2;
}

static int open_writer(const xopts *o, pdqm_writer *w)
{
    memset(w, 0, sizeof *w);
    pdqm_error err;
    if (o->co.urls)
        return (w->cluster = cli_cluster_open(&o->co)) ? 0 : 2;
    if (pdqm_store_open(o->db, PDQM_STORE_CREATE, &w->store, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 2;
    }
    return 0;
}

static void close_writer(pdqm_writer *w)
{
    pdqm_cluster_close(w->cluster);
    pdqm_store_close(w->store);
}

static int do_add(xopts *o, const char *name)
{
    pdqm_exchange_config c;
    memset(&c, 0, sizeof c);
    if (o->type == NULL || o->bank == NULL || o->credentials == NULL)
        return cli_usage_error("exchange", "'exchange add' needs --type, --bank and --credentials");
    int type = pdqm_exchange_type_parse(o->type);
    if (type < 0)
        return cli_usage_error("exchange", "--type is ncmec, stopncii, threatexchange or tcap, "
                               "not '%s'", o->type);
    c.type = (pdqm_exchange_type)type;
    if (strlen(name) >= sizeof c.name || strlen(o->bank) >= sizeof c.bank ||
        (o->base_url && strlen(o->base_url) >= sizeof c.base_url) ||
        strlen(o->credentials) >= sizeof c.credentials ||
        (o->privacy_group && strlen(o->privacy_group) >= sizeof c.privacy_group) ||
        (o->api_version && strlen(o->api_version) >= sizeof c.api_version))
        return cli_usage_error("exchange", "a value is too long");
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.bank, sizeof c.bank, "%s", o->bank);
    snprintf(c.base_url, sizeof c.base_url, "%s", o->base_url ? o->base_url : "");
    snprintf(c.credentials, sizeof c.credentials, "%s", o->credentials);
    snprintf(c.privacy_group, sizeof c.privacy_group, "%s", o->privacy_group ? o->privacy_group : "");
    snprintf(c.api_version, sizeof c.api_version, "%s", o->api_version ? o->api_version : "");
    c.page_size = o->page_size;
    if (o->since) {
        c.since = pdqm_exchange_parse_time(o->since);
        if (c.since < 0)
            return cli_usage_error("exchange", "--since is unix seconds or YYYY-MM-DD"
                                   "[THH:MM:SSZ], not '%s'", o->since);
    }
    pdqm_error err;
    if (pdqm_exchange_config_check(&c, &err) != PDQM_OK)
        return cli_usage_error("exchange", "%s", pdqm_error_message(&err));
    /* The credentials now, so that a mistake shows at once (they are read
     * again at each fetch, and only there). */
    if (pdqm_exchange_credentials_check(&c, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 1;
    }
    pdqm_writer w;
    int rc = open_writer(o, &w);
    if (rc)
        return rc;
    pdqm_status st = pdqm_exchange_add(&w, &c, &err);
    close_writer(&w);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return exit_for(st);
    }
    if (!o->quiet)
        printf("exchange %s (%s) added: its records go to bank %s\n", c.name,
               pdqm_exchange_type_name(c.type), c.bank);
    return 0;
}

static void fmt_time(int64_t t, char *out, size_t size)
{
    if (t <= 0) {
        snprintf(out, size, "never");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_human(const pdqm_exchange_info *x, int detail, int64_t now)
{
    const pdqm_exchange_status *s = &x->status;
    char started[32], finished[32];
    fmt_time(s->started, started, sizeof started);
    fmt_time(s->finished, finished, sizeof finished);
    printf("%s: %s into bank %s\n", x->config.name, pdqm_exchange_type_name(x->config.type),
           x->config.bank);
    if (detail) {
        printf("  base url:    %s\n", x->config.base_url[0] ? x->config.base_url
                                      : pdqm_exchange_default_url(x->config.type));
        printf("  credentials: %s\n", x->config.credentials);
        if (x->config.privacy_group[0])
            printf("  privacy group: %s\n", x->config.privacy_group);
        printf("  checkpoint:  %s\n", x->checkpoint ? x->checkpoint : "none");
    }
    if (x->holder[0] && x->lease_until > now)
        printf("  fetching now (%s)\n", x->holder);
    if (s->fetches == 0) {
        printf("  last fetch:  never\n");
        return;
    }
    printf("  last fetch:  %s .. %s, %s%s%s\n", started, finished, s->ok ? "ok" : "failed",
           s->ok ? "" : ": ", s->ok ? "" : s->error);
    printf("               %llu pages, %llu records: %llu added, %llu updated, %llu "
           "unchanged, %llu deleted, %llu skipped, %llu bad\n",
           (unsigned long long)s->last.pages, (unsigned long long)s->last.records,
           (unsigned long long)s->last.added, (unsigned long long)s->last.updated,
           (unsigned long long)s->last.unchanged, (unsigned long long)s->last.deleted,
           (unsigned long long)s->last.skipped, (unsigned long long)s->last.bad);
    if (detail) {
        char ok[32];
        fmt_time(s->last_success, ok, sizeof ok);
        printf("  last success: %s; %llu fetches, %llu failed\n", ok,
               (unsigned long long)s->fetches, (unsigned long long)s->failures);
        printf("  in all:      %llu records: %llu added, %llu updated, %llu deleted, %llu "
               "skipped, %llu bad\n",
               (unsigned long long)s->total.records, (unsigned long long)s->total.added,
               (unsigned long long)s->total.updated, (unsigned long long)s->total.deleted,
               (unsigned long long)s->total.skipped, (unsigned long long)s->total.bad);
    }
}

static int do_show(xopts *o, const char *name, int detail)
{
    pdqm_store *s;
    pdqm_error err;
    if (pdqm_store_open(o->db, PDQM_STORE_READONLY, &s, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 2;
    }
    pdqm_exchange_info *all = NULL;
    size_t n = 0;
    pdqm_status st;
    if (name) {
        all = calloc(1, sizeof *all);
        st = all ? pdqm_exchange_get(s, name, all, &err)
                 : pdqm_error_set(&err, PDQM_ERR_NOMEM, "out of memory");
        n = st == PDQM_OK ? 1 : 0;
    } else {
        st = pdqm_exchange_list(s, &all, &n, &err);
    }
    pdqm_store_close(s);
    if (st != PDQM_OK) {
        free(all);
        cli_error("%s", pdqm_error_message(&err));
        return exit_for(st);
    }
    int64_t now = (int64_t)time(NULL);
    if (o->json) {
        json_t *out = name ? NULL : json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *j = pdqm_exchange_info_json(&all[i], now);
            if (name)
                out = j;
            else
                json_array_append_new(out, j);
        }
        json_dumpf(out, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(out);
    } else {
        if (n == 0)
            printf("no exchanges (pdqmatch exchange add NAME --type ... to set one up)\n");
        for (size_t i = 0; i < n; i++)
            print_human(&all[i], detail, now);
    }
    pdqm_exchange_infos_free(all, n);
    return 0;
}

static void on_log(void *arg, pdqm_exchange_log_level level, const char *exchange,
                   const char *message)
{
    const xopts *o = arg;
    if (level == PDQM_XLOG_INFO && o->quiet)
        return;
    fprintf(stderr, "pdqmatch: exchange %s: %s\n", exchange, message);
}

static int do_fetch(xopts *o, char **names, int n_names)
{
    if (o->co.urls)
        return cli_usage_error("exchange", "in a cluster the nodes fetch: 'pdqmatch serve "
                               "--nats ... --fetch-interval S'");
    pdqm_writer w;
    int rc = open_writer(o, &w);
    if (rc)
        return rc;
    pdqm_error err;
    pdqm_exchange_info *all = NULL;
    size_t n = 0;
    if (n_names == 0 && pdqm_exchange_list(w.store, &all, &n, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        close_writer(&w);
        return 2;
    }
    if (n_names == 0 && n == 0)
        fprintf(stderr, "pdqmatch: no exchanges to fetch\n");
    o->f.log = on_log;
    o->f.log_arg = o;
    int failed = 0, worst = 0;
    size_t count = n_names ? (size_t)n_names : n;
    for (size_t i = 0; i < count; i++) {
        const char *name = n_names ? names[i] : all[i].config.name;
        pdqm_exchange_counts c;
        pdqm_status st = pdqm_exchange_fetch(&w, name, &o->f, &c, &err);
        if (st != PDQM_OK) {
            cli_error("exchange %s: %s", name, pdqm_error_message(&err));
            failed = 1;
            int code = st == PDQM_ERR_STORE || st == PDQM_ERR_NO_SPACE || st == PDQM_ERR_NOMEM
                           ? 2 : 1;
            if (code > worst)
                worst = code;
        }
    }
    pdqm_exchange_infos_free(all, n);
    close_writer(&w);
    return failed ? worst : 0;
}

int cmd_exchange(int argc, char **argv)
{
    xopts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (optind >= argc)
        return cli_usage_error("exchange", "which action: add, list, fetch, status, delete "
                               "or reset?");
    const char *action = argv[optind];
    char **rest = argv + optind + 1;
    int n_rest = argc - optind - 1;
    if (strcmp(action, "fetch") == 0)
        return do_fetch(&o, rest, n_rest);
    if (strcmp(action, "list") == 0 || strcmp(action, "status") == 0) {
        int status = action[0] == 's';
        if (n_rest > (status ? 1 : 0))
            return cli_usage_error("exchange", "unexpected argument '%s'", rest[status ? 1 : 0]);
        if (o.co.urls)
            return cli_usage_error("exchange", "'exchange %s' reads a node's store: --db PATH "
                                   "there, or GET /v1/exchanges", action);
        return do_show(&o, status && n_rest ? rest[0] : NULL, status);
    }
    if (strcmp(action, "add") && strcmp(action, "delete") && strcmp(action, "reset"))
        return cli_usage_error("exchange", "unknown action '%s'", action);
    if (n_rest != 1)
        return cli_usage_error("exchange", n_rest ? "unexpected argument '%s'"
                                                  : "'exchange %s' needs a NAME",
                               n_rest ? rest[1] : action);
    if (strcmp(action, "add") == 0)
        return do_add(&o, rest[0]);
    pdqm_writer w;
    if ((rc = open_writer(&o, &w)) != 0)
        return rc;
    pdqm_error err;
    pdqm_status st = action[0] == 'd' ? pdqm_exchange_remove(&w, rest[0], &err)
                                      : pdqm_exchange_reset(&w, rest[0], o.checkpoint, &err);
    close_writer(&w);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return exit_for(st);
    }
    return 0;
}
