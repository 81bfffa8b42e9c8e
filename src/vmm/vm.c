/* vm.c: VM lifecycle: KVM objects, guest RAM, devices, ACPI, kernel, vCPUs; run and stop. */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/acpi_pci.h"
#include "arch/x86/cpu.h"
#include "arch/x86/layout.h"
#include "arch/x86/regs.h"
#include "sandbox/seccomp.h"
#include "util/file.h"
#include "util/log.h"
#include "virtio/net.h"
#include "vmm/console.h"
#include "vmm/dirty.h"
#include "vmm/restore.h"

/* Where KVM puts the real-mode TSS and identity page it needs on Intel (3 pages below
 * the IOAPIC, inside the MMIO hole, never RAM). */
#define KVM_TSS_ADDR 0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

/* What file_open_output() accepts for --serial file= and --console file=. */
#define OUTPUT_KINDS (FILE_KIND_REG | FILE_KIND_CHR | FILE_KIND_FIFO)
/* After the vCPUs stop: how long the guest's last output may wait for a slow reader, per
 * output (a SIGTERM still ends kiln well within a second). */
#define VM_OUTPUT_DRAIN_MS 150

void vm_request_stop(struct vm *vm, enum vm_stop_reason why)
{
	int expected = VM_STOP_NONE;
	if (!atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)why))
		return;
	uint64_t one = 1;
	ssize_t w = write(vm->stop_efd, &one, sizeof(one));
	(void)w;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	vm_pause_wake(vm); /* parked vCPUs must see the stop too */
}

static void stopper_request(void *opaque, enum vm_stop_reason why)
{
	vm_request_stop(opaque, why);
}

