/*
 * store_exchange.c - what the store keeps for hash exchanges (a config, a
 * checkpoint, a status and a lease each), and the PUT of their records:
 * an add in which a record fetched again replaces its item only when it
 * changed (store.h, "Exchanges", PDQM_OP_PUT).
 *
 * An exchange lives in the meta table under "exchange/<name>", so that
 * stores from before exchanges need no new table.  Its value:
 *   version (u8, 1), flags (u8: 1 checkpoint, 2 status), lease_until (i64),
 *   holder (u16 length + bytes), config (u32 + bytes), then the checkpoint
 *   and the status (u32 + bytes each, only with their flags),
 * in the machine's byte order (the store's own, as every value of it).
 */
#define _POSIX_C_SOURCE 200809L
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XPREFIX "exchange/"
#define XPREFIX_LEN (sizeof XPREFIX - 1)

typedef struct xview {
    int64_t lease_until;
    const char *holder;
    size_t holder_len;
    const char *config, *checkpoint, *status;
    size_t config_len, checkpoint_len, status_len;
} xview;

static int xdecode(const MDB_val *v, xview *out)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    memset(out, 0, sizeof *out);
    if (end - p < 12 || p[0] != 1 || (p[1] & ~3u))
        return -1;
    unsigned flags = p[1];
    memcpy(&out->lease_until, p + 2, 8);
    p += 10;
    uint16_t hl;
    memcpy(&hl, p, 2);
    p += 2;
    if ((size_t)(end - p) < hl || hl > PDQM_LEASE_HOLDER_MAX)
        return -1;
    out->holder = (const char *)p;
    out->holder_len = hl;
    p += hl;
    const char **texts[3] = { &out->config, &out->checkpoint, &out->status };
    size_t *lens[3] = { &out->config_len, &out->checkpoint_len, &out->status_len };
    for (int i = 0; i < 3; i++) {
        if (i > 0 && !(flags & (1u << (i - 1))))
            continue;
        uint32_t len;
        if (end - p < 4)
            return -1;
        memcpy(&len, p, 4);
        p += 4;
        if ((size_t)(end - p) < len || len > PDQM_EXCHANGE_TEXT_MAX)
            return -1;
        *texts[i] = (const char *)p;
        *lens[i] = len;
        p += len;
    }
    return p == end ? 0 : -1;
}

/* The value of x in a new buffer (*out, *len). */
static int xencode(const xview *x, uint8_t **out, size_t *len)
{
    size_t n = 12 + x->holder_len + 4 + x->config_len +
               (x->checkpoint ? 4 + x->checkpoint_len : 0) + (x->status ? 4 + x->status_len : 0);
    uint8_t *b = malloc(n), *p = b;
    if (b == NULL)
        return ENOMEM;
    *p++ = 1;
    *p++ = (uint8_t)((x->checkpoint ? 1 : 0) | (x->status ? 2 : 0));
    memcpy(p, &x->lease_until, 8);
    p += 8;
    uint16_t hl = (uint16_t)x->holder_len;
    memcpy(p, &hl, 2);
    p += 2;
    if (x->holder_len)
        memcpy(p, x->holder, x->holder_len);
    p += x->holder_len;
    const char *texts[3] = { x->config, x->checkpoint, x->status };
    size_t lens[3] = { x->config_len, x->checkpoint_len, x->status_len };
    for (int i = 0; i < 3; i++) {
        if (i > 0 && texts[i] == NULL)
            continue;
        uint32_t l = (uint32_t)lens[i];
        memcpy(p, &l, 4);
        p += 4;
        if (l)
            memcpy(p, texts[i], l);
        p += l;
    }
    *out = b;
    *len = n;
    return 0;
}

static void xkey(const char *name, char *buf, MDB_val *k)
{
    size_t n = strlen(name);
    memcpy(buf, XPREFIX, XPREFIX_LEN);
    memcpy(buf + XPREFIX_LEN, name, n);
    k->mv_size = XPREFIX_LEN + n;
    k->mv_data = buf;
}

static int text_ok(const char *t)
{
    return t == NULL || strlen(t) <= PDQM_EXCHANGE_TEXT_MAX;
}

