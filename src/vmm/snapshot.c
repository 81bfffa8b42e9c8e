/* snapshot.c: a snapshot of a paused VM (vm_snapshot_create, vmm/snapshot.h): every device
 * drained, then the state file (snapshot/format.h) and the memory file (snapshot/memfile.h).
 *
 * Runs on the event-loop thread, under its seccomp filter, while the vCPUs are parked and
 * the event loop serves control handlers only (vmm/pause.c). Order: drain the devices (their
 * completions write guest memory and raise interrupts, so before anything is captured), then
 * capture every section into memory, then write the memory file, then the state file (each
 * atomically: a temporary file renamed over the path), and only then forget the dirty pages
 * a Diff wrote. A failure at any step leaves the VM as it was, paused, with nothing lost.
 */
#include "vmm/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/config_state.h"
#include "snapshot/format.h"
#include "snapshot/memfile.h"
#include "util/clock.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

/* How long the devices get to finish the I/O they have in flight. */
#define SNAPSHOT_DRAIN_MS 1000

/* Every virtio device with nothing in flight, or -EBUSY naming the first that still has. */
static int drain_devices(struct vm *vm, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_dev *d = vm->virtio[i].dev;
		bool idle;

		pthread_mutex_lock(&d->lock);
		idle = virtio_dev_quiesced(d);
		if (!idle && d->ops->drain) {
			d->ops->drain(d, SNAPSHOT_DRAIN_MS);
			idle = virtio_dev_quiesced(d);
		}
		pthread_mutex_unlock(&d->lock);
		if (!idle) {
			snprintf(err, errlen,
				 "%s: I/O still in flight after %u ms: try again (the VM stays "
				 "paused)",
				 d->id, SNAPSHOT_DRAIN_MS);
			return -EBUSY;
		}
	}
	return 0;
}

/* Add b as section (id, inst), or say which section could not be built. */
static int add(struct snap_file_writer *w, enum snap_section_id id, uint32_t inst,
	       struct snap_buf *b, int ret, char *err, size_t errlen)
{
	char name[SNAP_SECTION_NAME_LEN];

	if (!ret)
		ret = snap_buf_failed(b);
	if (!ret)
		ret = snap_file_add(w, id, inst, b);
	if (ret) {
		snap_section_name(id, inst, name, sizeof(name));
		snprintf(err, errlen, "section '%s': %s", name,
			 ret == -EBUSY ? "the device has I/O in flight" : strerror(-ret));
	}
	snap_buf_free(b);
	return ret;
}

