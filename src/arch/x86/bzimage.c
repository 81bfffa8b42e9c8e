/* bzimage.c: bzImage loader: setup header checks, protected-mode kernel into RAM, 64-bit entry. */
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "arch/x86/loader.h"

#define BZ_MIN_VERSION 0x020c	/* 2.12: xloadflags (XLF_KERNEL_64) */
#define BZ_ENTRY64_OFFSET 0x200 /* 64-bit entry relative to the protected-mode load address */
#define SECTOR 512

static_assert(X86_PROBE_LEN >= SETUP_HDR_OFFSET + sizeof(struct setup_header), "probe covers hdr");

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bool x86_bzimage_match(const struct x86_image *img)
{
	return img->probe_len >= 0x206 && le16(img->probe + 0x1fe) == SETUP_BOOT_FLAG &&
	       le32(img->probe + 0x202) == SETUP_HDR_MAGIC;
}

static bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

int x86_bzimage_load(struct guest_mem *m, const struct x86_image *img, struct x86_kernel *k,
		     char *err, size_t errlen)
{
	const char *path = img->path;
	struct setup_header h;
	uint64_t low_end = guest_mem_low_end(m);
	int r;

	if (img->probe_len < SETUP_HDR_OFFSET + sizeof(h)) {
		x86_boot_err(err, errlen, "kernel %s: truncated bzImage (%llu bytes)", path,
			     (unsigned long long)img->size);
		return -ENOEXEC;
	}
	memcpy(&h, img->probe + SETUP_HDR_OFFSET, sizeof(h));
	if (h.version < BZ_MIN_VERSION) {
		x86_boot_err(err, errlen,
			     "kernel %s: bzImage boot protocol %u.%02u is too old (need 2.12+ for "
			     "the 64-bit entry)",
			     path, h.version >> 8, h.version & 0xff);
		return -ENOEXEC;
	}
	if (!(h.xloadflags & XLF_KERNEL_64)) {
		x86_boot_err(err, errlen,
			     "kernel %s: bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)",
			     path);
		return -ENOEXEC;
	}
	if (!(h.loadflags & LOADFLAG_LOADED_HIGH)) {
		x86_boot_err(err, errlen, "kernel %s: zImage (LOADED_HIGH clear) is not supported",
			     path);
		return -ENOEXEC;
	}

	uint64_t setup_size =
	    ((uint64_t)(h.setup_sects ? h.setup_sects : SETUP_SECTS_DEFAULT) + 1) * SECTOR;
	if (img->size <= setup_size) {
		x86_boot_err(
		    err, errlen,
		    "kernel %s: truncated bzImage: %llu bytes, its setup code alone is %llu", path,
		    (unsigned long long)img->size, (unsigned long long)setup_size);
		return -ENOEXEC;
	}
	uint64_t pm_size = img->size - setup_size;

	/* Runtime start per the boot protocol (init_size): a relocatable kernel moves itself up to
	 * pref_address, aligned to kernel_alignment; a fixed one runs at pref_address. */
	uint64_t load, runtime;
	if (h.relocatable_kernel) {
		if (!is_pow2(h.kernel_alignment)) {
			x86_boot_err(
			    err, errlen,
			    "kernel %s: bzImage kernel_alignment 0x%x is not a power of two", path,
			    h.kernel_alignment);
			return -ENOEXEC;
		}
		load = LAYOUT_BZIMAGE_LOAD;
		runtime = MAX(load, h.pref_address);
		if (runtime <= low_end) /* low_end < 4 GiB and alignment < 4 GiB: no overflow */
			runtime = ALIGN_UP(runtime, (uint64_t)h.kernel_alignment);
	} else {
		load = h.pref_address ? h.pref_address : LAYOUT_BZIMAGE_LOAD;
		runtime = load;
	}
	if (load < LAYOUT_HIGH_MEM_START || load > low_end || pm_size > low_end - load ||
	    !gpa_range_ok(m, load, pm_size)) {
		x86_boot_err(err, errlen,
			     "kernel %s: bzImage (%llu bytes at 0x%llx) does not fit in guest RAM "
			     "[0x%llx-0x%llx)",
			     path, (unsigned long long)pm_size, (unsigned long long)load,
			     LAYOUT_HIGH_MEM_START, (unsigned long long)low_end);
		return -ENOMEM;
	}
	if (runtime > low_end || h.init_size > low_end - runtime) {
		x86_boot_err(err, errlen,
			     "kernel %s: needs 0x%x bytes (init_size) from 0x%llx, guest low RAM "
			     "ends at 0x%llx",
			     path, h.init_size, (unsigned long long)runtime,
			     (unsigned long long)low_end);
		return -ENOMEM;
	}

	r = x86_pread_guest(m, img->fd, setup_size, pm_size, load);
	if (r) {
		x86_boot_err(err, errlen, "kernel %s: reading bzImage: %s", path,
			     r == -EIO ? "file shrank while loading" : strerror(-r));
		return r;
	}

	k->kind = BOOT_ENTRY_64;
	k->entry = load + BZ_ENTRY64_OFFSET;
	k->start = load;
	k->end = MAX(load + pm_size, runtime + h.init_size);
	k->cmdline_max = MIN(LAYOUT_CMDLINE_MAX, (uint64_t)h.cmdline_size + 1);
	k->initrd_ceiling = MIN((uint64_t)h.initrd_addr_max + 1, low_end);

	/* The zero page gets the header as the image has it, up to its end: 0x202 + byte at 0x201.
	 */
	size_t hdr_end = 0x202 + img->probe[0x201];
	size_t copy = MIN(hdr_end - SETUP_HDR_OFFSET, sizeof(k->hdr));
	memset(&k->hdr, 0, sizeof(k->hdr));
	memcpy(&k->hdr, img->probe + SETUP_HDR_OFFSET, copy);
	k->has_hdr = true;
	return 0;
}
