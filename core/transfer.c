/*
 * transfer.c - export and import (see transfer.h for the forms).
 */
#define _POSIX_C_SOURCE 200809L
#include "transfer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ingest.h"
#include "jsonraw.h"

#define EXPORT_VERSION 1
#define BATCH_ITEMS 10000
#define BATCH_HASHES 1000000

void pdqm_format_double(double v, char out[32])
{
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(out, 32, "%.*g", precision, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* ------------------------------------------------------------------ */
/* Export                                                               */

typedef struct exporter {
    FILE *out;
    pdqm_export_format format;
    pdqm_error *err;
    pdqm_status st;
} exporter;

void pdqm_csv_field(FILE *f, const char *s)
{
    if (s == NULL)
        return;
    if (strpbrk(s, ",\"\n\r") == NULL) {
        fputs(s, f);
        return;
    }
    putc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            putc('"', f);
        putc(*s, f);
    }
    putc('"', f);
}

static int csv_item(exporter *x, const pdqm_content_info *info, const pdqm_stored_hash *hashes,
                    size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char hex[PDQM_HASH_HEX_LEN + 1], ts[32] = "";
        pdqm_hash256_to_hex(&hashes[i].hash, hex);
        if (info->kind == PDQM_CONTENT_VIDEO || hashes[i].timestamp != 0)
            pdqm_format_double(hashes[i].timestamp, ts);
        fprintf(x->out, "%s,%d,", hex, hashes[i].quality);
        pdqm_csv_field(x->out, info->content_id);
        fprintf(x->out, ",%s,", ts);
        pdqm_csv_field(x->out, info->bank);
        putc(',', x->out);
        pdqm_csv_field(x->out, info->metadata);
        fprintf(x->out, ",%s,%s,%s\n", info->sha256, info->md5,
                pdqm_content_kind_name(info->kind));
    }
    return 0;
}

/* Dump j (consumed) as one line, stored texts spliced in. */
static int put_line(exporter *x, json_t *j, pdqm_json_raw *raw)
{
    char *text = j ? pdqm_json_raw_dumps(j, JSON_COMPACT, raw) : NULL;
    json_decref(j);
    pdqm_json_raw_clear(raw);
    if (text == NULL) {
        x->st = pdqm_error_set(x->err, PDQM_ERR_NOMEM, "out of memory");
        return 1;
    }
    fputs(text, x->out);
    putc('\n', x->out);
    free(text);
    return 0;
}

static int jsonl_item(exporter *x, const pdqm_content_info *info,
                      const pdqm_stored_hash *hashes, size_t n)
{
    pdqm_json_raw raw;
    pdqm_json_raw_init(&raw);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I}", "type", "item", "bank", info->bank,
                          "content_id", info->content_id,
                          "kind", pdqm_content_kind_name(info->kind),
                          "added", (json_int_t)info->added);
    json_t *arr = json_array();
    if (j == NULL || arr == NULL) {
        json_decref(j);
        json_decref(arr);
        x->st = pdqm_error_set(x->err, PDQM_ERR_NOMEM, "out of memory (or a content id "
                               "that is not UTF-8: '%.60s')", info->content_id);
        return 1;
    }
    if (info->sha256[0])
        json_object_set_new(j, "sha256", json_string(info->sha256));
    if (info->md5[0])
        json_object_set_new(j, "md5", json_string(info->md5));
    if (info->metadata)
        json_object_set_new(j, "metadata", pdqm_json_raw_value(&raw, info->metadata));
    if (info->disabled_until)
        json_object_set_new(j, "disabled_until", json_integer((json_int_t)info->disabled_until));
    if (info->note)
        json_object_set_new(j, "note", json_string(info->note));
    for (size_t i = 0; i < n; i++) {
        char hex[PDQM_HASH_HEX_LEN + 1];
        pdqm_hash256_to_hex(&hashes[i].hash, hex);
        json_t *h = json_pack("{s:s,s:i}", "hash", hex, "quality", hashes[i].quality);
        if (h && (info->kind == PDQM_CONTENT_VIDEO || hashes[i].timestamp != 0))
            json_object_set_new(h, "timestamp", json_real(hashes[i].timestamp));
        json_array_append_new(arr, h);
    }
    json_object_set_new(j, "hashes", arr);
    return put_line(x, j, &raw);
}

