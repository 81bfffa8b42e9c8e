/* test_api_clients.c: a real `kiln api` and its clients: byte-by-byte and disconnecting ones,
 * slow ones dropped after 10 s while others are served, the connection limit, another uid,
 * deeply nested bodies, and FIFOs as outputs (none of which may stall the API). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"

static struct kiln k;

static int setup(void **state)
{
	(void)state;
	kiln_prepare(&k);
	kiln_start(&k, true, (const char *const[]){"--id", "clients-test", NULL});
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_cleanup(&k);
	return 0;
}

/* A body with its one "%s" replaced by a path in the test directory. */
static const char *with_path(const char *tmpl, const char *name)
{
	return kiln_body_with_path(&k, tmpl, name);
}

static void test_byte_by_byte(void **state)
{
	const char req[] =
	    "PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
	    "Content-Type: application/json\r\nContent-Length: 37\r\n\r\n"
	    "{\"vcpu_count\": 3, \"mem_size_mib\": 96}";
	struct resp r;
	(void)state;
	int fd = http_connect(k.sock);
	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		assert_int_equal(write(fd, req + i, 1), 1);
		if (i == 40) {
			/* another client is served while this one dribbles */
			http(k.sock, "GET", "/", NULL, &r);
			assert_int_equal(r.status, 200);
		}
		sleep_ms(1);
	}
	http_read(fd, &r);
	close(fd);
	assert_int_equal(r.status, 204);
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 3);
	assert_int_equal(json_int(r.body, "mem_size_mib"), 96);
}

