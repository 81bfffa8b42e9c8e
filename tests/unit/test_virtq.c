/* test_virtq.c: split virtqueue on fake guest RAM: chains, INDIRECT, notifications, malformed
 * rings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "util/log.h"
#include "virtio/queue.h"

/* 1 MiB of RAM followed by a PROT_NONE guard page: any access past RAM end faults. */
#define RAM_SIZE (1 * MiB)
#define QSIZE 16
#define DESC_GPA 0x1000
#define AVAIL_GPA 0x3000
#define USED_GPA 0x4000
#define IND_GPA 0x8000
#define BUF_GPA 0x10000
#define OUTSIDE 0x40000000ULL /* no RAM there */

struct fx {
	struct guest_mem m;
	uint8_t *ram;
	struct virtq vq;
	uint16_t drv_avail; /* driver's next avail index */
	struct iovec iov[8];
	struct vq_chain c;
	const struct bad_case *bad; /* bad_chain's case, from the test's initial state */
};

/* ---- driver side ---- */

static void desc_at(struct fx *f, gpa_t table, unsigned i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
	memcpy(f->ram + table + 16 * i, &d, sizeof(d));
}

static void desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	desc_at(f, f->vq.desc_gpa, i, addr, len, flags, next);
}

static struct vring_avail *avail(struct fx *f)
{
	return gpa_to_hva(&f->m, f->vq.avail_gpa, VQ_AVAIL_BYTES(f->vq.size));
}

static struct vring_used *used(struct fx *f)
{
	return gpa_to_hva(&f->m, f->vq.used_gpa, VQ_USED_BYTES(f->vq.size));
}

static void drv_add(struct fx *f, uint16_t head)
{
	avail(f)->ring[f->drv_avail & (f->vq.size - 1)] = head;
	avail(f)->idx = ++f->drv_avail;
}

static int pop(struct fx *f) { return vq_pop(&f->vq, &f->c, f->iov, ARRAY_SIZE(f->iov)); }

/* Pop one chain and check its shape. */
static void expect_chain(struct fx *f, uint16_t head, unsigned n_out, unsigned n_in,
			 uint64_t out_len, uint64_t in_len)
{
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.head, head);
	assert_int_equal(f->c.n_out, n_out);
	assert_int_equal(f->c.n_in, n_in);
	assert_int_equal(f->c.out_len, out_len);
	assert_int_equal(f->c.in_len, in_len);
}

