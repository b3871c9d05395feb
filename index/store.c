/*
 * store.c - opening a store, meta values, banks, content records, and the
 * administrative walks (stats, verify, compact).
 *
 * Writes live in store_write.c, lookups in store_lookup.c.
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

#define INITIAL_MAP ((size_t)1 << 30)   /* 1 GiB of address space to start */

pdqm_status store_lmdb_error(pdqm_error *err, int rc, const char *what)
{
    if (rc == ENOMEM)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "%s: out of memory", what);
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
        return pdqm_error_set(err, PDQM_ERR_STORE, "%s: the store is corrupt (%s)",
                              what, mdb_strerror(rc));
    return pdqm_error_set(err, PDQM_ERR_STORE, "%s: %s", what, mdb_strerror(rc));
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}

/* ------------------------------------------------------------------ */
/* Content records: one flag byte, then varints and the optional parts:
 *   flags (kind in bits 0-1, then sha256 0x4, md5 0x8, timestamps 0x10,
 *   metadata 0x20), bank, n_hashes, added, id_len, id bytes,
 *   [meta_len, metadata], [32-byte SHA-256], [16-byte MD5],
 *   [n_hashes little-endian doubles]
 * A content item's number is the id of its first hash, so that is not
 * stored.  An id that is a plain decimal number (a hash list's line
 * number) is stored as a varint instead of its text (flag 0x40).  A
 * hash-list item takes about 11 bytes.                                  */

#define REC_SHA256 0x04u
#define REC_MD5 0x08u
#define REC_TIMESTAMPS 0x10u
#define REC_METADATA 0x20u
#define REC_NUMERIC_ID 0x40u   /* the id is a decimal number, stored as a varint */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Read a varint of at most 64 bits from [*p, end); -1 when malformed. */
static int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* The value of a content id written as a plain decimal number (no sign,
 * no leading zero, under 10^18), or -1. */
static int64_t numeric_id(const char *id, size_t len)
{
    if (len == 0 || len > 18 || (len > 1 && id[0] == '0'))
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (id[i] < '0' || id[i] > '9')
            return -1;
        v = v * 10 + (id[i] - '0');
    }
    return v;
}

size_t store_content_size(const content_view *c)
{
    const content_head *h = &c->head;
    int64_t num = numeric_id(c->content_id, h->id_len);
    size_t n = 1 + varint_size(h->bank) + varint_size(h->n_hashes) +
               varint_size((uint64_t)h->added) +
               (num >= 0 ? varint_size((uint64_t)num) : varint_size(h->id_len) + h->id_len);
    if (c->metadata)
        n += varint_size(h->meta_len) + h->meta_len;
    if (c->sha256)
        n += 32;
    if (c->md5)
        n += 16;
    if (c->timestamps)
        n += (size_t)h->n_hashes * 8;
    return n;
}

size_t store_content_encode(uint8_t *buf, const content_view *c)
{
    const content_head *h = &c->head;
    int64_t num = numeric_id(c->content_id, h->id_len);
    uint8_t *p = buf;
    *p++ = (uint8_t)((h->kind & 3) | (c->sha256 ? REC_SHA256 : 0) | (c->md5 ? REC_MD5 : 0) |
                     (c->timestamps ? REC_TIMESTAMPS : 0) | (c->metadata ? REC_METADATA : 0) |
                     (num >= 0 ? REC_NUMERIC_ID : 0));
    p = varint_put(p, h->bank);
    p = varint_put(p, h->n_hashes);
    p = varint_put(p, (uint64_t)h->added);
    if (num >= 0) {
        p = varint_put(p, (uint64_t)num);
    } else {
        p = varint_put(p, h->id_len);
        memcpy(p, c->content_id, h->id_len);
        p += h->id_len;
    }
    if (c->metadata) {
        p = varint_put(p, h->meta_len);
        memcpy(p, c->metadata, h->meta_len);
        p += h->meta_len;
    }
    if (c->sha256) {
        memcpy(p, c->sha256, 32);
        p += 32;
    }
    if (c->md5) {
        memcpy(p, c->md5, 16);
        p += 16;
    }
    if (c->timestamps) {
        memcpy(p, c->timestamps, (size_t)h->n_hashes * 8);
        p += (size_t)h->n_hashes * 8;
    }
    return (size_t)(p - buf);
}

int store_content_decode(uint32_t number, const MDB_val *v, content_view *out)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    memset(out, 0, sizeof *out);
    if (p == end)
        return -1;
    uint8_t flags = *p++;
    uint64_t bank, n, added, id_len, meta_len = 0;
    if (varint_get(&p, end, &bank) || varint_get(&p, end, &n) ||
        varint_get(&p, end, &added) || varint_get(&p, end, &id_len))
        return -1;
    if (bank > UINT32_MAX || n > UINT32_MAX)
        return -1;
    content_head *h = &out->head;
    h->bank = (uint32_t)bank;
    h->first_entry = number;
    h->n_hashes = (uint32_t)n;
    h->kind = flags & 3u;
    h->added = (int64_t)added;
    if (flags & REC_NUMERIC_ID) {
        /* In place of a length, the number itself. */
        if (id_len >= 1000000000000000000ull)
            return -1;
        int len = snprintf(out->idbuf, sizeof out->idbuf, "%llu", (unsigned long long)id_len);
        h->id_len = (uint32_t)len;
        out->content_id = out->idbuf;
    } else {
        if (id_len > (uint64_t)(end - p))
            return -1;
        h->id_len = (uint32_t)id_len;
        out->content_id = (const char *)p;
        p += id_len;
    }
    if (flags & REC_METADATA) {
        if (varint_get(&p, end, &meta_len) || meta_len > (uint64_t)(end - p))
            return -1;
        h->meta_len = (uint32_t)meta_len;
        h->flags |= CONTENT_HAS_METADATA;
        out->metadata = (const char *)p;
        p += meta_len;
    }
    if (flags & REC_SHA256) {
        if (end - p < 32)
            return -1;
        out->sha256 = p;
        h->flags |= CONTENT_HAS_SHA256;
        p += 32;
    }
    if (flags & REC_MD5) {
        if (end - p < 16)
            return -1;
        out->md5 = p;
        h->flags |= CONTENT_HAS_MD5;
        p += 16;
    }
    if (flags & REC_TIMESTAMPS) {
        if ((uint64_t)(end - p) != n * 8)
            return -1;
        out->timestamps = p;
        h->flags |= CONTENT_HAS_TIMESTAMPS;
        p += n * 8;
    }
    return p == end ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Content records, 16 to a group: [low 4 bits of the number, u8]
 * [varint length][record], ascending by number.                          */

#define CNUM_SHIFT 4

/* Find number's record in a group value: 0, or MDB_NOTFOUND with *at the
 * offset where it would go. */
static int group_find(const MDB_val *g, uint32_t low, MDB_val *rec, size_t *at)
{
    const uint8_t *p = g->mv_data, *end = p + g->mv_size;
    while (p < end) {
        const uint8_t *entry = p;
        uint8_t l = *p++;
        uint64_t len;
        if (varint_get(&p, end, &len) || len > (uint64_t)(end - p))
            return MDB_CORRUPTED;
        if (l == low) {
            rec->mv_data = (void *)p;
            rec->mv_size = len;
            *at = (size_t)(entry - (const uint8_t *)g->mv_data);
            return 0;
        }
        if (l > low) {
            *at = (size_t)(entry - (const uint8_t *)g->mv_data);
            return MDB_NOTFOUND;
        }
        p += len;
    }
    *at = g->mv_size;
    return MDB_NOTFOUND;
}

int store_cnum_get(pdqm_store *s, MDB_txn *txn, uint32_t number, MDB_val *rec)
{
    uint32_t group = number >> CNUM_SHIFT;
    MDB_val k = { 4, &group }, g;
    int rc = mdb_get(txn, s->cnum, &k, &g);
    if (rc != 0)
        return rc;
    size_t at;
    return group_find(&g, number & 15, rec, &at);
}

