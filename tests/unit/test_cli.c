/* test_cli.c: `kiln run` option parsing, sizes, numbers and key=value lists, with exact messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sandbox/seccomp.h"

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		if (!strstr((hay), (needle)))                                                      \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));                   \
	} while (0)

/* Temporary files shared by the tests: a kernel, an initrd, a directory. */
static char tmpdir[64], kernel[96], initrd[96], unreadable[96], img[96], img2[96], roimg[96];

static struct vm_config cfg;
static char err[256];

static int make_file(const char *path, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs("not really a kernel\n", f);
	fclose(f);
	return chmod(path, mode);
}

static int setup_files(void **state)
{
	strcpy(tmpdir, "/tmp/kiln-test-cli-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", tmpdir);
	snprintf(initrd, sizeof(initrd), "%s/initrd.img", tmpdir);
	snprintf(unreadable, sizeof(unreadable), "%s/secret", tmpdir);
	snprintf(img, sizeof(img), "%s/disk.img", tmpdir);
	snprintf(img2, sizeof(img2), "%s/disk2.img", tmpdir);
	snprintf(roimg, sizeof(roimg), "%s/ro.img", tmpdir);
	if (make_file(kernel, 0644) || make_file(initrd, 0644) || make_file(unreadable, 0) ||
	    make_file(img, 0644) || make_file(img2, 0644) || make_file(roimg, 0444))
		return -1;
	return 0;
}

static int teardown_files(void **state)
{
	unlink(kernel);
	unlink(initrd);
	unlink(unreadable);
	unlink(img);
	unlink(img2);
	unlink(roimg);
	rmdir(tmpdir);
	return 0;
}

/* Parse a NULL-terminated list of arguments into cfg; the message lands in err. */
static int parse_out(FILE *out, const char *first, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		assert_true(argc < 31);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	memset(err, 0, sizeof(err));
	return cli_parse_run(argc, argv, &cfg, out, err, sizeof(err));
}

#define parse(...) parse_out(NULL, __VA_ARGS__, NULL)

/* The config must hold only the defaults (what every failed parse leaves behind). */
static void assert_defaults(void)
{
	assert_null(cfg.kernel_path);
	assert_null(cfg.initrd_path);
	assert_null(cfg.cmdline);
	assert_null(cfg.serial_path);
	assert_int_equal(cfg.cpus, VM_CONFIG_DEFAULT_CPUS);
	assert_int_equal(cfg.mem_size, VM_CONFIG_DEFAULT_MEM);
	assert_int_equal(cfg.serial_mode, SERIAL_STDIO);
	assert_int_equal(cfg.nr_disks, 0);
	assert_true(cfg.rng);
	assert_int_equal(cfg.console_mode, SERIAL_OFF);
	assert_null(cfg.console_path);
}

/* Parsing must fail with -EINVAL and exactly this message, leaving only defaults. */
static void bad(const char *msg, const char *first, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	memset(err, 0, sizeof(err));
	assert_int_equal(cli_parse_run(argc, argv, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, msg);
	assert_null(strchr(err, '\n'));
	assert_defaults();
}

#define BAD(msg, ...) bad(msg, __VA_ARGS__, NULL)

/* ---- whole command lines ---- */

static void test_defaults(void **state)
{
	char *argv[] = {NULL};

	assert_int_equal(cli_parse_run(0, argv, &cfg, NULL, err, sizeof(err)), 0);
	assert_defaults();
	assert_int_equal(cfg.mem_size, 512 * MiB);
	vm_config_free(&cfg);
}

static void test_all_options_separate(void **state)
{
	assert_int_equal(parse("--kernel", kernel, "--initrd", initrd, "--cmdline",
			       "console=ttyS0 quiet", "--cpus", "4", "--memory", "1G", "--serial",
			       "file=/tmp/console.log"),
			 0);
	assert_string_equal(cfg.kernel_path, kernel);
	assert_string_equal(cfg.initrd_path, initrd);
	assert_string_equal(cfg.cmdline, "console=ttyS0 quiet");
	assert_int_equal(cfg.cpus, 4);
	assert_int_equal(cfg.mem_size, GiB);
	assert_int_equal(cfg.serial_mode, SERIAL_FILE);
	assert_string_equal(cfg.serial_path, "/tmp/console.log");
	vm_config_free(&cfg);
}

static void test_all_options_equals(void **state)
{
	char k[128], i[128];

	snprintf(k, sizeof(k), "--kernel=%s", kernel);
	snprintf(i, sizeof(i), "--initrd=%s", initrd);
	assert_int_equal(
	    parse(k, i, "--cmdline=root=/dev/vda rw", "--cpus=32", "--memory=2048", "--serial=off"),
	    0);
	assert_string_equal(cfg.kernel_path, kernel);
	assert_string_equal(cfg.initrd_path, initrd);
	assert_string_equal(cfg.cmdline, "root=/dev/vda rw"); /* split at the first '=' */
	assert_int_equal(cfg.cpus, 32);
	assert_int_equal(cfg.mem_size, 2 * GiB);
	assert_int_equal(cfg.serial_mode, SERIAL_OFF);
	assert_null(cfg.serial_path);
	vm_config_free(&cfg);
}

static void test_cmdline(void **state)
{
	assert_int_equal(parse("--cmdline="), 0); /* an explicitly empty command line */
	assert_non_null(cfg.cmdline);
	assert_string_equal(cfg.cmdline, "");
	vm_config_free(&cfg);
	assert_int_equal(parse("--cmdline=--weird"), 0);
	assert_string_equal(cfg.cmdline, "--weird");
	vm_config_free(&cfg);
	assert_int_equal(parse("--cmdline", "-x"), 0); /* single dash is a value */
	assert_string_equal(cfg.cmdline, "-x");
	vm_config_free(&cfg);
	BAD("--cmdline: missing value", "--cmdline", "--cpus", "2");
	BAD("--cmdline: missing value", "--cmdline");
}

static void test_cpus(void **state)
{
	static const struct {
		const char *arg;
		unsigned cpus;
	} good[] = {{"1", 1}, {"2", 2}, {"32", 32}, {"010", 10}};

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		assert_int_equal(parse("--cpus", good[i].arg), 0);
		assert_int_equal(cfg.cpus, good[i].cpus);
		vm_config_free(&cfg);
	}
	BAD("--cpus: '0' is out of range (1-32)", "--cpus", "0");
	BAD("--cpus: '33' is out of range (1-32)", "--cpus=33");
	BAD("--cpus: '-1' is out of range (1-32)", "--cpus", "-1");
	BAD("--cpus: '99999999999999999999999' is out of range (1-32)", "--cpus",
	    "99999999999999999999999");
	BAD("--cpus: 'abc' is not a number", "--cpus", "abc");
	BAD("--cpus: '4x' is not a number", "--cpus", "4x");
	BAD("--cpus: ' 4' is not a number", "--cpus", " 4");
	BAD("--cpus: '4 ' is not a number", "--cpus", "4 ");
	BAD("--cpus: '+4' is not a number", "--cpus", "+4");
	BAD("--cpus: '0x4' is not a number", "--cpus", "0x4");
	BAD("--cpus: '-x' is not a number", "--cpus", "-x");
	BAD("--cpus: empty value", "--cpus=");
	BAD("--cpus: missing value", "--cpus");
}

