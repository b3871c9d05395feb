/*
 * exchange.h - hash lists from the exchanges (NCMEC, StopNCII, Meta's
 * ThreatExchange, Tech Against Terrorism's TCAP), fetched into a bank and
 * kept in sync, deletions applied.
 *
 * An exchange is a name, a type, the bank its records go to (one bank per
 * exchange: its deletions touch nothing else), where to reach it, and the
 * path of a credentials file.  What the store keeps for it (store.h,
 * "Exchanges") is its config, its checkpoint (the type's own, opaque
 * here), the status of its last fetch and a lease.
 *
 * A fetch reads pages from the exchange's API and stores them page by page:
 * each write holds a page's records (PUT: a record fetched again changes
 * nothing unless it changed; a withdrawal deletes) and the checkpoint that
 * covers them, in one transaction (one log entry in a cluster), so that a
 * fetch killed at any moment resumes where it stopped, losing and
 * repeating nothing.  Each write is guarded by the fetcher's lease: one
 * fetcher at a time per exchange, on one store or in a whole cluster.
 *
 * Records become content items by one rule (exchange/record.c): the item's
 * content id is the source's record id (NCMEC "member-id", StopNCII
 * "signalType:hash", ThreatExchange the indicator id, TCAP the record id);
 * a PDQ is an image item of that hash; an MD5 of a video is a video item
 * known by that MD5 (a file of those bytes matches it); the item's
 * metadata is its provenance: {"exchange", "source", "record_id",
 * "signal_type", "updated_at", and what the source says: member,
 * classification, tags...}.  Records of other signal types are counted and
 * skipped; malformed ones are counted, reported with their position and
 * skipped, never stored in part.
 *
 * Library code: nothing here prints or exits; what a fetch has to say goes
 * to the caller's log function.
 */
#ifndef PDQM_EXCHANGE_H
#define PDQM_EXCHANGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../hashing/error.h"
#include "../index/store.h"
#include "../cluster/cluster.h"

typedef enum pdqm_exchange_type {
    PDQM_EXCHANGE_NCMEC = 0,
    PDQM_EXCHANGE_STOPNCII = 1,
    PDQM_EXCHANGE_THREATEXCHANGE = 2,
    PDQM_EXCHANGE_TCAP = 3
} pdqm_exchange_type;
#define PDQM_EXCHANGE_TYPES 4

/* "ncmec", "stopncii", "threatexchange", "tcap", and back (-1: unknown). */
const char *pdqm_exchange_type_name(pdqm_exchange_type t);
int pdqm_exchange_type_parse(const char *name);

/* The base URL a type uses when none is given (NCMEC's industry
 * environment, StopNCII's, the Graph API, TCAP's). */
const char *pdqm_exchange_default_url(pdqm_exchange_type t);

typedef struct pdqm_exchange_config {
    char name[PDQM_BANK_NAME_MAX + 1];
    pdqm_exchange_type type;
    char bank[PDQM_BANK_NAME_MAX + 1];
    char base_url[1024];          /* "": the type's default */
    char credentials[1024];       /* path of a JSON file of mode 0600 (or 0400) */
    char privacy_group[64];       /* ThreatExchange: the privacy group's id */
    char api_version[16];         /* ThreatExchange: "v21.0" when "" */
    int64_t since;                /* a first fetch starts here (unix seconds; 0:
                                     the beginning) */
    int page_size;                /* records a page (0: the type's default) */
} pdqm_exchange_config;

/* PDQM_OK when a config can be added: a name and bank of the bank rule,
 * an http(s) base URL, a credentials path, a privacy group for
 * ThreatExchange.  No I/O. */
pdqm_status pdqm_exchange_config_check(const pdqm_exchange_config *c, pdqm_error *err);

/* The credentials a type needs, read from its file: PDQM_ERR_IO (cannot
 * read it), PDQM_ERR_INVALID (not JSON, a key missing, a file others may
 * read: mode 0600 is required), without ever quoting a secret. */