/* Write group's value as old with [cut, cut_end) replaced by `entry`. */
static int group_write(pdqm_store *s, MDB_txn *txn, uint32_t group, const MDB_val *old,
                       size_t cut, size_t cut_end, const uint8_t *entry, size_t entry_len,
                       unsigned flags)
{
    size_t n = old->mv_size - (cut_end - cut) + entry_len;
    MDB_val k = { 4, &group };
    if (n == 0)
        return mdb_del(txn, s->cnum, &k, NULL);
    uint8_t *buf = malloc(n);
    if (buf == NULL)
        return ENOMEM;
    /* A new group has no old value (NULL), a delete no entry. */
    if (cut > 0)
        memcpy(buf, old->mv_data, cut);
    if (entry_len > 0)
        memcpy(buf + cut, entry, entry_len);
    if (old->mv_size > cut_end)
        memcpy(buf + cut + entry_len, (const uint8_t *)old->mv_data + cut_end, old->mv_size - cut_end);
    MDB_val v = { n, buf };
    int rc = mdb_put(txn, s->cnum, &k, &v, flags);
    free(buf);
    return rc;
}

int store_cnum_put(pdqm_store *s, MDB_txn *txn, uint32_t number, const void *rec, size_t len)
{
    uint32_t group = number >> CNUM_SHIFT;
    MDB_val k = { 4, &group }, g = { 0, NULL };
    int rc = mdb_get(txn, s->cnum, &k, &g);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    unsigned flags = 0;
    if (rc == MDB_NOTFOUND) {
        /* A new group; past the last one (numbers only grow) it appends. */
        MDB_cursor *cur;
        MDB_val lk, lv;
        if ((rc = mdb_cursor_open(txn, s->cnum, &cur)) != 0)
            return rc;
        rc = mdb_cursor_get(cur, &lk, &lv, MDB_LAST);
        uint32_t last = 0;
        if (rc == 0)
            memcpy(&last, lk.mv_data, 4);
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND || (rc == 0 && group > last))
            flags = MDB_APPEND;
        else if (rc != 0)
            return rc;
    }
    /* The new entry, then where it goes. */
    uint8_t *entry = malloc(len + 11);
    if (entry == NULL)
        return ENOMEM;
    entry[0] = (uint8_t)(number & 15);
    uint8_t *p = varint_put(entry + 1, len);
    memcpy(p, rec, len);
    size_t entry_len = (size_t)(p - entry) + len;
    size_t at = 0, at_end = 0;
    if (g.mv_data != NULL) {
        MDB_val old;
        rc = group_find(&g, number & 15, &old, &at);
        if (rc == 0)
            at_end = (size_t)((const uint8_t *)old.mv_data - (const uint8_t *)g.mv_data) + old.mv_size;
        else if (rc == MDB_NOTFOUND)
            at_end = at;
        else {
            free(entry);
            return rc;
        }
    }
    rc = group_write(s, txn, group, &g, at, at_end, entry, entry_len, flags);
    free(entry);
    return rc;
}

int store_cnum_del(pdqm_store *s, MDB_txn *txn, uint32_t number)
{
    uint32_t group = number >> CNUM_SHIFT;
    MDB_val k = { 4, &group }, g, old;
    int rc = mdb_get(txn, s->cnum, &k, &g);
    if (rc != 0)
        return rc;
    size_t at;
    if ((rc = group_find(&g, number & 15, &old, &at)) != 0)
        return rc;
    size_t at_end = (size_t)((const uint8_t *)old.mv_data - (const uint8_t *)g.mv_data) + old.mv_size;
    return group_write(s, txn, group, &g, at, at_end, NULL, 0, 0);
}

/* The entry at it->p, moving past it. */
static int iter_take(cnum_iter *it, uint32_t *number, MDB_val *rec)
{
    uint8_t low = *it->p++;
    uint64_t len;
    if (varint_get(&it->p, it->end, &len) || len > (uint64_t)(it->end - it->p) || low > 15)
        return MDB_CORRUPTED;
    *number = it->group << CNUM_SHIFT | low;
    rec->mv_data = (void *)it->p;
    rec->mv_size = len;
    it->p += len;
    return 0;
}

static int iter_group(cnum_iter *it, MDB_cursor_op op)
{
    MDB_val k, g;
    int rc = mdb_cursor_get(it->cur, &k, &g, op);
    if (rc != 0)
        return rc;
    memcpy(&it->group, k.mv_data, 4);
    it->p = g.mv_data;
    it->end = it->p + g.mv_size;
    return 0;
}

int store_cnum_first(pdqm_store *s, MDB_txn *txn, cnum_iter *it, uint32_t *number, MDB_val *rec)
{
    memset(it, 0, sizeof *it);
    int rc = mdb_cursor_open(txn, s->cnum, &it->cur);
    if (rc != 0)
        return rc;
    if ((rc = iter_group(it, MDB_FIRST)) != 0)
        return rc;
    return store_cnum_next(it, number, rec);
}

int store_cnum_from(pdqm_store *s, MDB_txn *txn, cnum_iter *it, uint32_t from,
                    uint32_t *number, MDB_val *rec)
{
    memset(it, 0, sizeof *it);
    int rc = mdb_cursor_open(txn, s->cnum, &it->cur);
    if (rc != 0)
        return rc;
    uint32_t group = from >> CNUM_SHIFT;
    MDB_val k = { 4, &group }, g;
    if ((rc = mdb_cursor_get(it->cur, &k, &g, MDB_SET_RANGE)) != 0)
        return rc;
    memcpy(&it->group, k.mv_data, 4);
    it->p = g.mv_data;
    it->end = it->p + g.mv_size;
    do {
        if ((rc = store_cnum_next(it, number, rec)) != 0)
            return rc;
    } while (*number < from);
    return 0;
}

int store_cnum_next(cnum_iter *it, uint32_t *number, MDB_val *rec)
{
    while (it->p == it->end) {
        int rc = iter_group(it, MDB_NEXT);
        if (rc != 0)
            return rc;
    }
    return iter_take(it, number, rec);
}

void store_cnum_end(cnum_iter *it)
{
    if (it->cur)
        mdb_cursor_close(it->cur);
    it->cur = NULL;
}

int store_content_of_entry(pdqm_store *s, MDB_txn *txn, uint32_t id, uint32_t *number,
                           MDB_val *rec)
{
    /* The greatest number <= id: in id's group, or the last of an earlier
     * one.  Then id must fall inside that item's hashes. */
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->cnum, &cur);
    if (rc != 0)
        return rc;
    uint32_t group = id >> CNUM_SHIFT;
    MDB_val k = { 4, &group }, g;
    uint32_t best = 0;
    MDB_val best_rec = { 0, NULL };
    int found = 0;
    rc = mdb_cursor_get(cur, &k, &g, MDB_SET_RANGE);
    if (rc == 0) {
        uint32_t got;
        memcpy(&got, k.mv_data, 4);
        if (got != group)
            rc = mdb_cursor_get(cur, &k, &g, MDB_PREV);
    } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cur, &k, &g, MDB_LAST);
    }
    while (rc == 0 && !found) {
        cnum_iter it = { NULL, g.mv_data, (const uint8_t *)g.mv_data + g.mv_size, 0 };
        memcpy(&it.group, k.mv_data, 4);
        while (it.p < it.end) {
            uint32_t n;
            MDB_val r;
            if ((rc = iter_take(&it, &n, &r)) != 0)
                break;
            if (n > id)
                break;
            best = n;
            best_rec = r;
            found = 1;
        }
        if (rc == 0 && !found)
            rc = mdb_cursor_get(cur, &k, &g, MDB_PREV);
    }
    mdb_cursor_close(cur);
    if (!found)
        return rc == 0 ? MDB_NOTFOUND : rc;
    content_view c;
    if (store_content_decode(best, &best_rec, &c) != 0)
        return MDB_CORRUPTED;
    if ((uint64_t)id >= (uint64_t)best + c.head.n_hashes)
        return MDB_NOTFOUND;
    *number = best;
    *rec = best_rec;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Finding content by (bank, content id)                                */

