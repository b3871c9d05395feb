/*
 * cluster.h - a pdqmatch cluster: every write an entry of one replicated,
 * ordered log (a NATS JetStream stream), applied in order by every node to
 * its own store (pdqm_store_apply in index/store.h).
 *
 * This part: the entry's encoding.  An entry is a list of ops
 * (index/store.h, pdqm_op), written compactly in a versioned binary form,
 * little-endian:
 *
 *   "PDQL", version (u8, PDQM_LOG_VERSION), flags (u8, 0), op count (u16)
 *   each op: type (u8), then by type
 *     BANK_CREATE  bank (str8), threshold (u16), kind (u8), time (i64)
 *     BANK_UPDATE  bank (str8), threshold (i16, -1 unchanged), kind (i8, -1)
 *     BANK_DELETE  bank (str8)
 *     DELETE       bank (str8), content id (str16)
 *     ADD          deferred (u8), item count (u32), each item:
 *                    flags (u8: 1 metadata, 2 SHA-256, 4 MD5, 8 timestamps,
 *                           16 the id is the first hash in hex, not written)
 *                    bank (str8), content id (str16, unless flag 16),
 *                    metadata (str32), SHA-256 (32 bytes), MD5 (16 bytes)
 *                    (each only with its flag), kind (u8), added (i64),
 *                    hash count (u32), each hash: 32 bytes (the words of
 *                    pdqm_hash256, little-endian), quality (u8), and with
 *                    flag 8 the timestamp (IEEE double's bits, u64)
 *   strN: a uN length, then that many bytes (no NUL among them).
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

#define PDQM_LOG_VERSION 1
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

#endif