static void test_memory_good(void **state)
{
	static const struct {
		const char *arg;
		uint64_t bytes;
	} good[] = {
	    {"1G", GiB},
	    {"1024M", GiB},
	    {"1GiB", GiB},
	    {"1gib", GiB},
	    {"1GB", GiB},
	    {"1g", GiB},
	    {"512m", 512 * MiB},
	    {"64M", 64 * MiB},
	    {"64", 64 * MiB},
	    {"1024", GiB},
	    {"65536K", 64 * MiB},
	    {"65536KiB", 64 * MiB},
	    {"67108864B", 64 * MiB},
	    {"67108864b", 64 * MiB},
	    {"0001G", GiB},
	};

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		assert_int_equal(parse("--memory", good[i].arg), 0);
		if (cfg.mem_size != good[i].bytes)
			fail_msg("--memory %s gave %llu", good[i].arg,
				 (unsigned long long)cfg.mem_size);
		vm_config_free(&cfg);
	}
}

static void test_memory_bad(void **state)
{
	BAD("--memory: 32M is below the 64 MiB minimum", "--memory", "32M");
	BAD("--memory: 63M is below the 64 MiB minimum", "--memory", "63M");
	BAD("--memory: 0 is below the 64 MiB minimum", "--memory", "0");
	BAD("--memory: 63 is below the 64 MiB minimum", "--memory", "63");
	BAD("--memory: 67108863B is below the 64 MiB minimum", "--memory", "67108863B");
	BAD("--memory: empty value", "--memory", "");
	BAD("--memory: empty value", "--memory=");
	BAD("--memory: 'abc' is not a size", "--memory", "abc");
	BAD("--memory: ' 5' is not a size", "--memory", " 5");
	BAD("--memory: '5 ' is not a size", "--memory", "5 ");
	BAD("--memory: '5x' is not a size", "--memory", "5x");
	BAD("--memory: '5 M' is not a size", "--memory", "5 M");
	BAD("--memory: '1.5G' is not a size", "--memory", "1.5G");
	BAD("--memory: '-1' is not a size", "--memory", "-1");
	BAD("--memory: '+1G' is not a size", "--memory", "+1G");
	BAD("--memory: 'G' is not a size", "--memory", "G");
	BAD("--memory: '1GiBB' is not a size", "--memory", "1GiBB");
	BAD("--memory: '1P' is not a size", "--memory", "1P");
	BAD("--memory: '18446744073709551616' is too large", "--memory", "18446744073709551616");
	BAD("--memory: '18446744073709551615' is too large", "--memory", "18446744073709551615");
	BAD("--memory: '16777216T' is too large", "--memory", "16777216T");
	BAD("--memory: 65537K is not a multiple of the 4 KiB page size", "--memory", "65537K");
	BAD("--memory: 67112961B is not a multiple of the 4 KiB page size", "--memory",
	    "67112961B");
}

