/* vcpu_state.c: one vCPU's KVM state: capture and apply (vcpu_state.h); the section's encode
 * and checked decode are vcpu_state_codec.c. */
#include "vmm/vcpu_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"

#define MSR_IA32_TSC 0x10

/* A kvm_msrs with room for n entries (KVM_GET_MSRS / KVM_SET_MSRS), or NULL. */
static struct kvm_msrs *msrs_alloc(uint32_t n)
{
	return calloc(1, sizeof(struct kvm_msrs) + (size_t)n * sizeof(struct kvm_msr_entry));
}

int vcpu_state_complete_exit(int vcpu_fd, struct kvm_run *run)
{
	int ret = 0;

	run->immediate_exit = 1;
	int r = ioctl(vcpu_fd, KVM_RUN, 0);
	if (r == 0) /* KVM entered the guest after all: an exit to handle, state moved on */
		ret = -EAGAIN;
	else if (errno != EINTR)
		ret = -errno;
	run->immediate_exit = 0;
	return ret;
}

static int fail(char *err, size_t errlen, unsigned id, const char *what, int e)
{
	snprintf(err, errlen, "vcpu %u: %s: %s", id, what, strerror(e));
	return -e;
}

/* Every readable MSR of h's list. KVM_GET_MSRS stops at the first it cannot read and says
 * how many it did; that one is noted as skipped and the batch goes on after it. */
static int capture_msrs(const struct kvm_host_facts *h, int fd, struct vcpu_state *s)
{
	uint32_t done = 0;
	int ret = 0;

	s->nmsrs = 0;
	s->nskipped = 0;
	if (h->nmsrs > VCPU_STATE_MAX_MSRS)
		return -E2BIG;
	struct kvm_msrs *m = msrs_alloc(h->nmsrs);
	if (!m)
		return -ENOMEM;
	while (done < h->nmsrs) { /* each pass reads or skips at least one */
		uint32_t n = h->nmsrs - done;

		m->nmsrs = n;
		for (uint32_t i = 0; i < n; i++)
			m->entries[i] = (struct kvm_msr_entry){.index = h->msrs[done + i]};
		int got = ioctl(fd, KVM_GET_MSRS, m);
		if (got < 0 || (uint32_t)got > n) {
			ret = got < 0 ? -errno : -EIO;
			break;
		}
		memcpy(&s->msrs[s->nmsrs], m->entries, (size_t)got * sizeof(m->entries[0]));
		s->nmsrs += (uint32_t)got;
		done += (uint32_t)got;
		if (done < h->nmsrs) {
			if (s->nskipped < VCPU_STATE_MAX_SKIPPED)
				s->skipped[s->nskipped++] = h->msrs[done];
			done++;
		}
	}
	free(m);
	return ret;
}

static int capture_cpuid(int fd, struct vcpu_state *s)
{
	struct kvm_cpuid2 *c =
	    calloc(1, sizeof(*c) + VCPU_STATE_MAX_CPUID * sizeof(struct kvm_cpuid_entry2));
	int ret = 0;

	if (!c)
		return -ENOMEM;
	c->nent = VCPU_STATE_MAX_CPUID;
	if (ioctl(fd, KVM_GET_CPUID2, c) < 0)
		ret = -errno;
	else if (c->nent > VCPU_STATE_MAX_CPUID)
		ret = -E2BIG;
	else {
		s->ncpuid = c->nent;
		memcpy(s->cpuid, c->entries, c->nent * sizeof(c->entries[0]));
	}
	free(c);
	return ret;
}

/* KVM reports the PDPTRs (flag PDPTRS_VALID) only while the guest uses PAE paging outside
 * long mode; otherwise there are none to keep. */
static int capture_pdptrs(int fd, struct vcpu_state *s)
{
	struct kvm_sregs2 s2;

	if (ioctl(fd, KVM_GET_SREGS2, &s2) < 0)
		return -errno;
	s->has_pdptrs = s2.flags & KVM_SREGS2_FLAGS_PDPTRS_VALID;
	if (s->has_pdptrs)
		memcpy(s->pdptrs, s2.pdptrs, sizeof(s->pdptrs));
	return 0;
}

/* KVM_SET_SREGS reloads the PDPTRs from guest memory at CR3; the saved ones go back on top
 * (KVM_SET_SREGS2 takes the whole set: the same segments, tables and CRs, and the PDPTRs). */