/* Re-arm the queue with a new geometry; driver and device indexes start at 0. */
static int rearm(struct fx *f, uint16_t size, gpa_t d, gpa_t a, gpa_t u, bool event_idx)
{
	f->vq.size = size;
	f->vq.desc_gpa = d;
	f->vq.avail_gpa = a;
	f->vq.used_gpa = u;
	f->vq.event_idx = event_idx;
	f->drv_avail = 0;
	int ret = vq_init(&f->vq, &f->m);
	if (ret == 0) {
		/* the driver zeroes its rings before enabling the queue */
		avail(f)->idx = 0;
		used(f)->idx = 0;
	}
	return ret;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->bad = *state;
	f->ram =
	    mmap(NULL, RAM_SIZE + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(f->ram != MAP_FAILED);
	assert_int_equal(mprotect(f->ram + RAM_SIZE, 4096, PROT_NONE), 0);
	assert_int_equal(guest_mem_layout(&f->m, RAM_SIZE), 0);
	f->m.regions[0].hva = f->ram;
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	munmap(f->ram, RAM_SIZE + 4096);
	free(f);
	return 0;
}

static void init_rejects(void **state)
{
	struct fx *f = *state;
	assert_true(f->vq.ready);
	assert_int_equal(rearm(f, QSIZE, DESC_GPA + 8, AVAIL_GPA, USED_GPA, false), -EINVAL);
	assert_false(f->vq.ready);
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA + 1, USED_GPA, false), -EINVAL);
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA + 2, false), -EINVAL);
	assert_int_equal(rearm(f, QSIZE, OUTSIDE, AVAIL_GPA, USED_GPA, false), -EINVAL);
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, OUTSIDE, USED_GPA, false), -EINVAL);
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, OUTSIDE, false), -EINVAL);
	assert_int_equal(rearm(f, QSIZE, RAM_SIZE - 16 * QSIZE + 16, AVAIL_GPA, USED_GPA, false),
			 -EINVAL);
	assert_int_equal(rearm(f, 0, DESC_GPA, AVAIL_GPA, USED_GPA, false), -EINVAL);
	assert_int_equal(rearm(f, 3, DESC_GPA, AVAIL_GPA, USED_GPA, false), -EINVAL);
	assert_int_equal(rearm(f, 65535, DESC_GPA, AVAIL_GPA, USED_GPA, false), -EINVAL);
	assert_int_equal(vq_init(&f->vq, NULL), -EINVAL);
	/* Guest-aligned rings in a second region whose host mapping is misaligned by 1 or 2. */
	f->m.regions[1] =
	    (struct mem_region){.gpa = 2 * MiB, .size = 64 * KiB, .hva = f->ram + 512 * KiB + 2};
	f->m.nr_regions = 2;
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, 2 * MiB, false), -EINVAL);
	assert_int_equal(rearm(f, QSIZE, 2 * MiB, AVAIL_GPA, USED_GPA, false), -EINVAL);
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, 2 * MiB + 0x1000, USED_GPA, false), 0);
	f->m.regions[1].hva = f->ram + 512 * KiB + 1;
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, 2 * MiB + 0x1000, USED_GPA, false), -EINVAL);
	f->m.nr_regions = 1;
	/* A queue that is not ready is empty, and push is a no-op. */
	assert_int_equal(pop(f), 0);
	vq_push(&f->vq, 0, 1);
	assert_int_equal(used(f)->idx, 0);
	assert_int_equal(rearm(f, 1, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
}

static void huge_queue_top_of_ram(void **state)
{
	struct fx *f = *state;
	const uint16_t n = 32768;
	const gpa_t end = RAM_SIZE;
	const gpa_t used_top = end - ALIGN_UP(VQ_USED_BYTES(n), 4);
	const gpa_t avail_top = end - VQ_AVAIL_BYTES(n);
	const gpa_t desc_top = end - VQ_DESC_BYTES(n);

	/* avail ring (used_event included) ends exactly at RAM end */
	assert_int_equal(rearm(f, n, 0, avail_top, 0x80000, true), 0);
	assert_int_equal(rearm(f, n, 0, avail_top + 2, 0x80000, true), -EINVAL);
	assert_int_equal(rearm(f, n, 0, end - 1, 0x80000, true), -EINVAL);
	/* desc table ends at RAM end */
	assert_int_equal(rearm(f, n, desc_top, 0, 0x20000, true), 0);
	assert_int_equal(rearm(f, n, desc_top + 16, 0, 0x20000, true), -EINVAL);
	/* used ring at the top (its size is 2 mod 4, so it ends at end - 2) */
	assert_int_equal(rearm(f, n, 0, 0x80000, used_top + 4, true), -EINVAL);
	assert_int_equal(rearm(f, n, 0, 0x80000, end - 1, true), -EINVAL);
	assert_int_equal(rearm(f, n, 0, 0x80000, used_top, true), 0);

	/* Use the very last slot of every ring. */
	f->vq.last_avail = f->vq.used_idx = f->drv_avail = n - 1;
	desc(f, n - 1, 0xa0000, 0x100, VRING_DESC_F_WRITE, 0);
	drv_add(f, n - 1);
	expect_chain(f, n - 1, 0, 1, 0, 0x100);
	assert_ptr_equal(f->iov[0].iov_base, f->ram + 0xa0000);
	vq_push(&f->vq, n - 1, 0x80);
	assert_int_equal(used(f)->ring[n - 1].id, n - 1);
	assert_int_equal(used(f)->ring[n - 1].len, 0x80);
	assert_int_equal(used(f)->idx, n);
	assert_true(vq_should_notify(&f->vq));
	assert_false(vq_enable_notify(&f->vq));
	assert_int_equal(*(uint16_t *)(f->ram + end - 4), n); /* avail_event */
}

static void chain_out_only(void **state)
{
	struct fx *f = *state;
	desc(f, 3, BUF_GPA, 100, 0, 0);
	drv_add(f, 3);
	assert_int_equal(vq_avail_count(&f->vq), 1);
	expect_chain(f, 3, 1, 0, 100, 0);
	assert_ptr_equal(f->iov[0].iov_base, f->ram + BUF_GPA);
	assert_int_equal(f->iov[0].iov_len, 100);
	assert_int_equal(pop(f), 0);
	assert_int_equal(vq_avail_count(&f->vq), 0);
}

static void chain_in_only(void **state)
{
	struct fx *f = *state;
	desc(f, 0, BUF_GPA, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 5);
	desc(f, 5, BUF_GPA + 0x1000, 32, VRING_DESC_F_WRITE, 0);
	drv_add(f, 0);
	expect_chain(f, 0, 0, 2, 0, 96);
	assert_ptr_equal(f->iov[1].iov_base, f->ram + BUF_GPA + 0x1000);
}

static void chain_out_in_and_push(void **state)
{
	struct fx *f = *state;
	desc(f, 7, BUF_GPA, 16, VRING_DESC_F_NEXT, 2);
	desc(f, 2, BUF_GPA + 0x100, 512, VRING_DESC_F_NEXT, 9);
	desc(f, 9, BUF_GPA + 0x1000, 1, VRING_DESC_F_WRITE, 0);
	drv_add(f, 7);
	desc(f, 1, BUF_GPA + 0x2000, 8, 0, 0);
	drv_add(f, 1);

	expect_chain(f, 7, 2, 1, 528, 1);
	assert_ptr_equal(f->iov[2].iov_base, f->ram + BUF_GPA + 0x1000);
	expect_chain(f, 1, 1, 0, 8, 0);

	vq_push(&f->vq, 1, 0);
	vq_push(&f->vq, 7, 1);
	assert_int_equal(used(f)->idx, 2);
	assert_int_equal(used(f)->ring[0].id, 1);
	assert_int_equal(used(f)->ring[0].len, 0);
	assert_int_equal(used(f)->ring[1].id, 7);
	assert_int_equal(used(f)->ring[1].len, 1);
	vq_push(&f->vq, QSIZE, 1); /* device bug: ignored */
	assert_int_equal(used(f)->idx, 2);
}

static void index_wrap(void **state)
{
	struct fx *f = *state;
	f->vq.last_avail = f->drv_avail = 65535;
	f->vq.used_idx = 65535;
	desc(f, 4, BUF_GPA, 10, 0, 0);
	drv_add(f, 4);
	drv_add(f, 4);
	assert_int_equal(avail(f)->idx, 1);
	assert_int_equal(vq_avail_count(&f->vq), 2);
	assert_int_equal(pop(f), 1);
	vq_push(&f->vq, f->c.head, 0);
	assert_int_equal(pop(f), 1);
	vq_push(&f->vq, f->c.head, 0);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->vq.last_avail, 1);
	assert_int_equal(used(f)->idx, 1);
	assert_int_equal(used(f)->ring[QSIZE - 1].id, 4);
	assert_int_equal(used(f)->ring[0].id, 4);
}

