/* vm.h: one VM's lifecycle: create from a vm_config, run until the guest or the user ends it. */
#pragma once

#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "arch/x86/boot.h"
#include "config.h"
#include "devices/acpi_pm.h"
#include "devices/pci.h"
#include "devices/i8042.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/stop.h"
#include "devices/vmgenid.h"
#include "vmm/bus.h"
#include "vmm/dirty.h"
#include "vmm/irq.h"
#include "vmm/event.h"
#include "vmm/memory.h"
#include "vmm/output.h"
#include "snapshot/uffd.h"
#include "virtio/virtio.h"

struct vm;

/* Virtio devices: disks in --disk order, then network interfaces in --net order, then rng,
 * then console. */
#define VM_MAX_VIRTIO (VM_CONFIG_MAX_DISKS + VM_CONFIG_MAX_NETS + 2)

struct vm_virtio {
	struct virtio_dev *dev;
	struct virtio_pci *pci;
	int fd; /* a host fd the device uses and the VM owns (console file), or -1 */
};

struct kvm_host_facts;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	_Atomic bool dump_requested; /* log registers at the next exit (SIGUSR1) */
	/* pause.c: the vCPU parked with an exit KVM still had to complete (an instruction
	 * that kept exiting past SETTLE_MAX): its state cannot be captured until it runs on. */
	bool unsettled;
	uint64_t paused_tsc; /* pause.c: guest TSC when the VM was paused */
	bool paused_tsc_valid;
	/* vCPU 0 wakes from the start gate on the CPU of the event loop, which is about to block
	 * (vcpu_release_all), then takes back this, the affinity it had. */
	bool restore_affinity;
	cpu_set_t affinity;
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	int run_size; /* mmap size of struct kvm_run */
	struct kvm_cpuid2 *cpuid; /* supported CPUID, patched per vCPU */
	struct {		  /* the vCPUs' set-up thread at start-up (vm.c, "prep") */
		pthread_t thread;
		bool started;
		pthread_mutex_t lock;
		pthread_cond_t cond;
		int irqchip; /* 0: not yet, 1: created, -1: start-up failed, give up */
		int ret;
		char err[256];
	} prep;
	bool host_pvm;		  /* /dev/kvm is PVM-backed: see docs/design.md, "PVM host" */

	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct event_loop ev;

	struct serial serial;
	int serial_out_fd; /* owned if SERIAL_FILE */
	/* The UART's output sink (vmm/output.h): what a slow reader costs is counted there,
	 * never a stalled vCPU. virtio-console has its own (virtio_console_output()). */
	struct output serial_out;
	struct i8042 i8042;
	struct rtc rtc;
	struct acpi_pm acpi_pm;
	struct vmgenid vmgenid; /* a new ID at every restore and fork */
	struct irq_router irq; /* GSI routes: legacy pins + MSI */
	struct pci_bus pci;    /* bus 0: host bridge, then PCI devices */
	struct vm_virtio virtio[VM_MAX_VIRTIO]; /* [0, nr_virtio) are live */
	unsigned nr_virtio;
	struct virtio_dev *console; /* the virtio-console among them, or NULL */

	struct boot_info boot;
	gpa_t rsdp;

	struct vcpu *vcpus;
	unsigned nr_vcpus;

	_Atomic int stop_reason; /* enum vm_stop_reason, first writer wins */
	/* 0 until the event loop has its seccomp filter: each vCPU thread installs its own, then
	 * waits for this before its first KVM_RUN (vm_run, sandbox/seccomp.h). A futex word. */
	_Atomic int vcpus_go;
	int stop_efd;            /* eventfd: wakes the event loop when a stop is requested */
	int stdin_fd;            /* -1 when serial input is not from stdin */
	_Atomic bool stdin_paused;
	int stop_signal; /* signal that ended the VM (VM_STOP_USER), else 0 */

	/* pause.c: while pause_requested is set, vCPU threads park on pause_cond (outside
	 * KVM_RUN) and the event loop runs only control handlers. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond; /* CLOCK_MONOTONIC */
	_Atomic bool pause_ready;  /* vm_pause_init() ran */
	_Atomic bool pause_requested;
	unsigned nr_parked; /* under pause_lock */
	bool paused;        /* main thread only */
	bool paused_clock_valid;
	struct kvm_clock_data paused_clock;

	/* Snapshots (vmm/snapshot.h): what this host's KVM saves, probed at the first use, and
	 * the pages dirtied since the last snapshot while tracking is on. */
	struct kvm_host_facts *host; /* NULL until the first snapshot or restore needs it */
	struct dirty_log dirty;
	/* A restore from a Uffd backend: the handler that serves guest RAM (snapshot/uffd.h). */
	struct uffd_backend uffd;
};

