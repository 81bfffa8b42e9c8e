/* test_event_pause.c: the event loop's paused state (what PATCH /vm Paused relies on): only
 * control handlers run, ready device fds neither run nor spin the loop, and device events
 * changed while paused apply on resume. No KVM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/event.h"

struct counter {
	int fd;
	int calls;
};

static void on_ready(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	uint64_t v;
	(void)events;
	c->calls++;
	if (read(c->fd, &v, sizeof(v)) != sizeof(v))
		fail_msg("eventfd read");
}

static void kick(int fd)
{
	uint64_t one = 1;
	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

struct pauser {
	struct event_loop *ev;
	int fd;
};

/* A control handler that pauses the loop, as the API's command handler does. */
static void on_pause(void *opaque, uint32_t events)
{
	struct pauser *p = opaque;
	uint64_t v;
	(void)events;
	assert_int_equal(read(p->fd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(event_loop_set_paused(p->ev, true), 0);
}

static void test_paused_loop_runs_control_only(void **state)
{
	struct event_loop ev;
	struct counter dev = {.fd = eventfd(0, EFD_NONBLOCK)};
	struct counter ctl = {.fd = eventfd(0, EFD_NONBLOCK)};
	(void)state;

	assert_int_equal(event_loop_init(&ev), 0);
	assert_int_equal(event_add(&ev, dev.fd, EPOLLIN, on_ready, &dev), 0);
	assert_int_equal(event_add_control(&ev, ctl.fd, EPOLLIN, on_ready, &ctl), 0);

	assert_int_equal(event_loop_set_paused(&ev, true), 0);
	kick(dev.fd);
	kick(ctl.fd);
	/* the device fd is ready but held: only the control handler runs, once */
	assert_int_equal(event_loop_run_once(&ev, 100), 1);
	assert_int_equal(ctl.calls, 1);
	assert_int_equal(dev.calls, 0);
	/* nothing spins: a held ready device fd does not wake the loop */
	assert_int_equal(event_loop_run_once(&ev, 50), 0);
	assert_int_equal(dev.calls, 0);

	/* a device's event change while paused is recorded, not applied */
	assert_int_equal(event_mod(&ev, dev.fd, 0), 0);
	assert_int_equal(event_mod(&ev, dev.fd, EPOLLIN), 0);
	assert_int_equal(event_loop_run_once(&ev, 50), 0);
	assert_int_equal(dev.calls, 0);

	/* resume: the held event runs */
	assert_int_equal(event_loop_set_paused(&ev, false), 0);
	assert_int_equal(event_loop_run_once(&ev, 100), 1);
	assert_int_equal(dev.calls, 1);

	/* a device paused by its owner (events 0) stays paused across a pause/resume */
	assert_int_equal(event_mod(&ev, dev.fd, 0), 0);
	assert_int_equal(event_loop_set_paused(&ev, true), 0);
	assert_int_equal(event_loop_set_paused(&ev, false), 0);
	kick(dev.fd);
	assert_int_equal(event_loop_run_once(&ev, 50), 0);
	assert_int_equal(dev.calls, 1);

	event_loop_destroy(&ev);
	close(dev.fd);
	close(ctl.fd);
}

static void test_pause_inside_a_batch(void **state)
{
	struct event_loop ev;
	struct counter dev = {.fd = eventfd(0, EFD_NONBLOCK)};
	struct pauser p = {.ev = &ev, .fd = eventfd(0, EFD_NONBLOCK)};
	(void)state;

	assert_int_equal(event_loop_init(&ev), 0);
	/* the control fd is added first, so it comes first in epoll's ready list */
	assert_int_equal(event_add_control(&ev, p.fd, EPOLLIN, on_pause, &p), 0);
	assert_int_equal(event_add(&ev, dev.fd, EPOLLIN, on_ready, &dev), 0);
	kick(p.fd);
	kick(dev.fd);
	/* both ready in one epoll_wait; the pause in the first handler holds the second */
	event_loop_run_once(&ev, 100);
	if (dev.calls == 0) {
		assert_true(ev.paused);
		assert_int_equal(event_loop_run_once(&ev, 50), 0);
		assert_int_equal(dev.calls, 0);
	}
	assert_int_equal(event_loop_set_paused(&ev, false), 0);
	event_loop_run_once(&ev, 100);
	assert_int_equal(dev.calls, 1);
	event_loop_destroy(&ev);
	close(dev.fd);
	close(p.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paused_loop_runs_control_only),
	    cmocka_unit_test(test_pause_inside_a_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
