/* acpi_reset.c: resets through the FADT RESET_REG (kiln: port 0x602 value 1); kiln must exit 0. */
#include "runtime.h"

const char guest_name[] = "acpi_reset";

void guest_main(void)
{
	struct fadt_info f;
	const char *err = acpi_scan(NULL, &f, true);

	if (err)
		fail("acpi: %s", err);
	if (!(f.flags & FADT_RESET_REG_SUP))
		fail("FADT flags 0x%x lack RESET_REG_SUP", f.flags);
	if (f.reset_space != ACPI_SPACE_IO && f.reset_space != ACPI_SPACE_MEMORY)
		fail("FADT RESET_REG in address space %u", f.reset_space);
	pass("");
	if (!acpi_gas_write8(f.reset_space, f.reset_addr, f.reset_value))
		fail("FADT RESET_REG address 0x%lx unusable", f.reset_addr);
	udelay(200000);
	fail("ACPI reset (0x%x to %s 0x%lx) was ignored", f.reset_value,
	     f.reset_space == ACPI_SPACE_IO ? "port" : "address", f.reset_addr);
}
