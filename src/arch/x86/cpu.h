/* cpu.h: per-vCPU x86 set-up: CPUID, boot MSRs, LAPIC LINT0/LINT1. */
#pragma once

#include <linux/kvm.h>
#include <stddef.h>

#include "util/compiler.h"

/* KVM_GET_SUPPORTED_CPUID into a malloc'd kvm_cpuid2 (caller frees). Returns 0 or -errno. */
int x86_cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out) __must_check;

/* Pure: make a copy of `supported` describe vCPU apic_id of nr_cpus (APIC IDs, topology
 * leaves, hypervisor bit). */
void x86_cpuid_patch(struct kvm_cpuid2 *c, unsigned apic_id, unsigned nr_cpus);

/* KVM paravirt features (CPUID 0x40000001 EAX) whose use is a hypercall (VMCALL/VMMCALL):
 * PV_UNHALT (kick), PV_SEND_IPI, PV_SCHED_YIELD, HC_MAP_GPA_RANGE. */
#define KVM_PV_HYPERCALL_FEATURES ((1u << 7) | (1u << 11) | (1u << 13) | (1u << 16))

/* Pure: clear the KVM_PV_HYPERCALL_FEATURES bits, for hosts whose KVM cannot complete a
 * hypercall (see docs/design.md, "PVM host"): the guest then uses plain IPIs, HLT and yields. */
void x86_cpuid_mask_hypercall_features(struct kvm_cpuid2 *c);

/* Patch a copy of supported and KVM_SET_CPUID2 it on vcpu_fd. */
int x86_cpuid_setup(int vcpu_fd, const struct kvm_cpuid2 *supported, unsigned apic_id,
		    unsigned nr_cpus) __must_check;

/* Pure: the MSR values a vCPU starts with. Returns the entry count (<= max). */
size_t x86_boot_msrs(struct kvm_msr_entry *out, size_t max);
int x86_msrs_setup(int vcpu_fd) __must_check;

/* Pure: program LINT0 as ExtINT and LINT1 as NMI in a LAPIC register page. */
void x86_lapic_set_lints(struct kvm_lapic_state *lapic);
int x86_lapic_setup(int vcpu_fd) __must_check;
