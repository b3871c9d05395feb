/*
 * store.h - the pdqmatch store: known hashes in LMDB, exact Hamming search.
 *
 * A store is one LMDB file (default ./pdqmatch.db, plus its -lock file).
 * It holds banks (named collections with a match threshold), content items
 * (a content id unique within its bank, optional JSON metadata, the SHA-256
 * and MD5 of the media) and each content item's PDQ hashes (one for an
 * image or a hash-list line, many for a video).
 *
 * Lookups are exact for every radius: multi-index hashing splits each hash
 * into 16 slots of 16 bits, probes every slot value within floor(r/16) bits
 * of the query's, and verifies each candidate against the full hash; beyond
 * r = 64 it scans every hash.  Writes are LMDB transactions: a batch of adds
 * or deletes commits whole or not at all, a crash loses at most the batch
 * being written, readers never block the writer and always see a committed
 * snapshot.  One process writes at a time (LMDB's writer lock); any number
 * read, in any number of processes.
 *
 * Handles are safe to share between threads; each call is one transaction
 * unless its comment says otherwise (index/README.md: the locks, and what a
 * long-lived handle keeps in memory).  Every function returns a pdqm_status
 * and fills *err, when given, with the specifics; the status never depends
 * on whether err was given.  A write that fails changes nothing: its
 * transaction is undone whole.  Outputs (*out, *info, ...) are written only
 * on success unless said otherwise.  Errors of note:
 *   PDQM_ERR_NOT_A_STORE  the path holds something that is not a store
 *   PDQM_ERR_SCHEMA       a store written by another schema version
 *   PDQM_ERR_NOT_FOUND    no such bank or content
 *   PDQM_ERR_EXISTS       the bank exists already
 *   PDQM_ERR_STORE        LMDB failed (disk full, I/O error, corruption)
 */
#ifndef PDQM_STORE_H
#define PDQM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../hashing/error.h"
#include "../hashing/hash256.h"

#define PDQM_STORE_DEFAULT_PATH "pdqmatch.db"
#define PDQM_STORE_SCHEMA_VERSION 5   /* 2: hex content ids stored as 32 bytes;
                                         3: an id that is its item's first hash
                                         in hex stored nowhere; 4: content may be
                                         disabled and carry a note, banks an
                                         enabled ratio, items be named by their
                                         number or hold no hash; 5: entries may
                                         be posted in the wide layout.  Stores of
                                         1 to 4 are read, and marked 5 when
                                         opened for writing */

#define PDQM_BANK_NAME_MAX 64          /* bytes, without the terminator */
#define PDQM_CONTENT_ID_MAX 500        /* bytes (LMDB keys are at most 511) */
#define PDQM_METADATA_MAX (64 * 1024)  /* bytes of JSON text */
#define PDQM_NOTE_MAX 255              /* characters (code points) of a content note */
#define PDQM_DEFAULT_THRESHOLD 31      /* Meta's recommended PDQ match distance */
#define PDQM_MAX_DISTANCE 256

typedef struct pdqm_store pdqm_store;

/* ------------------------------------------------------------------ */
/* Opening                                                              */

#define PDQM_STORE_CREATE   0x1u  /* create the store when the path is absent */
#define PDQM_STORE_READONLY 0x2u  /* open for lookups only */
#define PDQM_STORE_ONESHOT  0x4u  /* a short-lived handle (a command): lookups
                                     read the store's pages directly and never
                                     build the in-memory copies a long-lived
                                     one keeps (the hash arena, the postings),
                                     which cost more to make than a few
                                     thousand lookups save */

/* Open the store at path (PDQM_STORE_DEFAULT_PATH when NULL) into *out.
 * Without PDQM_STORE_CREATE a missing store is PDQM_ERR_NOT_FOUND.
 * Errors: PDQM_ERR_IO (cannot create or open the file: its reason),
 * PDQM_ERR_NOT_A_STORE, PDQM_ERR_SCHEMA, PDQM_ERR_STORE, PDQM_ERR_NOMEM. */
pdqm_status pdqm_store_open(const char *path, unsigned flags,
                            pdqm_store **out, pdqm_error *err);

