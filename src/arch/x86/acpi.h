/* acpi.h: ACPI tables built in C at boot: RSDP, XSDT, FADT (hardware-reduced), MADT, DSDT. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"
#include "vmm/memory.h"

struct aml; /* see aml.h: devices append their DSDT content through it */

struct acpi_config {
	unsigned nr_cpus; /* APIC IDs 0..nr_cpus-1 */
	/* Optional hook to append device objects inside \_SB_ of the DSDT (PCI root bridge later). */
	void (*dsdt_sb_hook)(struct aml *aml, void *opaque);
	void *dsdt_sb_opaque;
	bool vmgenid; /* declare the VM Generation ID device and its GED (devices/vmgenid.h) */
};

/* Build every table into guest memory in [LAYOUT_ACPI_START, LAYOUT_ACPI_END). On success stores
 * the RSDP address in *rsdp and returns 0; -ENOSPC if the tables don't fit, -EFAULT if the
 * range is not guest RAM. */
int acpi_build(struct guest_mem *m, const struct acpi_config *cfg, gpa_t *rsdp) __must_check;

/* Same, into a caller buffer that stands for guest memory starting at base_gpa (unit tests).
 * Returns bytes used or -ENOSPC. */
long acpi_build_buf(uint8_t *buf, size_t len, gpa_t base_gpa, const struct acpi_config *cfg,
		    gpa_t *rsdp) __must_check;