pdqm_status store_exchange_check(const pdqm_op *op, pdqm_error *err)
{
    if (pdqm_bank_name_check(op->exchange, err) != PDQM_OK)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "an exchange name is 1 to %d bytes of [A-Za-z0-9._-]",
                              PDQM_BANK_NAME_MAX);
    if (op->type == PDQM_OP_EXCHANGE_DELETE)
        return PDQM_OK;
    unsigned f = op->xflags;
    if (f & ~(PDQM_XSET_CREATE | PDQM_XSET_CONFIG | PDQM_XSET_CHECKPOINT | PDQM_XSET_STATUS |
              PDQM_XSET_LEASE))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "unknown exchange flags 0x%x", f);
    if ((f & PDQM_XSET_CREATE) && !(f & PDQM_XSET_CONFIG))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a new exchange needs its config");
    if (((f & PDQM_XSET_CONFIG) && op->config == NULL) ||
        ((f & PDQM_XSET_STATUS) && op->status == NULL))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "an exchange's config or status is missing");
    if (!text_ok(op->config) || !text_ok(op->checkpoint) || !text_ok(op->status))
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                              "an exchange's config, checkpoint or status is over %d bytes",
                              PDQM_EXCHANGE_TEXT_MAX);
    if (f & PDQM_XSET_LEASE) {
        size_t hl = op->holder ? strlen(op->holder) : 0;
        if (hl == 0 || hl > PDQM_LEASE_HOLDER_MAX ||
            (op->takeover && strlen(op->takeover) > PDQM_LEASE_HOLDER_MAX))
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "a lease holder is 1 to %d bytes", PDQM_LEASE_HOLDER_MAX);
        if (op->time <= 0 || op->lease_until < 0)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "a lease needs its time");
    }
    return PDQM_OK;
}

static int same_text(const char *a, size_t alen, const char *b)
{
    return b != NULL && strlen(b) == alen && memcmp(a, b, alen) == 0;
}

