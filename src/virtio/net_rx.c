/* net_rx.c: virtio-net receive: the stash of receive chains, frame delivery, the snapshot drain. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "util/log.h"
#include "virtio/net_internal.h"

/* Frames read from the backend per event, then other event sources get a turn (the backend
 * fd stays polled). On top of the core's chain budget (a ring's worth per dispatch), which
 * does not count frames dropped before they take a chain. */
#define NET_RX_BUDGET 256

/* ---- receive ------------------------------------------------------------------------------ */

static struct rx_chain *stash_at(struct virtio_net *n, unsigned i)
{
	return &n->stash[(n->stash_first + i) % NET_RX_STASH];
}

/* Pop receive chains until the stash holds `need` bytes (MRG_RXBUF) or one chain. Returns 1
 * when it does, 0 when the ring ran dry (notifications are on) or the dispatch's budget ran
 * out (the core kicks the receive queue again), -EIO when the ring is broken (the device went
 * NEEDS_RESET). *pushed is set if a chain was returned unused. */
static int stash_fill(struct virtio_net *n, uint64_t need, bool mrg, bool *pushed)
{
	struct virtq *vq = &n->vdev.queues[NET_RXQ].vq;
	struct vq_chain ch;
	int ret;

	while (mrg ? n->stash_bytes < need : n->stash_n == 0) {
		if (n->stash_n == NET_RX_STASH)
			return 1; /* as much as we hold: the caller sees it is not enough */
		struct rx_chain *c = stash_at(n, n->stash_n);
		uint16_t at = vq->last_avail;

		ret = vq_pop(vq, &ch, c->iov, NET_IOV_CAP);
		if (ret == 0) {
			if (vq_enable_notify(vq))
				continue; /* buffers arrived meanwhile */
			return 0;
		}
		if (ret == -E2BIG) { /* more buffers than we map: give it back empty */
			vq_push(vq, ch.head, 0);
			*pushed = true;
			continue;
		}
		if (ret < 0) {
			virtio_dev_needs_reset(&n->vdev, "malformed receive ring (%s)",
					       strerror(-ret));
			return -EIO;
		}
		if (ch.n_out || ch.in_len < NET_HDR_LEN) {
			virtio_dev_needs_reset(&n->vdev, "receive chain %u: %s", ch.head,
					       ch.n_out ? "has device-readable buffers"
							: "smaller than the 12-byte header");
			return -EIO;
		}
		c->head = ch.head;
		c->avail = at;
		c->n = ch.n_in;
		c->len = (uint32_t)ch.in_len;
		n->stash_n++;
		n->stash_bytes += ch.in_len;
	}
	return 1;
}

/* Give the waiting frame to the guest. Returns 1 (given or dropped: next frame), 0 (no room:
 * wait for a kick) or -EIO (ring broken). */
static int rx_deliver(struct virtio_net *n, bool *pushed)
{
	struct virtq *vq = &n->vdev.queues[NET_RXQ].vq;
	bool mrg = virtio_dev_has_feature(&n->vdev, VIRTIO_NET_F_MRG_RXBUF);
	struct vring_used_elem used[NET_RX_STASH];
	struct virtio_net_hdr_v1 *h = (struct virtio_net_hdr_v1 *)n->rx_frame;
	uint64_t need = n->rx_len, off = 0;
	unsigned k = 0;
	int ret;

	ret = stash_fill(n, need, mrg, pushed);
	if (ret <= 0)
		return ret;
	if (mrg ? n->stash_bytes < need : stash_at(n, 0)->len < need) {
		/* The guest's buffers cannot hold this frame (no MRG_RXBUF and buffers sized for
		 * a smaller MTU, or tiny mergeable buffers): drop it, keep the buffers. */
		n->stats.rx_dropped++;
		log_warn_ratelimited("%s: %zu-byte frame does not fit the guest's receive buffers: "
				     "dropped",
				     n->vdev.id, n->rx_len - NET_HDR_LEN);
		n->rx_len = 0;
		return 1;
	}
	for (uint64_t left = need; left; k++) {
		uint32_t take = (uint32_t)MIN((uint64_t)stash_at(n, k)->len, left);

		used[k].id = stash_at(n, k)->head;
		used[k].len = take;
		left -= take;
	}
	h->num_buffers = htole16((uint16_t)k);
	for (unsigned i = 0; i < k; i++) {
		struct rx_chain *c = stash_at(n, i);

		iov_from_buf(c->iov, c->n, 0, n->rx_frame + off, used[i].len);
		off += used[i].len;
		n->stash_bytes -= c->len;
	}
	n->stash_first = (n->stash_first + k) % NET_RX_STASH;
	n->stash_n -= k;
	vq_push_many(vq, used, k);
	*pushed = true;
	n->stats.rx_packets++;
	n->stats.rx_bytes += need - NET_HDR_LEN;
	n->rx_len = 0;
	return 1;
}

