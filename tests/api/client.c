/* client.c: test helpers for the API tests: run `kiln api`, talk HTTP/1.1 over its socket. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
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
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"

const char *kiln_path;
const char *tick_path;

bool client_args(int argc, char **argv, bool tick)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s KILN%s\n", argv[0], tick ? " [TICK_GUEST]" : "");
		return false;
	}
	kiln_path = argv[1];
	tick_path = tick && argc > 2 && argv[2][0] ? argv[2] : NULL;
	return true;
}

bool client_kvm_missing(const char *test)
{
	if (access("/dev/kvm", R_OK | W_OK) == 0)
		return false;
	printf("SKIP: %s boots a guest and needs /dev/kvm: %s\n", test, strerror(errno));
	return true;
}

void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void kiln_prepare(struct kiln *k)
{
	const char *tmp = getenv("TMPDIR");
	memset(k, 0, sizeof(*k));
	k->pid = -1;
	snprintf(k->dir, sizeof(k->dir), "%s/kiln-api-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(k->dir))
		fail_msg("mkdtemp %s: %s", k->dir, strerror(errno));
	snprintf(k->sock, sizeof(k->sock), "%s/api.sock", k->dir);
	snprintf(k->out, sizeof(k->out), "%s/kiln.out", k->dir);
}

const char *kiln_file(struct kiln *k, const char *name)
{
	static char bufs[4][400];
	static unsigned next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof(bufs[0]), "%s/%s", k->dir, name);
	return b;
}

const char *kiln_body_with_path(struct kiln *k, const char *tmpl, const char *name)
{
	static char buf[2048];
	const char *at = strstr(tmpl, "%s");
	assert_non_null(at);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - tmpl), tmpl, kiln_file(k, name), at + 2);
	return buf;
}

void sockaddr_set(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n >= sizeof(sa->sun_path))
		fail_msg("socket path too long: %s", path);
	memcpy(sa->sun_path, path, n + 1);
}

static bool sock_ready(const char *sock)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;
	sockaddr_set(&sa, sock);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

void kiln_start(struct kiln *k, bool wait_sock, const char *const *extra)
{
	const char *argv[32];
	unsigned n = 0;
	bool no_api = false;

	argv[n++] = kiln_path;
	argv[n++] = "api";
	for (unsigned i = 0; extra && extra[i]; i++)
		no_api |= strcmp(extra[i], "--no-api") == 0;
	if (!no_api) {
		argv[n++] = "--api-sock";
		argv[n++] = k->sock;
	}
	for (unsigned i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	k->pid = fork();
	if (k->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (k->pid == 0) {
		int out = open(k->out, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int in = open("/dev/null", O_RDONLY);
		if (out < 0 || in < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execv(kiln_path, (char *const *)argv);
		_exit(127);
	}
	if (!wait_sock)
		return;
	for (int i = 0; i < 1000; i++) {
		if (sock_ready(k->sock))
			return;
		int st;
		if (waitpid(k->pid, &st, WNOHANG) == k->pid) {
			k->pid = -1;
			fail_msg("kiln api exited before serving (status 0x%x); see %s", st,
				 k->out);
		}
		sleep_ms(10);
	}
	fail_msg("kiln api: socket %s not ready after 10 s", k->sock);
}

int kiln_wait(struct kiln *k, int timeout_ms)
{
	int st;
	for (int waited = 0; k->pid > 0; waited += 10) {
		pid_t p = waitpid(k->pid, &st, WNOHANG);
		if (p == k->pid) {
			k->pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		if (waited >= timeout_ms)
			return -1;
		sleep_ms(10);
	}
	return -1;
}

void kiln_cleanup(struct kiln *k)
{
	char cmd[400];
	if (k->pid > 0) {
		kill(k->pid, SIGKILL);
		waitpid(k->pid, NULL, 0);
		k->pid = -1;
	}
	if (k->dir[0] && !getenv("KILN_TEST_KEEP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup: %s failed\n", cmd);
	}
	k->dir[0] = '\0';
}

int http_connect(const char *sock)
{
	struct sockaddr_un sa;
	struct timeval tv = {.tv_sec = 10};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sockaddr_set(&sa, sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail_msg("connect %s: %s", sock, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

void http_read(int fd, struct resp *r)
{
	static char buf[sizeof(r->head) + sizeof(r->body)];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	r->status = -1;
	r->head[0] = r->body[0] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
		return;
	char *sep = strstr(buf, "\r\n\r\n");
	if (!sep)
		return;
	*sep = '\0';
	size_t hl = strlen(buf), bl = strlen(sep + 4);
	hl = hl < sizeof(r->head) - 1 ? hl : sizeof(r->head) - 1;
	bl = bl < sizeof(r->body) - 1 ? bl : sizeof(r->body) - 1;
	memcpy(r->head, buf, hl);
	r->head[hl] = '\0';
	memcpy(r->body, sep + 4, bl);
	r->body[bl] = '\0';
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n <= 0)
			return; /* the server may close early (413): read what it said */
		p += n;
		len -= (size_t)n;
	}
}

