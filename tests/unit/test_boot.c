/* test_boot.c: kernel loader (ELF 64-bit, ELF PVH, bzImage), cmdline, initrd and e820 on fake RAM.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include "tmpfile.h"

#include "arch/x86/boot.h"
#include "arch/x86/bootparam.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"

#define RAM_64M (64 * MiB)
#define RSDP 0xe0000ULL
#define SEG_FILE_OFF 0x1000
#define NOTE_FILE_OFF 0x200
#define REAL_VMLINUX "/tmp/kern/vmlinux"
#define REAL_BZIMAGE "/tmp/kern/x/boot/vmlinuz-6.1.0-56-cloud-amd64"

static char err[256];

static uint8_t pattern(size_t i) { return (uint8_t)(i * 7 + 3); }

/* ---- crafted ELF ---- */

struct elf_spec {
	uint64_t paddr, vaddr, filesz, memsz, entry;
	int pvh_descsz; /* 0: no PVH note, else 4 or 8 */
	uint64_t pvh_entry;
	uint16_t machine;
};

static void put_note(uint8_t *buf, size_t *off, uint32_t type, const void *desc, uint32_t descsz)
{
	Elf64_Nhdr nh = {.n_namesz = 4, .n_descsz = descsz, .n_type = type};
	memcpy(buf + *off, &nh, sizeof(nh));
	memcpy(buf + *off + sizeof(nh), "Xen", 4);
	memcpy(buf + *off + sizeof(nh) + 4, desc, descsz);
	*off += sizeof(nh) + 4 + ALIGN_UP(descsz, 4);
}

/* ELF header, PT_LOAD (data at SEG_FILE_OFF) and optionally a PT_NOTE holding a decoy Xen note
 * followed by the PHYS32_ENTRY note. Returns the buffer; *len is the full file size. */
static uint8_t *make_elf(const struct elf_spec *s, size_t *len)
{
	*len = SEG_FILE_OFF + s->filesz;
	uint8_t *buf = calloc(1, *len);
	Elf64_Ehdr eh = {
	    .e_type = ET_EXEC,
	    .e_machine = s->machine ? s->machine : EM_X86_64,
	    .e_version = EV_CURRENT,
	    .e_entry = s->entry,
	    .e_phoff = sizeof(Elf64_Ehdr),
	    .e_ehsize = sizeof(Elf64_Ehdr),
	    .e_phentsize = sizeof(Elf64_Phdr),
	    .e_phnum = s->pvh_descsz ? 2 : 1,
	};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &eh, sizeof(eh));

	Elf64_Phdr ph[2] = {{
	    .p_type = PT_LOAD,
	    .p_offset = SEG_FILE_OFF,
	    .p_vaddr = s->vaddr ? s->vaddr : s->paddr,
	    .p_paddr = s->paddr,
	    .p_filesz = s->filesz,
	    .p_memsz = s->memsz,
	}};
	if (s->pvh_descsz) {
		size_t off = NOTE_FILE_OFF;
		put_note(buf, &off, 6, "linux", 6); /* XEN_ELFNOTE_GUEST_OS: must be skipped */
		put_note(buf, &off, XEN_ELFNOTE_PHYS32_ENTRY, &s->pvh_entry,
			 (uint32_t)s->pvh_descsz);
		ph[1] = (Elf64_Phdr){
		    .p_type = PT_NOTE, .p_offset = NOTE_FILE_OFF, .p_filesz = off - NOTE_FILE_OFF};
	}
	memcpy(buf + sizeof(eh), ph, sizeof(ph));
	for (size_t i = 0; i < s->filesz; i++)
		buf[SEG_FILE_OFF + i] = pattern(i);
	return buf;
}

/* ---- crafted bzImage ---- */

#define BZ_SETUP_SECTS 4
#define BZ_PM_SIZE 0x3000

struct bz_spec {
	uint8_t setup_sects;
	uint16_t version, xloadflags;
	uint32_t cmdline_size, initrd_addr_max, init_size;
	uint8_t relocatable;
	uint64_t pref_address;
};

static const struct bz_spec bz_default = {
    .setup_sects = BZ_SETUP_SECTS,
    .version = 0x020f,
    .xloadflags = XLF_KERNEL_64,
    .cmdline_size = 255,
    .initrd_addr_max = 0x7fffffff,
    .init_size = 0x200000,
    .relocatable = 1,
    .pref_address = 0x1000000,
};

