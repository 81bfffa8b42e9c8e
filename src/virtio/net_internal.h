/* net_internal.h: virtio-net's device state, shared by net.c and net_rx.c (not its interface). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/net.h"

#define NET_QUEUE_SIZE 256
#define NET_RXQ 0
#define NET_TXQ 1
#define NET_IOV_CAP 64	/* buffers per chain we map (Linux uses at most MAX_SKB_FRAGS + 2) */
#define NET_RX_STASH 64 /* receive chains held for one frame (MRG_RXBUF) */
#define NET_ETH_HLEN 14
static_assert(NET_SEND_IOV_MAX == NET_IOV_CAP + 1, "a send is the header and a chain");

/*
 * Receive. A frame read from the backend waits in rx_frame until the guest has room for all
 * of it; the backend is not polled meanwhile (the TAP's kernel queue holds the rest, slirp
 * stops reading its sockets), and the guest's next receive-queue kick resumes it. Nothing is
 * dropped because the ring is full.
 * Chains popped for a frame are held in a small ring (stash) until used: with MRG_RXBUF a
 * frame may need several, and the last ones may arrive only after a kick. Only stash_fill
 * pops the receive queue, in avail order, and rx_deliver uses chains from the front, so the
 * stash holds the most recent pops unless a chain that could not be mapped (-E2BIG) was
 * popped and returned after them; each entry keeps its avail position to tell (net_drain).
 */
struct rx_chain {
	uint16_t head;
	uint16_t avail; /* the avail ring position it was popped from */
	unsigned n;	/* writable iovecs */
	uint32_t len;	/* writable bytes */
	struct iovec iov[NET_IOV_CAP];
};

struct virtio_net {
	struct virtio_dev vdev; /* first: the device core's view */
	struct net_backend *be;
	uint8_t mac[6];
	unsigned mtu;
	bool poll_rx, poll_tx; /* what the backend was last asked to report */

	uint8_t *rx_frame; /* NET_MAX_PACKET bytes: header + frame */
	size_t rx_len;	   /* 0: no frame waiting */
	struct rx_chain *stash;
	unsigned stash_first, stash_n;
	uint64_t stash_bytes;

	bool tx_waiting; /* tx_hdr + tx_iov wait for the backend (it said -EAGAIN) */
	uint16_t tx_head;
	size_t tx_len;
	unsigned tx_n;
	struct virtio_net_hdr_v1 tx_hdr; /* the guest's header, copied once and checked */
	struct iovec tx_chain[NET_IOV_CAP];
	struct iovec tx_iov[NET_SEND_IOV_MAX];

	bool link_down; /* the backend is gone: the guest was told (config status) */

	struct virtio_net_stats stats;
};

static inline struct virtio_net *to_net(struct virtio_dev *d) { return (struct virtio_net *)d; }

/* net.c: ask the backend to report receive and transmit readiness (only when that changes). */
void net_set_poll(struct virtio_net *n, bool rx, bool tx);
/* net.c: has the backend gone away for good? The first time, the link goes down: see there.
 * (Lock held.) */
bool net_link_check(struct virtio_net *n);

/* net_rx.c: read frames from the backend and give them to the guest (lock held). */
void net_rx(struct virtio_net *n);
/* net_rx.c: snapshot, receive: deliver the waiting frame if it fits now, give the stashed
 * chains back to the ring, leave no receive chain in flight (lock held, vCPUs parked). */
void net_drain_rx(struct virtio_net *n);
