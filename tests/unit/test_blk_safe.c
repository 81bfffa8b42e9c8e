/* test_blk_safe.c: virtio-blk flushes that flush, bounded zero passes and resets, safe opens. */
/*
 * What reaches the disk is observed from outside, with cachestat(2): the number of dirty
 * (not yet written back) pages of the image in the host's page cache. fdatasync leaves none;
 * without it, pages written a moment ago stay dirty (write-back starts after 30 s by
 * default). Images are in /tmp, which must be a disk file system (tmpfs pages are never
 * written back): the tests that need this skip on tmpfs and on kernels before 6.5.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "backends/disk.h"
#include "blk_fixture.h"
#include "util/log.h"
#include "vmm/event.h"

#define DISK_SIZE (1 * MiB)
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_UNSUPP 2
#define S_NONE 0xee
#define F_FLUSH 9
#define F_WRITE_ZEROES 14
#define FEATURES_NO_FLUSH                                                                          \
	(BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(2) | BIT_ULL(6) |                                   \
	 BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX))
#define TMPFS_MAGIC_ 0x01021994

struct hdr {
	uint32_t type, ioprio;
	uint64_t sector;
};

static struct fx fx_sync = {.engine = DISK_ENGINE_SYNC};
static struct fx fx_uring = {.engine = DISK_ENGINE_URING};

/* ---- watchdog: an open or a reset that blocks fails the test instead of hanging it ------- */

static void watchdog_fired(int sig)
{
	static const char msg[] = "watchdog: the test blocked\n";
	ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)w;
	_exit(1);
}

static void watchdog(unsigned seconds)
{
	struct sigaction sa = {.sa_handler = watchdog_fired};

	sigaction(SIGALRM, &sa, NULL);
	alarm(seconds);
}

static int64_t ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ---- the host's view of an image: dirty pages ---------------------------------------------- */

