/* vmgenid.h: the ACPI VM Generation ID device (Microsoft's "Virtual Machine Generation ID"
 * spec, which Linux's vmgenid driver implements).
 *
 * A 16-byte ID in reserved guest memory (LAYOUT_VMGENID) that changes whenever the VM may
 * have been duplicated: at every snapshot restore and in every fork. The DSDT declares it
 * (\_SB.VGEN, _CID "VM_Gen_Counter", ADDR = its address) with a Generic Event Device (\_SB.GED_,
 * ACPI0013) whose interrupt, VMGENID_GSI, makes the guest run Notify(\_SB.VGEN, 0x80). Linux
 * then mixes the new ID into its RNG (add_vmfork_randomness), so two VMs restored from one
 * snapshot do not draw the same random numbers.
 */
#pragma once

#include <stdint.h>

#include "devices/irq.h"
#include "util/compiler.h"

struct aml;
struct guest_mem;

#define VMGENID_SIZE 16
/* An ISA-range IOAPIC pin nothing else uses (COM1 is 4, the PIT 2, the RTC raises none),
 * edge-triggered, active high, handed to the guest only through the GED's _CRS. */
#define VMGENID_GSI 5

struct vmgenid {
	struct guest_mem *mem;
	struct irq_line irq;
	uint8_t id[VMGENID_SIZE];
};

/* A fresh random ID, written to guest memory (no interrupt: the guest reads it at boot).
 * 0, -EFAULT when LAYOUT_VMGENID is not guest memory, or -errno from getrandom. */
int vmgenid_init(struct vmgenid *g, struct guest_mem *mem, struct irq_line irq) __must_check;

/* A new generation: a new random ID in guest memory, then an edge on VMGENID_GSI so the
 * guest notices. Call it with the vCPUs stopped or paused, before they run on (after a
 * restore, in a fork). 0 or -errno. */
int vmgenid_new_generation(struct vmgenid *g) __must_check;

/* The DSDT objects, inside \_SB_: \_SB.VGEN and \_SB.GED_. */
void vmgenid_dsdt(struct aml *a);
