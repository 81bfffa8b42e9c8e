/* test_bus.c: interval bus registration, overlap rejection and dispatch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/bus.h"

struct rec {
	uint64_t offset;
	uint32_t len;
	bool is_write;
	int calls;
	uint8_t val;
};

static void dev_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rec *r = opaque;
	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	r->calls++;
	if (is_write)
		r->val = data[0];
	else
		memset(data, r->val, len);
}

static void register_and_dispatch(void **state)
{
	struct bus b;
	struct rec a = { .val = 0x11 }, c = { .val = 0x22 };
	uint8_t d[4];
	(void)state;

	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0x3f8, 8, dev_io, &a, "serial"), 0);
	assert_int_equal(bus_register(&b, 0x60, 1, dev_io, &c, "i8042"), 0);
	assert_true(bus_access(&b, 0x3fd, d, 1, false));
	assert_int_equal(a.offset, 5);
	assert_int_equal(d[0], 0x11);
	d[0] = 0x99;
	assert_true(bus_access(&b, 0x60, d, 1, true));
	assert_int_equal(c.val, 0x99);
	assert_int_equal(c.offset, 0);
	/* Edges */
	assert_true(bus_access(&b, 0x3f8, d, 1, false));
	assert_true(bus_access(&b, 0x3ff, d, 1, false));
	assert_false(bus_access(&b, 0x400, d, 4, false));
	assert_int_equal(d[0], 0xff);
	assert_int_equal(d[3], 0xff);
	assert_false(bus_access(&b, 0x3f7, d, 1, true));
	assert_false(bus_access(&b, 0x61, d, 1, false));
	assert_int_equal(a.calls, 3);
	bus_destroy(&b);
}

static void overlap_rejected(void **state)
{
	struct bus b;
	struct rec a = { 0 };
	(void)state;
	bus_init(&b, "mmio");
	assert_int_equal(bus_register(&b, 0x1000, 0x100, dev_io, &a, "x"), 0);
	assert_int_equal(bus_register(&b, 0x10ff, 1, dev_io, &a, "y"), -EEXIST);
	assert_int_equal(bus_register(&b, 0xf01, 0x100, dev_io, &a, "y"), -EEXIST);
	assert_int_equal(bus_register(&b, 0x0, 0x10000, dev_io, &a, "y"), -EEXIST);
	assert_int_equal(bus_register(&b, 0xf00, 0x100, dev_io, &a, "y"), 0);
	assert_int_equal(bus_register(&b, 0x1100, 0x100, dev_io, &a, "z"), 0);
	assert_int_equal(bus_register(&b, 0x2000, 0, dev_io, &a, "z"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 2, dev_io, &a, "z"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX, 1, dev_io, &a, "top"), 0);
	assert_int_equal(bus_register(&b, 0x3000, 1, NULL, &a, "z"), -EINVAL);
	assert_int_equal(b.nr, 4);
	bus_destroy(&b);
}

static void many_ranges_sorted(void **state)
{
	struct bus b;
	static struct rec recs[100];
	uint8_t d;
	(void)state;
	bus_init(&b, "mmio");
	/* Insert in a scrambled order; lookup must find every one. */
	for (unsigned i = 0; i < 100; i++) {
		unsigned k = (i * 37) % 100;
		recs[k].val = (uint8_t)k;
		assert_int_equal(bus_register(&b, 0x10000 + k * 0x100, 0x80, dev_io, &recs[k], "r"),
				 0);
	}
	for (unsigned k = 0; k < 100; k++) {
		assert_true(bus_access(&b, 0x10000 + k * 0x100 + 0x7f, &d, 1, false));
		assert_int_equal(d, k);
		assert_false(bus_access(&b, 0x10000 + k * 0x100 + 0x80, &d, 1, false));
	}
	for (unsigned k = 1; k < b.nr; k++)
		assert_true(b.ranges[k - 1].base < b.ranges[k].base);
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(register_and_dispatch),
		cmocka_unit_test(overlap_rejected),
		cmocka_unit_test(many_ranges_sorted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
