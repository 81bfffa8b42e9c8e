/* unhandled.c: POPCNT (not in KVM's emulator) on unbacked MMIO: kiln must report it, exit 1. */
#include "runtime.h"

const char guest_name[] = "unhandled";

/* In the PCI MMIO window of kiln's layout, with no device behind it. */
#define HOLE_ADDR 0xd0000000ul

void guest_main(void)
{
	uint32_t v;

	kprintf("PASS unhandled-start\n");
	kprintf("unhandled: popcnt (f3 0f b8 01) reading 0x%lx next\n", HOLE_ADDR);
	/* The access exits to KVM as MMIO even on hardware virtualization; KVM's emulator has no
	 * POPCNT, so KVM_RUN returns KVM_EXIT_INTERNAL_ERROR (emulation). */
	__asm__ volatile("popcntl (%1), %0" : "=a"(v) : "c"(HOLE_ADDR) : "memory");
	fail("popcnt on unbacked MMIO completed (result %u); the VMM should have stopped the VM",
	     v);
}
