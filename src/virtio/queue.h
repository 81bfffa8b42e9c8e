/* queue.h: the one split-virtqueue implementation every virtio device uses, hardened against
 * hostile guests.
 *
 * Split ring layout (virtio 1.x, 2.7):
 *
 *   desc  [size] { u64 addr; u32 len; u16 flags; u16 next; }      16 bytes each
 *   avail { u16 flags; u16 idx; u16 ring[size]; u16 used_event; }
 *   used  { u16 flags; u16 idx; { u32 id; u32 len; } ring[size]; u16 avail_event; }
 *
 * The driver adds heads to avail->ring and bumps avail->idx; the device walks each chain
 * (NEXT links, or one INDIRECT table), then writes {head, bytes written} to used->ring and
 * bumps used->idx. With EVENT_IDX, used_event / avail_event replace the NO_INTERRUPT /
 * NO_NOTIFY flags.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/compiler.h"
#include "vmm/memory.h"

#define VQ_MAX_SIZE 32768 /* spec maximum queue size */
#define VQ_MAX_CHAIN 1024 /* cap on descriptors per chain (direct + indirect) */

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

struct virtq {
	const struct guest_mem *mem;
	/* set by the transport from the driver's writes */
	uint16_t size; /* power of two, <= VQ_MAX_SIZE */
	bool ready;
	gpa_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	/* device state */
	uint16_t last_avail; /* next avail ring slot to consume */
	uint16_t used_idx;   /* next used ring slot to fill */
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool broken; /* a malformed ring was seen: the device must go NEEDS_RESET */
};

/* One popped chain. Readable (driver -> device) buffers come first in iov[0..n_out), then
 * writable ones in iov[n_out..n_out+n_in). iov_base values point into guest RAM. */
struct vq_chain {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len; /* total bytes readable / writable */
};

/* Check the ring addresses against guest RAM (with the queue size) and arm the queue.
 * Returns 0 or -EINVAL. */
int vq_init(struct virtq *vq, const struct guest_mem *mem) __must_check;
void vq_reset(struct virtq *vq);

/* Take the next available chain, mapping its buffers into iov (capacity iov_cap).
 * Returns 1 with *c filled, 0 if the ring is empty, or -EINVAL / -E2BIG / -EFAULT for a
 * malformed ring or chain: loops, indexes out of range, nested or misplaced INDIRECT,
 * a readable buffer after a writable one, addresses outside RAM, length overflow, more
 * than VQ_MAX_CHAIN descriptors or more than iov_cap buffers. On -EINVAL/-EFAULT the queue
 * is marked broken. On -E2BIG (chain valid but longer than iov_cap) the chain is consumed
 * and c->head is valid so the device can complete it with an error status. */
int vq_pop(struct virtq *vq, struct vq_chain *c, struct iovec *iov, unsigned iov_cap) __must_check;

/* Put a completed chain on the used ring: `written` bytes were written to its writable
 * buffers. */
void vq_push(struct virtq *vq, uint16_t head, uint32_t written);

/* After one or more vq_push: must the driver be interrupted? (EVENT_IDX or the
 * NO_INTERRUPT flag.) Updates the signalled state when it returns true. */
bool vq_should_notify(struct virtq *vq);

/* Tell the driver whether the device wants notifications (avail_event with EVENT_IDX,
 * else the used ring's NO_NOTIFY flag). Returns true if new buffers arrived meanwhile
 * (the caller should poll again). */
bool vq_enable_notify(struct virtq *vq);
void vq_disable_notify(struct virtq *vq);

/* Number of chains the driver has made available and the device has not taken. */
uint16_t vq_avail_count(const struct virtq *vq);

/* Copy helpers over an iovec range (readable or writable part). Return bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t offset, const void *buf,
		    size_t len);
