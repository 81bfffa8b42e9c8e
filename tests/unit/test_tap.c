/* test_tap.c: virtio-net on a real TAP device in a network namespace this test makes: open
 * errors, TUNSETOFFLOAD from the negotiated features, UDP both ways through the host stack,
 * and a full receive ring that loses nothing. Exit 77 (skipped) without /dev/net/tun or
 * CAP_NET_ADMIN. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_frames.h"
#include "netns_tap.h"
#include "fake_vnet.h"
#include "util/log.h"
#include "vmm/event.h"

#define TAP "kilntap0"
#define HOST_IP "10.77.0.1"
#define GUEST_IP "10.77.0.2"
#define PORT 7777
#define F(bit) BIT_ULL(bit)
#define BASE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_MRG_RXBUF))

static const uint8_t guest_mac[6] = {0x02, 0x00, 0x00, 0x77, 0x00, 0x02};
static uint8_t host_mac[6];

/* ---- fixture: the device on the TAP --------------------------------------------------------- */

static struct event_loop ev;
static struct fake_vnet v;
static struct virtio_dev *dev;

static int start(uint64_t features)
{
	struct virtio_env env = {.mem = &v.f.mem, .ev = &ev};
	struct net_config cfg = {.id = "eth0", .tap = TAP, .mac_set = true};
	char err[256];

	memcpy(cfg.mac, guest_mac, 6);
	if (virtio_net_create(&env, &cfg, &dev, err, sizeof(err))) {
		print_error("%s\n", err);
		return -1;
	}
	/* Attaching the TAP turns its carrier on, but the host only starts transmitting on it
	 * once its link watcher has run (until then its queue discipline drops everything):
	 * wait for that, or a datagram the test sends at once is lost. */
	if (netns_wait_running(TAP, 3000)) {
		print_error("%s: not running 3 s after attach\n", TAP);
		return -1;
	}
	return fv_start(&v, dev, 256, features) & VIRTIO_STATUS_DRIVER_OK ? 0 : -1;
}

static int setup(void **state) { return fv_setup(&ev, &v); }

static int teardown(void **state)
{
	fv_teardown(&ev, &v, &dev);
	return 0;
}

static void settle(void)
{
	int n, total = 0;

	while ((n = event_loop_run_once(&ev, 0)) > 0) {
		total += n;
		assert_true(total < 100000);
	}
}

/* Run the loop up to ms milliseconds or until queue qi has a used entry. */
static bool wait_used(unsigned qi, uint32_t *id, uint32_t *len, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (fv_used(&v, qi, id, len))
			return true;
		event_loop_run_once(&ev, 10);
	}
	return fv_used(&v, qi, id, len);
}

/* Header + Ethernet + IPv4 + UDP from the guest to the host at gpa. Returns its length. */
static uint32_t build_udp(gpa_t gpa, const char *payload)
{
	uint8_t *p = fd_hva(&v.f, gpa);

	memset(p, 0, NET_HDR_LEN);
	return (uint32_t)(NET_HDR_LEN + ff_udp(p + NET_HDR_LEN, host_mac, guest_mac, GUEST_IP,
					       HOST_IP, PORT + 1, PORT, payload,
					       strlen(payload)));
}

/* The UDP payload of a received frame (header + Ethernet + IPv4 + UDP) at gpa, or NULL. */
static const char *udp_payload(gpa_t gpa, uint32_t len, size_t *plen)
{
	const uint8_t *p = (const uint8_t *)fd_hva(&v.f, gpa) + NET_HDR_LEN, *l4;
	size_t l4len;

	if (len < NET_HDR_LEN || memcmp(p, guest_mac, 6) ||
	    ff_ipv4(p, len - NET_HDR_LEN, &l4, &l4len) != IPPROTO_UDP || l4len < FF_UDP)
		return NULL;
	*plen = l4len - FF_UDP;
	return (const char *)l4 + FF_UDP;
}

static int udp_socket(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = inet_addr(HOST_IP);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	return s;
}

