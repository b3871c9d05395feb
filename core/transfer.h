/*
 * transfer.h - a store written out, and read back, losing nothing.
 *
 * Two forms:
 *   - JSON Lines (PDQM_EXPORT_JSONL), everything a store holds.  The first
 *     line names the form, {"format":"pdqmatch-export","version":1}; then
 *     one line a bank, {"type":"bank","name","threshold","kind","created",
 *     "enabled_ratio"}, sorted by name; then one line a content item, in
 *     the order added:
 *     {"type":"item","bank","content_id","kind","added","sha256","md5",
 *      "metadata","disabled_until","note","hashes":[{"hash","quality",
 *      "timestamp"}]}
 *     (enabled_ratio only when not 1; sha256, md5, metadata and note only
 *     when the item has them, disabled_until when not 0; timestamp only for
 *     a video, or when not 0; hashes empty for an item known by its MD5
 *     alone).  Metadata is written as it is stored, byte for byte.
 *     pdqm_import_jsonl() restores all of it, and exporting the restored
 *     store gives the same bytes.  (Exchanges, a store's settings rather
 *     than its content, are not in it: exchange/exchange.h.)  (An item's number, HMA's id for it, is
 *     the store's own: a store imported into numbers its items anew.)
 *   - CSV (PDQM_EXPORT_CSV), for partners and `pdqmatch index --hash-list`:
 *     hash,quality,content_id,timestamp,bank,metadata,sha256,md5,kind, one
 *     row a hash, quoted where a field holds a comma, a quote or a line
 *     break; timestamps in the fewest digits that read back exactly.
 *     Reading it back keeps every item, bank and kind; bank thresholds and
 *     kinds, and creation times, are only in JSON Lines.
 */
#ifndef PDQM_TRANSFER_H
#define PDQM_TRANSFER_H

#include <stdint.h>
#include <stdio.h>

#include "../index/store.h"

typedef enum pdqm_export_format {
    PDQM_EXPORT_CSV = 0,
    PDQM_EXPORT_JSONL = 1
} pdqm_export_format;

/* Write the store (one bank, or every bank when bank is NULL) to out.
 * One read snapshot for the items.  Errors: PDQM_ERR_NOT_FOUND (no such
 * bank), PDQM_ERR_IO (out cannot be written), PDQM_ERR_NOMEM, those of the
 * store. */
pdqm_status pdqm_export(pdqm_store *store, const char *bank, pdqm_export_format format,
                        FILE *out, pdqm_error *err);

/* Longest line pdqm_import_jsonl() reads: an item of about a million frame
 * hashes. */
#define PDQM_IMPORT_MAX_LINE ((size_t)256 << 20)

typedef struct pdqm_import_counts {
    uint64_t banks_created;
    uint64_t banks_changed;   /* existing banks given the file's threshold or kind */
    uint64_t items;           /* stored */
    uint64_t hashes;
    uint64_t existing;        /* the bank had the content id (or the file): skipped */
    uint64_t refused;         /* bad lines, each reported */
    uint64_t banks_published; /* bank lines sent where what they did is not
                                 known here (a cluster's stream) */
} pdqm_import_counts;

/* A line refused, with its number (from 1) and why. */
typedef void (*pdqm_import_refused_fn)(void *arg, uint64_t line, const pdqm_error *why);

/* Read a JSON Lines export from in into the store: banks are created as
 * they were (or given the file's threshold and kind), items added with
 * their times; items already there are skipped, so importing twice stores
 * nothing twice.  Bad lines are refused (reported, counted) and the rest
 * goes on.  Items are added in batches, then indexed in one pass.  Returns
 * PDQM_OK when the file was read to its end; PDQM_ERR_INVALID when its
 * first line is not an export's; PDQM_ERR_IO, PDQM_ERR_NOMEM, or the
 * store's error (batches already added stay). */
pdqm_status pdqm_import_jsonl(pdqm_store *store, FILE *in, pdqm_import_refused_fn refused,
                              void *arg, pdqm_import_counts *counts, pdqm_error *err);

/* Where an import writes, for a writer other than a store (a cluster's:
 * cluster.h, pdqm_write_import_sink).  The import reads and checks every
 * line itself; the sink keeps the store's rules for what it is given. */
typedef struct pdqm_import_sink {
    void *arg;
    /* Make bank name as a bank line says: created (at `created`, 0 for
     * now) when missing, and given threshold, kind and enabled ratio.  *did: 1
     * created, 2 changed, 0 already so, -1 not known here. */
    pdqm_status (*bank)(void *arg, const char *name, int threshold, pdqm_bank_kind kind,
                        double enabled_ratio, int64_t created, int *did, pdqm_error *err);
    /* Add n items (creating the banks they name, as pdqm_ingest_add), the
     * outcome of each in outcomes; *known 0 when those are not known here
     * (then every item counts as imported). */
    pdqm_status (*add)(void *arg, const pdqm_add *adds, size_t n, pdqm_add_outcome *outcomes,
                       int *known, pdqm_error *err);
    /* Once the file is read (NULL: nothing to do). */
    pdqm_status (*finish)(void *arg, pdqm_error *err);
} pdqm_import_sink;

/* The sink pdqm_import_jsonl() writes to store through: banks as said
 * above, items as deferred adds, one indexing pass to finish. */
void pdqm_import_store_sink(pdqm_store *store, pdqm_import_sink *out);

/* pdqm_import_jsonl() through any sink. */
pdqm_status pdqm_import_jsonl_to(const pdqm_import_sink *sink, FILE *in,
                                 pdqm_import_refused_fn refused, void *arg,
                                 pdqm_import_counts *counts, pdqm_error *err);

/* Write s to f as one CSV field, quoted (with "" for ") only when it holds
 * a comma, a quote or a line break; NULL writes nothing. */
void pdqm_csv_field(FILE *f, const char *s);

/* The shortest decimal text of v that reads back as v exactly (at most 24
 * bytes with the terminator), as the exports write numbers. */
void pdqm_format_double(double v, char out[32]);

#endif
