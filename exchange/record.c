/*
 * record.c - exchanges as the store keeps them (config and status as JSON
 * text), their credentials, and the one rule by which a record becomes a
 * content item (exchange.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/ingest.h"

static const char *const TYPE_NAMES[PDQM_EXCHANGE_TYPES] = {
    "ncmec", "stopncii", "threatexchange", "tcap"
};

static const char *const DEFAULT_URLS[PDQM_EXCHANGE_TYPES] = {
    "https://report.cybertip.org/hashsharing",
    "https://api.stopncii.org",
    "https://graph.facebook.com",
    "https://app.terrorismanalytics.org",
};

const char *pdqm_exchange_type_name(pdqm_exchange_type t)
{
    return (unsigned)t < PDQM_EXCHANGE_TYPES ? TYPE_NAMES[t] : "unknown";
}

int pdqm_exchange_type_parse(const char *name)
{
    for (int i = 0; name && i < PDQM_EXCHANGE_TYPES; i++)
        if (strcasecmp(name, TYPE_NAMES[i]) == 0)
            return i;
    return -1;
}

const char *pdqm_exchange_default_url(pdqm_exchange_type t)
{
    return (unsigned)t < PDQM_EXCHANGE_TYPES ? DEFAULT_URLS[t] : "";
}

/* ------------------------------------------------------------------ */
/* Config                                                               */

pdqm_status pdqm_exchange_config_check(const pdqm_exchange_config *c, pdqm_error *err)
{
    if (pdqm_bank_name_check(c->name, NULL) != PDQM_OK)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "an exchange's name is 1 to %d characters of [A-Za-z0-9._-]",
                              PDQM_BANK_NAME_MAX);
    if ((unsigned)c->type >= PDQM_EXCHANGE_TYPES)
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "an exchange's type is ncmec, stopncii, threatexchange or tcap");
    pdqm_error why;
    if (pdqm_bank_name_check(c->bank, &why) != PDQM_OK)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "--bank: %s", why.message);
    if (c->base_url[0] && strncasecmp(c->base_url, "https://", 8) != 0 &&
        strncasecmp(c->base_url, "http://", 7) != 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "--base-url must be an http(s) URL");
    for (const char *p = c->base_url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#')
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "--base-url: no spaces, query or fragment");
    if (c->credentials[0] == '\0')
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "an exchange needs --credentials FILE (a JSON file of mode 0600)");
    if (c->type == PDQM_EXCHANGE_THREATEXCHANGE) {
        if (c->privacy_group[0] == '\0')
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "a ThreatExchange exchange needs --privacy-group ID");
        for (const char *p = c->privacy_group; *p; p++)
            if (!isdigit((unsigned char)*p))
                return pdqm_error_set(err, PDQM_ERR_INVALID,
                                      "--privacy-group is a number (the group's id)");
        for (const char *p = c->api_version; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '.')
                return pdqm_error_set(err, PDQM_ERR_INVALID,
                                      "--api-version is like v21.0");
    }
    if (c->page_size < 0 || c->page_size > 10000)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "--page-size is 1 to 10000");
    if (c->since < 0)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "--since is a time after 1970");
    return PDQM_OK;
}

