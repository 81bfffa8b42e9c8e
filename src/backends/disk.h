/* disk.h: disk image backends: open and lock an image, run block requests (sync or io_uring).
 *
 * A request is submitted with disk_submit() and completes through d->complete, on the thread
 * that owns the disk (the event loop), exactly once: inside disk_submit() for the sync engine,
 * from disk_commit() (what finished inside the submit system call, such as reads from the page
 * cache), disk_reap() or disk_drain() for io_uring. The caller keeps the request (and the
 * buffers its iovec points to) alive until then. Short transfers are continued by the
 * backend; a request completes with result 0 only when every byte was transferred.
 *
 * Long work is cut into bounded passes: a WRITE_ZEROES that the file system cannot do with
 * fallocate is written as zeroes, at most DISK_ZERO_PASS_BYTES or DISK_ZERO_PASS_MS per pass
 * (whichever comes first), one pass per disk_reap(); the backend pokes d->event_fd to be
 * called again, with either engine. Waits are bounded too: disk_drain() takes a time limit.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config.h"
#include "util/compiler.h"

#define DISK_QUEUE_DEPTH 128		/* io_uring entries; also the most requests in flight */
#define DISK_ZERO_PASS_BYTES (4u << 20) /* zeroes written by one pass at most */
#define DISK_ZERO_PASS_MS 2		/* a pass stops at its next 1 MiB write after this */
#define DISK_CLOSE_DRAIN_MS 1000	/* disk_close waits this long for requests in flight */

enum disk_op {
	DISK_READ,
	DISK_WRITE,
	DISK_FLUSH,		 /* fdatasync (no-op with cache=unsafe or read-only) */
	DISK_DISCARD,		 /* punch a hole; unsupported by the host file system: no-op */
	DISK_WRITE_ZEROES,	 /* zero the range, keeping its allocation where possible */
	DISK_WRITE_ZEROES_UNMAP, /* zero the range, freeing its blocks (punch a hole) */
	/* Either WRITE_ZEROES on a file system with neither fallocate mode: zeroes written in
	 * bounded passes (see above). */
};

struct disk_req {
	uint64_t offset;   /* bytes from the start of the image */
	uint64_t len;	   /* bytes: the iovec total (READ/WRITE) or the range */
	struct iovec *iov; /* READ/WRITE buffers; advanced in place on short transfers */
	uint64_t done;	   /* bytes transferred so far (backend) */
	enum disk_op op;
	unsigned iovcnt;
	int result; /* at completion: 0 or -errno */
};

struct disk;

struct disk_engine_ops {
	const char *name; /* "sync", "io_uring" */
	void (*submit)(struct disk *d, struct disk_req *r);
	void (*commit)(struct disk *d); /* hand prepared requests to the kernel */
	void (*reap)(struct disk *d);	/* complete what has finished, without blocking */
	/* Wait up to ns for the engine's own requests in flight and complete what finished.
	 * Returns 0, -ETIME, -EINTR, or another -errno when waiting is impossible. */
	int (*wait)(struct disk *d, int64_t ns);
	void (*close)(struct disk *d); /* after disk_drain: stop the engine */
};

struct disk {
	const struct disk_engine_ops *ops;
	char id[VM_CONFIG_ID_MAX]; /* for messages */
	int fd;
	uint64_t size; /* bytes */
	bool readonly;
	bool dsync; /* every write is durable on completion (the guest did not take FLUSH) */
	enum disk_cache cache;
	bool no_zero_range; /* fallocate(ZERO_RANGE) is unsupported here: punch holes instead */
	bool no_punch;	    /* fallocate(PUNCH_HOLE) is unsupported here: write zeroes instead */
	int flush_err;	    /* a failed disk_sync(): the next FLUSH reports it */
	unsigned inflight;  /* submitted, not completed (nr_zeroing included) */
	/* Signalled when the disk wants disk_reap(): completions the io_uring kernel side posts,
	 * and the backend's own pokes (zero passes left; continuations). Poll it edge-triggered
	 * (EPOLLIN | EPOLLET) and call disk_reap() on each edge: nobody reads it, which saves a
	 * system call per wake-up. What completes inside disk_commit() (reads from the page
	 * cache) is taken there and signals nothing (disk_uring.c). */
	int event_fd;
	void (*complete)(void *opaque, struct disk_req *r);
	void *opaque;
	void *engine; /* engine state */
	/* WRITE_ZEROES being written as zeroes, oldest first (counted in inflight). */
	unsigned nr_zeroing;
	struct disk_req *zeroing[DISK_QUEUE_DEPTH];
};

