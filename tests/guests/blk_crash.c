/* blk_crash.c: numbered 4 KiB blocks to a virtio-blk disk, a FLUSH after each batch, and a
 * `FLUSHED n` line on COM1 once the flush is back: blk_crash.sh kills kiln at random moments
 * and checks that every block up to the last n it saw is in the image (issue 12).
 *
 * Block n sits at sector 8n and is 64 lines of 64 bytes: "B%08u R%02u " (block, line), 49
 * letters starting at 'a' + (n + r) % 26 and counting on, and '\n'. Text, so that the host side
 * can build the expected image with awk and compare it with cmp.
 *
 * Without VIRTIO_BLK_F_FLUSH (cache=unsafe) the device promises nothing: the guest says so,
 * checks that a FLUSH request is answered UNSUPP, and ends.
 */
#include "virtio_drv.h"

const char guest_name[] = "blk_crash";

#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_UNSUPP 2
#define BLK_CFG_CAPACITY 0 /* u64, in 512-byte sectors */

#define BLOCK 4096
#define SECTORS_PER_BLOCK 8
#define LINE 64
#define BATCH 8 /* blocks per flush: 3 descriptors each, plus the flush's 2, fit in 64 */
/* A request that is not back after this long is lost: a flush is an fdatasync on a host that
 * may be busy, so be generous. */
#define REQ_TIMEOUT_S 20

struct blk_hdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

static struct vdev blk;
static struct vq rq;
static struct blk_hdr hdrs[BATCH + 1]; /* [BATCH]: the flush */
static uint8_t status[BATCH + 1];
static uint8_t data[BATCH][BLOCK] __attribute__((aligned(4096)));
static uint8_t req_at[VQ_SIZE_MAX]; /* the request (index into hdrs) of each chain head */

/* lines[c]: a line whose letters start at 'a' + c, with blank numbers (built once). */
static uint64_t lines[26][LINE / 8];

static void make_lines(void)
{
	for (unsigned c = 0; c < 26; c++) {
		char *l = (char *)lines[c];

		memcpy(l, "B00000000 R00 ", 14);
		for (unsigned i = 14; i < LINE - 1; i++)
			l[i] = (char)('a' + (c + i - 14) % 26);
		l[LINE - 1] = '\n';
	}
}

/* Block n's content (see the top of the file): per line, eight 8-byte copies and the numbers
 * patched in, since guest instructions are expensive here. */
static void fill_block(uint8_t *p, uint32_t n)
{
	char digits[8];
	uint32_t v = n;

	for (int i = 7; i >= 0; i--, v /= 10)
		digits[i] = (char)('0' + v % 10);
	for (unsigned r = 0, c = n % 26; r < BLOCK / LINE; r++, c = c == 25 ? 0 : c + 1) {
		uint64_t *l = (uint64_t *)(p + r * LINE);

		for (unsigned w = 0; w < LINE / 8; w++)
			l[w] = lines[c][w];
		memcpy(p + r * LINE + 1, digits, 8);
		p[r * LINE + 11] = (uint8_t)('0' + r / 10);
		p[r * LINE + 12] = (uint8_t)('0' + r % 10);
	}
}

/* Wait for one used chain (any: requests complete out of order) and check its status. */
static void wait_one(const char *what)
{
	uint32_t head, len;

	for (unsigned s = 0; s < REQ_TIMEOUT_S; s++) {
		if (!vq_get_used(&rq, 1000000, &head, &len))
			continue;
		unsigned i = req_at[head]; /* head < rq.size: vq_get_used checked */

		if (status[i] != VIRTIO_BLK_S_OK)
			fail("%s: request %u (sector %lu) ended with status %u", what, i,
			     hdrs[i].sector, status[i]);
		return;
	}
	fail("%s: no request back within %u s (device status 0x%x)", what, REQ_TIMEOUT_S,
	     vdev_status(&blk));
}

/* Header, data (none for a flush), status byte. */
static void submit(unsigned i, uint32_t type, uint64_t sector, const void *buf)
{
	struct vbuf b[3] = {{&hdrs[i], sizeof(hdrs[i]), false}};
	unsigned n = 1;

	hdrs[i] = (struct blk_hdr){.type = type, .sector = sector};
	status[i] = 0xff; /* the device overwrites it */
	if (buf)
		b[n++] = (struct vbuf){buf, BLOCK, false};
	b[n++] = (struct vbuf){&status[i], 1, true};
	int head = vq_add(&rq, b, n);

	if (head < 0)
		fail("request ring full (%u free)", rq.nr_free);
	req_at[head] = (uint8_t)i;
}

/* Blocks first .. first + count - 1, all in flight together; back before this returns. */
static void write_batch(uint32_t first, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		fill_block(data[i], first + i);
		submit(i, VIRTIO_BLK_T_OUT, (uint64_t)(first + i) * SECTORS_PER_BLOCK, data[i]);
	}
	vq_kick(&rq);
	for (unsigned i = 0; i < count; i++)
		wait_one("write");
}

/* cache=unsafe: no FLUSH feature, and a FLUSH sent anyway is not answered as done. */
static void check_unsafe(void)
{
	uint32_t head, len;

	write_batch(0, BATCH);
	submit(BATCH, VIRTIO_BLK_T_FLUSH, 0, NULL);
	vq_kick(&rq);
	if (!vq_get_used(&rq, 4000000, &head, &len))
		fail("un-negotiated flush: no answer within 4 s");
	if (status[BATCH] != VIRTIO_BLK_S_UNSUPP)
		fail("un-negotiated flush answered with status %u, not UNSUPP (2)", status[BATCH]);
	pass(" unsafe: no FLUSH feature, a FLUSH request is answered UNSUPP");
}

void guest_main(void)
{
	if (!vdev_find(&blk, VIRTIO_ID_BLOCK))
		fail("no virtio-blk on bus 0 (run kiln with --disk)");
	vdev_negotiate(&blk, 1ull << VIRTIO_BLK_F_FLUSH);
	vdev_setup_queue(&blk, &rq, 0);
	vdev_driver_ok(&blk);
	make_lines();
	uint64_t blocks = vdev_cfg_read64(&blk, BLK_CFG_CAPACITY) / SECTORS_PER_BLOCK;
	bool flush = vdev_has(&blk, VIRTIO_BLK_F_FLUSH);

	kprintf("READY blk_crash: %lu blocks, ring of %u, flush=%u\n", blocks, rq.size, flush);
	if (!flush) {
		check_unsafe();
		return;
	}
	if (blocks < BATCH || blocks > 99999999)
		fail("a disk of %lu blocks: want %u to 10^8", blocks, BATCH);
	for (uint32_t first = 0; first + BATCH <= blocks; first += BATCH) {
		write_batch(first, BATCH);
		submit(BATCH, VIRTIO_BLK_T_FLUSH, 0, NULL);
		vq_kick(&rq);
		wait_one("flush");
		kprintf("FLUSHED %u\n", first + BATCH - 1);
	}
	kprintf("FULL\n");
	pass("");
}
