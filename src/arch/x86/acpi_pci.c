/* acpi_pci.c: \_SB.PCI0, the PCI root bridge in the DSDT: identity and the windows it decodes. */
#include "arch/x86/acpi_pci.h"

#include <errno.h>

#include "arch/x86/aml.h"
#include "devices/pci.h"

/*
 * What Linux does with this (drivers/acpi/pci_root.c, arch/x86/pci/acpi.c):
 *
 * - PNP0A08 (PCI Express root) with PNP0A03 (PCI root) as _CID binds the ACPI PCI root driver.
 *   _SEG, _BBN and _UID say segment 0, bus 0. There is no MCFG, so config space is reached
 *   with mechanism #1 (0xCF8), which Linux probes before the ACPI scan; 256 bytes per function.
 *
 * - _CRS, in the order QEMU, Cloud Hypervisor and real firmware use:
 *     WordBusNumber  0-0                       the bus this bridge decodes
 *     IO             0xCF8, 8 ports            consumed by the bridge itself (the config
 *                                              ports): Linux drops exactly this range from the
 *                                              bridge's resources
 *     WordIO         0x0000-0x0CF7             producer windows covering every other port, so
 *     WordIO         0x0D00-0xFFFF             the legacy devices (COM1, RTC, i8042, ACPI PM,
 *                                              which are separate \_SB devices) sit inside a
 *                                              root bus window as on any PC; no BAR uses I/O
 *     DWordMemory    [0xc0000000, 0xfec00000)  32-bit BARs, NonCacheable
 *     QWordMemory    64-bit window above RAM   64-bit BARs, Cacheable
 *   The memory windows are not "Prefetchable": Linux refuses to claim a non-prefetchable BAR
 *   inside a prefetchable window (pci_find_parent_resource) and would move it.
 *   Windows must avoid every e820 entry (x86 Linux clips e820 ranges out of host bridge
 *   windows unless the firmware's DMI date is 2023 or later, and kiln has no DMI) and stay
 *   below 2^MAXPHYADDR ("not CPU addressable"): see the window choice in pci.c.
 *
 * - No _PRT: devices have Interrupt Pin 0 (no INTx), so Linux never looks for a routing entry;
 *   interrupts are MSI-X only (the FADT does not set "MSI not supported").
 * - No _OSC: Linux then keeps ASPM off and leaves PCIe native services (hotplug, AER, PME) to
 *   the platform; there are no PCIe ports to need them. It logs "_OSC: platform retains
 *   control of PCIe features (AE_NOT_FOUND)" and goes on; MSI is unaffected.
 */

void acpi_pci_dsdt_hook(struct aml *a, void *opaque)
{
	const struct pci_bus *pb = opaque;
	gpa_t b32, e32, b64, e64;

	if (!pb) {
		aml_fail(a, -EINVAL);
		return;
	}
	pci_bus_windows(pb, &b32, &e32, &b64, &e64);
	if (b32 >= e32 || e32 > 1ULL << 32 || b64 > e64) {
		aml_fail(a, -EINVAL);
		return;
	}

	aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_int(a, "_ADR", 0);
	aml_name_int(a, "_SEG", 0);
	aml_name_int(a, "_UID", 0);
	aml_name_int(a, "_BBN", 0);

	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_word_bus_number(a, 0, 0);
	aml_res_io(a, PCI_CONFIG_ADDRESS, PCI_CONFIG_ADDRESS, 1, 8);
	aml_res_word_io(a, 0x0000, PCI_CONFIG_ADDRESS - 1);
	aml_res_word_io(a, PCI_CONFIG_ADDRESS + 8, 0xffff);
	aml_res_dword_memory(a, (uint32_t)b32, (uint32_t)(e32 - 1), AML_MEM_NONCACHEABLE, true);
	if (e64 > b64)
		aml_res_qword_memory(a, b64, e64 - 1, AML_MEM_CACHEABLE, true);
	aml_end(a); /* ResourceTemplate */

	aml_end(a); /* Device */
}
