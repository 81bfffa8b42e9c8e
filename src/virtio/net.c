/* net.c: virtio-net over a network backend (TAP, user mode): header rules, transmit, device ops.
 * Receive is in net_rx.c, the state both share in net_internal.h. */
#include "virtio/net_internal.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "util/log.h"

/* ---- pure helpers ------------------------------------------------------------------------- */

uint64_t virtio_net_features(bool offloads, unsigned mtu)
{
	uint64_t f = BIT_ULL(VIRTIO_NET_F_MAC) | BIT_ULL(VIRTIO_NET_F_STATUS) |
		     BIT_ULL(VIRTIO_NET_F_MRG_RXBUF) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX) |
		     BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC);

	if (mtu)
		f |= BIT_ULL(VIRTIO_NET_F_MTU);
	if (offloads)
		f |= BIT_ULL(VIRTIO_NET_F_CSUM) | BIT_ULL(VIRTIO_NET_F_GUEST_CSUM) |
		     BIT_ULL(VIRTIO_NET_F_GUEST_TSO4) | BIT_ULL(VIRTIO_NET_F_GUEST_TSO6) |
		     BIT_ULL(VIRTIO_NET_F_HOST_TSO4) | BIT_ULL(VIRTIO_NET_F_HOST_TSO6);
	return f;
}

static bool has(uint64_t features, unsigned bit) { return features & BIT_ULL(bit); }

unsigned virtio_net_tun_offload(uint64_t f)
{
	unsigned t;

	if (!has(f, VIRTIO_NET_F_GUEST_CSUM))
		return 0;
	t = TUN_F_CSUM;
	if (has(f, VIRTIO_NET_F_GUEST_TSO4))
		t |= TUN_F_TSO4;
	if (has(f, VIRTIO_NET_F_GUEST_TSO6))
		t |= TUN_F_TSO6;
	if (has(f, VIRTIO_NET_F_GUEST_ECN) && (t & (TUN_F_TSO4 | TUN_F_TSO6)))
		t |= TUN_F_TSO_ECN;
	if (has(f, VIRTIO_NET_F_GUEST_UFO))
		t |= TUN_F_UFO;
	return t;
}

/* Is a GSO type allowed by the features (tso4, tso6, ecn, ufo: the bits to look at)? */
static bool gso_ok(uint8_t gso_type, uint64_t f, unsigned tso4, unsigned tso6, unsigned ecn,
		   unsigned ufo)
{
	if ((gso_type & VIRTIO_NET_HDR_GSO_ECN) && !has(f, ecn))
		return false;
	switch (gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return !(gso_type & VIRTIO_NET_HDR_GSO_ECN);
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return has(f, tso4);
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return has(f, tso6);
	case VIRTIO_NET_HDR_GSO_UDP:
		return has(f, ufo);
	default:
		return false;
	}
}

int virtio_net_check_tx_hdr(const struct virtio_net_hdr_v1 *h, uint64_t frame_len, uint64_t f,
			    const char **why)
{
	uint32_t csum_start = le16toh(h->csum_start), csum_offset = le16toh(h->csum_offset);

	if (frame_len < NET_ETH_HLEN)
		*why = "frame shorter than an Ethernet header";
	else if (frame_len > NET_MAX_FRAME)
		*why = "frame longer than 65550 bytes";
	else if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		*why = "header flags other than NEEDS_CSUM";
	else if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !has(f, VIRTIO_NET_F_CSUM))
		*why = "NEEDS_CSUM without the CSUM feature";
	else if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
		 csum_start + csum_offset + 2 > frame_len)
		*why = "checksum field outside the frame";
	else if (!gso_ok(h->gso_type, f, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
			 VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_HOST_UFO))
		*why = "GSO type not negotiated";
	else if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE &&
		 !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		*why = "GSO without NEEDS_CSUM";
	else if (h->gso_type != VIRTIO_NET_HDR_GSO_NONE &&
		 (!h->gso_size || le16toh(h->hdr_len) > frame_len))
		*why = "GSO with a zero segment size or a header length past the frame";
	else
		return 0;
	return -EINVAL;
}