static int copy_field(char *dst, size_t size, const char *src)
{
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n >= size)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* The config as the store keeps it. */
static char *config_to_json(const pdqm_exchange_config *c)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "type", pdqm_exchange_type_name(c->type),
                          "bank", c->bank, "base_url", c->base_url,
                          "credentials", c->credentials);
    if (o == NULL)
        return NULL;
    if (c->privacy_group[0])
        json_object_set_new(o, "privacy_group", json_string(c->privacy_group));
    if (c->api_version[0])
        json_object_set_new(o, "api_version", json_string(c->api_version));
    if (c->since)
        json_object_set_new(o, "since", json_integer(c->since));
    if (c->page_size)
        json_object_set_new(o, "page_size", json_integer(c->page_size));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static pdqm_status config_from_json(const char *name, const char *text,
                                    pdqm_exchange_config *c, pdqm_error *err)
{
    memset(c, 0, sizeof *c);
    json_t *o = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    int type = o ? pdqm_exchange_type_parse(xjson_str(o, "type")) : -1;
    if (!json_is_object(o) || type < 0 || copy_field(c->name, sizeof c->name, name) ||
        copy_field(c->bank, sizeof c->bank, xjson_str(o, "bank")) ||
        copy_field(c->base_url, sizeof c->base_url, xjson_str(o, "base_url")) ||
        copy_field(c->credentials, sizeof c->credentials, xjson_str(o, "credentials")) ||
        copy_field(c->privacy_group, sizeof c->privacy_group, xjson_str(o, "privacy_group")) ||
        copy_field(c->api_version, sizeof c->api_version, xjson_str(o, "api_version"))) {
        json_decref(o);
        return pdqm_error_set(err, PDQM_ERR_STORE, "exchange '%s': its stored config is "
                              "unreadable", name);
    }
    c->type = (pdqm_exchange_type)type;
    c->since = xjson_int(o, "since", 0);
    c->page_size = (int)xjson_int(o, "page_size", 0);
    json_decref(o);
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* Credentials                                                          */

static const char *const CRED_KEYS[PDQM_EXCHANGE_TYPES][2] = {
    { "username", "password" },
    { "functions_key", "subscription_key" },
    { "access_token", NULL },
    { "username", "password" },
};

/* The file's object, checked: *out (json_decref it). */
pdqm_status xcredentials_load(const pdqm_exchange_config *c, json_t **out, pdqm_error *err)
{
    *out = NULL;
    int fd = open(c->credentials, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return pdqm_error_set(err, PDQM_ERR_IO, "credentials %s: %s", c->credentials,
                              strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pdqm_error_set(err, PDQM_ERR_INVALID, "credentials %s: not a file",
                              c->credentials);
    }
    if (st.st_mode & 077) {
        close(fd);
        return pdqm_error_set(err, PDQM_ERR_INVALID,
                              "credentials %s: others may read it (mode %04o); make it "
                              "mode 0600 (chmod 600 %s)", c->credentials,
                              (unsigned)(st.st_mode & 07777), c->credentials);
    }
    if (st.st_size > 64 * 1024) {
        close(fd);
        return pdqm_error_set(err, PDQM_ERR_INVALID, "credentials %s: over 64 KiB",
                              c->credentials);
    }
    json_error_t je;
    json_t *o = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
    close(fd);
    if (!json_is_object(o)) {
        json_decref(o);
        /* (Not je.text: it may quote the file.) */
        return pdqm_error_set(err, PDQM_ERR_INVALID, "credentials %s: not a JSON object",
                              c->credentials);
    }
    for (int i = 0; i < 2; i++) {
        const char *key = CRED_KEYS[c->type][i];
        const char *v = key ? xjson_str(o, key) : "";
        if (v == NULL || (key && v[0] == '\0')) {
            json_decref(o);
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "credentials %s: a %s exchange needs \"%s\"%s%s%s",
                                  c->credentials, pdqm_exchange_type_name(c->type),
                                  CRED_KEYS[c->type][0], CRED_KEYS[c->type][1] ? " and \"" : "",
                                  CRED_KEYS[c->type][1] ? CRED_KEYS[c->type][1] : "",
                                  CRED_KEYS[c->type][1] ? "\"" : "");
        }
    }
    *out = o;
    return PDQM_OK;
}

pdqm_status pdqm_exchange_credentials_check(const pdqm_exchange_config *c, pdqm_error *err)
{
    json_t *o;
    pdqm_status st = xcredentials_load(c, &o, err);
    json_decref(o);
    return st;
}

/* ------------------------------------------------------------------ */
/* Status                                                               */

static void counts_to(json_t *o, const pdqm_exchange_counts *c)
{
    json_object_set_new(o, "pages", json_integer((json_int_t)c->pages));
    json_object_set_new(o, "records", json_integer((json_int_t)c->records));
    json_object_set_new(o, "added", json_integer((json_int_t)c->added));
    json_object_set_new(o, "updated", json_integer((json_int_t)c->updated));
    json_object_set_new(o, "unchanged", json_integer((json_int_t)c->unchanged));
    json_object_set_new(o, "deleted", json_integer((json_int_t)c->deleted));
    json_object_set_new(o, "skipped", json_integer((json_int_t)c->skipped));
    json_object_set_new(o, "bad", json_integer((json_int_t)c->bad));
}

static void counts_from(const json_t *o, pdqm_exchange_counts *c)
{
    c->pages = (uint64_t)xjson_int(o, "pages", 0);
    c->records = (uint64_t)xjson_int(o, "records", 0);
    c->added = (uint64_t)xjson_int(o, "added", 0);
    c->updated = (uint64_t)xjson_int(o, "updated", 0);
    c->unchanged = (uint64_t)xjson_int(o, "unchanged", 0);
    c->deleted = (uint64_t)xjson_int(o, "deleted", 0);
    c->skipped = (uint64_t)xjson_int(o, "skipped", 0);
    c->bad = (uint64_t)xjson_int(o, "bad", 0);
}

char *xstatus_to_json(const pdqm_exchange_status *s)
{
    json_t *o = json_object(), *last = json_object(), *total = json_object();
    if (!o || !last || !total) {
        json_decref(o);
        json_decref(last);
        json_decref(total);
        return NULL;
    }
    json_object_set_new(o, "started", json_integer(s->started));
    json_object_set_new(o, "finished", json_integer(s->finished));
    json_object_set_new(o, "ok", json_boolean(s->ok));
    if (s->error[0])
        json_object_set_new(o, "error", json_string(s->error));
    json_object_set_new(o, "last_success", json_integer(s->last_success));
    json_object_set_new(o, "fetches", json_integer((json_int_t)s->fetches));
    json_object_set_new(o, "failures", json_integer((json_int_t)s->failures));
    if (s->running_since)
        json_object_set_new(o, "running_since", json_integer(s->running_since));
    counts_to(last, &s->last);
    counts_to(total, &s->total);
    json_object_set_new(o, "last", last);
    json_object_set_new(o, "total", total);
    char *t = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return t;
}

void xstatus_from_json(const char *text, pdqm_exchange_status *s)
{
    memset(s, 0, sizeof *s);
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return;
    }
    s->started = xjson_int(o, "started", 0);
    s->finished = xjson_int(o, "finished", 0);
    s->ok = json_is_true(json_object_get(o, "ok"));
    const char *e = xjson_str(o, "error");
    if (e)
        snprintf(s->error, sizeof s->error, "%s", e);
    s->last_success = xjson_int(o, "last_success", 0);
    s->fetches = (uint64_t)xjson_int(o, "fetches", 0);
    s->failures = (uint64_t)xjson_int(o, "failures", 0);
    s->running_since = xjson_int(o, "running_since", 0);
    counts_from(json_object_get(o, "last"), &s->last);
    counts_from(json_object_get(o, "total"), &s->total);
    json_decref(o);
}

