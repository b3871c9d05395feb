/*
 * store_add.c - adding content, and the indexing pass of deferred adds.
 *
 * An add batch is one write transaction: content keys and records, the
 * digests, the hashes' records appended to the records array, the bank
 * counts, and (unless deferred) the 16 postings of every hash.  Like the
 * postings (sorted by key), the content keys are looked up and written in
 * cindex's order, and content records a group at a time, so that LMDB
 * touches each page once a batch.  Deferred hashes form
 * the pending range, always the last entries (index/README.md).
 */
#define _POSIX_C_SOURCE 200809L
#include "store_postings.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    size_t len = a->content_id ? strlen(a->content_id) : 1;   /* NULL: named by number */
    if (len == 0 || len > PDQM_CONTENT_ID_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "item %zu: a content id is 1 to %d bytes", index + 1,
                              PDQM_CONTENT_ID_MAX);
    if (a->metadata && strlen(a->metadata) > PDQM_METADATA_MAX)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "item %zu: metadata is over %d bytes", index + 1,
                              PDQM_METADATA_MAX);
    if ((a->n_hashes == 0 && a->md5 == NULL) || (a->n_hashes && a->hashes == NULL) ||
        a->n_hashes > PDQM_MAX_HASHES_PER_CONTENT)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "item %zu: a content item has 1 to %d hashes (or none, with "
                              "an MD5), not %zu", index + 1, PDQM_MAX_HASHES_PER_CONTENT,
                              a->n_hashes);
    pdqm_content_changes attrs = { 1, a->disabled_until, 1, a->note };
    pdqm_error why;
    if (store_content_changes_check(&attrs, &why) != PDQM_OK)
        return pdqm_error_set(err, why.status, "item %zu: %s", index + 1, why.message);
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


typedef struct add_args {
    const pdqm_add *adds;
    size_t n;
    pdqm_add_outcome *outcomes;
    uint32_t *numbers;        /* out (or each add's own number pointer) */
    int deferred;
    uint32_t pending_after;   /* out: entries pending once committed */
    uint32_t window_after;    /* out: the pass window once committed */
    uint32_t entries_before, entries_after;   /* out: next_entry before and after */
} add_args;

/* The pass window, set by large adds and by passes (below, with the adds
 * of small batches). */
static int set_pass_window(pdqm_store *s, MDB_txn *txn, meta_vals *m, pdqm_error *err);

typedef struct index_args {
    uint64_t indexed;
    int step;                 /* in: a step at most of a pass in steps (see below) */
    int left;                 /* out: a pass in steps is under way still */
} index_args;

/* The size of store from which new entries are posted wide (see
 * store_int.h): 16M live hashes, where the narrow layout's candidates
 * (about 66,000 a query) start to cost more than the wide layout's
 * probes.  PDQM_WIDE_AT (a count of hashes) sets another, for tests and
 * for measuring. */
#define WIDE_AT ((uint64_t)16 << 20)

/* A count from the environment variable name (for tests and measuring),
 * or dflt when it is unset or not a number. */
static uint64_t env_count(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    if (v && *v) {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end == '\0')
            return n;
    }
    return dflt;
}

static uint64_t wide_at(void)
{
    return env_count("PDQM_WIDE_AT", WIDE_AT);
}

/* Entries from `first` on are about to be posted, in a store that will
 * hold its live hashes and `adding` more: once that reaches wide_at(),
 * they and every later entry are posted wide (m->wide_from; kept). */
static int choose_layout(pdqm_store *s, MDB_txn *txn, meta_vals *m, uint64_t adding,
                         uint32_t first, pdqm_error *err)
{
    if (m->wide_from != WIDE_NONE)
        return 0;
    bank_table t;
    if (store_bank_table(s, txn, &t, err) != PDQM_OK)
        return -1;
    uint64_t live = t.hashes + adding;
    store_bank_table_free(&t);
    if (live >= wide_at())
        m->wide_from = first;
    return 0;
}
static int do_index_pending(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err);

/* An add of a batch, in the order of its key in cindex. */
typedef struct add_key {
    uint64_t key;
    uint32_t i;               /* its index in the batch */
} add_key;

/* What a batch knows of each of its adds. */
typedef struct add_state {
    uint32_t leader;          /* the batch's first add of the same (bank, id) */
    uint32_t number;          /* its content number, once it is added */
    uint16_t bank;            /* its bank, an index in the batch's banks */
    uint8_t stored;           /* (a leader's) the store held its id already */
    uint8_t added;            /* (a leader's) an add of its id is added */
    uint8_t link;             /* this add is added: its cindex entry is due */
    uint8_t by_number;        /* no content id: named by its number */
} add_state;

/* Sort by the top 32 bits of key, stable (adds of one key stay in the
 * batch's order): four passes of 8 bits, or an insertion sort when short. */
