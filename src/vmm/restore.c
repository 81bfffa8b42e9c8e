/* restore.c: a VM rebuilt from a snapshot (vmm/restore.h).
 *
 * vm_create builds the VM from the snapshot's configuration as a cold boot would (the same
 * devices in the same order, so the same PCI slots and GSIs), with guest RAM mapped from the
 * memory file instead of anonymous memory and no kernel or tables loaded; then, before any
 * vCPU runs, restore_apply puts every saved state over it: the vCPUs, the VM's irqchip, PIT
 * and kvmclock (after the vCPUs: kvmclock last), every device, and a new VM generation ID.
 * Each section is decoded and checked completely before it is applied; any error tears the
 * whole VM down (vm_create fails), so a half-restored VM never runs.
 */
#include "vmm/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/config_state.h"
#include "snapshot/format.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

void vm_restore_free(struct vm_restore *r)
{
	snap_file_free(&r->file);
	vm_config_free(&r->cfg);
	if (r->mem_fd >= 0)
		close(r->mem_fd);
	r->mem_fd = -1;
}

int vm_restore_open(struct vm_restore *r, const char *state_path, const char *mem_path,
		    char *err, size_t errlen)
{
	struct snap_cursor c;
	int ret;

	memset(r, 0, sizeof(*r));
	r->mem_fd = -1;
	vm_config_init(&r->cfg);
	if ((ret = snap_file_read(state_path, &r->file, err, errlen)))
		return ret;
	if (snap_file_section(&r->file, SNAP_SEC_CONFIG, 0, &c)) {
		snap_file_missing(SNAP_SEC_CONFIG, 0, err, errlen);
		return -EINVAL;
	}
	vm_config_free(&r->cfg);
	if ((ret = config_state_decode(&c, &r->cfg, err, errlen)))
		return ret;
	if (mem_path) {
		r->mem_fd = open(mem_path, O_RDONLY | O_CLOEXEC);
		if (r->mem_fd < 0) {
			ret = -errno;
			snprintf(err, errlen, "memory file %s: %s", mem_path, strerror(errno));
			return ret;
		}
		snprintf(r->mem_name, sizeof(r->mem_name), "%s", mem_path);
	}
	return 0;
}

/* The section (id, inst) as a cursor, or "section '...' is missing". */
static int section(const struct vm_restore *r, uint32_t id, uint32_t inst, struct snap_cursor *c,
		   char *err, size_t errlen)
{
	if (snap_file_section(&r->file, id, inst, c) == 0)
		return 0;
	snap_file_missing(id, inst, err, errlen);
	return -EINVAL;
}

/* A device's load: 0, or the cursor's line naming the section (a load leaves the cursor bad
 * on every failure it reports). */
static int loaded(struct snap_cursor *c, int ret, char *err, size_t errlen)
{
	if (ret && !c->bad)
		snap_cursor_fail(c, "%s", strerror(-ret));
	return snap_cursor_end(c, err, errlen);
}

static int apply_vcpus(struct vm *vm, const struct vm_restore *r, char *err, size_t errlen)
{
	struct vcpu_state *s;
	struct snap_cursor c;
	int ret = 0;

	if (snap_file_count(&r->file, SNAP_SEC_VCPU) != vm->nr_vcpus) {
		snprintf(err, errlen, "the snapshot holds %u vCPU sections for %u vCPUs",
			 snap_file_count(&r->file, SNAP_SEC_VCPU), vm->nr_vcpus);
		return -EINVAL;
	}
	if (!(s = malloc(sizeof(*s)))) { /* ~110 KiB */
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < vm->nr_vcpus && !ret; i++) {
		if ((ret = section(r, SNAP_SEC_VCPU, i, &c, err, errlen)))
			break;
		vcpu_state_decode(&c, vm->host, s);
		if (!(ret = snap_cursor_end(&c, err, errlen)))
			ret = vcpu_state_apply(s, vm->vcpus[i].fd, i, err, errlen);
	}
	free(s);
	return ret;
}

static int apply_devices(struct vm *vm, const struct vm_restore *r, char *err, size_t errlen)
{
	struct snap_cursor c;
	int ret;

	if ((ret = section(r, SNAP_SEC_SERIAL, 0, &c, err, errlen)) ||
	    (ret = loaded(&c, serial_state_load(&vm->serial, &c), err, errlen)) ||
	    (ret = section(r, SNAP_SEC_I8042, 0, &c, err, errlen)) ||
	    (ret = loaded(&c, i8042_state_load(&vm->i8042, &c), err, errlen)) ||
	    (ret = section(r, SNAP_SEC_RTC, 0, &c, err, errlen)) ||
	    (ret = loaded(&c, rtc_state_load(&vm->rtc, &c), err, errlen)) ||
	    (ret = section(r, SNAP_SEC_ACPI_PM, 0, &c, err, errlen)) ||
	    (ret = loaded(&c, acpi_pm_state_load(&vm->acpi_pm, &c), err, errlen)) ||
	    (ret = section(r, SNAP_SEC_PCI, 0, &c, err, errlen)) ||
	    (ret = loaded(&c, pci_bus_state_load(&vm->pci, &c), err, errlen)))
		return ret;
	if (snap_file_count(&r->file, SNAP_SEC_VIRTIO) != vm->nr_virtio) {
		snprintf(err, errlen, "the snapshot holds %u virtio device sections for %u devices",
			 snap_file_count(&r->file, SNAP_SEC_VIRTIO), vm->nr_virtio);
		return -EINVAL;
	}
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if ((ret = section(r, SNAP_SEC_VIRTIO, i, &c, err, errlen)) ||
		    (ret = loaded(&c, virtio_pci_state_load(vm->virtio[i].pci, &c), err, errlen)))
			return ret;
	/* The ID the guest had: only checked (a new one replaces it below). */
	if ((ret = section(r, SNAP_SEC_VMGENID, 0, &c, err, errlen)))
		return ret;
	uint8_t old[VMGENID_SIZE];
	snap_get_bytes(&c, old, sizeof(old));
	return snap_cursor_end(&c, err, errlen);
}

int vm_restore_apply(struct vm *vm, const struct vm_restore *r, char *err, size_t errlen)
{
	struct snap_cursor c;
	struct vm_state vs;
	int ret;

	if ((ret = vm_host_facts(vm, err, errlen)) ||
	    (ret = section(r, SNAP_SEC_MEMORY, 0, &c, err, errlen)))
		return ret;
	if ((ret = memory_layout_check(&c, &vm->mem, err, errlen)) ||
	    (ret = apply_vcpus(vm, r, err, errlen)) ||
	    (ret = section(r, SNAP_SEC_VM, 0, &c, err, errlen)))
		return ret;
	vm_state_decode(&c, vm->host, &vs);
	if ((ret = snap_cursor_end(&c, err, errlen)) ||
	    (ret = vm_state_apply(&vs, vm->vm_fd, true, r->clock_realtime, err, errlen)) ||
	    (ret = apply_devices(vm, r, err, errlen)))
		return ret;
	/* The guest may now be one of many copies: a new ID, and the interrupt that tells it
	 * (after the irqchip's state, which would otherwise drop the edge). */
	if ((ret = vmgenid_new_generation(&vm->vmgenid))) {
		snprintf(err, errlen, "VMGenID: %s", strerror(-ret));
		return ret;
	}
	if (r->track_dirty && (ret = dirty_log_start(&vm->dirty, vm->vm_fd, &vm->mem, err, errlen)))
		return ret;
	return 0;
}
