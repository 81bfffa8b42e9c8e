/* event.c: epoll dispatch for the event-loop thread. */
#include "vmm/event.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int event_loop_init(struct event_loop *ev)
{
	memset(ev, 0, sizeof(*ev));
	for (unsigned i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++)
		ev->handlers[i].fd = -1;
	pthread_mutex_init(&ev->lock, NULL);
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	return ev->epfd < 0 ? -errno : 0;
}

void event_loop_destroy(struct event_loop *ev)
{
	if (ev->epfd >= 0)
		close(ev->epfd);
	ev->epfd = -1;
}

/* Events to hand epoll for a handler: none for a device fd while the loop is paused. */
static uint32_t effective_events(const struct event_loop *ev, const struct event_handler *h)
{
	return ev->paused && !h->control ? 0 : h->events;
}

static int add_handler(struct event_loop *ev, int fd, uint32_t events, event_fn fn, void *opaque,
		       bool control)
{
	unsigned slot;
	int ret = 0;

	pthread_mutex_lock(&ev->lock);
	for (slot = 0; slot < EVENT_LOOP_MAX_HANDLERS; slot++)
		if (ev->handlers[slot].fd < 0)
			break;
	if (slot == EVENT_LOOP_MAX_HANDLERS) {
		ret = -ENOSPC;
		goto out;
	}
	struct event_handler h = {
		.fd = fd, .fn = fn, .opaque = opaque, .events = events, .control = control
	};
	struct epoll_event e = { .events = effective_events(ev, &h), .data.u32 = slot };
	if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		ret = -errno;
		goto out;
	}
	ev->handlers[slot] = h;
out:
	pthread_mutex_unlock(&ev->lock);
	return ret;
}

int event_add(struct event_loop *ev, int fd, uint32_t events, event_fn fn, void *opaque)
{
	return add_handler(ev, fd, events, fn, opaque, false);
}

int event_add_control(struct event_loop *ev, int fd, uint32_t events, event_fn fn, void *opaque)
{
	return add_handler(ev, fd, events, fn, opaque, true);
}

static int find_slot(struct event_loop *ev, int fd)
{
	for (unsigned i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++)
		if (ev->handlers[i].fd == fd)
			return (int)i;
	return -1;
}

int event_mod(struct event_loop *ev, int fd, uint32_t events)
{
	int ret = 0;

	pthread_mutex_lock(&ev->lock);
	int slot = find_slot(ev, fd);
	if (slot < 0) {
		ret = -ENOENT;
	} else {
		struct event_handler *h = &ev->handlers[slot];
		h->events = events;
		struct epoll_event e = { .events = effective_events(ev, h), .data.u32 = (uint32_t)slot };
		if (epoll_ctl(ev->epfd, EPOLL_CTL_MOD, fd, &e) < 0)
			ret = -errno;
	}
	pthread_mutex_unlock(&ev->lock);
	return ret;
}

int event_del(struct event_loop *ev, int fd)
{
	pthread_mutex_lock(&ev->lock);
	int slot = find_slot(ev, fd);
	if (slot >= 0) {
		epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL);
		ev->handlers[slot].fd = -1;
	}
	pthread_mutex_unlock(&ev->lock);
	return slot < 0 ? -ENOENT : 0;
}

int event_loop_set_paused(struct event_loop *ev, bool paused)
{
	int ret = 0;

	pthread_mutex_lock(&ev->lock);
	ev->paused = paused;
	for (unsigned i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++) {
		struct event_handler *h = &ev->handlers[i];
		if (h->fd < 0 || h->control)
			continue;
		struct epoll_event e = { .events = effective_events(ev, h), .data.u32 = i };
		if (epoll_ctl(ev->epfd, EPOLL_CTL_MOD, h->fd, &e) < 0 && ret == 0)
			ret = -errno;
	}
	pthread_mutex_unlock(&ev->lock);
	return ret;
}

int event_loop_run_once(struct event_loop *ev, int timeout_ms)
{
	struct epoll_event events[16];
	int n = epoll_wait(ev->epfd, events, 16, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint32_t slot = events[i].data.u32;
		if (slot >= EVENT_LOOP_MAX_HANDLERS || ev->handlers[slot].fd < 0)
			continue;
		struct event_handler *h = &ev->handlers[slot];
		/* A control handler earlier in this batch may have paused the loop. */
		if (ev->paused && !h->control)
			continue;
		h->fn(h->opaque, events[i].events);
	}
	return n;
}