static int export_item(void *arg, const pdqm_content_info *info,
                       const pdqm_stored_hash *hashes, size_t n)
{
    exporter *x = arg;
    int stop = x->format == PDQM_EXPORT_CSV ? csv_item(x, info, hashes, n)
                                            : jsonl_item(x, info, hashes, n);
    if (!stop && ferror(x->out)) {
        x->st = pdqm_error_set(x->err, PDQM_ERR_IO, "cannot write the export: %s",
                               strerror(errno));
        stop = 1;
    }
    return stop;
}

pdqm_status pdqm_export(pdqm_store *store, const char *bank, pdqm_export_format format,
                        FILE *out, pdqm_error *err)
{
    exporter x = { out, format, err, PDQM_OK };
    pdqm_bank_info *banks = NULL;
    size_t n = 0;
    pdqm_status st;
    if (bank) {
        banks = malloc(sizeof *banks);
        if (banks == NULL)
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        st = pdqm_store_bank_get(store, bank, banks, err);
        n = 1;
    } else {
        st = pdqm_store_bank_list(store, &banks, &n, err);
    }
    if (st != PDQM_OK) {
        free(banks);
        return st;
    }
    if (format == PDQM_EXPORT_CSV) {
        fputs("hash,quality,content_id,timestamp,bank,metadata,sha256,md5,kind\n", out);
    } else {
        pdqm_json_raw raw;
        pdqm_json_raw_init(&raw);
        int stop = put_line(&x, json_pack("{s:s,s:i}", "format", "pdqmatch-export",
                                          "version", EXPORT_VERSION), &raw);
        for (size_t i = 0; i < n && !stop; i++) {
            json_t *b = json_pack("{s:s,s:s,s:i,s:s,s:I}", "type", "bank",
                                  "name", banks[i].name, "threshold", banks[i].threshold,
                                  "kind", pdqm_bank_kind_name(banks[i].kind),
                                  "created", (json_int_t)banks[i].created);
            if (b && banks[i].enabled_ratio != 1.0)
                json_object_set_new(b, "enabled_ratio", json_real(banks[i].enabled_ratio));
            stop = put_line(&x, b, &raw);
        }
        if (stop) {
            free(banks);
            return x.st;
        }
    }
    free(banks);
    int stopped = 0;
    st = pdqm_store_walk(store, bank, export_item, &x, &stopped, err);
    if (st != PDQM_OK)
        return st;
    if (stopped)
        return x.st;
    if (fflush(out) != 0 || ferror(out))
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot write the export: %s", strerror(errno));
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* Import                                                               */

/* Read one line of f into *buf (grown up to max).  Returns its length, -1
 * at the end, -2 on a read error or out of memory, -3 for a line over max
 * (consumed). */
static long read_line(FILE *f, char **buf, size_t *cap, size_t max)
{
    size_t n = 0;
    int c, any = 0;
    while ((c = getc_unlocked(f)) != EOF) {
        any = 1;
        if (c == '\n')
            break;
        if (n + 2 > *cap) {
            if (n >= max) {
                while ((c = getc_unlocked(f)) != EOF && c != '\n')
                    ;
                return -3;
            }
            size_t grown = *cap ? *cap * 2 : 65536;
            if (grown > max + 2)
                grown = max + 2;
            char *b = realloc(*buf, grown);
            if (b == NULL)
                return -2;
            *buf = b;
            *cap = grown;
        }
        (*buf)[n++] = (char)c;
    }
    if (ferror(f))
        return -2;
    if (!any)
        return -1;
    if (n > 0 && (*buf)[n - 1] == '\r')
        n--;
    (*buf)[n] = '\0';
    return (long)n;
}

/* A minimal walk over a JSON text jansson has already accepted: enough to
 * find where a member's value starts and ends, so that stored metadata is
 * taken byte for byte. */
static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static const char *skip_string(const char *p)   /* p at the opening quote */
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p ? p + 1 : p;
}

