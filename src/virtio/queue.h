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
#define VRING_AVAIL_F_NO_INTERRUPT 1 /* avail->flags: driver needs no used-buffer interrupt */
#define VRING_USED_F_NO_NOTIFY 1     /* used->flags: device needs no available-buffer kick */

/* Guest-visible ring structures, little-endian. queue.c reads them field by field, once. */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then u16 used_event */
};
struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[]; /* [size], then u16 avail_event */
};
static_assert(sizeof(struct vring_desc) == 16, "virtio 1.x 2.7.5");
static_assert(sizeof(struct vring_avail) == 4, "virtio 1.x 2.7.6");
static_assert(sizeof(struct vring_used_elem) == 8, "virtio 1.x 2.7.8");
static_assert(sizeof(struct vring_used) == 4, "virtio 1.x 2.7.8");

/* Bytes of each ring area for n entries, event fields included (vq_init always checks them). */
#define VQ_DESC_BYTES(n) (16ULL * (n))
#define VQ_AVAIL_BYTES(n) (6ULL + 2ULL * (n))
#define VQ_USED_BYTES(n) (6ULL + 8ULL * (n))

struct virtq {
	const struct guest_mem *mem;
	/* set by the transport from the driver's writes */
	uint16_t size; /* power of two, <= VQ_MAX_SIZE */
	bool ready;
	gpa_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	/* device state */
	uint16_t last_avail;  /* next avail ring slot to consume */
	uint16_t used_idx;    /* next used ring slot to fill */
	uint16_t avail_known; /* chains past last_avail seen published by the last avail->idx
			       * read (<= size): vq_pop takes them without reading it again */
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool broken;	   /* a malformed ring was seen: the device must go NEEDS_RESET */
	const char *error; /* why it broke (static string, NULL if not broken), for device logs */
	/* per-dispatch budget (vq_budget_begin): a guest cannot keep one dispatch running */
	uint32_t budget;  /* chains vq_pop may still take in this dispatch */
	bool budget_hit;  /* it ran out with chains left: the dispatch must run again */
	/* host views of the three areas, set by vq_init; private to queue.c */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
};

/* One popped chain. Readable (driver -> device) buffers come first in iov[0..n_out), then
 * writable ones in iov[n_out..n_out+n_in). iov_base values point into guest RAM.
 * Zero-length descriptors are accepted (their address is not checked) but produce no iovec;
 * they still count toward VQ_MAX_CHAIN and the readable-before-writable rule. */
struct vq_chain {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len; /* total bytes readable / writable; together <= UINT32_MAX */
};

/* Check size (power of two, 1..VQ_MAX_SIZE), alignment (desc 16, avail 2, used 4) and that
 * each ring area, event field included, lies inside one RAM region; then arm the queue:
 * ready = true, last_avail = used_idx = 0, not broken, a budget of size chains. Restoring a snapshot sets last_avail /
 * used_idx after this. Returns 0, or -EINVAL with ready = false. Does not touch guest RAM. */
int vq_init(struct virtq *vq, const struct guest_mem *mem) __must_check;
/* Device reset: clear ready, ring addresses, event_idx and device state. Keeps mem and size
 * (the transport sets size back to its maximum). */
void vq_reset(struct virtq *vq);

/*
 * Per-dispatch budget. A driver can publish a chain for each one the device completes, so a
 * loop that runs "until the ring is empty" may never end. Every dispatch (virtio.c,
 * virtio_dispatch_begin/end) starts with vq_budget_begin(vq, size); once vq_pop has handed
 * out that many chains (-E2BIG ones included) it returns 0 as if the ring were empty, and
 * vq_enable_notify returns false, so every device loop of the form "pop until 0, then repeat
 * while vq_enable_notify" ends. budget_hit records that chains were left behind: the core then
 * kicks the queue again, and the rest runs in a later event-loop round. Notifications may be
 * left disabled meanwhile (a stale avail_event, NO_NOTIFY): that is safe only because of
 * that self-kick.
 */
void vq_budget_begin(struct virtq *vq, uint32_t chains);
/* Spend what is left (a device's own limit ran out, such as bytes): vq_pop returns 0 from now
 * on in this dispatch, and budget_hit is set if chains are left. */
