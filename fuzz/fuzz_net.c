/* fuzz_net.c: libFuzzer target: virtio-net transmit chains and headers, and receive rings, from
 * fuzzer-built queues, over a socketpair backend. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../tests/unit/fake_vnet.h"
#include "util/log.h"

/*
 * Input, packed so that short inputs already describe whole chains:
 *
 *   u8 size_log   queue size q = 1 << (size_log % 5): 1..16 (both queues)
 *   u8 features   bit 0 MRG_RXBUF, 1 CSUM, 2 HOST_TSO4, 3 HOST_TSO6, 4 GUEST_CSUM,
 *                 5 GUEST_TSO4, 6 EVENT_IDX, 7 INDIRECT_DESC
 *   u8 rx         the host sends (rx & 15) frames of 14 + 97 * (rx >> 4) bytes each, their
 *                 headers taken from the heap's first 12 bytes
 *   u8 kicks      1 + (kicks & 3) rounds of transmit then receive; bit 7: reset after each
 *                 and put the same rings back
 *   tx desc[q]    16 bytes each; addresses with bit 63 clear point into the heap
 *   tx avail      flags, idx, ring[q]
 *   rx desc[q], rx avail   the same for the receive queue
 *   heap          the rest: headers, frames, indirect tables
 *
 * Whatever the input, the device must not crash, hang or touch memory outside guest RAM.
 */
#define HDR 4
#define HEAP 0x10000ULL
#define HEAP_SPAN 0x10000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_vnet v;
static struct virtio_dev *dev;
static int peer = -1, devfd = -1;
static uint8_t frame[NET_MAX_PACKET];

static void setup(void)
{
	struct virtio_env env = {.mem = &v.f.mem, .ev = NULL};
	struct net_config cfg = {.id = "fuzz"};
	struct net_backend *be;
	char err[256];
	int sv[2];

	log_set_level(LOG_ERROR); /* guest errors are the point: only VMM errors print */
	if (fv_init(&v) || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		abort();
	peer = sv[1];
	devfd = sv[0];
	if (net_fd_backend_create(sv[0], false, NULL, &be) ||
	    virtio_net_create_with(&env, &cfg, be, &dev, err, sizeof(err))) {
		fprintf(stderr, "fuzz_net: %s\n", err);
		abort();
	}
}

/* Copy n descriptors and an avail ring from p into queue qi, fixing heap addresses. */
static size_t load_queue(unsigned qi, const uint8_t *p, size_t n, uint16_t q)
{
	struct fv_queue *fq = &v.q[qi];
	size_t dlen = MIN(n, 16u * q), alen;

	memcpy(v.f.ram + fq->desc, p, dlen);
	for (unsigned i = 0; i < q; i++) {
		uint64_t a;

		memcpy(&a, v.f.ram + fq->desc + 16 * i, 8);
		if (!(a >> 63))
			a = HEAP + (a & 0xffff);
		memcpy(v.f.ram + fq->desc + 16 * i, &a, 8);
	}
	alen = MIN(n - dlen, 4u + 2u * q);
	memcpy(v.f.ram + fq->avail, p + dlen, alen);
	return dlen + alen;
}

static void load(const uint8_t *p, size_t n, uint16_t q)
{
	size_t k = load_queue(FV_TXQ, p, n, q);

	k += load_queue(FV_RXQ, p + k, n - k, q);
	memcpy(v.f.ram + HEAP, p + k, MIN(n - k, (size_t)HEAP_SPAN));
}

static void drain_peer(void)
{
	while (recv(peer, frame, sizeof(frame), MSG_DONTWAIT) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned bits[8] = {
	    VIRTIO_NET_F_MRG_RXBUF,  VIRTIO_NET_F_CSUM,	     VIRTIO_NET_F_HOST_TSO4,
	    VIRTIO_NET_F_HOST_TSO6,  VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4,
	    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
	uint64_t features = BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(VIRTIO_NET_F_MAC);

	if (!dev)
		setup();
	if (size < HDR)
		return 0;
	for (unsigned i = 0; i < 8; i++)
		if (data[1] & (1u << i))
			features |= BIT_ULL(bits[i]);
	uint16_t q = (uint16_t)(1u << (data[0] % 5));
	unsigned frames = data[2] & 15, flen = 14 + 97u * (data[2] >> 4);
	unsigned kicks = 1 + (data[3] & 3);

	drain_peer();
	memset(v.f.ram + HEAP, 0, HEAP_SPAN);
	fv_start(&v, dev, q, features);
	load(data + HDR, size - HDR, q);
	for (unsigned i = 0; i < kicks; i++) {
		virtio_dev_process(dev, FV_TXQ);
		drain_peer();
		for (unsigned k = 0; k < frames; k++) {
			memcpy(frame, v.f.ram + HEAP, NET_HDR_LEN);
			memset(frame + NET_HDR_LEN, 0xa5, flen);
			if (send(peer, frame, NET_HDR_LEN + flen, MSG_DONTWAIT) < 0)
				break;
		}
		virtio_dev_process(dev, FV_RXQ);
		if (data[3] & 0x80) { /* reset in the middle, then the same rings again */
			fv_start(&v, dev, q, features);
			load(data + HDR, size - HDR, q);
		}
	}
	/* Frames the device did not take stay in its socket: reset, and empty it. */
	fv_start(&v, dev, q, features);
	while (recv(devfd, frame, sizeof(frame), MSG_DONTWAIT) > 0)
		;
	return 0;
}
