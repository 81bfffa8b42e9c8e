/* regs.c: placeholder, being written. */
