/*
 * vips_lazy.c - the table of vips_lazy.h, filled on first use.
 */
#define PDQM_DYNLIB_TABLE_DEFINITION
#include "vips_lazy.h"

pdqm_vips_table pdqm_vips;

static void bind_table(pdqm_dynlib *lib)
{
#define BIND(f) PDQM_DYNLIB_BIND(pdqm_vips, lib, f)
    PDQM_VIPS_FUNCTIONS(BIND)
#undef BIND
}

/* The sonames come from the build (Makefile), read off the libraries
 * the headers above belong to. */
static pdqm_dynlib lib = { .sonames = { PDQM_SONAME_VIPS }, .bind = bind_table };

pdqm_status pdqm_vips_load(pdqm_error *err)
{
    return pdqm_dynlib_load(&lib, err);
}
