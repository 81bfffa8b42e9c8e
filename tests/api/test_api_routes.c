/* test_api_routes.c: every API route before boot against a real `kiln api`: success paths,
 * malformed bodies (exact status and fault_message), HTTP errors, hostile and slow clients,
 * connection limits, FIFOs as outputs and config files, sockets. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include <sys/wait.h>
#include <time.h>
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
	static char buf[2048];
	const char *at = strstr(tmpl, "%s");
	assert_non_null(at);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - tmpl), tmpl, kiln_file(&k, name), at + 2);
	return buf;
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

static void test_byte_by_byte(void **state)
{
	const char req[] =
	    "PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
	    "Content-Type: application/json\r\nContent-Length: 37\r\n\r\n"
	    "{\"vcpu_count\": 3, \"mem_size_mib\": 96}";
	struct resp r;
	(void)state;
	int fd = http_connect(k.sock);
	for (size_t i = 0; i < sizeof(req) - 1; i++) {
		assert_int_equal(write(fd, req + i, 1), 1);
		if (i == 40) {
			/* another client is served while this one dribbles */
			http(k.sock, "GET", "/", NULL, &r);
			assert_int_equal(r.status, 200);
		}
		sleep_ms(1);
	}
	http_read(fd, &r);
	close(fd);
	assert_int_equal(r.status, 204);
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 3);
	assert_int_equal(json_int(r.body, "mem_size_mib"), 96);
}

