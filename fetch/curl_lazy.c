/*
 * curl_lazy.c - the table of curl_lazy.h, filled on first use.
 */
#define PDQM_DYNLIB_TABLE_DEFINITION
#include "curl_lazy.h"

pdqm_curl_table pdqm_curl;

static void bind_table(pdqm_dynlib *lib)
{
#define BIND(f) PDQM_DYNLIB_BIND(pdqm_curl, lib, f)
    PDQM_CURL_FUNCTIONS(BIND)
#undef BIND
}

/* The sonames come from the build (Makefile), read off the libraries
 * the headers above belong to. */
static pdqm_dynlib lib = { .sonames = { PDQM_SONAME_CURL }, .bind = bind_table };

pdqm_status pdqm_curl_load(pdqm_error *err)
{
    return pdqm_dynlib_load(&lib, err);
}
