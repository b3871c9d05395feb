/*
 * node.c - a node's link to the cluster: the NATS connection, the stream,
 * publishing entries, and the applier thread that feeds the stream to the
 * node's store (cluster.h).
 *
 * The applier reads the stream through an ordered consumer (the client
 * library's: no acknowledgements, redelivery on any gap by recreating the
 * consumer) from the store's applied seq + 1.  It takes what has arrived
 * (at most APPLY_BATCH entries) and applies it in one transaction; a
 * batch that fails (a full disk) is kept and tried again, so the store
 * never skips an entry.  An entry that does not decode is applied as an
 * entry of no ops on every node alike, and counted.
 *
 * Results of this handle's own entries (recognised by the message id's
 * prefix, random per handle) are kept for the writer waiting on them,
 * for OUTCOME_KEEP seconds at most.
 */
#define _POSIX_C_SOURCE 200809L
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <nats/nats.h>

#include "nats_lazy.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define APPLY_BATCH 256
#define APPLY_BYTES (64u << 20)   /* and at most this many bytes of entries */
#define STALL_SECONDS 2.0         /* behind, and no entry for this long: subscribe anew */
#define STALL_MAX 60.0
#define OUTCOME_KEEP 60.0
#define MAX_SERVERS 16
#define ENSURE_SECONDS 60.0       /* finding or making the stream at start (a NATS
                                     cluster just started under load took over 15 s
                                     to have peers for the replicas: JetStream error
                                     10005 in a CI run under ASan) */

typedef struct kept_outcome {
    pdqm_cluster_outcome o;
    double at;
    struct kept_outcome *next;
} kept_outcome;

struct pdqm_cluster {
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    char *stream, *subject;
    char *read_stream;         /* where the applier reads: the stream, or a
                                  mirror of it */
    char node_id[24];
    atomic_ullong counter;
    double timeout;

    pdqm_store *store;
    pthread_t thread;
    int following;
    atomic_int stop;

    pthread_mutex_t lock;
    pthread_cond_t applied_cv;
    uint64_t applied, last;
    double behind_since;       /* monotonic time applied < last was first seen, 0 */
    uint64_t entries, bad_entries, apply_failures;
    pdqm_error apply_error;    /* why the last batch failed, while it does */
    uint64_t missing;          /* the first entry the stream no longer has, 0 */
    uint64_t unsupported;      /* an entry of a later log version, 0 */
    double rate_at;            /* the apply rate's window start */
    uint64_t rate_base;
    double rate;
    kept_outcome *kept;
};

static double now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static pdqm_status nats_error(pdqm_error *err, pdqm_status st, const char *what, natsStatus s,
                              jsErrCode jerr)
{
    const char *last = nats_GetLastError(NULL);
    return pdqm_error_set(err, st, "%s: %s%s%s (JetStream error %d)", what,
                          natsStatus_GetText(s), last && *last ? ": " : "",
                          last ? last : "", (int)jerr);
}

