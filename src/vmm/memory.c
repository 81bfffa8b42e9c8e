/* memory.c: guest RAM layout around the 32-bit MMIO hole, its three backings (anonymous,
 * snapshot file, memfd), bounds-checked gpa translation and the VMM's dirty bitmap. */
#include "vmm/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"

#define PAGE_SIZE GUEST_PAGE_SIZE
/* Guard against sizes whose layout would overflow: 1 TiB is far above any host here. */
#define GUEST_MEM_MAX (1ULL << 40)

int guest_mem_layout(struct guest_mem *m, uint64_t ram_size)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (ram_size == 0 || ram_size % PAGE_SIZE || ram_size > GUEST_MEM_MAX)
		return -EINVAL;

	uint64_t low = MIN(ram_size, LAYOUT_MMIO_HOLE_START);
	m->regions[0] = (struct mem_region){ .gpa = 0, .size = low };
	m->nr_regions = 1;
	if (ram_size > low) {
		m->regions[1] = (struct mem_region){ .gpa = LAYOUT_RAM_ABOVE_4G,
						     .size = ram_size - low,
						     .offset = low };
		m->nr_regions = 2;
	}
	m->ram_size = ram_size;
	return 0;
}

/* Point each region into the one host mapping p of m->ram_size bytes. */
static void set_base(struct guest_mem *m, void *p)
{
	m->base = p;
	m->base_len = m->ram_size;
	for (unsigned i = 0; i < m->nr_regions; i++)
		m->regions[i].hva = m->base + m->regions[i].offset;
}

/*
 * Guest RAM is never worth a core dump. THP helps real guests boot faster, but not in the
 * first 2 MiB: kiln writes its boot structures there (page tables, boot params, ACPI tables),
 * and as one huge page that first touch would zero - and with THP defrag "madvise", maybe
 * compact for - 2 MiB before the guest's first instruction (0.2-4.6 ms measured,
 * docs/design.md "Start-up order").
 */
static void advise(void *p, uint64_t ram_size)
{
	madvise(p, ram_size, MADV_DONTDUMP);
	if (ram_size > GUEST_MEM_SMALL_PAGES)
		madvise((char *)p + GUEST_MEM_SMALL_PAGES, ram_size - GUEST_MEM_SMALL_PAGES,
			MADV_HUGEPAGE);
}

int guest_mem_init(struct guest_mem *m, uint64_t ram_size)
{
	int ret = guest_mem_layout(m, ram_size);
	if (ret)
		return ret;

	/* One reservation for all regions: host offsets follow region order, so the
	 * hole costs no host address space. */
	void *p = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	advise(p, ram_size);
	set_base(m, p);
	return 0;
}

int guest_mem_init_from_file(struct guest_mem *m, uint64_t ram_size, int fd, const char *name,
			     char *err, size_t errlen)
{
	struct stat st;
	int ret = guest_mem_layout(m, ram_size);
	if (ret) {
		snprintf(err, errlen, "memory file %s: guest RAM size %llu bytes is not valid", name,
			 (unsigned long long)ram_size);
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "memory file %s: %s", name, strerror(errno));
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "memory file %s: not a regular file", name);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size != ram_size) {
		snprintf(err, errlen, "memory file %s: %llu bytes, the snapshot's guest RAM is %llu bytes",
			 name, (unsigned long long)st.st_size, (unsigned long long)ram_size);
		return -EINVAL;
	}
	/* Region i's bytes sit at file offset regions[i].offset, which is also its host offset
	 * in one mapping: a single mmap lays out every region. MAP_PRIVATE: guest writes are
	 * copy-on-write into this process, the file is never written. */
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0) {
		ret = -errno;
		snprintf(err, errlen, "memory file %s: %s", name, strerror(errno));
		return ret;
	}
	void *p = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, own, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		snprintf(err, errlen, "memory file %s: mmap: %s", name, strerror(errno));
		close(own);
		return ret;
	}
	madvise(p, ram_size, MADV_DONTDUMP);
	set_base(m, p);
	m->backing = GUEST_MEM_FILE;
	m->fd = own;
	return 0;
}

