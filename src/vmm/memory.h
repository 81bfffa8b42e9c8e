/* memory.h: guest RAM regions, the one bounds-checked gpa -> host pointer helper, and the
 * VMM's own dirty-page bitmap (pages kiln writes for devices, which KVM's log cannot see). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"

/* A guest-physical address. Never dereference one; translate it with gpa_to_hva(). */
typedef uint64_t gpa_t;

#define GUEST_MEM_MAX_REGIONS 4
/* Guest RAM below this stays in small pages (boot structures live there; see guest_mem_init). */
#define GUEST_MEM_SMALL_PAGES (2ULL << 20)

#define GUEST_PAGE_SIZE 4096ULL

/*
 * RAM offset: a byte's place when the regions are laid end to end in region order. It is the
 * host offset from base, the offset in a snapshot's memory file, and (divided by the page size)
 * the bit number in every dirty bitmap:
 *
 *   region 0: gpa 0 .. min(ram, 3 GiB)   -> RAM offset 0
 *   region 1: gpa 4 GiB ..               -> RAM offset regions[0].size
 */
struct mem_region {
	gpa_t gpa;       /* first guest-physical byte */
	uint64_t size;   /* bytes */
	uint64_t offset; /* RAM offset of the first byte */
	uint8_t *hva;    /* host mapping, NULL in layout-only (unit test) use */
};

enum guest_mem_backing {
	GUEST_MEM_ANON,	    /* anonymous private memory (the boot path) */
	GUEST_MEM_FILE,	    /* a snapshot memory file mapped MAP_PRIVATE (restore) */
	GUEST_MEM_MEMFD,    /* a memfd mapped MAP_SHARED (for fork: see guest_mem_init_memfd) */
};

struct guest_mem {
	struct mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t ram_size; /* total RAM bytes over all regions */
	uint8_t *base;     /* one host reservation backing every region */
	uint64_t base_len;
	enum guest_mem_backing backing;
	int fd;		   /* GUEST_MEM_FILE / MEMFD: the file, RAM offset = file offset; else -1 */
	/* The VMM's dirty bitmap, one bit per page in RAM-offset order, set with atomic ORs by
	 * guest_mem_mark_dirty from any thread. NULL while tracking is off. */
	uint64_t *vmm_dirty;
};

/* Words of a bitmap with one bit per page of m's RAM. */
static inline size_t guest_mem_bitmap_words(const struct guest_mem *m)
{
	return (size_t)((m->ram_size / GUEST_PAGE_SIZE + 63) / 64);
}

/* Fill m->regions for ram_size bytes of RAM around the 32-bit MMIO hole, without mapping.
 * Returns 0 or -EINVAL (ram_size zero, not page aligned, or too large). */
int guest_mem_layout(struct guest_mem *m, uint64_t ram_size) __must_check;

/* Lay out and map guest RAM: anonymous, private, MAP_NORESERVE. Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *m, uint64_t ram_size) __must_check;

/*
 * Restore: lay out ram_size bytes as guest_mem_init does and map the snapshot memory file fd
 * over them, MAP_PRIVATE: pages load on first touch, guest writes stay in this process, and
 * the cost does not depend on ram_size. fd must be a regular file of exactly ram_size bytes
 * (a shorter one would SIGBUS kiln on access); name is the path for messages. On success m
 * owns a dup of fd. Returns 0, or -errno with one line in err naming the file and the problem.
 * The file must not be truncated by anyone while the VM runs.
 */
int guest_mem_init_from_file(struct guest_mem *m, uint64_t ram_size, int fd, const char *name,
			     char *err, size_t errlen) __must_check;

/*
 * Guest RAM in a sealed-size memfd mapped MAP_SHARED (m->fd), so that another process can map
 * the same pages (a VM fork maps it MAP_PRIVATE: copy-on-write). Not the boot default: shmem
 * gets huge pages only if /sys/kernel/mm/transparent_hugepage/shmem_enabled allows it
 * ("never" on many hosts, where MADV_HUGEPAGE does nothing), its pages count as RssShmem and
 * host Shmem, and MADV_DONTNEED only unmaps them: freeing needs FALLOC_FL_PUNCH_HOLE.
 * Returns 0 or -errno.
 */
int guest_mem_init_memfd(struct guest_mem *m, uint64_t ram_size) __must_check;
void guest_mem_destroy(struct guest_mem *m);

/* Start (allocate a zeroed bitmap) or stop (free it) the VMM's dirty tracking. Not while
 * another thread may call guest_mem_mark_dirty. Returns 0 or -ENOMEM. */
int guest_mem_track_dirty(struct guest_mem *m, bool on) __must_check;

/* Record that kiln wrote (or may write) guest RAM [gpa, gpa+len): every page it touches.
 * One load and a branch when tracking is off; ranges outside RAM are ignored. Thread-safe. */
void guest_mem_mark_dirty(const struct guest_mem *m, gpa_t gpa, uint64_t len);

/* OR the VMM's dirty bitmap into out (guest_mem_bitmap_words words) and clear it, word by
 * word, atomically against concurrent marking. No-op when tracking is off. */
void guest_mem_take_dirty(const struct guest_mem *m, uint64_t *out);

/* Host pointer for [gpa, gpa+len) if that whole range lies inside one RAM region, else NULL.
 * len == 0 is treated as len == 1. Overflow of gpa + len is rejected. */
void *gpa_to_hva(const struct guest_mem *m, gpa_t gpa, uint64_t len);

/* True if [gpa, gpa+len) lies inside one RAM region (same rules as gpa_to_hva). */
bool gpa_range_ok(const struct guest_mem *m, gpa_t gpa, uint64_t len);

/* End (exclusive) of RAM below the 32-bit MMIO hole. */
uint64_t guest_mem_low_end(const struct guest_mem *m);
