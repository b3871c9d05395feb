/*
 * clock.c - see clock.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "clock.h"

#include <time.h>

double pdqm_monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pdqm_realtime_in(long ns, struct timespec *out)
{
    clock_gettime(CLOCK_REALTIME, out);
    out->tv_sec += ns / 1000000000L;
    out->tv_nsec += ns % 1000000000L;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
}
