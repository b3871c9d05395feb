/*
 * curl_lazy.h - the libcurl functions pdqmatch calls (URL fetching, the exchanges' clients).
 *
 * Loaded on first use (hashing/dynlib.h).  Include this after the
 * library's own headers, in .c files only, and call pdqm_curl_load()
 * before the first call of any function listed here.
 */
#ifndef PDQM_CURL_LAZY_H
#define PDQM_CURL_LAZY_H

#include <curl/curl.h>
#include "../hashing/dynlib.h"

#define PDQM_CURL_FUNCTIONS(X) \
    X(curl_easy_cleanup) \
    X(curl_easy_getinfo) \
    X(curl_easy_init) \
    X(curl_easy_perform) \
    X(curl_easy_setopt) \
    X(curl_easy_strerror) \
    X(curl_free) \
    X(curl_getdate) \
    X(curl_global_init) \
    X(curl_slist_append) \
    X(curl_slist_free_all) \
    X(curl_url) \
    X(curl_url_cleanup) \
    X(curl_url_get) \
    X(curl_url_set)

typedef struct pdqm_curl_table {
    PDQM_CURL_FUNCTIONS(PDQM_DYNLIB_FIELD)
} pdqm_curl_table;

extern pdqm_curl_table pdqm_curl;

/* Load the library, once a process; PDQM_OK, or PDQM_ERR_INTERNAL with
 * the reason when it cannot be loaded. */
pdqm_status pdqm_curl_load(pdqm_error *err);

/* Every call below goes through the table. */
#ifndef PDQM_DYNLIB_TABLE_DEFINITION
#undef curl_easy_cleanup
#define curl_easy_cleanup (*pdqm_curl.curl_easy_cleanup)
#undef curl_easy_getinfo
#define curl_easy_getinfo (*pdqm_curl.curl_easy_getinfo)
#undef curl_easy_init
#define curl_easy_init (*pdqm_curl.curl_easy_init)
#undef curl_easy_perform
#define curl_easy_perform (*pdqm_curl.curl_easy_perform)
#undef curl_easy_setopt
#define curl_easy_setopt (*pdqm_curl.curl_easy_setopt)
#undef curl_easy_strerror
#define curl_easy_strerror (*pdqm_curl.curl_easy_strerror)
#undef curl_free
#define curl_free (*pdqm_curl.curl_free)
#undef curl_getdate
#define curl_getdate (*pdqm_curl.curl_getdate)
#undef curl_global_init
#define curl_global_init (*pdqm_curl.curl_global_init)
#undef curl_slist_append
#define curl_slist_append (*pdqm_curl.curl_slist_append)
#undef curl_slist_free_all
#define curl_slist_free_all (*pdqm_curl.curl_slist_free_all)
#undef curl_url
#define curl_url (*pdqm_curl.curl_url)
#undef curl_url_cleanup
#define curl_url_cleanup (*pdqm_curl.curl_url_cleanup)
#undef curl_url_get
#define curl_url_get (*pdqm_curl.curl_url_get)
#undef curl_url_set
#define curl_url_set (*pdqm_curl.curl_url_set)
#endif

#endif