static int sort_add_keys(add_key *a, size_t n)
{
    if (n < 64) {
        for (size_t i = 1; i < n; i++) {
            add_key x = a[i];
            size_t j = i;
            for (; j > 0 && a[j - 1].key >> 32 > x.key >> 32; j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
        return 0;
    }
    add_key *tmp = malloc(n * sizeof *tmp);
    if (tmp == NULL)
        return ENOMEM;
    size_t count[4][256] = { { 0 } };
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < 4; p++)
            count[p][(a[i].key >> (32 + 8 * p)) & 0xff]++;
    add_key *from = a, *to = tmp;
    for (int p = 0; p < 4; p++) {
        size_t at = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = count[p][b];
            count[p][b] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            to[count[p][(from[i].key >> (32 + 8 * p)) & 0xff]++] = from[i];
        add_key *t = from;
        from = to;
        to = t;
    }
    /* Four passes: the result is back in a. */
    free(tmp);
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Name an item of the batch by its number: "N", or "N.1", "N.2"... when
 * the bank holds that id or the batch names an item so (named, sorted
 * holds the keys of the batch's named adds).  Writes the name into id
 * (room for 32) and its key into *key. */
static int name_by_number(pdqm_store *s, MDB_txn *txn, uint32_t bank, uint32_t number,
                          const uint64_t *named, size_t n_named, char *id, uint64_t *key)
{
    for (unsigned k = 0;; k++) {
        int len = k ? snprintf(id, 32, "%u.%u", number, k) : snprintf(id, 32, "%u", number);
        *key = store_content_key(bank, id, (size_t)len);
        if (n_named && bsearch(key, named, n_named, sizeof *named, compare_u64))
            continue;
        uint32_t other;
        int rc = store_content_find_key(s, txn, NULL, *key, bank, id, (size_t)len, &other, NULL);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc != 0)
            return rc;
    }
}

/* An add batch, in three walks: which items the store or the batch holds
 * already (in cindex's order), the new items' records (in the batch's
 * order, which sets their numbers), and their cindex entries (in cindex's
 * order again).  Walking cindex in its order touches each of its pages
 * once a batch: walked in the batch's order, the random keys of
 * hash-named items went to a page at random each. */
static int do_add(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    const add_args *a = arg;
    meta_vals m;
    int rc = store_meta_read(s, txn, &m);
    if (rc != 0)
        return rc;
    /* Pending entries must be the last ones (the pending range is one
     * range, from pending_from to the end).  An add that indexes its
     * entries at once first indexes what is pending, in this same
     * transaction: no other writer can come between the two. */
    if (!a->deferred && m.pending_to > m.pending_from) {
        index_args ia = { 0 };
        if ((rc = do_index_pending(s, txn, &ia, err)) != 0 ||
            (rc = store_meta_read(s, txn, &m)) != 0)
            return rc;
    }
    /* The pending items are found by name through the handle's table, not
     * cindex: make it agree with this transaction. */
    store_pnames_sync(s, &m);

    /* The banks this batch touches, with their running counts. */
    size_t nb = 0, nb_cap = 0;
    struct batch_bank { const char *name; bank_rec rec; } *banks = NULL;
    record *recs = NULL;
    uint64_t *pairs = NULL;
    uint8_t *buf = NULL;
    add_key *order = NULL;
    add_state *st = NULL;
    uint32_t *numbers = NULL;
    uint64_t *named_keys = NULL;
    cnum_writer cw = { 0 };
    size_t total = 0, n_order = 0;
    for (size_t i = 0; i < a->n; i++)   /* an item with no hash takes an entry */
        total += a->adds[i].n_hashes ? a->adds[i].n_hashes : 1;
    if ((uint64_t)m.next_entry + total > UINT32_MAX - 1) {
        pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "the store is full (2^32 hashes)");
        return -1;
    }
    recs = malloc((total ? total : 1) * sizeof *recs);
    pairs = a->deferred ? NULL : malloc((total ? total : 1) * SLOTS * sizeof *pairs);
    size_t buf_cap = 64 * 1024, ts_cap = 0;
    uint8_t *ts = NULL;
    buf = malloc(buf_cap);
    order = malloc((a->n ? a->n : 1) * sizeof *order);
    st = calloc(a->n ? a->n : 1, sizeof *st);
    named_keys = malloc((a->n ? a->n : 1) * sizeof *named_keys);
    if (!recs || (!a->deferred && !pairs) || !buf || !order || !st || !named_keys) {
        rc = ENOMEM;
        goto done;
    }

    /* Each add's bank, and its key. */
    for (size_t i = 0; i < a->n; i++) {
        const pdqm_add *ad = &a->adds[i];
        size_t j = 0;
        while (j < nb && strcmp(banks[j].name, ad->bank) != 0)
            j++;
        if (j == nb) {
            if (nb == nb_cap) {
                nb_cap = nb_cap ? nb_cap * 2 : 8;
                struct batch_bank *grown = realloc(banks, nb_cap * sizeof *grown);
                if (grown == NULL) {
                    rc = ENOMEM;
                    goto done;
                }
                banks = grown;
            }
            rc = store_bank_find(s, txn, ad->bank, &banks[nb].rec);
            if (rc == MDB_NOTFOUND) {
                pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", ad->bank);
                rc = -1;
            }
            if (rc != 0)
                goto done;
            banks[nb++].name = ad->bank;
        }
        st[i].bank = (uint16_t)j;
        st[i].leader = (uint32_t)i;
        if (ad->content_id == NULL) {
            st[i].by_number = 1;   /* named in walk 2, once it has its number */
            continue;
        }
        order[n_order].i = (uint32_t)i;
        order[n_order].key = store_content_key(banks[j].rec.id, ad->content_id,
                                               strlen(ad->content_id));
        n_order++;
    }
    if ((rc = sort_add_keys(order, n_order)) != 0)
        goto done;
    /* The keys in full order: sorted by their top 32 bits already, so an
     * insertion sort only mends the rare ties. */
    for (size_t k = 0; k < n_order; k++)
        named_keys[k] = order[k].key;
    sort_nearly_u64(named_keys, n_order);

    /* 1. Which ids the store holds, and which the batch repeats (an id's
     * adds are next to each other in this order, the first one first). */
    enum { AHEAD = 16 };
    for (size_t k = 0, run = 0; k < n_order; k++) {
        uint32_t i = order[k].i;
        const pdqm_add *ad = &a->adds[i];
        if (k + AHEAD < n_order) {
            /* Names and table slots a few items on, in flight meanwhile. */
            __builtin_prefetch(a->adds[order[k + AHEAD].i].content_id);
            if (m.pending_to > m.pending_from)
                store_pnames_prefetch(s, order[k + AHEAD].key);
        }
        if (k == 0 || order[k].key >> 32 != order[k - 1].key >> 32)
            run = k;
        st[i].leader = i;
        for (size_t j = run; j < k; j++) {
            uint32_t other = order[j].i;
            if (st[other].leader == other && st[other].bank == st[i].bank &&
                strcmp(a->adds[other].content_id, ad->content_id) == 0) {
                st[i].leader = other;
                break;
            }
        }
        if (st[i].leader != i)
            continue;
        uint32_t existing;
        rc = store_content_find_key(s, txn, &m, order[k].key, banks[st[i].bank].rec.id,
                                    ad->content_id, strlen(ad->content_id), &existing, NULL);
        if (rc == 0) {
            st[i].stored = 1;
            st[i].number = existing;
        } else if (rc != MDB_NOTFOUND) {
            goto done;
        }
    }
    rc = 0;

    /* 2. The new items, in the batch's order, posted in the layout of a
     * store of the live hashes it will hold. */
    const uint32_t first_new = m.next_entry;
    if (!a->deferred && (rc = choose_layout(s, txn, &m, total, first_new, err)) != 0)
        goto done;
    size_t n_recs = 0, n_pairs = 0;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < a->n; i++) {
        const pdqm_add *ad = &a->adds[i];
        bank_rec *bank = &banks[st[i].bank].rec;
        add_state *lead = &st[st[i].leader];
        uint32_t *number_out = a->numbers ? &a->numbers[i] : ad->number;
        if (lead->stored || lead->added) {
            if (a->outcomes)
                a->outcomes[i] = PDQM_ADD_EXISTS;
            if (number_out)
                *number_out = lead->number;
            continue;
        }
        uint8_t sha[32] = { 0 }, md5[16] = { 0 };
        uint8_t dkey[36];
        if (ad->md5)
            parse_hex(ad->md5, md5, 16);
        if (ad->sha256) {
            parse_hex(ad->sha256, sha, 32);
            memcpy(dkey, sha, 32);
            put_be32(dkey + 32, bank->id);
            MDB_val sk = { 36, dkey }, sv;
            rc = mdb_get(txn, s->db.sha256, &sk, &sv);
            if (rc == 0) {
                if (a->outcomes)
                    a->outcomes[i] = PDQM_ADD_SAME_FILE;
                if (number_out && sv.mv_size == 4)
                    memcpy(number_out, sv.mv_data, 4);
                continue;
            }
            if (rc != MDB_NOTFOUND)
                goto done;
        }

        uint32_t first = m.next_entry, number = first;
        m.next_entry += ad->n_hashes ? (uint32_t)ad->n_hashes : 1;
        MDB_val nv = { 4, &number };
        lead->added = 1;
        st[i].link = 1;
        st[i].number = number;
        if (number_out)
            *number_out = number;
        const char *content_id = ad->content_id;
        char by_number[32];
        if (st[i].by_number) {
            /* Its id, and its entry in cindex now: no other add of the
             * batch can name it (name_by_number avoids their ids). */
            uint64_t key;
            if ((rc = name_by_number(s, txn, bank->id, number, named_keys, n_order, by_number,
                                     &key)) != 0 ||
                (!a->deferred && (rc = store_content_index_put(s, txn, key, number)) != 0))
                goto done;
            content_id = by_number;
        }
        size_t id_len = strlen(content_id);

        /* The content record. */
        int has_ts = 0;
        for (size_t h = 0; h < ad->n_hashes; h++)
            if (ad->hashes[h].timestamp != 0.0)
                has_ts = 1;
        if (has_ts && ad->n_hashes > ts_cap) {
            uint8_t *grown = realloc(ts, ad->n_hashes * 8);
            if (grown == NULL) {
                rc = ENOMEM;
                goto done;
            }
            ts = grown;
            ts_cap = ad->n_hashes;
        }
        if (has_ts)
            for (size_t k = 0; k < ad->n_hashes; k++)
                memcpy(ts + 8 * k, &ad->hashes[k].timestamp, 8);
        content_view cv = {
            .head = { .bank = bank->id, .first_entry = first,
                      .n_hashes = (uint32_t)ad->n_hashes, .kind = (uint32_t)ad->kind,
                      .added = ad->added > 0 ? ad->added : now,
                      .id_len = (uint32_t)id_len,
                      .meta_len = ad->metadata ? (uint32_t)strlen(ad->metadata) : 0,
                      .disabled_until = ad->disabled_until,
                      .note_len = ad->note ? (uint32_t)strlen(ad->note) : 0 },
            .content_id = content_id,
            .first_hash = ad->n_hashes ? &ad->hashes[0].hash : NULL,
            .metadata = ad->metadata,
            .note = ad->note && ad->note[0] ? ad->note : NULL,
            .sha256 = ad->sha256 ? sha : NULL,
            .md5 = ad->md5 ? md5 : NULL,
            .timestamps = has_ts ? ts : NULL,
        };
        size_t need = store_content_bound(&cv);
        if (need > buf_cap) {
            uint8_t *grown = realloc(buf, need);
            if (grown == NULL) {
                rc = ENOMEM;
                goto done;
            }
            buf = grown;
            buf_cap = need;
        }
        size_t len = store_content_encode(buf, &cv);
        if ((rc = store_cnum_writer_add(s, txn, &cw, number, buf, len)) != 0)
            goto done;
        if (ad->sha256) {
            MDB_val sk = { 36, dkey };
            if ((rc = mdb_put(txn, s->db.sha256, &sk, &nv, 0)) != 0)
                goto done;
        }
        if (ad->md5) {
            memcpy(dkey, md5, 16);
            put_be32(dkey + 16, bank->id);
            MDB_val mk = { 20, dkey };
            if ((rc = mdb_put(txn, s->db.md5, &mk, &nv, 0)) != 0)
                goto done;
        }

        for (size_t k = 0; k < ad->n_hashes; k++) {
            record *r = &recs[n_recs++];
            memcpy(r->hash, ad->hashes[k].hash.w, 32);
            r->bank = (uint16_t)bank->id;
            r->quality = (uint8_t)ad->hashes[k].quality;
            r->reserved = 0;
            if (!a->deferred) {
                uint32_t keys[SLOTS];
                uint8_t suffixes[SLOTS];
                uint32_t id = first + (uint32_t)k;
                int nk = entry_keys(r->hash, id >= m.wide_from, keys, suffixes);
                for (int slot = 0; slot < nk; slot++)
                    pairs[n_pairs++] = POSTING(keys[slot], id, suffixes[slot]);
            }
        }
        if (ad->n_hashes == 0) {
            /* An item with no hash still takes an entry (its number), so
             * that records stay one array: a record never posted, outside
             * its item's hashes, so never live (as a deleted one). */
            record *r = &recs[n_recs++];
            memset(r, 0, sizeof *r);
            r->bank = (uint16_t)bank->id;
        }
        bank->contents += 1;
        bank->hashes += ad->n_hashes;
        if (a->outcomes)
            a->outcomes[i] = PDQM_ADDED;
    }

    if ((rc = store_cnum_writer_end(s, txn, &cw)) != 0)
        goto done;

    /* 3. Their entries in cindex, in its order (deferred items get theirs
     * from the pass that indexes them: store_copies.c says why), and in
     * their banks' lists (the batch's order is theirs). */
    for (size_t k = 0; k < n_order; k++)
        if (st[order[k].i].link && !a->deferred &&
            (rc = store_content_index_put(s, txn, order[k].key, st[order[k].i].number)) != 0)
            goto done;
    numbers = malloc((a->n ? a->n : 1) * sizeof *numbers);
    if (numbers == NULL) {
        rc = ENOMEM;
        goto done;
    }
    for (size_t j = 0; j < nb; j++) {
        size_t n_numbers = 0;
        for (size_t i = 0; i < a->n; i++)
            if (st[i].link && st[i].bank == j)
                numbers[n_numbers++] = st[i].number;
        if ((rc = store_bank_list_append(s, txn, banks[j].rec.id, numbers, n_numbers)) != 0)
            goto done;
    }

    if ((rc = store_put_records(s, txn, first_new, recs, n_recs)) != 0)
        goto done;
    if (!a->deferred) {
        if ((rc = store_put_postings(s, txn, pairs, n_pairs)) != 0)
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
    if (a->deferred && n_recs > 0) {
        /* The new pending names, to the handle's table, in key order. */
        size_t n_named = 0, n_linked = 0;
        for (size_t i = 0; i < a->n; i++)
            n_linked += st[i].link;
        for (size_t k = 0; k < n_order; k++)
            if (st[order[k].i].link) {
                named_keys[n_named] = order[k].key;
                numbers[n_named++] = st[order[k].i].number;
            }
        if (n_named == n_linked)   /* (else some are named by number: read later) */
            store_pnames_added(s, names_from(&m), first_new, m.next_entry, named_keys, numbers,
                               n_named);
    }
    if (!a->deferred && (rc = set_pass_window(s, txn, &m, err)) != 0)
        goto done;
    rc = store_meta_write(s, txn, &m);
    ((add_args *)arg)->pending_after = m.pending_to - m.pending_from;
    ((add_args *)arg)->entries_before = first_new;
    ((add_args *)arg)->entries_after = m.next_entry;
    ((add_args *)arg)->window_after = store_pass_window(&m);

done:
    free(cw.buf);             /* (zeroed by store_cnum_writer_end) */
    free(recs);
    free(pairs);
    free(buf);
    free(ts);
    free(banks);
    free(order);
    free(st);
    free(numbers);
    free(named_keys);
    return rc;
}

pdqm_status store_add_check(const pdqm_add *adds, size_t n, pdqm_error *err)
{
    for (size_t i = 0; i < n; i++) {
        pdqm_status st = check_add(&adds[i], i, err);
        if (st != PDQM_OK)
            return st;
    }
    return PDQM_OK;
}

int store_add_in(pdqm_store *s, MDB_txn *txn, const pdqm_add *adds, size_t n,
                 pdqm_add_outcome *outcomes, uint32_t *numbers, int deferred,
                 uint32_t *pending_after, uint32_t *window_after, pdqm_error *err)
{
    add_args a = { adds, n, outcomes, numbers, deferred, 0, 0, 0, 0 };
    int rc = n ? do_add(s, txn, &a, err) : 0;
    *pending_after = a.pending_after;
    *window_after = a.window_after;
    return rc;
}

static pdqm_status add_common(pdqm_store *store, const pdqm_add *adds, size_t n,
                              pdqm_add_outcome *outcomes, int deferred,
                              uint32_t *pending_after, uint32_t *window_after,
                              pdqm_error *err)
{
    pdqm_status st0 = store_add_check(adds, n, err);
    if (st0 != PDQM_OK)
        return st0;
    if (n == 0)
        return PDQM_OK;
    add_args a = { adds, n, outcomes, NULL, deferred, 0, 0, 0, 0 };
    pdqm_status st = store_write(store, do_add, &a, "cannot add to the store", err);
    /* A bulk load maps every page it writes as it goes: let go of them
     * every 4M entries (store_release_map). */
    if (st == PDQM_OK && deferred && a.entries_before >> 22 != a.entries_after >> 22)
        store_release_map(store);
    if (pending_after)
        *pending_after = a.pending_after;
    if (window_after)
        *window_after = a.window_after;
    return st;
}

/* Small batches (a service adding a few items at a time) are added like a
 * bulk load, unindexed: lookups find them by scanning, or through an index
 * in memory (store_copies.c).  Once a quarter of the store's live hashes
 * (between PENDING_MIN and PENDING_MAX) has gathered, one pass indexes
 * them all.  The count is taken by each pass and each large add, and kept
 * in meta: counting every bank at every small add would cost more, and
 * counting ids handed out instead would let a store that adds and deletes
 * stretch its window (and the memory of the pending index) far past its
 * size.
 * Indexing each small batch at once would rewrite 16 postings pages and
 * their parents a hash; a pass rewrites most postings pages whatever it
 * indexes, so its cost is spread over a number of hashes that grows with
 * the store.  PENDING_MAX bounds the scan of a one-off lookup (32 MiB, a
 * few ms). */
#define SMALL_BATCH 1024
#define PENDING_MIN 4096
#define PENDING_MAX 1048576

uint32_t store_pending_limit(uint64_t live)
{
    uint64_t limit = live / 4;
    return limit < PENDING_MIN ? PENDING_MIN : limit > PENDING_MAX ? PENDING_MAX : (uint32_t)limit;
}

uint32_t store_pass_window(const meta_vals *m)
{
    /* A store from before the window was kept: its ids handed out. */
    return m->pass_window ? m->pass_window : store_pending_limit(m->next_entry);
}

/* Set the window in m from txn's live hashes. */
static int set_pass_window(pdqm_store *s, MDB_txn *txn, meta_vals *m, pdqm_error *err)
{
    bank_table t;
    if (store_bank_table(s, txn, &t, err) != PDQM_OK)
        return -1;
    m->pass_window = store_pending_limit(t.hashes);
    store_bank_table_free(&t);
    return 0;
}

int store_add_is_small(const pdqm_add *adds, size_t n)
{
    size_t hashes = 0;
    for (size_t i = 0; i < n && hashes <= SMALL_BATCH; i++)
        hashes += adds[i].n_hashes;
    return hashes <= SMALL_BATCH;
}

pdqm_status pdqm_store_add(pdqm_store *store, const pdqm_add *adds, size_t n,
                           pdqm_add_outcome *outcomes, pdqm_error *err)
{
    if (store_add_is_small(adds, n)) {
        uint32_t pending = 0, window = 0;
        pdqm_status st = add_common(store, adds, n, outcomes, 1, &pending, &window, err);
        /* The add has committed whatever happens next; a failed indexing
         * pass loses nothing and is tried again by the next add. */
        if (st == PDQM_OK && pending >= window)
            store_pass_due(store);
        return st;
    }
    /* A large batch indexes at once (what is pending first, in the same
     * transaction: see do_add). */
    return add_common(store, adds, n, outcomes, 0, NULL, NULL, err);
}

pdqm_status pdqm_store_add_deferred(pdqm_store *store, const pdqm_add *adds,
                                    size_t n, pdqm_add_outcome *outcomes,
                                    pdqm_error *err)
{
    return add_common(store, adds, n, outcomes, 1, NULL, NULL, err);
}

/* ------------------------------------------------------------------ */
/* Indexing deferred loads                                              */

/* A pass whose new postings reach most keys rewrites most postings pages
 * whatever it does; merging key by key then also grows every value in
 * place, splitting pages all over the tree.  Cheaper to read the postings
 * whole, empty the database, and write every key back in order, appended:
 * full pages, written once.  Up to REBUILD_MAX_IDS postings (1 GiB of
 * memory for the copy), beyond which the merge it is. */
#define REBUILD_MAX_IDS ((size_t)256 << 20)

/* end[k] is where key k's new ids end in ids, and end[k-1] where they
 * begin.  Returns 0, or MDB_NOTFOUND when the postings are too large to
 * copy (the caller merges instead). */
static int rebuild_postings(pdqm_store *s, MDB_txn *txn, const uint32_t *end,
                            const uint32_t *ids)
{
    const size_t nkeys = (size_t)SLOTS << 16;   /* narrow keys only: see the caller */
    MDB_stat st;
    int rc = mdb_stat(txn, s->db.postings, &st);
    if (rc != 0)
        return rc;
    size_t bytes = (st.ms_leaf_pages + st.ms_overflow_pages) * (size_t)st.ms_psize;
    if (bytes / 4 > REBUILD_MAX_IDS)
        return MDB_NOTFOUND;
    uint32_t *old_end = calloc(nkeys, sizeof *old_end);
    uint32_t *old = malloc(bytes + 4);
    uint32_t *merged = NULL;
    size_t n_old = 0, merged_cap = 0;
    if (!old_end || !old) {
        rc = ENOMEM;
        goto done;
    }
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->db.postings, &cur)) != 0)
        goto done;
    MDB_val k, v;
    uint32_t next_key = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t key;
        memcpy(&key, k.mv_data, 4);
        if (k.mv_size != 4 || key >= nkeys || key < next_key || v.mv_size % 4 ||
            n_old + v.mv_size / 4 > bytes / 4) {
            rc = MDB_CORRUPTED;
            break;
        }
        while (next_key < key)
            old_end[next_key++] = (uint32_t)n_old;
        memcpy(old + n_old, v.mv_data, v.mv_size);
        n_old += v.mv_size / 4;
        old_end[next_key++] = (uint32_t)n_old;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        goto done;
    while (next_key < nkeys)
        old_end[next_key++] = (uint32_t)n_old;

    if ((rc = mdb_drop(txn, s->db.postings, 0)) != 0)
        goto done;
    store_touch_all(s);
    uint32_t old_begin = 0, new_begin = 0;
    for (size_t key = 0; key < nkeys && rc == 0; key++) {
        size_t m = old_end[key] - old_begin, n = end[key] - new_begin;
        if (m + n > 0) {
            const uint32_t *a = old + old_begin, *b = ids + new_begin;
            const uint32_t *value = a;
            if (n > 0 && m > 0) {
                /* New ids are the largest (only the last entries are
                 * pending), so this is a concatenation, merged to be safe. */
                if (m + n > merged_cap) {
                    merged_cap = (m + n) * 2;
                    free(merged);
                    if ((merged = malloc(merged_cap * sizeof *merged)) == NULL) {
                        rc = ENOMEM;
                        break;
                    }
                }
                size_t i = 0, j = 0, o = 0;
                while (i < m && j < n)
                    merged[o++] = a[i] < b[j] ? a[i++] : b[j++];
                while (i < m)
                    merged[o++] = a[i++];
                while (j < n)
                    merged[o++] = b[j++];
                value = merged;
            } else if (n > 0) {
                value = b;
            }
            uint32_t kk = (uint32_t)key;
            MDB_val key_val = { 4, &kk }, val = { (m + n) * 4, (void *)value };
            rc = mdb_put(txn, s->db.postings, &key_val, &val, MDB_APPEND);
        }
        old_begin = old_end[key];
        new_begin = end[key];
    }

