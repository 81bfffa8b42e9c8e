/* test_snapstate.c: the snapshot section writer and its bounds-checked reader. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "snapshot/state.h"

static void test_round_trip(void **state)
{
	struct snap_buf b;
	struct snap_cursor c;
	uint8_t raw[3] = {7, 8, 9}, back[3];
	uint32_t n;
	char err[200];
	(void)state;

	snap_buf_init(&b);
	snap_put_u8(&b, 0xab);
	snap_put_u16(&b, 0x1234);
	snap_put_u32(&b, 0xdeadbeef);
	snap_put_u64(&b, 0x0102030405060708ULL);
	snap_put_bool(&b, true);
	snap_put_bytes(&b, raw, sizeof(raw));
	snap_put_blob(&b, "hello", 5);
	assert_int_equal(snap_buf_failed(&b), 0);
	/* Little-endian on the wire. */
	assert_int_equal(b.data[1], 0x34);
	assert_int_equal(b.data[2], 0x12);

	snap_cursor_init(&c, "test", b.data, b.len);
	assert_int_equal(snap_get_u8(&c), 0xab);
	assert_int_equal(snap_get_u16(&c), 0x1234);
	assert_int_equal(snap_get_u32(&c), 0xdeadbeef);
	assert_true(snap_get_u64(&c) == 0x0102030405060708ULL);
	assert_true(snap_get_bool(&c));
	snap_get_bytes(&c, back, sizeof(back));
	assert_memory_equal(back, raw, sizeof(raw));
	const char *blob = snap_get_blob(&c, 16, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(blob, "hello", 5);
	assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), 0);
	snap_buf_free(&b);
}

static void test_truncated(void **state)
{
	uint8_t two[2] = {1, 2};
	struct snap_cursor c;
	char err[200];
	(void)state;

	snap_cursor_init(&c, "vcpu 1", two, sizeof(two));
	assert_int_equal(snap_get_u32(&c), 0);
	assert_true(c.bad);
	assert_int_equal(snap_get_u8(&c), 0); /* sticky */
	assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'vcpu 1': truncated: 4 bytes wanted at byte 0 of 2");
}

static void test_left_over_and_flags(void **state)
{
	uint8_t bytes[3] = {2, 0, 0};
	struct snap_cursor c;
	char err[200];
	(void)state;

	snap_cursor_init(&c, "serial", bytes, sizeof(bytes));
	(void)snap_get_bool(&c);
	assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'serial': byte 0: a flag of 2 (0 or 1 expected)");

	snap_cursor_init(&c, "serial", bytes + 1, 2);
	(void)snap_get_u8(&c);
	assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'serial': 1 bytes left over");
}

static void test_blob_limits(void **state)
{
	struct snap_buf b;
	struct snap_cursor c;
	uint32_t n = 99;
	char err[200];
	(void)state;

	snap_buf_init(&b);
	snap_put_blob(&b, "0123456789", 10);
	snap_cursor_init(&c, "cpuid", b.data, b.len);
	assert_null(snap_get_blob(&c, 9, &n));
	assert_int_equal(n, 0);
	assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section 'cpuid': byte 0: a block of 10 bytes (at most 9)");
	/* A length that claims more than the section holds. */
	b.data[0] = 0xff;
	b.data[1] = 0xff;
	snap_cursor_init(&c, "cpuid", b.data, b.len);
	assert_null(snap_get_blob(&c, UINT32_MAX, &n));
	assert_true(c.bad);
	snap_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_left_over_and_flags),
		cmocka_unit_test(test_blob_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