int store_exchange_set_in(pdqm_store *s, MDB_txn *txn, const pdqm_op *op, pdqm_error *err)
{
    char kbuf[XPREFIX_LEN + PDQM_BANK_NAME_MAX + 1];
    MDB_val k, v;
    xkey(op->exchange, kbuf, &k);
    int rc = mdb_get(txn, s->db.meta, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    int exists = rc == 0;
    unsigned f = op->xflags;
    if (exists && (f & PDQM_XSET_CREATE)) {
        pdqm_error_set(err, PDQM_ERR_EXISTS, "exchange '%s' exists already", op->exchange);
        return -1;
    }
    if (!exists && !(f & PDQM_XSET_CREATE)) {
        pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no exchange '%s'", op->exchange);
        return -1;
    }
    xview x = { 0 };
    if (exists && xdecode(&v, &x) != 0)
        return MDB_CORRUPTED;
    if (f & PDQM_XSET_LEASE) {
        int held = x.holder_len > 0 && x.lease_until > op->time &&
                   !same_text(x.holder, x.holder_len, op->holder) &&
                   !(op->takeover && same_text(x.holder, x.holder_len, op->takeover));
        if (held) {
            pdqm_error_set(err, PDQM_ERR_BUSY,
                           "exchange '%s' is being fetched by %.*s (lease until %lld)",
                           op->exchange, (int)x.holder_len, x.holder,
                           (long long)x.lease_until);
            return -1;
        }
        if (op->lease_until > 0) {
            x.holder = op->holder;
            x.holder_len = strlen(op->holder);
            x.lease_until = op->lease_until;
        } else {
            x.holder = "";
            x.holder_len = 0;
            x.lease_until = 0;
        }
    }
    if (f & PDQM_XSET_CONFIG) {
        x.config = op->config;
        x.config_len = strlen(op->config);
    }
    if (f & PDQM_XSET_CHECKPOINT) {
        x.checkpoint = op->checkpoint;
        x.checkpoint_len = op->checkpoint ? strlen(op->checkpoint) : 0;
    }
    if (f & PDQM_XSET_STATUS) {
        x.status = op->status;
        x.status_len = strlen(op->status);
    }
    uint8_t *buf;
    size_t len;
    /* (x may point into the old value: encode before writing.) */
    if ((rc = xencode(&x, &buf, &len)) != 0)
        return rc;
    MDB_val nv = { len, buf };
    rc = mdb_put(txn, s->db.meta, &k, &nv, 0);
    free(buf);
    return rc;
}

int store_exchange_delete_in(pdqm_store *s, MDB_txn *txn, const char *name, pdqm_error *err)
{
    char kbuf[XPREFIX_LEN + PDQM_BANK_NAME_MAX + 1];
    MDB_val k;
    xkey(name, kbuf, &k);
    int rc = mdb_del(txn, s->db.meta, &k, NULL);
    if (rc == MDB_NOTFOUND) {
        pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no exchange '%s'", name);
        return -1;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

void pdqm_exchange_state_clear(pdqm_exchange_state *st)
{
    if (st == NULL)
        return;
    free(st->config);
    free(st->checkpoint);
    free(st->status);
    memset(st, 0, sizeof *st);
}

void pdqm_exchange_states_free(pdqm_exchange_state *v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        pdqm_exchange_state_clear(&v[i]);
    free(v);
}

static char *dup_text(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Fill *out from a stored value (0, -1 malformed, ENOMEM). */
static int state_from(const char *name, size_t name_len, const MDB_val *v,
                      pdqm_exchange_state *out)
{
    xview x;
    memset(out, 0, sizeof *out);
    if (name_len > PDQM_BANK_NAME_MAX || xdecode(v, &x) != 0)
        return -1;
    memcpy(out->name, name, name_len);
    if (x.holder_len)
        memcpy(out->holder, x.holder, x.holder_len);
    out->lease_until = x.lease_until;
    out->config = dup_text(x.config, x.config_len);
    out->checkpoint = x.checkpoint ? dup_text(x.checkpoint, x.checkpoint_len) : NULL;
    out->status = x.status ? dup_text(x.status, x.status_len) : NULL;
    if (!out->config || (x.checkpoint && !out->checkpoint) || (x.status && !out->status)) {
        pdqm_exchange_state_clear(out);
        return ENOMEM;
    }
    return 0;
}

typedef struct get_args {
    const char *name;
    pdqm_exchange_state *out;
} get_args;

static pdqm_status do_get(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    get_args *a = arg;
    char kbuf[XPREFIX_LEN + PDQM_BANK_NAME_MAX + 1];
    MDB_val k, v;
    xkey(a->name, kbuf, &k);
    int rc = mdb_get(txn, s->db.meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no exchange '%s'", a->name);
    if (rc == 0)
        rc = state_from(a->name, strlen(a->name), &v, a->out);
    if (rc == -1)
        rc = MDB_CORRUPTED;
    return rc ? store_lmdb_error(err, rc, "cannot read an exchange") : PDQM_OK;
}

pdqm_status pdqm_store_exchange_get(pdqm_store *store, const char *name,
                                    pdqm_exchange_state *out, pdqm_error *err)
{
    if (pdqm_bank_name_check(name, NULL) != PDQM_OK)
        return pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no exchange '%s'", name ? name : "");
    pdqm_exchange_state st;
    get_args a = { name, &st };
    pdqm_status rc = store_read(store, do_get, &a, err);
    if (rc == PDQM_OK)
        *out = st;
    return rc;
}

typedef struct list_args {
    pdqm_exchange_state *v;
    size_t n, cap;
} list_args;

static pdqm_status do_list(pdqm_store *s, MDB_txn *txn, void *arg, pdqm_error *err)
{
    list_args *a = arg;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db.meta, &cur);
    if (rc != 0)
        return store_lmdb_error(err, rc, "cannot list the exchanges");
    MDB_val k = { XPREFIX_LEN, (void *)XPREFIX }, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < XPREFIX_LEN || memcmp(k.mv_data, XPREFIX, XPREFIX_LEN) != 0)
            break;
        if (a->n == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 8;
            pdqm_exchange_state *g = realloc(a->v, cap * sizeof *g);
            if (g == NULL) {
                rc = ENOMEM;
                break;
            }
            a->v = g;
            a->cap = cap;
        }
        rc = state_from((const char *)k.mv_data + XPREFIX_LEN, k.mv_size - XPREFIX_LEN, &v,
                        &a->v[a->n]);
        if (rc == -1)
            rc = MDB_CORRUPTED;
        if (rc != 0)
            break;
        a->n++;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return rc ? store_lmdb_error(err, rc, "cannot list the exchanges") : PDQM_OK;
}

pdqm_status pdqm_store_exchange_list(pdqm_store *store, pdqm_exchange_state **out,
                                     size_t *n, pdqm_error *err)
{
    list_args a = { NULL, 0, 0 };
    pdqm_status st = store_read(store, do_list, &a, err);
    if (st != PDQM_OK) {
        pdqm_exchange_states_free(a.v, a.n);
        return st;
    }
    *out = a.v;
    *n = a.n;
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* PUT: an add that replaces what changed                               */

static int nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Whether hex (checked before: 2n hex digits) is the n bytes raw. */
static int same_digest(const char *hex, const uint8_t *raw, size_t n)
{
    if (hex == NULL || raw == NULL)
        return hex == NULL && raw == NULL;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1])) != raw[i])
            return 0;
    return 1;
}