static const char *skip_value(const char *p)
{
    if (*p == '"')
        return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                p = skip_string(p);
                continue;
            }
            depth += *p == '{' || *p == '[';
            depth -= *p == '}' || *p == ']';
            p++;
        } while (*p && depth > 0);
        return p;
    }
    while (*p && !strchr(",}] \t\r\n", *p))
        p++;
    return p;
}

/* The raw text of the top-level member `key` of the object in line. */
static int raw_member(const char *line, const char *key, const char **start, size_t *len)
{
    const char *p = skip_ws(line);
    if (*p++ != '{')
        return 0;
    size_t klen = strlen(key);
    for (;;) {
        p = skip_ws(p);
        if (*p != '"')
            return 0;
        const char *kend = skip_string(p);
        int match = (size_t)(kend - p) == klen + 2 && memcmp(p + 1, key, klen) == 0;
        p = skip_ws(kend);
        if (*p++ != ':')
            return 0;
        p = skip_ws(p);
        const char *vend = skip_value(p);
        if (match) {
            *start = p;
            *len = (size_t)(vend - p);
            return 1;
        }
        p = skip_ws(vend);
        if (*p++ != ',')
            return 0;
    }
}

typedef struct importer {
    const pdqm_import_sink *sink;
    pdqm_import_counts *counts;
    pdqm_import_refused_fn refused;
    void *arg;
    pdqm_add *adds;
    pdqm_add_outcome *outcomes;
    size_t n, cap, hashes;
} importer;

static void item_free(pdqm_add *a)
{
    free((char *)a->bank);
    free((char *)a->content_id);
    free((char *)a->metadata);
    free((char *)a->sha256);
    free((char *)a->md5);
    free((char *)a->note);
    free((pdqm_stored_hash *)a->hashes);
}

static pdqm_status flush(importer *im, pdqm_error *err)
{
    if (im->n == 0)
        return PDQM_OK;
    int known = 1;
    pdqm_status st = im->sink->add(im->sink->arg, im->adds, im->n, im->outcomes, &known, err);
    for (size_t i = 0; i < im->n; i++) {
        if (st == PDQM_OK && (!known || im->outcomes[i] == PDQM_ADDED)) {
            im->counts->items++;
            im->counts->hashes += im->adds[i].n_hashes;
        } else if (st == PDQM_OK) {
            im->counts->existing++;
        }
        item_free(&im->adds[i]);
    }
    im->n = im->hashes = 0;
    return st;
}

static pdqm_status refuse(importer *im, uint64_t line, pdqm_status st, const char *fmt,
                          const char *detail)
{
    pdqm_error why;
    pdqm_error_set(&why, st, fmt, detail);
    im->counts->refused++;
    if (im->refused)
        im->refused(im->arg, line, &why);
    return PDQM_OK;
}

static pdqm_status refuse_err(importer *im, uint64_t line, const pdqm_error *why)
{
    im->counts->refused++;
    if (im->refused)
        im->refused(im->arg, line, why);
    return PDQM_OK;
}

static pdqm_status import_bank(importer *im, uint64_t line, json_t *j, pdqm_error *err)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *t = json_object_get(j, "threshold"), *c = json_object_get(j, "created");
    json_t *r = json_object_get(j, "enabled_ratio");
    const char *kind_name = json_string_value(json_object_get(j, "kind"));
    int kind = kind_name ? pdqm_bank_kind_parse(kind_name) : PDQM_BANK_BLOCK;
    pdqm_error why;
    if (name == NULL)
        return refuse(im, line, PDQM_ERR_INVALID, "a bank line needs a 'name'%s", "");
    if (pdqm_bank_name_check(name, &why) != PDQM_OK)
        return refuse_err(im, line, &why);
    if (t && (!json_is_integer(t) || json_integer_value(t) < 0 ||
              json_integer_value(t) > PDQM_MAX_DISTANCE))
        return refuse(im, line, PDQM_ERR_INVALID, "bank '%s': 'threshold' is 0 to 256", name);
    if (kind < 0)
        return refuse(im, line, PDQM_ERR_INVALID, "bank '%s': 'kind' is block or allow", name);
    if (c && (!json_is_integer(c) || json_integer_value(c) < 0))
        return refuse(im, line, PDQM_ERR_INVALID, "bank '%s': 'created' is unix seconds", name);
    if (r && (!json_is_number(r) || !(json_number_value(r) >= 0 && json_number_value(r) <= 1)))
        return refuse(im, line, PDQM_ERR_INVALID, "bank '%s': 'enabled_ratio' is 0 to 1",
                      name);
    int threshold = t ? (int)json_integer_value(t) : PDQM_DEFAULT_THRESHOLD;
    pdqm_status st = flush(im, err);   /* items before this line go first */
    if (st != PDQM_OK)
        return st;
    int did = 0;
    st = im->sink->bank(im->sink->arg, name, threshold, (pdqm_bank_kind)kind,
                        r ? json_number_value(r) : 1.0, c ? (int64_t)json_integer_value(c) : 0,
                        &did, err);
    if (st == PDQM_OK) {
        im->counts->banks_created += did == 1;
        im->counts->banks_changed += did == 2;
        im->counts->banks_published += did < 0;
    }
    return st;
}

