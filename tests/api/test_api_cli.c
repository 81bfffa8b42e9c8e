/* test_api_cli.c: the command-line snapshot flow: `kiln run --api-sock` with the tick guest
 * (it prints "tick N" every 100 ms), `kiln snapshot` of it while it runs on, `kiln restore`
 * continuing the count in a new process (also paused behind its own socket with --id and
 * --seccomp, and with guest memory from the example page-fault handler, --uffd), and bad
 * input to the three commands: one line and exit status 1 each. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "client.h"

static struct kiln k, k2;

static int setup(void **state)
{
	(void)state;
	kiln_prepare(&k);
	kiln_prepare(&k2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_cleanup(&k);
	kiln_cleanup(&k2);
	return 0;
}

/* Start kiln with args (after the binary's name, NULL-terminated), stdin from /dev/null,
 * stdout to out and stderr to errf. */
static pid_t spawn(const char *const *args, const char *out, const char *errf)
{
	const char *argv[40];
	unsigned n = 0;

	argv[n++] = kiln_path;
	for (unsigned i = 0; args[i] && n < 39; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(kiln_path, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Run kiln to its end (at most 60 s: then it is killed and the test fails); its exit status. */
static int run(const char *const *args, const char *out, const char *errf)
{
	struct kiln w = {.pid = spawn(args, out, errf)};
	int st = kiln_wait(&w, 60000);

	if (st < 0) {
		kill(w.pid, SIGKILL);
		waitpid(w.pid, NULL, 0);
		fail_msg("kiln %s did not end within 60 s", args[0]);
	}
	return st;
}

/* Exactly one line in the file, containing want. */
static void one_line(const char *path, const char *want)
{
	char line[1024];

	assert_int_equal(count_lines(path, ""), 1);
	file_last_line(path, line, sizeof(line));
	if (!strstr(line, want))
		fail_msg("%s: '%s' does not contain '%s'", path, line, want);
}

/* Bad input: exit status 1 and one line naming the problem, and nothing started. */
static void bad(const char *const *args, const char *want)
{
	const char *out = kiln_file(&k, "bad.out"), *err = kiln_file(&k, "bad.err");
	char o[400], e[400];

	snprintf(o, sizeof(o), "%s", out);
	snprintf(e, sizeof(e), "%s", err);
	assert_int_equal(run(args, o, e), 1);
	one_line(e, want);
	assert_int_equal(count_lines(o, ""), 0);
}

static void test_bad_input(void **st)
{
	(void)st;
	char sock[400];
	snprintf(sock, sizeof(sock), "%s", kiln_file(&k, "none.sock"));

	bad((const char *const[]){"snapshot", "--bogus", NULL}, "unknown option '--bogus'");
	bad((const char *const[]){"snapshot", "--api-sock", NULL}, "--api-sock needs a value");
	bad((const char *const[]){"snapshot", "--api-sock", "--diff", NULL},
	    "--api-sock needs a value");
	bad((const char *const[]){"snapshot", "--api-sock=", NULL}, "--api-sock: empty value");
	bad((const char *const[]){"snapshot", "--diff=yes", NULL}, "--diff takes no value");
	bad((const char *const[]){"snapshot", "--diff", "--diff", NULL}, "--diff given twice");
	bad((const char *const[]){"snapshot", "stray", NULL}, "unexpected argument 'stray'");
	bad((const char *const[]){"snapshot", "--api-sock", sock, "--snapshot-path", "a", NULL},
	    "--mem-file-path is required");
	bad((const char *const[]){"snapshot", "--api-sock", sock, "--snapshot-path", "a",
				  "--mem-file-path", "b", NULL},
	    "state: --api-sock: ");
	one_line(kiln_file(&k, "bad.err"), "No such file or directory");

	bad((const char *const[]){"restore", "--bogus", NULL}, "unknown option '--bogus'");
	bad((const char *const[]){"restore", "--snapshot", NULL}, "--snapshot needs a value");
	bad((const char *const[]){"restore", "--snapshot", "a", NULL}, "--mem-file is required");
	bad((const char *const[]){"restore", "--snapshot", "/nonexistent.snap", "--mem-file", "m",
				  NULL},
	    "--snapshot: /nonexistent.snap: No such file or directory");
	bad((const char *const[]){"restore", "--snapshot", "/", "--mem-file", "/", NULL},
	    "--snapshot: /: not a regular file");
	bad((const char *const[]){"restore", "--snapshot", "a", "--mem-file", "b", "--paused",
				  NULL},
	    "--paused needs --api-sock");
	bad((const char *const[]){"restore", "--snapshot", kiln_path, "--mem-file", kiln_path,
				  "--net", "tap0", NULL},
	    "--net: 'tap0' is not key=value");
	bad((const char *const[]){"restore", "--snapshot", kiln_path, "--mem-file", kiln_path,
				  "--net", "id=eth0", NULL},
	    "needs both id=ID and tap=TAP");
	bad((const char *const[]){"restore", "--snapshot", kiln_path, "--mem-file", kiln_path,
				  "--net", "id=eth0,tap=a/b", NULL},
	    "tap 'a/b' is not an interface name");
	bad((const char *const[]){"restore", "--snapshot", kiln_path, "--mem-file", kiln_path,
				  "--uffd", kiln_path, NULL},
	    "--mem-file and --uffd exclude each other");
	bad((const char *const[]){"restore", "--snapshot", kiln_path, "--uffd", kiln_path, NULL},
	    "--uffd: ");
	one_line(kiln_file(&k, "bad.err"), "not a Unix socket");
	bad((const char *const[]){"restore", "--snapshot", kiln_path, "--mem-file", kiln_path,
				  "--id", "no/slash", NULL},
	    "--id: 'no/slash' is not valid");
	bad((const char *const[]){"restore", "--snapshot", kiln_path, "--mem-file", kiln_path,
				  "--seccomp", "maybe", NULL},
	    "--seccomp: 'maybe' is not on, log or off");
	/* Not a snapshot: the restore's own check, one line. */
	bad((const char *const[]){"restore", "--snapshot", kiln_path, "--mem-file", kiln_path,
				  NULL},
	    "not a kiln snapshot");

	bad((const char *const[]){"run", "--api-sock", NULL}, "--api-sock: missing value");
	bad((const char *const[]){"run", "--api-sock", "a", "--api-sock=b", NULL},
	    "--api-sock given twice");
	bad((const char *const[]){"run", "--api-sock", "a", "--bogus", NULL},
	    "unknown option '--bogus'");
}

static bool sock_up(const char *sock, int timeout_ms)
{
	struct sockaddr_un sa;

	sockaddr_set(&sa, sock);
	for (int t = 0; t < timeout_ms; t += 10) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return true;
		sleep_ms(10);
	}
	return false;
}

/* Paths in k's directory, kept (kiln_file's buffers rotate). */
static char serial[400], snap1[400], mem1[400], snap2[400], mem2[400], out[400], err[400];

static void paths(void)
{
	snprintf(serial, sizeof(serial), "%s", kiln_file(&k, "serial.out"));
	snprintf(snap1, sizeof(snap1), "%s", kiln_file(&k, "1.snap"));
	snprintf(mem1, sizeof(mem1), "%s", kiln_file(&k, "1.mem"));
	snprintf(snap2, sizeof(snap2), "%s", kiln_file(&k, "2.snap"));
	snprintf(mem2, sizeof(mem2), "%s", kiln_file(&k, "2.mem"));
	snprintf(out, sizeof(out), "%s", kiln_file(&k, "cmd.out"));
	snprintf(err, sizeof(err), "%s", kiln_file(&k, "cmd.err"));
}

static void test_snapshot_restore(void **st)
{
	(void)st;
	if (!tick_path) {
		print_message("tick guest not built (guest_tests=false): skipped\n");
		skip();
	}
	if (client_kvm_missing("cli snapshot"))
		skip();
	paths();
	char serial_opt[420];
	snprintf(serial_opt, sizeof(serial_opt), "file=%s", serial);
	k.pid = spawn((const char *const[]){"run", "--kernel", tick_path, "--memory", "64",
					    "--api-sock", k.sock, "--serial", serial_opt, NULL},
		      k.out, kiln_file(&k, "run.err"));
	assert_true(sock_up(k.sock, 10000));
	assert_true(wait_lines(serial, "tick ", 3, 15000));
	expect(k.sock, "GET", "/", NULL, 200, NULL);

	/* Left paused: the snapshot's point is the last tick printed, and nothing follows. */
	assert_int_equal(
	    run((const char *const[]){"snapshot", "--api-sock", k.sock, "--snapshot-path", snap1,
				      "--mem-file-path", mem1, "--leave-paused", NULL},
		out, err),
	    0);
	one_line(out, "the VM is paused");
	int last1 = last_tick(serial);
	sleep_ms(400);
	assert_int_equal(last_tick(serial), last1);
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	assert_true(wait_lines(serial, "tick ", last1 + 2, 10000));

	/* A Diff without dirty tracking: the API's message, and the VM resumed. */
	assert_int_equal(
	    run((const char *const[]){"snapshot", "--api-sock", k.sock, "--snapshot-path", snap2,
				      "--mem-file-path", mem2, "--diff", NULL},
		out, err),
	    1);
	assert_true(file_contains(err, "create: snapshot/create: snapshot_type: a Diff snapshot "
				       "needs dirty page tracking"));
	assert_true(file_contains(err, "the VM was resumed"));
	assert_int_equal(count_lines(err, ""), 2);
	int before = last_tick(serial);
	assert_true(wait_lines(serial, "tick ", before + 2, 10000));

	/* The default: snapshot and run on. */
	before = last_tick(serial);
	assert_int_equal(
	    run((const char *const[]){"snapshot", "--api-sock", k.sock, "--snapshot-path", snap2,
				      "--mem-file-path", mem2, NULL},
		out, err),
	    0);
	one_line(out, "the VM is running");
	int after = last_tick(serial);
	assert_true(wait_lines(serial, "tick ", after + 3, 10000));
	kill(k.pid, SIGKILL);
	kiln_wait(&k, 10000);

	/* Restored without an API: its serial is on kiln's stdout, and the count goes on from
	 * the snapshot, which was taken between `before` and `after`. */
	k2.pid =
	    spawn((const char *const[]){"restore", "--snapshot", snap2, "--mem-file", mem2, NULL},
		  k2.out, kiln_file(&k2, "restore.err"));
	assert_true(wait_lines(k2.out, "tick ", 3, 15000));
	int first = first_tick(k2.out);
	print_message("second snapshot between tick %d and %d; restored from tick %d\n", before,
		      after, first);
	assert_true(first > before && first <= after + 1);
	kill(k2.pid, SIGTERM);
	assert_true(kiln_wait(&k2, 10000) >= 0);

	/* Restored paused behind a socket: nothing runs until PATCH /vm Resumed, then the
	 * count goes on exactly from the first snapshot's. */
	kiln_cleanup(&k2);
	kiln_prepare(&k2);
	k2.pid =
	    spawn((const char *const[]){"restore", "--snapshot", snap1, "--mem-file", mem1,
					"--api-sock", k2.sock, "--paused", "--track-dirty-pages",
					"--id", "restored-1", "--seccomp", "on", NULL},
		  k2.out, kiln_file(&k2, "restore.err"));
	assert_true(sock_up(k2.sock, 10000));
	struct resp r;
	http(k2.sock, "GET", "/", NULL, &r);
	assert_string_equal(json_field(r.body, "id"), "restored-1");
	assert_string_equal(json_field(r.body, "state"), "Paused");
	/* The restored VM's configuration: `kiln run --memory 64`'s, with the restore's flag. */
	const char *cfg = vm_config(k2.sock);
	assert_int_equal(json_int(cfg, "machine-config/mem_size_mib"), 64);
	assert_int_equal(json_int(cfg, "machine-config/vcpu_count"), 1);
	assert_non_null(strstr(cfg, "\"track_dirty_pages\":true"));
	sleep_ms(400);
	assert_int_equal(count_lines(k2.out, "tick "), 0);
	/* A VM paused before the snapshot stays paused after it. */
	assert_int_equal(
	    run((const char *const[]){"snapshot", "--api-sock", k2.sock, "--snapshot-path", snap2,
				      "--mem-file-path", mem2, NULL},
		out, err),
	    0);
	one_line(out, "the VM is paused, as it was");
	sleep_ms(300);
	assert_int_equal(count_lines(k2.out, "tick "), 0);
	expect(k2.sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	assert_true(wait_lines(k2.out, "tick ", 2, 15000));
	print_message("first snapshot after tick %d; restored from tick %d\n", last1,
		      first_tick(k2.out));
	assert_int_equal(first_tick(k2.out), last1 + 1);
	/* A restored VM can be snapshotted again through its socket; it tracks dirty pages
	 * (--track-dirty-pages), so a Diff works now. */
	assert_int_equal(
	    run((const char *const[]){"snapshot", "--api-sock", k2.sock, "--snapshot-path", snap2,
				      "--mem-file-path", mem2, "--diff", NULL},
		out, err),
	    0);
	one_line(out, "the VM is running");
	int mark = last_tick(k2.out);
	assert_true(wait_lines(k2.out, "tick ", mark - last1 + 2, 10000));
	expect(k2.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k2, 10000), 0);

	/* --uffd: the first snapshot again, its memory served page by page by the example
	 * handler, under the seccomp filters; the count goes on from the same tick. */
	kiln_cleanup(&k2);
	kiln_prepare(&k2);
	char usock[400], ulog[400];
	snprintf(usock, sizeof(usock), "%s", kiln_file(&k2, "uffd.sock"));
	snprintf(ulog, sizeof(ulog), "%s", kiln_file(&k2, "handler.log"));
	pid_t h = uffd_handler_start(usock, mem1, ulog);
	k2.pid = spawn((const char *const[]){"restore", "--snapshot", snap1, "--uffd", usock,
					     "--api-sock", k2.sock, "--id", "uffd-1",
					     "--seccomp=on", NULL},
		       k2.out, kiln_file(&k2, "restore.err"));
	assert_true(sock_up(k2.sock, 10000));
	http(k2.sock, "GET", "/", NULL, &r);
	assert_string_equal(json_field(r.body, "id"), "uffd-1");
	assert_true(wait_lines(k2.out, "tick ", 2, 15000));
	assert_int_equal(first_tick(k2.out), last1 + 1);
	expect(k2.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k2, 10000), 0);
	int hst;
	assert_int_equal(waitpid(h, &hst, 0), h);
	char line[512];
	file_last_line(ulog, line, sizeof(line));
	print_message("uffd handler: %s\n", line);
	assert_non_null(strstr(line, "served "));
}

int main(int argc, char **argv)
{
	if (!client_args(argc, argv, true))
		return 2;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snapshot_restore, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
