/*
 * cluster.h - a pdqmatch cluster: every write an entry of one replicated,
 * ordered log (a NATS JetStream stream), applied in order by every node to
 * its own store (pdqm_store_apply in index/store.h).
 *
 * First the entry's encoding, then the node's link to the stream, then
 * the writer the front ends share.  An entry is a list of ops
 * (index/store.h, pdqm_op), written compactly in a versioned binary form,
 * little-endian:
 *
 *   "PDQL", version (u8, 1 to 3), flags (u8, 0), op count (u16)
 *   each op: type (u8), then by type
 *     BANK_CREATE  bank (str8), threshold (u16), kind (u8), time (i64),
 *                  [v2: flags (u8: 1 ratio), the enabled ratio (u64 bits)]
 *     BANK_UPDATE  bank (str8), threshold (i16, -1 unchanged), kind (i8, -1),
 *                  [v2: flags (u8: 1 ratio, 2 rename), the enabled ratio
 *                  (IEEE double's bits, u64), the new name (str8), each
 *                  only with its flag]
 *     BANK_DELETE  bank (str8)
 *     DELETE       bank (str8), content id (str16)
 *     ADD          deferred (u8), item count (u32), each item:
 *                    flags (u8: 1 metadata, 2 SHA-256, 4 MD5, 8 timestamps,
 *                           16 the id is the first hash in hex, not written;
 *                           v2: 32 named by its number (no id), 64 note,
 *                           128 disabled)
 *                    bank (str8), content id (str16, unless flag 16 or 32),
 *                    metadata (str32), note (str16), disabled_until (i64),
 *                    SHA-256 (32 bytes), MD5 (16 bytes) (each only with its
 *                    flag), kind (u8), added (i64), hash count (u32; v2: 0
 *                    with an MD5), each hash: 32 bytes (the words of
 *                    pdqm_hash256, little-endian), quality (u8), and with
 *                    flag 8 the timestamp (IEEE double's bits, u64)
 *     v2 CONTENT_CHANGE  bank (str8, empty: any), number (u32), flags (u8:
 *                  1 disabled_until, 2 note), disabled_until (i64), note
 *                  (str16), each only with its flag
 *     v2 DELETE_NUMBER   bank (str8, empty: any), number (u32)
 *     v3 EXCHANGE_SET    exchange (str8), xflags (u8), time (i64), then by
 *                  flag: config (str32), checkpoint (u8 present, str32),
 *                  status (str32), lease: holder (str8), lease_until (i64),
 *                  takeover (u8 present, then str8)
 *     v3 EXCHANGE_DELETE exchange (str8)
 *     v3 PUT       as ADD
 *   v3: the type byte's top bit is the op's guard flag.
 *   strN: a uN length, then that many bytes (no NUL among them).
 * An entry is written in the lowest version its ops need, so that
 * the nodes of an older pdqmatch go on reading what they can; a node that
 * meets an entry of a version it does not know stops there (its /readyz
 * says to upgrade it) rather than skip it.
 *
 * Entries arrive from the network: the decoder takes nothing on trust.
 * Nothing here prints, logs or exits.
 */
#ifndef PDQM_CLUSTER_H
#define PDQM_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "../hashing/error.h"
#include "../index/store.h"

#define PDQM_LOG_VERSION 3        /* the latest version read and written */
#define PDQM_LOG_HEADER_BYTES 8
#define PDQM_LOG_MAX_OPS 65535

/* Bytes op takes in an entry (its share after the header), 0 when it
 * cannot be encoded (see pdqm_log_encode).  A writer that splits a large
 * add into entries of a bounded size adds up pdqm_log_add_bytes of its
 * items, each entry's ADD op costing PDQM_LOG_ADD_BYTES more. */
size_t pdqm_log_op_bytes(const pdqm_op *op);
size_t pdqm_log_add_bytes(const pdqm_add *item);
#define PDQM_LOG_ADD_BYTES 6

/* Encode ops[0..n) as one entry, in a new buffer *out of *len bytes
 * (free()).  PDQM_ERR_INVALID for what the format cannot hold (over
 * PDQM_LOG_MAX_OPS ops, a string too long for its length field, a
 * SHA-256 or MD5 that is not hex, an unknown op type); PDQM_ERR_NOMEM.
 * The ops' own rules are the store's, when applied. */
