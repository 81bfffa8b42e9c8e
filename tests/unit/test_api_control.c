/* test_api_control.c: the API without a VM or KVM: requests whose command the main thread does
 * not take, or does not finish, in time (503/504 and the command's lifetime), other clients
 * served beside a stuck one, outputs that are FIFOs, and pre-boot routes refused after start
 * without touching the filesystem. The test plays the main thread. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "util/clock.h"

#define POST_MS 300 /* the tests' post timeout */

static struct api a;
static char dir[] = "/tmp/kiln-test-api-XXXXXX";

static const char *path_in(const char *name)
{
	static char buf[4][128];
	static unsigned i;
	char *p = buf[i++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

/* A call that blocks for good fails the test instead of hanging it. */
static void watchdog(int sig)
{
	static const char msg[] = "test_api_control: watchdog: a call did not return\n";
	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Wait up to ms for a command to sit in the queue (the poster's thread has posted). */
static void wait_queued(int ms)
{
	for (int i = 0; i < ms; i++) {
		pthread_mutex_lock(&a.lock);
		bool queued = a.queue_head != NULL;
		pthread_mutex_unlock(&a.lock);
		if (queued)
			return;
		usleep(1000);
	}
}

static int setup(void **state)
{
	(void)state;
	memset(&a, 0, sizeof(a));
	if (api_queue_init(&a))
		return -1;
	api_config_init(&a.cfg);
	a.metrics_fd = a.log_fd = -1;
	a.cmd_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a.post_timeout_ms = POST_MS;
	snprintf(a.id, sizeof(a.id), "ctl-test");
	alarm(20);
	return a.cmd_efd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	api_config_free(&a.cfg);
	if (a.metrics_fd >= 0)
		close(a.metrics_fd);
	close(a.cmd_efd);
	api_queue_destroy(&a);
	return 0;
}

/* One request through the route table; *fault gets the fault_message's text (or ""). */
static unsigned route(const char *method, const char *url, const char *body, char *fault, size_t n)
{
	struct api_headers hdr;
	char *out = NULL;
	unsigned status = api_route(&a, method, url, body, body ? strlen(body) : 0, &out, &hdr);

	snprintf(fault, n, "%s", out ? out : "");
	free(out);
	return status;
}

/* ---- the main thread, played by the test ------------------------------------------------ */

struct fake_main {
	pthread_t t;
	unsigned delay_ms; /* before answering */
	int answer;	   /* run_cmd's result */
	const char *err;   /* its message */
	unsigned ran;
	uint64_t finished_ms;
};

static void *fake_main_run(void *arg)
{
	struct fake_main *m = arg;
	struct pollfd p = {.fd = a.cmd_efd, .events = POLLIN};
	struct api_cmd *cmd = NULL;
	uint64_t n;

	while (!cmd) {
		if (poll(&p, 1, 5000) <= 0)
			return NULL;
		(void)!read(a.cmd_efd, &n, sizeof(n));
		cmd = api_queue_pop(&a);
	}
	m->ran++;
	usleep(m->delay_ms * 1000);
	if (m->err)
		snprintf(cmd->err, sizeof(cmd->err), "%s", m->err);
	m->finished_ms = clock_ms();
	api_queue_finish(&a, cmd, m->answer);
	return NULL;
}

static void fake_main_start(struct fake_main *m)
{
	assert_int_equal(pthread_create(&m->t, NULL, fake_main_run, m), 0);
}

static void open_metrics(void)
{
	a.metrics_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(a.metrics_fd >= 0);
}

static const char flush[] = "{\"action_type\": \"FlushMetrics\"}";

/* Nobody serves the queue: 503 after the time limit, and the command is gone from the queue
 * (it will never run). */
static void test_not_taken(void **state)
{
	char fault[700];
	(void)state;
	open_metrics();
	uint64_t t0 = clock_ms();
	assert_int_equal(route("PUT", "/actions", flush, fault, sizeof(fault)), 503);
	uint64_t took = clock_ms() - t0;
	assert_true(took >= POST_MS - 5 && took < POST_MS + 1000);
	assert_non_null(strstr(fault, "actions: FlushMetrics: the main thread did not take the "
				      "request within 300 ms; it was not run"));
	assert_null(a.queue_head);
	assert_null(a.queue_tail);
	assert_null(api_queue_pop(&a));
}

/* The main thread takes the command but finishes it after the limit: 504 at the limit, and
 * the command, which the poster has let go of, is still valid when the main thread finishes
 * it (ASan checks the use and the free). */
static void test_not_finished(void **state)
{
	struct fake_main m = {.delay_ms = 3 * POST_MS, .answer = -EIO, .err = "disk gone"};
	char fault[700];
	(void)state;
	open_metrics();
	fake_main_start(&m);
	uint64_t t0 = clock_ms();
	assert_int_equal(route("PUT", "/actions", flush, fault, sizeof(fault)), 504);
	uint64_t back = clock_ms();
	assert_true(back - t0 < POST_MS + 1000);
	assert_non_null(strstr(fault, "actions: FlushMetrics: the main thread did not finish the "
				      "request within 300 ms"));
	assert_int_equal(pthread_join(m.t, NULL), 0);
	assert_int_equal(m.ran, 1);
	assert_true(m.finished_ms > back); /* finished after the poster was answered */
}

/* In time: the main thread's result and message, as before. */
static void test_answered(void **state)
{
	struct fake_main m = {.delay_ms = 10, .answer = -EINVAL, .err = "vm: state: nope"};
	char fault[700];
	(void)state;
	a.state = API_RUNNING;
	fake_main_start(&m);
	assert_int_equal(route("PATCH", "/vm", "{\"state\": \"Paused\"}", fault, sizeof(fault)),
			 400);
	assert_int_equal(pthread_join(m.t, NULL), 0);
	assert_int_equal(m.ran, 1);
	assert_non_null(strstr(fault, "vm: state: nope"));
	m = (struct fake_main){.delay_ms = 10, .answer = 0};
	fake_main_start(&m);
	assert_int_equal(route("PATCH", "/vm", "{\"state\": \"Resumed\"}", fault, sizeof(fault)),
			 204);
	assert_int_equal(pthread_join(m.t, NULL), 0);
}

static void *post_flush(void *arg)
{
	char *fault = arg;
	return (void *)(uintptr_t)route("PUT", "/actions", flush, fault, 700);
}

/* The VM stops while a request waits: it is answered at once, and later ones are refused
 * without waiting. */
static void test_shut(void **state)
{
	char fault[700];
	pthread_t t;
	void *status;
	(void)state;
	open_metrics();
	a.post_timeout_ms = 10000;
	assert_int_equal(pthread_create(&t, NULL, post_flush, fault), 0);
	wait_queued(1000);
	uint64_t t0 = clock_ms();
	api_queue_shut(&a);
	assert_int_equal(pthread_join(t, &status), 0);
	assert_true(clock_ms() - t0 < 1000);
	assert_int_equal((unsigned)(uintptr_t)status, 400);
	assert_non_null(strstr(fault, "actions: FlushMetrics: the microVM has stopped"));
	t0 = clock_ms();
	assert_int_equal(route("PUT", "/actions", flush, fault, sizeof(fault)), 400);
	assert_true(clock_ms() - t0 < 1000);
}

/* ---- the HTTP server ------------------------------------------------------------------- */

/* Send a request on a new connection and read the answer (5 s at most); returns the
 * status, or -1. */
static int http(const char *sock, const char *req, char *resp, size_t n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};
	size_t got = 0;
	int status = -1;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	for (ssize_t r; got + 1 < n && (r = recv(fd, resp + got, n - 1 - got, 0)) > 0;)
		got += (size_t)r;
	resp[got] = '\0';
	close(fd);
	sscanf(resp, "HTTP/1.1 %d", &status);
	return status;
}

struct slow_client {
	pthread_t t;
	const char *sock;
	int status;
	char resp[2048];
};

static void *slow_client_run(void *arg)
{
	struct slow_client *c = arg;
	char req[256];

	snprintf(req, sizeof(req),
		 "PUT /actions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
		 "%zu\r\n\r\n%s",
		 strlen(flush), flush);
	c->status = http(c->sock, req, c->resp, sizeof(c->resp));
	return NULL;
}

/* A request waiting for a main thread that does not answer holds only its own connection:
 * another client's GET is answered at once, and the waiting one gets 503 at the limit. */
static void test_server_beside_stuck_request(void **state)
{
	struct slow_client c = {.sock = path_in("api.sock")};
	char err[256], resp[2048];
	(void)state;
	open_metrics();
	a.post_timeout_ms = 1500;
	assert_int_equal(api_server_start(&a, c.sock, err, sizeof(err)), 0);
	assert_int_equal(pthread_create(&c.t, NULL, slow_client_run, &c), 0);
	wait_queued(2000); /* until its command waits in the queue */
	uint64_t t0 = clock_ms();
	assert_int_equal(http(c.sock, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			      resp, sizeof(resp)),
			 200);
	assert_true(clock_ms() - t0 < 500);
	assert_non_null(strstr(resp, "\"state\":\"Not started\""));
	assert_int_equal(pthread_join(c.t, NULL), 0);
	assert_int_equal(c.status, 503);
	assert_non_null(strstr(c.resp, "did not take the request within 1500 ms"));
	api_server_stop(&a);
	assert_int_equal(access(c.sock, F_OK), -1);
}

/* ---- outputs, and pre-boot routes after start --------------------------------------- */

/* A FIFO nobody reads is a valid output: PUT /serial and PUT /metrics answer at once (a
 * blocking open would wait for a reader for ever). */
static void test_fifo_outputs(void **state)
{
	char body[256], fault[700];
	(void)state;
	assert_int_equal(mkfifo(path_in("serial.fifo"), 0600), 0);
	assert_int_equal(mkfifo(path_in("metrics.fifo"), 0600), 0);
	snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", path_in("serial.fifo"));
	assert_int_equal(route("PUT", "/serial", body, fault, sizeof(fault)), 204);
	snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", path_in("metrics.fifo"));
	assert_int_equal(route("PUT", "/metrics", body, fault, sizeof(fault)), 204);
	assert_true(a.metrics_fd >= 0);
	/* a directory is no output */
	snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", dir);
	assert_int_equal(route("PUT", "/serial", body, fault, sizeof(fault)), 400);
	assert_non_null(strstr(fault, "serial: serial_out_path: "));
	assert_non_null(strstr(fault, ": Is a directory"));
	unlink(path_in("serial.fifo"));
	unlink(path_in("metrics.fifo"));
}

/* After InstanceStart, PUT /serial, /metrics and /logger answer 400 and create nothing. */
static void test_preboot_after_start(void **state)
{
	static const struct {
		const char *url, *field, *file;
	} cases[] = {
	    {"/serial", "serial_out_path", "serial.out"},
	    {"/metrics", "metrics_path", "metrics.json"},
	    {"/logger", "log_path", "kiln.log"},
	};
	char body[256], fault[700];
	(void)state;
	for (enum api_state st = API_STARTING; st <= API_PAUSED; st++) {
		a.state = st;
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			snprintf(body, sizeof(body), "{\"%s\": \"%s\"}", cases[i].field,
				 path_in(cases[i].file));
			assert_int_equal(route("PUT", cases[i].url, body, fault, sizeof(fault)),
					 400);
			assert_non_null(strstr(fault, "cannot be changed after InstanceStart"));
			assert_int_equal(access(path_in(cases[i].file), F_OK), -1);
			assert_int_equal(errno, ENOENT);
		}
	}
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGALRM, watchdog);
	signal(SIGPIPE, SIG_IGN);
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_not_taken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_finished, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_answered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shut, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_beside_stuck_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fifo_outputs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_preboot_after_start, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