static void zero_length_desc(void **state)
{
	struct fx *f = *state;
	desc(f, 0, BUF_GPA, 8, VRING_DESC_F_NEXT, 1);
	desc(f, 1, 0xdead00000000ULL, 0, VRING_DESC_F_NEXT, 2); /* address not looked at */
	desc(f, 2, BUF_GPA + 8, 8, VRING_DESC_F_WRITE, 0);
	drv_add(f, 0);
	expect_chain(f, 0, 1, 1, 8, 8);
	assert_ptr_equal(f->iov[1].iov_base, f->ram + BUF_GPA + 8);
}

static void indirect_chains(void **state)
{
	struct fx *f = *state;
	desc_at(f, IND_GPA, 0, BUF_GPA, 16, VRING_DESC_F_NEXT, 2);
	desc_at(f, IND_GPA, 2, BUF_GPA + 16, 16, VRING_DESC_F_NEXT, 1);
	desc_at(f, IND_GPA, 1, BUF_GPA + 32, 100, VRING_DESC_F_WRITE, 0);
	/* the table's own WRITE flag is ignored */
	desc(f, 0, IND_GPA, 48, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	drv_add(f, 0);
	/* a direct readable descriptor may precede the indirect one */
	desc(f, 1, BUF_GPA + 0x800, 4, VRING_DESC_F_NEXT, 2);
	desc(f, 2, IND_GPA, 48, VRING_DESC_F_INDIRECT, 0);
	drv_add(f, 1);

	expect_chain(f, 0, 2, 1, 32, 100);
	assert_ptr_equal(f->iov[1].iov_base, f->ram + BUF_GPA + 16);
	assert_ptr_equal(f->iov[2].iov_base, f->ram + BUF_GPA + 32);
	expect_chain(f, 1, 3, 1, 36, 100);
	assert_ptr_equal(f->iov[0].iov_base, f->ram + BUF_GPA + 0x800);
}

static void e2big_consumes(void **state)
{
	struct fx *f = *state;
	struct iovec iov[2];
	desc(f, 0, BUF_GPA, 1, VRING_DESC_F_NEXT, 1);
	desc(f, 1, BUF_GPA, 1, VRING_DESC_F_NEXT, 2);
	desc(f, 2, BUF_GPA, 1, 0, 0);
	drv_add(f, 0);
	drv_add(f, 2);
	assert_int_equal(vq_pop(&f->vq, &f->c, iov, 2), -E2BIG);
	assert_int_equal(f->c.head, 0);
	assert_false(f->vq.broken);
	assert_null(f->vq.error);
	assert_int_equal(f->vq.last_avail, 1);
	assert_int_equal(vq_pop(&f->vq, &f->c, iov, 2), 1);
	assert_int_equal(f->c.head, 2);
	/* Past iov_cap the walk still validates: a bad tail breaks the queue. */
	desc(f, 2, BUF_GPA, 1, VRING_DESC_F_NEXT, QSIZE);
	drv_add(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->c, iov, 2), -EINVAL);
	assert_true(f->vq.broken);
}

