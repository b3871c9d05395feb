/*
 * log.c - one line a record, text or JSON (log.h).
 *
 * A record is built in a buffer on the stack (LINE_MAX bytes: a longer
 * text is cut, and ends in "..."), then written with one write(2) to a
 * descriptor opened O_APPEND.  Reopening dup2()s the new file onto that
 * descriptor, so writers never see it closed.  Deferred records (the
 * access log) gather in a buffer that a thread of the log's own writes
 * out every 0.1 s; a record written at once first writes out the buffer,
 * under the same lock, so the file keeps the order of the records.
 */
#define _POSIX_C_SOURCE 200809L
#include "log.h"
#include "../hashing/clock.h"
#include "../hashing/utf8.h"
#include "../core/jsontext.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 16384
#define DEFER_BYTES 65536            /* deferred records held at most */
#define DEFER_NS 100000000L          /* ... and for at most 0.1 s */

struct pdqm_log {
    int fd;                  /* 2, or the file's (kept through reopens) */
    char *path;              /* NULL: standard error */
    pdqm_log_level level;
    pdqm_log_format format;
    pthread_mutex_t lock;    /* the buffer, and the order of writes */
    pthread_cond_t wake;
    char *buf;               /* deferred records (DEFER_BYTES), NULL until the first */
    size_t used;
    int flusher;             /* the thread runs */
    int stop;
    pthread_t thread;
};

/* Write n bytes at p; a write that fails is dropped. */
static void write_all(int fd, const char *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;   /* dropped: the log never stops the service */
        off += (size_t)w;
    }
}

/* Write out the deferred records; the lock is held. */
static void flush_locked(pdqm_log *l)
{
    if (l->used) {
        write_all(l->fd, l->buf, l->used);
        l->used = 0;
    }
}

static void *flusher(void *arg)
{
    pdqm_log *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->stop) {
        struct timespec until;
        pdqm_realtime_in(DEFER_NS, &until);
        pthread_cond_timedwait(&l->wake, &l->lock, &until);
        flush_locked(l);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int pdqm_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *pdqm_log_level_name(pdqm_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : NULL;
}

static int open_file(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

pdqm_status pdqm_log_open(const char *path, pdqm_log_level level, pdqm_log_format format,
                          pdqm_log **out, pdqm_error *err)
{
    *out = NULL;
    pdqm_log *l = calloc(1, sizeof *l);
    if (l == NULL || (path && (l->path = strdup(path)) == NULL)) {
        free(l);
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory opening the log");
    }
    l->level = level;
    l->format = format;
    l->fd = 2;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->wake, NULL);
    if (path && (l->fd = open_file(path)) < 0) {
        int e = errno;
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->wake);
        free(l->path);
        free(l);
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot open the log file %s: %s", path,
                              strerror(e));
    }
    *out = l;
    return PDQM_OK;
}

pdqm_status pdqm_log_reopen(pdqm_log *l, pdqm_error *err)
{
    if (l == NULL || l->path == NULL)
        return PDQM_OK;
    pthread_mutex_lock(&l->lock);
    flush_locked(l);          /* what was logged before goes to the old file */
    pthread_mutex_unlock(&l->lock);
    int fd = open_file(l->path);
    if (fd < 0)
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot reopen the log file %s: %s", l->path,
                              strerror(errno));
    int rc = dup2(fd, l->fd);
    int e = errno;
    close(fd);
    if (rc < 0)
        return pdqm_error_set(err, PDQM_ERR_IO, "cannot reopen the log file %s: %s", l->path,
                              strerror(e));
    return PDQM_OK;
}

void pdqm_log_close(pdqm_log *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    if (l->flusher)
        pthread_join(l->thread, NULL);
    if (l->buf)
        write_all(l->fd, l->buf, l->used);
    if (l->path)
        close(l->fd);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->wake);
    free(l->buf);
    free(l->path);
    free(l);
}

int pdqm_log_wants(const pdqm_log *l, pdqm_log_level level)
{
    return l != NULL && level >= l->level;
}

/* ------------------------------------------------------------------ */
/* Building a line                                                      */

typedef struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    int cut;                 /* something did not fit */
} line;

/* Room for the newline, and slack. */
#define LINE_ROOM (LINE_MAX_BYTES - 5)

