/*
 * error.h - the one error type of the pdqmatch library.
 *
 * Every library function that can fail returns a pdqm_status and, when the
 * caller passes one, fills a pdqm_error with the specifics (file name, the
 * offending value, the decoder's own words).  The library never prints, logs
 * or exits: the front ends (tools/, server/) decide what to say.
 *
 * The codes are append-only and numbered: they reach JSON replies and logs
 * through pdqm_status_token(), so a number or token never changes meaning.
 *
 * This header lives in hashing/ because hashing/ is the bottom room of the
 * house; index/ and the front ends include it too.
 */
#ifndef PDQM_ERROR_H
#define PDQM_ERROR_H

#include <stddef.h>

/* The version of pdqmatch, for --version and /openapi.json. */
#define PDQM_VERSION "0.1.0"

typedef enum pdqm_status {
    PDQM_OK = 0,              /* success */
    PDQM_ERR_NOMEM = 1,       /* an allocation failed */
    PDQM_ERR_INVALID = 2,     /* malformed argument or input (a hash string, a size) */
    PDQM_ERR_IO = 3,          /* a file could not be opened or read */
    PDQM_ERR_TOO_LARGE = 4,   /* the input is over a configured limit */
    PDQM_ERR_UNSUPPORTED = 5, /* not a media format pdqmatch accepts */
    PDQM_ERR_DECODE = 6,      /* a known format, but the data could not be decoded */
    PDQM_ERR_INTERNAL = 7,    /* a library we depend on failed unexpectedly */
    PDQM_ERR_NOT_A_STORE = 8, /* the path holds something that is not a store */
    PDQM_ERR_SCHEMA = 9,      /* a store of another schema version */
    PDQM_ERR_NOT_FOUND = 10,  /* no such bank, content or store */
    PDQM_ERR_EXISTS = 11,     /* it exists already */
    PDQM_ERR_STORE = 12,      /* the store failed: disk full, I/O, corruption */
    PDQM_ERR_DEGENERATE = 13, /* a hash with nothing to match: quality 0, or
                                 fewer than 16 bits set (a blank image) */
    PDQM_ERR_NO_SPACE = 14,   /* the disk is full: no write fits until space is
                                 freed (reads go on) */
    PDQM_ERR_UNAVAILABLE = 15,/* a service the call needs (the cluster's log)
                                 cannot be reached now; try again */
    PDQM_ERR_BUSY = 16        /* another process holds it (an exchange being
                                 fetched elsewhere) */
} pdqm_status;
#define PDQM_LAST_STATUS PDQM_ERR_BUSY

/* Room for the specifics of one error; longer messages are truncated. */
#define PDQM_ERROR_MESSAGE_MAX 256

typedef struct pdqm_error {
    pdqm_status status;                    /* the code, as returned */
    char message[PDQM_ERROR_MESSAGE_MAX];  /* one line, no trailing newline */
} pdqm_error;

/* A short, static English description of a status ("out of memory").
 * Never NULL, even for a value outside the enum. */
const char *pdqm_strerror(pdqm_status status);

/* A stable lower-case token for a status ("too_large"), for JSON and logs. */
const char *pdqm_status_token(pdqm_status status);

/* Record an error in *err (when err is not NULL) and return status, so a
 * failing function can end with `return pdqm_error_set(err, ...)`.
 * The message is formatted like printf; newlines in it become spaces. */
pdqm_status pdqm_error_set(pdqm_error *err, pdqm_status status,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear *err to PDQM_OK with an empty message; NULL is a no-op. */
void pdqm_error_clear(pdqm_error *err);

/* The message of *err, or pdqm_strerror() of its status when the message is
 * empty.  Never NULL. */
const char *pdqm_error_message(const pdqm_error *err);

#endif
