/* dirty.c: a guest that never ends: dirties the same 1 % of its RAM pass after pass, one word
 * per 4 KiB page, and prints a '.' to COM1 after each pass (bench/snapshot.sh's Diff row). */
#include "runtime.h"

/*
 * The region starts at the first 2 MiB boundary above the image (its stack included) and is
 * 1 % of RAM rounded up to whole pages, RAM being the end of the highest RAM entry of the PVH
 * memory map (kiln's RAM starts at 0). Every pass writes the pass number to the first word of
 * each page of it, so after a pass a Diff snapshot holds those pages plus the few the stack
 * and .data touch. Before writing, each pass checks that every page still holds the previous
 * pass's number: a VM restored from a snapshot that lost a page prints FAIL.
 *
 * Output: "READY dirty ram 0x<bytes> region 0x<start> 0x<bytes> pages <n>", then one '.' per
 * pass (a newline every 64).
 */

const char guest_name[] = "dirty";

extern const char __image_end[];

#define E820_RAM 1
#define PAGE_SIZE 4096ul
#define REGION_ALIGN (2ul << 20)
#define CACHED_TOP (3ul << 30) /* start.S maps [3 GiB, 4 GiB) uncached (MMIO) */

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

void guest_main(void)
{
	const struct hvm_start_info *si = (const void *)boot_info;
	uint64_t ram = 0, start, len, end;
	bool inside = false;

	if (boot_entry != BOOT_ENTRY_PVH || si->magic != HVM_START_MAGIC || si->version < 1 ||
	    si->memmap_entries == 0)
		fail("no PVH memory map");
	const struct hvm_memmap_entry *mm = (const void *)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries && i < 128; i++)
		if (mm[i].type == E820_RAM && mm[i].addr + mm[i].size > ram)
			ram = mm[i].addr + mm[i].size;
	start = align_up((uint64_t)__image_end, REGION_ALIGN);
	len = align_up(ram / 100, PAGE_SIZE);
	end = start + len;
	for (uint32_t i = 0; i < si->memmap_entries && i < 128; i++)
		inside |=
		    mm[i].type == E820_RAM && mm[i].addr <= start && end <= mm[i].addr + mm[i].size;
	if (!inside || end > CACHED_TOP)
		fail("region [0x%lx, 0x%lx) is not in one RAM entry below 3 GiB", start, end);
	kprintf("READY dirty ram 0x%lx region 0x%lx 0x%lx pages %lu\n", ram, start, len,
		len / PAGE_SIZE);

	for (uint64_t pass = 1;; pass++) {
		for (uint64_t a = start; a < end; a += PAGE_SIZE) {
			volatile uint64_t *w = (volatile uint64_t *)a;
			uint64_t v = *w;

			if (pass > 1 && v != pass - 1)
				fail("page 0x%lx holds %lu in pass %lu", a, v, pass);
			*w = pass;
		}
		serial_putc('.');
		if (pass % 64 == 0)
			serial_putc('\n');
	}
}
