/*
 * store_write.c - adding and deleting content, and indexing bulk loads.
 *
 * An add batch is one write transaction: content keys and records, the
 * digests, the hashes' records appended to the records array, the bank
 * counts, and (unless deferred) the 16 postings of every hash, sorted by
 * key so that LMDB touches each posting page once.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*write_fn)(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err);
pdqm_status store_write(pdqm_store *s, write_fn fn, void *arg, const char *what,
                        pdqm_error *err);

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parse exactly 2n hex characters into n bytes; -1 if they are not. */
static int parse_hex(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_nibble(hex[2 * i]), lo = hex_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Validation, before any transaction                                   */

static pdqm_status check_add(const pdqm_add *a, size_t index, pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(a->bank, err);
    if (st != PDQM_OK)
        return st;
    size_t len = a->content_id ? strlen(a->content_id) : 0;
    if (len == 0 || len > PDQM_CONTENT_ID_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "item %zu: a content id is 1 to %d bytes", index + 1,
                              PDQM_CONTENT_ID_MAX);
    if (a->metadata && strlen(a->metadata) > PDQM_METADATA_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "item %zu: metadata is over %d bytes", index + 1,
                              PDQM_METADATA_MAX);
    if (a->n_hashes == 0 || a->hashes == NULL || a->n_hashes > PDQM_MAX_HASHES_PER_CONTENT)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "item %zu: a content item has 1 to %d hashes, not %zu",
                              index + 1, PDQM_MAX_HASHES_PER_CONTENT, a->n_hashes);
    for (size_t i = 0; i < a->n_hashes; i++)
        if (a->hashes[i].quality < 0 || a->hashes[i].quality > 100)
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "item %zu: quality is 0 to 100, not %d", index + 1,
                                  a->hashes[i].quality);
    uint8_t raw[32];
    if (a->sha256 && parse_hex(a->sha256, raw, 32))
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "item %zu: a SHA-256 is 64 hex characters", index + 1);
    if (a->md5 && parse_hex(a->md5, raw, 16))
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "item %zu: an MD5 is 32 hex characters", index + 1);
    if (a->kind != PDQM_CONTENT_HASHES && a->kind != PDQM_CONTENT_IMAGE &&
        a->kind != PDQM_CONTENT_VIDEO)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "item %zu: unknown kind", index + 1);
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* Postings                                                             */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Put (key << 32 | id) pairs, sorted here, into the postings. */
static int put_postings(pdqm_store *s, MDB_txn *txn, uint64_t *pairs, size_t n)
{
    if (n == 0)
        return 0;
    qsort(pairs, n, sizeof *pairs, compare_u64);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->postings, &cur);
    if (rc != 0)
        return rc;
    /* Keys past the last one stored may be appended: far cheaper. */
    MDB_val lk, lv;
    uint32_t last_key = 0;
    int have_last = mdb_cursor_get(cur, &lk, &lv, MDB_LAST) == 0;
    if (have_last)
        memcpy(&last_key, lk.mv_data, 4);
    uint32_t *ids = malloc(n * sizeof *ids);
    if (ids == NULL) {
        mdb_cursor_close(cur);
        return ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0;) {
        uint32_t key = (uint32_t)(pairs[i] >> 32);
        size_t j = i;
        while (j < n && (uint32_t)(pairs[j] >> 32) == key) {
            ids[j - i] = (uint32_t)pairs[j];
            j++;
        }
        MDB_val k = { 4, &key };
        MDB_val data[2] = { { 4, ids }, { j - i, NULL } };
        unsigned flags = MDB_MULTIPLE;
        if (!have_last || key > last_key)
            flags |= MDB_APPEND;
        rc = mdb_cursor_put(cur, &k, data, flags);
        i = j;
    }
    free(ids);
    mdb_cursor_close(cur);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Adds                                                                 */

typedef struct add_args {
    const pdqm_add *adds;
    size_t n;
    pdqm_add_outcome *outcomes;
    int deferred;
} add_args;

/* Append records to the records array, starting at entry id `first`. */
static int put_records(pdqm_store *s, MDB_txn *txn, uint32_t first,
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
        unsigned flags = MDB_APPEND;
        if (off > 0) {
            /* The partial tail block: keep what it has. */
            MDB_val k = { 4, &b }, v;
            rc = mdb_get(txn, s->records, &k, &v);
            if (rc != 0 || v.mv_size != (size_t)off * RECORD_SIZE) {
                rc = rc ? rc : MDB_CORRUPTED;
                break;
            }
            memcpy(block, v.mv_data, v.mv_size);
            flags = 0;
        }
        memcpy(block + (size_t)off * RECORD_SIZE, recs + done, take * RECORD_SIZE);
        MDB_val k = { 4, &b }, v = { ((size_t)off + take) * RECORD_SIZE, block };
        rc = mdb_put(txn, s->records, &k, &v, flags);
        done += take;
    }
    free(block);
    return rc;
}

