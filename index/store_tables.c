/*
 * store_tables.c - the tables: content records by number (16 to a group,
 * new ones written a group at a time), the (bank, content id) index, meta
 * values, the bank table, and the records array (store_read_record).
 * Every function works inside a transaction its caller holds.
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
    int rc = mdb_get(txn, s->db.cnum, &k, &g);
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
        return mdb_del(txn, s->db.cnum, &k, NULL);
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
    int rc = mdb_put(txn, s->db.cnum, &k, &v, flags);
    free(buf);
    return rc;
}

static int cnum_room(cnum_writer *w, size_t n)
{
    if (n <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < n)
        cap *= 2;
    uint8_t *grown = realloc(w->buf, cap);
    if (grown == NULL)
        return ENOMEM;
    w->buf = grown;
    w->cap = cap;
    return 0;
}

/* The writer's group goes out: replacing the group it extends, or
 * appended when it is past the last one. */
static int cnum_flush(pdqm_store *s, MDB_txn *txn, cnum_writer *w)
{
    if (!w->open)
        return 0;
    w->open = 0;
    MDB_val k = { 4, &w->group }, v = { w->len, w->buf };
    unsigned flags = 0;
    if (!w->extends) {
        if (!w->have_last || w->group > w->last)
            flags = MDB_APPEND;
        w->last = w->group;
        w->have_last = 1;
    }
    return mdb_put(txn, s->db.cnum, &k, &v, flags);
}

int store_cnum_writer_add(pdqm_store *s, MDB_txn *txn, cnum_writer *w, uint32_t number,
                          const void *rec, size_t len)
{
    uint32_t group = number >> CNUM_SHIFT;
    int rc;
    if (w->open && group != w->group && (rc = cnum_flush(s, txn, w)) != 0)
        return rc;
    if (!w->open) {
        if (!w->started) {
            /* The last group, for appends past it. */
            MDB_cursor *cur;
            MDB_val lk, lv;
            if ((rc = mdb_cursor_open(txn, s->db.cnum, &cur)) != 0)
                return rc;
            rc = mdb_cursor_get(cur, &lk, &lv, MDB_LAST);
            if (rc == 0)
                memcpy(&w->last, lk.mv_data, 4);
            mdb_cursor_close(cur);
            if (rc != 0 && rc != MDB_NOTFOUND)
                return rc;
            w->have_last = rc == 0;
            w->started = 1;
        }
        MDB_val k = { 4, &group }, g;
        rc = mdb_get(txn, s->db.cnum, &k, &g);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        w->extends = rc == 0;
        w->len = 0;
        w->group = group;
        w->open = 1;
        w->last_low = -1;
        if (w->extends) {
            /* Numbers only grow: the group's entries are all below. */
            const uint8_t *p = g.mv_data, *end = p + g.mv_size;
            while (p < end) {
                uint64_t l;
                w->last_low = *p++;
                if (varint_get(&p, end, &l) || l > (uint64_t)(end - p))
                    return MDB_CORRUPTED;
                p += l;
            }
            if ((rc = cnum_room(w, g.mv_size)) != 0)
                return rc;
            memcpy(w->buf, g.mv_data, g.mv_size);
            w->len = g.mv_size;
        }
    }
    if ((int)(number & 15) <= w->last_low)
        return MDB_KEYEXIST;
    if ((rc = cnum_room(w, w->len + len + 11)) != 0)
        return rc;
    uint8_t *p = w->buf + w->len;
    *p++ = (uint8_t)(number & 15);
    p = varint_put(p, len);
    memcpy(p, rec, len);
    w->len = (size_t)(p - w->buf) + len;
    w->last_low = (int)(number & 15);
    return 0;
}

int store_cnum_writer_end(pdqm_store *s, MDB_txn *txn, cnum_writer *w)
{
    int rc = cnum_flush(s, txn, w);
    free(w->buf);
    memset(w, 0, sizeof *w);
    return rc;
}