void pdqm_cluster_options_default(pdqm_cluster_options *o)
{
    memset(o, 0, sizeof *o);
    o->stream = PDQM_CLUSTER_STREAM;
    o->timeout = 5;
    o->name = "pdqmatch";
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

/* One try at finding or making a stream: the log itself (mirror_of
 * NULL), or a mirror of it. */
static natsStatus ensure_stream_once(pdqm_cluster *c, const char *name, const char *mirror_of,
                                     int replicas, const char **what, jsErrCode *jerr)
{
    jsStreamInfo *si = NULL;
    *what = mirror_of ? "cannot read the mirror" : "cannot read the stream";
    natsStatus s = js_GetStreamInfo(&si, c->js, name, NULL, jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return NATS_OK;
    }
    if (s != NATS_NOT_FOUND)
        return s;
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[1] = { c->subject };
    jsStreamSource origin;
    jsStreamSource_Init(&origin);
    cfg.Name = name;
    if (mirror_of) {
        /* A mirror keeps the origin's sequence numbers (and subjects). */
        origin.Name = mirror_of;
        cfg.Mirror = &origin;
    } else {
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Duplicates = (int64_t)120 * 1000000000;   /* message ids remembered 2 min */
    }
    cfg.Storage = js_FileStorage;
    cfg.Replicas = replicas;
    *what = mirror_of ? "cannot create the mirror" : "cannot create the stream";
    s = js_AddStream(&si, c->js, &cfg, NULL, jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return NATS_OK;
    }
    /* Another node made it meanwhile. */
    if (js_GetStreamInfo(&si, c->js, name, NULL, NULL) == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return NATS_OK;
    }
    return s;
}

/* Find or make the stream, trying again for a while: servers that have
 * just started may not have formed their cluster yet (no peers to place
 * the replicas on). */
static pdqm_status ensure_stream(pdqm_cluster *c, int replicas, pdqm_error *err)
{
    double until = now_mono() + ENSURE_SECONDS;
    for (;;) {
        const char *what;
        jsErrCode jerr = 0;
        natsStatus s = ensure_stream_once(c, c->stream, NULL, replicas, &what, &jerr);
        if (s == NATS_OK && c->read_stream != c->stream)
            s = ensure_stream_once(c, c->read_stream, c->stream, replicas, &what, &jerr);
        if (s == NATS_OK)
            return PDQM_OK;
        if (now_mono() >= until)
            return nats_error(err, PDQM_ERR_UNAVAILABLE, what, s, jerr);
        struct timespec pause = { 0, 250 * 1000000L };
        nanosleep(&pause, NULL);
    }
}

static int stream_name_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

pdqm_status pdqm_cluster_open(const pdqm_cluster_options *o, pdqm_cluster **out,
                              pdqm_error *err)
{
    pdqm_cluster_options d;
    pdqm_cluster_options_default(&d);
    const char *stream = o->stream ? o->stream : d.stream;
    if (o->urls == NULL || *o->urls == '\0')
        return pdqm_error_set(err, PDQM_ERR_INVALID, "no NATS server given");
    if (!stream_name_ok(stream) || (o->mirror && !stream_name_ok(o->mirror)))
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "a stream name is 1 to 64 letters, digits, '_' or '-'");
    pdqm_status loaded = pdqm_nats_load(err);
    if (loaded != PDQM_OK)
        return loaded;
    if (o->mirror && strcmp(o->mirror, stream) == 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "the mirror must be another stream");
    /* The servers, split. */
    char *urls = strdup(o->urls);
    const char *servers[MAX_SERVERS];
    int n_servers = 0;
    if (urls == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    char *save = NULL;
    for (char *u = strtok_r(urls, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        if (n_servers == MAX_SERVERS) {
            free(urls);
            return pdqm_error_set(err, PDQM_ERR_INVALID, "at most %d NATS servers", MAX_SERVERS);
        }
        servers[n_servers++] = u;
    }
    if (n_servers == 0) {
        free(urls);
        return pdqm_error_set(err, PDQM_ERR_INVALID, "no NATS server given");
    }
    int replicas = o->replicas > 0 ? o->replicas : n_servers < 3 ? n_servers : 3;

    pdqm_cluster *c = calloc(1, sizeof *c);
    if (c == NULL) {
        free(urls);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->applied_cv, NULL);
    c->timeout = o->timeout > 0 ? o->timeout : d.timeout;
    c->stream = strdup(stream);
    c->subject = malloc(strlen(stream) + 5);
    if (c->subject)
        sprintf(c->subject, "%s.log", stream);
    c->read_stream = o->mirror ? strdup(o->mirror) : c->stream;
    /* The message ids' prefix: random, so that this handle knows its own
     * entries on the stream. */
    uint64_t r = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &r, sizeof r) != (ssize_t)sizeof r)
            r = 0;
        close(fd);
    }
    if (r == 0)
        r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    snprintf(c->node_id, sizeof c->node_id, "%016llx", (unsigned long long)r);

    pdqm_status st = PDQM_OK;
    natsStatus s = NATS_OK;
    if (c->stream == NULL || c->subject == NULL || c->read_stream == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = natsOptions_Create(&c->opts)) != NATS_OK ||
        (s = natsOptions_SetServers(c->opts, servers, n_servers)) != NATS_OK ||
        (s = natsOptions_SetName(c->opts, o->name ? o->name : d.name)) != NATS_OK ||
        (s = natsOptions_SetTimeout(c->opts, 2000)) != NATS_OK ||
        (s = natsOptions_SetMaxReconnect(c->opts, -1)) != NATS_OK ||
        (s = natsOptions_SetReconnectWait(c->opts, 250)) != NATS_OK ||
        (s = natsOptions_SetPingInterval(c->opts, 2000)) != NATS_OK ||
        (s = natsOptions_SetRetryOnFailedConnect(c->opts, false, NULL, NULL)) != NATS_OK) {
        st = nats_error(err, PDQM_ERR_INVALID, "bad NATS options", s, 0);
        goto fail;
    }
    if (o->creds_file && (s = natsOptions_SetUserCredentialsFromFiles(c->opts, o->creds_file,
                                                                      NULL)) != NATS_OK) {
        st = nats_error(err, PDQM_ERR_INVALID, "cannot use the NATS credentials", s, 0);
        goto fail;
    }
    if (o->ca_file && (s = natsOptions_LoadCATrustedCertificates(c->opts, o->ca_file)) != NATS_OK) {
        st = nats_error(err, PDQM_ERR_INVALID, "cannot load the NATS CA file", s, 0);
        goto fail;
    }
    if ((o->cert_file == NULL) != (o->key_file == NULL)) {
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "a NATS client certificate and its key go "
                            "together");
        goto fail;
    }
    if (o->cert_file && (s = natsOptions_LoadCertificatesChain(c->opts, o->cert_file,
                                                               o->key_file)) != NATS_OK) {
        st = nats_error(err, PDQM_ERR_INVALID, "cannot load the NATS client certificate", s, 0);
        goto fail;
    }
    if ((s = natsConnection_Connect(&c->nc, c->opts)) != NATS_OK) {
        st = nats_error(err, PDQM_ERR_UNAVAILABLE, "cannot connect to NATS", s, 0);
        goto fail;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK) {
        st = nats_error(err, PDQM_ERR_UNAVAILABLE, "cannot use JetStream", s, 0);
        goto fail;
    }
    if ((st = ensure_stream(c, replicas, err)) != PDQM_OK)
        goto fail;
    free(urls);
    *out = c;
    return PDQM_OK;
