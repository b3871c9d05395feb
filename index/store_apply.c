/*
 * store_apply.c - applying entries of a replicated log: a batch of entries
 * in one write transaction with the last sequence number applied, each op
 * in a nested transaction of its own (store.h, "Applying a replicated
 * log").
 *
 * What makes every store that applies the same log end the same: the ops
 * carry their times, an op that cannot be applied is an outcome (its
 * nested transaction undone) and never stops the batch, and only what
 * depends on the node (the disk, the memory, LMDB itself) fails a batch,
 * which then changes nothing and is applied again later.
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#define APPLIED_KEY "applied_seq"

static int applied_get(pdqm_store *s, MDB_txn *txn, uint64_t *out)
{
    return store_meta_get_sized(s, txn, APPLIED_KEY, out, sizeof *out);
}

static int applied_put(pdqm_store *s, MDB_txn *txn, uint64_t seq)
{
    return store_meta_put_sized(s, txn, APPLIED_KEY, &seq, sizeof seq);
}

/* An op's own failure (an outcome) or the node's (the batch fails)? */
static int is_outcome(pdqm_status st)
{
    return st == PDQM_ERR_INVALID || st == PDQM_ERR_NOT_FOUND || st == PDQM_ERR_EXISTS ||
           st == PDQM_ERR_TOO_LARGE || st == PDQM_ERR_DEGENERATE || st == PDQM_ERR_BUSY;
}

/* The checks of the op's own call, and the log's own rule: no "now". */
pdqm_status pdqm_store_check_op(const pdqm_op *op, pdqm_error *err)
{
    switch (op->type) {
    case PDQM_OP_BANK_CREATE:
        if (op->time <= 0)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "a bank created from the log needs its time");
        if (op->set_ratio && !(op->enabled_ratio >= 0 && op->enabled_ratio <= 1))
            return pdqm_error_set(err, PDQM_ERR_INVALID, "an enabled ratio is 0 to 1");
        return store_bank_check(op->bank, op->threshold, op->bank_kind, 0, err);
    case PDQM_OP_BANK_UPDATE: {
        pdqm_bank_changes c = { op->threshold, op->bank_kind,
                                op->set_ratio ? op->enabled_ratio : -1.0, op->rename };
        if (op->set_ratio && op->enabled_ratio < 0)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "an enabled ratio is 0 to 1");
        return store_bank_changes_check(op->bank, &c, err);
    }
    case PDQM_OP_BANK_DELETE:
        return pdqm_bank_name_check(op->bank, err);
    case PDQM_OP_EXCHANGE_SET:
    case PDQM_OP_EXCHANGE_DELETE:
        return store_exchange_check(op, err);
    case PDQM_OP_ADD:
    case PDQM_OP_PUT:
        if (op->n_adds == 0 || op->adds == NULL)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "an add from the log has no items");
        for (size_t i = 0; i < op->n_adds; i++)
            if (op->adds[i].added <= 0)
                return pdqm_error_set(err, PDQM_ERR_INVALID,
                                      "item %zu: an add from the log needs its time", i + 1);
        return store_add_check(op->adds, op->n_adds, err);
    case PDQM_OP_DELETE:
        return store_delete_check(op->bank, op->content_id, err);
    case PDQM_OP_CONTENT_CHANGE:
        if (op->bank && pdqm_bank_name_check(op->bank, err) != PDQM_OK)
            return err ? err->status : PDQM_ERR_INVALID;
        return store_content_changes_check(&op->changes, err);
    case PDQM_OP_DELETE_NUMBER:
        return op->bank ? pdqm_bank_name_check(op->bank, err) : PDQM_OK;
    }
    return pdqm_error_set(err, PDQM_ERR_INVALID, "unknown op %d", (int)op->type);
}

typedef struct apply_args {
    pdqm_log_entry *entries;
    size_t n;
    int no_seq;               /* pdqm_store_apply_ops: no seq read or stored */
    int pass_due;             /* out: a small add brought the pending hashes
                                 to their window */
} apply_args;

/* Run one op in a nested transaction.  Returns 0 when it was applied or
 * is an outcome (in res->error), else the code that fails the batch (-1:
 * with *err set). */