static void irq_line_kvm(void *opaque, unsigned gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn_ratelimited("KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

static void port_ignore(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	/* POST code port and similar: writes vanish, reads float high. */
	if (!is_write)
		memset(data, 0xff, len);
}

/* Serial input: the event loop reads stdin only while the UART's FIFO has room. */
static void stdin_ready(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint8_t buf[SERIAL_FIFO_SIZE];
	size_t room = serial_rx_free(&vm->serial);

	if (room == 0) {
		vm->stdin_paused = true;
		event_mod(&vm->ev, vm->stdin_fd, 0);
		/* Pairs with serial_rx_space(): the guest may have drained the FIFO between the
		 * check above and the pause, in which case its wake-up saw stdin_paused false. */
		if (serial_rx_free(&vm->serial) == 0)
			return;
		vm->stdin_paused = false;
		event_mod(&vm->ev, vm->stdin_fd, EPOLLIN);
		return;
	}
	ssize_t n = read(vm->stdin_fd, buf, MIN(room, sizeof(buf)));
	if (n > 0) {
		serial_receive(&vm->serial, buf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	/* EOF or error: the guest keeps running without console input. */
	event_del(&vm->ev, vm->stdin_fd);
	vm->stdin_fd = -1;
}

static void serial_rx_space(void *opaque)
{
	struct vm *vm = opaque;
	int fd = vm->stdin_fd;
	if (atomic_exchange(&vm->stdin_paused, false) && fd >= 0)
		event_mod(&vm->ev, fd, EPOLLIN);
}

static int register_pio(struct vm *vm, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
			const char *name, char *err, size_t errlen)
{
	int ret = bus_register(&vm->pio, base, len, fn, opaque, name);
	if (ret)
		snprintf(err, errlen, "device %s: port 0x%llx: %s", name, (unsigned long long)base,
			 strerror(-ret));
	return ret;
}

static int setup_devices(struct vm *vm, char *err, size_t errlen)
{
	const struct vm_config *cfg = vm->cfg;
	struct vm_stopper stop = { .request = stopper_request, .opaque = vm };
	int out_fd = -1;
	int ret;

	switch (cfg->serial_mode) {
	case SERIAL_STDIO:
		out_fd = STDOUT_FILENO;
		break;
	case SERIAL_FILE:
		vm->serial_out_fd = file_open_output(cfg->serial_path);
		if (vm->serial_out_fd < 0) {
			ret = vm->serial_out_fd;
			vm->serial_out_fd = -1;
			snprintf(err, errlen, "--serial: %s: %s%s", cfg->serial_path,
				 ret == -EMEDIUMTYPE ? "not " : "",
				 ret == -EMEDIUMTYPE ? file_kinds_name(OUTPUT_KINDS) : strerror(-ret));
			return ret;
		}
		out_fd = vm->serial_out_fd;
		break;
	case SERIAL_OFF:
		break;
	}
	/* Never blocks the vCPU that writes THR (docs/design.md, "Guest output"). */
	ret = output_open(&vm->serial_out, "serial", out_fd, &vm->ev, err, errlen);
	if (ret)
		return ret;
	serial_init(&vm->serial, &vm->serial_out,
		    (struct irq_line){ .set = irq_line_kvm, .opaque = vm, .gsi = SERIAL_COM1_IRQ });
	vm->serial.rx_space = serial_rx_space;
	vm->serial.rx_space_opaque = vm;
	i8042_init(&vm->i8042, stop);
	rtc_init(&vm->rtc);
	acpi_pm_init(&vm->acpi_pm, stop);

	/* Fixed order, explicit: these are the legacy devices every x86 guest expects. */
	if ((ret = register_pio(vm, SERIAL_COM1_BASE, SERIAL_NR_PORTS, serial_io, &vm->serial,
				"serial", err, errlen)) ||
	    (ret = register_pio(vm, I8042_DATA_PORT, 1, i8042_data_io, &vm->i8042, "i8042", err,
				errlen)) ||
	    (ret = register_pio(vm, I8042_CMD_PORT, 1, i8042_cmd_io, &vm->i8042, "i8042", err,
				errlen)) ||
	    (ret = register_pio(vm, RTC_PORT_BASE, 2, rtc_io, &vm->rtc, "rtc", err, errlen)) ||
	    (ret = register_pio(vm, ACPI_PM_PORT_BASE, ACPI_PM_NR_PORTS, acpi_pm_io, &vm->acpi_pm,
				"acpi-pm", err, errlen)) ||
	    (ret = register_pio(vm, 0x80, 1, port_ignore, NULL, "post", err, errlen)))
		return ret;
	return 0;
}

/* GSI routing (the irqchip exists by now) and PCI bus 0 with its host bridge, after the legacy
 * devices. PCI devices are added to vm->pci after this. */
static int setup_pci(struct vm *vm, char *err, size_t errlen)
{
	int ret = irq_router_init(&vm->irq, vm->vm_fd);
	if (ret) {
		snprintf(err, errlen, "KVM_SET_GSI_ROUTING: %s", strerror(-ret));
		return ret;
	}
	ret = pci_bus_init(&vm->pci, &vm->pio, &vm->mmio, &vm->irq, vm->vm_fd, &vm->mem);
	if (ret)
		snprintf(err, errlen, "PCI bus: %s", strerror(-ret));
	return ret;
}

/* Virtio devices on PCI, after the bus exists and before ACPI: disks in --disk order (so the
 * guest sees vda, vdb... in that order), then network interfaces in --net order (eth0...),
 * then rng, then the console. */
static int setup_virtio_devices(struct vm *vm, char *err, size_t errlen)
{
	const struct vm_config *cfg = vm->cfg;
	struct virtio_env env = { .mem = &vm->mem, .ev = &vm->ev };
	unsigned nets = cfg->nr_disks + cfg->nr_nets;
	int ret;

	for (unsigned i = 0; i <= nets + 1; i++) {
		struct vm_virtio *v = &vm->virtio[vm->nr_virtio];

		v->fd = -1;
		v->dev = NULL;
		if (i < cfg->nr_disks) {
			ret = virtio_blk_create(&env, &cfg->disks[i], &v->dev, err, errlen);
		} else if (i < nets) {
			ret = virtio_net_create(&env, &cfg->nets[i - cfg->nr_disks], &v->dev, err,
						errlen);
		} else if (i == nets) {
			if (!cfg->rng)
				continue;
			ret = virtio_rng_create(&env, &v->dev, err, errlen);
		} else {
			int in = -1, out = -1;

			if (cfg->console_mode == SERIAL_OFF)
				continue;
			if (cfg->console_mode == SERIAL_STDIO) {
				in = STDIN_FILENO;
				out = STDOUT_FILENO;
			} else {
				v->fd = file_open_output(cfg->console_path);
				if (v->fd < 0) {
					ret = v->fd;
					v->fd = -1;
					snprintf(err, errlen, "--console: %s: %s%s",
						 cfg->console_path, ret == -EMEDIUMTYPE ? "not " : "",
						 ret == -EMEDIUMTYPE ? file_kinds_name(OUTPUT_KINDS)
								     : strerror(-ret));
					return ret;
				}
				out = v->fd;
			}
			/* hvc0 output never blocks the event loop (docs/design.md, "Guest output") */
			ret = virtio_console_create(&env, in, out, &v->dev, err, errlen);
			vm->console = ret ? NULL : v->dev;
		}
		vm->nr_virtio++; /* from here on destroy_virtio_devices() cleans it up */
		if (ret)
			return ret;
		ret = virtio_pci_create(v->dev, &vm->pci, vm->vm_fd, &v->pci);
		if (ret) {
			snprintf(err, errlen, "%s: PCI: %s", v->dev->id, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* After pci_bus_destroy (it still walks the devices) and before guest RAM goes: blk drains
 * in-flight I/O into it. */
static void destroy_virtio_devices(struct vm *vm)
{
	for (unsigned i = vm->nr_virtio; i-- > 0;) {
		struct vm_virtio *v = &vm->virtio[i];

		virtio_pci_destroy(v->pci);
		virtio_dev_destroy(v->dev);
		if (v->fd >= 0)
			close(v->fd);
		*v = (struct vm_virtio){ .fd = -1 };
	}
	vm->nr_virtio = 0;
}

/* The Uffd backend's handler hung up: guest RAM it has not served yet can never arrive, and a
 * vCPU touching it would wait forever. */
static void uffd_gone(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;

	(void)events;
	event_del(&vm->ev, vm->uffd.sock);
	log_err("memory: the page-fault handler (Uffd backend) hung up: stopping the VM");
	vm_request_stop(vm, VM_STOP_ERROR);
}

/* Guest RAM: anonymous for a boot; for a restore, the snapshot's memory file (copy-on-write)
 * or a Uffd handler's pages. */
static int map_ram(struct vm *vm, const struct vm_restore *r, char *err, size_t errlen)
{
	int ret;

	if (r && r->uffd_sock) { /* a restore whose RAM another process serves, page by page */
		ret = uffd_backend_attach(&vm->mem, vm->cfg->mem_size, r->uffd_sock,
					  UFFD_HANDSHAKE_TIMEOUT_MS, &vm->uffd, err, errlen);
		if (!ret && (ret = event_add_control(&vm->ev, vm->uffd.sock, EPOLLRDHUP, uffd_gone,
						     vm)))
			snprintf(err, errlen, "mem_backend: watching the handler's socket: %s",
				 strerror(-ret));
		return ret;
	}
	if (r && r->mem_fd >= 0)
		return guest_mem_init_from_file(&vm->mem, vm->cfg->mem_size, r->mem_fd, r->mem_name,
						err, errlen);
	ret = guest_mem_init(&vm->mem, vm->cfg->mem_size);
	if (ret)
		snprintf(err, errlen, "guest memory (%llu MiB): %s",
			 (unsigned long long)(vm->cfg->mem_size >> 20), strerror(-ret));
	return ret;
}

static int setup_memory(struct vm *vm, const struct vm_restore *r, char *err, size_t errlen)
{
	int ret = map_ram(vm, r, err, errlen);

	/* Dirty logging, when a snapshot needs it, is switched on later (dirty_log_start). */
	return ret ? ret : dirty_set_slots(vm->vm_fd, &vm->mem, false, err, errlen);
}

/*
 * A PVM-backed /dev/kvm (module kvm_pvm) runs guests that are not PVM-aware by emulating their
 * kernel. It cannot complete a hypercall: with KVM's "fix hypercall instruction" quirk the vCPU
 * re-executes VMCALL/VMMCALL forever, without it the guest gets #UD. So: hide the paravirt
 * features that are used through hypercalls (the guest falls back to APIC IPIs and HLT), and
 * turn the quirk off so that a stray hypercall is a visible guest #UD, not a silent hang.
 */
bool kvm_host_is_pvm(void) { return access("/sys/module/kvm_pvm", F_OK) == 0; }

/* The quirk, on this thread once the VM exists (KVM_ENABLE_CAP is on no seccomp list); the
 * CPUID features are hidden by the set-up thread (create_vcpus). */
static void pvm_host_setup(struct vm *vm)
{
	int quirks = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2);
	if (quirks > 0 && (quirks & KVM_X86_QUIRK_FIX_HYPERCALL_INSN)) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_DISABLE_QUIRKS2,
					      .args[0] = KVM_X86_QUIRK_FIX_HYPERCALL_INSN };
		if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
			log_warn("PVM host: cannot disable the hypercall-fix quirk: %s",
				 strerror(errno));
	}
	log_once(LOG_INFO, "PVM host: hypercall paravirt features hidden from the guest");
}

/*
 * The vCPUs are set up on a helper thread while this one builds the rest of the VM: the two
 * slowest parts of the set-up (0.3-0.5 ms for KVM_GET_SUPPORTED_CPUID, which runs host CPUID
 * for every leaf, and 0.2-0.3 ms per vCPU on a PVM host) then overlap the VM's creation and its
 * devices, ACPI tables and kernel load. The thread starts once /dev/kvm is open and fetches the
 * CPUID; it creates the vCPUs once vm_create has made the irqchip (KVM requires that order)
 * and says so (prep_release); prep_join collects them, and without a thread (pthread_create
 * failed) does the work itself. Only the boot registers wait for the kernel load.
 *
 * The set-up thread has a seccomp list of its own ("setup", sandbox/seccomp.h), with
 * KVM_CREATE_VCPU and the vCPU set-up ioctls, and it starts the vCPU threads. A new thread
 * inherits its creator's filter, and stacked filters must all allow a call: a vCPU thread
 * started under the set-up list could not run KVM_RUN. So the set-up thread starts every vCPU
 * thread first, while it has no filter (start_vcpu_threads: each thread installs the vCPU list
 * and waits at the start gate, reading nothing but its id until vm_run opens the gate, after
 * prep_join), then installs its own list, and only then fetches the CPUID and creates the
 * vCPUs. Each thread ends up with exactly one filter, and the set-up list needs no clone.
 */
static int fetch_cpuid(struct vm *vm, char *err, size_t errlen)
{
	int ret = x86_cpuid_get_supported(vm->kvm_fd, &vm->cpuid);

	if (ret)
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-ret));
	return ret;
}

/* The vCPU array, and a thread for each vCPU before the vCPU itself exists. */
static int start_vcpu_threads(struct vm *vm, char *err, size_t errlen)
{
	int ret = 0;

	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		snprintf(err, errlen, "out of memory for %u vCPUs", vm->nr_vcpus);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_init(vm, &vm->vcpus[i], i);
	/* Each installs its filter while the VM is still being built, off the start-up's
	 * critical path, then waits for vm_run. */
	for (unsigned i = 0; i < vm->nr_vcpus && !ret; i++)
		if ((ret = vcpu_start(&vm->vcpus[i])))
			snprintf(err, errlen, "vcpu %u: thread: %s", i, strerror(-ret));
	return ret;
}

/* The CPUID list (unless the thread fetched it already), then every vCPU. */
static int create_vcpus(struct vm *vm, char *err, size_t errlen)
{
	int ret = vm->cpuid ? 0 : fetch_cpuid(vm, err, errlen);

	if (ret)
		return ret;
	if (vm->host_pvm)
		x86_cpuid_mask_hypercall_features(vm->cpuid);
	for (unsigned i = 0; i < vm->nr_vcpus && !ret; i++)
		ret = vcpu_create(vm, &vm->vcpus[i], err, errlen);
	return ret;
}

static void *prep_thread(void *opaque)
{
	struct vm *vm = opaque;
	char *err = vm->prep.err;
	size_t errlen = sizeof(vm->prep.err);
	int ret, go;

	pthread_setname_np(pthread_self(), "vcpu-setup");
	/* The vCPU threads before this thread's filter: they must not inherit it (above). */
	ret = start_vcpu_threads(vm, err, errlen);
	if (!ret && !(ret = seccomp_enter(SECCOMP_SETUP, "vcpu-setup", err, errlen))) {
		seccomp_test_violation(SECCOMP_SETUP, vm->kvm_fd);
		ret = fetch_cpuid(vm, err, errlen);
	}
	pthread_mutex_lock(&vm->prep.lock);
	while (!vm->prep.irqchip)
		pthread_cond_wait(&vm->prep.cond, &vm->prep.lock);
	go = vm->prep.irqchip > 0;
	pthread_mutex_unlock(&vm->prep.lock);
	if (!ret && go)
		ret = create_vcpus(vm, err, errlen);
	vm->prep.ret = ret;
	return NULL;
}

static void prep_start(struct vm *vm)
{
	pthread_attr_t attr;

	if (pthread_attr_init(&attr))
		return;
	pthread_mutex_init(&vm->prep.lock, NULL);
	pthread_cond_init(&vm->prep.cond, NULL);
	vm->prep.started = !pthread_attr_setstacksize(&attr, 128 * KiB) &&
			   !pthread_create(&vm->prep.thread, &attr, prep_thread, vm);
	pthread_attr_destroy(&attr);
	if (!vm->prep.started) {
		pthread_cond_destroy(&vm->prep.cond);
		pthread_mutex_destroy(&vm->prep.lock);
	}
}

/* The irqchip exists (ok), or the start-up failed before it did: let the thread go on. */
static void prep_release(struct vm *vm, bool ok)
{
	if (!vm->prep.started)
		return;
	pthread_mutex_lock(&vm->prep.lock);
	vm->prep.irqchip = ok ? 1 : -1;
	pthread_cond_signal(&vm->prep.cond);
	pthread_mutex_unlock(&vm->prep.lock);
}

/* Without a set-up thread, this thread (no filter before vm_run) does its work in line. */
static int prep_join(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	if (!vm->prep.started) {
		ret = start_vcpu_threads(vm, err, errlen);
		return ret ? ret : create_vcpus(vm, err, errlen);
	}
	pthread_join(vm->prep.thread, NULL);
	pthread_cond_destroy(&vm->prep.cond);
	pthread_mutex_destroy(&vm->prep.lock);
	vm->prep.started = false;
	ret = vm->prep.ret;
	if (ret)
		snprintf(err, errlen, "%s", vm->prep.err);
	return ret;
}

static int open_kvm(struct vm *vm, char *err, size_t errlen)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm->host_pvm = kvm_host_is_pvm();
	if (vm->kvm_fd < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen, "/dev/kvm: no such device: KVM is not available on this "
					      "host (load kvm_intel or kvm_amd)");
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen, "/dev/kvm: permission denied: add the user to the kvm "
					      "group or run with access to /dev/kvm");
		else
			snprintf(err, errlen, "/dev/kvm: %s", strerror(e));
		return -e;
	}
	int version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm: API version %d, kiln needs %d", version,
			 KVM_API_VERSION);
		return -ENOTSUP;
	}
	static const struct {
		int cap;
		const char *name;
	} required[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(required); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required[i].cap) <= 0) {
			snprintf(err, errlen, "/dev/kvm: missing %s", required[i].name);
			return -ENOTSUP;
		}
	}
	int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > 0 && vm->cfg->cpus > (unsigned)max_vcpus) {
		snprintf(err, errlen, "--cpus: %u is more than this host's KVM allows (%d)",
			 vm->cfg->cpus, max_vcpus);
		return -EINVAL;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "/dev/kvm: bad KVM_GET_VCPU_MMAP_SIZE %d", vm->run_size);
		return -EINVAL;
	}
	prep_start(vm);
	return 0;
}

