/* disk_uring.c: the io_uring disk engine: READV/WRITEV/FSYNC/FALLOCATE, completions by eventfd. */
#include "backends/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

struct uring {
	struct io_uring ring;
	unsigned prepared; /* SQEs not yet handed to the kernel */
	unsigned busy;	   /* requests in the ring (prepared or in the kernel) */
	bool can_mute;	   /* the kernel has IORING_CQ_EVENTFD_DISABLED (cq.kflags mapped) */
};

static struct uring *U(struct disk *d) { return d->engine; }

static void finish(struct disk *d, struct disk_req *r, int result)
{
	U(d)->busy--;
	disk_req_done(d, r, result);
}

/* Run r on this thread instead (what the ring cannot do), or hand it to the zero passes. */
static void run_inline(struct disk *d, struct disk_req *r)
{
	int ret = disk_execute(d, r);

	if (ret != -EINPROGRESS)
		disk_req_done(d, r, ret);
}

/* Left out of the ring: fallocate-based requests that need an fdatasync after them (dsync),
 * and those whose fallocate mode the file system is known to lack (disk_execute knows the
 * fallbacks, down to bounded zero passes). */
static bool not_for_ring(const struct disk *d, const struct disk_req *r)
{
	if (r->op < DISK_DISCARD)
		return false;
	return d->dsync || (d->no_punch && (r->op != DISK_WRITE_ZEROES || d->no_zero_range));
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
		/* One buffer (the usual case): READ, which spares the kernel an iovec import. */
		if (r->iovcnt == 1)
			io_uring_prep_read(sqe, d->fd, r->iov->iov_base, (unsigned)r->iov->iov_len,
					   off);
		else
			io_uring_prep_readv(sqe, d->fd, r->iov, MIN(r->iovcnt, (unsigned)IOV_MAX),
					    off);
		break;
	case DISK_WRITE:
		if (r->iovcnt == 1)
			io_uring_prep_write(sqe, d->fd, r->iov->iov_base, (unsigned)r->iov->iov_len,
					    off);
		else
			io_uring_prep_writev(sqe, d->fd, r->iov, MIN(r->iovcnt, (unsigned)IOV_MAX),
					     off);
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
	/* Inline too: the rare case of a full ring. */
	if (not_for_ring(d, r) || !prep(d, r)) {
		run_inline(d, r);
		return;
	}
	U(d)->busy++;
}

/* One completion: finish r, or continue it after a short transfer or a fallback. */
static void handle(struct disk *d, struct disk_req *r, int res)
{
	if (res == -EINTR || res == -EAGAIN) {
		if (prep(d, r))
			return;
		U(d)->busy--;
		run_inline(d, r);
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
		if (r->done >= r->len) {
			finish(d, r, 0);
			return;
		}
		disk_req_advance(r, (uint64_t)res);
		if (prep(d, r)) /* short transfer: continue where it stopped */
			return;
		U(d)->busy--;
		run_inline(d, r);
		return;
	case DISK_FLUSH:
		if (res >= 0) { /* a write-back error a disk_sync() took from the kernel */
			res = d->flush_err;
			d->flush_err = 0;
		}
		finish(d, r, res);
		return;
	default:
		if (res == -EOPNOTSUPP) {
			/* The file system lacks this fallocate mode (the one prep chose): the sync
			 * path knows the fallbacks (punch instead of zero range, then zero passes).
			 */
			if (r->op == DISK_WRITE_ZEROES && !d->no_zero_range)
				d->no_zero_range = true;
			else
				d->no_punch = true;
			U(d)->busy--;
			run_inline(d, r);
			return;
		}
		finish(d, r, res < 0 ? res : 0);
		return;
	}
}

/* Complete every request the kernel has posted, without waiting or reading the eventfd.
 * Continuations (short transfers, retries) are prepared for the next submit. The CQEs are
 * copied out and released a batch at a time (one store to the CQ head per batch), then
 * handled. */
