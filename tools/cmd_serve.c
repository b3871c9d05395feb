/*
 * cmd_serve.c - `pdqmatch serve`: the HTTP service until SIGTERM or SIGINT.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "../hashing/fileio.h"
#include "../hashing/image.h"
#include "../index/store.h"
#include "../server/server.h"
#include "../cluster/cluster.h"
#include "../exchange/exchange.h"

static const char usage[] =
    "usage: pdqmatch serve [--db PATH] [--create] [--listen HOST:PORT] [--threads N]\n"
    "                      [--api-keys FILE] [--timeout S] [--max-connections N]\n"
    "                      [--max-connections-per-ip N] [--header-timeout S]\n"
    "                      [--tls-cert FILE --tls-key FILE] [--max-pixels N]\n"
    "                      [--max-image-bytes N] [--max-video-bytes N]\n"
    "                      [--max-duration S] [--max-frames N] [--max-time S]\n"
    "                      [--max-image-time S] [--max-body-memory N]\n"
    "                      [--log-level L] [--log-format text|json] [--log-file PATH]\n"
    "                      [--hma] [--console]\n"
    "                      [--fetch-allow-hosts H1,H2,...] [--fetch-max-bytes N]\n"
    "                      [--fetch-timeout S] [--fetch-interval S]\n"
    "                      [--nats URL[,URL...] [--stream NAME] [--mirror NAME]\n"
    "                       [--stream-replicas N]\n"
    "                       [--nats-creds FILE] [--nats-ca FILE]\n"
    "                       [--nats-cert FILE --nats-key FILE] [--max-lag S]]\n";

static const char intro[] =
    "Serve the store at PATH over HTTP on HOST:PORT (port 0 picks a free one),\n"
    "until SIGTERM or SIGINT, which stop accepting, finish the requests in\n"
    "flight and close the store.  SIGHUP reopens the log file (for logrotate)\n"
    "and reloads the key file without dropping a connection (a file that does\n"
    "not load leaves the keys as they were).\n"
    "The log has a record at start (where it listens: listen=HOST:PORT), one a\n"
    "request (at info), one for every 5xx (at error) and one at the end.\n";

static const char outro[] =
    "The routes are listed in the README.\n";

/* Read a PEM file into a new NUL-terminated string; 0 on success. */
static int read_pem(const char *path, char **out)
{
    uint8_t *data;
    size_t len;
    pdqm_error err;
    if (pdqm_read_file(path, 1 << 20, &data, &len, &err) != PDQM_OK) {
        cli_error("%s: %s", path, pdqm_error_message(&err));
        return -1;
    }
    *out = malloc(len + 1);
    if (*out == NULL) {
        free(data);
        cli_error("out of memory");
        return -1;
    }
    memcpy(*out, data, len);
    (*out)[len] = '\0';
    free(data);
    return 0;
}

/* A key file others may read is taken, with a warning at each load. */
static void warn_if_open(pdqm_log *log, const char *keys_path)
{
    struct stat sb;
    if (keys_path && stat(keys_path, &sb) == 0 && (sb.st_mode & 077) != 0) {
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(sb.st_mode & 07777));
        PDQM_LOG(log, PDQM_LOG_WARN, "the key file is open to group or others",
                 PDQM_LOG_S("file", keys_path), PDQM_LOG_S("mode", mode),
                 PDQM_LOG_S("fix", "chmod 600"));
    }
}

/* SIGHUP: read the key file again; a file that does not load leaves the
 * keys in force as they were. */
static void reload_keys(pdqm_log *log, pdqm_server *server, const char *keys_path)
{
    pdqm_api_keys keys = { NULL, 0 };
    pdqm_error err;
    if (pdqm_api_keys_load(keys_path, &keys, &err) != PDQM_OK ||
        pdqm_server_set_keys(server, &keys, &err) != PDQM_OK) {
        PDQM_LOG(log, PDQM_LOG_ERROR, "cannot reload the keys; the old ones stay",
                 PDQM_LOG_S("file", keys_path), PDQM_LOG_S("error", pdqm_error_message(&err)));
    } else {
        PDQM_LOG(log, PDQM_LOG_INFO, "reloaded the keys", PDQM_LOG_S("file", keys_path),
                 PDQM_LOG_I("keys", keys.count));
        warn_if_open(log, keys_path);
    }
    if (keys.keys)
        memset(keys.keys, 0, keys.count * sizeof *keys.keys);
    pdqm_api_keys_free(&keys);
}

