/* test_vcpu_state.c: a tiny guest runs on real KVM, its vCPU and VM state go through capture,
 * encode, decode and apply into a second VM with a copy of its memory, and the copy carries on
 * from the same instruction; hostile section bytes get one clean error each. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include "tmpfile.h"

#include "arch/x86/boot.h"
#include "arch/x86/cpu.h"
#include "arch/x86/regs.h"
#include "vmm/memory.h"
#include "vmm/vcpu_state.h"

#define CODE_GPA 0x200000
#define DATA_GPA 0x300000
#define START_RBX 0x1000
#define LAPIC_TMCCT 0x390 /* the timer's current count: it moves on */
#define MSR_IA32_TSC 0x10
#define GUEST_TSC 0x100000000000ULL

/* loop: inc rbx; mov [rdi], rbx; mov al, bl; out 0x80, al; jmp loop */
static const uint8_t guest_code[] = {0x48, 0xff, 0xc3, 0x48, 0x89, 0x1f,
				     0x88, 0xd8, 0xe6, 0x80, 0xeb, 0xf4};

struct tvm {
	int kvm, vm, vcpu, run_size;
	struct kvm_run *run;
	struct guest_mem mem;
};

static struct kvm_host_facts facts;
/* Act as on a host without XSAVE: the FPU goes through KVM_GET/SET_FPU. */
static bool no_xsave;
static bool tsc_settable;