static uint8_t *make_bzimage(const struct bz_spec *s, size_t *len)
{
	size_t setup = ((size_t)(s->setup_sects ? s->setup_sects : 4) + 1) * 512;
	*len = setup + BZ_PM_SIZE;
	uint8_t *buf = calloc(1, *len);
	struct setup_header h = {
	    .setup_sects = s->setup_sects,
	    .boot_flag = SETUP_BOOT_FLAG,
	    .jump = 0x6aeb, /* jmp short to 0x26c: the header ends there */
	    .header = SETUP_HDR_MAGIC,
	    .version = s->version,
	    .loadflags = LOADFLAG_LOADED_HIGH,
	    .code32_start = 0x100000,
	    .initrd_addr_max = s->initrd_addr_max,
	    .kernel_alignment = 0x200000,
	    .relocatable_kernel = s->relocatable,
	    .xloadflags = s->xloadflags,
	    .cmdline_size = s->cmdline_size,
	    .pref_address = s->pref_address,
	    .init_size = s->init_size,
	};
	memcpy(buf + SETUP_HDR_OFFSET, &h, sizeof(h));
	for (size_t i = 0; i < BZ_PM_SIZE; i++)
		buf[setup + i] = pattern(i);
	return buf;
}

/* ---- fixtures ---- */

static int ram_setup(void **state)
{
	struct guest_mem *m = calloc(1, sizeof(*m));
	if (guest_mem_init(m, RAM_64M))
		return -1;
	memset(m->regions[0].hva, 0xcc, 2 * MiB); /* boot structures must overwrite this */
	*state = m;
	return 0;
}

static int ram_teardown(void **state)
{
	guest_mem_destroy(*state);
	free(*state);
	return 0;
}

static int load(struct guest_mem *m, const char *kernel, const char *initrd, const char *cmdline,
		struct boot_info *bi)
{
	struct boot_request req = {
	    .kernel_path = kernel, .initrd_path = initrd, .cmdline = cmdline, .rsdp = RSDP};
	err[0] = 0;
	return x86_boot_load(m, &req, bi, err, sizeof(err));
}

static int load_bytes(struct guest_mem *m, const void *data, size_t len, struct boot_info *bi)
{
	char *path = tmp_file(data, len);
	int r = load(m, path, NULL, "console=ttyS0", bi);
	rm_file(path);
	return r;
}

static void *hva(struct guest_mem *m, gpa_t gpa, uint64_t len)
{
	void *p = gpa_to_hva(m, gpa, len);
	assert_non_null(p);
	return p;
}

static void check_pattern(struct guest_mem *m, gpa_t gpa, uint64_t len)
{
	const uint8_t *p = hva(m, gpa, len);
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != pattern(i))
			fail_msg("byte 0x%llx at gpa 0x%llx is 0x%02x", (unsigned long long)i,
				 (unsigned long long)gpa, p[i]);
}

static void check_e820_copy(struct guest_mem *m, const struct e820_entry *got, unsigned n)
{
	struct e820_entry want[16];
	unsigned nw = x86_e820_build(m, want, 16);
	assert_int_equal(n, nw);
	assert_memory_equal(got, want, nw * sizeof(want[0]));
}

/* Identity map: walk PML4 -> PDPT -> PD for gpa and return the 2 MiB frame it maps. */
static uint64_t walk(struct guest_mem *m, uint64_t gpa)
{
	uint64_t *pml4 = hva(m, LAYOUT_PML4, 4096);
	uint64_t e = pml4[(gpa >> 39) & 511];
	assert_true(e & 1);
	uint64_t *pdpt = hva(m, e & ~0xfffULL, 4096);
	e = pdpt[(gpa >> 30) & 511];
	assert_true(e & 1);
	uint64_t *pd = hva(m, e & ~0xfffULL, 4096);
	e = pd[(gpa >> 21) & 511];
	assert_true((e & 0x83) == 0x83); /* present, writable, 2 MiB */
	return e & ~0x1fffffULL & ~(1ULL << 63);
}

static void check_cpu_tables(struct guest_mem *m)
{
	assert_memory_equal(hva(m, LAYOUT_GDT, X86_GDT_SIZE), x86_boot_gdt, X86_GDT_SIZE);
	const uint64_t probes[] = {0,	       0x1fffff,   0x200000,  0x1000000,
				   0xbfe00000, 0xfee00000, 0xffffffff};
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
		assert_int_equal(walk(m, probes[i]), ALIGN_DOWN(probes[i], 2 * MiB));
}

