/* bootparam.h: guest-visible boot ABI: Linux zero page / setup header and the PVH start info. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "util/compiler.h"

/* ---- Linux x86 boot protocol (Documentation/arch/x86/boot.rst, zero-page.rst) ----
 *
 * The setup header sits at file offset 0x1f1 of a bzImage and at the same offset in the zero
 * page. Fields are listed up to protocol 2.15 (kernel_info_offset ends at 0x26c).
 */
#define SETUP_HDR_OFFSET 0x1f1
#define SETUP_HDR_MAGIC 0x53726448u /* "HdrS" at 0x202 */
#define SETUP_BOOT_FLAG 0xaa55u
#define SETUP_SECTS_DEFAULT 4 /* setup_sects == 0 means 4 */

#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x0001

#define BOOT_LOADER_UNDEFINED 0xff /* type_of_loader for a loader without an assigned id */
#define BOOT_HEAP_END_PTR 0xfe00   /* end of setup stack/heap - 0x200 (real-mode setup only) */
#define E820_MAX_ZEROPAGE 128

struct setup_header {
	uint8_t setup_sects; /* 0x1f1 */
	uint16_t root_flags; /* 0x1f2 */
	uint32_t syssize;    /* 0x1f4 */
	uint16_t ram_size;   /* 0x1f8 */
	uint16_t vid_mode;   /* 0x1fa */
	uint16_t root_dev;   /* 0x1fc */
	uint16_t boot_flag;  /* 0x1fe */
	uint16_t jump;	     /* 0x200 */
	uint32_t header;     /* 0x202 */
	uint16_t version;    /* 0x206 */
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader; /* 0x210 */
	uint8_t loadflags;	/* 0x211 */
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image; /* 0x218 */
	uint32_t ramdisk_size;	/* 0x21c */
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr; /* 0x224 */
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;	  /* 0x228 */
	uint32_t initrd_addr_max; /* 0x22c */
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;   /* 0x236 */
	uint32_t cmdline_size; /* 0x238 */
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address; /* 0x258 */
	uint32_t init_size;    /* 0x260 */
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

#define SETUP_FIELD_AT(f, off)                                                                     \
	static_assert(offsetof(struct setup_header, f) + SETUP_HDR_OFFSET == (off), #f)
SETUP_FIELD_AT(boot_flag, 0x1fe);
SETUP_FIELD_AT(header, 0x202);
SETUP_FIELD_AT(version, 0x206);
SETUP_FIELD_AT(type_of_loader, 0x210);
SETUP_FIELD_AT(ramdisk_image, 0x218);
SETUP_FIELD_AT(heap_end_ptr, 0x224);
SETUP_FIELD_AT(cmd_line_ptr, 0x228);
SETUP_FIELD_AT(initrd_addr_max, 0x22c);
SETUP_FIELD_AT(xloadflags, 0x236);
SETUP_FIELD_AT(cmdline_size, 0x238);
SETUP_FIELD_AT(pref_address, 0x258);
SETUP_FIELD_AT(init_size, 0x260);
static_assert(sizeof(struct setup_header) == 0x26c - SETUP_HDR_OFFSET, "setup_header size");

/* The zero page. Only the fields kiln writes are named; the rest is padding. */
struct boot_params {
	uint8_t _pad0[0x070];
	uint64_t acpi_rsdp_addr; /* 0x070, protocol 2.14 */
	uint8_t _pad1[0x0c0 - 0x078];
	uint32_t ext_ramdisk_image; /* 0x0c0 */
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t _pad2[0x1e8 - 0x0cc];
	uint8_t e820_entries; /* 0x1e8 */
	uint8_t _pad3[SETUP_HDR_OFFSET - 0x1e9];
	struct setup_header hdr; /* 0x1f1 */
	uint8_t _pad4[0x2d0 - 0x26c];
	struct e820_entry e820_table[E820_MAX_ZEROPAGE]; /* 0x2d0 */
	uint8_t _pad5[0x1000 - 0xcd0];
} __attribute__((packed));

static_assert(sizeof(struct e820_entry) == 20, "e820 entry size");
static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image");
static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries");
static_assert(offsetof(struct boot_params, hdr) == SETUP_HDR_OFFSET, "hdr");
static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table");
static_assert(sizeof(struct boot_params) == 4096, "zero page size");

/* ---- PVH (xen/include/public/arch-x86/hvm/start_info.h) ---- */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u
#define HVM_START_VERSION 1

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
} __attribute__((packed));
static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
} __attribute__((packed));
static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry size");

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* same values as e820 */
	uint32_t reserved;
} __attribute__((packed));
static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry size");

/* Where the PVH pieces go inside the LAYOUT_PVH_START_INFO page. */
#define PVH_MODLIST_GPA (LAYOUT_PVH_START_INFO + 0x40)
#define PVH_MEMMAP_GPA (LAYOUT_PVH_START_INFO + 0x80)
#define PVH_MEMMAP_MAX 32