static int apply_pdptrs(const struct vcpu_state *s, int fd)
{
	const struct kvm_sregs *sr = &s->sregs;
	struct kvm_sregs2 s2 = {
	    .cs = sr->cs, .ds = sr->ds, .es = sr->es, .fs = sr->fs, .gs = sr->gs, .ss = sr->ss,
	    .tr = sr->tr, .ldt = sr->ldt, .gdt = sr->gdt, .idt = sr->idt, .cr0 = sr->cr0,
	    .cr2 = sr->cr2, .cr3 = sr->cr3, .cr4 = sr->cr4, .cr8 = sr->cr8, .efer = sr->efer,
	    .apic_base = sr->apic_base, .flags = KVM_SREGS2_FLAGS_PDPTRS_VALID,
	};

	memcpy(s2.pdptrs, s->pdptrs, sizeof(s2.pdptrs));
	return ioctl(fd, KVM_SET_SREGS2, &s2) < 0 ? -errno : 0;
}

int vcpu_state_capture(const struct kvm_host_facts *h, int fd, unsigned id, struct vcpu_state *s,
		       char *err, size_t errlen)
{
	int ret;

	memset(s, 0, sizeof(*s));
	if (ioctl(fd, KVM_GET_REGS, &s->regs) < 0)
		return fail(err, errlen, id, "KVM_GET_REGS", errno);
	if (ioctl(fd, KVM_GET_SREGS, &s->sregs) < 0)
		return fail(err, errlen, id, "KVM_GET_SREGS", errno);
	if (h->sregs2 && (ret = capture_pdptrs(fd, s)))
		return fail(err, errlen, id, "KVM_GET_SREGS2", -ret);
	if ((ret = capture_cpuid(fd, s)))
		return fail(err, errlen, id, "KVM_GET_CPUID2", -ret);
	/* XSAVE whenever KVM has it: KVM_SET_FPU writes the legacy area but not XSTATE_BV, so
	 * on an XSAVE host the next entry can load SSE's initial state over what it set. */
	if (h->xsave_size) {
		s->fpu_kind = VCPU_FPU_XSAVE;
		s->xsave_size = h->xsave_size;
		if (ioctl(fd, h->xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave) < 0)
			return fail(err, errlen, id, "KVM_GET_XSAVE2", errno);
	} else {
		s->fpu_kind = VCPU_FPU_LEGACY;
		if (ioctl(fd, KVM_GET_FPU, &s->fpu) < 0)
			return fail(err, errlen, id, "KVM_GET_FPU", errno);
	}
	s->has_xcrs = h->xcrs;
	if (h->xcrs && ioctl(fd, KVM_GET_XCRS, &s->xcrs) < 0)
		return fail(err, errlen, id, "KVM_GET_XCRS", errno);
	if ((ret = capture_msrs(h, fd, s)))
		return fail(err, errlen, id, "KVM_GET_MSRS", -ret);
	if (ioctl(fd, KVM_GET_LAPIC, &s->lapic) < 0)
		return fail(err, errlen, id, "KVM_GET_LAPIC", errno);
	if (ioctl(fd, KVM_GET_VCPU_EVENTS, &s->events) < 0)
		return fail(err, errlen, id, "KVM_GET_VCPU_EVENTS", errno);
	if (ioctl(fd, KVM_GET_MP_STATE, &s->mp_state) < 0)
		return fail(err, errlen, id, "KVM_GET_MP_STATE", errno);
	s->has_debugregs = h->debugregs;
	if (h->debugregs && ioctl(fd, KVM_GET_DEBUGREGS, &s->debugregs) < 0)
		return fail(err, errlen, id, "KVM_GET_DEBUGREGS", errno);
	ret = ioctl(fd, KVM_GET_TSC_KHZ, 0);
	if (ret <= 0)
		return fail(err, errlen, id, "KVM_GET_TSC_KHZ", ret < 0 ? errno : EIO);
	s->tsc_khz = (uint32_t)ret;
	for (uint32_t i = 0; i < s->nskipped; i++)
		log_info("vcpu %u: MSR 0x%x is not readable, not saved", id, s->skipped[i]);
	return 0;
}

/* KVM_SET_MSRS sets them in order and stops at the first it rejects. */
static int apply_msrs(const struct vcpu_state *s, int fd, unsigned id, char *err, size_t errlen)
{
	if (!s->nmsrs)
		return 0;
	struct kvm_msrs *m = msrs_alloc(s->nmsrs);
	if (!m)
		return fail(err, errlen, id, "KVM_SET_MSRS", ENOMEM);
	m->nmsrs = s->nmsrs;
	memcpy(m->entries, s->msrs, s->nmsrs * sizeof(s->msrs[0]));
	int n = ioctl(fd, KVM_SET_MSRS, m);
	int e = errno;
	free(m);
	if (n < 0)
		return fail(err, errlen, id, "KVM_SET_MSRS", e);
	if ((uint32_t)n != s->nmsrs) {
		snprintf(err, errlen, "vcpu %u: KVM_SET_MSRS: MSR 0x%x = 0x%llx rejected", id,
			 s->msrs[n].index, (unsigned long long)s->msrs[n].data);
		return -EINVAL;
	}
	return 0;
}

