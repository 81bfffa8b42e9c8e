/* test_cpu.c: per-vCPU CPUID patching, boot MSR list and LAPIC LINT wiring (no KVM). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/cpu.h"

static struct kvm_cpuid2 *make_cpuid(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 12 * sizeof(struct kvm_cpuid_entry2));
	struct kvm_cpuid_entry2 *e = c->entries;
	e[0] = (struct kvm_cpuid_entry2){ .function = 1, .ebx = 0xff080800, .ecx = 0, .edx = 0 };
	e[1] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 0, .eax = 1, .ebx = 2 };
	e[2] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 1, .eax = 4, .ebx = 16 };
	e[3] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 2 };
	e[4] = (struct kvm_cpuid_entry2){ .function = 4, .index = 0, .eax = 0xfc004121 };
	e[5] = (struct kvm_cpuid_entry2){ .function = 0xa, .eax = 0x07300805, .edx = 0x603 };
	e[6] = (struct kvm_cpuid_entry2){ .function = 0x40000000, .eax = 0x40000001,
					  .ebx = 0x4b4d564b };
	c->nent = 7;
	return c;
}

static void cpuid_apic_ids(void **state)
{
	(void)state;
	for (unsigned id = 0; id < 4; id++) {
		struct kvm_cpuid2 *c = make_cpuid();
		x86_cpuid_patch(c, id, 4);
		struct kvm_cpuid_entry2 *e = c->entries;
		assert_int_equal(e[0].ebx >> 24, id);
		assert_int_equal((e[0].ebx >> 16) & 0xff, 4);
		assert_int_equal(e[0].ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
		assert_true(e[0].ecx & (1u << 31));
		assert_true(e[0].edx & (1u << 28));
		/* x2APIC topology: SMT level 1 thread, core level 4 cores, 2 bits */
		assert_int_equal(e[1].edx, id);
		assert_int_equal(e[1].ebx, 1);
		assert_int_equal((e[1].ecx >> 8) & 0xff, 1);
		assert_int_equal(e[2].edx, id);
		assert_int_equal(e[2].ebx, 4);
		assert_int_equal(e[2].eax, 2);
		assert_int_equal((e[2].ecx >> 8) & 0xff, 2);
		assert_int_equal(e[3].ebx, 0);
		/* leaf 4: cores per package - 1 */
		assert_int_equal(e[4].eax >> 26, 3);
		assert_int_equal(e[4].eax & 0x3fff, 0x0121);
		/* no PMU */
		assert_int_equal(e[5].eax, 0);
		assert_int_equal(e[5].edx, 0);
		/* KVM signature leaf untouched */
		assert_int_equal(e[6].ebx, 0x4b4d564b);
		free(c);
	}
}

static void cpuid_single(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = make_cpuid();
	c->entries[0].edx = 1u << 28;
	x86_cpuid_patch(c, 0, 1);
	assert_false(c->entries[0].edx & (1u << 28));
	assert_int_equal(c->entries[2].eax, 0);
	assert_int_equal(c->entries[2].ebx, 1);
	free(c);
	c = make_cpuid();
	x86_cpuid_patch(c, 31, 32);
	assert_int_equal(c->entries[0].ebx >> 24, 31);
	assert_int_equal(c->entries[2].eax, 5);
	free(c);
}

static void cpuid_mask_hypercalls(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = make_cpuid();
	/* KVM_CPUID_FEATURES at the base and at a moved base, plus a leaf that only looks alike */
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = 0x40000001,
							   .eax = 0x0100ffff, .edx = 7 };
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){ .function = 0x40000101,
							   .eax = 0xffffffff };
	struct kvm_cpuid2 *copy = malloc(sizeof(*c) + c->nent * sizeof(c->entries[0]));
	memcpy(copy, c, sizeof(*c) + c->nent * sizeof(c->entries[0]));

	x86_cpuid_mask_hypercall_features(c);
	assert_int_equal(c->entries[7].eax, 0x0100ffff & ~KVM_PV_HYPERCALL_FEATURES);
	assert_int_equal(c->entries[7].edx, 7); /* hints untouched */
	assert_int_equal(c->entries[8].eax, 0xffffffff & ~KVM_PV_HYPERCALL_FEATURES);
	/* exactly PV_UNHALT, PV_SEND_IPI, PV_SCHED_YIELD and HC_MAP_GPA_RANGE */
	assert_int_equal(KVM_PV_HYPERCALL_FEATURES, (1u << 7) | (1u << 11) | (1u << 13) | (1u << 16));
	/* every other leaf is as it was */
	for (unsigned i = 0; i < 7; i++)
		assert_memory_equal(&c->entries[i], &copy->entries[i], sizeof(c->entries[i]));
	free(copy);
	free(c);
}

static void boot_msrs(void **state)
{
	(void)state;
	struct kvm_msr_entry e[32];
	size_t n = x86_boot_msrs(e, 32);
	bool mtrr = false, misc = false;
	assert_true(n >= 8);
	for (size_t i = 0; i < n; i++) {
		if (e[i].index == 0x2ff) {
			mtrr = true;
			assert_int_equal(e[i].data, (1 << 11) | 6);
		}
		if (e[i].index == 0x1a0) {
			misc = true;
			assert_int_equal(e[i].data & 1, 1);
		}
	}
	assert_true(mtrr);
	assert_true(misc);
	assert_int_equal(x86_boot_msrs(e, 3), 3);
}

static void lapic_lints(void **state)
{
	(void)state;
	struct kvm_lapic_state l;
	uint32_t v;
	memset(&l, 0, sizeof(l));
	v = 0x10000 | 0x700; /* masked, some other mode */
	memcpy(&l.regs[0x360], &v, 4);
	x86_lapic_set_lints(&l);
	memcpy(&v, &l.regs[0x350], 4);
	assert_int_equal(v, 0x700);
	memcpy(&v, &l.regs[0x360], 4);
	assert_int_equal(v, 0x10000 | 0x400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpuid_apic_ids),
		cmocka_unit_test(cpuid_single),
		cmocka_unit_test(cpuid_mask_hypercalls),
		cmocka_unit_test(boot_msrs),
		cmocka_unit_test(lapic_lints),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
