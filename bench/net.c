/* net.c: virtio-net throughput and packets/s in process (kiln's device on a synthetic guest
 * ring, on a real TAP) against raw read()/write() on the same TAP, runs interleaved. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "../tests/unit/fake_vnet.h"
#include "../tests/unit/netns_tap.h"
#include "util/log.h"
#include "vmm/event.h"

/*
 * The bench moves into a network namespace of its own and makes a TAP there (MTU 65521, a
 * transmit queue of BATCH frames), so nothing on the host sees its traffic.
 *
 * rx (host -> guest): a packet socket bound to the TAP sends BATCH frames, which wait in the
 * TAP's queue; then the clock runs while they are drained:
 *   raw   read() into one buffer, frame by frame, as a VMM without virtio would;
 *   kiln  kiln's virtio-net device reads them and copies them into the guest's receive ring
 *         (256 entries, MRG_RXBUF, 4 KiB buffers as Linux posts them, EVENT_IDX), through
 *         kiln's epoll loop; the synthetic guest takes each used buffer and posts it again.
 * tx (guest -> host), the clock runs while BATCH frames go to the TAP:
 *   raw   write() of header + frame from one buffer;
 *   kiln  the guest posts one-descriptor chains (header + frame, as Linux's ANY_LAYOUT) in
 *         batches of up to 256, kicks, and the device writes them to the TAP.
 * Frames carry an unused Ethertype (0x88b5) to a MAC the host does not have: the host stack
 * drops them right after the TAP, the same for both. Sizes: 64 (packets/s), 1514 (a full
 * standard frame) and 65000 bytes (a TSO-sized frame).
 */
#define TAP "kilnbench0"
#define BATCH 1000
#define QSIZE 256
#define RXBUF 4096
#define RX_GPA 0x100000ULL /* QSIZE receive buffers */
#define TX_GPA 0x200000ULL /* one frame, shared by every transmit chain */

enum impl { RAW, KILN, IMPL__COUNT };
static const char *const impl_names[] = {"raw", "kiln"};
static const unsigned sizes[] = {64, 1514, 65000};

static unsigned runs = 5, batches = 20;
static int tap_ifindex, pkt_sock;
static uint8_t frame[NET_MAX_PACKET];

const char *const bench_name = "net";

static void make_frame(unsigned size)
{
	static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x99}, src[6] = {0x02, 0, 0, 0, 0, 0x01};

	memset(frame, 0, NET_HDR_LEN);
	memcpy(frame + NET_HDR_LEN, dst, 6);
	memcpy(frame + NET_HDR_LEN + 6, src, 6);
	frame[NET_HDR_LEN + 12] = 0x88;
	frame[NET_HDR_LEN + 13] = 0xb5;
	for (unsigned i = 14; i < size; i++)
		frame[NET_HDR_LEN + i] = (uint8_t)i;
}

static void setup_tap(void)
{
	struct ifreq ifr = {0};

	if (netns_make_tap(TAP, "10.79.0.1", NULL))
		exit(77);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
	ifr.ifr_mtu = 65521;
	if (netns_ifreq_ioctl(SIOCSIFMTU, &ifr))
		die("%s: MTU: %s", TAP, strerror(errno));
	ifr.ifr_qlen = BATCH;
	if (netns_ifreq_ioctl(SIOCSIFTXQLEN, &ifr))
		die("%s: txqueuelen: %s", TAP, strerror(errno));
	/* No IPv6 on the TAP: its router solicitations would mix with the measured frames. */
	FILE *f = fopen("/proc/sys/net/ipv6/conf/" TAP "/disable_ipv6", "w");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	tap_ifindex = (int)if_nametoindex(TAP);
	pkt_sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (pkt_sock < 0)
		die("packet socket: %s", strerror(errno));
	int big = 64 << 20;
	setsockopt(pkt_sock, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
}

/* A TAP has carrier only while a file is attached, and the kernel starts passing frames a
 * moment after (linkwatch): wait for that after every attach. */
static void wait_running(void)
{
	struct ifreq ifr = {0};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
	for (int i = 0; i < 300; i++) {
		if (netns_ifreq_ioctl(SIOCGIFFLAGS, &ifr))
			die("%s: flags: %s", TAP, strerror(errno));
		if (ifr.ifr_flags & IFF_RUNNING) {
			usleep(20000);
			return;
		}
		usleep(10000);
	}
	die("%s: no carrier after 3 s", TAP);
}

/* Queue BATCH frames of size bytes on the TAP (host -> guest). */
static void fill_tap(unsigned size)
{
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_ifindex = tap_ifindex, .sll_halen = 6};

	memcpy(to.sll_addr, frame + NET_HDR_LEN, 6);
	for (unsigned i = 0; i < BATCH; i++)
		if (sendto(pkt_sock, frame + NET_HDR_LEN, size, 0, (struct sockaddr *)&to,
			   sizeof(to)) != (ssize_t)size)
			die("packet socket: send %u bytes: %s", size, strerror(errno));
}

