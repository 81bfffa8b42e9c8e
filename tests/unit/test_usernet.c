/* test_usernet.c: virtio-net on user-mode networking, a passt that kiln starts (or one the
 * user started): DHCP, the host's loopback behind the gateway (not reached by default,
 * reached with host_loopback), a host port forward reaching the guest, a port in use, passt
 * missing, and passt killed mid-run (the link goes down, kiln runs on). No root needed. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "backends/passt_stream.h"
#include "fake_frames.h"
#include "fake_vnet.h"
#include "util/log.h"
#include "vmm/event.h"

#define F(bit) BIT_ULL(bit)
#define BASE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_MRG_RXBUF))
#define RXBUFS 64

static const uint8_t guest_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x02, 0x0f};
static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static struct event_loop ev;
static struct fake_vnet v;
static struct virtio_dev *dev;
static gpa_t rxbuf[RXBUFS];
static uint8_t gw_mac[6]; /* passt's, learnt from its DHCP reply */

static int start_full(const char *hostfwd, bool host_loopback, const char *passt, char *err,
		      size_t errlen)
{
	struct virtio_env env = {.mem = &v.f.mem, .ev = &ev};
	struct net_config cfg = {.id = "net0", .user = true, .mac_set = true,
				 .hostfwd = (char *)hostfwd, .host_loopback = host_loopback,
				 .passt = (char *)passt};

	memcpy(cfg.mac, guest_mac, 6);
	if (virtio_net_create(&env, &cfg, &dev, err, errlen))
		return -1;
	if (!(fv_start(&v, dev, 256, BASE) & VIRTIO_STATUS_DRIVER_OK))
		return -1;
	for (unsigned i = 0; i < RXBUFS; i++) {
		rxbuf[i] = fd_alloc(&v.f, 2048);
		fv_add_rx(&v, rxbuf[i], 2048);
	}
	return 0;
}

static int start_with(const char *hostfwd, bool host_loopback, char *err, size_t errlen)
{
	return start_full(hostfwd, host_loopback, NULL, err, errlen);
}

static int start(const char *hostfwd, char *err, size_t errlen)
{
	return start_with(hostfwd, false, err, errlen);
}

static int setup(void **state) { return fv_setup(&ev, &v); }

static int teardown(void **state)
{
	fv_teardown(&ev, &v, &dev);
	return 0;
}

/* Send one frame (len bytes at frame) from the guest. */
static void guest_send(const uint8_t *frame, size_t len)
{
	gpa_t g = fd_alloc(&v.f, (uint32_t)(NET_HDR_LEN + len));
	uint8_t *p = fd_hva(&v.f, g);

	memset(p, 0, NET_HDR_LEN);
	memcpy(p + NET_HDR_LEN, frame, len);
	struct fd_buf b = {g, (uint32_t)(NET_HDR_LEN + len), false};
	fv_add(&v, FV_TXQ, &b, 1);
	virtio_dev_kick(dev, FV_TXQ);
}

/* Run the loop (up to ms) until a received frame satisfies match; the buffer goes back to the
 * ring. Returns true with the frame copied to out. */
static bool guest_recv(bool (*match)(const uint8_t *f, size_t n), uint8_t *out, size_t *n, int ms)
{
	uint32_t id, len;

	for (int i = 0; i < ms / 5; i++) {
		while (fv_used(&v, FV_RXQ, &id, &len)) {
			const uint8_t *f = (const uint8_t *)fd_hva(&v.f, rxbuf[id % RXBUFS]);
			bool ok;

			assert_true(len >= NET_HDR_LEN);
			assert_int_equal(le16toh(((const struct virtio_net_hdr_v1 *)f)->num_buffers),
					 1);
			ok = match(f + NET_HDR_LEN, len - NET_HDR_LEN);
			if (ok) {
				memcpy(out, f + NET_HDR_LEN, len - NET_HDR_LEN);
				*n = len - NET_HDR_LEN;
			}
			fv_add_rx(&v, rxbuf[id % RXBUFS], 2048);
			virtio_dev_kick(dev, FV_RXQ);
			if (ok)
				return true;
		}
		event_loop_run_once(&ev, 5);
	}
	return false;
}

/* ---- DHCP ------------------------------------------------------------------------------------- */

static bool is_dhcp_reply(const uint8_t *f, size_t n)
{
	const uint8_t *l4;
	size_t l4len;

	return ff_ipv4(f, n, &l4, &l4len) == IPPROTO_UDP && l4len > FF_UDP + 240 &&
	       l4[2] == 0 && l4[3] == 68 && l4[FF_UDP] == 2 /* BOOTREPLY */;
}

