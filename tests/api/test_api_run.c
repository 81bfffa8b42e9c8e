/* test_api_run.c: the API with a running guest (tests/guests/tick.elf, a tick every 100 ms):
 * InstanceStart, state transitions, pre-boot routes refused, pause/resume (output and guest
 * clock stop), SendCtrlAltDel, metrics, and booting from a config file with or without API. */
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
#include <sys/file.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"

#define PAUSE_MS 1500

static struct kiln k;

static int setup(void **state)
{
	(void)state;
	if (!tick_path) {
		print_message("tick guest not built (guest_tests=false): skipped\n");
		skip();
	}
	kiln_prepare(&k);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_cleanup(&k);
	return 0;
}

static const char *serial_out(void) { return kiln_file(&k, "serial.out"); }

/* Configure the tick guest through the API and start it. */
static void boot_tick(void)
{
	char body[1024];
	kiln_start(&k, true, (const char *const[]){"--id", "run-test", NULL});
	put_tick_config(&k);
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64}", 204,
	       NULL);
	/* a drive the tick guest never reads: it must be created, and show up in metrics */
	write_file(kiln_file(&k, "scratch.img"), "scratch\n");
	snprintf(body, sizeof(body),
		 "{\"drive_id\": \"scratch\", \"path_on_host\": \"%s\", \"is_root_device\": false}",
		 kiln_file(&k, "scratch.img"));
	expect(k.sock, "PUT", "/drives/scratch", body, 204, NULL);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL);
}

static const char *state(void)
{
	static struct resp r;
	http(k.sock, "GET", "/", NULL, &r);
	assert_int_equal(r.status, 200);
	return json_field(r.body, "state");
}

/* The clock_ms value of tick line n (1-based), -1 if there is none. */
static long tick_clock(int n)
{
	char line[256];
	long ms = -1;
	int got;
	FILE *f = fopen(serial_out(), "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		long v;
		if (sscanf(line, "tick %d clock_ms %ld", &got, &v) == 2 && got == n)
			ms = v;
	}
	fclose(f);
	return ms;
}

static void test_state_and_preboot_refusals(void **st)
{
	(void)st;
	boot_tick();
	assert_string_equal(state(), "Running");
	assert_true(wait_lines(serial_out(), "READY tick", 1, 10000));
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
	       "the microVM is already running");
	expect(k.sock, "PUT", "/boot-source", "{\"kernel_image_path\": \"/x\"}", 400,
	       "boot-source: cannot be changed after InstanceStart");
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 400,
	       "machine-config: cannot be changed after InstanceStart");
	expect(k.sock, "PATCH", "/machine-config", "{\"vcpu_count\": 1}", 400, "pre-boot only");
	expect(k.sock, "PUT", "/drives/d", "{}", 400,
	       "drive: cannot be changed after InstanceStart");
	expect(k.sock, "PUT", "/network-interfaces/n", "{}", 400, "pre-boot only");
	expect(k.sock, "PUT", "/entropy", "{}", 400, "entropy: cannot be changed");
	expect(k.sock, "PUT", "/serial", "{}", 400, "serial: cannot be changed");
	expect(k.sock, "PUT", "/logger", "{}", 400, "logger: cannot be changed");
	expect(k.sock, "PUT", "/metrics", "{\"metrics_path\": \"/tmp/x\"}", 400,
	       "metrics: cannot be changed");
	expect(k.sock, "PATCH", "/drives/d", "{\"drive_id\": \"d\"}", 400, "no drive \"d\"");
	expect(k.sock, "PATCH", "/drives/scratch", "{\"drive_id\": \"scratch\"}", 204, NULL);
	expect(k.sock, "PATCH", "/drives/scratch",
	       "{\"drive_id\": \"scratch\", \"path_on_host\": \"/no/such.img\"}", 400,
	       "path_on_host: /no/such.img: No such file or directory");
	expect(k.sock, "PATCH", "/drives/scratch", "{\"drive_id\": \"other\"}", 400,
	       "does not match the id in the URL");
	/* still answering and still configured as booted */
	struct resp r;
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 2);
	http(k.sock, "GET", "/vm/config", NULL, &r);
	assert_int_equal(r.status, 200);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k, 10000), 0);
	assert_int_equal(access(k.sock, F_OK), -1);
}

