/*
 * write.c - a front end's writes, to the local store or through the
 * cluster's log (cluster.h, "Writing").
 */
#define _POSIX_C_SOURCE 200809L
#include "cluster.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/ingest.h"
#include "../core/transfer.h"

/* Check every op, publish them as one entry, wait until applied, and
 * return the result of the op that matters (index `main`): its ADD
 * outcomes copied to outcomes, each item's number to its number pointer,
 * a DELETE_NUMBER's deleted to *deleted.  A writer without a store
 * returns once the entry is published. */
static pdqm_status via_cluster_ex(const pdqm_writer *w, const pdqm_op *ops, size_t n,
                                  size_t main, pdqm_add_outcome *outcomes, int *deleted,
                                  uint64_t *seq, pdqm_error *err)
{
    for (size_t i = 0; i < n; i++) {
        pdqm_status st = pdqm_store_check_op(&ops[i], err);
        if (st != PDQM_OK)
            return st;
    }
    /* A node whose disk is full cannot apply the write in time: say so
     * now, with nothing published, and the client goes to another. */
    if (w->store && !pdqm_store_writable(w->store))
        return pdqm_error_set(err, PDQM_ERR_NO_SPACE, "this node's disk is full: nothing was "
                              "written; another node of the cluster can take it");
    if (w->store == NULL) {   /* publishing for the nodes: nothing to wait on */
        uint64_t at;
        return pdqm_cluster_publish(w->cluster, ops, n, seq ? seq : &at, err);
    }
    pdqm_cluster_outcome o;
    pdqm_status st = pdqm_cluster_write(w->cluster, ops, n, &o, err);
    if (st != PDQM_OK)
        return st;
    if (seq)
        *seq = o.seq;
    if (o.n_ops != n) {
        /* Applied, but what it did is no longer known here (it was kept
         * too long, or memory ran out): say so rather than guess. */
        unsigned long long at = (unsigned long long)o.seq;
        pdqm_cluster_outcome_free(&o);
        return pdqm_error_set(err, PDQM_ERR_INTERNAL,
                              "the write was applied (log entry %llu) but its outcome is lost", at);
    }
    const pdqm_op_result *r = &o.results[main];
    st = r->error.status;
    if (st != PDQM_OK) {
        if (err)
            *err = r->error;
    } else if (ops[main].type == PDQM_OP_ADD) {
        if (outcomes && r->outcomes)
            memcpy(outcomes, r->outcomes, ops[main].n_adds * sizeof *outcomes);
        for (size_t i = 0; r->numbers && i < ops[main].n_adds; i++)
            if (ops[main].adds[i].number)
                *ops[main].adds[i].number = r->numbers[i];
    } else if (deleted && ops[main].type == PDQM_OP_DELETE_NUMBER) {
        *deleted = r->deleted;
    }
    pdqm_cluster_outcome_free(&o);
    return st;
}

static pdqm_status via_cluster(const pdqm_writer *w, const pdqm_op *ops, size_t n, size_t main,
                               pdqm_add_outcome *outcomes, uint64_t *seq, pdqm_error *err)
{
    return via_cluster_ex(w, ops, n, main, outcomes, NULL, seq, err);
}

static pdqm_status one_op(const pdqm_writer *w, const pdqm_op *op, uint64_t *seq, pdqm_error *err)
{
    return via_cluster(w, op, 1, 0, NULL, seq, err);
}

pdqm_status pdqm_write_bank_create(const pdqm_writer *w, const char *name, int threshold,
                                   pdqm_bank_kind kind, double enabled_ratio, int64_t created,
                                   uint64_t *seq, pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (w->cluster == NULL)
        return pdqm_store_bank_create_with(w->store, name, threshold, kind, enabled_ratio,
                                           created, err);
    pdqm_op op = { .type = PDQM_OP_BANK_CREATE, .bank = name, .threshold = threshold,
                   .bank_kind = (int)kind, .time = created > 0 ? created : (int64_t)time(NULL),
                   .set_ratio = enabled_ratio >= 0, .enabled_ratio = enabled_ratio };
    return one_op(w, &op, seq, err);
}

