/*
 * list.c - hash lists into content items (the rules are in ingest.h).
 *
 * Two kinds of rows.  A row without a content id is an item of its own,
 * named by its hash: such rows go out in batches as they come (a hash given
 * twice in a batch is one item).  A row with an id may have siblings
 * anywhere further down, so these rows are held, compactly (strings in one
 * arena), until the list ends.  Either way the rows are grouped into items
 * by a hash table on (bank, id or hash): each item chains its rows in list
 * order, and the items go out in the order their first rows came.  No sort:
 * an import of millions of rows spends its time in the store.
 */
#define _POSIX_C_SOURCE 200809L
#include "ingest.h"

#include <stdlib.h>
#include <string.h>

#include "../hashing/hashlist.h"

#define NONE ((size_t)-1)
#define MAX_ARENA ((size_t)4 << 30)    /* bytes of strings held */

typedef struct row {
    pdqm_stored_hash h;
    size_t bank, id, meta, sha256, md5;   /* arena offsets, or NONE */
    const char *bank_s, *id_s;   /* the same as pointers, set for grouping
                                    once the arena stays put */
    size_t next;             /* the item's next row, or NONE */
    int kind;                /* -1: not given */
} row;

typedef struct rows {
    row *v;
    size_t n, cap;
    char *arena;
    size_t used, cap_arena;
} rows;

typedef struct ingest {
    const pdqm_list_options *o;
    const pdqm_list_sink *sink;
    pdqm_list_counts *counts;
    rows held;               /* rows with ids, until the end */
    rows loose;              /* rows without, a batch at a time */
    pdqm_add *adds;
    pdqm_stored_hash *hashes;
    char (*hex)[PDQM_HASH_HEX_LEN + 1];   /* ids of loose items, by add */
    size_t cap_adds, cap_hashes;
} ingest;

static void rows_free(rows *r)
{
    free(r->v);
    free(r->arena);
    memset(r, 0, sizeof *r);
}

/* Copy s into the arena; its offset, NONE for NULL, or NO_ROOM. */
#define NO_ROOM ((size_t)-2)
static size_t keep(rows *r, const char *s)
{
    if (s == NULL)
        return NONE;
    size_t n = strlen(s) + 1;
    if (r->used + n > r->cap_arena) {
        size_t cap = r->cap_arena ? r->cap_arena : 65536;
        while (cap < r->used + n)
            cap *= 2;
        if (cap > MAX_ARENA)
            return NO_ROOM;
        char *grown = realloc(r->arena, cap);
        if (grown == NULL)
            return NO_ROOM;
        r->arena = grown;
        r->cap_arena = cap;
    }
    memcpy(r->arena + r->used, s, n);
    r->used += n;
    return r->used - n;
}

static const char *text(const rows *r, size_t off)
{
    return off == NONE ? NULL : r->arena + off;
}

static pdqm_status push(rows *r, const pdqm_hashlist_row *in, const char *bank,
                        int with_id, pdqm_error *err)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        row *grown = realloc(r->v, cap * sizeof *grown);
        if (grown == NULL)
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for the list");
        r->v = grown;
        r->cap = cap;
    }
    row *x = &r->v[r->n];
    x->h = (pdqm_stored_hash){ in->hash, in->quality >= 0 ? in->quality : 100, in->timestamp };
    x->kind = in->kind;
    /* Rows of a list mostly share one bank: keep its name once. */
    if (r->n > 0 && r->v[r->n - 1].bank != NONE &&
        strcmp(r->arena + r->v[r->n - 1].bank, bank) == 0)
        x->bank = r->v[r->n - 1].bank;
    else
        x->bank = keep(r, bank);
    x->id = with_id ? keep(r, in->content_id) : NONE;
    x->meta = keep(r, in->metadata);
    x->sha256 = keep(r, in->sha256);
    x->md5 = keep(r, in->md5);
    if (x->bank == NO_ROOM || x->id == NO_ROOM || x->meta == NO_ROOM ||
        x->sha256 == NO_ROOM || x->md5 == NO_ROOM)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                              "the list's rows with content ids hold over %zu bytes of text: "
                              "split the list", MAX_ARENA);
    r->n++;
    return PDQM_OK;
}

/* Whether two rows are of one item: the same bank, and the same id (the
 * same hash for rows without ids). */
