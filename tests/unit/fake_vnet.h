/* fake_vnet.h: a fake virtio-net driver (receive and transmit queues) on fake_driver.h's RAM,
 * for unit tests, the net fuzzer and the net benchmark (header-only).
 *
 * Rings: receiveq at 0x1000 (desc), 0x3000 (avail), 0x4000 (used); transmitq at 0x5000,
 * 0x7000, 0x8000; queue size up to 256. Buffers come from fake_driver's heap (FD_HEAP up).
 */
#pragma once

#include "fake_driver.h"
#include "util/log.h"
#include "virtio/net.h"
#include "vmm/event.h"

#define FV_RXQ 0
#define FV_TXQ 1
#define FV_QMAX 256

struct fv_queue {
	gpa_t desc, avail, used;
	uint16_t size, avail_idx, used_seen, next_desc;
};

struct fake_vnet {
	struct fake_driver f; /* RAM, heap, interrupt counts */
	struct virtio_dev *dev;
	struct fv_queue q[2];
};

static inline int fv_init(struct fake_vnet *v)
{
	memset(v, 0, sizeof(*v));
	v->q[FV_RXQ] = (struct fv_queue){.desc = 0x1000, .avail = 0x3000, .used = 0x4000};
	v->q[FV_TXQ] = (struct fv_queue){.desc = 0x5000, .avail = 0x7000, .used = 0x8000};
	return fd_init(&v->f);
}

/* Reset d, negotiate features, set up both queues of qsize entries (MSI-X vectors 1 and 2,
 * config 0), DRIVER_OK. Returns the status read back. */
static inline uint8_t fv_start(struct fake_vnet *v, struct virtio_dev *d, uint16_t qsize,
			       uint64_t features)
{
	v->dev = d;
	v->f.dev = d; /* fd_raise looks at queue f.q (0, the receive queue) */
	v->f.q = FV_RXQ;
	d->transport = (struct virtio_transport){.raise = fd_raise, .opaque = &v->f};
	memset(v->f.ram + 0x1000, 0, 0x9000);
	pthread_mutex_lock(&d->lock);
	fd_negotiate(d, features);
	for (unsigned i = 0; i < 2; i++) {
		struct fv_queue *q = &v->q[i];

		q->size = qsize;
		q->avail_idx = q->used_seen = q->next_desc = 0;
		d->queues[i].vq.size = qsize;
		d->queues[i].vq.desc_gpa = q->desc;
		d->queues[i].vq.avail_gpa = q->avail;
		d->queues[i].vq.used_gpa = q->used;
		d->queues[i].msix_vector = (uint16_t)(1 + i);
		virtio_queue_enable(d, i);
	}
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	uint8_t st = d->status;
	pthread_mutex_unlock(&d->lock);
	return st;
}

/* Write a chain of n buffers into queue qi's table and make it available. Returns its head. */
static inline uint16_t fv_add(struct fake_vnet *v, unsigned qi, const struct fd_buf *b,
			      unsigned n)
{
	struct fv_queue *q = &v->q[qi];
	uint16_t head = q->next_desc % q->size;
	struct vring_avail *a = fd_hva(&v->f, q->avail);

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % q->size);
		uint16_t flags =
		    (b[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0);

		fd_desc_at(&v->f, q->desc, idx, b[i].gpa, b[i].len, flags,
			   (uint16_t)((idx + 1) % q->size));
	}
	q->next_desc = (uint16_t)(q->next_desc + n);
	a->ring[q->avail_idx % q->size] = head;
	__atomic_store_n(&a->idx, ++q->avail_idx, __ATOMIC_RELEASE);
	return head;
}

/* One device-writable receive buffer of len bytes at gpa. */
static inline uint16_t fv_add_rx(struct fake_vnet *v, gpa_t gpa, uint32_t len)
{
	struct fd_buf b = {.gpa = gpa, .len = len, .write = true};

	return fv_add(v, FV_RXQ, &b, 1);
}

/* Take queue qi's next used entry. Returns true with id/len set, false if none. */
static inline bool fv_used(struct fake_vnet *v, unsigned qi, uint32_t *id, uint32_t *len)
{
	struct fv_queue *q = &v->q[qi];
	struct vring_used *u = fd_hva(&v->f, q->used);

	if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == q->used_seen)
		return false;
	*id = u->ring[q->used_seen % q->size].id;
	*len = u->ring[q->used_seen % q->size].len;
	q->used_seen++;
	return true;
}

/* After adding buffers to queue qi (its avail index was `old` before): does the device want a
 * kick, as a Linux driver decides it (avail_event with EVENT_IDX, else the NO_NOTIFY flag)? */
static inline bool fv_kick_needed(struct fake_vnet *v, unsigned qi, uint16_t old, bool event_idx)
{
	struct fv_queue *q = &v->q[qi];
	struct vring_used *u = fd_hva(&v->f, q->used);
	uint16_t now = q->avail_idx;

	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* avail->idx before avail_event / flags */
	if (!event_idx)
		return !(__atomic_load_n(&u->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
	uint16_t event = __atomic_load_n((uint16_t *)&u->ring[q->size], __ATOMIC_RELAXED);
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

/* Test fixture halves: an event loop and fake RAM for a device; then the device (may be NULL)
 * and both destroyed. */
static inline int fv_setup(struct event_loop *ev, struct fake_vnet *v)
{
	log_set_level(LOG_ERROR);
	return event_loop_init(ev) || fv_init(v) ? -1 : 0;
}

static inline void fv_teardown(struct event_loop *ev, struct fake_vnet *v, struct virtio_dev **d)
{
	virtio_dev_destroy(*d);
	*d = NULL;
	event_loop_destroy(ev);
	fd_destroy(&v->f);
}
