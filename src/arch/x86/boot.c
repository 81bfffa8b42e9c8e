/* boot.c: x86 boot: kernel format detection, cmdline, initrd, e820, zero page / PVH start info,
 * boot GDT and identity page tables. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "arch/x86/bootparam.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "util/file.h"

#define PAGE_SIZE 4096ULL
#define PTE_P 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL /* 2 MiB page in a PD entry */
#define NR_PDS (LAYOUT_IDENTITY_MAP_END / GiB)
#define E820_MAX 32 /* kiln builds at most 2 + 2 * GUEST_MEM_MAX_REGIONS entries */
#define PREAD_CHUNK (1ULL << 30)

static_assert(LAYOUT_PD + NR_PDS * PAGE_SIZE <= LAYOUT_CMDLINE, "page tables below cmdline");
static_assert(LAYOUT_GDT + X86_GDT_SIZE <= LAYOUT_PVH_START_INFO, "GDT below start info");
static_assert(PVH_MEMMAP_GPA + PVH_MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry) <=
		  LAYOUT_ZERO_PAGE,
	      "PVH data fits its page");
static_assert(LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX <= LAYOUT_EBDA_START, "cmdline below EBDA");
static_assert(E820_MAX <= E820_MAX_ZEROPAGE && E820_MAX <= PVH_MEMMAP_MAX, "e820 fits");

