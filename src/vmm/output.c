/* output.c: guest output to a host fd: one non-blocking write, a bounded backlog that the event
 * loop flushes on EPOLLOUT, and drops counted when the reader is too slow. */
#include "vmm/output.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "util/log.h"
#include "util/clock.h"

/*
 * The ring, OUTPUT_RING_SIZE bytes; the backlog is len bytes from head, wrapping:
 *
 *     [....XXXXXXXX........]   head = 4, len = 8        [XXX.............XXXX]   wrapped
 *          ^head   ^tail                                    ^tail        ^head
 */
static size_t ring_tail(const struct output *o) { return (o->head + o->len) % OUTPUT_RING_SIZE; }

/* Append what fits of iov, past its first skip bytes. Returns the bytes taken. */
static size_t ring_put(struct output *o, const struct iovec *iov, unsigned n, size_t skip)
{
	size_t put = 0;

	for (unsigned i = 0; i < n && o->len < OUTPUT_RING_SIZE; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		if (skip >= left) {
			skip -= left;
			continue;
		}
		p += skip;
		left -= skip;
		skip = 0;
		while (left && o->len < OUTPUT_RING_SIZE) {
			size_t tail = ring_tail(o);
			size_t chunk =
			    MIN(left, MIN(OUTPUT_RING_SIZE - tail, OUTPUT_RING_SIZE - o->len));

			memcpy(o->ring + tail, p, chunk);
			o->len += chunk;
			p += chunk;
			left -= chunk;
			put += chunk;
		}
	}
	return put;
}

/* The backlog as one or two iovecs. */
static int ring_iov(struct output *o, struct iovec v[2])
{
	size_t first = MIN(o->len, OUTPUT_RING_SIZE - o->head);

	v[0] = (struct iovec){.iov_base = o->ring + o->head, .iov_len = first};
	v[1] = (struct iovec){.iov_base = o->ring, .iov_len = o->len - first};
	return o->len > first ? 2 : 1;
}

static void ring_consume(struct output *o, size_t n)
{
	o->head = (o->head + n) % OUTPUT_RING_SIZE;
	o->len -= n;
	if (!o->len)
		o->head = 0;
}

/* Ask for EPOLLOUT while there is a backlog, and only then (lock held). */
static void set_armed(struct output *o, bool on)
{
	if (!o->watched || o->armed == on)
		return;
	o->armed = on;
	event_mod(o->ev, o->w.fd, on ? EPOLLOUT : 0);
}

/* The reader is gone (err: why): drop the backlog and everything after it (lock held). */
static void fail(struct output *o, int err)
{
	o->broken = true;
	o->errors++;
	o->dropped += o->len;
	o->len = o->head = 0;
	if (o->watched) {
		/* A fd whose reader is gone polls as EPOLLERR forever, even with no events asked
		 * for: it must leave the loop. */
		event_del(o->ev, o->w.fd);
		o->watched = o->armed = false;
	}
	log_warn("%s: output: %s: the reader is gone; guest output is dropped from now on", o->name,
		 strerror(err));
}

/* Write the backlog until it is gone or the fd is full (lock held). Each round writes at
 * least one byte or stops, so this ends within OUTPUT_RING_SIZE rounds. */
static void flush_locked(struct output *o)
{
	while (o->len && !o->broken) {
		struct iovec v[2];
		int k = ring_iov(o, v);
		ssize_t w = outfd_writev(&o->w, v, k);

		if (w > 0) {
			o->bytes += (uint64_t)w;
			ring_consume(o, (size_t)w);
		} else if (w == 0 || w == -EAGAIN) {
			break;
		} else {
			fail(o, (int)-w);
		}
	}
}

/* EPOLLOUT, or EPOLLERR/EPOLLHUP (event-loop thread). */
static void output_ready(void *opaque, uint32_t events)
{
	struct output *o = opaque;

	pthread_mutex_lock(&o->lock);
	flush_locked(o);
	/* The reader went away while there was nothing to write. */
	if (!o->broken && !o->len && (events & (EPOLLERR | EPOLLHUP)))
		fail(o, EPIPE);
	if (!o->len)
		set_armed(o, false);
	pthread_mutex_unlock(&o->lock);
}