static void chain_limits(void **state)
{
	struct fx *f = *state;
	/* exactly size descriptors is fine; one more is a loop */
	assert_int_equal(rearm(f, 4, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
	for (unsigned i = 0; i < 4; i++)
		desc(f, i, BUF_GPA, 1, i < 3 ? VRING_DESC_F_NEXT : 0, i + 1);
	drv_add(f, 0);
	expect_chain(f, 0, 4, 0, 4, 0);
	desc(f, 3, BUF_GPA, 1, VRING_DESC_F_NEXT, 0);
	drv_add(f, 0);
	assert_int_equal(pop(f), -EINVAL);
	assert_string_equal(f->vq.error, "descriptor loop");

	/* VQ_MAX_CHAIN distinct (zero-length) descriptors pass, one more does not */
	assert_int_equal(rearm(f, 2048, 0x20000, 0x30000, 0x32000, false), 0);
	for (unsigned i = 0; i <= VQ_MAX_CHAIN; i++)
		desc(f, i, 0, 0, VRING_DESC_F_NEXT, i + 1);
	desc(f, VQ_MAX_CHAIN - 1, 0, 0, 0, 0);
	drv_add(f, 0);
	assert_int_equal(pop(f), 1);
	desc(f, VQ_MAX_CHAIN - 1, 0, 0, VRING_DESC_F_NEXT, VQ_MAX_CHAIN);
	desc(f, VQ_MAX_CHAIN, 0, 0, 0, 0);
	drv_add(f, 0);
	assert_int_equal(pop(f), -EINVAL);
	assert_string_equal(f->vq.error, "chain longer than VQ_MAX_CHAIN");
}

static void event_idx_notify(void **state)
{
	struct fx *f = *state;
	uint16_t *used_event;
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, true), 0);
	used_event = &avail(f)->ring[QSIZE];

	*used_event = 100;
	vq_push(&f->vq, 0, 0);
	assert_true(vq_should_notify(&f->vq)); /* first call: nothing signalled yet */
	*used_event = 0;
	assert_false(vq_should_notify(&f->vq)); /* nothing new */
	*used_event = 1;
	vq_push(&f->vq, 0, 0); /* used_idx 2: crosses 1 */
	assert_true(vq_should_notify(&f->vq));
	vq_push(&f->vq, 0, 0); /* 3: 1 already passed */
	assert_false(vq_should_notify(&f->vq));
	*used_event = 5;
	vq_push(&f->vq, 0, 0);
	vq_push(&f->vq, 0, 0); /* 5: event 5 not yet crossed */
	assert_false(vq_should_notify(&f->vq));
	vq_push(&f->vq, 0, 0); /* 6 */
	assert_true(vq_should_notify(&f->vq));

	/* 16-bit wrap-around */
	f->vq.used_idx = f->vq.signalled_used = 65534;
	*used_event = 65535;
	vq_push(&f->vq, 0, 0);
	vq_push(&f->vq, 0, 0); /* 65534 -> 0 crosses 65535 */
	assert_int_equal(f->vq.used_idx, 0);
	assert_true(vq_should_notify(&f->vq));
	*used_event = 1;
	f->vq.used_idx = f->vq.signalled_used = 65535;
	vq_push(&f->vq, 0, 0); /* -> 0 */
	assert_false(vq_should_notify(&f->vq));
	vq_push(&f->vq, 0, 0);
	vq_push(&f->vq, 0, 0); /* -> 2 crosses 1 */
	assert_true(vq_should_notify(&f->vq));
	/* flags are ignored with EVENT_IDX */
	avail(f)->flags = VRING_AVAIL_F_NO_INTERRUPT;
	*used_event = 2;
	vq_push(&f->vq, 0, 0);
	assert_true(vq_should_notify(&f->vq));
}

static void no_interrupt_flag(void **state)
{
	struct fx *f = *state;
	vq_push(&f->vq, 0, 0);
	assert_true(vq_should_notify(&f->vq));
	avail(f)->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vq_push(&f->vq, 0, 0);
	assert_false(vq_should_notify(&f->vq));
	avail(f)->flags = 0;
	assert_true(vq_should_notify(&f->vq));
}