static int do_add(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    const add_args *a = arg;
    meta_vals m;
    int rc = store_meta_read(s, txn, &m);
    if (rc != 0)
        return rc;

    /* The banks this batch touches, with their running counts. */
    size_t nb = 0;
    struct { const char *name; bank_rec rec; } banks[16];
    record *recs = NULL;
    uint64_t *pairs = NULL;
    uint8_t *buf = NULL;
    size_t total = 0;
    for (size_t i = 0; i < a->n; i++)
        total += a->adds[i].n_hashes;
    if ((uint64_t)m.next_entry + total > UINT32_MAX - 1 ||
        (uint64_t)m.next_content + a->n > UINT32_MAX - 1) {
        pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "the store is full (2^32 hashes)");
        return -1;
    }
    recs = malloc((total ? total : 1) * sizeof *recs);
    pairs = a->deferred ? NULL : malloc((total ? total : 1) * SLOTS * sizeof *pairs);
    size_t buf_cap = 64 * 1024;
    buf = malloc(buf_cap);
    if (!recs || (!a->deferred && !pairs) || !buf) {
        rc = ENOMEM;
        goto done;
    }

    const uint32_t first_new = m.next_entry;
    size_t n_recs = 0, n_pairs = 0;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < a->n; i++) {
        const pdqm_add *ad = &a->adds[i];
        bank_rec *bank = NULL;
        for (size_t j = 0; j < nb; j++)
            if (strcmp(banks[j].name, ad->bank) == 0)
                bank = &banks[j].rec;
        if (bank == NULL) {
            if (nb == sizeof banks / sizeof banks[0]) {
                pdqm_error_set(err, PDQM_ERR_INVALID, "a batch may touch at most 16 banks");
                rc = -1;
                goto done;
            }
            rc = store_bank_find(s, txn, ad->bank, &banks[nb].rec);
            if (rc == MDB_NOTFOUND) {
                pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", ad->bank);
                rc = -1;
            }
            if (rc != 0)
                goto done;
            banks[nb].name = ad->bank;
            bank = &banks[nb++].rec;
        }

        size_t id_len = strlen(ad->content_id);
        uint8_t key[4 + PDQM_CONTENT_ID_MAX];
        MDB_val ck = { store_content_key(key, bank->id, ad->content_id, id_len), key }, cv;
        rc = mdb_get(txn, s->content, &ck, &cv);
        if (rc == 0) {
            if (a->outcomes)
                a->outcomes[i] = PDQM_ADD_EXISTS;
            continue;
        }
        if (rc != MDB_NOTFOUND)
            goto done;
        uint8_t sha[32] = { 0 }, md5[16] = { 0 };
        uint8_t dkey[36];
        if (ad->md5)
            parse_hex(ad->md5, md5, 16);
        if (ad->sha256) {
            parse_hex(ad->sha256, sha, 32);
            memcpy(dkey, sha, 32);
            put_be32(dkey + 32, bank->id);
            MDB_val sk = { 36, dkey }, sv;
            rc = mdb_get(txn, s->sha256, &sk, &sv);
            if (rc == 0) {
                if (a->outcomes)
                    a->outcomes[i] = PDQM_ADD_SAME_FILE;
                continue;
            }
            if (rc != MDB_NOTFOUND)
                goto done;
        }

        uint32_t number = m.next_content++;
        uint32_t first = m.next_entry;
        m.next_entry += (uint32_t)ad->n_hashes;
        MDB_val nv = { 4, &number };
        if ((rc = mdb_put(txn, s->content, &ck, &nv, MDB_NOOVERWRITE)) != 0)
            goto done;

        /* The content record. */
        int has_ts = 0;
        for (size_t h = 0; h < ad->n_hashes; h++)
            if (ad->hashes[h].timestamp != 0.0)
                has_ts = 1;
        size_t meta_len = ad->metadata ? strlen(ad->metadata) : 0;
        const int digests = ad->sha256 || ad->md5;
        size_t need = sizeof(content_head) + id_len + meta_len + (digests ? 48 : 0) +
                      (has_ts ? ad->n_hashes * sizeof(double) : 0);
        if (need > buf_cap) {
            uint8_t *grown = realloc(buf, need);
            if (grown == NULL) {
                rc = ENOMEM;
                goto done;
            }
            buf = grown;
            buf_cap = need;
        }
        content_head h = {
            .bank = bank->id, .first_entry = first, .n_hashes = (uint32_t)ad->n_hashes,
            .kind = (uint32_t)ad->kind, .added = now, .id_len = (uint32_t)id_len,
            .meta_len = (uint32_t)meta_len,
            .flags = (ad->sha256 ? CONTENT_HAS_SHA256 : 0) | (ad->md5 ? CONTENT_HAS_MD5 : 0) |
                     (has_ts ? CONTENT_HAS_TIMESTAMPS : 0),
        };
        uint8_t *p = buf;
        memcpy(p, &h, sizeof h);
        p += sizeof h;
        memcpy(p, ad->content_id, id_len);
        p += id_len;
        if (meta_len) {
            memcpy(p, ad->metadata, meta_len);
            p += meta_len;
        }
        if (digests) {
            memcpy(p, sha, 32);
            memcpy(p + 32, md5, 16);
            p += 48;
        }
        if (has_ts)
            for (size_t k = 0; k < ad->n_hashes; k++, p += 8)
                memcpy(p, &ad->hashes[k].timestamp, 8);
        MDB_val rk = { 4, &number }, rv = { need, buf };
        if ((rc = mdb_put(txn, s->cnum, &rk, &rv, MDB_APPEND)) != 0)
            goto done;
        if (ad->sha256) {
            MDB_val sk = { 36, dkey };
            if ((rc = mdb_put(txn, s->sha256, &sk, &nv, 0)) != 0)
                goto done;
        }
        if (ad->md5) {
            memcpy(dkey, md5, 16);
            put_be32(dkey + 16, bank->id);
            MDB_val mk = { 20, dkey };
            if ((rc = mdb_put(txn, s->md5, &mk, &nv, 0)) != 0)
                goto done;
        }

        for (size_t k = 0; k < ad->n_hashes; k++) {
            record *r = &recs[n_recs++];
            memcpy(r->hash, ad->hashes[k].hash.w, 32);
            r->content = number;
            r->bank = (uint16_t)bank->id;
            r->quality = (uint8_t)ad->hashes[k].quality;
            r->reserved = 0;
            if (!a->deferred)
                for (int slot = 0; slot < SLOTS; slot++)
                    pairs[n_pairs++] = (uint64_t)slot_key(r->hash, slot) << 32 | (first + k);
        }
        bank->contents += 1;
        bank->hashes += ad->n_hashes;
        if (a->outcomes)
            a->outcomes[i] = PDQM_ADDED;
    }

    if ((rc = put_records(s, txn, first_new, recs, n_recs)) != 0)
        goto done;
    if (!a->deferred) {
        if ((rc = put_postings(s, txn, pairs, n_pairs)) != 0)
            goto done;
    } else if (n_recs > 0) {
        /* Grow the pending range; it stays one range because only the
         * last entries can be pending (see index_pending). */
        if (m.pending_to == m.pending_from)
            m.pending_from = first_new;
        m.pending_to = m.next_entry;
    }
    for (size_t j = 0; j < nb; j++)
        if ((rc = store_bank_put(s, txn, banks[j].name, &banks[j].rec)) != 0)
            goto done;
    rc = store_meta_write(s, txn, &m);