void vq_budget_stop(struct virtq *vq);
/* End of the dispatch: returns budget_hit (chains left behind: kick the queue again) and
 * clears it. */
bool vq_budget_end(struct virtq *vq);

/* Take the next available chain, mapping its buffers into iov (capacity iov_cap).
 * Returns 1 with *c filled, 0 if the ring is empty or the queue is not ready, or
 * -EINVAL / -E2BIG / -EFAULT for a malformed ring or chain: loops, indexes out of range,
 * avail->idx more than size ahead, nested or misplaced INDIRECT, a readable buffer after a
 * writable one, length sum over UINT32_MAX, more than VQ_MAX_CHAIN buffer descriptors or
 * an indirect table over VQ_MAX_CHAIN entries (-EINVAL); buffers or tables outside RAM
 * (-EFAULT); more than iov_cap buffers (-E2BIG). On -EINVAL/-EFAULT the queue is marked
 * broken and every later vq_pop returns -EINVAL without reading guest memory. On -E2BIG
 * (chain valid but longer than iov_cap) the chain is consumed and only c->head is valid, so
 * the device can complete it with an error status.
 * An INDIRECT descriptor may end a direct chain (it cannot have NEXT); its WRITE flag is
 * ignored. Also returns 0 once the dispatch's budget is spent (see vq_budget_begin).
 * Event-loop use: vq_disable_notify; pop/push until 0; if vq_enable_notify, repeat. */
int vq_pop(struct virtq *vq, struct vq_chain *c, struct iovec *iov, unsigned iov_cap) __must_check;

/* Give back the last n chains vq_pop took, untouched (no used entry written for them): the
 * next vq_pop takes them again, in the same order, re-reading avail->idx with its checks.
 * For a device that held chains without using them and must hand them over (a snapshot).
 * The caller guarantees that the chains at avail positions [last_avail - n, last_avail) are
 * all held and unpushed; the queue can only check that n is at most the chains taken and
 * not pushed (last_avail - used_idx). used_idx and the EVENT_IDX shadow (signalled_used)
 * do not move; avail_event is left as it is: the driver published these chains already and
 * will not kick for them, so the caller must process the queue again itself (a kick).
 * Returns 0, or -EINVAL (queue not ready or broken, or n too large). */
int vq_rewind(struct virtq *vq, uint16_t n) __must_check;

/* Put a completed chain on the used ring: `written` bytes were written to its writable
 * buffers. No-op on a queue that is not ready or broken, or for head >= size. */
void vq_push(struct virtq *vq, uint16_t head, uint32_t written);
/* Put n completed chains ({head, written} each) on the used ring and publish them with one
 * used->idx store, so the driver sees all of them or none (a mergeable receive buffer
 * spanning several chains). Nothing is pushed if the queue is not ready, n > size or any
 * head >= size. */
void vq_push_many(struct virtq *vq, const struct vring_used_elem *elems, unsigned n);

/* After one or more vq_push: must the driver be interrupted? (EVENT_IDX or the
 * NO_INTERRUPT flag.) With EVENT_IDX, records used_idx as signalled on every call (as vhost
 * and QEMU do), so each used index range is judged once. False on a broken queue. */
bool vq_should_notify(struct virtq *vq);

/* Tell the driver whether the device wants notifications (avail_event with EVENT_IDX,
 * else the used ring's NO_NOTIFY flag). Returns true if new buffers arrived meanwhile
 * (the caller should poll again). With EVENT_IDX, disabling is a no-op: a stale avail_event
 * already suppresses kicks. Once the budget is spent with chains left it returns false and
 * leaves notifications as they are (the core kicks the queue itself). */
bool vq_enable_notify(struct virtq *vq);
void vq_disable_notify(struct virtq *vq);

/* Number of chains the driver has made available and the device has not taken (capped at
 * size; 0 when not ready or broken). */
uint16_t vq_avail_count(const struct virtq *vq);

/* Copy helpers over an iovec range (readable or writable part), starting `offset` bytes
 * into it. Return bytes copied (short when the iovecs end first). */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t offset, const void *buf,
		    size_t len);
/* Point dst (capacity >= n) at the [off, off + len) part of the iovec src[0..n). Returns the
 * number of iovecs written (fewer bytes than len when src ends first). */
unsigned iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
		   struct iovec *dst);
