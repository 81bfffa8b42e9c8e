/* test_net_drain.c: virtio-net's snapshot drain over a SOCK_SEQPACKET socketpair backend: a
 * transmit frame that waits for the backend, receive chains held in the stash, the link going
 * down, and a restore from the drained state. The data path is in test_net.c. */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "net_fixture.h"
#include "snapshot/state.h"
#include "util/clock.h"

#define DRAIN_FRAMES 64
#define DRAIN_LEN 1500

static bool quiesced(void)
{
	bool q;

	pthread_mutex_lock(&fx.d->lock);
	q = virtio_dev_quiesced(fx.d);
	pthread_mutex_unlock(&fx.d->lock);
	return q;
}

/* What snapshot.c's drain_devices does for the device. */
static void drain(unsigned ms)
{
	pthread_mutex_lock(&fx.d->lock);
	assert_non_null(fx.d->ops->drain);
	fx.d->ops->drain(fx.d, ms);
	pthread_mutex_unlock(&fx.d->lock);
}

static uint16_t used_idx(unsigned q)
{
	return __atomic_load_n(&((struct vring_used *)fd_hva(&fx.v.f, fx.v.q[q].used))->idx,
			       __ATOMIC_ACQUIRE);
}

/* Chains taken by the device and not returned (on the device's own books). */
static unsigned in_flight(unsigned q)
{
	const struct virtq *vq = &fx.d->queues[q].vq;

	return (uint16_t)(vq->last_avail - vq->used_idx);
}

static double thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The guest sends DRAIN_FRAMES frames, frame i of DRAIN_LEN bytes `fill`ed with seed i, each
 * in a chain of its own (head i), to a backend whose socket holds only a few: the device ends
 * with a frame waiting for room. Returns the chains completed. */
static unsigned tx_until_full(void)
{
	int sndbuf = 4096;
	unsigned done = 0;
	uint32_t id, len;

	assert_int_equal(create(BASE, 0), 0);
	settle();
	assert_int_equal(setsockopt(fx.devfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	for (unsigned i = 0; i < DRAIN_FRAMES; i++) {
		gpa_t g = fd_alloc(&fx.v.f, NET_HDR_LEN + DRAIN_LEN);
		struct fd_buf b = {g, NET_HDR_LEN + DRAIN_LEN, false};

		memset(fd_hva(&fx.v.f, g), 0, NET_HDR_LEN);
		fill((uint8_t *)fd_hva(&fx.v.f, g) + NET_HDR_LEN, DRAIN_LEN, i);
		assert_int_equal(fv_add(&fx.v, FV_TXQ, &b, 1), i);
	}
	virtio_dev_kick(fx.d, FV_TXQ);
	settle();
	while (fv_used(&fx.v, FV_TXQ, &id, &len))
		assert_int_equal(id, done++);
	assert_true(done > 0 && done < DRAIN_FRAMES);
	assert_int_equal(in_flight(FV_TXQ), 1); /* the frame that waits */
	assert_false(quiesced());
	return done;
}

/* Read what the host has: frame k must be frame number *got (in order, whole, once). Returns
 * false on the first frame that is not. */
static bool host_take(int fd, unsigned *got)
{
	static uint8_t buf[NET_MAX_PACKET], want[DRAIN_LEN];
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		fill(want, DRAIN_LEN, *got);
		if (r != NET_HDR_LEN + DRAIN_LEN || memcmp(buf + NET_HDR_LEN, want, DRAIN_LEN))
			return false;
		(*got)++;
	}
	return true;
}

/* After a drain: run the loop and read on the host until every chain is back; every frame
 * arrived once, in order. */
static void tx_finish(unsigned done, unsigned got)
{
	struct virtio_net_stats st;
	uint32_t id, len;

	for (int round = 0; round < 500 && (done < DRAIN_FRAMES || got < DRAIN_FRAMES); round++) {
		settle();
		while (fv_used(&fx.v, FV_TXQ, &id, &len))
			assert_int_equal(id, done++);
		assert_true(host_take(fx.peer, &got));
	}
	assert_int_equal(done, DRAIN_FRAMES);
	assert_int_equal(got, DRAIN_FRAMES);
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.tx_packets, DRAIN_FRAMES);
	assert_int_equal(st.tx_dropped, 0);
	assert_int_equal(st.tx_errors, 0);
	assert_int_equal(in_flight(FV_TXQ), 0);
	assert_true(quiesced());
}