/* ---- ELF ---- */

static void elf_64bit_entry(void **state)
{
	struct guest_mem *m = *state;
	struct elf_spec s = {
	    .paddr = 0x200000, .filesz = 0x3000, .memsz = 0x5000, .entry = 0x200100};
	size_t len;
	uint8_t *img = make_elf(&s, &len);
	struct boot_info bi;

	memset(hva(m, 0x200000, 0x6000), 0xcc, 0x6000);
	assert_int_equal(load_bytes(m, img, len, &bi), 0);
	free(img);

	assert_int_equal(bi.kind, BOOT_ENTRY_64);
	assert_int_equal(bi.entry, 0x200100);
	assert_int_equal(bi.boot_params, LAYOUT_ZERO_PAGE);
	assert_int_equal(bi.stack, LAYOUT_BOOT_STACK);
	assert_int_equal(bi.kernel_start, 0x200000);
	assert_int_equal(bi.kernel_end, 0x205000);
	check_pattern(m, 0x200000, 0x3000);
	const uint8_t *bss = hva(m, 0x203000, 0x2000);
	for (int i = 0; i < 0x2000; i++)
		assert_int_equal(bss[i], 0);
	assert_int_equal(*(uint8_t *)hva(m, 0x205000, 1), 0xcc); /* nothing past p_memsz */

	struct boot_params *bp = hva(m, LAYOUT_ZERO_PAGE, sizeof(*bp));
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp->hdr.cmdline_size, LAYOUT_CMDLINE_MAX - 1);
	assert_int_equal(bp->hdr.ramdisk_image, 0);
	assert_int_equal(bp->hdr.ramdisk_size, 0);
	assert_int_equal(bp->acpi_rsdp_addr, RSDP);
	assert_int_equal(bp->e820_entries, 3);
	check_e820_copy(m, bp->e820_table, bp->e820_entries);
	assert_string_equal(hva(m, LAYOUT_CMDLINE, 14), "console=ttyS0");
	check_cpu_tables(m);
}

static void elf_virtual_entry(void **state)
{
	struct elf_spec s = {.paddr = 0x1000000,
			     .vaddr = 0xffffffff81000000ULL,
			     .filesz = 0x1000,
			     .memsz = 0x1000,
			     .entry = 0xffffffff81000040ULL};
	size_t len;
	uint8_t *img = make_elf(&s, &len);
	struct boot_info bi;

	assert_int_equal(load_bytes(*state, img, len, &bi), 0);
	assert_int_equal(bi.kind, BOOT_ENTRY_64);
	assert_int_equal(bi.entry, 0x1000040);

	/* An entry in no segment at all is refused. */
	s.entry = 0xffffffff90000000ULL;
	free(img);
	img = make_elf(&s, &len);
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "entry point"));
	free(img);
}

static void elf_pvh(void **state)
{
	struct guest_mem *m = *state;
	struct elf_spec s = {.paddr = 0x1000000,
			     .filesz = 0x2000,
			     .memsz = 0x3000,
			     .entry = 0x1000000,
			     .pvh_descsz = 8,
			     .pvh_entry = 0x1000850};
	size_t len;
	uint8_t *img = make_elf(&s, &len);
	uint8_t rd[5000];
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = pattern(i);
	char *kpath = tmp_file(img, len), *ipath = tmp_file(rd, sizeof(rd));
	struct boot_info bi;

	assert_int_equal(load(m, kpath, ipath, "root=/dev/vda", &bi), 0);
	assert_int_equal(bi.kind, BOOT_ENTRY_PVH);
	assert_int_equal(bi.entry, 0x1000850);
	assert_int_equal(bi.boot_params, LAYOUT_PVH_START_INFO);
	assert_int_equal(bi.initrd_size, sizeof(rd));
	assert_int_equal(bi.initrd_start % 4096, 0);
	assert_true(bi.initrd_start + bi.initrd_size <= RAM_64M);
	assert_true(bi.initrd_start + 4096 + bi.initrd_size > RAM_64M); /* at the top */
	check_pattern(m, bi.initrd_start, sizeof(rd));

	const struct hvm_start_info *si = hva(m, LAYOUT_PVH_START_INFO, sizeof(*si));
	assert_int_equal(si->magic, 0x336ec578);
	assert_int_equal(si->version, 1);
	assert_int_equal(si->cmdline_paddr, LAYOUT_CMDLINE);
	assert_string_equal(hva(m, si->cmdline_paddr, 14), "root=/dev/vda");
	assert_int_equal(si->rsdp_paddr, RSDP);
	assert_int_equal(si->nr_modules, 1);
	const struct hvm_modlist_entry *mod = hva(m, si->modlist_paddr, sizeof(*mod));
	assert_int_equal(mod->paddr, bi.initrd_start);
	assert_int_equal(mod->size, sizeof(rd));
	assert_int_equal(mod->cmdline_paddr, 0);

	struct e820_entry want[16];
	unsigned n = x86_e820_build(m, want, 16);
	assert_int_equal(si->memmap_entries, n);
	const struct hvm_memmap_table_entry *mm = hva(m, si->memmap_paddr, n * sizeof(*mm));
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(mm[i].addr, want[i].addr);
		assert_int_equal(mm[i].size, want[i].size);
		assert_int_equal(mm[i].type, want[i].type);
		assert_int_equal(mm[i].reserved, 0);
	}
	check_cpu_tables(m);
	rm_file(kpath);
	rm_file(ipath);
	free(img);
}

