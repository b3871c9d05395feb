/*
 * dynlib.c - shared libraries loaded on first use (see dynlib.h).
 */
#include "dynlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* One lock for every table: a load happens once a library and a process,
 * and after it a check costs an uncontended lock. */
static pthread_mutex_t loading_mu = PTHREAD_MUTEX_INITIALIZER;

void *pdqm_dynlib_sym(pdqm_dynlib *lib, const char *name)
{
    void *fn = NULL;
    for (size_t i = 0; fn == NULL && i < lib->n_handles; i++)
        fn = dlsym(lib->handles[i], name);
    if (fn == NULL && lib->missing == NULL)
        lib->missing = name;
    return fn;
}

static void load_now(pdqm_dynlib *lib)
{
    lib->status = PDQM_ERR_INTERNAL;
    for (size_t i = 0; i < PDQM_DYNLIB_MAX_SONAMES && lib->sonames[i] != NULL; i++) {
        /* RTLD_LAZY: what the library calls in its own dependencies is
         * bound when first called, not all at once. */
        void *h = dlopen(lib->sonames[i], RTLD_LAZY | RTLD_LOCAL);
        if (h == NULL) {
            const char *why = dlerror();
            snprintf(lib->message, sizeof lib->message, "cannot load %s: %s",
                     lib->sonames[i], why ? why : "unknown reason");
            return;
        }
        lib->handles[lib->n_handles++] = h;
    }
    lib->bind(lib);
    if (lib->missing != NULL) {
        snprintf(lib->message, sizeof lib->message, "%s has no function %s",
                 lib->sonames[0], lib->missing);
        return;
    }
    lib->status = PDQM_OK;
}

pdqm_status pdqm_dynlib_load(pdqm_dynlib *lib, pdqm_error *err)
{
    pthread_mutex_lock(&loading_mu);
    if (!lib->tried) {
        load_now(lib);
        lib->tried = 1;
    }
    pdqm_status st = (pdqm_status)lib->status;
    pthread_mutex_unlock(&loading_mu);
    if (st != PDQM_OK)
        return pdqm_error_set(err, st, "%s", lib->message);
    return PDQM_OK;
}