done:
    free(old_end);
    free(old);
    free(merged);
    return rc;
}

static int compare_u64_asc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Put the cindex entries of a pass's items (each its key's top 32 bits,
 * then its number), sorted here, a bucket (the key's top 16 bits) at a
 * time.  Items taken from the table of pending names come nearly in order
 * (its slots are in the order of keys): an insertion sort mends them in
 * one sweep.  Others (read from their records, in number order) are
 * sorted by bucket in place (an American flag sort), then within each. */
static int put_cindex(pdqm_store *s, MDB_txn *txn, uint64_t *items, size_t n)
{
    if (n == 0)
        return 0;
    size_t descents = 0;
    for (size_t i = 1; i < n; i++)
        descents += items[i] < items[i - 1];
    if (descents <= n / 16) {
        sort_nearly_u64(items, n);
    } else {
        enum { BUCKETS = 65536 };
        size_t *start = calloc(BUCKETS + 1, sizeof *start), *next = malloc(BUCKETS * sizeof *next);
        if (!start || !next) {
            free(start);
            free(next);
            return ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
            start[(items[i] >> 48) + 1]++;
        for (size_t b = 0; b < BUCKETS; b++) {
            start[b + 1] += start[b];
            next[b] = start[b];
        }
        for (size_t b = 0; b < BUCKETS; b++)
            while (next[b] < start[b + 1]) {
                uint64_t v = items[next[b]];
                size_t home = (size_t)(v >> 48);
                if (home == b) {
                    next[b]++;
                    continue;
                }
                items[next[b]] = items[next[home]];
                items[next[home]++] = v;
            }
        for (size_t b = 0; b < BUCKETS; b++)
            if (start[b + 1] > start[b])
                qsort(items + start[b], start[b + 1] - start[b], sizeof *items, compare_u64_asc);
        free(start);
        free(next);
    }
    size_t widest = 0;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && items[j] >> 48 == items[i] >> 48; j++)
            ;
        if (j - i > widest)
            widest = j - i;
    }
    uint8_t *scratch = malloc(widest * 6 + 6);
    if (scratch == NULL)
        return ENOMEM;
    int rc = 0;
    for (size_t i = 0, j; i < n && rc == 0; i = j) {
        for (j = i + 1; j < n && items[j] >> 48 == items[i] >> 48; j++)
            ;
        rc = store_cindex_put_bucket(s, txn, (uint32_t)(items[i] >> 48), items + i, j - i,
                                     scratch);
    }
    free(scratch);
    return rc;
}