int virtio_net_fix_rx_hdr(struct virtio_net_hdr_v1 *h, uint64_t f)
{
	h->num_buffers = 0;
	if (!has(f, VIRTIO_NET_F_GUEST_CSUM)) {
		/* A frame with a partial checksum cannot go to this driver; DATA_VALID is only a
		 * hint and must be 0 without GUEST_CSUM (5.1.6.4). */
		if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return -EINVAL;
		h->flags = 0;
	}
	h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	if (!gso_ok(h->gso_type, f, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
		    VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_UFO))
		return -EINVAL;
	return 0;
}

/* ---- backend polling ---------------------------------------------------------------------- */

void net_set_poll(struct virtio_net *n, bool rx, bool tx)
{
	if (n->poll_rx == rx && n->poll_tx == tx)
		return;
	n->poll_rx = rx;
	n->poll_tx = tx;
	n->be->ops->set_poll(n->be, rx, tx);
}

/* The backend went away for good: tell the driver once (LINK_UP clears in the config space,
 * with a config interrupt), stop polling. Frames the guest still sends are dropped and
 * counted, the one waiting for room too: its chain goes back to the guest. The backend logged
 * why. (Lock held.) */
bool net_link_check(struct virtio_net *n)
{
	if (n->link_down || !atomic_load(&n->be->gone))
		return n->link_down;
	n->link_down = true;
	n->rx_len = 0;
	net_set_poll(n, false, false);
	if (n->tx_waiting && virtio_queue_ready(&n->vdev, NET_TXQ)) {
		n->stats.tx_dropped++;
		vq_push(&n->vdev.queues[NET_TXQ].vq, n->tx_head, 0);
		virtio_queue_interrupt(&n->vdev, NET_TXQ);
	}
	n->tx_waiting = false;
	if (n->vdev.status & VIRTIO_STATUS_DRIVER_OK)
		virtio_config_changed(&n->vdev);
	return true;
}

/* ---- transmit ----------------------------------------------------------------------------- */

/* Send the frame in tx_iov. Returns 0 (done with it), -EAGAIN (keep it, wait for room). */
static int tx_send(struct virtio_net *n)
{
	int r = n->be->ops->send(n->be, n->tx_iov, n->tx_n, n->tx_len);

	if (r == -EAGAIN)
		return r;
	n->tx_waiting = false; /* done with, whatever came of it: completed below, once */
	if (net_link_check(n)) {
		n->stats.tx_dropped++; /* no carrier */
	} else if (r < 0) {
		n->stats.tx_errors++;
		log_warn_ratelimited("%s: %s: write: %s", n->vdev.id, n->be->name, strerror(-r));
	} else {
		n->stats.tx_packets++;
		n->stats.tx_bytes += n->tx_len - NET_HDR_LEN;
	}
	vq_push(&n->vdev.queues[NET_TXQ].vq, n->tx_head, 0);
	return 0;
}

/* Check a popped chain and point tx_iov at it (our copy of the header, then the frame).
 * Returns 0, or -EINVAL when the frame is dropped. */
static int tx_prepare(struct virtio_net *n, const struct vq_chain *ch)
{
	const char *why;

	if (ch->out_len < NET_HDR_LEN) {
		why = "shorter than the 12-byte header";
	} else {
		iov_to_buf(n->tx_chain, ch->n_out, 0, &n->tx_hdr, NET_HDR_LEN);
		if (!virtio_net_check_tx_hdr(&n->tx_hdr, ch->out_len - NET_HDR_LEN,
					     n->vdev.driver_features, &why)) {
			n->tx_iov[0].iov_base = &n->tx_hdr;
			n->tx_iov[0].iov_len = NET_HDR_LEN;
			n->tx_n = 1 + iov_slice(n->tx_chain, ch->n_out, NET_HDR_LEN,
						ch->out_len - NET_HDR_LEN, n->tx_iov + 1);
			n->tx_len = (size_t)ch->out_len;
			n->tx_head = ch->head;
			return 0;
		}
	}
	n->stats.tx_dropped++;
	log_warn_ratelimited("%s: transmit chain %u: %s: dropped", n->vdev.id, ch->head, why);
	return -EINVAL;
}

/* Send what the ring holds, a ring's worth per dispatch (the core's budget: then it kicks the
 * queue again, so other devices and the receive side run before the rest). */
