/* test_blk.c: virtio-blk requests against a temp file, every error status, both disk engines. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "blk_fixture.h"
#include "util/log.h"
#include "vmm/event.h"

#define DISK_SIZE (1 * MiB)
#define SECTORS (DISK_SIZE / 512)

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2
#define S_NONE 0xee /* what the test puts in the status byte beforehand */

#define F_RO 5
#define F_DISCARD 13
#define F_WRITE_ZEROES 14
#define BASE_FEATURES                                                                              \
	(BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(2) | BIT_ULL(6) | BIT_ULL(9) |                      \
	 BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) | BIT_ULL(VIRTIO_RING_F_EVENT_IDX))

struct hdr {
	uint32_t type, ioprio;
	uint64_t sector;
};

struct dwz {
	uint64_t sector;
	uint32_t num_sectors, flags;
};

static struct fx fx_sync = {.engine = DISK_ENGINE_SYNC};
static struct fx fx_uring = {.engine = DISK_ENGINE_URING};

/* ---- fixture ---------------------------------------------------------------------------- */

static int make_image(struct fx *t)
{
	static uint8_t buf[DISK_SIZE];
	int fd;

	strcpy(t->path, "/tmp/kiln-test-blk-XXXXXX");
	fd = mkstemp(t->path);
	if (fd < 0)
		return -1;
	fill_pattern(buf, sizeof(buf), 7);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		return -1;
	close(fd);
	return 0;
}

