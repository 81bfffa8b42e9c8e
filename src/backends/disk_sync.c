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
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"
#include "util/clock.h"

#define ZERO_CHUNK (64 * KiB)
#define ZERO_WRITE (1 * MiB) /* one pwritev of zeroes: ZERO_WRITE / ZERO_CHUNK iovecs */
#define DISK_KINDS (FILE_KIND_REG | FILE_KIND_BLK)

/* Not const: in .bss it takes no page of the binary and no memory (reads of it map the zero
 * page), where 64 KiB of .rodata sat between read-only data every start touches, and the
 * kernel maps such pages in around each touched one (docs/design.md, "One static binary").
 * Only pwritev reads it. */
static uint8_t zero_chunk[ZERO_CHUNK];

void disk_poke(struct disk *d)
{
	uint64_t one = 1;

	if (write(d->event_fd, &one, sizeof(one)) < 0)
		log_warn_ratelimited("disk '%s': eventfd: %s", d->id, strerror(errno));
}

void disk_req_done(struct disk *d, struct disk_req *r, int result)
{
	r->result = result;
	d->inflight--;
	d->complete(d->opaque, r);
}

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

/* One pass of zero writes over what is left of r's range (r->done counts what is written):
 * at most DISK_ZERO_PASS_BYTES, and no new write once DISK_ZERO_PASS_MS have passed. Returns
 * 0 when the range is done, -EINPROGRESS when some is left, or -errno. */
static int zero_pass(struct disk *d, struct disk_req *r)
{
	struct iovec iov[ZERO_WRITE / ZERO_CHUNK];
	uint64_t budget = DISK_ZERO_PASS_BYTES;
	int64_t until = clock_ns() + DISK_ZERO_PASS_MS * 1000000LL;

	for (unsigned i = 0; i < ARRAY_SIZE(iov); i++)
		iov[i] = (struct iovec){(void *)zero_chunk, ZERO_CHUNK};
	while (r->done < r->len && budget) {
		uint64_t k = MIN(MIN(r->len - r->done, (uint64_t)ZERO_WRITE), budget);
		int cnt = (int)((k + ZERO_CHUNK - 1) / ZERO_CHUNK);
		ssize_t n;

		iov[cnt - 1].iov_len = (size_t)(k - (uint64_t)(cnt - 1) * ZERO_CHUNK);
		n = pwritev(d->fd, iov, cnt, (off_t)(r->offset + r->done));
		iov[cnt - 1].iov_len = ZERO_CHUNK;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		r->done += (uint64_t)n;
		budget -= (uint64_t)n;
		if (clock_ns() >= until)
			break;
	}
	return r->done < r->len ? -EINPROGRESS : 0;
}

/* fallocate r's range, or learn that the file system lacks the mode. */
static int falloc(struct disk *d, struct disk_req *r, int mode)
{
	if (fallocate(d->fd, mode, (off_t)r->offset, (off_t)r->len))
		return -errno;
	return 0;
}

static int punch(struct disk *d, struct disk_req *r)
{
	int ret =
	    d->no_punch ? -EOPNOTSUPP : falloc(d, r, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);

	if (ret == -EOPNOTSUPP)
		d->no_punch = true;
	return ret;
}

/* WRITE_ZEROES: zero range, else punch a hole, else write zeroes: a first pass here, the
 * rest queued for disk_reap (-EINPROGRESS). */
