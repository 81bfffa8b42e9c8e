/* test_virtio_dev.c: virtio-rng and virtio-console on fake guest RAM: data paths, input
 * pause/resume. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_driver.h"
#include "util/log.h"
#include "vmm/event.h"

#define FEATURES (BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX))
#define RXQ 0
#define TXQ 1

struct fx {
	struct fake_driver f;
	struct event_loop ev;
	struct virtio_dev *d;
	int in[2], out[2]; /* console: host -> guest pipe, guest -> host pipe */
};

static int setup(void **state)
{
	struct fx *t = calloc(1, sizeof(*t));

	log_set_level(LOG_ERROR);
	signal(SIGPIPE, SIG_IGN); /* as kiln's main: a reader going away is EPIPE */
	if (!t || fd_init(&t->f) || event_loop_init(&t->ev) || pipe2(t->in, O_CLOEXEC) ||
	    pipe2(t->out, O_CLOEXEC | O_NONBLOCK))
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct fx *t = *state;

	virtio_dev_destroy(t->d);
	event_loop_destroy(&t->ev);
	fd_destroy(&t->f);
	for (int i = 0; i < 2; i++) {
		close(t->in[i]);
		close(t->out[i]);
	}
	free(t);
	return 0;
}

static void run_loop(struct fx *t)
{
	while (event_loop_run_once(&t->ev, 20) > 0)
		;
}

static uint16_t add_buf(struct fx *t, gpa_t gpa, uint32_t len, bool write)
{
	struct fd_buf b = {gpa, len, write};
	uint16_t head = fd_chain(&t->f, &b, 1);

	fd_submit(&t->f, head);
	return head;
}

/* ---- rng ------------------------------------------------------------------------------- */

static void test_rng(void **state)
{
	struct fx *t = *state;
	struct virtio_env env = {.mem = &t->f.mem, .ev = &t->ev};
	static const uint8_t zero[256];
	char err[128];
	uint32_t id = 0, len = 0;

	assert_int_equal(virtio_rng_create(&env, &t->d, err, sizeof(err)), 0);
	assert_int_equal(fd_start(&t->f, t->d, 0, 16, FEATURES) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	/* Two writable buffers in one chain, and a huge one: capped at 64 KiB. */
	gpa_t a = fd_alloc(&t->f, 256), b = fd_alloc(&t->f, 256), big = fd_alloc(&t->f, 1 << 20);
	memset(fd_hva(&t->f, a), 0, 256);
	memset(fd_hva(&t->f, b), 0, 256);
	struct fd_buf two[2] = {{a, 256, true}, {b, 256, true}};
	fd_submit(&t->f, fd_chain(&t->f, two, 2));
	add_buf(t, big, 1 << 20, true);
	/* A readable-only chain gets nothing written. */
	add_buf(t, a, 16, false);
	virtio_dev_kick(t->d, 0);
	run_loop(t);
	assert_true(fd_used(&t->f, &id, &len));
	assert_int_equal(len, 512);
	assert_memory_not_equal(fd_hva(&t->f, a), zero, 256);
	assert_memory_not_equal(fd_hva(&t->f, b), zero, 256);
	assert_true(fd_used(&t->f, &id, &len));
	assert_int_equal(len, 64 * 1024);
	assert_true(fd_used(&t->f, &id, &len));
	assert_int_equal(len, 0);
	assert_false(fd_used(&t->f, &id, &len));
	assert_true(t->f.queue_irqs >= 1);
	/* A buffer outside RAM breaks the ring: NEEDS_RESET, config interrupt. */
	add_buf(t, FD_RAM_SIZE - 8, 64, true);
	virtio_dev_kick(t->d, 0);
	run_loop(t);
	assert_true(t->d->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(t->f.config_irqs, 1);
}

/* ---- console ------------------------------------------------------------------------- */

static void make_console(struct fx *t, unsigned q)
{
	struct virtio_env env = {.mem = &t->f.mem, .ev = &t->ev};
	char err[128];

	assert_int_equal(virtio_console_create(&env, t->in[0], t->out[1], &t->d, err, sizeof(err)),
			 0);
	assert_int_equal(fd_start(&t->f, t->d, q, 16, FEATURES) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	run_loop(t);
}

static void test_console_output(void **state)
{
	struct fx *t = *state;
	char buf[64] = "";
	uint32_t id = 0, len = 0;

	make_console(t, TXQ);
	gpa_t a = fd_alloc(&t->f, 6), b = fd_alloc(&t->f, 7);
	memcpy(fd_hva(&t->f, a), "hello ", 6);
	memcpy(fd_hva(&t->f, b), "world\n", 6);
	struct fd_buf two[2] = {{a, 6, false}, {b, 6, false}};
	fd_submit(&t->f, fd_chain(&t->f, two, 2));
	virtio_dev_kick(t->d, TXQ);
	run_loop(t);
	assert_true(fd_used(&t->f, &id, &len));
	assert_int_equal(len, 0);
	assert_int_equal(read(t->out[0], buf, sizeof(buf)), 12);
	assert_string_equal(buf, "hello world\n");
	/* The reader went away: output is dropped, the guest keeps going. */
	close(t->out[0]);
	t->out[0] = -1;
	add_buf(t, a, 6, false);
	virtio_dev_kick(t->d, TXQ);
	run_loop(t);
	assert_true(fd_used(&t->f, &id, &len));
	assert_false(t->d->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* Input waits for receive buffers: the fd is not read while they are missing, and what was
 * read arrives in order once the guest adds some. */
static void test_console_input(void **state)
{
	struct fx *t = *state;
	static char msg[6000], got[6000];
	size_t have = 0;
	uint32_t id = 0, len = 0;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('a' + i % 26);
	assert_int_equal(write(t->in[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
	make_console(t, RXQ);
	/* No receive buffers yet: nothing delivered, and the loop does not spin on the fd. */
	assert_int_equal(event_loop_run_once(&t->ev, 20), 0);
	assert_false(fd_used(&t->f, &id, &len));

	gpa_t buf = fd_alloc(&t->f, 1000);
	while (have < sizeof(msg)) {
		add_buf(t, buf, 1000, true);
		virtio_dev_kick(t->d, RXQ);
		run_loop(t);
		assert_true(fd_used(&t->f, &id, &len));
		assert_true(len > 0 && len <= 1000 && have + len <= sizeof(msg));
		memcpy(got + have, fd_hva(&t->f, buf), len);
		have += len;
		assert_false(fd_used(&t->f, &id, &len)); /* one buffer, one completion */
	}
	assert_memory_equal(got, msg, sizeof(msg));
	/* End of input: buffers stay with the device, the loop goes quiet. */
	close(t->in[1]);
	t->in[1] = -1;
	add_buf(t, buf, 1000, true);
	virtio_dev_kick(t->d, RXQ);
	run_loop(t);
	assert_false(fd_used(&t->f, &id, &len));
	assert_int_equal(event_loop_run_once(&t->ev, 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rng, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_console_output, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_console_input, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
