/*
 * mhd_lazy.h - the libmicrohttpd functions the server calls.
 *
 * Loaded on first use (hashing/dynlib.h).  Include this after the
 * library's own headers, in .c files only, and call pdqm_mhd_load()
 * before the first call of any function listed here.
 */
#ifndef PDQM_MHD_LAZY_H
#define PDQM_MHD_LAZY_H

#include <microhttpd.h>
#include "../hashing/dynlib.h"

#define PDQM_MHD_FUNCTIONS(X) \
    X(MHD_add_response_header) \
    X(MHD_create_post_processor) \
    X(MHD_create_response_from_buffer) \
    X(MHD_destroy_post_processor) \
    X(MHD_destroy_response) \
    X(MHD_get_connection_info) \
    X(MHD_get_connection_values) \
    X(MHD_get_daemon_info) \
    X(MHD_http_unescape) \
    X(MHD_lookup_connection_value) \
    X(MHD_post_process) \
    X(MHD_queue_response) \
    X(MHD_quiesce_daemon) \
    X(MHD_resume_connection) \
    X(MHD_start_daemon) \
    X(MHD_stop_daemon) \
    X(MHD_suspend_connection)

typedef struct pdqm_mhd_table {
    PDQM_MHD_FUNCTIONS(PDQM_DYNLIB_FIELD)
} pdqm_mhd_table;

extern pdqm_mhd_table pdqm_mhd;

/* Load the library, once a process; PDQM_OK, or PDQM_ERR_INTERNAL with
 * the reason when it cannot be loaded. */
pdqm_status pdqm_mhd_load(pdqm_error *err);

/* Every call below goes through the table. */
#ifndef PDQM_DYNLIB_TABLE_DEFINITION
#undef MHD_add_response_header
#define MHD_add_response_header (*pdqm_mhd.MHD_add_response_header)
#undef MHD_create_post_processor
#define MHD_create_post_processor (*pdqm_mhd.MHD_create_post_processor)
#undef MHD_create_response_from_buffer
#define MHD_create_response_from_buffer (*pdqm_mhd.MHD_create_response_from_buffer)
#undef MHD_destroy_post_processor
#define MHD_destroy_post_processor (*pdqm_mhd.MHD_destroy_post_processor)
#undef MHD_destroy_response
#define MHD_destroy_response (*pdqm_mhd.MHD_destroy_response)
#undef MHD_get_connection_info
#define MHD_get_connection_info (*pdqm_mhd.MHD_get_connection_info)
#undef MHD_get_connection_values
#define MHD_get_connection_values (*pdqm_mhd.MHD_get_connection_values)
#undef MHD_get_daemon_info
#define MHD_get_daemon_info (*pdqm_mhd.MHD_get_daemon_info)
#undef MHD_http_unescape
#define MHD_http_unescape (*pdqm_mhd.MHD_http_unescape)
#undef MHD_lookup_connection_value
#define MHD_lookup_connection_value (*pdqm_mhd.MHD_lookup_connection_value)
#undef MHD_post_process
#define MHD_post_process (*pdqm_mhd.MHD_post_process)
#undef MHD_queue_response
#define MHD_queue_response (*pdqm_mhd.MHD_queue_response)
#undef MHD_quiesce_daemon
#define MHD_quiesce_daemon (*pdqm_mhd.MHD_quiesce_daemon)
#undef MHD_start_daemon
#define MHD_start_daemon (*pdqm_mhd.MHD_start_daemon)
#undef MHD_stop_daemon
#define MHD_stop_daemon (*pdqm_mhd.MHD_stop_daemon)
#undef MHD_suspend_connection
#define MHD_suspend_connection (*pdqm_mhd.MHD_suspend_connection)
#undef MHD_resume_connection
#define MHD_resume_connection (*pdqm_mhd.MHD_resume_connection)
#endif

#endif
