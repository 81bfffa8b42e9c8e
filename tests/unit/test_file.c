/* test_file: util/file.c, opens of user-named paths that a FIFO or device cannot stall. */
#include <errno.h>
#include <fcntl.h>
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

#include "util/file.h"

static char dir[] = "/tmp/kiln-test-file-XXXXXX";

static const char *path_in(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

/* A blocking open(2) of a FIFO with no peer would hang the test: the alarm fails it. */
static void watchdog(int sig)
{
	(void)sig;
	static const char msg[] = "test_file: an open blocked\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	_exit(1);
}

static int setup(void **state)
{
	(void)state;
	signal(SIGALRM, watchdog);
	alarm(20);
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_regular_file_opens_blocking(void **state)
{
	(void)state;
	const char *p = path_in("img");
	int fd = open(p, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	fd = file_open(p, O_RDWR, 0, FILE_KIND_REG | FILE_KIND_BLK);
	assert_true(fd >= 0);
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	assert_false(fl & O_NONBLOCK);	   /* cleared again after the open */
	assert_true(fdfl & FD_CLOEXEC);
	assert_int_equal(fl & O_ACCMODE, O_RDWR);
	close(fd);
	/* Asked for, O_NONBLOCK stays. */
	fd = file_open(p, O_RDONLY | O_NONBLOCK, 0, FILE_KIND_REG);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
}

static void test_fifo_refused_at_once(void **state)
{
	(void)state;
	const char *p = path_in("fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	/* A plain O_RDONLY open would wait for a writer forever. */
	assert_int_equal(file_open(p, O_RDONLY, 0, FILE_KIND_REG), -EMEDIUMTYPE);
	assert_int_equal(file_open(p, O_RDWR, 0, FILE_KIND_REG | FILE_KIND_BLK), -EMEDIUMTYPE);
	assert_string_equal(file_kinds_name(FILE_KIND_REG | FILE_KIND_BLK),
			    "a regular file or block device");
}

static void test_wrong_types_and_missing(void **state)
{
	(void)state;
	assert_int_equal(file_open(dir, O_RDONLY, 0, FILE_KIND_REG), -EMEDIUMTYPE);
	assert_int_equal(file_open("/dev/null", O_RDONLY, 0, FILE_KIND_REG), -EMEDIUMTYPE);
	int fd = file_open("/dev/null", O_RDONLY, 0, FILE_KIND_CHR);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(file_open(path_in("missing"), O_RDONLY, 0, FILE_KIND_REG), -ENOENT);
}

static void test_output_kinds(void **state)
{
	(void)state;
	/* Created, appended to, left non-blocking. */
	const char *p = path_in("serial.log");
	int fd = file_open_output(p);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFL) & O_APPEND);
	assert_int_equal(write(fd, "ab", 2), 2);
	close(fd);
	fd = file_open_output(p);
	assert_int_equal(write(fd, "cd", 2), 2);
	close(fd);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 4);

	/* A FIFO nobody reads yet: opened at once, and what is written waits for a reader. */
	const char *f = path_in("log.fifo");
	assert_int_equal(mkfifo(f, 0600), 0);
	fd = file_open_output(f);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(write(fd, "xyz", 3), 3);
	int rd = open(f, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	char buf[8];
	assert_int_equal(read(rd, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "xyz", 3);
	close(rd);
	close(fd);

	/* A character device is an output too; a directory is not. */
	fd = file_open_output("/dev/null");
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(file_open_output(dir), -EISDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regular_file_opens_blocking),
		cmocka_unit_test(test_fifo_refused_at_once),
		cmocka_unit_test(test_wrong_types_and_missing),
		cmocka_unit_test(test_output_kinds),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
