/*
 * store_delete.c - deleting content: its records, keys, digests and
 * postings (pending entries have none yet), in the caller's transaction
 * or one of its own.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_postings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Deletes                                                              */

int store_delete_content(pdqm_store *s, MDB_txn *txn, uint32_t number,
                         const content_view *c, bank_rec *bank)
{
    meta_vals m;
    int rc = store_meta_read(s, txn, &m);
    if (rc != 0)
        return rc;
    /* Copy what we need: the record value goes away below. */
    content_head h = c->head;
    char id[PDQM_CONTENT_ID_MAX + 1];
    if (h.id_len > PDQM_CONTENT_ID_MAX)
        return MDB_CORRUPTED;
    memcpy(id, c->content_id, h.id_len);
    uint8_t sha[32] = { 0 }, md5[16] = { 0 };
    const int has_sha = c->sha256 != NULL, has_md5 = c->md5 != NULL;
    if (has_sha)
        memcpy(sha, c->sha256, 32);
    if (has_md5)
        memcpy(md5, c->md5, 16);

    /* Postings of every indexed entry. */
    postings_writer w;
    if ((rc = store_writer_open(&w, s, txn)) != 0) {
        store_writer_close(&w);
        return rc;
    }
    MDB_val blockv = { 0, NULL };
    uint32_t block_no = UINT32_MAX;
    for (uint32_t e = h.first_entry; e < h.first_entry + h.n_hashes && rc == 0; e++) {
        if (e >= m.pending_from && e < m.pending_to && !(m.pass_to && e < m.pass_to))
            continue;   /* pending, none of its keys posted */
        uint32_t b = e / RECORDS_PER_BLOCK;
        if (b != block_no) {
            MDB_val k = { 4, &b };
            if ((rc = mdb_get(txn, s->db.records, &k, &blockv)) != 0)
                break;
            block_no = b;
        }
        record rr;
        if (block_count(blockv.mv_size) <= e % RECORDS_PER_BLOCK) {
            rc = MDB_CORRUPTED;
            break;
        }
        block_read(blockv.mv_data, block_count(blockv.mv_size), e % RECORDS_PER_BLOCK, &rr);
        uint32_t keys[SLOTS];
        uint8_t suffixes[SLOTS];
        int nk = entry_keys(rr.hash, e >= m.wide_from, keys, suffixes);
        for (int slot = 0; slot < nk && rc == 0; slot++) {
            if (!entry_posted(&m, e, keys[slot]))
                continue;
            rc = store_writer_remove(&w, keys[slot], e);
            /* writer_remove may have moved pages: fetch the block again. */
            block_no = UINT32_MAX;
        }
    }
    store_writer_close(&w);
    if (rc != 0)
        return rc;

    if ((rc = store_content_unlink(s, txn, h.bank, id, h.id_len, number,
                                   number >= names_from(&m) && number < m.pending_to)) != 0)
        return rc;
    if ((rc = store_cnum_del(s, txn, number)) != 0)
        return rc;
    /* A pass in steps indexing this item has a stale copy of what lives. */
    if (m.pass_to && h.first_entry < m.pass_to &&
        (uint64_t)h.first_entry + h.n_hashes > m.pending_from &&
        (rc = store_meta_put(s, txn, "pass_deletes", m.pass_deletes + 1)) != 0)
        return rc;
    uint8_t dk[36];
    if (has_sha) {
        memcpy(dk, sha, 32);
        put_be32(dk + 32, h.bank);
        MDB_val sk = { 36, dk }, sv = { 4, &number };
        rc = mdb_del(txn, s->db.sha256, &sk, &sv);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    if (has_md5) {
        memcpy(dk, md5, 16);
        put_be32(dk + 16, h.bank);
        MDB_val mk = { 20, dk }, mv = { 4, &number };
        rc = mdb_del(txn, s->db.md5, &mk, &mv);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    bank->contents -= 1;
    bank->hashes -= h.n_hashes;
    return 0;
}

typedef struct delete_args {
    const char *bank, *content_id;
} delete_args;

static int do_delete(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    const delete_args *a = arg;
    bank_rec b;
    int rc = store_bank_find(s, txn, a->bank, &b);
    if (rc == MDB_NOTFOUND) {
        pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", a->bank);
        return -1;
    }
    if (rc != 0)
        return rc;
    size_t len = strlen(a->content_id);
    uint32_t number;
    MDB_val rv;
    rc = store_content_find(s, txn, b.id, a->content_id, len, &number, &rv);
    if (rc == MDB_NOTFOUND) {
        pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no content '%s' in bank '%s'",
                       a->content_id, a->bank);
        return -1;
    }
    if (rc != 0)
        return rc;
    content_view c;
    if ((rc = store_content_read(s, txn, number, &rv, &c)) != 0)
        return rc;
    if ((rc = store_delete_content(s, txn, number, &c, &b)) != 0)
        return rc;
    return store_bank_put(s, txn, a->bank, &b);
}

pdqm_status store_delete_check(const char *bank, const char *content_id, pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(bank, err);
    if (st != PDQM_OK)
        return st;
    size_t len = content_id ? strlen(content_id) : 0;
    if (len == 0 || len > PDQM_CONTENT_ID_MAX)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no content '%s' in bank '%s'",
                              content_id ? content_id : "", bank);
    return PDQM_OK;
}

int store_delete_in(pdqm_store *s, MDB_txn *txn, const char *bank, const char *content_id,
                    pdqm_error *err)
{
    delete_args a = { bank, content_id };
    return do_delete(s, txn, &a, err);
}

pdqm_status pdqm_store_delete(pdqm_store *store, const char *bank,
                              const char *content_id, pdqm_error *err)
{
    pdqm_status st = store_delete_check(bank, content_id, err);
    if (st != PDQM_OK)
        return st;
    delete_args a = { bank, content_id };
    return store_write(store, do_delete, &a, "cannot delete from the store", err);
}