/* Close a store, freeing the handle and its in-memory copies; NULL does
 * nothing.  No other call on it may be running, nor start. */
void pdqm_store_close(pdqm_store *store);

/* ------------------------------------------------------------------ */
/* Banks                                                                */

typedef enum pdqm_bank_kind {
    PDQM_BANK_BLOCK = 0,   /* known-bad media: matches are reported */
    PDQM_BANK_ALLOW = 1    /* known-good media: suppresses block matches */
} pdqm_bank_kind;

typedef struct pdqm_bank_info {
    char name[PDQM_BANK_NAME_MAX + 1];
    uint32_t id;            /* small number the store uses internally */
    int threshold;          /* default max distance of a match, 0..256 */
    pdqm_bank_kind kind;
    double enabled_ratio;   /* 0..1: the share of lookups the bank takes part
                               in (1, every bank's default: all; 0: none).  A
                               lookup draws once, and a bank takes part when
                               its ratio is at least the draw (HMA's
                               "coinflip"; pdqm_lookup_options.draw) */
    int64_t created;        /* unix seconds */
    uint64_t contents;      /* content items now in the bank */
    uint64_t hashes;        /* hashes now in the bank */
} pdqm_bank_info;

/* A bank name is 1..64 bytes of [A-Za-z0-9._-]; PDQM_ERR_INVALID if not.
 * No transaction. */
pdqm_status pdqm_bank_name_check(const char *name, pdqm_error *err);

/* Create a bank.  PDQM_ERR_EXISTS if a bank of that name exists,
 * PDQM_ERR_INVALID for a bad name or a threshold outside 0..256.  One
 * write transaction; nothing changes on failure. */
pdqm_status pdqm_store_bank_create(pdqm_store *store, const char *name,
                                   int threshold, pdqm_bank_kind kind,
                                   pdqm_error *err);

/* pdqm_store_bank_create() with the creation time given (unix seconds; 0
 * for now): how an import restores a bank as it was exported. */
pdqm_status pdqm_store_bank_create_at(pdqm_store *store, const char *name,
                                      int threshold, pdqm_bank_kind kind,
                                      int64_t created, pdqm_error *err);

/* pdqm_store_bank_create_at() with the enabled ratio given (0..1;
 * negative: 1), in the same transaction. */
pdqm_status pdqm_store_bank_create_with(pdqm_store *store, const char *name, int threshold,
                                        pdqm_bank_kind kind, double enabled_ratio,
                                        int64_t created, pdqm_error *err);

/* Change a bank's threshold (when threshold >= 0) and kind (when kind >= 0).
 * PDQM_ERR_NOT_FOUND, PDQM_ERR_INVALID (threshold over 256, an unknown
 * kind).  One write transaction. */
pdqm_status pdqm_store_bank_update(pdqm_store *store, const char *name,
                                   int threshold, int kind, pdqm_error *err);

/* What pdqm_store_bank_change() changes: each field left at its
 * "unchanged" value keeps the bank's. */
typedef struct pdqm_bank_changes {
    int threshold;          /* 0..256; -1: unchanged */
    int kind;               /* a pdqm_bank_kind; -1: unchanged */
    double enabled_ratio;   /* 0..1; negative: unchanged */
    const char *rename;     /* a new name for the bank; NULL: unchanged */
} pdqm_bank_changes;
#define PDQM_BANK_UNCHANGED { -1, -1, -1.0, NULL }

/* Change a bank: its threshold, kind, enabled ratio and name, in one write
 * transaction (its content, ids and counts stay as they are).
 * PDQM_ERR_NOT_FOUND, PDQM_ERR_EXISTS (a bank has the new name),
 * PDQM_ERR_INVALID (a value out of range, a bad new name). */
pdqm_status pdqm_store_bank_change(pdqm_store *store, const char *name,
                                   const pdqm_bank_changes *changes, pdqm_error *err);

/* Delete a bank and everything in it (content, digests, postings), in one
 * write transaction.  PDQM_ERR_NOT_FOUND when there is no such bank. */
pdqm_status pdqm_store_bank_delete(pdqm_store *store, const char *name,
                                   pdqm_error *err);