/* The store's sink. */
static pdqm_status store_bank(void *arg, const char *name, int threshold, pdqm_bank_kind kind,
                              double enabled_ratio, int64_t created, int *did, pdqm_error *err)
{
    pdqm_store *store = arg;
    pdqm_bank_info b;
    *did = 0;
    pdqm_status st = pdqm_store_bank_get(store, name, &b, err);
    pdqm_bank_changes c = { threshold, (int)kind, enabled_ratio, NULL };
    if (st == PDQM_ERR_NOT_FOUND) {
        st = pdqm_store_bank_create_with(store, name, threshold, kind,
                                         enabled_ratio != 1.0 ? enabled_ratio : -1.0, created,
                                         err);
        *did = st == PDQM_OK;
    } else if (st == PDQM_OK && (b.threshold != threshold || b.kind != kind ||
                                 b.enabled_ratio != enabled_ratio)) {
        st = pdqm_store_bank_change(store, name, &c, err);
        *did = st == PDQM_OK ? 2 : 0;
    }
    return st;
}

static pdqm_status store_add(void *arg, const pdqm_add *adds, size_t n,
                             pdqm_add_outcome *outcomes, int *known, pdqm_error *err)
{
    *known = 1;
    return pdqm_ingest_add(arg, adds, n, 1, outcomes, err);
}

static pdqm_status store_finish(void *arg, pdqm_error *err)
{
    return pdqm_store_index_pending(arg, NULL, err);
}

void pdqm_import_store_sink(pdqm_store *store, pdqm_import_sink *out)
{
    *out = (pdqm_import_sink){ store, store_bank, store_add, store_finish };
}

