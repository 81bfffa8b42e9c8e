/* blk.c: virtio-blk throughput in process (kiln's device on a synthetic guest queue) against raw
 * io_uring and raw preadv on the same file, same access pattern, runs interleaved. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "vmm/event.h"
#include "vmm/memory.h"

/*
 * The synthetic guest is a virtio driver on fake guest RAM, in this thread, as Linux's
 * virtio-blk would drive the device: one split queue of 256 entries with EVENT_IDX, one
 * 3-descriptor chain per request (16-byte header, data buffer, status byte), kicks only when
 * avail_event asks for one, and used_event set after every batch of completions it takes.
 * The device runs as in kiln: kicks arrive on the queue's kick eventfd and the io_uring
 * completions on the disk's eventfd, both through kiln's epoll event loop; an interrupt is an
 * eventfd write, as KVM's irqfd is. Only the guest's own VM exits are not there.
 *
 * Every completed read is checked: status OK, used length = data + 1, and the first 8 bytes
 * of the buffer equal the file's pattern at that offset. Raw io_uring and raw preadv read into
 * the same buffers with the same checks.
 */

#define QUEUE_SIZE 256
#define MAX_DEPTH 64
#define RAM_SIZE (16 * MiB)
#define DESC_GPA 0x1000ULL
#define AVAIL_GPA 0x2000ULL
#define USED_GPA 0x3000ULL
#define HDR_GPA 0x6000ULL    /* 16 bytes per request */
#define STATUS_GPA 0x7000ULL /* 1 byte per request */
#define DATA_GPA (1 * MiB)   /* request t's buffer at DATA_GPA + t * MAX_BLOCK */
#define MAX_BLOCK (128 * KiB)
#define CHUNK (1 * MiB)	  /* file creation */
#define URING_ENTRIES 128 /* as kiln's disk engine (DISK_QUEUE_DEPTH) */

#define F_SEG_MAX 2
#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9
#define T_IN 0
#define S_OK 0
#define S_NONE 0xee

enum impl { KILN_URING, RAW_URING, KILN_SYNC, RAW_PREADV, IMPL__COUNT };
static const char *const impl_names[IMPL__COUNT] = {"kiln-uring", "raw-uring", "kiln-sync",
						    "raw-preadv"};

struct workload {
	const char *name;
	uint32_t block;
	bool random;
};
static const struct workload workloads[] = {
    {"rand4k", 4096, true},
    {"seq64k", 64 * 1024, false},
};

/* Options. */
static const char *file_path;
static uint64_t file_size = 1 * GiB;
static unsigned runs = 10, depth = 32, slices = 10;
static double seconds = 1.0;
static bool impl_on[IMPL__COUNT] = {true, true, true, true};
static const char *only_workload; /* NULL: all */

const char *const bench_name = "blk";

