/*
 * vips_lazy.h - the libvips (and GLib) functions pdqmatch calls.
 *
 * Loaded on first use (hashing/dynlib.h).  Include this after the
 * library's own headers, in .c files only, and call pdqm_vips_load()
 * before the first call of any function listed here.
 */
#ifndef PDQM_VIPS_LAZY_H
#define PDQM_VIPS_LAZY_H

#include <vips/vips.h>
#include "dynlib.h"

#define PDQM_VIPS_FUNCTIONS(X) \
    X(vips_cache_set_max) \
    X(vips_cast) \
    X(vips_colourspace) \
    X(vips_error) \
    X(vips_error_buffer_copy) \
    X(vips_error_clear) \
    X(vips_extract_band) \
    X(vips_foreign_find_load_source) \
    X(vips_format_sizeof) \
    X(vips_format_sizeof_unsafe) \
    X(vips_image_get_interpretation) \
    X(vips_image_new) \
    X(vips_image_new_from_source) \
    X(vips_init) \
    X(vips_object_get_type) \
    X(vips_object_local_array) \
    X(vips_operation_block_set) \
    X(vips_region_new) \
    X(vips_region_prepare) \
    X(vips_shutdown) \
    X(vips_source_new_from_memory) \
    X(vips_version) \
    X(g_free) \
    X(g_log) \
    X(g_log_set_handler) \
    X(g_object_ref) \
    X(g_object_unref) \
    X(g_type_check_instance_cast)

typedef struct pdqm_vips_table {
    PDQM_VIPS_FUNCTIONS(PDQM_DYNLIB_FIELD)
} pdqm_vips_table;

extern pdqm_vips_table pdqm_vips;

/* Load the library, once a process; PDQM_OK, or PDQM_ERR_INTERNAL with
 * the reason when it cannot be loaded. */
pdqm_status pdqm_vips_load(pdqm_error *err);

/* Every call below goes through the table. */
#ifndef PDQM_DYNLIB_TABLE_DEFINITION
#undef vips_cache_set_max
#define vips_cache_set_max (*pdqm_vips.vips_cache_set_max)
#undef vips_cast
#define vips_cast (*pdqm_vips.vips_cast)
#undef vips_colourspace
#define vips_colourspace (*pdqm_vips.vips_colourspace)
#undef vips_error
#define vips_error (*pdqm_vips.vips_error)
#undef vips_error_buffer_copy
#define vips_error_buffer_copy (*pdqm_vips.vips_error_buffer_copy)
#undef vips_error_clear
#define vips_error_clear (*pdqm_vips.vips_error_clear)
#undef vips_extract_band
#define vips_extract_band (*pdqm_vips.vips_extract_band)
#undef vips_foreign_find_load_source
#define vips_foreign_find_load_source (*pdqm_vips.vips_foreign_find_load_source)
#undef vips_format_sizeof
#define vips_format_sizeof (*pdqm_vips.vips_format_sizeof)
#undef vips_format_sizeof_unsafe
#define vips_format_sizeof_unsafe (*pdqm_vips.vips_format_sizeof_unsafe)
#undef vips_image_get_interpretation
#define vips_image_get_interpretation (*pdqm_vips.vips_image_get_interpretation)
#undef vips_image_new
#define vips_image_new (*pdqm_vips.vips_image_new)
#undef vips_image_new_from_source
#define vips_image_new_from_source (*pdqm_vips.vips_image_new_from_source)
#undef vips_init
#define vips_init (*pdqm_vips.vips_init)
#undef vips_object_get_type
#define vips_object_get_type (*pdqm_vips.vips_object_get_type)
#undef vips_object_local_array
#define vips_object_local_array (*pdqm_vips.vips_object_local_array)
#undef vips_operation_block_set
#define vips_operation_block_set (*pdqm_vips.vips_operation_block_set)
#undef vips_region_new
#define vips_region_new (*pdqm_vips.vips_region_new)
#undef vips_region_prepare
#define vips_region_prepare (*pdqm_vips.vips_region_prepare)
#undef vips_shutdown
#define vips_shutdown (*pdqm_vips.vips_shutdown)
#undef vips_source_new_from_memory
#define vips_source_new_from_memory (*pdqm_vips.vips_source_new_from_memory)
#undef vips_version
#define vips_version (*pdqm_vips.vips_version)
#undef g_free
#define g_free (*pdqm_vips.g_free)
#undef g_log
#define g_log (*pdqm_vips.g_log)
#undef g_log_set_handler
#define g_log_set_handler (*pdqm_vips.g_log_set_handler)
#undef g_object_ref
#define g_object_ref (*pdqm_vips.g_object_ref)
#undef g_object_unref
#define g_object_unref (*pdqm_vips.g_object_unref)
#undef g_type_check_instance_cast
#define g_type_check_instance_cast (*pdqm_vips.g_type_check_instance_cast)
#endif

#endif