done:
    free(recs);
    free(pairs);
    free(buf);
    return rc;
}

static pdqm_status add_common(pdqm_store *store, const pdqm_add *adds, size_t n,
                              pdqm_add_outcome *outcomes, int deferred, pdqm_error *err)
{
    for (size_t i = 0; i < n; i++) {
        pdqm_status st = check_add(&adds[i], i, err);
        if (st != PDQM_OK)
            return st;
    }
    if (n == 0)
        return PDQM_OK;
    add_args a = { adds, n, outcomes, deferred };
    return store_write(store, do_add, &a, "cannot add to the store", err);
}

pdqm_status pdqm_store_add(pdqm_store *store, const pdqm_add *adds, size_t n,
                           pdqm_add_outcome *outcomes, pdqm_error *err)
{
    /* Direct adds after a deferred load would leave pending entries in the
     * middle of the id range: index those first. */
    pdqm_status st = pdqm_store_index_pending(store, NULL, err);
    if (st != PDQM_OK)
        return st;
    return add_common(store, adds, n, outcomes, 0, err);
}

pdqm_status pdqm_store_add_deferred(pdqm_store *store, const pdqm_add *adds,
                                    size_t n, pdqm_add_outcome *outcomes,
                                    pdqm_error *err)
{
    return add_common(store, adds, n, outcomes, 1, err);
}