static int same_item(const row *a, const row *b)
{
    if (a->bank != b->bank && strcmp(a->bank_s, b->bank_s) != 0)
        return 0;
    if (a->id_s)
        return strcmp(a->id_s, b->id_s) == 0;
    return memcmp(a->h.hash.w, b->h.hash.w, sizeof a->h.hash.w) == 0;
}

/* FNV-1a over the bank and the id; for a row without an id, its hash's
 * own (random) bits stand for the id. */
static uint64_t item_key(const row *x)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = x->bank_s; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    if (x->id_s) {
        for (const char *c = x->id_s; *c; c++)
            h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
        return h;
    }
    return (h ^ x->h.hash.w[0] ^ x->h.hash.w[1] ^ x->h.hash.w[2] ^ x->h.hash.w[3]) *
           0x9e3779b97f4a7c15ull;
}

static int room(ingest *g, size_t adds, size_t hashes)
{
    if (adds > g->cap_adds) {
        pdqm_add *grown = realloc(g->adds, adds * sizeof *grown);
        if (grown == NULL)
            return -1;
        g->adds = grown;
        char (*hex)[PDQM_HASH_HEX_LEN + 1] = realloc(g->hex, adds * sizeof *hex);
        if (hex == NULL)
            return -1;
        g->hex = hex;
        g->cap_adds = adds;
    }
    if (hashes > g->cap_hashes) {
        pdqm_stored_hash *grown = realloc(g->hashes, hashes * sizeof *grown);
        if (grown == NULL)
            return -1;
        g->hashes = grown;
        g->cap_hashes = hashes;
    }
    return 0;
}

/* An item: its first and last rows, and how many it has. */
typedef struct group {
    size_t first, last, n;
} group;

/* Group r's rows into items and hand them to the sink, a batch at a time,
 * the items in the order their first rows stood in the list; then forget
 * the rows. */
static pdqm_status emit(ingest *g, rows *r, pdqm_error *err)
{
    if (r->n == 0)
        return PDQM_OK;
    size_t slots = 16;
    while (slots < 2 * r->n)
        slots *= 2;
    uint32_t *table = malloc(slots * sizeof *table);   /* group index + 1, 0 empty */
    group *groups = malloc(r->n * sizeof *groups);
    if (table == NULL || groups == NULL) {
        free(table);
        free(groups);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for the list");
    }
    memset(table, 0, slots * sizeof *table);
    size_t n_groups = 0;
    for (size_t i = 0; i < r->n; i++) {
        row *x = &r->v[i];
        x->bank_s = text(r, x->bank);
        x->id_s = text(r, x->id);
        x->next = NONE;
        size_t at = (size_t)item_key(x) & (slots - 1);
        while (table[at] != 0 && !same_item(&r->v[groups[table[at] - 1].first], x))
            at = (at + 1) & (slots - 1);
        if (table[at] == 0) {
            groups[n_groups] = (group){ i, i, 1 };
            table[at] = (uint32_t)++n_groups;   /* rows are under 2^32 (MAX_HELD) */
        } else {
            group *gr = &groups[table[at] - 1];
            r->v[gr->last].next = i;
            gr->last = i;
            gr->n++;
        }
    }
    free(table);
    size_t max_batch = g->o->batch ? g->o->batch : 100000;
    pdqm_status st = PDQM_OK;
    for (size_t gi = 0; gi < n_groups && st == PDQM_OK; ) {
        size_t ge = gi + max_batch < n_groups ? gi + max_batch : n_groups;
        size_t n_hashes = 0;
        for (size_t x = gi; x < ge; x++)
            n_hashes += groups[x].n;
        if (room(g, ge - gi, n_hashes) != 0) {
            free(groups);
            return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for the list");
        }
        size_t n_adds = 0;
        n_hashes = 0;
        for (size_t x = gi; x < ge; x++) {
            size_t i = groups[x].first;
            pdqm_add *a = &g->adds[n_adds];
            memset(a, 0, sizeof *a);
            a->bank = r->v[i].bank_s;
            if (r->v[i].id != NONE) {
                a->content_id = r->v[i].id_s;
            } else {
                pdqm_hash256_to_hex(&r->v[i].h.hash, g->hex[n_adds]);
                a->content_id = g->hex[n_adds];
            }
            a->kind = PDQM_CONTENT_HASHES;
            int kind_set = 0;
            a->hashes = &g->hashes[n_hashes];
            for (size_t y = i; y != NONE; y = r->v[y].next) {
                const row *w = &r->v[y];
                if (r->v[i].id == NONE && y != i) {
                    g->counts->duplicates++;   /* the same hash again */
                    continue;
                }
                g->hashes[n_hashes++] = w->h;
                a->n_hashes++;
                if (a->metadata == NULL)
                    a->metadata = text(r, w->meta);
                if (a->sha256 == NULL)
                    a->sha256 = text(r, w->sha256);
                if (a->md5 == NULL)
                    a->md5 = text(r, w->md5);
                if (!kind_set && w->kind >= 0) {
                    a->kind = (pdqm_content_kind)w->kind;
                    kind_set = 1;
                }
            }
            n_adds++;
        }
        st = g->sink->items(g->sink->arg, g->adds, n_adds, err);
        gi = ge;
    }
    free(groups);
    r->n = 0;
    r->used = 0;
    return st;
}

