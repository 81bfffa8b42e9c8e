/* flood.c: a guest that never ends: writes numbered lines to COM1 as fast as it can, so that a
 * host test can check that a reader that never reads cannot make kiln unkillable (flood.sh). */
#include "runtime.h"

const char guest_name[] = "flood";

void guest_main(void)
{
	kprintf("READY flood\n");
	for (unsigned long n = 0;; n++)
		kprintf("flood %lu: the quick brown fox jumps over the lazy dog\n", n);
}