/* A hex digest member of `digits` characters: 0 and *out when fine. */
static int digest(json_t *j, const char *key, size_t digits, char **out)
{
    *out = NULL;
    json_t *v = json_object_get(j, key);
    if (v == NULL || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    if (s == NULL || strlen(s) != digits || strspn(s, "0123456789abcdefABCDEF") != digits)
        return -1;
    return (*out = strdup(s)) ? 0 : -1;
}

static pdqm_status import_item(importer *im, uint64_t line, const char *text, json_t *j,
                               pdqm_error *err)
{
    const char *bank = json_string_value(json_object_get(j, "bank"));
    const char *cid = json_string_value(json_object_get(j, "content_id"));
    const char *kind_name = json_string_value(json_object_get(j, "kind"));
    json_t *added = json_object_get(j, "added"), *hashes = json_object_get(j, "hashes");
    json_t *meta = json_object_get(j, "metadata");
    json_t *off = json_object_get(j, "disabled_until"), *note = json_object_get(j, "note");
    int kind = kind_name ? pdqm_content_kind_parse(kind_name) : PDQM_CONTENT_HASHES;
    size_t n = json_array_size(hashes);
    pdqm_error why;
    if (bank == NULL || cid == NULL)
        return refuse(im, line, PDQM_ERR_INVALID, "an item needs a 'bank' and a 'content_id'%s",
                      "");
    if (pdqm_bank_name_check(bank, &why) != PDQM_OK || pdqm_content_id_check(cid, &why))
        return refuse_err(im, line, &why);
    if (kind < 0)
        return refuse(im, line, PDQM_ERR_INVALID, "'%.60s': 'kind' is hashes, image or video",
                      cid);
    if (added && (!json_is_integer(added) || json_integer_value(added) < 0))
        return refuse(im, line, PDQM_ERR_INVALID, "'%.60s': 'added' is unix seconds", cid);
    if (!json_is_array(hashes) || n > PDQM_MAX_HASHES_PER_CONTENT ||
        (n == 0 && !json_is_string(json_object_get(j, "md5"))))
        return refuse(im, line, PDQM_ERR_INVALID, "'%.60s': 'hashes' is an array of 1 to "
                      "1000000 hashes (or none, with an 'md5')", cid);
    if (off && (!json_is_integer(off) || json_integer_value(off) < -1))
        return refuse(im, line, PDQM_ERR_INVALID, "'%.60s': 'disabled_until' is -1, 0 or unix "
                      "seconds", cid);
    if (note && !json_is_string(note))
        return refuse(im, line, PDQM_ERR_INVALID, "'%.60s': 'note' is a string", cid);
    pdqm_add a;
    memset(&a, 0, sizeof a);
    a.kind = (pdqm_content_kind)kind;
    a.added = added ? (int64_t)json_integer_value(added) : 0;
    a.disabled_until = off ? (int64_t)json_integer_value(off) : 0;
    a.n_hashes = n;
    pdqm_stored_hash *h = calloc(n ? n : 1, sizeof *h);
    a.hashes = h;
    a.bank = strdup(bank);
    a.content_id = strdup(cid);
    a.note = note ? strdup(json_string_value(note)) : NULL;
    if (!h || !a.bank || !a.content_id || (note && !a.note)) {
        item_free(&a);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    }
    if (a.note && pdqm_note_check(a.note, &why) != PDQM_OK) {
        item_free(&a);
        return refuse_err(im, line, &why);
    }
    if (digest(j, "sha256", 64, (char **)&a.sha256) || digest(j, "md5", 32, (char **)&a.md5)) {
        item_free(&a);
        return refuse(im, line, PDQM_ERR_INVALID, "'%.60s': 'sha256' and 'md5' are hex digests",
                      cid);
    }
    if (meta && !json_is_null(meta)) {
        const char *start;
        size_t len;
        if (!raw_member(text, "metadata", &start, &len) || len > PDQM_METADATA_MAX) {
            item_free(&a);
            return refuse(im, line, PDQM_ERR_INVALID, "'%.60s': 'metadata' is at most 65536 "
                          "bytes of JSON, under that very key", cid);
        }
        char *m = strndup(start, len);
        if (m == NULL) {
            item_free(&a);
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        }
        a.metadata = m;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(hashes, i);
        const char *hex = json_string_value(json_object_get(e, "hash"));
        json_t *q = json_object_get(e, "quality"), *ts = json_object_get(e, "timestamp");
        const char *bad = NULL;
        if (hex == NULL || pdqm_hash256_from_hex(hex, strlen(hex), &h[i].hash, NULL))
            bad = "a 'hash' of 64 hex digits";
        else if (q && (!json_is_integer(q) || json_integer_value(q) < 0 ||
                       json_integer_value(q) > 100))
            bad = "a 'quality' from 0 to 100";
        else if (ts && (!json_is_number(ts) || !(json_number_value(ts) >= 0) ||
                        json_number_value(ts) > 1e9))
            bad = "a 'timestamp' of seconds from 0";
        if (bad) {
            item_free(&a);
            return refuse(im, line, PDQM_ERR_INVALID, "each hash has %s", bad);
        }
        h[i].quality = q ? (int)json_integer_value(q) : 100;
        h[i].timestamp = ts ? json_number_value(ts) : 0;
        if (pdqm_hash_check(&h[i].hash, h[i].quality, &why) != PDQM_OK) {
            item_free(&a);
            return refuse_err(im, line, &why);
        }
    }
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 64;
        pdqm_add *grown = realloc(im->adds, cap * sizeof *grown);
        pdqm_add_outcome *o = grown ? realloc(im->outcomes, cap * sizeof *o) : NULL;
        if (grown)
            im->adds = grown;
        if (o)
            im->outcomes = o;
        if (!grown || !o) {
            item_free(&a);
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
        }
        im->cap = cap;
    }
    im->adds[im->n++] = a;
    im->hashes += n;
    if (im->n >= BATCH_ITEMS || im->hashes >= BATCH_HASHES)
        return flush(im, err);
    return PDQM_OK;
}

