/* memory.c: guest RAM layout around the 32-bit MMIO hole and bounds-checked gpa translation. */
#include "vmm/memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "arch/x86/layout.h"

#define PAGE_SIZE 4096ULL
/* Guard against sizes whose layout would overflow: 1 TiB is far above any host here. */
#define GUEST_MEM_MAX (1ULL << 40)

int guest_mem_layout(struct guest_mem *m, uint64_t ram_size)
{
	memset(m, 0, sizeof(*m));
	if (ram_size == 0 || ram_size % PAGE_SIZE || ram_size > GUEST_MEM_MAX)
		return -EINVAL;

	uint64_t low = MIN(ram_size, LAYOUT_MMIO_HOLE_START);
	m->regions[0] = (struct mem_region){ .gpa = 0, .size = low };
	m->nr_regions = 1;
	if (ram_size > low) {
		m->regions[1] = (struct mem_region){ .gpa = LAYOUT_RAM_ABOVE_4G,
						     .size = ram_size - low };
		m->nr_regions = 2;
	}
	m->ram_size = ram_size;
	return 0;
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
	/*
	 * Guest RAM is never worth a core dump. THP helps real guests boot faster, but not in
	 * the first 2 MiB: kiln writes its boot structures there (page tables, boot params,
	 * ACPI tables), and as one huge page that first touch would zero - and with THP defrag
	 * "madvise", maybe compact for - 2 MiB before the guest's first instruction
	 * (0.2-4.6 ms measured, docs/design.md "Start-up order").
	 */
	madvise(p, ram_size, MADV_DONTDUMP);
	if (ram_size > GUEST_MEM_SMALL_PAGES)
		madvise((char *)p + GUEST_MEM_SMALL_PAGES, ram_size - GUEST_MEM_SMALL_PAGES,
			MADV_HUGEPAGE);

	m->base = p;
	m->base_len = ram_size;
	uint64_t off = 0;
	for (unsigned i = 0; i < m->nr_regions; i++) {
		m->regions[i].hva = m->base + off;
		off += m->regions[i].size;
	}
	return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
	if (m->base)
		munmap(m->base, m->base_len);
	memset(m, 0, sizeof(*m));
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
