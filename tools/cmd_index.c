/*
 * cmd_index.c - `pdqmatch index`: offline bulk indexing into a store.
 *
 * Media files are hashed on all cores (pool.h) and added in batches of
 * deferred adds, one transaction a batch; hash lists are parsed and added
 * the same way.  At the end one pass indexes everything added (see
 * pdqm_store_add_deferred).  Every batch that committed stays: a run cut
 * short and started again skips what is stored (by content id, and by the
 * file's SHA-256) and finishes the job.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli.h"
#include "pool.h"
#include "../hashing/clock.h"
#include "../hashing/fileio.h"
#include "../hashing/hashlist.h"
#include "../hashing/media.h"
#include "../index/store.h"
#include "../core/ingest.h"
#include "../cluster/cluster.h"

#define FILE_BATCH 256       /* media files a transaction */
#define LIST_BATCH 100000    /* hash-list items a transaction */

static const char usage[] =
    "usage: pdqmatch index [--db PATH | --nats URLS [--stream NAME]] [--bank NAME]\n"
    "                      [--threads N] [--min-quality Q] [--interval S]\n"
    "                      [--prune-distance N] [--max-per-second N]\n"
    "                      [--hash-list FILE]... [--vpdq-list FILE]... [INPUT...]\n";

static const char intro[] =
    "Add media files, or lists of hashes, to the bank NAME of the store at PATH\n"
    "(the store and the bank are created when missing).  An INPUT is an image\n"
    "or video file, or a directory walked recursively; its content id is the\n"
    "path relative to INPUT (a file's own name for a file INPUT), with '%' and\n"
    "any byte an id cannot hold written as %XX.  A video is one item of many\n"
    "frame hashes: by default every frame more than 31 bits from the last one\n"
    "kept, at most 15 a second (README.md, \"Video\").  --bank is required for\n"
    "media and vPDQ lists; a hash list may name each row's bank in a 'bank'\n"
    "column instead.\n"
    "\n"
    "A hash list (FILE '-' for standard input) is one hash a line, or\n"
    "HASH,QUALITY[,CONTENT_ID] lines as 'pdqmatch hash' prints them, or CSV/TSV\n"
    "with a header naming its columns: hash, quality, content_id, timestamp,\n"
    "bank, metadata, sha256, md5, kind ('pdqmatch export --format csv' writes\n"
    "them).  A row without a content id is an item named by its hash; rows of\n"
    "one content id are one item wherever they stand.  A BOM and CRLF line ends\n"
    "are accepted; quoted fields may hold commas, quotes and newlines.\n"
    "Degenerate hashes (quality 0, or under 16 bits set) are refused.\n";

static const char outro[] =
    "Running the same command again stores nothing twice: items whose content id\n"
    "or file SHA-256 the bank has are skipped.  A bad file or line is reported as\n"
    "'pdqmatch: FILE: reason' or 'pdqmatch: FILE:LINE: reason' and skipped.\n"
    "Exit status: 0 when everything was indexed or skipped, 1 when anything\n"
    "failed, 2 on a usage error or when the store cannot be written.\n"
    "\n"
    "With --nats, the items go to a cluster instead of a store: they are\n"
    "published to its stream in entries as large as the servers take, each\n"
    "once the one before is stored, and every node applies them (skipping what\n"
    "it holds).  The summary then counts what was published, up to which log\n"
    "entry; a node has them all once its /readyz applied_seq reaches it.\n";

typedef struct counts {
    uint64_t indexed, hashes, skipped_known, skipped_quality, skipped_other, failed;
    uint64_t degenerate;   /* of failed: hashes refused as degenerate */
} counts;

