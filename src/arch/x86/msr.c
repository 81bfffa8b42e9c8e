/* msr.c: boot-time MSR values and LAPIC LINT0/LINT1 wiring for each vCPU. */
#include "arch/x86/cpu.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_TSC 0x10
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MISC_ENABLE_FAST_STRING (1ULL << 0)
#define MTRR_ENABLE (1ULL << 11)
#define MTRR_TYPE_WRBACK 6

struct msr_init {
	uint32_t index;
	uint64_t value;
};

static const struct msr_init boot_msrs[] = {
	{ MSR_IA32_SYSENTER_CS, 0 },
	{ MSR_IA32_SYSENTER_ESP, 0 },
	{ MSR_IA32_SYSENTER_EIP, 0 },
	{ MSR_STAR, 0 },
	{ MSR_CSTAR, 0 },
	{ MSR_KERNEL_GS_BASE, 0 },
	{ MSR_SYSCALL_MASK, 0 },
	{ MSR_LSTAR, 0 },
	{ MSR_IA32_TSC, 0 },
	{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
	/* All RAM write-back by default: without MTRRs Linux maps memory uncached. */
	{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK },
};

size_t x86_boot_msrs(struct kvm_msr_entry *out, size_t max)
{
	size_t n = 0;
	for (; n < sizeof(boot_msrs) / sizeof(boot_msrs[0]) && n < max; n++)
		out[n] = (struct kvm_msr_entry){ .index = boot_msrs[n].index,
						 .data = boot_msrs[n].value };
	return n;
}

int x86_msrs_setup(int vcpu_fd)
{
	enum { N = sizeof(boot_msrs) / sizeof(boot_msrs[0]) };
	struct kvm_msrs *m = calloc(1, sizeof(*m) + N * sizeof(struct kvm_msr_entry));
	if (!m)
		return -ENOMEM;
	m->nmsrs = (uint32_t)x86_boot_msrs(m->entries, N);
	int n = ioctl(vcpu_fd, KVM_SET_MSRS, m);
	int ret = n < 0 ? -errno : 0;
	/* KVM_SET_MSRS returns how many it set: a short count names the first rejected one. */
	if (n >= 0 && (uint32_t)n != m->nmsrs)
		ret = -EINVAL;
	free(m);
	return ret;
}

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static uint32_t lapic_get(const struct kvm_lapic_state *l, unsigned reg)
{
	uint32_t v;
	memcpy(&v, &l->regs[reg], sizeof(v));
	return v;
}

static void lapic_put(struct kvm_lapic_state *l, unsigned reg, uint32_t v)
{
	memcpy(&l->regs[reg], &v, sizeof(v));
}

/* Delivery mode lives in bits 10:8 of an LVT entry. */
static uint32_t lvt_mode(uint32_t reg, uint32_t mode)
{
	return (reg & ~0x700u) | (mode << 8);
}

void x86_lapic_set_lints(struct kvm_lapic_state *lapic)
{
	lapic_put(lapic, APIC_LVT_LINT0, lvt_mode(lapic_get(lapic, APIC_LVT_LINT0), APIC_MODE_EXTINT));
	lapic_put(lapic, APIC_LVT_LINT1, lvt_mode(lapic_get(lapic, APIC_LVT_LINT1), APIC_MODE_NMI));
}

int x86_lapic_setup(int vcpu_fd)
{
	struct kvm_lapic_state l;
	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	x86_lapic_set_lints(&l);
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &l) < 0)
		return -errno;
	return 0;
}
