/* event.h: the epoll loop that owns host file descriptors (stdin, signals, stop eventfd). */
#pragma once

#include <stdint.h>

#include "util/compiler.h"

typedef void (*event_fn)(void *opaque, uint32_t events);

#define EVENT_LOOP_MAX_HANDLERS 64

struct event_handler {
	int fd;
	event_fn fn;
	void *opaque;
};

struct event_loop {
	int epfd;
	struct event_handler handlers[EVENT_LOOP_MAX_HANDLERS];
};

int event_loop_init(struct event_loop *ev) __must_check;
void event_loop_destroy(struct event_loop *ev);
/* Watch fd for `events` (EPOLLIN...). Returns 0 or -errno. */
int event_add(struct event_loop *ev, int fd, uint32_t events, event_fn fn, void *opaque) __must_check;
/* Change the events of a watched fd (0 pauses it). Thread-safe (epoll_ctl). */
int event_mod(struct event_loop *ev, int fd, uint32_t events);
int event_del(struct event_loop *ev, int fd);
/* Wait up to timeout_ms (-1: forever) and dispatch. Returns handled count or -errno. */
int event_loop_run_once(struct event_loop *ev, int timeout_ms);
