/* test_cli_net.c: `kiln run --net`: tap and user backends, mac/mtu/id/hostfwd/host_loopback,
 * generated ids, and the one-line error for each kind of bad input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli/cli.h"

static struct vm_config cfg;
static char err[256];

/* Parse the NULL-terminated arguments. */
static int parse(const char *first, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	vm_config_free(&cfg);
	return cli_parse_run(argc, argv, &cfg, NULL, err, sizeof(err));
}

static void expect_err(const char *val, const char *msg)
{
	assert_int_equal(parse("--net", val, NULL), -EINVAL);
	assert_string_equal(err, msg);
	assert_int_equal(cfg.nr_nets, 0);
}

static void test_tap(void **state)
{
	assert_int_equal(parse("--net", "tap=tap0,mac=02:AA:bb:00:00:01,mtu=9000,id=eth-a", NULL),
			 0);
	assert_int_equal(cfg.nr_nets, 1);
	assert_string_equal(cfg.nets[0].tap, "tap0");
	assert_false(cfg.nets[0].user);
	assert_true(cfg.nets[0].mac_set);
	assert_memory_equal(cfg.nets[0].mac, ((uint8_t[]){2, 0xaa, 0xbb, 0, 0, 1}), 6);
	assert_int_equal(cfg.nets[0].mtu, 9000);
	assert_string_equal(cfg.nets[0].id, "eth-a");
	assert_null(cfg.nets[0].hostfwd);
}

static void test_user_and_ids(void **state)
{
	assert_int_equal(parse("--net", "user", "--net=tap=tap1", "--net", "user,id=net0",
			       "--net", "tap=tap2", NULL),
			 0);
	assert_int_equal(cfg.nr_nets, 4);
	assert_true(cfg.nets[0].user);
	assert_null(cfg.nets[0].tap);
	assert_false(cfg.nets[0].mac_set);
	/* ids in order, skipping the one given */
	assert_string_equal(cfg.nets[0].id, "net1");
	assert_string_equal(cfg.nets[1].id, "net2");
	assert_string_equal(cfg.nets[2].id, "net0");
	assert_string_equal(cfg.nets[3].id, "net3");
	assert_null(cfg.nets[0].passt);
}

static void test_user_passt_socket(void **state)
{
	assert_int_equal(parse("--net", "user,passt=/run/user/1000/passt.sock", NULL), 0);
	assert_true(cfg.nets[0].user);
	assert_string_equal(cfg.nets[0].passt, "/run/user/1000/passt.sock");
}

static void test_hostfwd_lists(void **state)
{
	assert_int_equal(
	    parse("--net", "user,hostfwd=tcp:127.0.0.1:2222-:22,tcp::8080-:80,mtu=1400", NULL), 0);
	assert_string_equal(cfg.nets[0].hostfwd, "tcp:127.0.0.1:2222-:22,tcp::8080-:80");
	assert_int_equal(cfg.nets[0].mtu, 1400);
	assert_int_equal(parse("--net", "user,hostfwd=tcp::1-:2,hostfwd=udp::3-:4,mac=02:00:00:00:00:09",
			       NULL),
			 0);
	assert_string_equal(cfg.nets[0].hostfwd, "tcp::1-:2,udp::3-:4");
	assert_true(cfg.nets[0].mac_set);
}

/* The host's loopback is off unless asked for, and only user mode has it. */
static void test_host_loopback(void **state)
{
	assert_int_equal(parse("--net", "user", "--net", "user,host_loopback=on", "--net",
			       "user,host_loopback=off,hostfwd=tcp::1-:2",
			       NULL),
			 0);
	assert_false(cfg.nets[0].host_loopback);
	assert_true(cfg.nets[1].host_loopback);
	assert_false(cfg.nets[2].host_loopback);
	assert_string_equal(cfg.nets[2].hostfwd, "tcp::1-:2");
	assert_int_equal(parse("--net", "tap=tap0", NULL), 0);
	assert_false(cfg.nets[0].host_loopback);
	expect_err("tap=tap0,host_loopback=on",
		   "--net: host_loopback needs user (user-mode networking)");
	expect_err("user,host_loopback=maybe", "--net: host_loopback: 'maybe' is not on or off");
	expect_err("user,host_loopback=on,host_loopback=off", "--net: 'host_loopback' given twice");
}

