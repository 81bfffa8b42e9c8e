/* vmgenid.c: the VM Generation ID device (devices/vmgenid.h). */
#include "devices/vmgenid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "vmm/memory.h"

static int new_id(struct vmgenid *g)
{
	uint8_t *p = gpa_to_hva(g->mem, LAYOUT_VMGENID, VMGENID_SIZE);
	size_t got = 0;

	if (!p)
		return -EFAULT;
	while (got < sizeof(g->id)) { /* 16 bytes: one call, unless a signal cuts it short */
		ssize_t r = getrandom(g->id + got, sizeof(g->id) - got, 0);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			got += (size_t)r;
	}
	memcpy(p, g->id, sizeof(g->id));
	return 0;
}

int vmgenid_init(struct vmgenid *g, struct guest_mem *mem, struct irq_line irq)
{
	memset(g, 0, sizeof(*g));
	g->mem = mem;
	g->irq = irq;
	return new_id(g);
}

int vmgenid_new_generation(struct vmgenid *g)
{
	int ret = new_id(g);

	if (ret)
		return ret;
	/* An edge: the GED's interrupt is edge-triggered (its _CRS). */
	irq_line_set(&g->irq, 1);
	irq_line_set(&g->irq, 0);
	return 0;
}

void vmgenid_dsdt(struct aml *a)
{
	/* The ID's device. Linux's driver matches "VMGENCTR" or "VM_GEN_COUNTER" and reads ADDR,
	 * a package of the address's low and high 32 bits. "VMGENCTR" is not a valid ACPI ID
	 * (the last four must be hex digits; iasl refuses it), so the _HID is kiln's own and
	 * the driver binds through the _CID, which ACPICA upper-cases when it reads it (its
	 * _CID repair) into VM_GEN_COUNTER. */
	aml_device_begin(a, "VGEN");
	aml_name_str(a, "_HID", "KILN0001");
	aml_name_str(a, "_CID", "VM_Gen_Counter");
	aml_name_str(a, "_DDN", "VM_Gen_Counter");
	aml_name(a, "ADDR");
	aml_package_begin(a);
	aml_integer(a, LAYOUT_VMGENID & 0xffffffffu);
	aml_integer(a, LAYOUT_VMGENID >> 32);
	aml_end(a);
	aml_end(a);

	/* A hardware-reduced platform has no GPE block: the Generic Event Device turns an
	 * interrupt into a call of its _EVT method, which notifies VGEN. Its only event is
	 * VMGenID's, so _EVT does not look at its argument (the GSI). */
	aml_device_begin(a, "GED_");
	aml_name_str(a, "_HID", "ACPI0013");
	aml_name_int(a, "_UID", 0);
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_interrupt(a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, VMGENID_GSI);
	aml_end(a);
	aml_method_begin(a, "_EVT", 1, false);
	aml_notify(a, "\\_SB_.VGEN", 0x80);
	aml_end(a);
	aml_end(a);
}