struct cs_range {
	uint64_t off, len;
};
struct cs_stat {
	uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* Pages of path dirty or under write-back in the page cache; -1 without cachestat(2). */
static long unclean_pages(const char *path)
{
	struct cs_range range = {0, 0}; /* len 0: to the end of the file */
	struct cs_stat cs;
	int fd = open(path, O_RDONLY);
	long ret;

	assert_true(fd >= 0);
	ret = syscall(451 /* __NR_cachestat */, fd, &range, &cs, 0);
	close(fd);
	return ret ? -1 : (long)(cs.nr_dirty + cs.nr_writeback);
}

static void skip_without_cachestat(const char *path)
{
	struct statfs sf;

	if (unclean_pages(path) < 0 || statfs(path, &sf) || sf.f_type == TMPFS_MAGIC_)
		skip();
}

/* ---- fixture ------------------------------------------------------------------------------- */

/* A temp image of size bytes filled with fill_pattern(seed), written back (no dirty page). */
static void make_image(char *path, size_t size, uint32_t seed)
{
	static uint8_t buf[1 * MiB];
	int fd;

	strcpy(path, "/tmp/kiln-test-blks-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	for (size_t off = 0; off < size; off += sizeof(buf)) {
		size_t n = MIN(sizeof(buf), size - off);

		fill_pattern(buf, n, (uint32_t)(seed + off));
		assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	}
	assert_int_equal(fsync(fd), 0);
	close(fd);
}


static void start(struct fx *t, uint64_t features)
{
	assert_int_equal(fd_start(&t->f, t->d, 0, 128, features) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
}

static int setup(void **state)
{
	struct fx *t = *state;

	log_set_level(LOG_ERROR);
	make_image(t->path, DISK_SIZE, 7);
	if (fd_init(&t->f) || event_loop_init(&t->ev))
		return -1;
	t->d = NULL;
	return 0;
}

static int teardown(void **state)
{
	alarm(0);
	blk_fx_teardown(*state);
	return 0;
}

static void create_started(struct fx *t, enum disk_cache cache, uint64_t features)
{
	char err[256];

	assert_int_equal(blk_fx_create(t, cache, false, err, sizeof(err)), 0);
	if (t->engine == DISK_ENGINE_URING && strcmp(virtio_blk_engine(t->d), "io_uring"))
		skip(); /* io_uring_queue_init failed here (seccomp, old kernel) */
	start(t, features);
}


/* Make a request available: header, data (device-writable when data_in), status. Returns
 * the head; *status_gpa and *data_gpa where its status byte and data are. */
static uint16_t post(struct fx *t, uint32_t type, uint64_t sector, const void *data, uint32_t len,
		     bool data_in, gpa_t *status_gpa, gpa_t *data_gpa)
{
	struct hdr h = {.type = type, .sector = sector};
	struct fd_buf b[3];
	unsigned n = 0;

	b[n++] = (struct fd_buf){fd_alloc(&t->f, sizeof(h)), sizeof(h), false};
	memcpy(fd_hva(&t->f, b[0].gpa), &h, sizeof(h));
	if (len) {
		b[n] = (struct fd_buf){fd_alloc(&t->f, len), len, data_in};
		if (data_in)
			memset(fd_hva(&t->f, b[n].gpa), 0xaa, len);
		else
			memcpy(fd_hva(&t->f, b[n].gpa), data, len);
		if (data_gpa)
			*data_gpa = b[n].gpa;
		n++;
	}
	b[n] = (struct fd_buf){fd_alloc(&t->f, 1), 1, true};
	*(uint8_t *)fd_hva(&t->f, b[n].gpa) = S_NONE;
	*status_gpa = b[n++].gpa;
	uint16_t head = fd_chain(&t->f, b, n);
	fd_submit(&t->f, head);
	return head;
}

/* One request to its completion; returns its status byte. */
static uint8_t req(struct fx *t, uint32_t type, uint64_t sector, void *data, uint32_t len,
		   bool data_in)
{
	gpa_t sg, dg = 0;
	uint16_t head;

	fd_reset_heap(&t->f);
	head = post(t, type, sector, data, len, data_in, &sg, &dg);
	blk_fx_complete(t, head);
	if (data_in && len)
		memcpy(data, fd_hva(&t->f, dg), len);
	return *(uint8_t *)fd_hva(&t->f, sg);
}

/* ---- 1. flushes that flush -------------------------------------------------------------- */

/* cache=writeback: FLUSH is offered; a write leaves dirty pages, and a FLUSH completes only
 * once they are written back (fdatasync), with either engine. */
static void test_flush_writeback(void **state)
{
	struct fx *t = *state;
	static uint8_t w[64 * KiB];

	skip_without_cachestat(t->path);
	create_started(t, DISK_CACHE_WRITEBACK, FEATURES_NO_FLUSH | BIT_ULL(F_FLUSH));
	assert_true(t->d->host_features & BIT_ULL(F_FLUSH));
	assert_int_equal(unclean_pages(t->path), 0);
	fill_pattern(w, sizeof(w), 3);
	assert_int_equal(req(t, T_OUT, 64, w, sizeof(w), false), S_OK);
	assert_true(unclean_pages(t->path) > 0); /* in the page cache only */
	assert_int_equal(req(t, T_FLUSH, 0, NULL, 0, true), S_OK);
	assert_int_equal(unclean_pages(t->path), 0);
}

/* A driver that declines FLUSH on a writeback drive has a write-through device: each write
 * is durable when it completes, and a FLUSH it sends anyway is UNSUPP. */
static void test_flush_declined(void **state)
{
	struct fx *t = *state;
	static uint8_t w[64 * KiB];

	skip_without_cachestat(t->path);
	create_started(t, DISK_CACHE_WRITEBACK, FEATURES_NO_FLUSH);
	fill_pattern(w, sizeof(w), 4);
	assert_int_equal(req(t, T_OUT, 64, w, sizeof(w), false), S_OK);
	assert_int_equal(unclean_pages(t->path), 0);
	assert_int_equal(req(t, T_FLUSH, 0, NULL, 0, true), S_UNSUPP);
}

/* cache=unsafe: FLUSH is not offered (the driver treats the cache as write-through and
 * sends none), a driver cannot take it, and a FLUSH that comes anyway is UNSUPP: the device
 * never answers OK to a flush it does not do. Writes stay in the page cache. */
static void test_flush_unsafe(void **state)
{
	struct fx *t = *state;
	static uint8_t w[64 * KiB];
	struct virtio_blk_stats st;

	skip_without_cachestat(t->path);
	create_started(t, DISK_CACHE_UNSAFE, FEATURES_NO_FLUSH);
	assert_false(t->d->host_features & BIT_ULL(F_FLUSH));
	fill_pattern(w, sizeof(w), 5);
	assert_int_equal(req(t, T_OUT, 64, w, sizeof(w), false), S_OK);
	assert_true(unclean_pages(t->path) > 0);
	assert_int_equal(req(t, T_FLUSH, 0, NULL, 0, true), S_UNSUPP);
	assert_true(unclean_pages(t->path) > 0);
	virtio_blk_get_stats(t->d, &st);
	assert_int_equal(st.flush_reqs, 0);
	assert_int_equal(st.bad_requests, 1);
	/* FLUSH is not among the features a driver may take. */
	assert_int_equal(fd_start(&t->f, t->d, 0, 128, FEATURES_NO_FLUSH | BIT_ULL(F_FLUSH)) &
			     VIRTIO_STATUS_FEATURES_OK,
			 0);
}

/* PATCH /drives on a writeback drive: what the guest wrote to the old image, and saw
 * complete without flushing it, is written back before the old file is let go (its next
 * FLUSH goes to the new image). */
static void test_swap_syncs_old_image(void **state)
{
	struct fx *t = *state;
	static uint8_t w[64 * KiB], h[64 * KiB];
	char other[64], err[256];

	skip_without_cachestat(t->path);
	create_started(t, DISK_CACHE_WRITEBACK, FEATURES_NO_FLUSH | BIT_ULL(F_FLUSH));
	make_image(other, DISK_SIZE, 9);
	fill_pattern(w, sizeof(w), 6);
	assert_int_equal(req(t, T_OUT, 128, w, sizeof(w), false), S_OK);
	assert_true(unclean_pages(t->path) > 0);
	assert_int_equal(virtio_blk_set_path(t->d, other, err, sizeof(err)), 0);
	assert_int_equal(unclean_pages(t->path), 0);
	int fd = open(t->path, O_RDONLY);
	assert_int_equal(pread(fd, h, sizeof(h), 128 * 512), (ssize_t)sizeof(h));
	close(fd);
	assert_memory_equal(h, w, sizeof(w));
	unlink(other);
}

/* ---- 2. long work in bounded passes ------------------------------------------------------ */

struct zero_run {
	struct disk disk;
	struct disk_req r;
	bool done;
	unsigned passes, others;  /* disk_reap calls; the other fd's handler calls */
	unsigned others_at_first; /* others when the first reap pass ran */
	int64_t longest_us;	  /* the longest disk_reap */
};

static void zero_done(void *opaque, struct disk_req *r)
{
	struct zero_run *z = opaque;

	z->done = true;
}

static void zero_reap(void *opaque, uint32_t events)
{
	struct zero_run *z = opaque;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	disk_reap(&z->disk);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	if (us > z->longest_us)
		z->longest_us = us;
	if (!z->passes++)
		z->others_at_first = z->others;
}

static void other_ready(void *opaque, uint32_t events)
{
	struct zero_run *z = opaque;

	z->others++;
}

/* A WRITE_ZEROES of 32 MiB on a file system without fallocate's zero-range or punch-hole
 * modes (what the backend records when it meets one; ext4 has both, so the test sets the two
 * flags): zeroes are written in passes of at most 4 MiB, one per event-loop round, and
 * another fd is served in between. The range reads back as zeroes, the data around stays. */
static void test_write_zeroes_passes(void **state)
{
	struct fx *t = *state;
	enum { SIZE = 40 * MiB, OFF = 1 * MiB, LEN = 32 * MiB };
	static struct zero_run z;
	static uint8_t buf[1 * MiB], want[1 * MiB];
	char err[256];
	int fd, efd;

	unlink(t->path);
	make_image(t->path, SIZE, 11);
	memset(&z, 0, sizeof(z));
	fd = open(t->path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(disk_open_fd(&z.disk, fd, "zero", false, t->engine, DISK_CACHE_WRITEBACK,
				      err, sizeof(err)),
			 0);
	z.disk.complete = zero_done;
	z.disk.opaque = &z;
	z.disk.no_zero_range = z.disk.no_punch = true;
	assert_int_equal(event_add(&t->ev, z.disk.event_fd, EPOLLIN | EPOLLET, zero_reap, &z), 0);
	efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK); /* always readable: level-triggered */
	assert_true(efd >= 0);
	assert_int_equal(event_add(&t->ev, efd, EPOLLIN, other_ready, &z), 0);

	z.r = (struct disk_req){.op = DISK_WRITE_ZEROES, .offset = OFF, .len = LEN};
	disk_submit(&z.disk, &z.r);
	disk_commit(&z.disk);
	assert_false(z.done); /* one bounded pass inside the submit, not the whole range */
	assert_true(z.r.done > 0 && z.r.done <= DISK_ZERO_PASS_BYTES);
	for (int i = 0; i < 2000 && !z.done; i++)
		event_loop_run_once(&t->ev, 100);
	assert_true(z.done);
	assert_int_equal(z.r.result, 0);
	assert_int_equal(z.disk.inflight, 0);
	/* At least LEN / 4 MiB - 1 more passes, and the other fd was served between the first
	 * and the last of them. A pass stops after 2 ms at its next 1 MiB write: allow a loaded
	 * host 50 ms. */
	assert_true(z.passes >= LEN / DISK_ZERO_PASS_BYTES - 1);
	assert_true(z.others > z.others_at_first);
	assert_true(z.longest_us < 50000);
	print_message("write-zeroes %u MiB: %u passes after the submit, longest %lld us\n",
		      (unsigned)(LEN / MiB), z.passes, (long long)z.longest_us);

	/* Cancel (a device reset): a request still in its passes completes with -ECANCELED. */
	z.done = false;
	z.r = (struct disk_req){.op = DISK_WRITE_ZEROES_UNMAP, .offset = 0, .len = LEN};
	disk_submit(&z.disk, &z.r);
	assert_false(z.done);
	disk_cancel_zeroing(&z.disk);
	assert_true(z.done);
	assert_int_equal(z.r.result, -ECANCELED);
	assert_int_equal(z.disk.inflight, 0);

	event_del(&t->ev, z.disk.event_fd);
	event_del(&t->ev, efd);
	close(efd);
	disk_close(&z.disk);
	/* Zeroes where asked (the first request: [OFF, OFF + LEN)), the pattern after it. */
	fd = open(t->path, O_RDONLY);
	assert_true(fd >= 0);
	memset(want, 0, sizeof(want));
	for (uint64_t off = OFF; off < OFF + LEN; off += sizeof(buf)) {
		assert_int_equal(pread(fd, buf, sizeof(buf), (off_t)off), (ssize_t)sizeof(buf));
		assert_memory_equal(buf, want, sizeof(buf));
	}
	fill_pattern(want, sizeof(want), 11 + OFF + LEN);
	assert_int_equal(pread(fd, buf, sizeof(buf), OFF + LEN), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, want, sizeof(buf));
	close(fd);
}

/* ---- 2b. a reset while the backing store does not answer ---------------------------------- */

/* The device's fd for path (its image), found in /proc/self/fd. */
static int image_fd(const char *path)
{
	char link[64], target[PATH_MAX];

	for (int fd = 3; fd < 1024; fd++) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);

		if (n < 0)
			continue;
		target[n] = 0;
		if (!strcmp(target, path))
			return fd;
	}
	return -1;
}