static void elf_pvh_4byte_note_no_initrd(void **state)
{
	struct guest_mem *m = *state;
	struct elf_spec s = {.paddr = 0x100000,
			     .filesz = 0x1000,
			     .memsz = 0x1000,
			     .entry = 0x100000,
			     .pvh_descsz = 4,
			     .pvh_entry = 0x100010};
	size_t len;
	uint8_t *img = make_elf(&s, &len);
	struct boot_info bi;

	assert_int_equal(load_bytes(m, img, len, &bi), 0);
	assert_int_equal(bi.kind, BOOT_ENTRY_PVH);
	assert_int_equal(bi.entry, 0x100010);
	const struct hvm_start_info *si = hva(m, LAYOUT_PVH_START_INFO, sizeof(*si));
	assert_int_equal(si->nr_modules, 0);
	assert_int_equal(si->modlist_paddr, 0);

	/* A PVH entry outside the kernel is refused. */
	free(img);
	s.pvh_entry = 0x5000000;
	img = make_elf(&s, &len);
	assert_int_equal(load_bytes(m, img, len, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "PVH entry"));
	free(img);
}

static void elf_truncated(void **state)
{
	struct elf_spec s = {
	    .paddr = 0x200000, .filesz = 0x2000, .memsz = 0x2000, .entry = 0x200000};
	size_t len;
	uint8_t *img = make_elf(&s, &len);
	struct boot_info bi;

	/* Cut mid-segment. */
	assert_int_equal(load_bytes(*state, img, SEG_FILE_OFF + 0x1000, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "truncated"));
	assert_non_null(strstr(err, "kernel /tmp/kiln-test-"));
	/* Cut inside the program headers. */
	assert_int_equal(load_bytes(*state, img, sizeof(Elf64_Ehdr) + 10, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "truncated"));
	/* Cut inside the ELF header. */
	assert_int_equal(load_bytes(*state, img, 20, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "truncated"));
	free(img);
}

static void elf_segment_outside_ram(void **state)
{
	struct boot_info bi;
	size_t len;
	uint8_t *img;
	struct elf_spec s = {.filesz = 0x1000, .entry = 0};

	/* Ends past the 64 MiB of RAM. */
	s.paddr = s.entry = RAM_64M - 0x1000;
	s.memsz = 0x2000;
	img = make_elf(&s, &len);
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOMEM);
	assert_non_null(strstr(err, "outside guest RAM"));
	free(img);

	/* p_paddr + p_memsz wraps around. */
	s.paddr = s.entry = 0xfffffffffffff000ULL;
	s.memsz = 0x2000;
	img = make_elf(&s, &len);
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "overflows"));
	free(img);

	/* Over the boot structures below 1 MiB. */
	s.paddr = s.entry = 0x7000;
	s.memsz = 0x1000;
	img = make_elf(&s, &len);
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOMEM);
	free(img);

	/* p_filesz > p_memsz. */
	s.paddr = s.entry = 0x200000;
	s.memsz = 0x800;
	img = make_elf(&s, &len);
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "p_filesz"));
	free(img);
}

