/* smp_tramp.S: AP trampoline copied to 0x10000: real mode -> 32-bit, check in, halt. */

#define TRAMP_BASE 0x10000
#define SEL_CODE32 0x08
#define SEL_DATA 0x18
#define LAPIC_ID_REG 0xfee00020
#define MAX_APS 64

#define TRAMP_ADDR(sym) (TRAMP_BASE + ((sym) - ap_tramp_start))

	.section .note.GNU-stack, "", @progbits

	.section .rodata
	.globl ap_tramp_start, ap_tramp_end
	.balign 16
	/* Entered after SIPI vector 0x10: CS = 0x1000, IP = 0, real mode, interrupts off. */
	.code16
ap_tramp_start:
	cli
	movw %cs, %ax
	movw %ax, %ds
	lgdtl ap_gdt_desc - ap_tramp_start
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $TRAMP_ADDR(ap_pm32)

	.code32
ap_pm32:
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	/* paging is off: the LAPIC is at its physical address */
	movl LAPIC_ID_REG, %eax
	shrl $24, %eax
	movl $1, %ecx
	lock xaddl %ecx, ap_checkin	/* ecx = this AP's slot */
	cmpl $MAX_APS, %ecx
	jae 1f
	movl %eax, ap_ids(, %ecx, 4)
1:	lock incl ap_done		/* after the ID store: the BSP reads ap_ids once ap_done says so */
2:	cli
	hlt
	jmp 2b

	.balign 8
ap_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code, flat */
	.quad 0				/* 0x10: unused here */
	.quad 0x00cf92000000ffff	/* 0x18: data, flat */
ap_gdt_end:
ap_gdt_desc:
	.word ap_gdt_end - ap_gdt - 1
	.long TRAMP_ADDR(ap_gdt)
ap_tramp_end:
