/* test_budget.c: the per-dispatch budget against a guest that publishes a chain inside every
 * backend call (virtio-blk on both engines, virtio-console, virtio-net TX and RX, virtio-rng). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_vnet.h"
#include "util/log.h"
#include "vmm/event.h"

/*
 * The backend calls are wrapped at link time (meson: -Wl,--wrap=...): each call the device
 * makes on the watched fd runs the real call, then hook(), in which the fake guest publishes
 * one more chain, as a vCPU on another CPU would while the device works. Without a budget one
 * dispatch would take every chain the guest ever publishes (200,000 were seen on a 128-entry
 * ring); with it a dispatch takes at most one ring's worth and the event loop serves other fds
 * before the rest.
 *
 * What is measured: the device interrupts the flooded queue once at the end of each dispatch,
 * and the driver asks for every interrupt (used_event follows used->idx with EVENT_IDX), so
 * the used entries added between two interrupts are the chains of one dispatch. A probe
 * eventfd, written by the first hook, stands for any other event source (SIGTERM, an API
 * action): it must be served after one or two dispatches, long before the flood ends.
 */

ssize_t __real_preadv64(int fd, const struct iovec *iov, int n, off64_t off);
ssize_t __real_writev(int fd, const struct iovec *iov, int n);
ssize_t __real_write(int fd, const void *buf, size_t len);
ssize_t __real_read(int fd, void *buf, size_t len);
ssize_t __real_getrandom(void *buf, size_t len, unsigned flags);
struct io_uring;
int __real_io_uring_submit(struct io_uring *ring);
ssize_t __wrap_preadv64(int fd, const struct iovec *iov, int n, off64_t off);
ssize_t __wrap_writev(int fd, const struct iovec *iov, int n);
ssize_t __wrap_write(int fd, const void *buf, size_t len);
ssize_t __wrap_read(int fd, void *buf, size_t len);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags);
int __wrap_io_uring_submit(struct io_uring *ring);

enum call { CALL_PREADV, CALL_WRITE, CALL_READ, CALL_GETRANDOM, CALL_SUBMIT };

static struct {
	bool armed;
	enum call call; /* the backend call that publishes */
	int fd;		/* ...on this fd (CALL_WRITE covers write and writev) */
	void (*publish)(unsigned n); /* the guest publishes its n-th chain (n from 0) */
	void (*host)(void);	     /* other work after each call: drain, send, republish */
	unsigned published, cap;
	int probe;
	bool probe_written, probe_seen;
	unsigned probe_at; /* chains completed when the probe was served */
	/* the flooded queue, as the driver sees it */
	const uint16_t *used_idx;
	uint16_t *used_event; /* EVENT_IDX: moved to used->idx at each interrupt */
	uint16_t vector;
	uint16_t irq_used;
	unsigned irqs, max_per_irq;
} g;

static void hook(enum call call, int fd)
{
	uint64_t one = 1;

	if (!g.armed || call != g.call || ((call == CALL_WRITE || call == CALL_READ) && fd != g.fd))
		return;
	if (g.host)
		g.host();
	if (g.publish && g.published < g.cap)
		g.publish(g.published++);
	if (!g.probe_written) {
		g.probe_written = true;
		assert_int_equal(__real_write(g.probe, &one, sizeof(one)), sizeof(one));
	}
}

ssize_t __wrap_preadv64(int fd, const struct iovec *iov, int n, off64_t off)
{
	ssize_t r = __real_preadv64(fd, iov, n, off);

	hook(CALL_PREADV, fd);
	return r;
}

ssize_t __wrap_writev(int fd, const struct iovec *iov, int n)
{
	ssize_t r = __real_writev(fd, iov, n);

	hook(CALL_WRITE, fd);
	return r;
}

ssize_t __wrap_write(int fd, const void *buf, size_t len)
{
	ssize_t r = __real_write(fd, buf, len);

	hook(CALL_WRITE, fd);
	return r;
}

ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	ssize_t r = __real_read(fd, buf, len);
	int e = errno;

	hook(CALL_READ, fd);
	errno = e; /* the caller looks at EAGAIN */
	return r;
}

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags)
{
	ssize_t r = __real_getrandom(buf, len, flags);

	hook(CALL_GETRANDOM, -1);
	return r;
}