/* ------------------------------------------------------------------ */
/* Adding, removing, listing                                            */

pdqm_status pdqm_exchange_add(const pdqm_writer *w, const pdqm_exchange_config *c,
                              pdqm_error *err)
{
    pdqm_status st = pdqm_exchange_config_check(c, err);
    if (st != PDQM_OK)
        return st;
    if (w->store) {
        /* One bank per exchange: another's deletions must not reach it. */
        pdqm_exchange_info *all;
        size_t n;
        if ((st = pdqm_exchange_list(w->store, &all, &n, err)) != PDQM_OK)
            return st;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(all[i].config.name, c->name) == 0) {
                pdqm_exchange_infos_free(all, n);
                return pdqm_error_set(err, PDQM_ERR_EXISTS, "exchange '%s' exists already",
                                      c->name);
            }
            if (strcmp(all[i].config.bank, c->bank) == 0) {
                pdqm_error_set(err, PDQM_ERR_EXISTS, "bank '%s' is exchange '%s''s: give "
                               "each exchange a bank of its own", c->bank, all[i].config.name);
                pdqm_exchange_infos_free(all, n);
                return PDQM_ERR_EXISTS;
            }
        }
        pdqm_exchange_infos_free(all, n);
    }
    char *text = config_to_json(c);
    if (text == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    int64_t now = (int64_t)time(NULL);
    pdqm_op ops[2] = {
        { .type = PDQM_OP_BANK_CREATE, .bank = c->bank, .threshold = PDQM_DEFAULT_THRESHOLD,
          .bank_kind = PDQM_BANK_BLOCK, .time = now },
        { .type = PDQM_OP_EXCHANGE_SET, .exchange = c->name,
          .xflags = PDQM_XSET_CREATE | PDQM_XSET_CONFIG, .config = text, .time = now },
    };
    pdqm_op_result res[2];
    memset(res, 0, sizeof res);
    st = pdqm_write_ops(w, ops, 2, res, NULL, err);
    free(text);
    if (st != PDQM_OK)
        return st;
    /* (A bank that exists is the exchange's: its outcome is not an error.) */
    if (res[1].error.status != PDQM_OK) {
        if (err)
            *err = res[1].error;
        return res[1].error.status;
    }
    return PDQM_OK;
}