static void elf_wrong_machine(void **state)
{
	struct elf_spec s = {.paddr = 0x200000,
			     .filesz = 0x100,
			     .memsz = 0x100,
			     .entry = 0x200000,
			     .machine = EM_386};
	size_t len;
	uint8_t *img = make_elf(&s, &len);
	struct boot_info bi;

	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "x86_64"));
	free(img);
}

/* ---- bzImage ---- */

static void bzimage_load(void **state)
{
	struct guest_mem *m = *state;
	size_t len;
	uint8_t *img = make_bzimage(&bz_default, &len);
	uint8_t rd[3000];
	memset(rd, 0x5a, sizeof(rd));
	char *kpath = tmp_file(img, len), *ipath = tmp_file(rd, sizeof(rd));
	struct boot_info bi;

	assert_int_equal(load(m, kpath, ipath, "console=hvc0 quiet", &bi), 0);
	assert_int_equal(bi.kind, BOOT_ENTRY_64);
	assert_int_equal(bi.entry, LAYOUT_BZIMAGE_LOAD + 0x200);
	assert_int_equal(bi.boot_params, LAYOUT_ZERO_PAGE);
	assert_int_equal(bi.kernel_start, LAYOUT_BZIMAGE_LOAD);
	/* Relocatable, loaded below pref_address: it runs from pref_address for init_size. */
	assert_int_equal(bi.kernel_end, 0x1000000 + 0x200000);
	check_pattern(m, LAYOUT_BZIMAGE_LOAD, BZ_PM_SIZE);

	const struct boot_params *bp = hva(m, LAYOUT_ZERO_PAGE, sizeof(*bp));
	assert_int_equal(bp->hdr.setup_sects, BZ_SETUP_SECTS);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, SETUP_HDR_MAGIC);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.xloadflags, XLF_KERNEL_64);
	assert_int_equal(bp->hdr.init_size, 0x200000);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.loadflags, LOADFLAG_LOADED_HIGH | LOADFLAG_CAN_USE_HEAP);
	assert_int_equal(bp->hdr.heap_end_ptr, 0xfe00);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_string_equal(hva(m, LAYOUT_CMDLINE, 19), "console=hvc0 quiet");
	assert_int_equal(bp->hdr.ramdisk_image, bi.initrd_start);
	assert_int_equal(bp->hdr.ramdisk_size, sizeof(rd));
	assert_int_equal(bi.initrd_start, ALIGN_DOWN(RAM_64M - sizeof(rd), 4096));
	assert_memory_equal(hva(m, bi.initrd_start, sizeof(rd)), rd, sizeof(rd));
	assert_int_equal(bp->acpi_rsdp_addr, RSDP);
	assert_int_equal(bp->e820_entries, 3);
	check_e820_copy(m, bp->e820_table, bp->e820_entries);
	assert_int_equal(bp->e820_table[2].addr, 0x100000);
	assert_int_equal(bp->e820_table[2].size, RAM_64M - 0x100000);
	check_cpu_tables(m);
	rm_file(kpath);
	rm_file(ipath);
	free(img);
}

static void bzimage_initrd_addr_max(void **state)
{
	struct bz_spec s = bz_default;
	s.initrd_addr_max = 0x2ffffff; /* initrd must end at or below 48 MiB */
	s.setup_sects = 0;	       /* means 4 */
	size_t len;
	uint8_t *img = make_bzimage(&s, &len);
	uint8_t rd[100] = {1};
	char *kpath = tmp_file(img, len), *ipath = tmp_file(rd, sizeof(rd));
	struct boot_info bi;

	assert_int_equal(load(*state, kpath, ipath, "", &bi), 0);
	assert_int_equal(bi.initrd_start, 0x3000000 - 4096);
	check_pattern(*state, LAYOUT_BZIMAGE_LOAD, BZ_PM_SIZE);
	rm_file(kpath);
	rm_file(ipath);
	free(img);
}

static void bzimage_not_relocatable(void **state)
{
	struct bz_spec s = bz_default;
	s.relocatable = 0;
	s.pref_address = 0x400000;
	size_t len;
	uint8_t *img = make_bzimage(&s, &len);
	struct boot_info bi;

	assert_int_equal(load_bytes(*state, img, len, &bi), 0);
	assert_int_equal(bi.entry, 0x400200);
	assert_int_equal(bi.kernel_start, 0x400000);
	assert_int_equal(bi.kernel_end, 0x600000);
	check_pattern(*state, 0x400000, BZ_PM_SIZE);
	free(img);
}

