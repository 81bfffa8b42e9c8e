/* test_config_state.c: the snapshot's CONFIG and MEMORY sections: round trips, every
 * truncation, hostile values with their exact error lines, restore-time overrides. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/api.h"
#include "config.h"
#include "snapshot/config_state.h"
#include "vmm/memory.h"

static char *dup_s(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

static void add_disk(struct vm_config *c, const char *id, const char *path)
{
	struct disk_config *d = &c->disks[c->nr_disks++];

	snprintf(d->id, sizeof(d->id), "%s", id);
	d->path = dup_s(path);
}

static struct net_config *add_net(struct vm_config *c, const char *id, const char *tap)
{
	struct net_config *n = &c->nets[c->nr_nets++];

	snprintf(n->id, sizeof(n->id), "%s", id);
	if (tap)
		n->tap = dup_s(tap);
	else
		n->user = true;
	return n;
}

/* Every field set, every enum value used: 3 disks, 2 TAP and 2 user-mode interfaces. */
static void full_config(struct vm_config *c)
{
	struct net_config *n;

	vm_config_init(c);
	c->cpus = 4;
	c->mem_size = 4ULL << 30; /* above the hole: two regions */
	c->rng = false;
	c->serial_mode = SERIAL_FILE;
	c->serial_path = dup_s("/tmp/serial.log");
	c->console_mode = SERIAL_STDIO;
	c->kernel_path = dup_s("/boot/vmlinux");
	c->cmdline = dup_s("console=ttyS0");
	add_disk(c, "root", "/images/root.img");
	c->disks[0].is_root = true;
	c->disks[0].engine = DISK_ENGINE_URING;
	add_disk(c, "data.1", "relative/data.img");
	snprintf(c->disks[1].serial, sizeof(c->disks[1].serial), "SN-0123456789abcdefg");
	c->disks[1].readonly = true;
	c->disks[1].engine = DISK_ENGINE_SYNC;
	c->disks[1].cache = DISK_CACHE_UNSAFE;
	add_disk(c, "scratch_2", "/dev/vdz");
	n = add_net(c, "eth0", "tap0");
	memcpy(n->mac, "\x02\x11\x22\x33\x44\x55", 6);
	n->mac_set = true;
	n = add_net(c, "eth1", "kiln-tap.1");
	n->mtu = 9000;
	n = add_net(c, "user0", NULL);
	n->hostfwd = dup_s("tcp:127.0.0.1:2222-:22,udp::5353-10.0.2.15:53");
	n->host_loopback = true;
	n->mtu = 65520;
	n = add_net(c, "user1", NULL);
	n->passt = dup_s("/run/passt.sock");
}

static void encode(const struct vm_config *c, struct snap_buf *b)
{
	snap_buf_init(b);
	config_state_encode(c, b);
	assert_int_equal(snap_buf_failed(b), 0);
}

/* Decode len bytes at p: the return value, err, and out empty on failure. */
static int decode(const void *p, size_t len, struct vm_config *out, char *err, size_t errlen)
{
	struct snap_cursor c;
	int ret;

	snap_cursor_init(&c, "config", p, len);
	ret = config_state_decode(&c, out, err, errlen);
	if (ret) {
		assert_true(c.bad);
		assert_int_equal(out->nr_disks, 0);
		assert_int_equal(out->nr_nets, 0);
		assert_null(out->serial_path);
	}
	return ret;
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (!b)
		assert_null(a);
	else
		assert_string_equal(a, b);
}