void output_writev(struct output *o, const struct iovec *iov, unsigned n)
{
	size_t total = 0, done = 0;

	if (!o->open || o->w.fd < 0)
		return; /* no output: discarded, not counted */
	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (!total)
		return;

	pthread_mutex_lock(&o->lock);
	/* With a backlog the bytes queue behind it: the fd is full until EPOLLOUT says not. */
	if (!o->broken && !o->len) {
		ssize_t w = outfd_writev(&o->w, iov, (int)MIN(n, (unsigned)IOV_MAX));

		if (w >= 0) {
			o->bytes += (uint64_t)w;
			done = (size_t)w;
		} else if (w != -EAGAIN) {
			fail(o, (int)-w);
		}
	}
	if (done < total) {
		size_t kept = o->broken ? 0 : ring_put(o, iov, n, done);
		size_t lost = total - done - kept;

		if (lost) {
			o->dropped += lost;
			if (!o->dropping && !o->broken)
				log_warn_ratelimited("%s: output: the reader is too slow; output "
						     "dropped (%llu bytes so far)",
						     o->name, (unsigned long long)o->dropped);
		}
		o->dropping = lost != 0;
		if (o->len)
			set_armed(o, true);
	} else {
		o->dropping = false;
	}
	pthread_mutex_unlock(&o->lock);
}

void output_write(struct output *o, const void *buf, size_t len)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = len};

	output_writev(o, &v, 1);
}

void output_drain(struct output *o, int timeout_ms)
{
	int64_t deadline = (int64_t)clock_ms() + timeout_ms;

	if (!o->open || o->w.fd < 0)
		return;
	pthread_mutex_lock(&o->lock);
	for (;;) {
		flush_locked(o);
		int64_t left = deadline - (int64_t)clock_ms();
		if (!o->len || o->broken || !o->w.pollable || left <= 0)
			break;
		struct pollfd p = {.fd = o->w.fd, .events = POLLOUT};

		pthread_mutex_unlock(&o->lock);
		poll(&p, 1, (int)left);
		pthread_mutex_lock(&o->lock);
	}
	o->dropped += o->len;
	o->len = o->head = 0;
	set_armed(o, false);
	pthread_mutex_unlock(&o->lock);
}

void output_get_stats(struct output *o, struct output_stats *st)
{
	*st = (struct output_stats){0};
	if (!o->open)
		return;
	pthread_mutex_lock(&o->lock);
	st->bytes = o->bytes;
	st->dropped = o->dropped;
	st->errors = o->errors;
	st->backlog = o->len;
	pthread_mutex_unlock(&o->lock);
}

int output_open(struct output *o, const char *name, int fd, struct event_loop *ev, char *err,
		size_t errlen)
{
	int ret;

	memset(o, 0, offsetof(struct output, ring));
	snprintf(o->name, sizeof(o->name), "%s", name);
	ret = outfd_open(&o->w, fd);
	if (ret) {
		snprintf(err, errlen, "%s: output fd %d: %s", name, fd, strerror(-ret));
		return ret;
	}
	pthread_mutex_init(&o->lock, NULL);
	o->ev = ev;
	if (ev && o->w.pollable) {
		ret = event_add_control(ev, o->w.fd, 0, output_ready, o);
		/* The same fd as another output (both on a non-blocking stdout): a dup of ours. */
		if (ret == -EEXIST && !(ret = outfd_dup(&o->w)))
			ret = event_add_control(ev, o->w.fd, 0, output_ready, o);
		/* A device epoll cannot watch (/dev/null, some character devices): its writes
		 * never wait for a reader; a backlog is flushed by the next write. */
		if (ret == -EPERM) {
			o->w.pollable = false;
			ret = 0;
		} else if (!ret) {
			o->watched = true;
		}
		if (ret) {
			snprintf(err, errlen, "%s: output: event loop: %s", name, strerror(-ret));
			pthread_mutex_destroy(&o->lock);
			outfd_close(&o->w);
			return ret;
		}
	}
	o->open = true;
	return 0;
}

void output_close(struct output *o)
{
	if (!o->open)
		return;
	if (o->watched)
		event_del(o->ev, o->w.fd);
	outfd_close(&o->w);
	pthread_mutex_destroy(&o->lock);
	o->open = o->watched = o->armed = false;
}
