/* test_api_routes.c: every API route before boot against a real `kiln api`: success paths,
 * malformed bodies (exact status and fault_message), HTTP errors, sockets, options (a FIFO as
 * the config file included). Clients: test_api_clients.c. */
#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"

static struct kiln k;

static int setup(void **state)
{
	(void)state;
	kiln_prepare(&k);
	kiln_start(&k, true, (const char *const[]){"--id", "routes-test", NULL});
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_cleanup(&k);
	return 0;
}

/* A body with its one "%s" replaced by a path in the test directory. */
static const char *with_path(const char *tmpl, const char *name)
{
	return kiln_body_with_path(&k, tmpl, name);
}

static void test_get_preboot(void **state)
{
	struct resp r;
	(void)state;
	http(k.sock, "GET", "/", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_field(r.body, "id"), "routes-test");
	assert_string_equal(json_field(r.body, "state"), "Not started");
	assert_string_equal(json_field(r.body, "app_name"), "kiln");
	assert_true(json_field(r.body, "vmm_version")[0] != '\0');
	assert_non_null(strstr(r.head, "application/json"));

	http(k.sock, "GET", "/version", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(json_field(r.body, "firecracker_version")[0] != '\0');

	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_int(r.body, "vcpu_count"), 1);
	assert_int_equal(json_int(r.body, "mem_size_mib"), 128);

	http(k.sock, "GET", "/vm/config", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"machine-config\""));
}

static void test_boot_source(void **state)
{
	char body[1024];
	(void)state;
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"boot_args\": \"quiet\"}",
		 kiln_path);
	expect(k.sock, "PUT", "/boot-source", body, 204, NULL);
	expect(k.sock, "PUT", "/boot-source", "{\"boot_args\": \"x\"}", 400,
	       "kernel_image_path: missing");
	expect(k.sock, "PUT", "/boot-source", "{\"kernel_image_path\": \"/nonexistent/vmlinux\"}",
	       400, "kernel_image_path: /nonexistent/vmlinux: No such file or directory");
	expect(k.sock, "PUT", "/boot-source", "{\"kernel_image_path\": 7}", 400,
	       "kernel_image_path: expected a string, got integer");
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"initrd\": \"x\"}",
		 kiln_path);
	expect(k.sock, "PUT", "/boot-source", body, 400, "unknown field 'initrd'");
	snprintf(body, sizeof(body),
		 "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"/no/such\"}", kiln_path);
	expect(k.sock, "PUT", "/boot-source", body, 400, "initrd_path: /no/such");
	expect(k.sock, "PUT", "/boot-source", "{\"kernel_image_path\": \"/tmp\"", 400,
	       "invalid JSON");
	expect(k.sock, "PUT", "/boot-source", "[1, 2]", 400, "expected a JSON object, got array");
	expect(k.sock, "PUT", "/boot-source", "{\"kernel_image_path\": \"\"}", 400, "empty path");
	/* the failed PUTs changed nothing: the first one's boot_args are still there */
	assert_non_null(strstr(vm_config(k.sock), "\"boot_args\":\"quiet\""));
}

static void test_machine_config(void **state)
{
	struct resp r;
	(void)state;
	expect(k.sock, "PUT", "/machine-config",
	       "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"smt\": false, \"track_dirty_pages\": "
	       "true}",
	       204, NULL);
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 2);
	assert_int_equal(json_int(r.body, "mem_size_mib"), 256);
	assert_non_null(strstr(r.body, "\"track_dirty_pages\":true"));

	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 256}", 400,
	       "vcpu_count: 0 is out of range (1-32)");
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 33, \"mem_size_mib\": 256}", 400,
	       "vcpu_count: 33 is out of range");
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": -1, \"mem_size_mib\": 256}", 400,
	       "vcpu_count: -1 is out of range");
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 1.5, \"mem_size_mib\": 256}",
	       400, "vcpu_count: expected an integer, got number");
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 16}", 400,
	       "mem_size_mib: 16 is out of range");
	expect(k.sock, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": \"1G\"}",
	       400, "mem_size_mib: expected an integer, got string");
	expect(k.sock, "PUT", "/machine-config", "{\"mem_size_mib\": 128}", 400,
	       "vcpu_count: missing");
	expect(k.sock, "PUT", "/machine-config",
	       "{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"smt\": true}", 400,
	       "smt: true is not supported");
	expect(k.sock, "PUT", "/machine-config",
	       "{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"cpu_template\": \"T2\"}", 400,
	       "cpu_template: unknown value \"T2\"");
	expect(k.sock, "PUT", "/machine-config",
	       "{\"vcpu_count\": 2, \"mem_size_mib\": 128, \"vcpus\": 2}", 400,
	       "unknown field 'vcpus'");
	expect(k.sock, "PUT", "/machine-config",
	       "{\"vcpu_count\": 2, \"vcpu_count\": 3, \"mem_size_mib\": 128}", 400,
	       "duplicate object key");

	expect(k.sock, "PATCH", "/machine-config", "{\"vcpu_count\": 4}", 204, NULL);
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 4);
	assert_int_equal(json_int(r.body, "mem_size_mib"), 256); /* PATCH kept it */
	expect(k.sock, "PATCH", "/machine-config", "{\"mem_size_mib\": 99999999999}", 400,
	       "mem_size_mib: 99999999999 is out of range");
	expect(k.sock, "PATCH", "/machine-config", "{\"track_dirty_pages\": \"yes\"}", 400,
	       "track_dirty_pages: expected a boolean, got string");
	expect(k.sock, "PATCH", "/machine-config", "{\"bogus\": null}", 400,
	       "unknown field 'bogus'");
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 4);
}

