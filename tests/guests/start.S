/* start.S: guest entries (PVH 32-bit, 64-bit), GDT, identity page tables, into long mode. */

#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define CR0_PE (1 << 0)
#define CR0_MP (1 << 1)
#define CR0_NE (1 << 5)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define PTE_P 0x01
#define PTE_W 0x02
#define PTE_PWT 0x08
#define PTE_PCD 0x10
#define PTE_PS 0x80

	.section .note.GNU-stack, "", @progbits

/*
 * PVH entry (the address in the Xen ELF note, see pvh_note.S): 32-bit protected mode, paging
 * off, flat segments, EBX = physical address of struct hvm_start_info. No stack is given.
 */
	.section .text.boot, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	movl %ebx, boot_info		/* low half; the high half is 0 in .data */
	movl $32, boot_entry
	lgdt gdt_desc			/* 32-bit LGDT reads the low 4 bytes of the base */
	ljmp $SEL_CODE32, $1f
1:	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $__stack_top, %esp
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PE | CR0_PG), %eax
	movl %eax, %cr0
	ljmp $SEL_CODE64, $long_entry

/*
 * 64-bit entry (ELF e_entry, used when there is no PVH note): long mode, kiln's identity
 * map, RSI = boot_params. Switch to our own page tables and GDT so both paths end the same.
 */
	.code64
	.globl _start
_start:
	cli
	cld
	movq %rsi, boot_info(%rip)
	movl $64, boot_entry(%rip)
	leaq __stack_top(%rip), %rsp
	leaq pml4(%rip), %rax
	movq %rax, %cr3
	lgdt gdt_desc(%rip)
	pushq $SEL_CODE64
	leaq long_entry(%rip), %rax
	pushq %rax
	lretq

long_entry:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $__stack_top, %rsp
	/* x87 usable for FWAIT: no TS, MP and NE set */
	clts
	movq %cr0, %rax
	orq $(CR0_MP | CR0_NE), %rax
	movq %rax, %cr0
	/* clear .bss (boot_info/boot_entry live in .data) */
	movq $__bss_start, %rdi
	movq $__bss_end, %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	rep stosq
	call runtime_start
2:	cli
	hlt
	jmp 2b

	.section .data
	.balign 8
	.globl boot_info, boot_entry
boot_info:
	.quad 0
boot_entry:
	.long 0

	.balign 16
gdt:
	.quad 0				/* null */
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code, flat */
	.quad 0x00af9a000000ffff	/* 0x10: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x18: data, flat */
gdt_end:
	.balign 8
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

/*
 * Identity map of [0, 4 GiB) with 2 MiB pages, built at assembly time (no boot-time loop:
 * guest instructions are expensive here). The top GiB (MMIO hole: IOAPIC, LAPIC) is uncached.
 */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + PTE_P + PTE_W
	.fill 511, 8, 0
pdpt:
	.quad pd + PTE_P + PTE_W
	.quad pd + 0x1000 + PTE_P + PTE_W
	.quad pd + 0x2000 + PTE_P + PTE_W
	.quad pd + 0x3000 + PTE_P + PTE_W
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.if i >= 1536
	.quad (i << 21) + PTE_P + PTE_W + PTE_PS + PTE_PCD + PTE_PWT
	.else
	.quad (i << 21) + PTE_P + PTE_W + PTE_PS
	.endif
	.set i, i + 1
	.endr
