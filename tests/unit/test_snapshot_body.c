/* test_snapshot_body.c: PUT /snapshot/create and /snapshot/load bodies, Firecracker's rules. */
#include <errno.h>
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

#include "api/snapshot_body.h"

static char dir[] = "/tmp/kiln-snapbody.XXXXXX";
static char state_file[128], mem_file[128], sock_path[128];
static int sock_fd = -1;

static int setup(void **st)
{
	FILE *f;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	(void)st;

	if (!mkdtemp(dir))
		return -1;
	snprintf(state_file, sizeof(state_file), "%s/vm.snap", dir);
	snprintf(mem_file, sizeof(mem_file), "%s/vm.mem", dir);
	snprintf(sock_path, sizeof(sock_path), "%s/uffd.sock", dir);
	if (!(f = fopen(state_file, "w")) || fclose(f) || !(f = fopen(mem_file, "w")) || fclose(f))
		return -1;
	if (strlen(sock_path) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, sock_path, strlen(sock_path) + 1);
	sock_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	return bind(sock_fd, (struct sockaddr *)&a, sizeof(a));
}

static int teardown(void **st)
{
	(void)st;
	close(sock_fd);
	unlink(state_file);
	unlink(mem_file);
	unlink(sock_path);
	return rmdir(dir);
}

static char body[1024];
static __attribute__((format(printf, 1, 2))) const char *fmt_body(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	return body;
}

static void create_bad(const char *b, const char *want)
{
	struct api_snapshot_create c;
	char err[256] = "";

	assert_int_equal(api_parse_snapshot_create(b, strlen(b), &c, err, sizeof(err)), -EINVAL);
	if (strcmp(err, want))
		fail_msg("body %s: got \"%s\", want \"%s\"", b, err, want);
	assert_null(c.snapshot_path);
}

static void load_bad(const char *b, const char *want)
{
	struct api_snapshot_load l;
	char err[256] = "";

	assert_int_equal(api_parse_snapshot_load(b, strlen(b), &l, err, sizeof(err)), -EINVAL);
	if (strncmp(err, want, strlen(want)))
		fail_msg("body %s: got \"%s\", want \"%s...\"", b, err, want);
	assert_null(l.snapshot_path);
}

static void test_create(void **st)
{
	struct api_snapshot_create c;
	char err[256];
	const char *b = "{\"snapshot_path\": \"/tmp/a.snap\", \"mem_file_path\": \"/tmp/a.mem\"}";
	(void)st;

	assert_int_equal(api_parse_snapshot_create(b, strlen(b), &c, err, sizeof(err)), 0);
	assert_string_equal(c.snapshot_path, "/tmp/a.snap");
	assert_string_equal(c.mem_file_path, "/tmp/a.mem");
	assert_int_equal(c.type, API_SNAPSHOT_FULL);
	api_snapshot_create_free(&c);
	b = "{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\", \"snapshot_type\": \"Diff\"}";
	assert_int_equal(api_parse_snapshot_create(b, strlen(b), &c, err, sizeof(err)), 0);
	assert_int_equal(c.type, API_SNAPSHOT_DIFF);
	api_snapshot_create_free(&c);

	create_bad("{\"mem_file_path\": \"m\"}", "snapshot/create: snapshot_path: missing (required)");
	create_bad("{\"snapshot_path\": \"s\"}", "snapshot/create: mem_file_path: missing (required)");
	create_bad("{\"snapshot_path\": \"\", \"mem_file_path\": \"m\"}",
		   "snapshot/create: snapshot_path: empty path");
	create_bad("{\"snapshot_path\": \"s\", \"mem_file_path\": \"s\"}",
		   "snapshot/create: mem_file_path: the same file as snapshot_path");
	create_bad("{\"snapshot_path\": \"s\", \"mem_file_path\": \"m\", \"version\": \"1.0\"}",
		   "snapshot/create: unknown field 'version'");
}