pdqm_status pdqm_write_bank_update(const pdqm_writer *w, const char *name, int threshold,
                                   int kind, uint64_t *seq, pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (w->cluster == NULL)
        return pdqm_store_bank_update(w->store, name, threshold, kind, err);
    pdqm_op op = { .type = PDQM_OP_BANK_UPDATE, .bank = name, .threshold = threshold,
                   .bank_kind = kind };
    return one_op(w, &op, seq, err);
}

pdqm_status pdqm_write_bank_change(const pdqm_writer *w, const char *name,
                                   const pdqm_bank_changes *changes, uint64_t *seq,
                                   pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (w->cluster == NULL)
        return pdqm_store_bank_change(w->store, name, changes, err);
    pdqm_op op = { .type = PDQM_OP_BANK_UPDATE, .bank = name, .threshold = changes->threshold,
                   .bank_kind = changes->kind, .set_ratio = changes->enabled_ratio >= 0,
                   .enabled_ratio = changes->enabled_ratio >= 0 ? changes->enabled_ratio : 0,
                   .rename = changes->rename };
    return one_op(w, &op, seq, err);
}

pdqm_status pdqm_write_content_change(const pdqm_writer *w, const char *bank, uint32_t number,
                                      const pdqm_content_changes *changes, uint64_t *seq,
                                      pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (w->cluster == NULL)
        return pdqm_store_content_change(w->store, bank, number, changes, err);
    pdqm_op op = { .type = PDQM_OP_CONTENT_CHANGE, .bank = bank, .number = number,
                   .changes = *changes };
    return one_op(w, &op, seq, err);
}

pdqm_status pdqm_write_delete_number(const pdqm_writer *w, const char *bank, uint32_t number,
                                     int *deleted, uint64_t *seq, pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (deleted)
        *deleted = 0;
    if (w->cluster == NULL)
        return pdqm_store_delete_number(w->store, bank, number, deleted, err);
    pdqm_op op = { .type = PDQM_OP_DELETE_NUMBER, .bank = bank, .number = number };
    return via_cluster_ex(w, &op, 1, 0, NULL, deleted, seq, err);
}

pdqm_status pdqm_write_bank_delete(const pdqm_writer *w, const char *name, uint64_t *seq,
                                   pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (w->cluster == NULL)
        return pdqm_store_bank_delete(w->store, name, err);
    pdqm_op op = { .type = PDQM_OP_BANK_DELETE, .bank = name };
    return one_op(w, &op, seq, err);
}

pdqm_status pdqm_write_delete(const pdqm_writer *w, const char *bank, const char *content_id,
                              uint64_t *seq, pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (w->cluster == NULL)
        return pdqm_store_delete(w->store, bank, content_id, err);
    pdqm_op op = { .type = PDQM_OP_DELETE, .bank = bank, .content_id = content_id };
    return one_op(w, &op, seq, err);
}

