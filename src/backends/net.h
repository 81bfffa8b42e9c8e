/* net.h: network backends of virtio-net: a TAP device, any packet fd (tests, bench), and
 * user-mode networking through a passt process.
 *
 * Every frame crossing this interface starts with the 12-byte virtio_net_hdr_v1 (offload
 * hints, see virtio/net.h), in both directions:
 *
 *   guest --TX--> device --send(iov: hdr + frame)--> backend --> TAP fd / passt's socket
 *   guest <--RX-- device <--recv(buf: hdr + frame)-- backend <-- TAP fd / passt's socket
 *
 * Threads: a backend's fds live in the event loop. When its fd has frames (rx) or room again
 * after a send returned -EAGAIN (tx), the backend calls be->ready() from the event-loop thread
 * without any device lock held. The device calls recv/send/set_poll/wait_tx with its lock held,
 * on the event-loop thread; set_offload and set_poll also on a vCPU thread (activate, reset). No
 * backend calls ready() from inside recv or send.
 *
 * A backend whose other end goes away for good (the TAP is deleted, passt exits) sets gone
 * and logs why, once; then recv and send return -ENOTCONN, and the device takes the guest's
 * link down.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"
#include "util/compiler.h"
#include "vmm/event.h"

#define NET_HDR_LEN 12				/* struct virtio_net_hdr_v1 */
#define NET_MAX_FRAME 65550			/* 64 KiB IP packet + Ethernet and VLAN headers */
#define NET_MAX_PACKET (NET_HDR_LEN + NET_MAX_FRAME) /* 65562: one frame with its header */
#define NET_SEND_IOV_MAX 65 /* iovecs per send: the header, then up to 64 of the frame */

struct net_backend;

struct net_backend_ops {
	const char *kind; /* "tap", "fd", "user": for logs */
	/* Read one frame, header first, into buf (len >= NET_MAX_PACKET). Returns its length,
	 * -EAGAIN when none is waiting, or another -errno. */
	ssize_t (*recv)(struct net_backend *b, void *buf, size_t len);
	/* Send one frame of len bytes given as iov, header first. Returns 0 (sent, or dropped by
	 * the host as a network may drop), -EAGAIN (no room: the caller keeps the frame and asks
	 * for tx readiness), or another -errno (not sent). */
	int (*send)(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len);
	/* Offloads the host may put on frames it hands to recv (TUN_F_* bits). Optional. */
	int (*set_offload)(struct net_backend *b, unsigned tun_flags);
	/* Which readiness to report through ready(): rx (frames to read), tx (room again). */
	void (*set_poll)(struct net_backend *b, bool rx, bool tx);
	/* Wait at most ms for the room that tx readiness reports, for a device that cannot go
	 * back to the event loop for it (a snapshot's drain, event-loop thread, device lock
	 * held). Returns 0 (room, or the fd failed or was interrupted: the next send says
	 * which), -ETIMEDOUT, or another -errno (cannot wait). Optional: without it the device
	 * cannot wait. */
	int (*wait_tx)(struct net_backend *b, unsigned ms);
	void (*destroy)(struct net_backend *b);
};

struct net_backend {
	const struct net_backend_ops *ops;
	bool offloads;		/* frames may carry checksum and segmentation offloads */
	struct event_loop *ev;
	/* Set by the device: readiness (event-loop thread, no device lock held). */
	void (*ready)(void *opaque, bool rx, bool tx);
	void *opaque;
	_Atomic uint64_t rx_dropped; /* frames for the guest the backend had to drop */
	_Atomic bool gone;	     /* the other end went away for good */
	char name[VM_CONFIG_ID_MAX]; /* "tap 'tap0'", "passt (pid 1234)", for logs */
};

/* Attach the existing TAP device `name` (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 12-byte vnet
 * header, no offloads until set_offload). The fd is registered in ev with no events until
 * set_poll. On error a one-line message in err (missing device, not a TAP, EPERM, busy). */
int net_tap_open(const char *name, struct event_loop *ev, struct net_backend **out, char *err,
		 size_t errlen) __must_check;
/* The same on any fd that carries one frame (header first) per read and write, such as a
 * SOCK_SEQPACKET socketpair: tests and benchmarks. Takes ownership of fd. set_offload is a
 * no-op unless fd is a TAP (is_tap). */
int net_fd_backend_create(int fd, bool is_tap, struct event_loop *ev,
			  struct net_backend **out) __must_check;
/* User-mode networking through passt: NAT, DHCP and DNS forwarding on 10.0.2.0/24 (guest
 * 10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3), cfg->hostfwd as passt's port forwards, the
 * gateway mapped to the host's loopback only with cfg->host_loopback. kiln starts a passt
 * (KILN_PASST, else passt in PATH) and waits until it is ready, or connects to cfg->passt.
 * On error (passt missing, a forwarded port in use...) a one-line message in err. */
int net_passt_create(const struct net_config *cfg, struct event_loop *ev,
		     struct net_backend **out, char *err, size_t errlen) __must_check;

/* poll(2) fd for POLLOUT at most ms: wait_tx of the backends over one fd. */
int net_fd_wait_writable(int fd, unsigned ms) __must_check;

static inline void net_backend_destroy(struct net_backend *b)
{
	if (b)
		b->ops->destroy(b);
}