static void test_round_trip_full(void **state)
{
	struct vm_config c, d;
	struct snap_buf b, b2;
	char err[512];
	uint8_t mac[6];

	(void)state;
	full_config(&c);
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), 0);
	encode(&c, &b);
	assert_int_equal(decode(b.data, b.len, &d, err, sizeof(err)), 0);

	assert_int_equal(d.cpus, 4);
	assert_int_equal(d.mem_size, 4ULL << 30);
	assert_false(d.rng);
	/* Output paths are host state: the restoring process gives them. */
	assert_int_equal(d.serial_mode, SERIAL_STDIO);
	assert_null(d.serial_path);
	assert_int_equal(d.console_mode, SERIAL_STDIO);
	assert_null(d.kernel_path);
	assert_null(d.cmdline);
	assert_int_equal(d.nr_disks, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_string_equal(d.disks[i].id, c.disks[i].id);
		assert_string_equal(d.disks[i].path, c.disks[i].path);
		assert_string_equal(d.disks[i].serial, c.disks[i].serial);
		assert_int_equal(d.disks[i].readonly, c.disks[i].readonly);
		assert_int_equal(d.disks[i].is_root, c.disks[i].is_root);
		assert_int_equal(d.disks[i].engine, c.disks[i].engine);
		assert_int_equal(d.disks[i].cache, c.disks[i].cache);
	}
	assert_int_equal(d.disks[2].engine, DISK_ENGINE_DEFAULT);
	assert_int_equal(d.nr_nets, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_string_equal(d.nets[i].id, c.nets[i].id);
		assert_int_equal(d.nets[i].user, c.nets[i].user);
		assert_str_or_null(d.nets[i].tap, c.nets[i].tap);
		assert_str_or_null(d.nets[i].passt, c.nets[i].passt);
		assert_int_equal(d.nets[i].mtu, c.nets[i].mtu);
		assert_str_or_null(d.nets[i].hostfwd, c.nets[i].hostfwd);
		assert_int_equal(d.nets[i].host_loopback, c.nets[i].host_loopback);
		assert_true(d.nets[i].mac_set); /* the effective MAC, fixed */
	}
	assert_memory_equal(d.nets[0].mac, "\x02\x11\x22\x33\x44\x55", 6);
	vm_config_default_mac("eth1", mac);
	assert_memory_equal(d.nets[1].mac, mac, 6);

	/* Encoding what was decoded gives the same bytes. */
	encode(&d, &b2);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);
	snap_buf_free(&b2);
	snap_buf_free(&b);
	vm_config_free(&d);
	vm_config_free(&c);
}

static void test_round_trip_minimal(void **state)
{
	struct vm_config c, d;
	struct snap_buf b;
	char err[512];

	(void)state;
	vm_config_init(&c);
	c.serial_mode = SERIAL_OFF;
	encode(&c, &b);
	assert_int_equal(b.len, 4 + 8 + 3 + 4 + 4);
	assert_int_equal(decode(b.data, b.len, &d, err, sizeof(err)), 0);
	assert_int_equal(d.cpus, VM_CONFIG_DEFAULT_CPUS);
	assert_int_equal(d.mem_size, VM_CONFIG_DEFAULT_MEM);
	assert_true(d.rng);
	assert_int_equal(d.serial_mode, SERIAL_OFF);
	assert_int_equal(d.console_mode, SERIAL_OFF);
	assert_int_equal(d.nr_disks + d.nr_nets, 0);
	snap_buf_free(&b);
	vm_config_free(&d);
}