/* FNV-1a, 64 bits, over the bank id and the content id. */
static uint64_t content_hash(uint32_t bank, const char *id, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 4; i++) {
        h ^= (bank >> (8 * i)) & 0xff;
        h *= 0x100000001b3ull;
    }
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)id[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define CINDEX_BUCKETS 65536u

/* The bucket key and the 6-byte duplicate of a content item. */
static uint32_t cindex_entry(uint32_t bank, const char *id, size_t len, uint32_t number,
                             uint8_t dup[6])
{
    uint64_t h = content_hash(bank, id, len);
    dup[0] = (uint8_t)(h >> 40);
    dup[1] = (uint8_t)(h >> 32);
    put_be32(dup + 2, number);
    return (uint32_t)(h >> 48);
}

int store_content_find(pdqm_store *s, MDB_txn *txn, uint32_t bank, const char *id,
                       size_t len, uint32_t *number, MDB_val *value)
{
    uint8_t want[6];
    uint32_t bucket = cindex_entry(bank, id, len, 0, want);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->cindex, &cur);
    if (rc != 0)
        return rc;
    MDB_val k = { 4, &bucket }, d = { 6, want };
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP)) {
        const uint8_t *got = d.mv_data;
        if (got[0] != want[0] || got[1] != want[1]) {
            rc = MDB_NOTFOUND;
            break;
        }
        /* The same fingerprint: compare the real ids. */
        uint32_t n = (uint32_t)got[2] << 24 | (uint32_t)got[3] << 16 |
                     (uint32_t)got[4] << 8 | got[5];
        MDB_val cv;
        content_view c;
        rc = store_cnum_get(s, txn, n, &cv);
        if (rc != 0 || store_content_decode(n, &cv, &c) != 0) {
            rc = rc ? rc : MDB_CORRUPTED;
            break;
        }
        if (c.head.bank == bank && c.head.id_len == len && memcmp(c.content_id, id, len) == 0) {
            *number = n;
            if (value)
                *value = cv;
            break;
        }
    }
    mdb_cursor_close(cur);
    return rc;
}

int store_content_link(pdqm_store *s, MDB_txn *txn, uint32_t bank, const char *id,
                       size_t len, uint32_t number)
{
    uint8_t dup[6];
    uint32_t bucket = cindex_entry(bank, id, len, number, dup);
    MDB_val k = { 4, &bucket }, d = { 6, dup };
    int rc = mdb_put(txn, s->cindex, &k, &d, MDB_NODUPDATA);
    if (rc != 0)
        return rc;
    MDB_val bk = { 4, &bank }, bd = { 4, &number };
    /* Numbers only grow, so each is appended to its bank's list. */
    return mdb_put(txn, s->cbank, &bk, &bd, MDB_NODUPDATA);
}

int store_content_unlink(pdqm_store *s, MDB_txn *txn, uint32_t bank, const char *id,
                         size_t len, uint32_t number)
{
    uint8_t dup[6];
    uint32_t bucket = cindex_entry(bank, id, len, number, dup);
    MDB_val k = { 4, &bucket }, d = { 6, dup };
    int rc = mdb_del(txn, s->cindex, &k, &d);
    if (rc != 0)
        return rc;
    MDB_val bk = { 4, &bank }, bd = { 4, &number };
    return mdb_del(txn, s->cbank, &bk, &bd);
}

int store_bank_numbers(pdqm_store *s, MDB_txn *txn, uint32_t bank, uint32_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->cbank, &cur);
    if (rc != 0)
        return rc;
    MDB_val k = { 4, &bank }, v;
    size_t n = 0, cap = 0;
    uint32_t *list = NULL;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    if (rc == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_GET_MULTIPLE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_MULTIPLE)) {
            size_t more = v.mv_size / 4;
            if (n + more > cap) {
                cap = (n + more) * 2;
                uint32_t *grown = realloc(list, cap * sizeof *grown);
                if (grown == NULL) {
                    rc = ENOMEM;
                    break;
                }
                list = grown;
            }
            memcpy(list + n, v.mv_data, more * 4);
            n += more;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        free(list);
        return rc;
    }
    *out = list;
    *count = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Transactions and the map                                             */

int store_txn_begin(pdqm_store *s, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(s->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size.  That needs no
         * transaction open in this process, so take the resize lock
         * exclusively, which the caller must not hold. */
        pthread_rwlock_unlock(&s->resize_lock);
        pthread_rwlock_wrlock(&s->resize_lock);
        rc = mdb_env_set_mapsize(s->env, 0);
        store_cache_clear(s);
        pthread_rwlock_unlock(&s->resize_lock);
        pthread_rwlock_rdlock(&s->resize_lock);
        if (rc == 0)
            rc = mdb_txn_begin(s->env, NULL, flags, txn);
    }
    return rc;
}

pdqm_status store_grow_map(pdqm_store *s, pdqm_error *err)
{
    pthread_rwlock_wrlock(&s->resize_lock);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    size_t next = info.me_mapsize * 2;
    int rc = mdb_env_set_mapsize(s->env, next);
    store_cache_clear(s);
    pthread_rwlock_unlock(&s->resize_lock);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot grow the store's map");
    return PDQM_OK;
}

void store_cache_clear(pdqm_store *s)
{
    pthread_mutex_lock(&s->cache_lock);
    s->cache_blocks = 0;
    pthread_mutex_unlock(&s->cache_lock);
}

/* ------------------------------------------------------------------ */
/* Meta                                                                 */

static int meta_get(pdqm_store *s, MDB_txn *txn, const char *name, uint32_t *out)
{
    MDB_val k = { strlen(name), (void *)name }, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (v.mv_size != 4)
        return MDB_CORRUPTED;
    memcpy(out, v.mv_data, 4);
    return 0;
}

static int meta_put(pdqm_store *s, MDB_txn *txn, const char *name, uint32_t value)
{
    MDB_val k = { strlen(name), (void *)name }, v = { 4, &value };
    return mdb_put(txn, s->meta, &k, &v, 0);
}

int store_meta_read(pdqm_store *s, MDB_txn *txn, meta_vals *m)
{
    int rc;
    if ((rc = meta_get(s, txn, "next_entry", &m->next_entry)) ||
        (rc = meta_get(s, txn, "next_bank", &m->next_bank)) ||
        (rc = meta_get(s, txn, "pending_from", &m->pending_from)) ||
        (rc = meta_get(s, txn, "pending_to", &m->pending_to)) ||
        (rc = meta_get(s, txn, "pgen", &m->pgen)) ||
        (rc = meta_get(s, txn, "pass_window", &m->pass_window)))
        return rc;
    return 0;
}

