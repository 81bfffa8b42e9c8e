/* tap.c: network backend on a TAP device (or any fd that carries one frame per read/write). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/net.h"
#include "util/log.h"

struct tap {
	struct net_backend be; /* first */
	int fd;
	bool is_tap;
	bool registered; /* fd is in the event loop */
};

static struct tap *to_tap(struct net_backend *b) { return (struct tap *)b; }

/* The fd's readiness (event-loop thread). */
static void tap_event(void *opaque, uint32_t events)
{
	struct tap *t = opaque;

	if (events & (EPOLLERR | EPOLLHUP)) {
		/* The TAP went away (or the peer of a socket closed): epoll would report this
		 * for ever. Stop watching; reads and writes now fail and are counted. */
		log_err("%s: the device is gone (%s): the interface is down (the VM runs on)",
			t->be.name, events & EPOLLHUP ? "hang-up" : "error");
		event_del(t->be.ev, t->fd);
		t->registered = false;
		atomic_store(&t->be.gone, true);
	}
	if (t->be.ready)
		t->be.ready(t->be.opaque, events & (EPOLLIN | EPOLLERR | EPOLLHUP), events & EPOLLOUT);
}

static ssize_t tap_recv(struct net_backend *b, void *buf, size_t len)
{
	ssize_t n = read(to_tap(b)->fd, buf, len);

	if (n < 0)
		return -errno;
	return n == 0 ? -ENOTCONN : n;
}

static int tap_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len)
{
	ssize_t w = writev(to_tap(b)->fd, iov, (int)n);

	if (w < 0)
		return -errno;
	return (size_t)w == len ? 0 : -EIO;
}

static int tap_set_offload(struct net_backend *b, unsigned flags)
{
	struct tap *t = to_tap(b);

	if (t->is_tap && ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)flags) < 0)
		return -errno;
	return 0;
}

static void tap_set_poll(struct net_backend *b, bool rx, bool tx)
{
	struct tap *t = to_tap(b);

	if (t->registered)
		event_mod(b->ev, t->fd, (rx ? EPOLLIN : 0) | (tx ? EPOLLOUT : 0));
}

int net_fd_wait_writable(int fd, unsigned ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLOUT};
	int r = poll(&pf, 1, ms > INT_MAX ? INT_MAX : (int)ms);

	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r ? 0 : -ETIMEDOUT;
}

static int tap_wait_tx(struct net_backend *b, unsigned ms)
{
	return net_fd_wait_writable(to_tap(b)->fd, ms);
}

static void tap_destroy(struct net_backend *b)
{
	struct tap *t = to_tap(b);

	if (t->registered)
		event_del(b->ev, t->fd);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

static const struct net_backend_ops tap_ops = {
    .kind = "tap",
    .recv = tap_recv,
    .send = tap_send,
    .set_offload = tap_set_offload,
    .set_poll = tap_set_poll,
    .wait_tx = tap_wait_tx,
    .destroy = tap_destroy,
};

int net_fd_backend_create(int fd, bool is_tap, struct event_loop *ev, struct net_backend **out)
{
	struct tap *t = calloc(1, sizeof(*t));
	int flags, ret;

	if (!t) {
		close(fd);
		return -ENOMEM;
	}
	t->be.ops = &tap_ops;
	t->be.offloads = true;
	t->be.ev = ev;
	t->fd = fd;
	t->is_tap = is_tap;
	snprintf(t->be.name, sizeof(t->be.name), "fd %d", fd);
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail;
	}
	if (ev) {
		/* No events until the device asks (set_poll): the driver is not ready yet. */
		ret = event_add(ev, fd, 0, tap_event, t);
		if (ret)
			goto fail;
		t->registered = true;
	}
	*out = &t->be;
	return 0;

fail:
	tap_destroy(&t->be);
	return ret;
}

/* Why TUNSETIFF failed, in words a user can act on (NULL: not a TAP). */
static const char *tunsetiff_hint(int e)
{
	switch (e) {
	case EPERM:
	case EACCES:
		return " (the TAP belongs to another user or group: create it with 'ip tuntap add "
		       "dev NAME mode tap user USER', or run with CAP_NET_ADMIN)";
	case EBUSY:
		return " (another process has it open)";
	case EINVAL: /* the name is taken by a TUN device or another kind of interface */
		return NULL;
	default:
		return "";
	}
}

int net_tap_open(const char *name, struct event_loop *ev, struct net_backend **out, char *err,
		 size_t errlen)
{
	struct ifreq ifr = {0};
	unsigned features = 0;
	int hdr = NET_HDR_LEN, fd, ret;

	if (strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "tap '%.32s': name longer than %d bytes", name, IFNAMSIZ - 1);
		return -EINVAL;
	}
	/* TUNSETIFF would create a missing device (with CAP_NET_ADMIN): kiln only attaches. */
	if (!if_nametoindex(name)) {
		snprintf(err, errlen,
			 "tap '%s': no such network interface (create it first: ip tuntap add dev "
			 "%s mode tap)",
			 name, name);
		return -ENODEV;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "tap '%s': /dev/net/tun: %s%s", name, strerror(errno),
			 errno == ENOENT ? " (load the tun module: modprobe tun)" : "");
		return ret;
	}
	if (ioctl(fd, TUNGETFEATURES, &features) == 0 && !(features & IFF_VNET_HDR)) {
		snprintf(err, errlen, "tap '%s': the kernel's TUN driver lacks IFF_VNET_HDR", name);
		close(fd);
		return -ENOTSUP;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		if (tunsetiff_hint(errno))
			snprintf(err, errlen, "tap '%s': %s%s", name, strerror(errno),
				 tunsetiff_hint(errno));
		else
			snprintf(err, errlen,
				 "tap '%s': not a TAP device (a TUN device or another kind of "
				 "interface; make one with: ip tuntap add dev %s mode tap)",
				 name, name);
		close(fd);
		return ret;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, 0UL) < 0) {
		ret = -errno;
		snprintf(err, errlen, "tap '%s': vnet header set-up: %s", name, strerror(errno));
		close(fd);
		return ret;
	}
	ret = net_fd_backend_create(fd, true, ev, out);
	if (ret) {
		snprintf(err, errlen, "tap '%s': %s", name, strerror(-ret));
		return ret;
	}
	snprintf((*out)->name, sizeof((*out)->name), "tap '%s'", name);
	return 0;
}