/* io_uring: a read that never completes (the image fd is swapped for an empty pipe under the
 * device) is in flight when the driver resets the device. The reset returns within its limit
 * (500 ms), the status reads NEEDS_RESET and not 0, so the driver does not reuse the buffer,
 * and nothing is processed. When the read does complete, it lands in the buffer, nothing
 * goes to the used ring, and the reset ends (status 0); the device then works again. */
static void test_reset_hung_backend(void **state)
{
	struct fx *t = *state;
	static uint8_t data[4096], got[512];
	struct timespec t0;
	uint32_t id, len;
	gpa_t sg, dg, sg2;
	int p[2], img, saved;

	watchdog(20);
	create_started(t, DISK_CACHE_WRITEBACK, FEATURES_NO_FLUSH | BIT_ULL(F_FLUSH));
	img = image_fd(t->path);
	assert_true(img >= 0);
	saved = dup(img);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(p[0], img), img);

	fd_reset_heap(&t->f);
	post(t, T_IN, 0, NULL, 512, true, &sg, &dg);
	fd_kick(&t->f);
	for (int i = 0; i < 5; i++)
		event_loop_run_once(&t->ev, 10);
	assert_false(fd_used(&t->f, &id, &len)); /* in flight, and stays so */

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&t->d->lock);
	virtio_set_status(t->d, 0);
	pthread_mutex_unlock(&t->d->lock);
	int64_t ms = ms_since(&t0);
	print_message("reset with a hung read: returned after %lld ms\n", (long long)ms);
	assert_true(ms >= 400 && ms < 1500);
	assert_true(t->d->reset_pending);
	assert_int_equal(t->d->status & VIRTIO_STATUS_NEEDS_RESET, VIRTIO_STATUS_NEEDS_RESET);
	/* The driver waits for 0; writing 0 again waits for nothing. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_lock(&t->d->lock);
	virtio_set_status(t->d, 0);
	pthread_mutex_unlock(&t->d->lock);
	assert_true(ms_since(&t0) < 100);
	assert_true(t->d->status != 0);
	/* Nothing is processed meanwhile, and a driver cannot bring the device up again. */
	post(t, T_IN, 8, NULL, 512, true, &sg2, NULL);
	fd_kick(&t->f);
	for (int i = 0; i < 5; i++)
		event_loop_run_once(&t->ev, 10);
	assert_false(fd_used(&t->f, &id, &len));
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, sg), S_NONE);
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, sg2), S_NONE);
	pthread_mutex_lock(&t->d->lock);
	virtio_set_status(t->d, VIRTIO_STATUS_ACKNOWLEDGE);
	pthread_mutex_unlock(&t->d->lock);
	assert_true(t->d->reset_pending);

	/* The store answers at last: the read lands in the guest's buffer (which is why the
	 * driver must not have reused it), no used entry, and the reset is done. */
	assert_int_equal(dup2(saved, img), img); /* the image again, for what follows */
	close(saved);
	fill_pattern(data, sizeof(data), 42);
	assert_int_equal(write(p[1], data, sizeof(data)), (ssize_t)sizeof(data));
	for (int i = 0; i < 100 && t->d->reset_pending; i++)
		event_loop_run_once(&t->ev, 10);
	assert_false(t->d->reset_pending);
	assert_int_equal(t->d->status, 0);
	assert_false(fd_used(&t->f, &id, &len));
	assert_memory_equal(fd_hva(&t->f, dg), data, 512);
	close(p[0]);
	close(p[1]);

	/* A new driver start: the device works. */
	start(t, FEATURES_NO_FLUSH | BIT_ULL(F_FLUSH));
	assert_int_equal(req(t, T_IN, 0, got, sizeof(got), true), S_OK);
	fill_pattern(data, sizeof(data), 7);
	assert_memory_equal(got, data, sizeof(got));
}