static void test_drives(void **state)
{
	char body[1024];
	(void)state;
	write_file(kiln_file(&k, "disk.img"), "not much of a disk\n");
	expect(k.sock, "PUT", "/drives/rootfs",
	       with_path("{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": "
			 "true, \"is_read_only\": false, \"cache_type\": \"Writeback\", "
			 "\"io_engine\": \"Async\"}",
			 "disk.img"),
	       204, NULL);
	expect(k.sock, "PUT", "/drives/data",
	       with_path("{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": "
			 "false, \"is_read_only\": true, \"rate_limiter\": null}",
			 "disk.img"),
	       204, NULL);
	const char *cfg = vm_config(k.sock);
	assert_non_null(strstr(cfg, "\"drive_id\":\"rootfs\""));
	assert_non_null(strstr(cfg, "\"cache_type\":\"Writeback\""));
	assert_non_null(strstr(cfg, "\"io_engine\":\"Async\""));

	expect(k.sock, "PUT", "/drives/rootfs",
	       with_path("{\"drive_id\": \"other\", \"path_on_host\": \"%s\", \"is_root_device\": "
			 "true}",
			 "disk.img"),
	       400, "drive_id: \"other\" does not match the id in the URL (\"rootfs\")");
	expect(
	    k.sock, "PUT", "/drives/x",
	    "{\"drive_id\": \"x\", \"path_on_host\": \"/no/such.img\", \"is_root_device\": false}",
	    400, "path_on_host: /no/such.img: No such file or directory");
	expect(k.sock, "PUT", "/drives/x",
	       with_path("{\"drive_id\": \"x\", \"path_on_host\": \"%s\"}", "disk.img"), 400,
	       "is_root_device: missing");
	expect(
	    k.sock, "PUT", "/drives/x",
	    with_path("{\"drive_id\": \"x\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
		      "\"cache_type\": \"Bogus\"}",
		      "disk.img"),
	    400, "cache_type: unknown value \"Bogus\" (expected \"Unsafe\" or \"Writeback\")");
	expect(
	    k.sock, "PUT", "/drives/x",
	    with_path("{\"drive_id\": \"x\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
		      "\"io_engine\": 5}",
		      "disk.img"),
	    400, "io_engine: expected a string, got integer");
	expect(
	    k.sock, "PUT", "/drives/x",
	    with_path("{\"drive_id\": \"x\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
		      "\"rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time\": 1}}}",
		      "disk.img"),
	    400, "rate_limiter: rate limiting is not supported");
	expect(
	    k.sock, "PUT", "/drives/x",
	    with_path("{\"drive_id\": \"x\", \"path_on_host\": \"%s\", \"is_root_device\": true}",
		      "disk.img"),
	    400, "is_root_device: drive \"rootfs\" is already the root device");
	expect(k.sock, "PUT", "/drives/bad!id", "{}", 400,
	       "id in the URL: \"bad!id\" is not a valid id");
	snprintf(body, sizeof(body),
		 "{\"drive_id\": \"x\", \"path_on_host\": \"%s\", "
		 "\"is_root_device\": false, \"partuuid\": \"zz\"}",
		 kiln_file(&k, "disk.img"));
	expect(k.sock, "PUT", "/drives/x", body, 400, "partuuid: \"zz\" is not a partition UUID");
	/* PATCH before boot changes the stored drive (the whole body checked first) */
	write_file(kiln_file(&k, "disk2.img"), "another disk\n");
	expect(k.sock, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}", 204, NULL);
	expect(k.sock, "PATCH", "/drives/data",
	       with_path("{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}", "disk2.img"), 204,
	       NULL);
	assert_non_null(strstr(vm_config(k.sock), "disk2.img"));
	expect(k.sock, "PATCH", "/drives/rootfs",
	       with_path("{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_read_only\": "
			 "true}",
			 "disk2.img"),
	       400, "drive: unknown field 'is_read_only'");
	expect(k.sock, "PATCH", "/drives/nope", "{\"drive_id\": \"nope\"}", 400,
	       "drive_id: no drive \"nope\"");
	expect(k.sock, "PATCH", "/drives/rootfs",
	       "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/no/such.img\"}", 400,
	       "drive: path_on_host: /no/such.img: No such file or directory");
	assert_null(strstr(vm_config(k.sock), "/no/such.img"));
}