/* ---- raw ------------------------------------------------------------------------------------- */

/* The TAP as a VMM without virtio-net would use it: same flags and header size as kiln. */
static int raw_open(void)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	int hdr = NET_HDR_LEN, fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETVNETHDRSZ, &hdr))
		die("raw open of %s: %s", TAP, strerror(errno));
	return fd;
}

static uint64_t raw_rx(int fd, unsigned size)
{
	static uint8_t buf[NET_MAX_PACKET];
	unsigned got = 0;
	uint64_t t0 = now_ns();

	while (got < BATCH) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EAGAIN)
			break; /* the TAP dropped some: count what arrived */
		if (n != (ssize_t)(NET_HDR_LEN + size))
			die("raw read: %zd (expected %u): %s", n, NET_HDR_LEN + size,
			    n < 0 ? strerror(errno) : "short");
		got++;
	}
	uint64_t dt = now_ns() - t0;
	if (got < BATCH * 9 / 10)
		die("raw rx: only %u of %u frames arrived", got, BATCH);
	return dt * BATCH / got;
}

static uint64_t raw_tx(int fd, unsigned size)
{
	uint64_t t0 = now_ns();

	for (unsigned i = 0; i < BATCH; i++)
		if (write(fd, frame, NET_HDR_LEN + size) != (ssize_t)(NET_HDR_LEN + size))
			die("raw write: %s", strerror(errno));
	return now_ns() - t0;
}

/* ---- kiln's device ----------------------------------------------------------------------------- */

static struct event_loop ev;
static struct fake_vnet v;
static struct virtio_dev *dev;

static void kiln_open(void)
{
	struct virtio_env env = {.mem = &v.f.mem, .ev = &ev};
	struct net_config cfg = {.id = "bench", .tap = TAP};
	char err[256];

	if (fv_setup(&ev, &v))
		die("set-up: %s", strerror(errno));
	if (virtio_net_create(&env, &cfg, &dev, err, sizeof(err)))
		die("%s", err);
	uint64_t f = BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(VIRTIO_NET_F_MAC) |
		     BIT_ULL(VIRTIO_NET_F_MRG_RXBUF) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX) |
		     BIT_ULL(VIRTIO_NET_F_GUEST_CSUM) | BIT_ULL(VIRTIO_NET_F_CSUM);
	if (!(fv_start(&v, dev, QSIZE, f) & VIRTIO_STATUS_DRIVER_OK))
		die("the device did not start");
	for (unsigned i = 0; i < QSIZE; i++)
		fv_add_rx(&v, RX_GPA + (gpa_t)i * RXBUF, RXBUF);
	virtio_dev_kick(dev, FV_RXQ);
	while (event_loop_run_once(&ev, 0) > 0)
		;
}

static void kiln_close(void)
{
	if (!dev)
		return;
	fv_teardown(&ev, &v, &dev);
}

/* Recycle used receive buffers: returns the frames completed (first buffers of each). */
static unsigned guest_take_rx(uint64_t *bytes)
{
	unsigned frames = 0;
	uint32_t id, len;

	while (fv_used(&v, FV_RXQ, &id, &len)) {
		const struct virtio_net_hdr_v1 *h = fd_hva(&v.f, RX_GPA + (gpa_t)id * RXBUF);
		static unsigned left; /* buffers still to come of the current frame */

		if (!left) {
			left = h->num_buffers;
			frames++;
		}
		left--;
		*bytes += len;
		fv_add_rx(&v, RX_GPA + (gpa_t)id * RXBUF, RXBUF);
	}
	return frames;
}

