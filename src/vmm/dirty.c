/* dirty.c: KVM memory slots with or without dirty logging, and the dirty-page log a Diff
 * snapshot is written from. */
#include "vmm/dirty.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int dirty_set_slots(int vm_fd, const struct guest_mem *m, bool log_dirty, char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];
		struct kvm_userspace_memory_region kr = {
		    .slot = i,
		    .flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		    .guest_phys_addr = r->gpa,
		    .memory_size = r->size,
		    .userspace_addr = (uint64_t)(uintptr_t)r->hva,
		};
		if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0) {
			int ret = -errno;
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION slot %u%s: %s", i,
				 log_dirty ? " (dirty logging)" : "", strerror(errno));
			return ret;
		}
	}
	return 0;
}

int dirty_log_start(struct dirty_log *d, int vm_fd, struct guest_mem *m, char *err, size_t errlen)
{
	uint64_t max_pages = 0;
	int ret;

	memset(d, 0, sizeof(*d));
	d->vm_fd = vm_fd;
	d->mem = m;
	for (unsigned i = 0; i < m->nr_regions; i++)
		max_pages = MAX(max_pages, m->regions[i].size / GUEST_PAGE_SIZE);
	d->pages = calloc(guest_mem_bitmap_words(m), sizeof(uint64_t));
	d->scratch = calloc((size_t)((max_pages + 63) / 64), sizeof(uint64_t));
	if (!d->pages || !d->scratch) {
		snprintf(err, errlen, "dirty page tracking: out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	ret = guest_mem_track_dirty(m, true);
	if (ret) {
		snprintf(err, errlen, "dirty page tracking: out of memory");
		goto fail;
	}
	ret = dirty_set_slots(vm_fd, m, true, err, errlen);
	if (ret) {
		/* Slots before the failing one log; put them back as they were. */
		char ignored[8];
		(void)!dirty_set_slots(vm_fd, m, false, ignored, sizeof(ignored));
		(void)!guest_mem_track_dirty(m, false);
		goto fail;
	}
	d->on = true;
	return 0;
fail:
	free(d->pages);
	free(d->scratch);
	memset(d, 0, sizeof(*d));
	return ret;
}

#define PM_CHUNK 512		/* pagemap entries read at once */
#define PM_PRESENT (1ULL << 63) /* /proc/PID/pagemap: page in RAM */
#define PM_SWAPPED (1ULL << 62) /* /proc/PID/pagemap: page in swap */

/* The data extent of a file found last: [start, end); start UINT64_MAX when none yet. */
struct extent {
	uint64_t start, end;
	bool none_after; /* no data past end */
};

/* Does the file hold data at offset off? Offsets must be asked in increasing order. */
static bool in_data(int fd, uint64_t off, struct extent *e)
{
	if (e->none_after)
		return false;
	if (e->start != UINT64_MAX && off < e->end)
		return off >= e->start;
	off_t data = lseek(fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno != ENXIO)
			return true;  /* cannot tell: count it */
		e->none_after = true; /* no data from off on */
		return false;
	}
	off_t hole = lseek(fd, data, SEEK_HOLE);
	e->start = (uint64_t)data;
	e->end = hole > data ? (uint64_t)hole : UINT64_MAX;
	return off >= e->start;
}

int dirty_log_mark_touched(struct dirty_log *d, char *err, size_t errlen)
{
	const struct guest_mem *m = d->mem;
	uint64_t ent[PM_CHUNK];
	struct extent ext = {.start = UINT64_MAX};
	int ret = 0;

	if (!d->on || m->backing == GUEST_MEM_FILE) {
		snprintf(err, errlen, "dirty page tracking: %s",
			 d->on ? "file-backed RAM has a base already" : "not started");
		return -EINVAL;
	}
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		ret = -errno;
		snprintf(err, errlen, "/proc/self/pagemap: %s", strerror(errno));
		return ret;
	}
	for (unsigned i = 0; i < m->nr_regions && !ret; i++) {
		const struct mem_region *r = &m->regions[i];
		uint64_t npages = r->size / GUEST_PAGE_SIZE;
		/* Bounded by the region's size, PM_CHUNK pages a pass. */
		for (uint64_t pg = 0; pg < npages; pg += PM_CHUNK) {
			uint64_t n = MIN(PM_CHUNK, npages - pg);
			uintptr_t hva = (uintptr_t)(r->hva + pg * GUEST_PAGE_SIZE);
			size_t want = (size_t)n * sizeof(uint64_t);
			ssize_t got = pread(pm, ent, want, (off_t)(hva / GUEST_PAGE_SIZE * 8));
			if (got != (ssize_t)want) {
				ret = got < 0 ? -errno : -EIO;
				snprintf(err, errlen, "/proc/self/pagemap: %s",
					 got < 0 ? strerror(errno) : "short read");
				break;
			}
			for (uint64_t k = 0; k < n; k++) {
				uint64_t page = r->offset / GUEST_PAGE_SIZE + pg + k;
				bool touched = ent[k] & (PM_PRESENT | PM_SWAPPED);
				/* memfd RAM: a page not mapped here may still be in the file. */
				if (!touched && m->backing == GUEST_MEM_MEMFD)
					touched = in_data(m->fd, page * GUEST_PAGE_SIZE, &ext);
				if (touched)
					d->pages[page / 64] |= 1ULL << (page % 64);
			}
		}
	}
	close(pm);
	return ret;
}