static void net_tx(struct virtio_net *n)
{
	struct virtq *vq = &n->vdev.queues[NET_TXQ].vq;
	struct vq_chain ch;
	int ret;

	if (n->tx_waiting)
		return; /* the backend's tx readiness resumes us */
	do {
		while ((ret = vq_pop(vq, &ch, n->tx_chain, NET_IOV_CAP)) != 0) {
			if (ret == -E2BIG) {
				n->stats.tx_dropped++;
				vq_push(vq, ch.head, 0);
				continue;
			}
			if (ret < 0) {
				virtio_dev_needs_reset(&n->vdev, "malformed transmit ring (%s)",
						       strerror(-ret));
				goto out;
			}
			if (tx_prepare(n, &ch)) {
				vq_push(vq, ch.head, 0);
				continue;
			}
			if (tx_send(n) == -EAGAIN) {
				n->tx_waiting = true;
				net_set_poll(n, n->poll_rx, true);
				goto out;
			}
		}
	} while (vq_enable_notify(vq));
out:
	virtio_queue_interrupt(&n->vdev, NET_TXQ);
}

/* The backend has room again for the frame that waits. */
static void net_tx_resume(struct virtio_net *n)
{
	if (!n->tx_waiting)
		return;
	if (tx_send(n) == -EAGAIN)
		return;
	n->tx_waiting = false;
	net_set_poll(n, n->poll_rx, false);
	net_tx(n);
}

/* ---- device ops ------------------------------------------------------------------------------ */

/* Backend readiness (event-loop thread, lock not held). */
static void net_backend_ready(void *opaque, bool rx, bool tx)
{
	struct virtio_net *n = opaque;

	pthread_mutex_lock(&n->vdev.lock);
	virtio_dispatch_begin(&n->vdev);
	if (net_link_check(n)) {
		/* The guest was told; nothing more to read or write. */
	} else if (n->vdev.status & VIRTIO_STATUS_DRIVER_OK &&
		   !(n->vdev.status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))) {
		if (tx && virtio_queue_ready(&n->vdev, NET_TXQ))
			net_tx_resume(n);
		if (rx)
			net_rx(n);
	} else {
		net_set_poll(n, false, false);
	}
	virtio_dispatch_end(&n->vdev);
	pthread_mutex_unlock(&n->vdev.lock);
}

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_net *n = to_net(d);

	if (q == NET_TXQ)
		net_tx(n);
	else if (q == NET_RXQ)
		net_rx(n);
}

static int net_activate(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);
	int ret = 0;

	if (n->be->ops->set_offload)
		ret = n->be->ops->set_offload(n->be, virtio_net_tun_offload(d->driver_features));
	if (ret) {
		log_err("%s: %s: TUNSETOFFLOAD: %s", d->id, n->be->name, strerror(-ret));
		return ret;
	}
	/* The core kicks both queues next: the receive kick starts polling the backend. */
	return 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);

	net_set_poll(n, false, false);
	n->rx_len = 0; /* the frame is lost with the link, as on real hardware */
	n->stash_first = n->stash_n = 0;
	n->stash_bytes = 0;
	n->tx_waiting = false;
	if (n->be->ops->set_offload)
		(void)n->be->ops->set_offload(n->be, 0);
}

/* Snapshot: no receive chains held for a frame and no transmit chain waiting for the backend.
 * A frame read from the backend but not yet given to the guest (rx_frame: no room for it) is
 * not part of the device state: a VM that runs on after the snapshot still gets it, a VM
 * restored from it never does, as on a link that went down. net_drain delivers it first when
 * the guest's receive ring has room. */
static bool net_quiesced(struct virtio_dev *d)
{
	const struct virtio_net *n = to_net(d);

	return !n->stash_n && !n->tx_waiting;
}

/* Snapshot, transmit: send the frame that waits for the backend, waiting for room until ms
 * have passed (never spinning: the backend's wait_tx sleeps in poll), then complete its chain
 * as net_tx_resume does, with its used entry and interrupt. The rest of the ring is left to a
 * kick, served once the event loop resumes (or by the restored device's own kick): a drain
 * finishes what is in flight and starts nothing new. A frame the backend still has no room
 * for keeps its chain and the device stays busy: the snapshot is refused, the frame goes
 * later as usual. */
static void drain_tx(struct virtio_net *n, unsigned ms)
{
	uint64_t deadline = clock_ms() + ms;

	while (tx_send(n) == -EAGAIN) {
		uint64_t now = clock_ms();

		if (now >= deadline || !n->be->ops->wait_tx ||
		    n->be->ops->wait_tx(n->be, (unsigned)(deadline - now))) {
			log_info("%s: %s: no room for the waiting frame after %u ms", n->vdev.id,
				 n->be->name, ms);
			return;
		}
	}
	n->tx_waiting = false;
	net_set_poll(n, n->poll_rx, false);
	virtio_queue_interrupt(&n->vdev, NET_TXQ);
	virtio_dev_kick(&n->vdev, NET_TXQ);
}