/* A DHCP option's value in a reply (NULL if absent). */
static const uint8_t *dhcp_opt(const uint8_t *bootp, size_t n, uint8_t code, uint8_t *len)
{
	for (size_t i = 240; i + 1 < n && bootp[i] != 255;) {
		if (bootp[i] == 0) {
			i++;
			continue;
		}
		if (bootp[i] == code && i + 2 + bootp[i + 1] <= n) {
			*len = bootp[i + 1];
			return bootp + i + 2;
		}
		i += 2u + bootp[i + 1];
	}
	return NULL;
}

/* DISCOVER from the guest; returns the OFFER's BOOTP part in out. */
static size_t dhcp_discover(uint8_t *out)
{
	uint8_t bootp[300] = {1, 1, 6, 0, 0x12, 0x34, 0x56, 0x78};
	static uint8_t frame[2048];
	size_t n;

	memcpy(bootp + 28, guest_mac, 6);
	bootp[236] = 99, bootp[237] = 130, bootp[238] = 83, bootp[239] = 99; /* magic cookie */
	bootp[240] = 53, bootp[241] = 1, bootp[242] = 1;		      /* DHCPDISCOVER */
	bootp[243] = 255;
	n = ff_udp(frame, bcast, guest_mac, "0.0.0.0", "255.255.255.255", 68, 67, bootp,
		   sizeof(bootp));
	guest_send(frame, n);
	assert_true(guest_recv(is_dhcp_reply, frame, &n, 3000));
	memcpy(gw_mac, frame + 6, 6);
	const uint8_t *l4 = NULL;
	size_t l4len = 0;
	assert_int_equal(ff_ipv4(frame, n, &l4, &l4len), IPPROTO_UDP);
	memcpy(out, l4 + FF_UDP, l4len - FF_UDP);
	return l4len - FF_UDP;
}

static void test_dhcp(void **state)
{
	uint8_t bootp[1500], len;
	char err[256];
	size_t n;

	assert_int_equal(start(NULL, err, sizeof(err)), 0);
	/* user mode carries no offloads: none offered */
	assert_false(dev->host_features & (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4)));
	n = dhcp_discover(bootp);
	assert_memory_equal(bootp + 4, ((uint8_t[]){0x12, 0x34, 0x56, 0x78}), 4); /* xid */
	assert_memory_equal(bootp + 16, ((uint8_t[]){10, 0, 2, 15}), 4);	    /* yiaddr */
	const uint8_t *o = dhcp_opt(bootp, n, 53, &len);
	assert_non_null(o);
	assert_int_equal(o[0], 2); /* DHCPOFFER */
	o = dhcp_opt(bootp, n, 3, &len);
	assert_non_null(o);
	assert_memory_equal(o, ((uint8_t[]){10, 0, 2, 2}), 4); /* router */
	/* DNS: passt offers the host's resolvers (10.0.2.3 forwards to the first one) */
	o = dhcp_opt(bootp, n, 1, &len);
	assert_non_null(o);
	assert_memory_equal(o, ((uint8_t[]){255, 255, 255, 0}), 4);
	o = dhcp_opt(bootp, n, 26, &len); /* interface MTU: the device's default */
	assert_non_null(o);
	assert_int_equal(len, 2);
	assert_int_equal(o[0] << 8 | o[1], 1500);
}

/* ---- TCP through NAT and a port forward ------------------------------------------------------- */

static uint16_t seen_port;

static bool is_synack(const uint8_t *f, size_t n)
{
	const uint8_t *l4;
	size_t l4len;

	return ff_ipv4(f, n, &l4, &l4len) == IPPROTO_TCP && l4len >= FF_TCP &&
	       (l4[13] & 0x12) == 0x12 && (l4[0] << 8 | l4[1]) == seen_port;
}

static bool is_syn_to_80(const uint8_t *f, size_t n)
{
	const uint8_t *l4;
	size_t l4len;

	return ff_ipv4(f, n, &l4, &l4len) == IPPROTO_TCP && l4len >= FF_TCP &&
	       (l4[13] & 0x12) == 0x02 && (l4[2] << 8 | l4[3]) == 80 &&
	       !memcmp(f + FF_ETH + 16, ((uint8_t[]){10, 0, 2, 15}), 4);
}