static int create(struct fx *t, bool readonly, uint64_t features)
{
	char err[256] = "";
	int ret = blk_fx_create(t, DISK_CACHE_WRITEBACK, readonly, err, sizeof(err));

	if (ret) {
		print_error("virtio_blk_create: %s\n", err);
		return ret;
	}
	if (readonly)
		features |= BIT_ULL(F_RO);
	assert_int_equal(fd_start(&t->f, t->d, 0, 128, features) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	return 0;
}

static int setup(void **state)
{
	struct fx *t = *state;

	log_set_level(LOG_ERROR);
	if (make_image(t) || fd_init(&t->f) || event_loop_init(&t->ev))
		return -1;
	if (create(t, false, BASE_FEATURES | BIT_ULL(F_DISCARD) | BIT_ULL(F_WRITE_ZEROES)))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	blk_fx_teardown(*state);
	return 0;
}

static void skip_without_engine(struct fx *t)
{
	if (t->engine == DISK_ENGINE_URING && strcmp(virtio_blk_engine(t->d), "io_uring"))
		skip(); /* io_uring_queue_init failed here (seccomp, old kernel) */
}


/* One well-formed request: header, data (readable for OUT-like types, else writable),
 * status. Returns the status byte. */
static uint8_t req(struct fx *t, uint32_t type, uint64_t sector, void *data, uint32_t len,
		   bool data_in, uint32_t *used)
{
	struct hdr h = {.type = type, .sector = sector};
	struct fd_buf b[3];
	unsigned n = 0;
	gpa_t hg, dg = 0, sg;

	fd_reset_heap(&t->f);
	hg = fd_alloc(&t->f, sizeof(h));
	memcpy(fd_hva(&t->f, hg), &h, sizeof(h));
	b[n++] = (struct fd_buf){hg, sizeof(h), false};
	if (len) {
		dg = fd_alloc(&t->f, len);
		if (!data_in)
			memcpy(fd_hva(&t->f, dg), data, len);
		else
			memset(fd_hva(&t->f, dg), 0xaa, len);
		b[n++] = (struct fd_buf){dg, len, data_in};
	}
	sg = fd_alloc(&t->f, 1);
	*(uint8_t *)fd_hva(&t->f, sg) = S_NONE;
	b[n++] = (struct fd_buf){sg, 1, true};
	uint16_t head = fd_chain(&t->f, b, n);
	fd_submit(&t->f, head);
	uint32_t u = blk_fx_complete(t, head);
	if (used)
		*used = u;
	if (data_in && len)
		memcpy(data, fd_hva(&t->f, dg), len);
	return *(uint8_t *)fd_hva(&t->f, sg);
}

static void host_read(struct fx *t, uint64_t off, void *buf, size_t len)
{
	int fd = open(t->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static uint64_t host_blocks(struct fx *t)
{
	struct stat st;

	assert_int_equal(stat(t->path, &st), 0);
	return (uint64_t)st.st_blocks;
}

static bool needs_reset(struct fx *t) { return t->d->status & VIRTIO_STATUS_NEEDS_RESET; }

/* ---- tests ------------------------------------------------------------------------------ */

static void test_round_trip(void **state)
{
	struct fx *t = *state;
	static uint8_t w[8192], r[8192], h[8192];
	struct virtio_blk_stats st;
	uint32_t used;

	skip_without_engine(t);
	fill_pattern(w, sizeof(w), 99);
	assert_int_equal(req(t, T_OUT, 16, w, sizeof(w), false, &used), S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(req(t, T_IN, 16, r, sizeof(r), true, &used), S_OK);
	assert_int_equal(used, sizeof(r) + 1);
	assert_memory_equal(r, w, sizeof(w));
	host_read(t, 16 * 512, h, sizeof(h)); /* the write is in the host file */
	assert_memory_equal(h, w, sizeof(w));
	/* The last sector, and data the image had before. */
	assert_int_equal(req(t, T_IN, SECTORS - 1, r, 512, true, NULL), S_OK);
	host_read(t, DISK_SIZE - 512, h, 512);
	assert_memory_equal(r, h, 512);
	/* Zero-length read and write: nothing to do, OK. */
	assert_int_equal(req(t, T_IN, 0, NULL, 0, true, NULL), S_OK);
	assert_int_equal(req(t, T_FLUSH, 0, NULL, 0, true, NULL), S_OK);
	virtio_blk_get_stats(t->d, &st);
	assert_int_equal(st.write_reqs, 1);
	assert_int_equal(st.read_reqs, 3);
	assert_int_equal(st.flush_reqs, 1);
	assert_int_equal(st.write_bytes, sizeof(w));
	assert_int_equal(st.read_bytes, sizeof(r) + 512);
	assert_int_equal(st.io_errors + st.bad_requests, 0);
	assert_true(t->f.queue_irqs > 0);
	assert_false(needs_reset(t));
}

/* Data split over many segments, through an indirect table. */
static void test_scatter_indirect(void **state)
{
	struct fx *t = *state;
	static uint8_t w[64 * 512], h[64 * 512];
	struct fd_buf b[66];
	struct hdr hd = {.type = T_OUT, .sector = 100};

	skip_without_engine(t);
	fill_pattern(w, sizeof(w), 5);
	fd_reset_heap(&t->f);
	b[0] = (struct fd_buf){fd_alloc(&t->f, 16), 16, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
	for (int i = 0; i < 64; i++) {
		/* odd sizes: 512-byte sectors spread over uneven segments */
		b[1 + i] = (struct fd_buf){fd_alloc(&t->f, 512), 512, false};
		memcpy(fd_hva(&t->f, b[1 + i].gpa), w + 512 * i, 512);
	}
	b[65] = (struct fd_buf){fd_alloc(&t->f, 1), 1, true};
	uint16_t head = fd_chain_indirect(&t->f, b, 66);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), 1);
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, b[65].gpa), S_OK);
	host_read(t, 100 * 512, h, sizeof(h));
	assert_memory_equal(h, w, sizeof(w));
}

/* Header and data in one buffer, data and status in one buffer: the device cuts the data
 * out of the chain's buffers in place. */
static void test_shared_buffers(void **state)
{
	struct fx *t = *state;
	static uint8_t w[3 * 512], h[3 * 512];
	struct hdr hd = {.type = T_OUT, .sector = 40};
	struct fd_buf b[3];
	uint16_t head;

	skip_without_engine(t);
	fill_pattern(w, sizeof(w), 77);
	fd_reset_heap(&t->f);
	/* OUT: [header + 1 sector] [2 sectors] [status] */
	b[0] = (struct fd_buf){fd_alloc(&t->f, 16 + 512), 16 + 512, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
	memcpy(fd_hva(&t->f, b[0].gpa + 16), w, 512);
	b[1] = (struct fd_buf){fd_alloc(&t->f, 1024), 1024, false};
	memcpy(fd_hva(&t->f, b[1].gpa), w + 512, 1024);
	b[2] = (struct fd_buf){fd_alloc(&t->f, 1), 1, true};
	head = fd_chain(&t->f, b, 3);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), 1);
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, b[2].gpa), S_OK);
	host_read(t, 40 * 512, h, sizeof(h));
	assert_memory_equal(h, w, sizeof(w));
	/* IN: [header] [1 sector] [2 sectors + status] */
	hd.type = T_IN;
	fd_reset_heap(&t->f);
	b[0] = (struct fd_buf){fd_alloc(&t->f, 16), 16, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
	b[1] = (struct fd_buf){fd_alloc(&t->f, 512), 512, true};
	b[2] = (struct fd_buf){fd_alloc(&t->f, 1025), 1025, true};
	memset(fd_hva(&t->f, b[1].gpa), 0, 512);
	memset(fd_hva(&t->f, b[2].gpa), 0, 1025);
	head = fd_chain(&t->f, b, 3);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), sizeof(w) + 1);
	assert_int_equal(((uint8_t *)fd_hva(&t->f, b[2].gpa))[1024], S_OK);
	assert_memory_equal(fd_hva(&t->f, b[1].gpa), w, 512);
	assert_memory_equal(fd_hva(&t->f, b[2].gpa), w + 512, 1024);
}

/* The longest chains seg_max allows (128 buffers, through an indirect table), with the
 * header sharing the first data buffer (OUT) or the status byte the last one (IN): 127 data
 * segments each, more than a slot keeps inline. */