static void enable_disable_notify(void **state)
{
	struct fx *f = *state;
	uint16_t *avail_event;

	vq_disable_notify(&f->vq);
	assert_int_equal(used(f)->flags, VRING_USED_F_NO_NOTIFY);
	assert_false(vq_enable_notify(&f->vq));
	assert_int_equal(used(f)->flags, 0);
	desc(f, 0, BUF_GPA, 1, 0, 0);
	drv_add(f, 0);
	assert_true(vq_enable_notify(&f->vq)); /* arrived meanwhile: poll again */

	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, true), 0);
	avail_event = (uint16_t *)&used(f)->ring[QSIZE];
	*avail_event = 0x1234;
	used(f)->flags = 0;
	vq_disable_notify(&f->vq);
	assert_int_equal(used(f)->flags, 0);
	assert_int_equal(*avail_event, 0x1234);
	drv_add(f, 0);
	drv_add(f, 0);
	assert_int_equal(pop(f), 1);
	assert_true(vq_enable_notify(&f->vq));
	assert_int_equal(*avail_event, 1);
	assert_int_equal(pop(f), 1);
	assert_false(vq_enable_notify(&f->vq));
	assert_int_equal(*avail_event, 2);
}

/* vq_rewind gives back the last chains popped and not pushed: they come out of vq_pop again,
 * same heads, same buffers, after a fresh read of avail->idx; used_idx and the EVENT_IDX
 * shadow do not move, and the interrupt decision after they are finally used is the usual
 * one. It refuses more chains than are outstanding, and a broken queue. */
static void rewind_pops(void **state)
{
	struct fx *f = *state;
	uint16_t *used_event, *avail_event;

	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, true), 0);
	used_event = &avail(f)->ring[QSIZE];
	avail_event = (uint16_t *)&used(f)->ring[QSIZE];
	for (unsigned i = 0; i < 4; i++) {
		desc(f, i, BUF_GPA + 0x100 * i, 0x10 + i, VRING_DESC_F_WRITE, 0);
		drv_add(f, (uint16_t)i);
	}
	expect_chain(f, 0, 0, 1, 0, 0x10);
	vq_push(&f->vq, 0, 4);
	assert_true(vq_should_notify(&f->vq)); /* first: signalled_used = 1 */
	expect_chain(f, 1, 0, 1, 0, 0x11);
	expect_chain(f, 2, 0, 1, 0, 0x12);
	assert_int_equal(f->vq.last_avail, 3);
	assert_int_equal(f->vq.avail_known, 1); /* chain 3 known, not taken */

	assert_int_equal(vq_rewind(&f->vq, 3), -EINVAL); /* only 2 are outstanding */
	assert_int_equal(f->vq.last_avail, 3);
	assert_int_equal(vq_rewind(&f->vq, 0), 0);
	assert_int_equal(vq_rewind(&f->vq, 2), 0);
	assert_int_equal(f->vq.last_avail, 1);
	assert_int_equal(f->vq.avail_known, 0); /* read again */
	assert_int_equal(f->vq.used_idx, 1);
	assert_int_equal(f->vq.signalled_used, 1);
	assert_int_equal(vq_avail_count(&f->vq), 3);
	assert_int_equal(vq_rewind(&f->vq, 1), -EINVAL); /* nothing outstanding any more */

	/* The same chains again, then the one never taken. */
	expect_chain(f, 1, 0, 1, 0, 0x11);
	assert_ptr_equal(f->iov[0].iov_base, f->ram + BUF_GPA + 0x100);
	expect_chain(f, 2, 0, 1, 0, 0x12);
	expect_chain(f, 3, 0, 1, 0, 0x13);
	assert_int_equal(pop(f), 0);
	assert_false(vq_enable_notify(&f->vq));
	assert_int_equal(*avail_event, 4);
	struct vring_used_elem e[3] = {{1, 5}, {2, 6}, {3, 7}};
	*used_event = 2; /* the driver wants an interrupt once entry 2 is used */
	vq_push_many(&f->vq, e, 3);
	assert_int_equal(used(f)->idx, 4);
	assert_int_equal(used(f)->ring[1].id, 1);
	assert_int_equal(used(f)->ring[3].id, 3);
	assert_true(vq_should_notify(&f->vq));
	*used_event = 4;
	assert_false(vq_should_notify(&f->vq));

	/* A broken queue gives nothing back. */
	desc(f, 0, OUTSIDE, 1, 0, 0);
	drv_add(f, 0);
	assert_int_equal(pop(f), -EFAULT);
	assert_true(f->vq.broken);
	assert_int_equal(vq_rewind(&f->vq, 0), -EINVAL);
}

/* ---- per-dispatch budget ---- */

/* Once the budget is spent vq_pop says "empty" and consumes nothing, vq_enable_notify says
 * "no more" without asking for kicks (avail_event and NO_NOTIFY left as they are), and
 * vq_budget_end reports that chains were left behind. The next budget takes the rest. */
