/* usernet.c: guest <-> host TCP throughput through kiln's user-mode networking backends.
 *
 * The "guest" is a network namespace of this process with a TAP (10.0.2.15/24, default route
 * via 10.0.2.2): its kernel's TCP stack plays the guest's. This thread carries the TAP's frames
 * to and from a backend (net.h) the way virtio-net would, in kiln's event loop. Two paths to the
 * host's server (-p):
 *   loopback  host_loopback on: the guest's connection to 10.0.2.2:PORT reaches a server on the
 *             host's 127.0.0.1:PORT (passt maps it to the host's loopback);
 *   nat       host_loopback off: the server listens on the host's first non-loopback IPv4
 *             address and the guest connects to that address, as to any host on the network.
 * One TCP connection per run moves BYTES:
 *   up    guest -> host: the guest writes, the host reads to the end;
 *   down  host -> guest: the host writes, the guest reads to the end.
 * The clock runs from connect() to the receiver seeing the end of the stream, in the guest's
 * thread. The backend is passt (out of process), with the guest's MTU (1500, no offloads).
 * Commit 7cf4165 ran libslirp, which passt replaced, beside it in the same way
 * (docs/benchmarks.md, "User-mode networking").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../tests/unit/netns_tap.h"
#include "backends/net.h"
#include "bench.h"
#include "util/log.h"
#include "vmm/event.h"

#define TAP "kilnun0"
#define CHUNK (256 * 1024)

const char *const bench_name = "usernet";

enum impl { PASST, IMPL__COUNT };
static const char *const impl_names[] = {"passt"};
static int (*const impl_create[])(const struct net_config *, struct event_loop *,
				  struct net_backend **, char *, size_t) = {net_passt_create};

enum path { LOOPBACK, NAT, PATH__COUNT };
static const char *const path_names[] = {"loopback", "nat"};

static unsigned runs = 5;
static bool path_on[PATH__COUNT] = {true, true};
static struct in_addr host_addr; /* nat: the host's address the server binds to */
static uint64_t bytes = 64 * MiB;
static int tap_fd, guest_ns, host_ns;
static struct event_loop ev;
static struct net_backend *be;
static uint8_t to_host[NET_MAX_PACKET], to_guest[NET_MAX_PACKET];
static size_t to_host_len; /* a frame from the TAP the backend has no room for yet */

/* ---- the guest's namespace -------------------------------------------------------------- */

static void setup_guest(void)
{
	struct ifreq ifr = {0};
	struct rtentry rt = {0};
	int hdr = NET_HDR_LEN, s;

	host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (host_ns < 0)
		die("/proc/self/ns/net: %s", strerror(errno));
	/* netns_make_tap moves this thread into a new namespace and prints why it cannot. */
	if (netns_make_tap(TAP, "10.0.2.15", NULL))
		exit(77);
	/* A virtio-net guest's transmit ring waits for the device: nothing is lost when the
	 * backend is busy. A TAP drops instead once its queue is full; a long queue keeps the
	 * guest's TCP from losing frames here, as it would not in a VM. */
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
	ifr.ifr_qlen = 65536;
	if (netns_ifreq_ioctl(SIOCSIFTXQLEN, &ifr))
		die("%s txqueuelen: %s", TAP, strerror(errno));
	guest_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (guest_ns < 0 || tap_fd < 0)
		die("guest namespace: %s", strerror(errno));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
	if (ioctl(tap_fd, TUNSETIFF, &ifr) || ioctl(tap_fd, TUNSETVNETHDRSZ, &hdr) ||
	    ioctl(tap_fd, TUNSETOFFLOAD, 0UL))
		die("attaching %s: %s", TAP, strerror(errno));
	/* default via 10.0.2.2 */
	((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_gateway)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_gateway)->sin_addr.s_addr = inet_addr("10.0.2.2");
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = (char *)TAP;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCADDRT, &rt))
		die("default route: %s", strerror(errno));
	close(s);
	if (netns_wait_running(TAP, 2000))
		die("%s did not come up", TAP);
	/* Back to the host's namespace: the backends and the server live there. */
	if (setns(host_ns, CLONE_NEWNET))
		die("setns: %s", strerror(errno));
}

/* ---- the frames between the TAP and the backend ---------------------------------------------- */

