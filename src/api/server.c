/* server.c: the API's HTTP/1.1 server: libmicrohttpd on a Unix socket kiln creates itself, a
 * thread per connection, a cap on connections and a deadline for slow clients. */
#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/json.h"
#include "kiln-build.h"
#include "sandbox/seccomp.h"
#include "util/clock.h"

/* The libmicrohttpd functions the server calls, through `mhd.NAME`, typed from microhttpd.h. */
#define MHD_FUNCTIONS(X)                                                                      \
	X(create_response_from_buffer) X(add_response_header) X(queue_response)              \
	X(destroy_response) X(lookup_connection_value) X(get_connection_info) X(start_daemon) \
	X(quiesce_daemon) X(stop_daemon)
#define MHD_FN_PTR(f) __typeof__(&MHD_##f) f;
struct mhd_fns {
	MHD_FUNCTIONS(MHD_FN_PTR)
};

#ifdef KILN_STATIC
/* The static kiln links libmicrohttpd itself (built without TLS by scripts/static-libs.sh;
 * docs/design.md "One static binary"), and a static binary cannot dlopen: the table holds the
 * functions. */
#define MHD_FN_DIRECT(f) .f = MHD_##f,
static const struct mhd_fns mhd = { MHD_FUNCTIONS(MHD_FN_DIRECT) };

static int mhd_load(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}
#else
#include "util/dynlib.h"

/* The dynamic build opens libmicrohttpd (and the gnutls tree Debian's links) when the API
 * server starts (util/dynlib.h): `kiln run` never maps it. */
static struct mhd_fns mhd;
#define MHD_FN_SYM(f) { "MHD_" #f, (void **)&mhd.f },
static const struct dynlib_sym mhd_syms[] = { MHD_FUNCTIONS(MHD_FN_SYM) };
static struct dynlib mhd_lib = DYNLIB_INIT(KILN_MHD_SONAME, mhd_syms);

static int mhd_load(char *why, size_t len)
{
	return dynlib_load(&mhd_lib, why, len);
}
#endif

/*
 * Connections. libmicrohttpd gives each connection a thread (MHD_USE_THREAD_PER_CONNECTION),
 * so a handler waiting for the main thread (at most API_POST_TIMEOUT_MS), a client that sends
 * a byte at a time or one that does not read its answer holds only its own connection. Each
 * connection has a struct conn from libmicrohttpd's "started" notification to its "closed"
 * one; both come on the accepting thread, and "closed" comes before the socket is closed.
 *  - At most API_MAX_CONNECTIONS at once: the accept policy callback closes one more at
 *    once. (libmicrohttpd's own limit, one above ours as a backstop, would instead stop
 *    accepting and leave the next client waiting in the listen backlog.)
 *  - Same uid only: the socket is 0600, and a peer whose SO_PEERCRED uid is not kiln's
 *    effective uid is dropped on arrival.
 *  - A deadline of API_IO_TIMEOUT_MS for each stretch in which the client must act: from
 *    the connection (or the previous response) to the end of the next request's headers
 *    and body, and from the handler's return to the response being taken. There is none
 *    while the handler runs. The watchdog thread shuts the socket down (shutdown(2)) at the
 *    deadline; the connection's thread then sees the end of the stream and libmicrohttpd
 *    closes it. libmicrohttpd's own timeout (the same length) only counts idle time, which a
 *    client sending a byte now and then resets.
 * The list is under server->lock, and "closed" takes the entry out under it before
 * libmicrohttpd closes the fd: the watchdog never shuts down an fd number that was reused.
 */
#define API_DRAIN_MS 1000 /* at exit, wait this long at most for responses in flight */
#define API_THREAD_STACK (1024 * 1024) /* per connection thread (jansson recurses per level) */
/* libmicrohttpd's idle timeout must not fire while a handler waits for the main thread. */
static_assert(API_IO_TIMEOUT_MS > API_POST_TIMEOUT_MS + 1000, "idle timeout above post timeout");