pdqm_status pdqm_log_encode(const pdqm_op *ops, size_t n, uint8_t **out, size_t *len,
                            pdqm_error *err);

/* A decoded entry: ops pointing into storage the entry owns. */
typedef struct pdqm_log_ops {
    pdqm_op *ops;
    size_t n_ops;
    void *storage;
} pdqm_log_ops;

/* Decode an entry of len bytes into *out (free it with
 * pdqm_log_ops_free).  PDQM_ERR_INVALID, with where and why, for anything
 * that is not an entry of this version, whole, with nothing after it;
 * PDQM_ERR_UNSUPPORTED for a later version; PDQM_ERR_NOMEM.  What it
 * allocates is bounded by len (every count is checked against the bytes
 * left before anything is made for it). */
pdqm_status pdqm_log_decode(const uint8_t *data, size_t len, pdqm_log_ops *out,
                            pdqm_error *err);
void pdqm_log_ops_free(pdqm_log_ops *ops);

/* ------------------------------------------------------------------ */
/* The cluster: the log on NATS JetStream                               */

/* A node's link to the cluster: a connection to the NATS servers, the
 * stream (created when missing), and once pdqm_cluster_follow() runs, the
 * applier: a thread that feeds the stream, in order, to the node's store,
 * a batch a transaction (pdqm_store_apply).  Safe to share between
 * threads. */
typedef struct pdqm_cluster pdqm_cluster;

typedef struct pdqm_cluster_options {
    const char *urls;          /* NATS servers, comma-separated (nats://host:port) */
    const char *stream;        /* the stream's name (default PDQM_CLUSTER_STREAM) */
    int replicas;              /* when the stream is created: copies kept (0: 3,
                                  or the number of servers given when fewer) */
    const char *creds_file;    /* NATS credentials (a .creds file), or NULL */
    const char *ca_file;       /* for tls:// servers: the CA to trust, or NULL */
    const char *cert_file;     /* a client certificate (PEM) for servers that ask
                                  for one, with key_file, or NULL */
    const char *key_file;
    double timeout;            /* seconds a publish may wait for the stream's
                                  acknowledgement, retries included (default 5) */
    const char *name;          /* this node's name in NATS (default "pdqmatch") */
    const char *mirror;        /* NULL, or read the stream through this mirror of
                                  it (created when missing, in the JetStream
                                  the servers given belong to): a region's
                                  nodes then share one copy of the log coming
                                  over the wide-area link.  Writes still go to
                                  the stream itself. */
} pdqm_cluster_options;

#define PDQM_CLUSTER_STREAM "PDQMATCH"

void pdqm_cluster_options_default(pdqm_cluster_options *o);

/* Connect and make sure the stream exists (creating it with its subject
 * "<stream>.log").  The connection reconnects by itself for as long as the
 * handle lives.  PDQM_ERR_UNAVAILABLE when no server answers, with NATS's
 * reason; PDQM_ERR_INVALID for bad options; PDQM_ERR_NOMEM. */
pdqm_status pdqm_cluster_open(const pdqm_cluster_options *o, pdqm_cluster **out,
                              pdqm_error *err);

/* Stop the applier (if any), close the connection, free the handle. */
void pdqm_cluster_close(pdqm_cluster *c);

/* Publish ops as one entry and wait for the stream to acknowledge it
 * (stored by a majority of its replicas): *seq is its sequence number.
 * The entry carries a message id, so a publish retried after a lost
 * acknowledgement is stored once.  PDQM_ERR_UNAVAILABLE when the stream
 * cannot acknowledge within the options' timeout (nothing may have been
 * stored, or the entry may appear later: a client retries);
 * PDQM_ERR_TOO_LARGE for an entry over the servers' max_payload;
 * PDQM_ERR_INVALID (pdqm_log_encode). */
pdqm_status pdqm_cluster_publish(pdqm_cluster *c, const pdqm_op *ops, size_t n,
                                 uint64_t *seq, pdqm_error *err);

/* The largest entry the servers take (their max_payload), in bytes. */
size_t pdqm_cluster_max_entry(pdqm_cluster *c);

