/* test_api_fcflags.c: `kiln api` started with Firecracker's VMM flags, as Firecracker-driving
 * tools (firecracker-go-sdk, the jailer's callers) pass them: the logger, metrics, body limit
 * and seccomp flags take effect, and the go SDK's exact argument list boots the tick guest. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"

static struct kiln k;

static int setup(void **state)
{
	(void)state;
	kiln_prepare(&k);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_cleanup(&k);
	return 0;
}

/* The number of kiln's threads, each checked to show "Seccomp:\t0" (no filter) in its
 * /proc/PID/task/TID/status. */
static int threads_without_seccomp(pid_t pid)
{
	char path[320], line[256];
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue; /* the thread has just exited */
		bool seen = false;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "Seccomp:", 8)) {
				seen = true;
				if (strcmp(line, "Seccomp:\t0\n"))
					fail_msg("thread %s: %s", e->d_name, line);
			}
		fclose(f);
		assert_true(seen);
		n++;
	}
	closedir(d);
	return n;
}

static uint64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* --no-seccomp --log-path --level --metrics-path --http-api-max-payload-size
 * --start-time-us: each takes effect before the first request (no KVM needed). */
static void test_fc_flags(void **st)
{
	(void)st;
	char start[32], big[2001];
	struct resp r;

	snprintf(start, sizeof(start), "%llu", (unsigned long long)monotonic_us());
	kiln_start(&k, true,
		   (const char *const[]){
		       "--id", "fc-vm", "--no-seccomp", "--log-path", kiln_file(&k, "kiln.log"),
		       "--level", "Debug", "--metrics-path", kiln_file(&k, "metrics.json"),
		       "--http-api-max-payload-size", "1000", "--start-time-us", start,
		       "--enable-pci", "--mmds-size-limit", "51200", NULL});

	http(k.sock, "GET", "/", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_field(r.body, "id"), "fc-vm");

	/* the log went to the file from the start, at Debug, with the id */
	assert_true(file_contains(kiln_file(&k, "kiln.log"), "[fc-vm:"));
	assert_true(
	    file_contains(kiln_file(&k, "kiln.log"), "logger configured from the command line"));
	assert_false(file_contains(k.out, "logger configured"));

	/* 1000 bytes at most: 2000 get 413 (announced, refused before they are read) */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	expect_exact(k.sock, "PUT", "/machine-config", big, 413,
		     "request body: larger than 1000 bytes");
	big[900] = '\0';
	big[899] = '}';
	expect(k.sock, "PUT", "/machine-config", big, 400, "vcpu_count"); /* read, parsed */
	/* a 4xx answer is a Debug line: --level Debug took effect */
	assert_true(wait_lines(kiln_file(&k, "kiln.log"), "", 3, 5000));
	assert_true(file_contains(kiln_file(&k, "kiln.log"), "api: response 413"));

	/* configured from the command line: PUT /metrics is refused as after PUT /metrics (and
	 * in Firecracker); PUT /logger updates the logger as Firecracker's does: the fields it
	 * gives, the same file, the level back to Info when absent (no more Debug lines) */
	expect(k.sock, "PUT", "/metrics",
	       kiln_body_with_path(&k, "{\"metrics_path\": \"%s\"}", "m2.json"), 400,
	       "already configured");
	int debug_lines = count_lines(kiln_file(&k, "kiln.log"), "");
	expect(k.sock, "PUT", "/logger", "{\"show_level\": true}", 204, NULL);
	assert_true(file_contains(kiln_file(&k, "kiln.log"), ":INFO] api: logger configured"));
	expect(k.sock, "PUT", "/logger", "{\"level\": \"Bogus\"}", 400, "level");
	expect(k.sock, "GET", "/nowhere", NULL, 404, NULL); /* a Debug line, now dropped */
	sleep_ms(100);
	assert_int_equal(count_lines(kiln_file(&k, "kiln.log"), ""), debug_lines + 1);
	assert_non_null(strstr(vm_config(k.sock), "kiln.log"));

	/* FlushMetrics writes a line to --metrics-path, with the start-up time */
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	char line[8192];
	file_last_line(kiln_file(&k, "metrics.json"), line, sizeof(line));
	assert_int_equal(json_int(line, "api/body_too_large"), 1);
	long long startup = json_int(line, "api/process_startup_time_us");
	assert_true(startup > 0 && startup < 10 * 1000 * 1000);
	assert_int_equal(json_int(line, "api/process_startup_time_cpu_us"), 0); /* not given */

	/* --no-seccomp: no thread has a filter */
	assert_true(threads_without_seccomp(k.pid) >= 2);

	kill(k.pid, SIGTERM);
	assert_int_equal(kiln_wait(&k, 5000), 128 + SIGTERM);
}