struct conn {
	struct conn *prev, *next;
	int fd;
	uint64_t deadline_ms; /* clock_ms() clock; 0: none (the handler runs) */
	bool dropped;	      /* shut down by the watchdog */
};

struct api_server {
	struct api *a;
	struct MHD_Daemon *daemon;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pthread_mutex_t lock; /* conns, nconns, next_check_ms, stopping */
	pthread_cond_t wake;  /* CLOCK_MONOTONIC: the watchdog has something to do */
	struct conn *conns;
	unsigned nconns;
	uint64_t next_check_ms; /* when the watchdog wakes next (UINT64_MAX: when told) */
	bool stopping;
	bool watchdog_started;
	pthread_t watchdog;
	/* The daemon is started by the watchdog thread, under its seccomp filter, which the
	 * daemon's threads inherit (sandbox/seccomp.h); the main thread waits for the outcome. */
	int listen_fd;
	bool start_done;
	int start_ret;		 /* 0, or -errno with start_err */
	char start_err[256];
	pthread_cond_t started; /* start_done was set */
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
			       const struct api_headers *hdr)
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
	if (hdr && hdr->allow)
		mhd.add_response_header(resp, MHD_HTTP_HEADER_ALLOW, hdr->allow);
	if (hdr && hdr->deprecation)
		mhd.add_response_header(resp, "Deprecation", "true");
	enum MHD_Result ret = mhd.queue_response(c, status, resp);
	mhd.destroy_response(resp);
	count_status(a, status);
	if (status >= 400)
		log_debug("api: response %u", status);
	return ret;
}

/* The largest body a request may have (--http-api-max-payload-size). */
static size_t body_max(const struct api *a) { return a->body_max ? a->body_max : API_BODY_MAX; }

static enum MHD_Result too_large(struct api *a, struct MHD_Connection *c)
{
	char msg[96];
	atomic_fetch_add(&a->counters.body_too_large, 1);
	snprintf(msg, sizeof(msg), "request body: larger than %zu bytes", body_max(a));
	return respond(a, c, 413, api_fault(msg), NULL);
}

/* ---- connections and their deadlines ------------------------------------------------ */

static struct timespec mono_at(uint64_t ms)
{
	return (struct timespec){.tv_sec = (time_t)(ms / 1000),
				 .tv_nsec = (long)(ms % 1000) * 1000000L};
}

