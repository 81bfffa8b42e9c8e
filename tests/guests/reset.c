/* reset.c: prints PASS, then resets through the i8042 (0xfe to port 0x64); kiln must exit 0. */
#include "runtime.h"

const char guest_name[] = "reset";

void guest_main(void)
{
	pass("");
	reset_i8042();
	fail("i8042 reset (0xfe to port 0x64) was ignored");
}