static void tap_to_backend(void)
{
	for (unsigned budget = 256; budget; budget--) {
		struct iovec iov;
		int r;

		if (!to_host_len) {
			ssize_t n = read(tap_fd, to_host, sizeof(to_host));

			if (n <= NET_HDR_LEN)
				return;
			to_host_len = (size_t)n;
		}
		iov = (struct iovec){to_host, to_host_len};
		r = be->ops->send(be, &iov, 1, to_host_len);
		if (r == -EAGAIN) {
			be->ops->set_poll(be, true, true);
			event_mod(&ev, tap_fd, 0); /* until the backend has room */
			return;
		}
		to_host_len = 0;
	}
}

static void on_tap(void *opaque, uint32_t events) { tap_to_backend(); }

static void on_backend(void *opaque, bool rx, bool tx)
{
	if (atomic_load(&be->gone))
		die("the backend went away (its log line says why)");
	if (tx && to_host_len) {
		be->ops->set_poll(be, true, false);
		event_mod(&ev, tap_fd, EPOLLIN);
		tap_to_backend();
	}
	for (unsigned budget = 256; rx && budget; budget--) {
		ssize_t n = be->ops->recv(be, to_guest, sizeof(to_guest));

		if (n < 0)
			break;
		memset(to_guest, 0, NET_HDR_LEN);
		if (write(tap_fd, to_guest, (size_t)n) < 0 && errno != EAGAIN)
			die("TAP write: %s", strerror(errno));
	}
}

/* ---- the two ends of the connection ------------------------------------------------------ */

struct xfer {
	bool up;	     /* guest -> host */
	struct in_addr addr; /* what the guest connects to */
	uint16_t port;
	int listen_fd;
	uint64_t ns; /* connect to the end of the stream, in the guest */
	char err[160];
	atomic_bool done;
};

static uint64_t pump(int from, int to, uint64_t n)
{
	static __thread uint8_t buf[CHUNK];
	uint64_t moved = 0;

	if (from >= 0) {
		ssize_t r;
		while ((r = read(from, buf, sizeof(buf))) > 0)
			moved += (uint64_t)r;
		return moved;
	}
	memset(buf, 0x5a, sizeof(buf));
	while (moved < n) {
		ssize_t w = write(to, buf, (size_t)MIN((uint64_t)sizeof(buf), n - moved));
		if (w <= 0)
			break;
		moved += (uint64_t)w;
	}
	return moved;
}

static void *host_side(void *opaque)
{
	struct xfer *x = opaque;
	int c = accept(x->listen_fd, NULL, NULL);

	if (c < 0)
		return NULL;
	if (x->up)
		pump(c, -1, 0);
	else
		pump(-1, c, bytes);
	close(c);
	return NULL;
}

static void *guest_side(void *opaque)
{
	struct xfer *x = opaque;
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons(x->port), .sin_addr = x->addr};
	uint64_t t0, moved;
	int s;

	if (setns(guest_ns, CLONE_NEWNET)) {
		snprintf(x->err, sizeof(x->err), "setns: %s", strerror(errno));
		goto out;
	}
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	t0 = now_ns();
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a))) {
		snprintf(x->err, sizeof(x->err), "connect to %s:%u: %s", inet_ntoa(x->addr),
			 x->port, strerror(errno));
		goto out;
	}
	if (x->up) {
		moved = pump(-1, s, bytes);
		shutdown(s, SHUT_WR);
		pump(s, -1, 0); /* the host's close: it has read everything */
	} else {
		moved = pump(s, -1, 0);
	}
	x->ns = now_ns() - t0;
	if (moved != bytes)
		snprintf(x->err, sizeof(x->err), "moved %llu of %llu bytes (%s)",
			 (unsigned long long)moved, (unsigned long long)bytes, strerror(errno));
	close(s);
out:
	atomic_store(&x->done, true);
	return NULL;
}

/* The host's first non-loopback IPv4 address on an interface that is up: the nat path's server.
 * Returns false when the host has none (a namespace with only lo). */
static bool find_host_addr(struct in_addr *out)
{
	struct ifaddrs *all, *i;
	bool found = false;

	if (getifaddrs(&all))
		return false;
	for (i = all; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & (IFF_LOOPBACK | IFF_UP)) != IFF_UP)
			continue;
		*out = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		found = true;
	}
	freeifaddrs(all);
	return found;
}

