/*
 * store_postings.h - writing the records array and the postings: the
 * layer the adds, the indexing pass and the deletes write through.
 * Private to index/.
 */
#ifndef PDQM_STORE_POSTINGS_H
#define PDQM_STORE_POSTINGS_H

#include "store_int.h"

/* Merging new ids into the postings: one value a key, a packed ascending
 * array of u32 ids. */
typedef struct postings_writer {
    pdqm_store *s;
    MDB_txn *txn;
    uint32_t last_key;     /* the largest key stored before this write */
    int have_last;
    uint32_t *scratch;
    size_t cap;
} postings_writer;

/* Open a writer over txn's postings; close it even when this fails. */
int store_writer_open(postings_writer *w, pdqm_store *s, MDB_txn *txn);
void store_writer_close(postings_writer *w);

/* Merge ids (ascending) into key's posting; remove one id from it. */
int store_writer_add(postings_writer *w, uint32_t key, const uint32_t *ids, size_t n);
int store_writer_remove(postings_writer *w, uint32_t key, uint32_t id);

/* Put (key << 32 | id) pairs, sorted here, into the postings. */
int store_put_postings(pdqm_store *s, MDB_txn *txn, uint64_t *pairs, size_t n);

/* Append records to the records array, starting at entry id first. */
int store_put_records(pdqm_store *s, MDB_txn *txn, uint32_t first,
                       const record *recs, size_t n);

#endif