void x86_boot_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int x86_pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, MIN(len, PREAD_CHUNK), (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the file is shorter than it claimed */
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

int x86_pread_guest(struct guest_mem *m, int fd, uint64_t off, uint64_t len, gpa_t gpa)
{
	if (len == 0)
		return 0;
	void *hva = gpa_to_hva(m, gpa, len);
	if (!hva)
		return -EFAULT;
	return x86_pread_full(fd, hva, len, off);
}

static void e820_add(struct e820_entry *out, unsigned max, unsigned *n, uint64_t addr,
		     uint64_t size, uint32_t type)
{
	if (size == 0 || *n >= max)
		return;
	out[*n] = (struct e820_entry){.addr = addr, .size = size, .type = type};
	(*n)++;
}

unsigned x86_e820_build(const struct guest_mem *m, struct e820_entry *out, unsigned max)
{
	unsigned n = 0;
	bool reserved = false;

	for (unsigned i = 0; i < m->nr_regions; i++) {
		uint64_t a = m->regions[i].gpa, b = a + m->regions[i].size;

		if (a >= b)
			continue;
		if (a < LAYOUT_EBDA_START)
			e820_add(out, max, &n, a, MIN(b, LAYOUT_EBDA_START) - a, E820_RAM);
		/* EBDA, legacy ROM area and the ACPI tables at 0xe0000: reserved up to 1 MiB. */
		if (!reserved && a < LAYOUT_HIGH_MEM_START && b > LAYOUT_EBDA_START) {
			e820_add(out, max, &n, LAYOUT_EBDA_START,
				 LAYOUT_HIGH_MEM_START - LAYOUT_EBDA_START, E820_RESERVED);
			reserved = true;
		}
		if (b > LAYOUT_HIGH_MEM_START) {
			uint64_t s = MAX(a, LAYOUT_HIGH_MEM_START);
			e820_add(out, max, &n, s, b - s, E820_RAM);
		}
	}
	return n;
}

static int open_image(const char *what, const char *path, int *fd, uint64_t *size, char *err,
		      size_t errlen)
{
	struct stat st;

	/* Regular files only, opened without waiting: a FIFO put in the image's place must not
	 * stall InstanceStart (and the API with it) waiting for a writer. */
	*fd = file_open(path, O_RDONLY, 0, FILE_KIND_REG);
	if (*fd < 0) {
		int e = -*fd;
		*fd = -1;
		if (e == EMEDIUMTYPE) {
			x86_boot_err(err, errlen, "%s %s: not a regular file", what, path);
			return -EINVAL;
		}
		x86_boot_err(err, errlen, "%s %s: %s", what, path, strerror(e));
		return -e;
	}
	if (fstat(*fd, &st) < 0) {
		int e = errno;
		x86_boot_err(err, errlen, "%s %s: %s", what, path, strerror(e));
		close(*fd);
		*fd = -1;
		return -e;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int load_kernel(struct guest_mem *m, const char *path, struct x86_kernel *k, char *err,
		       size_t errlen)
{
	uint8_t probe[X86_PROBE_LEN];
	struct x86_image img = {.path = path, .probe = probe};
	int r = open_image("kernel", path, &img.fd, &img.size, err, errlen);
	if (r)
		return r;

	img.probe_len = (size_t)MIN(img.size, sizeof(probe));
	r = x86_pread_full(img.fd, probe, img.probe_len, 0);
	if (r) {
		x86_boot_err(err, errlen, "kernel %s: %s", path,
			     r == -EIO ? "file shrank while reading" : strerror(-r));
	} else if (x86_elf_match(&img)) {
		r = x86_elf_load(m, &img, k, err, errlen);
	} else if (x86_bzimage_match(&img)) {
		r = x86_bzimage_load(m, &img, k, err, errlen);
	} else {
		x86_boot_err(err, errlen, "kernel %s: not an ELF vmlinux or bzImage", path);
		r = -ENOEXEC;
	}
	close(img.fd);
	return r;
}

static int load_cmdline(struct guest_mem *m, const struct boot_request *req,
			const struct x86_kernel *k, char *err, size_t errlen)
{
	size_t len = strlen(req->cmdline);

	if (len + 1 > k->cmdline_max) {
		x86_boot_err(err, errlen,
			     "kernel %s: cmdline is %zu bytes, kernel accepts at most %llu",
			     req->kernel_path, len, (unsigned long long)(k->cmdline_max - 1));
		return -E2BIG;
	}
	char *dst = gpa_to_hva(m, LAYOUT_CMDLINE, len + 1);
	if (!dst) {
		x86_boot_err(err, errlen,
			     "kernel %s: guest RAM does not cover the cmdline at 0x%llx",
			     req->kernel_path, LAYOUT_CMDLINE);
		return -EFAULT;
	}
	memcpy(dst, req->cmdline, len + 1);
	return 0;
}

/* The initrd goes page-aligned at the top of low RAM, under the kernel's ceiling. */
static int load_initrd(struct guest_mem *m, const char *path, const struct x86_kernel *k,
		       struct boot_info *out, char *err, size_t errlen)
{
	uint64_t size;
	int fd, r = open_image("initrd", path, &fd, &size, err, errlen);
	if (r)
		return r;

	uint64_t ceiling = k->initrd_ceiling;
	uint64_t start = size <= ceiling ? ALIGN_DOWN(ceiling - size, PAGE_SIZE) : 0;
	bool overlaps = start < k->end && k->start < start + size;
	if (size == 0) {
		x86_boot_err(err, errlen, "initrd %s: file is empty", path);
		r = -EINVAL;
	} else if (size > ceiling || start < LAYOUT_HIGH_MEM_START || overlaps ||
		   !gpa_range_ok(m, start, size)) {
		x86_boot_err(err, errlen,
			     "initrd %s (%llu bytes) does not fit below 0x%llx (kernel uses "
			     "[0x%llx-0x%llx))",
			     path, (unsigned long long)size, (unsigned long long)ceiling,
			     (unsigned long long)k->start, (unsigned long long)k->end);
		r = -ENOSPC;
	} else {
		r = x86_pread_guest(m, fd, 0, size, start);
		if (r)
			x86_boot_err(err, errlen, "initrd %s: %s", path,
				     r == -EIO ? "file shrank while loading" : strerror(-r));
	}
	close(fd);
	if (r)
		return r;
	out->initrd_start = start;
	out->initrd_size = size;
	return 0;
}

/* Boot GDT and page tables identity-mapping [0, 4 GiB) with 2 MiB pages. */
static int write_cpu_tables(struct guest_mem *m)
{
	uint8_t *gdt = gpa_to_hva(m, LAYOUT_GDT, X86_GDT_SIZE);
	uint64_t *pml4 = gpa_to_hva(m, LAYOUT_PML4, PAGE_SIZE);
	uint64_t *pdpt = gpa_to_hva(m, LAYOUT_PDPT, PAGE_SIZE);
	uint64_t *pd = gpa_to_hva(m, LAYOUT_PD, NR_PDS * PAGE_SIZE);

	if (!gdt || !pml4 || !pdpt || !pd)
		return -EFAULT;
	memcpy(gdt, x86_boot_gdt, X86_GDT_SIZE);
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = LAYOUT_PDPT | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < NR_PDS; i++)
		pdpt[i] = (LAYOUT_PD + i * PAGE_SIZE) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < NR_PDS * 512; i++)
		pd[i] = (i * 2 * MiB) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

static int write_zero_page(struct guest_mem *m, const struct boot_request *req,
			   const struct x86_kernel *k, const struct boot_info *out,
			   const struct e820_entry *e820, unsigned nr_e820)
{
	struct boot_params *bp = gpa_to_hva(m, LAYOUT_ZERO_PAGE, sizeof(*bp));
	if (!bp)
		return -EFAULT;
	memset(bp, 0, sizeof(*bp));

	struct setup_header *h = &bp->hdr;
	if (k->has_hdr) {
		*h = k->hdr;
	} else {
		/* vmlinux has no setup header; the kernel still checks these. */
		h->boot_flag = SETUP_BOOT_FLAG;
		h->header = SETUP_HDR_MAGIC;
		h->version = 0x020f;
		h->loadflags = LOADFLAG_LOADED_HIGH;
		h->cmdline_size = (uint32_t)(k->cmdline_max - 1);
	}
	h->type_of_loader = BOOT_LOADER_UNDEFINED;
	h->loadflags |= LOADFLAG_CAN_USE_HEAP;
	h->heap_end_ptr = BOOT_HEAP_END_PTR;
	h->cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	h->ramdisk_image = (uint32_t)out->initrd_start; /* below 4 GiB: see initrd_ceiling */
	h->ramdisk_size = (uint32_t)out->initrd_size;
	bp->acpi_rsdp_addr = req->rsdp;
	bp->e820_entries = (uint8_t)nr_e820;
	memcpy(bp->e820_table, e820, nr_e820 * sizeof(*e820));
	return 0;
}

static int write_start_info(struct guest_mem *m, const struct boot_request *req,
			    const struct boot_info *out, const struct e820_entry *e820,
			    unsigned nr_e820)
{
	struct hvm_start_info *si = gpa_to_hva(m, LAYOUT_PVH_START_INFO, PAGE_SIZE);
	if (!si)
		return -EFAULT;
	memset(si, 0, PAGE_SIZE);

	struct hvm_modlist_entry *mod = gpa_to_hva(m, PVH_MODLIST_GPA, sizeof(*mod));
	struct hvm_memmap_table_entry *mm = gpa_to_hva(m, PVH_MEMMAP_GPA, nr_e820 * sizeof(*mm));
	if (!mod || !mm)
		return -EFAULT;
	for (unsigned i = 0; i < nr_e820; i++)
		mm[i] = (struct hvm_memmap_table_entry){
		    .addr = e820[i].addr, .size = e820[i].size, .type = e820[i].type};
	*si = (struct hvm_start_info){
	    .magic = HVM_START_MAGIC,
	    .version = HVM_START_VERSION,
	    .cmdline_paddr = LAYOUT_CMDLINE,
	    .rsdp_paddr = req->rsdp,
	    .memmap_paddr = PVH_MEMMAP_GPA,
	    .memmap_entries = nr_e820,
	};
	if (out->initrd_size) {
		*mod = (struct hvm_modlist_entry){.paddr = out->initrd_start,
						  .size = out->initrd_size};
		si->nr_modules = 1;
		si->modlist_paddr = PVH_MODLIST_GPA;
	}
	return 0;
}

int x86_boot_load(struct guest_mem *m, const struct boot_request *req, struct boot_info *out,
		  char *err, size_t errlen)
{
	struct x86_kernel k;
	struct e820_entry e820[E820_MAX];
	int r;

	memset(out, 0, sizeof(*out));
	memset(&k, 0, sizeof(k));
	if (!req->kernel_path || !req->cmdline) {
		x86_boot_err(err, errlen, "kernel: no kernel path or cmdline given");
		return -EINVAL;
	}
	r = load_kernel(m, req->kernel_path, &k, err, errlen);
	if (r)
		return r;
	r = load_cmdline(m, req, &k, err, errlen);
	if (r)
		return r;
	if (req->initrd_path) {
		r = load_initrd(m, req->initrd_path, &k, out, err, errlen);
		if (r)
			return r;
	}

	unsigned nr_e820 = x86_e820_build(m, e820, E820_MAX);
	r = write_cpu_tables(m);
	if (!r)
		r = k.kind == BOOT_ENTRY_PVH ? write_start_info(m, req, out, e820, nr_e820)
					     : write_zero_page(m, req, &k, out, e820, nr_e820);
	if (r) {
		x86_boot_err(err, errlen,
			     "kernel %s: guest RAM does not cover the boot structures below 0x%llx",
			     req->kernel_path, LAYOUT_CMDLINE);
		return r;
	}

	out->kind = k.kind;
	out->entry = k.entry;
	out->boot_params = k.kind == BOOT_ENTRY_PVH ? LAYOUT_PVH_START_INFO : LAYOUT_ZERO_PAGE;
	out->stack = LAYOUT_BOOT_STACK;
	out->kernel_start = k.start;
	out->kernel_end = k.end;
	return 0;
}