/* Bad Firecracker flags: one line naming the flag, exit status 1, no socket. */
static void test_fc_flags_refused(void **st)
{
	(void)st;
	static const struct {
		const char *args[4];
		const char *line;
	} bad[] = {
	    {{"--seccomp-filter", "/x.bpf"}, "kiln api: --seccomp-filter: Firecracker's compiled"},
	    {{"--boot-timer"}, "kiln api: --boot-timer: kiln has no boot timer device"},
	    {{"--level", "Verbose"}, "kiln api: --level: 'Verbose' is not"},
	    {{"--http-api-max-payload-size", "0"}, "kiln api: --http-api-max-payload-size: 0 is"},
	    {{"--no-seccomp", "--seccomp", "on"}, "kiln api: --no-seccomp and --seccomp on"},
	    {{"--log-path", "/nonexistent-dir/kiln.log"}, "kiln: --log-path: logger: log_path:"},
	    {{"--metrics-path", "/nonexistent-dir/m.json"}, "kiln: --metrics-path: "},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		truncate(k.out, 0);
		kiln_start(&k, false, bad[i].args);
		assert_int_equal(kiln_wait(&k, 5000), 1);
		char line[600];
		file_last_line(k.out, line, sizeof(line));
		if (!strstr(line, bad[i].line))
			fail_msg("case %zu: '%s' lacks '%s'", i, line, bad[i].line);
		assert_int_equal(access(k.sock, F_OK), -1);
	}

	/* --snapshot-version, --describe-snapshot of a file that is no snapshot */
	truncate(k.out, 0);
	kiln_start(&k, false, (const char *const[]){"--snapshot-version", NULL});
	assert_int_equal(kiln_wait(&k, 5000), 0);
	assert_true(file_contains(k.out, "v1\n"));
	write_file(kiln_file(&k, "not.snap"), "hello\n");
	truncate(k.out, 0);
	kiln_start(&k, false,
		   (const char *const[]){"--describe-snapshot", kiln_file(&k, "not.snap"), NULL});
	assert_int_equal(kiln_wait(&k, 5000), 1);
	assert_true(file_contains(k.out, "not a kiln snapshot"));
}

/* firecracker-go-sdk's exact arguments (machine.go: --api-sock, --id, and --no-seccomp when
 * its seccomp config is disabled), then the tick guest configured and started through the
 * API, as the SDK does; a snapshot of it for --describe-snapshot. */
static void test_go_sdk_boot(void **st)
{
	(void)st;
	if (!tick_path) {
		print_message("tick guest not built (guest_tests=false): skipped\n");
		skip();
	}
	if (client_kvm_missing("api-fcflags go-sdk boot"))
		skip();
	kiln_start(&k, true, (const char *const[]){"--id", "sdk-vm-1", "--no-seccomp", NULL});
	put_tick_config(&k);
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 204,
	       NULL);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL);
	assert_true(wait_lines(kiln_file(&k, "serial.out"), "tick ", 3, 15000));
	struct resp r;
	http(k.sock, "GET", "/", NULL, &r);
	assert_string_equal(json_field(r.body, "id"), "sdk-vm-1");
	assert_string_equal(json_field(r.body, "state"), "Running");
	/* the vCPU and event-loop threads too run without filters */
	assert_true(threads_without_seccomp(k.pid) >= 3);

	/* --describe-snapshot on a snapshot of it: its format version */
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	char body[1024];
	snprintf(body, sizeof(body), "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
		 kiln_file(&k, "vm.snap"), kiln_file(&k, "vm.mem"));
	expect(k.sock, "PUT", "/snapshot/create", body, 204, NULL);
	struct kiln k2;
	kiln_prepare(&k2);
	kiln_start(&k2, false,
		   (const char *const[]){"--describe-snapshot", kiln_file(&k, "vm.snap"), NULL});
	assert_int_equal(kiln_wait(&k2, 5000), 0);
	assert_true(file_contains(k2.out, "v1\n"));
	kiln_cleanup(&k2);

	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k, 10000), 0);
}

int main(int argc, char **argv)
{
	if (!client_args(argc, argv, true))
		return 2;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fc_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fc_flags_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_go_sdk_boot, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