/* OR n bits of src (from bit 0) into dst from bit `at`. */
static void or_bits(uint64_t *dst, uint64_t at, const uint64_t *src, uint64_t n)
{
	uint64_t words = (n + 63) / 64;
	for (uint64_t w = 0; w < words; w++) {
		uint64_t v = src[w];
		if (w == words - 1 && n % 64)
			v &= (1ULL << (n % 64)) - 1; /* KVM leaves padding bits as they were */
		if (!v)
			continue;
		uint64_t bit = at + w * 64;
		dst[bit / 64] |= v << (bit % 64);
		if (bit % 64 && v >> (64 - bit % 64))
			dst[bit / 64 + 1] |= v >> (64 - bit % 64);
	}
}

int dirty_log_sync(struct dirty_log *d, char *err, size_t errlen)
{
	if (!d->on) {
		snprintf(err, errlen, "dirty page tracking is off");
		return -EINVAL;
	}
	for (unsigned i = 0; i < d->mem->nr_regions; i++) {
		const struct mem_region *r = &d->mem->regions[i];
		uint64_t n = r->size / GUEST_PAGE_SIZE;
		struct kvm_dirty_log log = {.slot = i, .dirty_bitmap = d->scratch};

		memset(d->scratch, 0, (size_t)((n + 63) / 64) * sizeof(uint64_t));
		if (ioctl(d->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			int ret = -errno;
			snprintf(err, errlen, "KVM_GET_DIRTY_LOG slot %u: %s", i, strerror(errno));
			return ret;
		}
		/* KVM has cleared its log: the bits must not be lost from here on. */
		or_bits(d->pages, r->offset / GUEST_PAGE_SIZE, d->scratch, n);
	}
	guest_mem_take_dirty(d->mem, d->pages);
	return 0;
}

void dirty_log_clear(struct dirty_log *d)
{
	if (d->pages)
		memset(d->pages, 0, guest_mem_bitmap_words(d->mem) * sizeof(uint64_t));
}

uint64_t dirty_log_count(const struct dirty_log *d)
{
	uint64_t n = 0;
	if (!d->pages)
		return 0;
	for (size_t i = 0; i < guest_mem_bitmap_words(d->mem); i++)
		n += (uint64_t)__builtin_popcountll(d->pages[i]);
	return n;
}

void dirty_log_stop(struct dirty_log *d)
{
	if (d->on) {
		char ignored[8];
		(void)!dirty_set_slots(d->vm_fd, d->mem, false, ignored, sizeof(ignored));
		(void)!guest_mem_track_dirty(d->mem, false);
	}
	dirty_log_free(d);
}

void dirty_log_free(struct dirty_log *d)
{
	free(d->pages);
	free(d->scratch);
	memset(d, 0, sizeof(*d));
}