/* ---- 3. safe opens ------------------------------------------------------------------------ */

/* A FIFO in the image's place: InstanceStart (virtio_blk_create) and PATCH /drives
 * (virtio_blk_set_path) fail at once with a message naming the disk and the path, read-only
 * (where open(2) itself would wait for a writer) as well as read-write. */
static void test_fifo_image(void **state)
{
	struct fx *t = *state;
	char fifo[80], err[256], want[256];
	struct timespec t0;

	watchdog(10);
	snprintf(fifo, sizeof(fifo), "%s.fifo", t->path);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(want, sizeof(want), "disk 'disk0': %s: not a regular file or block device", fifo);
	for (int ro = 1; ro >= 0; ro--) {
		struct virtio_env env = {.mem = &t->f.mem, .ev = &t->ev};
		struct disk_config c = {
		    .id = "disk0", .path = fifo, .readonly = ro, .engine = t->engine};
		struct virtio_dev *d = NULL;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(virtio_blk_create(&env, &c, &d, err, sizeof(err)), -EMEDIUMTYPE);
		assert_true(ms_since(&t0) < 1000);
		assert_null(d);
		assert_string_equal(err, want);

		/* The same path given to a running drive: it keeps its image. */
		assert_int_equal(blk_fx_create(t, DISK_CACHE_WRITEBACK, ro, err, sizeof(err)), 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(virtio_blk_set_path(t->d, fifo, err, sizeof(err)), -EMEDIUMTYPE);
		assert_true(ms_since(&t0) < 1000);
		assert_string_equal(err, want);
		start(t, FEATURES_NO_FLUSH | (ro ? BIT_ULL(5) : 0));
		uint8_t got[512], img[512];
		assert_int_equal(req(t, T_IN, 0, got, sizeof(got), true), S_OK);
		fill_pattern(img, sizeof(img), 7);
		assert_memory_equal(got, img, sizeof(got));
		virtio_dev_destroy(t->d);
		t->d = NULL;
	}
	unlink(fifo);
}

#define BOTH(fn)                                                                                   \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &fx_sync),                   \
	    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &fx_uring)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_flush_writeback),
	    BOTH(test_flush_declined),
	    BOTH(test_flush_unsafe),
	    BOTH(test_swap_syncs_old_image),
	    BOTH(test_write_zeroes_passes),
	    BOTH(test_fifo_image),
	    /* The sync engine has nothing in flight at a reset: io_uring only. */
	    cmocka_unit_test_prestate_setup_teardown(test_reset_hung_backend, setup, teardown,
						     &fx_uring),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