static int create_vm_fd(struct vm *vm, char *err, size_t errlen)
{
	int ret;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return ret;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0 ||
	    ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ KVM_IDENTITY_MAP_ADDR }) < 0) {
		ret = -errno;
		snprintf(err, errlen, "KVM TSS/identity map set-up: %s", strerror(errno));
		return ret;
	}
	if (vm->host_pvm)
		pvm_host_setup(vm);
	return 0;
}

/*
 * The irqchip must exist before any vCPU, and is created after guest memory: once the in-kernel
 * irqchip exists, adding a memory slot is several times slower (4-5 ms more for 128 MiB on a
 * PVM host, docs/design.md "Start-up order").
 */
static int create_irqchip(struct vm *vm, char *err, size_t errlen)
{
	int ret;
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		ret = -errno;
		snprintf(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return ret;
	}
	return 0;
}

/* The in-kernel PIT needs the irqchip, not the vCPUs: it is made while the set-up thread
 * creates those (its kernel thread takes 0.1-0.6 ms to start on a PVM host). */
static int create_pit(struct vm *vm, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int ret;

	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		ret = -errno;
		snprintf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
		return ret;
	}
	return 0;
}

static int setup_signals_and_loop(struct vm *vm, char *err, size_t errlen)
{
	int ret = event_loop_init(&vm->ev);
	if (ret) {
		snprintf(err, errlen, "epoll: %s", strerror(-ret));
		return ret;
	}
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return ret;
	}
	ret = vcpu_signal_setup();
	if (ret)
		snprintf(err, errlen, "vCPU kick signal: %s", strerror(-ret));
	return ret;
}