static void test_network(void **state)
{
	(void)state;
	expect(k.sock, "PUT", "/network-interfaces/eth0",
	       "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": "
	       "\"06:00:AC:10:00:02\", \"mtu\": 1500}",
	       204, NULL);
	assert_non_null(strstr(vm_config(k.sock), "\"guest_mac\":\"06:00:ac:10:00:02\""));
	expect(k.sock, "PUT", "/network-interfaces/eth1",
	       "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"guest_mac\": \"06:00:ac\"}",
	       400, "guest_mac: \"06:00:ac\" is not a MAC address");
	expect(k.sock, "PUT", "/network-interfaces/eth1",
	       "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"guest_mac\": "
	       "\"01:00:00:00:00:01\"}",
	       400, "guest_mac: 01:00:00:00:00:01 is a multicast address");
	expect(k.sock, "PUT", "/network-interfaces/eth1",
	       "{\"iface_id\": \"eth1\", \"host_dev_name\": \"a-very-long-tap-name\"}", 400,
	       "host_dev_name: \"a-very-long-tap-name\" is not a valid interface name");
	expect(k.sock, "PUT", "/network-interfaces/eth1",
	       "{\"iface_id\": \"eth2\", \"host_dev_name\": \"tap1\"}", 400,
	       "iface_id: \"eth2\" does not match");
	expect(k.sock, "PUT", "/network-interfaces/eth1",
	       "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap0\"}", 400,
	       "host_dev_name: \"tap0\" is already used by interface \"eth0\"");
	expect(k.sock, "PUT", "/network-interfaces/eth1",
	       "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"mtu\": 10}", 400,
	       "mtu: 10 is out of range (68-65535)");
	expect(k.sock, "PUT", "/network-interfaces/eth1",
	       "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"tx_rate_limiter\": {}}",
	       400, "tx_rate_limiter: rate limiting is not supported");
	expect(k.sock, "PUT", "/network-interfaces/eth1", "{\"iface_id\": \"eth1\"}", 400,
	       "host_dev_name: missing");
}

static void test_entropy_serial(void **state)
{
	(void)state;
	expect(k.sock, "PUT", "/entropy", "{}", 204, NULL);
	expect(k.sock, "PUT", "/entropy", "{\"rate_limiter\": {\"ops\": {}}}", 400,
	       "entropy: rate_limiter: rate limiting is not supported");
	expect(k.sock, "PUT", "/entropy", "{\"rate\": 1}", 400, "unknown field 'rate'");
	expect(k.sock, "PUT", "/entropy", "[]", 400, "expected a JSON object, got array");
	expect(k.sock, "PUT", "/entropy", "", 400, "entropy: empty");
	assert_non_null(strstr(vm_config(k.sock), "\"entropy\":{}"));

	expect(k.sock, "PUT", "/serial", with_path("{\"serial_out_path\": \"%s\"}", "serial.out"),
	       204, NULL);
	assert_int_equal(access(kiln_file(&k, "serial.out"), F_OK), 0);
	expect(k.sock, "PUT", "/serial", "{\"serial_out_path\": \"/no/such/dir/out\"}", 400,
	       "serial_out_path: /no/such/dir/out: No such file or directory");
	expect(k.sock, "PUT", "/serial", "{\"serial_out_path\": false}", 400,
	       "serial_out_path: expected a string, got boolean");
	expect(k.sock, "PUT", "/serial", "{\"path\": \"/tmp/x\"}", 400, "unknown field 'path'");
}

