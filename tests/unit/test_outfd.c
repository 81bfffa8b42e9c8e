/* test_outfd.c: util/outfd never sleeps and leaves shared file flags alone, per kind of fd
 * (pipe, terminal, socket, file, the fallback and its restore on exit and abort); kiln's log,
 * which writes through it, never blocks on a full stderr. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/log.h"
#include "util/outfd.h"
#include "watchdog.h"

static int fl(int fd) { return fcntl(fd, F_GETFL); }

/* Write through o until the fd is full; returns the bytes it took. */
static size_t fill(const struct outfd *o)
{
	static char junk[4096];
	struct iovec v = {junk, sizeof(junk)};
	size_t total = 0;
	ssize_t w;

	memset(junk, 'j', sizeof(junk));
	watchdog(WATCHDOG_S);
	while ((w = outfd_writev(o, &v, 1)) > 0)
		total += (size_t)w;
	alarm(0);
	assert_int_equal(w, -EAGAIN);
	return total;
}

/* ---- util/outfd: one kind of fd each ------------------------------------------------------ */

static void test_outfd_pipe(void **state)
{
	struct outfd o;
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0); /* blocking: a shell's pipe */
	assert_int_equal(outfd_open(&o, p[1]), 0);
	assert_true(o.own && o.pollable && !o.sock);
	assert_int_not_equal(o.fd, p[1]);
	assert_true(fl(o.fd) & O_NONBLOCK);
	assert_int_equal(fl(p[1]) & O_NONBLOCK, 0); /* the shared description is untouched */
	assert_int_equal(fill(&o), (size_t)fcntl(p[1], F_GETPIPE_SZ));
	outfd_close(&o);
	assert_int_equal(o.fd, -1);
	assert_int_equal(fl(p[1]) & O_NONBLOCK, 0);
	assert_true(fcntl(p[1], F_GETFD) >= 0); /* the caller's fd stays open */
	close(p[0]);
	close(p[1]);
}

/* An already non-blocking fd (kiln's own opens) is written as it is. */
static void test_outfd_nonblocking_as_is(void **state)
{
	struct outfd o;
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(outfd_open(&o, p[1]), 0);
	assert_int_equal(o.fd, p[1]);
	assert_false(o.own);
	assert_int_equal(outfd_dup(&o), 0); /* on demand, a fd of its own */
	assert_true(o.own && o.fd != p[1]);
	outfd_close(&o);
	assert_true(fcntl(p[1], F_GETFD) >= 0);
	close(p[0]);
	close(p[1]);
}

static void test_outfd_tty(void **state)
{
	struct outfd o;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (m < 0 || grantpt(m) || unlockpt(m)) {
		if (m >= 0)
			close(m);
		skip(); /* no /dev/ptmx here */
	}
	int s = open(ptsname(m), O_WRONLY | O_NOCTTY | O_CLOEXEC);
	assert_true(s >= 0);
	assert_int_equal(outfd_open(&o, s), 0);
	assert_true(o.own && o.pollable);
	assert_int_equal(fl(s) & O_NONBLOCK, 0);
	size_t n = fill(&o); /* nobody reads the terminal: it fills, then EAGAIN */
	assert_true(n > 0);
	assert_int_equal(fl(s) & O_NONBLOCK, 0);
	outfd_close(&o);
	close(s);
	close(m);
}

static void test_outfd_socket(void **state)
{
	struct outfd o;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(outfd_open(&o, sv[0]), 0);
	assert_true(o.sock && o.pollable && !o.own);
	assert_true(fill(&o) > 0);
	assert_int_equal(fl(sv[0]) & O_NONBLOCK, 0);
	/* The reader goes: EPIPE, and no SIGPIPE even where it is not ignored. */
	close(sv[1]);
	signal(SIGPIPE, SIG_DFL);
	struct iovec v = {"x", 1};
	assert_int_equal(outfd_writev(&o, &v, 1), -EPIPE);
	signal(SIGPIPE, SIG_IGN);
	outfd_close(&o);
	close(sv[0]);
}

