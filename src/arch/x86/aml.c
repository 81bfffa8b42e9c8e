/* aml.c: placeholder, being written. */