void http_raw(const char *sock, const char *raw, size_t len, struct resp *r)
{
	int fd = http_connect(sock);
	send_all(fd, raw, len);
	http_read(fd, r);
	close(fd);
}

void http(const char *sock, const char *method, const char *path, const char *body, struct resp *r)
{
	size_t blen = body ? strlen(body) : 0;
	char *req = malloc(blen + 512);
	int n;

	if (!req)
		fail_msg("out of memory");
	if (body)
		n = snprintf(req, blen + 512,
			     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     method, path, blen, body);
	else
		n = snprintf(req, blen + 512,
			     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
			     method, path);
	http_raw(sock, req, (size_t)n, r);
	free(req);
}

/* expect and expect_exact: fault is a substring of fault_message, or (exact) all of it. */
static void expect_fault(const char *sock, const char *method, const char *path, const char *body,
			 int status, const char *fault, bool exact)
{
	struct resp r;
	http(sock, method, path, body, &r);
	const char *fm = json_field(r.body, "fault_message");
	bool fault_ok = !fault || (exact ? strcmp(fm, fault) == 0 : strstr(fm, fault) != NULL);
	if (r.status != status || !fault_ok || (status >= 400 && !fm[0]))
		fail_msg("%s %s %s\n  expected %d%s%s, got %d: %s", method, path, body ? body : "",
			 status,
			 !fault	 ? ""
			 : exact ? " with fault_message equal to "
				 : " with fault_message containing ",
			 fault ? fault : "", r.status, r.body);
}

void expect(const char *sock, const char *method, const char *path, const char *body, int status,
	    const char *fault_substr)
{
	expect_fault(sock, method, path, body, status, fault_substr, false);
}

void expect_exact(const char *sock, const char *method, const char *path, const char *body,
		  int status, const char *fault)
{
	expect_fault(sock, method, path, body, status, fault, true);
}

void put_string(const char *sock, const char *path, const char *field, const char *value)
{
	char body[1024];
	snprintf(body, sizeof(body), "{\"%s\": \"%s\"}", field, value);
	expect(sock, "PUT", path, body, 204, NULL);
}

void put_tick_config(struct kiln *k)
{
	put_string(k->sock, "/metrics", "metrics_path", kiln_file(k, "metrics.json"));
	put_string(k->sock, "/boot-source", "kernel_image_path", tick_path);
	put_string(k->sock, "/serial", "serial_out_path", kiln_file(k, "serial.out"));
}

const char *vm_config(const char *sock)
{
	static struct resp r;
	http(sock, "GET", "/vm/config", NULL, &r);
	return r.body;
}

const char *json_field(const char *body, const char *key)
{
	static char out[4096];
	json_t *o = json_loads(body, 0, NULL);
	json_t *v = o ? json_object_get(o, key) : NULL;
	snprintf(out, sizeof(out), "%s", json_is_string(v) ? json_string_value(v) : "");
	json_decref(o);
	return out;
}

long long json_int(const char *body, const char *path)
{
	char buf[256], *save = NULL;
	json_t *o = json_loads(body, 0, NULL), *v = o;
	long long ret = -1;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strtok_r(buf, "/", &save); p && v; p = strtok_r(NULL, "/", &save))
		v = json_object_get(v, p);
	if (json_is_integer(v))
		ret = json_integer_value(v);
	json_decref(o);
	return ret;
}

void file_last_line(const char *path, char *buf, size_t len)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		fail_msg("open %s: %s", path, strerror(errno));
	buf[0] = '\0';
	while (getline(&line, &cap, f) >= 0)
		snprintf(buf, len, "%s", line);
	free(line);
	fclose(f);
}

bool file_contains(const char *path, const char *substr)
{
	static char buf[256 * 1024];
	size_t n = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, substr) != NULL;
}

int count_lines(const char *path, const char *prefix)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strncmp(line, prefix, strlen(prefix)) == 0;
	fclose(f);
	return n;
}

bool wait_lines(const char *path, const char *prefix, int n, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (count_lines(path, prefix) >= n)
			return true;
		sleep_ms(20);
	}
	return false;
}

void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		fail_msg("write %s: %s", path, strerror(errno));
}

int last_tick(const char *path)
{
	char line[256];
	int n, last = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "tick %d", &n) == 1 && n > last)
			last = n;
	fclose(f);
	return last;
}

int first_tick(const char *path)
{
	char line[256];
	int n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "tick %d", &n) == 1)
			break;
	fclose(f);
	return n;
}
pid_t uffd_handler_start(const char *sock, const char *mem, const char *log)
{
	const char *bin = getenv("KILN_UFFD_HANDLER");
	pid_t pid;

	assert_non_null(bin);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, bin, sock, mem, (char *)NULL);
		_exit(127);
	}
	/* Its socket appears once it listens. */
	for (int i = 0; i < 500 && access(sock, F_OK); i++)
		sleep_ms(10);
	assert_int_equal(access(sock, F_OK), 0);
	return pid;
}
