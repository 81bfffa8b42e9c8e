/* test_output.c: guest output and kiln's log never block on a slow reader: util/outfd per kind
 * of fd, the output sink's ring, flush, drops and drain, the log, and virtio-console's flood. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_driver.h"
#include "util/log.h"
#include "util/outfd.h"
#include "vmm/event.h"
#include "vmm/output.h"

#define WATCHDOG_S 20

/* A write that blocks never returns: the alarm turns that into a failure, not a hang. */
static void watchdog_fired(int sig)
{
	static const char msg[] = "test_output: a write blocked\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	(void)sig;
	_exit(1);
}

static void watchdog(unsigned seconds)
{
	signal(SIGALRM, watchdog_fired);
	alarm(seconds);
}

static int fl(int fd) { return fcntl(fd, F_GETFL); }

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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

/* ---- the output sink ---------------------------------------------------------------------- */

struct sink {
	struct event_loop ev;
	struct output o;
	int p[2];
};

/* An output on a blocking pipe (as kiln's stdout), read end non-blocking for the test. */
static void sink_open(struct sink *k)
{
	char err[128];

	assert_int_equal(event_loop_init(&k->ev), 0);
	assert_int_equal(pipe2(k->p, O_CLOEXEC), 0);
	assert_int_equal(fcntl(k->p[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(output_open(&k->o, "test", k->p[1], &k->ev, err, sizeof(err)), 0);
}

static void sink_close(struct sink *k)
{
	output_close(&k->o);
	event_loop_destroy(&k->ev);
	if (k->p[0] >= 0)
		close(k->p[0]);
	close(k->p[1]);
}

static struct output_stats stats(struct output *o)
{
	struct output_stats st;
	output_get_stats(o, &st);
	return st;
}

static uint8_t pat(size_t i) { return (uint8_t)((i * 131 + (i >> 9)) & 0xff); }

/* Write n pattern bytes from *at in chunks of a page (a pipe takes whole pages of them). */
static void put(struct output *o, size_t *at, size_t n)
{
	uint8_t buf[4096];

	watchdog(WATCHDOG_S);
	while (n) {
		size_t c = n < sizeof(buf) ? n : sizeof(buf);
		for (size_t i = 0; i < c; i++)
			buf[i] = pat(*at + i);
		output_write(o, buf, c);
		*at += c;
		n -= c;
	}
	alarm(0);
}

/* The reader leaves while the output is idle: EPOLLERR ends it, once; the loop goes quiet
 * (an fd without a reader polls EPOLLERR forever, so it must have left the epoll set). */
static void test_output_reader_gone(void **state)
{
	struct sink k;

	sink_open(&k);
	close(k.p[0]);
	k.p[0] = -1;
	log_set_level(LOG_OFF);
	assert_int_equal(event_loop_run_once(&k.ev, 1000), 1);
	assert_int_equal(stats(&k.o).errors, 1);
	assert_int_equal(event_loop_run_once(&k.ev, 50), 0);
	output_write(&k.o, "lost", 4);
	log_set_level(LOG_WARN);
	assert_int_equal(stats(&k.o).dropped, 4);
	assert_int_equal(stats(&k.o).bytes, 0);
	assert_int_equal(stats(&k.o).errors, 1);
	sink_close(&k);
}

struct slow_reader {
	int fd;
	unsigned delay_ms;
	size_t got;
	bool in_order;
};

static void *slow_read(void *arg)
{
	struct slow_reader *r = arg;
	uint8_t buf[4096];

	usleep(r->delay_ms * 1000);
	fcntl(r->fd, F_SETFL, 0); /* blocking: read until the writer closes */
	for (;;) {
		ssize_t n = read(r->fd, buf, sizeof(buf));
		if (n <= 0)
			return NULL;
		for (ssize_t i = 0; i < n; i++)
			r->in_order &= buf[i] == pat(r->got + (size_t)i);
		r->got += (size_t)n;
	}
}

/* At the end: the backlog waits for a reader that comes within the time given, and a reader
 * that never comes costs that time at most, the backlog counted as dropped. */
static void test_output_drain(void **state)
{
	struct sink k;
	size_t at = 0;
	int pipe_size;

	sink_open(&k);
	pipe_size = fcntl(k.p[1], F_GETPIPE_SZ);
	log_set_level(LOG_OFF);
	put(&k.o, &at, (size_t)pipe_size + OUTPUT_RING_SIZE);
	struct output_stats st0 = stats(&k.o);
	assert_int_equal(st0.bytes, (uint64_t)pipe_size);
	assert_int_equal(st0.backlog, OUTPUT_RING_SIZE);
	assert_int_equal(st0.dropped, 0);

	struct slow_reader r = {.fd = k.p[0], .delay_ms = 50, .in_order = true};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, slow_read, &r), 0);
	uint64_t t0 = now_ms();
	output_drain(&k.o, 5000);
	assert_true(now_ms() - t0 < 5000);
	assert_int_equal(stats(&k.o).backlog, 0);
	assert_int_equal(stats(&k.o).dropped, st0.dropped);
	assert_int_equal(stats(&k.o).bytes, st0.bytes + OUTPUT_RING_SIZE);
	output_close(&k.o); /* our private writer goes; the reader sees EOF once p[1] goes too */
	close(k.p[1]);
	k.p[1] = -1;
	pthread_join(t, NULL);
	assert_int_equal(r.got, st0.bytes + OUTPUT_RING_SIZE);
	assert_true(r.in_order);

	/* Nobody reads: drain gives up after its time. */
	struct sink q;
	sink_open(&q);
	at = 0;
	put(&q.o, &at, (size_t)pipe_size + OUTPUT_RING_SIZE + 10);
	st0 = stats(&q.o);
	assert_int_equal(st0.backlog, OUTPUT_RING_SIZE);
	t0 = now_ms();
	output_drain(&q.o, 100);
	uint64_t took = now_ms() - t0;
	log_set_level(LOG_WARN);
	print_message("drain with no reader: %llu ms\n", (unsigned long long)took);
	assert_true(took >= 100 && took < 1000);
	assert_int_equal(stats(&q.o).backlog, 0);
	assert_int_equal(st0.dropped, 10);
	assert_int_equal(stats(&q.o).dropped, 10 + OUTPUT_RING_SIZE);
	assert_int_equal(stats(&q.o).bytes, st0.bytes);
	sink_close(&q);
	event_loop_destroy(&k.ev);
	close(k.p[0]);
}

/*
 * A stream through a socket whose reader is slow, from a writer that respects the ring (it
 * writes only what the ring has room for, and runs the event loop otherwise): writes of random
 * sizes and iovec counts, partial socket writes, the ring wrapping and flushed in pieces on
 * EPOLLOUT. Nothing is dropped, so what arrives must be exactly what was sent.
 */
#define STREAM_BYTES (2u << 20)
static uint8_t sent[STREAM_BYTES], recvd[STREAM_BYTES];

struct stream_reader {
	int fd;
	size_t got;
};

static void *stream_read(void *arg)
{
	struct stream_reader *r = arg;
	unsigned seed = 7;

	for (;;) {
		size_t want = 1 + (size_t)rand_r(&seed) % 3000;
		if (want > STREAM_BYTES - r->got)
			want = STREAM_BYTES - r->got;
		if (!want)
			return NULL;
		ssize_t n = read(r->fd, recvd + r->got, want);
		if (n <= 0)
			return NULL;
		r->got += (size_t)n;
		if (rand_r(&seed) % 4 == 0)
			usleep(200);
	}
}

static void test_output_stream(void **state)
{
	struct event_loop ev;
	struct output o;
	struct stream_reader r = {0};
	char err[128];
	int sv[2], small = 16384;
	unsigned seed = 12345, waits = 0;
	size_t at = 0, most = 0;
	pthread_t t;

	for (size_t i = 0; i < STREAM_BYTES; i++)
		sent[i] = (uint8_t)rand_r(&seed);
	assert_int_equal(event_loop_init(&ev), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	assert_int_equal(output_open(&o, "stream", sv[0], &ev, err, sizeof(err)), 0);
	r.fd = sv[1];
	assert_int_equal(pthread_create(&t, NULL, stream_read, &r), 0);

	watchdog(WATCHDOG_S);
	while (at < STREAM_BYTES) {
		struct iovec v[3];
		unsigned n = 1 + (unsigned)rand_r(&seed) % 3;
		size_t total = 0;

		for (unsigned i = 0; i < n; i++) {
			size_t len = (size_t)rand_r(&seed) % 1300;
			if (len > STREAM_BYTES - at - total)
				len = STREAM_BYTES - at - total;
			v[i] = (struct iovec){sent + at + total, len};
			total += len;
		}
		struct output_stats st = stats(&o);
		most = st.backlog > most ? st.backlog : most;
		while (stats(&o).backlog + total > OUTPUT_RING_SIZE) {
			event_loop_run_once(&ev, 100); /* EPOLLOUT: the reader made room */
			waits++;
		}
		output_writev(&o, v, n);
		at += total;
	}
	output_drain(&o, 5000);
	alarm(0);
	struct output_stats st = stats(&o);
	output_close(&o);
	shutdown(sv[0], SHUT_WR);
	pthread_join(t, NULL);
	print_message("stream: %zu bytes, backlog up to %zu, %u waits for EPOLLOUT\n", at, most,
		      waits);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.bytes, STREAM_BYTES);
	assert_true(most > OUTPUT_RING_SIZE / 2); /* the ring was used, not only direct writes */
	assert_true(waits > 0);
	assert_int_equal(r.got, STREAM_BYTES);
	assert_memory_equal(recvd, sent, STREAM_BYTES);
	close(sv[0]);
	close(sv[1]);
	event_loop_destroy(&ev);
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

/* ---- virtio-console: hvc0 flooding a pipe nobody reads ------------------------------------ */

#define CON_TXQ 1
#define CON_QSIZE 16
#define CON_CHAIN 4096
#define CON_CHAINS 256 /* 1 MiB */

static void test_console_flood(void **state)
{
	struct fake_driver f;
	struct event_loop ev;
	struct virtio_dev *d;
	char err[128];
	int p[2];
	uint32_t id, len;
	size_t at = 0;

	assert_int_equal(fd_init(&f), 0);
	assert_int_equal(event_loop_init(&ev), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0); /* blocking, as kiln's stdout */
	int pipe_size = fcntl(p[1], F_GETPIPE_SZ);
	struct virtio_env env = {.mem = &f.mem, .ev = &ev};
	assert_int_equal(virtio_console_create(&env, -1, p[1], &d, err, sizeof(err)), 0);
	assert_int_equal(fl(p[1]) & O_NONBLOCK, 0);
	assert_true(fd_start(&f, d, CON_TXQ, CON_QSIZE, BIT_ULL(VIRTIO_F_VERSION_1)) &
		    VIRTIO_STATUS_DRIVER_OK);

	log_set_level(LOG_OFF);
	watchdog(WATCHDOG_S);
	uint64_t t0 = now_ms();
	for (unsigned c = 0; c < CON_CHAINS; c += CON_QSIZE) {
		fd_reset_heap(&f);
		for (unsigned i = 0; i < CON_QSIZE; i++) {
			struct fd_buf b = {fd_alloc(&f, CON_CHAIN), CON_CHAIN, false};
			uint8_t *h = fd_hva(&f, b.gpa);

			for (size_t j = 0; j < CON_CHAIN; j++)
				h[j] = pat(((size_t)c + i) * CON_CHAIN + j);
			fd_submit(&f, fd_chain(&f, &b, 1));
		}
		fd_kick(&f); /* the event loop's kick handler */
		for (unsigned i = 0; i < CON_QSIZE; i++) {
			assert_true(fd_used(&f, &id, &len)); /* every chain back at once */
			assert_int_equal(len, 0);
		}
	}
	alarm(0);
	log_set_level(LOG_WARN);
	print_message("console flood: %u KiB in %llu ms\n", CON_CHAINS * CON_CHAIN / 1024,
		      (unsigned long long)(now_ms() - t0));
	assert_false(d->status & VIRTIO_STATUS_NEEDS_RESET);
	struct output_stats st = stats(virtio_console_output(d));
	assert_int_equal(st.bytes, (uint64_t)pipe_size);
	assert_int_equal(st.backlog, OUTPUT_RING_SIZE);
	assert_int_equal(st.dropped,
			 (uint64_t)CON_CHAINS * CON_CHAIN - (uint64_t)pipe_size - OUTPUT_RING_SIZE);

	/* A reader comes: the first bytes, then the backlog from the event loop, in order. */
	static uint8_t buf[65536];
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	for (ssize_t n; (n = read(p[0], buf, sizeof(buf))) > 0; at += (size_t)n)
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], pat(at + (size_t)i));
	assert_int_equal(at, (size_t)pipe_size);
	assert_true(event_loop_run_once(&ev, 1000) > 0);
	for (ssize_t n; (n = read(p[0], buf, sizeof(buf))) > 0; at += (size_t)n)
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(buf[i], pat(at + (size_t)i));
	assert_int_equal(at, (size_t)pipe_size + OUTPUT_RING_SIZE);

	/* Output flows again. */
	fd_reset_heap(&f);
	struct fd_buf b = {fd_alloc(&f, 6), 6, false};
	memcpy(fd_hva(&f, b.gpa), "after\n", 6);
	fd_submit(&f, fd_chain(&f, &b, 1));
	fd_kick(&f);
	assert_true(fd_used(&f, &id, &len));
	assert_int_equal(read(p[0], buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "after\n", 6);

	virtio_dev_destroy(d);
	event_loop_destroy(&ev);
	fd_destroy(&f);
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
	    cmocka_unit_test(test_output_reader_gone),
	    cmocka_unit_test(test_output_drain),
	    cmocka_unit_test(test_output_stream),
	    cmocka_unit_test(test_log_never_blocks),
	    cmocka_unit_test(test_console_flood),
	};

	signal(SIGPIPE, SIG_IGN); /* as kiln's main: a reader going away is EPIPE */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