static void test_memory_host_limit(void **state)
{
	uint64_t host = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	char msg[128];

	snprintf(msg, sizeof(msg), "--memory: 1024T is more than the host's %llu MiB of RAM",
		 (unsigned long long)(host / MiB));
	BAD(msg, "--memory", "1024T");
	/* Exactly the host's RAM is allowed when it is whole pages and at least 64 MiB. */
	if (host % (4 * KiB) == 0 && host >= 64 * MiB) {
		char arg[32];

		snprintf(arg, sizeof(arg), "%lluB", (unsigned long long)host);
		assert_int_equal(parse("--memory", arg), 0);
		assert_int_equal(cfg.mem_size, host);
		vm_config_free(&cfg);
		snprintf(arg, sizeof(arg), "%lluB", (unsigned long long)host + 4096);
		assert_int_equal(parse("--memory", arg), -EINVAL);
		assert_contains(err, "of RAM");
	}
}

static void test_serial(void **state)
{
	assert_int_equal(parse("--serial", "stdio"), 0);
	assert_int_equal(cfg.serial_mode, SERIAL_STDIO);
	assert_null(cfg.serial_path);
	vm_config_free(&cfg);
	assert_int_equal(parse("--serial", "off"), 0);
	assert_int_equal(cfg.serial_mode, SERIAL_OFF);
	vm_config_free(&cfg);
	assert_int_equal(parse("--serial=file=/var/log/vm=1.log"), 0);
	assert_int_equal(cfg.serial_mode, SERIAL_FILE);
	assert_string_equal(cfg.serial_path, "/var/log/vm=1.log");
	vm_config_free(&cfg);
	assert_int_equal(parse("--serial", "file=a,,b"), 0);
	assert_string_equal(cfg.serial_path, "a,b");
	vm_config_free(&cfg);

	BAD("--serial: unknown mode 'foo' (expected stdio, file=PATH or off)", "--serial", "foo");
	BAD("--serial: unknown mode 'STDIO' (expected stdio, file=PATH or off)", "--serial",
	    "STDIO");
	BAD("--serial: unknown mode 'stdio,,' (expected stdio, file=PATH or off)", "--serial",
	    "stdio,,");
	BAD("--serial: file needs a path (file=PATH)", "--serial", "file");
	BAD("--serial: 'file' has an empty value", "--serial", "file=");
	BAD("--serial: 'stdio,file=x' mixes a mode with file= (expected stdio, file=PATH or off)",
	    "--serial", "stdio,file=x");
	BAD("--serial: unknown key 'foo' (expected file)", "--serial", "foo=bar");
	BAD("--serial: 'file' given twice", "--serial", "file=a,file=b");
	BAD("--serial: trailing comma in 'off,'", "--serial", "off,");
	BAD("--serial: empty item in ',off'", "--serial", ",off");
	BAD("--serial: 'on' is not key=value", "--serial", "off,on");
	BAD("--serial: missing key in '='", "--serial", "=");
	BAD("--serial: empty value", "--serial=");
	BAD("--serial: missing value", "--serial");
}

static void test_files(void **state)
{
	char msg[256];

	BAD("--kernel: /nonexistent/vmlinux: No such file or directory", "--kernel",
	    "/nonexistent/vmlinux");
	BAD("--initrd: /x: No such file or directory", "--initrd=/x");
	snprintf(msg, sizeof(msg), "--kernel: %s: Is a directory", tmpdir);
	BAD(msg, "--kernel", tmpdir);
	BAD("--initrd: /dev/null: not a regular file", "--initrd", "/dev/null");
	BAD("--kernel: empty value", "--kernel=");
	BAD("--kernel: missing value", "--kernel");
	/* A readable kernel followed by a bad initrd leaves nothing allocated behind. */
	BAD("--initrd: /x: No such file or directory", "--kernel", kernel, "--initrd", "/x");
	if (geteuid() == 0)
		return; /* root may read any file: the unreadable case cannot be made here */
	snprintf(msg, sizeof(msg), "--kernel: %s: Permission denied", unreadable);
	BAD(msg, "--kernel", unreadable);
}

static void test_structure(void **state)
{
	BAD("unknown option '--foo'", "--foo");
	BAD("unknown option '--foo'", "--foo=bar");
	BAD("unknown option '--mem'", "--mem", "1G"); /* no abbreviations */
	BAD("unknown option '--CPUS'", "--CPUS", "1");
	BAD("unknown option '-x'", "-x");
	BAD("unknown option '-c'", "-c", "2");
	BAD("unknown option '---cpus'", "---cpus", "2");
	BAD("unexpected argument 'foo'", "foo");
	BAD("unexpected argument '-'", "-");
	BAD("unexpected argument 'run'", "--cpus", "2", "run");
	BAD("unexpected argument 'x'", "--", "x");
	BAD("--cpus given twice", "--cpus", "2", "--cpus=3");
	BAD("--memory given twice", "--memory=1G", "--memory=1G");
	BAD("--serial given twice", "--serial=off", "--serial", "stdio");
	BAD("--cmdline given twice", "--cmdline=a", "--cmdline=a");
	BAD("--help takes no value", "--help=yes");
	/* The first error wins. */
	BAD("--cpus: '0' is out of range (1-32)", "--cpus", "0", "--memory", "1");
	/* "--" ends the options. */
	assert_int_equal(parse("--cpus", "2", "--"), 0);
	assert_int_equal(cfg.cpus, 2);
	vm_config_free(&cfg);
}

