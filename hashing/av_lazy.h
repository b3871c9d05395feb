/*
 * av_lazy.h - the FFmpeg functions pdqmatch calls (libavformat, libavcodec, libswscale, libavutil).
 *
 * Loaded on first use (hashing/dynlib.h).  Include this after the
 * library's own headers, in .c files only, and call pdqm_av_load()
 * before the first call of any function listed here.
 */
#ifndef PDQM_AV_LAZY_H
#define PDQM_AV_LAZY_H

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/md5.h>
#include <libavutil/mem.h>
#include <libavutil/sha.h>
#include <libswscale/swscale.h>
#include "dynlib.h"

#define PDQM_AV_FUNCTIONS(X) \
    X(av_probe_input_format2) \
    X(av_read_frame) \
    X(avformat_alloc_context) \
    X(avformat_close_input) \
    X(avformat_find_stream_info) \
    X(avformat_open_input) \
    X(avio_alloc_context) \
    X(avio_context_free) \
    X(av_packet_alloc) \
    X(av_packet_free) \
    X(av_packet_unref) \
    X(av_packet_ref) \
    X(avcodec_flush_buffers) \
    X(avcodec_alloc_context3) \
    X(avcodec_find_decoder) \
    X(avcodec_free_context) \
    X(avcodec_open2) \
    X(avcodec_parameters_to_context) \
    X(avcodec_receive_frame) \
    X(avcodec_send_packet) \
    X(sws_freeContext) \
    X(sws_getContext) \
    X(sws_scale) \
    X(av_frame_alloc) \
    X(av_frame_clone) \
    X(av_frame_free) \
    X(av_frame_get_buffer) \
    X(av_frame_unref) \
    X(av_free) \
    X(av_freep) \
    X(av_log_set_callback) \
    X(av_malloc) \
    X(av_md5_sum) \
    X(av_sha_alloc) \
    X(av_sha_final) \
    X(av_sha_init) \
    X(av_sha_update) \
    X(av_strerror)

typedef struct pdqm_av_table {
    PDQM_AV_FUNCTIONS(PDQM_DYNLIB_FIELD)
} pdqm_av_table;

extern pdqm_av_table pdqm_av;

/* Load the library, once a process; PDQM_OK, or PDQM_ERR_INTERNAL with
 * the reason when it cannot be loaded. */
pdqm_status pdqm_av_load(pdqm_error *err);

/* Every call below goes through the table. */
#ifndef PDQM_DYNLIB_TABLE_DEFINITION
#undef av_probe_input_format2
#define av_probe_input_format2 (*pdqm_av.av_probe_input_format2)
#undef av_read_frame
#define av_read_frame (*pdqm_av.av_read_frame)
#undef avformat_alloc_context
#define avformat_alloc_context (*pdqm_av.avformat_alloc_context)
#undef avformat_close_input
#define avformat_close_input (*pdqm_av.avformat_close_input)
#undef avformat_find_stream_info
#define avformat_find_stream_info (*pdqm_av.avformat_find_stream_info)
#undef avformat_open_input
#define avformat_open_input (*pdqm_av.avformat_open_input)
#undef avio_alloc_context
#define avio_alloc_context (*pdqm_av.avio_alloc_context)
#undef avio_context_free
#define avio_context_free (*pdqm_av.avio_context_free)
#undef av_packet_alloc
#define av_packet_alloc (*pdqm_av.av_packet_alloc)
#undef av_packet_free
#define av_packet_free (*pdqm_av.av_packet_free)
#undef av_packet_unref
#define av_packet_unref (*pdqm_av.av_packet_unref)
#undef av_packet_ref
#define av_packet_ref (*pdqm_av.av_packet_ref)
#undef avcodec_flush_buffers
#define avcodec_flush_buffers (*pdqm_av.avcodec_flush_buffers)
#undef avcodec_alloc_context3
#define avcodec_alloc_context3 (*pdqm_av.avcodec_alloc_context3)
#undef avcodec_find_decoder
#define avcodec_find_decoder (*pdqm_av.avcodec_find_decoder)
#undef avcodec_free_context
#define avcodec_free_context (*pdqm_av.avcodec_free_context)
#undef avcodec_open2
#define avcodec_open2 (*pdqm_av.avcodec_open2)
#undef avcodec_parameters_to_context
#define avcodec_parameters_to_context (*pdqm_av.avcodec_parameters_to_context)
#undef avcodec_receive_frame
#define avcodec_receive_frame (*pdqm_av.avcodec_receive_frame)
#undef avcodec_send_packet
#define avcodec_send_packet (*pdqm_av.avcodec_send_packet)
#undef sws_freeContext
#define sws_freeContext (*pdqm_av.sws_freeContext)
#undef sws_getContext
#define sws_getContext (*pdqm_av.sws_getContext)
#undef sws_scale
#define sws_scale (*pdqm_av.sws_scale)
#undef av_frame_alloc
#define av_frame_alloc (*pdqm_av.av_frame_alloc)
#undef av_frame_clone
#define av_frame_clone (*pdqm_av.av_frame_clone)
#undef av_frame_free
#define av_frame_free (*pdqm_av.av_frame_free)
#undef av_frame_get_buffer
#define av_frame_get_buffer (*pdqm_av.av_frame_get_buffer)
#undef av_frame_unref
#define av_frame_unref (*pdqm_av.av_frame_unref)
#undef av_free
#define av_free (*pdqm_av.av_free)
#undef av_freep
#define av_freep (*pdqm_av.av_freep)
#undef av_log_set_callback
#define av_log_set_callback (*pdqm_av.av_log_set_callback)
#undef av_malloc
#define av_malloc (*pdqm_av.av_malloc)
#undef av_md5_sum
#define av_md5_sum (*pdqm_av.av_md5_sum)
#undef av_sha_alloc
#define av_sha_alloc (*pdqm_av.av_sha_alloc)
#undef av_sha_final
#define av_sha_final (*pdqm_av.av_sha_final)
#undef av_sha_init
#define av_sha_init (*pdqm_av.av_sha_init)
#undef av_sha_update
#define av_sha_update (*pdqm_av.av_sha_update)
#undef av_strerror
#define av_strerror (*pdqm_av.av_strerror)
#endif

#endif