fail:
    free(urls);
    pdqm_cluster_close(c);
    return st;
}

static void kept_free_all(pdqm_cluster *c)
{
    while (c->kept) {
        kept_outcome *k = c->kept;
        c->kept = k->next;
        pdqm_cluster_outcome_free(&k->o);
        free(k);
    }
}

void pdqm_cluster_close(pdqm_cluster *c)
{
    if (c == NULL)
        return;
    if (c->following) {
        atomic_store(&c->stop, 1);
        pthread_join(c->thread, NULL);
    }
    if (c->js)
        jsCtx_Destroy(c->js);
    if (c->nc) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
    }
    if (c->opts)
        natsOptions_Destroy(c->opts);
    kept_free_all(c);
    pthread_cond_destroy(&c->applied_cv);
    pthread_mutex_destroy(&c->lock);
    if (c->read_stream != c->stream)
        free(c->read_stream);
    free(c->stream);
    free(c->subject);
    free(c);
}

size_t pdqm_cluster_max_entry(pdqm_cluster *c)
{
    int64_t m = natsConnection_GetMaxPayload(c->nc);
    /* Room for the headers (the message id) beside the entry. */
    return m > 1024 ? (size_t)m - 512 : 512;
}

/* ------------------------------------------------------------------ */
/* Publishing                                                           */