pdqm_status pdqm_exchange_remove(const pdqm_writer *w, const char *name, pdqm_error *err)
{
    pdqm_op op = { .type = PDQM_OP_EXCHANGE_DELETE, .exchange = name };
    pdqm_op_result res;
    memset(&res, 0, sizeof res);
    pdqm_status st = pdqm_write_ops(w, &op, 1, &res, NULL, err);
    if (st != PDQM_OK)
        return st;
    if (res.error.status != PDQM_OK) {
        if (err)
            *err = res.error;
        return res.error.status;
    }
    return PDQM_OK;
}

pdqm_status pdqm_exchange_reset(const pdqm_writer *w, const char *name, const char *checkpoint,
                                pdqm_error *err)
{
    if (checkpoint) {
        json_t *j = json_loads(checkpoint, 0, NULL);
        int ok = json_is_object(j);
        json_decref(j);
        if (!ok)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "a checkpoint is a JSON object");
    }
    /* The lease, taken and let go in the same op: refused while a fetch
     * holds it. */
    char holder[64];
    snprintf(holder, sizeof holder, "reset/%ld", (long)getpid());
    pdqm_op op = { .type = PDQM_OP_EXCHANGE_SET, .exchange = name,
                   .xflags = PDQM_XSET_CHECKPOINT | PDQM_XSET_LEASE, .checkpoint = checkpoint,
                   .holder = holder, .lease_until = 0, .time = (int64_t)time(NULL) };
    pdqm_op_result res;
    memset(&res, 0, sizeof res);
    pdqm_status st = pdqm_write_ops(w, &op, 1, &res, NULL, err);
    if (st != PDQM_OK)
        return st;
    if (res.error.status != PDQM_OK) {
        if (err)
            *err = res.error;
        return res.error.status;
    }
    return PDQM_OK;
}

static pdqm_status info_from(const pdqm_exchange_state *s, pdqm_exchange_info *out,
                             pdqm_error *err)
{
    memset(out, 0, sizeof *out);
    pdqm_status st = config_from_json(s->name, s->config, &out->config, err);
    if (st != PDQM_OK)
        return st;
    xstatus_from_json(s->status, &out->status);
    if (s->checkpoint && (out->checkpoint = strdup(s->checkpoint)) == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    memcpy(out->holder, s->holder, sizeof out->holder);
    out->lease_until = s->lease_until;
    return PDQM_OK;
}

void pdqm_exchange_infos_free(pdqm_exchange_info *v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i].checkpoint);
    free(v);
}

pdqm_status pdqm_exchange_list(pdqm_store *store, pdqm_exchange_info **out, size_t *n,
                               pdqm_error *err)
{
    pdqm_exchange_state *all;
    size_t count;
    pdqm_status st = pdqm_store_exchange_list(store, &all, &count, err);
    if (st != PDQM_OK)
        return st;
    pdqm_exchange_info *v = calloc(count ? count : 1, sizeof *v);
    if (v == NULL) {
        pdqm_exchange_states_free(all, count);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < count && st == PDQM_OK; i++)
        st = info_from(&all[i], &v[i], err);
    pdqm_exchange_states_free(all, count);
    if (st != PDQM_OK) {
        pdqm_exchange_infos_free(v, count);
        return st;
    }
    *out = v;
    *n = count;
    return PDQM_OK;
}

