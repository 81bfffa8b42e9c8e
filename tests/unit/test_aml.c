/* test_aml.c: AML builder output checked against bytes worked out by hand from ACPI 6.5 ch. 20. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/aml.h"

#define B(...) ((const uint8_t[]){__VA_ARGS__})
#define NB(...) sizeof((const uint8_t[]){__VA_ARGS__})
/* Finish a, compare with the literal byte list, free a. */
#define EXPECT(a, ...) expect_bytes((a), B(__VA_ARGS__), NB(__VA_ARGS__))

static void expect_bytes(struct aml *a, const uint8_t *exp, size_t n)
{
	assert_int_equal(aml_finish(a), 0);
	assert_int_equal(aml_len(a), n);
	assert_memory_equal(aml_data(a), exp, n);
	aml_destroy(a);
}

static void expect_error(struct aml *a, int err)
{
	assert_int_equal(aml_finish(a), err);
	aml_destroy(a);
}

/* PkgLength: one byte up to 63, then 2, 3, 4 bytes with the count in bits 7:6. */
static void test_pkglength_boundaries(void **state)
{
	uint8_t out[4];

	(void)state;
	assert_int_equal(aml_pkglength_encode(out, 0), 1);
	assert_int_equal(out[0], 0x01);
	/* total 63: the largest one-byte length */
	assert_int_equal(aml_pkglength_encode(out, 62), 1);
	assert_int_equal(out[0], 0x3f);
	/* body 63: one byte would be 64, too big; two bytes make 65 = 0x041 */
	assert_int_equal(aml_pkglength_encode(out, 63), 2);
	assert_memory_equal(out, B(0x41, 0x04), 2);
	/* total 4095 = 0xfff: the largest two-byte length */
	assert_int_equal(aml_pkglength_encode(out, 4093), 2);
	assert_memory_equal(out, B(0x4f, 0xff), 2);
	/* body 4094: 4096 does not fit two bytes; three make 4097 = 0x1001 */
	assert_int_equal(aml_pkglength_encode(out, 4094), 3);
	assert_memory_equal(out, B(0x81, 0x00, 0x01), 3);
	/* total 0xfffff: the largest three-byte length */
	assert_int_equal(aml_pkglength_encode(out, 0xffffc), 3);
	assert_memory_equal(out, B(0x8f, 0xff, 0xff), 3);
	/* body 0xffffd: four bytes, 0x100001 */
	assert_int_equal(aml_pkglength_encode(out, 0xffffd), 4);
	assert_memory_equal(out, B(0xc1, 0x00, 0x00, 0x01), 4);
	/* total 0x0fffffff: the largest length at all */
	assert_int_equal(aml_pkglength_encode(out, 0x0ffffffb), 4);
	assert_memory_equal(out, B(0xcf, 0xff, 0xff, 0xff), 4);
	assert_int_equal(aml_pkglength_encode(out, 0x0ffffffc), 0);
	assert_int_equal(aml_pkglength_encode(out, SIZE_MAX), 0);
}

