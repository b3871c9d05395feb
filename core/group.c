/*
 * group.c - rows into content items (the rule is in ingest.h).
 *
 * A hash table on (bank, id or hash) finds each row's item; the item chains
 * its rows in row order, and the items are numbered in the order their
 * first rows came.  No sort: an import of millions of rows spends its time
 * in the store, not here.
 */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>

#define NONE ((size_t)-1)

static int same_item(const pdqm_item_row *a, const pdqm_item_row *b)
{
    if (a->bank != b->bank && strcmp(a->bank, b->bank) != 0)
        return 0;
    if ((a->content_id == NULL) != (b->content_id == NULL))
        return 0;
    if (a->content_id)
        return strcmp(a->content_id, b->content_id) == 0;
    return memcmp(a->hash.hash.w, b->hash.hash.w, sizeof a->hash.hash.w) == 0;
}

/* FNV-1a over the bank and the id; a hash-named row's own (random) bits
 * stand for its id. */
static uint64_t item_key(const pdqm_item_row *x)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = x->bank; *c; c++)
        h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    if (x->content_id) {
        for (const char *c = x->content_id; *c; c++)
            h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
        return h;
    }
    const uint64_t *w = x->hash.hash.w;
    return (h ^ w[0] ^ w[1] ^ w[2] ^ w[3]) * 0x9e3779b97f4a7c15ull;
}

void pdqm_items_free(pdqm_items *items)
{
    free(items->adds);
    free(items->hashes);
    free(items->hex);
    memset(items, 0, sizeof *items);
}

typedef struct group {
    size_t first, last, n;
} group;

pdqm_status pdqm_items_group(const pdqm_item_row *rows, size_t n, pdqm_items *out,
                             pdqm_error *err)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return PDQM_OK;
    if (n > UINT32_MAX - 1)
        return pdqm_error_set(err, PDQM_ERR_TOO_LARGE, "over %u rows to group", UINT32_MAX - 1);
    size_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    uint32_t *table = calloc(slots, sizeof *table);   /* item number + 1; 0: empty */
    size_t *next = malloc(n * sizeof *next);          /* a row's item's next row */
    group *groups = malloc(n * sizeof *groups);
    pdqm_status st = PDQM_OK;
    if (table == NULL || next == NULL || groups == NULL)
        goto nomem;
    size_t n_groups = 0, n_named = 0;
    for (size_t i = 0; i < n; i++) {
        const pdqm_item_row *x = &rows[i];
        next[i] = NONE;
        size_t at = (size_t)item_key(x) & (slots - 1);
        while (table[at] != 0 && !same_item(&rows[groups[table[at] - 1].first], x))
            at = (at + 1) & (slots - 1);
        if (table[at] == 0) {
            groups[n_groups] = (group){ i, i, 1 };
            table[at] = (uint32_t)++n_groups;
            n_named += x->content_id == NULL;
        } else if (x->content_id == NULL) {
            out->duplicates++;   /* the same hash again */
        } else {
            group *g = &groups[table[at] - 1];
            next[g->last] = i;
            g->last = i;
            g->n++;
        }
    }
    free(table);
    table = NULL;
    out->adds = malloc(n_groups * sizeof *out->adds);
    out->hashes = malloc((n - out->duplicates) * sizeof *out->hashes);
    out->hex = n_named ? malloc(n_named * sizeof *out->hex) : NULL;
    if (out->adds == NULL || out->hashes == NULL || (n_named && out->hex == NULL))
        goto nomem;
    size_t n_hashes = 0, named = 0;
    for (size_t gi = 0; gi < n_groups; gi++) {
        const pdqm_item_row *head = &rows[groups[gi].first];
        pdqm_add *a = &out->adds[gi];
        memset(a, 0, sizeof *a);
        a->bank = head->bank;
        if (head->content_id) {
            a->content_id = head->content_id;
        } else {
            pdqm_hash256_to_hex(&head->hash.hash, out->hex[named]);
            a->content_id = out->hex[named++];
        }
        a->kind = PDQM_CONTENT_HASHES;
        a->hashes = &out->hashes[n_hashes];
        int kind_set = 0;
        for (size_t y = groups[gi].first; y != NONE; y = next[y]) {
            const pdqm_item_row *w = &rows[y];
            out->hashes[n_hashes++] = w->hash;
            a->n_hashes++;
            if (a->metadata == NULL)
                a->metadata = w->metadata;
            if (a->sha256 == NULL)
                a->sha256 = w->sha256;
            if (a->md5 == NULL)
                a->md5 = w->md5;
            if (!kind_set && w->kind >= 0) {
                a->kind = (pdqm_content_kind)w->kind;
                kind_set = 1;
            }
        }
    }
    out->n_adds = n_groups;
    goto done;
nomem:
    pdqm_items_free(out);
    st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory grouping %zu rows", n);
done:
    free(table);
    free(next);
    free(groups);
    return st;
}
