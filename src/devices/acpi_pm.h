/* acpi_pm.h: hardware-reduced ACPI sleep control/status and reset registers (I/O ports). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "devices/stop.h"

/* The FADT points at these. */
#define ACPI_PM_PORT_BASE 0x600
#define ACPI_PM_SLEEP_CONTROL 0x600 /* 8-bit: SLP_TYP[4:2], SLP_EN bit 5 */
#define ACPI_PM_SLEEP_STATUS 0x601  /* 8-bit: WAK_STS bit 7 */
#define ACPI_PM_RESET 0x602         /* 8-bit, write ACPI_PM_RESET_VALUE */
#define ACPI_PM_NR_PORTS 4
#define ACPI_PM_RESET_VALUE 0x01
#define ACPI_PM_S5_SLP_TYP 5 /* value in DSDT _S5 package */

struct acpi_pm {
	struct vm_stopper stop;
	uint8_t sleep_status;
};

void acpi_pm_init(struct acpi_pm *pm, struct vm_stopper stop);
void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Snapshot (snapshot/state.h, devices/devstate.h): the sleep status register (WAK_STS). The
 * control and reset registers are write-only triggers with nothing to keep. Load checks and
 * applies all or nothing (0, or -EINVAL with the cursor bad). */
struct snap_buf;
struct snap_cursor;
int acpi_pm_state_save(struct acpi_pm *pm, struct snap_buf *b);
int acpi_pm_state_load(struct acpi_pm *pm, struct snap_cursor *c);
