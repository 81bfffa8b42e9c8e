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

static void test_bodies(void **state)
{
	expect_exact(k.sock, "PUT", "/network-interfaces/eth0",
		     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"" TAP "\", \"guest_mac\": "
		     "\"02:00:00:00:00:01\"}",
		     204, NULL);
	const char *cfg = vm_config(k.sock);
	assert_non_null(strstr(cfg, "\"host_dev_name\":\"" TAP "\""));
	assert_non_null(strstr(cfg, "\"guest_mac\":\"02:00:00:00:00:01\""));
	/* a second PUT of the same id replaces it */
	expect_exact(k.sock, "PUT", "/network-interfaces/eth0",
		     "{\"iface_id\": \"eth0\", \"host_dev_name\": \"" TAP "\"}", 204, NULL);
	assert_null(strstr(vm_config(k.sock), "guest_mac"));

	expect_exact(k.sock, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"guest_mac\": "
		     "\"02:00:00:00:00\"}",
		     400,
		     "network-interface: guest_mac: \"02:00:00:00:00\" is not a MAC address "
		     "(xx:xx:xx:xx:xx:xx)");
	expect_exact(k.sock, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"" TAP "\"}", 400,
		     "network-interface: host_dev_name: \"" TAP "\" is already used by "
		     "interface \"eth0\"");
	expect_exact(k.sock, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": 7}", 400,
		     "network-interface: host_dev_name: expected a string, got integer");
	expect_exact(k.sock, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"t1\", \"vhost\": true}", 400,
		     "network-interface: unknown field 'vhost'");
}

/* Configure the tick guest with one interface on TAP name, ready for InstanceStart. */
static void config_with(const char *tap)
{
	char body[1024];

	put_tick_config(&k);
	snprintf(body, sizeof(body), "{\"iface_id\": \"eth0\", \"host_dev_name\": \"%s\"}", tap);
	expect(k.sock, "PUT", "/network-interfaces/eth0", body, 204, NULL);
}

static void test_start_missing_tap(void **state)
{
	struct resp r;

	if (!tick_path)
		skip();
	config_with("kilnnone0");
	expect_exact(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
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
	config_with(TAP);
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL);
	http(k.sock, "GET", "/", NULL, &r);
	assert_string_equal(json_field(r.body, "state"), "Running");
	expect(k.sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);

	char last[8192];
	file_last_line(kiln_file(&k, "metrics.json"), last, sizeof(last));
	assert_int_equal(json_int(last, "net/eth0/tx_errors"), 0);
	assert_int_equal(json_int(last, "net/eth0/rx_dropped"), 0);
	assert_true(json_int(last, "net/eth0/rx_packets") >= 0);
}

int main(int argc, char **argv)
{
	if (!client_args(argc, argv, true))
		return 2;
	if (client_kvm_missing("api-net"))
		return 77;
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