typedef struct run {
    pdqm_store *store;       /* NULL with --nats */
    pdqm_writer w;
    pdqm_bulk_counts sent;   /* with --nats: what was published */
    const char *bank;
    int min_quality;         /* of media hashed here */
    int list_min_quality;    /* of hash lists' rows */
    int prune_distance;
    int max_per_second;
    double interval;
    pdqm_image_limits limits;
    pdqm_video_limits video_limits;
    int quiet, tty;
    counts n;
    uint64_t total_files, seen_files;
    double started, last_progress;
    int store_failed;

    /* The batch being built. */
    pdqm_add *adds;
    pdqm_stored_hash *hashes;       /* one per add for files */
    char **owned;                   /* strings the batch owns */
    size_t n_adds, n_owned, n_hashes;
    size_t cap_adds, cap_owned, cap_hashes;
    pdqm_add_outcome *outcomes;
} run;

/* ------------------------------------------------------------------ */
/* Progress                                                             */

static void progress(run *r, int final)
{
    if (r->quiet || !r->tty)
        return;
    double now = pdqm_monotonic_seconds();
    if (!final && now - r->last_progress < 0.25)
        return;
    r->last_progress = now;
    double secs = now - r->started;
    double rate = secs > 0 ? r->seen_files / secs : 0;
    double hrate = secs > 0 ? r->n.hashes / secs : 0;
    if (r->total_files > 0) {
        double left = rate > 0 ? (r->total_files - r->seen_files) / rate : 0;
        int width = 24, filled = (int)(width * r->seen_files / r->total_files);
        fprintf(stderr, "\r[%.*s%*s] %llu/%llu files, %.0f files/s, %.0f hashes/s, ETA %.0fs ",
                filled, "########################", width - filled, "",
                (unsigned long long)r->seen_files, (unsigned long long)r->total_files,
                rate, hrate, left);
    } else {
        fprintf(stderr, "\r%llu items, %.0f hashes/s ", (unsigned long long)r->n.indexed, hrate);
    }
    if (final)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

/* ------------------------------------------------------------------ */
/* Batches                                                              */

static int own(run *r, char *s)
{
    if (r->n_owned == r->cap_owned) {
        size_t cap = r->cap_owned ? r->cap_owned * 2 : 1024;
        char **grown = realloc(r->owned, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        r->owned = grown;
        r->cap_owned = cap;
    }
    r->owned[r->n_owned++] = s;
    return 0;
}

static pdqm_add *new_add(run *r)
{
    if (r->n_adds == r->cap_adds) {
        size_t cap = r->cap_adds ? r->cap_adds * 2 : 1024;
        pdqm_add *grown = realloc(r->adds, cap * sizeof *grown);
        pdqm_add_outcome *o = realloc(r->outcomes, cap * sizeof *o);
        if (grown)
            r->adds = grown;
        if (o)
            r->outcomes = o;
        if (!grown || !o)
            return NULL;
        r->cap_adds = cap;
    }
    pdqm_add *a = &r->adds[r->n_adds++];
    memset(a, 0, sizeof *a);
    a->bank = r->bank;
    return a;
}

/* Hashes live in one array; adds point into it by index until the flush
 * (the array may move while the batch grows). */
static pdqm_stored_hash *new_hash(run *r)
{
    if (r->n_hashes == r->cap_hashes) {
        size_t cap = r->cap_hashes ? r->cap_hashes * 2 : 4096;
        pdqm_stored_hash *grown = realloc(r->hashes, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        r->hashes = grown;
        r->cap_hashes = cap;
    }
    return &r->hashes[r->n_hashes++];
}

/* Write items to the store, or publish them to the cluster, and count
 * them. */
static pdqm_status write_items(run *r, const pdqm_add *adds, size_t n, pdqm_add_outcome *outcomes,
                               pdqm_error *err)
{
    pdqm_bulk_counts c;
    pdqm_status st = pdqm_write_add_bulk(&r->w, adds, n, 1, 1, outcomes, &c, err);
    if (st != PDQM_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        if (r->store == NULL || outcomes[i] == PDQM_ADDED) {
            r->n.indexed++;
            r->n.hashes += adds[i].n_hashes;
        } else {
            r->n.skipped_known++;
        }
    }
    if (c.last_seq)
        r->sent.last_seq = c.last_seq;
    r->sent.entries += c.entries;
    r->sent.bytes += c.bytes;
    return PDQM_OK;
}

/* Commit the batch.  Returns -1 when the store failed (reported). */
static int flush(run *r)
{
    if (r->n_adds == 0)
        return 0;
    /* Turn hash indexes into pointers now that the array stays put. */
    for (size_t i = 0; i < r->n_adds; i++)
        r->adds[i].hashes = r->hashes + (size_t)(uintptr_t)r->adds[i].hashes;
    pdqm_error err;
    int rc = 0;
    if (write_items(r, r->adds, r->n_adds, r->outcomes, &err) != PDQM_OK) {
        cli_error("cannot write to the %s: %s", r->store ? "store" : "cluster",
                  pdqm_error_message(&err));
        r->store_failed = 1;
        rc = -1;
    }
    for (size_t i = 0; i < r->n_owned; i++)
        free(r->owned[i]);
    r->n_owned = r->n_adds = r->n_hashes = 0;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Media files                                                          */

typedef struct file_job {
    char *path;          /* to open */
    char *content_id;    /* relative to its INPUT */
    int walked;          /* found in a directory, not named by the user */
    int known;           /* the bank has this content id: not hashed */
    pdqm_status status;
    pdqm_error error;
    pdqm_media_kind kind;
    pdqm_image_hash result;      /* an image */
    pdqm_video_hashes video;     /* a video */
} file_job;

static void file_work(void *ctx, void *item)
{
    run *r = ctx;
    file_job *j = item;
    pdqm_content_info info;
    if (r->store &&
        pdqm_store_content_get(r->store, r->bank, j->content_id, &info, NULL) == PDQM_OK) {
        pdqm_content_info_clear(&info);
        j->known = 1;
        return;
    }
    pdqm_error_clear(&j->error);
    size_t max = r->limits.max_bytes > r->video_limits.max_bytes
        ? r->limits.max_bytes : r->video_limits.max_bytes;
    uint8_t *data;
    size_t len;
    j->status = pdqm_read_file(j->path, max, &data, &len, &j->error);
    if (j->status != PDQM_OK)
        return;
    j->kind = pdqm_media_sniff(data, len);
    if (j->kind == PDQM_MEDIA_VIDEO)
        j->status = pdqm_hash_video_bytes(data, len, &r->video_limits, r->interval, 1,
                                          PDQM_MEDIA_DIGESTS, &j->video, &j->error);
    else
        j->status = pdqm_hash_image_bytes(data, len, &r->limits, PDQM_MEDIA_DIGESTS,
                                          &j->result, &j->error);
    free(data);
}

/* Queue a video's frames as one item: the frames the library's frame rule
 * keeps.  Takes ownership of content_id; sha256 and md5 may be NULL.
 * Returns the frames kept (0: the item is not queued). */
static size_t add_video(run *r, char *content_id, const pdqm_video_frame *f, size_t n,
                        const char *sha256, const char *md5, int listed)
{
    pdqm_frame_rule rule = { r->interval, r->min_quality, r->prune_distance,
                             r->max_per_second };
    if (listed)   /* a hash list made elsewhere: as it is */
        pdqm_frame_rule_as_listed(&rule);
    size_t first = r->n_hashes;
    for (size_t i = 0; i < n; i++)   /* room for every frame, then select */
        if (new_hash(r) == NULL) {
            cli_error("out of memory");
            exit(2);
        }
    size_t kept = pdqm_frames_select(&rule, f, n, r->hashes + first);
    r->n_hashes = first + kept;
    if (kept == 0) {
        free(content_id);
        return 0;
    }
    pdqm_add *a = new_add(r);
    char *sha = sha256 && *sha256 ? strdup(sha256) : NULL, *m5 = md5 && *md5 ? strdup(md5) : NULL;
    if (!a || own(r, content_id) || (sha256 && *sha256 && (!sha || own(r, sha))) ||
        (md5 && *md5 && (!m5 || own(r, m5)))) {
        cli_error("out of memory");
        exit(2);
    }
    a->content_id = content_id;
    a->sha256 = sha;
    a->md5 = m5;
    a->kind = PDQM_CONTENT_VIDEO;
    a->hashes = (const pdqm_stored_hash *)(uintptr_t)first;
    a->n_hashes = kept;
    return kept;
}

static void file_done(void *ctx, void *item)
{
    run *r = ctx;
    file_job *j = item;
    r->seen_files++;
    if (j->known) {
        r->n.skipped_known++;
    } else if (j->status == PDQM_ERR_UNSUPPORTED && j->walked) {
        /* A directory may hold other files (READMEs, sidecars): not an
         * error, but counted. */
        r->n.skipped_other++;
    } else if (j->status != PDQM_OK) {
        cli_error("%s: %s", j->path, pdqm_error_message(&j->error));
        r->n.failed++;
    } else if (r->store_failed) {
        /* reported once already */
    } else if (j->kind == PDQM_MEDIA_VIDEO) {
        if (add_video(r, j->content_id, j->video.frames, j->video.count,
                      j->video.digests.sha256, j->video.digests.md5, 0) == 0)
            r->n.skipped_quality++;
        j->content_id = NULL;
        if (r->n_adds >= FILE_BATCH)
            flush(r);
    } else if (j->result.pdq.quality < r->min_quality) {
        r->n.skipped_quality++;
    } else if (pdqm_hash_check(&j->result.pdq.hash, j->result.pdq.quality, &j->error)) {
        cli_error("%s: %s", j->path, pdqm_error_message(&j->error));
        r->n.failed++;
        r->n.degenerate++;
    } else {
        pdqm_add *a = new_add(r);
        pdqm_stored_hash *h = a ? new_hash(r) : NULL;
        char *sha = strdup(j->result.digests.sha256), *md5 = strdup(j->result.digests.md5);
        if (!a || !h || !sha || !md5 || own(r, j->content_id) || own(r, sha) || own(r, md5)) {
            cli_error("out of memory");
            exit(2);
        }
        h->hash = j->result.pdq.hash;
        h->quality = j->result.pdq.quality;
        h->timestamp = 0;
        a->content_id = j->content_id;
        a->sha256 = sha;
        a->md5 = md5;
        a->kind = PDQM_CONTENT_IMAGE;
        a->hashes = (const pdqm_stored_hash *)(uintptr_t)(r->n_hashes - 1);
        a->n_hashes = 1;
        j->content_id = NULL;   /* the batch owns it now */
        if (r->n_adds >= FILE_BATCH)
            flush(r);
    }
    pdqm_video_hashes_free(&j->video);
    free(j->path);
    free(j->content_id);
    free(j);
    progress(r, 0);
}

/* A reference vPDQ hash file (FRAME,QUALITY,HASH,TIMESTAMP lines) as one
 * video item named after the file. */
static void index_vpdq_list(run *r, const char *name)
{
    FILE *f = fopen(name, "r");
    if (f == NULL) {
        cli_error("%s: %s", name, strerror(errno));
        r->n.failed++;
        return;
    }
    pdqm_video_frame *frames = NULL;
    size_t n = 0, cap = 0, lineno = 0, len, lcap = 0;
    char *line = NULL;
    int rc, bad = 0;
    while ((rc = cli_read_line(f, &line, &lcap, 4096, &len)) != 0) {
        lineno++;
        if (rc < 0 || rc == 2) {
            cli_error("%s:%zu: %s", name, lineno, rc < 0 ? strerror(errno) : "line too long");
            bad = 1;
            break;
        }
        if (len == 0 || line[0] == '#')
            continue;
        pdqm_video_frame fr;
        pdqm_error perr;
        if (pdqm_vpdq_line(line, len, &fr, &perr) != PDQM_OK) {
            cli_error("%s:%zu: %s", name, lineno, pdqm_error_message(&perr));
            bad = 1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            pdqm_video_frame *grown = cap <= PDQM_MAX_HASHES_PER_CONTENT
                ? realloc(frames, cap * sizeof *grown) : NULL;
            if (grown == NULL) {
                cli_error("%s: too many frames", name);
                bad = 1;
                break;
            }
            frames = grown;
        }
        frames[n++] = fr;
    }
    fclose(f);
    free(line);
    if (bad) {
        r->n.failed++;     /* a broken file adds nothing: no partial video */
    } else if (n == 0) {
        cli_error("%s: no frames", name);
        r->n.failed++;
    } else {
        const char *base = strrchr(name, '/');
        char *id;
        pdqm_error ierr;
        if (pdqm_content_id_from_name(base && base[1] ? base + 1 : name, &id, &ierr)) {
            cli_error("%s: %s", name, pdqm_error_message(&ierr));
            r->n.failed++;
        } else if (add_video(r, id, frames, n, NULL, NULL, 1) == 0)
            r->n.skipped_quality++;
        if (r->n_adds >= FILE_BATCH)
            flush(r);
    }
    free(frames);
}

/* The files of one INPUT, in a sorted, growing list. */
typedef struct file_list {
    char **paths;     /* as opened */
    char **ids;       /* content ids */
    unsigned char *walked;   /* found in a directory walk */
    size_t n, cap;
} file_list;

static int list_add(file_list *l, const char *path, const char *id, int walked)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **p = realloc(l->paths, cap * sizeof *p);
        if (p)
            l->paths = p;
        char **q = realloc(l->ids, cap * sizeof *q);
        if (q)
            l->ids = q;
        unsigned char *w = realloc(l->walked, cap);
        if (w)
            l->walked = w;
        if (!p || !q || !w)
            return -1;
        l->cap = cap;
    }
    l->walked[l->n] = (unsigned char)walked;
    pdqm_error err;
    if (pdqm_content_id_from_name(id, &l->ids[l->n], &err) != PDQM_OK) {
        cli_error("%s: %s", path, pdqm_error_message(&err));
        return -1;
    }
    if ((l->paths[l->n] = strdup(path)) == NULL) {
        free(l->ids[l->n]);
        return -1;
    }
    l->n++;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk dir (whose content ids start with prefix, "" at the top), adding
 * regular files; symbolic links to directories are not followed, so a
 * loop cannot trap the walk.  Returns the number of errors reported. */
static int walk(file_list *l, const char *dir, const char *prefix, int depth)
{
    if (depth > 64) {
        cli_error("%s: directories nested too deep", dir);
        return 1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        cli_error("%s: %s", dir, strerror(errno));
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int errors = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *grown);
            if (grown == NULL)
                break;
            names = grown;
        }
        if ((names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        size_t ilen = strlen(prefix) + strlen(names[i]) + 2;
        char *path = malloc(plen), *id = malloc(ilen);
        if (!path || !id) {
            free(path);
            free(id);
            errors++;
            break;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        snprintf(id, ilen, "%s%s%s", prefix, *prefix ? "/" : "", names[i]);
        struct stat lsb, sb;
        if (lstat(path, &lsb) != 0) {
            cli_error("%s: %s", path, strerror(errno));
            errors++;
        } else if (S_ISDIR(lsb.st_mode)) {
            errors += walk(l, path, id, depth + 1);
        } else if (S_ISREG(lsb.st_mode) ||
                   (S_ISLNK(lsb.st_mode) && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))) {
            if (list_add(l, path, id, 1) != 0)
                errors++;
        }
        free(path);
        free(id);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return errors;
}

/* ------------------------------------------------------------------ */
/* Hash lists                                                           */

typedef struct list_run {
    run *r;
    const char *shown;      /* the list's name in messages */
    pdqm_add_outcome *outcomes;
    size_t cap;
} list_run;

static pdqm_status list_items(void *arg, const pdqm_add *adds, size_t n, pdqm_error *err)
{
    list_run *l = arg;
    run *r = l->r;
    if (n > l->cap) {
        pdqm_add_outcome *o = realloc(l->outcomes, n * sizeof *o);
        if (o == NULL)
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        l->outcomes = o;
        l->cap = n;
    }
    pdqm_status st = write_items(r, adds, n, l->outcomes, err);
    if (st != PDQM_OK)
        return st;
    progress(r, 0);
    return PDQM_OK;
}

static void list_refused(void *arg, uint64_t line, const pdqm_error *why)
{
    list_run *l = arg;
    cli_error("%s:%llu: %s", l->shown, (unsigned long long)line, pdqm_error_message(why));
}

/* A hash list, by the library's rules (core/ingest.h). */
static int index_list(run *r, const char *name)
{
    FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
    if (f == NULL) {
        cli_error("%s: %s", name, strerror(errno));
        r->n.failed++;
        return -1;
    }
    list_run l = { r, f == stdin ? "-" : name, NULL, 0 };
    pdqm_list_options o;
    pdqm_list_options_default(&o);
    o.bank = r->bank;
    o.min_quality = r->list_min_quality;
    o.batch = LIST_BATCH;
    pdqm_list_sink sink = { &l, list_items, list_refused };
    pdqm_list_counts counts;
    pdqm_error err;
    pdqm_status st = pdqm_list_ingest(f, &o, &sink, &counts, &err);
    r->n.skipped_quality += counts.skipped_quality;
    r->n.skipped_known += counts.duplicates;
    r->n.failed += counts.refused;
    r->n.degenerate += counts.degenerate;
    if (st != PDQM_OK) {
        if (st == PDQM_ERR_STORE || st == PDQM_ERR_NOMEM || st == PDQM_ERR_UNAVAILABLE) {
            cli_error("cannot write to the %s: %s", r->store ? "store" : "cluster",
                      pdqm_error_message(&err));
            r->store_failed = 1;
        } else {
            cli_error("%s: %s", l.shown, pdqm_error_message(&err));
            r->n.failed++;
        }
    }
    free(l.outcomes);
    if (f != stdin)
        fclose(f);
    return st == PDQM_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* The command                                                          */

int cmd_index(int argc, char **argv)
{
#ifdef __GLIBC__
    /* A load's batches allocate and free the same tens of megabytes each
     * time: keep them in the heap, rather than have each mapped anew and
     * zeroed by the kernel (17 % of a 100M load's time). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
    run r;
    memset(&r, 0, sizeof r);
    pdqm_image_limits_default(&r.limits);
    pdqm_video_limits_default(&r.video_limits);
    pdqm_frame_rule stored;
    pdqm_frame_rule_default(&stored);
    r.min_quality = stored.min_quality;
    r.list_min_quality = 1;
    r.interval = stored.interval;
    r.prune_distance = stored.prune_distance;
    r.max_per_second = stored.max_per_second;
    const char *db = PDQM_STORE_DEFAULT_PATH;
    uint32_t threads = (uint32_t)cli_cpu_count();
    cli_list lists = { .n = 0 }, vpdq = { .n = 0 };
    pdqm_cluster_options co;
    pdqm_cluster_options_default(&co);
    co.name = "pdqmatch index";
    const cli_opt options[] = {
        { .name = "db", .type = CLI_TEXT, .value = "PATH", .target = &db, .show_default = 1,
          .help = "the store" },
        CLI_NATS_OPTIONS(co, "publish to the cluster on these NATS servers (nats://HOST:PORT,\n"
                             "comma-separated) instead of writing a store"),
        { .name = "bank", .type = CLI_TEXT, .value = "NAME", .target = &r.bank,
          .help = "the bank to add to" },
        { .name = "hash-list", .type = CLI_LIST, .value = "FILE", .target = &lists,
          .help = "a list of hashes without media (see above); repeatable" },
        { .name = "vpdq-list", .type = CLI_LIST, .value = "FILE", .target = &vpdq,
          .help = "a vPDQ hash file (FRAME,QUALITY,HASH,TIMESTAMP lines, as Meta's\n"
                  "vpdq tools write), one video named after FILE; repeatable" },
        { .name = "min-quality", .type = CLI_COUNT, .value = "Q", .target = &r.min_quality,
          .size = sizeof r.min_quality, .min = 0, .max = 100, .show_default = 1,
          .also = &r.list_min_quality, .also_label = "for hash lists",
          .help = "skip hashes of quality below Q (a bare hash has no quality and is\n"
                  "stored as 100)" },
        { .name = "interval", .type = CLI_SECONDS, .value = "S", .target = &r.interval,
          .min = 0, .max = 1e7, .show_default = 1,
          .help = "hash a video frame every S seconds (0: every frame)" },
        { .name = "prune-distance", .type = CLI_COUNT, .value = "N", .target = &r.prune_distance,
          .size = sizeof r.prune_distance, .min = 0, .max = PDQM_MAX_DISTANCE,
          .show_default = 1,
          .help = "drop a video frame within N bits of the last one kept (0:\n"
                  "identical frames only)" },
        { .name = "max-per-second", .type = CLI_COUNT, .value = "N",
          .target = &r.max_per_second, .size = sizeof r.max_per_second, .min = 0, .max = 1000,
          .show_default = 1,
          .help = "keep at most N frames of a second of video, pruning that second\n"
                  "harder when it has more (0: no cap); a vPDQ list is taken as it is" },
        { .name = "threads", .type = CLI_COUNT, .value = "N", .target = &threads,
          .size = sizeof threads, .min = 1, .max = 256,
          .help = "files hashed at a time (default: one per core)" },
        CLI_MEDIA_LIMIT_OPTIONS(r.limits, r.video_limits),
        { .name = "quiet", .type = CLI_FLAG, .target = &r.quiet, .letter = 'q',
          .help = "no progress bar and no summary" },
    };
    int rc = cli_parse_options("index", usage, intro, outro, options,
                               sizeof options / sizeof options[0], argc, argv);
    if (rc >= 0)
        return rc;
    size_t n_lists = lists.n, n_vpdq = vpdq.n;
    if (r.bank == NULL && (optind < argc || n_vpdq > 0))
        return cli_usage_error("index", "--bank NAME is required for media and vPDQ lists");
    if (optind >= argc && n_lists == 0 && n_vpdq == 0)
        return cli_usage_error("index", "no INPUT, --hash-list or --vpdq-list given");
    pdqm_error err;
    if (r.bank && pdqm_bank_name_check(r.bank, &err) != PDQM_OK)
        return cli_usage_error("index", "--bank '%s': %s", r.bank, pdqm_error_message(&err));

    pdqm_cluster *cluster = NULL;
    if (co.urls) {
        if ((cluster = cli_cluster_open(&co)) == NULL)
            return 2;
    } else if (pdqm_store_open(db, PDQM_STORE_CREATE, &r.store, &err) != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        return 2;
    }
    r.w = (pdqm_writer){ r.store, cluster };
    /* The bank, made now (through a cluster, each entry makes its banks). */
    pdqm_bank_info info;
    pdqm_status st = r.bank && r.store ? pdqm_store_bank_get(r.store, r.bank, &info, &err)
                                       : PDQM_OK;
    if (st == PDQM_ERR_NOT_FOUND)
        st = pdqm_store_bank_create(r.store, r.bank, PDQM_DEFAULT_THRESHOLD, PDQM_BANK_BLOCK, &err);
    if (st != PDQM_OK) {
        cli_error("%s", pdqm_error_message(&err));
        pdqm_store_close(r.store);
        return 2;
    }
    r.tty = isatty(STDERR_FILENO);
    r.started = r.last_progress = pdqm_monotonic_seconds();

    /* Media: gather every file first, for a progress bar with an end. */
    file_list files = { 0 };
    for (int i = optind; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            cli_error("%s: %s", argv[i], strerror(errno));
            r.n.failed++;
        } else if (S_ISDIR(sb.st_mode)) {
            r.n.failed += (uint64_t)walk(&files, argv[i], "", 0);
        } else {
            const char *base = strrchr(argv[i], '/');
            base = base && base[1] ? base + 1 : argv[i];
            if (list_add(&files, argv[i], base, 0) != 0)
                r.n.failed++;
        }
    }
    r.total_files = files.n;
    if (files.n > 0) {
        pool *workers = pool_start((int)threads, file_work, file_done, &r);
        if (workers == NULL) {
            cli_error("cannot start a worker thread");
            return 2;
        }
        for (size_t i = 0; i < files.n; i++) {
            file_job *j = calloc(1, sizeof *j);
            if (j == NULL) {
                cli_error("out of memory");
                exit(2);
            }
            j->path = files.paths[i];
            j->content_id = files.ids[i];
            j->walked = files.walked[i];
            pool_submit(workers, j);
        }
        pool_finish(workers);
        flush(&r);
    }
    free(files.paths);
    free(files.ids);
    free(files.walked);

    for (size_t i = 0; i < n_lists && !r.store_failed; i++) {
        index_list(&r, lists.v[i]);
        flush(&r);
    }
    for (size_t i = 0; i < n_vpdq && !r.store_failed; i++)
        index_vpdq_list(&r, vpdq.v[i]);
    flush(&r);

    uint64_t indexed = 0;
    if (r.store && !r.store_failed &&
        pdqm_store_index_pending(r.store, &indexed, &err) != PDQM_OK) {
        cli_error("cannot index the store: %s", pdqm_error_message(&err));
        r.store_failed = 1;
    }
    progress(&r, 1);
    if (!r.quiet && cluster) {
        printf("published %llu item%s (%llu hash%s) in %zu log entr%s (%.1f MB, up to entry "
               "%llu), skipped %llu below quality %d and %llu not media, failed %llu, in "
               "%.2f s\n",
               (unsigned long long)r.n.indexed, r.n.indexed == 1 ? "" : "s",
               (unsigned long long)r.n.hashes, r.n.hashes == 1 ? "" : "es", r.sent.entries,
               r.sent.entries == 1 ? "y" : "ies", (double)r.sent.bytes / 1e6,
               (unsigned long long)r.sent.last_seq, (unsigned long long)r.n.skipped_quality,
               r.min_quality, (unsigned long long)r.n.skipped_other,
               (unsigned long long)r.n.failed, pdqm_monotonic_seconds() - r.started);
    } else if (!r.quiet) {
        char where[PDQM_BANK_NAME_MAX + 16], degenerate[48] = "";
        snprintf(where, sizeof where, r.bank ? "bank '%s'" : "the list's banks",
                 r.bank ? r.bank : "");
        if (r.n.degenerate)
            snprintf(degenerate, sizeof degenerate, " (%llu degenerate)",
                     (unsigned long long)r.n.degenerate);
        printf("indexed %llu item%s (%llu hash%s) into %s, skipped %llu already "
               "stored, %llu below quality %d and %llu not media, failed %llu%s, in %.2f s\n",
               (unsigned long long)r.n.indexed, r.n.indexed == 1 ? "" : "s",
               (unsigned long long)r.n.hashes, r.n.hashes == 1 ? "" : "es", where,
               (unsigned long long)r.n.skipped_known, (unsigned long long)r.n.skipped_quality,
               r.min_quality, (unsigned long long)r.n.skipped_other,
               (unsigned long long)r.n.failed, degenerate, pdqm_monotonic_seconds() - r.started);
    }
    free(r.adds);
    free(r.outcomes);
    free(r.hashes);
    free(r.owned);
    pdqm_store_close(r.store);
    pdqm_cluster_close(cluster);
    if (r.store_failed)
        return 2;
    return r.n.failed ? 1 : 0;
}
