/* passt.c: user-mode networking out of kiln's process. passt (Debian's passt package) does
 * the NAT, DHCP, DNS and port forwarding under its own confinement; kiln carries the guest's
 * frames to it over a stream socket (passt_stream.h): one end of a socketpair given to the
 * passt that kiln starts (passt_spawn.c), or a connection to the Unix socket of a passt that
 * the user started (passt=PATH).
 *
 * When passt goes away (it exits, is killed, or breaks the stream), the backend says so once
 * (be->gone and a log line) and stops; the device takes the guest's link down and the VM runs
 * on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "backends/net.h"
#include "backends/passt.h"
#include "backends/passt_stream.h"
#include "util/clock.h"
#include "util/log.h"
#include "virtio/queue.h"

#define PASST_SOCK_BUF (4 << 20) /* bytes each way, as far as net.core.[rw]mem_max allow */
#define PASST_SKB_SLACK 8192	 /* the kernel's overhead on a queued frame, generously */
#define PASST_FINISH_MS 50	 /* for the rest of a frame the socket took in part */
#define PASST_ONE_BUFFER 16384	 /* below the kernel's single-buffer size for a Unix stream */

struct passt {
	struct net_backend be; /* first */
	int fd;
	bool registered;
	bool want_rx, want_tx;
	char id[VM_CONFIG_ID_MAX]; /* the interface's, for log lines */
	struct passt_child child;
	int sndbuf; /* SO_SNDBUF of our end, in the kernel's accounting */
	struct passt_rx rx; /* last: large */
};

static struct passt *to_passt(struct net_backend *b) { return (struct passt *)b; }

static void update_poll(struct passt *p)
{
	if (p->registered)
		event_mod(p->be.ev, p->fd,
			  (p->want_rx ? EPOLLIN : 0) |
				  (p->want_tx ? EPOLLOUT : 0));
}

/* passt is gone: say so once, stop watching the socket. The caller reports readiness (or is
 * the device itself, which looks at be->gone). */
static void passt_gone(struct passt *p, const char *why)
{
	char buf[80];

	if (atomic_load(&p->be.gone))
		return;
	if (!why) { /* a failed read or write: errno says why */
		snprintf(buf, sizeof(buf), "failed on its socket (%s)", strerror(errno));
		why = buf;
	}
	atomic_store(&p->be.gone, true);
	if (p->registered) {
		event_del(p->be.ev, p->fd);
		p->registered = false;
	}
	log_err("net '%s': %s %s: the interface is down (the VM runs on)", p->id, p->be.name, why);
}

/* Would a frame of total bytes fit in the socket now, whole? passt reads a frame it has begun
 * with one more (blocking) recv() and drops it, and loses its place in the stream, if that
 * recv() returns less than the rest: so kiln never leaves part of a frame in the socket, and
 * sends only when the whole frame fits. EPOLLOUT on a Unix stream socket means at most a
 * quarter of the buffer is in use, so once the socket has drained a frame always fits. */
static bool frame_fits(struct passt *p, size_t total)
{
	int queued = 0;

	/* A frame this small goes out as one buffer of the kernel's: all of it or -EAGAIN, never
	 * a part. Standard frames so cost no SIOCOUTQ on the transmit path. */
	if (total <= PASST_ONE_BUFFER)
		return true;
	if (p->sndbuf <= 0 || ioctl(p->fd, SIOCOUTQ, &queued) < 0 || queued <= 0)
		return true; /* empty, or cannot tell: try, and finish a partial write below */
	/* Where EPOLLOUT would say so, try too (a small buffer of a user's passt), or the
	 * device would be woken for room it is then refused, again and again. */
	return (size_t)queued + total + PASST_SKB_SLACK <= (size_t)p->sndbuf ||
	       (size_t)queued * 4 <= (size_t)p->sndbuf;
}

/* The socket took only the first done bytes of a frame: send the rest now, waiting for room
 * at most PASST_FINISH_MS (passt is itself waiting for those bytes). Returns 0, or -ENOTCONN
 * (passt is gone or stuck: the stream cannot be resumed). */
