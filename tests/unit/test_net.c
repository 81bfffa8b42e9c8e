/* test_net.c: virtio-net: vnet header rules, offload mapping, MAC and hostfwd parsing, and the
 * device over a SOCK_SEQPACKET socketpair backend (receive with a full ring, MRG_RXBUF, TX
 * chains, a backend that is full, the snapshot drain). */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_vnet.h"
#include "snapshot/state.h"
#include "util/clock.h"
#include "util/log.h"
#include "vmm/event.h"

#define F(bit) BIT_ULL(bit)
#define BASE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS))
#define OFFLOADS                                                                                   \
	(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) |          \
	 F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6))
#define MRG F(VIRTIO_NET_F_MRG_RXBUF)
#define EVIDX F(VIRTIO_RING_F_EVENT_IDX)

/* ---- pure helpers --------------------------------------------------------------------------- */

static void test_features(void **state)
{
	uint64_t tap = virtio_net_features(true, 0), user = virtio_net_features(false, 9000);

	assert_true(tap & F(VIRTIO_NET_F_MAC));
	assert_true(tap & F(VIRTIO_NET_F_STATUS));
	assert_true(tap & MRG);
	assert_true(tap & F(VIRTIO_RING_F_EVENT_IDX));
	assert_int_equal(tap & OFFLOADS, OFFLOADS);
	assert_false(tap & F(VIRTIO_NET_F_MTU));
	assert_false(user & OFFLOADS);
	assert_true(user & F(VIRTIO_NET_F_MTU));
	/* never offered: ECN and UFO, either way */
	assert_false(tap & (F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_HOST_UFO) |
			    F(VIRTIO_NET_F_GUEST_ECN) | F(VIRTIO_NET_F_GUEST_UFO)));
}

static void test_tun_offload(void **state)
{
	assert_int_equal(virtio_net_tun_offload(0), 0);
	assert_int_equal(virtio_net_tun_offload(F(VIRTIO_NET_F_GUEST_CSUM)), TUN_F_CSUM);
	/* TSO without GUEST_CSUM: nothing (TUN and the spec need the checksum offload) */
	assert_int_equal(virtio_net_tun_offload(F(VIRTIO_NET_F_GUEST_TSO4)), 0);
	assert_int_equal(virtio_net_tun_offload(F(VIRTIO_NET_F_GUEST_CSUM) |
						F(VIRTIO_NET_F_GUEST_TSO4)),
			 TUN_F_CSUM | TUN_F_TSO4);
	assert_int_equal(virtio_net_tun_offload(F(VIRTIO_NET_F_GUEST_CSUM) |
						F(VIRTIO_NET_F_GUEST_TSO4) |
						F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_ECN)),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
	/* ECN alone means nothing without TSO */
	assert_int_equal(
	    virtio_net_tun_offload(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_ECN)),
	    TUN_F_CSUM);
	assert_int_equal(
	    virtio_net_tun_offload(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_UFO)),
	    TUN_F_CSUM | TUN_F_UFO);
	/* host-side (guest transmit) offloads do not change what TUN may send us */
	assert_int_equal(virtio_net_tun_offload(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4)),
			 0);
}

static struct virtio_net_hdr_v1 hdr(uint8_t flags, uint8_t gso, uint16_t hdr_len,
				    uint16_t gso_size, uint16_t start, uint16_t off)
{
	return (struct virtio_net_hdr_v1){.flags = flags,
					  .gso_type = gso,
					  .hdr_len = htole16(hdr_len),
					  .gso_size = htole16(gso_size),
					  .csum_start = htole16(start),
					  .csum_offset = htole16(off)};
}

static void test_tx_hdr(void **state)
{
	uint64_t all = BASE | OFFLOADS;
	struct virtio_net_hdr_v1 h;
	const char *why = NULL;

	h = hdr(0, 0, 0, 0, 0, 0);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 60, BASE, &why), 0);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 13, BASE, &why), -EINVAL);
	assert_string_equal(why, "frame shorter than an Ethernet header");
	assert_int_equal(virtio_net_check_tx_hdr(&h, NET_MAX_FRAME, BASE, &why), 0);
	assert_int_equal(virtio_net_check_tx_hdr(&h, NET_MAX_FRAME + 1, BASE, &why), -EINVAL);

	/* partial checksum: needs CSUM and a checksum field inside the frame */
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 100, BASE, &why), -EINVAL);
	assert_string_equal(why, "NEEDS_CSUM without the CSUM feature");
	assert_int_equal(virtio_net_check_tx_hdr(&h, 100, all, &why), 0);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 52, all, &why), 0);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 51, all, &why), -EINVAL);
	assert_string_equal(why, "checksum field outside the frame");
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0xffff, 0xffff); /* no u16 overflow */
	assert_int_equal(virtio_net_check_tx_hdr(&h, NET_MAX_FRAME, all, &why), -EINVAL);

	/* DATA_VALID and unknown flags are the device's, not the driver's */
	h = hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0, 0);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 60, all, &why), -EINVAL);
	assert_string_equal(why, "header flags other than NEEDS_CSUM");

	/* TSO: only what was negotiated, with NEEDS_CSUM, a segment size, hdr_len in the frame */
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all, &why), 0);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, BASE | F(VIRTIO_NET_F_CSUM), &why),
			 -EINVAL);
	assert_string_equal(why, "GSO type not negotiated");
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all, &why), 0);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all & ~F(VIRTIO_NET_F_HOST_TSO6), &why),
			 -EINVAL);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN; /* ECN not offered */
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all, &why), -EINVAL);
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all, &why), -EINVAL);
	h.gso_type = 2; /* no such type */
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all, &why), -EINVAL);
	h.gso_type = VIRTIO_NET_HDR_GSO_ECN; /* ECN bit on no GSO */
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all, &why), -EINVAL);
	h = hdr(0, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all, &why), -EINVAL);
	assert_string_equal(why, "GSO without NEEDS_CSUM");
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 0, 34, 16);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 30000, all, &why), -EINVAL);
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 3000, 1448, 34, 16);
	assert_int_equal(virtio_net_check_tx_hdr(&h, 2000, all, &why), -EINVAL);
}