/* What this host's KVM saves and restores (the MSR list, the XSAVE size...), probed once. */
int vm_host_facts(struct vm *vm, char *err, size_t errlen)
{
	struct kvm_host_facts *h;
	int ret;

	if (vm->host)
		return 0;
	if (!(h = malloc(sizeof(*h)))) { /* ~8 KiB: not in every VM, which never snapshots */
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((ret = kvm_host_facts_probe(vm->kvm_fd, vm->vm_fd, h, err, errlen))) {
		free(h);
		return ret;
	}
	vm->host = h;
	return 0;
}

static int capture_vcpus(struct vm *vm, struct snap_file_writer *w, char *err, size_t errlen)
{
	struct vcpu_state *s = malloc(sizeof(*s)); /* ~110 KiB: not on a thread stack */
	int ret = s ? 0 : -ENOMEM;

	for (unsigned i = 0; i < vm->nr_vcpus && !ret; i++) {
		struct snap_buf b;

		snap_buf_init(&b);
		ret = vcpu_state_capture(vm->host, vm->vcpus[i].fd, i, s, err, errlen);
		if (ret) {
			free(s);
			return ret;
		}
		vcpu_state_encode(s, &b);
		ret = add(w, SNAP_SEC_VCPU, i, &b, 0, err, errlen);
	}
	free(s);
	if (ret == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	return ret;
}

static int capture_devices(struct vm *vm, struct snap_file_writer *w, char *err, size_t errlen)
{
	struct snap_buf b;
	int ret;

	snap_buf_init(&b);
	if ((ret = add(w, SNAP_SEC_SERIAL, 0, &b, serial_state_save(&vm->serial, &b), err,
		       errlen)) ||
	    (ret = add(w, SNAP_SEC_I8042, 0, &b, i8042_state_save(&vm->i8042, &b), err, errlen)) ||
	    (ret = add(w, SNAP_SEC_RTC, 0, &b, rtc_state_save(&vm->rtc, &b), err, errlen)) ||
	    (ret = add(w, SNAP_SEC_ACPI_PM, 0, &b, acpi_pm_state_save(&vm->acpi_pm, &b), err,
		       errlen)) ||
	    (ret = add(w, SNAP_SEC_PCI, 0, &b, pci_bus_state_save(&vm->pci, &b), err, errlen)))
		return ret;
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		ret = add(w, SNAP_SEC_VIRTIO, i, &b, virtio_pci_state_save(vm->virtio[i].pci, &b),
			  err, errlen);
		if (ret)
			return ret;
	}
	snap_put_bytes(&b, vm->vmgenid.id, sizeof(vm->vmgenid.id));
	return add(w, SNAP_SEC_VMGENID, 0, &b, 0, err, errlen);
}

static int capture(struct vm *vm, struct snap_file_writer *w, char *err, size_t errlen)
{
	struct vm_state vs;
	struct snap_buf b;
	int ret;

	snap_buf_init(&b);
	config_state_encode(vm->cfg, &b);
	if ((ret = add(w, SNAP_SEC_CONFIG, 0, &b, 0, err, errlen)))
		return ret;
	memory_layout_encode(&vm->mem, &b);
	if ((ret = add(w, SNAP_SEC_MEMORY, 0, &b, 0, err, errlen)))
		return ret;
	if ((ret = vm_state_capture(vm->vm_fd, true, &vs, err, errlen)))
		return ret;
	vm_state_encode(&vs, &b);
	if ((ret = add(w, SNAP_SEC_VM, 0, &b, 0, err, errlen)) ||
	    (ret = capture_vcpus(vm, w, err, errlen)))
		return ret;
	return capture_devices(vm, w, err, errlen);
}

int vm_snapshot_create(struct vm *vm, bool diff, const char *state_path, const char *mem_path,
		       char *err, size_t errlen)
{
	struct snap_file_writer w;
	int64_t t0 = clock_ns();
	int ret;

	err[0] = '\0';
	if (!vm->paused) {
		snprintf(err, errlen, "the microVM must be paused first (PATCH /vm {\"state\": "
				      "\"Paused\"})");
		return -EINVAL;
	}
	if (diff && !vm->dirty.on) {
		snprintf(err, errlen, "snapshot_type: a Diff snapshot needs dirty page tracking "
				      "(track_dirty_pages in PUT /machine-config or /snapshot/load)");
		return -EINVAL;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].unsettled) {
			snprintf(err, errlen,
				 "vcpu %u paused in the middle of an I/O instruction: resume the "
				 "microVM and pause it again",
				 i);
			return -EBUSY;
		}
	if ((ret = drain_devices(vm, err, errlen)) || (ret = vm_host_facts(vm, err, errlen)))
		return ret;
	/* Everything dirtied so far, KVM's log and kiln's own writes: a Diff writes it, a Full
	 * holds it anyway; both forget it once written. */
	if (vm->dirty.on && (ret = dirty_log_sync(&vm->dirty, err, errlen)))
		return ret;

	snap_file_writer_init(&w);
	ret = capture(vm, &w, err, errlen);
	if (!ret)
		ret = memfile_write(&vm->mem, mem_path, diff ? vm->dirty.pages : NULL, NULL, err,
				    errlen);
	if (!ret)
		ret = snap_file_write(&w, state_path, err, errlen);
	snap_file_writer_free(&w);
	if (ret)
		return ret;
	/* Both files are whole: the next Diff starts from here. */
	if (vm->dirty.on)
		dirty_log_clear(&vm->dirty);
	log_info("snapshot: %s snapshot of %llu MiB written in %.1f ms (%s, %s)",
		 diff ? "Diff" : "Full", (unsigned long long)(vm->mem.ram_size >> 20),
		 (double)(clock_ns() - t0) / 1e6, state_path, mem_path);
	return 0;
}
