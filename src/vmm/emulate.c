/* emulate.c: placeholder, being written. */
