/*
 * fetch.c - one fetch of one exchange: its client's pages into the store,
 * a batch of records and the checkpoint that covers them a write, each
 * write guarded by the fetcher's lease (exchange.h).
 *
 * A batch is what has come since the last write, the last version of each
 * record id only (a record and its withdrawal in one batch leave the
 * withdrawal).  It is written when it is large, when it has waited two
 * seconds, and at the end; its checkpoint is that of the last page read
 * whole, so a batch cut in the middle of a page (to fit a log entry)
 * carries the checkpoint from before the page, which is read again after
 * a crash.
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void pdqm_exchange_fetch_options_default(pdqm_exchange_fetch_options *o)
{
    memset(o, 0, sizeof *o);
    o->timeout = 60;
    o->max_retries = 5;
    o->retry_base = 0.5;
    o->max_wait = 120;
    o->max_page_bytes = (size_t)64 << 20;
    o->lease_seconds = 600;
    o->batch_records = 20000;
}

static const xclient *client_of(pdqm_exchange_type t)
{
    switch (t) {
    case PDQM_EXCHANGE_NCMEC: return &xclient_ncmec;
    case PDQM_EXCHANGE_STOPNCII: return &xclient_stopncii;
    case PDQM_EXCHANGE_THREATEXCHANGE: return &xclient_threatexchange;
    case PDQM_EXCHANGE_TCAP: return &xclient_tcap;
    }
    return NULL;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* A batch: the last action on each record id since the last write     */

typedef struct action {
    char *id;
    int deleted;
    int quiet;                 /* a deletion not counted when nothing goes */
    int64_t updated;
    pdqm_add add;              /* live records */
    pdqm_stored_hash hash;
    char *metadata;
    char *md5;
} action;

typedef struct batch {
    action *a;
    size_t n, cap;
    size_t *index;             /* open addressing: action number + 1 (0: empty) */
    size_t index_cap;
    size_t bytes;              /* the entry's size, roughly, through a cluster */
    size_t live;               /* actions in use (overwritten ones are reused) */
} batch;

static void action_clear(action *x)
{
    free(x->id);
    free(x->metadata);
    free(x->md5);
    memset(x, 0, sizeof *x);
}

static void batch_clear(batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        action_clear(&b->a[i]);
    b->n = 0;
    b->bytes = 0;
    if (b->index)
        memset(b->index, 0, b->index_cap * sizeof *b->index);
}

static void batch_free(batch *b)
{
    batch_clear(b);
    free(b->a);
    free(b->index);
    memset(b, 0, sizeof *b);
}

/* The action for id, or a new one (*fresh 1); NULL when out of memory. */
static action *batch_slot(batch *b, const char *id, int *fresh)
{
    if ((b->n + 1) * 2 > b->index_cap) {
        size_t cap = b->index_cap ? b->index_cap * 2 : 4096;
        size_t *idx = calloc(cap, sizeof *idx);
        if (idx == NULL)
            return NULL;
        for (size_t i = 0; i < b->n; i++) {
            size_t j = xstr_hash(b->a[i].id) & (cap - 1);
            while (idx[j])
                j = (j + 1) & (cap - 1);
            idx[j] = i + 1;
        }
        free(b->index);
        b->index = idx;
        b->index_cap = cap;
    }
    size_t j = xstr_hash(id) & (b->index_cap - 1);
    while (b->index[j]) {
        action *x = &b->a[b->index[j] - 1];
        if (strcmp(x->id, id) == 0) {
            *fresh = 0;
            return x;
        }
        j = (j + 1) & (b->index_cap - 1);
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        action *g = realloc(b->a, cap * sizeof *g);
        if (g == NULL)
            return NULL;
        b->a = g;
        b->cap = cap;
    }
    action *x = &b->a[b->n];
    memset(x, 0, sizeof *x);
    if ((x->id = strdup(id)) == NULL)
        return NULL;
    b->index[j] = ++b->n;
    *fresh = 1;
    return x;
}

/* ------------------------------------------------------------------ */
/* The run                                                              */

typedef struct run {
    const pdqm_writer *w;
    const pdqm_exchange_fetch_options *o;
    pdqm_exchange_config config;
    char holder[PDQM_LEASE_HOLDER_MAX + 1];
    const char *takeover;
    char takeover_buf[PDQM_LEASE_HOLDER_MAX + 1];
    pdqm_exchange_counts c;
    batch b;
    char *checkpoint;          /* of the last page read whole (NULL: unchanged) */
    int have_checkpoint;
    int64_t started;
    double last_write;
    size_t max_bytes;          /* of an entry's records */
    int full;                  /* a full refetch: sweep at the end */
    xset seen;
    uint64_t page_no;
    char skipped_types[128];
} run;

