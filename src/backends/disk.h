/* disk.h: disk image backends: open and lock an image, run block requests (sync or io_uring).
 *
 * A request is submitted with disk_submit() and completes through d->complete, on the thread
 * that owns the disk (the event loop), exactly once: inside disk_submit() for the sync engine,
 * from disk_commit() (what finished inside the submit system call, such as reads from the page
 * cache), disk_reap() or disk_drain() for io_uring. The caller keeps the request (and the
 * buffers its iovec points to) alive until then. Short transfers are continued by the
 * backend; a request completes with result 0 only when every byte was transferred.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "config.h"
#include "util/compiler.h"

#define DISK_QUEUE_DEPTH 128 /* io_uring entries; also the most requests in flight */

enum disk_op {
	DISK_READ,
	DISK_WRITE,
	DISK_FLUSH,		 /* fdatasync (no-op with cache=unsafe) */
	DISK_DISCARD,		 /* punch a hole; unsupported by the host file system: no-op */
	DISK_WRITE_ZEROES,	 /* zero the range, keeping its allocation where possible */
	DISK_WRITE_ZEROES_UNMAP, /* zero the range, freeing its blocks (punch a hole) */
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
	void (*drain)(struct disk *d);	/* complete everything in flight, blocking */
	void (*close)(struct disk *d);
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
	unsigned inflight;  /* submitted, not completed */
	/* io_uring: signalled for completions the kernel posts, else -1. Poll it
	 * edge-triggered (EPOLLIN | EPOLLET) and call disk_reap() on each edge: nobody reads it,
	 * which saves a system call per wake-up. What completes inside disk_commit() (reads from
	 * the page cache) is taken there and signals nothing (disk_uring.c). */
	int event_fd;
	void (*complete)(void *opaque, struct disk_req *r);
	void *opaque;
	void *engine; /* engine state */
};

/* Open cfg->path (O_RDONLY when read-only), take flock LOCK_EX (LOCK_SH when read-only)
 * without waiting, read its size and start the engine (io_uring by default; falls back to
 * sync with a log line when io_uring cannot be set up). complete/opaque are set by the caller
 * afterwards. On error: -errno and a one-line message naming the disk and the path. */
int disk_open(struct disk *d, const struct disk_config *cfg, char *err, size_t errlen) __must_check;
/* Same on an already open fd (taken over: closed by disk_close), without locking. */
int disk_open_fd(struct disk *d, int fd, const char *id, bool readonly, enum disk_engine engine,
		 enum disk_cache cache, char *err, size_t errlen) __must_check;
/* Drain, stop the engine and close the file. Safe on a disk that failed to open. */
void disk_close(struct disk *d);

void disk_submit(struct disk *d, struct disk_req *r);
/* Start what disk_submit() prepared (one system call for a batch); may complete requests. */
void disk_commit(struct disk *d);
void disk_reap(struct disk *d);
void disk_drain(struct disk *d);
const char *disk_engine_name(const struct disk *d);

/* Engines. disk_uring_start returns 0 or -errno (io_uring unavailable: seccomp, ENOSYS). */
void disk_sync_start(struct disk *d);
int disk_uring_start(struct disk *d) __must_check;
/* Run one request to its end on the calling thread; returns 0 or -errno (does not call
 * complete). The sync engine, and io_uring's fallback for what the ring cannot do. */
int disk_execute(struct disk *d, struct disk_req *r) __must_check;
/* Drop n transferred bytes from the front of r's iovec (short transfer bookkeeping). */
void disk_req_advance(struct disk_req *r, uint64_t n);