static void test_rx_hdr(void **state)
{
	uint64_t all = BASE | OFFLOADS;
	struct virtio_net_hdr_v1 h;

	/* no GUEST_CSUM: flags cleared (DATA_VALID is a hint), a partial checksum is refused */
	h = hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0, 0);
	h.num_buffers = 77;
	assert_int_equal(virtio_net_fix_rx_hdr(&h, BASE), 0);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.num_buffers, 0);
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16);
	assert_int_equal(virtio_net_fix_rx_hdr(&h, BASE), -EINVAL);
	assert_int_equal(virtio_net_fix_rx_hdr(&h, all), 0);
	assert_int_equal(h.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	h = hdr(0x80 | VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0, 0); /* unknown bits go */
	assert_int_equal(virtio_net_fix_rx_hdr(&h, all), 0);
	assert_int_equal(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	/* GSO frames only with the matching GUEST_TSO */
	h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	assert_int_equal(virtio_net_fix_rx_hdr(&h, all), 0);
	assert_int_equal(virtio_net_fix_rx_hdr(&h, all & ~F(VIRTIO_NET_F_GUEST_TSO4)), -EINVAL);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
	assert_int_equal(virtio_net_fix_rx_hdr(&h, all), 0);
	h.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	assert_int_equal(virtio_net_fix_rx_hdr(&h, all), -EINVAL);
}

static void test_mac(void **state)
{
	uint8_t m[6], a[6], b[6];
	char s[18];

	assert_int_equal(vm_config_parse_mac("02:00:AC:10:ff:0e", m), 0);
	assert_memory_equal(m, ((uint8_t[]){2, 0, 0xac, 0x10, 0xff, 0x0e}), 6);
	vm_config_format_mac(m, s);
	assert_string_equal(s, "02:00:ac:10:ff:0e");
	static const char *const bad[] = {"",
					  "02:00:ac:10:ff",
					  "02:00:ac:10:ff:0e:",
					  "02:00:ac:10:ff:0",
					  "02-00-ac-10-ff-0e",
					  "02:00:ac:10:ff:0g",
					  "020:0:ac:10:ff:0e",
					  " 2:00:ac:10:ff:0e",
					  "02:00:ac:10:ff:0e0"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(vm_config_parse_mac(bad[i], m), -EINVAL);

	/* generated: stable per id, unicast, locally administered, different ids differ */
	vm_config_default_mac("net0", a);
	vm_config_default_mac("net0", b);
	assert_memory_equal(a, b, 6);
	assert_int_equal(a[0] & 3, 2);
	vm_config_default_mac("net1", b);
	assert_memory_not_equal(a, b, 6);
	for (int i = 0; i < 200; i++) {
		char id[16];

		snprintf(id, sizeof(id), "if%d", i);
		vm_config_default_mac(id, b);
		assert_int_equal(b[0] & 3, 2);
	}
}

static void test_hostfwd(void **state)
{
	struct net_hostfwd f[VM_CONFIG_MAX_HOSTFWD];
	char err[256];
	unsigned n;

	assert_int_equal(
	    vm_config_parse_hostfwd("tcp:127.0.0.1:2222-:22,udp::5353-10.0.2.15:53", f, &n, err,
				    sizeof(err)),
	    0);
	assert_int_equal(n, 2);
	assert_false(f[0].udp);
	assert_int_equal(f[0].host_addr, inet_addr("127.0.0.1"));
	assert_int_equal(f[0].host_port, 2222);
	assert_int_equal(f[0].guest_addr, 0);
	assert_int_equal(f[0].guest_port, 22);
	assert_true(f[1].udp);
	assert_int_equal(f[1].host_addr, 0);
	assert_int_equal(f[1].guest_addr, inet_addr("10.0.2.15"));
	assert_int_equal(f[1].guest_port, 53);

	static const char *const bad[] = {"",
					  "tcp::22",
					  "sctp::1-:2",
					  "tcp::0-:22",
					  "tcp::2222-:65536",
					  "tcp:1.2.3:2222-:22",
					  "tcp::2222-:22,",
					  "tcp::x-:22",
					  "tcp::-1-:22",
					  "tcp::2222-:22,tcp:127.0.0.1:2222-:23",
					  /* passt forwards a host port once, whatever the address */
					  "tcp:127.0.0.1:2222-:22,tcp:10.1.1.1:2222-:23",
					  /* and to the guest's own address */
					  "udp::5353-10.0.2.16:53"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = 0;
		assert_int_equal(vm_config_parse_hostfwd(bad[i], f, &n, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "hostfwd"));
	}
	assert_int_equal(vm_config_parse_hostfwd("tcp::2222-:22,tcp:127.0.0.1:2222-:23", f, &n, err,
						 sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "hostfwd: host port tcp:2222 is forwarded twice");
}

/* ---- the device over a socketpair ---------------------------------------------------------- */

struct fx {
	struct event_loop ev;
	struct fake_vnet v;
	struct virtio_dev *d;
	int peer;  /* the host side: one frame (header first) per send/recv */
	int devfd; /* the device's side (owned by the backend) */
};

static struct fx fx;

/* A device on fx's RAM and loop over a new socketpair (not started): fx.d, fx.peer, fx.devfd. */
static int create_stopped(unsigned mtu)
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

static int create(uint64_t features, unsigned mtu)
{
	if (create_stopped(mtu))
		return -1;
	if (!(fv_start(&fx.v, fx.d, 256, features) & VIRTIO_STATUS_DRIVER_OK))
		return -1;
	return 0;
}

static int setup(void **state)
{
	log_set_level(LOG_ERROR);
	memset(&fx, 0, sizeof(fx));
	if (event_loop_init(&fx.ev) || fv_init(&fx.v))
		return -1;
	return 0;
}

static int teardown(void **state)
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
static int settle(void)
{
	int total = 0, n;

	while ((n = event_loop_run_once(&fx.ev, 0)) > 0) {
		total += n;
		assert_true(total < 100000); /* nothing may spin */
	}
	return total;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

/* The host sends a frame of len bytes (after a header with these flags). */
static void host_send(size_t len, unsigned seed, uint8_t flags)
{
	static uint8_t buf[NET_MAX_PACKET];
	struct virtio_net_hdr_v1 h = {.flags = flags};

	memcpy(buf, &h, sizeof(h));
	fill(buf + NET_HDR_LEN, len, seed);
	assert_int_equal(send(fx.peer, buf, NET_HDR_LEN + len, 0), (ssize_t)(NET_HDR_LEN + len));
}

/* Check that the guest buffer at gpa holds header + frame `seed` of len bytes. */
static void check_rx(gpa_t gpa, size_t len, unsigned seed, uint16_t num_buffers)
{
	static uint8_t want[NET_MAX_FRAME];
	const struct virtio_net_hdr_v1 *h = fd_hva(&fx.v.f, gpa);

	assert_int_equal(le16toh(h->num_buffers), num_buffers);
	fill(want, len, seed);
	assert_memory_equal((uint8_t *)fd_hva(&fx.v.f, gpa) + NET_HDR_LEN, want, len);
}

static void test_config(void **state)
{
	struct virtio_net_config c;
	uint8_t mac[6];

	assert_int_equal(create(BASE, 9000), 0);
	assert_int_equal(fx.d->config_size, sizeof(c));
	fx.d->ops->config_read(fx.d, 0, &c, sizeof(c));
	vm_config_default_mac("net0", mac);
	assert_memory_equal(c.mac, mac, 6);
	virtio_net_get_mac(fx.d, mac);
	assert_memory_equal(c.mac, mac, 6);
	assert_int_equal(le16toh(c.status), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(le16toh(c.max_virtqueue_pairs), 1);
	assert_int_equal(le16toh(c.mtu), 9000);
	assert_true(fx.d->host_features & F(VIRTIO_NET_F_MTU));
}

static void test_tx_chain(void **state)
{
	uint8_t got[4096];
	struct virtio_net_stats st;
	uint32_t id, len;

	assert_int_equal(create(BASE, 0), 0);
	settle();
	/* header alone, then the frame split over two buffers */
	gpa_t h = fd_alloc(&fx.v.f, NET_HDR_LEN), a = fd_alloc(&fx.v.f, 100),
	      b = fd_alloc(&fx.v.f, 900);
	memset(fd_hva(&fx.v.f, h), 0, NET_HDR_LEN);
	fill(fd_hva(&fx.v.f, a), 100, 1);
	fill(fd_hva(&fx.v.f, b), 900, 101);
	struct fd_buf bufs[] = {{h, NET_HDR_LEN, false}, {a, 100, false}, {b, 900, false}};
	uint16_t head = fv_add(&fx.v, FV_TXQ, bufs, 3);
	/* header and frame start in one buffer */
	gpa_t c = fd_alloc(&fx.v.f, NET_HDR_LEN + 60);
	memset(fd_hva(&fx.v.f, c), 0, NET_HDR_LEN);
	fill((uint8_t *)fd_hva(&fx.v.f, c) + NET_HDR_LEN, 60, 9);
	struct fd_buf one = {c, NET_HDR_LEN + 60, false};
	uint16_t head2 = fv_add(&fx.v, FV_TXQ, &one, 1);

	virtio_dev_kick(fx.d, FV_TXQ);
	settle();
	assert_true(fv_used(&fx.v, FV_TXQ, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_true(fv_used(&fx.v, FV_TXQ, &id, &len));
	assert_int_equal(id, head2);

	assert_int_equal(recv(fx.peer, got, sizeof(got), MSG_DONTWAIT), NET_HDR_LEN + 1000);
	uint8_t want[1000];
	fill(want, 100, 1);
	fill(want + 100, 900, 101);
	assert_memory_equal(got + NET_HDR_LEN, want, 1000);
	assert_int_equal(recv(fx.peer, got, sizeof(got), MSG_DONTWAIT), NET_HDR_LEN + 60);
	fill(want, 60, 9);
	assert_memory_equal(got + NET_HDR_LEN, want, 60);

	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.tx_packets, 2);
	assert_int_equal(st.tx_bytes, 1060);
	assert_int_equal(st.tx_dropped, 0);
	assert_true(fx.v.f.queue_irqs > 0);
}

static void test_tx_malformed(void **state)
{
	struct virtio_net_stats st;
	uint32_t id, len;
	uint8_t got[256];

	assert_int_equal(create(BASE, 0), 0); /* no CSUM, no TSO */
	settle();
	gpa_t g = fd_alloc(&fx.v.f, NET_HDR_LEN + 64);
	struct virtio_net_hdr_v1 h = hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54,
					 1448, 34, 16);
	memcpy(fd_hva(&fx.v.f, g), &h, sizeof(h));
	struct fd_buf b = {g, NET_HDR_LEN + 64, false};
	fv_add(&fx.v, FV_TXQ, &b, 1);
	struct fd_buf shortb = {g, 8, false}; /* not even a header */
	fv_add(&fx.v, FV_TXQ, &shortb, 1);
	virtio_dev_kick(fx.d, FV_TXQ);
	settle();
	assert_true(fv_used(&fx.v, FV_TXQ, &id, &len)); /* returned to the guest */
	assert_true(fv_used(&fx.v, FV_TXQ, &id, &len));
	assert_int_equal(recv(fx.peer, got, sizeof(got), MSG_DONTWAIT), -1); /* nothing sent */
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.tx_dropped, 2);
	assert_int_equal(st.tx_packets, 0);
	assert_false(fx.d->status & VIRTIO_STATUS_NEEDS_RESET); /* a bad frame is not a bad ring */
}

/* One 1526-byte receive buffer gets a 1000-byte frame, after a 4000-byte one when
 * oversized_first: without MRG_RXBUF that one is dropped (counted) and the buffer is kept
 * for the next frame. */
static void rx_one_buffer(bool oversized_first)
{
	struct virtio_net_stats st;
	uint32_t id, len;

	assert_int_equal(create(BASE, 0), 0);
	gpa_t g = fd_alloc(&fx.v.f, 1526);
	uint16_t head = fv_add_rx(&fx.v, g, 1526);
	settle();
	if (oversized_first)
		host_send(4000, 1, 0);
	host_send(1000, 3, 0);
	settle();
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, NET_HDR_LEN + 1000);
	check_rx(g, 1000, 3, 1);
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.rx_packets, 1);
	assert_int_equal(st.rx_bytes, 1000);
	assert_int_equal(st.rx_dropped, oversized_first);
	assert_true(fx.v.f.queue_irqs > 0);
}

static void test_rx_basic(void **state) { rx_one_buffer(false); }

static void test_rx_too_big(void **state) { rx_one_buffer(true); }

/* A full ring: frames wait in the backend, the fd is not polled meanwhile (the loop goes
 * idle instead of spinning), and every frame arrives in order once buffers come. */
static void test_rx_full_ring_waits(void **state)
{
	struct virtio_net_stats st;
	gpa_t bufs[5];
	uint32_t id, len;

	assert_int_equal(create(BASE, 0), 0);
	settle();
	for (unsigned i = 0; i < 5; i++)
		host_send(200 + i, 10 + i, 0);
	settle();
	assert_false(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(event_loop_run_once(&fx.ev, 0), 0); /* idle, though the fd is readable */

	/* two buffers: two frames, the rest keeps waiting */
	for (unsigned i = 0; i < 2; i++) {
		bufs[i] = fd_alloc(&fx.v.f, 1526);
		fv_add_rx(&fx.v, bufs[i], 1526);
	}
	virtio_dev_kick(fx.d, FV_RXQ);
	settle();
	for (unsigned i = 0; i < 2; i++) {
		assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
		assert_int_equal(len, NET_HDR_LEN + 200 + i);
		check_rx(bufs[i], 200 + i, 10 + i, 1);
	}
	assert_false(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(event_loop_run_once(&fx.ev, 0), 0);

	for (unsigned i = 2; i < 5; i++) {
		bufs[i] = fd_alloc(&fx.v.f, 1526);
		fv_add_rx(&fx.v, bufs[i], 1526);
	}
	virtio_dev_kick(fx.d, FV_RXQ);
	settle();
	for (unsigned i = 2; i < 5; i++) {
		assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
		check_rx(bufs[i], 200 + i, 10 + i, 1);
	}
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.rx_packets, 5);
	assert_int_equal(st.rx_dropped, 0);
}

/* MRG_RXBUF: one frame over four 1000-byte buffers, published together with num_buffers = 4;
 * when only part of the buffers are there, the frame waits for the rest. */
static void test_rx_mergeable(void **state)
{
	static uint8_t joined[4000], want[3000];
	uint32_t id[4], len[4];
	gpa_t g[4];

	assert_int_equal(create(BASE | MRG, 0), 0);
	for (unsigned i = 0; i < 4; i++)
		g[i] = fd_alloc(&fx.v.f, 1000);
	fv_add_rx(&fx.v, g[0], 1000);
	fv_add_rx(&fx.v, g[1], 1000);
	settle();
	host_send(3000, 5, 0);
	settle();
	assert_false(fv_used(&fx.v, FV_RXQ, &id[0], &len[0])); /* 2000 bytes are not enough */

	fv_add_rx(&fx.v, g[2], 1000);
	fv_add_rx(&fx.v, g[3], 1000);
	virtio_dev_kick(fx.d, FV_RXQ);
	settle();
	struct vring_used *u = fd_hva(&fx.v.f, fx.v.q[FV_RXQ].used);
	assert_int_equal(u->idx, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_true(fv_used(&fx.v, FV_RXQ, &id[i], &len[i]));
		assert_int_equal(id[i], i);
		memcpy(joined + 1000 * i, fd_hva(&fx.v.f, g[i]), len[i]);
	}
	assert_int_equal(len[0] + len[1] + len[2] + len[3], NET_HDR_LEN + 3000);
	assert_int_equal(len[3], NET_HDR_LEN);
	struct virtio_net_hdr_v1 h;
	memcpy(&h, joined, sizeof(h));
	assert_int_equal(le16toh(h.num_buffers), 4);
	fill(want, 3000, 5);
	assert_memory_equal(joined + NET_HDR_LEN, want, 3000);
}

/* A frame with a partial checksum for a driver without GUEST_CSUM is dropped, not passed on. */
static void test_rx_offload_not_negotiated(void **state)
{
	struct virtio_net_stats st;
	uint32_t id, len;

	assert_int_equal(create(BASE, 0), 0);
	gpa_t g = fd_alloc(&fx.v.f, 1526);
	fv_add_rx(&fx.v, g, 1526);
	settle();
	host_send(100, 1, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	host_send(100, 2, VIRTIO_NET_HDR_F_DATA_VALID);
	settle();
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	check_rx(g, 100, 2, 1);
	assert_int_equal(((struct virtio_net_hdr_v1 *)fd_hva(&fx.v.f, g))->flags, 0);
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.rx_dropped, 1);
}

/* A receive chain with a device-readable buffer breaks the protocol: NEEDS_RESET. */
static void test_rx_bad_chain(void **state)
{
	assert_int_equal(create(BASE, 0), 0);
	gpa_t g = fd_alloc(&fx.v.f, 1526);
	struct fd_buf b = {g, 1526, false};
	fv_add(&fx.v, FV_RXQ, &b, 1);
	settle();
	host_send(100, 1, 0);
	settle();
	assert_true(fx.d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(event_loop_run_once(&fx.ev, 0), 0); /* and the backend is left alone */
}

/* The backend is full (-EAGAIN): the frame waits, the chain is not returned, the loop goes
 * idle; when the peer reads, the frame goes and the queue carries on. */
static void test_tx_backend_full(void **state)
{
	static uint8_t got[NET_MAX_PACKET];
	struct virtio_net_stats st;
	uint32_t id, len;
	int sndbuf = 4096, sent = 0;

	assert_int_equal(create(BASE, 0), 0);
	settle();
	/* The device's end gets a small send buffer: it fills before the peer reads. */
	assert_int_equal(setsockopt(fx.devfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);

	gpa_t g = fd_alloc(&fx.v.f, NET_HDR_LEN + 1500);
	memset(fd_hva(&fx.v.f, g), 0, NET_HDR_LEN);
	struct fd_buf b = {g, NET_HDR_LEN + 1500, false};
	for (unsigned i = 0; i < 64; i++)
		fv_add(&fx.v, FV_TXQ, &b, 1);
	virtio_dev_kick(fx.d, FV_TXQ);
	settle();
	unsigned done = 0;
	while (fv_used(&fx.v, FV_TXQ, &id, &len))
		done++;
	assert_true(done < 64); /* the socket filled up */
	assert_int_equal(event_loop_run_once(&fx.ev, 0), 0); /* no spinning while blocked */

	while (recv(fx.peer, got, sizeof(got), MSG_DONTWAIT) > 0)
		sent++;
	for (int round = 0; round < 200 && done < 64; round++) {
		settle();
		while (fv_used(&fx.v, FV_TXQ, &id, &len))
			done++;
		while (recv(fx.peer, got, sizeof(got), MSG_DONTWAIT) > 0)
			sent++;
	}
	assert_int_equal(done, 64);
	while (recv(fx.peer, got, sizeof(got), MSG_DONTWAIT) > 0)
		sent++;
	assert_int_equal(sent, 64);
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.tx_packets, 64);
	assert_int_equal(st.tx_errors, 0);
}

/* A reset while a frame waits for room: the frame goes, the device starts clean. */
static void test_reset_with_waiting_frame(void **state)
{
	uint32_t id, len;

	assert_int_equal(create(BASE | MRG, 0), 0);
	settle();
	host_send(500, 1, 0);
	host_send(600, 2, 0);
	settle(); /* frame 1 waits */
	fv_start(&fx.v, fx.d, 256, BASE | MRG);
	gpa_t g = fd_alloc(&fx.v.f, 2048);
	fv_add_rx(&fx.v, g, 2048);
	settle();
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(len, NET_HDR_LEN + 600); /* the waiting frame was lost with the reset */
	check_rx(g, 600, 2, 1);
}

/* ---- snapshot drain ------------------------------------------------------------------------- */

#define DRAIN_FRAMES 64
#define DRAIN_LEN 1500

static bool quiesced(void)
{
	bool q;

	pthread_mutex_lock(&fx.d->lock);
	q = virtio_dev_quiesced(fx.d);
	pthread_mutex_unlock(&fx.d->lock);
	return q;
}

/* What snapshot.c's drain_devices does for the device. */
static void drain(unsigned ms)
{
	pthread_mutex_lock(&fx.d->lock);
	assert_non_null(fx.d->ops->drain);
	fx.d->ops->drain(fx.d, ms);
	pthread_mutex_unlock(&fx.d->lock);
}

static uint16_t used_idx(unsigned q)
{
	return __atomic_load_n(&((struct vring_used *)fd_hva(&fx.v.f, fx.v.q[q].used))->idx,
			       __ATOMIC_ACQUIRE);
}

/* Chains taken by the device and not returned (on the device's own books). */
static unsigned in_flight(unsigned q)
{
	const struct virtq *vq = &fx.d->queues[q].vq;

	return (uint16_t)(vq->last_avail - vq->used_idx);
}

static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The guest sends DRAIN_FRAMES frames, frame i of DRAIN_LEN bytes `fill`ed with seed i, each
 * in a chain of its own (head i), to a backend whose socket holds only a few: the device ends
 * with a frame waiting for room. Returns the chains completed. */
static unsigned tx_until_full(void)
{
	int sndbuf = 4096;
	unsigned done = 0;
	uint32_t id, len;

	assert_int_equal(create(BASE, 0), 0);
	settle();
	assert_int_equal(setsockopt(fx.devfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	for (unsigned i = 0; i < DRAIN_FRAMES; i++) {
		gpa_t g = fd_alloc(&fx.v.f, NET_HDR_LEN + DRAIN_LEN);
		struct fd_buf b = {g, NET_HDR_LEN + DRAIN_LEN, false};

		memset(fd_hva(&fx.v.f, g), 0, NET_HDR_LEN);
		fill((uint8_t *)fd_hva(&fx.v.f, g) + NET_HDR_LEN, DRAIN_LEN, i);
		assert_int_equal(fv_add(&fx.v, FV_TXQ, &b, 1), i);
	}
	virtio_dev_kick(fx.d, FV_TXQ);
	settle();
	while (fv_used(&fx.v, FV_TXQ, &id, &len))
		assert_int_equal(id, done++);
	assert_true(done > 0 && done < DRAIN_FRAMES);
	assert_int_equal(in_flight(FV_TXQ), 1); /* the frame that waits */
	assert_false(quiesced());
	return done;
}

/* Read what the host has: frame k must be frame number *got (in order, whole, once). Returns
 * false on the first frame that is not. */
static bool host_take(int fd, unsigned *got)
{
	static uint8_t buf[NET_MAX_PACKET], want[DRAIN_LEN];
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		fill(want, DRAIN_LEN, *got);
		if (r != NET_HDR_LEN + DRAIN_LEN || memcmp(buf + NET_HDR_LEN, want, DRAIN_LEN))
			return false;
		(*got)++;
	}
	return true;
}

/* After a drain: run the loop and read on the host until every chain is back; every frame
 * arrived once, in order. */
static void tx_finish(unsigned done, unsigned got)
{
	struct virtio_net_stats st;
	uint32_t id, len;

	for (int round = 0; round < 500 && (done < DRAIN_FRAMES || got < DRAIN_FRAMES); round++) {
		settle();
		while (fv_used(&fx.v, FV_TXQ, &id, &len))
			assert_int_equal(id, done++);
		assert_true(host_take(fx.peer, &got));
	}
	assert_int_equal(done, DRAIN_FRAMES);
	assert_int_equal(got, DRAIN_FRAMES);
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.tx_packets, DRAIN_FRAMES);
	assert_int_equal(st.tx_dropped, 0);
	assert_int_equal(st.tx_errors, 0);
	assert_int_equal(in_flight(FV_TXQ), 0);
	assert_true(quiesced());
}

struct reader {
	int fd;
	unsigned delay_ms;
	_Atomic bool started;
	unsigned got;
	bool ok;
};

/* The host reads, late: delay_ms after it starts. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct timespec ts = {.tv_sec = r->delay_ms / 1000,
			      .tv_nsec = (long)(r->delay_ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
	atomic_store(&r->started, true);
	r->ok = host_take(r->fd, &r->got);
	return NULL;
}

/* A frame waits for the backend (-EAGAIN); the host reads 100 ms into the drain: the drain
 * waits for the room, sends the frame and completes its chain (one used entry, an interrupt);
 * the device is quiesced and its state saves. The rest of the ring follows once the loop runs
 * again, every frame once and in order. */
static void test_drain_tx_completes(void **state)
{
	unsigned done = tx_until_full(), irqs = fx.v.f.queue_irqs;
	struct reader r = {.fd = fx.peer, .delay_ms = 100, .ok = false};
	struct snap_buf sb;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
	drain(5000);
	assert_true(atomic_load(&r.started)); /* it waited for the host */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(r.ok);
	assert_true(quiesced());
	assert_int_equal(in_flight(FV_TXQ), 0);
	assert_int_equal(used_idx(FV_TXQ), done + 1); /* that chain, and no new one */
	assert_true(fx.v.f.queue_irqs > irqs);
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(fx.d, &sb), 0);
	snap_buf_free(&sb);
	tx_finish(done, r.got);
}

/* The host never reads during the drain: after its time the drain gives up, having slept,
 * not spun; the chain is still held (the snapshot would be refused) and nothing is lost: the
 * frame goes, and its chain comes back, once the host reads. */
static void test_drain_tx_times_out(void **state)
{
	unsigned done = tx_until_full();
	uint64_t t0 = clock_ms();
	double cpu0 = thread_cpu_ms();

	drain(150);
	uint64_t wall = clock_ms() - t0;
	double cpu = thread_cpu_ms() - cpu0;

	assert_true(wall >= 140);
	assert_true(wall < 3000);
	if (cpu > 50)
		fail_msg("the drain used %.1f ms of CPU in %llu ms: it spun", cpu,
			 (unsigned long long)wall);
	assert_false(quiesced());
	assert_int_equal(in_flight(FV_TXQ), 1);
	assert_int_equal(used_idx(FV_TXQ), done);
	tx_finish(done, 0);
}

/* The backend goes away while a frame waits for room: the frame is dropped (counted) and its
 * chain goes back to the guest, so nothing stays in flight (a snapshot saves and loads). */
static void test_link_down_returns_waiting_chain(void **state)
{
	struct virtio_net_stats st;
	unsigned done = tx_until_full();

	close(fx.peer);
	fx.peer = -1;
	settle();
	assert_int_equal(in_flight(FV_TXQ), 0);
	assert_int_equal(used_idx(FV_TXQ), done + 1);
	assert_true(quiesced());
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.tx_dropped, 1);
	assert_true(st.link_down);
}

/* MRG_RXBUF, two 1000-byte receive buffers, a 3000-byte frame: the device holds both chains
 * for it and waits for more. */
static void rx_stash_two(uint64_t features, gpa_t g[4])
{
	uint32_t id, len;

	assert_int_equal(create(features, 0), 0);
	for (unsigned i = 0; i < 4; i++)
		g[i] = fd_alloc(&fx.v.f, 1000);
	fv_add_rx(&fx.v, g[0], 1000);
	fv_add_rx(&fx.v, g[1], 1000);
	settle();
	host_send(3000, 5, 0);
	settle();
	assert_false(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(in_flight(FV_RXQ), 2);
	assert_false(quiesced());
}

/* The 3000-byte frame, whole, in the four 1000-byte buffers g (heads 0-3), as one used batch
 * from entry `from` on. */
static void check_rx_frame(const gpa_t g[4], uint16_t from)
{
	static uint8_t joined[4000], want[3000];
	struct virtio_net_hdr_v1 h;
	uint32_t id = 0, len = 0, total = 0;

	assert_int_equal(used_idx(FV_RXQ), from + 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
		assert_int_equal(id, i);
		memcpy(joined + total, fd_hva(&fx.v.f, g[i]), len);
		total += len;
	}
	assert_int_equal(total, NET_HDR_LEN + 3000);
	memcpy(&h, joined, sizeof(h));
	assert_int_equal(le16toh(h.num_buffers), 4);
	fill(want, 3000, 5);
	assert_memory_equal(joined + NET_HDR_LEN, want, 3000);
}

/* The held receive chains go back to the ring untouched (no used entry): the device is
 * quiesced, its state saves, and afterwards it takes the same chains again and the waiting
 * frame arrives whole. With EVENT_IDX, the device that ran dry again asks the guest to kick
 * for its next buffers, and the guest is interrupted for the frame. */
static void test_drain_rx_rewinds(void **state)
{
	struct snap_buf sb;
	unsigned irqs;
	gpa_t g[4];

	rx_stash_two(BASE | MRG | EVIDX, g);
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(fx.d, &sb), -EBUSY);
	snap_buf_free(&sb);

	drain(1000);
	assert_true(quiesced());
	assert_int_equal(in_flight(FV_RXQ), 0);
	assert_int_equal(fx.d->queues[FV_RXQ].vq.last_avail, 0);
	assert_int_equal(used_idx(FV_RXQ), 0); /* the guest saw nothing */
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(fx.d, &sb), 0);
	snap_buf_free(&sb);

	settle(); /* the drain's kick: the two chains again, still not enough */
	assert_int_equal(in_flight(FV_RXQ), 2);
	assert_int_equal(used_idx(FV_RXQ), 0);
	irqs = fx.v.f.queue_irqs;
	uint16_t old = fx.v.q[FV_RXQ].avail_idx;
	fv_add_rx(&fx.v, g[2], 1000);
	fv_add_rx(&fx.v, g[3], 1000);
	assert_true(fv_kick_needed(&fx.v, FV_RXQ, old, true));
	virtio_dev_kick(fx.d, FV_RXQ);
	settle();
	check_rx_frame(g, 0);
	assert_true(fx.v.f.queue_irqs > irqs);
	assert_int_equal(in_flight(FV_RXQ), 0);
	assert_true(quiesced());
}

/* Buffers the guest published before it was paused, without the device having seen the kick:
 * the drain delivers the waiting frame into them. */
static void test_drain_rx_delivers(void **state)
{
	unsigned irqs;
	gpa_t g[4];

	rx_stash_two(BASE | MRG, g);
	fv_add_rx(&fx.v, g[2], 1000);
	fv_add_rx(&fx.v, g[3], 1000);
	irqs = fx.v.f.queue_irqs;
	drain(1000);
	assert_true(quiesced());
	check_rx_frame(g, 0);
	assert_true(fx.v.f.queue_irqs > irqs);
}

/* A chain the device cannot map (65 buffers: -E2BIG) popped between two held ones: the held
 * ones are not the last pops and cannot be rewound; they go back empty, nothing stays in
 * flight, and the waiting frame still arrives in the guest's next buffers. */
static void test_drain_rx_not_rewindable(void **state)
{
	struct fd_buf many[65];
	uint32_t id, len;
	gpa_t g[4];

	assert_int_equal(create(BASE | MRG, 0), 0);
	gpa_t a = fd_alloc(&fx.v.f, 1000), c = fd_alloc(&fx.v.f, 1000);
	fv_add_rx(&fx.v, a, 1000);
	for (unsigned i = 0; i < 65; i++)
		many[i] = (struct fd_buf){fd_alloc(&fx.v.f, 16), 16, true};
	uint16_t big = fv_add(&fx.v, FV_RXQ, many, 65);
	fv_add_rx(&fx.v, c, 1000);
	settle();
	host_send(3000, 5, 0);
	settle();
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len)); /* the unusable one, empty */
	assert_int_equal(id, big);
	assert_int_equal(len, 0);
	assert_int_equal(in_flight(FV_RXQ), 2);

	drain(1000);
	assert_true(quiesced());
	assert_int_equal(in_flight(FV_RXQ), 0);
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, 66);
	assert_int_equal(len, 0);

	/* The frame still waits (the VM ran on): four new buffers take it. */
	fx.v.q[FV_RXQ].next_desc = 0; /* descriptors 0-3 are free again */
	for (unsigned i = 0; i < 4; i++) {
		g[i] = fd_alloc(&fx.v.f, 1000);
		fv_add_rx(&fx.v, g[i], 1000);
	}
	virtio_dev_kick(fx.d, FV_RXQ);
	settle();
	check_rx_frame(g, 3);
}

