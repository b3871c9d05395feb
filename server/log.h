/*
 * log.h - the service's log: one line a record, as text or as JSON, to
 * standard error or to a file that can be reopened (for logrotate).
 *
 * A record is a level, a message and named fields.  The level is checked
 * before anything is formatted (PDQM_LOG), so a record below the log's
 * level costs one comparison.  Each record is one write(2) of one line:
 * records of different threads never mix.
 */
#ifndef PDQM_LOG_H
#define PDQM_LOG_H
#include <stddef.h>
#include "../hashing/error.h"

typedef enum pdqm_log_level {
    PDQM_LOG_DEBUG = 0,
    PDQM_LOG_INFO = 1,
    PDQM_LOG_WARN = 2,
    PDQM_LOG_ERROR = 3
} pdqm_log_level;

typedef enum pdqm_log_format {
    PDQM_LOG_TEXT = 0,     /* "2026-12-01T17:00:00.000Z info request status=200 ..." */
    PDQM_LOG_JSON = 1      /* {"ts":"...","level":"info","msg":"request","status":200,...} */
} pdqm_log_format;

typedef struct pdqm_log pdqm_log;

/* A field of a record: a name and a text, an integer or a number.  A text
 * field whose s is NULL is left out. */
typedef enum pdqm_log_type { PDQM_LOG_STR, PDQM_LOG_INT, PDQM_LOG_NUM } pdqm_log_type;
typedef struct pdqm_log_field {
    const char *name;
    pdqm_log_type type;
    const char *s;
    long long i;
    double d;
} pdqm_log_field;

#define PDQM_LOG_S(n, v) ((pdqm_log_field){ (n), PDQM_LOG_STR, (v), 0, 0.0 })
#define PDQM_LOG_I(n, v) ((pdqm_log_field){ (n), PDQM_LOG_INT, NULL, (long long)(v), 0.0 })
#define PDQM_LOG_D(n, v) ((pdqm_log_field){ (n), PDQM_LOG_NUM, NULL, 0, (double)(v) })

/* Open a log at level (records below it are dropped) in format, appending
 * to the file at path (made with mode 0640 if missing), or writing to
 * standard error when path is NULL.  PDQM_ERR_IO (the system's reason) when
 * the file cannot be opened.  Close with pdqm_log_close(). */
pdqm_status pdqm_log_open(const char *path, pdqm_log_level level, pdqm_log_format format,
                          pdqm_log **out, pdqm_error *err);

/* Open the file again at its path (after logrotate moved it) and write
 * there from now on; records being written meanwhile go to one file or
 * the other, whole.  Nothing to do for standard error.  On failure
 * (PDQM_ERR_IO) the log keeps writing where it did. */
pdqm_status pdqm_log_reopen(pdqm_log *log, pdqm_error *err);

/* Close; NULL does nothing. */
void pdqm_log_close(pdqm_log *log);

/* Whether a record at level would be written (NULL: a log that takes
 * nothing). */
int pdqm_log_wants(const pdqm_log *log, pdqm_log_level level);

/* Write one record (message msg, fields f[0..n-1]) when level is wanted.
 * Texts are escaped (JSON) or quoted (text) as needed; bytes that are not
 * UTF-8 become U+FFFD.  A write that fails is dropped: the log never stops
 * the service. */
void pdqm_log_record(pdqm_log *log, pdqm_log_level level, const char *msg,
                     const pdqm_log_field *f, size_t n);

/* pdqm_log_record() for records of a high rate (the access log): the line
 * goes to a buffer written out at most 0.1 s later, when 64 KiB have
 * gathered, before any record of pdqm_log_record() (so the order holds),
 * and at a reopen or close.  One write(2) for many records; a crash may
 * lose the last tenth of a second of them. */
void pdqm_log_record_deferred(pdqm_log *log, pdqm_log_level level, const char *msg,
                              const pdqm_log_field *f, size_t n);

/* A record with fields given in place, formatted only when wanted:
 * PDQM_LOG(log, PDQM_LOG_INFO, "started", PDQM_LOG_S("store", path)). */
#define PDQM_LOG(log, level, msg, ...)                                           \
    do {                                                                         \
        if (pdqm_log_wants((log), (level))) {                                    \
            const pdqm_log_field pdqm_log_f_[] = { __VA_ARGS__ };                \
            pdqm_log_record((log), (level), (msg), pdqm_log_f_,                  \
                            sizeof pdqm_log_f_ / sizeof pdqm_log_f_[0]);         \
        }                                                                        \
    } while (0)

/* "debug", "info", "warn", "error" to a level, and back; -1 / NULL when
 * unknown. */
int pdqm_log_level_parse(const char *name);
const char *pdqm_log_level_name(pdqm_log_level level);

#endif