static void test_message_hygiene(void **state)
{
	char big[600];

	/* User text with control characters cannot break the message onto two lines. */
	BAD("--cpus: '1?2' is not a number", "--cpus", "1\n2");
	BAD("unknown option '--a?b'", "--a\033b");
	/* Long user text is clipped so the message keeps its tail. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse("--cpus", big), -EINVAL);
	assert_contains(err, "...' is not a number");
	assert_true(strlen(err) < 160);
	big[0] = '-';
	big[1] = '-';
	assert_int_equal(parse(big), -EINVAL);
	assert_contains(err, "unknown option '--xxx");
	assert_contains(err, "...'");
	/* A NULL or zero-length err buffer is allowed. */
	char *argv[] = {(char *)"--cpus", (char *)"0", NULL};
	assert_int_equal(cli_parse_run(2, argv, &cfg, NULL, NULL, 0), -EINVAL);
	err[0] = 'Z';
	assert_int_equal(cli_parse_run(2, argv, &cfg, NULL, err, 0), -EINVAL);
	assert_int_equal(err[0], 'Z');
	/* A short buffer truncates and stays terminated. */
	assert_int_equal(cli_parse_run(2, argv, &cfg, NULL, err, 8), -EINVAL);
	assert_string_equal(err, "--cpus:");
}

/* ---- devices: --disk, --rng, --console ---- */

