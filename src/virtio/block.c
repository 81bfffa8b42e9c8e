/* block.c: virtio-blk: request parsing and validation over a disk backend (sync or io_uring). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "backends/disk.h"
#include "util/log.h"
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

static struct virtio_blk *to_blk(struct virtio_dev *d) { return (struct virtio_blk *)d; }

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
static void blk_complete(void *opaque, struct disk_req *r)
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

/* io_uring completion eventfd (event-loop thread). */
static void blk_completions(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;

	pthread_mutex_lock(&b->vdev.lock);
	disk_reap(&b->disk);
	if (virtio_queue_ready(&b->vdev, 0))
		blk_process(b); /* slots were freed: continue, and interrupt */
	else
		virtio_queue_interrupt(&b->vdev, 0);
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

static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	b->draining = true;
	disk_drain(&b->disk);
	b->draining = false;
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

static const struct virtio_dev_ops blk_ops = {
    .name = "virtio-blk",
    .type = VIRTIO_ID_BLOCK,
    .pci_class = 0x018000, /* mass storage, other */
    .config_read = blk_config_read,
    .queue_notify = blk_queue_notify,
    .activate = blk_activate,
    .reset = blk_reset,
    .destroy = blk_destroy,
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

/* Capacity in sectors of an image of `size` bytes (a partial last sector is not visible). */
static uint64_t image_sectors(const char *id, const char *path, uint64_t size)
{
	if (size % SECTOR)
		log_warn("disk '%s': %s: size %llu is not a multiple of 512; the last %llu bytes "
			 "are not visible",
			 id, path, (unsigned long long)size, (unsigned long long)(size % SECTOR));
	return size / SECTOR;
}

/* Hook an opened image up to the device: completions, and its eventfd in the event loop
 * (edge-triggered, see disk.h). Sets *watched. Returns 0 or -errno with a message. */
static int attach_disk(struct virtio_blk *b, struct disk *dk, bool *watched, char *err,
		       size_t errlen)
{
	int ret;

	dk->complete = blk_complete;
	dk->opaque = b;
	*watched = false;
	if (dk->event_fd < 0 || !b->vdev.ev)
		return 0;
	ret = event_add(b->vdev.ev, dk->event_fd, EPOLLIN | EPOLLET, blk_completions, b);
	if (ret) {
		snprintf(err, errlen, "disk '%s': event loop: %s", b->vdev.id, strerror(-ret));
		return ret;
	}
	*watched = true;
	return 0;
}

/* Open path as the device's next image: locked as at boot, with the same read-only flag,
 * engine and cache mode. The file the device already uses (a resized image, say) cannot be
 * locked a second time: the new image then shares its open file, and so its lock. */
static int open_next_image(struct virtio_blk *b, const char *path, struct disk *dk, char *err,
			   size_t errlen)
{
	struct disk_config cfg = {.path = (char *)path,
				  .readonly = b->disk.readonly,
				  .engine = b->engine,
				  .cache = b->disk.cache};
	struct stat now, next;
	int fd, ret;

	if (fstat(b->disk.fd, &now) == 0 && stat(path, &next) == 0 && now.st_dev == next.st_dev &&
	    now.st_ino == next.st_ino) {
		fd = fcntl(b->disk.fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "disk '%s': %s: %s", b->vdev.id, path,
				 strerror(-ret));
			return ret;
		}
		return disk_open_fd(dk, fd, b->vdev.id, b->disk.readonly, b->engine, b->disk.cache,
				    err, errlen);
	}
	snprintf(cfg.id, sizeof(cfg.id), "%s", b->vdev.id);
	return disk_open(dk, &cfg, err, errlen);
}

int virtio_blk_set_path(struct virtio_dev *d, const char *path, char *err, size_t errlen)
{
	struct virtio_blk *b = to_blk(d);
	struct disk next, old;
	bool watched, old_watched;
	uint64_t was;
	int ret;

	if (d->ops != &blk_ops) {
		snprintf(err, errlen, "%s: not a block device", d->id);
		return -EINVAL;
	}
	ret = open_next_image(b, path, &next, err, errlen);
	if (ret)
		return ret;
	ret = attach_disk(b, &next, &watched, err, errlen);
	if (ret) {
		disk_close(&next);
		return ret;
	}

	pthread_mutex_lock(&d->lock);
	/* Quiesce: what is in flight completes on the old image and goes back to the guest
	 * (used ring entries written now; while the VM is paused its interrupt waits in KVM).
	 * Nothing new starts meanwhile: this is the thread that processes the queue. */
	disk_drain(&b->disk);
	next.dsync = b->disk.dsync; /* negotiated at activation */
	old = b->disk;
	old_watched = b->ev_registered;
	b->disk = next;
	b->ev_registered = watched;
	was = b->capacity;
	b->capacity = image_sectors(d->id, path, next.size);
	/* The driver re-reads the configuration (capacity) on a config change (4.1.4.5). */
	if (d->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_config_changed(d);
	else
		d->config_generation++;
	virtio_queue_interrupt(d, 0);
	/* Requests that waited for a free slot: through a kick, so that the event loop runs
	 * them when device handlers may run (not while the VM is paused). */
	if (virtio_queue_ready(d, 0))
		virtio_dev_kick(d, 0);
	pthread_mutex_unlock(&d->lock);

	if (old_watched)
		event_del(d->ev, old.event_fd);
	disk_close(&old);
	log_info("disk '%s': now %s, %llu sectors (was %llu), engine %s", d->id, path,
		 (unsigned long long)b->capacity, (unsigned long long)was,
		 disk_engine_name(&b->disk));
	return 0;
}

int virtio_blk_create(const struct virtio_env *env, const struct disk_config *cfg,
		      struct virtio_dev **out, char *err, size_t errlen)
{
	uint64_t features = BIT_ULL(VIRTIO_BLK_F_SEG_MAX) | BIT_ULL(VIRTIO_BLK_F_BLK_SIZE) |
			    BIT_ULL(VIRTIO_BLK_F_FLUSH) | BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) |
			    BIT_ULL(VIRTIO_RING_F_EVENT_IDX);
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
	b->capacity = image_sectors(cfg->id, cfg->path, b->disk.size);
	/* Zero padded (memset above), unterminated when all 20 bytes are used. */
	memcpy(b->serial, serial, strnlen(serial, sizeof(b->serial)));
	ret = attach_disk(b, &b->disk, &b->ev_registered, err, errlen);
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