int guest_mem_init_memfd(struct guest_mem *m, uint64_t ram_size)
{
	int ret = guest_mem_layout(m, ram_size);
	if (ret)
		return ret;
	int fd = memfd_create("kiln-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* Sealed size: no one holding the fd can shrink it under a mapping (SIGBUS). */
	if (ftruncate(fd, (off_t)ram_size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	void *p = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		close(fd);
		return ret;
	}
	advise(p, ram_size);
	set_base(m, p);
	m->backing = GUEST_MEM_MEMFD;
	m->fd = fd;
	return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
	if (m->base)
		munmap(m->base, m->base_len);
	if (m->fd >= 0 && m->backing != GUEST_MEM_ANON)
		close(m->fd);
	free(m->vmm_dirty);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

static const struct mem_region *find_region(const struct guest_mem *m, gpa_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	uint64_t last;
	if (__builtin_add_overflow(gpa, len - 1, &last))
		return NULL;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];
		/* r->size > 0 always, so r->gpa + r->size - 1 cannot overflow for valid layouts. */
		if (gpa >= r->gpa && last <= r->gpa + (r->size - 1))
			return r;
	}
	return NULL;
}

void *gpa_to_hva(const struct guest_mem *m, gpa_t gpa, uint64_t len)
{
	const struct mem_region *r = find_region(m, gpa, len);
	if (!r || !r->hva)
		return NULL;
	return r->hva + (gpa - r->gpa);
}

bool gpa_range_ok(const struct guest_mem *m, gpa_t gpa, uint64_t len)
{
	return find_region(m, gpa, len) != NULL;
}

uint64_t guest_mem_low_end(const struct guest_mem *m)
{
	return m->nr_regions ? m->regions[0].gpa + m->regions[0].size : 0;
}

int guest_mem_track_dirty(struct guest_mem *m, bool on)
{
	if (!on) {
		free(m->vmm_dirty);
		m->vmm_dirty = NULL;
		return 0;
	}
	if (m->vmm_dirty)
		return 0;
	m->vmm_dirty = calloc(guest_mem_bitmap_words(m), sizeof(uint64_t));
	return m->vmm_dirty ? 0 : -ENOMEM;
}

void guest_mem_mark_dirty(const struct guest_mem *m, gpa_t gpa, uint64_t len)
{
	uint64_t *bm = m->vmm_dirty;
	if (!bm)
		return;
	const struct mem_region *r = find_region(m, gpa, len);
	if (!r)
		return;
	uint64_t first = (r->offset + (gpa - r->gpa)) / GUEST_PAGE_SIZE;
	uint64_t last = (r->offset + (gpa - r->gpa) + (len ? len - 1 : 0)) / GUEST_PAGE_SIZE;
	/* Bounded by the region's page count. Relaxed: the snapshot writer reads the bitmap on
	 * the same thread, or after the threads that mark have stopped (VM paused, devices
	 * drained); its atomic exchange only has to not lose a concurrent bit. */
	for (uint64_t p = first; p <= last;) {
		if (p % 64 == 0 && last - p >= 63) {
			__atomic_fetch_or(&bm[p / 64], ~0ULL, __ATOMIC_RELAXED);
			p += 64;
		} else {
			__atomic_fetch_or(&bm[p / 64], 1ULL << (p % 64), __ATOMIC_RELAXED);
			p++;
		}
	}
}

void guest_mem_take_dirty(const struct guest_mem *m, uint64_t *out)
{
	uint64_t *bm = m->vmm_dirty;
	if (!bm)
		return;
	size_t n = guest_mem_bitmap_words(m);
	for (size_t i = 0; i < n; i++)
		if (__atomic_load_n(&bm[i], __ATOMIC_RELAXED))
			out[i] |= __atomic_exchange_n(&bm[i], 0, __ATOMIC_RELAXED);
}
