/* test_net.c: virtio-net: vnet header rules, offload mapping, MAC and hostfwd parsing, and the
 * device over a SOCK_SEQPACKET socketpair backend (receive with a full ring, MRG_RXBUF, TX
 * chains, a backend that is full). The snapshot drain is in test_net_drain.c. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "net_fixture.h"

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
	assert_int_equal(
	    virtio_net_tun_offload(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4)),
	    TUN_F_CSUM | TUN_F_TSO4);
	assert_int_equal(
	    virtio_net_tun_offload(F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) |
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

static struct virtio_net_hdr_v1 hdr(uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size,
				    uint16_t start, uint16_t off)
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

	assert_int_equal(vm_config_parse_hostfwd("tcp:127.0.0.1:2222-:22,udp::5353-10.0.2.15:53", f,
						 &n, err, sizeof(err)),
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

	static const char *const bad[] = {
	    "", "tcp::22", "sctp::1-:2", "tcp::0-:22", "tcp::2222-:65536", "tcp:1.2.3:2222-:22",
	    "tcp::2222-:22,", "tcp::x-:22", "tcp::-1-:22", "tcp::2222-:22,tcp:127.0.0.1:2222-:23",
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
	struct virtio_net_hdr_v1 h =
	    hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
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
	assert_true(done < 64);				     /* the socket filled up */
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
