/* serial.c: placeholder, being written. */
