/*
 * store_banks.c - banks: create, update, delete (with everything in
 * them), get and list.
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

/* The ratio as the double of its shortest decimal form: a ratio set to
 * 0.3 reads 0.3, not the float's 0.30000001192092896. */
static double ratio_of(const bank_rec *b)
{
    float f = bank_ratio(b);
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        if ((float)strtod(text, NULL) == f)
            break;
    }
    return strtod(text, NULL);
}

static void bank_info_from(pdqm_bank_info *info, const char *name, const bank_rec *b)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", name);
    info->id = b->id;
    info->threshold = b->threshold;
    info->kind = (pdqm_bank_kind)b->kind;
    info->enabled_ratio = ratio_of(b);
    info->created = b->created;
    info->contents = b->contents;
    info->hashes = b->hashes;
}

typedef struct bank_args {
    const char *name;
    int threshold;
    int kind;
    int64_t created;     /* bank_create: 0 for now */
    double ratio;        /* bank_create: the enabled ratio; negative: 1 */
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
    if (a->ratio >= 0)
        b.ratio = bank_ratio_bits(a->ratio);
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

pdqm_status store_bank_check(const char *name, int threshold, int kind, int unchanged,
                             pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(name, err);
    if (st != PDQM_OK)
        return st;
    if (threshold > PDQM_MAX_DISTANCE || threshold < (unchanged ? -1 : 0))
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a threshold is 0 to 256 bits, not %d", threshold);
    if (!(unchanged && kind == -1) && kind != PDQM_BANK_BLOCK && kind != PDQM_BANK_ALLOW)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "unknown bank kind %d", kind);
    return PDQM_OK;
}

int store_bank_create_in(pdqm_store *s, MDB_txn *txn, const char *name, int threshold,
                         int kind, int64_t created, double ratio, pdqm_error *err)
{
    bank_args a = { name, threshold, kind, created, ratio };
    return do_bank_create(s, txn, &a, err);
}

pdqm_status pdqm_store_bank_create_with(pdqm_store *store, const char *name, int threshold,
                                        pdqm_bank_kind kind, double enabled_ratio,
                                        int64_t created, pdqm_error *err)
{
    pdqm_status st = store_bank_check(name, threshold, (int)kind, 0, err);
    if (st != PDQM_OK)
        return st;
    if (!(enabled_ratio <= 1))   /* NaN too */
        return pdqm_error_set(err, PDQM_ERR_INVALID, "an enabled ratio is 0 to 1, not %g",
                              enabled_ratio);
    bank_args a = { name, threshold, kind, created, enabled_ratio };
    return store_write(store, do_bank_create, &a, "cannot create the bank", err);
}

pdqm_status pdqm_store_bank_create_at(pdqm_store *store, const char *name,
                                      int threshold, pdqm_bank_kind kind,
                                      int64_t created, pdqm_error *err)
{
    return pdqm_store_bank_create_with(store, name, threshold, kind, -1, created, err);
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

pdqm_status store_bank_changes_check(const char *name, const pdqm_bank_changes *c,
                                     pdqm_error *err)
{
    pdqm_status st = store_bank_check(name, c->threshold, c->kind, 1, err);
    if (st != PDQM_OK)
        return st;
    if (!(c->enabled_ratio < 0) && !(c->enabled_ratio <= 1))   /* NaN too */
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "an enabled ratio is 0 to 1, not %g", c->enabled_ratio);
    if (c->rename)
        return pdqm_bank_name_check(c->rename, err);
    return PDQM_OK;
}

typedef struct change_args {
    const char *name;
    const pdqm_bank_changes *c;
} change_args;