static int finish_frame(struct passt *p, const struct iovec *out, unsigned nout, size_t done,
			size_t total)
{
	uint64_t deadline = clock_ms() + PASST_FINISH_MS;
	struct iovec rest[NET_SEND_IOV_MAX + 1];

	while (done < total) {
		struct msghdr mh = {.msg_iov = rest,
				    .msg_iovlen = iov_slice(out, nout, done, total - done, rest)};
		struct pollfd pf = {.fd = p->fd, .events = POLLOUT};
		ssize_t w = sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			passt_gone(p, NULL);
			return -ENOTCONN;
		}
		if (clock_ms() >= deadline || poll(&pf, 1, PASST_FINISH_MS) < 0) {
			passt_gone(p, "stopped reading in the middle of a frame");
			return -ENOTCONN;
		}
	}
	return 0;
}

static void passt_event(void *opaque, uint32_t events)
{
	struct passt *p = opaque;

	/* Readable data first: recv() reports the end of the stream after the last frame. */
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN))
		passt_gone(p, events & EPOLLERR ? "failed (socket error)" : "closed its socket");
	if (p->be.ready)
		p->be.ready(p->be.opaque, events & EPOLLIN || atomic_load(&p->be.gone),
			    (events & EPOLLOUT && p->want_tx) || atomic_load(&p->be.gone));
}

static ssize_t passt_recv(struct net_backend *b, void *buf, size_t len)
{
	struct passt *p = to_passt(b);
	bool did_read = false;

	if (len < NET_MAX_PACKET)
		return -EINVAL;
	for (;;) {
		const uint8_t *frame;
		long n;
		size_t room;
		uint8_t *space;
		ssize_t r;

		if (atomic_load(&b->gone))
			return -ENOTCONN;
		n = passt_rx_next(&p->rx, &frame);
		if (n > 0) {
			memset(buf, 0, NET_HDR_LEN); /* no offloads: a plain frame */
			memcpy((uint8_t *)buf + NET_HDR_LEN, frame, (size_t)n);
			return NET_HDR_LEN + n;
		}
		if (n < 0) {
			passt_gone(p, "sent a frame length no frame can have");
			return -ENOTCONN;
		}
		if (did_read)
			return -EAGAIN;
		space = passt_rx_space(&p->rx, &room);
		r = recv(p->fd, space, room, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return -EAGAIN;
		if (r <= 0) {
			passt_gone(p, r == 0 ? "closed its socket" : NULL);
			return -ENOTCONN;
		}
		passt_rx_commit(&p->rx, (size_t)r);
		did_read = true;
	}
}

static int passt_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len)
{
	struct passt *p = to_passt(b);
	struct iovec out[NET_SEND_IOV_MAX + 1];
	uint8_t hdr[PASST_LEN_BYTES];
	struct msghdr mh = {.msg_iov = out};
	size_t frame_len, total;
	ssize_t w;

	if (atomic_load(&b->gone))
		return -ENOTCONN;
	if (len <= NET_HDR_LEN || len > NET_MAX_PACKET || n > NET_SEND_IOV_MAX)
		return -EINVAL;
	frame_len = len - NET_HDR_LEN; /* passt takes the frame without virtio's header */
	total = sizeof(hdr) + frame_len;
	if (!frame_fits(p, total))
		return -EAGAIN;
	passt_len_encode(hdr, frame_len);
	out[0] = (struct iovec){hdr, sizeof(hdr)};
	mh.msg_iovlen = 1 + iov_slice(iov, n, NET_HDR_LEN, frame_len, out + 1);
	do
		w = sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (w < 0) {
		passt_gone(p, NULL);
		return -ENOTCONN;
	}
	if ((size_t)w < total)
		return finish_frame(p, out, (unsigned)mh.msg_iovlen, (size_t)w, total);
	return 0;
}