int store_cnum_del(pdqm_store *s, MDB_txn *txn, uint32_t number)
{
    uint32_t group = number >> CNUM_SHIFT;
    MDB_val k = { 4, &group }, g, old;
    int rc = mdb_get(txn, s->db.cnum, &k, &g);
    if (rc != 0)
        return rc;
    size_t at;
    if ((rc = group_find(&g, number & 15, &old, &at)) != 0)
        return rc;
    size_t at_end = (size_t)((const uint8_t *)old.mv_data - (const uint8_t *)g.mv_data) + old.mv_size;
    return group_write(s, txn, group, &g, at, at_end, NULL, 0, 0);
}

int store_cnum_replace(pdqm_store *s, MDB_txn *txn, uint32_t number, const void *rec,
                       size_t len)
{
    uint32_t group = number >> CNUM_SHIFT;
    MDB_val k = { 4, &group }, g, old;
    int rc = mdb_get(txn, s->db.cnum, &k, &g);
    if (rc != 0)
        return rc;
    size_t at;
    if ((rc = group_find(&g, number & 15, &old, &at)) != 0)
        return rc;
    size_t at_end = (size_t)((const uint8_t *)old.mv_data - (const uint8_t *)g.mv_data) + old.mv_size;
    uint8_t *entry = malloc(len + 11);
    if (entry == NULL)
        return ENOMEM;
    uint8_t *p = entry;
    *p++ = (uint8_t)(number & 15);
    p = varint_put(p, len);
    memcpy(p, rec, len);
    p += len;
    rc = group_write(s, txn, group, &g, at, at_end, entry, (size_t)(p - entry), 0);
    free(entry);
    return rc;
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
    int rc = mdb_cursor_open(txn, s->db.cnum, &it->cur);
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
    int rc = mdb_cursor_open(txn, s->db.cnum, &it->cur);
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
    int rc = mdb_cursor_open(txn, s->db.cnum, &cur);
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

/* FNV-1a, 64 bits, over the bank id and the content id.  Its top 16 bits
 * are the bucket in cindex and the next 16 the fingerprint, so ordering
 * keys by their top 32 bits is the order of cindex. */
uint64_t store_content_key(uint32_t bank, const char *id, size_t len)
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

/* The bucket of a key, and the 6-byte duplicate of a content item in it. */
static uint32_t cindex_entry(uint64_t key, uint32_t number, uint8_t dup[6])
{
    dup[0] = (uint8_t)(key >> 40);
    dup[1] = (uint8_t)(key >> 32);
    put_be32(dup + 2, number);
    return (uint32_t)(key >> 48);
}

int store_cindex_find(pdqm_store *s, MDB_txn *txn, uint64_t key, uint32_t bank,
                      const char *id, size_t len, uint32_t *number, MDB_val *value)
{
    uint8_t want[6];
    uint32_t bucket = cindex_entry(key, 0, want);
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db.cindex, &cur);
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
        if ((rc = store_cnum_get(s, txn, n, &cv)) != 0 ||
            (rc = store_content_read(s, txn, n, &cv, &c)) != 0)
            break;
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

int store_cindex_put_bucket(pdqm_store *s, MDB_txn *txn, uint32_t bucket, const uint64_t *entries,
                            size_t n, uint8_t *scratch)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = entries[i] & ~(uint64_t)0xffffffffu;
        (void)cindex_entry(key, (uint32_t)entries[i], scratch + 6 * i);
    }
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db.cindex, &cur);
    if (rc != 0)
        return rc;
    /* Appended when every new entry sorts after the bucket's last. */
    MDB_val k = { 4, &bucket }, d;
    unsigned flags = MDB_MULTIPLE;
    rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) {
        flags |= MDB_APPENDDUP;
        rc = 0;
    } else if (rc == 0 && (rc = mdb_cursor_get(cur, &k, &d, MDB_LAST_DUP)) == 0 &&
               d.mv_size == 6 && memcmp(d.mv_data, scratch, 6) < 0) {
        flags |= MDB_APPENDDUP;
    }
    if (rc == 0) {
        MDB_val kk = { 4, &bucket }, dd[2] = { { 6, scratch }, { n, NULL } };
        rc = mdb_cursor_put(cur, &kk, dd, flags);
        if (rc == 0 && dd[1].mv_size != n)
            rc = EIO;
    }
    mdb_cursor_close(cur);
    return rc;
}