/* A segment from the host's side (port seen_port) to the guest's port 80 carrying "hi!". */
static bool is_data_from_host(const uint8_t *f, size_t n)
{
	const uint8_t *l4;
	size_t l4len;

	if (ff_ipv4(f, n, &l4, &l4len) != IPPROTO_TCP || l4len < FF_TCP ||
	    (l4[0] << 8 | l4[1]) != seen_port || (l4[2] << 8 | l4[3]) != 80)
		return false;
	size_t off = (size_t)(l4[12] >> 4) * 4;
	return l4len >= off + 3 && !memcmp(l4 + off, "hi!", 3);
}

static bool is_arp_request(const uint8_t *f, size_t n)
{
	return n >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 1;
}

static bool is_arp_or_syn(const uint8_t *f, size_t n)
{
	return is_arp_request(f, n) || is_syn_to_80(f, n);
}

/* A listener on the host's loopback; returns its fd and port. */
static int listener(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s, 4), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return s;
}

/* A refusal of the guest's SYN from port 40000: a TCP RST to it, or an ICMP unreachable. */
static bool is_refusal(const uint8_t *f, size_t n)
{
	const uint8_t *l4;
	size_t l4len;
	int proto = ff_ipv4(f, n, &l4, &l4len);

	if (proto == IPPROTO_TCP && l4len >= FF_TCP)
		return (l4[13] & 0x04) && (l4[2] << 8 | l4[3]) == 40000;
	return proto == IPPROTO_ICMP && l4len >= 8 && l4[0] == 3;
}

static bool is_synack_or_refusal(const uint8_t *f, size_t n)
{
	return is_synack(f, n) || is_refusal(f, n);
}

/* The guest sends a SYN to 10.0.2.2:port, where a listener waits on the host's 127.0.0.1.
 * Returns the host side of the connection if one arrived within 3 s (else -1); *answer is
 * the frame that came back to the guest (a SYN-ACK or a refusal), 0 bytes if none. */
static int syn_to_gateway(bool host_loopback, uint8_t *answer, size_t *answer_len)
{
	static uint8_t frame[2048];
	uint8_t bootp[1500];
	char err[256];
	uint16_t port;
	size_t n;
	int l = listener(&port), c = -1;

	assert_int_equal(start_with(NULL, host_loopback, err, sizeof(err)), 0);
	dhcp_discover(bootp); /* learn the gateway's MAC */
	n = ff_tcp(frame, gw_mac, guest_mac, "10.0.2.15", "10.0.2.2", 40000, port, 1000, 0, 0x02);
	guest_send(frame, n);
	seen_port = port;
	*answer_len = 0;
	for (int i = 0; i < 600 && c < 0; i++) {
		event_loop_run_once(&ev, 5);
		c = accept(l, NULL, NULL);
	}
	if (!guest_recv(is_synack_or_refusal, answer, answer_len, 2000))
		*answer_len = 0;
	close(l);
	return c;
}

/* By default the gateway is not the host's loopback: nothing connects to the host's
 * 127.0.0.1, and the guest gets no SYN-ACK from it. */
static void test_host_loopback_off(void **state)
{
	static uint8_t answer[2048];
	size_t n;
	int c = syn_to_gateway(false, answer, &n);

	if (c >= 0)
		close(c);
	assert_true(c < 0);
	assert_false(n > 0 && is_synack(answer, n));
}

/* With host_loopback=on, passt connects to the host's 127.0.0.1 for the guest. */
static void test_host_loopback_on(void **state)
{
	static uint8_t answer[2048];
	size_t n;
	int c = syn_to_gateway(true, answer, &n);

	assert_true(c >= 0); /* passt reached the host's loopback for the guest */
	close(c);
	assert_true(n > 0);
	assert_true(is_synack(answer, n)); /* and answered the guest */
	struct virtio_net_stats st;
	virtio_net_get_stats(dev, &st);
	assert_true(st.tx_packets >= 2);
	assert_true(st.rx_packets >= 2);
}

/* A forward of a free host port to the guest's port 80, and a host connection to it: passt's
 * SYN to the guest (after an ARP question, answered) is in frame[0..*n). Returns the host's
 * socket. */