static void test_pause_resume(void **st)
{
	(void)st;
	boot_tick();
	assert_true(wait_lines(serial_out(), "tick ", 5, 15000));
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	assert_string_equal(state(), "Paused");
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL); /* idempotent */
	int before = count_lines(serial_out(), "tick ");
	sleep_ms(PAUSE_MS);
	/* the API answers while paused, and nothing ran: no new output */
	expect(k.sock, "GET", "/vm/config", NULL, 200, NULL);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	assert_int_equal(count_lines(serial_out(), "tick "), before);
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	assert_string_equal(state(), "Running");
	assert_true(wait_lines(serial_out(), "tick ", before + 3, 10000));

	/* the guest's clock (kvmclock) did not count the pause: the tick that spans it is about
	 * one period (100 ms) after the one before, not PAUSE_MS */
	long a = tick_clock(before), b = tick_clock(before + 1);
	print_message("ticks %d -> %d: guest clock %ld -> %ld ms across a %d ms pause\n", before,
		      before + 1, a, b, PAUSE_MS);
	if (a > 0 && b > 0) /* 0: the guest saw no kvmclock */
		assert_true(b - a < PAUSE_MS / 2);

	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	/* pause once more and end the VM while paused */
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k, 10000), 0);

	/* metrics: two flushes plus the final line at exit, device counters in them */
	const char *m = kiln_file(&k, "metrics.json");
	assert_true(count_lines(m, "{\"utc_timestamp_ms\":") >= 3);
	char last[4096];
	file_last_line(m, last, sizeof(last));
	assert_true(json_int(last, "uart/tx_bytes") > 100);
	assert_int_equal(json_int(last, "vmm/vcpus"), 2);
	assert_true(json_int(last, "api/requests") >= 10);
	assert_int_equal(json_int(last, "block/scratch/read_reqs"), 0);
}

/* Is path free of other processes' locks (flock, as kiln takes them)? */
static bool unlocked(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	bool free_ = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return free_;
}

static void patch_path(const char *id, const char *file, int status, const char *fault)
{
	char body[1024];
	snprintf(body, sizeof(body), "{\"drive_id\": \"%s\", \"path_on_host\": \"%s\"}", id,
		 kiln_file(&k, file));
	expect(k.sock, "PATCH", "/drives/scratch", body, status, fault);
}

/* PATCH /drives/{id} on the running guest: the device switches files (kiln then holds the
 * new file's lock and lets the old one go), bad bodies change nothing. */
static void test_drive_patch(void **st)
{
	char msg[512];
	(void)st;
	boot_tick();
	assert_true(wait_lines(serial_out(), "READY tick", 1, 10000));
	write_file(kiln_file(&k, "other.img"), "another disk, twice the size of the first\n");
	write_file(kiln_file(&k, "third.img"), "a third disk\n");
	assert_false(unlocked(kiln_file(&k, "scratch.img")));

	patch_path("scratch", "other.img", 204, NULL);
	assert_true(unlocked(kiln_file(&k, "scratch.img")));
	assert_false(unlocked(kiln_file(&k, "other.img")));
	const char *cfg = vm_config(k.sock);
	assert_non_null(strstr(cfg, "other.img"));
	assert_null(strstr(cfg, "scratch.img"));
	/* the same file again (say, after growing it): kiln keeps its lock */
	patch_path("scratch", "other.img", 204, NULL);
	assert_false(unlocked(kiln_file(&k, "other.img")));

	/* malformed bodies: exact status and message, nothing changes */
	expect(k.sock, "PATCH", "/drives/scratch",
	       "{\"drive_id\": \"scratch\", \"path_on_host\": \"/no/such.img\"}", 400,
	       "drive: path_on_host: /no/such.img: No such file or directory");
	expect(k.sock, "PATCH", "/drives/scratch",
	       "{\"drive_id\": \"other\", \"path_on_host\": \"/no/such.img\"}", 400,
	       "drive: drive_id: \"other\" does not match the id in the URL (\"scratch\")");
	expect(k.sock, "PATCH", "/drives/scratch",
	       "{\"drive_id\": \"scratch\", \"path_on_host\": \"/tmp\", \"is_read_only\": true}",
	       400, "drive: unknown field 'is_read_only'");
	expect(k.sock, "PATCH", "/drives/nope", "{\"drive_id\": \"nope\"}", 400,
	       "drive: drive_id: no drive \"nope\"");
	expect(k.sock, "PATCH", "/drives/scratch",
	       "{\"drive_id\": \"scratch\", \"path_on_host\": 5}", 400,
	       "drive: path_on_host: expected a string, got integer");
	expect(k.sock, "PATCH", "/drives/scratch", "{\"path_on_host\": \"/tmp/x\"}", 400,
	       "drive: drive_id: missing");
	expect(k.sock, "PATCH", "/drives/scratch", "[1]", 400, "drive: ");

	/* a file another process has locked: refused with the reason, the drive keeps its file */
	int fd = open(kiln_file(&k, "third.img"), O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	snprintf(msg, sizeof(msg),
		 "drive: path_on_host: disk 'scratch': %s: locked by another process",
		 kiln_file(&k, "third.img"));
	patch_path("scratch", "third.img", 400, msg);
	close(fd);
	assert_false(unlocked(kiln_file(&k, "other.img")));
	assert_non_null(strstr(vm_config(k.sock), "other.img"));

	/* while paused too, and the guest carries on afterwards */
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	patch_path("scratch", "third.img", 204, NULL);
	assert_true(unlocked(kiln_file(&k, "other.img")));
	assert_false(unlocked(kiln_file(&k, "third.img")));
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	int n = count_lines(serial_out(), "tick ");
	assert_true(wait_lines(serial_out(), "tick ", n + 2, 10000));
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k, 10000), 0);
	assert_true(unlocked(kiln_file(&k, "third.img")));
}