static void test_logger(void **state)
{
	(void)state;
	expect(k.sock, "PUT", "/logger", "{\"level\": \"Loud\"}", 400,
	       "level: unknown value \"Loud\"");
	expect(k.sock, "PUT", "/logger", "{\"show_level\": \"yes\"}", 400,
	       "show_level: expected a boolean, got string");
	expect(k.sock, "PUT", "/logger", "{\"log_path\": \"/no/such/dir/log\"}", 400,
	       "log_path: /no/such/dir/log: No such file or directory");
	expect(k.sock, "PUT", "/logger", "{\"levels\": \"Info\"}", 400, "unknown field 'levels'");
	expect(k.sock, "PUT", "/logger",
	       with_path("{\"log_path\": \"%s\", \"level\": \"debug\", \"show_level\": true, "
			 "\"show_log_origin\": true}",
			 "kiln.log"),
	       204, NULL);
	expect(k.sock, "PUT", "/logger", "{\"level\": \"Info\"}", 400,
	       "logger: already configured");
	/* the logger took effect: the request log lines (debug) are in the file */
	assert_true(wait_lines(kiln_file(&k, "kiln.log"), "", 1, 2000));
	assert_non_null(strstr(vm_config(k.sock), "\"level\":\"Debug\""));
}

static void test_metrics(void **state)
{
	(void)state;
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 400,
	       "metrics are not configured");
	expect(k.sock, "PUT", "/metrics", "{}", 400, "metrics_path: missing");
	expect(k.sock, "PUT", "/metrics", "{\"metrics_path\": [\"a\"]}", 400,
	       "metrics_path: expected a string, got array");
	expect(k.sock, "PUT", "/metrics", "{\"metrics_path\": \"/no/such/dir/m\"}", 400,
	       "/no/such/dir/m: No such file or directory");
	expect(k.sock, "PUT", "/metrics", with_path("{\"metrics_path\": \"%s\"}", "metrics.json"),
	       204, NULL);
	expect(k.sock, "PUT", "/metrics", with_path("{\"metrics_path\": \"%s\"}", "m2.json"), 400,
	       "metrics: already configured");
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	const char *m = kiln_file(&k, "metrics.json");
	assert_int_equal(count_lines(m, "{\"utc_timestamp_ms\":"), 2);
	FILE *f = fopen(m, "r");
	char line[4096];
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_true(json_int(line, "api/requests") > 0);
	assert_true(json_int(line, "vmm/rss_bytes") > 0);
}

static void test_actions_preboot(void **state)
{
	(void)state;
	expect(
	    k.sock, "PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400,
	    "action_type: unknown value \"Reboot\" (expected \"InstanceStart\", \"FlushMetrics\" "
	    "or \"SendCtrlAltDel\")");
	expect(k.sock, "PUT", "/actions", "{}", 400, "action_type: missing");
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"x\": 1}", 400,
	       "unknown field 'x'");
	expect(k.sock, "PUT", "/actions", "{\"action_type\": null}", 400, "action_type: missing");
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400,
	       "SendCtrlAltDel: the microVM is not running");
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
	       "no boot source");
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400,
	       "the microVM is not running");
	expect(k.sock, "PATCH", "/vm", "{\"state\": \"Stopped\"}", 400,
	       "state: unknown value \"Stopped\"");
	expect(k.sock, "PATCH", "/vm", "{\"state\": 1}", 400,
	       "state: expected a string, got integer");
	expect(k.sock, "PATCH", "/vm", "{}", 400, "state: missing");
	struct resp r;
	http(k.sock, "GET", "/", NULL, &r);
	assert_string_equal(json_field(r.body, "state"), "Not started");
}

static bool deprecation(const struct resp *r)
{
	return strstr(r->head, "\r\nDeprecation: true") != NULL;
}

/* Firecracker's deprecated fields are answered with "Deprecation: true" once the body has
 * parsed, whatever the outcome; a body refused as malformed, or one without them, has none. */
