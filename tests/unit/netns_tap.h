/* netns_tap.h: for tests that need a real TAP: move the process into a new network namespace
 * and make a persistent TAP there, with an address, up (header-only). */
#pragma once

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int netns_ifreq_ioctl(unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	if (s < 0)
		return -1;
	ret = ioctl(s, req, ifr);
	close(s);
	return ret;
}

/* Unshare the network namespace, then make TAP `name` with address ip/24, up; its MAC goes to
 * mac (may be NULL). Returns 0, or -1 with the reason printed as "SKIP: ..." (no
 * /dev/net/tun, no CAP_SYS_ADMIN or CAP_NET_ADMIN): the caller exits 77. */
static inline int netns_make_tap(const char *name, const char *ip, uint8_t mac[6])
{
	struct ifreq ifr = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int fd;

	if (access("/dev/net/tun", R_OK | W_OK)) {
		printf("SKIP: /dev/net/tun: %s\n", strerror(errno));
		return -1;
	}
	/* First: the TAP is made in the namespace of the open() below. */
	if (unshare(CLONE_NEWNET)) {
		printf("SKIP: unshare(CLONE_NEWNET): %s (needs CAP_SYS_ADMIN)\n", strerror(errno));
		return -1;
	}
	/* No IPv6 in the test's namespace: its neighbour discovery and MLD frames would arrive
	 * on the TAP at random moments among the frames a test waits for. /proc/sys/net is the
	 * namespace of the caller; a kernel without IPv6 has no such file, which is fine. */
	for (unsigned i = 0; i < 2; i++) {
		static const char *const knobs[] = {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
						    "/proc/sys/net/ipv6/conf/default/disable_ipv6"};
		int k = open(knobs[i], O_WRONLY | O_CLOEXEC);

		if (k >= 0) {
			if (write(k, "1", 1) != 1)
				printf("note: %s: %s\n", knobs[i], strerror(errno));
			close(k);
		}
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("SKIP: /dev/net/tun: %s\n", strerror(errno));
		return -1;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETPERSIST, 1)) {
		printf("SKIP: creating %s: %s (needs CAP_NET_ADMIN)\n", name, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = inet_addr(ip);
	if (netns_ifreq_ioctl(SIOCSIFADDR, &ifr))
		goto fail;
	sin->sin_addr.s_addr = inet_addr("255.255.255.0");
	if (netns_ifreq_ioctl(SIOCSIFNETMASK, &ifr) || netns_ifreq_ioctl(SIOCGIFHWADDR, &ifr))
		goto fail;
	if (mac)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	if (netns_ifreq_ioctl(SIOCGIFFLAGS, &ifr))
		goto fail;
	ifr.ifr_flags |= IFF_UP;
	if (netns_ifreq_ioctl(SIOCSIFFLAGS, &ifr))
		goto fail;
	return 0;
fail:
	printf("SKIP: configuring %s: %s\n", name, strerror(errno));
	return -1;
}

/* Wait up to ms milliseconds for IFF_RUNNING on dev (operational state up: the kernel's link
 * watcher has activated its transmit queue). Returns 0, or -1 on timeout or error. */
static inline int netns_wait_running(const char *dev, int ms)
{
	for (int waited = 0; waited <= ms; waited += 10) {
		struct ifreq ifr = {0};

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
		if (netns_ifreq_ioctl(SIOCGIFFLAGS, &ifr))
			return -1;
		if (ifr.ifr_flags & IFF_RUNNING)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* A permanent ARP entry: ip is at mac on dev. Returns 0 or -1 (printed). */
static inline int netns_static_arp(const char *dev, const char *ip, const uint8_t mac[6])
{
	struct arpreq ar = {0};
	struct sockaddr_in *pa = (struct sockaddr_in *)&ar.arp_pa;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	pa->sin_family = AF_INET;
	pa->sin_addr.s_addr = inet_addr(ip);
	ar.arp_ha.sa_family = ARPHRD_ETHER;
	memcpy(ar.arp_ha.sa_data, mac, 6);
	ar.arp_flags = ATF_COM | ATF_PERM;
	snprintf(ar.arp_dev, sizeof(ar.arp_dev), "%s", dev);
	ret = s < 0 ? -1 : ioctl(s, SIOCSARP, &ar);
	if (ret)
		printf("SKIP: SIOCSARP: %s\n", strerror(errno));
	if (s >= 0)
		close(s);
	return ret ? -1 : 0;
}
