/* fuzz_blk.c: libFuzzer target: virtio-blk requests from a fuzzer-built queue against a memfd disk.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../tests/unit/fake_driver.h"
#include "util/log.h"

/*
 * Input, packed so that short inputs already describe whole requests:
 *
 *   u8 size_log   queue size q = 1 << (size_log % 5): 1..16
 *   u8 features   bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 DISCARD, bit 3 WRITE_ZEROES,
 *                 bit 4 FLUSH
 *   u8 kicks      times the device runs: 1 + (kicks & 3); bit 7: reset after each run and
 *                 put the same rings back
 *   u8 cfg        a config-space read: offset cfg % (config_size + 8), 1..8 bytes
 *   desc[q]       16 bytes each. Addresses with bit 63 clear are made to point into the heap:
 *                 HEAP + (addr & 0xffff); with bit 63 set they are used as given (mostly
 *                 outside RAM). Indirect tables are descriptors like any other buffer.
 *   avail         flags, idx, ring[q] (u16 each)
 *   heap          the rest, copied to HEAP: request headers, data, discard segments, tables
 *
 * RAM is 4 MiB with a guard page after it; the disk is a 64 KiB memfd on the sync engine.
 * Whatever the input, the device must not crash, hang or touch memory outside guest RAM.
 */
#define HDR 4
#define RINGS 0x1000ULL
#define HEAP 0x2000ULL
#define HEAP_SPAN 0x10000ULL
#define DISK_SIZE (64 * KiB)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_driver drv;
static struct virtio_dev *dev;

static void setup(void)
{
	char path[64], err[256];
	int fd;

	log_set_level(LOG_ERROR); /* guest errors are the point: only VMM errors print */
	if (fd_init(&drv))
		abort();
	fd = memfd_create("fuzz-blk-disk", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, DISK_SIZE))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct disk_config cfg = {.id = "fuzz", .path = path, .engine = DISK_ENGINE_SYNC};
	struct virtio_env env = {.mem = &drv.mem, .ev = NULL};
	if (virtio_blk_create(&env, &cfg, &dev, err, sizeof(err))) {
		fprintf(stderr, "fuzz_blk: %s\n", err);
		abort();
	}
}

/* Copy the rings and heap from the input into RAM (after a reset zeroed the ring area). */
static void load(const uint8_t *p, size_t n, uint16_t q, gpa_t desc, gpa_t avail)
{
	size_t dlen = MIN(n, 16u * q), alen, hlen;

	memcpy(drv.ram + desc, p, dlen);
	for (unsigned i = 0; i < q; i++) {
		uint64_t a;

		memcpy(&a, drv.ram + desc + 16 * i, 8);
		if (!(a >> 63))
			a = HEAP + (a & 0xffff);
		memcpy(drv.ram + desc + 16 * i, &a, 8);
	}
	p += dlen;
	n -= dlen;
	alen = MIN(n, 4u + 2u * q);
	memcpy(drv.ram + avail, p, alen);
	p += alen;
	n -= alen;
	hlen = MIN(n, (size_t)HEAP_SPAN);
	memcpy(drv.ram + HEAP, p, hlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t features = BIT_ULL(VIRTIO_F_VERSION_1) | BIT_ULL(2) | BIT_ULL(6);
	uint8_t cfg[8];

	if (!dev)
		setup();
	if (size < HDR)
		return 0;
	if (data[1] & 1)
		features |= BIT_ULL(VIRTIO_RING_F_EVENT_IDX);
	if (data[1] & 2)
		features |= BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC);
	if (data[1] & 4)
		features |= BIT_ULL(13);
	if (data[1] & 8)
		features |= BIT_ULL(14);
	if (data[1] & 16)
		features |= BIT_ULL(9);

	uint16_t q = (uint16_t)(1u << (data[0] % 5));
	gpa_t desc = RINGS, avail = desc + 16u * q, used = ALIGN_UP(avail + 6u + 2u * q, 4ULL);

	memset(drv.ram + HEAP, 0, HEAP_SPAN);
	fd_start_at(&drv, dev, 0, q, features, desc, avail, used);
	load(data + HDR, size - HDR, q, desc, avail);
	unsigned kicks = 1 + (data[2] & 3);
	for (unsigned i = 0; i < kicks; i++) {
		fd_kick(&drv);
		if (data[2] & 0x80) { /* reset in the middle, then the same rings again */
			fd_start_at(&drv, dev, 0, q, features, desc, avail, used);
			load(data + HDR, size - HDR, q, desc, avail);
		}
	}

	uint32_t off = data[3] % (dev->config_size + 8), len = 1 + data[3] / 32;
	if (off < dev->config_size) {
		len = MIN(len, dev->config_size - off);
		pthread_mutex_lock(&dev->lock);
		dev->ops->config_read(dev, off, cfg, len);
		pthread_mutex_unlock(&dev->lock);
	}
	return 0;
}
