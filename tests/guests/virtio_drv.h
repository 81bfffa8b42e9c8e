/* virtio_drv.h: a minimal modern virtio-pci driver for the test guests: split rings, polled.
 *
 * Enough for a guest to drive one virtio device the way a real driver starts it (virtio 1.2,
 * 3.1.1 and 4.1): find it on bus 0 by config mechanism #1, read its vendor capabilities,
 * reset it, negotiate features (VERSION_1 plus what the caller asks for), set up split
 * virtqueues in guest RAM and set DRIVER_OK. No interrupts: the driver polls the used ring,
 * and every wait is bounded by the LAPIC timer. Any protocol error ends the test with FAIL.
 */
#pragma once

#include "runtime.h"

/* Device types (virtio 1.2, 5). */
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3

#define VIRTIO_F_VERSION_1 32

/* Entries per queue this driver sets up at most (a device may offer more, never less than
 * one). 64 keeps the rings of a queue inside two pages. */
#define VQ_SIZE_MAX 64

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[VQ_SIZE_MAX];
	uint16_t used_event; /* only with EVENT_IDX; never negotiated here */
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[VQ_SIZE_MAX];
	uint16_t avail_event;
};

/* One split virtqueue. The rings live inside the struct, so a static struct vq (in .bss, in
 * guest RAM, identity mapped) is all a guest needs: its address is the guest-physical one. */
struct vq {
	struct vring_desc desc[VQ_SIZE_MAX] __attribute__((aligned(16)));
	struct vring_avail avail __attribute__((aligned(2)));
	struct vring_used used __attribute__((aligned(4)));
	uint16_t index;	    /* queue number */
	uint16_t size;	    /* entries negotiated: min(device maximum, VQ_SIZE_MAX) */
	uint64_t notify;    /* MMIO address of this queue's notify register */
	uint16_t free_head; /* free descriptors, linked through desc[].next */
	uint16_t nr_free;
	uint16_t avail_idx;		 /* the next avail->idx this driver publishes */
	uint16_t last_used;		 /* used->idx consumed so far */
	uint16_t chain_len[VQ_SIZE_MAX]; /* descriptors of the chain at each head */
};

/* One device: where its structures are in its BAR(s), mapped at their bus addresses. */
struct vdev {
	unsigned slot;	 /* 00:slot.0 */
	uint16_t type;	 /* VIRTIO_ID_* */
	uint64_t common; /* common configuration */
	uint64_t isr;	 /* ISR status byte */
	uint64_t device; /* device-specific configuration (0: the device has none) */
	uint64_t notify; /* notification area */
	uint32_t notify_mult;
	uint64_t offered;  /* device features */
	uint64_t features; /* negotiated: offered & wanted */
};

/* One buffer of a chain: the device reads it (out) or writes it (in, device_writes). */
struct vbuf {
	const void *addr;
	uint32_t len;
	bool device_writes;
};

/* Scan bus 0 for a modern virtio device of the given type; fill d (capabilities found, BARs
 * assigned if the firmware left them at 0, memory space and bus mastering on). False if no
 * such device is on the bus; FAIL if it is there but malformed. */
bool vdev_find(struct vdev *d, uint16_t type);
/* Reset, ACKNOWLEDGE, DRIVER, then negotiate offered & want (VERSION_1 must be offered and is
 * always taken) and check that FEATURES_OK sticks. */
void vdev_negotiate(struct vdev *d, uint64_t want);
static inline bool vdev_has(const struct vdev *d, unsigned bit)
{
	return bit < 64 && (d->features & (1ull << bit));
}
/* Set up queue `index` with q's rings (after vdev_negotiate, before vdev_driver_ok). */
void vdev_setup_queue(struct vdev *d, struct vq *q, uint16_t index);
/* DRIVER_OK; FAIL if the device refuses it (NEEDS_RESET or FAILED). */
void vdev_driver_ok(struct vdev *d);
uint8_t vdev_status(const struct vdev *d);
/* Device-specific configuration, read with accesses of the field's own width. */
uint32_t vdev_cfg_read32(const struct vdev *d, uint32_t off);
uint64_t vdev_cfg_read64(const struct vdev *d, uint32_t off);

/* The head the next vq_add() will use, or -1 when no descriptor is free: a caller that keeps
 * one buffer per descriptor fills buffer [head] before adding it. */
static inline int vq_next_head(const struct vq *q) { return q->nr_free ? q->free_head : -1; }
/* Chain n buffers (readable ones first) and make the chain available. Returns its head, or -1
 * when fewer than n descriptors are free (nothing is changed then). */
int vq_add(struct vq *q, const struct vbuf *bufs, unsigned n);
/* Notify the device, unless it said it does not need it (used->flags NO_NOTIFY). */
void vq_kick(struct vq *q);
/* Take the next used element: wait up to timeout_us (0: just look). True with its head and
 * the bytes the device wrote; the chain's descriptors are free again. */
bool vq_get_used(struct vq *q, uint32_t timeout_us, uint32_t *head, uint32_t *len);
/* Chains made available and not yet taken back by vq_get_used(). */
static inline uint16_t vq_in_flight(const struct vq *q)
{
	return (uint16_t)(q->avail_idx - q->last_used);
}
