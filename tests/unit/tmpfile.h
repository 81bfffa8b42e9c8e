/* tmpfile.h: files the loader reads in unit tests: any bytes, or a one-segment ELF kernel. */
#pragma once
/* Include after <cmocka.h>: the helpers use its assert macros. */

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* data in a new file under /tmp; returns its malloc'd path. */
static inline char *tmp_file(const void *data, size_t len)
{
	char *path = strdup("/tmp/kiln-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static inline void rm_file(char *path)
{
	unlink(path);
	free(path);
}

/* A 64-bit ELF kernel: one PT_LOAD of code (at most 64 bytes) at paddr, entered there. */
static inline char *tmp_elf_kernel(uint64_t paddr, const uint8_t *code, size_t len)
{
	uint8_t buf[0x1000 + 64] = {0};
	Elf64_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_X86_64,
			 .e_version = EV_CURRENT,
			 .e_entry = paddr,
			 .e_phoff = sizeof(Elf64_Ehdr),
			 .e_ehsize = sizeof(Elf64_Ehdr),
			 .e_phentsize = sizeof(Elf64_Phdr),
			 .e_phnum = 1};
	Elf64_Phdr ph = {.p_type = PT_LOAD,
			 .p_offset = 0x1000,
			 .p_vaddr = paddr,
			 .p_paddr = paddr,
			 .p_filesz = len,
			 .p_memsz = 0x1000};

	assert_true(len <= 64);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), &ph, sizeof(ph));
	memcpy(buf + 0x1000, code, len);
	return tmp_file(buf, 0x1000 + len);
}