static void tvm_open(struct tvm *t)
{
	struct kvm_cpuid2 *cpuid = NULL;

	t->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	assert_true(t->kvm >= 0);
	t->vm = ioctl(t->kvm, KVM_CREATE_VM, 0);
	assert_true(t->vm >= 0);
	assert_int_equal(ioctl(t->vm, KVM_SET_TSS_ADDR, 0xfffbd000UL), 0);
	struct kvm_userspace_memory_region mr = {.slot = 0,
						 .memory_size = t->mem.regions[0].size,
						 .userspace_addr =
						     (uintptr_t)t->mem.regions[0].hva};
	assert_int_equal(ioctl(t->vm, KVM_SET_USER_MEMORY_REGION, &mr), 0);
	assert_int_equal(ioctl(t->vm, KVM_CREATE_IRQCHIP, 0), 0);
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	assert_int_equal(ioctl(t->vm, KVM_CREATE_PIT2, &pit), 0);
	t->vcpu = ioctl(t->vm, KVM_CREATE_VCPU, 0);
	assert_true(t->vcpu >= 0);
	t->run_size = ioctl(t->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	t->run = mmap(NULL, (size_t)t->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->vcpu, 0);
	assert_true(t->run != MAP_FAILED);
	/* What kiln's vcpu_create does to a new vCPU. */
	assert_int_equal(x86_cpuid_get_supported(t->kvm, &cpuid), 0);
	assert_int_equal(x86_cpuid_setup(t->vcpu, cpuid, 0, 1), 0);
	free(cpuid);
	assert_int_equal(x86_msrs_setup(t->vcpu), 0);
	assert_int_equal(x86_lapic_setup(t->vcpu), 0);
}

static void tvm_close(struct tvm *t)
{
	munmap(t->run, (size_t)t->run_size);
	close(t->vcpu);
	close(t->vm);
	close(t->kvm);
	guest_mem_destroy(&t->mem);
}

/* One KVM_RUN: the guest's OUT to port 0x80, carrying the low byte of its counter. */
static uint8_t run_to_out(struct tvm *t)
{
	assert_int_equal(ioctl(t->vcpu, KVM_RUN, 0), 0);
	assert_int_equal(t->run->exit_reason, KVM_EXIT_IO);
	assert_int_equal(t->run->io.port, 0x80);
	assert_int_equal(t->run->io.direction, KVM_EXIT_IO_OUT);
	return *((uint8_t *)t->run + t->run->io.data_offset);
}

static uint64_t counter_in_ram(struct tvm *t)
{
	uint64_t v;
	memcpy(&v, gpa_to_hva(&t->mem, DATA_GPA, 8), 8);
	return v;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void check_segment(const struct kvm_segment *a, const struct kvm_segment *b)
{
	assert_int_equal(a->base, b->base);
	assert_int_equal(a->limit, b->limit);
	assert_int_equal(a->selector, b->selector);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->present, b->present);
	assert_int_equal(a->dpl, b->dpl);
	assert_int_equal(a->db, b->db);
	assert_int_equal(a->s, b->s);
	assert_int_equal(a->l, b->l);
	assert_int_equal(a->g, b->g);
	assert_int_equal(a->avl, b->avl);
	assert_int_equal(a->unusable, b->unusable);
}

static void check_sregs(const struct kvm_sregs *a, const struct kvm_sregs *b)
{
	const struct kvm_segment *sa[] = {&a->cs, &a->ds, &a->es, &a->fs,
					  &a->gs, &a->ss, &a->tr, &a->ldt};
	const struct kvm_segment *sb[] = {&b->cs, &b->ds, &b->es, &b->fs,
					  &b->gs, &b->ss, &b->tr, &b->ldt};
	for (size_t i = 0; i < ARRAY_SIZE(sa); i++)
		check_segment(sa[i], sb[i]);
	assert_int_equal(a->gdt.base, b->gdt.base);
	assert_int_equal(a->gdt.limit, b->gdt.limit);
	assert_int_equal(a->idt.base, b->idt.base);
	assert_int_equal(a->idt.limit, b->idt.limit);
	assert_int_equal(a->cr0, b->cr0);
	assert_int_equal(a->cr2, b->cr2);
	assert_int_equal(a->cr3, b->cr3);
	assert_int_equal(a->cr4, b->cr4);
	assert_int_equal(a->cr8, b->cr8);
	assert_int_equal(a->efer, b->efer);
	assert_int_equal(a->apic_base, b->apic_base);
	assert_memory_equal(a->interrupt_bitmap, b->interrupt_bitmap, sizeof(a->interrupt_bitmap));
}

/* A restored vCPU read back: everything as saved, but the TSC, which ran on a little. */
static void check_same(const struct vcpu_state *a, const struct vcpu_state *b)
{
	assert_memory_equal(&a->regs, &b->regs, sizeof(a->regs));
	check_sregs(&a->sregs, &b->sregs);
	assert_int_equal(a->fpu_kind, b->fpu_kind);
	assert_int_equal(a->xsave_size, b->xsave_size);
	assert_memory_equal(&a->fpu, &b->fpu, sizeof(a->fpu));
	assert_memory_equal(a->xsave, b->xsave, a->xsave_size);
	assert_int_equal(a->has_xcrs, b->has_xcrs);
	assert_memory_equal(&a->xcrs, &b->xcrs, sizeof(a->xcrs));
	assert_int_equal(a->nmsrs, b->nmsrs);
	for (uint32_t i = 0; i < a->nmsrs; i++) {
		assert_int_equal(a->msrs[i].index, b->msrs[i].index);
		if (a->msrs[i].index == MSR_IA32_TSC && !tsc_settable) {
			continue;
		} else if (a->msrs[i].index == MSR_IA32_TSC) {
			/* on, by less than a second */
			assert_true(b->msrs[i].data >= a->msrs[i].data);
			assert_true(b->msrs[i].data - a->msrs[i].data < a->tsc_khz * 1000ULL);
		} else if (a->msrs[i].data != b->msrs[i].data) {
			fail_msg("MSR 0x%x: saved 0x%llx, read back 0x%llx", a->msrs[i].index,
				 (unsigned long long)a->msrs[i].data,
				 (unsigned long long)b->msrs[i].data);
		}
	}
	assert_memory_equal(a->lapic.regs, b->lapic.regs, LAPIC_TMCCT);
	assert_memory_equal(a->lapic.regs + LAPIC_TMCCT + 4, b->lapic.regs + LAPIC_TMCCT + 4,
			    sizeof(a->lapic.regs) - LAPIC_TMCCT - 4);
	assert_memory_equal(&a->events, &b->events, sizeof(a->events));
	assert_int_equal(a->mp_state.mp_state, b->mp_state.mp_state);
	assert_memory_equal(&a->debugregs, &b->debugregs, sizeof(a->debugregs));
	assert_int_equal(a->ncpuid, b->ncpuid);
	assert_memory_equal(a->cpuid, b->cpuid, a->ncpuid * sizeof(a->cpuid[0]));
	assert_int_equal(a->tsc_khz, b->tsc_khz);
}

/* XMM0 and the x87 control word, both ways: KVM_SET_FPU for a vCPU without XSAVE, the XSAVE
 * area (with SSE marked present in XSTATE_BV, else the next entry would load SSE's initial
 * state over it) for one with it. */
static void mark_fpu(struct tvm *t)
{
	struct kvm_fpu fpu;

	assert_int_equal(ioctl(t->vcpu, KVM_GET_FPU, &fpu), 0);
	for (int i = 0; i < 16; i++)
		fpu.xmm[0][i] = (uint8_t)(0xa0 + i);
	fpu.fcw = 0x27f;
	assert_int_equal(ioctl(t->vcpu, KVM_SET_FPU, &fpu), 0);
	/* the host's own answer: no_xsave only changes how the state is saved */
	int xsave2 = ioctl(t->vm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	if (xsave2 <= 0 && ioctl(t->vm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0)
		return;
	uint8_t *x = aligned_alloc(64, VCPU_STATE_MAX_XSAVE);
	assert_non_null(x);
	assert_int_equal(ioctl(t->vcpu, xsave2 > 0 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, x), 0);
	memcpy(x + 160, fpu.xmm[0], 16); /* XMM0 in the legacy area */
	x[512] |= 3;			 /* XSTATE_BV: x87, SSE */
	assert_int_equal(ioctl(t->vcpu, KVM_SET_XSAVE, x), 0);
	free(x);
}

/* Set state the guest's few instructions would not: a debug register, the LAPIC, the IOAPIC,
 * MSRs (the TSC far from where a new VM's starts). */
static void mark_state(struct tvm *t)
{
	static const struct kvm_msr_entry marks[] = {
	    {.index = MSR_IA32_TSC, .data = GUEST_TSC},
	    {.index = 0x175, .data = 0x8000},			  /* SYSENTER_ESP */
	    {.index = 0xc0000081, .data = 0x0023001000000000ULL}, /* STAR */
	    {.index = 0xc0000082, .data = 0xffffffff81000000ULL}, /* LSTAR */
	    {.index = 0xc0000102, .data = 0xffff888000001000ULL}, /* KERNEL_GS_BASE */
	};
	struct kvm_msrs *m = calloc(1, sizeof(*m) + sizeof(marks));
	assert_non_null(m);
	m->nmsrs = ARRAY_SIZE(marks);
	memcpy(m->entries, marks, sizeof(marks));
	assert_int_equal(ioctl(t->vcpu, KVM_SET_MSRS, m), ARRAY_SIZE(marks));
	/* A PVM host takes the TSC write without effect: the guest's TSC is the host's. */
	m->nmsrs = 1;
	assert_int_equal(ioctl(t->vcpu, KVM_GET_MSRS, m), 1);
	tsc_settable = m->entries[0].data >= GUEST_TSC;
	free(m);
	if (!tsc_settable)
		print_message(
		    "this host's KVM ignores TSC writes (PVM): the TSC is not compared\n");

	/* LAPIC: software-enabled, spurious vector 0xff, the timer masked on vector 0x30, TPR. */
	struct kvm_lapic_state lapic;
	const uint32_t lapic_regs[][2] = {{0xf0, 0x1ff}, {0x320, 0x10030}, {0x80, 0x20}};
	assert_int_equal(ioctl(t->vcpu, KVM_GET_LAPIC, &lapic), 0);
	for (size_t i = 0; i < ARRAY_SIZE(lapic_regs); i++)
		memcpy(lapic.regs + lapic_regs[i][0], &lapic_regs[i][1], 4);
	assert_int_equal(ioctl(t->vcpu, KVM_SET_LAPIC, &lapic), 0);
	/* IOAPIC pin 4 masked on vector 0x38; PIC master's mask. */
	struct kvm_irqchip chip = {.chip_id = KVM_IRQCHIP_IOAPIC};
	assert_int_equal(ioctl(t->vm, KVM_GET_IRQCHIP, &chip), 0);
	chip.chip.ioapic.redirtbl[4].bits = 0x10038;
	assert_int_equal(ioctl(t->vm, KVM_SET_IRQCHIP, &chip), 0);
	chip = (struct kvm_irqchip){.chip_id = KVM_IRQCHIP_PIC_MASTER};
	assert_int_equal(ioctl(t->vm, KVM_GET_IRQCHIP, &chip), 0);
	chip.chip.pic.imr = 0xfb;
	assert_int_equal(ioctl(t->vm, KVM_SET_IRQCHIP, &chip), 0);

	struct kvm_debugregs d = {.db = {0x1234, 0x5678}, .dr6 = 0xffff0ff0, .dr7 = 0x400};
	assert_int_equal(ioctl(t->vcpu, KVM_SET_DEBUGREGS, &d), 0);
}

static void save_restore_continue(void **state)
{
	(void)state;
	char err[256] = "";
	struct tvm a, b;
	struct boot_info bi;
	struct snap_buf vb, mb;
	struct snap_cursor c;
	struct vcpu_state *saved = calloc(1, sizeof(*saved));
	struct vcpu_state *loaded = calloc(1, sizeof(*loaded));
	struct vcpu_state *back = calloc(1, sizeof(*back));
	struct vm_state vs, vl, vback;
	char *path = tmp_elf_kernel(CODE_GPA, guest_code, sizeof(guest_code));
	struct boot_request req = {.kernel_path = path, .cmdline = ""};

	assert_non_null(saved);
	assert_non_null(loaded);
	assert_non_null(back);
	assert_int_equal(guest_mem_init(&a.mem, 16 * MiB), 0);
	assert_int_equal(x86_boot_load(&a.mem, &req, &bi, err, sizeof(err)), 0);
	bi.kind = BOOT_ENTRY_64;
	tvm_open(&a);
	assert_int_equal(kvm_host_facts_probe(a.kvm, a.vm, &facts, err, sizeof(err)), 0);
	if (no_xsave)
		facts.xsave_size = 0;
	assert_int_equal(x86_regs_setup(a.vcpu, &bi), 0);
	struct kvm_regs r;
	assert_int_equal(ioctl(a.vcpu, KVM_GET_REGS, &r), 0);
	r.rbx = START_RBX;
	r.rdi = DATA_GPA;
	assert_int_equal(ioctl(a.vcpu, KVM_SET_REGS, &r), 0);
	struct kvm_sregs sr; /* SSE on, as any 64-bit kernel has it */
	assert_int_equal(ioctl(a.vcpu, KVM_GET_SREGS, &sr), 0);
	sr.cr4 |= 0x600; /* OSFXSR, OSXMMEXCPT */
	assert_int_equal(ioctl(a.vcpu, KVM_SET_SREGS, &sr), 0);
	mark_state(&a);
	mark_fpu(&a);

	for (int i = 1; i <= 5; i++)
		assert_int_equal(run_to_out(&a), (uint8_t)(START_RBX + i));
	assert_int_equal(vcpu_state_complete_exit(a.vcpu, a.run), 0);

	/* Capture, timed; the last one is kept. */
	double tcap[5], tapp[5], tvm[5];
	for (int i = 0; i < 5; i++) {
		double t0 = now_ms();
		assert_int_equal(vcpu_state_capture(&facts, a.vcpu, 0, saved, err, sizeof(err)), 0);
		assert_int_equal(vm_state_capture(a.vm, true, &vs, err, sizeof(err)), 0);
		tcap[i] = now_ms() - t0;
	}
	assert_int_equal(saved->regs.rbx, START_RBX + 5);
	assert_int_equal(saved->regs.rip, CODE_GPA + sizeof(guest_code) - 2); /* past the OUT */
	assert_int_equal(counter_in_ram(&a), START_RBX + 5);
	assert_int_equal(saved->nskipped, 0);
	assert_int_equal(saved->msrs[0].index, MSR_IA32_TSC);
	assert_true(!tsc_settable || saved->msrs[0].data >= GUEST_TSC);
	assert_true(saved->nmsrs > 0);

	snap_buf_init(&vb);
	snap_buf_init(&mb);
	vcpu_state_encode(saved, &vb);
	vm_state_encode(&vs, &mb);
	assert_int_equal(snap_buf_failed(&vb), 0);
	assert_int_equal(snap_buf_failed(&mb), 0);
	snap_cursor_init(&c, "vcpu 0", vb.data, vb.len);
	vcpu_state_decode(&c, &facts, loaded);
	if (snap_cursor_end(&c, err, sizeof(err)))
		fail_msg("%s", err);
	snap_cursor_init(&c, "vm", mb.data, mb.len);
	vm_state_decode(&c, &facts, &vl);
	if (snap_cursor_end(&c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_memory_equal(&vl, &vs, sizeof(vs));
	assert_int_equal(vs.ioapic.redirtbl[4].bits, 0x10038);
	assert_int_equal(vs.pic[0].imr, 0xfb);
	assert_int_equal(saved->sregs.cr8, 2); /* TPR 0x20 */
	assert_int_equal(saved->fpu_kind, facts.xsave_size ? VCPU_FPU_XSAVE : VCPU_FPU_LEGACY);
	/* XMM0 as set, whichever way it was saved */
	if (saved->fpu_kind == VCPU_FPU_XSAVE)
		assert_int_equal(saved->xsave[160], 0xa0);
	else
		assert_int_equal(saved->fpu.xmm[0][0], 0xa0);
	print_message("FPU saved with %s\n", saved->fpu_kind == VCPU_FPU_XSAVE
						 ? "KVM_GET_XSAVE2"
						 : "KVM_GET_FPU (as on a host without XSAVE)");

	/* A second VM with a copy of the first's memory takes the state... */
	assert_int_equal(guest_mem_init(&b.mem, 16 * MiB), 0);
	memcpy(b.mem.regions[0].hva, a.mem.regions[0].hva, a.mem.regions[0].size);
	tvm_open(&b);
	for (int i = 0; i < 5; i++) {
		double t0 = now_ms();
		int ret = vcpu_state_apply(loaded, b.vcpu, 0, err, sizeof(err));
		if (ret)
			fail_msg("%s", err);
		double t1 = now_ms();
		ret = vm_state_apply(&vl, b.vm, true, false, err, sizeof(err));
		if (ret)
			fail_msg("%s", err);
		tapp[i] = t1 - t0;
		tvm[i] = now_ms() - t1;
	}
	/* clock_realtime needs a realtime stamp, which only some hosts give */
	print_message("kvmclock flags 0x%x\n", vl.clock.flags);
	if (vl.clock.flags & KVM_CLOCK_REALTIME) {
		assert_int_equal(vm_state_apply(&vl, b.vm, true, true, err, sizeof(err)), 0);
		assert_int_equal(vm_state_apply(&vl, b.vm, true, false, err, sizeof(err)), 0);
	} else {
		assert_int_equal(vm_state_apply(&vl, b.vm, true, true, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "no realtime stamp"));
		print_message("this host's KVM_GET_CLOCK gives no KVM_CLOCK_REALTIME\n");
	}
	/* ...reads back as saved... */
	assert_int_equal(vcpu_state_capture(&facts, b.vcpu, 0, back, err, sizeof(err)), 0);
	check_same(saved, back);
	assert_int_equal(vm_state_capture(b.vm, true, &vback, err, sizeof(err)), 0);
	assert_memory_equal(&vback.pic, &vs.pic, sizeof(vs.pic));
	assert_memory_equal(&vback.ioapic, &vs.ioapic, sizeof(vs.ioapic));
	assert_true(vback.clock.clock >= vs.clock.clock);
	assert_true(vback.clock.clock - vs.clock.clock < 1000000000ULL); /* no jump */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vback.pit.channels[i].count, vs.pit.channels[i].count);
		assert_int_equal(vback.pit.channels[i].mode, vs.pit.channels[i].mode);
	}

	/* ...and carries on from the next instruction, as the first does. */
	assert_int_equal(run_to_out(&b), (uint8_t)(START_RBX + 6));
	assert_int_equal(counter_in_ram(&b), START_RBX + 6);
	assert_int_equal(run_to_out(&a), (uint8_t)(START_RBX + 6));
	struct kvm_regs ra, rb;
	assert_int_equal(ioctl(a.vcpu, KVM_GET_REGS, &ra), 0);
	assert_int_equal(ioctl(b.vcpu, KVM_GET_REGS, &rb), 0);
	assert_memory_equal(&ra, &rb, sizeof(ra));

	qsort(tcap, 5, sizeof(double), cmp_double);
	qsort(tapp, 5, sizeof(double), cmp_double);
	qsort(tvm, 5, sizeof(double), cmp_double);
	print_message("capture (vCPU + VM) %.3f ms, apply vCPU %.3f ms, apply VM %.3f ms (medians "
		      "of 5); %u MSRs, XSAVE %u bytes, %u CPUID leaves, sections %zu + %zu bytes\n",
		      tcap[2], tapp[2], tvm[2], saved->nmsrs, saved->xsave_size, saved->ncpuid,
		      vb.len, mb.len);
	for (uint32_t i = 0; i < saved->nmsrs; i++)
		print_message("%s0x%x", i ? " " : "MSRs: ", saved->msrs[i].index);
	print_message("\n");

	snap_buf_free(&vb);
	snap_buf_free(&mb);
	tvm_close(&a);
	tvm_close(&b);
	free(saved);
	free(loaded);
	free(back);
	unlink(path);
	free(path);
}

/* ---- Hostile sections: a made-up state, no KVM needed. ---- */

#define FAKE_XSAVE 4096
static const uint32_t fake_msrs[] = {0x10, 0x174, 0x1a0, 0xc0000080};

static void fake_facts(struct kvm_host_facts *h, uint32_t xsave_size)
{
	memset(h, 0, sizeof(*h));
	h->xsave_size = xsave_size;
	h->xsave2 = true;
	h->xcrs = true;
	h->debugregs = true;
	h->nmsrs = ARRAY_SIZE(fake_msrs);
	memcpy(h->msrs, fake_msrs, sizeof(fake_msrs));
}

static void fake_state(struct vcpu_state *s)
{
	memset(s, 0, sizeof(*s));
	s->regs.rip = 0x1000;
	s->regs.rflags = 2;
	s->sregs.cs = (struct kvm_segment){.limit = 0xffff, .type = 0xb, .present = 1, .s = 1};
	s->sregs.tr = (struct kvm_segment){.limit = 0x67, .type = 0xb, .present = 1};
	s->sregs.ldt.unusable = 1;
	s->sregs.cr0 = 0x10;
	s->sregs.apic_base = 0xfee00900;
	s->fpu_kind = VCPU_FPU_XSAVE;
	s->xsave_size = FAKE_XSAVE;
	for (uint32_t i = 0; i < FAKE_XSAVE; i++)
		s->xsave[i] = (uint8_t)i;
	s->has_xcrs = true;
	s->xcrs.nr_xcrs = 1;
	s->xcrs.xcrs[0].value = 3;
	s->nmsrs = 3;
	s->msrs[0] = (struct kvm_msr_entry){.index = 0x10, .data = 123456789};
	s->msrs[1] = (struct kvm_msr_entry){.index = 0x1a0, .data = 1};
	s->msrs[2] = (struct kvm_msr_entry){.index = 0xc0000080, .data = 0x500};
	for (size_t i = 0; i < sizeof(s->lapic.regs); i++)
		s->lapic.regs[i] = (char)(i * 7);
	s->events.flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
	s->events.interrupt.shadow = 1;
	s->mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
	s->has_debugregs = true;
	s->debugregs.dr6 = 0xffff0ff0;
	s->debugregs.dr7 = 0x400;
	s->ncpuid = 2;
	s->cpuid[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd};
	s->cpuid[1] = (struct kvm_cpuid_entry2){.function = 7, .flags = 1, .ebx = 0x20};
	s->tsc_khz = 2596124;
}

/* Where the encoding of fake_state() puts its count fields. */
#define OFF_HAS_PDPTRS 438 /* layout 2 */
#define OFF_FPU_KIND 439
#define OFF_XSAVE_LEN 440
#define OFF_HAS_XCRS (OFF_XSAVE_LEN + 4 + FAKE_XSAVE)
#define OFF_XCR_NR (OFF_HAS_XCRS + 1)
#define OFF_MSR_COUNT (OFF_XCR_NR + 8 + 12)
#define OFF_LAPIC (OFF_MSR_COUNT + 4 + 3 * 12)
#define OFF_EVENT_FLAGS (OFF_LAPIC + 1024 + 17 + 4 + 4)
#define OFF_MP_STATE (OFF_EVENT_FLAGS + 4 + 8)
#define OFF_CPUID_COUNT (OFF_MP_STATE + 4 + 1 + 56)
#define FAKE_LEN (OFF_CPUID_COUNT + 4 + 2 * 28 + 4)

static struct vcpu_state *st_a, *st_b;

static int decode_bytes(const uint8_t *p, size_t len, const struct kvm_host_facts *h, char *err,
			size_t errlen)
{
	struct snap_cursor c;

	snap_cursor_init(&c, "vcpu 1", p, len);
	vcpu_state_decode(&c, h, st_b);
	return snap_cursor_end(&c, err, errlen);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The one error line for bytes whose u32 at `at` is replaced by v. */
static void expect_error(const struct snap_buf *b, size_t at, uint32_t v,
			 const struct kvm_host_facts *h, const char *want)
{
	char err[256] = "";
	uint8_t *p = malloc(b->len);

	assert_non_null(p);
	memcpy(p, b->data, b->len);
	put32(p + at, v);
	assert_int_equal(decode_bytes(p, b->len, h, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s' does not say '%s'", err, want);
	assert_non_null(strstr(err, "section 'vcpu 1': "));
	free(p);
}

static void hostile_vcpu_sections(void **state)
{
	(void)state;
	struct kvm_host_facts h, h8k;
	struct snap_buf b;
	char err[256];

	st_a = calloc(1, sizeof(*st_a));
	st_b = calloc(1, sizeof(*st_b));
	assert_non_null(st_a);
	assert_non_null(st_b);
	fake_facts(&h, FAKE_XSAVE);
	fake_facts(&h8k, 8192);
	fake_state(st_a);
	snap_buf_init(&b);
	vcpu_state_encode(st_a, &b);
	assert_int_equal(snap_buf_failed(&b), 0);
	assert_int_equal(b.len, FAKE_LEN);
	assert_int_equal(b.data[OFF_FPU_KIND], VCPU_FPU_XSAVE);

	/* Whole: decodes to what was encoded. */
	assert_int_equal(decode_bytes(b.data, b.len, &h, err, sizeof(err)), 0);
	assert_memory_equal(st_a, st_b, offsetof(struct vcpu_state, nskipped));

	/* Cut at every length: one error naming the section, nothing read past the end. */
	for (size_t n = 0; n < b.len; n++) {
		uint8_t *p = malloc(n ? n : 1);
		assert_non_null(p);
		memcpy(p, b.data, n);
		err[0] = 0;
		assert_int_equal(decode_bytes(p, n, &h, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "section 'vcpu 1': "));
		free(p);
	}

	/* Counts, sizes and values out of range. */
	expect_error(&b, OFF_MSR_COUNT, 5000, &h, "msr count 5000 (at most 2048)");
	expect_error(&b, OFF_MSR_COUNT, 0xffffffff, &h, "msr count 4294967295");
	/* Fewer MSRs than there are: the rest is misread, and some later check says so. */
	expect_error(&b, OFF_MSR_COUNT, 2, &h, "event exception.injected");
	expect_error(&b, OFF_MSR_COUNT, 4, &h, "not increasing");
	expect_error(&b, OFF_MSR_COUNT + 4 + 12, 0x11, &h, "index 0x11 is not one this host");
	expect_error(&b, OFF_MSR_COUNT + 4 + 12, 0x5, &h, "index 0x5 after 0x10");
	expect_error(&b, OFF_CPUID_COUNT, 300, &h, "cpuid count 300 (at most 256)");
	expect_error(&b, OFF_CPUID_COUNT + 4 + 28, 0, &h, "cpuid 1: leaf 0x0 index 0 twice");
	expect_error(&b, OFF_XCR_NR, 17, &h, "xcr count 17 (at most 16)");
	expect_error(&b, OFF_XSAVE_LEN, 70000, &h, "a block of 70000 bytes (at most 65536)");
	expect_error(&b, OFF_XSAVE_LEN, 4000, &h,
		     "XSAVE area of 4000 bytes, this host's KVM uses 4096");
	expect_error(&b, OFF_XSAVE_LEN, 0xffffffff, &h, "at most 65536");
	expect_error(&b, OFF_MP_STATE, 7, &h, "mp_state 7 (unknown");
	expect_error(&b, OFF_EVENT_FLAGS, 0x40, &h, "event flags 0x40");
	expect_error(&b, 0, 3, &h, "layout 3 (this kiln reads 1-2)");
	expect_error(&b, 0, 0, &h, "layout 0 (this kiln reads 1-2)");
	expect_error(&b, OFF_FPU_KIND, 0x1002, &h, "FPU kind 2");
	expect_error(&b, b.len - 4, 0, &h, "tsc_khz 0");
	/* A snapshot from a host whose KVM wants another XSAVE size. */
	assert_int_equal(decode_bytes(b.data, b.len, &h8k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "XSAVE area of 4096 bytes, this host's KVM uses 8192"));

	/* Every byte of the structured parts set to 0xff, and each bit flipped: an error or a
	 * state, never a read past the bytes (ASan) or a crash. */
	uint8_t *p = malloc(b.len);
	assert_non_null(p);
	unsigned bad = 0, runs = 0;
	for (size_t at = 0; at < b.len; at++) {
		if (at >= OFF_XSAVE_LEN + 4 && at < OFF_HAS_XCRS)
			continue; /* the XSAVE bytes are the CPU's own format, passed through */
		for (int k = 0; k < 9; k++) {
			memcpy(p, b.data, b.len);
			p[at] = k == 8 ? 0xff : (uint8_t)(p[at] ^ (1u << k));
			bad += decode_bytes(p, b.len, &h, err, sizeof(err)) != 0;
			runs++;
		}
	}
	free(p);
	print_message("%u of %u mutated vCPU sections refused\n", bad, runs);
	assert_true(bad > 0 && bad < runs);
	snap_buf_free(&b);
	free(st_a);
	free(st_b);
}

/* A PAE guest's PDPTRs (layout 2): kept through encode and decode, refused where they make no
 * sense; and a layout 1 section (no PDPTRs byte) still decodes. */
static void pdptrs_sections(void **state)
{
	(void)state;
	struct kvm_host_facts h;
	struct snap_buf b;
	char err[256] = "";

	st_a = calloc(1, sizeof(*st_a));
	st_b = calloc(1, sizeof(*st_b));
	assert_non_null(st_a);
	assert_non_null(st_b);
	fake_facts(&h, FAKE_XSAVE);
	h.sregs2 = true;

	/* layout 1: the same bytes without the PDPTRs flag */
	fake_state(st_a);
	snap_buf_init(&b);
	vcpu_state_encode(st_a, &b);
	assert_int_equal(b.data[OFF_HAS_PDPTRS], 0);
	memmove(b.data + OFF_HAS_PDPTRS, b.data + OFF_HAS_PDPTRS + 1, b.len - OFF_HAS_PDPTRS - 1);
	b.data[0] = 1;
	assert_int_equal(decode_bytes(b.data, b.len - 1, &h, err, sizeof(err)), 0);
	assert_memory_equal(st_a, st_b, offsetof(struct vcpu_state, nskipped));
	snap_buf_free(&b);

	/* PAE paging (CR0.PG, CR4.PAE, no EFER.LMA) with four PDPTRs */
	st_a->sregs.cr0 = 0x80000011;
	st_a->sregs.cr4 = 0x20;
	st_a->has_pdptrs = true;
	for (int i = 0; i < 4; i++)
		st_a->pdptrs[i] = 0x100001 + 0x1000 * (uint64_t)i;
	snap_buf_init(&b);
	vcpu_state_encode(st_a, &b);
	assert_int_equal(b.len, FAKE_LEN + 32);
	assert_int_equal(decode_bytes(b.data, b.len, &h, err, sizeof(err)), 0);
	assert_true(st_b->has_pdptrs);
	assert_memory_equal(st_a, st_b, offsetof(struct vcpu_state, nskipped));
	/* reserved bits in a present PDPTR */
	expect_error(&b, OFF_HAS_PDPTRS + 1 + 8, 0x100003, &h, "pdptr 1 0x100003: reserved bits set");
	/* a host without KVM_CAP_SREGS2 cannot set them */
	h.sregs2 = false;
	assert_int_equal(decode_bytes(b.data, b.len, &h, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "this host's KVM has no KVM_CAP_SREGS2"));
	snap_buf_free(&b);
	/* PDPTRs in long mode mean nothing: refused */
	h.sregs2 = true;
	st_a->sregs.efer = 0x500;
	snap_buf_init(&b);
	vcpu_state_encode(st_a, &b);
	assert_int_equal(decode_bytes(b.data, b.len, &h, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not in PAE paging without long mode"));
	snap_buf_free(&b);
	free(st_a);
	free(st_b);
}

static void hostile_vm_sections(void **state)
{
	(void)state;
	struct kvm_host_facts h;
	struct vm_state s, d;
	struct snap_buf b;
	struct snap_cursor c;
	char err[256];

	fake_facts(&h, FAKE_XSAVE);
	memset(&s, 0, sizeof(s));
	s.pic[0].irq_base = 0x20;
	s.pic[1].irq_base = 0x28;
	s.pic[0].elcr_mask = 0xf8;
	s.ioapic.base_address = 0xfec00000;
	s.ioapic.redirtbl[3].bits = 0x10000;
	s.has_pit = true;
	s.pit.channels[0].count = 0x10000;
	s.pit.channels[0].mode = 3;
	s.pit.channels[0].rw_mode = 3;
	s.pit.flags = KVM_PIT_FLAGS_SPEAKER_DATA_ON;
	s.clock.clock = 123456789;
	s.clock.flags = KVM_CLOCK_TSC_STABLE;
	snap_buf_init(&b);
	vm_state_encode(&s, &b);
	assert_int_equal(snap_buf_failed(&b), 0);
	snap_cursor_init(&c, "vm", b.data, b.len);
	vm_state_decode(&c, &h, &d);
	assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), 0);
	assert_memory_equal(&s, &d, sizeof(s));

	for (size_t n = 0; n < b.len; n++) {
		snap_cursor_init(&c, "vm", b.data, n);
		vm_state_decode(&c, &h, &d);
		assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "section 'vm': "));
	}
	/* IOAPIC base (after 2 + 32 bytes), PIT mode (channel 0's 8th flag byte). */
	const struct {
		size_t at;
		uint8_t v;
		const char *want;
	} cases[] = {
	    {2 + 32 + 2, 0x00, "IOAPIC: base 0xfe000000"},
	    {2 + 32 + 20 + 192 + 1 + 6 + 7, 6, "PIT channel 0"},
	    {2 + 5, 0x21, "PIC master"},
	    {b.len - 20, 0x80, "kvmclock flags 0x80"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t p[512];
		assert_true(b.len <= sizeof(p));
		memcpy(p, b.data, b.len);
		p[cases[i].at] = cases[i].v;
		snap_cursor_init(&c, "vm", p, b.len);
		vm_state_decode(&c, &h, &d);
		assert_int_equal(snap_cursor_end(&c, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("'%s' does not say '%s'", err, cases[i].want);
	}
	snap_buf_free(&b);
}

/* An MSR KVM cannot read is skipped, and those after it are still saved. */
static void unreadable_msr_skipped(void **state)
{
	(void)state;
	char err[256];
	struct tvm t;
	struct vcpu_state *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	assert_int_equal(guest_mem_init(&t.mem, 2 * MiB), 0);
	tvm_open(&t);
	assert_int_equal(kvm_host_facts_probe(t.kvm, t.vm, &facts, err, sizeof(err)), 0);
	uint32_t n = facts.nmsrs;
	assert_true(n > 2 && n < VCPU_STATE_MAX_MSRS);
	/* 0x4b564dff: in KVM's paravirtual range, not an MSR it knows. Sorted in at the end. */
	facts.msrs[n] = 0x4b564dff;
	for (uint32_t i = n; i > 0 && facts.msrs[i - 1] > facts.msrs[i]; i--) {
		uint32_t x = facts.msrs[i];
		facts.msrs[i] = facts.msrs[i - 1];
		facts.msrs[i - 1] = x;
	}
	facts.nmsrs = n + 1;
	assert_int_equal(vcpu_state_capture(&facts, t.vcpu, 0, s, err, sizeof(err)), 0);
	assert_int_equal(s->nskipped, 1);
	assert_int_equal(s->skipped[0], 0x4b564dff);
	assert_int_equal(s->nmsrs, n);
	for (uint32_t i = 0; i < s->nmsrs; i++)
		assert_int_not_equal(s->msrs[i].index, 0x4b564dff);
	tvm_close(&t);
	free(s);
}

static int need_kvm(void **state)
{
	(void)state;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static void kvm_test(void **state)
{
	if (need_kvm(state))
		skip();
	no_xsave = false;
	save_restore_continue(state);
}

static void kvm_test_no_xsave(void **state)
{
	if (need_kvm(state))
		skip();
	no_xsave = true;
	save_restore_continue(state);
	no_xsave = false;
}

static void kvm_skip_test(void **state)
{
	if (need_kvm(state))
		skip();
	unreadable_msr_skipped(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hostile_vcpu_sections),
	    cmocka_unit_test(pdptrs_sections),
	    cmocka_unit_test(hostile_vm_sections),
	    cmocka_unit_test(kvm_test),
	    cmocka_unit_test(kvm_test_no_xsave),
	    cmocka_unit_test(kvm_skip_test),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
