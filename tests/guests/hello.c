/* hello.c: boot-path guest: proves long mode (EFER.LMA), checks its entry path's boot info. */
#include "runtime.h"

/* Built twice: hello (PVH note, 32-bit entry) and hello64 (no note, 64-bit entry). */
#ifndef HELLO_NAME
#define HELLO_NAME "hello"
#endif
#ifndef HELLO_ENTRY
#define HELLO_ENTRY BOOT_ENTRY_PVH
#endif

#define MSR_EFER 0xc0000080
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)
#define E820_RAM 1

const char guest_name[] = HELLO_NAME;

extern const char __image_start[], __image_end[];

/* Is [__image_start, __image_end) inside one RAM entry of the memory map? */
static bool covers_image(uint64_t addr, uint64_t size, uint32_t type)
{
	uint64_t lo = (uint64_t)__image_start, hi = (uint64_t)__image_end;

	return type == E820_RAM && addr <= lo && hi - addr <= size;
}

static void check_pvh(void)
{
	const struct hvm_start_info *si = (const void *)boot_info;
	bool found = false;

	if (boot_info == 0 || boot_info >= 0x100000000ull)
		fail("EBX at the PVH entry was 0x%lx", boot_info);
	if (si->magic != HVM_START_MAGIC)
		fail("hvm_start_info magic 0x%x, expected 0x%x", si->magic, HVM_START_MAGIC);
	kprintf("hello: hvm_start_info at 0x%lx version %u rsdp 0x%lx cmdline 0x%lx memmap %u "
		"entries\n",
		boot_info, si->version, si->rsdp_paddr, si->cmdline_paddr,
		si->version >= 1 ? si->memmap_entries : 0);
	if (si->version < 1 || si->memmap_entries == 0 || si->memmap_paddr == 0)
		fail("hvm_start_info has no memory map (version %u)", si->version);
	const struct hvm_memmap_entry *mm = (const void *)si->memmap_paddr;
	for (uint32_t i = 0; i < si->memmap_entries && i < 128; i++)
		found |= covers_image(mm[i].addr, mm[i].size, mm[i].type);
	if (!found)
		fail("PVH memory map has no RAM entry covering the image at %p",
		     (void *)__image_start);
}

static void check_boot_params(void)
{
	const uint8_t *bp = (const void *)boot_info;
	bool found = false;

	if (boot_info == 0 || boot_info >= 0x100000000ull)
		fail("RSI at the 64-bit entry was 0x%lx, expected boot_params", boot_info);
	unsigned n = bp[BP_E820_ENTRIES];
	kprintf("hello: boot_params at 0x%lx, %u e820 entries\n", boot_info, n);
	if (n == 0 || n > BP_E820_MAX)
		fail("boot_params.e820_entries is %u", n);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + i * 20;
		uint64_t addr, size;
		uint32_t type;
		memcpy(&addr, e, 8);
		memcpy(&size, e + 8, 8);
		memcpy(&type, e + 16, 4);
		found |= covers_image(addr, size, type);
	}
	if (!found)
		fail("e820 has no RAM entry covering the image at %p", (void *)__image_start);
}

void guest_main(void)
{
	uint64_t efer = rdmsr(MSR_EFER), cr0, cr4;
	uint16_t cs;

	__asm__ volatile("movq %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("movq %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("movw %%cs, %0" : "=r"(cs));
	kprintf(
	    "hello: long mode via the %u-bit entry: EFER 0x%lx (LME %u LMA %u) CR0 0x%lx CR4 0x%lx "
	    "CS 0x%x LAPIC ID %u\n",
	    boot_entry, efer, !!(efer & EFER_LME), !!(efer & EFER_LMA), cr0, cr4, cs, lapic_id());
	if (!(efer & EFER_LMA))
		fail("EFER.LMA clear: not in long mode");
	if (boot_entry != HELLO_ENTRY)
		fail("entered via the %u-bit entry, expected the %u-bit one", boot_entry,
		     HELLO_ENTRY);
	if (boot_entry == BOOT_ENTRY_PVH)
		check_pvh();
	else
		check_boot_params();
	pass("");
}