pdqm_status pdqm_write_add(const pdqm_writer *w, const pdqm_add *adds, size_t n,
                           int create_banks, int deferred, pdqm_add_outcome *outcomes,
                           uint64_t *seq, pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (w->cluster == NULL) {
        if (create_banks)
            return pdqm_ingest_add(w->store, adds, n, deferred, outcomes, err);
        return deferred ? pdqm_store_add_deferred(w->store, adds, n, outcomes, err)
                        : pdqm_store_add(w->store, adds, n, outcomes, err);
    }
    if (n == 0)
        return PDQM_OK;
    /* Times given here, once: every node stores the same. */
    pdqm_add *timed = malloc(n * sizeof *timed);
    pdqm_op *ops = malloc((n + 1) * sizeof *ops);
    pdqm_status st = PDQM_OK;
    if (timed == NULL || ops == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        goto done;
    }
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        timed[i] = adds[i];
        if (timed[i].added <= 0)
            timed[i].added = now;
    }
    /* With create_banks: a create of each bank named that this node does
     * not hold yet, in the same entry, before the add (one that exists
     * when applied is an outcome, and harmless). */
    size_t k = 0;
    if (create_banks) {
        const char *last = NULL;
        for (size_t i = 0; i < n; i++) {
            if (last && strcmp(last, adds[i].bank) == 0)
                continue;
            last = adds[i].bank;
            pdqm_bank_info info;
            /* Without a store, every bank named: one that exists stays. */
            st = w->store ? pdqm_store_bank_get(w->store, last, &info, err) : PDQM_ERR_NOT_FOUND;
            if (st == PDQM_ERR_NOT_FOUND) {
                int dup = 0;
                for (size_t j = 0; j < k; j++)
                    dup |= strcmp(ops[j].bank, last) == 0;
                if (!dup)
                    ops[k++] = (pdqm_op){ .type = PDQM_OP_BANK_CREATE, .bank = last,
                                          .threshold = PDQM_DEFAULT_THRESHOLD,
                                          .bank_kind = PDQM_BANK_BLOCK, .time = now };
                st = PDQM_OK;
            } else if (st != PDQM_OK) {
                goto done;
            }
        }
    }
    ops[k] = (pdqm_op){ .type = PDQM_OP_ADD, .adds = timed, .n_adds = n, .deferred = deferred };
    st = via_cluster(w, ops, k + 1, k, outcomes, seq, err);
done:
    free(timed);
    free(ops);
    return st;
}

/* At most this many banks created in one entry of a bulk load (an entry
 * ends early instead). */
#define BULK_BANKS 64

pdqm_status pdqm_write_add_bulk(const pdqm_writer *w, const pdqm_add *adds, size_t n,
                                int create_banks, int deferred, pdqm_add_outcome *outcomes,
                                pdqm_bulk_counts *counts, pdqm_error *err)
{
    memset(counts, 0, sizeof *counts);
    if (w->cluster == NULL) {
        pdqm_status st = pdqm_write_add(w, adds, n, create_banks, deferred, outcomes, NULL, err);
        if (st == PDQM_OK)
            counts->items = n;
        return st;
    }
    size_t budget = pdqm_cluster_max_entry(w->cluster);
    size_t i = 0;
    while (i < n) {
        /* The entry: the header, an ADD op, each new bank's create. */
        size_t used = PDQM_LOG_HEADER_BYTES + PDQM_LOG_ADD_BYTES, j = i;
        const char *banks[BULK_BANKS];
        size_t n_banks = 0;
        while (j < n) {
            size_t b = pdqm_log_add_bytes(&adds[j]);
            if (b == 0)
                return pdqm_error_set(err, PDQM_ERR_INVALID, "item %zu cannot be written in a "
                                      "log entry (a missing or too long field)", j);
            int new_bank = 0;
            if (create_banks) {
                new_bank = 1;
                for (size_t k = 0; k < n_banks && new_bank; k++)
                    new_bank = strcmp(banks[k], adds[j].bank) != 0;
                if (new_bank) {
                    pdqm_op create = { .type = PDQM_OP_BANK_CREATE, .bank = adds[j].bank };
                    b += pdqm_log_op_bytes(&create);
                }
            }
            if (used + b > budget || (new_bank && n_banks == BULK_BANKS)) {
                if (j == i)
                    return pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                                          "item %zu ('%s') takes %zu bytes, over the %zu a "
                                          "log entry may hold", j, adds[j].content_id, b,
                                          budget - PDQM_LOG_HEADER_BYTES - PDQM_LOG_ADD_BYTES);
                break;
            }
            if (new_bank)
                banks[n_banks++] = adds[j].bank;
            used += b;
            j++;
        }
        uint64_t seq = 0;
        pdqm_status st = pdqm_write_add(w, adds + i, j - i, create_banks, deferred,
                                        outcomes ? outcomes + i : NULL, &seq, err);
        if (st != PDQM_OK)
            return st;
        counts->last_seq = seq;
        counts->entries++;
        counts->bytes += used;
        counts->items += j - i;
        i = j;
    }
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* Imports through a writer                                             */

