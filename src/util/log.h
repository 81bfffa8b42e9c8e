/* log.h: levelled logging with a subsystem prefix and rate limiting for guest-triggered events. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/compiler.h"

/* LOG_OFF drops every line (the API's level "Off"); LOG_TRACE is the API's "Trace". */
enum log_level { LOG_OFF = -1, LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

/* Set the threshold (messages above it are dropped) and the instance id shown on each line. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_id(const char *id);
/* Redirect log output to fd (default 2). The fd is not closed by the logger. Lines go out
 * through a non-blocking writer of the logger's own (util/outfd.h), so logging never waits for
 * a slow reader: a line that does not fit is dropped, and the next one says how many were. */
void log_set_fd(int fd);
/* The fd log lines go to, read without the lock: for a signal handler's last line
 * (sandbox/seccomp.c), which writes it with write(2) itself. */
int log_get_fd(void);
/* Open the writer for the log fd now rather than at the first line (sandbox/seccomp.c). */
void log_prepare(void);
/* Which fields the line prefix shows: the level and the file:line origin (both on by
 * default; the API's logger turns them off unless asked). */
void log_set_show(bool show_level, bool show_origin);
/* Only log lines whose source path contains filter (NULL or "": every line). The string
 * is copied (at most 63 bytes). */
void log_set_filter(const char *filter);

void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...) __printf(4, 5);

#define log_err(...) log_msg(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define log_trace(...) log_msg(LOG_TRACE, __FILE__, __LINE__, __VA_ARGS__)

/* Token bucket for messages a guest can trigger: at most `burst` lines, refilled one per
 * `interval_ms`. Declare one `static struct log_ratelimit` per call site. */
struct log_ratelimit {
	uint64_t last_ms;
	uint32_t tokens;
	uint32_t suppressed;
};
bool log_ratelimit_ok(struct log_ratelimit *rl, uint32_t burst, uint32_t interval_ms);

#define log_warn_ratelimited(...)                                                                  \
	do {                                                                                       \
		static struct log_ratelimit rl__;                                                  \
		if (log_ratelimit_ok(&rl__, 10, 1000))                                             \
			log_warn(__VA_ARGS__);                                                     \
	} while (0)

#define log_once(level, ...)                                                                       \
	do {                                                                                       \
		static int once__;                                                         \
		if (!__atomic_exchange_n(&once__, 1, __ATOMIC_RELAXED))                            \
			log_msg(level, __FILE__, __LINE__, __VA_ARGS__);                           \
	} while (0)
