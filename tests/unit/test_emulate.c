/* test_emulate.c: the emulation-failure fix-up table: lookup and each entry's effect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/emulate.h"

static void lookup(void **state)
{
	(void)state;
	const uint8_t int3[] = { 0xcc };
	const uint8_t fwait[] = { 0x9b, 0x90 };
	const uint8_t popcnt[] = { 0xf3, 0x48, 0x0f, 0xb8, 0xc0 };
	const uint8_t xrstor[] = { 0x0f, 0xae, 0x2f };

	assert_string_equal(emul_fixup_find(int3, 1)->name, "INT3");
	assert_string_equal(emul_fixup_find(fwait, 2)->name, "FWAIT");
	assert_null(emul_fixup_find(popcnt, sizeof(popcnt)));
	assert_null(emul_fixup_find(xrstor, sizeof(xrstor)));
	assert_null(emul_fixup_find(int3, 0));
	assert_null(emul_fixup_find(NULL, 4));
	/* A prefixed INT3 is not the one-byte instruction: refuse it. */
	const uint8_t prefixed[] = { 0x66, 0xcc };
	assert_null(emul_fixup_find(prefixed, 2));
}

static void int3_entry(void **state)
{
	(void)state;
	struct kvm_regs regs;
	struct kvm_vcpu_events ev;
	memset(&regs, 0, sizeof(regs));
	memset(&ev, 0, sizeof(ev));
	regs.rip = 0xffffffff81000010ULL;
	regs.rax = 42;
	const uint8_t b = 0xcc;
	const struct emul_fixup *f = emul_fixup_find(&b, 1);
	assert_non_null(f);
	assert_true(f->needs_events);
	f->apply(&regs, &ev);
	assert_int_equal(regs.rip, 0xffffffff81000011ULL);
	assert_int_equal(regs.rax, 42);
	assert_int_equal(ev.exception.injected, 1);
	assert_int_equal(ev.exception.nr, 3);
	assert_int_equal(ev.exception.has_error_code, 0);
}

static void fwait_entry(void **state)
{
	(void)state;
	struct kvm_regs regs;
	struct kvm_vcpu_events ev;
	memset(&regs, 0, sizeof(regs));
	memset(&ev, 0, sizeof(ev));
	regs.rip = 0x1000;
	const uint8_t b = 0x9b;
	const struct emul_fixup *f = emul_fixup_find(&b, 1);
	assert_non_null(f);
	assert_false(f->needs_events);
	f->apply(&regs, &ev);
	assert_int_equal(regs.rip, 0x1001);
	assert_int_equal(ev.exception.injected, 0);
}

static void table_sane(void **state)
{
	(void)state;
	assert_true(emul_fixup_count() >= 2);
	for (size_t i = 0; i < emul_fixup_count(); i++) {
		const struct emul_fixup *f = emul_fixup_get(i);
		assert_non_null(f->apply);
		assert_non_null(f->name);
		assert_true(f->length >= 1);
		/* Every entry is found by its own opcode. */
		assert_ptr_equal(emul_fixup_find(&f->opcode, 1), f);
	}
	assert_null(emul_fixup_get(emul_fixup_count()));
}

static void format_bytes(void **state)
{
	(void)state;
	char buf[64];
	const uint8_t b[] = { 0x0f, 0xb8, 0x04, 0x25 };
	emul_format_bytes(b, 4, buf, sizeof(buf));
	assert_string_equal(buf, "0f b8 04 25");
	emul_format_bytes(b, 4, buf, 5);
	assert_string_equal(buf, "0f");
	emul_format_bytes(b, 0, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lookup),     cmocka_unit_test(int3_entry),
		cmocka_unit_test(fwait_entry), cmocka_unit_test(table_sane),
		cmocka_unit_test(format_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
