/* block.h: virtio-blk internals shared by block.c (requests, device) and block_image.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "backends/disk.h"
#include "virtio/virtio.h"

/* Feature bits (virtio 1.2, 5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_DWZ_F_UNMAP 1u

#define SECTOR 512ULL
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX 126 /* data segments per request; a chain adds header and status */
#define BLK_IOV_CAP (BLK_SEG_MAX + 2)
#define BLK_INLINE_SEGS 4 /* data segments kept in the slot itself; more go to segs[] */
#define BLK_SLOTS DISK_QUEUE_DEPTH
#define BLK_MAX_DWZ_SECTORS (1u << 22) /* 2 GiB per discard / write-zeroes request */
#define BLK_DISCARD_ALIGN 8	       /* sectors: 4 KiB, the host page / block size */
/* How long a reset (vCPU thread, lock held) and a swap of images (event loop) wait for the
 * requests in flight. A reset that runs out stays in progress until they complete; a swap
 * fails and the drive keeps its image. */
#define BLK_RESET_DRAIN_MS 500
#define BLK_SWAP_DRAIN_MS 1000

/* One request in flight and its backend request. A chain is popped into virtio_blk.chain
 * (one array, always in cache) and parsed there; a READ/WRITE keeps only its data buffers,
 * in the slot when they are few (the usual case: the slots in use share cache lines), else
 * in its row of virtio_blk.segs. */
struct blk_slot {
	/* First cache line: all a completion touches. */
	bool busy;
	uint16_t head;
	uint32_t written; /* used length on success */
	uint8_t *status;  /* the chain's last writable byte, in guest RAM */
	struct disk_req req;
	struct iovec seg[BLK_INLINE_SEGS];
} __attribute__((aligned(64)));
static_assert(offsetof(struct blk_slot, seg) <= 64, "a completion touches one cache line");

struct virtio_blk {
	struct virtio_dev vdev; /* first: the device core's view */
	struct disk disk;
	enum disk_engine engine; /* as configured: a new image (PATCH /drives) starts it again */
	bool disk_open, ev_registered;	  /* ev_registered: disk.event_fd is in the event loop */
	bool draining;			  /* reset: completions return buffers but touch no ring */
	char serial[VIRTIO_BLK_ID_BYTES]; /* zero padded, no NUL when full */
	uint64_t capacity;		  /* sectors */
	struct virtio_blk_stats stats;
	unsigned nr_busy;
	/* Free slots as a stack of indexes, [0, BLK_SLOTS - nr_busy) valid, top last: O(1)
	 * where a scan of the slots (4 KiB apart) showed up in profiles. */
	uint8_t free_slots[BLK_SLOTS];
	struct blk_slot slots[BLK_SLOTS];
	struct iovec chain[BLK_IOV_CAP]; /* the chain being parsed */
	/* Data buffers of long requests. The chain's readable and writable parts (the header
	 * and the status byte) each have at least one entry, so either has BLK_IOV_CAP - 1 at
	 * most, and its data part no more. */
	struct iovec segs[BLK_SLOTS][BLK_IOV_CAP - 1];
};
static_assert(BLK_SLOTS <= 256, "free_slots holds uint8_t indexes");

static inline struct virtio_blk *to_blk(struct virtio_dev *d) { return (struct virtio_blk *)d; }

extern const struct virtio_dev_ops blk_ops;

/* Backend completion (block.c), set as every image's d->complete. */
void blk_complete(void *opaque, struct disk_req *r);
/* The disk's eventfd handler (block.c). */
void blk_completions(void *opaque, uint32_t events);
/* End a reset left pending once no request is in flight any more (lock held; block.c). */
void blk_reset_finish(struct virtio_blk *b);

/* Capacity in sectors of an image of `size` bytes, with a log line when a partial last sector
 * is cut off (block_image.c). */
uint64_t blk_image_sectors(const char *id, const char *path, uint64_t size);
/* Hook an opened image up to the device: completions, and its eventfd in the event loop
 * (edge-triggered, see disk.h). Sets *watched. Returns 0 or -errno with a message. */
int blk_attach_disk(struct virtio_blk *b, struct disk *dk, bool *watched, char *err,
		    size_t errlen) __must_check;