static void test_outfd_regular_and_none(void **state)
{
	struct outfd o;
	char path[] = "/tmp/kiln-outfd-XXXXXX";
	int f = mkstemp(path);
	struct iovec v = {"hello", 5};

	assert_true(f >= 0);
	unlink(path);
	assert_int_equal(outfd_open(&o, f), 0);
	assert_true(!o.own && !o.pollable && o.fd == f);
	assert_int_equal(outfd_writev(&o, &v, 1), 5);
	outfd_close(&o);
	assert_int_equal(lseek(f, 0, SEEK_END), 5);
	close(f);

	assert_int_equal(outfd_open(&o, -1), 0);
	assert_int_equal(o.fd, -1);
	assert_int_equal(outfd_writev(&o, &v, 1), -EBADF);
	outfd_close(&o);
}

/* A blocking write fd of a named FIFO whose reader has gone: a new open of it for writing
 * fails (ENXIO), so outfd must fall back. */
static int orphan_fifo_writer(void)
{
	char dir[] = "/tmp/kiln-outfd-XXXXXX", path[64];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	int r = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int w = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(r >= 0 && w >= 0);
	close(r);
	unlink(path);
	rmdir(dir);
	return w;
}

/* No private open possible: O_NONBLOCK goes on the shared description, and comes off again
 * on close and by outfd_restore_shared(). */
static void test_outfd_fallback(void **state)
{
	struct outfd o;
	int p[2] = {-1, orphan_fifo_writer()};

	assert_int_equal(outfd_open(&o, p[1]), 0);
	assert_false(o.own);
	assert_int_equal(o.shared_fd, p[1]);
	assert_true(fl(p[1]) & O_NONBLOCK);
	struct iovec v = {"x", 1};
	assert_int_equal(outfd_writev(&o, &v, 1), -EPIPE);
	outfd_restore_shared();
	assert_int_equal(fl(p[1]) & O_NONBLOCK, 0);
	fcntl(p[1], F_SETFL, fl(p[1]) | O_NONBLOCK);
	outfd_close(&o);
	assert_int_equal(fl(p[1]) & O_NONBLOCK, 0);
	close(p[1]);
}

/* The shared description is the parent's too (as the shell's is kiln's): whether the child
 * exits or dies on a fatal signal, the parent finds its flags as they were. */
static void fallback_child(int fd, bool crash)
{
	struct outfd o;

	if (outfd_open(&o, fd) || !(fl(fd) & O_NONBLOCK))
		_exit(3);
	if (crash)
		abort();
	exit(0);
}

static void test_outfd_fallback_exit_paths(void **state)
{
	for (int crash = 0; crash < 2; crash++) {
		int p[2] = {-1, orphan_fifo_writer()}, st;

		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			fallback_child(p[1], crash);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (crash)
			assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
		else
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(fl(p[1]) & O_NONBLOCK, 0);
		close(p[1]);
	}
}

/* ---- the log ------------------------------------------------------------------------------ */

/* stderr is a full (blocking) pipe: log lines are dropped at once, and the first line that
 * gets through says how many were lost. */
static void test_log_never_blocks(void **state)
{
	static char buf[70000];
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	log_set_fd(p[1]);
	fcntl(p[1], F_SETFL, O_NONBLOCK); /* fill it, then give it back blocking */
	memset(buf, '.', sizeof(buf));
	while (write(p[1], buf, sizeof(buf)) > 0)
		continue;
	fcntl(p[1], F_SETFL, 0);

	watchdog(WATCHDOG_S);
	for (int i = 0; i < 50; i++)
		log_warn("guest-triggered warning %d", i);
	alarm(0);
	while (read(p[0], buf, sizeof(buf)) > 0)
		continue;
	log_warn("after the stall");
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "kiln: log: 50 lines dropped"));
	assert_non_null(strstr(buf, "after the stall"));
	assert_null(strstr(buf, "guest-triggered"));
	log_set_fd(2);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_outfd_pipe),
	    cmocka_unit_test(test_outfd_nonblocking_as_is),
	    cmocka_unit_test(test_outfd_tty),
	    cmocka_unit_test(test_outfd_socket),
	    cmocka_unit_test(test_outfd_regular_and_none),
	    cmocka_unit_test(test_outfd_fallback),
	    cmocka_unit_test(test_outfd_fallback_exit_paths),
	    cmocka_unit_test(test_log_never_blocks),
	};

	signal(SIGPIPE, SIG_IGN); /* as kiln's main: a reader going away is EPIPE */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
