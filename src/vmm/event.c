/* event.c: epoll dispatch for the event-loop thread. */
#include "vmm/event.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int event_loop_init(struct event_loop *ev)
{
	memset(ev, 0, sizeof(*ev));
	for (unsigned i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++)
		ev->handlers[i].fd = -1;
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	return ev->epfd < 0 ? -errno : 0;
}

void event_loop_destroy(struct event_loop *ev)
{
	if (ev->epfd >= 0)
		close(ev->epfd);
	ev->epfd = -1;
}

int event_add(struct event_loop *ev, int fd, uint32_t events, event_fn fn, void *opaque)
{
	unsigned slot;
	for (slot = 0; slot < EVENT_LOOP_MAX_HANDLERS; slot++)
		if (ev->handlers[slot].fd < 0)
			break;
	if (slot == EVENT_LOOP_MAX_HANDLERS)
		return -ENOSPC;
	struct epoll_event e = { .events = events, .data.u32 = slot };
	if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
		return -errno;
	ev->handlers[slot] = (struct event_handler){ .fd = fd, .fn = fn, .opaque = opaque };
	return 0;
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
	int slot = find_slot(ev, fd);
	if (slot < 0)
		return -ENOENT;
	struct epoll_event e = { .events = events, .data.u32 = (uint32_t)slot };
	return epoll_ctl(ev->epfd, EPOLL_CTL_MOD, fd, &e) < 0 ? -errno : 0;
}

int event_del(struct event_loop *ev, int fd)
{
	int slot = find_slot(ev, fd);
	if (slot < 0)
		return -ENOENT;
	epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL);
	ev->handlers[slot].fd = -1;
	return 0;
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
		h->fn(h->opaque, events[i].events);
	}
	return n;
}
