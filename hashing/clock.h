/*
 * clock.h - the one clock that deadlines and timings use.
 */
#ifndef PDQM_CLOCK_H
#define PDQM_CLOCK_H

/* Seconds of CLOCK_MONOTONIC: only differences mean anything. */
double pdqm_monotonic_seconds(void);

#endif