/* Fill *info (the caller's) for the bank called name; PDQM_ERR_NOT_FOUND
 * if none.  One read transaction. */
pdqm_status pdqm_store_bank_get(pdqm_store *store, const char *name,
                                pdqm_bank_info *info, pdqm_error *err);

/* All banks, sorted by name, in a new array *out of *count: the caller
 * frees it with free().  One read transaction. */
pdqm_status pdqm_store_bank_list(pdqm_store *store, pdqm_bank_info **out,
                                 size_t *count, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* Adding and deleting                                                  */

typedef enum pdqm_content_kind {
    PDQM_CONTENT_HASHES = 0,  /* hashes given directly (a hash list) */
    PDQM_CONTENT_IMAGE = 1,
    PDQM_CONTENT_VIDEO = 2
} pdqm_content_kind;

typedef struct pdqm_stored_hash {
    pdqm_hash256 hash;
    int quality;              /* 0..100 */
    double timestamp;         /* seconds into a video; 0 otherwise */
} pdqm_stored_hash;

/* One content item to add, with its hashes.  Strings are borrowed for the
 * call.  sha256 and md5, when not NULL, are the hex digests of the media.
 * An item with no content id is named by its number (pdqm_match.content),
 * in decimal, once added ("17"; "17.1", "17.2"... in the rare case that a
 * bank has an item of that name already): the ids of HMA's API.  An item
 * may hold no hash when it has an MD5 (a video known by its file only). */
typedef struct pdqm_add {
    const char *bank;
    const char *content_id;           /* NULL: named by its number */
    const char *metadata;             /* JSON text or NULL */
    const char *sha256;
    const char *md5;
    pdqm_content_kind kind;
    const pdqm_stored_hash *hashes;
    size_t n_hashes;                  /* 1 .. PDQM_MAX_HASHES_PER_CONTENT
                                         (0 with an md5) */
    int64_t added;                    /* unix seconds; 0: now (an import
                                         restores the exported time) */
    int64_t disabled_until;           /* 0: matches (the default); else as
                                         pdqm_content_info.disabled_until */
    const char *note;                 /* NULL, or at most PDQM_NOTE_MAX
                                         characters of UTF-8 */
    uint32_t *number;                 /* out, when not NULL: the item's number
                                         once added, or that of the item the
                                         bank had (PDQM_ADD_EXISTS,
                                         PDQM_ADD_SAME_FILE) */
} pdqm_add;
#define PDQM_MAX_HASHES_PER_CONTENT 1000000

/* What pdqm_store_content_change() changes. */
typedef struct pdqm_content_changes {
    int set_disabled;        /* change disabled_until (to the value below) */
    int64_t disabled_until;  /* as pdqm_content_info.disabled_until */
    int set_note;            /* change the note (to the one below) */
    const char *note;        /* NULL or "": none */
} pdqm_content_changes;


typedef enum pdqm_add_outcome {
    PDQM_ADDED = 0,          /* stored */
    PDQM_ADD_EXISTS = 1,     /* the bank already has this content id: skipped
                                (a PUT: it holds exactly this already) */
    PDQM_ADD_SAME_FILE = 2,  /* the bank already has media with this SHA-256: skipped */
    PDQM_ADD_REPLACED = 3    /* a PUT: the bank had this content id with other
                                content, now replaced (a new number) */
} pdqm_add_outcome;

/* Add n content items in one transaction: all are stored or none is, and
 * lookups find them as soon as this returns.  (Small batches are indexed a
 * few thousand hashes at a time, and scanned meanwhile: see
 * pdqm_store_add_deferred().)
 * outcomes (n entries, may be NULL) tells what happened to each; skipping
 * a known content id or file is what makes indexing idempotent.
 * Errors: PDQM_ERR_NOT_FOUND (no such bank), PDQM_ERR_INVALID (an empty or
 * over-long content id or metadata, no hashes, a quality outside 0..100),
 * PDQM_ERR_STORE, PDQM_ERR_NOMEM.  The store grows its map as needed. */
pdqm_status pdqm_store_add(pdqm_store *store, const pdqm_add *adds, size_t n,
                           pdqm_add_outcome *outcomes, pdqm_error *err);

/* pdqm_store_add() for bulk loads.  The hashes are stored, committed and
 * found by lookups at once (by scanning them) but left out of the
 * multi-index until pdqm_store_index_pending() indexes them all in one
 * sorted pass, which is many times faster than indexing batch by batch.
 * A load cut short (a crash) leaves a valid store; the next
 * pdqm_store_index_pending() finishes the job. */
pdqm_status pdqm_store_add_deferred(pdqm_store *store, const pdqm_add *adds,
                                    size_t n, pdqm_add_outcome *outcomes,
                                    pdqm_error *err);

/* Index every hash added with pdqm_store_add_deferred() so far; a no-op
 * when there is none (and on a read-only handle).  *indexed (when not NULL)
 * tells how many.  One write transaction, or, in a large store (4M
 * entries indexed) with at most 4M pending, a pass in steps, each its own
 * transaction of about 40 ms, so that other writers come between them
 * (index/README.md, "Passes in steps"); a failure leaves the steps taken,
 * and the next pass goes on from there. */
pdqm_status pdqm_store_index_pending(pdqm_store *store, uint64_t *indexed,
                                     pdqm_error *err);

/* One step of that: the whole pass when it does not go in steps.  *left
 * (when not NULL) is 1 while a pass in steps is under way still. */
pdqm_status pdqm_store_index_step(pdqm_store *store, int *left, pdqm_error *err);

/* Delete one content item and its hashes, in one write transaction;
 * lookups stop finding them at once.  PDQM_ERR_NOT_FOUND when the bank or
 * the content id does not exist. */
pdqm_status pdqm_store_delete(pdqm_store *store, const char *bank,
                              const char *content_id, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* Applying a replicated log                                            */

/* A store fed from an ordered log (a cluster: cluster/cluster.h) applies
 * entries of writes, each with its sequence number.  Applying is
 * deterministic: the same entries in the same order give every store the
 * same content, whatever else happened on its node, which is why nothing
 * in an op may say "now" (times are given) and why an op that cannot be
 * applied (a bank that exists, a content id that does not) is an outcome,
 * kept in its result, not a failure of the batch. */
typedef enum pdqm_op_type {
    PDQM_OP_BANK_CREATE = 1,   /* bank, threshold, bank_kind, time, with set_ratio
                                  the enabled_ratio */
    PDQM_OP_BANK_UPDATE = 2,   /* bank, threshold and bank_kind (-1: unchanged),
                                  with set_ratio the enabled_ratio, rename
                                  (NULL: unchanged) */
    PDQM_OP_BANK_DELETE = 3,   /* bank */
    PDQM_OP_ADD = 4,           /* adds (each its own bank; added > 0), deferred */
    PDQM_OP_DELETE = 5,        /* bank, content_id */
    PDQM_OP_CONTENT_CHANGE = 6,   /* bank (NULL: any), number, changes */
    PDQM_OP_DELETE_NUMBER = 7,    /* bank (NULL: any), number */
    PDQM_OP_EXCHANGE_SET = 8,     /* exchange, xflags and what they set (below) */
    PDQM_OP_EXCHANGE_DELETE = 9,  /* exchange */
    PDQM_OP_PUT = 10              /* adds, deferred: an ADD in which an item whose
                                     content id the bank has replaces it unless
                                     it is the same (a record of an exchange
                                     fetched again, or changed) */
} pdqm_op_type;
#define PDQM_OP_LAST PDQM_OP_PUT

/* What an EXCHANGE_SET op does (xflags):
 *   CREATE      the exchange must not exist (PDQM_ERR_EXISTS); with CONFIG
 *   CONFIG      set its config (else it must exist: PDQM_ERR_NOT_FOUND)
 *   CHECKPOINT  set its checkpoint (NULL: none)
 *   STATUS      set its status text
 *   LEASE       check and set the lease: PDQM_ERR_BUSY when another holder
 *               has it until after the op's time (unless that holder is the
 *               op's takeover); else holder gets it until lease_until (0:
 *               released).
 * The texts are the exchange room's own (exchange/exchange.h); the store
 * keeps them as they are. */
#define PDQM_XSET_CREATE 0x1u
#define PDQM_XSET_CONFIG 0x2u
#define PDQM_XSET_CHECKPOINT 0x4u
#define PDQM_XSET_STATUS 0x8u
#define PDQM_XSET_LEASE 0x10u

typedef struct pdqm_op {
    pdqm_op_type type;
    const char *bank;
    int threshold;
    int bank_kind;
    int set_ratio;             /* BANK_CREATE, BANK_UPDATE: set the enabled ratio */
    double enabled_ratio;
    const char *rename;        /* BANK_UPDATE: the bank's new name, or NULL */
    int64_t time;              /* BANK_CREATE: its creation, unix seconds > 0 */
    const char *content_id;
    const pdqm_add *adds;
    size_t n_adds;
    int deferred;              /* ADD: leave the hashes to an indexing pass
                                  (a bulk load: pdqm_store_add_deferred) */
    uint32_t number;           /* CONTENT_CHANGE, DELETE_NUMBER: the item */
    pdqm_content_changes changes;   /* CONTENT_CHANGE */
    int guard;                 /* when this op fails, the ops after it in its
                                  entry are not applied (their results say
                                  so): an exchange's page stored only while
                                  its fetcher holds the lease */
    const char *exchange;      /* EXCHANGE_SET, EXCHANGE_DELETE: its name */
    unsigned xflags;           /* EXCHANGE_SET: PDQM_XSET_* */
    const char *config;        /* with PDQM_XSET_CONFIG */
    const char *checkpoint;    /* with PDQM_XSET_CHECKPOINT (NULL: none) */
    const char *status;        /* with PDQM_XSET_STATUS */
    const char *holder;        /* with PDQM_XSET_LEASE, and time (> 0) */
    int64_t lease_until;
    const char *takeover;      /* a holder whose lease this op may take */
} pdqm_op;

/* What applying one op did: PDQM_OK, or the error it would have had as a
 * call of its own (PDQM_ERR_EXISTS, PDQM_ERR_NOT_FOUND, PDQM_ERR_INVALID...),
 * which left the store as it was.  For an ADD, outcomes and numbers (room
 * for n_adds each, the caller's; may be NULL) tell each item's fate and
 * number; for DELETE_NUMBER, deleted whether there was an item. */
typedef struct pdqm_op_result {
    pdqm_error error;
    pdqm_add_outcome *outcomes;
    uint32_t *numbers;
    int deleted;
} pdqm_op_result;

/* One entry of the log: its sequence number (1, 2, ...) and its ops. */
typedef struct pdqm_log_entry {
    uint64_t seq;
    const pdqm_op *ops;
    size_t n_ops;
    pdqm_op_result *results;   /* n_ops of them, the caller's (may be NULL) */
    int skipped;               /* out: 1 when seq was applied before */
} pdqm_log_entry;

/* Apply n entries, in ascending seq order, in one write transaction that
 * also stores the last seq applied: a crash loses the batch whole or not
 * at all, and entries at or below the stored seq are skipped (skipped 1,
 * results untouched), so replaying a log from any point is harmless.  Each
 * op runs in a nested transaction of its own (a failed op is undone
 * alone).  Returns PDQM_OK when the batch committed, whatever the ops'
 * outcomes; PDQM_ERR_INVALID for seqs that do not ascend; PDQM_ERR_STORE,
 * PDQM_ERR_NO_SPACE, PDQM_ERR_NOMEM when the batch could not be applied
 * (nothing of it was, and it may be given again). */
pdqm_status pdqm_store_apply(pdqm_store *store, pdqm_log_entry *entries, size_t n,
                             pdqm_error *err);

/* The checks pdqm_store_apply() makes of an op before applying it (those
 * of the op's own call, and no time left to "now"): PDQM_OK, or the
 * outcome it would have.  A writer to a log checks with it first, so that
 * a bad request publishes nothing.  No transaction. */
pdqm_status pdqm_store_check_op(const pdqm_op *op, pdqm_error *err);

/* The last seq pdqm_store_apply() stored (0 when none).  One read
 * transaction. */
pdqm_status pdqm_store_applied_seq(pdqm_store *store, uint64_t *seq, pdqm_error *err);

/* Apply n ops to a store that is not fed from a log, as one entry of
 * pdqm_store_apply() would (each op in a nested transaction, outcomes in
 * results (n of them, the caller's; may be NULL), guards), in one write
 * transaction that stores no seq.  Returns as pdqm_store_apply(). */
pdqm_status pdqm_store_apply_ops(pdqm_store *store, const pdqm_op *ops, size_t n,
                                 pdqm_op_result *results, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* Exchanges                                                            */

/* A store keeps, for each hash exchange it is fed from, a config, a
 * checkpoint and a status (texts of the exchange room's, exchange.h), and
 * a lease saying which fetcher may write for it.  They are written by ops
 * only (EXCHANGE_SET, EXCHANGE_DELETE), so that a checkpoint commits in
 * the same transaction as the records it covers, on one node or on every
 * node of a cluster. */
#define PDQM_EXCHANGE_TEXT_MAX (256 * 1024)   /* bytes of a config, checkpoint or status */
#define PDQM_LEASE_HOLDER_MAX 255

typedef struct pdqm_exchange_state {
    char name[PDQM_BANK_NAME_MAX + 1];   /* the rule of bank names */
    char *config;            /* owned: free with pdqm_exchange_state_clear() */
    char *checkpoint;        /* NULL: none yet */
    char *status;            /* NULL: never set */
    char holder[PDQM_LEASE_HOLDER_MAX + 1];   /* "" when no lease */
    int64_t lease_until;     /* unix seconds */
} pdqm_exchange_state;

void pdqm_exchange_state_clear(pdqm_exchange_state *st);
void pdqm_exchange_states_free(pdqm_exchange_state *v, size_t n);

/* One exchange's state into *out (the caller's; clear it after).
 * PDQM_ERR_NOT_FOUND when there is none of that name.  One read
 * transaction. */
pdqm_status pdqm_store_exchange_get(pdqm_store *store, const char *name,
                                    pdqm_exchange_state *out, pdqm_error *err);

/* Every exchange, sorted by name, in a new array *out of *n (free with
 * pdqm_exchange_states_free()).  One read transaction. */
pdqm_status pdqm_store_exchange_list(pdqm_store *store, pdqm_exchange_state **out,
                                     size_t *n, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

typedef struct pdqm_lookup_options {
    int max_distance;           /* 0..256, or -1 for each bank's threshold */
    const char *const *banks;   /* limit to these banks; NULL for all */
    size_t n_banks;
    double draw;                /* 0..1: a bank takes part when its enabled ratio
                                   is above 0 and at least this (a random draw
                                   a lookup: HMA's coinflip; 0 takes every bank
                                   whose ratio is above 0); PDQM_DRAW_RANDOM:
                                   one drawn for the lookup (pdqm_lookup_draw) */
    unsigned flags;             /* PDQM_LOOKUP_* */
} pdqm_lookup_options;
#define PDQM_DRAW_RANDOM (-1.0)

/* Whether a bank of this enabled ratio takes part in a lookup of this
 * draw and flags (PDQM_LOOKUP_*): the rule every lookup applies, exposed
 * for matches found otherwise (by file digest).  No transaction. */
int pdqm_bank_takes_part(double enabled_ratio, double draw, unsigned flags);

/* A draw for a lookup, uniform in (0, 1]: a bank of enabled ratio r takes
 * part in a share r of lookups (1: all; 0: none).  With a seed (not NULL)
 * the same seed always draws the same (HMA's "seed" of a lookup).  No
 * transaction. */
double pdqm_lookup_draw(const char *seed);
#define PDQM_LOOKUP_ALL_BANKS 0x1u    /* every bank takes part, enabled ratio 0
                                         too (HMA's bypass_coinflip) */
#define PDQM_LOOKUP_DISABLED 0x2u     /* disabled content matches too (HMA's
                                         raw_lookup) */

typedef struct pdqm_match {
    size_t query;            /* index of the query hash */
    int distance;
    pdqm_hash256 hash;       /* the stored hash */
    int quality;
    double timestamp;        /* of a video frame; 0 otherwise */
    uint32_t entry;          /* the stored hash's id */
    uint32_t content;        /* the content item's number */
    pdqm_content_kind kind;
    pdqm_bank_kind bank_kind;
    int bank_threshold;      /* the bank's own threshold, 0..256 */
    const char *bank;        /* these three point into the match list */
    const char *content_id;
    const char *metadata;    /* NULL when none */
} pdqm_match;

typedef struct pdqm_matches {
    pdqm_match *items;       /* sorted by query, then distance, then entry */
    size_t count;
    void *storage;           /* owned strings; release with pdqm_matches_free() */
} pdqm_matches;

/* Every stored hash within the distance of each of the n queries, in one
 * consistent snapshot.  *out is filled even when empty; free it with
 * pdqm_matches_free().  PDQM_ERR_NOT_FOUND for an unknown bank in the
 * options, PDQM_ERR_INVALID for a distance outside -1..256. */
pdqm_status pdqm_store_lookup(pdqm_store *store, const pdqm_hash256 *queries,
                              size_t n, const pdqm_lookup_options *options,
                              pdqm_matches *out, pdqm_error *err);

/* Free what a lookup filled in (items and the strings they point to);
 * NULL and an emptied list do nothing; *m is left empty. */
void pdqm_matches_free(pdqm_matches *m);

/* ------------------------------------------------------------------ */
/* Content, iteration, administration                                   */

typedef struct pdqm_content_info {
    char bank[PDQM_BANK_NAME_MAX + 1];
    char *content_id;        /* owned: free with pdqm_content_info_clear() */
    char *metadata;          /* NULL when none */
    char *note;              /* NULL when none */
    int64_t disabled_until;  /* 0: the item matches; -1: it does not until
                                changed; else unix seconds until which it
                                does not (pdqm_content_disabled) */
    char sha256[65];         /* empty when unknown */
    char md5[33];
    pdqm_content_kind kind;
    int64_t added;           /* unix seconds */
    uint32_t number;         /* the content item's number */
    uint32_t first_entry;    /* its hashes are entries first_entry.. */
    uint32_t n_hashes;       /* ..first_entry + n_hashes - 1 */
} pdqm_content_info;

/* Free the strings a content call filled in; info stays usable (empty). */
void pdqm_content_info_clear(pdqm_content_info *info);

/* PDQM_ERR_INVALID unless note is UTF-8 of at most PDQM_NOTE_MAX
 * characters (code points).  No transaction. */
pdqm_status pdqm_note_check(const char *note, pdqm_error *err);

/* Whether an item of this disabled_until does not match at unix time now:
 * the one rule every lookup and front end applies.  No transaction. */
int pdqm_content_disabled(int64_t disabled_until, int64_t now);

/* Change the item numbered number: whether it matches, its note, in one
 * write transaction (lookups see it at once).  When bank is not NULL the
 * item must be in that bank.  PDQM_ERR_NOT_FOUND (no such item, or not in
 * bank), PDQM_ERR_INVALID (a note over PDQM_NOTE_MAX characters or not
 * UTF-8, disabled_until below -1). */
pdqm_status pdqm_store_content_change(pdqm_store *store, const char *bank, uint32_t number,
                                      const pdqm_content_changes *changes, pdqm_error *err);

/* Delete the item numbered number, in one write transaction, when it is
 * in bank (any bank when NULL): *deleted (when not NULL) is 1, or 0 when
 * there is no such item there (not an error: HMA's delete).
 * PDQM_ERR_NOT_FOUND when bank is given and does not exist. */
pdqm_status pdqm_store_delete_number(pdqm_store *store, const char *bank, uint32_t number,
                                     int *deleted, pdqm_error *err);

/* Fill *info for one content item (its strings are the caller's: clear
 * with pdqm_content_info_clear()); PDQM_ERR_NOT_FOUND when the bank or the
 * item is absent.  One read transaction. */
pdqm_status pdqm_store_content_get(pdqm_store *store, const char *bank,
                                   const char *content_id,
                                   pdqm_content_info *info, pdqm_error *err);

/* One content item by its number (pdqm_match.content), with all its
 * hashes in a new array *hashes of *n (free()); clear info with
 * pdqm_content_info_clear().  PDQM_ERR_NOT_FOUND when it is gone. */
pdqm_status pdqm_store_content_by_number(pdqm_store *store, uint32_t number,
                                         pdqm_content_info *info, pdqm_stored_hash **hashes,
                                         size_t *n, pdqm_error *err);

/* The content numbers of every item (in any bank) stored from a file with
 * this SHA-256 or this MD5 (hex; either may be NULL), in a new array
 * *numbers of *count (free()); read each with
 * pdqm_store_content_by_number().  PDQM_ERR_INVALID for bad hex. */
pdqm_status pdqm_store_find_file(pdqm_store *store, const char *sha256, const char *md5,
                                 uint32_t **numbers, size_t *count, pdqm_error *err);

/* Call fn for every content item (of one bank, or of all when bank is
 * NULL), in the order they were added, with its hashes.  The info and
 * hashes are valid during the call only.  fn returns 0 to go on; any other
 * value stops the walk and is returned in *stopped (when not NULL).  One
 * snapshot for the whole walk. */
typedef int (*pdqm_content_fn)(void *arg, const pdqm_content_info *info,
                               const pdqm_stored_hash *hashes, size_t n);
pdqm_status pdqm_store_walk(pdqm_store *store, const char *bank,
                            pdqm_content_fn fn, void *arg, int *stopped,
                            pdqm_error *err);

/* pdqm_store_walk of the items numbered from or more only: the walk
 * seeks to its start (one B-tree lookup), so a page of content costs the
 * same wherever it starts; past the last item it calls fn never. */
pdqm_status pdqm_store_walk_from(pdqm_store *store, const char *bank, uint32_t from,
                                 pdqm_content_fn fn, void *arg, int *stopped,
                                 pdqm_error *err);

typedef struct pdqm_store_stats {
    uint64_t banks;
    uint64_t contents;
    uint64_t hashes;          /* live hashes */
    uint64_t entries_ever;    /* ids handed out, deleted ones included */
    uint64_t pending;         /* hashes added deferred, not yet indexed */
    uint64_t pending_limit;   /* a small add that brings pending here runs
                                 an indexing pass */
    uint64_t file_bytes;      /* size of the LMDB file */
    uint64_t used_bytes;      /* pages in use */
    uint64_t map_bytes;       /* current map size */
    uint64_t hash_copy_bytes; /* memory this handle keeps for lookups: a
                                 copy of the indexed hashes, less what
                                 deleted ranges gave back */
    int schema;
    int64_t newest_added;     /* unix seconds the last item was added (0: none) */
    int64_t wide_from;        /* entries from here on are posted in the wide
                                 layout, chosen once the store holds 16M
                                 hashes (index/README.md); -1: none */
} pdqm_store_stats;

/* Whether writes may be tried: 0 for a read-only handle, and while the
 * disk is full (a write ended in PDQM_ERR_NO_SPACE and none has fitted
 * since; writes then fail at once with PDQM_ERR_NO_SPACE, but for one
 * tried now and then, after 0.25 s doubling to 5 s, so that they resume
 * by themselves once space is freed).  Nothing is lost: a failed write
 * changes nothing, and reads go on.  No transaction. */
int pdqm_store_writable(pdqm_store *store);

/* Fill *stats (the caller's).  One read transaction. */
pdqm_status pdqm_store_stats_get(pdqm_store *store, pdqm_store_stats *stats,
                                 pdqm_error *err);

/* Check the store's invariants: every posting names a live hash whose slot
 * value (and, wide, suffix) it is, every live hash is posted in every slot
 * of its layout (16 narrow, 11 wide), every content
 * record and its digests agree, the bank counts add up.  Returns
 * PDQM_ERR_STORE with the first problem found in *err; *problems (when not
 * NULL) counts them all. */
pdqm_status pdqm_store_verify(pdqm_store *store, uint64_t *problems,
                              pdqm_error *err);

/* Write a compacted copy of the store to path, which must not exist
 * (PDQM_ERR_IO with the reason); a failed copy is removed.  Readers and writers go on
 * meanwhile: the copy is of one snapshot. */
pdqm_status pdqm_store_compact(pdqm_store *store, const char *path,
                               pdqm_error *err);

#endif
