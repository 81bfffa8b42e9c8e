/* acpi_pci.h: the DSDT's PCI root bridge (\_SB.PCI0), emitted through acpi_config.dsdt_sb_hook. */
#pragma once

struct aml;

/* dsdt_sb_hook: opaque is the (const) struct pci_bus whose windows go in _CRS. */
void acpi_pci_dsdt_hook(struct aml *a, void *opaque);
