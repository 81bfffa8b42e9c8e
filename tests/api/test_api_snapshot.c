/* test_api_snapshot.c: PUT /snapshot/create and /snapshot/load through a real `kiln api`, with
 * the tick guest (it counts in memory and prints "tick N" every 100 ms): a snapshot taken
 * mid-run and loaded into a new process continues the count exactly where it stopped, and
 * every bad request gets a 400 naming the problem. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "client.h"

static struct kiln k, k2;

static int setup(void **state)
{
	(void)state;
	if (!tick_path) {
		print_message("tick guest not built (guest_tests=false): skipped\n");
		skip();
	}
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

static char snap_body[1024];
static __attribute__((format(printf, 1, 2))) const char *body(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(snap_body, sizeof(snap_body), fmt, ap);
	va_end(ap);
	return snap_body;
}

/* Boot the tick guest in k, let it count, pause it and snapshot it into k's directory. Returns
 * the last tick it printed before the snapshot. devices: with 2 vCPUs, a drive the guest never
 * reads (scratch.img) and an entropy device, else 1 vCPU and nothing else. */
static int snapshot_tick_with(bool devices)
{
	char snap[300], mem[300], create[1024];

	/* kiln_file's buffers rotate: keep copies */
	snprintf(snap, sizeof(snap), "%s", kiln_file(&k, "vm.snap"));
	snprintf(mem, sizeof(mem), "%s", kiln_file(&k, "vm.mem"));

	kiln_start(&k, true, (const char *const[]){"--id", "snap-test", NULL});
	put_tick_config(&k);
	expect(k.sock, "PUT", "/machine-config",
	       devices ? "{\"vcpu_count\": 2, \"mem_size_mib\": 64}"
		       : "{\"vcpu_count\": 1, \"mem_size_mib\": 64}",
	       204, NULL);
	if (devices) {
		write_file(kiln_file(&k, "scratch.img"), "scratch\n");
		expect(k.sock, "PUT", "/drives/scratch",
		       body("{\"drive_id\": \"scratch\", \"path_on_host\": \"%s\", "
			    "\"is_root_device\": false, \"is_read_only\": true}",
			    kiln_file(&k, "scratch.img")),
		       204, NULL);
		expect(k.sock, "PUT", "/entropy", "{}", 204, NULL);
	}
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL);
	assert_true(wait_lines(kiln_file(&k, "serial.out"), "tick ", 5, 15000));
	snprintf(create, sizeof(create), "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
		 snap, mem);
	/* Running: refused. */
	expect(k.sock, "PUT", "/snapshot/create", create, 400, "must be paused first");
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	/* A Diff needs dirty tracking, which this VM does not have. */
	expect(k.sock, "PUT", "/snapshot/create",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"snapshot_type\": "
		    "\"Diff\"}", snap, mem),
	       400, "needs dirty page tracking");
	expect(k.sock, "PUT", "/snapshot/create", create, 204, NULL);
	int last = last_tick(kiln_file(&k, "serial.out"));
	struct stat st;
	assert_int_equal(stat(mem, &st), 0);
	assert_int_equal(st.st_size, 64 << 20);
	/* Sparse: far less is allocated than the guest has (the tick guest touches little). */
	assert_true((long long)st.st_blocks * 512 < (32LL << 20));
	/* The VM stays paused and can go on. */
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	assert_true(wait_lines(kiln_file(&k, "serial.out"), "tick ", last + 2, 10000));
	kill(k.pid, SIGKILL);
	return last;
}

static int snapshot_tick(void) { return snapshot_tick_with(false); }

