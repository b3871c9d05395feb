/*
 * logcodec.c - the encoding of a log entry (cluster.h has the format).
 *
 * The decoder reads an entry twice: the first walk checks every length
 * against the bytes left and counts what the entry holds, the second
 * fills one allocation of exactly that size.  So what a hostile entry
 * makes us allocate is bounded by its length, and a malformed one
 * allocates nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include "cluster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../hashing/hash256.h"

static const uint8_t MAGIC[4] = { 'P', 'D', 'Q', 'L' };

enum {
    ITEM_META = 1, ITEM_SHA256 = 2, ITEM_MD5 = 4, ITEM_TIMES = 8, ITEM_HASH_ID = 16,
    ITEM_FLAGS_1 = 31,
    /* version 2 */
    ITEM_BY_NUMBER = 32, ITEM_NOTE = 64, ITEM_DISABLED = 128, ITEM_FLAGS_2 = 255
};

/* Version 3: an op's type byte carries its guard flag. */
#define OP_GUARD 0x80u
#define OP_TYPE_MASK 0x7fu

/* Version 2's BANK_UPDATE and CONTENT_CHANGE fields. */
enum { BANK_RATIO = 1, BANK_RENAME = 2, BANK_FLAGS = 3 };
enum { CHANGE_DISABLED = 1, CHANGE_NOTE = 2, CHANGE_FLAGS = 3 };

/* ------------------------------------------------------------------ */
/* Sizes                                                                */

static int is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

/* Whether the item's id is its first hash in hex (lower case), which the
 * entry then leaves out. */
static int id_is_hash(const pdqm_add *a)
{
    if (a->content_id == NULL || a->n_hashes == 0 || a->hashes == NULL ||
        strlen(a->content_id) != PDQM_HASH_HEX_LEN)
        return 0;
    char hex[PDQM_HASH_HEX_LEN + 1];
    pdqm_hash256_to_hex(&a->hashes[0].hash, hex);
    return memcmp(hex, a->content_id, PDQM_HASH_HEX_LEN) == 0;
}

static int has_times(const pdqm_add *a)
{
    for (size_t i = 0; i < a->n_hashes; i++)
        if (a->hashes[i].timestamp != 0)
            return 1;
    return 0;
}

/* Whether an item needs version 2: named by its number, a note, disabled,
 * no hash. */
static int add_is_v2(const pdqm_add *a)
{
    return a->content_id == NULL || (a->note && a->note[0]) || a->disabled_until != 0 ||
           a->n_hashes == 0;
}

/* Whether an op needs version 3: an exchange op, a PUT, a guard. */
static int op_is_v3(const pdqm_op *op)
{
    return op->guard || op->type == PDQM_OP_EXCHANGE_SET || op->type == PDQM_OP_EXCHANGE_DELETE ||
           op->type == PDQM_OP_PUT;
}

static unsigned op_version(const pdqm_op *op);

static int op_is_v2(const pdqm_op *op)
{
    switch (op->type) {
    case PDQM_OP_BANK_CREATE:
        return op->set_ratio;
    case PDQM_OP_BANK_UPDATE:
        return op->set_ratio || op->rename;
    case PDQM_OP_CONTENT_CHANGE:
    case PDQM_OP_DELETE_NUMBER:
        return 1;
    case PDQM_OP_ADD:
        for (size_t i = 0; i < op->n_adds; i++)
            if (add_is_v2(&op->adds[i]))
                return 1;
        return 0;
    default:
        return 0;
    }
}

static unsigned op_version(const pdqm_op *op)
{
    return op_is_v3(op) ? 3 : op_is_v2(op) ? 2 : 1;
}

static size_t text_bytes(const char *t, size_t width)
{
    return t ? width + strlen(t) : width;
}