/* ------------------------------------------------------------------ */
/* Indexing deferred loads                                              */

typedef struct index_args {
    uint64_t indexed;
} index_args;

/* Read the live records of [from, to) and build their postings: counted
 * per key first, so each key's ids come out ascending with no sort. */
static int do_index_pending(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    (void)err;
    index_args *a = arg;
    meta_vals m;
    int rc = store_meta_read(s, txn, &m);
    if (rc != 0 || m.pending_to <= m.pending_from)
        return rc;
    const uint32_t from = m.pending_from, to = m.pending_to;
    const size_t nkeys = (size_t)SLOTS << 16;
    uint32_t *start = calloc(nkeys + 1, sizeof *start);
    uint8_t *live = calloc((to - from) / 8 + 1, 1);
    uint32_t *ids = NULL;
    if (!start || !live) {
        rc = ENOMEM;
        goto done;
    }

    /* Pass 1: which pending entries are live (their content still exists),
     * and how many postings each key gets. */
    uint32_t last_content = UINT32_MAX;
    int last_live = 0;
    uint64_t n_live = 0;
    MDB_val blockv = { 0, NULL };
    uint32_t block_no = UINT32_MAX;
    for (uint32_t id = from; id < to; id++) {
        uint32_t b = id / RECORDS_PER_BLOCK;
        if (b != block_no) {
            MDB_val k = { 4, &b };
            if ((rc = mdb_get(txn, s->records, &k, &blockv)) != 0)
                goto done;
            block_no = b;
        }
        const record *r = (const record *)((const uint8_t *)blockv.mv_data +
                                           (size_t)(id % RECORDS_PER_BLOCK) * RECORD_SIZE);
        record rr;
        memcpy(&rr, r, sizeof rr);
        if (rr.content != last_content) {
            MDB_val k = { 4, &rr.content }, v;
            rc = mdb_get(txn, s->cnum, &k, &v);
            if (rc != 0 && rc != MDB_NOTFOUND)
                goto done;
            last_live = (rc == 0);
            last_content = rr.content;
            rc = 0;
        }
        if (!last_live)
            continue;
        live[(id - from) / 8] |= (uint8_t)(1u << ((id - from) % 8));
        n_live++;
        for (int slot = 0; slot < SLOTS; slot++)
            start[slot_key(rr.hash, slot) + 1]++;
    }
    for (size_t k = 0; k < nkeys; k++)
        start[k + 1] += start[k];
    ids = malloc((n_live ? n_live : 1) * SLOTS * sizeof *ids);
    if (ids == NULL) {
        rc = ENOMEM;
        goto done;
    }
    /* Pass 2: place the ids. */
    block_no = UINT32_MAX;
    for (uint32_t id = from; id < to; id++) {
        if (!(live[(id - from) / 8] & (1u << ((id - from) % 8))))
            continue;
        uint32_t b = id / RECORDS_PER_BLOCK;
        if (b != block_no) {
            MDB_val k = { 4, &b };
            if ((rc = mdb_get(txn, s->records, &k, &blockv)) != 0)
                goto done;
            block_no = b;
        }
        record rr;
        memcpy(&rr, (const uint8_t *)blockv.mv_data +
                    (size_t)(id % RECORDS_PER_BLOCK) * RECORD_SIZE, sizeof rr);
        for (int slot = 0; slot < SLOTS; slot++)
            ids[start[slot_key(rr.hash, slot)]++] = id;
    }
    /* start[k] now holds the end of key k; its beginning is start[k-1]. */
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->postings, &cur)) != 0)
        goto done;
    MDB_val lk, lv;
    uint32_t last_key = 0;
    int have_last = mdb_cursor_get(cur, &lk, &lv, MDB_LAST) == 0;
    if (have_last)
        memcpy(&last_key, lk.mv_data, 4);
    uint32_t begin = 0;
    for (size_t k = 0; k < nkeys && rc == 0; k++) {
        uint32_t end = start[k];
        if (end > begin) {
            uint32_t key = (uint32_t)k;
            MDB_val kv = { 4, &key };
            MDB_val data[2] = { { 4, ids + begin }, { end - begin, NULL } };
            unsigned flags = MDB_MULTIPLE;
            if (!have_last || key > last_key)
                flags |= MDB_APPEND;
            rc = mdb_cursor_put(cur, &kv, data, flags);
        }
        begin = end;
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        goto done;
    m.pending_from = m.pending_to = 0;
    rc = store_meta_write(s, txn, &m);
    a->indexed = n_live;

done:
    free(start);
    free(live);
    free(ids);
    return rc;
}