static uint64_t kiln_rx(unsigned size)
{
	uint64_t bytes = 0, t0 = now_ns();
	unsigned got = 0;

	while (got < BATCH) {
		uint16_t old = v.q[FV_RXQ].avail_idx;

		if (event_loop_run_once(&ev, 20) <= 0)
			break; /* nothing more is coming */
		got += guest_take_rx(&bytes);
		if (fv_kick_needed(&v, FV_RXQ, old, true))
			virtio_dev_kick(dev, FV_RXQ);
	}
	uint64_t dt = now_ns() - t0;
	if (got < BATCH * 9 / 10)
		die("kiln rx: only %u of %u frames arrived", got, BATCH);
	if (bytes != (uint64_t)got * (NET_HDR_LEN + size))
		die("kiln rx: %llu bytes for %u frames of %u", (unsigned long long)bytes, got, size);
	return dt * BATCH / got;
}

static uint64_t kiln_tx(unsigned size)
{
	struct fd_buf b = {TX_GPA, NET_HDR_LEN + size, false};
	unsigned posted = 0, done = 0;
	uint32_t id, len;
	uint64_t t0;

	memcpy(fd_hva(&v.f, TX_GPA), frame, NET_HDR_LEN + size);
	t0 = now_ns();
	while (done < BATCH) {
		uint16_t old = v.q[FV_TXQ].avail_idx;

		while (posted < BATCH && posted - done < QSIZE) {
			fv_add(&v, FV_TXQ, &b, 1);
			posted++;
		}
		if (fv_kick_needed(&v, FV_TXQ, old, true))
			virtio_dev_kick(dev, FV_TXQ);
		while (event_loop_run_once(&ev, 0) > 0)
			;
		while (fv_used(&v, FV_TXQ, &id, &len))
			done++;
	}
	uint64_t dt = now_ns() - t0;
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	if (st.tx_errors || st.tx_dropped)
		die("kiln tx: %llu errors, %llu dropped", (unsigned long long)st.tx_errors,
		    (unsigned long long)st.tx_dropped);
	return dt;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void report(const char *dir, unsigned size, enum impl impl, unsigned run, uint64_t ns)
{
	double s = (double)ns / 1e9, pkts = (double)BATCH * batches;

	printf("net dir=%s size=%u impl=%s run=%u frames=%.0f seconds=%.4f pps=%.0f mbps=%.1f\n",
	       dir, size, impl_names[impl], run, pkts, s, pkts / s, pkts * size * 8 / s / 1e6);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "r:b:h")) != -1) {
		if (c == 'r')
			runs = (unsigned)atoi(optarg);
		else if (c == 'b')
			batches = (unsigned)atoi(optarg);
		else {
			fputs("usage: net [-r RUNS] [-b BATCHES]\n"
			      "TAP rx/tx of 64, 1514 and 65000-byte frames through kiln's virtio-net\n"
			      "and raw read()/write(), BATCHES batches of 1000 frames per run, runs\n"
			      "interleaved. Needs CAP_NET_ADMIN and /dev/net/tun (exit 77 without).\n"
			      "One line per run: dir size impl run frames seconds pps mbps\n"
			      "(Mbit/s of frame bytes).\n",
			      c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (!runs || !batches)
		die("runs and batches must be positive");
	log_set_level(LOG_ERROR);
	setup_tap();
	int raw_fd = -1;
	for (unsigned run = 1; run <= runs; run++) {
		for (size_t si = 0; si < ARRAY_SIZE(sizes); si++) {
			unsigned size = sizes[si];

			make_frame(size);
			for (int impl = 0; impl < IMPL__COUNT; impl++) {
				uint64_t rx = 0, tx = 0;

				/* One reader of the TAP at a time: the device or the raw fd. */
				if (impl == RAW) {
					kiln_close();
					raw_fd = raw_open();
				} else {
					if (raw_fd >= 0)
						close(raw_fd);
					raw_fd = -1;
					kiln_open();
				}
				wait_running();
				for (unsigned b = 0; b < batches; b++) {
					fill_tap(size);
					rx += impl == RAW ? raw_rx(raw_fd, size) : kiln_rx(size);
					tx += impl == RAW ? raw_tx(raw_fd, size) : kiln_tx(size);
				}
				report("rx", size, (enum impl)impl, run, rx);
				report("tx", size, (enum impl)impl, run, tx);
			}
		}
	}
	kiln_close();
	return 0;
}
