/* test_crash_blk.c: virtio-blk crash consistency: SIGKILL at random, every flushed block kept. */
/*
 * A child process plays kiln and its guest, on the real code paths: virtio_blk_create on a
 * real image file with the real disk engine (sync or io_uring, cache=writeback), the real
 * event loop on the child's main thread (queue kicks through the kick eventfd, as KVM's
 * ioeventfd signals it; io_uring completions through the ring's eventfd), and a "guest"
 * thread, the vCPU, that drives the queue on fake guest RAM (fake_driver.h) and waits for
 * interrupts on an eventfd, as an irqfd would deliver them.
 *
 * The guest writes numbered 4 KiB blocks (block i at slot i % NBLOCKS: the image wraps
 * around) in batches of 1 to BATCH_MAX, waits until every write of the batch is back OK,
 * sends a FLUSH (as Linux does for fsync: a FLUSH covers the writes completed before it),
 * and only when the FLUSH is back OK reports the batch's last number to the parent (one
 * write(2) of 8 bytes on a pipe). With FLUSH not negotiated the device is write-through
 * (kiln then makes every write durable on completion): the guest reports as soon as the
 * batch's writes are back. Each block carries its run, its number and a pattern derived
 * from both, so an absent, stale (an older block, or one of an earlier run) or torn block
 * is told apart.
 *
 * The parent kills the child with SIGKILL at a random moment (0 to DELAY_MAX_MS after the
 * first report), KILLS times per configuration, and checks every block the last report
 * covers: first that none is still dirty or under writeback in the host's page cache, then,
 * once the child's lock is gone, their content. Delays and batch shapes come from a seed
 * that is printed; KILN_CRASH_SEED=<seed> replays the same schedule (the timing of the
 * child, and so the exact kill points, still vary). Half of the batches the guest waits for
 * the interrupt, half it polls the used ring, as a polling driver would.
 *
 * What this proves, and what not. SIGKILL ends kiln but not the host kernel, and leaves
 * the host's page cache alone: a flushed block found in the file shows that kiln handed it
 * to the host before acknowledging it (pwritev returned, or io_uring posted the write's
 * completion), not that it is on stable storage. Where the host shows it (cachestat(2),
 * Linux 6.5, not on tmpfs), the page-cache check goes a step further: a FLUSH or a
 * write-through write acknowledged without its fdatasync leaves dirty pages behind and
 * fails. What stays unproven is that the host's disk keeps what fdatasync wrote across a
 * power cut: that is the host kernel's promise, and only a power cut (a VM of its own,
 * dm-log-writes) would test it. Random kills also miss an acknowledgment that precedes
 * the host's write by microseconds only, and a FLUSH acknowledged when it is handed to
 * io_uring instead of when the fsync completes: on ext4 the fsyncs still finished before
 * the check could see dirty pages (docs/design.md, "Crash consistency").
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_driver.h"
#include "util/log.h"
#include "vmm/event.h"
#include "util/clock.h"

#define BLOCK 4096u
#define NBLOCKS 512u  /* the image: 2 MiB */
#define BATCH_MAX 32u /* writes per batch; a batch (4 chains each at most) fits the ring */
#define QSIZE 256u
#define KILLS 20
#define DELAY_MAX_MS 300	    /* after the first report */
#define CHILD_WAIT_MS 5000	    /* no completion for this long: the child gives up (a hang) */
#define MAGIC 0x736172636e6c696bULL /* "kilncras" */

#define T_OUT 1
#define T_FLUSH 4
#define S_NONE 0xee
#define F_SEG_MAX 2
#define F_BLK_SIZE 6
#define F_FLUSH 9

/* The child's first record: the engine it got (io_uring may be unavailable here). */
#define HELLO_SYNC (UINT64_MAX - 1)
#define HELLO_URING (UINT64_MAX - 2)

struct crash_cfg {
	const char *name;
	enum disk_engine engine;
	bool flush;	    /* FLUSH negotiated; else the device is write-through */
	unsigned batch_max; /* writes per batch: 1 to this (at most BATCH_MAX) */
};

/* The first bytes of every block; the rest is a pattern of (run, number). */
struct block_head {
	uint64_t magic;
	uint64_t number;
	uint32_t run;
	uint32_t slot;
};

static uint64_t seed;
static bool dirty_visible; /* cachestat works here and shows fdatasync's effect */

/* cachestat(2), Linux 6.5 (the same number on every architecture); glibc 2.36 has neither
 * a wrapper nor the structs. */
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cs_range {
	uint64_t off, len;
};
struct cs_stat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* Pages of [off, off + len) of fd that are dirty or under writeback in the host's page
 * cache, or -errno. */