/* The state saved after a drain loads into a new device (a restore): no chain in flight, and
 * the restored device pops the chains the first one held and fills them with its own next
 * frame. The frame that waited in the first device is not in the snapshot. */
static void test_drain_rx_restore(void **state)
{
	struct snap_buf sb;
	struct snap_cursor c;
	uint32_t id, len;
	char err[256];
	gpa_t g[4];

	rx_stash_two(BASE | MRG | EVIDX, g);
	drain(1000);
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(fx.d, &sb), 0);
	virtio_dev_destroy(fx.d);
	close(fx.peer);

	assert_int_equal(create_stopped(0), 0);
	fx.d->transport = (struct virtio_transport){.raise = fd_raise, .opaque = &fx.v.f};
	fx.v.f.dev = fx.d;
	fx.v.dev = fx.d;
	snap_cursor_init(&c, "net", sb.data, sb.len);
	int ret = virtio_dev_state_load(fx.d, &c, 3);
	if (snap_cursor_end(&c, err, sizeof(err)) || ret)
		fail_msg("load: %d: %s", ret, err);
	snap_buf_free(&sb);
	assert_true(fx.d->status & VIRTIO_STATUS_DRIVER_OK);
	settle(); /* the restored device's kicks */
	assert_int_equal(in_flight(FV_RXQ), 0);

	host_send(1500, 9, 0);
	settle();
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, 1000);
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, 1);
	assert_int_equal(len, NET_HDR_LEN + 1500 - 1000);
	assert_false(fv_used(&fx.v, FV_RXQ, &id, &len));
	static uint8_t joined[2000], want[1500];
	memcpy(joined, fd_hva(&fx.v.f, g[0]), 1000);
	memcpy(joined + 1000, fd_hva(&fx.v.f, g[1]), NET_HDR_LEN + 500);
	assert_int_equal(le16toh(((struct virtio_net_hdr_v1 *)joined)->num_buffers), 2);
	fill(want, 1500, 9);
	assert_memory_equal(joined + NET_HDR_LEN, want, 1500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_features),
	    cmocka_unit_test(test_tun_offload),
	    cmocka_unit_test(test_tx_hdr),
	    cmocka_unit_test(test_rx_hdr),
	    cmocka_unit_test(test_mac),
	    cmocka_unit_test(test_hostfwd),
	    cmocka_unit_test_setup_teardown(test_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tx_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tx_malformed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_basic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_full_ring_waits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_mergeable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_too_big, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_offload_not_negotiated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_bad_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tx_backend_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_with_waiting_frame, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_tx_completes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_tx_times_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_down_returns_waiting_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_rx_rewinds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_rx_delivers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_rx_not_rewindable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_rx_restore, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