void pdqm_list_options_default(pdqm_list_options *o)
{
    o->bank = NULL;
    o->min_quality = 1;
    o->batch = 100000;
}

static void refuse(ingest *g, uint64_t line, const pdqm_error *why)
{
    g->counts->refused++;
    if (why->status == PDQM_ERR_DEGENERATE)
        g->counts->degenerate++;
    if (g->sink->refused)
        g->sink->refused(g->sink->arg, line, why);
}

pdqm_status pdqm_list_ingest(FILE *f, const pdqm_list_options *options,
                             const pdqm_list_sink *sink, pdqm_list_counts *counts,
                             pdqm_error *err)
{
    memset(counts, 0, sizeof *counts);
    ingest g = { .o = options, .sink = sink, .counts = counts };
    pdqm_hashlist *parser = pdqm_hashlist_new();
    if (parser == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    size_t batch = options->batch ? options->batch : 100000;
    pdqm_status st = PDQM_OK;
    for (;;) {
        pdqm_hashlist_row in;
        int got;
        uint64_t line;
        pdqm_error why;
        pdqm_status rs = pdqm_hashlist_next(parser, f, &in, &got, &line, &why);
        if (rs == PDQM_ERR_IO) {
            st = pdqm_error_set(err, PDQM_ERR_IO, "%s", why.message);
            break;
        }
        if (rs != PDQM_OK) {
            refuse(&g, line, &why);
            continue;
        }
        if (!got)
            break;
        counts->rows++;
        const char *bank = in.bank ? in.bank : options->bank;
        if (bank == NULL) {
            pdqm_error_set(&why, PDQM_ERR_INVALID, "no bank: the list has no bank column "
                                                   "and none was given");
            refuse(&g, line, &why);
            continue;
        }
        if (pdqm_hash_check(&in.hash, in.quality, &why) != PDQM_OK) {
            refuse(&g, line, &why);   /* before the quality: never "skipped" */
            continue;
        }
        if (in.quality >= 0 && in.quality < options->min_quality) {
            counts->skipped_quality++;
            continue;
        }
        if (pdqm_bank_name_check(bank, &why) != PDQM_OK ||
            (in.content_id && pdqm_content_id_check(in.content_id, &why) != PDQM_OK) ||
            (in.metadata && pdqm_metadata_check(in.metadata, &why) != PDQM_OK)) {
            refuse(&g, line, &why);
            continue;
        }
        if (in.content_id) {
            if (g.held.n >= PDQM_LIST_MAX_HELD) {
                st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                                    "over %d rows with content ids in one list: split it",
                                    PDQM_LIST_MAX_HELD);
                break;
            }
            st = push(&g.held, &in, bank, 1, err);
        } else {
            st = push(&g.loose, &in, bank, 0, err);
            if (st == PDQM_OK && g.loose.n >= batch)
                st = emit(&g, &g.loose, err);
        }
        if (st != PDQM_OK)
            break;
    }
    if (st == PDQM_OK)
        st = emit(&g, &g.loose, err);
    if (st == PDQM_OK)
        st = emit(&g, &g.held, err);
    pdqm_hashlist_free(parser);
    rows_free(&g.held);
    rows_free(&g.loose);
    free(g.adds);
    free(g.hex);
    free(g.hashes);
    return st;
}
