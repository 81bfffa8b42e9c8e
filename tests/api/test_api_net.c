/* test_api_net.c: PUT /network-interfaces against a real `kiln api`: bodies (exact status and
 * fault_message), InstanceStart with a missing TAP (400, nothing runs) and with a real TAP in
 * a network namespace this test makes (the device exists, its counters are in the metrics). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../unit/netns_tap.h"
#include "client.h"

#define TAP "kilnapi0"

static struct kiln k;
static bool have_tap; /* the process is in its own namespace with TAP */

static int setup(void **state)
{
	kiln_prepare(&k);
	kiln_start(&k, true, (const char *const[]){"--id", "net-test", NULL});
	return 0;
}

static int teardown(void **state)
{
	kiln_cleanup(&k);
	return 0;
}

/* PUT body to path: the status, and the whole fault_message when msg is not NULL. */
static void expect_exact(const char *path, const char *body, int status, const char *msg)
{
	struct resp r;

	http(k.sock, "PUT", path, body, &r);
	if (r.status != status || (msg && strcmp(json_field(r.body, "fault_message"), msg))) {
		print_error("PUT %s %s\n-> %d %s\n", path, body, r.status, r.body);
		fail();
	}
}

static void test_bodies(void **state)
{
	struct resp r;

	expect_exact("/network-interfaces/eth0",
		     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"" TAP "\", \"guest_mac\": "
		     "\"02:00:00:00:00:01\"}",
		     204, NULL);
	http(k.sock, "GET", "/vm/config", NULL, &r);
	assert_non_null(strstr(r.body, "\"host_dev_name\":\"" TAP "\""));
	assert_non_null(strstr(r.body, "\"guest_mac\":\"02:00:00:00:00:01\""));
	/* a second PUT of the same id replaces it */
	expect_exact("/network-interfaces/eth0",
		     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"" TAP "\"}", 204, NULL);
	http(k.sock, "GET", "/vm/config", NULL, &r);
	assert_null(strstr(r.body, "guest_mac"));

	expect_exact("/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"guest_mac\": "
		     "\"02:00:00:00:00\"}",
		     400,
		     "network-interface: guest_mac: \"02:00:00:00:00\" is not a MAC address "
		     "(xx:xx:xx:xx:xx:xx)");
	expect_exact("/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"" TAP "\"}", 400,
		     "network-interface: host_dev_name: \"" TAP "\" is already used by "
		     "interface \"eth0\"");
	expect_exact("/network-interfaces/eth1", "{\"iface_id\": \"eth1\", \"host_dev_name\": 7}",
		     400, "network-interface: host_dev_name: expected a string, got integer");
	expect_exact("/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"t1\", \"vhost\": true}", 400,
		     "network-interface: unknown field 'vhost'");
}

/* Boot the tick guest with one interface on TAP name; returns the InstanceStart response. */
static void start_with(const char *tap, struct resp *r)
{
	char body[1024];

	snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", kiln_file(&k, "metrics.json"));
	expect(k.sock, "PUT", "/metrics", body, 204, NULL);
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", tick_path);
	expect(k.sock, "PUT", "/boot-source", body, 204, NULL);
	snprintf(body, sizeof(body), "{\"serial_out_path\": \"%s\"}", kiln_file(&k, "serial.out"));
	expect(k.sock, "PUT", "/serial", body, 204, NULL);
	snprintf(body, sizeof(body), "{\"iface_id\": \"eth0\", \"host_dev_name\": \"%s\"}", tap);
	expect(k.sock, "PUT", "/network-interfaces/eth0", body, 204, NULL);
	http(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", r);
}

static void test_start_missing_tap(void **state)
{
	struct resp r;

	if (!tick_path)
		skip();
	start_with("kilnnone0", &r);
	assert_int_equal(r.status, 400);
	assert_string_equal(json_field(r.body, "fault_message"),
			    "InstanceStart: net 'eth0': tap 'kilnnone0': no such network interface "
			    "(create it first: ip tuntap add dev kilnnone0 mode tap)");
	http(k.sock, "GET", "/", NULL, &r);
	assert_string_equal(json_field(r.body, "state"), "Not started");
}

static void test_start_with_tap(void **state)
{
	struct resp r;

	if (!tick_path || !have_tap)
		skip();
	start_with(TAP, &r);
	assert_int_equal(r.status, 204);
	http(k.sock, "GET", "/", NULL, &r);
	assert_string_equal(json_field(r.body, "state"), "Running");
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);

	const char *m = kiln_file(&k, "metrics.json");
	char line[8192] = "", last[8192] = "";
	FILE *f = fopen(m, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		memcpy(last, line, sizeof(last));
	fclose(f);
	assert_int_equal(json_int(last, "net/eth0/tx_errors"), 0);
	assert_int_equal(json_int(last, "net/eth0/rx_dropped"), 0);
	assert_true(json_int(last, "net/eth0/rx_packets") >= 0);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s KILN [TICK_GUEST]\n", argv[0]);
		return 2;
	}
	kiln_path = argv[1];
	tick_path = argc > 2 && argv[2][0] ? argv[2] : NULL;
	/* kiln inherits the namespace, so it finds the TAP; without privileges that one test is
	 * skipped. */
	have_tap = netns_make_tap(TAP, "10.78.0.1", NULL) == 0;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bodies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_missing_tap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_start_with_tap, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