static void test_errors(void **state)
{
	expect_err("mac=02:00:00:00:00:01", "--net: tap=NAME or user is required");
	expect_err("tap=a,user", "--net: 'user' is not key=value");
	expect_err("user,tap=a", "--net: give tap=NAME or user, not both");
	expect_err("bridge", "--net: unknown backend 'bridge' (expected tap=NAME or user)");
	expect_err("tap=tap0,colour=red",
		   "--net: unknown key 'colour' (expected tap, mac, mtu, id, passt, "
		   "host_loopback, hostfwd)");
	expect_err("tap=tap0,mac=02:00:00:00:00",
		   "--net: mac: '02:00:00:00:00' is not a MAC address (xx:xx:xx:xx:xx:xx)");
	expect_err("tap=tap0,mac=03:00:00:00:00:01",
		   "--net: mac: 03:00:00:00:00:01 is a multicast address");
	expect_err("tap=tap0,mtu=67", "--net: mtu: '67' is out of range (68-65535)");
	expect_err("user,mtu=65535", "--net: mtu: '65535' is out of range (68-65520)");
	expect_err("tap=tap0,passt=/run/passt.sock", "--net: passt needs user (user-mode networking)");
	expect_err("user,passt=run/passt.sock",
		   "--net: passt: 'run/passt.sock' is not an absolute path to passt's socket");
	expect_err("user,passt=/run/p.sock,hostfwd=tcp::1-:2",
		   "--net: hostfwd and host_loopback are for the passt kiln starts; give the "
		   "passt at passt=PATH its own -t, -u and --no-map-gw");
	expect_err("tap=tap0,mtu=lots", "--net: mtu: 'lots' is not a number");
	expect_err("tap=a:b",
		   "--net: tap: 'a:b' is not an interface name (1-15 bytes, no '/', ':' or spaces)");
	expect_err("tap=0123456789abcdef",
		   "--net: tap: '0123456789abcdef' is not an interface name (1-15 bytes, no '/', "
		   "':' or spaces)");
	expect_err("tap=tap0,id=a b",
		   "--net: id 'a b' may hold only letters, digits, '.', '_' and '-'");
	expect_err("tap=tap0,hostfwd=tcp::1-:2", "--net: hostfwd needs user (user-mode networking)");
	expect_err("user,hostfwd=tcp::2222",
		   "--net: hostfwd: 'tcp::2222' is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:"
		   "GUESTPORT (IPv4 addresses, ports 1-65535)");
	expect_err("user,hostfwd=tcp::1-:2,mtu=1500,hostfwd=tcp::3-:4",
		   "--net: 'hostfwd' given twice");
	expect_err("user,tap", "--net: 'tap' is not key=value");

	assert_int_equal(parse("--net", "tap=t0,id=x", "--net", "user,id=x", NULL), -EINVAL);
	assert_string_equal(err, "--net: duplicate id 'x'");
	assert_int_equal(parse("--net", "tap=t0", "--net", "tap=t0", NULL), -EINVAL);
	assert_string_equal(err, "--net: tap 't0' is already used by another --net");
	assert_int_equal(parse("--net", "user", "--net", "user", "--net", "user", "--net", "user",
			       "--net", "user", "--net", "user", "--net", "user", "--net", "user",
			       "--net", "user", NULL),
			 -EINVAL);
	assert_string_equal(err, "--net: at most 8 network interfaces");
	assert_int_equal(cfg.nr_nets, 0); /* nothing kept on error */
}

/* The same rules hold for a config built elsewhere (API, config file). */
static void test_validate(void **state)
{
	struct vm_config c;

	vm_config_init(&c);
	c.nr_nets = 1;
	strcpy(c.nets[0].id, "n");
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "net 'n': needs exactly one of tap=NAME or user");
	c.nets[0].user = true;
	c.nets[0].mtu = 65535;
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "net 'n': mtu 65535 is out of range (68-65520)");
	c.nets[0].mtu = 0;
	c.nets[0].hostfwd = "tcp::1-2";
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "net 'n': hostfwd: 'tcp::1-2' is not"));
	c.nets[0].hostfwd = NULL;
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), 0);
	c.nets[0].host_loopback = true;
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), 0);
	c.nets[0].passt = "/run/passt.sock";
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "net 'n': hostfwd and host_loopback are options of the passt"));
	c.nets[0].host_loopback = false;
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), 0);
	c.nets[0].passt = NULL;
	c.nets[0].host_loopback = true;
	c.nets[0].user = false;
	c.nets[0].tap = "tap0";
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "net 'n': host_loopback needs user-mode networking");
	c.nets[0].tap = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tap),
	    cmocka_unit_test(test_user_and_ids),
	    cmocka_unit_test(test_user_passt_socket),
	    cmocka_unit_test(test_hostfwd_lists),
	    cmocka_unit_test(test_host_loopback),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_validate),
	};
	int ret = cmocka_run_group_tests(tests, NULL, NULL);

	vm_config_free(&cfg);
	return ret;
}
