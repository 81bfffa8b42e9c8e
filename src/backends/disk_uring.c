/* disk_uring.c: the io_uring disk engine: READV/WRITEV/FSYNC/FALLOCATE, completions by eventfd. */
#include "backends/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

struct uring {
	struct io_uring ring;
	unsigned prepared; /* SQEs not yet handed to the kernel */
};

static struct uring *U(struct disk *d) { return d->engine; }

static void finish(struct disk *d, struct disk_req *r, int result)
{
	r->result = result;
	d->inflight--;
	d->complete(d->opaque, r);
}

/* Fill one SQE for what is left of r. Returns false when the ring cannot take it. */
static bool prep(struct disk *d, struct disk_req *r)
{
	struct uring *u = U(d);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	uint64_t off = r->offset + r->done;
	int mode;

	if (!sqe) {
		/* Full: flush what is prepared and try again once. */
		if (io_uring_submit(&u->ring) >= 0)
			u->prepared = 0;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return false;
	}
	switch (r->op) {
	case DISK_READ:
		io_uring_prep_readv(sqe, d->fd, r->iov, MIN(r->iovcnt, (unsigned)IOV_MAX), off);
		break;
	case DISK_WRITE:
		io_uring_prep_writev(sqe, d->fd, r->iov, MIN(r->iovcnt, (unsigned)IOV_MAX), off);
		if (d->dsync)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case DISK_FLUSH:
		io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
		break;
	default: /* DISCARD, WRITE_ZEROES(_UNMAP) */
		if (r->op == DISK_WRITE_ZEROES && !d->no_zero_range)
			mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
		else
			mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
		io_uring_prep_fallocate(sqe, d->fd, mode, (off_t)r->offset, (off_t)r->len);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
	u->prepared++;
	return true;
}

static void uring_submit(struct disk *d, struct disk_req *r)
{
	/* Fallocate-based requests with dsync need an fdatasync after them: run those inline,
	 * as is the rare case of a full ring. */
	if ((d->dsync && r->op >= DISK_DISCARD) || !prep(d, r)) {
		r->result = disk_execute(d, r);
		d->complete(d->opaque, r);
		return;
	}
	d->inflight++;
}

static void uring_commit(struct disk *d)
{
	struct uring *u = U(d);

	for (int tries = 0; u->prepared && tries < 8; tries++) {
		int n = io_uring_submit(&u->ring);

		if (n >= 0) {
			u->prepared = 0;
			return;
		}
		if (n != -EINTR && n != -EAGAIN && n != -EBUSY) {
			log_warn_ratelimited("disk '%s': io_uring_submit: %s", d->id, strerror(-n));
			return; /* left prepared: retried by the next commit */
		}
	}
}

/* One completion: finish r, or continue it after a short transfer or a fallback. */
static void handle(struct disk *d, struct disk_req *r, int res)
{
	if (res == -EINTR || res == -EAGAIN) {
		if (prep(d, r))
			return;
		res = disk_execute(d, r);
		finish(d, r, res);
		return;
	}
	switch (r->op) {
	case DISK_READ:
	case DISK_WRITE:
		if (res < 0) {
			finish(d, r, res);
			return;
		}
		if (res == 0) {
			finish(d, r, -EIO); /* no progress: end of file inside the image */
			return;
		}
		r->done += (uint64_t)res;
		disk_req_advance(r, (uint64_t)res);
		if (r->done >= r->len) {
			finish(d, r, 0);
			return;
		}
		if (!prep(d, r)) /* short transfer: continue where it stopped */
			finish(d, r, disk_execute(d, r));
		return;
	case DISK_FLUSH:
		finish(d, r, res < 0 ? res : 0);
		return;
	default:
		if (res == -EOPNOTSUPP) {
			/* The file system lacks this fallocate mode: the sync path knows the
			 * fallbacks (punch instead of zero range, then plain zero writes). */
			if (r->op == DISK_WRITE_ZEROES)
				d->no_zero_range = true;
			res = disk_execute(d, r);
		}
		finish(d, r, res < 0 ? res : 0);
		return;
	}
}

static void uring_reap(struct disk *d)
{
	struct uring *u = U(d);
	struct io_uring_cqe *cqe;
	uint64_t v;

	if (read(d->event_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn_ratelimited("disk '%s': completion eventfd: %s", d->id, strerror(errno));
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct disk_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&u->ring, cqe);
		if (r)
			handle(d, r, res);
	}
	uring_commit(d); /* continuations of short transfers */
}

static void uring_drain(struct disk *d)
{
	struct uring *u = U(d);
	struct io_uring_cqe *cqe;

	while (d->inflight) {
		uring_commit(d);
		int ret = io_uring_wait_cqe(&u->ring, &cqe);

		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			log_err("disk '%s': io_uring_wait_cqe: %s (%u requests lost)", d->id,
				strerror(-ret), d->inflight);
			return;
		}
		struct disk_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&u->ring, cqe);
		if (r)
			handle(d, r, res);
	}
	uring_commit(d);
}

static void uring_close(struct disk *d)
{
	struct uring *u = U(d);

	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	free(u);
	d->engine = NULL;
	if (d->event_fd >= 0)
		close(d->event_fd);
	d->event_fd = -1;
}

static const struct disk_engine_ops uring_ops = {
    .name = "io_uring",
    .submit = uring_submit,
    .commit = uring_commit,
    .reap = uring_reap,
    .drain = uring_drain,
    .close = uring_close,
};

int disk_uring_start(struct disk *d)
{
	struct uring *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	ret = io_uring_queue_init(DISK_QUEUE_DEPTH, &u->ring, 0);
	if (ret) {
		free(u);
		return ret;
	}
	d->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->event_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = io_uring_register_eventfd(&u->ring, d->event_fd);
	if (ret)
		goto fail;
	d->engine = u;
	d->ops = &uring_ops;
	return 0;

fail:
	io_uring_queue_exit(&u->ring);
	free(u);
	if (d->event_fd >= 0)
		close(d->event_fd);
	d->event_fd = -1;
	return ret;
}
