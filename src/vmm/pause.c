/* pause.c: pause and resume a running VM: park every vCPU outside KVM_RUN, hold the devices,
 * and keep the guest's clocks still across the pause. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "util/log.h"
#include "vmm/vm.h"
#include "util/clock.h"

#define MSR_IA32_TSC 0x10
/* A vCPU that does not leave KVM_RUN within this long is stuck in a device handler. */
#define PAUSE_TIMEOUT_MS 5000

int vm_pause_init(struct vm *vm)
{
	int ret;

	ret = pthread_mutex_init(&vm->pause_lock, NULL);
	if (ret)
		return -ret;
	ret = clock_cond_init(&vm->pause_cond);
	if (ret) {
		pthread_mutex_destroy(&vm->pause_lock);
		return ret;
	}
	vm->nr_parked = 0;
	vm->paused = false;
	atomic_store(&vm->pause_requested, false);
	atomic_store(&vm->pause_ready, true);
	return 0;
}

void vm_pause_wake(struct vm *vm)
{
	if (!atomic_load(&vm->pause_ready))
		return;
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vcpu_park(struct vcpu *v)
{
	struct vm *vm = v->vm;

	if (!atomic_load(&vm->pause_ready))
		return;
	pthread_mutex_lock(&vm->pause_lock);
	vm->nr_parked++;
	pthread_cond_broadcast(&vm->pause_cond); /* vm_pause() counts parked vCPUs */
	while (atomic_load(&vm->pause_requested) && atomic_load(&vm->stop_reason) == VM_STOP_NONE)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->nr_parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

static unsigned running_vcpus(const struct vm *vm)
{
	unsigned n = 0;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		n += vm->vcpus[i].thread_started;
	return n;
}

/* Wait until `want` vCPUs are parked; false on timeout or if the VM is stopping. */
static bool wait_parked(struct vm *vm, unsigned want)
{
	struct timespec deadline = clock_after_ms(PAUSE_TIMEOUT_MS);
	bool ok = true;

	pthread_mutex_lock(&vm->pause_lock);
	while (vm->nr_parked < want && atomic_load(&vm->stop_reason) == VM_STOP_NONE) {
		if (pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &deadline) ==
		    ETIMEDOUT) {
			ok = vm->nr_parked >= want;
			break;
		}
	}
	if (atomic_load(&vm->stop_reason) != VM_STOP_NONE)
		ok = false;
	pthread_mutex_unlock(&vm->pause_lock);
	return ok;
}

static int get_tsc(struct vcpu *v, uint64_t *tsc)
{
	/* struct kvm_msrs with room for one entry */
	union {
		struct kvm_msrs hdr;
		uint8_t buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.hdr.entries[0].index = MSR_IA32_TSC;
	if (ioctl(v->fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	*tsc = m.hdr.entries[0].data;
	return 0;
}

/* Take the time the VM spent paused back out of the guest TSC: move every vCPU's TSC offset
 * back by how far the BSP's TSC ran on since the pause. One delta for all keeps vCPUs that
 * were in sync in sync. */
static void restore_tsc(struct vm *vm)
{
	struct vcpu *bsp = &vm->vcpus[0];
	uint64_t now = 0;

	if (!bsp->paused_tsc_valid || get_tsc(bsp, &now) || now <= bsp->paused_tsc)
		return;
	bsp->paused_tsc_valid = false;
	uint64_t delta = now - bsp->paused_tsc;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int64_t offset;
		struct kvm_device_attr attr = {
		    .group = KVM_VCPU_TSC_CTRL,
		    .attr = KVM_VCPU_TSC_OFFSET,
		    .addr = (uint64_t)(uintptr_t)&offset,
		};

		if (!v->thread_started)
			continue;
		if (ioctl(v->fd, KVM_GET_DEVICE_ATTR, &attr) == 0) {
			offset -= (int64_t)delta;
			if (ioctl(v->fd, KVM_SET_DEVICE_ATTR, &attr) == 0)
				continue;
		}
		log_once(LOG_INFO,
			 "vcpu %u: cannot move the TSC offset (%s): the guest TSC runs on "
			 "across pauses",
			 v->id, strerror(errno));
	}
}

static void save_clocks(struct vm *vm)
{
	struct vcpu *bsp = &vm->vcpus[0];

	vm->paused_clock_valid = ioctl(vm->vm_fd, KVM_GET_CLOCK, &vm->paused_clock) == 0;
	bsp->paused_tsc_valid = bsp->thread_started && get_tsc(bsp, &bsp->paused_tsc) == 0;
}
static void restore_clocks(struct vm *vm)
{
	restore_tsc(vm);
	if (vm->paused_clock_valid) {
		/* Only the clock value: flags such as KVM_CLOCK_REALTIME would move it on. */
		struct kvm_clock_data c = {.clock = vm->paused_clock.clock};
		if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0)
			log_once(LOG_INFO, "KVM_SET_CLOCK: %s: kvmclock runs on across pauses",
				 strerror(errno));
		vm->paused_clock_valid = false;
	}
}

int vm_pause_preboot(struct vm *vm)
{
	/* The vCPUs park at the top of their loop, before their first KVM_RUN. */
	atomic_store(&vm->pause_requested, true);
	int ret = event_loop_set_paused(&vm->ev, true);
	save_clocks(vm);
	vm->paused = true;
	log_info("vm: starts paused");
	return ret;
}

int vm_pause(struct vm *vm, char *err, size_t errlen)
{
	if (!atomic_load(&vm->pause_ready)) {
		snprintf(err, errlen, "vm: pausing is not enabled for this VM");
		return -ENOTSUP;
	}
	if (vm->paused)
		return 0;
	if (atomic_load(&vm->stop_reason) != VM_STOP_NONE) {
		snprintf(err, errlen, "vm: the VM is stopping");
		return -ESHUTDOWN;
	}
	/* Set before the kick: a vCPU that wakes from the kick (or that is about to enter
	 * KVM_RUN with immediate_exit set) checks this flag at the top of its loop. */
	atomic_store(&vm->pause_requested, true);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	if (!wait_parked(vm, running_vcpus(vm))) {
		atomic_store(&vm->pause_requested, false);
		vm_pause_wake(vm);
		if (atomic_load(&vm->stop_reason) != VM_STOP_NONE) {
			snprintf(err, errlen, "vm: the VM stopped while pausing");
			return -ESHUTDOWN;
		}
		snprintf(err, errlen, "vm: a vCPU did not stop within %u ms; the VM keeps running",
			 PAUSE_TIMEOUT_MS);
		return -ETIMEDOUT;
	}
	int ret = event_loop_set_paused(&vm->ev, true);
	if (ret)
		log_warn("vm: holding device handlers: %s", strerror(-ret));
	save_clocks(vm);
	vm->paused = true;
	log_info("vm: paused");
	return 0;
}

int vm_resume(struct vm *vm, char *err, size_t errlen)
{
	if (!atomic_load(&vm->pause_ready)) {
		snprintf(err, errlen, "vm: pausing is not enabled for this VM");
		return -ENOTSUP;
	}
	if (!vm->paused)
		return 0;
	restore_clocks(vm);
	int ret = event_loop_set_paused(&vm->ev, false);
	if (ret)
		log_warn("vm: releasing device handlers: %s", strerror(-ret));
	vm->paused = false;
	atomic_store(&vm->pause_requested, false);
	vm_pause_wake(vm);
	log_info("vm: resumed");
	return 0;
}