pdqm_status pdqm_exchange_get(pdqm_store *store, const char *name, pdqm_exchange_info *out,
                              pdqm_error *err)
{
    pdqm_exchange_state s;
    pdqm_status st = pdqm_store_exchange_get(store, name, &s, err);
    if (st != PDQM_OK)
        return st;
    st = info_from(&s, out, err);
    pdqm_exchange_state_clear(&s);
    if (st != PDQM_OK) {
        free(out->checkpoint);
        out->checkpoint = NULL;
    }
    return st;
}

/* ------------------------------------------------------------------ */
/* Pages                                                                */

xrecord *xpage_add(xpage *p)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        xrecord *g = realloc(p->recs, cap * sizeof *g);
        if (g == NULL)
            return NULL;
        p->recs = g;
        p->cap = cap;
    }
    xrecord *r = &p->recs[p->n++];
    memset(r, 0, sizeof *r);
    return r;
}

const char *xpage_strdup(xpage *p, const char *s, size_t n)
{
    if (p->n_strings == p->cap_strings) {
        size_t cap = p->cap_strings ? p->cap_strings * 2 : 256;
        char **g = realloc(p->strings, cap * sizeof *g);
        if (g == NULL)
            return NULL;
        p->strings = g;
        p->cap_strings = cap;
    }
    char *c = malloc(n + 1);
    if (c == NULL)
        return NULL;
    memcpy(c, s, n);
    c[n] = '\0';
    p->strings[p->n_strings++] = c;
    return c;
}

void xpage_clear(xpage *p)
{
    for (size_t i = 0; i < p->n; i++)
        json_decref(p->recs[i].provenance);
    for (size_t i = 0; i < p->n_strings; i++)
        free(p->strings[i]);
    p->n = 0;
    p->n_strings = 0;
    free(p->checkpoint);
    p->checkpoint = NULL;
    p->done = 0;
    json_decref(p->keep);
    p->keep = NULL;
}

/* ------------------------------------------------------------------ */
/* Records into items                                                   */

pdqm_status xrecord_id_check(const char *id, pdqm_error *err)
{
    if (id == NULL || id[0] == '\0')
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a record without an id");
    pdqm_error why;
    if (pdqm_content_id_check(id, &why) != PDQM_OK)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "record id: %s", why.message);
    return PDQM_OK;
}

