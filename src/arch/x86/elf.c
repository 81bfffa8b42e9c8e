/* elf.c: vmlinux ELF64 loader: PT_LOAD segments read straight into guest RAM, PVH entry note. */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/loader.h"

#define ELF_MAX_PHDRS 64
#define PVH_NOTE_NAME "Xen" /* namesz 4, NUL included */

static_assert(sizeof(Elf64_Ehdr) == 64, "Elf64_Ehdr size");
static_assert(sizeof(Elf64_Phdr) == 56, "Elf64_Phdr size");
static_assert(sizeof(Elf64_Nhdr) == 12, "Elf64_Nhdr size");
static_assert(X86_PROBE_LEN >= sizeof(Elf64_Ehdr), "probe covers the ELF header");

bool x86_elf_match(const struct x86_image *img)
{
	return img->probe_len >= SELFMAG && memcmp(img->probe, ELFMAG, SELFMAG) == 0;
}

static int check_ehdr(const struct x86_image *img, const Elf64_Ehdr *eh, char *err, size_t errlen)
{
	if (img->probe_len < sizeof(*eh)) {
		x86_boot_err(err, errlen, "kernel %s: truncated ELF header (%llu bytes)", img->path,
			     (unsigned long long)img->size);
		return -ENOEXEC;
	}
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64) {
		x86_boot_err(err, errlen, "kernel %s: ELF is not a little-endian ELF64 for x86_64",
			     img->path);
		return -ENOEXEC;
	}
	if (eh->e_type != ET_EXEC) {
		x86_boot_err(err, errlen, "kernel %s: ELF type %u is not an executable (ET_EXEC)",
			     img->path, eh->e_type);
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum > ELF_MAX_PHDRS) {
		x86_boot_err(
		    err, errlen,
		    "kernel %s: ELF has %u program headers of %u bytes (want 1..%u of %zu)",
		    img->path, eh->e_phnum, eh->e_phentsize, ELF_MAX_PHDRS, sizeof(Elf64_Phdr));
		return -ENOEXEC;
	}
	uint64_t phsize = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > img->size || phsize > img->size - eh->e_phoff) {
		x86_boot_err(err, errlen,
			     "kernel %s: truncated: program headers at 0x%llx beyond end of file",
			     img->path, (unsigned long long)eh->e_phoff);
		return -ENOEXEC;
	}
	return 0;
}

/* Check every PT_LOAD against the file and guest RAM; report the kernel's RAM span. */
static int check_segments(const struct guest_mem *m, const struct x86_image *img,
			  const Elf64_Phdr *ph, unsigned n, struct x86_kernel *k, char *err,
			  size_t errlen)
{
	uint64_t low_end = guest_mem_low_end(m);
	bool any = false;

	k->start = UINT64_MAX;
	k->end = 0;
	for (unsigned i = 0; i < n; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		if (p->p_filesz > p->p_memsz) {
			x86_boot_err(err, errlen,
				     "kernel %s: segment %u: p_filesz 0x%llx > p_memsz 0x%llx",
				     img->path, i, (unsigned long long)p->p_filesz,
				     (unsigned long long)p->p_memsz);
			return -ENOEXEC;
		}
		if (p->p_offset > img->size || p->p_filesz > img->size - p->p_offset) {
			x86_boot_err(err, errlen,
				     "kernel %s: truncated: segment %u needs file bytes up to "
				     "0x%llx, file has 0x%llx",
				     img->path, i, (unsigned long long)(p->p_offset + p->p_filesz),
				     (unsigned long long)img->size);
			return -ENOEXEC;
		}
		if (p->p_paddr > UINT64_MAX - p->p_memsz) {
			x86_boot_err(err, errlen,
				     "kernel %s: segment %u: 0x%llx + 0x%llx overflows", img->path,
				     i, (unsigned long long)p->p_paddr,
				     (unsigned long long)p->p_memsz);
			return -ENOEXEC;
		}
		uint64_t end = p->p_paddr + p->p_memsz;
		if (p->p_paddr < LAYOUT_HIGH_MEM_START || end > low_end ||
		    !gpa_range_ok(m, p->p_paddr, p->p_memsz)) {
			x86_boot_err(err, errlen,
				     "kernel %s: segment %u [0x%llx-0x%llx) is outside guest RAM "
				     "[0x%llx-0x%llx)",
				     img->path, i, (unsigned long long)p->p_paddr,
				     (unsigned long long)end, LAYOUT_HIGH_MEM_START,
				     (unsigned long long)low_end);
			return -ENOMEM;
		}
		for (unsigned j = 0; j < i; j++) {
			const Elf64_Phdr *q = &ph[j];
			if (q->p_type != PT_LOAD || q->p_memsz == 0)
				continue;
			if (p->p_paddr < q->p_paddr + q->p_memsz && q->p_paddr < end) {
				x86_boot_err(err, errlen, "kernel %s: segments %u and %u overlap",
					     img->path, j, i);
				return -ENOEXEC;
			}
		}
		k->start = MIN(k->start, p->p_paddr);
		k->end = MAX(k->end, end);
		any = true;
	}
	if (!any) {
		x86_boot_err(err, errlen, "kernel %s: ELF has no loadable segment", img->path);
		return -ENOEXEC;
	}
	return 0;
}