static void test_snapshot_and_restore(void **st)
{
	(void)st;
	if (client_kvm_missing("snapshot"))
		skip();
	int last = snapshot_tick_with(true);

	/* A fresh process: the guest's count goes on from the snapshot's, on kiln's stdout. */
	kiln_start(&k2, true, (const char *const[]){"--id", "restored", NULL});
	/* Before the load: the API's defaults. */
	const char *cfg = vm_config(k2.sock);
	assert_int_equal(json_int(cfg, "machine-config/vcpu_count"), 1);
	assert_int_equal(json_int(cfg, "machine-config/mem_size_mib"), 128);
	struct resp r;
	http(k2.sock, "PUT", "/snapshot/load",
	     body("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
		  "\"backend_path\": \"%s\"}, \"resume_vm\": true}",
		  kiln_file(&k, "vm.snap"), kiln_file(&k, "vm.mem")),
	     &r);
	assert_int_equal(r.status, 204);
	assert_null(strstr(r.head, "Deprecation"));
	expect(k2.sock, "GET", "/", NULL, 200, NULL);
	/* After it: the restored VM's configuration, from the snapshot. */
	cfg = vm_config(k2.sock);
	print_message("GET /vm/config after the load: %s\n", cfg);
	assert_int_equal(json_int(cfg, "machine-config/vcpu_count"), 2);
	assert_int_equal(json_int(cfg, "machine-config/mem_size_mib"), 64);
	assert_non_null(strstr(cfg, "\"drive_id\":\"scratch\""));
	char want[400];
	snprintf(want, sizeof(want), "\"path_on_host\":\"%s\"", kiln_file(&k, "scratch.img"));
	assert_non_null(strstr(cfg, want));
	assert_non_null(strstr(cfg, "\"is_read_only\":true"));
	assert_non_null(strstr(cfg, "\"entropy\":{}"));
	assert_null(strstr(cfg, "\"boot-source\""));
	http(k2.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 2);
	/* The restored drive is known to PATCH /drives too. */
	write_file(kiln_file(&k2, "scratch2.img"), "scratch\n");
	expect(k2.sock, "PATCH", "/drives/scratch",
	       body("{\"drive_id\": \"scratch\", \"path_on_host\": \"%s\"}",
		    kiln_file(&k2, "scratch2.img")),
	       204, NULL);
	snprintf(want, sizeof(want), "\"path_on_host\":\"%s\"", kiln_file(&k2, "scratch2.img"));
	assert_non_null(strstr(vm_config(k2.sock), want));
	assert_true(wait_lines(k2.out, "tick ", 3, 15000));
	int first = first_tick(k2.out);
	print_message("snapshot after tick %d; the restored guest's first is tick %d\n", last,
		      first);
	assert_int_equal(first, last + 1);
	/* Loaded once: a second load, or a configuration, is refused now. */
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
		    kiln_file(&k, "vm.snap"), kiln_file(&k, "vm.mem")),
	       400, "already running");
	expect(k2.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	expect(k2.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k2, 10000), 0);
}

/* Loaded paused, it runs only once resumed. */
static void test_restore_paused(void **st)
{
	(void)st;
	if (client_kvm_missing("snapshot"))
		skip();
	int last = snapshot_tick();

	kiln_start(&k2, true, (const char *const[]){"--id", "restored", NULL});
	/* The deprecated mem_file_path: a Deprecation header, as Firecracker answers. */
	struct resp r;
	http(k2.sock, "PUT", "/snapshot/load",
	     body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
		  kiln_file(&k, "vm.snap"), kiln_file(&k, "vm.mem")),
	     &r);
	assert_int_equal(r.status, 204);
	assert_non_null(strstr(r.head, "\r\nDeprecation: true"));
	expect(k2.sock, "GET", "/", NULL, 200, NULL);
	sleep_ms(500);
	assert_int_equal(count_lines(k2.out, "tick "), 0);
	expect(k2.sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	assert_true(wait_lines(k2.out, "tick ", 2, 15000));
	assert_int_equal(first_tick(k2.out), last + 1);
	kill(k2.pid, SIGKILL);
}

/* A Full snapshot, the guest runs on, a Diff snapshot; `kiln snapshot-rebase` overlays the
 * Diff's memory onto the Full's, and the Diff's state with the merged memory continues the
 * count from the Diff's point. */
