/*
 * store_postings.c - writing the records array and the postings, for the
 * layers above (adds, the indexing pass, deletes).  Inside a write
 * transaction its caller holds.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_postings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>



/* ------------------------------------------------------------------ */
/* Postings                                                             */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}


int store_writer_open(postings_writer *w, pdqm_store *s, MDB_txn *txn)
{
    memset(w, 0, sizeof *w);
    w->s = s;
    w->txn = txn;
    /* No cursor stays open across the writes below: plain puts only. */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db.postings, &cur);
    if (rc != 0)
        return rc;
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0) {
        memcpy(&w->last_key, k.mv_data, 4);
        w->have_last = 1;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

void store_writer_close(postings_writer *w)
{
    free(w->scratch);
}

/* Room for n postings (ids and suffixes) in the scratch value. */
static int writer_room(postings_writer *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 1024;
    while (cap < n)
        cap *= 2;
    uint8_t *grown = realloc(w->scratch, cap * 5);
    if (grown == NULL)
        return ENOMEM;
    w->scratch = grown;
    w->cap = cap;
    return 0;
}

static uint32_t id_at(const uint8_t *ids, size_t i)
{
    uint32_t x;
    memcpy(&x, ids + 4 * i, 4);
    return x;
}

/* Add n ascending ids (and, under a wide key, their suffixes) to key.
 * Keys past the last one stored are appended, which fills LMDB's pages;
 * others are merged into their value. */
int store_writer_add(postings_writer *w, uint32_t key, const uint32_t *ids,
                     const uint8_t *suffixes, size_t n)
{
    MDB_val k = { 4, &key }, v;
    const int wide = key_is_wide(key);
    store_touch(w->s, key);
    int rc = 0;
    size_t m = 0;
    if (w->have_last && key <= w->last_key) {
        rc = mdb_get(w->txn, w->s->db.postings, &k, &v);
        if (rc == 0 && ((m = posting_count(key, v.mv_size)) == (size_t)-1 || m == 0))
            rc = MDB_CORRUPTED;
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    if (m == 0 && !wide) {
        MDB_val nv = { n * 4, (void *)ids };
        return mdb_put(w->txn, w->s->db.postings, &k, &nv,
                       !w->have_last || key > w->last_key ? MDB_APPEND : 0);
    }
    if ((rc = writer_room(w, m + n)) != 0)
        return rc;
    const uint8_t *old = m ? v.mv_data : NULL;
    uint8_t *out_ids = w->scratch, *out_suf = w->scratch + 4 * (m + n);
    /* Usually every new id is larger (ids grow): a plain append. */
    size_t i = 0, j = 0, o = 0;
    while (i < m || j < n) {
        uint32_t a = i < m ? id_at(old, i) : UINT32_MAX;
        int take_old = i < m && (j == n || a <= ids[j]);
        if (take_old) {
            memcpy(out_ids + 4 * o, &a, 4);
            if (wide)
                out_suf[o] = old[4 * m + i];
            if (j < n && a == ids[j])
                j++;
            i++;
        } else {
            memcpy(out_ids + 4 * o, &ids[j], 4);
            if (wide)
                out_suf[o] = suffixes[j];
            j++;
        }
        o++;
    }
    if (wide && o < m + n)
        memmove(out_ids + 4 * o, out_suf, o);   /* suffixes right after the ids */
    MDB_val nv = { o * (wide ? 5 : 4), w->scratch };
    return mdb_put(w->txn, w->s->db.postings, &k, &nv,
                   m == 0 && (!w->have_last || key > w->last_key) ? MDB_APPEND : 0);
}

/* Remove id from key's value; MDB_CORRUPTED when it is not there. */
int store_writer_remove(postings_writer *w, uint32_t key, uint32_t id)
{
    MDB_val k = { 4, &key }, v;
    store_touch(w->s, key);
    int rc = mdb_get(w->txn, w->s->db.postings, &k, &v);
    if (rc != 0)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    const int wide = key_is_wide(key);
    size_t m = posting_count(key, v.mv_size), lo = 0, hi = m;
    if (m == (size_t)-1)
        return MDB_CORRUPTED;
    const uint8_t *old = v.mv_data;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (id_at(old, mid) < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == m || id_at(old, lo) != id)
        return MDB_CORRUPTED;
    if (m == 1)
        return mdb_del(w->txn, w->s->db.postings, &k, NULL);
    if ((rc = writer_room(w, m - 1)) != 0)
        return rc;
    uint8_t *out = w->scratch;
    memcpy(out, old, 4 * lo);
    memcpy(out + 4 * lo, old + 4 * (lo + 1), 4 * (m - lo - 1));
    if (wide) {
        const uint8_t *suf = old + 4 * m;
        uint8_t *osuf = out + 4 * (m - 1);
        memcpy(osuf, suf, lo);
        memcpy(osuf + lo, suf + lo + 1, m - lo - 1);
    }
    MDB_val nv = { (m - 1) * (wide ? 5 : 4), out };
    return mdb_put(w->txn, w->s->db.postings, &k, &nv, 0);
}

/* Put postings, each POSTING(key, id, suffix), sorted here, into the
 * postings. */
int store_put_postings(pdqm_store *s, MDB_txn *txn, uint64_t *pairs, size_t n)
{
    if (n == 0)
        return 0;
    qsort(pairs, n, sizeof *pairs, compare_u64);
    postings_writer w;
    int rc = store_writer_open(&w, s, txn);
    uint32_t *ids = rc == 0 ? malloc(n * sizeof *ids) : NULL;
    uint8_t *suffixes = rc == 0 ? malloc(n) : NULL;
    if (rc == 0 && (ids == NULL || suffixes == NULL))
        rc = ENOMEM;
    for (size_t i = 0; i < n && rc == 0;) {
        uint32_t key = POSTING_KEY(pairs[i]);
        size_t j = i;
        while (j < n && POSTING_KEY(pairs[j]) == key) {
            ids[j - i] = POSTING_ID(pairs[j]);
            suffixes[j - i] = POSTING_SUFFIX(pairs[j]);
            j++;
        }
        rc = store_writer_add(&w, key, ids, suffixes, j - i);
        i = j;
    }
    free(ids);
    free(suffixes);
    store_writer_close(&w);
    return rc;
}


/* Append records to the records array, starting at entry id `first`. */
int store_put_records(pdqm_store *s, MDB_txn *txn, uint32_t first,
                       const record *recs, size_t n)
{
    uint8_t *block = malloc(BLOCK_BYTES);
    if (block == NULL)
        return ENOMEM;
    int rc = 0;
    size_t done = 0;
    while (done < n && rc == 0) {
        uint32_t id = first + (uint32_t)done;
        uint32_t b = id / RECORDS_PER_BLOCK, off = id % RECORDS_PER_BLOCK;
        size_t take = RECORDS_PER_BLOCK - off;
        if (take > n - done)
            take = n - done;
        uint32_t count = off + (uint32_t)take;
        unsigned flags = MDB_APPEND;
        if (off > 0) {
            /* The partial last block: keep what it has. */
            MDB_val k = { 4, &b }, v;
            rc = mdb_get(txn, s->db.records, &k, &v);
            if (rc != 0 || block_count(v.mv_size) != off) {
                rc = rc ? rc : MDB_CORRUPTED;
                break;
            }
            for (uint32_t i = 0; i < off; i++) {
                record r;
                block_read(v.mv_data, off, i, &r);
                block_write(block, count, i, &r);
            }
            flags = 0;
        }
        memset(block, 0, BLOCK_PAD);
        for (size_t i = 0; i < take; i++)
            block_write(block, count, off + (uint32_t)i, &recs[done + i]);
        MDB_val k = { 4, &b }, v = { block_size(count), block };
        rc = mdb_put(txn, s->db.records, &k, &v, flags);
        done += take;
    }
    free(block);
    return rc;
}
