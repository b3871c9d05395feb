/*
 * list.c - hash lists into content items (the rules are in ingest.h).
 *
 * Two kinds of rows.  A row without a content id is an item of its own,
 * named by its hash: such rows go out in batches as they come.  A row with
 * an id may have siblings anywhere further down, so these rows are held,
 * compactly (strings in one arena), until the list ends.  Either way the
 * rows become items by pdqm_items_group(), the rule every front end uses.
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

/* Make r's rows items and hand them to the sink, a batch at a time, in
 * the order their first rows stood in the list; then forget the rows. */
static pdqm_status emit(ingest *g, rows *r, pdqm_error *err)
{
    if (r->n == 0)
        return PDQM_OK;
    pdqm_item_row *in = malloc(r->n * sizeof *in);
    if (in == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory for the list");
    for (size_t i = 0; i < r->n; i++) {
        const row *x = &r->v[i];
        in[i] = (pdqm_item_row){ .bank = text(r, x->bank), .content_id = text(r, x->id),
                                 .metadata = text(r, x->meta), .sha256 = text(r, x->sha256),
                                 .md5 = text(r, x->md5), .kind = x->kind, .hash = x->h };
    }
    pdqm_items items;
    pdqm_status st = pdqm_items_group(in, r->n, &items, err);
    if (st == PDQM_OK) {
        g->counts->duplicates += items.duplicates;
        size_t max_batch = g->o->batch ? g->o->batch : 100000;
        for (size_t at = 0; at < items.n_adds && st == PDQM_OK; at += max_batch) {
            size_t n = items.n_adds - at < max_batch ? items.n_adds - at : max_batch;
            st = g->sink->items(g->sink->arg, items.adds + at, n, err);
        }
        pdqm_items_free(&items);
    }
    free(in);
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
    return st;
}
