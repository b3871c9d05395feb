/*
 * fuzz_list.c - a hash list read whole by the library's ingest rules
 * (core/ingest.h): records over line breaks, byte order marks, grouping by
 * id, banks, kinds, refusals.  Every item handed out must be one the store
 * would take: a good bank name and content id, 1 or more hashes of quality
 * 1..100 that are not degenerate.
 */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../core/ingest.h"

static pdqm_status check_items(void *arg, const pdqm_add *adds, size_t n, pdqm_error *err)
{
    (void)arg; (void)err;
    for (size_t i = 0; i < n; i++) {
        const pdqm_add *a = &adds[i];
        if (pdqm_bank_name_check(a->bank, NULL) != PDQM_OK ||
            pdqm_content_id_check(a->content_id, NULL) != PDQM_OK || a->n_hashes == 0)
            __builtin_trap();
        if (a->metadata && pdqm_metadata_check(a->metadata, NULL) != PDQM_OK)
            __builtin_trap();
        for (size_t k = 0; k < a->n_hashes; k++)
            if (a->hashes[k].quality < 1 || a->hashes[k].quality > 100 ||
                pdqm_hash_check(&a->hashes[k].hash, a->hashes[k].quality, NULL) != PDQM_OK)
                __builtin_trap();
    }
    return PDQM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *f = fmemopen((void *)data, size, "r");
    if (f == NULL)
        return 0;
    pdqm_list_options o;
    pdqm_list_options_default(&o);
    o.bank = "fuzz";
    o.batch = 3;
    pdqm_list_sink sink = { NULL, check_items, NULL };
    pdqm_list_counts c;
    (void)pdqm_list_ingest(f, &o, &sink, &c, NULL);
    fclose(f);
    return 0;
}
