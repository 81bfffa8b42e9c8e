/* fake_driver.h: a tiny virtio driver on fake guest RAM for unit tests and fuzzers (header-only).
 *
 * RAM is one region at GPA 0 with a PROT_NONE guard page after it. The rings of the one
 * queue the driver uses sit at fixed addresses; buffers come from a bump allocator that the
 * test resets between requests. The driver talks to the device core directly (the register
 * protocol is tested separately through the PCI transport in test_virtio_pci.c).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "virtio/virtio.h"

#define FD_RAM_SIZE (4 * MiB)
#define FD_DESC 0x1000ULL
#define FD_AVAIL 0x5000ULL
#define FD_USED 0x6000ULL
#define FD_INDIRECT 0x8000ULL /* one indirect table, up to 256 entries */
#define FD_HEAP 0x10000ULL

struct fd_buf {
	gpa_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

struct fake_driver {
	struct guest_mem mem;
	uint8_t *ram;
	struct virtio_dev *dev;
	unsigned q;
	uint16_t qsize;
	uint16_t avail_idx; /* driver's next avail index */
	uint16_t used_seen; /* used entries consumed */
	uint16_t next_desc; /* descriptor allocator (wraps) */
	gpa_t heap;	    /* bump allocator */
	unsigned config_irqs, queue_irqs;
	uint16_t used_at_config_irq; /* the device's used index at the last config interrupt */
};

static inline void fd_raise(void *opaque, uint16_t vector)
{
	struct fake_driver *f = opaque;

	if (vector == 0) {
		f->config_irqs++;
		f->used_at_config_irq = f->dev->queues[f->q].vq.used_idx;
	} else
		f->queue_irqs++;
}

/* Map RAM. Returns 0 or -1. */
static inline int fd_init(struct fake_driver *f)
{
	memset(f, 0, sizeof(*f));
	f->ram = mmap(NULL, FD_RAM_SIZE + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (f->ram == MAP_FAILED)
		return -1;
	if (mprotect(f->ram + FD_RAM_SIZE, 4096, PROT_NONE))
		return -1;
	if (guest_mem_layout(&f->mem, FD_RAM_SIZE))
		return -1;
	f->mem.regions[0].hva = f->ram;
	f->heap = FD_HEAP;
	return 0;
}

static inline void fd_destroy(struct fake_driver *f)
{
	if (f->ram && f->ram != MAP_FAILED)
		munmap(f->ram, FD_RAM_SIZE + 4096);
	f->ram = NULL;
}

static inline void *fd_hva(struct fake_driver *f, gpa_t gpa) { return f->ram + gpa; }

static inline gpa_t fd_alloc(struct fake_driver *f, uint32_t len)
{
	gpa_t g = f->heap;

	f->heap = ALIGN_UP(f->heap + len, 16ULL);
	if (f->heap > FD_RAM_SIZE)
		f->heap = FD_HEAP; /* wrap: tests use far less */
	return g;
}

static inline void fd_reset_heap(struct fake_driver *f) { f->heap = FD_HEAP; }

/* Reset d and negotiate features up to FEATURES_OK, config interrupts on MSI-X vector 0
 * (lock held). */
static inline void fd_negotiate(struct virtio_dev *d, uint64_t features)
{
	virtio_set_status(d, 0);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_driver_features(d, 0, (uint32_t)features);
	virtio_set_driver_features(d, 1, (uint32_t)(features >> 32));
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK);
	d->msix_config = 0;
}

/* Negotiate `features` (masked by nothing: an unoffered bit makes FEATURES_OK fail), set up
 * queue q of qsize entries at the given ring addresses with MSI-X vector 1 (config: 0),
 * DRIVER_OK. Returns the status read back. */
static inline uint8_t fd_start_at(struct fake_driver *f, struct virtio_dev *d, unsigned q,
				  uint16_t qsize, uint64_t features, gpa_t desc, gpa_t avail,
				  gpa_t used)
{
	struct virtio_queue *vq = &d->queues[q];

	f->dev = d;
	f->q = q;
	f->qsize = qsize;
	f->avail_idx = f->used_seen = f->next_desc = 0;
	d->transport = (struct virtio_transport){.raise = fd_raise, .opaque = f};
	memset(f->ram + FD_DESC, 0, FD_HEAP - FD_DESC);
	pthread_mutex_lock(&d->lock);
	fd_negotiate(d, features);
	vq->vq.size = qsize;
	vq->vq.desc_gpa = desc;
	vq->vq.avail_gpa = avail;
	vq->vq.used_gpa = used;
	vq->msix_vector = 1;
	virtio_queue_enable(d, q);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	uint8_t st = d->status;
	pthread_mutex_unlock(&d->lock);
	return st;
}

/* The same with the rings where the other helpers expect them. */
static inline uint8_t fd_start(struct fake_driver *f, struct virtio_dev *d, unsigned q,
			       uint16_t qsize, uint64_t features)
{
	return fd_start_at(f, d, q, qsize, features, FD_DESC, FD_AVAIL, FD_USED);
}

static inline void fd_desc_at(struct fake_driver *f, gpa_t table, unsigned i, gpa_t addr,
			      uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};

	memcpy(f->ram + table + 16 * i, &d, sizeof(d));
}

/* Write a chain of n buffers into the descriptor table; returns its head. */
static inline uint16_t fd_chain(struct fake_driver *f, const struct fd_buf *b, unsigned n)
{
	uint16_t head = f->next_desc % f->qsize;

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % f->qsize);
		uint16_t flags =
		    (b[i].write ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0);

		fd_desc_at(f, FD_DESC, idx, b[i].gpa, b[i].len, flags,
			   (uint16_t)((idx + 1) % f->qsize));
	}
	f->next_desc = (uint16_t)(f->next_desc + n);
	return head;
}

/* The same chain through one indirect table (one descriptor in the ring). */
static inline uint16_t fd_chain_indirect(struct fake_driver *f, const struct fd_buf *b, unsigned n)
{
	uint16_t head = f->next_desc % f->qsize;

	for (unsigned i = 0; i < n; i++)
		fd_desc_at(f, FD_INDIRECT, i, b[i].gpa, b[i].len,
			   (b[i].write ? VRING_DESC_F_WRITE : 0) |
			       (i + 1 < n ? VRING_DESC_F_NEXT : 0),
			   (uint16_t)(i + 1));
	fd_desc_at(f, FD_DESC, head, FD_INDIRECT, 16 * n, VRING_DESC_F_INDIRECT, 0);
	f->next_desc++;
	return head;
}

/* Make head available (avail->idx published last). */
static inline void fd_submit(struct fake_driver *f, uint16_t head)
{
	struct vring_avail *a = fd_hva(f, FD_AVAIL);

	a->ring[f->avail_idx % f->qsize] = head;
	__atomic_store_n(&a->idx, ++f->avail_idx, __ATOMIC_RELEASE);
}

/* Take the next used entry. Returns true with id/len set, false if none. */
static inline bool fd_used(struct fake_driver *f, uint32_t *id, uint32_t *len)
{
	struct vring_used *u = fd_hva(f, FD_USED);

	if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == f->used_seen)
		return false;
	*id = u->ring[f->used_seen % f->qsize].id;
	*len = u->ring[f->used_seen % f->qsize].len;
	f->used_seen++;
	return true;
}

/* Run the device on the queue (as the event loop would after a kick). */
static inline void fd_kick(struct fake_driver *f) { virtio_dev_process(f->dev, f->q); }
