/* regs.c: initial BSP register state for the 64-bit Linux entry and the PVH 32-bit entry. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"
#include "arch/x86/regs.h"

#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define RFLAGS_RESERVED 0x2ULL /* bit 1 always set; IF, TF, VM clear */
#define FPU_FCW 0x37f
#define FPU_MXCSR 0x1f80

static void set_segments(struct kvm_sregs *s, uint16_t code_sel)
{
	x86_gdt_segment(x86_boot_gdt, X86_GDT_ENTRIES, code_sel, &s->cs);
	x86_gdt_segment(x86_boot_gdt, X86_GDT_ENTRIES, LAYOUT_GDT_DATA, &s->ds);
	s->es = s->fs = s->gs = s->ss = s->ds;
	x86_gdt_segment(x86_boot_gdt, X86_GDT_ENTRIES, LAYOUT_GDT_TSS, &s->tr);

	memset(&s->ldt, 0, sizeof(s->ldt));
	s->ldt.type = 0x2; /* LDT */
	s->ldt.unusable = 1;

	s->gdt.base = LAYOUT_GDT;
	s->gdt.limit = X86_GDT_LIMIT;
	s->idt.base = 0;
	s->idt.limit = 0;
}

void x86_regs_build(const struct boot_info *bi, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	memset(regs, 0, sizeof(*regs));
	regs->rflags = RFLAGS_RESERVED;
	regs->rip = bi->entry;

	if (bi->kind == BOOT_ENTRY_PVH) {
		/* PVH: flat 32-bit protected mode, paging off, EBX = hvm_start_info. */
		regs->rbx = bi->boot_params;
		set_segments(sregs, LAYOUT_GDT_CODE32);
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
		return;
	}

	/* Linux 64-bit boot protocol: long mode on the identity map, RSI = boot_params. */
	regs->rsi = bi->boot_params;
	regs->rsp = bi->stack;
	regs->rbp = bi->stack;
	set_segments(sregs, LAYOUT_GDT_CODE64);
	sregs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	sregs->cr3 = LAYOUT_PML4;
	sregs->cr4 = CR4_PAE;
	sregs->efer = EFER_LME | EFER_LMA;
}

int x86_regs_setup(int vcpu_fd, const struct boot_info *bi)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	x86_regs_build(bi, &regs, &sregs);
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = FPU_FCW;
	fpu.mxcsr = FPU_MXCSR;
	if (ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}
