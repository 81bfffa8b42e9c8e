/* acpi_pm.c: hardware-reduced ACPI sleep control/status and reset registers: S5 and reboot. */
#include "devices/acpi_pm.h"

#include <errno.h>
#include <string.h>

#include "devices/devstate.h"

/* Sleep control register (ACPI 6.5, sec. 4.8.3.7). */
#define SLP_TYP_SHIFT 2
#define SLP_TYP_MASK 0x1c
#define SLP_EN 0x20
/* Sleep status register (sec. 4.8.3.8). */
#define WAK_STS 0x80

/* Offsets inside the ACPI_PM_NR_PORTS range registered at ACPI_PM_PORT_BASE. */
#define OFF_SLEEP_CONTROL (ACPI_PM_SLEEP_CONTROL - ACPI_PM_PORT_BASE)
#define OFF_SLEEP_STATUS (ACPI_PM_SLEEP_STATUS - ACPI_PM_PORT_BASE)
#define OFF_RESET (ACPI_PM_RESET - ACPI_PM_PORT_BASE)

void acpi_pm_init(struct acpi_pm *pm, struct vm_stopper stop)
{
	memset(pm, 0, sizeof(*pm));
	pm->stop = stop;
}

static void sleep_control_write(struct acpi_pm *pm, uint8_t v)
{
	if (!(v & SLP_EN))
		return;
	if (((v & SLP_TYP_MASK) >> SLP_TYP_SHIFT) == ACPI_PM_S5_SLP_TYP) {
		/* WAK_STS stays clear: the guest spins on it until the VM is gone. */
		vm_stopper_request(&pm->stop, VM_STOP_POWEROFF);
		return;
	}
	/* No S1-S4 (the DSDT declares only _S5): "wake" at once so a guest polling WAK_STS after
	 * a sleep attempt carries on instead of hanging. */
	__atomic_fetch_or(&pm->sleep_status, WAK_STS, __ATOMIC_RELAXED);
}

static uint8_t reg_read(struct acpi_pm *pm, uint64_t off)
{
	if (off == OFF_SLEEP_STATUS)
		return __atomic_load_n(&pm->sleep_status, __ATOMIC_RELAXED);
	return 0; /* control and reset registers read as zero, as does the spare port */
}

static void reg_write(struct acpi_pm *pm, uint64_t off, uint8_t v)
{
	switch (off) {
	case OFF_SLEEP_CONTROL:
		sleep_control_write(pm, v);
		break;
	case OFF_SLEEP_STATUS:
		__atomic_fetch_and(&pm->sleep_status, (uint8_t) ~(v & WAK_STS), __ATOMIC_RELAXED);
		break;
	case OFF_RESET:
		if (v == ACPI_PM_RESET_VALUE)
			vm_stopper_request(&pm->stop, VM_STOP_RESET);
		break;
	default:
		break;
	}
}

/* The registers are 8 bits wide; a wider access touches consecutive registers, one byte each,
 * as a byte-lane decode would. The register state is only ever changed atomically, so
 * concurrent vCPUs need no lock. */
void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;

	for (uint32_t i = 0; i < len; i++) {
		if (is_write)
			reg_write(pm, offset + i, data[i]);
		else
			data[i] = reg_read(pm, offset + i);
	}
}

int acpi_pm_state_save(struct acpi_pm *pm, struct snap_buf *b)
{
	devstate_put_header(b);
	snap_put_u8(b, __atomic_load_n(&pm->sleep_status, __ATOMIC_RELAXED));
	return snap_buf_failed(b);
}

int acpi_pm_state_load(struct acpi_pm *pm, struct snap_cursor *c)
{
	uint8_t st;

	if (!devstate_get_header(c))
		return -EINVAL;
	st = snap_get_u8(c);
	if (!c->bad && (st & ~WAK_STS))
		snap_cursor_fail(c, "sleep status 0x%02x: only WAK_STS is kept", st);
	if (!devstate_done(c))
		return -EINVAL;
	__atomic_store_n(&pm->sleep_status, st, __ATOMIC_RELAXED);
	return 0;
}
