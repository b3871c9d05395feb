/*
 * av_lazy.c - the table of av_lazy.h, filled on first use.
 */
#define PDQM_DYNLIB_TABLE_DEFINITION
#include "av_lazy.h"

pdqm_av_table pdqm_av;

static void bind_table(pdqm_dynlib *lib)
{
#define BIND(f) PDQM_DYNLIB_BIND(pdqm_av, lib, f)
    PDQM_AV_FUNCTIONS(BIND)
#undef BIND
}

/* The sonames come from the build (Makefile), read off the libraries
 * the headers above belong to. */
static pdqm_dynlib lib = { .sonames = { PDQM_SONAME_AVFORMAT, PDQM_SONAME_AVCODEC, PDQM_SONAME_SWSCALE, PDQM_SONAME_AVUTIL }, .bind = bind_table };

pdqm_status pdqm_av_load(pdqm_error *err)
{
    return pdqm_dynlib_load(&lib, err);
}