pdqm_status pdqm_cluster_publish(pdqm_cluster *c, const pdqm_op *ops, size_t n,
                                 uint64_t *seq, pdqm_error *err)
{
    uint8_t *buf;
    size_t len;
    pdqm_status st = pdqm_log_encode(ops, n, &buf, &len, err);
    if (st != PDQM_OK)
        return st;
    if (len > pdqm_cluster_max_entry(c)) {
        free(buf);
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                              "the write takes %zu bytes, over the %zu the NATS servers take "
                              "in one message (their max_payload)", len, pdqm_cluster_max_entry(c));
    }
    char id[64];
    snprintf(id, sizeof id, "%s-%llu", c->node_id,
             (unsigned long long)atomic_fetch_add(&c->counter, 1) + 1);
    double end = now_mono() + c->timeout;
    natsStatus s = NATS_OK;
    jsErrCode jerr = 0;
    /* The same message id on every try: the stream stores it once. */
    for (;;) {
        natsMsg *m = NULL;
        if ((s = natsMsg_Create(&m, c->subject, NULL, (const char *)buf, (int)len)) != NATS_OK)
            break;
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        /* Not po.ExpectStream: that header stays on the entry, and a
         * mirror (another stream) then refuses to store it. */
        double left = end - now_mono();
        po.MaxWait = left > 0.05 ? (int64_t)(left * 1000) : 50;
        jsPubAck *pa = NULL;
        jerr = 0;
        s = js_PublishMsg(&pa, c->js, m, &po, &jerr);
        natsMsg_Destroy(m);
        if (s == NATS_OK) {
            int ours = pa->Stream && strcmp(pa->Stream, c->stream) == 0;
            *seq = pa->Sequence;
            if (!ours)
                pdqm_error_set(err, PDQM_ERR_INVALID, "the subject %s is stored by the stream "
                               "%s, not %s", c->subject, pa->Stream ? pa->Stream : "?",
                               c->stream);
            jsPubAck_Destroy(pa);
            free(buf);
            return ours ? PDQM_OK : PDQM_ERR_INVALID;
        }
        if (now_mono() + 0.1 >= end)
            break;
        struct timespec pause = { 0, 100 * 1000000L };
        nanosleep(&pause, NULL);
    }
    free(buf);
    return nats_error(err, PDQM_ERR_UNAVAILABLE, "the cluster's log did not take the write", s,
                      jerr);
}

/* ------------------------------------------------------------------ */
/* Applying                                                             */

/* One entry of a batch, with what the applier made of it. */
typedef struct pending_entry {
    natsMsg *msg;
    uint64_t seq;
    uint64_t num_pending;      /* the stream's entries after it, then */
    pdqm_log_ops ops;
    pdqm_op_result *results;   /* for own entries */
    pdqm_add_outcome *outcomes;
    uint32_t *numbers;
    int own;
    int unsupported;           /* of a later log version: not applied */
} pending_entry;

static void entry_clear(pending_entry *e)
{
    if (e->msg)
        natsMsg_Destroy(e->msg);
    pdqm_log_ops_free(&e->ops);
    free(e->results);
    free(e->outcomes);
    free(e->numbers);
    memset(e, 0, sizeof *e);
}

/* An op with items, whose outcomes and numbers a writer learns. */
static int is_add(const pdqm_op *op)
{
    return op->type == PDQM_OP_ADD || op->type == PDQM_OP_PUT;
}

/* Decode a message into e; 0 when it is no JetStream message at all
 * (then it is dropped). */