int store_content_index_put(pdqm_store *s, MDB_txn *txn, uint64_t key, uint32_t number)
{
    uint8_t dup[6];
    uint32_t bucket = cindex_entry(key, number, dup);
    MDB_val k = { 4, &bucket }, d = { 6, dup };
    return mdb_put(txn, s->db.cindex, &k, &d, MDB_NODUPDATA);
}

int store_bank_list_append(pdqm_store *s, MDB_txn *txn, uint32_t bank,
                           const uint32_t *numbers, size_t n)
{
    if (n == 0)
        return 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db.cbank, &cur);
    if (rc != 0)
        return rc;
    /* Numbers only grow: they go after the bank's last, all in one put. */
    MDB_val k = { 4, &bank }, d[2] = { { 4, (void *)numbers }, { n, NULL } };
    rc = mdb_cursor_put(cur, &k, d, MDB_MULTIPLE | MDB_APPENDDUP);
    if (rc == 0 && d[1].mv_size != n)
        rc = EIO;
    mdb_cursor_close(cur);
    return rc;
}

int store_content_unlink(pdqm_store *s, MDB_txn *txn, uint32_t bank, const char *id,
                         size_t len, uint32_t number, int pending)
{
    uint8_t dup[6];
    uint32_t bucket = cindex_entry(store_content_key(bank, id, len), number, dup);
    MDB_val k = { 4, &bucket }, d = { 6, dup };
    int rc = mdb_del(txn, s->db.cindex, &k, &d);
    if (rc == MDB_NOTFOUND && pending)
        rc = 0;   /* not in cindex until a pass indexes it */
    if (rc != 0)
        return rc;
    MDB_val bk = { 4, &bank }, bd = { 4, &number };
    return mdb_del(txn, s->db.cbank, &bk, &bd);
}

int store_bank_numbers(pdqm_store *s, MDB_txn *txn, uint32_t bank, uint32_t **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db.cbank, &cur);
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
/* Meta                                                                 */

