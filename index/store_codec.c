/*
 * store_codec.c - the bottom layer: how a content record is laid out in
 * bytes (encode, decode, size), and LMDB codes turned into our statuses.
 * Touches no transaction.
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


pdqm_status store_lmdb_error(pdqm_error *err, int rc, const char *what)
{
    if (rc == ENOMEM)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "%s: out of memory", what);
    if (rc == ENOSPC || rc == EDQUOT)
        return pdqm_error_set(err, PDQM_ERR_NO_SPACE, "%s: disk full (%s)", what,
                              mdb_strerror(rc));
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
        return pdqm_error_set(err, PDQM_ERR_STORE, "%s: the store is corrupt (%s)",
                              what, mdb_strerror(rc));
    return pdqm_error_set(err, PDQM_ERR_STORE, "%s: %s", what, mdb_strerror(rc));
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */


/* ------------------------------------------------------------------ */
/* Content records: one flag byte, then varints and the optional parts:
 *   flags (kind in bits 0-1, then sha256 0x4, md5 0x8, timestamps 0x10,
 *   metadata 0x20), bank, n_hashes, added, id_len, id bytes,
 *   [meta_len, metadata], [32-byte SHA-256], [16-byte MD5],
 *   [n_hashes little-endian doubles]
 * A content item's number is the id of its first hash, so that is not
 * stored.  An id that is a plain decimal number (a hash list's line
 * number) is stored as a varint instead of its text (flag 0x40).  A
 * hash-list item takes about 11 bytes.  An id that is the hex of the
 * item's own first hash (a list row without an id; flags 0x40 and 0x80
 * both) is not stored at all: the first record holds it (schema 3).   */

#define REC_SHA256 0x04u
#define REC_MD5 0x08u
#define REC_TIMESTAMPS 0x10u
#define REC_METADATA 0x20u
#define REC_NUMERIC_ID 0x40u   /* the id is a decimal number, stored as a varint */
#define REC_HEX_ID 0x80u       /* the id is 64 lower-case hex digits (a hash, the
                                  id of a list row without one), stored as 32
                                  bytes (schema 2) */
#define REC_HASH_ID (REC_NUMERIC_ID | REC_HEX_ID)   /* the id is the first
                                  hash in hex, stored nowhere (schema 3) */
/* Schema 4: kind 3 in the flag byte says a second byte follows: the kind
 * in its bits 0-1, then which of these parts the record has, after the
 * metadata: disabled_until (a zigzag varint), a note (varint length and
 * bytes). */
#define REC_EXTENDED 3u
#define EXT_DISABLE 0x04u
#define EXT_NOTE 0x08u

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}




/* The value of a content id written as a plain decimal number (no sign,
 * no leading zero, under 10^18), or -1. */
static int64_t numeric_id(const char *id, size_t len)
{
    if (len == 0 || len > 18 || (len > 1 && id[0] == '0'))
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (id[i] < '0' || id[i] > '9')
            return -1;
        v = v * 10 + (id[i] - '0');
    }
    return v;
}