static int entry_prepare(pdqm_cluster *c, natsMsg *m, pending_entry *e)
{
    memset(e, 0, sizeof *e);
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
        natsMsg_Destroy(m);
        return 0;
    }
    e->msg = m;
    e->seq = meta->Sequence.Stream;
    e->num_pending = meta->NumPending;
    jsMsgMetaData_Destroy(meta);
    const char *id = NULL;
    e->own = natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id &&
             strncmp(id, c->node_id, strlen(c->node_id)) == 0 && id[strlen(c->node_id)] == '-';
    pdqm_status dst = pdqm_log_decode((const uint8_t *)natsMsg_GetData(m),
                                      (size_t)natsMsg_GetDataLength(m), &e->ops, NULL);
    if (dst == PDQM_ERR_UNSUPPORTED) {
        /* Written by a later pdqmatch: skipping it would leave this
         * replica unlike the others.  The applier stops before it. */
        memset(&e->ops, 0, sizeof e->ops);
        e->unsupported = 1;
        return 1;
    }
    if (dst != PDQM_OK) {
        memset(&e->ops, 0, sizeof e->ops);
        pthread_mutex_lock(&c->lock);
        c->bad_entries++;
        pthread_mutex_unlock(&c->lock);
        return 1;
    }
    if (e->own && e->ops.n_ops) {
        size_t outs = 0;
        for (size_t i = 0; i < e->ops.n_ops; i++)
            outs += is_add(&e->ops.ops[i]) ? e->ops.ops[i].n_adds : 0;
        e->results = calloc(e->ops.n_ops, sizeof *e->results);
        e->outcomes = calloc(outs ? outs : 1, sizeof *e->outcomes);
        e->numbers = calloc(outs ? outs : 1, sizeof *e->numbers);
        if (e->results == NULL || e->outcomes == NULL || e->numbers == NULL) {
            /* Applied all the same; its writer learns only that it was. */
            free(e->results);
            free(e->outcomes);
            free(e->numbers);
            e->results = NULL;
            e->outcomes = NULL;
            e->numbers = NULL;
        } else {
            size_t at = 0;
            for (size_t i = 0; i < e->ops.n_ops; i++)
                if (is_add(&e->ops.ops[i])) {
                    e->results[i].outcomes = e->outcomes + at;
                    e->results[i].numbers = e->numbers + at;
                    at += e->ops.ops[i].n_adds;
                }
        }
    }
    return 1;
}

/* Keep what applying own entry e did for its writer: the results move to
 * the kept outcome, each ADD's outcomes copied out of e's one array. */
static void keep_outcome(pdqm_cluster *c, pending_entry *e, double now)
{
    kept_outcome *k = calloc(1, sizeof *k);
    if (k == NULL)
        return;
    for (size_t i = 0, at = 0; i < e->ops.n_ops; i++) {
        if (!is_add(&e->ops.ops[i])) {
            e->results[i].outcomes = NULL;
            e->results[i].numbers = NULL;
            continue;
        }
        size_t n = e->ops.ops[i].n_adds;
        pdqm_add_outcome *copy = malloc(n * sizeof *copy);
        uint32_t *numbers = malloc(n * sizeof *numbers);
        if (copy)
            memcpy(copy, e->outcomes + at, n * sizeof *copy);
        if (numbers)
            memcpy(numbers, e->numbers + at, n * sizeof *numbers);
        e->results[i].outcomes = copy;
        e->results[i].numbers = numbers;
        at += n;
    }
    k->o = (pdqm_cluster_outcome){ e->seq, e->ops.n_ops, e->results };
    k->at = now;
    e->results = NULL;
    k->next = c->kept;
    c->kept = k;
}

/* Drop outcomes nobody took. */
static void kept_expire(pdqm_cluster *c, double now)
{
    for (kept_outcome **p = &c->kept; *p;) {
        if (now - (*p)->at > OUTCOME_KEEP) {
            kept_outcome *k = *p;
            *p = k->next;
            pdqm_cluster_outcome_free(&k->o);
            free(k);
        } else {
            p = &(*p)->next;
        }
    }
}

static natsSubscription *subscribe_from(pdqm_cluster *c, uint64_t start)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->read_stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = start;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    if (js_SubscribeSync(&sub, c->js, c->subject, NULL, &so, &jerr) != NATS_OK)
        return NULL;
    /* Entries may be large (bulk loads): room for a batch of them. */
    natsSubscription_SetPendingLimits(sub, 65536, 1 << 30);
    return sub;
}

/* The stream's first and last seq, asked of the servers: 0 when they do
 * not answer. */
static int stream_bounds(pdqm_cluster *c, uint64_t *first, uint64_t *last)
{
    jsStreamInfo *si = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 1000;
    if (js_GetStreamInfo(&si, c->js, c->read_stream, &jo, NULL) != NATS_OK)
        return 0;
    *first = si->State.FirstSeq;
    *last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return 1;
}