static void budget_stops_pop(void **state)
{
	struct fx *f = *state;
	struct iovec iov[1];
	uint16_t *avail_event = (uint16_t *)&used(f)->ring[QSIZE];

	assert_int_equal(f->vq.budget, QSIZE); /* vq_init: one ring's worth */
	for (int ev = 0; ev < 2; ev++) {
		assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, ev), 0);
		*avail_event = 0x1234;
		used(f)->flags = VRING_USED_F_NO_NOTIFY;
		desc(f, 0, BUF_GPA, 8, 0, 0);
		desc(f, 1, BUF_GPA, 1, VRING_DESC_F_NEXT, 2); /* two buffers: -E2BIG with iov[1] */
		desc(f, 2, BUF_GPA, 1, 0, 0);
		drv_add(f, 1);
		for (int i = 0; i < 4; i++)
			drv_add(f, 0);
		vq_budget_begin(&f->vq, 3);
		assert_int_equal(vq_pop(&f->vq, &f->c, iov, 1), -E2BIG); /* counts too */
		expect_chain(f, 0, 1, 0, 8, 0);
		expect_chain(f, 0, 1, 0, 8, 0);
		assert_false(f->vq.budget_hit);
		assert_int_equal(pop(f), 0);
		assert_int_equal(f->vq.last_avail, 3);
		assert_true(f->vq.budget_hit);
		assert_false(vq_enable_notify(&f->vq));
		assert_int_equal(*avail_event, 0x1234);
		assert_int_equal(used(f)->flags, VRING_USED_F_NO_NOTIFY);
		assert_int_equal(pop(f), 0);
		assert_true(vq_budget_end(&f->vq));
		assert_false(vq_budget_end(&f->vq)); /* cleared */

		vq_budget_begin(&f->vq, 3);
		expect_chain(f, 0, 1, 0, 8, 0);
		expect_chain(f, 0, 1, 0, 8, 0);
		assert_int_equal(pop(f), 0);
		assert_false(vq_enable_notify(&f->vq));
		if (ev)
			assert_int_equal(*avail_event, 5);
		else
			assert_int_equal(used(f)->flags, 0);
		assert_false(vq_budget_end(&f->vq)); /* the ring ran dry first */
	}
}

/* The budget runs out exactly as the ring empties: not hit. A chain that arrives before
 * notifications are back on is seen by vq_enable_notify, which stops the loop and records
 * the hit instead of asking for another round; vq_budget_stop spends the budget early. */
static void budget_edges(void **state)
{
	struct fx *f = *state;

	desc(f, 0, BUF_GPA, 8, 0, 0);
	drv_add(f, 0);
	drv_add(f, 0);
	vq_budget_begin(&f->vq, 2);
	expect_chain(f, 0, 1, 0, 8, 0);
	expect_chain(f, 0, 1, 0, 8, 0);
	assert_int_equal(pop(f), 0);
	assert_false(f->vq.budget_hit);
	drv_add(f, 0);
	assert_false(vq_enable_notify(&f->vq));
	assert_true(vq_budget_end(&f->vq));

	vq_budget_begin(&f->vq, 10);
	drv_add(f, 0);
	expect_chain(f, 0, 1, 0, 8, 0);
	vq_budget_stop(&f->vq);
	assert_true(f->vq.budget_hit);
	assert_int_equal(pop(f), 0);
	assert_false(vq_enable_notify(&f->vq));
	assert_true(vq_budget_end(&f->vq));
	vq_budget_begin(&f->vq, 10);
	expect_chain(f, 0, 1, 0, 8, 0);
	vq_budget_stop(&f->vq); /* nothing left: not hit */
	assert_false(vq_budget_end(&f->vq));
	/* A reset leaves no budget and no hit behind; vq_init gives one ring's worth again. */
	vq_budget_begin(&f->vq, 5);
	drv_add(f, 0);
	vq_budget_stop(&f->vq);
	vq_reset(&f->vq);
	assert_false(vq_budget_end(&f->vq));
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
	assert_int_equal(f->vq.budget, QSIZE);
}

/* ---- malformed rings and chains ---- */

/* One malformed chain at head 0: descriptors 0..2 of the queue and 0..1 of an indirect table
 * at IND_GPA (a zero descriptor is left out), the error and the reason vq_pop must give. */
struct bad_case {
	const char *name;
	struct vring_desc d[3], ind[2];
	int err;
	const char *why;
};