static void test_max_segments(void **state)
{
	struct fx *t = *state;
	static uint8_t w[127 * 512], h[127 * 512];
	struct hdr hd = {.type = T_OUT, .sector = 200};
	struct fd_buf b[128];
	uint32_t id, len;

	skip_without_engine(t);
	fill_pattern(w, sizeof(w), 31);
	fd_reset_heap(&t->f);
	/* OUT: [header + sector 0] [sector 1] ... [sector 126] [status] */
	b[0] = (struct fd_buf){fd_alloc(&t->f, 16 + 512), 16 + 512, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
	memcpy(fd_hva(&t->f, b[0].gpa + 16), w, 512);
	for (int i = 1; i < 127; i++) {
		b[i] = (struct fd_buf){fd_alloc(&t->f, 512), 512, false};
		memcpy(fd_hva(&t->f, b[i].gpa), w + 512 * i, 512);
	}
	b[127] = (struct fd_buf){fd_alloc(&t->f, 1), 1, true};
	*(uint8_t *)fd_hva(&t->f, b[127].gpa) = S_NONE;
	uint16_t head = fd_chain_indirect(&t->f, b, 128);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), 1);
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, b[127].gpa), S_OK);
	host_read(t, 200 * 512, h, sizeof(h));
	assert_memory_equal(h, w, sizeof(w));

	/* IN: [header] [sector 0] ... [sector 125] [sector 126 + status] */
	hd.type = T_IN;
	fd_reset_heap(&t->f);
	b[0] = (struct fd_buf){fd_alloc(&t->f, 16), 16, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
	for (int i = 1; i < 128; i++) {
		uint32_t n = i == 127 ? 513 : 512;

		b[i] = (struct fd_buf){fd_alloc(&t->f, n), n, true};
		memset(fd_hva(&t->f, b[i].gpa), 0, n);
	}
	*(uint8_t *)fd_hva(&t->f, b[127].gpa + 512) = S_NONE;
	head = fd_chain_indirect(&t->f, b, 128);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), sizeof(w) + 1);
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, b[127].gpa + 512), S_OK);
	for (int i = 0; i < 127; i++)
		assert_memory_equal(fd_hva(&t->f, b[1 + i].gpa), w + 512 * i, 512);
	assert_false(fd_used(&t->f, &id, &len));
	assert_false(needs_reset(t));
}

/* A header split over two buffers is put together. */
static void test_split_header(void **state)
{
	struct fx *t = *state;
	static uint8_t r[1024], h[1024];
	struct hdr hd = {.type = T_IN, .sector = 9};
	struct fd_buf b[4];

	skip_without_engine(t);
	fd_reset_heap(&t->f);
	b[0] = (struct fd_buf){fd_alloc(&t->f, 8), 8, false};
	b[1] = (struct fd_buf){fd_alloc(&t->f, 8), 8, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &hd, 8);
	memcpy(fd_hva(&t->f, b[1].gpa), (uint8_t *)&hd + 8, 8);
	b[2] = (struct fd_buf){fd_alloc(&t->f, sizeof(r)), sizeof(r), true};
	b[3] = (struct fd_buf){fd_alloc(&t->f, 1), 1, true};
	*(uint8_t *)fd_hva(&t->f, b[3].gpa) = S_NONE;
	uint16_t head = fd_chain(&t->f, b, 4);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), sizeof(r) + 1);
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, b[3].gpa), S_OK);
	memcpy(r, fd_hva(&t->f, b[2].gpa), sizeof(r));
	host_read(t, 9 * 512, h, sizeof(h));
	assert_memory_equal(r, h, sizeof(r));
}

/* Many requests made available with one kick, each in a slot of its own: every one reads
 * its own sectors into its own buffer. Then again, so that freed slots are taken again. */
static void test_many_in_flight(void **state)
{
	struct fx *t = *state;
	enum { N = 40 };
	static uint8_t h[N][2048];
	gpa_t data[N], status[N];
	uint32_t id, len;

	skip_without_engine(t);
	for (int round = 0; round < 2; round++) {
		fd_reset_heap(&t->f);
		t->f.next_desc = 0;
		for (int i = 0; i < N; i++) {
			struct hdr hd = {.type = T_IN, .sector = (uint64_t)(i * 7 + round * 300)};
			struct fd_buf b[3];

			b[0] = (struct fd_buf){fd_alloc(&t->f, 16), 16, false};
			memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
			data[i] = fd_alloc(&t->f, 2048);
			memset(fd_hva(&t->f, data[i]), 0, 2048);
			b[1] = (struct fd_buf){data[i], 2048, true};
			status[i] = fd_alloc(&t->f, 1);
			*(uint8_t *)fd_hva(&t->f, status[i]) = S_NONE;
			b[2] = (struct fd_buf){status[i], 1, true};
			fd_submit(&t->f, fd_chain(&t->f, b, 3));
			host_read(t, hd.sector * 512, h[i], 2048);
		}
		fd_kick(&t->f);
		unsigned done = 0;
		for (int k = 0; k < 500 && done < N; k++) {
			while (fd_used(&t->f, &id, &len)) {
				assert_true(id % 3 == 0 && id / 3 < N);
				assert_int_equal(len, 2048 + 1);
				done++;
			}
			if (done < N)
				event_loop_run_once(&t->ev, 10);
		}
		assert_int_equal(done, N);
		for (int i = 0; i < N; i++) {
			assert_int_equal(*(uint8_t *)fd_hva(&t->f, status[i]), S_OK);
			assert_memory_equal(fd_hva(&t->f, data[i]), h[i], 2048);
		}
	}
	assert_false(needs_reset(t));
}

/* More requests made available than the device has slots, with one kick: when the last
 * slot is taken the rest wait in the ring, and the device takes them as slots come free,
 * even when every request completed inside the pass that started it (reads from the page
 * cache through io_uring) and no further kick or completion signal comes. */
