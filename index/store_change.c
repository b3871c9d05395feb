/*
 * store_change.c - changing a content item in place: whether it matches
 * (disabled_until) and its note.  Its hashes, id and number stay; only its
 * record is written again, in its group.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"
#include "../hashing/utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

pdqm_status pdqm_note_check(const char *note, pdqm_error *err)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)note; *p; chars++) {
        size_t n = pdqm_utf8_sequence(p);
        if (n == 0)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "a note must be UTF-8");
        p += n;
    }
    if (chars > PDQM_NOTE_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a note is at most %d characters, not %zu",
                              PDQM_NOTE_MAX, chars);
    return PDQM_OK;
}

pdqm_status store_content_changes_check(const pdqm_content_changes *c, pdqm_error *err)
{
    if (c->set_disabled && c->disabled_until < -1)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "disabled_until is -1 (until changed), 0 (matches) or unix "
                              "seconds, not %lld", (long long)c->disabled_until);
    if (c->set_note && c->note)
        return pdqm_note_check(c->note, err);
    return PDQM_OK;
}

/* The item numbered number for a write, in bank when given: 0 with its
 * view (pointing into the map) and *missing 0; 0 with *missing 1 when
 * there is no such item there; -1 with *err set when bank does not exist;
 * else an LMDB code. */
static int item_for_write(pdqm_store *s, MDB_txn *txn, const char *bank, uint32_t number,
                          content_view *c, int *missing, pdqm_error *err)
{
    bank_rec b;
    int rc;
    *missing = 0;
    if (bank) {
        rc = store_bank_find(s, txn, bank, &b);
        if (rc == MDB_NOTFOUND) {
            pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", bank);
            return -1;
        }
        if (rc != 0)
            return rc;
    }
    MDB_val v;
    rc = store_cnum_get(s, txn, number, &v);
    if (rc == 0)
        rc = store_content_read(s, txn, number, &v, c);
    if (rc == MDB_NOTFOUND || (rc == 0 && bank && c->head.bank != b.id)) {
        *missing = 1;
        return 0;
    }
    return rc;
}

int store_content_change_in(pdqm_store *s, MDB_txn *txn, const char *bank, uint32_t number,
                            const pdqm_content_changes *c, pdqm_error *err)
{
    content_view v;
    int missing;
    int rc = item_for_write(s, txn, bank, number, &v, &missing, err);
    if (rc != 0)
        return rc;
    if (missing) {
        pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no content number %u%s%s%s", number,
                       bank ? " in bank '" : "", bank ? bank : "", bank ? "'" : "");
        return -1;
    }
    if (c->set_disabled) {
        v.head.disabled_until = c->disabled_until;
        v.head.flags = c->disabled_until ? v.head.flags | CONTENT_HAS_DISABLE
                                         : v.head.flags & ~CONTENT_HAS_DISABLE;
    }
    /* An id that is its first hash's hex stays stored as nothing. */
    pdqm_hash256 first;
    if (v.head.id_len == PDQM_HASH_HEX_LEN && v.head.n_hashes > 0) {
        record r;
        uint32_t block = UINT32_MAX;
        MDB_val cached = { 0, NULL };
        if ((rc = store_read_record(s, txn, number, &r, &block, &cached)) != 0)
            return rc;
        memcpy(first.w, r.hash, 32);
        v.first_hash = &first;
    }
    if (c->set_note) {
        int has = c->note && c->note[0];
        v.note = has ? c->note : NULL;
        v.head.note_len = has ? (uint32_t)strlen(c->note) : 0;
    }
    /* The view points into the map, which the write below may move:
     * encode into a buffer of our own first. */
    uint8_t *buf = malloc(store_content_bound(&v));
    if (buf == NULL)
        return ENOMEM;
    size_t len = store_content_encode(buf, &v);
    rc = store_cnum_replace(s, txn, number, buf, len);
    free(buf);
    return rc;
}

typedef struct change_args {
    const char *bank;
    uint32_t number;
    const pdqm_content_changes *c;
} change_args;

static int do_change(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    const change_args *a = arg;
    return store_content_change_in(s, txn, a->bank, a->number, a->c, err);
}

pdqm_status pdqm_store_content_change(pdqm_store *store, const char *bank, uint32_t number,
                                      const pdqm_content_changes *changes, pdqm_error *err)
{
    pdqm_status st = bank ? pdqm_bank_name_check(bank, err) : PDQM_OK;
    if (st == PDQM_OK)
        st = store_content_changes_check(changes, err);
    if (st != PDQM_OK)
        return st;
    change_args a = { bank, number, changes };
    return store_write(store, do_change, &a, "cannot change the content", err);
}

/* ------------------------------------------------------------------ */
/* Deleting by number                                                   */

int store_delete_number_in(pdqm_store *s, MDB_txn *txn, const char *bank, uint32_t number,
                           int *deleted, pdqm_error *err)
{
    content_view v;
    int missing;
    *deleted = 0;
    int rc = item_for_write(s, txn, bank, number, &v, &missing, err);
    if (rc != 0 || missing)
        return rc;   /* no such item there: nothing to delete */
    /* The bank by id: the item's own, which bank (when given) is. */
    bank_table t;
    if (store_bank_table(s, txn, &t, err) != PDQM_OK)
        return -1;
    int bi = v.head.bank <= t.max_id ? t.by_id[v.head.bank] : -1;
    if (bi < 0) {
        store_bank_table_free(&t);
        return MDB_CORRUPTED;
    }
    char name[PDQM_BANK_NAME_MAX + 1];
    memcpy(name, t.names[bi], sizeof name);
    bank_rec b = t.recs[bi];
    store_bank_table_free(&t);
    if ((rc = store_delete_content(s, txn, number, &v, &b)) != 0)
        return rc;
    *deleted = 1;
    return store_bank_put(s, txn, name, &b);
}

typedef struct delete_args {
    const char *bank;
    uint32_t number;
    int deleted;
} delete_args;

static int do_delete_number(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    delete_args *a = arg;
    return store_delete_number_in(s, txn, a->bank, a->number, &a->deleted, err);
}

pdqm_status pdqm_store_delete_number(pdqm_store *store, const char *bank, uint32_t number,
                                     int *deleted, pdqm_error *err)
{
    if (deleted)
        *deleted = 0;
    pdqm_status st = bank ? pdqm_bank_name_check(bank, err) : PDQM_OK;
    if (st != PDQM_OK)
        return st;
    delete_args a = { bank, number, 0 };
    st = store_write(store, do_delete_number, &a, "cannot delete the content", err);
    if (st == PDQM_OK && deleted)
        *deleted = a.deleted;
    return st;
}