/* Build the whole VM (KVM objects, memory, devices, tables, kernel, vCPUs) from cfg.
 * Nothing runs yet. On error writes a one-line message into err and returns -errno; the
 * partially built VM is torn down. */
int vm_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen) __must_check;

/* The same from a snapshot opened with vm_restore_open (vmm/restore.h): the VM it describes,
 * its memory from the memory file and every saved state applied, nothing run yet. r (and its
 * configuration, which vm->cfg points at) must outlive the VM. */
struct vm_restore;
int vm_create_restore(struct vm *vm, const struct vm_restore *r, char *err,
		      size_t errlen) __must_check;

/* Start the vCPU threads and run the event loop on the calling thread until the VM stops.
 * Returns the stop reason. */
enum vm_stop_reason vm_run(struct vm *vm);

/* kiln's exit status for a VM that stopped for `why` (sig: the signal that stopped it, or 0):
 * 0 for a guest reset or power-off, 128 + sig for a signal, else 1 with a line on stderr. */
int vm_exit_status(enum vm_stop_reason why, int sig);

void vm_destroy(struct vm *vm);

/* True when /dev/kvm is backed by PVM (module kvm_pvm), whose quirks kiln works around: see
 * docs/design.md, "PVM host". */
bool kvm_host_is_pvm(void);

/* Ask the VM to stop (any thread). The first reason wins. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason why);

/* Replace the backing file of drive `id` while the guest runs (PATCH /drives): see
 * virtio_blk_set_path(). Event-loop (main) thread only; the VM may be running or paused.
 * Returns 0, or -errno with a one-line message in err; on error the drive keeps its file. */
int vm_drive_update_path(struct vm *vm, const char *id, const char *path, char *err,
			 size_t errlen) __must_check;

/* A VM built but not run yet (a snapshot loaded without resume_vm) starts paused: vm_run
 * parks the vCPUs before their first instruction until vm_resume. vm_pause_init first.
 * 0, or -errno when the device handlers could not be held (the VM is paused anyway). */
int vm_pause_preboot(struct vm *vm);

/* pause.c. vm_pause_init() once after vm_create() and before vm_run() enables pausing.
 * vm_pause() and vm_resume() run on the event-loop thread: pause returns once every vCPU
 * is parked outside KVM_RUN and device handlers are held; the guest's clocks (kvmclock,
 * TSC) do not advance while paused. A stop request wakes parked vCPUs so they can exit. */
int vm_pause_init(struct vm *vm) __must_check;
int vm_pause(struct vm *vm, char *err, size_t errlen) __must_check;
int vm_resume(struct vm *vm, char *err, size_t errlen) __must_check;
void vm_pause_wake(struct vm *vm);
/* Called by a vCPU thread that sees pause_requested: blocks until resume or stop. */
void vcpu_park(struct vcpu *v);

/* vcpu.c */
/* vCPU id of vm, with no fd or kvm_run yet: what vcpu_start and vcpu_create need. */
void vcpu_init(struct vm *vm, struct vcpu *v, unsigned id);
/* KVM_CREATE_VCPU, the kvm_run mapping, CPUID, MSRs and LAPIC (the set-up thread's calls). */
int vcpu_create(struct vm *vm, struct vcpu *v, char *err, size_t errlen) __must_check;
/* Start the vCPU's thread (after vcpu_init; before or after vcpu_create): it installs its
 * seccomp filter, then waits for vcpu_release_all (the VM built, the event loop confined)
 * before it touches the vCPU's fd or kvm_run. */
int vcpu_start(struct vcpu *v) __must_check;
void vcpu_kick(struct vcpu *v);
/* Let the vCPU threads, each under its own seccomp filter, enter the guest (vm->vcpus_go). */
void vcpu_release_all(struct vm *vm);
/* Ask the vCPU thread to log its registers (debugging a stuck guest). */
void vcpu_request_dump(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Signal used to kick vCPUs out of KVM_RUN; installed once by vm_create. */
int vcpu_signal_setup(void) __must_check;