/* Entries applied+1 .. first-1 were purged: a store that has not applied
 * them cannot follow this stream (it needs a snapshot). */
static int purged_past(uint64_t applied, uint64_t first)
{
    return first > applied + 1;
}

static void note_last(pdqm_cluster *c, uint64_t last, double now)
{
    /* called with c->lock held */
    if (last > c->last)
        c->last = last;
    if (c->applied >= c->last)
        c->behind_since = 0;
    else if (c->behind_since == 0)
        c->behind_since = now;
}

static void *applier_main(void *arg)
{
    pdqm_cluster *c = arg;
    natsSubscription *sub = NULL;
    pending_entry batch[APPLY_BATCH];
    size_t n = 0;
    int retrying = 0, deferred_due = 0;
    double heard = 0;          /* when the subscription last gave an entry */
    double stall = STALL_SECONDS;
    double next_info = 0, backoff = 0.1;
    while (!atomic_load(&c->stop)) {
        double now = now_mono();
        if (now >= next_info) {
            uint64_t first = 0, last = 0;
            int ok = stream_bounds(c, &first, &last);
            pthread_mutex_lock(&c->lock);
            if (ok)
                note_last(c, last, now);
            if (ok && purged_past(c->applied, first) && c->missing == 0)
                c->missing = c->applied + 1;
            kept_expire(c, now);
            pthread_mutex_unlock(&c->lock);
            next_info = now + 0.5;
        }
        if (!retrying) {
            if (sub == NULL) {
                pthread_mutex_lock(&c->lock);
                uint64_t start = c->applied + 1;
                pthread_mutex_unlock(&c->lock);
                if ((sub = subscribe_from(c, start)) == NULL) {
                    struct timespec pause = { 0, 250 * 1000000L };
                    nanosleep(&pause, NULL);
                    continue;
                }
                heard = now_mono();
            }
            /* Wait for one entry, then take what else has arrived. */
            natsMsg *m = NULL;
            natsStatus s = natsSubscription_NextMsg(&m, sub, 100);
            if (s == NATS_TIMEOUT) {
                if (deferred_due) {
                    (void)pdqm_store_index_pending(c->store, NULL, NULL);
                    deferred_due = 0;
                }
                /* Behind the stream and nothing arriving: after the
                 * servers' outage the consumer may be gone without a word
                 * (the client notices missed heartbeats only after many
                 * seconds).  Subscribe anew, from what is applied. */
                pthread_mutex_lock(&c->lock);
                int behind = c->last > c->applied;
                pthread_mutex_unlock(&c->lock);
                if (behind && now_mono() - heard > stall) {
                    natsSubscription_Destroy(sub);
                    sub = NULL;
                    /* Twice as patient each time, for links so slow that
                     * one large entry takes longer than that. */
                    stall = stall * 2 > STALL_MAX ? STALL_MAX : stall * 2;
                }
                continue;
            }
            if (s != NATS_OK) {
                /* The subscription is gone (the consumer lost): anew,
                 * from what is applied. */
                natsSubscription_Destroy(sub);
                sub = NULL;
                continue;
            }
            heard = now_mono();
            stall = STALL_SECONDS;
            size_t bytes = 0;
            for (;;) {
                bytes += (size_t)natsMsg_GetDataLength(m);
                if (entry_prepare(c, m, &batch[n]))
                    n++;
                int queued = 0;
                if (n == APPLY_BATCH || bytes >= APPLY_BYTES ||
                    natsSubscription_GetPending(sub, &queued, NULL) != NATS_OK ||
                    queued == 0)
                    break;
                if (natsSubscription_NextMsg(&m, sub, 10) != NATS_OK)
                    break;
            }
            if (n == 0)
                continue;
        }
        /* Ascending, and past what is applied (a recreated consumer may
         * deliver again what was applied). */
        pdqm_log_entry entries[APPLY_BATCH];
        size_t k = 0;
        pthread_mutex_lock(&c->lock);
        uint64_t applied = c->applied;
        pthread_mutex_unlock(&c->lock);
        uint64_t expect = applied + 1;
        int gap = 0, blocked = 0;
        for (size_t i = 0; i < n && !gap && !blocked; i++) {
            if (batch[i].seq < expect)
                continue;
            if (batch[i].seq == expect && batch[i].unsupported) {
                blocked = 1;
                break;
            }
            if (batch[i].seq > expect) {
                /* The stream skipped entries (purged before this store
                 * applied them): applying past them would make a replica
                 * unlike the others.  Stop here, and say so. */
                gap = 1;
                break;
            }
            expect++;
            entries[k++] = (pdqm_log_entry){ batch[i].seq, batch[i].ops.ops, batch[i].ops.n_ops,
                                             batch[i].results, 0 };
            for (size_t j = 0; j < batch[i].ops.n_ops; j++)
                deferred_due |= (batch[i].ops.ops[j].type == PDQM_OP_ADD ||
                                 batch[i].ops.ops[j].type == PDQM_OP_PUT) &&
                                batch[i].ops.ops[j].deferred;
        }
        if ((gap || blocked) && k == 0) {
            pthread_mutex_lock(&c->lock);
            if (blocked && c->unsupported == 0)
                c->unsupported = expect;
            else if (gap && c->missing == 0)
                c->missing = expect;
            pthread_mutex_unlock(&c->lock);
            for (size_t i = 0; i < n; i++)
                entry_clear(&batch[i]);
            n = 0;
            natsSubscription_Destroy(sub);
            sub = NULL;
            struct timespec pause = { 1, 0 };
            nanosleep(&pause, NULL);
            continue;
        }
        uint64_t upto = k ? entries[k - 1].seq : applied;
        pdqm_error aerr;
        pdqm_error_clear(&aerr);
        pdqm_status st = pdqm_store_apply(c->store, entries, k, &aerr);
        now = now_mono();
        if (st != PDQM_OK) {
            /* Nothing of the batch was applied: again, after a pause. */
            pthread_mutex_lock(&c->lock);
            c->apply_failures++;
            c->apply_error = aerr;
            pthread_mutex_unlock(&c->lock);
            retrying = 1;
            struct timespec pause = { (time_t)backoff, (long)((backoff - (int)backoff) * 1e9) };
            nanosleep(&pause, NULL);
            backoff = backoff * 2 > 5 ? 5 : backoff * 2;
            continue;
        }
        retrying = 0;
        backoff = 0.1;
        pthread_mutex_lock(&c->lock);
        pdqm_error_clear(&c->apply_error);
        for (size_t i = 0; i < n; i++) {
            pending_entry *e = &batch[i];
            if (e->seq > c->applied && e->seq <= upto) {
                c->applied = e->seq;
                c->entries++;
                note_last(c, e->seq + e->num_pending, now);
                if (e->own && e->results)
                    keep_outcome(c, e, now);
            }
        }
        if (now - c->rate_at >= 2) {
            c->rate = (double)(c->entries - c->rate_base) / (now - c->rate_at);
            c->rate_at = now;
            c->rate_base = c->entries;
        }
        pthread_cond_broadcast(&c->applied_cv);
        pthread_mutex_unlock(&c->lock);
        for (size_t i = 0; i < n; i++)
            entry_clear(&batch[i]);
        n = 0;
        if (blocked || gap) {
            /* What came after the entry it stopped at was dropped: read
             * again from what is applied, and stop there. */
            natsSubscription_Destroy(sub);
            sub = NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        entry_clear(&batch[i]);
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    return NULL;
}

pdqm_status pdqm_cluster_follow(pdqm_cluster *c, pdqm_store *store, pdqm_error *err)
{
    if (c->following)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "the cluster is followed already");
    uint64_t applied;
    pdqm_status st = pdqm_store_applied_seq(store, &applied, err);
    if (st != PDQM_OK)
        return st;
    uint64_t first, last;
    if (stream_bounds(c, &first, &last) && purged_past(applied, first))
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "the stream %s begins at entry %llu, but this store has applied "
                              "it only to %llu: the entries between are purged; start this "
                              "node from a snapshot (pdqmatch snapshot) of a node that has "
                              "applied them", c->read_stream, (unsigned long long)first,
                              (unsigned long long)applied);
    c->store = store;
    c->applied = applied;
    c->rate_at = now_mono();
    if (pthread_create(&c->thread, NULL, applier_main, c) != 0)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "cannot start the applier thread");
    c->following = 1;
    return PDQM_OK;
}

