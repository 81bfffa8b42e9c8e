/* test_fifo_paths.c: a FIFO named as the kernel, the initrd or a config file fails at once with
 * a one-line message, instead of blocking kiln in open(2) until a writer comes. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include "tmpfile.h"

#include "api/api.h"
#include "arch/x86/boot.h"
#include "vmm/memory.h"

static char dir[] = "/tmp/kiln-test-fifo-XXXXXX";
static char fifo[128];
static char err[512];

/* A blocking open of the FIFO would hang: the alarm fails the test instead. */
static void watchdog(int sig)
{
	static const char msg[] = "test_fifo_paths: watchdog: an open blocked on a FIFO\n";
	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

static int setup(void **state)
{
	(void)state;
	err[0] = '\0';
	alarm(5);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

static void assert_one_line(void)
{
	assert_true(err[0] != '\0');
	assert_null(strchr(err, '\n'));
}

static int boot(const char *kernel, const char *initrd)
{
	struct guest_mem m;
	struct boot_info bi;
	struct boot_request req = {.kernel_path = kernel,
				   .initrd_path = initrd,
				   .cmdline = "console=ttyS0",
				   .rsdp = 0xe0000};

	assert_int_equal(guest_mem_init(&m, 64 * MiB), 0);
	int ret = x86_boot_load(&m, &req, &bi, err, sizeof(err));
	guest_mem_destroy(&m);
	return ret;
}

static void test_kernel_fifo(void **state)
{
	char want[300];
	(void)state;
	assert_int_equal(boot(fifo, NULL), -EINVAL);
	snprintf(want, sizeof(want), "kernel %s: not a regular file", fifo);
	assert_string_equal(err, want);
	assert_one_line();
}

static void test_initrd_fifo(void **state)
{
	static const uint8_t hlt[] = {0xf4};
	char want[300];
	(void)state;
	char *kernel = tmp_elf_kernel(0x200000, hlt, sizeof(hlt));
	assert_int_equal(boot(kernel, NULL), 0); /* the kernel itself loads */
	assert_int_equal(boot(kernel, fifo), -EINVAL);
	rm_file(kernel);
	snprintf(want, sizeof(want), "initrd %s: not a regular file", fifo);
	assert_string_equal(err, want);
	assert_one_line();
}

static void test_config_file_fifo(void **state)
{
	struct api_config c;
	char want[300];
	(void)state;
	api_config_init(&c);
	assert_int_equal(api_config_load_file(&c, fifo, err, sizeof(err)), -EINVAL);
	api_config_free(&c);
	snprintf(want, sizeof(want), "%s: not a regular file", fifo);
	assert_string_equal(err, want);
	assert_one_line();
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGALRM, watchdog);
	if (!mkdtemp(dir))
		return -1;
	snprintf(fifo, sizeof(fifo), "%s/in.fifo", dir);
	return mkfifo(fifo, 0600);
}

static int group_teardown(void **state)
{
	(void)state;
	unlink(fifo);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_kernel_fifo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_fifo, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_file_fifo, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
