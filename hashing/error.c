/*
 * error.c - status codes to text, and filling a caller's error buffer.
 *
 * The switches below have no `default`, so adding a status without a
 * message or a token is a compiler warning (and, with -Werror, a build
 * failure).
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *pdqm_strerror(pdqm_status status)
{
    switch (status) {
    case PDQM_OK:              return "success";
    case PDQM_ERR_NOMEM:       return "out of memory";
    case PDQM_ERR_INVALID:     return "invalid input";
    case PDQM_ERR_IO:          return "cannot read input";
    case PDQM_ERR_TOO_LARGE:   return "input over a configured limit";
    case PDQM_ERR_UNSUPPORTED: return "unsupported media format";
    case PDQM_ERR_DECODE:      return "cannot decode media";
    case PDQM_ERR_INTERNAL:    return "internal error";
    case PDQM_ERR_NOT_A_STORE: return "not a pdqmatch store";
    case PDQM_ERR_SCHEMA:      return "store of another schema version";
    case PDQM_ERR_NOT_FOUND:   return "not found";
    case PDQM_ERR_EXISTS:      return "already exists";
    case PDQM_ERR_STORE:       return "store failure";
    case PDQM_ERR_DEGENERATE:  return "degenerate hash";
    case PDQM_ERR_NO_SPACE:    return "disk full";
    case PDQM_ERR_UNAVAILABLE: return "unavailable, try again";
    case PDQM_ERR_BUSY:        return "busy elsewhere";
    }
    return "unknown error";
}

const char *pdqm_status_token(pdqm_status status)
{
    switch (status) {
    case PDQM_OK:              return "ok";
    case PDQM_ERR_NOMEM:       return "out_of_memory";
    case PDQM_ERR_INVALID:     return "invalid";
    case PDQM_ERR_IO:          return "io_error";
    case PDQM_ERR_TOO_LARGE:   return "too_large";
    case PDQM_ERR_UNSUPPORTED: return "unsupported_media";
    case PDQM_ERR_DECODE:      return "decode_failed";
    case PDQM_ERR_INTERNAL:    return "internal";
    case PDQM_ERR_NOT_A_STORE: return "not_a_store";
    case PDQM_ERR_SCHEMA:      return "schema_mismatch";
    case PDQM_ERR_NOT_FOUND:   return "not_found";
    case PDQM_ERR_EXISTS:      return "exists";
    case PDQM_ERR_STORE:       return "store_failure";
    case PDQM_ERR_DEGENERATE:  return "degenerate_hash";
    case PDQM_ERR_NO_SPACE:    return "insufficient_storage";
    case PDQM_ERR_UNAVAILABLE: return "unavailable";
    case PDQM_ERR_BUSY:        return "busy";
    }
    return "unknown";
}

pdqm_status pdqm_error_set(pdqm_error *err, pdqm_status status,
                           const char *fmt, ...)
{
    if (err == NULL)
        return status;
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    /* One error is one line, whatever a decoder put into its text. */
    for (char *p = err->message; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    size_t n = strlen(err->message);
    while (n > 0 && err->message[n - 1] == ' ')
        err->message[--n] = '\0';
    return status;
}

void pdqm_error_clear(pdqm_error *err)
{
    if (err == NULL)
        return;
    err->status = PDQM_OK;
    err->message[0] = '\0';
}

const char *pdqm_error_message(const pdqm_error *err)
{
    if (err == NULL)
        return "unknown error";
    if (err->message[0] != '\0')
        return err->message;
    return pdqm_strerror(err->status);
}