/* What the exchanges' fetcher has to say, in the service's log. */
static void exchange_log(void *arg, pdqm_exchange_log_level level, const char *exchange,
                         const char *message)
{
    PDQM_LOG((pdqm_log *)arg, level == PDQM_XLOG_WARN ? PDQM_LOG_WARN : PDQM_LOG_INFO,
             "exchange", PDQM_LOG_S("exchange", exchange), PDQM_LOG_S("message", message));
}

int cmd_serve(int argc, char **argv)
{
    const char *db = PDQM_STORE_DEFAULT_PATH;
    const char *keys_path = NULL, *cert_path = NULL, *key_path = NULL;
    const char *log_level = "info", *log_format = "text", *log_file = NULL;
    int create = 0;
    pdqm_server_options o;
    pdqm_server_options_default(&o);
    pdqm_cluster_options co;
    pdqm_cluster_options_default(&co);
    co.name = "pdqmatch serve";
    pdqm_fetch_options fo;
    pdqm_fetch_options_default(&fo);
    double fetch_interval = 0;
    /* Every option once: parsing, --help and the defaults shown (read from
     * pdqm_server_options_default()) come from this table. */
    const cli_opt options[] = {
        { "db", CLI_TEXT, "PATH", &db, 0, 0, 0, "the store", 1, NULL, 0, NULL },
        { "create", CLI_FLAG, NULL, &create, 0, 0, 0,
          "make a new empty store when PATH holds none (without it, a missing\n"
          "store is an error: a mistyped path must not serve an empty store)", 0, NULL, 0, NULL },
        { "listen", CLI_TEXT, "HOST:PORT", &o.listen, 0, 0, 0, "where to listen", 1, NULL, 0, NULL },
        { "threads", CLI_COUNT, "N", &o.threads, sizeof o.threads, 1, 256,
          "request threads (default: one per core; media are decoded one per core at a time)", 0, NULL, 0, NULL },
        { "api-keys", CLI_TEXT, "FILE", &keys_path, 0, 0, 0,
          "lines 'KEY ROLE [NAME]'; requests then send 'Authorization: Bearer\n"
          "KEY'.  Roles: read (hash, lookup), write (also add and delete\n"
          "content), admin (also banks).  Without keys pdqmatch listens on\n"
          "loopback only", 0, NULL, 0, NULL },
        { "tls-cert", CLI_TEXT, "FILE", &cert_path, 0, 0, 0,
          "serve HTTPS with this PEM certificate (chain); with --tls-key", 0, NULL, 0, NULL },
        { "tls-key", CLI_TEXT, "FILE", &key_path, 0, 0, 0, "the certificate's PEM key", 0, NULL, 0, NULL },
        { "timeout", CLI_COUNT, "S", &o.timeout_seconds, sizeof o.timeout_seconds, 1, 3600,
          "close a connection idle for S seconds, or whose request body takes\n"
          "longer than S seconds to arrive", 1, NULL, 0, NULL },
        { "max-connections", CLI_COUNT, "N", &o.max_connections, sizeof o.max_connections,
          1, 100000, "connections at once; more are refused", 1, NULL, 0, NULL },
        { "header-timeout", CLI_COUNT, "S", &o.header_timeout_seconds,
          sizeof o.header_timeout_seconds, 1, 3600,
          "close a connection that has not sent a whole request head S seconds\n"
          "after it opened or after its last request (a client trickling its\n"
          "headers is never idle)", 1, NULL, 0, NULL },
        { "max-connections-per-ip", CLI_COUNT, "N", &o.max_connections_per_ip,
          sizeof o.max_connections_per_ip, 1, 100000,
          "connections at once from one client address; more are refused", 1, NULL, 0,
          NULL },
        { "max-image-bytes", CLI_COUNT, "N", &o.image_limits.max_bytes,
          sizeof o.image_limits.max_bytes, 1, (double)((uint64_t)4 << 30),
          "largest image body", 1, NULL, 0, NULL },
        { "max-video-bytes", CLI_COUNT, "N", &o.video_limits.max_bytes,
          sizeof o.video_limits.max_bytes, 1, (double)((uint64_t)4 << 30),
          "largest video body", 1, NULL, 0, NULL },
        { "max-body-memory", CLI_COUNT, "N", &o.max_body_memory, sizeof o.max_body_memory,
          1, (double)((uint64_t)1 << 40),
          "bytes of request bodies held at once, all requests together; past\n"
          "it, 429", 1, NULL, 0, NULL },
        { "max-pixels", CLI_COUNT, "N", &o.image_limits.max_pixels,
          sizeof o.image_limits.max_pixels, 1, 1e15,
          "refuse images over N pixels before decoding, and video frames over N\n"
          "pixels", 1, &o.video_limits.max_pixels, 0, "for video frames" },
        { "max-image-time", CLI_SECONDS, "S", &o.image_limits.max_seconds, 0, 0.001, 1e7,
          "give up on an image after S seconds of decoding", 1, NULL, 0, NULL },
        { "max-duration", CLI_SECONDS, "S", &o.video_limits.max_seconds, 0, 0.001, 1e7,
          "refuse videos longer than S seconds", 1, NULL, 0, NULL },
        { "max-frames", CLI_COUNT, "N", &o.video_limits.max_frames,
          sizeof o.video_limits.max_frames, 1, UINT32_MAX, "refuse videos over N frames", 1,
          NULL, 0, NULL },
        { "max-time", CLI_SECONDS, "S", &o.video_limits.max_wall_seconds, 0, 0.001, 1e7,
          "give up on a video after S seconds of work", 1, NULL, 0, NULL },
        { "log-level", CLI_TEXT, "L", &log_level, 0, 0, 0,
          "debug, info (a record a request), warn or error", 1, NULL, 0, NULL },
        { "log-format", CLI_TEXT, "F", &log_format, 0, 0, 0,
          "text (one line a record: time, level, message, name=value) or json\n"
          "(one object a line)", 1, NULL, 0, NULL },
        { "log-file", CLI_TEXT, "PATH", &log_file, 0, 0, 0,
          "append the log to PATH (reopened on SIGHUP) instead of standard error",
          0, NULL, 0, NULL },
        { .name = "hma", .type = CLI_FLAG, .target = &o.hma,
          .help = "also answer the HTTP API of Meta's Hasher-Matcher-Actioner (HMA\n"
                  "1.1.7: /m/, /c/, /h/, /status) on the same store and keys" },
        { .name = "console", .type = CLI_FLAG, .target = &o.console,
          .help = "also serve the web console for analysts at /console/ (it calls\n"
                  "this API with the analyst's key and role)" },
        { .name = "fetch-allow-hosts", .type = CLI_TEXT, .value = "H1,H2,...",
          .target = &fo.allow_hosts,
          .help = "HMA's url= fetches media from these hosts only (a name and its\n"
                  "subdomains; an address itself, loopback and private ones\n"
                  "included); none by default: fetching by URL is off" },
        { .name = "fetch-max-bytes", .type = CLI_COUNT, .value = "N", .target = &fo.max_bytes,
          .size = sizeof fo.max_bytes, .min = 1, .max = (double)((uint64_t)4 << 30),
          .show_default = 1, .help = "largest body fetched by URL" },
        { .name = "fetch-timeout", .type = CLI_SECONDS, .value = "S", .target = &fo.timeout,
          .min = 0.001, .max = 3600, .show_default = 1,
          .help = "give up on a fetch by URL after S seconds, redirects included" },
        { .name = "fetch-interval", .type = CLI_SECONDS, .value = "S", .target = &fetch_interval,
          .min = 1, .max = 7 * 86400,
          .help = "fetch every hash exchange of the store ('pdqmatch exchange') every\n"
                  "S seconds, in the background (a fetch under way elsewhere, by\n"
                  "the CLI or another node, is left to it); off by default" },
        CLI_NATS_OPTIONS(co, "be a node of a cluster: every write goes through the NATS\n"
                             "JetStream stream on these servers (nats://HOST:PORT,\n"
                             "comma-separated), and the store is fed from it (docs/SCALING.md)"),
        { .name = "mirror", .type = CLI_TEXT, .value = "NAME", .target = &co.mirror,
          .help = "read the stream through NAME, a mirror of it in this region's\n"
                  "JetStream (created when missing; writes still go to the stream)" },
        { "max-lag", CLI_SECONDS, "S", &o.max_lag, 0, 0.001, 86400,
          "/readyz answers 503 while the store is more than S seconds behind the\n"
          "stream", 1, NULL, 0, NULL },
    };
    int rc = cli_parse_options("serve", usage, intro, outro, options,
                               sizeof options / sizeof options[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if ((cert_path == NULL) != (key_path == NULL))
        return cli_usage_error("serve", "--tls-cert and --tls-key go together");
    int level = pdqm_log_level_parse(log_level);
    if (level < 0)
        return cli_usage_error("serve", "--log-level is debug, info, warn or error, not '%s'",
                               log_level);
    if (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0)
        return cli_usage_error("serve", "--log-format is text or json, not '%s'", log_format);

    /* The signals that stop the server are taken by sigwait below, in this
     * thread only: block them before any thread starts. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    pdqm_error err;
    pdqm_log *log;
    if (pdqm_log_open(log_file, (pdqm_log_level)level,
                      strcmp(log_format, "json") == 0 ? PDQM_LOG_JSON : PDQM_LOG_TEXT, &log,
                      &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 2;
    }
    o.log = log;
    rc = 2;
    char *cert = NULL, *key = NULL;
    pdqm_api_keys keys = { NULL, 0 };
    pdqm_store *store = NULL;
    pdqm_server *server = NULL;
    pdqm_cluster *cluster = NULL;
    pdqm_fetcher *fetcher = NULL;
    pdqm_exchange_scheduler *scheduler = NULL;
    pdqm_writer writer = { NULL, NULL };
    if (cert_path && (read_pem(cert_path, &cert) != 0 || read_pem(key_path, &key) != 0))
        goto done;
    if (fo.allow_hosts && !o.hma) {
        cli_error("--fetch-allow-hosts is for HMA's url= (give --hma)");
        goto done;
    }
    if (pdqm_fetcher_new(&fo, &fetcher, &err) != PDQM_OK) {
        cli_error("--fetch-allow-hosts: %s", pdqm_error_message(&err));
        goto done;
    }
    o.fetcher = fetcher;
    o.tls_cert_pem = cert;
    o.tls_key_pem = key;
    if (keys_path) {
        if (pdqm_api_keys_load(keys_path, &keys, &err) != PDQM_OK) {
            cli_error("%s", pdqm_error_message(&err));
            goto done;
        }
        o.keys = &keys;
    }
    pdqm_status st = pdqm_store_open(db, create ? PDQM_STORE_CREATE : 0, &store, &err);
    if (st != PDQM_OK) {
        if (st == PDQM_ERR_NOT_FOUND)
            cli_error("%s: no store there (give --create to make a new one)", db);
        else
            cli_error("%s", pdqm_error_message(&err));
        goto done;
    }
    if (co.urls) {
        co.timeout = o.timeout_seconds < 5 ? o.timeout_seconds : 5;
        if (pdqm_cluster_open(&co, &cluster, &err) != PDQM_OK ||
            pdqm_cluster_follow(cluster, store, &err) != PDQM_OK) {
            cli_error("%s", pdqm_error_message(&err));
            goto done;
        }
        o.cluster = cluster;
    }
    writer = (pdqm_writer){ store, cluster };
    if (fetch_interval > 0) {
        pdqm_exchange_fetch_options xo;
        pdqm_exchange_fetch_options_default(&xo);
        xo.log = exchange_log;
        xo.log_arg = log;
        if (pdqm_exchange_scheduler_start(&writer, fetch_interval, &xo, &scheduler, &err) !=
            PDQM_OK) {
            cli_error("%s", pdqm_error_message(&err));
            goto done;
        }
        o.scheduler = scheduler;
    }
    if (pdqm_server_start(store, &o, &server, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        goto done;
    }

    /* The start-up record: what is served, where, and under which limits
     * (listen last: a script that started on port 0 reads it there). */
    pdqm_store_stats stats = { 0 };
    pdqm_store_stats_get(store, &stats, NULL);
    const char *colon = strrchr(o.listen, ':');
    char listen[96];
    snprintf(listen, sizeof listen, "%.*s:%u", (int)(colon - o.listen), o.listen,
             pdqm_server_port(server));
    PDQM_LOG(log, PDQM_LOG_INFO, "started", PDQM_LOG_S("version", PDQM_VERSION),
             PDQM_LOG_S("store", db), PDQM_LOG_I("banks", stats.banks),
             PDQM_LOG_I("contents", stats.contents), PDQM_LOG_I("hashes", stats.hashes),
             PDQM_LOG_I("pending", stats.pending), PDQM_LOG_S("tls", cert ? "on" : "off"),
             PDQM_LOG_S("auth", keys_path ? "on" : "off"), PDQM_LOG_I("keys", keys.count),
             PDQM_LOG_I("max_connections", o.max_connections),
             PDQM_LOG_I("max_connections_per_ip", o.max_connections_per_ip),
             PDQM_LOG_I("timeout_s", o.timeout_seconds),
             PDQM_LOG_I("header_timeout_s", o.header_timeout_seconds),
             PDQM_LOG_I("max_body_memory", o.max_body_memory),
             PDQM_LOG_I("max_image_bytes", o.image_limits.max_bytes),
             PDQM_LOG_I("max_video_bytes", o.video_limits.max_bytes),
             PDQM_LOG_S("cluster", co.urls ? co.urls : "off"),
             PDQM_LOG_S("stream", co.urls ? co.stream : "-"),
             PDQM_LOG_S("hma", o.hma ? "on" : "off"),
             PDQM_LOG_S("console", o.console ? "on" : "off"),
             PDQM_LOG_S("fetch_allow_hosts", fo.allow_hosts ? fo.allow_hosts : "-"),
             PDQM_LOG_I("fetch_interval_s", (long long)fetch_interval),
             PDQM_LOG_S("listen", listen));
    warn_if_open(log, keys_path);
    int sig;
    for (;;) {
        sigwait(&stop, &sig);
        if (sig != SIGHUP)
            break;
        if (pdqm_log_reopen(log, &err) != PDQM_OK)
            PDQM_LOG(log, PDQM_LOG_ERROR, "cannot reopen the log",
                     PDQM_LOG_S("error", pdqm_error_message(&err)));
        else
            PDQM_LOG(log, PDQM_LOG_INFO, "reopened the log", PDQM_LOG_S("signal", "SIGHUP"));
        if (keys_path)
            reload_keys(log, server, keys_path);
    }
    PDQM_LOG(log, PDQM_LOG_INFO, "stopping",
             PDQM_LOG_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    pdqm_exchange_scheduler_stop(scheduler);
    scheduler = NULL;
    pdqm_server_stop(server);
    server = NULL;
    pdqm_cluster_close(cluster);
    cluster = NULL;
    pdqm_store_close(store);
    store = NULL;
    PDQM_LOG(log, PDQM_LOG_INFO, "stopped", PDQM_LOG_S("store", db));
    rc = 0;
done:
    pdqm_exchange_scheduler_stop(scheduler);
    pdqm_server_stop(server);
    pdqm_cluster_close(cluster);
    pdqm_store_close(store);
    pdqm_fetcher_free(fetcher);
    pdqm_api_keys_free(&keys);
    free(cert);
    free(key);
    pdqm_log_close(log);
    return rc;
}