static void test_diff_rebase(void **st)
{
	(void)st;
	if (client_kvm_missing("snapshot"))
		skip();
	char base_snap[300], base_mem[300], diff_snap[300], diff_mem[300], cmd[1400];
	snprintf(base_snap, sizeof(base_snap), "%s", kiln_file(&k, "base.snap"));
	snprintf(base_mem, sizeof(base_mem), "%s", kiln_file(&k, "base.mem"));
	snprintf(diff_snap, sizeof(diff_snap), "%s", kiln_file(&k, "diff.snap"));
	snprintf(diff_mem, sizeof(diff_mem), "%s", kiln_file(&k, "diff.mem"));

	kiln_start(&k, true, (const char *const[]){"--id", "diff-test", NULL});
	put_tick_config(&k);
	expect(k.sock, "PUT", "/machine-config",
	       "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"track_dirty_pages\": true}", 204,
	       NULL);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL);
	assert_true(wait_lines(kiln_file(&k, "serial.out"), "tick ", 3, 15000));
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	expect(k.sock, "PUT", "/snapshot/create",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", base_snap,
		    base_mem),
	       204, NULL);
	int at_full = last_tick(kiln_file(&k, "serial.out"));
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	assert_true(wait_lines(kiln_file(&k, "serial.out"), "tick ", at_full + 3, 15000));
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	expect(k.sock, "PUT", "/snapshot/create",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
		    "\"snapshot_type\": \"Diff\"}", diff_snap, diff_mem),
	       204, NULL);
	int at_diff = last_tick(kiln_file(&k, "serial.out"));
	kill(k.pid, SIGKILL);
	struct stat sb, sd;
	assert_int_equal(stat(base_mem, &sb), 0);
	assert_int_equal(stat(diff_mem, &sd), 0);
	assert_int_equal(sd.st_size, sb.st_size);
	print_message("Full at tick %d: %lld KiB allocated; Diff at tick %d: %lld KiB\n", at_full,
		      (long long)sb.st_blocks / 2, at_diff, (long long)sd.st_blocks / 2);
	assert_true(sd.st_blocks > 0 && sd.st_blocks <= sb.st_blocks);

	snprintf(cmd, sizeof(cmd), "'%s' snapshot-rebase --base-file '%s' --diff-file '%s'",
		 kiln_path, base_mem, diff_mem);
	assert_int_equal(system(cmd), 0);
	kiln_start(&k2, true, (const char *const[]){"--id", "merged", NULL});
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"resume_vm\": "
		    "true}", diff_snap, base_mem),
	       204, NULL);
	assert_true(wait_lines(k2.out, "tick ", 2, 15000));
	assert_int_equal(first_tick(k2.out), at_diff + 1);
	kill(k2.pid, SIGKILL);
}

/* The Uffd backend: guest RAM served page by page by a handler process (Firecracker's
 * handshake); the count goes on as with a file, and a handler that dies stops the VM with a
 * line saying why. */