int store_meta_write(pdqm_store *s, MDB_txn *txn, const meta_vals *m)
{
    int rc;
    if ((rc = meta_put(s, txn, "next_entry", m->next_entry)) ||
        (rc = meta_put(s, txn, "next_bank", m->next_bank)) ||
        (rc = meta_put(s, txn, "pending_from", m->pending_from)) ||
        (rc = meta_put(s, txn, "pending_to", m->pending_to)) ||
        (m->pass_window && (rc = meta_put(s, txn, "pass_window", m->pass_window))))
        return rc;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

/* Open every named database; create them (and the schema record) in a
 * fresh environment when allowed. */
static pdqm_status open_databases(pdqm_store *s, unsigned flags, pdqm_error *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the store");

    /* Is this a pdqmatch store?  The unnamed database of an environment
     * lists its named ones: a new environment has none. */
    MDB_dbi main_dbi;
    MDB_stat st;
    int fresh = 0;
    rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc == 0)
        rc = mdb_stat(txn, main_dbi, &st);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store_lmdb_error(err, rc, "cannot read the store");
    }
    if (st.ms_entries == 0) {
        if (!(flags & PDQM_STORE_CREATE) || s->read_only) {
            mdb_txn_abort(txn);
            return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                                  "%s is an empty LMDB file, not a pdqmatch store", s->path);
        }
        fresh = 1;
    }

    static const struct { const char *name; unsigned flags; size_t offset; } dbs[] = {
        { "meta", 0, offsetof(pdqm_store, meta) },
        { "banks", 0, offsetof(pdqm_store, banks) },
        { "cnum", MDB_INTEGERKEY, offsetof(pdqm_store, cnum) },
        { "cindex", MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED, offsetof(pdqm_store, cindex) },
        { "cbank", MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP,
          offsetof(pdqm_store, cbank) },
        { "sha256", MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP, offsetof(pdqm_store, sha256) },
        { "md5", MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP, offsetof(pdqm_store, md5) },
        { "postings", MDB_INTEGERKEY, offsetof(pdqm_store, postings) },
        { "records", MDB_INTEGERKEY, offsetof(pdqm_store, records) },
        { "pchanges", MDB_INTEGERKEY, offsetof(pdqm_store, pchanges) },
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)s + dbs[i].offset);
        rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | (fresh ? MDB_CREATE : 0), dbi);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            mdb_txn_abort(txn);
            return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                                  "%s is an LMDB file but not a pdqmatch store", s->path);
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            return store_lmdb_error(err, rc, "cannot open the store's tables");
        }
    }

    uint32_t schema = 0;
    if (fresh) {
        rc = meta_put(s, txn, "schema", PDQM_STORE_SCHEMA_VERSION);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc != 0)
            return store_lmdb_error(err, rc, "cannot initialise the store");
        return PDQM_OK;
    }
    rc = meta_get(s, txn, "schema", &schema);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store_lmdb_error(err, rc, "cannot read the store's schema");
    }
    /* Commit, even read-only: database handles opened in a transaction
     * that is aborted are closed with it. */
    if ((rc = mdb_txn_commit(txn)) != 0)
        return store_lmdb_error(err, rc, "cannot open the store's tables");
    if (schema == 0)
        return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                              "%s is an LMDB file but not a pdqmatch store", s->path);
    if (schema != PDQM_STORE_SCHEMA_VERSION)
        return pdqm_error_set(err, PDQM_ERR_SCHEMA,
                              "%s has store schema version %u; this pdqmatch reads "
                              "version %d only", s->path, schema, PDQM_STORE_SCHEMA_VERSION);
    return PDQM_OK;
}

pdqm_status pdqm_store_open(const char *path, unsigned flags,
                            pdqm_store **out, pdqm_error *err)
{
    *out = NULL;
    if (path == NULL)
        path = PDQM_STORE_DEFAULT_PATH;
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (!exists && errno != ENOENT)
        return pdqm_error_set(err, PDQM_ERR_IO, "%s: %s", path, strerror(errno));
    if (!exists && !(flags & PDQM_STORE_CREATE))
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "%s: no store there", path);
    if (!exists && (flags & PDQM_STORE_READONLY))
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "%s: no store there", path);
    if (exists && S_ISDIR(sb.st_mode))
        return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                              "%s is a directory, not a pdqmatch store", path);
    if (exists && !S_ISREG(sb.st_mode))
        return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                              "%s is not a regular file, so not a pdqmatch store", path);
    /* LMDB would quietly make an empty file into a new store, and a short
     * one is no store at all: refuse both rather than write to them.  But
     * an empty file is also what a process killed while creating a store
     * leaves (LMDB creates the file, then writes it): with CREATE it holds
     * nothing to lose, so it is made the store it was meant to be. */
    if (exists && sb.st_size < 8192 &&
        !(sb.st_size == 0 && (flags & PDQM_STORE_CREATE) && !(flags & PDQM_STORE_READONLY)))
        return pdqm_error_set(err, PDQM_ERR_NOT_A_STORE,
                              "%s is not a pdqmatch store (%lld bytes)", path,
                              (long long)sb.st_size);

    pdqm_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory opening a store");
    }
    s->read_only = (flags & PDQM_STORE_READONLY) != 0;
    pthread_rwlock_init(&s->resize_lock, NULL);
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->queue_lock, NULL);
    pthread_cond_init(&s->queue_done, NULL);
    pthread_mutex_init(&s->cache_lock, NULL);

    pdqm_status st = store_caches_init(s, err);
    if (st != PDQM_OK)
        goto fail;
    int rc = mdb_env_create(&s->env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(s->env, 16);
    size_t map = INITIAL_MAP;
    while (exists && map < (size_t)sb.st_size * 2)
        map *= 2;
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, map);
    if (rc != 0) {
        st = store_lmdb_error(err, rc, "cannot set up LMDB");
        goto fail;
    }
    unsigned env_flags = MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD;
    if (s->read_only)
        env_flags |= MDB_RDONLY;
    rc = mdb_env_open(s->env, path, env_flags, 0644);
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        st = pdqm_error_set(err, PDQM_ERR_NOT_A_STORE, "%s is not a pdqmatch store (%s)",
                            path, mdb_strerror(rc));
        goto fail;
    }
    if (rc != 0) {
        st = pdqm_error_set(err, rc == ENOMEM ? PDQM_ERR_NOMEM : PDQM_ERR_IO,
                            "%s: %s", path, mdb_strerror(rc));
        goto fail;
    }
    st = open_databases(s, flags, err);
    if (st != PDQM_OK)
        goto fail;
    *out = s;
    return PDQM_OK;

fail:
    pdqm_store_close(s);
    return st;
}

void pdqm_store_close(pdqm_store *s)
{
    if (s == NULL)
        return;
    if (s->env)
        mdb_env_close(s->env);
    for (int i = 0; i < CACHE_DIR; i++)
        free(s->cache[i]);
    if (s->arena_map)
        munmap(s->arena_map, s->arena_map_bytes);
    free(s->arena_gone);
    pthread_rwlock_destroy(&s->resize_lock);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->queue_lock);
    pthread_cond_destroy(&s->queue_done);
    pthread_mutex_destroy(&s->cache_lock);
    store_pcache_free(s);
    store_pindex_free(s);
    free(s->touched);
    free(s->path);
    free(s);
}

/* ------------------------------------------------------------------ */
/* Banks                                                                */

pdqm_status pdqm_bank_name_check(const char *name, pdqm_error *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > PDQM_BANK_NAME_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a bank name is 1 to %d characters", PDQM_BANK_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "a bank name holds only letters, digits, '.', '_' and '-'");
    }
    return PDQM_OK;
}

int store_bank_find(pdqm_store *s, MDB_txn *txn, const char *name, bank_rec *out)
{
    MDB_val k = { strlen(name), (void *)name }, v;
    int rc = mdb_get(txn, s->banks, &k, &v);
    if (rc != 0)
        return rc;
    if (v.mv_size != sizeof *out)
        return MDB_CORRUPTED;
    memcpy(out, v.mv_data, sizeof *out);
    return 0;
}

int store_bank_put(pdqm_store *s, MDB_txn *txn, const char *name, const bank_rec *b)
{
    MDB_val k = { strlen(name), (void *)name }, v = { sizeof *b, (void *)b };
    return mdb_put(txn, s->banks, &k, &v, 0);
}