static void say(run *r, pdqm_exchange_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void say(run *r, pdqm_exchange_log_level level, const char *fmt, ...)
{
    if (r->o->log == NULL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->o->log(r->o->log_arg, level, r->config.name, msg);
}

static void ctx_log(xctx *x, pdqm_exchange_log_level level, const char *fmt, ...)
{
    run *r = x->log_arg;
    if (r->o->log == NULL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->o->log(r->o->log_arg, level, r->config.name, msg);
}

static void on_retry(void *arg, const char *url, long code, double wait)
{
    run *r = arg;
    if (code < 0)
        say(r, PDQM_XLOG_WARN, "%s: no answer; trying again in %.1f s", url, wait);
    else
        say(r, PDQM_XLOG_WARN, "%s: HTTP %ld; trying again in %.1f s", url, code, wait);
}

/* The lease op every write starts with (its guard). */
static void lease_op(run *r, pdqm_op *op, int release)
{
    int64_t now = (int64_t)time(NULL);
    memset(op, 0, sizeof *op);
    op->type = PDQM_OP_EXCHANGE_SET;
    op->exchange = r->config.name;
    op->xflags = PDQM_XSET_LEASE;
    op->guard = 1;
    op->time = now;
    op->holder = r->holder;
    op->lease_until = release ? 0 : now + r->o->lease_seconds;
    op->takeover = r->takeover;
}

/* Write ops (the first the guard) and fold their outcomes into the
 * counts.  An error when the write failed, or the guard did. */
static pdqm_status write_ops(run *r, pdqm_op *ops, size_t n, pdqm_add_outcome *outcomes,
                             size_t put_at, const uint8_t *quiet, pdqm_error *err)
{
    pdqm_op_result *res = calloc(n, sizeof *res);
    if (res == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    if (put_at < n)
        res[put_at].outcomes = outcomes;
    pdqm_status st = pdqm_write_ops(r->w, ops, n, res, NULL, err);
    if (st == PDQM_OK && res[0].error.status != PDQM_OK) {
        st = res[0].error.status;
        if (err)
            *err = res[0].error;
    }
    if (st == PDQM_OK) {
        /* The lease is ours now: no takeover again. */
        r->takeover = NULL;
        for (size_t i = 1; i < n; i++) {
            if (ops[i].type == PDQM_OP_DELETE) {
                if (res[i].error.status == PDQM_OK)
                    r->c.deleted++;
                else if (!quiet[i])
                    r->c.skipped++;      /* nothing of that id to delete */
            } else if (ops[i].type == PDQM_OP_PUT) {
                if (res[i].error.status != PDQM_OK) {
                    st = res[i].error.status;
                    if (err)
                        *err = res[i].error;
                    break;
                }
                for (size_t k = 0; k < ops[i].n_adds; k++)
                    switch (outcomes[k]) {
                    case PDQM_ADDED: r->c.added++; break;
                    case PDQM_ADD_REPLACED: r->c.updated++; break;
                    case PDQM_ADD_EXISTS: r->c.unchanged++; break;
                    case PDQM_ADD_SAME_FILE: r->c.unchanged++; break;
                    }
            }
        }
    }
    free(res);
    r->last_write = now_mono();
    return st;
}

/* Write the batch with the checkpoint (and, at the end, the status and
 * the lease's release). */
static pdqm_status flush(run *r, const char *status, pdqm_error *err)
{
    size_t deletes = 0, puts = 0;
    for (size_t i = 0; i < r->b.n; i++) {
        if (r->b.a[i].id == NULL)
            continue;
        if (r->b.a[i].deleted)
            deletes++;
        else
            puts++;
    }
    size_t n_ops = 1 + deletes + (puts ? 1 : 0);
    pdqm_op *ops = calloc(n_ops, sizeof *ops);
    pdqm_add *adds = calloc(puts ? puts : 1, sizeof *adds);
    pdqm_add_outcome *outcomes = calloc(puts ? puts : 1, sizeof *outcomes);
    uint8_t *quiet = calloc(n_ops, 1);
    if (!ops || !adds || !outcomes || !quiet) {
        free(ops);
        free(adds);
        free(outcomes);
        free(quiet);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    lease_op(r, &ops[0], status != NULL);
    if (r->have_checkpoint) {
        ops[0].xflags |= PDQM_XSET_CHECKPOINT;
        ops[0].checkpoint = r->checkpoint;
    }
    if (status) {
        ops[0].xflags |= PDQM_XSET_STATUS;
        ops[0].status = status;
    }
    size_t k = 1, na = 0;
    for (size_t i = 0; i < r->b.n; i++) {
        action *x = &r->b.a[i];
        if (x->id == NULL)
            continue;
        if (x->deleted) {
            quiet[k] = (uint8_t)x->quiet;
            ops[k++] = (pdqm_op){ .type = PDQM_OP_DELETE, .bank = r->config.bank,
                                  .content_id = x->id };
        }
        else {
            /* (The hash's address is taken now: the batch's array moves as
             * it grows.) */
            adds[na] = x->add;
            adds[na++].hashes = x->add.n_hashes ? &x->hash : NULL;
        }
    }
    size_t put_at = n_ops;
    if (puts) {
        put_at = k;
        ops[k++] = (pdqm_op){ .type = PDQM_OP_PUT, .adds = adds, .n_adds = na, .deferred = 1 };
    }
    pdqm_status st = write_ops(r, ops, n_ops, outcomes, put_at, quiet, err);
    free(ops);
    free(adds);
    free(outcomes);
    free(quiet);
    if (st == PDQM_OK) {
        batch_clear(&r->b);
        r->have_checkpoint = 0;
    }
    return st;
}

/* Take one record of a page into the batch. */
static pdqm_status take(run *r, const xrecord *x, size_t pos, pdqm_error *err)
{
    r->c.records++;
    if (x->bad) {
        r->c.bad++;
        say(r, PDQM_XLOG_WARN, "page %llu, record %zu%s%s%s: %s; skipped",
            (unsigned long long)r->page_no, pos + 1, x->id ? " (id " : "", x->id ? x->id : "",
            x->id ? ")" : "", x->bad);
        return PDQM_OK;
    }
    pdqm_error why;
    if (xrecord_id_check(x->id, &why) != PDQM_OK) {
        r->c.bad++;
        say(r, PDQM_XLOG_WARN, "page %llu, record %zu: %s; skipped",
            (unsigned long long)r->page_no, pos + 1, why.message);
        return PDQM_OK;
    }
    if (r->full && xset_has(&r->seen, x->id, 1) < 0)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    /* A live record of a signal we do not match is counted and skipped;
     * what the bank holds of its id (an earlier version that had one)
     * goes, quietly. */
    int quiet = 0;
    if (!x->deleted && x->signal == XSIG_NONE) {
        r->c.skipped++;
        quiet = 1;
        if (x->other && strlen(r->skipped_types) + strlen(x->other) + 3 <
                            sizeof r->skipped_types &&
            strstr(r->skipped_types, x->other) == NULL)
            snprintf(r->skipped_types + strlen(r->skipped_types),
                     sizeof r->skipped_types - strlen(r->skipped_types), "%s%s",
                     r->skipped_types[0] ? ", " : "", x->other);
    }
    int deleted = x->deleted || quiet;
    pdqm_add add;
    pdqm_stored_hash hash;
    char *meta = NULL;
    if (!deleted) {
        pdqm_status st = xrecord_to_add(&r->config, x, r->started, &add, &hash, &meta, &why);
        if (st == PDQM_ERR_NOMEM)
            return pdqm_error_set(err, st, "out of memory");
        if (st != PDQM_OK) {
            r->c.bad++;
            say(r, PDQM_XLOG_WARN, "page %llu, record %zu (id %s): %s; skipped",
                (unsigned long long)r->page_no, pos + 1, x->id, why.message);
            free(meta);
            return PDQM_OK;
        }
    }
    int fresh;
    action *a = batch_slot(&r->b, x->id, &fresh);
    if (a == NULL) {
        free(meta);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    if (!fresh && x->updated && a->updated > x->updated) {
        free(meta);            /* an older version than the one taken */
        return PDQM_OK;
    }
    char *id = a->id;
    a->id = NULL;
    action_clear(a);
    a->id = id;
    a->deleted = deleted;
    a->quiet = quiet;
    a->updated = x->updated;
    if (!deleted) {
        a->add = add;
        a->hash = hash;
        a->metadata = meta;
        a->add.metadata = meta;
        a->add.content_id = a->id;
        if (add.md5 && (a->md5 = strdup(add.md5)) == NULL)
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        a->add.md5 = a->md5;
        a->add.hashes = add.n_hashes ? &a->hash : NULL;
        r->b.bytes += pdqm_log_add_bytes(&a->add);
        a->add.hashes = NULL;  /* (set when written: the array moves) */
    } else {
        r->b.bytes += 6 + strlen(r->config.bank) + strlen(id);
    }
    return PDQM_OK;
}

/* Whether the batch is due for a write now. */
static int due(const run *r)
{
    return r->b.n >= r->o->batch_records || r->b.bytes >= r->max_bytes ||
           r->b.n >= 60000 || now_mono() - r->last_write >= 2.0;
}

/* The holder of this process: host/pid/nonce. */
static void make_holder(char *out, size_t size)
{
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, size, "%s/%ld/%lx", host[0] ? host : "localhost", (long)getpid(),
             (unsigned long)(ts.tv_nsec ^ ts.tv_sec));
}

/* A holder on this host whose process is gone may be taken over. */
static int holder_gone(const char *holder)
{
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    size_t hl = strlen(host);
    if (hl == 0 || strncmp(holder, host, hl) != 0 || holder[hl] != '/')
        return 0;
    char *end;
    long pid = strtol(holder + hl + 1, &end, 10);
    if (end == holder + hl + 1 || *end != '/' || pid <= 0 || pid == (long)getpid())
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

typedef struct sweep_args {
    xset *seen;
    char **ids;
    size_t n, cap;
    int failed;
} sweep_args;

static int sweep_one(void *arg, const pdqm_content_info *info, const pdqm_stored_hash *h,
                     size_t n)
{
    (void)h;
    (void)n;
    sweep_args *s = arg;
    if (xset_has(s->seen, info->content_id, 0))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        char **g = realloc(s->ids, cap * sizeof *g);
        if (g == NULL) {
            s->failed = 1;
            return 1;
        }
        s->ids = g;
        s->cap = cap;
    }
    if ((s->ids[s->n] = strdup(info->content_id)) == NULL) {
        s->failed = 1;
        return 1;
    }
    s->n++;
    return 0;
}

/* After a full refetch: the bank's items no page named are gone at the
 * source (which forgot their tombstones), and go here too. */
static pdqm_status sweep(run *r, pdqm_error *err)
{
    sweep_args s = { &r->seen, NULL, 0, 0, 0 };
    pdqm_status st = pdqm_store_walk(r->w->store, r->config.bank, sweep_one, &s, NULL, err);
    if (st == PDQM_OK && s.failed)
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    if (st == PDQM_OK && s.n)
        say(r, PDQM_XLOG_INFO, "a full fetch: %zu items the exchange no longer has are "
            "deleted", s.n);
    for (size_t i = 0; i < s.n && st == PDQM_OK; i++) {
        int fresh;
        action *a = batch_slot(&r->b, s.ids[i], &fresh);
        if (a == NULL) {
            st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
            break;
        }
        a->deleted = 1;
        r->b.bytes += 6 + strlen(r->config.bank) + strlen(s.ids[i]);
        if (r->b.n >= 60000 || r->b.bytes >= r->max_bytes) {
            /* (The checkpoint waits for the last of them.) */
            int had = r->have_checkpoint;
            r->have_checkpoint = 0;
            st = flush(r, NULL, err);
            r->have_checkpoint = had;
        }
    }
    for (size_t i = 0; i < s.n; i++)
        free(s.ids[i]);
    free(s.ids);
    return st;
}

static char *status_text(run *r, const pdqm_exchange_status *prev, int ok, const char *error)
{
    pdqm_exchange_status s = *prev;
    s.started = r->started;
    s.finished = (int64_t)time(NULL);
    s.ok = ok;
    snprintf(s.error, sizeof s.error, "%s", ok ? "" : error);
    s.last = r->c;
    s.total.pages += r->c.pages;
    s.total.records += r->c.records;
    s.total.added += r->c.added;
    s.total.updated += r->c.updated;
    s.total.unchanged += r->c.unchanged;
    s.total.deleted += r->c.deleted;
    s.total.skipped += r->c.skipped;
    s.total.bad += r->c.bad;
    s.fetches++;
    s.running_since = 0;
    if (ok)
        s.last_success = s.finished;
    else
        s.failures++;
    return xstatus_to_json(&s);
}

pdqm_status pdqm_exchange_fetch(const pdqm_writer *w, const char *name,
                                const pdqm_exchange_fetch_options *o,
                                pdqm_exchange_counts *counts, pdqm_error *err)
{
    pdqm_exchange_fetch_options defaults;
    if (o == NULL) {
        pdqm_exchange_fetch_options_default(&defaults);
        o = &defaults;
    }
    if (counts)
        memset(counts, 0, sizeof *counts);
    if (w->store == NULL)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a fetch needs the store (the checkpoint is read there)");
    pdqm_exchange_info info;
    pdqm_status st = pdqm_exchange_get(w->store, name, &info, err);
    if (st != PDQM_OK)
        return st;
    run r;
    memset(&r, 0, sizeof r);
    r.w = w;
    r.o = o;
    r.config = info.config;
    r.started = (int64_t)time(NULL);
    r.last_write = now_mono();
    if (o->holder)
        snprintf(r.holder, sizeof r.holder, "%s", o->holder);
    else
        make_holder(r.holder, sizeof r.holder);
    if (info.holder[0] && info.lease_until > r.started && strcmp(info.holder, r.holder) != 0 &&
        holder_gone(info.holder)) {
        snprintf(r.takeover_buf, sizeof r.takeover_buf, "%s", info.holder);
        r.takeover = r.takeover_buf;
    }
    if (info.holder[0] && info.lease_until > r.started && strcmp(info.holder, r.holder) != 0 &&
        r.takeover == NULL) {
        /* Held, as this store knows: nothing written, nothing fetched. */
        pdqm_error_set(err, PDQM_ERR_BUSY, "exchange '%s' is being fetched by %s (lease "
                       "until %lld)", name, info.holder, (long long)info.lease_until);
        free(info.checkpoint);
        return PDQM_ERR_BUSY;
    }
    /* Through a cluster a write is one log entry: records of a batch fit
     * half of the largest (the rest is the ops' own bytes and headroom). */
    r.max_bytes = w->cluster ? pdqm_cluster_max_entry(w->cluster) / 2 : (size_t)256 << 20;

    json_t *creds = NULL, *cp = NULL;
    xhttp http = { o->timeout, o->max_page_bytes, o->max_retries, o->retry_base, o->max_wait,
                   o->ca_file, o->stop, on_retry, &r, 0, 0, NULL, NULL };
    const xclient *client = client_of(r.config.type);
    char base[1024];
    snprintf(base, sizeof base, "%s",
             r.config.base_url[0] ? r.config.base_url : pdqm_exchange_default_url(r.config.type));
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        base[--bl] = '\0';
    xctx x = { &r.config, base, NULL, NULL, &http, r.started, ctx_log, &r, NULL };
    xpage page;
    memset(&page, 0, sizeof page);
    pdqm_error e;
    pdqm_error_clear(&e);

    /* The lease first: nothing is fetched while another fetcher writes. */
    pdqm_op take_op;
    lease_op(&r, &take_op, 0);
    pdqm_exchange_status running = info.status;
    running.running_since = r.started;
    char *running_text = xstatus_to_json(&running);
    if (running_text) {
        take_op.xflags |= PDQM_XSET_STATUS;
        take_op.status = running_text;
    }
    st = write_ops(&r, &take_op, 1, NULL, 1, NULL, &e);
    free(running_text);
    if (st != PDQM_OK) {
        free(info.checkpoint);
        if (err)
            *err = e;
        return st;
    }
    if (info.checkpoint)
        cp = json_loads(info.checkpoint, 0, NULL);
    x.checkpoint = cp;
    if ((st = xcredentials_load(&r.config, &creds, &e)) == PDQM_OK) {
        x.credentials = creds;
        say(&r, PDQM_XLOG_INFO, "fetch starts (%s, %s)", pdqm_exchange_type_name(r.config.type),
            info.checkpoint ? "from its checkpoint" : "from the beginning");
        st = client->start(&x, &e);
    }
    int started = st == PDQM_OK;
    while (st == PDQM_OK) {
        if (o->stop && atomic_load(o->stop)) {
            st = pdqm_error_set(&e, PDQM_ERR_UNAVAILABLE, "stopped");
            break;
        }
        xpage_clear(&page);
        r.page_no++;
        st = client->next(&x, &page, &e);
        if (st == PDQM_ERR_INVALID)
            r.c.bad++;         /* a page that cannot be read (none of it is taken):
                                  the fetch stops there */
        if (st != PDQM_OK)
            break;
        r.c.pages++;
        r.c.bad += page.bad_pages;
        page.bad_pages = 0;
        if (page.full_refetch && !r.full) {
            r.full = 1;
            say(&r, PDQM_XLOG_INFO, "the checkpoint is too old for the exchange's "
                "tombstones: fetching everything again");
        }
        for (size_t i = 0; i < page.n && st == PDQM_OK; i++) {
            st = take(&r, &page.recs[i], i, &e);
            if (st == PDQM_OK && (r.b.n >= 60000 || r.b.bytes >= r.max_bytes)) {
                /* A write in the middle of the page: the checkpoint from
                 * before it (the page is read again after a crash). */
                st = flush(&r, NULL, &e);
            }
        }
        if (st != PDQM_OK)
            break;
        if (page.checkpoint) {
            free(r.checkpoint);
            r.checkpoint = page.checkpoint;
            page.checkpoint = NULL;
            r.have_checkpoint = 1;
        }
        if (page.done)
            break;
        if (due(&r))
            st = flush(&r, NULL, &e);
    }
    if (st == PDQM_OK && r.full)
        st = sweep(&r, &e);
    if (client && started)
        client->finish(&x);
    if (st == PDQM_OK && r.c.skipped)
        say(&r, PDQM_XLOG_INFO, "%llu records of signal types pdqmatch does not match were "
            "skipped (%s)", (unsigned long long)r.c.skipped,
            r.skipped_types[0] ? r.skipped_types : "deletions of what the bank does not hold");

    /* The end: what is left, the checkpoint, the status, the lease let go,
     * in one write.  After a failure, what was read whole is still stored
     * (its checkpoint with it), then the failure is recorded. */
    pdqm_error fe;
    pdqm_error_clear(&fe);
    int lost_lease = st == PDQM_ERR_BUSY || st == PDQM_ERR_NOT_FOUND;
    if (st != PDQM_OK && !lost_lease) {
        pdqm_status fst = r.b.n || r.have_checkpoint ? flush(&r, NULL, &fe) : PDQM_OK;
        if (fst != PDQM_OK)
            say(&r, PDQM_XLOG_WARN, "what was fetched before the failure could not be "
                "stored: %s", fe.message);
        batch_clear(&r.b);     /* (read again next time) */
        r.have_checkpoint = 0;
    }
    if (st == PDQM_OK && (r.b.n || r.have_checkpoint))
        st = flush(&r, NULL, &e);   /* (the status then counts what it did) */
    if (!lost_lease) {
        char *status = status_text(&r, &info.status, st == PDQM_OK, e.message);
        if (status == NULL) {
            if (st == PDQM_OK)
                st = pdqm_error_set(&e, PDQM_ERR_NOMEM, "out of memory");
        } else {
            pdqm_status fst = flush(&r, status, &fe);
            if (fst != PDQM_OK && st == PDQM_OK) {
                st = fst;
                e = fe;
            }
            free(status);
        }
    }
    /* What was stored, even before a failure, is indexed now (lookups
     * scan it meanwhile); a node of a cluster does it when its log is
     * quiet. */
    if (w->cluster == NULL)
        (void)pdqm_store_index_pending(w->store, NULL, NULL);
    if (st == PDQM_OK)
        say(&r, PDQM_XLOG_INFO, "fetch done: %llu pages, %llu records: %llu added, %llu "
            "updated, %llu unchanged, %llu deleted, %llu skipped, %llu bad",
            (unsigned long long)r.c.pages, (unsigned long long)r.c.records,
            (unsigned long long)r.c.added, (unsigned long long)r.c.updated,
            (unsigned long long)r.c.unchanged, (unsigned long long)r.c.deleted,
            (unsigned long long)r.c.skipped, (unsigned long long)r.c.bad);
    else
        say(&r, PDQM_XLOG_WARN, "fetch failed: %s", e.message);
    if (counts)
        *counts = r.c;
    xpage_clear(&page);
    free(page.recs);
    free(page.strings);
    batch_free(&r.b);
    xset_free(&r.seen);
    free(r.checkpoint);
    free(info.checkpoint);
    json_decref(creds);
    json_decref(cp);
    if (st != PDQM_OK && err)
        *err = e;
    return st;
}