static void test_signal_while_paused(void **st)
{
	(void)st;
	boot_tick();
	assert_true(wait_lines(serial_out(), "tick ", 1, 15000));
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	kill(k.pid, SIGTERM);
	assert_int_equal(kiln_wait(&k, 5000), 128 + SIGTERM);
}

static void test_start_failure_then_fix(void **st)
{
	(void)st;
	kiln_start(&k, true, NULL);
	write_file(kiln_file(&k, "junk"), "this is not a kernel\n");
	put_string(k.sock, "/boot-source", "kernel_image_path", kiln_file(&k, "junk"));
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
	       "InstanceStart: ");
	assert_string_equal(state(), "Not started");
	put_string(k.sock, "/boot-source", "kernel_image_path", tick_path);
	put_string(k.sock, "/serial", "serial_out_path", serial_out());
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL);
	assert_true(wait_lines(serial_out(), "READY tick", 1, 10000));
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k, 10000), 0);
}

/* GET /vm/config of a configured VM is a config file that boots the same VM. */
static void test_config_file(void **st)
{
	struct resp r;
	(void)st;
	kiln_start(&k, true, NULL);
	put_string(k.sock, "/boot-source", "kernel_image_path", tick_path);
	put_string(k.sock, "/serial", "serial_out_path", serial_out());
	put_string(k.sock, "/metrics", "metrics_path", kiln_file(&k, "m.json"));
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 204,
	       NULL);
	http(k.sock, "GET", "/vm/config", NULL, &r);
	assert_int_equal(r.status, 200);
	kill(k.pid, SIGTERM);
	assert_int_equal(kiln_wait(&k, 5000), 128 + SIGTERM);
	write_file(kiln_file(&k, "vm.json"), r.body);

	/* --no-api: boots at once, serves nothing */
	unlink(serial_out());
	kiln_start(
	    &k, false,
	    (const char *const[]){"--no-api", "--config-file", kiln_file(&k, "vm.json"), NULL});
	assert_true(wait_lines(serial_out(), "tick ", 3, 15000));
	assert_int_equal(access(k.sock, F_OK), -1);
	kill(k.pid, SIGTERM);
	assert_int_equal(kiln_wait(&k, 5000), 128 + SIGTERM);
	assert_true(count_lines(kiln_file(&k, "m.json"), "{\"utc_timestamp_ms\":") >= 1);

	/* with the API: boots at once and answers */
	unlink(serial_out());
	kiln_start(&k, true,
		   (const char *const[]){"--config-file", kiln_file(&k, "vm.json"), NULL});
	assert_string_equal(state(), "Running");
	assert_true(wait_lines(serial_out(), "tick ", 2, 15000));
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "mem_size_mib"), 64);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k, 10000), 0);
}

int main(int argc, char **argv)
{
	if (!client_args(argc, argv, true))
		return 2;
	if (client_kvm_missing("api-run"))
		return 77;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_state_and_preboot_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drive_patch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_signal_while_paused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_failure_then_fix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