static void test_deprecation(void **state)
{
	char snap[300], mem[300], b[1024], line[4096];
	struct resp r;
	(void)state;

	expect(k.sock, "PUT", "/metrics", with_path("{\"metrics_path\": \"%s\"}", "metrics.json"),
	       204, NULL);

	http(k.sock, "PUT", "/machine-config",
	     "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"None\"}", &r);
	assert_int_equal(r.status, 204);
	assert_true(deprecation(&r));
	http(k.sock, "PATCH", "/machine-config", "{\"cpu_template\": \"None\"}", &r);
	assert_int_equal(r.status, 204);
	assert_true(deprecation(&r));
	http(k.sock, "PATCH", "/machine-config", "{\"vcpu_count\": 2, \"cpu_template\": null}", &r);
	assert_int_equal(r.status, 204);
	assert_false(deprecation(&r));
	http(k.sock, "PUT", "/machine-config",
	     "{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"T2\"}", &r);
	assert_int_equal(r.status, 400);
	assert_false(deprecation(&r));

	/* Files that parse as paths but are no snapshot: the load itself fails. */
	snprintf(snap, sizeof(snap), "%s", kiln_file(&k, "not.snap"));
	snprintf(mem, sizeof(mem), "%s", kiln_file(&k, "not.mem"));
	write_file(snap, "not a snapshot");
	write_file(mem, "nor memory");
	snprintf(b, sizeof(b), "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", snap, mem);
	http(k.sock, "PUT", "/snapshot/load", b, &r);
	assert_int_equal(r.status, 400);
	assert_true(deprecation(&r));
	snprintf(b, sizeof(b),
		 "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
		 "\"backend_path\": \"%s\"}, \"enable_diff_snapshots\": true}",
		 snap, mem);
	http(k.sock, "PUT", "/snapshot/load", b, &r);
	assert_int_equal(r.status, 400);
	assert_true(deprecation(&r));
	/* enable_diff_snapshots false is the default: not a use of it. */
	snprintf(b, sizeof(b),
		 "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
		 "\"backend_path\": \"%s\"}, \"enable_diff_snapshots\": false}",
		 snap, mem);
	http(k.sock, "PUT", "/snapshot/load", b, &r);
	assert_int_equal(r.status, 400);
	assert_false(deprecation(&r));
	/* Malformed: both forms of the memory file. */
	snprintf(b, sizeof(b),
		 "{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"mem_backend\": "
		 "{\"backend_type\": \"File\", \"backend_path\": \"%s\"}}",
		 snap, mem, mem);
	http(k.sock, "PUT", "/snapshot/load", b, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "not both"));
	assert_false(deprecation(&r));
	http(k.sock, "GET", "/", NULL, &r);
	assert_false(deprecation(&r));
	/* Counted in the metrics, as Firecracker's deprecated_http_api_calls. */
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	file_last_line(kiln_file(&k, "metrics.json"), line, sizeof(line));
	assert_int_equal(json_int(line, "api/deprecated_requests"), 4);
}

static void test_http_errors(void **state)
{
	struct resp r;
	(void)state;
	expect(k.sock, "GET", "/nope", NULL, 404, "no such resource: /nope");
	expect(k.sock, "GET", "/drives", NULL, 404, "no such resource");
	expect(k.sock, "PUT", "/drives/a/b", "{}", 404, "no such resource");
	expect(k.sock, "GET", "/machine-config/", NULL, 404, "no such resource");
	expect(k.sock, "DELETE", "/", NULL, 405, "method DELETE is not allowed");
	expect(k.sock, "POST", "/actions", "{}", 405, "allowed: PUT");
	expect(k.sock, "GET", "/boot-source", NULL, 405, "boot-source: method GET is not allowed");
	http(k.sock, "PATCH", "/network-interfaces/eth0", "{}", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.head, "Allow: PUT"));

	/* 64 KiB + 1 byte of body: 413, with and without an announced length */
	size_t n = 64 * 1024 + 1;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	expect(k.sock, "PUT", "/machine-config", big, 413, "larger than 65536 bytes");
	free(big);
	const char chunked[] = "PUT /logger HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n";
	char *req = malloc(sizeof(chunked) + 80 * 1100);
	assert_non_null(req);
	size_t len = (size_t)sprintf(req, "%s", chunked);
	for (int i = 0; i < 80; i++) /* 80 chunks of 1 KiB: 80 KiB in all */
		len += (size_t)sprintf(req + len, "400\r\n%01024d\r\n", 0);
	len += (size_t)sprintf(req + len, "0\r\n\r\n");
	http_raw(k.sock, req, len, &r);
	free(req);
	assert_int_equal(r.status, 413);
	/* a lying Content-Length is refused before the body is read */
	const char liar[] = "PUT /logger HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{}";
	http_raw(k.sock, liar, sizeof(liar) - 1, &r);
	assert_int_equal(r.status, 413);
	/* the server is fine */
	http(k.sock, "GET", "/", NULL, &r);
	assert_int_equal(r.status, 200);
}

