/*
 * ingest.h - how any input becomes content items: the one set of rules.
 *
 * Every way content enters a store (files and directories through
 * `pdqmatch index`, hash lists, vPDQ lists, `POST /v1/banks/B/hashes`,
 * `POST /v1/banks/B/media`, the importers to come) goes through these
 * functions, so the CLI and the service cannot disagree on:
 *   - what a content id may be (pdqm_content_id_check), and how a file
 *     name that breaks the rule becomes one (pdqm_content_id_from_name);
 *   - which hashes are refused at the door (pdqm_hash_check);
 *   - which frames of a video are kept (pdqm_frames_select);
 *   - how the rows of a hash list become items (pdqm_list_ingest): the
 *     default id, grouping, quality, banks and kinds.
 *
 * Like every library room, nothing here prints, logs or exits.
 */
#ifndef PDQM_INGEST_H
#define PDQM_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../hashing/error.h"
#include "../hashing/hash256.h"
#include "../hashing/video.h"
#include "../index/store.h"

/* ------------------------------------------------------------------ */
/* Content ids                                                          */

/* A content id is 1 to 500 bytes of UTF-8 with no control character (NUL
 * included) and no ".." path segment: ids are often file paths, and one
 * that climbs out of its folder is an attack, not a name.  Returns PDQM_OK,
 * or PDQM_ERR_INVALID with the reason in *err. */
pdqm_status pdqm_content_id_check(const char *id, pdqm_error *err);

/* The content id of a file known by name (a path relative to the folder
 * indexed, or a file's own name): the name itself, with '%' and every
 * byte a content id cannot hold (bytes that are not UTF-8, control
 * characters) written as %XX (upper-case hex).  Decoding each %XX gives
 * the name back byte for byte, so the escaping is reversible and two
 * names never share an id.  *out is a new string (free()); PDQM_ERR_INVALID
 * when even the escaped name breaks the rule (over 500 bytes, a ".."
 * segment), PDQM_ERR_NOMEM. */
pdqm_status pdqm_content_id_from_name(const char *name, char **out, pdqm_error *err);

/* Metadata is JSON text of at most PDQM_METADATA_MAX bytes (any JSON value);
 * PDQM_ERR_INVALID when not. */
