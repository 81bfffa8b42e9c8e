/* fuzz_virtq.c: libFuzzer target: any guest RAM image and ring geometry is walked safely. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "virtio/queue.h"

/*
 * Input: a 24-byte header, then the guest RAM image (zero-filled when short).
 *
 *   u8  size_log   size = 1 << (size_log & 15); bit 4: use raw_size instead (may be invalid)
 *   u8  flags      bit 0 EVENT_IDX, bit 1 raw 32-bit ring addresses, bit 2 write avail_idx,
 *                  bit 3 device writes into writable buffers (they may alias the rings)
 *   u16 raw_size
 *   u32 desc, avail, used   ring addresses, masked to 0x1ffff unless flags bit 1
 *   u16 last_avail, used_idx   device state, as a snapshot restore would set it
 *   u16 avail_idx
 *   u8  iov_cap (& 63), u8 budget   chains per dispatch (0: the queue size); when it runs
 *                                     out with chains left, the next dispatch takes over
 *
 * Guest RAM is two separately allocated regions with a hole between them, so ASan catches
 * any access past either one:  [0, 48K)  hole [48K, 64K)  [64K, 80K)  nothing above.
 */
#define R0_GPA 0x0
#define R0_SIZE (48 * KiB)
#define R1_GPA (64 * KiB)
#define R1_SIZE (16 * KiB)
#define HDR_SIZE 24
#define MAX_ITER 4096
#define TOUCH_BUDGET (8 * MiB) /* bytes copied per input, to keep executions fast */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static uint8_t *r0, *r1;
static uint64_t touched;

static void setup(void)
{
	r0 = malloc(R0_SIZE);
	r1 = malloc(R1_SIZE);
	if (!r0 || !r1)
		abort();
	mem.regions[0] = (struct mem_region){.gpa = R0_GPA, .size = R0_SIZE, .hva = r0};
	mem.regions[1] = (struct mem_region){.gpa = R1_GPA, .size = R1_SIZE, .hva = r1};
	mem.nr_regions = 2;
	mem.ram_size = R0_SIZE + R1_SIZE;
	log_set_level(LOG_ERROR); /* malformed rings are the point; keep output quiet */
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

/* [p, p+len) inside one region's host buffer */
static bool in_region(const void *p, size_t len)
{
	for (unsigned i = 0; i < mem.nr_regions; i++) {
		const uint8_t *b = mem.regions[i].hva;
		uintptr_t a = (uintptr_t)p, lo = (uintptr_t)b, hi = lo + mem.regions[i].size;
		if (a >= lo && a < hi && len <= hi - a)
			return true;
	}
	return false;
}

static void check_chain(const struct vq_chain *c, const struct iovec *iov, unsigned cap,
			uint16_t qsize, bool scribble)
{
	static uint8_t scratch[R0_SIZE + R1_SIZE];
	uint64_t out = 0, in = 0;

	if (c->head >= qsize || c->n_out + c->n_in > cap)
		abort();
	for (unsigned i = 0; i < c->n_out + c->n_in; i++) {
		if (iov[i].iov_len == 0 || !in_region(iov[i].iov_base, iov[i].iov_len))
			abort();
		if (i < c->n_out)
			out += iov[i].iov_len;
		else
			in += iov[i].iov_len;
	}
	if (out != c->out_len || in != c->in_len || out + in > UINT32_MAX)
		abort();
	/* Touch every byte so ASan sees any bad mapping. Buffers can repeat, so a chain can
	 * be longer than RAM: copy in RAM-sized pieces. */
	touched += out + in;
	if (touched > TOUCH_BUDGET)
		return;
	for (uint64_t off = 0; off < out; off += sizeof(scratch))
		if (iov_to_buf(iov, c->n_out, off, scratch, sizeof(scratch)) !=
		    MIN(sizeof(scratch), out - off))
			abort();
	if (scribble)
		for (uint64_t off = 0; off < in; off += sizeof(scratch))
			if (iov_from_buf(iov + c->n_out, c->n_in, off, scratch, sizeof(scratch)) !=
			    MIN(sizeof(scratch), in - off))
				abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iovec iov[64];
	struct virtq vq;
	struct vq_chain c;

	if (!r0)
		setup();
	touched = 0;
	if (size < HDR_SIZE)
		return 0;

	const uint8_t *h = data;
	uint8_t flags = h[1];
	uint32_t mask = (flags & 2) ? UINT32_MAX : 0x1ffff;
	memset(&vq, 0, sizeof(vq));
	vq.size = (h[0] & 0x10) ? get16(h + 2) : (uint16_t)(1u << (h[0] & 15));
	vq.desc_gpa = get32(h + 4) & mask;
	vq.avail_gpa = get32(h + 8) & mask;
	vq.used_gpa = get32(h + 12) & mask;
	vq.event_idx = flags & 1;
	unsigned cap = h[22] & 63;

	size_t n = size - HDR_SIZE, k = MIN(n, (size_t)R0_SIZE);
	memset(r0, 0, R0_SIZE);
	memset(r1, 0, R1_SIZE);
	memcpy(r0, data + HDR_SIZE, k);
	memcpy(r1, data + HDR_SIZE + k, MIN(n - k, (size_t)R1_SIZE));

	if (vq_init(&vq, &mem)) {
		if (vq.ready)
			abort();
		return 0;
	}
	vq.last_avail = get16(h + 16);
	vq.used_idx = get16(h + 18);
	if (flags & 4)
		*(uint16_t *)gpa_to_hva(&mem, vq.avail_gpa + 2, 2) = get16(h + 20);

	unsigned budget = h[23] ? h[23] : vq.size, taken = 0;
	vq_budget_begin(&vq, budget);
	vq_disable_notify(&vq);
	for (unsigned it = 0; it < MAX_ITER; it++) {
		uint16_t before = vq.last_avail;
		uint16_t count = vq_avail_count(&vq);
		int r = vq_pop(&vq, &c, iov, cap);

		if (count > vq.size)
			abort();
		if (r == 0) {
			if (vq.last_avail != before)
				abort();
			if (vq_enable_notify(&vq)) {
				vq_disable_notify(&vq);
				continue;
			}
			if (!vq_budget_end(&vq))
				break;
			/* Stopped by the budget with chains left: only once it was spent. The
			 * core kicks the queue again; the next dispatch gets a new budget. */
			if (taken != budget)
				abort();
			taken = 0;
			vq_budget_begin(&vq, budget);
			continue;
		}
		if (r == 1 || r == -E2BIG) {
			if (vq.broken || vq.last_avail != (uint16_t)(before + 1) ||
			    c.head >= vq.size || ++taken > budget)
				abort();
			if (r == 1)
				check_chain(&c, iov, cap, vq.size, flags & 8);
			vq_push(&vq, c.head, r == 1 ? (uint32_t)c.in_len : 0);
			(void)vq_should_notify(&vq);
			continue;
		}
		/* malformed: broken, nothing consumed, and it stays that way */
		if ((r != -EINVAL && r != -EFAULT) || !vq.broken || !vq.error ||
		    vq.last_avail != before)
			abort();
		if (vq_pop(&vq, &c, iov, cap) != -EINVAL || vq_should_notify(&vq) ||
		    vq_enable_notify(&vq) || vq_avail_count(&vq) != 0)
			abort();
		break;
	}
	vq_reset(&vq);
	if (vq_pop(&vq, &c, iov, cap) != 0)
		abort();
	return 0;
}
