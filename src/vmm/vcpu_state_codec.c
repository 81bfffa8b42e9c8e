/* vcpu_state_codec.c: one vCPU's state to and from its snapshot section: encode, and the
 * decode that checks every field before the state can be applied (vcpu_state.h). */
#include "vmm/vcpu_state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The section's own layout version: bumped when the field order below changes. */
/* 2: the PDPTRs after the special registers; 1 (read too) had none */
#define VCPU_STATE_LAYOUT 2

#define EVENT_FLAGS_KNOWN                                                                          \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |                       \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD |      \
	 KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
#define CPUID_FLAGS_KNOWN                                                                          \
	(KVM_CPUID_FLAG_SIGNIFCANT_INDEX | KVM_CPUID_FLAG_STATEFUL_FUNC |                          \
	 KVM_CPUID_FLAG_STATE_READ_NEXT)
#define TSC_KHZ_MAX 100000000u /* 100 GHz */

static void put_segment(struct snap_buf *b, const struct kvm_segment *g)
{
	snap_put_u64(b, g->base);
	snap_put_u32(b, g->limit);
	snap_put_u16(b, g->selector);
	const uint8_t f[] = {g->type, g->present, g->dpl, g->db,      g->s,
			     g->l,    g->g,	  g->avl, g->unusable};
	snap_put_bytes(b, f, sizeof(f));
}

static void put_dtable(struct snap_buf *b, const struct kvm_dtable *t)
{
	snap_put_u64(b, t->base);
	snap_put_u16(b, t->limit);
}

static void put_events(struct snap_buf *b, const struct kvm_vcpu_events *e)
{
	const uint8_t f[] = {
	    e->exception.injected,
	    e->exception.nr,
	    e->exception.has_error_code,
	    e->exception.pending,
	    e->interrupt.injected,
	    e->interrupt.nr,
	    e->interrupt.soft,
	    e->interrupt.shadow,
	    e->nmi.injected,
	    e->nmi.pending,
	    e->nmi.masked,
	    e->smi.smm,
	    e->smi.pending,
	    e->smi.smm_inside_nmi,
	    e->smi.latched_init,
	    e->triple_fault.pending,
	    e->exception_has_payload,
	};
	snap_put_bytes(b, f, sizeof(f));
	snap_put_u32(b, e->exception.error_code);
	snap_put_u32(b, e->sipi_vector);
	snap_put_u32(b, e->flags);
	snap_put_u64(b, e->exception_payload);
}