static void test_restore_uffd(void **st)
{
	(void)st;
	if (client_kvm_missing("snapshot"))
		skip();
	int last = snapshot_tick();
	char sock[300], mem[300], log[300];
	int status;

	snprintf(sock, sizeof(sock), "%s", kiln_file(&k2, "uffd.sock"));
	snprintf(mem, sizeof(mem), "%s", kiln_file(&k, "vm.mem"));
	snprintf(log, sizeof(log), "%s", kiln_file(&k2, "handler.log"));
	pid_t h = uffd_handler_start(sock, mem, log);

	kiln_start(&k2, true, (const char *const[]){"--id", "uffd", NULL});
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
		    "\"backend_path\": \"%s\"}, \"resume_vm\": true}",
		    kiln_file(&k, "vm.snap"), sock),
	       204, NULL);
	assert_true(wait_lines(k2.out, "tick ", 3, 15000));
	assert_int_equal(first_tick(k2.out), last + 1);
	/* The handler dies: kiln stops the VM and says why. */
	kill(h, SIGKILL);
	assert_int_equal(waitpid(h, &status, 0), h);
	assert_int_equal(kiln_wait(&k2, 10000), 1);
	assert_true(file_contains(k2.out, "page-fault handler (Uffd backend) hung up"));

	/* Pages are served on demand: a second run, ended by kiln, counts them. */
	kiln_cleanup(&k2);
	kiln_prepare(&k2);
	snprintf(sock, sizeof(sock), "%s", kiln_file(&k2, "uffd.sock"));
	snprintf(log, sizeof(log), "%s", kiln_file(&k2, "handler.log"));
	h = uffd_handler_start(sock, mem, log);
	kiln_start(&k2, true, (const char *const[]){"--id", "uffd2", NULL});
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
		    "\"backend_path\": \"%s\"}, \"resume_vm\": true}",
		    kiln_file(&k, "vm.snap"), sock),
	       204, NULL);
	assert_true(wait_lines(k2.out, "tick ", 2, 15000));
	expect(k2.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(kiln_wait(&k2, 10000), 0);
	assert_int_equal(waitpid(h, &status, 0), h);
	char line[512];
	file_last_line(log, line, sizeof(line));
	long served = -1;
	const char *p = strstr(line, "served ");
	if (p)
		served = strtol(p + 7, NULL, 10);
	print_message("uffd handler: %s\n", line);
	assert_true(served > 0 && served < (64 << 20) / 4096 / 2);
}

/* Bad loads: each a 400 naming the problem, and the process stays fresh for a good one. */
static void test_load_errors(void **st)
{
	(void)st;
	if (client_kvm_missing("snapshot"))
		skip();
	(void)snapshot_tick();
	char snap[300], mem[300];
	snprintf(snap, sizeof(snap), "%s", kiln_file(&k, "vm.snap"));
	snprintf(mem, sizeof(mem), "%s", kiln_file(&k, "vm.mem"));

	kiln_start(&k2, true, (const char *const[]){"--id", "errors", NULL});
	/* A network override for an interface the snapshot does not have. */
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"network_overrides\": "
		    "[{\"iface_id\": \"eth9\", \"host_dev_name\": \"tap9\"}]}", snap, mem),
	       400, "eth9");
	/* A memory file of the wrong size. */
	write_file(kiln_file(&k2, "short.mem"), "short");
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", snap,
		    kiln_file(&k2, "short.mem")),
	       400, "short.mem");
	/* A corrupted state file: one flipped byte in the middle. */
	char bad[600];
	snprintf(bad, sizeof(bad), "cp %s %s", snap, kiln_file(&k2, "bad.snap"));
	assert_int_equal(system(bad), 0);
	int fd = open(kiln_file(&k2, "bad.snap"), O_RDWR);
	struct stat sb;
	assert_true(fd >= 0 && fstat(fd, &sb) == 0);
	uint8_t byte;
	assert_int_equal(pread(fd, &byte, 1, sb.st_size / 2), 1);
	byte ^= 0x10;
	assert_int_equal(pwrite(fd, &byte, 1, sb.st_size / 2), 1);
	close(fd);
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
		    kiln_file(&k2, "bad.snap"), mem),
	       400, "checksum");
	/* Not a snapshot at all. */
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
		    kiln_file(&k2, "short.mem"), mem),
	       400, "snapshot");
	/* After all that, the process is still fresh: the good load works. */
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"resume_vm\": true}",
		    snap, mem),
	       204, NULL);
	assert_true(wait_lines(k2.out, "tick ", 1, 15000));
	kill(k2.pid, SIGKILL);

	/* A configured process refuses a load. */
	kiln_cleanup(&k2);
	kiln_prepare(&k2);
	kiln_start(&k2, true, (const char *const[]){"--id", "configured", NULL});
	expect(k2.sock, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 204,
	       NULL);
	expect(k2.sock, "PUT", "/snapshot/load",
	       body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", snap, mem), 400,
	       "loads only into a fresh microVM: machine-config was configured");
}

int main(int argc, char **argv)
{
	if (!client_args(argc, argv, true))
		return 2;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_snapshot_and_restore, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_paused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_uffd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_diff_rebase, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
