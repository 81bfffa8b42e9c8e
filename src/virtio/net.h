/* net.h: virtio-net over any network backend: features, the vnet header rules, counters.
 *
 * Every frame on either queue starts with struct virtio_net_hdr_v1 (VERSION_1 is always
 * negotiated, so the header is always 12 bytes, num_buffers included):
 *
 *   receiveq (0):  [hdr | frame ...........]  one chain, or with MRG_RXBUF the frame
 *                  [hdr | fra] [me ...] [...]   spread over hdr.num_buffers chains
 *   transmitq (1): [hdr][frame] in any split over the readable buffers of one chain
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/net.h"
#include "virtio/virtio.h"

/* Feature bits (virtio 1.2, 5.1.3). */
#define VIRTIO_NET_F_CSUM 0	  /* device takes frames with a partial checksum */
#define VIRTIO_NET_F_GUEST_CSUM 1 /* driver takes frames with a partial checksum */
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

#define VIRTIO_NET_S_LINK_UP 1

/* Header flags and GSO types (5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

struct virtio_net_hdr_v1 {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len; /* little-endian, all of them */
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
static_assert(sizeof(struct virtio_net_hdr_v1) == NET_HDR_LEN, "virtio 1.2 5.1.6");

/* Device configuration (5.1.4): the fields kiln fills. */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
};
static_assert(sizeof(struct virtio_net_config) == 12, "virtio 1.2 5.1.4");

/* Counters of one interface, updated on the event-loop thread. rx is host -> guest. */
struct virtio_net_stats {
	uint64_t rx_packets, rx_bytes; /* frames given to the guest, bytes without the header */
	uint64_t rx_dropped; /* frames that could not be given: too big for the guest's buffers,
				a header the driver did not negotiate, the backend's own drops */
	uint64_t rx_errors;  /* backend read errors */
	uint64_t tx_packets, tx_bytes;
	uint64_t tx_dropped; /* malformed frames (bad header, too short or long) */
	uint64_t tx_errors;  /* the backend refused or failed the write */
	uint64_t link_down;  /* 1 once the backend went away (passt exited, the TAP was
				deleted): the guest's link is down, the VM runs on */
};

/* Features offered: always MAC, STATUS, MRG_RXBUF, EVENT_IDX, INDIRECT_DESC (VERSION_1 is
 * added by the core); MTU when mtu is not 0; CSUM, GUEST_CSUM and TSO4/6 both ways when the
 * backend carries offloads (TAP). */
uint64_t virtio_net_features(bool offloads, unsigned mtu);
/* TUN_F_* flags for TUNSETOFFLOAD from the negotiated features: what the guest can take.
 * TSO needs GUEST_CSUM, as TUN and the spec want. */
unsigned virtio_net_tun_offload(uint64_t features);
/* Check a transmit header (copied out of guest memory) for a frame of frame_len bytes
 * after it, against the negotiated features. Returns 0, or -EINVAL with *why set. */
int virtio_net_check_tx_hdr(const struct virtio_net_hdr_v1 *h, uint64_t frame_len,
			    uint64_t features, const char **why) __must_check;
/* Make a receive header from the backend fit the negotiated features: flags cleared when
 * GUEST_CSUM is off, num_buffers zeroed. Returns 0, or -EINVAL when the frame needs an
 * offload the driver did not take (it is dropped). */
int virtio_net_fix_rx_hdr(struct virtio_net_hdr_v1 *h, uint64_t features) __must_check;

/* virtio-net for cfg: opens its backend (TAP or user mode) and sets the MAC (cfg->mac, or
 * vm_config_default_mac(cfg->id)). On error a one-line message naming the interface. */
int virtio_net_create(const struct virtio_env *env, const struct net_config *cfg,
		      struct virtio_dev **out, char *err, size_t errlen) __must_check;
/* The same over a backend the caller made; the device owns it from now on, even on error. */
int virtio_net_create_with(const struct virtio_env *env, const struct net_config *cfg,
			   struct net_backend *be, struct virtio_dev **out, char *err,
			   size_t errlen) __must_check;
/* Snapshot of the counters (takes the lock). */
void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *st);
/* The MAC the guest sees. */
void virtio_net_get_mac(const struct virtio_dev *d, uint8_t mac[6]);
