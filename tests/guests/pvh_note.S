/* pvh_note.S: the Xen PVH ELF note (XEN_ELFNOTE_PHYS32_ENTRY) naming start.S's 32-bit entry. */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.GNU-stack, "", @progbits

	/* namesz, descsz, type, "Xen\0", 4-byte desc. The linker script keeps 8 zero bytes after
	 * this section: QEMU 7.x reads the desc of a 64-bit ELF as 8 bytes. */
	.section .note.guest, "a", @note
	.balign 4
	.long 4
	.long 4
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start32