size_t pdqm_log_add_bytes(const pdqm_add *a)
{
    if (a->bank == NULL || strlen(a->bank) > 255 ||
        (a->content_id && strlen(a->content_id) > 65535) ||
        (a->metadata && strlen(a->metadata) > UINT32_MAX) ||
        (a->note && strlen(a->note) > 65535) ||
        (a->sha256 && !is_hex(a->sha256, 64)) || (a->md5 && !is_hex(a->md5, 32)) ||
        a->n_hashes > UINT32_MAX || (a->n_hashes && a->hashes == NULL))
        return 0;
    size_t n = 1 + 1 + strlen(a->bank);
    if (a->content_id && !id_is_hash(a))
        n += 2 + strlen(a->content_id);
    if (a->metadata)
        n += 4 + strlen(a->metadata);
    if (a->note && a->note[0])
        n += 2 + strlen(a->note);
    if (a->disabled_until)
        n += 8;
    n += (a->sha256 ? 32 : 0) + (a->md5 ? 16 : 0) + 1 + 8 + 4;
    n += a->n_hashes * (size_t)(has_times(a) ? 41 : 33);
    return n;
}

/* The op's bytes in an entry of that version; 0 when it cannot be
 * written there. */
static size_t op_bytes(const pdqm_op *op, unsigned version)
{
    if (op_version(op) > version)
        return 0;
    if (op->type == PDQM_OP_EXCHANGE_SET || op->type == PDQM_OP_EXCHANGE_DELETE) {
        /* The exchange's name where other ops have their bank. */
        if (op->exchange == NULL || strlen(op->exchange) > 255)
            return 0;
        size_t n = 1 + 1 + strlen(op->exchange);
        if (op->type == PDQM_OP_EXCHANGE_DELETE)
            return n;
        unsigned f = op->xflags;
        if (f > 255 || (op->holder && strlen(op->holder) > 255) ||
            (op->takeover && strlen(op->takeover) > 255) ||
            (op->config && strlen(op->config) > UINT32_MAX) ||
            (op->checkpoint && strlen(op->checkpoint) > UINT32_MAX) ||
            (op->status && strlen(op->status) > UINT32_MAX))
            return 0;
        if (((f & PDQM_XSET_CONFIG) && !op->config) || ((f & PDQM_XSET_STATUS) && !op->status) ||
            ((f & PDQM_XSET_LEASE) && !op->holder))
            return 0;
        n += 1 + 8;
        if (f & PDQM_XSET_CONFIG)
            n += text_bytes(op->config, 4);
        if (f & PDQM_XSET_CHECKPOINT)
            n += 1 + text_bytes(op->checkpoint, 4);
        if (f & PDQM_XSET_STATUS)
            n += text_bytes(op->status, 4);
        if (f & PDQM_XSET_LEASE)
            n += text_bytes(op->holder, 1) + 8 + 1 + (op->takeover ? text_bytes(op->takeover, 1) : 0);
        return n;
    }
    int adds = op->type == PDQM_OP_ADD || op->type == PDQM_OP_PUT;
    size_t bank = op->bank ? strlen(op->bank) : 0;
    if (!adds && bank > 255)
        return 0;
    /* Only CONTENT_CHANGE and DELETE_NUMBER may name no bank. */
    if (!adds && op->type != PDQM_OP_CONTENT_CHANGE &&
        op->type != PDQM_OP_DELETE_NUMBER && op->bank == NULL)
        return 0;
    switch (op->type) {
    case PDQM_OP_EXCHANGE_SET:
    case PDQM_OP_EXCHANGE_DELETE:
        return 0;   /* (above) */
    case PDQM_OP_BANK_CREATE:
        return 1 + 1 + bank + 2 + 1 + 8 + (version >= 2 ? 1 + (op->set_ratio ? 8 : 0) : 0);
    case PDQM_OP_BANK_UPDATE:
        if (version < 2)
            return 1 + 1 + bank + 2 + 1;
        if (op->rename && strlen(op->rename) > 255)
            return 0;
        return 1 + 1 + bank + 2 + 1 + 1 + (op->set_ratio ? 8 : 0) +
               (op->rename ? 1 + strlen(op->rename) : 0);
    case PDQM_OP_CONTENT_CHANGE: {
        const pdqm_content_changes *c = &op->changes;
        size_t note = c->set_note && c->note ? strlen(c->note) : 0;
        if (note > 65535)
            return 0;
        return 1 + 1 + bank + 4 + 1 + (c->set_disabled ? 8 : 0) + (c->set_note ? 2 + note : 0);
    }
    case PDQM_OP_DELETE_NUMBER:
        return 1 + 1 + bank + 4;
    case PDQM_OP_BANK_DELETE:
        return 1 + 1 + bank;
    case PDQM_OP_DELETE:
        if (op->content_id == NULL || strlen(op->content_id) > 65535)
            return 0;
        return 1 + 1 + bank + 2 + strlen(op->content_id);
    case PDQM_OP_ADD:
    case PDQM_OP_PUT: {
        if (op->n_adds > UINT32_MAX || (op->n_adds && op->adds == NULL))
            return 0;
        size_t n = PDQM_LOG_ADD_BYTES;
        for (size_t i = 0; i < op->n_adds; i++) {
            size_t b = pdqm_log_add_bytes(&op->adds[i]);
            if (b == 0)
                return 0;
            n += b;
        }
        return n;
    }
    }
    return 0;
}