/* Open cfg->path (O_RDONLY when read-only), take flock LOCK_EX (LOCK_SH when read-only)
 * without waiting, read its size and start the engine (io_uring by default; falls back to
 * sync with a log line when io_uring cannot be set up). complete/opaque are set by the caller
 * afterwards. On error: -errno and a one-line message naming the disk and the path. */
int disk_open(struct disk *d, const struct disk_config *cfg, char *err, size_t errlen) __must_check;
/* The path is opened with O_NONBLOCK and its type checked before anything can block on it: a
 * FIFO or another kind of file fails at once ("disk 'x': /p: not a regular file or block
 * device", -EMEDIUMTYPE). */
/* Same on an already open fd (taken over: closed by disk_close), without locking. */
int disk_open_fd(struct disk *d, int fd, const char *id, bool readonly, enum disk_engine engine,
		 enum disk_cache cache, char *err, size_t errlen) __must_check;
/* Drain (up to DISK_CLOSE_DRAIN_MS; what is still in flight then is abandoned, with a log
 * line, and never completes), stop the engine and close the file. Safe on a disk that failed
 * to open. */
void disk_close(struct disk *d);

void disk_submit(struct disk *d, struct disk_req *r);
/* Start what disk_submit() prepared (one system call for a batch); may complete requests. */
void disk_commit(struct disk *d);
/* Complete what finished, and run one bounded zero pass; never blocks for long. */
void disk_reap(struct disk *d);
/* Complete everything in flight, waiting at most timeout_ms (zero passes included). Returns
 * 0 when nothing is left in flight, -ETIMEDOUT when requests still are (they complete later,
 * through disk_reap), or another -errno when the engine cannot wait. */
int disk_drain(struct disk *d, unsigned timeout_ms) __must_check;
/* Complete the WRITE_ZEROES still waiting for zero passes with -ECANCELED (a device reset:
 * nobody waits for them; part of the range may be zeroed). */
void disk_cancel_zeroing(struct disk *d);
/* fdatasync the image now, on this thread (no-op when read-only). On failure the error is
 * also kept in flush_err and reported by the next FLUSH, since the kernel reports a write-back
 * error to one fdatasync only. Returns 0 or -errno. */
int disk_sync(struct disk *d) __must_check;
const char *disk_engine_name(const struct disk *d);

/* Engines. disk_uring_start returns 0 or -errno (io_uring unavailable: seccomp, ENOSYS);
 * d->event_fd is open before either is called. */
void disk_sync_start(struct disk *d);
int disk_uring_start(struct disk *d) __must_check;
/* Run one request to its end on the calling thread; returns 0 or -errno (does not call
 * complete), or -EINPROGRESS: a WRITE_ZEROES that must be written as zeroes did its first
 * pass and waits in d->zeroing for the next ones (disk_reap); it completes from there. The
 * sync engine, and io_uring's fallback for what the ring cannot do. */
int disk_execute(struct disk *d, struct disk_req *r) __must_check;
/* Complete r (engines): result, inflight, d->complete. */
void disk_req_done(struct disk *d, struct disk_req *r, int result);
/* Signal d->event_fd, so that the event loop calls disk_reap() again. */
void disk_poke(struct disk *d);
/* Drop n transferred bytes from the front of r's iovec (short transfer bookkeeping). */
void disk_req_advance(struct disk_req *r, uint64_t n);