static int zero_range(struct disk *d, struct disk_req *r, bool unmap)
{
	int ret = -EOPNOTSUPP;

	if (!unmap && !d->no_zero_range) {
		ret = falloc(d, r, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
		if (ret == -EOPNOTSUPP)
			d->no_zero_range = true;
	}
	if (ret == -EOPNOTSUPP)
		ret = punch(d, r);
	if (ret != -EOPNOTSUPP)
		return ret;
	r->done = 0;
	ret = zero_pass(d, r);
	if (ret != -EINPROGRESS)
		return ret;
	if (d->nr_zeroing >= ARRAY_SIZE(d->zeroing))
		return -EAGAIN; /* more requests than DISK_QUEUE_DEPTH: a caller bug */
	d->zeroing[d->nr_zeroing++] = r;
	disk_poke(d);
	return -EINPROGRESS;
}

/* Complete the oldest zeroing request (the first of the queue), with the final sync. */
static void zeroing_done(struct disk *d, int ret)
{
	struct disk_req *r = d->zeroing[0];

	d->nr_zeroing--;
	memmove(&d->zeroing[0], &d->zeroing[1], d->nr_zeroing * sizeof(d->zeroing[0]));
	if (!ret && d->dsync && fdatasync(d->fd))
		ret = -errno;
	disk_req_done(d, r, ret);
}

/* One zero pass for the oldest request waiting for one; poke for the next pass. */
static void zero_step(struct disk *d)
{
	int ret;

	if (!d->nr_zeroing)
		return;
	ret = zero_pass(d, d->zeroing[0]);
	if (ret != -EINPROGRESS)
		zeroing_done(d, ret);
	if (d->nr_zeroing)
		disk_poke(d);
}

void disk_cancel_zeroing(struct disk *d)
{
	while (d->nr_zeroing)
		zeroing_done(d, -ECANCELED);
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
		if (fdatasync(d->fd))
			return -errno;
		ret = d->flush_err;
		d->flush_err = 0;
		return ret;
	case DISK_DISCARD:
		ret = punch(d, r);
		if (ret == -EOPNOTSUPP)
			ret = 0; /* a hint: the data may stay */
		break;
	case DISK_WRITE_ZEROES:
	case DISK_WRITE_ZEROES_UNMAP:
		ret = zero_range(d, r, r->op == DISK_WRITE_ZEROES_UNMAP);
		if (ret == -EINPROGRESS)
			return ret; /* synced when the last pass is done (zeroing_done) */
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
	int ret = disk_execute(d, r);

	if (ret != -EINPROGRESS)
		disk_req_done(d, r, ret);
}

static void sync_nop(struct disk *d) {}

/* Nothing of the engine's own is ever in flight. */
static int sync_wait(struct disk *d, int64_t ns) { return 0; }

static const struct disk_engine_ops sync_ops = {
    .name = "sync",
    .submit = sync_submit,
    .commit = sync_nop,
    .reap = sync_nop,
    .wait = sync_wait,
    .close = sync_nop,
};

void disk_sync_start(struct disk *d) { d->ops = &sync_ops; }

/* ---- common entry points ----------------------------------------------------------------- */

void disk_submit(struct disk *d, struct disk_req *r)
{
	r->done = 0;
	r->result = 0;
	d->inflight++;
	if (d->readonly && r->op != DISK_READ && r->op != DISK_FLUSH) {
		/* the device checks this first; never reach the file */
		disk_req_done(d, r, -EROFS);
		return;
	}
	if ((r->op == DISK_FLUSH && (d->cache == DISK_CACHE_UNSAFE || d->readonly)) ||
	    ((r->op == DISK_READ || r->op == DISK_WRITE) && !r->len)) {
		disk_req_done(d, r, 0);
		return;
	}
	d->ops->submit(d, r);
}

void disk_commit(struct disk *d) { d->ops->commit(d); }

void disk_reap(struct disk *d)
{
	d->ops->reap(d);
	zero_step(d);
}

int disk_drain(struct disk *d, unsigned timeout_ms)
{
	int64_t deadline = clock_ns() + (int64_t)timeout_ms * 1000000;

	for (;;) {
		int64_t left = deadline - clock_ns();
		int ret = 0;

		d->ops->commit(d); /* may complete everything inline */
		zero_step(d);
		/* With zero passes waiting, only look; else sleep until a completion or the limit.
		 * A signal (the vCPU kick) ends the wait early; the loop goes on to the limit. */
		if (d->inflight > d->nr_zeroing)
			ret = d->ops->wait(d, d->nr_zeroing || left < 0 ? 0 : left);
		if (!d->inflight)
			return 0;
		if (ret && ret != -ETIME && ret != -EINTR) {
			log_err("disk '%s': waiting for %u requests: %s", d->id, d->inflight,
				strerror(-ret));
			return ret;
		}
		if (left <= 0)
			return -ETIMEDOUT;
	}
}

int disk_sync(struct disk *d)
{
	int ret;

	if (d->readonly)
		return 0;
	ret = fdatasync(d->fd) ? -errno : 0;
	if (ret)
		d->flush_err = ret;
	return ret;
}

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

/* Take over fd: size, eventfd, engine. Returns 0 or -errno (fd closed). */
static int start(struct disk *d, int fd, const char *id, bool readonly, enum disk_engine engine,
		 enum disk_cache cache)
{
	int ret;

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->fd = fd;
	d->readonly = readonly;
	d->cache = cache;
	ret = disk_size(fd, &d->size);
	d->event_fd = ret ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!ret && d->event_fd < 0)
		ret = -errno;
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

static const char *open_error(int ret, char *buf, size_t len)
{
	if (ret != -EINVAL && ret != -EMEDIUMTYPE)
		return strerror(-ret);
	snprintf(buf, len, "not %s", file_kinds_name(DISK_KINDS));
	return buf;
}

int disk_open_fd(struct disk *d, int fd, const char *id, bool readonly, enum disk_engine engine,
		 enum disk_cache cache, char *err, size_t errlen)
{
	int ret = start(d, fd, id, readonly, engine, cache);
	char why[64];

	if (ret)
		snprintf(err, errlen, "disk '%s': %s", id, open_error(ret, why, sizeof(why)));
	return ret;
}

int disk_open(struct disk *d, const struct disk_config *cfg, char *err, size_t errlen)
{
	char why[64];
	int fd, ret;

	d->ops = NULL;
	d->fd = -1;
	d->event_fd = -1;
	/* Without blocking: a FIFO in the image's place would stall the open (read-only) or the
	 * first request, and the API or the boot with it. */
	fd = file_open(cfg->path, cfg->readonly ? O_RDONLY : O_RDWR, 0, DISK_KINDS);
	if (fd < 0) {
		ret = fd;
		snprintf(err, errlen, "disk '%s': %s: %s%s", cfg->id, cfg->path,
			 open_error(ret, why, sizeof(why)),
			 (ret == -EACCES || ret == -EROFS) && !cfg->readonly
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
		snprintf(err, errlen, "disk '%s': %s: %s", cfg->id, cfg->path,
			 open_error(ret, why, sizeof(why)));
	return ret;
}

void disk_close(struct disk *d)
{
	if (d->ops) {
		disk_cancel_zeroing(d);
		if (disk_drain(d, DISK_CLOSE_DRAIN_MS))
			log_err(
			    "disk '%s': %u requests still in flight after %u ms: abandoned (they "
			    "never complete)",
			    d->id, d->inflight, DISK_CLOSE_DRAIN_MS);
		d->ops->close(d);
	}
	d->ops = NULL;
	if (d->event_fd >= 0)
		close(d->event_fd);
	d->event_fd = -1;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}
