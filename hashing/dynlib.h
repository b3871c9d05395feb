/*
 * dynlib.h - shared libraries loaded on first use.
 *
 * libvips, FFmpeg, libcurl, libmicrohttpd and libnats pull in about 160
 * shared libraries between them; linking them into the binary made every
 * start of `pdqmatch` pay for loading and relocating all of them (about
 * 35 ms, most of it in the dynamic loader), even `pdqmatch --version`.
 * Instead, the rooms that use one of them keep a table of the functions
 * they call (hashing/vips_lazy.h, hashing/av_lazy.h, fetch/curl_lazy.h,
 * server/mhd_lazy.h, cluster/nats_lazy.h) and load the library, by the
 * soname found at build time, the first time a command needs it.
 *
 * A table is a struct of function pointers declared with the library's own
 * prototypes (__typeof__), so every call is still checked by the compiler;
 * the table's header then names each function as its pointer, so the code
 * that calls them reads as plain libvips or FFmpeg code.  A table's header
 * is included after the library's own headers and by no public header.
 */
#ifndef PDQM_DYNLIB_H
#define PDQM_DYNLIB_H

#include <stddef.h>

#include "error.h"

#define PDQM_DYNLIB_MAX_SONAMES 8

typedef struct pdqm_dynlib pdqm_dynlib;
struct pdqm_dynlib {
    const char *sonames[PDQM_DYNLIB_MAX_SONAMES + 1]; /* NULL-terminated, opened in order */
    void (*bind)(pdqm_dynlib *lib);  /* fills the table through pdqm_dynlib_sym() */
    /* Private: */
    void *handles[PDQM_DYNLIB_MAX_SONAMES];
    size_t n_handles;
    const char *missing;             /* the first function not found */
    int tried;                       /* the load ran (under a lock) */
    int status;                      /* its pdqm_status */
    char message[PDQM_ERROR_MESSAGE_MAX];
};

/* Open lib's libraries and call its bind function, once per process; later
 * calls return the first call's outcome.  Returns PDQM_OK, or
 * PDQM_ERR_INTERNAL with the soname and the loader's words when a library
 * is missing or lacks a function (the table must then not be used).  Safe
 * to call from any thread.  The libraries stay loaded until exit. */
pdqm_status pdqm_dynlib_load(pdqm_dynlib *lib, pdqm_error *err);

/* For bind functions: the address of the function called name in lib's
 * libraries (or in those they depend on: GLib's functions are found
 * through libvips), or NULL, recorded as missing. */
void *pdqm_dynlib_sym(pdqm_dynlib *lib, const char *name);

/* A table's field and its binding, for X-macro lists of function names. */
#define PDQM_DYNLIB_FIELD(f) __typeof__(f) *f;
#define PDQM_DYNLIB_BIND(table, lib, f) (table).f = (__typeof__((table).f))pdqm_dynlib_sym(lib, #f);

#endif
