/* fuzz_loader.c: libFuzzer target: any file given as kernel (and initrd) must load or fail cleanly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/boot.h"

#define FUZZ_RAM (64 * MiB)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem mem;
static int fd = -1;
static char path[64];

static void setup(void)
{
	if (guest_mem_init(&mem, FUZZ_RAM)) {
		perror("guest_mem_init");
		abort();
	}
	fd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd < 0)
		setup();
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();

	/* Odd sizes also pass the input as the initrd, to reach placement after a good kernel. */
	struct boot_request req = {
	    .kernel_path = path,
	    .initrd_path = (size & 1) ? path : NULL,
	    .cmdline = "console=ttyS0 reboot=k panic=1",
	    .rsdp = 0xe0000,
	};
	struct boot_info bi;
	char err[256];
	int r = x86_boot_load(&mem, &req, &bi, err, sizeof(err));
	if (r > 0)
		abort(); /* 0 or -errno only */
	if (r < 0 && (err[0] == 0 || !memchr(err, 0, sizeof(err))))
		abort(); /* every failure explains itself */
	if (r == 0 && (bi.kernel_start >= bi.kernel_end || bi.kernel_end > FUZZ_RAM ||
		       bi.kernel_start < 0x100000 || bi.entry >= 4 * GiB))
		abort();
	/* Give back the pages a large load touched, so RSS stays flat across runs. */
	madvise(mem.base, mem.base_len, MADV_DONTNEED);
	return 0;
}
