/* clock.h: the monotonic clock, in the units kiln's deadlines use, and condition variables
 * that wait on it. */
#pragma once

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "util/compiler.h"

/* CLOCK_MONOTONIC in milliseconds / nanoseconds. */
uint64_t clock_ms(void);
int64_t clock_ns(void);

/* The CLOCK_MONOTONIC time ms milliseconds from now, for pthread_cond_timedwait on a
 * condition variable made by clock_cond_init. */
struct timespec clock_after_ms(unsigned ms);

/* pthread_cond_init with CLOCK_MONOTONIC, so that a timed wait is not moved by changes to
 * the wall clock. Returns 0 or -errno. */
int clock_cond_init(pthread_cond_t *c) __must_check;
