/* tiny.S: a minimal bzImage whose 16-, 32- and 64-bit entries each write to COM1, then halt or end the VM. */

/*
 * Two images come from this file. The bzImage is section .setup (0x400 bytes) followed by
 * section .pm (PM_SIZE bytes), laid out as the x86 boot protocol says:
 *
 *   file 0x000  boot sector: setup_sects at 0x1f1, boot_flag 0xAA55 at 0x1fe
 *   file 0x200  setup header: "jmp setup16", "HdrS", version 2.15, XLF_KERNEL_64, ...
 *   file 0x26c  setup16: real-mode entry (a loader jumps to setup segment + 0x20, IP 0,
 *               which lands on the jmp at 0x200; QEMU's option ROM / qboot, kvmtool)
 *   file 0x400  protected-mode part, loaded at code32_start = 1 MiB:
 *               +0x000 startup_32 (32-bit entry, flat segments, paging off)
 *               +0x200 startup_64 (64-bit entry: long mode, identity map; kiln's bzImage path)
 *
 * The ELF (elf.ld) is .pm alone at 1 MiB with e_entry = startup_64 and a Xen PVH note naming
 * startup_32, for VMMs that load only ELF kernels (Firecracker, Cloud Hypervisor).
 *
 * Default build: each entry writes 'K' to COM1 (port 0x3f8) once and halts with interrupts
 * off, so the VMM stays alive and idle (startup, memory and density benchmarks).
 * With -DFLOOD_BYTES=N: each entry writes N bytes to the UART data port, one OUT (one exit)
 * per byte, then ends the VM: 0xFE to the i8042 command port (kiln, raw KVM loop), and where
 * there is no i8042 a triple fault (empty IDT, then INT3) in 32- and 64-bit mode. Real mode
 * has no such fallback: KVM's real-mode interrupt emulation does not check the IVT limit.
 */

#define COM1 0x3f8
#define I8042_CMD 0x64
#define I8042_RESET 0xfe
#define PM_LOAD 0x100000	/* code32_start, pref_address, ELF load address */
#define PM_SIZE 0x400		/* protected-mode part: startup_32 + startup_64 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.GNU-stack, "", @progbits

/* One byte, or FLOOD_BYTES bytes, to COM1; \ctr is the count register for the mode. */
.macro emit ctr
	movw $COM1, %dx
	movb $'K', %al
#ifdef FLOOD_BYTES
	movl $FLOOD_BYTES, \ctr
1:	outb %al, %dx
	decl \ctr
	jnz 1b
#else
	outb %al, %dx
#endif
.endm

/* Stop: halt forever (default) or end the VM (flood build); \mode is 16, 32 or 64. */
.macro finish mode
#ifdef FLOOD_BYTES
	movb $I8042_RESET, %al
	outb %al, $I8042_CMD
	/* No i8042 took that: triple fault through an empty IDT (not in real mode, see above). */
.if \mode == 16
	jmp 2f
.elseif \mode == 32
	lidt PM_LOAD + (zero_idt - pm_start)	/* flat, at code32_start */
.else
	lidt zero_idt(%rip)
.endif
	int3
#endif
2:	cli
	hlt
	jmp 2b
.endm

	.section .setup, "ax"
	.code16
image:
	.org 0x1f1
	.byte 1				/* setup_sects: one sector after the boot sector */
	.word 0				/* root_flags */
	.long PM_SIZE / 16		/* syssize, in 16-byte units */
	.word 0				/* ram_size */
	.word 0xffff			/* vid_mode: normal */
	.word 0				/* root_dev */
	.word 0xaa55			/* boot_flag */

	/* 0x200: setup header */
	.byte 0xeb, setup16 - 1f	/* jmp setup16 (short); the byte at 0x201 ends the header */
1:	.ascii "HdrS"
	.word 0x020f			/* protocol 2.15 */
	.long 0				/* realmode_swtch */
	.word 0x1000			/* start_sys_seg (obsolete) */
	.word 0				/* kernel_version: none */
	.byte 0				/* type_of_loader: the loader writes it */
	.byte 0x01			/* loadflags: LOADED_HIGH */
	.word 0				/* setup_move_size */
	.long PM_LOAD			/* code32_start */
	.long 0				/* ramdisk_image */
	.long 0				/* ramdisk_size */
	.long 0				/* bootsect_kludge */
	.word 0				/* heap_end_ptr */
	.byte 0				/* ext_loader_ver */
	.byte 0				/* ext_loader_type */
	.long 0				/* cmd_line_ptr */
	.long 0x7fffffff		/* initrd_addr_max */
	.long 0x200000			/* kernel_alignment */
	.byte 0				/* relocatable_kernel: no, runs at pref_address */
	.byte 0				/* min_alignment */
	.word 0x0001			/* xloadflags: XLF_KERNEL_64 (startup_64 at +0x200) */
	.long 255			/* cmdline_size */
	.long 0				/* hardware_subarch: PC */
	.quad 0				/* hardware_subarch_data */
	.long 0				/* payload_offset */
	.long 0				/* payload_length */
	.quad 0				/* setup_data */
	.quad PM_LOAD			/* pref_address */
	.long PM_SIZE			/* init_size */
	.long 0				/* handover_offset: no EFI */
	.long 0				/* kernel_info_offset */

setup16:				/* real mode, any CS: position-independent */
	cli
	emit %ecx
	finish 16

	.org 0x400			/* setup_sects = 1: boot sector + one sector */

	.section .pm, "ax"
pm_start:
	.code32
	.globl startup_32
startup_32:				/* flat 32-bit protected mode, paging off */
	cli
	emit %ecx
	finish 32

	.org pm_start + 0x200
	.code64
	.globl startup_64
startup_64:				/* long mode, the loader's identity map */
	cli
	emit %ecx
	finish 64

	.balign 8, 0
zero_idt:
	.quad 0
	.quad 0

	.org pm_start + PM_SIZE, 0	/* fails to assemble if the code outgrows PM_SIZE */

	/* Xen PVH entry note (ELF only): the 32-bit entry's physical address, 8 bytes as Linux has it. */
	.section .note.pvh, "a", @note
	.balign 4
	.long 4				/* namesz */
	.long 8				/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.quad PM_LOAD + (startup_32 - pm_start)
