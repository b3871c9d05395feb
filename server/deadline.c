/*
 * deadline.c - the header deadline: a connection that has not sent a whole
 * request head within header_timeout seconds of its start (or of the end
 * of its previous request) is closed.
 *
 * libmicrohttpd's own timeout is an idle one: a client sending one header
 * byte a second is never idle, and a few such clients hold every
 * connection.  So each connection is listed (libmicrohttpd's connection
 * notifications), marked busy from its request's first call (the head is
 * in) to its completion, and a watcher thread shuts down the socket of any
 * connection waiting past the deadline; libmicrohttpd then sees the end of
 * the stream and closes it.  The list's lock is held from the check to the
 * shutdown, and a connection leaves the list (closed notification) before
 * libmicrohttpd closes its descriptor, so the descriptor shut down is
 * always that connection's.
 */
#define _POSIX_C_SOURCE 200809L
#include "server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

typedef struct watched {
    struct watched *prev, *next;
    int fd;
    _Atomic int busy;        /* its head is in: a request is being answered */
    _Atomic double since;    /* monotonic seconds it has been waiting from */
    int cut;                 /* shut down already */
} watched;

struct pdqm_deadlines {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    watched *head;
    double timeout;          /* seconds */
    int stop;
    pthread_t thread;
    _Atomic unsigned long long closed;   /* connections cut at the deadline */
};

static void *watch(void *arg)
{
    pdqm_deadlines *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        struct timespec until;
        pdqm_realtime_in(200 * 1000 * 1000L, &until);
        pthread_cond_timedwait(&d->wake, &d->lock, &until);
        double now = pdqm_monotonic_seconds();
        for (watched *w = d->head; w && !d->stop; w = w->next)
            if (!w->cut && !atomic_load(&w->busy) && now - atomic_load(&w->since) > d->timeout) {
                shutdown(w->fd, SHUT_RDWR);
                w->cut = 1;
                atomic_fetch_add(&d->closed, 1);
            }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

pdqm_deadlines *pdqm_deadlines_start(double timeout)
{
    pdqm_deadlines *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->timeout = timeout;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    if (pthread_create(&d->thread, NULL, watch, d) != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}

void pdqm_deadlines_stop(pdqm_deadlines *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    /* libmicrohttpd has closed every connection (and so emptied the list)
     * before this is called. */
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

unsigned long long pdqm_deadlines_closed(const pdqm_deadlines *d)
{
    return d ? atomic_load(&d->closed) : 0;
}

void pdqm_deadlines_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                           enum MHD_ConnectionNotificationCode code)
{
    pdqm_deadlines *d = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        watched *w = ci ? calloc(1, sizeof *w) : NULL;
        *socket_context = w;
        if (w == NULL)
            return;   /* unwatched: only its idle timeout applies */
        w->fd = ci->connect_fd;
        atomic_store(&w->since, pdqm_monotonic_seconds());
        pthread_mutex_lock(&d->lock);
        w->next = d->head;
        if (d->head)
            d->head->prev = w;
        d->head = w;
        pthread_mutex_unlock(&d->lock);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        watched *w = *socket_context;
        if (w == NULL)
            return;
        pthread_mutex_lock(&d->lock);
        if (w->prev)
            w->prev->next = w->next;
        else
            d->head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&d->lock);
        free(w);
        *socket_context = NULL;
    }
}

/* The watched entry of c, or NULL. */
static watched *entry_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void pdqm_deadlines_head_in(struct MHD_Connection *c)
{
    watched *w = entry_of(c);
    if (w)
        atomic_store(&w->busy, 1);
}

void pdqm_deadlines_request_done(struct MHD_Connection *c)
{
    watched *w = entry_of(c);
    if (w) {
        atomic_store(&w->since, pdqm_monotonic_seconds());
        atomic_store(&w->busy, 0);
    }
}