void vcpu_state_encode(const struct vcpu_state *s, struct snap_buf *b)
{
	const struct kvm_regs *r = &s->regs;
	const struct kvm_sregs *sr = &s->sregs;

	snap_put_u16(b, VCPU_STATE_LAYOUT);
	const uint64_t gpr[] = {r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi,
				r->rsp, r->rbp, r->r8,	r->r9,	r->r10, r->r11,
				r->r12, r->r13, r->r14, r->r15, r->rip, r->rflags};
	for (size_t i = 0; i < ARRAY_SIZE(gpr); i++)
		snap_put_u64(b, gpr[i]);

	const struct kvm_segment *segs[] = {&sr->cs, &sr->ds, &sr->es, &sr->fs,
					    &sr->gs, &sr->ss, &sr->tr, &sr->ldt};
	for (size_t i = 0; i < ARRAY_SIZE(segs); i++)
		put_segment(b, segs[i]);
	put_dtable(b, &sr->gdt);
	put_dtable(b, &sr->idt);
	const uint64_t cr[] = {sr->cr0, sr->cr2,  sr->cr3,	sr->cr4,
			       sr->cr8, sr->efer, sr->apic_base};
	for (size_t i = 0; i < ARRAY_SIZE(cr); i++)
		snap_put_u64(b, cr[i]);
	for (size_t i = 0; i < ARRAY_SIZE(sr->interrupt_bitmap); i++)
		snap_put_u64(b, sr->interrupt_bitmap[i]);
	snap_put_bool(b, s->has_pdptrs);
	for (size_t i = 0; s->has_pdptrs && i < ARRAY_SIZE(s->pdptrs); i++)
		snap_put_u64(b, s->pdptrs[i]);

	snap_put_u8(b, s->fpu_kind);
	if (s->fpu_kind == VCPU_FPU_XSAVE) {
		snap_put_blob(b, s->xsave, s->xsave_size);
	} else {
		const struct kvm_fpu *f = &s->fpu;
		snap_put_bytes(b, f->fpr, sizeof(f->fpr));
		snap_put_u16(b, f->fcw);
		snap_put_u16(b, f->fsw);
		snap_put_u8(b, f->ftwx);
		snap_put_u16(b, f->last_opcode);
		snap_put_u64(b, f->last_ip);
		snap_put_u64(b, f->last_dp);
		snap_put_bytes(b, f->xmm, sizeof(f->xmm));
		snap_put_u32(b, f->mxcsr);
	}

	snap_put_bool(b, s->has_xcrs);
	if (s->has_xcrs) {
		snap_put_u32(b, s->xcrs.nr_xcrs);
		snap_put_u32(b, s->xcrs.flags);
		for (uint32_t i = 0; i < s->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
			snap_put_u32(b, s->xcrs.xcrs[i].xcr);
			snap_put_u64(b, s->xcrs.xcrs[i].value);
		}
	}

	snap_put_u32(b, s->nmsrs);
	for (uint32_t i = 0; i < s->nmsrs && i < VCPU_STATE_MAX_MSRS; i++) {
		snap_put_u32(b, s->msrs[i].index);
		snap_put_u64(b, s->msrs[i].data);
	}

	snap_put_bytes(b, s->lapic.regs, sizeof(s->lapic.regs));
	put_events(b, &s->events);
	snap_put_u32(b, s->mp_state.mp_state);

	snap_put_bool(b, s->has_debugregs);
	if (s->has_debugregs) {
		for (size_t i = 0; i < 4; i++)
			snap_put_u64(b, s->debugregs.db[i]);
		snap_put_u64(b, s->debugregs.dr6);
		snap_put_u64(b, s->debugregs.dr7);
		snap_put_u64(b, s->debugregs.flags);
	}

	snap_put_u32(b, s->ncpuid);
	for (uint32_t i = 0; i < s->ncpuid && i < VCPU_STATE_MAX_CPUID; i++) {
		const struct kvm_cpuid_entry2 *e = &s->cpuid[i];
		const uint32_t w[] = {e->function, e->index, e->flags, e->eax,
				      e->ebx,	   e->ecx,   e->edx};
		for (size_t j = 0; j < ARRAY_SIZE(w); j++)
			snap_put_u32(b, w[j]);
	}
	snap_put_u32(b, s->tsc_khz);
}

/* A u8 that must be 0 or 1, named in the error. */
static uint8_t get_flag(struct snap_cursor *c, const char *what)
{
	uint8_t v = snap_get_u8(c);

	if (v > 1)
		snap_cursor_fail(c, "%s: %u (0 or 1 expected)", what, v);
	return v;
}

static void get_segment(struct snap_cursor *c, const char *name, struct kvm_segment *g)
{
	char what[32];

	memset(g, 0, sizeof(*g));
	g->base = snap_get_u64(c);
	g->limit = snap_get_u32(c);
	g->selector = snap_get_u16(c);
	g->type = snap_get_u8(c);
	if (g->type > 15)
		snap_cursor_fail(c, "segment %s: type %u (at most 15)", name, g->type);
	snprintf(what, sizeof(what), "segment %s present", name);
	g->present = get_flag(c, what);
	g->dpl = snap_get_u8(c);
	if (g->dpl > 3)
		snap_cursor_fail(c, "segment %s: dpl %u (at most 3)", name, g->dpl);
	uint8_t *bits[] = {&g->db, &g->s, &g->l, &g->g, &g->avl, &g->unusable};
	for (size_t i = 0; i < ARRAY_SIZE(bits); i++) {
		snprintf(what, sizeof(what), "segment %s flag %zu", name, i);
		*bits[i] = get_flag(c, what);
	}
}

/* A PAE guest's PDPTRs: only with PAE paging outside long mode, and only on a KVM that can
 * set them. Each is a page-directory pointer: bits 1-2 and 5-8 are reserved when present. */