static void bzimage_rejects(void **state)
{
	struct boot_info bi;
	size_t len;
	uint8_t *img;
	struct bz_spec s = bz_default;

	s.version = 0x020b;
	img = make_bzimage(&s, &len);
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "2.11"));
	free(img);

	s = bz_default;
	s.xloadflags = 0;
	img = make_bzimage(&s, &len);
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "XLF_KERNEL_64"));
	free(img);

	/* Setup code claims more sectors than the file has. */
	s = bz_default;
	s.setup_sects = 200;
	img = make_bzimage(&bz_default, &len);
	img[SETUP_HDR_OFFSET] = 200;
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOEXEC);
	assert_non_null(strstr(err, "truncated"));
	free(img);

	/* init_size larger than guest RAM. */
	s = bz_default;
	s.init_size = 0x8000000;
	img = make_bzimage(&s, &len);
	assert_int_equal(load_bytes(*state, img, len, &bi), -ENOMEM);
	assert_non_null(strstr(err, "init_size"));
	free(img);
}

/* ---- generic failures ---- */

static void garbage_and_empty(void **state)
{
	struct boot_info bi;
	uint8_t junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = pattern(i);

	char *path = tmp_file(junk, sizeof(junk));
	assert_int_equal(load(*state, path, NULL, "", &bi), -ENOEXEC);
	char want[128];
	snprintf(want, sizeof(want), "kernel %s: not an ELF vmlinux or bzImage", path);
	assert_string_equal(err, want);
	rm_file(path);

	path = tmp_file("", 0);
	assert_int_equal(load(*state, path, NULL, "", &bi), -ENOEXEC);
	assert_non_null(strstr(err, "not an ELF vmlinux or bzImage"));
	rm_file(path);

	assert_int_equal(load(*state, "/nonexistent/vmlinux", NULL, "", &bi), -ENOENT);
	assert_string_equal(err, "kernel /nonexistent/vmlinux: No such file or directory");
	assert_int_equal(load(*state, "/tmp", NULL, "", &bi), -EINVAL);
	assert_string_equal(err, "kernel /tmp: not a regular file");
}

static void cmdline_limits(void **state)
{
	struct boot_info bi;
	size_t len;
	uint8_t *img = make_bzimage(&bz_default, &len);
	char *kpath = tmp_file(img, len);
	char *cmd = malloc(LAYOUT_CMDLINE_MAX + 1);

	/* bzImage: cmdline_size 255 excludes the NUL. */
	memset(cmd, 'a', 255);
	cmd[255] = 0;
	assert_int_equal(load(*state, kpath, NULL, cmd, &bi), 0);
	cmd[255] = 'a';
	cmd[256] = 0;
	assert_int_equal(load(*state, kpath, NULL, cmd, &bi), -E2BIG);
	assert_non_null(strstr(err, "cmdline is 256 bytes, kernel accepts at most 255"));
	rm_file(kpath);
	free(img);

	/* ELF: bounded by the LAYOUT_CMDLINE area. */
	struct elf_spec s = {.paddr = 0x200000, .filesz = 0x100, .memsz = 0x100, .entry = 0x200000};
	img = make_elf(&s, &len);
	kpath = tmp_file(img, len);
	memset(cmd, 'b', LAYOUT_CMDLINE_MAX);
	cmd[LAYOUT_CMDLINE_MAX - 1] = 0;
	assert_int_equal(load(*state, kpath, NULL, cmd, &bi), 0);
	assert_int_equal(strlen(hva(*state, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX)),
			 LAYOUT_CMDLINE_MAX - 1);
	cmd[LAYOUT_CMDLINE_MAX - 1] = 'b';
	cmd[LAYOUT_CMDLINE_MAX] = 0;
	assert_int_equal(load(*state, kpath, NULL, cmd, &bi), -E2BIG);
	rm_file(kpath);
	free(img);
	free(cmd);
}