void pdqm_cluster_outcome_free(pdqm_cluster_outcome *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->n_ops && o->results; i++) {
        free(o->results[i].outcomes);
        free(o->results[i].numbers);
    }
    free(o->results);
    memset(o, 0, sizeof *o);
}

pdqm_status pdqm_cluster_wait(pdqm_cluster *c, uint64_t seq, double timeout,
                              pdqm_cluster_outcome *out, pdqm_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double t = (double)until.tv_sec + (double)until.tv_nsec / 1e9 + timeout;
    until.tv_sec = (time_t)t;
    until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
    pthread_mutex_lock(&c->lock);
    while (c->applied < seq) {
        if (!c->following ||
            pthread_cond_timedwait(&c->applied_cv, &c->lock, &until) == ETIMEDOUT) {
            uint64_t applied = c->applied;
            pthread_mutex_unlock(&c->lock);
            return pdqm_error_set(err, PDQM_ERR_UNAVAILABLE,
                                  "this node has applied the log to %llu, not yet to %llu",
                                  (unsigned long long)applied, (unsigned long long)seq);
        }
    }
    if (out) {
        out->seq = seq;
        for (kept_outcome **p = &c->kept; *p; p = &(*p)->next)
            if ((*p)->o.seq == seq) {
                kept_outcome *k = *p;
                *p = k->next;
                *out = k->o;
                free(k);
                break;
            }
    }
    pthread_mutex_unlock(&c->lock);
    return PDQM_OK;
}

