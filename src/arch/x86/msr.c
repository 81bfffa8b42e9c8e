/* msr.c: placeholder, being written. */