/* CPU time of this thread: what a request costs, whatever else runs on the host. */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The file's content: the 8-byte word at byte offset off (a multiple of 8). */
static uint64_t pattern(uint64_t off)
{
	uint64_t z = off + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Create (or re-create when its size or first word differs) the image, then read it once so
 * that every run finds it in the page cache. */
static void prepare_file(void)
{
	static uint64_t buf[CHUNK / 8];
	struct stat st;
	uint64_t first = 0;
	int fd = open(file_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		die("%s: %s", file_path, strerror(errno));
	if (fstat(fd, &st))
		die("%s: fstat: %s", file_path, strerror(errno));
	if ((uint64_t)st.st_size != file_size || pread(fd, &first, 8, 0) != 8 ||
	    first != pattern(0)) {
		fprintf(stderr, "blk: writing %llu MiB of data to %s\n",
			(unsigned long long)(file_size / MiB), file_path);
		if (ftruncate(fd, 0))
			die("%s: ftruncate: %s", file_path, strerror(errno));
		for (uint64_t off = 0; off < file_size; off += CHUNK) {
			for (size_t i = 0; i < ARRAY_SIZE(buf); i++)
				buf[i] = pattern(off + 8 * i);
			if (pwrite(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK)
				die("%s: write: %s", file_path, strerror(errno));
		}
		if (fsync(fd))
			die("%s: fsync: %s", file_path, strerror(errno));
	}
	for (uint64_t off = 0; off < file_size; off += CHUNK)
		if (pread(fd, buf, CHUNK, (off_t)off) != (ssize_t)CHUNK)
			die("%s: read: %s", file_path, strerror(errno));
	close(fd);
}

/* ---- the access pattern: identical for every implementation of one run ------------------ */

struct stream {
	const struct workload *w;
	uint64_t state; /* xorshift state (random) or next offset (sequential) */
	uint64_t blocks;
};

static void stream_init(struct stream *s, const struct workload *w, unsigned run)
{
	s->w = w;
	s->blocks = file_size / w->block;
	s->state = w->random ? 0x2545f4914f6cdd1dULL * (run + 1) : 0;
}

static uint64_t stream_next(struct stream *s)
{
	if (!s->w->random) {
		uint64_t off = s->state;
		s->state = (s->state + s->w->block) % (s->blocks * s->w->block);
		return off;
	}
	s->state ^= s->state << 13;
	s->state ^= s->state >> 7;
	s->state ^= s->state << 17;
	return (s->state % s->blocks) * s->w->block;
}

/* ---- shared state of one run ------------------------------------------------------------ */

struct run {
	struct guest_mem mem;
	struct stream st;
	uint32_t block;
	uint64_t off[MAX_DEPTH]; /* offset in flight per request slot */
	uint64_t ops, deadline, t0, t1;
	uint64_t cpu0, cpu1; /* this thread's CPU time at t0 and t1 (ns) */
	double slice;	     /* seconds */
	uint64_t kicks, irqs;
	int irq_efd;
	bool stop;
};

struct guest {
	struct run *r;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx, kicked_idx, used_seen;
	unsigned inflight;
};

/* One implementation's state, set up on first use and kept for the whole program, as a VM
 * keeps its device: slices start and stop traffic, not devices (a fresh device or ring per
 * slice showed up as page clearing in the profiles). Each has its own guest RAM. */
struct impl_ctx {
	bool ready;
	struct run r;
	struct event_loop ev; /* kiln */
	struct virtio_dev *d;
	struct guest g;
	struct io_uring ring; /* raw-uring */
	int fd;		      /* raw-uring, raw-preadv */
};

static void start_clock(struct run *r)
{
	r->cpu0 = cpu_ns();
	r->t0 = now_ns();
	r->deadline = r->t0 + (uint64_t)(r->slice * 1e9);
}

/* Guest RAM as the guest sees it: one region from GPA 0 (checked when it is mapped). The
 * device translates every address itself; the synthetic guest, like a real one, does not. */
static void *ram(struct run *r, gpa_t gpa) { return r->mem.regions[0].hva + gpa; }

static uint8_t *data_buf(struct run *r, unsigned t)
{
	return ram(r, DATA_GPA + (uint64_t)t * MAX_BLOCK);
}

/* A completed read of slot t: check it, count it, and tell whether to issue another. */
static bool completed(struct run *r, unsigned t, const char *who)
{
	uint64_t got;

	memcpy(&got, data_buf(r, t), 8);
	if (got != pattern(r->off[t]))
		die("%s: read at offset %llu returned the wrong data", who,
		    (unsigned long long)r->off[t]);
	if (r->stop)
		return false; /* drained after the deadline: not counted */
	r->ops++;
	if ((r->ops & 63) == 0 && now_ns() >= r->deadline) {
		r->stop = true;
		r->t1 = now_ns();
		r->cpu1 = cpu_ns();
		return false;
	}
	return true;
}

/* ---- kiln: the device, driven by the synthetic guest ------------------------------------ */

struct vhdr {
	uint32_t type, ioprio;
	uint64_t sector;
};

static void raise_irq(void *opaque, uint16_t vector)
{
	struct run *r = opaque;
	uint64_t one = 1;

	(void)vector;
	r->irqs++;
	if (write(r->irq_efd, &one, sizeof(one)) < 0) /* as KVM's irqfd is signalled */
		die("irq eventfd: %s", strerror(errno));
}

static uint16_t *avail_event(struct guest *g) { return (uint16_t *)&g->used->ring[QUEUE_SIZE]; }
static uint16_t *used_event(struct guest *g) { return &g->avail->ring[QUEUE_SIZE]; }

/* Queue a read for slot t (its chain is fixed: descriptors 3t, 3t+1, 3t+2). */
static void guest_queue(struct guest *g, unsigned t)
{
	struct run *r = g->r;
	struct vhdr *h = ram(r, HDR_GPA + 16ULL * t);
	uint8_t *status = ram(r, STATUS_GPA + t);

	r->off[t] = stream_next(&r->st);
	*h = (struct vhdr){.type = T_IN, .sector = r->off[t] / 512};
	*status = S_NONE;
	memset(data_buf(r, t), 0, 8);
	g->avail->ring[g->avail_idx % QUEUE_SIZE] = (uint16_t)(3 * t);
	g->avail_idx++;
	g->inflight++;
}

/* Publish the new avail index and kick if the device asked for it (EVENT_IDX). */
static void guest_publish(struct guest *g, struct virtio_dev *d)
{
	uint16_t old = g->kicked_idx, now = g->avail_idx;

	if (old == now)
		return;
	__atomic_store_n(&g->avail->idx, now, __ATOMIC_RELEASE);
	atomic_thread_fence(memory_order_seq_cst); /* virtio_mb() before reading avail_event */
	g->kicked_idx = now;
	uint16_t ev = __atomic_load_n(avail_event(g), __ATOMIC_RELAXED);
	if ((uint16_t)(now - ev - 1) < (uint16_t)(now - old)) {
		g->r->kicks++;
		virtio_dev_kick(d, 0);
	}
}

/* Take every used entry; re-issue while the run lasts. */
static void guest_reap(struct guest *g)
{
	struct run *r = g->r;
	uint16_t idx = __atomic_load_n(&g->used->idx, __ATOMIC_ACQUIRE);

	while (g->used_seen != idx) {
		struct vring_used_elem *e = &g->used->ring[g->used_seen % QUEUE_SIZE];
		unsigned t = e->id / 3;
		uint8_t *status = ram(r, STATUS_GPA + t);

		if (e->id % 3 || t >= depth || *status != S_OK || e->len != r->block + 1)
			die("kiln: request %u: status %u, used length %u", e->id, *status, e->len);
		g->used_seen++;
		g->inflight--;
		if (completed(r, t, "kiln"))
			guest_queue(g, t);
	}
	/* Interrupt at the next completion (Linux: virtqueue_enable_cb). */
	__atomic_store_n(used_event(g), g->used_seen, __ATOMIC_RELAXED);
}

static void guest_rings(struct guest *g, struct run *r)
{
	memset(g, 0, sizeof(*g));
	g->r = r;
	g->desc = ram(r, DESC_GPA);
	g->avail = ram(r, AVAIL_GPA);
	g->used = ram(r, USED_GPA);
	memset(g->desc, 0, VQ_DESC_BYTES(QUEUE_SIZE));
	memset(g->avail, 0, VQ_AVAIL_BYTES(QUEUE_SIZE));
	memset(g->used, 0, VQ_USED_BYTES(QUEUE_SIZE));
}

/* Write the chains for requests of r->block bytes (the queue is idle). */
static void guest_chains(struct guest *g)
{
	for (unsigned t = 0; t < depth; t++) {
		struct vring_desc *d = &g->desc[3 * t];
		d[0] = (struct vring_desc){HDR_GPA + 16ULL * t, 16, VRING_DESC_F_NEXT,
					   (uint16_t)(3 * t + 1)};
		d[1] = (struct vring_desc){DATA_GPA + (uint64_t)t * MAX_BLOCK, g->r->block,
					   VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
					   (uint16_t)(3 * t + 2)};
		d[2] = (struct vring_desc){STATUS_GPA + t, 1, VRING_DESC_F_WRITE, 0};
	}
}

/* The driver's side of device initialisation (virtio 1.2, 3.1.1). */
static void guest_start(struct virtio_dev *d)
{
	uint64_t features = BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(F_SEG_MAX) | BIT_ULL(F_RO) |
			    BIT_ULL(F_BLK_SIZE) | BIT_ULL(F_FLUSH) |
			    BIT_ULL(VIRTIO_RING_F_EVENT_IDX);
	struct virtio_queue *q = &d->queues[0];

	pthread_mutex_lock(&d->lock);
	virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_set_driver_features(d, 0, (uint32_t)features);
	virtio_set_driver_features(d, 1, (uint32_t)(features >> 32));
	virtio_set_status(d, d->status | VIRTIO_STATUS_FEATURES_OK);
	d->msix_config = 0;
	q->vq.size = QUEUE_SIZE;
	q->vq.desc_gpa = DESC_GPA;
	q->vq.avail_gpa = AVAIL_GPA;
	q->vq.used_gpa = USED_GPA;
	q->msix_vector = 1;
	virtio_queue_enable(d, 0);
	virtio_set_status(d, d->status | VIRTIO_STATUS_DRIVER_OK);
	bool ok = virtio_queue_ready(d, 0);
	pthread_mutex_unlock(&d->lock);
	if (!ok)
		die("kiln: the device did not accept the driver (status 0x%02x)", d->status);
}

static void kiln_setup(struct impl_ctx *c, enum disk_engine engine)
{
	struct virtio_env env = {.mem = &c->r.mem, .ev = &c->ev};
	struct disk_config cfg = {
	    .id = "bench", .path = (char *)file_path, .readonly = true, .engine = engine};
	char err[512];

	if (event_loop_init(&c->ev))
		die("event loop: %s", strerror(errno));
	if (virtio_blk_create(&env, &cfg, &c->d, err, sizeof(err)))
		die("%s", err);
	if (strcmp(virtio_blk_engine(c->d), engine == DISK_ENGINE_SYNC ? "sync" : "io_uring"))
		die("kiln: engine %s instead of the one asked for", virtio_blk_engine(c->d));
	c->d->transport = (struct virtio_transport){.raise = raise_irq, .opaque = &c->r};
	guest_rings(&c->g, &c->r);
	guest_start(c->d);
}

/* One slice: keep `depth` requests in flight until the deadline, then let them finish. */
static void run_kiln(struct impl_ctx *c)
{
	struct guest *g = &c->g;
	struct virtio_dev *d = c->d;

	guest_chains(g);
	start_clock(&c->r);
	for (unsigned t = 0; t < depth; t++)
		guest_queue(g, t);
	guest_publish(g, d);
	/* The watchdog reads the clock only on wake-ups without progress: the raw loops read
	 * none per batch either. */
	uint64_t idle_since = 0; /* first wake-up without progress, 0 after progress */
	while (g->inflight) {
		uint16_t seen = g->used_seen;
		/* 0: timeout, or EINTR (io_uring task work interrupts epoll_wait) */
		int n = event_loop_run_once(&c->ev, 1000);
		if (n < 0)
			die("kiln: event loop: %s", strerror(-n));
		guest_reap(g);
		guest_publish(g, d);
		if (g->used_seen != seen)
			idle_since = 0;
		else if (!idle_since)
			idle_since = now_ns();
		else if (now_ns() - idle_since > 5000000000ULL)
			die("kiln: no progress in 5 s (%u requests in flight)", g->inflight);
	}
}

/* ---- raw io_uring and raw preadv: the same reads with nothing in between ---------------- */

static int open_file(void)
{
	int fd = open(file_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("%s: %s", file_path, strerror(errno));
	return fd;
}

static void raw_prep(struct io_uring *ring, struct run *r, int fd, unsigned t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		die("raw-uring: submission queue full");
	r->off[t] = stream_next(&r->st);
	memset(data_buf(r, t), 0, 8);
	io_uring_prep_read(sqe, fd, data_buf(r, t), r->block, r->off[t]);
	io_uring_sqe_set_data64(sqe, t);
}

static void run_raw_uring(struct impl_ctx *c)
{
	struct run *r = &c->r;
	struct io_uring_cqe *cqe;
	unsigned inflight = 0;
	int ret;

	start_clock(r);
	for (unsigned t = 0; t < depth; t++, inflight++)
		raw_prep(&c->ring, r, c->fd, t);
	while (inflight) {
		ret = io_uring_submit_and_wait(&c->ring, 1);
		if (ret < 0 && ret != -EINTR)
			die("raw-uring: io_uring_submit_and_wait: %s", strerror(-ret));
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&c->ring, head, cqe)
		{
			unsigned t = (unsigned)io_uring_cqe_get_data64(cqe);
			if (cqe->res != (int)r->block)
				die("raw-uring: read returned %d", cqe->res);
			seen++;
			inflight--;
			if (completed(r, t, "raw-uring")) {
				raw_prep(&c->ring, r, c->fd, t);
				inflight++;
			}
		}
		io_uring_cq_advance(&c->ring, seen);
	}
}

/* One read at a time: what kiln's sync engine does underneath. */
static void run_raw_preadv(struct impl_ctx *c)
{
	struct run *r = &c->r;
	unsigned t = 0;

	start_clock(r);
	do {
		struct iovec iov = {data_buf(r, t), r->block};

		r->off[t] = stream_next(&r->st);
		memset(iov.iov_base, 0, 8);
		if (preadv(c->fd, &iov, 1, (off_t)r->off[t]) != (ssize_t)r->block)
			die("raw-preadv: short read at %llu", (unsigned long long)r->off[t]);
		t = (t + 1) % depth;
	} while (completed(r, (t + depth - 1) % depth, "raw-preadv"));
}

/* ---- driver ------------------------------------------------------------------------------ */

/* What one implementation did over the slices of a run. */
struct tally {
	struct stream st; /* carried from slice to slice */
	uint64_t ops, ns, cpu_ns, kicks, irqs;
};

static struct impl_ctx ctxs[IMPL__COUNT];

static void impl_setup(enum impl impl, struct impl_ctx *c)
{
	struct run *r = &c->r;
	int ret;

	if (guest_mem_init(&r->mem, RAM_SIZE) || r->mem.nr_regions != 1 ||
	    r->mem.regions[0].gpa != 0 || r->mem.regions[0].size != RAM_SIZE)
		die("guest RAM: not one region of %llu MiB at 0",
		    (unsigned long long)(RAM_SIZE / MiB));
	r->irq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->irq_efd < 0)
		die("eventfd: %s", strerror(errno));
	c->fd = -1;
	switch (impl) {
	case KILN_URING:
		kiln_setup(c, DISK_ENGINE_URING);
		break;
	case KILN_SYNC:
		kiln_setup(c, DISK_ENGINE_SYNC);
		break;
	case RAW_URING:
		ret = io_uring_queue_init(URING_ENTRIES, &c->ring, 0);
		if (ret)
			die("raw-uring: io_uring_queue_init: %s", strerror(-ret));
		c->fd = open_file();
		break;
	default:
		c->fd = open_file();
		break;
	}
	c->ready = true;
}

static void impl_teardown(enum impl impl, struct impl_ctx *c)
{
	if (!c->ready)
		return;
	if (c->d) {
		virtio_dev_destroy(c->d);
		event_loop_destroy(&c->ev);
	}
	if (impl == RAW_URING)
		io_uring_queue_exit(&c->ring);
	if (c->fd >= 0)
		close(c->fd);
	close(c->r.irq_efd);
	guest_mem_destroy(&c->r.mem);
	c->ready = false;
}

/* One slice of a run: `slice` seconds of impl, added to *t. */
static void one_slice(enum impl impl, const struct workload *w, double slice, struct tally *t)
{
	struct impl_ctx *c = &ctxs[impl];
	struct run *r = &c->r;

	if (!c->ready)
		impl_setup(impl, c);
	r->block = w->block;
	r->slice = slice;
	r->ops = r->kicks = r->irqs = 0;
	r->stop = false;
	r->t1 = 0;
	r->st = t->st;
	switch (impl) {
	case KILN_URING:
	case KILN_SYNC:
		run_kiln(c);
		break;
	case RAW_URING:
		run_raw_uring(c);
		break;
	default:
		run_raw_preadv(c);
		break;
	}
	if (!r->t1)
		die("%s: the run ended before its deadline", impl_names[impl]);
	/* Requests still in flight at the deadline completed after t1: not counted. */
	t->st = r->st;
	t->ops += r->ops;
	t->ns += r->t1 - r->t0;
	t->cpu_ns += r->cpu1 - r->cpu0;
	t->kicks += r->kicks;
	t->irqs += r->irqs;
}

/* One run of one workload: every implementation, slice by slice in turn, so that a change of
 * load on the host falls on all of them alike. */
static void one_run(const struct workload *w, unsigned run_no)
{
	struct tally t[IMPL__COUNT];

	memset(t, 0, sizeof(t));
	for (unsigned i = 0; i < IMPL__COUNT; i++)
		stream_init(&t[i].st, w, run_no); /* the same offsets for everyone */
	for (unsigned k = 0; k < slices; k++)
		for (unsigned i = 0; i < IMPL__COUNT; i++)
			if (impl_on[i])
				one_slice((enum impl)i, w, seconds / slices, &t[i]);
	for (unsigned i = 0; i < IMPL__COUNT; i++) {
		if (!impl_on[i])
			continue;
		double s = (double)t[i].ns / 1e9;
		printf("blk workload=%s impl=%s run=%u depth=%u ops=%llu seconds=%.3f iops=%.0f "
		       "mbps=%.1f cpu_us_per_op=%.3f kicks=%llu irqs=%llu\n",
		       w->name, impl_names[i], run_no, i == RAW_PREADV ? 1 : depth,
		       (unsigned long long)t[i].ops, s, (double)t[i].ops / s,
		       (double)t[i].ops * w->block / s / 1e6,
		       (double)t[i].cpu_ns / 1e3 / (double)t[i].ops, (unsigned long long)t[i].kicks,
		       (unsigned long long)t[i].irqs);
	}
	fflush(stdout);
}

static void usage(FILE *f)
{
	fputs(
	    "usage: blk --file PATH [--size MIB] [--runs N] [--seconds S] [--slices K]\n"
	    "           [--depth N] [--only IMPL,...] [--workload rand4k|seq64k]\n"
	    "\n"
	    "Creates PATH (SIZE MiB of patterned data, default 1024) unless it already holds\n"
	    "it and reads it once into the page cache. Then, for each run and each workload\n"
	    "(rand4k: 4 KiB random reads, seq64k: 64 KiB sequential reads), it runs every\n"
	    "implementation for S seconds (default 1) at queue depth N (default 32), in K\n"
	    "slices (default 10) taken in turn, so that host load hits all of them alike:\n"
	    "  kiln-uring   kiln's virtio-blk device, io_uring engine, on a synthetic guest queue\n"
	    "  raw-uring    io_uring directly (io_uring_submit_and_wait), the floor\n"
	    "  kiln-sync    kiln's virtio-blk device, sync engine\n"
	    "  raw-preadv   preadv, one read at a time (what the sync engine does underneath)\n"
	    "One line per run and implementation: workload impl run depth ops seconds iops\n"
	    "mbps (10^6 bytes/s) cpu_us_per_op (this thread's CPU time) kicks irqs.\n",
	    f);
}

static void parse_only(const char *list)
{
	char *copy = strdup(list), *save = NULL;

	memset(impl_on, 0, sizeof(impl_on));
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned i;
		for (i = 0; i < IMPL__COUNT && strcmp(tok, impl_names[i]); i++)
			;
		if (i == IMPL__COUNT)
			die("--only: unknown implementation '%s'", tok);
		impl_on[i] = true;
	}
	free(copy);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"file", required_argument, NULL, 'f'},	{"size", required_argument, NULL, 'S'},
	    {"runs", required_argument, NULL, 'r'},	{"seconds", required_argument, NULL, 's'},
	    {"depth", required_argument, NULL, 'd'},	{"only", required_argument, NULL, 'o'},
	    {"workload", required_argument, NULL, 'w'}, {"slices", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			file_path = optarg;
			break;
		case 'S':
			file_size = strtoull(optarg, NULL, 10) * MiB;
			break;
		case 'r':
			runs = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'd':
			depth = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			parse_only(optarg);
			break;
		case 'w':
			only_workload = optarg;
			break;
		case 'l':
			slices = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!file_path || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!runs || !depth || !slices || depth > MAX_DEPTH || 3 * depth > QUEUE_SIZE ||
	    !(seconds > 0) || file_size < 2 * MAX_BLOCK)
		die("--runs, --depth (1-%u), --seconds must be positive and --size at least 1",
		    MAX_DEPTH);
	log_set_level(LOG_WARN);
	prepare_file();
	for (unsigned run = 1; run <= runs; run++)
		for (size_t w = 0; w < ARRAY_SIZE(workloads); w++)
			if (!only_workload || !strcmp(only_workload, workloads[w].name))
				one_run(&workloads[w], run);
	for (unsigned i = 0; i < IMPL__COUNT; i++)
		impl_teardown((enum impl)i, &ctxs[i]);
	return 0;
}
