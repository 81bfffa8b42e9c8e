/* block.c: virtio-blk: request parsing and validation over a disk backend (sync or io_uring). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "util/log.h"
#include "virtio/block.h"

/* Request header, the first 16 readable bytes of every chain. */
struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};
static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio 1.2 5.2.6");

/* One discard / write-zeroes segment. */
struct virtio_blk_dwz {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};
static_assert(sizeof(struct virtio_blk_dwz) == 16, "virtio 1.2 5.2.6");

/* Device configuration (5.2.4), little-endian. */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint32_t max_secure_erase_sectors;
	uint32_t max_secure_erase_seg;
	uint32_t secure_erase_sector_alignment;
};
static_assert(sizeof(struct virtio_blk_config) == 72, "virtio 1.2 5.2.4");
static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "virtio 1.2 5.2.4");
static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36, "virtio 1.2 5.2.4");
static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "5.2.4");

/* Is [sector, sector + bytes / 512) inside the disk? Overflow-safe. */
static bool range_ok(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	return sector <= b->capacity && bytes / SECTOR <= b->capacity - sector;
}

static void finish(struct virtio_blk *b, struct blk_slot *s, uint8_t status, uint32_t written)
{
	if (status != VIRTIO_BLK_S_OK)
		written = 1; /* only the status byte is meaningful */
	*s->status = status;
	if (!b->draining)
		vq_push(&b->vdev.queues[0].vq, s->head, written);
	s->busy = false;
	b->nr_busy--;
	b->free_slots[BLK_SLOTS - 1 - b->nr_busy] = (uint8_t)(s - b->slots);
}

/* Backend completion (event-loop thread, lock held; inside disk_submit or disk_commit, or from
 * disk_reap / disk_drain). */
void blk_complete(void *opaque, struct disk_req *r)
{
	struct virtio_blk *b = opaque;
	struct blk_slot *s = (struct blk_slot *)((uint8_t *)r - offsetof(struct blk_slot, req));

	if (r->result) {
		b->stats.io_errors++;
		log_warn_ratelimited("%s: %s at byte %llu (+%llu): %s", b->vdev.id,
				     r->op == DISK_READ	   ? "read"
				     : r->op == DISK_WRITE ? "write"
				     : r->op == DISK_FLUSH ? "flush"
							   : "discard/write-zeroes",
				     (unsigned long long)r->offset, (unsigned long long)r->len,
				     strerror(-r->result));
		finish(b, s, VIRTIO_BLK_S_IOERR, 1);
		return;
	}
	if (r->op == DISK_READ)
		b->stats.read_bytes += r->len;
	else if (r->op == DISK_WRITE)
		b->stats.write_bytes += r->len;
	finish(b, s, VIRTIO_BLK_S_OK, s->written);
}

static uint8_t bad_request(struct virtio_blk *b, uint8_t status, const char *why)
{
	b->stats.bad_requests++;
	log_warn_ratelimited("%s: bad request: %s", b->vdev.id, why);
	return status;
}

/* DISCARD / WRITE_ZEROES: check the one segment and fill the backend request. Returns
 * VIRTIO_BLK_S_OK with s->req ready, or the error status. */