size_t pdqm_log_op_bytes(const pdqm_op *op)
{
    return op_bytes(op, op_version(op));
}

/* ------------------------------------------------------------------ */
/* Encoding                                                             */

typedef struct writer {
    uint8_t *p;
} writer;

static void put(writer *w, const void *src, size_t n)
{
    memcpy(w->p, src, n);
    w->p += n;
}

static void put_u8(writer *w, unsigned v)
{
    *w->p++ = (uint8_t)v;
}

static void put_u16(writer *w, unsigned v)
{
    put_u8(w, v & 0xff);
    put_u8(w, (v >> 8) & 0xff);
}

static void put_u32(writer *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        put_u8(w, (v >> (8 * i)) & 0xff);
}

static void put_u64(writer *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        put_u8(w, (unsigned)(v >> (8 * i)) & 0xff);
}

static void put_str8(writer *w, const char *s)
{
    size_t n = strlen(s);
    put_u8(w, (unsigned)n);
    put(w, s, n);
}

static void put_str16(writer *w, const char *s)
{
    size_t n = strlen(s);
    put_u16(w, (unsigned)n);
    put(w, s, n);
}

static void put_text32(writer *w, const char *s)
{
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}

static int nibble(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void put_hex(writer *w, const char *hex, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++)
        put_u8(w, (unsigned)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1])));
}

static void put_add(writer *w, const pdqm_add *a)
{
    int hash_id = id_is_hash(a), times = has_times(a), note = a->note && a->note[0];
    put_u8(w, (a->metadata ? ITEM_META : 0) | (a->sha256 ? ITEM_SHA256 : 0) |
                  (a->md5 ? ITEM_MD5 : 0) | (times ? ITEM_TIMES : 0) |
                  (hash_id ? ITEM_HASH_ID : 0) | (a->content_id ? 0 : ITEM_BY_NUMBER) |
                  (note ? ITEM_NOTE : 0) | (a->disabled_until ? ITEM_DISABLED : 0));
    put_str8(w, a->bank);
    if (a->content_id && !hash_id)
        put_str16(w, a->content_id);
    if (a->metadata) {
        size_t n = strlen(a->metadata);
        put_u32(w, (uint32_t)n);
        put(w, a->metadata, n);
    }
    if (note)
        put_str16(w, a->note);
    if (a->disabled_until)
        put_u64(w, (uint64_t)a->disabled_until);
    if (a->sha256)
        put_hex(w, a->sha256, 32);
    if (a->md5)
        put_hex(w, a->md5, 16);
    put_u8(w, (unsigned)a->kind);
    put_u64(w, (uint64_t)a->added);
    put_u32(w, (uint32_t)a->n_hashes);
    for (size_t i = 0; i < a->n_hashes; i++) {
        const pdqm_stored_hash *h = &a->hashes[i];
        for (int k = 0; k < 4; k++)
            put_u64(w, h->hash.w[k]);
        put_u8(w, (unsigned)(h->quality < 0 ? 0 : h->quality > 255 ? 255 : h->quality));
        if (times) {
            uint64_t bits;
            memcpy(&bits, &h->timestamp, 8);
            put_u64(w, bits);
        }
    }
}

