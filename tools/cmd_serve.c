/*
 * cmd_serve.c - `pdqmatch serve`: the HTTP service until SIGTERM or SIGINT.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "../hashing/fileio.h"
#include "../hashing/image.h"
#include "../index/store.h"
#include "../server/server.h"

static const char usage[] =
    "usage: pdqmatch serve [--db PATH] [--create] [--listen HOST:PORT] [--threads N]\n"
    "                      [--api-keys FILE] [--timeout S] [--max-connections N]\n"
    "                      [--tls-cert FILE --tls-key FILE] [--max-pixels N]\n"
    "                      [--max-image-bytes N] [--max-video-bytes N]\n"
    "                      [--max-duration S] [--max-frames N] [--max-time S]\n"
    "                      [--max-image-time S] [--max-body-memory N]\n";

static const char intro[] =
    "Serve the store at PATH over HTTP on HOST:PORT (port 0 picks a free one),\n"
    "until SIGTERM or SIGINT, which stop accepting, finish the requests in\n"
    "flight and close the store.\n";

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

int cmd_serve(int argc, char **argv)
{
    const char *db = PDQM_STORE_DEFAULT_PATH;
    const char *keys_path = NULL, *cert_path = NULL, *key_path = NULL;
    int create = 0;
    pdqm_server_options o;
    pdqm_server_options_default(&o);
    /* Every option once: parsing, --help and the defaults shown (read from
     * pdqm_server_options_default()) come from this table. */
    const cli_opt options[] = {
        { "db", CLI_TEXT, "PATH", &db, 0, 0, 0, "the store", 1, NULL, 0, NULL },
        { "create", CLI_FLAG, NULL, &create, 0, 0, 0,
          "make a new empty store when PATH holds none (without it, a missing\n"
          "store is an error: a mistyped path must not serve an empty store)", 0, NULL, 0, NULL },
        { "listen", CLI_TEXT, "HOST:PORT", &o.listen, 0, 0, 0, "where to listen", 1, NULL, 0, NULL },
        { "threads", CLI_COUNT, "N", &o.threads, sizeof o.threads, 1, 256,
          "request threads (default: one per core)", 0, NULL, 0, NULL },
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
    };
    int rc = cli_parse_options("serve", usage, intro, outro, options,
                               sizeof options / sizeof options[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if ((cert_path == NULL) != (key_path == NULL))
        return cli_usage_error("serve", "--tls-cert and --tls-key go together");

    /* The signals that stop the server are taken by sigwait below, in this
     * thread only: block them before any thread starts. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    pdqm_error err;
    char *cert = NULL, *key = NULL;
    if (cert_path && (read_pem(cert_path, &cert) != 0 || read_pem(key_path, &key) != 0)) {
        free(cert);
        return 2;
    }
    o.tls_cert_pem = cert;
    o.tls_key_pem = key;
    pdqm_api_keys keys = { NULL, 0 };
    if (keys_path) {
        if (pdqm_api_keys_load(keys_path, &keys, &err) != PDQM_OK) {
            cli_error("%s", pdqm_error_message(&err));
            free(cert);
            free(key);
            return 2;
        }
        o.keys = &keys;
    }
    pdqm_store *store;
    pdqm_status st = pdqm_store_open(db, create ? PDQM_STORE_CREATE : 0, &store, &err);
    if (st != PDQM_OK) {
        if (st == PDQM_ERR_NOT_FOUND)
            cli_error("%s: no store there (give --create to make a new one)", db);
        else
            cli_error("%s", pdqm_error_message(&err));
        pdqm_api_keys_free(&keys);
        free(cert);
        free(key);
        return 2;
    }
    pdqm_server *server;
    if (pdqm_server_start(store, &o, &server, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        pdqm_store_close(store);
        pdqm_api_keys_free(&keys);
        free(cert);
        free(key);
        return 2;
    }
    const char *colon = strrchr(o.listen, ':');
    fprintf(stderr, "pdqmatch: serving %s%s on %.*s:%u\n", db, cert ? " over TLS" : "", (int)(colon - o.listen), o.listen,
            pdqm_server_port(server));
    int sig;
    sigwait(&stop, &sig);
    fprintf(stderr, "pdqmatch: %s: stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    pdqm_server_stop(server);
    pdqm_store_close(store);
    pdqm_api_keys_free(&keys);
    free(cert);
    free(key);
    return 0;
}