static uint8_t prepare_dwz(struct virtio_blk *b, struct blk_slot *s, const struct vq_chain *c,
			   const struct iovec *chain, bool discard)
{
	struct virtio_blk_dwz seg;
	uint64_t sector, bytes;
	uint32_t flags;

	if (b->disk.readonly) /* as a write: IOERR (features are not even offered) */
		return bad_request(b, VIRTIO_BLK_S_IOERR,
				   "discard/write-zeroes on a read-only disk");
	if (!virtio_dev_has_feature(&b->vdev,
				    discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
		return bad_request(b, VIRTIO_BLK_S_UNSUPP, "discard/write-zeroes not negotiated");
	if (c->out_len - sizeof(struct virtio_blk_outhdr) != sizeof(seg))
		return bad_request(b, VIRTIO_BLK_S_UNSUPP, "discard/write-zeroes: not one segment");
	iov_to_buf(chain, c->n_out, sizeof(struct virtio_blk_outhdr), &seg, sizeof(seg));
	sector = le64toh(seg.sector);
	bytes = (uint64_t)le32toh(seg.num_sectors) * SECTOR;
	flags = le32toh(seg.flags);
	if (flags & ~VIRTIO_BLK_DWZ_F_UNMAP)
		return bad_request(b, VIRTIO_BLK_S_UNSUPP, "discard/write-zeroes: reserved flags");
	if (discard && (flags & VIRTIO_BLK_DWZ_F_UNMAP))
		return bad_request(b, VIRTIO_BLK_S_UNSUPP, "discard with the unmap flag");
	if (le32toh(seg.num_sectors) > BLK_MAX_DWZ_SECTORS)
		return bad_request(b, VIRTIO_BLK_S_IOERR, "discard/write-zeroes: too many sectors");
	if (!range_ok(b, sector, bytes))
		return bad_request(b, VIRTIO_BLK_S_IOERR, "discard/write-zeroes beyond capacity");
	s->req.op = discard			       ? DISK_DISCARD
		    : (flags & VIRTIO_BLK_DWZ_F_UNMAP) ? DISK_WRITE_ZEROES_UNMAP
						       : DISK_WRITE_ZEROES;
	s->req.offset = sector * SECTOR;
	s->req.len = bytes;
	if (discard)
		b->stats.discard_reqs++;
	else
		b->stats.write_zeroes_reqs++;
	return VIRTIO_BLK_S_OK;
}

/* IN / OUT: check alignment and range and point the request at the data buffers, copied out
 * of the chain into the slot (or its row of segs when there are more than BLK_INLINE_SEGS). */
static uint8_t prepare_rw(struct virtio_blk *b, struct blk_slot *s, const struct vq_chain *c,
			  const struct iovec *chain, uint64_t sector, bool write)
{
	uint64_t len = write ? c->out_len - sizeof(struct virtio_blk_outhdr) : c->in_len - 1;
	unsigned most = write ? c->n_out : c->n_in; /* the slice has at most this many */
	struct iovec *dst = most <= BLK_INLINE_SEGS ? s->seg : b->segs[s - b->slots];

	if (write && b->disk.readonly)
		return bad_request(b, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
	if (len % SECTOR)
		return bad_request(b, VIRTIO_BLK_S_IOERR, "data length not a multiple of 512");
	if (!range_ok(b, sector, len))
		return bad_request(b, VIRTIO_BLK_S_IOERR, "sector range beyond capacity");
	/* The header may share its buffer with the first data bytes, and the status byte the
	 * last writable buffer with the last ones. */
	if (write)
		s->req.iovcnt =
		    iov_slice(chain, c->n_out, sizeof(struct virtio_blk_outhdr), len, dst);
	else
		s->req.iovcnt = iov_slice(chain + c->n_out, c->n_in, 0, len, dst);
	s->req.iov = dst;
	s->req.op = write ? DISK_WRITE : DISK_READ;
	s->req.offset = sector * SECTOR;
	s->req.len = len;
	s->written = write ? 1 : (uint32_t)len + 1;
	if (write)
		b->stats.write_reqs++;
	else
		b->stats.read_reqs++;
	return VIRTIO_BLK_S_OK;
}

/* Parse one chain popped into b->chain and start it; it completes inline or later through
 * blk_complete. */
static void start_request(struct virtio_blk *b, struct blk_slot *s, const struct vq_chain *c)
{
	const struct iovec *chain = b->chain;
	const struct iovec *last = &chain[c->n_out + c->n_in - 1];
	struct virtio_blk_outhdr h;
	uint8_t status;

	s->busy = true;
	b->nr_busy++; /* takes s off the free stack: free_slot() returned its top */
	s->head = c->head;
	s->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	s->written = 1;
	memset(&s->req, 0, sizeof(s->req));
	if (c->out_len < sizeof(h)) {
		finish(b, s, bad_request(b, VIRTIO_BLK_S_IOERR, "header shorter than 16 bytes"), 1);
		return;
	}
	if (chain[0].iov_len >= sizeof(h)) /* the usual case: a buffer of its own */
		memcpy(&h, chain[0].iov_base, sizeof(h));
	else
		iov_to_buf(chain, c->n_out, 0, &h, sizeof(h));
	switch (le32toh(h.type)) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		status = prepare_rw(b, s, c, chain, le64toh(h.sector),
				    le32toh(h.type) == VIRTIO_BLK_T_OUT);
		break;
	case VIRTIO_BLK_T_FLUSH:
		/* Offered with cache=writeback only: an unsafe drive has no durable flush to give,
		 * and does not answer OK as if it had. */
		if (!virtio_dev_has_feature(&b->vdev, VIRTIO_BLK_F_FLUSH)) {
			status = bad_request(b, VIRTIO_BLK_S_UNSUPP, "flush not negotiated");
			break;
		}
		b->stats.flush_reqs++;
		s->req.op = DISK_FLUSH;
		status = VIRTIO_BLK_S_OK;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t n = MIN(c->in_len - 1, (uint64_t)VIRTIO_BLK_ID_BYTES);

		b->stats.get_id_reqs++;
		iov_from_buf(chain + c->n_out, c->n_in, 0, b->serial, (size_t)n);
		finish(b, s, VIRTIO_BLK_S_OK, (uint32_t)n + 1);
		return;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = prepare_dwz(b, s, c, chain, le32toh(h.type) == VIRTIO_BLK_T_DISCARD);
		break;
	default:
		status = bad_request(b, VIRTIO_BLK_S_UNSUPP, "unknown request type");
		break;
	}
	if (status != VIRTIO_BLK_S_OK) {
		finish(b, s, status, 1);
		return;
	}
	disk_submit(&b->disk, &s->req);
}

/* The slot on top of the free stack (taken by start_request), or NULL when all are busy. */
static struct blk_slot *free_slot(struct virtio_blk *b)
{
	if (b->nr_busy >= BLK_SLOTS)
		return NULL;
	return &b->slots[b->free_slots[BLK_SLOTS - 1 - b->nr_busy]];
}

/* Take requests while slots are free. Returns 0 when the ring is empty (notifications
 * enabled again), 1 when every slot is busy, -1 when the device went NEEDS_RESET. */
static int take_requests(struct virtio_blk *b)
{
	struct virtq *vq = &b->vdev.queues[0].vq;
	struct vq_chain c;
	struct blk_slot *s;
	int ret;

	do {
		while ((s = free_slot(b))) {
			ret = vq_pop(vq, &c, b->chain, BLK_IOV_CAP);
			if (ret == 0)
				break;
			if (ret == -E2BIG) {
				/* More buffers than seg_max promised: no status byte to report an
				 * error in, so return the chain empty and stop the device. */
				b->stats.bad_requests++;
				vq_push(vq, c.head, 0);
				virtio_dev_needs_reset(
				    &b->vdev, "request with more than %u segments", BLK_SEG_MAX);
				return -1;
			}
			if (ret < 0) {
				virtio_dev_needs_reset(&b->vdev, "malformed request ring (%s)",
						       strerror(-ret));
				return -1;
			}
			if (c.in_len == 0) {
				b->stats.bad_requests++;
				vq_push(vq, c.head, 0);
				virtio_dev_needs_reset(&b->vdev,
						       "request without a writable status byte");
				return -1;
			}
			start_request(b, s, &c);
		}
		if (!s)
			return 1;
	} while (vq_enable_notify(vq));
	return 0;
}

/* Start what the ring holds, then interrupt. With every slot busy, the rest waits for a
 * completion; when the requests just started complete inside disk_commit (reads from the
 * page cache, taken without an eventfd signal), that is now: take the rest at once, as no
 * kick or signal will come for them. */
static void blk_process(struct virtio_blk *b)
{
	int ret;

	do {
		ret = take_requests(b);
		disk_commit(&b->disk);
	} while (ret > 0 && free_slot(b));
	virtio_queue_interrupt(&b->vdev, 0);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q) { blk_process(to_blk(d)); }

/* A reset that ran out of time (blk_reset) is done once the last request in flight is back
 * (lock held). */
void blk_reset_finish(struct virtio_blk *b)
{
	if (!b->vdev.reset_pending || b->disk.inflight)
		return;
	b->draining = false;
	log_info("%s: the requests in flight at the reset are back: reset done", b->vdev.id);
	virtio_dev_reset_done(&b->vdev);
}

/* The disk's eventfd: io_uring completions, zero passes (event-loop thread). */
void blk_completions(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;

	pthread_mutex_lock(&b->vdev.lock);
	virtio_dispatch_begin(&b->vdev); /* a ring's worth of requests at most, then a self-kick */
	disk_reap(&b->disk);
	blk_reset_finish(b);
	if (virtio_queue_ready(&b->vdev, 0))
		blk_process(b); /* slots were freed: continue, and interrupt */
	else
		virtio_queue_interrupt(&b->vdev, 0);
	virtio_dispatch_end(&b->vdev);
	pthread_mutex_unlock(&b->vdev.lock);
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_blk *b = to_blk(d);
	struct virtio_blk_config c = {
	    .capacity = htole64(b->capacity),
	    .seg_max = htole32(BLK_SEG_MAX),
	    .blk_size = htole32(SECTOR),
	    .num_queues = htole16(1),
	    .max_discard_sectors = htole32(BLK_MAX_DWZ_SECTORS),
	    .max_discard_seg = htole32(1),
	    .discard_sector_alignment = htole32(BLK_DISCARD_ALIGN),
	    .max_write_zeroes_sectors = htole32(BLK_MAX_DWZ_SECTORS),
	    .max_write_zeroes_seg = htole32(1),
	    .write_zeroes_may_unmap = 1,
	};

	memcpy(buf, (uint8_t *)&c + off, MIN(len, sizeof(c) - MIN(off, sizeof(c))));
}

static int blk_activate(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	/* Without FLUSH the driver assumes a write-through device: make every write durable. */
	b->disk.dsync =
	    !virtio_dev_has_feature(d, VIRTIO_BLK_F_FLUSH) && b->disk.cache == DISK_CACHE_WRITEBACK;
	return 0;
}

/* Stop all I/O (vCPU thread, lock held), within BLK_RESET_DRAIN_MS: a hung backing store must
 * neither hold the lock nor keep the vCPU thread from its stop signal for longer. Requests
 * still in the kernel then own guest buffers (a read lands in them when it completes), so
 * the reset stays in progress: the core shows NEEDS_RESET in the status instead of 0, and
 * the driver, which must see 0 before it reuses anything, waits. Their late completions come
 * through blk_completions, touch no ring (draining) and, with the last one, end the reset. A
 * driver that writes 0 again meanwhile waits for nothing. */
static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);
	int ret;

	b->draining = true;
	disk_cancel_zeroing(&b->disk); /* kiln's own work, which nobody waits for any more */
	ret = disk_drain(&b->disk, d->reset_pending ? 0 : BLK_RESET_DRAIN_MS);
	if (!ret) {
		b->draining = false;
		d->reset_pending = false;
		return;
	}
	if (!d->reset_pending)
		log_err(
		    "%s: reset: %u requests still in flight after %u ms%s%s: the reset completes "
		    "when they do",
		    d->id, b->disk.inflight, BLK_RESET_DRAIN_MS, ret == -ETIMEDOUT ? "" : ": ",
		    ret == -ETIMEDOUT ? "" : strerror(-ret));
	d->reset_pending = true;
}

