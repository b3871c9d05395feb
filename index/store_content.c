/*
 * store_content.c - reading content: one item by id or by number, the
 * items stored from a file (by digest), and the walk over a bank or the
 * store.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Content                                                              */

void pdqm_content_info_clear(pdqm_content_info *info)
{
    if (info == NULL)
        return;
    free(info->content_id);
    free(info->metadata);
    free(info->note);
    memset(info, 0, sizeof *info);
}

int pdqm_content_disabled(int64_t disabled_until, int64_t now)
{
    return disabled_until < 0 || disabled_until > now;
}

static void hex_of(const uint8_t *raw, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[raw[i] >> 4];
        out[2 * i + 1] = digits[raw[i] & 15];
    }
    out[2 * n] = '\0';
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Fill info from a decoded record; 0 or -1 when out of memory. */
static int info_from_view(pdqm_content_info *info, const char *bank, uint32_t number,
                          const content_view *c)
{
    memset(info, 0, sizeof *info);
    snprintf(info->bank, sizeof info->bank, "%s", bank);
    info->content_id = dup_n(c->content_id, c->head.id_len);
    if (c->metadata)
        info->metadata = dup_n(c->metadata, c->head.meta_len);
    if (c->note)
        info->note = dup_n(c->note, c->head.note_len);
    if (!info->content_id || (c->metadata && !info->metadata) || (c->note && !info->note)) {
        pdqm_content_info_clear(info);
        return -1;
    }
    info->disabled_until = c->head.disabled_until;
    if (c->sha256)
        hex_of(c->sha256, 32, info->sha256);
    if (c->md5)
        hex_of(c->md5, 16, info->md5);
    info->kind = (pdqm_content_kind)c->head.kind;
    info->added = c->head.added;
    info->number = number;
    info->first_entry = c->head.first_entry;
    info->n_hashes = c->head.n_hashes;
    return 0;
}

typedef struct content_get_args {
    const char *bank, *content_id;
    pdqm_content_info *info;
} content_get_args;

static pdqm_status do_content_get(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    content_get_args *a = arg;
    bank_rec b;
    pdqm_status st = store_bank_for_read(s, txn, a->bank, &b, err);
    if (st != PDQM_OK)
        return st;
    int rc;
    size_t len = strlen(a->content_id);
    if (len == 0 || len > PDQM_CONTENT_ID_MAX)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no content '%s' in bank '%s'",
                              a->content_id, a->bank);
    uint32_t number;
    MDB_val v;
    rc = store_content_find(s, txn, b.id, a->content_id, len, &number, &v);
    if (rc == MDB_NOTFOUND)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no content '%s' in bank '%s'",
                              a->content_id, a->bank);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the content");
    content_view c;
    if ((rc = store_content_read(s, txn, number, &v, &c)) != 0)
        return store_lmdb_error(err, rc, "cannot read the content");
    if (info_from_view(a->info, a->bank, number, &c) != 0)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory reading content");
    return PDQM_OK;
}

pdqm_status pdqm_store_content_get(pdqm_store *store, const char *bank,
                                   const char *content_id,
                                   pdqm_content_info *info, pdqm_error *err)
{
    memset(info, 0, sizeof *info);
    pdqm_status st = pdqm_bank_name_check(bank, err);
    if (st != PDQM_OK)
        return st;
    content_get_args a = { bank, content_id, info };
    return store_read(store, do_content_get, &a, err);
}

/* ------------------------------------------------------------------ */
/* Exact file matches                                                   */

typedef struct file_args {
    uint8_t sha256[32], md5[16];
    int has_sha256, has_md5;
    uint32_t *numbers;
    size_t count, cap;
} file_args;

