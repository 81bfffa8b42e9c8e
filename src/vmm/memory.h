/* memory.h: guest RAM regions and the one bounds-checked gpa -> host pointer helper. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/compiler.h"

/* A guest-physical address. Never dereference one; translate it with gpa_to_hva(). */
typedef uint64_t gpa_t;

#define GUEST_MEM_MAX_REGIONS 4
/* Guest RAM below this stays in small pages (boot structures live there; see guest_mem_init). */
#define GUEST_MEM_SMALL_PAGES (2ULL << 20)

struct mem_region {
	gpa_t gpa;     /* first guest-physical byte */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* host mapping, NULL in layout-only (unit test) use */
};

struct guest_mem {
	struct mem_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t ram_size; /* total RAM bytes over all regions */
	uint8_t *base;     /* one host reservation backing every region */
	uint64_t base_len;
};

/* Fill m->regions for ram_size bytes of RAM around the 32-bit MMIO hole, without mapping.
 * Returns 0 or -EINVAL (ram_size zero, not page aligned, or too large). */
int guest_mem_layout(struct guest_mem *m, uint64_t ram_size) __must_check;

/* Lay out and map guest RAM: anonymous, private, MAP_NORESERVE. Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *m, uint64_t ram_size) __must_check;
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) if that whole range lies inside one RAM region, else NULL.
 * len == 0 is treated as len == 1. Overflow of gpa + len is rejected. */
void *gpa_to_hva(const struct guest_mem *m, gpa_t gpa, uint64_t len);

/* True if [gpa, gpa+len) lies inside one RAM region (same rules as gpa_to_hva). */
bool gpa_range_ok(const struct guest_mem *m, gpa_t gpa, uint64_t len);

/* End (exclusive) of RAM below the 32-bit MMIO hole. */
uint64_t guest_mem_low_end(const struct guest_mem *m);