int store_meta_get_sized(pdqm_store *s, MDB_txn *txn, const char *name, void *out, size_t size)
{
    MDB_val k = { strlen(name), (void *)name }, v;
    int rc = mdb_get(txn, s->db.meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(out, 0, size);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (v.mv_size != size)
        return MDB_CORRUPTED;
    memcpy(out, v.mv_data, size);
    return 0;
}

int store_meta_put_sized(pdqm_store *s, MDB_txn *txn, const char *name, const void *value,
                         size_t size)
{
    MDB_val k = { strlen(name), (void *)name }, v = { size, (void *)value };
    return mdb_put(txn, s->db.meta, &k, &v, 0);
}

int store_meta_get(pdqm_store *s, MDB_txn *txn, const char *name, uint32_t *out)
{
    return store_meta_get_sized(s, txn, name, out, sizeof *out);
}

int store_meta_put(pdqm_store *s, MDB_txn *txn, const char *name, uint32_t value)
{
    return store_meta_put_sized(s, txn, name, &value, sizeof value);
}

int store_meta_read(pdqm_store *s, MDB_txn *txn, meta_vals *m)
{
    int rc;
    if ((rc = store_meta_get(s, txn, "next_entry", &m->next_entry)) ||
        (rc = store_meta_get(s, txn, "next_bank", &m->next_bank)) ||
        (rc = store_meta_get(s, txn, "pending_from", &m->pending_from)) ||
        (rc = store_meta_get(s, txn, "pending_to", &m->pending_to)) ||
        (rc = store_meta_get(s, txn, "pgen", &m->pgen)) ||
        (rc = store_meta_get(s, txn, "pass_window", &m->pass_window)) ||
        (rc = store_meta_get(s, txn, "pass_to", &m->pass_to)) ||
        (rc = store_meta_get(s, txn, "pass_key", &m->pass_key)) ||
        (rc = store_meta_get(s, txn, "pass_deletes", &m->pass_deletes)))
        return rc;
    MDB_val k = { 9, "wide_from" }, v;
    rc = mdb_get(txn, s->db.meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        m->wide_from = WIDE_NONE;
        return 0;
    }
    if (rc == 0 && v.mv_size != 4)
        rc = MDB_CORRUPTED;
    if (rc == 0)
        memcpy(&m->wide_from, v.mv_data, 4);
    return rc;
}

int store_meta_write(pdqm_store *s, MDB_txn *txn, const meta_vals *m)
{
    int rc;
    if ((rc = store_meta_put(s, txn, "next_entry", m->next_entry)) ||
        (rc = store_meta_put(s, txn, "next_bank", m->next_bank)) ||
        (rc = store_meta_put(s, txn, "pending_from", m->pending_from)) ||
        (rc = store_meta_put(s, txn, "pending_to", m->pending_to)) ||
        (m->pass_window && (rc = store_meta_put(s, txn, "pass_window", m->pass_window))) ||
        (m->wide_from != WIDE_NONE && (rc = store_meta_put(s, txn, "wide_from", m->wide_from))))
        return rc;
    /* A pass in steps: absent once it ends. */
    static const char *const pass_names[] = { "pass_to", "pass_key", "pass_deletes" };
    const uint32_t pass_vals[] = { m->pass_to, m->pass_key, m->pass_deletes };
    for (int i = 0; i < 3; i++) {
        if (m->pass_to) {
            rc = store_meta_put(s, txn, pass_names[i], pass_vals[i]);
        } else {
            MDB_val k = { strlen(pass_names[i]), (void *)pass_names[i] };
            rc = mdb_del(txn, s->db.meta, &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
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
    int rc = mdb_get(txn, s->db.banks, &k, &v);
    if (rc != 0)
        return rc;
    if (v.mv_size != sizeof *out)
        return MDB_CORRUPTED;
    memcpy(out, v.mv_data, sizeof *out);
    return 0;
}

/* Find bank `name` in a read transaction, as a status. */
pdqm_status store_bank_for_read(pdqm_store *s, MDB_txn *txn, const char *name, bank_rec *b,
                                pdqm_error *err)
{
    int rc = store_bank_find(s, txn, name, b);
    if (rc == MDB_NOTFOUND)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", name);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the bank");
    return PDQM_OK;
}

int store_bank_put(pdqm_store *s, MDB_txn *txn, const char *name, const bank_rec *b)
{
    MDB_val k = { strlen(name), (void *)name }, v = { sizeof *b, (void *)b };
    return mdb_put(txn, s->db.banks, &k, &v, 0);
}

pdqm_status store_bank_table(pdqm_store *s, MDB_txn *txn, bank_table *t, pdqm_error *err)
{
    memset(t, 0, sizeof *t);
    MDB_stat st;
    meta_vals m;
    int rc = mdb_stat(txn, s->db.banks, &st);
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
    rc = mdb_cursor_open(txn, s->db.banks, &cur);
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

pdqm_status store_bank_table_new(pdqm_store *s, MDB_txn *txn, bank_table **out,
                                 pdqm_error *err)
{
    *out = NULL;
    bank_table *t = malloc(sizeof *t);
    if (t == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    pdqm_status st = store_bank_table(s, txn, t, err);
    if (st != PDQM_OK) {
        free(t);
        return st;
    }
    *out = t;
    return PDQM_OK;
}

void store_bank_table_delete(bank_table *t)
{
    if (t == NULL)
        return;
    store_bank_table_free(t);
    free(t);
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

/* ------------------------------------------------------------------ */
/* Records                                                              */

int store_content_read(pdqm_store *s, MDB_txn *txn, uint32_t number, const MDB_val *v,
                       content_view *out)
{
    if (store_content_decode(number, v, out) != 0)
        return MDB_CORRUPTED;
    if (!out->id_from_hash)
        return 0;
    record r;
    uint32_t block = UINT32_MAX;
    MDB_val cached = { 0, NULL };
    int rc = store_read_record(s, txn, number, &r, &block, &cached);
    if (rc != 0)
        return rc;
    store_content_name_by_hash(out, r.hash);
    return 0;
}

int store_read_record(pdqm_store *s, MDB_txn *txn, uint32_t id, record *out,
                      uint32_t *cached_block, MDB_val *cached)
{
    uint32_t block = id / RECORDS_PER_BLOCK;
    if (*cached_block != block || cached->mv_data == NULL) {
        MDB_val k = { 4, &block };
        int rc = mdb_get(txn, s->db.records, &k, cached);
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