/* Start (on) or stop the connection's deadline. */
static void set_deadline(struct api_server *s, struct conn *cn, bool on)
{
	if (!cn)
		return;
	pthread_mutex_lock(&s->lock);
	cn->deadline_ms = on ? clock_ms() + API_IO_TIMEOUT_MS : 0;
	if (on && cn->deadline_ms < s->next_check_ms)
		pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    mhd.get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void start_daemon(struct api_server *s);

/* Shut down every connection past its deadline; sleep until the next one. clock_ms() is
 * CLOCK_MONOTONIC, the clock of the condition variable. */
static void *watchdog_main(void *arg)
{
	struct api_server *s = arg;

	pthread_setname_np(pthread_self(), "api-watchdog");
	start_daemon(s);
	pthread_mutex_lock(&s->lock);
	while (!s->stopping && s->daemon) {
		uint64_t now = clock_ms(), next = UINT64_MAX;
		unsigned dropped = 0;

		for (struct conn *cn = s->conns; cn; cn = cn->next) {
			if (!cn->deadline_ms || cn->dropped)
				continue;
			if (now >= cn->deadline_ms) {
				shutdown(cn->fd, SHUT_RDWR);
				cn->dropped = true;
				dropped++;
			} else if (cn->deadline_ms < next) {
				next = cn->deadline_ms;
			}
		}
		if (dropped) {
			/* Log without the lock (the log may be slow), then look again. */
			pthread_mutex_unlock(&s->lock);
			atomic_fetch_add(&s->a->counters.connections_timed_out, dropped);
			log_warn_ratelimited("api: %u connection(s) dropped: no whole request sent, or "
					     "response taken, within %u ms",
					     dropped, API_IO_TIMEOUT_MS);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		s->next_check_ms = next;
		if (next == UINT64_MAX) {
			pthread_cond_wait(&s->wake, &s->lock);
		} else {
			struct timespec ts = mono_at(next);
			pthread_cond_timedwait(&s->wake, &s->lock, &ts);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Accept policy: refuse a connection beyond API_MAX_CONNECTIONS (libmicrohttpd closes it). It
 * runs on the accepting thread, as the "started" notification that counts connections in. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct api_server *s = cls;
	(void)addr;
	(void)addrlen;

	pthread_mutex_lock(&s->lock);
	bool full = s->nconns >= API_MAX_CONNECTIONS;
	pthread_mutex_unlock(&s->lock);
	if (!full)
		return MHD_YES;
	atomic_fetch_add(&s->a->counters.connections_refused, 1);
	log_warn_ratelimited("api: %u connections open: refusing another", API_MAX_CONNECTIONS);
	return MHD_NO;
}

/* Is the peer on fd of kiln's effective uid? *uid: the peer's (or -1 if unknown). */
static bool peer_is_ours(int fd, long *uid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	*uid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 || len != sizeof(uc))
		return false;
	*uid = (long)uc.uid;
	return uc.uid == geteuid();
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct api_server *s = cls;
	struct conn *cn = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (!cn)
			return;
		pthread_mutex_lock(&s->lock);
		if (cn->prev)
			cn->prev->next = cn->next;
		else
			s->conns = cn->next;
		if (cn->next)
			cn->next->prev = cn->prev;
		s->nconns--;
		pthread_mutex_unlock(&s->lock);
		free(cn);
		*socket_context = NULL;
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	atomic_fetch_add(&s->a->counters.connections, 1);
	const union MHD_ConnectionInfo *ci =
	    mhd.get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	int fd = ci ? ci->connect_fd : -1;
	long uid;
	if (fd < 0)
		return;
	if (!peer_is_ours(fd, &uid)) {
		atomic_fetch_add(&s->a->counters.connections_refused, 1);
		log_warn_ratelimited("api: connection from uid %ld refused (kiln runs as uid %u)",
				     uid, (unsigned)geteuid());
		shutdown(fd, SHUT_RDWR);
		return;
	}
	if (!(cn = calloc(1, sizeof(*cn)))) {
		shutdown(fd, SHUT_RDWR); /* a connection without a deadline: not served */
		return;
	}
	cn->fd = fd;
	pthread_mutex_lock(&s->lock);
	cn->next = s->conns;
	if (s->conns)
		s->conns->prev = cn;
	s->conns = cn;
	s->nconns++;
	pthread_mutex_unlock(&s->lock);
	*socket_context = cn;
	set_deadline(s, cn, true);
}

/* ---- requests ------------------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	static __thread bool named;
	struct api_server *s = cls;
	struct api *a = s->a;
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
		if (cl && strtoull(cl, NULL, 10) > body_max(a)) {
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
		if (r->len + n > body_max(a)) {
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

	/* The whole request is in: no deadline while the handler runs (it waits for the main
	 * thread at most API_POST_TIMEOUT_MS), a new one for the response to be taken. */
	struct conn *cn = conn_of(c);
	char *out = NULL;
	struct api_headers hdr;
	set_deadline(s, cn, false);
	unsigned status = api_route(a, method, url, r->body, r->len, &out, &hdr);
	log_debug("api: %s %s -> %u", method, url, status);
	enum MHD_Result ret = respond(a, c, status, out, &hdr);
	set_deadline(s, cn, true);
	return ret;
}

/* A request is over (its response sent, or the connection gone): the next one has
 * API_IO_TIMEOUT_MS to arrive. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_server *s = cls;
	struct request *r = *con_cls;

	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("api: request ended early (code %d)", (int)toe);
	if (c)
		set_deadline(s, conn_of(c), true);
	if (r) {
		free(r->body);
		free(r);
		atomic_fetch_sub(&s->a->inflight, 1);
	}
	*con_cls = NULL;
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

static void server_free(struct api_server *s)
{
	if (s->watchdog_started) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->watchdog, NULL);
	}
	while (s->conns) { /* none once the daemon has stopped: each had its "closed" */
		struct conn *cn = s->conns;
		s->conns = cn->next;
		free(cn);
	}
	pthread_cond_destroy(&s->started);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int server_init(struct api_server *s, struct api *a)
{
	int ret;

	s->a = a;
	s->next_check_ms = UINT64_MAX;
	if ((ret = pthread_mutex_init(&s->lock, NULL)))
		return -ret;
	if ((ret = clock_cond_init(&s->wake))) {
		pthread_mutex_destroy(&s->lock);
		return ret;
	}
	if ((ret = pthread_cond_init(&s->started, NULL))) {
		pthread_cond_destroy(&s->wake);
		pthread_mutex_destroy(&s->lock);
		return -ret;
	}
	return 0;
}

/* On the watchdog thread: confine it with the API's allowlist, then start libmicrohttpd, whose
 * threads (the accepting one, one per connection) inherit the filter. The outcome goes back
 * to api_server_start. */
static void start_daemon(struct api_server *s)
{
	char why[sizeof(s->start_err)] = "";
	int ret = seccomp_enter(SECCOMP_API, "api", why, sizeof(why));

	if (!ret) {
		seccomp_test_violation(SECCOMP_API, -1);
		s->daemon = mhd.start_daemon(
		    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC |
			MHD_USE_ERROR_LOG,
		    0, on_accept, s, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_NOTIFY_COMPLETED,
		    on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNECTIONS + 1,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(API_IO_TIMEOUT_MS / 1000),
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
		    MHD_OPTION_THREAD_STACK_SIZE, (size_t)API_THREAD_STACK, MHD_OPTION_END);
		if (!s->daemon) {
			ret = -EIO;
			snprintf(why, sizeof(why), "--api-sock: %s: cannot start the HTTP server",
				 s->path);
		}
	}
	pthread_mutex_lock(&s->lock);
	s->start_ret = ret;
	snprintf(s->start_err, sizeof(s->start_err), "%s", why);
	s->start_done = true;
	pthread_cond_signal(&s->started);
	pthread_mutex_unlock(&s->lock);
}

int api_server_start(struct api *a, const char *sock_path, char *err, size_t errlen)
{
	char why[256];
	int ret = mhd_load(why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "--api-sock: %s", why);
		return ret;
	}
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if ((ret = server_init(s, a))) {
		free(s);
		snprintf(err, errlen, "--api-sock: %s", strerror(-ret));
		return ret;
	}
	int fd = make_socket(sock_path, err, errlen);
	if (fd < 0) {
		server_free(s);
		return fd;
	}
	snprintf(s->path, sizeof(s->path), "%s", sock_path);
	s->listen_fd = fd;
	if ((ret = pthread_create(&s->watchdog, NULL, watchdog_main, s))) {
		close(fd);
		unlink(sock_path);
		server_free(s);
		snprintf(err, errlen, "--api-sock: watchdog thread: %s", strerror(ret));
		return -ret;
	}
	s->watchdog_started = true;
	pthread_mutex_lock(&s->lock);
	while (!s->start_done)
		pthread_cond_wait(&s->started, &s->lock);
	ret = s->start_ret;
	pthread_mutex_unlock(&s->lock);
	if (ret) {
		snprintf(err, errlen, "%s", s->start_err);
		close(fd);
		unlink(sock_path);
		server_free(s);
		return ret;
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
	mhd.stop_daemon(s->daemon); /* joins the threads, closes the connections */
	unlink(s->path);
	server_free(s);
	a->server = NULL;
}