pdqm_status pdqm_exchange_credentials_check(const pdqm_exchange_config *c, pdqm_error *err);

/* Add an exchange (creating its bank, block, threshold 31, when missing):
 * one write.  PDQM_ERR_EXISTS for a name taken, or a bank another
 * exchange fills; PDQM_ERR_INVALID for a bad config. */
pdqm_status pdqm_exchange_add(const pdqm_writer *w, const pdqm_exchange_config *c,
                              pdqm_error *err);

/* Remove an exchange: its config, checkpoint and status (its bank and
 * what is in it stay).  PDQM_ERR_NOT_FOUND. */
pdqm_status pdqm_exchange_remove(const pdqm_writer *w, const char *name, pdqm_error *err);

/* Set an exchange's checkpoint (NULL: none, so the next fetch reads
 * everything from the config's since): one write, while no fetch holds
 * the lease (PDQM_ERR_BUSY).  PDQM_ERR_INVALID for a checkpoint that is
 * not JSON; PDQM_ERR_NOT_FOUND. */
pdqm_status pdqm_exchange_reset(const pdqm_writer *w, const char *name, const char *checkpoint,
                                pdqm_error *err);

/* What the last fetch of an exchange did. */
typedef struct pdqm_exchange_counts {
    uint64_t pages;
    uint64_t records;         /* records read */
    uint64_t added;           /* new items */
    uint64_t updated;         /* items replaced by a changed record */
    uint64_t unchanged;       /* records the bank had as they are */
    uint64_t deleted;         /* items deleted (tombstones, withdrawals, and a
                                 full refetch's leftovers) */
    uint64_t skipped;         /* records of a signal type pdqmatch does not match
                                 (and deletions of what the bank does not hold) */
    uint64_t bad;             /* malformed records and pages, skipped */
} pdqm_exchange_counts;

typedef struct pdqm_exchange_status {
    int64_t started, finished;    /* the last fetch (unix seconds; 0: never) */
    int ok;                       /* it ended well */
    char error[PDQM_ERROR_MESSAGE_MAX];
    pdqm_exchange_counts last;    /* its counts */
    pdqm_exchange_counts total;   /* every fetch's, added up */
    int64_t last_success;         /* the end of the last fetch that ended well */
    uint64_t fetches, failures;
    int64_t running_since;        /* when the fetch under way started (0: none;
                                     one killed leaves it, with its lease) */
} pdqm_exchange_status;

typedef struct pdqm_exchange_info {
    pdqm_exchange_config config;
    pdqm_exchange_status status;
    char *checkpoint;             /* JSON text, or NULL (owned) */
    char holder[PDQM_LEASE_HOLDER_MAX + 1];   /* who fetches now ("": none) */
    int64_t lease_until;
} pdqm_exchange_info;

void pdqm_exchange_infos_free(pdqm_exchange_info *v, size_t n);

/* Every exchange of the store, by name (*out: free with
 * pdqm_exchange_infos_free).  One read transaction. */
pdqm_status pdqm_exchange_list(pdqm_store *store, pdqm_exchange_info **out, size_t *n,
                               pdqm_error *err);

/* One exchange (*out: free its checkpoint, or use pdqm_exchange_infos_free
 * with n 1 on a malloc'd one).  PDQM_ERR_NOT_FOUND. */
pdqm_status pdqm_exchange_get(pdqm_store *store, const char *name, pdqm_exchange_info *out,
                              pdqm_error *err);

/* An exchange as JSON, the one form the CLI's --json and the service's
 * /v1/exchanges share: {"name", "type", "bank", "base_url", "credentials"
 * (its path), "privacy_group", "since", "checkpoint" (parsed), "fetching"
 * (the lease's holder, or null), "fetch_started" (when the fetch under way
 * began, or null), "last_fetch": {"started", "finished",
 * "ok", "error", "pages", "records", "added", "updated", "unchanged",
 * "deleted", "skipped", "bad"}, "last_success", "fetches", "failures",
 * "total": {the counts of every fetch}}.  now decides whether a lease is
 * still held.  NULL when out of memory. */