/* A bank line: one entry of a create (a bank that exists stays) and an
 * update to the line's threshold, kind and enabled ratio, so every node
 * ends the same whatever it held.  (The ratio is set only when not 1, so
 * that an export of none stays readable by nodes of an earlier log
 * version.) */
static pdqm_status sink_bank(void *arg, const char *name, int threshold, pdqm_bank_kind kind,
                             double enabled_ratio, int64_t created, int *did, pdqm_error *err)
{
    const pdqm_writer *w = arg;
    *did = -1;
    pdqm_op ops[2] = {
        { .type = PDQM_OP_BANK_CREATE, .bank = name, .threshold = threshold,
          .bank_kind = (int)kind, .time = created > 0 ? created : (int64_t)time(NULL) },
        { .type = PDQM_OP_BANK_UPDATE, .bank = name, .threshold = threshold,
          .bank_kind = (int)kind, .set_ratio = enabled_ratio != 1.0,
          .enabled_ratio = enabled_ratio },
    };
    return via_cluster(w, ops, 2, 1, NULL, NULL, err);
}

static pdqm_status sink_add(void *arg, const pdqm_add *adds, size_t n,
                            pdqm_add_outcome *outcomes, int *known, pdqm_error *err)
{
    const pdqm_writer *w = arg;
    pdqm_bulk_counts c;
    *known = w->store != NULL;
    return pdqm_write_add_bulk(w, adds, n, 1, 1, outcomes, &c, err);
}

void pdqm_write_import_sink(const pdqm_writer *w, pdqm_import_sink *out)
{
    if (w->cluster == NULL) {
        pdqm_import_store_sink(w->store, out);
        return;
    }
    *out = (pdqm_import_sink){ (void *)w, sink_bank, sink_add, NULL };
}


pdqm_status pdqm_write_ops(const pdqm_writer *w, const pdqm_op *ops, size_t n,
                           pdqm_op_result *results, uint64_t *seq, pdqm_error *err)
{
    if (seq)
        *seq = 0;
    if (w->cluster == NULL)
        return pdqm_store_apply_ops(w->store, ops, n, results, err);
    if (w->store && !pdqm_store_writable(w->store))
        return pdqm_error_set(err, PDQM_ERR_NO_SPACE, "this node's disk is full: nothing was "
                              "written; another node of the cluster can take it");
    if (w->store == NULL) {
        uint64_t at;
        return pdqm_cluster_publish(w->cluster, ops, n, seq ? seq : &at, err);
    }
    pdqm_cluster_outcome o;
    pdqm_status st = pdqm_cluster_write(w->cluster, ops, n, &o, err);
    if (st != PDQM_OK)
        return st;
    if (seq)
        *seq = o.seq;
    if (o.n_ops != n) {
        unsigned long long at = (unsigned long long)o.seq;
        pdqm_cluster_outcome_free(&o);
        return pdqm_error_set(err, PDQM_ERR_INTERNAL,
                              "the write was applied (log entry %llu) but its outcome is lost", at);
    }
    for (size_t i = 0; results && i < n; i++) {
        const pdqm_op_result *r = &o.results[i];
        results[i].error = r->error;
        results[i].deleted = r->deleted;
        int adds = ops[i].type == PDQM_OP_ADD || ops[i].type == PDQM_OP_PUT;
        if (adds && results[i].outcomes && r->outcomes)
            memcpy(results[i].outcomes, r->outcomes, ops[i].n_adds * sizeof *r->outcomes);
        if (adds && results[i].numbers && r->numbers)
            memcpy(results[i].numbers, r->numbers, ops[i].n_adds * sizeof *r->numbers);
    }
    pdqm_cluster_outcome_free(&o);
    return PDQM_OK;
}