pdqm_status store_bank_table(pdqm_store *s, MDB_txn *txn, bank_table *t, pdqm_error *err)
{
    memset(t, 0, sizeof *t);
    MDB_stat st;
    meta_vals m;
    int rc = mdb_stat(txn, s->banks, &st);
    if (rc == 0)
        rc = store_meta_read(s, txn, &m);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the banks");
    size_t cap = st.ms_entries ? st.ms_entries : 1;
    t->max_id = m.next_bank;
    t->names = calloc(cap, sizeof *t->names);
    t->recs = calloc(cap, sizeof *t->recs);
    t->by_id = malloc(((size_t)t->max_id + 1) * sizeof *t->by_id);
    if (!t->names || !t->recs || !t->by_id) {
        store_bank_table_free(t);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory reading banks");
    }
    for (size_t i = 0; i <= t->max_id; i++)
        t->by_id[i] = -1;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, s->banks, &cur);
    if (rc != 0) {
        store_bank_table_free(t);
        return store_lmdb_error(err, rc, "cannot read the banks");
    }
    MDB_val k, v;
    while (t->count < cap && (rc = mdb_cursor_get(cur, &k, &v, t->count ? MDB_NEXT : MDB_FIRST)) == 0) {
        if (v.mv_size != sizeof(bank_rec) || k.mv_size > PDQM_BANK_NAME_MAX) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(t->names[t->count], k.mv_data, k.mv_size);
        t->names[t->count][k.mv_size] = '\0';
        memcpy(&t->recs[t->count], v.mv_data, sizeof(bank_rec));
        if (t->recs[t->count].id > t->max_id) {
            rc = MDB_CORRUPTED;
            break;
        }
        t->by_id[t->recs[t->count].id] = (int32_t)t->count;
        t->hashes += t->recs[t->count].hashes;
        t->count++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        store_bank_table_free(t);
        return store_lmdb_error(err, rc, "cannot read the banks");
    }
    return PDQM_OK;
}

void store_bank_table_free(bank_table *t)
{
    free(t->names);
    free(t->recs);
    free(t->by_id);
    t->names = NULL;
    t->recs = NULL;
    t->by_id = NULL;
    t->count = 0;
}

static void bank_info_from(pdqm_bank_info *info, const char *name, const bank_rec *b)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", name);
    info->id = b->id;
    info->threshold = b->threshold;
    info->kind = (pdqm_bank_kind)b->kind;
    info->created = b->created;
    info->contents = b->contents;
    info->hashes = b->hashes;
}

void store_touch(pdqm_store *s, uint32_t key)
{
    if (s->touched_all)
        return;
    if (s->n_touched == s->cap_touched) {
        size_t cap = s->cap_touched ? s->cap_touched * 2 : 1024;
        uint32_t *grown = cap <= PCHANGES_MAX_KEYS ? realloc(s->touched, cap * sizeof *grown) : NULL;
        if (grown == NULL) {
            s->touched_all = 1;   /* listing them all is not worth it */
            return;
        }
        s->touched = grown;
        s->cap_touched = cap;
    }
    s->touched[s->n_touched++] = key;
}

/* When the transaction changed postings: a new generation, its list of
 * keys in pchanges, and the oldest entry dropped. */
static int log_postings_change(pdqm_store *s, MDB_txn *txn)
{
    if (s->n_touched == 0 && !s->touched_all)
        return 0;
    uint32_t gen;
    int rc = meta_get(s, txn, "pgen", &gen);
    if (rc != 0)
        return rc;
    gen++;
    MDB_val k = { 4, &gen };
    MDB_val v = { s->touched_all ? 0 : s->n_touched * 4, s->touched };
    if ((rc = mdb_put(txn, s->pchanges, &k, &v, MDB_APPEND)) != 0 &&
        (rc = mdb_put(txn, s->pchanges, &k, &v, 0)) != 0)
        return rc;
    if (gen > PCHANGES_KEEP) {
        uint32_t old = gen - PCHANGES_KEEP;
        MDB_val ok = { 4, &old };
        rc = mdb_del(txn, s->pchanges, &ok, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    return meta_put(s, txn, "pgen", gen);
}

/* Writes: group commit.
 *
 * Every write is a job on the handle's queue.  The thread that finds no
 * leader at work becomes one: it takes every queued job (at most
 * GROUP_MAX) and runs each in a nested transaction of one write
 * transaction, so a job that fails is undone alone and the others commit
 * together, sharing one commit and its two fsyncs.  A group of one runs in
 * the transaction itself.  Writers from several threads (a server) thus
 * pay for durability once a group, not once a write; a lone writer pays
 * nothing extra.
 *
 * When the map fills, the group is undone, the map grown and the group
 * run again.  When nesting itself fails (too many dirty pages for one
 * transaction), every job of the group runs again in a transaction of its
 * own. */
#define GROUP_MAX 16

typedef struct write_job {
    write_fn fn;
    void *arg;
    const char *what;
    pdqm_error *err;
    pdqm_status st;
    int rc;                   /* LMDB code or -1, for the leader */
    int done;
    struct write_job *next;
} write_job;

static void job_finish(write_job *j, int rc)
{
    j->rc = rc;
    if (rc == 0)
        j->st = PDQM_OK;
    else if (rc == -1)
        j->st = j->err ? j->err->status : PDQM_ERR_INVALID;
    else
        j->st = store_lmdb_error(j->err, rc, j->what);
}

/* Run the jobs of group (n of them, linked) in one transaction.  Returns
 * 0 when it committed (each job's rc says whether its own part stayed),
 * MDB_MAP_FULL or MDB_TXN_FULL for the caller to handle, or another LMDB
 * code that fails the whole group. */
static int run_group(pdqm_store *s, write_job *group, size_t n)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = store_txn_begin(s, 0, &txn);
    if (rc != 0) {
        pthread_rwlock_unlock(&s->resize_lock);
        return rc;
    }
    s->n_touched = 0;
    s->touched_all = 0;
    int any = 0;
    for (write_job *j = group; j && rc == 0; j = j->next) {
        if (n == 1) {
            j->rc = j->fn(s, txn, j->arg, j->err);
            if (j->rc == MDB_MAP_FULL || j->rc == MDB_TXN_FULL)
                rc = j->rc;
            any = j->rc == 0;
            break;
        }
        MDB_txn *child;
        if ((rc = mdb_txn_begin(s->env, txn, 0, &child)) != 0)
            break;
        j->rc = j->fn(s, child, j->arg, j->err);
        if (j->rc == 0)
            j->rc = mdb_txn_commit(child);
        else
            mdb_txn_abort(child);
        if (j->rc == MDB_MAP_FULL || j->rc == MDB_TXN_FULL)
            rc = j->rc;
        any |= j->rc == 0;
    }
    if (rc == 0 && any)
        rc = log_postings_change(s, txn);
    if (rc == 0 && any)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->resize_lock);
    return rc;
}

/* Run a group to the end, growing the map as needed, and set every job's
 * status.  Called with write_lock held. */
static void lead_group(pdqm_store *s, write_job *group, size_t n)
{
    for (;;) {
        int rc = run_group(s, group, n);
        if (rc == MDB_MAP_FULL) {
            pdqm_error grow_err;
            if (store_grow_map(s, &grow_err) == PDQM_OK)
                continue;
            for (write_job *j = group; j; j = j->next) {
                if (j->err)
                    *j->err = grow_err;
                j->st = grow_err.status;
            }
            return;
        }
        if (rc == MDB_TXN_FULL && n > 1) {
            /* Too much for one transaction: one job at a time, then. */
            for (write_job *j = group; j; j = j->next) {
                write_job *rest = j->next;
                j->next = NULL;
                lead_group(s, j, 1);
                j->next = rest;
            }
            return;
        }
        for (write_job *j = group; j; j = j->next)
            job_finish(j, rc != 0 && j->rc == 0 ? rc : j->rc);
        return;
    }
}

