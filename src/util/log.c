/* log.c: levelled logging: "timestamp [id:thread:level:file:line] message" lines on one fd. */
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/outfd.h"
#include "util/clock.h"

/* The level is read on every call without a lock; the rest of the configuration may be
 * changed by the API thread while other threads log, so it is read under g_lock. */
static _Atomic int g_level = LOG_WARN;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_fd = 2;
static char g_id[64] = "kiln";
static bool g_show_level = true, g_show_origin = true;
static char g_filter[64];
/* Lines go out through a writer of our own that never sleeps (util/outfd.h): a guest that
 * triggers warnings while stderr is a full pipe or a stopped terminal must not stall the vCPU
 * or the event loop that logs them. A line that does not fit now is dropped and counted, and
 * the next line that goes out is preceded by a note of how many were lost. */
static struct outfd g_out; /* zeroed: not open yet */
static int g_out_for = -1; /* the g_fd that g_out writes to */
static uint64_t g_dropped; /* lines lost since the last one that went out */

static void out_ready(void);

void log_set_level(enum log_level level)
{
	atomic_store(&g_level, (int)level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&g_level);
}

void log_set_id(const char *id)
{
	pthread_mutex_lock(&g_lock);
	snprintf(g_id, sizeof(g_id), "%s", id);
	pthread_mutex_unlock(&g_lock);
}

void log_set_fd(int fd)
{
	pthread_mutex_lock(&g_lock);
	__atomic_store_n(&g_fd, fd, __ATOMIC_RELAXED);
	outfd_close(&g_out); /* a new fd, even under an old number: open it again */
	g_out_for = -1;
	out_ready();
	pthread_mutex_unlock(&g_lock);
}

int log_get_fd(void)
{
	return __atomic_load_n(&g_fd, __ATOMIC_RELAXED);
}

/* The writer for g_fd, opened at its first use (g_lock held). Opening may reopen the fd's
 * file (outfd_open), which a thread's seccomp filter does not allow: log_prepare does it
 * before the first filter goes on, and log_set_fd at once. */
static void out_ready(void)
{
	if (g_out_for != g_fd) {
		if (outfd_open(&g_out, g_fd))
			outfd_close(&g_out); /* g_fd is not usable (closed?): plain write() below */
		g_out_for = g_fd;
	}
}

void log_prepare(void)
{
	pthread_mutex_lock(&g_lock);
	out_ready();
	pthread_mutex_unlock(&g_lock);
}

/* One line out, or counted as lost (g_lock held). */
static void write_line(const char *line, size_t len)
{
	char note[80];
	struct iovec v[2];
	int k = 0;
	ssize_t w;

	out_ready();
	if (g_dropped) {
		int n = snprintf(note, sizeof(note),
				 "kiln: log: %llu lines dropped: the log's reader is too slow\n",
				 (unsigned long long)g_dropped);
		v[k++] = (struct iovec){.iov_base = note, .iov_len = (size_t)n};
	}
	v[k++] = (struct iovec){.iov_base = (void *)line, .iov_len = len};
	w = g_out.fd >= 0 ? outfd_writev(&g_out, v, k) : writev(g_fd, v, k);
	if (w < 0)
		g_dropped++;
	else if (k == 2 && (size_t)w >= v[0].iov_len)
		g_dropped = 0;
}

void log_set_show(bool show_level, bool show_origin)
{
	pthread_mutex_lock(&g_lock);
	g_show_level = show_level;
	g_show_origin = show_origin;
	pthread_mutex_unlock(&g_lock);
}

void log_set_filter(const char *filter)
{
	pthread_mutex_lock(&g_lock);
	snprintf(g_filter, sizeof(g_filter), "%s", filter ? filter : "");
	pthread_mutex_unlock(&g_lock);
}

static const char *const level_names[] = {
	[LOG_ERROR] = "ERROR",
	[LOG_WARN] = "WARN",
	[LOG_INFO] = "INFO",
	[LOG_DEBUG] = "DEBUG",
	[LOG_TRACE] = "TRACE",
};

void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	char buf[1024];
	char thread[16] = "?";
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level < LOG_ERROR || level > LOG_TRACE || (int)level > atomic_load(&g_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	prctl(PR_GET_NAME, thread);
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;

	pthread_mutex_lock(&g_lock);
	if (g_filter[0] && !strstr(file, g_filter)) {
		pthread_mutex_unlock(&g_lock);
		return;
	}
	n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ [%s:%s", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000,
		     g_id, thread);
	if (n > 0 && g_show_level && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ":%s", level_names[level]);
	if (n > 0 && g_show_origin && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ":%s:%d", base, line);
	pthread_mutex_unlock(&g_lock);
	if (n > 0 && (size_t)n < sizeof(buf))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "] ");
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf)) {
		va_start(ap, fmt);
		int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += m;
	}
	if ((size_t)n >= sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	pthread_mutex_lock(&g_lock);
	write_line(buf, (size_t)n);
	pthread_mutex_unlock(&g_lock);
}

bool log_ratelimit_ok(struct log_ratelimit *rl, uint32_t burst, uint32_t interval_ms)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	bool ok;

	pthread_mutex_lock(&lock);
	uint64_t now = clock_ms();
	if (rl->last_ms == 0) {
		rl->tokens = burst;
		rl->last_ms = now;
	} else if (now - rl->last_ms >= interval_ms) {
		uint64_t refill = (now - rl->last_ms) / interval_ms;
		rl->tokens = (uint32_t)MIN((uint64_t)burst, rl->tokens + refill);
		rl->last_ms = now;
	}
	ok = rl->tokens > 0;
	if (ok)
		rl->tokens--;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&lock);
	return ok;
}
