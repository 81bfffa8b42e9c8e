/* poweroff.c: prints PASS, then ACPI S5 through the sleep control register; kiln must exit 0. */
#include "runtime.h"

const char guest_name[] = "poweroff";

void guest_main(void)
{
	struct fadt_info f;
	const char *err = acpi_scan(NULL, &f, true);
	uint8_t space = ACPI_SPACE_IO, v = (ACPI_SLP_TYP_S5 << 2) | ACPI_SLP_EN;
	uint64_t addr = ACPI_PM_SLEEP_CONTROL;

	/* A hardware-reduced FADT (kiln's) names the sleep control register: use it as Linux
	 * does. Otherwise (no ACPI, or a PIIX4-style FADT as under QEMU -M pc) use kiln's port. */
	if (!err && (f.flags & FADT_HW_REDUCED_ACPI)) {
		if (f.sleep_ctl_space != ACPI_SPACE_IO && f.sleep_ctl_space != ACPI_SPACE_MEMORY)
			fail("hw-reduced FADT's SLEEP_CONTROL_REG in address space %u",
			     f.sleep_ctl_space);
		space = f.sleep_ctl_space;
		addr = f.sleep_ctl_addr;
	} else {
		kprintf("poweroff: %s; using port 0x%lx\n",
			err ? err : "FADT is not hardware-reduced", addr);
	}
	pass("");
	if (!acpi_gas_write8(space, addr, v))
		fail("SLEEP_CONTROL_REG address 0x%lx unusable", addr);
	udelay(200000);
	fail("ACPI S5 (0x%x to %s 0x%lx) was ignored", v,
	     space == ACPI_SPACE_IO ? "port" : "address", addr);
}