/* Start the applier on store (which the cluster then feeds; other writes
 * to it break the replica).  It resumes after the store's applied seq.
 * PDQM_ERR_INVALID when the stream no longer has the entries that follow
 * it (purged: the store must come from a newer snapshot).  The applier
 * never applies past a missing entry (pdqm_cluster_state.missing). */
pdqm_status pdqm_cluster_follow(pdqm_cluster *c, pdqm_store *store, pdqm_error *err);

/* What applying one of this node's entries did: its ops' results (each
 * ADD's outcomes included).  Free with pdqm_cluster_outcome_free(). */
typedef struct pdqm_cluster_outcome {
    uint64_t seq;
    size_t n_ops;
    pdqm_op_result *results;
} pdqm_cluster_outcome;
void pdqm_cluster_outcome_free(pdqm_cluster_outcome *o);

/* Wait until the applier has applied seq (at most timeout seconds).  When
 * out is not NULL and seq is an entry this handle published, *out gets
 * what applying it did (n_ops 0 if that is no longer known).
 * PDQM_ERR_UNAVAILABLE on the timeout. */
pdqm_status pdqm_cluster_wait(pdqm_cluster *c, uint64_t seq, double timeout,
                              pdqm_cluster_outcome *out, pdqm_error *err);

/* Publish ops, wait until this node has applied them, and return what
 * applying did: pdqm_cluster_publish() then pdqm_cluster_wait().  When
 * the wait times out (PDQM_ERR_UNAVAILABLE) the entry is in the log all
 * the same, and its seq is in the message. */
pdqm_status pdqm_cluster_write(pdqm_cluster *c, const pdqm_op *ops, size_t n,
                               pdqm_cluster_outcome *out, pdqm_error *err);

/* Purge the stream's entries up to and including upto (a snapshot's
 * applied seq): a node then starts from a snapshot at upto or later, and
 * a node that had not applied them stops (see pdqm_cluster_state.missing).
 * *first (when not NULL) is the stream's first entry after it.
 * PDQM_ERR_UNAVAILABLE when the servers do not answer. */
pdqm_status pdqm_cluster_purge(pdqm_cluster *c, uint64_t upto, uint64_t *first,
                               pdqm_error *err);

typedef struct pdqm_cluster_state {
    uint64_t applied;          /* the last seq the store applied */
    uint64_t last;             /* the stream's last seq, as last seen */
    double lag;                /* seconds the store has been behind the stream
                                  (0 when caught up) */
    int connected;             /* the NATS connection is up */
    uint64_t entries;          /* entries applied by this process */
    uint64_t bad_entries;      /* entries that did not decode (skipped) */
    uint64_t apply_failures;   /* batches that failed and were tried again */
    pdqm_error apply_error;    /* while batches fail: why the last one did
                                  (status PDQM_OK otherwise) */
    double apply_rate;         /* entries a second over the last few seconds */
    uint64_t missing;          /* 0, or the first entry this store needs that the
                                  stream no longer has (purged): the store stays
                                  where it is, and the node needs a snapshot */
    uint64_t unsupported;      /* 0, or the first entry this store needs that a
                                  later pdqmatch wrote (a log version this one
                                  does not read): the store stays where it is
                                  until the node is upgraded */
} pdqm_cluster_state;

void pdqm_cluster_state_get(pdqm_cluster *c, pdqm_cluster_state *out);

/* ------------------------------------------------------------------ */
/* Writing: to the local store, or through the cluster                  */

/* Where a front end's writes go.  With cluster NULL they go to store, as
 * the store's own calls; with a cluster they are checked as the store
 * would check them (a bad request publishes nothing), given their times,
 * published, and answered once this node's store has applied them, with
 * what applying did, so that a single node and a node of a cluster answer
 * alike.  *seq (when not NULL) is the write's sequence in the log (0 for
 * a local write).
 *
 * A cluster with store NULL is a writer that only publishes (the offline
 * tools): a write returns once the stream has acknowledged it, and what
 * applying does is the nodes' to know (a delete of what is not there is
 * a no-op on every node alike); outcomes are not written. */
typedef struct pdqm_writer {
    pdqm_store *store;
    pdqm_cluster *cluster;
} pdqm_writer;