/* Buffer(n){...}: BufferOp PkgLength BufferSize bytes; the PkgLength is back-patched. */
static void check_buffer(size_t n, const uint8_t *hdr, size_t hdr_len)
{
	struct aml a;
	uint8_t *payload = malloc(n);

	assert_non_null(payload);
	for (size_t i = 0; i < n; i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	aml_init(&a);
	aml_buffer_begin(&a);
	aml_buffer_bytes(&a, payload, n);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	assert_int_equal(aml_len(&a), hdr_len + n);
	assert_memory_equal(aml_data(&a), hdr, hdr_len);
	assert_memory_equal(aml_data(&a) + hdr_len, payload, n);
	aml_destroy(&a);
	free(payload);
}

static void test_buffer_pkglength(void **state)
{
	(void)state;
	/* clang-format off */
	check_buffer(0, B(0x11, 0x02, 0x00), 3);                 /* size Zero */
	check_buffer(60, B(0x11, 0x3f, 0x0a, 0x3c), 4);          /* body 62 -> 63 */
	check_buffer(61, B(0x11, 0x41, 0x04, 0x0a, 0x3d), 5);    /* body 63 -> 65 */
	check_buffer(4090, B(0x11, 0x4f, 0xff, 0x0b, 0xfa, 0x0f), 6);       /* 4095 */
	check_buffer(4091, B(0x11, 0x81, 0x00, 0x01, 0x0b, 0xfb, 0x0f), 7); /* 4097 */
	/* clang-format on */
}

/* Both levels of a nest are patched, the inner one first. */
static void test_nested_pkglength(void **state)
{
	struct aml a;
	uint8_t zeros[61] = {0};

	(void)state;
	aml_init(&a);
	aml_scope_begin(&a, "\\");
	aml_name(&a, "BUF0");
	aml_buffer_begin(&a);
	aml_buffer_bytes(&a, zeros, sizeof(zeros));
	aml_end(&a);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	/* buffer: 11 41 04 0a 3d + 61 = 66 bytes; scope body: 5c 00 + 08 BUF0 + 66 = 73 -> 75 */
	assert_int_equal(aml_len(&a), 3 + 2 + 5 + 66);
	assert_memory_equal(
	    aml_data(&a),
	    B(0x10, 0x4b, 0x04, 0x5c, 0x00, 0x08, 'B', 'U', 'F', '0', 0x11, 0x41, 0x04, 0x0a, 0x3d),
	    15);
	aml_destroy(&a);
}

static void check_integer(uint64_t v, const uint8_t *exp, size_t n)
{
	struct aml a;

	aml_init(&a);
	aml_integer(&a, v);
	expect_bytes(&a, exp, n);
}

static void test_integers(void **state)
{
	(void)state;
	check_integer(0, B(0x00), 1);
	check_integer(1, B(0x01), 1);
	check_integer(2, B(0x0a, 0x02), 2);
	check_integer(0xff, B(0x0a, 0xff), 2);
	check_integer(0x100, B(0x0b, 0x00, 0x01), 3);
	check_integer(0xffff, B(0x0b, 0xff, 0xff), 3);
	check_integer(0x10000, B(0x0c, 0x00, 0x00, 0x01, 0x00), 5);
	check_integer(0xffffffff, B(0x0c, 0xff, 0xff, 0xff, 0xff), 5);
	check_integer(0x100000000ULL, B(0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00), 9);
	check_integer(0x0123456789abcdefULL,
		      B(0x0e, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01), 9);
	check_integer(UINT64_MAX - 1, B(0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 9);
	check_integer(UINT64_MAX, B(0xff), 1); /* Ones (64-bit in a revision 2 table) */
}

static void check_name(const char *path, const uint8_t *exp, size_t n)
{
	struct aml a;

	aml_init(&a);
	aml_name_ref(&a, path);
	expect_bytes(&a, exp, n);
}

static void test_name_paths(void **state)
{
	static const char *const bad[] = {
	    "", "1ABC", "ABCDE", "A..B", "A.", ".A", "\\^A", "abc", "^", "^\\A", "A-B", "\\\\A",
	};
	struct aml a;

	(void)state;
	check_name("_SB", B('_', 'S', 'B', '_'), 4);
	check_name("COM1", B('C', 'O', 'M', '1'), 4);
	check_name("\\_SB_", B(0x5c, '_', 'S', 'B', '_'), 5);
	check_name("\\", B(0x5c, 0x00), 2);
	check_name("\\_SB.PCI0", B(0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'), 10);
	check_name("\\_SB.PCI0.S08",
		   B(0x5c, 0x2f, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'S', '0', '8', '_'),
		   15);
	check_name("^^PCI0", B(0x5e, 0x5e, 'P', 'C', 'I', '0'), 6);
	check_name("^A.B", B(0x5e, 0x2e, 'A', '_', '_', '_', 'B', '_', '_', '_'), 10);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&a);
		aml_name_ref(&a, bad[i]);
		if (aml_finish(&a) != -EINVAL)
			fail_msg("name '%s' accepted", bad[i]);
		aml_destroy(&a);
	}
}

static void test_strings(void **state)
{
	struct aml a;

	(void)state;
	aml_init(&a);
	aml_string(&a, "Hi");
	aml_string(&a, "");
	EXPECT(&a, 0x0d, 'H', 'i', 0x00, 0x0d, 0x00);

	aml_init(&a);
	aml_string(&a, "caf\xc3\xa9");
	expect_error(&a, -EINVAL);
}

static void test_eisaid(void **state)
{
	struct aml a;

	(void)state;
	aml_init(&a);
	aml_eisaid(&a, "PNP0A08");
	aml_eisaid(&a, "PNP0A03");
	aml_eisaid(&a, "PNP0501");
	aml_eisaid(&a, "PNP0000"); /* small value: still a DWordConst */
	EXPECT(&a, 0x0c, 0x41, 0xd0, 0x0a, 0x08, 0x0c, 0x41, 0xd0, 0x0a, 0x03, 0x0c, 0x41, 0xd0,
	       0x05, 0x01, 0x0c, 0x41, 0xd0, 0x00, 0x00);

	static const char *const bad[] = {"pnp0A08", "PNP0A0G", "PNP0A0", "PNP0A080", "P1P0A08"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_init(&a);
		aml_eisaid(&a, bad[i]);
		if (aml_finish(&a) != -EINVAL)
			fail_msg("EISAID '%s' accepted", bad[i]);
		aml_destroy(&a);
	}
}

/* Scope(\_SB) { Device(PCI0) { Name(_HID, EISAID("PNP0A08")) Name(_CID, EISAID("PNP0A03"))
 * Name(_UID, Zero) } } */
static void test_device(void **state)
{
	struct aml a;

	(void)state;
	aml_init(&a);
	aml_scope_begin(&a, "\\_SB");
	aml_device_begin(&a, "PCI0");
	aml_name_eisaid(&a, "_HID", "PNP0A08");
	aml_name_eisaid(&a, "_CID", "PNP0A03");
	aml_name_int(&a, "_UID", 0);
	aml_end(&a);
	aml_end(&a);
	/* Device body: PCI0 (4) + 2 x (08 name 0c id) (20) + 08 _UID 00 (6) = 30 -> 0x1f.
	 * Scope body: 5c _SB_ (5) + device (33) = 38 -> 0x27. */
	/* clang-format off */
	EXPECT(&a, 0x10, 0x27, 0x5c, '_', 'S', 'B', '_',
	       0x5b, 0x82, 0x1f, 'P', 'C', 'I', '0',
	       0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08,
	       0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03,
	       0x08, '_', 'U', 'I', 'D', 0x00);
	/* clang-format on */
}

static void test_method(void **state)
{
	struct aml a;

	(void)state;
	/* Method(_STA, 0, NotSerialized) { Return (0x0F) } */
	aml_init(&a);
	aml_method_begin(&a, "_STA", 0, false);
	aml_return(&a);
	aml_integer(&a, 0x0f);
	aml_end(&a);
	EXPECT(&a, 0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f);

	/* Method(FOO, 2, Serialized) { Return (One) }: flags 2 | 0x08 */
	aml_init(&a);
	aml_method_begin(&a, "FOO", 2, true);
	aml_return(&a);
	aml_integer(&a, 1);
	aml_end(&a);
	EXPECT(&a, 0x14, 0x08, 'F', 'O', 'O', '_', 0x0a, 0xa4, 0x01);

	aml_init(&a);
	aml_method_begin(&a, "BAD", 8, false);
	expect_error(&a, -EINVAL);

	/* Method(_EVT, 1) { Notify(\_SB_.VGEN, 0x80) }: NotifyOp, a DualNamePath, a ByteConst */
	aml_init(&a);
	aml_method_begin(&a, "_EVT", 1, false);
	aml_notify(&a, "\\_SB_.VGEN", 0x80);
	aml_end(&a);
	EXPECT(&a, 0x14, 0x13, '_', 'E', 'V', 'T', 0x01, 0x86, '\\', 0x2e, '_', 'S', 'B', '_', 'V',
	       'G', 'E', 'N', 0x0a, 0x80);
}

static void test_packages(void **state)
{
	struct aml a;

	(void)state;
	/* Name(\_S5_, Package() { 5, 0, 0, 0 }) */
	aml_init(&a);
	aml_name(&a, "\\_S5_");
	aml_package_begin(&a);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a);
	EXPECT(&a, 0x08, 0x5c, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00);

	/* Package() { One, Package() { "A" }, Zero }: nested elements count once each */
	aml_init(&a);
	aml_package_begin(&a);
	aml_integer(&a, 1);
	aml_package_begin(&a);
	aml_string(&a, "A");
	aml_end(&a);
	aml_integer(&a, 0);
	aml_end(&a);
	EXPECT(&a, 0x12, 0x0a, 0x03, 0x01, 0x12, 0x05, 0x01, 0x0d, 'A', 0x00, 0x00);

	/* 256 elements: VarPackage, NumElements is a WordConst */
	aml_init(&a);
	aml_package_begin(&a);
	for (int i = 0; i < 256; i++)
		aml_integer(&a, 0);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	assert_int_equal(aml_len(&a), 1 + 2 + 3 + 256);
	/* body 3 + 256 = 259, + 2 = 261 = 0x105 */
	assert_memory_equal(aml_data(&a), B(0x13, 0x45, 0x10, 0x0b, 0x00, 0x01, 0x00), 7);
	aml_destroy(&a);
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* Name(_CRS, ResourceTemplate() { IO(Decode16, 0x3F8, 0x3F8, 0x01, 0x08)
 *   Interrupt(ResourceConsumer, Edge, ActiveHigh, Exclusive) { 4 } }) */
static void test_restemplate_com1(void **state)
{
	struct aml a;

	(void)state;
	aml_init(&a);
	aml_name(&a, "_CRS");
	aml_restemplate_begin(&a);
	aml_res_io(&a, 0x3f8, 0x3f8, 1, 8);
	aml_res_interrupt(&a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, 4);
	aml_end(&a);
	/* 8 + 9 + 2 = 19 bytes of descriptors; checksum: the descriptors plus 0x79 sum to 0x357,
	 * so 0x100 - 0x57 = 0xa9. */
	/* clang-format off */
	EXPECT(&a, 0x08, '_', 'C', 'R', 'S', 0x11, 0x16, 0x0a, 0x13,
	       0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
	       0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00,
	       0x79, 0xa9);
	/* clang-format on */
}

/* The descriptors a PCI root bridge _CRS needs, in one template. */
static void test_restemplate_pci(void **state)
{
	/* clang-format off */
	static const uint8_t exp[] = {
		/* WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xff, 0, 0x100) */
		0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00,
		0x00, 0x01,
		/* WordIO(..., EntireRange, 0, 0x0d00, 0xffff, 0, 0xf300) */
		0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x0d, 0xff, 0xff, 0x00, 0x00,
		0x00, 0xf3,
		/* DWordMemory(..., NonCacheable, ReadWrite, 0, 0xc0000000, 0xfebfffff, 0, 0x3ec00000) */
		0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0,
		0xff, 0xff, 0xbf, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3e,
		/* QWordMemory(..., Prefetchable, ReadWrite, 0, 0x8000000000, 0xffffffffff, 0,
		 * 0x8000000000) */
		0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00,
		0x80, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0, 0, 0, 0,
		0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
		/* DWordMemory(..., Cacheable, ReadOnly, 0, 0x1000, 0x1fff, 0, 0x1000) */
		0x87, 0x17, 0x00, 0x00, 0x0c, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
		0xff, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00,
	};
	/* clang-format on */
	struct aml a;
	const uint8_t *d;

	(void)state;
	aml_init(&a);
	aml_restemplate_begin(&a);
	aml_res_word_bus_number(&a, 0, 0xff);
	aml_res_word_io(&a, 0x0d00, 0xffff);
	aml_res_dword_memory(&a, 0xc0000000, 0xfebfffff, AML_MEM_NONCACHEABLE, true);
	aml_res_qword_memory(&a, 0x8000000000ULL, 0xffffffffffULL, AML_MEM_PREFETCHABLE, true);
	aml_res_dword_memory(&a, 0x1000, 0x1fff, AML_MEM_CACHEABLE, false);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	/* 130 bytes of descriptors + EndTag = 132 -> BufferSize 0a 84; body 134 -> 2-byte
	 * PkgLength 136 = 0x88: 48 08 */
	assert_int_equal(sizeof(exp), 130);
	assert_int_equal(aml_len(&a), 1 + 2 + 2 + 132);
	d = aml_data(&a);
	assert_memory_equal(d, B(0x11, 0x48, 0x08, 0x0a, 0x84), 5);
	assert_memory_equal(d + 5, exp, sizeof(exp));
	assert_int_equal(d[5 + sizeof(exp)], 0x79);
	assert_int_equal(sum8(d + 5, 132), 0); /* EndTag checksum */
	aml_destroy(&a);
}

static void test_res_errors(void **state)
{
	struct aml a;

	(void)state;
	/* outside a resource template */
	aml_init(&a);
	aml_res_io(&a, 0x60, 0x60, 1, 1);
	expect_error(&a, -EINVAL);
	aml_init(&a);
	aml_buffer_begin(&a);
	aml_res_interrupt(&a, 0, 4);
	expect_error(&a, -EINVAL);
	/* length does not fit the field */
	aml_init(&a);
	aml_restemplate_begin(&a);
	aml_res_word_io(&a, 0, 0xffff);
	expect_error(&a, -EINVAL);
	aml_init(&a);
	aml_restemplate_begin(&a);
	aml_res_qword_memory(&a, 0, UINT64_MAX, AML_MEM_CACHEABLE, true);
	expect_error(&a, -EINVAL);
	/* min > max */
	aml_init(&a);
	aml_restemplate_begin(&a);
	aml_res_dword_memory(&a, 2, 1, AML_MEM_CACHEABLE, true);
	expect_error(&a, -EINVAL);
	/* an empty template is just the EndTag */
	aml_init(&a);
	aml_restemplate_begin(&a);
	aml_end(&a);
	EXPECT(&a, 0x11, 0x05, 0x0a, 0x02, 0x79, 0x87);
}

static void test_nesting_errors(void **state)
{
	struct aml a;
	size_t len;

	(void)state;
	aml_init(&a);
	aml_end(&a); /* nothing open */
	expect_error(&a, -EINVAL);

	aml_init(&a);
	aml_scope_begin(&a, "\\_SB");
	expect_error(&a, -EINVAL); /* left open */

	aml_init(&a);
	aml_package_begin(&a);
	aml_name_int(&a, "X", 1); /* a Name() is no Package element */
	expect_error(&a, -EINVAL);

	aml_init(&a);
	aml_buffer_begin(&a);
	aml_integer(&a, 1); /* a Buffer takes bytes only */
	expect_error(&a, -EINVAL);

	aml_init(&a);
	aml_integer(&a, 7);
	aml_buffer_bytes(&a, "x", 1); /* not in a Buffer */
	expect_error(&a, -EINVAL);

	/* too deep */
	aml_init(&a);
	for (int i = 0; i <= AML_MAX_DEPTH; i++)
		aml_scope_begin(&a, "\\");
	expect_error(&a, -E2BIG);

	/* the first error sticks; later calls do nothing */
	aml_init(&a);
	aml_integer(&a, 2);
	aml_name_ref(&a, "bad");
	len = aml_len(&a);
	aml_fail(&a, -ENOMEM);
	aml_integer(&a, 3);
	assert_int_equal(aml_error(&a), -EINVAL);
	assert_int_equal(aml_len(&a), len);
	expect_error(&a, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkglength_boundaries),
	    cmocka_unit_test(test_buffer_pkglength),
	    cmocka_unit_test(test_nested_pkglength),
	    cmocka_unit_test(test_integers),
	    cmocka_unit_test(test_name_paths),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_eisaid),
	    cmocka_unit_test(test_device),
	    cmocka_unit_test(test_method),
	    cmocka_unit_test(test_packages),
	    cmocka_unit_test(test_restemplate_com1),
	    cmocka_unit_test(test_restemplate_pci),
	    cmocka_unit_test(test_res_errors),
	    cmocka_unit_test(test_nesting_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
