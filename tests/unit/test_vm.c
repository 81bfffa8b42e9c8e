/* test_vm.c: vm_create and vm_destroy against the real /dev/kvm: the vCPU set-up thread's
 * success and failure paths (src/vmm/vm.c, "prep"), without running the guest, and its
 * seccomp list. Skipped without KVM. Under ASan this is where a leak or a use after free in
 * the unwinding shows. */
#include <dirent.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "kiln-build.h"
#include "sandbox/seccomp.h"
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

/* A "Field:\t<number>" line of /proc/self/task/TID/status, or -1 without it. */
static long task_status(const char *tid, const char *field)
{
	char path[300], line[128];
	size_t n = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%s/status", tid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Threads named vcpu<digit> in filter mode 2 (checked for want_filters filters each where
 * the kernel counts them), and whether any thread is still named vcpu-setup. */
static unsigned confined_vcpu_threads(long want_filters, bool *setup_left)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	*setup_left = false;
	while ((e = readdir(d))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
		if (!strcmp(comm, "vcpu-setup\n"))
			*setup_left = true;
		if (strncmp(comm, "vcpu", 4) || comm[4] < '0' || comm[4] > '9' ||
		    task_status(e->d_name, "Seccomp") != 2)
			continue;
		long filters = task_status(e->d_name, "Seccomp_filters");
		if (filters >= 0)
			assert_int_equal(filters, want_filters);
		n++;
	}
	closedir(d);
	return n;
}

/* Each vCPU thread installs its list once it runs (asynchronously): wait up to 5 s for all. */
static void expect_vcpu_filters(unsigned cpus)
{
	bool setup_left = false;
	unsigned n = 0;

	for (int i = 0; i < 500 && (n = confined_vcpu_threads(1, &setup_left)) < cpus; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	assert_int_equal(n, cpus);
	assert_false(setup_left); /* joined */
}

/* Every vCPU comes back from the set-up thread with its fd, kvm_run and the BSP's registers;
 * the PIT exists; each vCPU thread runs under one seccomp filter, the vCPU list, not the
 * set-up thread's as well (vm.c, "prep"); destroy takes it all down. */
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
		expect_vcpu_filters(cpus);
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

/* The set-up thread runs under its own list: with the test hook, the KVM_CREATE_VM it makes
 * right after installing it (a call only the main thread may make) stops the process with
 * status 159 and the SIGSYS handler's line naming the thread and the ioctl. In a child. */
static void test_setup_filtered(void **state)
{
	struct vm_config c;
	char *out = tmp_file("", 0), buf[1024] = "";
	int status, fd;
	pid_t pid;
	(void)state;

	need_kvm();
#ifndef KILN_TEST_HOOKS
	print_message("test hooks not compiled in (-Dtest_hooks=false): skipping\n");
	rm_file(out);
	skip();
	return; /* skip() does not return; the compiler does not know */
#endif
	config(&c, tiny_kernel(), 2);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct vm vm;
		char err[256];

		fd = open(out, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(2);
		setenv("KILN_TEST_SECCOMP", "setup", 1);
		seccomp_mode_set(SECCOMP_MODE_ON);
		if (vm_create(&vm, &c, err, sizeof(err)) == 0)
			vm_destroy(&vm);
		_exit(1); /* the hook's call went through, or never ran */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	fd = open(out, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
	close(fd);
	print_message("%s", buf);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 159);
	assert_non_null(strstr(buf, "kiln: seccomp: thread vcpu-setup made system call 16 "
				    "(ioctl, arguments 0x"));
	assert_non_null(strstr(buf, ", 0xae01), which its allowlist does not allow"));
	rm_file(out);
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
		cmocka_unit_test(test_setup_filtered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