static void get_pdptrs(struct snap_cursor *c, const struct kvm_host_facts *h, struct vcpu_state *s)
{
	const struct kvm_sregs *sr = &s->sregs;

	s->has_pdptrs = snap_get_bool(c);
	if (!s->has_pdptrs || c->bad)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(s->pdptrs); i++) {
		s->pdptrs[i] = snap_get_u64(c);
		if ((s->pdptrs[i] & 1) && (s->pdptrs[i] & 0x1e6) && !c->bad)
			snap_cursor_fail(c, "pdptr %zu 0x%llx: reserved bits set", i,
					 (unsigned long long)s->pdptrs[i]);
	}
	if (c->bad)
		return;
	if (!(sr->cr0 & (1ULL << 31)) || !(sr->cr4 & (1ULL << 5)) || (sr->efer & (1ULL << 10)))
		snap_cursor_fail(c, "PDPTRs saved, but the guest is not in PAE paging without long "
				    "mode (cr0 0x%llx cr4 0x%llx efer 0x%llx)",
				 (unsigned long long)sr->cr0, (unsigned long long)sr->cr4,
				 (unsigned long long)sr->efer);
	else if (!h->sregs2)
		snap_cursor_fail(c, "PDPTRs saved, this host's KVM has no KVM_CAP_SREGS2");
}

static void get_sregs(struct snap_cursor *c, struct kvm_sregs *sr)
{
	static const char *const names[] = {"cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"};
	struct kvm_segment *segs[] = {&sr->cs, &sr->ds, &sr->es, &sr->fs,
				      &sr->gs, &sr->ss, &sr->tr, &sr->ldt};

	memset(sr, 0, sizeof(*sr));
	for (size_t i = 0; i < ARRAY_SIZE(segs); i++)
		get_segment(c, names[i], segs[i]);
	sr->gdt.base = snap_get_u64(c);
	sr->gdt.limit = snap_get_u16(c);
	sr->idt.base = snap_get_u64(c);
	sr->idt.limit = snap_get_u16(c);
	__u64 *cr[] = {&sr->cr0, &sr->cr2, &sr->cr3, &sr->cr4, &sr->cr8, &sr->efer, &sr->apic_base};
	for (size_t i = 0; i < ARRAY_SIZE(cr); i++)
		*cr[i] = snap_get_u64(c);
	if (sr->cr8 > 15)
		snap_cursor_fail(c, "cr8 %llu (at most 15)", (unsigned long long)sr->cr8);
	for (size_t i = 0; i < ARRAY_SIZE(sr->interrupt_bitmap); i++)
		sr->interrupt_bitmap[i] = snap_get_u64(c);
}

static void get_fpu(struct snap_cursor *c, const struct kvm_host_facts *h, struct vcpu_state *s)
{
	s->fpu_kind = snap_get_u8(c);
	if (s->fpu_kind == VCPU_FPU_XSAVE) {
		uint32_t n;
		const void *p = snap_get_blob(c, VCPU_STATE_MAX_XSAVE, &n);
		if (!p)
			return;
		if (n != h->xsave_size) {
			snap_cursor_fail(c, "XSAVE area of %u bytes, this host's KVM uses %u", n,
					 h->xsave_size);
			return;
		}
		s->xsave_size = n;
		memcpy(s->xsave, p, n);
	} else if (s->fpu_kind == VCPU_FPU_LEGACY) {
		struct kvm_fpu *f = &s->fpu;
		snap_get_bytes(c, f->fpr, sizeof(f->fpr));
		f->fcw = snap_get_u16(c);
		f->fsw = snap_get_u16(c);
		f->ftwx = snap_get_u8(c);
		f->last_opcode = snap_get_u16(c);
		f->last_ip = snap_get_u64(c);
		f->last_dp = snap_get_u64(c);
		snap_get_bytes(c, f->xmm, sizeof(f->xmm));
		f->mxcsr = snap_get_u32(c);
	} else {
		snap_cursor_fail(c, "FPU kind %u (0 legacy or 1 XSAVE)", s->fpu_kind);
	}
}

static void get_xcrs(struct snap_cursor *c, const struct kvm_host_facts *h, struct vcpu_state *s)
{
	s->has_xcrs = snap_get_bool(c);
	if (!s->has_xcrs || c->bad)
		return;
	if (!h->xcrs) {
		snap_cursor_fail(c, "XCRs saved, this host's KVM has no KVM_CAP_XCRS");
		return;
	}
	s->xcrs.nr_xcrs = snap_get_u32(c);
	s->xcrs.flags = snap_get_u32(c);
	if (s->xcrs.nr_xcrs > KVM_MAX_XCRS) {
		snap_cursor_fail(c, "xcr count %u (at most %u)", s->xcrs.nr_xcrs, KVM_MAX_XCRS);
		return;
	}
	if (s->xcrs.flags)
		snap_cursor_fail(c, "xcr flags 0x%x (0 expected)", s->xcrs.flags);
	for (uint32_t i = 0; i < s->xcrs.nr_xcrs; i++) {
		s->xcrs.xcrs[i].xcr = snap_get_u32(c);
		s->xcrs.xcrs[i].value = snap_get_u64(c);
	}
}

