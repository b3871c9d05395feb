/*
 * fileio.h - read a whole input file into memory, within a size limit.
 *
 * Media is hashed from memory (the server hands over request bodies), so
 * the command line reads files the same way: one read, then the bytes feed
 * both the decoder and the SHA-256/MD5 digests.
 */
#ifndef PDQM_FILEIO_H
#define PDQM_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Read the file at path into a new buffer *out (free() it) of *out_len
 * bytes.  Pipes and other non-regular files are read to their end too.
 * Errors: PDQM_ERR_IO (cannot open or read: the message is the system's
 * reason, such as "No such file or directory", or "is a directory"),
 * PDQM_ERR_TOO_LARGE (more than max_bytes), PDQM_ERR_NOMEM. */
pdqm_status pdqm_read_file(const char *path, size_t max_bytes,
                           uint8_t **out, size_t *out_len, pdqm_error *err);

#endif