#define NX VRING_DESC_F_NEXT
#define WR VRING_DESC_F_WRITE
#define IN VRING_DESC_F_INDIRECT
/* clang-format off */
static const struct bad_case bad_cases[] = {
	{ "self_loop", { { BUF_GPA, 1, NX, 0 } }, {}, -EINVAL, "descriptor loop" },
	{ "two_cycle", { { BUF_GPA, 1, NX, 1 }, { BUF_GPA, 1, NX, 0 } }, {}, -EINVAL,
	  "descriptor loop" },
	{ "next_oob", { { BUF_GPA, 1, NX, QSIZE } }, {}, -EINVAL, "next >= queue size" },
	{ "addr_outside", { { OUTSIDE, 1, 0, 0 } }, {}, -EFAULT, "buffer outside guest RAM" },
	{ "addr_straddles_end", { { RAM_SIZE - 8, 9, 0, 0 } }, {}, -EFAULT,
	  "buffer outside guest RAM" },
	{ "addr_len_overflow", { { 0xffffffffffff0000ULL, 0x20000, 0, 0 } }, {}, -EFAULT,
	  "buffer outside guest RAM" },
	{ "len_sum_overflow", { { BUF_GPA, 16, NX, 1 }, { BUF_GPA, UINT32_MAX, 0, 0 } }, {},
	  -EINVAL, "chain length over 4 GiB" },
	{ "nested_indirect", { { IND_GPA, 16, IN, 0 } }, { { IND_GPA + 16, 16, IN, 0 } }, -EINVAL,
	  "nested INDIRECT" },
	{ "indirect_with_next", { { IND_GPA, 16, IN | NX, 1 }, { BUF_GPA, 1, 0, 0 } },
	  { { BUF_GPA, 1, 0, 0 } }, -EINVAL, "INDIRECT with NEXT" },
	{ "indirect_len_24", { { IND_GPA, 24, IN, 0 } }, { { BUF_GPA, 1, 0, 0 } }, -EINVAL,
	  "indirect table length not a non-zero multiple of 16" },
	{ "indirect_len_0", { { IND_GPA, 0, IN, 0 } }, {}, -EINVAL,
	  "indirect table length not a non-zero multiple of 16" },
	{ "indirect_too_long", { { IND_GPA, (VQ_MAX_CHAIN + 1) * 16, IN, 0 } }, {}, -EINVAL,
	  "indirect table longer than VQ_MAX_CHAIN" },
	{ "indirect_outside", { { RAM_SIZE - 16, 32, IN, 0 } }, {}, -EFAULT,
	  "indirect table outside guest RAM" },
	{ "indirect_next_oob", { { IND_GPA, 32, IN, 0 } },
	  { { BUF_GPA, 1, NX, 1 }, { BUF_GPA, 1, NX, 2 } }, -EINVAL, "next beyond indirect table" },
	{ "indirect_loop", { { IND_GPA, 32, IN, 0 } },
	  { { BUF_GPA, 1, NX, 1 }, { BUF_GPA, 1, NX, 0 } }, -EINVAL, "loop in indirect table" },
	{ "read_after_write", { { BUF_GPA, 1, WR | NX, 1 }, { BUF_GPA, 1, 0, 0 } }, {}, -EINVAL,
	  "readable descriptor after a writable one" },
	{ "read_after_write_indirect", { { BUF_GPA, 1, WR | NX, 1 }, { IND_GPA, 16, IN, 0 } },
	  { { BUF_GPA, 1, 0, 0 } }, -EINVAL, "readable descriptor after a writable one" },
};
/* clang-format on */

static void bad_chain(void **state)
{
	struct fx *f = *state;
	const struct bad_case *bc = f->bad;

	for (unsigned i = 0; i < 3; i++)
		if (bc->d[i].len || bc->d[i].flags)
			desc(f, i, bc->d[i].addr, bc->d[i].len, bc->d[i].flags, bc->d[i].next);
	for (unsigned i = 0; i < 2; i++)
		desc_at(f, IND_GPA, i, bc->ind[i].addr, bc->ind[i].len, bc->ind[i].flags,
			bc->ind[i].next);
	drv_add(f, 0);
	assert_int_equal(pop(f), bc->err);
	assert_true(f->vq.broken);
	assert_non_null(f->vq.error);
	assert_string_equal(f->vq.error, bc->why);
	assert_int_equal(f->vq.last_avail, 0);
	assert_int_equal(pop(f), -EINVAL);
}

/* avail->idx more than size ahead, and a head >= size, break the queue. */
static void bad_ring_indexes(void **state)
{
	struct fx *f = *state;
	avail(f)->idx = QSIZE + 1;
	assert_int_equal(vq_avail_count(&f->vq), QSIZE);
	assert_int_equal(pop(f), -EINVAL);
	assert_string_equal(f->vq.error, "avail->idx more than size ahead");
	assert_int_equal(vq_avail_count(&f->vq), 0);

	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
	drv_add(f, QSIZE);
	assert_int_equal(pop(f), -EINVAL);
	assert_string_equal(f->vq.error, "avail ring head >= size");
}

/* avail->idx is read once for the chains it published: a driver that moves it afterwards
 * (here: more than size ahead) is noticed at the next read, when those chains are taken. A
 * reset forgets what was read. */