/* The guest's first instructions: ACPI tables, the kernel and initrd, the BSP's registers.
 * With dirty tracking on from the boot, those writes count as dirty too. */
static int load_guest(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct acpi_config acfg = { .nr_cpus = cfg->cpus,
				    .dsdt_sb_hook = acpi_pci_dsdt_hook,
				    .dsdt_sb_opaque = &vm->pci,
				    .vmgenid = true };
	int ret = acpi_build(&vm->mem, &acfg, &vm->rsdp);
	if (ret) {
		snprintf(err, errlen, "ACPI tables: %s", strerror(-ret));
		return ret;
	}
	struct boot_request req = {
		.kernel_path = cfg->kernel_path,
		.initrd_path = cfg->initrd_path,
		.cmdline = cfg->cmdline ? cfg->cmdline : VM_CONFIG_DEFAULT_CMDLINE,
		.rsdp = vm->rsdp,
	};
	return x86_boot_load(&vm->mem, &req, &vm->boot, err, errlen);
}

static int build(struct vm *vm, const struct vm_config *cfg, const struct vm_restore *r,
		 char *err, size_t errlen)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = vm->serial_out_fd = vm->stdin_fd = -1;
	vm->uffd.uffd = vm->uffd.sock = -1;
	vm->ev.epfd = -1;
	vm->nr_vcpus = cfg->cpus;
	atomic_init(&vm->stop_reason, VM_STOP_NONE);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");

	if ((ret = setup_signals_and_loop(vm, err, errlen)) || (ret = open_kvm(vm, err, errlen)) ||
	    (ret = create_vm_fd(vm, err, errlen)) || (ret = setup_memory(vm, r, err, errlen)) ||
	    (ret = create_irqchip(vm, err, errlen)))
		goto fail;
	prep_release(vm, true);
	if ((ret = setup_devices(vm, err, errlen)) || (ret = setup_pci(vm, err, errlen)) ||
	    (ret = setup_virtio_devices(vm, err, errlen)))
		goto fail;
	ret = vmgenid_init(&vm->vmgenid, &vm->mem,
			   (struct irq_line){ .set = irq_line_kvm, .opaque = vm, .gsi = VMGENID_GSI });
	if (ret) {
		snprintf(err, errlen, "VMGenID: %s", strerror(-ret));
		goto fail;
	}
	/* A restore loads no guest: the memory file holds it, and vm_restore_apply its state. */
	if ((!r && (ret = load_guest(vm, cfg, err, errlen))) ||
	    (ret = create_pit(vm, err, errlen)) || (ret = prep_join(vm, err, errlen)))
		goto fail;
	if (r) {
		if ((ret = vm_restore_apply(vm, r, err, errlen)))
			goto fail;
		return 0;
	}
	/* Only the BSP gets boot registers; APs wait for INIT/SIPI in the in-kernel LAPIC. */
	ret = x86_regs_setup(vm->vcpus[0].fd, &vm->boot);
	if (ret) {
		snprintf(err, errlen, "vcpu 0: register set-up: %s", strerror(-ret));
		goto fail;
	}
	/* Dirty tracking for Diff snapshots: from now on, counting what the boot wrote. */
	if (cfg->track_dirty_pages &&
	    ((ret = dirty_log_start(&vm->dirty, vm->vm_fd, &vm->mem, err, errlen)) ||
	     (ret = dirty_log_mark_touched(&vm->dirty, err, errlen))))
		goto fail;
	return 0;

