/* test_output.c: the guest-output sink never blocks on a slow reader: its ring, the flush on
 * EPOLLOUT, drops, a reader that leaves, the final drain, a stream through a slow socket, and
 * virtio-console flooding a pipe nobody reads. */
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_driver.h"
#include "util/log.h"
#include "vmm/event.h"
#include "vmm/output.h"
#include "watchdog.h"
#include "util/clock.h"

static int fl(int fd) { return fcntl(fd, F_GETFL); }

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
/* Output to /dev/null (a daemon's stdout): epoll cannot watch it (EPERM), and kiln must start
 * anyway and write everything there. */
static void test_output_devnull(void **state)
{
	struct event_loop ev;
	struct output o;
	char err[200] = "", buf[10000];
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(event_loop_init(&ev), 0);
	assert_int_equal(output_open(&o, "serial", fd, &ev, err, sizeof(err)), 0);
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 100; i++)
		output_write(&o, buf, sizeof(buf));
	assert_int_equal(stats(&o).bytes, 100 * sizeof(buf));
	assert_int_equal(stats(&o).dropped, 0);
	output_drain(&o, 100);
	output_close(&o);
	event_loop_destroy(&ev);
	close(fd);
}

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
	uint64_t t0 = clock_ms();
	output_drain(&k.o, 5000);
	assert_true(clock_ms() - t0 < 5000);
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
	t0 = clock_ms();
	output_drain(&q.o, 100);
	uint64_t took = clock_ms() - t0;
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
	uint64_t t0 = clock_ms();
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
		      (unsigned long long)(clock_ms() - t0));
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
	    cmocka_unit_test(test_output_reader_gone),
	    cmocka_unit_test(test_output_devnull),
	    cmocka_unit_test(test_output_drain),
	    cmocka_unit_test(test_output_stream),
	    cmocka_unit_test(test_console_flood),
	};

	signal(SIGPIPE, SIG_IGN); /* as kiln's main: a reader going away is EPIPE */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
