/* boot.h: x86 kernel loading (ELF vmlinux via PVH or 64-bit entry, bzImage), e820, boot page tables. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"
#include "vmm/memory.h"

enum boot_entry_kind {
	BOOT_ENTRY_64 = 0, /* Linux 64-bit boot protocol: long mode, RSI = boot_params */
	BOOT_ENTRY_PVH,    /* PVH: 32-bit protected mode, paging off, EBX = hvm_start_info */
};

struct boot_request {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;     /* never NULL; "" allowed */
	gpa_t rsdp;              /* 0 if no ACPI tables */
};

struct boot_info {
	enum boot_entry_kind kind;
	gpa_t entry;       /* RIP (64-bit) or EIP (PVH) */
	gpa_t boot_params; /* zero page (64-bit) or hvm_start_info (PVH) */
	gpa_t stack;       /* initial RSP */
	gpa_t kernel_start, kernel_end;
	gpa_t initrd_start;
	uint64_t initrd_size;
};

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Build the e820 map for m. Returns the number of entries written (at most max). */
unsigned x86_e820_build(const struct guest_mem *m, struct e820_entry *out, unsigned max);

/* Load kernel (+initrd, cmdline) into guest memory and write boot_params or PVH start_info,
 * the boot GDT and identity page tables. Files are read with pread straight into guest RAM.
 * On error returns -errno and writes a one-line reason to err. */
int x86_boot_load(struct guest_mem *m, const struct boot_request *req, struct boot_info *out,
		  char *err, size_t errlen) __must_check;