static void test_disk_good(void **state)
{
	char a[256], b[256];

	snprintf(a, sizeof(a), "path=%s", img);
	snprintf(b, sizeof(b), "path=%s,readonly=on,id=root,serial=SN-1,engine=sync,cache=unsafe",
		 img2);
	assert_int_equal(parse("--disk", a, "--disk", b), 0);
	assert_int_equal(cfg.nr_disks, 2);
	assert_string_equal(cfg.disks[0].path, img);
	assert_string_equal(cfg.disks[0].id, "disk0");
	assert_false(cfg.disks[0].readonly);
	assert_string_equal(cfg.disks[0].serial, "");
	assert_int_equal(cfg.disks[0].engine, DISK_ENGINE_DEFAULT);
	assert_int_equal(cfg.disks[0].cache, DISK_CACHE_WRITEBACK);
	assert_string_equal(cfg.disks[1].path, img2);
	assert_string_equal(cfg.disks[1].id, "root");
	assert_true(cfg.disks[1].readonly);
	assert_string_equal(cfg.disks[1].serial, "SN-1");
	assert_int_equal(cfg.disks[1].engine, DISK_ENGINE_SYNC);
	assert_int_equal(cfg.disks[1].cache, DISK_CACHE_UNSAFE);
	vm_config_free(&cfg);

	/* Generated ids skip the ones taken; a 20-byte serial fits; engine=uring. */
	snprintf(a, sizeof(a), "--disk=path=%s,id=disk0,serial=01234567890123456789", img);
	snprintf(b, sizeof(b), "--disk=path=%s,engine=uring", img2);
	assert_int_equal(parse(a, b), 0);
	assert_string_equal(cfg.disks[0].serial, "01234567890123456789");
	assert_string_equal(cfg.disks[1].id, "disk1");
	assert_int_equal(cfg.disks[1].engine, DISK_ENGINE_URING);
	vm_config_free(&cfg);

	/* A file nobody may write is fine read-only; the same file twice read-only too. */
	snprintf(a, sizeof(a), "path=%s,readonly=on", roimg);
	assert_int_equal(parse("--disk", a, "--disk", a), 0);
	assert_int_equal(cfg.nr_disks, 2);
	vm_config_free(&cfg);

	/* Up to VM_CONFIG_MAX_DISKS. */
	char *argv[2 * VM_CONFIG_MAX_DISKS + 3];
	int argc = 0;
	snprintf(a, sizeof(a), "path=%s,readonly=on", roimg);
	for (int i = 0; i < VM_CONFIG_MAX_DISKS; i++) {
		argv[argc++] = (char *)"--disk";
		argv[argc++] = a;
	}
	argv[argc] = NULL;
	assert_int_equal(cli_parse_run(argc, argv, &cfg, NULL, err, sizeof(err)), 0);
	assert_int_equal(cfg.nr_disks, VM_CONFIG_MAX_DISKS);
	assert_string_equal(cfg.disks[VM_CONFIG_MAX_DISKS - 1].id, "disk15");
	vm_config_free(&cfg);
	argv[argc++] = (char *)"--disk";
	argv[argc++] = a;
	argv[argc] = NULL;
	assert_int_equal(cli_parse_run(argc, argv, &cfg, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--disk: at most 16 disks");
	assert_defaults();
}

static void test_disk_bad(void **state)
{
	char a[256], b[256], msg[320];

	BAD("--disk: path=IMG is required", "--disk", "id=x");
	BAD("--disk: /nonexistent.img: No such file or directory", "--disk",
	    "path=/nonexistent.img");
	snprintf(msg, sizeof(msg), "--disk: %s: Is a directory", tmpdir);
	snprintf(a, sizeof(a), "path=%s", tmpdir);
	BAD(msg, "--disk", a);
	BAD("--disk: /dev/null: not a regular file or block device", "--disk", "path=/dev/null");
	/* A read-only file without readonly=on: refused, for root too. */
	snprintf(msg, sizeof(msg), "--disk: %s: read-only (Permission denied): add readonly=on",
		 roimg);
	snprintf(a, sizeof(a), "path=%s", roimg);
	BAD(msg, "--disk", a);
	snprintf(a, sizeof(a), "path=%s,readonly=off", roimg);
	BAD(msg, "--disk", a);
	/* Keys and values. */
	snprintf(a, sizeof(a), "path=%s,size=1G", img);
	BAD("--disk: unknown key 'size' (expected path, readonly, id, serial, engine, cache)",
	    "--disk", a);
	snprintf(a, sizeof(a), "path=%s,readonly=maybe", img);
	BAD("--disk: readonly: 'maybe' is not on or off", "--disk", a);
	snprintf(a, sizeof(a), "path=%s,engine=aio", img);
	BAD("--disk: engine 'aio' is not uring or sync", "--disk", a);
	snprintf(a, sizeof(a), "path=%s,cache=none", img);
	BAD("--disk: cache 'none' is not writeback or unsafe", "--disk", a);
	snprintf(a, sizeof(a), "path=%s,serial=012345678901234567890", img);
	BAD("--disk: serial '012345678901234567890' is longer than 20 bytes", "--disk", a);
	snprintf(a, sizeof(a), "path=%s,serial=a\tb", img);
	BAD("--disk: serial 'a?b' must be printable ASCII", "--disk", a);
	snprintf(a, sizeof(a), "path=%s,id=a/b", img);
	BAD("--disk: id 'a/b' may hold only letters, digits, '.', '_' and '-'", "--disk", a);
	snprintf(a, sizeof(a), "path=%s,id=%064d", img, 0);
	assert_int_equal(parse("--disk", a), -EINVAL);
	assert_contains(err, "is longer than 63 bytes");
	/* Two disks: duplicate id, the same image twice read-write. */
	snprintf(a, sizeof(a), "path=%s,id=root", img);
	snprintf(b, sizeof(b), "path=%s,id=root", img2);
	BAD("--disk: duplicate id 'root'", "--disk", a, "--disk", b);
	snprintf(a, sizeof(a), "path=%s", img);
	snprintf(b, sizeof(b), "path=%s,readonly=on", img);
	snprintf(msg, sizeof(msg), "--disk: %s is already used by another --disk", img);
	BAD(msg, "--disk", a, "--disk", b);
	BAD("--disk: missing value", "--disk");
	BAD("--disk: empty value", "--disk=");
}

/* --seccomp sets the process's mode (sandbox/seccomp.h); a bad value names the option. */
static void test_seccomp(void **state)
{
	(void)state;
	assert_int_equal(seccomp_mode_get(), SECCOMP_MODE_ON); /* the default */
	assert_int_equal(parse("--seccomp", "log"), 0);
	assert_int_equal(seccomp_mode_get(), SECCOMP_MODE_LOG);
	vm_config_free(&cfg);
	assert_int_equal(parse("--seccomp=off"), 0);
	assert_int_equal(seccomp_mode_get(), SECCOMP_MODE_OFF);
	vm_config_free(&cfg);
	BAD("--seccomp: 'strict' is not on, log or off", "--seccomp", "strict");
	BAD("--seccomp given twice", "--seccomp", "on", "--seccomp", "off");
	seccomp_mode_set(SECCOMP_MODE_ON);
}

static void test_rng_console(void **state)
{
	assert_int_equal(parse("--rng", "off"), 0);
	assert_false(cfg.rng);
	vm_config_free(&cfg);
	assert_int_equal(parse("--rng=on"), 0);
	assert_true(cfg.rng);
	vm_config_free(&cfg);
	BAD("--rng: 'maybe' is not on or off", "--rng", "maybe");
	BAD("--rng given twice", "--rng", "on", "--rng", "off");

	assert_int_equal(parse("--console", "file=/tmp/hvc0.log"), 0);
	assert_int_equal(cfg.console_mode, SERIAL_FILE);
	assert_string_equal(cfg.console_path, "/tmp/hvc0.log");
	vm_config_free(&cfg);
	assert_int_equal(parse("--console", "off"), 0);
	assert_int_equal(cfg.console_mode, SERIAL_OFF);
	vm_config_free(&cfg);
	/* stdio: the serial port keeps its default (stdio output) but not stdin. */
	assert_int_equal(parse("--console", "stdio"), 0);
	assert_int_equal(cfg.console_mode, SERIAL_STDIO);
	assert_int_equal(cfg.serial_mode, SERIAL_STDIO);
	vm_config_free(&cfg);
	assert_int_equal(parse("--console", "stdio", "--serial", "off"), 0);
	vm_config_free(&cfg);
	BAD("--console: stdio is already used by --serial stdio (give --serial off or file=PATH, "
	    "or --console file=PATH)",
	    "--serial", "stdio", "--console", "stdio");
	BAD("--console: unknown mode 'tty' (expected stdio, file=PATH or off)", "--console", "tty");
	BAD("--console: file needs a path (file=PATH)", "--console", "file");
	BAD("--console given twice", "--console", "off", "--console", "off");
}

/* ---- --help ---- */

/* noinline: inlined at -O3, GCC 12 takes the returned memstream buffer for a pointer to the
 * local variable that held it (a false -Wdangling-pointer). */
__attribute__((noinline)) static char *help_text(const char *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	assert_non_null(out);
	assert_int_equal(parse_out(out, "--cpus", "4", arg, "--bogus", NULL), 1);
	fclose(out);
	assert_defaults(); /* help leaves nothing half-parsed */
	return buf;
}

static void test_help(void **state)
{
	static const char *const want[] = {
	    "--kernel PATH",
	    "[default: the default guest]",
	    "--initrd PATH",
	    "[default: none, or the default guest's]",
	    "--cmdline STR",
	    "[default: \"" VM_CONFIG_DEFAULT_CMDLINE "\"]",
	    "--cpus N",
	    "1-32",
	    "[default: 1]",
	    "--memory SIZE",
	    "64 MiB",
	    "4 KiB",
	    "[default: 512M]",
	    "--serial MODE",
	    "stdio, file=PATH or off",
	    "[default: stdio]",
	    "--disk LIST",
	    "path=IMG",
	    "readonly=on|off",
	    "serial=STR",
	    "at most 20 bytes",
	    "engine=uring|sync",
	    "cache=writeback|unsafe",
	    "[default: none]",
	    "--net LIST",
	    "tap=NAME",
	    "hostfwd=FWD",
	    "--rng on|off",
	    "[default: on]",
	    "--console MODE",
	    "/dev/hvc0",
	    "[default: off]",
	    "--seccomp on|log|off",
	    "[default: on]",
	    "-h, --help",
	    "--opt=VALUE",
	};
	char *h = help_text("--help"), *h2 = help_text("-h");

	assert_string_equal(h, h2);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		assert_contains(h, want[i]);

	/* Every option the help names is one the parser knows, and vice versa (above). */
	int options = 0;
	for (char *p = strstr(h, "  --"); p; p = strstr(p + 1, "\n  --")) {
		char name[32];

		if (sscanf(p + (*p == '\n'), " %31[-a-z]", name) != 1)
			fail_msg("cannot read an option at '%.20s'", p);
		(void)parse(name, "1");
		if (strstr(err, "unknown option") || strstr(err, "unexpected"))
			fail_msg("help lists %s, which the parser rejects: %s", name, err);
		vm_config_free(&cfg);
		options++;
	}
	assert_int_equal(options, 12); /* plus "-h, --help", which the loop skips */
	/* The memory default printed is the real default. */
	uint64_t v;
	assert_int_equal(cli_parse_size("512M", 0, &v), 0);
	assert_int_equal(v, VM_CONFIG_DEFAULT_MEM);
	free(h);
	free(h2);
}

/* ---- numbers and sizes ---- */

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		uint64_t unit, bytes;
	} good[] = {
	    {"0", 0, 0},
	    {"0", MiB, 0},
	    {"1", 0, 1},
	    {"1", MiB, MiB},
	    {"1B", MiB, 1},
	    {"1k", 0, KiB},
	    {"1KB", 0, KiB},
	    {"1kib", 0, KiB},
	    {"3M", 0, 3 * MiB},
	    {"1G", 0, GiB},
	    {"1024M", 0, GiB},
	    {"1GiB", 0, GiB},
	    {"512m", 0, 512 * MiB},
	    {"64M", 0, 64 * MiB},
	    {"2T", 0, 2048 * GiB},
	    {"16777215T", 0, 16777215ULL << 40},
	    {"18446744073709551615", 0, UINT64_MAX},
	    {"18446744073709551615B", MiB, UINT64_MAX},
	};
	static const struct {
		const char *s;
		int ret;
	} bad[] = {
	    {"", -EINVAL},
	    {" 5", -EINVAL},
	    {"5 ", -EINVAL},
	    {"5x", -EINVAL},
	    {"-1", -EINVAL},
	    {"+1", -EINVAL},
	    {"K", -EINVAL},
	    {"1iB", -EINVAL},
	    {"1KiBB", -EINVAL},
	    {"1Ki", -EINVAL},
	    {"1.0G", -EINVAL},
	    {"0x10", -EINVAL},
	    {"1E", -EINVAL},
	    {"18446744073709551616", -ERANGE},
	    {"16777216T", -ERANGE},
	    {"99999999999999999999999K", -ERANGE},
	    {"18446744073709551615K", -ERANGE},
	};
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		v = 12345;
		if (cli_parse_size(good[i].s, good[i].unit, &v) || v != good[i].bytes)
			fail_msg("'%s' gave %llu", good[i].s, (unsigned long long)v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		v = 12345;
		int ret = cli_parse_size(bad[i].s, 0, &v);

		if (ret != bad[i].ret)
			fail_msg("'%s' returned %d, want %d", bad[i].s, ret, bad[i].ret);
		if (ret)
			assert_int_equal(v, 12345); /* untouched on error */
	}
	/* "18446744073709551616" is also rejected when it would mean MiB. */
	assert_int_equal(cli_parse_size("18446744073709551616", MiB, &v), -ERANGE);
	assert_int_equal(cli_parse_size("17592186044416", MiB, &v), -ERANGE); /* 2^44 MiB */
	assert_int_equal(cli_parse_size(NULL, 0, &v), -EINVAL);
}