static void test_more_than_slots(void **state)
{
	struct fx *t = *state;
	enum { N = 200 }; /* slots: 128 */
	struct hdr hd = {.type = T_IN, .sector = 3};
	uint8_t h[512];
	struct fd_buf b[3];
	uint32_t id, len;

	skip_without_engine(t);
	assert_int_equal(fd_start(&t->f, t->d, 0, 256, BASE_FEATURES) & VIRTIO_STATUS_DRIVER_OK,
			 VIRTIO_STATUS_DRIVER_OK);
	while (event_loop_run_once(&t->ev, 0) > 0)
		; /* the kick DRIVER_OK sent: nothing else may wake the device up */
	fd_reset_heap(&t->f);
	b[0] = (struct fd_buf){fd_alloc(&t->f, 16), 16, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
	b[1] = (struct fd_buf){fd_alloc(&t->f, 512), 512, true};
	b[2] = (struct fd_buf){fd_alloc(&t->f, 1), 1, true};
	/* One chain made available N times: the device treats each as a request of its own. */
	uint16_t head = fd_chain(&t->f, b, 3);
	for (int i = 0; i < N; i++)
		fd_submit(&t->f, head);
	fd_kick(&t->f);
	unsigned done = 0;
	for (int k = 0; k < 100 && done < N; k++) {
		while (fd_used(&t->f, &id, &len)) {
			assert_int_equal(id, head);
			assert_int_equal(len, 512 + 1);
			done++;
		}
		if (done < N)
			event_loop_run_once(&t->ev, 10);
	}
	assert_int_equal(done, N);
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, b[2].gpa), S_OK);
	host_read(t, 3 * 512, h, sizeof(h));
	assert_memory_equal(fd_hva(&t->f, b[1].gpa), h, sizeof(h));
	assert_false(needs_reset(t));
}

static void test_bad_requests(void **state)
{
	struct fx *t = *state;
	static uint8_t buf[1024];
	struct virtio_blk_stats st;

	skip_without_engine(t);
	/* Misaligned length, sector ranges past the end (and overflowing). */
	assert_int_equal(req(t, T_IN, 0, buf, 100, true, NULL), S_IOERR);
	assert_int_equal(req(t, T_OUT, 0, buf, 513, false, NULL), S_IOERR);
	assert_int_equal(req(t, T_IN, SECTORS, buf, 512, true, NULL), S_IOERR);
	assert_int_equal(req(t, T_IN, SECTORS - 1, buf, 1024, true, NULL), S_IOERR);
	assert_int_equal(req(t, T_OUT, UINT64_MAX, buf, 512, false, NULL), S_IOERR);
	assert_int_equal(req(t, T_OUT, UINT64_MAX / 512 + 1, buf, 512, false, NULL), S_IOERR);
	assert_int_equal(req(t, T_IN, (UINT64_MAX - 1) / 512, buf, 512, true, NULL), S_IOERR);
	/* Unknown and unsupported types. */
	assert_int_equal(req(t, 99, 0, NULL, 0, true, NULL), S_UNSUPP);
	assert_int_equal(req(t, 10 /* GET_LIFETIME */, 0, buf, 16, true, NULL), S_UNSUPP);
	virtio_blk_get_stats(t->d, &st);
	assert_int_equal(st.bad_requests, 9);
	assert_int_equal(st.read_reqs + st.write_reqs, 0);
	assert_false(needs_reset(t));
	/* The device still works. */
	assert_int_equal(req(t, T_IN, 0, buf, 512, true, NULL), S_OK);
}

static void test_short_header(void **state)
{
	struct fx *t = *state;
	struct fd_buf b[2];

	skip_without_engine(t);
	fd_reset_heap(&t->f);
	b[0] = (struct fd_buf){fd_alloc(&t->f, 8), 8, false}; /* 8 of 16 header bytes */
	b[1] = (struct fd_buf){fd_alloc(&t->f, 1), 1, true};
	*(uint8_t *)fd_hva(&t->f, b[1].gpa) = S_NONE;
	uint16_t head = fd_chain(&t->f, b, 2);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), 1);
	assert_int_equal(*(uint8_t *)fd_hva(&t->f, b[1].gpa), S_IOERR);
	assert_false(needs_reset(t));
}

/* No writable byte for the status: nothing can report the error, so the device returns the
 * chain empty and goes NEEDS_RESET with a config interrupt. */
static void expect_reset_without_status(struct fx *t, bool status_readonly)
{
	struct hdr h = {.type = T_OUT, .sector = 0};
	struct fd_buf b[3];
	unsigned n = 0;

	fd_reset_heap(&t->f);
	b[n++] = (struct fd_buf){fd_alloc(&t->f, 16), 16, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &h, 16);
	b[n++] = (struct fd_buf){fd_alloc(&t->f, 512), 512, false};
	if (status_readonly)
		b[n++] = (struct fd_buf){fd_alloc(&t->f, 1), 1, false};
	unsigned irqs = t->f.config_irqs;
	uint16_t head = fd_chain(&t->f, b, n);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), 0);
	assert_true(needs_reset(t));
	assert_int_equal(t->f.config_irqs, irqs + 1);
	/* Nothing more is processed until the driver resets the device. */
	uint8_t buf[512];
	uint32_t id, len;
	fd_submit(&t->f, fd_chain(&t->f, b, n));
	fd_kick(&t->f);
	assert_false(fd_used(&t->f, &id, &len));
	/* A reset brings it back. */
	assert_int_equal(fd_start(&t->f, t->d, 0, 128, BASE_FEATURES) & VIRTIO_STATUS_NEEDS_RESET,
			 0);
	assert_int_equal(req(t, T_IN, 0, buf, 512, true, NULL), S_OK);
}

static void test_no_status_byte(void **state)
{
	skip_without_engine(*state);
	expect_reset_without_status(*state, false);
}

static void test_status_readonly(void **state)
{
	skip_without_engine(*state);
	expect_reset_without_status(*state, true);
}