pdqm_status pdqm_metadata_check(const char *text, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* Hashes refused at the door                                           */

/* Fewer set bits than this and a hash says nothing about an image: the
 * all-zero hash (a blank image, and the reference hasher's error value)
 * and its near neighbours. */
#define PDQM_MIN_HASH_WEIGHT 16

/* PDQM_OK for a hash worth storing or looking up; PDQM_ERR_DEGENERATE
 * with the reason when its quality is 0 or it has fewer than
 * PDQM_MIN_HASH_WEIGHT bits set.  quality -1 means unknown (a bare hash):
 * only the bits are checked. */
pdqm_status pdqm_hash_check(const pdqm_hash256 *hash, int quality, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* Video frames                                                         */

/* How a video is stored, the one rule of every front end that stores
 * video (`pdqmatch index`, POST /v1/banks/NAME/media, and the writers to
 * come): which frames are hashed (interval), and which of those are kept
 * (quality, pruning of near repeats, and a cap a second).  Hashes imported
 * from elsewhere (vPDQ lists, exchanges) are stored as they come.
 *
 * The default stores every frame that is more than 31 bits (the match
 * distance) from the last one kept, at most 15 a second: on a second of
 * fast motion that would keep more, the distance is raised for that second
 * until it keeps 15 or fewer.  Queries take a sample a second as vPDQ does,
 * of 3 frames in a row (PDQM_QUERY_INTERVAL, PDQM_QUERY_BURST), and a
 * sample matches when one of its frames does: a clip or a re-timed copy
 * whose sampled frames fall between the stored ones still finds, in each
 * second, a frame near one kept.  (A frame a second on both sides, vPDQ's
 * way, misses clips and re-timings of moving video.) */
typedef struct pdqm_frame_rule {
    double interval;           /* hash a frame every this many seconds (0:
                                  every frame) */
    int min_quality;           /* frames of lower quality are dropped (50) */
    int prune_distance;        /* a frame within this many bits of the last
                                  one kept is dropped (0: identical only) */
    int max_per_second;        /* at most this many kept in a second of
                                  video (0: no cap) */
} pdqm_frame_rule;

#define PDQM_DEFAULT_MIN_QUALITY 50   /* Meta's advice for PDQ */
#define PDQM_STORE_INTERVAL 0.0       /* stored videos: every frame hashed, */
#define PDQM_STORE_PRUNE_DISTANCE 31  /* ... kept when over 31 bits from the last kept, */
#define PDQM_STORE_MAX_PER_SECOND 15  /* ... at most 15 a second */
#define PDQM_QUERY_INTERVAL 1.0       /* video queries: a sample a second */
#define PDQM_QUERY_BURST 3            /* ... of 3 frames in a row */

void pdqm_frame_rule_default(pdqm_frame_rule *rule);

/* The rule for frames hashed elsewhere (vPDQ lists, HMA's vpdq signals):
 * taken as they come, but for frames under rule's quality and exact
 * repeats (no pruning, no cap). */
void pdqm_frame_rule_as_listed(pdqm_frame_rule *rule);

/* Keep the frames of f (n of them, in time order) that the rule keeps,
 * degenerate ones never, as stored hashes in out (room for n).  Returns
 * how many. */
size_t pdqm_frames_select(const pdqm_frame_rule *rule, const pdqm_video_frame *f, size_t n,
                          pdqm_stored_hash *out);

/* ------------------------------------------------------------------ */
/* Storing items                                                        */

/* pdqm_store_add() (deferred: pdqm_store_add_deferred()) of n items, after
 * creating each bank they name that does not exist yet (a block bank of
 * threshold PDQM_DEFAULT_THRESHOLD), one transaction a bank.  Errors: those
 * of the two calls; banks made stay when the add fails. */
pdqm_status pdqm_ingest_add(pdqm_store *store, const pdqm_add *adds, size_t n, int deferred,
                            pdqm_add_outcome *outcomes, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* Names of kinds                                                       */

/* "block" / "allow" and "hashes" / "image" / "video", and back (-1 for an
 * unknown name). */
const char *pdqm_bank_kind_name(pdqm_bank_kind kind);
int pdqm_bank_kind_parse(const char *name);
const char *pdqm_content_kind_name(pdqm_content_kind kind);
int pdqm_content_kind_parse(const char *name);

/* ------------------------------------------------------------------ */
/* Rows into items                                                      */

/* One hash with what its input row says of its item.  Strings are
 * borrowed: they must outlive the pdqm_items made of them. */
typedef struct pdqm_item_row {
    const char *bank;
    const char *content_id;    /* NULL: the item is named by its hash */
    const char *metadata, *sha256, *md5;   /* NULL when not given */
    int kind;                  /* a pdqm_content_kind, or -1: not given */
    pdqm_stored_hash hash;
} pdqm_item_row;

/* Content items made of rows: adds[0..n_adds), each item's hashes
 * contiguous in hashes. */
typedef struct pdqm_items {
    pdqm_add *adds;
    size_t n_adds;
    pdqm_stored_hash *hashes;
    size_t duplicates;         /* rows dropped: a hash-named item's hash again */
    char (*hex)[PDQM_HASH_HEX_LEN + 1];   /* the ids of hash-named items */
} pdqm_items;

/* The grouping rule of every front end (hash lists, POST .../hashes, and
 * importers after them):
 *   - rows of one bank and content id are one item wherever they stand,
 *     its hashes in row order;
 *   - a row without a content id is an item named by its hash in hex, so
 *     that different inputs never collide and the same input given twice
 *     stores nothing twice; the same hash again is the same item, dropped
 *     and counted in duplicates;
 *   - an item takes the first metadata, digests and kind its rows give
 *     (PDQM_CONTENT_HASHES when none gives a kind);
 *   - items come in the order of their first rows.
 * The rows' checks (ids, hashes, banks) are the caller's, before.  Fills
 * *out (free it with pdqm_items_free); PDQM_ERR_NOMEM leaves it empty. */
pdqm_status pdqm_items_group(const pdqm_item_row *rows, size_t n, pdqm_items *out,
                             pdqm_error *err);
void pdqm_items_free(pdqm_items *items);

/* ------------------------------------------------------------------ */
/* Hash lists                                                           */

/* How the rows of a list (hashing/hashlist.h) become content items:
 *   - a row's item is its content_id; a row without one is an item of its
 *     own whose id is the row's hash in hex, so two lists never collide
 *     and the same list read twice stores nothing twice;
 *   - rows of one content id (and bank) are one item wherever they stand
 *     in the list, their hashes in list order; the item takes the first
 *     metadata, digests and kind its rows give;
 *   - a row's bank is its `bank` column, else options.bank;
 *   - a row of quality below options.min_quality is skipped; a row with
 *     no quality is stored as quality 100; a degenerate hash
 *     (pdqm_hash_check) and a bad content id or metadata are refused;
 *   - items whose rows have no kind are PDQM_CONTENT_HASHES.
 * Rows with an id are held in memory until the list ends (at most
 * PDQM_LIST_MAX_HELD of them); rows without one go out in batches. */
typedef struct pdqm_list_options {
    const char *bank;          /* for rows without a bank column; NULL:
                                  such rows are refused */
    int min_quality;           /* 0..100 (default 1) */
    size_t batch;              /* items handed to the sink at a time (default
                                  100000) */
} pdqm_list_options;

#define PDQM_LIST_MAX_HELD 16000000

void pdqm_list_options_default(pdqm_list_options *o);

typedef struct pdqm_list_counts {
    uint64_t rows;             /* data rows read */
    uint64_t skipped_quality;  /* below min_quality */
    uint64_t refused;          /* bad rows (each reported to the sink) */
    uint64_t degenerate;       /* of those, degenerate hashes */
    uint64_t duplicates;       /* a row the same item had already: dropped */
} pdqm_list_counts;

typedef struct pdqm_list_sink {
    void *arg;
    /* A batch of items to store (strings and hashes valid during the call
     * only).  Returning an error stops the list: pdqm_list_ingest returns
     * it. */
    pdqm_status (*items)(void *arg, const pdqm_add *adds, size_t n, pdqm_error *err);
    /* A row refused, with the line it starts on and why (may be NULL). */
    void (*refused)(void *arg, uint64_t line, const pdqm_error *why);
} pdqm_list_sink;

/* Read the list in f to its end, handing its items to the sink.  *counts
 * (zeroed first) says what happened to the rows.  Returns PDQM_OK when the
 * list was read to its end (bad rows do not fail it: they are counted and
 * reported); PDQM_ERR_IO when f cannot be read, PDQM_ERR_TOO_LARGE over
 * PDQM_LIST_MAX_HELD rows with ids, PDQM_ERR_NOMEM, or the sink's error:
 * then items already handed to the sink stay where it put them. */
pdqm_status pdqm_list_ingest(FILE *f, const pdqm_list_options *options,
                             const pdqm_list_sink *sink, pdqm_list_counts *counts,
                             pdqm_error *err);

#endif
