/* size.c: placeholder, being written. */