static void test_disconnects(void **state)
{
	const char *parts[] = {
	    "PUT /machine-config HTTP/1.1\r\nHost: lo",
	    "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"vcpu_c",
	    "GET / HTTP/1.1\r\nHost: x\r\n\r\n", /* closes before reading the answer */
	    "\x01\x02garbage\r\n\r\n",
	};
	struct resp r;
	(void)state;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		int fd = http_connect(k.sock);
		assert_int_equal(write(fd, parts[i], strlen(parts[i])), (ssize_t)strlen(parts[i]));
		sleep_ms(20);
		close(fd);
	}
	http_raw(k.sock, "BLAH\r\n\r\n", 8, &r);
	assert_true(r.status == 400 || r.status == -1);
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_int(r.body, "vcpu_count"), 1); /* the half-sent PUT changed nothing */
	/* keep-alive: two requests on one connection */
	const char two[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /version HTTP/1.1\r\nHost: x\r\n"
			   "Connection: close\r\n\r\n";
	http_raw(k.sock, two, sizeof(two) - 1, &r);
	assert_int_equal(r.status, 200);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Has the server closed fd? Waits up to ms for it (EOF or reset after any answer bytes). */
static bool closed_within(int fd, int ms)
{
	char buf[512];
	long long until = now_ms() + ms;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long left = until - now_ms();
		if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
			return false;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
}

/* Outputs that are FIFOs nobody reads yet: PUT /serial, /logger and /metrics answer at once
 * (a blocking open would wait for a reader, and the whole API with it), and the log waits in
 * the pipe for a reader that comes later. */
static void test_fifo_outputs(void **state)
{
	char body[600], buf[4096];
	struct resp r;
	(void)state;
	const char *names[] = {"serial.fifo", "log.fifo", "metrics.fifo"};
	for (int i = 0; i < 3; i++)
		assert_int_equal(mkfifo(kiln_file(&k, names[i]), 0600), 0);
	long long t0 = now_ms();
	expect(k.sock, "PUT", "/serial", with_path("{\"serial_out_path\": \"%s\"}", "serial.fifo"),
	       204, NULL);
	expect(k.sock, "PUT", "/logger",
	       with_path("{\"log_path\": \"%s\", \"level\": \"Info\"}", "log.fifo"), 204, NULL);
	expect(k.sock, "PUT", "/metrics", with_path("{\"metrics_path\": \"%s\"}", "metrics.fifo"),
	       204, NULL);
	http(k.sock, "GET", "/", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(now_ms() - t0 < 2000);
	int fd = open(kiln_file(&k, "log.fifo"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "api: logger configured"));
	/* a directory is not an output */
	snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", k.dir);
	expect(k.sock, "PUT", "/serial", body, 400, ": Is a directory");
}

/* Slow clients hold only their own connection, and only for API_IO_TIMEOUT_MS (10 s): one that
 * stalls in its headers, one that stalls in its body, one that sends nothing, and one that
 * sends a byte every 300 ms (which an idle timeout alone never catches) are all dropped
 * then, while other clients are served at once. */
static void test_slow_clients(void **state)
{
	const char *parts[] = {
	    "PUT /machine-config HTTP/1.1\r\nHos",
	    "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"vcpu",
	    "",
	};
	const char dribble[] = "GET / HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	int fd[4];
	long long dropped_at[4] = {0};
	struct resp r;
	(void)state;
	long long t0 = now_ms();
	for (int i = 0; i < 4; i++) {
		fd[i] = http_connect(k.sock);
		const char *p = i < 3 ? parts[i] : "G";
		assert_int_equal(send(fd[i], p, strlen(p), MSG_NOSIGNAL), (ssize_t)strlen(p));
	}
	size_t sent = 1;
	for (int round = 0; round < 50; round++) { /* 15 s in 300 ms steps */
		if (round % 5 == 0) {
			long long g = now_ms();
			http(k.sock, "GET", "/", NULL, &r);
			assert_int_equal(r.status, 200);
			assert_true(now_ms() - g < 500);
		}
		if (!dropped_at[3] && sent < sizeof(dribble) - 1 &&
		    send(fd[3], dribble + sent, 1, MSG_NOSIGNAL) == 1)
			sent++;
		bool all = true;
		for (int i = 0; i < 4; i++) {
			if (!dropped_at[i] && closed_within(fd[i], i == 0 ? 300 : 0))
				dropped_at[i] = now_ms();
			all = all && dropped_at[i];
		}
		if (all)
			break;
	}
	for (int i = 0; i < 4; i++) {
		close(fd[i]);
		if (!dropped_at[i])
			fail_msg("slow client %d was not dropped within 15 s", i);
		long long after = dropped_at[i] - t0;
		if (after < 9000 || after > 12000)
			fail_msg("slow client %d dropped after %lld ms (expected about 10000)", i,
				 after);
	}
	assert_true(sent < sizeof(dribble) - 1); /* the dribbler never finished its headers */
	/* The watchdog logs after it shut the sockets down: the line may trail the drops. */
	for (int i = 0; i < 300 && !file_contains(k.out, "connection(s) dropped"); i++)
		sleep_ms(10);
	assert_true(file_contains(k.out, "connection(s) dropped"));
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 1); /* the half-sent PUTs changed nothing */
}

/* At most 64 connections: the 65th is closed at once (not left waiting in the backlog), and
 * a connection is served again as soon as one of the 64 goes. */
static void test_connection_limit(void **state)
{
	enum { MAX = 64 };
	int fd[MAX];
	struct resp r;
	(void)state;
	for (int i = 0; i < MAX; i++)
		fd[i] = http_connect(k.sock);
	sleep_ms(500); /* all accepted */
	long long t0 = now_ms();
	int extra = http_connect(k.sock);
	const char get[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	(void)!send(extra, get, sizeof(get) - 1, MSG_NOSIGNAL);
	http_read(extra, &r);
	close(extra);
	assert_int_equal(r.status, -1);
	assert_true(now_ms() - t0 < 2000);
	assert_true(file_contains(k.out, "64 connections open: refusing another"));
	close(fd[0]);
	bool served = false;
	for (int i = 0; i < 40 && !served; i++) {
		sleep_ms(50);
		http(k.sock, "GET", "/", NULL, &r);
		served = r.status == 200;
	}
	assert_true(served);
	for (int i = 1; i < MAX; i++)
		close(fd[i]);
}

/* Same uid only: with the socket opened to everyone, another uid still gets no answer. Needs
 * root (to be another uid); skipped otherwise. */
static void test_other_uid(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	assert_int_equal(chmod(k.dir, 0711), 0);
	assert_int_equal(chmod(k.sock, 0666), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_un sa;
		struct timeval tv = {.tv_sec = 5};
		char buf[256];
		const char get[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
		if (setgid(65534) || setuid(65534))
			_exit(3);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sockaddr_set(&sa, k.sock);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(4);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)!send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL);
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		_exit(n > 0 ? 1 : n == 0 ? 0 : 2); /* 0: closed without an answer */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(file_contains(k.out, "connection from uid 65534 refused"));
	expect(k.sock, "GET", "/", NULL, 200, NULL); /* our own uid still is */
}

/* A body nested 30000 deep is refused by the parser, not by the connection thread's stack. */
static void test_deep_json(void **state)
{
	enum { DEPTH = 30000 };
	char *body = malloc(2 * DEPTH + 1);
	(void)state;
	assert_non_null(body);
	memset(body, '[', DEPTH);
	memset(body + DEPTH, ']', DEPTH);
	body[2 * DEPTH] = '\0';
	expect(k.sock, "PUT", "/machine-config", body, 400, "invalid JSON");
	free(body);
	expect(k.sock, "GET", "/", NULL, 200, NULL);
}

int main(int argc, char **argv)
{
	if (!client_args(argc, argv, false))
		return 2;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_byte_by_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disconnects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fifo_outputs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_clients, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deep_json, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