static int same_opt_text(const char *stored, size_t len, const char *given)
{
    size_t glen = given ? strlen(given) : 0;
    if (stored == NULL)
        len = 0;
    return len == glen && (len == 0 || memcmp(stored, given, len) == 0);
}

/* Whether the stored item c holds exactly what a would store: 1, 0, or
 * an LMDB error as a negative number. */
static int same_item(pdqm_store *s, MDB_txn *txn, const content_view *c, const pdqm_add *a)
{
    if (c->head.kind != (uint32_t)a->kind || c->head.n_hashes != a->n_hashes ||
        c->head.disabled_until != a->disabled_until ||
        !same_opt_text(c->metadata, c->head.meta_len, a->metadata) ||
        !same_opt_text(c->note, c->head.note_len, a->note) ||
        !same_digest(a->sha256, c->sha256, 32) || !same_digest(a->md5, c->md5, 16))
        return 0;
    uint32_t block = UINT32_MAX;
    MDB_val cached = { 0, NULL };
    for (uint32_t k = 0; k < c->head.n_hashes; k++) {
        record r;
        int rc = store_read_record(s, txn, c->head.first_entry + k, &r, &block, &cached);
        if (rc != 0)
            return -rc;
        double ts = 0;
        if (c->timestamps)
            memcpy(&ts, c->timestamps + 8 * (size_t)k, 8);
        if (memcmp(r.hash, a->hashes[k].hash.w, 32) != 0 || r.quality != a->hashes[k].quality ||
            ts != a->hashes[k].timestamp)
            return 0;
    }
    return 1;
}

int store_put_in(pdqm_store *s, MDB_txn *txn, const pdqm_add *adds, size_t n,
                 pdqm_add_outcome *outcomes, uint32_t *numbers, int deferred,
                 uint32_t *pending_after, uint32_t *window_after, pdqm_error *err)
{
    /* Which items to add (new or changed), each changed one deleted first. */
    size_t *keep = malloc((n ? n : 1) * sizeof *keep);
    pdqm_add *sub = malloc((n ? n : 1) * sizeof *sub);
    uint8_t *replaced = calloc(n ? n : 1, 1);
    pdqm_add_outcome *sub_out = malloc((n ? n : 1) * sizeof *sub_out);
    uint32_t *sub_num = malloc((n ? n : 1) * sizeof *sub_num);
    int rc = 0;
    size_t m = 0;
    *pending_after = *window_after = 0;
    if (!keep || !sub || !replaced || !sub_out || !sub_num) {
        rc = ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const pdqm_add *a = &adds[i];
        if (a->content_id != NULL) {
            bank_rec b;
            rc = store_bank_find(s, txn, a->bank, &b);
            if (rc == MDB_NOTFOUND) {
                pdqm_error_set(err, PDQM_ERR_NOT_FOUND, "no bank '%s'", a->bank);
                rc = -1;
            }
            if (rc != 0)
                goto done;
            uint32_t number;
            MDB_val rv;
            rc = store_content_find(s, txn, b.id, a->content_id, strlen(a->content_id),
                                    &number, &rv);
            if (rc == 0) {
                /* (An earlier item of this batch with the same id was
                 * added, not stored: the add below settles that one.) */
                content_view c;
                if ((rc = store_content_read(s, txn, number, &rv, &c)) != 0)
                    goto done;
                int same = same_item(s, txn, &c, a);
                if (same < 0) {
                    rc = -same;
                    goto done;
                }
                if (same) {
                    if (outcomes)
                        outcomes[i] = PDQM_ADD_EXISTS;
                    if (numbers)
                        numbers[i] = number;
                    else if (a->number)
                        *a->number = number;
                    continue;
                }
                if ((rc = store_delete_in(s, txn, a->bank, a->content_id, err)) != 0)
                    goto done;
                replaced[i] = 1;
            } else if (rc != MDB_NOTFOUND) {
                goto done;
            }
            rc = 0;
        }
        keep[m] = i;
        sub[m++] = *a;
    }
    if (m > 0 && (rc = store_add_in(s, txn, sub, m, sub_out, sub_num, deferred, pending_after,
                                    window_after, err)) != 0)
        goto done;
    for (size_t j = 0; j < m; j++) {
        size_t i = keep[j];
        if (outcomes)
            outcomes[i] = sub_out[j] == PDQM_ADDED && replaced[i] ? PDQM_ADD_REPLACED : sub_out[j];
        if (numbers)
            numbers[i] = sub_num[j];
        else if (adds[i].number)
            *adds[i].number = sub_num[j];
    }
done:
    free(keep);
    free(sub);
    free(replaced);
    free(sub_out);
    free(sub_num);
    return rc;
}