static double one_run(enum impl impl, enum path path, bool up)
{
	struct net_config cfg = {.id = "net0", .user = true, .host_loopback = path == LOOPBACK};
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	struct xfer x = {.up = up};
	pthread_t ht, gt;
	char err[256];

	if (event_loop_init(&ev))
		die("event loop");
	if (impl_create[impl](&cfg, &ev, &be, err, sizeof(err)))
		die("%s: %s", impl_names[impl], err);
	be->ready = on_backend;
	be->ops->set_poll(be, true, false);
	if (event_add(&ev, tap_fd, EPOLLIN, on_tap, NULL))
		die("event_add");
	a.sin_addr.s_addr = path == LOOPBACK ? htonl(INADDR_LOOPBACK) : host_addr.s_addr;
	x.addr = path == LOOPBACK ? (struct in_addr){inet_addr("10.0.2.2")} : host_addr;
	x.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (x.listen_fd < 0 || bind(x.listen_fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(x.listen_fd, 1) || getsockname(x.listen_fd, (struct sockaddr *)&a, &al))
		die("listen: %s", strerror(errno));
	x.port = ntohs(a.sin_port);
	pthread_create(&ht, NULL, host_side, &x);
	pthread_create(&gt, NULL, guest_side, &x);
	while (!atomic_load(&x.done))
		event_loop_run_once(&ev, 10);
	pthread_join(gt, NULL);
	shutdown(x.listen_fd, SHUT_RDWR); /* a host side still in accept() */
	pthread_join(ht, NULL);
	close(x.listen_fd);
	event_del(&ev, tap_fd);
	net_backend_destroy(be);
	event_loop_destroy(&ev);
	to_host_len = 0;
	while (read(tap_fd, to_host, sizeof(to_host)) > 0) /* leftovers of this run */
		;
	if (x.err[0])
		die("%s %s %s: %s", impl_names[impl], path_names[path], up ? "up" : "down", x.err);
	return (double)x.ns / 1e9;
}

int main(int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "r:m:p:h")) != -1) {
		if (c == 'r')
			runs = (unsigned)atoi(optarg);
		else if (c == 'm')
			bytes = (uint64_t)atoi(optarg) * MiB;
		else if (c == 'p' && strcmp(optarg, "both"))
			for (int p = 0; p < PATH__COUNT; p++)
				path_on[p] = !strcmp(optarg, path_names[p]);
		else if (c != 'p') {
			fputs("usage: usernet [-r RUNS] [-m MIB] [-p loopback|nat|both]\n"
			      "guest <-> host TCP through kiln's user-mode networking (passt),\n"
			      "MIB MiB per connection (default 64). -p: to a server on the\n"
			      "host's loopback through host_loopback, or on the host's own\n"
			      "non-loopback address (default both). The guest is a network\n"
			      "namespace with a TAP: needs\n"
			      "CAP_SYS_ADMIN, CAP_NET_ADMIN and /dev/net/tun (exit 77 without).\n"
			      "One line per run: dir impl path run bytes seconds mbps (Mbit/s).\n",
			      c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (!runs || !bytes)
		die("runs and size must be positive");
	if (!path_on[LOOPBACK] && !path_on[NAT])
		die("-p: not loopback, nat or both");
	log_set_level(LOG_WARN);
	setup_guest();
	if (path_on[NAT] && !find_host_addr(&host_addr)) {
		if (!path_on[LOOPBACK])
			die("-p nat: the host has no non-loopback IPv4 address");
		fprintf(stderr, "usernet: nat path skipped: the host has no non-loopback IPv4 "
				"address\n");
		path_on[NAT] = false;
	}
	for (unsigned run = 1; run <= runs; run++)
		for (int p = 0; p < PATH__COUNT; p++)
			for (int d = 0; d < 2 && path_on[p]; d++)
				for (int impl = 0; impl < IMPL__COUNT; impl++) {
					double s = one_run((enum impl)impl, (enum path)p, d == 0);

					printf("usernet dir=%s impl=%s path=%s run=%u bytes=%llu "
					       "seconds=%.4f mbps=%.1f\n",
					       d == 0 ? "up" : "down", impl_names[impl],
					       path_names[p], run, (unsigned long long)bytes, s,
					       (double)bytes * 8 / s / 1e6);
					fflush(stdout);
				}
	return 0;
}
