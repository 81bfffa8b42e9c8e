/* bus.c: placeholder, being written. */