static void host_sendto_guest(int s, const char *msg)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PORT + 1)};

	to.sin_addr.s_addr = inet_addr(GUEST_IP);
	assert_int_equal(sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)strlen(msg));
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_open_errors(void **state)
{
	struct net_backend *be = NULL, *be2 = NULL;
	char err[256];

	assert_int_equal(net_tap_open("kilnnone0", &ev, &be, err, sizeof(err)), -ENODEV);
	assert_string_equal(err, "tap 'kilnnone0': no such network interface (create it first: ip "
				 "tuntap add dev kilnnone0 mode tap)");
	assert_int_equal(net_tap_open("lo", &ev, &be, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "tap 'lo': not a TAP device (a TUN device or another kind of "
				 "interface; make one with: ip tuntap add dev lo mode tap)");
	assert_int_equal(net_tap_open(TAP, &ev, &be, err, sizeof(err)), 0);
	assert_int_equal(net_tap_open(TAP, &ev, &be2, err, sizeof(err)), -EBUSY);
	assert_string_equal(err, "tap 'kilntap0': Device or resource busy (another process has it "
				 "open)");
	net_backend_destroy(be);
	/* closed: it can be opened again (it is persistent) */
	assert_int_equal(net_tap_open(TAP, &ev, &be, err, sizeof(err)), 0);
	net_backend_destroy(be);

	struct net_config cfg = {.id = "eth9", .tap = "kilnnone0"};
	struct virtio_env env = {.mem = &v.f.mem, .ev = &ev};
	assert_int_not_equal(virtio_net_create(&env, &cfg, &dev, err, sizeof(err)), 0);
	assert_string_equal(err, "net 'eth9': tap 'kilnnone0': no such network interface (create "
				 "it first: ip tuntap add dev kilnnone0 mode tap)");
	dev = NULL;
}

/* TSO on the TAP (what the host may send us) follows the guest's GUEST_TSO4/GUEST_CSUM. */
static int tap_tso(void)
{
	struct ethtool_value ev_ = {.cmd = ETHTOOL_GTSO};
	struct ifreq ifr = {0};

	strcpy(ifr.ifr_name, TAP);
	ifr.ifr_data = (void *)&ev_;
	assert_int_equal(netns_ifreq_ioctl(SIOCETHTOOL, &ifr), 0);
	return (int)ev_.data;
}

static void test_offload(void **state)
{
	uint64_t off = F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) |
		       F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_CSUM);

	assert_int_equal(start(BASE), 0);
	assert_int_equal(tap_tso(), 0);
	fv_start(&v, dev, 256, BASE | off);
	assert_int_equal(tap_tso(), 1);
	fv_start(&v, dev, 256, BASE | F(VIRTIO_NET_F_GUEST_TSO4)); /* no GUEST_CSUM: no TSO */
	assert_int_equal(tap_tso(), 0);
	fv_start(&v, dev, 256, BASE | off);
	assert_int_equal(tap_tso(), 1);
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, 0); /* reset: offloads off again */
	pthread_mutex_unlock(&dev->lock);
	assert_int_equal(tap_tso(), 0);
}

/* A UDP datagram from the guest reaches a host socket, and one from the host reaches the
 * guest, through the host's IP stack. */
static void test_udp_both_ways(void **state)
{
	char buf[256];
	uint32_t id, len;
	size_t plen;
	int s = udp_socket();

	assert_int_equal(start(BASE | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_CSUM)), 0);
	gpa_t rx = fd_alloc(&v.f, 2048);
	fv_add_rx(&v, rx, 2048);
	settle();

	gpa_t tx = fd_alloc(&v.f, 256);
	struct fd_buf b = {tx, build_udp(tx, "hello from the guest"), false};
	fv_add(&v, FV_TXQ, &b, 1);
	virtio_dev_kick(dev, FV_TXQ);
	assert_true(wait_used(FV_TXQ, &id, &len, 2000));
	ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);
	assert_int_equal(n, 20);
	buf[n] = 0;
	assert_string_equal(buf, "hello from the guest");

	host_sendto_guest(s, "hello from the host");
	const char *p = NULL;
	while (wait_used(FV_RXQ, &id, &len, 5000)) { /* skip IPv6 chatter, if any */
		if ((p = udp_payload(rx, len, &plen)))
			break;
		fv_add_rx(&v, rx, 2048);
		virtio_dev_kick(dev, FV_RXQ);
	}
	assert_non_null(p);
	assert_int_equal(plen, 19);
	assert_memory_equal(p, "hello from the host", 19);

	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.tx_packets, 1);
	assert_true(st.rx_packets >= 1);
	close(s);
}

/* No receive buffers while the host sends: nothing is lost, the loop goes idle, and every
 * datagram arrives in order once the guest adds buffers. */
static void test_full_ring_no_drop(void **state)
{
	enum { N = 40 };
	gpa_t rx[N];
	uint32_t id, len;
	unsigned got = 0;
	int s = udp_socket();
	char msg[32];

	assert_int_equal(start(BASE), 0);
	settle();
	for (unsigned i = 0; i < N; i++) {
		snprintf(msg, sizeof(msg), "datagram %02u", i);
		host_sendto_guest(s, msg);
	}
	settle();
	assert_false(fv_used(&v, FV_RXQ, &id, &len));
	assert_int_equal(event_loop_run_once(&ev, 50), 0); /* the TAP is readable but not polled */

	for (unsigned i = 0; i < N; i++) {
		rx[i] = fd_alloc(&v.f, 2048);
		fv_add_rx(&v, rx[i], 2048);
	}
	virtio_dev_kick(dev, FV_RXQ);
	while (got < N && wait_used(FV_RXQ, &id, &len, 5000)) {
		size_t plen;
		const char *p = udp_payload(rx[id], len, &plen);

		if (!p)
			continue; /* IPv6 neighbour discovery and the like */
		snprintf(msg, sizeof(msg), "datagram %02u", got);
		assert_int_equal(plen, strlen(msg));
		assert_memory_equal(p, msg, plen);
		got++;
	}
	assert_int_equal(got, N);
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.rx_dropped, 0);
	close(s);
}

int main(void)
{
	if (netns_make_tap(TAP, HOST_IP, host_mac) || netns_static_arp(TAP, GUEST_IP, guest_mac))
		return 77; /* meson: skipped */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_offload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_udp_both_ways, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_ring_no_drop, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