static void test_load(void **st)
{
	struct api_snapshot_load l;
	char err[256];
	(void)st;

	fmt_body("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
		 "\"backend_path\": \"%s\"}, \"resume_vm\": true, \"network_overrides\": "
		 "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap7\"}]}",
		 state_file, mem_file);
	assert_int_equal(api_parse_snapshot_load(body, strlen(body), &l, err, sizeof(err)), 0);
	assert_string_equal(l.snapshot_path, state_file);
	assert_string_equal(l.backend_path, mem_file);
	assert_int_equal(l.backend, API_MEM_FILE);
	assert_true(l.resume_vm);
	assert_false(l.track_dirty_pages);
	assert_false(l.deprecated);
	assert_int_equal(l.nr_net_overrides, 1);
	assert_string_equal(l.net_overrides[0].iface_id, "eth0");
	assert_string_equal(l.net_overrides[0].host_dev_name, "tap7");
	api_snapshot_load_free(&l);

	/* The deprecated forms: mem_file_path means File; enable_diff_snapshots tracks. */
	fmt_body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
		 "\"enable_diff_snapshots\": true}", state_file, mem_file);
	assert_int_equal(api_parse_snapshot_load(body, strlen(body), &l, err, sizeof(err)), 0);
	assert_int_equal(l.backend, API_MEM_FILE);
	assert_true(l.track_dirty_pages);
	assert_true(l.deprecated);
	api_snapshot_load_free(&l);

	fmt_body("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
		 "\"backend_path\": \"%s\"}, \"track_dirty_pages\": true, \"clock_realtime\": true}",
		 state_file, sock_path);
	assert_int_equal(api_parse_snapshot_load(body, strlen(body), &l, err, sizeof(err)), 0);
	assert_int_equal(l.backend, API_MEM_UFFD);
	assert_true(l.track_dirty_pages);
	assert_true(l.clock_realtime);
	api_snapshot_load_free(&l);
}

static void test_load_errors(void **st)
{
	(void)st;
	load_bad(fmt_body("{\"snapshot_path\": \"%s\"}", state_file),
		 "snapshot/load: mem_backend: missing (or the deprecated mem_file_path)");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", \"mem_backend\": "
			  "{\"backend_type\": \"File\", \"backend_path\": \"%s\"}}",
			  state_file, mem_file, mem_file),
		 "snapshot/load: mem_file_path: give either mem_backend or mem_file_path");
	load_bad(fmt_body("{\"snapshot_path\": \"%s/none\", \"mem_file_path\": \"%s\"}", dir,
			  mem_file),
		 "snapshot/load: snapshot_path: ");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": "
			  "\"Disk\", \"backend_path\": \"%s\"}}", state_file, mem_file),
		 "snapshot/load: mem_backend: backend_type: ");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": "
			  "\"Uffd\", \"backend_path\": \"%s\"}}", state_file, mem_file),
		 "snapshot/load: mem_backend: backend_path: ");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": "
			  "\"File\", \"backend_path\": \"%s\"}}", state_file, dir),
		 "snapshot/load: mem_backend: backend_path: ");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
			  "\"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
			  "\"a/b\"}]}", state_file, mem_file),
		 "snapshot/load: network_overrides[0]: host_dev_name: \"a/b\" is not a valid");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
			  "\"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
			  "\"t1\"}, {\"iface_id\": \"eth0\", \"host_dev_name\": \"t2\"}]}",
			  state_file, mem_file),
		 "snapshot/load: network_overrides[1]: iface_id: \"eth0\" is overridden twice");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
			  "\"network_overrides\": {}}", state_file, mem_file),
		 "snapshot/load: network_overrides: an array expected, not object");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
			  "\"huge_pages\": \"2M\"}", state_file, mem_file),
		 "snapshot/load: huge_pages: \"2M\" is not supported");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
			  "\"vsock_override\": {\"uds_path\": \"/x\"}}", state_file, mem_file),
		 "snapshot/load: vsock_override: this kiln has no vsock device");
	load_bad(fmt_body("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\", "
			  "\"resume_vm\": 1}", state_file, mem_file),
		 "snapshot/load: resume_vm: ");
	load_bad("[]", "snapshot/load: ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