struct reader {
	int fd;
	unsigned delay_ms;
	_Atomic bool started;
	unsigned got;
	bool ok;
};

/* The host reads, late: delay_ms after it starts. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct timespec ts = {.tv_sec = r->delay_ms / 1000,
			      .tv_nsec = (long)(r->delay_ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
	atomic_store(&r->started, true);
	r->ok = host_take(r->fd, &r->got);
	return NULL;
}

/* A frame waits for the backend (-EAGAIN); the host reads 100 ms into the drain: the drain
 * waits for the room, sends the frame and completes its chain (one used entry, an interrupt);
 * the device is quiesced and its state saves. The rest of the ring follows once the loop runs
 * again, every frame once and in order. */
static void test_drain_tx_completes(void **state)
{
	unsigned done = tx_until_full(), irqs = fx.v.f.queue_irqs;
	struct reader r = {.fd = fx.peer, .delay_ms = 100, .ok = false};
	struct snap_buf sb;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
	drain(5000);
	assert_true(atomic_load(&r.started)); /* it waited for the host */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(r.ok);
	assert_true(quiesced());
	assert_int_equal(in_flight(FV_TXQ), 0);
	assert_int_equal(used_idx(FV_TXQ), done + 1); /* that chain, and no new one */
	assert_true(fx.v.f.queue_irqs > irqs);
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(fx.d, &sb), 0);
	snap_buf_free(&sb);
	tx_finish(done, r.got);
}

/* The host never reads during the drain: after its time the drain gives up, having slept,
 * not spun; the chain is still held (the snapshot would be refused) and nothing is lost: the
 * frame goes, and its chain comes back, once the host reads. */
static void test_drain_tx_times_out(void **state)
{
	unsigned done = tx_until_full();
	uint64_t t0 = clock_ms();
	double cpu0 = thread_cpu_ms();

	drain(150);
	uint64_t wall = clock_ms() - t0;
	double cpu = thread_cpu_ms() - cpu0;

	assert_true(wall >= 140);
	assert_true(wall < 3000);
	if (cpu > 50)
		fail_msg("the drain used %.1f ms of CPU in %llu ms: it spun", cpu,
			 (unsigned long long)wall);
	assert_false(quiesced());
	assert_int_equal(in_flight(FV_TXQ), 1);
	assert_int_equal(used_idx(FV_TXQ), done);
	tx_finish(done, 0);
}

/* The backend goes away while a frame waits for room: the frame is dropped (counted) and its
 * chain goes back to the guest, so nothing stays in flight (a snapshot saves and loads). */
static void test_link_down_returns_waiting_chain(void **state)
{
	struct virtio_net_stats st;
	unsigned done = tx_until_full();

	close(fx.peer);
	fx.peer = -1;
	settle();
	assert_int_equal(in_flight(FV_TXQ), 0);
	assert_int_equal(used_idx(FV_TXQ), done + 1);
	assert_true(quiesced());
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.tx_dropped, 1);
	assert_true(st.link_down);
}

/* MRG_RXBUF, two 1000-byte receive buffers, a 3000-byte frame: the device holds both chains
 * for it and waits for more. */
