/* block_image.c: the image under a virtio-blk device: capacity, event-loop hook-up, swaps. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "util/log.h"
#include "virtio/block.h"

/* Capacity in sectors of an image of `size` bytes (a partial last sector is not visible). */
uint64_t blk_image_sectors(const char *id, const char *path, uint64_t size)
{
	if (size % SECTOR)
		log_warn("disk '%s': %s: size %llu is not a multiple of 512; the last %llu bytes "
			 "are not visible",
			 id, path, (unsigned long long)size, (unsigned long long)(size % SECTOR));
	return size / SECTOR;
}

/* Hook an opened image up to the device: completions, and its eventfd in the event loop
 * (edge-triggered, see disk.h). Sets *watched. Returns 0 or -errno with a message. */
int blk_attach_disk(struct virtio_blk *b, struct disk *dk, bool *watched, char *err, size_t errlen)
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
	ret = blk_attach_disk(b, &next, &watched, err, errlen);
	if (ret) {
		disk_close(&next);
		return ret;
	}

	pthread_mutex_lock(&d->lock);
	/* Quiesce: what is in flight completes on the old image and goes back to the guest
	 * (used ring entries written now; while the VM is paused its interrupt waits in KVM).
	 * Nothing new starts meanwhile: this is the thread that processes the queue. */
	ret = disk_drain(&b->disk, BLK_SWAP_DRAIN_MS);
	blk_reset_finish(b);
	if (ret) {
		snprintf(err, errlen,
			 "disk '%s': %u requests to the current image still in flight after %u ms; "
			 "the drive keeps it",
			 d->id, b->disk.inflight, BLK_SWAP_DRAIN_MS);
		goto keep;
	}
	/* Writes the guest saw complete but has not flushed yet are made durable now: its next
	 * FLUSH goes to the new file. cache=unsafe promises nothing (FLUSH is not offered): the
	 * kernel writes the old file's pages back in its own time. */
	if (b->disk.cache == DISK_CACHE_WRITEBACK) {
		ret = disk_sync(&b->disk);
		if (ret) {
			snprintf(
			    err, errlen,
			    "disk '%s': fdatasync of the current image: %s; the drive keeps it "
			    "(its next flush fails)",
			    d->id, strerror(-ret));
			goto keep;
		}
	}
	next.dsync = b->disk.dsync; /* negotiated at activation */
	old = b->disk;
	old_watched = b->ev_registered;
	b->disk = next;
	b->ev_registered = watched;
	was = b->capacity;
	b->capacity = blk_image_sectors(d->id, path, next.size);
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

keep:
	pthread_mutex_unlock(&d->lock);
	if (watched)
		event_del(d->ev, next.event_fd);
	disk_close(&next);
	return ret;
}
