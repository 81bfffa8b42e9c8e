/* http_client.c: one HTTP/1.1 request to a `kiln api` Unix socket, for `kiln snapshot`.
 *
 * Written by hand rather than with libcurl: it sends one request with "Connection: close" on
 * a local socket and reads the answer to EOF, which takes a page of code, while libcurl would
 * add a large dependency (and its own dependencies) to the static kiln binary. The peer is
 * still untrusted: the answer is bounded in size and time and parsed with checks. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "util/clock.h"

/* Milliseconds left before deadline (0 when past). */
static int left_ms(uint64_t deadline)
{
	uint64_t now = clock_ms();
	return now >= deadline ? 0 : (int)MIN(deadline - now, (uint64_t)INT32_MAX);
}

/* Wait for events on fd until deadline: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};

	for (;;) {
		int n = poll(&p, 1, left_ms(deadline));
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int connect_sock(const char *sock, uint64_t deadline, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret;

	if (strlen(sock) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen,
			 "--api-sock: '%.200s' is longer than a socket path can be (%zu "
			 "bytes)",
			 sock, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return ret;
	}
	/* A Unix socket connects at once or fails with EAGAIN when its backlog is full. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		if (errno == EAGAIN && left_ms(deadline) > 0) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		if (errno == EINTR)
			continue;
		snprintf(err, errlen, "--api-sock: %.300s: %s", sock,
			 ret == -ETIMEDOUT || ret == -EAGAIN ? "the API does not accept"
							     : strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int ret = wait_fd(fd, POLLOUT, deadline);
			if (ret)
				return ret;
			continue;
		}
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read to EOF into buf (at most max bytes; more is -EMSGSIZE). */
static int recv_all(int fd, char *buf, size_t max, size_t *len, uint64_t deadline)
{
	*len = 0;
	for (;;) {
		if (*len == max)
			return -EMSGSIZE;
		ssize_t n = recv(fd, buf + *len, max - *len, 0);
		if (n == 0)
			return 0;
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int ret = wait_fd(fd, POLLIN, deadline);
			if (ret)
				return ret;
			continue;
		}
		if (n < 0)
			return -errno;
		*len += (size_t)n;
	}
}

/* "HTTP/1.x NNN ...\r\n", headers, "\r\n\r\n", body (Content-Length of it, when given). */
static int parse(char *buf, size_t len, struct cli_http_resp *r)
{
	char *end, *p, *hdr_end;
	long clen = -1;

	buf[len] = '\0';
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return -EPROTO;
	long st = strtol(buf + 9, &end, 10);
	if (end != buf + 12 || st < 100 || st > 599 || (*end != ' ' && *end != '\r'))
		return -EPROTO;
	hdr_end = strstr(buf, "\r\n\r\n");
	if (!hdr_end)
		return -EPROTO;
	*hdr_end = '\0';
	for (p = strstr(buf, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, "Content-Length:", 15) == 0) {
			clen = strtol(p + 17, &end, 10);
			if (clen < 0 || end == p + 17)
				return -EPROTO;
		} else if (strncasecmp(p + 2, "Transfer-Encoding:", 18) == 0) {
			return -EPROTO; /* kiln's API answers with a Content-Length */
		}
	}
	p = hdr_end + 4;
	r->len = len - (size_t)(p - buf);
	if (clen >= 0) {
		if ((size_t)clen > r->len)
			return -EPROTO; /* cut short */
		r->len = (size_t)clen;
	}
	memmove(r->body, p, r->len);
	r->body[r->len] = '\0';
	r->status = (int)st;
	return 0;
}

int cli_http_request(const char *sock, const char *method, const char *path, const char *body,
		     int timeout_ms, struct cli_http_resp *r, char *err, size_t errlen)
{
	uint64_t deadline = clock_ms() + (uint64_t)timeout_ms;
	size_t blen = body ? strlen(body) : 0, len;
	char head[512], *buf = NULL;
	int fd, ret, n;

	r->status = 0;
	r->len = 0;
	r->body[0] = '\0';
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		     "Accept: application/json\r\n%sContent-Length: %zu\r\n\r\n",
		     method, path, body ? "Content-Type: application/json\r\n" : "", blen);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		snprintf(err, errlen, "%s %s: request too long", method, path);
		return -EINVAL;
	}
	fd = connect_sock(sock, deadline, err, errlen);
	if (fd < 0)
		return fd;
	buf = malloc(CLI_HTTP_RESP_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((ret = send_all(fd, head, (size_t)n, deadline)) ||
	    (ret = send_all(fd, body ? body : "", blen, deadline))) {
		snprintf(err, errlen, "--api-sock: %.300s: sending %s %s: %s", sock, method, path,
			 ret == -ETIMEDOUT ? "timed out" : strerror(-ret));
		goto out;
	}
	ret = recv_all(fd, buf, CLI_HTTP_RESP_MAX, &len, deadline);
	if (ret) {
		snprintf(err, errlen, "--api-sock: %.300s: %s %s: %s", sock, method, path,
			 ret == -ETIMEDOUT  ? "no answer within the time allowed"
			 : ret == -EMSGSIZE ? "the answer is too long"
					    : strerror(-ret));
		goto out;
	}
	if ((ret = parse(buf, len, r)))
		snprintf(err, errlen, "--api-sock: %.300s: %s %s: %s", sock, method, path,
			 len ? "not an HTTP answer" : "the connection closed with no answer");
out:
	free(buf);
	close(fd);
	return ret;
}

const char *cli_http_fault(const struct cli_http_resp *r, char *buf, size_t len)
{
	json_t *root = json_loadb(r->body, r->len, 0, NULL);
	const char *msg = json_string_value(json_object_get(root, "fault_message"));

	if (msg)
		snprintf(buf, len, "%s", msg);
	else
		snprintf(buf, len, "the API answered %d with no fault_message", r->status);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	json_decref(root);
	return buf;
}