/* Read frames from the backend and give them to the guest (lock held). */
void net_rx(struct virtio_net *n)
{
	bool pushed = false;
	int ret = 1;

	if (!virtio_queue_ready(&n->vdev, NET_RXQ)) {
		net_set_poll(n, false, n->poll_tx); /* activate or the next kick resumes */
		return;
	}
	for (unsigned budget = NET_RX_BUDGET; budget; budget--) {
		if (!n->rx_len) {
			ssize_t r = n->be->ops->recv(n->be, n->rx_frame, NET_MAX_PACKET);

			if (r == -EAGAIN || r == -EINTR)
				break;
			if (net_link_check(n))
				return;
			if (r < 0) {
				n->stats.rx_errors++;
				log_warn_ratelimited("%s: %s: read: %s", n->vdev.id, n->be->name,
						     strerror((int)-r));
				break;
			}
			if (r < NET_HDR_LEN + NET_ETH_HLEN ||
			    virtio_net_fix_rx_hdr((struct virtio_net_hdr_v1 *)n->rx_frame,
						  n->vdev.driver_features)) {
				n->stats.rx_dropped++;
				continue;
			}
			n->rx_len = (size_t)r;
		}
		ret = rx_deliver(n, &pushed);
		if (ret <= 0)
			break;
	}
	/* Poll the backend again only when no frame waits for room. */
	net_set_poll(n, ret > 0 && !n->rx_len, n->poll_tx);
	if (pushed)
		virtio_queue_interrupt(&n->vdev, NET_RXQ);
}

/* ---- snapshot drain ------------------------------------------------------------------------- */

/* Are the stashed chains the last ones popped, in avail order? Not when a chain that could not
 * be mapped (-E2BIG) was popped and returned after the first of them. */
static bool stash_is_tail(struct virtio_net *n, const struct virtq *vq)
{
	for (unsigned i = 0; i < n->stash_n; i++)
		if (stash_at(n, i)->avail != (uint16_t)(vq->last_avail - n->stash_n + i))
			return false;
	return true;
}

/*
 * Snapshot, receive. The frame waiting in rx_frame is delivered if the stash and the ring
 * hold it now (the guest is parked: no buffer comes later). The chains still in the stash
 * have no used entry and the guest has not seen them touched: they are given back to the
 * ring (vq_rewind), so the device, this one or a restored one, pops them again, and the
 * snapshot has no chain in flight. A stash that is not the tail of the pops (an -E2BIG chain
 * in between) cannot be rewound: its chains go back used and empty, as a chain the device
 * cannot use does in stash_fill; no frame is in them. A kick resumes receiving afterwards
 * (avail_event does not ask the guest to kick for chains it published already).
 */
void net_drain_rx(struct virtio_net *n)
{
	struct virtq *vq = &n->vdev.queues[NET_RXQ].vq;
	struct vring_used_elem used[NET_RX_STASH];
	bool pushed = false;

	if (n->rx_len) {
		int ret;

		virtio_dispatch_begin(&n->vdev);
		ret = rx_deliver(n, &pushed);
		virtio_dispatch_end(&n->vdev);
		if (ret < 0)
			return; /* the ring is broken: NEEDS_RESET, the device stays busy */
	}
	if (n->stash_n && !(stash_is_tail(n, vq) && !vq_rewind(vq, (uint16_t)n->stash_n))) {
		for (unsigned i = 0; i < n->stash_n; i++)
			used[i] = (struct vring_used_elem){.id = stash_at(n, i)->head, .len = 0};
		vq_push_many(vq, used, n->stash_n);
		pushed = true;
		log_info("%s: %u receive chains returned empty for the snapshot", n->vdev.id,
			 n->stash_n);
	}
	n->stash_first = n->stash_n = 0;
	n->stash_bytes = 0;
	if (pushed)
		virtio_queue_interrupt(&n->vdev, NET_RXQ);
	virtio_dev_kick(&n->vdev, NET_RXQ);
}