static int64_t host_dirty(int fd, uint64_t off, uint64_t len)
{
	struct cs_range r = {off, len};
	struct cs_stat st;

	if (syscall(__NR_cachestat, fd, &r, &st, 0))
		return -errno;
	return (int64_t)(st.nr_dirty + st.nr_writeback);
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static void block_fill(uint8_t *p, uint32_t run, uint64_t number)
{
	struct block_head h = {
	    .magic = MAGIC, .number = number, .run = run, .slot = (uint32_t)(number % NBLOCKS)};
	uint64_t s = (number << 20) ^ run ^ 0x9e3779b97f4a7c15ULL;

	memcpy(p, &h, sizeof(h));
	for (size_t i = sizeof(h); i < BLOCK; i += 8) {
		uint64_t v = rng_next(&s);
		memcpy(p + i, &v, 8);
	}
}

/* ---- the child: kiln and its guest --------------------------------------------------------- */

struct guest {
	struct fake_driver f;
	struct event_loop ev;
	struct virtio_dev *d;
	const struct crash_cfg *cfg;
	int irq_efd;   /* the "irqfd": the device's interrupts */
	int report_fd; /* the pipe to the parent */
	uint32_t run;
	uint64_t rng;
	gpa_t status[QSIZE]; /* status byte of the chain with this head; 0: not in flight */
};

static void __printf(1, 2) __attribute__((noreturn)) child_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "crash_blk child: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	_exit(2); /* the whole process: the parent sees an exit instead of its SIGKILL */
}

