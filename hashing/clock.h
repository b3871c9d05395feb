/*
 * clock.h - the one clock that deadlines and timings use.
 */
#ifndef PDQM_CLOCK_H
#define PDQM_CLOCK_H

/* Seconds of CLOCK_MONOTONIC: only differences mean anything. */
double pdqm_monotonic_seconds(void);

/* The CLOCK_REALTIME time ns nanoseconds from now, as
 * pthread_cond_timedwait() takes a deadline. */
struct timespec;
void pdqm_realtime_in(long ns, struct timespec *out);

#endif
