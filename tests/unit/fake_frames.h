/* fake_frames.h: build and read Ethernet/IPv4/UDP/TCP frames, as a guest would send them, for
 * the network tests (header-only). All multi-byte fields are in network byte order. */
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FF_ETH 14
#define FF_IP 20
#define FF_UDP 8
#define FF_TCP 20

/* One's-complement sum of n bytes added to sum (not folded). */
static inline uint32_t ff_sum(uint32_t sum, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		sum += (uint32_t)b[n - 1] << 8;
	return sum;
}

/* Fold and complement into a checksum field (network order). */
static inline uint16_t ff_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* Ethernet + IPv4 header for l4len bytes of protocol proto at p. Returns the header bytes. */
static inline size_t ff_eth_ip(uint8_t *p, const uint8_t dmac[6], const uint8_t smac[6],
			       const char *sip, const char *dip, uint8_t proto, size_t l4len)
{
	uint8_t *ip = p + FF_ETH;
	uint32_t s = inet_addr(sip), d = inet_addr(dip);
	uint16_t len = htons((uint16_t)(FF_IP + l4len)), c;

	memcpy(p, dmac, 6);
	memcpy(p + 6, smac, 6);
	p[12] = 0x08;
	p[13] = 0x00;
	memset(ip, 0, FF_IP);
	ip[0] = 0x45;
	memcpy(ip + 2, &len, 2);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	c = ff_fold(ff_sum(0, ip, FF_IP));
	memcpy(ip + 10, &c, 2);
	return FF_ETH + FF_IP;
}

/* A whole UDP frame (checksum 0: none) at p. Returns its length. */
static inline size_t ff_udp(uint8_t *p, const uint8_t dmac[6], const uint8_t smac[6],
			    const char *sip, const char *dip, uint16_t sport, uint16_t dport,
			    const void *payload, size_t plen)
{
	size_t h = ff_eth_ip(p, dmac, smac, sip, dip, IPPROTO_UDP, FF_UDP + plen);
	uint16_t f[4] = {htons(sport), htons(dport), htons((uint16_t)(FF_UDP + plen)), 0};

	memcpy(p + h, f, sizeof(f));
	memcpy(p + h + FF_UDP, payload, plen);
	return h + FF_UDP + plen;
}

/* A TCP segment with flags (0x02 SYN) and a correct checksum at p. Returns its length. */
static inline size_t ff_tcp(uint8_t *p, const uint8_t dmac[6], const uint8_t smac[6],
			    const char *sip, const char *dip, uint16_t sport, uint16_t dport,
			    uint32_t seq, uint32_t ack, uint8_t flags)
{
	size_t h = ff_eth_ip(p, dmac, smac, sip, dip, IPPROTO_TCP, FF_TCP);
	uint8_t *t = p + h, pseudo[12];
	uint16_t sp = htons(sport), dp = htons(dport), win = htons(65535), c;
	uint32_t sq = htonl(seq), ak = htonl(ack), s = inet_addr(sip), d = inet_addr(dip);

	memset(t, 0, FF_TCP);
	memcpy(t, &sp, 2);
	memcpy(t + 2, &dp, 2);
	memcpy(t + 4, &sq, 4);
	memcpy(t + 8, &ak, 4);
	t[12] = 5 << 4;
	t[13] = flags;
	memcpy(t + 14, &win, 2);
	memcpy(pseudo, &s, 4);
	memcpy(pseudo + 4, &d, 4);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = FF_TCP;
	c = ff_fold(ff_sum(ff_sum(0, pseudo, 12), t, FF_TCP));
	memcpy(t + 16, &c, 2);
	return h + FF_TCP;
}

/* An IPv4 frame's protocol and its layer-4 bytes (after the IP header). Returns the protocol,
 * or -1 if the frame is not IPv4. */
static inline int ff_ipv4(const uint8_t *p, size_t len, const uint8_t **l4, size_t *l4len)
{
	size_t ihl;

	if (len < FF_ETH + FF_IP || p[12] != 0x08 || p[13] != 0x00 || (p[FF_ETH] >> 4) != 4)
		return -1;
	ihl = (size_t)(p[FF_ETH] & 15) * 4;
	if (len < FF_ETH + ihl)
		return -1;
	*l4 = p + FF_ETH + ihl;
	*l4len = len - FF_ETH - ihl;
	return p[FF_ETH + 9];
}
