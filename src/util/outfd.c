/* outfd.c: non-blocking writers for inherited fds that leave the shared file flags alone. */
#include "util/outfd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The fallback's record of shared descriptions made non-blocking. A signal handler reads it
 * without the lock: an entry is filled in before `used` counts it. */
#define SHARED_MAX 8
static struct {
	volatile sig_atomic_t fd; /* -1: free */
	volatile sig_atomic_t flags;
} g_shared[SHARED_MAX] = {[0 ... SHARED_MAX - 1] = {.fd = -1}};
static pthread_mutex_t g_shared_lock = PTHREAD_MUTEX_INITIALIZER;

static const int fatal_signals[] = {SIGSEGV, SIGBUS,  SIGABRT, SIGFPE, SIGILL,
				    SIGQUIT, SIGTERM, SIGINT,  SIGHUP};
static struct sigaction g_old_action[ARRAY_SIZE(fatal_signals)];

void outfd_restore_shared(void)
{
	for (unsigned i = 0; i < SHARED_MAX; i++) {
		int fd = g_shared[i].fd;

		if (fd >= 0)
			fcntl(fd, F_SETFL, (int)g_shared[i].flags);
	}
}

/* Put the flags back, then let the handler we replaced (or the default action) have it. */
static void fatal_signal(int sig)
{
	outfd_restore_shared();
	for (unsigned i = 0; i < ARRAY_SIZE(fatal_signals); i++)
		if (fatal_signals[i] == sig)
			sigaction(sig, &g_old_action[i], NULL);
	raise(sig);
}

/* Once, with the first fallback: restore at exit and on the signals that end the process. A
 * signal kiln ignores or takes by signalfd (blocked) never reaches the handler. */
static void install_hooks(void)
{
	static bool installed;
	struct sigaction sa = {.sa_handler = fatal_signal};

	if (installed)
		return;
	installed = true;
	atexit(outfd_restore_shared);
	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < ARRAY_SIZE(fatal_signals); i++) {
		struct sigaction *old = &g_old_action[i];

		if (sigaction(fatal_signals[i], NULL, old) == 0 && old->sa_handler != SIG_IGN)
			sigaction(fatal_signals[i], &sa, NULL);
	}
}

/* Set O_NONBLOCK on fd's shared description, remembering its flags. */
static int share_nonblocking(struct outfd *o, int fd, int flags)
{
	unsigned i;

	pthread_mutex_lock(&g_shared_lock);
	for (i = 0; i < SHARED_MAX && g_shared[i].fd >= 0; i++)
		continue;
	if (i == SHARED_MAX) {
		pthread_mutex_unlock(&g_shared_lock);
		return -ENOSPC;
	}
	install_hooks();
	g_shared[i].flags = flags;
	g_shared[i].fd = fd;
	pthread_mutex_unlock(&g_shared_lock);
	if (fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		int e = errno;

		pthread_mutex_lock(&g_shared_lock);
		g_shared[i].fd = -1;
		pthread_mutex_unlock(&g_shared_lock);
		return -e;
	}
	o->shared_fd = fd;
	o->shared_flags = flags;
	return 0;
}

static void unshare_flags(struct outfd *o)
{
	pthread_mutex_lock(&g_shared_lock);
	for (unsigned i = 0; i < SHARED_MAX; i++) {
		if (g_shared[i].fd == o->shared_fd) {
			fcntl(o->shared_fd, F_SETFL, o->shared_flags);
			g_shared[i].fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&g_shared_lock);
	o->shared_fd = -1;
}

/* A new description of the pipe or device behind fd, for kiln alone. */
static int private_open(int fd, const struct stat *want)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int p = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (p < 0)
		return -errno;
	/* The same object (not whatever /proc shows on a system that mounts it oddly). */
	if (fstat(p, &st) < 0 || st.st_dev != want->st_dev || st.st_ino != want->st_ino ||
	    st.st_rdev != want->st_rdev) {
		close(p);
		return -ENXIO;
	}
	return p;
}

int outfd_open(struct outfd *o, int fd)
{
	struct stat st;
	int flags;

	*o = (struct outfd){.open = true, .fd = -1, .shared_fd = -1};
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || (flags = fcntl(fd, F_GETFL)) < 0)
		return -errno;
	o->fd = fd;
	if (S_ISSOCK(st.st_mode))
		o->sock = o->pollable = true;
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return 0;
	o->pollable = true;
	/* Already non-blocking: kiln opened it so (util/file.h), or its owner wants it so. */
	if (flags & O_NONBLOCK)
		return 0;
	int p = private_open(fd, &st);
	if (p >= 0) {
		o->fd = p;
		o->own = true;
		return 0;
	}
	int ret = share_nonblocking(o, fd, flags);
	if (ret)
		o->fd = -1;
	return ret;
}

int outfd_dup(struct outfd *o)
{
	int d = fcntl(o->fd, F_DUPFD_CLOEXEC, 3);

	if (d < 0)
		return -errno;
	if (o->own)
		close(o->fd);
	o->fd = d;
	o->own = true;
	return 0;
}

ssize_t outfd_writev(const struct outfd *o, const struct iovec *iov, int n)
{
	struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};

	if (o->fd < 0)
		return -EBADF;
	for (;;) {
		ssize_t w = o->sock ? sendmsg(o->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
				    : writev(o->fd, iov, n);
		if (w >= 0)
			return w;
		if (errno == EINTR) /* a signal, not a wait: a non-blocking write does not sleep */
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

void outfd_close(struct outfd *o)
{
	if (!o->open)
		return;
	if (o->own)
		close(o->fd);
	if (o->shared_fd >= 0)
		unshare_flags(o);
	*o = (struct outfd){.fd = -1, .shared_fd = -1};
}
