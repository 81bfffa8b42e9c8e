/* event.h: the epoll loop that owns host file descriptors (stdin, signals, stop eventfd). */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/compiler.h"

typedef void (*event_fn)(void *opaque, uint32_t events);

#define EVENT_LOOP_MAX_HANDLERS 128

/*
 * Two classes of handler. A device handler (event_add: queue kicks, I/O completions, TAP,
 * console input) may touch guest memory or device state; a control handler
 * (event_add_control: the stop eventfd, signals, the API's request queue, timers) never
 * does. While the loop is paused (the VM is paused) only control handlers run: device fds
 * are taken out of the epoll set (events 0) and put back with their latest events on
 * resume, so a ready device fd neither runs nor spins the loop.
 */
struct event_handler {
	int fd;
	event_fn fn;
	void *opaque;
	uint32_t events; /* what the handler asked for (applied unless paused) */
	bool control;
};

struct event_loop {
	int epfd;
	struct event_handler handlers[EVENT_LOOP_MAX_HANDLERS];
	pthread_mutex_t lock; /* handlers[]: event_mod runs on any thread */
	_Atomic bool paused;
};

int event_loop_init(struct event_loop *ev) __must_check;
void event_loop_destroy(struct event_loop *ev);
/* Watch fd for `events` (EPOLLIN...) with a device handler. Returns 0 or -errno. */
int event_add(struct event_loop *ev, int fd, uint32_t events, event_fn fn, void *opaque) __must_check;
/* The same for a control handler, which also runs while the loop is paused. */
int event_add_control(struct event_loop *ev, int fd, uint32_t events, event_fn fn,
		      void *opaque) __must_check;
/* Change the events of a watched fd (0 pauses it). Thread-safe. While the loop is paused a
 * device fd's new events are recorded and applied on resume. */
int event_mod(struct event_loop *ev, int fd, uint32_t events);
/* Pause (only control handlers run) or resume the loop. Thread-safe; returns 0 or the first
 * epoll_ctl error (-errno). */
int event_loop_set_paused(struct event_loop *ev, bool paused);
int event_del(struct event_loop *ev, int fd);
/* Wait up to timeout_ms (-1: forever) and dispatch. Returns handled count or -errno. */
int event_loop_run_once(struct event_loop *ev, int timeout_ms);
