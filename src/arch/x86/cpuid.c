/* cpuid.c: CPUID for each vCPU from KVM_GET_SUPPORTED_CPUID, with APIC IDs and topology. */
#include "arch/x86/cpu.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 512

int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out)
{
	/* Start big enough for every host seen (KVM itself caps the list at 256): each call
	 * runs CPUID on the host for every leaf, which is slow under nested virtualization. */
	for (unsigned nent = 256; nent <= CPUID_MAX_ENTRIES; nent *= 2) {
		struct kvm_cpuid2 *c =
			calloc(1, sizeof(*c) + nent * sizeof(struct kvm_cpuid_entry2));
		if (!c)
			return -ENOMEM;
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			*out = c;
			return 0;
		}
		int err = errno;
		free(c);
		if (err != E2BIG)
			return -err;
	}
	return -E2BIG;
}

void x86_cpuid_patch(struct kvm_cpuid2 *c, unsigned apic_id, unsigned nr_cpus)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			/* EBX: initial APIC ID [31:24], logical processors per package [23:16],
			 * CLFLUSH line size [15:8] (kept). */
			e->ebx = (e->ebx & 0x0000ffffu) | (apic_id << 24) |
				 ((nr_cpus & 0xffu) << 16);
			e->ecx |= 1u << 31; /* hypervisor present */
			if (nr_cpus > 1)
				e->edx |= 1u << 28; /* HTT: the package field above is valid */
			else
				e->edx &= ~(1u << 28);
			break;
		case 4:
			/* Deterministic cache parameters: EAX[31:26] = cores per package - 1,
			 * EAX[25:14] = threads sharing this cache - 1 (one thread per core). */
			e->eax &= 0x3fff;
			if (e->eax & 0x1f) /* a valid cache level */
				e->eax |= ((nr_cpus - 1) & 0x3f) << 26;
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology: level 0 = SMT (1 thread), level 1 = core. */
			e->edx = apic_id;
			if (e->index == 0) {
				e->eax = 0; /* no bits for SMT */
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;
			} else if (e->index == 1) {
				unsigned bits = 0;
				while ((1u << bits) < nr_cpus)
					bits++;
				e->eax = bits;
				e->ebx = nr_cpus;
				e->ecx = (2u << 8) | 1;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		case 0xa:
			/* No architectural PMU: perf counters would cost exits and leak host
			 * state. */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		default:
			break;
		}
	}
}

void x86_cpuid_mask_hypercall_features(struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		/* KVM_CPUID_FEATURES; the base may be moved up in 0x100 steps */
		if ((e->function & 0xffff00ffu) == 0x40000001u && e->function <= 0x40000f01u)
			e->eax &= ~KVM_PV_HYPERCALL_FEATURES;
	}
}

int x86_cpuid_setup(int vcpu_fd, const struct kvm_cpuid2 *supported, unsigned apic_id,
		    unsigned nr_cpus)
{
	size_t sz = sizeof(*supported) + supported->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return -ENOMEM;
	memcpy(c, supported, sz);
	x86_cpuid_patch(c, apic_id, nr_cpus);
	int ret = ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return ret;
}
