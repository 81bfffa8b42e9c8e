/* vm.h: one VM's lifecycle: create from a vm_config, run until the guest or the user ends it. */
#pragma once

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "arch/x86/boot.h"
#include "config.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/stop.h"
#include "vmm/bus.h"
#include "vmm/event.h"
#include "vmm/memory.h"

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	_Atomic bool dump_requested; /* log registers at the next exit (SIGUSR1) */
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	int run_size; /* mmap size of struct kvm_run */
	struct kvm_cpuid2 *cpuid; /* supported CPUID, patched per vCPU */

	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct event_loop ev;

	struct serial serial;
	int serial_out_fd; /* owned if SERIAL_FILE */
	struct i8042 i8042;
	struct rtc rtc;
	struct acpi_pm acpi_pm;

	struct boot_info boot;
	gpa_t rsdp;

	struct vcpu *vcpus;
	unsigned nr_vcpus;

	_Atomic int stop_reason; /* enum vm_stop_reason, first writer wins */
	int stop_efd;            /* eventfd: wakes the event loop when a stop is requested */
	int stdin_fd;            /* -1 when serial input is not from stdin */
	_Atomic bool stdin_paused;
	int stop_signal; /* signal that ended the VM (VM_STOP_USER), else 0 */
};

/* Build the whole VM (KVM objects, memory, devices, tables, kernel, vCPUs) from cfg.
 * Nothing runs yet. On error writes a one-line message into err and returns -errno; the
 * partially built VM is torn down. */
int vm_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen) __must_check;

/* Start the vCPU threads and run the event loop on the calling thread until the VM stops.
 * Returns the stop reason. */
enum vm_stop_reason vm_run(struct vm *vm);

void vm_destroy(struct vm *vm);

/* Ask the VM to stop (any thread). The first reason wins. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason why);

/* vcpu.c */
int vcpu_create(struct vm *vm, struct vcpu *v, unsigned id, char *err, size_t errlen) __must_check;
int vcpu_start(struct vcpu *v) __must_check;
void vcpu_kick(struct vcpu *v);
/* Ask the vCPU thread to log its registers (debugging a stuck guest). */
void vcpu_request_dump(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Signal used to kick vCPUs out of KVM_RUN; installed once by vm_create. */
int vcpu_signal_setup(void) __must_check;