static void blk_destroy(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	if (b->ev_registered)
		event_del(d->ev, b->disk.event_fd);
	b->draining = true;
	if (b->disk_open)
		disk_close(&b->disk);
	virtio_dev_cleanup(d);
	free(b);
}

/* Snapshot: no request in flight (the caller drains them first: disk_drain). */
static bool blk_quiesced(struct virtio_dev *d)
{
	const struct virtio_blk *b = to_blk(d);

	return !b->nr_busy && !b->disk.inflight && !b->draining;
}

/* Snapshot: the requests in flight complete (their used entries and interrupts go out as
 * usual); one that outlasts ms keeps the device busy and the snapshot is refused. */
static void blk_drain(struct virtio_dev *d, unsigned ms)
{
	struct virtio_blk *b = to_blk(d);

	if (!d->reset_pending && disk_drain(&b->disk, ms))
		log_info("%s: %u requests still in flight after %u ms", d->id, b->disk.inflight, ms);
}

const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .type = VIRTIO_ID_BLOCK,
    .pci_class = 0x018000, /* mass storage, other */
    .config_read = blk_config_read,
    .queue_notify = blk_queue_notify,
    .activate = blk_activate,
    .reset = blk_reset,
    .destroy = blk_destroy,
    .quiesced = blk_quiesced,
    .drain = blk_drain,
};

