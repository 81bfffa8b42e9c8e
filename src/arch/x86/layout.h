/* layout.h: the x86 guest-physical memory map kiln builds.
 *
 *   0x0000_0000  +---------------------------+
 *                | real-mode IVT/BDA (unused)|
 *   0x0000_0500  | boot GDT                  |
 *   0x0000_6000  | PVH hvm_start_info + e820 |
 *   0x0000_7000  | boot_params (zero page)   |
 *   0x0000_8ff0  | boot stack top            |
 *   0x0000_9000  | PML4, PDPT, 4 PDs (4 GiB  |
 *                |  identity, 2 MiB pages)   |
 *   0x0002_0000  | kernel command line       |
 *   0x0009_fc00  +---------------------------+ e820: reserved up to 1 MiB
 *   0x000d_f000  | VMGenID: 16-byte ID       |
 *   0x000e_0000  | ACPI: RSDP, XSDT, FADT,   |
 *                |  MADT, DSDT               |
 *   0x0010_0000  +---------------------------+ e820: RAM
 *                | kernel (bzImage at 1 MiB, |
 *                |  vmlinux at its p_paddr)  |
 *                | ...                       |
 *                | initrd (top of low RAM)   |
 *   low_end      +---------------------------+  (<= 3 GiB)
 *   0xc000_0000  | 32-bit MMIO hole: PCI     |
 *   0xfec0_0000  |  IOAPIC, 0xfee0_0000 LAPIC|
 *   0x1_0000_0000+---------------------------+
 *                | RAM above 4 GiB           |
 */
#pragma once

#define LAYOUT_GDT 0x500ULL
#define LAYOUT_PVH_START_INFO 0x6000ULL
#define LAYOUT_ZERO_PAGE 0x7000ULL
#define LAYOUT_BOOT_STACK 0x8ff0ULL
#define LAYOUT_PML4 0x9000ULL
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL /* 4 pages: 0xb000..0xefff */
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL /* bytes including NUL */
#define LAYOUT_EBDA_START 0x9fc00ULL
#define LAYOUT_VMGENID 0xdf000ULL /* the VM generation ID (devices/vmgenid.h), 16 bytes */
#define LAYOUT_ACPI_START 0xe0000ULL
#define LAYOUT_ACPI_END 0x100000ULL
#define LAYOUT_HIGH_MEM_START 0x100000ULL /* 1 MiB */
#define LAYOUT_BZIMAGE_LOAD 0x100000ULL

#define LAYOUT_MMIO_HOLE_START 0xc0000000ULL /* 3 GiB */
#define LAYOUT_MMIO_HOLE_END 0x100000000ULL  /* 4 GiB */
#define LAYOUT_PCI_MMIO_START 0xc0000000ULL
#define LAYOUT_PCI_MMIO_END 0xfec00000ULL
#define LAYOUT_IOAPIC 0xfec00000ULL
#define LAYOUT_LAPIC 0xfee00000ULL
#define LAYOUT_RAM_ABOVE_4G 0x100000000ULL

/* Identity map covers [0, LAYOUT_IDENTITY_MAP_END). */
#define LAYOUT_IDENTITY_MAP_END 0x100000000ULL

/* Boot GDT selectors (entries at LAYOUT_GDT). */
#define LAYOUT_GDT_CODE32 0x08 /* not used by 64-bit entry */
#define LAYOUT_GDT_CODE64 0x10
#define LAYOUT_GDT_DATA 0x18
#define LAYOUT_GDT_TSS 0x20