static pdqm_status with_write_txn(pdqm_store *s, write_fn fn, void *arg,
                                  const char *what, pdqm_error *err)
{
    if (s->read_only)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "the store is open read-only");
    /* The job always has an error record of its own: a write function's
     * status is read from it, so it must not depend on whether the caller
     * passed one. */
    pdqm_error local;
    pdqm_error_clear(&local);
    write_job job = { fn, arg, what, &local, PDQM_OK, 0, 0, NULL };

    pthread_mutex_lock(&s->queue_lock);
    if (s->queue_tail)
        s->queue_tail->next = &job;
    else
        s->queue_head = &job;
    s->queue_tail = &job;
    for (;;) {
        while (!job.done && s->leader_active)
            pthread_cond_wait(&s->queue_done, &s->queue_lock);
        if (job.done)
            break;
        /* Lead: take up to GROUP_MAX jobs from the head of the queue (ours
         * too, unless more than that wait ahead of it: then lead again). */
        s->leader_active = 1;
        write_job *group = s->queue_head, *last = group;
        size_t n = 1;
        while (last->next && n < GROUP_MAX) {
            last = last->next;
            n++;
        }
        s->queue_head = last->next;
        if (s->queue_head == NULL)
            s->queue_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->queue_lock);

        pthread_mutex_lock(&s->write_lock);
        lead_group(s, group, n);
        pthread_mutex_unlock(&s->write_lock);

        pthread_mutex_lock(&s->queue_lock);
        for (write_job *j = group; j; ) {
            write_job *next = j->next;
            j->done = 1;   /* its thread may return as soon as we unlock */
            j = next;
        }
        s->leader_active = 0;
        pthread_cond_broadcast(&s->queue_done);
    }
    pthread_mutex_unlock(&s->queue_lock);
    if (err)
        *err = local;
    return job.st;
}

pdqm_status store_write(pdqm_store *s, write_fn fn, void *arg, const char *what,
                        pdqm_error *err)
{
    return with_write_txn(s, fn, arg, what, err);
}

typedef struct bank_args {
    const char *name;
    int threshold;
    int kind;
    int64_t created;     /* bank_create: 0 for now */
} bank_args;

static int do_bank_create(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    const bank_args *a = arg;
    bank_rec b;
    int rc = store_bank_find(s, txn, a->name, &b);
    if (rc == 0) {
        pdqm_error_set(err, PDQM_ERR_EXISTS, "bank '%s' exists already", a->name);
        return -1;
    }
    if (rc != MDB_NOTFOUND)
        return rc;
    meta_vals m;
    if ((rc = store_meta_read(s, txn, &m)) != 0)
        return rc;
    if (m.next_bank >= MAX_BANKS) {
        pdqm_error_set(err, PDQM_ERR_INVALID, "a store holds at most %d banks", MAX_BANKS);
        return -1;
    }
    memset(&b, 0, sizeof b);
    b.id = ++m.next_bank;   /* ids start at 1 */
    b.threshold = a->threshold;
    b.kind = (uint32_t)a->kind;
    b.created = a->created > 0 ? a->created : (int64_t)time(NULL);
    if ((rc = store_bank_put(s, txn, a->name, &b)) != 0)
        return rc;
    return store_meta_write(s, txn, &m);
}

pdqm_status pdqm_store_bank_create(pdqm_store *store, const char *name,
                                   int threshold, pdqm_bank_kind kind,
                                   pdqm_error *err)
{
    return pdqm_store_bank_create_at(store, name, threshold, kind, 0, err);
}

pdqm_status pdqm_store_bank_create_at(pdqm_store *store, const char *name,
                                      int threshold, pdqm_bank_kind kind,
                                      int64_t created, pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(name, err);
    if (st != PDQM_OK)
        return st;
    if (threshold < 0 || threshold > PDQM_MAX_DISTANCE)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a threshold is 0 to 256 bits, not %d", threshold);
    if (kind != PDQM_BANK_BLOCK && kind != PDQM_BANK_ALLOW)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "unknown bank kind %d", (int)kind);
    bank_args a = { name, threshold, kind, created };
    return with_write_txn(store, do_bank_create, &a, "cannot create the bank", err);
}

/* Find bank `name` in a write transaction; a missing bank is an error
 * recorded in *err (returns -1, as write functions do). */
static int bank_for_write(pdqm_store *s, MDB_txn *txn, const char *name, bank_rec *b,
                          pdqm_error *err)
{
    int rc = store_bank_find(s, txn, name, b);
    if (rc == MDB_NOTFOUND) {
        pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", name);
        return -1;
    }
    return rc;
}

static int do_bank_update(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    const bank_args *a = arg;
    bank_rec b;
    int rc = bank_for_write(s, txn, a->name, &b, err);
    if (rc != 0)
        return rc;
    if (a->threshold >= 0)
        b.threshold = a->threshold;
    if (a->kind >= 0)
        b.kind = (uint32_t)a->kind;
    return store_bank_put(s, txn, a->name, &b);
}

pdqm_status pdqm_store_bank_update(pdqm_store *store, const char *name,
                                   int threshold, int kind, pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(name, err);
    if (st != PDQM_OK)
        return st;
    if (threshold > PDQM_MAX_DISTANCE || threshold < -1)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a threshold is 0 to 256 bits, not %d", threshold);
    if (kind != -1 && kind != PDQM_BANK_BLOCK && kind != PDQM_BANK_ALLOW)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "unknown bank kind %d", kind);
    bank_args a = { name, threshold, kind, 0 };
    return with_write_txn(store, do_bank_update, &a, "cannot update the bank", err);
}

static int do_bank_delete(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    const bank_args *a = arg;
    bank_rec b;
    int rc = bank_for_write(s, txn, a->name, &b, err);
    if (rc != 0)
        return rc;
    /* The bank's content numbers, copied first: deleting edits the list. */
    uint32_t *numbers = NULL;
    size_t n = 0;
    if ((rc = store_bank_numbers(s, txn, b.id, &numbers, &n)) != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        MDB_val cv;
        rc = store_cnum_get(s, txn, numbers[i], &cv);
        if (rc != 0)
            break;
        content_view c;
        if (store_content_decode(numbers[i], &cv, &c) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        rc = store_delete_content(s, txn, numbers[i], &c, &b);
    }
    free(numbers);
    if (rc != 0)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    MDB_val bk = { strlen(a->name), (void *)a->name };
    return mdb_del(txn, s->banks, &bk, NULL);
}

pdqm_status pdqm_store_bank_delete(pdqm_store *store, const char *name,
                                   pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(name, err);
    if (st != PDQM_OK)
        return st;
    bank_args a = { name, -1, -1, 0 };
    return with_write_txn(store, do_bank_delete, &a, "cannot delete the bank", err);
}

/* Run fn in a read transaction. */
typedef pdqm_status (*read_fn)(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err);

static pdqm_status with_read_txn(pdqm_store *s, read_fn fn, void *arg, pdqm_error *err)
{
    MDB_txn *txn;
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = store_txn_begin(s, MDB_RDONLY, &txn);
    pdqm_status st;
    if (rc != 0) {
        st = store_lmdb_error(err, rc, "cannot read the store");
    } else {
        st = fn(s, txn, arg, err);
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&s->resize_lock);
    return st;
}

/* Find bank `name` in a read transaction, as a status. */
static pdqm_status bank_for_read(pdqm_store *s, MDB_txn *txn, const char *name, bank_rec *b,
                                 pdqm_error *err)
{
    int rc = store_bank_find(s, txn, name, b);
    if (rc == MDB_NOTFOUND)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", name);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the bank");
    return PDQM_OK;
}

typedef struct bank_get_args {
    const char *name;
    pdqm_bank_info *info;
} bank_get_args;

static pdqm_status do_bank_get(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    bank_get_args *a = arg;
    bank_rec b;
    pdqm_status st = bank_for_read(s, txn, a->name, &b, err);
    if (st != PDQM_OK)
        return st;
    bank_info_from(a->info, a->name, &b);
    return PDQM_OK;
}

pdqm_status pdqm_store_bank_get(pdqm_store *store, const char *name,
                                pdqm_bank_info *info, pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(name, err);
    if (st != PDQM_OK)
        return st;
    bank_get_args a = { name, info };
    return with_read_txn(store, do_bank_get, &a, err);
}

typedef struct bank_list_args {
    pdqm_bank_info **out;
    size_t *count;
} bank_list_args;