/* More segments than seg_max promised. */
static void test_too_many_segments(void **state)
{
	struct fx *t = *state;
	struct fd_buf b[200];
	struct hdr h = {.type = T_IN};

	skip_without_engine(t);
	fd_reset_heap(&t->f);
	b[0] = (struct fd_buf){fd_alloc(&t->f, 16), 16, false};
	memcpy(fd_hva(&t->f, b[0].gpa), &h, 16);
	for (int i = 1; i < 200; i++)
		b[i] = (struct fd_buf){fd_alloc(&t->f, 512), 512, true};
	b[199].len = 1;
	uint16_t head = fd_chain_indirect(&t->f, b, 200);
	fd_submit(&t->f, head);
	assert_int_equal(blk_fx_complete(t, head), 0);
	assert_true(needs_reset(t));
}

static void test_readonly(void **state)
{
	struct fx *t = *state;
	static uint8_t buf[512], before[512], after[512];
	struct dwz seg = {.sector = 0, .num_sectors = 1};

	virtio_dev_destroy(t->d);
	assert_int_equal(create(t, true, BASE_FEATURES), 0);
	skip_without_engine(t);
	host_read(t, 0, before, sizeof(before));
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(req(t, T_OUT, 0, buf, 512, false, NULL), S_IOERR);
	assert_int_equal(req(t, T_DISCARD, 0, &seg, sizeof(seg), false, NULL), S_IOERR);
	assert_int_equal(req(t, T_WRITE_ZEROES, 0, &seg, sizeof(seg), false, NULL), S_IOERR);
	assert_int_equal(req(t, T_IN, 0, buf, 512, true, NULL), S_OK);
	assert_int_equal(req(t, T_FLUSH, 0, NULL, 0, true, NULL), S_OK);
	host_read(t, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	assert_memory_equal(buf, before, sizeof(before));
	/* RO is offered; DISCARD / WRITE_ZEROES are not, so a driver cannot even ask. */
	assert_true(t->d->host_features & BIT_ULL(F_RO));
	assert_false(t->d->host_features & (BIT_ULL(F_DISCARD) | BIT_ULL(F_WRITE_ZEROES)));
}

static void test_get_id(void **state)
{
	struct fx *t = *state;
	uint8_t id[24];
	uint32_t used;

	skip_without_engine(t);
	/* Default: the disk id, zero padded. */
	memset(id, 0x11, sizeof(id));
	assert_int_equal(req(t, T_GET_ID, 0, id, 20, true, &used), S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(id, "disk0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
	/* A full 20-byte serial has no NUL; a short buffer gets what fits. */
	virtio_dev_destroy(t->d);
	memset(&t->cfg, 0, sizeof(t->cfg));
	struct virtio_env env = {.mem = &t->f.mem, .ev = &t->ev};
	char err[256];
	snprintf(t->cfg.id, sizeof(t->cfg.id), "x");
	memcpy(t->cfg.serial, "ABCDEFGHIJKLMNOPQRST", 21);
	t->cfg.path = t->path;
	t->cfg.engine = t->engine;
	assert_int_equal(virtio_blk_create(&env, &t->cfg, &t->d, err, sizeof(err)), 0);
	fd_start(&t->f, t->d, 0, 128, BASE_FEATURES);
	memset(id, 0x11, sizeof(id));
	assert_int_equal(req(t, T_GET_ID, 0, id, 24, true, &used), S_OK);
	assert_int_equal(used, 21);
	assert_memory_equal(id, "ABCDEFGHIJKLMNOPQRST", 20);
	assert_int_equal(id[20], 0xaa); /* beyond the 20 bytes: untouched */
	assert_int_equal(req(t, T_GET_ID, 0, id, 4, true, &used), S_OK);
	assert_int_equal(used, 5);
	assert_memory_equal(id, "ABCD", 4);
}

static void test_discard_write_zeroes(void **state)
{
	struct fx *t = *state;
	static uint8_t buf[64 * KiB], zero[64 * KiB];
	struct dwz two[2] = {{0, 8, 0}, {16, 8, 0}};
	struct dwz seg;

	skip_without_engine(t);
	/* Range and flag checks. */
	seg = (struct dwz){SECTORS - 8, 16, 0};
	assert_int_equal(req(t, T_DISCARD, 0, &seg, sizeof(seg), false, NULL), S_IOERR);
	seg = (struct dwz){UINT64_MAX - 2, 8, 0};
	assert_int_equal(req(t, T_WRITE_ZEROES, 0, &seg, sizeof(seg), false, NULL), S_IOERR);
	seg = (struct dwz){0, 8, 1};
	assert_int_equal(req(t, T_DISCARD, 0, &seg, sizeof(seg), false, NULL), S_UNSUPP);
	seg = (struct dwz){0, 8, 2};
	assert_int_equal(req(t, T_WRITE_ZEROES, 0, &seg, sizeof(seg), false, NULL), S_UNSUPP);
	assert_int_equal(req(t, T_DISCARD, 0, two, sizeof(two), false, NULL), S_UNSUPP);
	assert_int_equal(req(t, T_DISCARD, 0, &seg, 8, false, NULL), S_UNSUPP);

	/* WRITE_ZEROES without unmap: zeroes read back, the data around them stays. */
	fill_pattern(buf, sizeof(buf), 3);
	assert_int_equal(req(t, T_OUT, 256, buf, sizeof(buf), false, NULL), S_OK);
	seg = (struct dwz){264, 16, 0};
	assert_int_equal(req(t, T_WRITE_ZEROES, 0, &seg, sizeof(seg), false, NULL), S_OK);
	assert_int_equal(req(t, T_IN, 256, buf, sizeof(buf), true, NULL), S_OK);
	assert_memory_equal(buf + 8 * 512, zero, 16 * 512);
	uint8_t ref[512];
	fill_pattern(ref, sizeof(ref), 3);
	assert_memory_equal(buf, ref, 512);

	/* DISCARD and WRITE_ZEROES+unmap free the host file's blocks. */
	uint64_t before = host_blocks(t);
	seg = (struct dwz){512, 512, 0}; /* the second half: 256 KiB */
	assert_int_equal(req(t, T_DISCARD, 0, &seg, sizeof(seg), false, NULL), S_OK);
	uint64_t mid = host_blocks(t);
	assert_true(mid < before);
	seg = (struct dwz){1024, 512, 1};
	assert_int_equal(req(t, T_WRITE_ZEROES, 0, &seg, sizeof(seg), false, NULL), S_OK);
	assert_true(host_blocks(t) < mid);
	assert_int_equal(req(t, T_IN, 1024, buf, sizeof(buf), true, NULL), S_OK);
	assert_memory_equal(buf, zero, sizeof(buf));

	struct virtio_blk_stats st;
	virtio_blk_get_stats(t->d, &st);
	assert_int_equal(st.discard_reqs, 1);
	assert_int_equal(st.write_zeroes_reqs, 2);
	assert_int_equal(st.io_errors, 0);
}

/* DISCARD / WRITE_ZEROES the driver did not negotiate: UNSUPP. */
static void test_dwz_not_negotiated(void **state)
{
	struct fx *t = *state;
	struct dwz seg = {0, 8, 0};

	skip_without_engine(t);
	fd_start(&t->f, t->d, 0, 128, BASE_FEATURES);
	assert_int_equal(req(t, T_DISCARD, 0, &seg, sizeof(seg), false, NULL), S_UNSUPP);
	assert_int_equal(req(t, T_WRITE_ZEROES, 0, &seg, sizeof(seg), false, NULL), S_UNSUPP);
}

/* A host I/O error: IOERR, counted; the device keeps going. */
static void test_io_error(void **state)
{
	struct fx *t = *state;
	static uint8_t buf[4096];
	struct virtio_blk_stats st;

	skip_without_engine(t);
	/* Shrink the file under the device: reads of the missing part hit end of file. */
	assert_int_equal(truncate(t->path, DISK_SIZE / 2), 0);
	assert_int_equal(req(t, T_IN, SECTORS - 8, buf, sizeof(buf), true, NULL), S_IOERR);
	virtio_blk_get_stats(t->d, &st);
	assert_int_equal(st.io_errors, 1);
	assert_int_equal(req(t, T_IN, 0, buf, sizeof(buf), true, NULL), S_OK);
}

/* Reset with requests in flight: the reset drains them; nothing is pushed afterwards. */
static void test_reset_in_flight(void **state)
{
	struct fx *t = *state;
	static uint8_t w[4096], h[4096];

	skip_without_engine(t);
	fill_pattern(w, sizeof(w), 11);
	fd_reset_heap(&t->f);
	for (int i = 0; i < 32; i++) {
		struct hdr hd = {.type = T_OUT, .sector = (uint64_t)i * 8};
		struct fd_buf b[3] = {
		    {fd_alloc(&t->f, 16), 16, false},
		    {fd_alloc(&t->f, sizeof(w)), sizeof(w), false},
		    {fd_alloc(&t->f, 1), 1, true},
		};
		memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
		memcpy(fd_hva(&t->f, b[1].gpa), w, sizeof(w));
		fd_submit(&t->f, fd_chain(&t->f, b, 3));
	}
	fd_kick(&t->f); /* submitted; io_uring completions not reaped yet */
	pthread_mutex_lock(&t->d->lock);
	virtio_set_status(t->d, 0);
	assert_int_equal(t->d->status, 0);
	assert_false(t->d->queues[0].enabled);
	pthread_mutex_unlock(&t->d->lock);
	for (int i = 0; i < 5; i++)
		event_loop_run_once(&t->ev, 10);
	/* Every write completed before the reset returned: all of them are in the file. */
	for (int i = 0; i < 32; i++) {
		host_read(t, (uint64_t)i * 4096, h, sizeof(h));
		assert_memory_equal(h, w, sizeof(w));
	}
}

/* Two VMMs cannot open one image read-write: flock. */
static void test_lock(void **state)
{
	struct fx *t = *state;
	struct virtio_env env = {.mem = &t->f.mem, .ev = &t->ev};
	struct disk_config c = {.id = "other", .path = t->path, .engine = DISK_ENGINE_SYNC};
	struct virtio_dev *d2 = NULL, *d3 = NULL;
	char err[256], want[256];

	snprintf(want, sizeof(want),
		 "disk 'other': %s: locked by another process (is another VM using it?)", t->path);
	assert_int_equal(virtio_blk_create(&env, &c, &d2, err, sizeof(err)), -EWOULDBLOCK);
	assert_string_equal(err, want);
	c.readonly = true;
	assert_int_equal(virtio_blk_create(&env, &c, &d2, err, sizeof(err)), -EWOULDBLOCK);
	/* Read-only users share the image. */
	virtio_dev_destroy(t->d);
	assert_int_equal(virtio_blk_create(&env, &c, &d2, err, sizeof(err)), 0);
	assert_int_equal(virtio_blk_create(&env, &c, &d3, err, sizeof(err)), 0);
	virtio_dev_destroy(d3);
	t->d = d2;
	/* Missing file: a message naming the disk and the path. */
	c.path = (char *)"/nonexistent/disk.img";
	assert_int_equal(virtio_blk_create(&env, &c, &d3, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "disk 'other': /nonexistent/disk.img: No such file or directory");
}

/* Config space: capacity in sectors, seg_max, blk_size, discard limits. */
static void test_config(void **state)
{
	struct fx *t = *state;
	uint8_t cfg[72];

	assert_int_equal(t->d->config_size, 72);
	t->d->ops->config_read(t->d, 0, cfg, sizeof(cfg));
	uint64_t cap;
	uint32_t seg_max, blk_size, max_discard;
	memcpy(&cap, cfg, 8);
	memcpy(&seg_max, cfg + 12, 4);
	memcpy(&blk_size, cfg + 20, 4);
	memcpy(&max_discard, cfg + 36, 4);
	assert_int_equal(cap, SECTORS);
	assert_true(seg_max >= 1 && seg_max <= 254);
	assert_int_equal(blk_size, 512);
	assert_true(max_discard > 0);
	assert_int_equal(cfg[56], 1); /* write_zeroes_may_unmap */
}

/* ---- a new image under a running device (PATCH /drives) --------------------------------- */

/* A second image of `size` bytes filled with fill_pattern(seed); path in out (64 bytes). */
static void make_other(char *out, size_t size, uint32_t seed)
{
	static uint8_t buf[4 * MiB];
	int fd;

	assert_true(size <= sizeof(buf));
	strcpy(out, "/tmp/kiln-test-blk2-XXXXXX");
	fd = mkstemp(out);
	assert_true(fd >= 0);
	fill_pattern(buf, size, seed);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
}

/* Does another open file description get the lock kiln takes (LOCK_EX, or LOCK_SH)? */
static bool lockable(const char *path, int how)
{
	int fd = open(path, O_RDONLY);
	bool ok;

	assert_true(fd >= 0);
	ok = flock(fd, how | LOCK_NB) == 0;
	close(fd);
	return ok;
}

static uint64_t config_capacity(struct fx *t)
{
	uint64_t cap;

	pthread_mutex_lock(&t->d->lock);
	t->d->ops->config_read(t->d, 0, &cap, sizeof(cap));
	pthread_mutex_unlock(&t->d->lock);
	return cap;
}

/* Queue (without kicking) a write of w to sector, and return where its status byte is. */
static gpa_t queue_write(struct fx *t, uint64_t sector, const void *w, uint32_t len)
{
	struct hdr hd = {.type = T_OUT, .sector = sector};
	struct fd_buf b[3] = {
	    {fd_alloc(&t->f, 16), 16, false},
	    {fd_alloc(&t->f, len), len, false},
	    {fd_alloc(&t->f, 1), 1, true},
	};

	memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
	memcpy(fd_hva(&t->f, b[1].gpa), w, len);
	*(uint8_t *)fd_hva(&t->f, b[2].gpa) = S_NONE;
	fd_submit(&t->f, fd_chain(&t->f, b, 3));
	return b[2].gpa;
}

/* The swap: requests in flight finish on the old image first, the capacity follows the new
 * file, the driver gets a config change, reads come from the new file, locks move. */
static void test_set_path(void **state)
{
	struct fx *t = *state;
	static uint8_t w[4096], r[4096], want[4096], h[4096];
	char other[64], err[256];
	gpa_t st[9];
	uint32_t id, len;

	skip_without_engine(t);
	make_other(other, 2 * DISK_SIZE, 8);
	fill_pattern(w, sizeof(w), 21);
	fd_reset_heap(&t->f);
	uint16_t used0 = t->d->queues[0].vq.used_idx;
	for (int i = 0; i < 8; i++)
		st[i] = queue_write(t, (uint64_t)i * 8, w, sizeof(w));
	st[8] = fd_alloc(&t->f, 1); /* a FLUSH: io_uring runs fsync off-line, so it is in flight */
	{
		struct hdr hd = {.type = T_FLUSH};
		struct fd_buf b[2] = {{fd_alloc(&t->f, 16), 16, false}, {st[8], 1, true}};
		memcpy(fd_hva(&t->f, b[0].gpa), &hd, 16);
		*(uint8_t *)fd_hva(&t->f, st[8]) = S_NONE;
		fd_submit(&t->f, fd_chain(&t->f, b, 2));
	}
	/* Started; the event loop has not run. */
	fd_kick(&t->f);
	if (t->engine == DISK_ENGINE_URING) /* the test needs a request in flight */
		assert_true((uint16_t)(t->d->queues[0].vq.used_idx - used0) < 9);
	uint8_t gen = t->d->config_generation;
	unsigned cfg_irqs = t->f.config_irqs;
	t->d->isr = 0;

	assert_int_equal(virtio_blk_set_path(t->d, other, err, sizeof(err)), 0);
	/* Every request came back before the switch, and the writes are in the old file. */
	for (int i = 0; i < 9; i++) {
		assert_true(fd_used(&t->f, &id, &len));
		assert_int_equal(*(uint8_t *)fd_hva(&t->f, st[i]), S_OK);
	}
	assert_false(fd_used(&t->f, &id, &len));
	for (int i = 0; i < 8; i++) {
		host_read(t, (uint64_t)i * 4096, h, sizeof(h));
		assert_memory_equal(h, w, sizeof(w));
	}
	/* Config change: capacity, generation, ISR bit 1, the config vector; raised only once
	 * everything in flight was back on the used ring. */
	assert_int_equal(t->f.used_at_config_irq, (uint16_t)(used0 + 9));
	assert_int_equal(config_capacity(t), 2 * SECTORS);
	assert_int_equal(t->d->config_generation, (uint8_t)(gen + 1));
	assert_int_equal(t->d->isr & VIRTIO_ISR_CONFIG, VIRTIO_ISR_CONFIG);
	assert_int_equal(t->f.config_irqs, cfg_irqs + 1);
	/* Reads come from the new file, past the old end too. */
	static uint8_t img[2 * DISK_SIZE];
	fill_pattern(img, sizeof(img), 8);
	assert_int_equal(req(t, T_IN, SECTORS + 8, r, sizeof(r), true, NULL), S_OK);
	memcpy(want, img + (SECTORS + 8) * 512, sizeof(want));
	assert_memory_equal(r, want, sizeof(r));
	assert_int_equal(req(t, T_IN, 2 * SECTORS, r, 512, true, NULL), S_IOERR);
	assert_int_equal(req(t, T_OUT, 2 * SECTORS - 1, w, 512, false, NULL), S_OK);
	/* kiln let the old file go and holds the new one. */
	assert_true(lockable(t->path, LOCK_EX));
	assert_false(lockable(other, LOCK_EX));

	/* A file that cannot be used: an error naming the disk and the path; nothing changes. */
	gen = t->d->config_generation;
	assert_int_equal(virtio_blk_set_path(t->d, "/nonexistent/x.img", err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "disk 'disk0': /nonexistent/x.img: No such file or directory");
	int fd = open(t->path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0); /* as another VM would */
	assert_int_equal(virtio_blk_set_path(t->d, t->path, err, sizeof(err)), -EWOULDBLOCK);
	assert_non_null(strstr(err, "locked by another process"));
	close(fd);
	assert_int_equal(t->d->config_generation, gen);
	assert_int_equal(config_capacity(t), 2 * SECTORS);
	assert_false(lockable(other, LOCK_EX));
	assert_int_equal(req(t, T_IN, SECTORS + 8, r, sizeof(r), true, NULL), S_OK);
	assert_memory_equal(r, want, sizeof(r));

	/* The same file again after it grew: the lock stays, the capacity follows. */
	assert_int_equal(truncate(other, 3 * DISK_SIZE), 0);
	assert_int_equal(virtio_blk_set_path(t->d, other, err, sizeof(err)), 0);
	assert_int_equal(config_capacity(t), 3 * SECTORS);
	assert_false(lockable(other, LOCK_EX));
	assert_int_equal(req(t, T_IN, 3 * SECTORS - 1, r, 512, true, NULL), S_OK);

	/* Before the driver is up: the generation moves, no interrupt. */
	pthread_mutex_lock(&t->d->lock);
	virtio_set_status(t->d, 0);
	pthread_mutex_unlock(&t->d->lock);
	cfg_irqs = t->f.config_irqs;
	gen = t->d->config_generation;
	assert_int_equal(virtio_blk_set_path(t->d, t->path, err, sizeof(err)), 0);
	assert_int_equal(t->d->config_generation, (uint8_t)(gen + 1));
	assert_int_equal(t->f.config_irqs, cfg_irqs);
	assert_int_equal(config_capacity(t), SECTORS);
	assert_true(lockable(other, LOCK_EX));
	unlink(other);
}

/* A read-only drive stays read-only on its new file (opened read-only, shared lock). */
static void test_set_path_readonly(void **state)
{
	struct fx *t = *state;
	static uint8_t buf[512], before[512];
	char other[64], err[256];

	virtio_dev_destroy(t->d);
	assert_int_equal(create(t, true, BASE_FEATURES), 0);
	skip_without_engine(t);
	make_other(other, DISK_SIZE, 9);
	assert_int_equal(chmod(other, 0444), 0);
	assert_int_equal(virtio_blk_set_path(t->d, other, err, sizeof(err)), 0);
	assert_true(lockable(other, LOCK_SH)); /* other readers share it */
	assert_false(lockable(other, LOCK_EX));
	int fd = open(other, O_RDONLY);
	assert_int_equal(pread(fd, before, sizeof(before), 0), (ssize_t)sizeof(before));
	close(fd);
	memset(buf, 0x55, sizeof(buf));
	assert_int_equal(req(t, T_OUT, 0, buf, sizeof(buf), false, NULL), S_IOERR);
	assert_int_equal(req(t, T_IN, 0, buf, sizeof(buf), true, NULL), S_OK);
	assert_memory_equal(buf, before, sizeof(buf));
	unlink(other);
}

#define BOTH(fn)                                                                                   \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &fx_sync),                   \
	    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &fx_uring)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_round_trip),
	    BOTH(test_scatter_indirect),
	    BOTH(test_shared_buffers),
	    BOTH(test_max_segments),
	    BOTH(test_split_header),
	    BOTH(test_many_in_flight),
	    BOTH(test_more_than_slots),
	    BOTH(test_bad_requests),
	    BOTH(test_short_header),
	    BOTH(test_no_status_byte),
	    BOTH(test_status_readonly),
	    BOTH(test_too_many_segments),
	    BOTH(test_readonly),
	    BOTH(test_get_id),
	    BOTH(test_discard_write_zeroes),
	    BOTH(test_dwz_not_negotiated),
	    BOTH(test_io_error),
	    BOTH(test_reset_in_flight),
	    BOTH(test_lock),
	    BOTH(test_config),
	    BOTH(test_set_path),
	    BOTH(test_set_path_readonly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