fail:
	vm_destroy(vm);
	return ret;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	return build(vm, cfg, NULL, err, errlen);
}

int vm_create_restore(struct vm *vm, const struct vm_restore *r, char *err, size_t errlen)
{
	return build(vm, &r->cfg, r, err, errlen);
}

static void stop_ready(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;
	ssize_t r = read(vm->stop_efd, &v, sizeof(v));
	(void)r;
	(void)events;
}

static void signal_ready(void *opaque, uint32_t events)
{
	struct vm *vm = ((void **)opaque)[0];
	int sfd = (int)(intptr_t)((void **)opaque)[1];
	struct signalfd_siginfo si;
	(void)events;
	if (read(sfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGUSR1) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			vcpu_request_dump(&vm->vcpus[i]);
		return;
	}
	log_info("signal %u: stopping the VM", si.ssi_signo);
	vm->stop_signal = (int)si.ssi_signo;
	vm_request_stop(vm, VM_STOP_USER);
}

enum vm_stop_reason vm_run(struct vm *vm)
{
	sigset_t mask, old;
	int sfd = -1;
	void *sig_ctx[2];

	/* Block the stop signals in every thread; the event loop takes them by signalfd.
	 * vCPU threads inherit this mask and unblock only their kick signal. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGRTMIN);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	sigdelset(&mask, SIGRTMIN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	sig_ctx[0] = vm;
	sig_ctx[1] = (void *)(intptr_t)sfd;

	if (event_add_control(&vm->ev, vm->stop_efd, EPOLLIN, stop_ready, vm) ||
	    (sfd >= 0 && event_add_control(&vm->ev, sfd, EPOLLIN, signal_ready, sig_ctx))) {
		log_err("event loop set-up failed");
		vm_request_stop(vm, VM_STOP_ERROR);
	}
	if (vm->cfg->console_mode == SERIAL_STDIO) {
		console_raw_enter(STDIN_FILENO); /* virtio-console reads stdin (cli: --console) */
	} else if (vm->cfg->serial_mode == SERIAL_STDIO) {
		vm->stdin_fd = STDIN_FILENO;
		fcntl(vm->stdin_fd, F_SETFL, fcntl(vm->stdin_fd, F_GETFL) | O_NONBLOCK);
		if (event_add(&vm->ev, vm->stdin_fd, EPOLLIN, stdin_ready, vm))
			vm->stdin_fd = -1; /* e.g. /dev/null or a regular file: no console input */
		else
			console_raw_enter(vm->stdin_fd);
	}

	/* The event loop's filter; the vCPU threads (vm_create started them: they must not
	 * inherit it) wait for it before their first KVM_RUN (sandbox/seccomp.h). */
	char why[200];
	if (seccomp_enter(SECCOMP_VMM, "event-loop", why, sizeof(why))) {
		log_err("%s", why);
		vm_request_stop(vm, VM_STOP_ERROR);
	}
	seccomp_test_violation(SECCOMP_VMM, -1);
	vcpu_release_all(vm);

	while (atomic_load(&vm->stop_reason) == VM_STOP_NONE) {
		int n = event_loop_run_once(&vm->ev, -1);
		if (n < 0) {
			log_err("event loop: %s", strerror(-n));
			vm_request_stop(vm, VM_STOP_ERROR);
		}
	}

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
	/* The backlog the guest left (vmm/output.h), before the final metrics count drops. */
	output_drain(&vm->serial_out, VM_OUTPUT_DRAIN_MS);
	if (vm->console)
		output_drain(virtio_console_output(vm->console), VM_OUTPUT_DRAIN_MS);

	console_raw_leave();
	if (vm->stdin_fd >= 0)
		fcntl(vm->stdin_fd, F_SETFL, fcntl(vm->stdin_fd, F_GETFL) & ~O_NONBLOCK);
	if (sfd >= 0) {
		event_del(&vm->ev, sfd);
		close(sfd);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return (enum vm_stop_reason)atomic_load(&vm->stop_reason);
}

