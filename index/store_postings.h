/*
 * store_postings.h - writing the records array and the postings: the
 * layer the adds, the indexing pass and the deletes write through.
 * Private to index/.
 */
#ifndef PDQM_STORE_POSTINGS_H
#define PDQM_STORE_POSTINGS_H

#include "store_int.h"

/* Merging new ids into the postings: one value a key, the ascending u32
 * ids (and, under a wide key, a suffix byte each after them: see
 * store_int.h). */
typedef struct postings_writer {
    pdqm_store *s;
    MDB_txn *txn;
    uint32_t last_key;     /* the largest key stored before this write */
    int have_last;
    uint8_t *scratch;      /* room for cap postings, 5 bytes each */
    size_t cap;
} postings_writer;

/* Open a writer over txn's postings; close it even when this fails. */
int store_writer_open(postings_writer *w, pdqm_store *s, MDB_txn *txn);
void store_writer_close(postings_writer *w);

/* Merge ids (ascending; suffixes beside them, used under a wide key) into
 * key's value; remove one id from it. */
int store_writer_add(postings_writer *w, uint32_t key, const uint32_t *ids,
                     const uint8_t *suffixes, size_t n);
int store_writer_remove(postings_writer *w, uint32_t key, uint32_t id);

/* A posting as one sortable u64: key (21 bits), then id, then suffix, so
 * that sorting orders keys and, within a key, ids. */
#define POSTING(key, id, suffix) \
    ((uint64_t)(key) << 40 | (uint64_t)(id) << 8 | (uint64_t)(suffix))
#define POSTING_KEY(p) ((uint32_t)((p) >> 40))
#define POSTING_ID(p) ((uint32_t)((p) >> 8))
#define POSTING_SUFFIX(p) ((uint8_t)(p))

/* Put postings (POSTING(...)), sorted here, into the postings. */
int store_put_postings(pdqm_store *s, MDB_txn *txn, uint64_t *pairs, size_t n);

/* Append records to the records array, starting at entry id first. */
int store_put_records(pdqm_store *s, MDB_txn *txn, uint32_t first,
                       const record *recs, size_t n);

#endif
