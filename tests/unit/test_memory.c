/* test_memory.c: guest RAM layout around the MMIO hole and the gpa bounds helper. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "vmm/memory.h"

static void layout_small(void **state)
{
	struct guest_mem m;
	(void)state;
	assert_int_equal(guest_mem_layout(&m, 256 * MiB), 0);
	assert_int_equal(m.nr_regions, 1);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, 256 * MiB);
	assert_int_equal(guest_mem_low_end(&m), 256 * MiB);
	assert_int_equal(m.ram_size, 256 * MiB);
}

static void layout_hole(void **state)
{
	struct guest_mem m;
	(void)state;
	assert_int_equal(guest_mem_layout(&m, 6 * GiB), 0);
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(m.regions[0].size, LAYOUT_MMIO_HOLE_START);
	assert_int_equal(m.regions[1].gpa, LAYOUT_RAM_ABOVE_4G);
	assert_int_equal(m.regions[1].size, 6 * GiB - LAYOUT_MMIO_HOLE_START);
	assert_int_equal(guest_mem_low_end(&m), LAYOUT_MMIO_HOLE_START);
	/* Exactly the hole size below 4G: one region. */
	assert_int_equal(guest_mem_layout(&m, LAYOUT_MMIO_HOLE_START), 0);
	assert_int_equal(m.nr_regions, 1);
}

static void layout_rejects(void **state)
{
	struct guest_mem m;
	(void)state;
	assert_int_equal(guest_mem_layout(&m, 0), -EINVAL);
	assert_int_equal(guest_mem_layout(&m, 64 * MiB + 1), -EINVAL);
	assert_int_equal(guest_mem_layout(&m, UINT64_MAX & ~4095ULL), -EINVAL);
}

static void translate_bounds(void **state)
{
	struct guest_mem m;
	(void)state;
	assert_int_equal(guest_mem_init(&m, 64 * MiB), 0);
	uint8_t *base = m.regions[0].hva;

	assert_ptr_equal(gpa_to_hva(&m, 0, 1), base);
	assert_ptr_equal(gpa_to_hva(&m, 4096, 4096), base + 4096);
	assert_ptr_equal(gpa_to_hva(&m, 64 * MiB - 1, 1), base + 64 * MiB - 1);
	assert_ptr_equal(gpa_to_hva(&m, 0, 64 * MiB), base);
	/* len 0 is treated as 1 */
	assert_ptr_equal(gpa_to_hva(&m, 64 * MiB - 1, 0), base + 64 * MiB - 1);
	assert_null(gpa_to_hva(&m, 64 * MiB, 0));
	/* One byte past the end, in the middle, or spanning the end. */
	assert_null(gpa_to_hva(&m, 64 * MiB, 1));
	assert_null(gpa_to_hva(&m, 64 * MiB - 1, 2));
	assert_null(gpa_to_hva(&m, 0, 64 * MiB + 1));
	/* Overflow of gpa + len. */
	assert_null(gpa_to_hva(&m, UINT64_MAX, 1));
	assert_null(gpa_to_hva(&m, UINT64_MAX, 2));
	assert_null(gpa_to_hva(&m, 1, UINT64_MAX));
	assert_null(gpa_to_hva(&m, 4096, UINT64_MAX - 4095));
	assert_true(gpa_range_ok(&m, 0, 64 * MiB));
	assert_false(gpa_range_ok(&m, 0xfee00000, 4));
	/* Writable */
	base[123] = 0x5a;
	assert_int_equal(*(uint8_t *)gpa_to_hva(&m, 123, 1), 0x5a);
	guest_mem_destroy(&m);
}

static void translate_hole(void **state)
{
	struct guest_mem m;
	(void)state;
	/* Layout only (no host mapping): range checks still answer. */
	assert_int_equal(guest_mem_layout(&m, 4 * GiB), 0);
	assert_true(gpa_range_ok(&m, LAYOUT_MMIO_HOLE_START - 4096, 4096));
	assert_false(gpa_range_ok(&m, LAYOUT_MMIO_HOLE_START - 4096, 4097));
	assert_false(gpa_range_ok(&m, LAYOUT_MMIO_HOLE_START, 1));
	assert_false(gpa_range_ok(&m, LAYOUT_RAM_ABOVE_4G - 1, 2));
	assert_true(gpa_range_ok(&m, LAYOUT_RAM_ABOVE_4G, 1 * GiB));
	assert_false(gpa_range_ok(&m, LAYOUT_RAM_ABOVE_4G, 1 * GiB + 1));
	/* No hva in layout-only mode */
	assert_null(gpa_to_hva(&m, 0, 1));
}

static void translate_high_mapping(void **state)
{
	struct guest_mem m;
	(void)state;
	/* MAP_NORESERVE: 4 GiB + 64 MiB costs nothing until touched. */
	assert_int_equal(guest_mem_init(&m, 3 * GiB + 64 * MiB), 0);
	assert_int_equal(m.nr_regions, 2);
	uint8_t *hi = gpa_to_hva(&m, LAYOUT_RAM_ABOVE_4G, 1);
	assert_non_null(hi);
	assert_ptr_equal(hi, m.regions[0].hva + LAYOUT_MMIO_HOLE_START);
	*hi = 7;
	assert_int_equal(m.base[LAYOUT_MMIO_HOLE_START], 7);
	assert_null(gpa_to_hva(&m, LAYOUT_RAM_ABOVE_4G + 64 * MiB, 1));
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layout_small),	  cmocka_unit_test(layout_hole),
		cmocka_unit_test(layout_rejects), cmocka_unit_test(translate_bounds),
		cmocka_unit_test(translate_hole), cmocka_unit_test(translate_high_mapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