/* Lower-case hex digit values + 1; 0 for every other byte. */
static const uint8_t lower_hex[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7,
    ['7'] = 8, ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13,
    ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* Whether a content id is 64 lower-case hex digits.  Without branches on
 * the characters: hash-named ids are random digits and letters, which a
 * branch per character mispredicts half the time. */
static int hex_id(const char *id, size_t len)
{
    if (len != 64)
        return 0;
    unsigned ok = 1;
    for (size_t i = 0; i < 64; i++)
        ok &= lower_hex[(uint8_t)id[i]] != 0;
    return (int)ok;
}

static uint8_t nibble(char c)
{
    return (uint8_t)(lower_hex[(uint8_t)c] - 1);
}

/* Whether c's id is the hex of its first hash. */
static int names_its_hash(const content_view *c)
{
    if (c->first_hash == NULL || c->head.id_len != PDQM_HASH_HEX_LEN)
        return 0;
    /* Digit by digit against the hash's nibbles, high first (as
     * pdqm_hash256_to_hex writes them), without a branch a digit. */
    unsigned diff = 0;
    for (int k = 0; k < 4; k++) {
        uint64_t w = c->first_hash->w[3 - k];
        for (int i = 15; i >= 0; i--) {
            unsigned v = lower_hex[(uint8_t)c->content_id[16 * k + i]];   /* digit + 1 */
            diff |= v ^ (unsigned)((w & 0xf) + 1);
            w >>= 4;
        }
    }
    return diff == 0;
}

size_t store_content_bound(const content_view *c)
{
    const content_head *h = &c->head;
    /* flags, four varints of at most 10 bytes, the id as text with its
     * length: no encoding of the id is longer. */
    size_t n = 1 + 4 * 10 + h->id_len;
    if (c->metadata)
        n += 10 + h->meta_len;
    n += 1 + 10 + (c->note ? 10 + h->note_len : 0);
    if (c->sha256)
        n += 32;
    if (c->md5)
        n += 16;
    if (c->timestamps)
        n += (size_t)h->n_hashes * 8;
    return n;
}

size_t store_content_encode(uint8_t *buf, const content_view *c)
{
    const content_head *h = &c->head;
    int64_t num = numeric_id(c->content_id, h->id_len);
    int named = num < 0 && names_its_hash(c);
    int hex = num < 0 && !named && hex_id(c->content_id, h->id_len);
    uint8_t *p = buf;
    unsigned ext = (h->disabled_until != 0 ? EXT_DISABLE : 0) | (c->note ? EXT_NOTE : 0);
    *p++ = (uint8_t)((ext ? REC_EXTENDED : h->kind & 3) | (c->sha256 ? REC_SHA256 : 0) |
                     (c->md5 ? REC_MD5 : 0) | (c->timestamps ? REC_TIMESTAMPS : 0) |
                     (c->metadata ? REC_METADATA : 0) |
                     (named ? REC_HASH_ID : num >= 0 ? REC_NUMERIC_ID : 0) |
                     (hex ? REC_HEX_ID : 0));
    if (ext)
        *p++ = (uint8_t)((h->kind & 3) | ext);
    p = varint_put(p, h->bank);
    p = varint_put(p, h->n_hashes);
    p = varint_put(p, (uint64_t)h->added);
    if (named) {
        /* nothing: the first record holds the id */
    } else if (num >= 0) {
        p = varint_put(p, (uint64_t)num);
    } else if (hex) {
        for (size_t i = 0; i < 32; i++)
            *p++ = (uint8_t)(nibble(c->content_id[2 * i]) << 4 | nibble(c->content_id[2 * i + 1]));
    } else {
        p = varint_put(p, h->id_len);
        memcpy(p, c->content_id, h->id_len);
        p += h->id_len;
    }
    if (c->metadata) {
        p = varint_put(p, h->meta_len);
        memcpy(p, c->metadata, h->meta_len);
        p += h->meta_len;
    }
    if (ext & EXT_DISABLE)
        p = varint_put(p, zigzag(h->disabled_until));
    if (ext & EXT_NOTE) {
        p = varint_put(p, h->note_len);
        memcpy(p, c->note, h->note_len);
        p += h->note_len;
    }
    if (c->sha256) {
        memcpy(p, c->sha256, 32);
        p += 32;
    }
    if (c->md5) {
        memcpy(p, c->md5, 16);
        p += 16;
    }
    if (c->timestamps) {
        memcpy(p, c->timestamps, (size_t)h->n_hashes * 8);
        p += (size_t)h->n_hashes * 8;
    }
    return (size_t)(p - buf);
}

void store_content_name_by_hash(content_view *out, const uint64_t hash[4])
{
    pdqm_hash256 h;
    memcpy(h.w, hash, sizeof h.w);
    pdqm_hash256_to_hex(&h, out->idbuf);
    out->content_id = out->idbuf;
    out->id_from_hash = 0;
}

int store_content_decode(uint32_t number, const MDB_val *v, content_view *out)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    memset(out, 0, sizeof *out);
    if (p == end)
        return -1;
    uint8_t flags = *p++, ext = 0, kind = flags & 3u;
    if (kind == REC_EXTENDED) {
        if (p == end)
            return -1;
        ext = *p++;
        kind = ext & 3u;
        if (kind == REC_EXTENDED || (ext & ~(3u | EXT_DISABLE | EXT_NOTE)))
            return -1;
    }
    uint64_t bank, n, added, id_len = 0, meta_len = 0;
    if (varint_get(&p, end, &bank) || varint_get(&p, end, &n) ||
        varint_get(&p, end, &added) ||
        (!(flags & REC_HEX_ID) && varint_get(&p, end, &id_len)))
        return -1;
    int named = (flags & REC_HASH_ID) == REC_HASH_ID;
    if (bank > UINT32_MAX || n > UINT32_MAX)
        return -1;
    content_head *h = &out->head;
    h->bank = (uint32_t)bank;
    h->first_entry = number;
    h->n_hashes = (uint32_t)n;
    h->kind = kind;
    h->added = (int64_t)added;
    if (named) {
        h->id_len = PDQM_HASH_HEX_LEN;
        out->id_from_hash = 1;   /* content_id stays NULL until rendered */
    } else if (flags & REC_HEX_ID) {
        static const char digits[] = "0123456789abcdef";
        if (end - p < 32)
            return -1;
        for (size_t i = 0; i < 32; i++) {
            out->idbuf[2 * i] = digits[p[i] >> 4];
            out->idbuf[2 * i + 1] = digits[p[i] & 15];
        }
        out->idbuf[64] = '\0';
        h->id_len = 64;
        out->content_id = out->idbuf;
        p += 32;
    } else if (flags & REC_NUMERIC_ID) {
        /* In place of a length, the number itself. */
        if (id_len >= 1000000000000000000ull)
            return -1;
        int len = snprintf(out->idbuf, sizeof out->idbuf, "%llu", (unsigned long long)id_len);
        h->id_len = (uint32_t)len;
        out->content_id = out->idbuf;
    } else {
        if (id_len > (uint64_t)(end - p))
            return -1;
        h->id_len = (uint32_t)id_len;
        out->content_id = (const char *)p;
        p += id_len;
    }
    if (flags & REC_METADATA) {
        if (varint_get(&p, end, &meta_len) || meta_len > (uint64_t)(end - p))
            return -1;
        h->meta_len = (uint32_t)meta_len;
        h->flags |= CONTENT_HAS_METADATA;
        out->metadata = (const char *)p;
        p += meta_len;
    }
    if (ext & EXT_DISABLE) {
        uint64_t z;
        if (varint_get(&p, end, &z))
            return -1;
        h->disabled_until = unzigzag(z);
        h->flags |= CONTENT_HAS_DISABLE;
    }
    if (ext & EXT_NOTE) {
        uint64_t note_len;
        if (varint_get(&p, end, &note_len) || note_len > (uint64_t)(end - p) ||
            note_len > 4 * PDQM_NOTE_MAX)
            return -1;
        h->note_len = (uint32_t)note_len;
        h->flags |= CONTENT_HAS_NOTE;
        out->note = (const char *)p;
        p += note_len;
    }
    if (flags & REC_SHA256) {
        if (end - p < 32)
            return -1;
        out->sha256 = p;
        h->flags |= CONTENT_HAS_SHA256;
        p += 32;
    }
    if (flags & REC_MD5) {
        if (end - p < 16)
            return -1;
        out->md5 = p;
        h->flags |= CONTENT_HAS_MD5;
        p += 16;
    }
    if (flags & REC_TIMESTAMPS) {
        if ((uint64_t)(end - p) != n * 8)
            return -1;
        out->timestamps = p;
        h->flags |= CONTENT_HAS_TIMESTAMPS;
        p += n * 8;
    }
    return p == end ? 0 : -1;
}