static void test_format_size(void **state)
{
	static const struct {
		uint64_t bytes;
		const char *s;
	} cases[] = {
	    {0, "0B"},
	    {1, "1B"},
	    {4097, "4097B"},
	    {KiB, "1K"},
	    {1536 * KiB, "1536K"},
	    {512 * MiB, "512M"},
	    {GiB, "1G"},
	    {1024 * GiB, "1T"},
	    {1024ULL << 40, "1024T"},
	    {UINT64_MAX, "18446744073709551615B"},
	};
	char buf[32];
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cli_format_size(cases[i].bytes, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].s);
		assert_int_equal(cli_parse_size(buf, MiB, &v), 0);
		assert_int_equal(v, cases[i].bytes);
	}
	cli_format_size(GiB, buf, 2);
	assert_string_equal(buf, "1");
	buf[0] = 'Z';
	cli_format_size(GiB, buf, 0);
	assert_int_equal(buf[0], 'Z');
}

static void test_parse_uint(void **state)
{
	uint64_t v;

	assert_int_equal(cli_parse_uint("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cli_parse_uint("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(cli_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, UINT64_MAX);
	v = 7;
	assert_int_equal(cli_parse_uint("11", 0, 10, &v), -ERANGE);
	assert_int_equal(cli_parse_uint("0", 1, 10, &v), -ERANGE);
	assert_int_equal(cli_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(cli_parse_uint("-1", 0, 10, &v), -ERANGE);
	assert_int_equal(cli_parse_uint("-0", 0, 10, &v), -ERANGE);
	assert_int_equal(cli_parse_uint("-1x", 0, 10, &v), -EINVAL);
	assert_int_equal(cli_parse_uint("-", 0, 10, &v), -EINVAL);
	assert_int_equal(cli_parse_uint("", 0, 10, &v), -EINVAL);
	assert_int_equal(cli_parse_uint("+1", 0, 10, &v), -EINVAL);
	assert_int_equal(cli_parse_uint(" 1", 0, 10, &v), -EINVAL);
	assert_int_equal(cli_parse_uint("1 ", 0, 10, &v), -EINVAL);
	assert_int_equal(cli_parse_uint("1K", 0, 10000, &v), -EINVAL);
	assert_int_equal(cli_parse_uint("99999999999999999999x", 0, 10, &v), -EINVAL);
	assert_int_equal(cli_parse_uint(NULL, 0, 10, &v), -EINVAL);
	assert_int_equal(v, 7);
}

static void test_parse_bool(void **state)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};
	static const char *const bad[] = {"", "ON", "y", "2", "on ", "onn"};
	bool b;

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		b = false;
		assert_int_equal(cli_parse_bool(yes[i], &b), 0);
		assert_true(b);
		assert_int_equal(cli_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(cli_parse_bool(bad[i], &b), -EINVAL);
}

/* ---- key=value lists ---- */

static const char *const disk_keys[] = {"path", "readonly", "id", NULL};

static void kv_bad(const char *s, unsigned flags, const char *msg)
{
	struct cli_kvlist kv;

	memset(err, 0, sizeof(err));
	assert_int_equal(cli_kvlist_parse(&kv, "--disk", s, disk_keys, flags, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, msg);
	assert_null(kv.buf); /* nothing owned after a failure */
	assert_null(kv.bare);
}

static void test_kvlist_good(void **state)
{
	struct cli_kvlist kv;

	assert_int_equal(cli_kvlist_parse(&kv, "--disk", "path=rootfs.img,readonly=on,id=root",
					  disk_keys, 0, err, sizeof(err)),
			 0);
	assert_null(kv.bare);
	assert_string_equal(cli_kvlist_get(&kv, "path"), "rootfs.img");
	assert_string_equal(cli_kvlist_get(&kv, "readonly"), "on");
	assert_string_equal(cli_kvlist_get(&kv, "id"), "root");
	assert_null(cli_kvlist_get(&kv, "size")); /* not an accepted key */
	cli_kvlist_free(&kv);
	cli_kvlist_free(&kv); /* twice is fine */
	assert_null(cli_kvlist_get(&kv, "path"));

	/* Any order, absent keys are NULL, values may hold '=' and ",," is a ','. */
	assert_int_equal(cli_kvlist_parse(&kv, "--disk", "id=a=b,path=x,,y,,,,z", disk_keys, 0, err,
					  sizeof(err)),
			 0);
	assert_string_equal(cli_kvlist_get(&kv, "id"), "a=b");
	assert_string_equal(cli_kvlist_get(&kv, "path"), "x,y,,z");
	assert_null(cli_kvlist_get(&kv, "readonly"));
	cli_kvlist_free(&kv);

	/* A bare first item, as in --net user,hostfwd=... */
	static const char *const net_keys[] = {"hostfwd", "mac", NULL};
	assert_int_equal(cli_kvlist_parse(&kv, "--net", "user,hostfwd=tcp::2222-:22", net_keys,
					  CLI_KV_BARE, err, sizeof(err)),
			 0);
	assert_string_equal(kv.bare, "user");
	assert_string_equal(cli_kvlist_get(&kv, "hostfwd"), "tcp::2222-:22");
	assert_null(cli_kvlist_get(&kv, "mac"));
	cli_kvlist_free(&kv);
	assert_int_equal(
	    cli_kvlist_parse(&kv, "--net", "tap", net_keys, CLI_KV_BARE, err, sizeof(err)), 0);
	assert_string_equal(kv.bare, "tap");
	cli_kvlist_free(&kv);
	/* With CLI_KV_BARE the bare item stays optional. */
	assert_int_equal(cli_kvlist_parse(&kv, "--net", "mac=52:54:00:12:34:56", net_keys,
					  CLI_KV_BARE, err, sizeof(err)),
			 0);
	assert_null(kv.bare);
	assert_string_equal(cli_kvlist_get(&kv, "mac"), "52:54:00:12:34:56");
	cli_kvlist_free(&kv);
	/* The input is copied, not borrowed. */
	char in[] = "path=a";
	assert_int_equal(cli_kvlist_parse(&kv, "--disk", in, disk_keys, 0, err, sizeof(err)), 0);
	in[5] = 'b';
	assert_string_equal(cli_kvlist_get(&kv, "path"), "a");
	cli_kvlist_free(&kv);
}

static void test_kvlist_bad(void **state)
{
	kv_bad("", 0, "--disk: empty value");
	kv_bad("path=", 0, "--disk: 'path' has an empty value");
	kv_bad("path=a,id=", 0, "--disk: 'id' has an empty value");
	kv_bad("=", 0, "--disk: missing key in '='");
	kv_bad("=x", 0, "--disk: missing key in '=x'");
	kv_bad("path=a,path=b", 0, "--disk: 'path' given twice");
	kv_bad("path=a,path=a", 0, "--disk: 'path' given twice");
	kv_bad("foo=1", 0, "--disk: unknown key 'foo' (expected path, readonly, id)");
	kv_bad("PATH=a", 0, "--disk: unknown key 'PATH' (expected path, readonly, id)");
	kv_bad("path=a,", 0, "--disk: trailing comma in 'path=a,'");
	kv_bad("path=a,,,", 0, "--disk: trailing comma in 'path=a,,,'");
	kv_bad(",path=a", 0, "--disk: empty item in ',path=a'");
	kv_bad(",", 0, "--disk: empty item in ','");
	kv_bad("rootfs.img", 0, "--disk: 'rootfs.img' is not key=value");
	kv_bad("path=a,ro", 0, "--disk: 'ro' is not key=value");
	kv_bad("user,tap", CLI_KV_BARE, "--disk: 'tap' is not key=value");
	kv_bad("path=a,user", CLI_KV_BARE, "--disk: 'user' is not key=value");

	/* A list with no keys accepts only a bare word. */
	static const char *const none[] = {NULL};
	struct cli_kvlist kv;
	assert_int_equal(cli_kvlist_parse(&kv, "--x", "a=b", none, CLI_KV_BARE, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "--x: unknown key 'a' (expected no keys)");
	/* More keys than the list can hold is refused, not overrun. */
	static const char *const many[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i",
					   "j", "k", "l", "m", "n", "o", "p", "q", NULL};
	assert_int_equal(cli_kvlist_parse(&kv, "--x", "a=1", many, 0, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--x: too many keys for a list");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_all_options_separate),
	    cmocka_unit_test(test_all_options_equals),
	    cmocka_unit_test(test_cmdline),
	    cmocka_unit_test(test_cpus),
	    cmocka_unit_test(test_memory_good),
	    cmocka_unit_test(test_memory_bad),
	    cmocka_unit_test(test_memory_host_limit),
	    cmocka_unit_test(test_serial),
	    cmocka_unit_test(test_files),
	    cmocka_unit_test(test_structure),
	    cmocka_unit_test(test_message_hygiene),
	    cmocka_unit_test(test_disk_good),
	    cmocka_unit_test(test_disk_bad),
	    cmocka_unit_test(test_rng_console),
	    cmocka_unit_test(test_seccomp),
	    cmocka_unit_test(test_help),
	    cmocka_unit_test(test_parse_size),
	    cmocka_unit_test(test_format_size),
	    cmocka_unit_test(test_parse_uint),
	    cmocka_unit_test(test_parse_bool),
	    cmocka_unit_test(test_kvlist_good),
	    cmocka_unit_test(test_kvlist_bad),
	};
	return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