static void avail_idx_read_per_batch(void **state)
{
	struct fx *f = *state;
	for (unsigned i = 0; i < 3; i++) {
		desc(f, i, BUF_GPA + 64 * i, 8, 0, 0);
		drv_add(f, (uint16_t)i);
	}
	expect_chain(f, 0, 1, 0, 8, 0);
	assert_int_equal(f->vq.avail_known, 2);
	avail(f)->idx = (uint16_t)(f->drv_avail + QSIZE + 1);
	expect_chain(f, 1, 1, 0, 8, 0);
	expect_chain(f, 2, 1, 0, 8, 0);
	assert_int_equal(pop(f), -EINVAL);
	assert_string_equal(f->vq.error, "avail->idx more than size ahead");

	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
	assert_int_equal(f->vq.avail_known, 0);
	drv_add(f, 0);
	drv_add(f, 1);
	expect_chain(f, 0, 1, 0, 8, 0);
	vq_reset(&f->vq);
	assert_int_equal(f->vq.avail_known, 0);
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
	assert_int_equal(pop(f), 0);
	/* A chain published while the device works through the last batch is taken too. */
	drv_add(f, 0);
	expect_chain(f, 0, 1, 0, 8, 0);
	drv_add(f, 1);
	expect_chain(f, 1, 1, 0, 8, 0);
	assert_int_equal(pop(f), 0);
}

/* Once broken, nothing touches guest memory: make all of RAM inaccessible to prove it. */
static void broken_stays_broken(void **state)
{
	struct fx *f = *state;
	desc(f, 0, BUF_GPA, 1, VRING_DESC_F_NEXT, 0);
	drv_add(f, 0);
	assert_int_equal(pop(f), -EINVAL);
	assert_int_equal(mprotect(f->ram, RAM_SIZE, PROT_NONE), 0);
	assert_int_equal(pop(f), -EINVAL);
	vq_push(&f->vq, 0, 1);
	assert_false(vq_should_notify(&f->vq));
	assert_false(vq_enable_notify(&f->vq));
	vq_disable_notify(&f->vq);
	assert_int_equal(vq_avail_count(&f->vq), 0);
	assert_int_equal(mprotect(f->ram, RAM_SIZE, PROT_READ | PROT_WRITE), 0);
	/* reset + init re-arms it */
	vq_reset(&f->vq);
	assert_false(f->vq.broken);
	assert_null(f->vq.error);
	assert_false(f->vq.ready);
	assert_int_equal(pop(f), 0);
	assert_int_equal(rearm(f, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
	assert_int_equal(pop(f), 0);
}

static void iov_copies(void **state)
{
	(void)state;
	uint8_t a[3], b[5], out[8];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	const uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	assert_int_equal(iov_from_buf(iov, 2, 0, src, 8), 8);
	assert_int_equal(a[2], 3);
	assert_int_equal(b[0], 4);
	memset(out, 0, sizeof(out));
	assert_int_equal(iov_to_buf(iov, 2, 2, out, 8), 6); /* short: iovecs end */
	assert_memory_equal(out, src + 2, 6);
	assert_int_equal(iov_to_buf(iov, 2, 4, out, 2), 2);
	assert_int_equal(out[0], 5);
	assert_int_equal(iov_to_buf(iov, 2, 8, out, 1), 0);
	assert_int_equal(iov_from_buf(iov, 2, 3, src, 1), 1);
	assert_int_equal(b[0], 1);
	assert_int_equal(iov_to_buf(iov, 0, 0, out, 1), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	    T(init_rejects),
	    T(huge_queue_top_of_ram),
	    T(chain_out_only),
	    T(chain_in_only),
	    T(chain_out_in_and_push),
	    T(index_wrap),
	    T(zero_length_desc),
	    T(indirect_chains),
	    T(e2big_consumes),
	    T(chain_limits),
	    T(event_idx_notify),
	    T(no_interrupt_flag),
	    T(enable_disable_notify),
	    T(rewind_pops),
	    T(budget_stops_pop),
	    T(budget_edges),
	    T(bad_ring_indexes),
	    T(broken_stays_broken),
	    T(iov_copies),
	    T(avail_idx_read_per_batch),
	};
	struct CMUnitTest tests[ARRAY_SIZE(fixed) + ARRAY_SIZE(bad_cases)];

	log_set_level(LOG_ERROR); /* malformed-ring warnings are expected here */
	memcpy(tests, fixed, sizeof(fixed));
	for (unsigned i = 0; i < ARRAY_SIZE(bad_cases); i++)
		tests[ARRAY_SIZE(fixed) + i] = (struct CMUnitTest){
		    .name = bad_cases[i].name,
		    .test_func = bad_chain,
		    .setup_func = setup,
		    .teardown_func = teardown,
		    .initial_state = (void *)&bad_cases[i],
		};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