void vm_destroy(struct vm *vm)
{
	if (vm->prep.started) { /* a start-up that failed before it took the vCPUs */
		char why[sizeof(vm->prep.err)];
		prep_release(vm, false);
		(void)prep_join(vm, why, sizeof(why));
	}
	/* A VM that never ran (vm_create failed late, or the API's InstanceStart did): its vCPU
	 * threads wait at the start gate. They see the stop once it opens. */
	if (vm->vcpus && !atomic_load(&vm->vcpus_go)) {
		vm_request_stop(vm, VM_STOP_ERROR);
		vcpu_release_all(vm);
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			vcpu_join(&vm->vcpus[i]); /* a no-op for a thread never started */
	}
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			if (vm->vcpus[i].fd >= 0)
				vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	serial_destroy(&vm->serial);
	output_close(&vm->serial_out);
	if (vm->serial_out_fd >= 0)
		close(vm->serial_out_fd);
	pci_bus_destroy(&vm->pci); /* before the vm fd closes: deassigns irqfds */
	destroy_virtio_devices(vm);
	vm->console = NULL;
	irq_router_destroy(&vm->irq);
	dirty_log_free(&vm->dirty); /* the slots go with the vm fd */
	guest_mem_destroy(&vm->mem);
	uffd_backend_close(&vm->uffd); /* after the memory: the handler exits on the hang-up */
	free(vm->host);
	vm->host = NULL;
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	free(vm->cpuid);
	vm->cpuid = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	event_loop_destroy(&vm->ev);
	vm->vm_fd = vm->kvm_fd = vm->stop_efd = vm->serial_out_fd = -1;
}

int vm_drive_update_path(struct vm *vm, const char *id, const char *path, char *err,
			 size_t errlen)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_dev *d = vm->virtio[i].dev;

		if (d && d->ops->type == VIRTIO_ID_BLOCK && strcmp(d->id, id) == 0)
			return virtio_blk_set_path(d, path, err, errlen);
	}
	snprintf(err, errlen, "drive '%s': no such drive in the running VM", id);
	return -ENOENT;
}

int vm_exit_status(enum vm_stop_reason why, int sig)
{
	switch (why) {
	case VM_STOP_RESET:
	case VM_STOP_POWEROFF:
		return 0;
	case VM_STOP_USER:
		return sig ? 128 + sig : 0;
	default:
		fprintf(stderr, "kiln: the VM stopped on an error (see the log above)\n");
		return 1;
	}
}