pdqm_status pdqm_store_index_pending(pdqm_store *store, uint64_t *indexed,
                                     pdqm_error *err)
{
    if (indexed)
        *indexed = 0;
    if (store->read_only)
        return PDQM_OK;
    index_args a = { 0 };
    pdqm_status st = store_write(store, do_index_pending, &a, "cannot index the store", err);
    if (indexed)
        *indexed = a.indexed;
    return st;
}

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
    uint8_t key[4 + PDQM_CONTENT_ID_MAX];
    size_t klen = store_content_key(key, h.bank, c->content_id, h.id_len);
    uint8_t sha[32], md5[16];
    const int has_sha = c->sha256 != NULL, has_md5 = c->md5 != NULL;
    if (has_sha)
        memcpy(sha, c->sha256, 32);
    if (has_md5)
        memcpy(md5, c->md5, 16);

    /* Postings of every indexed entry. */
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->postings, &cur)) != 0)
        return rc;
    MDB_val blockv = { 0, NULL };
    uint32_t block_no = UINT32_MAX;
    for (uint32_t id = h.first_entry; id < h.first_entry + h.n_hashes && rc == 0; id++) {
        if (id >= m.pending_from && id < m.pending_to)
            continue;
        uint32_t b = id / RECORDS_PER_BLOCK;
        if (b != block_no) {
            MDB_val k = { 4, &b };
            if ((rc = mdb_get(txn, s->records, &k, &blockv)) != 0)
                break;
            block_no = b;
        }
        record rr;
        memcpy(&rr, (const uint8_t *)blockv.mv_data +
                    (size_t)(id % RECORDS_PER_BLOCK) * RECORD_SIZE, sizeof rr);
        for (int slot = 0; slot < SLOTS && rc == 0; slot++) {
            uint32_t k32 = slot_key(rr.hash, slot), idv = id;
            MDB_val pk = { 4, &k32 }, pv = { 4, &idv };
            rc = mdb_cursor_get(cur, &pk, &pv, MDB_GET_BOTH);
            if (rc == 0)
                rc = mdb_cursor_del(cur, 0);
            else if (rc == MDB_NOTFOUND)
                rc = MDB_CORRUPTED;   /* an indexed entry must be posted */
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;

    MDB_val ck = { klen, key };
    if ((rc = mdb_del(txn, s->content, &ck, NULL)) != 0)
        return rc;
    MDB_val nk = { 4, &number };
    if ((rc = mdb_del(txn, s->cnum, &nk, NULL)) != 0)
        return rc;
    uint8_t dk[36];
    if (has_sha) {
        memcpy(dk, sha, 32);
        put_be32(dk + 32, h.bank);
        MDB_val sk = { 36, dk };
        rc = mdb_del(txn, s->sha256, &sk, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    if (has_md5) {
        memcpy(dk, md5, 16);
        put_be32(dk + 16, h.bank);
        MDB_val mk = { 20, dk };
        rc = mdb_del(txn, s->md5, &mk, NULL);
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
    uint8_t key[4 + PDQM_CONTENT_ID_MAX];
    MDB_val ck = { store_content_key(key, b.id, a->content_id, len), key }, cv;
    rc = mdb_get(txn, s->content, &ck, &cv);
    if (rc == MDB_NOTFOUND) {
        pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no content '%s' in bank '%s'",
                       a->content_id, a->bank);
        return -1;
    }
    if (rc != 0)
        return rc;
    uint32_t number;
    memcpy(&number, cv.mv_data, 4);
    MDB_val nk = { 4, &number }, rv;
    if ((rc = mdb_get(txn, s->cnum, &nk, &rv)) != 0)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    content_view c;
    if (store_content_decode(&rv, &c) != 0)
        return MDB_CORRUPTED;
    if ((rc = store_delete_content(s, txn, number, &c, &b)) != 0)
        return rc;
    return store_bank_put(s, txn, a->bank, &b);
}

pdqm_status pdqm_store_delete(pdqm_store *store, const char *bank,
                              const char *content_id, pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(bank, err);
    if (st != PDQM_OK)
        return st;
    size_t len = content_id ? strlen(content_id) : 0;
    if (len == 0 || len > PDQM_CONTENT_ID_MAX)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no content '%s' in bank '%s'",
                              content_id ? content_id : "", bank);
    delete_args a = { bank, content_id };
    return store_write(store, do_delete, &a, "cannot delete from the store", err);
}
