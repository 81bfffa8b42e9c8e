/* net_fixture.h: one virtio-net device over a SOCK_SEQPACKET socketpair backend, driven by
 * fake_vnet.h through a real event loop, for test_net and test_net_drain (header-only, cmocka). */
#pragma once

#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_vnet.h"
#include "util/log.h"
#include "vmm/event.h"

#define F(bit) BIT_ULL(bit)
#define BASE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS))
#define OFFLOADS                                                                                   \
	(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) |          \
	 F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6))
#define MRG F(VIRTIO_NET_F_MRG_RXBUF)
#define EVIDX F(VIRTIO_RING_F_EVENT_IDX)

struct fx {
	struct event_loop ev;
	struct fake_vnet v;
	struct virtio_dev *d;
	int peer;  /* the host side: one frame (header first) per send/recv */
	int devfd; /* the device's side (owned by the backend) */
};

static struct fx fx; /* one device per test, on one loop */

/* A device on fx's RAM and loop over a new socketpair (not started): fx.d, fx.peer, fx.devfd. */
static inline int create_stopped(unsigned mtu)
{
	struct virtio_env env = {.mem = &fx.v.f.mem, .ev = &fx.ev};
	struct net_config cfg = {.id = "net0", .mtu = mtu};
	struct net_backend *be;
	char err[256];
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	fx.peer = sv[1];
	fx.devfd = sv[0];
	if (net_fd_backend_create(sv[0], false, &fx.ev, &be))
		return -1;
	if (virtio_net_create_with(&env, &cfg, be, &fx.d, err, sizeof(err))) {
		print_error("virtio_net_create_with: %s\n", err);
		return -1;
	}
	return 0;
}

static inline int create(uint64_t features, unsigned mtu)
{
	if (create_stopped(mtu))
		return -1;
	if (!(fv_start(&fx.v, fx.d, 256, features) & VIRTIO_STATUS_DRIVER_OK))
		return -1;
	return 0;
}

static inline int setup(void **state)
{
	log_set_level(LOG_ERROR);
	memset(&fx, 0, sizeof(fx));
	if (event_loop_init(&fx.ev) || fv_init(&fx.v))
		return -1;
	return 0;
}

static inline int teardown(void **state)
{
	virtio_dev_destroy(fx.d);
	fx.d = NULL;
	if (fx.peer > 0)
		close(fx.peer);
	event_loop_destroy(&fx.ev);
	fd_destroy(&fx.v.f);
	return 0;
}

/* Run the event loop until nothing is ready. Returns the handlers run. */
static inline int settle(void)
{
	int total = 0, n;

	while ((n = event_loop_run_once(&fx.ev, 0)) > 0) {
		total += n;
		assert_true(total < 100000); /* nothing may spin */
	}
	return total;
}

static inline void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

/* The host sends a frame of len bytes (after a header with these flags). */
static inline void host_send(size_t len, unsigned seed, uint8_t flags)
{
	static uint8_t buf[NET_MAX_PACKET];
	struct virtio_net_hdr_v1 h = {.flags = flags};

	memcpy(buf, &h, sizeof(h));
	fill(buf + NET_HDR_LEN, len, seed);
	assert_int_equal(send(fx.peer, buf, NET_HDR_LEN + len, 0), (ssize_t)(NET_HDR_LEN + len));
}

/* Check that the guest buffer at gpa holds header + frame `seed` of len bytes. */
static inline void check_rx(gpa_t gpa, size_t len, unsigned seed, uint16_t num_buffers)
{
	static uint8_t want[NET_MAX_FRAME];
	const struct virtio_net_hdr_v1 *h = fd_hva(&fx.v.f, gpa);

	assert_int_equal(le16toh(h->num_buffers), num_buffers);
	fill(want, len, seed);
	assert_memory_equal((uint8_t *)fd_hva(&fx.v.f, gpa) + NET_HDR_LEN, want, len);
}
