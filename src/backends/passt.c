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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/net.h"
#include "backends/passt.h"
#include "backends/passt_stream.h"
#include "util/log.h"
#include "virtio/queue.h"

#define PASST_SOCK_BUF (4 << 20) /* bytes each way, as far as net.core.[rw]mem_max allow */

struct passt {
	struct net_backend be; /* first */
	int fd;
	bool registered;
	bool want_rx, want_tx;
	char id[VM_CONFIG_ID_MAX]; /* the interface's, for log lines */
	struct passt_child child;
	/* A frame the socket took only part of: the rest goes first, on EPOLLOUT. */
	uint8_t *tx_pend;
	size_t tx_pend_len, tx_pend_off;
	struct passt_rx rx; /* last: large */
};

static struct passt *to_passt(struct net_backend *b) { return (struct passt *)b; }

static void update_poll(struct passt *p)
{
	if (p->registered)
		event_mod(p->be.ev, p->fd,
			  (p->want_rx ? EPOLLIN : 0) |
				  (p->want_tx || p->tx_pend_len ? EPOLLOUT : 0));
}

/* passt is gone: say so once, stop watching the socket. The caller reports readiness (or is
 * the device itself, which looks at be->gone). */
static void passt_gone(struct passt *p, const char *why)
{
	char buf[80];

	if (!why) { /* a failed read or write: errno says why */
		snprintf(buf, sizeof(buf), "failed on its socket (%s)", strerror(errno));
		why = buf;
	}
	if (atomic_load(&p->be.gone))
		return;
	atomic_store(&p->be.gone, true);
	if (p->registered) {
		event_del(p->be.ev, p->fd);
		p->registered = false;
	}
	log_err("net '%s': %s %s: the interface is down (the VM runs on)", p->id, p->be.name, why);
}

/* Write the rest of a partly sent frame. Returns 0 (all out), -EAGAIN, -ENOTCONN. */
static int flush_pending(struct passt *p)
{
	while (p->tx_pend_len) {
		ssize_t w = send(p->fd, p->tx_pend + p->tx_pend_off, p->tx_pend_len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return -EAGAIN;
		if (w < 0) {
			passt_gone(p, NULL);
			return -ENOTCONN;
		}
		p->tx_pend_off += (size_t)w;
		p->tx_pend_len -= (size_t)w;
	}
	return 0;
}

static void passt_event(void *opaque, uint32_t events)
{
	struct passt *p = opaque;
	bool tx = false;

	if (events & EPOLLOUT && p->tx_pend_len) {
		if (flush_pending(p) == 0) {
			tx = p->want_tx;
			update_poll(p);
		}
	} else if (events & EPOLLOUT) {
		tx = p->want_tx;
	}
	/* Readable data first: recv() reports the end of the stream after the last frame. */
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN))
		passt_gone(p, events & EPOLLERR ? "failed (socket error)" : "closed its socket");
	if (atomic_load(&p->be.gone) && p->registered) {
		event_del(p->be.ev, p->fd);
		p->registered = false;
	}
	if (p->be.ready)
		p->be.ready(p->be.opaque, events & EPOLLIN || atomic_load(&p->be.gone),
			    tx || atomic_load(&p->be.gone));
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
	size_t frame_len, total, w_len;
	struct msghdr mh = {.msg_iov = out};
	unsigned nout;
	ssize_t w;
	int ret;

	if (atomic_load(&b->gone))
		return -ENOTCONN;
	if (len <= NET_HDR_LEN || len > NET_MAX_PACKET || n > NET_SEND_IOV_MAX)
		return -EINVAL;
	if (p->tx_pend_len && (ret = flush_pending(p)))
		return ret;
	frame_len = len - NET_HDR_LEN; /* passt takes the frame without virtio's header */
	passt_len_encode(hdr, frame_len);
	out[0] = (struct iovec){hdr, sizeof(hdr)};
	nout = 1 + iov_slice(iov, n, NET_HDR_LEN, frame_len, out + 1);
	total = sizeof(hdr) + frame_len;
	mh.msg_iovlen = nout;
	do
		w = sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0 && errno == EAGAIN)
		return -EAGAIN;
	if (w < 0) {
		passt_gone(p, NULL);
		return -ENOTCONN;
	}
	w_len = (size_t)w;
	if (w_len < total) {
		/* The stream holds part of the frame: the rest must follow before anything else. */
		p->tx_pend_len = total - w_len;
		p->tx_pend_off = 0;
		if (w_len < sizeof(hdr)) {
			memcpy(p->tx_pend, hdr + w_len, sizeof(hdr) - w_len);
			iov_to_buf(iov, n, NET_HDR_LEN, p->tx_pend + sizeof(hdr) - w_len, frame_len);
		} else {
			iov_to_buf(iov, n, NET_HDR_LEN + (w_len - sizeof(hdr)), p->tx_pend,
				   p->tx_pend_len);
		}
		update_poll(p);
	}
	return 0;
}

static void passt_set_poll(struct net_backend *b, bool rx, bool tx)
{
	struct passt *p = to_passt(b);

	p->want_rx = rx;
	p->want_tx = tx;
	update_poll(p);
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
	free(p->tx_pend);
	free(p);
}

static const struct net_backend_ops passt_ops = {
    .kind = "user",
    .recv = passt_recv,
    .send = passt_send,
    .set_poll = passt_set_poll,
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

	if (!p || !(p->tx_pend = malloc(PASST_LEN_BYTES + NET_MAX_FRAME))) {
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
