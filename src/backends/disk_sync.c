/* disk_sync.c: opening and locking disk images, and the synchronous engine (preadv/pwritev). */
#include "backends/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"

#define ZERO_CHUNK (64 * KiB)

static const uint8_t zero_chunk[ZERO_CHUNK];

void disk_req_advance(struct disk_req *r, uint64_t n)
{
	while (n && r->iovcnt) {
		if (n < r->iov->iov_len) {
			r->iov->iov_base = (uint8_t *)r->iov->iov_base + n;
			r->iov->iov_len -= n;
			return;
		}
		n -= r->iov->iov_len;
		r->iov++;
		r->iovcnt--;
	}
}

/* pwritev2 through the system call: musl 1.2.3 (the static build, docs/design.md) has no
 * wrapper. On x86-64 the offset goes whole in the low word. */
static ssize_t pwritev_flags(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return syscall(SYS_pwritev2, fd, iov, cnt, (long)off, 0L, flags);
}

/* Read or write all of r, continuing after short transfers. */
static int rw_all(struct disk *d, struct disk_req *r)
{
	while (r->done < r->len) {
		uint64_t off = r->offset + r->done;
		ssize_t n;

		if (!r->iovcnt)
			return -EIO; /* the iovec is shorter than len: a caller bug */
		if (r->op == DISK_READ)
			n = preadv(d->fd, r->iov, (int)MIN(r->iovcnt, (unsigned)IOV_MAX),
				   (off_t)off);
		else
			n = pwritev_flags(d->fd, r->iov, (int)MIN(r->iovcnt, (unsigned)IOV_MAX),
					  (off_t)off, d->dsync ? RWF_DSYNC : 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* end of file inside the image: it shrank under us */
		r->done += (uint64_t)n;
		disk_req_advance(r, (uint64_t)n);
	}
	return 0;
}

/* Zero [off, off+len) by writing zeroes (file systems without fallocate modes). */
static int write_zeroes(struct disk *d, uint64_t off, uint64_t len)
{
	while (len) {
		size_t k = (size_t)MIN(len, (uint64_t)ZERO_CHUNK);
		ssize_t n = pwrite(d->fd, zero_chunk, k, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int punch(struct disk *d, uint64_t off, uint64_t len)
{
	if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
		return -errno;
	return 0;
}

static int zero_range(struct disk *d, struct disk_req *r, bool unmap)
{
	int ret = -EOPNOTSUPP;

	if (!unmap && !d->no_zero_range) {
		if (!fallocate(d->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)r->offset,
			       (off_t)r->len))
			return 0;
		ret = -errno;
		if (ret == -EOPNOTSUPP)
			d->no_zero_range = true;
	}
	if (ret == -EOPNOTSUPP || unmap)
		ret = punch(d, r->offset, r->len);
	if (ret == -EOPNOTSUPP)
		ret = write_zeroes(d, r->offset, r->len);
	return ret;
}

int disk_execute(struct disk *d, struct disk_req *r)
{
	int ret = 0;

	switch (r->op) {
	case DISK_READ:
	case DISK_WRITE:
		return rw_all(d, r);
	case DISK_FLUSH:
		if (d->cache == DISK_CACHE_UNSAFE)
			return 0;
		return fdatasync(d->fd) ? -errno : 0;
	case DISK_DISCARD:
		ret = punch(d, r->offset, r->len);
		if (ret == -EOPNOTSUPP)
			ret = 0; /* a hint: the data may stay */
		break;
	case DISK_WRITE_ZEROES:
	case DISK_WRITE_ZEROES_UNMAP:
		ret = zero_range(d, r, r->op == DISK_WRITE_ZEROES_UNMAP);
		break;
	default:
		return -EINVAL;
	}
	if (!ret && d->dsync && fdatasync(d->fd))
		ret = -errno;
	return ret;
}

/* ---- the sync engine: every request runs to completion inside submit ------------------ */

static void sync_submit(struct disk *d, struct disk_req *r)
{
	r->result = disk_execute(d, r);
	d->complete(d->opaque, r);
}

static void sync_nop(struct disk *d) {}

static const struct disk_engine_ops sync_ops = {
    .name = "sync",
    .submit = sync_submit,
    .commit = sync_nop,
    .reap = sync_nop,
    .drain = sync_nop,
    .close = sync_nop,
};

void disk_sync_start(struct disk *d)
{
	d->ops = &sync_ops;
	d->event_fd = -1;
}

/* ---- common entry points ----------------------------------------------------------------- */

void disk_submit(struct disk *d, struct disk_req *r)
{
	r->done = 0;
	r->result = 0;
	if (d->readonly && r->op != DISK_READ && r->op != DISK_FLUSH) {
		r->result = -EROFS; /* the device checks this first; never reach the file */
		d->complete(d->opaque, r);
		return;
	}
	if ((r->op == DISK_FLUSH && (d->cache == DISK_CACHE_UNSAFE || d->readonly)) ||
	    ((r->op == DISK_READ || r->op == DISK_WRITE) && !r->len)) {
		d->complete(d->opaque, r);
		return;
	}
	d->ops->submit(d, r);
}

void disk_commit(struct disk *d) { d->ops->commit(d); }
void disk_reap(struct disk *d) { d->ops->reap(d); }
void disk_drain(struct disk *d) { d->ops->drain(d); }
const char *disk_engine_name(const struct disk *d) { return d->ops ? d->ops->name : "none"; }

static int disk_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
	return -EINVAL;
}

/* Take over fd: size, engine. Returns 0 or -errno (fd closed). */
static int start(struct disk *d, int fd, const char *id, bool readonly, enum disk_engine engine,
		 enum disk_cache cache)
{
	int ret;

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->fd = fd;
	d->event_fd = -1;
	d->readonly = readonly;
	d->cache = cache;
	ret = disk_size(fd, &d->size);
	if (ret) {
		close(fd);
		d->fd = -1;
		return ret;
	}
	if (engine != DISK_ENGINE_SYNC) {
		ret = disk_uring_start(d);
		if (!ret)
			return 0;
		if (engine == DISK_ENGINE_URING)
			log_warn("disk '%s': engine=uring: io_uring unavailable (%s), using sync",
				 id, strerror(-ret));
		else
			log_info("disk '%s': io_uring unavailable (%s), using sync", id,
				 strerror(-ret));
	}
	disk_sync_start(d);
	return 0;
}

static const char *open_error(int ret)
{
	return ret == -EINVAL ? "not a regular file or block device" : strerror(-ret);
}

int disk_open_fd(struct disk *d, int fd, const char *id, bool readonly, enum disk_engine engine,
		 enum disk_cache cache, char *err, size_t errlen)
{
	int ret = start(d, fd, id, readonly, engine, cache);

	if (ret)
		snprintf(err, errlen, "disk '%s': %s", id, open_error(ret));
	return ret;
}

int disk_open(struct disk *d, const struct disk_config *cfg, char *err, size_t errlen)
{
	int fd, ret;

	d->ops = NULL;
	d->fd = -1;
	fd = open(cfg->path, (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "disk '%s': %s: %s%s", cfg->id, cfg->path, strerror(errno),
			 (errno == EACCES || errno == EROFS) && !cfg->readonly
			     ? " (add readonly=on to use it read-only)"
			     : "");
		return ret;
	}
	if (flock(fd, (cfg->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB)) {
		ret = -errno;
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen,
				 "disk '%s': %s: locked by another process (is another VM using "
				 "it%s?)",
				 cfg->id, cfg->path, cfg->readonly ? " read-write" : "");
		else
			snprintf(err, errlen, "disk '%s': %s: flock: %s", cfg->id, cfg->path,
				 strerror(errno));
		close(fd);
		return ret;
	}
	ret = start(d, fd, cfg->id, cfg->readonly, cfg->engine, cfg->cache);
	if (ret)
		snprintf(err, errlen, "disk '%s': %s: %s", cfg->id, cfg->path, open_error(ret));
	return ret;
}

void disk_close(struct disk *d)
{
	if (d->ops) {
		d->ops->drain(d);
		d->ops->close(d);
	}
	d->ops = NULL;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}