void virtio_blk_get_stats(struct virtio_dev *d, struct virtio_blk_stats *st)
{
	pthread_mutex_lock(&d->lock);
	*st = to_blk(d)->stats;
	pthread_mutex_unlock(&d->lock);
}

const char *virtio_blk_engine(const struct virtio_dev *d)
{
	return disk_engine_name(&((const struct virtio_blk *)d)->disk);
}

int virtio_blk_create(const struct virtio_env *env, const struct disk_config *cfg,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	uint64_t features = BIT_ULL(VIRTIO_BLK_F_SEG_MAX) | BIT_ULL(VIRTIO_BLK_F_BLK_SIZE) |
			    BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX);
	/* aligned_alloc: the slots are cache-line aligned; sizeof is a multiple of that. */
	struct virtio_blk *b = aligned_alloc(_Alignof(struct virtio_blk), sizeof(*b));
	const char *serial = cfg->serial[0] ? cfg->serial : cfg->id;
	int ret;

	if (!b) {
		snprintf(err, errlen, "disk '%s': out of memory", cfg->id);
		return -ENOMEM;
	}
	memset(b, 0, sizeof(*b));
	for (unsigned i = 0; i < BLK_SLOTS; i++)
		b->free_slots[i] = (uint8_t)(BLK_SLOTS - 1 - i); /* slot 0 on top */
	/* FLUSH tells the driver that the device has a volatile write cache. With cache=unsafe
	 * there is no durable flush to give, so the driver is told the cache is write-through
	 * (Linux then sends no flushes); as Firecracker does. */
	if (cfg->cache == DISK_CACHE_WRITEBACK)
		features |= BIT_ULL(VIRTIO_BLK_F_FLUSH);
	if (cfg->readonly)
		features |= BIT_ULL(VIRTIO_BLK_F_RO);
	else
		features |= BIT_ULL(VIRTIO_BLK_F_DISCARD) | BIT_ULL(VIRTIO_BLK_F_WRITE_ZEROES);
	ret = virtio_dev_init(&b->vdev, &blk_ops, cfg->id, env, features, 1, BLK_QUEUE_SIZE,
			      sizeof(struct virtio_blk_config));
	if (ret) {
		snprintf(err, errlen, "disk '%s': virtio set-up: %s", cfg->id, strerror(-ret));
		free(b);
		return ret;
	}
	b->engine = cfg->engine;
	ret = disk_open(&b->disk, cfg, err, errlen);
	if (ret)
		goto fail;
	b->disk_open = true;
	b->capacity = blk_image_sectors(cfg->id, cfg->path, b->disk.size);
	/* Zero padded (memset above), unterminated when all 20 bytes are used. */
	memcpy(b->serial, serial, strnlen(serial, sizeof(b->serial)));
	ret = blk_attach_disk(b, &b->disk, &b->ev_registered, err, errlen);
	if (ret)
		goto fail;
	log_info("disk '%s': %s, %llu sectors, %s%s, engine %s", cfg->id, cfg->path,
		 (unsigned long long)b->capacity, cfg->readonly ? "read-only" : "read-write",
		 cfg->cache == DISK_CACHE_UNSAFE ? ", cache=unsafe" : "",
		 disk_engine_name(&b->disk));
	*out = &b->vdev;
	return 0;

fail:
	blk_destroy(&b->vdev);
	return ret;
}