static void passt_set_poll(struct net_backend *b, bool rx, bool tx)
{
	struct passt *p = to_passt(b);

	p->want_rx = rx;
	p->want_tx = tx;
	update_poll(p);
}

static int passt_wait_tx(struct net_backend *b, unsigned ms)
{
	struct passt *p = to_passt(b);

	if (atomic_load(&b->gone) || p->fd < 0)
		return 0; /* send says -ENOTCONN */
	return net_fd_wait_writable(p->fd, ms);
}

static void passt_destroy(struct net_backend *b)
{
	struct passt *p = to_passt(b);

	if (p->registered)
		event_del(b->ev, p->fd);
	if (p->fd >= 0)
		close(p->fd); /* a passt started by kiln exits at the end of its stream */
	if (p->child.pid)
		passt_child_stop(&p->child);
	free(p);
}

static const struct net_backend_ops passt_ops = {
    .kind = "user",
    .recv = passt_recv,
    .send = passt_send,
    .set_poll = passt_set_poll,
    .wait_tx = passt_wait_tx,
    .destroy = passt_destroy,
};

/* Connect to the Unix socket of a passt the user started. */
static int connect_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd, ret;

	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "passt=%.64s...: path longer than %zu bytes", path,
			 sizeof(a.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "passt socket: %s", strerror(errno));
		return ret;
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		ret = -errno;
		snprintf(err, errlen, "passt=%s: %s%s", path, strerror(errno),
			 errno == ECONNREFUSED || errno == ENOENT ? " (is passt running there?)"
								  : "");
		close(fd);
		return ret;
	}
	return fd;
}

int net_passt_create(const struct net_config *cfg, struct event_loop *ev,
		     struct net_backend **out, char *err, size_t errlen)
{
	struct passt *p = calloc(1, sizeof(*p));
	int sv[2] = {-1, -1}, ret;

	socklen_t sl = sizeof(int);

	if (!p) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	p->be.ops = &passt_ops;
	p->be.ev = ev;
	p->fd = -1;
	p->child.pidfd = p->child.err_fd = -1;
	snprintf(p->id, sizeof(p->id), "%s", cfg->id);
	passt_rx_init(&p->rx);
	if (cfg->passt) {
		ret = p->fd = connect_socket(cfg->passt, err, errlen);
		if (ret < 0)
			goto fail;
		snprintf(p->be.name, sizeof(p->be.name), "the passt at %.40s", cfg->passt);
	} else {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			ret = -errno;
			snprintf(err, errlen, "socketpair: %s", strerror(errno));
			goto fail;
		}
		/* Room for a burst of large frames each way (the default holds a few dozen). */
		for (unsigned i = 0; i < 2; i++) {
			int sz = PASST_SOCK_BUF;

			(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
			(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		}
		ret = passt_spawn(cfg, sv[1], ev, &p->child, err, errlen);
		close(sv[1]);
		if (ret)
			goto fail;
		p->fd = sv[0];
		sv[0] = -1;
		snprintf(p->be.name, sizeof(p->be.name), "passt (pid %d)", (int)p->child.pid);
		if (ev && (ret = passt_child_watch(&p->child))) {
			snprintf(err, errlen, "passt: event loop: %s", strerror(-ret));
			goto fail;
		}
	}
	if (getsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &p->sndbuf, &sl) < 0)
		p->sndbuf = 0; /* frame_fits() cannot tell, and lets every frame try */
	if (fcntl(p->fd, F_SETFL, O_NONBLOCK) < 0) {
		ret = -errno;
		snprintf(err, errlen, "passt socket: %s", strerror(errno));
		goto fail;
	}
	if (ev) {
		ret = event_add(ev, p->fd, 0, passt_event, p);
		if (ret) {
			snprintf(err, errlen, "passt: event loop: %s", strerror(-ret));
			goto fail;
		}
		p->registered = true;
	}
	*out = &p->be;
	return 0;

fail:
	if (sv[0] >= 0)
		close(sv[0]);
	if (p)
		passt_destroy(&p->be);
	return ret < 0 ? ret : -EIO;
}