/* Snapshot (lock held, event-loop thread, vCPUs parked): see drain_tx and net_drain_rx
 * (net_rx.c). A device that is not running (not DRIVER_OK, NEEDS_RESET) is left as it is. */
static void net_drain(struct virtio_dev *d, unsigned ms)
{
	struct virtio_net *n = to_net(d);

	if (n->tx_waiting && virtio_queue_ready(d, NET_TXQ))
		drain_tx(n, ms);
	if ((n->stash_n || n->rx_len) && virtio_queue_ready(d, NET_RXQ))
		net_drain_rx(n);
}

static void net_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_net *n = to_net(d);
	struct virtio_net_config cfg = {
	    .status = htole16(n->link_down || atomic_load(&n->be->gone) ? 0 : VIRTIO_NET_S_LINK_UP),
	    .max_virtqueue_pairs = htole16(1),
	    .mtu = htole16((uint16_t)(n->mtu ? n->mtu : VM_CONFIG_DEFAULT_MTU)),
	};

	memcpy(cfg.mac, n->mac, sizeof(cfg.mac));
	memcpy(buf, (uint8_t *)&cfg + off, len);
}

static void net_destroy(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);

	net_backend_destroy(n->be);
	free(n->rx_frame);
	free(n->stash);
	virtio_dev_cleanup(d);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
    .name = "virtio-net",
    .type = VIRTIO_ID_NET,
    .pci_class = 0x020000, /* network controller, Ethernet */
    .config_read = net_config_read,
    .queue_notify = net_queue_notify,
    .activate = net_activate,
    .reset = net_reset,
    .destroy = net_destroy,
    .quiesced = net_quiesced,
    .drain = net_drain,
};

int virtio_net_create_with(const struct virtio_env *env, const struct net_config *cfg,
			   struct net_backend *be, struct virtio_dev **out, char *err,
			   size_t errlen)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	int ret;

	if (n) {
		n->rx_frame = malloc(NET_MAX_PACKET);
		n->stash = calloc(NET_RX_STASH, sizeof(*n->stash));
	}
	if (!n || !n->rx_frame || !n->stash) {
		snprintf(err, errlen, "net '%s': out of memory", cfg->id);
		ret = -ENOMEM;
		goto fail;
	}
	ret = virtio_dev_init(&n->vdev, &net_ops, cfg->id, env,
			      virtio_net_features(be->offloads, cfg->mtu), 2, NET_QUEUE_SIZE,
			      sizeof(struct virtio_net_config));
	if (ret) {
		snprintf(err, errlen, "net '%s': %s", cfg->id, strerror(-ret));
		goto fail;
	}
	n->be = be;
	n->mtu = cfg->mtu;
	if (cfg->mac_set)
		memcpy(n->mac, cfg->mac, sizeof(n->mac));
	else
		vm_config_default_mac(cfg->id, n->mac);
	be->ready = net_backend_ready;
	be->opaque = n;
	*out = &n->vdev;
	return 0;

fail:
	net_backend_destroy(be);
	if (n) {
		free(n->rx_frame);
		free(n->stash);
	}
	free(n);
	return ret;
}

int virtio_net_create(const struct virtio_env *env, const struct net_config *cfg,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	struct net_backend *be = NULL;
	char why[256];
	int ret;

	if (cfg->tap)
		ret = net_tap_open(cfg->tap, env->ev, &be, why, sizeof(why));
	else
		ret = net_passt_create(cfg, env->ev, &be, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "net '%s': %s", cfg->id, why);
		return ret;
	}
	return virtio_net_create_with(env, cfg, be, out, err, errlen);
}

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *st)
{
	struct virtio_net *n = to_net(d);

	pthread_mutex_lock(&d->lock);
	*st = n->stats;
	st->rx_dropped += atomic_load(&n->be->rx_dropped);
	st->link_down = n->link_down || atomic_load(&n->be->gone);
	pthread_mutex_unlock(&d->lock);
}

void virtio_net_get_mac(const struct virtio_dev *d, uint8_t mac[6])
{
	memcpy(mac, ((const struct virtio_net *)d)->mac, 6);
}