pdqm_status pdqm_import_jsonl(pdqm_store *store, FILE *in, pdqm_import_refused_fn refused,
                              void *arg, pdqm_import_counts *counts, pdqm_error *err)
{
    pdqm_import_sink sink;
    pdqm_import_store_sink(store, &sink);
    return pdqm_import_jsonl_to(&sink, in, refused, arg, counts, err);
}

pdqm_status pdqm_import_jsonl_to(const pdqm_import_sink *sink, FILE *in,
                                 pdqm_import_refused_fn refused, void *arg,
                                 pdqm_import_counts *counts, pdqm_error *err)
{
    memset(counts, 0, sizeof *counts);
    importer im = { .sink = sink, .counts = counts, .refused = refused, .arg = arg };
    char *buf = NULL;
    size_t cap = 0;
    uint64_t line = 0;
    int header = 0;
    pdqm_status st = PDQM_OK;
    for (;;) {
        long len = read_line(in, &buf, &cap, PDQM_IMPORT_MAX_LINE);
        if (len == -1)
            break;
        line++;
        if (len == -2) {
            st = pdqm_error_set(err, PDQM_ERR_IO, "cannot read the import");
            break;
        }
        if (len == -3) {
            refuse(&im, line, PDQM_ERR_TOO_LARGE, "a line is at most %s", "256 MiB");
            continue;
        }
        if (len == 0)
            continue;
        json_error_t je;
        json_t *j = json_loadb(buf, (size_t)len, JSON_REJECT_DUPLICATES, &je);
        if (!header) {
            json_t *v = json_object_get(j, "version");
            const char *f = json_string_value(json_object_get(j, "format"));
            if (f == NULL || strcmp(f, "pdqmatch-export") != 0 || !json_is_integer(v)) {
                json_decref(j);
                st = pdqm_error_set(err, PDQM_ERR_INVALID, "line 1 is not a pdqmatch export's "
                                    "({\"format\":\"pdqmatch-export\",\"version\":1})");
                break;
            }
            if (json_integer_value(v) != EXPORT_VERSION) {
                st = pdqm_error_set(err, PDQM_ERR_INVALID, "an export of version %lld: this "
                                    "pdqmatch reads version %d",
                                    (long long)json_integer_value(v), EXPORT_VERSION);
                json_decref(j);
                break;
            }
            header = 1;
            json_decref(j);
            continue;
        }
        if (j == NULL || !json_is_object(j)) {
            refuse(&im, line, PDQM_ERR_INVALID, "not a JSON object: %s", j ? "" : je.text);
            json_decref(j);
            continue;
        }
        const char *type = json_string_value(json_object_get(j, "type"));
        if (type && strcmp(type, "bank") == 0)
            st = import_bank(&im, line, j, err);
        else if (type && strcmp(type, "item") == 0)
            st = import_item(&im, line, buf, j, err);
        else
            refuse(&im, line, PDQM_ERR_INVALID, "'type' is \"bank\" or \"item\"%s", "");
        json_decref(j);
        if (st != PDQM_OK)
            break;
    }
    if (st == PDQM_OK && !header)
        st = pdqm_error_set(err, PDQM_ERR_INVALID, "an empty file: not a pdqmatch export");
    pdqm_status fs = flush(&im, st == PDQM_OK ? err : NULL);
    if (st == PDQM_OK)
        st = fs;
    if (st == PDQM_OK && sink->finish)
        st = sink->finish(sink->arg, err);
    for (size_t i = 0; i < im.n; i++)
        item_free(&im.adds[i]);
    free(im.adds);
    free(im.outcomes);
    free(buf);
    return st;
}