static void put(line *l, const char *s, size_t n)
{
    if (l->cut)
        return;
    if (n > LINE_ROOM - l->len) {
        n = LINE_ROOM - l->len;
        l->cut = 1;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* s as the inside of a JSON string: quotes, backslashes and control
 * characters escaped, bytes that are not UTF-8 as U+FFFD; past budget
 * bytes of output it ends in "...".  A sequence is never cut in two. */
static void put_escaped(line *l, const char *s, size_t budget)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = l->len;
    while (*p && !l->cut) {
        if (l->len - start > budget) {
            put(l, "...", 3);
            return;
        }
        size_t n = pdqm_utf8_sequence(p);
        char esc[8];
        if (n == 0) {
            put(l, "\xef\xbf\xbd", 3);
            p++;
            continue;
        }
        if (n > 1) {
            if (n > LINE_ROOM - l->len) {
                l->cut = 1;
                return;
            }
            put(l, (const char *)p, n);
            p += n;
            continue;
        }
        unsigned char c = *p++;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\r') {
            put(l, "\\r", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, 6);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

/* A text value in the text format: bare when it is a plain token (or, for
 * the message, plain words: spaces allowed), else quoted as a JSON
 * string.  Either way no '=' is bare, so the fields start at the first. */
static void put_text_value(line *l, const char *s, size_t budget, int words)
{
    int plain = *s != '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
        plain = (*p > 0x20 || (words && *p == ' ')) && *p < 0x7f && *p != '"' && *p != '=' &&
                *p != '\\';
    if (plain && strlen(s) <= budget) {
        puts_(l, s);
        return;
    }
    put(l, "\"", 1);
    put_escaped(l, s, budget);
    put(l, "\"", 1);
}

static void put_number(line *l, const pdqm_log_field *f)
{
    char num[40];
    if (f->type == PDQM_LOG_INT) {
        /* snprintf would cost more than the rest of an access record. */
        put(l, num, pdqm_format_int(f->i, num));
        return;
    }
    if (isfinite(f->d))
        snprintf(num, sizeof num, "%.6g", f->d);
    else
        snprintf(num, sizeof num, "null");
    puts_(l, num);
}

/* The record in l, each text at most about budget bytes. */
static void build(line *l, pdqm_log_format format, const char *ts, const char *lv,
                  const char *msg, const pdqm_log_field *f, size_t n, size_t budget)
{
    l->len = 0;
    l->cut = 0;
    if (format == PDQM_LOG_JSON) {
        puts_(l, "{\"ts\":\"");
        puts_(l, ts);
        puts_(l, "\",\"level\":\"");
        puts_(l, lv);
        puts_(l, "\",\"msg\":\"");
        put_escaped(l, msg, budget);
        put(l, "\"", 1);
        for (size_t i = 0; i < n; i++) {
            if (f[i].type == PDQM_LOG_STR && f[i].s == NULL)
                continue;
            put(l, ",\"", 2);
            put_escaped(l, f[i].name, budget);
            put(l, "\":", 2);
            if (f[i].type == PDQM_LOG_STR) {
                put(l, "\"", 1);
                put_escaped(l, f[i].s, budget);
                put(l, "\"", 1);
            } else {
                put_number(l, &f[i]);
            }
        }
        put(l, "}", 1);
    } else {
        puts_(l, ts);
        put(l, " ", 1);
        puts_(l, lv);
        put(l, " ", 1);
        put_text_value(l, msg, budget, 1);
        for (size_t i = 0; i < n; i++) {
            if (f[i].type == PDQM_LOG_STR && f[i].s == NULL)
                continue;
            put(l, " ", 1);
            puts_(l, f[i].name);
            put(l, "=", 1);
            if (f[i].type == PDQM_LOG_STR)
                put_text_value(l, f[i].s, budget, 0);
            else
                put_number(l, &f[i]);
        }
    }
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of now, in ts (40 bytes); the seconds are
 * formatted once a second a thread. */
static void timestamp(char *ts)
{
    static _Thread_local time_t last = (time_t)-1;
    static _Thread_local char secs[32];
    static _Thread_local size_t secs_len;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != last) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        secs_len = strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm);
        last = now.tv_sec;
    }
    memcpy(ts, secs, secs_len);
    int ms = (int)(now.tv_nsec / 1000000);
    ts[secs_len] = '.';
    ts[secs_len + 1] = (char)('0' + ms / 100);
    ts[secs_len + 2] = (char)('0' + ms / 10 % 10);
    ts[secs_len + 3] = (char)('0' + ms % 10);
    ts[secs_len + 4] = 'Z';
    ts[secs_len + 5] = '\0';
}

/* The record as one line, newline included, in l. */
static void format_record(pdqm_log *log, pdqm_log_level level, const char *msg,
                          const pdqm_log_field *f, size_t n, line *l)
{
    char ts[40];
    timestamp(ts);
    const char *lv = pdqm_log_level_name(level);
    if (lv == NULL)
        lv = "error";
    build(l, log->format, ts, lv, msg, f, n, (size_t)-1);
    if (l->cut) {
        /* Too long: again, with each text cut to its share of the line
         * (names and numbers are short), so the record stays whole. */
        build(l, log->format, ts, lv, msg, f, n, LINE_ROOM / (2 * (n + 2)) - 16);
    }
    l->buf[l->len++] = '\n';
}

/* Format the record and write it now, or (deferred) into the buffer the
 * flusher writes out; a record written now first writes out the buffer,
 * so the file keeps the order. */
static void emit(pdqm_log *log, pdqm_log_level level, const char *msg,
                 const pdqm_log_field *f, size_t n, int deferred)
{
    if (!pdqm_log_wants(log, level))
        return;
    line l;
    format_record(log, level, msg, f, n, &l);
    pthread_mutex_lock(&log->lock);
    if (deferred && log->buf == NULL && !log->stop) {
        log->buf = malloc(DEFER_BYTES);
        if (log->buf && pthread_create(&log->thread, NULL, flusher, log) == 0)
            log->flusher = 1;
    }
    if (deferred && log->flusher) {
        if (log->used + l.len > DEFER_BYTES)
            flush_locked(log);
        memcpy(log->buf + log->used, l.buf, l.len);
        log->used += l.len;
    } else {
        /* At once (or no memory or no thread for the buffer). */
        flush_locked(log);
        write_all(log->fd, l.buf, l.len);
    }
    pthread_mutex_unlock(&log->lock);
}

void pdqm_log_record(pdqm_log *log, pdqm_log_level level, const char *msg,
                     const pdqm_log_field *f, size_t n)
{
    emit(log, level, msg, f, n, 0);
}

void pdqm_log_record_deferred(pdqm_log *log, pdqm_log_level level, const char *msg,
                              const pdqm_log_field *f, size_t n)
{
    emit(log, level, msg, f, n, 1);
}
