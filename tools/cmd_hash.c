/*
 * cmd_hash.c - `pdqmatch hash`: PDQ hashes of image files.
 *
 * Files are hashed by a pool of worker threads (one a core by default) and
 * printed in the order given (see pool.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pool.h"
#include "../core/jsonraw.h"
#include "../hashing/fileio.h"
#include "../hashing/media.h"

static const char usage[] =
    "usage: pdqmatch hash [--dihedral] [--json] [--interval S] [--threads N]\n"
    "                     [--max-pixels N] [--max-bytes N] FILE...\n"
    "\n"
    "Print the PDQ hash and quality of each image FILE, one line a file, and\n"
    "the vPDQ frame hashes of each video FILE, in the order given.  A FILE of\n"
    "'-' reads file names from standard input, one a line.  Images: JPEG, PNG,\n"
    "GIF (first frame), WebP, TIFF, PPM/PGM, HEIF/AVIF; videos: what FFmpeg\n"
    "reads.  Image or video is told from the content.\n"
    "\n"
    "output:\n"
    "  default      HASH,QUALITY,FILENAME\n"
    "  --dihedral   ORIG,ROT90,ROT180,ROT270,FLIPX,FLIPY,FLIPPLUS1,FLIPMINUS1,\n"
    "               QUALITY,FILENAME\n"
    "  --json       one JSON object a line: file, hash, quality, width, height,\n"
    "               sha256, md5 (and dihedral, an array of 8, with --dihedral)\n"
    "  a video      FRAME,QUALITY,HASH,TIMESTAMP a frame (vPDQ's format); with\n"
    "               --json one object: file, type, frames, duration, fps,\n"
    "               width, height, sha256, md5\n"
    "\n";

static const char outro[] =
    "A file that cannot be hashed is reported on standard error as\n"
    "'pdqmatch: FILE: reason'; the others are still hashed.  Exit status: 0\n"
    "when every file was hashed, 1 when any failed, 2 on a usage error.\n";

typedef struct job {
    char *name;
    pdqm_status status;
    pdqm_error error;
    pdqm_media_kind kind;
    pdqm_image_hash result;      /* an image */
    pdqm_video_hashes video;     /* a video */
} job;

typedef struct hash_run {
    pdqm_image_limits limits;
    pdqm_video_limits video_limits;
    double interval;
    unsigned flags;
    int json;
    int failures;
} hash_run;

static void work(void *ctx, void *item)
{
    hash_run *run = ctx;
    job *j = item;
    pdqm_error_clear(&j->error);
    size_t max = run->limits.max_bytes > run->video_limits.max_bytes
        ? run->limits.max_bytes : run->video_limits.max_bytes;
    uint8_t *data;
    size_t len;
    j->status = pdqm_read_file(j->name, max, &data, &len, &j->error);
    if (j->status != PDQM_OK)
        return;
    j->kind = pdqm_media_sniff(data, len);
    if (j->kind == PDQM_MEDIA_VIDEO)
        j->status = pdqm_hash_video_bytes(data, len, &run->video_limits, run->interval, 1,
                                          run->flags & PDQM_MEDIA_DIGESTS, &j->video, &j->error);
    else
        j->status = pdqm_hash_image_bytes(data, len, &run->limits, run->flags, &j->result,
                                          &j->error);
    free(data);
}

/* A video: the vPDQ text, FRAME,QUALITY,HASH,TIMESTAMP a line, or one JSON
 * object. */
static void print_video(const job *j, int json)
{
    const pdqm_video_hashes *v = &j->video;
    char hex[PDQM_HASH_HEX_LEN + 1];
    if (!json) {
        for (size_t i = 0; i < v->count; i++) {
            pdqm_hash256_to_hex(&v->frames[i].hash, hex);
            printf("%u,%d,%s,%.3f\n", v->frames[i].frame, v->frames[i].quality, hex,
                   v->frames[i].timestamp);
        }
        return;
    }
    json_t *o = json_object(), *frames = json_array();
    json_object_set_new(o, "file", cli_json_text(j->name));
    json_object_set_new(o, "type", json_string("video"));
    for (size_t i = 0; i < v->count; i++) {
        pdqm_hash256_to_hex(&v->frames[i].hash, hex);
        json_t *f = json_object();
        json_object_set_new(f, "frame", json_integer(v->frames[i].frame));
        json_object_set_new(f, "timestamp", json_real(v->frames[i].timestamp));
        json_object_set_new(f, "hash", json_string(hex));
        json_object_set_new(f, "quality", json_integer(v->frames[i].quality));
        json_array_append_new(frames, f);
    }
    json_object_set_new(o, "frames", frames);
    json_object_set_new(o, "duration", json_real(v->info.duration));
    json_object_set_new(o, "fps", json_real(v->info.fps));
    json_object_set_new(o, "width", json_integer(v->info.width));
    json_object_set_new(o, "height", json_integer(v->info.height));
    json_object_set_new(o, "sha256", json_string(v->digests.sha256));
    json_object_set_new(o, "md5", json_string(v->digests.md5));
    json_dumpf(o, stdout, PDQM_JSON_DUMP_FLAGS);
    fputc('\n', stdout);
    json_decref(o);
}