/* (enabled_ratio 0..1; negative: 1, the default.) */
pdqm_status pdqm_write_bank_create(const pdqm_writer *w, const char *name, int threshold,
                                   pdqm_bank_kind kind, double enabled_ratio, int64_t created,
                                   uint64_t *seq, pdqm_error *err);
pdqm_status pdqm_write_bank_update(const pdqm_writer *w, const char *name, int threshold,
                                   int kind, uint64_t *seq, pdqm_error *err);
pdqm_status pdqm_write_bank_change(const pdqm_writer *w, const char *name,
                                   const pdqm_bank_changes *changes, uint64_t *seq,
                                   pdqm_error *err);
pdqm_status pdqm_write_bank_delete(const pdqm_writer *w, const char *name, uint64_t *seq,
                                   pdqm_error *err);
/* pdqm_store_content_change and pdqm_store_delete_number (*deleted as
 * there; a writer that only publishes leaves it 0). */
pdqm_status pdqm_write_content_change(const pdqm_writer *w, const char *bank, uint32_t number,
                                      const pdqm_content_changes *changes, uint64_t *seq,
                                      pdqm_error *err);
pdqm_status pdqm_write_delete_number(const pdqm_writer *w, const char *bank, uint32_t number,
                                     int *deleted, uint64_t *seq, pdqm_error *err);
pdqm_status pdqm_write_delete(const pdqm_writer *w, const char *bank, const char *content_id,
                              uint64_t *seq, pdqm_error *err);

/* Ops applied as one entry (pdqm_store_apply_ops on a local store): each
 * op's outcome in results[i].error, with an ADD's or PUT's outcomes and
 * numbers in the arrays results[i] points to (when not NULL) and a
 * DELETE_NUMBER's deleted.  PDQM_OK when the entry was applied, whatever
 * its ops' outcomes; a writer that only publishes leaves results as they
 * were. */
pdqm_status pdqm_write_ops(const pdqm_writer *w, const pdqm_op *ops, size_t n,
                           pdqm_op_result *results, uint64_t *seq, pdqm_error *err);

/* pdqm_store_add (deferred: pdqm_store_add_deferred; each item's number
 * to its number pointer, as there), and with
 * create_banks the rule of pdqm_ingest_add: a bank the items name that
 * does not exist is made first (block, PDQM_DEFAULT_THRESHOLD).  Through
 * the cluster, an add over one entry's size is refused with
 * PDQM_ERR_TOO_LARGE: a bulk load splits its items (pdqm_write_add_bulk). */
pdqm_status pdqm_write_add(const pdqm_writer *w, const pdqm_add *adds, size_t n,
                           int create_banks, int deferred, pdqm_add_outcome *outcomes,
                           uint64_t *seq, pdqm_error *err);

/* A bulk load (the offline tools' hash lists and imports): pdqm_write_add
 * of n items, but through a cluster split into as many entries as their
 * size needs, each at most pdqm_cluster_max_entry() bytes and published
 * once the one before it is acknowledged (the load goes no faster than
 * the stream stores it).  So a bulk load is not one write: the entries
 * acknowledged before a failure stay, and a load run again skips what
 * they hold.  With create_banks, each entry creates the banks its items
 * name first (one that exists is left as it is).  PDQM_ERR_TOO_LARGE for
 * an item over one entry, before anything of it is published. */
typedef struct pdqm_bulk_counts {
    size_t items;              /* written (local) or published */
    size_t entries;            /* log entries published (0 for a local writer) */
    size_t bytes;              /* their size */
    uint64_t last_seq;         /* the last entry published */
} pdqm_bulk_counts;

pdqm_status pdqm_write_add_bulk(const pdqm_writer *w, const pdqm_add *adds, size_t n,
                                int create_banks, int deferred, pdqm_add_outcome *outcomes,
                                pdqm_bulk_counts *counts, pdqm_error *err);

/* The sink an import (core/transfer.h, pdqm_import_jsonl_to) writes
 * through w: the store's own without a cluster; through a cluster, each
 * bank line an entry that creates the bank when missing and sets its
 * threshold and kind (what it did is not known: *did -1), items as bulk
 * loads of deferred adds.  w must outlive the sink. */
struct pdqm_import_sink;
void pdqm_write_import_sink(const pdqm_writer *w, struct pdqm_import_sink *out);

#endif
