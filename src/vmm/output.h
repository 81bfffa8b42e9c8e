/* output.h: the sink for guest output (UART, hvc0): never blocks a vCPU or the event loop. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/compiler.h"
#include "util/outfd.h"
#include "vmm/event.h"

/* The backlog kept for a reader that is behind, per output, on top of what the pipe or
 * terminal itself holds (64 KiB for a pipe). */
#define OUTPUT_RING_SIZE 4096

/*
 * Guest output goes to the host fd at once, with one non-blocking write (util/outfd.h: stdout
 * stays blocking for everyone else). What the fd does not take waits in a bounded ring, and the
 * fd is watched for EPOLLOUT; the event loop writes the backlog when the reader has made room.
 * While there is a backlog, new output only joins the ring (no system call, no spinning on a
 * full fd): bytes keep their order. What does not fit in the ring is dropped and counted. A
 * write that fails for good (the reader is gone: EPIPE, EIO, or EPOLLERR/EPOLLHUP) ends the
 * output: from then on everything is dropped and counted, and the fd leaves the event loop.
 *
 * Threads: output_write[v]() on any thread (a vCPU under the UART lock, the event loop under
 * a device lock); the flush on the event-loop thread. The ring's lock is held for a memcpy and
 * at most one non-blocking write, never across a wait.
 */
struct output {
	bool open; /* output_open() ran (a zeroed struct is closed) */
	pthread_mutex_t lock;
	char name[16]; /* "serial", "console": for log lines */
	struct outfd w;
	struct event_loop *ev;
	bool watched;	  /* w.fd is in ev (events 0, or EPOLLOUT while armed) */
	bool armed;	  /* EPOLLOUT asked for: there is a backlog */
	bool broken;	  /* the reader is gone: everything is dropped */
	bool dropping;	  /* the last byte offered was dropped (one log line per episode) */
	size_t head, len; /* the backlog: ring[head..], len bytes, wrapping */
	uint64_t bytes, dropped, errors;
	uint8_t ring[OUTPUT_RING_SIZE];
};

struct output_stats {
	uint64_t bytes;	  /* written to the fd */
	uint64_t dropped; /* never will be: the ring was full, the reader was gone, or kiln
			   * stopped before the backlog could go */
	uint64_t errors;  /* writes that failed for good (0 or 1: the output ends there) */
	uint64_t backlog; /* in the ring now */
};

/* Set o up to write to fd (which stays the caller's: o writes through a fd of its own), or to
 * nothing when fd < 0. With ev, the fd is watched from ev's thread as a control handler (the
 * backlog drains while the VM is paused too); without ev (tests), only output_drain() writes a
 * backlog. Returns 0 or -errno with a one-line message in err. */
int output_open(struct output *o, const char *name, int fd, struct event_loop *ev, char *err,
		size_t errlen) __must_check;
/* Write, or keep, or drop and count: returns at once. */
void output_write(struct output *o, const void *buf, size_t len);
void output_writev(struct output *o, const struct iovec *iov, unsigned n);
/* Before kiln stops: write the backlog, waiting up to timeout_ms for the reader (poll), and
 * count what is left as dropped. */
void output_drain(struct output *o, int timeout_ms);
void output_get_stats(struct output *o, struct output_stats *st);
/* Leave the event loop, close o's fd. o may be zeroed or already closed. */
void output_close(struct output *o);