static void initrd_too_big(void **state)
{
	struct elf_spec s = {.paddr = 0x200000, .filesz = 0x100, .memsz = 0x100, .entry = 0x200000};
	size_t len;
	uint8_t *img = make_elf(&s, &len);
	char *kpath = tmp_file(img, len);
	char *ipath = tmp_file("x", 1);
	struct boot_info bi;

	assert_int_equal(truncate(ipath, 80 * MiB), 0); /* sparse, larger than the 64 MiB guest */
	assert_int_equal(load(*state, kpath, ipath, "", &bi), -ENOSPC);
	char want[256];
	snprintf(want, sizeof(want), "initrd %s (%llu bytes) does not fit below 0x4000000", ipath,
		 80 * MiB);
	assert_non_null(strstr(err, want));

	/* Fits in RAM but would overlap the kernel. */
	assert_int_equal(truncate(ipath, RAM_64M - 2 * MiB), 0);
	assert_int_equal(load(*state, kpath, ipath, "", &bi), -ENOSPC);

	/* Empty initrd and missing initrd. */
	assert_int_equal(truncate(ipath, 0), 0);
	assert_int_equal(load(*state, kpath, ipath, "", &bi), -EINVAL);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(load(*state, kpath, "/nonexistent/initrd", "", &bi), -ENOENT);
	assert_string_equal(err, "initrd /nonexistent/initrd: No such file or directory");
	rm_file(kpath);
	rm_file(ipath);
	free(img);
}

/* ---- e820 ---- */

static void check_entry(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

static void e820_256m(void **state)
{
	struct guest_mem m;
	struct e820_entry e[8];

	assert_int_equal(guest_mem_layout(&m, 256 * MiB), 0);
	assert_int_equal(x86_e820_build(&m, e, 8), 3);
	check_entry(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	check_entry(&e[1], LAYOUT_EBDA_START, 0x100000 - LAYOUT_EBDA_START, E820_RESERVED);
	check_entry(&e[2], 0x100000, 256 * MiB - 0x100000, E820_RAM);
	/* Never more than max. */
	assert_int_equal(x86_e820_build(&m, e, 2), 2);
}

static void e820_6g(void **state)
{
	struct guest_mem m;
	struct e820_entry e[8];

	assert_int_equal(guest_mem_layout(&m, 6 * GiB), 0);
	assert_int_equal(x86_e820_build(&m, e, 8), 4);
	check_entry(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	check_entry(&e[1], LAYOUT_EBDA_START, 0x100000 - LAYOUT_EBDA_START, E820_RESERVED);
	check_entry(&e[2], 0x100000, LAYOUT_MMIO_HOLE_START - 0x100000, E820_RAM);
	check_entry(&e[3], LAYOUT_RAM_ABOVE_4G, 6 * GiB - LAYOUT_MMIO_HOLE_START, E820_RAM);
	/* The MMIO hole is in no entry. */
	for (int i = 0; i < 4; i++)
		assert_false(e[i].addr < LAYOUT_MMIO_HOLE_END &&
			     e[i].addr + e[i].size > LAYOUT_MMIO_HOLE_START);
}

/* ---- real kernels (skipped when absent) ---- */

static void real_kernels(void **state)
{
	if (access(REAL_VMLINUX, R_OK) || access(REAL_BZIMAGE, R_OK))
		skip();
	struct guest_mem m;
	struct boot_info bi;
	assert_int_equal(guest_mem_init(&m, 512 * MiB), 0);

	assert_int_equal(load(&m, REAL_VMLINUX, NULL, "console=ttyS0", &bi), 0);
	assert_int_equal(bi.kind, BOOT_ENTRY_PVH);
	assert_int_equal(bi.entry, 0x1000850);
	assert_int_equal(bi.kernel_start, 0x1000000);

	assert_int_equal(load(&m, REAL_BZIMAGE, NULL, "console=ttyS0", &bi), 0);
	assert_int_equal(bi.kind, BOOT_ENTRY_64);
	assert_int_equal(bi.entry, 0x100200);
	const struct boot_params *bp = hva(&m, LAYOUT_ZERO_PAGE, sizeof(*bp));
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.cmdline_size, 2047);
	assert_true(bi.kernel_end > 0x1000000 + 0x1000000);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(elf_64bit_entry, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(elf_virtual_entry, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(elf_pvh, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(elf_pvh_4byte_note_no_initrd, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(elf_truncated, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(elf_segment_outside_ram, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(elf_wrong_machine, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(bzimage_load, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(bzimage_initrd_addr_max, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(bzimage_not_relocatable, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(bzimage_rejects, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(garbage_and_empty, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(cmdline_limits, ram_setup, ram_teardown),
	    cmocka_unit_test_setup_teardown(initrd_too_big, ram_setup, ram_teardown),
	    cmocka_unit_test(e820_256m),
	    cmocka_unit_test(e820_6g),
	    cmocka_unit_test(real_kernels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
