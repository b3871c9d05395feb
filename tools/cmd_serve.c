/*
 * cmd_serve.c - `pdqmatch serve`: the HTTP service until SIGTERM or SIGINT.
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "                      [--max-image-time S] [--max-body-memory N]\n"
    "\n"
    "Serve the store at PATH (default ./pdqmatch.db) over HTTP on HOST:PORT\n"
    "(default 127.0.0.1:8080; port 0 picks a free one),\n"
    "until SIGTERM or SIGINT, which stop accepting, finish the requests in\n"
    "flight and close the store.\n"
    "\n"
    "  --create         make a new empty store when PATH holds none (without it,\n"
    "                   a missing store is an error: a mistyped path must not\n"
    "                   serve an empty store that matches nothing)\n"
    "  --api-keys FILE  lines 'KEY ROLE [NAME]'; requests then send\n"
    "                   'Authorization: Bearer KEY'.  Roles: read (hash, lookup),\n"
    "                   write (also add and delete content), admin (also banks).\n"
    "                   Without keys pdqmatch listens on loopback only.\n"
    "  --tls-cert FILE --tls-key FILE  serve HTTPS with this PEM certificate\n"
    "                   (chain) and key\n"
    "  --timeout S      close a connection idle for S seconds, or whose request\n"
    "                   body takes longer than S seconds to arrive (default 30)\n"
    "  --max-connections N  connections at once (default 1024); more are refused\n"
    "  --max-image-bytes N  largest image body (default 67108864, 64 MiB)\n"
    "  --max-video-bytes N  largest video body (default 536870912, 512 MiB)\n"
    "  --max-body-memory N  bytes of request bodies held at once, all requests\n"
    "                   together (default 1073741824, 1 GiB); past it, 429\n"
    "  --max-pixels N   refuse images over N pixels before decoding (default\n"
    "                   250000000) and video frames over N pixels (default 8K)\n"
    "  --max-image-time S  give up on an image after S seconds of decoding\n"
    "                   (default 60)\n"
    "  --max-duration S, --max-frames N, --max-time S  refuse videos longer than\n"
    "                   S seconds (default 14400) or N frames (1000000), give up\n"
    "                   after S seconds of work (900)\n"
    "\n"
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
    static const struct option options[] = {
        { "db",      required_argument, NULL, 'D' },
        { "listen",  required_argument, NULL, 'l' },
        { "threads", required_argument, NULL, 't' },
        { "api-keys", required_argument, NULL, 'k' },
        { "timeout", required_argument, NULL, 'T' },
        { "tls-cert", required_argument, NULL, 'c' },
        { "max-pixels", required_argument, NULL, 'p' },
        { "max-image-bytes", required_argument, NULL, 'I' },
        { "max-video-bytes", required_argument, NULL, 'V' },
        { "max-duration", required_argument, NULL, 'd' },
        { "max-frames", required_argument, NULL, 'F' },
        { "max-time", required_argument, NULL, 'w' },
        { "max-image-time", required_argument, NULL, 'i' },
        { "tls-key", required_argument, NULL, 'K' },
        { "max-connections", required_argument, NULL, 'C' },
        { "max-body-memory", required_argument, NULL, 'M' },
        { "create",  no_argument,       NULL, 'N' },
        { "help",    no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *db = PDQM_STORE_DEFAULT_PATH;
    const char *keys_path = NULL, *cert_path = NULL, *key_path = NULL;
    pdqm_server_options o;
    pdqm_server_options_default(&o);
    uint64_t v;
    int create = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'D': db = optarg; break;
        case 'N': create = 1; break;
        case 'l': o.listen = optarg; break;
        case 'k': keys_path = optarg; break;
        case 'c': cert_path = optarg; break;
        case 'p':
            if (cli_parse_u64(optarg, 1, UINT64_MAX, &v))
                return cli_usage_error("serve", "--max-pixels takes a positive number, not '%s'", optarg);
            o.image_limits.max_pixels = v;
            o.video_limits.max_pixels = v;
            break;
        case 'I': case 'V':
            if (cli_parse_u64(optarg, 1, (uint64_t)4 << 30, &v))
                return cli_usage_error("serve", "%s takes bytes from 1 to 4 GiB, not '%s'",
                                       c == 'I' ? "--max-image-bytes" : "--max-video-bytes", optarg);
            if (c == 'I')
                o.image_limits.max_bytes = (size_t)v;
            else
                o.video_limits.max_bytes = (size_t)v;
            break;
        case 'M':
            if (cli_parse_u64(optarg, 1, (uint64_t)1 << 40, &v))
                return cli_usage_error("serve", "--max-body-memory takes bytes from 1 to 1 TiB, not '%s'", optarg);
            o.max_body_memory = (size_t)v;
            break;
        case 'F':
            if (cli_parse_u64(optarg, 1, UINT32_MAX, &v))
                return cli_usage_error("serve", "--max-frames takes a positive number, not '%s'", optarg);
            o.video_limits.max_frames = (uint32_t)v;
            break;
        case 'd': case 'w': case 'i': {
            char *end;
            double d = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(d > 0) || d > 1e7)
                return cli_usage_error("serve", "%s takes a positive number of seconds, not '%s'",
                                       c == 'd' ? "--max-duration" : c == 'w' ? "--max-time"
                                       : "--max-image-time", optarg);
            if (c == 'd')
                o.video_limits.max_seconds = d;
            else if (c == 'w')
                o.video_limits.max_wall_seconds = d;
            else
                o.image_limits.max_seconds = d;
            break;
        }
        case 'K': key_path = optarg; break;
        case 'T':
            if (cli_parse_u64(optarg, 1, 3600, &v))
                return cli_usage_error("serve", "--timeout takes seconds from 1 to 3600, not '%s'", optarg);
            o.timeout_seconds = (unsigned)v;
            break;
        case 'C':
            if (cli_parse_u64(optarg, 1, 100000, &v))
                return cli_usage_error("serve", "--max-connections takes a number from 1 to 100000, not '%s'", optarg);
            o.max_connections = (unsigned)v;
            break;
        case 't':
            if (cli_parse_u64(optarg, 1, 256, &v))
                return cli_usage_error("serve", "--threads takes a number from 1 to 256, not '%s'", optarg);
            o.threads = (unsigned)v;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            return cli_usage_error("serve", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("serve", "unknown option '%s'", argv[optind - 1]);
        }
    }
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
