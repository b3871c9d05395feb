/*
 * schedule.c - fetching every exchange in the background (exchange.h,
 * "In the background").
 */
#define _POSIX_C_SOURCE 200809L
#include "exchange_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pdqm_exchange_scheduler {
    pdqm_writer w;
    double interval;
    pdqm_exchange_fetch_options o;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int stop;
    int kicked;
    char kick_name[PDQM_BANK_NAME_MAX + 1];   /* "" : all */
    atomic_int busy;
};

static void one_round(pdqm_exchange_scheduler *s, const char *only)
{
    pdqm_exchange_info *all;
    size_t n;
    pdqm_error err;
    if (pdqm_exchange_list(s->w.store, &all, &n, &err) != PDQM_OK) {
        if (s->o.log)
            s->o.log(s->o.log_arg, PDQM_XLOG_WARN, "-", err.message);
        return;
    }
    for (size_t i = 0; i < n && !atomic_load(&s->stop); i++) {
        if (only && strcmp(only, all[i].config.name) != 0)
            continue;
        pdqm_status st = pdqm_exchange_fetch(&s->w, all[i].config.name, &s->o, NULL, &err);
        if (st == PDQM_ERR_BUSY && s->o.log)
            s->o.log(s->o.log_arg, PDQM_XLOG_INFO, all[i].config.name, err.message);
        /* (Other failures were reported by the fetch, and are in its status.) */
    }
    pdqm_exchange_infos_free(all, n);
}

static void *main_loop(void *arg)
{
    pdqm_exchange_scheduler *s = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);   /* the first round at once */
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!atomic_load(&s->stop) && !s->kicked) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > next.tv_sec ||
                (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec))
                break;
            pthread_cond_timedwait(&s->wake, &s->lock, &next);
        }
        char only[PDQM_BANK_NAME_MAX + 1];
        int kicked = s->kicked;
        memcpy(only, s->kick_name, sizeof only);
        s->kicked = 0;
        s->kick_name[0] = '\0';
        pthread_mutex_unlock(&s->lock);
        if (atomic_load(&s->stop))
            break;
        atomic_store(&s->busy, 1);
        one_round(s, kicked && only[0] ? only : NULL);
        atomic_store(&s->busy, 0);
        if (!kicked || !only[0]) {
            clock_gettime(CLOCK_MONOTONIC, &next);
            time_t whole = (time_t)s->interval;
            next.tv_sec += whole;
            next.tv_nsec += (long)((s->interval - (double)whole) * 1e9);
            if (next.tv_nsec >= 1000000000L) {
                next.tv_sec++;
                next.tv_nsec -= 1000000000L;
            }
        }
    }
    return NULL;
}

pdqm_status pdqm_exchange_scheduler_start(const pdqm_writer *w, double interval,
                                          const pdqm_exchange_fetch_options *o,
                                          pdqm_exchange_scheduler **out, pdqm_error *err)
{
    *out = NULL;
    if (w->store == NULL || !(interval > 0))
        return pdqm_error_set(err, PDQM_ERR_INVALID, "a fetch interval over 0 and a store");
    pdqm_exchange_scheduler *s = calloc(1, sizeof *s);
    if (s == NULL)
        return pdqm_error_set(err, PDQM_ERR_NOMEM, "out of memory");
    s->w = *w;
    s->interval = interval;
    if (o)
        s->o = *o;
    else
        pdqm_exchange_fetch_options_default(&s->o);
    s->o.stop = &s->stop;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&s->thread, NULL, main_loop, s);
    if (rc != 0) {
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return pdqm_error_set(err, PDQM_ERR_INTERNAL, "cannot start the fetcher: %s",
                              strerror(rc));
    }
    *out = s;
    return PDQM_OK;
}

void pdqm_exchange_scheduler_kick(pdqm_exchange_scheduler *s, const char *name)
{
    pthread_mutex_lock(&s->lock);
    if (s->kicked && s->kick_name[0] && (name == NULL || strcmp(name, s->kick_name) != 0))
        s->kick_name[0] = '\0';           /* two different asks: all of them */
    else if (!s->kicked && name)
        snprintf(s->kick_name, sizeof s->kick_name, "%s", name);
    else if (name == NULL)
        s->kick_name[0] = '\0';
    s->kicked = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

int pdqm_exchange_scheduler_busy(pdqm_exchange_scheduler *s)
{
    return atomic_load(&s->busy);
}

double pdqm_exchange_scheduler_interval(const pdqm_exchange_scheduler *s)
{
    return s->interval;
}

void pdqm_exchange_scheduler_stop(pdqm_exchange_scheduler *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, 1);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