/* Every strict prefix is a clean "truncated" error with nothing left allocated (ASan). */
static void test_truncations(void **state)
{
	struct vm_config c, d;
	struct snap_buf b;
	char err[512];

	(void)state;
	full_config(&c);
	encode(&c, &b);
	for (size_t len = 0; len < b.len; len++) {
		uint8_t *copy = malloc(len ? len : 1); /* exactly len bytes: ASan sees overreads */

		assert_non_null(copy);
		memcpy(copy, b.data, len);
		assert_int_equal(decode(copy, len, &d, err, sizeof(err)), -EINVAL);
		assert_true(!strncmp(err, "section 'config': ", 18));
		assert_non_null(strstr(err, ": truncated: "));
		free(copy);
	}
	assert_int_equal(decode(b.data, 0, &d, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "section 'config': cpus: truncated: 4 bytes wanted at byte 0 of 0");
	assert_int_equal(decode(b.data, 24, &d, err, sizeof(err)), -EINVAL);
	assert_string_equal(
	    err, "section 'config': disks[0].id: truncated: 4 bytes wanted at byte 23 of 24");

	/* And one byte too many. */
	snap_put_u8(&b, 0);
	assert_int_equal(decode(b.data, b.len, &d, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'config': 1 bytes left over");
	snap_buf_free(&b);
	vm_config_free(&c);
}

/* A config with one disk and one TAP interface, for the hostile cases to spoil. */
static void small_config(struct vm_config *c)
{
	vm_config_init(c);
	add_disk(c, "d0", "/d0.img");
	add_net(c, "n0", "tap0");
}

static void expect_config(struct vm_config *c, const char *want)
{
	struct vm_config d;
	struct snap_buf b;
	char err[512];

	encode(c, &b);
	assert_int_equal(decode(b.data, b.len, &d, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	snap_buf_free(&b);
	vm_config_free(c);
}

static void expect_bytes(const struct snap_buf *b, const char *want)
{
	struct vm_config d;
	char err[512];

	assert_int_equal(decode(b->data, b->len, &d, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
}

static void test_hostile_values(void **state)
{
	struct vm_config c;
	char *big;

	(void)state;
	small_config(&c);
	c.cpus = 0;
	expect_config(&c, "section 'config': cpus: 0 is out of range (1-32)");
	small_config(&c);
	c.mem_size = (1ULL << 40) + 4096;
	expect_config(&c, "section 'config': memory: 1099511631872 bytes is more than this kiln "
			  "lays out");
	small_config(&c);
	c.mem_size = 1000;
	expect_config(&c, "section 'config': memory: 1000 bytes is below the 64 MiB minimum");

	small_config(&c);
	add_disk(&c, "d1", "/x");
	big = malloc(5001);
	assert_non_null(big);
	memset(big, 'a', 5000);
	big[5000] = '\0';
	free(c.disks[1].path);
	c.disks[1].path = big;
	expect_config(&c, "section 'config': disks[1].path: 5000 bytes (at most 4095)");
	small_config(&c);
	add_disk(&c, "d1", "");
	expect_config(&c, "section 'config': disks[1].path: empty");
	small_config(&c);
	snprintf(c.disks[0].id, sizeof(c.disks[0].id), "a b");
	expect_config(&c, "section 'config': disks[0].id: empty, or not only letters, digits, "
			  "'.', '_' and '-'");
	small_config(&c);
	add_disk(&c, "d0", "/other");
	expect_config(&c, "section 'config': disks[1].id: 'd0' is also disks[0]'s");
	small_config(&c);
	snprintf(c.disks[0].serial, sizeof(c.disks[0].serial), "x\ty");
	expect_config(&c, "section 'config': disks[0].serial: not printable ASCII");
	small_config(&c);
	add_disk(&c, "d1", "/d1");
	c.disks[0].is_root = c.disks[1].is_root = true;
	expect_config(&c,
		      "section 'config': disks[1].is_root: disks[0] is the root device already");
	small_config(&c);
	c.disks[0].engine = (enum disk_engine)7;
	expect_config(&c, "section 'config': disks[0].engine: 7 is not an engine (0-2)");
	small_config(&c);
	c.disks[0].cache = (enum disk_cache)2;
	expect_config(&c, "section 'config': disks[0].cache: 2 is not a cache mode (0-1)");

	small_config(&c);
	c.nets[0].user = true;
	expect_config(&c, "section 'config': nets[0].tap: set on a user-mode interface");
	small_config(&c);
	free(c.nets[0].tap);
	c.nets[0].tap = NULL;
	expect_config(&c, "section 'config': nets[0].tap: empty on a TAP interface");
	small_config(&c);
	free(c.nets[0].tap);
	c.nets[0].tap = dup_s("a/b");
	expect_config(&c, "section 'config': nets[0].tap: not a valid interface name");
	small_config(&c);
	free(c.nets[0].tap);
	c.nets[0].tap = dup_s("tap-name-of-20-bytes");
	expect_config(&c, "section 'config': nets[0].tap: 20 bytes (at most 15)");
	small_config(&c);
	add_net(&c, "n1", NULL)->passt = dup_s("passt.sock");
	expect_config(&c, "section 'config': nets[1].passt: not an absolute path");
	small_config(&c);
	add_net(&c, "n1", NULL)->hostfwd = dup_s("bogus");
	expect_config(&c, "section 'config': nets[1].hostfwd: hostfwd: 'bogus' does not start "
			  "with tcp: or udp: (expected tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:"
			  "GUESTPORT)");
	small_config(&c);
	add_net(&c, "n1", NULL)->hostfwd = dup_s("tcp::1-:2\n");
	expect_config(&c, "section 'config': nets[1].hostfwd: not printable ASCII");
	small_config(&c);
	c.nets[0].mac_set = true;
	memcpy(c.nets[0].mac, "\x01\x00\x5e\x00\x00\x01", 6);
	expect_config(&c, "section 'config': net 'n0': mac is a multicast address");
	small_config(&c);
	c.nets[0].mtu = 70000;
	expect_config(&c, "section 'config': net 'n0': mtu 70000 is out of range (68-65535)");
	small_config(&c);
	add_net(&c, "n0", "tap1");
	expect_config(&c, "section 'config': net 'n0': duplicate id");
	small_config(&c);
	c.nets[0].hostfwd = dup_s("tcp::1-:2");
	expect_config(&c, "section 'config': net 'n0': hostfwd needs user-mode networking");
}

/* Values a config cannot hold, written into the bytes. Offsets: cpus 0, mem_size 4, rng 12,
 * serial_out 13, console 14, nr_disks 15, then disks[0].id's length at 19. */
static void test_hostile_bytes(void **state)
{
	struct vm_config c;
	struct snap_buf b;
	uint8_t *p;

	(void)state;
	vm_config_init(&c);
	encode(&c, &b);
	b.data[12] = 2;
	expect_bytes(&b, "section 'config': rng: 2 is not a flag (0 or 1)");
	b.data[12] = 1;
	b.data[15] = 17;
	expect_bytes(&b, "section 'config': nr_disks: 17 (at most 16)");
	b.data[15] = 0;
	b.data[19] = 9;
	expect_bytes(&b, "section 'config': nr_nets: 9 (at most 8)");
	b.data[22] = 0xff; /* u32 0xff000009 */
	expect_bytes(&b, "section 'config': nr_nets: 4278190089 (at most 8)");
	snap_buf_free(&b);
	vm_config_free(&c);

	small_config(&c);
	snprintf(c.disks[0].id, sizeof(c.disks[0].id), "dXa");
	encode(&c, &b);
	p = memmem(b.data, b.len, "dXa", 3);
	assert_non_null(p);
	p[1] = 0;
	expect_bytes(&b, "section 'config': disks[0].id: a NUL byte inside (byte 1 of 3)");
	b.data[19] = 64;
	expect_bytes(&b, "section 'config': disks[0].id: 64 bytes (at most 63)");
	b.data[19] = 0xff;
	b.data[22] = 0xff;
	expect_bytes(&b, "section 'config': disks[0].id: 4278190335 bytes (at most 63)");
	snap_buf_free(&b);
	vm_config_free(&c);

	small_config(&c);
	encode(&c, &b);
	p = memmem(b.data, b.len, "tap0", 4);
	assert_non_null(p);
	p[-5] = 3; /* nets[0].user */
	expect_bytes(&b, "section 'config': nets[0].user: 3 is not a flag (0 or 1)");
	snap_buf_free(&b);
	vm_config_free(&c);
}

static void test_override_net(void **state)
{
	struct vm_config c;
	char err[256];

	(void)state;
	full_config(&c);
	assert_int_equal(config_state_override_net(&c, "eth1", "tap9", err, sizeof(err)), 0);
	assert_string_equal(c.nets[1].tap, "tap9");
	assert_string_equal(c.nets[0].tap, "tap0");
	/* Swapping two TAPs: only the end result is validated. */
	assert_int_equal(config_state_override_net(&c, "eth0", "tap9", err, sizeof(err)), 0);
	assert_int_not_equal(vm_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(config_state_override_net(&c, "eth1", "tap0", err, sizeof(err)), 0);
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), 0);

	assert_int_equal(config_state_override_net(&c, "eth9", "tap1", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "network_overrides: no interface 'eth9' in the snapshot");
	assert_int_equal(config_state_override_net(&c, "user0", "tap1", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "network_overrides: interface 'user0' uses user-mode networking: "
				 "it has no TAP (host_dev_name) to replace");
	assert_null(c.nets[2].tap);
	assert_int_equal(config_state_override_net(&c, "eth0", "a:b", err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "network_overrides: interface 'eth0': host_dev_name is not a valid "
			    "interface name (1-15 bytes, no '/', ':', spaces or control bytes)");
	assert_string_equal(c.nets[0].tap, "tap9");
	vm_config_free(&c);
}

/* After a load, GET /vm/config shows the snapshot's configuration with the overrides: what
 * control.c does with the decoded CONFIG section, and the JSON it then exports. */
static void test_restored_vm_config(void **state)
{
	struct vm_config c, dec, shown;
	struct api_config api;
	struct snap_buf b;
	char err[256];

	(void)state;
	full_config(&c);
	encode(&c, &b);
	assert_int_equal(decode(b.data, b.len, &dec, err, sizeof(err)), 0);
	assert_int_equal(config_state_override_net(&dec, "eth1", "tap9", err, sizeof(err)), 0);
	assert_int_equal(api_vm_config_copy(&shown, &dec), 0);

	api_config_init(&api);
	api.metrics_path = dup_s("/tmp/metrics.json");
	api_config_take_restored(&api, &shown, true);
	assert_int_equal(shown.nr_disks, 0); /* taken over */
	char *json = api_export_config(&api);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"vcpu_count\":4"));
	assert_non_null(strstr(json, "\"mem_size_mib\":4096"));
	assert_non_null(strstr(json, "\"track_dirty_pages\":true"));
	assert_non_null(strstr(json, "\"path_on_host\":\"/images/root.img\""));
	assert_non_null(strstr(json, "\"path_on_host\":\"relative/data.img\""));
	assert_non_null(strstr(json, "\"drive_id\":\"scratch_2\""));
	/* The override, and the MACs: given, or the default one the snapshot recorded. */
	assert_non_null(strstr(json, "\"host_dev_name\":\"tap9\""));
	assert_null(strstr(json, "kiln-tap.1"));
	assert_non_null(strstr(json, "\"guest_mac\":\"02:11:22:33:44:55\""));
	assert_non_null(strstr(json, "\"mtu\":9000"));
	/* Not in a snapshot, so not shown: the kernel, the serial output; no entropy device. */
	assert_null(strstr(json, "boot-source"));
	assert_null(strstr(json, "vmlinux"));
	assert_null(strstr(json, "serial"));
	assert_null(strstr(json, "entropy"));
	/* What the process had before the load stays. */
	assert_non_null(strstr(json, "\"metrics_path\":\"/tmp/metrics.json\""));
	print_message("%s\n", json);
	free(json);
	api_config_free(&api);
	vm_config_free(&shown);
	vm_config_free(&dec);
	vm_config_free(&c);
	snap_buf_free(&b);
}

static void test_override_disk(void **state)
{
	struct vm_config c;
	char err[256], big[CONFIG_STATE_STR_MAX + 2];

	(void)state;
	full_config(&c);
	assert_int_equal(
	    config_state_override_disk(&c, "data.1", "/new/data.img", err, sizeof(err)), 0);
	assert_string_equal(c.disks[1].path, "/new/data.img");
	assert_int_equal(config_state_override_disk(&c, "nope", "/x", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "drive_overrides: no drive 'nope' in the snapshot");
	assert_int_equal(config_state_override_disk(&c, "root", "", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "drive_overrides: drive 'root': path_on_host of 0 bytes (1-4095)");
	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(config_state_override_disk(&c, "root", big, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "drive_overrides: drive 'root': path_on_host of 4096 bytes (1-4095)");
	assert_string_equal(c.disks[0].path, "/images/root.img");
	vm_config_free(&c);
}

static void test_set_output(void **state)
{
	struct vm_config c;
	char err[256];

	(void)state;
	vm_config_init(&c); /* serial STDIO, no console */
	assert_int_equal(
	    config_state_set_output(&c, false, SERIAL_FILE, "/tmp/s.log", err, sizeof(err)), 0);
	assert_int_equal(c.serial_mode, SERIAL_FILE);
	assert_string_equal(c.serial_path, "/tmp/s.log");
	assert_int_equal(vm_config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(config_state_set_output(&c, false, SERIAL_OFF, NULL, err, sizeof(err)), 0);
	assert_int_equal(c.serial_mode, SERIAL_OFF);
	assert_null(c.serial_path);

	assert_int_equal(config_state_set_output(&c, true, SERIAL_STDIO, NULL, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err,
			    "console: the snapshot's VM has no virtio-console to give output to");
	assert_int_equal(c.console_mode, SERIAL_OFF);
	c.console_mode = SERIAL_STDIO;
	assert_int_equal(config_state_set_output(&c, true, SERIAL_OFF, NULL, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "console: cannot be off: the snapshot's VM has a virtio-console");
	assert_int_equal(config_state_set_output(&c, true, SERIAL_FILE, NULL, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "console: file output needs a path");
	assert_int_equal(config_state_set_output(&c, false, SERIAL_STDIO, "/x", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "serial: a path is only for file output");
	assert_int_equal(
	    config_state_set_output(&c, false, (enum serial_mode)9, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "serial: unknown mode 9");
	assert_int_equal(c.serial_mode, SERIAL_OFF);
	assert_int_equal(config_state_set_output(&c, true, SERIAL_FILE, "/tmp/c", err, sizeof(err)),
			 0);
	assert_string_equal(c.console_path, "/tmp/c");
	vm_config_free(&c);
}

/* ---- MEMORY ------------------------------------------------------------------------------ */

static int check_layout(const struct snap_buf *b, size_t len, uint64_t ram, char *err,
			size_t errlen)
{
	struct guest_mem want;
	struct snap_cursor c;

	assert_int_equal(guest_mem_layout(&want, ram), 0);
	snap_cursor_init(&c, "memory", b->data, len);
	return memory_layout_check(&c, &want, err, errlen);
}

static void test_layout(void **state)
{
	static const uint64_t sizes[] = {64ULL << 20, 512ULL << 20, 3ULL << 30, 4ULL << 30,
					 (64ULL << 30) + 4096};
	struct guest_mem m;
	struct snap_buf b;
	char err[256];

	(void)state;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(guest_mem_layout(&m, sizes[i]), 0);
		snap_buf_init(&b);
		memory_layout_encode(&m, &b);
		assert_int_equal(b.len, 12 + 16 * m.nr_regions);
		assert_int_equal(check_layout(&b, b.len, sizes[i], err, sizeof(err)), 0);
		for (size_t len = 0; len < b.len; len++) {
			assert_int_equal(check_layout(&b, len, sizes[i], err, sizeof(err)),
					 -EINVAL);
			assert_non_null(strstr(err, "section 'memory': truncated: "));
		}
		snap_buf_free(&b);
	}

	/* A snapshot of another size. */
	assert_int_equal(guest_mem_layout(&m, 4ULL << 30), 0);
	snap_buf_init(&b);
	memory_layout_encode(&m, &b);
	assert_int_equal(check_layout(&b, b.len, 512ULL << 20, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'memory': ram_size: 4294967296 bytes, but the "
				 "configuration's memory is 536870912 bytes");
	snap_buf_free(&b);

	/* Another memory map: the high region elsewhere, or one region fewer. */
	m.regions[1].gpa = 0x200000000ULL;
	snap_buf_init(&b);
	memory_layout_encode(&m, &b);
	assert_int_equal(check_layout(&b, b.len, 4ULL << 30, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'memory': regions[1]: gpa 0x200000000 size 0x40000000, "
				 "but this kiln lays out gpa 0x100000000 size 0x40000000 (another "
				 "memory map)");
	snap_buf_free(&b);
	m.nr_regions = 1;
	snap_buf_init(&b);
	memory_layout_encode(&m, &b);
	assert_int_equal(check_layout(&b, b.len, 4ULL << 30, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
			    "section 'memory': 1 regions, but this kiln lays out 2 (a snapshot "
			    "of a kiln with another memory map)");
	snap_buf_free(&b);

	/* Hostile counts and left-over bytes. */
	snap_buf_init(&b);
	snap_put_u64(&b, 4ULL << 30);
	snap_put_u32(&b, 5);
	assert_int_equal(check_layout(&b, b.len, 4ULL << 30, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'memory': nr_regions: 5 (at most 4)");
	snap_buf_free(&b);
	assert_int_equal(guest_mem_layout(&m, 512ULL << 20), 0);
	snap_buf_init(&b);
	memory_layout_encode(&m, &b);
	snap_put_u8(&b, 0);
	assert_int_equal(check_layout(&b, b.len, 512ULL << 20, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'memory': 1 bytes left over");
	snap_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_full),    cmocka_unit_test(test_round_trip_minimal),
	    cmocka_unit_test(test_truncations),	       cmocka_unit_test(test_hostile_values),
	    cmocka_unit_test(test_hostile_bytes),      cmocka_unit_test(test_override_net),
	    cmocka_unit_test(test_restored_vm_config), cmocka_unit_test(test_override_disk),
	    cmocka_unit_test(test_set_output),	       cmocka_unit_test(test_layout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
