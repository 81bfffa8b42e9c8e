/* outfd.h: write to an inherited fd (stdout, stderr, an output file) without ever sleeping. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util/compiler.h"

/*
 * kiln's stdout and stderr are usually shared with other processes: the shell's terminal, a
 * pipe. Their O_NONBLOCK flag lives in that shared open file description, so setting it would
 * change the terminal or pipe for the shell too (and leave it so if kiln is killed). Instead
 * outfd_open() gets its own writer, per kind of file:
 *
 *   FIFO, pipe, terminal, other      a private open of /proc/self/fd/N (O_WRONLY | O_NONBLOCK
 *   character device                 | O_NOCTTY): a new description of the same pipe or
 *                                    device, non-blocking for kiln alone
 *   socket                           the fd; every write is send(MSG_DONTWAIT | MSG_NOSIGNAL)
 *   regular file, block device       the fd; O_NONBLOCK means nothing there, and such a write
 *                                    waits for the page cache at most, never for a reader
 *
 * Only when the private open fails (no /proc, a pipe of another user, a FIFO whose reader is
 * gone) does it set O_NONBLOCK on the shared description, and then puts the old flags back
 * at outfd_close(), at exit (atexit) and on a fatal signal (a handler that restores, then
 * hands the signal on to the handler it replaced). SIGKILL alone leaves them changed.
 */
struct outfd {
	bool open;	  /* outfd_open() ran: a zeroed struct holds nothing to close */
	int fd;		  /* written to; -1: nothing */
	bool own;	  /* fd is our private open or dup (outfd_close closes it) */
	bool sock;	  /* send() instead of writev() */
	bool pollable;	  /* epoll can watch fd for EPOLLOUT */
	int shared_fd;	  /* the fallback: the fd whose shared flags we changed, else -1 */
	int shared_flags; /* its flags before */
};

/* Make o a non-blocking writer for fd, which stays the caller's and must stay open while o
 * is. A fd that is non-blocking already (kiln's own opens, util/file.h) is written as it is.
 * fd < 0 gives a writer of nothing (o->fd == -1). Returns 0 or -errno. */
int outfd_open(struct outfd *o, int fd) __must_check;
/* Write through a dup of o's fd from now on (two writers on one fd number cannot both be in
 * one epoll set). Returns 0 or -errno. */
int outfd_dup(struct outfd *o) __must_check;
/* One writev()/sendmsg() that never sleeps for a reader: the bytes written (maybe fewer than
 * asked), or -EAGAIN (full: try again when fd is writable), or another -errno (EPIPE,
 * EIO...: the reader is gone). */
ssize_t outfd_writev(const struct outfd *o, const struct iovec *iov, int n);
/* Close our fd; the fallback's shared flags go back. o may be zeroed or already closed. */
void outfd_close(struct outfd *o);
/* Put back every shared description's flags the fallback changed. Async-signal-safe. */
void outfd_restore_shared(void);
