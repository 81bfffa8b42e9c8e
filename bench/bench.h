/* bench.h: helpers shared by the benchmark programs, the in-process ones (blk, net) and the
 * VMM-process harnesses (vmmproc.h) alike (header-only). */
#pragma once

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util/compiler.h"

/* Each program that calls die() defines its name for messages ("blk", "net"). */
extern const char *const bench_name;

/* Print "NAME: message" to stderr and exit 1. */
static inline __printf(1, 2) __noreturn void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", bench_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* CLOCK_MONOTONIC now, in nanoseconds. */
static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