static void rx_stash_two(uint64_t features, gpa_t g[4])
{
	uint32_t id, len;

	assert_int_equal(create(features, 0), 0);
	for (unsigned i = 0; i < 4; i++)
		g[i] = fd_alloc(&fx.v.f, 1000);
	fv_add_rx(&fx.v, g[0], 1000);
	fv_add_rx(&fx.v, g[1], 1000);
	settle();
	host_send(3000, 5, 0);
	settle();
	assert_false(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(in_flight(FV_RXQ), 2);
	assert_false(quiesced());
}

/* The 3000-byte frame, whole, in the four 1000-byte buffers g (heads 0-3), as one used batch
 * from entry `from` on. */
static void check_rx_frame(const gpa_t g[4], uint16_t from)
{
	static uint8_t joined[4000], want[3000];
	struct virtio_net_hdr_v1 h;
	uint32_t id = 0, len = 0, total = 0;

	assert_int_equal(used_idx(FV_RXQ), from + 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
		assert_int_equal(id, i);
		memcpy(joined + total, fd_hva(&fx.v.f, g[i]), len);
		total += len;
	}
	assert_int_equal(total, NET_HDR_LEN + 3000);
	memcpy(&h, joined, sizeof(h));
	assert_int_equal(le16toh(h.num_buffers), 4);
	fill(want, 3000, 5);
	assert_memory_equal(joined + NET_HDR_LEN, want, 3000);
}

/* The held receive chains go back to the ring untouched (no used entry): the device is
 * quiesced, its state saves, and afterwards it takes the same chains again and the waiting
 * frame arrives whole. With EVENT_IDX, the device that ran dry again asks the guest to kick
 * for its next buffers, and the guest is interrupted for the frame. */
static void test_drain_rx_rewinds(void **state)
{
	struct snap_buf sb;
	unsigned irqs;
	gpa_t g[4];

	rx_stash_two(BASE | MRG | EVIDX, g);
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(fx.d, &sb), -EBUSY);
	snap_buf_free(&sb);

	drain(1000);
	assert_true(quiesced());
	assert_int_equal(in_flight(FV_RXQ), 0);
	assert_int_equal(fx.d->queues[FV_RXQ].vq.last_avail, 0);
	assert_int_equal(used_idx(FV_RXQ), 0); /* the guest saw nothing */
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(fx.d, &sb), 0);
	snap_buf_free(&sb);

	settle(); /* the drain's kick: the two chains again, still not enough */
	assert_int_equal(in_flight(FV_RXQ), 2);
	assert_int_equal(used_idx(FV_RXQ), 0);
	irqs = fx.v.f.queue_irqs;
	uint16_t old = fx.v.q[FV_RXQ].avail_idx;
	fv_add_rx(&fx.v, g[2], 1000);
	fv_add_rx(&fx.v, g[3], 1000);
	assert_true(fv_kick_needed(&fx.v, FV_RXQ, old, true));
	virtio_dev_kick(fx.d, FV_RXQ);
	settle();
	check_rx_frame(g, 0);
	assert_true(fx.v.f.queue_irqs > irqs);
	assert_int_equal(in_flight(FV_RXQ), 0);
	assert_true(quiesced());
}

/* Buffers the guest published before it was paused, without the device having seen the kick:
 * the drain delivers the waiting frame into them. */
static void test_drain_rx_delivers(void **state)
{
	unsigned irqs;
	gpa_t g[4];

	rx_stash_two(BASE | MRG, g);
	fv_add_rx(&fx.v, g[2], 1000);
	fv_add_rx(&fx.v, g[3], 1000);
	irqs = fx.v.f.queue_irqs;
	drain(1000);
	assert_true(quiesced());
	check_rx_frame(g, 0);
	assert_true(fx.v.f.queue_irqs > irqs);
}

/* A chain the device cannot map (65 buffers: -E2BIG) popped between two held ones: the held
 * ones are not the last pops and cannot be rewound; they go back empty, nothing stays in
 * flight, and the waiting frame still arrives in the guest's next buffers. */