int __wrap_io_uring_submit(struct io_uring *ring)
{
	int r = __real_io_uring_submit(ring);

	hook(CALL_SUBMIT, -1);
	return r;
}

static uint16_t used_now(void) { return __atomic_load_n(g.used_idx, __ATOMIC_ACQUIRE); }

/* The transport's interrupt: one per dispatch that completed something on a queue. */
static void raise_irq(void *opaque, uint16_t vector)
{
	if (vector != g.vector)
		return;
	uint16_t now = used_now();
	unsigned n = (uint16_t)(now - g.irq_used);

	g.irqs++;
	if (n > g.max_per_irq)
		g.max_per_irq = n;
	g.irq_used = now;
	if (g.used_event) /* a driver that wants the next interrupt as soon as there is one */
		__atomic_store_n(g.used_event, now, __ATOMIC_RELEASE);
}

static void probe_ready(void *opaque, uint32_t events)
{
	uint64_t v;

	assert_int_equal(__real_read(g.probe, &v, sizeof(v)), sizeof(v));
	if (!g.probe_seen) {
		g.probe_seen = true;
		g.probe_at = used_now();
	}
}

/* ---- fixture -------------------------------------------------------------------------------- */

#define F(bit) BIT_ULL(bit)
#define EVENT_IDX F(VIRTIO_RING_F_EVENT_IDX)

struct fx {
	struct event_loop ev;
	struct fake_vnet v; /* v.f: RAM and the one-queue driver (blk, console, rng) */
	struct virtio_dev *d;
	char path[64];	  /* blk image */
	int pipe[2];	  /* console output */
	int sv[2];	  /* net: the device's end, the host's end */
	uint16_t heads[2]; /* the guest's two chains, published in turn */
	unsigned qi;	   /* fake_vnet queue of the flood (net) */
};

static struct fx fx;

static int setup(void **state)
{
	log_set_level(LOG_ERROR);
	memset(&fx, 0, sizeof(fx));
	memset(&g, 0, sizeof(g));
	fx.pipe[0] = fx.pipe[1] = fx.sv[0] = fx.sv[1] = -1;
	g.probe = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g.probe < 0 || fv_setup(&fx.ev, &fx.v))
		return -1;
	/* Level-triggered, a control handler: what a signal or an API action looks like. */
	return event_add_control(&fx.ev, g.probe, EPOLLIN, probe_ready, NULL) ? -1 : 0;
}

static int teardown(void **state)
{
	g.armed = false;
	fv_teardown(&fx.ev, &fx.v, &fx.d); /* the backend closes sv[0] */
	for (int i = 0; i < 2; i++)
		if (fx.pipe[i] >= 0)
			close(fx.pipe[i]);
	if (fx.sv[1] >= 0)
		close(fx.sv[1]);
	if (fx.path[0])
		unlink(fx.path);
	close(g.probe);
	return 0;
}

/* Watch the one-queue driver's queue (fake_driver.h rings) for interrupts on vector 1. */
static void watch_fd_queue(uint16_t qsize, bool event_idx)
{
	struct vring_used *u = fd_hva(&fx.v.f, FD_USED);
	struct vring_avail *a = fd_hva(&fx.v.f, FD_AVAIL);

	g.used_idx = &u->idx;
	g.used_event = event_idx ? &a->ring[qsize] : NULL;
	g.vector = 1;
	fx.d->transport = (struct virtio_transport){.raise = raise_irq};
}

static void publish_fd(unsigned n) { fd_submit(&fx.v.f, fx.heads[n % 2]); }

/* Run the event loop until `total` chains completed on the flooded queue, or nothing happened
 * for a second. Then check the budget: at most `budget` chains per dispatch, the probe
 * served after at most two dispatches, every chain completed. */
