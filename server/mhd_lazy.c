/*
 * mhd_lazy.c - the table of mhd_lazy.h, filled on first use.
 */
#define PDQM_DYNLIB_TABLE_DEFINITION
#include "mhd_lazy.h"

pdqm_mhd_table pdqm_mhd;

static void bind_table(pdqm_dynlib *lib)
{
#define BIND(f) PDQM_DYNLIB_BIND(pdqm_mhd, lib, f)
    PDQM_MHD_FUNCTIONS(BIND)
#undef BIND
}

/* The sonames come from the build (Makefile), read off the libraries
 * the headers above belong to. */
static pdqm_dynlib lib = { .sonames = { PDQM_SONAME_MHD }, .bind = bind_table };

pdqm_status pdqm_mhd_load(pdqm_error *err)
{
    return pdqm_dynlib_load(&lib, err);
}