/* Which entries of [from, to) are live (their content item still
 * exists): bits in live; and, unless is_item is NULL, which numbers are
 * items (bits in is_item), and how many. */
static int window_live(pdqm_store *s, MDB_txn *txn, uint32_t from, uint32_t to, uint8_t *live,
                       uint8_t *is_item, size_t *n_items_out)
{
    size_t n_items = 0;
    cnum_iter it;
    uint32_t number;
    MDB_val cv;
    int rc;
    for (rc = store_cnum_from(s, txn, &it, from, &number, &cv); rc == 0 && number < to;
         rc = store_cnum_next(&it, &number, &cv)) {
        content_view c;
        if (store_content_decode(number, &cv, &c) != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        for (uint64_t id = number; id < (uint64_t)number + c.head.n_hashes && id < to; id++)
            live[(id - from) / 8] |= (uint8_t)(1u << ((id - from) % 8));
        if (is_item)
            is_item[(number - from) / 8] |= (uint8_t)(1u << ((number - from) % 8));
        n_items++;
    }
    store_cnum_end(&it);
    if (n_items_out)
        *n_items_out = n_items;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Put the items of [from, to) (is_item, n_items of them) in cindex: their
 * keys from the handle's table of pending names when it holds the whole
 * range (a load, or the service's adds through this handle), else from
 * their records.  The table is emptied: cindex has them now. */
static int window_names(pdqm_store *s, MDB_txn *txn, uint32_t from, uint32_t to,
                        const uint8_t *is_item, size_t n_items)
{
    int rc = 0;
    size_t n_taken = 0, items_bytes = 0;   /* (taken from the table: its size) */
    uint64_t *items = store_pnames_take(s, from, to, &n_taken, &items_bytes);
    if (items) {
        size_t o = 0;
        for (size_t i = 0; i < n_taken; i++) {
            uint32_t number = (uint32_t)items[i];
            if (is_item[(number - from) / 8] & (1u << ((number - from) % 8)))
                items[o++] = items[i];
        }
        n_taken = o;
    }
    if (items == NULL || n_taken != n_items) {
        store_pnames_free_taken(items, items_bytes);
        items_bytes = 0;   /* (malloc'd, not taken) */
        items = malloc(n_items ? n_items * sizeof *items : 1);
        if (items == NULL)
            return ENOMEM;
        n_taken = 0;
        cnum_iter it;
        uint32_t number;
        MDB_val cv;
        for (rc = store_cnum_from(s, txn, &it, from, &number, &cv);
             rc == 0 && number < to && n_taken < n_items; rc = store_cnum_next(&it, &number, &cv)) {
            content_view c;
            if ((rc = store_content_read(s, txn, number, &cv, &c)) != 0)
                break;
            uint64_t key = store_content_key(c.head.bank, c.content_id, c.head.id_len);
            items[n_taken++] = (key & ~(uint64_t)0xffffffffu) | number;
        }
        store_cnum_end(&it);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (rc == 0)
        rc = put_cindex(s, txn, items, n_taken);
    if (items_bytes)
        store_pnames_free_taken(items, items_bytes);
    else
        free(items);
    if (rc == 0)
        store_pnames_reset(s);
    return rc;
}

/* The postings a pass holds in memory at once: 128M, 640 MiB of ids and
 * suffixes.  A pass with more (a bulk load of millions) builds them a
 * slot at a time, a range of keys at a time, reading the pending records
 * again for each, so its memory does not grow with the load. */
#define PASS_CHUNK ((size_t)128 << 20)

/* A pass of this many entries lets go of the pages it read as it goes
 * (store_release_map). */
#define RELEASE_FROM ((uint32_t)1 << 22)

/* PASS_CHUNK, or PDQM_PASS_CHUNK (postings; for tests, which take the
 * paths of large loads with small ones). */
static size_t pass_chunk(void)
{
    uint64_t n = env_count("PDQM_PASS_CHUNK", PASS_CHUNK);
    return n > 0 ? (size_t)n : PASS_CHUNK;
}

/* Index the live entries of [from, to): count the postings of each key,
 * then, a range of keys at a time (all of them, unless the load is over
 * PASS_CHUNK postings), place each key's ids in ascending order with no
 * sort, and write the keys in order: appended past the last key stored,
 * merged into the others. */
static int index_whole(pdqm_store *s, MDB_txn *txn, index_args *a, pdqm_error *err)
{
    meta_vals m;
    int rc = store_meta_read(s, txn, &m);
    if (rc != 0 || m.pending_to <= m.pending_from)
        return rc;
    const uint32_t from = m.pending_from, to = m.pending_to;
    /* (The pending hashes are counted in their banks already.) */
    if ((rc = choose_layout(s, txn, &m, 0, from, err)) != 0)
        return rc;
    uint32_t *count = calloc((size_t)NKEYS_ALL + 1, sizeof *count);
    uint8_t *live = calloc((to - from) / 8 + 1, 1);
    uint32_t *ids = NULL;
    uint8_t *suffixes = NULL;
    uint8_t *is_item = calloc((to - from) / 8 + 1, 1);
    if (!count || !live || !is_item) {
        rc = ENOMEM;
        goto done;
    }

    size_t n_items = 0;
    if ((rc = window_live(s, txn, from, to, live, is_item, &n_items)) != 0 ||
        (rc = window_names(s, txn, from, to, is_item, n_items)) != 0)
        goto done;
    if (to - from >= RELEASE_FROM)
        store_release_map(s);
#define LIVE(id) (live[((id) - from) / 8] & (1u << (((id) - from) % 8)))
    /* Each live entry of [lo, hi) with its hash h, a records block at a
     * time (the blocks are read in place, one lookup each). */
#define EACH_LIVE(lo, hi, BODY)                                                        \
    for (uint32_t b_ = (lo) / RECORDS_PER_BLOCK; rc == 0 && (lo) < (hi) &&          \
                                                 b_ <= ((hi) - 1) / RECORDS_PER_BLOCK; b_++) { \
        MDB_val bk_ = { 4, &b_ }, bv_;                                             \
        if ((rc = mdb_get(txn, s->db.records, &bk_, &bv_)) != 0)                   \
            break;                                                                 \
        uint32_t n_ = block_count(bv_.mv_size), base_ = b_ * RECORDS_PER_BLOCK;    \
        uint32_t i0_ = (lo) > base_ ? (lo) - base_ : 0;                            \
        uint32_t i1_ = (hi) - base_ < RECORDS_PER_BLOCK ? (hi) - base_             \
                                                        : RECORDS_PER_BLOCK;       \
        if (n_ < i1_) {   /* (block_count: 0 when malformed) */                   \
            rc = MDB_CORRUPTED;                                                    \
            break;                                                                 \
        }                                                                          \
        for (uint32_t i_ = i0_; i_ < i1_; i_++) {                                  \
            const uint32_t id = base_ + i_;                                        \
            if (!LIVE(id))                                                         \
                continue;                                                          \
            uint64_t h[4];                                                         \
            memcpy(h, block_hash(bv_.mv_data, i_), 32);                            \
            BODY                                                                   \
        }                                                                          \
    }
    size_t n_live = 0;
    for (uint32_t id = from; id < to; id++)
        n_live += LIVE(id) ? 1 : 0;
    postings_writer w;
    int writer_open = 0;
    const size_t chunk = pass_chunk();
    if (m.wide_from == WIDE_NONE && n_live * SLOTS <= chunk) {
        /* A narrow store's pass (the service's, or a load of up to 4M):
         * every key at once.  How many postings each key gets, then each
         * key's ids placed in ascending order with no sort. */
        EACH_LIVE(from, to, {
            for (int k = 0; k < SLOTS; k++)
                count[slot_key(h, k) + 1]++;
        })
        if (rc != 0)
            goto done;
        for (size_t k = 0; k < NKEYS_ALL; k++)
            count[k + 1] += count[k];
        ids = malloc((n_live ? n_live : 1) * SLOTS * sizeof *ids);
        if (ids == NULL) {
            rc = ENOMEM;
            goto done;
        }
        EACH_LIVE(from, to, {
            for (int k = 0; k < SLOTS; k++)
                ids[count[slot_key(h, k)]++] = id;
        })
        if (rc != 0)
            goto done;
        /* count[k] now holds where key k ends, count[k-1] where it begins. */
        if (n_live * SLOTS >= ((size_t)SLOTS << 16) / 2) {
            rc = rebuild_postings(s, txn, count, ids);
            if (rc == 0)
                goto indexed;
            if (rc != MDB_NOTFOUND)
                goto done;
            rc = 0;
        }
        if ((rc = store_writer_open(&w, s, txn)) != 0) {
            store_writer_close(&w);
            goto done;
        }
        writer_open = 1;
        uint32_t begin = 0;
        for (uint32_t k = 0; k < ((uint32_t)SLOTS << 16) && rc == 0; k++) {
            uint32_t end = count[k];
            if (end > begin)
                rc = store_writer_add(&w, k, ids + begin, NULL, end - begin);
            begin = end;
        }
    } else {
        /* Slot by slot: every slot's keys counted in one reading of the
         * records, then each slot's ids placed a range of keys at a time,
         * at most PASS_CHUNK postings in memory, reading the records again
         * for each range (once a slot, up to 128M hashes): the memory of
         * a load of 100M is that of its largest slot. */
        size_t cap = n_live < chunk ? n_live : chunk;
        ids = malloc((cap ? cap : 1) * sizeof *ids);
        suffixes = malloc(cap ? cap : 1);
        if (!ids || !suffixes) {
            rc = ENOMEM;
            goto done;
        }
        if ((rc = store_writer_open(&w, s, txn)) != 0) {
            store_writer_close(&w);
            goto done;
        }
        writer_open = 1;
        const uint32_t wide_lo = m.wide_from < from ? from : m.wide_from < to ? m.wide_from : to;
        EACH_LIVE(from, wide_lo, {
            for (int k = 0; k < SLOTS; k++)
                count[slot_key(h, k)]++;
        })
        EACH_LIVE(wide_lo, to, {
            uint8_t sx;
            for (int k = 0; k < WIDE_SLOTS; k++)
                count[wide_key(h, k, &sx)]++;
        })
        if (rc != 0)
            goto done;
        if (to - from >= RELEASE_FROM)
            store_release_map(s);
        for (int part = 0; part < SLOTS + WIDE_SLOTS && rc == 0; part++) {
            const int wide = part >= SLOTS, slot = wide ? part - SLOTS : part;
            const uint32_t lo = wide ? wide_lo : from, hi = wide ? to : wide_lo;
            const uint32_t kb = (uint32_t)part << 16;
            uint32_t *cnt = count + kb;   /* this slot's 65,536 counts */
            if (lo >= hi)
                continue;
            for (uint32_t a = 0; a < 65536 && rc == 0;) {
                /* Keys a .. b-1 of the slot: as many as fit, one at least. */
                size_t total = 0;
                uint32_t b = a;
                while (b < 65536 && (b == a || total + cnt[b] <= cap))
                    total += cnt[b++];
                if (total == 0) {
                    a = b;
                    continue;
                }
                if (total > cap) {   /* one key over the chunk: make room */
                    uint32_t *gi = realloc(ids, total * sizeof *ids);
                    if (gi)
                        ids = gi;
                    uint8_t *gs = realloc(suffixes, total);
                    if (gs)
                        suffixes = gs;
                    if (!gi || !gs) {
                        rc = ENOMEM;
                        break;
                    }
                    cap = total;
                }
                size_t at = 0;
                for (uint32_t k = a; k < b; k++) {   /* cnt[k]: where key k begins */
                    size_t c = cnt[k];
                    cnt[k] = (uint32_t)at;
                    at += c;
                }
                EACH_LIVE(lo, hi, {
                    uint8_t sx = 0;
                    uint32_t k = (wide ? wide_key(h, slot, &sx) : slot_key(h, slot)) - kb;
                    if (k >= a && k < b) {
                        uint32_t pos = cnt[k]++;
                        ids[pos] = id;
                        suffixes[pos] = sx;
                    }
                })
                if (rc != 0)
                    break;
                /* cnt[k] now holds where key k ends. */
                uint32_t begin = 0;
                for (uint32_t k = a; k < b && rc == 0; k++) {
                    uint32_t end = cnt[k];
                    if (end > begin)
                        rc = store_writer_add(&w, kb + k, ids + begin, suffixes + begin,
                                              end - begin);
                    begin = end;
                }
                a = b;
            }
            if (hi - lo >= RELEASE_FROM)
                store_release_map(s);   /* the records this slot read */
        }
    }
    if (writer_open)
        store_writer_close(&w);
    if (rc != 0)
        goto done;
indexed:
#undef EACH_LIVE
#undef LIVE
    m.pending_from = m.pending_to = 0;
    if ((rc = set_pass_window(s, txn, &m, err)) != 0)
        goto done;
    rc = store_meta_write(s, txn, &m);
    a->indexed += n_live;

done:
    free(count);
    free(live);
    free(ids);
    free(suffixes);
    free(is_item);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Passes in steps                                                      */

/* In a large store, a pass of the adds a service gathered rewrites most
 * postings whatever it indexes (at 100M hashes, 5.5 GB in about 15 s): as
 * one transaction it would hold every other writer that long.  So once
 * STEP_FROM entries are indexed, a pass of at most STEP_WINDOW entries
 * goes in steps, each its own transaction of about STEP_MS or STEP_BYTES
 * of postings rewritten, whichever comes first (its commit writes them to
 * disk: the bytes bound the time other writers wait for it).  The first
 * puts the items' names in cindex, copies the window's postings into
 * memory key by key (5 bytes a posting: 55 MB for 1M wide entries), and
 * posts the first keys; each step after posts the next keys, in order
 * (meta pass_to, pass_key).  Between steps the store is whole: lookups
 * find the window's entries by scanning them as pending (those found in
 * the postings too are kept once), deletes take them out of the keys
 * posted so far (and count, so that the copy learns which live), adds go
 * past the window.  A small add that brings the pass takes its first step;
 * a thread of the handle takes the others, resting as long as each took,
 * so that other writers get half the time.  A pass left half done (the
 * process ended) goes on at the next pass.  PDQM_STEP_FROM (entries) and
 * PDQM_STEP_KEYS (keys a step, instead of the time) for tests. */
#define STEP_FROM ((uint64_t)4 << 20)
#define STEP_WINDOW ((uint32_t)4 << 20)
#define STEP_MS 40.0
#define STEP_BYTES ((uint64_t)8 << 20)

static int in_steps(const meta_vals *m)
{
    return m->pending_from >= env_count("PDQM_STEP_FROM", STEP_FROM) &&
           m->pending_to - m->pending_from <= STEP_WINDOW;
}

static double mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void pass_copy_free(store_pass_part *p)
{
    free(p->start);
    free(p->ids);
    free(p->suffixes);
    free(p->live);
    p->start = p->ids = NULL;
    p->suffixes = p->live = NULL;
}

/* The hash of entry id in h, through *blk (records block *b_no, read again
 * when id is in another). */
static int entry_hash(pdqm_store *s, MDB_txn *txn, uint32_t id, MDB_val *blk, uint32_t *b_no,
                      uint64_t h[4])
{
    uint32_t b = id / RECORDS_PER_BLOCK;
    if (b != *b_no) {
        MDB_val k = { 4, &b };
        int rc = mdb_get(txn, s->db.records, &k, blk);
        if (rc != 0)
            return rc;
        *b_no = b;
    }
    if (block_count(blk->mv_size) <= id % RECORDS_PER_BLOCK)
        return MDB_CORRUPTED;
    memcpy(h, block_hash(blk->mv_data, id % RECORDS_PER_BLOCK), 32);
    return 0;
}

/* The copy of the window's postings (every entry's: which live is a bit
 * beside), made at the first step this handle takes, and its liveness
 * read again after deletes. */
static int pass_copy(pdqm_store *s, MDB_txn *txn, const meta_vals *m)
{
    store_pass_part *p = &s->pass;
    const uint32_t from = m->pending_from, to = m->pass_to;
    if (p->start && (p->from != from || p->to != to || p->wide_from != m->wide_from))
        pass_copy_free(p);
    if (p->start && p->deletes == m->pass_deletes)
        return 0;
    const size_t bytes = (size_t)(to - from) / 8 + 1;
    if (p->live == NULL && (p->live = malloc(bytes)) == NULL)
        return ENOMEM;
    memset(p->live, 0, bytes);
    int rc = window_live(s, txn, from, to, p->live, NULL, NULL);
    if (rc != 0) {
        pass_copy_free(p);
        return rc;
    }
    p->deletes = m->pass_deletes;
    p->n_live = 0;
    for (size_t i = 0; i < bytes; i++)
        p->n_live += (uint64_t)__builtin_popcount(p->live[i]);
    if (p->start)
        return 0;   /* only which live has changed */

    p->from = from;
    p->to = to;
    p->wide_from = m->wide_from;
    const uint32_t wide_lo = m->wide_from < from ? from : m->wide_from < to ? m->wide_from : to;
    const size_t total = (size_t)(wide_lo - from) * SLOTS + (size_t)(to - wide_lo) * WIDE_SLOTS;
    p->start = calloc((size_t)NKEYS_ALL + 1, sizeof *p->start);
    p->ids = malloc(total ? total * sizeof *p->ids : 1);
    p->suffixes = malloc(total ? total : 1);
    if (!p->start || !p->ids || !p->suffixes) {
        pass_copy_free(p);
        return ENOMEM;
    }
    /* Count each key's postings, then place them (ids ascending, as the
     * window is read in order); start[k] then holds where key k ends. */
    for (int walk = 0; walk < 2 && rc == 0; walk++) {
        MDB_val blk = { 0, NULL };
        uint32_t b_no = UINT32_MAX;
        for (uint32_t id = from; id < to && rc == 0; id++) {
            uint64_t h[4];
            uint32_t keys[SLOTS];
            uint8_t sx[SLOTS];
            if ((rc = entry_hash(s, txn, id, &blk, &b_no, h)) != 0)
                break;
            int nk = entry_keys(h, id >= m->wide_from, keys, sx);
            for (int k = 0; k < nk; k++) {
                if (walk == 0) {
                    p->start[keys[k] + 1]++;
                } else {
                    uint32_t at = p->start[keys[k]]++;
                    p->ids[at] = id;
                    p->suffixes[at] = sx[k];
                }
            }
        }
        if (walk == 0)
            for (size_t k = 0; k < NKEYS_ALL; k++)
                p->start[k + 1] += p->start[k];
    }
    if (rc != 0) {
        pass_copy_free(p);
        return rc;
    }
    memmove(p->start + 1, p->start, (size_t)NKEYS_ALL * sizeof *p->start);
    p->start[0] = 0;
    return 0;
}

/* Begin a pass in steps over what is pending: the layout, the items'
 * names in cindex. */
static int pass_begin(pdqm_store *s, MDB_txn *txn, meta_vals *m, pdqm_error *err)
{
    const uint32_t from = m->pending_from, to = m->pending_to;
    int rc = choose_layout(s, txn, m, 0, from, err);
    if (rc != 0)
        return rc;
    const size_t bytes = (size_t)(to - from) / 8 + 1;
    uint8_t *live = calloc(bytes, 1), *is_item = calloc(bytes, 1);
    size_t n_items = 0;
    rc = !live || !is_item ? ENOMEM : window_live(s, txn, from, to, live, is_item, &n_items);
    if (rc == 0)
        rc = window_names(s, txn, from, to, is_item, n_items);
    free(live);
    free(is_item);
    if (rc != 0)
        return rc;
    m->pass_to = to;
    m->pass_key = 0;
    m->pass_deletes = 0;
    return 0;
}

/* Post the window's live entries under the keys from pass_key on: for
 * about STEP_MS when budgeted, else to the end; at the end the window is
 * indexed. */
static int pass_step(pdqm_store *s, MDB_txn *txn, meta_vals *m, int budgeted, index_args *a,
                     pdqm_error *err)
{
    int rc = pass_copy(s, txn, m);
    if (rc != 0)
        return rc;
    store_pass_part *p = &s->pass;
    postings_writer w;
    if ((rc = store_writer_open(&w, s, txn)) != 0) {
        store_writer_close(&w);
        return rc;
    }
    const uint64_t keys_each = env_count("PDQM_STEP_KEYS", 0);
    const double t0 = mono_ms();
    /* The bytes a key's value holds, about: what merging into it rewrites. */
    const uint64_t narrow_n = m->pending_from < m->wide_from ? m->pending_from : m->wide_from;
    const uint64_t wide_n = m->pending_from > m->wide_from ? m->pending_from - m->wide_from : 0;
    const uint64_t narrow_bytes = narrow_n * 4 / 65536 + 16, wide_bytes = wide_n * 5 / 65536 + 16;
    uint64_t bytes = 0;
    uint32_t *ids = NULL;
    uint8_t *sx = NULL;
    size_t cap = 0;
    uint32_t k = m->pass_key;
    for (uint64_t done = 0; k < NKEYS_ALL && rc == 0; k++, done++) {
        if (budgeted && done > 0 &&
            (keys_each ? done >= keys_each
                       : bytes >= STEP_BYTES || (done % 256 == 0 && mono_ms() - t0 >= STEP_MS)))
            break;
        const uint32_t b = p->start[k], e = p->start[k + 1];
        if (e - b > cap) {
            uint32_t *gi = realloc(ids, (e - b) * sizeof *ids);
            if (gi)
                ids = gi;
            uint8_t *gs = realloc(sx, e - b);
            if (gs)
                sx = gs;
            if (!gi || !gs) {
                rc = ENOMEM;
                break;
            }
            cap = e - b;
        }
        size_t n = 0;
        for (uint32_t i = b; i < e; i++) {
            const uint32_t at = p->ids[i] - p->from;
            if (p->live[at / 8] & (1u << (at % 8))) {
                ids[n] = p->ids[i];
                sx[n++] = p->suffixes[i];
            }
        }
        if (n > 0) {
            rc = store_writer_add(&w, k, ids, sx, n);
            bytes += key_is_wide(k) ? wide_bytes : narrow_bytes;
        }
    }
    store_writer_close(&w);
    free(ids);
    free(sx);
    if (rc != 0)
        return rc;
    m->pass_key = k;
    if (k == NKEYS_ALL) {
        a->indexed += p->n_live;
        m->pending_from = m->pass_to;
        if (m->pending_from == m->pending_to)
            m->pending_from = m->pending_to = 0;
        m->pass_to = m->pass_key = m->pass_deletes = 0;
        pass_copy_free(p);
        if ((rc = set_pass_window(s, txn, m, err)) != 0)
            return rc;
    }
    return store_meta_write(s, txn, m);
}

/* Index what is pending: a step of a pass in steps (a->step), or all of
 * it, whole or in steps in this one transaction. */
static int do_index_pending(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    index_args *a = arg;
    a->indexed = 0;
    a->left = 0;
    for (;;) {
        meta_vals m;
        int rc = store_meta_read(s, txn, &m);
        if (rc != 0)
            return rc;
        if (m.pass_to == 0) {
            if (m.pending_to <= m.pending_from)
                return 0;
            if (!in_steps(&m))
                return index_whole(s, txn, a, err);
            if ((rc = pass_begin(s, txn, &m, err)) != 0)
                return rc;
        }
        if ((rc = pass_step(s, txn, &m, a->step, a, err)) != 0)
            return rc;
        if (a->step) {
            a->left = m.pass_to != 0;
            return 0;
        }
    }
}

pdqm_status pdqm_store_index_pending(pdqm_store *store, uint64_t *indexed,
                                     pdqm_error *err)
{
    if (indexed)
        *indexed = 0;
    if (store->read_only)
        return PDQM_OK;
    /* Step by step, each its own transaction, resting after each as long
     * as it took: other writers (this process's or another's: LMDB's lock
     * is not fair) come between. */
    index_args a = { 0, 1, 0 };
    pdqm_status st;
    for (;;) {
        const double t0 = mono_ms();
        st = store_write(store, do_index_pending, &a, "cannot index the store", err);
        if (st == PDQM_OK && indexed)
            *indexed += a.indexed;
        if (st != PDQM_OK || !a.left)
            return st;
        const double rest = mono_ms() - t0;
        struct timespec ts = { (time_t)(rest / 1e3), (long)(fmod(rest, 1e3) * 1e6) };
        nanosleep(&ts, NULL);
    }
}

pdqm_status pdqm_store_index_step(pdqm_store *store, int *left, pdqm_error *err)
{
    if (left)
        *left = 0;
    if (store->read_only)
        return PDQM_OK;
    index_args a = { 0, 1, 0 };
    pdqm_status st = store_write(store, do_index_pending, &a, "cannot index the store", err);
    if (st == PDQM_OK && left)
        *left = a.left;
    return st;
}

static void *pass_main(void *arg)
{
    pdqm_store *s = arg;
    store_pass_part *p = &s->pass;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        const int stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        index_args a = { 0, 1, 0 };
        pdqm_error e;
        const double t0 = mono_ms();
        if (store_write(s, do_index_pending, &a, "cannot index the store", &e) != PDQM_OK ||
            !a.left)
            break;   /* (failed: the next small add tries again) */
        /* Rest as long as the step took. */
        const double rest = mono_ms() - t0;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long long ns = until.tv_nsec + (long long)(rest * 1e6);
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        pthread_mutex_lock(&p->lock);
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&p->lock);
    p->running = 0;
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

void store_pass_due(pdqm_store *s)
{
    store_pass_part *p = &s->pass;
    pthread_mutex_lock(&p->lock);
    const int running = p->running;
    pthread_mutex_unlock(&p->lock);
    if (running || s->read_only)
        return;   /* the thread takes the next step */
    index_args a = { 0, 1, 0 };
    pdqm_error e;
    if (store_write(s, do_index_pending, &a, "cannot index the store", &e) != PDQM_OK ||
        !a.left)
        return;   /* (a failed pass loses nothing: tried again by the next add) */
    pthread_mutex_lock(&p->lock);
    if (!p->running && !p->stop) {
        if (p->started)
            pthread_join(p->thread, NULL);   /* (it has ended) */
        p->started = 0;
        if (pthread_create(&p->thread, NULL, pass_main, s) == 0)
            p->started = p->running = 1;
    }
    pthread_mutex_unlock(&p->lock);
}

void store_pass_stop(pdqm_store *s)
{
    store_pass_part *p = &s->pass;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    const int started = p->started;
    p->started = 0;
    pthread_mutex_unlock(&p->lock);
    if (started)
        pthread_join(p->thread, NULL);
    pass_copy_free(p);
}
