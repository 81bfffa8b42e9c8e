/* vcpu.c: placeholder, being written. */
