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

#include "config.h"
#include "vmm/vm.h"

#include "tmpfile.h"

#define LOAD_GPA 0x100000

/* The smallest kernel the loader takes: `hlt` at 1 MiB, entered in 64-bit mode. */
static char *tiny_kernel(void)
{
	static const uint8_t hlt = 0xf4;
	return tmp_elf_kernel(LOAD_GPA, &hlt, 1);
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
		config(&c, tiny_kernel(), cpus);
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
	config(&c, tmp_file(junk, sizeof(junk)), 2);
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
	config(&c, tiny_kernel(), 2);
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
	/* Every test here needs KVM: without it the program is meson's SKIP (77), which
	 * tests/run.sh counts as skipped, not passed. */
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		printf("SKIP: test_vm needs /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_bad_kernel),
		cmocka_unit_test(test_repeat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
