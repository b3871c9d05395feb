/*
 * nats_lazy.c - the table of nats_lazy.h, filled on first use.
 */
#define PDQM_DYNLIB_TABLE_DEFINITION
#include "nats_lazy.h"

pdqm_nats_table pdqm_nats;

static void bind_table(pdqm_dynlib *lib)
{
#define BIND(f) PDQM_DYNLIB_BIND(pdqm_nats, lib, f)
    PDQM_NATS_FUNCTIONS(BIND)
#undef BIND
}

/* The sonames come from the build (Makefile), read off the libraries
 * the headers above belong to. */
static pdqm_dynlib lib = { .sonames = { PDQM_SONAME_NATS }, .bind = bind_table };

pdqm_status pdqm_nats_load(pdqm_error *err)
{
    return pdqm_dynlib_load(&lib, err);
}
