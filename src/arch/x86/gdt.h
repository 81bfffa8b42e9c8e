/* gdt.h: the one boot GDT table; boot.c writes its bytes, regs.c decodes them into kvm_segments. */
#pragma once

#include <stdint.h>

#include <linux/kvm.h>

/* Entries: null, 0x08 code32, 0x10 code64, 0x18 data, 0x20 TSS (16 bytes in long mode). */
#define X86_GDT_ENTRIES 6
#define X86_GDT_SIZE (X86_GDT_ENTRIES * 8)
#define X86_GDT_LIMIT (X86_GDT_SIZE - 1)

/* The descriptors exactly as written to guest memory at LAYOUT_GDT (little endian). */
extern const uint64_t x86_boot_gdt[X86_GDT_ENTRIES];

/* Decode the descriptor for selector from the table gdt[0..nr) into seg (selector included).
 * A selector outside the table, or the null selector, yields an unusable segment. */
void x86_gdt_segment(const uint64_t *gdt, unsigned nr, uint16_t selector, struct kvm_segment *seg);