static bool host_has_msr(const struct kvm_host_facts *h, uint32_t index)
{
	uint32_t lo = 0, hi = h->nmsrs < VCPU_STATE_MAX_MSRS ? h->nmsrs : VCPU_STATE_MAX_MSRS;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (h->msrs[mid] == index)
			return true;
		if (h->msrs[mid] < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void get_msrs(struct snap_cursor *c, const struct kvm_host_facts *h, struct vcpu_state *s)
{
	s->nmsrs = snap_get_u32(c);
	if (s->nmsrs > VCPU_STATE_MAX_MSRS) {
		snap_cursor_fail(c, "msr count %u (at most %u)", s->nmsrs, VCPU_STATE_MAX_MSRS);
		s->nmsrs = 0;
		return;
	}
	for (uint32_t i = 0; i < s->nmsrs && !c->bad; i++) {
		struct kvm_msr_entry *e = &s->msrs[i];
		memset(e, 0, sizeof(*e));
		e->index = snap_get_u32(c);
		e->data = snap_get_u64(c);
		if (c->bad)
			break;
		if (i && e->index <= s->msrs[i - 1].index)
			snap_cursor_fail(c, "msr %u: index 0x%x after 0x%x (not increasing)", i,
					 e->index, s->msrs[i - 1].index);
		else if (!host_has_msr(h, e->index))
			snap_cursor_fail(c, "msr %u: index 0x%x is not one this host's KVM saves",
					 i, e->index);
	}
	if (c->bad)
		s->nmsrs = 0;
}

static void get_events(struct snap_cursor *c, struct kvm_vcpu_events *e)
{
	static const char *const names[] = {
	    "exception.injected",
	    NULL,
	    "exception.has_error_code",
	    "exception.pending",
	    "interrupt.injected",
	    NULL,
	    "interrupt.soft",
	    NULL,
	    "nmi.injected",
	    "nmi.pending",
	    "nmi.masked",
	    "smi.smm",
	    "smi.pending",
	    "smi.smm_inside_nmi",
	    "smi.latched_init",
	    "triple_fault.pending",
	    "exception_has_payload",
	};
	uint8_t f[ARRAY_SIZE(names)];

	memset(e, 0, sizeof(*e));
	snap_get_bytes(c, f, sizeof(f));
	for (size_t i = 0; i < ARRAY_SIZE(f) && !c->bad; i++)
		if (names[i] && f[i] > 1)
			snap_cursor_fail(c, "event %s: %u (0 or 1 expected)", names[i], f[i]);
	e->exception.injected = f[0];
	e->exception.nr = f[1];
	e->exception.has_error_code = f[2];
	e->exception.pending = f[3];
	e->interrupt.injected = f[4];
	e->interrupt.nr = f[5];
	e->interrupt.soft = f[6];
	e->interrupt.shadow = f[7];
	e->nmi.injected = f[8];
	e->nmi.pending = f[9];
	e->nmi.masked = f[10];
	e->smi.smm = f[11];
	e->smi.pending = f[12];
	e->smi.smm_inside_nmi = f[13];
	e->smi.latched_init = f[14];
	e->triple_fault.pending = f[15];
	e->exception_has_payload = f[16];
	if (e->exception.nr > 31)
		snap_cursor_fail(c, "event exception.nr %u (at most 31)", e->exception.nr);
	if (e->interrupt.shadow > 3) /* KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI */
		snap_cursor_fail(c, "event interrupt.shadow %u (at most 3)", e->interrupt.shadow);
	e->exception.error_code = snap_get_u32(c);
	e->sipi_vector = snap_get_u32(c);
	e->flags = snap_get_u32(c);
	e->exception_payload = snap_get_u64(c);
	if (e->flags & ~(uint32_t)EVENT_FLAGS_KNOWN)
		snap_cursor_fail(c, "event flags 0x%x (unknown bits 0x%x)", e->flags,
				 e->flags & ~(uint32_t)EVENT_FLAGS_KNOWN);
	if (e->sipi_vector > 0xff)
		snap_cursor_fail(c, "event sipi_vector 0x%x (at most 0xff)", e->sipi_vector);
}

static void get_cpuid(struct snap_cursor *c, struct vcpu_state *s)
{
	s->ncpuid = snap_get_u32(c);
	if (s->ncpuid > VCPU_STATE_MAX_CPUID) {
		snap_cursor_fail(c, "cpuid count %u (at most %u)", s->ncpuid, VCPU_STATE_MAX_CPUID);
		s->ncpuid = 0;
		return;
	}
	for (uint32_t i = 0; i < s->ncpuid && !c->bad; i++) {
		struct kvm_cpuid_entry2 *e = &s->cpuid[i];
		memset(e, 0, sizeof(*e));
		uint32_t *w[] = {&e->function, &e->index, &e->flags, &e->eax,
				 &e->ebx,      &e->ecx,	  &e->edx};
		for (size_t j = 0; j < ARRAY_SIZE(w); j++)
			*w[j] = snap_get_u32(c);
		if (e->flags & ~(uint32_t)CPUID_FLAGS_KNOWN)
			snap_cursor_fail(c, "cpuid %u: flags 0x%x (unknown bits)", i, e->flags);
		/* Both sides bounded by VCPU_STATE_MAX_CPUID: at most 32640 comparisons. */
		for (uint32_t j = 0; j < i && !c->bad; j++)
			if (s->cpuid[j].function == e->function && s->cpuid[j].index == e->index)
				snap_cursor_fail(c, "cpuid %u: leaf 0x%x index %u twice", i,
						 e->function, e->index);
	}
	if (c->bad)
		s->ncpuid = 0;
}

void vcpu_state_decode(struct snap_cursor *c, const struct kvm_host_facts *h, struct vcpu_state *s)
{
	struct kvm_regs *r = &s->regs;

	memset(s, 0, sizeof(*s));
	uint16_t layout = snap_get_u16(c);
	if (!c->bad && (layout < 1 || layout > VCPU_STATE_LAYOUT)) {
		snap_cursor_fail(c, "layout %u (this kiln reads 1-%u)", layout, VCPU_STATE_LAYOUT);
		return;
	}
	__u64 *gpr[] = {&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi,
			&r->rsp, &r->rbp, &r->r8,  &r->r9,  &r->r10, &r->r11,
			&r->r12, &r->r13, &r->r14, &r->r15, &r->rip, &r->rflags};
	for (size_t i = 0; i < ARRAY_SIZE(gpr); i++)
		*gpr[i] = snap_get_u64(c);
	get_sregs(c, &s->sregs);
	if (layout >= 2)
		get_pdptrs(c, h, s);
	get_fpu(c, h, s);
	get_xcrs(c, h, s);
	get_msrs(c, h, s);
	snap_get_bytes(c, s->lapic.regs, sizeof(s->lapic.regs));
	get_events(c, &s->events);
	s->mp_state.mp_state = snap_get_u32(c);
	if (s->mp_state.mp_state > KVM_MP_STATE_SIPI_RECEIVED)
		snap_cursor_fail(c, "mp_state %u (unknown; 0-4 expected)", s->mp_state.mp_state);
	s->has_debugregs = snap_get_bool(c);
	if (s->has_debugregs && !c->bad) {
		struct kvm_debugregs *d = &s->debugregs;
		if (!h->debugregs)
			snap_cursor_fail(c, "debug registers saved, this host's KVM has no "
					    "KVM_CAP_DEBUGREGS");
		for (size_t i = 0; i < 4; i++)
			d->db[i] = snap_get_u64(c);
		d->dr6 = snap_get_u64(c);
		d->dr7 = snap_get_u64(c);
		d->flags = snap_get_u64(c);
		if ((d->dr6 | d->dr7) >> 32)
			snap_cursor_fail(c, "dr6 0x%llx / dr7 0x%llx: upper 32 bits set",
					 (unsigned long long)d->dr6, (unsigned long long)d->dr7);
		if (d->flags)
			snap_cursor_fail(c, "debugregs flags 0x%llx (0 expected)",
					 (unsigned long long)d->flags);
	}
	get_cpuid(c, s);
	s->tsc_khz = snap_get_u32(c);
	if (!c->bad && (s->tsc_khz == 0 || s->tsc_khz > TSC_KHZ_MAX))
		snap_cursor_fail(c, "tsc_khz %u (1 to %u expected)", s->tsc_khz, TSC_KHZ_MAX);
}