struct json_t;
struct json_t *pdqm_exchange_info_json(const pdqm_exchange_info *x, int64_t now);

/* A time given to --since: unix seconds, or "YYYY-MM-DDTHH:MM:SS" with "Z"
 * or an offset (a date alone is midnight UTC).  -1 when it is neither. */
int64_t pdqm_exchange_parse_time(const char *s);

/* ------------------------------------------------------------------ */
/* Fetching                                                             */

typedef enum pdqm_exchange_log_level {
    PDQM_XLOG_INFO = 0,
    PDQM_XLOG_WARN = 1
} pdqm_exchange_log_level;

typedef struct pdqm_exchange_fetch_options {
    const char *holder;       /* this fetcher, for the lease (NULL: host/pid) */
    double timeout;           /* seconds a request may take (60) */
    int max_retries;          /* of a request, on 429, 5xx, no answer (5) */
    double retry_base;        /* first backoff, doubling (0.5 s) */
    double max_wait;          /* the longest wait, Retry-After included (120 s) */
    size_t max_page_bytes;    /* a page over this is refused (64 MiB) */
    int lease_seconds;        /* a lease lasts this long unless renewed (600) */
    size_t batch_records;     /* records stored a write (20000; less through a
                                 cluster, to fit an entry) */
    const char *ca_file;      /* CA bundle for https (NULL: the system's) */
    atomic_int *stop;         /* set it to stop the fetch (NULL: none) */
    /* What the fetch has to say: bad records (with their page and
     * position), retries, the end of each exchange.  Never a secret. */
    void (*log)(void *arg, pdqm_exchange_log_level level, const char *exchange,
                const char *message);
    void *log_arg;
} pdqm_exchange_fetch_options;

void pdqm_exchange_fetch_options_default(pdqm_exchange_fetch_options *o);

/* Fetch one exchange to its end (no more pages), through w (w->store is
 * needed: the checkpoint and lease are read from it).  *counts (when not
 * NULL) gets what this fetch did, also stored as its status.  Errors:
 * PDQM_ERR_NOT_FOUND (no such exchange), PDQM_ERR_BUSY (another fetcher
 * holds the lease), PDQM_ERR_UNAVAILABLE (the exchange did not answer, or
 * stopped), PDQM_ERR_INVALID (credentials, or an answer that cannot be
 * read), those of the store.  Whatever was stored before a failure stays,
 * with its checkpoint: the next fetch goes on from there. */
pdqm_status pdqm_exchange_fetch(const pdqm_writer *w, const char *name,
                                const pdqm_exchange_fetch_options *o,
                                pdqm_exchange_counts *counts, pdqm_error *err);

/* ------------------------------------------------------------------ */
/* In the background                                                    */

/* A thread that fetches every exchange of the store, one after the other,
 * every interval seconds (the service's --fetch-interval), through w
 * (which must outlive it).  Another fetcher holding an exchange's lease
 * (a CLI fetch, another node of the cluster) is left to it. */
typedef struct pdqm_exchange_scheduler pdqm_exchange_scheduler;

pdqm_status pdqm_exchange_scheduler_start(const pdqm_writer *w, double interval,
                                          const pdqm_exchange_fetch_options *o,
                                          pdqm_exchange_scheduler **out, pdqm_error *err);

/* Fetch now (name NULL: every exchange; else that one), without waiting
 * for the interval.  Returns at once. */
void pdqm_exchange_scheduler_kick(pdqm_exchange_scheduler *s, const char *name);

/* Whether a fetch runs now, and the interval. */
int pdqm_exchange_scheduler_busy(pdqm_exchange_scheduler *s);
double pdqm_exchange_scheduler_interval(const pdqm_exchange_scheduler *s);

/* Stop: a fetch under way stops at its next request (what it stored
 * stays); then the thread ends.  NULL does nothing. */
void pdqm_exchange_scheduler_stop(pdqm_exchange_scheduler *s);

#endif