static int run_op(pdqm_store *s, MDB_txn *txn, const pdqm_op *op, pdqm_op_result *res,
                  apply_args *a, pdqm_error *err)
{
    pdqm_error *e = &res->error;
    pdqm_error_clear(e);
    if (pdqm_store_check_op(op, e) != PDQM_OK)
        return 0;
    MDB_txn *child;
    int rc = mdb_txn_begin(s->env, txn, 0, &child);
    if (rc != 0)
        return rc;
    switch (op->type) {
    case PDQM_OP_BANK_CREATE:
        rc = store_bank_create_in(s, child, op->bank, op->threshold, op->bank_kind, op->time,
                                  op->set_ratio ? op->enabled_ratio : -1.0, e);
        break;
    case PDQM_OP_BANK_UPDATE: {
        pdqm_bank_changes c = { op->threshold, op->bank_kind,
                                op->set_ratio ? op->enabled_ratio : -1.0, op->rename };
        rc = store_bank_change_in(s, child, op->bank, &c, e);
        break;
    }
    case PDQM_OP_CONTENT_CHANGE:
        rc = store_content_change_in(s, child, op->bank, op->number, &op->changes, e);
        break;
    case PDQM_OP_DELETE_NUMBER:
        rc = store_delete_number_in(s, child, op->bank, op->number, &res->deleted, e);
        break;
    case PDQM_OP_BANK_DELETE:
        rc = store_bank_delete_in(s, child, op->bank, e);
        break;
    case PDQM_OP_DELETE:
        rc = store_delete_in(s, child, op->bank, op->content_id, e);
        break;
    case PDQM_OP_ADD:
    case PDQM_OP_PUT: {
        /* As pdqm_store_add() does: a small add waits for a pass. */
        int small = !op->deferred && store_add_is_small(op->adds, op->n_adds);
        uint32_t pending = 0, window = 0;
        rc = (op->type == PDQM_OP_ADD ? store_add_in : store_put_in)(
            s, child, op->adds, op->n_adds, res->outcomes, res->numbers,
            op->deferred || small, &pending, &window, e);
        if (rc == 0 && small && pending >= window)
            a->pass_due = 1;
        break;
    }
    case PDQM_OP_EXCHANGE_SET:
        rc = store_exchange_set_in(s, child, op, e);
        break;
    case PDQM_OP_EXCHANGE_DELETE:
        rc = store_exchange_delete_in(s, child, op->exchange, e);
        break;
    }
    if (rc == 0)
        return mdb_txn_commit(child);
    mdb_txn_abort(child);
    if (rc == -1 && !is_outcome(e->status)) {
        *err = *e;
        return -1;
    }
    if (rc != -1)
        return rc;
    return 0;
}

/* The ops of one entry; an op marked guard that fails skips the rest. */
static int run_entry(pdqm_store *s, MDB_txn *txn, pdqm_log_entry *en, apply_args *a,
                     pdqm_error *err)
{
    pdqm_error guard;          /* the failed guard's outcome, once one failed */
    int failed = 0;
    for (size_t j = 0; j < en->n_ops; j++) {
        pdqm_op_result local = { .outcomes = NULL };
        pdqm_op_result *res = en->results ? &en->results[j] : &local;
        if (failed) {
            pdqm_error_set(&res->error, guard.status, "not applied: %s", guard.message);
            continue;
        }
        int rc = run_op(s, txn, &en->ops[j], res, a, err);
        if (rc != 0)
            return rc;
        if (en->ops[j].guard && res->error.status != PDQM_OK) {
            guard = res->error;
            failed = 1;
        }
    }
    return 0;
}

static int do_apply(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    apply_args *a = arg;
    a->pass_due = 0;
    uint64_t applied = 0;
    int rc = a->no_seq ? 0 : applied_get(s, txn, &applied);
    if (rc != 0)
        return rc;
    uint64_t last = applied;
    for (size_t i = 0; i < a->n; i++) {
        pdqm_log_entry *en = &a->entries[i];
        en->skipped = !a->no_seq && en->seq <= applied;
        if (en->skipped)
            continue;
        if ((rc = run_entry(s, txn, en, a, err)) != 0)
            return rc;
        last = en->seq;
    }
    return !a->no_seq && last != applied ? applied_put(s, txn, last) : 0;
}

pdqm_status pdqm_store_apply_ops(pdqm_store *store, const pdqm_op *ops, size_t n,
                                 pdqm_op_result *results, pdqm_error *err)
{
    if (n == 0)
        return PDQM_OK;
    pdqm_log_entry en = { 0, ops, n, results, 0 };
    apply_args a = { &en, 1, 1, 0 };
    pdqm_status st = store_write(store, do_apply, &a, "cannot write to the store", err);
    if (st == PDQM_OK && a.pass_due)
        store_pass_due(store);
    return st;
}

pdqm_status pdqm_store_apply(pdqm_store *store, pdqm_log_entry *entries, size_t n,
                             pdqm_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (entries[i].seq == 0 || (i && entries[i].seq <= entries[i - 1].seq))
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "log entries must come in ascending order from 1 "
                                  "(entry %zu is %llu)", i + 1,
                                  (unsigned long long)entries[i].seq);
    if (n == 0)
        return PDQM_OK;
    apply_args a = { entries, n, 0, 0 };
    pdqm_status st = store_write(store, do_apply, &a, "cannot apply the log", err);
    /* The batch has committed whatever happens next; a failed pass loses
     * nothing and is tried again by the next small add. */
    if (st == PDQM_OK && a.pass_due)
        store_pass_due(store);
    return st;
}

static pdqm_status do_applied(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    int rc = applied_get(s, txn, arg);
    return rc ? store_lmdb_error(err, rc, "cannot read the applied sequence") : PDQM_OK;
}

pdqm_status pdqm_store_applied_seq(pdqm_store *store, uint64_t *seq, pdqm_error *err)
{
    uint64_t v = 0;
    pdqm_status st = store_read(store, do_applied, &v, err);
    if (st == PDQM_OK)
        *seq = v;
    return st;
}
