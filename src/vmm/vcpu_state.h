/* vcpu_state.h: one vCPU's and the VM's in-kernel KVM state for snapshots: capture, encode,
 * decode, apply.
 *
 * Four steps, kept apart so a live fork can skip the bytes:
 *   capture  KVM -> struct   (ioctls on a paused vCPU / the VM; nothing is changed)
 *   encode   struct -> snap_buf
 *   decode   snap_cursor -> struct, every field checked against the format and against this
 *            host's KVM (struct kvm_host_facts); no ioctls
 *   apply    struct -> KVM   (a fresh vCPU that has not run; KVM's order, below)
 *
 * Before capture, every vCPU must be outside KVM_RUN with its last exit completed: after an
 * I/O, MMIO or MSR exit, KVM finishes the instruction only at the next KVM_RUN, and that
 * pending part is in no state KVM_GET_* returns. vcpu_state_complete_exit() does that (a
 * KVM_RUN with immediate_exit set) on the vCPU's own thread.
 *
 * Apply order (vcpu_state_apply): CPUID, TSC frequency, sregs (APIC base, EFER, CRs; then
 * SREGS2 for a PAE guest's PDPTRs), regs,
 * XSAVE or FPU, XCRs, LAPIC, MSRs (TSC before TSC_DEADLINE, after the LAPIC so the deadline
 * timer is armed in the right mode), MP state, pending events, debug registers. The VM part
 * (vm_state_apply) goes last, after every vCPU: irqchips, PIT, then kvmclock, so the clock
 * is set as close to the first KVM_RUN as possible.
 */
#pragma once

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot/state.h"
#include "util/compiler.h"

#define VCPU_STATE_MAX_MSRS 2048
#define VCPU_STATE_MAX_CPUID 256
#define VCPU_STATE_MAX_XSAVE (64 * 1024)
#define VCPU_STATE_MAX_SKIPPED 16

/* What this host's KVM offers, read once per VM (kvm_host_facts_probe). decode checks a
 * snapshot against it, so apply never meets a state the host cannot take. */
struct kvm_host_facts {
	uint32_t xsave_size;  /* bytes KVM_GET/SET_XSAVE(2) move; 0: no XSAVE, FPU only */
	bool xsave2;	      /* KVM_GET_XSAVE2 (KVM_CAP_XSAVE2) */
	bool xcrs;	      /* KVM_CAP_XCRS */
	bool debugregs;	      /* KVM_CAP_DEBUGREGS */
	bool sregs2;	      /* KVM_CAP_SREGS2: the PDPTRs of a PAE guest */
	uint32_t clock_flags; /* KVM_CAP_ADJUST_CLOCK: flags KVM_GET_CLOCK may report */
	/* MSRs to save: KVM_GET_MSR_INDEX_LIST plus the MTRRs, sorted, no duplicates */
	uint32_t nmsrs;
	uint32_t msrs[VCPU_STATE_MAX_MSRS];
};

/* System ioctls on kvm_fd, KVM_CHECK_EXTENSION on vm_fd. 0, or -errno with a line in err. */
int kvm_host_facts_probe(int kvm_fd, int vm_fd, struct kvm_host_facts *h, char *err,
			 size_t errlen) __must_check;

enum vcpu_fpu_kind { VCPU_FPU_LEGACY = 0, VCPU_FPU_XSAVE = 1 };

struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	/* PAE paging without long mode: the PDPTRs the CPU loaded from CR3 (KVM_GET_SREGS2),
	 * which need not match guest memory any more */
	bool has_pdptrs;
	uint64_t pdptrs[4];
	/* enum vcpu_fpu_kind: XSAVE when the host's KVM has it */
	uint8_t fpu_kind;
	struct kvm_fpu fpu;  /* VCPU_FPU_LEGACY */
	uint32_t xsave_size; /* VCPU_FPU_XSAVE */
	uint8_t xsave[VCPU_STATE_MAX_XSAVE] __attribute__((aligned(64)));
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	uint32_t nmsrs; /* sorted by index, no duplicates */
	struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	bool has_debugregs;
	struct kvm_debugregs debugregs;
	uint32_t ncpuid;
	struct kvm_cpuid_entry2 cpuid[VCPU_STATE_MAX_CPUID];
	uint32_t tsc_khz;
	/* capture only, not saved: MSRs in the host's list that KVM_GET_MSRS would not read */
	uint32_t nskipped;
	uint32_t skipped[VCPU_STATE_MAX_SKIPPED];
};

/* Finish the vCPU's last exit without running guest code (KVM_RUN, immediate_exit = 1). On
 * the vCPU's thread, or any thread while that one is parked. 0 or -errno; -EAGAIN if KVM ran
 * the guest anyway (its exit must be handled first). */
int vcpu_state_complete_exit(int vcpu_fd, struct kvm_run *run) __must_check;

/* The state is large (about 110 KiB): allocate it, do not put it on a stack. */
int vcpu_state_capture(const struct kvm_host_facts *h, int vcpu_fd, unsigned id,
		       struct vcpu_state *s, char *err, size_t errlen) __must_check;
void vcpu_state_encode(const struct vcpu_state *s, struct snap_buf *b);
/* Reads one vCPU's section; errors go to the cursor (snap_cursor_end reports them). */
void vcpu_state_decode(struct snap_cursor *c, const struct kvm_host_facts *h, struct vcpu_state *s);
/* Onto a vCPU that has not run (KVM_SET_CPUID2 may be refused after KVM_RUN). s must have come
 * from vcpu_state_decode against this host's facts, or from a capture on this host. An error
 * leaves the vCPU partly set: the VM must be thrown away, not run. */
int vcpu_state_apply(const struct vcpu_state *s, int vcpu_fd, unsigned id, char *err,
		     size_t errlen) __must_check;

/* The VM-wide part: both PICs, the IOAPIC, the PIT (if the VM has one), kvmclock. */
struct vm_state {
	struct kvm_pic_state pic[2]; /* master, slave */
	struct kvm_ioapic_state ioapic;
	bool has_pit;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

int vm_state_capture(int vm_fd, bool has_pit, struct vm_state *s, char *err,
		     size_t errlen) __must_check;
void vm_state_encode(const struct vm_state *s, struct snap_buf *b);
void vm_state_decode(struct snap_cursor *c, const struct kvm_host_facts *h, struct vm_state *s);
/* clock_realtime: step kvmclock on by the host realtime that passed since the capture
 * (KVM_CLOCK_REALTIME); an error when the snapshot has no realtime stamp. Otherwise the guest's
 * clock continues from the saved value, as if the VM had been paused. */
int vm_state_apply(const struct vm_state *s, int vm_fd, bool has_pit, bool clock_realtime,
		   char *err, size_t errlen) __must_check;
