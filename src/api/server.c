/* server.c: the API's HTTP/1.1 server: libmicrohttpd on a Unix socket kiln creates itself. */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api.h"
#include "api/json.h"
#include "kiln-build.h"
#include "util/dynlib.h"

/* libmicrohttpd (and gnutls, which it links) is opened when the API server starts
 * (util/dynlib.h): `kiln run` never maps it. The pointers have microhttpd.h's types. */
static struct {
	__typeof__(&MHD_create_response_from_buffer) create_response_from_buffer;
	__typeof__(&MHD_add_response_header) add_response_header;
	__typeof__(&MHD_queue_response) queue_response;
	__typeof__(&MHD_destroy_response) destroy_response;
	__typeof__(&MHD_lookup_connection_value) lookup_connection_value;
	__typeof__(&MHD_start_daemon) start_daemon;
	__typeof__(&MHD_quiesce_daemon) quiesce_daemon;
	__typeof__(&MHD_stop_daemon) stop_daemon;
} mhd;

static const struct dynlib_sym mhd_syms[] = {
	{ "MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer },
	{ "MHD_add_response_header", (void **)&mhd.add_response_header },
	{ "MHD_queue_response", (void **)&mhd.queue_response },
	{ "MHD_destroy_response", (void **)&mhd.destroy_response },
	{ "MHD_lookup_connection_value", (void **)&mhd.lookup_connection_value },
	{ "MHD_start_daemon", (void **)&mhd.start_daemon },
	{ "MHD_quiesce_daemon", (void **)&mhd.quiesce_daemon },
	{ "MHD_stop_daemon", (void **)&mhd.stop_daemon },
};
static struct dynlib mhd_lib = DYNLIB_INIT(KILN_MHD_SONAME, mhd_syms);

#define API_MAX_CONNECTIONS 64
#define API_IDLE_TIMEOUT_S 30 /* a connection that sends nothing for this long is closed */
#define API_DRAIN_MS 1000     /* at exit, wait this long at most for responses in flight */

struct api_server {
	struct MHD_Daemon *daemon;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One request's state, from its first header callback to its completion. */
struct request {
	char *body;
	size_t len;
	bool too_large;
};

static __printf(2, 0) void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("api: http: %s", msg);
}

static void count_status(struct api *a, unsigned status)
{
	if (status < 300)
		atomic_fetch_add(&a->counters.responses_2xx, 1);
	else if (status < 500)
		atomic_fetch_add(&a->counters.responses_4xx, 1);
	else
		atomic_fetch_add(&a->counters.responses_5xx, 1);
}

/* Queue status with body (malloc'd JSON, taken over; NULL: none). */
static enum MHD_Result respond(struct api *a, struct MHD_Connection *c, unsigned status, char *body,
			       const char *allow)
{
	struct MHD_Response *resp;

	if (!body && status >= 400)
		body = api_fault("internal error");
	if (body)
		resp = mhd.create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	else
		resp = mhd.create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (body)
		mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (allow)
		mhd.add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = mhd.queue_response(c, status, resp);
	mhd.destroy_response(resp);
	count_status(a, status);
	if (status >= 400)
		log_debug("api: response %u", status);
	return ret;
}

static enum MHD_Result too_large(struct api *a, struct MHD_Connection *c)
{
	char msg[96];
	atomic_fetch_add(&a->counters.body_too_large, 1);
	snprintf(msg, sizeof(msg), "request body: larger than %u bytes", API_BODY_MAX);
	return respond(a, c, 413, api_fault(msg), NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	static __thread bool named;
	struct api *a = cls;
	struct request *r = *con_cls;
	(void)version;

	if (!named) {
		pthread_setname_np(pthread_self(), "api");
		named = true;
	}
	if (!r) {
		/* Headers are in. Refuse an announced oversized body before it is sent. */
		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		*con_cls = r;
		atomic_fetch_add(&a->inflight, 1);
		atomic_fetch_add(&a->counters.requests, 1);
		const char *cl =
		    mhd.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX) {
			r->too_large = true;
			return too_large(a, c);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (r->too_large)
			return MHD_YES; /* drain what is left of a chunked body */
		if (r->len + n > API_BODY_MAX) {
			free(r->body);
			r->body = NULL;
			r->len = 0;
			r->too_large = true;
			return MHD_YES;
		}
		char *nb = realloc(r->body, r->len + n + 1);
		if (!nb)
			return MHD_NO;
		memcpy(nb + r->len, upload, n);
		r->body = nb;
		r->len += n;
		r->body[r->len] = '\0';
		atomic_fetch_add(&a->counters.body_bytes, n);
		return MHD_YES;
	}
	if (r->too_large)
		return too_large(a, c);

	char *out = NULL;
	const char *allow = NULL;
	unsigned status = api_route(a, method, url, r->body, r->len, &out, &allow);
	log_debug("api: %s %s -> %u", method, url, status);
	return respond(a, c, status, out, allow);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api *a = cls;
	struct request *r = *con_cls;
	(void)c;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("api: request ended early (code %d)", (int)toe);
	if (r) {
		free(r->body);
		free(r);
		atomic_fetch_sub(&a->inflight, 1);
	}
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct api *a = cls;
	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&a->counters.connections, 1);
}

/* Bind a listening socket at path. A socket file nobody listens on is stale and replaced; a
 * live one, or any other kind of file, is left alone. */
static int make_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct api_json_quote q;
	struct stat st;
	int fd, ret;

	if (!path[0] || strlen(path) >= sizeof(sa.sun_path))
		return api_json_fail(err, errlen,
				     "--api-sock: \"%s\": a socket path is 1-%zu bytes",
				     api_json_quote(&q, path), sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return api_json_fail(err, errlen,
					     "--api-sock: %s: exists and is not a socket",
					     api_json_quote(&q, path));
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return -errno;
		ret = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
		close(probe);
		if (ret == 0) {
			api_json_fail(err, errlen,
				      "--api-sock: %s: another process is serving on "
				      "this socket",
				      api_json_quote(&q, path));
			return -EADDRINUSE;
		}
		if (ret != -ECONNREFUSED)
			return api_json_fail(err, errlen, "--api-sock: %s: %s",
					     api_json_quote(&q, path), strerror(-ret));
		log_info("api: replacing the stale socket %s", path);
		if (unlink(path) < 0 && errno != ENOENT)
			return api_json_fail(err, errlen,
					     "--api-sock: %s: removing the stale socket: %s",
					     api_json_quote(&q, path), strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return api_json_fail(err, errlen, "--api-sock: socket: %s", strerror(errno));
	/* Only the owner may connect: the file is created 0600 (no other thread runs yet). */
	mode_t old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	umask(old);
	if (ret == 0 && listen(fd, 64) < 0) {
		ret = -errno;
		unlink(path);
	}
	if (ret) {
		close(fd);
		return api_json_fail(err, errlen, "--api-sock: %s: %s", api_json_quote(&q, path),
				     strerror(-ret));
	}
	return fd;
}

int api_server_start(struct api *a, const char *sock_path, char *err, size_t errlen)
{
	char why[256];
	int ret = dynlib_load(&mhd_lib, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "--api-sock: %s", why);
		return ret;
	}
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int fd = make_socket(sock_path, err, errlen);
	if (fd < 0) {
		free(s);
		return fd;
	}
	snprintf(s->path, sizeof(s->path), "%s", sock_path);
	/* One internal thread polls every connection: a slow or byte-by-byte client only
	 * holds its own connection. */
	s->daemon = mhd.start_daemon(
	    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    on_request, a, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, a, MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_END);
	if (!s->daemon) {
		close(fd);
		unlink(sock_path);
		free(s);
		api_json_fail(err, errlen, "--api-sock: %s: cannot start the HTTP server",
			      sock_path);
		return -EIO;
	}
	a->server = s;
	log_info("api: serving on %s", sock_path);
	return 0;
}

void api_server_stop(struct api *a)
{
	struct api_server *s = a->server;
	if (!s)
		return;
	/* Stop accepting, then give requests in flight (the SendCtrlAltDel that ended the VM,
	 * say) a moment to have their responses sent. */
	MHD_socket lfd = mhd.quiesce_daemon(s->daemon);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	for (int i = 0; i < API_DRAIN_MS && atomic_load(&a->inflight) > 0; i += 5)
		usleep(5000);
	mhd.stop_daemon(s->daemon); /* joins the thread, closes the connections */
	unlink(s->path);
	free(s);
	a->server = NULL;
}