static int is_hex(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

pdqm_status xrecord_to_add(const pdqm_exchange_config *c, const xrecord *r, int64_t added,
                           pdqm_add *out, pdqm_stored_hash *hash, char **metadata,
                           pdqm_error *err)
{
    *metadata = NULL;
    pdqm_status st = xrecord_id_check(r->id, err);
    if (st != PDQM_OK)
        return st;
    memset(out, 0, sizeof *out);
    out->bank = c->bank;
    out->content_id = r->id;
    out->added = added;
    const char *signal;
    if (r->signal == XSIG_PDQ) {
        pdqm_error why;
        if (r->hash == NULL || pdqm_hash256_from_hex(r->hash, strlen(r->hash), &hash->hash,
                                                     &why) != PDQM_OK)
            return pdqm_error_set(err, PDQM_ERR_INVALID, "a PDQ that is not 64 hex digits");
        if ((st = pdqm_hash_check(&hash->hash, -1, &why)) != PDQM_OK)
            return pdqm_error_set(err, st, "%s", why.message);
        hash->quality = 100;      /* (the exchanges give none: a hash list's rule) */
        hash->timestamp = 0;
        out->kind = PDQM_CONTENT_IMAGE;
        out->hashes = hash;
        out->n_hashes = 1;
        signal = "pdq";
    } else if (r->signal == XSIG_VIDEO_MD5) {
        if (!is_hex(r->hash, 32))
            return pdqm_error_set(err, PDQM_ERR_INVALID, "an MD5 that is not 32 hex digits");
        out->kind = PDQM_CONTENT_VIDEO;
        out->md5 = r->hash;
        signal = "video_md5";
    } else {
        return pdqm_error_set(err, PDQM_ERR_INVALID, "no signal pdqmatch matches");
    }
    json_t *m = json_object();
    if (m == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    if (json_is_object(r->provenance))
        json_object_update(m, r->provenance);
    json_object_set_new(m, "exchange", json_string(c->name));
    json_object_set_new(m, "source", json_string(pdqm_exchange_type_name(c->type)));
    json_object_set_new(m, "record_id", json_string(r->id));
    json_object_set_new(m, "signal_type", json_string(signal));
    if (r->updated > 0)
        json_object_set_new(m, "updated_at", json_integer(r->updated));
    char *text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    if (text && strlen(text) > PDQM_METADATA_MAX) {
        /* What the source says is too much: keep who and what only. */
        free(text);
        json_t *small = json_pack("{s:O, s:O, s:O, s:O}", "exchange",
                                  json_object_get(m, "exchange"), "source",
                                  json_object_get(m, "source"), "record_id",
                                  json_object_get(m, "record_id"), "signal_type",
                                  json_object_get(m, "signal_type"));
        json_object_set_new(small, "truncated", json_true());
        text = json_dumps(small, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        json_decref(small);
    }
    json_decref(m);
    if (text == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    *metadata = text;
    out->metadata = text;
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* As JSON                                                              */

static json_t *counts_json(const pdqm_exchange_counts *c)
{
    json_t *o = json_object();
    if (o)
        counts_to(o, c);
    return o;
}

json_t *pdqm_exchange_info_json(const pdqm_exchange_info *x, int64_t now)
{
    const pdqm_exchange_config *c = &x->config;
    const pdqm_exchange_status *s = &x->status;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "name", json_string(c->name));
    json_object_set_new(o, "type", json_string(pdqm_exchange_type_name(c->type)));
    json_object_set_new(o, "bank", json_string(c->bank));
    json_object_set_new(o, "base_url", json_string(c->base_url[0] ? c->base_url
                                                   : pdqm_exchange_default_url(c->type)));
    json_object_set_new(o, "credentials", json_string(c->credentials));
    if (c->privacy_group[0])
        json_object_set_new(o, "privacy_group", json_string(c->privacy_group));
    if (c->since)
        json_object_set_new(o, "since", json_integer(c->since));
    json_t *cp = x->checkpoint ? json_loads(x->checkpoint, 0, NULL) : NULL;
    json_object_set_new(o, "checkpoint", cp ? cp : json_null());
    int held = x->holder[0] && x->lease_until > now;
    json_object_set_new(o, "fetching", held ? json_string(x->holder) : json_null());
    json_object_set_new(o, "fetch_started", held && s->running_since
                                                ? json_integer(s->running_since) : json_null());
    if (s->fetches) {
        json_t *last = counts_json(&s->last);
        if (last) {
            json_object_set_new(last, "started", json_integer(s->started));
            json_object_set_new(last, "finished", json_integer(s->finished));
            json_object_set_new(last, "ok", json_boolean(s->ok));
            json_object_set_new(last, "error", s->error[0] ? json_string(s->error) : json_null());
        }
        json_object_set_new(o, "last_fetch", last ? last : json_null());
    } else {
        json_object_set_new(o, "last_fetch", json_null());
    }
    json_object_set_new(o, "last_success", json_integer(s->last_success));
    json_object_set_new(o, "fetches", json_integer((json_int_t)s->fetches));
    json_object_set_new(o, "failures", json_integer((json_int_t)s->failures));
    json_t *total = counts_json(&s->total);
    json_object_set_new(o, "total", total ? total : json_null());
    return o;
}

int64_t pdqm_exchange_parse_time(const char *s)
{
    if (s == NULL || *s == '\0')
        return -1;
    const char *p = s;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '\0' && p - s <= 12)
        return (int64_t)strtoll(s, NULL, 10);
    if (strlen(s) == 10) {
        char buf[32];
        snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
        return xparse_time(buf);
    }
    return xparse_time(s);
}
