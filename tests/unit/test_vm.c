/* test_vm.c: vm_create and vm_destroy against the real /dev/kvm: the vCPU set-up thread's
 * success and failure paths (src/vmm/vm.c, "prep"), without running the guest. Skipped
 * without KVM. Under ASan this is where a leak or a use after free in the unwinding shows. */
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
#include <sys/ioctl.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/bootparam.h"
#include "config.h"
#include "vmm/vm.h"

#define LOAD_OFF 0x1000
#define LOAD_GPA 0x100000

static char *write_tmp(const void *data, size_t len)
{
	char *path = strdup("/tmp/kiln-test-vm-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/* The smallest kernel the ELF loader takes: one PT_LOAD of `hlt` at 1 MiB and a PVH entry
 * note pointing at it. */
static char *tiny_pvh_kernel(void)
{
	uint8_t buf[LOAD_OFF + 16] = { 0 };
	struct {
		Elf64_Nhdr nh;
		char name[4];
		uint32_t entry;
	} note = { { 4, 4, XEN_ELFNOTE_PHYS32_ENTRY }, "Xen", LOAD_GPA };
	Elf64_Ehdr eh = {
		.e_type = ET_EXEC,
		.e_machine = EM_X86_64,
		.e_version = EV_CURRENT,
		.e_entry = LOAD_GPA,
		.e_phoff = sizeof(Elf64_Ehdr),
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = 2,
	};
	Elf64_Phdr ph[2] = {
		{ .p_type = PT_LOAD, .p_offset = LOAD_OFF, .p_vaddr = LOAD_GPA, .p_paddr = LOAD_GPA,
		  .p_filesz = 16, .p_memsz = 16 },
		{ .p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = sizeof(note) },
	};

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), ph, sizeof(ph));
	memcpy(buf + 0x200, &note, sizeof(note));
	memset(buf + LOAD_OFF, 0xf4, 16); /* hlt */
	return write_tmp(buf, sizeof(buf));
}

static void need_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		print_message("/dev/kvm not available: skipping\n");
		skip();
	}
	close(fd);
}

static void config(struct vm_config *c, char *kernel, unsigned cpus)
{
	vm_config_init(c);
	c->kernel_path = kernel;
	c->cpus = cpus;
	c->mem_size = 64ULL << 20;
	c->serial_mode = SERIAL_OFF;
}

/* Every vCPU comes back from the set-up thread with its fd, kvm_run and the BSP's registers;
 * the PIT exists; destroy takes it all down. */
static void test_create(void **state)
{
	struct vm_config c;
	struct vm vm;
	char err[256] = "";
	(void)state;

	need_kvm();
	for (unsigned cpus = 1; cpus <= 4; cpus *= 2) {
		config(&c, tiny_pvh_kernel(), cpus);
		assert_int_equal(vm_create(&vm, &c, err, sizeof(err)), 0);
		assert_false(vm.prep.started); /* joined */
		assert_non_null(vm.vcpus);
		assert_non_null(vm.cpuid);
		for (unsigned i = 0; i < cpus; i++) {
			assert_true(vm.vcpus[i].fd >= 0);
			assert_non_null(vm.vcpus[i].run);
			assert_int_equal(vm.vcpus[i].id, i);
		}
		struct kvm_regs regs;
		assert_int_equal(ioctl(vm.vcpus[0].fd, KVM_GET_REGS, &regs), 0);
		assert_int_equal(regs.rip, LOAD_GPA);
		struct kvm_pit_state2 pit;
		assert_int_equal(ioctl(vm.vm_fd, KVM_GET_PIT2, &pit), 0);
		vm_destroy(&vm);
		assert_null(vm.vcpus);
		unlink(c.kernel_path);
		vm_config_free(&c);
	}
}

/* A kernel the loader refuses: the failure comes after the set-up thread was let go, so
 * vm_destroy must wait for it and close the vCPUs it made. */
static void test_bad_kernel(void **state)
{
	static const uint8_t junk[4096];
	struct vm_config c;
	struct vm vm;
	char err[256] = "";
	(void)state;

	need_kvm();
	config(&c, write_tmp(junk, sizeof(junk)), 2);
	assert_int_not_equal(vm_create(&vm, &c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not an ELF vmlinux or bzImage"));
	assert_false(vm.prep.started);
	assert_null(vm.vcpus);
	assert_int_equal(vm.vm_fd, -1);
	unlink(c.kernel_path);
	vm_config_free(&c);
}

/* Repeated create/destroy: no fd or thread left behind. */
static void test_repeat(void **state)
{
	struct vm_config c;
	struct vm vm;
	char err[256] = "";
	int before, after;
	(void)state;

	need_kvm();
	config(&c, tiny_pvh_kernel(), 2);
	before = dup(0);
	close(before);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(vm_create(&vm, &c, err, sizeof(err)), 0);
		vm_destroy(&vm);
	}
	after = dup(0);
	close(after);
	assert_int_equal(after, before); /* the lowest free fd did not move */
	unlink(c.kernel_path);
	vm_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_bad_kernel),
		cmocka_unit_test(test_repeat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