static void print_json(const job *s, int dihedral)
{
    const pdqm_image_hash *r = &s->result;
    char hex[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&r->pdq.hash, hex);
    json_t *o = json_object();
    json_object_set_new(o, "file", cli_json_text(s->name));
    json_object_set_new(o, "hash", json_string(hex));
    json_object_set_new(o, "quality", json_integer(r->pdq.quality));
    json_object_set_new(o, "width", json_integer(r->width));
    json_object_set_new(o, "height", json_integer(r->height));
    json_object_set_new(o, "sha256", json_string(r->digests.sha256));
    json_object_set_new(o, "md5", json_string(r->digests.md5));
    if (dihedral) {
        json_t *a = json_array();
        for (int d = 0; d < PDQM_DIHEDRAL_COUNT; d++) {
            pdqm_hash256_to_hex(&r->pdq.dihedral[d], hex);
            json_array_append_new(a, json_string(hex));
        }
        json_object_set_new(o, "dihedral", a);
    }
    json_dumpf(o, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(o);
}

/* Print one finished job, in input order, and free it. */
static void done(void *ctx, void *item)
{
    hash_run *p = ctx;
    job *s = item;
    if (s->status != PDQM_OK) {
        cli_error("%s: %s", s->name, pdqm_error_message(&s->error));
        p->failures++;
    } else if (s->kind == PDQM_MEDIA_VIDEO) {
        print_video(s, p->json);
        pdqm_video_hashes_free(&s->video);
    } else if (p->json) {
        print_json(s, (p->flags & PDQM_MEDIA_DIHEDRAL) != 0);
    } else {
        const pdqm_image_hash *r = &s->result;
        char hex[PDQM_HASH_HEX_LEN + 1];
        if (p->flags & PDQM_MEDIA_DIHEDRAL) {
            for (int d = 0; d < PDQM_DIHEDRAL_COUNT; d++) {
                pdqm_hash256_to_hex(&r->pdq.dihedral[d], hex);
                fputs(hex, stdout);
                fputc(',', stdout);
            }
            printf("%d,%s\n", r->pdq.quality, s->name);
        } else {
            pdqm_hash256_to_hex(&r->pdq.hash, hex);
            printf("%s,%d,%s\n", hex, r->pdq.quality, s->name);
        }
    }
    free(s->name);
    free(s);
}

/* Queue one file name (taking ownership of name); -1 when out of memory. */
static int submit(pool *p, char *name)
{
    job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        free(name);
        return -1;
    }
    j->name = name;
    pool_submit(p, j);
    return 0;
}

/* Queue every non-empty line of standard input as a file name.
 * Returns -1 when standard input cannot be read. */
static int enqueue_stdin(pool *p)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n == 0)
            continue;
        char *name = strdup(line);
        if (name == NULL || submit(p, name) != 0) {
            free(line);
            return -1;
        }
    }
    int bad = ferror(stdin);
    free(line);
    return bad ? -1 : 0;
}

int cmd_hash(int argc, char **argv)
{
    hash_run p;
    memset(&p, 0, sizeof p);
    pdqm_image_limits_default(&p.limits);
    pdqm_video_limits_default(&p.video_limits);
    p.interval = 1.0;
    uint32_t threads = (uint32_t)cli_cpu_count();
    int dihedral = 0;
    const cli_opt options[] = {
        { .name = "dihedral", .type = CLI_FLAG, .target = &dihedral,
          .help = "also the hashes of the 7 other rotations and flips" },
        { .name = "json", .type = CLI_FLAG, .target = &p.json,
          .help = "one JSON object a line (with the file's digests)" },
        { .name = "interval", .type = CLI_SECONDS, .value = "S", .target = &p.interval,
          .min = 0, .max = 86400, .show_default = 1,
          .help = "hash a video frame every S seconds (0: every frame)" },
        { .name = "threads", .type = CLI_COUNT, .value = "N", .target = &threads,
          .size = sizeof threads, .min = 1, .max = 256,
          .help = "hash N files at a time (default: one per core)" },
        CLI_MEDIA_LIMIT_OPTIONS(p.limits, p.video_limits),
    };
    int rc = cli_parse_options("hash", usage, NULL, outro, options,
                               sizeof options / sizeof options[0], argc, argv);
    if (rc >= 0)
        return rc;
    if (dihedral)
        p.flags |= PDQM_MEDIA_DIHEDRAL;
    if (p.json)
        p.flags |= PDQM_MEDIA_DIGESTS;
    if (optind >= argc)
        return cli_usage_error("hash", "no FILE given");

    /* libvips (and FFmpeg) start on the first file that needs them. */
    pool *workers = pool_start((int)threads, work, done, &p);
    if (workers == NULL) {
        cli_error("cannot start a worker thread");
        return 1;
    }
    int input_failed = 0;
    for (int i = optind; i < argc && !input_failed; i++) {
        if (strcmp(argv[i], "-") == 0) {
            if (enqueue_stdin(workers) != 0) {
                cli_error("-: cannot read file names from standard input");
                input_failed = 1;
            }
            continue;
        }
        char *name = strdup(argv[i]);
        if (name == NULL || submit(workers, name) != 0) {
            cli_error("out of memory");
            input_failed = 1;
        }
    }
    pool_finish(workers);

    if (fflush(stdout) != 0) {
        cli_error("cannot write output");
        return 1;
    }
    return (p.failures || input_failed) ? 1 : 0;
}