static void report(struct guest *g, uint64_t v)
{
	if (write(g->report_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		child_die("report: %s", strerror(errno));
}

/* The device's interrupt (event-loop thread, device lock held), as KVM's irqfd. */
static void guest_irq(void *opaque, uint16_t vector)
{
	struct guest *g = opaque;
	uint64_t one = 1;

	if (write(g->irq_efd, &one, sizeof(one)) < 0)
		child_die("irq eventfd: %s", strerror(errno));
}

/* Make a chain available: header, data (one or two buffers), status. */
static void queue_req(struct guest *g, uint32_t type, uint64_t number)
{
	struct {
		uint32_t type, ioprio;
		uint64_t sector;
	} h = {.type = type, .sector = (number % NBLOCKS) * (BLOCK / 512)};
	struct fd_buf b[4];
	unsigned n = 0;
	gpa_t hg = fd_alloc(&g->f, sizeof(h)), sg;

	memcpy(fd_hva(&g->f, hg), &h, sizeof(h));
	b[n++] = (struct fd_buf){hg, sizeof(h), false};
	if (type == T_OUT) {
		gpa_t dg = fd_alloc(&g->f, BLOCK);
		uint32_t cut = 512 * (uint32_t)(rng_next(&g->rng) % 8); /* 0: one buffer */

		block_fill(fd_hva(&g->f, dg), g->run, number);
		if (cut)
			b[n++] = (struct fd_buf){dg, cut, false};
		b[n++] = (struct fd_buf){dg + cut, BLOCK - cut, false};
	}
	sg = fd_alloc(&g->f, 1);
	*(uint8_t *)fd_hva(&g->f, sg) = S_NONE;
	b[n++] = (struct fd_buf){sg, 1, true};
	uint16_t head = fd_chain(&g->f, b, n);
	if (g->status[head])
		child_die("descriptor %u reused while in flight", head);
	g->status[head] = sg;
	fd_submit(&g->f, head);
}

/* Wait until n chains are back, each with status OK. Interrupt-driven, or, when poll_ring,
 * looking at the used ring every 20 us as a polling driver does (Linux's virtio-blk poll
 * queues, or another vCPU): that sees a completion the moment the device publishes it,
 * even when the device still has work to do before its interrupt. */
static void wait_used(struct guest *g, unsigned n, bool poll_ring)
{
	int64_t deadline = (int64_t)clock_ms() + CHILD_WAIT_MS;
	unsigned got = 0;

	for (;;) {
		uint32_t id, len;
		uint64_t v;

		while (got < n && fd_used(&g->f, &id, &len)) {
			if (id >= QSIZE || !g->status[id])
				child_die("used id %u was not in flight", id);
			uint8_t st = *(uint8_t *)fd_hva(&g->f, g->status[id]);
			if (st != 0 || len != 1)
				child_die("request %u: status %u, used length %u", id, st, len);
			g->status[id] = 0;
			got++;
		}
		if (got == n)
			return;
		if ((int64_t)clock_ms() > deadline) {
			pthread_mutex_lock(&g->d->lock);
			uint8_t status = g->d->status;
			pthread_mutex_unlock(&g->d->lock);
			child_die("%u of %u requests not back after %d ms (device status 0x%x)",
				  n - got, n, CHILD_WAIT_MS, status);
		}
		if (poll_ring) {
			usleep(20);
			continue;
		}
		struct pollfd p = {.fd = g->irq_efd, .events = POLLIN};
		int r = poll(&p, 1, 100);
		if (r < 0 || (r > 0 && read(g->irq_efd, &v, sizeof(v)) < 0))
			if (errno != EINTR)
				child_die("irq eventfd: %s", strerror(errno));
	}
}

/* The guest's vCPU: batches of writes, each followed by a FLUSH, reported when it is back. */
static void *guest_main(void *opaque)
{
	struct guest *g = opaque;
	uint64_t next = 0;

	for (;;) {
		unsigned n = 1 + (unsigned)(rng_next(&g->rng) % g->cfg->batch_max);
		bool poll_ring = rng_next(&g->rng) & 1;

		fd_reset_heap(&g->f);
		for (unsigned k = 0; k < n; k++)
			queue_req(g, T_OUT, next + k);
		virtio_dev_kick(g->d, 0); /* what the notify write's ioeventfd does */
		wait_used(g, n, poll_ring);
		if (g->cfg->flush) {
			queue_req(g, T_FLUSH, 0);
			virtio_dev_kick(g->d, 0);
			wait_used(g, 1, poll_ring);
		}
		report(g, next + n - 1);
		next += n;
	}
	return NULL;
}

static void __attribute__((noreturn)) child_main(const struct crash_cfg *cfg, const char *path,
						 uint32_t run, uint64_t child_seed, int report_fd)
{
	static struct guest g; /* 4 MiB of RAM behind it; one per process */
	struct virtio_env env = {.mem = &g.f.mem, .ev = &g.ev};
	struct disk_config dc = {.id = "crash",
				 .path = (char *)path,
				 .engine = cfg->engine,
				 .cache = DISK_CACHE_WRITEBACK};
	uint64_t features = BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(F_SEG_MAX) | BIT_ULL(F_BLK_SIZE) |
			    (cfg->flush ? BIT_ULL(F_FLUSH) : 0);
	char err[256];
	pthread_t t;
	int ret;

	log_set_level(LOG_ERROR);
	g.cfg = cfg;
	g.run = run;
	g.rng = child_seed | 1;
	g.report_fd = report_fd;
	g.irq_efd = eventfd(0, EFD_CLOEXEC);
	if (g.irq_efd < 0 || fd_init(&g.f) || event_loop_init(&g.ev))
		child_die("set-up: %s", strerror(errno));
	/* The killed predecessor's io_uring may hold the image, and its lock, a little longer
	 * than its process. */
	for (int i = 0;; i++) {
		ret = virtio_blk_create(&env, &dc, &g.d, err, sizeof(err));
		if (ret != -EWOULDBLOCK || i == 1000)
			break;
		usleep(5000);
	}
	if (ret)
		child_die("%s", err);
	if (!(fd_start(&g.f, g.d, 0, QSIZE, features) & VIRTIO_STATUS_DRIVER_OK))
		child_die("the device refused features 0x%llx", (unsigned long long)features);
	pthread_mutex_lock(&g.d->lock);
	g.d->transport = (struct virtio_transport){.raise = guest_irq, .opaque = &g};
	pthread_mutex_unlock(&g.d->lock);
	report(&g, strcmp(virtio_blk_engine(g.d), "io_uring") ? HELLO_SYNC : HELLO_URING);
	if ((ret = pthread_create(&t, NULL, guest_main, &g)))
		child_die("pthread_create: %s", strerror(ret));
	for (;;) {
		ret = event_loop_run_once(&g.ev, -1);
		if (ret < 0)
			child_die("event loop: %s", strerror(-ret));
	}
}

/* ---- the parent: kill, reopen, check -------------------------------------------------------- */

/* Records from the child's pipe (8 bytes each, written whole). */
struct reader {
	int fd;
	bool eof;
	int64_t last; /* the last number reported, -1: none */
};

/* The child's first record, its engine; 0 when it ended or said nothing for 10 s. */
static uint64_t read_hello(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t v;

	if (poll(&p, 1, 10000) != 1 || read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	assert_true(v == HELLO_SYNC || v == HELLO_URING);
	return v;
}

/* Read the child's reports until deadline_ms (-1: until end of file), or only until the
 * first one when `first`. */
static void read_reports(struct reader *rd, int64_t deadline_ms, bool first)
{
	while (!rd->eof && !(first && rd->last >= 0)) {
		int timeout = deadline_ms < 0 ? -1 : (int)MAX(deadline_ms - (int64_t)clock_ms(), (int64_t)0);
		struct pollfd p = {.fd = rd->fd, .events = POLLIN};
		uint64_t buf[512];

		if (poll(&p, 1, timeout) == 0)
			return;
		ssize_t n = read(rd->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		assert_int_equal(n % 8, 0); /* every write was 8 bytes: whole records only */
		if (n == 0)
			rd->eof = true;
		for (ssize_t i = 0; i < n / 8; i++) {
			/* Reports grow: each batch ends after the one before. */
			assert_true(buf[i] < HELLO_URING && (int64_t)buf[i] > rd->last);
			rd->last = (int64_t)buf[i];
		}
	}
}

/* Open the image once nobody holds its lock, as the next kiln would. */
static int reopen(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	for (int i = 0; flock(fd, LOCK_SH | LOCK_NB); i++) {
		assert_true(errno == EWOULDBLOCK && i < 1000);
		usleep(5000);
	}
	return fd;
}

/* What is wrong with block i of `run` as the image holds it (got): NULL if nothing, else a
 * message in buf. */
static const char *block_problem(const uint8_t *got, uint32_t run, uint64_t i, char *buf,
				 size_t len)
{
	static uint8_t want[BLOCK];
	struct block_head h;

	block_fill(want, run, i);
	memcpy(&h, got, sizeof(h));
	if (h.magic != MAGIC)
		snprintf(buf, len, "absent");
	else if (h.run != run || h.number != i)
		snprintf(buf, len, "the slot holds block %llu of run %u",
			 (unsigned long long)h.number, h.run);
	else if (memcmp(got, want, BLOCK))
		snprintf(buf, len, "torn: right header, wrong data");
	else
		return NULL;
	return buf;
}

static void bad_block(const struct crash_cfg *cfg, uint32_t run, int64_t i, const char *why,
		      unsigned *bad)
{
	if ((*bad)++ < 5) /* the rest counted, not printed */
		print_error("%s: run %u: block %lld (slot %llu) was flushed: %s\n", cfg->name, run,
			    (long long)i, (unsigned long long)((uint64_t)i % NBLOCKS), why);
}

/* Check every block up to `last`, except those a later, unreported write may have hit
 * (the guest writes at most BATCH_MAX numbers past its last report). First that none is
 * dirty or under writeback in the host's page cache (watch: the image, opened before the
 * child), then, once nobody holds the image, their content.
 * Returns the number of blocks checked; a bad block fails the test with what was found. */
static unsigned check_image(const char *path, int watch, const struct crash_cfg *cfg, uint32_t run,
			    int64_t last)
{
	static uint8_t got[BLOCK];
	int64_t first = MAX(last - (int64_t)(NBLOCKS - BATCH_MAX) + 1, (int64_t)0);
	unsigned bad = 0;
	char why[128];
	int fd;

	for (int64_t i = first; dirty_visible && i <= last; i++)
		if (host_dirty(watch, ((uint64_t)i % NBLOCKS) * BLOCK, BLOCK) != 0)
			bad_block(cfg, run, i, "not written back: dirty in the host's page cache",
				  &bad);
	fd = reopen(path);
	for (int64_t i = first; i <= last; i++) {
		assert_int_equal(pread(fd, got, BLOCK, (off_t)(((uint64_t)i % NBLOCKS) * BLOCK)),
				 BLOCK);
		if (block_problem(got, run, (uint64_t)i, why, sizeof(why)))
			bad_block(cfg, run, i, why, &bad);
	}
	close(fd);
	if (bad)
		fail_msg("%s: run %u: %u faults in the %lld blocks up to the last flushed one "
			 "(%lld) (seed %llu)",
			 cfg->name, run, bad, (long long)(last - first + 1), (long long)last,
			 (unsigned long long)seed);
	return (unsigned)(last - first + 1);
}

static void test_crash(void **state)
{
	const struct crash_cfg *cfg = *state;
	char path[] = "/tmp/kiln-test-crash-XXXXXX";
	uint64_t rng = (seed ^ ((uint64_t)cfg->engine << 32) ^ ((uint64_t)cfg->flush << 40)) | 1;
	unsigned checked = 0, wrapped = 0;
	int64_t most = 0, least = INT64_MAX;
	int watch = mkstemp(path); /* kept open: the page-cache check looks through it */

	assert_true(watch >= 0);
	assert_int_equal(ftruncate(watch, (off_t)NBLOCKS * BLOCK), 0);
	for (uint32_t run = 1; run <= KILLS; run++) {
		int delay = (int)(rng_next(&rng) % (DELAY_MAX_MS + 1));
		uint64_t child_seed = rng_next(&rng);
		struct reader rd = {.last = -1};
		int p[2], wstatus;
		pid_t pid;

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			close(watch);
			child_main(cfg, path, run, child_seed, p[1]);
		}
		close(p[1]);
		rd.fd = p[0];
		uint64_t hello = read_hello(p[0]);
		if (hello == HELLO_SYNC && cfg->engine == DISK_ENGINE_URING) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(p[0]);
			close(watch);
			unlink(path);
			skip(); /* io_uring unavailable here (seccomp, old kernel) */
		}
		/* Once the first batch is safe (before it, nothing is to be checked), a random
		 * moment. */
		if (hello)
			read_reports(&rd, (int64_t)clock_ms() + 10000, true);
		if (rd.last >= 0)
			read_reports(&rd, (int64_t)clock_ms() + delay, false);
		kill(pid, SIGKILL);
		read_reports(&rd, -1, false);
		close(p[0]);
		assert_int_equal(waitpid(pid, &wstatus, 0), pid);
		if (!WIFSIGNALED(wstatus) || WTERMSIG(wstatus) != SIGKILL)
			fail_msg(
			    "%s: run %u: the child ended by itself (status 0x%x) before the kill",
			    cfg->name, run, wstatus);
		if (!hello || rd.last < 0)
			fail_msg("%s: run %u: no %s within 10 s", cfg->name, run,
				 hello ? "flushed batch" : "device");
		checked += check_image(path, watch, cfg, run, rd.last);
		wrapped += rd.last >= (int64_t)NBLOCKS;
		most = MAX(most, rd.last + 1);
		least = MIN(least, rd.last + 1);
	}
	close(watch);
	unlink(path);
	print_message("%s: %d kills 0-%d ms after the first flushed batch: %lld-%lld blocks "
		      "flushed per run, %u runs wrapped the image, %u blocks checked\n",
		      cfg->name, KILLS, DELAY_MAX_MS, (long long)least, (long long)most, wrapped,
		      checked);
}

/* Write-through: every write waits for the disk, so shorter batches. */
static const struct crash_cfg cfg_sync = {"sync, FLUSH", DISK_ENGINE_SYNC, true, BATCH_MAX};
static const struct crash_cfg cfg_uring = {"io_uring, FLUSH", DISK_ENGINE_URING, true, BATCH_MAX};
static const struct crash_cfg cfg_sync_wt = {"sync, write-through", DISK_ENGINE_SYNC, false, 8};
static const struct crash_cfg cfg_uring_wt = {"io_uring, write-through", DISK_ENGINE_URING, false,
					      8};

/* Does this host show what fdatasync does? A page written is dirty, and clean after
 * fdatasync: then the check of flushed blocks also looks at the host's page cache. Not on
 * tmpfs (nothing to write back) or before Linux 6.5 (no cachestat). */
static bool probe_dirty(void)
{
	char path[] = "/tmp/kiln-test-crash-probe-XXXXXX";
	static uint8_t page[BLOCK];
	int fd = mkstemp(path);
	bool ok;

	if (fd < 0)
		return false;
	unlink(path);
	memset(page, 0x5a, sizeof(page));
	ok = pwrite(fd, page, BLOCK, 0) == BLOCK && host_dirty(fd, 0, BLOCK) == 1 &&
	     fdatasync(fd) == 0 && host_dirty(fd, 0, BLOCK) == 0;
	close(fd);
	return ok;
}

int main(void)
{
	const char *env = getenv("KILN_CRASH_SEED");
	const struct CMUnitTest tests[] = {
	    {.name = "crash: sync, FLUSH",
	     .test_func = test_crash,
	     .initial_state = (void *)&cfg_sync},
	    {.name = "crash: io_uring, FLUSH",
	     .test_func = test_crash,
	     .initial_state = (void *)&cfg_uring},
	    {.name = "crash: sync, write-through",
	     .test_func = test_crash,
	     .initial_state = (void *)&cfg_sync_wt},
	    {.name = "crash: io_uring, write-through",
	     .test_func = test_crash,
	     .initial_state = (void *)&cfg_uring_wt},
	};

	seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	dirty_visible = probe_dirty();
	print_message("crash_blk: seed %llu (KILN_CRASH_SEED=%llu replays it); flushed blocks "
		      "%s\n",
		      (unsigned long long)seed, (unsigned long long)seed,
		      dirty_visible ? "must also be clean in the host's page cache"
				    : "are not checked for dirty pages (no cachestat, or tmpfs)");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