pdqm_status pdqm_cluster_write(pdqm_cluster *c, const pdqm_op *ops, size_t n,
                               pdqm_cluster_outcome *out, pdqm_error *err)
{
    uint64_t seq;
    pdqm_status st = pdqm_cluster_publish(c, ops, n, &seq, err);
    if (st != PDQM_OK)
        return st;
    st = pdqm_cluster_wait(c, seq, c->timeout, out, NULL);
    if (st == PDQM_ERR_UNAVAILABLE)
        /* The write is in the log: every node will apply it.  A retry
         * would find it done, so say where it is rather than only "no". */
        return pdqm_error_set(err, st, "the write is entry %llu of the log, which this node "
                              "has not applied within %.0f s; it will be (read it with "
                              "X-Pdqmatch-Min-Seq: %llu)", (unsigned long long)seq, c->timeout,
                              (unsigned long long)seq);
    return st;
}

void pdqm_cluster_state_get(pdqm_cluster *c, pdqm_cluster_state *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->lock);
    out->applied = c->applied;
    out->last = c->last > c->applied ? c->last : c->applied;
    out->lag = c->behind_since > 0 ? now_mono() - c->behind_since : 0;
    out->entries = c->entries;
    out->bad_entries = c->bad_entries;
    out->apply_failures = c->apply_failures;
    out->apply_rate = c->rate;
    out->missing = c->missing;
    out->unsupported = c->unsupported;
    out->apply_error = c->apply_error;
    pthread_mutex_unlock(&c->lock);
    out->connected = natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED;
}

pdqm_status pdqm_cluster_purge(pdqm_cluster *c, uint64_t upto, uint64_t *first,
                               pdqm_error *err)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = (int64_t)(c->timeout * 1000);
    jo.Stream.Purge.Sequence = upto + 1;   /* purges below it */
    jsErrCode jerr = 0;
    natsStatus s = js_PurgeStream(c->js, c->stream, &jo, &jerr);
    if (s != NATS_OK)
        return nats_error(err, PDQM_ERR_UNAVAILABLE, "cannot purge the stream", s, jerr);
    uint64_t last;
    if (first && !stream_bounds(c, first, &last))
        *first = upto + 1;
    return PDQM_OK;
}
