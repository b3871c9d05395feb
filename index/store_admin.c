/*
 * store_admin.c - the administrative reads: stats, verify (every
 * invariant), compact.
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
/* Stats                                                                */

static pdqm_status do_stats(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    pdqm_store_stats *out = arg;
    memset(out, 0, sizeof *out);
    bank_table *t;
    pdqm_status st = store_bank_table_new(s, txn, &t, err);
    if (st != PDQM_OK)
        return st;
    out->banks = t->count;
    for (size_t i = 0; i < t->count; i++) {
        out->contents += t->recs[i].contents;
    }
    out->hashes = t->hashes;
    store_bank_table_delete(t);
    meta_vals m;
    int rc = store_meta_read(s, txn, &m);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the store");
    out->entries_ever = m.next_entry;
    out->pending = m.pending_to - m.pending_from;
    out->pending_limit = store_pass_window(&m);
    out->wide_from = m.wide_from == WIDE_NONE ? -1 : (int64_t)m.wide_from;
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
    uint32_t schema = 0;
    rc = store_meta_get(s, txn, "schema", &schema);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot read the store's schema");
    out->schema = (int)schema;
    /* The last item added: the last record of the last group. */
    MDB_cursor *cur;
    MDB_val k, g;
    if ((rc = mdb_cursor_open(txn, s->db.cnum, &cur)) != 0)
        return store_lmdb_error(err, rc, "cannot read the store");
    rc = mdb_cursor_get(cur, &k, &g, MDB_LAST);
    if (rc == 0 && k.mv_size == 4) {
        /* (The iterator's cursor is ours, at the last group: past it,
         * store_cnum_next ends.) */
        cnum_iter it = { cur, g.mv_data, (const uint8_t *)g.mv_data + g.mv_size, 0 };
        memcpy(&it.group, k.mv_data, 4);
        uint32_t number = 0, n;
        MDB_val rec = { 0, NULL }, r;
        while (store_cnum_next(&it, &n, &r) == 0) {
            number = n;
            rec = r;
        }
        content_view c;
        if (rec.mv_data && store_content_decode(number, &rec, &c) == 0)
            out->newest_added = c.head.added;
    }
    mdb_cursor_close(cur);
    return PDQM_OK;
}