static void reap_cqes(struct disk *d)
{
	struct uring *u = U(d);
	struct {
		struct disk_req *r;
		int res;
	} done[32];

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		io_uring_for_each_cqe(&u->ring, head, cqe)
		{
			done[n].r = io_uring_cqe_get_data(cqe);
			done[n].res = cqe->res;
			if (++n == ARRAY_SIZE(done))
				break;
		}
		if (n == 0) {
			/* Empty: io_uring_peek_cqe also flushes CQEs the kernel kept back for
			 * want of room (never expected: the CQ has twice DISK_QUEUE_DEPTH). */
			if (io_uring_peek_cqe(&u->ring, &cqe) != 0)
				return;
			continue;
		}
		io_uring_cq_advance(&u->ring, n);
		for (unsigned i = 0; i < n; i++)
			if (done[i].r)
				handle(d, done[i].r, done[i].res);
	}
}

/* Hand what is prepared to the kernel, then complete what finished inside the submit call:
 * reads from the page cache (and writes into it) complete inline, and finishing them here
 * saves the event loop a wake-up and the guest a round trip. Submit failures are retried a
 * few times; continuations are submitted in the next round, up to a bound, after which the
 * eventfd is poked so that the event loop comes back for the rest.
 *
 * When nothing else is in flight, the completion eventfd is switched off for the call
 * (IORING_CQ_EVENTFD_DISABLED): what completes inline is taken here, and a signal for it
 * would only cost the kernel an eventfd wake-up and the event loop a wake-up that finds
 * nothing. Only requests of this commit can complete meanwhile. Afterwards the eventfd is
 * switched back on and the completion queue looked at again; if a request is still in
 * flight then, the eventfd is poked once: a completion posted by another thread (io-wq)
 * while the eventfd was off signalled nothing, and this wake-up makes sure it is seen. */
static void uring_commit(struct disk *d)
{
	struct uring *u = U(d);
	int fails = 0, rounds = 0;
	bool muted = false, poked = false;

	if (u->prepared && u->busy == u->prepared && u->can_mute) {
		io_uring_cq_eventfd_toggle(&u->ring, false);
		muted = true;
	}
	while (u->prepared) {
		int n = io_uring_submit(&u->ring);

		if (n >= 0) {
			u->prepared = 0;
			reap_cqes(d);
			if (u->prepared && ++rounds >= 16) {
				disk_poke(d);
				poked = true;
				break;
			}
			continue;
		}
		if ((n != -EINTR && n != -EAGAIN && n != -EBUSY) || ++fails >= 8) {
			log_warn_ratelimited("disk '%s': io_uring_submit: %s", d->id, strerror(-n));
			break; /* left prepared: retried by the next commit */
		}
	}
	if (!muted)
		return;
	io_uring_cq_eventfd_toggle(&u->ring, true);
	/* Full fence: the flag is cleared before the completion queue tail is read again. Pairs
	 * with the kernel's full barrier between publishing a CQE (cq.tail) and reading cq_flags
	 * to decide on the eventfd signal. Either it signals, or reap_cqes sees the CQE. */
	atomic_thread_fence(memory_order_seq_cst);
	reap_cqes(d);
	if (u->busy > u->prepared && !poked) /* some are in the kernel */
		disk_poke(d);
}

/* The eventfd is polled edge-triggered (disk.h): it is never read, every completion the
 * kernel posts is an edge. */
static void uring_reap(struct disk *d)
{
	reap_cqes(d);
	uring_commit(d); /* continuations of short transfers */
}

/* disk_drain's wait: up to ns for a completion (a signal ends it early: -EINTR), then take
 * what finished. Never waits without a limit. */
static int uring_wait(struct disk *d, int64_t ns)
{
	struct uring *u = U(d);
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
	int ret = 0;

	if (u->busy && ns > 0)
		ret = io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);
	reap_cqes(d);
	return ret;
}

/* Requests still in the kernel are abandoned: exiting the ring cancels what can be. */
static void uring_close(struct disk *d)
{
	struct uring *u = U(d);

	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	free(u);
	d->engine = NULL;
}

static const struct disk_engine_ops uring_ops = {
    .name = "io_uring",
    .submit = uring_submit,
    .commit = uring_commit,
    .reap = uring_reap,
    .wait = uring_wait,
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
	ret = io_uring_register_eventfd(&u->ring, d->event_fd);
	if (ret) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return ret;
	}
	u->can_mute = u->ring.cq.kflags != NULL;
	d->engine = u;
	d->ops = &uring_ops;
	return 0;
}