/* Look for the Xen PHYS32_ENTRY note in the PT_NOTE segments, reading note by note. */
static int find_pvh_entry(const struct x86_image *img, const Elf64_Phdr *ph, unsigned n,
			  uint64_t *entry, bool *found, char *err, size_t errlen)
{
	int r = 0;

	*found = false;
	for (unsigned i = 0; i < n && !*found; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_NOTE)
			continue;
		if (p->p_offset > img->size || p->p_filesz > img->size - p->p_offset) {
			x86_boot_err(err, errlen,
				     "kernel %s: truncated: note segment %u beyond end of file",
				     img->path, i);
			return -ENOEXEC;
		}
		uint64_t pos = 0, len = p->p_filesz;
		while (len - pos >= sizeof(Elf64_Nhdr)) {
			Elf64_Nhdr nh;
			r = x86_pread_full(img->fd, &nh, sizeof(nh), p->p_offset + pos);
			if (r)
				goto read_err;
			uint64_t name_al = ALIGN_UP((uint64_t)nh.n_namesz, 4);
			uint64_t desc_al = ALIGN_UP((uint64_t)nh.n_descsz, 4);
			uint64_t body = pos + sizeof(nh);
			if (name_al + desc_al > len - body)
				break; /* malformed tail: stop scanning this segment */
			if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY &&
			    nh.n_namesz == sizeof(PVH_NOTE_NAME) &&
			    (nh.n_descsz == 4 || nh.n_descsz == 8)) {
				char name[sizeof(PVH_NOTE_NAME)];
				uint64_t val =
				    0; /* little endian: a 4-byte desc fills the low half */
				r = x86_pread_full(img->fd, name, sizeof(name), p->p_offset + body);
				if (!r && memcmp(name, PVH_NOTE_NAME, sizeof(name)) == 0) {
					r = x86_pread_full(img->fd, &val, nh.n_descsz,
							   p->p_offset + body + name_al);
					if (r)
						goto read_err;
					*entry = val;
					*found = true;
					break;
				}
				if (r)
					goto read_err;
			}
			pos = body + name_al + desc_al;
		}
	}
	return 0;
read_err:
	x86_boot_err(err, errlen, "kernel %s: reading ELF notes: %s", img->path,
		     r == -EIO ? "unexpected end of file" : strerror(-r));
	return r;
}

/* The segment whose physical range holds gpa, or -1. */
static int seg_by_paddr(const Elf64_Phdr *ph, unsigned n, uint64_t gpa)
{
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && gpa >= ph[i].p_paddr &&
		    gpa - ph[i].p_paddr < ph[i].p_memsz)
			return (int)i;
	return -1;
}

/* e_entry is physical for vmlinux; a virtual one (0xffffffff8...) maps through its segment. */
static int entry_64(const struct x86_image *img, const Elf64_Ehdr *eh, const Elf64_Phdr *ph,
		    unsigned n, gpa_t *entry, char *err, size_t errlen)
{
	if (seg_by_paddr(ph, n, eh->e_entry) >= 0) {
		*entry = eh->e_entry;
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		if (ph[i].p_type == PT_LOAD && eh->e_entry >= ph[i].p_vaddr &&
		    eh->e_entry - ph[i].p_vaddr < ph[i].p_memsz) {
			*entry = ph[i].p_paddr + (eh->e_entry - ph[i].p_vaddr);
			return 0;
		}
	}
	x86_boot_err(err, errlen, "kernel %s: entry point 0x%llx is not in a loadable segment",
		     img->path, (unsigned long long)eh->e_entry);
	return -ENOEXEC;
}

int x86_elf_load(struct guest_mem *m, const struct x86_image *img, struct x86_kernel *k, char *err,
		 size_t errlen)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[ELF_MAX_PHDRS];
	uint64_t pvh = 0;
	bool has_pvh;
	int r;

	memset(&eh, 0, sizeof(eh));
	memcpy(&eh, img->probe, MIN(img->probe_len, sizeof(eh)));
	r = check_ehdr(img, &eh, err, errlen);
	if (r)
		return r;
	unsigned n = eh.e_phnum;
	r = x86_pread_full(img->fd, ph, (uint64_t)n * sizeof(ph[0]), eh.e_phoff);
	if (r) {
		x86_boot_err(err, errlen, "kernel %s: reading program headers: %s", img->path,
			     strerror(-r));
		return r;
	}
	r = check_segments(m, img, ph, n, k, err, errlen);
	if (r)
		return r;
	r = find_pvh_entry(img, ph, n, &pvh, &has_pvh, err, errlen);
	if (r)
		return r;
	if (has_pvh) {
		if (pvh >= LAYOUT_IDENTITY_MAP_END || seg_by_paddr(ph, n, pvh) < 0) {
			x86_boot_err(err, errlen,
				     "kernel %s: PVH entry 0x%llx is not in a loadable segment",
				     img->path, (unsigned long long)pvh);
			return -ENOEXEC;
		}
		k->kind = BOOT_ENTRY_PVH;
		k->entry = pvh;
	} else {
		k->kind = BOOT_ENTRY_64;
		r = entry_64(img, &eh, ph, n, &k->entry, err, errlen);
		if (r)
			return r;
	}

	for (unsigned i = 0; i < n; i++) {
		const Elf64_Phdr *p = &ph[i];

		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		/* The whole [p_paddr, p_paddr + p_memsz) was checked to be RAM above. */
		uint8_t *hva = gpa_to_hva(m, p->p_paddr, p->p_memsz);
		r = hva ? x86_pread_full(img->fd, hva, p->p_filesz, p->p_offset) : -EFAULT;
		if (r) {
			x86_boot_err(err, errlen, "kernel %s: reading segment %u: %s", img->path, i,
				     r == -EIO ? "file shrank while loading" : strerror(-r));
			return r;
		}
		memset(hva + p->p_filesz, 0, p->p_memsz - p->p_filesz); /* BSS */
	}

	uint64_t low_end = guest_mem_low_end(m);
	k->cmdline_max = LAYOUT_CMDLINE_MAX;
	k->initrd_ceiling = MIN(low_end, LAYOUT_IDENTITY_MAP_END);
	k->has_hdr = false;
	return 0;
}