pdqm_status pdqm_store_stats_get(pdqm_store *store, pdqm_store_stats *stats,
                                 pdqm_error *err)
{
    return store_read(store, do_stats, stats, err);
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
    bank_table *t;
    pdqm_status st = store_bank_table_new(s, txn, &t, err);
    if (st != PDQM_OK)
        return st;
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
        if (store_content_read(s, txn, number, &v, &c) != 0) {
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
        if (mdb_cursor_open(txn, s->db.cbank, &bc) == 0) {
            if (mdb_cursor_get(bc, &bkey, &bval, MDB_GET_BOTH) != 0)
                problem(a, "content %u: missing from its bank's list", number);
            mdb_cursor_close(bc);
        }
        uint8_t dk[36];
        MDB_cursor *dc;
        if (c.sha256 && mdb_cursor_open(txn, s->db.sha256, &dc) == 0) {
            memcpy(dk, c.sha256, 32);
            put_be32(dk + 32, c.head.bank);
            MDB_val sk = { 36, dk }, sv = { 4, &nv };
            if (mdb_cursor_get(dc, &sk, &sv, MDB_GET_BOTH) != 0)
                problem(a, "content %u: its SHA-256 is not indexed", number);
            mdb_cursor_close(dc);
        }
        if (c.md5 && mdb_cursor_open(txn, s->db.md5, &dc) == 0) {
            memcpy(dk, c.md5, 16);
            put_be32(dk + 16, c.head.bank);
            MDB_val mk = { 20, dk }, mv = { 4, &nv };
            if (mdb_cursor_get(dc, &mk, &mv, MDB_GET_BOTH) != 0)
                problem(a, "content %u: its MD5 is not indexed", number);
            mdb_cursor_close(dc);
        }
        /* An item with no hash (an MD5 alone) holds its number's entry,
         * never live; it must have the MD5 that finds it. */
        uint64_t end = (uint64_t)c.head.first_entry + c.head.n_hashes;
        if ((c.head.n_hashes == 0 ? (uint64_t)c.head.first_entry + 1 : end) > m.next_entry) {
            problem(a, "content %u: entries %u..%llu outside the %u handed out", number,
                    c.head.first_entry, (unsigned long long)end, m.next_entry);
            continue;
        }
        if (c.head.n_hashes == 0 && c.md5 == NULL)
            problem(a, "content %u: no hash and no MD5", number);
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
    if ((rc = mdb_cursor_open(txn, s->db.postings, &cur)) != 0)
        goto lmdb_fail;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t key32, id, prev = 0;
        memcpy(&key32, k.mv_data, 4);
        const int wide = key_is_wide(key32);
        size_t n = k.mv_size == 4 ? posting_count(key32, v.mv_size) : 0;
        if (key32 >= NKEYS_ALL || n == 0 || n == (size_t)-1) {
            problem(a, "posting %08x: a value of %zu bytes", key32, v.mv_size);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            memcpy(&id, (const uint8_t *)v.mv_data + 4 * i, 4);
            if (i > 0 && id <= prev)
                problem(a, "posting %08x: ids out of order at %u", key32, id);
            prev = id;
            if (id >= m.next_entry || !(live[id / 8] & (1u << (id % 8)))) {
                problem(a, "posting %08x -> entry %u, which is not live", key32, id);
                continue;
            }
            if ((id >= m.wide_from) != wide) {
                problem(a, "posting %08x -> entry %u, which is posted %s", key32, id,
                        wide ? "narrow (below wide_from)" : "wide (from wide_from on)");
                continue;
            }
            if (!entry_posted(&m, id, key32)) {
                problem(a, "posting %08x -> entry %u, which is pending (not posted there)",
                        key32, id);
                continue;
            }
            record r;
            uint32_t want;
            uint8_t suffix = 0;
            int ok = verify_record(s, txn, blocks, id, &r) == 0;
            if (ok) {
                int slot = (int)((key32 - (wide ? WIDE_KEY0 : 0)) >> 16);
                want = wide ? wide_key(r.hash, slot, &suffix) : slot_key(r.hash, slot);
                ok = want == key32 &&
                     (!wide || ((const uint8_t *)v.mv_data)[4 * n + i] == suffix);
            }
            if (!ok)
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

    /* 2b. Every live, indexed entry is posted in every slot of its layout.
     * A posting counted above is in its slot's key (the key names the
     * slot) and ids within a key ascend strictly, so 16 (narrow) or 11
     * (wide) means one in each slot. */
    for (uint32_t id = 0; id < m.next_entry; id++) {
        if (!(live[id / 8] & (1u << (id % 8))))
            continue;
        int slots = id >= m.wide_from ? WIDE_SLOTS : SLOTS;
        if (id >= m.pending_from && id < m.pending_to) {
            /* Pending: posted under none of its keys, or (a pass in steps
             * under way) under those below pass_key. */
            slots = 0;
            record r;
            uint32_t keys[SLOTS];
            uint8_t sx[SLOTS];
            if (m.pass_to && id < m.pass_to && verify_record(s, txn, blocks, id, &r) == 0) {
                int nk = entry_keys(r.hash, id >= m.wide_from, keys, sx);
                for (int j = 0; j < nk; j++)
                    slots += keys[j] < m.pass_key;
            }
        }
        if (posted[id] != slots)
            problem(a, "entry %u: posted in %u of its %d slots", id, posted[id], slots);
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
    if (m.pass_to && (m.pass_to <= m.pending_from || m.pass_to > m.pending_to ||
                      m.pass_key > NKEYS_ALL))
        problem(a, "a pass in steps to entry %u at key %u, outside the pending range %u..%u",
                m.pass_to, m.pass_key, m.pending_from, m.pending_to);
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
    store_bank_table_delete(t);
    return st;
}

pdqm_status pdqm_store_verify(pdqm_store *store, uint64_t *problems, pdqm_error *err)
{
    verify_args a = { 0, err };
    pdqm_status st = store_read(store, do_verify, &a, err);
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
    pthread_rwlock_rdlock(&store->tx.resize_lock);
    int rc = mdb_env_copyfd2(store->env, fd, MDB_CP_COMPACT);
    pthread_rwlock_unlock(&store->tx.resize_lock);
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    close(fd);
    if (rc != 0) {
        unlink(path);
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot write %s: %s", path, mdb_strerror(rc));
    }
    return PDQM_OK;
}