static int hostfwd_connect(uint8_t *frame, size_t *n_out)
{
	uint8_t bootp[1500];
	char err[256], fwd[64];
	uint16_t port;
	size_t n = 0;
	int l = listener(&port);

	close(l); /* a free port, most likely still free below */
	snprintf(fwd, sizeof(fwd), "tcp:127.0.0.1:%u-:80", port);
	assert_int_equal(start(fwd, err, sizeof(err)), 0);
	dhcp_discover(bootp);

	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(c >= 0);
	assert_true(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
	/* passt may first ask who 10.0.2.15 is: answer, then expect the SYN */
	bool syn = false;
	for (int round = 0; round < 3 && !syn; round++) {
		if (!guest_recv(is_arp_or_syn, frame, &n, 1000))
			continue;
		syn = is_syn_to_80(frame, n);
		if (!syn) {
			uint8_t reply[42];
			memcpy(reply, frame + 6, 6);
			memcpy(reply + 6, guest_mac, 6);
			memcpy(reply + 12, frame + 12, 8); /* type, htype, ptype, sizes */
			reply[20] = 0, reply[21] = 2;	   /* reply */
			memcpy(reply + 22, guest_mac, 6);
			memcpy(reply + 28, frame + 38, 4); /* our IP (the asked one) */
			memcpy(reply + 32, frame + 22, 10); /* their MAC and IP */
			guest_send(reply, sizeof(reply));
		}
	}
	assert_true(syn);
	*n_out = n;
	return c;
}

/* The guest's SYN-ACK for passt's SYN in frame: the guest side of the handshake. Returns the
 * host's port, which is also seen_port from then on. */
static uint16_t guest_accepts(uint8_t *frame, size_t n)
{
	const uint8_t *l4 = NULL;
	size_t l4len = 0;

	assert_int_equal(ff_ipv4(frame, n, &l4, &l4len), IPPROTO_TCP);
	uint16_t hport = (uint16_t)(l4[0] << 8 | l4[1]);
	uint32_t hseq = (uint32_t)l4[4] << 24 | (uint32_t)l4[5] << 16 | (uint32_t)l4[6] << 8 | l4[7];
	n = ff_tcp(frame, gw_mac, guest_mac, "10.0.2.15", "10.0.2.2", 80, hport, 7000, hseq + 1,
		   0x12);
	guest_send(frame, n);
	seen_port = hport;
	return hport;
}

/* A host connection to a forwarded port becomes a SYN to the guest's port 80. */
static void test_hostfwd(void **state)
{
	static uint8_t frame[2048];
	size_t n = 0;
	int c = hostfwd_connect(frame, &n);

	/* The guest accepts (SYN-ACK); the host speaks first, and its bytes reach the guest.
	 * (Debian 12's passt finishes the handshake towards the guest only with data.) */
	guest_accepts(frame, n);
	for (int i = 0; i < 100; i++) {
		event_loop_run_once(&ev, 5);
		if (write(c, "hi!", 3) == 3)
			break;
	}
	assert_true(guest_recv(is_data_from_host, frame, &n, 3000));
	close(c);
}

/* passt's ACK completing the handshake towards the guest (no SYN, FIN, RST or data). */
static bool is_handshake_ack(const uint8_t *f, size_t n)
{
	const uint8_t *l4;
	size_t l4len;

	return ff_ipv4(f, n, &l4, &l4len) == IPPROTO_TCP && l4len >= FF_TCP &&
	       (l4[0] << 8 | l4[1]) == seen_port && (l4[13] & 0x17) == 0x10;
}

/* Is the passt that kiln runs Debian 12's (0.0~git2023...), which has the bug below? */
static bool passt_2023(void)
{
	const char *bin = getenv("KILN_PASST");
	char cmd[300], line[200] = "";
	FILE *p;

	/* Its --version, or Debian's package version for /usr/bin/passt (Debian 12's binary says
	 * "unknown version"). */
	if (!bin || !*bin)
		bin = "passt";
	snprintf(cmd, sizeof(cmd),
		 "'%s' --version 2>&1; case \"$(command -v '%s')\" in /usr/bin/passt) "
		 "dpkg-query -W -f='${Version}\\n' passt 2>/dev/null;; esac",
		 bin, bin);
	if (!(p = popen(cmd, "r")))
		return false;
	while (fgets(line, sizeof(line), p) && !strstr(line, "git2023"))
		;
	pclose(p);
	return strstr(line, "git2023") != NULL;
}

/* A server that speaks first (SMTP, an SSH banner): passt must finish the handshake towards
 * the guest without waiting for the host's bytes. Debian 12's passt (2023.03) does not; its
 * successors do (docs/guest.md). */
static void test_hostfwd_server_first(void **state)
{
	static uint8_t frame[2048];
	size_t n = 0;
	int c = hostfwd_connect(frame, &n);
	bool acked;

	guest_accepts(frame, n);
	acked = guest_recv(is_handshake_ack, frame, &n, 3000);
	close(c);
	if (!acked && passt_2023())
		skip(); /* the 2023 passt's known limit: only client-first protocols forward */
	assert_true(acked);
}

static void test_port_in_use(void **state)
{
	char err[256], fwd[64];
	uint16_t port;
	int l = listener(&port);

	snprintf(fwd, sizeof(fwd), "tcp:127.0.0.1:%u-:22", port);
	assert_int_equal(start(fwd, err, sizeof(err)), -1);
	/* passt's own words, which differ between versions (Debian 12: "Failed to bind any port
	 * for '-t 127.0.0.1/P:22', exiting"; Debian 13: "Failed to bind port P (Address already
	 * in use) for option '-t 127.0.0.1/P:22'"), after kiln's prefix. */
	char want[128];
	snprintf(want, sizeof(want), "'-t 127.0.0.1/%u:22'", port);
	if (strncmp(err, "net 'net0': passt exited with status 1 at start: Failed to bind ", 64) ||
	    !strstr(err, want))
		fail_msg("unexpected error: %s", err);
	dev = NULL;
	close(l);
}

static void test_passt_missing(void **state)
{
	char err[256];

	setenv("KILN_PASST", "/nonexistent/passt", 1);
	assert_int_equal(start(NULL, err, sizeof(err)), -1);
	unsetenv("KILN_PASST");
	assert_string_equal(err, "net 'net0': cannot run /nonexistent/passt: No such file or "
				 "directory (install Debian's passt package, or point KILN_PASST "
				 "at one)");
	dev = NULL;
}

/* The pid of the passt kiln started: the only child of this process that is a passt. */
static pid_t passt_pid(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t pid = 0;

	assert_non_null(d);
	while (!pid && (e = readdir(d))) {
		char path[300], line[256], *rp;
		int ppid = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (e->d_name[0] < '1' || e->d_name[0] > '9' || !(f = fopen(path, "r")))
			continue;
		if (fgets(line, sizeof(line), f) && strstr(line, "(passt") &&
		    (rp = strrchr(line, ')')) && sscanf(rp + 2, "%*c %d", &ppid) == 1 &&
		    ppid == getpid())
			pid = atoi(e->d_name);
		fclose(f);
	}
	closedir(d);
	return pid;
}

/* Does process pid hold an fd open on target? */
static bool has_fd_to(pid_t pid, const char *target)
{
	char dir[64], path[400], link[256];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	assert_non_null(d);
	while ((e = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found |= !strcmp(link, target);
		}
	}
	closedir(d);
	return found;
}

static uint16_t link_status(void)
{
	struct virtio_net_config c;

	dev->ops->config_read(dev, 0, &c, sizeof(c));
	return le16toh(c.status);
}

/* passt killed mid-run: the guest's link goes down (config status, a config interrupt), the
 * metric says so, frames the guest still sends are dropped, and the loop runs on. */
static void test_passt_killed(void **state)
{
	struct virtio_net_stats st;
	uint8_t bootp[1500], frame[128];
	char err[256];
	pid_t pid;
	size_t n;

	int inherited = open("/dev/zero", O_RDONLY); /* no O_CLOEXEC: passt must not get it */

	assert_true(inherited >= 0);
	assert_int_equal(start(NULL, err, sizeof(err)), 0);
	dhcp_discover(bootp);
	assert_int_equal(link_status() & VIRTIO_NET_S_LINK_UP, VIRTIO_NET_S_LINK_UP);
	pid = passt_pid();
	assert_true(pid > 0);
	assert_false(has_fd_to(pid, "/dev/zero"));
	close(inherited);
	dev->isr = 0;
	assert_int_equal(kill(pid, SIGKILL), 0);
	for (int i = 0; i < 200 && (link_status() & VIRTIO_NET_S_LINK_UP); i++)
		event_loop_run_once(&ev, 10);
	assert_int_equal(link_status() & VIRTIO_NET_S_LINK_UP, 0);
	assert_true(dev->isr & VIRTIO_ISR_CONFIG);
	/* reaped by kiln: no zombie left */
	for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
		event_loop_run_once(&ev, 10);
	assert_int_equal(kill(pid, 0), -1);
	virtio_net_get_stats(dev, &st);
	assert_int_equal(st.link_down, 1);
	n = ff_udp(frame, gw_mac, guest_mac, "10.0.2.15", "10.0.2.2", 1000, 9, "x", 1);
	guest_send(frame, n);
	for (int i = 0; i < 10; i++)
		event_loop_run_once(&ev, 5);
	virtio_net_get_stats(dev, &st);
	assert_true(st.tx_dropped >= 1);
	assert_int_equal(st.tx_errors, 0);
}

/* A passt the user started, listening on its own socket (passt=PATH): DHCP through it. */
static void test_user_started(void **state)
{
	char dir[] = "/tmp/kiln-test-passt.XXXXXX", sock[64], pidf[64], err[256];
	uint8_t bootp[1500];
	const char *bin = getenv("KILN_PASST");
	pid_t pid;
	int status;

	if (!bin || !*bin)
		bin = "passt";
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/passt.sock", dir);
	snprintf(pidf, sizeof(pidf), "%s/passt.pid", dir);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execlp(bin, "passt", "--foreground", "--one-off", "--ipv4-only", "--socket", sock,
		       "--address", "10.0.2.15", "--netmask", "24", "--gateway", "10.0.2.2",
		       "--interface", "lo", "--mac-addr", "52:55:0a:00:02:02", "--runas",
		       "65534:65534", "--pid", pidf, (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	chmod(dir, 0777); /* passt (nobody) makes its socket there */
	/* passt writes its pid file once it listens (the socket file appears at bind, a moment
	 * before: a connect then is refused). */
	for (int i = 0; i < 1000 && access(pidf, F_OK); i++)
		usleep(10000);
	assert_int_equal(start_full(NULL, false, sock, err, sizeof(err)), 0);
	dhcp_discover(bootp);
	assert_memory_equal(bootp + 16, ((uint8_t[]){10, 0, 2, 15}), 4); /* yiaddr */
	fv_teardown(&ev, &v, &dev); /* closes the connection: a --one-off passt exits */
	dev = NULL;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	unlink(sock);
	unlink(pidf);
	rmdir(dir);
	assert_int_equal(fv_setup(&ev, &v), 0); /* for teardown */
}

/* Frames go to passt's socket whole: when the socket is full, send() says -EAGAIN before a
 * frame, never leaves part of one behind (passt loses its place in the stream when the rest
 * of a frame it has begun is late). Against a socket that nobody reads. */
static void test_frames_stay_whole(void **state)
{
	char dir[] = "/tmp/kiln-test-stream.XXXXXX", path[64], err[256];
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct net_config cfg = {.id = "net0", .user = true};
	/* Large frames: the kernel splits those into several buffers, and may take some */
	static uint8_t frame[NET_HDR_LEN + 60000], got[4 << 20];
	struct iovec iov = {frame, sizeof(frame)};
	struct net_backend *be = NULL;
	unsigned sent = 0;
	size_t have = 0;
	ssize_t r;
	int l, peer;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	memcpy(a.sun_path, path, strlen(path));
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	cfg.passt = path;
	assert_int_equal(net_passt_create(&cfg, NULL, &be, err, sizeof(err)), 0);
	peer = accept(l, NULL, NULL);
	assert_true(peer >= 0);
	memset(frame, 0, sizeof(frame));
	for (int round = 0; round < 3; round++) {
		int ret;

		/* fill the socket until it refuses a frame */
		while ((ret = be->ops->send(be, &iov, 1, sizeof(frame))) == 0) {
			frame[NET_HDR_LEN] = (uint8_t)++sent;
			assert_true(sent < 100000);
		}
		assert_int_equal(ret, -EAGAIN);
		/* what the socket holds is whole frames: drain and parse it */
		while ((r = recv(peer, got + have, sizeof(got) - have, MSG_DONTWAIT)) > 0)
			have += (size_t)r;
		assert_int_equal(have % (PASST_LEN_BYTES + 60000), 0);
		for (size_t off = 0; off < have; off += PASST_LEN_BYTES + 60000)
			assert_memory_equal(got + off, ((uint8_t[]){0, 0, 0xea, 0x60}), 4);
		have = 0;
	}
	assert_true(sent > 3);
	net_backend_destroy(be);
	close(peer);
	close(l);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_dhcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_loopback_off, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_loopback_on, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostfwd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostfwd_server_first, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_passt_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_passt_killed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_started, setup, teardown),
	    cmocka_unit_test(test_frames_stay_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