static void test_socket_handling(void **state)
{
	struct kiln k2;
	struct stat st;
	(void)state;
	assert_int_equal(stat(k.sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* a second kiln on the live socket is refused and leaves it alone */
	kiln_prepare(&k2);
	snprintf(k2.sock, sizeof(k2.sock), "%s", k.sock);
	kiln_start(&k2, false, NULL);
	assert_int_equal(kiln_wait(&k2, 5000), 1);
	assert_int_equal(count_lines(k2.out, "kiln: --api-sock"), 1);
	expect(k.sock, "GET", "/", NULL, 200, NULL);

	/* a stale socket file (nobody listening) is replaced */
	snprintf(k2.sock, sizeof(k2.sock), "%s/stale.sock", k2.dir);
	struct sockaddr_un sa;
	sockaddr_set(&sa, k2.sock);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	kiln_start(&k2, true, NULL);
	expect(k2.sock, "GET", "/", NULL, 200, NULL);
	kill(k2.pid, SIGTERM);
	assert_int_equal(kiln_wait(&k2, 5000), 128 + SIGTERM);
	assert_int_equal(access(k2.sock, F_OK), -1); /* removed on exit */

	/* a regular file is not ours to replace */
	write_file(k2.sock, "precious\n");
	kiln_start(&k2, false, NULL);
	assert_int_equal(kiln_wait(&k2, 5000), 1);
	assert_int_equal(count_lines(k2.sock, "precious"), 1);
	kiln_cleanup(&k2);
}

static void test_cli_args(void **state)
{
	struct kiln k2;
	(void)state;
	kiln_prepare(&k2);
	kiln_start(&k2, false, (const char *const[]){"--no-api", NULL});
	assert_int_equal(kiln_wait(&k2, 5000), 1);
	assert_int_equal(count_lines(k2.out, "kiln api: --no-api needs --config-file"), 1);
	kiln_start(&k2, false, (const char *const[]){"--bogus", NULL});
	assert_int_equal(kiln_wait(&k2, 5000), 1);
	kiln_start(&k2, false, (const char *const[]){"--id", "no spaces", NULL});
	assert_int_equal(kiln_wait(&k2, 5000), 1);
	write_file(kiln_file(&k2, "bad.json"), "{\"boot-source\": {\"kernel_image_path\": \"/x\"}, "
					       "\"drives\": [{\"drive_id\": 1}]}");
	kiln_start(
	    &k2, false,
	    (const char *const[]){"--no-api", "--config-file", kiln_file(&k2, "bad.json"), NULL});
	assert_int_equal(kiln_wait(&k2, 5000), 1);
	assert_true(file_contains(k2.out, "bad.json: boot-source: kernel_image_path: /x: No such"));
	write_file(kiln_file(&k2, "bad.json"), "{\"balloon\": {\"amount_mib\": 1}}");
	kiln_start(
	    &k2, false,
	    (const char *const[]){"--no-api", "--config-file", kiln_file(&k2, "bad.json"), NULL});
	assert_int_equal(kiln_wait(&k2, 5000), 1);
	assert_true(file_contains(k2.out, "bad.json: balloon: not supported"));
	/* a FIFO as the config file fails at once (a blocking open would wait for a writer) */
	assert_int_equal(mkfifo(kiln_file(&k2, "vm.fifo"), 0600), 0);
	kiln_start(
	    &k2, false,
	    (const char *const[]){"--no-api", "--config-file", kiln_file(&k2, "vm.fifo"), NULL});
	assert_int_equal(kiln_wait(&k2, 5000), 1);
	char line[600];
	file_last_line(k2.out, line, sizeof(line));
	assert_non_null(strstr(line, "kiln: "));
	assert_non_null(strstr(line, "vm.fifo: not a regular file"));
	kiln_cleanup(&k2);
}

int main(int argc, char **argv)
{
	if (!client_args(argc, argv, false))
		return 2;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_get_preboot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_boot_source, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_machine_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_drives, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_network, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entropy_serial, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_logger, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_actions_preboot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deprecation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socket_handling, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cli_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
