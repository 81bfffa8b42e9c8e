/* triplefault.c: prints PASS, then faults with an empty IDT -> triple fault; kiln must exit 0. */
#include "runtime.h"

const char guest_name[] = "triplefault";

void guest_main(void)
{
	pass("");
	triple_fault();
}