static pdqm_status do_bank_list(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    bank_list_args *a = arg;
    bank_table *t = malloc(sizeof *t);
    if (t == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory listing banks");
    pdqm_status st = store_bank_table(s, txn, t, err);
    if (st == PDQM_OK) {
        pdqm_bank_info *list = calloc(t->count ? t->count : 1, sizeof *list);
        if (list == NULL) {
            st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory listing banks");
        } else {
            for (size_t i = 0; i < t->count; i++)
                bank_info_from(&list[i], t->names[i], &t->recs[i]);
            *a->out = list;
            *a->count = t->count;
        }
        store_bank_table_free(t);
    }
    free(t);
    return st;
}

pdqm_status pdqm_store_bank_list(pdqm_store *store, pdqm_bank_info **out,
                                 size_t *count, pdqm_error *err)
{
    *out = NULL;
    *count = 0;
    bank_list_args a = { out, count };
    return with_read_txn(store, do_bank_list, &a, err);
}

/* ------------------------------------------------------------------ */
/* Content                                                              */

void pdqm_content_info_clear(pdqm_content_info *info)
{
    if (info == NULL)
        return;
    free(info->content_id);
    free(info->metadata);
    memset(info, 0, sizeof *info);
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
    if (!info->content_id || (c->metadata && !info->metadata)) {
        pdqm_content_info_clear(info);
        return -1;
    }
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
    pdqm_status st = bank_for_read(s, txn, a->bank, &b, err);
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
    if (store_content_decode(number, &v, &c) != 0)
        return store_lmdb_error(err, MDB_CORRUPTED, "cannot read the content");
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
    return with_read_txn(store, do_content_get, &a, err);
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
        rc = collect_digest(txn, s->sha256, a->sha256, 32, a);
    if (rc == 0 && a->has_md5)
        rc = collect_digest(txn, s->md5, a->md5, 16, a);
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
    pdqm_status st = with_read_txn(store, do_find_file, &a, err);
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
} walk_args;

int store_read_record(pdqm_store *s, MDB_txn *txn, uint32_t id, record *out,
                      uint32_t *cached_block, MDB_val *cached)
{
    uint32_t block = id / RECORDS_PER_BLOCK;
    if (*cached_block != block || cached->mv_data == NULL) {
        MDB_val k = { 4, &block };
        int rc = mdb_get(txn, s->records, &k, cached);
        if (rc != 0) {
            cached->mv_data = NULL;
            return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
        }
        *cached_block = block;
    }
    uint32_t n = block_count(cached->mv_size);
    if (id % RECORDS_PER_BLOCK >= n)
        return MDB_CORRUPTED;
    block_read(cached->mv_data, n, id % RECORDS_PER_BLOCK, out);
    return 0;
}

/* Hand one content item to the walk's callback.  Returns 0 to go on, an
 * LMDB code, or MDB_NOTFOUND when the callback stopped the walk. */
static int walk_one(pdqm_store *s, MDB_txn *txn, walk_args *a, const bank_table *t,
                    uint32_t number, const MDB_val *cv, pdqm_stored_hash **hashes,
                    size_t *hcap, uint32_t *cached_block, MDB_val *cached)
{
    content_view c;
    if (store_content_decode(number, cv, &c) != 0 || c.head.bank > t->max_id ||
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
    bank_table *t = malloc(sizeof *t);
    if (t == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    pdqm_status st = store_bank_table(s, txn, t, err);
    if (st != PDQM_OK) {
        free(t);
        return st;
    }
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
        uint32_t *numbers = NULL;
        size_t n = 0;
        if (rc == 0)
            rc = store_bank_numbers(s, txn, b.id, &numbers, &n);
        for (size_t i = 0; i < n && rc == 0; i++) {
            MDB_val cv;
            rc = store_cnum_get(s, txn, numbers[i], &cv);
            if (rc == 0)
                rc = walk_one(s, txn, a, t, numbers[i], &cv, &hashes, &hcap,
                              &cached_block, &cached);
            else if (rc == MDB_NOTFOUND)
                rc = MDB_CORRUPTED;
        }
        free(numbers);
    } else {
        cnum_iter it;
        uint32_t number;
        MDB_val cv;
        for (rc = store_cnum_first(s, txn, &it, &number, &cv); rc == 0;
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
    store_bank_table_free(t);
    free(t);
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
    memcpy(*a->hashes, hashes, n * sizeof *hashes);
    *a->n = n;
    *a->info = *info;
    a->info->content_id = strdup(info->content_id);
    a->info->metadata = info->metadata ? strdup(info->metadata) : NULL;
    if (!a->info->content_id || (info->metadata && !a->info->metadata))
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
    bank_table *t = malloc(sizeof *t);
    if (t == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    pdqm_status st = store_bank_table(s, txn, t, err);
    if (st == PDQM_OK) {
        walk_args w = { NULL, collect_one, a, NULL };
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
        store_bank_table_free(t);
    }
    free(t);
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
    pdqm_status st = with_read_txn(store, do_content_number, &a, err);
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
    if (stopped)
        *stopped = 0;
    if (bank) {
        pdqm_status st = pdqm_bank_name_check(bank, err);
        if (st != PDQM_OK)
            return st;
    }
    walk_args a = { bank, fn, arg, stopped };
    return with_read_txn(store, do_walk, &a, err);
}

/* ------------------------------------------------------------------ */
/* Stats                                                                */

static pdqm_status do_stats(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    pdqm_store_stats *out = arg;
    memset(out, 0, sizeof *out);
    bank_table *t = malloc(sizeof *t);
    if (t == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    pdqm_status st = store_bank_table(s, txn, t, err);
    if (st != PDQM_OK) {
        free(t);
        return st;
    }
    out->banks = t->count;
    for (size_t i = 0; i < t->count; i++) {
        out->contents += t->recs[i].contents;
    }
    out->hashes = t->hashes;
    store_bank_table_free(t);
    free(t);
    meta_vals m;
    int rc = store_meta_read(s, txn, &m);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the store");
    out->entries_ever = m.next_entry;
    out->pending = m.pending_to - m.pending_from;
    out->pending_limit = store_pass_window(&m);
    MDB_envinfo info;
    MDB_stat es;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &es);
    out->map_bytes = info.me_mapsize;
    out->hash_copy_bytes = store_arena_bytes(s);
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * es.ms_psize;
    struct stat sb;
    if (stat(s->path, &sb) == 0)
        out->file_bytes = (uint64_t)sb.st_size;
    out->schema = PDQM_STORE_SCHEMA_VERSION;
    return PDQM_OK;
}

pdqm_status pdqm_store_stats_get(pdqm_store *store, pdqm_store_stats *stats,
                                 pdqm_error *err)
{
    return with_read_txn(store, do_stats, stats, err);
}

/* ------------------------------------------------------------------ */
/* Verify                                                               */

typedef struct verify_args {
    uint64_t problems;
    pdqm_error *err;
} verify_args;

static void problem(verify_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verify_args *a, const char *fmt, ...)
{
    if (a->problems++ == 0 && a->err) {
        char msg[PDQM_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        pdqm_error_set(a->err, PDQM_ERR_STORE, "%s", msg);
    }
}

/* Record id through a table of block values, each looked up once: the
 * postings pass reads records in no order, and a B-tree search per
 * posting was most of verify's time.  blocks[b] holds block b once read. */
static int verify_record(pdqm_store *s, MDB_txn *txn, MDB_val *blocks, uint32_t id,
                         record *out)
{
    uint32_t b = id / RECORDS_PER_BLOCK;
    return store_read_record(s, txn, id, out, &b, &blocks[b]);
}

static pdqm_status do_verify(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    verify_args *a = arg;
    meta_vals m;
    int rc = store_meta_read(s, txn, &m);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the store");
    bank_table *t = malloc(sizeof *t);
    if (t == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    pdqm_status st = store_bank_table(s, txn, t, err);
    if (st != PDQM_OK) {
        free(t);
        return st;
    }
    uint64_t *contents = calloc(t->count ? t->count : 1, sizeof *contents);
    uint64_t *hashes = calloc(t->count ? t->count : 1, sizeof *hashes);
    /* Which entry ids are live: one bit an id; how many postings name
     * each; the record blocks as they are looked up. */
    uint8_t *live = calloc((size_t)m.next_entry / 8 + 1, 1);
    uint8_t *posted = calloc((size_t)m.next_entry + 1, 1);
    MDB_val *blocks = calloc((size_t)m.next_entry / RECORDS_PER_BLOCK + 1, sizeof *blocks);
    MDB_cursor *cur = NULL;
    if (!contents || !hashes || !live || !posted || !blocks) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory verifying");
        goto done;
    }

    /* 1. Content records: keys, digests, entry ranges, bank counts. */
    cnum_iter it;
    uint32_t number;
    MDB_val k, v;
    for (rc = store_cnum_first(s, txn, &it, &number, &v); rc == 0;
         rc = store_cnum_next(&it, &number, &v)) {
        content_view c;
        if (store_content_decode(number, &v, &c) != 0) {
            problem(a, "content %u: malformed record", number);
            continue;
        }
        if (c.head.bank > t->max_id || t->by_id[c.head.bank] < 0) {
            problem(a, "content %u: in bank id %u, which does not exist", number, c.head.bank);
            continue;
        }
        int bi = t->by_id[c.head.bank];
        contents[bi]++;
        hashes[bi] += c.head.n_hashes;
        if (c.head.id_len == 0 || c.head.id_len > PDQM_CONTENT_ID_MAX) {
            problem(a, "content %u: content id of %u bytes", number, c.head.id_len);
            continue;
        }
        uint32_t found;
        if (store_content_find(s, txn, c.head.bank, c.content_id, c.head.id_len, &found, NULL) != 0 ||
            found != number)
            problem(a, "content %u ('%.*s'): its content id does not lead back to it",
                    number, (int)c.head.id_len, c.content_id);
        uint32_t nv = number, bk = c.head.bank;
        MDB_val bkey = { 4, &bk }, bval = { 4, &nv };
        MDB_cursor *bc;
        if (mdb_cursor_open(txn, s->cbank, &bc) == 0) {
            if (mdb_cursor_get(bc, &bkey, &bval, MDB_GET_BOTH) != 0)
                problem(a, "content %u: missing from its bank's list", number);
            mdb_cursor_close(bc);
        }
        uint8_t dk[36];
        MDB_cursor *dc;
        if (c.sha256 && mdb_cursor_open(txn, s->sha256, &dc) == 0) {
            memcpy(dk, c.sha256, 32);
            put_be32(dk + 32, c.head.bank);
            MDB_val sk = { 36, dk }, sv = { 4, &nv };
            if (mdb_cursor_get(dc, &sk, &sv, MDB_GET_BOTH) != 0)
                problem(a, "content %u: its SHA-256 is not indexed", number);
            mdb_cursor_close(dc);
        }
        if (c.md5 && mdb_cursor_open(txn, s->md5, &dc) == 0) {
            memcpy(dk, c.md5, 16);
            put_be32(dk + 16, c.head.bank);
            MDB_val mk = { 20, dk }, mv = { 4, &nv };
            if (mdb_cursor_get(dc, &mk, &mv, MDB_GET_BOTH) != 0)
                problem(a, "content %u: its MD5 is not indexed", number);
            mdb_cursor_close(dc);
        }
        uint64_t end = (uint64_t)c.head.first_entry + c.head.n_hashes;
        if (c.head.n_hashes == 0 || end > m.next_entry) {
            problem(a, "content %u: entries %u..%llu outside the %u handed out", number,
                    c.head.first_entry, (unsigned long long)end, m.next_entry);
            continue;
        }
        for (uint32_t id = c.head.first_entry; id < end; id++) {
            record r;
            if ((rc = verify_record(s, txn, blocks, id, &r)) != 0) {
                problem(a, "entry %u: no record (%s)", id, mdb_strerror(rc));
                rc = 0;
                break;
            }
            if (r.bank != c.head.bank)
                problem(a, "entry %u: its record names bank %u, not %u", id, r.bank, c.head.bank);
            live[id / 8] |= (uint8_t)(1u << (id % 8));
        }
    }
    store_cnum_end(&it);
    if (rc != MDB_NOTFOUND && rc != 0)
        goto lmdb_fail;

    /* 2a. Every posting names a live entry whose slot value it is. */
    if ((rc = mdb_cursor_open(txn, s->postings, &cur)) != 0)
        goto lmdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t key32, id, prev = 0;
        memcpy(&key32, k.mv_data, 4);
        if (v.mv_size == 0 || v.mv_size % 4 != 0) {
            problem(a, "posting %08x: an array of %zu bytes", key32, v.mv_size);
            continue;
        }
        for (size_t i = 0; i < v.mv_size / 4; i++) {
            memcpy(&id, (const uint8_t *)v.mv_data + 4 * i, 4);
            if (i > 0 && id <= prev)
                problem(a, "posting %08x: ids out of order at %u", key32, id);
            prev = id;
            if (id >= m.next_entry || !(live[id / 8] & (1u << (id % 8)))) {
                problem(a, "posting %08x -> entry %u, which is not live", key32, id);
                continue;
            }
            record r;
            if (verify_record(s, txn, blocks, id, &r) != 0 ||
                slot_key(r.hash, (int)(key32 >> 16)) != key32)
                problem(a, "posting %08x -> entry %u, whose hash has another value there",
                        key32, id);
            else if (posted[id] < 255)
                posted[id]++;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc != MDB_NOTFOUND && rc != 0)
        goto lmdb_fail;

    /* 2b. Every live, indexed entry is posted in all 16 slots.  A posting
     * counted above is in its slot's key (the key names the slot) and ids
     * within a key ascend strictly, so 16 means one in each slot. */
    for (uint32_t id = 0; id < m.next_entry; id++) {
        if (!(live[id / 8] & (1u << (id % 8))) || (id >= m.pending_from && id < m.pending_to))
            continue;
        if (posted[id] != SLOTS)
            problem(a, "entry %u: posted in %u of its %d slots", id, posted[id], SLOTS);
    }

    /* 3. Bank counts. */
    for (size_t i = 0; i < t->count; i++)
        if (t->recs[i].contents != contents[i] || t->recs[i].hashes != hashes[i])
            problem(a, "bank '%s' counts %llu contents and %llu hashes, but holds %llu and %llu",
                    t->names[i], (unsigned long long)t->recs[i].contents,
                    (unsigned long long)t->recs[i].hashes, (unsigned long long)contents[i],
                    (unsigned long long)hashes[i]);
    if (m.pending_from > m.pending_to || m.pending_to > m.next_entry)
        problem(a, "pending range %u..%u is outside the %u entries", m.pending_from,
                m.pending_to, m.next_entry);
    goto done;

lmdb_fail:
    st = store_lmdb_error(err, rc, "cannot read the store");
done:
    if (cur)
        mdb_cursor_close(cur);
    free(contents);
    free(hashes);
    free(live);
    free(posted);
    free(blocks);
    store_bank_table_free(t);
    free(t);
    return st;
}

pdqm_status pdqm_store_verify(pdqm_store *store, uint64_t *problems, pdqm_error *err)
{
    verify_args a = { 0, err };
    pdqm_status st = with_read_txn(store, do_verify, &a, err);
    if (problems)
        *problems = a.problems;
    if (st == PDQM_OK && a.problems > 0)
        st = PDQM_ERR_STORE;
    return st;
}

/* ------------------------------------------------------------------ */
/* Compact                                                              */

pdqm_status pdqm_store_compact(pdqm_store *store, const char *path, pdqm_error *err)
{
    /* O_EXCL: never overwrite anything. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return pdqm_error_set(err, PDQM_ERR_IO, "%s: %s", path, strerror(errno));
    pthread_rwlock_rdlock(&store->resize_lock);
    int rc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
    pthread_rwlock_unlock(&store->resize_lock);
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    close(fd);
    if (rc != 0) {
        unlink(path);
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot write %s: %s", path, mdb_strerror(rc));
    }
    return PDQM_OK;
}