static void run_flood(unsigned total, unsigned budget)
{
	unsigned idle = 0;

	while (used_now() != (uint16_t)total && idle < 20)
		idle = event_loop_run_once(&fx.ev, 50) > 0 ? 0 : idle + 1;
	g.armed = false;
	if (g.probe_seen)
		print_message("%u chains, budget %u: %u dispatches, at most %u in one; probe "
			      "served after %u\n",
			      total, budget, g.irqs, g.max_per_irq, g.probe_at);
	else
		print_message("%u chains, budget %u: %u dispatches, at most %u in one; probe not "
			      "served\n",
			      total, budget, g.irqs, g.max_per_irq);
	assert_int_equal(used_now(), (uint16_t)total);
	assert_true(g.max_per_irq <= budget);
	assert_true(g.irqs >= total / budget);
	assert_true(g.probe_seen);
	assert_true(g.probe_at <= 2 * budget && g.probe_at < total);
	assert_false(fx.d->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- virtio-blk: a read request published inside every preadv -------------------------------- */

#define BLK_Q 128

/* Kick the armed virtio-blk flood, run it (at most qsize chains per dispatch) and check that
 * every read completed without error. */
static void blk_run_flood(unsigned qsize)
{
	struct virtio_blk_stats st;

	g.armed = true;
	virtio_dev_kick(fx.d, 0);
	run_flood(g.cap, qsize);
	virtio_blk_get_stats(fx.d, &st);
	assert_int_equal(st.read_reqs, g.cap);
	assert_int_equal(st.io_errors + st.bad_requests, 0);
}

static void blk_flood(bool event_idx)
{
	uint64_t features = F(VIRTIO_F_VERSION_1) | (event_idx ? EVENT_IDX : 0);
	struct virtio_env env = {.mem = &fx.v.f.mem, .ev = &fx.ev};
	struct disk_config cfg = {.id = "disk0", .engine = DISK_ENGINE_SYNC};
	static uint8_t zero[64 * 1024];
	char err[256];
	int fd;

	strcpy(fx.path, "/tmp/kiln-test-budget-XXXXXX");
	fd = mkstemp(fx.path);
	assert_true(fd >= 0);
	assert_int_equal(__real_write(fd, zero, sizeof(zero)), sizeof(zero));
	close(fd);
	cfg.path = fx.path;
	assert_int_equal(virtio_blk_create(&env, &cfg, &fx.d, err, sizeof(err)), 0);
	assert_true(fd_start(&fx.v.f, fx.d, 0, BLK_Q, features) & VIRTIO_STATUS_DRIVER_OK);
	watch_fd_queue(BLK_Q, event_idx);
	/* Two read requests, each [header][512 bytes][status]: one in the device, the other
	 * published, in turn. */
	for (int i = 0; i < 2; i++) {
		struct {
			uint32_t type, ioprio;
			uint64_t sector;
		} h = {.type = 0 /* IN */, .sector = (uint64_t)i};
		struct fd_buf b[3] = {{fd_alloc(&fx.v.f, 16), 16, false},
				      {fd_alloc(&fx.v.f, 512), 512, true},
				      {fd_alloc(&fx.v.f, 1), 1, true}};

		memcpy(fd_hva(&fx.v.f, b[0].gpa), &h, sizeof(h));
		fx.heads[i] = fd_chain(&fx.v.f, b, 3);
	}
	g.call = CALL_PREADV;
	g.publish = publish_fd;
	g.cap = 8 * BLK_Q;
	g.published = 1;
	publish_fd(0);
	blk_run_flood(BLK_Q);
}

static void test_blk(void **state) { blk_flood(false); }

static void test_blk_event_idx(void **state) { blk_flood(true); }

/* io_uring: requests wait for a free slot, and reads from the page cache complete inside the
 * submit, so blk_process goes round again while the ring has requests. The guest keeps the
 * ring full: at every submit it puts back every request that came back. Each chain is one
 * INDIRECT descriptor to the same [header][512 bytes][status] table: all read sector 0. */
#define URING_Q 256

static void blk_republish(void)
{
	uint32_t id, len;

	while (g.published < g.cap && fd_used(&fx.v.f, &id, &len)) {
		fd_submit(&fx.v.f, (uint16_t)id);
		g.published++;
	}
}

static void blk_uring_flood(bool event_idx)
{
	uint64_t features = F(VIRTIO_F_VERSION_1) | F(VIRTIO_RING_F_INDIRECT_DESC) |
			    (event_idx ? EVENT_IDX : 0);
	struct virtio_env env = {.mem = &fx.v.f.mem, .ev = &fx.ev};
	struct disk_config cfg = {.id = "disk0", .engine = DISK_ENGINE_URING};
	static uint8_t zero[64 * 1024];
	char err[256];
	int fd;

	strcpy(fx.path, "/tmp/kiln-test-budget-XXXXXX");
	fd = mkstemp(fx.path);
	assert_true(fd >= 0);
	assert_int_equal(__real_write(fd, zero, sizeof(zero)), sizeof(zero));
	close(fd);
	cfg.path = fx.path;
	assert_int_equal(virtio_blk_create(&env, &cfg, &fx.d, err, sizeof(err)), 0);
	if (strcmp(virtio_blk_engine(fx.d), "io_uring"))
		skip(); /* io_uring_queue_init failed here (seccomp, old kernel) */
	assert_true(fd_start(&fx.v.f, fx.d, 0, URING_Q, features) & VIRTIO_STATUS_DRIVER_OK);
	watch_fd_queue(URING_Q, event_idx);
	struct fd_buf b[3] = {{fd_alloc(&fx.v.f, 16), 16, false},
			      {fd_alloc(&fx.v.f, 512), 512, true},
			      {fd_alloc(&fx.v.f, 1), 1, true}};
	memset(fd_hva(&fx.v.f, b[0].gpa), 0, 16); /* IN, sector 0 */
	for (int i = 0; i < 3; i++)
		fd_desc_at(&fx.v.f, FD_INDIRECT, (unsigned)i, b[i].gpa, b[i].len,
			   (b[i].write ? VRING_DESC_F_WRITE : 0) | (i < 2 ? VRING_DESC_F_NEXT : 0),
			   (uint16_t)(i + 1));
	for (uint16_t h = 0; h < URING_Q; h++) {
		fd_desc_at(&fx.v.f, FD_DESC, h, FD_INDIRECT, 3 * 16, VRING_DESC_F_INDIRECT, 0);
		fd_submit(&fx.v.f, h);
	}
	g.call = CALL_SUBMIT;
	g.host = blk_republish;
	g.cap = 8 * URING_Q;
	g.published = URING_Q;
	blk_run_flood(URING_Q);
}

static void test_blk_uring(void **state) { blk_uring_flood(false); }

static void test_blk_uring_event_idx(void **state) { blk_uring_flood(true); }

/* ---- virtio-console: an output chain published inside every write ------------------------- */

#define CON_Q 64
#define CON_TXQ 1

static void drain_pipe(void)
{
	char buf[4096];

	while (__real_read(fx.pipe[0], buf, sizeof(buf)) > 0)
		;
}

static void console_flood(bool event_idx)
{
	uint64_t features = F(VIRTIO_F_VERSION_1) | (event_idx ? EVENT_IDX : 0);
	struct virtio_env env = {.mem = &fx.v.f.mem, .ev = &fx.ev};
	char err[256];

	assert_int_equal(pipe2(fx.pipe, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(virtio_console_create(&env, -1, fx.pipe[1], &fx.d, err, sizeof(err)), 0);
	assert_true(fd_start(&fx.v.f, fx.d, CON_TXQ, CON_Q, features) & VIRTIO_STATUS_DRIVER_OK);
	watch_fd_queue(CON_Q, event_idx);
	for (int i = 0; i < 2; i++) {
		struct fd_buf b = {fd_alloc(&fx.v.f, 8), 8, false};

		memcpy(fd_hva(&fx.v.f, b.gpa), "output\r\n", 8);
		fx.heads[i] = fd_chain(&fx.v.f, &b, 1);
	}
	g.call = CALL_WRITE;
	g.fd = fx.pipe[1];
	g.host = drain_pipe; /* a reader that keeps up: the pipe never fills */
	g.publish = publish_fd;
	g.cap = 8 * CON_Q;
	g.published = 1;
	publish_fd(0);
	g.armed = true;
	virtio_dev_kick(fx.d, CON_TXQ);
	run_flood(g.cap, CON_Q);
}

static void test_console(void **state) { console_flood(false); }

static void test_console_event_idx(void **state) { console_flood(true); }

/* ---- virtio-rng: a 1-byte request published inside every getrandom ------------------------ */

#define RNG_Q 64

static void rng_flood(bool event_idx)
{
	uint64_t features = F(VIRTIO_F_VERSION_1) | (event_idx ? EVENT_IDX : 0);
	struct virtio_env env = {.mem = &fx.v.f.mem, .ev = &fx.ev};
	char err[256];

	assert_int_equal(virtio_rng_create(&env, &fx.d, err, sizeof(err)), 0);
	assert_true(fd_start(&fx.v.f, fx.d, 0, RNG_Q, features) & VIRTIO_STATUS_DRIVER_OK);
	watch_fd_queue(RNG_Q, event_idx);
	for (int i = 0; i < 2; i++) {
		struct fd_buf b = {fd_alloc(&fx.v.f, 1), 1, true};

		fx.heads[i] = fd_chain(&fx.v.f, &b, 1);
	}
	g.call = CALL_GETRANDOM;
	g.publish = publish_fd;
	g.cap = 8 * RNG_Q;
	g.published = 1;
	publish_fd(0);
	g.armed = true;
	virtio_dev_kick(fx.d, 0);
	run_flood(g.cap, RNG_Q);
}

static void test_rng(void **state) { rng_flood(false); }

static void test_rng_event_idx(void **state) { rng_flood(true); }

/* The rng's own limit on top of the chain budget: 1 MiB of getrandom per dispatch, so a ring
 * of 64 KiB requests takes several dispatches (the core kicks the queue again after each). */
static void test_rng_bytes(void **state)
{
	struct virtio_env env = {.mem = &fx.v.f.mem, .ev = &fx.ev};
	char err[256];

	assert_int_equal(virtio_rng_create(&env, &fx.d, err, sizeof(err)), 0);
	assert_true(fd_start(&fx.v.f, fx.d, 0, RNG_Q, F(VIRTIO_F_VERSION_1)) &
		    VIRTIO_STATUS_DRIVER_OK);
	watch_fd_queue(RNG_Q, false);
	gpa_t buf = fd_alloc(&fx.v.f, 64 * KiB); /* one buffer for all: the device only writes */
	for (int i = 0; i < RNG_Q; i++) {
		struct fd_buf b = {buf, 64 * KiB, true};

		fd_submit(&fx.v.f, fd_chain(&fx.v.f, &b, 1));
	}
	virtio_dev_kick(fx.d, 0);
	for (unsigned idle = 0; used_now() != RNG_Q && idle < 20;)
		idle = event_loop_run_once(&fx.ev, 50) > 0 ? 0 : idle + 1;
	assert_int_equal(used_now(), RNG_Q);
	assert_int_equal(g.max_per_irq, (1 * MiB) / (64 * KiB));
	assert_int_equal(g.irqs, RNG_Q / ((1 * MiB) / (64 * KiB)));
}

/* ---- virtio-net: frames over a socketpair ------------------------------------------------- */

#define NET_TX_Q 64
#define NET_RX_Q 16
#define BASE (F(VIRTIO_F_VERSION_1) | F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS))

static void make_net(uint16_t qsize, uint64_t features, unsigned qi)
{
	struct virtio_env env = {.mem = &fx.v.f.mem, .ev = &fx.ev};
	struct net_config cfg = {.id = "net0"};
	struct net_backend *be;
	char err[256];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
				    fx.sv),
			 0);
	assert_int_equal(net_fd_backend_create(fx.sv[0], false, &fx.ev, &be), 0);
	assert_int_equal(virtio_net_create_with(&env, &cfg, be, &fx.d, err, sizeof(err)), 0);
	assert_true(fv_start(&fx.v, fx.d, qsize, features) & VIRTIO_STATUS_DRIVER_OK);
	struct fv_queue *q = &fx.v.q[qi];
	struct vring_used *u = fd_hva(&fx.v.f, q->used);
	struct vring_avail *a = fd_hva(&fx.v.f, q->avail);

	fx.qi = qi;
	g.used_idx = &u->idx;
	g.used_event = features & EVENT_IDX ? &a->ring[qsize] : NULL;
	g.vector = (uint16_t)(1 + qi);
	fx.d->transport = (struct virtio_transport){.raise = raise_irq};
}

/* Write a one-buffer chain into queue qi's table, without publishing it. */
static uint16_t net_chain(unsigned qi, gpa_t gpa, uint32_t len, bool write)
{
	struct fv_queue *q = &fx.v.q[qi];
	uint16_t head = (uint16_t)(q->next_desc++ % q->size);

	fd_desc_at(&fx.v.f, q->desc, head, gpa, len, write ? VRING_DESC_F_WRITE : 0, 0);
	return head;
}

/* Publish one of the two chains (again) on the flooded queue. */
static void publish_net(unsigned n)
{
	struct fv_queue *q = &fx.v.q[fx.qi];
	struct vring_avail *a = fd_hva(&fx.v.f, q->avail);

	a->ring[q->avail_idx % q->size] = fx.heads[n % 2];
	__atomic_store_n(&a->idx, ++q->avail_idx, __ATOMIC_RELEASE);
}

static void drain_peer(void)
{
	char buf[2048];

	while (recv(fx.sv[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

static void net_tx_flood(bool event_idx)
{
	struct virtio_net_stats st;

	make_net(NET_TX_Q, BASE | (event_idx ? EVENT_IDX : 0), FV_TXQ);
	for (int i = 0; i < 2; i++) {
		gpa_t gpa = fd_alloc(&fx.v.f, NET_HDR_LEN + 60);

		memset(fd_hva(&fx.v.f, gpa), 0, NET_HDR_LEN + 60);
		fx.heads[i] = net_chain(FV_TXQ, gpa, NET_HDR_LEN + 60, false);
	}
	g.call = CALL_WRITE;
	g.fd = fx.sv[0];
	g.host = drain_peer; /* a peer that keeps up: the socket never fills */
	g.publish = publish_net;
	g.cap = 8 * NET_TX_Q;
	g.published = 1;
	publish_net(0);
	g.armed = true;
	virtio_dev_kick(fx.d, FV_TXQ);
	run_flood(g.cap, NET_TX_Q);
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.tx_packets, g.cap);
}

static void test_net_tx(void **state) { net_tx_flood(false); }

static void test_net_tx_event_idx(void **state) { net_tx_flood(true); }

/* Receive: the host has a frame ready whenever the device reads one, and the guest adds a
 * receive buffer for each; the first dispatch comes from the backend's readiness, not a
 * kick, so only the core's self-kick brings the device back for the rest. */
static unsigned frames_sent;

static void host_send_frame(void)
{
	uint8_t frame[NET_HDR_LEN + 60] = {0};

	if (frames_sent >= g.cap)
		return;
	frame[NET_HDR_LEN] = (uint8_t)frames_sent;
	assert_int_equal(send(fx.sv[1], frame, sizeof(frame), 0), sizeof(frame));
	frames_sent++;
}

static void net_rx_flood(bool event_idx)
{
	struct virtio_net_stats st;

	make_net(NET_RX_Q, BASE | (event_idx ? EVENT_IDX : 0), FV_RXQ);
	for (int i = 0; i < 2; i++)
		fx.heads[i] = net_chain(FV_RXQ, fd_alloc(&fx.v.f, 1526), 1526, true);
	publish_net(0);
	while (event_loop_run_once(&fx.ev, 0) > 0)
		; /* DRIVER_OK's kicks: the device now polls the backend */
	g.call = CALL_READ;
	g.fd = fx.sv[0];
	g.host = host_send_frame;
	g.publish = publish_net;
	g.cap = 8 * NET_RX_Q;
	g.published = 1;
	frames_sent = 0;
	g.armed = true;
	host_send_frame();
	run_flood(g.cap, NET_RX_Q);
	virtio_net_get_stats(fx.d, &st);
	assert_int_equal(st.rx_packets, g.cap);
	assert_int_equal(st.rx_dropped, 0);
}

static void test_net_rx(void **state) { net_rx_flood(false); }

static void test_net_rx_event_idx(void **state) { net_rx_flood(true); }

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_blk),	 T(test_blk_event_idx),	   T(test_blk_uring),
	    T(test_blk_uring_event_idx), T(test_console),
	    T(test_console_event_idx), T(test_rng),	   T(test_rng_event_idx),
	    T(test_rng_bytes),	 T(test_net_tx),	   T(test_net_tx_event_idx),
	    T(test_net_rx),	 T(test_net_rx_event_idx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
