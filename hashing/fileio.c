/*
 * fileio.c - bounded whole-file reads.
 */
#define _POSIX_C_SOURCE 200809L
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

pdqm_status pdqm_read_file(const char *path, size_t max_bytes,
                           uint8_t **out, size_t *out_len, pdqm_error *err)
{
    *out = NULL;
    *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pdqm_error_set(err, PDQM_ERR_IO, "%s", strerror(errno));

    pdqm_status st = PDQM_OK;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = pdqm_error_set(err, PDQM_ERR_IO, "%s", strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = pdqm_error_set(err, PDQM_ERR_IO, "is a directory");
        goto fail;
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max_bytes) {
        st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                            "%lld bytes is over the limit of %zu bytes",
                            (long long)sb.st_size, max_bytes);
        goto fail;
    }
    /* A regular file is read into one allocation (one byte spare, to
     * notice a file that grew); anything else grows by doubling. */
    cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : 64 * 1024;
    if (cap > max_bytes + 1)
        cap = max_bytes + 1;
    buf = malloc(cap);
    if (buf == NULL) {
        st = pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory reading %zu bytes", cap);
        goto fail;
    }
    for (;;) {
        if (len == cap) {
            /* len <= max_bytes here, so the new capacity is larger. */
            size_t next = cap > (max_bytes + 1) / 2 ? max_bytes + 1 : cap * 2;
            uint8_t *grown = realloc(buf, next);
            if (grown == NULL) {
                st = pdqm_error_set(err, PDQM_ERR_NOMEM,
                                    "out of memory reading %zu bytes", next);
                goto fail;
            }
            buf = grown;
            cap = next;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            st = pdqm_error_set(err, PDQM_ERR_IO, "%s", strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max_bytes) {
            st = pdqm_error_set(err, PDQM_ERR_TOO_LARGE,
                                "more than the limit of %zu bytes", max_bytes);
            goto fail;
        }
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return PDQM_OK;

fail:
    free(buf);
    close(fd);
    return st;
}