static int apply_cpuid(const struct vcpu_state *s, int fd, unsigned id, char *err, size_t errlen)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + s->ncpuid * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return fail(err, errlen, id, "KVM_SET_CPUID2", ENOMEM);
	c->nent = s->ncpuid;
	memcpy(c->entries, s->cpuid, s->ncpuid * sizeof(s->cpuid[0]));
	int r = ioctl(fd, KVM_SET_CPUID2, c);
	int e = errno;
	free(c);
	return r < 0 ? fail(err, errlen, id, "KVM_SET_CPUID2", e) : 0;
}

/* The TSC as restored, against the saved one: a PVM host keeps the guest's TSC equal to its
 * own and takes writes to it (and to KVM_VCPU_TSC_OFFSET) without effect. Said once; kvmclock,
 * set by vm_state_apply, is what keeps the guest's clocks continuous there. */
static void check_tsc(const struct vcpu_state *s, int fd, unsigned id)
{
	union { /* a kvm_msrs with room for one entry */
		struct kvm_msrs hdr;
		uint8_t buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} m;
	uint64_t want = 0;
	bool saved = false;

	for (uint32_t i = 0; i < s->nmsrs && !saved; i++)
		if (s->msrs[i].index == MSR_IA32_TSC)
			want = s->msrs[i].data, saved = true;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.hdr.entries[0].index = MSR_IA32_TSC;
	if (!saved || ioctl(fd, KVM_GET_MSRS, &m) != 1)
		return;
	uint64_t now = m.hdr.entries[0].data;
	uint64_t d = now > want ? now - want : want - now;
	if (d > (uint64_t)s->tsc_khz * 1000) /* a second */
		log_once(LOG_INFO,
			 "vcpu %u: the host's KVM did not take the saved TSC (%s %llu "
			 "ticks): the guest's raw TSC jumps",
			 id, now > want ? "ahead by" : "behind by", (unsigned long long)d);
}

int vcpu_state_apply(const struct vcpu_state *s, int fd, unsigned id, char *err, size_t errlen)
{
	int ret;

	if ((ret = apply_cpuid(s, fd, id, err, errlen)))
		return ret;
	ret = ioctl(fd, KVM_GET_TSC_KHZ, 0);
	if (ret < 0)
		return fail(err, errlen, id, "KVM_GET_TSC_KHZ", errno);
	if ((uint32_t)ret != s->tsc_khz &&
	    ioctl(fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0) {
		snprintf(err, errlen, "vcpu %u: KVM_SET_TSC_KHZ %u (this host: %d kHz): %s", id,
			 s->tsc_khz, ret, strerror(errno));
		return -EINVAL;
	}
	if (ioctl(fd, KVM_SET_SREGS, &s->sregs) < 0)
		return fail(err, errlen, id, "KVM_SET_SREGS", errno);
	if (s->has_pdptrs && (ret = apply_pdptrs(s, fd)))
		return fail(err, errlen, id, "KVM_SET_SREGS2", -ret);
	if (ioctl(fd, KVM_SET_REGS, &s->regs) < 0)
		return fail(err, errlen, id, "KVM_SET_REGS", errno);
	if (s->fpu_kind == VCPU_FPU_XSAVE) {
		/* KVM reads as many bytes as KVM_CAP_XSAVE2 said; decode checked the size. */
		if (ioctl(fd, KVM_SET_XSAVE, s->xsave) < 0)
			return fail(err, errlen, id, "KVM_SET_XSAVE", errno);
	} else if (ioctl(fd, KVM_SET_FPU, &s->fpu) < 0) {
		return fail(err, errlen, id, "KVM_SET_FPU", errno);
	}
	if (s->has_xcrs && ioctl(fd, KVM_SET_XCRS, &s->xcrs) < 0)
		return fail(err, errlen, id, "KVM_SET_XCRS", errno);
	if (ioctl(fd, KVM_SET_LAPIC, &s->lapic) < 0)
		return fail(err, errlen, id, "KVM_SET_LAPIC", errno);
	if ((ret = apply_msrs(s, fd, id, err, errlen)))
		return ret;
	check_tsc(s, fd, id);
	if (ioctl(fd, KVM_SET_MP_STATE, &s->mp_state) < 0)
		return fail(err, errlen, id, "KVM_SET_MP_STATE", errno);
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &s->events) < 0)
		return fail(err, errlen, id, "KVM_SET_VCPU_EVENTS", errno);
	if (s->has_debugregs && ioctl(fd, KVM_SET_DEBUGREGS, &s->debugregs) < 0)
		return fail(err, errlen, id, "KVM_SET_DEBUGREGS", errno);
	return 0;
}