static void test_disconnects(void **state)
{
	const char *parts[] = {
	    "PUT /machine-config HTTP/1.1\r\nHost: lo",
	    "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"vcpu_c",
	    "GET / HTTP/1.1\r\nHost: x\r\n\r\n", /* closes before reading the answer */
	    "\x01\x02garbage\r\n\r\n",
	};
	struct resp r;
	(void)state;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		int fd = http_connect(k.sock);
		assert_int_equal(write(fd, parts[i], strlen(parts[i])), (ssize_t)strlen(parts[i]));
		sleep_ms(20);
		close(fd);
	}
	http_raw(k.sock, "BLAH\r\n\r\n", 8, &r);
	assert_true(r.status == 400 || r.status == -1);
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_int(r.body, "vcpu_count"), 1); /* the half-sent PUT changed nothing */
	/* keep-alive: two requests on one connection */
	const char two[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /version HTTP/1.1\r\nHost: x\r\n"
			   "Connection: close\r\n\r\n";
	http_raw(k.sock, two, sizeof(two) - 1, &r);
	assert_int_equal(r.status, 200);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Has the server closed fd? Waits up to ms for it (EOF or reset after any answer bytes). */
static bool closed_within(int fd, int ms)
{
	char buf[512];
	long long until = now_ms() + ms;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long left = until - now_ms();
		if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
			return false;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
}

/* Outputs that are FIFOs nobody reads yet: PUT /serial, /logger and /metrics answer at once
 * (a blocking open would wait for a reader, and the whole API with it), and the log waits in
 * the pipe for a reader that comes later. */
static void test_fifo_outputs(void **state)
{
	char body[600], buf[4096];
	struct resp r;
	(void)state;
	const char *names[] = {"serial.fifo", "log.fifo", "metrics.fifo"};
	for (int i = 0; i < 3; i++)
		assert_int_equal(mkfifo(kiln_file(&k, names[i]), 0600), 0);
	long long t0 = now_ms();
	expect(k.sock, "PUT", "/serial", with_path("{\"serial_out_path\": \"%s\"}", "serial.fifo"),
	       204, NULL);
	expect(k.sock, "PUT", "/logger",
	       with_path("{\"log_path\": \"%s\", \"level\": \"Info\"}", "log.fifo"), 204, NULL);
	expect(k.sock, "PUT", "/metrics", with_path("{\"metrics_path\": \"%s\"}", "metrics.fifo"),
	       204, NULL);
	http(k.sock, "GET", "/", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(now_ms() - t0 < 2000);
	int fd = open(kiln_file(&k, "log.fifo"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "api: logger configured"));
	/* a directory is not an output */
	snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", k.dir);
	expect(k.sock, "PUT", "/serial", body, 400, ": Is a directory");
}

/* Slow clients hold only their own connection, and only for API_IO_TIMEOUT_MS (10 s): one that
 * stalls in its headers, one that stalls in its body, one that sends nothing, and one that
 * sends a byte every 300 ms (which an idle timeout alone never catches) are all dropped
 * then, while other clients are served at once. */
static void test_slow_clients(void **state)
{
	const char *parts[] = {
	    "PUT /machine-config HTTP/1.1\r\nHos",
	    "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"vcpu",
	    "",
	};
	const char dribble[] = "GET / HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	int fd[4];
	long long dropped_at[4] = {0};
	struct resp r;
	(void)state;
	long long t0 = now_ms();
	for (int i = 0; i < 4; i++) {
		fd[i] = http_connect(k.sock);
		const char *p = i < 3 ? parts[i] : "G";
		assert_int_equal(send(fd[i], p, strlen(p), MSG_NOSIGNAL), (ssize_t)strlen(p));
	}
	size_t sent = 1;
	for (int round = 0; round < 50; round++) { /* 15 s in 300 ms steps */
		if (round % 5 == 0) {
			long long g = now_ms();
			http(k.sock, "GET", "/", NULL, &r);
			assert_int_equal(r.status, 200);
			assert_true(now_ms() - g < 500);
		}
		if (!dropped_at[3] && sent < sizeof(dribble) - 1 &&
		    send(fd[3], dribble + sent, 1, MSG_NOSIGNAL) == 1)
			sent++;
		bool all = true;
		for (int i = 0; i < 4; i++) {
			if (!dropped_at[i] && closed_within(fd[i], i == 0 ? 300 : 0))
				dropped_at[i] = now_ms();
			all = all && dropped_at[i];
		}
		if (all)
			break;
	}
	for (int i = 0; i < 4; i++) {
		close(fd[i]);
		if (!dropped_at[i])
			fail_msg("slow client %d was not dropped within 15 s", i);
		long long after = dropped_at[i] - t0;
		if (after < 9000 || after > 12000)
			fail_msg("slow client %d dropped after %lld ms (expected about 10000)", i,
				 after);
	}
	assert_true(sent < sizeof(dribble) - 1); /* the dribbler never finished its headers */
	assert_true(file_contains(k.out, "connection(s) dropped"));
	http(k.sock, "GET", "/machine-config", NULL, &r);
	assert_int_equal(json_int(r.body, "vcpu_count"), 1); /* the half-sent PUTs changed nothing */
}

/* At most 64 connections: the 65th is closed at once (not left waiting in the backlog), and
 * a connection is served again as soon as one of the 64 goes. */
static void test_connection_limit(void **state)
{
	enum { MAX = 64 };
	int fd[MAX];
	struct resp r;
	(void)state;
	for (int i = 0; i < MAX; i++)
		fd[i] = http_connect(k.sock);
	sleep_ms(500); /* all accepted */
	long long t0 = now_ms();
	int extra = http_connect(k.sock);
	const char get[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	(void)!send(extra, get, sizeof(get) - 1, MSG_NOSIGNAL);
	http_read(extra, &r);
	close(extra);
	assert_int_equal(r.status, -1);
	assert_true(now_ms() - t0 < 2000);
	assert_true(file_contains(k.out, "64 connections open: refusing another"));
	close(fd[0]);
	bool served = false;
	for (int i = 0; i < 40 && !served; i++) {
		sleep_ms(50);
		http(k.sock, "GET", "/", NULL, &r);
		served = r.status == 200;
	}
	assert_true(served);
	for (int i = 1; i < MAX; i++)
		close(fd[i]);
}

/* Same uid only: with the socket opened to everyone, another uid still gets no answer. Needs
 * root (to be another uid); skipped otherwise. */
static void test_other_uid(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	assert_int_equal(chmod(k.dir, 0711), 0);
	assert_int_equal(chmod(k.sock, 0666), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_un sa;
		struct timeval tv = {.tv_sec = 5};
		char buf[256];
		const char get[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
		if (setgid(65534) || setuid(65534))
			_exit(3);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sockaddr_set(&sa, k.sock);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(4);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)!send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL);
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		_exit(n > 0 ? 1 : n == 0 ? 0 : 2); /* 0: closed without an answer */
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(file_contains(k.out, "connection from uid 65534 refused"));
	expect(k.sock, "GET", "/", NULL, 200, NULL); /* our own uid still is */
}

/* A body nested 30000 deep is refused by the parser, not by the connection thread's stack. */
static void test_deep_json(void **state)
{
	enum { DEPTH = 30000 };
	char *body = malloc(2 * DEPTH + 1);
	(void)state;
	assert_non_null(body);
	memset(body, '[', DEPTH);
	memset(body + DEPTH, ']', DEPTH);
	body[2 * DEPTH] = '\0';
	expect(k.sock, "PUT", "/machine-config", body, 400, "invalid JSON");
	free(body);
	expect(k.sock, "GET", "/", NULL, 200, NULL);
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
	    cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_byte_by_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disconnects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fifo_outputs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_clients, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deep_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socket_handling, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cli_args, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