static void test_drain_rx_not_rewindable(void **state)
{
	struct fd_buf many[65];
	uint32_t id, len;
	gpa_t g[4];

	assert_int_equal(create(BASE | MRG, 0), 0);
	gpa_t a = fd_alloc(&fx.v.f, 1000), c = fd_alloc(&fx.v.f, 1000);
	fv_add_rx(&fx.v, a, 1000);
	for (unsigned i = 0; i < 65; i++)
		many[i] = (struct fd_buf){fd_alloc(&fx.v.f, 16), 16, true};
	uint16_t big = fv_add(&fx.v, FV_RXQ, many, 65);
	fv_add_rx(&fx.v, c, 1000);
	settle();
	host_send(3000, 5, 0);
	settle();
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len)); /* the unusable one, empty */
	assert_int_equal(id, big);
	assert_int_equal(len, 0);
	assert_int_equal(in_flight(FV_RXQ), 2);

	drain(1000);
	assert_true(quiesced());
	assert_int_equal(in_flight(FV_RXQ), 0);
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, 66);
	assert_int_equal(len, 0);

	/* The frame still waits (the VM ran on): four new buffers take it. */
	fx.v.q[FV_RXQ].next_desc = 0; /* descriptors 0-3 are free again */
	for (unsigned i = 0; i < 4; i++) {
		g[i] = fd_alloc(&fx.v.f, 1000);
		fv_add_rx(&fx.v, g[i], 1000);
	}
	virtio_dev_kick(fx.d, FV_RXQ);
	settle();
	check_rx_frame(g, 3);
}

/* The state saved after a drain loads into a new device (a restore): no chain in flight, and
 * the restored device pops the chains the first one held and fills them with its own next
 * frame. The frame that waited in the first device is not in the snapshot. */
static void test_drain_rx_restore(void **state)
{
	struct snap_buf sb;
	struct snap_cursor c;
	uint32_t id, len;
	char err[256];
	gpa_t g[4];

	rx_stash_two(BASE | MRG | EVIDX, g);
	drain(1000);
	snap_buf_init(&sb);
	assert_int_equal(virtio_dev_state_save(fx.d, &sb), 0);
	virtio_dev_destroy(fx.d);
	close(fx.peer);

	assert_int_equal(create_stopped(0), 0);
	fx.d->transport = (struct virtio_transport){.raise = fd_raise, .opaque = &fx.v.f};
	fx.v.f.dev = fx.d;
	fx.v.dev = fx.d;
	snap_cursor_init(&c, "net", sb.data, sb.len);
	int ret = virtio_dev_state_load(fx.d, &c, 3);
	if (snap_cursor_end(&c, err, sizeof(err)) || ret)
		fail_msg("load: %d: %s", ret, err);
	snap_buf_free(&sb);
	assert_true(fx.d->status & VIRTIO_STATUS_DRIVER_OK);
	settle(); /* the restored device's kicks */
	assert_int_equal(in_flight(FV_RXQ), 0);

	host_send(1500, 9, 0);
	settle();
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, 1000);
	assert_true(fv_used(&fx.v, FV_RXQ, &id, &len));
	assert_int_equal(id, 1);
	assert_int_equal(len, NET_HDR_LEN + 1500 - 1000);
	assert_false(fv_used(&fx.v, FV_RXQ, &id, &len));
	static uint8_t joined[2000], want[1500];
	memcpy(joined, fd_hva(&fx.v.f, g[0]), 1000);
	memcpy(joined + 1000, fd_hva(&fx.v.f, g[1]), NET_HDR_LEN + 500);
	assert_int_equal(le16toh(((struct virtio_net_hdr_v1 *)joined)->num_buffers), 2);
	fill(want, 1500, 9);
	assert_memory_equal(joined + NET_HDR_LEN, want, 1500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_drain_tx_completes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_tx_times_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_link_down_returns_waiting_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_rx_rewinds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_rx_delivers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_rx_not_rewindable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drain_rx_restore, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