static int do_bank_change(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    const change_args *a = arg;
    const pdqm_bank_changes *c = a->c;
    bank_rec b;
    int rc = bank_for_write(s, txn, a->name, &b, err);
    if (rc != 0)
        return rc;
    if (c->threshold >= 0)
        b.threshold = c->threshold;
    if (c->kind >= 0)
        b.kind = (uint32_t)c->kind;
    if (c->enabled_ratio >= 0)
        b.ratio = bank_ratio_bits(c->enabled_ratio);
    if (c->rename && strcmp(c->rename, a->name) != 0) {
        /* Records, content keys and lists name the bank by its id: a
         * rename is its entry in the bank table alone. */
        bank_rec other;
        rc = store_bank_find(s, txn, c->rename, &other);
        if (rc == 0) {
            pdqm_error_set(err, PDQM_ERR_EXISTS, "bank '%s' exists already", c->rename);
            return -1;
        }
        if (rc != MDB_NOTFOUND)
            return rc;
        MDB_val bk = { strlen(a->name), (void *)a->name };
        if ((rc = mdb_del(txn, s->db.banks, &bk, NULL)) != 0)
            return rc;
        return store_bank_put(s, txn, c->rename, &b);
    }
    return store_bank_put(s, txn, a->name, &b);
}

int store_bank_change_in(pdqm_store *s, MDB_txn *txn, const char *name,
                         const pdqm_bank_changes *c, pdqm_error *err)
{
    change_args a = { name, c };
    return do_bank_change(s, txn, &a, err);
}

pdqm_status pdqm_store_bank_change(pdqm_store *store, const char *name,
                                   const pdqm_bank_changes *changes, pdqm_error *err)
{
    pdqm_status st = store_bank_changes_check(name, changes, err);
    if (st != PDQM_OK)
        return st;
    change_args a = { name, changes };
    return store_write(store, do_bank_change, &a, "cannot change the bank", err);
}

pdqm_status pdqm_store_bank_update(pdqm_store *store, const char *name,
                                   int threshold, int kind, pdqm_error *err)
{
    pdqm_bank_changes c = PDQM_BANK_UNCHANGED;
    c.threshold = threshold;
    c.kind = kind;
    return pdqm_store_bank_change(store, name, &c, err);
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
        if ((rc = store_content_read(s, txn, numbers[i], &cv, &c)) != 0)
            break;
        rc = store_delete_content(s, txn, numbers[i], &c, &b);
    }
    free(numbers);
    if (rc != 0)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    MDB_val bk = { strlen(a->name), (void *)a->name };
    return mdb_del(txn, s->db.banks, &bk, NULL);
}

int store_bank_delete_in(pdqm_store *s, MDB_txn *txn, const char *name, pdqm_error *err)
{
    bank_args a = { name, -1, -1, 0, -1 };
    return do_bank_delete(s, txn, &a, err);
}

pdqm_status pdqm_store_bank_delete(pdqm_store *store, const char *name,
                                   pdqm_error *err)
{
    pdqm_status st = pdqm_bank_name_check(name, err);
    if (st != PDQM_OK)
        return st;
    bank_args a = { name, -1, -1, 0, -1 };
    return store_write(store, do_bank_delete, &a, "cannot delete the bank", err);
}

typedef struct bank_get_args {
    const char *name;
    pdqm_bank_info *info;
} bank_get_args;

static pdqm_status do_bank_get(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    bank_get_args *a = arg;
    bank_rec b;
    pdqm_status st = store_bank_for_read(s, txn, a->name, &b, err);
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
    return store_read(store, do_bank_get, &a, err);
}

typedef struct bank_list_args {
    pdqm_bank_info **out;
    size_t *count;
} bank_list_args;

static pdqm_status do_bank_list(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    bank_list_args *a = arg;
    bank_table *t;
    pdqm_status st = store_bank_table_new(s, txn, &t, err);
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
        store_bank_table_delete(t);
    }
    return st;
}

pdqm_status pdqm_store_bank_list(pdqm_store *store, pdqm_bank_info **out,
                                 size_t *count, pdqm_error *err)
{
    *out = NULL;
    *count = 0;
    bank_list_args a = { out, count };
    return store_read(store, do_bank_list, &a, err);
}