static int raw_from_hex(const char *hex, uint8_t *out, size_t n)
{
    if (hex == NULL || strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        char ch = hex[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

/* Every number under keys that start with the digest (one a bank). */
static int collect_digest(MDB_txn *txn, MDB_dbi dbi, const uint8_t *digest, size_t len,
                          file_args *a)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return rc;
    uint8_t start[36] = { 0 };
    memcpy(start, digest, len);
    MDB_val k = { len + 4, start }, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != len + 4 || memcmp(k.mv_data, digest, len) != 0 || v.mv_size != 4)
            break;
        uint32_t number;
        memcpy(&number, v.mv_data, 4);   /* native order, as stored */
        int seen = 0;
        for (size_t i = 0; i < a->count; i++)
            seen |= a->numbers[i] == number;
        if (seen)
            continue;
        if (a->count == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 8;
            uint32_t *n = realloc(a->numbers, cap * sizeof *n);
            if (n == NULL) {
                rc = ENOMEM;
                break;
            }
            a->numbers = n;
            a->cap = cap;
        }
        a->numbers[a->count++] = number;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static pdqm_status do_find_file(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    file_args *a = arg;
    int rc = 0;
    if (a->has_sha256)
        rc = collect_digest(txn, s->db.sha256, a->sha256, 32, a);
    if (rc == 0 && a->has_md5)
        rc = collect_digest(txn, s->db.md5, a->md5, 16, a);
    if (rc == ENOMEM)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the file digests");
    return PDQM_OK;
}

pdqm_status pdqm_store_find_file(pdqm_store *store, const char *sha256, const char *md5,
                                 uint32_t **numbers, size_t *count, pdqm_error *err)
{
    *numbers = NULL;
    *count = 0;
    file_args a = { .has_sha256 = sha256 != NULL, .has_md5 = md5 != NULL };
    if ((sha256 && raw_from_hex(sha256, a.sha256, 32)) || (md5 && raw_from_hex(md5, a.md5, 16)))
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a SHA-256 is 64 hex digits and an MD5 is 32");
    pdqm_status st = store_read(store, do_find_file, &a, err);
    if (st != PDQM_OK) {
        free(a.numbers);
        return st;
    }
    *numbers = a.numbers;
    *count = a.count;
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* Walk                                                                 */

typedef struct walk_args {
    const char *bank;
    pdqm_content_fn fn;
    void *arg;
    int *stopped;
    uint32_t from;           /* the first number walked */
} walk_args;

/* Hand one content item to the walk's callback.  Returns 0 to go on, an
 * LMDB code, or MDB_NOTFOUND when the callback stopped the walk. */
static int walk_one(pdqm_store *s, MDB_txn *txn, walk_args *a, const bank_table *t,
                    uint32_t number, const MDB_val *cv, pdqm_stored_hash **hashes,
                    size_t *hcap, uint32_t *cached_block, MDB_val *cached)
{
    content_view c;
    if (store_content_read(s, txn, number, cv, &c) != 0 || c.head.bank > t->max_id ||
        t->by_id[c.head.bank] < 0)
        return MDB_CORRUPTED;
    if (c.head.n_hashes > *hcap) {
        pdqm_stored_hash *grown = realloc(*hashes, c.head.n_hashes * sizeof **hashes);
        if (grown == NULL)
            return ENOMEM;
        *hashes = grown;
        *hcap = c.head.n_hashes;
    }
    for (uint32_t i = 0; i < c.head.n_hashes; i++) {
        record r;
        int rc = store_read_record(s, txn, c.head.first_entry + i, &r, cached_block, cached);
        if (rc != 0)
            return rc;
        memcpy((*hashes)[i].hash.w, r.hash, 32);
        (*hashes)[i].quality = r.quality;
        (*hashes)[i].timestamp = 0;
        if (c.timestamps)
            memcpy(&(*hashes)[i].timestamp, c.timestamps + 8 * (size_t)i, 8);
    }
    pdqm_content_info info;
    if (info_from_view(&info, t->names[t->by_id[c.head.bank]], number, &c) != 0)
        return ENOMEM;
    int stop = a->fn(a->arg, &info, *hashes, c.head.n_hashes);
    pdqm_content_info_clear(&info);
    if (stop) {
        if (a->stopped)
            *a->stopped = stop;
        return MDB_NOTFOUND;
    }
    return 0;
}

static pdqm_status do_walk(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    walk_args *a = arg;
    bank_table *t;
    pdqm_status st = store_bank_table_new(s, txn, &t, err);
    if (st != PDQM_OK)
        return st;
    pdqm_stored_hash *hashes = NULL;
    size_t hcap = 0;
    uint32_t cached_block = UINT32_MAX;
    MDB_val cached = { 0, NULL };
    int rc = 0;
    if (a->bank) {
        /* One bank: its own list of content numbers. */
        bank_rec b;
        rc = store_bank_find(s, txn, a->bank, &b);
        if (rc == MDB_NOTFOUND) {
            st = pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", a->bank);
            goto done;
        }
        /* From its first number at or past from: a seek, not a scan. */
        MDB_cursor *cur = NULL;
        if (rc == 0)
            rc = mdb_cursor_open(txn, s->db.cbank, &cur);
        MDB_val k = { 4, &b.id }, d = { 4, &a->from };
        if (rc == 0)
            rc = mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH_RANGE);
        while (rc == 0) {
            uint32_t number;
            MDB_val cv;
            memcpy(&number, d.mv_data, 4);
            rc = store_cnum_get(s, txn, number, &cv);
            if (rc == 0)
                rc = walk_one(s, txn, a, t, number, &cv, &hashes, &hcap, &cached_block,
                              &cached);
            else if (rc == MDB_NOTFOUND)
                rc = MDB_CORRUPTED;
            if (rc == 0)
                rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP);
        }
        if (cur)
            mdb_cursor_close(cur);
    } else {
        cnum_iter it;
        uint32_t number;
        MDB_val cv;
        for (rc = store_cnum_from(s, txn, &it, a->from, &number, &cv); rc == 0;
             rc = store_cnum_next(&it, &number, &cv))
            if ((rc = walk_one(s, txn, a, t, number, &cv, &hashes, &hcap,
                               &cached_block, &cached)) != 0)
                break;
        store_cnum_end(&it);
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        st = store_lmdb_error(err, rc, "cannot read content");
done:
    free(hashes);
    store_bank_table_delete(t);
    return st;
}

/* One content item by number, with its hashes (for video matching). */
typedef struct number_args {
    uint32_t number;
    pdqm_content_info *info;
    pdqm_stored_hash **hashes;
    size_t *n;
} number_args;

static int collect_one(void *arg, const pdqm_content_info *info,
                       const pdqm_stored_hash *hashes, size_t n)
{
    number_args *a = arg;
    *a->hashes = malloc((n ? n : 1) * sizeof **a->hashes);
    if (*a->hashes == NULL)
        return 2;
    if (n > 0)   /* (an item with no hash hands NULL over) */
        memcpy(*a->hashes, hashes, n * sizeof *hashes);
    *a->n = n;
    *a->info = *info;
    a->info->content_id = strdup(info->content_id);
    a->info->metadata = info->metadata ? strdup(info->metadata) : NULL;
    a->info->note = info->note ? strdup(info->note) : NULL;
    if (!a->info->content_id || (info->metadata && !a->info->metadata) ||
        (info->note && !a->info->note))
        return 2;
    return 1;
}

static pdqm_status do_content_number(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    number_args *a = arg;
    MDB_val cv;
    int rc = store_cnum_get(s, txn, a->number, &cv);
    if (rc == MDB_NOTFOUND)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no content number %u", a->number);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read content");
    bank_table *t;
    pdqm_status st = store_bank_table_new(s, txn, &t, err);
    if (st == PDQM_OK) {
        walk_args w = { NULL, collect_one, a, NULL, 0 };
        pdqm_stored_hash *buf = NULL;
        size_t cap = 0;
        uint32_t cached_block = UINT32_MAX;
        MDB_val cached = { 0, NULL };
        rc = walk_one(s, txn, &w, t, a->number, &cv, &buf, &cap, &cached_block, &cached);
        free(buf);
        if (rc == MDB_NOTFOUND && *a->hashes != NULL && a->info->content_id != NULL)
            rc = 0;   /* collect_one stopped the walk: done */
        else if (rc == MDB_NOTFOUND || rc == 0)
            rc = ENOMEM;
        if (rc != 0)
            st = store_lmdb_error(err, rc, "cannot read content");
        store_bank_table_delete(t);
    }
    return st;
}

pdqm_status pdqm_store_content_by_number(pdqm_store *store, uint32_t number,
                                         pdqm_content_info *info, pdqm_stored_hash **hashes,
                                         size_t *n, pdqm_error *err)
{
    memset(info, 0, sizeof *info);
    *hashes = NULL;
    *n = 0;
    number_args a = { number, info, hashes, n };
    pdqm_status st = store_read(store, do_content_number, &a, err);
    if (st != PDQM_OK) {
        pdqm_content_info_clear(info);
        free(*hashes);
        *hashes = NULL;
        *n = 0;
    }
    return st;
}

pdqm_status pdqm_store_walk(pdqm_store *store, const char *bank,
                            pdqm_content_fn fn, void *arg, int *stopped,
                            pdqm_error *err)
{
    return pdqm_store_walk_from(store, bank, 0, fn, arg, stopped, err);
}

pdqm_status pdqm_store_walk_from(pdqm_store *store, const char *bank, uint32_t from,
                                 pdqm_content_fn fn, void *arg, int *stopped,
                                 pdqm_error *err)
{
    if (stopped)
        *stopped = 0;
    if (bank) {
        pdqm_status st = pdqm_bank_name_check(bank, err);
        if (st != PDQM_OK)
            return st;
    }
    walk_args a = { bank, fn, arg, stopped, from };
    return store_read(store, do_walk, &a, err);
}
