/* other_note.S: a non-PVH ELF note for hello64: its PT_NOTE is not empty, kiln must skip it. */

	.section .note.GNU-stack, "", @progbits

	/* owner "kiln", type 1, desc "hello64\0": no Xen PHYS32_ENTRY, so the loader must use e_entry */
	.section .note.guest, "a", @note
	.balign 4
	.long 5
	.long 8
	.long 1
	.asciz "kiln"
	.balign 4
	.asciz "hello64"
	.balign 4
