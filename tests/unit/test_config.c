/* test_config.c: vm_config defaults, freeing and validation messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static char err[256];

/* Validation must fail with exactly msg. */
static void invalid(const struct vm_config *c, const char *msg)
{
	memset(err, 0, sizeof(err));
	assert_int_equal(vm_config_validate(c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, msg);
}

static void valid(const struct vm_config *c)
{
	err[0] = '\0';
	if (vm_config_validate(c, err, sizeof(err)))
		fail_msg("unexpected: %s", err);
}

static void test_init(void **state)
{
	struct vm_config c;

	memset(&c, 0xa5, sizeof(c));
	vm_config_init(&c);
	assert_null(c.kernel_path);
	assert_null(c.initrd_path);
	assert_null(c.cmdline);
	assert_null(c.serial_path);
	assert_int_equal(c.cpus, VM_CONFIG_DEFAULT_CPUS);
	assert_int_equal(c.cpus, 1);
	assert_int_equal(c.mem_size, VM_CONFIG_DEFAULT_MEM);
	assert_int_equal(c.mem_size, 512ULL << 20);
	assert_int_equal(c.serial_mode, SERIAL_STDIO);
	valid(&c);
}

static void test_release(void **state)
{
	struct vm_config c;

	vm_config_init(&c);
	vm_config_free(&c); /* nothing owned */
	c.kernel_path = strdup("k");
	c.initrd_path = strdup("i");
	c.cmdline = strdup("console=ttyS0");
	c.serial_path = strdup("s");
	c.serial_mode = SERIAL_FILE;
	c.cpus = 3;
	vm_config_free(&c); /* ASan/LeakSanitizer or valgrind would catch a leak */
	assert_null(c.kernel_path);
	assert_null(c.initrd_path);
	assert_null(c.cmdline);
	assert_null(c.serial_path);
	assert_int_equal(c.cpus, 3); /* scalars are left alone */
	vm_config_free(&c);	     /* twice is fine */
}

static void test_cpus(void **state)
{
	struct vm_config c;

	vm_config_init(&c);
	c.cpus = 0;
	invalid(&c, "cpus: 0 is out of range (1-32)");
	c.cpus = VM_CONFIG_MAX_CPUS + 1;
	invalid(&c, "cpus: 33 is out of range (1-32)");
	c.cpus = 4000000000u;
	invalid(&c, "cpus: 4000000000 is out of range (1-32)");
	c.cpus = 1;
	valid(&c);
	c.cpus = VM_CONFIG_MAX_CPUS;
	valid(&c);
}

static void test_memory(void **state)
{
	struct vm_config c;

	vm_config_init(&c);
	c.mem_size = VM_CONFIG_MIN_MEM;
	valid(&c);
	c.mem_size = VM_CONFIG_MIN_MEM - 4096;
	invalid(&c, "memory: 67104768 bytes is below the 64 MiB minimum");
	c.mem_size = 0;
	invalid(&c, "memory: 0 bytes is below the 64 MiB minimum");
	c.mem_size = VM_CONFIG_MIN_MEM + 1;
	invalid(&c, "memory: 67108865 bytes is not a multiple of the 4096-byte page size");
	c.mem_size = VM_CONFIG_MIN_MEM + 2048;
	invalid(&c, "memory: 67110912 bytes is not a multiple of the 4096-byte page size");
	c.mem_size = VM_CONFIG_MIN_MEM + 4096;
	valid(&c);
	c.mem_size = 1ULL << 40; /* the host limit is the CLI's business, not validate's */
	valid(&c);
}

static void test_paths(void **state)
{
	struct vm_config c;
	char empty[] = "", k[] = "vmlinux";

	vm_config_init(&c);
	c.kernel_path = empty;
	invalid(&c, "kernel: empty path");
	c.kernel_path = k;
	valid(&c);
	c.initrd_path = empty;
	invalid(&c, "initrd: empty path");
}

static void test_serial(void **state)
{
	struct vm_config c;
	char path[] = "/tmp/console.log", empty[] = "";

	vm_config_init(&c);
	c.serial_mode = SERIAL_OFF;
	valid(&c);
	c.serial_mode = SERIAL_FILE;
	invalid(&c, "serial: file mode needs a path");
	c.serial_path = empty;
	invalid(&c, "serial: file mode needs a path");
	c.serial_path = path;
	valid(&c);
	c.serial_mode = (enum serial_mode)7;
	invalid(&c, "serial: unknown mode 7");
}

static void test_err_buffer(void **state)
{
	struct vm_config c;
	char small[8];

	vm_config_init(&c);
	c.cpus = 0;
	/* The first failing field is reported; the buffer is optional and never overrun. */
	c.mem_size = 0;
	invalid(&c, "cpus: 0 is out of range (1-32)");
	assert_int_equal(vm_config_validate(&c, NULL, 0), -EINVAL);
	memset(small, 'Z', sizeof(small));
	assert_int_equal(vm_config_validate(&c, small, sizeof(small)), -EINVAL);
	assert_string_equal(small, "cpus: 0");
	small[0] = 'Z';
	assert_int_equal(vm_config_validate(&c, small, 0), -EINVAL);
	assert_int_equal(small[0], 'Z');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init),       cmocka_unit_test(test_release),
	    cmocka_unit_test(test_cpus),       cmocka_unit_test(test_memory),
	    cmocka_unit_test(test_paths),      cmocka_unit_test(test_serial),
	    cmocka_unit_test(test_err_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
