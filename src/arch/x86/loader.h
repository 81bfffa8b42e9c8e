/* loader.h: internal interface between boot.c and the kernel format loaders (elf.c, bzimage.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "arch/x86/bootparam.h"
#include "util/compiler.h"

/* Bytes of the kernel file boot.c reads up front to detect the format. */
#define X86_PROBE_LEN 1024

/* What a format loader leaves for boot.c after placing the kernel in guest RAM. */
struct x86_kernel {
	enum boot_entry_kind kind;
	gpa_t entry;
	gpa_t start, end;	 /* RAM the kernel needs, [start, end); the initrd must stay out */
	uint64_t cmdline_max;	 /* longest accepted command line, NUL included */
	uint64_t initrd_ceiling; /* initrd must end at or below this address */
	bool has_hdr;		 /* bzImage: hdr holds the image's setup header */
	struct setup_header hdr;
};

/* The file being loaded: fd, size and the first bytes (probe_len <= X86_PROBE_LEN valid). */
struct x86_image {
	int fd;
	uint64_t size;
	const char *path;
	const uint8_t *probe;
	size_t probe_len;
};

bool x86_elf_match(const struct x86_image *img);
int x86_elf_load(struct guest_mem *m, const struct x86_image *img, struct x86_kernel *k, char *err,
		 size_t errlen) __must_check;

bool x86_bzimage_match(const struct x86_image *img);
int x86_bzimage_load(struct guest_mem *m, const struct x86_image *img, struct x86_kernel *k,
		     char *err, size_t errlen) __must_check;

/* snprintf the one-line error into err (if err is not NULL). */
void x86_boot_err(char *err, size_t errlen, const char *fmt, ...) __printf(3, 4);

/* pread exactly len bytes at file offset off. Returns 0, -EIO on a short file, or -errno. */
int x86_pread_full(int fd, void *buf, uint64_t len, uint64_t off) __must_check;

/* pread len bytes at off straight into guest RAM at gpa (range checked). Returns 0 or -errno:
 * -EFAULT if [gpa, gpa+len) is not RAM, -EIO if the file is shorter than expected. */
int x86_pread_guest(struct guest_mem *m, int fd, uint64_t off, uint64_t len,
		    gpa_t gpa) __must_check;