pdqm_status pdqm_log_encode(const pdqm_op *ops, size_t n, uint8_t **out, size_t *len,
                            pdqm_error *err)
{
    if (n > PDQM_LOG_MAX_OPS)
        return pdqm_error_set(err, PDQM_ERR_INVALID, "an entry holds at most %d ops",
                              PDQM_LOG_MAX_OPS);
    /* Version 1 unless an op needs 2: nodes of an older pdqmatch read
     * what it can hold. */
    unsigned version = 1;
    for (size_t i = 0; i < n; i++)
        if (op_version(&ops[i]) > version)
            version = op_version(&ops[i]);
    size_t total = PDQM_LOG_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        size_t b = op_bytes(&ops[i], version);
        if (b == 0)
            return pdqm_error_set(err, PDQM_ERR_INVALID,
                                  "op %zu cannot be written in an entry (a missing or "
                                  "over-long string, a digest that is not hex, or an "
                                  "unknown type)", i + 1);
        total += b;
    }
    uint8_t *buf = malloc(total);
    if (buf == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a log entry");
    writer w = { buf };
    put(&w, MAGIC, 4);
    put_u8(&w, version);
    put_u8(&w, 0);
    put_u16(&w, (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        const pdqm_op *op = &ops[i];
        put_u8(&w, (unsigned)op->type | (op->guard ? OP_GUARD : 0));
        if (op->type == PDQM_OP_EXCHANGE_SET || op->type == PDQM_OP_EXCHANGE_DELETE)
            put_str8(&w, op->exchange);
        else if (op->type != PDQM_OP_ADD && op->type != PDQM_OP_PUT)
            put_str8(&w, op->bank ? op->bank : "");
        switch (op->type) {
        case PDQM_OP_EXCHANGE_DELETE:
            break;
        case PDQM_OP_EXCHANGE_SET: {
            unsigned f = op->xflags;
            put_u8(&w, f);
            put_u64(&w, (uint64_t)op->time);
            if (f & PDQM_XSET_CONFIG)
                put_text32(&w, op->config);
            if (f & PDQM_XSET_CHECKPOINT) {
                put_u8(&w, op->checkpoint ? 1 : 0);
                put_text32(&w, op->checkpoint ? op->checkpoint : "");
            }
            if (f & PDQM_XSET_STATUS)
                put_text32(&w, op->status);
            if (f & PDQM_XSET_LEASE) {
                put_str8(&w, op->holder);
                put_u64(&w, (uint64_t)op->lease_until);
                put_u8(&w, op->takeover ? 1 : 0);
                if (op->takeover)
                    put_str8(&w, op->takeover);
            }
            break;
        }
        case PDQM_OP_BANK_CREATE:
            put_u16(&w, (unsigned)op->threshold & 0xffff);
            put_u8(&w, (unsigned)op->bank_kind & 0xff);
            put_u64(&w, (uint64_t)op->time);
            if (version >= 2) {
                put_u8(&w, op->set_ratio ? BANK_RATIO : 0);
                if (op->set_ratio) {
                    uint64_t bits;
                    memcpy(&bits, &op->enabled_ratio, 8);
                    put_u64(&w, bits);
                }
            }
            break;
        case PDQM_OP_BANK_UPDATE:
            put_u16(&w, (unsigned)op->threshold & 0xffff);
            put_u8(&w, (unsigned)op->bank_kind & 0xff);
            if (version >= 2) {
                put_u8(&w, (op->set_ratio ? BANK_RATIO : 0) | (op->rename ? BANK_RENAME : 0));
                if (op->set_ratio) {
                    uint64_t bits;
                    memcpy(&bits, &op->enabled_ratio, 8);
                    put_u64(&w, bits);
                }
                if (op->rename)
                    put_str8(&w, op->rename);
            }
            break;
        case PDQM_OP_CONTENT_CHANGE: {
            const pdqm_content_changes *c = &op->changes;
            put_u32(&w, op->number);
            put_u8(&w, (c->set_disabled ? CHANGE_DISABLED : 0) | (c->set_note ? CHANGE_NOTE : 0));
            if (c->set_disabled)
                put_u64(&w, (uint64_t)c->disabled_until);
            if (c->set_note)
                put_str16(&w, c->note ? c->note : "");
            break;
        }
        case PDQM_OP_DELETE_NUMBER:
            put_u32(&w, op->number);
            break;
        case PDQM_OP_BANK_DELETE:
            break;
        case PDQM_OP_DELETE:
            put_str16(&w, op->content_id);
            break;
        case PDQM_OP_ADD:
        case PDQM_OP_PUT:
            put_u8(&w, op->deferred ? 1 : 0);
            put_u32(&w, (uint32_t)op->n_adds);
            for (size_t k = 0; k < op->n_adds; k++)
                put_add(&w, &op->adds[k]);
            break;
        }
    }
    if ((size_t)(w.p - buf) != total) {   /* pdqm_log_op_bytes and the writer disagree */
        free(buf);
        return pdqm_error_set(err, PDQM_ERR_INTERNAL, "a log entry came out %zu bytes, not %zu",
                              (size_t)(w.p - buf), total);
    }
    *out = buf;
    *len = total;
    return PDQM_OK;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                             */

/* Where the second walk puts what it makes; NULL in the first walk. */
typedef struct sink {
    pdqm_op *ops;
    pdqm_add *adds;
    pdqm_stored_hash *hashes;
    char *strings;
} sink;

typedef struct reader {
    const uint8_t *p, *end, *start;
    pdqm_error *err;
    int failed;
    unsigned version;
    size_t n_ops, n_adds, n_hashes, str_bytes;   /* counted by the walk */
    sink *out;
} reader;

static int fail(reader *r, const char *why)
{
    if (!r->failed)
        pdqm_error_set(r->err, PDQM_ERR_INVALID, "log entry, byte %zu: %s",
                       (size_t)(r->p - r->start), why);
    r->failed = 1;
    return 0;
}

static int need(reader *r, size_t n, const char *what)
{
    if (r->failed)
        return 0;
    if ((size_t)(r->end - r->p) < n)
        return fail(r, what);
    return 1;
}

static uint64_t get_n(reader *r, int bytes, const char *what)
{
    if (!need(r, (size_t)bytes, what))
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}

/* A string of a `bytes`-wide length: copied (NUL-terminated) in the second
 * walk, counted in the first; NULL on failure or in the first walk. */
static const char *get_str(reader *r, int bytes, const char *what)
{
    size_t n = (size_t)get_n(r, bytes, what);
    if (!need(r, n, what))
        return NULL;
    if (memchr(r->p, '\0', n)) {
        fail(r, "a string holds a NUL byte");
        return NULL;
    }
    char *s = NULL;
    if (r->out) {
        s = r->out->strings;
        memcpy(s, r->p, n);
        s[n] = '\0';
        r->out->strings += n + 1;
    }
    r->str_bytes += n + 1;
    r->p += n;
    return s;
}

/* bytes raw bytes as lower-case hex (a digest). */
static const char *get_hex(reader *r, size_t bytes, const char *what)
{
    if (!need(r, bytes, what))
        return NULL;
    char *s = NULL;
    if (r->out) {
        static const char digits[] = "0123456789abcdef";
        s = r->out->strings;
        for (size_t i = 0; i < bytes; i++) {
            s[2 * i] = digits[r->p[i] >> 4];
            s[2 * i + 1] = digits[r->p[i] & 15];
        }
        s[2 * bytes] = '\0';
        r->out->strings += 2 * bytes + 1;
    }
    r->str_bytes += 2 * bytes + 1;
    r->p += bytes;
    return s;
}

static void read_add(reader *r, pdqm_add *a)
{
    unsigned flags = (unsigned)get_n(r, 1, "an item's flags");
    if (flags & ~(unsigned)(r->version >= 2 ? ITEM_FLAGS_2 : ITEM_FLAGS_1)) {
        fail(r, "an item has unknown flags");
        return;
    }
    if ((flags & ITEM_HASH_ID) && (flags & ITEM_BY_NUMBER)) {
        fail(r, "an item is named both by its hash and by its number");
        return;
    }
    a->bank = get_str(r, 1, "an item's bank");
    if (!(flags & (ITEM_HASH_ID | ITEM_BY_NUMBER)))
        a->content_id = get_str(r, 2, "an item's content id");
    a->metadata = flags & ITEM_META ? get_str(r, 4, "an item's metadata") : NULL;
    a->note = flags & ITEM_NOTE ? get_str(r, 2, "an item's note") : NULL;
    a->disabled_until = flags & ITEM_DISABLED ? (int64_t)get_n(r, 8, "an item's disabled time")
                                              : 0;
    a->sha256 = flags & ITEM_SHA256 ? get_hex(r, 32, "an item's SHA-256") : NULL;
    a->md5 = flags & ITEM_MD5 ? get_hex(r, 16, "an item's MD5") : NULL;
    a->kind = (pdqm_content_kind)get_n(r, 1, "an item's kind");
    a->added = (int64_t)get_n(r, 8, "an item's time");
    uint64_t nh = get_n(r, 4, "an item's hash count");
    size_t each = flags & ITEM_TIMES ? 41 : 33;
    if (r->failed)
        return;
    if (nh == 0 && !(r->version >= 2 && (flags & ITEM_MD5) && !(flags & ITEM_HASH_ID)))
        fail(r, "an item has no hashes");
    else if (nh > (size_t)(r->end - r->p) / each)
        fail(r, "an item has more hashes than the entry has bytes");
    if (r->failed)
        return;
    pdqm_stored_hash *h = r->out ? r->out->hashes : NULL;
    for (uint64_t i = 0; i < nh; i++) {
        pdqm_stored_hash one = { { { 0, 0, 0, 0 } }, 0, 0 };
        for (int k = 0; k < 4; k++)
            one.hash.w[k] = get_n(r, 8, "a hash");
        one.quality = (int)get_n(r, 1, "a hash's quality");
        if (flags & ITEM_TIMES) {
            uint64_t bits = get_n(r, 8, "a hash's timestamp");
            memcpy(&one.timestamp, &bits, 8);
            if (!isfinite(one.timestamp)) {
                fail(r, "a timestamp is not a finite number");
                return;
            }
        }
        if (h)
            h[i] = one;
    }
    if (h) {
        a->hashes = h;
        r->out->hashes += nh;
    }
    a->n_hashes = (size_t)nh;
    r->n_hashes += (size_t)nh;
    if (flags & ITEM_HASH_ID) {
        /* The id is the first hash in hex. */
        if (r->out) {
            char *s = r->out->strings;
            pdqm_hash256_to_hex(&a->hashes[0].hash, s);
            a->content_id = s;
            r->out->strings += PDQM_HASH_HEX_LEN + 1;
        }
        r->str_bytes += PDQM_HASH_HEX_LEN + 1;
    }
}

static void read_op(reader *r, pdqm_op *op)
{
    unsigned type = (unsigned)get_n(r, 1, "an op's type");
    if (r->failed)
        return;
    if (r->version >= 3) {
        op->guard = (type & OP_GUARD) != 0;
        type &= OP_TYPE_MASK;
    }
    unsigned last = r->version >= 3 ? PDQM_OP_LAST
                  : r->version >= 2 ? PDQM_OP_DELETE_NUMBER : PDQM_OP_DELETE;
    if (type < PDQM_OP_BANK_CREATE || type > last) {
        fail(r, "an op of unknown type");
        return;
    }
    op->type = (pdqm_op_type)type;
    op->threshold = -1;
    op->bank_kind = -1;
    if (type == PDQM_OP_EXCHANGE_SET || type == PDQM_OP_EXCHANGE_DELETE) {
        op->exchange = get_str(r, 1, "an exchange's name");
    } else if (type != PDQM_OP_ADD && type != PDQM_OP_PUT) {
        op->bank = get_str(r, 1, "an op's bank");
        /* Only these two may name no bank (an empty name). */
        if (op->bank && op->bank[0] == '\0' &&
            (type == PDQM_OP_CONTENT_CHANGE || type == PDQM_OP_DELETE_NUMBER))
            op->bank = NULL;
    }
    switch (op->type) {
    case PDQM_OP_EXCHANGE_DELETE:
        break;
    case PDQM_OP_EXCHANGE_SET: {
        unsigned f = (unsigned)get_n(r, 1, "an exchange op's flags");
        op->xflags = f;
        op->time = (int64_t)get_n(r, 8, "an exchange op's time");
        if (f & ~(unsigned)(PDQM_XSET_CREATE | PDQM_XSET_CONFIG | PDQM_XSET_CHECKPOINT |
                            PDQM_XSET_STATUS | PDQM_XSET_LEASE)) {
            fail(r, "an exchange op has unknown flags");
            return;
        }
        if (f & PDQM_XSET_CONFIG)
            op->config = get_str(r, 4, "an exchange's config");
        if (f & PDQM_XSET_CHECKPOINT) {
            unsigned present = (unsigned)get_n(r, 1, "a checkpoint's flag");
            const char *cp = get_str(r, 4, "an exchange's checkpoint");
            if (present > 1) {
                fail(r, "a checkpoint's flag is not 0 or 1");
                return;
            }
            op->checkpoint = present ? cp : NULL;
        }
        if (f & PDQM_XSET_STATUS)
            op->status = get_str(r, 4, "an exchange's status");
        if (f & PDQM_XSET_LEASE) {
            op->holder = get_str(r, 1, "a lease's holder");
            op->lease_until = (int64_t)get_n(r, 8, "a lease's end");
            unsigned has = (unsigned)get_n(r, 1, "a lease's takeover flag");
            if (has > 1) {
                fail(r, "a lease's takeover flag is not 0 or 1");
                return;
            }
            if (has)
                op->takeover = get_str(r, 1, "a lease's takeover");
        }
        break;
    }
    case PDQM_OP_BANK_CREATE:
        op->threshold = (int)get_n(r, 2, "a bank's threshold");
        op->bank_kind = (int)get_n(r, 1, "a bank's kind");
        op->time = (int64_t)get_n(r, 8, "a bank's time");
        if (r->version >= 2) {
            unsigned f = (unsigned)get_n(r, 1, "a bank create's flags");
            if (f & ~(unsigned)BANK_RATIO) {
                fail(r, "a bank create has unknown flags");
                return;
            }
            if (f & BANK_RATIO) {
                uint64_t bits = get_n(r, 8, "a bank's enabled ratio");
                op->set_ratio = 1;
                memcpy(&op->enabled_ratio, &bits, 8);
                if (!(op->enabled_ratio >= 0 && op->enabled_ratio <= 1)) {
                    fail(r, "an enabled ratio outside 0..1");
                    return;
                }
            }
        }
        break;
    case PDQM_OP_BANK_UPDATE:
        op->threshold = (int)(int16_t)get_n(r, 2, "a bank's threshold");
        op->bank_kind = (int)(int8_t)get_n(r, 1, "a bank's kind");
        if (r->version >= 2) {
            unsigned f = (unsigned)get_n(r, 1, "a bank update's flags");
            if (f & ~(unsigned)BANK_FLAGS) {
                fail(r, "a bank update has unknown flags");
                return;
            }
            if (f & BANK_RATIO) {
                uint64_t bits = get_n(r, 8, "a bank's enabled ratio");
                op->set_ratio = 1;
                memcpy(&op->enabled_ratio, &bits, 8);
                if (!(op->enabled_ratio >= 0 && op->enabled_ratio <= 1)) {
                    fail(r, "an enabled ratio outside 0..1");
                    return;
                }
            }
            if (f & BANK_RENAME)
                op->rename = get_str(r, 1, "a bank's new name");
        }
        break;
    case PDQM_OP_CONTENT_CHANGE: {
        op->number = (uint32_t)get_n(r, 4, "a content number");
        unsigned f = (unsigned)get_n(r, 1, "a content change's flags");
        if (f & ~(unsigned)CHANGE_FLAGS) {
            fail(r, "a content change has unknown flags");
            return;
        }
        if (f & CHANGE_DISABLED) {
            op->changes.set_disabled = 1;
            op->changes.disabled_until = (int64_t)get_n(r, 8, "a disabled time");
        }
        if (f & CHANGE_NOTE) {
            op->changes.set_note = 1;
            op->changes.note = get_str(r, 2, "a note");
        }
        break;
    }
    case PDQM_OP_DELETE_NUMBER:
        op->number = (uint32_t)get_n(r, 4, "a content number");
        break;
    case PDQM_OP_BANK_DELETE:
        break;
    case PDQM_OP_DELETE:
        op->content_id = get_str(r, 2, "a content id");
        break;
    case PDQM_OP_ADD:
    case PDQM_OP_PUT: {
        op->deferred = (int)get_n(r, 1, "an add's deferred flag");
        uint64_t n = get_n(r, 4, "an add's item count");
        if (r->failed)
            return;
        if (op->deferred > 1) {
            fail(r, "an add's deferred flag is not 0 or 1");
            return;
        }
        /* An item takes at least 31 bytes (48 in version 1): a lie is
         * caught before the walk makes anything of it. */
        if (n == 0 || n > (size_t)(r->end - r->p) / (r->version >= 2 ? 31 : 48)) {
            fail(r, n ? "an add has more items than the entry has bytes" : "an add has no items");
            return;
        }
        pdqm_add *adds = r->out ? r->out->adds : NULL;
        for (uint64_t i = 0; i < n && !r->failed; i++) {
            pdqm_add one;
            memset(&one, 0, sizeof one);
            read_add(r, &one);
            if (adds)
                adds[i] = one;
        }
        if (adds) {
            op->adds = adds;
            r->out->adds += n;
        }
        op->n_adds = (size_t)n;
        r->n_adds += (size_t)n;
        break;
    }
    }
}

static void walk(reader *r)
{
    if (!need(r, PDQM_LOG_HEADER_BYTES, "shorter than an entry's header"))
        return;
    if (memcmp(r->p, MAGIC, 4) != 0) {
        fail(r, "not a pdqmatch log entry");
        return;
    }
    r->p += 4;
    unsigned version = (unsigned)get_n(r, 1, "");
    if (version < 1 || version > PDQM_LOG_VERSION) {
        r->failed = 1;
        pdqm_error_set(r->err, version > PDQM_LOG_VERSION ? PDQM_ERR_UNSUPPORTED : PDQM_ERR_INVALID,
                       "log entry of version %u (this pdqmatch reads versions 1 to %d)",
                       version, PDQM_LOG_VERSION);
        return;
    }
    r->version = version;
    if (get_n(r, 1, "") != 0) {
        fail(r, "unknown entry flags");
        return;
    }
    size_t n = (size_t)get_n(r, 2, "");
    if (n > (size_t)(r->end - r->p) / 2) {
        fail(r, "more ops than the entry has bytes");
        return;
    }
    for (size_t i = 0; i < n && !r->failed; i++) {
        pdqm_op op;
        memset(&op, 0, sizeof op);
        read_op(r, &op);
        if (r->out)
            r->out->ops[i] = op;
    }
    r->n_ops = n;
    if (!r->failed && r->p != r->end)
        fail(r, "bytes after the last op");
}

pdqm_status pdqm_log_decode(const uint8_t *data, size_t len, pdqm_log_ops *out,
                            pdqm_error *err)
{
    reader r = { data, data + len, data, err, 0, 0, 0, 0, 0, 0, NULL };
    walk(&r);
    if (r.failed)
        return err ? err->status : PDQM_ERR_INVALID;
    /* One block: the ops, the items, the hashes, then the strings. */
    size_t ops_b = r.n_ops * sizeof(pdqm_op), adds_b = r.n_adds * sizeof(pdqm_add);
    size_t hashes_b = r.n_hashes * sizeof(pdqm_stored_hash);
    char *block = malloc(ops_b + adds_b + hashes_b + r.str_bytes + 1);
    if (block == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for a log entry");
    sink s = { (pdqm_op *)block, (pdqm_add *)(block + ops_b),
               (pdqm_stored_hash *)(block + ops_b + adds_b), block + ops_b + adds_b + hashes_b };
    reader again = { data, data + len, data, err, 0, 0, 0, 0, 0, 0, &s };
    walk(&again);
    out->ops = (pdqm_op *)block;
    out->n_ops = r.n_ops;
    out->storage = block;
    return PDQM_OK;
}

void pdqm_log_ops_free(pdqm_log_ops *ops)
{
    if (ops == NULL)
        return;
    free(ops->storage);
    ops->ops = NULL;
    ops->n_ops = 0;
    ops->storage = NULL;
}
